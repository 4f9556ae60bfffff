/* SPDX-License-Identifier: MIT */
/*
 * Namespaces on Ceph RBD, end to end: a throw-away one-node cluster
 * (scripts/ceph-test-cluster), vnvmed configured with a registered cluster
 * and two rbd bdevs (one on the shared connection, one on a private one),
 * driven through the userspace NVMe driver: verified I/O, Flush, Write
 * Zeroes, Deallocate, Compare, resize with its AER, the RPC surface and
 * save_config, and an OSD that stops answering (commands fail with a status
 * instead of hanging, and I/O works again once it is back).
 *
 * A cluster that cannot start is a failure, not a skip: CI installs Ceph.
 * The tests share one cluster and one daemon and run in order.
 */
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
#include "test_pattern.h"
#include "vnvme/nvme_host.h"
#include "vnvmed_harness.h"

#define NQN "nqn.2026-11.io.vnvme:rbd"
#define IMG0_MIB 64u /* ns 1: 512-byte blocks, shared cluster connection */
#define IMG1_MIB 32u /* ns 2: 4096-byte blocks, private connection */
#define RBD_TIMEOUT_MS 2000u

static struct vnvmed_harness vnvmed;
static char ceph_dir[96];
static char ceph_conf[160];
static char mon_host[96];
static bool cluster_started;

/* ---- cluster ---- */

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
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
    if (vnvmed_harness_path(&vnvmed, "ceph", ceph_dir, sizeof(ceph_dir)) != 0)
        return -1;
    uint64_t t0 = vnvmed_harness_now_ms();
    if (run("%s start %s >/dev/null", cluster_script(), ceph_dir) != 0) {
        fprintf(stderr, "test_rbd: the Ceph test cluster did not start (logs in %s/log)\n", ceph_dir);
        return -1;
    }
    cluster_started = true;
    fprintf(stderr, "test_rbd: cluster started in %llu ms\n", (unsigned long long)(vnvmed_harness_now_ms() - t0));
    snprintf(ceph_conf, sizeof(ceph_conf), "%s/ceph.conf", ceph_dir);

    /* The private connection is configured by a config map, so it needs the mon address. */
    FILE *f = fopen(ceph_conf, "r");
    if (!f)
        return -1;
    char line[256];
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "mon host = %95s", mon_host) == 1)
            break;
    fclose(f);
    if (!mon_host[0])
        return -1;
    if (run("rbd -c %s create --size %u rbd/img0", ceph_conf, IMG0_MIB) != 0 ||
        run("rbd -c %s create --size %u rbd/img1", ceph_conf, IMG1_MIB) != 0 ||
        run("rbd -c %s create --size 16 rbd/img2", ceph_conf) != 0 ||
        run("rbd -c %s create --size 16 rbd/img3", ceph_conf) != 0)
        return -1;
    return 0;
}

static void stop_cluster(void)
{
    if (cluster_started)
        run("%s stop %s", cluster_script(), ceph_dir);
    cluster_started = false;
}

static pid_t osd_pid(void)
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
    return vnvmed_harness_write_config(&vnvmed,
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
            ceph_conf, RBD_TIMEOUT_MS, RBD_TIMEOUT_MS, mon_host, NQN, NQN, NQN, NQN, vnvmed.listen_dir);
}

static int group_teardown(void **state);

static int group_setup(void **state)
{
    if (vnvmed_harness_init(&vnvmed, "vnvme-rbd-test") != 0)
        return -1;
    if (start_cluster() != 0 || write_config() != 0 || vnvmed_harness_start(&vnvmed, NULL) != 0) {
        group_teardown(state);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    pid_t osd = osd_pid();
    if (osd > 0)
        kill(osd, SIGCONT);
    vnvmed_harness_stop(&vnvmed);
    stop_cluster();
    vnvmed_harness_cleanup(&vnvmed);
    return 0;
}

/* ---- helpers ---- */

static struct vnvme_ctrlr *attach(void)
{
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 16u << 20};
    return host_attach(vnvmed.trid, &opts);
}

/* JSON-RPC call: 0 with *result (may be NULL), or the error code. */
static int rpc_result(const char *method, const char *params_json, struct json_object **result)
{
    return vnvmed_harness_rpc(&vnvmed, method, params_json, result);
}

static int rpc(const char *method, const char *params_json)
{
    return vnvmed_harness_rpc(&vnvmed, method, params_json, NULL);
}

static struct json_object *bdev_info(const char *name)
{
    char params[96];
    snprintf(params, sizeof(params), "{\"name\": \"%s\"}", name);
    struct json_object *arr = NULL;
    assert_int_equal(rpc_result("bdev_get_bdevs", params, &arr), 0);
    assert_int_equal(json_object_array_length(arr), 1);
    struct json_object *b = json_object_get(json_object_array_get_idx(arr, 0));
    json_object_put(arr);
    return b;
}

/* A nested member as a string ("true", "512", ...), or NULL when absent. */
static const char *jstr_path(struct json_object *o, const char *const *path)
{
    for (; *path && o; path++)
        if (!json_object_object_get_ex(o, *path, &o))
            return NULL;
    return o ? json_object_get_string(o) : NULL;
}
#define JSTR(o, ...) jstr_path((o), (const char *const[]){__VA_ARGS__, NULL})

/* ---- tests ---- */

