/* SPDX-License-Identifier: MIT */
/* A reactor's figures and its controllers' (framework_get_reactors, nvmf_get_stats, the metrics), read on its thread. */
#include "reactor_internal.h"

#include <string.h>

void ctrlr_get_stats(struct nvmet_vfio_user_ctrlr *vc, struct ctrlr_stats *out)
{
    const struct nvmet_ctrlr *c = nvmet_vfio_user_nvme(vc);
    int lfd, cfd;
    nvmet_vfio_user_fds(vc, &lfd, &cfd);
    memset(out, 0, sizeof(*out));
    out->cntlid = c->cntlid;
    out->connected = cfd >= 0;
    out->enabled = (c->csts & NVME_CSTS_RDY) != 0;
    for (uint32_t q = 1; q <= NVMET_MAX_IO_QUEUES; q++)
        out->io_qpairs += c->sqs[q].created;
    out->in_bdev = c->in_bdev;
    out->read_cmds = c->read_cmds;
    out->write_cmds = c->write_cmds;
    out->bytes_read = c->sectors_read * 512u;
    out->bytes_written = c->sectors_written * 512u;
    out->busy_ticks = nvmet_ctrlr_busy_ticks(c);
    out->cqes_posted = c->cqes_posted;
    out->irqs_raised = c->irqs_raised;
    out->irqs_coalesced = c->irqs_coalesced;
    out->cq_full_holds = c->cq_full_holds;
    out->dbbuf_arms = c->dbbuf_arms;
}

static void gather_stats(void *arg)
{
    struct reactor_stats *out = arg;
    struct reactor *r = reactor_get(out->index);
    int index = out->index;
    *out = r->st;
    out->index = index;
    out->cpu = r->cpu;
    out->ctrlrs_polled_rarely = r->nr_cold;
    for (struct reactor_ctrlr *rc = r->ctrlrs; rc; rc = rc->next) {
        struct ctrlr_stats c;
        ctrlr_get_stats(rc->vc, &c);
        out->ctrlrs++;
        out->connected += c.connected;
        out->admin_qpairs += c.enabled;
        out->io_qpairs += c.io_qpairs;
        out->in_bdev += c.in_bdev;
        out->completed_io += c.read_cmds + c.write_cmds;
        out->cqes_posted += c.cqes_posted;
        out->irqs_raised += c.irqs_raised;
        out->irqs_coalesced += c.irqs_coalesced;
        out->cq_full_holds += c.cq_full_holds;
        out->dbbuf_arms += c.dbbuf_arms;
    }
}

void reactor_get_stats(struct reactor *r, struct reactor_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->index = r->index;
    reactor_call(r, gather_stats, out);
}

struct for_each_call {
    struct reactor *r;
    const struct nvmet_subsys *ss;
    void (*fn)(struct nvmet_vfio_user_ctrlr *vc, void *arg);
    void *arg;
};

static void for_each_on_reactor(void *arg)
{
    struct for_each_call *fe = arg;
    for (struct reactor_ctrlr *rc = fe->r->ctrlrs; rc; rc = rc->next)
        if (rc->nvme->subsys == fe->ss)
            fe->fn(rc->vc, fe->arg);
}

void reactor_for_each_ctrlr(struct reactor *r, const struct nvmet_subsys *ss,
                            void (*fn)(struct nvmet_vfio_user_ctrlr *vc, void *arg), void *arg)
{
    struct for_each_call fe = {r, ss, fn, arg};
    reactor_call(r, for_each_on_reactor, &fe);
}
