/* SPDX-License-Identifier: MIT */
/*
 * vnvmed end to end: the built daemon started from a JSON config, driven by
 * a guest NVMe driver over the vfio-user client exactly as a VMM would let a
 * guest drive it (config space, BAR0 registers, mmapped doorbells, MSI-X
 * eventfds, DMA into shared guest RAM).
 *
 * The tests share one daemon (two reactors) and run in order; the
 * SIGTERM test stops it and only the uring file check runs after it.
 *
 * Config: subsystem NQN at nvme0 with NSIDs 1 (malloc, 512 B blocks),
 * 2 (malloc, 4 KiB blocks), 3 (null), 4 (uring on a temp file); subsystem
 * NQN2 at nvme1 with NSID 1 (malloc), on the other reactor.
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

#include "nvme_guest.h"
#include "test_pattern.h"
#include "vnvmed_harness.h"

#define NQN "nqn.2026-11.io.vnvme:itest"
#define NQN2 "nqn.2026-11.io.vnvme:itest2"
#define SERIAL "VNVMEITEST0001"
#define MODEL "vnvme integration test"
#define BLOCK_SIZE 512u
#define NUM_BLOCKS 131072u /* 64 MiB */
#define GUEST_RAM (16u << 20)
#define VENDOR_ID 0x4e56
#define DEVICE_ID 0x0001
#define NSID_MALLOC 1u
#define NSID_MALLOC_4K 2u
#define NSID_NULL 3u
#define NSID_URING 4u
#define NSID_HOT 5u
#define MALLOC_4K_BLOCKS 4096u /* 16 MiB */
#define NULL_BLOCKS 262144u
#define URING_FILE_SIZE (8u << 20)
#define URING_LBA 1000u
#define URING_LEN (16u << 10)
#define URING_SEED 99u

static struct vnvmed_harness vnvmed;
static char listen_dir2[96];
static char sock_path2[128];
static char uring_path[128];

/* ---- daemon ---- */

static int write_config(void)
{
    return vnvmed_harness_write_config(&vnvmed,
            "{\n"
            "  \"subsystems\": [\n"
            "    {\"subsystem\": \"bdev\", \"config\": [\n"
            "      {\"method\": \"bdev_malloc_create\",\n"
            "       \"params\": {\"name\": \"Malloc0\", \"num_blocks\": %u, \"block_size\": %u}},\n"
            "      {\"method\": \"bdev_malloc_create\",\n"
            "       \"params\": {\"name\": \"Malloc4K\", \"num_blocks\": %u, \"block_size\": 4096}},\n"
            "      {\"method\": \"bdev_null_create\",\n"
            "       \"params\": {\"name\": \"Null0\", \"num_blocks\": %u, \"block_size\": 512}},\n"
            "      {\"method\": \"bdev_uring_create\",\n"
            "       \"params\": {\"name\": \"Uring0\", \"filename\": \"%s\"}},\n"
            "      {\"method\": \"bdev_malloc_create\",\n"
            "       \"params\": {\"name\": \"Malloc2\", \"num_blocks\": 8192, \"block_size\": 512}}\n"
            "    ]},\n"
            "    {\"subsystem\": \"nvmf\", \"config\": [\n"
            "      {\"method\": \"nvmf_create_transport\", \"params\": {\"trtype\": \"VFIOUSER\"}},\n"
            "      {\"method\": \"nvmf_create_subsystem\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"serial_number\": \"%s\", \"model_number\": \"%s\",\n"
            "                  \"allow_any_host\": true}},\n"
            "      {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Malloc0\", \"nsid\": 1}}},\n"
            "      {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Malloc4K\", \"nsid\": 2}}},\n"
            "      {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Null0\", \"nsid\": 3}}},\n"
            "      {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Uring0\", \"nsid\": 4}}},\n"
            "      {\"method\": \"nvmf_subsystem_add_listener\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"listen_address\": {\"trtype\": \"VFIOUSER\", \"adrfam\": \"IPv4\",\n"
            "                  \"traddr\": \"%s\", \"trsvcid\": \"\"}}},\n"
            "      {\"method\": \"nvmf_create_subsystem\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"serial_number\": \"VNVMEITEST0002\", \"allow_any_host\": true}},\n"
            "      {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Malloc2\", \"nsid\": 1}}},\n"
            "      {\"method\": \"nvmf_subsystem_add_listener\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"listen_address\": {\"trtype\": \"VFIOUSER\", \"adrfam\": \"IPv4\",\n"
            "                  \"traddr\": \"%s\", \"trsvcid\": \"\"}}}\n"
            "    ]}\n"
            "  ]\n"
            "}\n",
            NUM_BLOCKS, BLOCK_SIZE, MALLOC_4K_BLOCKS, NULL_BLOCKS, uring_path,
            NQN, SERIAL, MODEL, NQN, NQN, NQN, NQN, NQN, vnvmed.listen_dir,
            NQN2, NQN2, NQN2, listen_dir2);
}

/* A sparse file for the uring bdev. */
static int create_uring_file(void)
{
    FILE *f = fopen(uring_path, "w");
    if (!f)
        return -1;
    int rc = ftruncate(fileno(f), URING_FILE_SIZE);
    return fclose(f) | rc;
}

static int group_setup(void **state)
{
    (void)state;
    if (vnvmed_harness_init(&vnvmed, "vnvmed-test") != 0 ||
        vnvmed_harness_path(&vnvmed, "nvme1", listen_dir2, sizeof(listen_dir2)) != 0 ||
        vnvmed_harness_path(&vnvmed, "nvme1/cntrl", sock_path2, sizeof(sock_path2)) != 0 ||
        vnvmed_harness_path(&vnvmed, "uring.img", uring_path, sizeof(uring_path)) != 0)
        return -1;
    if (create_uring_file() != 0 || write_config() != 0)
        return -1;
    /* Two reactors: the second subsystem runs on the other one. */
    const struct vnvmed_start how = {.core_mask = "0x3", .second_socket = sock_path2};
    return vnvmed_harness_start(&vnvmed, &how);
}

