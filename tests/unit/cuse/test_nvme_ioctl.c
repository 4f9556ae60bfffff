/* SPDX-License-Identifier: MIT */
/*
 * The NVMe ioctl layer (lib/cuse/nvme_ioctl.c) against the built vnvmed,
 * through the userspace driver: every supported ioctl on the controller and
 * namespace devices, status/result semantics, the per-ioctl transfer limits,
 * resets and rescan. No kernel CUSE needed. Tests share one daemon and run
 * in order (the hot-added namespace and the reset checks come last).
 */
#include <errno.h>
#include <sched.h>
#include <linux/fs.h>
#include <linux/nvme_ioctl.h>
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

#include "vnvme/nvme_cuse.h"
#include "vnvme/nvme_host.h"
#include "vnvmed_harness.h"

#define NQN "nqn.2026-11.io.vnvme:cuse"
#define NS1_BLOCKS 131072u /* 512-byte blocks, 64 MiB */
#define NS2_BLOCKS 4096u   /* 4096-byte blocks, 16 MiB */

static struct vnvmed_harness vnvmed;

static struct vnvme_ctrlr *ctrlr;
static struct vnvme_cuse_ctrlr cc;
static struct vnvme_cuse_ioctl_dev dev_c, dev_n1, dev_n2;
static int ns_changed_calls;

static int write_config(void)
{
    return vnvmed_harness_write_config(&vnvmed,
            "{\"subsystems\": [\n"
            "  {\"subsystem\": \"bdev\", \"config\": [\n"
            "    {\"method\": \"bdev_malloc_create\", \"params\": {\"name\": \"Malloc0\", \"num_blocks\": %u, \"block_size\": 512}},\n"
            "    {\"method\": \"bdev_malloc_create\", \"params\": {\"name\": \"Malloc1\", \"num_blocks\": %u, \"block_size\": 4096}}]},\n"
            "  {\"subsystem\": \"nvmf\", \"config\": [\n"
            "    {\"method\": \"nvmf_create_transport\", \"params\": {\"trtype\": \"VFIOUSER\"}},\n"
            "    {\"method\": \"nvmf_create_subsystem\",\n"
            "     \"params\": {\"nqn\": \"%s\", \"serial_number\": \"CUSETEST1\", \"allow_any_host\": true}},\n"
            "    {\"method\": \"nvmf_subsystem_add_ns\", \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Malloc0\", \"nsid\": 1}}},\n"
            "    {\"method\": \"nvmf_subsystem_add_ns\", \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Malloc1\", \"nsid\": 2}}},\n"
            "    {\"method\": \"nvmf_subsystem_add_listener\",\n"
            "     \"params\": {\"nqn\": \"%s\", \"listen_address\": {\"trtype\": \"VFIOUSER\", \"traddr\": \"%s\"}}}]}]}\n",
            NS1_BLOCKS, NS2_BLOCKS, NQN, NQN, NQN, NQN, vnvmed.listen_dir);
}

static void on_ns_changed(void *arg)
{
    (void)arg;
    ns_changed_calls++;
}

static int group_setup(void **state)
{
    (void)state;
    if (vnvmed_harness_init(&vnvmed, "vnvme-cuse-test") != 0 || write_config() != 0 ||
        vnvmed_harness_start(&vnvmed, NULL) != 0)
        return -1;
    struct vnvme_ctrlr_opts opts = {.dma_pool_size = 16u << 20};
    if (vnvme_ctrlr_attach(vnvmed.trid, &opts, &ctrlr) != 0)
        return -1;
    vnvme_cuse_ctrlr_init(&cc, ctrlr);
    cc.ns_changed = on_ns_changed;
    dev_c = (struct vnvme_cuse_ioctl_dev){.cc = &cc, .nsid = 0};
    dev_n1 = (struct vnvme_cuse_ioctl_dev){.cc = &cc, .nsid = 1};
    dev_n2 = (struct vnvme_cuse_ioctl_dev){.cc = &cc, .nsid = 2};
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    vnvme_cuse_ioctl_dev_fini(&dev_c);
    vnvme_cuse_ioctl_dev_fini(&dev_n1);
    vnvme_cuse_ioctl_dev_fini(&dev_n2);
    if (ctrlr) {
        vnvme_cuse_ctrlr_fini(&cc);
        vnvme_ctrlr_detach(ctrlr);
    }
    vnvmed_harness_cleanup(&vnvmed);
    return 0;
}

static int rpc(const char *method, const char *params_json)
{
    return vnvmed_harness_rpc(&vnvmed, method, params_json, NULL);
}

/* ---- helpers: what the CUSE layer does, minus FUSE: plan, fetch, exec ---- */

static long do_ioctl(struct vnvme_cuse_ioctl_dev *d, unsigned int cmd, void *arg, size_t arg_len, void *data,
                     size_t data_cap, void *meta, size_t meta_cap)
{
    struct vnvme_ioctl_xfer x;
    int rc = vnvme_ioctl_plan(d, cmd, false, arg, arg_len, &x);
    if (rc)
        return rc;
    return vnvme_ioctl_exec(d, cmd, false, arg, arg_len, data, data_cap, meta, meta_cap);
}

static long passthru(struct vnvme_cuse_ioctl_dev *d, unsigned int cmd, struct nvme_passthru_cmd *c, void *data)
{
    if (data)
        c->addr = (uint64_t)(uintptr_t)data;
    return do_ioctl(d, cmd, c, sizeof(*c), data, c->data_len, NULL, 0);
}

static long submit_io(struct vnvme_cuse_ioctl_dev *d, uint8_t opc, uint64_t slba, uint16_t nblocks, void *buf,
                      size_t cap)
{
    struct nvme_user_io io = {.opcode = opc, .nblocks = nblocks, .slba = slba, .addr = (uint64_t)(uintptr_t)buf};
    return do_ioctl(d, NVME_IOCTL_SUBMIT_IO, &io, sizeof(io), buf, cap, NULL, 0);
}

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
}

static uint32_t get_feature(struct vnvme_cuse_ioctl_dev *d, uint8_t fid)
{
    struct nvme_passthru_cmd c = {.opcode = NVME_ADMIN_GET_FEATURES, .cdw10 = fid, .result = 0xdeadbeef};
    assert_int_equal(passthru(d, NVME_IOCTL_ADMIN_CMD, &c, NULL), 0);
    return c.result;
}

