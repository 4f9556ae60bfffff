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

#include "common/ticks.h"

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

struct vnvme_bdev_chan_stat {
    struct vnvme_bdev_iostat s;
    uint64_t gen;            /* the bdev's reset generation these counters belong to */
    uint64_t maxmin_gen;     /* the same for the max and min latencies alone */
    uint64_t busy_since_ticks; /* when queue_depth last went from 0 to 1 */
    uint32_t block_size;
    unsigned id;
    uint64_t *hist; /* VNVME_BDEV_HIST_BUCKETS counts, published by the enabling thread, or NULL */
    struct vnvme_bdev_stats *owner;
    struct vnvme_bdev_chan_stat *next;
};

struct vnvme_bdev_stats {
    pthread_mutex_t lock;
    uint64_t reset_gen;                 /* written under lock, read by channels without it */
    uint64_t maxmin_gen;                /* as reset_gen, for a reset of max and min only */
    struct vnvme_bdev_iostat retired;   /* channels gone since the last reset */
    struct vnvme_bdev_chan_stat *chans; /* live channels */
    unsigned next_id;
    bool hist_on;                       /* read by channels without the lock */
    uint64_t *retired_hist;             /* channels gone, or NULL */
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

uint64_t vnvme_bdev_stat_ticks(void)
{
    return vnvme_ticks();
}

uint64_t vnvme_bdev_stat_tick_rate(void)
{
    return vnvme_ticks_hz();
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
        s->min_latency_ticks[k] = UINT64_MAX;
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
    free(st->retired_hist);
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
    pthread_mutex_lock(&st->lock);
    if (st->hist_on)
        cs->hist = calloc(VNVME_BDEV_HIST_BUCKETS, sizeof(uint64_t)); /* NULL: this channel tallies nothing */
    cs->gen = st->reset_gen;
    cs->maxmin_gen = st->maxmin_gen;
    cs->id = st->next_id++;
    cs->next = st->chans;
    st->chans = cs;
    pthread_mutex_unlock(&st->lock);
    return cs;
}

static void forget_maxmin(struct vnvme_bdev_iostat *s)
{
    for (int k = 0; k < VNVME_STAT_NR_KINDS; k++) {
        STORE(s->max_latency_ticks[k], 0);
        STORE(s->min_latency_ticks[k], UINT64_MAX);
    }
}

/* dst += src, for sums; max and min merge. */
static void add(struct vnvme_bdev_iostat *dst, const struct vnvme_bdev_iostat *src)
{
    for (int k = 0; k < VNVME_STAT_NR_KINDS; k++) {
        dst->bytes[k] += LOAD(src->bytes[k]);
        dst->ops[k] += LOAD(src->ops[k]);
        dst->latency_ticks[k] += LOAD(src->latency_ticks[k]);
        uint64_t mx = LOAD(src->max_latency_ticks[k]), mn = LOAD(src->min_latency_ticks[k]);
        if (mx > dst->max_latency_ticks[k])
            dst->max_latency_ticks[k] = mx;
        if (mn < dst->min_latency_ticks[k])
            dst->min_latency_ticks[k] = mn;
    }
    for (int e = 0; e < VNVME_BDEV_NR_ERR_KINDS; e++)
        dst->errors[e] += LOAD(src->errors[e]);
    dst->other_ops += LOAD(src->other_ops);
    dst->io_time_ticks += LOAD(src->io_time_ticks);
    dst->weighted_io_time_ticks += LOAD(src->weighted_io_time_ticks);
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
    if (cs->gen == st->reset_gen) {
        if (cs->maxmin_gen != st->maxmin_gen)
            forget_maxmin(&cs->s);
        add(&st->retired, &cs->s);
    }
    if (cs->hist) {
        if (!st->retired_hist)
            st->retired_hist = calloc(VNVME_BDEV_HIST_BUCKETS, sizeof(uint64_t));
        for (unsigned i = 0; st->retired_hist && i < VNVME_BDEV_HIST_BUCKETS; i++)
            st->retired_hist[i] += cs->hist[i];
    }
    pthread_mutex_unlock(&st->lock);
    free(cs->hist);
    free(cs);
}

/* The channel's own thread: counters of an older generation start again from zero. */
static void catch_up(struct vnvme_bdev_chan_stat *cs, uint64_t now)
{
    uint64_t mm = LOAD(cs->owner->maxmin_gen);
    if (cs->maxmin_gen != mm) {
        forget_maxmin(&cs->s);
        STORE(cs->maxmin_gen, mm);
    }
    uint64_t gen = LOAD(cs->owner->reset_gen);
    if (cs->gen == gen)
        return;
    struct vnvme_bdev_iostat fresh;
    zero(&fresh);
    fresh.queue_depth = cs->s.queue_depth;
    /* Field by field, so that a reader never sees a torn 64-bit value. */
    for (size_t i = 0; i < sizeof(fresh) / sizeof(uint64_t); i++)
        STORE(((uint64_t *)&cs->s)[i], ((const uint64_t *)&fresh)[i]);
    if (fresh.queue_depth)
        STORE(cs->busy_since_ticks, now); /* busy time before the reset is not counted after it */
    STORE(cs->gen, gen);
}

/*
 * Time with I/O outstanding: a sum taken when the depth goes from 0 and back
 * to it. (Outstanding I/O integrated over time needs no tracking of its own:
 * it is the sum of every I/O's latency, see weighted_ticks.)
 */
static void enter(struct vnvme_bdev_chan_stat *cs, uint64_t now)
{
    uint64_t depth = cs->s.queue_depth;
    if (depth == 0)
        STORE(cs->busy_since_ticks, now);
    STORE(cs->s.queue_depth, depth + 1);
}

static void leave(struct vnvme_bdev_chan_stat *cs, uint64_t now)
{
    uint64_t depth = cs->s.queue_depth - 1;
    STORE(cs->s.queue_depth, depth);
    if (depth == 0)
        STORE(cs->s.io_time_ticks, cs->s.io_time_ticks + (now - cs->busy_since_ticks));
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

/* What each op counts as (enum vnvme_bdev_op order); -1: other_ops. */
static const int8_t kind_of_op[] = {
    [VNVME_BDEV_READ] = VNVME_STAT_READ,   [VNVME_BDEV_WRITE] = VNVME_STAT_WRITE,
    [VNVME_BDEV_FLUSH] = -1,               [VNVME_BDEV_WRITE_ZEROES] = -1,
    [VNVME_BDEV_UNMAP] = VNVME_STAT_UNMAP, [VNVME_BDEV_COMPARE] = VNVME_STAT_READ,
};

unsigned vnvme_bdev_hist_index(uint64_t v)
{
    const unsigned lsb = 64u - VNVME_BDEV_HIST_SHIFT;
    unsigned clz = v ? (unsigned)__builtin_clzll(v) : 64u;
    unsigned range = clz <= lsb ? lsb - clz : 0;
    unsigned shift = range ? range - 1 : 0;
    return (range << VNVME_BDEV_HIST_SHIFT) + (unsigned)((v >> shift) & ((1u << VNVME_BDEV_HIST_SHIFT) - 1));
}

uint64_t vnvme_bdev_hist_bucket_start(unsigned index)
{
    unsigned range = index >> VNVME_BDEV_HIST_SHIFT, sub = index & ((1u << VNVME_BDEV_HIST_SHIFT) - 1);
    if (range == 0)
        return sub;
    return ((uint64_t)(1u << VNVME_BDEV_HIST_SHIFT) + sub) << (range - 1);
}

static void account(struct vnvme_bdev_chan_stat *cs, const struct vnvme_bdev_io *io, int status, uint64_t lat)
{
    struct vnvme_bdev_iostat *s = &cs->s;
    uint64_t *hist = __atomic_load_n(&cs->hist, __ATOMIC_ACQUIRE);
    if (hist && LOAD(cs->owner->hist_on)) {
        unsigned i = vnvme_bdev_hist_index(lat);
        STORE(hist[i], hist[i] + 1);
    }
    STORE(s->weighted_io_time_ticks, s->weighted_io_time_ticks + lat);
    if (status != 0) {
        enum vnvme_bdev_err_kind e = err_kind(status);
        STORE(s->errors[e], s->errors[e] + 1);
        return;
    }
    int k = (unsigned)io->op < sizeof(kind_of_op) ? kind_of_op[io->op] : -1;
    if (k < 0) {
        STORE(s->other_ops, s->other_ops + 1);
        return;
    }
    STORE(s->bytes[k], s->bytes[k] + io->num_blocks * cs->block_size);
    STORE(s->ops[k], s->ops[k] + 1);
    STORE(s->latency_ticks[k], s->latency_ticks[k] + lat);
    if (lat > s->max_latency_ticks[k])
        STORE(s->max_latency_ticks[k], lat);
    if (lat < s->min_latency_ticks[k])
        STORE(s->min_latency_ticks[k], lat);
}

static void stat_done(struct vnvme_bdev_io *io, int status)
{
    struct vnvme_bdev_io_stat_level *l = &io->stat_level[--io->stat_depth];
    struct vnvme_bdev_chan_stat *cs = l->cs;
    uint64_t now = vnvme_ticks();
    catch_up(cs, now);
    leave(cs, now);
    account(cs, io, status, now - l->start_ticks);
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
    uint64_t now = vnvme_ticks();
    enter(cs, now);
    l->cb = io->cb;
    l->cb_arg = io->cb_arg;
    l->cs = cs;
    l->start_ticks = now;
    io->cb = stat_done;
    return true;
}

void vnvme_bdev_stat_cancel(struct vnvme_bdev_io *io)
{
    struct vnvme_bdev_io_stat_level *l = &io->stat_level[--io->stat_depth];
    leave(l->cs, vnvme_ticks());
    io->cb = l->cb;
    io->cb_arg = l->cb_arg;
}

/* ---- readers ---- */

/*
 * One channel's counters as a reader may report them: those of an older
 * generation count nothing since the reset, their max and min nothing since
 * a max/min reset.
 */
static void snapshot(const struct vnvme_bdev_stats *st, const struct vnvme_bdev_chan_stat *cs,
                     struct vnvme_bdev_iostat *out)
{
    if (LOAD(cs->gen) != st->reset_gen)
        return;
    struct vnvme_bdev_iostat one;
    zero(&one);
    add(&one, &cs->s);
    if (LOAD(cs->maxmin_gen) != st->maxmin_gen)
        forget_maxmin(&one);
    /* Busy now: the time since it last started counts too (the channel adds it when it goes idle). */
    uint64_t since = LOAD(cs->busy_since_ticks), now = vnvme_ticks();
    if (LOAD(cs->s.queue_depth) && now > since)
        one.io_time_ticks += now - since;
    add(out, &one);
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
        snapshot(st, cs, out);
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
        snapshot(st, cs, &one);
        fn(cs->id, &one, arg);
    }
    pthread_mutex_unlock(&st->lock);
    return n;
}

void vnvme_bdev_iostat_reset(struct vnvme_bdev *b, bool maxmin_only)
{
    struct vnvme_bdev_stats *st = b->stats;
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    if (maxmin_only) {
        forget_maxmin(&st->retired);
        STORE(st->maxmin_gen, st->maxmin_gen + 1);
    } else {
        zero(&st->retired);
        STORE(st->reset_gen, st->reset_gen + 1);
    }
    pthread_mutex_unlock(&st->lock);
}

/* ---- histograms ---- */

int vnvme_bdev_histogram_enable(struct vnvme_bdev *b, bool on)
{
    struct vnvme_bdev_stats *st = b->stats;
    if (!st)
        return -ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&st->lock);
    if (on) {
        for (struct vnvme_bdev_chan_stat *cs = st->chans; cs; cs = cs->next) {
            if (cs->hist)
                continue;
            uint64_t *h = calloc(VNVME_BDEV_HIST_BUCKETS, sizeof(uint64_t));
            if (!h) {
                rc = -ENOMEM;
                break;
            }
            __atomic_store_n(&cs->hist, h, __ATOMIC_RELEASE);
        }
    }
    if (rc == 0)
        STORE(st->hist_on, on);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

bool vnvme_bdev_histogram_enabled(struct vnvme_bdev *b)
{
    return b->stats && LOAD(b->stats->hist_on);
}

uint64_t vnvme_bdev_histogram(struct vnvme_bdev *b, uint64_t *out)
{
    struct vnvme_bdev_stats *st = b->stats;
    memset(out, 0, VNVME_BDEV_HIST_BUCKETS * sizeof(uint64_t));
    if (!st)
        return 0;
    pthread_mutex_lock(&st->lock);
    if (st->retired_hist)
        for (unsigned i = 0; i < VNVME_BDEV_HIST_BUCKETS; i++)
            out[i] += st->retired_hist[i];
    for (struct vnvme_bdev_chan_stat *cs = st->chans; cs; cs = cs->next) {
        const uint64_t *h = __atomic_load_n(&cs->hist, __ATOMIC_ACQUIRE);
        for (unsigned i = 0; h && i < VNVME_BDEV_HIST_BUCKETS; i++)
            out[i] += LOAD(h[i]);
    }
    pthread_mutex_unlock(&st->lock);
    uint64_t n = 0;
    for (unsigned i = 0; i < VNVME_BDEV_HIST_BUCKETS; i++)
        n += out[i];
    return n;
}
