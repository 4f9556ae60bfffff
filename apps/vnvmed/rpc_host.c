/* SPDX-License-Identifier: MIT */
/*
 * Host role: bdev_nvme_* methods (SPDK names and parameters) attaching vfio-user
 * NVMe controllers with the userspace driver and exposing them through CUSE.
 *
 * Everything here runs on the control (RPC) thread, never on a reactor: attach
 * and detach block on the controller. Once registered, a controller's CUSE
 * devices are served by their own threads (lib/cuse) and a poller thread
 * handles its asynchronous events.
 */
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/owner.h"
#include "rpc_internal.h"
#include "vnvme/nvme_cuse.h"
#include "vnvme/nvme_host.h"

struct host_ctrlr {
    char name[64];
    char traddr[256];
    uint32_t num_io_queues; /* as asked (0: the driver's default), for save_config */
    uint64_t cuse_seq;      /* registration order, for save_config: CUSE indices go in that order */
    struct vnvme_ctrlr *ctrlr;
    _Atomic(struct vnvme_cuse_set *) cuse; /* read by the AER callback on the CUSE poller thread */
    /* The device nodes' owner, group and mode as bdev_nvme_cuse_register gave them ("": the default), for save_config. */
    char cuse_owner[64], cuse_group[64], cuse_mode[8];
    struct host_ctrlr *next;
};

/* What the nodes get when bdev_nvme_cuse_register does not say: vnvmed --cuse-owner/--cuse-group/--cuse-mode. */
static struct vnvme_cuse_node_perm cuse_default_perm = VNVME_CUSE_NODE_PERM_DEFAULT;

void rpc_host_set_cuse_default_perm(const struct vnvme_cuse_node_perm *perm)
{
    cuse_default_perm = *perm;
}

static struct host_ctrlr *host_ctrlrs; /* newest first */
static uint64_t cuse_seq_next = 1;

static struct host_ctrlr *find(const char *name)
{
    for (struct host_ctrlr *h = host_ctrlrs; h; h = h->next)
        if (strcmp(h->name, name) == 0)
            return h;
    return NULL;
}

static void on_aer(void *arg, uint32_t cdw0)
{
    struct host_ctrlr *h = arg;
    struct vnvme_cuse_set *s = atomic_load(&h->cuse);
    if (s)
        vnvme_cuse_aer_cb(s, cdw0);
}

static const struct rpc_param attach_params[] = {
    {"name", RPC_STRING, true}, {"trtype", RPC_STRING, true}, {"traddr", RPC_STRING, true},
    /* SPDK transport-id and connection fields with no meaning for a local vfio-user socket. */
    {"adrfam", RPC_IGNORED, false}, {"trsvcid", RPC_IGNORED, false}, {"subnqn", RPC_IGNORED, false},
    {"hostnqn", RPC_IGNORED, false}, {"hostaddr", RPC_IGNORED, false}, {"hostsvcid", RPC_IGNORED, false},
    {"priority", RPC_IGNORED, false}, {"prchk_reftag", RPC_IGNORED, false}, {"prchk_guard", RPC_IGNORED, false},
    {"hdgst", RPC_IGNORED, false}, {"ddgst", RPC_IGNORED, false}, {"fabrics_connect_timeout_us", RPC_IGNORED, false},
    {"multipath", RPC_IGNORED, false}, {"num_io_queues", RPC_UINT32, false}, {"ctrlr_loss_timeout_sec", RPC_IGNORED, false},
    {"reconnect_delay_sec", RPC_IGNORED, false}, {"fast_io_fail_timeout_sec", RPC_IGNORED, false},
    /* Authentication of a fabrics connection; a local socket is guarded by its file permissions. */
    {"psk", RPC_IGNORED, false}, {"dhchap_key", RPC_IGNORED, false}, {"dhchap_ctrlr_key", RPC_IGNORED, false},
    {"max_bdevs", RPC_IGNORED, false}, {"allow_unrecognized_csi", RPC_IGNORED, false},
    {"multipath_opts", RPC_IGNORED, false}, {"disable_sq_flow_control", RPC_IGNORED, false}, RPC_PARAMS_END,
};
static const struct rpc_param name_params[] = {
    {"name", RPC_STRING, true},
    /* SPDK's detach narrows to one path; there is only one path here. */
    {"trtype", RPC_IGNORED, false}, {"traddr", RPC_IGNORED, false}, {"adrfam", RPC_IGNORED, false},
    {"trsvcid", RPC_IGNORED, false}, {"subnqn", RPC_IGNORED, false}, {"hostaddr", RPC_IGNORED, false},
    {"hostsvcid", RPC_IGNORED, false}, RPC_PARAMS_END,
};
static const struct rpc_param cuse_params[] = {
    {"name", RPC_STRING, true},
    /* Beyond SPDK: who may open the device nodes (user and group names or ids, octal mode string). */
    {"owner", RPC_STRING, false},
    {"group", RPC_STRING, false},
    {"mode", RPC_STRING, false},
    /* SPDK's old parameter naming the device; the nodes are always /dev/vnvme/nvmeN[nM] here. */
    {"dev_path", RPC_IGNORED, false},
    RPC_PARAMS_END,
};
static const struct rpc_param cuse_unregister_params[] = {
    {"name", RPC_STRING, true},
    RPC_PARAMS_END,
};
static const struct rpc_param get_params[] = {
    {"name", RPC_STRING, false},
    RPC_PARAMS_END,
};

