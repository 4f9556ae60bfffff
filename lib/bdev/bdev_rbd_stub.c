/* SPDX-License-Identifier: MIT */
/* Built instead of bdev_rbd.c, rbd_io.c and rbd_cluster.c when librbd is not available. */
#include <errno.h>
#include <stddef.h>

#include "vnvme/bdev_rbd.h"

bool vnvme_bdev_rbd_supported(void)
{
    return false;
}

int vnvme_bdev_rbd_register_cluster(const char *name, const struct vnvme_rbd_conn_opts *opts)
{
    (void)name;
    (void)opts;
    return -ENOTSUP;
}

int vnvme_bdev_rbd_unregister_cluster(const char *name)
{
    (void)name;
    return -ENOTSUP;
}

struct json_object *vnvme_bdev_rbd_clusters_json(const char *name)
{
    (void)name;
    return NULL;
}

struct json_object *vnvme_bdev_rbd_clusters_save(void)
{
    return NULL;
}

int vnvme_bdev_rbd_create(const struct vnvme_rbd_create_opts *opts, struct vnvme_bdev **out)
{
    (void)opts;
    (void)out;
    return -ENOTSUP;
}

int vnvme_bdev_rbd_resize(struct vnvme_bdev *b, uint64_t new_size_bytes)
{
    (void)b;
    (void)new_size_bytes;
    return -ENOTSUP;
}

struct json_object *vnvme_bdev_rbd_save(struct vnvme_bdev *b)
{
    (void)b;
    return NULL;
}

void vnvme_bdev_rbd_wait_closed(void)
{
}
