/* SPDX-License-Identifier: MIT */
/*
 * Rate limits over RPC.
 *   bdev_set_qos_limit     SPDK's method and parameters: a bdev's limits, over
 *                          every namespace and controller that reaches it.
 *   nvmf_ns_set_qos_limit  ours: one namespace's limits (nqn, nsid), over every
 *                          controller of its subsystem, besides its bdev's; an
 *                          I/O waits for its turn on both.
 * The limits given change, those not given stay, 0 removes one; burst_ms
 * (ours) sets the burst allowance (vnvme/bdev_qos.h). bdev_get_bdevs and
 * nvmf_get_subsystems show them as assigned_rate_limits, save_config writes
 * them back after the bdev or namespace (config.c).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "rpc_internal.h"
#include "vnvme/bdev.h"
#include "vnvme/bdev_qos.h"
#include "vnvmed.h"

#define LIMIT_PARAMS                                                                                                   \
    {"rw_ios_per_sec", RPC_UINT64, false}, {"rw_mbytes_per_sec", RPC_UINT64, false},                                 \
        {"r_mbytes_per_sec", RPC_UINT64, false}, {"w_mbytes_per_sec", RPC_UINT64, false},                            \
        {"burst_ms", RPC_UINT32, false}

static const struct rpc_param set_qos_params[] = {
    {"name", RPC_STRING, true},
    LIMIT_PARAMS,
    RPC_PARAMS_END,
};
static const struct rpc_param set_ns_qos_params[] = {
    {"nqn", RPC_STRING, true},
    {"nsid", RPC_UINT32, true},
    LIMIT_PARAMS,
    RPC_PARAMS_END,
};

struct qos_request {
    uint64_t limits[VNVME_QOS_NR_LIMITS]; /* UINT64_MAX: not given */
    uint64_t burst_ms;                    /* UINT64_MAX: not given */
};

static bool parse_limits(struct json_object *params, struct qos_request *r, struct rpc_err *e)
{
    bool any = false;
    for (int l = 0; l < VNVME_QOS_NR_LIMITS; l++) {
        r->limits[l] = rpc_get_u64(params, vnvme_qos_limit_name((enum vnvme_qos_limit)l), UINT64_MAX);
        any |= r->limits[l] != UINT64_MAX;
    }
    r->burst_ms = rpc_get_u64(params, "burst_ms", UINT64_MAX);
    if (!any && r->burst_ms == UINT64_MAX) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "no limit given (rw_ios_per_sec, rw_mbytes_per_sec, "
                                             "r_mbytes_per_sec or w_mbytes_per_sec)");
        return false;
    }
    /* Beyond any device (and where the schedule's arithmetic would lose its precision). */
    for (int l = 0; l < VNVME_QOS_NR_LIMITS; l++) {
        if (r->limits[l] != UINT64_MAX && r->limits[l] > (l == VNVME_QOS_RW_IOPS ? 1000000000ull : 100000000ull)) {
            rpc_set_error(e, RPC_INVALID_PARAMS, "%s too large", vnvme_qos_limit_name((enum vnvme_qos_limit)l));
            return false;
        }
    }
    if (r->burst_ms != UINT64_MAX && r->burst_ms > 60000) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "burst_ms above a minute");
        return false;
    }
    return true;
}

static void apply(struct vnvme_qos *q, const struct qos_request *r)
{
    vnvme_qos_set(q, r->limits);
    if (r->burst_ms != UINT64_MAX)
        vnvme_qos_set_burst(q, (uint32_t)r->burst_ms);
}

static struct json_object *bdev_set_qos_limit(struct json_object *params, struct rpc_err *e)
{
    struct vnvme_bdev *b = vnvme_bdev_get(rpc_get_string(params, "name"));
    if (!b) {
        rpc_set_errno(e, -ENODEV);
        return NULL;
    }
    struct qos_request r;
    if (!parse_limits(params, &r, e))
        return NULL;
    int rc = vnvme_bdev_qos_set(b, r.limits); /* makes the bdev's set of limits when it has none yet */
    if (rc < 0) {
        rpc_set_errno(e, rc);
        return NULL;
    }
    if (r.burst_ms != UINT64_MAX)
        vnvme_bdev_qos_set_burst(b, (uint32_t)r.burst_ms);
    return json_object_new_boolean(1);
}

/*
 * The namespace belongs to its subsystem's reactor, but its limits are only
 * read there: they are made complete here and then published with one store,
 * and changed with the same atomic stores the bdev's limits use.
 */
static struct json_object *nvmf_ns_set_qos_limit(struct json_object *params, struct rpc_err *e)
{
    struct tgt_subsystem *ts = tgt_subsystem_find(rpc_get_string(params, "nqn"));
    uint64_t nsid = rpc_get_u64(params, "nsid", 0);
    struct nvmet_ns *ns = ts && nsid >= 1 && nsid <= NVMET_MAX_NSID ? ts->ss->ns[nsid] : NULL;
    if (!ns) {
        rpc_set_error(e, -ENODEV, ts ? "no namespace %llu" : "no such subsystem", (unsigned long long)nsid);
        return NULL;
    }
    struct qos_request r;
    if (!parse_limits(params, &r, e))
        return NULL;
    struct vnvme_qos *q = __atomic_load_n(&ns->qos, __ATOMIC_ACQUIRE);
    if (q) {
        apply(q, &r);
        return json_object_new_boolean(1);
    }
    q = vnvme_qos_create();
    if (!q) {
        rpc_set_errno(e, -ENOMEM);
        return NULL;
    }
    apply(q, &r);
    __atomic_store_n(&ns->qos, q, __ATOMIC_RELEASE);
    return json_object_new_boolean(1);
}

struct json_object *rpc_qos_save_params(const struct vnvme_qos *q)
{
    uint64_t limits[VNVME_QOS_NR_LIMITS];
    vnvme_qos_get(q, limits);
    struct json_object *p = NULL;
    for (int l = 0; l < VNVME_QOS_NR_LIMITS; l++) {
        if (!limits[l])
            continue;
        if (!p)
            p = json_object_new_object();
        json_object_object_add(p, vnvme_qos_limit_name((enum vnvme_qos_limit)l), json_object_new_uint64(limits[l]));
    }
    if (p && vnvme_qos_burst(q))
        json_object_object_add(p, "burst_ms", json_object_new_uint64(vnvme_qos_burst(q)));
    return p;
}

const struct rpc_method rpc_qos_methods[] = {
    {"bdev_set_qos_limit", bdev_set_qos_limit, set_qos_params},
    {"nvmf_ns_set_qos_limit", nvmf_ns_set_qos_limit, set_ns_qos_params},
    {NULL, NULL, NULL},
};