static void test_bdevs_described(void **state)
{
    (void)state;
    struct json_object *b = bdev_info("Rbd0");
    assert_string_equal(JSTR(b, "product_name"), "Ceph Rbd Disk");
    assert_string_equal(JSTR(b, "num_blocks"), "131072");
    assert_string_equal(JSTR(b, "driver_specific", "rbd", "pool_name"), "rbd");
    assert_string_equal(JSTR(b, "driver_specific", "rbd", "rbd_name"), "img0");
    assert_string_equal(JSTR(b, "driver_specific", "rbd", "cluster_name"), "ceph");
    assert_string_equal(JSTR(b, "driver_specific", "rbd", "config_file"), ceph_conf);
    /* librbd's cache is on by default: writes are acknowledged before they are durable. */
    assert_string_equal(JSTR(b, "volatile_write_cache"), "true");
    json_object_put(b);

    b = bdev_info("Rbd1");
    assert_string_equal(JSTR(b, "block_size"), "4096");
    assert_string_equal(JSTR(b, "num_blocks"), "8192");
    assert_null(JSTR(b, "driver_specific", "rbd", "cluster_name"));
    assert_string_equal(JSTR(b, "driver_specific", "rbd", "config", "mon_host"), mon_host);
    /* Its config turns librbd's cache off: every write is durable when it completes. */
    assert_string_equal(JSTR(b, "volatile_write_cache"), "false");
    json_object_put(b);

    struct json_object *info = NULL;
    assert_int_equal(rpc_result("bdev_rbd_get_clusters_info", "{\"name\": \"ceph\"}", &info), 0);
    assert_string_equal(JSTR(info, "config_file"), ceph_conf);
    json_object_put(info);
}

static void test_identify_two_namespaces(void **state)
{
    (void)state;
    struct vnvme_ctrlr *c = attach();
    const struct nvme_id_ctrl *id = vnvme_ctrlr_data(c);
    assert_true(id->vwc & NVME_CTRL_VWC_PRESENT);
    struct vnvme_ns *ns1 = vnvme_ctrlr_ns(c, 1), *ns2 = vnvme_ctrlr_ns(c, 2);
    assert_non_null(ns1);
    assert_non_null(ns2);
    assert_int_equal(vnvme_ns_block_size(ns1), 512);
    assert_int_equal(vnvme_ns_num_blocks(ns1), (uint64_t)IMG0_MIB << 11);
    assert_int_equal(vnvme_ns_block_size(ns2), 4096);
    assert_int_equal(vnvme_ns_num_blocks(ns2), (uint64_t)IMG1_MIB << 8);
    vnvme_ctrlr_detach(c);
}

/* Write, read back and compare on one namespace, then the data-less commands. */
static void nvm_commands_on(struct vnvme_ctrlr *c, struct vnvme_qpair *qp, uint32_t nsid, uint32_t seed)
{
    struct vnvme_ns *ns = vnvme_ctrlr_ns(c, nsid);
    assert_non_null(ns);
    const uint32_t bs = vnvme_ns_block_size(ns);
    const uint32_t len = 128u * 1024u, nlb = len / bs;
    const uint64_t lba = vnvme_ns_num_blocks(ns) - 4 * nlb; /* near the end: the last object too */
    struct io_done d = {0};
    uint8_t *wbuf = vnvme_dma_alloc(c, len, 4096);
    uint8_t *rbuf = vnvme_dma_alloc(c, len, 4096);
    assert_non_null(wbuf);
    assert_non_null(rbuf);

    /* Four commands in flight at once, then each read back. */
    for (uint32_t i = 0; i < 4; i++) {
        fill_pattern(wbuf, len, seed + i);
        /* The same buffer for all four is fine only sequentially: wait for each. */
        assert_int_equal(io_sync(c, qp, vnvme_ns_write(ns, qp, wbuf, lba + i * nlb, nlb, io_done_cb, &d, 0), &d), 0);
    }
    for (uint32_t i = 0; i < 4; i++) {
        memset(rbuf, 0x5a, len);
        assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns, qp, rbuf, lba + i * nlb, nlb, io_done_cb, &d, 0), &d), 0);
        fill_pattern(wbuf, len, seed + i);
        assert_memory_equal(rbuf, wbuf, len);
    }

    /* FUA write (a write plus a flush under librbd's cache) and a plain Flush. */
    fill_pattern(wbuf, len, seed + 100);
    assert_int_equal(io_sync(c, qp, vnvme_ns_write(ns, qp, wbuf, lba, nlb, io_done_cb, &d, VNVME_IO_FUA), &d), 0);
    assert_int_equal(io_sync(c, qp, vnvme_ns_flush(ns, qp, io_done_cb, &d), &d), 0);

    /* Compare (raw opcode 05h): equal data succeeds, one flipped byte is a Compare Failure. */
    struct nvme_sqe cmp = {.opc = NVME_NVM_COMPARE, .nsid = nsid, .cdw10 = (uint32_t)lba,
                           .cdw11 = (uint32_t)(lba >> 32), .cdw12 = nlb - 1};
    assert_int_equal(io_sync(c, qp, vnvme_qpair_submit_raw(qp, &cmp, wbuf, len, io_done_cb, &d), &d), 0);
    wbuf[len / 2] ^= 0x01;
    assert_int_equal(io_sync(c, qp, vnvme_qpair_submit_raw(qp, &cmp, wbuf, len, io_done_cb, &d), &d),
                     NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILURE));
    wbuf[len / 2] ^= 0x01;

    /* Write Zeroes over the first two blocks only: the rest keeps its data. */
    assert_int_equal(io_sync(c, qp, vnvme_ns_write_zeroes(ns, qp, lba, 2, io_done_cb, &d, 0), &d), 0);
    memset(rbuf, 0x5a, len);
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns, qp, rbuf, lba, nlb, io_done_cb, &d, 0), &d), 0);
    assert_true(all_zero(rbuf, 2 * bs));
    assert_memory_equal(rbuf + 2 * bs, wbuf + 2 * bs, len - 2 * bs);

    /* Deallocate a range that is not object aligned: it reads back as zeroes. */
    struct nvme_dsm_range range = {.nlb = nlb - 1, .slba = lba + nlb + 1};
    assert_int_equal(io_sync(c, qp, vnvme_ns_deallocate(ns, qp, &range, 1, io_done_cb, &d), &d), 0);
    memset(rbuf, 0x5a, len);
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns, qp, rbuf, lba + nlb, nlb, io_done_cb, &d, 0), &d), 0);
    fill_pattern(wbuf, len, seed + 1);
    assert_memory_equal(rbuf, wbuf, bs); /* the block before the range is untouched */
    assert_true(all_zero(rbuf + bs, len - bs));

    /* Beyond the end: an NVMe status, not a librbd error. */
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns, qp, rbuf, vnvme_ns_num_blocks(ns), 1, io_done_cb, &d, 0), &d),
                     NVME_SC_LBA_OUT_OF_RANGE);
    vnvme_dma_free(c, wbuf);
    vnvme_dma_free(c, rbuf);
}

