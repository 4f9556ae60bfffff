/* SPDX-License-Identifier: MIT */
/*
 * Server and client in two processes over a real socket: the demo copy-engine
 * device served by a forked child, driven by the client library from here.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "demo_device.h"
#include "demo_driver.h"
#include "vnvme/vfio_user_client.h"

static char dir[64];
static char path[96];
static pid_t server_pid = -1;

static volatile int child_stop;
static void child_on_term(int sig)
{
    (void)sig;
    child_stop = 1;
}

static void start_server(void)
{
    pid_t parent = getpid();
    server_pid = fork();
    assert_true(server_pid >= 0);
    if (server_pid == 0) {
        /* Gone with the test even when a failed assertion skips the teardown (it holds the test's stdout). */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(126);
        struct sigaction sa = {.sa_handler = child_on_term};
        sigaction(SIGTERM, &sa, NULL);
        int err;
        struct demo_device *d = demo_device_create(path, &err);
        if (!d)
            _exit(2);
        int rc = demo_device_run(d, &child_stop);
        demo_device_destroy(d);
        _exit(rc < 0 ? 3 : 0);
    }
    for (int i = 0; i < 500; i++) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            return;
        usleep(10000);
    }
    fail_msg("server socket did not appear");
}

static int stop_server(void)
{
    if (server_pid <= 0)
        return 0;
    kill(server_pid, SIGTERM);
    int status = 0;
    waitpid(server_pid, &status, 0);
    server_pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vnvme-e2e.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/cntrl", dir);
    start_server();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = stop_server();
    unlink(path);
    rmdir(dir);
    /* The server must exit cleanly (0) after SIGTERM, having removed nothing it should keep. */
    return rc == 0 ? 0 : -1;
}

static void test_walkthrough(void **state)
{
    (void)state;
    FILE *out = fopen("/dev/null", "w");
    assert_int_equal(demo_walkthrough(path, out), 0);
    fclose(out);
}

