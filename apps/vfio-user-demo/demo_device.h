/* SPDX-License-Identifier: MIT */
/*
 * A small PCI "copy engine" served over vfio-user: it exercises every part of
 * the library a real device uses (trapped registers, an mmapped page, DMA
 * into client memory, MSI-X) without the weight of NVMe. The demo and the
 * integration test both drive it.
 *
 * BAR0 (8 KiB): page 0 = registers below (trapped), page 1 = a shared page
 * the client mmaps (sparse area). BAR4 = MSI-X table, BAR5 = PBA.
 */
#ifndef VNVME_DEMO_DEVICE_H
#define VNVME_DEMO_DEVICE_H

#include <stdint.h>

#include "vnvme/vfio_user_pci.h"
#include "vnvme/vfio_user_server.h"

#define DEMO_VENDOR_ID 0x4e56 /* "NV": vnvme's own id space */
#define DEMO_DEVICE_ID 0x0d00
#define DEMO_MSIX_VECTORS 4

#define DEMO_REG_ID 0x00      /* RO: DEMO_ID_VALUE */
#define DEMO_REG_SRC 0x08     /* RW 64: source IOVA */
#define DEMO_REG_DST 0x10     /* RW 64: destination IOVA */
#define DEMO_REG_LEN 0x18     /* RW 32: bytes */
#define DEMO_REG_CMD 0x1c     /* WO 32: DEMO_CMD_* starts a command, runs it to completion */
#define DEMO_REG_PATTERN 0x20 /* RW 32: fill byte */
#define DEMO_REG_STATUS 0x24  /* RO 32: 0 or the errno of the last command */
#define DEMO_REG_DONE 0x28    /* RO 32: commands completed */
#define DEMO_REG_SCRATCH 0x30 /* RW 64 */
#define DEMO_REG_SHARED 0x38  /* RO 64: first 8 bytes of the shared page, read by the device */
#define DEMO_REG_VECTOR 0x40  /* RW 32: MSI-X vector raised when a command completes */

#define DEMO_ID_VALUE 0x444e5656u /* "VVND" */
#define DEMO_CMD_COPY 1           /* copy LEN bytes SRC -> DST in client memory */
#define DEMO_CMD_FILL 2           /* fill LEN bytes at DST with PATTERN */

#define DEMO_BAR0_SIZE 0x2000
#define DEMO_SHARED_OFFSET 0x1000

struct demo_device;

/* Create the device and its server at socket_path. NULL with *err on failure. */
struct demo_device *demo_device_create(const char *socket_path, int *err);
void demo_device_destroy(struct demo_device *d);
struct vfio_user_server *demo_device_server(struct demo_device *d);
/* Serve until *stop becomes non-zero (checked every poll timeout). */
int demo_device_run(struct demo_device *d, volatile int *stop);
uint64_t demo_device_commands(const struct demo_device *d);

#endif
