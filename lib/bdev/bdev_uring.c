/* SPDX-License-Identifier: MIT */
/*
 * "uring" bdev: a file or block device driven through one io_uring per
 * channel. submit only prepares SQEs; poll submits everything prepared since
 * the last poll in one io_uring_enter, reaps CQEs and finishes I/Os, so a
 * reactor round costs one syscall however many I/Os it started.
 *
 * Two fds: O_DIRECT when the file allows it, plus a buffered one for requests
 * whose buffers do not meet O_DIRECT alignment (guest PRP pages may start at
 * any dword). Linux keeps the page cache coherent with direct I/O on the same
 * inode, and fsync/fallocate act on the inode, so mixing is safe.
 */
#include "vnvme/bdev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <json-c/json.h>
#include <liburing.h>

#include "common/log.h"

#define URING_ENTRIES 256
#define BOUNCE_SIZE (1u << 20)
#define CQE_BATCH 64

/* Per-I/O state in io->priv while in flight. */
#define IO_DONE(io) ((io)->priv[0]) /* bytes transferred (or compared) so far */
#define IO_FLAGS(io) ((io)->priv[1])
enum {
    IO_USED_DIRECT = 1,    /* last SQE went to the O_DIRECT fd */
    IO_FORCE_BUFFERED = 2, /* O_DIRECT refused it: stay buffered */
    IO_ALT_MODE = 4,       /* zeroing: the fallback fallocate mode */
};

struct uring_bdev {
    struct vnvme_bdev bdev;
    char *filename;
    int fd;        /* buffered; always open */
    int fd_direct; /* O_DIRECT or -1 */
    bool is_blockdev;
    uint32_t dio_mem_align;
    uint32_t dio_off_align;
    /* Learned from EOPNOTSUPP, shared by all channels: a stale read costs one retry. */
    bool no_zero_range;
    bool no_punch_hole;
};

struct io_list {
    struct vnvme_bdev_io *head, *tail;
};

struct uring_channel {
    struct uring_bdev *u;
    struct io_uring ring;
    int efd;
    unsigned entries;
    unsigned outstanding;      /* SQEs prepared or in flight; kept <= entries so the CQ never overflows */
    struct io_list overflow;   /* waiting for a ring slot */
    struct io_list bounce_wait; /* compares waiting for the bounce buffer */
    uint8_t *bounce;
    struct vnvme_bdev_io *bounce_owner;
    bool closing;
};

static void list_append(struct io_list *l, struct vnvme_bdev_io *io)
{
    io->next = NULL;
    if (l->tail)
        l->tail->next = io;
    else
        l->head = io;
    l->tail = io;
}

static struct vnvme_bdev_io *list_pop(struct io_list *l)
{
    struct vnvme_bdev_io *io = l->head;
    if (io) {
        l->head = io->next;
        if (!l->head)
            l->tail = NULL;
        io->next = NULL;
    }
    return io;
}

static uint64_t io_bytes(const struct uring_bdev *u, const struct vnvme_bdev_io *io)
{
    return io->num_blocks * u->bdev.block_size;
}

static uint64_t io_file_offset(const struct uring_bdev *u, const struct vnvme_bdev_io *io)
{
    return io->offset_blocks * u->bdev.block_size;
}

static bool aligned(uint64_t v, uint32_t align)
{
    return (v & (align - 1)) == 0;
}

static int pick_fd_iov(const struct uring_bdev *u, struct vnvme_bdev_io *io, int idx, size_t inner, uint64_t off)
{
    IO_FLAGS(io) &= ~(uint64_t)IO_USED_DIRECT;
    if (u->fd_direct < 0 || (IO_FLAGS(io) & IO_FORCE_BUFFERED) || !aligned(off, u->dio_off_align))
        return u->fd;
    for (int i = idx; i < io->iovcnt; i++) {
        uintptr_t base = (uintptr_t)io->iov[i].iov_base + (i == idx ? inner : 0);
        size_t len = io->iov[i].iov_len - (i == idx ? inner : 0);
        if (!aligned(base, u->dio_mem_align) || !aligned(len, u->dio_off_align))
            return u->fd;
    }
    IO_FLAGS(io) |= IO_USED_DIRECT;
    return u->fd_direct;
}

