/* SPDX-License-Identifier: MIT */
/*
 * Data pointers: PRP lists and SGLs from the command become iovecs into
 * client memory. Every address goes through the transport's translation,
 * and list memory is copied into local arrays once and never re-read, so a
 * host changing a list while we walk it cannot make us see two versions.
 */
#include <errno.h>
#include <string.h>

#include "nvmet.h"
#include "vnvme/vfio_user_dma.h"

#define PAGE_MASK ((uint64_t)NVMET_PAGE_SIZE - 1)
#define PRPS_PER_PAGE (NVMET_PAGE_SIZE / 8u)
#define SGL_MAX_PER_SEGMENT 256u /* one 4 KiB page of descriptors */
#define SGL_MAX_DESCRIPTORS 512u /* across all segments of one command */

static uint16_t sc(uint8_t code)
{
    return (uint16_t)(NVME_STATUS(NVME_SCT_GENERIC, code) | NVME_STATUS_DNR);
}

/* Append [iova, iova+len) to req->iov, merging with the previous iovec when contiguous. */
static uint16_t add_range(struct nvmet_req *req, uint64_t iova, uint64_t len, uint32_t access)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    int room = (int)NVMET_MAX_IOV - req->iovcnt;
    if (room <= 0)
        return sc(NVME_SC_DATA_TRANSFER_ERROR);
    struct iovec *dst = &req->iov[req->iovcnt];
    int n = c->tops->translate(c->tctx, iova, len, access, dst, room);
    if (n <= 0)
        return sc(NVME_SC_DATA_TRANSFER_ERROR);
    if (req->iovcnt > 0) {
        struct iovec *prev = dst - 1;
        if ((char *)prev->iov_base + prev->iov_len == (char *)dst->iov_base) {
            prev->iov_len += dst->iov_len;
            memmove(dst, dst + 1, (size_t)(n - 1) * sizeof(*dst));
            n--;
        }
    }
    req->iovcnt += n;
    return 0;
}

/* Copy len bytes of client memory (lists, descriptors) into buf. */
static bool read_client(struct nvmet_req *req, uint64_t iova, void *buf, uint64_t len)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    struct iovec iov[4];
    int n = c->tops->translate(c->tctx, iova, len, VFIO_USER_DMA_READ_OK, iov, 4);
    if (n <= 0)
        return false;
    char *p = buf;
    for (int i = 0; i < n; i++) {
        memcpy(p, iov[i].iov_base, iov[i].iov_len);
        p += iov[i].iov_len;
    }
    return true;
}

static uint16_t map_prp(struct nvmet_req *req, uint64_t len, uint32_t access)
{
    uint64_t prp1 = req->cmd.dptr.prp1, prp2 = req->cmd.dptr.prp2;
    if (prp1 & 3)
        return sc(NVME_SC_INVALID_PRP_OFFSET);
    uint64_t first = NVMET_PAGE_SIZE - (prp1 & PAGE_MASK);
    if (first > len)
        first = len;
    uint16_t st = add_range(req, prp1, first, access);
    if (st)
        return st;
    uint64_t left = len - first;
    if (left == 0)
        return 0;
    if (left <= NVMET_PAGE_SIZE) {
        if (prp2 & PAGE_MASK)
            return sc(NVME_SC_INVALID_PRP_OFFSET);
        return add_range(req, prp2, left, access);
    }

    /* PRP2 points to a list; each full list page ends with a pointer to the next one. */
    uint64_t entries_left = (left + NVMET_PAGE_SIZE - 1) / NVMET_PAGE_SIZE;
    uint64_t list = prp2;
    uint64_t list_pages = 0;
    if (list & 7)
        return sc(NVME_SC_INVALID_PRP_OFFSET);
    uint64_t ents[PRPS_PER_PAGE];
    while (entries_left) {
        /* Each list page holds at least one data entry, so this bounds the walk. */
        if (++list_pages > entries_left + 1 + NVMET_MAX_DATA_LEN / NVMET_PAGE_SIZE)
            return sc(NVME_SC_DATA_TRANSFER_ERROR);
        uint64_t room = (NVMET_PAGE_SIZE - (list & PAGE_MASK)) / 8;
        bool chained = entries_left > room;
        uint64_t n = chained ? room : entries_left;
        if (!read_client(req, list, ents, n * 8))
            return sc(NVME_SC_DATA_TRANSFER_ERROR);
        uint64_t data_n = chained ? n - 1 : n;
        for (uint64_t i = 0; i < data_n; i++) {
            if (ents[i] & PAGE_MASK)
                return sc(NVME_SC_INVALID_PRP_OFFSET);
            uint64_t chunk = left < NVMET_PAGE_SIZE ? left : NVMET_PAGE_SIZE;
            st = add_range(req, ents[i], chunk, access);
            if (st)
                return st;
            left -= chunk;
        }
        entries_left -= data_n;
        if (chained) {
            list = ents[n - 1];
            if (list & PAGE_MASK)
                return sc(NVME_SC_INVALID_PRP_OFFSET);
        }
    }
    return 0;
}

static uint8_t sgl_type(const struct nvme_sgl_desc *d)
{
    return d->type >> 4;
}

static uint8_t sgl_subtype(const struct nvme_sgl_desc *d)
{
    return d->type & 0xf;
}

