/* SPDX-License-Identifier: MIT */
/*
 * Client-side driver for the demo copy engine: what a VMM plus a guest driver
 * would do, in a few calls. Used by the demo walkthrough and the integration test.
 */
#ifndef VNVME_DEMO_DRIVER_H
#define VNVME_DEMO_DRIVER_H

#include <stdint.h>
#include <stdio.h>

#include "vnvme/vfio_user_client.h"

#define DEMO_DRIVER_IOVA 0x100000000ull
#define DEMO_DRIVER_MEM_SIZE (2u << 20)

struct demo_driver {
    struct vfio_user_client *c;
    int memfd;
    uint8_t *mem;      /* DEMO_DRIVER_MEM_SIZE bytes at IOVA DEMO_DRIVER_IOVA */
    int irq_fd;        /* eventfd of MSI-X vector 0 */
    uint8_t *shared;   /* the device's mmapped page in BAR0 */
};

/*
 * Connect, enable memory decoding and bus mastering, share DEMO_DRIVER_MEM_SIZE
 * bytes of memfd memory, wire MSI-X vector 0 to an eventfd and enable MSI-X.
 * Returns 0 or -errno.
 */
int demo_driver_open(struct demo_driver *drv, const char *socket_path);
void demo_driver_close(struct demo_driver *drv);

int demo_reg_read32(struct demo_driver *drv, uint64_t off, uint32_t *v);
int demo_reg_write32(struct demo_driver *drv, uint64_t off, uint32_t v);
int demo_reg_read64(struct demo_driver *drv, uint64_t off, uint64_t *v);
int demo_reg_write64(struct demo_driver *drv, uint64_t off, uint64_t v);

/*
 * Run a command and wait (up to 2 s) for its MSI-X interrupt. Returns the
 * device's status (0 or an errno value) or -errno when the driver itself failed.
 */
int demo_run(struct demo_driver *drv, uint32_t cmd, uint64_t src, uint64_t dst, uint32_t len, uint8_t pattern);

/* The walkthrough printed by vfio-user-demo; 0 when every step checked out. */
int demo_walkthrough(const char *socket_path, FILE *out);

#endif
