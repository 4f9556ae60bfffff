/* SPDX-License-Identifier: MIT */
#include "vnvmed_harness.h"

#include <errno.h>
#include <ftw.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hang_watchdog.h"
#include "rpc_client.h"

/* Generous: loading a config that connects to Ceph, or a sanitizer build, takes a while. */
#define WAIT_MS 30000u
#define POLL_US 10000u

uint64_t vnvmed_harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int fits(int n, size_t size)
{
    return n >= 0 && (size_t)n < size ? 0 : -1;
}

int vnvmed_harness_init(struct vnvmed_harness *h, const char *prefix)
{
    hang_watchdog_arm();
    memset(h, 0, sizeof(*h));
    h->pid = -1;
    if (fits(snprintf(h->dir, sizeof(h->dir), "/tmp/%s.XXXXXX", prefix), sizeof(h->dir)) || !mkdtemp(h->dir))
        return -1;
    if (fits(snprintf(h->listen_dir, sizeof(h->listen_dir), "%s/nvme0", h->dir), sizeof(h->listen_dir)) ||
        fits(snprintf(h->sock_path, sizeof(h->sock_path), "%s/cntrl", h->listen_dir), sizeof(h->sock_path)) ||
        fits(snprintf(h->trid, sizeof(h->trid), "trtype:VFIOUSER traddr:%s", h->listen_dir), sizeof(h->trid)) ||
        vnvmed_harness_path(h, "rpc.sock", h->rpc_path, sizeof(h->rpc_path)) ||
        vnvmed_harness_path(h, "config.json", h->config_path, sizeof(h->config_path)))
        return -1;
    return 0;
}

int vnvmed_harness_path(const struct vnvmed_harness *h, const char *name, char *buf, size_t size)
{
    return fits(snprintf(buf, size, "%s/%s", h->dir, name), size);
}

int vnvmed_harness_write_config(const struct vnvmed_harness *h, const char *fmt, ...)
{
    FILE *f = fopen(h->config_path, "w");
    if (!f)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(f, fmt, ap);
    va_end(ap);
    return (fclose(f) != 0 || n < 0) ? -1 : 0;
}

static bool is_socket(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static bool sockets_ready(const struct vnvmed_harness *h, const struct vnvmed_start *how)
{
    if (!is_socket(h->rpc_path))
        return false;
    if (how->without_listener)
        return true;
    return is_socket(h->sock_path) && (!how->second_socket || is_socket(how->second_socket));
}

int vnvmed_harness_start(struct vnvmed_harness *h, const struct vnvmed_start *how)
{
    static const struct vnvmed_start defaults = {0};
    if (!how)
        how = &defaults;
    const char *exe = getenv("VNVMED");
    if (!exe) {
        fprintf(stderr, "VNVMED is not set (path of the vnvmed binary)\n");
        return -1;
    }
    /* A daemon that was killed leaves its sockets behind; they must not count as the new one's. */
    unlink(h->sock_path);
    unlink(h->rpc_path);
    if (how->second_socket)
        unlink(how->second_socket);
    const char *mask = how->core_mask ? how->core_mask : "0x1";
    pid_t parent = getpid();
    h->pid = fork();
    if (h->pid < 0)
        return -1;
    if (h->pid == 0) {
        /*
         * A test that fails an assertion skips its cleanup. A daemon it leaves
         * running keeps the test's stdout open, and the test runner waits for
         * that pipe until the test's timeout: die with the test instead.
         */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(126);
        const char *argv[24] = {exe, "--config", h->config_path, "-r", h->rpc_path, "-m", mask};
        int argc = 7;
        for (int i = 0; how->args && how->args[i] && argc < 23; i++)
            argv[argc++] = how->args[i];
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    hang_watchdog_track(h->pid);
    uint64_t end = vnvmed_harness_now_ms() + WAIT_MS;
    while (vnvmed_harness_now_ms() < end) {
        int status;
        if (sockets_ready(h, how))
            return 0;
        if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
            fprintf(stderr, "vnvmed exited (status 0x%x) while loading %s\n", status, h->config_path);
            hang_watchdog_untrack(h->pid);
            h->pid = -1;
            return -1;
        }
        usleep(POLL_US);
    }
    fprintf(stderr, "vnvmed did not create its sockets in %u ms (%s)\n", WAIT_MS, h->config_path);
    return -1;
}

static int outcome(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

int vnvmed_harness_stop(struct vnvmed_harness *h)
{
    if (h->pid <= 0)
        return -ECHILD;
    kill(h->pid, SIGCONT);
    kill(h->pid, SIGTERM);
    int status = 0;
    uint64_t end = vnvmed_harness_now_ms() + WAIT_MS;
    while (vnvmed_harness_now_ms() < end) {
        if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
            hang_watchdog_untrack(h->pid);
            h->pid = -1;
            return outcome(status);
        }
        usleep(POLL_US);
    }
    fprintf(stderr, "vnvmed did not exit on SIGTERM: killed\n");
    kill(h->pid, SIGKILL);
    waitpid(h->pid, &status, 0);
    hang_watchdog_untrack(h->pid);
    h->pid = -1;
    return -SIGKILL;
}

/*
 * Calls fn with each thread's /proc stat line, the part after the command
 * name (which is in parentheses and may hold spaces: "S 1 ..." from the state
 * on), until fn returns false. False when the process is gone.
 */
static bool for_each_thread_stat(pid_t pid, bool (*fn)(const char *comm, size_t comm_len, const char *rest, void *arg),
                                 void *arg)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return false;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char stat_path[sizeof(path) + sizeof(e->d_name) + 8], buf[512];
        snprintf(stat_path, sizeof(stat_path), "%s/%s/stat", path, e->d_name);
        FILE *f = fopen(stat_path, "r");
        if (f == NULL)
            continue; /* the thread ended */
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
        if (lp == NULL || rp == NULL || rp < lp || rp[1] != ' ')
            continue;
        if (!fn(lp + 1, (size_t)(rp - lp - 1), rp + 2, arg))
            break;
    }
    closedir(dir);
    return true;
}

