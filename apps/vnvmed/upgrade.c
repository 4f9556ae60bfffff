/* SPDX-License-Identifier: MIT */
/*
 * framework_upgrade (ours): replace this process with a new vnvmed binary
 * while clients stay connected (handover.h has the conversation).
 *
 * Parameters: "binary" (default: the program this process runs, as it was
 * when it started) and "timeout_ms" (how long controllers may take to drain,
 * default 5000). The answer comes from this process once the new one runs:
 * its pid, how long controllers were paused, how many moved. When anything
 * fails before the new process runs, this process resumes serving and the
 * error says why.
 *
 * RBD bdevs are opened by the new process before the switch (both have the
 * image open meanwhile); this one closes its images once the new one runs,
 * which hands it the image's exclusive lock.
 *
 * Host-role controllers (bdev_nvme_attach_controller) and their CUSE devices
 * are not carried: an open CUSE connection cannot change hands (libfuse has
 * no way to adopt one). They are detached here before the controllers are
 * frozen, and the new process attaches them again once it serves; a process
 * holding a device node open sees ENOTCONN and opens it again (README). If
 * the handover fails they are attached here again.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sd_notify.h"
#include "handover.h"
#include "recovery.h"
#include "metrics.h"
#include "rpc_internal.h"
#include "vnvme/bdev.h"
#include "vnvmed.h"

#define LOG_COMP "upgrade"
#define PREPARE_TIMEOUT_MS 60000 /* the new process builds bdevs: an RBD cluster connect is slow */
#define READY_TIMEOUT_MS 10000
#define DEFAULT_DRAIN_MS 5000

extern char **environ;

static char self_exe[PATH_MAX];
static int self_argc;
static char **self_argv;
static int handed_over;
static volatile int *stop_flag;

void upgrade_set_self(int argc, char **argv, volatile int *stop)
{
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    self_exe[n > 0 ? n : 0] = '\0';
    self_argc = argc;
    self_argv = argv;
    stop_flag = stop;
}

