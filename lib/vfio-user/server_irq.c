/* SPDX-License-Identifier: MIT */
/* Interrupts: IRQ indexes, GET_IRQ_INFO, SET_IRQS, and delivery through eventfds. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "server_internal.h"

#define KNOWN_SET_FLAGS (VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)
#define KNOWN_INFO_FLAGS                                                                                               \
    (VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED | VFIO_IRQ_INFO_NORESIZE)

static void close_vectors(struct srv_irq *q, uint32_t start, uint32_t count)
{
    for (uint32_t v = start; v < start + count; v++) {
        if (q->fds[v] >= 0)
            close(q->fds[v]);
        q->fds[v] = -1;
    }
}

static void free_irq(struct srv_irq *q)
{
    if (q->fds)
        close_vectors(q, 0, q->count);
    free(q->fds);
    free(q->masked);
    free(q->pending);
    memset(q, 0, sizeof(*q));
}

int vfio_user_server_setup_irq(struct vfio_user_server *s, uint32_t index, uint32_t count, uint32_t info_flags)
{
    if (!s || index >= s->num_irqs || count > SRV_MAX_IRQ_VECTORS || (info_flags & ~KNOWN_INFO_FLAGS))
        return -EINVAL;
    struct srv_irq q = {.count = count, .info_flags = info_flags};
    if (count) {
        q.fds = malloc(count * sizeof(*q.fds));
        q.masked = calloc(count, sizeof(*q.masked));
        q.pending = calloc(count, sizeof(*q.pending));
        if (!q.fds || !q.masked || !q.pending) {
            free(q.fds);
            free(q.masked);
            free(q.pending);
            return -ENOMEM;
        }
        for (uint32_t i = 0; i < count; i++)
            q.fds[i] = -1;
    }
    free_irq(&s->irqs[index]);
    s->irqs[index] = q;
    return 0;
}

void srv_irqs_reset_all(struct vfio_user_server *s)
{
    for (uint32_t i = 0; i < s->num_irqs; i++) {
        struct srv_irq *q = &s->irqs[i];
        bool changed = false;
        for (uint32_t v = 0; v < q->count; v++) {
            changed |= q->fds[v] >= 0 || q->masked[v] || q->pending[v];
            q->masked[v] = false;
            q->pending[v] = false;
        }
        if (q->count)
            close_vectors(q, 0, q->count);
        if (changed && s->ops && s->ops->irq_changed)
            s->ops->irq_changed(s->dev_ctx, i);
    }
}

void srv_irqs_free(struct vfio_user_server *s)
{
    for (uint32_t i = 0; i < s->num_irqs; i++)
        free_irq(&s->irqs[i]);
    free(s->irqs);
    s->irqs = NULL;
}

/* The interrupt hot path: one write, no allocation. */
static void fire(struct srv_irq *q, uint32_t v)
{
    if (q->masked[v]) {
        q->pending[v] = true;
        return;
    }
    if (q->fds[v] < 0)
        return;
    uint64_t one = 1;
    /* EAGAIN means the counter is saturated: the interrupt is already visible. */
    if (write(q->fds[v], &one, sizeof(one)) < 0 && errno != EAGAIN)
        VNVME_DEBUG(SRV_LOG, "irq eventfd write: %s", strerror(errno));
}

int vfio_user_server_irq_trigger(struct vfio_user_server *s, uint32_t index, uint32_t vector)
{
    if (index >= s->num_irqs || vector >= s->irqs[index].count)
        return -EINVAL;
    struct srv_irq *q = &s->irqs[index];
    if (q->masked[vector]) {
        q->pending[vector] = true;
        return 0;
    }
    if (q->fds[vector] < 0)
        return -ENOENT;
    fire(q, vector);
    return 0;
}

int vfio_user_server_irq_fd(const struct vfio_user_server *s, uint32_t index, uint32_t vector)
{
    if (index >= s->num_irqs || vector >= s->irqs[index].count)
        return -1;
    return s->irqs[index].fds[vector];
}

bool vfio_user_server_irq_masked(const struct vfio_user_server *s, uint32_t index, uint32_t vector)
{
    if (index >= s->num_irqs || vector >= s->irqs[index].count)
        return false;
    return s->irqs[index].masked[vector];
}

bool vfio_user_server_irq_pending(const struct vfio_user_server *s, uint32_t index, uint32_t vector)
{
    if (index >= s->num_irqs || vector >= s->irqs[index].count)
        return false;
    return s->irqs[index].pending[vector];
}

uint32_t vfio_user_server_irq_enabled_count(const struct vfio_user_server *s, uint32_t index)
{
    if (index >= s->num_irqs)
        return 0;
    uint32_t n = 0;
    for (uint32_t v = 0; v < s->irqs[index].count; v++)
        n += s->irqs[index].fds[v] >= 0;
    return n;
}

