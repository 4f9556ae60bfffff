/* SPDX-License-Identifier: MIT */
/*
 * "rbd" bdev: a Ceph RBD image through librbd's asynchronous C API. This file
 * opens and closes the image (on a cluster's shared connection or a private
 * one), reports it and resizes it; the I/O path, with its timeouts and
 * recall, is rbd_io.c, and the rados connections are rbd_cluster.c.
 */
#include "vnvme/bdev_rbd.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <rbd/librbd.h>

#include "common/log.h"
#include "rbd_internal.h"

static void add_str(struct json_object *o, const char *key, const char *val)
{
    if (val)
        json_object_object_add(o, key, json_object_new_string(val));
}

static void rbd_dump_json(struct vnvme_bdev *b, struct json_object *obj)
{
    struct rbd_bdev *r = b->ctx;
    struct json_object *o = json_object_new_object();
    if (!o)
        return;
    add_str(o, "pool_name", r->pool_name);
    add_str(o, "rbd_name", r->rbd_name);
    if (r->cluster) {
        add_str(o, "cluster_name", rbd_cluster_name(r->cluster));
        add_str(o, "config_file", rbd_cluster_config_file(r->cluster));
    } else {
        add_str(o, "user_id", r->conn.user_id);
        if (r->conn.config)
            json_object_object_add(o, "config", json_object_get(r->conn.config));
    }
    json_object_object_add(o, "timeout_ms", json_object_new_int64(r->timeout_ms));
    uint64_t abandoned = atomic_load_explicit(&r->abandoned, memory_order_relaxed);
    uint64_t late = atomic_load_explicit(&r->abandoned_done, memory_order_relaxed);
    json_object_object_add(o, "abandoned_ios", json_object_new_uint64(abandoned));
    /* Abandoned I/Os librbd still holds (their buffers are the bdev's or fenced, never the host's). */
    json_object_object_add(o, "abandoned_ios_pending", json_object_new_uint64(abandoned - late));
    json_object_object_add(o, "abandoned_reads_fenced",
                           json_object_new_uint64(atomic_load_explicit(&r->fenced, memory_order_relaxed)));
    json_object_object_add(obj, "rbd", o);
}

static void free_conn(struct vnvme_rbd_conn_opts *c)
{
    free((char *)c->user_id);
    free((char *)c->config_file);
    free((char *)c->key_file);
    json_object_put(c->config);
    memset(c, 0, sizeof(*c));
}

static void rbd_bdev_free(struct rbd_bdev *r)
{
    if (r->image)
        rbd_close(r->image);
    rbd_io_wait_orphans(r);
    if (r->ioctx)
        rados_ioctx_destroy(r->ioctx);
    if (r->cluster)
        rbd_cluster_put(r->cluster);
    else if (r->rados)
        rados_shutdown(r->rados);
    free_conn(&r->conn);
    free(r->pool_name);
    free(r->rbd_name);
    free(r);
}

/*
 * Closing an image can wait on the cluster for as long as it does not
 * answer: librbd writes back its cache, waits for its in-flight operations
 * (recalled I/Os included) and releases the image's exclusive lock, each
 * bounded only by librados' op timeout, which may be "never". The control
 * thread serves every RPC and must not wait with it, so a deleted bdev is
 * closed on a thread of its own; vnvme_bdev_rbd_wait_closed() waits for all
 * of them before the process exits. Its name is free at once, and its
 * cluster can be unregistered at once (rbd_cluster.c shuts the connection
 * down after the last close).
 */
static pthread_mutex_t closing_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t closing_done = PTHREAD_COND_INITIALIZER;
static unsigned closing;

static void close_finished(void)
{
    pthread_mutex_lock(&closing_lock);
    closing--;
    pthread_cond_broadcast(&closing_done);
    pthread_mutex_unlock(&closing_lock);
}

static void *close_thread(void *arg)
{
    struct rbd_bdev *r = arg;
    char name[sizeof(r->bdev.name)];
    snprintf(name, sizeof(name), "%s", r->bdev.name);
    rbd_bdev_free(r);
    VNVME_INFO("rbd", "%s: closed", name);
    close_finished();
    return NULL;
}

