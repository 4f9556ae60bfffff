/* SPDX-License-Identifier: MIT */
/*
 * Built as a static 32-bit program: what a 32-bit process gets from the CUSE
 * devices. The kernel marks its ioctls FUSE_IOCTL_COMPAT; vnvme does not
 * translate 32-bit layouts and refuses every NVMe and block ioctl with ENOSYS
 * rather than misreading a struct. Kernels since 6.0 hand a FUSE server's
 * ENOSYS for an ioctl to the caller as ENOTTY (fs/fuse/ioctl.c translates it),
 * so a 32-bit caller sees ENOTTY there and ENOSYS on older ones; anything
 * else, success included, is a failure. read() needs no translation and works.
 *   cuse_compat_test CTRL NS
 * Prints TAP lines; exits 0 only when every check passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/nvme_ioctl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int checks, failures;

static void check(int ok, const char *what, long got)
{
    checks++;
    if (!ok)
        failures++;
    printf("%s %d - 32-bit process: %s (%ld)\n", ok ? "ok" : "not ok", checks, what, got);
}

static long outcome(int rc)
{
    return rc < 0 ? -errno : rc;
}

static int refused(long rc)
{
    return rc == -ENOSYS || rc == -ENOTTY;
}

int main(int argc, char **argv)
{
    if (argc != 3 || sizeof(void *) != 4) {
        fprintf(stderr, "usage: %s CTRL NS (a 32-bit build)\n", argv[0]);
        return 2;
    }
    int ctrl = open(argv[1], O_RDWR), ns = open(argv[2], O_RDWR);
    if (ctrl < 0 || ns < 0) {
        printf("not ok 1 - open %s / %s: %s\n", argv[1], argv[2], strerror(errno));
        return 1;
    }
    static uint8_t id[4096];
    struct nvme_passthru_cmd c = {.opcode = 0x06, .addr = (uint32_t)(uintptr_t)id, .data_len = sizeof(id), .cdw10 = 1};
    long rc = outcome(ioctl(ctrl, NVME_IOCTL_ADMIN_CMD, &c));
    check(refused(rc), "NVME_IOCTL_ADMIN_CMD refused (ENOSYS, as ENOTTY since Linux 6.0)", rc);
    rc = outcome(ioctl(ns, NVME_IOCTL_ID));
    check(refused(rc), "NVME_IOCTL_ID refused (ENOSYS, as ENOTTY since Linux 6.0)", rc);
    struct nvme_user_io io = {.opcode = 0x02, .addr = (uint32_t)(uintptr_t)id};
    rc = outcome(ioctl(ns, NVME_IOCTL_SUBMIT_IO, &io));
    check(refused(rc), "NVME_IOCTL_SUBMIT_IO refused (ENOSYS, as ENOTTY since Linux 6.0)", rc);
    uint64_t bytes = 0;
    rc = outcome(ioctl(ns, BLKGETSIZE64, &bytes));
    check(refused(rc), "BLKGETSIZE64 refused (ENOSYS, as ENOTTY since Linux 6.0)", rc);
    rc = outcome(ioctl(ctrl, NVME_IOCTL_RESET));
    check(refused(rc), "NVME_IOCTL_RESET refused (ENOSYS, as ENOTTY since Linux 6.0)", rc);
    rc = (long)read(ns, id, 4096);
    check(rc == 4096, "read() of 4 KiB works", rc < 0 ? -errno : rc);
    close(ctrl);
    close(ns);
    return failures ? 1 : 0;
}
