/* SPDX-License-Identifier: MIT */
/*
 * The userspace NVMe driver (nvme_host.h) against the built vnvmed: attach by
 * transport id, identify, concurrent verified I/O on two queue pairs from two
 * threads, the NVM commands, raw commands with caller memory, namespace hot
 * add through RPC (AER + rescan), reset with I/O outstanding, a hung server
 * (SIGSTOP: timeouts, Abort, failed reset), a killed server (every command
 * completes, reattach to a new daemon) and detach.
 *
 * The tests share one daemon and run in order.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <poll.h>
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

#define NQN "nqn.2026-11.io.vnvme:host"
#define BLOCK_SIZE 512u
#define NUM_BLOCKS 131072u /* 64 MiB */
#define QD 32u

static struct vnvmed_harness vnvmed;

/* ---- daemon ---- */

static int write_config(void)
{
    return vnvmed_harness_write_config(&vnvmed,
            "{\"subsystems\": [\n"
            "  {\"subsystem\": \"bdev\", \"config\": [\n"
            "    {\"method\": \"bdev_malloc_create\",\n"
            "     \"params\": {\"name\": \"Malloc0\", \"num_blocks\": %u, \"block_size\": %u}}]},\n"
            "  {\"subsystem\": \"nvmf\", \"config\": [\n"
            "    {\"method\": \"nvmf_create_transport\", \"params\": {\"trtype\": \"VFIOUSER\"}},\n"
            "    {\"method\": \"nvmf_create_subsystem\",\n"
            "     \"params\": {\"nqn\": \"%s\", \"serial_number\": \"HOSTTEST1\", \"allow_any_host\": true}},\n"
            "    {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "     \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Malloc0\", \"nsid\": 1}}},\n"
            "    {\"method\": \"nvmf_subsystem_add_listener\",\n"
            "     \"params\": {\"nqn\": \"%s\", \"listen_address\": {\"trtype\": \"VFIOUSER\", \"adrfam\": \"IPv4\",\n"
            "                \"traddr\": \"%s\", \"trsvcid\": \"\"}}}]}]}\n",
            NUM_BLOCKS, BLOCK_SIZE, NQN, NQN, NQN, vnvmed.listen_dir);
}

static int group_setup(void **state)
{
    (void)state;
    if (vnvmed_harness_init(&vnvmed, "vnvme-host-test") != 0 || write_config() != 0)
        return -1;
    return vnvmed_harness_start(&vnvmed, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    vnvmed_harness_cleanup(&vnvmed);
    return 0;
}

/* ---- helpers ---- */

static struct vnvme_ctrlr *attach(void)
{
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 32u << 20};
    return host_attach(vnvmed.trid, &opts);
}

/* A controller whose I/O queues signal completions by interrupt, its namespace 1, one queue pair. */
static struct vnvme_qpair *interrupt_qpair(struct vnvme_ctrlr **c, struct vnvme_ns **ns)
{
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 16u << 20, .io_interrupts = true};
    *c = host_attach(vnvmed.trid, &opts);
    *ns = vnvme_ctrlr_ns(*c, 1);
    assert_non_null(*ns);
    struct vnvme_qpair *qp = vnvme_qpair_alloc(*c, 0);
    assert_non_null(qp);
    return qp;
}

/* ---- tests ---- */

