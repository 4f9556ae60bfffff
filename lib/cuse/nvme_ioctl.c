/* SPDX-License-Identifier: MIT */
/*
 * The Linux NVMe ioctls on top of the userspace driver, with the kernel
 * driver's (drivers/nvme/host/ioctl.c) visible behaviour: which device
 * accepts which ioctl, the return value being the NVMe status field, the
 * result written back even when the command failed. Threading and the
 * transfer limits are described in vnvme/nvme_cuse.h.
 */
#include <errno.h>
#include <linux/fs.h>
#include <linux/nvme_ioctl.h>
#include <string.h>
#include <unistd.h>

#include "vnvme/nvme_cuse.h"
#include "vnvme/nvme_host.h"

_Static_assert(sizeof(struct nvme_passthru_cmd) == 72, "passthru struct size the limits assume");
_Static_assert(sizeof(struct nvme_passthru_cmd64) == 80, "passthru64 struct size the limits assume");
_Static_assert(sizeof(struct nvme_user_io) == 48, "user_io struct size the limits assume");

#define PRINFO_PRACT (1u << 13) /* in nvme_user_io.control (CDW12 bits 31:16) */
#define T10_PI_TUPLE_SIZE 8u
#define FLBAS_EXTENDED (1u << 4)

void vnvme_cuse_ctrlr_init(struct vnvme_cuse_ctrlr *cc, struct vnvme_ctrlr *ctrlr)
{
    memset(cc, 0, sizeof(*cc));
    cc->ctrlr = ctrlr;
    pthread_rwlock_init(&cc->lock, NULL);
    vnvme_cuse_ctrlr_load_effects(cc);
}

void vnvme_cuse_ctrlr_fini(struct vnvme_cuse_ctrlr *cc)
{
    pthread_rwlock_destroy(&cc->lock);
}

int vnvme_cuse_ctrlr_poll(struct vnvme_cuse_ctrlr *cc)
{
    pthread_rwlock_wrlock(&cc->lock);
    int rc = vnvme_ctrlr_process_admin(cc->ctrlr);
    pthread_rwlock_unlock(&cc->lock);
    return rc;
}

void vnvme_cuse_ioctl_dev_fini(struct vnvme_cuse_ioctl_dev *d)
{
    if (d->qp == NULL && d->xfer == NULL)
        return;
    pthread_rwlock_wrlock(&d->cc->lock);
    if (d->qp)
        vnvme_qpair_free(d->qp);
    if (d->xfer)
        vnvme_dma_free(d->cc->ctrlr, d->xfer);
    pthread_rwlock_unlock(&d->cc->lock);
    d->qp = NULL;
    d->xfer = NULL;
}

void *vnvme_cuse_xfer_buf(struct vnvme_cuse_ioctl_dev *d)
{
    if (d->xfer == NULL)
        d->xfer = vnvme_dma_alloc(d->cc->ctrlr, VNVME_CUSE_RW_MAX, 4096);
    return d->xfer;
}

static bool is_ctrlr_dev(const struct vnvme_cuse_ioctl_dev *d)
{
    return d->nsid == 0;
}

/* The kernel sends IO_CMD on the controller device to its only namespace, refusing when there are several. */
static int ctrlr_io_target(struct vnvme_cuse_ioctl_dev *d, uint32_t *nsid)
{
    pthread_rwlock_rdlock(&d->cc->lock);
    struct vnvme_ns *ns = vnvme_ctrlr_first_ns(d->cc->ctrlr);
    int rc = 0;
    if (ns == NULL)
        rc = -ENOTTY;
    else if (vnvme_ctrlr_next_ns(d->cc->ctrlr, ns) != NULL)
        rc = -EINVAL;
    else
        *nsid = vnvme_ns_id(ns);
    pthread_rwlock_unlock(&d->cc->lock);
    return rc;
}

/* ---- planning ---- */