static int group_teardown(void **state)
{
    (void)state;
    vnvmed_harness_cleanup(&vnvmed);
    return 0;
}

/* ---- helpers ---- */

static void open_enabled(struct nvme_guest *g)
{
    assert_int_equal(ng_open_retry(g, vnvmed.sock_path, GUEST_RAM, 5000), 0);
    assert_int_equal(ng_enable(g, 32), 0);
}

/* Write len bytes of pattern seed at slba through qid, read them back into a fresh buffer, compare. */
static void write_read_verify(struct nvme_guest *g, uint16_t qid, uint64_t slba, uint32_t len, uint32_t seed)
{
    uint64_t wbuf = ng_alloc(g, len, NG_PAGE);
    uint64_t rbuf = ng_alloc(g, len, NG_PAGE);
    fill_pattern(ng_ptr(g, wbuf), len, seed);
    assert_int_equal(ng_rw(g, qid, NVME_NVM_WRITE, 1, slba, len / BLOCK_SIZE, wbuf, len), 0);
    assert_int_equal(ng_rw(g, qid, NVME_NVM_READ, 1, slba, len / BLOCK_SIZE, rbuf, len), 0);
    assert_memory_equal(ng_ptr(g, wbuf), ng_ptr(g, rbuf), len);
}

/* ---- tests ---- */

static void test_pci_function(void **state)
{
    (void)state;
    struct nvme_guest g;
    assert_int_equal(ng_open_retry(&g, vnvmed.sock_path, GUEST_RAM, 5000), 0);

    uint8_t cfg[64];
    assert_int_equal(vfio_user_client_region_read(g.c, VFIO_PCI_CONFIG_REGION_INDEX, 0, cfg, sizeof(cfg)), 0);
    assert_int_equal(cfg[0] | cfg[1] << 8, VENDOR_ID);
    assert_int_equal(cfg[2] | cfg[3] << 8, DEVICE_ID);
    /* Class code 01 08 02: mass storage, non-volatile memory, NVM Express. */
    assert_int_equal(cfg[0x09], 0x02);
    assert_int_equal(cfg[0x0a], 0x08);
    assert_int_equal(cfg[0x0b], 0x01);
    assert_int_equal(cfg[0x2c] | cfg[0x2d] << 8, VENDOR_ID);
    assert_int_equal(cfg[0x3d], 1); /* INTA# */
    /* BAR0: 64-bit memory BAR. */
    assert_int_equal(cfg[0x10] & 0x7, 0x4);

    assert_true(g.msix_cap > 0);
    uint8_t msix[12];
    assert_int_equal(vfio_user_client_region_read(g.c, VFIO_PCI_CONFIG_REGION_INDEX, (uint64_t)g.msix_cap, msix,
                                                  sizeof(msix)),
                     0);
    uint16_t table_size = (uint16_t)((msix[2] | msix[3] << 8) & 0x7ff) + 1;
    uint32_t table = (uint32_t)(msix[4] | msix[5] << 8 | msix[6] << 16 | (uint32_t)msix[7] << 24);
    uint32_t pba = (uint32_t)(msix[8] | msix[9] << 8 | msix[10] << 16 | (uint32_t)msix[11] << 24);
    assert_int_equal(table_size, 65);
    assert_int_equal(table, 4); /* BAR4, offset 0 */
    assert_int_equal(pba, 5);   /* BAR5, offset 0 */

    struct vfio_region_info ri;
    assert_int_equal(vfio_user_client_region_info(g.c, VFIO_PCI_BAR0_REGION_INDEX, &ri, NULL, 0, NULL), 0);
    assert_true(ri.size >= 0x2000);
    assert_true(ri.flags & VFIO_REGION_INFO_FLAG_MMAP);
    assert_non_null(g.db); /* the doorbell page is mmapped */

    /* CAP: MPSMIN 0 (4 KiB), DSTRD 0, NVM command set; VS 1.x or 2.x. */
    assert_int_equal((g.cap >> NVME_CAP_DSTRD_SHIFT) & 0xf, 0);
    assert_true(g.cap & NVME_CAP_CSS_NVM);
    assert_int_equal((g.cap >> NVME_CAP_MPSMIN_SHIFT) & 0xf, 0);
    assert_true(NVME_CAP_MQES(g.cap) >= 31);
    uint32_t vs;
    assert_int_equal(ng_read32(&g, NVME_REG_VS, &vs), 0);
    assert_true((vs >> 16) >= 1);
    ng_close(&g);
}

static void test_identify_and_io(void **state)
{
    (void)state;
    struct nvme_guest g;
    open_enabled(&g);
    ng_irq_wait(&g, 0, 0); /* forget what enabling left behind */

    uint64_t id = ng_alloc(&g, NG_PAGE, NG_PAGE);
    assert_int_equal(ng_identify(&g, 1, 0, id), 0);
    const struct nvme_id_ctrl *ic = ng_ptr(&g, id);
    assert_int_equal(ic->vid, VENDOR_ID);
    assert_memory_equal(ic->sn, SERIAL, strlen(SERIAL));
    assert_int_equal(ic->sn[strlen(SERIAL)], ' ');
    assert_memory_equal(ic->mn, MODEL, strlen(MODEL));
    assert_int_equal(ic->mdts, 8);
    assert_true(ic->nn >= 1);
    /* Admin completions raise vector 0. */
    assert_true(ng_irq_wait(&g, 0, 2000) >= 1);

    uint64_t nsbuf = ng_alloc(&g, NG_PAGE, NG_PAGE);
    assert_int_equal(ng_identify(&g, 0, 1, nsbuf), 0);
    const struct nvme_id_ns *ns = ng_ptr(&g, nsbuf);
    assert_int_equal(ns->nsze, NUM_BLOCKS);
    assert_int_equal(1u << ns->lbaf[ns->flbas & 0xf].lbads, BLOCK_SIZE);

    uint32_t nq = 0;
    assert_int_equal(ng_set_num_queues(&g, 2, 2, &nq), 0);
    assert_true((nq & 0xffff) >= 1 && (nq >> 16) >= 1);
    assert_int_equal(ng_create_io_queues(&g, 1, 64, 1), 0);
    ng_irq_wait(&g, 1, 0);

    /* 128 KiB = 32 pages: PRP1 + a PRP list, doorbells through the mmapped page. */
    write_read_verify(&g, 1, 100, 128u << 10, 1);
    assert_true(ng_irq_wait(&g, 1, 2000) >= 1);

    /* The same with doorbells written by REGION_WRITE messages. */
    g.db_by_message = true;
    write_read_verify(&g, 1, 4096, 8u << 10, 2);
    g.db_by_message = false;

    /* A read past the end of the namespace is refused with LBA Out of Range. */
    uint64_t buf = ng_alloc(&g, NG_PAGE, NG_PAGE);
    int st = ng_rw(&g, 1, NVME_NVM_READ, 1, NUM_BLOCKS - 1, 2, buf, 2 * BLOCK_SIZE);
    assert_int_equal(st & 0x7ff, NVME_SC_LBA_OUT_OF_RANGE);
    ng_close(&g);
}

