/* SPDX-License-Identifier: MIT */
/* vfio-user server: listener, one connection at a time, negotiation and command dispatch. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/unix_listen.h"
#include "server_internal.h"

#define HDR_SIZE sizeof(struct vfio_user_header)
/* Bound on the work one poll does, so a flooding client cannot starve the caller's loop. */
#define MAX_MSGS_PER_POLL 1024

/* ---- listener ---------------------------------------------------------- */

/* ---- lifecycle --------------------------------------------------------- */

struct vfio_user_server *vfio_user_server_create(const struct vfio_user_server_config *cfg, int *err)
{
    int rc = -EINVAL;
    struct vfio_user_server *s = NULL;
    if (!cfg || cfg->num_regions == 0 || cfg->num_regions > 64 || cfg->num_irqs > 64)
        goto fail;
    s = calloc(1, sizeof(*s));
    if (!s) {
        rc = -ENOMEM;
        goto fail;
    }
    s->listen_fd = -1;
    s->conn_fd = -1;
    s->dev_flags = cfg->flags;
    s->num_regions = cfg->num_regions;
    s->num_irqs = cfg->num_irqs;
    s->max_data_xfer_size = cfg->max_data_xfer_size ? cfg->max_data_xfer_size : VFIO_USER_DEFAULT_MAX_DATA_XFER;
    s->max_dma_maps = cfg->max_dma_maps ? cfg->max_dma_maps : 1024;
    /* Offered in VERSION: above these, QEMU's client refuses the device. */
    if (s->max_data_xfer_size > VFIO_USER_MAX_DATA_XFER_LIMIT || s->max_dma_maps > VFIO_USER_MAX_DMA_MAPS_LIMIT)
        goto fail;
    s->ops = cfg->ops;
    s->dev_ctx = cfg->dev_ctx;
    s->regions = calloc(s->num_regions, sizeof(*s->regions));
    s->irqs = calloc(s->num_irqs ? s->num_irqs : 1, sizeof(*s->irqs));
    s->dma = vfio_user_dma_table_create(s->max_dma_maps);
    rc = -ENOMEM;
    if (!s->regions || !s->irqs || !s->dma)
        goto fail;
    for (uint32_t i = 0; i < s->num_regions; i++)
        s->regions[i].desc.mmap_fd = -1;
    /* A NULL path gives a server without listener, fed through vfio_user_server_attach_fd(). */
    if (cfg->socket_path) {
        s->socket_path = strdup(cfg->socket_path);
        if (!s->socket_path)
            goto fail;
        rc = vnvme_unix_listen(s->socket_path, 4, cfg->socket_group, SRV_LOG);
        if (rc < 0) {
            free(s->socket_path);
            s->socket_path = NULL; /* not ours: do not unlink it in destroy */
            goto fail;
        }
        s->listen_fd = rc;
    }
    return s;
fail:
    vfio_user_server_destroy(s);
    if (err)
        *err = rc;
    return NULL;
}

void srv_queue_clear(struct vfio_user_server *s)
{
    while (s->queue_len) {
        struct vfio_user_msg *m = &s->queue[s->queue_head].msg;
        for (size_t i = 0; i < m->nfds; i++)
            if (m->fds[i] >= 0)
                close(m->fds[i]);
        free(m->payload);
        memset(m, 0, sizeof(*m));
        s->queue_head = (s->queue_head + 1) % SRV_QUEUE_MAX_MSGS;
        s->queue_len--;
    }
    s->queue_head = 0;
    s->queue_bytes = 0;
}

static void disconnect(struct vfio_user_server *s)
{
    if (s->conn_fd < 0)
        return;
    VNVME_INFO(SRV_LOG, "client disconnected");
    srv_dma_unmap_all(s);
    srv_irqs_reset_all(s);
    srv_queue_clear(s);
    vfio_user_rx_fini(&s->rx);
    vfio_user_rx_fini(&s->wait_rx);
    vfio_user_tx_fini(&s->tx);
    close(s->conn_fd);
    s->conn_fd = -1;
    s->negotiated = false;
    s->want_disconnect = false;
    s->rx_busy = false;
    if (s->ops && s->ops->disconnected)
        s->ops->disconnected(s->dev_ctx);
}

void vfio_user_server_destroy(struct vfio_user_server *s)
{
    if (!s)
        return;
    disconnect(s);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->socket_path) {
        unlink(s->socket_path);
        free(s->socket_path);
    }
    if (s->regions)
        srv_regions_free(s);
    if (s->irqs)
        srv_irqs_free(s);
    vfio_user_dma_table_destroy(s->dma);
    free(s);
}

