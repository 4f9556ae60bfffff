/* SPDX-License-Identifier: MIT */
/* nvmf_* methods: transport, subsystems, namespaces, listeners (SPDK names and parameter shapes). */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/owner.h"
#include "rpc_internal.h"
#include "vnvmed.h"

#define DEFAULT_SERIAL "00000000000000000000"
#define DEFAULT_MODEL "vnvme emulated NVMe"

/* Transport tuning knobs of SPDK's nvmf_create_transport: meaningless here, accepted so SPDK configs load. */
static const struct rpc_param create_transport_params[] = {
    {"trtype", RPC_STRING, true},
    {"tgt_name", RPC_IGNORED, false},
    {"max_queue_depth", RPC_IGNORED, false},
    {"max_qpairs_per_ctrlr", RPC_IGNORED, false},
    {"max_io_qpairs_per_ctrlr", RPC_IGNORED, false},
    {"in_capsule_data_size", RPC_IGNORED, false},
    {"max_io_size", RPC_IGNORED, false},
    {"io_unit_size", RPC_IGNORED, false},
    {"max_aq_depth", RPC_IGNORED, false},
    {"num_shared_buffers", RPC_IGNORED, false},
    {"buf_cache_size", RPC_IGNORED, false},
    {"dif_insert_or_strip", RPC_IGNORED, false},
    {"zcopy", RPC_IGNORED, false},
    {"c2h_success", RPC_IGNORED, false},
    {"sock_priority", RPC_IGNORED, false},
    {"abort_timeout_sec", RPC_IGNORED, false},
    {"ack_timeout", RPC_IGNORED, false},
    {"data_wr_pool_size", RPC_IGNORED, false},
    {"disable_mappable_bar0", RPC_IGNORED, false},
    {"disable_adaptive_irq", RPC_IGNORED, false},
    {"disable_shadow_doorbells", RPC_IGNORED, false},
    {"disable_compare", RPC_IGNORED, false},
    {"enable_interrupt_mode", RPC_IGNORED, false},
    {"enable_intr_mode_sq_spreading", RPC_IGNORED, false},
    {"transport_specific", RPC_IGNORED, false},
    {"iobuf_small_cache_size", RPC_IGNORED, false},
    {"iobuf_large_cache_size", RPC_IGNORED, false},
    {"acceptor_poll_rate", RPC_IGNORED, false},
    {"disable_command_passthru", RPC_IGNORED, false},
    {"kas", RPC_IGNORED, false},
    {"min_kato", RPC_IGNORED, false},
    {"masked_oncs", RPC_IGNORED, false},
    {"masked_fuses", RPC_IGNORED, false},
    /* TCP and RDMA options: rpc.py sends some (no_srq, c2h_success) whatever the transport. */
    {"control_msg_num", RPC_IGNORED, false},
    {"max_srq_depth", RPC_IGNORED, false},
    {"no_srq", RPC_IGNORED, false},
    {"num_cqe", RPC_IGNORED, false},
    {"acceptor_backlog", RPC_IGNORED, false},
    {"no_wr_batching", RPC_IGNORED, false},
    {"max_sgl_entries", RPC_IGNORED, false},
    RPC_PARAMS_END,
};
static const struct rpc_param get_transports_params[] = {
    {"trtype", RPC_STRING, false},
    {"tgt_name", RPC_IGNORED, false},
    RPC_PARAMS_END,
};
static const struct rpc_param create_subsystem_params[] = {
    {"nqn", RPC_STRING, true},
    {"serial_number", RPC_STRING, false},
    {"model_number", RPC_STRING, false},
    {"allow_any_host", RPC_BOOL, false},
    {"max_namespaces", RPC_UINT32, false},
    {"tgt_name", RPC_IGNORED, false},
    {"ana_reporting", RPC_IGNORED, false},
    {"min_cntlid", RPC_IGNORED, false},
    {"max_cntlid", RPC_IGNORED, false},
    {"max_discard_size_kib", RPC_IGNORED, false},
    {"max_write_zeroes_size_kib", RPC_IGNORED, false},
    {"dmrsl", RPC_IGNORED, false},
    {"wzsl", RPC_IGNORED, false},
    {"enable_nssr", RPC_IGNORED, false},
    {"admin_label", RPC_IGNORED, false},
    {"passthrough", RPC_ZERO, false},
    RPC_PARAMS_END,
};
static const struct rpc_param nqn_params[] = {
    {"nqn", RPC_STRING, true},
    {"tgt_name", RPC_IGNORED, false},
    RPC_PARAMS_END,
};
static const struct rpc_param add_ns_params[] = {
    {"nqn", RPC_STRING, true},
    {"namespace", RPC_OBJECT, true},
    {"tgt_name", RPC_IGNORED, false},
    RPC_PARAMS_END,
};
static const struct rpc_param namespace_params[] = {
    {"bdev_name", RPC_STRING, true},
    {"nsid", RPC_UINT32, false},
    {"nguid", RPC_STRING, false},
    {"eui64", RPC_STRING, false},
    {"uuid", RPC_STRING, false},
    {"ptpl_file", RPC_IGNORED, false},
    {"anagrpid", RPC_IGNORED, false},
    {"no_auto_visible", RPC_ZERO, false},
    {"hide_metadata", RPC_ZERO, false}, /* namespaces here carry no metadata to hide */
    RPC_PARAMS_END,
};
static const struct rpc_param remove_ns_params[] = {
    {"nqn", RPC_STRING, true},
    {"nsid", RPC_UINT32, true},
    {"tgt_name", RPC_IGNORED, false},
    RPC_PARAMS_END,
};
static const struct rpc_param listener_params[] = {
    {"nqn", RPC_STRING, true},
    {"listen_address", RPC_OBJECT, true},
    {"tgt_name", RPC_IGNORED, false},
    {"secure_channel", RPC_ZERO, false},
    {"ana_state", RPC_IGNORED, false},
    {"anagrpid", RPC_IGNORED, false},
    {"sock_impl", RPC_IGNORED, false},
    {"numa_id", RPC_IGNORED, false},
    /* Beyond SPDK: the group given access to the socket (vnvmed --socket-group by default). */
    {"socket_group", RPC_STRING, false},
    RPC_PARAMS_END,
};
static const struct rpc_param listen_address_params[] = {
    {"trtype", RPC_STRING, true},
    {"traddr", RPC_STRING, true},
    {"trsvcid", RPC_IGNORED, false},
    {"adrfam", RPC_IGNORED, false},
    {"transport", RPC_IGNORED, false},
    {"numa_id", RPC_IGNORED, false},
    RPC_PARAMS_END,
};
static const struct rpc_param get_subsystems_params[] = {
    {"nqn", RPC_STRING, false},
    {"tgt_name", RPC_IGNORED, false},
    RPC_PARAMS_END,
};
static const struct rpc_param host_params[] = {
    {"nqn", RPC_STRING, true},
    {"host", RPC_STRING, true},
    {"tgt_name", RPC_IGNORED, false},
    {"psk", RPC_IGNORED, false},
    {"dhchap_key", RPC_IGNORED, false},
    {"dhchap_ctrlr_key", RPC_IGNORED, false},
    RPC_PARAMS_END,
};
static const struct rpc_param allow_any_host_params[] = {
    {"nqn", RPC_STRING, true},
    {"allow_any_host", RPC_BOOL, true},
    {"tgt_name", RPC_IGNORED, false},
    RPC_PARAMS_END,
};

