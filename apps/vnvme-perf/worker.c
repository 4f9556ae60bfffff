/* SPDX-License-Identifier: MIT */
/*
 * The I/O loop of one worker: keep queue_depth I/Os in flight on each of its
 * queue pairs, resubmitting from the completion callback. One timestamp is
 * taken per completion batch (on its first completion) and serves both as the
 * completion time of the batch and the submission time of the I/Os it
 * resubmits, so the clock costs nothing per I/O at high queue depths.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "perf.h"

volatile int perf_phase;

static inline int load_phase(void)
{
    return __atomic_load_n(&perf_phase, __ATOMIC_ACQUIRE);
}

/* xorshift64*: a few cycles per number and good enough for picking offsets. */
static inline uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n) without a division. */
static inline uint64_t rand_below(uint64_t *s, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)next_rand(s) * n) >> 64);
}

static inline uint64_t batch_now(struct perf_worker *w)
{
    if (w->batch_ticks == 0)
        w->batch_ticks = ticks_now();
    return w->batch_ticks;
}

/* Verify mode: every slot owns the units congruent to its id, so no two I/Os in flight overlap. */
static uint64_t verify_stride(const struct perf_ns_ctx *ctx)
{
    return (uint64_t)ctx->w->nworkers * ctx->ntasks;
}

static uint64_t pattern_word(uint64_t lba, uint32_t generation, uint32_t slot, size_t i)
{
    return (lba * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)generation << 32) ^ ((uint64_t)slot << 48) ^ i;
}

static void fill_pattern(struct perf_task *t)
{
    uint64_t *p = t->buf;
    size_t n = t->ctx->w->cfg->io_size / sizeof(uint64_t);
    for (size_t i = 0; i < n; i++)
        p[i] = pattern_word(t->lba, t->generation, t->slot, i);
}

static bool check_pattern(const struct perf_task *t)
{
    const uint64_t *p = t->buf;
    size_t n = t->ctx->w->cfg->io_size / sizeof(uint64_t);
    for (size_t i = 0; i < n; i++)
        if (p[i] != pattern_word(t->lba, t->generation, t->slot, i))
            return false;
    return true;
}

/* Picks the next operation of a task: direction and LBA. */
static void choose_io(struct perf_task *t)
{
    struct perf_ns_ctx *ctx = t->ctx;
    struct perf_worker *w = ctx->w;
    const struct perf_config *cfg = w->cfg;
    uint64_t unit;

    if (!w->fill_done) {
        t->is_read = false;
        unit = ctx->next_seq++;
    } else if (cfg->verify) {
        if (t->verify_readback)
            return; /* read back what the previous write put at t->lba */
        uint64_t stride = verify_stride(ctx);
        uint64_t per_slot = ctx->io_units / stride;
        uint64_t k = cfg->pattern == PAT_RAND ? rand_below(&w->rng, per_slot) : ctx->next_seq++ % per_slot;
        unit = k * stride + (uint64_t)w->index * ctx->ntasks + t->slot;
        t->is_read = false;
    } else {
        unit = cfg->pattern == PAT_RAND ? rand_below(&w->rng, ctx->io_units) : ctx->next_seq++ % ctx->io_units;
        t->is_read = cfg->read_pct == 100 ? true
                     : cfg->read_pct == 0 ? false
                                          : rand_below(&w->rng, 100) < (uint64_t)cfg->read_pct;
    }
    t->lba = unit * ctx->blocks_per_io;
}

static void io_done(void *arg, const struct nvme_cqe *cpl);

/* Submits t; on a full queue parks it for the loop to retry. Returns false on a hard error. */
static bool submit_task(struct perf_task *t, bool fresh)
{
    struct perf_ns_ctx *ctx = t->ctx;
    struct perf_worker *w = ctx->w;
    if (fresh) {
        choose_io(t);
        if (w->cfg->verify && w->fill_done && !t->is_read) {
            t->generation++;
            fill_pattern(t);
        }
    }
    t->submit_ticks = batch_now(w);
    int rc = t->is_read ? vnvme_ns_read(ctx->ns, ctx->qp, t->buf, t->lba, ctx->blocks_per_io, io_done, t, 0)
                        : vnvme_ns_write(ctx->ns, ctx->qp, t->buf, t->lba, ctx->blocks_per_io, io_done, t, 0);
    if (rc == 0)
        return true;
    if (rc == -EAGAIN) {
        if (!t->pending) {
            t->pending = true;
            ctx->npending++;
        }
        return true;
    }
    fprintf(stderr, "vnvme-perf: core %u nsid %u: submit failed: %s\n", w->core, ctx->nsid, strerror(-rc));
    w->failed = true;
    return false;
}

