/* SPDX-License-Identifier: MIT */
/*
 * "delay" bdev: a base bdev with added latency, like SPDK's bdev_delay. Reads
 * (and compares) wait the read latency, writes the write latency, before they
 * reach the base; one I/O in a hundred waits the p99 latency instead of the
 * average. Other operations pass straight through, as in SPDK.
 *
 * What it is for: showing how hosts and the target behave with a slow or
 * stuck backing store (a latency of minutes is a bdev that never completes in
 * a test's lifetime), and that such I/O can be aborted: an I/O still waiting
 * here has not reached the base, so Abort and controller reset can recall it.
 *
 * Per channel, each of the four (op class, percentile) pairs is a FIFO of
 * waiting I/Os in deadline order, since they share one latency: poll looks
 * at four heads, and the clock is read only while something waits. The
 * I/O's own next/priv fields hold the links and the deadline until it is
 * handed to the base, so nothing is allocated per I/O.
 */
#include "vnvme/bdev.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/log.h"

#define P99_EVERY 100u /* one I/O in this many gets the p99 latency */

enum { LAT_AVG_READ, LAT_P99_READ, LAT_AVG_WRITE, LAT_P99_WRITE, LAT_COUNT };

static const char *const latency_names[LAT_COUNT] = {"avg_read", "p99_read", "avg_write", "p99_write"};
static const char *const latency_params[LAT_COUNT] = {"avg_read_latency", "p99_read_latency", "avg_write_latency",
                                                      "p99_write_latency"};

struct delay_bdev {
    struct vnvme_bdev bdev;
    struct vnvme_bdev *base;
    _Atomic uint64_t latency_us[LAT_COUNT]; /* written by the control thread, read by reactors */
};

struct fifo {
    struct vnvme_bdev_io *head, *tail;
};

struct delay_channel {
    struct vnvme_bdev_channel *base;
    struct fifo waiting[LAT_COUNT];
    uint32_t nr_waiting;
    uint32_t seq; /* picks the p99 I/Os */
};

#define DEADLINE(io) ((io)->priv[0])

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct delay_bdev *to_delay(struct vnvme_bdev *b)
{
    return (struct delay_bdev *)b;
}

static int delay_channel_create(struct vnvme_bdev *b, void **ch_ctx)
{
    struct delay_channel *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return -ENOMEM;
    ch->base = vnvme_bdev_channel_get(to_delay(b)->base);
    if (!ch->base) {
        int rc = -errno;
        free(ch);
        return rc ? rc : -ENOMEM;
    }
    *ch_ctx = ch;
    return 0;
}

/* I/Os still waiting when their channel goes away never reach the base. */
static void delay_channel_destroy(struct vnvme_bdev *b, void *ch_ctx)
{
    (void)b;
    struct delay_channel *ch = ch_ctx;
    for (int l = 0; l < LAT_COUNT; l++) {
        struct vnvme_bdev_io *io;
        while ((io = ch->waiting[l].head)) {
            ch->waiting[l].head = io->next;
            io->cb(io, -ECANCELED);
        }
    }
    vnvme_bdev_channel_put(ch->base);
    free(ch);
}

/* Which latency an I/O waits; -1: none (passes straight through). */
static int latency_class(struct delay_channel *ch, const struct vnvme_bdev_io *io)
{
    bool p99 = ++ch->seq % P99_EVERY == 0;
    switch (io->op) {
    case VNVME_BDEV_READ:
    case VNVME_BDEV_COMPARE:
        return p99 ? LAT_P99_READ : LAT_AVG_READ;
    case VNVME_BDEV_WRITE:
        return p99 ? LAT_P99_WRITE : LAT_AVG_WRITE;
    default:
        return -1;
    }
}

static int delay_submit(struct vnvme_bdev *b, void *ch_ctx, struct vnvme_bdev_io *io)
{
    struct delay_bdev *d = to_delay(b);
    struct delay_channel *ch = ch_ctx;
    int rc = vnvme_bdev_io_check(b, io);
    if (rc < 0)
        return rc;
    int l = latency_class(ch, io);
    uint64_t lat = l < 0 ? 0 : atomic_load_explicit(&d->latency_us[l], memory_order_relaxed);
    if (lat == 0)
        return vnvme_bdev_submit(ch->base, io);
    DEADLINE(io) = now_us() + lat;
    io->next = NULL;
    struct fifo *f = &ch->waiting[l];
    if (f->tail)
        f->tail->next = io;
    else
        f->head = io;
    f->tail = io;
    ch->nr_waiting++;
    return 0;
}

static int release_due(struct delay_channel *ch)
{
    int n = 0;
    uint64_t now = now_us();
    for (int l = 0; l < LAT_COUNT; l++) {
        struct fifo *f = &ch->waiting[l];
        struct vnvme_bdev_io *io;
        while ((io = f->head) && DEADLINE(io) <= now) {
            f->head = io->next;
            if (!f->head)
                f->tail = NULL;
            ch->nr_waiting--;
            int rc = vnvme_bdev_submit(ch->base, io);
            if (rc < 0)
                io->cb(io, rc); /* the base refused it: the caller was promised one callback */
            n++;
        }
    }
    return n;
}

static int delay_poll(struct vnvme_bdev *b, void *ch_ctx)
{
    (void)b;
    struct delay_channel *ch = ch_ctx;
    int n = ch->nr_waiting ? release_due(ch) : 0;
    return n + vnvme_bdev_channel_poll(ch->base);
}