static uint16_t sgl_data_block(struct nvmet_req *req, const struct nvme_sgl_desc *d, uint64_t *left,
                               uint32_t access)
{
    if (sgl_subtype(d) != NVME_SGL_SUBTYPE_ADDRESS)
        return sc(NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
    /* A list describing more than the transfer is allowed; the excess is not used. */
    uint64_t n = d->length < *left ? d->length : *left;
    if (n == 0)
        return 0;
    uint16_t st = add_range(req, d->addr, n, access);
    if (st)
        return st;
    *left -= n;
    return 0;
}

static bool is_segment(const struct nvme_sgl_desc *d)
{
    return sgl_type(d) == NVME_SGL_TYPE_SEGMENT || sgl_type(d) == NVME_SGL_TYPE_LAST_SEGMENT;
}

static uint16_t map_sgl(struct nvmet_req *req, uint64_t len, uint32_t access)
{
    struct nvme_sgl_desc d = req->cmd.dptr.sgl1;
    struct nvme_sgl_desc seg[SGL_MAX_PER_SEGMENT];
    uint64_t left = len;
    uint32_t total = 1;

    for (;;) {
        uint8_t t = sgl_type(&d);
        if (t == NVME_SGL_TYPE_DATA_BLOCK) {
            uint16_t st = sgl_data_block(req, &d, &left, access);
            if (st)
                return st;
            break;
        }
        if (!is_segment(&d))
            return sc(NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID); /* bit bucket, keyed, vendor: not supported */
        if (sgl_subtype(&d) != NVME_SGL_SUBTYPE_ADDRESS)
            return sc(NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
        if (d.length == 0 || d.length % sizeof(struct nvme_sgl_desc))
            return sc(NVME_SC_INVALID_SGL_SEG_DESCRIPTOR);
        uint32_t count = d.length / sizeof(struct nvme_sgl_desc);
        if (count > SGL_MAX_PER_SEGMENT || total + count > SGL_MAX_DESCRIPTORS)
            return sc(NVME_SC_INVALID_NUM_SGL_DESCRIPTORS);
        total += count;
        if (!read_client(req, d.addr, seg, d.length))
            return sc(NVME_SC_DATA_TRANSFER_ERROR);
        bool last_segment = t == NVME_SGL_TYPE_LAST_SEGMENT;
        bool next = false;
        for (uint32_t i = 0; i < count; i++) {
            if (sgl_type(&seg[i]) == NVME_SGL_TYPE_DATA_BLOCK) {
                uint16_t st = sgl_data_block(req, &seg[i], &left, access);
                if (st)
                    return st;
            } else if (is_segment(&seg[i])) {
                /* Only a Segment may chain, and only from its last descriptor. */
                if (last_segment || i != count - 1)
                    return sc(NVME_SC_INVALID_SGL_SEG_DESCRIPTOR);
                d = seg[i];
                next = true;
            } else {
                return sc(NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
            }
        }
        if (!next || left == 0)
            break;
    }
    if (left)
        return sc(NVME_SC_DATA_SGL_LENGTH_INVALID);
    return 0;
}

uint16_t nvmet_req_map_data(struct nvmet_req *req, uint64_t len, uint32_t access)
{
    req->iovcnt = 0;
    req->data_len = 0;
    if (len == 0)
        return 0;
    if (len > NVMET_MAX_DATA_LEN)
        return sc(NVME_SC_INVALID_FIELD);
    uint32_t psdt = (req->cmd.flags & NVME_SQE_PSDT_MASK) >> NVME_SQE_PSDT_SHIFT;
    uint16_t st;
    switch (psdt) {
    case NVME_PSDT_PRP:
        st = map_prp(req, len, access);
        break;
    case NVME_PSDT_SGL_MPTR_CONTIG:
    case NVME_PSDT_SGL_MPTR_SGL:
        /* Admin commands use PRPs only (SGLs are for the NVM command set). */
        if (req->sq->qid == 0)
            return sc(NVME_SC_INVALID_FIELD);
        st = map_sgl(req, len, access);
        break;
    default:
        return sc(NVME_SC_INVALID_FIELD);
    }
    if (st) {
        req->iovcnt = 0;
        return st;
    }
    req->data_len = len;
    return 0;
}

uint16_t nvmet_req_copy_to_host(struct nvmet_req *req, const void *buf, size_t len)
{
    uint16_t st = nvmet_req_map_data(req, len, VFIO_USER_DMA_WRITE_OK);
    if (st)
        return st;
    const char *p = buf;
    for (int i = 0; i < req->iovcnt; i++) {
        memcpy(req->iov[i].iov_base, p, req->iov[i].iov_len);
        p += req->iov[i].iov_len;
    }
    return 0;
}

uint16_t nvmet_req_copy_from_host(struct nvmet_req *req, void *buf, size_t len)
{
    uint16_t st = nvmet_req_map_data(req, len, VFIO_USER_DMA_READ_OK);
    if (st)
        return st;
    char *p = buf;
    for (int i = 0; i < req->iovcnt; i++) {
        memcpy(p, req->iov[i].iov_base, req->iov[i].iov_len);
        p += req->iov[i].iov_len;
    }
    return 0;
}
