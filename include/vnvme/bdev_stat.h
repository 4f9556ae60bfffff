/* SPDX-License-Identifier: MIT */
/*
 * I/O statistics of bdevs, with the fields of SPDK's bdev_get_iostat.
 *
 * Counting costs no lock, syscall or allocation per I/O: each channel (one
 * per submitting thread) has its own counters, written only by that thread,
 * and a reader sums them on request. Two reads of the TSC per I/O give the
 * latencies and the time with I/O outstanding, in ticks of
 * vnvme_bdev_stat_tick_rate() per second, as SPDK reports them. A reset is a generation number
 * the channels compare at their next completion, so that no thread ever
 * writes another thread's counters.
 */
#ifndef VNVME_BDEV_STAT_H
#define VNVME_BDEV_STAT_H

#include <stdbool.h>
#include <stdint.h>

#include "vnvme/bdev.h"

enum vnvme_bdev_stat_kind {
    VNVME_STAT_READ,  /* READ and COMPARE */
    VNVME_STAT_WRITE, /* WRITE */
    VNVME_STAT_UNMAP, /* UNMAP (deallocate) */
    VNVME_STAT_NR_KINDS,
};

/* Failed I/O by cause, SPDK's io_error: keyed by these names in bdev_get_iostat. */
enum vnvme_bdev_err_kind {
    VNVME_ERR_FAILED,     /* -EIO and anything unlisted */
    VNVME_ERR_MISCOMPARE, /* -EILSEQ */
    VNVME_ERR_ABORTED,    /* -ECANCELED: recalled (Abort, queue deletion, reset) */
    VNVME_ERR_TIMEOUT,    /* -ETIMEDOUT */
    VNVME_ERR_NOMEM,      /* -ENOMEM, -EAGAIN */
    VNVME_ERR_INVALID,    /* -EINVAL, -ERANGE, -ENOSPC */
    VNVME_BDEV_NR_ERR_KINDS,
};
const char *vnvme_bdev_err_kind_name(enum vnvme_bdev_err_kind k);

struct vnvme_bdev_iostat {
    uint64_t bytes[VNVME_STAT_NR_KINDS];
    uint64_t ops[VNVME_STAT_NR_KINDS];
    uint64_t latency_ticks[VNVME_STAT_NR_KINDS]; /* sum over ops */
    uint64_t max_latency_ticks[VNVME_STAT_NR_KINDS];
    uint64_t min_latency_ticks[VNVME_STAT_NR_KINDS]; /* UINT64_MAX while ops is 0 */
    uint64_t errors[VNVME_BDEV_NR_ERR_KINDS];
    uint64_t other_ops;          /* FLUSH, WRITE_ZEROES */
    uint64_t io_time_ticks;          /* time with at least one I/O outstanding */
    uint64_t weighted_io_time_ticks; /* outstanding I/Os integrated over time: every completed I/O's latency */
    uint64_t queue_depth;        /* outstanding now (not reset) */
};

/* Counting on or off for every bdev (on by default); off, a submission costs one load and a branch. */
void vnvme_bdev_stats_enable(bool on);
bool vnvme_bdev_stats_enabled(void);

/* Totals over every channel the bdev has had since its creation or last reset. */
void vnvme_bdev_iostat(struct vnvme_bdev *b, struct vnvme_bdev_iostat *out);
/* Each live channel's counters: fn(channel number, its counters, arg). Returns how many. */
unsigned vnvme_bdev_iostat_channels(struct vnvme_bdev *b,
                                    void (*fn)(unsigned id, const struct vnvme_bdev_iostat *s, void *arg),
                                    void *arg);
/*
 * Start the counters again from zero (queue depth excepted), or with
 * maxmin_only the max and min latencies alone (SPDK's modes "all" and
 * "maxmin"): at once for readers, at their next I/O for channels.
 */
void vnvme_bdev_iostat_reset(struct vnvme_bdev *b, bool maxmin_only);
/* The clock of every _ticks figure above (common/ticks.h: the TSC on x86), and its rate. */
uint64_t vnvme_bdev_stat_ticks(void);
uint64_t vnvme_bdev_stat_tick_rate(void);

/*
 * Latency histograms (bdev_enable_histogram / bdev_get_histogram), in SPDK's
 * layout so its tools read them: 65 - SHIFT ranges of 2^SHIFT buckets of
 * ticks. Range 0 holds values 0 .. 2^SHIFT - 1 one per bucket; range r >= 1
 * holds [2^(r+SHIFT-1), 2^(r+SHIFT)) in buckets 2^(r-1) wide, the last one
 * ending at 2^64. Every I/O's
 * latency is tallied (all ops, failed ones too) on its channel while enabled.
 */
#define VNVME_BDEV_HIST_SHIFT 7u
#define VNVME_BDEV_HIST_RANGES (65u - VNVME_BDEV_HIST_SHIFT)
#define VNVME_BDEV_HIST_BUCKETS (VNVME_BDEV_HIST_RANGES << VNVME_BDEV_HIST_SHIFT)
/* The bucket a value falls in, and the smallest value of a bucket. */
unsigned vnvme_bdev_hist_index(uint64_t ticks);
uint64_t vnvme_bdev_hist_bucket_start(unsigned index);
/*
 * Turn tallying on (buffers for every channel, 58 KiB each, made now and not
 * on the I/O path: -ENOMEM when they cannot be) or off (counts kept, and
 * continued when turned on again).
 */
int vnvme_bdev_histogram_enable(struct vnvme_bdev *b, bool on);
bool vnvme_bdev_histogram_enabled(struct vnvme_bdev *b);
/* Every channel's buckets summed into out[VNVME_BDEV_HIST_BUCKETS]; returns the number of values. */
uint64_t vnvme_bdev_histogram(struct vnvme_bdev *b, uint64_t *out);

/* For bdev.c. */
int vnvme_bdev_stats_create(struct vnvme_bdev *b);
void vnvme_bdev_stats_destroy(struct vnvme_bdev *b);
/* A new channel's counters (NULL when out of memory: the channel then counts nothing). */
struct vnvme_bdev_chan_stat *vnvme_bdev_chan_stat_add(struct vnvme_bdev *b);
/* Fold the channel's counters into the bdev's totals and forget it. */
void vnvme_bdev_chan_stat_remove(struct vnvme_bdev *b, struct vnvme_bdev_chan_stat *cs);
/*
 * Around ops->submit: begin counts the I/O as outstanding and routes its
 * completion through the counters (false: it could not, the I/O goes
 * uncounted); cancel undoes a begin that returned true when submit refused
 * the I/O (the callback will never come).
 */
bool vnvme_bdev_stat_begin(struct vnvme_bdev_chan_stat *cs, struct vnvme_bdev_io *io);
void vnvme_bdev_stat_cancel(struct vnvme_bdev_io *io);

#endif
