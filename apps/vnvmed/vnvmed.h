/* SPDX-License-Identifier: MIT */
/*
 * vnvmed internals shared by its files:
 *   main.c      arguments, signals, start/stop, the embedded default configuration
 *   reactor.c   one polling thread per core: owns controllers, runs their hot loop, backs off when idle
 *               (reactor_poll.c: which controllers a round polls; reactor_stats.c: its figures)
 *   tgt.c       the target's configuration objects: subsystems and their listeners (controllers)
 *   rpc.c       JSON-RPC 2.0 server on a unix socket (the control thread)
 *   rpc_*.c     method handlers: bdev_*, nvmf_*, framework/rpc_get_methods/save_config
 *   config.c    loading an SPDK-shaped JSON config (a list of method calls) and saving one
 *   metrics*.c  the Prometheus endpoint (--metrics), served by the control thread: metrics.h
 *
 * Threads: the main ("control") thread runs the RPC server and owns the bdev
 * registry and the tgt objects' lifetimes. Each subsystem is assigned to one
 * reactor; its namespaces and controllers are touched only on that reactor, so
 * the control thread changes them with reactor_call() (runs a function there
 * and waits for it).
 */
#ifndef VNVMED_H
#define VNVMED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nvmet.h"
#include "transport_vfio_user.h"

struct json_object;

/* What spdk_get_version and the metrics' vnvme_build_info report. */
#define VNVME_VERSION_MAJOR 0
#define VNVME_VERSION_MINOR 1
#define VNVME_VERSION_PATCH 0
#define VNVME_VERSION "0.1.0"

/* ---- reactor.c ---- */
struct reactor;
typedef void (*reactor_fn)(void *arg);

/* Start one reactor per CPU in cpumask (bit n = core n); pin each. Returns the count or -errno. */
int reactors_start(uint64_t cpumask);
void reactors_stop(void);
int reactors_count(void);
struct reactor *reactor_get(int i);
/* Run fn(arg) on the reactor thread and wait for it. From the reactor itself, runs it directly. */
void reactor_call(struct reactor *r, reactor_fn fn, void *arg);
/*
 * A reactor's figures (framework_get_reactors, nvmf_get_stats), gathered on
 * its own thread. Ticks are common/ticks.h's. A poll is one round of the loop;
 * a sleep is one wait for events, and a wakeup one that ended by an event
 * rather than its timeout. Busy time is rounds that found work.
 */
struct reactor_stats {
    int index, cpu;
    uint64_t busy_ticks, idle_ticks;
    uint64_t polls, polls_with_work, sleeps, wakeups;
    uint32_t ctrlrs;       /* controllers it polls */
    uint32_t ctrlrs_polled_rarely; /* of which idle a while, polled less often (reactor.c) */
    uint32_t connected;    /* of which a client is connected */
    uint32_t admin_qpairs; /* enabled controllers (their admin queue pair) */
    uint32_t io_qpairs;    /* I/O submission queues created */
    uint64_t in_bdev;      /* commands inside bdevs now */
    uint64_t completed_io; /* reads and writes completed (the controllers' SMART counters) */
    uint64_t cqes_posted, irqs_raised, cq_full_holds, dbbuf_arms; /* summed over the controllers */
    uint64_t irqs_coalesced; /* completions that shared another's interrupt */
};
void reactor_get_stats(struct reactor *r, struct reactor_stats *out);
/* One controller's figures; the reactor's are their sums. */
struct ctrlr_stats {
    uint16_t cntlid;
    bool connected;     /* a client holds its socket */
    bool enabled;       /* CSTS.RDY: its admin queue pair exists */
    uint32_t io_qpairs; /* I/O submission queues created */
    uint32_t in_bdev;   /* commands inside bdevs now */
    uint64_t read_cmds, write_cmds;      /* SMART Host Read/Write Commands */
    uint64_t bytes_read, bytes_written;  /* what SMART's Data Units count, in bytes */
    uint64_t busy_ticks;                 /* SMART Controller Busy Time, up to now */
    uint64_t cqes_posted, irqs_raised, cq_full_holds, dbbuf_arms;
    uint64_t irqs_coalesced;
};
/* Only on the controller's reactor: from reactor_for_each_ctrlr's fn, or the reactor itself. */
void ctrlr_get_stats(struct nvmet_vfio_user_ctrlr *vc, struct ctrlr_stats *out);
/*
 * Each controller of the reactor that serves subsystem ss: fn(vc, arg) runs on
 * the reactor thread, where the controller's state may be read.
 */
void reactor_for_each_ctrlr(struct reactor *r, const struct nvmet_subsys *ss,
                            void (*fn)(struct nvmet_vfio_user_ctrlr *vc, void *arg), void *arg);
