/* SPDX-License-Identifier: MIT */
/*
 * bdev I/O statistics (SPDK's bdev_get_iostat fields): what each op counts,
 * latencies, queue depth and busy time, I/O through two bdev levels (delay
 * over malloc), refused and aborted I/O, per-channel figures, channels that go,
 * reset, and counting turned off.
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
#include "vnvme/bdev.h"
#include "common/ticks.h"
#include "vnvme/bdev_stat.h"

#define BS 512u

static struct vnvme_bdev *malloc_bdev(const char *name)
{
    struct vnvme_bdev *b = NULL;
    assert_int_equal(vnvme_bdev_malloc_create(name, 1024, BS, NULL, &b), 0);
    return b;
}

static void init_io(struct vnvme_bdev_io *io, enum vnvme_bdev_op op, uint64_t lba, uint64_t nb, struct iovec *iov,
                    struct done *d)
{
    memset(io, 0, sizeof(*io));
    io->op = op;
    io->offset_blocks = lba;
    io->num_blocks = nb;
    io->iov = iov;
    io->iovcnt = iov ? 1 : 0;
    io->cb = record;
    io->cb_arg = d;
}

static int run(struct vnvme_bdev_channel *ch, enum vnvme_bdev_op op, uint64_t lba, uint64_t nb, void *buf)
{
    struct done d = {0};
    struct vnvme_bdev_io io;
    struct iovec iov = {buf, nb * BS};
    init_io(&io, op, lba, nb, buf ? &iov : NULL, &d);
    int rc = vnvme_bdev_submit(ch, &io);
    if (rc < 0)
        return rc;
    while (d.calls == 0)
        vnvme_bdev_channel_poll(ch);
    assert_int_equal(d.calls, 1);
    assert_ptr_equal(io.cb, record); /* the caller's callback is back in place */
    assert_int_equal(io.stat_depth, 0);
    return d.status;
}

