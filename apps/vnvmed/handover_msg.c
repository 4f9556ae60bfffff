/* SPDX-License-Identifier: MIT */
/*
 * Messages of the handover conversation (handover.h) on a SOCK_SEQPACKET
 * pair: a message is one or more packets, each with a small header, some
 * bytes and some fds, the last one flagged. Packets keep the kernel's
 * per-packet limits (SCM_MAX_FD is 253; a packet must fit the send buffer)
 * whatever the size of a controller's state.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/scm.h"
#include "handover.h"

#define PKT_MAGIC 0x4f484e56u /* "VNHO" */
#define PKT_LAST 1u
#define PKT_MAX_BYTES (32u << 10)
#define PKT_MAX_FDS 128u
#define MSG_MAX_BYTES (64u << 20)
#define MSG_MAX_FDS 65536u

struct pkt_hdr {
    uint32_t magic;
    uint32_t type;
    uint32_t flags;
    uint32_t len;
};

static int send_pkt(int sock, const struct pkt_hdr *h, const void *data, const int *fds, size_t nfds)
{
    struct iovec iov[2] = {{(void *)h, sizeof(*h)}, {(void *)data, h->len}};
    union {
        char buf[CMSG_SPACE(PKT_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = h->len ? 2 : 1};
    vnvme_scm_attach(&mh, u.buf, fds, nfds);
    for (;;) {
        ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

int handover_send(int sock, uint32_t type, const void *data, size_t len, const int *fds, size_t nfds)
{
    const uint8_t *p = data;
    do {
        size_t n = len < PKT_MAX_BYTES ? len : PKT_MAX_BYTES;
        size_t k = nfds < PKT_MAX_FDS ? nfds : PKT_MAX_FDS;
        struct pkt_hdr h = {.magic = PKT_MAGIC, .type = type, .len = (uint32_t)n};
        if (n == len && k == nfds)
            h.flags = PKT_LAST;
        int rc = send_pkt(sock, &h, p, fds, k);
        if (rc)
            return rc;
        p += n;
        len -= n;
        fds += k;
        nfds -= k;
        if (h.flags & PKT_LAST)
            return 0;
    } while (1);
}

int handover_send_state(int sock, uint32_t type, const struct vnvme_state_out *w)
{
    if (vnvme_state_out_error(w))
        return vnvme_state_out_error(w);
    return handover_send(sock, type, w->buf, w->len, w->fds, w->nfds);
}

int handover_send_text(int sock, uint32_t type, const char *text)
{
    return handover_send(sock, type, text, strlen(text), NULL, 0);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fds(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

void handover_msg_free(struct handover_msg *m)
{
    if (m->fds)
        close_fds(m->fds, m->nfds);
    free(m->fds);
    free(m->data);
    memset(m, 0, sizeof(*m));
}

/* One packet into m; 1 when it was the last of its message. */
static int recv_pkt(int sock, int64_t deadline, struct handover_msg *m, bool first)
{
    static uint8_t buf[sizeof(struct pkt_hdr) + PKT_MAX_BYTES];
    union {
        char c[CMSG_SPACE(PKT_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } u;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left < 0)
            left = 0;
        struct pollfd pfd = {.fd = sock, .events = POLLIN};
        int rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -errno;
        if (rc == 0)
            return -ETIMEDOUT;
        break;
    }
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.c, .msg_controllen = sizeof(u.c)};
    ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0)
        return errno == EINTR ? recv_pkt(sock, deadline, m, first) : -errno;
    /* Received fds are ours from here, whatever is wrong with the packet. */
    int *got = NULL;
    size_t ngot = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            got = (int *)CMSG_DATA(cm);
            ngot = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        }
    int rc = -EPROTO;
    struct pkt_hdr h;
    if (n == 0) {
        rc = -ECONNRESET;
        goto drop;
    }
    if ((size_t)n < sizeof(h) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
        goto drop;
    memcpy(&h, buf, sizeof(h));
    if (h.magic != PKT_MAGIC || h.len != (size_t)n - sizeof(h) || (!first && h.type != m->type) ||
        h.len > MSG_MAX_BYTES - m->len || ngot > MSG_MAX_FDS - m->nfds)
        goto drop;
    m->type = h.type;
    if (h.len) {
        uint8_t *d = realloc(m->data, m->len + h.len + 1);
        if (!d) {
            rc = -ENOMEM;
            goto drop;
        }
        m->data = d;
        memcpy(m->data + m->len, buf + sizeof(h), h.len);
        m->len += h.len;
        m->data[m->len] = 0; /* text messages can be used as strings */
    }
    if (ngot) {
        int *f = realloc(m->fds, (m->nfds + ngot) * sizeof(int));
        if (!f) {
            rc = -ENOMEM;
            goto drop;
        }
        m->fds = f;
        memcpy(m->fds + m->nfds, got, ngot * sizeof(int));
        m->nfds += ngot;
    }
    return (h.flags & PKT_LAST) ? 1 : 0;
drop:
    close_fds(got, ngot);
    return rc;
}

int handover_recv(int sock, int timeout_ms, struct handover_msg *m)
{
    memset(m, 0, sizeof(*m));
    int64_t deadline = now_ms() + timeout_ms;
    for (bool first = true;; first = false) {
        int rc = recv_pkt(sock, deadline, m, first);
        if (rc < 0) {
            handover_msg_free(m);
            return rc;
        }
        if (rc == 1)
            return 0;
    }
}
