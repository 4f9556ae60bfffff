/* SPDX-License-Identifier: MIT */
/*
 * Block devices behind namespaces. A bdev is a small ops table plus a few
 * facts (name, block size, block count); the target never knows which kind it
 * holds. I/O goes through a channel: one per thread that submits, so a bdev
 * that needs per-thread state (an io_uring) has it without locks.
 *
 * An I/O is described by a caller-owned struct vnvme_bdev_io (the target
 * embeds one in each preallocated request), so submitting allocates nothing.
 * Data moves directly between the bdev and the caller's iovecs, which for the
 * target point into the client's memory (zero copy).
 */
#ifndef VNVME_BDEV_H
#define VNVME_BDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct json_object;
struct vnvme_bdev;
struct vnvme_bdev_channel;
struct vnvme_bdev_io;
struct vnvme_bdev_mem;

enum vnvme_bdev_op {
    VNVME_BDEV_READ,
    VNVME_BDEV_WRITE,
    VNVME_BDEV_FLUSH,
    VNVME_BDEV_WRITE_ZEROES,
    VNVME_BDEV_UNMAP,   /* deallocate: later reads return zeroes */
    VNVME_BDEV_COMPARE, /* status -EILSEQ when the data differs */
};

/*
 * Completion: status 0, or a negative errno: -EIO media error, -EILSEQ compare
 * miscompare, -ETIMEDOUT, -ENOSPC, -EINVAL... The target maps it to an NVMe
 * status. May be called from inside submit (synchronous bdevs) or later from
 * vnvme_bdev_channel_poll() on the submitting thread.
 */
typedef void (*vnvme_bdev_io_cb)(struct vnvme_bdev_io *io, int status);

/*
 * Caller memory that can be taken back from an I/O. A bdev built on a library
 * without cancel (librbd) may give up on an I/O (timeout, recall) while the
 * library still holds its buffers; a READ would then write memory the caller
 * already reused. When the caller sets io->mem, the READ's iovecs cover whole
 * pages that fence() can swap for private memory: late writes land there. The
 * bdev keeps the fence until the library is done with the buffers, then lifts
 * it on the submitting thread (the pages are the caller's again), or drops it
 * from any other thread (the caller lifts it later on its own thread).
 * Without io->mem such a bdev must not hand the caller's buffers to the library.
 */
struct vnvme_bdev_mem_ops {
    /* A fence over the iovecs, or NULL (then the I/O must not be given up on). */
    void *(*fence)(const struct vnvme_bdev_mem *mem, const struct iovec *iov, int iovcnt);
    void (*lift)(void *fence);
    void (*drop)(void *fence);
};

struct vnvme_bdev_mem {
    const struct vnvme_bdev_mem_ops *ops; /* static: outlives every fence */
};

struct vnvme_bdev_io {
    enum vnvme_bdev_op op;
    uint64_t offset_blocks;
    uint64_t num_blocks;
    struct iovec *iov; /* READ/WRITE/COMPARE data, iovcnt entries, num_blocks * block_size bytes */
    int iovcnt;
    bool fua;          /* WRITE: durable before completion */
    const struct vnvme_bdev_mem *mem; /* READ: iovecs that can be fenced (see above), or NULL */
    vnvme_bdev_io_cb cb;
    void *cb_arg;
    /* Owned by the bdev while the I/O is in flight. */
    struct vnvme_bdev_io *next;
    uint64_t priv[4];
    /*
     * Owned by bdev_stat.c while the I/O is in flight: what its counting
     * wrapper replaced, one level per bdev the I/O passes through (a delay
     * bdev hands the same I/O to its base).
     */
    struct vnvme_bdev_io_stat_level {
        vnvme_bdev_io_cb cb;
        void *cb_arg;
        struct vnvme_bdev_chan_stat *cs;
        uint64_t start_ticks;
    } stat_level[2];
    uint8_t stat_depth;
    uint64_t qos_turn; /* bdev_qos.c: when the I/O, waiting for its rate limit, may go (ticks) */
};