static void test_counts_by_op(void **state)
{
    (void)state;
    struct vnvme_bdev *b = malloc_bdev("m0");
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    uint8_t buf[8 * BS];
    memset(buf, 7, sizeof(buf));
    assert_int_equal(run(ch, VNVME_BDEV_WRITE, 0, 8, buf), 0);
    assert_int_equal(run(ch, VNVME_BDEV_READ, 0, 2, buf), 0);
    assert_int_equal(run(ch, VNVME_BDEV_READ, 4, 4, buf), 0);
    assert_int_equal(run(ch, VNVME_BDEV_COMPARE, 0, 1, buf), 0);
    assert_int_equal(run(ch, VNVME_BDEV_UNMAP, 0, 16, NULL), 0);
    assert_int_equal(run(ch, VNVME_BDEV_WRITE_ZEROES, 0, 16, NULL), 0);
    assert_int_equal(run(ch, VNVME_BDEV_FLUSH, 0, 0, NULL), 0);
    buf[0] = 1;
    assert_int_equal(run(ch, VNVME_BDEV_COMPARE, 0, 1, buf), -EILSEQ);

    struct vnvme_bdev_iostat s;
    vnvme_bdev_iostat(b, &s);
    assert_int_equal(s.ops[VNVME_STAT_WRITE], 1);
    assert_int_equal(s.bytes[VNVME_STAT_WRITE], 8 * BS);
    assert_int_equal(s.ops[VNVME_STAT_READ], 3); /* two reads and the matching compare */
    assert_int_equal(s.bytes[VNVME_STAT_READ], 7 * BS);
    assert_int_equal(s.ops[VNVME_STAT_UNMAP], 1);
    assert_int_equal(s.bytes[VNVME_STAT_UNMAP], 16 * BS);
    assert_int_equal(s.other_ops, 2);
    assert_int_equal(s.errors[VNVME_ERR_MISCOMPARE], 1);
    for (int k = 0; k < VNVME_STAT_NR_KINDS; k++) {
        assert_true(s.min_latency_ticks[k] <= s.max_latency_ticks[k]);
        assert_true(s.max_latency_ticks[k] <= s.latency_ticks[k]);
        assert_true(s.latency_ticks[k] <= s.ops[k] * s.max_latency_ticks[k]);
    }
    assert_int_equal(s.queue_depth, 0);
    assert_string_equal(vnvme_bdev_err_kind_name(VNVME_ERR_MISCOMPARE), "miscompare");
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

static void test_refused_io_is_not_counted(void **state)
{
    (void)state;
    struct vnvme_bdev *b = malloc_bdev("m0");
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    uint8_t buf[BS];
    assert_int_equal(run(ch, VNVME_BDEV_READ, 1024, 1, buf), -ERANGE);
    struct vnvme_bdev_io io;
    struct done d = {0};
    init_io(&io, VNVME_BDEV_READ, 0, 1, NULL, &d);
    io.cb = NULL;
    assert_int_equal(vnvme_bdev_submit(ch, &io), -EINVAL); /* no callback: refused before any wrapper */
    struct vnvme_bdev_iostat s;
    vnvme_bdev_iostat(b, &s);
    assert_int_equal(s.ops[VNVME_STAT_READ], 0);
    assert_int_equal(s.errors[VNVME_ERR_INVALID], 0);
    assert_int_equal(s.queue_depth, 0);
    assert_int_equal(s.min_latency_ticks[VNVME_STAT_READ], UINT64_MAX);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

/* A delay bdev hands the same I/O to its base: each counts it once, with its own latency. */
static void test_two_levels_depth_and_busy_time(void **state)
{
    (void)state;
    struct vnvme_bdev *base = malloc_bdev("base"), *dly = NULL;
    uint64_t lat[4] = {20000, 20000, 0, 0}; /* 20 ms reads */
    assert_int_equal(vnvme_bdev_delay_create("dly", "base", lat, NULL, &dly), 0);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(dly);
    uint8_t buf[2][BS];
    struct iovec iov[2] = {{buf[0], BS}, {buf[1], BS}};
    struct done d[2] = {{0}, {0}};
    struct vnvme_bdev_io io[2];
    for (int i = 0; i < 2; i++) {
        init_io(&io[i], VNVME_BDEV_READ, (uint64_t)i, 1, &iov[i], &d[i]);
        assert_int_equal(vnvme_bdev_submit(ch, &io[i]), 0);
    }
    struct vnvme_bdev_iostat s;
    vnvme_bdev_iostat(dly, &s);
    assert_int_equal(s.queue_depth, 2);
    vnvme_bdev_iostat(base, &s);
    assert_int_equal(s.queue_depth, 0); /* still waiting in the delay bdev */
    while (d[0].calls == 0 || d[1].calls == 0)
        vnvme_bdev_channel_poll(ch);
    vnvme_bdev_iostat(dly, &s);
    assert_int_equal(s.ops[VNVME_STAT_READ], 2);
    assert_int_equal(s.queue_depth, 0);
    assert_true(vnvme_ticks_to_ns(s.min_latency_ticks[VNVME_STAT_READ]) >= 20000000u);
    /* Both waited together: busy ~20 ms, and twice that weighted by depth. */
    assert_true(vnvme_ticks_to_ns(s.io_time_ticks) >= 20000000u);
    assert_true(vnvme_ticks_to_ns(s.weighted_io_time_ticks) >= 2 * 20000000u - 2000000u);
    assert_true(s.weighted_io_time_ticks <= 2 * s.io_time_ticks);
    uint64_t dly_min = s.min_latency_ticks[VNVME_STAT_READ];
    vnvme_bdev_iostat(base, &s);
    assert_int_equal(s.ops[VNVME_STAT_READ], 2);
    assert_true(s.max_latency_ticks[VNVME_STAT_READ] < dly_min); /* the base saw no delay */
    assert_int_equal(io[0].stat_depth, 0);
    assert_ptr_equal(io[0].cb, record);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("dly"), 0);
    assert_int_equal(vnvme_bdev_delete("base"), 0);
}

static void test_aborted_io(void **state)
{
    (void)state;
    struct vnvme_bdev *dly = NULL;
    malloc_bdev("base");
    uint64_t lat[4] = {10000000, 10000000, 0, 0}; /* 10 s: only an abort ends it */
    assert_int_equal(vnvme_bdev_delay_create("dly", "base", lat, NULL, &dly), 0);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(dly);
    uint8_t buf[BS];
    struct iovec iov = {buf, BS};
    struct done d = {0};
    struct vnvme_bdev_io io;
    init_io(&io, VNVME_BDEV_READ, 0, 1, &iov, &d);
    assert_int_equal(vnvme_bdev_submit(ch, &io), 0);
    assert_int_equal(vnvme_bdev_abort(ch, &io), 0);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, -ECANCELED);
    struct vnvme_bdev_iostat s;
    vnvme_bdev_iostat(dly, &s);
    assert_int_equal(s.errors[VNVME_ERR_ABORTED], 1);
    assert_int_equal(s.ops[VNVME_STAT_READ], 0);
    assert_int_equal(s.queue_depth, 0);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("dly"), 0);
    assert_int_equal(vnvme_bdev_delete("base"), 0);
}

