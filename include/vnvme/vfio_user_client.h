/* SPDX-License-Identifier: MIT */
/*
 * vfio-user client: the VMM side of the protocol, what QEMU's vfio-user-pci
 * does and what vnvme's userspace NVMe driver uses to reach a device.
 *
 * Calls are synchronous request/reply with a timeout. While a call waits for
 * its reply, DMA_READ/DMA_WRITE requests from the server are served from the
 * memory the client registered with vfio_user_client_dma_map(), so a server
 * that needs client memory in the middle of a request never deadlocks.
 * Server requests that arrive while no call is in progress are served by
 * vfio_user_client_poll().
 *
 * A connection is used from one thread at a time (the caller serialises).
 */
#ifndef VNVME_VFIO_USER_CLIENT_H
#define VNVME_VFIO_USER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vnvme/vfio_user_proto.h"

struct vfio_user_client;

struct vfio_user_client_caps {
    uint32_t max_msg_fds;
    uint32_t max_data_xfer_size;
    uint32_t max_dma_maps;
    uint64_t pgsizes;
};

/* Local view of one device region. */
struct vfio_user_client_region {
    uint32_t index;
    uint32_t flags; /* VFIO_REGION_INFO_FLAG_* */
    uint64_t size;
    uint64_t fd_offset;
    int fd;         /* region fd the server sent, -1 if none */
    uint32_t nr_mmaps;
    struct {
        uint64_t offset; /* within the region */
        uint64_t size;
        void *addr;      /* local mapping, NULL if the mmap failed */
    } mmaps[8];
};

/*
 * Connect to socket_path and negotiate. timeout_ms bounds each request's
 * wait for a reply (0: 5000 ms). NULL with *err = -errno on failure.
 */
struct vfio_user_client *vfio_user_client_connect(const char *socket_path, int timeout_ms, int *err);
/* Unmap regions, close fds and the socket. */
void vfio_user_client_close(struct vfio_user_client *c);

int vfio_user_client_fd(const struct vfio_user_client *c);
/* What the server agreed to in VERSION. */
const struct vfio_user_client_caps *vfio_user_client_server_caps(const struct vfio_user_client *c);
uint16_t vfio_user_client_version_minor(const struct vfio_user_client *c);

int vfio_user_client_device_info(struct vfio_user_client *c, struct vfio_user_device_info *info);
int vfio_user_client_region_info(struct vfio_user_client *c, uint32_t index, struct vfio_region_info *info,
                                 uint8_t *caps_buf, size_t caps_buf_len, int *fd_out);
int vfio_user_client_irq_info(struct vfio_user_client *c, uint32_t index, struct vfio_irq_info *info);

/*
 * Query region index, and mmap its mappable parts (the sparse areas, or the
 * whole region when the server offers an fd without a sparse list). The
 * result stays valid until close. NULL with *err on failure.
 */
const struct vfio_user_client_region *vfio_user_client_region(struct vfio_user_client *c, uint32_t index,
                                                              int *err);
/* Local address of [offset, offset+len) of a region when it is mmapped, else NULL. */
void *vfio_user_client_region_ptr(struct vfio_user_client *c, uint32_t index, uint64_t offset, uint64_t len);

/* REGION_READ/REGION_WRITE messages, split at max_data_xfer_size. */
int vfio_user_client_region_read(struct vfio_user_client *c, uint32_t index, uint64_t offset, void *buf,
                                 size_t len);
int vfio_user_client_region_write(struct vfio_user_client *c, uint32_t index, uint64_t offset, const void *buf,
                                  size_t len);
/* Like region_write but sets No_reply: the server answers nothing unless it fails. */
int vfio_user_client_region_write_posted(struct vfio_user_client *c, uint32_t index, uint64_t offset,
                                         const void *buf, size_t len);
/* Access through the mmap when the range is mapped, else by message. */
int vfio_user_client_region_access(struct vfio_user_client *c, uint32_t index, uint64_t offset, void *buf,
                                   size_t len, bool is_write);

/*
 * Share memory with the server. vaddr is the client's own mapping of
 * [fd_offset, fd_offset+size) of fd (from memfd_create), used to serve the
 * server's DMA_READ/DMA_WRITE. fd -1 shares the range without an fd: the
 * server must then use DMA_READ/DMA_WRITE. prot: VFIO_USER_DMA_F_READ|_WRITE.
 */
int vfio_user_client_dma_map(struct vfio_user_client *c, uint64_t iova, uint64_t size, uint32_t prot, int fd,
                             uint64_t fd_offset, void *vaddr);
int vfio_user_client_dma_unmap(struct vfio_user_client *c, uint64_t iova, uint64_t size);
int vfio_user_client_dma_unmap_all(struct vfio_user_client *c);

/*
 * SET_IRQS. With fds != NULL, DATA_EVENTFD with count fds (sent in batches of
 * the server's max_msg_fds); with bools != NULL, DATA_BOOL; else DATA_NONE.
 */
int vfio_user_client_set_irqs(struct vfio_user_client *c, uint32_t index, uint32_t action, uint32_t start,
                              uint32_t count, const int *fds, const uint8_t *bools);

int vfio_user_client_device_reset(struct vfio_user_client *c);

/* PCI config space (region 7): offset of capability cap_id, -ENOENT when absent, or -errno. */
int vfio_user_client_pci_find_cap(struct vfio_user_client *c, uint8_t cap_id);
/* Set bits in a 16-bit config register (read-modify-write), e.g. the command register at 0x04. */
int vfio_user_client_pci_set16(struct vfio_user_client *c, uint64_t offset, uint16_t bits);

/*
 * Serve pending server requests (DMA_READ/DMA_WRITE) without blocking.
 * Returns the number served, or -errno (-ECONNRESET when the server left).
 */
int vfio_user_client_poll(struct vfio_user_client *c);

/* Raw request for tests and tools: send cmd with payload, receive reply payload. */
int vfio_user_client_request(struct vfio_user_client *c, uint16_t cmd, uint32_t flags, const void *payload,
                             size_t payload_len, const int *fds, size_t nfds, void *reply, size_t reply_max,
                             size_t *reply_len, int *reply_fds, size_t *reply_nfds);

/* Served DMA requests so far (for tests). */
uint64_t vfio_user_client_dma_requests_served(const struct vfio_user_client *c);

#endif