static int pick_fd_bounce(const struct uring_bdev *u, struct vnvme_bdev_io *io, uint64_t off, uint32_t len)
{
    IO_FLAGS(io) &= ~(uint64_t)IO_USED_DIRECT;
    if (u->fd_direct < 0 || (IO_FLAGS(io) & IO_FORCE_BUFFERED) || !aligned(off, u->dio_off_align) ||
        !aligned(len, u->dio_off_align))
        return u->fd;
    IO_FLAGS(io) |= IO_USED_DIRECT;
    return u->fd_direct;
}

static int zero_mode(const struct vnvme_bdev_io *io)
{
    bool alt = IO_FLAGS(io) & IO_ALT_MODE;
    bool punch = (io->op == VNVME_BDEV_UNMAP) != alt;
    return punch ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE;
}

static void prep_rw(struct uring_channel *ch, struct vnvme_bdev_io *io, struct io_uring_sqe *sqe)
{
    struct uring_bdev *u = ch->u;
    uint64_t done = IO_DONE(io);
    uint64_t off = io_file_offset(u, io) + done;
    int idx = 0;
    size_t inner = (size_t)done;
    while (idx < io->iovcnt && inner >= io->iov[idx].iov_len) {
        inner -= io->iov[idx].iov_len;
        idx++;
    }
    int fd = pick_fd_iov(u, io, idx, inner, off);
    const struct iovec *v = &io->iov[idx];
    bool write = io->op == VNVME_BDEV_WRITE;

    if (inner == 0) {
        if (write)
            io_uring_prep_writev(sqe, fd, v, (unsigned)(io->iovcnt - idx), off);
        else
            io_uring_prep_readv(sqe, fd, v, (unsigned)(io->iovcnt - idx), off);
    } else {
        /* The rest of a partly done element: no iovec needed, so nothing to keep alive. */
        uint8_t *p = (uint8_t *)v->iov_base + inner;
        unsigned len = (unsigned)(v->iov_len - inner);
        if (write)
            io_uring_prep_write(sqe, fd, p, len, off);
        else
            io_uring_prep_read(sqe, fd, p, len, off);
    }
    if (write && io->fua)
        sqe->rw_flags = RWF_DSYNC;
}

static void prep(struct uring_channel *ch, struct vnvme_bdev_io *io, struct io_uring_sqe *sqe)
{
    struct uring_bdev *u = ch->u;
    switch (io->op) {
    case VNVME_BDEV_READ:
    case VNVME_BDEV_WRITE:
        prep_rw(ch, io, sqe);
        break;
    case VNVME_BDEV_COMPARE: {
        uint64_t left = io_bytes(u, io) - IO_DONE(io);
        uint32_t chunk = left < BOUNCE_SIZE ? (uint32_t)left : BOUNCE_SIZE;
        uint64_t off = io_file_offset(u, io) + IO_DONE(io);
        io_uring_prep_read(sqe, pick_fd_bounce(u, io, off, chunk), ch->bounce, chunk, off);
        break;
    }
    case VNVME_BDEV_FLUSH:
        io_uring_prep_fsync(sqe, u->fd, IORING_FSYNC_DATASYNC);
        break;
    case VNVME_BDEV_WRITE_ZEROES:
    case VNVME_BDEV_UNMAP:
        io_uring_prep_fallocate(sqe, u->fd, zero_mode(io), (off_t)io_file_offset(u, io), (off_t)io_bytes(u, io));
        break;
    }
    io_uring_sqe_set_data(sqe, io);
}