static void test_nvm_commands(void **state)
{
    (void)state;
    struct vnvme_ctrlr *c = attach();
    struct vnvme_qpair *qp = vnvme_qpair_alloc(c, 0);
    assert_non_null(qp);
    nvm_commands_on(c, qp, 1, 10);
    nvm_commands_on(c, qp, 2, 20);
    assert_int_equal(vnvme_qpair_outstanding(qp), 0);
    vnvme_qpair_free(qp);
    vnvme_ctrlr_detach(c);
}

/* Many commands in flight on both namespaces at once: completions come back through librbd's threads. */
static void test_queue_depth_verified(void **state)
{
    (void)state;
    struct vnvme_ctrlr *c = attach();
    struct vnvme_qpair *qp = vnvme_qpair_alloc(c, 0);
    assert_non_null(qp);
    enum { N = 32, LEN = 16384 };
    uint8_t *bufs[N];
    struct io_done d = {0};
    for (int i = 0; i < N; i++) {
        bufs[i] = vnvme_dma_alloc(c, LEN, 4096);
        assert_non_null(bufs[i]);
        fill_pattern(bufs[i], LEN, 1000u + (uint32_t)i);
        uint32_t nsid = 1 + (uint32_t)(i & 1);
        struct vnvme_ns *ns = vnvme_ctrlr_ns(c, nsid);
        uint32_t nlb = LEN / vnvme_ns_block_size(ns);
        assert_int_equal(vnvme_ns_write(ns, qp, bufs[i], (uint64_t)(i / 2) * nlb, nlb, io_done_cb, &d, 0), 0);
    }
    io_wait_done(c, qp, &d, N);
    assert_int_equal(d.ok, N);
    for (int i = 0; i < N; i++) {
        memset(bufs[i], 0, LEN);
        uint32_t nsid = 1 + (uint32_t)(i & 1);
        struct vnvme_ns *ns = vnvme_ctrlr_ns(c, nsid);
        uint32_t nlb = LEN / vnvme_ns_block_size(ns);
        assert_int_equal(vnvme_ns_read(ns, qp, bufs[i], (uint64_t)(i / 2) * nlb, nlb, io_done_cb, &d, 0), 0);
    }
    io_wait_done(c, qp, &d, 2 * N);
    assert_int_equal(d.ok, 2 * N);
    uint8_t *want = malloc(LEN);
    assert_non_null(want);
    for (int i = 0; i < N; i++) {
        fill_pattern(want, LEN, 1000u + (uint32_t)i);
        assert_memory_equal(bufs[i], want, LEN);
        vnvme_dma_free(c, bufs[i]);
    }
    free(want);
    vnvme_qpair_free(qp);
    vnvme_ctrlr_detach(c);
}

struct aer_seen {
    int count;
    uint32_t cdw0;
};

static void on_aer(void *arg, uint32_t cdw0)
{
    struct aer_seen *a = arg;
    a->count++;
    a->cdw0 = cdw0;
}

