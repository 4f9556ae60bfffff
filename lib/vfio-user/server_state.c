/* SPDX-License-Identifier: MIT */
/*
 * Handing a live server to another process (docs/STATE-FORMAT.md, section
 * "vfio-user server"): the client's socket, what it negotiated, its DMA
 * windows and interrupt eventfds. The other process maps the same memory
 * and signals the same eventfds; the client notices nothing, because the
 * socket it talks to is the same kernel object in a new owner's hands.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/state.h"
#include "server_internal.h"

#define TAG_SERVER 0x56555352u /* "VUSR" */

static int save(struct vfio_user_server *s, struct vnvme_state_out *w, bool at_boundary)
{
    bool connected = s->conn_fd >= 0 && !s->want_disconnect;
    /* A message half read or a reply half sent cannot be carried: the caller polls until the stream is at a boundary. */
    if (at_boundary && connected && (s->rx.hdr_got || s->rx_busy || vfio_user_tx_pending(&s->tx) || s->queue_len))
        return -EBUSY;
    size_t at = vnvme_state_begin(w, TAG_SERVER);
    vnvme_state_put_u8(w, connected);
    if (connected) {
        vnvme_state_put_fd(w, s->conn_fd);
        vnvme_state_put_u8(w, s->negotiated);
        vnvme_state_put_u32(w, s->peer.max_msg_fds);
        vnvme_state_put_u32(w, s->peer.max_data_xfer_size);
        vnvme_state_put_u32(w, s->peer.max_dma_maps);
        vnvme_state_put_u64(w, s->peer.pgsizes);
        vnvme_state_put_u8(w, s->peer.twin_socket);
        vnvme_state_put_u16(w, s->next_msg_id);
        uint32_t n = vfio_user_dma_table_count(s->dma);
        vnvme_state_put_u32(w, n);
        for (uint32_t i = 0; i < n; i++) {
            const struct vfio_user_dma_region *r = vfio_user_dma_table_at(s->dma, i);
            vnvme_state_put_u64(w, r->iova);
            vnvme_state_put_u64(w, r->size);
            vnvme_state_put_u32(w, r->prot);
            vnvme_state_put_u64(w, r->fd_offset);
            vnvme_state_put_fd(w, r->fd);
        }
    }
    vnvme_state_put_u32(w, s->num_irqs);
    for (uint32_t i = 0; i < s->num_irqs; i++) {
        const struct srv_irq *q = &s->irqs[i];
        uint32_t set = 0;
        for (uint32_t v = 0; v < q->count; v++)
            set += q->fds[v] >= 0 || q->masked[v] || q->pending[v];
        vnvme_state_put_u32(w, q->count);
        vnvme_state_put_u32(w, set);
        for (uint32_t v = 0; v < q->count; v++) {
            if (q->fds[v] < 0 && !q->masked[v] && !q->pending[v])
                continue;
            vnvme_state_put_u32(w, v);
            vnvme_state_put_fd(w, q->fds[v]);
            vnvme_state_put_u8(w, q->masked[v]);
            vnvme_state_put_u8(w, q->pending[v]);
        }
    }
    vnvme_state_end(w, at);
    return vnvme_state_out_error(w);
}

int vfio_user_server_save(struct vfio_user_server *s, struct vnvme_state_out *w)
{
    return save(s, w, true);
}

int vfio_user_server_save_anytime(struct vfio_user_server *s, struct vnvme_state_out *w)
{
    return save(s, w, false);
}