static int plan_passthru(struct vnvme_cuse_ioctl_dev *d, bool admin, bool is64, const void *arg,
                         struct vnvme_ioctl_xfer *x)
{
    uint32_t size = is64 ? sizeof(struct nvme_passthru_cmd64) : sizeof(struct nvme_passthru_cmd);
    x->arg_in = x->arg_out = size;
    if (!admin && is_ctrlr_dev(d)) {
        uint32_t nsid;
        int rc = is64 ? -ENOTTY : ctrlr_io_target(d, &nsid);
        if (rc)
            return rc;
    }
    if (arg == NULL)
        return 0;
    /* The two structs share their layout up to data_len. */
    const struct nvme_passthru_cmd *c = arg;
    if (c->flags != 0)
        return -EINVAL; /* fused commands cannot be passed through */
    if (NVME_OPC_XFER(c->opcode) == NVME_XFER_BIDIR)
        return -EINVAL;
    if (!admin && !is_ctrlr_dev(d) && c->nsid != d->nsid)
        return -EINVAL; /* newer kernels refuse an I/O command for another namespace */
    if ((c->data_len && c->addr == 0) || (c->metadata_len && c->metadata == 0))
        return -EFAULT;
    uint64_t total = (uint64_t)c->data_len + c->metadata_len;
    if (total > (is64 ? VNVME_CUSE_PASSTHRU64_MAX_XFER : VNVME_CUSE_PASSTHRU_MAX_XFER))
        return -EINVAL;
    x->data_addr = c->addr;
    x->data_len = c->data_len;
    x->meta_addr = c->metadata;
    x->meta_len = c->metadata_len;
    /* Like the kernel, anything that is not a write moves data from the device. */
    x->data_to_dev = NVME_OPC_XFER(c->opcode) == NVME_XFER_TO_CTRL;
    return 0;
}

struct ns_format {
    uint32_t block_size;
    uint32_t md_size;
    bool extended;
    uint64_t num_blocks;
};

static int ns_format(struct vnvme_cuse_ioctl_dev *d, struct ns_format *f)
{
    pthread_rwlock_rdlock(&d->cc->lock);
    struct vnvme_ns *ns = vnvme_ctrlr_ns(d->cc->ctrlr, d->nsid);
    if (ns != NULL) {
        f->block_size = vnvme_ns_block_size(ns);
        f->md_size = vnvme_ns_md_size(ns);
        f->extended = (vnvme_ns_data(ns)->flbas & FLBAS_EXTENDED) != 0;
        f->num_blocks = vnvme_ns_num_blocks(ns);
    }
    pthread_rwlock_unlock(&d->cc->lock);
    return ns != NULL ? 0 : -ENODEV;
}

static int plan_submit_io(struct vnvme_cuse_ioctl_dev *d, const struct nvme_user_io *io, struct vnvme_ioctl_xfer *x)
{
    x->arg_in = sizeof(*io);
    x->arg_out = 0;
    if (io == NULL)
        return 0;
    if (io->flags != 0)
        return -EINVAL;
    if (io->opcode != NVME_NVM_READ && io->opcode != NVME_NVM_WRITE && io->opcode != NVME_NVM_COMPARE)
        return -EINVAL;
    struct ns_format f;
    int rc = ns_format(d, &f);
    if (rc)
        return rc;
    uint64_t nlb = (uint64_t)io->nblocks + 1u;
    uint64_t data_len = nlb * f.block_size;
    uint64_t meta_len = nlb * f.md_size;
    if ((io->control & PRINFO_PRACT) && f.md_size == T10_PI_TUPLE_SIZE)
        meta_len = 0; /* the controller inserts/strips the protection information itself */
    if (f.extended) {
        data_len += meta_len;
        meta_len = 0;
    } else if (meta_len) {
        if (io->metadata == 0 || (io->metadata & 3u))
            return -EINVAL;
    } else if (io->metadata != 0) {
        return -EINVAL; /* metadata for a format without any */
    }
    if (io->addr == 0)
        return -EFAULT;
    x->data_to_dev = io->opcode != NVME_NVM_READ;
    uint64_t max = x->data_to_dev ? VNVME_CUSE_SUBMIT_IO_MAX_WRITE : VNVME_CUSE_SUBMIT_IO_MAX_READ;
    if (data_len + meta_len > max)
        return -EINVAL;
    x->data_addr = io->addr;
    x->data_len = (uint32_t)data_len;
    x->meta_addr = meta_len ? io->metadata : 0;
    x->meta_len = (uint32_t)meta_len;
    return 0;
}

