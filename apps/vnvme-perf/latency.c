/* SPDX-License-Identifier: MIT */
#include "latency.h"

#include <string.h>

void ticks_calibrate(void)
{
    (void)vnvme_ticks_hz();
}

double ticks_per_sec(void)
{
    return (double)vnvme_ticks_hz();
}

double ticks_to_ns(uint64_t ticks)
{
    return (double)ticks * 1e9 / (double)vnvme_ticks_hz();
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
