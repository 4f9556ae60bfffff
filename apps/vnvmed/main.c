/* SPDX-License-Identifier: MIT */
/*
 * vnvmed: emulated NVMe controllers served over vfio-user.
 *
 * Without --config it serves an embedded default (one 1 GiB RAM namespace on
 * /var/run/vnvme/nvme0/cntrl) so that `vnvmed` alone gives a VM a disk.
 * The main thread is the control thread: it applies the configuration, then
 * serves JSON-RPC until SIGINT/SIGTERM, and tears everything down so clients
 * see a clean disconnect and no socket file stays behind.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/owner.h"
#include "common/sd_notify.h"
#include "handover.h"
#include "recovery.h"
#include "metrics.h"
#include "rpc_internal.h"
#include "vnvme/nvme_cuse.h"
#include "vnvme/bdev_rbd.h"
#include "vnvme/bdev_stat.h"
#include "vnvmed.h"

#define DEFAULT_CPUMASK 0x1ull
#define DEFAULT_RPC_SOCKET "/var/run/vnvme/rpc.sock"
#define DEFAULT_LISTEN_DIR "/var/run/vnvme/nvme0"
#define DEFAULT_NQN "nqn.2026-11.io.vnvme:nvme0"
#define DEFAULT_SERIAL "VNVME0000000001"
#define DEFAULT_MODEL "vnvme emulated NVMe"
#define DEFAULT_BDEV "Malloc0"
#define DEFAULT_BDEV_BYTES (1ull << 30)
#define DEFAULT_BLOCK_SIZE 512u
#define DEFAULT_MAX_NAMESPACES 32u

static volatile int stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/*
 * A connected VM holds several descriptors here (its socket, a memfd per RAM
 * region, an eventfd per interrupt vector, bdev channels' eventfds): a few
 * hundred tenants pass the usual soft limit of 1024. The hard limit is what
 * the administrator allows; vnvmed uses poll and epoll only, never select,
 * so descriptors above 1023 are fine.
 */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            VNVME_WARN("vnvmed", "cannot raise the open file limit to %llu: %s", (unsigned long long)rl.rlim_max,
                       strerror(errno));
    }
}

static int bad_option(const char *opt, const char *what, const char *arg)
{
    fprintf(stderr, "vnvmed: %s: %s '%s'\n", opt, what, arg);
    return 2;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: vnvmed [options]\n"
            "Serve emulated NVMe controllers over vfio-user.\n"
            "\n"
            "Without --config: one subsystem %s with a 1 GiB RAM namespace (Malloc0),\n"
            "listening on %s/cntrl.\n"
            "\n"
            "  -c, --config FILE      load an SPDK-style JSON configuration instead of the default\n"
            "  -m, --cpumask MASK     cores to poll on, hex (default 0x1)\n"
            "  -r, --rpc-socket PATH  JSON-RPC socket (default %s)\n"
            "  -L, --listen DIR       listener directory for the embedded default (default %s)\n"
            "      --log-level LEVEL  error, warn, notice, info or debug (default notice)\n"
            "      --no-iostat        count no bdev I/O statistics (bdev_get_iostat reports zeros)\n"
            "      --metrics [ADDRESS:]PORT\n"
            "                         serve the statistics in Prometheus' text format at\n"
            "                         http://ADDRESS:PORT/metrics (default off; ADDRESS 127.0.0.1,\n"
            "                         0.0.0.0 for every interface, [::1] for IPv6)\n"
            "      --fd-store         keep what clients depend on in the service manager's file\n"
            "                         descriptor store (systemd FileDescriptorStoreMax=), so that a\n"
            "                         vnvmed restarted after a crash keeps its clients\n"
            "  -h, --help             this text\n"
            "\n"
            "Access (sockets are 0600 and CUSE nodes root 0600 unless told otherwise):\n"
            "      --rpc-group GROUP     let GROUP use the RPC socket (mode 0660)\n"
            "      --socket-group GROUP  let GROUP connect to controller sockets (mode 0660;\n"
            "                            a listener's socket_group parameter overrides it)\n"
            "      --cuse-owner USER     owner of CUSE device nodes (bdev_nvme_cuse_register's\n"
            "      --cuse-group GROUP    owner, group and mode parameters override these)\n"
            "      --cuse-mode MODE      octal, e.g. 0640: the group may read, not write\n",
            DEFAULT_NQN, DEFAULT_LISTEN_DIR, DEFAULT_RPC_SOCKET, DEFAULT_LISTEN_DIR);
}

static int parse_cpumask(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 16); /* accepts an optional 0x prefix */
    if (errno || end == s || *end || v == 0)
        return -EINVAL;
    *out = v;
    return 0;
}

