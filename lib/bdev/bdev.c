/* SPDX-License-Identifier: MIT */
/*
 * The bdev registry, channels and the checks every implementation shares.
 * The registry is control-path state touched by one thread, so it is a plain
 * list kept in creation order (bdev_get_bdevs lists bdevs as they were made).
 */
#include "vnvme/bdev.h"
#include "vnvme/bdev_qos.h"
#include "vnvme/bdev_stat.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <json-c/json.h>

#include "common/log.h"

struct vnvme_bdev_channel {
    struct vnvme_bdev *bdev;
    void *ctx;
    struct vnvme_bdev_chan_stat *stat; /* NULL: this channel counts nothing (no memory for it) */
    struct vnvme_qos_queue qos;        /* I/Os waiting for the bdev's rate limits */
    struct vnvme_qos *const *extra_qos; /* the owner's limits besides the bdev's (a namespace's), or NULL */
    uint32_t qos_gen[2];               /* the limits' generations the waiting I/Os were booked at */
};

static struct vnvme_bdev *registry_head;

int vnvme_bdev_register(struct vnvme_bdev *b)
{
    if (!b || !b->ops || !b->ops->submit || b->name[0] == '\0')
        return -EINVAL;
    if (vnvme_bdev_get(b->name))
        return -EEXIST;
    int rc = vnvme_bdev_stats_create(b);
    if (rc < 0)
        return rc;
    struct vnvme_bdev **tail = &registry_head;
    while (*tail)
        tail = &(*tail)->next;
    b->next = NULL;
    *tail = b;
    return 0;
}

struct vnvme_bdev *vnvme_bdev_get(const char *name)
{
    if (!name)
        return NULL;
    for (struct vnvme_bdev *b = registry_head; b; b = b->next)
        if (strcmp(b->name, name) == 0)
            return b;
    return NULL;
}

struct vnvme_bdev *vnvme_bdev_first(void)
{
    return registry_head;
}

struct vnvme_bdev *vnvme_bdev_next(struct vnvme_bdev *b)
{
    return b ? b->next : NULL;
}

int vnvme_bdev_delete(const char *name)
{
    struct vnvme_bdev **link = &registry_head;
    while (*link && strcmp((*link)->name, name ? name : "") != 0)
        link = &(*link)->next;
    struct vnvme_bdev *b = *link;
    if (!b)
        return -ENOENT;
    if (b->claims > 0)
        return -EBUSY;
    *link = b->next;
    b->next = NULL;
    VNVME_INFO("bdev", "deleted %s", b->name);
    vnvme_bdev_stats_destroy(b);
    vnvme_bdev_qos_destroy(b);
    if (b->ops->destroy)
        b->ops->destroy(b);
    return 0;
}

struct vnvme_bdev_channel *vnvme_bdev_channel_get(struct vnvme_bdev *b)
{
    if (!b) {
        errno = EINVAL;
        return NULL;
    }
    struct vnvme_bdev_channel *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return NULL;
    ch->bdev = b;
    if (b->ops->channel_create) {
        int rc = b->ops->channel_create(b, &ch->ctx);
        if (rc < 0) {
            VNVME_ERR("bdev", "%s: channel: %s", b->name, strerror(-rc));
            free(ch);
            errno = -rc;
            return NULL;
        }
    }
    ch->stat = vnvme_bdev_chan_stat_add(b);
    return ch;
}

void vnvme_bdev_channel_put(struct vnvme_bdev_channel *ch)
{
    if (!ch)
        return;
    /* Callers recall their I/O before letting a channel go; anything still waiting is given back. */
    for (struct vnvme_bdev_io *io; (io = ch->qos.head) != NULL;) {
        vnvme_bdev_qos_remove(&ch->qos, io);
        io->cb(io, -ECANCELED);
    }
    if (ch->bdev->ops->channel_destroy)
        ch->bdev->ops->channel_destroy(ch->bdev, ch->ctx);
    vnvme_bdev_chan_stat_remove(ch->bdev, ch->stat);
    free(ch);
}

