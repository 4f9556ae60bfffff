/* SPDX-License-Identifier: MIT */
/*
 * "malloc" bdev: data in RAM, in a memfd mapped shared. I/O completes inside
 * submit.
 *
 * Why a memfd and not anonymous memory: the data must outlive the process. A
 * live upgrade hands the bdev's fd (vnvme_bdev_malloc_fd) to the new binary,
 * which maps the same pages (vnvme_bdev_malloc_create_from_fd); anonymous
 * memory dies with the process that mapped it. The file is sealed against
 * shrinking: every holder maps all of it, and a truncate by one would make the
 * others' accesses fault (SIGBUS).
 *
 * The mapping is MAP_NORESERVE and the file starts sparse, so a large bdev
 * costs nothing until touched. Unlike anonymous memory, a read of a hole
 * costs memory too: a read fault on shmem allocates a zeroed page (a huge one
 * when huge pages are on) where anonymous memory would map the shared zero
 * page, so a client that scans a never-written bdev fills it.
 *
 * Huge pages: random 4 KiB copies over a large bdev miss the TLB on almost
 * every I/O with 4 KiB pages. Measured here (5 M random 4 KiB copies out of a
 * touched 4 GiB region, median of 3 runs): anonymous memory with THP 2.27 M
 * copies/s, memfd on 4 KiB pages 1.57 M/s, memfd on huge pages 2.30 M/s. The
 * kernel gives a shared memfd huge pages only when
 * /sys/kernel/mm/transparent_hugepage/shmem_enabled is "advise" (this mapping
 * asks with MADV_HUGEPAGE), "within_size" or "always"; Debian's default is
 * "never", which costs the difference above (BENCHMARKS.md). That setting is
 * the host administrator's: the bdev works the same either way.
 */
#include "vnvme/bdev.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/copy.h"
#include "common/log.h"

struct malloc_bdev {
    struct vnvme_bdev bdev;
    uint8_t *buf;
    size_t len;      /* the file's size: num_blocks * block_size */
    size_t map_len;  /* len rounded up to whole pages */
    size_t page_size;
    int fd;          /* the memfd, owned */
    bool punch_warned;
};

#define HUGE_ALIGN ((size_t)2 << 20) /* x86-64 PMD size: a huge page needs this alignment */

static struct malloc_bdev *to_malloc(const struct vnvme_bdev *b)
{
    return (struct malloc_bdev *)b->ctx;
}

/*
 * Written blocks are rarely read back at once, so they go out with streaming
 * stores (common/copy.h); the fence makes them visible before the completion
 * does, also to a reactor on another core sharing this bdev.
 */
static void copy_from_iov(const struct vnvme_bdev_io *io, uint8_t *dst)
{
    for (int i = 0; i < io->iovcnt; i++) {
        vnvme_copy_stream(dst, io->iov[i].iov_base, io->iov[i].iov_len);
        dst += io->iov[i].iov_len;
    }
    vnvme_copy_stream_fence();
}

/*
 * Whole pages are punched out of the file: the memory goes back to the kernel
 * and every mapping of the file (another process's too) reads zeroes there.
 * MADV_DONTNEED would not do: on a shared mapping it only drops this
 * process's page table entries, and the next access maps the same data
 * again. A hole inside a huge page works too (the kernel splits the page, or
 * zeroes the range when it cannot). The partial pages at the edges are
 * cleared by hand.
 */
static int zero_range(struct malloc_bdev *m, size_t off, size_t len)
{
    uintptr_t start = (uintptr_t)m->buf + off;
    uintptr_t end = start + len;
    uintptr_t page_start = (start + m->page_size - 1) & ~(uintptr_t)(m->page_size - 1);
    uintptr_t page_end = end & ~(uintptr_t)(m->page_size - 1);

    if (page_start >= page_end) {
        memset((void *)start, 0, len);
        return 0;
    }
    memset((void *)start, 0, page_start - start);
    memset((void *)page_end, 0, end - page_end);
    off_t file_off = (off_t)(page_start - (uintptr_t)m->buf);
    if (fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, file_off, (off_t)(page_end - page_start)) != 0) {
        /*
         * Not expected for a memfd (an adopted fd may be another kind of
         * file); zeroing by hand keeps the data right, only the memory stays
         * allocated. Said once per bdev: this is the I/O path.
         */
        if (!m->punch_warned) {
            VNVME_WARN("bdev", "%s: fallocate(PUNCH_HOLE): %s; zeroing in place", m->bdev.name, strerror(errno));
            m->punch_warned = true;
        }
        memset((void *)page_start, 0, page_end - page_start);
    }
    return 0;
}

