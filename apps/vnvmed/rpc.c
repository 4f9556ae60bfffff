/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC 2.0 server on a unix stream socket, run by the control thread.
 *
 * Requests are a stream of JSON values: one may arrive over several reads
 * and several may come in one read, so each connection keeps an incremental
 * json_tokener and a count of bytes in the request being parsed (bounded).
 * A syntax error leaves no way to find the next request: the client gets a
 * parse error and is disconnected. Replies are queued per connection; while
 * a connection has unsent output it is not read (backpressure: a client that
 * does not read its replies cannot make us buffer without bound).
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/unix_listen.h"
#include "recovery.h"
#include "rpc_internal.h"
#include "vnvmed.h"

#define RPC_DEFAULT_PATH "/var/run/vnvme/rpc.sock"
#define RPC_MAX_REQUEST (1u << 20)
#define RPC_MAX_CLIENTS 64
#define RPC_READ_CHUNK 65536
#define RPC_POLL_MS 100

struct rpc_conn {
    int fd;
    struct json_tokener *tok;
    size_t req_bytes; /* fed to tok since the last complete request */
    char *out;
    size_t out_len, out_off, out_cap;
    bool eof;     /* peer finished sending: close once replies are out */
    bool closing; /* protocol error: close once the error reply is out */
};

static int listen_fd = -1;
static char listen_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static struct rpc_conn *conns[RPC_MAX_CLIENTS];
static int nr_conns;

/* rpc_server_watch(): a server sharing this loop, so that it may call what the RPC methods call. */
static struct {
    int fd;
    int (*timeout_ms)(void *arg);
    void (*run)(void *arg);
    void *arg;
} watch = {.fd = -1};

void rpc_server_watch(int fd, int (*timeout_ms)(void *arg), void (*run)(void *arg), void *arg)
{
    watch.fd = fd;
    watch.timeout_ms = timeout_ms;
    watch.run = run;
    watch.arg = arg;
}

/* ---- socket setup ---- */
static int make_parent_dirs(const char *path)
{
    char dir[sizeof(listen_path)];
    strcpy(dir, path);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return 0;
}

int rpc_server_start(const char *path, const gid_t *group)
{
    struct sockaddr_un sa;
    if (listen_fd >= 0)
        return -EALREADY;
    if (path == NULL)
        path = RPC_DEFAULT_PATH;
    int rc = vnvme_unix_addr(&sa, path); /* the length check, before any directory is made */
    if (rc < 0)
        return rc;
    rc = make_parent_dirs(path);
    if (rc < 0) {
        VNVME_ERR("rpc", "cannot create the directory of %s: %s", path, strerror(-rc));
        return rc;
    }
    int fd = vnvme_unix_listen(path, 16, group, "rpc");
    if (fd < 0) {
        VNVME_ERR("rpc", "cannot listen on %s: %s", path, strerror(-fd));
        return fd;
    }
    listen_fd = fd;
    strcpy(listen_path, path);
    VNVME_INFO("rpc", "listening on %s", path);
    return 0;
}

int rpc_server_listen_fd(void)
{
    return listen_fd;
}

const char *rpc_server_path(void)
{
    return listen_fd >= 0 ? listen_path : "";
}

int rpc_server_adopt(int fd, const char *path)
{
    if (listen_fd >= 0)
        return -EALREADY;
    if (!path || !*path || strlen(path) >= sizeof(listen_path))
        return -EINVAL;
    /* The socket file stays where the running process made it: clients keep finding it there. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    strcpy(listen_path, path);
    listen_fd = fd;
    VNVME_INFO("rpc", "serving the handed-over socket %s", listen_path);
    return 0;
}

/* ---- connections ---- */
static void conn_free(struct rpc_conn *c)
{
    close(c->fd);
    json_tokener_free(c->tok);
    free(c->out);
    free(c);
}

static void accept_clients(void)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                VNVME_WARN("rpc", "accept: %s", strerror(errno));
            return;
        }
        struct rpc_conn *c = nr_conns < RPC_MAX_CLIENTS ? calloc(1, sizeof(*c)) : NULL;
        if (c != NULL)
            c->tok = json_tokener_new();
        if (c == NULL || c->tok == NULL) {
            VNVME_WARN("rpc", "refusing a client: %s", nr_conns < RPC_MAX_CLIENTS ? "out of memory" : "too many clients");
            free(c);
            close(fd);
            continue;
        }
        json_tokener_set_flags(c->tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
        c->fd = fd;
        conns[nr_conns++] = c;
    }
}

