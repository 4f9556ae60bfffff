/* SPDX-License-Identifier: MIT */
#include "msg.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HDR_SIZE sizeof(struct vfio_user_header)
#define KNOWN_FLAGS (VFIO_USER_F_TYPE_MASK | VFIO_USER_F_NO_REPLY | VFIO_USER_F_ERROR)

void vfio_user_rx_init(struct vfio_user_rx *rx, size_t max_msg_size, size_t max_fds)
{
    memset(rx, 0, sizeof(*rx));
    rx->max_msg_size = max_msg_size;
    rx->max_fds = max_fds > VFIO_USER_MSG_MAX_FDS ? VFIO_USER_MSG_MAX_FDS : max_fds;
}

static void close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

void vfio_user_rx_release(struct vfio_user_rx *rx)
{
    close_fds(rx->msg.fds, rx->msg.nfds);
    rx->msg.nfds = 0;
    rx->msg.len = 0;
    memset(&rx->msg.hdr, 0, sizeof(rx->msg.hdr));
    rx->hdr_got = 0;
    rx->payload_got = 0;
    rx->fds_truncated = false;
    /* Shrink after an unusually large message so one big write does not pin memory. */
    if (rx->buf_cap > (256u << 10)) {
        free(rx->msg.payload);
        rx->msg.payload = NULL;
        rx->buf_cap = 0;
    }
}

void vfio_user_rx_fini(struct vfio_user_rx *rx)
{
    vfio_user_rx_release(rx);
    free(rx->msg.payload);
    rx->msg.payload = NULL;
    rx->buf_cap = 0;
}

/* Collect SCM_RIGHTS fds; any beyond the limit are closed and flagged. */
static void take_fds(struct vfio_user_rx *rx, struct msghdr *mh)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *p = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, p + i * sizeof(int), sizeof(fd));
            if (rx->msg.nfds < rx->max_fds) {
                rx->msg.fds[rx->msg.nfds++] = fd;
            } else {
                close(fd);
                rx->fds_truncated = true;
            }
        }
    }
    if (mh->msg_flags & MSG_CTRUNC)
        rx->fds_truncated = true;
}

static ssize_t recv_some(struct vfio_user_rx *rx, int sock, void *dst, size_t len)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * VFIO_USER_MSG_MAX_FDS)];
    } ctl;
    struct iovec iov = {.iov_base = dst, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
    ssize_t n;
    do {
        n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    take_fds(rx, &mh);
    if (n == 0)
        return -ECONNRESET;
    return n;
}

static int check_header(const struct vfio_user_rx *rx)
{
    const struct vfio_user_header *h = &rx->msg.hdr;
    if (h->msg_size < HDR_SIZE || h->msg_size > rx->max_msg_size)
        return -EMSGSIZE;
    uint32_t type = h->flags & VFIO_USER_F_TYPE_MASK;
    if (type != VFIO_USER_F_TYPE_COMMAND && type != VFIO_USER_F_TYPE_REPLY)
        return -EPROTO;
    if (h->flags & ~KNOWN_FLAGS)
        return -EPROTO;
    return 0;
}

int vfio_user_rx_step(struct vfio_user_rx *rx, int sock)
{
    while (rx->hdr_got < HDR_SIZE) {
        ssize_t n = recv_some(rx, sock, (uint8_t *)&rx->msg.hdr + rx->hdr_got, HDR_SIZE - rx->hdr_got);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return 0;
        rx->hdr_got += (size_t)n;
        if (rx->hdr_got == HDR_SIZE) {
            int rc = check_header(rx);
            if (rc)
                return rc;
            size_t need = rx->msg.hdr.msg_size - HDR_SIZE;
            if (need > rx->buf_cap) {
                uint8_t *nb = realloc(rx->msg.payload, need);
                if (!nb)
                    return -ENOMEM;
                rx->msg.payload = nb;
                rx->buf_cap = need;
            }
            rx->msg.len = need;
        }
    }
    while (rx->payload_got < rx->msg.len) {
        ssize_t n = recv_some(rx, sock, rx->msg.payload + rx->payload_got, rx->msg.len - rx->payload_got);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return 0;
        rx->payload_got += (size_t)n;
    }
    if (rx->fds_truncated)
        return -EPROTO;
    return 1;
}

int64_t vfio_user_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vfio_user_wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int left = -1;
        if (deadline >= 0) {
            int64_t d = deadline - vfio_user_now_ms();
            if (d <= 0)
                return -ETIMEDOUT;
            left = (int)d;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -errno;
        if (rc == 0)
            return -ETIMEDOUT;
        return 0;
    }
}