static bool thread_stopped(const char *comm, size_t comm_len, const char *rest, void *arg)
{
    (void)comm;
    (void)comm_len;
    bool *stopped = arg;
    *stopped = rest[0] == 'T' || rest[0] == 't';
    return *stopped;
}

/* Whether every thread of pid is stopped: kill() returns before the signal has taken effect. */
static bool all_threads_stopped(pid_t pid)
{
    bool stopped = true;
    return for_each_thread_stat(pid, thread_stopped, &stopped) && stopped;
}

struct thread_cpu {
    const char *name;
    long long ticks; /* utime + stime, or -1 */
};

static bool thread_cpu(const char *comm, size_t comm_len, const char *rest, void *arg)
{
    struct thread_cpu *t = arg;
    if (comm_len != strlen(t->name) || memcmp(comm, t->name, comm_len) != 0)
        return true;
    /* rest starts at field 3 (state); utime and stime are fields 14 and 15. */
    unsigned long long utime, stime;
    if (sscanf(rest, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu", &utime, &stime) == 2)
        t->ticks = (long long)(utime + stime);
    return false;
}

int64_t vnvmed_harness_thread_cpu_ms(const struct vnvmed_harness *h, const char *name)
{
    struct thread_cpu t = {.name = name, .ticks = -1};
    if (h->pid <= 0 || !for_each_thread_stat(h->pid, thread_cpu, &t) || t.ticks < 0)
        return -1;
    return t.ticks * 1000 / sysconf(_SC_CLK_TCK);
}

int harness_stop_process(pid_t pid)
{
    if (pid <= 0 || kill(pid, SIGSTOP) < 0)
        return -1;
    /* Tests rely on the process doing nothing more once this returns. */
    uint64_t end = vnvmed_harness_now_ms() + 5000;
    while (!all_threads_stopped(pid)) {
        if (vnvmed_harness_now_ms() > end)
            return -1;
        usleep(1000);
    }
    return 0;
}

int vnvmed_harness_pause(const struct vnvmed_harness *h)
{
    return harness_stop_process(h->pid);
}

int vnvmed_harness_resume(const struct vnvmed_harness *h)
{
    return h->pid > 0 ? kill(h->pid, SIGCONT) : -1;
}

int vnvmed_harness_kill(struct vnvmed_harness *h)
{
    if (h->pid <= 0)
        return -1;
    int rc = kill(h->pid, SIGKILL);
    int status;
    waitpid(h->pid, &status, 0);
    hang_watchdog_untrack(h->pid);
    h->pid = -1;
    return rc;
}

bool vnvmed_harness_running(const struct vnvmed_harness *h)
{
    return h->pid > 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

void vnvmed_harness_cleanup(struct vnvmed_harness *h)
{
    vnvmed_harness_stop(h);
    if (h->dir[0])
        nftw(h->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    h->dir[0] = '\0';
}

int vnvmed_harness_call(const struct vnvmed_harness *h, const char *method, const char *params_json,
                        struct json_object **result, int *code, char **msg)
{
    struct json_object *params = NULL;
    if (params_json && !(params = json_tokener_parse(params_json)))
        return -EINVAL;
    int rc = rpc_client_call(h->rpc_path, method, params, result, code, msg);
    json_object_put(params);
    return rc;
}

int vnvmed_harness_rpc(const struct vnvmed_harness *h, const char *method, const char *params_json,
                       struct json_object **result)
{
    struct json_object *res = NULL;
    int code = 0;
    char *msg = NULL;
    int rc = vnvmed_harness_call(h, method, params_json, &res, &code, &msg);
    if (rc == 1) {
        fprintf(stderr, "rpc %s: error %d: %s\n", method, code, msg ? msg : "");
        rc = code ? code : -1;
    }
    free(msg);
    if (result && rc == 0)
        *result = res;
    else
        json_object_put(res);
    return rc;
}
