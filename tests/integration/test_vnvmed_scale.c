/* SPDX-License-Identifier: MIT */
/*
 * Many tenants on one daemon: vnvmed with 256 controllers (256 subsystems,
 * a RAM namespace and a socket each) on 2 reactors. It starts, every
 * controller takes a client at once (this process: 256 connections, each
 * enabled with an I/O queue pair), RPC answers while they are connected,
 * controllers on both reactors and at both ends of the lists do I/O (after
 * a quiet spell nearly all are polled less often, nvmf_get_stats says so,
 * and each answers its next command), and
 * SIGTERM ends it cleanly with every socket removed.
 * The start time is printed; its goal (under 2 s) lives in BENCHMARKS.md.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "nvme_guest.h"
#include "test_pattern.h"
#include "vnvmed_harness.h"

#define N 256
#define GUEST_RAM (2u << 20)
#define BLOCK 512u

static struct vnvmed_harness vnvmed;
static struct nvme_guest guests[N];
static char sock[N][160];

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The config: controller i at DIR/c<i>/cntrl; the harness's own socket is controller 0's. */
static int write_config(void)
{
    size_t cap = (size_t)N * 900 + 4096, len = 0;
    char *cfg = malloc(cap);
    if (!cfg)
        return -1;
    len += (size_t)snprintf(cfg + len, cap - len, "{\"subsystems\": [{\"subsystem\": \"bdev\", \"config\": [");
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(cfg + len, cap - len,
                                "%s{\"method\": \"bdev_malloc_create\", \"params\": {\"name\": \"M%d\", "
                                "\"num_blocks\": 2048, \"block_size\": %u}}",
                                i ? ",\n" : "", i, BLOCK);
    len += (size_t)snprintf(cfg + len, cap - len,
                            "]}, {\"subsystem\": \"nvmf\", \"config\": [{\"method\": \"nvmf_create_transport\", "
                            "\"params\": {\"trtype\": \"VFIOUSER\"}}");
    for (int i = 0; i < N; i++) {
        char dir[128];
        if (i == 0)
            snprintf(dir, sizeof(dir), "%s", vnvmed.listen_dir);
        else
            snprintf(dir, sizeof(dir), "%s/c%d", vnvmed.dir, i);
        snprintf(sock[i], sizeof(sock[i]), "%s/cntrl", dir);
        len += (size_t)snprintf(cfg + len, cap - len,
                                ",\n{\"method\": \"nvmf_create_subsystem\", \"params\": {\"nqn\": \"nqn.2026-12.io.vnvme:t%d\", "
                                "\"allow_any_host\": true}},\n"
                                "{\"method\": \"nvmf_subsystem_add_ns\", \"params\": {\"nqn\": \"nqn.2026-12.io.vnvme:t%d\", "
                                "\"namespace\": {\"bdev_name\": \"M%d\", \"nsid\": 1}}},\n"
                                "{\"method\": \"nvmf_subsystem_add_listener\", \"params\": {\"nqn\": \"nqn.2026-12.io.vnvme:t%d\", "
                                "\"listen_address\": {\"trtype\": \"VFIOUSER\", \"traddr\": \"%s\"}}}",
                                i, i, i, i, dir);
    }
    len += (size_t)snprintf(cfg + len, cap - len, "]}]}\n");
    int rc = len < cap ? vnvmed_harness_write_config(&vnvmed, "%s", cfg) : -1;
    free(cfg);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    /* Each connection holds a socket, its RAM's memfd and its vectors' eventfds. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (vnvmed_harness_init(&vnvmed, "vnvme-scale") != 0 || write_config() != 0)
        return -1;
    const char *args[] = {"--log-level", "warn", NULL};
    char last_sock[192];
    snprintf(last_sock, sizeof(last_sock), "%s", sock[N - 1]);
    struct vnvmed_start how = {.core_mask = "0x3", .second_socket = last_sock, .args = args};
    double t0 = now_ms();
    if (vnvmed_harness_start(&vnvmed, &how) != 0)
        return -1;
    printf("# vnvmed with %d controllers: every socket and RPC up in %.0f ms\n", N, now_ms() - t0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < N; i++)
        if (guests[i].c)
            ng_close(&guests[i]);
    vnvmed_harness_cleanup(&vnvmed);
    return 0;
}

static uint64_t poll_groups_sum(const char *key)
{
    struct json_object *r = NULL, *groups = NULL, *v = NULL;
    assert_int_equal(vnvmed_harness_rpc(&vnvmed, "nvmf_get_stats", NULL, &r), 0);
    assert_true(json_object_object_get_ex(r, "poll_groups", &groups));
    uint64_t sum = 0;
    for (size_t i = 0; i < json_object_array_length(groups); i++) {
        assert_true(json_object_object_get_ex(json_object_array_get_idx(groups, i), key, &v));
        sum += json_object_get_uint64(v);
    }
    json_object_put(r);
    return sum;
}

static void rw_check(int i, uint64_t lba, uint32_t seed)
{
    struct nvme_guest *g = &guests[i];
    uint64_t w = ng_alloc(g, 4096, NG_PAGE), r = ng_alloc(g, 4096, NG_PAGE);
    fill_pattern(ng_ptr(g, w), 4096, seed);
    assert_int_equal(ng_rw(g, 1, NVME_NVM_WRITE, 1, lba, 4096 / BLOCK, w, 4096), 0);
    memset(ng_ptr(g, r), 0, 4096);
    assert_int_equal(ng_rw(g, 1, NVME_NVM_READ, 1, lba, 4096 / BLOCK, r, 4096), 0);
    assert_memory_equal(ng_ptr(g, w), ng_ptr(g, r), 4096);
}

static void test_all_connect_and_work(void **state)
{
    (void)state;
    double t0 = now_ms();
    for (int i = 0; i < N; i++) {
        assert_int_equal(ng_open_retry(&guests[i], sock[i], GUEST_RAM, 5000), 0);
        assert_int_equal(ng_enable(&guests[i], 8), 0);
        assert_int_equal(ng_set_num_queues(&guests[i], 1, 1, NULL), 0);
        assert_int_equal(ng_create_io_queues(&guests[i], 1, 16, 1), 0);
    }
    printf("# %d clients connected, enabled, with an I/O queue pair each in %.0f ms\n", N, now_ms() - t0);
    assert_int_equal(poll_groups_sum("connected_clients"), N);
    assert_int_equal(poll_groups_sum("current_io_qpairs"), N);
    /* Every controller does I/O once. */
    for (int i = 0; i < N; i++)
        rw_check(i, (uint64_t)i, (uint32_t)i + 1);
}

