/* SPDX-License-Identifier: MIT */
/*
 * Which controllers a reactor's round polls.
 *
 * Many controllers, few busy: polling every controller in every round would
 * make a busy one pay for every idle neighbour (256 idle controllers cost a
 * busy one three quarters of its IOPS). So a controller whose polls found
 * nothing COLD_AFTER_POLLS times in a row, with nothing inside bdevs and no
 * interrupt held back, goes on the cold list: each round polls every hot
 * controller and COLD_PER_ROUND cold ones in turn, and the rounds next to a
 * sleep poll every hot one and, every COLD_SLEEP_EVERY-th of them, all the
 * cold ones. A cold controller is heard from within (cold controllers /
 * COLD_PER_ROUND) rounds, a few microseconds while the reactor is busy, or
 * within COLD_SLEEP_EVERY sleeps (2 ms) while it sleeps, and goes back on the
 * hot list as soon as a poll finds work or its socket brings a message. The
 * price of that second bound is paid by a VM whose controller had nothing
 * to do for COLD_AFTER_POLLS rounds (about a second of a sleeping reactor's
 * rounds, much less of a busy one's); what it buys is half the wakeups' cost
 * with hundreds of idle controllers, whose polls are mostly cache misses.
 * For the same reason a visit to a cold controller is mostly a look at its
 * submission doorbells through a compact copy of where they are (one cache
 * line, cold_watch), with a full poll every COLD_FULL_POLL_EVERY-th visit
 * for what else may need one (keep-alive, CQ head and invalid doorbell
 * writes). The sleep-time walks (bdev waits, interrupt deadlines, doorbell
 * arming) cover hot controllers only: a cold one has none of those, and
 * what would give it one is work, which makes it hot. Measured in
 * BENCHMARKS.md.
 */
#include "reactor_internal.h"

#include <stdlib.h>
#include <string.h>

void reactor_list_put(struct reactor *r, struct reactor_ctrlr *rc, bool cold)
{
    struct reactor_ctrlr **list = cold ? r->cold : r->hot;
    uint32_t *n = cold ? &r->nr_cold : &r->nr_hot;
    rc->cold = cold;
    rc->slot = (*n)++;
    list[rc->slot] = rc;
    rc->quiet = 0;
    if (cold) {
        struct cold_watch *w = &r->cold_watch[rc->slot];
        w->n = nvmet_ctrlr_doorbell_watch(rc->nvme, w->word, w->seen, WATCH_WORDS);
        w->visits = 0;
    }
}

/* Take rc off its list; the last one takes its slot. */
void reactor_list_take(struct reactor *r, struct reactor_ctrlr *rc)
{
    struct reactor_ctrlr **list = rc->cold ? r->cold : r->hot;
    uint32_t *n = rc->cold ? &r->nr_cold : &r->nr_hot;
    struct reactor_ctrlr *last = list[--(*n)];
    list[rc->slot] = last;
    if (rc->cold)
        r->cold_watch[rc->slot] = r->cold_watch[*n];
    last->slot = rc->slot;
}

void reactor_make_hot(struct reactor *r, struct reactor_ctrlr *rc)
{
    if (rc->cold) {
        reactor_list_take(r, rc);
        reactor_list_put(r, rc, false);
        rc->nvme->polled_rarely = false;
    }
    rc->quiet = 0;
}

void reactor_make_cold(struct reactor *r, struct reactor_ctrlr *rc)
{
    reactor_list_take(r, rc);
    reactor_list_put(r, rc, true);
    rc->nvme->polled_rarely = true;
    /*
     * Armed now, its doorbells stay armed while it is cold (only work changes
     * what was seen, and work makes it hot); a submission the arming races
     * with is found by its next poll.
     */
    (void)nvmet_ctrlr_arm_doorbells(rc->nvme);
}

/* Room for one more controller on either list. */
bool reactor_lists_grow(struct reactor *r)
{
    if (r->nr_hot + r->nr_cold < r->list_cap)
        return true;
    uint32_t cap = r->list_cap ? r->list_cap * 2 : 16;
    struct reactor_ctrlr **hot = realloc(r->hot, cap * sizeof(*hot));
    if (!hot)
        return false;
    r->hot = hot;
    struct reactor_ctrlr **cold = realloc(r->cold, cap * sizeof(*cold));
    if (!cold)
        return false;
    r->cold = cold;
    struct cold_watch *watch = aligned_alloc(64, cap * sizeof(*watch));
    if (!watch)
        return false;
    if (r->cold_watch)
        memcpy(watch, r->cold_watch, r->list_cap * sizeof(*watch));
    free(r->cold_watch);
    r->cold_watch = watch;
    r->list_cap = cap;
    return true;
}

/* Nothing of the controller's is due soon: it may be polled less often. */
static bool may_cool(const struct reactor_ctrlr *rc)
{
    return rc->nvme->in_bdev == 0 && nvmet_vfio_user_irq_deadline_ns(rc->vc) == 0;
}

/*
 * One round of data polls: every hot controller, and some cold ones; in a
 * round next to a sleep (sleepy), every COLD_SLEEP_EVERY-th time all of them.
 */
int reactor_poll_data(struct reactor *r, bool sleepy)
{
    bool all = sleepy && r->sleep_rounds++ % COLD_SLEEP_EVERY == 0;
    int work = 0;
    for (uint32_t i = 0; i < r->nr_hot;) {
        struct reactor_ctrlr *rc = r->hot[i];
        int w = nvmet_vfio_user_poll_data(rc->vc);
        if (w > 0) {
            work += w;
            rc->quiet = 0;
        } else if (++rc->quiet >= COLD_AFTER_POLLS && may_cool(rc)) {
            reactor_make_cold(r, rc); /* the last hot one now sits at i */
            continue;
        }
        i++;
    }
    uint32_t n = all ? r->nr_cold : (r->nr_cold < COLD_PER_ROUND ? r->nr_cold : COLD_PER_ROUND);
    for (uint32_t k = 0; k < n && r->nr_cold; k++) {
        if (r->cold_cursor >= r->nr_cold)
            r->cold_cursor = 0;
        /* Mostly a look at its submission doorbells: a full poll touches many more cache lines. */
        struct cold_watch *cw = &r->cold_watch[r->cold_cursor];
        bool full = cw->n < 0 || ++cw->visits % COLD_FULL_POLL_EVERY == 0;
        for (int j = 0; j < cw->n && !full; j++)
            full = *cw->word[j] != cw->seen[j];
        struct reactor_ctrlr *rc = r->cold[r->cold_cursor];
        int w = full ? nvmet_vfio_user_poll_data(rc->vc) : 0;
        if (w > 0) {
            work += w;
            reactor_make_hot(r, rc); /* the last cold one now sits at the cursor */
        } else {
            r->cold_cursor++;
        }
    }
    return work;
}
