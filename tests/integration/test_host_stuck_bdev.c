/* SPDX-License-Identifier: MIT */
/*
 * A namespace whose reads never complete (a delay bdev with an hour of read
 * latency over a file) behind the built vnvmed, driven by the userspace NVMe driver:
 * the driver's timeout sends Abort and the target recalls the command from
 * the bdev (status Command Abort Requested, the controller stays healthy);
 * a controller reset and a queue deletion do not wait for the stuck reads;
 * the latency is changed over RPC and the namespace works again; and the
 * other namespace of the same controller answers throughout. The file's
 * io_uring has signalled its channel fd for reads the delay bdev still holds,
 * so the reactor waiting for them must not take that fd for new work.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "host_test_io.h"
#include "vnvme/nvme_host.h"
#include "vnvme/nvme_spec.h"
#include "vnvmed_harness.h"

#define NQN "nqn.2026-11.io.vnvme:stuck"
#define BLOCK_SIZE 4096u
#define NUM_BLOCKS 4096u
#define HOUR_US "3600000000"
#define STUCK 4u /* reads held at once */

static struct vnvmed_harness vnvmed;

static int group_setup(void **state)
{
    (void)state;
    char file[160];
    if (vnvmed_harness_init(&vnvmed, "vnvme-stuck-test") != 0 ||
        vnvmed_harness_path(&vnvmed, "base.img", file, sizeof(file)) != 0)
        return -1;
    int fd = open(file, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)NUM_BLOCKS * BLOCK_SIZE) != 0)
        return -1;
    close(fd);
    int rc = vnvmed_harness_write_config(&vnvmed,
            "{\"subsystems\": [\n"
            "  {\"subsystem\": \"bdev\", \"config\": [\n"
            "    {\"method\": \"bdev_malloc_create\",\n"
            "     \"params\": {\"name\": \"Fast\", \"num_blocks\": %u, \"block_size\": %u}},\n"
            "    {\"method\": \"bdev_uring_create\",\n"
            "     \"params\": {\"name\": \"Base\", \"filename\": \"%s\", \"block_size\": %u}},\n"
            "    {\"method\": \"bdev_delay_create\",\n"
            "     \"params\": {\"name\": \"Stuck\", \"base_bdev_name\": \"Base\", \"avg_read_latency\": " HOUR_US ",\n"
            "                \"p99_read_latency\": " HOUR_US ", \"avg_write_latency\": 0, \"p99_write_latency\": 0}}]},\n"
            "  {\"subsystem\": \"nvmf\", \"config\": [\n"
            "    {\"method\": \"nvmf_create_transport\", \"params\": {\"trtype\": \"VFIOUSER\"}},\n"
            "    {\"method\": \"nvmf_create_subsystem\", \"params\": {\"nqn\": \"%s\", \"allow_any_host\": true}},\n"
            "    {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "     \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Fast\", \"nsid\": 1}}},\n"
            "    {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "     \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Stuck\", \"nsid\": 2}}},\n"
            "    {\"method\": \"nvmf_subsystem_add_listener\",\n"
            "     \"params\": {\"nqn\": \"%s\", \"listen_address\": {\"trtype\": \"VFIOUSER\", \"traddr\": \"%s\"}}}]}]}\n",
            NUM_BLOCKS, BLOCK_SIZE, file, BLOCK_SIZE, NQN, NQN, NQN, NQN, vnvmed.listen_dir);
    if (rc != 0)
        return -1;
    return vnvmed_harness_start(&vnvmed, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    vnvmed_harness_cleanup(&vnvmed);
    return 0;
}

static struct vnvme_ctrlr *attach_with(uint32_t timeout_ms, bool doorbell_buffer)
{
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 8u << 20, .timeout_ms = timeout_ms,
                                    .doorbell_buffer = doorbell_buffer};
    return host_attach(vnvmed.trid, &opts);
}

static struct vnvme_ctrlr *attach(uint32_t timeout_ms)
{
    return attach_with(timeout_ms, false);
}

