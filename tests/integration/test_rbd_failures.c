/* SPDX-License-Identifier: MIT */
/*
 * RBD namespaces when the cluster fails (the cluster and daemon of
 * tests/support/rbd_fixture.h): an OSD that stops answering (commands fail
 * with a status instead of hanging, I/O works again once it is back), a full
 * cluster, a librbd that ignores its timeouts (the reactor still sleeps, a RAM
 * namespace on the same controller still answers, an abandoned read never
 * reaches host memory), a client that dies while the cluster stalls (the next
 * one is served at once, the daemon survives the late answers), a bdev deleted
 * while the cluster stalls (the RPC returns at once, nothing cached is lost). The tests
 * share one cluster and one daemon and run in order.
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

/*
 * A cluster that is back (OSD resumed, room again) takes a moment to be
 * heard from: retry a write until it succeeds, within the test's wait limit.
 */
static void write_until_accepted(struct vnvme_ctrlr *c, struct vnvme_qpair *qp, struct vnvme_ns *ns,
                                 const uint8_t *buf, uint64_t lba, uint32_t nlb)
{
    uint64_t end = vnvmed_harness_now_ms() + HOST_TEST_WAIT_LIMIT_MS;
    for (;;) {
        struct io_done w = {0};
        io_sync(c, qp, vnvme_ns_write(ns, qp, buf, lba, nlb, io_done_cb, &w, 0), &w);
        if (w.status == 0)
            return;
        assert_true(vnvmed_harness_now_ms() < end);
        usleep(100000);
    }
}

/*
 * A host on the daemon: the controller (the host waits longer than the
 * target's rbd timeout, so the statuses seen are the target's), one I/O
 * queue pair and two 8 KiB buffers.
 */
struct rbd_host {
    struct vnvme_ctrlr *c;
    struct vnvme_qpair *qp;
    uint8_t *buf, *rd;
};

static void rbd_host_open(struct rbd_host *h)
{
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 8u << 20, .timeout_ms = 60000};
    h->c = host_attach(rbd_daemon.trid, &opts);
    h->qp = vnvme_qpair_alloc(h->c, 0);
    assert_non_null(h->qp);
    h->buf = vnvme_dma_alloc(h->c, 8192, 4096);
    h->rd = vnvme_dma_alloc(h->c, 8192, 4096);
    assert_non_null(h->buf);
    assert_non_null(h->rd);
}

static void rbd_host_close(struct rbd_host *h)
{
    vnvme_dma_free(h->c, h->buf);
    vnvme_dma_free(h->c, h->rd);
    vnvme_qpair_free(h->qp);
    vnvme_ctrlr_detach(h->c);
}