static void test_rpc_while_connected(void **state)
{
    (void)state;
    double t0 = now_ms();
    struct json_object *r = NULL;
    assert_int_equal(vnvmed_harness_rpc(&vnvmed, "nvmf_get_subsystems", NULL, &r), 0);
    assert_int_equal(json_object_array_length(r), N);
    json_object_put(r);
    assert_int_equal(vnvmed_harness_rpc(&vnvmed, "bdev_get_iostat", NULL, &r), 0);
    json_object_put(r);
    printf("# nvmf_get_subsystems and bdev_get_iostat with %d clients: %.1f ms\n", N, now_ms() - t0);
    /* A change while they are connected: a namespace added to the last subsystem, seen by its client. */
    assert_int_equal(vnvmed_harness_rpc(&vnvmed, "bdev_malloc_create",
                                        "{\"name\": \"Extra\", \"num_blocks\": 2048, \"block_size\": 512}", NULL),
                     0);
    char params[160];
    snprintf(params, sizeof(params), "{\"nqn\": \"nqn.2026-12.io.vnvme:t%d\", \"namespace\": {\"bdev_name\": \"Extra\"}}",
             N - 1);
    assert_int_equal(vnvmed_harness_rpc(&vnvmed, "nvmf_subsystem_add_ns", params, NULL), 0);
}

/*
 * Controllers that stayed idle through the other's I/O (polled less often by
 * now) answer at once; so do those at the ends of each reactor's lists.
 */
static void test_idle_ones_answer(void **state)
{
    (void)state;
    /* 1024 rounds without work make a controller cold: well under a second, even while the reactor sleeps. */
    uint64_t cold = 0;
    for (int i = 0; i < 50 && cold < N - 8; i++) {
        usleep(100000);
        cold = poll_groups_sum("controllers_polled_rarely");
    }
    printf("# controllers polled rarely after a quiet spell: %llu of %d\n", (unsigned long long)cold, N);
    assert_true(cold >= N - 8);
    const int pick[] = {0, 1, 2, N / 2, N / 2 + 1, N - 2, N - 1};
    for (size_t k = 0; k < sizeof(pick) / sizeof(pick[0]); k++) {
        double t0 = now_ms();
        rw_check(pick[k], 100 + k, 1000u + (uint32_t)k);
        double ms = now_ms() - t0;
        printf("# controller %d, idle before: write+read in %.2f ms\n", pick[k], ms);
    }
    /* Busy on one, then all the others once more, interleaved. */
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < N; i += 17)
            rw_check(i, 200 + (uint64_t)round, 77u * (uint32_t)i + (uint32_t)round);
}

static void test_clean_shutdown(void **state)
{
    (void)state;
    double t0 = now_ms();
    assert_int_equal(vnvmed_harness_stop(&vnvmed), 0); /* SIGTERM, exit status 0 */
    printf("# SIGTERM to exit with %d clients connected: %.0f ms\n", N, now_ms() - t0);
    struct stat st;
    for (int i = 0; i < N; i++)
        assert_int_not_equal(stat(sock[i], &st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_connect_and_work),
        cmocka_unit_test(test_rpc_while_connected),
        cmocka_unit_test(test_idle_ones_answer),
        cmocka_unit_test(test_clean_shutdown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
