/* SPDX-License-Identifier: MIT */
/* Controller state: the BAR0 register file, enable, reset, shutdown, fatal status and the poll loop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "nvmet.h"

#define CAP_TO_500MS 30u /* 15 s: RDY follows EN at once, this only bounds a host's wait */
#define SQ_BUDGET 32u    /* commands fetched per SQ per poll round, for fairness between queues */
#define KA_CHECK_EVERY 1024u

/* AQA: ASQS and ACQS, the rest is reserved. */
#define AQA_WRITABLE 0x0fff0fffu
/* ASQ/ACQ: bits 11:0 are reserved (the base is page aligned). */
#define AQ_BASE_MASK (~0xfffull)

uint64_t nvmet_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t nvmet_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void status_changed(struct nvmet_ctrlr *c)
{
    if (c->tops->status_changed)
        c->tops->status_changed(c->tctx, c->csts);
}

int nvmet_ctrlr_init_keep_doorbells(struct nvmet_ctrlr *c, struct nvmet_subsys *ss,
                                    const struct nvmet_transport_ops *tops, void *tctx, volatile uint32_t *doorbells)
{
    if (!c || !tops || !tops->translate || !tops->irq || !doorbells)
        return -EINVAL;
    memset(c, 0, sizeof(*c));
    c->subsys = ss;
    c->tops = tops;
    c->tctx = tctx;
    c->doorbells = doorbells;
    c->cap = (uint64_t)(NVMET_MAX_QUEUE_ENTRIES - 1) | NVME_CAP_CQR | ((uint64_t)CAP_TO_500MS << NVME_CAP_TO_SHIFT) |
             NVME_CAP_NSSRS | NVME_CAP_CSS_NVM;
    c->vs = NVME_VS(2, 0, 0);
    nvmet_features_reset(c);
    c->power_on_ms_base = nvmet_now_ms();
    /* nvmet_sq_ctrlr() finds the controller from a queue's qid, also for queues not created. */
    for (uint16_t q = 0; q <= NVMET_MAX_IO_QUEUES; q++) {
        c->sqs[q].qid = q;
        c->cqs[q].qid = q;
    }
    if (ss) {
        int rc = nvmet_subsys_add_ctrlr(ss, c); /* assigns cntlid */
        if (rc < 0)
            return rc;
    }
    return 0;
}

int nvmet_ctrlr_init(struct nvmet_ctrlr *c, struct nvmet_subsys *ss, const struct nvmet_transport_ops *tops,
                     void *tctx, volatile uint32_t *doorbells)
{
    int rc = nvmet_ctrlr_init_keep_doorbells(c, ss, tops, tctx, doorbells);
    if (rc == 0)
        for (uint32_t i = 0; i < NVMET_DB_SLOTS; i++)
            doorbells[i] = 0;
    return rc;
}

/* What fini and forget both let go of once the queues are gone: carried commands, bdev channels, the subsystem. */
static void leave(struct nvmet_ctrlr *c)
{
    free(c->carried);
    c->carried = NULL;
    c->nr_carried = c->carried_cap = 0;
    while (c->nr_chans)
        nvmet_io_release_channel(c, c->chan_nsids[c->nr_chans - 1]);
    if (c->subsys)
        nvmet_subsys_remove_ctrlr(c->subsys, c);
}

void nvmet_ctrlr_forget(struct nvmet_ctrlr *c)
{
    /* No reset: deleting queues would write the doorbell page, which the host and the new owner share. */
    for (uint32_t q = 0; q <= NVMET_MAX_IO_QUEUES; q++)
        if (c->sqs[q].created)
            free(c->sqs[q].reqs);
    memset(c->sqs, 0, sizeof(c->sqs));
    memset(c->cqs, 0, sizeof(c->cqs));
    c->nr_aer_reqs = 0;
    leave(c);
}