static void test_disable_and_shutdown(void **state)
{
    (void)state;
    struct nvme_guest g;
    open_enabled(&g);
    assert_int_equal(ng_create_io_queues(&g, 1, 16, 1), 0);
    write_read_verify(&g, 1, 8, 4096, 3);

    /* CC.EN=0 resets the controller: RDY clears, queues are gone, it can be enabled again. */
    assert_int_equal(ng_disable(&g), 0);
    uint32_t csts;
    assert_int_equal(ng_read32(&g, NVME_REG_CSTS, &csts), 0);
    assert_int_equal(csts & NVME_CSTS_RDY, 0);
    assert_int_equal(ng_enable(&g, 16), 0);
    assert_int_equal(ng_create_io_queues(&g, 1, 16, 1), 0);
    write_read_verify(&g, 1, 16, 4096, 4);

    assert_int_equal(ng_shutdown(&g), 0);
    assert_int_equal(ng_read32(&g, NVME_REG_CSTS, &csts), 0);
    assert_int_equal((csts & NVME_CSTS_SHST_MASK) >> NVME_CSTS_SHST_SHIFT, NVME_CSTS_SHST_COMPLETE);
    ng_close(&g);
}

static void test_device_reset(void **state)
{
    (void)state;
    struct nvme_guest g;
    open_enabled(&g);
    assert_int_equal(vfio_user_client_device_reset(g.c), 0);
    uint32_t csts, cc;
    assert_int_equal(ng_read32(&g, NVME_REG_CSTS, &csts), 0);
    assert_int_equal(csts & NVME_CSTS_RDY, 0);
    assert_int_equal(ng_read32(&g, NVME_REG_CC, &cc), 0);
    assert_int_equal(cc, 0);
    /* A device reset clears the command register too: bus mastering has to be turned back on. */
    uint16_t cmd;
    assert_int_equal(vfio_user_client_region_read(g.c, VFIO_PCI_CONFIG_REGION_INDEX, 4, &cmd, 2), 0);
    assert_int_equal(cmd & 0x6, 0);
    ng_close(&g);
}

static void set_command_register(struct nvme_guest *g, uint16_t value)
{
    assert_int_equal(vfio_user_client_region_write(g->c, VFIO_PCI_CONFIG_REGION_INDEX, 4, &value, 2), 0);
}

/* With Bus Master Enable clear the function must not fetch commands; setting it again lets them run. */
static void test_bus_master_gates_queues(void **state)
{
    (void)state;
    struct nvme_guest g;
    open_enabled(&g);
    assert_int_equal(ng_create_io_queues(&g, 1, 16, 1), 0);
    uint64_t buf = ng_alloc(&g, 4096, NG_PAGE);
    fill_pattern(ng_ptr(&g, buf), 4096, 6);

    set_command_register(&g, 0x2); /* memory decoding only */
    struct nvme_sqe sqe = {.opc = NVME_NVM_WRITE, .nsid = 1, .cdw10 = 64, .cdw12 = 7};
    ng_set_prps(&g, &sqe, buf, 4096);
    uint16_t cid = ng_submit(&g, 1, &sqe);
    struct nvme_cqe cqe;
    assert_int_equal(ng_wait_cqe(&g, 1, &cqe, 100), -ETIMEDOUT);

    set_command_register(&g, 0x6);
    assert_int_equal(ng_wait_cqe(&g, 1, &cqe, 5000), 0);
    assert_int_equal(cqe.cid, cid);
    assert_int_equal(cqe.status >> 1, 0);
    ng_close(&g);
}

#define CHILD_LBA 2048u
#define CHILD_LEN (256u << 10)
#define CHILD_SEED 77u

/* The child: write known data, then keep I/O in flight until it is killed. */
static void child_io_then_hang(int ready_fd)
{
    struct nvme_guest g;
    if (ng_open_retry(&g, vnvmed.sock_path, GUEST_RAM, 5000) || ng_enable(&g, 32) || ng_create_io_queues(&g, 1, 64, 1))
        _exit(2);
    uint64_t buf = ng_alloc(&g, CHILD_LEN, NG_PAGE);
    fill_pattern(ng_ptr(&g, buf), CHILD_LEN, CHILD_SEED);
    if (ng_rw(&g, 1, NVME_NVM_WRITE, 1, CHILD_LBA, CHILD_LEN / BLOCK_SIZE, buf, CHILD_LEN) != 0)
        _exit(3);
    uint64_t other = ng_alloc(&g, 64u << 10, NG_PAGE);
    for (unsigned i = 0; i < 40; i++) {
        struct nvme_sqe sqe = {.opc = NVME_NVM_WRITE, .nsid = 1, .cdw10 = 8192 + i * 128, .cdw12 = 127};
        ng_set_prps(&g, &sqe, other, 64u << 10);
        ng_submit(&g, 1, &sqe);
    }
    char c = 'r';
    if (write(ready_fd, &c, 1) != 1)
        _exit(4);
    for (;;)
        pause();
}