/* ---- Hosts: vfio-user has no host NQN, so these are only remembered for nvmf_get_subsystems/save_config. */
struct host_entry {
    char *nqn;
    char *host;
    struct host_entry *next;
};
static struct host_entry *hosts;

struct json_object *rpc_nvmf_hosts_json(const char *nqn)
{
    struct json_object *arr = json_object_new_array();
    for (struct host_entry *h = hosts; h != NULL; h = h->next)
        if (strcmp(h->nqn, nqn) == 0)
            json_object_array_add(arr, json_object_new_string(h->host));
    return arr;
}

static struct host_entry **find_host(const char *nqn, const char *host)
{
    struct host_entry **p = &hosts;
    while (*p != NULL && !(strcmp((*p)->nqn, nqn) == 0 && strcmp((*p)->host, host) == 0))
        p = &(*p)->next;
    return p;
}

static void free_host(struct host_entry **p)
{
    struct host_entry *h = *p;
    *p = h->next;
    free(h->nqn);
    free(h->host);
    free(h);
}

void rpc_nvmf_forget_hosts(const char *nqn)
{
    struct host_entry **p = &hosts;
    while (*p != NULL) {
        if (nqn == NULL || strcmp((*p)->nqn, nqn) == 0)
            free_host(p);
        else
            p = &(*p)->next;
    }
}

