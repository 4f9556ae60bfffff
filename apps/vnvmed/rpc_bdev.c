/* SPDX-License-Identifier: MIT */
/* bdev_* methods: create, delete and list block devices (SPDK names and parameter shapes). */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rpc_internal.h"
#include "vnvme/bdev.h"
#include "vnvme/bdev_rbd.h"
#include "handover.h"
#include "vnvmed.h"

/* SPDK malloc/null features we do not have: configs saved by SPDK carry them as zeroes. */
#define SPDK_MD_PARAMS                                                                                                 \
    {"md_size", RPC_ZERO, false}, {"md_interleave", RPC_ZERO, false}, {"dif_type", RPC_ZERO, false},                 \
        {"dif_is_head_of_md", RPC_ZERO, false}, {"dif_pi_format", RPC_ZERO, false},                                  \
        {"optimal_io_boundary", RPC_IGNORED, false}, {"physical_block_size", RPC_IGNORED, false}

/* numa_id -1 is SPDK's "any node" (what its save_config writes); memory here is the process's own. */
static const struct rpc_param malloc_create_params[] = {
    {"name", RPC_STRING, false}, {"num_blocks", RPC_UINT64, true}, {"block_size", RPC_UINT32, true},
    {"uuid", RPC_STRING, false}, {"numa_id", RPC_IGNORED, false}, SPDK_MD_PARAMS, RPC_PARAMS_END,
};
/* The preferred_* and optimal_write_size hints shape SPDK's I/O splitting; vnvmed does not split. */
static const struct rpc_param null_create_params[] = {
    {"name", RPC_STRING, true}, {"num_blocks", RPC_UINT64, true}, {"block_size", RPC_UINT32, true},
    {"uuid", RPC_STRING, false}, SPDK_MD_PARAMS,
    {"preferred_write_alignment", RPC_IGNORED, false}, {"preferred_write_granularity", RPC_IGNORED, false},
    {"optimal_write_size", RPC_IGNORED, false}, {"preferred_unmap_alignment", RPC_IGNORED, false},
    {"preferred_unmap_granularity", RPC_IGNORED, false}, RPC_PARAMS_END,
};
static const struct rpc_param uring_create_params[] = {
    {"name", RPC_STRING, true}, {"filename", RPC_STRING, true}, {"block_size", RPC_UINT32, false},
    {"uuid", RPC_STRING, false}, RPC_PARAMS_END,
};
/* timeout_ms is ours (SPDK has none): librados' operation timeouts, see lib/bdev/bdev_rbd.c. */
static const struct rpc_param rbd_register_cluster_params[] = {
    {"name", RPC_STRING, true},         {"user_id", RPC_STRING, false},    {"config_param", RPC_OBJECT, false},
    {"config_file", RPC_STRING, false}, {"key_file", RPC_STRING, false},   {"core_mask", RPC_IGNORED, false},
    {"timeout_ms", RPC_UINT32, false},  RPC_PARAMS_END,
};
static const struct rpc_param rbd_create_params[] = {
    {"name", RPC_STRING, false},        {"pool_name", RPC_STRING, true},  {"rbd_name", RPC_STRING, true},
    {"block_size", RPC_UINT32, true},   {"user_id", RPC_STRING, false},   {"config", RPC_OBJECT, false},
    {"cluster_name", RPC_STRING, false}, {"uuid", RPC_STRING, false},     {"timeout_ms", RPC_UINT32, false},
    {"read_only", RPC_ZERO, false},     RPC_PARAMS_END,
};
static const struct rpc_param rbd_resize_params[] = {
    {"name", RPC_STRING, true},
    {"new_size", RPC_UINT64, true},
    RPC_PARAMS_END,
};
static const struct rpc_param rbd_get_clusters_params[] = {
    {"name", RPC_STRING, false},
    RPC_PARAMS_END,
};
static const struct rpc_param delay_create_params[] = {
    {"name", RPC_STRING, true},          {"base_bdev_name", RPC_STRING, true},    {"avg_read_latency", RPC_UINT64, true},
    {"p99_read_latency", RPC_UINT64, true}, {"avg_write_latency", RPC_UINT64, true}, {"p99_write_latency", RPC_UINT64, true},
    {"uuid", RPC_STRING, false},         RPC_PARAMS_END,
};
static const struct rpc_param delay_update_params[] = {
    {"delay_bdev_name", RPC_STRING, true},
    {"latency_type", RPC_STRING, true},
    {"latency_us", RPC_UINT64, true},
    RPC_PARAMS_END,
};
static const struct rpc_param no_params[] = {RPC_PARAMS_END};
static const struct rpc_param name_params[] = {
    {"name", RPC_STRING, true},
    RPC_PARAMS_END,
};
static const struct rpc_param get_bdevs_params[] = {
    {"name", RPC_STRING, false},
    {"timeout", RPC_IGNORED, false},
    RPC_PARAMS_END,
};