static void test_killed_client_then_reconnect(void **state)
{
    (void)state;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(pfd[0]);
        child_io_then_hang(pfd[1]);
    }
    close(pfd[1]);
    char c = 0;
    ssize_t n = read(pfd[0], &c, 1);
    close(pfd[0]);
    kill(child, SIGKILL);
    int status;
    waitpid(child, &status, 0);
    assert_int_equal(n, 1);

    /* A new client: the controller is still enabled from the child; enabling resets it first. */
    struct nvme_guest g;
    open_enabled(&g);
    assert_int_equal(ng_create_io_queues(&g, 1, 64, 1), 0);
    uint64_t rbuf = ng_alloc(&g, CHILD_LEN, NG_PAGE);
    assert_int_equal(ng_rw(&g, 1, NVME_NVM_READ, 1, CHILD_LBA, CHILD_LEN / BLOCK_SIZE, rbuf, CHILD_LEN), 0);
    uint8_t *expect = malloc(CHILD_LEN);
    assert_non_null(expect);
    fill_pattern(expect, CHILD_LEN, CHILD_SEED);
    assert_memory_equal(ng_ptr(&g, rbuf), expect, CHILD_LEN);
    free(expect);
    write_read_verify(&g, 1, 0, 4096, 5);
    ng_close(&g);
}

/* ---- more helpers ---- */

/* One JSON-RPC call to vnvmed; params as JSON text (or NULL). 0, the error code or -errno. */
static int rpc(const char *method, const char *params_json, struct json_object **result)
{
    return vnvmed_harness_rpc(&vnvmed, method, params_json, result);
}

static int sc_of(int status)
{
    return status & 0x7ff;
}

/* Like write_read_verify, on any namespace with its block size. */
static void wrv_ns(struct nvme_guest *g, uint16_t qid, uint32_t nsid, uint32_t bs, uint64_t slba, uint32_t len,
                   uint32_t seed)
{
    uint64_t wbuf = ng_alloc(g, len, NG_PAGE);
    uint64_t rbuf = ng_alloc(g, len, NG_PAGE);
    fill_pattern(ng_ptr(g, wbuf), len, seed);
    assert_int_equal(ng_rw(g, qid, NVME_NVM_WRITE, nsid, slba, len / bs, wbuf, len), 0);
    assert_int_equal(ng_rw(g, qid, NVME_NVM_READ, nsid, slba, len / bs, rbuf, len), 0);
    assert_memory_equal(ng_ptr(g, wbuf), ng_ptr(g, rbuf), len);
}

static bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != v)
            return false;
    return true;
}

/* Read len bytes at slba of nsid into a buffer pre-filled with 0xa5 and check they are all zero. */
static void read_expect_zeroes(struct nvme_guest *g, uint16_t qid, uint32_t nsid, uint32_t bs, uint64_t slba,
                               uint32_t len)
{
    uint64_t buf = ng_alloc(g, len, NG_PAGE);
    memset(ng_ptr(g, buf), 0xa5, len);
    assert_int_equal(ng_rw(g, qid, NVME_NVM_READ, nsid, slba, len / bs, buf, len), 0);
    assert_true(all_bytes(ng_ptr(g, buf), len, 0));
}

static int get_log_page(struct nvme_guest *g, uint8_t lid, uint64_t buf, uint32_t len)
{
    struct nvme_sqe sqe = {.opc = NVME_ADMIN_GET_LOG_PAGE, .nsid = 0xffffffffu,
                           .cdw10 = ((len / 4 - 1) << 16) | lid};
    sqe.dptr.prp1 = buf;
    return ng_cmd(g, 0, &sqe, NULL);
}

static int set_feature(struct nvme_guest *g, uint8_t fid, uint32_t cdw11)
{
    struct nvme_sqe sqe = {.opc = NVME_ADMIN_SET_FEATURES, .cdw10 = fid, .cdw11 = cdw11};
    return ng_cmd(g, 0, &sqe, NULL);
}

/* ---- more tests ---- */

/* Guests of the tests below: closed by close_slots even when an assertion ends a test early. */
static struct nvme_guest slots[2];

static int close_slots(void **state)
{
    (void)state;
    for (unsigned i = 0; i < 2; i++)
        if (slots[i].c)
            ng_close(&slots[i]);
    return 0;
}


/* Two I/O SQs completing into one CQ: every CQE names the SQ and command it belongs to. */
static void test_shared_cq(void **state)
{
    (void)state;
    struct nvme_guest *gp = &slots[0];
    open_enabled(gp);
    assert_int_equal(ng_set_num_queues(gp, 2, 2, NULL), 0);
    assert_int_equal(ng_create_io_cq(gp, 1, 64, 1), 0);
    assert_int_equal(ng_create_io_sq(gp, 1, 32, 1), 0);
    assert_int_equal(ng_create_io_sq(gp, 2, 32, 1), 0);

    enum { PER_SQ = 12, LEN = 4096 };
    uint64_t buf[2][PER_SQ];
    uint16_t cids[2][PER_SQ];
    bool seen[2][PER_SQ] = {{false}};
    for (unsigned i = 0; i < PER_SQ; i++) {
        for (unsigned s = 0; s < 2; s++) {
            buf[s][i] = ng_alloc(gp, LEN, NG_PAGE);
            fill_pattern(ng_ptr(gp, buf[s][i]), LEN, 1000 + s * 100 + i);
            uint64_t slba = 30000 + (s * PER_SQ + i) * (LEN / BLOCK_SIZE);
            struct nvme_sqe sqe = {.opc = NVME_NVM_WRITE, .nsid = 1, .cdw10 = (uint32_t)slba,
                                   .cdw12 = LEN / BLOCK_SIZE - 1};
            ng_set_prps(gp, &sqe, buf[s][i], LEN);
            cids[s][i] = ng_submit(gp, (uint16_t)(s + 1), &sqe);
        }
    }
    for (unsigned n = 0; n < 2 * PER_SQ; n++) {
        struct nvme_cqe cqe;
        assert_int_equal(ng_wait_cqe(gp, 1, &cqe, 5000), 0);
        assert_int_equal(cqe.status >> 1, 0);
        assert_true(cqe.sqid == 1 || cqe.sqid == 2);
        unsigned s = cqe.sqid - 1u, found = PER_SQ;
        for (unsigned i = 0; i < PER_SQ; i++)
            if (cids[s][i] == cqe.cid)
                found = i;
        assert_true(found < PER_SQ);
        assert_false(seen[s][found]);
        seen[s][found] = true;
        assert_true(cqe.sqhd < 32);
    }
    /* Each write landed where its own SQ's command said: read back through the other SQ. */
    for (unsigned s = 0; s < 2; s++)
        for (unsigned i = 0; i < PER_SQ; i++) {
            uint64_t slba = 30000 + (s * PER_SQ + i) * (LEN / BLOCK_SIZE);
            uint64_t rbuf = ng_alloc(gp, LEN, NG_PAGE);
            assert_int_equal(ng_rw(gp, (uint16_t)(2 - s), NVME_NVM_READ, 1, slba, LEN / BLOCK_SIZE, rbuf, LEN), 0);
            assert_memory_equal(ng_ptr(gp, rbuf), ng_ptr(gp, buf[s][i]), LEN);
        }
    ng_close(gp);
}

