/* SPDX-License-Identifier: MIT */
/*
 * Who may do what through vnvmed's CUSE devices, checked with the real kernel
 * CUSE and real credentials (tests/guest/cuse_e2e.sh runs it as root):
 *   cuse_access_test CTRL NS GID
 * CTRL and NS were registered with group GID and mode 0640. Children drop to
 * an unprivileged user in that group (or keep uid 0 without CAP_SYS_ADMIN) and
 * try what Linux's NVMe driver allows such a caller and what it refuses.
 * Prints TAP lines (no plan); exits 0 only when every check passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/nvme_ioctl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap_check.h"

#define USER_UID 1000
#define OPC_WRITE 0x01
#define OPC_READ 0x02
#define OPC_DSM 0x09
#define OPC_GET_LOG 0x02
#define OPC_IDENTIFY 0x06
#define LOG_SMART 0x02
#define CNS_NS 0x00
#define CNS_CTRL 0x01
#define CNS_ACTIVE_NS_LIST 0x02

static unsigned char buf[4096] __attribute__((aligned(4096)));

static long io(int fd, unsigned long cmd, void *arg)
{
    return ioctl_result(fd, cmd, arg);
}

static long admin(int fd, uint8_t opc, uint32_t cdw10, uint32_t nsid)
{
    struct nvme_passthru_cmd c = {.opcode = opc, .nsid = nsid, .addr = (uintptr_t)buf, .data_len = 4096,
                                  .cdw10 = cdw10};
    if (opc == OPC_GET_LOG)
        c.cdw10 = cdw10 | (512u / 4u - 1u) << 16, c.data_len = 512;
    return io(fd, NVME_IOCTL_ADMIN_CMD, &c);
}

static long io_cmd(int fd, uint8_t opc, uint32_t data_len)
{
    struct nvme_passthru_cmd c = {.opcode = opc, .nsid = 1, .addr = data_len ? (uintptr_t)buf : 0,
                                  .data_len = data_len};
    if (opc == OPC_DSM) { /* one range: LBA 100, 1 block, deallocate */
        memset(buf, 0, 16);
        buf[4] = 1;
        buf[8] = 100;
        c.cdw11 = 1u << 2;
        c.data_len = 16;
        c.addr = (uintptr_t)buf;
    }
    return io(fd, NVME_IOCTL_IO_CMD, &c);
}

static long submit_io(int fd, uint8_t opc)
{
    struct nvme_user_io u = {.opcode = opc, .slba = 8, .nblocks = 0, .addr = (uintptr_t)buf};
    return io(fd, NVME_IOCTL_SUBMIT_IO, &u);
}

static int open_as_child(const char *path, int flags)
{
    int fd = open(path, flags);
    return fd < 0 ? -errno : fd;
}

/* Become USER_UID in group gid with no capabilities (a plain user who was given the device's group). */
static void become_user(gid_t gid)
{
    if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(USER_UID, USER_UID, USER_UID) != 0) {
        printf("not ok - cannot drop to uid %d gid %u: %s\n", USER_UID, (unsigned)gid, strerror(errno));
        exit(1);
    }
}

/* Stay uid 0 but without CAP_SYS_ADMIN in the effective set (a container's root, say). */
static void drop_sys_admin(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0) {
        printf("not ok - capget: %s\n", strerror(errno));
        exit(1);
    }
    d[CAP_SYS_ADMIN / 32].effective &= ~(1u << (CAP_SYS_ADMIN % 32));
    if (syscall(SYS_capset, &h, d) != 0) {
        printf("not ok - capset: %s\n", strerror(errno));
        exit(1);
    }
}

/* A user in the device's group: the node is 0640, so read-only opens only. */
static void reader(const char *ctrl, const char *ns, gid_t gid)
{
    become_user(gid);
    check(open_as_child(ns, O_RDWR) == -EACCES, "user in the group: open %s for writing refused (0640)", ns);
    int fd = open_as_child(ns, O_RDONLY), cfd = open_as_child(ctrl, O_RDONLY);
    check(fd >= 0 && cfd >= 0, "user in the group: open %s and %s read-only", ns, ctrl);
    if (fd < 0 || cfd < 0)
        exit(1);
    check(io(fd, NVME_IOCTL_ID, NULL) == 1, "NVME_IOCTL_ID");
    uint64_t size = 0;
    check(io(fd, BLKGETSIZE64, &size) == 0 && size > 0, "BLKGETSIZE64");
    check(admin(cfd, OPC_IDENTIFY, CNS_CTRL, 0) == 0, "Identify Controller allowed");
    check(admin(fd, OPC_IDENTIFY, CNS_NS, 1) == 0, "Identify Namespace allowed (through the namespace)");
    check(admin(cfd, OPC_IDENTIFY, CNS_ACTIVE_NS_LIST, 0) == -EACCES, "Identify active namespace list: EACCES");
    check(admin(cfd, OPC_GET_LOG, LOG_SMART, 0xffffffffu) == -EACCES, "Get Log Page (SMART): EACCES");
    check(admin(cfd, 0xc1, 0, 0) == -EACCES, "vendor-specific admin opcode: EACCES");
    check(io(cfd, NVME_IOCTL_RESET, NULL) == -EACCES, "NVME_IOCTL_RESET: EACCES");
    check(io(cfd, NVME_IOCTL_RESCAN, NULL) == -EACCES, "NVME_IOCTL_RESCAN: EACCES");
    check(io_cmd(fd, OPC_READ, 512) == 0, "I/O Read through a read-only open");
    check(submit_io(fd, OPC_READ) == 0, "SUBMIT_IO read through a read-only open");
    check(io_cmd(fd, OPC_WRITE, 512) == -EACCES, "I/O Write through a read-only open: EACCES");
    check(submit_io(fd, OPC_WRITE) == -EACCES, "SUBMIT_IO write through a read-only open: EACCES");
    check(io_cmd(fd, OPC_DSM, 0) == -EACCES, "Dataset Management (changes blocks) read-only: EACCES");
    check(io_cmd(fd, 0x81, 512) == -EACCES, "vendor-specific I/O opcode: EACCES");
    check(write(fd, buf, 512) < 0 && errno == EBADF, "write() on a read-only open: EBADF");
    exit(failures ? 1 : 0);
}

