/* SPDX-License-Identifier: MIT */
/* A window's I/O mapping (dma_fence.c), as the table (dma_table.c) creates, translates into and releases it. */
#ifndef VNVME_VFIO_USER_DMA_IOMAP_H
#define VNVME_VFIO_USER_DMA_IOMAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vfio_user_dma_table;

/* A span of a fence dropped on another thread, for the table thread to lift (dma_fence.c). */
struct vfio_user_dma_lift {
    size_t off, len;
    struct vfio_user_dma_lift *next;
};

struct vfio_user_dma_iomap {
    uint8_t *base;         /* page-aligned start of the mapping */
    size_t len;
    int fd;                /* the window's, borrowed: valid until removed */
    uint64_t fd_base;      /* file offset of base */
    int prot;              /* PROT_* of the mapping */
    uint32_t fenced;       /* fences on it not yet lifted (table thread) */
    bool removed;          /* its window is gone (table thread) */
    _Atomic uint32_t refs; /* the window's, plus one per fence span (pending lifts included) */
    /* Dropped fences' spans waiting for the table thread (a lock-free stack; closed when removed). */
    _Atomic(struct vfio_user_dma_lift *) lifts;
    /* The table's list of I/O mappings whose window is not yet released (table thread). */
    struct vfio_user_dma_iomap *next, **pprev;
};

/*
 * The table's I/O mappings, including those of windows already removed from
 * it but not yet released: a device gives up on I/O in a window while told
 * of its removal (dma_unmap), and must be able to fence it then.
 */
struct vfio_user_dma_iomap *vfio_user_dma_table_iomaps(const struct vfio_user_dma_table *t);


/* Private anonymous memory over the page-aligned [p, p + len): later writes there reach nobody. 0 or -errno. */
int vfio_user_dma_cover(void *p, size_t len);
/* A second MAP_SHARED mapping of fd like the main one; NULL (no I/O mapping) when it cannot be had. */
struct vfio_user_dma_iomap *vfio_user_dma_iomap_create(int fd, uint64_t fd_base, size_t len, int prot,
                                                       struct vfio_user_dma_iomap **list);
/* Its window goes: unmapped now, or kept reserved while fences remain. */
void vfio_user_dma_iomap_release(struct vfio_user_dma_iomap *m);
/* Table thread: lift what dropped fences left on m (see vfio_user_dma_fence_drop). */
void vfio_user_dma_iomap_lift_dropped(struct vfio_user_dma_iomap *m);

#endif
