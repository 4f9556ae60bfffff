/* SPDX-License-Identifier: MIT */
/*
 * DMA memory: one memfd mapped locally and shared with the controller by
 * DMA_MAP at a fixed IOVA, so a pointer into it translates to an IOVA by
 * subtraction. The allocator is a first-fit list of blocks sorted by offset
 * with coalescing on free, under a mutex: allocations happen at setup time
 * (queues, PRP lists, caller buffers) and for bounce buffers, which exist
 * only when a caller passes memory that is not from the pool, the slow path
 * by definition. Nothing on the zero-copy I/O path allocates.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "host_internal.h"

#define GRANULE 64u

struct vnvme_dma_block {
    size_t off, size;
    bool used;
    struct vnvme_dma_block *next;
};

int vnvme_dma_pool_init(struct vnvme_dma_pool *p, size_t size, uint64_t iova)
{
    memset(p, 0, sizeof(*p));
    p->memfd = -1;
    size = (size + VNVME_PAGE - 1) & ~(size_t)(VNVME_PAGE - 1);
    if (size == 0)
        return -EINVAL;
    p->memfd = memfd_create("vnvme-dma", MFD_CLOEXEC);
    if (p->memfd < 0)
        return -errno;
    if (ftruncate(p->memfd, (off_t)size) < 0)
        goto fail;
    p->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, p->memfd, 0);
    if (p->base == MAP_FAILED) {
        p->base = NULL;
        goto fail;
    }
    p->blocks = calloc(1, sizeof(*p->blocks));
    if (!p->blocks) {
        errno = ENOMEM;
        goto fail;
    }
    p->blocks->size = size;
    p->size = size;
    p->iova = iova;
    pthread_mutex_init(&p->lock, NULL);
    return 0;
fail:;
    int rc = -errno;
    vnvme_dma_pool_fini(p);
    return rc;
}

void vnvme_dma_pool_fini(struct vnvme_dma_pool *p)
{
    struct vnvme_dma_block *b = p->blocks;
    while (b) {
        struct vnvme_dma_block *n = b->next;
        free(b);
        b = n;
    }
    if (p->base) {
        munmap(p->base, p->size);
        pthread_mutex_destroy(&p->lock);
    }
    if (p->memfd >= 0)
        close(p->memfd);
    memset(p, 0, sizeof(*p));
    p->memfd = -1;
}

/* Split b so that a block starts at off (off > b->off); returns the new block or NULL. */
static struct vnvme_dma_block *split_at(struct vnvme_dma_block *b, size_t off)
{
    struct vnvme_dma_block *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->off = off;
    n->size = b->off + b->size - off;
    n->next = b->next;
    b->size = off - b->off;
    b->next = n;
    return n;
}

void *vnvme_dma_pool_alloc(struct vnvme_dma_pool *p, size_t size, size_t align)
{
    if (size == 0 || size > p->size)
        return NULL;
    if (align < GRANULE)
        align = GRANULE;
    if (align & (align - 1))
        return NULL;
    size = (size + GRANULE - 1) & ~(size_t)(GRANULE - 1);
    void *out = NULL;
    pthread_mutex_lock(&p->lock);
    for (struct vnvme_dma_block *b = p->blocks; b; b = b->next) {
        if (b->used)
            continue;
        size_t start = (b->off + align - 1) & ~(align - 1);
        if (start + size > b->off + b->size || start < b->off)
            continue;
        if (start > b->off) {
            b = split_at(b, start);
            if (!b)
                break;
        }
        if (b->size > size && !split_at(b, b->off + size))
            break;
        b->used = true;
        out = p->base + b->off;
        break;
    }
    pthread_mutex_unlock(&p->lock);
    if (out)
        memset(out, 0, size);
    return out;
}

void vnvme_dma_pool_free(struct vnvme_dma_pool *p, void *buf)
{
    if (!buf)
        return;
    size_t off = (size_t)((uint8_t *)buf - p->base);
    pthread_mutex_lock(&p->lock);
    struct vnvme_dma_block *prev = NULL, *b = p->blocks;
    while (b && b->off != off) {
        prev = b;
        b = b->next;
    }
    if (b && b->used) {
        b->used = false;
        struct vnvme_dma_block *n = b->next;
        if (n && !n->used) {
            b->size += n->size;
            b->next = n->next;
            free(n);
        }
        if (prev && !prev->used) {
            prev->size += b->size;
            prev->next = b->next;
            free(b);
        }
    }
    pthread_mutex_unlock(&p->lock);
}

size_t vnvme_dma_pool_bytes_free(struct vnvme_dma_pool *p)
{
    size_t n = 0;
    pthread_mutex_lock(&p->lock);
    for (struct vnvme_dma_block *b = p->blocks; b; b = b->next)
        if (!b->used)
            n += b->size;
    pthread_mutex_unlock(&p->lock);
    return n;
}
