/* SPDX-License-Identifier: MIT */
/* Shared by the rbd bdev files: rados connections and the registry of named clusters. */
#ifndef VNVME_RBD_INTERNAL_H
#define VNVME_RBD_INTERNAL_H

#include <rados/librados.h>

#include "vnvme/bdev_rbd.h"

/* A connected rados handle configured from opts (timeouts applied); -errno on failure. */
int rbd_conn_open(const struct vnvme_rbd_conn_opts *opts, rados_t *out);
uint32_t rbd_timeout_ms(const struct vnvme_rbd_conn_opts *opts);

/* Registered clusters: get takes a reference (an image using it), put drops it. */
struct rbd_cluster;
struct rbd_cluster *rbd_cluster_get(const char *name);
void rbd_cluster_put(struct rbd_cluster *c);
rados_t rbd_cluster_rados(const struct rbd_cluster *c);
uint32_t rbd_cluster_timeout_ms(const struct rbd_cluster *c);
const char *rbd_cluster_name(const struct rbd_cluster *c);
const char *rbd_cluster_config_file(const struct rbd_cluster *c);

#endif
