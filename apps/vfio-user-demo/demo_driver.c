/* SPDX-License-Identifier: MIT */
#include "demo_driver.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "demo_device.h"

#define BAR0 VFIO_PCI_BAR0_REGION_INDEX
#define CONFIG VFIO_PCI_CONFIG_REGION_INDEX
#define PCI_CAP_ID_MSIX 0x11

int demo_reg_read32(struct demo_driver *drv, uint64_t off, uint32_t *v)
{
    return vfio_user_client_region_read(drv->c, BAR0, off, v, 4);
}

int demo_reg_write32(struct demo_driver *drv, uint64_t off, uint32_t v)
{
    return vfio_user_client_region_write(drv->c, BAR0, off, &v, 4);
}

int demo_reg_read64(struct demo_driver *drv, uint64_t off, uint64_t *v)
{
    return vfio_user_client_region_read(drv->c, BAR0, off, v, 8);
}

int demo_reg_write64(struct demo_driver *drv, uint64_t off, uint64_t v)
{
    return vfio_user_client_region_write(drv->c, BAR0, off, &v, 8);
}

void demo_driver_close(struct demo_driver *drv)
{
    if (drv->c)
        vfio_user_client_close(drv->c);
    if (drv->mem)
        munmap(drv->mem, DEMO_DRIVER_MEM_SIZE);
    if (drv->memfd >= 0)
        close(drv->memfd);
    if (drv->irq_fd >= 0)
        close(drv->irq_fd);
    memset(drv, 0, sizeof(*drv));
    drv->memfd = drv->irq_fd = -1;
}

int demo_driver_open(struct demo_driver *drv, const char *socket_path)
{
    int rc;
    memset(drv, 0, sizeof(*drv));
    drv->memfd = drv->irq_fd = -1;
    drv->c = vfio_user_client_connect(socket_path, 5000, &rc);
    if (!drv->c)
        return rc;
    /* Memory decoding + bus mastering, as a guest driver's pci_enable_device/set_master would. */
    rc = vfio_user_client_pci_set16(drv->c, 0x04, 0x0006);
    if (rc)
        goto fail;
    const struct vfio_user_client_region *r = vfio_user_client_region(drv->c, BAR0, &rc);
    if (!r)
        goto fail;
    drv->shared = vfio_user_client_region_ptr(drv->c, BAR0, DEMO_SHARED_OFFSET, 0x1000);

    drv->memfd = memfd_create("demo-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (drv->memfd < 0 || ftruncate(drv->memfd, DEMO_DRIVER_MEM_SIZE) < 0) {
        rc = -errno;
        goto fail;
    }
    drv->mem = mmap(NULL, DEMO_DRIVER_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, drv->memfd, 0);
    if (drv->mem == MAP_FAILED) {
        drv->mem = NULL;
        rc = -errno;
        goto fail;
    }
    rc = vfio_user_client_dma_map(drv->c, DEMO_DRIVER_IOVA, DEMO_DRIVER_MEM_SIZE,
                                  VFIO_USER_DMA_F_READ | VFIO_USER_DMA_F_WRITE, drv->memfd, 0, drv->mem);
    if (rc)
        goto fail;

    drv->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (drv->irq_fd < 0) {
        rc = -errno;
        goto fail;
    }
    rc = vfio_user_client_set_irqs(drv->c, VFIO_PCI_MSIX_IRQ_INDEX,
                                   VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1, &drv->irq_fd, NULL);
    if (rc)
        goto fail;
    int msix = vfio_user_client_pci_find_cap(drv->c, PCI_CAP_ID_MSIX);
    if (msix < 0) {
        rc = msix;
        goto fail;
    }
    /* MSI-X enable. The eventfd enabled the vector; like a VMM, the device's table is not ours to write. */
    rc = vfio_user_client_pci_set16(drv->c, (uint64_t)msix + 2, 0x8000);
    if (rc)
        goto fail;
    return 0;
fail:
    demo_driver_close(drv);
    return rc;
}

int demo_run(struct demo_driver *drv, uint32_t cmd, uint64_t src, uint64_t dst, uint32_t len, uint8_t pattern)
{
    int rc = demo_reg_write64(drv, DEMO_REG_SRC, src);
    if (!rc)
        rc = demo_reg_write64(drv, DEMO_REG_DST, dst);
    if (!rc)
        rc = demo_reg_write32(drv, DEMO_REG_LEN, len);
    if (!rc)
        rc = demo_reg_write32(drv, DEMO_REG_PATTERN, pattern);
    if (!rc)
        rc = demo_reg_write32(drv, DEMO_REG_CMD, cmd);
    if (rc)
        return rc;
    struct pollfd p = {.fd = drv->irq_fd, .events = POLLIN};
    for (;;) {
        /* Serve the device's DMA_READ/WRITE requests (fd-less memory) while waiting. */
        int n = vfio_user_client_poll(drv->c);
        if (n < 0)
            return n;
        int prc = poll(&p, 1, 2000);
        if (prc == 0)
            return -ETIMEDOUT;
        if (prc > 0)
            break;
    }
    uint64_t ev;
    if (read(drv->irq_fd, &ev, sizeof(ev)) != sizeof(ev))
        return -EIO;
    uint32_t status;
    rc = demo_reg_read32(drv, DEMO_REG_STATUS, &status);
    return rc ? rc : (int)status;
}

