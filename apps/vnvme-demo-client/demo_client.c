/* SPDX-License-Identifier: MIT */
/*
 * vnvme-demo-client SOCKET: act as a guest's NVMe driver against a vfio-user
 * NVMe controller (vnvmed, or any other) and show each step: bring the PCI
 * function up, enable the controller, identify, create an I/O queue pair,
 * write a pattern, read it back and verify, then shut down cleanly.
 */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvme_guest.h"

#define GUEST_RAM (64u << 20)
#define CHUNK (128u << 10)
#define TOTAL (8u << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Identify strings are space padded, not NUL terminated. */
static void print_field(const char *label, const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\0'))
        n--;
    printf("  %-10s %.*s\n", label, (int)n, s);
}

static int fail(const char *what, int rc)
{
    if (rc < 0)
        fprintf(stderr, "demo-client: %s: %s\n", what, strerror(-rc));
    else
        fprintf(stderr, "demo-client: %s: NVMe status %#x\n", what, rc);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: vnvme-demo-client SOCKET   (e.g. /var/run/vnvme/nvme0/cntrl)\n");
        return 2;
    }
    struct nvme_guest g;
    int rc = ng_open(&g, argv[1], GUEST_RAM);
    if (rc)
        return fail("connect", rc);
    printf("connected to %s; %u MiB of guest memory shared with DMA_MAP\n", argv[1], GUEST_RAM >> 20);
    rc = ng_enable(&g, 32);
    if (rc) {
        ng_close(&g);
        return fail("enable", rc);
    }
    uint32_t vs = 0;
    ng_read32(&g, NVME_REG_VS, &vs);
    printf("controller enabled: NVMe %u.%u, MQES %u, doorbells %s\n", vs >> 16, (vs >> 8) & 0xff,
           NVME_CAP_MQES(g.cap) + 1, g.db ? "in the mmapped BAR0 page" : "by message");

    uint64_t id_iova = ng_alloc(&g, 4096, 4096);
    int result = 1;
    if ((rc = ng_identify(&g, NVME_ID_CNS_CTRL, 0, id_iova)) != 0) {
        fail("identify controller", rc);
        goto out;
    }
    const struct nvme_id_ctrl *ic = ng_ptr(&g, id_iova);
    printf("identify controller:\n");
    print_field("model", ic->mn, sizeof(ic->mn));
    print_field("serial", ic->sn, sizeof(ic->sn));
    print_field("firmware", ic->fr, sizeof(ic->fr));
    print_field("subnqn", ic->subnqn, sizeof(ic->subnqn));
    printf("  %-10s %u KiB per command, %u namespace(s) max\n", "mdts", 4u << ic->mdts, ic->nn);

    if ((rc = ng_identify(&g, NVME_ID_CNS_NS, 1, id_iova)) != 0) {
        fail("identify namespace 1", rc);
        goto out;
    }
    const struct nvme_id_ns *ns = ng_ptr(&g, id_iova);
    uint32_t bs = 1u << ns->lbaf[ns->flbas & 0xf].lbads;
    uint64_t nsze = ns->nsze;
    printf("namespace 1: %" PRIu64 " blocks of %u bytes (%.1f GiB)\n", nsze, bs,
           (double)nsze * bs / (1024.0 * 1024 * 1024));
    if (nsze * bs < TOTAL) {
        fprintf(stderr, "demo-client: namespace too small for the demo\n");
        goto out;
    }

    uint32_t nq;
    if ((rc = ng_set_num_queues(&g, 1, 1, &nq)) != 0 || (rc = ng_create_io_queues(&g, 1, 64, 1)) != 0) {
        fail("create I/O queues", rc);
        goto out;
    }
    printf("I/O queue pair 1 created (64 entries, MSI-X vector 1)\n");

    uint64_t buf = ng_alloc(&g, CHUNK, 4096);
    uint8_t *p = ng_ptr(&g, buf);
    double t0 = now_s();
    for (uint32_t off = 0; off < TOTAL; off += CHUNK) {
        for (uint32_t i = 0; i < CHUNK; i++)
            p[i] = (uint8_t)((off + i) * 131u >> 7);
        if ((rc = ng_rw(&g, 1, NVME_NVM_WRITE, 1, off / bs, CHUNK / bs, buf, CHUNK)) != 0) {
            fail("write", rc);
            goto out;
        }
    }
    double tw = now_s() - t0;
    t0 = now_s();
    for (uint32_t off = 0; off < TOTAL; off += CHUNK) {
        memset(p, 0, CHUNK);
        if ((rc = ng_rw(&g, 1, NVME_NVM_READ, 1, off / bs, CHUNK / bs, buf, CHUNK)) != 0) {
            fail("read", rc);
            goto out;
        }
        for (uint32_t i = 0; i < CHUNK; i++) {
            if (p[i] != (uint8_t)((off + i) * 131u >> 7)) {
                fprintf(stderr, "demo-client: data mismatch at byte %u\n", off + i);
                goto out;
            }
        }
    }
    double tr = now_s() - t0;
    printf("wrote %u MiB in 128 KiB commands and read it back: verified (one command at a time: "
           "write %.0f MiB/s, read+verify %.0f MiB/s)\n",
           TOTAL >> 20, TOTAL / 1048576.0 / tw, TOTAL / 1048576.0 / tr);

    rc = ng_rw(&g, 1, NVME_NVM_READ, 1, nsze, 1, buf, bs);
    /* Compare SCT and SC only; the controller may add DNR. */
    bool out_of_range = rc > 0 && (rc & 0x7ff) == NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE);
    printf("read past the end of the namespace: status %#x (%s)\n", rc,
           out_of_range ? "LBA Out of Range, as the spec says" : "unexpected");
    if (!out_of_range)
        goto out;

    if ((rc = ng_shutdown(&g)) != 0) {
        fail("shutdown", rc);
        goto out;
    }
    printf("normal shutdown: CSTS.SHST = complete\n");
    result = 0;
out:
    ng_close(&g);
    printf("demo: %s\n", result ? "FAILED" : "OK");
    return result;
}