static void test_stalled_osd_times_out(void **state)
{
    (void)state;
    struct rbd_host h;
    rbd_host_open(&h);
    struct vnvme_ctrlr *c = h.c;
    struct vnvme_qpair *qp = h.qp;
    uint8_t *buf = h.buf, *rd = h.rd;
    struct vnvme_ns *ns1 = vnvme_ctrlr_ns(c, 1), *ns2 = vnvme_ctrlr_ns(c, 2);
    fill_pattern(buf, 8192, 99);
    /*
     * First, with the cluster healthy: both images written, read and flushed
     * once, so each holds its exclusive lock, the sessions with the OSD exist
     * and librbd's cache on ns 1 has left its write-through start (it stays
     * write-through until the first flush). What is measured below is I/O
     * meeting a stalled OSD, not an image's first write waiting for its lock.
     */
    for (uint32_t nsid = 1; nsid <= 2; nsid++) {
        struct io_done w = {0};
        struct vnvme_ns *ns = vnvme_ctrlr_ns(c, nsid);
        uint32_t nlb = 8192u / vnvme_ns_block_size(ns);
        assert_int_equal(io_sync(c, qp, vnvme_ns_write(ns, qp, buf, 0, nlb, io_done_cb, &w, 0), &w), 0);
        assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns, qp, rd, 0, nlb, io_done_cb, &w, 0), &w), 0);
        assert_int_equal(io_sync(c, qp, vnvme_ns_flush(ns, qp, io_done_cb, &w), &w), 0);
    }

    pid_t osd = rbd_osd_pid();
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
    print_message("statuses: cached write 0x%x, FUA write 0x%x, flush 0x%x, read 0x%x, uncached write 0x%x\n",
                  cached.status, fua.status, flush.status, read.status, nocache.status);
    assert_true(flush.status == not_ready || flush.status == write_fault);
    assert_true(fua.status == not_ready || fua.status == write_fault);
    assert_int_equal(read.status, not_ready);
    assert_int_equal(nocache.status, not_ready);
    assert_false(read.dnr || nocache.dnr || flush.dnr || fua.dnr);
    assert_false(vnvme_ctrlr_is_failed(c));

    /* librados gave up by itself (its op timeout), so the reactor never had to abandon an I/O to librbd. */
    struct json_object *b = rbd_bdev_info("Rbd0");
    assert_string_equal(JSTR(b, "driver_specific", "rbd", "abandoned_ios"), "0");
    json_object_put(b);

    /* Back to normal once the OSD runs again (it may take a moment to be heard from). */
    write_until_accepted(c, qp, ns1, buf, 100, 16);
    struct io_done r = {0};
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns1, qp, rd, 100, 16, io_done_cb, &r, 0), &r), 0);
    assert_memory_equal(rd, buf, 8192);
    assert_int_equal(io_sync(c, qp, vnvme_ns_write(ns2, qp, buf, 10, 2, io_done_cb, &r, 0), &r), 0);
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns2, qp, rd, 10, 2, io_done_cb, &r, 0), &r), 0);
    assert_memory_equal(rd, buf, 8192);
    rbd_host_close(&h);
}

/* ---- a full cluster ---- */

/* Set the cluster's nearfull/backfillfull/full ratios, in an order that keeps them ascending. */
static int set_full_ratios(bool full)
{
    if (full)
        return rbd_run("ceph -c %s osd set-nearfull-ratio 0.0000001 >/dev/null 2>&1 && "
                   "ceph -c %s osd set-backfillfull-ratio 0.0000002 >/dev/null 2>&1 && "
                   "ceph -c %s osd set-full-ratio 0.0000003 >/dev/null 2>&1",
                   rbd_ceph_conf, rbd_ceph_conf, rbd_ceph_conf);
    return rbd_run("ceph -c %s osd set-full-ratio 0.95 >/dev/null 2>&1 && "
               "ceph -c %s osd set-backfillfull-ratio 0.9 >/dev/null 2>&1 && "
               "ceph -c %s osd set-nearfull-ratio 0.85 >/dev/null 2>&1",
               rbd_ceph_conf, rbd_ceph_conf, rbd_ceph_conf);
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
    setenv("CEPH_TEST_CONF", rbd_ceph_conf, 1);
    struct rbd_host h;
    rbd_host_open(&h);
    struct vnvme_ctrlr *c = h.c;
    struct vnvme_qpair *qp = h.qp;
    uint8_t *buf = h.buf, *rd = h.rd;
    struct vnvme_ns *ns2 = vnvme_ctrlr_ns(c, 2);
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
    write_until_accepted(c, qp, ns2, buf, 40, 2);
    struct io_done r2 = {0};
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns2, qp, rd, 40, 2, io_done_cb, &r2, 0), &r2), 0);
    assert_memory_equal(rd, buf, 8192);
    rbd_host_close(&h);
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
             STALL_TIMEOUT_MS, rbd_mon_host);
    assert_int_equal(rbd_rpc("bdev_rbd_create", params), 0);
    assert_int_equal(rbd_rpc("bdev_malloc_create", "{\"name\": \"Mal0\", \"num_blocks\": 1024, \"block_size\": 4096}"), 0);
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Rbd3\", \"nsid\": %u}}", RBD_NQN,
             STALL_NSID);
    assert_int_equal(rbd_rpc("nvmf_subsystem_add_ns", params), 0);
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Mal0\", \"nsid\": %u}}", RBD_NQN,
             MALLOC_NSID);
    assert_int_equal(rbd_rpc("nvmf_subsystem_add_ns", params), 0);
}