static size_t rx_max_msg_size(const struct vfio_user_server *s)
{
    /* Largest legal message: REGION_WRITE or a DMA_READ reply carrying a full transfer. */
    size_t need = (size_t)s->max_data_xfer_size + HDR_SIZE + 64;
    return need < (128u << 10) ? (128u << 10) : need;
}

static int attach(struct vfio_user_server *s, int fd, bool notify)
{
    if (s->conn_fd >= 0)
        return -EBUSY;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    s->conn_fd = fd;
    s->negotiated = false;
    s->want_disconnect = false;
    s->dma_refusal_logged = false;
    s->rx_busy = false;
    s->next_msg_id = 1;
    vfio_user_caps_defaults(&s->peer);
    vfio_user_rx_init(&s->rx, rx_max_msg_size(s), VFIO_USER_MSG_MAX_FDS);
    vfio_user_rx_init(&s->wait_rx, rx_max_msg_size(s), VFIO_USER_MSG_MAX_FDS);
    vfio_user_tx_init(&s->tx);
    if (notify && s->ops && s->ops->connected)
        s->ops->connected(s->dev_ctx);
    return 0;
}

int vfio_user_server_attach_fd(struct vfio_user_server *s, int fd)
{
    return attach(s, fd, true);
}

int srv_adopt_conn(struct vfio_user_server *s, int fd)
{
    return attach(s, fd, false);
}

/* Take the next pending connection as the client. Returns false when none is waiting. */
static bool accept_one(struct vfio_user_server *s)
{
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            VNVME_INFO(SRV_LOG, "client connected");
            if (vfio_user_server_attach_fd(s, fd) < 0)
                close(fd);
            return true;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            VNVME_WARN(SRV_LOG, "accept: %s", strerror(errno));
        return false;
    }
}

/* One client at a time: others get a clean EOF instead of waiting in the backlog forever. */
static void refuse_pending(struct vfio_user_server *s)
{
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        VNVME_WARN(SRV_LOG, "refusing a second client: one is already connected");
        close(fd);
    }
}

/* ---- replies ----------------------------------------------------------- */

void srv_request_disconnect(struct vfio_user_server *s, const char *why)
{
    if (!s->want_disconnect)
        VNVME_WARN(SRV_LOG, "dropping client: %s", why);
    s->want_disconnect = true;
    /* Wake the caller's event loop even when nothing more arrives from the client. */
    if (s->conn_fd >= 0)
        shutdown(s->conn_fd, SHUT_RDWR);
}

static void send_reply(struct vfio_user_server *s, const struct vfio_user_header *req, const struct iovec *iov,
                       int iovcnt, const int *fds, size_t nfds, int err)
{
    if (s->conn_fd < 0 || s->want_disconnect)
        return;
    if (req->flags & VFIO_USER_F_NO_REPLY) {
        if (err)
            VNVME_WARN(SRV_LOG, "%s (no reply requested) failed: %s", vfio_user_command_name(req->cmd),
                       strerror(err));
        return;
    }
    size_t payload = 0;
    for (int i = 0; i < iovcnt; i++)
        payload += iov[i].iov_len;
    struct vfio_user_header h;
    vfio_user_reply_header(&h, req, (uint32_t)payload, err);
    int rc = vfio_user_tx_send(&s->tx, s->conn_fd, &h, err ? NULL : iov, err ? 0 : iovcnt, err ? NULL : fds,
                               err ? 0 : nfds);
    if (rc)
        srv_request_disconnect(s, "reply could not be sent");
}

void srv_reply(struct vfio_user_server *s, const struct vfio_user_header *req, const struct iovec *iov, int iovcnt,
               const int *fds, size_t nfds)
{
    send_reply(s, req, iov, iovcnt, fds, nfds, 0);
}

void srv_reply_err(struct vfio_user_server *s, const struct vfio_user_header *req, int err)
{
    VNVME_DEBUG(SRV_LOG, "%s msg %u: error %d", vfio_user_command_name(req->cmd), req->msg_id, err);
    send_reply(s, req, NULL, 0, NULL, 0, err);
}

/* ---- negotiation and device-level commands ----------------------------- */

