/* SPDX-License-Identifier: MIT */
#include "common/ticks.h"

#include <pthread.h>

static uint64_t hz = 1000000000u;
static pthread_once_t calibrated = PTHREAD_ONCE_INIT;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void calibrate(void)
{
#if defined(__x86_64__) || defined(__i386__)
    uint64_t n0 = mono_ns(), t0 = vnvme_ticks();
    struct timespec d = {0, 50 * 1000 * 1000};
    while (nanosleep(&d, &d) != 0)
        ;
    uint64_t n1 = mono_ns(), t1 = vnvme_ticks();
    if (n1 > n0 && t1 > t0)
        hz = (uint64_t)((double)(t1 - t0) * 1e9 / (double)(n1 - n0));
#else
    (void)mono_ns;
#endif
}

uint64_t vnvme_ticks_hz(void)
{
    pthread_once(&calibrated, calibrate);
    return hz;
}

uint64_t vnvme_ticks_to_ns(uint64_t ticks)
{
    uint64_t f = vnvme_ticks_hz();
    return (uint64_t)((unsigned __int128)ticks * 1000000000u / f);
}

uint64_t vnvme_ticks_to_us(uint64_t ticks)
{
    uint64_t f = vnvme_ticks_hz();
    return (uint64_t)((unsigned __int128)ticks * 1000000u / f);
}