int vnvme_bdev_submit(struct vnvme_bdev_channel *ch, struct vnvme_bdev_io *io)
{
    /* The counting wrapper replaces the callback: what vnvme_bdev_io_check() refuses must not hide behind it. */
    if (!io->cb)
        return -EINVAL;
    bool counted = ch->stat && vnvme_bdev_stats_enabled() && vnvme_bdev_stat_begin(ch->stat, io);
    /* A rate-limited bdev may hold the I/O until its turn (its latency counts the wait, as SPDK's does). */
    struct vnvme_qos *bq = __atomic_load_n(&ch->bdev->qos, __ATOMIC_RELAXED);
    struct vnvme_qos *xq = ch->extra_qos ? __atomic_load_n(ch->extra_qos, __ATOMIC_ACQUIRE) : NULL;
    if ((bq || xq) && ch->qos.n == 0) {
        ch->qos_gen[0] = vnvme_qos_gen(bq);
        ch->qos_gen[1] = vnvme_qos_gen(xq);
    }
    if ((bq || xq) && vnvme_qos_admit(bq, xq, ch->bdev->block_size, &ch->qos, io))
        return 0;
    int rc = ch->bdev->ops->submit(ch->bdev, ch->ctx, io);
    if (rc < 0 && counted)
        vnvme_bdev_stat_cancel(io);
    return rc;
}

void vnvme_bdev_channel_set_qos(struct vnvme_bdev_channel *ch, struct vnvme_qos *const *extra)
{
    ch->extra_qos = extra;
}

int vnvme_bdev_abort(struct vnvme_bdev_channel *ch, struct vnvme_bdev_io *io)
{
    if (ch->qos.n && vnvme_bdev_qos_remove(&ch->qos, io) == 0) {
        io->cb(io, -ECANCELED);
        return 0;
    }
    if (!ch->bdev->ops->abort)
        return -ENOTSUP;
    return ch->bdev->ops->abort(ch->bdev, ch->ctx, io);
}

/* The limits changed while I/Os wait: book them again, in order, at the new rates. */
static void qos_rebook(struct vnvme_bdev_channel *ch, struct vnvme_qos *bq, struct vnvme_qos *xq)
{
    struct vnvme_bdev_io *io = ch->qos.head;
    ch->qos = (struct vnvme_qos_queue){0};
    ch->qos_gen[0] = vnvme_qos_gen(bq);
    ch->qos_gen[1] = vnvme_qos_gen(xq);
    while (io) {
        struct vnvme_bdev_io *next = io->next;
        if (vnvme_qos_admit(bq, xq, ch->bdev->block_size, &ch->qos, io) == 0) {
            int rc = ch->bdev->ops->submit(ch->bdev, ch->ctx, io);
            if (rc < 0)
                io->cb(io, rc);
        }
        io = next;
    }
}

int vnvme_bdev_channel_poll(struct vnvme_bdev_channel *ch)
{
    int n = 0;
    if (ch->qos.n) {
        struct vnvme_qos *bq = __atomic_load_n(&ch->bdev->qos, __ATOMIC_RELAXED);
        struct vnvme_qos *xq = ch->extra_qos ? __atomic_load_n(ch->extra_qos, __ATOMIC_ACQUIRE) : NULL;
        if (vnvme_qos_gen(bq) != ch->qos_gen[0] || vnvme_qos_gen(xq) != ch->qos_gen[1])
            qos_rebook(ch, bq, xq);
    }
    for (struct vnvme_bdev_io *io; ch->qos.n && (io = vnvme_bdev_qos_next_due(&ch->qos)) != NULL; n++) {
        int rc = ch->bdev->ops->submit(ch->bdev, ch->ctx, io);
        if (rc < 0)
            io->cb(io, rc); /* the caller was promised one callback */
    }
    if (ch->bdev->ops->poll)
        n += ch->bdev->ops->poll(ch->bdev, ch->ctx);
    return n;
}

int vnvme_bdev_channel_fd(struct vnvme_bdev_channel *ch)
{
    if (!ch->bdev->ops->channel_fd)
        return -1;
    return ch->bdev->ops->channel_fd(ch->bdev, ch->ctx);
}

