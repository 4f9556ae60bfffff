/* SPDX-License-Identifier: MIT */
/*
 * The rbd bdev's data path: requests to librbd, their completions handed back
 * to the reactor, timeouts and recall. The bdev itself (opening the image,
 * configuration, resize) is bdev_rbd.c.
 *
 * Writes go straight from the caller's iovecs to librbd (which copies them at
 * submission, see rbd_cluster.c). Reads go straight into the caller's iovecs
 * when the caller can fence them (io->mem, see "Timeouts" for why); other
 * reads and Compare read into a buffer the request owns, copied to the
 * caller's iovecs on the reactor once librbd has completed. librbd completes on
 * its own threads, so a completion is handed to the channel that submitted
 * it: the librbd thread pushes it on the channel's lock-free stack (a CAS
 * push; the reactor takes the whole stack with one exchange, so there is no
 * ABA) and, when the stack was empty, signals the channel's eventfd. poll()
 * runs the callbacks on the reactor thread. No lock is taken per I/O, and
 * the reactor never reads the eventfd (its sleeps wait for edges, see
 * channel_fd in bdev.h): no syscall on the reactor per completion.
 *
 * Timeouts, in two layers, and recall:
 *  1. librados fails operations after timeout_ms (rbd_cluster.c sets its op
 *     timeouts), so with a stalled cluster librbd itself completes the I/O
 *     with -ETIMEDOUT and is then done with the caller's memory. This is the
 *     path a stopped OSD takes.
 *  2. A backstop in poll(): an I/O librbd has not completed after twice
 *     timeout_ms is completed with -ETIMEDOUT anyway, so the controller never
 *     hangs on a librbd that does not honour (1). Its request struct becomes
 *     a zombie that waits for librbd's late completion, so the callback never
 *     touches freed memory. There is no cancel in the C API, so a read
 *     handed the caller's iovecs could write them long after the host saw
 *     the error and reused or unmapped the memory: before such a read is
 *     given up on, its pages are fenced (vnvme_bdev_mem: the late data lands
 *     in private memory), and the fence is lifted when librbd completes it.
 *     Reads the caller cannot fence use the request's own buffer. Writes are
 *     safe too: librbd copies their data at submission
 *     (rbd_disable_zero_copy_writes is forced on).
 *  3. Recall (ops.abort: controller reset, queue deletion, the client's
 *     memory unmapped, NVMe Abort) takes the same way out: the I/O completes
 *     with -ECANCELED at once and its request becomes a zombie. So a client
 *     that dies while the cluster stalls does not hold its reactor (the DMA
 *     unmap would otherwise wait 10 s, then fail the controller), and
 *     destroying a channel never waits for the cluster: its zombies are
 *     freed by librbd's threads.
 *
 * The read buffer costs one memcpy per read on the reactor (librbd itself
 * assembles a read from its message buffers into the destination): a few
 * percent of 128 KiB read throughput on a small machine (BENCHMARKS.md),
 * which is why fenceable reads skip it. Each request keeps its buffer for reuse, so
 * the memory held is the largest copied transfer (at most the controller's
 * MDTS) times the most requests that were ever in flight at once, recalled
 * ones included (at most RBD_MAX_RECALLED per channel); nothing is
 * allocated per I/O once warm.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "rbd_internal.h"

struct rbd_req;
struct req_list {
    struct rbd_req *head, *tail;
};

struct rbd_channel {
    struct rbd_bdev *r;
    /* Written by librbd threads. */
    _Atomic(struct rbd_req *) done; /* or ORPHANED once the channel is destroyed */
    _Atomic uint32_t in_callback; /* librbd threads inside done_cb (destroy waits for them) */
    _Atomic int64_t orphan_left;  /* an orphan's requests librbd still holds (see rbd_io_channel_destroy) */
    /* Reactor only. */
    int efd;
    struct req_list inflight; /* submission order: the head is the oldest */
    struct req_list zombies;  /* given up on, waiting for librbd */
    struct rbd_req *free_reqs;
    unsigned outstanding;     /* requests librbd owns (inflight + zombies) */
    unsigned nzombies;
};