int vnvme_ioctl_plan(struct vnvme_cuse_ioctl_dev *d, unsigned int cmd, bool compat, const void *arg, size_t arg_len,
                     struct vnvme_ioctl_xfer *x)
{
    memset(x, 0, sizeof(*x));
    if (compat)
        return -ENOSYS;
    int rc;
    switch (cmd) {
    case NVME_IOCTL_ADMIN_CMD:
    case NVME_IOCTL_ADMIN64_CMD:
    case NVME_IOCTL_IO_CMD:
    case NVME_IOCTL_IO64_CMD: {
        bool admin = cmd == NVME_IOCTL_ADMIN_CMD || cmd == NVME_IOCTL_ADMIN64_CMD;
        bool is64 = cmd == NVME_IOCTL_ADMIN64_CMD || cmd == NVME_IOCTL_IO64_CMD;
        rc = plan_passthru(d, admin, is64, NULL, x);
        if (rc || arg == NULL)
            return rc;
        if (arg_len < x->arg_in)
            return -EFAULT;
        return plan_passthru(d, admin, is64, arg, x);
    }
    case NVME_IOCTL_SUBMIT_IO:
        if (is_ctrlr_dev(d))
            return -ENOTTY;
        rc = plan_submit_io(d, NULL, x);
        if (rc || arg == NULL)
            return rc;
        if (arg_len < x->arg_in)
            return -EFAULT;
        return plan_submit_io(d, arg, x);
    case NVME_IOCTL_ID:
        return is_ctrlr_dev(d) ? -ENOTTY : 0;
    case NVME_IOCTL_RESET:
    case NVME_IOCTL_SUBSYS_RESET:
    case NVME_IOCTL_RESCAN:
        return is_ctrlr_dev(d) ? 0 : -ENOTTY;
    case BLKGETSIZE:
        x->arg_out = sizeof(unsigned long);
        return is_ctrlr_dev(d) ? -ENOTTY : 0;
    case BLKGETSIZE64:
        x->arg_out = sizeof(uint64_t);
        return is_ctrlr_dev(d) ? -ENOTTY : 0;
    case BLKSSZGET:
        x->arg_out = sizeof(int);
        return is_ctrlr_dev(d) ? -ENOTTY : 0;
    case BLKPBSZGET:
        x->arg_out = sizeof(unsigned int);
        return is_ctrlr_dev(d) ? -ENOTTY : 0;
    default:
        return -ENOTTY;
    }
}

/* ---- execution ---- */

struct sync_wait {
    volatile bool done;
    struct nvme_cqe cpl;
};

static void sync_done(void *arg, const struct nvme_cqe *cpl)
{
    struct sync_wait *w = arg;
    w->cpl = *cpl;
    w->done = true;
}

/* The ioctl's return value for a completed command: the status field, as the kernel returns it. */
static long cpl_result(const struct nvme_cqe *cpl)
{
    uint16_t st = vnvme_cpl_status(cpl);
    if ((st & 0x7ffu) == VNVME_HOST_SC_TIMEOUT)
        return -EINTR; /* the kernel's answer for a request cancelled by its timeout handling */
    return st;
}

static int ensure_qpair(struct vnvme_cuse_ioctl_dev *d)
{
    if (d->qp != NULL)
        return 0;
    /* Creating the queues is an admin exchange: exclusive, like every admin command here. */
    pthread_rwlock_wrlock(&d->cc->lock);
    d->qp = vnvme_qpair_alloc(d->cc->ctrlr, 0);
    pthread_rwlock_unlock(&d->cc->lock);
    return d->qp != NULL ? 0 : -ENOMEM;
}

