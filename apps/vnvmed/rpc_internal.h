/* SPDX-License-Identifier: MIT */
/*
 * Shared by the RPC method files (rpc_bdev.c, rpc_nvmf.c, rpc_app.c), the
 * dispatcher (rpc_methods.c) and config.c: the method table, declarative
 * parameter checking and error reporting.
 *
 * Error convention of rpc_dispatch(): *err_code 0 = success and the return
 * value is the result (NULL stands for JSON null); otherwise the return value
 * is NULL, *err_code is a JSON-RPC code (-32xxx) or a negative errno, and
 * *err_msg a malloc'd message the caller frees.
 */
#ifndef VNVMED_RPC_INTERNAL_H
#define VNVMED_RPC_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

struct json_object;

#define RPC_PARSE_ERROR (-32700)
#define RPC_INVALID_REQUEST (-32600)
#define RPC_METHOD_NOT_FOUND (-32601)
#define RPC_INVALID_PARAMS (-32602)
#define RPC_INTERNAL_ERROR (-32603)

struct rpc_err {
    int code;
    char *msg;
};

void rpc_set_error(struct rpc_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Operation failure, SPDK style: code = -errno, message = strerror. */
void rpc_set_errno(struct rpc_err *e, int neg_errno);

enum rpc_param_type {
    RPC_STRING,
    RPC_BOOL,
    RPC_UINT32,
    RPC_UINT64,
    RPC_OBJECT,
    RPC_IGNORED, /* SPDK parameter accepted for compatibility, any value, no effect */
    RPC_ZERO,    /* SPDK feature we lack: accepted only as 0, false or null */
};

struct rpc_param {
    const char *name;
    enum rpc_param_type type;
    bool required;
};

/* End a parameter list with {NULL}. */
#define RPC_PARAMS_END {NULL, RPC_STRING, false}

/*
 * Check params (an object or NULL) against spec: unknown names, types and
 * missing required ones become -32602 errors naming the parameter (prefix
 * names nested objects, e.g. "namespace."). Returns false on error.
 */
bool rpc_check_params(struct json_object *params, const struct rpc_param *spec, const char *prefix,
                      struct rpc_err *e);

/* Getters for already-checked parameters; absent ones give the default. */
const char *rpc_get_string(struct json_object *params, const char *name);
uint64_t rpc_get_u64(struct json_object *params, const char *name, uint64_t dflt);
bool rpc_get_bool(struct json_object *params, const char *name, bool dflt);
struct json_object *rpc_get_object(struct json_object *params, const char *name);

/* Hex identifiers: "-" separators are ignored, exactly len bytes of hex digits needed. */
bool rpc_parse_hex_id(const char *s, uint8_t *out, size_t len);
bool rpc_parse_uuid(const char *s, uint8_t out[16]);
/* Upper-case hex without separators (SPDK's nguid/eui64 format); out needs 2 * len + 1. */
void rpc_format_hex_id(const uint8_t *id, size_t len, char *out);
bool rpc_id_is_zero(const uint8_t *id, size_t len);
struct nvmet_ns;
/* A namespace as nvmf_get_subsystems shows it (with_name) or as nvmf_subsystem_add_ns takes it. */
struct json_object *rpc_namespace_json(const struct nvmet_ns *ns, bool with_name);

typedef struct json_object *(*rpc_handler)(struct json_object *params, struct rpc_err *e);

struct rpc_method {
    const char *name;
    rpc_handler handler;
    const struct rpc_param *params; /* NULL: the method takes any params and ignores them */
};

/* Each method file exports its table, ended with {NULL}. */
extern const struct rpc_method rpc_bdev_methods[];
extern const struct rpc_method rpc_nvmf_methods[];
extern const struct rpc_method rpc_app_methods[];
extern const struct rpc_method rpc_host_methods[]; /* rpc_host.c: bdev_nvme_* (host role, CUSE) */
/* rpc_bdev_iostat.c: bdev_get_iostat, bdev_reset_iostat, histograms */
extern const struct rpc_method rpc_iostat_methods[];
/* rpc_nvmf_stats.c: framework_get_reactors, nvmf_get_stats, nvmf_subsystem_get_controllers/qpairs */
extern const struct rpc_method rpc_nvmf_stats_methods[];
/* rpc_qos.c: bdev_set_qos_limit, nvmf_ns_set_qos_limit */
extern const struct rpc_method rpc_qos_methods[];
struct vnvme_qos;
/* rpc_qos.c: the limits set in q (and burst_ms) as save_config's parameters, or NULL when none is set. */
struct json_object *rpc_qos_save_params(const struct vnvme_qos *q);
/* rpc_spdk_options.c: option setters of SPDK subsystems vnvmed has no counterpart for. */
extern const struct rpc_method rpc_spdk_option_methods[];

/* The method rpc_dispatch() is running ("" outside of one). */
const char *rpc_current_method(void);
/* True the first time it is called with this text: for messages said once per daemon. */
bool rpc_note_once(const char *what);
struct vnvme_cuse_node_perm;
/* rpc_host.c: the device nodes' owner, group and mode when bdev_nvme_cuse_register does not give them. */
void rpc_host_set_cuse_default_perm(const struct vnvme_cuse_node_perm *perm);
/* rpc_host.c: detach every host-role controller (daemon exit). */
void rpc_host_shutdown(void);
/* rpc_host.c: whether any host-role controller is attached. */
bool rpc_host_any(void);
/* upgrade.c: framework_upgrade */
extern const struct rpc_method rpc_upgrade_methods[];
/* rpc_host.c: append the calls that re-attach the controllers and re-register their CUSE devices. */
void rpc_host_save_config(struct json_object *config);

/* Iterate over every method of every table: call with *table = 0, *index = 0 first. */
const struct rpc_method *rpc_method_next(int *table, int *index);

/* rpc_nvmf.c: hosts recorded by nvmf_subsystem_add_host (meaningless for vfio-user, kept for save_config). */
struct json_object *rpc_nvmf_hosts_json(const char *nqn); /* new array of host NQN strings */
void rpc_nvmf_forget_hosts(const char *nqn); /* NULL: every subsystem's */

/* config.c: one subsystem's config array ("bdev" or "nvmf"), NULL for an unknown name. */
struct json_object *config_save_subsystem(const char *name);
/* The subsystems config_save writes, in load order (NULL-terminated). */
const char *const *config_subsystem_names(void);
/* config.c: append {"method": method, "params": params (taken; NULL: none)} to a config array. */
void config_add_call(struct json_object *config, const char *method, struct json_object *params);

#endif