static void remove_stall_namespaces(void)
{
    char params[256];
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"nsid\": %u}", RBD_NQN, STALL_NSID);
    assert_int_equal(rbd_rpc("nvmf_subsystem_remove_ns", params), 0);
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"nsid\": %u}", RBD_NQN, MALLOC_NSID);
    assert_int_equal(rbd_rpc("nvmf_subsystem_remove_ns", params), 0);
    assert_int_equal(rbd_rpc("bdev_rbd_delete", "{\"name\": \"Rbd3\"}"), 0);
    assert_int_equal(rbd_rpc("bdev_malloc_delete", "{\"name\": \"Mal0\"}"), 0);
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
    struct json_object *b = rbd_bdev_info(bdev);
    const char *v = JSTR(b, "driver_specific", "rbd", key);
    assert_non_null(v);
    uint64_t n = strtoull(v, NULL, 10);
    json_object_put(b);
    return n;
}

/* Abandoned I/Os finish late inside the bdev once librbd gets its answers: wait until none is left. */
static void wait_abandoned_drained(const char *bdev)
{
    uint64_t end = vnvmed_harness_now_ms() + HOST_TEST_WAIT_LIMIT_MS;
    while (bdev_counter(bdev, "abandoned_ios_pending") != 0) {
        assert_true(vnvmed_harness_now_ms() < end);
        usleep(50000);
    }
}

/*
 * While its only work is an I/O the cluster does not answer, the reactor
 * sleeps instead of polling (rbd_daemon stays far below a core), yet a command
 * for another namespace, whose doorbell write wakes nothing, is still seen
 * within the reactor's bound (milliseconds at the very most, not when the
 * stalled I/O ends).
 */
static void test_reactor_sleeps_while_cluster_stalls(void **state)
{
    (void)state;
    add_stall_namespaces();
    struct rbd_host h;
    rbd_host_open(&h);
    struct vnvme_ctrlr *c = h.c;
    struct vnvme_qpair *qp = h.qp;
    uint8_t *buf = h.buf, *rd = h.rd;
    struct vnvme_ns *stall = vnvme_ctrlr_ns(c, STALL_NSID), *ram = vnvme_ctrlr_ns(c, MALLOC_NSID);
    assert_non_null(stall);
    assert_non_null(ram);
    uint8_t *ram_buf = vnvme_dma_alloc(c, 4096, 4096);
    fill_pattern(buf, 8192, 123);
    struct io_done d = {0};
    assert_int_equal(io_sync(c, qp, vnvme_ns_write(stall, qp, buf, 0, 2, io_done_cb, &d, 0), &d), 0);

    pid_t osd = rbd_osd_pid();
    assert_true(osd > 0);
    assert_int_equal(harness_stop_process(osd), 0);
    struct io_done stalled = {0};
    uint64_t t0 = vnvmed_harness_now_ms();
    assert_int_equal(vnvme_ns_read(stall, qp, rd, 0, 2, io_done_cb, &stalled, 0), 0);
    usleep(100000); /* the reactor settles into waiting */

    uint64_t cpu0 = process_cpu_ms(rbd_daemon.pid), wall0 = vnvmed_harness_now_ms();
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
    uint64_t cpu_ms = process_cpu_ms(rbd_daemon.pid) - cpu0, wall_ms = vnvmed_harness_now_ms() - wall0;
    assert_int_equal(stalled.count, 0); /* the measurement ran while the read was stalled */
    fprintf(stderr, "test_rbd_failures: while stalled: vnvmed used %llu ms CPU in %llu ms; %d RAM reads, slowest %llu ms\n",
            (unsigned long long)cpu_ms, (unsigned long long)wall_ms, ram_ios, (unsigned long long)worst_ram_ms);
    /* A polling reactor would use the whole window; sleeping, it uses a few percent. */
    assert_true(cpu_ms * 100 < wall_ms * 30);
    assert_true(worst_ram_ms < 100);

    io_wait_done(c, qp, &stalled, 1);
    assert_true(vnvmed_harness_now_ms() - t0 >= 2 * STALL_TIMEOUT_MS - 100);
    assert_int_equal(stalled.status, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_NAMESPACE_NOT_READY));
    assert_int_equal(kill(osd, SIGCONT), 0);

    /* The abandoned read finishes late inside the bdev; then the namespace works again. */
    wait_abandoned_drained("Rbd3");
    memset(rd, 0, 8192);
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(stall, qp, rd, 0, 2, io_done_cb, &d, 0), &d), 0);
    assert_memory_equal(rd, buf, 8192);
    vnvme_dma_free(c, ram_buf);
    rbd_host_close(&h);
    remove_stall_namespaces();
}

