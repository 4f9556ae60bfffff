/* SPDX-License-Identifier: MIT */
/*
 * A controller's state for a handover to another process
 * (docs/STATE-FORMAT.md, section "NVMe controller"): registers, features,
 * queues with their heads, tails and phases, interrupt and doorbell-buffer
 * state, outstanding Asynchronous Event Requests, logs and counters.
 *
 * Only a quiet controller is saved: nothing inside a bdev, no completion
 * waiting for CQ room, no queue being deleted; the AERs the host keeps
 * outstanding are the only commands in flight, and they travel as their
 * SQEs. The caller stops fetching first (fetch_paused) and polls until
 * nvmet_ctrlr_quiet() says so.
 *
 * Restoring never writes the doorbell page: the host keeps writing it during
 * and after the handover, and the values it holds are the host's.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/state.h"
#include "nvmet.h"

#define TAG_CTRLR 0x4e435452u /* "NCTR" */
#define TAG_QUEUES 0x4e515545u /* "NQUE" */

bool nvmet_ctrlr_quiet(const struct nvmet_ctrlr *c)
{
    if (c->in_bdev || nvmet_qmap_any(c->cq_overflow_map))
        return false;
    NVMET_QMAP_FOREACH(q, c->sq_created_map) {
        const struct nvmet_sq *sq = &c->sqs[q];
        if (sq->deleting || sq->in_flight != (q == 0 ? c->nr_aer_reqs : 0))
            return false;
    }
    return true;
}

void nvmet_req_carry(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    req->carry = false;
    if (c->nr_carried == c->carried_cap) {
        uint32_t cap = c->carried_cap ? c->carried_cap * 2 : 64;
        struct nvmet_carried *a = realloc(c->carried, cap * sizeof(*a));
        if (!a) {
            /* Cannot keep it: the host gets the abort the recall produced, and retries. */
            VNVME_ERR("nvmet", "ctrlr %u: out of memory carrying a recalled command; it completes as aborted",
                      c->cntlid);
            return;
        }
        c->carried = a;
        c->carried_cap = cap;
    }
    c->carried[c->nr_carried].sqid = req->sq->qid;
    c->carried[c->nr_carried].cmd = req->cmd;
    c->nr_carried++;
}

void nvmet_ctrlr_resubmit_carried(struct nvmet_ctrlr *c)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < c->nr_carried; i++) {
        struct nvmet_carried *k = &c->carried[i];
        struct nvmet_sq *sq = k->sqid <= NVMET_MAX_IO_QUEUES ? &c->sqs[k->sqid] : NULL;
        if (!sq || !sq->created || k->sqid == 0)
            continue; /* its queue went (deleted, or the controller reset): nothing to answer to */
        if (!sq->free_reqs) {
            c->carried[kept++] = *k; /* the next poll, once a request is free */
            continue;
        }
        nvmet_io_execute(nvmet_req_take(sq, &k->cmd));
    }
    c->nr_carried = kept;
}

static void put_features(struct vnvme_state_out *w, const struct nvmet_features *f)
{
    vnvme_state_put_u32(w, f->arbitration);
    vnvme_state_put_u32(w, f->power_management);
    vnvme_state_put_u32(w, f->temp_threshold_over);
    vnvme_state_put_u32(w, f->temp_threshold_under);
    vnvme_state_put_u32(w, f->error_recovery);
    vnvme_state_put_u32(w, f->volatile_wc);
    vnvme_state_put_u32(w, f->num_queues);
    vnvme_state_put_u8(w, f->num_queues_set);
    vnvme_state_put_u32(w, f->int_coalescing);
    vnvme_state_put_u32(w, NVMET_MAX_IO_QUEUES + 1);
    for (uint32_t i = 0; i <= NVMET_MAX_IO_QUEUES; i++)
        vnvme_state_put_u32(w, f->int_vector_cfg[i]);
    vnvme_state_put_u32(w, f->write_atomicity);
    vnvme_state_put_u32(w, f->async_event_cfg);
    vnvme_state_put_u64(w, f->timestamp_ms);
    vnvme_state_put_u64(w, f->timestamp_set_at_ms);
    vnvme_state_put_u8(w, f->timestamp_set);
    vnvme_state_put_bytes(w, f->host_behavior, sizeof(f->host_behavior));
    vnvme_state_put_u32(w, f->keep_alive_ms);
}