void nvmet_ctrlr_fini(struct nvmet_ctrlr *c)
{
    nvmet_ctrlr_reset(c);
    leave(c);
}

static uint32_t total_in_flight(struct nvmet_ctrlr *c)
{
    uint32_t n = 0;
    for (uint32_t q = 0; q <= NVMET_MAX_IO_QUEUES; q++)
        if (c->sqs[q].created)
            n += c->sqs[q].in_flight;
    return n;
}

/* What bdevs can still recall need not be waited for (a delay bdev may hold I/O for minutes). */
static void recall_from_bdevs(struct nvmet_ctrlr *c)
{
    for (uint32_t q = 1; q <= NVMET_MAX_IO_QUEUES && c->in_bdev; q++)
        if (c->sqs[q].created)
            nvmet_sq_recall(&c->sqs[q]);
}

/*
 * Completed requests still waiting for CQ room are dropped (their queues are
 * going away); requests still in a bdev are waited for, since they hold
 * pointers into the request arrays we are about to free. With RDY already
 * clear their completions are discarded.
 */
static void drain(struct nvmet_ctrlr *c)
{
    for (uint32_t q = 0; q <= NVMET_MAX_IO_QUEUES; q++) {
        struct nvmet_cq *cq = &c->cqs[q];
        while (cq->overflow_head) {
            struct nvmet_req *req = cq->overflow_head;
            cq->overflow_head = req->next_free;
            req->in_flight = false;
            req->next_free = req->sq->free_reqs;
            req->sq->free_reqs = req;
            req->sq->in_flight--;
        }
        cq->overflow_tail = NULL;
    }
    memset(c->cq_overflow_map, 0, sizeof(c->cq_overflow_map));
    if (total_in_flight(c) == 0)
        return;
    recall_from_bdevs(c);
    uint64_t deadline = nvmet_now_ms() + 10000;
    while (total_in_flight(c) && nvmet_now_ms() < deadline)
        nvmet_io_poll_channels(c);
    if (total_in_flight(c))
        VNVME_ERR("nvmet", "ctrlr %u: %u commands still in a bdev after reset; their requests are leaked",
                  c->cntlid, total_in_flight(c));
}

static void delete_all_queues(struct nvmet_ctrlr *c)
{
    for (uint32_t q = 0; q <= NVMET_MAX_IO_QUEUES; q++)
        if (c->sqs[q].created)
            nvmet_sq_destroy(c, &c->sqs[q]);
    for (uint32_t q = 0; q <= NVMET_MAX_IO_QUEUES; q++)
        if (c->cqs[q].created)
            nvmet_cq_destroy(c, &c->cqs[q]);
}

void nvmet_ctrlr_reset(struct nvmet_ctrlr *c)
{
    uint32_t old_csts = c->csts;
    /* Clearing RDY first makes late completions from the bdev be discarded. */
    c->csts &= ~NVME_CSTS_RDY;
    c->nr_carried = 0; /* their queues are going */
    nvmet_aer_abort_all(c);
    drain(c);
    delete_all_queues(c);
    /* Spec: registers and controller state are reset; AQA, ASQ and ACQ are not. */
    c->cc = 0;
    c->csts &= NVME_CSTS_NSSRO;
    c->intms = 0;
    c->fatal = false;
    nvmet_features_reset(c);
    c->nr_pending_events = 0;
    c->masked_event_types = 0;
    c->keep_alive_deadline_ms = 0;
    c->ka_activity = false;
    nvmet_dbbuf_reset(c);
    if (c->csts != old_csts)
        status_changed(c);
}

void nvmet_ctrlr_fatal(struct nvmet_ctrlr *c, const char *why)
{
    if (c->fatal)
        return;
    VNVME_ERR("nvmet", "ctrlr %u: controller fatal status: %s", c->cntlid, why);
    c->fatal = true;
    c->csts |= NVME_CSTS_CFS;
    status_changed(c);
}

