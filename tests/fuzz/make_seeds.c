/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpus of fuzz_server_msg into the directory argv[1]:
 * valid message sequences a client would send, so the fuzzer starts from
 * inputs that reach every handler instead of stopping at VERSION.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vnvme/vfio_user_proto.h"

struct seed {
    uint8_t buf[4096];
    size_t len;
    uint16_t next_id;
};

static void add(struct seed *sd, uint16_t cmd, uint32_t flags, const void *payload, size_t len)
{
    struct vfio_user_header h = {
        .msg_id = sd->next_id++, .cmd = cmd, .msg_size = (uint32_t)(sizeof(h) + len), .flags = flags};
    if (sd->len + sizeof(h) + len > sizeof(sd->buf)) {
        fprintf(stderr, "seed too large\n");
        exit(1);
    }
    memcpy(sd->buf + sd->len, &h, sizeof(h));
    if (len)
        memcpy(sd->buf + sd->len + sizeof(h), payload, len);
    sd->len += sizeof(h) + len;
}

static void cmd(struct seed *sd, uint16_t c, const void *payload, size_t len)
{
    add(sd, c, VFIO_USER_F_TYPE_COMMAND, payload, len);
}

static void version(struct seed *sd)
{
    static const char json[] = "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":1048576,"
                               "\"max_dma_maps\":16,\"pgsizes\":4096}}";
    uint8_t p[4 + sizeof(json)];
    struct vfio_user_version v = {.major = VFIO_USER_VERSION_MAJOR, .minor = VFIO_USER_VERSION_MINOR};
    memcpy(p, &v, sizeof(v));
    memcpy(p + sizeof(v), json, sizeof(json));
    cmd(sd, VFIO_USER_VERSION, p, sizeof(p));
}

static void set_irqs(struct seed *sd, uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
                     const uint8_t *data, size_t data_len)
{
    uint8_t p[64];
    struct vfio_irq_set is = {
        .argsz = (uint32_t)(sizeof(is) + data_len), .flags = flags, .index = index, .start = start, .count = count};
    memcpy(p, &is, sizeof(is));
    if (data_len)
        memcpy(p + sizeof(is), data, data_len);
    cmd(sd, VFIO_USER_DEVICE_SET_IRQS, p, sizeof(is) + data_len);
}

static void dma_map(struct seed *sd, uint64_t iova, uint64_t size, uint64_t offset)
{
    struct vfio_user_dma_map m = {.argsz = sizeof(m),
                                  .flags = VFIO_USER_DMA_F_READ | VFIO_USER_DMA_F_WRITE,
                                  .offset = offset,
                                  .addr = iova,
                                  .size = size};
    cmd(sd, VFIO_USER_DMA_MAP, &m, sizeof(m));
}

static void dma_unmap(struct seed *sd, uint64_t iova, uint64_t size, uint32_t flags)
{
    struct vfio_user_dma_unmap u = {.argsz = sizeof(u), .flags = flags, .addr = iova, .size = size};
    cmd(sd, VFIO_USER_DMA_UNMAP, &u, sizeof(u));
}

static void region_read(struct seed *sd, uint32_t region, uint64_t offset, uint32_t count)
{
    struct vfio_user_region_access ra = {.offset = offset, .region = region, .count = count};
    cmd(sd, VFIO_USER_REGION_READ, &ra, sizeof(ra));
}

static void region_write(struct seed *sd, uint32_t flags, uint32_t region, uint64_t offset, uint32_t count)
{
    uint8_t p[16 + 64];
    struct vfio_user_region_access ra = {.offset = offset, .region = region, .count = count};
    memcpy(p, &ra, sizeof(ra));
    for (uint32_t i = 0; i < count && i < 64; i++)
        p[16 + i] = (uint8_t)(i + 1);
    add(sd, VFIO_USER_REGION_WRITE, flags, p, sizeof(ra) + count);
}

static void write_seed(const char *dir, int n, const struct seed *sd)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/seed-%02d", dir, n);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(sd->buf, 1, sd->len, f) != sd->len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int n = 0;
    struct seed sd;

