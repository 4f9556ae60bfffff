/* SPDX-License-Identifier: MIT */
/*
 * Admin queue use: raw and synchronous commands, asynchronous events,
 * timeouts and recovery (controller and subsystem reset).
 *
 * Commands aborted by a reset or by a lost connection complete with
 * VNVME_HOST_SC_ABORTED_DISCONNECT (a path error: retrying is safe once the
 * controller is back); commands whose deadline had passed complete with
 * VNVME_HOST_SC_TIMEOUT instead.
 *
 * A reset re-creates every allocated queue pair in place, so it must not run
 * while another thread is inside a call on one of them: callers that reset
 * (explicitly, or through vnvme_ctrlr_process_admin's recovery) own the
 * qpairs' threads or have paused them.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "host_internal.h"
#include "common/log.h"

#define COMP "host"
#define CSTS_CHECK_MIN_MS 1000u /* a register read costs a round trip: CSTS.CFS is checked this often at most */

static void aer_done(void *arg, const struct nvme_cqe *cpl);

static int submit_one_aer(struct vnvme_ctrlr *c)
{
    struct nvme_sqe aer = {.opc = NVME_ADMIN_ASYNC_EVENT_REQUEST};
    int rc = vnvme_queue_submit(c, &c->admin, &aer, NULL, 0, aer_done, c, false);
    if (rc == 0)
        c->aers_outstanding++;
    return rc;
}

int vnvme_admin_submit_aers(struct vnvme_ctrlr *c)
{
    uint32_t want = (uint32_t)c->id->aerl + 1u;
    if (want > VNVME_MAX_AERS)
        want = VNVME_MAX_AERS;
    /* The admin queue must keep room for ordinary commands. */
    if (want > c->admin.size / 2)
        want = c->admin.size / 2;
    while (c->aers_outstanding < want) {
        int rc = submit_one_aer(c);
        if (rc)
            return rc;
    }
    return 0;
}

static void aer_done(void *arg, const struct nvme_cqe *cpl)
{
    struct vnvme_ctrlr *c = arg;
    if (c->aers_outstanding)
        c->aers_outstanding--;
    if (vnvme_cpl_is_error(cpl))
        return; /* aborted (reset, shutdown) or refused: not resubmitted */
    uint32_t type = cpl->cdw0 & 0x7u;
    uint32_t info = (cpl->cdw0 >> 8) & 0xffu;
    if (type == NVME_AER_TYPE_NOTICE && info == NVME_AER_INFO_NOTICE_NS_ATTR_CHANGED)
        c->rescan_needed = true;
    if (c->nr_pending_aer < sizeof(c->pending_aer_cdw0) / sizeof(c->pending_aer_cdw0[0]))
        c->pending_aer_cdw0[c->nr_pending_aer++] = cpl->cdw0;
    (void)submit_one_aer(c);
}

struct sync_wait {
    bool done;
    struct nvme_cqe cpl;
};

static void sync_done(void *arg, const struct nvme_cqe *cpl)
{
    struct sync_wait *w = arg;
    w->cpl = *cpl;
    w->done = true;
}

int vnvme_ctrlr_admin_raw(struct vnvme_ctrlr *c, const struct nvme_sqe *cmd, void *buf, uint32_t len,
                          vnvme_cmd_cb cb, void *arg)
{
    pthread_mutex_lock(&c->admin_lock);
    int rc = vnvme_queue_submit(c, &c->admin, cmd, buf, len, cb, arg, true);
    pthread_mutex_unlock(&c->admin_lock);
    return rc;
}

int vnvme_ctrlr_admin_sync(struct vnvme_ctrlr *c, const struct nvme_sqe *cmd, void *buf, uint32_t len,
                           struct nvme_cqe *cpl)
{
    struct sync_wait w = {0};
    int rc;
    for (;;) {
        rc = vnvme_ctrlr_admin_raw(c, cmd, buf, len, sync_done, &w);
        if (rc != -EAGAIN)
            break;
        if (vnvme_ctrlr_process_admin(c) < 0)
            return -ENXIO;
        usleep(100);
    }
    if (rc)
        return rc;
    /* Bounded: the command's deadline leads to Abort, reset, or failure, all of which complete it. */
    for (unsigned idle = 0; !w.done; idle++) {
        int n = vnvme_ctrlr_process_admin(c);
        if (n == 0 && idle > 64)
            usleep(50);
        else if (n < 0 && !w.done)
            usleep(50); /* failed: the admin queue has been flushed, w.done is set */
    }
    if (cpl)
        *cpl = w.cpl;
    uint16_t st = vnvme_cpl_status(&w.cpl) & 0x7ffu;
    if (st == VNVME_HOST_SC_ABORTED_DISCONNECT && vnvme_ctrlr_failed_now(c))
        return -ENXIO;
    if (st == VNVME_HOST_SC_TIMEOUT)
        return -ETIMEDOUT;
    return 0;
}