static void enable(struct nvmet_ctrlr *c)
{
    uint32_t css = (c->cc & NVME_CC_CSS_MASK) >> NVME_CC_CSS_SHIFT;
    uint32_t mps = (c->cc & NVME_CC_MPS_MASK) >> NVME_CC_MPS_SHIFT;
    uint32_t ams = (c->cc & NVME_CC_AMS_MASK) >> NVME_CC_AMS_SHIFT;
    uint32_t asqs = NVME_AQA_ASQS(c->aqa) + 1, acqs = NVME_AQA_ACQS(c->aqa) + 1;
    uint32_t max = NVME_CAP_MQES(c->cap) + 1;

    if (css != 0 || mps != 0 || ams != 0) {
        nvmet_ctrlr_fatal(c, "CC.CSS/MPS/AMS not supported");
        return;
    }
    if (asqs < 2 || acqs < 2 || asqs > max || acqs > max) {
        nvmet_ctrlr_fatal(c, "invalid admin queue sizes in AQA");
        return;
    }
    int st = nvmet_cq_create(c, 0, c->acq, acqs, true, 0);
    if (st == 0)
        st = nvmet_sq_create(c, 0, c->asq, asqs, 0, 0);
    if (st != 0) {
        delete_all_queues(c);
        nvmet_ctrlr_fatal(c, "admin queues not mapped in client memory");
        return;
    }
    c->csts = (c->csts & ~NVME_CSTS_SHST_MASK) | NVME_CSTS_RDY;
    status_changed(c);
}

/*
 * Shutdown completes once nothing is in flight (checked again from poll).
 * Outstanding AERs do not count: they wait for an event, not for the device.
 */
static void shutdown_progress(struct nvmet_ctrlr *c)
{
    if (((c->csts & NVME_CSTS_SHST_MASK) >> NVME_CSTS_SHST_SHIFT) != NVME_CSTS_SHST_OCCURRING)
        return;
    if (total_in_flight(c) != c->nr_aer_reqs)
        return;
    c->csts = (c->csts & ~NVME_CSTS_SHST_MASK) | (NVME_CSTS_SHST_COMPLETE << NVME_CSTS_SHST_SHIFT);
    status_changed(c);
}

static void write_cc(struct nvmet_ctrlr *c, uint32_t v)
{
    uint32_t old = c->cc;
    uint32_t nw = v & NVME_CC_WRITABLE_MASK;

    if ((old & NVME_CC_EN) && !(nw & NVME_CC_EN)) {
        nvmet_ctrlr_reset(c);
        c->cc = nw;
        return;
    }
    if (!(old & NVME_CC_EN)) {
        c->cc = nw;
        if (nw & NVME_CC_EN)
            enable(c);
        return;
    }
    /* Enabled: the command set, page size and arbitration are fixed until the next reset. */
    uint32_t fixed = NVME_CC_EN | NVME_CC_CSS_MASK | NVME_CC_MPS_MASK | NVME_CC_AMS_MASK;
    c->cc = (old & fixed) | (nw & ~fixed);
    uint32_t shn = (nw & NVME_CC_SHN_MASK) >> NVME_CC_SHN_SHIFT;
    uint32_t old_shn = (old & NVME_CC_SHN_MASK) >> NVME_CC_SHN_SHIFT;
    if (shn != NVME_CC_SHN_NONE && old_shn == NVME_CC_SHN_NONE &&
        (c->csts & NVME_CSTS_SHST_MASK) == 0) {
        /*
         * Outstanding AERs stay outstanding, without completions: a host that
         * shuts down has already given them up (SPDK's logs "cpl does not map
         * to outstanding cmd" for each one posted; Linux cancels them itself),
         * and the reset that follows discards them.
         */
        c->csts = (c->csts & ~NVME_CSTS_SHST_MASK) | (NVME_CSTS_SHST_OCCURRING << NVME_CSTS_SHST_SHIFT);
        shutdown_progress(c);
    }
}