static void get_features(struct vnvme_state_in *r, struct nvmet_features *f)
{
    f->arbitration = vnvme_state_get_u32(r);
    f->power_management = vnvme_state_get_u32(r);
    f->temp_threshold_over = vnvme_state_get_u32(r);
    f->temp_threshold_under = vnvme_state_get_u32(r);
    f->error_recovery = vnvme_state_get_u32(r);
    f->volatile_wc = vnvme_state_get_u32(r);
    f->num_queues = vnvme_state_get_u32(r);
    f->num_queues_set = vnvme_state_get_bool(r);
    f->int_coalescing = vnvme_state_get_u32(r);
    if (vnvme_state_get_u32(r) != NVMET_MAX_IO_QUEUES + 1)
        vnvme_state_fail(r, "a different number of interrupt vectors");
    for (uint32_t i = 0; i <= NVMET_MAX_IO_QUEUES; i++)
        f->int_vector_cfg[i] = vnvme_state_get_u32(r);
    f->write_atomicity = vnvme_state_get_u32(r);
    f->async_event_cfg = vnvme_state_get_u32(r);
    f->timestamp_ms = vnvme_state_get_u64(r);
    f->timestamp_set_at_ms = vnvme_state_get_u64(r);
    f->timestamp_set = vnvme_state_get_bool(r);
    vnvme_state_get_bytes(r, f->host_behavior, sizeof(f->host_behavior));
    f->keep_alive_ms = vnvme_state_get_u32(r);
}

static void put_queues(struct vnvme_state_out *w, const struct nvmet_ctrlr *c)
{
    size_t at = vnvme_state_begin(w, TAG_QUEUES);
    uint32_t ncq = 0, nsq = 0;
    NVMET_QMAP_FOREACH(q, c->cq_created_map)
        ncq++;
    NVMET_QMAP_FOREACH(q, c->sq_created_map)
        nsq++;
    /* CQs first: an SQ names its CQ, which must exist when the SQ is rebuilt. */
    vnvme_state_put_u32(w, ncq);
    NVMET_QMAP_FOREACH(q, c->cq_created_map) {
        const struct nvmet_cq *cq = &c->cqs[q];
        vnvme_state_put_u16(w, cq->qid);
        vnvme_state_put_u32(w, cq->size);
        vnvme_state_put_u64(w, cq->iova);
        vnvme_state_put_u32(w, cq->tail);
        vnvme_state_put_u32(w, cq->head);
        vnvme_state_put_u8(w, cq->phase);
        vnvme_state_put_u8(w, cq->ien);
        vnvme_state_put_u16(w, cq->iv);
        vnvme_state_put_u32(w, cq->irq_pending);
        vnvme_state_put_u64(w, cq->coalesce_since_ns);
        vnvme_state_put_u8(w, (c->cq_irq_map[q / 64] >> (q % 64)) & 1);
        vnvme_state_put_u8(w, (c->cq_coalesce_map[q / 64] >> (q % 64)) & 1);
        vnvme_state_put_u8(w, cq->ring != NULL);
    }
    vnvme_state_put_u32(w, nsq);
    NVMET_QMAP_FOREACH(q, c->sq_created_map) {
        const struct nvmet_sq *sq = &c->sqs[q];
        vnvme_state_put_u16(w, sq->qid);
        vnvme_state_put_u32(w, sq->size);
        vnvme_state_put_u64(w, sq->iova);
        vnvme_state_put_u32(w, sq->head);
        vnvme_state_put_u32(w, sq->tail);
        vnvme_state_put_u16(w, sq->cqid);
        vnvme_state_put_u8(w, sq->qprio);
        vnvme_state_put_u8(w, sq->ring != NULL);
    }
    vnvme_state_end(w, at);
}

