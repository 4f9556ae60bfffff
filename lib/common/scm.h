/* SPDX-License-Identifier: MIT */
/* Descriptors attached to a UNIX socket message (SCM_RIGHTS). */
#ifndef VNVME_COMMON_SCM_H
#define VNVME_COMMON_SCM_H

#include <string.h>
#include <sys/socket.h>

/* Attach fds to mh, using cbuf (at least CMSG_SPACE(nfds * sizeof(int)) bytes, aligned for cmsghdr). */
static inline void vnvme_scm_attach(struct msghdr *mh, void *cbuf, const int *fds, size_t nfds)
{
    if (!nfds)
        return;
    memset(cbuf, 0, CMSG_SPACE(nfds * sizeof(int)));
    mh->msg_control = cbuf;
    mh->msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    struct cmsghdr *cm = CMSG_FIRSTHDR(mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
}

#endif
