/* SPDX-License-Identifier: MIT */
/*
 * Windows' I/O mappings and the fences that take pages of them away from an
 * I/O the device gave up on (see "Fences" in vfio_user_dma.h).
 *
 * A fence is MAP_FIXED private anonymous memory over the I/O's pages: the
 * swap is atomic for every thread, so a write that races with it lands
 * either in the client's page (while the device still owned the I/O, before
 * anyone was told it ended) or in the anonymous one. Lifting maps the
 * client's pages back over it. Everything here is the rare path (an I/O
 * abandoned to a stalled cluster); the hot path only reads m->fenced.
 *
 * Only the table thread maps over an I/O mapping (it also covers and
 * releases them), so a fence dropped on another thread (the library
 * finished the I/O on its own thread) leaves its spans on the mapping's
 * lock-free stack of lifts, and the table thread lifts them when it next
 * finds the window fenced. A released mapping closes the stack: later
 * drops just let go of their reference.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "dma_iomap.h"
#include "vnvme/vfio_user_dma.h"

struct fence_span {
    struct vfio_user_dma_iomap *m;
    size_t off, len; /* page-aligned, inside m */
};

#define LIFTS_CLOSED ((struct vfio_user_dma_lift *)1)

struct vfio_user_dma_fence {
    uint32_t n;
    struct fence_span s[];
};

struct vfio_user_dma_iomap *vfio_user_dma_iomap_create(int fd, uint64_t fd_base, size_t len, int prot,
                                                       struct vfio_user_dma_iomap **list)
{
    struct vfio_user_dma_iomap *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    void *p = mmap(NULL, len, prot, MAP_SHARED, fd, (off_t)fd_base);
    if (p == MAP_FAILED) {
        VNVME_WARN("dma", "no I/O mapping for a window (%s): its I/O will be copied", strerror(errno));
        free(m);
        return NULL;
    }
    m->base = p;
    m->len = len;
    m->fd = fd;
    m->fd_base = fd_base;
    m->prot = prot;
    atomic_init(&m->refs, 1);
    atomic_init(&m->lifts, NULL);
    m->next = *list;
    if (m->next)
        m->next->pprev = &m->next;
    m->pprev = list;
    *list = m;
    return m;
}

static void iomap_put(struct vfio_user_dma_iomap *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    munmap(m->base, m->len);
    free(m);
}

int vfio_user_dma_cover(void *p, size_t len)
{
    void *q = mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    return q == MAP_FAILED ? -errno : 0;
}

void vfio_user_dma_iomap_release(struct vfio_user_dma_iomap *m)
{
    if (!m)
        return;
    m->removed = true;
    *m->pprev = m->next;
    if (m->next)
        m->next->pprev = m->pprev;
    if (m->fenced > 0) {
        /*
         * Fenced pages are written by somebody who will not stop; the rest may
         * be read by I/O on the same buffers. Cover all of it, keep the
         * addresses until the last fence goes, and let go of the client's pages.
         */
        int rc = vfio_user_dma_cover(m->base, m->len);
        if (rc < 0)
            VNVME_ERR("dma", "covering an I/O mapping: %s; it stays mapped", strerror(-rc));
    }
    /* Lifts still pending: nothing to map back any more, only their references to let go. */
    struct vfio_user_dma_lift *l = atomic_exchange_explicit(&m->lifts, LIFTS_CLOSED, memory_order_acq_rel);
    while (l) {
        struct vfio_user_dma_lift *next = l->next;
        free(l);
        iomap_put(m); /* never the last: the window's own reference goes below */
        l = next;
    }
    m->fd = -1;
    iomap_put(m);
}

/* Map the client's pages back over [off, off + len) of m; false when that failed (it stays fenced). */
static bool unfence(struct vfio_user_dma_iomap *m, size_t off, size_t len)
{
    void *p = mmap(m->base + off, len, m->prot, MAP_SHARED | MAP_FIXED, m->fd, (off_t)(m->fd_base + off));
    if (p == MAP_FAILED) {
        VNVME_WARN("dma", "lifting a fence: %s; the window's I/O stays copied", strerror(errno));
        return false;
    }
    m->fenced--;
    return true;
}