/* ---- tests ---- */

static void test_ioctl_id(void **state)
{
    (void)state;
    assert_int_equal(do_ioctl(&dev_n1, NVME_IOCTL_ID, NULL, 0, NULL, 0, NULL, 0), 1);
    assert_int_equal(do_ioctl(&dev_n2, NVME_IOCTL_ID, NULL, 0, NULL, 0, NULL, 0), 2);
    assert_int_equal(do_ioctl(&dev_c, NVME_IOCTL_ID, NULL, 0, NULL, 0, NULL, 0), -ENOTTY);
}

static void test_admin_identify_and_status(void **state)
{
    (void)state;
    uint8_t *buf = calloc(1, 4096);
    struct nvme_passthru_cmd c = {.opcode = NVME_ADMIN_IDENTIFY, .cdw10 = NVME_ID_CNS_CTRL, .data_len = 4096};
    struct vnvme_ioctl_xfer x;
    assert_int_equal(vnvme_ioctl_plan(&dev_c, NVME_IOCTL_ADMIN_CMD, false, NULL, 0, &x), 0);
    assert_int_equal(x.arg_in, 72);
    assert_int_equal(x.arg_out, 72);
    c.addr = (uint64_t)(uintptr_t)buf;
    assert_int_equal(vnvme_ioctl_plan(&dev_c, NVME_IOCTL_ADMIN_CMD, false, &c, sizeof(c), &x), 0);
    assert_int_equal(x.data_len, 4096);
    assert_false(x.data_to_dev);
    assert_int_equal(passthru(&dev_c, NVME_IOCTL_ADMIN_CMD, &c, buf), 0);
    assert_memory_equal(((struct nvme_id_ctrl *)buf)->sn, "CUSETEST1", 9);
    /* The namespace devices take admin commands too (the kernel's nvme_ctrl_ioctl). */
    memset(buf, 0, 4096);
    c.nsid = 2;
    c.cdw10 = NVME_ID_CNS_NS;
    assert_int_equal(passthru(&dev_n1, NVME_IOCTL_ADMIN_CMD, &c, buf), 0);
    assert_int_equal(((struct nvme_id_ns *)buf)->nsze, NS2_BLOCKS);

    /* A failing command returns its status field (positive), not -errno, and still writes result. */
    struct nvme_passthru_cmd bad = {.opcode = NVME_ADMIN_FORMAT_NVM, .result = 0x12345678};
    long st = passthru(&dev_c, NVME_IOCTL_ADMIN_CMD, &bad, NULL);
    assert_true(st > 0);
    assert_int_equal(st & 0x7ff, NVME_SC_INVALID_OPCODE);
    assert_int_equal(bad.result, 0);

    /* Fused commands are refused; so are bidirectional opcodes, on every passthrough ioctl. */
    struct nvme_passthru_cmd fused = {.opcode = NVME_ADMIN_IDENTIFY, .flags = 1};
    assert_int_equal(passthru(&dev_c, NVME_IOCTL_ADMIN_CMD, &fused, NULL), -EINVAL);
    struct nvme_passthru_cmd bidir = {.opcode = 0x03, .data_len = 512};
    assert_int_equal(passthru(&dev_c, NVME_IOCTL_ADMIN_CMD, &bidir, buf), -EINVAL);
    struct nvme_passthru_cmd64 bidir64 = {.opcode = 0x83, .nsid = 1, .data_len = 512, .addr = (uintptr_t)buf};
    assert_int_equal(do_ioctl(&dev_n1, NVME_IOCTL_IO64_CMD, &bidir64, sizeof(bidir64), buf, 512, NULL, 0), -EINVAL);
    /* Data without an address. */
    struct nvme_passthru_cmd noaddr = {.opcode = NVME_ADMIN_IDENTIFY, .cdw10 = 1, .data_len = 4096};
    assert_int_equal(do_ioctl(&dev_c, NVME_IOCTL_ADMIN_CMD, &noaddr, sizeof(noaddr), buf, 4096, NULL, 0), -EFAULT);
    free(buf);
}

/*
 * Bytes a command does not write come back as the caller left them (as with
 * the kernel, which maps the caller's buffer), never as what an earlier
 * command left in the driver's DMA memory.
 */
static void test_untouched_bytes_come_back(void **state)
{
    (void)state;
    uint8_t *buf = malloc(8192);
    fill(buf, 8192, 9);
    assert_int_equal(submit_io(&dev_n1, NVME_NVM_WRITE, 64, 15, buf, 8192), 0);
    assert_int_equal(submit_io(&dev_n1, NVME_NVM_READ, 64, 15, buf, 8192), 0); /* DMA memory now holds it */
    memset(buf, 0xee, 8192);
    struct nvme_passthru_cmd c = {.opcode = NVME_ADMIN_IDENTIFY, .cdw10 = NVME_ID_CNS_CTRL, .data_len = 8192,
                                  .addr = (uint64_t)(uintptr_t)buf};
    assert_int_equal(passthru(&dev_c, NVME_IOCTL_ADMIN_CMD, &c, buf), 0);
    assert_memory_equal(((struct nvme_id_ctrl *)buf)->sn, "CUSETEST1", 9);
    for (size_t i = 4096; i < 8192; i++)
        assert_int_equal(buf[i], 0xee);
    free(buf);
}

static void test_result_32_and_64(void **state)
{
    (void)state;
    /* Number of Queues: CDW0 = NCQA << 16 | NSQA, never 0 for a controller with I/O queues. */
    uint32_t nq = get_feature(&dev_c, NVME_FEAT_NUMBER_OF_QUEUES);
    assert_int_not_equal(nq, 0xdeadbeef);
    assert_int_not_equal(nq, 0);
    struct nvme_passthru_cmd64 c64 = {.opcode = NVME_ADMIN_GET_FEATURES, .cdw10 = NVME_FEAT_NUMBER_OF_QUEUES,
                                      .result = 0xffffffffffffffffull};
    assert_int_equal(do_ioctl(&dev_c, NVME_IOCTL_ADMIN64_CMD, &c64, sizeof(c64), NULL, 0, NULL, 0), 0);
    assert_int_equal(c64.result, (uint64_t)nq); /* cdw0 | cdw1 << 32, cdw1 = 0 */
    struct vnvme_ioctl_xfer x;
    assert_int_equal(vnvme_ioctl_plan(&dev_c, NVME_IOCTL_ADMIN64_CMD, false, NULL, 0, &x), 0);
    assert_int_equal(x.arg_in, 80);
    assert_int_equal(x.arg_out, 80);
}

