/* SPDX-License-Identifier: MIT */
/*
 * Doorbell Buffer Config (admin opcode 7Ch, OACS bit 8): the host keeps its
 * I/O queues' doorbell values in a shadow page of its own memory and tells
 * the controller where; the controller publishes in a second page, the
 * EventIdx page, from which value on it wants a real doorbell write. The
 * host then writes the doorbell register only when its new value passes the
 * EventIdx (Linux's driver does this on emulated controllers).
 *
 * For a polling controller that costs nothing, and it is what lets a
 * sleeping one be woken: before the reactor sleeps it arms every I/O SQ
 * (EventIdx = the tail it has seen), so the host's next submission comes
 * with a doorbell write; a client whose writes reach us as messages (a
 * trapped doorbell page, or our own host driver's posted REGION_WRITE) thus
 * wakes the reactor at once instead of waiting for its sleep bound. While
 * the reactor polls it leaves the EventIdx behind and the host writes only
 * its shadow page.
 *
 * Scope: I/O queues only, as Linux uses it; the admin queue keeps its
 * doorbell registers. With the buffers configured, an I/O queue's shadow
 * value is the one acted on; a doorbell register write for it is only a
 * wakeup (it may be older than the shadow value and must not move the tail
 * back). Values are validated exactly like register writes (queue.c).
 */
#include <string.h>

#include "nvmet.h"
#include "vnvme/vfio_user_dma.h"

/* Every doorbell slot of the shadow and EventIdx pages lies inside the one page each that is translated. */
_Static_assert(NVMET_DB_SLOTS * sizeof(uint32_t) <= NVMET_PAGE_SIZE, "doorbell slots fit in one page");

static volatile uint32_t *map_page(struct nvmet_ctrlr *c, uint64_t iova, uint32_t access)
{
    struct iovec iov;
    if (c->tops->translate(c->tctx, iova, NVMET_PAGE_SIZE, access, &iov, 1) != 1)
        return NULL;
    return iov.iov_base;
}

void nvmet_execute_doorbell_buffer_config(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    uint64_t dbs = req->cmd.dptr.prp1, eis = req->cmd.dptr.prp2;
    volatile uint32_t *dbs_ptr = NULL, *eis_ptr = NULL;
    /* Both must be memory-page aligned (and distinct: the controller writes one and reads the other). */
    if (dbs == 0 || eis == 0 || dbs % NVMET_PAGE_SIZE || eis % NVMET_PAGE_SIZE || dbs == eis ||
        !(dbs_ptr = map_page(c, dbs, VFIO_USER_DMA_READ_OK)) ||
        !(eis_ptr = map_page(c, eis, VFIO_USER_DMA_WRITE_OK))) {
        nvmet_req_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD, true);
        nvmet_req_complete(req);
        return;
    }
    struct nvmet_dbbuf *d = &c->dbbuf;
    d->on = true;
    d->dbs_iova = dbs;
    d->eis_iova = eis;
    d->dbs = dbs_ptr;
    d->eis = eis_ptr;
    /* Queues that exist already go on from what the host has in its shadow page now. */
    for (uint32_t slot = 2; slot < NVMET_DB_SLOTS; slot++)
        d->seen[slot] = __atomic_load_n(&d->dbs[slot], __ATOMIC_ACQUIRE);
    nvmet_req_complete(req);
}

void nvmet_dbbuf_reset(struct nvmet_ctrlr *c)
{
    memset(&c->dbbuf, 0, sizeof(c->dbbuf));
}

void nvmet_dbbuf_memory_removed(struct nvmet_ctrlr *c, uint64_t iova, uint64_t size)
{
    struct nvmet_dbbuf *d = &c->dbbuf;
    uint64_t end = iova + size;
    if (d->on && d->dbs_iova < end && iova < d->dbs_iova + NVMET_PAGE_SIZE)
        d->dbs = NULL;
    if (d->on && d->eis_iova < end && iova < d->eis_iova + NVMET_PAGE_SIZE)
        d->eis = NULL;
}

void nvmet_dbbuf_memory_added(struct nvmet_ctrlr *c)
{
    struct nvmet_dbbuf *d = &c->dbbuf;
    if (d->on && !d->dbs)
        d->dbs = map_page(c, d->dbs_iova, VFIO_USER_DMA_READ_OK);
    if (d->on && !d->eis)
        d->eis = map_page(c, d->eis_iova, VFIO_USER_DMA_WRITE_OK);
}

int nvmet_ctrlr_arm_doorbells(struct nvmet_ctrlr *c)
{
    struct nvmet_dbbuf *d = &c->dbbuf;
    if (!d->on || !d->dbs || !d->eis)
        return NVMET_DB_UNARMED;
    NVMET_QMAP_FOREACH(q, c->sq_created_map) {
        if (q == 0)
            continue;
        __atomic_store_n(&d->eis[2 * q], d->seen[2 * q], __ATOMIC_RELAXED);
    }
    /*
     * The host stores its shadow value, then reads the EventIdx; we store the
     * EventIdx, then read the shadow value. With a full fence on both sides
     * at least one of us sees the other's store: either the host writes the
     * doorbell, or we see the new tail here and do not sleep.
     */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    NVMET_QMAP_FOREACH(q, c->sq_created_map) {
        if (q != 0 && __atomic_load_n(&d->dbs[2 * q], __ATOMIC_RELAXED) != d->seen[2 * q])
            return NVMET_DB_PENDING;
    }
    c->dbbuf_arms++;
    return NVMET_DB_ARMED;
}