void vfio_user_dma_iomap_lift_dropped(struct vfio_user_dma_iomap *m)
{
    struct vfio_user_dma_lift *l = atomic_exchange_explicit(&m->lifts, NULL, memory_order_acquire);
    while (l) {
        struct vfio_user_dma_lift *next = l->next;
        (void)unfence(m, l->off, l->len);
        free(l);
        iomap_put(m); /* never the last: the window still holds its own */
        l = next;
    }
}

/* The I/O mapping holding the byte at p, or NULL. */
static struct vfio_user_dma_iomap *iomap_of(const struct vfio_user_dma_table *t, uintptr_t p)
{
    for (struct vfio_user_dma_iomap *m = vfio_user_dma_table_iomaps(t); m; m = m->next)
        if (p >= (uintptr_t)m->base && p - (uintptr_t)m->base < m->len)
            return m;
    return NULL;
}

/* The spans iov covers, one per window it crosses; -EINVAL when not whole pages of I/O mappings. */
static int split(const struct vfio_user_dma_table *t, const struct iovec *iov, int iovcnt, struct fence_span *out,
                 uint32_t max)
{
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uint32_t n = 0;
    for (int i = 0; i < iovcnt; i++) {
        uintptr_t p = (uintptr_t)iov[i].iov_base;
        size_t left = iov[i].iov_len;
        if ((p | left) & (pg - 1))
            return -EINVAL;
        while (left > 0) {
            struct vfio_user_dma_iomap *m = iomap_of(t, p);
            if (!m)
                return -EINVAL;
            size_t off = p - (uintptr_t)m->base;
            size_t len = m->len - off < left ? m->len - off : left;
            if (out && n < max)
                out[n] = (struct fence_span){.m = m, .off = off, .len = len};
            n++;
            p += len;
            left -= len;
        }
    }
    return (int)n;
}

/* Let go of f, its spans staying fenced until their windows go (the I/O may still write them). */
static void forget(struct vfio_user_dma_fence *f)
{
    for (uint32_t i = 0; i < f->n; i++)
        iomap_put(f->s[i].m);
    free(f);
}

struct vfio_user_dma_fence *vfio_user_dma_fence(const struct vfio_user_dma_table *t, const struct iovec *iov,
                                                int iovcnt)
{
    int n = iovcnt > 0 ? split(t, iov, iovcnt, NULL, 0) : -EINVAL;
    if (n <= 0) {
        errno = EINVAL;
        return NULL;
    }
    struct vfio_user_dma_fence *f = malloc(sizeof(*f) + (size_t)n * sizeof(f->s[0]));
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    f->n = (uint32_t)split(t, iov, iovcnt, f->s, (uint32_t)n);
    for (uint32_t i = 0; i < f->n; i++) {
        int rc = vfio_user_dma_cover(f->s[i].m->base + f->s[i].off, f->s[i].len);
        if (rc < 0) {
            /* The spans covered so far stay fenced until their windows go: the I/O is not safe to give up. */
            f->n = i;
            forget(f);
            errno = -rc;
            return NULL;
        }
        f->s[i].m->fenced++;
        atomic_fetch_add_explicit(&f->s[i].m->refs, 1, memory_order_relaxed);
    }
    return f;
}

void vfio_user_dma_fence_lift(struct vfio_user_dma_fence *f)
{
    for (uint32_t i = 0; i < f->n; i++) {
        struct fence_span *s = &f->s[i];
        struct vfio_user_dma_iomap *m = s->m;
        if (!m->removed)
            (void)unfence(m, s->off, s->len);
        iomap_put(m);
    }
    free(f);
}

/* Any thread: leave [off, off + len) of m and the span's reference to the table thread; false once m is released. */
static bool push_lift(struct vfio_user_dma_iomap *m, size_t off, size_t len)
{
    struct vfio_user_dma_lift *l = malloc(sizeof(*l));
    if (!l)
        return false; /* no memory for the lift: fenced until the window goes */
    l->off = off;
    l->len = len;
    struct vfio_user_dma_lift *head = atomic_load_explicit(&m->lifts, memory_order_relaxed);
    do {
        if (head == LIFTS_CLOSED) {
            free(l); /* released: nothing to lift */
            return false;
        }
        l->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&m->lifts, &head, l, memory_order_release, memory_order_relaxed));
    return true;
}

void vfio_user_dma_fence_drop(struct vfio_user_dma_fence *f)
{
    for (uint32_t i = 0; i < f->n; i++)
        if (!push_lift(f->s[i].m, f->s[i].off, f->s[i].len))
            iomap_put(f->s[i].m);
    free(f);
}
