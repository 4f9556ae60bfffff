/* SPDX-License-Identifier: MIT */
/*
 * Every NVMe ioctl our CUSE devices serve, issued directly the way the kernel's
 * ioctl users do, against the guest_cuse setup (tests/guest/cuse_e2e.sh):
 *   cuse_ioctl_test CTRL NS1 NS2
 * CTRL is a controller device with exactly two namespaces: NS1 (nsid 1, 512 blocks
 * of 512 bytes) and NS2 (nsid 2, 4096 blocks of 4096 bytes). Prints TAP lines
 * (no plan; scripts/test counts them) and "# rate" lines with request rates and
 * throughput (RATE_SECONDS each, default 1; RATE_ONLY=1 skips the checks). Exits 0 only when
 * every check passed.
 *
 * The expected results are the kernel NVMe driver's: the status field as the
 * return value, cdw0 (cdw0|cdw1 for the 64-bit ioctls) in .result, ENOTTY for an
 * ioctl the device does not serve, EINVAL for a transfer over the CUSE limit,
 * EFAULT for memory the caller does not have.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/nvme_ioctl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "tap_check.h"

#define NS1_BLOCK 512u
#define NS1_BLOCKS 512u
#define NS2_BLOCK 4096u
#define NS2_BLOCKS 4096u
#define KIB128 131072u

#define OPC_FLUSH 0x00
#define OPC_WRITE 0x01
#define OPC_READ 0x02
#define OPC_COMPARE 0x05
#define OPC_GET_LOG 0x02
#define OPC_IDENTIFY 0x06
#define OPC_SET_FEATURES 0x09
#define OPC_GET_FEATURES 0x0a
#define FID_NUM_QUEUES 0x07
#define FID_TEMP_THRESHOLD 0x04
#define SC_MASK 0x7ffu
#define SC_INVALID_OPCODE 0x001u
#define SC_COMPARE_FAILURE 0x285u /* SCT 2 (media errors), SC 85h */

static long nvme_ioctl(int fd, unsigned long cmd, void *arg)
{
    return ioctl_result(fd, cmd, arg);
}

static int open_dev(const char *path)
{
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        printf("# open %s: %s\n", path, strerror(errno));
        exit(1);
    }
    return fd;
}

static void *xalloc(size_t len)
{
    void *p = aligned_alloc(4096, (len + 4095) & ~(size_t)4095);
    if (p == NULL) {
        printf("# out of memory\n");
        exit(1);
    }
    memset(p, 0, len);
    return p;
}

