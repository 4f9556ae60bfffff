/* SPDX-License-Identifier: MIT */
/* bdev rate limits (see vnvme/bdev_qos.h). */
#include "vnvme/bdev_qos.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/ticks.h"

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* How far ahead of its schedule an I/O may start by default: smooths the release over a reactor's sleep. */
#define TOLERANCE_US 1000u

struct vnvme_qos {
    uint64_t limit[VNVME_QOS_NR_LIMITS];            /* per second; 0 = none */
    uint64_t ticks_per_unit_q16[VNVME_QOS_NR_LIMITS]; /* schedule cost of one I/O or byte, ticks << 16 */
    uint64_t tat[VNVME_QOS_NR_LIMITS];              /* theoretical arrival time, ticks */
    uint64_t tolerance;                             /* ticks: the burst allowance */
    uint32_t burst_ms;                              /* as set; 0 = default */
    bool active;                                    /* any limit */
    uint32_t gen;                                   /* bumped by every change of the limits */
};

#define TURN(io) ((io)->qos_turn)

const char *vnvme_qos_limit_name(enum vnvme_qos_limit l)
{
    static const char *const names[VNVME_QOS_NR_LIMITS] = {"rw_ios_per_sec", "rw_mbytes_per_sec",
                                                           "r_mbytes_per_sec", "w_mbytes_per_sec"};
    return l < VNVME_QOS_NR_LIMITS ? names[l] : "?";
}

struct vnvme_qos *vnvme_qos_create(void)
{
    struct vnvme_qos *q = calloc(1, sizeof(*q));
    if (q)
        q->tolerance = (uint64_t)(((unsigned __int128)vnvme_ticks_hz() * TOLERANCE_US) / 1000000u);
    return q;
}

void vnvme_qos_destroy(struct vnvme_qos *q)
{
    free(q);
}

void vnvme_qos_set(struct vnvme_qos *q, const uint64_t limits[VNVME_QOS_NR_LIMITS])
{
    uint64_t hz = vnvme_ticks_hz();
    bool any = false;
    for (int l = 0; l < VNVME_QOS_NR_LIMITS; l++) {
        if (limits[l] != UINT64_MAX) {
            /* Per unit: an I/O for the IOPS limit, a byte for the MiB/s ones. */
            uint64_t per_sec = l == VNVME_QOS_RW_IOPS ? limits[l] : limits[l] << 20;
            STORE(q->ticks_per_unit_q16[l],
                  per_sec ? (uint64_t)(((unsigned __int128)hz << 16) / per_sec) : 0);
            STORE(q->limit[l], limits[l]);
        }
        any |= LOAD(q->limit[l]) != 0;
        /* What was booked at the old rates no longer counts: the waiting I/Os book again (vnvme_qos_gen). */
        STORE(q->tat[l], 0);
    }
    STORE(q->active, any);
    __atomic_store_n(&q->gen, LOAD(q->gen) + 1, __ATOMIC_RELEASE);
}

uint32_t vnvme_qos_gen(const struct vnvme_qos *q)
{
    return q ? __atomic_load_n(&q->gen, __ATOMIC_ACQUIRE) : 0;
}

void vnvme_qos_set_burst(struct vnvme_qos *q, uint32_t burst_ms)
{
    uint64_t us = burst_ms ? (uint64_t)burst_ms * 1000u : TOLERANCE_US;
    STORE(q->tolerance, (uint64_t)(((unsigned __int128)vnvme_ticks_hz() * us) / 1000000u));
    STORE(q->burst_ms, burst_ms);
}

uint32_t vnvme_qos_burst(const struct vnvme_qos *q)
{
    return q ? LOAD(q->burst_ms) : 0;
}

void vnvme_qos_get(const struct vnvme_qos *q, uint64_t limits[VNVME_QOS_NR_LIMITS])
{
    for (int l = 0; l < VNVME_QOS_NR_LIMITS; l++)
        limits[l] = q ? LOAD(q->limit[l]) : 0;
}

struct json_object *vnvme_qos_limits_json(const struct vnvme_qos *q)
{
    uint64_t limits[VNVME_QOS_NR_LIMITS];
    vnvme_qos_get(q, limits);
    struct json_object *rl = json_object_new_object();
    for (int l = 0; l < VNVME_QOS_NR_LIMITS; l++)
        json_object_object_add(rl, vnvme_qos_limit_name((enum vnvme_qos_limit)l), json_object_new_uint64(limits[l]));
    if (vnvme_qos_burst(q))
        json_object_object_add(rl, "burst_ms", json_object_new_uint64(vnvme_qos_burst(q)));
    return rl;
}

int vnvme_bdev_qos_set(struct vnvme_bdev *b, const uint64_t limits[VNVME_QOS_NR_LIMITS])
{
    struct vnvme_qos *q = b->qos;
    if (!q) {
        q = vnvme_qos_create();
        if (!q)
            return -ENOMEM;
        __atomic_store_n(&b->qos, q, __ATOMIC_RELEASE);
    }
    vnvme_qos_set(q, limits);
    return 0;
}

void vnvme_bdev_qos_set_burst(struct vnvme_bdev *b, uint32_t burst_ms)
{
    struct vnvme_qos *q = __atomic_load_n(&b->qos, __ATOMIC_ACQUIRE);
    if (q)
        vnvme_qos_set_burst(q, burst_ms);
}