static void handle_version(struct vfio_user_server *s, struct vfio_user_msg *m)
{
    struct vfio_user_version v;
    if (s->negotiated) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    if (m->len < sizeof(v)) {
        srv_reply_err(s, &m->hdr, EINVAL);
        srv_request_disconnect(s, "short VERSION");
        return;
    }
    memcpy(&v, m->payload, sizeof(v));
    if (v.major != VFIO_USER_VERSION_MAJOR) {
        srv_reply_err(s, &m->hdr, EINVAL);
        srv_request_disconnect(s, "unsupported protocol major version");
        return;
    }
    struct vfio_user_caps peer;
    if (vfio_user_caps_parse((const char *)m->payload + sizeof(v), m->len - sizeof(v), &peer) < 0 ||
        peer.max_data_xfer_size == 0) {
        srv_reply_err(s, &m->hdr, EINVAL);
        srv_request_disconnect(s, "malformed VERSION capabilities");
        return;
    }
    /*
     * max_msg_fds: we could take VFIO_USER_MSG_MAX_FDS, but QEMU's client
     * refuses any offer above 16 (it sends SET_IRQS in batches of what we offer).
     */
    struct vfio_user_caps ours = {
        .max_msg_fds = VFIO_USER_MAX_MSG_FDS_LIMIT,
        .max_data_xfer_size = s->max_data_xfer_size,
        .max_dma_maps = s->max_dma_maps,
        .pgsizes = SRV_PAGE_SIZE,
    };
    char json[256];
    int jlen = vfio_user_caps_format(&ours, json, sizeof(json));
    if (jlen < 0) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    struct vfio_user_version rv = {
        .major = VFIO_USER_VERSION_MAJOR,
        .minor = v.minor < VFIO_USER_VERSION_MINOR ? v.minor : VFIO_USER_VERSION_MINOR,
    };
    s->peer = peer;
    s->negotiated = true;
    struct iovec iov[2] = {{&rv, sizeof(rv)}, {json, (size_t)jlen}};
    srv_reply(s, &m->hdr, iov, 2, NULL, 0);
    VNVME_INFO(SRV_LOG, "negotiated version %u.%u, client max_msg_fds %u max_data_xfer_size %u", rv.major, rv.minor,
               peer.max_msg_fds, peer.max_data_xfer_size);
}

static void handle_device_info(struct vfio_user_server *s, struct vfio_user_msg *m)
{
    struct vfio_user_device_info in;
    if (m->len < sizeof(in)) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    memcpy(&in, m->payload, sizeof(in));
    if (in.argsz < sizeof(in)) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    struct vfio_user_device_info out = {
        .argsz = sizeof(out), .flags = s->dev_flags, .num_regions = s->num_regions, .num_irqs = s->num_irqs};
    struct iovec iov = {&out, sizeof(out)};
    srv_reply(s, &m->hdr, &iov, 1, NULL, 0);
}

static void handle_reset(struct vfio_user_server *s, struct vfio_user_msg *m)
{
    if (m->len != 0) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    int rc = 0;
    if (s->ops && s->ops->reset)
        rc = s->ops->reset(s->dev_ctx, VFIO_USER_RESET_CLIENT);
    if (rc < 0)
        srv_reply_err(s, &m->hdr, -rc);
    else
        srv_reply(s, &m->hdr, NULL, 0, NULL, 0);
}

static void dispatch(struct vfio_user_server *s, struct vfio_user_msg *m)
{
    if ((m->hdr.flags & VFIO_USER_F_TYPE_MASK) != VFIO_USER_F_TYPE_COMMAND) {
        VNVME_DEBUG(SRV_LOG, "dropping unexpected reply msg %u cmd %u", m->hdr.msg_id, m->hdr.cmd);
        return;
    }
    if (m->hdr.cmd == VFIO_USER_VERSION) {
        handle_version(s, m);
        return;
    }
    if (!s->negotiated) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    switch (m->hdr.cmd) {
    case VFIO_USER_DMA_MAP:
        srv_handle_dma_map(s, m);
        break;
    case VFIO_USER_DMA_UNMAP:
        srv_handle_dma_unmap(s, m);
        break;
    case VFIO_USER_DEVICE_GET_INFO:
        handle_device_info(s, m);
        break;
    case VFIO_USER_DEVICE_GET_REGION_INFO:
        srv_handle_region_info(s, m);
        break;
    case VFIO_USER_DEVICE_GET_IRQ_INFO:
        srv_handle_irq_info(s, m);
        break;
    case VFIO_USER_DEVICE_SET_IRQS:
        srv_handle_set_irqs(s, m);
        break;
    case VFIO_USER_REGION_READ:
        srv_handle_region_access(s, m, false);
        break;
    case VFIO_USER_REGION_WRITE:
        srv_handle_region_access(s, m, true);
        break;
    case VFIO_USER_DEVICE_RESET:
        handle_reset(s, m);
        break;
    default:
        /* GET_REGION_IO_FDS, WRITE_MULTI, DEVICE_FEATURE, migration, DMA_* from a client, unknown. */
        srv_reply_err(s, &m->hdr, EOPNOTSUPP);
        break;
    }
}