static int restore_connection(struct vfio_user_server *s, struct vnvme_state_in *r)
{
    int fd = vnvme_state_get_fd(r);
    bool negotiated = vnvme_state_get_bool(r);
    struct vfio_user_caps peer;
    peer.max_msg_fds = vnvme_state_get_u32(r);
    peer.max_data_xfer_size = vnvme_state_get_u32(r);
    peer.max_dma_maps = vnvme_state_get_u32(r);
    peer.pgsizes = vnvme_state_get_u64(r);
    peer.twin_socket = vnvme_state_get_bool(r);
    uint16_t next_msg_id = vnvme_state_get_u16(r);
    if (!vnvme_state_in_ok(r) || fd < 0) {
        vnvme_state_fail(r, "the client's socket is missing");
        if (fd >= 0)
            close(fd);
        return -EPROTO;
    }
    int rc = srv_adopt_conn(s, fd);
    if (rc) {
        close(fd);
        vnvme_state_fail(r, "the client's socket cannot be adopted");
        return rc;
    }
    s->negotiated = negotiated;
    s->peer = peer;
    s->next_msg_id = next_msg_id;
    uint32_t n = vnvme_state_get_u32(r);
    if (n > s->max_dma_maps)
        vnvme_state_fail(r, "more DMA windows than this server allows");
    for (uint32_t i = 0; i < n && vnvme_state_in_ok(r); i++) {
        uint64_t iova = vnvme_state_get_u64(r);
        uint64_t size = vnvme_state_get_u64(r);
        uint32_t prot = vnvme_state_get_u32(r);
        uint64_t off = vnvme_state_get_u64(r);
        int wfd = vnvme_state_get_fd(r);
        if (!vnvme_state_in_ok(r))
            break;
        rc = vfio_user_dma_table_add(s->dma, iova, size, prot, wfd, off); /* owns wfd from here */
        if (rc) {
            VNVME_ERR(SRV_LOG, "handed-over DMA window 0x%llx+0x%llx: %s", (unsigned long long)iova,
                      (unsigned long long)size, strerror(-rc));
            vnvme_state_fail(r, "a DMA window cannot be mapped");
        }
    }
    return vnvme_state_in_ok(r) ? 0 : -EPROTO;
}

int vfio_user_server_restore(struct vfio_user_server *s, struct vnvme_state_in *in)
{
    struct vnvme_state_in sec, *r = &sec;
    vnvme_state_enter(in, TAG_SERVER, r);
    bool connected = vnvme_state_get_bool(r);
    if (connected && restore_connection(s, r) < 0)
        return -EPROTO;
    if (vnvme_state_get_u32(r) != s->num_irqs)
        vnvme_state_fail(r, "the device has a different number of interrupt indexes");
    for (uint32_t i = 0; i < s->num_irqs && vnvme_state_in_ok(r); i++) {
        struct srv_irq *q = &s->irqs[i];
        if (vnvme_state_get_u32(r) != q->count)
            vnvme_state_fail(r, "an interrupt index has a different number of vectors");
        uint32_t set = vnvme_state_get_u32(r);
        for (uint32_t k = 0; k < set && vnvme_state_in_ok(r); k++) {
            uint32_t v = vnvme_state_get_u32(r);
            int fd = vnvme_state_get_fd(r);
            bool masked = vnvme_state_get_bool(r);
            bool pending = vnvme_state_get_bool(r);
            if (v >= q->count || q->fds[v] >= 0) {
                vnvme_state_fail(r, "an interrupt vector is out of range or named twice");
                if (fd >= 0)
                    close(fd);
                break;
            }
            q->fds[v] = fd;
            q->masked[v] = masked;
            q->pending[v] = pending;
        }
    }
    vnvme_state_expect_end(r);
    return vnvme_state_in_ok(r) ? 0 : -EPROTO;
}

struct vfio_user_server *vfio_user_server_create_adopted(const struct vfio_user_server_config *cfg, int listen_fd,
                                                         int *err)
{
    struct vfio_user_server_config c = *cfg;
    c.socket_path = NULL; /* no new socket: the handed-over listener is the one clients know */
    struct vfio_user_server *s = vfio_user_server_create(&c, err);
    if (!s)
        return NULL;
    if (cfg->socket_path && !(s->socket_path = strdup(cfg->socket_path))) {
        vfio_user_server_destroy(s);
        if (err)
            *err = -ENOMEM;
        return NULL;
    }
    int fl = fcntl(listen_fd, F_GETFL);
    if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(listen_fd, F_SETFD, FD_CLOEXEC) < 0) {
        int e = -errno;
        free(s->socket_path);
        s->socket_path = NULL; /* still the other process's until adopted */
        vfio_user_server_destroy(s);
        if (err)
            *err = e;
        return NULL;
    }
    s->listen_fd = listen_fd;
    return s;
}

void vfio_user_server_abandon(struct vfio_user_server *s)
{
    if (!s)
        return;
    /* Local resources only: the client, its memory and the socket file now belong to another process. */
    vfio_user_dma_table_clear(s->dma, NULL, NULL);
    srv_queue_clear(s);
    vfio_user_rx_fini(&s->rx);
    vfio_user_rx_fini(&s->wait_rx);
    vfio_user_tx_fini(&s->tx);
    if (s->conn_fd >= 0)
        close(s->conn_fd);
    s->conn_fd = -1;
    free(s->socket_path);
    s->socket_path = NULL;
    vfio_user_server_destroy(s);
}