static void test_attach_identify(void **state)
{
    (void)state;
    struct vnvme_ctrlr *c = attach();
    const struct nvme_id_ctrl *id = vnvme_ctrlr_data(c);
    assert_non_null(id);
    assert_memory_equal(id->sn, "HOSTTEST1", 9);
    assert_string_equal(id->subnqn, NQN);
    assert_true(id->nn >= 1);
    assert_true(vnvme_ctrlr_vs(c) >= NVME_VS(1, 4, 0));
    assert_true(NVME_CAP_MQES(vnvme_ctrlr_cap(c)) > 0);
    assert_false(vnvme_ctrlr_is_failed(c));
    assert_string_equal(vnvme_ctrlr_path(c), vnvmed.sock_path);

    struct vnvme_ns *ns = vnvme_ctrlr_first_ns(c);
    assert_non_null(ns);
    assert_int_equal(vnvme_ns_id(ns), 1);
    assert_int_equal(vnvme_ns_block_size(ns), BLOCK_SIZE);
    assert_int_equal(vnvme_ns_num_blocks(ns), NUM_BLOCKS);
    assert_int_equal(vnvme_ns_md_size(ns), 0);
    assert_int_equal(vnvme_ns_data(ns)->nsze, NUM_BLOCKS);
    assert_ptr_equal(vnvme_ctrlr_ns(c, 1), ns);
    assert_null(vnvme_ctrlr_ns(c, 2));
    assert_null(vnvme_ctrlr_next_ns(c, ns));
    vnvme_ctrlr_detach(c);

    /* A plain socket path works too; a wrong transport type does not. */
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 8u << 20};
    c = host_attach(vnvmed.sock_path, &opts);
    vnvme_ctrlr_detach(c);
    assert_int_equal(vnvme_ctrlr_attach("trtype:PCIE traddr:0000:00:04.0", &opts, &c), -EINVAL);
}

/* ---- two threads, two qpairs ---- */

struct op {
    struct io_done d;
    uint8_t *buf;
    uint64_t lba;
    uint32_t nlb;
    uint32_t seed;
    bool busy;
};

struct worker {
    struct vnvme_ctrlr *c;
    struct vnvme_ns *ns;
    struct vnvme_qpair *qp;
    uint64_t base_lba;
    uint32_t seed;
    int errors;
    int mismatches;
};

#define OPS_PER_THREAD 256u

static void op_done(void *arg, const struct nvme_cqe *cpl)
{
    struct op *o = arg;
    o->d.count++;
    o->d.status = vnvme_cpl_status(cpl) & 0x7ffu;
    o->busy = false;
}

