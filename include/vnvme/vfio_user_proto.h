/* SPDX-License-Identifier: MIT */
/*
 * vfio-user wire format (protocol version 0.1, qemu docs/interop/vfio-user.rst).
 *
 * Everything here is what travels on the socket. Structures that the spec
 * borrows from the kernel VFIO uapi (region info, IRQ info, IRQ set, sparse
 * mmap capability) are taken from <linux/vfio.h> so both sides share one
 * definition. All fields are host-endian, as the spec requires.
 */
#ifndef VNVME_VFIO_USER_PROTO_H
#define VNVME_VFIO_USER_PROTO_H

#include <stdint.h>
#include <linux/vfio.h>

#define VFIO_USER_VERSION_MAJOR 0
#define VFIO_USER_VERSION_MINOR 1

enum vfio_user_command {
    VFIO_USER_VERSION = 1,
    VFIO_USER_DMA_MAP = 2,
    VFIO_USER_DMA_UNMAP = 3,
    VFIO_USER_DEVICE_GET_INFO = 4,
    VFIO_USER_DEVICE_GET_REGION_INFO = 5,
    VFIO_USER_DEVICE_GET_REGION_IO_FDS = 6,
    VFIO_USER_DEVICE_GET_IRQ_INFO = 7,
    VFIO_USER_DEVICE_SET_IRQS = 8,
    VFIO_USER_REGION_READ = 9,
    VFIO_USER_REGION_WRITE = 10,
    VFIO_USER_DMA_READ = 11,
    VFIO_USER_DMA_WRITE = 12,
    VFIO_USER_DEVICE_RESET = 13,
    VFIO_USER_REGION_WRITE_MULTI = 15,
    VFIO_USER_DEVICE_FEATURE = 16,
    VFIO_USER_MIG_DATA_READ = 17,
    VFIO_USER_MIG_DATA_WRITE = 18,
    VFIO_USER_MAX_COMMAND = 19,
};

/* Header flags. */
#define VFIO_USER_F_TYPE_MASK 0xfu
#define VFIO_USER_F_TYPE_COMMAND 0x0u
#define VFIO_USER_F_TYPE_REPLY 0x1u
#define VFIO_USER_F_NO_REPLY (1u << 4)
#define VFIO_USER_F_ERROR (1u << 5)

struct vfio_user_header {
    uint16_t msg_id;
    uint16_t cmd;
    uint32_t msg_size; /* whole message, header included */
    uint32_t flags;
    uint32_t error_no; /* errno in an error reply; reserved in commands */
};

/* Defaults the spec assumes when a capability is absent. */
#define VFIO_USER_DEFAULT_MAX_MSG_FDS 1u
#define VFIO_USER_DEFAULT_MAX_DATA_XFER (1u << 20)
#define VFIO_USER_DEFAULT_MAX_DMA_MAPS 65535u
#define VFIO_USER_DEFAULT_PGSIZES 4096ull

/*
 * The largest values a server may offer in its VERSION reply: QEMU's
 * vfio-user-pci (10.x) refuses the connection over any of them ("malformed
 * max_msg_fds", "max_dma_maps too large"), and it is the client VMs have.
 */
#define VFIO_USER_MAX_MSG_FDS_LIMIT 16u
#define VFIO_USER_MAX_DATA_XFER_LIMIT (64u << 20)
#define VFIO_USER_MAX_DMA_MAPS_LIMIT 65535u

struct vfio_user_version {
    uint16_t major;
    uint16_t minor;
    char data[]; /* optional NUL-terminated JSON capabilities */
};

/* DEVICE_GET_INFO payload: 16 bytes on the wire (the kernel struct grew since). */
struct vfio_user_device_info {
    uint32_t argsz;
    uint32_t flags; /* VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI */
    uint32_t num_regions;
    uint32_t num_irqs;
};

/* DMA_MAP flags. */
#define VFIO_USER_DMA_F_READ (1u << 0)
#define VFIO_USER_DMA_F_WRITE (1u << 1)

struct vfio_user_dma_map {
    uint32_t argsz;
    uint32_t flags;
    uint64_t offset; /* into the passed fd; 0 when no fd */
    uint64_t addr;   /* IOVA */
    uint64_t size;
};

struct vfio_user_dma_unmap {
    uint32_t argsz;
    uint32_t flags; /* VFIO_DMA_UNMAP_FLAG_ALL is the only one honoured */
    uint64_t addr;
    uint64_t size;
};

/* REGION_READ / REGION_WRITE request and reply. */
struct vfio_user_region_access {
    uint64_t offset;
    uint32_t region;
    uint32_t count;
    uint8_t data[];
};

/* DMA_READ / DMA_WRITE, sent by the server. */
struct vfio_user_dma_access {
    uint64_t addr;
    uint64_t count;
    uint8_t data[];
};

/* One element of REGION_WRITE_MULTI. */
struct vfio_user_write_multi_entry {
    uint64_t offset;
    uint32_t region;
    uint32_t count; /* at most 8 */
    uint8_t data[8];
};

#define VFIO_USER_WRITE_MULTI_MAX 8u

/*
 * Sizes checked at compile time: these are the wire layouts from the spec,
 * and a padding surprise would silently break interoperability.
 */
_Static_assert(sizeof(struct vfio_user_header) == 16, "header is 16 bytes");
_Static_assert(sizeof(struct vfio_user_dma_map) == 32, "DMA_MAP is 32 bytes");
_Static_assert(sizeof(struct vfio_user_dma_unmap) == 24, "DMA_UNMAP is 24 bytes");
_Static_assert(sizeof(struct vfio_user_region_access) == 16, "region access is 16 bytes");
_Static_assert(sizeof(struct vfio_user_dma_access) == 16, "DMA access is 16 bytes");
_Static_assert(sizeof(struct vfio_user_write_multi_entry) == 24, "write multi entry is 24 bytes");
_Static_assert(sizeof(struct vfio_region_info) == 32, "region info is 32 bytes");
_Static_assert(sizeof(struct vfio_irq_info) == 16, "irq info is 16 bytes");
_Static_assert(sizeof(struct vfio_irq_set) == 20, "irq set is 20 bytes");
_Static_assert(sizeof(struct vfio_user_device_info) == 16, "device info is 16 bytes");

const char *vfio_user_command_name(uint16_t cmd);

#endif