static void fill(void *buf, size_t len, uint32_t seed)
{
    uint32_t *w = buf;
    for (size_t i = 0; i < len / 4; i++)
        w[i] = seed * 2654435761u + (uint32_t)i;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long identify(int fd, unsigned long cmd, uint32_t cns, uint32_t nsid, void *buf, uint32_t len)
{
    struct nvme_passthru_cmd64 c = {.opcode = OPC_IDENTIFY, .nsid = nsid, .addr = (uintptr_t)buf,
                                    .data_len = len, .cdw10 = cns};
    if (cmd == NVME_IOCTL_ADMIN_CMD) {
        struct nvme_passthru_cmd c32;
        memcpy(&c32, &c, sizeof(c32)); /* the layouts agree up to .result */
        c32.result = 0;
        return nvme_ioctl(fd, cmd, &c32);
    }
    return nvme_ioctl(fd, cmd, &c);
}

static long io_cmd(int fd, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, void *buf, uint32_t len,
                   uint32_t *result)
{
    struct nvme_passthru_cmd c = {.opcode = opc, .nsid = nsid, .addr = (uintptr_t)buf, .data_len = len,
                                  .cdw10 = (uint32_t)slba, .cdw11 = (uint32_t)(slba >> 32), .cdw12 = nlb - 1u};
    long rc = nvme_ioctl(fd, NVME_IOCTL_IO_CMD, &c);
    if (result)
        *result = c.result;
    return rc;
}

static long submit_io(int fd, uint8_t opc, uint64_t slba, uint32_t nlb, void *buf)
{
    struct nvme_user_io io = {.opcode = opc, .slba = slba, .nblocks = (uint16_t)(nlb - 1u), .addr = (uintptr_t)buf};
    return nvme_ioctl(fd, NVME_IOCTL_SUBMIT_IO, &io);
}

/* ---- the controller device ---- */

static void test_ctrlr(int fd)
{
    uint8_t *id = xalloc(4096);
    long rc = identify(fd, NVME_IOCTL_ADMIN_CMD, 1, 0, id, 4096);
    check(rc == 0 && memcmp(id + 24, "vnvme guest e2e", 15) == 0,
          "ADMIN_CMD Identify Controller returns 0 and the model (rc %ld)", rc);
    memset(id, 0, 4096);
    rc = identify(fd, NVME_IOCTL_ADMIN64_CMD, 1, 0, id, 4096);
    check(rc == 0 && memcmp(id + 4, "VNVMEGUEST0001", 14) == 0,
          "ADMIN64_CMD Identify Controller returns 0 and the serial (rc %ld)", rc);
    memset(id, 0, 4096);
    rc = identify(fd, NVME_IOCTL_ADMIN_CMD, 2, 0, id, 4096); /* active namespace list */
    uint32_t *list = (uint32_t *)id;
    check(rc == 0 && list[0] == 1 && list[1] == 2 && list[2] == 0, "Identify active NS list: 1, 2 (rc %ld)", rc);

    struct nvme_passthru_cmd gf = {.opcode = OPC_GET_FEATURES, .cdw10 = FID_NUM_QUEUES};
    rc = nvme_ioctl(fd, NVME_IOCTL_ADMIN_CMD, &gf);
    check(rc == 0 && gf.result != 0, "ADMIN_CMD Get Features (queues) puts cdw0 in .result (0x%x)", gf.result);
    struct nvme_passthru_cmd64 gf64 = {.opcode = OPC_GET_FEATURES, .cdw10 = FID_NUM_QUEUES, .result = ~0ull};
    rc = nvme_ioctl(fd, NVME_IOCTL_ADMIN64_CMD, &gf64);
    check(rc == 0 && gf64.result == gf.result, "ADMIN64_CMD .result is cdw1:cdw0 (0x%llx)",
          (unsigned long long)gf64.result);

    /* Set Features then Get Features: the value travels both ways through the controller. */
    struct nvme_passthru_cmd sf = {.opcode = OPC_SET_FEATURES, .cdw10 = FID_TEMP_THRESHOLD, .cdw11 = 0x0150};
    long rc_set = nvme_ioctl(fd, NVME_IOCTL_ADMIN_CMD, &sf);
    struct nvme_passthru_cmd gt = {.opcode = OPC_GET_FEATURES, .cdw10 = FID_TEMP_THRESHOLD};
    rc = nvme_ioctl(fd, NVME_IOCTL_ADMIN_CMD, &gt);
    check(rc_set == 0 && rc == 0 && (gt.result & 0xffff) == 0x0150,
          "Set then Get Features temperature threshold: 0x%x", gt.result);

    struct nvme_passthru_cmd bad = {.opcode = 0xc4}; /* no data, unknown vendor-specific admin opcode */
    rc = nvme_ioctl(fd, NVME_IOCTL_ADMIN_CMD, &bad);
    check(rc > 0 && ((unsigned long)rc & SC_MASK) == SC_INVALID_OPCODE,
          "unknown admin opcode: the ioctl returns the status Invalid Opcode (0x%lx)", rc);

    /* Error Information log through Get Log Page with a 64-entry buffer. */
    uint8_t *log = xalloc(64 * 64);
    struct nvme_passthru_cmd gl = {.opcode = OPC_GET_LOG, .nsid = 0xffffffffu, .addr = (uintptr_t)log,
                                   .data_len = 64 * 64, .cdw10 = 0x01 | ((64 * 64 / 4 - 1) << 16)};
    rc = nvme_ioctl(fd, NVME_IOCTL_ADMIN_CMD, &gl);
    check(rc == 0, "Get Log Page error information (rc %ld)", rc);
    free(log);

    /* Transfer limits: 131000 bytes fit with the 72-byte struct, 131001 do not. */
    uint8_t *big = xalloc(KIB128 + 4096);
    rc = identify(fd, NVME_IOCTL_ADMIN_CMD, 1, 0, big, 131000);
    check(rc == 0 && memcmp(big + 24, "vnvme guest e2e", 15) == 0, "ADMIN_CMD with data_len 131000 works (rc %ld)",
          rc);
    rc = identify(fd, NVME_IOCTL_ADMIN_CMD, 1, 0, big, 131001);
    check(rc == -EINVAL, "ADMIN_CMD with data_len 131001: EINVAL (%ld)", rc);
    rc = identify(fd, NVME_IOCTL_ADMIN64_CMD, 1, 0, big, 130992);
    check(rc == 0, "ADMIN64_CMD with data_len 130992 works (rc %ld)", rc);
    rc = identify(fd, NVME_IOCTL_ADMIN64_CMD, 1, 0, big, 130993);
    check(rc == -EINVAL, "ADMIN64_CMD with data_len 130993: EINVAL (%ld)", rc);
    rc = identify(fd, NVME_IOCTL_ADMIN_CMD, 1, 0, big, 1u << 20);
    check(rc == -EINVAL, "ADMIN_CMD with data_len 1 MiB: EINVAL (%ld)", rc);
    free(big);

    /* Bad arguments. */
    struct nvme_passthru_cmd bidi = {.opcode = 0xc3, .addr = (uintptr_t)id, .data_len = 512};
    rc = nvme_ioctl(fd, NVME_IOCTL_ADMIN_CMD, &bidi);
    check(rc == -EINVAL, "bidirectional opcode: EINVAL (%ld)", rc);
    struct nvme_passthru_cmd fused = {.opcode = OPC_IDENTIFY, .flags = 1, .addr = (uintptr_t)id, .data_len = 4096,
                                      .cdw10 = 1};
    rc = nvme_ioctl(fd, NVME_IOCTL_ADMIN_CMD, &fused);
    check(rc == -EINVAL, "fused flags: EINVAL (%ld)", rc);
    rc = identify(fd, NVME_IOCTL_ADMIN_CMD, 1, 0, NULL, 4096);
    check(rc == -EFAULT, "data_len without an address: EFAULT (%ld)", rc);
    /* An address the process does not have: unmapped right after mapping it. */
    void *gone = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, 8192);
    rc = identify(fd, NVME_IOCTL_ADMIN_CMD, 1, 0, gone, 4096);
    check(rc == -EFAULT, "data buffer not mapped: EFAULT (%ld)", rc);
    rc = nvme_ioctl(fd, NVME_IOCTL_ADMIN_CMD, gone);
    check(rc == -EFAULT, "argument struct not mapped: EFAULT (%ld)", rc);
    /* Read-only memory for a command that reads from the device. */
    void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    rc = identify(fd, NVME_IOCTL_ADMIN_CMD, 1, 0, ro, 4096);
    check(rc == -EFAULT, "read-only buffer for data from the device: EFAULT (%ld)", rc);
    munmap(ro, 4096);
    rc = identify(fd, NVME_IOCTL_ADMIN_CMD, 1, 0, id, 4096);
    check(rc == 0, "the device still answers after the bad calls (rc %ld)", rc);

    /* What the kernel's controller device refuses. */
    rc = nvme_ioctl(fd, NVME_IOCTL_ID, NULL);
    check(rc == -ENOTTY, "NVME_IOCTL_ID on the controller: ENOTTY (%ld)", rc);
    uint8_t *buf = xalloc(4096);
    rc = io_cmd(fd, OPC_READ, 1, 0, 1, buf, NS1_BLOCK, NULL);
    check(rc == -EINVAL, "IO_CMD on a controller with two namespaces: EINVAL (%ld)", rc);
    struct nvme_passthru_cmd64 io64 = {.opcode = OPC_READ, .nsid = 1, .addr = (uintptr_t)buf, .data_len = 512};
    rc = nvme_ioctl(fd, NVME_IOCTL_IO64_CMD, &io64);
    check(rc == -ENOTTY, "IO64_CMD on the controller: ENOTTY (%ld)", rc);
    rc = submit_io(fd, OPC_READ, 0, 1, buf);
    check(rc == -ENOTTY, "SUBMIT_IO on the controller: ENOTTY (%ld)", rc);
    uint64_t size64 = 0;
    rc = nvme_ioctl(fd, BLKGETSIZE64, &size64);
    check(rc == -ENOTTY, "BLKGETSIZE64 on the controller: ENOTTY (%ld)", rc);
    rc = nvme_ioctl(fd, _IO('N', 0x7f), NULL);
    check(rc == -ENOTTY, "unknown ioctl: ENOTTY (%ld)", rc);
    rc = nvme_ioctl(fd, FIONREAD, &size64);
    check(rc == -ENOTTY, "FIONREAD: ENOTTY (%ld)", rc);
    free(buf);
    free(id);
}