int nvmet_ctrlr_save(const struct nvmet_ctrlr *c, struct vnvme_state_out *w)
{
    if (!nvmet_ctrlr_quiet(c))
        return -EBUSY;
    size_t at = vnvme_state_begin(w, TAG_CTRLR);
    vnvme_state_put_u16(w, c->cntlid);
    vnvme_state_put_u64(w, c->cap);
    vnvme_state_put_u32(w, c->vs);
    vnvme_state_put_u32(w, c->intms);
    vnvme_state_put_u32(w, c->cc);
    vnvme_state_put_u32(w, c->csts);
    vnvme_state_put_u32(w, c->aqa);
    vnvme_state_put_u64(w, c->asq);
    vnvme_state_put_u64(w, c->acq);
    vnvme_state_put_u8(w, c->fatal);
    put_features(w, &c->feat);
    put_features(w, &c->feat_saved);
    vnvme_state_put_u32(w, c->feat_saved_fids);
    /* Asynchronous events: the outstanding requests' SQEs, then the events queued for them. */
    vnvme_state_put_u32(w, c->nr_aer_reqs);
    for (uint32_t i = 0; i < c->nr_aer_reqs; i++)
        vnvme_state_put_bytes(w, &c->aer_reqs[i]->cmd, sizeof(struct nvme_sqe));
    vnvme_state_put_u32(w, c->nr_pending_events);
    for (uint32_t i = 0; i < c->nr_pending_events; i++)
        vnvme_state_put_u32(w, c->pending_events[i]);
    vnvme_state_put_u32(w, c->masked_event_types);
    /* Logs, as the spec lays out their bytes. */
    vnvme_state_put_u32(w, NVMET_ERROR_LOG_ENTRIES);
    vnvme_state_put_bytes(w, c->error_log, sizeof(c->error_log));
    vnvme_state_put_u64(w, c->error_count);
    vnvme_state_put_u32(w, c->nr_changed_ns);
    for (uint32_t i = 0; i < c->nr_changed_ns && i < NVMET_CHANGED_NS_MAX; i++)
        vnvme_state_put_u32(w, c->changed_ns[i]);
    /* Counters: SMART's and what nvmf_get_stats shows, so neither goes back to zero. */
    vnvme_state_put_u64(w, c->units_read);
    vnvme_state_put_u64(w, c->units_written);
    vnvme_state_put_u64(w, c->read_cmds);
    vnvme_state_put_u64(w, c->write_cmds);
    vnvme_state_put_u64(w, c->sectors_read);
    vnvme_state_put_u64(w, c->sectors_written);
    vnvme_state_put_u64(w, c->cqes_posted);
    vnvme_state_put_u64(w, c->irqs_raised);
    vnvme_state_put_u64(w, c->irqs_coalesced);
    vnvme_state_put_u64(w, c->cq_full_holds);
    vnvme_state_put_u64(w, c->dbbuf_arms);
    vnvme_state_put_u64(w, c->busy_ticks);
    vnvme_state_put_u64(w, c->power_on_ms_base);
    vnvme_state_put_u64(w, c->keep_alive_deadline_ms);
    vnvme_state_put_u8(w, c->ka_activity);
    /* Doorbells: what was acted on (the page itself is the host's and travels as memory). */
    vnvme_state_put_u32(w, NVMET_DB_SLOTS);
    for (uint32_t i = 0; i < NVMET_DB_SLOTS; i++)
        vnvme_state_put_u32(w, c->db_seen[i]);
    vnvme_state_put_u8(w, c->dbbuf.on);
    vnvme_state_put_u8(w, c->dbbuf.dbs != NULL && c->dbbuf.eis != NULL);
    vnvme_state_put_u64(w, c->dbbuf.dbs_iova);
    vnvme_state_put_u64(w, c->dbbuf.eis_iova);
    for (uint32_t i = 0; i < NVMET_DB_SLOTS; i++)
        vnvme_state_put_u32(w, c->dbbuf.seen[i]);
    put_queues(w, c);
    /* Commands recalled from a stuck bdev: the SQ they came from and their SQE, to run again. */
    vnvme_state_put_u32(w, c->nr_carried);
    for (uint32_t i = 0; i < c->nr_carried; i++) {
        vnvme_state_put_u16(w, c->carried[i].sqid);
        vnvme_state_put_bytes(w, &c->carried[i].cmd, sizeof(struct nvme_sqe));
    }
    vnvme_state_end(w, at);
    return vnvme_state_out_error(w);
}

