/* SPDX-License-Identifier: MIT */
/* Client memory: DMA_MAP/DMA_UNMAP, and device-initiated reads/writes of client memory. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "server_internal.h"

/* True when the device may still write the window (see ops.dma_unmap). */
static bool notify_unmap(void *arg, const struct vfio_user_dma_region *r)
{
    struct vfio_user_server *s = arg;
    return s->ops && s->ops->dma_unmap && s->ops->dma_unmap(s->dev_ctx, r);
}

void srv_dma_unmap_all(struct vfio_user_server *s)
{
    vfio_user_dma_table_clear(s->dma, notify_unmap, s);
}

/*
 * A refused DMA_MAP leaves the client's device without that memory, so the
 * operator hears why, once per connection: a client that gets it wrong once
 * (SPDK's initiator on DPDK's default hugepage files sends windows longer than
 * the file passed with them) tends to repeat it for every window.
 */
static void log_dma_refusal(struct vfio_user_server *s, const struct vfio_user_dma_map *dm, int64_t file_size, int rc)
{
    char why[160];
    if (file_size >= 0 && (dm->offset > (uint64_t)file_size || dm->size > (uint64_t)file_size - dm->offset))
        snprintf(why, sizeof(why), "the window runs past the end of the file passed with it (%" PRId64 " bytes)",
                 file_size);
    else
        snprintf(why, sizeof(why), "%s", strerror(-rc));
    if (s->dma_refusal_logged) {
        VNVME_DEBUG(SRV_LOG, "DMA_MAP [0x%" PRIx64 ", +0x%" PRIx64 ") refused: %s", dm->addr, dm->size, why);
        return;
    }
    s->dma_refusal_logged = true;
    VNVME_WARN(SRV_LOG,
               "DMA_MAP of [0x%" PRIx64 ", +0x%" PRIx64 ") at file offset 0x%" PRIx64
               " refused: %s (later refusals on this connection are logged at debug level)",
               dm->addr, dm->size, dm->offset, why);
}

void srv_handle_dma_map(struct vfio_user_server *s, struct vfio_user_msg *m)
{
    struct vfio_user_dma_map dm;
    if (m->len < sizeof(dm) || m->nfds > 1) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    memcpy(&dm, m->payload, sizeof(dm));
    const uint32_t known = VFIO_USER_DMA_F_READ | VFIO_USER_DMA_F_WRITE;
    if (dm.argsz < sizeof(dm) || dm.flags == 0 || (dm.flags & ~known)) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    uint32_t prot = 0;
    if (dm.flags & VFIO_USER_DMA_F_READ)
        prot |= VFIO_USER_DMA_READ_OK;
    if (dm.flags & VFIO_USER_DMA_F_WRITE)
        prot |= VFIO_USER_DMA_WRITE_OK;
    int fd = -1;
    struct stat st = {0};
    if (m->nfds == 1) {
        fd = m->fds[0];
        m->fds[0] = -1; /* the table owns it now, also when adding fails */
        if (fstat(fd, &st) < 0)
            st.st_size = -1;
    }
    int rc = vfio_user_dma_table_add(s->dma, dm.addr, dm.size, prot, fd, fd >= 0 ? dm.offset : 0);
    if (rc < 0) {
        log_dma_refusal(s, &dm, fd >= 0 ? (int64_t)st.st_size : -1, rc);
        srv_reply_err(s, &m->hdr, -rc);
        return;
    }
    const struct vfio_user_dma_region *r = vfio_user_dma_table_find(s->dma, dm.addr);
    if (r && s->ops && s->ops->dma_map)
        s->ops->dma_map(s->dev_ctx, r);
    srv_reply(s, &m->hdr, NULL, 0, NULL, 0);
}

/*
 * An unmap must name a window exactly as it was mapped; anything else gets
 * ENOENT ("no such mapping"), which tells the client more than the kernel's
 * catch-all EINVAL.
 */