/*
 * The backstop completes a read that librbd still holds; the host sees the
 * error and reuses its buffer. The read went straight to the host's pages, so
 * they were fenced before the error was posted: when the OSD answers later,
 * librbd's data must land in the fence, never in the host's memory.
 */
static void test_abandoned_read_stays_out_of_host_memory(void **state)
{
    (void)state;
    add_stall_namespaces();
    struct rbd_host h;
    rbd_host_open(&h);
    struct vnvme_ctrlr *c = h.c;
    struct vnvme_qpair *qp = h.qp;
    uint8_t *buf = h.buf, *rd = h.rd;
    struct vnvme_ns *stall = vnvme_ctrlr_ns(c, STALL_NSID);
    assert_non_null(stall);
    fill_pattern(buf, 8192, 77);
    struct io_done d = {0};
    assert_int_equal(io_sync(c, qp, vnvme_ns_write(stall, qp, buf, 4, 2, io_done_cb, &d, 0), &d), 0);
    uint64_t abandoned = bdev_counter("Rbd3", "abandoned_ios");
    uint64_t fenced = bdev_counter("Rbd3", "abandoned_reads_fenced");

    pid_t osd = rbd_osd_pid();
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
    /* The read went straight to the host's pages (whole pages), so they were fenced when it was given up on. */
    assert_int_equal(bdev_counter("Rbd3", "abandoned_reads_fenced"), fenced + 1);

    /* The host got its answer and uses the buffer for something else. */
    memset(rd, 0xee, 8192);
    assert_int_equal(kill(osd, SIGCONT), 0);
    wait_abandoned_drained("Rbd3");
    for (size_t i = 0; i < 8192; i++)
        if (rd[i] != 0xee)
            fail_msg("byte %zu of the reused buffer changed after the read was abandoned", i);
    /*
     * The data itself was fine all along. The fence is lifted, so this read
     * goes straight into the same pages again: a fence left in place there
     * would keep the 0xee.
     */
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(stall, qp, rd, 4, 2, io_done_cb, &d, 0), &d), 0);
    assert_memory_equal(rd, buf, 8192);
    rbd_host_close(&h);
    remove_stall_namespaces();
}

/* ---- a client that goes away while the cluster stalls ---- */

/* 8 KiB of pattern seed at lba of nsid (4096-byte blocks), through a host of its own. */
static void write_pattern_at(uint32_t nsid, uint64_t lba, uint8_t seed)
{
    struct rbd_host h;
    rbd_host_open(&h);
    struct vnvme_ns *ns = vnvme_ctrlr_ns(h.c, nsid);
    assert_non_null(ns);
    fill_pattern(h.buf, 8192, seed);
    struct io_done d = {0};
    assert_int_equal(io_sync(h.c, h.qp, vnvme_ns_write(ns, h.qp, h.buf, lba, 2, io_done_cb, &d, 0), &d), 0);
    rbd_host_close(&h);
}

#define LONG_NSID 5u /* Rbd4: rados_osd_op_timeout 0, timeout 30 s: only a recall ends a stalled I/O soon */
#define GONE_READS 8

