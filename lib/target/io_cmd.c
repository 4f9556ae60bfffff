/* SPDX-License-Identifier: MIT */
/* NVM command set: Read, Write, Compare, Flush, Write Zeroes and Dataset Management on bdevs. */
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/ticks.h"
#include "nvmet.h"
#include "vnvme/vfio_user_dma.h"

#define NSID_ALL 0xffffffffu
#define DSM_MAX_RANGES 256u

static void complete_status(struct nvmet_req *req, uint8_t sct, uint8_t code, bool dnr)
{
    nvmet_req_status(req, sct, code, dnr);
    nvmet_req_complete(req);
}

/* ---- channels ---- */

static struct vnvme_bdev_channel *channel(struct nvmet_ctrlr *c, struct nvmet_ns *ns)
{
    struct vnvme_bdev_channel *ch = c->channels[ns->nsid];
    if (ch)
        return ch;
    ch = vnvme_bdev_channel_get(ns->bdev);
    if (!ch)
        return NULL;
    vnvme_bdev_channel_set_qos(ch, &ns->qos); /* the namespace's own limits, whenever they are set */
    c->channels[ns->nsid] = ch;
    c->chan_nsids[c->nr_chans++] = ns->nsid;
    c->chan_gen++;
    return ch;
}

int nvmet_io_poll_channels(struct nvmet_ctrlr *c)
{
    int n = 0;
    for (uint32_t i = 0; i < c->nr_chans; i++) {
        int r = vnvme_bdev_channel_poll(c->channels[c->chan_nsids[i]]);
        if (r > 0)
            n += r;
    }
    return n;
}

void nvmet_io_release_channel(struct nvmet_ctrlr *c, uint32_t nsid)
{
    if (nsid == 0 || nsid > NVMET_MAX_NSID || !c->channels[nsid])
        return;
    vnvme_bdev_channel_put(c->channels[nsid]);
    c->channels[nsid] = NULL;
    c->chan_gen++;
    for (uint32_t i = 0; i < c->nr_chans; i++) {
        if (c->chan_nsids[i] == nsid) {
            c->chan_nsids[i] = c->chan_nsids[--c->nr_chans];
            break;
        }
    }
}

uint32_t nvmet_io_channel_fds(struct nvmet_ctrlr *c, int *fds, uint32_t max)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->nr_chans; i++) {
        int fd = vnvme_bdev_channel_fd(c->channels[c->chan_nsids[i]]);
        if (fd < 0)
            continue;
        if (n < max)
            fds[n] = fd;
        n++;
    }
    return n;
}

/* ---- status mapping and accounting ---- */

static void set_bdev_error(struct nvmet_req *req, int status)
{
    switch (status) {
    case -EILSEQ:
        nvmet_req_status(req, NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILURE, false);
        break;
    case -EIO:
        if (req->bio.op == VNVME_BDEV_READ || req->bio.op == VNVME_BDEV_COMPARE)
            nvmet_req_status(req, NVME_SCT_MEDIA, NVME_SC_UNRECOVERED_READ_ERROR, false);
        else
            nvmet_req_status(req, NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT, false);
        break;
    case -ECANCELED: /* recalled from the bdev: by Delete I/O SQ, Abort, or a reset (which discards it) */
        nvmet_req_status(req, NVME_SCT_GENERIC,
                         req->sq->deleting ? NVME_SC_ABORTED_SQ_DELETION : NVME_SC_ABORTED_BY_REQUEST, false);
        break;
    case -ENXIO:
    case -ENODEV:
        nvmet_req_status(req, NVME_SCT_GENERIC, NVME_SC_NAMESPACE_NOT_READY, false);
        break;
    case -ETIMEDOUT:
        /*
         * The backing store did not answer in time (an RBD cluster that
         * stalled): the namespace is temporarily unreachable, not broken.
         * Namespace Not Ready without DNR says exactly that, and hosts retry
         * it (Linux requeues it up to its retry limit). Internal Error would
         * blame the controller; Data Transfer Error would suggest the data
         * moved wrongly between host and controller, when none moved at all.
         */
        nvmet_req_status(req, NVME_SCT_GENERIC, NVME_SC_NAMESPACE_NOT_READY, false);
        break;
    default:
        nvmet_req_status(req, NVME_SCT_GENERIC, NVME_SC_INTERNAL, false);
        break;
    }
}