void srv_handle_dma_unmap(struct vfio_user_server *s, struct vfio_user_msg *m)
{
    struct vfio_user_dma_unmap du;
    if (m->len < sizeof(du)) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    memcpy(&du, m->payload, sizeof(du));
    if (du.argsz < sizeof(du) || (du.flags & ~(uint32_t)VFIO_DMA_UNMAP_FLAG_ALL)) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    if (du.flags & VFIO_DMA_UNMAP_FLAG_ALL) {
        if (du.addr || du.size) {
            srv_reply_err(s, &m->hdr, EINVAL);
            return;
        }
        srv_dma_unmap_all(s);
    } else {
        struct vfio_user_dma_region r;
        int rc = vfio_user_dma_table_remove(s->dma, du.addr, du.size, &r);
        if (rc < 0) {
            srv_reply_err(s, &m->hdr, -rc);
            return;
        }
        /* The device lets go of the window while it is still mapped. */
        if (notify_unmap(s, &r))
            vfio_user_dma_region_quarantine(&r);
        else
            vfio_user_dma_region_release(&r);
    }
    struct iovec iov = {&du, sizeof(du)};
    srv_reply(s, &m->hdr, &iov, 1, NULL, 0);
}

/* ---- device-initiated access ------------------------------------------ */

static int flush_blocking(struct vfio_user_server *s, int64_t deadline)
{
    for (;;) {
        int rc = vfio_user_tx_flush(&s->tx, s->conn_fd);
        if (rc != -EAGAIN)
            return rc;
        rc = vfio_user_wait_fd(s->conn_fd, POLLOUT, deadline);
        if (rc)
            return rc;
    }
}

/*
 * Validate the reply to our request; copy read data out. The spec gives the
 * DMA_WRITE reply a 4-byte count (12 bytes in all); clients that echo the
 * 16-byte request header, or send no payload at all, are accepted too.
 */
static int check_dma_reply(const struct vfio_user_msg *m, uint16_t cmd, uint64_t addr, uint64_t count, void *rbuf)
{
    if (m->hdr.cmd != cmd)
        return -EPROTO;
    if (m->hdr.flags & VFIO_USER_F_ERROR)
        return m->hdr.error_no > 0 && m->hdr.error_no < 4096 ? -(int)m->hdr.error_no : -EIO;
    struct vfio_user_dma_access da;
    if (!rbuf) {
        uint64_t got_addr;
        uint32_t count32;
        if (m->len == 0)
            return 0;
        if (m->len != 12 && m->len != sizeof(da))
            return -EPROTO;
        memcpy(&got_addr, m->payload, sizeof(got_addr));
        memcpy(&count32, m->payload + 8, sizeof(count32));
        uint64_t got_count = count32;
        if (m->len == sizeof(da))
            memcpy(&got_count, m->payload + 8, sizeof(got_count));
        return (got_addr == addr && got_count == count) ? 0 : -EPROTO;
    }
    if (m->len != sizeof(da) + count)
        return -EPROTO;
    memcpy(&da, m->payload, sizeof(da));
    if (da.addr != addr || da.count != count)
        return -EPROTO;
    memcpy(rbuf, m->payload + sizeof(da), count);
    return 0;
}

/*
 * Wait for the reply to msg_id. Commands that arrive meanwhile are parked
 * and handled by the next poll, never here: the caller may be in the middle
 * of handling one.
 */