/* ---- helpers ---- */
static struct json_object *ok(void)
{
    return json_object_new_boolean(1);
}

static struct json_object *fail(struct rpc_err *e, int rc)
{
    rpc_set_errno(e, rc);
    return NULL;
}

static struct tgt_subsystem *find_subsystem(struct json_object *params, struct rpc_err *e)
{
    struct tgt_subsystem *ts = tgt_subsystem_find(rpc_get_string(params, "nqn"));
    if (ts == NULL)
        rpc_set_errno(e, -ENODEV);
    return ts;
}

static bool is_vfio_user(const char *trtype)
{
    return strcasecmp(trtype, "VFIOUSER") == 0;
}

static bool check_trtype(const char *trtype, struct rpc_err *e)
{
    if (!is_vfio_user(trtype)) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "unsupported trtype: %s (only VFIOUSER)", trtype);
        return false;
    }
    return true;
}

/* NVMe identify strings are printable ASCII, padded with spaces to a fixed width. */
static bool check_ident(const char *name, const char *v, size_t max, struct rpc_err *e)
{
    size_t n = strlen(v);
    if (n == 0 || n > max) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "parameter %s must be 1 to %zu characters", name, max);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i] < 0x20 || v[i] > 0x7e) {
            rpc_set_error(e, RPC_INVALID_PARAMS, "parameter %s must be printable ASCII", name);
            return false;
        }
    }
    return true;
}

/* ---- methods ---- */
static struct json_object *nvmf_create_transport(struct json_object *params, struct rpc_err *e)
{
    if (!check_trtype(rpc_get_string(params, "trtype"), e))
        return NULL;
    int rc = tgt_create_transport("VFIOUSER");
    return rc < 0 ? fail(e, rc) : ok();
}

static struct json_object *nvmf_get_transports(struct json_object *params, struct rpc_err *e)
{
    const char *trtype = rpc_get_string(params, "trtype");
    struct json_object *arr = json_object_new_array();
    (void)e;
    if (tgt_transport_created() && (trtype == NULL || is_vfio_user(trtype))) {
        struct json_object *t = json_object_new_object();
        json_object_object_add(t, "trtype", json_object_new_string("VFIOUSER"));
        json_object_array_add(arr, t);
    }
    return arr;
}

static struct json_object *nvmf_create_subsystem(struct json_object *params, struct rpc_err *e)
{
    const char *nqn = rpc_get_string(params, "nqn");
    const char *serial = rpc_get_string(params, "serial_number");
    const char *model = rpc_get_string(params, "model_number");
    uint64_t max_ns = rpc_get_u64(params, "max_namespaces", 0);
    struct tgt_subsystem *ts = NULL;

