/* SPDX-License-Identifier: MIT */
/*
 * Internals of the vfio-user server shared by its files (server.c for the
 * connection and dispatch, server_region.c, server_irq.c, server_dma.c for
 * one concern each). Not part of the public API.
 */
#ifndef VNVME_VFIO_USER_SERVER_INTERNAL_H
#define VNVME_VFIO_USER_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"
#include "vnvme/vfio_user_server.h"

#define SRV_LOG "vfio-user-server"
#define SRV_PAGE_SIZE 4096u
#define SRV_DMA_TIMEOUT_MS 5000
/* Commands that arrive while a DMA request waits for its reply are parked here. */
#define SRV_QUEUE_MAX_MSGS 16u
#define SRV_QUEUE_MAX_BYTES (4u << 20)
/* More vectors than any PCI function can have (MSI-X tops out at 2048). */
#define SRV_MAX_IRQ_VECTORS 2048u

struct srv_region {
    bool set;
    struct vfio_user_region_desc desc; /* desc.mmap_fd is the server's own dup */
};

struct srv_irq {
    uint32_t count; /* vectors declared by setup_irq; 0: index not set up */
    uint32_t info_flags;
    int *fds;
    bool *masked;
    bool *pending;
};

struct srv_queued_msg {
    struct vfio_user_msg msg; /* payload is a private malloc'd copy */
};

struct vfio_user_server {
    char *socket_path; /* NULL when created without a listener (tests, fuzzing) */
    int listen_fd;
    int conn_fd;
    uint32_t dev_flags;
    uint32_t num_regions;
    uint32_t num_irqs;
    uint32_t max_data_xfer_size;
    uint32_t max_dma_maps;
    const struct vfio_user_server_ops *ops;
    void *dev_ctx;

    struct srv_region *regions;
    struct srv_irq *irqs;
    struct vfio_user_dma_table *dma;

    /* Per connection. */
    bool negotiated;
    struct vfio_user_caps peer;
    struct vfio_user_rx rx;
    struct vfio_user_rx wait_rx; /* used by a DMA wait while rx holds the message being handled */
    bool rx_busy;
    struct vfio_user_tx tx;
    bool want_disconnect;
    bool dma_refusal_logged; /* a refused DMA_MAP is explained once per connection */
    uint16_t next_msg_id;
    struct srv_queued_msg queue[SRV_QUEUE_MAX_MSGS];
    uint32_t queue_head;
    uint32_t queue_len;
    size_t queue_bytes;
};

/* Adopt an already connected stream socket as the client (tests, fuzzing). Returns 0, -EBUSY or -errno. */
int vfio_user_server_attach_fd(struct vfio_user_server *s, int fd);

/* The same for a connection handed over by another process (server_state.c): the device is not told. */
int srv_adopt_conn(struct vfio_user_server *s, int fd);

/* Replies. err > 0 sends an error reply. Both honour VFIO_USER_F_NO_REPLY. */
void srv_reply(struct vfio_user_server *s, const struct vfio_user_header *req, const struct iovec *iov, int iovcnt,
               const int *fds, size_t nfds);
void srv_reply_err(struct vfio_user_server *s, const struct vfio_user_header *req, int err);
/* Close the connection at the next safe point (never from inside a handler). */
void srv_request_disconnect(struct vfio_user_server *s, const char *why);
/* Park a command received during a DMA wait; false when the queue is full. */
bool srv_queue_push(struct vfio_user_server *s, struct vfio_user_msg *m);
/* Drop every parked command (closing the fds it carried). */
void srv_queue_clear(struct vfio_user_server *s);

/* Handlers: m->fds[i] set to -1 for fds taken; the rest are closed by the caller. */
void srv_handle_region_info(struct vfio_user_server *s, struct vfio_user_msg *m);
void srv_handle_region_access(struct vfio_user_server *s, struct vfio_user_msg *m, bool is_write);
void srv_handle_irq_info(struct vfio_user_server *s, struct vfio_user_msg *m);
void srv_handle_set_irqs(struct vfio_user_server *s, struct vfio_user_msg *m);
void srv_handle_dma_map(struct vfio_user_server *s, struct vfio_user_msg *m);
void srv_handle_dma_unmap(struct vfio_user_server *s, struct vfio_user_msg *m);

/* Lifecycle helpers of each concern. */
void srv_regions_free(struct vfio_user_server *s);
void srv_irqs_reset_all(struct vfio_user_server *s); /* close eventfds, clear masks; on disconnect */
void srv_irqs_free(struct vfio_user_server *s);
void srv_dma_unmap_all(struct vfio_user_server *s);

#endif
