/* SPDX-License-Identifier: MIT */
/*
 * vfio-user client: connection, version negotiation, the request/reply loop
 * and the device queries. Regions live in client_region.c, the client's
 * memory and the serving of DMA requests in client_dma.c.
 *
 * Timeouts: the wait for a reply restarts whenever the server sends us a
 * message, because a server may legitimately issue many DMA requests while
 * it works on one of ours; a server silent for timeout_ms is declared dead
 * and the connection is marked broken (see struct vfio_user_client).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client_priv.h"
#include "common/log.h"

#define COMP "vfio-user-client"
#define DEFAULT_TIMEOUT_MS 5000
#define HDR_SIZE sizeof(struct vfio_user_header)

int vfio_user_client_fd(const struct vfio_user_client *c)
{
    return c->sock;
}

const struct vfio_user_client_caps *vfio_user_client_server_caps(const struct vfio_user_client *c)
{
    return &c->server_caps;
}

uint16_t vfio_user_client_version_minor(const struct vfio_user_client *c)
{
    return c->version_minor;
}

uint64_t vfio_user_client_dma_requests_served(const struct vfio_user_client *c)
{
    return c->dma_served;
}

static int mark_broken(struct vfio_user_client *c, int err)
{
    if (!c->broken)
        VNVME_WARN(COMP, "connection unusable from now on: %s", strerror(-err));
    c->broken = true;
    return err;
}

/* An errno from the peer is only trusted when it looks like one. */
static int reply_errno(uint32_t error_no)
{
    if (error_no == 0 || error_no > 4095)
        return -EIO;
    return -(int)error_no;
}

static int send_message(struct vfio_user_client *c, uint16_t msg_id, uint16_t cmd, uint32_t flags,
                        const struct iovec *iov, int iovcnt, const int *fds, size_t nfds)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > UINT32_MAX - HDR_SIZE - total)
            return -EMSGSIZE;
        total += iov[i].iov_len;
    }
    struct vfio_user_header h = {
        .msg_id = msg_id,
        .cmd = cmd,
        .msg_size = (uint32_t)(HDR_SIZE + total),
        .flags = VFIO_USER_F_TYPE_COMMAND | (flags & VFIO_USER_F_NO_REPLY),
    };
    int rc = vfio_user_send_all(c->sock, &h, iov, iovcnt, fds, nfds, c->timeout_ms);
    if (rc == -EINVAL)
        return rc; /* rejected before anything was sent: the stream is intact */
    if (rc)
        return mark_broken(c, rc);
    return 0;
}