static void test_resize_raises_aer(void **state)
{
    (void)state;
    struct aer_seen a = {0};
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 8u << 20, .aer_cb = on_aer, .aer_arg = &a};
    struct vnvme_ctrlr *c = host_attach(vnvmed.trid, &opts);
    assert_int_equal(vnvme_ns_num_blocks(vnvme_ctrlr_ns(c, 1)), (uint64_t)IMG0_MIB << 11);

    /* Shrinking is refused (as SPDK): namespaces never lose blocks under a host. */
    assert_int_not_equal(rpc("bdev_rbd_resize", "{\"name\": \"Rbd0\", \"new_size\": 32}"), 0);
    assert_int_not_equal(rpc("bdev_rbd_resize", "{\"name\": \"Nope\", \"new_size\": 128}"), 0);
    assert_int_equal(rpc("bdev_rbd_resize", "{\"name\": \"Rbd0\", \"new_size\": 128}"), 0);

    uint64_t end = vnvmed_harness_now_ms() + HOST_TEST_WAIT_LIMIT_MS;
    while (a.count == 0) {
        assert_true(vnvme_ctrlr_process_admin(c) >= 0);
        assert_true(vnvmed_harness_now_ms() < end);
        usleep(1000);
    }
    assert_int_equal(a.cdw0 & 7u, NVME_AER_TYPE_NOTICE);
    assert_int_equal((a.cdw0 >> 8) & 0xffu, NVME_AER_INFO_NOTICE_NS_ATTR_CHANGED);
    assert_int_equal((a.cdw0 >> 16) & 0xffu, NVME_LOG_CHANGED_NS_LIST);
    assert_int_equal(vnvme_ctrlr_rescan(c), 0);
    struct vnvme_ns *ns1 = vnvme_ctrlr_ns(c, 1);
    assert_int_equal(vnvme_ns_num_blocks(ns1), 128ull << 11);
    assert_int_equal(vnvme_ns_data(ns1)->nsze, 128ull << 11);
    /* The other namespace did not change. */
    assert_int_equal(vnvme_ns_num_blocks(vnvme_ctrlr_ns(c, 2)), (uint64_t)IMG1_MIB << 8);

    /* The new blocks are usable: write and read back the last one. */
    struct vnvme_qpair *qp = vnvme_qpair_alloc(c, 0);
    assert_non_null(qp);
    struct io_done d = {0};
    uint8_t *buf = vnvme_dma_alloc(c, 512, 4096), *rd = vnvme_dma_alloc(c, 512, 4096);
    fill_pattern(buf, 512, 5);
    uint64_t last = (128ull << 11) - 1;
    assert_int_equal(io_sync(c, qp, vnvme_ns_write(ns1, qp, buf, last, 1, io_done_cb, &d, 0), &d), 0);
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns1, qp, rd, last, 1, io_done_cb, &d, 0), &d), 0);
    assert_memory_equal(rd, buf, 512);
    vnvme_dma_free(c, buf);
    vnvme_dma_free(c, rd);
    vnvme_qpair_free(qp);
    vnvme_ctrlr_detach(c);

    struct json_object *b = bdev_info("Rbd0");
    assert_string_equal(JSTR(b, "num_blocks"), "262144");
    json_object_put(b);
}

static void test_rpc_lifecycle(void **state)
{
    (void)state;
    char params[512];
    /* Unknown cluster, unknown pool, unknown image, missing block size: errors, nothing registered. */
    assert_int_not_equal(rpc("bdev_rbd_create", "{\"name\": \"X\", \"pool_name\": \"rbd\", \"rbd_name\": \"img2\","
                                                " \"block_size\": 512, \"cluster_name\": \"nope\"}"),
                         0);
    assert_int_not_equal(rpc("bdev_rbd_create", "{\"name\": \"X\", \"pool_name\": \"nopool\", \"rbd_name\": \"img2\","
                                                " \"block_size\": 512, \"cluster_name\": \"ceph\"}"),
                         0);
    assert_int_not_equal(rpc("bdev_rbd_create", "{\"name\": \"X\", \"pool_name\": \"rbd\", \"rbd_name\": \"nope\","
                                                " \"block_size\": 512, \"cluster_name\": \"ceph\"}"),
                         0);
    assert_int_equal(rpc("bdev_rbd_create", "{\"name\": \"X\", \"pool_name\": \"rbd\", \"rbd_name\": \"img2\","
                                            " \"cluster_name\": \"ceph\"}"),
                     -32602);
    assert_int_not_equal(rpc("bdev_get_bdevs", "{\"name\": \"X\"}"), 0);

    /* Unnamed: SPDK's CephN names. Then deleted again. */
    struct json_object *res = NULL;
    assert_int_equal(rpc_result("bdev_rbd_create", "{\"pool_name\": \"rbd\", \"rbd_name\": \"img2\","
                                                   " \"block_size\": 4096, \"cluster_name\": \"ceph\"}",
                                &res),
                     0);
    assert_string_equal(json_object_get_string(res), "Ceph0");
    json_object_put(res);
    /* The cluster is in use; bdevs of namespaces are claimed; delete is type-checked. */
    assert_int_equal(rpc("bdev_rbd_unregister_cluster", "{\"name\": \"ceph\"}"), -EBUSY);
    assert_int_equal(rpc("bdev_rbd_delete", "{\"name\": \"Rbd0\"}"), -EBUSY);
    assert_int_equal(rpc("bdev_malloc_delete", "{\"name\": \"Ceph0\"}"), -ENODEV);
    assert_int_equal(rpc("bdev_rbd_delete", "{\"name\": \"Ceph0\"}"), 0);
    assert_int_not_equal(rpc("bdev_get_bdevs", "{\"name\": \"Ceph0\"}"), 0);

    /* A second cluster registration (same cluster, own connection) can go away once unused. */
    snprintf(params, sizeof(params), "{\"name\": \"c2\", \"config_param\": {\"mon_host\": \"%s\"}}", mon_host);
    assert_int_equal(rpc("bdev_rbd_register_cluster", params), 0);
    assert_int_equal(rpc("bdev_rbd_register_cluster", params), -EEXIST);
    assert_int_equal(rpc("bdev_rbd_unregister_cluster", "{\"name\": \"c2\"}"), 0);
    assert_int_equal(rpc("bdev_rbd_unregister_cluster", "{\"name\": \"c2\"}"), -ENOENT);
    /* Config values are strings (librados parses them). */
    assert_int_equal(rpc("bdev_rbd_register_cluster", "{\"name\": \"c3\", \"config_param\": {\"x\": 1}}"), -32602);
}

