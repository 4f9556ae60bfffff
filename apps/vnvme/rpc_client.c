/* SPDX-License-Identifier: MIT */
#include "rpc_client.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* rpc.py's default: a daemon that never answers must not hang a script forever. */
static int timeout_ms = RPC_CLIENT_DEFAULT_TIMEOUT_MS;

void rpc_client_set_timeout_ms(int ms)
{
    timeout_ms = ms;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd has something to read or the call's deadline passed (deadline < 0: none). */
static int wait_readable(int fd, int64_t deadline)
{
    for (;;) {
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            wait = left > 60000 ? 60000 : (int)left;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, wait);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "vnvme: socket path too long: %s\n", path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int err = errno;
        fprintf(stderr, "vnvme: cannot connect to %s: %s — is vnvmed running?\n", path, strerror(err));
        close(fd);
        return -err;
    }
    return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read until one complete JSON value arrived (the reply). */
static struct json_object *read_reply(int fd, int64_t deadline, int *err)
{
    char buf[65536];
    struct json_tokener *tok = json_tokener_new();
    struct json_object *obj = NULL;
    *err = 0;
    while (obj == NULL) {
        *err = wait_readable(fd, deadline);
        if (*err < 0)
            break;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *err = n < 0 ? -errno : -ECONNRESET;
            break;
        }
        obj = json_tokener_parse_ex(tok, buf, (int)n);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        if (obj == NULL && jerr != json_tokener_continue) {
            *err = -EPROTO;
            break;
        }
    }
    json_tokener_free(tok);
    return obj;
}

int rpc_client_call(const char *socket_path, const char *method, struct json_object *params,
                    struct json_object **result, int *err_code, char **err_msg)
{
    *result = NULL;
    int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : -1;
    int fd = connect_to(socket_path);
    if (fd < 0)
        return fd;
    struct json_object *req = json_object_new_object();
    json_object_object_add(req, "jsonrpc", json_object_new_string("2.0"));
    json_object_object_add(req, "method", json_object_new_string(method));
    if (params != NULL)
        json_object_object_add(req, "params", json_object_get(params));
    json_object_object_add(req, "id", json_object_new_int(1));
    size_t len;
    const char *s = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &len);
    int rc = send_all(fd, s, len);
    json_object_put(req);
    if (rc < 0) {
        fprintf(stderr, "vnvme: sending to %s: %s\n", socket_path, strerror(-rc));
        close(fd);
        return rc;
    }
    struct json_object *reply = read_reply(fd, deadline, &rc);
    close(fd);
    if (reply == NULL && rc == -ETIMEDOUT) {
        fprintf(stderr, "vnvme: no reply from %s to %s within %d ms\n", socket_path, method, timeout_ms);
        return rc;
    }
    if (reply == NULL) {
        fprintf(stderr, "vnvme: no valid reply from %s: %s\n", socket_path, strerror(-rc));
        return rc < 0 ? rc : -EPROTO;
    }
    struct json_object *error = NULL, *res = NULL;
    if (json_object_object_get_ex(reply, "error", &error) && error != NULL) {
        struct json_object *code = NULL, *msg = NULL;
        json_object_object_get_ex(error, "code", &code);
        json_object_object_get_ex(error, "message", &msg);
        *err_code = code ? json_object_get_int(code) : 0;
        *err_msg = strdup(msg ? json_object_get_string(msg) : "unknown error");
        json_object_put(reply);
        return 1;
    }
    if (!json_object_object_get_ex(reply, "result", &res)) {
        fprintf(stderr, "vnvme: reply without result or error\n");
        json_object_put(reply);
        return -EPROTO;
    }
    *result = json_object_get(res);
    json_object_put(reply);
    return 0;
}