static void test_bdev_types(void **state)
{
    (void)state;
    struct nvme_guest *gp = &slots[0];
    open_enabled(gp);
    assert_int_equal(ng_create_io_queues(gp, 1, 64, 1), 0);

    /* malloc, 512-byte blocks */
    wrv_ns(gp, 1, NSID_MALLOC, 512, 777, 12288, 21);

    /* malloc, 4 KiB blocks */
    uint64_t idbuf = ng_alloc(gp, NG_PAGE, NG_PAGE);
    assert_int_equal(ng_identify(gp, 0, NSID_MALLOC_4K, idbuf), 0);
    const struct nvme_id_ns *ns = ng_ptr(gp, idbuf);
    assert_int_equal(ns->nsze, MALLOC_4K_BLOCKS);
    assert_int_equal(1u << ns->lbaf[ns->flbas & 0xf].lbads, 4096);
    wrv_ns(gp, 1, NSID_MALLOC_4K, 4096, 10, 64u << 10, 22);
    wrv_ns(gp, 1, NSID_MALLOC_4K, 4096, MALLOC_4K_BLOCKS - 1, 4096, 23);
    uint64_t b = ng_alloc(gp, 2 * 4096, NG_PAGE);
    assert_int_equal(sc_of(ng_rw(gp, 1, NVME_NVM_READ, NSID_MALLOC_4K, MALLOC_4K_BLOCKS - 1, 2, b, 8192)),
                     NVME_SC_LBA_OUT_OF_RANGE);

    /* null: writes succeed, reads return zeroes */
    uint64_t wbuf = ng_alloc(gp, 8192, NG_PAGE);
    fill_pattern(ng_ptr(gp, wbuf), 8192, 24);
    assert_int_equal(ng_rw(gp, 1, NVME_NVM_WRITE, NSID_NULL, 64, 16, wbuf, 8192), 0);
    read_expect_zeroes(gp, 1, NSID_NULL, 512, 64, 8192);

    /* uring on a file: read back now; the file is checked after the daemon stops */
    wrv_ns(gp, 1, NSID_URING, 512, URING_LBA, URING_LEN, URING_SEED);
    struct nvme_sqe flush = {.opc = NVME_NVM_FLUSH, .nsid = NSID_URING};
    assert_int_equal(ng_cmd(gp, 1, &flush, NULL), 0);
    ng_close(gp);
}

static void test_dsm_write_zeroes_compare(void **state)
{
    (void)state;
    struct nvme_guest *gp = &slots[0];
    open_enabled(gp);
    assert_int_equal(ng_create_io_queues(gp, 1, 64, 1), 0);

    /* Deallocate, then read: zeroes. */
    wrv_ns(gp, 1, 1, 512, 20000, 4096, 31);
    uint64_t rng = ng_alloc(gp, NG_PAGE, NG_PAGE);
    struct nvme_dsm_range *r = ng_ptr(gp, rng);
    r->slba = 20000;
    r->nlb = 8;
    struct nvme_sqe dsm = {.opc = NVME_NVM_DATASET_MANAGEMENT, .nsid = 1, .cdw10 = 0, .cdw11 = 1u << 2};
    dsm.dptr.prp1 = rng;
    assert_int_equal(ng_cmd(gp, 1, &dsm, NULL), 0);
    read_expect_zeroes(gp, 1, 1, 512, 20000, 4096);

    /* Write Zeroes the middle 16 of 32 written blocks: the rest keeps its data. */
    uint64_t wbuf = ng_alloc(gp, 16384, NG_PAGE);
    fill_pattern(ng_ptr(gp, wbuf), 16384, 32);
    assert_int_equal(ng_rw(gp, 1, NVME_NVM_WRITE, 1, 21000, 32, wbuf, 16384), 0);
    struct nvme_sqe wz = {.opc = NVME_NVM_WRITE_ZEROES, .nsid = 1, .cdw10 = 21008, .cdw12 = 15};
    assert_int_equal(ng_cmd(gp, 1, &wz, NULL), 0);
    uint64_t rbuf = ng_alloc(gp, 16384, NG_PAGE);
    assert_int_equal(ng_rw(gp, 1, NVME_NVM_READ, 1, 21000, 32, rbuf, 16384), 0);
    const uint8_t *rd = ng_ptr(gp, rbuf), *wr = ng_ptr(gp, wbuf);
    assert_memory_equal(rd, wr, 4096);
    assert_true(all_bytes(rd + 4096, 8192, 0));
    assert_memory_equal(rd + 12288, wr + 12288, 4096);

    /* Compare: match, then one byte off -> Compare Failure (media errors). */
    uint64_t cbuf = ng_alloc(gp, 4096, NG_PAGE);
    fill_pattern(ng_ptr(gp, cbuf), 4096, 33);
    assert_int_equal(ng_rw(gp, 1, NVME_NVM_WRITE, 1, 22000, 8, cbuf, 4096), 0);
    assert_int_equal(ng_rw(gp, 1, NVME_NVM_COMPARE, 1, 22000, 8, cbuf, 4096), 0);
    ((uint8_t *)ng_ptr(gp, cbuf))[4000] ^= 0x40;
    assert_int_equal(sc_of(ng_rw(gp, 1, NVME_NVM_COMPARE, 1, 22000, 8, cbuf, 4096)),
                     NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILURE));
    ng_close(gp);
}