static void test_save_config(void **state)
{
    (void)state;
    struct json_object *cfg = NULL;
    assert_int_equal(rpc_result("save_config", NULL, &cfg), 0);
    struct json_object *subs = NULL, *bdev_cfg = NULL;
    assert_true(json_object_object_get_ex(cfg, "subsystems", &subs));
    for (size_t i = 0; i < json_object_array_length(subs); i++) {
        struct json_object *s = json_object_array_get_idx(subs, i);
        const char *name = JSTR(s, "subsystem");
        if (name && strcmp(name, "bdev") == 0)
            json_object_object_get_ex(s, "config", &bdev_cfg);
    }
    assert_non_null(bdev_cfg);
    /* The cluster comes first, then the bdevs in creation order with what recreates them. */
    struct json_object *e0 = json_object_array_get_idx(bdev_cfg, 0), *e1 = json_object_array_get_idx(bdev_cfg, 1),
                       *e2 = json_object_array_get_idx(bdev_cfg, 2);
    assert_string_equal(JSTR(e0, "method"), "bdev_rbd_register_cluster");
    assert_string_equal(JSTR(e0, "params", "name"), "ceph");
    assert_string_equal(JSTR(e0, "params", "config_file"), ceph_conf);
    assert_string_equal(JSTR(e0, "params", "timeout_ms"), "2000");
    assert_string_equal(JSTR(e1, "method"), "bdev_rbd_create");
    assert_string_equal(JSTR(e1, "params", "name"), "Rbd0");
    assert_string_equal(JSTR(e1, "params", "cluster_name"), "ceph");
    assert_string_equal(JSTR(e1, "params", "rbd_name"), "img0");
    assert_string_equal(JSTR(e1, "params", "block_size"), "512");
    assert_string_equal(JSTR(e2, "method"), "bdev_rbd_create");
    assert_string_equal(JSTR(e2, "params", "name"), "Rbd1");
    assert_string_equal(JSTR(e2, "params", "config", "mon_host"), mon_host);
    assert_null(JSTR(e2, "params", "cluster_name"));
    json_object_put(cfg);
}

/* The OSD stops answering: commands complete with an error status, then work again after it resumes. */
static void test_stalled_osd_times_out(void **state)
{
    (void)state;
    /* The host waits longer than the target's rbd timeout, so the status seen is the target's. */
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 8u << 20, .timeout_ms = 60000};
    struct vnvme_ctrlr *c = host_attach(vnvmed.trid, &opts);
    struct vnvme_qpair *qp = vnvme_qpair_alloc(c, 0);
    assert_non_null(qp);
    struct vnvme_ns *ns1 = vnvme_ctrlr_ns(c, 1), *ns2 = vnvme_ctrlr_ns(c, 2);
    uint8_t *buf = vnvme_dma_alloc(c, 8192, 4096), *rd = vnvme_dma_alloc(c, 8192, 4096);
    fill_pattern(buf, 8192, 99);

    pid_t osd = osd_pid();
    assert_true(osd > 0);
    assert_int_equal(harness_stop_process(osd), 0);
    /*
     * Every command below needs the OSD: a Flush after a write that librbd's
     * cache accepted on ns 1, a FUA write there, and on ns 2 (no cache) a read
     * of blocks written earlier (never-written ones are known to be zero from
     * the object map) and a plain write. A plain write on ns 1 may complete
     * from the cache, so it is not counted.
     */
    struct io_done cached = {0}, flush = {0}, fua = {0}, read = {0}, nocache = {0};
    io_sync(c, qp, vnvme_ns_write(ns1, qp, buf, 100, 16, io_done_cb, &cached, 0), &cached);
    assert_int_equal(vnvme_ns_write(ns1, qp, buf, 300, 16, io_done_cb, &fua, VNVME_IO_FUA), 0);
    assert_int_equal(vnvme_ns_flush(ns1, qp, io_done_cb, &flush), 0);
    assert_int_equal(vnvme_ns_read(ns2, qp, rd, 0, 2, io_done_cb, &read, 0), 0);
    assert_int_equal(vnvme_ns_write(ns2, qp, buf, 10, 2, io_done_cb, &nocache, 0), 0);
    io_wait_done(c, qp, &flush, 1);
    io_wait_done(c, qp, &fua, 1);
    io_wait_done(c, qp, &read, 1);
    io_wait_done(c, qp, &nocache, 1);
    assert_int_equal(kill(osd, SIGCONT), 0);
    /* -ETIMEDOUT from the bdev becomes Namespace Not Ready without DNR: the host may retry. */
    const uint16_t not_ready = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_NAMESPACE_NOT_READY);
    /*
     * The Flush and the FUA write's flush wait for the same writeback: librbd
     * hands its error to one of them and success to the other, which the bdev
     * turns into -EIO (Write Fault). Either way neither claims durability.
     */
    const uint16_t write_fault = NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT);
    assert_true(flush.status == not_ready || flush.status == write_fault);
    assert_true(fua.status == not_ready || fua.status == write_fault);
    assert_int_equal(read.status, not_ready);
    assert_int_equal(nocache.status, not_ready);
    assert_false(read.dnr || nocache.dnr || flush.dnr || fua.dnr);
    assert_false(vnvme_ctrlr_is_failed(c));

    /* librados gave up by itself (its op timeout), so the reactor never had to abandon an I/O to librbd. */
    struct json_object *b = bdev_info("Rbd0");
    assert_string_equal(JSTR(b, "driver_specific", "rbd", "abandoned_ios"), "0");
    json_object_put(b);

    /* Back to normal once the OSD runs again (it may take a moment to be heard from). */
    uint64_t end = vnvmed_harness_now_ms() + HOST_TEST_WAIT_LIMIT_MS;
    for (;;) {
        struct io_done w = {0};
        io_sync(c, qp, vnvme_ns_write(ns1, qp, buf, 100, 16, io_done_cb, &w, 0), &w);
        if (w.status == 0)
            break;
        assert_true(vnvmed_harness_now_ms() < end);
        usleep(100000);
    }
    struct io_done r = {0};
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns1, qp, rd, 100, 16, io_done_cb, &r, 0), &r), 0);
    assert_memory_equal(rd, buf, 8192);
    assert_int_equal(io_sync(c, qp, vnvme_ns_write(ns2, qp, buf, 10, 2, io_done_cb, &r, 0), &r), 0);
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns2, qp, rd, 10, 2, io_done_cb, &r, 0), &r), 0);
    assert_memory_equal(rd, buf, 8192);
    vnvme_dma_free(c, buf);
    vnvme_dma_free(c, rd);
    vnvme_qpair_free(qp);
    vnvme_ctrlr_detach(c);
}

