/* SPDX-License-Identifier: MIT */
/* vnvme-perf's backoff: spin while completions come, sleep with growing pauses when they stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"

#define SPIN_TICKS 1000u
#define TICKS_PER_US 100u

static uint64_t fake_now;
static unsigned clock_reads;

static uint64_t fake_clock(void)
{
    clock_reads++;
    return fake_now;
}

static struct perf_backoff fresh(void)
{
    struct perf_backoff b;
    perf_backoff_init(&b, SPIN_TICKS, TICKS_PER_US);
    fake_now = 5000;
    clock_reads = 0;
    return b;
}

/* Empty polls spaced dt ticks apart until one asks for a sleep; how many polls that took. */
static unsigned polls_until_sleep(struct perf_backoff *b, uint64_t dt, unsigned limit, uint32_t *ns)
{
    for (unsigned i = 1; i <= limit; i++) {
        fake_now += dt;
        *ns = perf_backoff_empty(b, fake_clock);
        if (*ns)
            return i;
    }
    return 0;
}

/* Short gaps between completions (a RAM namespace): never a sleep, and the clock is rarely read. */
static void completions_keep_it_spinning(void **state)
{
    (void)state;
    struct perf_backoff b = fresh();
    for (int io = 0; io < 10000; io++) {
        for (int empty = 0; empty < 200; empty++) {
            fake_now += 1;
            assert_int_equal(perf_backoff_empty(&b, fake_clock), 0);
        }
        perf_backoff_work(&b);
    }
    /* 200 empty polls per completion: 3 clock reads each (polls 64, 128, 192), no syscall. */
    assert_int_equal(clock_reads, 3u * 10000u);
}

/* No completion for the spin time: sleeps start at the minimum and double up to the cap. */
static void sleeps_grow_to_the_cap(void **state)
{
    (void)state;
    struct perf_backoff b = fresh();
    uint32_t ns = 0;
    /* One tick per poll: the stretch is timed from the 64th poll, then needs SPIN_TICKS more. */
    unsigned n = polls_until_sleep(&b, 1, 100000, &ns);
    assert_int_equal(ns, PERF_BACKOFF_SLEEP_MIN_NS);
    assert_true(n >= PERF_BACKOFF_CHECK_EVERY + SPIN_TICKS);
    assert_true(n <= 2 * PERF_BACKOFF_CHECK_EVERY + SPIN_TICKS);
    uint32_t prev = ns;
    for (int i = 0; i < 40; i++) {
        ns = perf_backoff_empty(&b, fake_clock);
        assert_int_equal(ns, prev * 2 < PERF_BACKOFF_SLEEP_MAX_NS ? prev * 2 : PERF_BACKOFF_SLEEP_MAX_NS);
        prev = ns;
    }
    assert_int_equal(ns, PERF_BACKOFF_SLEEP_MAX_NS);
}

/* A completion ends the sleeping at once, and the next stretch spins the whole time again. */
static void a_completion_resets(void **state)
{
    (void)state;
    struct perf_backoff b = fresh();
    uint32_t ns = 0;
    unsigned first = polls_until_sleep(&b, 1, 100000, &ns);
    assert_true(first > 0);
    perf_backoff_empty(&b, fake_clock);
    perf_backoff_work(&b);
    unsigned second = polls_until_sleep(&b, 1, 100000, &ns);
    assert_int_equal(second, first);
    assert_int_equal(ns, PERF_BACKOFF_SLEEP_MIN_NS);
}

/* Fast commands never pace; slow ones pace at a sixteenth of their latency, within bounds. */
static void test_pace_follows_latency(void **state)
{
    (void)state;
    struct perf_backoff b = fresh();
    assert_int_equal(perf_backoff_pace(&b), 0);
    for (int i = 0; i < 100; i++)
        perf_backoff_latency(&b, 20u * TICKS_PER_US); /* 20 us: a RAM namespace under load */
    assert_int_equal(perf_backoff_pace(&b), 0);
    for (int i = 0; i < 100; i++)
        perf_backoff_latency(&b, 1000u * TICKS_PER_US); /* 1 ms: RBD at queue depth 32 */
    uint32_t ns = perf_backoff_pace(&b);
    assert_in_range(ns, 60000u, 63000u); /* ~1 ms / 16, the EWMA just short of 1 ms */
    for (int i = 0; i < 100; i++)
        perf_backoff_latency(&b, 50000u * TICKS_PER_US); /* 50 ms: capped */
    assert_int_equal(perf_backoff_pace(&b), PERF_PACE_MAX_NS);
    for (int i = 0; i < 100; i++)
        perf_backoff_latency(&b, 300u * TICKS_PER_US); /* just over the threshold: 300 us / 16 */
    assert_in_range(perf_backoff_pace(&b), 18700u, 18800u);
    for (int i = 0; i < 100; i++)
        perf_backoff_latency(&b, 5u * TICKS_PER_US); /* fast again: the pacing stops */
    assert_int_equal(perf_backoff_pace(&b), 0);
    /* Without a known clock rate nothing is paced. */
    perf_backoff_init(&b, SPIN_TICKS, 0);
    perf_backoff_latency(&b, 1u << 30);
    assert_int_equal(perf_backoff_pace(&b), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pace_follows_latency),
        cmocka_unit_test(completions_keep_it_spinning),
        cmocka_unit_test(sleeps_grow_to_the_cap),
        cmocka_unit_test(a_completion_resets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
