/* SPDX-License-Identifier: MIT */
/* Method lookup, parameter checking and error helpers behind rpc_dispatch(). */
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "rpc_internal.h"
#include "vnvmed.h"

void rpc_set_error(struct rpc_err *e, int code, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    free(e->msg);
    e->code = code;
    e->msg = msg;
}

void rpc_set_errno(struct rpc_err *e, int neg_errno)
{
    int err = neg_errno < 0 ? -neg_errno : neg_errno;
    if (err == 0)
        err = EIO;
    rpc_set_error(e, -err, "%s", strerror(err));
}

static const char *type_name(enum rpc_param_type t)
{
    switch (t) {
    case RPC_STRING:
        return "a string";
    case RPC_BOOL:
        return "a boolean";
    case RPC_UINT32:
        return "an unsigned 32-bit integer";
    case RPC_UINT64:
        return "an unsigned 64-bit integer";
    case RPC_OBJECT:
        return "an object";
    default:
        return "any value";
    }
}

/* json-c keeps integers above INT64_MAX as uint64; get_int64 saturates, so the sign test is reliable. */
static bool is_unsigned(struct json_object *v, uint64_t max)
{
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
        return false;
    return json_object_get_uint64(v) <= max;
}

static bool is_zero_value(struct json_object *v)
{
    if (v == NULL)
        return true;
    if (json_object_is_type(v, json_type_boolean))
        return !json_object_get_boolean(v);
    if (json_object_is_type(v, json_type_int))
        return json_object_get_int64(v) == 0;
    return false;
}

static bool type_ok(struct json_object *v, enum rpc_param_type t)
{
    switch (t) {
    case RPC_STRING:
        return json_object_is_type(v, json_type_string);
    case RPC_BOOL:
        return json_object_is_type(v, json_type_boolean);
    case RPC_UINT32:
        return is_unsigned(v, UINT32_MAX);
    case RPC_UINT64:
        return is_unsigned(v, UINT64_MAX);
    case RPC_OBJECT:
        return json_object_is_type(v, json_type_object);
    case RPC_IGNORED:
        return true;
    case RPC_ZERO:
        return is_zero_value(v);
    }
    return false;
}

/* The method being dispatched, for messages. RPC runs on the main thread only (server and config loading). */
static const char *current_method = "";

const char *rpc_current_method(void)
{
    return current_method;
}

struct noted {
    struct noted *next;
    char what[];
};
static struct noted *noted_list; /* kept for the process's life: a few entries per distinct name */

bool rpc_note_once(const char *what)
{
    for (struct noted *n = noted_list; n != NULL; n = n->next)
        if (strcmp(n->what, what) == 0)
            return false;
    struct noted *n = malloc(sizeof(*n) + strlen(what) + 1);
    if (n == NULL)
        return true; /* say it again rather than never */
    strcpy(n->what, what);
    n->next = noted_list;
    noted_list = n;
    return true;
}

/* An SPDK parameter vnvmed accepts without effect: the operator hears it once per method and name. */
static void note_ignored(const char *prefix, const char *key)
{
    char what[256];
    snprintf(what, sizeof(what), "%s %s%s", current_method, prefix, key);
    if (rpc_note_once(what))
        VNVME_NOTICE("rpc", "%s: parameter %s%s has no effect in vnvmed (accepted for SPDK compatibility)",
                     current_method, prefix, key);
}

bool rpc_check_params(struct json_object *params, const struct rpc_param *spec, const char *prefix,
                      struct rpc_err *e)
{
    if (prefix == NULL)
        prefix = "";
    if (params != NULL && !json_object_is_type(params, json_type_object)) {
        if (*prefix)
            rpc_set_error(e, RPC_INVALID_PARAMS, "parameter %.*s must be an object", (int)strlen(prefix) - 1,
                          prefix);
        else
            rpc_set_error(e, RPC_INVALID_PARAMS, "params must be an object");
        return false;
    }
    if (params != NULL) {
        json_object_object_foreach(params, key, val)
        {
            const struct rpc_param *p = spec;
            while (p->name != NULL && strcmp(p->name, key) != 0)
                p++;
            if (p->name == NULL) {
                rpc_set_error(e, RPC_INVALID_PARAMS, "unknown parameter: %s%s", prefix, key);
                return false;
            }
            if (p->type == RPC_ZERO && !is_zero_value(val)) {
                rpc_set_error(e, RPC_INVALID_PARAMS, "unsupported parameter: %s%s (only 0/false accepted)", prefix,
                              key);
                return false;
            }
            /* null for an optional parameter means "not given", as SPDK's decoders treat it. */
            if (val == NULL && !p->required)
                continue;
            if (p->type == RPC_IGNORED)
                note_ignored(prefix, key);
            if (!type_ok(val, p->type)) {
                rpc_set_error(e, RPC_INVALID_PARAMS, "parameter %s%s must be %s", prefix, key, type_name(p->type));
                return false;
            }
        }
    }
    for (const struct rpc_param *p = spec; p->name != NULL; p++) {
        struct json_object *v = NULL;
        if (p->required && (params == NULL || !json_object_object_get_ex(params, p->name, &v) || v == NULL)) {
            rpc_set_error(e, RPC_INVALID_PARAMS, "missing parameter: %s%s", prefix, p->name);
            return false;
        }
    }
    return true;
}

