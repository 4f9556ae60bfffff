/* SPDX-License-Identifier: MIT */
#include "demo_device.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"

#define MAX_XFER (1u << 20)

struct demo_device {
    struct vfio_user_server *srv;
    struct vfio_user_pci *pci;
    int shared_fd;
    uint8_t *shared; /* BAR0, both pages; the client maps page 1 */
    uint64_t src, dst, scratch;
    uint32_t len, pattern, status, done, vector;
    uint8_t *bounce;
};

static void reset_registers(struct demo_device *d)
{
    d->src = d->dst = d->scratch = 0;
    d->len = d->pattern = d->status = d->done = d->vector = 0;
}

static int run_command(struct demo_device *d, uint32_t cmd)
{
    if (d->len > MAX_XFER)
        return EINVAL;
    if (!vfio_user_pci_bus_master(d->pci))
        return EPERM; /* a device may not touch memory before the driver allows it */
    int rc;
    switch (cmd) {
    case DEMO_CMD_COPY:
        rc = vfio_user_server_dma_read(d->srv, d->src, d->bounce, d->len);
        if (rc == 0)
            rc = vfio_user_server_dma_write(d->srv, d->dst, d->bounce, d->len);
        return -rc;
    case DEMO_CMD_FILL:
        memset(d->bounce, (int)(d->pattern & 0xff), d->len);
        return -vfio_user_server_dma_write(d->srv, d->dst, d->bounce, d->len);
    default:
        return EINVAL;
    }
}

/* 32/64-bit registers; narrower or unaligned accesses are refused, as many devices do. */
static ssize_t bar0_access(void *ctx, uint8_t *buf, size_t count, uint64_t offset, bool is_write)
{
    struct demo_device *d = ctx;
    if (offset >= DEMO_SHARED_OFFSET) {
        /* The shared page also answers messages, for clients that do not mmap. */
        if (is_write)
            memcpy(d->shared + offset, buf, count);
        else
            memcpy(buf, d->shared + offset, count);
        return (ssize_t)count;
    }
    if ((count != 4 && count != 8) || offset % count)
        return -EINVAL;
    uint64_t v = 0;
    if (is_write)
        memcpy(&v, buf, count);
    uint64_t *reg64 = NULL;
    uint32_t *reg32 = NULL;
    uint64_t shared_head;
    memcpy(&shared_head, d->shared + DEMO_SHARED_OFFSET, sizeof(shared_head));
    switch (offset & ~7ull) {
    case DEMO_REG_SHARED:
        if (is_write)
            return (ssize_t)count; /* read-only */
        reg64 = &shared_head;
        break;
    case DEMO_REG_SRC: reg64 = &d->src; break;
    case DEMO_REG_DST: reg64 = &d->dst; break;
    case DEMO_REG_SCRATCH: reg64 = &d->scratch; break;
    default: break;
    }
    if (reg64) {
        /* A 4-byte access reaches one half of the 64-bit register. */
        unsigned shift = (offset & 4) * 8;
        uint64_t mask = count == 8 ? ~0ull : 0xffffffffull << shift;
        if (is_write)
            *reg64 = (*reg64 & ~mask) | ((v << shift) & mask);
        else
            v = (*reg64 & mask) >> shift;
    } else {
        if (count != 4)
            return -EINVAL;
        switch (offset) {
        case DEMO_REG_ID: v = DEMO_ID_VALUE; break;
        case DEMO_REG_LEN: reg32 = &d->len; break;
        case DEMO_REG_PATTERN: reg32 = &d->pattern; break;
        case DEMO_REG_VECTOR: reg32 = &d->vector; break;
        case DEMO_REG_STATUS: v = d->status; break;
        case DEMO_REG_DONE: v = d->done; break;
        case DEMO_REG_CMD:
            if (is_write) {
                d->status = (uint32_t)run_command(d, (uint32_t)v);
                d->done++;
                vfio_user_pci_irq(d->pci, d->vector);
            }
            v = 0;
            break;
        default: v = 0; break; /* reserved: reads zero, writes ignored */
        }
        if (reg32) {
            if (is_write)
                *reg32 = (uint32_t)v;
            else
                v = *reg32;
        }
    }
    if (!is_write)
        memcpy(buf, &v, count);
    return (ssize_t)count;
}

static int on_reset(void *ctx, enum vfio_user_reset_reason why)
{
    struct demo_device *d = ctx;
    if (why == VFIO_USER_RESET_CLIENT) {
        reset_registers(d);
        vfio_user_pci_reset(d->pci);
    }
    return 0;
}

static void on_function_reset(void *ctx)
{
    reset_registers(ctx);
}

static void on_connected(void *ctx)
{
    (void)ctx;
    VNVME_NOTICE("demo", "client connected");
}