struct rbd_req {
    struct rbd_channel *ch;
    struct vnvme_bdev_io *io; /* NULL for a zombie */
    rbd_completion_t comp;
    int64_t ret;
    uint64_t submit_ns;
    bool fua_flush; /* second stage of a FUA write on a cached image */
    bool is_flush;  /* this stage is an rbd_aio_flush (read by done_cb) */
    uint64_t flush_epoch; /* flush_errors when the flush was submitted */
    struct rbd_req *done_next;
    struct rbd_req *prev, *next;
    uint8_t *bounce;   /* READ without io->mem, and COMPARE: librbd reads here */
    size_t bounce_cap;
    bool direct;       /* READ into the caller's iovecs (io->mem) */
    /* A zombie's fence over the caller's pages it may still write, and how to end it. */
    void *fence;
    const struct vnvme_bdev_mem_ops *fence_ops;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The backstop's clock: it stamps every I/O and is read on every poll while
 * I/O is in flight, and it measures seconds. The coarse clock (the last tick,
 * a few milliseconds) is a plain read where the precise one costs a clock
 * source read; profiled on an RBD read run, the precise one was 14 % of the
 * reactor's time.
 */
static uint64_t coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- lists ---- */

static void list_append(struct req_list *l, struct rbd_req *q)
{
    q->next = NULL;
    q->prev = l->tail;
    if (l->tail)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
}

static void list_remove(struct req_list *l, struct rbd_req *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        l->head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        l->tail = q->prev;
    q->prev = q->next = NULL;
}

static struct rbd_req *req_get(struct rbd_channel *ch)
{
    struct rbd_req *q = ch->free_reqs;
    if (q)
        ch->free_reqs = q->next;
    else if (!(q = calloc(1, sizeof(*q))))
        return NULL;
    q->ch = ch;
    q->next = q->prev = NULL;
    q->fua_flush = false;
    q->direct = false;
    q->ret = 0;
    return q;
}

static void req_put(struct rbd_channel *ch, struct rbd_req *q)
{
    q->io = NULL;
    q->next = ch->free_reqs;
    ch->free_reqs = q;
}

static void req_free(struct rbd_req *q)
{
    free(q->bounce);
    free(q);
}

/* ---- librbd side ---- */

/* The done stack's value once its channel is destroyed: librbd's threads then free what they complete. */
static struct rbd_req orphaned_mark;
#define ORPHANED (&orphaned_mark)

static void free_channel(struct rbd_channel *ch)
{
    close(ch->efd);
    free(ch);
}

/* librbd has completed a zombie: its fence can go (lift only on the submitting thread). */
static void end_fence(struct rbd_req *q, bool lift)
{
    if (!q->fence)
        return;
    if (lift)
        q->fence_ops->lift(q->fence);
    else
        q->fence_ops->drop(q->fence);
    q->fence = NULL;
}

/* A request given up on that librbd has now completed, once its channel is destroyed. */
static void free_late_zombie(struct rbd_bdev *r, struct rbd_req *q, bool on_reactor)
{
    end_fence(q, on_reactor);
    rbd_aio_release(q->comp);
    req_free(q);
    atomic_fetch_add_explicit(&r->abandoned_done, 1, memory_order_relaxed);
}

/*
 * On a librbd thread: the late completion of a request whose channel is gone
 * (always one given up on: destroy recalls the rest). The last one frees the
 * channel, once the other callbacks have left it.
 */
static void orphan_done(struct rbd_channel *ch, struct rbd_req *q)
{
    struct rbd_bdev *r = ch->r;
    free_late_zombie(r, q, false);
    if (atomic_fetch_sub_explicit(&ch->orphan_left, 1, memory_order_acq_rel) != 1) {
        atomic_fetch_sub_explicit(&ch->in_callback, 1, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&ch->in_callback, memory_order_acquire) > 1)
        sched_yield();
    free_channel(ch);
    atomic_fetch_sub_explicit(&r->orphans, 1, memory_order_release); /* the last touch of r: see rbd_destroy */
}

/* On a librbd thread: hand the request to its channel. */
static void done_cb(rbd_completion_t c, void *arg)
{
    struct rbd_req *q = arg;
    struct rbd_channel *ch = q->ch;
    atomic_fetch_add_explicit(&ch->in_callback, 1, memory_order_seq_cst);
    q->ret = rbd_aio_get_return_value(c);
    if (q->is_flush && q->ret < 0)
        atomic_fetch_add_explicit(&ch->r->flush_errors, 1, memory_order_relaxed);
    struct rbd_req *head = atomic_load_explicit(&ch->done, memory_order_acquire);
    do {
        if (head == ORPHANED) {
            orphan_done(ch, q);
            return;
        }
        q->done_next = head;
    } while (!atomic_compare_exchange_weak_explicit(&ch->done, &head, q, memory_order_release, memory_order_acquire));
    /* The first push onto an empty stack wakes the reactor; later ones ride on that wakeup. */
    if (head == NULL) {
        uint64_t one = 1;
        if (write(ch->efd, &one, sizeof(one)) < 0) {
            /* EAGAIN only with the counter at 2^64 - 2 signals: it is readable anyway. */
        }
    }
    atomic_fetch_sub_explicit(&ch->in_callback, 1, memory_order_release);
}

static bool ensure_bounce(struct rbd_req *q, size_t n)
{
    if (q->bounce_cap >= n)
        return true;
    uint8_t *b = realloc(q->bounce, n);
    if (!b)
        return false;
    q->bounce = b;
    q->bounce_cap = n;
    return true;
}

/* Hand the request's current stage to librbd; -errno when librbd refused it. */
static int start(struct rbd_bdev *r, struct rbd_req *q)
{
    struct vnvme_bdev_io *io = q->io;
    uint64_t off = io->offset_blocks * r->bdev.block_size;
    uint64_t len = io->num_blocks * r->bdev.block_size;
    q->is_flush = q->fua_flush || io->op == VNVME_BDEV_FLUSH;
    if (q->is_flush)
        q->flush_epoch = atomic_load_explicit(&r->flush_errors, memory_order_relaxed);
    int rc = rbd_aio_create_completion(q, done_cb, &q->comp);
    if (rc < 0)
        return rc;
    if (q->fua_flush) {
        rc = rbd_aio_flush(r->image, q->comp);
        goto out;
    }
    switch (io->op) {
    case VNVME_BDEV_WRITE:
        rc = rbd_aio_writev(r->image, io->iov, io->iovcnt, off, q->comp);
        break;
    case VNVME_BDEV_FLUSH:
        rc = rbd_aio_flush(r->image, q->comp);
        break;
    case VNVME_BDEV_WRITE_ZEROES:
        rc = rbd_aio_write_zeroes(r->image, off, len, q->comp, 0, 0);
        break;
    case VNVME_BDEV_UNMAP:
        rc = rbd_aio_discard(r->image, off, len, q->comp);
        break;
    case VNVME_BDEV_READ:
        if (io->mem) {
            q->direct = true;
            rc = rbd_aio_readv(r->image, io->iov, io->iovcnt, off, q->comp);
            break;
        }
        /* fall through */
    case VNVME_BDEV_COMPARE:
        /* Compare is a plain read and memcmp: rbd_aio_compare_and_write would also write. */
        if (!ensure_bounce(q, len)) {
            rc = -ENOMEM;
            break;
        }
        rc = rbd_aio_read(r->image, off, len, (char *)q->bounce, q->comp);
        break;
    default:
        rc = -EINVAL;
        break;
    }
out:
    if (rc < 0)
        rbd_aio_release(q->comp);
    return rc < 0 ? rc : 0;
}

/* ---- reactor side ---- */

static int io_status(struct rbd_bdev *r, struct rbd_req *q)
{
    struct vnvme_bdev_io *io = q->io;
    if (q->ret < 0)
        return (int)q->ret;
    uint64_t len = io->num_blocks * r->bdev.block_size;
    if (q->is_flush)
        return atomic_load_explicit(&r->flush_errors, memory_order_relaxed) == q->flush_epoch ? 0 : -EIO;
    switch (io->op) {
    case VNVME_BDEV_READ:
        if ((uint64_t)q->ret != len)
            return -EIO;
        if (!q->direct)
            vnvme_bdev_io_copy_to(io, q->bounce);
        return 0;
    case VNVME_BDEV_COMPARE:
        return (uint64_t)q->ret == len ? vnvme_bdev_io_compare(io, q->bounce) : -EIO;
    default:
        return 0;
    }
}

/* Returns 1 when a caller's I/O finished. */
static int on_done(struct rbd_channel *ch, struct rbd_req *q)
{
    struct rbd_bdev *r = ch->r;
    rbd_aio_release(q->comp);
    ch->outstanding--;
    if (!q->io) {
        end_fence(q, true);
        list_remove(&ch->zombies, q);
        ch->nzombies--;
        req_put(ch, q);
        atomic_fetch_add_explicit(&r->abandoned_done, 1, memory_order_relaxed);
        return 0;
    }
    struct vnvme_bdev_io *io = q->io;
    int status = io_status(r, q);
    /* librbd has no per-write FUA: with its cache on, a FUA write is a write then a flush. */
    if (status == 0 && io->op == VNVME_BDEV_WRITE && io->fua && r->bdev.volatile_write_cache && !q->fua_flush) {
        q->fua_flush = true;
        status = start(r, q);
        if (status == 0) {
            ch->outstanding++;
            return 0;
        }
    }
    list_remove(&ch->inflight, q);
    req_put(ch, q);
    io->priv[1] = 0;
    io->cb(io, status);
    return 1;
}

static int drain(struct rbd_channel *ch)
{
    struct rbd_req *q = atomic_exchange_explicit(&ch->done, NULL, memory_order_acquire);
    /* The stack is newest first; complete in arrival order. */
    struct rbd_req *fifo = NULL;
    while (q) {
        struct rbd_req *next = q->done_next;
        q->done_next = fifo;
        fifo = q;
        q = next;
    }
    int completed = 0;
    while (fifo) {
        struct rbd_req *next = fifo->done_next;
        completed += on_done(ch, fifo);
        fifo = next;
    }
    return completed;
}

/*
 * Complete the caller's I/O now and leave its request to librbd as a zombie,
 * whatever librbd completes later then touches only the request, or pages
 * fenced from the caller (see "Timeouts"). False, with the I/O left as it
 * was, when its pages could not be fenced: then it must not be given up on.
 */
static bool abandon(struct rbd_channel *ch, struct rbd_req *q, int status)
{
    struct vnvme_bdev_io *io = q->io;
    if (q->direct) {
        q->fence = io->mem->ops->fence(io->mem, io->iov, io->iovcnt);
        if (!q->fence)
            return false;
        q->fence_ops = io->mem->ops;
        atomic_fetch_add_explicit(&ch->r->fenced, 1, memory_order_relaxed);
    }
    list_remove(&ch->inflight, q);
    q->io = NULL;
    list_append(&ch->zombies, q);
    ch->nzombies++;
    atomic_fetch_add_explicit(&ch->r->abandoned, 1, memory_order_relaxed);
    io->priv[1] = 0;
    io->cb(io, status);
    return true;
}

static int expire(struct rbd_channel *ch)
{
    struct rbd_bdev *r = ch->r;
    if (!ch->inflight.head)
        return 0;
    uint64_t now = coarse_ns();
    int n = 0;
    struct rbd_req *q;
    while ((q = ch->inflight.head) && now - q->submit_ns >= r->backstop_ns) {
        VNVME_WARN("rbd", "%s: I/O outstanding for %u ms, completing it with a timeout", r->bdev.name,
                   2 * r->timeout_ms);
        if (abandon(ch, q, -ETIMEDOUT)) {
            n++;
            continue;
        }
        /* Not safe to give up on yet: try again a backstop period later. */
        list_remove(&ch->inflight, q);
        q->submit_ns = now;
        list_append(&ch->inflight, q);
    }
    return n;
}

int rbd_io_poll(struct vnvme_bdev *b, void *ctx)
{
    (void)b;
    struct rbd_channel *ch = ctx;
    int n = 0;
    if (atomic_load_explicit(&ch->done, memory_order_relaxed))
        n = drain(ch);
    return n + expire(ch);
}

/* Marks an I/O as in flight on a channel: abort finds its request from the I/O alone. */
static uint64_t req_tag(const struct rbd_channel *ch, const struct rbd_req *q)
{
    return (uint64_t)(uintptr_t)q ^ (uint64_t)(uintptr_t)ch ^ 0x7262642d696f2121ull;
}

int rbd_io_submit(struct vnvme_bdev *b, void *ctx, struct vnvme_bdev_io *io)
{
    struct rbd_bdev *r = b->ctx;
    struct rbd_channel *ch = ctx;
    int rc = vnvme_bdev_io_check(b, io);
    if (rc < 0)
        return rc;
    if (!ch)
        return -ESHUTDOWN;
    struct rbd_req *q = req_get(ch);
    if (!q)
        return -ENOMEM;
    q->io = io;
    q->submit_ns = coarse_ns();
    io->priv[0] = (uintptr_t)q;
    io->priv[1] = req_tag(ch, q);
    /* Listed before librbd can complete it: the callback may run before start() returns. */
    list_append(&ch->inflight, q);
    ch->outstanding++;
    rc = start(r, q);
    if (rc < 0) {
        ch->outstanding--;
        list_remove(&ch->inflight, q);
        req_put(ch, q);
        return rc;
    }
    return 0;
}

/*
 * Recall (controller reset, queue deletion, memory unmapped, Abort): the I/O
 * completes now with -ECANCELED and librbd keeps its request, as with the
 * backstop. Recalled requests hold memory (a read's buffer) until librbd is
 * done with them, so past RBD_MAX_RECALLED per channel the caller waits for
 * librbd instead, as for a bdev that cannot recall.
 */
#define RBD_MAX_RECALLED 1024u

int rbd_io_abort(struct vnvme_bdev *b, void *ctx, struct vnvme_bdev_io *io)
{
    (void)b;
    struct rbd_channel *ch = ctx;
    struct rbd_req *q = (struct rbd_req *)(uintptr_t)io->priv[0];
    if (!ch || !q || io->priv[1] != req_tag(ch, q) || q->io != io)
        return -ENOENT;
    if (ch->nzombies >= RBD_MAX_RECALLED || !abandon(ch, q, -ECANCELED))
        return -ENOENT;
    return 0;
}

int rbd_io_channel_fd(struct vnvme_bdev *b, void *ctx)
{
    (void)b;
    return ((struct rbd_channel *)ctx)->efd;
}

int rbd_io_channel_create(struct vnvme_bdev *b, void **out)
{
    struct rbd_channel *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return -ENOMEM;
    ch->r = b->ctx;
    atomic_init(&ch->done, NULL);
    atomic_init(&ch->in_callback, 0);
    atomic_init(&ch->orphan_left, 0);
    ch->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ch->efd < 0) {
        int rc = -errno;
        free(ch);
        return rc;
    }
    *out = ch;
    return 0;
}