static int malloc_submit(struct vnvme_bdev *b, void *ch_ctx, struct vnvme_bdev_io *io)
{
    (void)ch_ctx;
    int rc = vnvme_bdev_io_check(b, io);
    if (rc < 0)
        return rc;

    struct malloc_bdev *m = to_malloc(b);
    size_t off = (size_t)(io->offset_blocks * b->block_size);
    size_t len = (size_t)(io->num_blocks * b->block_size);
    int status = 0;

    switch (io->op) {
    case VNVME_BDEV_READ:
        vnvme_bdev_io_copy_to(io, m->buf + off);
        break;
    case VNVME_BDEV_WRITE:
        copy_from_iov(io, m->buf + off);
        break;
    case VNVME_BDEV_COMPARE:
        status = vnvme_bdev_io_compare(io, m->buf + off);
        break;
    case VNVME_BDEV_WRITE_ZEROES:
    case VNVME_BDEV_UNMAP:
        status = zero_range(m, off, len);
        break;
    case VNVME_BDEV_FLUSH:
        break; /* memory is as durable as it gets */
    }
    io->cb(io, status);
    return 0;
}

static void malloc_dump_json(struct vnvme_bdev *b, struct json_object *obj)
{
    struct json_object *o = json_object_new_object();
    if (!o)
        return;
    json_object_object_add(o, "size_bytes", json_object_new_uint64(to_malloc(b)->len));
    json_object_object_add(obj, "malloc", o);
}

static void malloc_destroy(struct vnvme_bdev *b)
{
    struct malloc_bdev *m = to_malloc(b);
    munmap(m->buf, m->map_len);
    close(m->fd);
    free(m);
}

static const struct vnvme_bdev_ops malloc_ops = {
    .type = "malloc",
    .product_name = "Malloc disk",
    .submit = malloc_submit,
    .dump_json = malloc_dump_json,
    .destroy = malloc_destroy,
};

/*
 * Map the file shared. Bdevs of at least one huge page get a mapping aligned
 * to one, so that file offset 0 starts a huge page: an anonymous reservation
 * with a huge page of slack, the file mapped over it at the aligned address,
 * the slack unmapped again. MADV_HUGEPAGE asks for huge pages; for shmem the
 * kernel honours it when shmem_enabled allows (see the top of the file).
 * Nothing is populated here: the pages come as they are touched.
 */
static int map_data(struct malloc_bdev *m, int fd)
{
    const int prot = PROT_READ | PROT_WRITE;
    const int flags = MAP_SHARED | MAP_NORESERVE;
    bool huge = m->map_len >= HUGE_ALIGN && m->map_len <= SIZE_MAX - HUGE_ALIGN;
    if (!huge) {
        uint8_t *p = mmap(NULL, m->map_len, prot, flags, fd, 0);
        if (p == MAP_FAILED)
            return -errno;
        m->buf = p;
        return 0;
    }
    size_t reserve = m->map_len + HUGE_ALIGN;
    uint8_t *r = mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED)
        return -errno;
    uint8_t *aligned = (uint8_t *)(((uintptr_t)r + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1));
    if (mmap(aligned, m->map_len, prot, flags | MAP_FIXED, fd, 0) == MAP_FAILED) {
        int rc = -errno;
        munmap(r, reserve);
        return rc;
    }
    size_t head = (size_t)(aligned - r);
    size_t tail = reserve - head - m->map_len;
    if (head)
        munmap(r, head);
    if (tail)
        munmap(aligned + m->map_len, tail);
    m->buf = aligned;
    /* Only a hint: without huge pages the bdev works the same on 4 KiB pages. */
    if (madvise(aligned, m->map_len, MADV_HUGEPAGE) != 0)
        VNVME_DEBUG("bdev", "%s: MADV_HUGEPAGE: %s", m->bdev.name, strerror(errno));
    return 0;
}

/* A new sparse memfd of m->len bytes (reads as zeroes), sealed against shrinking. */
static int new_memfd(struct malloc_bdev *m)
{
    char fdname[sizeof("vnvme-malloc:") + sizeof(m->bdev.name)];
    snprintf(fdname, sizeof(fdname), "vnvme-malloc:%s", m->bdev.name);
    int fd = memfd_create(fdname, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)m->len) != 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* An adopted fd must hold exactly the bdev's bytes: a shorter file would fault past its end. */