static void on_disconnected(void *ctx)
{
    (void)ctx;
    VNVME_NOTICE("demo", "client disconnected; device state kept");
}

static void on_irq_changed(void *ctx, uint32_t index)
{
    struct demo_device *d = ctx;
    (void)index;
    vfio_user_pci_irqs_changed(d->pci);
}

static const struct vfio_user_server_ops server_ops = {
    .reset = on_reset,
    .irq_changed = on_irq_changed,
    .connected = on_connected,
    .disconnected = on_disconnected,
};

static const struct vfio_user_pci_ops pci_ops = {
    .function_reset = on_function_reset,
};

struct demo_device *demo_device_create(const char *socket_path, int *err)
{
    struct demo_device *d = calloc(1, sizeof(*d));
    int rc = -ENOMEM;
    if (!d)
        goto fail;
    d->shared_fd = -1;
    d->bounce = malloc(MAX_XFER);
    if (!d->bounce)
        goto fail;
    d->shared_fd = memfd_create("demo-bar0", MFD_CLOEXEC);
    if (d->shared_fd < 0 || ftruncate(d->shared_fd, DEMO_BAR0_SIZE) < 0) {
        rc = -errno;
        goto fail;
    }
    d->shared = mmap(NULL, DEMO_BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, d->shared_fd, 0);
    if (d->shared == MAP_FAILED) {
        d->shared = NULL;
        rc = -errno;
        goto fail;
    }
    struct vfio_user_server_config cfg = {
        .socket_path = socket_path,
        .flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
        .num_regions = VFIO_USER_PCI_NUM_REGIONS,
        .num_irqs = VFIO_USER_PCI_NUM_IRQS,
        .ops = &server_ops,
        .dev_ctx = d,
    };
    d->srv = vfio_user_server_create(&cfg, &rc);
    if (!d->srv)
        goto fail;
    struct vfio_user_pci_info info = {
        .vendor_id = DEMO_VENDOR_ID,
        .device_id = DEMO_DEVICE_ID,
        .subsys_vendor_id = DEMO_VENDOR_ID,
        .subsys_id = DEMO_DEVICE_ID,
        .class_code = 0xff0000, /* unassigned class: nobody's driver binds to it */
        .intx_pin = 1,
        .msix_vectors = DEMO_MSIX_VECTORS,
        .msix_table_bar = 4,
        .msix_pba_bar = 5,
        .ops = &pci_ops,
        .dev_ctx = d,
    };
    d->pci = vfio_user_pci_create(d->srv, &info, &rc);
    if (!d->pci)
        goto fail;
    struct vfio_user_sparse_area shared_page = {.offset = DEMO_SHARED_OFFSET, .size = 0x1000};
    rc = vfio_user_pci_setup_bar(d->pci, 0, DEMO_BAR0_SIZE, 0, bar0_access, d->shared_fd, 0, 1, &shared_page);
    if (rc == 0)
        rc = vfio_user_pci_setup_bar(d->pci, 4, 0x1000, 0, NULL, -1, 0, 0, NULL);
    if (rc == 0)
        rc = vfio_user_pci_setup_bar(d->pci, 5, 0x1000, 0, NULL, -1, 0, 0, NULL);
    if (rc)
        goto fail;
    return d;
fail:
    demo_device_destroy(d);
    if (err)
        *err = rc;
    return NULL;
}

void demo_device_destroy(struct demo_device *d)
{
    if (!d)
        return;
    /* The server's callbacks point into the PCI model: the server goes first. */
    if (d->srv)
        vfio_user_server_destroy(d->srv);
    if (d->pci)
        vfio_user_pci_destroy(d->pci);
    if (d->shared)
        munmap(d->shared, DEMO_BAR0_SIZE);
    if (d->shared_fd >= 0)
        close(d->shared_fd);
    free(d->bounce);
    free(d);
}

struct vfio_user_server *demo_device_server(struct demo_device *d)
{
    return d->srv;
}

uint64_t demo_device_commands(const struct demo_device *d)
{
    return d->done;
}

int demo_device_run(struct demo_device *d, volatile int *stop)
{
    while (!*stop) {
        struct pollfd p[2];
        int n = 0, lfd, cfd;
        vfio_user_server_fds(d->srv, &lfd, &cfd);
        if (lfd >= 0)
            p[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
        if (cfd >= 0)
            p[n++] = (struct pollfd){.fd = cfd, .events = POLLIN};
        int rc = poll(p, (nfds_t)n, 100);
        if (rc < 0 && errno != EINTR)
            return -errno;
        rc = vfio_user_server_poll(d->srv);
        if (rc < 0)
            return rc;
    }
    return 0;
}
