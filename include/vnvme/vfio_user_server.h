/* SPDX-License-Identifier: MIT */
/*
 * vfio-user server: the device side of the protocol.
 *
 * A device (for example the NVMe controller) creates one server per endpoint,
 * describes its regions and IRQs, and then calls vfio_user_server_poll() from
 * its own event loop whenever vfio_user_server_fd() is readable (or simply on
 * a timer). poll never blocks: it accepts a pending connection, handles every
 * complete message that has arrived and returns. One client is served at a
 * time; further connection attempts are accepted and closed at once so the
 * caller gets a clean EOF instead of a hang.
 *
 * All calls on one server must come from one thread. Region callbacks and
 * DMA notifications are made from inside vfio_user_server_poll().
 */
#ifndef VNVME_VFIO_USER_SERVER_H
#define VNVME_VFIO_USER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vnvme/vfio_user_dma.h"
#include "vnvme/vfio_user_proto.h"

struct vfio_user_server;

/* Number of regions and IRQ indexes of a PCI device under VFIO. */
#define VFIO_USER_PCI_NUM_REGIONS 9 /* BAR0-5, ROM, CONFIG, VGA */
#define VFIO_USER_PCI_NUM_IRQS 5    /* INTx, MSI, MSI-X, ERR, REQ */
#define VFIO_USER_MAX_SPARSE_AREAS 8

/*
 * Region access callback: copy count bytes at offset between the region and
 * buf. Offset and count have been checked against the region size. Return
 * count on success or a negative errno, which is sent to the client.
 */
typedef ssize_t (*vfio_user_region_access_cb)(void *ctx, uint8_t *buf, size_t count, uint64_t offset,
                                              bool is_write);

struct vfio_user_sparse_area {
    uint64_t offset; /* within the region */
    uint64_t size;
};

struct vfio_user_region_desc {
    uint64_t size;
    uint32_t flags;                    /* VFIO_REGION_INFO_FLAG_READ/_WRITE; MMAP is set from mmap_fd */
    vfio_user_region_access_cb access; /* required when READ or WRITE is set */
    void *ctx;                         /* passed to access */
    /* Mappable parts: an fd the client may mmap, and which parts of it. */
    int mmap_fd;                       /* -1: nothing mappable; the server dups it */
    uint64_t mmap_offset;              /* fd offset of region offset 0 */
    uint32_t nr_sparse;                /* 0 with an fd: the whole region is mappable */
    struct vfio_user_sparse_area sparse[VFIO_USER_MAX_SPARSE_AREAS];
};

enum vfio_user_reset_reason {
    VFIO_USER_RESET_CLIENT,     /* DEVICE_RESET message */
    VFIO_USER_RESET_DISCONNECT, /* the client went away; device state is kept, this is a notice */
};

/* Device callbacks; every one is optional. */
struct vfio_user_server_ops {
    /* DEVICE_RESET: return 0 or a negative errno for the reply. */
    int (*reset)(void *dev_ctx, enum vfio_user_reset_reason why);
    /* A DMA window was added (queues waiting for memory may be remapped). */
    void (*dma_map)(void *dev_ctx, const struct vfio_user_dma_region *r);
    /*
     * A DMA window is about to go: stop using it before returning (queues in
     * it must be quiesced). Called on DMA_UNMAP and on disconnect. Return
     * true when something of the device may still write the window (an I/O
     * that could not be recalled in time): the server then quarantines it
     * (vfio_user_dma_region_quarantine) instead of unmapping it, so such a
     * late write can never land in memory mapped there afterwards.
     */
    bool (*dma_unmap)(void *dev_ctx, const struct vfio_user_dma_region *r);
    /* An IRQ index's configuration changed (eventfds, masks). */
    void (*irq_changed)(void *dev_ctx, uint32_t index);
    void (*connected)(void *dev_ctx);
    void (*disconnected)(void *dev_ctx);
};

struct vfio_user_server_config {
    const char *socket_path;
    const gid_t *socket_group;   /* NULL: mode 0600; else 0660 and this group (lib/common/unix_listen.h) */
    uint32_t flags;              /* VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET */
    uint32_t num_regions;        /* VFIO_USER_PCI_NUM_REGIONS for PCI */
    uint32_t num_irqs;           /* VFIO_USER_PCI_NUM_IRQS for PCI */
    uint32_t max_data_xfer_size; /* 0: 1 MiB */
    uint32_t max_dma_maps;       /* 0: 1024 */
    const struct vfio_user_server_ops *ops;
    void *dev_ctx;
};