static bool try_prep(struct uring_channel *ch, struct vnvme_bdev_io *io)
{
    if (ch->outstanding >= ch->entries)
        return false;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ch->ring);
    if (!sqe)
        return false;
    prep(ch, io, sqe);
    ch->outstanding++;
    return true;
}

/* Never fails: without a ring slot the I/O waits its turn in the overflow list. */
static void issue(struct uring_channel *ch, struct vnvme_bdev_io *io)
{
    if (ch->overflow.head || !try_prep(ch, io))
        list_append(&ch->overflow, io);
}

static void drain_overflow(struct uring_channel *ch)
{
    while (ch->overflow.head && try_prep(ch, ch->overflow.head))
        list_pop(&ch->overflow);
}

static int finish(struct uring_channel *ch, struct vnvme_bdev_io *io, int status)
{
    if (io->op == VNVME_BDEV_COMPARE && ch->bounce_owner == io) {
        ch->bounce_owner = NULL;
        if (!ch->closing) {
            struct vnvme_bdev_io *next = list_pop(&ch->bounce_wait);
            if (next) {
                ch->bounce_owner = next;
                issue(ch, next);
            }
        }
    }
    io->cb(io, status);
    return 1;
}

static int reissue(struct uring_channel *ch, struct vnvme_bdev_io *io)
{
    if (ch->closing)
        return finish(ch, io, -ECANCELED);
    issue(ch, io);
    return 0;
}

static int compare_chunk(const struct vnvme_bdev_io *io, uint64_t pos, const uint8_t *data, size_t len)
{
    int i = 0;
    while (i < io->iovcnt && pos >= io->iov[i].iov_len) {
        pos -= io->iov[i].iov_len;
        i++;
    }
    while (len > 0 && i < io->iovcnt) {
        size_t n = io->iov[i].iov_len - (size_t)pos;
        if (n > len)
            n = len;
        if (memcmp((const uint8_t *)io->iov[i].iov_base + pos, data, n) != 0)
            return -EILSEQ;
        data += n;
        len -= n;
        pos = 0;
        i++;
    }
    return 0;
}

/* Returns 1 when the I/O finished (cb called), 0 when more work was queued. */
static int on_cqe(struct uring_channel *ch, struct vnvme_bdev_io *io, int res)
{
    struct uring_bdev *u = ch->u;
    ch->outstanding--;

    switch (io->op) {
    case VNVME_BDEV_FLUSH:
        return finish(ch, io, res < 0 ? res : 0);

    case VNVME_BDEV_WRITE_ZEROES:
    case VNVME_BDEV_UNMAP:
        if ((res == -EOPNOTSUPP || res == -EINVAL) && !(IO_FLAGS(io) & IO_ALT_MODE)) {
            bool *learned = zero_mode(io) == FALLOC_FL_ZERO_RANGE ? &u->no_zero_range : &u->no_punch_hole;
            __atomic_store_n(learned, true, __ATOMIC_RELAXED);
            IO_FLAGS(io) |= IO_ALT_MODE;
            return reissue(ch, io);
        }
        return finish(ch, io, res < 0 ? res : 0);

    case VNVME_BDEV_READ:
    case VNVME_BDEV_WRITE:
    case VNVME_BDEV_COMPARE:
        break;
    }

    if (res == -EINVAL && (IO_FLAGS(io) & IO_USED_DIRECT)) {
        IO_FLAGS(io) |= IO_FORCE_BUFFERED;
        return reissue(ch, io);
    }
    if (res == -EAGAIN || res == -EINTR)
        return reissue(ch, io);
    if (res < 0)
        return finish(ch, io, res);
    if (res == 0)
        return finish(ch, io, -EIO); /* the file shrank under us */

    if (io->op == VNVME_BDEV_COMPARE && compare_chunk(io, IO_DONE(io), ch->bounce, (size_t)res) != 0)
        return finish(ch, io, -EILSEQ);
    IO_DONE(io) += (uint64_t)res;
    if (IO_DONE(io) >= io_bytes(u, io))
        return finish(ch, io, 0);
    return reissue(ch, io); /* short transfer: the rest */
}

