/* SPDX-License-Identifier: MIT */
/*
 * Queue mechanics shared by the admin queue and the I/O queue pairs, and the
 * I/O queue pair API. The I/O path takes no lock, makes no syscall and
 * allocates nothing when the caller's buffer is pool memory: requests and
 * PRP list pages are preallocated per queue, doorbells are stores into the
 * mmapped doorbell page (the SQ tail once per completion batch for what its
 * callbacks submit), and a coarse clock is read once per completion batch
 * (and every few empty polls while commands are outstanding).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "host_internal.h"
#include "common/log.h"

#define COMP "host"

static uint32_t doorbell_offset(const struct vnvme_ctrlr *c, uint16_t qid, bool cq)
{
    return NVME_REG_DBS + (2u * qid + (cq ? 1u : 0u)) * c->dstrd_bytes;
}

void vnvme_queue_reset_rings(struct vnvme_ctrlr *c, struct vnvme_queue *q)
{
    (void)c;
    memset(q->sq, 0, (size_t)q->size * sizeof(struct nvme_sqe));
    memset((void *)q->cq, 0, (size_t)q->size * sizeof(struct nvme_cqe));
    q->sq_tail = 0;
    q->cq_head = 0;
    q->phase = 1;
    q->sq_db_pending = false;
}

int vnvme_queue_init(struct vnvme_ctrlr *c, struct vnvme_queue *q, uint16_t qid, uint32_t size)
{
    memset(q, 0, sizeof(*q));
    if (size < 2)
        return -EINVAL;
    q->qid = qid;
    q->size = size;
    q->sq = vnvme_dma_pool_alloc(&c->pool, (size_t)size * sizeof(struct nvme_sqe), VNVME_PAGE);
    q->cq = vnvme_dma_pool_alloc(&c->pool, (size_t)size * sizeof(struct nvme_cqe), VNVME_PAGE);
    q->reqs = calloc(size - 1, sizeof(*q->reqs));
    q->nr_prp_lists = size - 1 < VNVME_PRP_LISTS_MAX ? size - 1 : VNVME_PRP_LISTS_MAX;
    q->prp_lists = vnvme_dma_pool_alloc(&c->pool, (size_t)q->nr_prp_lists * VNVME_PAGE, VNVME_PAGE);
    q->prp_free = calloc(q->nr_prp_lists, sizeof(*q->prp_free));
    if (!q->sq || !q->cq || !q->reqs || !q->prp_lists || !q->prp_free) {
        vnvme_queue_fini(c, q);
        return -ENOMEM;
    }
    q->sq_iova = vnvme_dma_pool_iova(&c->pool, q->sq, 1);
    q->cq_iova = vnvme_dma_pool_iova(&c->pool, (const void *)q->cq, 1);
    q->prp_lists_iova = vnvme_dma_pool_iova(&c->pool, q->prp_lists, 1);
    for (uint32_t i = 0; i < q->nr_prp_lists; i++)
        q->prp_free[i] = (int16_t)i;
    q->prp_free_top = q->nr_prp_lists;
    for (uint32_t i = size - 1; i-- > 0;) {
        q->reqs[i].cid = (uint16_t)i;
        q->reqs[i].prp_list = -1;
        q->reqs[i].next_free = q->free_reqs;
        q->free_reqs = &q->reqs[i];
    }
    pthread_mutex_lock(&c->client_lock);
    q->sq_db = vfio_user_client_region_ptr(c->client, VFIO_PCI_BAR0_REGION_INDEX, doorbell_offset(c, qid, false), 4);
    q->cq_db = vfio_user_client_region_ptr(c->client, VFIO_PCI_BAR0_REGION_INDEX, doorbell_offset(c, qid, true), 4);
    pthread_mutex_unlock(&c->client_lock);
    q->phase = 1;
    q->now_ms = vnvme_now_ms();
    /* Admin commands over PCIe take PRPs only. SGLS 01b or 10b: data blocks (10b: dword aligned, as ours are). */
    q->use_sgl = qid != 0 && !c->opts.prp_only && c->id != NULL && (c->id->sgls & 3u) != 0 &&
                 (c->id->sgls & 3u) != 3u;
    return 0;
}