/* ---- a full cluster ---- */

/* Set the cluster's nearfull/backfillfull/full ratios, in an order that keeps them ascending. */
static int set_full_ratios(bool full)
{
    if (full)
        return run("ceph -c %s osd set-nearfull-ratio 0.00001 >/dev/null 2>&1 && "
                   "ceph -c %s osd set-backfillfull-ratio 0.00005 >/dev/null 2>&1 && "
                   "ceph -c %s osd set-full-ratio 0.0001 >/dev/null 2>&1",
                   ceph_conf, ceph_conf, ceph_conf);
    return run("ceph -c %s osd set-full-ratio 0.95 >/dev/null 2>&1 && "
               "ceph -c %s osd set-backfillfull-ratio 0.9 >/dev/null 2>&1 && "
               "ceph -c %s osd set-nearfull-ratio 0.85 >/dev/null 2>&1",
               ceph_conf, ceph_conf, ceph_conf);
}

/* Wait (up to 30 s) until the mon reports the OSD full, or no longer full. */
static bool wait_osd_full(bool full)
{
    for (int i = 0; i < 300; i++) {
        int st = system(full ? "ceph -c \"$CEPH_TEST_CONF\" health detail 2>/dev/null | grep -q OSD_FULL"
                             : "! ceph -c \"$CEPH_TEST_CONF\" health detail 2>/dev/null | grep -q OSD_FULL");
        if (st == 0)
            return true;
        usleep(100000);
    }
    return false;
}

/*
 * A full cluster blocks writes in librados until space comes back, which
 * would be forever: the rbd bdev's timeout turns that into an error for the
 * host, reads keep working, and writes work again once the cluster has room.
 * "Full" is made by lowering the full ratio below what the OSD holds.
 */
static void test_full_cluster_fails_writes_then_recovers(void **state)
{
    (void)state;
    setenv("CEPH_TEST_CONF", ceph_conf, 1);
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 8u << 20, .timeout_ms = 60000};
    struct vnvme_ctrlr *c = host_attach(vnvmed.trid, &opts);
    struct vnvme_qpair *qp = vnvme_qpair_alloc(c, 0);
    assert_non_null(qp);
    struct vnvme_ns *ns2 = vnvme_ctrlr_ns(c, 2);
    uint8_t *buf = vnvme_dma_alloc(c, 8192, 4096), *rd = vnvme_dma_alloc(c, 8192, 4096);
    fill_pattern(buf, 8192, 123);
    struct io_done w0 = {0};
    assert_int_equal(io_sync(c, qp, vnvme_ns_write(ns2, qp, buf, 20, 2, io_done_cb, &w0, 0), &w0), 0);

    assert_int_equal(set_full_ratios(true), 0);
    bool became_full = wait_osd_full(true);
    struct io_done w = {0}, r = {0};
    uint64_t t0 = vnvmed_harness_now_ms();
    if (became_full) {
        /* ns 2 has no write cache: the write must reach the (full) cluster. */
        io_sync(c, qp, vnvme_ns_write(ns2, qp, buf, 40, 2, io_done_cb, &w, 0), &w);
        io_sync(c, qp, vnvme_ns_read(ns2, qp, rd, 20, 2, io_done_cb, &r, 0), &r);
    }
    uint64_t took = vnvmed_harness_now_ms() - t0;
    /* Room again before asserting, so a failure here cannot leave the cluster full for the tests after it. */
    assert_int_equal(set_full_ratios(false), 0);
    bool room_again = wait_osd_full(false);
    assert_true(became_full);
    assert_true(room_again);
    assert_int_equal(w.count, 1);
    assert_int_equal(w.status, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_NAMESPACE_NOT_READY));
    assert_false(w.dnr);
    assert_true(took < 4u * RBD_TIMEOUT_MS + 5000u); /* an error after the timeout, not an eternal hang */
    assert_int_equal(r.status, 0); /* a full cluster still serves reads */
    assert_memory_equal(rd, buf, 8192);
    assert_false(vnvme_ctrlr_is_failed(c));

    /* Writes work again (the OSD map with room may take a moment to arrive). */
    uint64_t end = vnvmed_harness_now_ms() + HOST_TEST_WAIT_LIMIT_MS;
    for (;;) {
        struct io_done again = {0};
        io_sync(c, qp, vnvme_ns_write(ns2, qp, buf, 40, 2, io_done_cb, &again, 0), &again);
        if (again.status == 0)
            break;
        assert_true(vnvmed_harness_now_ms() < end);
        usleep(100000);
    }
    struct io_done r2 = {0};
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns2, qp, rd, 40, 2, io_done_cb, &r2, 0), &r2), 0);
    assert_memory_equal(rd, buf, 8192);
    vnvme_dma_free(c, buf);
    vnvme_dma_free(c, rd);
    vnvme_qpair_free(qp);
    vnvme_ctrlr_detach(c);
}

