/* SPDX-License-Identifier: MIT */
/*
 * The DMA window table: a sorted array of non-overlapping windows searched by
 * bisection. Adds and removes are rare (control path) and may move entries;
 * lookups are on every emulated DMA and touch nothing but the array.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "dma_iomap.h"
#include "vnvme/vfio_user_dma.h"

#define DEFAULT_MAX_REGIONS 1024u
#define ACCESS_MASK (VFIO_USER_DMA_READ_OK | VFIO_USER_DMA_WRITE_OK)

struct vfio_user_dma_table {
    struct vfio_user_dma_region *r; /* sorted by iova */
    uint32_t n;
    uint32_t cap;
    uint32_t max;
    struct vfio_user_dma_iomap *iomaps; /* see vfio_user_dma_table_iomaps */
};

struct vfio_user_dma_iomap *vfio_user_dma_table_iomaps(const struct vfio_user_dma_table *t)
{
    return t->iomaps;
}

struct vfio_user_dma_table *vfio_user_dma_table_create(uint32_t max_regions)
{
    struct vfio_user_dma_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->max = max_regions ? max_regions : DEFAULT_MAX_REGIONS;
    return t;
}

/* The window no longer owns its fd or its addresses. */
static void forget(struct vfio_user_dma_region *r)
{
    vfio_user_dma_iomap_release(r->iomap); /* before the fd it borrows is closed */
    r->iomap = NULL;
    r->io_vaddr = NULL;
    if (r->fd >= 0)
        close(r->fd);
    r->map_base = NULL;
    r->vaddr = NULL;
    r->fd = -1;
}

void vfio_user_dma_region_release(struct vfio_user_dma_region *r)
{
    if (r->map_base)
        munmap(r->map_base, r->map_len);
    forget(r);
}

void vfio_user_dma_region_quarantine(struct vfio_user_dma_region *r)
{
    if (r->map_base) {
        int rc = vfio_user_dma_cover(r->map_base, r->map_len);
        if (rc < 0)
            /* Keeping the client's pages mapped is the lesser harm than freeing the addresses. */
            VNVME_ERR("dma", "quarantining window 0x%llx+0x%llx: %s; it stays mapped",
                      (unsigned long long)r->iova, (unsigned long long)r->size, strerror(-rc));
        else
            VNVME_WARN("dma", "window 0x%llx+0x%llx quarantined: a device I/O may still write it",
                       (unsigned long long)r->iova, (unsigned long long)r->size);
    }
    forget(r);
}

void vfio_user_dma_table_clear(struct vfio_user_dma_table *t,
                               bool (*cb)(void *arg, const struct vfio_user_dma_region *r), void *arg)
{
    /* Take windows off the end so the table stays consistent if cb looks at it. */
    while (t->n > 0) {
        struct vfio_user_dma_region r = t->r[t->n - 1];
        t->n--;
        if (cb && cb(arg, &r))
            vfio_user_dma_region_quarantine(&r);
        else
            vfio_user_dma_region_release(&r);
    }
}

void vfio_user_dma_table_destroy(struct vfio_user_dma_table *t)
{
    if (!t)
        return;
    vfio_user_dma_table_clear(t, NULL, NULL);
    free(t->r);
    free(t);
}

/* Index of the first window whose iova is greater than iova (0..n). */
static uint32_t upper_bound(const struct vfio_user_dma_table *t, uint64_t iova)
{
    uint32_t lo = 0, hi = t->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->r[mid].iova <= iova)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static inline uint64_t region_last(const struct vfio_user_dma_region *r)
{
    return r->iova + (r->size - 1);
}

const struct vfio_user_dma_region *vfio_user_dma_table_find(const struct vfio_user_dma_table *t, uint64_t iova)
{
    uint32_t i = upper_bound(t, iova);
    if (i == 0)
        return NULL;
    const struct vfio_user_dma_region *r = &t->r[i - 1];
    return iova <= region_last(r) ? r : NULL;
}

/*
 * The client could shrink a shared file after mapping it, and touching a page
 * past its end would kill us with SIGBUS. Check the size now and, for a
 * memfd, seal it against shrinking so the check stays true. Other files give
 * no such guarantee; a client that truncates them harms itself first.
 */
static int check_backing(int fd, uint64_t fd_offset, uint64_t size)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    if (fd_offset > (uint64_t)st.st_size || size > (uint64_t)st.st_size - fd_offset)
        return -EINVAL;
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals >= 0 && !(seals & F_SEAL_SHRINK) && !(seals & F_SEAL_SEAL))
        (void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
    return 0;
}

static int map_window(struct vfio_user_dma_table *t, struct vfio_user_dma_region *r)
{
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t delta = r->fd_offset & (uint64_t)(pg - 1);
    uint64_t len = r->size + delta;
    if (len < r->size || len > SIZE_MAX)
        return -EINVAL;
    int prot = 0;
    if (r->prot & VFIO_USER_DMA_READ_OK)
        prot |= PROT_READ;
    if (r->prot & VFIO_USER_DMA_WRITE_OK)
        prot |= PROT_WRITE;
    void *p = mmap(NULL, (size_t)len, prot, MAP_SHARED, r->fd, (off_t)(r->fd_offset - delta));
    if (p == MAP_FAILED)
        return -errno;
    r->map_base = p;
    r->map_len = (size_t)len;
    r->vaddr = (uint8_t *)p + delta;
    r->iomap = vfio_user_dma_iomap_create(r->fd, r->fd_offset - delta, (size_t)len, prot, &t->iomaps);
    if (r->iomap)
        r->io_vaddr = r->iomap->base + delta;
    return 0;
}