static int reap(struct uring_channel *ch)
{
    int completed = 0;
    for (;;) {
        struct io_uring_cqe *cqes[CQE_BATCH];
        unsigned n = io_uring_peek_batch_cqe(&ch->ring, cqes, CQE_BATCH);
        if (n == 0)
            break;
        struct {
            struct vnvme_bdev_io *io;
            int res;
        } got[CQE_BATCH];
        for (unsigned i = 0; i < n; i++) {
            got[i].io = io_uring_cqe_get_data(cqes[i]);
            got[i].res = cqes[i]->res;
        }
        /* Release the CQ slots before callbacks run: they may queue more work. */
        io_uring_cq_advance(&ch->ring, n);
        for (unsigned i = 0; i < n; i++)
            completed += on_cqe(ch, got[i].io, got[i].res);
    }
    return completed;
}

static void submit_prepared(struct uring_channel *ch)
{
    if (io_uring_sq_ready(&ch->ring) == 0)
        return;
    int rc = io_uring_submit(&ch->ring);
    /* Unsubmitted SQEs stay in the ring and go with the next poll. */
    if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -EINTR)
        VNVME_ERR("bdev", "%s: io_uring_submit: %s", ch->u->bdev.name, strerror(-rc));
}

static int uring_poll(struct vnvme_bdev *b, void *ctx)
{
    (void)b;
    struct uring_channel *ch = ctx;

    /* The kernel signals the eventfd for every CQE; it is never read (see channel_fd in bdev.h). */
    int completed = reap(ch);
    drain_overflow(ch);
    submit_prepared(ch);
    return completed;
}

static int uring_submit(struct vnvme_bdev *b, void *ctx, struct vnvme_bdev_io *io)
{
    struct uring_bdev *u = (struct uring_bdev *)b->ctx;
    struct uring_channel *ch = ctx;
    int rc = vnvme_bdev_io_check(b, io);
    if (rc < 0)
        return rc;
    if (!ch || ch->closing)
        return -ESHUTDOWN;

    IO_DONE(io) = 0;
    IO_FLAGS(io) = 0;
    io->next = NULL;
    if ((io->op == VNVME_BDEV_WRITE_ZEROES && __atomic_load_n(&u->no_zero_range, __ATOMIC_RELAXED)) ||
        (io->op == VNVME_BDEV_UNMAP && __atomic_load_n(&u->no_punch_hole, __ATOMIC_RELAXED)))
        IO_FLAGS(io) |= IO_ALT_MODE;

    if (io->op == VNVME_BDEV_COMPARE) {
        /* One bounce buffer per channel: later compares queue instead of failing. */
        if (ch->bounce_owner) {
            list_append(&ch->bounce_wait, io);
            return 0;
        }
        ch->bounce_owner = io;
    }
    issue(ch, io);
    return 0;
}

static int uring_channel_fd(struct vnvme_bdev *b, void *ctx)
{
    (void)b;
    return ((struct uring_channel *)ctx)->efd;
}

static int uring_channel_create(struct vnvme_bdev *b, void **out)
{
    struct uring_channel *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return -ENOMEM;
    ch->u = (struct uring_bdev *)b->ctx;
    ch->efd = -1;
    ch->entries = URING_ENTRIES;

    int rc = posix_memalign((void **)&ch->bounce, 4096, BOUNCE_SIZE);
    if (rc != 0) {
        ch->bounce = NULL;
        rc = -rc;
        goto fail;
    }
    /* SUBMIT_ALL: one bad SQE must not hold back the rest of the batch (older kernels lack it). */
    rc = io_uring_queue_init(URING_ENTRIES, &ch->ring, IORING_SETUP_SUBMIT_ALL);
    if (rc == -EINVAL)
        rc = io_uring_queue_init(URING_ENTRIES, &ch->ring, 0);
    if (rc < 0)
        goto fail;
    ch->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ch->efd < 0) {
        rc = -errno;
        goto fail_ring;
    }
    rc = io_uring_register_eventfd(&ch->ring, ch->efd);
    if (rc < 0)
        goto fail_ring;
    *out = ch;
    return 0;

