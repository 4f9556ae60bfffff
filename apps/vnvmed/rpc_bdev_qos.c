/* SPDX-License-Identifier: MIT */
/*
 * bdev_set_qos_limit with SPDK's parameters: the limits given change, those
 * not given stay, 0 removes one. burst_ms (ours) sets the burst allowance. bdev_get_bdevs shows them as
 * assigned_rate_limits and save_config writes them back (config.c).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "rpc_internal.h"
#include "vnvme/bdev.h"
#include "vnvme/bdev_qos.h"

static const struct rpc_param set_qos_params[] = {
    {"name", RPC_STRING, true},
    {"rw_ios_per_sec", RPC_UINT64, false},
    {"rw_mbytes_per_sec", RPC_UINT64, false},
    {"r_mbytes_per_sec", RPC_UINT64, false},
    {"w_mbytes_per_sec", RPC_UINT64, false},
    {"burst_ms", RPC_UINT32, false}, /* ours: see vnvme/bdev_qos.h */
    RPC_PARAMS_END,
};

static struct json_object *bdev_set_qos_limit(struct json_object *params, struct rpc_err *e)
{
    struct vnvme_bdev *b = vnvme_bdev_get(rpc_get_string(params, "name"));
    if (!b) {
        rpc_set_errno(e, -ENODEV);
        return NULL;
    }
    uint64_t limits[VNVME_QOS_NR_LIMITS];
    bool any = false;
    for (int l = 0; l < VNVME_QOS_NR_LIMITS; l++) {
        limits[l] = rpc_get_u64(params, vnvme_qos_limit_name((enum vnvme_qos_limit)l), UINT64_MAX);
        any |= limits[l] != UINT64_MAX;
    }
    if (!any && !json_object_object_get_ex(params, "burst_ms", NULL)) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "no limit given (rw_ios_per_sec, rw_mbytes_per_sec, "
                                             "r_mbytes_per_sec or w_mbytes_per_sec)");
        return NULL;
    }
    /* Beyond any device (and where the schedule's arithmetic would lose its precision). */
    for (int l = 0; l < VNVME_QOS_NR_LIMITS; l++) {
        if (limits[l] != UINT64_MAX && limits[l] > (l == VNVME_QOS_RW_IOPS ? 1000000000ull : 100000000ull)) {
            rpc_set_error(e, RPC_INVALID_PARAMS, "%s too large", vnvme_qos_limit_name((enum vnvme_qos_limit)l));
            return NULL;
        }
    }
    uint64_t burst = rpc_get_u64(params, "burst_ms", UINT64_MAX);
    if (burst != UINT64_MAX && burst > 60000) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "burst_ms above a minute");
        return NULL;
    }
    int rc = vnvme_bdev_qos_set(b, limits);
    if (rc < 0) {
        rpc_set_errno(e, rc);
        return NULL;
    }
    if (burst != UINT64_MAX)
        vnvme_bdev_qos_set_burst(b, (uint32_t)burst);
    return json_object_new_boolean(1);
}

const struct rpc_method rpc_qos_methods[] = {
    {"bdev_set_qos_limit", bdev_set_qos_limit, set_qos_params},
    {NULL, NULL, NULL},
};