/* Runs OPS_PER_THREAD writes (read == false) or reads at QD, each op i at a fixed LBA and size. */
static void run_phase(struct worker *w, struct op *ops, bool read)
{
    uint32_t next = 0, done = 0;
    bool slot_idx_used[QD] = {false};
    uint32_t in_slot[QD];
    while (done < OPS_PER_THREAD) {
        for (uint32_t s = 0; s < QD && next < OPS_PER_THREAD; s++) {
            if (slot_idx_used[s])
                continue;
            struct op *o = &ops[s];
            uint32_t i = next;
            uint32_t kib = 4u << (i % 6); /* 4 KiB .. 128 KiB */
            o->nlb = kib * 1024u / BLOCK_SIZE;
            o->lba = w->base_lba + (uint64_t)i * 256u; /* 128 KiB apart */
            o->seed = w->seed * 100000u + i;
            o->busy = true;
            int rc;
            if (read) {
                memset(o->buf, 0, kib * 1024u);
                rc = vnvme_ns_read(w->ns, w->qp, o->buf, o->lba, o->nlb, op_done, o, 0);
            } else {
                fill_pattern(o->buf, kib * 1024u, o->seed);
                rc = vnvme_ns_write(w->ns, w->qp, o->buf, o->lba, o->nlb, op_done, o, 0);
            }
            if (rc == -EAGAIN) {
                o->busy = false;
                break;
            }
            if (rc) {
                w->errors++;
                return;
            }
            slot_idx_used[s] = true;
            in_slot[s] = i;
            next++;
        }
        vnvme_qpair_process(w->qp, 0);
        for (uint32_t s = 0; s < QD; s++) {
            if (!slot_idx_used[s] || ops[s].busy)
                continue;
            struct op *o = &ops[s];
            if (o->d.status)
                w->errors++;
            if (read) {
                uint8_t *expect = malloc(o->nlb * BLOCK_SIZE);
                fill_pattern(expect, o->nlb * BLOCK_SIZE, w->seed * 100000u + in_slot[s]);
                if (memcmp(expect, o->buf, o->nlb * BLOCK_SIZE) != 0)
                    w->mismatches++;
                free(expect);
            }
            slot_idx_used[s] = false;
            done++;
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct op ops[QD];
    memset(ops, 0, sizeof(ops));
    for (uint32_t s = 0; s < QD; s++) {
        ops[s].buf = vnvme_dma_alloc(w->c, 128u * 1024u, 4096);
        if (!ops[s].buf) {
            w->errors++;
            return NULL;
        }
    }
    run_phase(w, ops, false);
    if (!w->errors)
        run_phase(w, ops, true);
    for (uint32_t s = 0; s < QD; s++)
        vnvme_dma_free(w->c, ops[s].buf);
    return NULL;
}

/*
 * 4 KiB to 128 KiB transfers: beyond two pages, SGL data blocks, or PRP lists
 * with prp_only; doorbells in registers, or in the shadow page with dbbuf.
 */
static void two_threads_verified_io(bool prp_only, bool dbbuf)
{
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 32u << 20, .prp_only = prp_only, .doorbell_buffer = dbbuf};
    struct vnvme_ctrlr *c = host_attach(vnvmed.trid, &opts);
    struct vnvme_ns *ns = vnvme_ctrlr_ns(c, 1);
    assert_non_null(ns);
    struct worker w[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        w[i] = (struct worker){.c = c, .ns = ns, .base_lba = (uint64_t)i * 65536u, .seed = (uint32_t)i + 1};
        w[i].qp = vnvme_qpair_alloc(c, 64);
        assert_non_null(w[i].qp);
        assert_int_equal(vnvme_qpair_uses_sgl(w[i].qp), !prp_only); /* vnvmed reports SGL support */
        assert_int_equal(vnvme_qpair_uses_doorbell_buffer(w[i].qp), dbbuf); /* and Doorbell Buffer Config */
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(w[i].errors, 0);
        assert_int_equal(w[i].mismatches, 0);
        assert_int_equal(vnvme_qpair_outstanding(w[i].qp), 0);
        vnvme_qpair_free(w[i].qp);
    }
    vnvme_ctrlr_detach(c);
}

static void test_two_threads_verified_io(void **state)
{
    (void)state;
    two_threads_verified_io(false, false);
}

static void test_two_threads_verified_io_doorbell_buffer(void **state)
{
    (void)state;
    two_threads_verified_io(false, true);
}

static void test_two_threads_verified_io_prp(void **state)
{
    (void)state;
    two_threads_verified_io(true, false);
}

static void test_nvm_commands_and_raw(void **state)
{
    (void)state;
    struct vnvme_ctrlr *c;
    struct vnvme_ns *ns;
    struct vnvme_qpair *qp = interrupt_qpair(&c, &ns);
    assert_true(vnvme_qpair_fd(qp) >= 0);
    struct io_done d = {0};
    const uint32_t len = 64u * 1024u, nlb = len / BLOCK_SIZE;
    uint8_t *buf = vnvme_dma_alloc(c, len, 4096);
    uint8_t *heap = malloc(len); /* not pool memory: bounced */
    assert_non_null(buf);
    fill_pattern(buf, len, 77);
    assert_int_equal(io_sync(c, qp, vnvme_ns_write(ns, qp, buf, 1000, nlb, io_done_cb, &d, VNVME_IO_FUA), &d), 0);
    assert_int_equal(io_sync(c, qp, vnvme_ns_flush(ns, qp, io_done_cb, &d), &d), 0);
    /* Raw read into caller memory. */
    memset(heap, 0, len);
    struct nvme_sqe rd = {.opc = NVME_NVM_READ, .nsid = 1, .cdw10 = 1000, .cdw12 = nlb - 1};
    assert_int_equal(io_sync(c, qp, vnvme_qpair_submit_raw(qp, &rd, heap, len, io_done_cb, &d), &d), 0);
    assert_memory_equal(heap, buf, len);
    /* The interrupt eventfd fired. */
    uint64_t events = 0;
    assert_int_equal(read(vnvme_qpair_fd(qp), &events, sizeof(events)), (ssize_t)sizeof(events));
    assert_true(events > 0);

    /* Write zeroes, then read back zeroes (through the heap buffer: bounce path). */
    assert_int_equal(io_sync(c, qp, vnvme_ns_write_zeroes(ns, qp, 1000, 8, io_done_cb, &d, 0), &d), 0);
    memset(heap, 0xaa, len);
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns, qp, heap, 1000, nlb, io_done_cb, &d, 0), &d), 0);
    for (uint32_t i = 0; i < 8 * BLOCK_SIZE; i++)
        assert_int_equal(heap[i], 0);
    assert_memory_equal(heap + 8 * BLOCK_SIZE, buf + 8 * BLOCK_SIZE, len - 8 * BLOCK_SIZE);

    /* Deallocate (ranges in caller memory), then the blocks read as zeroes. */
    struct nvme_dsm_range range = {.nlb = nlb, .slba = 1000};
    assert_int_equal(io_sync(c, qp, vnvme_ns_deallocate(ns, qp, &range, 1, io_done_cb, &d), &d), 0);
    memset(heap, 0xaa, len);
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns, qp, heap, 1000, nlb, io_done_cb, &d, 0), &d), 0);
    for (uint32_t i = 0; i < len; i++)
        assert_int_equal(heap[i], 0);

    /* Out of range LBA: an NVMe error status, not a driver error. */
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns, qp, buf, NUM_BLOCKS, 1, io_done_cb, &d, 0), &d),
                     NVME_SC_LBA_OUT_OF_RANGE);
    /* Larger than MDTS: refused at submission. */
    assert_int_equal(vnvme_ns_read(ns, qp, heap, 0, 65536, io_done_cb, &d, 0), -EINVAL);

    /* Raw admin: SMART log into caller memory, synchronous and asynchronous. */
    struct nvme_smart_log *smart = calloc(1, sizeof(*smart));
    struct nvme_sqe gl = {.opc = NVME_ADMIN_GET_LOG_PAGE, .nsid = 0xffffffffu,
                          .cdw10 = NVME_LOG_SMART | ((uint32_t)(sizeof(*smart) / 4 - 1) << 16)};
    struct nvme_cqe cpl;
    assert_int_equal(vnvme_ctrlr_admin_sync(c, &gl, smart, sizeof(*smart), &cpl), 0);
    assert_false(vnvme_cpl_is_error(&cpl));
    assert_true(smart->temperature > 0);
    assert_true(smart->host_write_commands[0] > 0);
    memset(smart, 0, sizeof(*smart));
    assert_int_equal(vnvme_ctrlr_admin_raw(c, &gl, smart, sizeof(*smart), io_done_cb, &d), 0);
    io_wait_done(c, NULL, &d, d.count + 1);
    assert_int_equal(d.status, 0);
    assert_true(smart->temperature > 0);
    free(smart);

    assert_int_equal(vnvme_qpair_outstanding(qp), 0);
    vnvme_qpair_free(qp);
    vnvme_dma_free(c, buf);
    free(heap);
    vnvme_ctrlr_detach(c);
}