/* Submit STUCK reads to the stuck namespace; they stay outstanding. */
static void submit_stuck_reads(struct vnvme_ctrlr *c, struct vnvme_qpair *qp, uint8_t *buf, struct io_done *d)
{
    struct vnvme_ns *ns = vnvme_ctrlr_ns(c, 2);
    assert_non_null(ns);
    for (uint32_t i = 0; i < STUCK; i++)
        assert_int_equal(vnvme_ns_read(ns, qp, buf + i * BLOCK_SIZE, i, 1, io_done_cb, d, 0), 0);
    for (int i = 0; i < 50; i++) {
        vnvme_qpair_process(qp, 0);
        usleep(1000);
    }
    assert_int_equal(d->count, 0);
}

/* A controller (driver timeout timeout_ms, 0 = default) with STUCK reads held by the stuck namespace. */
struct stuck {
    struct vnvme_ctrlr *c;
    struct vnvme_qpair *qp;
    uint8_t *buf; /* STUCK blocks for the reads, then extra_blocks for the test */
    struct io_done d;
};

static void stuck_start(struct stuck *s, uint32_t timeout_ms, uint32_t extra_blocks)
{
    memset(s, 0, sizeof(*s));
    s->c = attach(timeout_ms);
    s->qp = vnvme_qpair_alloc(s->c, 0);
    assert_non_null(s->qp);
    s->buf = vnvme_dma_alloc(s->c, (STUCK + extra_blocks) * BLOCK_SIZE, 4096);
    assert_non_null(s->buf);
    submit_stuck_reads(s->c, s->qp, s->buf, &s->d);
}

/* A verified write + read on the fast namespace: the controller still works. */
static void fast_ns_works(struct vnvme_ctrlr *c, struct vnvme_qpair *qp, uint8_t *buf)
{
    struct vnvme_ns *ns = vnvme_ctrlr_ns(c, 1);
    struct io_done d = {0};
    memset(buf, 0xa5, BLOCK_SIZE);
    assert_int_equal(io_sync(c, qp, vnvme_ns_write(ns, qp, buf, 9, 1, io_done_cb, &d, 0), &d), 0);
    memset(buf, 0, BLOCK_SIZE);
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(ns, qp, buf, 9, 1, io_done_cb, &d, 0), &d), 0);
    assert_int_equal(buf[0], 0xa5);
    assert_int_equal(buf[BLOCK_SIZE - 1], 0xa5);
}

static void test_timeout_abort_recalls_stuck_reads(void **state)
{
    (void)state;
    struct stuck s;
    stuck_start(&s, 300, 1);
    uint64_t t0 = vnvmed_harness_now_ms();
    io_wait_done(s.c, s.qp, &s.d, (int)STUCK);
    uint64_t took = vnvmed_harness_now_ms() - t0;
    /* Each read: its 300 ms deadline, then Abort, which the target honoured. */
    assert_int_equal(s.d.count, (int)STUCK);
    assert_int_equal(s.d.ok, 0);
    assert_int_equal(s.d.timeouts, 0);
    assert_int_equal(s.d.status, NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_ABORTED_BY_REQUEST));
    assert_true(took < 5000);
    assert_false(vnvme_ctrlr_is_failed(s.c));
    fast_ns_works(s.c, s.qp, s.buf + STUCK * BLOCK_SIZE);
    /* Writes to the stuck namespace have no latency. */
    struct io_done w = {0};
    assert_int_equal(
        io_sync(s.c, s.qp, vnvme_ns_write(vnvme_ctrlr_ns(s.c, 2), s.qp, s.buf, 0, 1, io_done_cb, &w, 0), &w), 0);
    vnvme_dma_free(s.c, s.buf);
    vnvme_qpair_free(s.qp);
    vnvme_ctrlr_detach(s.c);
}