int vnvme_bdev_init(struct vnvme_bdev *b, const char *name, uint32_t block_size, uint64_t num_blocks,
                    const uint8_t *uuid)
{
    if (!name || name[0] == '\0' || strlen(name) >= sizeof(b->name))
        return -EINVAL;
    if (block_size < 512 || block_size > 65536 || (block_size & (block_size - 1)) != 0)
        return -EINVAL;
    if (num_blocks == 0 || num_blocks > UINT64_MAX / block_size)
        return -EINVAL;
    snprintf(b->name, sizeof(b->name), "%s", name);
    b->block_size = block_size;
    b->num_blocks = num_blocks;
    if (uuid) {
        memcpy(b->uuid, uuid, sizeof(b->uuid));
    } else {
        if (getrandom(b->uuid, sizeof(b->uuid), 0) != (ssize_t)sizeof(b->uuid))
            return -EIO;
        b->uuid[6] = (uint8_t)((b->uuid[6] & 0x0f) | 0x40); /* version 4 */
        b->uuid[8] = (uint8_t)((b->uuid[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    }
    return 0;
}

int vnvme_bdev_io_check(const struct vnvme_bdev *b, const struct vnvme_bdev_io *io)
{
    if (!io || !io->cb)
        return -EINVAL;
    switch (io->op) {
    case VNVME_BDEV_FLUSH:
        return 0;
    case VNVME_BDEV_READ:
    case VNVME_BDEV_WRITE:
    case VNVME_BDEV_COMPARE:
    case VNVME_BDEV_WRITE_ZEROES:
    case VNVME_BDEV_UNMAP:
        break;
    default:
        return -EINVAL;
    }
    if (io->num_blocks == 0)
        return -EINVAL;
    /* Written so that no sum can wrap around. */
    if (io->offset_blocks >= b->num_blocks || io->num_blocks > b->num_blocks - io->offset_blocks)
        return -ERANGE;
    if (io->op == VNVME_BDEV_WRITE_ZEROES || io->op == VNVME_BDEV_UNMAP)
        return 0;

    if (io->iovcnt < 0 || io->iovcnt > IOV_MAX || (io->iovcnt > 0 && !io->iov))
        return -EINVAL;
    uint64_t want = io->num_blocks * b->block_size; /* fits: range checked, size checked at init */
    uint64_t total = 0;
    for (int i = 0; i < io->iovcnt; i++) {
        if (io->iov[i].iov_len > want - total)
            return -EINVAL;
        if (io->iov[i].iov_len && !io->iov[i].iov_base)
            return -EINVAL;
        total += io->iov[i].iov_len;
    }
    return total == want ? 0 : -EINVAL;
}

void vnvme_bdev_io_copy_to(const struct vnvme_bdev_io *io, const uint8_t *src)
{
    for (int i = 0; i < io->iovcnt; i++) {
        memcpy(io->iov[i].iov_base, src, io->iov[i].iov_len);
        src += io->iov[i].iov_len;
    }
}

int vnvme_bdev_io_compare(const struct vnvme_bdev_io *io, const uint8_t *data)
{
    for (int i = 0; i < io->iovcnt; i++) {
        if (memcmp(io->iov[i].iov_base, data, io->iov[i].iov_len) != 0)
            return -EILSEQ;
        data += io->iov[i].iov_len;
    }
    return 0;
}

void vnvme_bdev_uuid_format(const uint8_t u[16], char out[37])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3],
             u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

struct json_object *vnvme_bdev_to_json(struct vnvme_bdev *b)
{
    struct json_object *o = json_object_new_object();
    struct json_object *io_types = json_object_new_object();
    struct json_object *drv = json_object_new_object();
    if (!o || !io_types || !drv) {
        json_object_put(o);
        json_object_put(io_types);
        json_object_put(drv);
        return NULL;
    }
    char uuid[37];
    vnvme_bdev_uuid_format(b->uuid, uuid);
    const char *product = b->ops->product_name ? b->ops->product_name : b->ops->type;

    json_object_object_add(o, "name", json_object_new_string(b->name));
    json_object_object_add(o, "aliases", json_object_new_array());
    json_object_object_add(o, "product_name", json_object_new_string(product ? product : ""));
    json_object_object_add(o, "block_size", json_object_new_int64(b->block_size));
    json_object_object_add(o, "num_blocks", json_object_new_uint64(b->num_blocks));
    json_object_object_add(o, "uuid", json_object_new_string(uuid));
    json_object_object_add(o, "claimed", json_object_new_boolean(b->claims > 0));
    json_object_object_add(o, "volatile_write_cache", json_object_new_boolean(b->volatile_write_cache));

    json_object_object_add(io_types, "read", json_object_new_boolean(1));
    json_object_object_add(io_types, "write", json_object_new_boolean(1));
    json_object_object_add(io_types, "flush", json_object_new_boolean(1));
    json_object_object_add(io_types, "write_zeroes", json_object_new_boolean(b->supports_write_zeroes));
    json_object_object_add(io_types, "unmap", json_object_new_boolean(b->supports_unmap));
    json_object_object_add(io_types, "compare", json_object_new_boolean(1));
    json_object_object_add(o, "supported_io_types", io_types);

    if (b->ops->dump_json)
        b->ops->dump_json(b, drv);
    json_object_object_add(o, "driver_specific", drv);
    /* As SPDK shows them: every limit, 0 for none. */
    json_object_object_add(o, "assigned_rate_limits", vnvme_qos_limits_json(__atomic_load_n(&b->qos, __ATOMIC_ACQUIRE)));
    return o;
}
