/* SPDX-License-Identifier: MIT */
/*
 * Listening unix sockets that appear only when they accept connections.
 *
 * bind() creates the socket file before listen() makes it connectable, so a
 * client that waits for the file and then connects (scripts, test harnesses,
 * a VMM started right after the daemon) can see ECONNREFUSED in between. The
 * socket is therefore bound under a temporary name beside the final one, put
 * into listening state, and only then linked to its name, atomically.
 */
#ifndef VNVME_COMMON_UNIX_LISTEN_H
#define VNVME_COMMON_UNIX_LISTEN_H

#include <sys/socket.h>
#include <sys/un.h>

/* path into a sockaddr_un; -ENAMETOOLONG when it does not fit. */
int vnvme_unix_addr(struct sockaddr_un *a, const char *path);

/*
 * A non-blocking, close-on-exec socket listening on path, file mode 0600, or
 * 0660 with group *group when group is not NULL (a VMM or tool running as
 * its own user in that group may connect; nobody else). The mode and group
 * are set before the file gets its name, so it never exists with other ones.
 * A socket file nobody accepts on (left by a crash) is replaced; a live one
 * gives -EADDRINUSE, anything that is not a socket -EEXIST. log_tag names the
 * caller in log lines. Returns the fd or a negative errno.
 */
int vnvme_unix_listen(const char *path, int backlog, const gid_t *group, const char *log_tag);

#endif