    if (strlen(nqn) < 5 || strlen(nqn) > 223 || strncmp(nqn, "nqn.", 4) != 0) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "invalid nqn: %s", nqn);
        return NULL;
    }
    if (serial == NULL)
        serial = DEFAULT_SERIAL;
    if (model == NULL)
        model = DEFAULT_MODEL;
    if (!check_ident("serial_number", serial, 20, e) || !check_ident("model_number", model, 40, e))
        return NULL;
    /* SPDK: 0 = no limit of its own, i.e. the target's maximum. */
    if (max_ns == 0)
        max_ns = NVMET_MAX_NSID;
    if (max_ns > NVMET_MAX_NSID) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "parameter max_namespaces must be at most %u", NVMET_MAX_NSID);
        return NULL;
    }
    int rc = tgt_subsystem_create(nqn, serial, model, (uint32_t)max_ns, rpc_get_bool(params, "allow_any_host", false),
                                  &ts);
    return rc < 0 ? fail(e, rc) : ok();
}

static struct json_object *nvmf_delete_subsystem(struct json_object *params, struct rpc_err *e)
{
    const char *nqn = rpc_get_string(params, "nqn");
    int rc = tgt_subsystem_delete(nqn);
    if (rc < 0)
        return fail(e, rc);
    rpc_nvmf_forget_hosts(nqn);
    return ok();
}

static bool parse_id(struct json_object *ns, const char *name, uint8_t *buf, size_t len, const uint8_t **out,
                     struct rpc_err *e)
{
    const char *s = rpc_get_string(ns, name);
    *out = NULL;
    if (s == NULL)
        return true;
    bool good = len == 16 && strcmp(name, "uuid") == 0 ? rpc_parse_uuid(s, buf) : rpc_parse_hex_id(s, buf, len);
    if (!good) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "invalid namespace.%s: %s", name, s);
        return false;
    }
    *out = buf;
    return true;
}

static struct json_object *nvmf_subsystem_add_ns(struct json_object *params, struct rpc_err *e)
{
    struct json_object *ns = rpc_get_object(params, "namespace");
    uint8_t nguid_buf[16], eui_buf[8], uuid_buf[16];
    const uint8_t *nguid, *eui64, *uuid;

    if (!rpc_check_params(ns, namespace_params, "namespace.", e))
        return NULL;
    if (!parse_id(ns, "nguid", nguid_buf, 16, &nguid, e) || !parse_id(ns, "eui64", eui_buf, 8, &eui64, e) ||
        !parse_id(ns, "uuid", uuid_buf, 16, &uuid, e))
        return NULL;
    struct tgt_subsystem *ts = find_subsystem(params, e);
    if (ts == NULL)
        return NULL;
    const char *bdev_name = rpc_get_string(ns, "bdev_name");
    if (vnvme_bdev_get(bdev_name) == NULL)
        return fail(e, -ENODEV);
    int rc = tgt_ns_add(ts, bdev_name, (uint32_t)rpc_get_u64(ns, "nsid", 0), nguid, eui64, uuid);
    return rc < 0 ? fail(e, rc) : json_object_new_int(rc);
}

static struct json_object *nvmf_subsystem_remove_ns(struct json_object *params, struct rpc_err *e)
{
    struct tgt_subsystem *ts = find_subsystem(params, e);
    if (ts == NULL)
        return NULL;
    int rc = tgt_ns_remove(ts, (uint32_t)rpc_get_u64(params, "nsid", 0));
    return rc < 0 ? fail(e, rc) : ok();
}

static struct json_object *listener_change(struct json_object *params, bool add, struct rpc_err *e)
{
    struct json_object *la = rpc_get_object(params, "listen_address");
    if (!rpc_check_params(la, listen_address_params, "listen_address.", e))
        return NULL;
    const char *trtype = rpc_get_string(la, "trtype");
    const char *traddr = rpc_get_string(la, "traddr");
    if (!check_trtype(trtype, e))
        return NULL;
    if (*traddr == '\0' || strlen(traddr) >= sizeof(((struct tgt_listener *)0)->traddr)) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "parameter listen_address.traddr must be a directory path");
        return NULL;
    }
    struct tgt_subsystem *ts = find_subsystem(params, e);
    if (ts == NULL)
        return NULL;
    if (add && !tgt_transport_created()) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "transport VFIOUSER not created (call nvmf_create_transport first)");
        return NULL;
    }
    const char *group = rpc_get_string(params, "socket_group");
    gid_t gid;
    if (add && group && vnvme_parse_group(group, &gid) != 0) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "parameter socket_group: no group '%s'", group);
        return NULL;
    }
    int rc = add ? tgt_listener_add(ts, "VFIOUSER", traddr, group) : tgt_listener_remove(ts, "VFIOUSER", traddr);
    return rc < 0 ? fail(e, rc) : ok();
}

