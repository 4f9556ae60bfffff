/* SPDX-License-Identifier: MIT */
/* Application methods: method list, version, configuration, framework init no-ops, log level. */
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "common/log.h"
#include "rpc_internal.h"
#include "vnvmed.h"

#define VNVME_VERSION_STRING "vnvme " VNVME_VERSION

/* Every method can be called once the daemon serves RPC, and none has an alias: both flags change nothing. */
static const struct rpc_param get_methods_params[] = {
    {"current", RPC_BOOL, false},
    {"include_aliases", RPC_BOOL, false},
    RPC_PARAMS_END,
};
static const struct rpc_param no_params[] = {RPC_PARAMS_END};
static const struct rpc_param get_config_params[] = {
    {"name", RPC_STRING, false},
    RPC_PARAMS_END,
};
static const struct rpc_param log_level_params[] = {
    {"level", RPC_STRING, true},
    RPC_PARAMS_END,
};

static struct json_object *rpc_get_methods(struct json_object *params, struct rpc_err *e)
{
    struct json_object *arr = json_object_new_array();
    int t = 0, i = 0;
    const struct rpc_method *m;
    (void)params;
    (void)e;
    while ((m = rpc_method_next(&t, &i)) != NULL)
        json_object_array_add(arr, json_object_new_string(m->name));
    return arr;
}

static struct json_object *spdk_get_version(struct json_object *params, struct rpc_err *e)
{
    (void)params;
    (void)e;
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "version", json_object_new_string(VNVME_VERSION_STRING));
    struct json_object *f = json_object_new_object();
    json_object_object_add(f, "major", json_object_new_int(VNVME_VERSION_MAJOR));
    json_object_object_add(f, "minor", json_object_new_int(VNVME_VERSION_MINOR));
    json_object_object_add(f, "patch", json_object_new_int(VNVME_VERSION_PATCH));
    json_object_object_add(f, "suffix", json_object_new_string(""));
    json_object_object_add(o, "fields", f);
    return o;
}

static struct json_object *save_config(struct json_object *params, struct rpc_err *e)
{
    (void)params;
    struct json_object *cfg = config_save();
    if (cfg == NULL)
        rpc_set_errno(e, -ENOMEM);
    return cfg;
}

/* SPDK: the config array of one subsystem; without a name, the whole configuration. */
static struct json_object *framework_get_config(struct json_object *params, struct rpc_err *e)
{
    const char *name = rpc_get_string(params, "name");
    if (name == NULL)
        return save_config(params, e);
    struct json_object *cfg = config_save_subsystem(name);
    if (cfg == NULL)
        rpc_set_error(e, RPC_INVALID_PARAMS, "Subsystem '%s' not found", name);
    return cfg;
}

/*
 * SPDK: the subsystems in initialisation order, each with what it depends on.
 * rpc.py's save_config asks this first, then framework_get_config for each
 * (a dependency must come before what depends on it).
 */
static struct json_object *framework_get_subsystems(struct json_object *params, struct rpc_err *e)
{
    (void)params;
    (void)e;
    struct json_object *arr = json_object_new_array();
    const char *prev = NULL;
    for (const char *const *s = config_subsystem_names(); *s != NULL; s++) {
        struct json_object *o = json_object_new_object();
        struct json_object *deps = json_object_new_array();
        if (prev != NULL) /* nvmf's namespaces are bdevs */
            json_object_array_add(deps, json_object_new_string(prev));
        json_object_object_add(o, "subsystem", json_object_new_string(*s));
        json_object_object_add(o, "depends_on", deps);
        json_object_array_add(arr, o);
        prev = *s;
    }
    return arr;
}

/* The daemon initialises before serving RPC, so these only need to succeed. */
static struct json_object *framework_init_noop(struct json_object *params, struct rpc_err *e)
{
    (void)params;
    (void)e;
    return json_object_new_boolean(1);
}

static const char *const level_names[] = {"ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"};

static struct json_object *log_set_level(struct json_object *params, struct rpc_err *e)
{
    char lower[16];
    const char *level = rpc_get_string(params, "level");
    size_t n = strlen(level);
    if (n >= sizeof(lower))
        n = sizeof(lower) - 1;
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)tolower((unsigned char)level[i]);
    lower[n] = '\0';
    /* SPDK spells it WARNING, our logger "warn". */
    int l = strcmp(lower, "warning") == 0 ? VNVME_LOG_WARN : vnvme_log_parse_level(lower);
    if (l < 0) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "invalid level: %s (ERROR, WARNING, NOTICE, INFO or DEBUG)", level);
        return NULL;
    }
    vnvme_log_set_level((enum vnvme_log_level)l);
    return json_object_new_boolean(1);
}

static struct json_object *log_get_level(struct json_object *params, struct rpc_err *e)
{
    (void)params;
    (void)e;
    int l = (int)vnvme_log_get_level();
    return json_object_new_string(l >= 0 && l < 5 ? level_names[l] : "UNKNOWN");
}

const struct rpc_method rpc_app_methods[] = {
    {"rpc_get_methods", rpc_get_methods, get_methods_params},
    {"spdk_get_version", spdk_get_version, no_params},
    {"save_config", save_config, no_params},
    {"framework_get_config", framework_get_config, get_config_params},
    {"framework_get_subsystems", framework_get_subsystems, no_params},
    {"framework_start_init", framework_init_noop, no_params},
    {"framework_wait_init", framework_init_noop, no_params},
    {"log_set_level", log_set_level, log_level_params},
    {"log_get_level", log_get_level, no_params},
    {NULL, NULL, NULL},
};