/* The AER for a namespace change: notice / namespace attribute changed / log page 04h. */
static void expect_ns_notice(struct nvme_guest *g, uint16_t aer_cid)
{
    struct nvme_cqe cqe;
    assert_int_equal(ng_wait_cqe(g, 0, &cqe, 5000), 0);
    assert_int_equal(cqe.cid, aer_cid);
    assert_int_equal(cqe.status >> 1, 0);
    assert_int_equal(cqe.cdw0 & 0x7, NVME_AER_TYPE_NOTICE);
    assert_int_equal((cqe.cdw0 >> 8) & 0xff, 0);
    assert_int_equal((cqe.cdw0 >> 16) & 0xff, NVME_LOG_CHANGED_NS_LIST);
}

static void expect_changed_ns(struct nvme_guest *g, uint32_t nsid)
{
    uint64_t buf = ng_alloc(g, NG_PAGE, NG_PAGE);
    assert_int_equal(get_log_page(g, NVME_LOG_CHANGED_NS_LIST, buf, NG_PAGE), 0);
    const uint32_t *list = ng_ptr(g, buf);
    assert_int_equal(list[0], nsid);
    assert_int_equal(list[1], 0);
    /* Reading it (RAE clear) empties the list. */
    assert_int_equal(get_log_page(g, NVME_LOG_CHANGED_NS_LIST, buf, NG_PAGE), 0);
    assert_int_equal(list[0], 0);
}

static void expect_active_ns(struct nvme_guest *g, const uint32_t *expect, unsigned n)
{
    uint64_t buf = ng_alloc(g, NG_PAGE, NG_PAGE);
    assert_int_equal(ng_identify(g, NVME_ID_CNS_ACTIVE_NS_LIST, 0, buf), 0);
    const uint32_t *list = ng_ptr(g, buf);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(list[i], expect[i]);
    assert_int_equal(list[n], 0);
}

static void test_ns_hot_add_remove(void **state)
{
    (void)state;
    struct nvme_guest *gp = &slots[0];
    open_enabled(gp);
    assert_int_equal(ng_create_io_queues(gp, 1, 64, 1), 0);
    assert_int_equal(rpc("bdev_malloc_create", "{\"name\": \"Hot0\", \"num_blocks\": 2048, \"block_size\": 512}",
                         NULL),
                     0);
    assert_int_equal(set_feature(gp, NVME_FEAT_ASYNC_EVENT_CONFIGURATION, 1u << 8), 0);

    struct nvme_sqe aer = {.opc = NVME_ADMIN_ASYNC_EVENT_REQUEST};
    uint16_t aer_cid = ng_submit(gp, 0, &aer);
    char params[256];
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Hot0\", \"nsid\": %u}}", NQN,
             NSID_HOT);
    assert_int_equal(rpc("nvmf_subsystem_add_ns", params, NULL), 0);
    expect_ns_notice(gp, aer_cid);
    expect_changed_ns(gp, NSID_HOT);
    const uint32_t with_hot[] = {1, 2, 3, 4, NSID_HOT};
    expect_active_ns(gp, with_hot, 5);
    wrv_ns(gp, 1, NSID_HOT, 512, 100, 8192, 41);

    struct nvme_sqe aer2 = {.opc = NVME_ADMIN_ASYNC_EVENT_REQUEST};
    aer_cid = ng_submit(gp, 0, &aer2);
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"nsid\": %u}", NQN, NSID_HOT);
    assert_int_equal(rpc("nvmf_subsystem_remove_ns", params, NULL), 0);
    expect_ns_notice(gp, aer_cid);
    expect_changed_ns(gp, NSID_HOT);
    const uint32_t without_hot[] = {1, 2, 3, 4};
    expect_active_ns(gp, without_hot, 4);
    uint64_t buf = ng_alloc(gp, 4096, NG_PAGE);
    assert_int_equal(sc_of(ng_rw(gp, 1, NVME_NVM_READ, NSID_HOT, 0, 8, buf, 4096)),
                     NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
    /* No longer claimed by a namespace: the bdev can go. */
    assert_int_equal(rpc("bdev_malloc_delete", "{\"name\": \"Hot0\"}", NULL), 0);
    ng_close(gp);
}

static void test_delete_queues(void **state)
{
    (void)state;
    struct nvme_guest *gp = &slots[0];
    open_enabled(gp);
    assert_int_equal(ng_set_num_queues(gp, 2, 2, NULL), 0);
    assert_int_equal(ng_create_io_queues(gp, 1, 16, 1), 0);
    assert_int_equal(ng_create_io_queues(gp, 2, 16, 2), 0);
    wrv_ns(gp, 2, 1, 512, 40000, 4096, 51);

    assert_int_equal(sc_of(ng_delete_io_cq(gp, 2)),
                     NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_DELETION));
    assert_int_equal(ng_delete_io_sq(gp, 2), 0);
    assert_int_equal(ng_delete_io_cq(gp, 2), 0);
    assert_int_equal(sc_of(ng_delete_io_sq(gp, 2)),
                     NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(sc_of(ng_delete_io_cq(gp, 2)),
                     NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER));
    /* Queue 2 can be created again, and queue 1 never noticed. */
    assert_int_equal(ng_create_io_queues(gp, 2, 16, 2), 0);
    wrv_ns(gp, 2, 1, 512, 40008, 4096, 52);
    wrv_ns(gp, 1, 1, 512, 40016, 4096, 53);
    ng_close(gp);
}

