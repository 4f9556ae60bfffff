/* SPDX-License-Identifier: MIT */
/*
 * Rate limits of a bdev (SPDK's bdev_set_qos_limit): I/Os per second over
 * reads and writes, and MiB per second over both, reads alone or writes
 * alone. A limit holds across every channel (every controller and reactor)
 * that reaches the bdev: each limit is one shared schedule, a "theoretical
 * arrival time" that every admitted I/O pushes forward by its cost (the
 * generic cell rate algorithm), updated with a compare-and-swap and no lock.
 * An I/O whose turn has not come waits on its channel, in order, and goes
 * when the channel is polled at or after its turn; it can be recalled from
 * there at once (Abort, queue deletion, reset). Reads, writes and compares
 * count; flush, unmap and write zeroes pass freely.
 *
 * A set of limits is a struct vnvme_qos. Each bdev may have one; the owner of
 * a channel may add one more to it (vnvme_bdev_channel_set_qos: an NVMe
 * namespace's own limits, shared by every controller's channel to it), and
 * an I/O then waits for its turn on both.
 */
#ifndef VNVME_BDEV_QOS_H
#define VNVME_BDEV_QOS_H

#include <stdint.h>

#include "vnvme/bdev.h"

enum vnvme_qos_limit {
    VNVME_QOS_RW_IOPS,   /* rw_ios_per_sec */
    VNVME_QOS_RW_MBPS,   /* rw_mbytes_per_sec, MiB as SPDK counts them */
    VNVME_QOS_R_MBPS,    /* r_mbytes_per_sec */
    VNVME_QOS_W_MBPS,    /* w_mbytes_per_sec */
    VNVME_QOS_NR_LIMITS,
};
const char *vnvme_qos_limit_name(enum vnvme_qos_limit l); /* SPDK's parameter name */

struct vnvme_qos;
/* No limits yet; NULL when out of memory. */
struct vnvme_qos *vnvme_qos_create(void);
void vnvme_qos_destroy(struct vnvme_qos *q);
/* As vnvme_bdev_qos_set / _set_burst / _burst / _get below, for a set of limits of one's own. */
void vnvme_qos_set(struct vnvme_qos *q, const uint64_t limits[VNVME_QOS_NR_LIMITS]);
void vnvme_qos_set_burst(struct vnvme_qos *q, uint32_t burst_ms);
uint32_t vnvme_qos_burst(const struct vnvme_qos *q);
void vnvme_qos_get(const struct vnvme_qos *q, uint64_t limits[VNVME_QOS_NR_LIMITS]);
/*
 * The schedules an I/O of a channel waits on besides the bdev's: *extra (read
 * at each submission, so the owner may create its limits later; NULL: none).
 * The pointer must outlive the channel. Set before the channel's first I/O.
 */
/* {"rw_ios_per_sec": N, ... every limit, 0 for none, and "burst_ms" when set}: SPDK's assigned_rate_limits. */
struct json_object;
struct json_object *vnvme_qos_limits_json(const struct vnvme_qos *q);
struct vnvme_bdev_channel;
void vnvme_bdev_channel_set_qos(struct vnvme_bdev_channel *ch, struct vnvme_qos *const *extra);

/*
 * Set the limits (0: none; UINT64_MAX: leave as it is). Takes effect for the
 * next admitted I/O, and for what already waits once its channel books it
 * again (vnvme_qos_gen). -ENOMEM.
 */
int vnvme_bdev_qos_set(struct vnvme_bdev *b, const uint64_t limits[VNVME_QOS_NR_LIMITS]);
/*
 * Burst allowance (beyond SPDK, like QEMU's iops-total-max-length): after a
 * quiet spell an I/O may run up to burst_ms ahead of the schedule, so a burst
 * of burst_ms worth of each limit goes at full speed before the limit bites
 * (a VM's boot is not throttled like its steady state). 0: the default, 1 ms.
 */
void vnvme_bdev_qos_set_burst(struct vnvme_bdev *b, uint32_t burst_ms);
uint32_t vnvme_bdev_qos_burst(struct vnvme_bdev *b); /* 0 when never set */
/* The limits in force (all 0: none). */
void vnvme_bdev_qos_get(struct vnvme_bdev *b, uint64_t limits[VNVME_QOS_NR_LIMITS]);

/* For bdev.c: a channel's waiting I/Os. */
struct vnvme_qos_queue {
    struct vnvme_bdev_io *head, *tail;
    uint32_t n;
};
/*
 * Admit io (of a bdev with block_size) on the schedules of a and b (either may
 * be NULL) or queue it: 0 when it may be submitted now, 1 when it was queued
 * on q (its turn comes later, or others wait before it).
 */
int vnvme_qos_admit(struct vnvme_qos *a, struct vnvme_qos *b, uint32_t block_size, struct vnvme_qos_queue *q,
                    struct vnvme_bdev_io *io);
/* The same at a given time (ticks), for callers that have the clock already and for tests of odd clocks. */
int vnvme_qos_admit_at(struct vnvme_qos *a, struct vnvme_qos *b, uint32_t block_size, struct vnvme_qos_queue *q,
                       struct vnvme_bdev_io *io, uint64_t now);
/*
 * Bumped by every vnvme_qos_set (0 for NULL). A change drops what was booked
 * at the old rates: whoever holds I/Os waiting under q books them again, in
 * order, at the new ones (bdev.c does at its channel's next poll), so a limit
 * raised or lifted speeds up what already waits, and one lowered slows it.
 */
uint32_t vnvme_qos_gen(const struct vnvme_qos *q);
/* The first queued I/O whose turn has come, taken off q, or NULL. */
struct vnvme_bdev_io *vnvme_bdev_qos_next_due(struct vnvme_qos_queue *q);
struct vnvme_bdev_io *vnvme_bdev_qos_next_due_at(struct vnvme_qos_queue *q, uint64_t now);
/* Take io off q: 0, or -ENOENT when it is not there. */
int vnvme_bdev_qos_remove(struct vnvme_qos_queue *q, struct vnvme_bdev_io *io);
void vnvme_bdev_qos_destroy(struct vnvme_bdev *b);

#endif