void srv_handle_irq_info(struct vfio_user_server *s, struct vfio_user_msg *m)
{
    struct vfio_irq_info in;
    if (m->len < sizeof(in)) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    memcpy(&in, m->payload, sizeof(in));
    if (in.argsz < sizeof(in) || in.index >= s->num_irqs) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    const struct srv_irq *q = &s->irqs[in.index];
    struct vfio_irq_info out = {.argsz = sizeof(out), .flags = q->info_flags, .index = in.index, .count = q->count};
    struct iovec iov = {&out, sizeof(out)};
    srv_reply(s, &m->hdr, &iov, 1, NULL, 0);
}

/* An interrupt fd must be an eventfd: anything else (a pipe) could block the hot path. */
static bool is_eventfd(int fd)
{
    char path[64], target[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n < 0)
        return false;
    target[n] = '\0';
    return strcmp(target, "anon_inode:[eventfd]") == 0;
}

static bool one_bit(uint32_t v)
{
    return v && !(v & (v - 1));
}

static int validate_set_irqs(const struct vfio_user_server *s, const struct vfio_irq_set *is, size_t data_len,
                             const struct vfio_user_msg *m)
{
    uint32_t data = is->flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
    uint32_t action = is->flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    if ((is->flags & ~KNOWN_SET_FLAGS) || !one_bit(data) || !one_bit(action))
        return -EINVAL;
    if (is->index >= s->num_irqs)
        return -EINVAL;
    const struct srv_irq *q = &s->irqs[is->index];
    if (is->count == 0) {
        /* The only meaning of count 0: disable every vector of the index. */
        if (is->start == 0 && data == VFIO_IRQ_SET_DATA_NONE && action == VFIO_IRQ_SET_ACTION_TRIGGER &&
            m->nfds == 0)
            return 0;
        return -EINVAL;
    }
    if (is->start >= q->count || is->count > q->count - is->start)
        return -EINVAL;
    if (action != VFIO_IRQ_SET_ACTION_TRIGGER && !(q->info_flags & VFIO_IRQ_INFO_MASKABLE))
        return -EINVAL;
    switch (data) {
    case VFIO_IRQ_SET_DATA_NONE:
        return m->nfds ? -EINVAL : 0;
    case VFIO_IRQ_SET_DATA_BOOL:
        return (m->nfds || data_len < is->count) ? -EINVAL : 0;
    default:
        /*
         * Masking through eventfds (irqfd-style mask/unmask handlers) is not
         * supported: the client masks with NONE or BOOL instead.
         */
        if (action != VFIO_IRQ_SET_ACTION_TRIGGER)
            return -EINVAL;
        if (m->nfds != 0 && m->nfds != is->count)
            return -EINVAL;
        for (size_t i = 0; i < m->nfds; i++)
            if (!is_eventfd(m->fds[i]))
                return -EINVAL;
        return 0;
    }
}

static void apply_set_irqs(struct vfio_user_server *s, const struct vfio_irq_set *is, const uint8_t *data,
                           struct vfio_user_msg *m)
{
    struct srv_irq *q = &s->irqs[is->index];
    uint32_t dtype = is->flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
    uint32_t action = is->flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    if (is->count == 0) {
        if (q->count) {
            close_vectors(q, 0, q->count);
            memset(q->masked, 0, q->count * sizeof(*q->masked));
            memset(q->pending, 0, q->count * sizeof(*q->pending));
        }
        return;
    }
    if (dtype == VFIO_IRQ_SET_DATA_EVENTFD) {
        close_vectors(q, is->start, is->count);
        for (uint32_t i = 0; i < m->nfds; i++) {
            q->fds[is->start + i] = m->fds[i];
            m->fds[i] = -1;
        }
        return;
    }
    for (uint32_t i = 0; i < is->count; i++) {
        uint32_t v = is->start + i;
        if (dtype == VFIO_IRQ_SET_DATA_BOOL && !data[i])
            continue;
        if (action == VFIO_IRQ_SET_ACTION_TRIGGER) {
            fire(q, v);
        } else if (action == VFIO_IRQ_SET_ACTION_MASK) {
            q->masked[v] = true;
        } else {
            q->masked[v] = false;
            if (q->pending[v]) {
                q->pending[v] = false;
                fire(q, v);
            }
        }
    }
}

void srv_handle_set_irqs(struct vfio_user_server *s, struct vfio_user_msg *m)
{
    struct vfio_irq_set is;
    if (m->len < sizeof(is)) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    memcpy(&is, m->payload, sizeof(is));
    if (is.argsz < sizeof(is) || is.argsz > m->len) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    int rc = validate_set_irqs(s, &is, is.argsz - sizeof(is), m);
    if (rc) {
        srv_reply_err(s, &m->hdr, -rc);
        return;
    }
    apply_set_irqs(s, &is, m->payload + sizeof(is), m);
    if (s->ops && s->ops->irq_changed)
        s->ops->irq_changed(s->dev_ctx, is.index);
    srv_reply(s, &m->hdr, NULL, 0, NULL, 0);
}
