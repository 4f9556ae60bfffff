/* SPDX-License-Identifier: MIT */
/*
 * Rados connections: how one is configured, and the registry of named
 * clusters whose one connection is shared by every image created on them
 * (bdev_rbd_register_cluster). Control thread only, except the reference an
 * image drops when it is closed, which happens on a thread of its own (see
 * bdev_rbd.c): refs, closing and unregistered are under refs_lock. Images
 * still closing do not keep a cluster from being unregistered: its name goes
 * at once, and the connection is shut down when the last of them is closed.
 *
 * Timeouts: a cluster that stops answering must not hang anything. librados
 * can fail its own operations after a deadline (rados_osd_op_timeout,
 * rados_mon_op_timeout, client_mount_timeout all default to "never" or 5
 * minutes); we set them from timeout_ms, so a stalled OSD turns into
 * -ETIMEDOUT completions from librbd itself, after which librbd no longer
 * touches the I/O's memory. The user's "config" map is applied after these,
 * so it can override them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/log.h"
#include "rbd_internal.h"

struct rbd_cluster {
    char *name;
    char *user_id, *config_file, *key_file;
    struct json_object *config; /* deep copy or NULL */
    uint32_t timeout_ms;        /* as given (0 = default) */
    rados_t rados;
    unsigned refs;              /* images using the connection ... */
    unsigned closing;           /* ... of which deleted, their close still under way */
    bool unregistered;          /* out of the registry: the last put shuts it down */
    struct rbd_cluster *next;
};

static struct rbd_cluster *clusters;
static pthread_mutex_t refs_lock = PTHREAD_MUTEX_INITIALIZER;

uint32_t rbd_timeout_ms(const struct vnvme_rbd_conn_opts *opts)
{
    return opts->timeout_ms ? opts->timeout_ms : VNVME_RBD_DEFAULT_TIMEOUT_MS;
}

static int conf_set(rados_t r, const char *key, const char *val)
{
    int rc = rados_conf_set(r, key, val);
    if (rc < 0)
        VNVME_ERR("rbd", "rados_conf_set %s=%s: %s", key, val, strerror(-rc));
    return rc;
}

int rbd_conn_open(const struct vnvme_rbd_conn_opts *opts, rados_t *out)
{
    rados_t r;
    int rc = rados_create(&r, opts->user_id);
    if (rc < 0)
        return rc;
    /* Without any configuration, the default ceph.conf search ($CEPH_CONF, /etc/ceph/ceph.conf). */
    if (opts->config_file || !opts->config) {
        rc = rados_conf_read_file(r, opts->config_file);
        if (rc < 0) {
            VNVME_ERR("rbd", "reading %s: %s", opts->config_file ? opts->config_file : "the default ceph.conf",
                      strerror(-rc));
            goto fail;
        }
    }
    if (opts->key_file && (rc = conf_set(r, "keyring", opts->key_file)) < 0)
        goto fail;

    /* librados takes whole seconds; round up so a short timeout never becomes "none". */
    char secs[16];
    snprintf(secs, sizeof(secs), "%u", (rbd_timeout_ms(opts) + 999) / 1000);
    static const char *const timeout_keys[] = {"rados_osd_op_timeout", "rados_mon_op_timeout",
                                               "client_mount_timeout"};
    for (size_t i = 0; i < sizeof(timeout_keys) / sizeof(timeout_keys[0]); i++)
        if ((rc = conf_set(r, timeout_keys[i], secs)) < 0)
            goto fail;
    if (opts->config) {
        json_object_object_foreach(opts->config, key, val)
        {
            if (!json_object_is_type(val, json_type_string)) {
                VNVME_ERR("rbd", "config %s: values must be strings", key);
                rc = -EINVAL;
                goto fail;
            }
            if ((rc = conf_set(r, key, json_object_get_string(val))) < 0)
                goto fail;
        }
    }
    /*
     * Forced after the user's map, because the data path relies on them:
     * writes copied at submission (an I/O we gave up on must not read caller
     * memory later), and partial discards zeroed (the target advertises that
     * deallocated blocks read as zeroes).
     */
    if ((rc = conf_set(r, "rbd_disable_zero_copy_writes", "true")) < 0 ||
        (rc = conf_set(r, "rbd_skip_partial_discard", "false")) < 0)
        goto fail;

    rc = rados_connect(r);
    if (rc < 0) {
        VNVME_ERR("rbd", "rados_connect: %s", strerror(-rc));
        goto fail;
    }
    *out = r;
    return 0;
fail:
    rados_shutdown(r);
    return rc;
}

