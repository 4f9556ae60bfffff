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

static void try_save(struct frozen_ctrlr *fc)
{
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

/* What one reactor does for a freeze, in one call: no round trip per controller or per try. */
struct reactor_batch {
    struct tgt_frozen *f;
    struct reactor *r;
    int64_t deadline;
    int timeout_ms;
    char *why;
    size_t why_len;
    bool failed;
};

static bool mine(const struct reactor_batch *b, const struct frozen_ctrlr *fc)
{
    return fc->ts->reactor == b->r;
}

static void freeze_on_reactor(void *arg)
{
    struct reactor_batch *b = arg;
    struct tgt_frozen *f = b->f;
    for (uint32_t i = 0; i < f->n; i++)
        if (mine(b, &f->c[i]))
            nvmet_vfio_user_ctrlr_pause(f->c[i].l->vc, true);
    int64_t start = now_ms();
    bool recalled = false;
    for (;;) {
        uint32_t left = 0;
        for (uint32_t i = 0; i < f->n; i++) {
            struct frozen_ctrlr *fc = &f->c[i];
            if (!mine(b, fc) || fc->saved)
                continue;
            try_save(fc);
            if (fc->saved)
                continue;
            if (fc->rc != -EBUSY) {
                snprintf(b->why, b->why_len, "cannot save the controller on %s: %s", fc->l->traddr, strerror(-fc->rc));
                b->failed = true;
                return;
            }
            left++;
        }
        if (!left)
            return;
        int64_t now = now_ms();
        if (!recalled && now - start >= RECALL_AFTER_MS) {
            /* Still waiting: what a bdev holds without having started it (a delay bdev, RBD) is carried over instead. */
            for (uint32_t i = 0; i < f->n; i++)
                if (mine(b, &f->c[i]) && !f->c[i].saved)
                    f->c[i].recalled += nvmet_vfio_user_ctrlr_recall(f->c[i].l->vc);
            recalled = true;
        }
        if (now >= b->deadline) {
            for (uint32_t i = 0; i < f->n; i++)
                if (mine(b, &f->c[i]) && !f->c[i].saved) {
                    snprintf(b->why, b->why_len,
                             "the controller on %s did not become quiet within %d ms (commands still in a bdev, or a "
                             "completion queue the host does not empty)",
                             f->c[i].l->traddr, b->timeout_ms);
                    break;
                }
            b->failed = true;
            return;
        }
        /* The commands in flight finish, and a half-received message is read to its end. */
        for (uint32_t i = 0; i < f->n; i++)
            if (mine(b, &f->c[i]) && !f->c[i].saved) {
                (void)nvmet_vfio_user_poll_data(f->c[i].l->vc);
                (void)nvmet_vfio_user_poll_control(f->c[i].l->vc);
            }
    }
}

static void thaw_on_reactor(void *arg)
{
    struct reactor_batch *b = arg;
    for (uint32_t i = 0; i < b->f->n; i++) {
        struct frozen_ctrlr *fc = &b->f->c[i];
        if (!mine(b, fc))
            continue;
        if (fc->saved)
            reactor_add_ctrlr(fc->ts->reactor, fc->l->vc);
        fc->saved = false;
        nvmet_vfio_user_ctrlr_pause(fc->l->vc, false);
    }
}

/* Run fn once on each reactor that serves one of f's controllers. */
static bool for_each_reactor(struct tgt_frozen *f, reactor_fn fn, struct reactor_batch *b)
{
    for (int k = 0; k < reactors_count(); k++) {
        b->r = reactor_get(k);
        bool any = false;
        for (uint32_t i = 0; i < f->n && !any; i++)
            any = mine(b, &f->c[i]);
        if (!any)
            continue;
        reactor_call(b->r, fn, b);
        if (b->failed)
            return false;
    }
    return true;
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
        }
    /* Reactor by reactor: the others keep serving until their turn. */
    struct reactor_batch b = {.f = f, .deadline = now_ms() + timeout_ms, .timeout_ms = timeout_ms, .why = why,
                              .why_len = why_len};
    if (!for_each_reactor(f, freeze_on_reactor, &b)) {
        tgt_thaw(f);
        return NULL;
    }
    return f;
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
    struct reactor_batch b = {.f = f};
    for_each_reactor(f, thaw_on_reactor, &b);
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

/* One controller to rebuild from its record; the reader stays valid while its reactor works on it. */
struct restore_item {
    struct handover_msg *m;
    struct vnvme_state_in r;
    struct tgt_subsystem *ts;
    char traddr[256], group[64], path[256];
    struct nvmet_vfio_user_ctrlr *vc;
    int rc;
};

struct restore_batch {
    struct restore_item *items;
    uint32_t n;
    struct reactor *r;
    bool recover;
};

static void restore_on_reactor(void *arg)
{
    struct restore_batch *b = arg;
    for (uint32_t i = 0; i < b->n; i++) {
        struct restore_item *it = &b->items[i];
        if (it->ts->reactor != b->r)
            continue;
        it->vc = b->recover ? nvmet_vfio_user_ctrlr_recover(it->ts->ss, it->path, &it->r, &it->rc)
                            : nvmet_vfio_user_ctrlr_restore(it->ts->ss, it->path, &it->r, &it->rc);
    }
}

static void abandon_restored_on_reactor(void *arg)
{
    struct restore_batch *b = arg;
    for (uint32_t i = 0; i < b->n; i++)
        if (b->items[i].ts && b->items[i].ts->reactor == b->r && b->items[i].vc) {
            nvmet_vfio_user_ctrlr_abandon(b->items[i].vc);
            b->items[i].vc = NULL;
        }
}

static void run_restore_batch(struct restore_batch *b, reactor_fn fn)
{
    for (int k = 0; k < reactors_count(); k++) {
        b->r = reactor_get(k);
        bool any = false;
        for (uint32_t i = 0; i < b->n && !any; i++)
            any = b->items[i].ts && b->items[i].ts->reactor == b->r;
        if (any)
            reactor_call(b->r, fn, b);
    }
}

/*
 * Rebuild every controller of msgs, one reactor_call per reactor. All or
 * nothing: on any failure the ones rebuilt are let go again (abandon: nothing
 * a client sees), and why says which failed.
 */
static int restore_ctrlrs(struct handover_msg *msgs, uint32_t n, bool recover, char *why, size_t why_len)
{
    struct restore_item *items = calloc(n ? n : 1, sizeof(*items));
    if (!items) {
        snprintf(why, why_len, "out of memory");
        return -ENOMEM;
    }
    int rc = 0;
    char nqn[224];
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        struct restore_item *it = &items[i];
        it->m = &msgs[i];
        vnvme_state_in_init(&it->r, it->m->data, it->m->len, it->m->fds, it->m->nfds);
        vnvme_state_get_str(&it->r, nqn, sizeof(nqn));
        vnvme_state_get_str(&it->r, it->traddr, sizeof(it->traddr));
        vnvme_state_get_str(&it->r, it->group, sizeof(it->group));
        if (!vnvme_state_in_ok(&it->r)) {
            snprintf(why, why_len, "a controller's record: %s", vnvme_state_in_why(&it->r));
            rc = -EPROTO;
        } else if (!(it->ts = tgt_subsystem_find(nqn))) {
            snprintf(why, why_len, "controller on %s: no subsystem %s in the configuration", it->traddr, nqn);
            rc = -ENOENT;
        } else if (tgt_socket_path(it->traddr, it->path, sizeof(it->path)) != 0) {
            snprintf(why, why_len, "controller on %s: the socket path is too long", it->traddr);
            rc = -ENAMETOOLONG;
        }
    }
    struct restore_batch b = {.items = items, .n = n, .recover = recover};
    if (rc == 0)
        run_restore_batch(&b, restore_on_reactor);
    for (uint32_t i = 0; i < n && rc == 0; i++)
        if (!items[i].vc) {
            const char *reason = vnvme_state_in_why(&items[i].r);
            snprintf(why, why_len, "controller on %s: %s", items[i].traddr,
                     reason ? reason : strerror(items[i].rc ? -items[i].rc : EPROTO));
            rc = items[i].rc ? items[i].rc : -EPROTO;
        }
    struct tgt_listener **ls = rc == 0 ? calloc(n ? n : 1, sizeof(*ls)) : NULL;
    if (rc == 0 && !ls) {
        snprintf(why, why_len, "out of memory");
        rc = -ENOMEM;
    }
    for (uint32_t i = 0; i < n && rc == 0; i++)
        if (!(ls[i] = calloc(1, sizeof(*ls[i])))) {
            snprintf(why, why_len, "out of memory");
            rc = -ENOMEM;
        }
    if (rc) {
        run_restore_batch(&b, abandon_restored_on_reactor);
        for (uint32_t i = 0; ls && i < n; i++)
            free(ls[i]);
        free(ls);
        free(items);
        return rc;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct tgt_listener *l = ls[i];
        snprintf(l->traddr, sizeof(l->traddr), "%s", items[i].traddr);
        snprintf(l->socket_group, sizeof(l->socket_group), "%s", items[i].group);
        l->vc = items[i].vc;
        l->held = true;
        struct tgt_listener **pp = &items[i].ts->listeners;
        while (*pp)
            pp = &(*pp)->next;
        *pp = l;
    }
    free(ls);
    free(items);
    return 0;
}

int tgt_restore_ctrlrs(struct handover_msg *msgs, uint32_t n, char *why, size_t why_len)
{
    return restore_ctrlrs(msgs, n, false, why, why_len);
}

int tgt_recover_ctrlr(struct handover_msg *m, char *why, size_t why_len)
{
    return restore_ctrlrs(m, 1, true, why, why_len);
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