int vfio_user_dma_table_add(struct vfio_user_dma_table *t, uint64_t iova, uint64_t size, uint32_t prot,
                            int fd, uint64_t fd_offset)
{
    struct vfio_user_dma_region r = {
        .iova = iova, .size = size, .prot = prot, .fd = fd, .fd_offset = fd_offset,
    };
    int rc = 0;

    if (size == 0 || iova + (size - 1) < iova || prot == 0 || (prot & ~ACCESS_MASK) ||
        (fd >= 0 && fd_offset + (size - 1) < fd_offset)) {
        rc = -EINVAL;
        goto fail;
    }
    uint32_t i = upper_bound(t, iova);
    if ((i > 0 && region_last(&t->r[i - 1]) >= iova) || (i < t->n && t->r[i].iova <= iova + (size - 1))) {
        rc = -EEXIST;
        goto fail;
    }
    if (t->n >= t->max) {
        rc = -ENOSPC;
        goto fail;
    }
    if (t->n == t->cap) {
        uint32_t ncap = t->cap ? t->cap * 2 : 16;
        if (ncap > t->max)
            ncap = t->max;
        struct vfio_user_dma_region *nr = realloc(t->r, sizeof(*nr) * ncap);
        if (!nr) {
            rc = -ENOMEM;
            goto fail;
        }
        t->r = nr;
        t->cap = ncap;
    }
    if (fd >= 0) {
        rc = check_backing(fd, fd_offset, size);
        if (rc == 0)
            rc = map_window(t, &r);
        if (rc)
            goto fail;
    }
    memmove(&t->r[i + 1], &t->r[i], sizeof(*t->r) * (t->n - i));
    t->r[i] = r;
    t->n++;
    return 0;

fail:
    if (fd >= 0)
        close(fd);
    return rc;
}

int vfio_user_dma_table_remove(struct vfio_user_dma_table *t, uint64_t iova, uint64_t size,
                               struct vfio_user_dma_region *out)
{
    uint32_t i = upper_bound(t, iova);
    if (i == 0 || t->r[i - 1].iova != iova || t->r[i - 1].size != size)
        return -ENOENT;
    i--;
    struct vfio_user_dma_region r = t->r[i];
    memmove(&t->r[i], &t->r[i + 1], sizeof(*t->r) * (t->n - i - 1));
    t->n--;
    if (out)
        *out = r;
    else
        vfio_user_dma_region_release(&r);
    return 0;
}

uint32_t vfio_user_dma_table_count(const struct vfio_user_dma_table *t)
{
    return t->n;
}

const struct vfio_user_dma_region *vfio_user_dma_table_at(const struct vfio_user_dma_table *t, uint32_t i)
{
    return i < t->n ? &t->r[i] : NULL;
}

int vfio_user_dma_translate(const struct vfio_user_dma_table *t, uint64_t iova, uint64_t len, uint32_t access,
                            struct iovec *iov, int max_iov)
{
    bool io = access & VFIO_USER_DMA_IO_MAPPING;
    access &= ~VFIO_USER_DMA_IO_MAPPING;
    if (len == 0 || iova + (len - 1) < iova || access == 0 || (access & ~ACCESS_MASK))
        return -EINVAL;
    uint32_t i = upper_bound(t, iova);
    if (i == 0)
        return -EFAULT;
    i--;
    int n = 0;
    for (;;) {
        const struct vfio_user_dma_region *r = &t->r[i];
        if (iova < r->iova || iova > region_last(r))
            return -EFAULT;
        if (!r->vaddr)
            return -EFAULT;
        if ((r->prot & access) != access)
            return -EACCES;
        uint64_t off = iova - r->iova;
        uint64_t chunk = r->size - off;
        if (chunk > len)
            chunk = len;
        uint8_t *p = (uint8_t *)r->vaddr + off;
        if (io) {
            if (r->iomap && r->iomap->fenced && atomic_load_explicit(&r->iomap->lifts, memory_order_relaxed))
                vfio_user_dma_iomap_lift_dropped(r->iomap); /* rare: fences dropped on other threads */
            if (!r->iomap || r->iomap->fenced)
                return -EAGAIN;
            p = (uint8_t *)r->io_vaddr + off;
        }
        if (n > 0 && (uint8_t *)iov[n - 1].iov_base + iov[n - 1].iov_len == p) {
            iov[n - 1].iov_len += chunk; /* windows that are adjacent locally too */
        } else {
            if (n == max_iov)
                return -ENOSPC;
            iov[n].iov_base = p;
            iov[n].iov_len = chunk;
            n++;
        }
        len -= chunk;
        if (len == 0)
            return n;
        iova += chunk;
        /* The rest must continue in the very next window, with no gap. */
        if (++i >= t->n)
            return -EFAULT;
    }
}

void *vfio_user_dma_ptr(const struct vfio_user_dma_table *t, uint64_t iova, uint64_t len, uint32_t access)
{
    if (len == 0)
        return NULL;
    const struct vfio_user_dma_region *r = vfio_user_dma_table_find(t, iova);
    if (!r || !r->vaddr || (r->prot & access) != access || access == 0)
        return NULL;
    uint64_t off = iova - r->iova;
    if (len > r->size - off)
        return NULL;
    return (uint8_t *)r->vaddr + off;
}