static void subsystem_reset(struct nvmet_ctrlr *c)
{
    VNVME_NOTICE("nvmet", "ctrlr %u: NVM subsystem reset", c->cntlid);
    nvmet_ctrlr_reset(c);
    c->csts |= NVME_CSTS_NSSRO;
    status_changed(c);
}

/* The value of the 4-byte register at a 4-byte aligned offset. */
static uint32_t read32(struct nvmet_ctrlr *c, uint64_t off)
{
    switch (off) {
    case NVME_REG_CAP:
        return (uint32_t)c->cap;
    case NVME_REG_CAP + 4:
        return (uint32_t)(c->cap >> 32);
    case NVME_REG_VS:
        return c->vs;
    case NVME_REG_INTMS:
    case NVME_REG_INTMC:
        return c->intms;
    case NVME_REG_CC:
        return c->cc;
    case NVME_REG_CSTS:
        return c->csts;
    case NVME_REG_AQA:
        return c->aqa;
    case NVME_REG_ASQ:
        return (uint32_t)c->asq;
    case NVME_REG_ASQ + 4:
        return (uint32_t)(c->asq >> 32);
    case NVME_REG_ACQ:
        return (uint32_t)c->acq;
    case NVME_REG_ACQ + 4:
        return (uint32_t)(c->acq >> 32);
    default:
        return 0; /* NSSR reads 0; CMB and everything else is not implemented */
    }
}

static void write32(struct nvmet_ctrlr *c, uint64_t off, uint32_t v)
{
    bool enabled = c->cc & NVME_CC_EN;
    switch (off) {
    case NVME_REG_INTMS:
        c->intms |= v;
        break;
    case NVME_REG_INTMC:
        c->intms &= ~v;
        break;
    case NVME_REG_CC:
        write_cc(c, v);
        break;
    case NVME_REG_NSSR:
        if (v == NVME_NSSR_MAGIC)
            subsystem_reset(c);
        break;
    /* The admin queue registers only take effect at enable: writes while enabled are ignored. */
    case NVME_REG_AQA:
        if (!enabled)
            c->aqa = v & AQA_WRITABLE;
        break;
    case NVME_REG_ASQ:
        if (!enabled)
            c->asq = ((c->asq & 0xffffffff00000000ull) | v) & AQ_BASE_MASK;
        break;
    case NVME_REG_ASQ + 4:
        if (!enabled)
            c->asq = (c->asq & 0xffffffffull) | ((uint64_t)v << 32);
        break;
    case NVME_REG_ACQ:
        if (!enabled)
            c->acq = ((c->acq & 0xffffffff00000000ull) | v) & AQ_BASE_MASK;
        break;
    case NVME_REG_ACQ + 4:
        if (!enabled)
            c->acq = (c->acq & 0xffffffffull) | ((uint64_t)v << 32);
        break;
    default:
        break; /* read-only or reserved */
    }
}

static bool is_64bit_reg(uint64_t off)
{
    return off == NVME_REG_CAP || off == NVME_REG_ASQ || off == NVME_REG_ACQ;
}

static bool doorbell_slot(uint64_t off, uint32_t *slot)
{
    if (off < NVME_REG_DBS)
        return false;
    uint64_t i = (off - NVME_REG_DBS) / 4;
    if (i >= 2 * (NVMET_MAX_IO_QUEUES + 1))
        return false;
    *slot = (uint32_t)i;
    return true;
}

int nvmet_ctrlr_reg_read(struct nvmet_ctrlr *c, uint64_t offset, void *buf, size_t len)
{
    uint32_t slot;
    if (len == 8 && is_64bit_reg(offset)) {
        uint64_t v = read32(c, offset) | ((uint64_t)read32(c, offset + 4) << 32);
        memcpy(buf, &v, 8);
        return 0;
    }
    if (len != 4 || (offset & 3))
        return -EINVAL;
    if (offset < NVME_REG_DBS) {
        uint32_t v = read32(c, offset);
        memcpy(buf, &v, 4);
        return 0;
    }
    if (doorbell_slot(offset, &slot)) {
        uint32_t v = 0; /* doorbells are write-only; reads return 0 */
        memcpy(buf, &v, 4);
        return 0;
    }
    return -EINVAL;
}