static void test_reset_does_not_wait_for_stuck_reads(void **state)
{
    (void)state;
    struct stuck s;
    stuck_start(&s, 0, 1); /* default timeout: 30 s, longer than the test waits */
    uint64_t t0 = vnvmed_harness_now_ms();
    assert_int_equal(vnvme_ctrlr_reset(s.c), 0);
    io_wait_done(s.c, s.qp, &s.d, (int)STUCK);
    assert_true(vnvmed_harness_now_ms() - t0 < 3000); /* the target recalled them instead of waiting up to 10 s */
    assert_int_equal(s.d.ok, 0);
    assert_false(vnvme_ctrlr_is_failed(s.c));
    fast_ns_works(s.c, s.qp, s.buf + STUCK * BLOCK_SIZE);
    vnvme_dma_free(s.c, s.buf);
    vnvme_qpair_free(s.qp);
    vnvme_ctrlr_detach(s.c);
}

/*
 * While the only work is reads the delay bdev holds, the reactor sleeps until
 * a completion or its bound, although the file's channel fd stays signalled
 * (nobody reads it): waiting level-triggered on it would make every sleep
 * return at once and keep the core busy.
 */
static void test_reactor_sleeps_while_reads_are_stuck(void **state)
{
    (void)state;
    struct stuck s;
    stuck_start(&s, 0, 0);
    int64_t cpu0 = vnvmed_harness_thread_cpu_ms(&vnvmed, "reactor_0");
    uint64_t t0 = vnvmed_harness_now_ms();
    assert_true(cpu0 >= 0);
    usleep(1000000);
    int64_t cpu = vnvmed_harness_thread_cpu_ms(&vnvmed, "reactor_0") - cpu0;
    uint64_t wall = vnvmed_harness_now_ms() - t0;
    print_message("reactor CPU while waiting for stuck reads: %lld ms in %llu ms\n", (long long)cpu,
                  (unsigned long long)wall);
    /* Sleeping, its wakeups at the bound cost a few percent; spinning, all of it. */
    assert_true(cpu * 2 < (int64_t)wall);
    assert_int_equal(s.d.count, 0);
    vnvme_qpair_free(s.qp); /* recalls them */
    assert_int_equal(s.d.count, (int)STUCK);
    vnvme_dma_free(s.c, s.buf);
    vnvme_ctrlr_detach(s.c);
}

/*
 * With a doorbell buffer, the reactor that went to sleep waiting for the
 * stuck reads has asked (EventIdx) for a doorbell write on the next
 * submission: the host sends it as a message, which is what wakes a sleeping
 * reactor. Without the request the host would only write its shadow page
 * (the queue's tail does not pass the EventIdx of 0 it started with).
 */
static void test_sleeping_reactor_asks_for_a_doorbell(void **state)
{
    (void)state;
    struct vnvme_ctrlr *c = attach_with(0, true);
    struct vnvme_qpair *qp = vnvme_qpair_alloc(c, 0);
    assert_non_null(qp);
    assert_true(vnvme_qpair_uses_doorbell_buffer(qp));
    uint8_t *buf = vnvme_dma_alloc(c, (STUCK + 1) * BLOCK_SIZE, 4096);
    /* First, I/O that moves the SQ tail and CQ head off 0, which always passes an EventIdx of 0. */
    fast_ns_works(c, qp, buf + STUCK * BLOCK_SIZE);
    struct io_done d = {0};
    submit_stuck_reads(c, qp, buf, &d); /* 50 ms: the reactor sleeps between its bounds */
    uint64_t before = vnvme_qpair_doorbell_notices(qp);
    fast_ns_works(c, qp, buf + STUCK * BLOCK_SIZE);
    assert_true(vnvme_qpair_doorbell_notices(qp) > before);
    assert_int_equal(d.count, 0);
    vnvme_qpair_free(qp); /* recalls the stuck reads */
    assert_int_equal(d.count, (int)STUCK);
    vnvme_dma_free(c, buf);
    vnvme_ctrlr_detach(c);
}