static void rbd_destroy(struct vnvme_bdev *b)
{
    struct rbd_bdev *r = b->ctx;
    VNVME_INFO("rbd", "%s: closing %s/%s", b->name, r->pool_name, r->rbd_name);
    rbd_cluster_closing(r->cluster);
    pthread_mutex_lock(&closing_lock);
    closing++;
    pthread_mutex_unlock(&closing_lock);
    pthread_attr_t attr;
    pthread_t t;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&t, &attr, close_thread, r);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        VNVME_WARN("rbd", "%s: no thread to close on (%s): closing here", b->name, strerror(rc));
        close_thread(r);
    }
}

void vnvme_bdev_rbd_wait_closed(void)
{
    pthread_mutex_lock(&closing_lock);
    while (closing > 0) {
        /* Said every 10 s: an exit that waits on an unreachable cluster must not look like a hang. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        if (pthread_cond_timedwait(&closing_done, &closing_lock, &until) == ETIMEDOUT && closing > 0)
            VNVME_WARN("rbd", "waiting for %u image(s) to close: their cluster does not answer", closing);
    }
    pthread_mutex_unlock(&closing_lock);
}

static const struct vnvme_bdev_ops rbd_ops = {
    .type = "rbd",
    .product_name = "Ceph Rbd Disk",
    .channel_create = rbd_io_channel_create,
    .channel_destroy = rbd_io_channel_destroy,
    .submit = rbd_io_submit,
    .poll = rbd_io_poll,
    .channel_fd = rbd_io_channel_fd,
    .abort = rbd_io_abort,
    .dump_json = rbd_dump_json,
    .destroy = rbd_destroy,
};

/* The image's effective rbd_cache (image and pool overrides included), else the connection's. */
static bool cache_enabled(struct rbd_bdev *r)
{
    int max = 0;
    bool on = false, found = false;
    if (rbd_config_image_list(r->image, NULL, &max) == -ERANGE && max > 0) {
        rbd_config_option_t *opts = calloc((size_t)max, sizeof(*opts));
        if (opts && rbd_config_image_list(r->image, opts, &max) >= 0) {
            for (int i = 0; i < max && !found; i++)
                if (opts[i].name && strcmp(opts[i].name, "rbd_cache") == 0) {
                    found = true;
                    on = opts[i].value && strcmp(opts[i].value, "true") == 0;
                }
            rbd_config_image_list_cleanup(opts, max);
        }
        free(opts);
    }
    if (!found) {
        char val[16] = "";
        on = rados_conf_get(r->rados, "rbd_cache", val, sizeof(val)) == 0 && strcmp(val, "true") == 0;
    }
    return on;
}

static int copy_conn(struct vnvme_rbd_conn_opts *dst, const struct vnvme_rbd_conn_opts *src)
{
    dst->timeout_ms = src->timeout_ms;
    if ((src->user_id && !(dst->user_id = strdup(src->user_id))) ||
        (src->config_file && !(dst->config_file = strdup(src->config_file))) ||
        (src->key_file && !(dst->key_file = strdup(src->key_file))) ||
        (src->config && json_object_deep_copy(src->config, &dst->config, NULL) < 0))
        return -ENOMEM;
    return 0;
}

int vnvme_bdev_rbd_create(const struct vnvme_rbd_create_opts *o, struct vnvme_bdev **out)
{
    if (!o || !o->name || !o->pool_name || !o->rbd_name || !*o->pool_name || !*o->rbd_name)
        return -EINVAL;
    if (o->conn.config && !json_object_is_type(o->conn.config, json_type_object))
        return -EINVAL;
    if (vnvme_bdev_get(o->name))
        return -EEXIST;
    struct rbd_bdev *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    int rc = -ENOMEM;
    if (!(r->pool_name = strdup(o->pool_name)) || !(r->rbd_name = strdup(o->rbd_name)))
        goto fail;
    if (o->cluster_name) {
        r->cluster = rbd_cluster_get(o->cluster_name);
        if (!r->cluster) {
            VNVME_ERR("rbd", "%s: no registered cluster %s", o->name, o->cluster_name);
            rc = -ENOENT;
            goto fail;
        }
        r->rados = rbd_cluster_rados(r->cluster);
        r->timeout_ms = rbd_cluster_timeout_ms(r->cluster);
    } else {
        if ((rc = copy_conn(&r->conn, &o->conn)) < 0)
            goto fail;
        if ((rc = rbd_conn_open(&r->conn, &r->rados)) < 0)
            goto fail;
        r->timeout_ms = rbd_timeout_ms(&r->conn);
    }
    r->backstop_ns = 2ull * r->timeout_ms * 1000000ull;
    atomic_init(&r->abandoned, 0);
    atomic_init(&r->abandoned_done, 0);
    atomic_init(&r->fenced, 0);
    atomic_init(&r->flush_errors, 0);

    rc = rados_ioctx_create(r->rados, o->pool_name, &r->ioctx);
    if (rc < 0) {
        VNVME_ERR("rbd", "%s: pool %s: %s", o->name, o->pool_name, strerror(-rc));
        r->ioctx = NULL;
        goto fail;
    }
    rc = rbd_open(r->ioctx, o->rbd_name, &r->image, NULL);
    if (rc < 0) {
        VNVME_ERR("rbd", "%s: image %s/%s: %s", o->name, o->pool_name, o->rbd_name, strerror(-rc));
        r->image = NULL;
        goto fail;
    }
    uint64_t size = 0;
    if ((rc = rbd_get_size(r->image, &size)) < 0)
        goto fail;
    uint32_t bs = o->block_size;
    rc = vnvme_bdev_init(&r->bdev, o->name, bs, bs ? size / bs : 0, o->uuid);
    if (rc < 0) {
        VNVME_ERR("rbd", "%s: block size %u on an image of %llu bytes", o->name, bs, (unsigned long long)size);
        goto fail;
    }
    r->bdev.volatile_write_cache = cache_enabled(r);
    r->bdev.supports_unmap = true;
    r->bdev.supports_write_zeroes = true;
    r->bdev.fenced_reads = true;
    r->bdev.ops = &rbd_ops;
    r->bdev.ctx = r;
    if ((rc = vnvme_bdev_register(&r->bdev)) < 0)
        goto fail;
    VNVME_INFO("rbd", "%s: %s/%s, %llu blocks of %u, write cache %s", o->name, o->pool_name, o->rbd_name,
               (unsigned long long)r->bdev.num_blocks, bs, r->bdev.volatile_write_cache ? "on" : "off");
    if (out)
        *out = &r->bdev;
    return 0;
fail:
    rbd_cluster_closing(r->cluster);
    rbd_bdev_free(r);
    return rc;
}

int vnvme_bdev_rbd_resize(struct vnvme_bdev *b, uint64_t new_size_bytes)
{
    if (!b || b->ops != &rbd_ops)
        return -ENODEV;
    struct rbd_bdev *r = b->ctx;
    uint64_t blocks = new_size_bytes / b->block_size;
    if (blocks < b->num_blocks)
        return -EINVAL;
    if (blocks == b->num_blocks)
        return 0;
    int rc = rbd_resize(r->image, new_size_bytes);
    if (rc < 0) {
        VNVME_ERR("rbd", "%s: resize to %llu bytes: %s", b->name, (unsigned long long)new_size_bytes, strerror(-rc));
        return rc;
    }
    /* Reactors read num_blocks for range checks while this changes; it only grows. */
    __atomic_store_n(&b->num_blocks, blocks, __ATOMIC_RELEASE);
    VNVME_INFO("rbd", "%s: resized to %llu blocks", b->name, (unsigned long long)blocks);
    return 0;
}

struct json_object *vnvme_bdev_rbd_save(struct vnvme_bdev *b)
{
    if (!b || b->ops != &rbd_ops)
        return NULL;
    struct rbd_bdev *r = b->ctx;
    char uuid[37];
    vnvme_bdev_uuid_format(b->uuid, uuid);
    struct json_object *p = json_object_new_object();
    add_str(p, "name", b->name);
    add_str(p, "pool_name", r->pool_name);
    add_str(p, "rbd_name", r->rbd_name);
    json_object_object_add(p, "block_size", json_object_new_int64(b->block_size));
    add_str(p, "uuid", uuid);
    if (r->cluster) {
        add_str(p, "cluster_name", rbd_cluster_name(r->cluster));
    } else {
        add_str(p, "user_id", r->conn.user_id);
        if (r->conn.config)
            json_object_object_add(p, "config", json_object_get(r->conn.config));
        if (r->conn.timeout_ms)
            json_object_object_add(p, "timeout_ms", json_object_new_int64(r->conn.timeout_ms));
    }
    return p;
}
