/* SPDX-License-Identifier: MIT */
/*
 * The target's part of a live upgrade (handover.h): on the running side,
 * draining every controller and saving it; on the new side, rebuilding each
 * from its CTRLR message and starting them all at COMMIT.
 *
 * A controller is saved on its reactor, in one reactor_call, and taken off
 * that reactor in the same call: from then on nothing of this process looks
 * at its queues or its socket, so the state sent is the state the new
 * process continues from. What the host does meanwhile (doorbell writes,
 * messages) waits in shared memory and in the socket.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "handover.h"
#include "recovery.h"
#include "vnvmed.h"

#define LOG_COMP "upgrade"
/* How long commands in flight may take to finish before those that can be recalled are carried over. */
#define RECALL_AFTER_MS 20

struct frozen_ctrlr {
    struct tgt_subsystem *ts;
    struct tgt_listener *l;
    struct vnvme_state_out w;
    bool saved;
    int rc; /* of the last try */
    uint32_t recalled; /* commands recalled from a bdev to be carried over */
};

struct tgt_frozen {
    struct frozen_ctrlr *c;
    uint32_t n;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct pause_call {
    struct nvmet_vfio_user_ctrlr *vc;
    bool paused;
};

static void pause_on_reactor(void *arg)
{
    struct pause_call *c = arg;
    nvmet_vfio_user_ctrlr_pause(c->vc, c->paused);
}

static void try_save_on_reactor(void *arg)
{
    struct frozen_ctrlr *fc = arg;
    vnvme_state_out_init(&fc->w);
    vnvme_state_put_str(&fc->w, fc->ts->ss->nqn);
    vnvme_state_put_str(&fc->w, fc->l->traddr);
    vnvme_state_put_str(&fc->w, fc->l->socket_group);
    fc->rc = nvmet_vfio_user_ctrlr_save(fc->l->vc, &fc->w);
    if (fc->rc) {
        vnvme_state_out_fini(&fc->w);
        return;
    }
    reactor_remove_ctrlr(fc->ts->reactor, fc->l->vc);
    fc->saved = true;
}

static void recall_on_reactor(void *arg)
{
    struct frozen_ctrlr *fc = arg;
    fc->recalled += nvmet_vfio_user_ctrlr_recall(fc->l->vc);
}

static void readd_on_reactor(void *arg)
{
    struct frozen_ctrlr *fc = arg;
    reactor_add_ctrlr(fc->ts->reactor, fc->l->vc);
}

static void set_paused(struct frozen_ctrlr *fc, bool paused)
{
    struct pause_call c = {.vc = fc->l->vc, .paused = paused};
    reactor_call(fc->ts->reactor, pause_on_reactor, &c);
}

static void frozen_free(struct tgt_frozen *f)
{
    for (uint32_t i = 0; i < f->n; i++)
        vnvme_state_out_fini(&f->c[i].w);
    free(f->c);
    free(f);
}

struct tgt_frozen *tgt_freeze(int timeout_ms, char *why, size_t why_len)
{
    struct tgt_frozen *f = calloc(1, sizeof(*f));
    uint32_t n = 0;
    for (struct tgt_subsystem *ts = tgt_subsystem_first(); ts; ts = ts->next)
        for (struct tgt_listener *l = ts->listeners; l; l = l->next)
            n++;
    if (!f || !(f->c = calloc(n ? n : 1, sizeof(*f->c)))) {
        free(f);
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    for (struct tgt_subsystem *ts = tgt_subsystem_first(); ts; ts = ts->next)
        for (struct tgt_listener *l = ts->listeners; l; l = l->next) {
            struct frozen_ctrlr *fc = &f->c[f->n++];
            fc->ts = ts;
            fc->l = l;
            set_paused(fc, true);
        }
    /* Commands in flight finish on their reactors meanwhile; each try saves the controllers that are quiet. */
    int64_t start = now_ms(), deadline = start + timeout_ms;
    bool recalled = false;
    for (;;) {
        if (!recalled && now_ms() - start >= RECALL_AFTER_MS) {
            /* Still waiting: what a bdev holds without having started it (a delay bdev, RBD) is carried over instead. */
            for (uint32_t i = 0; i < f->n; i++)
                if (!f->c[i].saved)
                    reactor_call(f->c[i].ts->reactor, recall_on_reactor, &f->c[i]);
            recalled = true;
        }
        uint32_t left = 0;
        for (uint32_t i = 0; i < f->n; i++) {
            struct frozen_ctrlr *fc = &f->c[i];
            if (!fc->saved)
                reactor_call(fc->ts->reactor, try_save_on_reactor, fc);
            left += !fc->saved;
            if (!fc->saved && fc->rc != -EBUSY) {
                snprintf(why, why_len, "cannot save the controller on %s: %s", fc->l->traddr, strerror(-fc->rc));
                tgt_thaw(f);
                return NULL;
            }
        }
        if (!left)
            return f;
        if (now_ms() >= deadline) {
            for (uint32_t i = 0; i < f->n; i++)
                if (!f->c[i].saved) {
                    snprintf(why, why_len,
                             "the controller on %s did not become quiet within %d ms (commands still in a bdev, or a "
                             "completion queue the host does not empty)",
                             f->c[i].l->traddr, timeout_ms);
                    break;
                }
            tgt_thaw(f);
            return NULL;
        }
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
}

uint32_t tgt_frozen_count(const struct tgt_frozen *f)
{
    return f->n;
}

uint32_t tgt_frozen_recalled(const struct tgt_frozen *f)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < f->n; i++)
        n += f->c[i].recalled;
    return n;
}

int tgt_frozen_send(struct tgt_frozen *f, int sock)
{
    for (uint32_t i = 0; i < f->n; i++) {
        int rc = handover_send_state(sock, HO_CTRLR, &f->c[i].w);
        if (rc)
            return rc;
    }
    return 0;
}

void tgt_thaw(struct tgt_frozen *f)
{
    for (uint32_t i = 0; i < f->n; i++) {
        struct frozen_ctrlr *fc = &f->c[i];
        if (fc->saved)
            reactor_call(fc->ts->reactor, readd_on_reactor, fc);
        set_paused(fc, false);
    }
    frozen_free(f);
}

static void abandon_on_reactor(void *arg)
{
    recovery_detach(arg);
    nvmet_vfio_user_ctrlr_abandon(arg);
}

void tgt_abandon(struct tgt_frozen *f)
{
    for (uint32_t i = 0; i < f->n; i++) {
        struct frozen_ctrlr *fc = &f->c[i];
        reactor_call(fc->ts->reactor, abandon_on_reactor, fc->l->vc);
        for (struct tgt_listener **pp = &fc->ts->listeners; *pp; pp = &(*pp)->next)
            if (*pp == fc->l) {
                *pp = fc->l->next;
                break;
            }
        free(fc->l);
    }
    frozen_free(f);
}

/* ---- the new side ---- */

struct restore_call {
    struct nvmet_subsys *ss;
    const char *socket_path;
    struct vnvme_state_in *r;
    bool recover;
    struct nvmet_vfio_user_ctrlr *vc;
    int rc;
};

static void restore_on_reactor(void *arg)
{
    struct restore_call *c = arg;
    c->vc = c->recover ? nvmet_vfio_user_ctrlr_recover(c->ss, c->socket_path, c->r, &c->rc)
                       : nvmet_vfio_user_ctrlr_restore(c->ss, c->socket_path, c->r, &c->rc);
}

static int restore_ctrlr(struct handover_msg *m, bool recover, char *why, size_t why_len)
{
    struct vnvme_state_in r;
    char nqn[224], traddr[256], group[64], path[256];
    vnvme_state_in_init(&r, m->data, m->len, m->fds, m->nfds);
    vnvme_state_get_str(&r, nqn, sizeof(nqn));
    vnvme_state_get_str(&r, traddr, sizeof(traddr));
    vnvme_state_get_str(&r, group, sizeof(group));
    if (!vnvme_state_in_ok(&r)) {
        snprintf(why, why_len, "a controller's record: %s", vnvme_state_in_why(&r));
        return -EPROTO;
    }
    struct tgt_subsystem *ts = tgt_subsystem_find(nqn);
    if (!ts) {
        snprintf(why, why_len, "controller on %s: no subsystem %s in the configuration", traddr, nqn);
        return -ENOENT;
    }
    if (tgt_socket_path(traddr, path, sizeof(path)) != 0) {
        snprintf(why, why_len, "controller on %s: the socket path is too long", traddr);
        return -ENAMETOOLONG;
    }
    struct tgt_listener *l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(why, why_len, "out of memory");
        return -ENOMEM;
    }
    struct restore_call c = {.ss = ts->ss, .socket_path = path, .r = &r, .recover = recover};
    reactor_call(ts->reactor, restore_on_reactor, &c);
    if (!c.vc) {
        snprintf(why, why_len, "controller on %s: %s", traddr,
                 vnvme_state_in_why(&r) ? vnvme_state_in_why(&r) : strerror(-c.rc));
        free(l);
        return c.rc ? c.rc : -EPROTO;
    }
    snprintf(l->traddr, sizeof(l->traddr), "%s", traddr);
    snprintf(l->socket_group, sizeof(l->socket_group), "%s", group);
    l->vc = c.vc;
    l->held = true;
    struct tgt_listener **pp = &ts->listeners;
    while (*pp)
        pp = &(*pp)->next;
    *pp = l;
    return 0;
}

int tgt_restore_ctrlr(struct handover_msg *m, char *why, size_t why_len)
{
    return restore_ctrlr(m, false, why, why_len);
}

int tgt_recover_ctrlr(struct handover_msg *m, char *why, size_t why_len)
{
    return restore_ctrlr(m, true, why, why_len);
}

struct start_call {
    struct tgt_subsystem *ts;
    struct tgt_listener *l;
};

static void start_on_reactor(void *arg)
{
    struct start_call *c = arg;
    recovery_attach(c->l->vc, c->ts->ss->nqn, c->l->traddr, c->l->socket_group);
    reactor_add_ctrlr(c->ts->reactor, c->l->vc);
}

void tgt_start_restored(void)
{
    for (struct tgt_subsystem *ts = tgt_subsystem_first(); ts; ts = ts->next)
        for (struct tgt_listener *l = ts->listeners; l; l = l->next) {
            if (!l->held)
                continue;
            struct start_call c = {.ts = ts, .l = l};
            reactor_call(ts->reactor, start_on_reactor, &c);
            l->held = false;
        }
}