static void restore_cq(struct nvmet_ctrlr *c, struct vnvme_state_in *r)
{
    uint16_t qid = vnvme_state_get_u16(r);
    uint32_t size = vnvme_state_get_u32(r);
    uint64_t iova = vnvme_state_get_u64(r);
    uint32_t tail = vnvme_state_get_u32(r);
    uint32_t head = vnvme_state_get_u32(r);
    uint8_t phase = vnvme_state_get_u8(r);
    bool ien = vnvme_state_get_bool(r);
    uint16_t iv = vnvme_state_get_u16(r);
    uint32_t irq_pending = vnvme_state_get_u32(r);
    uint64_t since = vnvme_state_get_u64(r);
    bool irq_map = vnvme_state_get_bool(r);
    bool coalesce_map = vnvme_state_get_bool(r);
    bool mapped = vnvme_state_get_bool(r);
    if (!vnvme_state_in_ok(r))
        return;
    if (nvmet_cq_adopt(c, qid, iova, size, ien, iv, mapped) != 0 || tail >= size || head >= size || phase > 1 ||
        iv > NVMET_MAX_IO_QUEUES) {
        vnvme_state_fail(r, "a completion queue cannot be rebuilt (its memory is not mapped, or a value is out of range)");
        return;
    }
    struct nvmet_cq *cq = &c->cqs[qid];
    cq->tail = tail;
    cq->head = head;
    cq->phase = phase;
    cq->irq_pending = irq_pending;
    cq->coalesce_since_ns = since;
    if (irq_map)
        nvmet_qmap_set(c->cq_irq_map, qid);
    if (coalesce_map)
        nvmet_qmap_set(c->cq_coalesce_map, qid);
}

static void restore_sq(struct nvmet_ctrlr *c, struct vnvme_state_in *r)
{
    uint16_t qid = vnvme_state_get_u16(r);
    uint32_t size = vnvme_state_get_u32(r);
    uint64_t iova = vnvme_state_get_u64(r);
    uint32_t head = vnvme_state_get_u32(r);
    uint32_t tail = vnvme_state_get_u32(r);
    uint16_t cqid = vnvme_state_get_u16(r);
    uint8_t qprio = vnvme_state_get_u8(r);
    bool mapped = vnvme_state_get_bool(r);
    if (!vnvme_state_in_ok(r))
        return;
    if (nvmet_sq_adopt(c, qid, iova, size, cqid, qprio, mapped) != 0 || head >= size || tail >= size) {
        vnvme_state_fail(r, "a submission queue cannot be rebuilt (its memory is not mapped, or a value is out of range)");
        return;
    }
    c->sqs[qid].head = head;
    c->sqs[qid].tail = tail;
}

