/* SPDX-License-Identifier: MIT */
/* Calling rpc_dispatch() from a test and checking what it answered; failures are cmocka assertions. */
#ifndef VNVME_TEST_RPC_CHECK_H
#define VNVME_TEST_RPC_CHECK_H

#include <stdint.h>

#include <json-c/json.h>

/* JSON text to an object (NULL text: NULL). */
struct json_object *parse(const char *text);
/* A call that must succeed: its result (the caller puts it). */
struct json_object *ok(const char *method, const char *params);
/* A call that must answer true. */
void ok_true(const char *method, const char *params);
/* A call that must fail with want_code and a message containing want_msg. */
void err(const char *method, const char *params, int want_code, const char *want_msg);
/* The string at "a.b.c" (object keys), or NULL. */
const char *str_at(struct json_object *o, const char *path);
/* A number a key must hold. */
uint64_t u64_at(struct json_object *o, const char *key);
/* cmocka setup and teardown: no subsystems, bdevs or transport (fake_tgt_reset). */
int rpc_clean_slate(void **state);

#endif