/* SMART: data units are thousands of 512-byte units, rounded up. */
static void account(struct nvmet_ctrlr *c, struct nvmet_req *req)
{
    uint64_t sectors = (req->bio.num_blocks << req->ns->lbads) >> 9;
    switch (req->bio.op) {
    case VNVME_BDEV_READ:
    case VNVME_BDEV_COMPARE:
        c->read_cmds++;
        c->sectors_read += sectors;
        c->units_read = (c->sectors_read + 999) / 1000;
        break;
    case VNVME_BDEV_WRITE:
        c->write_cmds++;
        c->sectors_written += sectors;
        c->units_written = (c->sectors_written + 999) / 1000;
        break;
    default:
        break;
    }
}

static void rw_done(struct vnvme_bdev_io *io, int status)
{
    struct nvmet_req *req = io->cb_arg;
    if (status == 0)
        account(nvmet_req_ctrlr(req), req);
    else
        set_bdev_error(req, status);
    nvmet_req_complete(req);
}

/*
 * SMART's Controller Busy Time counts the time with I/O outstanding: a TSC
 * read when the first command goes in and when the last comes out, none for
 * the commands in between.
 */
static void busy_enter(struct nvmet_ctrlr *c)
{
    if (c->in_bdev++ == 0)
        c->busy_since_ticks = vnvme_ticks();
}

static void busy_leave(struct nvmet_ctrlr *c)
{
    if (--c->in_bdev == 0)
        c->busy_ticks += vnvme_ticks() - c->busy_since_ticks;
}

/* Every bdev completion passes here, so memory removal can wait for transfers still in progress. */
static void bdev_done(struct vnvme_bdev_io *io, int status)
{
    struct nvmet_req *req = io->cb_arg;
    req->in_bdev = false;
    busy_leave(nvmet_req_ctrlr(req));
    req->bdev_cb(io, status);
}

static void submit(struct nvmet_req *req, vnvme_bdev_io_cb cb)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    struct vnvme_bdev_channel *ch = channel(c, req->ns);
    if (!ch) {
        complete_status(req, NVME_SCT_GENERIC, NVME_SC_NAMESPACE_NOT_READY, false);
        return;
    }
    req->bdev_cb = cb;
    req->bio.cb = bdev_done;
    req->bio.cb_arg = req;
    req->bio.next = NULL;
    busy_enter(c);
    req->in_bdev = true;
    int rc = vnvme_bdev_submit(ch, &req->bio);
    if (rc < 0) {
        req->in_bdev = false;
        busy_leave(c);
        set_bdev_error(req, rc);
        nvmet_req_complete(req);
    }
}

bool nvmet_io_abort(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    if (!req->in_bdev || !req->ns || req->ns->nsid > NVMET_MAX_NSID || !c->channels[req->ns->nsid])
        return false;
    /* On success the bdev has called bdev_done with -ECANCELED: the command is complete. */
    return vnvme_bdev_abort(c->channels[req->ns->nsid], &req->bio) == 0;
}

uint32_t nvmet_ctrlr_recall_for_handover(struct nvmet_ctrlr *c)
{
    uint32_t n = 0;
    for (uint32_t q = 1; q <= NVMET_MAX_IO_QUEUES && c->in_bdev; q++) {
        struct nvmet_sq *sq = &c->sqs[q];
        for (uint32_t i = 0; sq->created && i < sq->nr_reqs; i++) {
            struct nvmet_req *req = &sq->reqs[i];
            if (!req->in_flight || !req->in_bdev)
                continue;
            /* The recall completes it at once, through nvmet_req_complete, which carries it. */
            req->carry = true;
            if (nvmet_io_abort(req))
                n++;
            else
                req->carry = false;
        }
    }
    return n;
}

void nvmet_sq_recall(struct nvmet_sq *sq)
{
    for (uint32_t i = 0; i < sq->nr_reqs && sq->in_flight; i++)
        if (sq->reqs[i].in_flight)
            nvmet_io_abort(&sq->reqs[i]);
}

/* ---- command parsing ---- */

static struct nvmet_ns *lookup_ns(struct nvmet_ctrlr *c, uint32_t nsid)
{
    if (nsid == 0 || nsid > NVMET_MAX_NSID || !c->subsys)
        return NULL;
    return c->subsys->ns[nsid];
}

static bool lba_range_ok(const struct nvmet_ns *ns, uint64_t slba, uint64_t nlb)
{
    return slba <= ns->nsze && nlb <= ns->nsze - slba;
}

/*
 * A READ's data in the client's memory as the transport can fence it (see
 * vnvme_bdev_mem): mapped through the I/O mapping, whole pages only, since
 * fences are page-granular. NULL when it cannot be (no such transport
 * support, a window with fenced pages, a buffer that is not whole pages):
 * the caller maps the data the ordinary way and the bdev copies. The page
 * here is the controller's (4 KiB, the host's on x86-64); where the host's
 * is larger, the fence is refused and a given-up read waits for its bdev.
 */