static void restore_queues(struct nvmet_ctrlr *c, struct vnvme_state_in *in)
{
    struct vnvme_state_in sec, *r = &sec;
    vnvme_state_enter(in, TAG_QUEUES, r);
    uint32_t ncq = vnvme_state_get_u32(r);
    if (ncq > NVMET_MAX_IO_QUEUES + 1)
        vnvme_state_fail(r, "more completion queues than a controller has");
    for (uint32_t i = 0; i < ncq && vnvme_state_in_ok(r); i++)
        restore_cq(c, r);
    uint32_t nsq = vnvme_state_get_u32(r);
    if (nsq > NVMET_MAX_IO_QUEUES + 1)
        vnvme_state_fail(r, "more submission queues than a controller has");
    for (uint32_t i = 0; i < nsq && vnvme_state_in_ok(r); i++)
        restore_sq(c, r);
    vnvme_state_expect_end(r);
}

/* An AER the host left outstanding: a request of the admin SQ holding its SQE again. */
static void restore_aer(struct nvmet_ctrlr *c, const struct nvme_sqe *cmd, struct vnvme_state_in *r)
{
    struct nvmet_sq *sq = &c->sqs[0];
    if (!sq->created || !sq->free_reqs || c->nr_aer_reqs > NVMET_AERL || cmd->opc != NVME_ADMIN_ASYNC_EVENT_REQUEST) {
        vnvme_state_fail(r, "an outstanding Asynchronous Event Request has no admin queue or is not one");
        return;
    }
    c->aer_reqs[c->nr_aer_reqs++] = nvmet_req_take(sq, cmd);
}

