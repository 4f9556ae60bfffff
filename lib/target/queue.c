/* SPDX-License-Identifier: MIT */
/* Submission and completion queues: ring mapping, doorbells, fetching SQEs, posting CQEs (interrupts: interrupts.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "nvmet.h"
#include "vnvme/vfio_user_dma.h"


static void *map_ring(struct nvmet_ctrlr *c, uint64_t iova, uint64_t len, uint32_t access)
{
    struct iovec iov;
    /* The ring is accessed by index, so it must be one contiguous local span. */
    if (c->tops->translate(c->tctx, iova, len, access, &iov, 1) != 1)
        return NULL;
    return iov.iov_base;
}

bool nvmet_sq_map(struct nvmet_ctrlr *c, struct nvmet_sq *sq)
{
    sq->ring = map_ring(c, sq->iova, (uint64_t)sq->size * sizeof(struct nvme_sqe), VFIO_USER_DMA_READ_OK);
    return sq->ring != NULL;
}

bool nvmet_cq_map(struct nvmet_ctrlr *c, struct nvmet_cq *cq)
{
    cq->ring = map_ring(c, cq->iova, (uint64_t)cq->size * sizeof(struct nvme_cqe), VFIO_USER_DMA_WRITE_OK);
    return cq->ring != NULL;
}

static void reset_doorbell(struct nvmet_ctrlr *c, uint32_t slot)
{
    c->doorbells[slot] = 0;
    c->db_seen[slot] = 0;
    c->dbbuf.seen[slot] = 0; /* a new queue starts at 0: a shadow value other than that is a host write */
}

int nvmet_cq_adopt(struct nvmet_ctrlr *c, uint16_t qid, uint64_t iova, uint32_t size, bool ien, uint16_t iv,
                   bool must_map)
{
    if (qid > NVMET_MAX_IO_QUEUES || c->cqs[qid].created)
        return NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER);
    if (size < 2 || size > NVMET_MAX_QUEUE_ENTRIES)
        return NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_SIZE);
    struct nvmet_cq *cq = &c->cqs[qid];
    memset(cq, 0, sizeof(*cq));
    cq->qid = qid;
    cq->size = size;
    cq->iova = iova;
    if (!nvmet_cq_map(c, cq) && must_map) {
        memset(cq, 0, sizeof(*cq));
        return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
    }
    cq->phase = 1;
    cq->ien = ien;
    cq->iv = iv;
    cq->created = true;
    nvmet_qmap_set(c->cq_created_map, qid);
    nvmet_qmap_clear(c->cq_irq_map, qid);
    nvmet_qmap_clear(c->cq_coalesce_map, qid);
    nvmet_qmap_clear(c->cq_overflow_map, qid);
    return 0;
}

int nvmet_cq_create(struct nvmet_ctrlr *c, uint16_t qid, uint64_t iova, uint32_t size, bool ien, uint16_t iv)
{
    int st = nvmet_cq_adopt(c, qid, iova, size, ien, iv, true);
    if (st == 0)
        reset_doorbell(c, 2u * qid + 1);
    return st;
}

int nvmet_sq_adopt(struct nvmet_ctrlr *c, uint16_t qid, uint64_t iova, uint32_t size, uint16_t cqid, uint8_t qprio,
                   bool must_map)
{
    if (qid > NVMET_MAX_IO_QUEUES || c->sqs[qid].created)
        return NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER);
    if (size < 2 || size > NVMET_MAX_QUEUE_ENTRIES)
        return NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_SIZE);
    if (cqid > NVMET_MAX_IO_QUEUES || !c->cqs[cqid].created || (qid == 0) != (cqid == 0))
        return NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_COMPLETION_QUEUE_INVALID);
    struct nvmet_sq *sq = &c->sqs[qid];
    memset(sq, 0, sizeof(*sq));
    sq->qid = qid;
    sq->size = size;
    sq->iova = iova;
    if (!nvmet_sq_map(c, sq) && must_map) {
        memset(sq, 0, sizeof(*sq));
        return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
    }
    /* A queue of N entries holds at most N - 1 commands. */
    sq->nr_reqs = size - 1 < NVMET_MAX_REQS_PER_SQ ? size - 1 : NVMET_MAX_REQS_PER_SQ;
    sq->reqs = calloc(sq->nr_reqs, sizeof(*sq->reqs));
    if (!sq->reqs) {
        memset(sq, 0, sizeof(*sq));
        return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INTERNAL);
    }
    for (uint32_t i = sq->nr_reqs; i-- > 0;) {
        sq->reqs[i].sq = sq;
        sq->reqs[i].next_free = sq->free_reqs;
        sq->free_reqs = &sq->reqs[i];
    }
    sq->cqid = cqid;
    sq->cq = &c->cqs[cqid];
    sq->qprio = qprio;
    sq->created = true;
    nvmet_qmap_set(c->sq_created_map, qid);
    sq->cq->nr_sqs++;
    return 0;
}