/*
 * Destroy never waits for the cluster: completions that arrived get their
 * status, I/Os librbd still holds are recalled (their callers see
 * -ECANCELED), and when librbd still holds requests the channel becomes an
 * orphan. Its done stack is swapped for ORPHANED in one exchange, so each
 * late completion either was on the stack taken here or finds the mark and
 * frees its request on librbd's thread (orphan_done). orphan_left counts
 * those: librbd's threads subtract one each, possibly before the count is
 * added here, so whoever brings it to zero is the last and frees the channel.
 */
void rbd_io_channel_destroy(struct vnvme_bdev *b, void *ctx)
{
    struct rbd_channel *ch = ctx;
    if (!ch)
        return;
    struct rbd_bdev *r = ch->r;
    drain(ch);
    while (ch->inflight.head) {
        if (!abandon(ch, ch->inflight.head, -ECANCELED)) {
            /* Its pages could not be fenced: librbd must be done with them first. */
            usleep(1000);
            drain(ch);
        }
    }
    while (ch->free_reqs) {
        struct rbd_req *q = ch->free_reqs;
        ch->free_reqs = q->next;
        req_free(q);
    }
    atomic_fetch_add_explicit(&r->orphans, 1, memory_order_relaxed);
    int64_t left = ch->outstanding;
    struct rbd_req *q = atomic_exchange_explicit(&ch->done, ORPHANED, memory_order_acq_rel);
    while (q) {
        struct rbd_req *next = q->done_next;
        free_late_zombie(r, q, true);
        left--;
        q = next;
    }
    if (atomic_fetch_add_explicit(&ch->orphan_left, left, memory_order_acq_rel) + left != 0) {
        VNVME_NOTICE("rbd", "%s: %lld recalled I/Os stay with librbd until it completes them", b->name,
                     (long long)left);
        return;
    }
    /* The last callbacks may still be between their push and their return. */
    while (atomic_load_explicit(&ch->in_callback, memory_order_acquire) > 0)
        sched_yield();
    free_channel(ch);
    atomic_fetch_sub_explicit(&r->orphans, 1, memory_order_release);
}

void rbd_io_wait_orphans(struct rbd_bdev *r)
{
    uint64_t warned = now_ns();
    while (atomic_load_explicit(&r->orphans, memory_order_acquire) > 0) {
        usleep(1000);
        if (now_ns() - warned > 10000000000ull) {
            warned = now_ns();
            VNVME_WARN("rbd", "%s/%s: waiting for librbd to complete recalled I/Os", r->pool_name, r->rbd_name);
        }
    }
}