int upgrade_handed_over(void)
{
    return handed_over;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static pid_t spawn_new(const char *binary, int child_sock, int *err)
{
    char fdarg[32];
    snprintf(fdarg, sizeof(fdarg), "--upgrade-fd=%d", child_sock);
    char **argv = calloc((size_t)self_argc + 2, sizeof(*argv));
    if (!argv) {
        *err = -ENOMEM;
        return -1;
    }
    int n = 0;
    argv[n++] = (char *)binary;
    for (int i = 1; i < self_argc; i++) {
        /* This process may itself be an upgrade's: its own socket is long gone. */
        if (strncmp(self_argv[i], "--upgrade-fd=", 13) == 0)
            continue;
        if (strcmp(self_argv[i], "--upgrade-fd") == 0 && i + 1 < self_argc) {
            i++;
            continue;
        }
        argv[n++] = self_argv[i];
    }
    argv[n] = fdarg;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    /* dup2 onto itself clears close-on-exec: the only descriptor the new process inherits besides stdio. */
    posix_spawn_file_actions_adddup2(&fa, child_sock, child_sock);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, binary, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    free(argv);
    if (rc) {
        *err = -rc;
        return -1;
    }
    return pid;
}

static void reap(pid_t pid, bool kill_it)
{
    if (kill_it)
        kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static struct json_object *framework_upgrade(struct json_object *params, struct rpc_err *e)
{
    const char *binary = rpc_get_string(params, "binary");
    int drain_ms = (int)rpc_get_u64(params, "timeout_ms", DEFAULT_DRAIN_MS);
    if (!binary)
        binary = self_exe;
    if (!*binary || access(binary, X_OK) != 0) {
        rpc_set_error(e, -ENOENT, "cannot run %s: %s", *binary ? binary : "(this program)", strerror(errno));
        return NULL;
    }
    if (drain_ms <= 0 || drain_ms > 600000) {
        rpc_set_error(e, RPC_INVALID_PARAMS, "timeout_ms must be between 1 and 600000");
        return NULL;
    }

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        rpc_set_errno(e, -errno);
        return NULL;
    }
    int err = 0;
    pid_t pid = spawn_new(binary, sv[1], &err);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        rpc_set_error(e, err, "cannot start %s: %s", binary, strerror(-err));
        return NULL;
    }
    VNVME_NOTICE(LOG_COMP, "handing over to %s (pid %d)", binary, (int)pid);
    int sock = sv[0];
    struct handover_msg m = {0};
    struct tgt_frozen *frozen = NULL;
    struct json_object *host_role = NULL; /* the host role detached here, to attach again if this fails */
    char why[512] = "";

    struct vnvme_state_out offer;
    vnvme_state_out_init(&offer);
    int rc = config_record_write(&offer);
    if (rc == 0)
        rc = handover_send_state(sock, HO_OFFER, &offer);
    vnvme_state_out_fini(&offer);
    if (rc) {
        snprintf(why, sizeof(why), "cannot send the configuration: %s", strerror(-rc));
        goto fail;
    }
    rc = handover_recv(sock, PREPARE_TIMEOUT_MS, &m);
    if (rc || m.type != HO_PREPARED) {
        if (rc)
            snprintf(why, sizeof(why), "the new process did not answer: %s", strerror(-rc));
        else
            snprintf(why, sizeof(why), "the new process refused: %s", m.len ? (char *)m.data : "no reason given");
        goto fail;
    }
    handover_msg_free(&m);
    if (rpc_host_any()) {
        /* While the target side still serves: a host controller may be attached to this very daemon. */
        host_role = config_save();
        rpc_host_shutdown();
    }

    int64_t t0 = now_us();
    frozen = tgt_freeze(drain_ms, why, sizeof(why));
    if (!frozen)
        goto fail;
    int64_t t_frozen = now_us();
    rc = tgt_frozen_send(frozen, sock);
    int end_fds[2] = {rpc_server_listen_fd(), metrics_listen_fd()};
    struct vnvme_state_out end;
    vnvme_state_out_init(&end);
    vnvme_state_put_fd(&end, end_fds[0]);
    vnvme_state_put_str(&end, rpc_server_path());
    vnvme_state_put_fd(&end, end_fds[1]);
    if (rc == 0)
        rc = handover_send_state(sock, HO_END, &end);
    vnvme_state_out_fini(&end);
    if (rc) {
        snprintf(why, sizeof(why), "cannot send the controllers: %s", strerror(-rc));
        goto fail;
    }
    rc = handover_recv(sock, READY_TIMEOUT_MS, &m);
    if (rc || m.type != HO_READY) {
        if (rc)
            snprintf(why, sizeof(why), "the new process did not take the controllers: %s", strerror(-rc));
        else
            snprintf(why, sizeof(why), "the new process could not take the controllers: %s",
                     m.len ? (char *)m.data : "no reason given");
        goto fail;
    }
    handover_msg_free(&m);
    /* The new process stores its own records; the manager keeps one name per file, so ours go first. */
    if (fdstore_enabled())
        fdstore_forget_all();
    rc = handover_send(sock, HO_COMMIT, NULL, 0, NULL, 0);
    if (rc) {
        /* It cannot know it may start, and exits: we still hold everything. */
        snprintf(why, sizeof(why), "cannot tell the new process to start: %s", strerror(-rc));
        goto fail;
    }
    int64_t t_commit = now_us();
    close(sock);
    uint32_t moved = tgt_frozen_count(frozen);
    uint32_t carried = tgt_frozen_recalled(frozen);
    /* From here on this process must not touch a client: it lets go of everything and exits. */
    tgt_abandon(frozen);
    metrics_detach();
    handed_over = 1;
    *stop_flag = 1;
    char state[64];
    snprintf(state, sizeof(state), "MAINPID=%d", (int)pid);
    (void)vnvme_sd_notify(state);
    VNVME_NOTICE(LOG_COMP, "pid %d serves now: %u controller%s, paused %.3f ms (drain %.3f ms)", (int)pid, moved,
                 moved == 1 ? "" : "s", (double)(t_commit - t0) / 1000.0, (double)(t_frozen - t0) / 1000.0);
    struct json_object *res = json_object_new_object();
    json_object_object_add(res, "pid", json_object_new_int(pid));
    json_object_object_add(res, "controllers", json_object_new_int64(moved));
    json_object_object_add(res, "pause_us", json_object_new_int64(t_commit - t0));
    json_object_object_add(res, "drain_us", json_object_new_int64(t_frozen - t0));
    json_object_object_add(res, "commands_carried", json_object_new_int64(carried));
    json_object_put(host_role);
    return res;

fail:
    handover_msg_free(&m);
    close(sock); /* the new process sees the end of the conversation and exits */
    reap(pid, true);
    if (frozen)
        tgt_thaw(frozen);
    if (host_role && config_load_json("the host role before the upgrade", host_role, CONFIG_HOST_ROLE) != 0)
        VNVME_ERR(LOG_COMP, "the host-role controllers detached for the upgrade could not all be attached again");
    json_object_put(host_role);
    VNVME_ERR(LOG_COMP, "upgrade to %s failed, still serving: %s", binary, why);
    rpc_set_error(e, -EIO, "upgrade failed, the running vnvmed still serves: %s", why);
    return NULL;
}

static const struct rpc_param upgrade_params[] = {
    {"binary", RPC_STRING, false},
    {"timeout_ms", RPC_UINT32, false},
    RPC_PARAMS_END,
};

const struct rpc_method rpc_upgrade_methods[] = {
    {"framework_upgrade", framework_upgrade, upgrade_params},
    {NULL, NULL, NULL},
};
