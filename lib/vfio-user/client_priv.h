/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by client.c (connection, requests, regions, irqs) and
 * client_dma.c (the client's memory table and the serving of the server's
 * DMA_READ/DMA_WRITE requests). Not part of the public API.
 */
#ifndef VNVME_VFIO_USER_CLIENT_PRIV_H
#define VNVME_VFIO_USER_CLIENT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "msg.h"
#include "vnvme/vfio_user_client.h"

/* Largest data payload we accept in one message (offered in VERSION). */
#define CLIENT_MAX_DATA_XFER (1u << 20)
/* Largest reply to DEVICE_GET_REGION_INFO we are willing to take. */
#define CLIENT_MAX_REGION_INFO (64u << 10)
/* Header + access struct + the largest data, with room for region info. */
#define CLIENT_MAX_MSG_SIZE (CLIENT_MAX_DATA_XFER + 4096u)

/* One window of client memory shared with DMA_MAP. */
struct client_dma_rec {
    uint64_t iova;
    uint64_t size;
    uint32_t prot; /* VFIO_USER_DMA_F_READ | VFIO_USER_DMA_F_WRITE */
    uint8_t *vaddr;
};

/* Sorted by iova, non-overlapping. */
struct client_dma_table {
    struct client_dma_rec *recs;
    size_t n;
    size_t cap;
};

struct client_region_entry {
    struct client_region_entry *next;
    struct vfio_user_client_region r;
};

struct vfio_user_client {
    int sock;
    int timeout_ms;
    /*
     * Set when the stream can no longer be trusted (send or receive failure,
     * EOF, a reply that lost track of the conversation, or a request that
     * timed out: the device state after a lost request is unknown). Every
     * later call then fails fast with -ENOTCONN.
     */
    bool broken;
    uint16_t next_msg_id;
    uint16_t version_minor;
    struct vfio_user_client_caps server_caps;
    struct vfio_user_rx rx;
    struct client_dma_table dma;
    struct client_region_entry *regions;
    uint64_t dma_served;
};

/*
 * Send a request and wait for its reply, serving server requests meanwhile.
 * On 0 the reply is in c->rx.msg and the caller must vfio_user_rx_release()
 * it. An error reply gives -error_no (-EIO for 0 or nonsense).
 */
int client_call(struct vfio_user_client *c, uint16_t cmd, uint32_t flags, const struct iovec *iov, int iovcnt,
                const int *fds, size_t nfds);

/* Serve one command message from the server (in c->rx.msg). 0, or -errno when the socket broke. */
int client_serve_request(struct vfio_user_client *c, const struct vfio_user_msg *msg);

void client_dma_table_free(struct client_dma_table *t);

/* Unmap and close everything vfio_user_client_region() cached. */
void client_regions_free(struct vfio_user_client *c);

#endif
