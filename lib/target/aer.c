/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous events and the error log.
 *
 * The host parks up to AERL+1 Asynchronous Event Request commands; an event
 * completes the oldest one. With none outstanding, events wait in a small
 * queue. Once an event of some type has been reported, further events of
 * that type stay queued until the host reads the log page named in the
 * report (spec: the type is masked until the log is read), which is what
 * keeps a flapping condition from flooding the host.
 */
#include <string.h>

#include "nvmet.h"

#define PENDING_MAX (sizeof(((struct nvmet_ctrlr *)0)->pending_events) / sizeof(uint32_t))

static uint8_t event_type(uint32_t event)
{
    return (uint8_t)(event & 0x7);
}

static uint8_t event_log_page(uint32_t event)
{
    return (uint8_t)(event >> NVME_AER_LOG_PAGE_SHIFT);
}

/*
 * The log page whose read unmasks a type. We only report events whose log
 * page determines the type, so the mapping is fixed.
 */
static int log_page_event_type(uint8_t log_page)
{
    switch (log_page) {
    case NVME_LOG_ERROR:
        return NVME_AER_TYPE_ERROR;
    case NVME_LOG_SMART:
        return NVME_AER_TYPE_SMART;
    case NVME_LOG_FIRMWARE_SLOT:
    case NVME_LOG_CHANGED_NS_LIST:
        return NVME_AER_TYPE_NOTICE;
    default:
        return -1;
    }
}

/* Complete outstanding AERs with queued events whose type is not masked. */
static void aer_deliver(struct nvmet_ctrlr *c)
{
    uint32_t i = 0;

    while (c->nr_aer_reqs > 0 && i < c->nr_pending_events) {
        uint32_t ev = c->pending_events[i];
        if (c->masked_event_types & (1u << event_type(ev))) {
            i++;
            continue;
        }
        memmove(&c->pending_events[i], &c->pending_events[i + 1],
                (c->nr_pending_events - i - 1) * sizeof(c->pending_events[0]));
        c->nr_pending_events--;

        struct nvmet_req *req = c->aer_reqs[0];
        memmove(&c->aer_reqs[0], &c->aer_reqs[1], (c->nr_aer_reqs - 1) * sizeof(c->aer_reqs[0]));
        c->nr_aer_reqs--;

        c->masked_event_types |= 1u << event_type(ev);
        req->rsp.cdw0 = ev;
        req->rsp.status = 0;
        nvmet_req_complete(req);
    }
}

static bool event_enabled(const struct nvmet_ctrlr *c, uint8_t type, uint8_t info)
{
    uint32_t cfg = c->feat.async_event_cfg;

    switch (type) {
    case NVME_AER_TYPE_ERROR:
        return true; /* error events cannot be disabled */
    case NVME_AER_TYPE_SMART:
        /* SMART info codes map onto the critical warning bits of the configuration. */
        switch (info) {
        case 0x0: return cfg & (1u << 2); /* NVM subsystem reliability */
        case 0x1: return cfg & (1u << 1); /* temperature threshold */
        case 0x2: return cfg & (1u << 0); /* spare below threshold */
        default: return false;
        }
    case NVME_AER_TYPE_NOTICE:
        if (info == NVME_AER_INFO_NOTICE_NS_ATTR_CHANGED)
            return cfg & NVME_AEN_CFG_NS_ATTR;
        return false;
    default:
        return false;
    }
}

void nvmet_aer_post(struct nvmet_ctrlr *c, uint8_t type, uint8_t info, uint8_t log_page)
{
    if (!event_enabled(c, type, info))
        return;

    uint32_t ev = (uint32_t)(type & 0x7) | (uint32_t)info << 8 | (uint32_t)log_page << NVME_AER_LOG_PAGE_SHIFT;
    for (uint32_t i = 0; i < c->nr_pending_events; i++)
        if (c->pending_events[i] == ev)
            return; /* the host learns of it once; the log carries the detail */
    /*
     * Already reported and its log not read yet: the host will find the new
     * state when it reads that log, so there is nothing new to report.
     */
    if ((c->masked_event_types & (1u << (type & 0x7))) && log_page_event_type(log_page) == (type & 0x7))
        return;
    if (c->nr_pending_events >= PENDING_MAX)
        return; /* bounded: the oldest events are the ones the host most needs */
    c->pending_events[c->nr_pending_events++] = ev;
    aer_deliver(c);
}