int vfio_user_rx_wait(struct vfio_user_rx *rx, int sock, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : vfio_user_now_ms() + timeout_ms;
    for (;;) {
        int rc = vfio_user_rx_step(rx, sock);
        if (rc != 0)
            return rc;
        rc = vfio_user_wait_fd(sock, POLLIN, deadline);
        if (rc)
            return rc;
    }
}

void vfio_user_tx_init(struct vfio_user_tx *tx)
{
    memset(tx, 0, sizeof(*tx));
}

void vfio_user_tx_fini(struct vfio_user_tx *tx)
{
    close_fds(tx->fds, tx->nfds);
    tx->nfds = 0;
    free(tx->buf);
    memset(tx, 0, sizeof(*tx));
}

/* One sendmsg; fds go with it. Returns bytes sent, 0 for EAGAIN, or -errno. */
static ssize_t send_some(int sock, struct iovec *iov, int iovcnt, const int *fds, size_t nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * VFIO_USER_MSG_MAX_FDS)];
    } ctl;
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
    if (nfds) {
        if (nfds > VFIO_USER_MSG_MAX_FDS)
            return -EINVAL;
        memset(ctl.buf, 0, sizeof(ctl.buf));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t n;
    do {
        n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    return n;
}

static size_t iov_total(const struct iovec *iov, int iovcnt)
{
    size_t t = 0;
    for (int i = 0; i < iovcnt; i++)
        t += iov[i].iov_len;
    return t;
}

#define MAX_IOV 8

int vfio_user_tx_send(struct vfio_user_tx *tx, int sock, const struct vfio_user_header *hdr,
                      const struct iovec *iov, int iovcnt, const int *fds, size_t nfds)
{
    if (vfio_user_tx_pending(tx) || iovcnt < 0 || iovcnt > MAX_IOV - 1 || nfds > VFIO_USER_MSG_MAX_FDS)
        return -EINVAL;
    struct iovec v[MAX_IOV];
    v[0] = (struct iovec){.iov_base = (void *)hdr, .iov_len = HDR_SIZE};
    for (int i = 0; i < iovcnt; i++)
        v[i + 1] = iov[i];
    size_t total = iov_total(v, iovcnt + 1);
    ssize_t n = send_some(sock, v, iovcnt + 1, fds, nfds);
    if (n < 0)
        return (int)n;
    if ((size_t)n == total)
        return 0;

    /* Keep the rest; fds only if not a single byte went (they travel with the first). */
    uint8_t *buf = malloc(total);
    if (!buf)
        return -ENOMEM;
    size_t off = 0;
    for (int i = 0; i < iovcnt + 1; i++) {
        memcpy(buf + off, v[i].iov_base, v[i].iov_len);
        off += v[i].iov_len;
    }
    tx->nfds = 0;
    if (n == 0) {
        for (size_t i = 0; i < nfds; i++) {
            int d = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
            if (d < 0) {
                close_fds(tx->fds, tx->nfds);
                tx->nfds = 0;
                free(buf);
                return -errno;
            }
            tx->fds[tx->nfds++] = d;
        }
    }
    free(tx->buf);
    tx->buf = buf;
    tx->len = total;
    tx->sent = (size_t)n;
    return 0;
}

int vfio_user_tx_flush(struct vfio_user_tx *tx, int sock)
{
    while (vfio_user_tx_pending(tx)) {
        struct iovec v = {.iov_base = tx->buf + tx->sent, .iov_len = tx->len - tx->sent};
        ssize_t n = send_some(sock, &v, 1, tx->fds, tx->sent == 0 ? tx->nfds : 0);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EAGAIN;
        if (tx->sent == 0) {
            close_fds(tx->fds, tx->nfds);
            tx->nfds = 0;
        }
        tx->sent += (size_t)n;
    }
    free(tx->buf);
    tx->buf = NULL;
    tx->len = tx->sent = 0;
    return 0;
}

int vfio_user_send_all(int sock, const struct vfio_user_header *hdr, const struct iovec *iov, int iovcnt,
                       const int *fds, size_t nfds, int timeout_ms)
{
    struct vfio_user_tx tx;
    vfio_user_tx_init(&tx);
    int rc = vfio_user_tx_send(&tx, sock, hdr, iov, iovcnt, fds, nfds);
    int64_t deadline = timeout_ms < 0 ? -1 : vfio_user_now_ms() + timeout_ms;
    while (rc == 0) {
        rc = vfio_user_tx_flush(&tx, sock);
        if (rc != -EAGAIN)
            break;
        rc = vfio_user_wait_fd(sock, POLLOUT, deadline);
    }
    vfio_user_tx_fini(&tx);
    return rc;
}

void vfio_user_reply_header(struct vfio_user_header *out, const struct vfio_user_header *req, uint32_t payload_len,
                            int err)
{
    memset(out, 0, sizeof(*out));
    out->msg_id = req->msg_id;
    out->cmd = req->cmd;
    out->flags = VFIO_USER_F_TYPE_REPLY;
    if (err) {
        out->flags |= VFIO_USER_F_ERROR;
        out->error_no = (uint32_t)err;
        payload_len = 0; /* an error reply is the header alone */
    }
    out->msg_size = (uint32_t)(HDR_SIZE + payload_len);
}

const char *vfio_user_command_name(uint16_t cmd)
{
    static const char *const names[VFIO_USER_MAX_COMMAND] = {
        [VFIO_USER_VERSION] = "VERSION",
        [VFIO_USER_DMA_MAP] = "DMA_MAP",
        [VFIO_USER_DMA_UNMAP] = "DMA_UNMAP",
        [VFIO_USER_DEVICE_GET_INFO] = "DEVICE_GET_INFO",
        [VFIO_USER_DEVICE_GET_REGION_INFO] = "DEVICE_GET_REGION_INFO",
        [VFIO_USER_DEVICE_GET_REGION_IO_FDS] = "DEVICE_GET_REGION_IO_FDS",
        [VFIO_USER_DEVICE_GET_IRQ_INFO] = "DEVICE_GET_IRQ_INFO",
        [VFIO_USER_DEVICE_SET_IRQS] = "DEVICE_SET_IRQS",
        [VFIO_USER_REGION_READ] = "REGION_READ",
        [VFIO_USER_REGION_WRITE] = "REGION_WRITE",
        [VFIO_USER_DMA_READ] = "DMA_READ",
        [VFIO_USER_DMA_WRITE] = "DMA_WRITE",
        [VFIO_USER_DEVICE_RESET] = "DEVICE_RESET",
        [VFIO_USER_REGION_WRITE_MULTI] = "REGION_WRITE_MULTI",
        [VFIO_USER_DEVICE_FEATURE] = "DEVICE_FEATURE",
        [VFIO_USER_MIG_DATA_READ] = "MIG_DATA_READ",
        [VFIO_USER_MIG_DATA_WRITE] = "MIG_DATA_WRITE",
    };
    if (cmd < VFIO_USER_MAX_COMMAND && names[cmd])
        return names[cmd];
    return "UNKNOWN";
}