int nvmet_sq_create(struct nvmet_ctrlr *c, uint16_t qid, uint64_t iova, uint32_t size, uint16_t cqid, uint8_t qprio)
{
    int st = nvmet_sq_adopt(c, qid, iova, size, cqid, qprio, true);
    if (st == 0)
        reset_doorbell(c, 2u * qid);
    return st;
}

static void free_req(struct nvmet_req *req)
{
    struct nvmet_sq *sq = req->sq;
    req->in_flight = false;
    req->next_free = sq->free_reqs;
    sq->free_reqs = req;
    sq->in_flight--;
}

void nvmet_sq_destroy(struct nvmet_ctrlr *c, struct nvmet_sq *sq)
{
    if (!sq->created)
        return;
    struct nvmet_cq *cq = sq->cq;
    /* Completions of this SQ still waiting for CQ room have nowhere to go any more. */
    struct nvmet_req **pp = &cq->overflow_head;
    cq->overflow_tail = NULL;
    while (*pp) {
        struct nvmet_req *req = *pp;
        if (req->sq == sq) {
            *pp = req->next_free;
            free_req(req);
        } else {
            cq->overflow_tail = req;
            pp = &req->next_free;
        }
    }
    if (sq->in_flight == 0)
        free(sq->reqs);
    else
        VNVME_ERR("nvmet", "ctrlr %u: SQ %u destroyed with %u commands in a bdev; requests leaked", c->cntlid,
                  sq->qid, sq->in_flight);
    if (cq->nr_sqs)
        cq->nr_sqs--;
    uint16_t qid = sq->qid;
    memset(sq, 0, sizeof(*sq));
    sq->qid = qid; /* nvmet_sq_ctrlr() relies on it even for unused slots */
    /* Commands carried over a handover for this queue have nobody to answer to any more. */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < c->nr_carried; i++)
        if (c->carried[i].sqid != qid)
            c->carried[kept++] = c->carried[i];
    c->nr_carried = kept;
    nvmet_qmap_clear(c->sq_created_map, qid);
    reset_doorbell(c, 2u * qid);
}

void nvmet_cq_destroy(struct nvmet_ctrlr *c, struct nvmet_cq *cq)
{
    if (!cq->created)
        return;
    uint16_t qid = cq->qid;
    memset(cq, 0, sizeof(*cq));
    cq->qid = qid;
    nvmet_qmap_clear(c->cq_created_map, qid);
    nvmet_qmap_clear(c->cq_irq_map, qid);
    nvmet_qmap_clear(c->cq_coalesce_map, qid);
    nvmet_qmap_clear(c->cq_overflow_map, qid);
    reset_doorbell(c, 2u * qid + 1);
}

/* ---- doorbells ---- */

static void bad_doorbell(struct nvmet_ctrlr *c, uint32_t slot, uint32_t v, uint8_t info)
{
    VNVME_DEBUG("nvmet", "ctrlr %u: invalid doorbell write: slot %u value %u", c->cntlid, slot, v);
    nvmet_aer_post(c, NVME_AER_TYPE_ERROR, info, NVME_LOG_ERROR);
}

/* Entries from a to b going forward around a ring of size n. */
static inline uint32_t ring_dist(uint32_t a, uint32_t b, uint32_t n)
{
    return b >= a ? b - a : n - a + b;
}

static void sq_doorbell(struct nvmet_ctrlr *c, uint32_t qid, uint32_t v)
{
    struct nvmet_sq *sq = &c->sqs[qid];
    if (!sq->created)
        bad_doorbell(c, 2 * qid, v, NVME_AER_INFO_ERR_INVALID_DB_REGISTER);
    else if (v >= sq->size)
        bad_doorbell(c, 2 * qid, v, NVME_AER_INFO_ERR_INVALID_DB_VALUE);
    else
        sq->tail = v;
}

static void cq_doorbell(struct nvmet_ctrlr *c, uint32_t qid, uint32_t v)
{
    struct nvmet_cq *cq = &c->cqs[qid];
    if (!cq->created)
        bad_doorbell(c, 2 * qid + 1, v, NVME_AER_INFO_ERR_INVALID_DB_REGISTER);
    else if (v >= cq->size || ring_dist(cq->head, v, cq->size) > ring_dist(cq->head, cq->tail, cq->size))
        bad_doorbell(c, 2 * qid + 1, v, NVME_AER_INFO_ERR_INVALID_DB_VALUE); /* frees entries never posted */
    else
        cq->head = v;
}

