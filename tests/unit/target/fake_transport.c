/* SPDX-License-Identifier: MIT */
#include "fake_transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- transport ops ---- */

static int ft_translate(void *tctx, uint64_t iova, uint64_t len, uint32_t access, struct iovec *iov, int max_iov)
{
    struct ft *ft = tctx;
    return vfio_user_dma_translate(ft->dma, iova, len, access, iov, max_iov);
}

static void ft_irq(void *tctx, uint16_t vector)
{
    struct ft *ft = tctx;
    if (vector < FT_NR_VECTORS)
        ft->irq_count[vector]++;
    ft->irq_total++;
}

static void ft_status_changed(void *tctx, uint32_t csts)
{
    struct ft *ft = tctx;
    ft->status_changes++;
    ft->last_csts = csts;
}

const struct nvmet_transport_ops ft_ops = {
    .translate = ft_translate,
    .irq = ft_irq,
    .status_changed = ft_status_changed,
};

/* ---- RAM bdev with failure injection ---- */

static int ftb_channel_create(struct vnvme_bdev *b, void **ch_ctx)
{
    *ch_ctx = b->ctx;
    return 0;
}

static void ftb_channel_destroy(struct vnvme_bdev *b, void *ch_ctx)
{
    (void)b;
    (void)ch_ctx;
}

static int ftb_copy_iov(uint8_t *p, const struct iovec *iov, int iovcnt, uint64_t len, bool to_iov, bool compare)
{
    uint64_t done = 0;
    for (int i = 0; i < iovcnt && done < len; i++) {
        uint64_t n = iov[i].iov_len;
        if (n > len - done)
            n = len - done;
        if (compare) {
            if (memcmp(p + done, iov[i].iov_base, n) != 0)
                return -EILSEQ;
        } else if (to_iov) {
            memcpy(iov[i].iov_base, p + done, n);
        } else {
            memcpy(p + done, iov[i].iov_base, n);
        }
        done += n;
    }
    return done == len ? 0 : -EINVAL;
}

static int ftb_execute(struct ft_bdev *fb, struct vnvme_bdev_io *io)
{
    struct vnvme_bdev *b = &fb->bdev;
    if (io->offset_blocks > b->num_blocks || io->num_blocks > b->num_blocks - io->offset_blocks)
        return -EINVAL;
    uint8_t *p = fb->data + io->offset_blocks * b->block_size;
    uint64_t len = io->num_blocks * b->block_size;
    switch (io->op) {
    case VNVME_BDEV_READ:
        return ftb_copy_iov(p, io->iov, io->iovcnt, len, true, false);
    case VNVME_BDEV_WRITE:
        return ftb_copy_iov(p, io->iov, io->iovcnt, len, false, false);
    case VNVME_BDEV_COMPARE:
        return ftb_copy_iov(p, io->iov, io->iovcnt, len, false, true);
    case VNVME_BDEV_WRITE_ZEROES:
    case VNVME_BDEV_UNMAP:
        memset(p, 0, len);
        return 0;
    case VNVME_BDEV_FLUSH:
        return 0;
    }
    return -EINVAL;
}

static int ftb_submit(struct vnvme_bdev *b, void *ch_ctx, struct vnvme_bdev_io *io)
{
    struct ft_bdev *fb = ch_ctx;
    (void)b;
    if (fb->inject_submit)
        return fb->inject_submit;
    fb->nr_submitted++;
    fb->last_op = io->op;
    fb->last_fua = io->fua;
    if (io->op == VNVME_BDEV_FLUSH)
        fb->nr_flush++;
    if (io->op == VNVME_BDEV_UNMAP)
        fb->nr_unmap++;
    int st = fb->inject_status ? fb->inject_status : ftb_execute(fb, io);
    if (fb->deferred) {
        io->priv[0] = (uint64_t)(int64_t)st;
        io->next = fb->pending;
        fb->pending = io;
        return 0;
    }
    io->cb(io, st);
    return 0;
}

static int ftb_poll(struct vnvme_bdev *b, void *ch_ctx)
{
    struct ft_bdev *fb = ch_ctx;
    (void)b;
    int n = 0;
    while (fb->pending && !fb->hold) {
        struct vnvme_bdev_io *io = fb->pending;
        fb->pending = io->next;
        io->cb(io, (int)(int64_t)io->priv[0]);
        n++;
    }
    return n;
}