/* ---- a librbd that ignores its timeouts ---- */

#define STALL_NSID 3u   /* Rbd3: rados_osd_op_timeout 0, so only the backstop ends a stalled I/O */
#define MALLOC_NSID 4u  /* Mal0: a RAM namespace on the same controller */
#define STALL_TIMEOUT_MS 1000u

/* A private connection whose librados never times out an OSD op, no cache, plus a RAM namespace. */
static void add_stall_namespaces(void)
{
    char params[768];
    snprintf(params, sizeof(params),
             "{\"name\": \"Rbd3\", \"pool_name\": \"rbd\", \"rbd_name\": \"img3\", \"block_size\": 4096,"
             " \"timeout_ms\": %u, \"config\": {\"mon_host\": \"%s\", \"auth_client_required\": \"none\","
             " \"rbd_cache\": \"false\", \"rados_osd_op_timeout\": \"0\"}}",
             STALL_TIMEOUT_MS, mon_host);
    assert_int_equal(rpc("bdev_rbd_create", params), 0);
    assert_int_equal(rpc("bdev_malloc_create", "{\"name\": \"Mal0\", \"num_blocks\": 1024, \"block_size\": 4096}"), 0);
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Rbd3\", \"nsid\": %u}}", NQN,
             STALL_NSID);
    assert_int_equal(rpc("nvmf_subsystem_add_ns", params), 0);
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Mal0\", \"nsid\": %u}}", NQN,
             MALLOC_NSID);
    assert_int_equal(rpc("nvmf_subsystem_add_ns", params), 0);
}

static void remove_stall_namespaces(void)
{
    char params[256];
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"nsid\": %u}", NQN, STALL_NSID);
    assert_int_equal(rpc("nvmf_subsystem_remove_ns", params), 0);
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"nsid\": %u}", NQN, MALLOC_NSID);
    assert_int_equal(rpc("nvmf_subsystem_remove_ns", params), 0);
    assert_int_equal(rpc("bdev_rbd_delete", "{\"name\": \"Rbd3\"}"), 0);
    assert_int_equal(rpc("bdev_malloc_delete", "{\"name\": \"Mal0\"}"), 0);
}

/* utime + stime of every thread of pid, in ms. */
static uint64_t process_cpu_ms(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    assert_non_null(p);
    unsigned long long utime = 0, stime = 0;
    /* After ") ": state is field 3; utime and stime are fields 14 and 15. */
    assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime), 2);
    return (utime + stime) * 1000ull / (uint64_t)sysconf(_SC_CLK_TCK);
}

static uint64_t bdev_counter(const char *bdev, const char *key)
{
    struct json_object *b = bdev_info(bdev);
    const char *v = JSTR(b, "driver_specific", "rbd", key);
    assert_non_null(v);
    uint64_t n = strtoull(v, NULL, 10);
    json_object_put(b);
    return n;
}

/*
 * While its only work is an I/O the cluster does not answer, the reactor
 * sleeps instead of polling (vnvmed stays far below a core), yet a command
 * for another namespace, whose doorbell write wakes nothing, is still seen
 * within the reactor's bound (milliseconds at the very most, not when the
 * stalled I/O ends).
 */
static void test_reactor_sleeps_while_cluster_stalls(void **state)
{
    (void)state;
    add_stall_namespaces();
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 8u << 20, .timeout_ms = 60000};
    struct vnvme_ctrlr *c = host_attach(vnvmed.trid, &opts);
    struct vnvme_qpair *qp = vnvme_qpair_alloc(c, 0);
    assert_non_null(qp);
    struct vnvme_ns *stall = vnvme_ctrlr_ns(c, STALL_NSID), *ram = vnvme_ctrlr_ns(c, MALLOC_NSID);
    assert_non_null(stall);
    assert_non_null(ram);
    uint8_t *buf = vnvme_dma_alloc(c, 8192, 4096), *rd = vnvme_dma_alloc(c, 8192, 4096);
    uint8_t *ram_buf = vnvme_dma_alloc(c, 4096, 4096);
    fill_pattern(buf, 8192, 123);
    struct io_done d = {0};
    assert_int_equal(io_sync(c, qp, vnvme_ns_write(stall, qp, buf, 0, 2, io_done_cb, &d, 0), &d), 0);

    pid_t osd = osd_pid();
    assert_true(osd > 0);
    assert_int_equal(harness_stop_process(osd), 0);
    struct io_done stalled = {0};
    uint64_t t0 = vnvmed_harness_now_ms();
    assert_int_equal(vnvme_ns_read(stall, qp, rd, 0, 2, io_done_cb, &stalled, 0), 0);
    usleep(100000); /* the reactor settles into waiting */

    uint64_t cpu0 = process_cpu_ms(vnvmed.pid), wall0 = vnvmed_harness_now_ms();
    uint64_t worst_ram_ms = 0;
    int ram_ios = 0;
    while (vnvmed_harness_now_ms() - wall0 < 800) {
        /* The host polls too, so what is measured is how soon the reactor sees the doorbell. */
        struct io_done r = {0};
        uint64_t s = vnvmed_harness_now_ms();
        assert_int_equal(vnvme_ns_read(ram, qp, ram_buf, 7, 1, io_done_cb, &r, 0), 0);
        while (r.count == 0)
            assert_true(vnvme_qpair_process(qp, 0) >= 0);
        assert_int_equal(r.status, 0);
        uint64_t took = vnvmed_harness_now_ms() - s;
        worst_ram_ms = took > worst_ram_ms ? took : worst_ram_ms;
        ram_ios++;
        usleep(20000); /* long enough for the reactor to go back to sleep */
    }
    uint64_t cpu_ms = process_cpu_ms(vnvmed.pid) - cpu0, wall_ms = vnvmed_harness_now_ms() - wall0;
    assert_int_equal(stalled.count, 0); /* the measurement ran while the read was stalled */
    fprintf(stderr, "test_rbd: while stalled: vnvmed used %llu ms CPU in %llu ms; %d RAM reads, slowest %llu ms\n",
            (unsigned long long)cpu_ms, (unsigned long long)wall_ms, ram_ios, (unsigned long long)worst_ram_ms);
    /* A polling reactor would use the whole window; sleeping, it uses a few percent. */
    assert_true(cpu_ms * 100 < wall_ms * 30);
    assert_true(worst_ram_ms < 100);

    io_wait_done(c, qp, &stalled, 1);
    assert_true(vnvmed_harness_now_ms() - t0 >= 2 * STALL_TIMEOUT_MS - 100);
    assert_int_equal(stalled.status, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_NAMESPACE_NOT_READY));
    assert_int_equal(kill(osd, SIGCONT), 0);

    /* The abandoned read finishes late inside the bdev; then the namespace works again. */
    uint64_t end = vnvmed_harness_now_ms() + HOST_TEST_WAIT_LIMIT_MS;
    while (bdev_counter("Rbd3", "abandoned_ios_pending") != 0) {
        assert_true(vnvmed_harness_now_ms() < end);
        usleep(50000);
    }
    memset(rd, 0, 8192);
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(stall, qp, rd, 0, 2, io_done_cb, &d, 0), &d), 0);
    assert_memory_equal(rd, buf, 8192);
    vnvme_dma_free(c, buf);
    vnvme_dma_free(c, rd);
    vnvme_dma_free(c, ram_buf);
    vnvme_qpair_free(qp);
    vnvme_ctrlr_detach(c);
    remove_stall_namespaces();
}