static int delay_channel_fd(struct vnvme_bdev *b, void *ch_ctx)
{
    (void)b;
    return vnvme_bdev_channel_fd(((struct delay_channel *)ch_ctx)->base);
}

/* Only an I/O still waiting here can be recalled; one in the base runs to its end. */
static int delay_abort(struct vnvme_bdev *b, void *ch_ctx, struct vnvme_bdev_io *io)
{
    (void)b;
    struct delay_channel *ch = ch_ctx;
    for (int l = 0; l < LAT_COUNT; l++) {
        struct fifo *f = &ch->waiting[l];
        struct vnvme_bdev_io *prev = NULL;
        for (struct vnvme_bdev_io *it = f->head; it; prev = it, it = it->next) {
            if (it != io)
                continue;
            if (prev)
                prev->next = it->next;
            else
                f->head = it->next;
            if (f->tail == it)
                f->tail = prev;
            ch->nr_waiting--;
            io->cb(io, -ECANCELED);
            return 0;
        }
    }
    return -ENOENT;
}

static void delay_dump_json(struct vnvme_bdev *b, struct json_object *obj)
{
    struct delay_bdev *d = to_delay(b);
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "base_bdev_name", json_object_new_string(d->base->name));
    for (int l = 0; l < LAT_COUNT; l++)
        json_object_object_add(o, latency_params[l], json_object_new_uint64(atomic_load(&d->latency_us[l])));
    json_object_object_add(obj, "delay", o);
}

static void delay_destroy(struct vnvme_bdev *b)
{
    struct delay_bdev *d = to_delay(b);
    d->base->claims--;
    free(d);
}

static const struct vnvme_bdev_ops delay_ops = {
    .type = "delay",
    .product_name = "delay",
    .channel_create = delay_channel_create,
    .channel_destroy = delay_channel_destroy,
    .submit = delay_submit,
    .poll = delay_poll,
    .channel_fd = delay_channel_fd,
    .abort = delay_abort,
    .dump_json = delay_dump_json,
    .destroy = delay_destroy,
};

static int check_latencies(const uint64_t lat[LAT_COUNT])
{
    if (lat[LAT_P99_READ] < lat[LAT_AVG_READ] || lat[LAT_P99_WRITE] < lat[LAT_AVG_WRITE])
        return -EINVAL; /* a p99 below the average is a typo, not a distribution */
    return 0;
}

int vnvme_bdev_delay_create(const char *name, const char *base_name, const uint64_t latency_us[4],
                            const uint8_t *uuid, struct vnvme_bdev **out)
{
    struct vnvme_bdev *base = vnvme_bdev_get(base_name);
    if (!base)
        return -ENODEV;
    int rc = check_latencies(latency_us);
    if (rc < 0)
        return rc;
    struct delay_bdev *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    rc = vnvme_bdev_init(&d->bdev, name, base->block_size, base->num_blocks, uuid);
    if (rc == 0) {
        d->bdev.ops = &delay_ops;
        d->bdev.ctx = d;
        d->bdev.volatile_write_cache = base->volatile_write_cache;
        d->bdev.supports_unmap = base->supports_unmap;
        d->bdev.supports_write_zeroes = base->supports_write_zeroes;
        d->base = base;
        for (int l = 0; l < LAT_COUNT; l++)
            atomic_init(&d->latency_us[l], latency_us[l]);
        rc = vnvme_bdev_register(&d->bdev);
    }
    if (rc < 0) {
        free(d);
        return rc;
    }
    base->claims++; /* the base cannot be deleted under us */
    VNVME_INFO("bdev", "created delay bdev %s on %s", name, base_name);
    *out = &d->bdev;
    return 0;
}

int vnvme_bdev_delay_update_latency(const char *name, const char *latency_type, uint64_t latency_us)
{
    struct vnvme_bdev *b = vnvme_bdev_get(name);
    if (!b || b->ops != &delay_ops)
        return -ENODEV;
    struct delay_bdev *d = to_delay(b);
    for (int l = 0; l < LAT_COUNT; l++) {
        if (strcmp(latency_type, latency_names[l]) != 0)
            continue;
        uint64_t lat[LAT_COUNT];
        for (int i = 0; i < LAT_COUNT; i++)
            lat[i] = atomic_load(&d->latency_us[i]);
        lat[l] = latency_us;
        int rc = check_latencies(lat);
        if (rc == 0)
            atomic_store(&d->latency_us[l], latency_us);
        return rc;
    }
    return -EINVAL;
}

struct json_object *vnvme_bdev_delay_save(struct vnvme_bdev *b)
{
    if (b->ops != &delay_ops)
        return NULL;
    struct delay_bdev *d = to_delay(b);
    char uuid[37];
    vnvme_bdev_uuid_format(b->uuid, uuid);
    struct json_object *p = json_object_new_object();
    json_object_object_add(p, "name", json_object_new_string(b->name));
    json_object_object_add(p, "base_bdev_name", json_object_new_string(d->base->name));
    for (int l = 0; l < LAT_COUNT; l++)
        json_object_object_add(p, latency_params[l], json_object_new_uint64(atomic_load(&d->latency_us[l])));
    json_object_object_add(p, "uuid", json_object_new_string(uuid));
    return p;
}