/* ---- access control (Linux's nvme_cmd_allowed) ---- */

static int access_as(struct vnvme_cuse_ioctl_dev *d, unsigned int cmd, const void *arg, size_t len, bool writable,
                     int privileged)
{
    struct vnvme_ioctl_caller caller = {.open_for_write = writable, .pid = 0, .privileged = privileged};
    return vnvme_ioctl_access(d, cmd, arg, len, &caller);
}

static int admin_access(uint8_t opc, uint32_t cdw10, int privileged)
{
    struct nvme_passthru_cmd c = {.opcode = opc, .cdw10 = cdw10};
    return access_as(&dev_c, NVME_IOCTL_ADMIN_CMD, &c, sizeof(c), true, privileged);
}

static int io_access(uint8_t opc, bool writable, int privileged)
{
    struct nvme_passthru_cmd c = {.opcode = opc, .nsid = 1};
    return access_as(&dev_n1, NVME_IOCTL_IO_CMD, &c, sizeof(c), writable, privileged);
}

static void test_access_admin_commands(void **state)
{
    (void)state;
    /* The Identify CNS values Linux lets anyone send, and only those. */
    const uint8_t open_cns[] = {NVME_ID_CNS_NS, NVME_ID_CNS_CTRL, NVME_ID_CNS_CS_NS, NVME_ID_CNS_CS_CTRL, 0x08};
    for (size_t i = 0; i < sizeof(open_cns); i++)
        assert_int_equal(admin_access(NVME_ADMIN_IDENTIFY, open_cns[i], 0), 0);
    assert_int_equal(admin_access(NVME_ADMIN_IDENTIFY, NVME_ID_CNS_ACTIVE_NS_LIST, 0), -EACCES);
    assert_int_equal(admin_access(NVME_ADMIN_IDENTIFY, NVME_ID_CNS_CTRL_LIST, 0), -EACCES);
    assert_int_equal(admin_access(NVME_ADMIN_GET_LOG_PAGE, NVME_LOG_SMART, 0), -EACCES);
    assert_int_equal(admin_access(NVME_ADMIN_GET_FEATURES, NVME_FEAT_NUMBER_OF_QUEUES, 0), -EACCES);
    assert_int_equal(admin_access(0xc0, 0, 0), -EACCES); /* vendor specific */
    assert_int_equal(admin_access(0x7f, 0, 0), -EACCES); /* fabrics */
    /* With CAP_SYS_ADMIN: all of it. */
    assert_int_equal(admin_access(NVME_ADMIN_GET_LOG_PAGE, NVME_LOG_SMART, 1), 0);
    assert_int_equal(admin_access(0xc0, 0, 1), 0);
    /* The 64-bit variant and admin commands through a namespace device follow the same rule. */
    struct nvme_passthru_cmd64 c64 = {.opcode = NVME_ADMIN_GET_LOG_PAGE};
    assert_int_equal(access_as(&dev_n1, NVME_IOCTL_ADMIN64_CMD, &c64, sizeof(c64), true, 0), -EACCES);
    c64.opcode = NVME_ADMIN_IDENTIFY;
    c64.cdw10 = NVME_ID_CNS_NS;
    assert_int_equal(access_as(&dev_n1, NVME_IOCTL_ADMIN64_CMD, &c64, sizeof(c64), false, 0), 0);
    /* Controller operations need the capability; queries do not. */
    assert_int_equal(access_as(&dev_c, NVME_IOCTL_RESET, NULL, 0, true, 0), -EACCES);
    assert_int_equal(access_as(&dev_c, NVME_IOCTL_SUBSYS_RESET, NULL, 0, true, 0), -EACCES);
    assert_int_equal(access_as(&dev_c, NVME_IOCTL_RESCAN, NULL, 0, true, 0), -EACCES);
    assert_int_equal(access_as(&dev_c, NVME_IOCTL_RESET, NULL, 0, false, 1), 0);
    assert_int_equal(access_as(&dev_n1, NVME_IOCTL_ID, NULL, 0, false, 0), 0);
    assert_int_equal(access_as(&dev_n1, BLKGETSIZE64, NULL, 0, false, 0), 0);
}

static void test_access_io_commands(void **state)
{
    (void)state;
    /* vnvmed's effects log lists these; reading needs no write access. */
    assert_int_equal(io_access(NVME_NVM_READ, false, 0), 0);
    assert_int_equal(io_access(NVME_NVM_FLUSH, false, 0), 0);
    /* Data to the device (Compare too: its opcode says so) or logical blocks changed: a file opened for writing. */
    assert_int_equal(io_access(NVME_NVM_COMPARE, false, 0), -EACCES);
    assert_int_equal(io_access(NVME_NVM_COMPARE, true, 0), 0);
    assert_int_equal(io_access(NVME_NVM_WRITE, false, 0), -EACCES);
    assert_int_equal(io_access(NVME_NVM_WRITE, true, 0), 0);
    assert_int_equal(io_access(NVME_NVM_WRITE_ZEROES, false, 0), -EACCES);
    assert_int_equal(io_access(NVME_NVM_WRITE_ZEROES, true, 0), 0);
    assert_int_equal(io_access(NVME_NVM_DATASET_MANAGEMENT, false, 0), -EACCES); /* LBCC in the log */
    assert_int_equal(io_access(NVME_NVM_DATASET_MANAGEMENT, true, 0), 0);
    /* Not in the log (write uncorrectable is not supported here), vendor specific: the capability decides. */
    assert_int_equal(io_access(NVME_NVM_WRITE_UNCORRECTABLE, true, 0), -EACCES);
    assert_int_equal(io_access(0x81, true, 0), -EACCES);
    assert_int_equal(io_access(0x81, true, 1), 0);
    assert_int_equal(io_access(NVME_NVM_WRITE, false, 1), 0);
    /* SUBMIT_IO: the same rule. */
    struct nvme_user_io io = {.opcode = NVME_NVM_WRITE};
    assert_int_equal(access_as(&dev_n1, NVME_IOCTL_SUBMIT_IO, &io, sizeof(io), false, 0), -EACCES);
    assert_int_equal(access_as(&dev_n1, NVME_IOCTL_SUBMIT_IO, &io, sizeof(io), true, 0), 0);
    io.opcode = NVME_NVM_READ;
    assert_int_equal(access_as(&dev_n1, NVME_IOCTL_SUBMIT_IO, &io, sizeof(io), false, 0), 0);
    /* A short argument is a fault, not a pass. */
    assert_int_equal(access_as(&dev_n1, NVME_IOCTL_SUBMIT_IO, &io, sizeof(io) - 1, true, 1), -EFAULT);
}