/* Reset, subsystem reset and rescan on the controller; the namespaces answer afterwards. */
static void test_ctrlr_resets(int ctrl, int ns2)
{
    uint8_t *w = xalloc(NS2_BLOCK), *r = xalloc(NS2_BLOCK);
    fill(w, NS2_BLOCK, 77);
    long rc = submit_io(ns2, OPC_WRITE, 100, 1, w);
    check(rc == 0, "SUBMIT_IO write before the resets (rc %ld)", rc);
    rc = nvme_ioctl(ctrl, NVME_IOCTL_RESET, NULL);
    check(rc == 0, "NVME_IOCTL_RESET (rc %ld)", rc);
    rc = submit_io(ns2, OPC_READ, 100, 1, r);
    check(rc == 0 && memcmp(w, r, NS2_BLOCK) == 0, "I/O after reset reads the data back (rc %ld)", rc);
    rc = nvme_ioctl(ctrl, NVME_IOCTL_SUBSYS_RESET, NULL);
    check(rc == 0, "NVME_IOCTL_SUBSYS_RESET performs an NVM subsystem reset (rc %ld)", rc);
    memset(r, 0, NS2_BLOCK);
    rc = submit_io(ns2, OPC_READ, 100, 1, r);
    check(rc == 0 && memcmp(w, r, NS2_BLOCK) == 0, "I/O after subsystem reset reads the data back (rc %ld)", rc);
    rc = nvme_ioctl(ctrl, NVME_IOCTL_RESCAN, NULL);
    check(rc == 0, "NVME_IOCTL_RESCAN (rc %ld)", rc);
    rc = nvme_ioctl(ns2, NVME_IOCTL_RESET, NULL);
    check(rc == -ENOTTY, "NVME_IOCTL_RESET on a namespace: ENOTTY (%ld)", rc);
    free(w);
    free(r);
}

