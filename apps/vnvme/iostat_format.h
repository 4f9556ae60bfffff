/* SPDX-License-Identifier: MIT */
/*
 * `vnvme iostat`'s figures from two bdev_get_iostat results: rates over the
 * interval between them, computed and printed without a daemon, so the exact
 * output is tested on any machine.
 */
#ifndef VNVME_CLI_IOSTAT_FORMAT_H
#define VNVME_CLI_IOSTAT_FORMAT_H

#include <stdint.h>
#include <stdio.h>

struct json_object;

/* One bdev's rates over an interval. */
struct iostat_rates {
    double read_iops, write_iops, unmap_iops;
    double read_mib_s, write_mib_s;
    double avg_read_us, avg_write_us; /* mean latency of the interval's I/O; 0 when none */
    uint64_t queue_depth;             /* at the end of the interval */
    double p99_us;                    /* from the latency histograms; < 0 when there are none */
};

/*
 * The rates of bdev `name` between two results of bdev_get_iostat (SPDK's
 * shape: tick_rate, ticks, bdevs[]). Returns -1 when the bdev is missing from
 * either or the results do not span any time; a bdev whose counters went down
 * (reset) counts from zero.
 */
int iostat_rates(const struct json_object *prev, const struct json_object *cur, const char *name,
                 struct iostat_rates *out);

/*
 * The 99th percentile of the latencies tallied between two bdev_get_histogram
 * results of one bdev (SPDK's shape: base64 "histogram" of little-endian
 * counts, "bucket_shift", "tsc_rate"), in microseconds: the upper edge of the
 * bucket it falls in. -1 when either result is unusable or nothing was tallied.
 */
double iostat_p99_us(const struct json_object *prev_hist, const struct json_object *cur_hist);

/* The header line, and one line of a bdev's rates. */
void iostat_print_header(FILE *out);
void iostat_print_row(FILE *out, const char *name, const struct iostat_rates *r);

#endif