static bool conn_has_output(const struct rpc_conn *c)
{
    return c->out_off < c->out_len;
}

/* Returns false when the connection is dead. */
static bool conn_flush(struct rpc_conn *c)
{
    while (conn_has_output(c)) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return true;
}

static void conn_queue(struct rpc_conn *c, struct json_object *reply)
{
    size_t len;
    const char *s = json_object_to_json_string_length(reply, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                                      &len);
    if (c->out_len + len + 1 > c->out_cap) {
        size_t cap = c->out_len + len + 1 + 4096;
        char *n = realloc(c->out, cap);
        if (n == NULL) {
            c->closing = true;
            return;
        }
        c->out = n;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, s, len);
    c->out[c->out_len + len] = '\n';
    c->out_len += len + 1;
}

/* ---- JSON-RPC ---- */
static struct json_object *error_reply(struct json_object *id, int code, const char *msg)
{
    struct json_object *r = json_object_new_object();
    struct json_object *err = json_object_new_object();
    json_object_object_add(r, "jsonrpc", json_object_new_string("2.0"));
    json_object_object_add(err, "code", json_object_new_int(code));
    json_object_object_add(err, "message", json_object_new_string(msg));
    json_object_object_add(r, "error", err);
    json_object_object_add(r, "id", json_object_get(id));
    return r;
}

static bool valid_id(struct json_object *id)
{
    return id == NULL || json_object_is_type(id, json_type_string) || json_object_is_type(id, json_type_int) ||
           json_object_is_type(id, json_type_double);
}

/* One request object; NULL when no reply is due (a notification). */
static struct json_object *handle_call(struct json_object *req)
{
    struct json_object *id = NULL, *ver = NULL, *method = NULL, *params = NULL;
    if (!json_object_is_type(req, json_type_object))
        return error_reply(NULL, RPC_INVALID_REQUEST, "Invalid request: not an object");
    bool has_id = json_object_object_get_ex(req, "id", &id);
    if (!valid_id(id))
        return error_reply(NULL, RPC_INVALID_REQUEST, "Invalid request: id must be a string, number or null");
    if (!json_object_object_get_ex(req, "jsonrpc", &ver) || !json_object_is_type(ver, json_type_string) ||
        strcmp(json_object_get_string(ver), "2.0") != 0)
        return error_reply(id, RPC_INVALID_REQUEST, "Invalid request: jsonrpc must be \"2.0\"");
    if (!json_object_object_get_ex(req, "method", &method) || !json_object_is_type(method, json_type_string))
        return error_reply(id, RPC_INVALID_REQUEST, "Invalid request: method must be a string");
    json_object_object_get_ex(req, "params", &params);
    if (params != NULL && !json_object_is_type(params, json_type_object) &&
        !json_object_is_type(params, json_type_array))
        return error_reply(id, RPC_INVALID_REQUEST, "Invalid request: params must be an object or array");

    int code = 0;
    char *msg = NULL;
    VNVME_DEBUG("rpc", "call %s", json_object_get_string(method));
    struct json_object *result = rpc_dispatch(json_object_get_string(method), params, &code, &msg);
    /* What a client changed must survive a crash too (recovery.c compares, so queries cost a save_config). */
    if (code == 0)
        recovery_config_changed();
    if (!has_id) {
        json_object_put(result);
        free(msg);
        return NULL;
    }
    if (code != 0) {
        struct json_object *r = error_reply(id, code, msg ? msg : "error");
        free(msg);
        return r;
    }
    struct json_object *r = json_object_new_object();
    json_object_object_add(r, "jsonrpc", json_object_new_string("2.0"));
    json_object_object_add(r, "result", result);
    json_object_object_add(r, "id", json_object_get(id));
    return r;
}

static struct json_object *handle_request(struct json_object *req)
{
    if (!json_object_is_type(req, json_type_array))
        return handle_call(req);
    size_t n = json_object_array_length(req);
    if (n == 0)
        return error_reply(NULL, RPC_INVALID_REQUEST, "Invalid request: empty batch");
    struct json_object *replies = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        struct json_object *r = handle_call(json_object_array_get_idx(req, i));
        if (r != NULL)
            json_object_array_add(replies, r);
    }
    if (json_object_array_length(replies) == 0) {
        json_object_put(replies);
        return NULL;
    }
    return replies;
}

static void conn_fail(struct rpc_conn *c, int code, const char *msg)
{
    struct json_object *r = error_reply(NULL, code, msg);
    conn_queue(c, r);
    json_object_put(r);
    c->closing = true;
}