/* ---- namespace devices ---- */

static void test_block_queries(int fd, uint32_t nsid, uint32_t block, uint32_t blocks)
{
    long rc = nvme_ioctl(fd, NVME_IOCTL_ID, NULL);
    check(rc == (long)nsid, "NVME_IOCTL_ID returns %u (%ld)", nsid, rc);
    uint64_t bytes = 0;
    rc = nvme_ioctl(fd, BLKGETSIZE64, &bytes);
    check(rc == 0 && bytes == (uint64_t)block * blocks, "nsid %u BLKGETSIZE64 = %llu bytes", nsid,
          (unsigned long long)bytes);
    unsigned long sectors = 0;
    rc = nvme_ioctl(fd, BLKGETSIZE, &sectors);
    check(rc == 0 && sectors == (uint64_t)block * blocks / 512, "nsid %u BLKGETSIZE = %lu 512-byte sectors", nsid,
          sectors);
    int ssz = 0;
    rc = nvme_ioctl(fd, BLKSSZGET, &ssz);
    check(rc == 0 && ssz == (int)block, "nsid %u BLKSSZGET = %d", nsid, ssz);
    unsigned int pbsz = 0;
    rc = nvme_ioctl(fd, BLKPBSZGET, &pbsz);
    check(rc == 0 && pbsz == block, "nsid %u BLKPBSZGET = %u", nsid, pbsz);
}

