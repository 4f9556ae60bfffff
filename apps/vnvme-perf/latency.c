/* SPDX-License-Identifier: MIT */
#include "latency.h"

#include <string.h>

static double tps = 1e9;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void ticks_calibrate(void)
{
#if defined(__x86_64__) || defined(__i386__)
    uint64_t n0 = mono_ns(), t0 = ticks_now();
    struct timespec d = {0, 100 * 1000 * 1000};
    while (nanosleep(&d, &d) != 0)
        ;
    uint64_t n1 = mono_ns(), t1 = ticks_now();
    if (n1 > n0 && t1 > t0)
        tps = (double)(t1 - t0) * 1e9 / (double)(n1 - n0);
#else
    (void)mono_ns;
    tps = 1e9;
#endif
}

double ticks_per_sec(void)
{
    return tps;
}

double ticks_to_ns(uint64_t ticks)
{
    return (double)ticks * 1e9 / tps;
}

void hist_reset(struct latency_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void hist_merge(struct latency_hist *dst, const struct latency_hist *src)
{
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->bucket[i] += src->bucket[i];
}

/* Largest value that falls into bucket i. */
static uint64_t bucket_upper(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned shift = i / HIST_SUB - 1;
    uint64_t sub = i % HIST_SUB;
    uint64_t base = (HIST_SUB + sub) << shift;
    return base + ((1ull << shift) - 1);
}

uint64_t hist_quantile(const struct latency_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t v = bucket_upper(i);
            return v > h->max ? h->max : v < h->min ? h->min : v;
        }
    }
    return h->max;
}