/* ---- interrupt coalescing ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Waits for the queue pair's interrupt (at most 5 s) and consumes it; ms it took from since. */
static double wait_interrupt(struct vnvme_qpair *qp, double since)
{
    struct pollfd pfd = {.fd = vnvme_qpair_fd(qp), .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    double took = now_ms() - since;
    uint64_t v;
    assert_int_equal(read(pfd.fd, &v, sizeof(v)), (ssize_t)sizeof(v));
    return took;
}

/*
 * Set Features Interrupt Coalescing through the daemon: a lone completion's
 * interrupt waits out the Aggregation Time (the reactor wakes for it), the
 * Aggregation Threshold's worth of completions gets one at once, and the
 * Admin CQ is not held back.
 */
static void test_interrupt_coalescing(void **state)
{
    (void)state;
    struct vnvme_ctrlr *c;
    struct vnvme_ns *ns;
    struct vnvme_qpair *qp = interrupt_qpair(&c, &ns);
    uint8_t *buf = vnvme_dma_alloc(c, 4 * 4096, 4096);
    assert_non_null(buf);
    struct io_done d = {0};
    /* THR 3: four entries; TIME 30: 3 ms. */
    struct nvme_sqe set = {.opc = NVME_ADMIN_SET_FEATURES, .cdw10 = NVME_FEAT_INTERRUPT_COALESCING, .cdw11 = 30u << 8 | 3u};
    struct nvme_cqe cpl;
    assert_int_equal(vnvme_ctrlr_admin_sync(c, &set, NULL, 0, &cpl), 0);
    assert_false(vnvme_cpl_is_error(&cpl));

    for (int round = 0; round < 3; round++) {
        double t0 = now_ms();
        assert_int_equal(vnvme_ns_read(ns, qp, buf, 0, 8, io_done_cb, &d, 0), 0);
        double took = wait_interrupt(qp, t0);
        print_message("lone read: interrupt after %.2f ms\n", took);
        assert_true(took >= 2.9); /* never before the Aggregation Time */
        assert_int_equal(vnvme_qpair_process(qp, 0), 1);
    }
    int before = d.count;
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(vnvme_ns_read(ns, qp, buf + i * 4096, i * 8, 8, io_done_cb, &d, 0), 0);
    (void)wait_interrupt(qp, now_ms());
    io_wait_done(c, qp, &d, before + 4);
    assert_int_equal(d.status, 0);

    set.cdw11 = 0; /* off again: admin commands were never held back, and I/O is not any more */
    assert_int_equal(vnvme_ctrlr_admin_sync(c, &set, NULL, 0, &cpl), 0);
    assert_false(vnvme_cpl_is_error(&cpl));
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns, qp, buf, 0, 8, io_done_cb, &d, 0), &d), 0);

    vnvme_qpair_free(qp);
    vnvme_dma_free(c, buf);
    vnvme_ctrlr_detach(c);
}