/* Submit on the device's own queue pair and poll it to completion; caller holds the read lock. */
static int io_sync(struct vnvme_cuse_ioctl_dev *d, const struct nvme_sqe *cmd, void *buf, uint32_t len,
                   struct nvme_cqe *cpl)
{
    struct sync_wait w = {0};
    int rc;
    while ((rc = vnvme_qpair_submit_raw(d->qp, cmd, buf, len, sync_done, &w)) == -EAGAIN) {
        if (vnvme_qpair_process(d->qp, 0) < 0)
            return -ENXIO;
    }
    if (rc)
        return rc;
    /* Bounded: a failed controller aborts everything outstanding; a hung one times out. */
    for (unsigned idle = 0; !w.done; idle++) {
        int n = vnvme_qpair_process(d->qp, 0);
        if (n > 0)
            idle = 0;
        else if (idle > 256)
            usleep(20);
    }
    *cpl = w.cpl;
    return 0;
}

/* Commands whose opcode says "no data" but that carry some: the driver only copies back reads, so bounce here. */
static void *bounce_alloc(struct vnvme_cuse_ioctl_dev *d, uint32_t len)
{
    return vnvme_dma_alloc(d->cc->ctrlr, len, 4096);
}

static long exec_passthru(struct vnvme_cuse_ioctl_dev *d, bool admin, bool is64, void *arg,
                          const struct vnvme_ioctl_xfer *x, void *data, void *meta)
{
    const struct nvme_passthru_cmd *c = arg;
    struct nvme_sqe sqe = {.opc = c->opcode, .nsid = c->nsid, .cdw2 = c->cdw2, .cdw3 = c->cdw3,
                           .cdw10 = c->cdw10, .cdw11 = c->cdw11, .cdw12 = c->cdw12, .cdw13 = c->cdw13,
                           .cdw14 = c->cdw14, .cdw15 = c->cdw15};
    struct vnvme_ctrlr *ctrlr = d->cc->ctrlr;
    void *mbuf = NULL, *dbuf = data;
    bool own_dbuf = false;
    long ret;
    struct nvme_cqe cpl = {0};

    if (!admin && (ret = ensure_qpair(d)) != 0)
        return ret;
    if (x->data_len && NVME_OPC_XFER(c->opcode) == NVME_XFER_NONE) {
        dbuf = bounce_alloc(d, x->data_len);
        if (dbuf == NULL)
            return -ENOMEM;
        own_dbuf = true;
    }
    if (x->meta_len) {
        /* The driver has no metadata argument: the buffer comes from its pool and MPTR is ours to set. */
        mbuf = vnvme_dma_alloc(ctrlr, x->meta_len, 4);
        if (mbuf == NULL) {
            ret = -ENOMEM;
            goto out;
        }
        if (x->data_to_dev)
            memcpy(mbuf, meta, x->meta_len);
        sqe.mptr = vnvme_dma_iova(ctrlr, mbuf);
    }
    int rc;
    if (admin) {
        pthread_rwlock_wrlock(&d->cc->lock);
        rc = vnvme_ctrlr_admin_sync(ctrlr, &sqe, x->data_len ? dbuf : NULL, x->data_len, &cpl);
        pthread_rwlock_unlock(&d->cc->lock);
        if (rc == -ETIMEDOUT)
            rc = -EINTR;
    } else {
        pthread_rwlock_rdlock(&d->cc->lock);
        rc = io_sync(d, &sqe, x->data_len ? dbuf : NULL, x->data_len, &cpl);
        pthread_rwlock_unlock(&d->cc->lock);
    }
    if (rc) {
        ret = rc;
        goto out;
    }
    ret = cpl_result(&cpl);
    if (ret < 0)
        goto out;
    if (own_dbuf)
        memcpy(data, dbuf, x->data_len);
    if (mbuf && !x->data_to_dev)
        memcpy(meta, mbuf, x->meta_len);
    if (is64)
        ((struct nvme_passthru_cmd64 *)arg)->result = (uint64_t)cpl.cdw0 | (uint64_t)cpl.cdw1 << 32;
    else
        ((struct nvme_passthru_cmd *)arg)->result = cpl.cdw0;
out:
    if (own_dbuf)
        vnvme_dma_free(ctrlr, dbuf);
    if (mbuf)
        vnvme_dma_free(ctrlr, mbuf);
    return ret;
}