/* Guest memory holding live queues goes away and comes back: the queues resume. */
static void test_dma_unmap_live_queues(void **state)
{
    (void)state;
    struct nvme_guest *gp = &slots[0];
    open_enabled(gp);
    assert_int_equal(ng_create_io_queues(gp, 1, 16, 1), 0);
    wrv_ns(gp, 1, 1, 512, 50000, 4096, 61);
    uint64_t wbuf = ng_alloc(gp, 4096, NG_PAGE);
    fill_pattern(ng_ptr(gp, wbuf), 4096, 62);

    assert_int_equal(vfio_user_client_dma_unmap(gp->c, NG_MEM_IOVA, gp->mem_size), 0);
    /* Doorbells rung while the rings are unmapped: nothing can be fetched, nothing posted. */
    struct nvme_sqe wr = {.opc = NVME_NVM_WRITE, .nsid = 1, .cdw10 = 50008, .cdw12 = 7};
    ng_set_prps(gp, &wr, wbuf, 4096);
    uint16_t io_cid = ng_submit(gp, 1, &wr);
    uint64_t idbuf = ng_alloc(gp, NG_PAGE, NG_PAGE);
    struct nvme_sqe id = {.opc = NVME_ADMIN_IDENTIFY, .cdw10 = NVME_ID_CNS_CTRL};
    id.dptr.prp1 = idbuf;
    uint16_t admin_cid = ng_submit(gp, 0, &id);
    struct nvme_cqe cqe;
    assert_int_equal(ng_wait_cqe(gp, 1, &cqe, 200), -ETIMEDOUT);
    assert_int_equal(ng_wait_cqe(gp, 0, &cqe, 10), -ETIMEDOUT);
    uint32_t csts;
    assert_int_equal(ng_read32(gp, NVME_REG_CSTS, &csts), 0);
    assert_int_equal(csts & NVME_CSTS_CFS, 0);

    /* Same IOVA, same memfd: the commands rung in the meantime run, the queues go on. */
    assert_int_equal(vfio_user_client_dma_map(gp->c, NG_MEM_IOVA, gp->mem_size,
                                              VFIO_USER_DMA_F_READ | VFIO_USER_DMA_F_WRITE, gp->memfd, 0, gp->mem),
                     0);
    assert_int_equal(ng_wait_cqe(gp, 1, &cqe, 5000), 0);
    assert_int_equal(cqe.cid, io_cid);
    assert_int_equal(cqe.status >> 1, 0);
    assert_int_equal(ng_wait_cqe(gp, 0, &cqe, 5000), 0);
    assert_int_equal(cqe.cid, admin_cid);
    assert_int_equal(cqe.status >> 1, 0);
    assert_int_equal(((const struct nvme_id_ctrl *)ng_ptr(gp, idbuf))->vid, VENDOR_ID);
    uint64_t rbuf = ng_alloc(gp, 4096, NG_PAGE);
    assert_int_equal(ng_rw(gp, 1, NVME_NVM_READ, 1, 50008, 8, rbuf, 4096), 0);
    assert_memory_equal(ng_ptr(gp, rbuf), ng_ptr(gp, wbuf), 4096);
    wrv_ns(gp, 1, 1, 512, 50016, 8192, 63);
    ng_close(gp);
}

static void test_sgl_and_bad_prp(void **state)
{
    (void)state;
    struct nvme_guest *gp = &slots[0];
    open_enabled(gp);
    assert_int_equal(ng_create_io_queues(gp, 1, 16, 1), 0);

    /* SGL: PSDT=01b with one Data Block descriptor in the command. */
    uint64_t wbuf = ng_alloc(gp, 4096, NG_PAGE), rbuf = ng_alloc(gp, 4096, NG_PAGE);
    fill_pattern(ng_ptr(gp, wbuf), 4096, 71);
    struct nvme_sqe w = {.opc = NVME_NVM_WRITE, .nsid = 1, .cdw10 = 60000, .cdw12 = 7,
                         .flags = NVME_PSDT_SGL_MPTR_CONTIG << NVME_SQE_PSDT_SHIFT};
    w.dptr.sgl1 = (struct nvme_sgl_desc){.addr = wbuf, .length = 4096, .type = NVME_SGL_TYPE_DATA_BLOCK << 4};
    assert_int_equal(ng_cmd(gp, 1, &w, NULL), 0);
    struct nvme_sqe r = w;
    r.opc = NVME_NVM_READ;
    r.dptr.sgl1.addr = rbuf;
    assert_int_equal(ng_cmd(gp, 1, &r, NULL), 0);
    assert_memory_equal(ng_ptr(gp, rbuf), ng_ptr(gp, wbuf), 4096);
    /* And the PRP path sees what the SGL path wrote. */
    uint64_t pbuf = ng_alloc(gp, 4096, NG_PAGE);
    assert_int_equal(ng_rw(gp, 1, NVME_NVM_READ, 1, 60000, 8, pbuf, 4096), 0);
    assert_memory_equal(ng_ptr(gp, pbuf), ng_ptr(gp, wbuf), 4096);

    /* A PRP list whose entries point outside the shared memory: Data Transfer Error. */
    uint64_t buf = ng_alloc(gp, 16384, NG_PAGE);
    uint64_t list_iova = ng_alloc(gp, NG_PAGE, NG_PAGE);
    uint64_t *list = ng_ptr(gp, list_iova);
    for (unsigned i = 0; i < 3; i++)
        list[i] = 0x10000 + i * NG_PAGE;
    struct nvme_sqe bad = {.opc = NVME_NVM_WRITE, .nsid = 1, .cdw10 = 61000, .cdw12 = 31};
    bad.dptr.prp1 = buf;
    bad.dptr.prp2 = list_iova;
    assert_int_equal(sc_of(ng_cmd(gp, 1, &bad, NULL)), NVME_SC_DATA_TRANSFER_ERROR);
    bad.opc = NVME_NVM_READ;
    assert_int_equal(sc_of(ng_cmd(gp, 1, &bad, NULL)), NVME_SC_DATA_TRANSFER_ERROR);
    /* The PRP list itself outside the shared memory. */
    bad.dptr.prp2 = 0x20000;
    assert_int_equal(sc_of(ng_cmd(gp, 1, &bad, NULL)), NVME_SC_DATA_TRANSFER_ERROR);

    /* vnvmed keeps serving this controller. */
    uint32_t csts;
    assert_int_equal(ng_read32(gp, NVME_REG_CSTS, &csts), 0);
    assert_int_equal(csts & (NVME_CSTS_RDY | NVME_CSTS_CFS), NVME_CSTS_RDY);
    wrv_ns(gp, 1, 1, 512, 61000, 16384, 72);
    ng_close(gp);
}

