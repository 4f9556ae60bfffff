/* SPDX-License-Identifier: MIT */
/*
 * vnvmed end to end: the built daemon started from a JSON config, driven by
 * a guest NVMe driver over the vfio-user client exactly as a VMM would let a
 * guest drive it (config space, BAR0 registers, mmapped doorbells, MSI-X
 * eventfds, DMA into shared guest RAM).
 *
 * The tests share one daemon and run in order; the last one stops it.
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

#include "nvme_guest.h"

#define NQN "nqn.2026-11.io.vnvme:itest"
#define SERIAL "VNVMEITEST0001"
#define MODEL "vnvme integration test"
#define BLOCK_SIZE 512u
#define NUM_BLOCKS 131072u /* 64 MiB */
#define GUEST_RAM (16u << 20)
#define VENDOR_ID 0x4e56
#define DEVICE_ID 0x0001

static char dir[64];
static char listen_dir[96];
static char sock_path[128];
static char rpc_path[128];
static char config_path[128];
static pid_t daemon_pid = -1;

/* ---- daemon ---- */

static int write_config(void)
{
    FILE *f = fopen(config_path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "{\n"
            "  \"subsystems\": [\n"
            "    {\"subsystem\": \"bdev\", \"config\": [\n"
            "      {\"method\": \"bdev_malloc_create\",\n"
            "       \"params\": {\"name\": \"Malloc0\", \"num_blocks\": %u, \"block_size\": %u}}\n"
            "    ]},\n"
            "    {\"subsystem\": \"nvmf\", \"config\": [\n"
            "      {\"method\": \"nvmf_create_transport\", \"params\": {\"trtype\": \"VFIOUSER\"}},\n"
            "      {\"method\": \"nvmf_create_subsystem\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"serial_number\": \"%s\", \"model_number\": \"%s\",\n"
            "                  \"allow_any_host\": true}},\n"
            "      {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Malloc0\", \"nsid\": 1}}},\n"
            "      {\"method\": \"nvmf_subsystem_add_listener\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"listen_address\": {\"trtype\": \"VFIOUSER\", \"adrfam\": \"IPv4\",\n"
            "                  \"traddr\": \"%s\", \"trsvcid\": \"\"}}}\n"
            "    ]}\n"
            "  ]\n"
            "}\n",
            NUM_BLOCKS, BLOCK_SIZE, NQN, SERIAL, MODEL, NQN, NQN, listen_dir);
    return fclose(f);
}

static int start_daemon(void)
{
    const char *exe = getenv("VNVMED");
    if (!exe) {
        fprintf(stderr, "VNVMED is not set (path of the vnvmed binary)\n");
        return -1;
    }
    daemon_pid = fork();
    if (daemon_pid < 0)
        return -1;
    if (daemon_pid == 0) {
        execl(exe, exe, "--config", config_path, "-r", rpc_path, "-m", "0x1", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) {
        struct stat st;
        int status;
        if (stat(sock_path, &st) == 0 && S_ISSOCK(st.st_mode))
            return 0;
        if (waitpid(daemon_pid, &status, WNOHANG) == daemon_pid) {
            fprintf(stderr, "vnvmed exited early (status 0x%x)\n", status);
            daemon_pid = -1;
            return -1;
        }
        usleep(10000);
    }
    fprintf(stderr, "vnvmed did not create %s\n", sock_path);
    return -1;
}

/* SIGTERM and reap; the exit status, or 128+signal. */
static int stop_daemon(void)
{
    if (daemon_pid <= 0)
        return -1;
    kill(daemon_pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(daemon_pid, &status, WNOHANG) == daemon_pid) {
            daemon_pid = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(10000);
    }
    kill(daemon_pid, SIGKILL);
    waitpid(daemon_pid, &status, 0);
    daemon_pid = -1;
    return 128 + SIGKILL;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vnvmed-test.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(listen_dir, sizeof(listen_dir), "%s/nvme0", dir);
    snprintf(sock_path, sizeof(sock_path), "%s/cntrl", listen_dir);
    snprintf(rpc_path, sizeof(rpc_path), "%s/rpc.sock", dir);
    snprintf(config_path, sizeof(config_path), "%s/config.json", dir);
    if (write_config() != 0)
        return -1;
    return start_daemon();
}

static int group_teardown(void **state)
{
    (void)state;
    if (daemon_pid > 0)
        stop_daemon();
    unlink(sock_path);
    rmdir(listen_dir);
    unlink(rpc_path);
    unlink(config_path);
    rmdir(dir);
    return 0;
}

/* ---- helpers ---- */

static void fill_pattern(uint8_t *p, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
}

static void open_enabled(struct nvme_guest *g)
{
    assert_int_equal(ng_open_retry(g, sock_path, GUEST_RAM, 5000), 0);
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
    assert_int_equal(ng_open_retry(&g, sock_path, GUEST_RAM, 5000), 0);

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
    if (ng_open_retry(&g, sock_path, GUEST_RAM, 5000) || ng_enable(&g, 32) || ng_create_io_queues(&g, 1, 64, 1))
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

static void test_sigterm_exits_cleanly(void **state)
{
    (void)state;
    assert_int_equal(stop_daemon(), 0);
    struct stat st;
    assert_int_not_equal(stat(sock_path, &st), 0);
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
        cmocka_unit_test(test_sigterm_exits_cleanly),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