void nvmet_doorbell_write(struct nvmet_ctrlr *c, uint32_t slot, uint32_t v)
{
    if ((slot & 1) == 0)
        sq_doorbell(c, slot / 2, v);
    else
        cq_doorbell(c, slot / 2, v);
}

/* An I/O queue whose doorbell lives in the host's shadow page (doorbell_buffer.c). */
static inline bool shadowed(const struct nvmet_ctrlr *c, uint32_t slot)
{
    if (!c->dbbuf.on || slot < 2)
        return false;
    return (slot & 1) == 0 ? c->sqs[slot / 2].created : c->cqs[slot / 2].created;
}

/* Act on slot's register value if it changed since last time; a bad value is reported once, not on every poll. */
static inline bool check_slot(struct nvmet_ctrlr *c, uint32_t slot)
{
    uint32_t v = __atomic_load_n(&c->doorbells[slot], __ATOMIC_ACQUIRE);
    if (v == c->db_seen[slot])
        return false;
    c->db_seen[slot] = v;
    /* With a shadow page the register write is only a wakeup: its value may be older than the shadow's. */
    if (!shadowed(c, slot))
        nvmet_doorbell_write(c, slot, v);
    return true;
}

static inline bool check_shadow_slot(struct nvmet_ctrlr *c, uint32_t slot)
{
    struct nvmet_dbbuf *d = &c->dbbuf;
    if (!d->dbs)
        return false; /* its memory is unmapped: the queue waits, like one whose ring is */
    uint32_t v = __atomic_load_n(&d->dbs[slot], __ATOMIC_ACQUIRE);
    if (v == d->seen[slot])
        return false;
    d->seen[slot] = v;
    nvmet_doorbell_write(c, slot, v);
    return true;
}

/* Check the doorbells of the queues in map; odd = CQ head doorbells. True when one changed. */
static inline bool check_queue_slots(struct nvmet_ctrlr *c, const uint64_t *map, uint32_t odd)
{
    bool changed = false;
    for (uint32_t w = 0; w < NVMET_QMAP_WORDS; w++) {
        /* A copy of the word is enough: handling a doorbell never creates or deletes a queue. */
        for (uint64_t bits = map[w]; bits; bits &= bits - 1) {
            uint32_t slot = 2 * (w * 64 + (uint32_t)__builtin_ctzll(bits)) + odd;
            changed |= c->dbbuf.on && slot >= 2 ? check_shadow_slot(c, slot) : check_slot(c, slot);
        }
    }
    return changed;
}

/*
 * The doorbells of existing queues are checked one by one on every call.
 * Any other slot only matters when the host wrote it (an invalid doorbell
 * register, which raises an event): db_seen mirrors every slot, so one block
 * compare of the whole page against it (a few vector instructions instead
 * of a per-slot loop) detects such a write. The compare runs on every call
 * that found no doorbell of an existing queue changed (an idle poll) and on
 * every DB_FULL_CHECK_EVERY-th busy one, so under load the event comes at
 * most that many polls late. A controller its poller visits rarely (idle
 * for a while, one of many) compares on every DB_IDLE_CHECK_EVERY-th idle
 * poll: with hundreds of idle controllers the compare of each page is a
 * large part of what a reactor's wakeup costs (measured: 3.9 against 4.7 %
 * of a core for 256 idle ones). A slot the host writes between the two
 * steps only makes the compare fail and the exact per-slot scan act on it.
 */
#define DB_FULL_CHECK_EVERY 64u
#define DB_IDLE_CHECK_EVERY 8u
void nvmet_ctrlr_check_doorbells(struct nvmet_ctrlr *c)
{
    bool busy = check_queue_slots(c, c->sq_created_map, 0);
    busy |= check_queue_slots(c, c->cq_created_map, 1);
    if (busy && ++c->db_busy_checks % DB_FULL_CHECK_EVERY != 0)
        return;
    if (!busy && c->polled_rarely && ++c->db_idle_checks % DB_IDLE_CHECK_EVERY != 0)
        return;
    /* The page is shared with the client; a torn view only sends us to the exact per-slot scan. */
    if (memcmp((const void *)(uintptr_t)c->doorbells, c->db_seen, sizeof(c->db_seen)) == 0)
        return;
    for (uint32_t slot = 0; slot < NVMET_DB_SLOTS; slot++)
        (void)check_slot(c, slot);
}

int nvmet_ctrlr_doorbell_watch(const struct nvmet_ctrlr *c, const volatile uint32_t **words, uint32_t *seen, int max)
{
    if (!c->doorbells)
        return -1;
    const struct nvmet_dbbuf *d = &c->dbbuf;
    int n = 0;
    NVMET_QMAP_FOREACH(q, c->sq_created_map) {
        uint32_t slot = 2 * q;
        if (n == max || (d->on && slot >= 2 && !d->dbs))
            return -1;
        bool shadow = d->on && slot >= 2;
        words[n] = shadow ? &d->dbs[slot] : &c->doorbells[slot];
        seen[n++] = shadow ? d->seen[slot] : c->db_seen[slot];
    }
    return n;
}

