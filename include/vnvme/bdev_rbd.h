/* SPDX-License-Identifier: MIT */
/*
 * "rbd" bdev: a Ceph RBD image through librbd. Shapes follow SPDK's
 * bdev_rbd_* RPCs: an image either gets its own rados connection or shares
 * the connection of a registered cluster.
 *
 * Everything here runs on the control thread. When vnvme is built without
 * librbd every call returns -ENOTSUP and vnvme_bdev_rbd_supported() is false.
 */
#ifndef VNVME_BDEV_RBD_H
#define VNVME_BDEV_RBD_H

#include <stdbool.h>
#include <stdint.h>

#include "vnvme/bdev.h"

struct json_object;

#define VNVME_RBD_DEFAULT_TIMEOUT_MS 30000u

/*
 * Connection settings. config is a JSON object of string values passed to
 * rados_conf_set after config_file (NULL: the default ceph.conf search when
 * config is NULL too, as SPDK does). timeout_ms (0 = default) bounds every
 * rados operation, see bdev_rbd.c.
 */
struct vnvme_rbd_conn_opts {
    const char *user_id;     /* NULL = "admin" */
    const char *config_file;
    const char *key_file;
    struct json_object *config;
    uint32_t timeout_ms;
};

bool vnvme_bdev_rbd_supported(void);

/* -EEXIST for a duplicate name; connection failures as -errno. */
int vnvme_bdev_rbd_register_cluster(const char *name, const struct vnvme_rbd_conn_opts *opts);
/* -ENOENT when unknown, -EBUSY while an image uses it (images being closed after their delete do not count). */
int vnvme_bdev_rbd_unregister_cluster(const char *name);
/* bdev_rbd_get_clusters_info: one cluster (name) or all; NULL when the name is unknown. */
struct json_object *vnvme_bdev_rbd_clusters_json(const char *name);
/* bdev_rbd_register_cluster params for every registered cluster (save_config), in registration order. */
struct json_object *vnvme_bdev_rbd_clusters_save(void);

struct vnvme_rbd_create_opts {
    const char *name; /* required */
    const char *pool_name;
    const char *rbd_name;
    uint32_t block_size;
    const uint8_t *uuid;      /* NULL = random */
    const char *cluster_name; /* share a registered cluster's connection; NULL = a private one from conn */
    struct vnvme_rbd_conn_opts conn;
};

int vnvme_bdev_rbd_create(const struct vnvme_rbd_create_opts *opts, struct vnvme_bdev **out);
/* Grow the image to new_size_bytes (shrinking is refused with -EINVAL, as SPDK) and the bdev with it. */
int vnvme_bdev_rbd_resize(struct vnvme_bdev *b, uint64_t new_size_bytes);
/*
 * Deleting an rbd bdev (vnvme_bdev_delete) closes its image on a thread of its
 * own, since a close waits for the cluster; this waits until every such close
 * is done (before the process exits).
 */
void vnvme_bdev_rbd_wait_closed(void);
/* bdev_rbd_create params that recreate b (save_config); NULL when b is not an rbd bdev. */
struct json_object *vnvme_bdev_rbd_save(struct vnvme_bdev *b);

#endif