/* mkdir -p of path's parent directory (the RPC socket's), mode 0700. */
static void make_parent_dirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return;
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf)
        return;
    *slash = '\0';
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        (void)mkdir(buf, 0700);
        *p = saved;
        if (!saved)
            break;
    }
}

static int load_default(const char *listen_dir)
{
    struct vnvme_bdev *bdev;
    struct tgt_subsystem *ts;
    int rc;

    rc = tgt_create_transport("VFIOUSER");
    if (rc && rc != -EEXIST)
        return rc;
    rc = vnvme_bdev_malloc_create(DEFAULT_BDEV, DEFAULT_BDEV_BYTES / DEFAULT_BLOCK_SIZE, DEFAULT_BLOCK_SIZE, NULL,
                                  &bdev);
    if (rc)
        return rc;
    rc = tgt_subsystem_create(DEFAULT_NQN, DEFAULT_SERIAL, DEFAULT_MODEL, DEFAULT_MAX_NAMESPACES, true, &ts);
    if (rc)
        return rc;
    rc = tgt_ns_add(ts, DEFAULT_BDEV, 1, NULL, NULL, NULL);
    if (rc < 0)
        return rc;
    return tgt_listener_add(ts, "VFIOUSER", listen_dir, NULL);
}

static void format_size(uint64_t bytes, char *out, size_t len)
{
    if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0)
        snprintf(out, len, "%" PRIu64 " GiB", bytes >> 30);
    else if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0)
        snprintf(out, len, "%" PRIu64 " MiB", bytes >> 20);
    else
        snprintf(out, len, "%" PRIu64 " bytes", bytes);
}

/* Returns the number of listeners, for the service manager's status line. */
static unsigned announce_listeners(void)
{
    unsigned listeners = 0;
    for (struct tgt_subsystem *ts = tgt_subsystem_first(); ts; ts = ts->next) {
        uint32_t nr_ns = 0;
        uint64_t bytes = 0;
        for (uint32_t nsid = 1; nsid <= NVMET_MAX_NSID; nsid++) {
            const struct nvmet_ns *ns = ts->ss->ns[nsid];
            if (!ns)
                continue;
            nr_ns++;
            bytes += ns->nsze << ns->lbads;
        }
        char size[32];
        format_size(bytes, size, sizeof(size));
        for (struct tgt_listener *l = ts->listeners; l; l = l->next) {
            printf("vnvmed: listening on %s (nqn %s, %u namespace%s, %s)\n", nvmet_vfio_user_socket_path(l->vc),
                   ts->ss->nqn, nr_ns, nr_ns == 1 ? "" : "s", size);
            listeners++;
        }
    }
    if (!listeners)
        printf("vnvmed: no listeners configured yet; waiting for RPC\n");
    fflush(stdout);
    return listeners;
}

/*
 * Under systemd (Type=notify): ready once every configured socket accepts and
 * RPC answers, so units ordered after vnvmed (a VM) find their sockets; and
 * stopping as soon as shutdown begins.
 */
static void notify_ready(unsigned listeners, const char *rpc_socket)
{
    char state[512];
    snprintf(state, sizeof(state), "READY=1\nMAINPID=%d\nSTATUS=serving %u controller socket%s, RPC on %s",
             (int)getpid(), listeners, listeners == 1 ? "" : "s", rpc_socket);
    int rc = vnvme_sd_notify(state);
    if (rc < 0)
        VNVME_WARN("vnvmed", "cannot tell the service manager we are ready: %s", strerror(-rc));
}

static void delete_all_bdevs(void)
{
    struct vnvme_bdev *b;
    while ((b = vnvme_bdev_first()) != NULL) {
        char name[sizeof(b->name)];
        snprintf(name, sizeof(name), "%s", b->name);
        if (vnvme_bdev_delete(name) != 0)
            break; /* still claimed: nothing more we can do at exit */
    }
}

