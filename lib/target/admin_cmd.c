/* SPDX-License-Identifier: MIT */
/*
 * Admin command dispatch, plus the two commands too small for a file of
 * their own (Abort, Keep Alive). Failed commands reach the error log through
 * nvmet_req_complete (queue.c), so handlers only set the status.
 */
#include "nvmet.h"

/*
 * Every command completes before the next one is fetched except AERs (and
 * I/O already handed to a bdev, which cannot be recalled), so an outstanding
 * AER is the only thing Abort can actually abort.
 */
static void execute_abort(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    uint16_t sqid = (uint16_t)(req->cmd.cdw10 & 0xffff);
    uint16_t cid = (uint16_t)(req->cmd.cdw10 >> 16);

    req->rsp.cdw0 = 1; /* bit 0 set: not aborted */
    if (sqid == 0) {
        for (uint32_t i = 0; i < c->nr_aer_reqs; i++) {
            struct nvmet_req *aer = c->aer_reqs[i];
            if (aer->cmd.cid != cid)
                continue;
            nvmet_aer_cancel(c, aer);
            nvmet_req_status(aer, NVME_SCT_GENERIC, NVME_SC_ABORTED_BY_REQUEST, false);
            nvmet_req_complete(aer);
            req->rsp.cdw0 = 0;
            break;
        }
    }
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
    default:
        nvmet_req_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE, true);
        nvmet_req_complete(req);
        break;
    }
}
