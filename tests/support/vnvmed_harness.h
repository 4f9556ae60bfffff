/* SPDX-License-Identifier: MIT */
/*
 * A vnvmed under test: the built daemon (path in $VNVMED) started in its own
 * temp dir from a JSON config the test writes, waited for, signalled, stopped
 * and talked to over its JSON-RPC socket. Shared by every test that drives
 * the real daemon so they all start, stop and clean up the same way.
 */
#ifndef VNVME_TEST_VNVMED_HARNESS_H
#define VNVME_TEST_VNVMED_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct json_object;

struct vnvmed_harness {
    char dir[64];         /* the temp dir: everything below it goes at cleanup */
    char listen_dir[96];  /* dir/nvme0: traddr of the first listener */
    char sock_path[128];  /* listen_dir/cntrl: that listener's vfio-user socket */
    char rpc_path[128];   /* dir/rpc.sock */
    char config_path[128]; /* dir/config.json */
    char trid[160];       /* "trtype:VFIOUSER traddr:<listen_dir>" for the host driver */
    pid_t pid;            /* the daemon, or -1 */
};

struct vnvmed_start {
    const char *core_mask;     /* -m; NULL: "0x1" */
    const char *second_socket; /* another listener socket the config creates, to wait for too */
    bool without_listener;     /* the config has no listener: wait for the RPC socket only */
    const char *const *args;   /* more vnvmed options, NULL-terminated (at most 16) */
};

/* Makes /tmp/<prefix>.XXXXXX and fills in the paths; 0 or -1. */
int vnvmed_harness_init(struct vnvmed_harness *h, const char *prefix);

/* dir/name into buf; 0, or -1 when it does not fit. */
int vnvmed_harness_path(const struct vnvmed_harness *h, const char *name, char *buf, size_t size);

/* Writes the daemon's JSON config from a printf format; 0 or -1. */
int vnvmed_harness_write_config(const struct vnvmed_harness *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* fork/exec $VNVMED with the config and waits until its sockets exist; 0 or -1 (reason on stderr). */
int vnvmed_harness_start(struct vnvmed_harness *h, const struct vnvmed_start *how);

/*
 * SIGTERM (after SIGCONT, in case a test left it stopped) and reap, SIGKILL
 * if it does not exit in time. Its exit status, -signal when a signal ended
 * it, or -ECHILD when none was running.
 */
int vnvmed_harness_stop(struct vnvmed_harness *h);

/* A hung server: SIGSTOP / SIGCONT. kill()'s result. */
/* SIGSTOP pid and wait until all its threads are stopped (kill() returns earlier). 0 or -1. */
int harness_stop_process(pid_t pid);
int vnvmed_harness_pause(const struct vnvmed_harness *h);
int vnvmed_harness_resume(const struct vnvmed_harness *h);

/* A crashed server: SIGKILL and reap. kill()'s result. */
int vnvmed_harness_kill(struct vnvmed_harness *h);

bool vnvmed_harness_running(const struct vnvmed_harness *h);

/* CPU time (user + system) the daemon's thread called name ("reactor_0") has used, in ms; -1 if none. */
int64_t vnvmed_harness_thread_cpu_ms(const struct vnvmed_harness *h, const char *name);

/* Stops the daemon if it still runs and removes the temp dir with all below it. */
void vnvmed_harness_cleanup(struct vnvmed_harness *h);

/*
 * One JSON-RPC call, params as JSON text (or NULL), rpc_client_call's
 * contract: 0 with *result, 1 with *code and *msg (malloc'd), or -errno.
 */
int vnvmed_harness_call(const struct vnvmed_harness *h, const char *method, const char *params_json,
                        struct json_object **result, int *code, char **msg);

/*
 * The same, for tests that only need the outcome: 0 with *result (result may
 * be NULL), the server's error code (never 0; printed to stderr), or -errno.
 */
int vnvmed_harness_rpc(const struct vnvmed_harness *h, const char *method, const char *params_json,
                       struct json_object **result);

uint64_t vnvmed_harness_now_ms(void);

#endif