struct vnvme_bdev_ops {
    const char *type; /* "malloc", "null", "uring", ... (as in bdev_get_bdevs' product_name) */
    /* Per-thread context; NULL ctx allowed for bdevs that need none. */
    int (*channel_create)(struct vnvme_bdev *b, void **ch_ctx);
    void (*channel_destroy)(struct vnvme_bdev *b, void *ch_ctx);
    /* Start an I/O. Returns 0 (cb will be called exactly once) or -errno (cb never called). */
    int (*submit)(struct vnvme_bdev *b, void *ch_ctx, struct vnvme_bdev_io *io);
    /* Reap completions; returns how many completed. */
    int (*poll)(struct vnvme_bdev *b, void *ch_ctx);
    /*
     * For reactors that sleep: an fd that is signalled each time poll gets
     * work, or -1. Signals are edges: wait for them edge-triggered (EPOLLET)
     * and leave the fd alone. The bdev never clears it, so the fd may stay
     * readable while there is nothing to poll: a signal can land after the
     * poll that took its work (librbd's thread may be preempted between the
     * two), and a level-triggered sleeper would then never sleep again.
     * Such a late signal costs an edge-triggered sleeper one early wakeup.
     */
    int (*channel_fd)(struct vnvme_bdev *b, void *ch_ctx);
    /*
     * Optional: recall an I/O submitted on this channel and not finished. Returns 0
     * when it was recalled (its cb has been called with -ECANCELED), -ENOENT when it
     * is past recall (it completes normally).
     */
    int (*abort)(struct vnvme_bdev *b, void *ch_ctx, struct vnvme_bdev_io *io);
    /* Add type-specific fields ("driver_specific" in bdev_get_bdevs). */
    void (*dump_json)(struct vnvme_bdev *b, struct json_object *obj);
    void (*destroy)(struct vnvme_bdev *b);
    /* bdev_get_bdevs' product_name ("Malloc disk"); NULL = type. */
    const char *product_name;
};

struct vnvme_bdev_stats;     /* bdev_stat.c */
struct vnvme_bdev_chan_stat; /* bdev_stat.c */
struct vnvme_qos;            /* bdev_qos.c */

struct vnvme_bdev {
    char name[64];
    uint8_t uuid[16];
    uint32_t block_size;       /* 512 or 4096 */
    uint64_t num_blocks;
    bool volatile_write_cache; /* FLUSH needed for durability */
    bool supports_unmap;
    bool supports_write_zeroes;
    bool fenced_reads;         /* READs read straight into the caller's memory when it can be fenced (io->mem) */
    const struct vnvme_bdev_ops *ops;
    void *ctx;                 /* the implementation's */
    uint32_t claims;           /* namespaces using it; a claimed bdev cannot be deleted */
    struct vnvme_bdev *next;   /* registry */
    struct vnvme_bdev_stats *stats; /* I/O statistics (vnvme/bdev_stat.h), from registration on */
    struct vnvme_qos *qos;          /* rate limits (vnvme/bdev_qos.h), NULL until first set */
};

/* Registry (control path, one thread). */
int vnvme_bdev_register(struct vnvme_bdev *b); /* -EEXIST for a duplicate name */
struct vnvme_bdev *vnvme_bdev_get(const char *name);
struct vnvme_bdev *vnvme_bdev_first(void);
struct vnvme_bdev *vnvme_bdev_next(struct vnvme_bdev *b);
/* Unregister and destroy; -EBUSY while claimed, -ENOENT when unknown. */
int vnvme_bdev_delete(const char *name);

/* Channels. */
struct vnvme_bdev_channel *vnvme_bdev_channel_get(struct vnvme_bdev *b);
void vnvme_bdev_channel_put(struct vnvme_bdev_channel *ch);
int vnvme_bdev_submit(struct vnvme_bdev_channel *ch, struct vnvme_bdev_io *io);
int vnvme_bdev_channel_poll(struct vnvme_bdev_channel *ch);
int vnvme_bdev_channel_fd(struct vnvme_bdev_channel *ch);
/* Recall an in-flight I/O (see ops.abort): 0, -ENOENT, or -ENOTSUP for bdevs that cannot. */
int vnvme_bdev_abort(struct vnvme_bdev_channel *ch, struct vnvme_bdev_io *io);