/* The same user once the node lets the group write: writes go, administration still does not. */
static void writer(const char *ctrl, const char *ns, gid_t gid)
{
    (void)ctrl;
    become_user(gid);
    int fd = open_as_child(ns, O_RDWR);
    check(fd >= 0, "user in the group: open %s for writing (0660)", ns);
    if (fd < 0)
        exit(1);
    memset(buf, 0x5a, 512);
    check(io_cmd(fd, OPC_WRITE, 512) == 0, "I/O Write through a writable open");
    check(submit_io(fd, OPC_WRITE) == 0, "SUBMIT_IO write through a writable open");
    check(io_cmd(fd, OPC_DSM, 0) == 0, "Dataset Management through a writable open");
    check(io_cmd(fd, 0x81, 512) == -EACCES, "vendor-specific I/O opcode still EACCES");
    check(admin(fd, OPC_GET_LOG, LOG_SMART, 0xffffffffu) == -EACCES, "Get Log Page still EACCES");
    exit(failures ? 1 : 0);
}

/* uid 0 without CAP_SYS_ADMIN: file permissions pass, the capability check does not. */
static void root_without_cap(const char *ctrl, const char *ns)
{
    drop_sys_admin();
    int cfd = open_as_child(ctrl, O_RDWR), fd = open_as_child(ns, O_RDWR);
    check(cfd >= 0 && fd >= 0, "root without CAP_SYS_ADMIN: opens both devices read-write");
    if (cfd < 0 || fd < 0)
        exit(1);
    check(admin(cfd, OPC_GET_LOG, LOG_SMART, 0xffffffffu) == -EACCES, "root without CAP_SYS_ADMIN: Get Log Page EACCES");
    check(io(cfd, NVME_IOCTL_RESET, NULL) == -EACCES, "root without CAP_SYS_ADMIN: reset EACCES");
    check(io_cmd(fd, OPC_WRITE, 512) == 0, "root without CAP_SYS_ADMIN: I/O Write through a writable open");
    exit(failures ? 1 : 0);
}

static void run_child(const char *what, void (*fn)(const char *, const char *, gid_t), const char *ctrl,
                      const char *ns, gid_t gid)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        fn(ctrl, ns, gid);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: every check passed", what);
}

static void root_without_cap_fn(const char *ctrl, const char *ns, gid_t gid)
{
    (void)gid;
    root_without_cap(ctrl, ns);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s CTRL NS GID\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *ctrl = argv[1], *ns = argv[2];
    gid_t gid = (gid_t)strtoul(argv[3], NULL, 10);
    struct stat st;
    for (int i = 1; i <= 2; i++) {
        bool got = stat(argv[i], &st) == 0;
        check(got && (st.st_mode & 07777) == 0640 && st.st_uid == 0 && st.st_gid == gid,
              "%s: owner 0, group %u, mode 0640 as registered (is %u, %u, %04o)", argv[i], (unsigned)gid,
              got ? (unsigned)st.st_uid : 0, got ? (unsigned)st.st_gid : 0, got ? (unsigned)(st.st_mode & 07777) : 0);
    }
    run_child("user in the group, read-only node", reader, ctrl, ns, gid);
    if (chmod(ns, 0660) != 0)
        check(false, "chmod %s 0660: %s", ns, strerror(errno));
    run_child("user in the group, writable node", writer, ctrl, ns, gid);
    run_child("root without CAP_SYS_ADMIN", root_without_cap_fn, ctrl, ns, gid);
    int cfd = open(ctrl, O_RDWR);
    check(cfd >= 0 && admin(cfd, OPC_GET_LOG, LOG_SMART, 0xffffffffu) == 0, "root: Get Log Page allowed");
    if (cfd >= 0)
        close(cfd);
    return failures ? 1 : 0;
}