/* ---- namespace hot add ---- */

struct aer_seen {
    int count;
    uint32_t cdw0;
    bool ns2_present_in_cb;
    struct vnvme_ctrlr *c;
};

static void on_aer(void *arg, uint32_t cdw0)
{
    struct aer_seen *a = arg;
    a->count++;
    a->cdw0 = cdw0;
    a->ns2_present_in_cb = vnvme_ctrlr_ns(a->c, 2) != NULL;
}

static int rpc(const char *method, const char *params_json)
{
    return vnvmed_harness_rpc(&vnvmed, method, params_json, NULL);
}

static void test_namespace_hot_add_aer(void **state)
{
    (void)state;
    struct aer_seen a = {0};
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 8u << 20, .aer_cb = on_aer, .aer_arg = &a};
    struct vnvme_ctrlr *c = host_attach(vnvmed.trid, &opts);
    a.c = c;
    assert_null(vnvme_ctrlr_ns(c, 2));
    assert_int_equal(rpc("bdev_malloc_create", "{\"name\": \"Malloc1\", \"num_blocks\": 2048, \"block_size\": 4096}"),
                     0);
    char params[256];
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Malloc1\", \"nsid\": 2}}", NQN);
    assert_int_equal(rpc("nvmf_subsystem_add_ns", params), 0);
    uint64_t end = vnvmed_harness_now_ms() + HOST_TEST_WAIT_LIMIT_MS;
    while (a.count == 0) {
        assert_true(vnvme_ctrlr_process_admin(c) >= 0);
        assert_true(vnvmed_harness_now_ms() < end);
        usleep(1000);
    }
    assert_int_equal(a.cdw0 & 7u, NVME_AER_TYPE_NOTICE);
    assert_int_equal((a.cdw0 >> 16) & 0xffu, NVME_LOG_CHANGED_NS_LIST);
    assert_true(a.ns2_present_in_cb);
    struct vnvme_ns *ns2 = vnvme_ctrlr_ns(c, 2);
    assert_non_null(ns2);
    assert_int_equal(vnvme_ns_block_size(ns2), 4096);
    assert_int_equal(vnvme_ns_num_blocks(ns2), 2048);
    assert_ptr_equal(vnvme_ctrlr_next_ns(c, vnvme_ctrlr_first_ns(c)), ns2);
    vnvme_ctrlr_detach(c);
}

/* ---- reset ---- */