int main(int argc, char **argv)
{
    enum { OPT_LOG_LEVEL = 0x100, OPT_NO_IOSTAT, OPT_METRICS, OPT_RPC_GROUP, OPT_SOCKET_GROUP, OPT_CUSE_OWNER,
           OPT_CUSE_GROUP, OPT_CUSE_MODE, OPT_UPGRADE_FD, OPT_FD_STORE };
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"cpumask", required_argument, NULL, 'm'},
        {"rpc-socket", required_argument, NULL, 'r'},
        {"listen", required_argument, NULL, 'L'},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"no-iostat", no_argument, NULL, OPT_NO_IOSTAT},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"rpc-group", required_argument, NULL, OPT_RPC_GROUP},
        {"socket-group", required_argument, NULL, OPT_SOCKET_GROUP},
        {"cuse-owner", required_argument, NULL, OPT_CUSE_OWNER},
        {"cuse-group", required_argument, NULL, OPT_CUSE_GROUP},
        {"cuse-mode", required_argument, NULL, OPT_CUSE_MODE},
        {"upgrade-fd", required_argument, NULL, OPT_UPGRADE_FD},
        {"fd-store", no_argument, NULL, OPT_FD_STORE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *rpc_socket = DEFAULT_RPC_SOCKET, *listen_dir = DEFAULT_LISTEN_DIR;
    uint64_t cpumask = DEFAULT_CPUMASK;
    struct sockaddr_storage metrics_addr;
    socklen_t metrics_addr_len = 0; /* 0: no --metrics */
    const char *why;
    int opt, rc, level;
    struct vnvme_cuse_node_perm cuse_perm = VNVME_CUSE_NODE_PERM_DEFAULT;
    gid_t rpc_gid, socket_gid;
    bool rpc_group = false;
    int upgrade_fd = -1; /* started by framework_upgrade: take over from the process on this socket */
    bool fd_store = false;
    char *end;

    while ((opt = getopt_long(argc, argv, "c:m:r:L:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c': config = optarg; break;
        case 'm':
            if (parse_cpumask(optarg, &cpumask)) {
                fprintf(stderr, "vnvmed: invalid cpumask '%s' (expected hex, e.g. 0x3)\n", optarg);
                return 2;
            }
            break;
        case 'r': rpc_socket = optarg; break;
        case 'L': listen_dir = optarg; break;
        case OPT_NO_IOSTAT: vnvme_bdev_stats_enable(false); break;
        case OPT_METRICS:
            if (metrics_parse_address(optarg, &metrics_addr, &metrics_addr_len, &why)) {
                fprintf(stderr, "vnvmed: --metrics '%s': %s (expected [ADDRESS:]PORT, e.g. 127.0.0.1:9477 or [::1]:9477)\n",
                        optarg, why);
                return 2;
            }
            break;
        case OPT_RPC_GROUP:
            if (vnvme_parse_group(optarg, &rpc_gid) != 0)
                return bad_option("--rpc-group", "no group", optarg);
            rpc_group = true;
            break;
        case OPT_SOCKET_GROUP:
            if (vnvme_parse_group(optarg, &socket_gid) != 0)
                return bad_option("--socket-group", "no group", optarg);
            tgt_set_socket_group(optarg);
            break;
        case OPT_CUSE_OWNER:
            if (vnvme_parse_user(optarg, &cuse_perm.uid) != 0)
                return bad_option("--cuse-owner", "no user", optarg);
            break;
        case OPT_CUSE_GROUP:
            if (vnvme_parse_group(optarg, &cuse_perm.gid) != 0)
                return bad_option("--cuse-group", "no group", optarg);
            break;
        case OPT_CUSE_MODE:
            if (vnvme_parse_mode(optarg, &cuse_perm.mode) != 0)
                return bad_option("--cuse-mode", "not an octal mode such as 0640:", optarg);
            break;
        case OPT_LOG_LEVEL:
            level = vnvme_log_parse_level(optarg);
            if (level < 0) {
                fprintf(stderr, "vnvmed: unknown log level '%s'\n", optarg);
                return 2;
            }
            vnvme_log_set_level((enum vnvme_log_level)level);
            break;
        case OPT_UPGRADE_FD:
            errno = 0;
            upgrade_fd = (int)strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || upgrade_fd < 3)
                return bad_option("--upgrade-fd", "not a descriptor number", optarg);
            break;
        case OPT_FD_STORE: fd_store = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    rpc_host_set_cuse_default_perm(&cuse_perm);
    if (optind < argc) {
        fprintf(stderr, "vnvmed: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    upgrade_set_self(argc, argv, &stop_requested);
    raise_fd_limit();
    /* Reactors inherit a mask with the stop signals blocked: only this thread handles them. */
    sigset_t stop_signals, old_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
    signal(SIGPIPE, SIG_IGN);

    /* The statistics' tick rate, measured (50 ms) while nothing else runs, not on the first RPC. */
    (void)vnvme_bdev_stat_tick_rate();
    rc = reactors_start(cpumask);
    if (rc < 0) {
        fprintf(stderr, "vnvmed: cannot start reactors for cpumask 0x%" PRIx64 ": %s\n", cpumask, strerror(-rc));
        return 1;
    }

    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: blocking waits return EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);

    int exit_code = 0;
    bool rpc_started = false;
    char **passed_names = NULL;
    int passed = vnvme_sd_listen_fds(&passed_names);
    if (fd_store) {
        if (getenv("NOTIFY_SOCKET"))
            fdstore_enable();
        else
            VNVME_WARN("vnvmed", "--fd-store: no service manager ($NOTIFY_SOCKET unset); nothing is kept");
    }
    if (upgrade_fd >= 0) {
        /* The running process's configuration and sockets, not the command line's (the same, or older). */
        int metrics_fd = -1;
        takeover_run(upgrade_fd, &metrics_fd);
        rpc_started = true;
        recovery_config_changed();
        if (metrics_addr_len &&
            metrics_start((const struct sockaddr *)&metrics_addr, metrics_addr_len, metrics_fd) != 0)
            VNVME_ERR("vnvmed", "serving without the metrics endpoint");
        goto serve;
    }
    /* Before the configuration, which may take long (a Ceph cluster): a port in use is said at once. */
    if (metrics_addr_len && metrics_start((const struct sockaddr *)&metrics_addr, metrics_addr_len, -1) != 0) {
        exit_code = 1;
        goto out;
    }
    bool recovered = false;
    if (fdstore_enabled() && passed > 0) {
        /* Restarted after a crash: the clients' sockets, memory and interrupts are back from the store. */
        rc = recovery_start(passed, passed_names);
        if (rc < 0 && rc != -ENOENT) {
            fprintf(stderr, "vnvmed: cannot recover from the stored state: %s\n", strerror(-rc));
            exit_code = 1;
            goto out;
        }
        if (rc >= 0) {
            tgt_start_restored();
            fdstore_drop_unused();
            if (config_record_apply_host_role("the stored configuration's host role") != 0)
                VNVME_ERR("vnvmed", "not every host-role controller could be attached again");
            recovered = true;
            printf("vnvmed: recovered %d controller%s after a restart\n", rc, rc == 1 ? "" : "s");
            fflush(stdout);
        }
    }
    for (int i = 0; passed_names && passed_names[i]; i++)
        free(passed_names[i]);
    free(passed_names);
    passed_names = NULL;
    if (recovered) {
        /* The stored configuration replaced the command line's. */
    } else if (config) {
        rc = config_load_file(config);
        if (rc) {
            fprintf(stderr, "vnvmed: loading %s failed: %s\n", config, strerror(rc < 0 ? -rc : rc));
            exit_code = 1;
            goto out;
        }
    } else {
        rc = load_default(listen_dir);
        if (rc) {
            fprintf(stderr, "vnvmed: default configuration failed: %s\n", strerror(-rc));
            exit_code = 1;
            goto out;
        }
    }

    make_parent_dirs(rpc_socket);
    rc = rpc_server_start(rpc_socket, rpc_group ? &rpc_gid : NULL);
    if (rc) {
        fprintf(stderr, "vnvmed: RPC socket %s: %s\n", rpc_socket, strerror(rc < 0 ? -rc : rc));
        exit_code = 1;
        goto out;
    }
    rpc_started = true;
    recovery_config_changed();
serve:;
    unsigned listeners = announce_listeners();
    if (metrics_addr_len) {
        char where[80];
        metrics_format_address((const struct sockaddr *)&metrics_addr, where, sizeof(where));
        printf("vnvmed: metrics at http://%s/metrics\n", where);
        fflush(stdout);
    }

    notify_ready(listeners, rpc_socket);
    rpc_server_run(&stop_requested);
    if (upgrade_handed_over()) {
        /*
         * Every client, socket and byte of RAM-bdev memory is the new process's now: leave without a
         * word, after closing the bdevs (no controller is left to use them). An RBD image's close
         * finishes this process's writes and lets go of its exclusive lock, which the new process's
         * first write asks for.
         */
        rpc_server_handed_over();
        tgt_shutdown();
        delete_all_bdevs();
        vnvme_bdev_rbd_wait_closed();
        fflush(stdout);
        fflush(stderr);
        _exit(0);
    }
    VNVME_NOTICE("vnvmed", "shutting down");
    (void)vnvme_sd_notify("STOPPING=1\nSTATUS=shutting down");

out:
    metrics_stop();
    if (rpc_started)
        rpc_server_stop();
    rpc_host_shutdown(); /* host-role controllers may be attached to our own target: detach them first */
    tgt_shutdown();
    if (fdstore_enabled())
        recovery_shutdown();
    reactors_stop();
    delete_all_bdevs();
    vnvme_bdev_rbd_wait_closed(); /* images close on their own threads: librbd must be done before exit */
    return exit_code;
}