static void test_ns_io(int ns1, int ns2)
{
    /* IO_CMD write + read on the 512-byte namespace, and IO64_CMD. */
    uint8_t *w = xalloc(KIB128), *r = xalloc(KIB128);
    fill(w, 4096, 1);
    uint32_t result = ~0u;
    long rc = io_cmd(ns1, OPC_WRITE, 1, 16, 8, w, 4096, &result);
    check(rc == 0 && result == 0, "IO_CMD write 8 blocks to nsid 1 (rc %ld, result %u)", rc, result);
    rc = io_cmd(ns1, OPC_READ, 1, 16, 8, r, 4096, NULL);
    check(rc == 0 && memcmp(w, r, 4096) == 0, "IO_CMD read returns the data (rc %ld)", rc);
    memset(r, 0, 4096);
    struct nvme_passthru_cmd64 rd64 = {.opcode = OPC_READ, .nsid = 1, .addr = (uintptr_t)r, .data_len = 4096,
                                       .cdw10 = 16, .cdw12 = 7, .result = ~0ull};
    rc = nvme_ioctl(ns1, NVME_IOCTL_IO64_CMD, &rd64);
    check(rc == 0 && rd64.result == 0 && memcmp(w, r, 4096) == 0, "IO64_CMD read returns the data (rc %ld)", rc);
    rc = io_cmd(ns1, OPC_COMPARE, 1, 16, 8, w, 4096, NULL);
    check(rc == 0, "IO_CMD compare with the same data: success (rc %ld)", rc);
    w[100] ^= 1;
    rc = io_cmd(ns1, OPC_COMPARE, 1, 16, 8, w, 4096, NULL);
    check(rc > 0 && ((unsigned long)rc & SC_MASK) == SC_COMPARE_FAILURE,
          "IO_CMD compare with other data: status Compare Failure (0x%lx)", rc);
    w[100] ^= 1;
    rc = io_cmd(ns1, OPC_READ, 2, 16, 8, r, 4096, NULL);
    check(rc == -EINVAL, "IO_CMD for another namespace's nsid: EINVAL (%ld)", rc);
    rc = io_cmd(ns1, OPC_FLUSH, 1, 0, 1, NULL, 0, NULL);
    check(rc == 0, "IO_CMD flush (rc %ld)", rc);
    rc = io_cmd(ns1, OPC_READ, 1, NS1_BLOCKS, 1, r, 512, NULL);
    check(rc > 0 && ((unsigned long)rc & SC_MASK) == 0x80, "IO_CMD read past the end: LBA Out of Range (0x%lx)", rc);

    /*
     * SUBMIT_IO on the 4 KiB namespace: a full 128 KiB read (the reply carries no
     * struct), writes up to 131024 bytes, so 31 blocks.
     */
    fill(w, KIB128, 2);
    rc = submit_io(ns2, OPC_WRITE, 0, 31, w);
    check(rc == 0, "SUBMIT_IO write of 31 blocks (126976 bytes) (rc %ld)", rc);
    rc = submit_io(ns2, OPC_WRITE, 31, 1, w + 31 * NS2_BLOCK);
    check(rc == 0, "SUBMIT_IO write of block 31 (rc %ld)", rc);
    rc = submit_io(ns2, OPC_WRITE, 0, 32, w);
    check(rc == -EINVAL, "SUBMIT_IO write of 128 KiB (struct + data over the cap): EINVAL (%ld)", rc);
    rc = submit_io(ns2, OPC_READ, 0, 32, r);
    check(rc == 0 && memcmp(w, r, KIB128) == 0, "SUBMIT_IO read of a full 128 KiB returns the data (rc %ld)", rc);
    rc = submit_io(ns2, OPC_READ, 0, 33, r);
    check(rc == -EINVAL, "SUBMIT_IO read of 132 KiB: EINVAL (%ld)", rc);
    rc = submit_io(ns2, OPC_COMPARE, 0, 31, w);
    check(rc == 0, "SUBMIT_IO compare (rc %ld)", rc);
    rc = submit_io(ns2, OPC_FLUSH, 0, 1, w);
    check(rc == -EINVAL, "SUBMIT_IO with a flush opcode: EINVAL (%ld)", rc);
    rc = submit_io(ns2, OPC_READ, 0, 1, NULL);
    check(rc == -EFAULT, "SUBMIT_IO without a buffer: EFAULT (%ld)", rc);
    struct nvme_user_io md = {.opcode = OPC_READ, .nblocks = 0, .addr = (uintptr_t)r, .metadata = (uintptr_t)w};
    rc = nvme_ioctl(ns2, NVME_IOCTL_SUBMIT_IO, &md);
    check(rc == -EINVAL, "SUBMIT_IO with metadata on a format without it: EINVAL (%ld)", rc);

    /* 512-byte namespace: the largest write is 255 blocks (130560 bytes). */
    fill(w, KIB128, 3);
    rc = submit_io(ns1, OPC_WRITE, 0, 255, w);
    check(rc == 0, "SUBMIT_IO write of 255 512-byte blocks (rc %ld)", rc);
    rc = submit_io(ns1, OPC_WRITE, 255, 1, w + 255 * NS1_BLOCK);
    check(rc == 0, "SUBMIT_IO write of block 255 (rc %ld)", rc);
    rc = submit_io(ns1, OPC_READ, 0, 256, r);
    check(rc == 0 && memcmp(w, r, KIB128) == 0, "SUBMIT_IO read of 256 blocks (128 KiB) on nsid 1 (rc %ld)", rc);
    free(w);
    free(r);
}

