/* SPDX-License-Identifier: MIT */
/*
 * A cheap timestamp for per-I/O accounting. On x86 it is the TSC (invariant
 * on the CPUs this runs on), calibrated once against CLOCK_MONOTONIC: even the
 * vDSO clock_gettime costs several times more than rdtsc, and I/O statistics
 * read the clock twice per I/O. Elsewhere it is CLOCK_MONOTONIC in ns.
 */
#ifndef VNVME_COMMON_TICKS_H
#define VNVME_COMMON_TICKS_H

#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t vnvme_ticks(void)
{
    return __rdtsc();
}
#else
static inline uint64_t vnvme_ticks(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#endif

/* Ticks per second, measured on the first call (50 ms; later calls return at once, any thread). */
uint64_t vnvme_ticks_hz(void);
/* Ticks to nanoseconds and microseconds, without overflow for any uptime. */
uint64_t vnvme_ticks_to_ns(uint64_t ticks);
uint64_t vnvme_ticks_to_us(uint64_t ticks);

#endif