static int ftb_abort(struct vnvme_bdev *b, void *ch_ctx, struct vnvme_bdev_io *io)
{
    struct ft_bdev *fb = ch_ctx;
    (void)b;
    if (!fb->recallable)
        return -ENOENT;
    for (struct vnvme_bdev_io **pp = &fb->pending; *pp; pp = &(*pp)->next) {
        if (*pp != io)
            continue;
        *pp = io->next;
        io->cb(io, -ECANCELED);
        return 0;
    }
    return -ENOENT;
}

static int ftb_channel_fd(struct vnvme_bdev *b, void *ch_ctx)
{
    (void)b;
    (void)ch_ctx;
    return -1;
}

static void ftb_destroy(struct vnvme_bdev *b)
{
    (void)b;
}

static const struct vnvme_bdev_ops ftb_ops = {
    .type = "fake",
    .channel_create = ftb_channel_create,
    .channel_destroy = ftb_channel_destroy,
    .submit = ftb_submit,
    .poll = ftb_poll,
    .abort = ftb_abort,
    .channel_fd = ftb_channel_fd,
    .destroy = ftb_destroy,
};

struct ft_bdev *ft_bdev_create(const char *name, uint64_t num_blocks, uint32_t block_size)
{
    struct ft_bdev *fb = calloc(1, sizeof(*fb));
    if (!fb)
        return NULL;
    fb->data = calloc(num_blocks, block_size);
    if (!fb->data) {
        free(fb);
        return NULL;
    }
    snprintf(fb->bdev.name, sizeof(fb->bdev.name), "%s", name);
    for (int i = 0; i < 16; i++)
        fb->bdev.uuid[i] = (uint8_t)(0x10 + i + name[0]);
    fb->bdev.block_size = block_size;
    fb->bdev.num_blocks = num_blocks;
    fb->bdev.volatile_write_cache = true;
    fb->bdev.supports_unmap = true;
    fb->bdev.supports_write_zeroes = true;
    fb->bdev.ops = &ftb_ops;
    fb->bdev.ctx = fb;
    return fb;
}

void ft_bdev_free(struct ft_bdev *fb)
{
    if (!fb)
        return;
    free(fb->data);
    free(fb);
}

/* ---- setup ---- */

struct ft *ft_create(void)
{
    struct ft *ft = calloc(1, sizeof(*ft));
    if (!ft)
        return NULL;
    ft->memfd = memfd_create("ft-guest-mem", MFD_CLOEXEC);
    if (ft->memfd < 0 || ftruncate(ft->memfd, (off_t)FT_MEM_SIZE) != 0)
        goto fail;
    ft->mem = mmap(NULL, FT_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ft->memfd, 0);
    if (ft->mem == MAP_FAILED) {
        ft->mem = NULL;
        goto fail;
    }
    ft->dma = vfio_user_dma_table_create(16);
    if (!ft->dma)
        goto fail;
    /* The table owns the fd it is given: hand it a duplicate. */
    int fd = dup(ft->memfd);
    if (fd < 0 || vfio_user_dma_table_add(ft->dma, FT_MEM_IOVA, FT_MEM_SIZE,
                                          VFIO_USER_DMA_READ_OK | VFIO_USER_DMA_WRITE_OK, fd, 0) != 0)
        goto fail;
    ft->alloc_next = FT_MEM_IOVA;
    ft->ss = nvmet_subsys_create("nqn.2024-01.io.vnvme:test", "SN0001", "vnvme test", NVMET_MAX_NSID);
    if (!ft->ss)
        goto fail;
    ft->c = calloc(1, sizeof(*ft->c));
    if (!ft->c)
        goto fail;
    if (nvmet_ctrlr_init(ft->c, ft->ss, &ft_ops, ft, ft->doorbells) != 0) {
        free(ft->c);
        ft->c = NULL;
        goto fail;
    }
    return ft;
fail:
    ft_destroy(ft);
    return NULL;
}