void nvmet_aer_log_read(struct nvmet_ctrlr *c, uint8_t log_page)
{
    int type = log_page_event_type(log_page);
    if (type < 0)
        return;
    /* Events that already wait in the queue for this log describe what was just read. */
    uint32_t j = 0;
    for (uint32_t i = 0; i < c->nr_pending_events; i++) {
        uint32_t ev = c->pending_events[i];
        if (!((c->masked_event_types & (1u << type)) && event_type(ev) == type && event_log_page(ev) == log_page))
            c->pending_events[j++] = ev;
    }
    c->nr_pending_events = j;
    c->masked_event_types &= ~(1u << type);
    aer_deliver(c);
}

void nvmet_aer_abort_all(struct nvmet_ctrlr *c)
{
    for (uint32_t i = 0; i < c->nr_aer_reqs; i++) {
        struct nvmet_req *req = c->aer_reqs[i];
        if (c->csts & NVME_CSTS_RDY) {
            nvmet_req_status(req, NVME_SCT_GENERIC, NVME_SC_ABORTED_SQ_DELETION, false);
            nvmet_req_complete(req);
            continue;
        }
        /*
         * Resetting: the admin queue goes away and the host expects nothing
         * back, so hand the request back to its queue without a completion
         * (or an error log entry) so that nothing waits for it.
         */
        struct nvmet_sq *sq = req->sq;
        req->in_flight = false;
        req->next_free = sq->free_reqs;
        sq->free_reqs = req;
        sq->in_flight--;
    }
    c->nr_aer_reqs = 0;
    memset(c->aer_reqs, 0, sizeof(c->aer_reqs));
    /* The new host instance has not seen the reports that set the masks. */
    c->masked_event_types = 0;
}

void nvmet_execute_async_event_request(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);

    if (c->nr_aer_reqs >= NVMET_AERL + 1) {
        nvmet_req_status(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED, true);
        nvmet_req_complete(req);
        return;
    }
    c->aer_reqs[c->nr_aer_reqs++] = req;
    aer_deliver(c);
}

/* Remove an outstanding AER (Abort); true when req was one. */
bool nvmet_aer_cancel(struct nvmet_ctrlr *c, struct nvmet_req *req)
{
    for (uint32_t i = 0; i < c->nr_aer_reqs; i++) {
        if (c->aer_reqs[i] != req)
            continue;
        memmove(&c->aer_reqs[i], &c->aer_reqs[i + 1], (c->nr_aer_reqs - i - 1) * sizeof(c->aer_reqs[0]));
        c->nr_aer_reqs--;
        return true;
    }
    return false;
}

static bool opcode_has_slba(const struct nvmet_req *req)
{
    if (req->sq->qid == 0)
        return false;
    switch (req->cmd.opc) {
    case NVME_NVM_READ:
    case NVME_NVM_WRITE:
    case NVME_NVM_COMPARE:
    case NVME_NVM_WRITE_ZEROES:
    case NVME_NVM_WRITE_UNCORRECTABLE:
    case NVME_NVM_VERIFY:
        return true;
    default:
        return false;
    }
}

void nvmet_error_log_add(struct nvmet_ctrlr *c, const struct nvmet_req *req, uint16_t status)
{
    struct nvme_error_log_entry *e = &c->error_log[c->error_count % NVMET_ERROR_LOG_ENTRIES];

    memset(e, 0, sizeof(*e));
    c->error_count++;
    e->error_count = c->error_count; /* 0 would mean "invalid entry" */
    e->status = (uint16_t)(status << 1);
    e->parm_error_location = 0xffff; /* we do not track which field was at fault */
    if (req) {
        e->sqid = req->sq->qid;
        e->cid = req->cmd.cid;
        e->nsid = req->cmd.nsid;
        if (opcode_has_slba(req))
            e->lba = (uint64_t)req->cmd.cdw11 << 32 | req->cmd.cdw10;
    } else {
        e->sqid = 0xffff;
        e->cid = 0xffff;
    }
}
