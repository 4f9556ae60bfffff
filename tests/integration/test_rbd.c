/* SPDX-License-Identifier: MIT */
/*
 * Namespaces on Ceph RBD, end to end (the cluster and daemon of
 * tests/support/rbd_fixture.h), driven through the userspace NVMe driver:
 * verified I/O, Flush, Write Zeroes, Deallocate, Compare, resize with its AER,
 * the RPC surface and save_config. Failures of the cluster are in
 * test_rbd_failures.c. The tests share one cluster and one daemon and run in order.
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
#include "rbd_fixture.h"
#include "test_pattern.h"
#include "vnvme/nvme_host.h"
#include "vnvmed_harness.h"

static void test_bdevs_described(void **state)
{
    (void)state;
    struct json_object *b = rbd_bdev_info("Rbd0");
    assert_string_equal(JSTR(b, "product_name"), "Ceph Rbd Disk");
    assert_string_equal(JSTR(b, "num_blocks"), "131072");
    assert_string_equal(JSTR(b, "driver_specific", "rbd", "pool_name"), "rbd");
    assert_string_equal(JSTR(b, "driver_specific", "rbd", "rbd_name"), "img0");
    assert_string_equal(JSTR(b, "driver_specific", "rbd", "cluster_name"), "ceph");
    assert_string_equal(JSTR(b, "driver_specific", "rbd", "config_file"), rbd_ceph_conf);
    /* librbd's cache is on by default: writes are acknowledged before they are durable. */
    assert_string_equal(JSTR(b, "volatile_write_cache"), "true");
    json_object_put(b);

    b = rbd_bdev_info("Rbd1");
    assert_string_equal(JSTR(b, "block_size"), "4096");
    assert_string_equal(JSTR(b, "num_blocks"), "8192");
    assert_null(JSTR(b, "driver_specific", "rbd", "cluster_name"));
    assert_string_equal(JSTR(b, "driver_specific", "rbd", "config", "mon_host"), rbd_mon_host);
    /* Its config turns librbd's cache off: every write is durable when it completes. */
    assert_string_equal(JSTR(b, "volatile_write_cache"), "false");
    json_object_put(b);

    struct json_object *info = NULL;
    assert_int_equal(rbd_rpc_result("bdev_rbd_get_clusters_info", "{\"name\": \"ceph\"}", &info), 0);
    assert_string_equal(JSTR(info, "config_file"), rbd_ceph_conf);
    json_object_put(info);
}

static void test_identify_two_namespaces(void **state)
{
    (void)state;
    struct vnvme_ctrlr *c = rbd_attach();
    const struct nvme_id_ctrl *id = vnvme_ctrlr_data(c);
    assert_true(id->vwc & NVME_CTRL_VWC_PRESENT);
    struct vnvme_ns *ns1 = vnvme_ctrlr_ns(c, 1), *ns2 = vnvme_ctrlr_ns(c, 2);
    assert_non_null(ns1);
    assert_non_null(ns2);
    assert_int_equal(vnvme_ns_block_size(ns1), 512);
    assert_int_equal(vnvme_ns_num_blocks(ns1), (uint64_t)RBD_IMG0_MIB << 11);
    assert_int_equal(vnvme_ns_block_size(ns2), 4096);
    assert_int_equal(vnvme_ns_num_blocks(ns2), (uint64_t)RBD_IMG1_MIB << 8);
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
    struct vnvme_ctrlr *c = rbd_attach();
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
    struct vnvme_ctrlr *c = rbd_attach();
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
    struct vnvme_ctrlr *c = host_attach(rbd_daemon.trid, &opts);
    assert_int_equal(vnvme_ns_num_blocks(vnvme_ctrlr_ns(c, 1)), (uint64_t)RBD_IMG0_MIB << 11);

    /* Shrinking is refused (as SPDK): namespaces never lose blocks under a host. */
    assert_int_not_equal(rbd_rpc("bdev_rbd_resize", "{\"name\": \"Rbd0\", \"new_size\": 32}"), 0);
    assert_int_not_equal(rbd_rpc("bdev_rbd_resize", "{\"name\": \"Nope\", \"new_size\": 128}"), 0);
    assert_int_equal(rbd_rpc("bdev_rbd_resize", "{\"name\": \"Rbd0\", \"new_size\": 128}"), 0);

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
    assert_int_equal(vnvme_ns_num_blocks(vnvme_ctrlr_ns(c, 2)), (uint64_t)RBD_IMG1_MIB << 8);

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

    struct json_object *b = rbd_bdev_info("Rbd0");
    assert_string_equal(JSTR(b, "num_blocks"), "262144");
    json_object_put(b);
}

