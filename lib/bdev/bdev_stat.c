/* SPDX-License-Identifier: MIT */
/*
 * bdev I/O statistics (see vnvme/bdev_stat.h). Each channel's counters have
 * one writer, the channel's thread; readers load them with relaxed atomics
 * (plain moves on x86-64) and may see one I/O's fields half-updated, which
 * statistics can afford. The mutex guards only the list of channels and the
 * totals of channels gone: it is taken when a channel comes or goes and when
 * someone reads, never per I/O.
 */
#include "vnvme/bdev_stat.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

struct vnvme_bdev_chan_stat {
    struct vnvme_bdev_iostat s;
    uint64_t gen;            /* the bdev's reset generation these counters belong to */
    uint64_t last_change_ns; /* when queue_depth last changed */
    uint32_t block_size;
    unsigned id;
    struct vnvme_bdev_stats *owner;
    struct vnvme_bdev_chan_stat *next;
};

struct vnvme_bdev_stats {
    pthread_mutex_t lock;
    uint64_t reset_gen;                 /* written under lock, read by channels without it */
    struct vnvme_bdev_iostat retired;   /* channels gone since the last reset */
    struct vnvme_bdev_chan_stat *chans; /* live channels */
    unsigned next_id;
};

static bool stats_on = true;

void vnvme_bdev_stats_enable(bool on)
{
    STORE(stats_on, on);
}

bool vnvme_bdev_stats_enabled(void)
{
    return LOAD(stats_on);
}

uint64_t vnvme_bdev_stat_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *vnvme_bdev_err_kind_name(enum vnvme_bdev_err_kind k)
{
    static const char *const names[VNVME_BDEV_NR_ERR_KINDS] = {
        [VNVME_ERR_FAILED] = "failed",   [VNVME_ERR_MISCOMPARE] = "miscompare", [VNVME_ERR_ABORTED] = "aborted",
        [VNVME_ERR_TIMEOUT] = "timeout", [VNVME_ERR_NOMEM] = "nomem",           [VNVME_ERR_INVALID] = "invalid",
    };
    return k < VNVME_BDEV_NR_ERR_KINDS ? names[k] : "unknown";
}

static void zero(struct vnvme_bdev_iostat *s)
{
    memset(s, 0, sizeof(*s));
    for (int k = 0; k < VNVME_STAT_NR_KINDS; k++)
        s->min_latency_ns[k] = UINT64_MAX;
}

int vnvme_bdev_stats_create(struct vnvme_bdev *b)
{
    struct vnvme_bdev_stats *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    pthread_mutex_init(&st->lock, NULL);
    zero(&st->retired);
    b->stats = st;
    return 0;
}

void vnvme_bdev_stats_destroy(struct vnvme_bdev *b)
{
    struct vnvme_bdev_stats *st = b->stats;
    if (!st)
        return;
    /* Channels outlive nothing: a bdev goes only once unclaimed, its channels put. */
    pthread_mutex_destroy(&st->lock);
    free(st);
    b->stats = NULL;
}

struct vnvme_bdev_chan_stat *vnvme_bdev_chan_stat_add(struct vnvme_bdev *b)
{
    struct vnvme_bdev_stats *st = b->stats;
    if (!st)
        return NULL;
    struct vnvme_bdev_chan_stat *cs = calloc(1, sizeof(*cs));
    if (!cs)
        return NULL;
    zero(&cs->s);
    cs->owner = st;
    cs->block_size = b->block_size;
    cs->last_change_ns = vnvme_bdev_stat_now_ns();
    pthread_mutex_lock(&st->lock);
    cs->gen = st->reset_gen;
    cs->id = st->next_id++;
    cs->next = st->chans;
    st->chans = cs;
    pthread_mutex_unlock(&st->lock);
    return cs;
}