static void test_queue_deletion_does_not_wait_for_stuck_reads(void **state)
{
    (void)state;
    struct stuck s;
    stuck_start(&s, 0, 0);
    uint64_t t0 = vnvmed_harness_now_ms();
    vnvme_qpair_free(s.qp); /* Delete I/O SQ with the reads held by the bdev, then Delete I/O CQ */
    assert_true(vnvmed_harness_now_ms() - t0 < 3000);
    assert_int_equal(s.d.count, (int)STUCK);
    assert_int_equal(s.d.ok, 0);
    assert_false(vnvme_ctrlr_is_failed(s.c));
    struct vnvme_qpair *qp = vnvme_qpair_alloc(s.c, 0);
    assert_non_null(qp);
    uint8_t *b2 = vnvme_dma_alloc(s.c, BLOCK_SIZE, 4096);
    fast_ns_works(s.c, qp, b2);
    vnvme_dma_free(s.c, b2);
    vnvme_dma_free(s.c, s.buf);
    vnvme_qpair_free(qp);
    vnvme_ctrlr_detach(s.c);
}

static void test_latency_update_over_rpc(void **state)
{
    (void)state;
    struct json_object *res = NULL;
    assert_int_equal(vnvmed_harness_rpc(&vnvmed, "bdev_delay_update_latency",
                                        "{\"delay_bdev_name\": \"Stuck\", \"latency_type\": \"avg_read\","
                                        " \"latency_us\": 20000}",
                                        &res),
                     0);
    json_object_put(res);
    /* A latency above p99 is refused. */
    struct json_object *r2 = NULL;
    int code = 0;
    char *msg = NULL;
    assert_int_equal(vnvmed_harness_call(&vnvmed, "bdev_delay_update_latency",
                                         "{\"delay_bdev_name\": \"Stuck\", \"latency_type\": \"avg_write\","
                                         " \"latency_us\": 5}",
                                         &r2, &code, &msg),
                     1);
    free(msg);

    struct vnvme_ctrlr *c = attach(0);
    struct vnvme_qpair *qp = vnvme_qpair_alloc(c, 0);
    uint8_t *buf = vnvme_dma_alloc(c, BLOCK_SIZE, 4096);
    struct io_done d = {0};
    uint64_t t0 = vnvmed_harness_now_ms();
    assert_int_equal(io_sync(c, qp, vnvme_ns_read(vnvme_ctrlr_ns(c, 2), qp, buf, 0, 1, io_done_cb, &d, 0), &d), 0);
    uint64_t took = vnvmed_harness_now_ms() - t0;
    assert_true(took >= 20); /* the new read latency, 20 ms */
    assert_true(took < 5000);

    /* bdev_get_bdevs and save_config describe it. */
    assert_int_equal(vnvmed_harness_rpc(&vnvmed, "save_config", NULL, &res), 0);
    const char *text = json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN);
    assert_non_null(strstr(text, "\"bdev_delay_create\""));
    assert_non_null(strstr(text, "\"avg_read_latency\":20000"));
    json_object_put(res);

    assert_int_equal(vnvmed_harness_rpc(&vnvmed, "bdev_delay_update_latency",
                                        "{\"delay_bdev_name\": \"Stuck\", \"latency_type\": \"avg_read\","
                                        " \"latency_us\": " HOUR_US "}",
                                        &res),
                     0);
    json_object_put(res);
    vnvme_dma_free(c, buf);
    vnvme_qpair_free(qp);
    vnvme_ctrlr_detach(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_abort_recalls_stuck_reads),
        cmocka_unit_test(test_reset_does_not_wait_for_stuck_reads),
        cmocka_unit_test(test_queue_deletion_does_not_wait_for_stuck_reads),
        cmocka_unit_test(test_reactor_sleeps_while_reads_are_stuck),
        cmocka_unit_test(test_sleeping_reactor_asks_for_a_doorbell),
        cmocka_unit_test(test_latency_update_over_rpc),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