uint32_t vnvme_bdev_qos_burst(struct vnvme_bdev *b)
{
    return vnvme_qos_burst(__atomic_load_n(&b->qos, __ATOMIC_ACQUIRE));
}

void vnvme_bdev_qos_get(struct vnvme_bdev *b, uint64_t limits[VNVME_QOS_NR_LIMITS])
{
    vnvme_qos_get(__atomic_load_n(&b->qos, __ATOMIC_ACQUIRE), limits);
}

void vnvme_bdev_qos_destroy(struct vnvme_bdev *b)
{
    vnvme_qos_destroy(b->qos);
    b->qos = NULL;
}

/* Reserve the I/O's place on one schedule; returns when it may start. */
static uint64_t reserve(struct vnvme_qos *q, int l, uint64_t units, uint64_t now)
{
    uint64_t per = LOAD(q->ticks_per_unit_q16[l]);
    if (!per)
        return 0;
    uint64_t cost = (uint64_t)(((unsigned __int128)per * units) >> 16);
    uint64_t old = LOAD(q->tat[l]), start;
    do {
        start = old > now ? old : now;
    } while (!__atomic_compare_exchange_n(&q->tat[l], &old, start + cost, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    uint64_t tol = LOAD(q->tolerance);
    return start > tol ? start - tol : 0;
}

static void enqueue(struct vnvme_qos_queue *qq, struct vnvme_bdev_io *io)
{
    io->next = NULL;
    if (qq->tail)
        qq->tail->next = io;
    else
        qq->head = io;
    qq->tail = io;
    qq->n++;
}

/* An I/O with no turn of its own still waits behind those queued before it: order is kept. */
static int behind_others(struct vnvme_qos_queue *qq, struct vnvme_bdev_io *io)
{
    if (qq->n == 0)
        return 0;
    TURN(io) = 0;
    enqueue(qq, io);
    return 1;
}

/* The latest turn io's limits in q give it (reserving its place on each schedule), or 0. */
static uint64_t turn_on(struct vnvme_qos *q, bool read, uint64_t bytes, uint64_t now)
{
    uint64_t turn = 0, t;
    t = reserve(q, VNVME_QOS_RW_IOPS, 1, now);
    turn = t > turn ? t : turn;
    t = reserve(q, VNVME_QOS_RW_MBPS, bytes, now);
    turn = t > turn ? t : turn;
    t = reserve(q, read ? VNVME_QOS_R_MBPS : VNVME_QOS_W_MBPS, bytes, now);
    return t > turn ? t : turn;
}

int vnvme_qos_admit(struct vnvme_qos *a, struct vnvme_qos *b, uint32_t block_size, struct vnvme_qos_queue *qq,
                    struct vnvme_bdev_io *io)
{
    return vnvme_qos_admit_at(a, b, block_size, qq, io, vnvme_ticks());
}

int vnvme_qos_admit_at(struct vnvme_qos *a, struct vnvme_qos *b, uint32_t block_size, struct vnvme_qos_queue *qq,
                       struct vnvme_bdev_io *io, uint64_t now)
{
    if (a && !LOAD(a->active))
        a = NULL;
    if (b && !LOAD(b->active))
        b = NULL;
    if (!a && !b)
        return behind_others(qq, io); /* no limits (or lifted): the queue drains in order */
    bool read = io->op == VNVME_BDEV_READ || io->op == VNVME_BDEV_COMPARE;
    if (!read && io->op != VNVME_BDEV_WRITE)
        return behind_others(qq, io);
    uint64_t bytes = io->num_blocks * block_size, turn = 0, t;
    if (a)
        turn = turn_on(a, read, bytes, now);
    if (b && (t = turn_on(b, read, bytes, now)) > turn)
        turn = t;
    if (turn <= now && qq->n == 0)
        return 0;
    TURN(io) = turn;
    enqueue(qq, io);
    return 1;
}

struct vnvme_bdev_io *vnvme_bdev_qos_next_due(struct vnvme_qos_queue *qq)
{
    return vnvme_bdev_qos_next_due_at(qq, vnvme_ticks());
}

struct vnvme_bdev_io *vnvme_bdev_qos_next_due_at(struct vnvme_qos_queue *qq, uint64_t now)
{
    struct vnvme_bdev_io *io = qq->head;
    if (!io || (TURN(io) && TURN(io) > now))
        return NULL;
    qq->head = io->next;
    if (!qq->head)
        qq->tail = NULL;
    qq->n--;
    io->next = NULL;
    return io;
}

int vnvme_bdev_qos_remove(struct vnvme_qos_queue *qq, struct vnvme_bdev_io *io)
{
    struct vnvme_bdev_io *prev = NULL;
    for (struct vnvme_bdev_io *cur = qq->head; cur; prev = cur, cur = cur->next) {
        if (cur != io)
            continue;
        if (prev)
            prev->next = cur->next;
        else
            qq->head = cur->next;
        if (qq->tail == cur)
            qq->tail = prev;
        qq->n--;
        cur->next = NULL;
        return 0;
    }
    return -ENOENT;
}
