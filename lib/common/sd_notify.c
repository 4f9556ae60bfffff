/* SPDX-License-Identifier: MIT */
#include "common/sd_notify.h"
#include "common/scm.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int vnvme_sd_notify(const char *state)
{
    return vnvme_sd_notify_fds(state, NULL, 0);
}

int vnvme_sd_notify_fds(const char *state, const int *fds, size_t nfds)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0')
        return 0;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(a.sun_path))
        return -EINVAL;
    memcpy(a.sun_path, path, len);
    if (path[0] == '@')
        a.sun_path[0] = '\0'; /* an abstract name: its length, not a NUL, ends it */
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct iovec iov = {(void *)state, strlen(state)};
    struct msghdr mh = {.msg_name = &a, .msg_namelen = alen, .msg_iov = &iov, .msg_iovlen = 1};
    union {
        char buf[CMSG_SPACE(VNVME_SD_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } u;
    if (nfds > VNVME_SD_MAX_FDS) {
        close(fd);
        return -E2BIG;
    }
    vnvme_scm_attach(&mh, u.buf, fds, nfds);
    ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    int rc = n < 0 ? -errno : 1;
    close(fd);
    return rc;
}

int vnvme_sd_listen_fds(char ***names)
{
    *names = NULL;
    const char *pid = getenv("LISTEN_PID"), *count = getenv("LISTEN_FDS"), *fdnames = getenv("LISTEN_FDNAMES");
    int n = 0;
    if (pid && count && strtol(pid, NULL, 10) == (long)getpid())
        n = (int)strtol(count, NULL, 10);
    if (n < 0 || n > 65536)
        n = 0;
    char **out = n ? calloc((size_t)n + 1, sizeof(*out)) : NULL;
    if (n && !out)
        n = 0;
    /* LISTEN_FDNAMES is colon-separated, one name per fd; missing ones are "unknown", as sd_listen_fds_with_names says. */
    const char *p = fdnames ? fdnames : "";
    for (int i = 0; i < n; i++) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        out[i] = len ? strndup(p, len) : strdup("unknown");
        p = end ? end + 1 : p + len;
        int fl = fcntl(VNVME_SD_LISTEN_FDS_START + i, F_GETFD);
        if (fl >= 0)
            (void)fcntl(VNVME_SD_LISTEN_FDS_START + i, F_SETFD, fl | FD_CLOEXEC);
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    *names = out;
    return n;
}
