/* SPDX-License-Identifier: MIT */
/*
 * vnvmed --metrics ADDRESS:PORT: the figures of bdev_get_iostat,
 * bdev_get_histogram, bdev_get_bdevs' rate limits, framework_get_reactors,
 * nvmf_get_stats and nvmf_subsystem_get_controllers in Prometheus' text
 * exposition format (version 0.0.4), over HTTP.
 *
 *   metrics.c         the HTTP server (libmicrohttpd, no thread of its own) on the control thread's loop
 *   metrics_gather.c  one snapshot of everything, read as the RPC methods read it
 *   metrics_format.c  a snapshot as text: a pure function, unit tested
 *   metrics_addr.c    the --metrics argument
 *
 * Serving on the control thread is what lets a scrape call what the RPC
 * methods call, with no lock of its own and nothing added to the I/O path.
 */
#ifndef VNVMED_METRICS_H
#define VNVMED_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "vnvme/bdev_qos.h"
#include "vnvme/bdev_stat.h"
#include "vnvmed.h"

struct metrics_bdev {
    const char *name;
    struct vnvme_bdev_iostat io;
    uint64_t qos[VNVME_QOS_NR_LIMITS]; /* 0: no such limit */
    uint64_t *hist;                    /* VNVME_BDEV_HIST_BUCKETS counts; NULL: histogram off */
};

struct metrics_ctrlr {
    const char *subsystem; /* its NQN */
    struct ctrlr_stats st;
};

struct metrics_snapshot {
    const char *version;
    double start_time; /* Unix time the daemon started */
    double uptime;     /* seconds since */
    uint64_t tick_rate; /* of every _ticks figure below */
    struct metrics_bdev *bdevs;
    size_t nr_bdevs;
    struct reactor_stats *reactors;
    size_t nr_reactors;
    struct metrics_ctrlr *ctrlrs;
    size_t nr_ctrlrs;
};

/* ---- metrics_format.c ---- */
/* The snapshot in the text format. 0, or -EIO when out could not take it. */
int metrics_format(const struct metrics_snapshot *s, FILE *out);
/* The histogram's upper bounds in seconds, as its le labels read, ascending; +Inf comes after them. */
#define METRICS_NR_LATENCY_BOUNDS 20
extern const char *const metrics_latency_bounds[METRICS_NR_LATENCY_BOUNDS];

/* ---- metrics_gather.c (control thread) ---- */
/* Everything the text shows, now. 0 or -ENOMEM; free with metrics_snapshot_free(). */
int metrics_gather(struct metrics_snapshot *s);
void metrics_snapshot_free(struct metrics_snapshot *s);

/* ---- metrics_addr.c ---- */
/*
 * The --metrics argument: PORT or :PORT (127.0.0.1), IPV4:PORT or
 * [IPV6]:PORT. Literal addresses only, since a name would depend on the
 * resolver at every start. 0, or -EINVAL with *why saying what is wrong.
 */
int metrics_parse_address(const char *arg, struct sockaddr_storage *out, socklen_t *len, const char **why);
/* "127.0.0.1:9100" or "[::1]:9100" into buf (64 bytes is enough). */
void metrics_format_address(const struct sockaddr *sa, char *buf, size_t size);

/* ---- metrics.c (control thread) ---- */
/*
 * Listen on addr (or serve listen_fd, a listening socket a live upgrade
 * handed over, when >= 0) from rpc_server_run's loop. 0 or -errno (the reason
 * is printed on stderr).
 */
int metrics_start(const struct sockaddr *addr, socklen_t len, int listen_fd);
void metrics_stop(void);
/* Live upgrade: the listening socket to hand over (-1 when not serving), and leaving it to the new process. */
int metrics_listen_fd(void);
void metrics_detach(void);

#endif