/* Read the log page an event points to: the controller keeps that event type masked until then. */
static void read_event_log(struct vnvme_ctrlr *c, uint32_t cdw0)
{
    uint32_t lid = (cdw0 >> NVME_AER_LOG_PAGE_SHIFT) & 0xffu;
    uint32_t len = VNVME_PAGE;
    if (lid == NVME_LOG_SMART || lid == NVME_LOG_FIRMWARE_SLOT)
        len = 512;
    uint32_t numd = len / 4u - 1u;
    struct nvme_sqe cmd = {.opc = NVME_ADMIN_GET_LOG_PAGE, .nsid = 0xffffffffu,
                           .cdw10 = lid | ((numd & 0xffffu) << 16), .cdw11 = numd >> 16};
    struct nvme_cqe cpl;
    (void)vnvme_ctrlr_admin_sync(c, &cmd, c->scratch, len, &cpl);
}

static void deliver_events(struct vnvme_ctrlr *c)
{
    uint32_t events[sizeof(c->pending_aer_cdw0) / sizeof(c->pending_aer_cdw0[0])];
    uint32_t n = c->nr_pending_aer;
    memcpy(events, c->pending_aer_cdw0, n * sizeof(events[0]));
    c->nr_pending_aer = 0;
    bool rescan = c->rescan_needed;
    c->rescan_needed = false;
    for (uint32_t i = 0; i < n; i++)
        read_event_log(c, events[i]);
    if (rescan && vnvme_ctrlr_scan_ns(c) != 0)
        VNVME_WARN(COMP, "%s: namespace rescan failed", c->path);
    /* After the rescan, so the callback sees the new namespace list. */
    for (uint32_t i = 0; i < n; i++)
        if (c->opts.aer_cb)
            c->opts.aer_cb(c->opts.aer_arg, events[i]);
}

static void fail_admin(struct vnvme_ctrlr *c)
{
    vnvme_ctrlr_set_failed(c);
    vnvme_queue_abort_all(c, &c->admin, VNVME_HOST_SC_ABORTED_DISCONNECT, vnvme_now_ms());
    c->aers_outstanding = 0;
}

int vnvme_ctrlr_process_admin(struct vnvme_ctrlr *c)
{
    pthread_mutex_lock(&c->admin_lock);
    int rc;
    if (vnvme_ctrlr_failed_now(c)) {
        fail_admin(c);
        rc = -ENXIO;
        goto out;
    }
    pthread_mutex_lock(&c->client_lock);
    rc = vfio_user_client_poll(c->client);
    pthread_mutex_unlock(&c->client_lock);
    if (rc < 0) {
        VNVME_ERR(COMP, "%s: connection lost (%d)", c->path, rc);
        fail_admin(c);
        rc = -ENXIO;
        goto out;
    }
    rc = vnvme_queue_process(c, &c->admin, 0);
    if (!c->in_recovery) {
        uint64_t now = vnvme_now_ms();
        if (now >= c->next_csts_check_ms || __atomic_load_n(&c->recovery_needed, __ATOMIC_ACQUIRE)) {
            c->next_csts_check_ms = now + (c->timeout_ms > CSTS_CHECK_MIN_MS ? c->timeout_ms : CSTS_CHECK_MIN_MS);
            uint32_t csts = 0;
            if (vnvme_reg_read32(c, NVME_REG_CSTS, &csts) != 0 || csts == 0xffffffffu) {
                fail_admin(c);
                rc = -ENXIO;
                goto out;
            }
            if (csts & NVME_CSTS_CFS) {
                VNVME_ERR(COMP, "%s: controller fatal status, resetting", c->path);
                __atomic_store_n(&c->recovery_needed, true, __ATOMIC_RELEASE);
            }
        }
        if (__atomic_load_n(&c->recovery_needed, __ATOMIC_ACQUIRE)) {
            if (vnvme_ctrlr_recover(c) != 0) {
                rc = -ENXIO;
                goto out;
            }
        }
        if (c->nr_pending_aer || c->rescan_needed) {
            c->in_recovery = true; /* no nested event handling from the admin_sync calls below */
            deliver_events(c);
            c->in_recovery = false;
        }
    }
    if (vnvme_ctrlr_failed_now(c)) {
        fail_admin(c);
        rc = -ENXIO;
    }
out:
    pthread_mutex_unlock(&c->admin_lock);
    return rc;
}