struct seen {
    unsigned n;
    uint64_t reads[4];
};

static void collect(unsigned id, const struct vnvme_bdev_iostat *s, void *arg)
{
    struct seen *seen = arg;
    (void)id;
    if (seen->n < 4)
        seen->reads[seen->n] = s->ops[VNVME_STAT_READ];
    seen->n++;
}

static void test_channels_reset_and_retired(void **state)
{
    (void)state;
    struct vnvme_bdev *b = malloc_bdev("m0");
    struct vnvme_bdev_channel *a = vnvme_bdev_channel_get(b), *c = vnvme_bdev_channel_get(b);
    uint8_t buf[BS] = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(run(a, VNVME_BDEV_READ, 0, 1, buf), 0);
    assert_int_equal(run(c, VNVME_BDEV_READ, 0, 1, buf), 0);
    struct seen seen = {0};
    assert_int_equal(vnvme_bdev_iostat_channels(b, collect, &seen), 2);
    assert_int_equal(seen.reads[0] + seen.reads[1], 4);
    assert_true(seen.reads[0] == 1 || seen.reads[1] == 1);

    /* A channel that goes leaves its counts in the totals. */
    vnvme_bdev_channel_put(a);
    struct vnvme_bdev_iostat s;
    vnvme_bdev_iostat(b, &s);
    assert_int_equal(s.ops[VNVME_STAT_READ], 4);
    seen = (struct seen){0};
    assert_int_equal(vnvme_bdev_iostat_channels(b, collect, &seen), 1);

    /* Reset: readers see zero at once; the channel starts over at its next completion. */
    vnvme_bdev_iostat_reset(b, false);
    vnvme_bdev_iostat(b, &s);
    assert_int_equal(s.ops[VNVME_STAT_READ], 0);
    assert_int_equal(s.min_latency_ticks[VNVME_STAT_READ], UINT64_MAX);
    assert_int_equal(run(c, VNVME_BDEV_READ, 0, 1, buf), 0);
    vnvme_bdev_iostat(b, &s);
    assert_int_equal(s.ops[VNVME_STAT_READ], 1);
    assert_int_equal(s.bytes[VNVME_STAT_READ], BS);
    vnvme_bdev_channel_put(c);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

/* SPDK's "maxmin" mode: the extremes start over, the sums go on. */
static void test_reset_maxmin_only(void **state)
{
    (void)state;
    struct vnvme_bdev *b = malloc_bdev("m0");
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b), *gone = vnvme_bdev_channel_get(b);
    uint8_t buf[BS] = {0};
    assert_int_equal(run(ch, VNVME_BDEV_READ, 0, 1, buf), 0);
    assert_int_equal(run(gone, VNVME_BDEV_READ, 0, 1, buf), 0);
    vnvme_bdev_channel_put(gone);
    vnvme_bdev_iostat_reset(b, true);
    struct vnvme_bdev_iostat s;
    vnvme_bdev_iostat(b, &s);
    assert_int_equal(s.ops[VNVME_STAT_READ], 2);
    assert_true(s.latency_ticks[VNVME_STAT_READ] > 0);
    assert_int_equal(s.max_latency_ticks[VNVME_STAT_READ], 0);
    assert_int_equal(s.min_latency_ticks[VNVME_STAT_READ], UINT64_MAX);
    assert_int_equal(run(ch, VNVME_BDEV_READ, 0, 1, buf), 0);
    vnvme_bdev_iostat(b, &s);
    assert_int_equal(s.ops[VNVME_STAT_READ], 3);
    assert_int_equal(s.max_latency_ticks[VNVME_STAT_READ], s.min_latency_ticks[VNVME_STAT_READ]); /* one I/O since */
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

/* SPDK's bucket layout: range 0 one value per bucket, then doubling ranges of 128 buckets. */
static void test_histogram_layout(void **state)
{
    (void)state;
    assert_int_equal(vnvme_bdev_hist_index(0), 0);
    assert_int_equal(vnvme_bdev_hist_index(127), 127);
    assert_int_equal(vnvme_bdev_hist_index(128), 128);       /* range 1 starts at 2^7, width 1 */
    assert_int_equal(vnvme_bdev_hist_index(255), 255);
    assert_int_equal(vnvme_bdev_hist_index(256), 256);       /* range 2 at 2^8, width 2 */
    assert_int_equal(vnvme_bdev_hist_index(257), 256);
    assert_int_equal(vnvme_bdev_hist_index(258), 257);
    assert_int_equal(vnvme_bdev_hist_index(UINT64_MAX), VNVME_BDEV_HIST_BUCKETS - 1);
    /* Each bucket starts where the one before ends, and a value lands in the bucket that holds it. */
    for (unsigned i = 1; i < VNVME_BDEV_HIST_BUCKETS; i++) {
        uint64_t start = vnvme_bdev_hist_bucket_start(i);
        assert_true(start > vnvme_bdev_hist_bucket_start(i - 1));
        assert_int_equal(vnvme_bdev_hist_index(start), i);
        assert_int_equal(vnvme_bdev_hist_index(start - 1), i - 1);
    }
}

static void test_histogram_tally(void **state)
{
    (void)state;
    struct vnvme_bdev *dly = NULL;
    malloc_bdev("base");
    uint64_t lat[4] = {2000, 2000, 0, 0}; /* 2 ms reads */
    assert_int_equal(vnvme_bdev_delay_create("dly", "base", lat, NULL, &dly), 0);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(dly);
    uint8_t buf[BS] = {0};
    uint64_t *h = calloc(VNVME_BDEV_HIST_BUCKETS, sizeof(uint64_t));
    assert_false(vnvme_bdev_histogram_enabled(dly));
    assert_int_equal(run(ch, VNVME_BDEV_READ, 0, 1, buf), 0);
    assert_int_equal(vnvme_bdev_histogram(dly, h), 0); /* off: nothing tallied */

    assert_int_equal(vnvme_bdev_histogram_enable(dly, true), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(run(ch, VNVME_BDEV_READ, 0, 1, buf), 0);
    assert_int_equal(run(ch, VNVME_BDEV_WRITE, 0, 1, buf), 0);
    assert_int_equal(vnvme_bdev_histogram(dly, h), 4);
    /*
     * The three reads waited 2 ms or more: nothing below 1 ms in the buckets
     * but, at most, the write's (which takes longer than that on a loaded
     * machine, so where it lands is not asserted).
     */
    uint64_t two_ms = vnvme_ticks_hz() / 500, below = 0;
    for (unsigned i = 0; i < VNVME_BDEV_HIST_BUCKETS; i++)
        if (vnvme_bdev_hist_bucket_start(i) + 1 < two_ms / 2)
            below += h[i];
    assert_true(below <= 1);

    /* A channel that goes leaves its counts; one made while enabled tallies too. */
    vnvme_bdev_channel_put(ch);
    ch = vnvme_bdev_channel_get(dly);
    assert_int_equal(run(ch, VNVME_BDEV_WRITE, 0, 1, buf), 0);
    assert_int_equal(vnvme_bdev_histogram(dly, h), 5);
    /* Off keeps what was counted and stops counting. */
    assert_int_equal(vnvme_bdev_histogram_enable(dly, false), 0);
    assert_int_equal(run(ch, VNVME_BDEV_WRITE, 0, 1, buf), 0);
    assert_int_equal(vnvme_bdev_histogram(dly, h), 5);
    free(h);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("dly"), 0);
    assert_int_equal(vnvme_bdev_delete("base"), 0);
}

static void test_disabled(void **state)
{
    (void)state;
    struct vnvme_bdev *b = malloc_bdev("m0");
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    uint8_t buf[BS] = {0};
    vnvme_bdev_stats_enable(false);
    assert_false(vnvme_bdev_stats_enabled());
    assert_int_equal(run(ch, VNVME_BDEV_READ, 0, 1, buf), 0);
    vnvme_bdev_stats_enable(true);
    struct vnvme_bdev_iostat s;
    vnvme_bdev_iostat(b, &s);
    assert_int_equal(s.ops[VNVME_STAT_READ], 0);
    assert_int_equal(run(ch, VNVME_BDEV_READ, 0, 1, buf), 0);
    vnvme_bdev_iostat(b, &s);
    assert_int_equal(s.ops[VNVME_STAT_READ], 1);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_by_op),
        cmocka_unit_test(test_refused_io_is_not_counted),
        cmocka_unit_test(test_two_levels_depth_and_busy_time),
        cmocka_unit_test(test_aborted_io),
        cmocka_unit_test(test_channels_reset_and_retired),
        cmocka_unit_test(test_reset_maxmin_only),
        cmocka_unit_test(test_histogram_layout),
        cmocka_unit_test(test_histogram_tally),
        cmocka_unit_test(test_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
