/* SPDX-License-Identifier: MIT */
/*
 * Cheap timestamps (common/ticks.h: the TSC on x86) and a latency histogram
 * for the I/O loop, which reads the clock once per completion batch.
 */
#ifndef VNVME_PERF_LATENCY_H
#define VNVME_PERF_LATENCY_H

#include <stdint.h>
#include <time.h>

#include "common/ticks.h"

static inline uint64_t ticks_now(void)
{
    return vnvme_ticks();
}

/* Measures ticks per second (once, before the run: 50 ms against CLOCK_MONOTONIC on x86). */
void ticks_calibrate(void);
double ticks_per_sec(void);
double ticks_to_ns(uint64_t ticks);

/*
 * Log-linear histogram of tick counts: values below 2^SUB_BITS have a bucket
 * each; above, every power of two is split into 2^SUB_BITS linear buckets, so
 * the relative error of any percentile is below 1/32.
 */
#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct latency_hist {
    uint64_t count;
    uint64_t sum;
    uint64_t min;
    uint64_t max;
    uint64_t bucket[HIST_BUCKETS];
};

static inline unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) & (HIST_SUB - 1));
}

static inline void hist_add(struct latency_hist *h, uint64_t v)
{
    h->count++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->bucket[hist_index(v)]++;
}

void hist_reset(struct latency_hist *h);
void hist_merge(struct latency_hist *dst, const struct latency_hist *src);
/* Upper bound (in ticks) of the bucket holding the given quantile (0 < q <= 1), clamped to max. */
uint64_t hist_quantile(const struct latency_hist *h, double q);

#endif
