/* SPDX-License-Identifier: MIT */
/*
 * End to end without a shell: the real vnvmed (paths from $VNVMED, $VNVME)
 * started as a process, driven by the real vnvme CLI.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

extern char **environ;

#define NQN "nqn.2019-07.io.spdk:cnode0"

static char dir[64], sock_path[128], cfg_path[128], listen_dir[128];
static pid_t daemon_pid;

struct run {
    int status;
    char out[1 << 16];
    char err[4096];
};

static void drain(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;
    while ((n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
}

/* Run vnvme with args; stdout and stderr captured (stderr read after stdout: the CLI writes little there). */
static void vnvme(struct run *r, const char *const *args)
{
    const char *argv[16] = {getenv("VNVME"), "-s", sock_path};
    int n = 3;
    for (; *args; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    int out[2], err[2];
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    drain(out[0], r->out, sizeof(r->out));
    drain(err[0], r->err, sizeof(r->err));
    close(out[0]);
    close(err[0]);
    assert_int_equal(waitpid(pid, &r->status, 0), pid);
    r->status = WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 128;
}

static bool can_connect(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, sock_path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static const char spdk_config[] =
    "{\"subsystems\": [\n"
    " {\"subsystem\": \"bdev\", \"config\": [\n"
    "  {\"method\": \"bdev_malloc_create\", \"params\": {\"name\": \"Malloc0\", \"num_blocks\": 8192, "
    "\"block_size\": 512}}]},\n"
    " {\"subsystem\": \"nvmf\", \"config\": [\n"
    "  {\"method\": \"nvmf_create_transport\", \"params\": {\"trtype\": \"VFIOUSER\", \"max_queue_depth\": 256}},\n"
    "  {\"method\": \"nvmf_create_subsystem\", \"params\": {\"nqn\": \"" NQN "\", \"allow_any_host\": true, "
    "\"serial_number\": \"SPDK0\", \"model_number\": \"SPDK bdev Controller\"}},\n"
    "  {\"method\": \"nvmf_subsystem_add_ns\", \"params\": {\"nqn\": \"" NQN "\", "
    "\"namespace\": {\"bdev_name\": \"Malloc0\"}}},\n"
    "  {\"method\": \"nvmf_subsystem_add_listener\", \"params\": {\"nqn\": \"" NQN "\", "
    "\"listen_address\": {\"trtype\": \"VFIOUSER\", \"adrfam\": \"IPv4\", \"traddr\": \"%s\", \"trsvcid\": \"\"}}}\n"
    " ]}]}\n";

static int setup(void **state)
{
    (void)state;
    if (getenv("VNVMED") == NULL || getenv("VNVME") == NULL)
        fail_msg("VNVMED and VNVME must name the binaries");
    strcpy(dir, "/tmp/vnvme-cli-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(sock_path, sizeof(sock_path), "%s/rpc/rpc.sock", dir);
    snprintf(cfg_path, sizeof(cfg_path), "%s/config.json", dir);
    snprintf(listen_dir, sizeof(listen_dir), "%s/cnode0", dir);
    assert_int_equal(mkdir(listen_dir, 0700), 0);
    FILE *f = fopen(cfg_path, "w");
    fprintf(f, spdk_config, listen_dir);
    fclose(f);

    const char *argv[] = {getenv("VNVMED"), "-c", cfg_path, "-r", sock_path, NULL};
    assert_int_equal(posix_spawn(&daemon_pid, argv[0], NULL, NULL, (char *const *)argv, environ), 0);
    /* Ready when the RPC socket accepts; bail out if the daemon died instead. */
    for (int i = 0; i < 1000 && !can_connect(); i++) {
        int st;
        if (waitpid(daemon_pid, &st, WNOHANG) == daemon_pid)
            fail_msg("vnvmed exited early (status %d)", st);
        usleep(10000);
    }
    assert_true(can_connect());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int st;
    kill(daemon_pid, SIGTERM);
    assert_int_equal(waitpid(daemon_pid, &st, 0), daemon_pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* Its sockets are gone. */
    assert_int_equal(access(sock_path, F_OK), -1);
    char p[192];
    snprintf(p, sizeof(p), "%s/cntrl", listen_dir);
    assert_int_equal(access(p, F_OK), -1);
    rmdir(listen_dir);
    unlink(cfg_path);
    snprintf(p, sizeof(p), "%s/rpc", dir);
    rmdir(p);
    rmdir(dir);
    return 0;
}

static struct json_object *json_out(struct run *r)
{
    struct json_object *o = json_tokener_parse(r->out);
    if (o == NULL)
        fail_msg("not JSON: %s", r->out);
    return o;
}

static size_t namespaces_of_first(struct json_object *subsystems)
{
    struct json_object *nss = NULL;
    assert_true(json_object_object_get_ex(json_object_array_get_idx(subsystems, 0), "namespaces", &nss));
    return json_object_array_length(nss);
}

static void test_cli_against_daemon(void **state)
{
    (void)state;
    static struct run r;

    /* The SPDK config was loaded. */
    vnvme(&r, (const char *[]){"subsystem", "list", NULL});
    assert_int_equal(r.status, 0);
    struct json_object *o = json_out(&r);
    assert_int_equal(json_object_array_length(o), 1);
    assert_int_equal(namespaces_of_first(o), 1);
    json_object_put(o);

    vnvme(&r, (const char *[]){"bdev", "malloc-create", "M1", "8", NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\"M1\""));
    vnvme(&r, (const char *[]){"ns", "add", NQN, "M1", "5", NULL});
    assert_int_equal(r.status, 0);
    assert_int_equal(atoi(r.out), 5);
    vnvme(&r, (const char *[]){"bdev", "delete", "M1", NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "Device or resource busy"));
    vnvme(&r, (const char *[]){"rpc", "nvmf_get_subsystems", "{\"nqn\": \"" NQN "\"}", NULL});
    assert_int_equal(r.status, 0);
    o = json_out(&r);
    assert_int_equal(namespaces_of_first(o), 2);
    json_object_put(o);

    vnvme(&r, (const char *[]){"ns", "remove", NQN, "5", NULL});
    assert_int_equal(r.status, 0);
    /* A delay bdev on M1: deleted by `bdev delete` like any other kind, after which M1 can go. */
    vnvme(&r, (const char *[]){"rpc", "bdev_delay_create",
                               "{\"name\": \"D1\", \"base_bdev_name\": \"M1\", \"avg_read_latency\": 10,"
                               " \"p99_read_latency\": 20, \"avg_write_latency\": 10, \"p99_write_latency\": 20}",
                               NULL});
    assert_int_equal(r.status, 0);
    vnvme(&r, (const char *[]){"bdev", "delete", "M1", NULL});
    assert_int_equal(r.status, 1); /* claimed by D1 */
    vnvme(&r, (const char *[]){"bdev", "delete", "D1", NULL});
    assert_int_equal(r.status, 0);
    vnvme(&r, (const char *[]){"bdev", "delete", "M1", NULL});
    assert_int_equal(r.status, 0);
    vnvme(&r, (const char *[]){"bdev", "list", NULL});
    assert_null(strstr(r.out, "\"M1\""));

    vnvme(&r, (const char *[]){"rpc", "no_such_method", NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "Method not found: no_such_method"));
    vnvme(&r, (const char *[]){"rpc", "bdev_get_bdevs", "{not json", NULL});
    assert_int_equal(r.status, 2);

    vnvme(&r, (const char *[]){"config", "save", NULL});
    assert_int_equal(r.status, 0);
    o = json_out(&r);
    struct json_object *subs = NULL;
    assert_true(json_object_object_get_ex(o, "subsystems", &subs));
    assert_non_null(strstr(r.out, listen_dir));
    json_object_put(o);

    vnvme(&r, (const char *[]){"--help", NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "listener add NQN DIR"));
}

/*
 * `vnvme iostat` while vnvme-perf reads Malloc0: a table every interval whose
 * Malloc0 row shows the reads; then bdev_get_iostat's totals through `vnvme rpc`.
 */
static void test_cli_iostat(void **state)
{
    (void)state;
    static struct run r;
    char trid[192];
    snprintf(trid, sizeof(trid), "trtype:VFIOUSER traddr:%s", listen_dir);
    const char *perf[] = {getenv("VNVME_PERF"), "-r", trid, "-q", "4", "-o", "4096", "-w", "randread", "-t", "3", NULL};
    pid_t perf_pid;
    assert_non_null(perf[0]);
    assert_int_equal(posix_spawn(&perf_pid, perf[0], NULL, NULL, (char *const *)perf, environ), 0);
    usleep(500000); /* attached and reading */
    vnvme(&r, (const char *[]){"iostat", "-i", "0.5", "-c", "2", "-b", "Malloc0", "-H", NULL});
    int st;
    assert_int_equal(waitpid(perf_pid, &st, 0), perf_pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(r.status, 0);
    /* Two tables, each a header and the one bdev asked for, reading at some rate. */
    unsigned tables = 0, rows = 0;
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "bdev ", 5) == 0) {
            tables++;
            assert_non_null(strstr(line, "r/s"));
        } else if (strncmp(line, "Malloc0 ", 8) == 0) {
            rows++;
            double rps = 0, f[7], p99 = 0;
            assert_int_equal(sscanf(line + 8, "%lf %lf %lf %lf %lf %lf %lf %lf", &rps, &f[0], &f[1], &f[2], &f[3],
                                    &f[4], &f[5], &p99),
                             8);
            assert_true(rps > 0);
            assert_true(p99 > 0); /* -H turned the histogram on: a figure, not "-" */
        } else {
            fail_msg("unexpected line: %s", line);
        }
    }
    assert_int_equal(tables, 2);
    assert_int_equal(rows, 2);

    vnvme(&r, (const char *[]){"rpc", "bdev_get_iostat", "{\"name\": \"Malloc0\"}", NULL});
    assert_int_equal(r.status, 0);
    struct json_object *o = json_out(&r), *bdevs = NULL, *reads = NULL;
    assert_true(json_object_object_get_ex(o, "bdevs", &bdevs));
    assert_true(json_object_object_get_ex(json_object_array_get_idx(bdevs, 0), "num_read_ops", &reads));
    assert_true(json_object_get_uint64(reads) > 0);
    json_object_put(o);
    vnvme(&r, (const char *[]){"iostat", "-b", "nope", "-c", "1", NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "bdev_get_iostat failed"));
}

/* A daemon that never answers (stopped) costs a script the timeout, not forever. */
static void test_cli_timeout(void **state)
{
    (void)state;
    static struct run r;
    assert_int_equal(kill(daemon_pid, SIGSTOP), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    vnvme(&r, (const char *[]){"-t", "0.3", "bdev", "list", NULL});
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kill(daemon_pid, SIGCONT);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "to bdev_get_bdevs within 300 ms"));
    assert_true(s >= 0.29 && s < 20.0);
    /* Answered once it runs again; the flag is seconds, 0 waits forever, nonsense is refused. */
    vnvme(&r, (const char *[]){"--timeout", "0", "bdev", "list", NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Malloc0"));
    const char *bad[] = {"-1", "abc", "1s", "", "nan"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vnvme(&r, (const char *[]){"-t", bad[i], "bdev", "list", NULL});
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, "bad timeout"));
    }
}

static void test_cli_without_daemon(void **state)
{
    (void)state;
    static struct run r;
    const char *argv[] = {getenv("VNVME"), "-s", "/nonexistent/rpc.sock", "bdev", "list", NULL};
    int err[2];
    assert_int_equal(pipe(err), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(err[1]);
    drain(err[0], r.err, sizeof(r.err));
    close(err[0]);
    int st;
    waitpid(pid, &st, 0);
    assert_int_equal(WEXITSTATUS(st), 1);
    assert_non_null(strstr(r.err, "cannot connect to /nonexistent/rpc.sock: No such file or directory"));
    assert_non_null(strstr(r.err, "is vnvmed running?"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cli_against_daemon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_iostat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_timeout, setup, teardown),
        cmocka_unit_test(test_cli_without_daemon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
