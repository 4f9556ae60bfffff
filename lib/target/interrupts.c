/* SPDX-License-Identifier: MIT */
/*
 * Completion interrupts: one per CQ per poll round that posted to it, and
 * Interrupt Coalescing (Set Features 08h) on top.
 *
 * Over vfio-user an interrupt is a syscall on the reactor (an eventfd write)
 * and a wakeup of a vCPU or a driver thread, which a small machine pays for
 * in CPU taken from the work itself. A host that sets an Aggregation
 * Threshold (THR, 0's based entries) and an Aggregation Time (TIME, 100 us
 * units) gets an I/O CQ's interrupt once THR + 1 entries wait or the oldest
 * waiting entry has waited TIME, whichever comes first. As the spec has it,
 * either field at 0 means no coalescing (one entry, or no delay), the Admin
 * CQ is never coalesced, and a vector whose Interrupt Vector Configuration
 * has Coalescing Disable set is exempt. Entries are counted per CQ (vectors
 * serve one CQ each in every driver we know).
 *
 * Nothing here makes a syscall beyond the interrupt itself: the clock is
 * read (vDSO) only while a CQ is held back, and the reactor bounds its sleep
 * by nvmet_ctrlr_irq_deadline_ns() so a held-back interrupt is never late by
 * more than the kernel's timer slack.
 */
#include "nvmet.h"

#define COALESCE_THR(v) ((v) & 0xffu)
#define COALESCE_TIME_NS(v) ((uint64_t)(((v) >> 8) & 0xffu) * 100000u)
#define IV_CD (1u << 16)

static bool coalesces(const struct nvmet_ctrlr *c, const struct nvmet_cq *cq)
{
    return cq->qid != 0 && cq->iv < sizeof(c->feat.int_vector_cfg) / sizeof(c->feat.int_vector_cfg[0]) &&
           !(c->feat.int_vector_cfg[cq->iv] & IV_CD);
}

void nvmet_ctrlr_flush_irqs(struct nvmet_ctrlr *c)
{
    uint32_t setting = c->feat.int_coalescing;
    uint32_t threshold = COALESCE_THR(setting) + 1u;
    uint64_t time_ns = COALESCE_TIME_NS(setting);
    bool coalescing = threshold > 1 && time_ns > 0;
    uint64_t now = 0;

    for (uint32_t w = 0; w < NVMET_QMAP_WORDS; w++) {
        uint64_t bits = c->cq_irq_map[w] | c->cq_coalesce_map[w];
        if (!bits)
            continue;
        c->cq_irq_map[w] = 0;
        while (bits) {
            uint32_t q = w * 64 + (uint32_t)__builtin_ctzll(bits);
            struct nvmet_cq *cq = &c->cqs[q];
            bits &= bits - 1;
            if (!cq->created || !cq->ien) {
                cq->irq_pending = 0;
                nvmet_qmap_clear(c->cq_coalesce_map, q);
                continue;
            }
            if (coalescing && cq->irq_pending < threshold && coalesces(c, cq)) {
                if (!now)
                    now = nvmet_now_ns();
                if (!(c->cq_coalesce_map[w] & (1ull << (q % 64)))) {
                    nvmet_qmap_set(c->cq_coalesce_map, q);
                    cq->coalesce_since_ns = now;
                }
                if (now - cq->coalesce_since_ns < time_ns)
                    continue;
            }
            if (cq->irq_pending > 1)
                c->irqs_coalesced += cq->irq_pending - 1u;
            cq->irq_pending = 0;
            nvmet_qmap_clear(c->cq_coalesce_map, q);
            c->irqs_raised++;
            c->tops->irq(c->tctx, cq->iv);
        }
    }
}

uint64_t nvmet_ctrlr_irq_deadline_ns(const struct nvmet_ctrlr *c)
{
    /* Not polled (disabled or failed): nothing is due, or a reactor would wake for it in a loop. */
    if (!(c->csts & NVME_CSTS_RDY) || c->fatal)
        return 0;
    uint64_t oldest = UINT64_MAX;
    NVMET_QMAP_FOREACH(q, c->cq_coalesce_map) {
        if (c->cqs[q].coalesce_since_ns < oldest)
            oldest = c->cqs[q].coalesce_since_ns;
    }
    if (oldest == UINT64_MAX)
        return 0;
    /* The setting may have changed since: a deadline already past makes the caller poll at once. */
    return oldest + COALESCE_TIME_NS(c->feat.int_coalescing);
}