#define STEP(...)                                                                                                      \
    do {                                                                                                               \
        fprintf(out, "  " __VA_ARGS__);                                                                                \
        fputc('\n', out);                                                                                              \
    } while (0)
#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(out, "  FAILED: " __VA_ARGS__);                                                                    \
            fputc('\n', out);                                                                                          \
            goto done;                                                                                                 \
        }                                                                                                              \
    } while (0)

int demo_walkthrough(const char *socket_path, FILE *out)
{
    struct demo_driver drv;
    int result = 1;
    fprintf(out, "client: connecting to %s\n", socket_path);
    int rc = demo_driver_open(&drv, socket_path);
    if (rc) {
        fprintf(out, "  FAILED: open: %s\n", strerror(-rc));
        return 1;
    }
    const struct vfio_user_client_caps *caps = vfio_user_client_server_caps(drv.c);
    STEP("negotiated vfio-user 0.%u: max_msg_fds=%u max_data_xfer_size=%u max_dma_maps=%u pgsizes=%#" PRIx64,
         vfio_user_client_version_minor(drv.c), caps->max_msg_fds, caps->max_data_xfer_size, caps->max_dma_maps,
         caps->pgsizes);

    struct vfio_user_device_info info;
    rc = vfio_user_client_device_info(drv.c, &info);
    CHECK(rc == 0, "DEVICE_GET_INFO: %s", strerror(-rc));
    STEP("device: %u regions, %u irq types, flags %#x", info.num_regions, info.num_irqs, info.flags);

    uint16_t ids[2];
    rc = vfio_user_client_region_read(drv.c, CONFIG, 0, ids, 4);
    CHECK(rc == 0 && ids[0] == DEMO_VENDOR_ID && ids[1] == DEMO_DEVICE_ID, "config space ids");
    STEP("config space: vendor %04x device %04x (REGION_READ of region 7)", ids[0], ids[1]);

    uint32_t id;
    rc = demo_reg_read32(&drv, DEMO_REG_ID, &id);
    CHECK(rc == 0 && id == DEMO_ID_VALUE, "ID register");
    STEP("BAR0 register ID = %#x (trapped: REGION_READ reaches the device callback)", id);

    CHECK(drv.shared != NULL, "BAR0 page 1 is not mmapped");
    memcpy(drv.shared, "vnvme!!", 8);
    uint64_t seen;
    rc = demo_reg_read64(&drv, DEMO_REG_SHARED, &seen);
    CHECK(rc == 0 && memcmp(&seen, "vnvme!!", 8) == 0, "device did not see the shared page store");
    STEP("stored \"vnvme!!\" into the mmapped BAR0 page; the device reads it back from its side");

    rc = demo_run(&drv, DEMO_CMD_FILL, 0, DEMO_DRIVER_IOVA + 4096, 65536, 0x5a);
    CHECK(rc == 0, "FILL: %d", rc);
    for (size_t i = 0; i < 65536; i++)
        CHECK(drv.mem[4096 + i] == 0x5a, "FILL byte %zu is %#x", i, drv.mem[4096 + i]);
    CHECK(drv.mem[4095] == 0 && drv.mem[4096 + 65536] == 0, "FILL wrote outside its range");
    STEP("FILL 64 KiB at IOVA %#llx: the device wrote client memory through DMA_MAP; MSI-X vector 0 fired",
         (unsigned long long)DEMO_DRIVER_IOVA + 4096);

    for (size_t i = 0; i < 300000; i++)
        drv.mem[0x100000 + i] = (uint8_t)(i * 31 + 7);
    rc = demo_run(&drv, DEMO_CMD_COPY, DEMO_DRIVER_IOVA + 0x100000, DEMO_DRIVER_IOVA + 0x20000, 300000, 0);
    CHECK(rc == 0, "COPY: %d", rc);
    CHECK(memcmp(drv.mem + 0x100000, drv.mem + 0x20000, 300000) == 0, "COPY result differs");
    STEP("COPY 300000 bytes inside client memory: verified");

    rc = demo_run(&drv, DEMO_CMD_FILL, 0, 0x1000, 16, 1);
    CHECK(rc == EFAULT, "FILL outside shared memory should fail with EFAULT, got %d", rc);
    STEP("FILL at an IOVA the client never shared: refused with EFAULT, nothing written");

    rc = demo_reg_write64(&drv, DEMO_REG_SCRATCH, 0x1234567890abcdefull);
    CHECK(rc == 0, "scratch write");
    demo_driver_close(&drv);
    rc = demo_driver_open(&drv, socket_path);
    CHECK(rc == 0, "reconnect: %s", strerror(-rc));
    uint64_t scratch;
    rc = demo_reg_read64(&drv, DEMO_REG_SCRATCH, &scratch);
    CHECK(rc == 0 && scratch == 0x1234567890abcdefull, "scratch after reconnect");
    STEP("disconnected and reconnected: device state kept (scratch = %#" PRIx64 ")", scratch);
    result = 0;
done:
    demo_driver_close(&drv);
    return result;
}