void ft_destroy(struct ft *ft)
{
    if (!ft)
        return;
    if (ft->c) {
        nvmet_ctrlr_fini(ft->c);
        free(ft->c);
    }
    if (ft->ss)
        nvmet_subsys_destroy(ft->ss);
    for (uint32_t i = 0; i < ft->nr_bdevs; i++)
        ft_bdev_free(ft->bdevs[i]);
    if (ft->dma)
        vfio_user_dma_table_destroy(ft->dma);
    if (ft->mem)
        munmap(ft->mem, FT_MEM_SIZE);
    if (ft->memfd >= 0)
        close(ft->memfd);
    free(ft);
}

uint64_t ft_alloc(struct ft *ft, uint64_t size, uint64_t align)
{
    if (align == 0)
        align = 1;
    uint64_t at = (ft->alloc_next + align - 1) & ~(align - 1);
    if (at + size > FT_MEM_IOVA + FT_MEM_SIZE) {
        fprintf(stderr, "ft_alloc: guest memory exhausted\n");
        abort();
    }
    ft->alloc_next = at + size;
    memset(ft->mem + (at - FT_MEM_IOVA), 0, size);
    return at;
}

void *ft_ptr(struct ft *ft, uint64_t iova)
{
    if (iova < FT_MEM_IOVA || iova >= FT_MEM_IOVA + FT_MEM_SIZE)
        return NULL;
    return ft->mem + (iova - FT_MEM_IOVA);
}

void *ft_local(struct ft *ft, uint64_t iova)
{
    return vfio_user_dma_ptr(ft->dma, iova, 1, VFIO_USER_DMA_READ_OK);
}

/* ---- registers ---- */

int ft_reg_write32(struct ft *ft, uint64_t off, uint32_t v)
{
    return nvmet_ctrlr_reg_write(ft->c, off, &v, 4);
}

int ft_reg_write64(struct ft *ft, uint64_t off, uint64_t v)
{
    return nvmet_ctrlr_reg_write(ft->c, off, &v, 8);
}

uint32_t ft_reg_read32(struct ft *ft, uint64_t off)
{
    uint32_t v = 0xdeadbeef;
    if (nvmet_ctrlr_reg_read(ft->c, off, &v, 4) != 0)
        return 0xdeadbeef;
    return v;
}

uint64_t ft_reg_read64(struct ft *ft, uint64_t off)
{
    uint64_t v = 0xdeadbeefdeadbeefull;
    if (nvmet_ctrlr_reg_read(ft->c, off, &v, 8) != 0)
        return 0xdeadbeefdeadbeefull;
    return v;
}

uint32_t ft_enable(struct ft *ft, uint32_t aq_size)
{
    struct ft_queue *q = &ft->q[0];
    memset(q, 0, sizeof(*q));
    q->used = true;
    q->sq_size = q->cq_size = aq_size;
    q->sq_iova = ft_alloc(ft, (uint64_t)aq_size * sizeof(struct nvme_sqe), 4096);
    q->cq_iova = ft_alloc(ft, (uint64_t)aq_size * sizeof(struct nvme_cqe), 4096);
    q->phase = 1;
    ft_reg_write32(ft, NVME_REG_AQA, ((aq_size - 1) << 16) | (aq_size - 1));
    ft_reg_write64(ft, NVME_REG_ASQ, q->sq_iova);
    ft_reg_write64(ft, NVME_REG_ACQ, q->cq_iova);
    ft_reg_write32(ft, NVME_REG_CC, (6u << NVME_CC_IOSQES_SHIFT) | (4u << NVME_CC_IOCQES_SHIFT) | NVME_CC_EN);
    return ft_reg_read32(ft, NVME_REG_CSTS);
}

uint32_t ft_disable(struct ft *ft)
{
    uint32_t cc = ft_reg_read32(ft, NVME_REG_CC);
    ft_reg_write32(ft, NVME_REG_CC, cc & ~NVME_CC_EN);
    memset(ft->q, 0, sizeof(ft->q));
    memset(ft->doorbells, 0, sizeof(ft->doorbells));
    return ft_reg_read32(ft, NVME_REG_CSTS);
}

int ft_create_io_queues(struct ft *ft, uint16_t qid, uint32_t size, bool ien, uint16_t iv)
{
    struct ft_queue *q = &ft->q[qid];
    memset(q, 0, sizeof(*q));
    q->sq_size = q->cq_size = size;
    q->sq_iova = ft_alloc(ft, (uint64_t)size * sizeof(struct nvme_sqe), 4096);
    q->cq_iova = ft_alloc(ft, (uint64_t)size * sizeof(struct nvme_cqe), 4096);
    q->phase = 1;
    int rc = nvmet_cq_create(ft->c, qid, q->cq_iova, size, ien, iv);
    if (rc != 0)
        return rc;
    rc = nvmet_sq_create(ft->c, qid, q->sq_iova, size, qid, 0);
    if (rc != 0)
        return rc;
    q->used = true;
    return 0;
}