/* ---- fetching ---- */

int nvmet_sq_process(struct nvmet_ctrlr *c, struct nvmet_sq *sq, uint32_t budget)
{
    uint32_t n = 0;
    if (!sq->ring || sq->deleting)
        return 0;
    while (n < budget && sq->head != sq->tail && sq->free_reqs) {
        struct nvmet_req *req = nvmet_req_take(sq, &sq->ring[sq->head]);
        sq->head = sq->head + 1 == sq->size ? 0 : sq->head + 1;
        n++;
        if (sq->qid == 0)
            nvmet_admin_execute(req);
        else
            nvmet_io_execute(req);
        if (!sq->created || !sq->ring)
            break; /* the command deleted its own queue or the controller went away */
    }
    if (n)
        c->ka_activity = true;
    return (int)n;
}

/* ---- completions ---- */

static bool cq_full(const struct nvmet_cq *cq)
{
    uint32_t next = cq->tail + 1 == cq->size ? 0 : cq->tail + 1;
    return next == cq->head;
}

static void cq_post(struct nvmet_ctrlr *c, struct nvmet_cq *cq, struct nvmet_req *req)
{
    c->cqes_posted++;
    struct nvmet_sq *sq = req->sq;
    struct nvme_cqe *e = &cq->ring[cq->tail];
    e->cdw0 = req->rsp.cdw0;
    e->cdw1 = req->rsp.cdw1;
    e->sqhd = (uint16_t)sq->head;
    e->sqid = sq->qid;
    e->cid = req->cmd.cid;
    /* The phase tag goes last: the host must never see it before the rest of the entry (or the data). */
    __atomic_store_n(&e->status, (uint16_t)((req->rsp.status << 1) | cq->phase), __ATOMIC_RELEASE);
    if (++cq->tail == cq->size) {
        cq->tail = 0;
        cq->phase ^= 1;
    }
    cq->irq_pending++;
    nvmet_qmap_set(c->cq_irq_map, cq->qid);
}

static void finish_delete(struct nvmet_ctrlr *c, struct nvmet_sq *sq)
{
    struct nvmet_req *d = sq->delete_req;
    sq->delete_req = NULL;
    nvmet_sq_destroy(c, sq);
    if (d) {
        d->rsp.status = 0;
        nvmet_req_complete(d);
    }
}

static void after_free(struct nvmet_ctrlr *c, struct nvmet_sq *sq)
{
    if (sq->deleting && sq->in_flight == 0 && sq->delete_req)
        finish_delete(c, sq);
}

void nvmet_req_complete(struct nvmet_req *req)
{
    struct nvmet_sq *sq = req->sq;
    struct nvmet_ctrlr *c = nvmet_sq_ctrlr(sq);
    struct nvmet_cq *cq = sq->cq;

    if (__builtin_expect(req->carry, 0)) {
        nvmet_req_carry(req);
        free_req(req);
        after_free(c, sq);
        return;
    }
    if (req->rsp.status != 0)
        nvmet_error_log_add(c, req, req->rsp.status);
    /* After a reset (RDY clear) or with the queue gone, the completion has no place to go. */
    if (!(c->csts & NVME_CSTS_RDY) || !sq->created || !cq || !cq->created) {
        free_req(req);
        return;
    }
    req->next_free = NULL;
    if (!cq->ring || cq->overflow_head || cq_full(cq)) {
        /* Never overwrite an entry the host has not consumed: wait for the head to move. */
        c->cq_full_holds++;
        if (cq->overflow_tail)
            cq->overflow_tail->next_free = req;
        else
            cq->overflow_head = req;
        cq->overflow_tail = req;
        nvmet_qmap_set(c->cq_overflow_map, cq->qid);
        return;
    }
    cq_post(c, cq, req);
    free_req(req);
    after_free(c, sq);
}

int nvmet_cq_flush_overflow(struct nvmet_ctrlr *c, struct nvmet_cq *cq)
{
    int n = 0;
    while (cq->overflow_head && cq->ring && !cq_full(cq)) {
        struct nvmet_req *req = cq->overflow_head;
        cq->overflow_head = req->next_free;
        if (!cq->overflow_head)
            cq->overflow_tail = NULL;
        struct nvmet_sq *sq = req->sq;
        cq_post(c, cq, req);
        free_req(req);
        n++;
        after_free(c, sq);
    }
    return n;
}
