/* SPDX-License-Identifier: MIT */
/* Spin, then sleep with growing pauses: see backoff.h. */
#include "backoff.h"

void perf_backoff_init(struct perf_backoff *b, uint64_t spin_ticks, uint64_t ticks_per_us)
{
    b->spin_ticks = spin_ticks;
    b->ticks_per_us = ticks_per_us;
    b->lat_ewma = 0;
    perf_backoff_work(b);
}

uint32_t perf_backoff_pace(const struct perf_backoff *b)
{
    if (b->ticks_per_us == 0 || b->lat_ewma < (uint64_t)PERF_PACE_SLOW_US * b->ticks_per_us)
        return 0;
    uint64_t ns = b->lat_ewma * 1000u / b->ticks_per_us / PERF_PACE_DIV;
    if (ns < PERF_PACE_MIN_NS)
        ns = PERF_PACE_MIN_NS;
    return (uint32_t)(ns < PERF_PACE_MAX_NS ? ns : PERF_PACE_MAX_NS);
}

uint32_t perf_backoff_check(struct perf_backoff *b, uint64_t now)
{
    if (b->sleep_ns) {
        uint32_t next = b->sleep_ns * 2;
        b->sleep_ns = next < PERF_BACKOFF_SLEEP_MAX_NS ? next : PERF_BACKOFF_SLEEP_MAX_NS;
        return b->sleep_ns;
    }
    /* The stretch is timed from its first clock read: it began at most CHECK_EVERY polls earlier. */
    if (b->empty_polls == PERF_BACKOFF_CHECK_EVERY) {
        b->idle_since = now;
        return 0;
    }
    if (now - b->idle_since < b->spin_ticks)
        return 0;
    b->sleep_ns = PERF_BACKOFF_SLEEP_MIN_NS;
    return b->sleep_ns;
}
