/* SPDX-License-Identifier: MIT */
/*
 * Live upgrade: a running vnvmed hands its clients to a new vnvmed process
 * (docs/STATE-FORMAT.md has the format, README the operator's view).
 *
 *   handover_msg.c    messages with file descriptors on the private socket
 *   config_record.c   the running configuration and RAM bdevs' memory
 *   upgrade.c         the running side: framework_upgrade, freezing and giving
 *   takeover.c        the new side: vnvmed --upgrade-fd, checking and taking
 *   tgt_handover.c    the target's part on both sides: pause, drain, save,
 *                     restore, start, abandon the controllers
 *
 * The conversation (old -> new unless marked):
 *   OFFER     state format version, the running configuration without
 *             listeners, RAM bdevs' memory (fds)
 *   <- REFUSE (reason; the new process exits) or PREPARED (bdevs and
 *             subsystems exist; the old process still serves)
 *   CTRLR     one per controller, after it was drained and removed from its
 *             reactor: nqn, listener, state, fds
 *   END       the RPC socket
 *   <- FAILED (reason) or READY (every controller rebuilt, none polled yet)
 *   COMMIT    from here the old process touches nothing and exits; the new
 *             one starts polling. Without COMMIT the new one exits and the
 *             old one resumes, so exactly one of them serves.
 */
#ifndef VNVMED_HANDOVER_H
#define VNVMED_HANDOVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/state.h"

#define HANDOVER_STATE_VERSION 1u

enum handover_type {
    HO_OFFER = 1,
    HO_REFUSE,
    HO_PREPARED,
    HO_CTRLR,
    HO_END,
    HO_FAILED,
    HO_READY,
    HO_COMMIT,
};

struct handover_msg {
    uint32_t type;
    uint8_t *data;
    size_t len;
    int *fds; /* taken ones set to -1; handover_msg_free closes the rest */
    size_t nfds;
};

/* Send one message (split into packets as SCM_RIGHTS and packet sizes need). 0 or -errno. */
int handover_send(int sock, uint32_t type, const void *data, size_t len, const int *fds, size_t nfds);
int handover_send_state(int sock, uint32_t type, const struct vnvme_state_out *w);
int handover_send_text(int sock, uint32_t type, const char *text);
/* Receive one whole message within timeout_ms. 0, -ETIMEDOUT, -ECONNRESET (peer gone) or -EPROTO. */
int handover_recv(int sock, int timeout_ms, struct handover_msg *m);
void handover_msg_free(struct handover_msg *m);

/* ---- upgrade.c ---- */
/* The program to start when framework_upgrade names none, and the arguments this process was started with. */
void upgrade_set_self(int argc, char **argv, volatile int *stop);
/* True once this process has handed everything over and must exit without touching its clients (*stop is set then). */
int upgrade_handed_over(void);

/* ---- config_record.c ---- */
/* The configuration record (OFFER's bytes and fds): written by a live upgrade and by crash recovery. */
int config_record_write(struct vnvme_state_out *w);
/* Check the version (the one this process reads) and build what the record describes. 0, or -errno with why. */
int config_record_apply(struct vnvme_state_in *r, uint32_t reads_version, const char *origin, char *why,
                        size_t why_len);
/*
 * The host role of the last record applied (bdev_nvme_attach_controller, CUSE
 * devices), which config_record_apply leaves out: for once the target side
 * serves. 0, or the first failure's -errno.
 */
int config_record_apply_host_role(const char *origin);
/* bdev_malloc_create while a record is applied: the memory of that bdev, or -1. */
int takeover_bdev_fd(const char *name);

/* ---- takeover.c ---- */
/*
 * vnvmed --upgrade-fd FD: take over from the process on FD. Returns 0 once
 * this process serves (COMMIT received; RPC socket adopted; the metrics
 * listener, or -1, in *metrics_fd for the caller to serve); any failure
 * before that ends the process (_exit) so the old one resumes untouched.
 */
int takeover_run(int sock, int *metrics_fd);

/* ---- tgt_handover.c ---- */
struct tgt_frozen;
/*
 * Stop fetching on every controller, wait (at most timeout_ms) until each is
 * quiet, save it and take it off its reactor. NULL with why filled when that
 * fails; everything then runs again as before.
 */
struct tgt_frozen *tgt_freeze(int timeout_ms, char *why, size_t why_len);
/* Send each frozen controller as a CTRLR message. */
int tgt_frozen_send(struct tgt_frozen *f, int sock);
uint32_t tgt_frozen_count(const struct tgt_frozen *f);
/* Commands recalled from bdevs that did not finish them in time, carried over to run again. */
uint32_t tgt_frozen_recalled(const struct tgt_frozen *f);
/* The handover failed: every controller back on its reactor, fetching again. */
void tgt_thaw(struct tgt_frozen *f);
/* The handover succeeded: let go of every controller here without the clients noticing. */
void tgt_abandon(struct tgt_frozen *f);
/*
 * New side: rebuild the controllers of all CTRLR messages (not polled yet),
 * one reactor_call per reactor. All or none: 0, or -errno with why.
 */
int tgt_restore_ctrlrs(struct handover_msg *msgs, uint32_t n, char *why, size_t why_len);
/* After a crash (recovery.c): the same from a controller's recovery record. */
int tgt_recover_ctrlr(struct handover_msg *m, char *why, size_t why_len);
/* New side, on COMMIT (or once recovered): start polling every rebuilt controller. */
void tgt_start_restored(void);

#endif