fail_ring:
    io_uring_queue_exit(&ch->ring);
fail:
    if (ch->efd >= 0)
        close(ch->efd);
    free(ch->bounce);
    free(ch);
    return rc;
}

/* In-flight I/O targets caller memory, so the ring cannot go before the kernel is done with it. */
static void uring_channel_destroy(struct vnvme_bdev *b, void *ctx)
{
    (void)b;
    struct uring_channel *ch = ctx;
    if (!ch)
        return;
    ch->closing = true;
    struct vnvme_bdev_io *io;
    while ((io = list_pop(&ch->bounce_wait)))
        finish(ch, io, -ECANCELED);
    while ((io = list_pop(&ch->overflow)))
        finish(ch, io, -ECANCELED);
    while (ch->outstanding > 0) {
        int rc = io_uring_submit_and_wait(&ch->ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            VNVME_ERR("bdev", "%s: draining channel: %s", ch->u->bdev.name, strerror(-rc));
            break;
        }
        reap(ch);
    }
    io_uring_queue_exit(&ch->ring);
    close(ch->efd);
    free(ch->bounce);
    free(ch);
}

static void uring_dump_json(struct vnvme_bdev *b, struct json_object *obj)
{
    struct uring_bdev *u = (struct uring_bdev *)b->ctx;
    struct json_object *o = json_object_new_object();
    if (!o)
        return;
    json_object_object_add(o, "filename", json_object_new_string(u->filename));
    json_object_object_add(o, "direct_io", json_object_new_boolean(u->fd_direct >= 0));
    json_object_object_add(o, "block_device", json_object_new_boolean(u->is_blockdev));
    if (u->fd_direct >= 0) {
        json_object_object_add(o, "dio_mem_align", json_object_new_int64(u->dio_mem_align));
        json_object_object_add(o, "dio_offset_align", json_object_new_int64(u->dio_off_align));
    }
    json_object_object_add(obj, "uring", o);
}

static void uring_destroy(struct vnvme_bdev *b)
{
    struct uring_bdev *u = (struct uring_bdev *)b->ctx;
    if (u->fd_direct >= 0)
        close(u->fd_direct);
    close(u->fd);
    free(u->filename);
    free(u);
}

static const struct vnvme_bdev_ops uring_ops = {
    .type = "uring",
    .product_name = "URING bdev",
    .channel_create = uring_channel_create,
    .channel_destroy = uring_channel_destroy,
    .submit = uring_submit,
    .poll = uring_poll,
    .channel_fd = uring_channel_fd,
    .dump_json = uring_dump_json,
    .destroy = uring_destroy,
};

/* An O_DIRECT read with buffer, offset and length aligned to exactly `align`. */
static bool direct_read_works(int fd, uint32_t align, uint64_t size)
{
    uint8_t *buf;
    if (posix_memalign((void **)&buf, 2 * (size_t)align, 2 * (size_t)align) != 0)
        return false;
    off_t off = size >= 2 * (uint64_t)align ? (off_t)align : 0;
    ssize_t n = pread(fd, buf + align, align, off);
    free(buf);
    return n >= 0;
}

/* Alignment O_DIRECT needs: what statx says, else the smallest that a probe read accepts. */
static bool find_direct_alignment(struct uring_bdev *u, uint32_t logical, uint64_t size)
{
    struct statx stx;
    uint32_t mem = 0, off = 0;
    if (statx(u->fd_direct, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN) &&
        stx.stx_dio_mem_align && stx.stx_dio_offset_align) {
        mem = stx.stx_dio_mem_align;
        off = stx.stx_dio_offset_align;
    }
    if (off == 0 && u->is_blockdev) {
        mem = off = logical;
    }
    if (off == 0) {
        for (uint32_t a = 512; a <= 4096 && off == 0; a *= 2)
            if (direct_read_works(u->fd_direct, a, size))
                mem = off = a;
    }
    if (off == 0 || off > u->bdev.block_size || (off & (off - 1)) || (mem & (mem - 1)))
        return false;
    if (!direct_read_works(u->fd_direct, off > mem ? off : mem, size))
        return false;
    u->dio_mem_align = mem;
    u->dio_off_align = off;
    return true;
}

