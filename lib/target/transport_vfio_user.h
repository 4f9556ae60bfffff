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

#include <stdbool.h>
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

/*
 * Handover to another process (docs/STATE-FORMAT.md). pause stops fetching
 * commands (what is in flight still completes); save needs the controller
 * quiet (nvmet_ctrlr_quiet) and its socket at a message boundary, else
 * -EBUSY: keep polling and try again. restore builds the controller of
 * socket_path from the other process's state and fds (NULL with *err and the
 * reason in r when it cannot); abandon frees a saved controller here without
 * the client or the socket file noticing.
 */
struct vnvme_state_out;
struct vnvme_state_in;
void nvmet_vfio_user_ctrlr_pause(struct nvmet_vfio_user_ctrlr *vc, bool paused);
/* Recall commands a bdev holds without having started them; they travel with the state (nvmet.h). */
uint32_t nvmet_vfio_user_ctrlr_recall(struct nvmet_vfio_user_ctrlr *vc);
int nvmet_vfio_user_ctrlr_save(struct nvmet_vfio_user_ctrlr *vc, struct vnvme_state_out *w);
struct nvmet_vfio_user_ctrlr *nvmet_vfio_user_ctrlr_restore(struct nvmet_subsys *ss, const char *socket_path,
                                                            struct vnvme_state_in *r, int *err);
void nvmet_vfio_user_ctrlr_abandon(struct nvmet_vfio_user_ctrlr *vc);
/*
 * Crash recovery: a record of the control state alone (socket, memory,
 * interrupts, PCI function, which registers survive a reset), written again
 * whenever control_gen moves, and the controller a restarted process rebuilds
 * from it. Enabled before the crash, it comes back with CSTS.CFS set: the
 * host's driver resets it and carries on. owner is the daemon's to attach
 * the record to.
 */
uint64_t nvmet_vfio_user_control_gen(const struct nvmet_vfio_user_ctrlr *vc);
int nvmet_vfio_user_ctrlr_save_recovery(struct nvmet_vfio_user_ctrlr *vc, struct vnvme_state_out *w);
struct nvmet_vfio_user_ctrlr *nvmet_vfio_user_ctrlr_recover(struct nvmet_subsys *ss, const char *socket_path,
                                                            struct vnvme_state_in *r, int *err);
void nvmet_vfio_user_set_owner(struct nvmet_vfio_user_ctrlr *vc, void *owner);
void *nvmet_vfio_user_owner(const struct nvmet_vfio_user_ctrlr *vc);

int nvmet_vfio_user_poll_data(struct nvmet_vfio_user_ctrlr *vc);
/* When the next poll must run for an interrupt held back by coalescing (CLOCK_MONOTONIC ns), or 0. */
uint64_t nvmet_vfio_user_irq_deadline_ns(struct nvmet_vfio_user_ctrlr *vc);
int nvmet_vfio_user_poll_control(struct nvmet_vfio_user_ctrlr *vc);
/* fds to wait on when idle: listener and connection (-1 when none). */
void nvmet_vfio_user_fds(struct nvmet_vfio_user_ctrlr *vc, int *listen_fd, int *conn_fd);
/* Clients accepted so far: a new value means a new socket, even on the same fd number. */
uint32_t nvmet_vfio_user_connections(const struct nvmet_vfio_user_ctrlr *vc);
struct nvmet_ctrlr *nvmet_vfio_user_nvme(struct nvmet_vfio_user_ctrlr *vc);
const char *nvmet_vfio_user_socket_path(const struct nvmet_vfio_user_ctrlr *vc);

#endif