static int wait_dma_reply(struct vfio_user_server *s, uint16_t msg_id, uint16_t cmd, uint64_t addr, uint64_t count,
                          void *rbuf, int64_t deadline)
{
    struct vfio_user_rx *rx = s->rx_busy ? &s->wait_rx : &s->rx;
    for (;;) {
        int rc = vfio_user_rx_step(rx, s->conn_fd);
        if (rc == 0) {
            rc = vfio_user_wait_fd(s->conn_fd, POLLIN, deadline);
            if (rc == -ETIMEDOUT && rx == &s->wait_rx && rx->hdr_got > 0)
                srv_request_disconnect(s, "DMA reply timed out mid-message");
            if (rc)
                return rc;
            continue;
        }
        if (rc < 0) {
            srv_request_disconnect(s, "broken stream while waiting for a DMA reply");
            return -ECONNRESET;
        }
        struct vfio_user_msg *m = &rx->msg;
        bool is_reply = (m->hdr.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_REPLY;
        if (is_reply && m->hdr.msg_id == msg_id) {
            rc = check_dma_reply(m, cmd, addr, count, rbuf);
            vfio_user_rx_release(rx);
            if (rc == -EPROTO)
                srv_request_disconnect(s, "malformed DMA reply");
            return rc;
        }
        if (is_reply) {
            VNVME_DEBUG(SRV_LOG, "dropping unexpected reply msg %u", m->hdr.msg_id);
        } else if (!srv_queue_push(s, m)) {
            vfio_user_rx_release(rx);
            srv_request_disconnect(s, "too many commands while waiting for a DMA reply");
            return -ECONNRESET;
        }
        vfio_user_rx_release(rx);
    }
}

static int dma_by_message(struct vfio_user_server *s, uint64_t iova, uint8_t *buf, size_t len, bool is_write)
{
    uint32_t chunk_max = s->max_data_xfer_size;
    if (s->peer.max_data_xfer_size < chunk_max)
        chunk_max = s->peer.max_data_xfer_size;
    uint16_t cmd = is_write ? VFIO_USER_DMA_WRITE : VFIO_USER_DMA_READ;
    while (len) {
        if (s->want_disconnect)
            return -ECONNRESET;
        size_t n = len < chunk_max ? len : chunk_max;
        int64_t deadline = vfio_user_now_ms() + SRV_DMA_TIMEOUT_MS;
        struct vfio_user_dma_access da = {.addr = iova, .count = n};
        struct vfio_user_header h = {
            .msg_id = s->next_msg_id++,
            .cmd = cmd,
            .msg_size = (uint32_t)(sizeof(h) + sizeof(da) + (is_write ? n : 0)),
            .flags = VFIO_USER_F_TYPE_COMMAND,
        };
        struct iovec iov[2] = {{&da, sizeof(da)}, {buf, is_write ? n : 0}};
        /* tx_send needs an empty queue: a reply may still be half sent. */
        int rc = flush_blocking(s, deadline);
        if (rc == 0)
            rc = vfio_user_tx_send(&s->tx, s->conn_fd, &h, iov, is_write ? 2 : 1, NULL, 0);
        if (rc == 0)
            rc = flush_blocking(s, deadline);
        if (rc) {
            srv_request_disconnect(s, "cannot send DMA request");
            return rc == -ETIMEDOUT ? rc : -ECONNRESET;
        }
        rc = wait_dma_reply(s, h.msg_id, cmd, iova, n, is_write ? NULL : buf, deadline);
        if (rc)
            return rc;
        iova += n;
        buf += n;
        len -= n;
    }
    return 0;
}

static int dma_access(struct vfio_user_server *s, uint64_t iova, uint8_t *buf, size_t len, bool is_write)
{
    if (!s || (len && !buf))
        return -EINVAL;
    if (s->conn_fd < 0 || s->want_disconnect)
        return -ENOTCONN;
    if (len == 0)
        return 0;
    if (iova + len - 1 < iova)
        return -EINVAL;
    uint32_t access = is_write ? VFIO_USER_DMA_WRITE_OK : VFIO_USER_DMA_READ_OK;
    while (len) {
        const struct vfio_user_dma_region *r = vfio_user_dma_table_find(s->dma, iova);
        if (!r)
            return -EFAULT;
        if (!(r->prot & access))
            return -EACCES;
        uint64_t in_window = r->iova + r->size - iova; /* iova is inside r, so > 0 */
        size_t n = in_window < len ? (size_t)in_window : len;
        int rc;
        if (r->vaddr) {
            struct iovec v;
            rc = vfio_user_dma_translate(s->dma, iova, n, access, &v, 1);
            if (rc == 1 && v.iov_len == n) {
                if (is_write)
                    memcpy(v.iov_base, buf, n);
                else
                    memcpy(buf, v.iov_base, n);
                rc = 0;
            } else if (rc >= 0) {
                rc = -EFAULT;
            }
        } else {
            rc = dma_by_message(s, iova, buf, n, is_write);
        }
        if (rc)
            return rc;
        iova += n;
        buf += n;
        len -= n;
    }
    return 0;
}

int vfio_user_server_dma_read(struct vfio_user_server *s, uint64_t iova, void *buf, size_t len)
{
    return dma_access(s, iova, buf, len, false);
}

int vfio_user_server_dma_write(struct vfio_user_server *s, uint64_t iova, const void *buf, size_t len)
{
    return dma_access(s, iova, (uint8_t *)buf, len, true);
}