/* Wait for the reply to msg_id; see client_call(). */
static int await_reply(struct vfio_user_client *c, uint16_t msg_id, uint16_t cmd)
{
    for (;;) {
        int rc = vfio_user_rx_wait(&c->rx, c->sock, c->timeout_ms);
        if (rc < 0) {
            VNVME_ERR(COMP, "waiting for %s reply: %s", vfio_user_command_name(cmd), strerror(-rc));
            return mark_broken(c, rc);
        }
        const struct vfio_user_msg *m = &c->rx.msg;
        if ((m->hdr.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_COMMAND) {
            rc = client_serve_request(c, m);
            vfio_user_rx_release(&c->rx);
            if (rc)
                return mark_broken(c, rc);
            continue;
        }
        if (m->hdr.msg_id != msg_id) {
            /* A late answer to a posted write or a request we gave up on. */
            VNVME_DEBUG(COMP, "dropping reply with unknown msg_id %u", m->hdr.msg_id);
            vfio_user_rx_release(&c->rx);
            continue;
        }
        if (m->hdr.cmd != cmd) {
            VNVME_ERR(COMP, "reply %u is for %s, expected %s", msg_id, vfio_user_command_name(m->hdr.cmd),
                      vfio_user_command_name(cmd));
            vfio_user_rx_release(&c->rx);
            return mark_broken(c, -EPROTO);
        }
        if (m->hdr.flags & VFIO_USER_F_ERROR) {
            rc = reply_errno(m->hdr.error_no);
            vfio_user_rx_release(&c->rx);
            return rc;
        }
        return 0;
    }
}

int client_call(struct vfio_user_client *c, uint16_t cmd, uint32_t flags, const struct iovec *iov, int iovcnt,
                const int *fds, size_t nfds)
{
    if (c->broken)
        return -ENOTCONN;
    uint16_t id = c->next_msg_id++;
    int rc = send_message(c, id, cmd, flags, iov, iovcnt, fds, nfds);
    if (rc)
        return rc;
    if (flags & VFIO_USER_F_NO_REPLY)
        return 0;
    return await_reply(c, id, cmd);
}

int vfio_user_client_request(struct vfio_user_client *c, uint16_t cmd, uint32_t flags, const void *payload,
                             size_t payload_len, const int *fds, size_t nfds, void *reply, size_t reply_max,
                             size_t *reply_len, int *reply_fds, size_t *reply_nfds)
{
    size_t fd_cap = (reply_fds && reply_nfds) ? *reply_nfds : 0;
    if (reply_len)
        *reply_len = 0;
    if (reply_nfds)
        *reply_nfds = 0;
    struct iovec iov = {.iov_base = (void *)payload, .iov_len = payload_len};
    int rc = client_call(c, cmd, flags, &iov, payload_len ? 1 : 0, fds, nfds);
    if (rc || (flags & VFIO_USER_F_NO_REPLY))
        return rc;
    struct vfio_user_msg *m = &c->rx.msg;
    if (m->len > reply_max) {
        rc = -EMSGSIZE;
    } else {
        if (m->len)
            memcpy(reply, m->payload, m->len);
        if (reply_len)
            *reply_len = m->len;
        for (size_t i = 0; i < m->nfds && i < fd_cap; i++) {
            reply_fds[i] = m->fds[i];
            m->fds[i] = -1;
            *reply_nfds = i + 1;
        }
    }
    vfio_user_rx_release(&c->rx);
    return rc;
}

static int negotiate_version(struct vfio_user_client *c)
{
    struct vfio_user_caps ours;
    vfio_user_caps_defaults(&ours);
    ours.max_msg_fds = VFIO_USER_MAX_MSG_FDS_LIMIT;
    ours.max_data_xfer_size = CLIENT_MAX_DATA_XFER;
    ours.max_dma_maps = VFIO_USER_DEFAULT_MAX_DMA_MAPS;
    ours.pgsizes = 4096;
    char json[256];
    int jlen = vfio_user_caps_format(&ours, json, sizeof(json));
    if (jlen < 0)
        return jlen;
    struct vfio_user_version v = {.major = VFIO_USER_VERSION_MAJOR, .minor = VFIO_USER_VERSION_MINOR};
    struct iovec iov[2] = {{.iov_base = &v, .iov_len = sizeof(v)}, {.iov_base = json, .iov_len = (size_t)jlen}};
    int rc = client_call(c, VFIO_USER_VERSION, 0, iov, 2, NULL, 0);
    if (rc)
        return rc;

    const struct vfio_user_msg *m = &c->rx.msg;
    struct vfio_user_version rv;
    struct vfio_user_caps theirs;
    if (m->len < sizeof(rv)) {
        VNVME_ERR(COMP, "VERSION reply too short (%zu bytes)", m->len);
        rc = -EPROTO;
        goto out;
    }
    memcpy(&rv, m->payload, sizeof(rv));
    if (rv.major != VFIO_USER_VERSION_MAJOR || rv.minor > VFIO_USER_VERSION_MINOR) {
        VNVME_ERR(COMP, "server answered version %u.%u to our %u.%u", rv.major, rv.minor,
                  VFIO_USER_VERSION_MAJOR, VFIO_USER_VERSION_MINOR);
        rc = -EPROTO;
        goto out;
    }
    const char *data = (const char *)m->payload + sizeof(rv), *why = NULL;
    if (vfio_user_caps_parse(data, m->len - sizeof(rv), &theirs) || theirs.max_data_xfer_size == 0) {
        VNVME_ERR(COMP, "server capabilities unusable");
        rc = -EPROTO;
        goto out;
    }
    /* As strict as QEMU's client, so a reply VMs would refuse never passes our own tests. */
    if (vfio_user_caps_check_reply(data, m->len - sizeof(rv), (size_t)jlen, &theirs, &why)) {
        VNVME_ERR(COMP, "VERSION reply refused: %s", why);
        rc = -EPROTO;
        goto out;
    }
    c->version_minor = rv.minor;
    c->server_caps = (struct vfio_user_client_caps){
        .max_msg_fds = theirs.max_msg_fds,
        .max_data_xfer_size = theirs.max_data_xfer_size,
        .max_dma_maps = theirs.max_dma_maps,
        .pgsizes = theirs.pgsizes,
    };
out:
    vfio_user_rx_release(&c->rx);
    return rc;
}

static int open_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!path || !*path)
        return -EINVAL;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    int rc;
    do {
        rc = connect(s, (struct sockaddr *)&sa, sizeof(sa));
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        rc = -errno;
        close(s);
        return rc;
    }
    return s;
}

