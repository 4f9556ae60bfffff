/* SPDX-License-Identifier: MIT */
/*
 * One scrape's figures, on the control thread, through the same calls the
 * RPC methods make: bdevs from the registry (the control thread owns it, so
 * the names stay valid until the text is written), reactors and controllers
 * through reactor_call on the reactor that owns them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/ticks.h"
#include "metrics.h"
#include "vnvme/bdev.h"

struct ctrlr_list {
    struct metrics_snapshot *s;
    size_t cap;
    const char *subsystem;
    int err;
};

/* On the controller's reactor: append its figures. */
static void add_ctrlr(struct nvmet_vfio_user_ctrlr *vc, void *arg)
{
    struct ctrlr_list *cl = arg;
    struct metrics_snapshot *s = cl->s;
    if (s->nr_ctrlrs == cl->cap) {
        size_t cap = cl->cap ? 2 * cl->cap : 8;
        struct metrics_ctrlr *n = realloc(s->ctrlrs, cap * sizeof(*n));
        if (!n) {
            cl->err = -ENOMEM;
            return;
        }
        s->ctrlrs = n;
        cl->cap = cap;
    }
    struct metrics_ctrlr *c = &s->ctrlrs[s->nr_ctrlrs++];
    c->subsystem = cl->subsystem;
    ctrlr_get_stats(vc, &c->st);
}

static int gather_bdevs(struct metrics_snapshot *s)
{
    size_t n = 0;
    for (struct vnvme_bdev *b = vnvme_bdev_first(); b; b = vnvme_bdev_next(b))
        n++;
    if (!n)
        return 0;
    s->bdevs = calloc(n, sizeof(*s->bdevs));
    if (!s->bdevs)
        return -ENOMEM;
    for (struct vnvme_bdev *b = vnvme_bdev_first(); b && s->nr_bdevs < n; b = vnvme_bdev_next(b)) {
        struct metrics_bdev *m = &s->bdevs[s->nr_bdevs++];
        m->name = b->name;
        vnvme_bdev_iostat(b, &m->io);
        vnvme_bdev_qos_get(b, m->qos);
        if (vnvme_bdev_histogram_enabled(b)) {
            m->hist = malloc(VNVME_BDEV_HIST_BUCKETS * sizeof(uint64_t));
            if (!m->hist)
                return -ENOMEM;
            vnvme_bdev_histogram(b, m->hist);
        }
    }
    return 0;
}

static int gather_reactors(struct metrics_snapshot *s)
{
    int n = reactors_count();
    if (n <= 0)
        return 0;
    s->reactors = calloc((size_t)n, sizeof(*s->reactors));
    if (!s->reactors)
        return -ENOMEM;
    for (int i = 0; i < n; i++)
        reactor_get_stats(reactor_get(i), &s->reactors[s->nr_reactors++]);
    return 0;
}

static int gather_ctrlrs(struct metrics_snapshot *s)
{
    struct ctrlr_list cl = {.s = s};
    for (struct tgt_subsystem *ts = tgt_subsystem_first(); ts && !cl.err; ts = ts->next) {
        if (!ts->reactor)
            continue;
        cl.subsystem = ts->ss->nqn;
        reactor_for_each_ctrlr(ts->reactor, ts->ss, add_ctrlr, &cl);
    }
    return cl.err;
}

int metrics_gather(struct metrics_snapshot *s)
{
    memset(s, 0, sizeof(*s));
    s->version = VNVME_VERSION;
    s->tick_rate = vnvme_ticks_hz();
    int rc = gather_bdevs(s);
    if (!rc)
        rc = gather_reactors(s);
    if (!rc)
        rc = gather_ctrlrs(s);
    if (rc)
        metrics_snapshot_free(s);
    return rc;
}

void metrics_snapshot_free(struct metrics_snapshot *s)
{
    for (size_t i = 0; i < s->nr_bdevs; i++)
        free(s->bdevs[i].hist);
    free(s->bdevs);
    free(s->reactors);
    free(s->ctrlrs);
    memset(s, 0, sizeof(*s));
}
