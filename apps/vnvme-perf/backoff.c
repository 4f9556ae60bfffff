/* SPDX-License-Identifier: MIT */
/* Spin, then sleep with growing pauses: see backoff.h. */
#include "backoff.h"

void perf_backoff_init(struct perf_backoff *b, uint64_t spin_ticks)
{
    b->spin_ticks = spin_ticks;
    perf_backoff_work(b);
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