static void conn_feed(struct rpc_conn *c, const char *buf, size_t len)
{
    while (len > 0 && !c->closing) {
        struct json_object *req = json_tokener_parse_ex(c->tok, buf, (int)len);
        enum json_tokener_error jerr = json_tokener_get_error(c->tok);
        if (jerr == json_tokener_continue) {
            c->req_bytes += len;
            if (c->req_bytes > RPC_MAX_REQUEST)
                conn_fail(c, RPC_INVALID_REQUEST, "Invalid request: request too large");
            return;
        }
        if (jerr != json_tokener_success) {
            conn_fail(c, RPC_PARSE_ERROR, "Parse error");
            return;
        }
        size_t used = json_tokener_get_parse_end(c->tok);
        if (used == 0 || used > len)
            used = len; /* never loop without progress */
        c->req_bytes += used;
        json_tokener_reset(c->tok);
        if (c->req_bytes > RPC_MAX_REQUEST) {
            json_object_put(req);
            conn_fail(c, RPC_INVALID_REQUEST, "Invalid request: request too large");
            return;
        }
        c->req_bytes = 0;
        buf += used;
        len -= used;
        struct json_object *reply = handle_request(req);
        json_object_put(req);
        if (reply != NULL) {
            conn_queue(c, reply);
            json_object_put(reply);
        }
    }
}

/* Returns false when the connection should be closed now. */
static bool conn_read(struct rpc_conn *c)
{
    static char buf[RPC_READ_CHUNK];
    ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    if (n == 0) {
        c->eof = true;
        return true;
    }
    conn_feed(c, buf, (size_t)n);
    return true;
}

void rpc_server_run(volatile int *stop)
{
    struct pollfd pfd[RPC_MAX_CLIENTS + 2];
    while (!*stop && listen_fd >= 0) {
        int n = 0, timeout = RPC_POLL_MS, watch_idx = -1;
        pfd[n++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
        for (int i = 0; i < nr_conns; i++) {
            struct rpc_conn *c = conns[i];
            short ev = conn_has_output(c) ? POLLOUT : (c->eof || c->closing ? 0 : POLLIN);
            pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
        }
        if (watch.fd >= 0) {
            watch_idx = n;
            pfd[n++] = (struct pollfd){.fd = watch.fd, .events = POLLIN};
            int t = watch.timeout_ms(watch.arg);
            if (t >= 0 && t < timeout)
                timeout = t;
        }
        int rc = poll(pfd, (nfds_t)n, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            VNVME_ERR("rpc", "poll: %s", strerror(errno));
            return;
        }
        int polled = nr_conns;
        for (int i = 0; i < polled; i++) {
            struct rpc_conn *c = conns[i];
            short re = pfd[i + 1].revents;
            bool alive = true;
            if (!conn_has_output(c) && !c->eof && !c->closing && (re & (POLLIN | POLLHUP | POLLERR)))
                alive = conn_read(c);
            if (alive && conn_has_output(c))
                alive = conn_flush(c);
            else if (re & POLLERR)
                alive = false;
            if (alive && !conn_has_output(c) && (c->eof || c->closing))
                alive = false;
            if (!alive) {
                conn_free(c);
                conns[i] = NULL;
            }
        }
        int kept = 0;
        for (int i = 0; i < nr_conns; i++)
            if (conns[i] != NULL)
                conns[kept++] = conns[i];
        nr_conns = kept;
        if (pfd[0].revents & POLLIN)
            accept_clients();
        /* Only the watch that was polled (it may have been replaced meanwhile). */
        if (watch_idx >= 0 && watch.fd == pfd[watch_idx].fd)
            watch.run(watch.arg);
    }
}

void rpc_server_handed_over(void)
{
    /* Answers already queued (framework_upgrade's) still go out; the socket file is the new process's. */
    for (int i = 0; i < nr_conns; i++) {
        struct rpc_conn *c = conns[i];
        for (int tries = 0; tries < 100 && conn_has_output(c); tries++) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
            if (poll(&pfd, 1, 10) < 0 || !conn_flush(c))
                break;
        }
        conn_free(c);
    }
    nr_conns = 0;
    if (listen_fd >= 0)
        close(listen_fd);
    listen_fd = -1;
}

void rpc_server_stop(void)
{
    for (int i = 0; i < nr_conns; i++)
        conn_free(conns[i]);
    nr_conns = 0;
    if (listen_fd >= 0) {
        close(listen_fd);
        listen_fd = -1;
        unlink(listen_path);
    }
}