static void add_long_namespace(void)
{
    char params[768];
    snprintf(params, sizeof(params),
             "{\"name\": \"Rbd4\", \"pool_name\": \"rbd\", \"rbd_name\": \"img4\", \"block_size\": 4096,"
             " \"timeout_ms\": 30000, \"config\": {\"mon_host\": \"%s\", \"auth_client_required\": \"none\","
             " \"rbd_cache\": \"false\", \"rados_osd_op_timeout\": \"0\"}}",
             rbd_mon_host);
    assert_int_equal(rbd_rpc("bdev_rbd_create", params), 0);
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Rbd4\", \"nsid\": %u}}",
             RBD_NQN, LONG_NSID);
    assert_int_equal(rbd_rpc("nvmf_subsystem_add_ns", params), 0);
}

static void remove_long_namespace(void)
{
    char params[256];
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"nsid\": %u}", RBD_NQN, LONG_NSID);
    assert_int_equal(rbd_rpc("nvmf_subsystem_remove_ns", params), 0);
    assert_int_equal(rbd_rpc("bdev_rbd_delete", "{\"name\": \"Rbd4\"}"), 0);
}

/*
 * The client of the test below, in a child process: attach, start reads the
 * stalled cluster will not answer, give the daemon a moment to hand them to
 * librbd, and die without a word, as a killed VM does. Exit status 0 when the
 * reads were submitted.
 */
static int gone_client(void)
{
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 8u << 20, .timeout_ms = 10000};
    struct vnvme_ctrlr *c = NULL;
    if (vnvme_ctrlr_attach(rbd_daemon.trid, &opts, &c) != 0)
        return 1;
    struct vnvme_qpair *qp = vnvme_qpair_alloc(c, 0);
    struct vnvme_ns *ns = vnvme_ctrlr_ns(c, LONG_NSID);
    uint8_t *rd = vnvme_dma_alloc(c, GONE_READS * 8192, 4096);
    if (!qp || !ns || !rd)
        return 2;
    struct io_done d = {0};
    for (int i = 0; i < GONE_READS; i++)
        if (vnvme_ns_read(ns, qp, rd + i * 8192, 0, 2, io_done_cb, &d, 0) != 0)
            return 3;
    for (int i = 0; i < 20; i++) {
        (void)vnvme_qpair_process(qp, 0);
        usleep(10000);
    }
    return d.count == 0 ? 0 : 4; /* none may have completed: the OSD is stopped */
}

/*
 * A client that goes away (a killed VM) while the cluster does not answer its
 * reads: its memory is unmapped while librbd still holds them. The daemon
 * recalls them at once, so the next client is served without waiting for the
 * cluster, and when the cluster answers later, the data lands in the fences
 * over the reads' pages, whose addresses stay reserved until then, not in
 * memory that is gone (which would take the daemon down).
 */