/* The rule alone, with effects a controller might report. */
static void test_access_effects_rule(void **state)
{
    (void)state;
    struct nvme_sqe c = {.opc = 0x02};
    assert_false(vnvme_nvme_cmd_allowed_unprivileged(false, &c, 0, true)); /* not supported */
    assert_true(vnvme_nvme_cmd_allowed_unprivileged(false, &c, NVME_CMD_EFFECTS_CSUPP, false));
    /* Scope and UUID selection bits are harmless; NCC, NIC, CCC and CSE are not. */
    assert_true(vnvme_nvme_cmd_allowed_unprivileged(false, &c, NVME_CMD_EFFECTS_CSUPP | 1u << 19 | 1u << 20, false));
    assert_false(vnvme_nvme_cmd_allowed_unprivileged(false, &c, NVME_CMD_EFFECTS_CSUPP | NVME_CMD_EFFECTS_NCC, true));
    assert_false(vnvme_nvme_cmd_allowed_unprivileged(false, &c, NVME_CMD_EFFECTS_CSUPP | NVME_CMD_EFFECTS_CCC, true));
    assert_false(vnvme_nvme_cmd_allowed_unprivileged(false, &c, NVME_CMD_EFFECTS_CSUPP | 1u << 16, true));
    /* An odd opcode transfers to the device: a write, whatever its effects say. */
    c.opc = 0x0d;
    assert_false(vnvme_nvme_cmd_allowed_unprivileged(false, &c, NVME_CMD_EFFECTS_CSUPP, false));
    assert_true(vnvme_nvme_cmd_allowed_unprivileged(false, &c, NVME_CMD_EFFECTS_CSUPP, true));
}

/* The privilege comes from /proc: root with its capabilities yes; after dropping them, or in a new user namespace, no. */
static void test_access_privilege_lookup(void **state)
{
    (void)state;
    assert_false(vnvme_cuse_pid_privileged(0));
    assert_false(vnvme_cuse_pid_privileged(-1));
    assert_false(vnvme_cuse_pid_privileged(0x3fffffff)); /* no such process */
    bool root = geteuid() == 0;
    assert_int_equal(vnvme_cuse_pid_privileged(getpid()), root);
    if (!root)
        return;
    for (int variant = 0; variant < 2; variant++) {
        int ready[2], done[2];
        assert_int_equal(pipe(ready), 0);
        assert_int_equal(pipe(done), 0);
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
            int ok = variant == 0 ? setresuid(65534, 65534, 65534) : unshare(CLONE_NEWUSER);
            char b = ok == 0 ? 'y' : 'n';
            (void)!write(ready[1], &b, 1);
            (void)!read(done[0], &b, 1);
            _exit(0);
        }
        char b = 0;
        assert_int_equal(read(ready[0], &b, 1), 1);
        if (b == 'y') /* a kernel without unprivileged user namespaces says no to the second: nothing to check */
            assert_false(vnvme_cuse_pid_privileged(child));
        assert_int_equal(write(done[1], "x", 1), 1);
        waitpid(child, NULL, 0);
        close(ready[0]);
        close(ready[1]);
        close(done[0]);
        close(done[1]);
    }
}

static void test_io_passthru(void **state)
{
    (void)state;
    uint8_t *w = malloc(8192), *r = calloc(1, 8192);
    fill(w, 8192, 7);
    struct nvme_passthru_cmd wc = {.opcode = NVME_NVM_WRITE, .nsid = 1, .data_len = 8192, .cdw10 = 100, .cdw12 = 15};
    struct vnvme_ioctl_xfer x;
    wc.addr = (uintptr_t)w;
    assert_int_equal(vnvme_ioctl_plan(&dev_n1, NVME_IOCTL_IO_CMD, false, &wc, sizeof(wc), &x), 0);
    assert_true(x.data_to_dev);
    assert_int_equal(passthru(&dev_n1, NVME_IOCTL_IO_CMD, &wc, w), 0);
    struct nvme_passthru_cmd64 rc64 = {.opcode = NVME_NVM_READ, .nsid = 1, .data_len = 8192, .cdw10 = 100,
                                       .cdw12 = 15, .addr = (uintptr_t)r, .result = 77};
    assert_int_equal(do_ioctl(&dev_n1, NVME_IOCTL_IO64_CMD, &rc64, sizeof(rc64), r, 8192, NULL, 0), 0);
    assert_memory_equal(w, r, 8192);
    assert_int_equal(rc64.result, 0);
    /* Out of range LBA: NVMe status, positive. */
    struct nvme_passthru_cmd oor = {.opcode = NVME_NVM_READ, .nsid = 2, .data_len = 4096, .cdw10 = NS2_BLOCKS};
    long st = passthru(&dev_n2, NVME_IOCTL_IO_CMD, &oor, r);
    assert_true(st > 0);
    assert_int_equal(st & 0x7ff, NVME_SC_LBA_OUT_OF_RANGE);
    /* Another namespace's NSID through a namespace device. */
    struct nvme_passthru_cmd other = {.opcode = NVME_NVM_READ, .nsid = 2, .data_len = 512};
    assert_int_equal(passthru(&dev_n1, NVME_IOCTL_IO_CMD, &other, r), -EINVAL);
    /* The controller device: IO_CMD needs exactly one namespace (we have two); IO64 is not handled there. */
    struct nvme_passthru_cmd onc = {.opcode = NVME_NVM_READ, .nsid = 1, .data_len = 512};
    assert_int_equal(passthru(&dev_c, NVME_IOCTL_IO_CMD, &onc, r), -EINVAL);
    assert_int_equal(vnvme_ioctl_plan(&dev_c, NVME_IOCTL_IO64_CMD, false, NULL, 0, &x), -ENOTTY);
    free(w);
    free(r);
}

