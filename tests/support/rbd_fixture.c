/* SPDX-License-Identifier: MIT */
/* The RBD tests' cluster and daemon (rbd_fixture.h). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "host_test_io.h"
#include "rbd_fixture.h"
#include "vnvme/nvme_host.h"

struct vnvmed_harness rbd_daemon;
char rbd_ceph_conf[160];
char rbd_mon_host[96];
static char ceph_dir[96];
static bool cluster_started;

/* ---- cluster ---- */

int rbd_run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st != 0)
        fprintf(stderr, "test_rbd: '%s' failed (status %d)\n", cmd, st);
    return st == 0 ? 0 : -1;
}

static const char *cluster_script(void)
{
    const char *s = getenv("CEPH_TEST_CLUSTER");
    return s ? s : "scripts/ceph-test-cluster";
}

static int start_cluster(void)
{
    if (vnvmed_harness_path(&rbd_daemon, "ceph", ceph_dir, sizeof(ceph_dir)) != 0)
        return -1;
    uint64_t t0 = vnvmed_harness_now_ms();
    if (rbd_run("%s start %s >/dev/null", cluster_script(), ceph_dir) != 0) {
        fprintf(stderr, "test_rbd: the Ceph test cluster did not start (logs in %s/log)\n", ceph_dir);
        return -1;
    }
    cluster_started = true;
    fprintf(stderr, "test_rbd: cluster started in %llu ms\n", (unsigned long long)(vnvmed_harness_now_ms() - t0));
    snprintf(rbd_ceph_conf, sizeof(rbd_ceph_conf), "%s/ceph.conf", ceph_dir);

    /* The private connection is configured by a config map, so it needs the mon address. */
    FILE *f = fopen(rbd_ceph_conf, "r");
    if (!f)
        return -1;
    char line[256];
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "mon host = %95s", rbd_mon_host) == 1)
            break;
    fclose(f);
    if (!rbd_mon_host[0])
        return -1;
    if (rbd_run("rbd -c %s create --size %u rbd/img0", rbd_ceph_conf, RBD_IMG0_MIB) != 0 ||
        rbd_run("rbd -c %s create --size %u rbd/img1", rbd_ceph_conf, RBD_IMG1_MIB) != 0 ||
        rbd_run("rbd -c %s create --size 16 rbd/img2", rbd_ceph_conf) != 0 ||
        rbd_run("rbd -c %s create --size 16 rbd/img3", rbd_ceph_conf) != 0 ||
        rbd_run("rbd -c %s create --size 16 rbd/img4", rbd_ceph_conf) != 0)
        return -1;
    return 0;
}

static void stop_cluster(void)
{
    if (cluster_started)
        rbd_run("%s stop %s", cluster_script(), ceph_dir);
    cluster_started = false;
}

pid_t rbd_osd_pid(void)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/osd.pid", ceph_dir);
    FILE *f = fopen(path, "r");
    int pid = -1;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = -1;
        fclose(f);
    }
    return (pid_t)pid;
}

/* ---- daemon ---- */

static int write_config(void)
{
    return vnvmed_harness_write_config(&rbd_daemon,
            "{\"subsystems\": [\n"
            "  {\"subsystem\": \"bdev\", \"config\": [\n"
            "    {\"method\": \"bdev_rbd_register_cluster\",\n"
            "     \"params\": {\"name\": \"ceph\", \"config_file\": \"%s\", \"timeout_ms\": %u}},\n"
            "    {\"method\": \"bdev_rbd_create\",\n"
            "     \"params\": {\"name\": \"Rbd0\", \"pool_name\": \"rbd\", \"rbd_name\": \"img0\",\n"
            "                \"block_size\": 512, \"cluster_name\": \"ceph\"}},\n"
            "    {\"method\": \"bdev_rbd_create\",\n"
            "     \"params\": {\"name\": \"Rbd1\", \"pool_name\": \"rbd\", \"rbd_name\": \"img1\",\n"
            "                \"block_size\": 4096, \"timeout_ms\": %u,\n"
            "                \"config\": {\"mon_host\": \"%s\", \"auth_client_required\": \"none\",\n"
            "                           \"rbd_cache\": \"false\"}}}]},\n"
            "  {\"subsystem\": \"nvmf\", \"config\": [\n"
            "    {\"method\": \"nvmf_create_transport\", \"params\": {\"trtype\": \"VFIOUSER\"}},\n"
            "    {\"method\": \"nvmf_create_subsystem\",\n"
            "     \"params\": {\"nqn\": \"%s\", \"serial_number\": \"RBDTEST1\", \"allow_any_host\": true}},\n"
            "    {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "     \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Rbd0\", \"nsid\": 1}}},\n"
            "    {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "     \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Rbd1\", \"nsid\": 2}}},\n"
            "    {\"method\": \"nvmf_subsystem_add_listener\",\n"
            "     \"params\": {\"nqn\": \"%s\", \"listen_address\": {\"trtype\": \"VFIOUSER\", \"adrfam\": \"IPv4\",\n"
            "                \"traddr\": \"%s\", \"trsvcid\": \"\"}}}]}]}\n",
            rbd_ceph_conf, RBD_TIMEOUT_MS, RBD_TIMEOUT_MS, rbd_mon_host, RBD_NQN, RBD_NQN, RBD_NQN, RBD_NQN, rbd_daemon.listen_dir);
}

int rbd_fixture_setup(void **state)
{
    if (vnvmed_harness_init(&rbd_daemon, "vnvme-rbd-test") != 0)
        return -1;
    if (start_cluster() != 0 || write_config() != 0 || vnvmed_harness_start(&rbd_daemon, NULL) != 0) {
        rbd_fixture_teardown(state);
        return -1;
    }
    return 0;
}

int rbd_fixture_teardown(void **state)
{
    (void)state;
    pid_t osd = rbd_osd_pid();
    if (osd > 0)
        kill(osd, SIGCONT);
    vnvmed_harness_stop(&rbd_daemon);
    stop_cluster();
    vnvmed_harness_cleanup(&rbd_daemon);
    return 0;
}

/* ---- helpers ---- */

struct vnvme_ctrlr *rbd_attach(void)
{
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 16u << 20};
    return host_attach(rbd_daemon.trid, &opts);
}

/* JSON-RPC call: 0 with *result (may be NULL), or the error code. */
int rbd_rpc_result(const char *method, const char *params_json, struct json_object **result)
{
    return vnvmed_harness_rpc(&rbd_daemon, method, params_json, result);
}

int rbd_rpc(const char *method, const char *params_json)
{
    return vnvmed_harness_rpc(&rbd_daemon, method, params_json, NULL);
}

struct json_object *rbd_bdev_info(const char *name)
{
    char params[96];
    snprintf(params, sizeof(params), "{\"name\": \"%s\"}", name);
    struct json_object *arr = NULL;
    assert_int_equal(rbd_rpc_result("bdev_get_bdevs", params, &arr), 0);
    assert_int_equal(json_object_array_length(arr), 1);
    struct json_object *b = json_object_get(json_object_array_get_idx(arr, 0));
    json_object_put(arr);
    return b;
}

/* A nested member as a string ("true", "512", ...), or NULL when absent. */
const char *rbd_jstr_path(struct json_object *o, const char *const *path)
{
    for (; *path && o; path++)
        if (!json_object_object_get_ex(o, *path, &o))
            return NULL;
    return o ? json_object_get_string(o) : NULL;
}