/* Two subsystems on two reactors: both controllers do I/O at the same time, each on its own data. */
static void test_two_subsystems(void **state)
{
    (void)state;
    struct nvme_guest *g = slots;
    const char *socks[2] = {vnvmed.sock_path, sock_path2};
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(ng_open_retry(&g[i], socks[i], GUEST_RAM, 5000), 0);
        assert_int_equal(ng_enable(&g[i], 32), 0);
        assert_int_equal(ng_create_io_queues(&g[i], 1, 64, 1), 0);
    }
    uint64_t id = ng_alloc(&g[1], NG_PAGE, NG_PAGE);
    assert_int_equal(ng_identify(&g[1], NVME_ID_CNS_CTRL, 0, id), 0);
    assert_string_equal(((const struct nvme_id_ctrl *)ng_ptr(&g[1], id))->subnqn, NQN2);

    enum { N = 16, LEN = 8192 };
    uint64_t wbuf[2][N];
    uint16_t cid[2][N];
    for (unsigned k = 0; k < N; k++)
        for (unsigned i = 0; i < 2; i++) {
            wbuf[i][k] = ng_alloc(&g[i], LEN, NG_PAGE);
            fill_pattern(ng_ptr(&g[i], wbuf[i][k]), LEN, 800 + i * 100 + k);
            struct nvme_sqe sqe = {.opc = NVME_NVM_WRITE, .nsid = 1, .cdw10 = k * (LEN / 512), .cdw12 = LEN / 512 - 1};
            ng_set_prps(&g[i], &sqe, wbuf[i][k], LEN);
            cid[i][k] = ng_submit(&g[i], 1, &sqe);
        }
    for (unsigned i = 0; i < 2; i++)
        for (unsigned k = 0; k < N; k++) {
            struct nvme_cqe cqe;
            assert_int_equal(ng_wait_cqe(&g[i], 1, &cqe, 5000), 0);
            assert_int_equal(cqe.status >> 1, 0);
            assert_int_equal(cqe.cid, cid[i][k]);
        }
    /* Same LBAs, different namespaces: each subsystem reads back its own data. */
    for (unsigned i = 0; i < 2; i++)
        for (unsigned k = 0; k < N; k++) {
            uint64_t rbuf = ng_alloc(&g[i], LEN, NG_PAGE);
            assert_int_equal(ng_rw(&g[i], 1, NVME_NVM_READ, 1, k * (LEN / 512), LEN / 512, rbuf, LEN), 0);
            assert_memory_equal(ng_ptr(&g[i], rbuf), ng_ptr(&g[i], wbuf[i][k]), LEN);
        }
    ng_close(&g[0]);
    ng_close(&g[1]);
}

/* After vnvmed stopped: the uring bdev's file holds what the guest wrote, where it wrote it. */
static void test_uring_file_after_stop(void **state)
{
    (void)state;
    assert_false(vnvmed_harness_running(&vnvmed));
    FILE *f = fopen(uring_path, "r");
    assert_non_null(f);
    uint8_t *got = malloc(URING_LEN), *expect = malloc(URING_LEN);
    assert_non_null(got);
    assert_non_null(expect);
    assert_int_equal(fseek(f, (long)URING_LBA * 512, SEEK_SET), 0);
    assert_int_equal(fread(got, 1, URING_LEN, f), URING_LEN);
    fclose(f);
    fill_pattern(expect, URING_LEN, URING_SEED);
    assert_memory_equal(got, expect, URING_LEN);
    free(got);
    free(expect);
}

static void test_sigterm_exits_cleanly(void **state)
{
    (void)state;
    assert_int_equal(vnvmed_harness_stop(&vnvmed), 0);
    struct stat st;
    assert_int_not_equal(stat(vnvmed.sock_path, &st), 0);
    assert_int_equal(errno, ENOENT);
    assert_int_not_equal(stat(sock_path2, &st), 0);
    assert_int_equal(errno, ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pci_function),
        cmocka_unit_test(test_identify_and_io),
        cmocka_unit_test(test_disable_and_shutdown),
        cmocka_unit_test(test_device_reset),
        cmocka_unit_test(test_bus_master_gates_queues),
        cmocka_unit_test(test_killed_client_then_reconnect),
        cmocka_unit_test_teardown(test_shared_cq, close_slots),
        cmocka_unit_test_teardown(test_bdev_types, close_slots),
        cmocka_unit_test_teardown(test_dsm_write_zeroes_compare, close_slots),
        cmocka_unit_test_teardown(test_ns_hot_add_remove, close_slots),
        cmocka_unit_test_teardown(test_delete_queues, close_slots),
        cmocka_unit_test_teardown(test_dma_unmap_live_queues, close_slots),
        cmocka_unit_test_teardown(test_sgl_and_bad_prp, close_slots),
        cmocka_unit_test_teardown(test_two_subsystems, close_slots),
        cmocka_unit_test(test_sigterm_exits_cleanly),
        cmocka_unit_test(test_uring_file_after_stop),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
