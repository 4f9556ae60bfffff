/* SPDX-License-Identifier: MIT */
/*
 * When to stop spinning: a worker whose queue pairs bring no completions for
 * a while (every command is out on a slow namespace, e.g. RBD, where one takes
 * milliseconds) sleeps between polls instead of holding its core, which the
 * target and, on small machines, the storage cluster's threads need.
 *
 * While completions keep coming (a RAM namespace answers within a
 * microsecond or two) the spin never runs out: the hot path is a counter
 * increment per empty poll and one clock read per PERF_BACKOFF_CHECK_EVERY
 * of them, no syscall. After PERF_BACKOFF_SPIN_US without a completion each
 * empty poll sleeps, PERF_BACKOFF_SLEEP_MIN_NS first and twice as long each
 * time up to PERF_BACKOFF_SLEEP_MAX_NS; the first completion ends it. The cap
 * bounds how late a completion is noticed (and so what the latency figures
 * gain): 100 us, small next to what a namespace that slow takes per command.
 *
 * Pacing, for namespaces that are slow but busy: at queue depth 32 on RBD a
 * completion arrives every few tens of microseconds, so the spin never runs
 * out, and the worker holds its core polling for completions that each took
 * a millisecond — CPU a small machine's storage cluster needed. So once the
 * average latency (an EWMA of the completions) reaches PERF_PACE_SLOW_US,
 * every poll is followed by a pause of a PERF_PACE_DIV-th of it (within
 * PERF_PACE_MIN_NS..PERF_PACE_MAX_NS): completions are reaped in batches,
 * each seen at most that much late, a few percent of its latency. A RAM
 * namespace's microsecond latencies never reach the threshold. With -I the
 * interrupt is the pacer: the worker sleeps until one comes, and a pause on
 * top of it would only add a timer wakeup per batch (measured on RBD, 4 KiB
 * random writes QD32, the guest's core shared with the cluster: 0.27 against
 * 0.17 context switches per I/O).
 */
#ifndef VNVME_PERF_BACKOFF_H
#define VNVME_PERF_BACKOFF_H

#include <stdint.h>

#define PERF_BACKOFF_CHECK_EVERY 64u   /* empty polls between clock reads (power of two) */
#define PERF_BACKOFF_SPIN_US 50u       /* no completion for this long: start sleeping */
#define PERF_BACKOFF_SLEEP_MIN_NS 5000u
#define PERF_BACKOFF_SLEEP_MAX_NS 100000u
#define PERF_PACE_SLOW_US 200u
#define PERF_PACE_DIV 16u
#define PERF_PACE_MIN_NS 5000u
#define PERF_PACE_MAX_NS 100000u

struct perf_backoff {
    uint64_t spin_ticks; /* PERF_BACKOFF_SPIN_US in the clock's ticks */
    uint64_t ticks_per_us;
    uint64_t lat_ewma;   /* completion latency, ticks, each new one weighing 1/8 */
    uint64_t idle_since; /* clock at the first check of this empty stretch */
    uint32_t empty_polls;
    uint32_t sleep_ns;   /* 0 while spinning, else the last sleep */
};

void perf_backoff_init(struct perf_backoff *b, uint64_t spin_ticks, uint64_t ticks_per_us);

/* A command completed after this many ticks. */
static inline void perf_backoff_latency(struct perf_backoff *b, uint64_t ticks)
{
    b->lat_ewma = b->lat_ewma - b->lat_ewma / 8u + ticks / 8u;
}

/* Nanoseconds to pause after each poll while commands are slow; 0: poll on (the spin rules apply). */
uint32_t perf_backoff_pace(const struct perf_backoff *b);

/* A poll found completions. */
static inline void perf_backoff_work(struct perf_backoff *b)
{
    b->empty_polls = 0;
    b->sleep_ns = 0;
}

/* The clock reads of an empty stretch: decides between spinning on and sleeping. */
uint32_t perf_backoff_check(struct perf_backoff *b, uint64_t now);

/* A poll found nothing: nanoseconds to sleep before the next one, 0 = poll again at once. */
static inline uint32_t perf_backoff_empty(struct perf_backoff *b, uint64_t (*clock)(void))
{
    if (b->sleep_ns == 0 && ++b->empty_polls % PERF_BACKOFF_CHECK_EVERY != 0)
        return 0;
    return perf_backoff_check(b, clock());
}

#endif