int nvmet_ctrlr_reg_write(struct nvmet_ctrlr *c, uint64_t offset, const void *buf, size_t len)
{
    uint32_t slot;
    if (len == 8 && is_64bit_reg(offset)) {
        uint64_t v;
        memcpy(&v, buf, 8);
        write32(c, offset, (uint32_t)v);
        write32(c, offset + 4, (uint32_t)(v >> 32));
        return 0;
    }
    if (len != 4 || (offset & 3))
        return -EINVAL;
    uint32_t v;
    memcpy(&v, buf, 4);
    if (offset < NVME_REG_DBS) {
        write32(c, offset, v);
        return 0;
    }
    if (doorbell_slot(offset, &slot)) {
        __atomic_store_n(&c->doorbells[slot], v, __ATOMIC_RELEASE);
        return 0;
    }
    return -EINVAL;
}

static void keep_alive_check(struct nvmet_ctrlr *c)
{
    if (c->feat.keep_alive_ms == 0)
        return;
    uint64_t now = nvmet_now_ms();
    if (c->ka_activity || c->keep_alive_deadline_ms == 0) {
        c->ka_activity = false;
        c->keep_alive_deadline_ms = now + c->feat.keep_alive_ms;
        return;
    }
    if (now > c->keep_alive_deadline_ms)
        nvmet_ctrlr_fatal(c, "keep alive timeout expired");
}

static int retry_overflow(struct nvmet_ctrlr *c)
{
    if (!nvmet_qmap_any(c->cq_overflow_map))
        return 0;
    int n = 0;
    NVMET_QMAP_FOREACH(q, c->cq_overflow_map) {
        struct nvmet_cq *cq = &c->cqs[q];
        if (cq->overflow_head)
            n += nvmet_cq_flush_overflow(c, cq);
        if (!cq->overflow_head)
            nvmet_qmap_clear(c->cq_overflow_map, q);
    }
    return n;
}

int nvmet_ctrlr_poll(struct nvmet_ctrlr *c)
{
    if (!(c->csts & NVME_CSTS_RDY) || c->fatal)
        return 0;
    int work = 0;
    uint32_t shst = (c->csts & NVME_CSTS_SHST_MASK) >> NVME_CSTS_SHST_SHIFT;
    if (shst == NVME_CSTS_SHST_NORMAL && !c->fetch_paused) {
        if (__builtin_expect(c->nr_carried != 0, 0))
            nvmet_ctrlr_resubmit_carried(c);
        nvmet_ctrlr_check_doorbells(c);
        work += retry_overflow(c);
        NVMET_QMAP_FOREACH(q, c->sq_created_map) {
            struct nvmet_sq *sq = &c->sqs[q];
            if (sq->created && sq->ring && sq->head != sq->tail)
                work += nvmet_sq_process(c, sq, SQ_BUDGET);
        }
    } else {
        /* Shutting down or handing over: no new commands, but what is in flight still completes. */
        nvmet_ctrlr_check_doorbells(c);
        work += retry_overflow(c);
    }
    work += nvmet_io_poll_channels(c);
    if (nvmet_qmap_any(c->cq_irq_map) || nvmet_qmap_any(c->cq_coalesce_map))
        nvmet_ctrlr_flush_irqs(c);
    if (shst == NVME_CSTS_SHST_OCCURRING)
        shutdown_progress(c);
    /* A controller polled rarely gets every chance it has to notice a silent host. */
    if (++c->polls % KA_CHECK_EVERY == 0 || c->polled_rarely)
        keep_alive_check(c);
    return work;
}

