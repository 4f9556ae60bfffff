/* SPDX-License-Identifier: MIT */
/*
 * Client memory as the device sees it: the table of DMA windows the client
 * shared with DMA_MAP, and translation of (IOVA, length, access) into local
 * iovecs.
 *
 * Translation is what every emulated DMA goes through, so it is built for the
 * hot path: a sorted array searched by bisection, no allocation, no lock, no
 * syscall. The table is changed only from inside vfio_user_server_poll() on
 * the control thread; the device learns of each change through the server's
 * dma_map/dma_unmap callbacks and must stop data-path users of a window before
 * its dma_unmap callback returns (the spec requires that all references are
 * released before the unmap reply).
 */
#ifndef VNVME_VFIO_USER_DMA_H
#define VNVME_VFIO_USER_DMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define VFIO_USER_DMA_READ_OK (1u << 0)  /* device may read the window */
#define VFIO_USER_DMA_WRITE_OK (1u << 1) /* device may write the window */
/*
 * Translation flag: addresses in the windows' I/O mappings (see "Fences"
 * below) rather than their main mappings; -EAGAIN when a mapped window has
 * no I/O mapping or has fenced pages.
 */
#define VFIO_USER_DMA_IO_MAPPING (1u << 2)

struct vfio_user_dma_iomap;

/* One DMA window as shared by the client. */
struct vfio_user_dma_region {
    uint64_t iova;
    uint64_t size;
    uint32_t prot;     /* VFIO_USER_DMA_READ_OK | VFIO_USER_DMA_WRITE_OK */
    int fd;            /* -1 when shared without an fd (access by message) */
    uint64_t fd_offset;
    void *vaddr;       /* local address of iova, NULL when not mapped */
    void *map_base;    /* what mmap returned (page-aligned), for munmap */
    size_t map_len;
    void *io_vaddr;    /* iova in the I/O mapping, NULL when there is none */
    struct vfio_user_dma_iomap *iomap;
};

struct vfio_user_dma_table;

struct vfio_user_dma_table *vfio_user_dma_table_create(uint32_t max_regions);
void vfio_user_dma_table_destroy(struct vfio_user_dma_table *t);

/*
 * Add a window. With fd >= 0 the window is mmapped (the table owns the fd
 * from then on, also on failure). Returns 0, -EEXIST when it overlaps an
 * existing window, -EINVAL for a zero size, wrapping range or bad prot,
 * -ENOSPC when the table is full, or the mmap errno.
 */
int vfio_user_dma_table_add(struct vfio_user_dma_table *t, uint64_t iova, uint64_t size, uint32_t prot,
                            int fd, uint64_t fd_offset);

/*
 * Remove the window that starts at iova with exactly this size: -ENOENT when
 * no window matches exactly. The removed window (still mapped) is copied to
 * *out when out is not NULL so the caller can notify, then release it with
 * vfio_user_dma_region_release().
 */
int vfio_user_dma_table_remove(struct vfio_user_dma_table *t, uint64_t iova, uint64_t size,
                               struct vfio_user_dma_region *out);

/*
 * Remove every window, calling cb (if any) before each is released; a window
 * for which cb returns true is quarantined instead.
 */
void vfio_user_dma_table_clear(struct vfio_user_dma_table *t,
                               bool (*cb)(void *arg, const struct vfio_user_dma_region *r), void *arg);

/* munmap and close what a removed window held. */
void vfio_user_dma_region_release(struct vfio_user_dma_region *r);

/*
 * Let go of a removed window that something may still write (an I/O the
 * kernel or a library holds and nobody can cancel): the client's memory is
 * released (fd closed, its pages no longer mapped here), but the addresses
 * stay reserved for good, backed by private anonymous memory, so a late
 * write lands there instead of in whatever a later mmap would have put at
 * those addresses. Costs address space, and memory only for what is written.
 */
void vfio_user_dma_region_quarantine(struct vfio_user_dma_region *r);

uint32_t vfio_user_dma_table_count(const struct vfio_user_dma_table *t);
const struct vfio_user_dma_region *vfio_user_dma_table_at(const struct vfio_user_dma_table *t, uint32_t i);

/* The window containing iova, or NULL. */
const struct vfio_user_dma_region *vfio_user_dma_table_find(const struct vfio_user_dma_table *t, uint64_t iova);

/*
 * Translate [iova, iova+len) for the given access (VFIO_USER_DMA_READ_OK
 * and/or VFIO_USER_DMA_WRITE_OK) into at most max_iov iovecs, merging across
 * adjacent windows. Returns the number of iovecs, or:
 *   -EFAULT  some byte is outside every window, or in a window without fd
 *   -EACCES  some byte lies in a window without the needed permission
 *   -ENOSPC  more than max_iov iovecs would be needed
 *   -EINVAL  len is 0 or iova+len wraps
 */
int vfio_user_dma_translate(const struct vfio_user_dma_table *t, uint64_t iova, uint64_t len, uint32_t access,
                            struct iovec *iov, int max_iov);

/* Fast path for one contiguous local span: the pointer, or NULL. */
void *vfio_user_dma_ptr(const struct vfio_user_dma_table *t, uint64_t iova, uint64_t len, uint32_t access);

/*
 * Fences. A device I/O handed to a library or the kernel may be written long
 * after the device gave up on it (librbd has no cancel: a read the device
 * timed out or recalled still completes into its buffer later). If that
 * buffer were the client's memory, the late data would land in memory the
 * client already reused. So each window with an fd has a second mapping of
 * the same pages, the I/O mapping, used only for such I/O
 * (VFIO_USER_DMA_IO_MAPPING), and when the device gives up on an I/O its
 * pages there are fenced: replaced by private anonymous memory, which takes
 * the late writes; the client's pages, and the main mapping everything else
 * uses, are untouched. Fencing is page-granular, so only I/O whose iovecs
 * cover whole pages may be fenced (anything else is refused).
 *
 * Once the holder is done with the fenced addresses it lifts the fence: the
 * pages map the client's memory again. Until then the window refuses I/O
 * mapping translations (its I/O goes the safe slow way). A window removed
 * while fenced keeps its I/O mapping's addresses reserved, as anonymous
 * memory, until the last fence on it is lifted or dropped.
 *
 * vfio_user_dma_fence and _lift run on the thread that changes the table;
 * _drop on any thread.
 */
struct vfio_user_dma_fence;
/* NULL with errno: EINVAL (not whole pages, or not in an I/O mapping of t), ENOMEM, or mmap's errno. */
struct vfio_user_dma_fence *vfio_user_dma_fence(const struct vfio_user_dma_table *t, const struct iovec *iov,
                                                int iovcnt);
/* Nothing writes the fenced pages any more: give them back to their windows and free f. */
void vfio_user_dma_fence_lift(struct vfio_user_dma_fence *f);
/*
 * Same, from any thread: frees f at once, and the table thread lifts the
 * fence the next time it is asked for an I/O-mapping translation in one of
 * its windows (until then the window's I/O is copied).
 */
void vfio_user_dma_fence_drop(struct vfio_user_dma_fence *f);

#endif