static const struct vnvme_bdev_mem *fenceable(struct nvmet_req *req, uint64_t len)
{
    const struct vnvme_bdev_mem *mem = nvmet_req_ctrlr(req)->bdev_mem;
    if (!mem || nvmet_req_map_data(req, len, VFIO_USER_DMA_WRITE_OK | VFIO_USER_DMA_IO_MAPPING))
        return NULL;
    for (int i = 0; i < req->iovcnt; i++)
        if (((uintptr_t)req->iov[i].iov_base | req->iov[i].iov_len) & (NVMET_PAGE_SIZE - 1))
            return NULL;
    return mem;
}

static void execute_rw(struct nvmet_req *req, enum vnvme_bdev_op op)
{
    const struct nvme_sqe *cmd = &req->cmd;
    uint64_t slba = (uint64_t)cmd->cdw11 << 32 | cmd->cdw10;
    uint64_t nlb = (uint64_t)(cmd->cdw12 & NVME_RW_NLB_MASK) + 1;
    struct nvmet_ns *ns = req->ns;

    if (!lba_range_ok(ns, slba, nlb)) {
        complete_status(req, NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE, true);
        return;
    }
    uint64_t len = nlb << ns->lbads;
    if (len > NVMET_MAX_DATA_LEN) {
        complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD, true);
        return;
    }
    /* Read: the device writes client memory; Write and Compare: it reads it. */
    uint32_t access = op == VNVME_BDEV_READ ? VFIO_USER_DMA_WRITE_OK : VFIO_USER_DMA_READ_OK;
    const struct vnvme_bdev_mem *mem = op == VNVME_BDEV_READ && ns->bdev->fenced_reads ? fenceable(req, len) : NULL;
    uint16_t st = mem ? 0 : nvmet_req_map_data(req, len, access);
    if (st) {
        req->rsp.status = st;
        nvmet_req_complete(req);
        return;
    }
    memset(&req->bio, 0, sizeof(req->bio));
    req->bio.mem = mem;
    req->bio.op = op;
    req->bio.offset_blocks = slba;
    req->bio.num_blocks = nlb;
    req->bio.iov = req->iov;
    req->bio.iovcnt = req->iovcnt;
    /* With the volatile write cache disabled by the host, every write must be durable on completion. */
    req->bio.fua = op == VNVME_BDEV_WRITE && ((cmd->cdw12 & NVME_RW_FUA) || !nvmet_req_ctrlr(req)->feat.volatile_wc);
    submit(req, rw_done);
}

static void execute_write_zeroes(struct nvmet_req *req)
{
    const struct nvme_sqe *cmd = &req->cmd;
    uint64_t slba = (uint64_t)cmd->cdw11 << 32 | cmd->cdw10;
    uint64_t nlb = (uint64_t)(cmd->cdw12 & NVME_RW_NLB_MASK) + 1;
    struct nvmet_ns *ns = req->ns;

    if (!lba_range_ok(ns, slba, nlb)) {
        complete_status(req, NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE, true);
        return;
    }
    memset(&req->bio, 0, sizeof(req->bio));
    /* bdev.h: an unmapped range reads back as zeroes, so DEAC may deallocate. */
    if ((cmd->cdw12 & NVME_WZ_DEAC) && ns->bdev->supports_unmap)
        req->bio.op = VNVME_BDEV_UNMAP;
    else if (ns->bdev->supports_write_zeroes)
        req->bio.op = VNVME_BDEV_WRITE_ZEROES;
    else {
        complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE, true);
        return;
    }
    req->bio.offset_blocks = slba;
    req->bio.num_blocks = nlb;
    submit(req, rw_done);
}

/* Flush of NSID FFFFFFFFh walks every namespace, one bdev flush at a time; data_len is the cursor. */
static void flush_all_next(struct nvmet_req *req);

static void flush_all_done(struct vnvme_bdev_io *io, int status)
{
    struct nvmet_req *req = io->cb_arg;
    if (status != 0) {
        set_bdev_error(req, status);
        nvmet_req_complete(req);
        return;
    }
    flush_all_next(req);
}

static void flush_all_next(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    while (++req->data_len <= NVMET_MAX_NSID) {
        struct nvmet_ns *ns = lookup_ns(c, (uint32_t)req->data_len);
        if (!ns || !ns->bdev->volatile_write_cache)
            continue;
        req->ns = ns;
        memset(&req->bio, 0, sizeof(req->bio));
        req->bio.op = VNVME_BDEV_FLUSH;
        submit(req, flush_all_done);
        return;
    }
    req->data_len = 0;
    nvmet_req_complete(req);
}