static void test_passthru_limits(void **state)
{
    (void)state;
    uint8_t *buf = calloc(1, 131072);
    struct vnvme_ioctl_xfer x;
    struct nvme_passthru_cmd c = {.opcode = NVME_ADMIN_GET_LOG_PAGE, .addr = (uintptr_t)buf};
    c.data_len = VNVME_CUSE_PASSTHRU_MAX_XFER;
    assert_int_equal(VNVME_CUSE_PASSTHRU_MAX_XFER, 131000);
    assert_int_equal(vnvme_ioctl_plan(&dev_c, NVME_IOCTL_ADMIN_CMD, false, &c, sizeof(c), &x), 0);
    c.data_len++;
    assert_int_equal(vnvme_ioctl_plan(&dev_c, NVME_IOCTL_ADMIN_CMD, false, &c, sizeof(c), &x), -EINVAL);
    assert_int_equal(passthru(&dev_c, NVME_IOCTL_ADMIN_CMD, &c, buf), -EINVAL);
    /* Metadata counts against the same cap. */
    c.data_len = 131000 - 8;
    c.metadata_len = 8;
    c.metadata = (uintptr_t)buf;
    assert_int_equal(vnvme_ioctl_plan(&dev_c, NVME_IOCTL_ADMIN_CMD, false, &c, sizeof(c), &x), 0);
    c.metadata_len = 9;
    assert_int_equal(vnvme_ioctl_plan(&dev_c, NVME_IOCTL_ADMIN_CMD, false, &c, sizeof(c), &x), -EINVAL);
    /* Huge values must not wrap. */
    c.data_len = 0xffffffffu;
    c.metadata_len = 2;
    assert_int_equal(vnvme_ioctl_plan(&dev_c, NVME_IOCTL_ADMIN_CMD, false, &c, sizeof(c), &x), -EINVAL);

    struct nvme_passthru_cmd64 c64 = {.opcode = NVME_NVM_READ, .nsid = 1, .addr = (uintptr_t)buf};
    c64.data_len = VNVME_CUSE_PASSTHRU64_MAX_XFER;
    assert_int_equal(VNVME_CUSE_PASSTHRU64_MAX_XFER, 130992);
    assert_int_equal(vnvme_ioctl_plan(&dev_n1, NVME_IOCTL_IO64_CMD, false, &c64, sizeof(c64), &x), 0);
    c64.data_len++;
    assert_int_equal(vnvme_ioctl_plan(&dev_n1, NVME_IOCTL_IO64_CMD, false, &c64, sizeof(c64), &x), -EINVAL);
    /* A real transfer at the cap: 255 blocks of 512 (130560 bytes) through IO_CMD. */
    struct nvme_passthru_cmd rd = {.opcode = NVME_NVM_READ, .nsid = 1, .data_len = 255 * 512, .cdw12 = 254};
    assert_int_equal(passthru(&dev_n1, NVME_IOCTL_IO_CMD, &rd, buf), 0);
    /* A struct shorter than the ioctl's, or buffers smaller than the plan. */
    struct nvme_passthru_cmd small = {.opcode = NVME_ADMIN_IDENTIFY, .cdw10 = 1, .data_len = 4096,
                                      .addr = (uintptr_t)buf};
    assert_int_equal(vnvme_ioctl_plan(&dev_c, NVME_IOCTL_ADMIN_CMD, false, &small, 40, &x), -EFAULT);
    assert_int_equal(vnvme_ioctl_exec(&dev_c, NVME_IOCTL_ADMIN_CMD, false, &small, sizeof(small), buf, 4095, NULL, 0),
                     -EINVAL);
    free(buf);
}

static void test_submit_io(void **state)
{
    (void)state;
    uint8_t *w = malloc(131072), *r = calloc(1, 131072);
    fill(w, 131072, 11);
    struct vnvme_ioctl_xfer x;
    assert_int_equal(vnvme_ioctl_plan(&dev_n1, NVME_IOCTL_SUBMIT_IO, false, NULL, 0, &x), 0);
    assert_int_equal(x.arg_in, 48);
    assert_int_equal(x.arg_out, 0);
    /* Writes carry the struct in with the data: 255 blocks fit, 256 do not. */
    assert_int_equal(submit_io(&dev_n1, NVME_NVM_WRITE, 1000, 254, w, 131072), 0);
    assert_int_equal(submit_io(&dev_n1, NVME_NVM_WRITE, 1255, 0, w + 255 * 512, 512), 0);
    assert_int_equal(submit_io(&dev_n1, NVME_NVM_WRITE, 1000, 255, w, 131072), -EINVAL);
    /* A full 128 KiB read: the reply carries only data. */
    assert_int_equal(submit_io(&dev_n1, NVME_NVM_READ, 1000, 255, r, 131072), 0);
    assert_memory_equal(w, r, 131072);
    assert_int_equal(submit_io(&dev_n1, NVME_NVM_READ, 1000, 256, r, 131072), -EINVAL);
    /* Compare: same data succeeds, other data is a Compare Failure status. */
    assert_int_equal(submit_io(&dev_n1, NVME_NVM_COMPARE, 1000, 7, w, 4096), 0);
    long st = submit_io(&dev_n1, NVME_NVM_COMPARE, 1001, 7, w, 4096);
    assert_true(st > 0);
    assert_int_equal(st & 0x7ff, NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILURE));

    /* 4096-byte format: nblocks is 0's based, 32 blocks = 128 KiB read. */
    memset(r, 0, 131072);
    assert_int_equal(submit_io(&dev_n2, NVME_NVM_WRITE, 10, 30, w, 131072), 0);
    assert_int_equal(submit_io(&dev_n2, NVME_NVM_READ, 10, 30, r, 131072), 0);
    assert_memory_equal(w, r, 31 * 4096);
    assert_int_equal(submit_io(&dev_n2, NVME_NVM_READ, 0, 31, r, 131072), 0);
    assert_int_equal(submit_io(&dev_n2, NVME_NVM_READ, 0, 32, r, 131072), -EINVAL);
    assert_int_equal(submit_io(&dev_n2, NVME_NVM_WRITE, 0, 31, w, 131072), -EINVAL);
    assert_int_equal(vnvme_ioctl_plan(&dev_n2, NVME_IOCTL_SUBMIT_IO, false,
                                      &(struct nvme_user_io){.opcode = NVME_NVM_READ, .nblocks = 3, .addr = 1}, 48,
                                      &x),
                     0);
    assert_int_equal(x.data_len, 4 * 4096);
    assert_false(x.data_to_dev);
    /* Beyond the end: NVMe status. */
    st = submit_io(&dev_n2, NVME_NVM_READ, NS2_BLOCKS, 0, r, 4096);
    assert_int_equal(st & 0x7ff, NVME_SC_LBA_OUT_OF_RANGE);

    /* Bad requests. */
    struct nvme_user_io io = {.opcode = NVME_NVM_READ, .addr = (uintptr_t)r, .metadata = (uintptr_t)w};
    assert_int_equal(do_ioctl(&dev_n1, NVME_IOCTL_SUBMIT_IO, &io, sizeof(io), r, 512, w, 512), -EINVAL);
    io.metadata = 0;
    io.flags = 1;
    assert_int_equal(do_ioctl(&dev_n1, NVME_IOCTL_SUBMIT_IO, &io, sizeof(io), r, 512, NULL, 0), -EINVAL);
    io.flags = 0;
    io.opcode = NVME_NVM_FLUSH;
    assert_int_equal(do_ioctl(&dev_n1, NVME_IOCTL_SUBMIT_IO, &io, sizeof(io), r, 512, NULL, 0), -EINVAL);
    io.opcode = NVME_NVM_READ;
    io.addr = 0;
    assert_int_equal(do_ioctl(&dev_n1, NVME_IOCTL_SUBMIT_IO, &io, sizeof(io), r, 512, NULL, 0), -EFAULT);
    /* The controller device has no SUBMIT_IO (the kernel's nvme_dev_ioctl). */
    assert_int_equal(vnvme_ioctl_plan(&dev_c, NVME_IOCTL_SUBMIT_IO, false, NULL, 0, &x), -ENOTTY);
    free(w);
    free(r);
}