static void test_reset_with_outstanding_io(void **state)
{
    (void)state;
    struct vnvme_ctrlr *c = attach();
    struct vnvme_ns *ns = vnvme_ctrlr_ns(c, 1);
    struct vnvme_qpair *qp = vnvme_qpair_alloc(c, 64);
    assert_non_null(qp);
    uint8_t *buf = vnvme_dma_alloc(c, QD * 8192u, 4096);
    struct io_done d = {0};
    for (uint32_t i = 0; i < QD; i++)
        assert_int_equal(vnvme_ns_write(ns, qp, buf + i * 8192u, 5000 + i * 16u, 16, io_done_cb, &d, 0), 0);
    assert_int_equal(vnvme_ctrlr_reset(c), 0);
    /* Each command completed exactly once: by the controller before the reset, or aborted by it. */
    io_wait_done(c, qp, &d, (int)QD);
    assert_int_equal(vnvme_qpair_outstanding(qp), 0);
    assert_false(vnvme_ctrlr_is_failed(c));

    /* The same qpair works after the reset, and so does a subsystem reset. */
    fill_pattern(buf, 8192, 5);
    assert_int_equal(io_sync(c, qp, vnvme_ns_write(ns, qp, buf, 5000, 16, io_done_cb, &d, 0), &d), 0);
    assert_int_equal(vnvme_ctrlr_subsystem_reset(c), 0);
    memset(buf + 8192, 0, 8192);
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns, qp, buf + 8192, 5000, 16, io_done_cb, &d, 0), &d), 0);
    assert_memory_equal(buf, buf + 8192, 8192);
    assert_non_null(vnvme_ctrlr_ns(c, 1));
    vnvme_dma_free(c, buf);
    vnvme_qpair_free(qp);
    vnvme_ctrlr_detach(c);
}

/* ---- a hung server ---- */

static void test_hung_server_times_out(void **state)
{
    (void)state;
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 8u << 20, .timeout_ms = 500};
    struct vnvme_ctrlr *c = host_attach(vnvmed.trid, &opts);
    struct vnvme_ns *ns = vnvme_ctrlr_ns(c, 1);
    struct vnvme_qpair *qp = vnvme_qpair_alloc(c, 64);
    assert_non_null(qp);
    uint8_t *buf = vnvme_dma_alloc(c, QD * 4096u, 4096);
    struct io_done d = {0};
    assert_int_equal(vnvmed_harness_pause(&vnvmed), 0);
    for (uint32_t i = 0; i < QD; i++)
        assert_int_equal(vnvme_ns_read(ns, qp, buf + i * 4096u, i * 8u, 8, io_done_cb, &d, 0), 0);
    /*
     * Abort, then a reset that cannot reach the server: every command ends with
     * an error, none hangs. Which of the two driver statuses each one gets
     * depends on whether its own deadline passed before the controller was
     * declared failed, so only the sum is fixed.
     */
    uint64_t end = vnvmed_harness_now_ms() + HOST_TEST_WAIT_LIMIT_MS;
    while (d.count < (int)QD && vnvmed_harness_now_ms() < end) {
        vnvme_qpair_process(qp, 0);
        vnvme_ctrlr_process_admin(c);
        usleep(1000);
    }
    /* Resume the server before asserting, so a failure here cannot stall the tests after it. */
    vnvmed_harness_resume(&vnvmed);
    assert_int_equal(d.count, (int)QD);
    assert_int_equal(d.ok, 0);
    assert_int_equal(d.timeouts + d.disconnects, (int)QD);
    assert_true(d.timeouts >= 1);
    assert_true(vnvme_ctrlr_is_failed(c));
    assert_int_equal(vnvme_ns_read(ns, qp, buf, 0, 8, io_done_cb, &d, 0), -ENXIO);
    vnvme_qpair_free(qp);
    vnvme_ctrlr_detach(c);

    /* The server recovers: a new attach works. */
    c = attach();
    qp = vnvme_qpair_alloc(c, 0);
    assert_non_null(qp);
    buf = vnvme_dma_alloc(c, 4096, 4096);
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(vnvme_ctrlr_ns(c, 1), qp, buf, 0, 8, io_done_cb, &d, 0), &d), 0);
    vnvme_qpair_free(qp);
    vnvme_ctrlr_detach(c);
}

/* ---- a killed server ---- */