/*
 * The backstop completes a read that librbd still holds; the host sees the
 * error and reuses its buffer. When the OSD answers later, librbd's data must
 * land in the bdev's memory, never in the host's.
 */
static void test_abandoned_read_stays_out_of_host_memory(void **state)
{
    (void)state;
    add_stall_namespaces();
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 8u << 20, .timeout_ms = 60000};
    struct vnvme_ctrlr *c = host_attach(vnvmed.trid, &opts);
    struct vnvme_qpair *qp = vnvme_qpair_alloc(c, 0);
    assert_non_null(qp);
    struct vnvme_ns *stall = vnvme_ctrlr_ns(c, STALL_NSID);
    assert_non_null(stall);
    uint8_t *buf = vnvme_dma_alloc(c, 8192, 4096), *rd = vnvme_dma_alloc(c, 8192, 4096);
    fill_pattern(buf, 8192, 77);
    struct io_done d = {0};
    assert_int_equal(io_sync(c, qp, vnvme_ns_write(stall, qp, buf, 4, 2, io_done_cb, &d, 0), &d), 0);
    uint64_t abandoned = bdev_counter("Rbd3", "abandoned_ios");

    pid_t osd = osd_pid();
    assert_true(osd > 0);
    assert_int_equal(harness_stop_process(osd), 0);
    memset(rd, 0, 8192);
    struct io_done stalled = {0};
    assert_int_equal(vnvme_ns_read(stall, qp, rd, 4, 2, io_done_cb, &stalled, 0), 0);
    io_wait_done(c, qp, &stalled, 1);
    assert_int_equal(stalled.status, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_NAMESPACE_NOT_READY));
    assert_false(stalled.dnr);
    assert_int_equal(bdev_counter("Rbd3", "abandoned_ios"), abandoned + 1);
    assert_int_equal(bdev_counter("Rbd3", "abandoned_ios_pending"), 1);

    /* The host got its answer and uses the buffer for something else. */
    memset(rd, 0xee, 8192);
    assert_int_equal(kill(osd, SIGCONT), 0);
    uint64_t end = vnvmed_harness_now_ms() + HOST_TEST_WAIT_LIMIT_MS;
    while (bdev_counter("Rbd3", "abandoned_ios_pending") != 0) {
        assert_true(vnvmed_harness_now_ms() < end);
        usleep(50000);
    }
    for (size_t i = 0; i < 8192; i++)
        if (rd[i] != 0xee)
            fail_msg("byte %zu of the reused buffer changed after the read was abandoned", i);
    /* The data itself was fine all along. */
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(stall, qp, rd, 4, 2, io_done_cb, &d, 0), &d), 0);
    assert_memory_equal(rd, buf, 8192);
    vnvme_dma_free(c, buf);
    vnvme_dma_free(c, rd);
    vnvme_qpair_free(qp);
    vnvme_ctrlr_detach(c);
    remove_stall_namespaces();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bdevs_described),
        cmocka_unit_test(test_identify_two_namespaces),
        cmocka_unit_test(test_nvm_commands),
        cmocka_unit_test(test_queue_depth_verified),
        cmocka_unit_test(test_resize_raises_aer),
        cmocka_unit_test(test_rpc_lifecycle),
        cmocka_unit_test(test_save_config),
        cmocka_unit_test(test_stalled_osd_times_out),
        cmocka_unit_test(test_full_cluster_fails_writes_then_recovers),
        cmocka_unit_test(test_reactor_sleeps_while_cluster_stalls),
        cmocka_unit_test(test_abandoned_read_stays_out_of_host_memory),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
