/* SPDX-License-Identifier: MIT */
/*
 * What the reactors and controllers are doing, with SPDK's method names and
 * result fields: framework_get_reactors, nvmf_get_stats (a reactor is SPDK's
 * poll group), nvmf_subsystem_get_controllers and nvmf_subsystem_get_qpairs.
 * Everything is read on the reactor that owns it (reactor_call), so nothing
 * here touches a controller from another thread.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>

#include "common/ticks.h"
#include "nvmet.h"
#include "rpc_internal.h"
#include "transport_vfio_user.h"
#include "vnvmed.h"

static const struct rpc_param no_params[] = {RPC_PARAMS_END};
static const struct rpc_param nqn_params[] = {
    {"nqn", RPC_STRING, true},
    {"tgt_name", RPC_IGNORED, false},
    RPC_PARAMS_END,
};
static const struct rpc_param get_stats_params[] = {
    {"tgt_name", RPC_IGNORED, false},
    RPC_PARAMS_END,
};

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
    json_object_object_add(o, key, json_object_new_uint64(v));
}

/* {"tick_rate": ..., key: [row(each reactor's figures)]}: the shape of both views of the reactors. */
static struct json_object *per_reactor(const char *key, struct json_object *(*row)(const struct reactor_stats *st))
{
    struct json_object *r = json_object_new_object(), *arr = json_object_new_array();
    add_u64(r, "tick_rate", vnvme_ticks_hz());
    for (int i = 0; i < reactors_count(); i++) {
        struct reactor_stats st;
        reactor_get_stats(reactor_get(i), &st);
        json_object_array_add(arr, row(&st));
    }
    json_object_object_add(r, key, arr);
    return r;
}

static void add_loop_figures(struct json_object *o, const struct reactor_stats *st)
{
    add_u64(o, "busy", st->busy_ticks);
    add_u64(o, "idle", st->idle_ticks);
    add_u64(o, "polls", st->polls);
    add_u64(o, "polls_with_work", st->polls_with_work);
    add_u64(o, "sleeps", st->sleeps);
    add_u64(o, "wakeups", st->wakeups);
}

static struct json_object *reactor_row(const struct reactor_stats *st)
{
    struct json_object *o = json_object_new_object();
    add_u64(o, "lcore", (uint64_t)st->cpu);
    add_loop_figures(o, st);
    json_object_object_add(o, "in_interrupt", json_object_new_boolean(0));
    struct json_object *threads = json_object_new_array(), *t = json_object_new_object();
    char name[32], mask[24];
    snprintf(name, sizeof(name), "reactor_%d", st->index);
    snprintf(mask, sizeof(mask), "0x%llx", 1ull << (st->cpu & 63));
    json_object_object_add(t, "name", json_object_new_string(name));
    add_u64(t, "id", (uint64_t)st->index + 1);
    json_object_object_add(t, "cpumask", json_object_new_string(mask));
    add_u64(t, "elapsed", st->busy_ticks + st->idle_ticks);
    json_object_array_add(threads, t);
    json_object_object_add(o, "lw_threads", threads);
    return o;
}

static struct json_object *poll_group_row(const struct reactor_stats *st)
{
    struct json_object *o = json_object_new_object();
    char name[40];
    snprintf(name, sizeof(name), "nvmf_tgt_poll_group_%03d", st->index);
    json_object_object_add(o, "name", json_object_new_string(name));
    add_u64(o, "controllers", st->ctrlrs);
    add_u64(o, "controllers_polled_rarely", st->ctrlrs_polled_rarely); /* beyond SPDK: idle ones (reactor.c) */
    add_u64(o, "connected_clients", st->connected);
    add_u64(o, "current_admin_qpairs", st->admin_qpairs);
    add_u64(o, "current_io_qpairs", st->io_qpairs);
    add_u64(o, "pending_bdev_io", st->in_bdev);
    add_u64(o, "completed_nvme_io", st->completed_io);
    /* Beyond SPDK: how the completions reached the hosts. */
    add_u64(o, "completions_posted", st->cqes_posted);
    add_u64(o, "interrupts_raised", st->irqs_raised);
    add_u64(o, "interrupts_coalesced", st->irqs_coalesced); /* completions that shared another's interrupt */
    add_u64(o, "cq_full_holds", st->cq_full_holds);
    add_u64(o, "doorbell_buffer_arms", st->dbbuf_arms);
    add_loop_figures(o, st);
    struct json_object *tr = json_object_new_array(), *t = json_object_new_object();
    json_object_object_add(t, "trtype", json_object_new_string("VFIOUSER"));
    json_object_array_add(tr, t);
    json_object_object_add(o, "transports", tr);
    return o;
}