static void test_block_queries(void **state)
{
    (void)state;
    unsigned long sectors = 0;
    uint64_t bytes = 0;
    int ssz = 0;
    unsigned int pbsz = 0;
    assert_int_equal(do_ioctl(&dev_n1, BLKGETSIZE, &sectors, sizeof(sectors), NULL, 0, NULL, 0), 0);
    assert_int_equal(sectors, NS1_BLOCKS);
    assert_int_equal(do_ioctl(&dev_n2, BLKGETSIZE, &sectors, sizeof(sectors), NULL, 0, NULL, 0), 0);
    assert_int_equal(sectors, NS2_BLOCKS * 8u); /* always 512-byte units */
    assert_int_equal(do_ioctl(&dev_n2, BLKGETSIZE64, &bytes, sizeof(bytes), NULL, 0, NULL, 0), 0);
    assert_int_equal(bytes, (uint64_t)NS2_BLOCKS * 4096u);
    assert_int_equal(do_ioctl(&dev_n1, BLKSSZGET, &ssz, sizeof(ssz), NULL, 0, NULL, 0), 0);
    assert_int_equal(ssz, 512);
    assert_int_equal(do_ioctl(&dev_n2, BLKSSZGET, &ssz, sizeof(ssz), NULL, 0, NULL, 0), 0);
    assert_int_equal(ssz, 4096);
    assert_int_equal(do_ioctl(&dev_n2, BLKPBSZGET, &pbsz, sizeof(pbsz), NULL, 0, NULL, 0), 0);
    assert_int_equal(pbsz, 4096);
    struct vnvme_ioctl_xfer x;
    assert_int_equal(vnvme_ioctl_plan(&dev_n1, BLKGETSIZE64, false, NULL, 0, &x), 0);
    assert_int_equal(x.arg_in, 0);
    assert_int_equal(x.arg_out, 8);
    /* Not on the controller device; nor into too small an argument. */
    assert_int_equal(do_ioctl(&dev_c, BLKGETSIZE, &sectors, sizeof(sectors), NULL, 0, NULL, 0), -ENOTTY);
    assert_int_equal(vnvme_ioctl_exec(&dev_n1, BLKGETSIZE64, false, &ssz, sizeof(ssz), NULL, 0, NULL, 0), -EFAULT);
}

static void test_unknown_compat_and_wrong_device(void **state)
{
    (void)state;
    struct vnvme_ioctl_xfer x;
    assert_int_equal(vnvme_ioctl_plan(&dev_n1, 0x5401 /* TCGETS */, false, NULL, 0, &x), -ENOTTY);
    assert_int_equal(vnvme_ioctl_plan(&dev_c, NVME_IOCTL_IO64_CMD_VEC, false, NULL, 0, &x), -ENOTTY);
    assert_int_equal(vnvme_ioctl_plan(&dev_n1, NVME_IOCTL_IO64_CMD_VEC, false, NULL, 0, &x), -ENOTTY);
    /* 32-bit callers: nothing is translated. */
    assert_int_equal(vnvme_ioctl_plan(&dev_n1, NVME_IOCTL_ID, true, NULL, 0, &x), -ENOSYS);
    assert_int_equal(vnvme_ioctl_exec(&dev_c, NVME_IOCTL_ADMIN_CMD, true, NULL, 0, NULL, 0, NULL, 0), -ENOSYS);
    /* Controller-only ioctls on a namespace device. */
    assert_int_equal(do_ioctl(&dev_n1, NVME_IOCTL_RESET, NULL, 0, NULL, 0, NULL, 0), -ENOTTY);
    assert_int_equal(do_ioctl(&dev_n1, NVME_IOCTL_SUBSYS_RESET, NULL, 0, NULL, 0, NULL, 0), -ENOTTY);
    assert_int_equal(do_ioctl(&dev_n1, NVME_IOCTL_RESCAN, NULL, 0, NULL, 0, NULL, 0), -ENOTTY);
}

