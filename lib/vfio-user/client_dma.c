/* SPDX-License-Identifier: MIT */
/*
 * The client's memory as shared with DMA_MAP, and the serving of the
 * server's DMA_READ/DMA_WRITE requests from it.
 *
 * A request is checked completely (size, range, permission across adjacent
 * windows) before a single byte moves, so a rejected DMA_WRITE never leaves
 * memory half written.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client_priv.h"
#include "common/log.h"

#define COMP "vfio-user-client"

void client_dma_table_free(struct client_dma_table *t)
{
    free(t->recs);
    memset(t, 0, sizeof(*t));
}

/* Index of the first record whose end lies above addr (n when none). */
static size_t first_ending_after(const struct client_dma_table *t, uint64_t addr)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct client_dma_rec *r = &t->recs[mid];
        if (r->iova + (r->size - 1) < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const struct client_dma_rec *rec_containing(const struct client_dma_table *t, uint64_t addr)
{
    size_t i = first_ending_after(t, addr);
    if (i < t->n && t->recs[i].iova <= addr)
        return &t->recs[i];
    return NULL;
}

/* 0 when [addr, addr+count) is inside windows with prot and local memory, else EFAULT/EACCES. */
static int check_range(const struct client_dma_table *t, uint64_t addr, uint64_t count, uint32_t prot)
{
    if (count == 0)
        return EINVAL;
    if (count - 1 > UINT64_MAX - addr)
        return EFAULT;
    uint64_t cur = addr;
    uint64_t last = addr + (count - 1);
    for (;;) {
        const struct client_dma_rec *r = rec_containing(t, cur);
        if (!r || !r->vaddr)
            return EFAULT;
        if ((r->prot & prot) != prot)
            return EACCES;
        uint64_t r_last = r->iova + (r->size - 1);
        if (r_last >= last)
            return 0;
        cur = r_last + 1;
    }
}

/* Copy between a checked range and buf; to_client picks the direction. */
static void copy_range(const struct client_dma_table *t, uint64_t addr, uint8_t *buf, uint64_t count, bool to_client)
{
    while (count > 0) {
        const struct client_dma_rec *r = rec_containing(t, addr);
        uint64_t rel = addr - r->iova;
        uint64_t n = r->size - rel < count ? r->size - rel : count;
        if (to_client)
            memcpy(r->vaddr + rel, buf, (size_t)n);
        else
            memcpy(buf, r->vaddr + rel, (size_t)n);
        buf += n;
        addr += n;
        count -= n;
    }
}

static int send_reply(struct vfio_user_client *c, const struct vfio_user_header *req, const struct iovec *iov,
                      int iovcnt, int err)
{
    /* No_reply asks for silence on success only; failures are always reported. */
    if (!err && (req->flags & VFIO_USER_F_NO_REPLY))
        return 0;
    uint32_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += (uint32_t)iov[i].iov_len;
    struct vfio_user_header h;
    vfio_user_reply_header(&h, req, err ? 0 : len, err);
    return vfio_user_send_all(c->sock, &h, iov, err ? 0 : iovcnt, NULL, 0, c->timeout_ms);
}

static int serve_dma_read(struct vfio_user_client *c, const struct vfio_user_msg *msg)
{
    struct vfio_user_dma_access req;
    if (msg->len != sizeof(req))
        return send_reply(c, &msg->hdr, NULL, 0, EINVAL);
    memcpy(&req, msg->payload, sizeof(req));
    if (req.count > CLIENT_MAX_DATA_XFER)
        return send_reply(c, &msg->hdr, NULL, 0, EINVAL);
    int err = check_range(&c->dma, req.addr, req.count, VFIO_USER_DMA_F_READ);
    if (err) {
        VNVME_DEBUG(COMP, "DMA_READ [%#lx, +%#lx) refused: %s", (unsigned long)req.addr, (unsigned long)req.count,
                    strerror(err));
        return send_reply(c, &msg->hdr, NULL, 0, err);
    }
    uint8_t *data = malloc((size_t)req.count);
    if (!data)
        return send_reply(c, &msg->hdr, NULL, 0, ENOMEM);
    copy_range(&c->dma, req.addr, data, req.count, false);
    struct iovec iov[2] = {{.iov_base = &req, .iov_len = sizeof(req)},
                           {.iov_base = data, .iov_len = (size_t)req.count}};
    int rc = send_reply(c, &msg->hdr, iov, 2, 0);
    free(data);
    c->dma_served++;
    return rc;
}

/* The spec's DMA_WRITE reply is address (8 bytes) and count (4 bytes), not the 16-byte request struct. */
struct dma_write_reply {
    uint64_t addr;
    uint32_t count;
} __attribute__((packed));

static int serve_dma_write(struct vfio_user_client *c, const struct vfio_user_msg *msg)
{
    struct vfio_user_dma_access req;
    if (msg->len < sizeof(req))
        return send_reply(c, &msg->hdr, NULL, 0, EINVAL);
    memcpy(&req, msg->payload, sizeof(req));
    if (req.count > CLIENT_MAX_DATA_XFER || msg->len - sizeof(req) != req.count)
        return send_reply(c, &msg->hdr, NULL, 0, EINVAL);
    int err = check_range(&c->dma, req.addr, req.count, VFIO_USER_DMA_F_WRITE);
    if (err) {
        VNVME_DEBUG(COMP, "DMA_WRITE [%#lx, +%#lx) refused: %s", (unsigned long)req.addr, (unsigned long)req.count,
                    strerror(err));
        return send_reply(c, &msg->hdr, NULL, 0, err);
    }
    copy_range(&c->dma, req.addr, msg->payload + sizeof(req), req.count, true);
    struct dma_write_reply rep = {.addr = req.addr, .count = (uint32_t)req.count};
    struct iovec iov = {.iov_base = &rep, .iov_len = sizeof(rep)};
    c->dma_served++;
    return send_reply(c, &msg->hdr, &iov, 1, 0);
}

int client_serve_request(struct vfio_user_client *c, const struct vfio_user_msg *msg)
{
    switch (msg->hdr.cmd) {
    case VFIO_USER_DMA_READ:
        return serve_dma_read(c, msg);
    case VFIO_USER_DMA_WRITE:
        return serve_dma_write(c, msg);
    default:
        VNVME_WARN(COMP, "server sent unsupported command %s (%u)", vfio_user_command_name(msg->hdr.cmd),
                   msg->hdr.cmd);
        return send_reply(c, &msg->hdr, NULL, 0, EOPNOTSUPP);
    }
}

static bool overlaps_any(const struct client_dma_table *t, uint64_t iova, uint64_t size)
{
    size_t i = first_ending_after(t, iova);
    return i < t->n && t->recs[i].iova <= iova + (size - 1);
}

static int table_reserve(struct client_dma_table *t)
{
    if (t->n < t->cap)
        return 0;
    size_t cap = t->cap ? t->cap * 2 : 16;
    struct client_dma_rec *n = realloc(t->recs, cap * sizeof(*n));
    if (!n)
        return -ENOMEM;
    t->recs = n;
    t->cap = cap;
    return 0;
}

/* Needs a prior table_reserve(); cannot fail. */
static void table_insert(struct client_dma_table *t, const struct client_dma_rec *rec)
{
    size_t i = first_ending_after(t, rec->iova);
    memmove(&t->recs[i + 1], &t->recs[i], (t->n - i) * sizeof(*rec));
    t->recs[i] = *rec;
    t->n++;
}

int vfio_user_client_dma_map(struct vfio_user_client *c, uint64_t iova, uint64_t size, uint32_t prot, int fd,
                             uint64_t fd_offset, void *vaddr)
{
    if (size == 0 || size - 1 > UINT64_MAX - iova || (prot & ~(VFIO_USER_DMA_F_READ | VFIO_USER_DMA_F_WRITE)))
        return -EINVAL;
    if (overlaps_any(&c->dma, iova, size))
        return -EEXIST;
    if (c->dma.n >= c->server_caps.max_dma_maps)
        return -ENOSPC;
    if (fd >= 0 && c->server_caps.max_msg_fds == 0)
        return -EOPNOTSUPP;
    /* Room first, so that a map the server accepted is never forgotten locally. */
    int rc = table_reserve(&c->dma);
    if (rc)
        return rc;
    struct vfio_user_dma_map m = {
        .argsz = sizeof(m),
        .flags = prot,
        .offset = fd >= 0 ? fd_offset : 0,
        .addr = iova,
        .size = size,
    };
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
    rc = client_call(c, VFIO_USER_DMA_MAP, 0, &iov, 1, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);
    if (rc)
        return rc;
    vfio_user_rx_release(&c->rx);
    struct client_dma_rec rec = {.iova = iova, .size = size, .prot = prot, .vaddr = vaddr};
    table_insert(&c->dma, &rec);
    return 0;
}

static int send_unmap(struct vfio_user_client *c, uint32_t flags, uint64_t iova, uint64_t size)
{
    struct vfio_user_dma_unmap u = {.argsz = sizeof(u), .flags = flags, .addr = iova, .size = size};
    struct iovec iov = {.iov_base = &u, .iov_len = sizeof(u)};
    int rc = client_call(c, VFIO_USER_DMA_UNMAP, 0, &iov, 1, NULL, 0);
    if (rc == 0)
        vfio_user_rx_release(&c->rx);
    return rc;
}

int vfio_user_client_dma_unmap(struct vfio_user_client *c, uint64_t iova, uint64_t size)
{
    size_t i = first_ending_after(&c->dma, iova);
    if (i >= c->dma.n || c->dma.recs[i].iova != iova || c->dma.recs[i].size != size)
        return -ENOENT;
    int rc = send_unmap(c, 0, iova, size);
    if (rc)
        return rc; /* the server may still use the window: keep serving it */
    memmove(&c->dma.recs[i], &c->dma.recs[i + 1], (c->dma.n - i - 1) * sizeof(c->dma.recs[0]));
    c->dma.n--;
    return 0;
}

int vfio_user_client_dma_unmap_all(struct vfio_user_client *c)
{
    int rc = send_unmap(c, VFIO_DMA_UNMAP_FLAG_ALL, 0, 0);
    if (rc)
        return rc;
    c->dma.n = 0;
    return 0;
}