static int disable_for_reset(struct vnvme_ctrlr *c, bool subsystem)
{
    uint32_t csts;
    int rc;
    if (subsystem) {
        rc = vnvme_reg_write32(c, NVME_REG_NSSR, NVME_NSSR_MAGIC);
        if (rc)
            return rc;
        rc = vnvme_reg_read32(c, NVME_REG_CSTS, &csts);
        if (rc)
            return rc;
        if (csts & NVME_CSTS_NSSRO) {
            rc = vnvme_reg_write32(c, NVME_REG_CSTS, NVME_CSTS_NSSRO); /* RW1C */
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Reset and bring everything back; called with the admin lock held. */
int vnvme_ctrlr_reinit(struct vnvme_ctrlr *c, bool subsystem)
{
    if (subsystem && !(c->cap & NVME_CAP_NSSRS))
        return -ENOTSUP;
    bool was_in_recovery = c->in_recovery;
    c->in_recovery = true;
    __atomic_store_n(&c->recovery_needed, false, __ATOMIC_RELEASE);
    vnvme_queue_mark_aborting(&c->admin);
    for (struct vnvme_qpair *qp = c->qpairs; qp; qp = qp->next) {
        vnvme_queue_mark_aborting(&qp->q);
        qp->created = false;
    }
    /* A failure flagged by CFS or timeouts is what the reset is for; a dead connection stays dead. */
    __atomic_store_n(&c->failed, false, __ATOMIC_RELEASE);
    int rc = disable_for_reset(c, subsystem);
    if (!rc)
        rc = vnvme_ctrlr_enable(c); /* disables first (CC.EN 1 -> 0 -> 1) */
    uint64_t now = vnvme_now_ms();
    vnvme_queue_complete_aborting(c, &c->admin, VNVME_HOST_SC_ABORTED_DISCONNECT, now);
    c->aers_outstanding = 0;
    c->nr_pending_aer = 0;
    if (!rc)
        rc = vnvme_ctrlr_configure(c);
    for (struct vnvme_qpair *qp = c->qpairs; qp && !rc; qp = qp->next) {
        vnvme_queue_reset_rings(c, &qp->q);
        rc = vnvme_qpair_create_hw(qp);
    }
    if (!rc)
        rc = vnvme_ctrlr_scan_ns(c);
    if (rc) {
        VNVME_ERR(COMP, "%s: %s reset failed (%d)", c->path, subsystem ? "subsystem" : "controller", rc);
        vnvme_ctrlr_set_failed(c);
    } else {
        VNVME_NOTICE(COMP, "%s: %s reset done", c->path, subsystem ? "subsystem" : "controller");
    }
    now = vnvme_now_ms();
    for (struct vnvme_qpair *qp = c->qpairs; qp; qp = qp->next)
        vnvme_queue_complete_aborting(c, &qp->q, VNVME_HOST_SC_ABORTED_DISCONNECT, now);
    if (rc)
        vnvme_queue_abort_all(c, &c->admin, VNVME_HOST_SC_ABORTED_DISCONNECT, now);
    c->in_recovery = was_in_recovery;
    return rc;
}

int vnvme_ctrlr_recover(struct vnvme_ctrlr *c)
{
    VNVME_WARN(COMP, "%s: commands did not complete after Abort: resetting the controller", c->path);
    return vnvme_ctrlr_reinit(c, false);
}

static int reset_common(struct vnvme_ctrlr *c, bool subsystem)
{
    pthread_mutex_lock(&c->admin_lock);
    int rc;
    pthread_mutex_lock(&c->client_lock);
    int prc = vfio_user_client_poll(c->client);
    pthread_mutex_unlock(&c->client_lock);
    if (prc < 0) {
        fail_admin(c);
        rc = -ENXIO;
    } else {
        rc = vnvme_ctrlr_reinit(c, subsystem);
    }
    pthread_mutex_unlock(&c->admin_lock);
    return rc;
}

int vnvme_ctrlr_reset(struct vnvme_ctrlr *c)
{
    return reset_common(c, false);
}

int vnvme_ctrlr_subsystem_reset(struct vnvme_ctrlr *c)
{
    return reset_common(c, true);
}
