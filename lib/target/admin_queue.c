/* SPDX-License-Identifier: MIT */
/*
 * Create/Delete I/O Submission and Completion Queue. The checks run in the
 * order the spec lists the command's fields so that a command with several
 * faults gets the status a host (and a conformance suite) expects first.
 */
#include "nvmet.h"

/* MSI-X vectors the transport declares: one per queue (admin included). */
#define NR_IRQ_VECTORS (sizeof(((struct nvmet_features *)0)->int_vector_cfg) / sizeof(uint32_t))

#define IOSQES_REQUIRED 6u /* 64-byte SQEs */
#define IOCQES_REQUIRED 4u /* 16-byte CQEs */

static void fail(struct nvmet_req *req, uint8_t sct, uint8_t sc)
{
    nvmet_req_status(req, sct, sc, true);
    nvmet_req_complete(req);
}

/* Queues allowed by Set Features Number of Queues (all of them if it was never issued). */
static uint32_t allowed_sqs(const struct nvmet_ctrlr *c)
{
    return c->feat.num_queues_set ? (c->feat.num_queues & 0xffff) + 1 : NVMET_MAX_IO_QUEUES;
}

static uint32_t allowed_cqs(const struct nvmet_ctrlr *c)
{
    return c->feat.num_queues_set ? (c->feat.num_queues >> 16) + 1 : NVMET_MAX_IO_QUEUES;
}

static bool queue_size_valid(const struct nvmet_ctrlr *c, uint32_t qsize_0based)
{
    /* A queue needs 2 entries: one is always empty to tell full from empty. */
    return qsize_0based != 0 && qsize_0based <= NVME_CAP_MQES(c->cap);
}

/* nvmet_*_create returns an NVMe status: the ring could not be mapped, or no memory. */
static void fail_create(struct nvmet_req *req, int status)
{
    req->rsp.status = (uint16_t)(status | NVME_STATUS_DNR);
    nvmet_req_complete(req);
}

void nvmet_execute_create_io_cq(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    uint16_t qid = (uint16_t)(req->cmd.cdw10 & 0xffff);
    uint32_t qsize = req->cmd.cdw10 >> 16;
    bool pc = req->cmd.cdw11 & 1u;
    bool ien = req->cmd.cdw11 & 2u;
    uint16_t iv = (uint16_t)(req->cmd.cdw11 >> 16);
    uint64_t prp1 = req->cmd.dptr.prp1;

    if (qid == 0 || qid > allowed_cqs(c) || c->cqs[qid].created)
        return fail(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER);
    if (!queue_size_valid(c, qsize))
        return fail(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_SIZE);
    /* CAP.CQR = 1: only physically contiguous queues (no PRP list for the ring). */
    if (!pc)
        return fail(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
    if (iv >= NR_IRQ_VECTORS)
        return fail(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_INTERRUPT_VECTOR);
    if (prp1 & (NVMET_PAGE_SIZE - 1))
        return fail(req, NVME_SCT_GENERIC, NVME_SC_INVALID_PRP_OFFSET);
    if (((c->cc & NVME_CC_IOCQES_MASK) >> NVME_CC_IOCQES_SHIFT) != IOCQES_REQUIRED)
        return fail(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);

    int rc = nvmet_cq_create(c, qid, prp1, qsize + 1, ien, iv);
    if (rc != 0)
        return fail_create(req, rc);
    nvmet_req_complete(req);
}

void nvmet_execute_create_io_sq(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    uint16_t qid = (uint16_t)(req->cmd.cdw10 & 0xffff);
    uint32_t qsize = req->cmd.cdw10 >> 16;
    bool pc = req->cmd.cdw11 & 1u;
    uint8_t qprio = (uint8_t)((req->cmd.cdw11 >> 1) & 3u);
    uint16_t cqid = (uint16_t)(req->cmd.cdw11 >> 16);
    uint64_t prp1 = req->cmd.dptr.prp1;

    if (qid == 0 || qid > allowed_sqs(c) || c->sqs[qid].created)
        return fail(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER);
    if (!queue_size_valid(c, qsize))
        return fail(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_SIZE);
    /*
     * The admin CQ (0) and an ID beyond the I/O CQs allocated (Number of
     * Queues) are Invalid Queue Identifier, as the spec asks and SPDK's
     * nvme_compliance checks; an allocated ID with no queue created behind it
     * is Completion Queue Invalid.
     */
    if (cqid == 0 || cqid > allowed_cqs(c))
        return fail(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER);
    if (!c->cqs[cqid].created)
        return fail(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_COMPLETION_QUEUE_INVALID);
    if (!pc)
        return fail(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
    if (prp1 & (NVMET_PAGE_SIZE - 1))
        return fail(req, NVME_SCT_GENERIC, NVME_SC_INVALID_PRP_OFFSET);
    if (((c->cc & NVME_CC_IOSQES_MASK) >> NVME_CC_IOSQES_SHIFT) != IOSQES_REQUIRED)
        return fail(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);

    int rc = nvmet_sq_create(c, qid, prp1, qsize + 1, cqid, qprio);
    if (rc != 0)
        return fail_create(req, rc);
    nvmet_req_complete(req);
}

void nvmet_execute_delete_io_sq(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    uint16_t qid = (uint16_t)(req->cmd.cdw10 & 0xffff);

    if (qid == 0 || qid > NVMET_MAX_IO_QUEUES || !c->sqs[qid].created || c->sqs[qid].deleting)
        return fail(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER);

    struct nvmet_sq *sq = &c->sqs[qid];
    if (sq->in_flight > 0) {
        /*
         * Commands a bdev can still recall complete now, as aborted by the
         * deletion. The rest have started and cannot be recalled: the delete
         * completes once they have (the queue code finishes delete_req when
         * in_flight drops to zero). Nothing more is fetched meanwhile.
         * delete_req is set only after the recall, so that no completion
         * inside the loop destroys the queue under it.
         */
        sq->deleting = true;
        nvmet_sq_recall(sq);
        if (sq->in_flight > 0) {
            sq->delete_req = req;
            return;
        }
    }
    nvmet_sq_destroy(c, sq);
    nvmet_req_complete(req);
}

void nvmet_execute_delete_io_cq(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    uint16_t qid = (uint16_t)(req->cmd.cdw10 & 0xffff);

    if (qid == 0 || qid > NVMET_MAX_IO_QUEUES || !c->cqs[qid].created)
        return fail(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER);
    /* Including SQs still draining for a pending delete: their completions land here. */
    if (c->cqs[qid].nr_sqs > 0)
        return fail(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_DELETION);
    nvmet_cq_destroy(c, &c->cqs[qid]);
    nvmet_req_complete(req);
}