struct vfio_user_client *vfio_user_client_connect(const char *socket_path, int timeout_ms, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    struct vfio_user_client *c = calloc(1, sizeof(*c));
    if (!c) {
        *err = -ENOMEM;
        return NULL;
    }
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
    c->next_msg_id = 1;
    vfio_user_rx_init(&c->rx, CLIENT_MAX_MSG_SIZE, VFIO_USER_MSG_MAX_FDS);
    c->sock = open_socket(socket_path);
    if (c->sock < 0) {
        *err = c->sock;
        VNVME_ERR(COMP, "connect %s: %s", socket_path ? socket_path : "(null)", strerror(-*err));
        c->sock = -1;
        vfio_user_client_close(c);
        return NULL;
    }
    int rc = negotiate_version(c);
    if (rc) {
        *err = rc;
        vfio_user_client_close(c);
        return NULL;
    }
    *err = 0;
    return c;
}

void vfio_user_client_close(struct vfio_user_client *c)
{
    if (!c)
        return;
    client_regions_free(c);
    client_dma_table_free(&c->dma);
    vfio_user_rx_fini(&c->rx);
    if (c->sock >= 0)
        close(c->sock);
    free(c);
}

/* Send the fixed-size request req and copy the first size bytes of the reply into out. */
static int call_copy_reply(struct vfio_user_client *c, uint16_t cmd, void *req, size_t size, void *out)
{
    struct iovec iov = {.iov_base = req, .iov_len = size};
    int rc = client_call(c, cmd, 0, &iov, 1, NULL, 0);
    if (rc)
        return rc;
    const struct vfio_user_msg *m = &c->rx.msg;
    if (m->len < size)
        rc = -EPROTO;
    else
        memcpy(out, m->payload, size);
    vfio_user_rx_release(&c->rx);
    return rc;
}

int vfio_user_client_device_info(struct vfio_user_client *c, struct vfio_user_device_info *info)
{
    struct vfio_user_device_info req = {.argsz = sizeof(req)};
    int rc = call_copy_reply(c, VFIO_USER_DEVICE_GET_INFO, &req, sizeof(req), info);
    if (rc == 0 && info->argsz < sizeof(*info))
        rc = -EPROTO;
    return rc;
}

int vfio_user_client_irq_info(struct vfio_user_client *c, uint32_t index, struct vfio_irq_info *info)
{
    struct vfio_irq_info req = {.argsz = sizeof(req), .index = index};
    int rc = call_copy_reply(c, VFIO_USER_DEVICE_GET_IRQ_INFO, &req, sizeof(req), info);
    if (rc == 0 && (info->index != index || info->argsz < sizeof(*info)))
        rc = -EPROTO;
    return rc;
}

