/* SPDX-License-Identifier: MIT */
/* Minimal JSON-RPC 2.0 client for vnvmed's unix socket: one call per connection. */
#ifndef VNVME_CLI_RPC_CLIENT_H
#define VNVME_CLI_RPC_CLIENT_H

struct json_object;

#define RPC_CLIENT_DEFAULT_TIMEOUT_MS 60000

/* How long a call waits for its reply; 0: forever. Default RPC_CLIENT_DEFAULT_TIMEOUT_MS. */
void rpc_client_set_timeout_ms(int ms);

/*
 * Call method with params (borrowed, may be NULL). Returns 0 with *result set
 * (caller puts it; NULL = JSON null), 1 when the server answered an error
 * (*err_code, *err_msg malloc'd), or -errno when the server could not be
 * reached, answered garbage, or did not answer in time (-ETIMEDOUT; message
 * already printed to stderr).
 */
int rpc_client_call(const char *socket_path, const char *method, struct json_object *params,
                    struct json_object **result, int *err_code, char **err_msg);

#endif
