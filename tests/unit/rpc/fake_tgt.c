/* SPDX-License-Identifier: MIT */
/*
 * A fake of the daemon's tgt.c: subsystems, namespaces and listeners kept in
 * plain lists with the same error conventions (-EEXIST, -ENODEV, -ENOENT...),
 * appended in creation order. Namespaces claim their bdevs like the real one
 * so bdev deletion rules can be checked.
 */
#include "fake_tgt.h"
#include "handover.h"
#include "rpc_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_internal.h"
#include "vnvmed.h"

int fake_tgt_calls;
static bool transport;
static struct tgt_subsystem *subsystems;

bool tgt_transport_created(void)
{
    return transport;
}

int tgt_create_transport(const char *trtype)
{
    fake_tgt_calls++;
    if (strcmp(trtype, "VFIOUSER") != 0)
        return -EINVAL;
    if (transport)
        return -EEXIST;
    transport = true;
    return 0;
}

struct tgt_subsystem *tgt_subsystem_find(const char *nqn)
{
    for (struct tgt_subsystem *ts = subsystems; ts; ts = ts->next)
        if (strcmp(ts->ss->nqn, nqn) == 0)
            return ts;
    return NULL;
}

struct tgt_subsystem *tgt_subsystem_first(void)
{
    return subsystems;
}

int tgt_subsystem_create(const char *nqn, const char *serial, const char *model, uint32_t max_namespaces,
                         bool allow_any_host, struct tgt_subsystem **out)
{
    fake_tgt_calls++;
    if (tgt_subsystem_find(nqn))
        return -EEXIST;
    struct tgt_subsystem *ts = calloc(1, sizeof(*ts));
    ts->ss = calloc(1, sizeof(*ts->ss));
    strncpy(ts->ss->nqn, nqn, sizeof(ts->ss->nqn) - 1);
    strncpy(ts->ss->serial, serial, sizeof(ts->ss->serial) - 1);
    strncpy(ts->ss->model, model, sizeof(ts->ss->model) - 1);
    ts->ss->max_namespaces = max_namespaces;
    ts->ss->allow_any_host = allow_any_host;
    struct tgt_subsystem **p = &subsystems;
    while (*p)
        p = &(*p)->next;
    *p = ts;
    if (out)
        *out = ts;
    return 0;
}

static void free_subsystem(struct tgt_subsystem *ts)
{
    for (uint32_t i = 1; i <= NVMET_MAX_NSID; i++) {
        if (ts->ss->ns[i]) {
            ts->ss->ns[i]->bdev->claims--;
            free(ts->ss->ns[i]);
        }
    }
    while (ts->listeners) {
        struct tgt_listener *l = ts->listeners;
        ts->listeners = l->next;
        free(l);
    }
    free(ts->ss);
    free(ts);
}

int tgt_subsystem_delete(const char *nqn)
{
    fake_tgt_calls++;
    for (struct tgt_subsystem **p = &subsystems; *p; p = &(*p)->next) {
        if (strcmp((*p)->ss->nqn, nqn) == 0) {
            struct tgt_subsystem *ts = *p;
            *p = ts->next;
            free_subsystem(ts);
            return 0;
        }
    }
    return -ENODEV;
}

int tgt_ns_add(struct tgt_subsystem *ts, const char *bdev_name, uint32_t nsid, const uint8_t *nguid,
               const uint8_t *eui64, const uint8_t *uuid)
{
    fake_tgt_calls++;
    struct vnvme_bdev *b = vnvme_bdev_get(bdev_name);
    if (!b)
        return -ENODEV;
    if (nsid > ts->ss->max_namespaces)
        return -EINVAL;
    if (nsid == 0) {
        for (nsid = 1; nsid <= ts->ss->max_namespaces && ts->ss->ns[nsid]; nsid++)
            ;
        if (nsid > ts->ss->max_namespaces)
            return -ENOSPC;
    } else if (ts->ss->ns[nsid]) {
        return -EEXIST;
    }
    struct nvmet_ns *ns = calloc(1, sizeof(*ns));
    ns->nsid = nsid;
    ns->bdev = b;
    memcpy(ns->uuid, uuid ? uuid : b->uuid, 16);
    if (nguid)
        memcpy(ns->nguid, nguid, 16);
    if (eui64)
        memcpy(ns->eui64, eui64, 8);
    b->claims++;
    ts->ss->ns[nsid] = ns;
    return (int)nsid;
}

