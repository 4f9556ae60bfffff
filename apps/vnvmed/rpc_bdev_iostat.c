/* SPDX-License-Identifier: MIT */
/*
 * bdev_get_iostat, bdev_reset_iostat, bdev_enable_histogram and
 * bdev_get_histogram with SPDK's parameters and result fields, so its scripts
 * (iostat.py, histogram.py) read vnvmed's counters as they read its own. Ticks are the TSC's (tick_rate says how many per second). io_time and weighted_io_time
 * are exact here (integrated at each submission and completion), not sampled
 * by a poller, so they are always present; queue_depth_polling_period is 0.
 * Their unit is microseconds, as in SPDK.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "common/ticks.h"
#include "rpc_internal.h"
#include "vnvme/bdev.h"
#include "vnvme/bdev_stat.h"

static const struct rpc_param get_iostat_params[] = {
    {"name", RPC_STRING, false},
    {"per_channel", RPC_BOOL, false},
    RPC_PARAMS_END,
};
static const struct rpc_param reset_iostat_params[] = {
    {"name", RPC_STRING, false},
    {"mode", RPC_STRING, false},
    RPC_PARAMS_END,
};

static const struct rpc_param enable_histogram_params[] = {
    {"name", RPC_STRING, true},
    {"enable", RPC_BOOL, true},
    RPC_PARAMS_END,
};
static const struct rpc_param name_params[] = {
    {"name", RPC_STRING, true},
    RPC_PARAMS_END,
};

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
    json_object_object_add(o, key, json_object_new_uint64(v));
}

/* The fields SPDK writes for one bdev or one channel. */
static void stat_fields(struct json_object *o, const struct vnvme_bdev_iostat *s)
{
    static const char *const kind[VNVME_STAT_NR_KINDS] = {"read", "write", "unmap"};
    static const char *const bytes_key[VNVME_STAT_NR_KINDS] = {"bytes_read", "bytes_written", "bytes_unmapped"};
    static const char *const ops_key[VNVME_STAT_NR_KINDS] = {"num_read_ops", "num_write_ops", "num_unmap_ops"};
    char key[48];
    for (int k = 0; k < VNVME_STAT_NR_KINDS; k++) {
        add_u64(o, bytes_key[k], s->bytes[k]);
        add_u64(o, ops_key[k], s->ops[k]);
    }
    add_u64(o, "bytes_copied", 0);
    add_u64(o, "num_copy_ops", 0);
    for (int k = 0; k < VNVME_STAT_NR_KINDS; k++) {
        snprintf(key, sizeof(key), "%s_latency_ticks", kind[k]);
        add_u64(o, key, s->latency_ticks[k]);
        snprintf(key, sizeof(key), "max_%s_latency_ticks", kind[k]);
        add_u64(o, key, s->max_latency_ticks[k]);
        snprintf(key, sizeof(key), "min_%s_latency_ticks", kind[k]);
        add_u64(o, key, s->min_latency_ticks[k] == UINT64_MAX ? 0 : s->min_latency_ticks[k]);
    }
    add_u64(o, "copy_latency_ticks", 0);
    add_u64(o, "max_copy_latency_ticks", 0);
    add_u64(o, "min_copy_latency_ticks", 0);
    struct json_object *err = json_object_new_object();
    for (int e = 0; e < VNVME_BDEV_NR_ERR_KINDS; e++)
        if (s->errors[e])
            add_u64(err, vnvme_bdev_err_kind_name((enum vnvme_bdev_err_kind)e), s->errors[e]);
    json_object_object_add(o, "io_error", err);
    add_u64(o, "queue_depth_polling_period", 0);
    add_u64(o, "queue_depth", s->queue_depth);
    add_u64(o, "io_time", vnvme_ticks_to_us(s->io_time_ticks));
    add_u64(o, "weighted_io_time", vnvme_ticks_to_us(s->weighted_io_time_ticks));
}

static struct json_object *bdev_json(struct vnvme_bdev *b)
{
    struct vnvme_bdev_iostat s;
    vnvme_bdev_iostat(b, &s);
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(b->name));
    stat_fields(o, &s);
    return o;
}

static void channel_json(unsigned id, const struct vnvme_bdev_iostat *s, void *arg)
{
    struct json_object *o = json_object_new_object();
    add_u64(o, "thread_id", id);
    stat_fields(o, s);
    json_object_array_add(arg, o);
}

