/* SPDX-License-Identifier: MIT */
/*
 * The metrics endpoint's HTTP server: libmicrohttpd in "external epoll"
 * mode, so it has no thread of its own. Its epoll fd sits in the RPC loop's
 * poll set (rpc_server_watch) and MHD_run() serves whatever is ready without
 * blocking; a scrape is answered on the control thread, where the RPC
 * methods run, and reads the figures exactly as they do.
 *
 * A client cannot hold the control thread: sockets are non-blocking, at most
 * METRICS_MAX_CONNECTIONS are open at a time (more wait in the backlog) and
 * one silent for METRICS_IDLE_TIMEOUT_S is closed.
 *
 * We make the listening socket ourselves so that a bind failure is reported
 * with its reason (port in use, address not local) rather than "cannot start".
 */
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "metrics.h"

#define LOG_COMP "metrics"
#define METRICS_MAX_CONNECTIONS 16
#define METRICS_IDLE_TIMEOUT_S 10
#define METRICS_BACKLOG 32

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static struct MHD_Daemon *daemon_;
static struct timespec started_real, started_mono;

static double elapsed_since(const struct timespec *t0, clockid_t clock)
{
    struct timespec now;
    clock_gettime(clock, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static struct MHD_Response *scrape(unsigned *status)
{
    struct metrics_snapshot s;
    char *text = NULL;
    size_t len = 0;
    if (metrics_gather(&s) != 0)
        goto fail;
    s.start_time = (double)started_real.tv_sec + (double)started_real.tv_nsec / 1e9;
    s.uptime = elapsed_since(&started_mono, CLOCK_MONOTONIC);
    FILE *f = open_memstream(&text, &len);
    int rc = f ? metrics_format(&s, f) : -ENOMEM;
    metrics_snapshot_free(&s);
    if (!f || fclose(f) != 0 || rc != 0)
        goto fail;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (r) {
        *status = MHD_HTTP_OK;
        return r;
    }
fail:
    free(text);
    VNVME_WARN(LOG_COMP, "could not gather the metrics (out of memory)");
    *status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    static const char oom[] = "out of memory\n";
    return MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
}

static struct MHD_Response *fixed(const char *text)
{
    return MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
}

/* Every request is answered at its first call, before any body: nothing here takes one. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    struct MHD_Response *r;
    unsigned status;
    const char *type = "text/plain; charset=utf-8";
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!get) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        r = fixed("only GET and HEAD\n");
    } else if (strcmp(url, "/metrics") == 0) {
        r = scrape(&status);
        if (status == MHD_HTTP_OK)
            type = CONTENT_TYPE;
    } else if (strcmp(url, "/") == 0) {
        status = MHD_HTTP_OK;
        r = fixed("vnvmed: the metrics are at /metrics (Prometheus text format)\n");
    } else {
        status = MHD_HTTP_NOT_FOUND;
        r = fixed("not found: the metrics are at /metrics\n");
    }
    if (!r)
        return MHD_NO; /* out of memory: MHD closes the connection */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Per-connection trouble (a client that went away, a malformed request) is no news at notice level. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    VNVME_DEBUG(LOG_COMP, "%s", msg);
}

static int watch_timeout(void *arg)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(arg, &ms) != MHD_YES)
        return -1;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void watch_run(void *arg)
{
    MHD_run(arg);
}

static int listen_on(const struct sockaddr *addr, socklen_t len)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    /* A restart must not wait for the last run's connections to leave TIME_WAIT. */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, addr, len) < 0 || listen(fd, METRICS_BACKLOG) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int metrics_start(const struct sockaddr *addr, socklen_t len, int listen_fd)
{
    char where[80];
    metrics_format_address(addr, where, sizeof(where));
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) != MHD_YES) {
        fprintf(stderr, "vnvmed: --metrics %s: this libmicrohttpd has no epoll support\n", where);
        return -ENOTSUP;
    }
    int fd = listen_fd >= 0 ? listen_fd : listen_on(addr, len);
    if (fd < 0) {
        fprintf(stderr, "vnvmed: --metrics %s: cannot listen: %s\n", where, strerror(-fd));
        return fd;
    }
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (addr->sa_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    /* The logger first: MHD reports what it finds wrong with the options that follow through it. */
    daemon_ = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                               MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
                               (unsigned)METRICS_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                               (unsigned)METRICS_IDLE_TIMEOUT_S, MHD_OPTION_END);
    const union MHD_DaemonInfo *info = daemon_ ? MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!info) {
        /* Without a daemon the socket may or may not have been closed by MHD: left as it is, vnvmed exits. */
        fprintf(stderr, "vnvmed: --metrics %s: the HTTP server did not start\n", where);
        if (daemon_)
            MHD_stop_daemon(daemon_);
        daemon_ = NULL;
        return -EIO;
    }
    clock_gettime(CLOCK_REALTIME, &started_real);
    clock_gettime(CLOCK_MONOTONIC, &started_mono);
    rpc_server_watch(info->epoll_fd, watch_timeout, watch_run, daemon_);
    VNVME_INFO(LOG_COMP, "serving http://%s/metrics", where);
    return 0;
}

int metrics_listen_fd(void)
{
    const union MHD_DaemonInfo *info = daemon_ ? MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_LISTEN_FD) : NULL;
    return info ? info->listen_fd : -1;
}

void metrics_detach(void)
{
    /* No MHD_stop_daemon: it would shut down the listening socket the new process serves now. */
    if (daemon_)
        rpc_server_watch(-1, NULL, NULL, NULL);
    daemon_ = NULL;
}

void metrics_stop(void)
{
    if (!daemon_)
        return;
    rpc_server_watch(-1, NULL, NULL, NULL);
    MHD_stop_daemon(daemon_);
    daemon_ = NULL;
}