static struct json_object *framework_get_reactors(struct json_object *params, struct rpc_err *e)
{
    (void)params;
    (void)e;
    return per_reactor("reactors", reactor_row);
}

static struct json_object *nvmf_get_stats(struct json_object *params, struct rpc_err *e)
{
    (void)params;
    (void)e;
    return per_reactor("poll_groups", poll_group_row);
}

struct collect {
    struct json_object *arr;
    bool qpairs;
};

static struct json_object *listen_address(struct nvmet_vfio_user_ctrlr *vc)
{
    struct json_object *la = json_object_new_object();
    json_object_object_add(la, "trtype", json_object_new_string("VFIOUSER"));
    json_object_object_add(la, "adrfam", json_object_new_string("IPv4"));
    json_object_object_add(la, "traddr", json_object_new_string(nvmet_vfio_user_socket_path(vc)));
    json_object_object_add(la, "trsvcid", json_object_new_string(""));
    return la;
}

/* On the controller's reactor. vfio-user has no host NQN: the client is its socket connection. */
static void collect_one(struct nvmet_vfio_user_ctrlr *vc, void *arg)
{
    struct collect *cl = arg;
    struct nvmet_ctrlr *c = nvmet_vfio_user_nvme(vc);
    struct ctrlr_stats st;
    ctrlr_get_stats(vc, &st);
    if (!st.connected)
        return; /* no client: no controller as SPDK counts them */
    if (!cl->qpairs) {
        struct json_object *o = json_object_new_object();
        add_u64(o, "cntlid", st.cntlid);
        json_object_object_add(o, "hostnqn", json_object_new_string(""));
        json_object_object_add(o, "hostid", json_object_new_string("00000000-0000-0000-0000-000000000000"));
        add_u64(o, "num_io_qpairs", st.io_qpairs);
        json_object_object_add(o, "enabled", json_object_new_boolean(st.enabled));
        json_object_object_add(o, "listen_address", listen_address(vc));
        json_object_array_add(cl->arr, o);
        return;
    }
    for (uint32_t q = 0; q <= NVMET_MAX_IO_QUEUES; q++) {
        const struct nvmet_sq *sq = &c->sqs[q];
        if (!sq->created)
            continue;
        struct json_object *o = json_object_new_object();
        add_u64(o, "cntlid", c->cntlid);
        add_u64(o, "qid", q);
        json_object_object_add(o, "state", json_object_new_string(sq->deleting ? "deleting" : "active"));
        add_u64(o, "size", sq->size);
        add_u64(o, "cqid", sq->cqid);
        add_u64(o, "in_flight", sq->in_flight);
        json_object_object_add(o, "listen_address", listen_address(vc));
        json_object_array_add(cl->arr, o);
    }
}

static struct json_object *subsystem_walk(struct json_object *params, struct rpc_err *e, bool qpairs)
{
    struct tgt_subsystem *ts = tgt_subsystem_find(rpc_get_string(params, "nqn"));
    if (!ts) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "Invalid parameters: no subsystem %s", rpc_get_string(params, "nqn"));
        return NULL;
    }
    struct collect cl = {json_object_new_array(), qpairs};
    if (ts->reactor)
        reactor_for_each_ctrlr(ts->reactor, ts->ss, collect_one, &cl);
    return cl.arr;
}

static struct json_object *nvmf_subsystem_get_controllers(struct json_object *params, struct rpc_err *e)
{
    return subsystem_walk(params, e, false);
}

static struct json_object *nvmf_subsystem_get_qpairs(struct json_object *params, struct rpc_err *e)
{
    return subsystem_walk(params, e, true);
}

const struct rpc_method rpc_nvmf_stats_methods[] = {
    {"framework_get_reactors", framework_get_reactors, no_params},
    {"nvmf_get_stats", nvmf_get_stats, get_stats_params},
    {"nvmf_subsystem_get_controllers", nvmf_subsystem_get_controllers, nqn_params},
    {"nvmf_subsystem_get_qpairs", nvmf_subsystem_get_qpairs, nqn_params},
    {NULL, NULL, NULL},
};