/* Returns false (error set) for a malformed uuid; *uuid stays NULL when none was given. */
static bool parse_uuid_param(struct json_object *params, uint8_t buf[16], const uint8_t **uuid, struct rpc_err *e)
{
    const char *s = rpc_get_string(params, "uuid");
    *uuid = NULL;
    if (s == NULL)
        return true;
    if (!rpc_parse_uuid(s, buf)) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "invalid uuid: %s", s);
        return false;
    }
    *uuid = buf;
    return true;
}

static struct json_object *created(int rc, struct vnvme_bdev *b, struct rpc_err *e)
{
    if (rc < 0) {
        rpc_set_errno(e, rc);
        return NULL;
    }
    return json_object_new_string(b->name);
}

/* SPDK names unnamed malloc bdevs Malloc0, Malloc1, ...: take the first name not in use. */
static void next_malloc_name(char *out, size_t len)
{
    for (unsigned i = 0;; i++) {
        snprintf(out, len, "Malloc%u", i);
        if (vnvme_bdev_get(out) == NULL)
            return;
    }
}

static struct json_object *bdev_malloc_create(struct json_object *params, struct rpc_err *e)
{
    uint8_t ubuf[16];
    const uint8_t *uuid;
    char autoname[32];
    struct vnvme_bdev *b = NULL;
    if (!parse_uuid_param(params, ubuf, &uuid, e))
        return NULL;
    const char *name = rpc_get_string(params, "name");
    if (name == NULL) {
        next_malloc_name(autoname, sizeof(autoname));
        name = autoname;
    }
    /* During a live upgrade the bdev continues on the running process's memory. */
    int fd = takeover_bdev_fd(name);
    int rc = fd >= 0 ? vnvme_bdev_malloc_create_from_fd(name, rpc_get_u64(params, "num_blocks", 0),
                                                        (uint32_t)rpc_get_u64(params, "block_size", 0), uuid, fd, &b)
                     : vnvme_bdev_malloc_create(name, rpc_get_u64(params, "num_blocks", 0),
                                                (uint32_t)rpc_get_u64(params, "block_size", 0), uuid, &b);
    if (fd >= 0 && rc)
        close(fd);
    return created(rc, b, e);
}

static struct json_object *bdev_null_create(struct json_object *params, struct rpc_err *e)
{
    uint8_t ubuf[16];
    const uint8_t *uuid;
    struct vnvme_bdev *b = NULL;
    if (!parse_uuid_param(params, ubuf, &uuid, e))
        return NULL;
    int rc = vnvme_bdev_null_create(rpc_get_string(params, "name"), rpc_get_u64(params, "num_blocks", 0),
                                    (uint32_t)rpc_get_u64(params, "block_size", 0), uuid, &b);
    return created(rc, b, e);
}

static struct json_object *bdev_uring_create(struct json_object *params, struct rpc_err *e)
{
    uint8_t ubuf[16];
    const uint8_t *uuid;
    struct vnvme_bdev *b = NULL;
    if (!parse_uuid_param(params, ubuf, &uuid, e))
        return NULL;
    int rc = vnvme_bdev_uring_create(rpc_get_string(params, "name"), rpc_get_string(params, "filename"),
                                     (uint32_t)rpc_get_u64(params, "block_size", 0), uuid, &b);
    return created(rc, b, e);
}

/* Each delete method only deletes its own kind, like SPDK (-ENODEV otherwise). */
static struct json_object *delete_of_type(struct json_object *params, const char *type, struct rpc_err *e)
{
    const char *name = rpc_get_string(params, "name");
    struct vnvme_bdev *b = vnvme_bdev_get(name);
    if (b == NULL || b->ops == NULL || b->ops->type == NULL || strcmp(b->ops->type, type) != 0) {
        rpc_set_errno(e, -ENODEV);
        return NULL;
    }
    int rc = vnvme_bdev_delete(name);
    if (rc < 0) {
        rpc_set_errno(e, rc);
        return NULL;
    }
    return json_object_new_boolean(1);
}

static struct json_object *bdev_malloc_delete(struct json_object *params, struct rpc_err *e)
{
    return delete_of_type(params, "malloc", e);
}

static struct json_object *bdev_null_delete(struct json_object *params, struct rpc_err *e)
{
    return delete_of_type(params, "null", e);
}

static struct json_object *bdev_uring_delete(struct json_object *params, struct rpc_err *e)
{
    return delete_of_type(params, "uring", e);
}

/* ---- delay ---- */