static void test_read_write_syscalls(void **state)
{
    (void)state;
    uint8_t *w = malloc(16384), *r = calloc(1, 16384);
    fill(w, 16384, 3);
    assert_int_equal(vnvme_cuse_ns_rw(&dev_n2, true, w, 16384, 8 * 4096), 16384);
    assert_int_equal(vnvme_cuse_ns_rw(&dev_n2, false, r, 16384, 8 * 4096), 16384);
    assert_memory_equal(w, r, 16384);
    assert_int_equal(vnvme_cuse_ns_rw(&dev_n2, false, r, 4096, 512), -EINVAL);
    assert_int_equal(vnvme_cuse_ns_rw(&dev_n2, false, r, 1000, 0), -EINVAL);
    assert_int_equal(vnvme_cuse_ns_rw(&dev_n1, false, r, 512, 3 * 512), 512);
    /* A piece the kernel cut from an unaligned buffer: the whole blocks in it. */
    assert_int_equal(vnvme_cuse_ns_rw(&dev_n2, false, r, 16384 - 100, 8 * 4096), 12288);
    assert_memory_equal(w, r, 12288);
    assert_int_equal(vnvme_cuse_ns_rw(&dev_n1, true, w, 1000, 0), 512);
    /* At the end: short read, then EOF; writes past the end fail. */
    uint64_t end = (uint64_t)NS2_BLOCKS * 4096u;
    assert_int_equal(vnvme_cuse_ns_rw(&dev_n2, false, r, 8192, end - 4096), 4096);
    assert_int_equal(vnvme_cuse_ns_rw(&dev_n2, false, r, 4096, end), 0);
    assert_int_equal(vnvme_cuse_ns_rw(&dev_n2, true, w, 4096, end), -ENOSPC);
    free(w);
    free(r);
}

static void test_reset(void **state)
{
    (void)state;
    /* Temperature Threshold is reset to its default by a controller reset. */
    uint32_t dflt = get_feature(&dev_c, NVME_FEAT_TEMPERATURE_THRESHOLD);
    struct nvme_passthru_cmd set = {.opcode = NVME_ADMIN_SET_FEATURES, .cdw10 = NVME_FEAT_TEMPERATURE_THRESHOLD,
                                    .cdw11 = 300};
    assert_int_equal(passthru(&dev_c, NVME_IOCTL_ADMIN_CMD, &set, NULL), 0);
    assert_int_equal(get_feature(&dev_c, NVME_FEAT_TEMPERATURE_THRESHOLD) & 0xffff, 300);
    int before = ns_changed_calls;
    assert_int_equal(do_ioctl(&dev_c, NVME_IOCTL_RESET, NULL, 0, NULL, 0, NULL, 0), 0);
    assert_int_equal(get_feature(&dev_c, NVME_FEAT_TEMPERATURE_THRESHOLD), dflt);
    assert_int_equal(ns_changed_calls, before + 1);
    /* The per-device queue pairs were re-created: I/O still works. */
    uint8_t buf[512];
    assert_int_equal(submit_io(&dev_n1, NVME_NVM_READ, 0, 0, buf, sizeof(buf)), 0);
}

static void test_subsystem_reset(void **state)
{
    (void)state;
    assert_true(vnvme_ctrlr_cap(ctrlr) & NVME_CAP_NSSRS);
    uint32_t dflt = get_feature(&dev_c, NVME_FEAT_TEMPERATURE_THRESHOLD);
    struct nvme_passthru_cmd set = {.opcode = NVME_ADMIN_SET_FEATURES, .cdw10 = NVME_FEAT_TEMPERATURE_THRESHOLD,
                                    .cdw11 = 310};
    assert_int_equal(passthru(&dev_c, NVME_IOCTL_ADMIN_CMD, &set, NULL), 0);
    assert_int_equal(get_feature(&dev_c, NVME_FEAT_TEMPERATURE_THRESHOLD) & 0xffff, 310);
    uint8_t w[4096], r[4096];
    fill(w, sizeof(w), 99);
    assert_int_equal(submit_io(&dev_n2, NVME_NVM_WRITE, 5, 0, w, sizeof(w)), 0);
    assert_int_equal(do_ioctl(&dev_c, NVME_IOCTL_SUBSYS_RESET, NULL, 0, NULL, 0, NULL, 0), 0);
    /* Re-initialised controller: features back to defaults, namespaces and data intact. */
    assert_int_equal(get_feature(&dev_c, NVME_FEAT_TEMPERATURE_THRESHOLD), dflt);
    assert_false(vnvme_ctrlr_is_failed(ctrlr));
    assert_int_equal(submit_io(&dev_n2, NVME_NVM_READ, 5, 0, r, sizeof(r)), 0);
    assert_memory_equal(w, r, sizeof(r));
}

static void test_rescan_after_hot_add(void **state)
{
    (void)state;
    assert_int_equal(rpc("bdev_malloc_create", "{\"name\": \"Malloc2\", \"num_blocks\": 1024, \"block_size\": 4096}"),
                     0);
    char params[256];
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Malloc2\", \"nsid\": 3}}", NQN);
    assert_int_equal(rpc("nvmf_subsystem_add_ns", params), 0);
    /* Nothing processed the event yet: the driver does not know NSID 3 until the rescan. */
    assert_null(vnvme_ctrlr_ns(ctrlr, 3));
    int before = ns_changed_calls;
    assert_int_equal(do_ioctl(&dev_c, NVME_IOCTL_RESCAN, NULL, 0, NULL, 0, NULL, 0), 0);
    assert_non_null(vnvme_ctrlr_ns(ctrlr, 3));
    assert_int_equal(ns_changed_calls, before + 1);
    struct vnvme_cuse_ioctl_dev dev_n3 = {.cc = &cc, .nsid = 3};
    assert_int_equal(do_ioctl(&dev_n3, NVME_IOCTL_ID, NULL, 0, NULL, 0, NULL, 0), 3);
    uint64_t bytes = 0;
    assert_int_equal(do_ioctl(&dev_n3, BLKGETSIZE64, &bytes, sizeof(bytes), NULL, 0, NULL, 0), 0);
    assert_int_equal(bytes, 1024u * 4096u);
    uint8_t buf[4096];
    assert_int_equal(submit_io(&dev_n3, NVME_NVM_READ, 0, 0, buf, sizeof(buf)), 0);
    vnvme_cuse_ioctl_dev_fini(&dev_n3);
    /* A device whose namespace is gone. */
    struct vnvme_cuse_ioctl_dev dev_n9 = {.cc = &cc, .nsid = 9};
    assert_int_equal(submit_io(&dev_n9, NVME_NVM_READ, 0, 0, buf, sizeof(buf)), -ENODEV);
}