static long exec_submit_io(struct vnvme_cuse_ioctl_dev *d, const struct nvme_user_io *io,
                           const struct vnvme_ioctl_xfer *x, void *data, void *meta)
{
    struct nvme_sqe sqe = {.opc = io->opcode, .nsid = d->nsid, .cdw10 = (uint32_t)io->slba,
                           .cdw11 = (uint32_t)(io->slba >> 32), .cdw12 = io->nblocks | (uint32_t)io->control << 16,
                           .cdw13 = io->dsmgmt, .cdw14 = io->reftag,
                           .cdw15 = io->apptag | (uint32_t)io->appmask << 16};
    struct vnvme_ctrlr *ctrlr = d->cc->ctrlr;
    void *mbuf = NULL;
    long ret = ensure_qpair(d);
    if (ret)
        return ret;
    if (x->meta_len) {
        mbuf = vnvme_dma_alloc(ctrlr, x->meta_len, 4);
        if (mbuf == NULL)
            return -ENOMEM;
        if (x->data_to_dev)
            memcpy(mbuf, meta, x->meta_len);
        sqe.mptr = vnvme_dma_iova(ctrlr, mbuf);
    }
    struct nvme_cqe cpl = {0};
    pthread_rwlock_rdlock(&d->cc->lock);
    int rc = vnvme_ctrlr_ns(ctrlr, d->nsid) != NULL ? io_sync(d, &sqe, data, x->data_len, &cpl) : -ENODEV;
    pthread_rwlock_unlock(&d->cc->lock);
    ret = rc ? rc : cpl_result(&cpl);
    if (ret >= 0 && mbuf && !x->data_to_dev)
        memcpy(meta, mbuf, x->meta_len);
    if (mbuf)
        vnvme_dma_free(ctrlr, mbuf);
    return ret;
}

static void notify_ns_changed(struct vnvme_cuse_ioctl_dev *d)
{
    if (d->cc->ns_changed)
        d->cc->ns_changed(d->cc->ns_changed_arg);
}

static long exec_ctrlr_op(struct vnvme_cuse_ioctl_dev *d, unsigned int cmd)
{
    struct vnvme_ctrlr *ctrlr = d->cc->ctrlr;
    int rc;
    pthread_rwlock_wrlock(&d->cc->lock);
    if (cmd == NVME_IOCTL_RESET)
        rc = vnvme_ctrlr_reset(ctrlr);
    else if (cmd == NVME_IOCTL_SUBSYS_RESET)
        rc = (vnvme_ctrlr_cap(ctrlr) & NVME_CAP_NSSRS) ? vnvme_ctrlr_subsystem_reset(ctrlr) : -ENOTTY;
    else
        rc = vnvme_ctrlr_rescan(ctrlr);
    if (cmd != NVME_IOCTL_RESCAN)
        vnvme_cuse_ctrlr_load_effects(d->cc); /* a controller back from reset may support other commands */
    pthread_rwlock_unlock(&d->cc->lock);
    /* Reset and subsystem reset rescan too: the namespace devices follow either way. */
    notify_ns_changed(d);
    return rc;
}