/* dst += src, for sums; max and min merge. */
static void add(struct vnvme_bdev_iostat *dst, const struct vnvme_bdev_iostat *src)
{
    for (int k = 0; k < VNVME_STAT_NR_KINDS; k++) {
        dst->bytes[k] += LOAD(src->bytes[k]);
        dst->ops[k] += LOAD(src->ops[k]);
        dst->latency_ns[k] += LOAD(src->latency_ns[k]);
        uint64_t mx = LOAD(src->max_latency_ns[k]), mn = LOAD(src->min_latency_ns[k]);
        if (mx > dst->max_latency_ns[k])
            dst->max_latency_ns[k] = mx;
        if (mn < dst->min_latency_ns[k])
            dst->min_latency_ns[k] = mn;
    }
    for (int e = 0; e < VNVME_BDEV_NR_ERR_KINDS; e++)
        dst->errors[e] += LOAD(src->errors[e]);
    dst->other_ops += LOAD(src->other_ops);
    dst->io_time_ns += LOAD(src->io_time_ns);
    dst->weighted_io_time_ns += LOAD(src->weighted_io_time_ns);
}

void vnvme_bdev_chan_stat_remove(struct vnvme_bdev *b, struct vnvme_bdev_chan_stat *cs)
{
    struct vnvme_bdev_stats *st = b->stats;
    if (!st || !cs)
        return;
    pthread_mutex_lock(&st->lock);
    for (struct vnvme_bdev_chan_stat **pp = &st->chans; *pp; pp = &(*pp)->next) {
        if (*pp == cs) {
            *pp = cs->next;
            break;
        }
    }
    if (cs->gen == st->reset_gen)
        add(&st->retired, &cs->s);
    pthread_mutex_unlock(&st->lock);
    free(cs);
}

/* The channel's own thread: counters of an older generation start again from zero. */
static void catch_up(struct vnvme_bdev_chan_stat *cs)
{
    uint64_t gen = LOAD(cs->owner->reset_gen);
    if (cs->gen == gen)
        return;
    struct vnvme_bdev_iostat fresh;
    zero(&fresh);
    fresh.queue_depth = cs->s.queue_depth;
    /* Field by field, so that a reader never sees a torn 64-bit value. */
    for (size_t i = 0; i < sizeof(fresh) / sizeof(uint64_t); i++)
        STORE(((uint64_t *)&cs->s)[i], ((const uint64_t *)&fresh)[i]);
    STORE(cs->gen, gen);
}

/* Time with I/O outstanding, and outstanding I/O integrated over time, up to now. */
static void depth_change(struct vnvme_bdev_chan_stat *cs, uint64_t now, int delta)
{
    uint64_t depth = cs->s.queue_depth;
    uint64_t dt = now > cs->last_change_ns ? now - cs->last_change_ns : 0;
    if (depth) {
        STORE(cs->s.io_time_ns, cs->s.io_time_ns + dt);
        STORE(cs->s.weighted_io_time_ns, cs->s.weighted_io_time_ns + depth * dt);
    }
    cs->last_change_ns = now;
    STORE(cs->s.queue_depth, depth + (uint64_t)(int64_t)delta);
}

static enum vnvme_bdev_err_kind err_kind(int status)
{
    switch (status) {
    case -EILSEQ:
        return VNVME_ERR_MISCOMPARE;
    case -ECANCELED:
        return VNVME_ERR_ABORTED;
    case -ETIMEDOUT:
        return VNVME_ERR_TIMEOUT;
    case -ENOMEM:
    case -EAGAIN:
        return VNVME_ERR_NOMEM;
    case -EINVAL:
    case -ERANGE:
    case -ENOSPC:
        return VNVME_ERR_INVALID;
    default:
        return VNVME_ERR_FAILED;
    }
}

static int kind_of(enum vnvme_bdev_op op)
{
    switch (op) {
    case VNVME_BDEV_READ:
    case VNVME_BDEV_COMPARE:
        return VNVME_STAT_READ;
    case VNVME_BDEV_WRITE:
        return VNVME_STAT_WRITE;
    case VNVME_BDEV_UNMAP:
        return VNVME_STAT_UNMAP;
    default:
        return -1;
    }
}