static struct json_object *attach_controller(struct json_object *params, struct rpc_err *e)
{
    const char *name = rpc_get_string(params, "name");
    const char *trtype = rpc_get_string(params, "trtype");
    const char *traddr = rpc_get_string(params, "traddr");
    if (strcasecmp(trtype, "vfiouser") != 0) {
        rpc_set_error(e, -EINVAL, "unsupported trtype %s (only VFIOUSER)", trtype);
        return NULL;
    }
    if (strlen(name) >= sizeof(((struct host_ctrlr *)0)->name) ||
        strlen(traddr) >= sizeof(((struct host_ctrlr *)0)->traddr)) {
        rpc_set_error(e, -EINVAL, "name or traddr too long");
        return NULL;
    }
    if (find(name)) {
        rpc_set_error(e, -EEXIST, "controller %s already exists", name);
        return NULL;
    }
    struct host_ctrlr *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        rpc_set_errno(e, -ENOMEM);
        return NULL;
    }
    snprintf(h->name, sizeof(h->name), "%s", name);
    snprintf(h->traddr, sizeof(h->traddr), "%s", traddr);
    h->num_io_queues = (uint32_t)rpc_get_u64(params, "num_io_queues", 0);
    char trid[300];
    snprintf(trid, sizeof(trid), "trtype:VFIOUSER traddr:%s", traddr);
    struct vnvme_ctrlr_opts opts = {.num_io_queues = h->num_io_queues,
                                    .aer_cb = on_aer, .aer_arg = h};
    int rc = vnvme_ctrlr_attach(trid, &opts, &h->ctrlr);
    if (rc) {
        free(h);
        rpc_set_error(e, rc, "cannot attach %s: %s", traddr, strerror(-rc));
        return NULL;
    }
    h->next = host_ctrlrs;
    host_ctrlrs = h;
    /* SPDK answers with the bdev names it created: one per namespace, NAMEn<nsid>. */
    struct json_object *arr = json_object_new_array();
    for (struct vnvme_ns *ns = vnvme_ctrlr_first_ns(h->ctrlr); ns; ns = vnvme_ctrlr_next_ns(h->ctrlr, ns)) {
        char bn[96];
        snprintf(bn, sizeof(bn), "%sn%u", h->name, vnvme_ns_id(ns));
        json_object_array_add(arr, json_object_new_string(bn));
    }
    return arr;
}

static void host_ctrlr_free(struct host_ctrlr *h)
{
    struct vnvme_cuse_set *s = atomic_exchange(&h->cuse, NULL);
    vnvme_cuse_unregister(s);
    vnvme_ctrlr_detach(h->ctrlr);
    free(h);
}