void vnvme_queue_fini(struct vnvme_ctrlr *c, struct vnvme_queue *q)
{
    if (q->reqs)
        for (uint32_t i = 0; i + 1 < q->size; i++)
            if (q->reqs[i].bounce)
                vnvme_dma_pool_free(&c->pool, q->reqs[i].bounce);
    vnvme_dma_pool_free(&c->pool, q->sq);
    vnvme_dma_pool_free(&c->pool, (void *)q->cq);
    vnvme_dma_pool_free(&c->pool, q->prp_lists);
    free(q->reqs);
    free(q->prp_free);
    memset(q, 0, sizeof(*q));
}

static void release_req(struct vnvme_ctrlr *c, struct vnvme_queue *q, struct vnvme_req *r, bool success)
{
    if (r->bounce) {
        uint8_t xfer = NVME_OPC_XFER(r->opc);
        if (success && r->user_buf && (xfer == NVME_XFER_FROM_CTRL || xfer == NVME_XFER_BIDIR))
            memcpy(r->user_buf, r->bounce, r->len);
        vnvme_dma_pool_free(&c->pool, r->bounce);
        r->bounce = NULL;
    }
    if (r->prp_list >= 0) {
        q->prp_free[q->prp_free_top++] = r->prp_list;
        r->prp_list = -1;
    }
    r->active = false;
    r->aborting = false;
    r->next_free = q->free_reqs;
    q->free_reqs = r;
    q->outstanding--;
}

/* At least timeout_ms from now, whatever the clock's granularity. */
static inline uint64_t deadline_from(const struct vnvme_ctrlr *c, uint64_t now)
{
    return now + c->timeout_ms + c->clock_slack_ms;
}

/*
 * Doorbell slot (SQ tail even, CQ head odd) of an I/O queue. With a doorbell
 * buffer the value goes to the shadow page, and the register is written
 * only when it passes the controller's EventIdx (a controller about to sleep
 * asks for the next one), then as a message: on vfio-user that is what
 * wakes a controller, a store into the mmapped doorbell page wakes nothing.
 */