/*
 * read()/write(): CUSE passes no file offsets, so each open file streams from
 * LBA 0 with a position the device keeps. Lengths are whole blocks; a piece the
 * kernel cuts from an unaligned buffer gets its whole blocks (a short count).
 */
static int reopen(int fd, const char *path)
{
    close(fd);
    return open_dev(path);
}

static void test_ns_rw(const char *path, uint32_t block, uint32_t blocks)
{
    size_t dev_bytes = (size_t)block * blocks;
    size_t len = dev_bytes < (1u << 20) ? dev_bytes : (1u << 20);
    uint8_t *w = xalloc(len + 4096), *r = xalloc(len + 4096);
    fill(w, len, 4 + block);
    int fd = open_dev(path);
    ssize_t n = write(fd, w, len);
    check(n == (ssize_t)len, "%s: write() of %zu bytes from a fresh open (%zd)", path, len, n);
    fd = reopen(fd, path);
    n = read(fd, r, len);
    check(n == (ssize_t)len && memcmp(w, r, len) == 0, "%s: read() of %zu bytes returns them (%zd)", path, len, n);
    fd = reopen(fd, path);
    n = read(fd, r, block);
    ssize_t n2 = read(fd, r + block, block);
    check(n == (ssize_t)block && n2 == (ssize_t)block && memcmp(w, r, 2 * (size_t)block) == 0,
          "%s: consecutive read()s continue where the last one ended", path);
    /* An unaligned user buffer of 256 KiB: the kernel's 32-page pieces are not whole blocks. */
    fd = reopen(fd, path);
    size_t ulen = len < 262144 ? len : 262144;
    uint8_t *u = r + 100;
    memset(r, 0, len + 4096);
    size_t got = 0;
    while (got < ulen && (n = read(fd, u + got, ulen - got)) > 0)
        got += (size_t)n;
    check(got == ulen && memcmp(w, u, ulen) == 0, "%s: read() into an unaligned buffer gets every byte (%zu)", path,
          got);
    n = read(fd, r, block - 1);
    check(n < 0 && errno == EINVAL, "%s: read() of less than a block: EINVAL", path);
    n = write(fd, w, 100);
    check(n < 0 && errno == EINVAL, "%s: write() of 100 bytes: EINVAL", path);
    /* To the end: the bytes that exist, then 0, and writes there fail. */
    fd = reopen(fd, path);
    size_t total = 0;
    while ((n = read(fd, r, len)) > 0)
        total += (size_t)n;
    check(n == 0 && total == dev_bytes, "%s: reading to the end gives the namespace size, then 0 (%zu)", path, total);
    n = write(fd, w, block);
    check(n < 0 && errno == ENOSPC, "%s: write() at the end: ENOSPC", path);
    close(fd);
    free(w);
    free(r);
}