static void test_rpc_lifecycle(void **state)
{
    (void)state;
    char params[512];
    /* Unknown cluster, unknown pool, unknown image, missing block size: errors, nothing registered. */
    assert_int_not_equal(rbd_rpc("bdev_rbd_create", "{\"name\": \"X\", \"pool_name\": \"rbd\", \"rbd_name\": \"img2\","
                                                " \"block_size\": 512, \"cluster_name\": \"nope\"}"),
                         0);
    assert_int_not_equal(rbd_rpc("bdev_rbd_create", "{\"name\": \"X\", \"pool_name\": \"nopool\", \"rbd_name\": \"img2\","
                                                " \"block_size\": 512, \"cluster_name\": \"ceph\"}"),
                         0);
    assert_int_not_equal(rbd_rpc("bdev_rbd_create", "{\"name\": \"X\", \"pool_name\": \"rbd\", \"rbd_name\": \"nope\","
                                                " \"block_size\": 512, \"cluster_name\": \"ceph\"}"),
                         0);
    assert_int_equal(rbd_rpc("bdev_rbd_create", "{\"name\": \"X\", \"pool_name\": \"rbd\", \"rbd_name\": \"img2\","
                                            " \"cluster_name\": \"ceph\"}"),
                     -32602);
    assert_int_not_equal(rbd_rpc("bdev_get_bdevs", "{\"name\": \"X\"}"), 0);

    /* Unnamed: SPDK's CephN names. Then deleted again. */
    struct json_object *res = NULL;
    assert_int_equal(rbd_rpc_result("bdev_rbd_create", "{\"pool_name\": \"rbd\", \"rbd_name\": \"img2\","
                                                   " \"block_size\": 4096, \"cluster_name\": \"ceph\"}",
                                &res),
                     0);
    assert_string_equal(json_object_get_string(res), "Ceph0");
    json_object_put(res);
    /* The cluster is in use; bdevs of namespaces are claimed; delete is type-checked. */
    assert_int_equal(rbd_rpc("bdev_rbd_unregister_cluster", "{\"name\": \"ceph\"}"), -EBUSY);
    assert_int_equal(rbd_rpc("bdev_rbd_delete", "{\"name\": \"Rbd0\"}"), -EBUSY);
    assert_int_equal(rbd_rpc("bdev_malloc_delete", "{\"name\": \"Ceph0\"}"), -ENODEV);
    assert_int_equal(rbd_rpc("bdev_rbd_delete", "{\"name\": \"Ceph0\"}"), 0);
    assert_int_not_equal(rbd_rpc("bdev_get_bdevs", "{\"name\": \"Ceph0\"}"), 0);

    /* A second cluster registration (same cluster, own connection) can go away once unused. */
    snprintf(params, sizeof(params), "{\"name\": \"c2\", \"config_param\": {\"mon_host\": \"%s\"}}", rbd_mon_host);
    assert_int_equal(rbd_rpc("bdev_rbd_register_cluster", params), 0);
    assert_int_equal(rbd_rpc("bdev_rbd_register_cluster", params), -EEXIST);
    /* An image on it keeps it; once deleted, unregistering need not wait for the image's close. */
    assert_int_equal(rbd_rpc("bdev_rbd_create", "{\"name\": \"OnC2\", \"pool_name\": \"rbd\", \"rbd_name\": \"img2\","
                                            " \"block_size\": 4096, \"cluster_name\": \"c2\"}"),
                     0);
    assert_int_equal(rbd_rpc("bdev_rbd_unregister_cluster", "{\"name\": \"c2\"}"), -EBUSY);
    assert_int_equal(rbd_rpc("bdev_rbd_delete", "{\"name\": \"OnC2\"}"), 0);
    assert_int_equal(rbd_rpc("bdev_rbd_unregister_cluster", "{\"name\": \"c2\"}"), 0);
    assert_int_equal(rbd_rpc("bdev_rbd_unregister_cluster", "{\"name\": \"c2\"}"), -ENOENT);
    /* Config values are strings (librados parses them). */
    assert_int_equal(rbd_rpc("bdev_rbd_register_cluster", "{\"name\": \"c3\", \"config_param\": {\"x\": 1}}"), -32602);
}

static void test_save_config(void **state)
{
    (void)state;
    struct json_object *cfg = NULL;
    assert_int_equal(rbd_rpc_result("save_config", NULL, &cfg), 0);
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
    assert_string_equal(JSTR(e0, "params", "config_file"), rbd_ceph_conf);
    assert_string_equal(JSTR(e0, "params", "timeout_ms"), "2000");
    assert_string_equal(JSTR(e1, "method"), "bdev_rbd_create");
    assert_string_equal(JSTR(e1, "params", "name"), "Rbd0");
    assert_string_equal(JSTR(e1, "params", "cluster_name"), "ceph");
    assert_string_equal(JSTR(e1, "params", "rbd_name"), "img0");
    assert_string_equal(JSTR(e1, "params", "block_size"), "512");
    assert_string_equal(JSTR(e2, "method"), "bdev_rbd_create");
    assert_string_equal(JSTR(e2, "params", "name"), "Rbd1");
    assert_string_equal(JSTR(e2, "params", "config", "mon_host"), rbd_mon_host);
    assert_null(JSTR(e2, "params", "cluster_name"));
    json_object_put(cfg);
}

/* The OSD stops answering: commands complete with an error status, then work again after it resumes. */
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
    };
    return cmocka_run_group_tests(tests, rbd_fixture_setup, rbd_fixture_teardown);
}
