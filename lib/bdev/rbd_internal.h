/* SPDX-License-Identifier: MIT */
/* Shared by the rbd bdev files: the bdev, its I/O path, rados connections and named clusters. */
#ifndef VNVME_RBD_INTERNAL_H
#define VNVME_RBD_INTERNAL_H

#include <stdint.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "vnvme/bdev.h"
#include "vnvme/bdev_rbd.h"

/* One open image (bdev_rbd.c); the I/O path (rbd_io.c) reads the image and keeps the counters. */
struct rbd_bdev {
    struct vnvme_bdev bdev;
    char *pool_name, *rbd_name;
    struct rbd_cluster *cluster; /* shared connection, or NULL for a private one */
    struct vnvme_rbd_conn_opts conn; /* private connection settings (strings owned), for save_config */
    rados_t rados;
    rados_ioctx_t ioctx;
    rbd_image_t image;
    uint32_t timeout_ms;
    uint64_t backstop_ns;
    _Atomic uint64_t abandoned; /* I/Os given up on while librbd held them: backstop or recall */
    _Atomic uint64_t abandoned_done; /* ... whose late librbd completion has arrived since */
    _Atomic uint64_t fenced;    /* abandoned reads into the caller's memory, whose pages were fenced */
    _Atomic uint32_t orphans;   /* destroyed channels still waiting for librbd (see rbd_io_channel_destroy) */
    /*
     * Failed flushes so far. When writeback fails, librbd reports the error
     * to one of the flushes waiting for it and success to the others; a flush
     * that overlapped a failed one therefore cannot be trusted.
     */
    _Atomic uint64_t flush_errors;
};

/* The I/O path's bdev ops (rbd_io.c). */
int rbd_io_channel_create(struct vnvme_bdev *b, void **out);
void rbd_io_channel_destroy(struct vnvme_bdev *b, void *ctx);
int rbd_io_submit(struct vnvme_bdev *b, void *ctx, struct vnvme_bdev_io *io);
int rbd_io_poll(struct vnvme_bdev *b, void *ctx);
int rbd_io_channel_fd(struct vnvme_bdev *b, void *ctx);
int rbd_io_abort(struct vnvme_bdev *b, void *ctx, struct vnvme_bdev_io *io);
/* Before r goes: wait until no destroyed channel of r waits for librbd any more. */
void rbd_io_wait_orphans(struct rbd_bdev *r);

/* A connected rados handle configured from opts (timeouts applied); -errno on failure. */
int rbd_conn_open(const struct vnvme_rbd_conn_opts *opts, rados_t *out);
uint32_t rbd_timeout_ms(const struct vnvme_rbd_conn_opts *opts);

/* Registered clusters: get takes a reference (an image using it), put drops it. */
struct rbd_cluster;
struct rbd_cluster *rbd_cluster_get(const char *name);
/* An image on c starts closing (control thread): it no longer keeps c registered. */
void rbd_cluster_closing(struct rbd_cluster *c);
/* The image is closed (any thread, after rbd_cluster_closing); an unregistered c goes with its last put. */
void rbd_cluster_put(struct rbd_cluster *c);
rados_t rbd_cluster_rados(const struct rbd_cluster *c);
uint32_t rbd_cluster_timeout_ms(const struct rbd_cluster *c);
const char *rbd_cluster_name(const struct rbd_cluster *c);
const char *rbd_cluster_config_file(const struct rbd_cluster *c);

#endif
