/* SPDX-License-Identifier: MIT */
/*
 * vnvmed end to end, the device and the daemon: the built daemon started from
 * a JSON config (tests/support/vnvmed_fixture.h), driven by a guest NVMe
 * driver over the vfio-user client exactly as a VMM would let a guest drive
 * it (config space, BAR0 registers, mmapped doorbells, MSI-X eventfds, DMA
 * into shared guest RAM): PCI function, enable/disable/shutdown/reset, bus
 * mastering, a client killed mid-I/O, every bdev type, two subsystems on two
 * reactors, SIGTERM. The NVM commands and queue handling are test_vnvmed_nvm.
 *
 * The tests share one daemon and run in order; the SIGTERM test stops it and
 * only the uring file check runs after it.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "nvme_guest.h"
#include "test_pattern.h"
#include "vnvmed_fixture.h"

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

/*
 * Sockets for a VMM running as its own user: --rpc-group and --socket-group
 * give their group read-write access (0660) and the directories vnvmed
 * creates for a controller socket search access (0710); a listener's own
 * socket_group wins over the default. Without them, 0600 (the main fixture's
 * daemon, checked in test_pci_function's neighbour below).
 */
static void test_socket_groups(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(vnvmed.sock_path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(vnvmed.rpc_path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    struct vnvmed_harness g;
    assert_int_equal(vnvmed_harness_init(&g, "vnvme-groups"), 0);
    char own_dir[128], own_sock[160];
    assert_int_equal(vnvmed_harness_path(&g, "own/a", own_dir, sizeof(own_dir)), 0);
    snprintf(own_sock, sizeof(own_sock), "%s/cntrl", own_dir);
    assert_int_equal(vnvmed_harness_write_config(&g,
            "{\"subsystems\": [{\"subsystem\": \"bdev\", \"config\": [\n"
            "  {\"method\": \"bdev_null_create\", \"params\": {\"name\": \"N0\", \"num_blocks\": 1024, \"block_size\": 512}}]},\n"
            " {\"subsystem\": \"nvmf\", \"config\": [\n"
            "  {\"method\": \"nvmf_create_transport\", \"params\": {\"trtype\": \"VFIOUSER\"}},\n"
            "  {\"method\": \"nvmf_create_subsystem\", \"params\": {\"nqn\": \"nqn.2026-12.io.vnvme:g\", \"allow_any_host\": true}},\n"
            "  {\"method\": \"nvmf_subsystem_add_ns\", \"params\": {\"nqn\": \"nqn.2026-12.io.vnvme:g\", \"namespace\": {\"bdev_name\": \"N0\"}}},\n"
            "  {\"method\": \"nvmf_subsystem_add_listener\", \"params\": {\"nqn\": \"nqn.2026-12.io.vnvme:g\",\n"
            "   \"listen_address\": {\"trtype\": \"VFIOUSER\", \"traddr\": \"%s\"}}},\n"
            "  {\"method\": \"nvmf_subsystem_add_listener\", \"params\": {\"nqn\": \"nqn.2026-12.io.vnvme:g\", \"socket_group\": \"4323\",\n"
            "   \"listen_address\": {\"trtype\": \"VFIOUSER\", \"traddr\": \"%s\"}}}]}]}\n",
            g.listen_dir, own_dir), 0);
    const char *args[] = {"--rpc-group", "4321", "--socket-group", "4322", NULL};
    struct vnvmed_start how = {.second_socket = own_sock, .args = args};
    assert_int_equal(vnvmed_harness_start(&g, &how), 0);
    struct {
        const char *path;
        mode_t mode;
        gid_t gid;
    } expect[] = {{g.rpc_path, 0660, 4321}, {g.sock_path, 0660, 4322}, {g.listen_dir, 0710, 4322},
                  {own_sock, 0660, 4323}, {own_dir, 0710, 4323}};
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        assert_int_equal(stat(expect[i].path, &st), 0);
        printf("%s: %04o gid %u\n", expect[i].path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_gid);
        assert_int_equal(st.st_mode & 07777, expect[i].mode);
        if (geteuid() == 0)
            assert_int_equal(st.st_gid, expect[i].gid);
    }
    /* Still the RPC it was: and save_config keeps the listener's own group. */
    struct json_object *res = NULL;
    assert_int_equal(vnvmed_harness_rpc(&g, "save_config", NULL, &res), 0);
    const char *text = json_object_to_json_string(res);
    assert_non_null(strstr(text, "\"socket_group\": \"4323\"") ? text : strstr(text, "\"socket_group\":\"4323\""));
    json_object_put(res);
    assert_int_equal(vnvmed_harness_stop(&g), 0);
    vnvmed_harness_cleanup(&g);

    /* A group that does not exist: vnvmed refuses to start, and says which option. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s --socket-group no-such-group-vnvme -r /nonexistent/x 2>&1", getenv("VNVMED"));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[256] = {0};
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_equal(WEXITSTATUS(pclose(p)), 2);
    assert_non_null(strstr(out, "--socket-group: no group 'no-such-group-vnvme'"));
}

/* The next datagram on fd within 10 s, NUL-terminated in buf; its length or -1. */
static ssize_t recv_within(int fd, char *buf, size_t size)
{
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t n = recv(fd, buf, size - 1, 0);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

/*
 * Under systemd (Type=notify, contrib/systemd/vnvmed.service): READY=1 once
 * every socket accepts and RPC answers, with MAINPID and a status line, and
 * STOPPING=1 when SIGTERM starts the shutdown. The test plays the manager:
 * a datagram socket named in $NOTIFY_SOCKET.
 */
static void test_service_manager_notifications(void **state)
{
    (void)state;
    struct vnvmed_harness g;
    assert_int_equal(vnvmed_harness_init(&g, "vnvme-notify"), 0);
    char notify[128];
    assert_int_equal(vnvmed_harness_path(&g, "notify", notify, sizeof(notify)), 0);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    assert_true(strlen(notify) < sizeof(a.sun_path));
    memcpy(a.sun_path, notify, strlen(notify) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(vnvmed_harness_write_config(&g,
            "{\"subsystems\": [{\"subsystem\": \"bdev\", \"config\": [\n"
            "  {\"method\": \"bdev_null_create\", \"params\": {\"name\": \"N0\", \"num_blocks\": 1024, \"block_size\": 512}}]},\n"
            " {\"subsystem\": \"nvmf\", \"config\": [\n"
            "  {\"method\": \"nvmf_create_transport\", \"params\": {\"trtype\": \"VFIOUSER\"}},\n"
            "  {\"method\": \"nvmf_create_subsystem\", \"params\": {\"nqn\": \"nqn.2026-12.io.vnvme:n\", \"allow_any_host\": true}},\n"
            "  {\"method\": \"nvmf_subsystem_add_ns\", \"params\": {\"nqn\": \"nqn.2026-12.io.vnvme:n\", \"namespace\": {\"bdev_name\": \"N0\"}}},\n"
            "  {\"method\": \"nvmf_subsystem_add_listener\", \"params\": {\"nqn\": \"nqn.2026-12.io.vnvme:n\",\n"
            "   \"listen_address\": {\"trtype\": \"VFIOUSER\", \"traddr\": \"%s\"}}}]}]}\n",
            g.listen_dir), 0);
    setenv("NOTIFY_SOCKET", notify, 1);
    int rc = vnvmed_harness_start(&g, NULL);
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(rc, 0);
    char msg[512], expect[64];
    assert_true(recv_within(fd, msg, sizeof(msg)) > 0);
    printf("notification: %s\n", msg);
    assert_non_null(strstr(msg, "READY=1\n"));
    snprintf(expect, sizeof(expect), "MAINPID=%d\n", (int)g.pid);
    assert_non_null(strstr(msg, expect));
    assert_non_null(strstr(msg, "STATUS=serving 1 controller socket, RPC on "));
    /* Ready means usable: both sockets are there. */
    struct stat st;
    assert_int_equal(stat(g.sock_path, &st), 0);
    assert_int_equal(stat(g.rpc_path, &st), 0);
    assert_int_equal(vnvmed_harness_stop(&g), 0);
    assert_true(recv_within(fd, msg, sizeof(msg)) > 0);
    assert_non_null(strstr(msg, "STOPPING=1"));
    close(fd);
    vnvmed_harness_cleanup(&g);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pci_function),
        cmocka_unit_test(test_identify_and_io),
        cmocka_unit_test(test_disable_and_shutdown),
        cmocka_unit_test(test_device_reset),
        cmocka_unit_test(test_bus_master_gates_queues),
        cmocka_unit_test(test_killed_client_then_reconnect),
        cmocka_unit_test_teardown(test_bdev_types, close_slots),
        cmocka_unit_test_teardown(test_two_subsystems, close_slots),
        cmocka_unit_test(test_socket_groups),
        cmocka_unit_test(test_service_manager_notifications),
        cmocka_unit_test(test_sigterm_exits_cleanly),
        cmocka_unit_test(test_uring_file_after_stop),
    };
    return cmocka_run_group_tests(tests, vnvmed_fixture_setup, vnvmed_fixture_teardown);
}