static struct json_object *get(struct json_object *params, const char *name)
{
    struct json_object *v = NULL;
    if (params == NULL || !json_object_object_get_ex(params, name, &v))
        return NULL;
    return v;
}

const char *rpc_get_string(struct json_object *params, const char *name)
{
    struct json_object *v = get(params, name);
    return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

uint64_t rpc_get_u64(struct json_object *params, const char *name, uint64_t dflt)
{
    struct json_object *v = get(params, name);
    return v != NULL && json_object_is_type(v, json_type_int) ? json_object_get_uint64(v) : dflt;
}

bool rpc_get_bool(struct json_object *params, const char *name, bool dflt)
{
    struct json_object *v = get(params, name);
    return v != NULL && json_object_is_type(v, json_type_boolean) ? json_object_get_boolean(v) : dflt;
}

struct json_object *rpc_get_object(struct json_object *params, const char *name)
{
    struct json_object *v = get(params, name);
    return v != NULL && json_object_is_type(v, json_type_object) ? v : NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool rpc_parse_hex_id(const char *s, uint8_t *out, size_t len)
{
    size_t n = 0;
    int hi = -1;
    for (; *s; s++) {
        if (*s == '-')
            continue;
        int v = hexval(*s);
        if (v < 0 || n == len)
            return false;
        if (hi < 0) {
            hi = v;
        } else {
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return n == len && hi < 0;
}

bool rpc_parse_uuid(const char *s, uint8_t out[16])
{
    /* Canonical 8-4-4-4-12 form only: dashes anywhere else mean a typo, not a UUID. */
    static const int dash_at[] = {8, 13, 18, 23};
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 4; i++)
        if (s[dash_at[i]] != '-')
            return false;
    return rpc_parse_hex_id(s, out, 16);
}

void rpc_format_hex_id(const uint8_t *id, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02X", id[i]);
    out[2 * len] = '\0';
}

bool rpc_id_is_zero(const uint8_t *id, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (id[i])
            return false;
    return true;
}

static const struct rpc_method *const method_tables[] = {rpc_bdev_methods, rpc_nvmf_methods, rpc_app_methods,
                                                           rpc_host_methods, rpc_iostat_methods, rpc_qos_methods, rpc_upgrade_methods,
                                                           rpc_nvmf_stats_methods,
                                                           rpc_spdk_option_methods};

const struct rpc_method *rpc_method_next(int *table, int *index)
{
    while (*table < (int)(sizeof(method_tables) / sizeof(method_tables[0]))) {
        const struct rpc_method *m = &method_tables[*table][*index];
        if (m->name != NULL) {
            (*index)++;
            return m;
        }
        (*table)++;
        *index = 0;
    }
    return NULL;
}

static const struct rpc_method *find_method(const char *name)
{
    int t = 0, i = 0;
    const struct rpc_method *m;
    while ((m = rpc_method_next(&t, &i)) != NULL)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

struct json_object *rpc_dispatch(const char *method, struct json_object *params, int *err_code, char **err_msg)
{
    struct rpc_err e = {0, NULL};
    struct json_object *result = NULL;
    const struct rpc_method *m = method != NULL ? find_method(method) : NULL;

    if (m == NULL) {
        rpc_set_error(&e, RPC_METHOD_NOT_FOUND, "Method not found: %s", method != NULL ? method : "(null)");
    } else {
        current_method = m->name;
        if (m->params == NULL || rpc_check_params(params, m->params, NULL, &e))
            result = m->handler(params, &e);
        current_method = "";
    }
    if (e.code != 0) {
        json_object_put(result);
        result = NULL;
        if (e.msg == NULL)
            e.msg = strdup(e.code < 0 && e.code > -4096 ? strerror(-e.code) : "error");
    } else {
        free(e.msg);
        e.msg = NULL;
    }
    *err_code = e.code;
    if (err_msg != NULL)
        *err_msg = e.msg;
    else
        free(e.msg);
    return result;
}