static struct json_object *nvmf_subsystem_add_listener(struct json_object *params, struct rpc_err *e)
{
    return listener_change(params, true, e);
}

static struct json_object *nvmf_subsystem_remove_listener(struct json_object *params, struct rpc_err *e)
{
    return listener_change(params, false, e);
}

static struct json_object *nvmf_subsystem_add_host(struct json_object *params, struct rpc_err *e)
{
    struct tgt_subsystem *ts = find_subsystem(params, e);
    if (ts == NULL)
        return NULL;
    const char *host = rpc_get_string(params, "host");
    struct host_entry **p = find_host(ts->ss->nqn, host);
    if (*p != NULL)
        return fail(e, -EEXIST);
    struct host_entry *h = calloc(1, sizeof(*h));
    if (h == NULL || (h->nqn = strdup(ts->ss->nqn)) == NULL || (h->host = strdup(host)) == NULL) {
        if (h != NULL)
            free(h->nqn);
        free(h);
        return fail(e, -ENOMEM);
    }
    *p = h;
    return ok();
}

static struct json_object *nvmf_subsystem_remove_host(struct json_object *params, struct rpc_err *e)
{
    struct tgt_subsystem *ts = find_subsystem(params, e);
    if (ts == NULL)
        return NULL;
    struct host_entry **p = find_host(ts->ss->nqn, rpc_get_string(params, "host"));
    if (*p == NULL)
        return fail(e, -ENOENT);
    free_host(p);
    return ok();
}

static struct json_object *nvmf_subsystem_allow_any_host(struct json_object *params, struct rpc_err *e)
{
    struct tgt_subsystem *ts = find_subsystem(params, e);
    if (ts == NULL)
        return NULL;
    /* Only read by the control path (reporting); the I/O path never looks at it. */
    ts->ss->allow_any_host = rpc_get_bool(params, "allow_any_host", false);
    return ok();
}

struct json_object *rpc_namespace_json(const struct nvmet_ns *ns, bool with_name)
{
    char hex[33], uuid[37];
    const char *bdev = ns->bdev ? ns->bdev->name : "";
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "nsid", json_object_new_int64(ns->nsid));
    json_object_object_add(o, "bdev_name", json_object_new_string(bdev));
    if (with_name) {
        json_object_object_add(o, "name", json_object_new_string(bdev));
        /* The namespace's own limits (nvmf_ns_set_qos_limit), when it has any. */
        struct vnvme_qos *q = __atomic_load_n(&ns->qos, __ATOMIC_ACQUIRE);
        if (q)
            json_object_object_add(o, "assigned_rate_limits", vnvme_qos_limits_json(q));
    }
    if (!rpc_id_is_zero(ns->nguid, 16)) {
        rpc_format_hex_id(ns->nguid, 16, hex);
        json_object_object_add(o, "nguid", json_object_new_string(hex));
    }
    if (!rpc_id_is_zero(ns->eui64, 8)) {
        rpc_format_hex_id(ns->eui64, 8, hex);
        json_object_object_add(o, "eui64", json_object_new_string(hex));
    }
    if (!rpc_id_is_zero(ns->uuid, 16)) {
        vnvme_bdev_uuid_format(ns->uuid, uuid);
        json_object_object_add(o, "uuid", json_object_new_string(uuid));
    }
    return o;
}