int tgt_ns_remove(struct tgt_subsystem *ts, uint32_t nsid)
{
    fake_tgt_calls++;
    if (nsid == 0 || nsid > NVMET_MAX_NSID || !ts->ss->ns[nsid])
        return -ENOENT;
    ts->ss->ns[nsid]->bdev->claims--;
    free(ts->ss->ns[nsid]);
    ts->ss->ns[nsid] = NULL;
    return 0;
}

void tgt_bdev_resized(struct vnvme_bdev *b)
{
    (void)b;
    fake_tgt_calls++;
}

int tgt_listener_add(struct tgt_subsystem *ts, const char *trtype, const char *traddr, const char *socket_group)
{
    fake_tgt_calls++;
    if (strcmp(trtype, "VFIOUSER") != 0)
        return -EINVAL;
    for (struct tgt_subsystem *t = subsystems; t; t = t->next)
        for (struct tgt_listener *l = t->listeners; l; l = l->next)
            if (strcmp(l->traddr, traddr) == 0)
                return -EADDRINUSE;
    struct tgt_listener *l = calloc(1, sizeof(*l));
    strncpy(l->traddr, traddr, sizeof(l->traddr) - 1);
    if (socket_group)
        strncpy(l->socket_group, socket_group, sizeof(l->socket_group) - 1);
    struct tgt_listener **p = &ts->listeners;
    while (*p)
        p = &(*p)->next;
    *p = l;
    return 0;
}

int tgt_listener_remove(struct tgt_subsystem *ts, const char *trtype, const char *traddr)
{
    fake_tgt_calls++;
    (void)trtype;
    for (struct tgt_listener **p = &ts->listeners; *p; p = &(*p)->next) {
        if (strcmp((*p)->traddr, traddr) == 0) {
            struct tgt_listener *l = *p;
            *p = l->next;
            free(l);
            return 0;
        }
    }
    return -ENOENT;
}

void tgt_shutdown(void)
{
    while (subsystems) {
        struct tgt_subsystem *ts = subsystems;
        subsystems = ts->next;
        free_subsystem(ts);
    }
}

void fake_tgt_reset(void)
{
    tgt_shutdown();
    rpc_nvmf_forget_hosts(NULL);
    transport = false;
    struct vnvme_bdev *b;
    while ((b = vnvme_bdev_first()) != NULL) {
        char name[sizeof(b->name)];
        strcpy(name, b->name);
        vnvme_bdev_delete(name);
    }
    fake_tgt_calls = 0;
}

/*
 * One reactor with fixed figures, and no controllers: enough for the shape of
 * framework_get_reactors and nvmf_get_stats. What they read from real
 * controllers is checked against the daemon (test_vnvmed).
 */
static char fake_reactor;

int reactors_count(void)
{
    return 1;
}

struct reactor *reactor_get(int i)
{
    return i == 0 ? (struct reactor *)&fake_reactor : NULL;
}

void reactor_get_stats(struct reactor *r, struct reactor_stats *out)
{
    (void)r;
    memset(out, 0, sizeof(*out));
    out->cpu = 3;
    out->busy_ticks = 700;
    out->idle_ticks = 300;
    out->polls = 10;
    out->polls_with_work = 7;
    out->ctrlrs = 2;
    out->connected = 1;
}

void reactor_for_each_ctrlr(struct reactor *r, const struct nvmet_subsys *ss,
                            void (*fn)(struct nvmet_vfio_user_ctrlr *vc, void *arg), void *arg)
{
    (void)r;
    (void)ss;
    (void)fn;
    (void)arg;
}

void ctrlr_get_stats(struct nvmet_vfio_user_ctrlr *vc, struct ctrlr_stats *out)
{
    (void)vc;
    memset(out, 0, sizeof(*out));
}

struct nvmet_ctrlr *nvmet_vfio_user_nvme(struct nvmet_vfio_user_ctrlr *vc)
{
    (void)vc;
    return NULL;
}

const char *nvmet_vfio_user_socket_path(const struct nvmet_vfio_user_ctrlr *vc)
{
    (void)vc;
    return "";
}

void nvmet_vfio_user_fds(struct nvmet_vfio_user_ctrlr *vc, int *listen_fd, int *conn_fd)
{
    (void)vc;
    *listen_fd = *conn_fd = -1;
}

/* Live upgrade is the real daemon's (tests/integration/test_vnvmed_upgrade.c): no method, no handed-over memory here. */
const struct rpc_method rpc_upgrade_methods[] = {{NULL, NULL, NULL}};

int takeover_bdev_fd(const char *name)
{
    (void)name;
    return -1;
}

/* Crash recovery records are the real daemon's. */
void recovery_config_changed(void)
{
}