int nvmet_ctrlr_restore(struct nvmet_ctrlr *c, struct vnvme_state_in *in)
{
    struct vnvme_state_in sec, *r = &sec;
    vnvme_state_enter(in, TAG_CTRLR, r);
    uint16_t cntlid = vnvme_state_get_u16(r);
    c->cap = vnvme_state_get_u64(r);
    c->vs = vnvme_state_get_u32(r);
    c->intms = vnvme_state_get_u32(r);
    c->cc = vnvme_state_get_u32(r);
    c->csts = vnvme_state_get_u32(r);
    c->aqa = vnvme_state_get_u32(r);
    c->asq = vnvme_state_get_u64(r);
    c->acq = vnvme_state_get_u64(r);
    c->fatal = vnvme_state_get_bool(r);
    get_features(r, &c->feat);
    get_features(r, &c->feat_saved);
    c->feat_saved_fids = vnvme_state_get_u32(r);
    uint32_t naer = vnvme_state_get_u32(r);
    struct nvme_sqe aers[NVMET_AERL + 1];
    if (naer > NVMET_AERL + 1)
        vnvme_state_fail(r, "more outstanding Asynchronous Event Requests than the controller allows");
    for (uint32_t i = 0; i < naer && vnvme_state_in_ok(r); i++)
        vnvme_state_get_bytes(r, &aers[i], sizeof(aers[i]));
    c->nr_pending_events = vnvme_state_get_u32(r);
    if (c->nr_pending_events > sizeof(c->pending_events) / sizeof(c->pending_events[0]))
        vnvme_state_fail(r, "more queued events than the controller keeps");
    for (uint32_t i = 0; i < c->nr_pending_events && vnvme_state_in_ok(r); i++)
        c->pending_events[i] = vnvme_state_get_u32(r);
    c->masked_event_types = vnvme_state_get_u32(r);
    if (vnvme_state_get_u32(r) != NVMET_ERROR_LOG_ENTRIES)
        vnvme_state_fail(r, "an error log of a different size");
    vnvme_state_get_bytes(r, c->error_log, sizeof(c->error_log));
    c->error_count = vnvme_state_get_u64(r);
    c->nr_changed_ns = vnvme_state_get_u32(r);
    if (c->nr_changed_ns > NVMET_CHANGED_NS_MAX + 1)
        vnvme_state_fail(r, "a changed-namespace list longer than the log");
    for (uint32_t i = 0; i < c->nr_changed_ns && i < NVMET_CHANGED_NS_MAX && vnvme_state_in_ok(r); i++)
        c->changed_ns[i] = vnvme_state_get_u32(r);
    c->units_read = vnvme_state_get_u64(r);
    c->units_written = vnvme_state_get_u64(r);
    c->read_cmds = vnvme_state_get_u64(r);
    c->write_cmds = vnvme_state_get_u64(r);
    c->sectors_read = vnvme_state_get_u64(r);
    c->sectors_written = vnvme_state_get_u64(r);
    c->cqes_posted = vnvme_state_get_u64(r);
    c->irqs_raised = vnvme_state_get_u64(r);
    c->irqs_coalesced = vnvme_state_get_u64(r);
    c->cq_full_holds = vnvme_state_get_u64(r);
    c->dbbuf_arms = vnvme_state_get_u64(r);
    c->busy_ticks = vnvme_state_get_u64(r);
    c->power_on_ms_base = vnvme_state_get_u64(r);
    c->keep_alive_deadline_ms = vnvme_state_get_u64(r);
    c->ka_activity = vnvme_state_get_bool(r);
    if (vnvme_state_get_u32(r) != NVMET_DB_SLOTS)
        vnvme_state_fail(r, "a doorbell array of a different size");
    for (uint32_t i = 0; i < NVMET_DB_SLOTS; i++)
        c->db_seen[i] = vnvme_state_get_u32(r);
    c->dbbuf.on = vnvme_state_get_bool(r);
    bool dbbuf_mapped = vnvme_state_get_bool(r);
    c->dbbuf.dbs_iova = vnvme_state_get_u64(r);
    c->dbbuf.eis_iova = vnvme_state_get_u64(r);
    for (uint32_t i = 0; i < NVMET_DB_SLOTS; i++)
        c->dbbuf.seen[i] = vnvme_state_get_u32(r);
    if (vnvme_state_in_ok(r))
        restore_queues(c, r);
    for (uint32_t i = 0; i < naer && vnvme_state_in_ok(r); i++)
        restore_aer(c, &aers[i], r);
    uint32_t ncarried = vnvme_state_get_u32(r);
    if (ncarried > NVMET_MAX_IO_QUEUES * NVMET_MAX_REQS_PER_SQ)
        vnvme_state_fail(r, "more carried commands than a controller can have in flight");
    if (vnvme_state_in_ok(r) && ncarried) {
        c->carried = calloc(ncarried, sizeof(*c->carried));
        if (!c->carried)
            vnvme_state_fail(r, "out of memory for carried commands");
        c->carried_cap = c->carried ? ncarried : 0;
    }
    for (uint32_t i = 0; i < ncarried && vnvme_state_in_ok(r); i++) {
        c->carried[i].sqid = vnvme_state_get_u16(r);
        vnvme_state_get_bytes(r, &c->carried[i].cmd, sizeof(struct nvme_sqe));
        if (c->carried[i].sqid == 0 || c->carried[i].sqid > NVMET_MAX_IO_QUEUES || !c->sqs[c->carried[i].sqid].created)
            vnvme_state_fail(r, "a carried command names a submission queue that does not exist");
        c->nr_carried = i + 1;
    }
    vnvme_state_expect_end(r);
    if (!vnvme_state_in_ok(r))
        return -EPROTO;
    nvmet_dbbuf_memory_added(c);
    if (c->dbbuf.on && dbbuf_mapped && (!c->dbbuf.dbs || !c->dbbuf.eis)) {
        vnvme_state_fail(r, "the doorbell buffer's pages are not in mapped memory");
        return -EPROTO;
    }
    /* The same CNTLID: the host's driver knows the controller by it. */
    for (uint32_t i = 0; c->subsys && i < c->subsys->nr_ctrlrs; i++)
        if (c->subsys->ctrlrs[i] != c && c->subsys->ctrlrs[i]->cntlid == cntlid) {
            vnvme_state_fail(r, "two controllers of a subsystem with the same CNTLID");
            return -EPROTO;
        }
    c->cntlid = cntlid;
    if (c->subsys && c->subsys->next_cntlid <= cntlid)
        c->subsys->next_cntlid = (uint16_t)(cntlid + 1);
    return 0;
}