static struct json_object *listener_json(const struct tgt_listener *l)
{
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "trtype", json_object_new_string("VFIOUSER"));
    json_object_object_add(o, "adrfam", json_object_new_string("IPv4"));
    json_object_object_add(o, "traddr", json_object_new_string(l->traddr));
    json_object_object_add(o, "trsvcid", json_object_new_string(""));
    return o;
}

static struct json_object *subsystem_json(const struct tgt_subsystem *ts)
{
    const struct nvmet_subsys *ss = ts->ss;
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "nqn", json_object_new_string(ss->nqn));
    json_object_object_add(o, "subtype", json_object_new_string("NVMe"));
    struct json_object *las = json_object_new_array();
    for (const struct tgt_listener *l = ts->listeners; l != NULL; l = l->next)
        json_object_array_add(las, listener_json(l));
    json_object_object_add(o, "listen_addresses", las);
    json_object_object_add(o, "allow_any_host", json_object_new_boolean(ss->allow_any_host));
    struct json_object *hs = json_object_new_array();
    struct json_object *names = rpc_nvmf_hosts_json(ss->nqn);
    for (size_t i = 0; i < json_object_array_length(names); i++) {
        struct json_object *h = json_object_new_object();
        json_object_object_add(h, "nqn", json_object_get(json_object_array_get_idx(names, i)));
        json_object_array_add(hs, h);
    }
    json_object_put(names);
    json_object_object_add(o, "hosts", hs);
    json_object_object_add(o, "serial_number", json_object_new_string(ss->serial));
    json_object_object_add(o, "model_number", json_object_new_string(ss->model));
    json_object_object_add(o, "max_namespaces", json_object_new_int64(ss->max_namespaces));
    struct json_object *nss = json_object_new_array();
    for (uint32_t nsid = 1; nsid <= NVMET_MAX_NSID; nsid++)
        if (ss->ns[nsid] != NULL)
            json_object_array_add(nss, rpc_namespace_json(ss->ns[nsid], true));
    json_object_object_add(o, "namespaces", nss);
    return o;
}

static struct json_object *nvmf_get_subsystems(struct json_object *params, struct rpc_err *e)
{
    const char *nqn = rpc_get_string(params, "nqn");
    if (nqn != NULL) {
        struct tgt_subsystem *ts = tgt_subsystem_find(nqn);
        if (ts == NULL)
            return fail(e, -ENODEV);
        struct json_object *arr = json_object_new_array();
        json_object_array_add(arr, subsystem_json(ts));
        return arr;
    }
    struct json_object *arr = json_object_new_array();
    for (struct tgt_subsystem *ts = tgt_subsystem_first(); ts != NULL; ts = ts->next)
        json_object_array_add(arr, subsystem_json(ts));
    return arr;
}


const struct rpc_method rpc_nvmf_methods[] = {
    {"nvmf_create_transport", nvmf_create_transport, create_transport_params},
    {"nvmf_get_transports", nvmf_get_transports, get_transports_params},
    {"nvmf_create_subsystem", nvmf_create_subsystem, create_subsystem_params},
    {"nvmf_delete_subsystem", nvmf_delete_subsystem, nqn_params},
    {"nvmf_subsystem_add_ns", nvmf_subsystem_add_ns, add_ns_params},
    {"nvmf_subsystem_remove_ns", nvmf_subsystem_remove_ns, remove_ns_params},
    {"nvmf_subsystem_add_listener", nvmf_subsystem_add_listener, listener_params},
    {"nvmf_subsystem_remove_listener", nvmf_subsystem_remove_listener, listener_params},
    {"nvmf_subsystem_add_host", nvmf_subsystem_add_host, host_params},
    {"nvmf_subsystem_remove_host", nvmf_subsystem_remove_host, host_params},
    {"nvmf_subsystem_allow_any_host", nvmf_subsystem_allow_any_host, allow_any_host_params},
    {"nvmf_get_subsystems", nvmf_get_subsystems, get_subsystems_params},
    {NULL, NULL, NULL},
};