/* ---- rates: requests and bytes per second through CUSE, one thread ---- */

typedef long (*op_fn)(int fd, void *buf, uint32_t len);

static long op_identify(int fd, void *buf, uint32_t len)
{
    return identify(fd, NVME_IOCTL_ADMIN_CMD, 1, 0, buf, len);
}

static long op_submit_read(int fd, void *buf, uint32_t len)
{
    return submit_io(fd, OPC_READ, 0, len / NS2_BLOCK, buf);
}

static long op_io_cmd_read(int fd, void *buf, uint32_t len)
{
    return io_cmd(fd, OPC_READ, 2, 0, len / NS2_BLOCK, buf, len, NULL);
}

/* Reads stream through the namespace (the device keeps the position); near its end, open it again. */
static const char *stream_path;
static int stream_fd = -1;

static long op_read(int fd, void *buf, uint32_t len)
{
    (void)fd;
    if (stream_fd < 0)
        stream_fd = open_dev(stream_path);
    ssize_t n = read(stream_fd, buf, len);
    if (n >= 0 && n < (ssize_t)len) { /* the end, or short before it: from the start again */
        stream_fd = reopen(stream_fd, stream_path);
        n = read(stream_fd, buf, len);
    }
    return n == (ssize_t)len ? 0 : -1;
}

static void rate(const char *what, int fd, op_fn op, uint32_t len, double seconds)
{
    void *buf = xalloc(len);
    unsigned long n = 0;
    double t0 = now_s(), t;
    bool ok = true;
    do {
        for (int i = 0; i < 16 && ok; i++, n++)
            ok = op(fd, buf, len) == 0;
        t = now_s() - t0;
    } while (ok && t < seconds);
    check(ok, "%s: every request succeeded", what);
    printf("# rate %s: %.0f requests/s, %.1f MiB/s (%lu in %.2f s)\n", what, n / t, n * (double)len / t / 1048576.0, n,
           t);
    free(buf);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s CTRL NS1 NS2\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int ctrl = open_dev(argv[1]), ns1 = open_dev(argv[2]), ns2 = open_dev(argv[3]);

    if (getenv("RATE_ONLY") == NULL) {
        test_ctrlr(ctrl);
        test_block_queries(ns1, 1, NS1_BLOCK, NS1_BLOCKS);
        test_block_queries(ns2, 2, NS2_BLOCK, NS2_BLOCKS);
        test_ns_io(ns1, ns2);
        test_ns_rw(argv[2], NS1_BLOCK, NS1_BLOCKS);
        test_ns_rw(argv[3], NS2_BLOCK, NS2_BLOCKS);
        test_ctrlr_resets(ctrl, ns2);
    }

    double secs = getenv("RATE_SECONDS") ? atof(getenv("RATE_SECONDS")) : 1.0;
    rate("admin Identify (ADMIN_CMD, 4 KiB)", ctrl, op_identify, 4096, secs);
    rate("SUBMIT_IO read 4 KiB", ns2, op_submit_read, 4096, secs);
    rate("SUBMIT_IO read 128 KiB", ns2, op_submit_read, KIB128, secs);
    rate("IO_CMD read 4 KiB", ns2, op_io_cmd_read, 4096, secs);
    rate("IO_CMD read 124 KiB", ns2, op_io_cmd_read, 31 * NS2_BLOCK, secs);
    stream_path = argv[3];
    rate("read() 4 KiB", ns2, op_read, 4096, secs);
    rate("read() 128 KiB", ns2, op_read, KIB128, secs);

    close(ctrl);
    close(ns1);
    close(ns2);
    printf("# %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