static void io_done(void *arg, const struct nvme_cqe *cpl)
{
    struct perf_task *t = arg;
    struct perf_ns_ctx *ctx = t->ctx;
    struct perf_worker *w = ctx->w;
    uint64_t now = batch_now(w);
    /* The driver may reap an I/O resubmitted earlier in this same batch: its clock must move on. */
    if (t->submit_ticks >= now)
        now = w->batch_ticks = ticks_now();
    ctx->completions_all++;

    if (vnvme_cpl_is_error(cpl)) {
        if (ctx->io_errors++ < 5)
            fprintf(stderr, "vnvme-perf: core %u nsid %u: %s at lba %llu failed: status 0x%04x\n", w->core,
                    ctx->nsid, t->is_read ? "read" : "write", (unsigned long long)t->lba, vnvme_cpl_status(cpl));
        t->verify_readback = false;
    } else if (w->phase_seen == PHASE_MEASURE) {
        perf_backoff_latency(&w->backoff, now - t->submit_ticks);
        hist_add(&ctx->hist, now - t->submit_ticks);
        ctx->bytes += w->cfg->io_size;
    }

    if (!w->fill_done) {
        if (ctx->next_seq < ctx->fill_end && !w->failed)
            submit_task(t, true);
        return;
    }
    if (w->cfg->verify && w->fill_done && !vnvme_cpl_is_error(cpl)) {
        if (!t->is_read) {
            memset(t->buf, 0, w->cfg->io_size);
            t->is_read = true;
            t->verify_readback = true;
        } else if (t->verify_readback) {
            if (check_pattern(t)) {
                ctx->verified++;
            } else if (ctx->verify_failures++ < 5) {
                fprintf(stderr, "vnvme-perf: core %u nsid %u: verify failed at lba %llu\n", w->core, ctx->nsid,
                        (unsigned long long)t->lba);
            }
            t->verify_readback = false;
        }
    }
    if (!w->submitting || w->failed)
        return;
    if (ctx->issue_every && !t->verify_readback) {
        /* --rate: the next I/O waits for its turn (retry_pending). */
        t->pending = t->paced = true;
        ctx->npending++;
        return;
    }
    submit_task(t, !t->verify_readback);
}

/* --rate: whether an I/O may go now; if so, the turn after it is booked (no catching up after a stall). */
static bool take_turn(struct perf_ns_ctx *ctx)
{
    uint64_t now = ticks_now();
    if (now < ctx->next_issue)
        return false;
    uint64_t base = ctx->next_issue + ctx->issue_every < now ? now : ctx->next_issue;
    ctx->next_issue = base + ctx->issue_every;
    return true;
}

static void retry_pending(struct perf_ns_ctx *ctx)
{
    for (uint32_t i = 0; i < ctx->ntasks && ctx->npending > 0; i++) {
        struct perf_task *t = &ctx->tasks[i];
        if (!t->pending)
            continue;
        if (t->paced && !take_turn(ctx))
            break;
        bool fresh = t->paced;
        t->pending = t->paced = false;
        ctx->npending--;
        submit_task(t, fresh);
    }
}

/* --rate with nothing in flight: how long until the first namespace's next turn (0: none waits). */
static uint64_t paced_wait_ns(struct perf_worker *w)
{
    uint64_t soonest = UINT64_MAX;
    for (unsigned i = 0; i < w->nns; i++) {
        struct perf_ns_ctx *ctx = &w->ns[i];
        if (!ctx->issue_every || vnvme_qpair_outstanding(ctx->qp) > 0 || ctx->npending == 0)
            return 0;
        if (ctx->next_issue < soonest)
            soonest = ctx->next_issue;
    }
    uint64_t now = ticks_now();
    if (soonest == UINT64_MAX || soonest <= now)
        return 0;
    double ns = (double)(soonest - now) * 1e9 / ticks_per_sec();
    return ns > 10e6 ? 10000000u : (uint64_t)ns; /* phase changes are seen within 10 ms */
}