/* Called on the reactor thread (via reactor_call): start/stop polling a controller. */
void reactor_add_ctrlr(struct reactor *r, struct nvmet_vfio_user_ctrlr *vc);
void reactor_remove_ctrlr(struct reactor *r, struct nvmet_vfio_user_ctrlr *vc);

/* ---- tgt.c (control thread) ---- */
struct tgt_listener {
    char traddr[256]; /* directory; the socket is traddr/cntrl */
    char socket_group[64]; /* as nvmf_subsystem_add_listener named it ("": vnvmed's --socket-group), for save_config */
    struct nvmet_vfio_user_ctrlr *vc;
    bool held; /* rebuilt by a takeover and not polled until it commits (tgt_handover.c) */
    struct tgt_listener *next;
};

struct tgt_subsystem {
    struct nvmet_subsys *ss;
    struct reactor *reactor;
    struct tgt_listener *listeners;
    struct tgt_subsystem *next;
};

bool tgt_transport_created(void); /* nvmf_create_transport VFIOUSER done */
int tgt_create_transport(const char *trtype);
int tgt_subsystem_create(const char *nqn, const char *serial, const char *model, uint32_t max_namespaces,
                         bool allow_any_host, struct tgt_subsystem **out);
int tgt_subsystem_delete(const char *nqn);
struct tgt_subsystem *tgt_subsystem_find(const char *nqn);
struct tgt_subsystem *tgt_subsystem_first(void);
/* nsid 0 = first free; returns the NSID or -errno. */
int tgt_ns_add(struct tgt_subsystem *ts, const char *bdev_name, uint32_t nsid, const uint8_t *nguid,
               const uint8_t *eui64, const uint8_t *uuid);
int tgt_ns_remove(struct tgt_subsystem *ts, uint32_t nsid);
/* After a bdev's num_blocks grew: namespaces on it take the new size and notify their hosts. */
void tgt_bdev_resized(struct vnvme_bdev *b);
/*
 * Listen on traddr/cntrl. socket_group (a group name or id; NULL: the default
 * set by tgt_set_socket_group) gets read-write access to the socket, mode
 * 0660, and search access to the directories this creates for it (0710).
 */
int tgt_listener_add(struct tgt_subsystem *ts, const char *trtype, const char *traddr, const char *socket_group);
/* vnvmed --socket-group: the group of controller sockets whose listener names none (NULL: owner only). */
void tgt_set_socket_group(const char *group);
/* traddr/cntrl into out: 0, or -ENAMETOOLONG. */
int tgt_socket_path(const char *traddr, char *out, size_t len);
int tgt_listener_remove(struct tgt_subsystem *ts, const char *trtype, const char *traddr);
void tgt_shutdown(void); /* delete every subsystem (clients see a disconnect, sockets removed) */

/* ---- rpc.c / config.c ---- */
/* Mode 0600, or 0660 with group *group (vnvmed --rpc-group); a stale socket is replaced, a live one refused. */
int rpc_server_start(const char *path, const gid_t *group);
/* Serve RPC until *stop; polls with a timeout so stop is seen. */
void rpc_server_run(volatile int *stop);
void rpc_server_stop(void);
/* Live upgrade: the listening socket (-1 when none); serving one handed over; leaving without removing it. */
int rpc_server_listen_fd(void);
const char *rpc_server_path(void);
int rpc_server_adopt(int fd, const char *path);
void rpc_server_handed_over(void);
/*
 * Another server on the control thread's loop (metrics.c): fd is polled for
 * input with the RPC sockets, timeout_ms() may shorten each wait (-1: no
 * deadline of its own), and run() is called after every wait, whatever ended
 * it, so at least every 100 ms: libmicrohttpd does some of its bookkeeping
 * (listening again once below its connection limit) only when run, with
 * nothing on its fd to say so. fd -1 removes it.
 */
void rpc_server_watch(int fd, int (*timeout_ms)(void *arg), void (*run)(void *arg), void *arg);
/* Execute one JSON-RPC call (method + params) from the RPC server or the config loader. Returns result or error. */
struct json_object *rpc_dispatch(const char *method, struct json_object *params, int *err_code, char **err_msg);
int config_load_file(const char *path);
/*
 * The same for a configuration already parsed; origin names it in messages.
 * part: all of it, everything but the host role (bdev_nvme_*: attaching
 * controllers, CUSE), or the host role alone, which a live upgrade or a crash
 * recovery applies once the target side serves (a host controller may be
 * attached to this very daemon's target).
 */
enum config_part { CONFIG_ALL, CONFIG_TARGET, CONFIG_HOST_ROLE };
int config_load_json(const char *origin, struct json_object *root, enum config_part part);
struct json_object *config_save(void); /* SPDK-shaped {"subsystems":[...]} reproducing the running state */

#endif
