/* SPDX-License-Identifier: MIT */
/*
 * bdev rate limits: I/Os over the limit wait on their channel in order and go
 * when polled at their turn; a limit is shared by every channel; a waiting I/O
 * can be recalled at once; ops that are not counted still keep their order;
 * limits can change and be lifted. Times are lower bounds of what a limit
 * forces, never a performance goal.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bdev_done.h"
#include "common/ticks.h"
#include "vnvme/bdev.h"
#include "vnvme/bdev_qos.h"

#define BS 4096u
#define N 40

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint8_t buf[N][BS];
static struct iovec iov[N];
static struct vnvme_bdev_io ios[N];
static struct done done[N];

static void prep(int i, enum vnvme_bdev_op op)
{
    memset(&ios[i], 0, sizeof(ios[i]));
    memset(&done[i], 0, sizeof(done[i]));
    iov[i] = (struct iovec){buf[i], BS};
    ios[i].op = op;
    ios[i].offset_blocks = (uint64_t)i;
    ios[i].num_blocks = 1;
    ios[i].iov = op == VNVME_BDEV_FLUSH ? NULL : &iov[i];
    ios[i].iovcnt = op == VNVME_BDEV_FLUSH ? 0 : 1;
    ios[i].cb = record;
    ios[i].cb_arg = &done[i];
}

static int completed(int n)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += done[i].calls;
    return c;
}

static void set(struct vnvme_bdev *b, uint64_t iops, uint64_t rw_mb, uint64_t r_mb, uint64_t w_mb)
{
    uint64_t l[VNVME_QOS_NR_LIMITS] = {iops, rw_mb, r_mb, w_mb};
    assert_int_equal(vnvme_bdev_qos_set(b, l), 0);
}

static struct vnvme_bdev *make(void)
{
    struct vnvme_bdev *b = NULL;
    assert_int_equal(vnvme_bdev_malloc_create("m0", 1024, BS, NULL, &b), 0);
    return b;
}

static void test_no_limit_goes_at_once(void **state)
{
    (void)state;
    struct vnvme_bdev *b = make();
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    for (int i = 0; i < N; i++) {
        prep(i, VNVME_BDEV_READ);
        assert_int_equal(vnvme_bdev_submit(ch, &ios[i]), 0);
    }
    assert_int_equal(completed(N), N);
    uint64_t l[VNVME_QOS_NR_LIMITS];
    vnvme_bdev_qos_get(b, l);
    assert_int_equal(l[VNVME_QOS_RW_IOPS], 0);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

/* 1000 I/O per second: 40 reads cannot all be done before ~40 ms, and all are done, in order. */
static void test_iops_limit_holds_and_keeps_order(void **state)
{
    (void)state;
    struct vnvme_bdev *b = make();
    set(b, 1000, 0, 0, 0);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    uint64_t t0 = now_ms();
    for (int i = 0; i < N; i++) {
        prep(i, i == 20 ? VNVME_BDEV_FLUSH : VNVME_BDEV_READ); /* a flush is not counted, but keeps its place */
        assert_int_equal(vnvme_bdev_submit(ch, &ios[i]), 0);
    }
    assert_true(completed(N) < 5); /* a millisecond of tolerance, not more */
    while (completed(N) < N) {
        int before = completed(N);
        vnvme_bdev_channel_poll(ch);
        for (int i = before; i < completed(N); i++)
            assert_int_equal(done[i].calls, 1); /* completions in submission order */
        assert_true(now_ms() - t0 < 10000);
    }
    assert_true(now_ms() - t0 >= 35);
    for (int i = 0; i < N; i++)
        assert_int_equal(done[i].status, 0);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

/*
 * A namespace's own limits (an extra schedule on its channels): two channels
 * sharing one at 1000/s take >= 35 ms for 40 I/Os though the bdev allows
 * 100000/s; a third channel of the same bdev without it is not held; the
 * stricter of bdev and namespace wins; limits created after the channel
 * count from the next I/O on.
 */
static void test_namespace_limits(void **state)
{
    (void)state;
    struct vnvme_bdev *b = make();
    set(b, 100000, 0, 0, 0);
    struct vnvme_qos *ns_qos = NULL;
    struct vnvme_bdev_channel *c1 = vnvme_bdev_channel_get(b), *c2 = vnvme_bdev_channel_get(b);
    struct vnvme_bdev_channel *other = vnvme_bdev_channel_get(b);
    vnvme_bdev_channel_set_qos(c1, &ns_qos);
    vnvme_bdev_channel_set_qos(c2, &ns_qos);
    /* No namespace limits yet: the bdev's generous one only. */
    for (int i = 0; i < 4; i++) {
        prep(i, VNVME_BDEV_READ);
        assert_int_equal(vnvme_bdev_submit(c1, &ios[i]), 0);
    }
    assert_int_equal(completed(4), 4);
    ns_qos = vnvme_qos_create();
    assert_non_null(ns_qos);
    uint64_t l[VNVME_QOS_NR_LIMITS] = {1000, UINT64_MAX, UINT64_MAX, UINT64_MAX};
    vnvme_qos_set(ns_qos, l);
    uint64_t t0 = now_ms();
    for (int i = 0; i < N; i++) {
        prep(i, VNVME_BDEV_READ);
        assert_int_equal(vnvme_bdev_submit(i % 2 ? c2 : c1, &ios[i]), 0);
    }
    assert_true(completed(N) < 5);
    while (completed(N) < N) {
        vnvme_bdev_channel_poll(c1);
        vnvme_bdev_channel_poll(c2);
        assert_true(now_ms() - t0 < 10000);
    }
    assert_true(now_ms() - t0 >= 35);
    /* The same bdev through another namespace: not held by this one's limit. */
    t0 = now_ms();
    for (int i = 0; i < N; i++) {
        prep(i, VNVME_BDEV_READ);
        assert_int_equal(vnvme_bdev_submit(other, &ios[i]), 0);
        vnvme_bdev_channel_poll(other);
    }
    while (completed(N) < N) {
        vnvme_bdev_channel_poll(other);
        assert_true(now_ms() - t0 < 10000);
    }
    assert_true(now_ms() - t0 < 30); /* 40 I/Os at 100000/s: well under a millisecond of schedule */
    /* The bdev stricter than the namespace: the bdev's limit holds. */
    set(b, 500, 0, 0, 0);
    l[VNVME_QOS_RW_IOPS] = 100000;
    vnvme_qos_set(ns_qos, l);
    t0 = now_ms();
    for (int i = 0; i < 20; i++) {
        prep(i, VNVME_BDEV_READ);
        assert_int_equal(vnvme_bdev_submit(c1, &ios[i]), 0);
    }
    while (completed(20) < 20) {
        vnvme_bdev_channel_poll(c1);
        assert_true(now_ms() - t0 < 10000);
    }
    assert_true(now_ms() - t0 >= 35); /* 20 at 500/s */
    vnvme_bdev_channel_put(c1);
    vnvme_bdev_channel_put(c2);
    vnvme_bdev_channel_put(other);
    vnvme_qos_destroy(ns_qos);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

/* The limit is the bdev's: two channels (two reactors) share it. */
static void test_limit_shared_by_channels(void **state)
{
    (void)state;
    struct vnvme_bdev *b = make();
    set(b, 1000, 0, 0, 0);
    struct vnvme_bdev_channel *c1 = vnvme_bdev_channel_get(b), *c2 = vnvme_bdev_channel_get(b);
    uint64_t t0 = now_ms();
    for (int i = 0; i < N; i++) {
        prep(i, VNVME_BDEV_READ);
        assert_int_equal(vnvme_bdev_submit(i % 2 ? c2 : c1, &ios[i]), 0);
    }
    while (completed(N) < N) {
        vnvme_bdev_channel_poll(c1);
        vnvme_bdev_channel_poll(c2);
        assert_true(now_ms() - t0 < 10000);
    }
    assert_true(now_ms() - t0 >= 35); /* not 2 x 1000 per second */
    vnvme_bdev_channel_put(c1);
    vnvme_bdev_channel_put(c2);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

/* 10 MiB/s of writes: 40 x 4 KiB = 160 KiB take at least ~15 ms; reads are not held by a write limit. */
static void test_bandwidth_limits(void **state)
{
    (void)state;
    struct vnvme_bdev *b = make();
    set(b, 0, 0, 0, 10);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b), *rd = vnvme_bdev_channel_get(b);
    uint64_t t0 = now_ms();
    for (int i = 0; i < N; i++) {
        prep(i, VNVME_BDEV_WRITE);
        assert_int_equal(vnvme_bdev_submit(ch, &ios[i]), 0);
    }
    struct done rdone = {0};
    struct vnvme_bdev_io r = {.op = VNVME_BDEV_READ, .num_blocks = 1, .iov = &iov[0], .iovcnt = 1, .cb = record,
                              .cb_arg = &rdone};
    assert_int_equal(vnvme_bdev_submit(rd, &r), 0);
    assert_int_equal(rdone.calls, 1);
    while (completed(N) < N) {
        vnvme_bdev_channel_poll(ch);
        assert_true(now_ms() - t0 < 10000);
    }
    assert_true(now_ms() - t0 >= 13);
    vnvme_bdev_channel_put(ch);
    vnvme_bdev_channel_put(rd);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

/* A waiting I/O is recalled at once; the channel going gives back what still waits. */
static void test_recall_and_channel_put(void **state)
{
    (void)state;
    struct vnvme_bdev *b = make();
    set(b, 1, 0, 0, 0); /* one per second: everything after the first waits */
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    for (int i = 0; i < 4; i++) {
        prep(i, VNVME_BDEV_READ);
        assert_int_equal(vnvme_bdev_submit(ch, &ios[i]), 0);
    }
    assert_int_equal(completed(4), 1);
    assert_int_equal(vnvme_bdev_abort(ch, &ios[2]), 0);
    assert_int_equal(done[2].calls, 1);
    assert_int_equal(done[2].status, -ECANCELED);
    assert_int_equal(vnvme_bdev_abort(ch, &ios[2]), -ENOTSUP); /* gone from the queue: malloc cannot recall */
    vnvme_bdev_channel_put(ch);
    assert_int_equal(done[1].status, -ECANCELED);
    assert_int_equal(done[3].status, -ECANCELED);
    assert_int_equal(completed(4), 4);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

/* Limits change at once for new I/O; lifting them lets new I/O through once the queue has drained. */
static void test_change_and_lift(void **state)
{
    (void)state;
    struct vnvme_bdev *b = make();
    set(b, 1000, 0, 0, 0);
    uint64_t keep[VNVME_QOS_NR_LIMITS] = {UINT64_MAX, 50, UINT64_MAX, UINT64_MAX}, l[VNVME_QOS_NR_LIMITS];
    assert_int_equal(vnvme_bdev_qos_set(b, keep), 0);
    vnvme_bdev_qos_get(b, l);
    assert_int_equal(l[VNVME_QOS_RW_IOPS], 1000);
    assert_int_equal(l[VNVME_QOS_RW_MBPS], 50);
    set(b, 0, 0, 0, 0);
    vnvme_bdev_qos_get(b, l);
    assert_int_equal(l[VNVME_QOS_RW_IOPS] + l[VNVME_QOS_RW_MBPS], 0);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    for (int i = 0; i < N; i++) {
        prep(i, VNVME_BDEV_READ);
        assert_int_equal(vnvme_bdev_submit(ch, &ios[i]), 0);
    }
    assert_int_equal(completed(N), N);
    assert_string_equal(vnvme_qos_limit_name(VNVME_QOS_W_MBPS), "w_mbytes_per_sec");
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

/*
 * A limit changed while I/Os wait: they are booked again at the new rate, in
 * order. Raised from 1/s to 100000/s, nine waiting reads (nine seconds of
 * turns) finish at once; lowered from 1000/s to 100/s halfway, the rest take
 * at least their new share; lifted, whatever waits goes at the next poll.
 */
static void test_limit_changed_while_waiting(void **state)
{
    (void)state;
    struct vnvme_bdev *b = make();
    set(b, 1, 0, 0, 0);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    for (int i = 0; i < 10; i++) {
        prep(i, VNVME_BDEV_READ);
        assert_int_equal(vnvme_bdev_submit(ch, &ios[i]), 0);
    }
    assert_int_equal(completed(10), 1);
    set(b, 100000, 0, 0, 0);
    uint64_t t0 = now_ms();
    while (completed(10) < 10) {
        vnvme_bdev_channel_poll(ch);
        assert_true(now_ms() - t0 < 1000);
    }
    for (int i = 1; i < 10; i++)
        assert_int_equal(done[i].status, 0);

    set(b, 1000, 0, 0, 0);
    for (int i = 0; i < N; i++) {
        prep(i, VNVME_BDEV_READ);
        assert_int_equal(vnvme_bdev_submit(ch, &ios[i]), 0);
    }
    while (completed(N) < 10)
        vnvme_bdev_channel_poll(ch);
    set(b, 100, 0, 0, 0);
    t0 = now_ms();
    int left = N - completed(N);
    while (completed(N) < N) {
        int before = completed(N);
        vnvme_bdev_channel_poll(ch);
        for (int i = before; i < completed(N); i++)
            assert_int_equal(done[i].calls, 1); /* still in order */
        assert_true(now_ms() - t0 < 10000);
    }
    assert_true(now_ms() - t0 >= (uint64_t)(left - 2) * 10u); /* 100/s for what was left */

    set(b, 1, 0, 0, 0);
    for (int i = 0; i < 8; i++) {
        prep(i, VNVME_BDEV_READ);
        assert_int_equal(vnvme_bdev_submit(ch, &ios[i]), 0);
    }
    assert_true(completed(8) <= 1);
    set(b, 0, 0, 0, 0);
    vnvme_bdev_channel_poll(ch);
    assert_int_equal(completed(8), 8);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

/*
 * A clock that goes backwards (another core's TSC a little behind, or a
 * caller's stale timestamp) neither moves the schedule back, nor lets an
 * I/O jump the queue, nor underflows near zero.
 */
static void test_time_going_backwards(void **state)
{
    (void)state;
    struct vnvme_qos *q = vnvme_qos_create();
    assert_non_null(q);
    uint64_t l[VNVME_QOS_NR_LIMITS] = {1000, 0, 0, 0};
    vnvme_qos_set(q, l);
    vnvme_qos_set_burst(q, 0); /* 1 ms of tolerance */
    struct vnvme_qos_queue qq = {0};
    uint64_t hz = vnvme_ticks_hz(), ms = hz / 1000u, t = 100000u * ms;
    for (int i = 0; i < 6; i++)
        prep(i, VNVME_BDEV_READ);
    /* Two go at once (the tolerance), the next waits about a millisecond. */
    assert_int_equal(vnvme_qos_admit_at(q, NULL, BS, &qq, &ios[0], t), 0);
    assert_int_equal(vnvme_qos_admit_at(q, NULL, BS, &qq, &ios[1], t), 0);
    assert_int_equal(vnvme_qos_admit_at(q, NULL, BS, &qq, &ios[2], t), 1);
    uint64_t turn2 = ios[2].qos_turn;
    assert_true(turn2 > t && turn2 <= t + 2 * ms);
    /* The clock now reads ten seconds earlier: the next turn still comes after the last one booked. */
    assert_int_equal(vnvme_qos_admit_at(q, NULL, BS, &qq, &ios[3], t - 10000u * ms), 1);
    assert_true(ios[3].qos_turn > turn2);
    /* Nothing is due at the earlier time, and order holds when it is. */
    assert_null(vnvme_bdev_qos_next_due_at(&qq, t - 10000u * ms));
    assert_ptr_equal(vnvme_bdev_qos_next_due_at(&qq, ios[3].qos_turn), &ios[2]);
    assert_ptr_equal(vnvme_bdev_qos_next_due_at(&qq, ios[3].qos_turn), &ios[3]);
    assert_null(vnvme_bdev_qos_next_due_at(&qq, ios[3].qos_turn));
    /* Near zero: a fresh schedule at a tiny clock value admits at once, with no wrap to a huge turn. */
    vnvme_qos_set(q, l); /* a change: what was booked is forgotten */
    assert_int_equal(vnvme_qos_admit_at(q, NULL, BS, &qq, &ios[4], 5), 0);
    /* The clock goes back from 5 to 3: the next one waits for its turn, just after 5, not for a wrapped one. */
    assert_int_equal(vnvme_qos_admit_at(q, NULL, BS, &qq, &ios[5], 3), 1);
    assert_true(ios[5].qos_turn > 3 && ios[5].qos_turn <= 6);
    assert_ptr_equal(vnvme_bdev_qos_next_due_at(&qq, 6), &ios[5]);
    vnvme_qos_destroy(q);
}

/* A burst allowance lets a burst's worth go at once after a quiet spell; then the limit bites again. */
static void test_burst_allowance(void **state)
{
    (void)state;
    struct vnvme_bdev *b = make();
    set(b, 1000, 0, 0, 0);
    vnvme_bdev_qos_set_burst(b, 20); /* 20 ms at 1000 IOPS: 20 I/Os */
    assert_int_equal(vnvme_bdev_qos_burst(b), 20);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    uint64_t t0 = now_ms();
    for (int i = 0; i < N; i++) {
        prep(i, VNVME_BDEV_READ);
        assert_int_equal(vnvme_bdev_submit(ch, &ios[i]), 0);
    }
    int at_once = completed(N);
    assert_true(at_once >= 19 && at_once <= 22);
    while (completed(N) < N) {
        vnvme_bdev_channel_poll(ch);
        assert_true(now_ms() - t0 < 10000);
    }
    assert_true(now_ms() - t0 >= 15); /* the other ~20 at the limit's pace */
    /* Back to the default allowance: about one I/O ahead of the schedule. */
    vnvme_bdev_qos_set_burst(b, 0);
    assert_int_equal(vnvme_bdev_qos_burst(b), 0);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_limit_goes_at_once),
        cmocka_unit_test(test_iops_limit_holds_and_keeps_order),
        cmocka_unit_test(test_limit_shared_by_channels),
        cmocka_unit_test(test_namespace_limits),
        cmocka_unit_test(test_bandwidth_limits),
        cmocka_unit_test(test_recall_and_channel_put),
        cmocka_unit_test(test_change_and_lift),
        cmocka_unit_test(test_limit_changed_while_waiting),
        cmocka_unit_test(test_time_going_backwards),
        cmocka_unit_test(test_burst_allowance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