static void test_socket_is_private(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_second_client_is_refused(void **state)
{
    (void)state;
    struct demo_driver drv;
    assert_int_equal(demo_driver_open(&drv, path), 0);
    int err = 0;
    struct vfio_user_client *second = vfio_user_client_connect(path, 2000, &err);
    assert_null(second);
    assert_true(err == -ECONNRESET || err == -EPIPE || err == -EPROTO);
    /* The first one is unaffected. */
    uint32_t id = 0;
    assert_int_equal(demo_reg_read32(&drv, DEMO_REG_ID, &id), 0);
    assert_int_equal(id, DEMO_ID_VALUE);
    demo_driver_close(&drv);
}

static void test_dma_through_messages(void **state)
{
    (void)state;
    struct demo_driver drv;
    assert_int_equal(demo_driver_open(&drv, path), 0);
    /* Share a second range without an fd: the device must use DMA_READ/DMA_WRITE messages. */
    size_t len = 256 << 10;
    uint8_t *priv = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(priv != MAP_FAILED);
    uint64_t iova = 0x200000000ull;
    assert_int_equal(vfio_user_client_dma_map(drv.c, iova, len, VFIO_USER_DMA_F_READ | VFIO_USER_DMA_F_WRITE, -1,
                                              0, priv),
                     0);
    uint64_t served = vfio_user_client_dma_requests_served(drv.c);
    /* fd-backed -> fd-less: the device reads through its mapping and writes by message. */
    for (size_t i = 0; i < 200000; i++)
        drv.mem[i] = (uint8_t)(i ^ (i >> 8));
    assert_int_equal(demo_run(&drv, DEMO_CMD_COPY, DEMO_DRIVER_IOVA, iova + 100, 200000, 0), 0);
    assert_memory_equal(priv + 100, drv.mem, 200000);
    /* fd-less -> fd-backed. */
    memset(drv.mem, 0, 200000);
    assert_int_equal(demo_run(&drv, DEMO_CMD_COPY, iova + 100, DEMO_DRIVER_IOVA + 8, 200000, 0), 0);
    assert_memory_equal(priv + 100, drv.mem + 8, 200000);
    assert_true(vfio_user_client_dma_requests_served(drv.c) > served);
    /* Unmapped again: the device's access now fails cleanly. */
    assert_int_equal(vfio_user_client_dma_unmap(drv.c, iova, len), 0);
    assert_int_equal(demo_run(&drv, DEMO_CMD_FILL, 0, iova, 16, 1), EFAULT);
    munmap(priv, len);
    demo_driver_close(&drv);
}

static bool irq_pending(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1;
}

static void test_msix_mask_and_pba(void **state)
{
    (void)state;
    struct demo_driver drv;
    assert_int_equal(demo_driver_open(&drv, path), 0);
    /*
     * The device's MSI-X table entry is masked from reset and nobody unmasks
     * it (VMMs emulate the table): the completion still interrupts.
     */
    assert_int_equal(demo_reg_write64(&drv, DEMO_REG_DST, DEMO_DRIVER_IOVA), 0);
    assert_int_equal(demo_reg_write32(&drv, DEMO_REG_LEN, 64), 0);
    assert_int_equal(demo_reg_write32(&drv, DEMO_REG_CMD, DEMO_CMD_FILL), 0);
    assert_true(irq_pending(drv.irq_fd, 2000));
    uint64_t ev;
    assert_int_equal(read(drv.irq_fd, &ev, 8), 8);
    /* Masked through SET_IRQS, as QEMU masks: held, and shown in the device's PBA (QEMU reads it). */
    assert_int_equal(vfio_user_client_set_irqs(drv.c, VFIO_PCI_MSIX_IRQ_INDEX,
                                               VFIO_IRQ_SET_ACTION_MASK, 0, 1, NULL, NULL),
                     0);
    assert_int_equal(demo_reg_write32(&drv, DEMO_REG_CMD, DEMO_CMD_FILL), 0);
    assert_false(irq_pending(drv.irq_fd, 100));
    uint32_t pba = 0;
    assert_int_equal(vfio_user_client_region_read(drv.c, VFIO_PCI_BAR5_REGION_INDEX, 0, &pba, 4), 0);
    assert_int_equal(pba & 1, 1);
    /* Unmask: the pending interrupt is delivered and the PBA bit clears. */
    assert_int_equal(vfio_user_client_set_irqs(drv.c, VFIO_PCI_MSIX_IRQ_INDEX,
                                               VFIO_IRQ_SET_ACTION_UNMASK, 0, 1, NULL, NULL),
                     0);
    assert_true(irq_pending(drv.irq_fd, 2000));
    assert_int_equal(vfio_user_client_region_read(drv.c, VFIO_PCI_BAR5_REGION_INDEX, 0, &pba, 4), 0);
    assert_int_equal(pba & 1, 0);
    demo_driver_close(&drv);
}

static void test_client_killed_then_new_client(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct demo_driver drv;
        if (demo_driver_open(&drv, path))
            _exit(1);
        demo_reg_write64(&drv, DEMO_REG_SCRATCH, 0xfeedull);
        /* Leave a command's worth of state behind and die without closing anything. */
        demo_reg_write32(&drv, DEMO_REG_LEN, 4096);
        kill(getpid(), SIGKILL);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    /* The server dropped the dead client's memory and IRQs and serves a new one with state kept. */
    struct demo_driver drv;
    int rc = -1;
    for (int i = 0; i < 100 && rc; i++) {
        rc = demo_driver_open(&drv, path);
        if (rc)
            usleep(20000);
    }
    assert_int_equal(rc, 0);
    uint64_t scratch = 0;
    assert_int_equal(demo_reg_read64(&drv, DEMO_REG_SCRATCH, &scratch), 0);
    assert_int_equal(scratch, 0xfeedull);
    assert_int_equal(demo_run(&drv, DEMO_CMD_FILL, 0, DEMO_DRIVER_IOVA, 4096, 0x33), 0);
    assert_int_equal(drv.mem[4095], 0x33);
    demo_driver_close(&drv);
}

static void test_device_reset(void **state)
{
    (void)state;
    struct demo_driver drv;
    assert_int_equal(demo_driver_open(&drv, path), 0);
    assert_int_equal(demo_reg_write64(&drv, DEMO_REG_SCRATCH, 77), 0);
    assert_int_equal(vfio_user_client_device_reset(drv.c), 0);
    uint64_t scratch = 1;
    assert_int_equal(demo_reg_read64(&drv, DEMO_REG_SCRATCH, &scratch), 0);
    assert_int_equal(scratch, 0);
    uint16_t cmd = 0xffff;
    assert_int_equal(vfio_user_client_region_read(drv.c, VFIO_PCI_CONFIG_REGION_INDEX, 4, &cmd, 2), 0);
    assert_int_equal(cmd & 0x7, 0); /* memory, I/O and bus master back off */
    demo_driver_close(&drv);
}

static void test_server_gone(void **state)
{
    (void)state;
    struct demo_driver drv;
    assert_int_equal(demo_driver_open(&drv, path), 0);
    assert_int_equal(stop_server(), 0);
    /* Every call now fails promptly instead of hanging. */
    uint32_t id;
    int rc = demo_reg_read32(&drv, DEMO_REG_ID, &id);
    assert_true(rc < 0);
    demo_driver_close(&drv);
    /* The server removed its socket on the way out; a new one starts on the same path. */
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0);
    start_server();
    assert_int_equal(demo_driver_open(&drv, path), 0);
    demo_driver_close(&drv);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_walkthrough, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_is_private, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_client_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_through_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msix_mask_and_pba, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_killed_then_new_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_gone, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