int vfio_user_client_set_irqs(struct vfio_user_client *c, uint32_t index, uint32_t action, uint32_t start,
                              uint32_t count, const int *fds, const uint8_t *bools)
{
    if (action & ~VFIO_IRQ_SET_ACTION_TYPE_MASK || (count && start > UINT32_MAX - (count - 1)))
        return -EINVAL;
    if (fds && bools)
        return -EINVAL;
    struct vfio_irq_set set = {.argsz = sizeof(set), .flags = action, .index = index};
    if (bools) {
        if (count > c->server_caps.max_data_xfer_size)
            return -E2BIG;
        set.flags |= VFIO_IRQ_SET_DATA_BOOL;
        set.argsz += count;
        set.start = start;
        set.count = count;
        struct iovec iov[2] = {{.iov_base = &set, .iov_len = sizeof(set)},
                               {.iov_base = (void *)bools, .iov_len = count}};
        int rc = client_call(c, VFIO_USER_DEVICE_SET_IRQS, 0, iov, count ? 2 : 1, NULL, 0);
        if (rc == 0)
            vfio_user_rx_release(&c->rx);
        return rc;
    }
    if (!fds) {
        set.flags |= VFIO_IRQ_SET_DATA_NONE;
        set.start = start;
        set.count = count;
        struct iovec iov = {.iov_base = &set, .iov_len = sizeof(set)};
        int rc = client_call(c, VFIO_USER_DEVICE_SET_IRQS, 0, &iov, 1, NULL, 0);
        if (rc == 0)
            vfio_user_rx_release(&c->rx);
        return rc;
    }

    /* Eventfds travel as SCM_RIGHTS; an fd of -1 cannot, so it is refused. */
    for (uint32_t i = 0; i < count; i++)
        if (fds[i] < 0)
            return -EBADF;
    size_t batch = c->server_caps.max_msg_fds;
    if (batch > VFIO_USER_MSG_MAX_FDS)
        batch = VFIO_USER_MSG_MAX_FDS;
    if (batch == 0 && count > 0)
        return -EOPNOTSUPP;
    set.flags |= VFIO_IRQ_SET_DATA_EVENTFD;
    uint32_t done = 0;
    do {
        uint32_t n = count - done;
        if (n > batch)
            n = (uint32_t)batch;
        set.start = start + done;
        set.count = n;
        struct iovec iov = {.iov_base = &set, .iov_len = sizeof(set)};
        int rc = client_call(c, VFIO_USER_DEVICE_SET_IRQS, 0, &iov, 1, fds + done, n);
        if (rc)
            return rc;
        vfio_user_rx_release(&c->rx);
        done += n;
    } while (done < count);
    return 0;
}

int vfio_user_client_device_reset(struct vfio_user_client *c)
{
    int rc = client_call(c, VFIO_USER_DEVICE_RESET, 0, NULL, 0, NULL, 0);
    if (rc == 0)
        vfio_user_rx_release(&c->rx);
    return rc;
}

int vfio_user_client_poll(struct vfio_user_client *c)
{
    if (c->broken)
        return -ENOTCONN;
    int served = 0;
    for (;;) {
        int rc = vfio_user_rx_step(&c->rx, c->sock);
        if (rc == 0)
            return served;
        if (rc < 0) {
            /* Report what was served now; the error (EOF persists) comes with the next call. */
            if (served > 0 && rc == -ECONNRESET)
                return served;
            return mark_broken(c, rc);
        }
        const struct vfio_user_msg *m = &c->rx.msg;
        if ((m->hdr.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_COMMAND) {
            rc = client_serve_request(c, m);
            vfio_user_rx_release(&c->rx);
            if (rc)
                return mark_broken(c, rc);
            served++;
        } else {
            VNVME_DEBUG(COMP, "dropping reply with unknown msg_id %u", m->hdr.msg_id);
            vfio_user_rx_release(&c->rx);
        }
    }
}