static struct json_object *bdev_get_iostat(struct json_object *params, struct rpc_err *e)
{
    const char *name = rpc_get_string(params, "name");
    bool per_channel = rpc_get_bool(params, "per_channel", false);
    struct vnvme_bdev *only = NULL;
    if (name) {
        only = vnvme_bdev_get(name);
        if (!only) {
            rpc_set_errno(e, -ENODEV);
            return NULL;
        }
    }
    if (per_channel && !only) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "per_channel needs a bdev name");
        return NULL;
    }
    struct json_object *r = json_object_new_object();
    add_u64(r, "tick_rate", vnvme_bdev_stat_tick_rate());
    add_u64(r, "ticks", vnvme_bdev_stat_ticks());
    if (per_channel) {
        json_object_object_add(r, "name", json_object_new_string(only->name));
        struct json_object *chans = json_object_new_array();
        vnvme_bdev_iostat_channels(only, channel_json, chans);
        json_object_object_add(r, "channels", chans);
        return r;
    }
    struct json_object *arr = json_object_new_array();
    for (struct vnvme_bdev *b = vnvme_bdev_first(); b; b = vnvme_bdev_next(b))
        if (!only || b == only)
            json_object_array_add(arr, bdev_json(b));
    json_object_object_add(r, "bdevs", arr);
    return r;
}

static struct json_object *bdev_reset_iostat(struct json_object *params, struct rpc_err *e)
{
    const char *name = rpc_get_string(params, "name");
    const char *mode = rpc_get_string(params, "mode");
    bool maxmin;
    if (!mode || strcmp(mode, "all") == 0) {
        maxmin = false;
    } else if (strcmp(mode, "maxmin") == 0) {
        maxmin = true;
    } else {
        rpc_set_error(e, RPC_INVALID_PARAMS, "mode must be \"all\" or \"maxmin\"");
        return NULL;
    }
    if (name && !vnvme_bdev_get(name)) {
        rpc_set_errno(e, -ENODEV);
        return NULL;
    }
    for (struct vnvme_bdev *b = vnvme_bdev_first(); b; b = vnvme_bdev_next(b))
        if (!name || strcmp(b->name, name) == 0)
            vnvme_bdev_iostat_reset(b, maxmin);
    return json_object_new_boolean(1);
}

static struct json_object *bdev_enable_histogram(struct json_object *params, struct rpc_err *e)
{
    struct vnvme_bdev *b = vnvme_bdev_get(rpc_get_string(params, "name"));
    if (!b) {
        rpc_set_errno(e, -ENODEV);
        return NULL;
    }
    int rc = vnvme_bdev_histogram_enable(b, rpc_get_bool(params, "enable", false));
    if (rc < 0) {
        rpc_set_errno(e, rc);
        return NULL;
    }
    return json_object_new_boolean(1);
}

/* RFC 4648 base64, what SPDK's histogram.py decodes. */
static char *base64(const uint8_t *in, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((len + 2) / 3 * 4 + 1), *p = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);
        *p++ = abc[v >> 18 & 63];
        *p++ = abc[v >> 12 & 63];
        *p++ = i + 1 < len ? abc[v >> 6 & 63] : '=';
        *p++ = i + 2 < len ? abc[v & 63] : '=';
    }
    *p = '\0';
    return out;
}

/* The buckets as little-endian 64-bit counts (SPDK's wire form), base64 encoded. */
static struct json_object *bdev_get_histogram(struct json_object *params, struct rpc_err *e)
{
    struct vnvme_bdev *b = vnvme_bdev_get(rpc_get_string(params, "name"));
    if (!b) {
        rpc_set_errno(e, -ENODEV);
        return NULL;
    }
    if (!vnvme_bdev_histogram_enabled(b)) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "histogram not enabled for %s (bdev_enable_histogram)", b->name);
        return NULL;
    }
    uint64_t *buckets = malloc(VNVME_BDEV_HIST_BUCKETS * sizeof(uint64_t));
    uint8_t *wire = malloc(VNVME_BDEV_HIST_BUCKETS * 8);
    char *text = NULL;
    if (buckets && wire) {
        vnvme_bdev_histogram(b, buckets);
        for (unsigned i = 0; i < VNVME_BDEV_HIST_BUCKETS; i++)
            for (unsigned k = 0; k < 8; k++)
                wire[i * 8 + k] = (uint8_t)(buckets[i] >> (8 * k));
        text = base64(wire, VNVME_BDEV_HIST_BUCKETS * 8);
    }
    free(buckets);
    free(wire);
    if (!text) {
        rpc_set_errno(e, -ENOMEM);
        return NULL;
    }
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "histogram", json_object_new_string(text));
    free(text);
    add_u64(r, "bucket_shift", VNVME_BDEV_HIST_SHIFT);
    add_u64(r, "tsc_rate", vnvme_bdev_stat_tick_rate());
    /* Newer SPDK names the same layout by granularity and the ranges it covers. */
    add_u64(r, "granularity", VNVME_BDEV_HIST_SHIFT);
    add_u64(r, "min_range", 0);
    add_u64(r, "max_range", VNVME_BDEV_HIST_RANGES - 1);
    return r;
}

const struct rpc_method rpc_iostat_methods[] = {
    {"bdev_get_iostat", bdev_get_iostat, get_iostat_params},
    {"bdev_reset_iostat", bdev_reset_iostat, reset_iostat_params},
    {"bdev_enable_histogram", bdev_enable_histogram, enable_histogram_params},
    {"bdev_get_histogram", bdev_get_histogram, name_params},
    {NULL, NULL, NULL},
};
