/* SPDX-License-Identifier: MIT */
/*
 * Crash recovery (vnvmed --fd-store, under systemd or anything that plays
 * its file descriptor store): what a restarted vnvmed needs to keep its
 * clients after the old process died without a word.
 *
 *   fdstore.c    the descriptors kept by the service manager, by name
 *   recovery.c   the records: the running configuration with RAM bdevs'
 *                memory, and one record per controller (socket, memory,
 *                interrupts, PCI function; docs/STATE-FORMAT.md), rewritten
 *                when a control message changes them; and the start that
 *                rebuilds everything from them
 *
 * A recovered controller that was enabled reports a controller fatal status
 * (CSTS.CFS): its queues and commands in flight died with the process, and
 * the host's driver resets it on its next timeout (Linux: 30 s) and goes on.
 */
#ifndef VNVMED_RECOVERY_H
#define VNVMED_RECOVERY_H

#include <stdbool.h>

#define FDSTORE_NAME_MAX 64

struct nvmet_vfio_user_ctrlr;

/* ---- fdstore.c ---- */
bool fdstore_enabled(void);
void fdstore_enable(void);
/*
 * Keep fd in the store (once per open file; named prefix-PID-N), or count one
 * more user of it; its name into name (FDSTORE_NAME_MAX bytes). hint (or
 * NULL): the name the caller knew this fd by, checked first.
 */
int fdstore_acquire(int fd, const char *prefix, const char *hint, char *name);
/* A descriptor the manager passed at start, under its name, with no user yet. */
int fdstore_adopt(int fd, const char *name);
void fdstore_release(const char *name);
/* Remove every name (a live upgrade's new process stores its own). */
void fdstore_forget_all(void);
/* Remove the adopted names no record uses (after a recovery). */
void fdstore_drop_unused(void);

/* ---- recovery.c ---- */
/* A controller starts being served (its reactor thread): write its record. No-op without the store. */
void recovery_attach(struct nvmet_vfio_user_ctrlr *vc, const char *nqn, const char *traddr, const char *group);
/* After its control messages were handled: rewrite the record if they changed it (reactor thread). */
void recovery_poll(struct nvmet_vfio_user_ctrlr *vc);
/* The controller goes: its record and the names only it used leave the store. */
void recovery_detach(struct nvmet_vfio_user_ctrlr *vc);
/* The configuration may have changed (an RPC ran): store it again when it did. Control thread. */
void recovery_config_changed(void);
/*
 * At start, with the descriptors the manager passed (fd 3 on, names): load
 * the stored configuration and rebuild every controller. Returns how many
 * controllers came back (held: tgt_start_restored starts them), -ENOENT when
 * no configuration was stored (nothing to recover), or another -errno.
 */
int recovery_start(int nfds, char **names);
/* A clean stop (after every controller went): the configuration leaves the store too. */
void recovery_shutdown(void);

#endif
