/* SPDX-License-Identifier: MIT */
/*
 * The vfio-user transport of the NVMe target: one PCIe NVMe controller per
 * socket. It owns the vfio-user server and PCI model, presents BAR0 (register
 * page trapped, doorbell page mmapped from a memfd), BAR4/BAR5 (MSI-X table
 * and PBA), and connects them to a struct nvmet_ctrlr.
 *
 * Everything runs on the owning reactor thread: nvmet_vfio_user_poll_data()
 * is the hot path (doorbells, completions; no syscalls unless there is
 * work), nvmet_vfio_user_poll_control() handles socket messages and is called
 * when the socket is readable or every few hundred microseconds.
 */
#ifndef VNVME_TRANSPORT_VFIO_USER_H
#define VNVME_TRANSPORT_VFIO_USER_H

#include <sys/types.h>

#include "nvmet.h"

#define NVMET_VFIO_USER_VENDOR_ID 0x4e56 /* vnvme's own vendor id space ("NV") */
#define NVMET_VFIO_USER_DEVICE_ID 0x0001

struct nvmet_vfio_user_ctrlr;

/*
 * Listen on socket_path (the daemon passes DIR/cntrl), mode 0600, or 0660
 * with group *socket_group. NULL with *err on failure.
 */
struct nvmet_vfio_user_ctrlr *nvmet_vfio_user_ctrlr_create(struct nvmet_subsys *ss, const char *socket_path,
                                                           const gid_t *socket_group, int *err);
/* Disconnects the client, removes the socket file. */
void nvmet_vfio_user_ctrlr_destroy(struct nvmet_vfio_user_ctrlr *vc);

int nvmet_vfio_user_poll_data(struct nvmet_vfio_user_ctrlr *vc);
/* When the next poll must run for an interrupt held back by coalescing (CLOCK_MONOTONIC ns), or 0. */
uint64_t nvmet_vfio_user_irq_deadline_ns(struct nvmet_vfio_user_ctrlr *vc);
int nvmet_vfio_user_poll_control(struct nvmet_vfio_user_ctrlr *vc);
/* fds to wait on when idle: listener and connection (-1 when none). */
void nvmet_vfio_user_fds(struct nvmet_vfio_user_ctrlr *vc, int *listen_fd, int *conn_fd);
struct nvmet_ctrlr *nvmet_vfio_user_nvme(struct nvmet_vfio_user_ctrlr *vc);
const char *nvmet_vfio_user_socket_path(const struct nvmet_vfio_user_ctrlr *vc);

#endif
