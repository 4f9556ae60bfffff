/* SPDX-License-Identifier: MIT */
/*
 * Admin command dispatch, plus the two commands too small for a file of
 * their own (Abort, Keep Alive). Failed commands reach the error log through
 * nvmet_req_complete (queue.c), so handlers only set the status.
 */
#include "nvmet.h"

/*
 * Admin commands complete before the next one is fetched, except AERs; I/O
 * commands can be recalled only while their bdev still holds them without
 * having started them (see vnvme_bdev_ops.abort: the delay bdev can). Anything
 * else is past recall, and Abort answers "not aborted" (cdw0 bit 0), which
 * the spec allows for any command.
 */
static bool abort_aer(struct nvmet_ctrlr *c, uint16_t cid)
{
    for (uint32_t i = 0; i < c->nr_aer_reqs; i++) {
        struct nvmet_req *aer = c->aer_reqs[i];
        if (aer->cmd.cid != cid)
            continue;
        nvmet_aer_cancel(c, aer);
        nvmet_req_status(aer, NVME_SCT_GENERIC, NVME_SC_ABORTED_BY_REQUEST, false);
        nvmet_req_complete(aer);
        return true;
    }
    return false;
}

static bool abort_io(struct nvmet_ctrlr *c, uint16_t sqid, uint16_t cid)
{
    if (sqid > NVMET_MAX_IO_QUEUES || !c->sqs[sqid].created)
        return false;
    struct nvmet_sq *sq = &c->sqs[sqid];
    for (uint32_t i = 0; i < sq->nr_reqs; i++) {
        struct nvmet_req *r = &sq->reqs[i];
        if (r->in_flight && r->cmd.cid == cid)
            return nvmet_io_abort(r);
    }
    return false;
}

static void execute_abort(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    uint16_t sqid = (uint16_t)(req->cmd.cdw10 & 0xffff);
    uint16_t cid = (uint16_t)(req->cmd.cdw10 >> 16);
    bool aborted = sqid == 0 ? abort_aer(c, cid) : abort_io(c, sqid, cid);
    req->rsp.cdw0 = aborted ? 0 : 1; /* bit 0 set: not aborted */
    nvmet_req_complete(req);
}

static void execute_keep_alive(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);

    c->keep_alive_deadline_ms = c->feat.keep_alive_ms ? nvmet_now_ms() + c->feat.keep_alive_ms : 0;
    nvmet_req_complete(req);
}

void nvmet_admin_execute(struct nvmet_req *req)
{
    req->rsp.cdw0 = 0;
    req->rsp.cdw1 = 0;
    req->rsp.status = 0;

    /* Fused operations exist only for Compare and Write (an I/O pair). */
    if (req->cmd.flags & NVME_SQE_FUSE_MASK) {
        nvmet_req_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD, true);
        nvmet_req_complete(req);
        return;
    }
    /* Admin commands over PCIe use PRPs only (SGLS describes I/O commands). */
    if (req->cmd.flags & NVME_SQE_PSDT_MASK) {
        nvmet_req_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD, true);
        nvmet_req_complete(req);
        return;
    }

    switch (req->cmd.opc) {
    case NVME_ADMIN_DELETE_IO_SQ:
        nvmet_execute_delete_io_sq(req);
        break;
    case NVME_ADMIN_CREATE_IO_SQ:
        nvmet_execute_create_io_sq(req);
        break;
    case NVME_ADMIN_GET_LOG_PAGE:
        nvmet_execute_get_log_page(req);
        break;
    case NVME_ADMIN_DELETE_IO_CQ:
        nvmet_execute_delete_io_cq(req);
        break;
    case NVME_ADMIN_CREATE_IO_CQ:
        nvmet_execute_create_io_cq(req);
        break;
    case NVME_ADMIN_IDENTIFY:
        nvmet_execute_identify(req);
        break;
    case NVME_ADMIN_ABORT:
        execute_abort(req);
        break;
    case NVME_ADMIN_SET_FEATURES:
        nvmet_execute_set_features(req);
        break;
    case NVME_ADMIN_GET_FEATURES:
        nvmet_execute_get_features(req);
        break;
    case NVME_ADMIN_ASYNC_EVENT_REQUEST:
        nvmet_execute_async_event_request(req);
        break;
    case NVME_ADMIN_KEEP_ALIVE:
        execute_keep_alive(req);
        break;
    case NVME_ADMIN_DOORBELL_BUFFER_CONFIG:
        nvmet_execute_doorbell_buffer_config(req);
        break;
    default:
        nvmet_req_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE, true);
        nvmet_req_complete(req);
        break;
    }
}