long vnvme_ioctl_exec(struct vnvme_cuse_ioctl_dev *d, unsigned int cmd, bool compat, void *arg, size_t arg_len,
                      void *data, size_t data_cap, void *meta, size_t meta_cap)
{
    struct vnvme_ioctl_xfer x;
    int rc = vnvme_ioctl_plan(d, cmd, compat, arg, arg_len, &x);
    if (rc)
        return rc;
    if ((x.arg_in || x.arg_out) && (arg == NULL || arg_len < (x.arg_in > x.arg_out ? x.arg_in : x.arg_out)))
        return -EFAULT;
    if (x.data_len > data_cap || x.meta_len > meta_cap || (x.data_len && !data) || (x.meta_len && !meta))
        return -EINVAL;
    struct ns_format f;
    switch (cmd) {
    case NVME_IOCTL_ADMIN_CMD:
    case NVME_IOCTL_ADMIN64_CMD:
        return exec_passthru(d, true, cmd == NVME_IOCTL_ADMIN64_CMD, arg, &x, data, meta);
    case NVME_IOCTL_IO_CMD:
    case NVME_IOCTL_IO64_CMD:
        return exec_passthru(d, false, cmd == NVME_IOCTL_IO64_CMD, arg, &x, data, meta);
    case NVME_IOCTL_SUBMIT_IO:
        return exec_submit_io(d, arg, &x, data, meta);
    case NVME_IOCTL_ID:
        return d->nsid;
    case NVME_IOCTL_RESET:
    case NVME_IOCTL_SUBSYS_RESET:
    case NVME_IOCTL_RESCAN:
        return exec_ctrlr_op(d, cmd);
    default:
        break;
    }
    /* The block-device queries. */
    rc = ns_format(d, &f);
    if (rc)
        return rc;
    uint64_t bytes = f.num_blocks * f.block_size;
    switch (cmd) {
    case BLKGETSIZE: {
        unsigned long sectors = (unsigned long)(bytes >> 9);
        memcpy(arg, &sectors, sizeof(sectors));
        return 0;
    }
    case BLKGETSIZE64:
        memcpy(arg, &bytes, sizeof(bytes));
        return 0;
    case BLKSSZGET: {
        int v = (int)f.block_size;
        memcpy(arg, &v, sizeof(v));
        return 0;
    }
    case BLKPBSZGET: {
        unsigned int v = f.block_size;
        memcpy(arg, &v, sizeof(v));
        return 0;
    }
    default:
        return -ENOTTY;
    }
}

/* ---- read()/write() ---- */

long vnvme_cuse_ns_rw(struct vnvme_cuse_ioctl_dev *d, bool write, void *buf, size_t len, uint64_t off)
{
    struct ns_format f;
    int rc = ns_format(d, &f);
    if (rc)
        return rc;
    if (len == 0)
        return 0;
    if (len > VNVME_CUSE_RW_MAX || off % f.block_size || len < f.block_size)
        return -EINVAL;
    /*
     * Whole blocks only, the rest is left for the next call: the kernel cuts a
     * large read()/write() into pieces of at most 32 pages of the caller's
     * buffer, which for a buffer not aligned to a page is not a whole number of
     * blocks. A short count makes it (and the caller) carry on from there.
     */
    len -= len % f.block_size;
    uint64_t lba = off / f.block_size;
    if (lba >= f.num_blocks)
        return write ? -ENOSPC : 0;
    uint64_t nlb = len / f.block_size;
    if (nlb > f.num_blocks - lba)
        nlb = f.num_blocks - lba; /* short transfer at the end, as on a block device */
    if ((rc = ensure_qpair(d)) != 0)
        return rc;
    if (vnvme_cuse_xfer_buf(d) == NULL)
        return -ENOMEM;
    struct nvme_sqe sqe = {.opc = write ? NVME_NVM_WRITE : NVME_NVM_READ, .nsid = d->nsid,
                           .cdw10 = (uint32_t)lba, .cdw11 = (uint32_t)(lba >> 32), .cdw12 = (uint32_t)(nlb - 1u)};
    struct nvme_cqe cpl = {0};
    uint32_t bytes = (uint32_t)(nlb * f.block_size);
    if (write && buf != d->xfer)
        memcpy(d->xfer, buf, bytes);
    pthread_rwlock_rdlock(&d->cc->lock);
    rc = vnvme_ctrlr_ns(d->cc->ctrlr, d->nsid) != NULL ? io_sync(d, &sqe, d->xfer, bytes, &cpl) : -ENODEV;
    pthread_rwlock_unlock(&d->cc->lock);
    if (rc)
        return rc;
    if (vnvme_cpl_is_error(&cpl))
        return -EIO;
    if (!write && buf != NULL && buf != d->xfer)
        memcpy(buf, d->xfer, bytes);
    return (long)bytes;
}