/* ---- queue of commands deferred by a DMA wait -------------------------- */

bool srv_queue_push(struct vfio_user_server *s, struct vfio_user_msg *m)
{
    if (s->queue_len >= SRV_QUEUE_MAX_MSGS || m->len > SRV_QUEUE_MAX_BYTES - s->queue_bytes)
        return false;
    uint8_t *copy = malloc(m->len ? m->len : 1);
    if (!copy)
        return false;
    if (m->len)
        memcpy(copy, m->payload, m->len);
    struct vfio_user_msg *q = &s->queue[(s->queue_head + s->queue_len) % SRV_QUEUE_MAX_MSGS].msg;
    q->hdr = m->hdr;
    q->payload = copy;
    q->len = m->len;
    q->nfds = m->nfds;
    for (size_t i = 0; i < m->nfds; i++) {
        q->fds[i] = m->fds[i];
        m->fds[i] = -1;
    }
    s->queue_len++;
    s->queue_bytes += m->len;
    return true;
}

static void handle_queued(struct vfio_user_server *s)
{
    struct vfio_user_msg m = s->queue[s->queue_head].msg;
    memset(&s->queue[s->queue_head], 0, sizeof(s->queue[s->queue_head]));
    s->queue_head = (s->queue_head + 1) % SRV_QUEUE_MAX_MSGS;
    s->queue_len--;
    s->queue_bytes -= m.len;
    dispatch(s, &m);
    for (size_t i = 0; i < m.nfds; i++)
        if (m.fds[i] >= 0)
            close(m.fds[i]);
    free(m.payload);
}

/* ---- poll -------------------------------------------------------------- */

static int serve_connection(struct vfio_user_server *s)
{
    int handled = 0;
    if (s->want_disconnect) {
        disconnect(s);
        return 0;
    }
    int rc = vfio_user_tx_flush(&s->tx, s->conn_fd);
    if (rc == -EAGAIN)
        return 0; /* backpressure: no new commands until the client reads our replies */
    if (rc < 0) {
        disconnect(s);
        return 0;
    }
    while (handled < MAX_MSGS_PER_POLL && !vfio_user_tx_pending(&s->tx) && !s->want_disconnect) {
        /* Commands parked by a DMA wait came before anything still in the socket. */
        if (s->queue_len) {
            handle_queued(s);
            handled++;
            continue;
        }
        rc = vfio_user_rx_step(&s->rx, s->conn_fd);
        if (rc == 0)
            break;
        if (rc < 0) {
            if (rc != -ECONNRESET)
                VNVME_WARN(SRV_LOG, "dropping client: broken stream (%s)", strerror(-rc));
            s->want_disconnect = true;
            break;
        }
        s->rx_busy = true;
        dispatch(s, &s->rx.msg);
        s->rx_busy = false;
        vfio_user_rx_release(&s->rx);
        handled++;
    }
    if (s->want_disconnect)
        disconnect(s);
    return handled;
}

int vfio_user_server_poll(struct vfio_user_server *s)
{
    int handled = 0;
    /*
     * The connection is served before the listener is looked at, so a client
     * that already left (for instance another server's liveness probe) frees
     * its slot for the next one waiting in the backlog.
     */
    for (int round = 0; round < 4; round++) {
        if (s->conn_fd >= 0)
            handled += serve_connection(s);
        if (s->listen_fd < 0)
            break;
        if (s->conn_fd >= 0) {
            refuse_pending(s);
            break;
        }
        if (!accept_one(s))
            break;
    }
    return handled;
}

/* ---- accessors --------------------------------------------------------- */

int vfio_user_server_fd(const struct vfio_user_server *s)
{
    return s->conn_fd >= 0 ? s->conn_fd : s->listen_fd;
}

void vfio_user_server_fds(const struct vfio_user_server *s, int *listen_fd, int *conn_fd)
{
    if (listen_fd)
        *listen_fd = s->listen_fd;
    if (conn_fd)
        *conn_fd = s->conn_fd;
}

bool vfio_user_server_connected(const struct vfio_user_server *s)
{
    return s->conn_fd >= 0;
}

const struct vfio_user_dma_table *vfio_user_server_dma(const struct vfio_user_server *s)
{
    return s->dma;
}