static void account(struct vnvme_bdev_chan_stat *cs, const struct vnvme_bdev_io *io, int status, uint64_t lat)
{
    struct vnvme_bdev_iostat *s = &cs->s;
    if (status != 0) {
        enum vnvme_bdev_err_kind e = err_kind(status);
        STORE(s->errors[e], s->errors[e] + 1);
        return;
    }
    int k = kind_of(io->op);
    if (k < 0) {
        STORE(s->other_ops, s->other_ops + 1);
        return;
    }
    STORE(s->bytes[k], s->bytes[k] + io->num_blocks * cs->block_size);
    STORE(s->ops[k], s->ops[k] + 1);
    STORE(s->latency_ns[k], s->latency_ns[k] + lat);
    if (lat > s->max_latency_ns[k])
        STORE(s->max_latency_ns[k], lat);
    if (lat < s->min_latency_ns[k])
        STORE(s->min_latency_ns[k], lat);
}

static void stat_done(struct vnvme_bdev_io *io, int status)
{
    struct vnvme_bdev_io_stat_level *l = &io->stat_level[--io->stat_depth];
    struct vnvme_bdev_chan_stat *cs = l->cs;
    uint64_t now = vnvme_bdev_stat_now_ns();
    catch_up(cs);
    depth_change(cs, now, -1);
    account(cs, io, status, now - l->start_ns);
    io->cb = l->cb;
    io->cb_arg = l->cb_arg;
    io->cb(io, status);
}

bool vnvme_bdev_stat_begin(struct vnvme_bdev_chan_stat *cs, struct vnvme_bdev_io *io)
{
    /* A third bdev level in one I/O (delay over delay over a base) is counted by the outer two. */
    if (!cs || io->stat_depth >= sizeof(io->stat_level) / sizeof(io->stat_level[0]))
        return false;
    struct vnvme_bdev_io_stat_level *l = &io->stat_level[io->stat_depth++];
    uint64_t now = vnvme_bdev_stat_now_ns();
    catch_up(cs);
    depth_change(cs, now, +1);
    l->cb = io->cb;
    l->cb_arg = io->cb_arg;
    l->cs = cs;
    l->start_ns = now;
    io->cb = stat_done;
    return true;
}

void vnvme_bdev_stat_cancel(struct vnvme_bdev_io *io)
{
    struct vnvme_bdev_io_stat_level *l = &io->stat_level[--io->stat_depth];
    depth_change(l->cs, vnvme_bdev_stat_now_ns(), -1);
    io->cb = l->cb;
    io->cb_arg = l->cb_arg;
}

/* ---- readers ---- */

/* A channel still on an older generation has counted nothing since the reset. */
static bool current(const struct vnvme_bdev_stats *st, const struct vnvme_bdev_chan_stat *cs)
{
    return LOAD(cs->gen) == st->reset_gen;
}

void vnvme_bdev_iostat(struct vnvme_bdev *b, struct vnvme_bdev_iostat *out)
{
    struct vnvme_bdev_stats *st = b->stats;
    zero(out);
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    add(out, &st->retired);
    for (struct vnvme_bdev_chan_stat *cs = st->chans; cs; cs = cs->next) {
        out->queue_depth += LOAD(cs->s.queue_depth);
        if (current(st, cs))
            add(out, &cs->s);
    }
    pthread_mutex_unlock(&st->lock);
}

unsigned vnvme_bdev_iostat_channels(struct vnvme_bdev *b,
                                    void (*fn)(unsigned id, const struct vnvme_bdev_iostat *s, void *arg), void *arg)
{
    struct vnvme_bdev_stats *st = b->stats;
    unsigned n = 0;
    if (!st)
        return 0;
    pthread_mutex_lock(&st->lock);
    for (struct vnvme_bdev_chan_stat *cs = st->chans; cs; cs = cs->next, n++) {
        struct vnvme_bdev_iostat one;
        zero(&one);
        one.queue_depth = LOAD(cs->s.queue_depth);
        if (current(st, cs))
            add(&one, &cs->s);
        fn(cs->id, &one, arg);
    }
    pthread_mutex_unlock(&st->lock);
    return n;
}

void vnvme_bdev_iostat_reset(struct vnvme_bdev *b)
{
    struct vnvme_bdev_stats *st = b->stats;
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    zero(&st->retired);
    STORE(st->reset_gen, st->reset_gen + 1);
    pthread_mutex_unlock(&st->lock);
}