/*
 * Create the socket (mode 0600). A socket file left by a dead process is
 * replaced; one that still accepts connections gives -EADDRINUSE. Returns
 * NULL with *err set to a negative errno on failure.
 */
struct vfio_user_server *vfio_user_server_create(const struct vfio_user_server_config *cfg, int *err);

/* Close the client (if any) as a disconnect would, remove the socket file. */
void vfio_user_server_destroy(struct vfio_user_server *s);

int vfio_user_server_setup_region(struct vfio_user_server *s, uint32_t index,
                                  const struct vfio_user_region_desc *desc);
/* Declare an IRQ index with count vectors and VFIO_IRQ_INFO_* flags. */
int vfio_user_server_setup_irq(struct vfio_user_server *s, uint32_t index, uint32_t count, uint32_t info_flags);

/* The fd to wait on (the connection when a client is attached, else the listener). */
int vfio_user_server_fd(const struct vfio_user_server *s);
/* Both fds to wait on: listener and connection (-1 when none). */
void vfio_user_server_fds(const struct vfio_user_server *s, int *listen_fd, int *conn_fd);

/*
 * Handle everything pending without blocking. Returns the number of messages
 * handled (>= 0), or a negative errno for a failure of the listener itself.
 * A misbehaving client is disconnected and is not an error of poll.
 */
int vfio_user_server_poll(struct vfio_user_server *s);

bool vfio_user_server_connected(const struct vfio_user_server *s);

/* Client memory. */
const struct vfio_user_dma_table *vfio_user_server_dma(const struct vfio_user_server *s);

/*
 * Copy between client memory and buf: through the local mapping when the
 * window has one, otherwise with DMA_READ/DMA_WRITE messages (synchronous,
 * at most max_data_xfer_size each, with a timeout). Returns 0 or -errno.
 */
int vfio_user_server_dma_read(struct vfio_user_server *s, uint64_t iova, void *buf, size_t len);
int vfio_user_server_dma_write(struct vfio_user_server *s, uint64_t iova, const void *buf, size_t len);

/*
 * Interrupts. trigger signals the vector's eventfd unless the vector is
 * masked through SET_IRQS, in which case it is left pending and delivered on
 * unmask. Returns 0, -ENOENT when no eventfd is set, -EINVAL for a bad
 * index/vector; a pending masked vector returns 0.
 */
int vfio_user_server_irq_trigger(struct vfio_user_server *s, uint32_t index, uint32_t vector);
/* Eventfd set for a vector, or -1. */
int vfio_user_server_irq_fd(const struct vfio_user_server *s, uint32_t index, uint32_t vector);
bool vfio_user_server_irq_masked(const struct vfio_user_server *s, uint32_t index, uint32_t vector);
/* Whether a vector masked through SET_IRQS fired and waits for its unmask. */
bool vfio_user_server_irq_pending(const struct vfio_user_server *s, uint32_t index, uint32_t vector);
/* Number of vectors with an eventfd set on an index (0 means disabled). */
uint32_t vfio_user_server_irq_enabled_count(const struct vfio_user_server *s, uint32_t index);

/*
 * Handover to another process (docs/STATE-FORMAT.md). save writes the
 * connection (socket, negotiated limits, DMA windows, interrupt eventfds) to
 * w, naming the fds, which stay open until w is sent; -EBUSY when a message is
 * half received or a reply half sent (poll, then try again). On the other
 * side, a server created by create_adopted around the handed-over listening
 * socket (cfg->socket_path names it; it becomes this server's to remove) and
 * set up with the same regions and IRQ indexes takes it over with restore,
 * without any callback: the client sees no reconnect. abandon lets go of
 * every local resource of a server whose client another process now serves,
 * without telling the client or the device and without removing the socket.
 */
struct vnvme_state_out;
struct vnvme_state_in;
int vfio_user_server_save(struct vfio_user_server *s, struct vnvme_state_out *w);
/*
 * The same between messages or not, for a crash-recovery record: a process
 * that restarts after a crash has lost any half-read message anyway.
 */
int vfio_user_server_save_anytime(struct vfio_user_server *s, struct vnvme_state_out *w);
int vfio_user_server_restore(struct vfio_user_server *s, struct vnvme_state_in *r);
struct vfio_user_server *vfio_user_server_create_adopted(const struct vfio_user_server_config *cfg, int listen_fd,
                                                         int *err);
void vfio_user_server_abandon(struct vfio_user_server *s);

#endif