int ft_add_ns(struct ft *ft, uint32_t nsid, uint64_t num_blocks, uint32_t block_size, struct ft_bdev **out)
{
    if (ft->nr_bdevs >= sizeof(ft->bdevs) / sizeof(ft->bdevs[0]))
        return -ENOSPC;
    char name[32];
    snprintf(name, sizeof(name), "ftb%u", ft->nr_bdevs);
    struct ft_bdev *fb = ft_bdev_create(name, num_blocks, block_size);
    if (!fb)
        return -ENOMEM;
    int rc = nvmet_subsys_add_ns(ft->ss, &fb->bdev, nsid, NULL, NULL, NULL);
    if (rc < 0) {
        ft_bdev_free(fb);
        return rc;
    }
    ft->bdevs[ft->nr_bdevs++] = fb;
    if (out)
        *out = fb;
    return rc;
}

/* ---- host side queue operations ---- */

void ft_queue_sqe(struct ft *ft, uint16_t qid, const struct nvme_sqe *sqe)
{
    struct ft_queue *q = &ft->q[qid];
    struct nvme_sqe *ring = ft_ptr(ft, q->sq_iova);
    memcpy(&ring[q->sq_tail], sqe, sizeof(*sqe));
    q->sq_tail = (q->sq_tail + 1) % q->sq_size;
}

void ft_ring_sq(struct ft *ft, uint16_t qid)
{
    __atomic_store_n(&ft->doorbells[2 * qid], ft->q[qid].sq_tail, __ATOMIC_RELEASE);
}

void ft_submit(struct ft *ft, uint16_t qid, const struct nvme_sqe *sqe)
{
    ft_queue_sqe(ft, qid, sqe);
    ft_ring_sq(ft, qid);
}

int ft_poll(struct ft *ft)
{
    return nvmet_ctrlr_poll(ft->c);
}

bool ft_get_cqe_ex(struct ft *ft, uint16_t qid, struct nvme_cqe *out, bool ring_db)
{
    struct ft_queue *q = &ft->q[qid];
    struct nvme_cqe *ring = ft_ptr(ft, q->cq_iova);
    uint16_t st = __atomic_load_n(&ring[q->cq_head].status, __ATOMIC_ACQUIRE);
    if ((st & 1u) != q->phase)
        return false;
    memcpy(out, &ring[q->cq_head], sizeof(*out));
    q->cq_head++;
    if (q->cq_head == q->cq_size) {
        q->cq_head = 0;
        q->phase ^= 1u;
    }
    if (ring_db)
        __atomic_store_n(&ft->doorbells[2 * qid + 1], q->cq_head, __ATOMIC_RELEASE);
    return true;
}

bool ft_get_cqe(struct ft *ft, uint16_t qid, struct nvme_cqe *out)
{
    return ft_get_cqe_ex(ft, qid, out, true);
}

int ft_cmd(struct ft *ft, uint16_t qid, const struct nvme_sqe *sqe, struct nvme_cqe *out)
{
    struct nvme_cqe tmp;
    if (!out)
        out = &tmp;
    ft_submit(ft, qid, sqe);
    for (int i = 0; i < 1000; i++) {
        ft_poll(ft);
        if (ft_get_cqe(ft, qid, out))
            return ft_status(out);
    }
    return -1;
}

void ft_sqe_rw(struct nvme_sqe *sqe, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, uint64_t prp1,
               uint64_t prp2)
{
    static uint16_t next_cid;
    memset(sqe, 0, sizeof(*sqe));
    sqe->opc = opc;
    sqe->cid = ++next_cid;
    sqe->nsid = nsid;
    sqe->dptr.prp1 = prp1;
    sqe->dptr.prp2 = prp2;
    sqe->cdw10 = (uint32_t)slba;
    sqe->cdw11 = (uint32_t)(slba >> 32);
    sqe->cdw12 = nlb ? (nlb - 1) & NVME_RW_NLB_MASK : 0;
}
