/* SPDX-License-Identifier: MIT */
/* Calling rpc_dispatch() from a test and checking what it answered (rpc_check.h). */
#include "rpc_check.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_tgt.h"
#include "vnvmed.h"

struct json_object *parse(const char *text)
{
    if (text == NULL)
        return NULL;
    struct json_object *o = json_tokener_parse(text);
    assert_non_null(o);
    return o;
}

/* Successful call: returns the result (caller puts it). */
struct json_object *ok(const char *method, const char *params)
{
    struct json_object *p = parse(params);
    int code = 99;
    char *msg = NULL;
    struct json_object *r = rpc_dispatch(method, p, &code, &msg);
    if (code != 0)
        fail_msg("%s %s: unexpected error %d %s", method, params ? params : "", code, msg);
    assert_null(msg);
    json_object_put(p);
    return r;
}

void ok_true(const char *method, const char *params)
{
    struct json_object *r = ok(method, params);
    assert_true(json_object_is_type(r, json_type_boolean) && json_object_get_boolean(r));
    json_object_put(r);
}

void err(const char *method, const char *params, int want_code, const char *want_msg)
{
    struct json_object *p = parse(params);
    int code = 0;
    char *msg = NULL;
    struct json_object *r = rpc_dispatch(method, p, &code, &msg);
    json_object_put(p);
    assert_null(r);
    if (code != want_code || msg == NULL || strstr(msg, want_msg) == NULL)
        fail_msg("%s %s: got %d \"%s\", want %d \"%s\"", method, params ? params : "", code, msg ? msg : "(null)",
                 want_code, want_msg);
    free(msg);
}

const char *str_at(struct json_object *o, const char *path)
{
    /* path "a.b.c" of object keys */
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        if (!json_object_object_get_ex(o, k, &o))
            return NULL;
    return json_object_get_string(o);
}

uint64_t u64_at(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("no %s in %s", key, json_object_to_json_string(o));
    return json_object_get_uint64(v);
}

int rpc_clean_slate(void **state)
{
    (void)state;
    fake_tgt_reset();
    return 0;
}