static void test_client_gone_while_cluster_stalls(void **state)
{
    (void)state;
    add_stall_namespaces();
    add_long_namespace();
    write_pattern_at(LONG_NSID, 0, 55);
    struct rbd_host h;
    struct io_done d = {0};
    uint64_t recalled = bdev_counter("Rbd4", "abandoned_ios");
    uint64_t fenced = bdev_counter("Rbd4", "abandoned_reads_fenced");

    pid_t osd = rbd_osd_pid();
    assert_true(osd > 0);
    assert_int_equal(harness_stop_process(osd), 0);
    fflush(NULL);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(gone_client());
    int wst = 0;
    assert_int_equal(waitpid(child, &wst, 0), child);

    /* The next client, while the OSD is still stopped: attached and served from RAM at once. */
    uint64_t t0 = vnvmed_harness_now_ms();
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 8u << 20, .timeout_ms = 20000};
    struct vnvme_ctrlr *c = NULL;
    int rc;
    while ((rc = vnvme_ctrlr_attach(rbd_daemon.trid, &opts, &c)) != 0 && vnvmed_harness_now_ms() - t0 < 20000)
        usleep(20000);
    struct io_done ram = {0};
    struct vnvme_qpair *qp = NULL;
    uint8_t *buf = NULL;
    if (rc == 0) {
        qp = vnvme_qpair_alloc(c, 0);
        buf = vnvme_dma_alloc(c, 8192, 4096);
        if (qp && buf)
            io_sync(c, qp, vnvme_ns_read(vnvme_ctrlr_ns(c, MALLOC_NSID), qp, buf, 0, 1, io_done_cb, &ram, 0), &ram);
    }
    uint64_t took = vnvmed_harness_now_ms() - t0;
    uint64_t recalled_now = bdev_counter("Rbd4", "abandoned_ios");
    uint64_t fenced_now = bdev_counter("Rbd4", "abandoned_reads_fenced");
    /*
     * The namespace goes too, while librbd still holds the recalled reads:
     * its channel is destroyed without waiting for the cluster.
     */
    char params[256];
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"nsid\": %u}", RBD_NQN, LONG_NSID);
    uint64_t t1 = vnvmed_harness_now_ms();
    int removed = rbd_rpc("nvmf_subsystem_remove_ns", params);
    uint64_t remove_took = vnvmed_harness_now_ms() - t1;
    uint64_t pending = bdev_counter("Rbd4", "abandoned_ios_pending");
    /* Resumed before asserting, so a failure cannot leave the OSD stopped for the tests after it. */
    assert_int_equal(kill(osd, SIGCONT), 0);
    fprintf(stderr, "test_rbd_failures: next client served %llu ms after the last one died; namespace removed in %llu ms\n",
            (unsigned long long)took, (unsigned long long)remove_took);
    assert_true(WIFEXITED(wst));
    assert_int_equal(WEXITSTATUS(wst), 0);
    assert_int_equal(rc, 0);
    assert_non_null(qp);
    assert_non_null(buf);
    assert_int_equal(ram.count, 1);
    assert_int_equal(ram.status, 0);
    assert_true(took < 3000);
    assert_int_equal(recalled_now, recalled + GONE_READS);
    assert_int_equal(fenced_now, fenced + GONE_READS); /* read into the client's pages: fenced as it went */
    assert_int_equal(removed, 0);
    assert_true(remove_took < 3000);
    assert_int_equal(pending, GONE_READS);

    /* The cluster answers the recalled reads; the daemon lives on and the data is intact. */
    wait_abandoned_drained("Rbd4");
    assert_int_equal(kill(rbd_daemon.pid, 0), 0);
    vnvme_dma_free(c, buf);
    vnvme_qpair_free(qp);
    vnvme_ctrlr_detach(c);
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Rbd4\", \"nsid\": %u}}",
             RBD_NQN, LONG_NSID);
    assert_int_equal(rbd_rpc("nvmf_subsystem_add_ns", params), 0);
    rbd_host_open(&h);
    struct vnvme_ns *ns = vnvme_ctrlr_ns(h.c, LONG_NSID);
    assert_non_null(ns);
    memset(h.rd, 0, 8192);
    assert_int_equal(io_sync(h.c, h.qp, vnvme_ns_read(ns, h.qp, h.rd, 0, 2, io_done_cb, &d, 0), &d), 0);
    uint8_t want[8192];
    fill_pattern(want, sizeof(want), 55);
    assert_memory_equal(h.rd, want, sizeof(want));
    rbd_host_close(&h);
    remove_long_namespace();
    remove_stall_namespaces();
}

/* ---- deleting a bdev while the cluster stalls ---- */

static void add_cached_namespace(const char *bdev)
{
    char params[1024];
    /* Write-back from the first write, nothing written back on age: the close has it all to do. */
    snprintf(params, sizeof(params),
             "{\"name\": \"%s\", \"pool_name\": \"rbd\", \"rbd_name\": \"img4\", \"block_size\": 4096,"
             " \"timeout_ms\": 30000, \"config\": {\"mon_host\": \"%s\", \"auth_client_required\": \"none\","
             " \"rbd_cache\": \"true\", \"rbd_cache_writethrough_until_flush\": \"false\","
             " \"rbd_cache_max_dirty_age\": \"60\", \"rados_osd_op_timeout\": \"0\"}}",
             bdev, rbd_mon_host);
    assert_int_equal(rbd_rpc("bdev_rbd_create", params), 0);
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"%s\", \"nsid\": %u}}",
             RBD_NQN, bdev, LONG_NSID);
    assert_int_equal(rbd_rpc("nvmf_subsystem_add_ns", params), 0);
}