static struct json_object *bdev_delay_create(struct json_object *params, struct rpc_err *e)
{
    uint8_t ubuf[16];
    const uint8_t *uuid;
    struct vnvme_bdev *b = NULL;
    if (!parse_uuid_param(params, ubuf, &uuid, e))
        return NULL;
    uint64_t lat[4] = {rpc_get_u64(params, "avg_read_latency", 0), rpc_get_u64(params, "p99_read_latency", 0),
                       rpc_get_u64(params, "avg_write_latency", 0), rpc_get_u64(params, "p99_write_latency", 0)};
    const char *base = rpc_get_string(params, "base_bdev_name");
    int rc = vnvme_bdev_delay_create(rpc_get_string(params, "name"), base, lat, uuid, &b);
    if (rc == -ENODEV) {
        rpc_set_error(e, rc, "no bdev named %s", base);
        return NULL;
    }
    if (rc == -EINVAL) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "invalid name, or a p99 latency below its average");
        return NULL;
    }
    return created(rc, b, e);
}

static struct json_object *bdev_delay_delete(struct json_object *params, struct rpc_err *e)
{
    return delete_of_type(params, "delay", e);
}

static struct json_object *bdev_delay_update_latency(struct json_object *params, struct rpc_err *e)
{
    const char *type = rpc_get_string(params, "latency_type");
    int rc = vnvme_bdev_delay_update_latency(rpc_get_string(params, "delay_bdev_name"), type,
                                             rpc_get_u64(params, "latency_us", 0));
    if (rc == -EINVAL) {
        rpc_set_error(e, RPC_INVALID_PARAMS,
                      "latency_type %s: expected avg_read, p99_read, avg_write or p99_write, with p99 >= avg", type);
        return NULL;
    }
    if (rc < 0) {
        rpc_set_errno(e, rc);
        return NULL;
    }
    return json_object_new_boolean(1);
}

/* ---- rbd ---- */

static bool rbd_available(struct rpc_err *e)
{
    if (vnvme_bdev_rbd_supported())
        return true;
    rpc_set_error(e, -ENOTSUP, "not built with RBD support");
    return false;
}

/* A config map of strings only: librados takes every value as text. */
static bool string_map_ok(struct json_object *map, const char *param, struct rpc_err *e)
{
    if (map == NULL)
        return true;
    json_object_object_foreach(map, key, val)
    {
        if (!json_object_is_type(val, json_type_string)) {
            rpc_set_error(e, RPC_INVALID_PARAMS, "parameter %s.%s must be a string", param, key);
            return false;
        }
    }
    return true;
}

static struct json_object *bdev_rbd_register_cluster(struct json_object *params, struct rpc_err *e)
{
    if (!rbd_available(e))
        return NULL;
    struct vnvme_rbd_conn_opts o = {
        .user_id = rpc_get_string(params, "user_id"),
        .config_file = rpc_get_string(params, "config_file"),
        .key_file = rpc_get_string(params, "key_file"),
        .config = rpc_get_object(params, "config_param"),
        .timeout_ms = (uint32_t)rpc_get_u64(params, "timeout_ms", 0),
    };
    if (!string_map_ok(o.config, "config_param", e))
        return NULL;
    const char *name = rpc_get_string(params, "name");
    int rc = vnvme_bdev_rbd_register_cluster(name, &o);
    if (rc < 0) {
        rpc_set_errno(e, rc);
        return NULL;
    }
    return json_object_new_string(name);
}

static struct json_object *bdev_rbd_unregister_cluster(struct json_object *params, struct rpc_err *e)
{
    if (!rbd_available(e))
        return NULL;
    int rc = vnvme_bdev_rbd_unregister_cluster(rpc_get_string(params, "name"));
    if (rc < 0) {
        rpc_set_errno(e, rc);
        return NULL;
    }
    return json_object_new_boolean(1);
}

static struct json_object *bdev_rbd_get_clusters_info(struct json_object *params, struct rpc_err *e)
{
    if (!rbd_available(e))
        return NULL;
    const char *name = rpc_get_string(params, "name");
    struct json_object *res = vnvme_bdev_rbd_clusters_json(name);
    if (res == NULL)
        rpc_set_errno(e, -ENOENT);
    return res;
}

/* SPDK names unnamed rbd bdevs Ceph0, Ceph1, ... */
static void next_rbd_name(char *out, size_t len)
{
    for (unsigned i = 0;; i++) {
        snprintf(out, len, "Ceph%u", i);
        if (vnvme_bdev_get(out) == NULL)
            return;
    }
}