/* bdev_get_bdevs-shaped description. */
struct json_object *vnvme_bdev_to_json(struct vnvme_bdev *b);

/* For implementations. Fill name, block size, block count and uuid (the given
 * one or a random v4 one); -EINVAL for an empty/too long name, a block size that
 * is not a power of two in [512, 65536], zero blocks or a byte size that does
 * not fit in 64 bits. */
int vnvme_bdev_init(struct vnvme_bdev *b, const char *name, uint32_t block_size, uint64_t num_blocks,
                    const uint8_t *uuid);
/* Validate an I/O against the bdev before touching anything: -EINVAL for an
 * unknown op, no callback, zero blocks or an iov total that differs from
 * num_blocks * block_size (READ/WRITE/COMPARE); -ERANGE when the range does not
 * fit in the bdev. FLUSH ignores range and data. */
int vnvme_bdev_io_check(const struct vnvme_bdev *b, const struct vnvme_bdev_io *io);
/* A checked I/O's data (its iovecs, in order) from a flat buffer: READ's result. */
void vnvme_bdev_io_copy_to(const struct vnvme_bdev_io *io, const uint8_t *src);
/* COMPARE: 0 when the iovecs hold the same bytes as data, else -EILSEQ. */
int vnvme_bdev_io_compare(const struct vnvme_bdev_io *io, const uint8_t *data);
/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" plus NUL. */
void vnvme_bdev_uuid_format(const uint8_t uuid[16], char out[37]);

/* Implementations. */
/*
 * RAM bdev. The data lives in a memfd ("vnvme-malloc:<name>", sealed against
 * shrinking) mapped shared, so it can outlive the process: pass the fd to
 * another process (SCM_RIGHTS) and create a bdev from it there. create starts
 * a new, zeroed memfd.
 */
int vnvme_bdev_malloc_create(const char *name, uint64_t num_blocks, uint32_t block_size, const uint8_t *uuid,
                             struct vnvme_bdev **out);
/*
 * A RAM bdev on an existing file (another malloc bdev's memfd, received from
 * the process that created it), contents kept. The file must be exactly
 * num_blocks * block_size bytes (else -EINVAL) and open read-write. Takes
 * ownership of fd on success only; on failure the caller still owns it.
 */
int vnvme_bdev_malloc_create_from_fd(const char *name, uint64_t num_blocks, uint32_t block_size, const uint8_t *uuid,
                                     int fd, struct vnvme_bdev **out);
/* The malloc bdev's memfd (owned by the bdev: dup it to keep it), or -1 when b is not a malloc bdev. */
int vnvme_bdev_malloc_fd(const struct vnvme_bdev *b);
int vnvme_bdev_null_create(const char *name, uint64_t num_blocks, uint32_t block_size, const uint8_t *uuid,
                           struct vnvme_bdev **out);
/* File or block device through io_uring; block_size 0 = the device's logical block size (or 512 for files). */
int vnvme_bdev_uring_create(const char *name, const char *filename, uint32_t block_size, const uint8_t *uuid,
                            struct vnvme_bdev **out);
/*
 * A base bdev with added latency (SPDK's bdev_delay): latency_us in the order avg_read, p99_read,
 * avg_write, p99_write (microseconds; p99 >= avg). Claims the base. -ENODEV: no such base.
 */
int vnvme_bdev_delay_create(const char *name, const char *base_name, const uint64_t latency_us[4],
                            const uint8_t *uuid, struct vnvme_bdev **out);
/* latency_type: "avg_read", "p99_read", "avg_write" or "p99_write"; applies to I/O submitted from now on. */
int vnvme_bdev_delay_update_latency(const char *name, const char *latency_type, uint64_t latency_us);
/* bdev_delay_create params that recreate b, or NULL when b is not a delay bdev. */
struct json_object *vnvme_bdev_delay_save(struct vnvme_bdev *b);

#endif