static void execute_flush(struct nvmet_req *req)
{
    if (req->cmd.nsid == NSID_ALL) {
        req->data_len = 0;
        flush_all_next(req);
        return;
    }
    if (!req->ns->bdev->volatile_write_cache) {
        nvmet_req_complete(req); /* nothing volatile to write back */
        return;
    }
    memset(&req->bio, 0, sizeof(req->bio));
    req->bio.op = VNVME_BDEV_FLUSH;
    submit(req, rw_done);
}

/* Dataset Management: ranges are deallocated one bdev UNMAP at a time; data_len is the next range. */
static void dsm_next(struct nvmet_req *req);

static void dsm_done(struct vnvme_bdev_io *io, int status)
{
    struct nvmet_req *req = io->cb_arg;
    if (status != 0) {
        set_bdev_error(req, status);
        nvmet_req_complete(req);
        return;
    }
    dsm_next(req);
}

static void dsm_next(struct nvmet_req *req)
{
    while (req->data_len < (uint64_t)req->iovcnt) {
        const struct nvme_dsm_range *r = &req->dsm_ranges[req->data_len++];
        if (r->nlb == 0)
            continue;
        memset(&req->bio, 0, sizeof(req->bio));
        req->bio.op = VNVME_BDEV_UNMAP;
        req->bio.offset_blocks = r->slba;
        req->bio.num_blocks = r->nlb;
        submit(req, dsm_done);
        return;
    }
    req->iovcnt = 0;
    req->data_len = 0;
    nvmet_req_complete(req);
}

static void execute_dsm(struct nvmet_req *req)
{
    struct nvmet_ns *ns = req->ns;
    uint32_t nr = (req->cmd.cdw10 & 0xff) + 1;
    struct nvme_dsm_range ranges[DSM_MAX_RANGES];

    uint16_t st = nvmet_req_copy_from_host(req, ranges, nr * sizeof(ranges[0]));
    if (st) {
        req->rsp.status = st;
        nvmet_req_complete(req);
        return;
    }
    /* Validate every range before deallocating any. */
    for (uint32_t i = 0; i < nr; i++) {
        if (!lba_range_ok(ns, ranges[i].slba, ranges[i].nlb)) {
            complete_status(req, NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE, true);
            return;
        }
    }
    /* IDR/IDW are hints; deallocation is advisory when the bdev cannot unmap. */
    if (!(req->cmd.cdw11 & NVME_DSM_AD) || !ns->bdev->supports_unmap) {
        nvmet_req_complete(req);
        return;
    }
    /* The iovecs are no longer needed: the ranges live in their place from here on. */
    memcpy(req->dsm_ranges, ranges, nr * sizeof(ranges[0]));
    req->iovcnt = (int)nr;
    req->data_len = 0;
    dsm_next(req);
}

void nvmet_io_execute(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    const struct nvme_sqe *cmd = &req->cmd;

    if (cmd->flags & NVME_SQE_FUSE_MASK) {
        complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD, true); /* FUSES = 0 */
        return;
    }
    switch (cmd->opc) {
    case NVME_NVM_FLUSH:
    case NVME_NVM_WRITE:
    case NVME_NVM_READ:
    case NVME_NVM_COMPARE:
    case NVME_NVM_WRITE_ZEROES:
    case NVME_NVM_DATASET_MANAGEMENT:
        break;
    default:
        complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE, true);
        return;
    }
    if (!(cmd->opc == NVME_NVM_FLUSH && cmd->nsid == NSID_ALL)) {
        req->ns = lookup_ns(c, cmd->nsid);
        if (!req->ns) {
            complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_NAMESPACE_OR_FORMAT, true);
            return;
        }
    }
    switch (cmd->opc) {
    case NVME_NVM_FLUSH:
        execute_flush(req);
        break;
    case NVME_NVM_WRITE:
        execute_rw(req, VNVME_BDEV_WRITE);
        break;
    case NVME_NVM_READ:
        execute_rw(req, VNVME_BDEV_READ);
        break;
    case NVME_NVM_COMPARE:
        execute_rw(req, VNVME_BDEV_COMPARE);
        break;
    case NVME_NVM_WRITE_ZEROES:
        execute_write_zeroes(req);
        break;
    case NVME_NVM_DATASET_MANAGEMENT:
        execute_dsm(req);
        break;
    }
}