static void test_cuse_register_without_kernel_cuse(void **state)
{
    (void)state;
    struct vnvme_cuse_set *s = NULL;
    if (vnvme_cuse_available()) {
        skip(); /* this machine has CUSE: covered by the guest tests */
        return;
    }
    assert_int_equal(vnvme_cuse_register(ctrlr, NULL, &s), -ENODEV);
    assert_null(s);
}

/* ---- the host role over RPC: a second vnvmed attaches this test's target ---- */

static void test_rpc_host_role(void **state)
{
    (void)state;
    /* A vfio-user controller takes one client: hand it over from this test's driver to the host daemon. */
    vnvme_cuse_ioctl_dev_fini(&dev_c);
    vnvme_cuse_ioctl_dev_fini(&dev_n1);
    vnvme_cuse_ioctl_dev_fini(&dev_n2);
    vnvme_cuse_ctrlr_fini(&cc);
    vnvme_ctrlr_detach(ctrlr);
    ctrlr = NULL;
    /* The host daemon: no target of its own, so no listener socket to wait for. */
    struct vnvmed_harness host;
    assert_int_equal(vnvmed_harness_init(&host, "vnvme-cuse-host"), 0);
    assert_int_equal(vnvmed_harness_write_config(&host, "{\"subsystems\": []}\n"), 0);
    const struct vnvmed_start how = {.without_listener = true};
    assert_int_equal(vnvmed_harness_start(&host, &how), 0);

    struct json_object *res = NULL;
    int code = 0;
    char *msg = NULL;
    char params[512];
    int rc;
    snprintf(params, sizeof(params),
             "{\"name\": \"Nvme0\", \"trtype\": \"vfiouser\", \"traddr\": \"%s\", \"adrfam\": \"IPv4\", "
             "\"subnqn\": \"%s\", \"hostnqn\": \"nqn.x\"}",
             vnvmed.listen_dir, NQN);
    /* The target may still be tearing down the previous connection. */
    for (int i = 0;
         i < 500 && (rc = vnvmed_harness_call(&host, "bdev_nvme_attach_controller", params, &res, &code, &msg)) == 1;
         i++) {
        free(msg);
        msg = NULL;
        usleep(20000);
    }
    assert_int_equal(rc, 0);
    assert_true(json_object_is_type(res, json_type_array));
    assert_true(json_object_array_length(res) >= 2);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(res, 0)), "Nvme0n1");
    json_object_put(res);
    /* The same name twice; an unsupported transport. */
    assert_int_equal(vnvmed_harness_call(&host, "bdev_nvme_attach_controller", params, &res, &code, &msg), 1);
    assert_int_equal(code, -EEXIST);
    free(msg);
    assert_int_equal(vnvmed_harness_call(&host, "bdev_nvme_attach_controller",
                            "{\"name\": \"X\", \"trtype\": \"TCP\", \"traddr\": \"1.2.3.4\"}", &res, &code, &msg),
                     1);
    assert_int_equal(code, -EINVAL);
    free(msg);

    assert_int_equal(vnvmed_harness_call(&host, "bdev_nvme_get_controllers", NULL, &res, &code, &msg), 0);
    assert_int_equal(json_object_array_length(res), 1);
    struct json_object *c0 = json_object_array_get_idx(res, 0), *ctrlrs, *tr, *v;
    assert_true(json_object_object_get_ex(c0, "name", &v));
    assert_string_equal(json_object_get_string(v), "Nvme0");
    assert_true(json_object_object_get_ex(c0, "ctrlrs", &ctrlrs));
    assert_true(json_object_object_get_ex(json_object_array_get_idx(ctrlrs, 0), "trid", &tr));
    assert_true(json_object_object_get_ex(tr, "traddr", &v));
    assert_string_equal(json_object_get_string(v), vnvmed.listen_dir);
    json_object_put(res);

    /* No kernel CUSE on this machine: a clear error, and the daemon carries on. */
    if (!vnvme_cuse_available()) {
        assert_int_equal(vnvmed_harness_call(&host, "bdev_nvme_cuse_register", "{\"name\": \"Nvme0\"}",
                                             &res, &code, &msg),
                         1);
        assert_int_equal(code, -ENODEV);
        assert_string_equal(msg, "CUSE not available: /dev/cuse missing");
        free(msg);
    }
    assert_int_equal(vnvmed_harness_call(&host, "bdev_nvme_cuse_unregister", "{\"name\": \"Nvme0\"}",
                                         &res, &code, &msg),
                     1);
    assert_int_equal(code, -ENODEV);
    free(msg);
    assert_int_equal(vnvmed_harness_call(&host, "bdev_nvme_cuse_register", "{\"name\": \"Nope\"}",
                                         &res, &code, &msg),
                     1);
    free(msg);

    assert_int_equal(vnvmed_harness_call(&host, "bdev_nvme_detach_controller", "{\"name\": \"Nvme0\"}",
                                         &res, &code, &msg),
                     0);
    json_object_put(res);
    assert_int_equal(vnvmed_harness_call(&host, "bdev_nvme_get_controllers", "{\"name\": \"Nvme0\"}",
                                         &res, &code, &msg),
                     1);
    assert_int_equal(code, -ENODEV);
    free(msg);

    assert_true(vnvmed_harness_stop(&host) >= 0); /* it exited, no signal ended it */
    vnvmed_harness_cleanup(&host);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ioctl_id),
        cmocka_unit_test(test_admin_identify_and_status),
        cmocka_unit_test(test_untouched_bytes_come_back),
        cmocka_unit_test(test_result_32_and_64),
        cmocka_unit_test(test_access_admin_commands),
        cmocka_unit_test(test_access_io_commands),
        cmocka_unit_test(test_access_effects_rule),
        cmocka_unit_test(test_access_privilege_lookup),
        cmocka_unit_test(test_io_passthru),
        cmocka_unit_test(test_passthru_limits),
        cmocka_unit_test(test_submit_io),
        cmocka_unit_test(test_block_queries),
        cmocka_unit_test(test_unknown_compat_and_wrong_device),
        cmocka_unit_test(test_read_write_syscalls),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_subsystem_reset),
        cmocka_unit_test(test_rescan_after_hot_add),
        cmocka_unit_test(test_cuse_register_without_kernel_cuse),
        cmocka_unit_test(test_rpc_host_role),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