static struct rbd_cluster *find(const char *name)
{
    for (struct rbd_cluster *c = clusters; c; c = c->next)
        if (name && strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static char *dup_opt(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    *oom |= d == NULL;
    return d;
}

static void cluster_free(struct rbd_cluster *c);

static void cluster_shutdown(struct rbd_cluster *c)
{
    rados_shutdown(c->rados);
    cluster_free(c);
}

static void cluster_free(struct rbd_cluster *c)
{
    if (!c)
        return;
    free(c->name);
    free(c->user_id);
    free(c->config_file);
    free(c->key_file);
    json_object_put(c->config);
    free(c);
}

int vnvme_bdev_rbd_register_cluster(const char *name, const struct vnvme_rbd_conn_opts *opts)
{
    if (!name || !*name || !opts)
        return -EINVAL;
    if (find(name))
        return -EEXIST;
    if (opts->config && !json_object_is_type(opts->config, json_type_object))
        return -EINVAL;
    struct rbd_cluster *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    bool oom = false;
    c->name = dup_opt(name, &oom);
    c->user_id = dup_opt(opts->user_id, &oom);
    c->config_file = dup_opt(opts->config_file, &oom);
    c->key_file = dup_opt(opts->key_file, &oom);
    c->timeout_ms = opts->timeout_ms;
    if (opts->config && json_object_deep_copy(opts->config, &c->config, NULL) < 0)
        oom = true;
    if (oom) {
        cluster_free(c);
        return -ENOMEM;
    }
    int rc = rbd_conn_open(opts, &c->rados);
    if (rc < 0) {
        cluster_free(c);
        return rc;
    }
    struct rbd_cluster **pp = &clusters;
    while (*pp)
        pp = &(*pp)->next;
    *pp = c;
    VNVME_INFO("rbd", "cluster %s registered", name);
    return 0;
}

int vnvme_bdev_rbd_unregister_cluster(const char *name)
{
    for (struct rbd_cluster **pp = &clusters; *pp; pp = &(*pp)->next) {
        struct rbd_cluster *c = *pp;
        if (!name || strcmp(c->name, name) != 0)
            continue;
        pthread_mutex_lock(&refs_lock);
        bool in_use = c->refs > c->closing, last = c->refs == 0;
        if (!in_use)
            c->unregistered = true;
        pthread_mutex_unlock(&refs_lock);
        if (in_use)
            return -EBUSY;
        *pp = c->next;
        VNVME_INFO("rbd", "cluster %s unregistered%s", name, last ? "" : " (shut down once its images are closed)");
        if (last)
            cluster_shutdown(c);
        return 0;
    }
    return -ENOENT;
}

static void add_str(struct json_object *o, const char *key, const char *val)
{
    if (val)
        json_object_object_add(o, key, json_object_new_string(val));
}

/* The parameters that register c again (also its bdev_rbd_get_clusters_info entry). */
static struct json_object *cluster_params(const struct rbd_cluster *c)
{
    struct json_object *o = json_object_new_object();
    add_str(o, "name", c->name);
    add_str(o, "user_id", c->user_id);
    add_str(o, "config_file", c->config_file);
    add_str(o, "key_file", c->key_file);
    if (c->config)
        json_object_object_add(o, "config_param", json_object_get(c->config));
    if (c->timeout_ms)
        json_object_object_add(o, "timeout_ms", json_object_new_int64(c->timeout_ms));
    return o;
}

struct json_object *vnvme_bdev_rbd_clusters_json(const char *name)
{
    if (name) {
        struct rbd_cluster *c = find(name);
        return c ? cluster_params(c) : NULL;
    }
    return vnvme_bdev_rbd_clusters_save();
}

struct json_object *vnvme_bdev_rbd_clusters_save(void)
{
    struct json_object *arr = json_object_new_array();
    for (struct rbd_cluster *c = clusters; c; c = c->next)
        json_object_array_add(arr, cluster_params(c));
    return arr;
}

struct rbd_cluster *rbd_cluster_get(const char *name)
{
    struct rbd_cluster *c = find(name);
    if (c) {
        pthread_mutex_lock(&refs_lock);
        c->refs++;
        pthread_mutex_unlock(&refs_lock);
    }
    return c;
}

void rbd_cluster_closing(struct rbd_cluster *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&refs_lock);
    c->closing++;
    pthread_mutex_unlock(&refs_lock);
}

void rbd_cluster_put(struct rbd_cluster *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&refs_lock);
    if (c->refs)
        c->refs--;
    if (c->closing)
        c->closing--;
    bool last = c->unregistered && c->refs == 0;
    pthread_mutex_unlock(&refs_lock);
    if (last)
        cluster_shutdown(c);
}

rados_t rbd_cluster_rados(const struct rbd_cluster *c)
{
    return c->rados;
}

const char *rbd_cluster_name(const struct rbd_cluster *c)
{
    return c->name;
}

const char *rbd_cluster_config_file(const struct rbd_cluster *c)
{
    return c->config_file;
}

uint32_t rbd_cluster_timeout_ms(const struct rbd_cluster *c)
{
    return c->timeout_ms ? c->timeout_ms : VNVME_RBD_DEFAULT_TIMEOUT_MS;
}

bool vnvme_bdev_rbd_supported(void)
{
    return true;
}