static int check_adopted_fd(struct malloc_bdev *m, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        VNVME_ERR("bdev", "malloc %s: fd %d: fstat: %s", m->bdev.name, fd, strerror(-rc));
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        VNVME_ERR("bdev", "malloc %s: fd %d is not a regular file (a memfd is expected)", m->bdev.name, fd);
        return -EINVAL;
    }
    if ((uint64_t)st.st_size != (uint64_t)m->len) {
        VNVME_ERR("bdev", "malloc %s: fd %d holds %lld bytes, the bdev needs %zu (%llu blocks of %u)", m->bdev.name,
                  fd, (long long)st.st_size, m->len, (unsigned long long)m->bdev.num_blocks, m->bdev.block_size);
        return -EINVAL;
    }
    /* The file is usually sealed already (new_memfd); one that cannot be sealed is used as it is. */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) != 0)
        VNVME_DEBUG("bdev", "malloc %s: fd %d: F_SEAL_SHRINK: %s", m->bdev.name, fd, strerror(errno));
    return 0;
}

/* fd < 0: a new memfd. Otherwise fd is adopted on success and left to the caller on failure. */
static int malloc_create(const char *name, uint64_t num_blocks, uint32_t block_size, const uint8_t *uuid, int fd,
                         struct vnvme_bdev **out)
{
    struct malloc_bdev *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    bool own_fd = false;
    int rc = vnvme_bdev_init(&m->bdev, name, block_size, num_blocks, uuid);
    if (rc < 0)
        goto fail;
    long ps = sysconf(_SC_PAGESIZE);
    m->page_size = ps > 0 ? (size_t)ps : 4096;
    if (num_blocks > (SIZE_MAX - m->page_size) / block_size || num_blocks * block_size > (uint64_t)INT64_MAX) {
        rc = -EINVAL;
        goto fail;
    }
    if (vnvme_bdev_get(name)) {
        rc = -EEXIST;
        goto fail;
    }
    m->len = (size_t)(num_blocks * block_size);
    m->map_len = (m->len + m->page_size - 1) & ~(m->page_size - 1);
    if (fd < 0) {
        fd = new_memfd(m);
        if (fd < 0) {
            rc = fd;
            goto fail;
        }
        own_fd = true;
    } else {
        rc = check_adopted_fd(m, fd);
        if (rc < 0)
            goto fail;
    }
    rc = map_data(m, fd);
    if (rc < 0) {
        VNVME_ERR("bdev", "malloc %s: mmap of %zu bytes: %s", name, m->len, strerror(-rc));
        goto fail;
    }
    m->fd = fd;
    m->bdev.ops = &malloc_ops;
    m->bdev.ctx = m;
    m->bdev.volatile_write_cache = false;
    m->bdev.supports_unmap = true;
    m->bdev.supports_write_zeroes = true;
    rc = vnvme_bdev_register(&m->bdev);
    if (rc < 0)
        goto fail;
    VNVME_INFO("bdev", "malloc %s: %llu blocks of %u%s", name, (unsigned long long)num_blocks, block_size,
               own_fd ? "" : " (adopted fd)");
    if (out)
        *out = &m->bdev;
    return 0;

fail:
    if (m->buf)
        munmap(m->buf, m->map_len);
    if (own_fd)
        close(fd);
    free(m);
    return rc;
}

int vnvme_bdev_malloc_create(const char *name, uint64_t num_blocks, uint32_t block_size, const uint8_t *uuid,
                             struct vnvme_bdev **out)
{
    return malloc_create(name, num_blocks, block_size, uuid, -1, out);
}

int vnvme_bdev_malloc_create_from_fd(const char *name, uint64_t num_blocks, uint32_t block_size, const uint8_t *uuid,
                                     int fd, struct vnvme_bdev **out)
{
    if (fd < 0)
        return -EBADF;
    return malloc_create(name, num_blocks, block_size, uuid, fd, out);
}

int vnvme_bdev_malloc_fd(const struct vnvme_bdev *b)
{
    if (!b || !b->ops || !b->ops->type || strcmp(b->ops->type, malloc_ops.type) != 0)
        return -1;
    return to_malloc(b)->fd;
}