static struct json_object *bdev_rbd_create(struct json_object *params, struct rpc_err *e)
{
    if (!rbd_available(e))
        return NULL;
    uint8_t ubuf[16];
    char autoname[32];
    struct vnvme_rbd_create_opts o = {
        .name = rpc_get_string(params, "name"),
        .pool_name = rpc_get_string(params, "pool_name"),
        .rbd_name = rpc_get_string(params, "rbd_name"),
        .block_size = (uint32_t)rpc_get_u64(params, "block_size", 0),
        .cluster_name = rpc_get_string(params, "cluster_name"),
        .conn = {.user_id = rpc_get_string(params, "user_id"),
                 .config = rpc_get_object(params, "config"),
                 .timeout_ms = (uint32_t)rpc_get_u64(params, "timeout_ms", 0)},
    };
    if (!parse_uuid_param(params, ubuf, &o.uuid, e) || !string_map_ok(o.conn.config, "config", e))
        return NULL;
    /* A shared connection's settings belong to its cluster, as in SPDK. */
    if (o.cluster_name != NULL && (o.conn.user_id || o.conn.config || o.conn.timeout_ms)) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "user_id, config and timeout_ms belong to the cluster: "
                                             "not allowed with cluster_name");
        return NULL;
    }
    if (o.name == NULL) {
        next_rbd_name(autoname, sizeof(autoname));
        o.name = autoname;
    }
    struct vnvme_bdev *b = NULL;
    int rc = vnvme_bdev_rbd_create(&o, &b);
    return created(rc, b, e);
}

static struct json_object *bdev_rbd_delete(struct json_object *params, struct rpc_err *e)
{
    if (!rbd_available(e))
        return NULL;
    return delete_of_type(params, "rbd", e);
}

/* new_size in MiB, as SPDK; growing only. Namespaces on the bdev report the change to their hosts. */
static struct json_object *bdev_rbd_resize(struct json_object *params, struct rpc_err *e)
{
    if (!rbd_available(e))
        return NULL;
    struct vnvme_bdev *b = vnvme_bdev_get(rpc_get_string(params, "name"));
    if (b == NULL || strcmp(b->ops->type, "rbd") != 0) {
        rpc_set_errno(e, -ENODEV);
        return NULL;
    }
    uint64_t mib = rpc_get_u64(params, "new_size", 0);
    if (mib > UINT64_MAX >> 20) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "new_size too large");
        return NULL;
    }
    uint64_t old = b->num_blocks;
    int rc = vnvme_bdev_rbd_resize(b, mib << 20);
    if (rc < 0) {
        rpc_set_errno(e, rc);
        return NULL;
    }
    if (b->num_blocks != old)
        tgt_bdev_resized(b);
    return json_object_new_boolean(1);
}

static struct json_object *bdev_get_bdevs(struct json_object *params, struct rpc_err *e)
{
    const char *name = rpc_get_string(params, "name");
    if (name != NULL) {
        struct vnvme_bdev *b = vnvme_bdev_get(name);
        if (b == NULL) {
            rpc_set_errno(e, -ENODEV);
            return NULL;
        }
        struct json_object *arr = json_object_new_array();
        json_object_array_add(arr, vnvme_bdev_to_json(b));
        return arr;
    }
    struct json_object *arr = json_object_new_array();
    for (struct vnvme_bdev *b = vnvme_bdev_first(); b != NULL; b = vnvme_bdev_next(b))
        json_object_array_add(arr, vnvme_bdev_to_json(b));
    return arr;
}

/* Examining (reading a new bdev's labels) is done before a create returns: nothing is left to wait for. */
static struct json_object *bdev_wait_for_examine(struct json_object *params, struct rpc_err *e)
{
    (void)params;
    (void)e;
    return json_object_new_boolean(1);
}

const struct rpc_method rpc_bdev_methods[] = {
    {"bdev_malloc_create", bdev_malloc_create, malloc_create_params},
    {"bdev_malloc_delete", bdev_malloc_delete, name_params},
    {"bdev_null_create", bdev_null_create, null_create_params},
    {"bdev_null_delete", bdev_null_delete, name_params},
    {"bdev_uring_create", bdev_uring_create, uring_create_params},
    {"bdev_uring_delete", bdev_uring_delete, name_params},
    {"bdev_delay_create", bdev_delay_create, delay_create_params},
    {"bdev_delay_delete", bdev_delay_delete, name_params},
    {"bdev_delay_update_latency", bdev_delay_update_latency, delay_update_params},
    {"bdev_rbd_register_cluster", bdev_rbd_register_cluster, rbd_register_cluster_params},
    {"bdev_rbd_unregister_cluster", bdev_rbd_unregister_cluster, name_params},
    {"bdev_rbd_get_clusters_info", bdev_rbd_get_clusters_info, rbd_get_clusters_params},
    {"bdev_rbd_create", bdev_rbd_create, rbd_create_params},
    {"bdev_rbd_delete", bdev_rbd_delete, name_params},
    {"bdev_rbd_resize", bdev_rbd_resize, rbd_resize_params},
    {"bdev_get_bdevs", bdev_get_bdevs, get_bdevs_params},
    {"bdev_wait_for_examine", bdev_wait_for_examine, no_params},
    {NULL, NULL, NULL},
};
