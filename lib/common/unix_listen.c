/* SPDX-License-Identifier: MIT */
#include "common/unix_listen.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

int vnvme_unix_addr(struct sockaddr_un *a, const char *path)
{
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(a->sun_path))
        return -ENAMETOOLONG;
    strcpy(a->sun_path, path);
    return 0;
}

/* 1: something accepts on a; 0: nobody does (a file left by a crash); else a negative errno. */
static int probe_live(const struct sockaddr_un *a)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = connect(fd, (const struct sockaddr *)a, sizeof(*a));
    int err = rc < 0 ? errno : 0;
    close(fd);
    if (rc == 0)
        return 1;
    if (err == ECONNREFUSED || err == ENOENT)
        return 0;
    return -err;
}

/* Make room for a new socket at path: 0 when the name is free (now), else why not. */
static int clear_stale(const char *path, const struct sockaddr_un *a, const char *tag)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode)) {
        VNVME_ERR(tag, "%s exists and is not a socket", path);
        return -EEXIST;
    }
    int live = probe_live(a);
    if (live < 0)
        return live;
    if (live == 1) {
        VNVME_ERR(tag, "%s is in use by a running server", path);
        return -EADDRINUSE;
    }
    VNVME_NOTICE(tag, "replacing stale socket %s", path);
    return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

/* A name beside path (same directory, so link() stays within one filesystem) unique to this call. */
static int temp_addr(struct sockaddr_un *t, const char *path)
{
    static atomic_uint seq;
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    memset(t, 0, sizeof(*t));
    t->sun_family = AF_UNIX;
    int n = snprintf(t->sun_path, sizeof(t->sun_path), "%.*s.vnvme-listen-%d-%u", dirlen, path, (int)getpid(),
                     atomic_fetch_add(&seq, 1));
    return n < 0 || (size_t)n >= sizeof(t->sun_path) ? -ENAMETOOLONG : 0;
}

/* Give the listening socket bound at tmp its real name; never replaces a file that appeared meanwhile. */
static int publish(const char *tmp, const char *path, const struct sockaddr_un *a, const char *tag)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        if (link(tmp, path) == 0)
            return 0;
        int err = errno;
        if (err == EPERM || err == EOPNOTSUPP || err == ENOSYS) {
            /* A filesystem without hard links: the name was checked free just before. */
            return rename(tmp, path) < 0 ? -errno : 0;
        }
        if (err != EEXIST)
            return -err;
        int rc = clear_stale(path, a, tag);
        if (rc < 0)
            return rc;
    }
    return -EADDRINUSE;
}

int vnvme_unix_listen(const char *path, int backlog, const gid_t *group, const char *log_tag)
{
    struct sockaddr_un a, t;
    int rc = vnvme_unix_addr(&a, path);
    if (rc < 0)
        return rc;
    rc = clear_stale(path, &a, log_tag);
    if (rc < 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* The socket file takes the socket inode's mode at bind: set it first, so there is no window with wider access. */
    if (fchmod(fd, 0600) < 0) {
        rc = -errno;
        goto fail;
    }
    bool via_temp = temp_addr(&t, path) == 0;
    if (!via_temp) {
        /* No room for a longer name: bind in place, the brief not-yet-listening window included. */
        t = a;
    }
    int brc = bind(fd, (const struct sockaddr *)&t, sizeof(t));
    if (brc < 0 && errno == EADDRINUSE && via_temp) {
        /* Left by a crashed process that had our pid: the name is ours now. */
        unlink(t.sun_path);
        brc = bind(fd, (const struct sockaddr *)&t, sizeof(t));
    }
    if (brc < 0) {
        rc = -errno;
        goto fail;
    }
    /* bind applied the umask; a group grant is set on the file itself, before it has its name. */
    if (group && (chown(t.sun_path, (uid_t)-1, *group) < 0 || chmod(t.sun_path, 0660) < 0)) {
        rc = -errno;
        unlink(t.sun_path);
        goto fail;
    }
    if (listen(fd, backlog) < 0) {
        rc = -errno;
        unlink(t.sun_path);
        goto fail;
    }
    if (via_temp) {
        rc = publish(t.sun_path, path, &a, log_tag);
        unlink(t.sun_path);
        if (rc < 0)
            goto fail;
    }
    return fd;
fail:
    close(fd);
    return rc;
}