/* A window's local addresses: its main mapping and its I/O mapping (0 when it has none), len bytes each. */
struct local_window {
    uintptr_t lo[2];
    uint64_t len;
};

/*
 * A command inside a bdev with data (partly) in the window. Its iovecs are
 * the only references a bdev holds into client memory (DSM ranges are
 * copied in before the first bdev call).
 */
static bool in_bdev_with_data_in(const struct nvmet_req *req, const struct local_window *w)
{
    if (!req->in_bdev)
        return false;
    for (int k = 0; k < req->bio.iovcnt; k++) {
        uintptr_t b = (uintptr_t)req->bio.iov[k].iov_base;
        for (int m = 0; m < 2; m++)
            if (w->lo[m] && b < w->lo[m] + w->len && w->lo[m] < b + req->bio.iov[k].iov_len)
                return true;
    }
    return false;
}

/* How many commands inside bdevs have data in the window; with recall, after recalling them. */
static uint32_t in_bdev_within(struct nvmet_ctrlr *c, const struct local_window *w, bool recall)
{
    uint32_t n = 0;
    for (uint32_t q = 1; q <= NVMET_MAX_IO_QUEUES && c->in_bdev; q++) {
        struct nvmet_sq *sq = &c->sqs[q];
        for (uint32_t i = 0; sq->created && i < sq->nr_reqs; i++)
            if (in_bdev_with_data_in(&sq->reqs[i], w) && (!recall || !nvmet_io_abort(&sq->reqs[i])))
                n++;
    }
    return n;
}

bool nvmet_ctrlr_memory_removed(struct nvmet_ctrlr *c, uint64_t iova, uint64_t size, void *vaddr, void *io_vaddr)
{
    uint64_t end = iova + size;
    for (uint32_t q = 0; q <= NVMET_MAX_IO_QUEUES; q++) {
        struct nvmet_sq *sq = &c->sqs[q];
        struct nvmet_cq *cq = &c->cqs[q];
        if (sq->created && sq->iova < end && iova < sq->iova + (uint64_t)sq->size * sizeof(struct nvme_sqe))
            sq->ring = NULL;
        if (cq->created && cq->iova < end && iova < cq->iova + (uint64_t)cq->size * sizeof(struct nvme_cqe))
            cq->ring = NULL;
    }
    nvmet_dbbuf_memory_removed(c, iova, size);
    /*
     * A bdev may still be transferring into the window (asynchronous bdevs:
     * io_uring, librbd). The spec requires every reference released before
     * the unmap is answered: commands whose data lies in the window are
     * recalled, and those that cannot be finish while the mapping is valid;
     * their completions wait in the CQ overflow list if their CQ was
     * quiesced. Commands elsewhere carry on. A window without a local
     * mapping (access by message) holds no bdev's data.
     */
    if (!vaddr)
        return false;
    const struct local_window w = {.lo = {(uintptr_t)vaddr, (uintptr_t)io_vaddr}, .len = size};
    uint64_t deadline = nvmet_now_ms() + 10000;
    if (in_bdev_within(c, &w, true) == 0)
        return false;
    while (in_bdev_within(c, &w, false) && nvmet_now_ms() < deadline)
        nvmet_io_poll_channels(c);
    if (in_bdev_within(c, &w, false) == 0)
        return false;
    nvmet_ctrlr_fatal(c, "bdev commands did not finish before client memory was unmapped");
    return true;
}

void nvmet_ctrlr_memory_added(struct nvmet_ctrlr *c)
{
    for (uint32_t q = 0; q <= NVMET_MAX_IO_QUEUES; q++) {
        if (c->sqs[q].created && !c->sqs[q].ring)
            nvmet_sq_map(c, &c->sqs[q]);
        if (c->cqs[q].created && !c->cqs[q].ring)
            nvmet_cq_map(c, &c->cqs[q]);
    }
    nvmet_dbbuf_memory_added(c);
}