static void remove_namespace(uint32_t nsid)
{
    char params[256];
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"nsid\": %u}", RBD_NQN, nsid);
    assert_int_equal(rbd_rpc("nvmf_subsystem_remove_ns", params), 0);
}

/*
 * bdev_rbd_delete while the cluster does not answer. Closing the image waits
 * for the cluster (librbd writes back its cache and releases the image's
 * lock), here with no op timeout at all, so for as long as the outage lasts;
 * it does so on a thread of its own: the RPC returns at once, other RPCs are
 * answered meanwhile, and once the cluster is back, what the cache held is
 * on the image.
 */
static void test_delete_while_cluster_stalls(void **state)
{
    (void)state;
    add_cached_namespace("Rbd5");
    write_pattern_at(LONG_NSID, 16, 66);
    remove_namespace(LONG_NSID);

    pid_t osd = rbd_osd_pid();
    assert_true(osd > 0);
    assert_int_equal(harness_stop_process(osd), 0);
    uint64_t t0 = vnvmed_harness_now_ms();
    int deleted = rbd_rpc("bdev_rbd_delete", "{\"name\": \"Rbd5\"}");
    uint64_t delete_took = vnvmed_harness_now_ms() - t0;
    t0 = vnvmed_harness_now_ms();
    int listed = rbd_rpc("bdev_get_bdevs", "{}");
    uint64_t list_took = vnvmed_harness_now_ms() - t0;
    int still_listed = rbd_rpc("bdev_get_bdevs", "{\"name\": \"Rbd5\"}");
    assert_int_equal(kill(osd, SIGCONT), 0);
    fprintf(stderr, "test_rbd_failures: bdev_rbd_delete took %llu ms with the OSD stopped, the next RPC %llu ms\n",
            (unsigned long long)delete_took, (unsigned long long)list_took);
    assert_int_equal(deleted, 0);
    assert_true(delete_took < 3000);
    assert_int_equal(listed, 0);
    assert_true(list_took < 3000);
    assert_int_not_equal(still_listed, 0); /* its name is free at once */

    /* The cluster is back: the close writes the cache back; a new bdev on the image reads it. */
    add_cached_namespace("Rbd6");
    struct rbd_host h;
    struct io_done d = {0};
    rbd_host_open(&h);
    struct vnvme_ns *ns = vnvme_ctrlr_ns(h.c, LONG_NSID);
    assert_non_null(ns);
    uint8_t want[8192];
    fill_pattern(want, sizeof(want), 66);
    uint64_t end = vnvmed_harness_now_ms() + HOST_TEST_WAIT_LIMIT_MS;
    for (;;) {
        memset(h.rd, 0, 8192);
        assert_int_equal(io_sync(h.c, h.qp, vnvme_ns_read(ns, h.qp, h.rd, 16, 2, io_done_cb, &d, 0), &d), 0);
        if (memcmp(h.rd, want, sizeof(want)) == 0 || vnvmed_harness_now_ms() > end)
            break;
        usleep(100000);
    }
    assert_memory_equal(h.rd, want, sizeof(want));
    rbd_host_close(&h);
    remove_namespace(LONG_NSID);
    assert_int_equal(rbd_rpc("bdev_rbd_delete", "{\"name\": \"Rbd6\"}"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_osd_times_out),
        cmocka_unit_test(test_full_cluster_fails_writes_then_recovers),
        cmocka_unit_test(test_reactor_sleeps_while_cluster_stalls),
        cmocka_unit_test(test_abandoned_read_stays_out_of_host_memory),
        cmocka_unit_test(test_client_gone_while_cluster_stalls),
        cmocka_unit_test(test_delete_while_cluster_stalls),
    };
    return cmocka_run_group_tests(tests, rbd_fixture_setup, rbd_fixture_teardown);
}
