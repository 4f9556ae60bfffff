/* SPDX-License-Identifier: MIT */
/*
 * Message transport shared by the vfio-user server and client: framing of
 * header + payload + passed fds on a SOCK_STREAM unix socket, without ever
 * blocking and without ever mixing up which fds belong to which message.
 *
 * The receiver reads exactly the bytes of the message it is assembling (the
 * 16-byte header first, then msg_size - 16) so that it never consumes the
 * start of the next message. The kernel delivers passed fds with the first
 * byte of the sender's sendmsg(), so fds that arrive while a message is being
 * assembled belong to that message.
 */
#ifndef VNVME_VFIO_USER_MSG_H
#define VNVME_VFIO_USER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vnvme/vfio_user_proto.h"

/* Most fds any peer of ours accepts in one message. */
#define VFIO_USER_MSG_MAX_FDS 64u

struct vfio_user_msg {
    struct vfio_user_header hdr;
    uint8_t *payload; /* msg_size - 16 bytes, owned by the rx that produced it */
    size_t len;       /* payload length */
    int fds[VFIO_USER_MSG_MAX_FDS];
    size_t nfds;
};

/* Incremental receiver for one connection. */
struct vfio_user_rx {
    struct vfio_user_msg msg;
    size_t hdr_got;
    size_t payload_got;
    size_t buf_cap;
    size_t max_msg_size; /* header included */
    size_t max_fds;
    bool fds_truncated;
};

void vfio_user_rx_init(struct vfio_user_rx *rx, size_t max_msg_size, size_t max_fds);
/* Close any fds still owned by the rx and free its buffer. */
void vfio_user_rx_fini(struct vfio_user_rx *rx);

/*
 * Make progress on the current message. Returns 1 when a whole message is in
 * rx->msg, 0 when the socket has no more data for now, or a negative errno:
 * -ECONNRESET on EOF, -EMSGSIZE for a msg_size out of range, -EPROTO for a
 * malformed header or more fds than allowed. After a negative return the
 * stream cannot be trusted and the connection must be closed.
 */
int vfio_user_rx_step(struct vfio_user_rx *rx, int sock);
/*
 * Blocking variant: wait up to timeout_ms (-1 forever) for a whole message.
 * Returns 1, or -ETIMEDOUT / the errors of vfio_user_rx_step.
 */
int vfio_user_rx_wait(struct vfio_user_rx *rx, int sock, int timeout_ms);
/* Done with rx->msg: close fds nobody took (set taken ones to -1), reset for the next one. */
void vfio_user_rx_release(struct vfio_user_rx *rx);

/* Pending output of one connection: at most one partially sent message. */
struct vfio_user_tx {
    uint8_t *buf;
    size_t len;
    size_t sent;
    int fds[VFIO_USER_MSG_MAX_FDS]; /* dup'ed fds not yet sent with the first byte */
    size_t nfds;
};

void vfio_user_tx_init(struct vfio_user_tx *tx);
void vfio_user_tx_fini(struct vfio_user_tx *tx);
static inline bool vfio_user_tx_pending(const struct vfio_user_tx *tx) { return tx->sent < tx->len; }

/*
 * Send header + iov + fds. What the socket does not take at once is kept in
 * tx and finished by vfio_user_tx_flush(). Call only when nothing is pending.
 * Returns 0 (sent or queued) or a negative errno (connection broken).
 */
int vfio_user_tx_send(struct vfio_user_tx *tx, int sock, const struct vfio_user_header *hdr,
                      const struct iovec *iov, int iovcnt, const int *fds, size_t nfds);
/* 0 when everything is out, -EAGAIN when still pending, other -errno when broken. */
int vfio_user_tx_flush(struct vfio_user_tx *tx, int sock);

/* Blocking send of a whole message with a deadline (client side). */
int vfio_user_send_all(int sock, const struct vfio_user_header *hdr, const struct iovec *iov, int iovcnt,
                       const int *fds, size_t nfds, int timeout_ms);

/* CLOCK_MONOTONIC in milliseconds, the time base of the deadlines below. */
int64_t vfio_user_now_ms(void);
/*
 * Wait until fd is ready for events or the deadline (vfio_user_now_ms() based,
 * -1 for none) passes: 0, -ETIMEDOUT or -errno of poll(). EINTR is retried.
 */
int vfio_user_wait_fd(int fd, short events, int64_t deadline);

/* Fill a reply header for request hdr. err > 0 sets the Error flag and errno. */
void vfio_user_reply_header(struct vfio_user_header *out, const struct vfio_user_header *req, uint32_t payload_len,
                            int err);

/* Capabilities exchanged in VERSION. */
struct vfio_user_caps {
    uint32_t max_msg_fds;
    uint32_t max_data_xfer_size;
    uint32_t max_dma_maps;
    uint64_t pgsizes;
    bool twin_socket;
};

void vfio_user_caps_defaults(struct vfio_user_caps *c);
/*
 * Parse the version data (JSON object with "capabilities"), starting from the
 * spec's defaults. len counts the bytes after major/minor; a missing or empty
 * data is valid. Returns 0 or -EINVAL for malformed JSON, wrong types or
 * values out of range.
 */
int vfio_user_caps_parse(const char *data, size_t len, struct vfio_user_caps *out);
/*
 * Whether a server's VERSION reply is one QEMU's client accepts: the limits in
 * vfio_user_proto.h, page sizes a multiple of 4 KiB, the data NUL-terminated
 * and no longer than the request (QEMU reads the reply into the request's
 * buffer and drops the connection when it does not fit). data/len are the
 * bytes after major/minor. 0, or -EPROTO with *why saying what is wrong.
 */
int vfio_user_caps_check_reply(const char *data, size_t len, size_t request_len, const struct vfio_user_caps *c,
                               const char **why);
/* Render caps as the NUL-terminated JSON string; returns its length incl. NUL, or -ENOSPC. */
int vfio_user_caps_format(const struct vfio_user_caps *c, char *buf, size_t buf_len);

#endif