/* Interrupt mode: sleep until one of the queue pairs signals a completion. */
static void wait_for_interrupt(struct perf_worker *w)
{
    struct pollfd pfd[PERF_MAX_NS];
    unsigned n = 0;
    for (unsigned i = 0; i < w->nns; i++) {
        int fd = vnvme_qpair_fd(w->ns[i].qp);
        if (fd >= 0)
            pfd[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
    }
    if (n == 0 || poll(pfd, n, 10) <= 0)
        return;
    for (unsigned i = 0; i < n; i++) {
        uint64_t v;
        if (pfd[i].revents & POLLIN)
            (void)!read(pfd[i].fd, &v, sizeof(v));
    }
}

/* One pass over every queue pair; returns completions seen. */
static int poll_once(struct perf_worker *w)
{
    int total = 0;
    for (unsigned i = 0; i < w->nns; i++) {
        struct perf_ns_ctx *ctx = &w->ns[i];
        w->batch_ticks = 0;
        int n = vnvme_qpair_process(ctx->qp, 0);
        if (n < 0) {
            if (!w->failed)
                fprintf(stderr, "vnvme-perf: core %u nsid %u: qpair failed: %s\n", w->core, ctx->nsid,
                        strerror(-n));
            w->failed = true;
            continue;
        }
        total += n;
        if (ctx->npending)
            retry_pending(ctx);
    }
    uint64_t paced = w->submitting ? paced_wait_ns(w) : 0;
    if (paced) {
        /* Only turns to wait for: sleep until the next, like a VM between requests. */
        struct timespec d = {.tv_sec = 0, .tv_nsec = (long)paced};
        nanosleep(&d, NULL);
        return total;
    }
    uint32_t ns = 0;
    if (total > 0) {
        perf_backoff_work(&w->backoff);
        if (!w->cfg->interrupts)
            ns = perf_backoff_pace(&w->backoff); /* interrupts pace themselves: see backoff.h */
    } else if (w->cfg->interrupts) {
        wait_for_interrupt(w);
    } else {
        ns = perf_backoff_pace(&w->backoff);
        if (ns == 0)
            ns = perf_backoff_empty(&w->backoff, ticks_now);
    }
    if (ns) {
        struct timespec d = {.tv_sec = 0, .tv_nsec = ns};
        nanosleep(&d, NULL);
    }
    return total;
}

static uint32_t outstanding(const struct perf_worker *w)
{
    uint32_t n = 0;
    for (unsigned i = 0; i < w->nns; i++)
        n += vnvme_qpair_outstanding(w->ns[i].qp);
    return n;
}

/* Lets in-flight I/O finish (nothing is resubmitted) so the qpairs can be freed. */
static void drain(struct perf_worker *w)
{
    w->submitting = false;
    uint64_t deadline = ticks_now() + (uint64_t)(5 * ticks_per_sec());
    while (outstanding(w) > 0 && !w->failed && ticks_now() < deadline)
        poll_once(w);
}

/* Each worker writes its share of every namespace once, sequentially, queue_depth at a time. */
static void fill(struct perf_worker *w)
{
    w->submitting = true;
    for (unsigned i = 0; i < w->nns; i++) {
        struct perf_ns_ctx *ctx = &w->ns[i];
        uint64_t share = ctx->io_units / w->nworkers;
        ctx->next_seq = share * w->index;
        ctx->fill_end = w->index + 1 == w->nworkers ? ctx->io_units : ctx->next_seq + share;
        for (uint32_t t = 0; t < ctx->ntasks && ctx->next_seq < ctx->fill_end && !w->failed; t++)
            submit_task(&ctx->tasks[t], true);
    }
    /* Completions resubmit until the share is written; no deadline: the driver's command timeout covers a hang. */
    while (outstanding(w) > 0 && !w->failed)
        poll_once(w);
    w->submitting = false;
    for (unsigned i = 0; i < w->nns; i++)
        w->ns[i].next_seq = 0;
}

static void pin(struct perf_worker *w)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->core, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc != 0)
        fprintf(stderr, "vnvme-perf: cannot pin to core %u: %s\n", w->core, strerror(rc));
}

void *perf_worker_main(void *arg)
{
    struct perf_worker *w = arg;
    pin(w);
    perf_backoff_init(&w->backoff, (uint64_t)(PERF_BACKOFF_SPIN_US * ticks_per_sec() / 1e6),
                      (uint64_t)(ticks_per_sec() / 1e6));
    /* The backoff's pauses are a few microseconds: without this the kernel may stretch each by 50 us. */
    if (prctl(PR_SET_TIMERSLACK, 1000ul, 0, 0, 0) != 0)
        fprintf(stderr, "vnvme-perf: core %u: cannot shorten the timer slack\n", w->core);
    w->phase_seen = PHASE_FILL;
    if (w->cfg->fill)
        fill(w);
    __atomic_store_n(&w->fill_done, true, __ATOMIC_RELEASE);
    while (load_phase() == PHASE_FILL)
        usleep(100);

    w->phase_seen = load_phase();
    w->start_ticks = ticks_now();
    w->submitting = true;
    w->batch_ticks = 0;
    for (unsigned i = 0; i < w->nns; i++)
        for (uint32_t t = 0; t < w->ns[i].ntasks && !w->failed; t++)
            submit_task(&w->ns[i].tasks[t], true);

    while (!w->failed) {
        int phase = load_phase();
        if (phase != w->phase_seen) {
            if (phase == PHASE_MEASURE) {
                for (unsigned i = 0; i < w->nns; i++) {
                    hist_reset(&w->ns[i].hist);
                    w->ns[i].bytes = 0;
                }
                w->start_ticks = ticks_now();
            }
            w->phase_seen = phase;
            if (phase == PHASE_STOP)
                break;
        }
        poll_once(w);
    }
    w->end_ticks = ticks_now();
    w->phase_seen = PHASE_STOP; /* what completes while draining is not counted */
    drain(w);
    return NULL;
}