/* O_DIRECT on a device that writes through needs no FLUSH; everything else may cache. */
static bool device_has_write_cache(dev_t rdev)
{
    const char *fmts[] = {"/sys/dev/block/%u:%u/queue/write_cache", "/sys/dev/block/%u:%u/../queue/write_cache"};
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        char path[128], val[32] = "";
        snprintf(path, sizeof(path), fmts[i], major(rdev), minor(rdev));
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        bool ok = fgets(val, sizeof(val), f) != NULL;
        fclose(f);
        if (ok)
            return strncmp(val, "write through", 13) != 0;
    }
    return true;
}

int vnvme_bdev_uring_create(const char *name, const char *filename, uint32_t block_size, const uint8_t *uuid,
                            struct vnvme_bdev **out)
{
    if (!name || !filename)
        return -EINVAL;
    if (vnvme_bdev_get(name))
        return -EEXIST;
    struct uring_bdev *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->fd = -1;
    u->fd_direct = -1;
    int rc;
    u->filename = strdup(filename);
    if (!u->filename) {
        rc = -ENOMEM;
        goto fail;
    }
    u->fd = open(filename, O_RDWR | O_CLOEXEC);
    if (u->fd < 0) {
        rc = -errno;
        goto fail;
    }

    struct stat st;
    if (fstat(u->fd, &st) != 0) {
        rc = -errno;
        goto fail;
    }
    uint64_t size;
    uint32_t logical = 512;
    if (S_ISBLK(st.st_mode)) {
        int lbs = 0;
        if (ioctl(u->fd, BLKSSZGET, &lbs) != 0 || ioctl(u->fd, BLKGETSIZE64, &size) != 0) {
            rc = -errno;
            goto fail;
        }
        u->is_blockdev = true;
        logical = (uint32_t)lbs;
    } else if (S_ISREG(st.st_mode)) {
        size = (uint64_t)st.st_size;
    } else {
        rc = -ENODEV;
        goto fail;
    }
    if (block_size == 0)
        block_size = logical;
    if (block_size < logical || (block_size & (block_size - 1)) != 0) {
        rc = -EINVAL;
        goto fail;
    }
    rc = vnvme_bdev_init(&u->bdev, name, block_size, size / block_size, uuid);
    if (rc < 0)
        goto fail;

    u->fd_direct = open(filename, O_RDWR | O_DIRECT | O_CLOEXEC);
    if (u->fd_direct >= 0 && !find_direct_alignment(u, logical, size)) {
        close(u->fd_direct);
        u->fd_direct = -1;
    }
    u->bdev.volatile_write_cache = u->fd_direct >= 0 && u->is_blockdev ? device_has_write_cache(st.st_rdev) : true;
    u->bdev.ops = &uring_ops;
    u->bdev.ctx = u;
    u->bdev.supports_unmap = true;
    u->bdev.supports_write_zeroes = true;
    rc = vnvme_bdev_register(&u->bdev);
    if (rc < 0)
        goto fail;
    VNVME_INFO("bdev", "uring %s: %s, %llu blocks of %u, %s", name, filename, (unsigned long long)u->bdev.num_blocks,
               block_size, u->fd_direct >= 0 ? "O_DIRECT" : "buffered");
    if (out)
        *out = &u->bdev;
    return 0;

fail:
    if (u->fd_direct >= 0)
        close(u->fd_direct);
    if (u->fd >= 0)
        close(u->fd);
    free(u->filename);
    free(u);
    return rc;
}