#define SEED(...)                                                                                                     \
    do {                                                                                                               \
        memset(&sd, 0, sizeof(sd));                                                                                    \
        sd.next_id = 1;                                                                                                \
        __VA_ARGS__;                                                                                                    \
        write_seed(dir, n++, &sd);                                                                                     \
    } while (0)

    SEED(version(&sd));
    SEED({
        version(&sd);
        struct vfio_user_device_info di = {.argsz = sizeof(di)};
        cmd(&sd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di));
    });
    SEED({
        version(&sd);
        for (uint32_t i = 0; i < 3; i++) {
            struct vfio_region_info ri = {.argsz = i == 2 ? 256 : 32, .index = i};
            cmd(&sd, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri));
        }
    });
    SEED({
        version(&sd);
        region_read(&sd, 0, 0, 4);
        region_read(&sd, 2, 4096, 64);
    });
    SEED({
        version(&sd);
        region_write(&sd, VFIO_USER_F_TYPE_COMMAND, 0, 16, 8);
        region_write(&sd, VFIO_USER_F_TYPE_COMMAND | VFIO_USER_F_NO_REPLY, 0, 24, 4);
        region_read(&sd, 0, 16, 12);
    });
    SEED({
        version(&sd);
        struct vfio_irq_info ii = {.argsz = sizeof(ii), .index = VFIO_PCI_MSIX_IRQ_INDEX};
        cmd(&sd, VFIO_USER_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii));
    });
    /* SET_IRQS eventfd: the harness attaches `count` eventfds. */
    SEED({
        version(&sd);
        set_irqs(&sd, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 0, 4, NULL, 0);
        set_irqs(&sd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 1, 2, NULL, 0);
    });
    SEED({
        version(&sd);
        uint8_t b[4] = {1, 0, 1, 1};
        set_irqs(&sd, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 4, NULL, 0);
        set_irqs(&sd, VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSI_IRQ_INDEX, 0, 4, b, 4);
    });
    SEED({
        version(&sd);
        set_irqs(&sd, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL, 0);
        set_irqs(&sd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL, 0);
        set_irqs(&sd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL, 0);
        set_irqs(&sd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL, 0);
    });
    SEED({
        version(&sd);
        set_irqs(&sd, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 0, 8, NULL, 0);
        set_irqs(&sd, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_PCI_MSIX_IRQ_INDEX, 0, 0, NULL, 0);
    });
    /* DMA_MAP: the harness attaches a 64 KiB memfd. */
    SEED({
        version(&sd);
        dma_map(&sd, 0x100000, 0x10000, 0);
    });
    SEED({
        version(&sd);
        dma_map(&sd, 0x100000, 0x8000, 0);
        dma_map(&sd, 0x200000, 0x8000, 0x8000);
        dma_unmap(&sd, 0x100000, 0x8000, 0);
        dma_unmap(&sd, 0x200000, 0x4000, 0);
    });
    SEED({
        version(&sd);
        dma_map(&sd, 0x100000, 0x4000, 0);
        dma_map(&sd, 0x300000, 0x4000, 0x4000);
        dma_unmap(&sd, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL);
    });
    SEED({
        version(&sd);
        cmd(&sd, VFIO_USER_DEVICE_RESET, NULL, 0);
    });
    SEED({
        version(&sd);
        cmd(&sd, VFIO_USER_DEVICE_FEATURE, "\0\0\0\0\0\0\0\0", 8);
        cmd(&sd, VFIO_USER_DMA_READ, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
        add(&sd, VFIO_USER_DEVICE_GET_INFO, VFIO_USER_F_TYPE_REPLY, NULL, 0);
        version(&sd);
    });
    SEED({
        struct vfio_user_device_info di = {.argsz = sizeof(di)};
        cmd(&sd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di)); /* before VERSION */
        version(&sd);
        cmd(&sd, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di));
    });
    printf("wrote %d seeds to %s\n", n, dir);
    return 0;
}