static struct json_object *detach_controller(struct json_object *params, struct rpc_err *e)
{
    const char *name = rpc_get_string(params, "name");
    for (struct host_ctrlr **pp = &host_ctrlrs; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            struct host_ctrlr *h = *pp;
            *pp = h->next;
            host_ctrlr_free(h);
            return json_object_new_boolean(1);
        }
    }
    rpc_set_errno(e, -ENODEV);
    return NULL;
}

static int add_cuse_dev(void *arg, const char *name, uint32_t nsid)
{
    (void)nsid;
    char path[96];
    snprintf(path, sizeof(path), "/dev/%s", name);
    json_object_array_add(arg, json_object_new_string(path));
    return 0;
}

static struct json_object *ctrlr_json(struct host_ctrlr *h)
{
    const struct nvme_id_ctrl *id = vnvme_ctrlr_data(h->ctrlr);
    struct json_object *trid = json_object_new_object();
    json_object_object_add(trid, "trtype", json_object_new_string("VFIOUSER"));
    json_object_object_add(trid, "traddr", json_object_new_string(h->traddr));
    json_object_object_add(trid, "subnqn", json_object_new_string(id->subnqn));
    struct json_object *c = json_object_new_object();
    json_object_object_add(c, "state", json_object_new_string(vnvme_ctrlr_is_failed(h->ctrlr) ? "failed" : "enabled"));
    json_object_object_add(c, "trid", trid);
    json_object_object_add(c, "cntlid", json_object_new_int(id->cntlid));
    struct vnvme_cuse_set *s = atomic_load(&h->cuse);
    if (s) {
        struct json_object *devs = json_object_new_array();
        vnvme_cuse_foreach_dev(s, add_cuse_dev, devs);
        json_object_object_add(c, "cuse_devices", devs);
    }
    struct json_object *ctrlrs = json_object_new_array();
    json_object_array_add(ctrlrs, c);
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(h->name));
    json_object_object_add(o, "ctrlrs", ctrlrs);
    return o;
}

static struct json_object *get_controllers(struct json_object *params, struct rpc_err *e)
{
    const char *name = rpc_get_string(params, "name");
    struct json_object *arr = json_object_new_array();
    for (struct host_ctrlr *h = host_ctrlrs; h; h = h->next)
        if (name == NULL || strcmp(name, h->name) == 0)
            json_object_array_add(arr, ctrlr_json(h));
    if (name != NULL && json_object_array_length(arr) == 0) {
        json_object_put(arr);
        rpc_set_errno(e, -ENODEV);
        return NULL;
    }
    return arr;
}

static struct json_object *cuse_register(struct json_object *params, struct rpc_err *e)
{
    struct host_ctrlr *h = find(rpc_get_string(params, "name"));
    if (h == NULL) {
        rpc_set_errno(e, -ENODEV);
        return NULL;
    }
    if (atomic_load(&h->cuse)) {
        rpc_set_error(e, -EEXIST, "controller %s already has CUSE devices", h->name);
        return NULL;
    }
    const char *owner = rpc_get_string(params, "owner"), *group = rpc_get_string(params, "group");
    const char *mode = rpc_get_string(params, "mode");
    struct vnvme_cuse_node_perm perm = cuse_default_perm;
    if (owner && (strlen(owner) >= sizeof(h->cuse_owner) || vnvme_parse_user(owner, &perm.uid) != 0)) {
        rpc_set_error(e, -EINVAL, "owner: no user '%s'", owner);
        return NULL;
    }
    if (group && (strlen(group) >= sizeof(h->cuse_group) || vnvme_parse_group(group, &perm.gid) != 0)) {
        rpc_set_error(e, -EINVAL, "group: no group '%s'", group);
        return NULL;
    }
    if (mode && (strlen(mode) >= sizeof(h->cuse_mode) || vnvme_parse_mode(mode, &perm.mode) != 0)) {
        rpc_set_error(e, -EINVAL, "mode: '%s' is not an octal mode such as \"0640\"", mode);
        return NULL;
    }
    if (!vnvme_cuse_available()) {
        rpc_set_error(e, -ENODEV, "CUSE not available: /dev/cuse missing");
        return NULL;
    }
    struct vnvme_cuse_set *s = NULL;
    int rc = vnvme_cuse_register(h->ctrlr, &perm, &s);
    if (rc) {
        rpc_set_error(e, rc, "cannot create CUSE devices: %s", strerror(-rc));
        return NULL;
    }
    snprintf(h->cuse_owner, sizeof(h->cuse_owner), "%s", owner ? owner : "");
    snprintf(h->cuse_group, sizeof(h->cuse_group), "%s", group ? group : "");
    snprintf(h->cuse_mode, sizeof(h->cuse_mode), "%s", mode ? mode : "");
    h->cuse_seq = cuse_seq_next++;
    atomic_store(&h->cuse, s);
    return json_object_new_boolean(1);
}