static void ring(struct vnvme_ctrlr *c, struct vnvme_queue *q, uint32_t cq, uint32_t value)
{
    if (!q->shadow_db) {
        vnvme_ring_doorbell(c, cq ? q->cq_db : q->sq_db, 2u * q->qid + cq, value);
        return;
    }
    uint16_t old = (uint16_t)q->shadow_db[cq];
    __atomic_store_n(&q->shadow_db[cq], value, __ATOMIC_RELEASE);
    /* Against the controller's store of EventIdx and its read of the shadow page (see its arming). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t event_idx = (uint16_t)__atomic_load_n(&q->event_idx[cq], __ATOMIC_RELAXED);
    if ((uint16_t)(value - event_idx - 1u) < (uint16_t)(value - old)) {
        vnvme_notify_doorbell(c, 2u * q->qid + cq, value);
        __atomic_store_n(&q->db_notices, q->db_notices + 1, __ATOMIC_RELAXED);
    }
}

/*
 * Inside a completion batch the batch's clock stamps new deadlines and the
 * tail doorbell is stored once when the batch ends; anywhere else a command
 * reads the clock and rings at once, so callers never need a flush.
 */
static void publish_sq_tail(struct vnvme_ctrlr *c, struct vnvme_queue *q)
{
    if (q->in_callbacks) {
        q->sq_db_pending = true;
        return;
    }
    q->sq_db_pending = false;
    ring(c, q, 0, q->sq_tail);
}

int vnvme_queue_submit(struct vnvme_ctrlr *c, struct vnvme_queue *q, const struct nvme_sqe *cmd, void *buf,
                       uint32_t len, vnvme_cmd_cb cb, void *arg, bool timed)
{
    if (!cb || (len && !buf))
        return -EINVAL;
    if (vnvme_ctrlr_failed_now(c))
        return -ENXIO;
    if (len > c->max_xfer)
        return -EINVAL;
    struct vnvme_req *r = q->free_reqs;
    if (!r)
        return -EAGAIN;
    /*
     * Built in place: the controller reads no slot past the tail until the
     * doorbell says so, and a failure below just leaves a dead copy there
     * for the next command to overwrite.
     */
    struct nvme_sqe *sqe = &q->sq[q->sq_tail];
    *sqe = *cmd;
    sqe->cid = r->cid;
    sqe->flags &= (uint8_t)~NVME_SQE_PSDT_MASK;
    /* Without a buffer, a caller-set PRP1 stays (Create I/O SQ/CQ carry the ring address there). */
    void *bounce = NULL;
    int16_t list = -1;
    if (len) {
        uint64_t iova = vnvme_dma_pool_iova(&c->pool, buf, len);
        if (!iova || (iova & 3u)) {
            bounce = vnvme_dma_pool_alloc(&c->pool, len, VNVME_PAGE);
            if (!bounce)
                return -ENOMEM;
            /*
             * Also for data from the controller: the bounce is copied back whole, and
             * bytes the command does not write must come back as the caller left them,
             * never as whatever an earlier user of this pool memory left there.
             */
            memcpy(bounce, buf, len);
            iova = vnvme_dma_pool_iova(&c->pool, bounce, len);
        }
        uint32_t first = VNVME_PAGE - (uint32_t)(iova & (VNVME_PAGE - 1));
        /*
         * One or two pages need no list: what vnvme_build_prps would return,
         * without its checks (iova is dword aligned, and len <= max_xfer, a
         * whole number of pages, is within its max_entries bound).
         */
        if (len <= first) {
            sqe->dptr.prp1 = iova;
            sqe->dptr.prp2 = 0;
        } else if (len <= first + VNVME_PAGE) {
            sqe->dptr.prp1 = iova;
            sqe->dptr.prp2 = (iova & ~(uint64_t)(VNVME_PAGE - 1)) + VNVME_PAGE;
        } else if (q->use_sgl) {
            /*
             * The pool is one range of IOVA space, so a buffer in it is one data
             * block: the controller maps a single range instead of fetching and
             * walking a list of pages, and no list page is written here.
             */
            sqe->flags |= (uint8_t)(NVME_PSDT_SGL_MPTR_CONTIG << NVME_SQE_PSDT_SHIFT);
            sqe->dptr.sgl1.addr = iova;
            sqe->dptr.sgl1.length = len;
            memset(sqe->dptr.sgl1.rsvd, 0, sizeof(sqe->dptr.sgl1.rsvd));
            sqe->dptr.sgl1.type = (uint8_t)(NVME_SGL_TYPE_DATA_BLOCK << 4 | NVME_SGL_SUBTYPE_ADDRESS);
        } else {
            if (q->prp_free_top == 0) {
                vnvme_dma_pool_free(&c->pool, bounce);
                return -EAGAIN;
            }
            list = q->prp_free[--q->prp_free_top];
            uint64_t *list_va = q->prp_lists + (size_t)list * VNVME_PRP_LIST_ENTRIES;
            uint64_t list_iova = q->prp_lists_iova + (uint64_t)list * VNVME_PAGE;
            int rc = vnvme_build_prps(iova, len, VNVME_PAGE, list_va, list_iova, c->max_xfer / VNVME_PAGE,
                                      &sqe->dptr.prp1, &sqe->dptr.prp2);
            if (rc) {
                q->prp_free[q->prp_free_top++] = list;
                vnvme_dma_pool_free(&c->pool, bounce);
                return rc;
            }
        }
    }
    q->free_reqs = r->next_free;
    r->cb = cb;
    r->arg = arg;
    r->deadline_ms = timed ? deadline_from(c, q->in_callbacks ? q->now_ms : vnvme_now_ms()) : 0;
    r->bounce = bounce;
    r->user_buf = bounce ? buf : NULL;
    r->len = len;
    r->opc = cmd->opc;
    r->active = true;
    r->abort_sent = false;
    r->aborting = false;
    r->prp_list = list;
    q->outstanding++;
    if (++q->sq_tail == q->size)
        q->sq_tail = 0;
    publish_sq_tail(c, q);
    return 0;
}

static void finish(struct vnvme_ctrlr *c, struct vnvme_queue *q, struct vnvme_req *r, const struct nvme_cqe *cpl)
{
    vnvme_cmd_cb cb = r->cb;
    void *arg = r->arg;
    release_req(c, q, r, !vnvme_cpl_is_error(cpl));
    cb(arg, cpl);
}

void vnvme_queue_complete_local(struct vnvme_ctrlr *c, struct vnvme_queue *q, struct vnvme_req *r, uint16_t status)
{
    struct nvme_cqe cpl = {.sqid = q->qid, .cid = r->cid, .status = (uint16_t)(status << 1)};
    finish(c, q, r, &cpl);
}

/*
 * Polls with commands outstanding but nothing completed read the clock only
 * every this many times, for the timeout check; a poll that finds
 * completions always reads it. Timeouts are tens of ms at least and checked
 * every timeout/8 (at most 100 ms), so a few polls of delay change nothing.
 */
#define VNVME_EMPTY_POLLS_PER_CLOCK 16u

static inline bool cqe_ready(const struct vnvme_queue *q, uint16_t *status)
{
    *status = __atomic_load_n(&q->cq[q->cq_head].status, __ATOMIC_ACQUIRE);
    return (*status & 1u) == q->phase;
}

int vnvme_queue_process(struct vnvme_ctrlr *c, struct vnvme_queue *q, uint32_t max)
{
    if (max == 0 || max > q->size)
        max = q->size;
    uint32_t n = 0;
    uint16_t status;
    if (cqe_ready(q, &status)) {
        q->now_ms = vnvme_now_ms();
        q->empty_polls = 0;
        bool outer = q->in_callbacks; /* a callback may poll this queue again */
        q->in_callbacks = true;
        do {
            volatile struct nvme_cqe *e = &q->cq[q->cq_head];
            struct nvme_cqe cpl;
            memcpy(&cpl, (const void *)e, sizeof(cpl));
            cpl.status = status;
            if (++q->cq_head == q->size) {
                q->cq_head = 0;
                q->phase ^= 1u;
            }
            n++;
            if (cpl.cid >= q->size - 1 || !q->reqs[cpl.cid].active) {
                VNVME_WARN(COMP, "queue %u: completion for unknown cid %u ignored", q->qid, cpl.cid);
                continue;
            }
            struct vnvme_req *r = &q->reqs[cpl.cid];
            if (r->aborting)
                continue; /* a reset owns it now */
            finish(c, q, r, &cpl);
        } while (n < max && cqe_ready(q, &status));
        q->in_callbacks = outer;
        ring(c, q, 1, q->cq_head);
    }
    /* Rung even when nested: a callback may wait for what it submitted by polling again. */
    if (q->sq_db_pending) {
        q->sq_db_pending = false;
        ring(c, q, 0, q->sq_tail);
    }
    if (!q->outstanding)
        return (int)n;
    if (n == 0) {
        if (++q->empty_polls < VNVME_EMPTY_POLLS_PER_CLOCK)
            return 0;
        q->empty_polls = 0;
        q->now_ms = vnvme_now_ms();
    }
    if (q->now_ms >= q->next_timeout_check_ms) {
        uint64_t step = c->timeout_ms / 8u;
        q->next_timeout_check_ms = q->now_ms + (step > 100u ? 100u : (step ? step : 1u));
        vnvme_queue_check_timeouts(c, q, q->now_ms);
    }
    return (int)n;
}

static uint16_t abort_status(const struct vnvme_req *r, uint16_t status, uint64_t now)
{
    return (r->deadline_ms && now >= r->deadline_ms) ? VNVME_HOST_SC_TIMEOUT : status;
}

void vnvme_queue_abort_all(struct vnvme_ctrlr *c, struct vnvme_queue *q, uint16_t status, uint64_t now)
{
    vnvme_queue_mark_aborting(q);
    vnvme_queue_complete_aborting(c, q, status, now);
}

void vnvme_queue_mark_aborting(struct vnvme_queue *q)
{
    for (uint32_t i = 0; q->reqs && i + 1 < q->size; i++)
        if (q->reqs[i].active)
            q->reqs[i].aborting = true;
}

void vnvme_queue_complete_aborting(struct vnvme_ctrlr *c, struct vnvme_queue *q, uint16_t status, uint64_t now)
{
    /* Callbacks may submit again: only requests marked before are completed here. */
    for (uint32_t i = 0; q->reqs && i + 1 < q->size; i++) {
        struct vnvme_req *r = &q->reqs[i];
        if (r->active && r->aborting)
            vnvme_queue_complete_local(c, q, r, abort_status(r, status, now));
    }
}

static void abort_done(void *arg, const struct nvme_cqe *cpl)
{
    (void)arg;
    (void)cpl;
}

void vnvme_queue_check_timeouts(struct vnvme_ctrlr *c, struct vnvme_queue *q, uint64_t now)
{
    for (uint32_t i = 0; i + 1 < q->size; i++) {
        struct vnvme_req *r = &q->reqs[i];
        if (!r->active || r->aborting || !r->deadline_ms || now < r->deadline_ms)
            continue;
        if (r->abort_sent) {
            /* The Abort did not help: only a controller reset frees the command (done in process_admin). */
            __atomic_store_n(&c->recovery_needed, true, __ATOMIC_RELEASE);
            continue;
        }
        VNVME_WARN(COMP, "queue %u: cid %u timed out, sending Abort", q->qid, r->cid);
        r->abort_sent = true;
        r->deadline_ms = deadline_from(c, now);
        struct nvme_sqe abort = {.opc = NVME_ADMIN_ABORT, .cdw10 = ((uint32_t)r->cid << 16) | q->qid};
        pthread_mutex_lock(&c->admin_lock);
        (void)vnvme_queue_submit(c, &c->admin, &abort, NULL, 0, abort_done, NULL, false);
        pthread_mutex_unlock(&c->admin_lock);
    }
}

/* ---- I/O queue pairs ---- */

static int admin_cmd(struct vnvme_ctrlr *c, struct nvme_sqe *cmd)
{
    struct nvme_cqe cpl;
    int rc = vnvme_ctrlr_admin_sync(c, cmd, NULL, 0, &cpl);
    if (rc)
        return rc;
    if (vnvme_cpl_is_error(&cpl)) {
        VNVME_WARN(COMP, "%s: admin opcode 0x%02x failed: status 0x%x", c->path, cmd->opc, vnvme_cpl_status(&cpl));
        return -EIO;
    }
    return 0;
}

int vnvme_qpair_create_hw(struct vnvme_qpair *qp)
{
    struct vnvme_ctrlr *c = qp->ctrlr;
    struct vnvme_queue *q = &qp->q;
    uint32_t cq_flags = 0x1u; /* physically contiguous */
    if (qp->irq_fd >= 0)
        cq_flags |= 0x2u | ((uint32_t)q->qid << 16);
    /* A new queue starts at 0 in the shadow page too (a queue of this qid before may have left values). */
    q->shadow_db = q->event_idx = NULL;
    if (c->dbbuf_on) {
        q->shadow_db = &c->dbbuf_dbs[2u * q->qid];
        q->event_idx = &c->dbbuf_eis[2u * q->qid];
        q->shadow_db[0] = q->shadow_db[1] = 0;
    }
    struct nvme_sqe cq = {.opc = NVME_ADMIN_CREATE_IO_CQ, .cdw10 = ((q->size - 1) << 16) | q->qid,
                          .cdw11 = cq_flags};
    cq.dptr.prp1 = q->cq_iova;
    int rc = admin_cmd(c, &cq);
    if (rc)
        return rc;
    struct nvme_sqe sq = {.opc = NVME_ADMIN_CREATE_IO_SQ, .cdw10 = ((q->size - 1) << 16) | q->qid,
                          .cdw11 = ((uint32_t)q->qid << 16) | 0x1u};
    sq.dptr.prp1 = q->sq_iova;
    rc = admin_cmd(c, &sq);
    if (rc) {
        struct nvme_sqe del = {.opc = NVME_ADMIN_DELETE_IO_CQ, .cdw10 = q->qid};
        (void)admin_cmd(c, &del);
        return rc;
    }
    qp->created = true;
    return 0;
}

static int setup_irq(struct vnvme_qpair *qp)
{
    struct vnvme_ctrlr *c = qp->ctrlr;
    uint16_t qid = qp->q.qid;
    if (qid >= c->nr_msix || c->msix_cap < 0)
        return -ENOSPC;
    qp->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (qp->irq_fd < 0)
        return -errno;
    pthread_mutex_lock(&c->client_lock);
    /*
     * The eventfd is what enables the vector; the device's MSI-X table is left
     * alone, as QEMU leaves it (it emulates the guest's table itself), so a
     * device that waited for its table to be unmasked fails here too.
     */
    int rc = vfio_user_client_set_irqs(c->client, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, qid, 1,
                                       &qp->irq_fd, NULL);
    pthread_mutex_unlock(&c->client_lock);
    if (rc)
        vnvme_ctrlr_transport_error(c, rc);
    return rc;
}

struct vnvme_qpair *vnvme_qpair_alloc(struct vnvme_ctrlr *c, uint32_t qsize)
{
    if (!c || vnvme_ctrlr_failed_now(c))
        return NULL;
    if (qsize == 0)
        qsize = c->io_queue_size;
    uint32_t mqes = NVME_CAP_MQES(c->cap) + 1u;
    if (qsize > mqes)
        qsize = mqes;
    if (qsize < 2)
        qsize = 2;
    pthread_mutex_lock(&c->admin_lock);
    uint16_t qid = 0;
    for (uint32_t i = 1; i <= c->max_io_queues && i < 64; i++)
        if (!(c->qid_used & (1ull << i))) {
            qid = (uint16_t)i;
            break;
        }
    struct vnvme_qpair *qp = qid ? calloc(1, sizeof(*qp)) : NULL;
    if (!qp)
        goto out;
    qp->ctrlr = c;
    qp->irq_fd = -1;
    if (vnvme_queue_init(c, &qp->q, qid, qsize) != 0)
        goto fail;
    if (c->opts.io_interrupts && setup_irq(qp) != 0)
        goto fail;
    if (vnvme_qpair_create_hw(qp) != 0)
        goto fail;
    c->qid_used |= 1ull << qid;
    qp->next = c->qpairs;
    c->qpairs = qp;
    goto out;
fail:
    if (qp->irq_fd >= 0)
        close(qp->irq_fd);
    vnvme_queue_fini(c, &qp->q);
    free(qp);
    qp = NULL;
out:
    pthread_mutex_unlock(&c->admin_lock);
    return qp;
}

void vnvme_qpair_free(struct vnvme_qpair *qp)
{
    if (!qp)
        return;
    struct vnvme_ctrlr *c = qp->ctrlr;
    pthread_mutex_lock(&c->admin_lock);
    if (!vnvme_ctrlr_failed_now(c) && qp->created) {
        (void)vnvme_queue_process(c, &qp->q, 0);
        struct nvme_sqe dsq = {.opc = NVME_ADMIN_DELETE_IO_SQ, .cdw10 = qp->q.qid};
        struct nvme_sqe dcq = {.opc = NVME_ADMIN_DELETE_IO_CQ, .cdw10 = qp->q.qid};
        if (admin_cmd(c, &dsq) == 0)
            (void)vnvme_queue_process(c, &qp->q, 0);
        (void)admin_cmd(c, &dcq);
    }
    vnvme_queue_abort_all(c, &qp->q, VNVME_HOST_SC_ABORTED_DISCONNECT, vnvme_now_ms());
    for (struct vnvme_qpair **p = &c->qpairs; *p; p = &(*p)->next)
        if (*p == qp) {
            *p = qp->next;
            break;
        }
    c->qid_used &= ~(1ull << qp->q.qid);
    pthread_mutex_unlock(&c->admin_lock);
    if (qp->irq_fd >= 0)
        close(qp->irq_fd);
    vnvme_queue_fini(c, &qp->q);
    free(qp);
}

int vnvme_qpair_process(struct vnvme_qpair *qp, uint32_t max)
{
    struct vnvme_ctrlr *c = qp->ctrlr;
    if (vnvme_ctrlr_failed_now(c)) {
        if (qp->q.outstanding)
            vnvme_queue_abort_all(c, &qp->q, VNVME_HOST_SC_ABORTED_DISCONNECT, vnvme_now_ms());
        return -ENXIO;
    }
    return vnvme_queue_process(c, &qp->q, max);
}

int vnvme_qpair_fd(const struct vnvme_qpair *qp)
{
    return qp->irq_fd;
}

uint32_t vnvme_qpair_outstanding(const struct vnvme_qpair *qp)
{
    return qp->q.outstanding;
}

bool vnvme_qpair_uses_sgl(const struct vnvme_qpair *qp)
{
    return qp->q.use_sgl;
}

bool vnvme_qpair_uses_doorbell_buffer(const struct vnvme_qpair *qp)
{
    return qp->q.shadow_db != NULL;
}

uint64_t vnvme_qpair_doorbell_notices(const struct vnvme_qpair *qp)
{
    return __atomic_load_n(&qp->q.db_notices, __ATOMIC_RELAXED);
}

int vnvme_qpair_submit_raw(struct vnvme_qpair *qp, const struct nvme_sqe *cmd, void *buf, uint32_t len,
                           vnvme_cmd_cb cb, void *arg)
{
    return vnvme_queue_submit(qp->ctrlr, &qp->q, cmd, buf, len, cb, arg, true);
}

/* ---- NVM commands ---- */

static int rw(struct vnvme_ns *ns, struct vnvme_qpair *qp, uint8_t opc, void *buf, uint64_t lba, uint32_t nlb,
              vnvme_cmd_cb cb, void *arg, uint32_t flags)
{
    if (nlb == 0 || nlb > 65536u || !ns->active)
        return -EINVAL;
    uint64_t len = (uint64_t)nlb * ns->block_size;
    if (len > UINT32_MAX)
        return -EINVAL;
    struct nvme_sqe cmd = {.opc = opc, .nsid = ns->nsid, .cdw10 = (uint32_t)lba, .cdw11 = (uint32_t)(lba >> 32),
                           .cdw12 = (nlb - 1u) | ((flags & VNVME_IO_FUA) ? NVME_RW_FUA : 0u)};
    return vnvme_queue_submit(qp->ctrlr, &qp->q, &cmd, opc == NVME_NVM_WRITE_ZEROES ? NULL : buf,
                              opc == NVME_NVM_WRITE_ZEROES ? 0 : (uint32_t)len, cb, arg, true);
}

int vnvme_ns_read(struct vnvme_ns *ns, struct vnvme_qpair *qp, void *buf, uint64_t lba, uint32_t nlb,
                  vnvme_cmd_cb cb, void *arg, uint32_t flags)
{
    return rw(ns, qp, NVME_NVM_READ, buf, lba, nlb, cb, arg, flags);
}

int vnvme_ns_write(struct vnvme_ns *ns, struct vnvme_qpair *qp, const void *buf, uint64_t lba, uint32_t nlb,
                   vnvme_cmd_cb cb, void *arg, uint32_t flags)
{
    /* Writes only read the buffer: a bounce copies from it and nothing is copied back. */
    return rw(ns, qp, NVME_NVM_WRITE, (void *)(uintptr_t)buf, lba, nlb, cb, arg, flags);
}

int vnvme_ns_write_zeroes(struct vnvme_ns *ns, struct vnvme_qpair *qp, uint64_t lba, uint32_t nlb,
                          vnvme_cmd_cb cb, void *arg, uint32_t flags)
{
    return rw(ns, qp, NVME_NVM_WRITE_ZEROES, NULL, lba, nlb, cb, arg, flags);
}

int vnvme_ns_flush(struct vnvme_ns *ns, struct vnvme_qpair *qp, vnvme_cmd_cb cb, void *arg)
{
    struct nvme_sqe cmd = {.opc = NVME_NVM_FLUSH, .nsid = ns->nsid};
    return vnvme_queue_submit(qp->ctrlr, &qp->q, &cmd, NULL, 0, cb, arg, true);
}

int vnvme_ns_deallocate(struct vnvme_ns *ns, struct vnvme_qpair *qp, const struct nvme_dsm_range *ranges,
                        uint16_t nr, vnvme_cmd_cb cb, void *arg)
{
    if (nr == 0 || nr > 256 || !ranges)
        return -EINVAL;
    struct nvme_sqe cmd = {.opc = NVME_NVM_DATASET_MANAGEMENT, .nsid = ns->nsid, .cdw10 = nr - 1u,
                           .cdw11 = NVME_DSM_AD};
    return vnvme_queue_submit(qp->ctrlr, &qp->q, &cmd, (void *)(uintptr_t)ranges,
                              (uint32_t)nr * sizeof(*ranges), cb, arg, true);
}