static void test_killed_server(void **state)
{
    (void)state;
    struct vnvme_ctrlr *c = attach();
    struct vnvme_ns *ns = vnvme_ctrlr_ns(c, 1);
    struct vnvme_qpair *qp = vnvme_qpair_alloc(c, 64);
    assert_non_null(qp);
    uint8_t *buf = vnvme_dma_alloc(c, QD * 4096u, 4096);
    struct io_done d = {0};
    /* Stopped first so that all 32 are still outstanding when it dies. */
    assert_int_equal(vnvmed_harness_pause(&vnvmed), 0);
    for (uint32_t i = 0; i < QD; i++)
        assert_int_equal(vnvme_ns_write(ns, qp, buf + i * 4096u, i * 8u, 8, io_done_cb, &d, 0), 0);
    assert_int_equal(vnvme_qpair_outstanding(qp), QD);
    assert_int_equal(vnvmed_harness_kill(&vnvmed), 0);
    int errors = 0;
    uint64_t end = vnvmed_harness_now_ms() + HOST_TEST_WAIT_LIMIT_MS;
    while (d.count < (int)QD) {
        int before = d.count;
        vnvme_qpair_process(qp, 0);
        vnvme_ctrlr_process_admin(c);
        if (d.count > before && d.status == VNVME_HOST_SC_ABORTED_DISCONNECT)
            errors += d.count - before;
        assert_true(vnvmed_harness_now_ms() < end);
        usleep(1000);
    }
    assert_int_equal(errors, (int)QD);
    assert_true(vnvme_ctrlr_is_failed(c));
    assert_int_equal(vnvme_qpair_process(qp, 0), -ENXIO);
    assert_int_equal(vnvme_ns_write(ns, qp, buf, 0, 8, io_done_cb, &d, 0), -ENXIO);
    assert_int_equal(vnvme_ctrlr_reset(c), -ENXIO);
    vnvme_qpair_free(qp);
    vnvme_ctrlr_detach(c);

    /* A new daemon, a new attach. */
    assert_int_equal(vnvmed_harness_start(&vnvmed, NULL), 0);
    c = attach();
    qp = vnvme_qpair_alloc(c, 0);
    assert_non_null(qp);
    buf = vnvme_dma_alloc(c, 4096, 4096);
    fill_pattern(buf, 4096, 9);
    assert_int_equal(io_sync(c, qp, vnvme_ns_write(vnvme_ctrlr_ns(c, 1), qp, buf, 0, 8, io_done_cb, &d, 0), &d), 0);
    vnvme_qpair_free(qp);
    vnvme_ctrlr_detach(c);
}

/* Detach with commands outstanding: they complete (aborted), and the daemon takes the next host. */
static void test_detach_completes_outstanding(void **state)
{
    (void)state;
    struct vnvme_ctrlr *c = attach();
    struct vnvme_qpair *qp = vnvme_qpair_alloc(c, 0);
    assert_non_null(qp);
    uint8_t *buf = vnvme_dma_alloc(c, 4096, 4096);
    struct io_done d = {0};
    assert_int_equal(vnvmed_harness_pause(&vnvmed), 0);
    assert_int_equal(vnvme_ns_read(vnvme_ctrlr_ns(c, 1), qp, buf, 0, 8, io_done_cb, &d, 0), 0);
    assert_int_equal(vnvmed_harness_resume(&vnvmed), 0);
    /* Not processed: detach (shutdown, then close) completes it. */
    vnvme_ctrlr_detach(c);
    assert_int_equal(d.count, 1);
    c = attach();
    vnvme_ctrlr_detach(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attach_identify),
        cmocka_unit_test(test_two_threads_verified_io),
        cmocka_unit_test(test_two_threads_verified_io_prp),
        cmocka_unit_test(test_two_threads_verified_io_doorbell_buffer),
        cmocka_unit_test(test_nvm_commands_and_raw),
        cmocka_unit_test(test_interrupt_coalescing),
        cmocka_unit_test(test_namespace_hot_add_aer),
        cmocka_unit_test(test_reset_with_outstanding_io),
        cmocka_unit_test(test_hung_server_times_out),
        cmocka_unit_test(test_detach_completes_outstanding),
        cmocka_unit_test(test_killed_server),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