static struct json_object *cuse_unregister(struct json_object *params, struct rpc_err *e)
{
    struct host_ctrlr *h = find(rpc_get_string(params, "name"));
    struct vnvme_cuse_set *s = h ? atomic_exchange(&h->cuse, NULL) : NULL;
    if (s == NULL) {
        rpc_set_errno(e, -ENODEV);
        return NULL;
    }
    vnvme_cuse_unregister(s);
    return json_object_new_boolean(1);
}

static struct json_object *name_param(const char *name)
{
    struct json_object *p = json_object_new_object();
    json_object_object_add(p, "name", json_object_new_string(name));
    return p;
}

static int by_cuse_seq(const void *a, const void *b)
{
    const struct host_ctrlr *x = *(struct host_ctrlr *const *)a, *y = *(struct host_ctrlr *const *)b;
    return (x->cuse_seq > y->cuse_seq) - (x->cuse_seq < y->cuse_seq);
}

/*
 * Attaches in attach order, then CUSE registrations in registration order:
 * replayed, each controller gets its name back and, when the indices are
 * free, the same /dev/vnvme/nvmeN.
 */
void rpc_host_save_config(struct json_object *config)
{
    size_t n = 0;
    for (struct host_ctrlr *h = host_ctrlrs; h; h = h->next)
        n++;
    struct host_ctrlr **v = calloc(n ? n : 1, sizeof(*v));
    if (v == NULL)
        return;
    size_t i = n;
    for (struct host_ctrlr *h = host_ctrlrs; h; h = h->next)
        v[--i] = h; /* the list is newest first */
    for (i = 0; i < n; i++) {
        struct json_object *p = name_param(v[i]->name);
        json_object_object_add(p, "trtype", json_object_new_string("VFIOUSER"));
        json_object_object_add(p, "traddr", json_object_new_string(v[i]->traddr));
        if (v[i]->num_io_queues)
            json_object_object_add(p, "num_io_queues", json_object_new_uint64(v[i]->num_io_queues));
        config_add_call(config, "bdev_nvme_attach_controller", p);
    }
    qsort(v, n, sizeof(*v), by_cuse_seq);
    for (i = 0; i < n; i++) {
        if (!atomic_load(&v[i]->cuse))
            continue;
        struct json_object *p = name_param(v[i]->name);
        const char *keys[] = {"owner", "group", "mode"};
        const char *vals[] = {v[i]->cuse_owner, v[i]->cuse_group, v[i]->cuse_mode};
        for (int k = 0; k < 3; k++)
            if (vals[k][0])
                json_object_object_add(p, keys[k], json_object_new_string(vals[k]));
        config_add_call(config, "bdev_nvme_cuse_register", p);
    }
    free(v);
}

bool rpc_host_any(void)
{
    return host_ctrlrs != NULL;
}

void rpc_host_shutdown(void)
{
    while (host_ctrlrs) {
        struct host_ctrlr *h = host_ctrlrs;
        host_ctrlrs = h->next;
        host_ctrlr_free(h);
    }
}

const struct rpc_method rpc_host_methods[] = {
    {"bdev_nvme_attach_controller", attach_controller, attach_params},
    {"bdev_nvme_detach_controller", detach_controller, name_params},
    {"bdev_nvme_get_controllers", get_controllers, get_params},
    {"bdev_nvme_cuse_register", cuse_register, cuse_params},
    {"bdev_nvme_cuse_unregister", cuse_unregister, cuse_unregister_params},
    {NULL, NULL, NULL},
};
