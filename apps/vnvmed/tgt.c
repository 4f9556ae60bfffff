/* SPDX-License-Identifier: MIT */
/*
 * The target's configuration objects as RPC and the config file see them:
 * the transport, subsystems (each bound to one reactor, round-robin) and
 * their listeners (one vfio-user controller per listener directory).
 *
 * This file runs on the control thread. Anything a reactor may be looking
 * at (a subsystem's namespaces and controllers) is changed on that reactor
 * through reactor_call, so the target core never needs a lock.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/owner.h"
#include "recovery.h"
#include "vnvmed.h"

#define LOG_COMP "tgt"
#define SOCKET_NAME "cntrl"

static bool transport_created;
static const char *default_socket_group; /* vnvmed --socket-group */

void tgt_set_socket_group(const char *group)
{
    default_socket_group = group;
}
static struct tgt_subsystem *subsystems;
static unsigned next_reactor;

bool tgt_transport_created(void)
{
    return transport_created;
}

static bool is_vfio_user(const char *trtype)
{
    return trtype && strcasecmp(trtype, "VFIOUSER") == 0;
}

int tgt_create_transport(const char *trtype)
{
    if (!is_vfio_user(trtype))
        return -EINVAL;
    if (transport_created)
        return -EEXIST; /* as SPDK: a transport type is created once */
    transport_created = true;
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
    if (!nqn || !*nqn || strlen(nqn) >= sizeof(((struct nvmet_subsys *)0)->nqn))
        return -EINVAL;
    if (reactors_count() <= 0)
        return -ENODEV;
    if (tgt_subsystem_find(nqn))
        return -EEXIST;
    struct tgt_subsystem *ts = calloc(1, sizeof(*ts));
    if (!ts)
        return -ENOMEM;
    ts->ss = nvmet_subsys_create(nqn, serial, model, max_namespaces);
    if (!ts->ss) {
        free(ts);
        return -EINVAL;
    }
    ts->ss->allow_any_host = allow_any_host;
    ts->reactor = reactor_get((int)(next_reactor++ % (unsigned)reactors_count()));
    /* Append so listings keep creation order (save_config replays it). */
    struct tgt_subsystem **pp = &subsystems;
    while (*pp)
        pp = &(*pp)->next;
    *pp = ts;
    if (out)
        *out = ts;
    VNVME_INFO(LOG_COMP, "subsystem %s created", nqn);
    return 0;
}

/* ---- namespaces (run on the subsystem's reactor) ---- */

struct ns_call {
    struct nvmet_subsys *ss;
    struct vnvme_bdev *bdev;
    uint32_t nsid;
    const uint8_t *nguid, *eui64, *uuid;
    int rc;
};

static void ns_add_on_reactor(void *arg)
{
    struct ns_call *c = arg;
    c->rc = nvmet_subsys_add_ns(c->ss, c->bdev, c->nsid, c->nguid, c->eui64, c->uuid);
}

static void ns_remove_on_reactor(void *arg)
{
    struct ns_call *c = arg;
    c->rc = nvmet_subsys_remove_ns(c->ss, c->nsid);
}

int tgt_ns_add(struct tgt_subsystem *ts, const char *bdev_name, uint32_t nsid, const uint8_t *nguid,
               const uint8_t *eui64, const uint8_t *uuid)
{
    if (!ts || !bdev_name)
        return -EINVAL;
    struct vnvme_bdev *b = vnvme_bdev_get(bdev_name);
    if (!b)
        return -ENODEV;
    struct ns_call c = {.ss = ts->ss, .bdev = b, .nsid = nsid, .nguid = nguid, .eui64 = eui64, .uuid = uuid};
    reactor_call(ts->reactor, ns_add_on_reactor, &c);
    return c.rc;
}

int tgt_ns_remove(struct tgt_subsystem *ts, uint32_t nsid)
{
    if (!ts)
        return -EINVAL;
    struct ns_call c = {.ss = ts->ss, .nsid = nsid};
    reactor_call(ts->reactor, ns_remove_on_reactor, &c);
    return c.rc;
}

/* A bdev grew: its namespaces take the new size and their controllers get a Namespace Attribute Changed notice. */
struct resize_call {
    struct nvmet_subsys *ss;
    struct vnvme_bdev *bdev;
};

static void ns_resized_on_reactor(void *arg)
{
    struct resize_call *c = arg;
    uint64_t blocks = __atomic_load_n(&c->bdev->num_blocks, __ATOMIC_ACQUIRE);
    for (uint32_t nsid = 1; nsid <= NVMET_MAX_NSID; nsid++) {
        struct nvmet_ns *ns = c->ss->ns[nsid];
        if (!ns || ns->bdev != c->bdev || ns->nsze == blocks)
            continue;
        ns->nsze = blocks;
        for (uint32_t i = 0; i < c->ss->nr_ctrlrs; i++)
            nvmet_ctrlr_ns_changed(c->ss->ctrlrs[i], nsid);
    }
}

void tgt_bdev_resized(struct vnvme_bdev *b)
{
    for (struct tgt_subsystem *ts = subsystems; ts; ts = ts->next) {
        struct resize_call c = {.ss = ts->ss, .bdev = b};
        reactor_call(ts->reactor, ns_resized_on_reactor, &c);
    }
}

/* ---- listeners ---- */

struct ctrlr_call {
    struct reactor *reactor;
    struct nvmet_subsys *ss;
    const char *traddr, *group_name; /* for the crash recovery record */
    const char *socket_path;
    const gid_t *socket_group;
    struct nvmet_vfio_user_ctrlr *vc;
    int rc;
};

static void ctrlr_start_on_reactor(void *arg)
{
    struct ctrlr_call *c = arg;
    c->vc = nvmet_vfio_user_ctrlr_create(c->ss, c->socket_path, c->socket_group, &c->rc);
    if (!c->vc)
        return;
    recovery_attach(c->vc, c->ss->nqn, c->traddr, c->group_name);
    reactor_add_ctrlr(c->reactor, c->vc);
}

static void ctrlr_stop_on_reactor(void *arg)
{
    struct ctrlr_call *c = arg;
    reactor_remove_ctrlr(c->reactor, c->vc);
    recovery_detach(c->vc);
    nvmet_vfio_user_ctrlr_destroy(c->vc);
}

/*
 * mkdir -p with mode 0700 for the directories we create, or 0710 and group
 * *group when the socket has one, so its members can reach the socket but not
 * list the directory. Existing directories are left as they are.
 */
static int make_dirs(const char *path, const gid_t *group)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, 0700) == 0) {
            if (group && (chown(buf, (uid_t)-1, *group) < 0 || chmod(buf, 0710) < 0))
                return -errno;
        } else if (errno != EEXIST) {
            return -errno;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static struct tgt_listener *listener_find_any(const char *traddr, struct tgt_subsystem **owner)
{
    for (struct tgt_subsystem *ts = subsystems; ts; ts = ts->next)
        for (struct tgt_listener *l = ts->listeners; l; l = l->next)
            if (strcmp(l->traddr, traddr) == 0) {
                if (owner)
                    *owner = ts;
                return l;
            }
    return NULL;
}

int tgt_socket_path(const char *traddr, char *out, size_t len)
{
    return snprintf(out, len, "%s/%s", traddr, SOCKET_NAME) >= (int)len ? -ENAMETOOLONG : 0;
}

int tgt_listener_add(struct tgt_subsystem *ts, const char *trtype, const char *traddr, const char *socket_group)
{
    const char *group_name = socket_group ? socket_group : default_socket_group;
    gid_t gid;
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

    if (!ts || !traddr || !*traddr || !is_vfio_user(trtype))
        return -EINVAL;
    if (!transport_created) {
        VNVME_ERR(LOG_COMP, "listener %s: transport VFIOUSER has not been created", traddr);
        return -EINVAL;
    }
    if (strlen(traddr) >= sizeof(((struct tgt_listener *)0)->traddr))
        return -ENAMETOOLONG;
    if (tgt_socket_path(traddr, socket_path, sizeof(socket_path)) != 0)
        return -ENAMETOOLONG;
    if (listener_find_any(traddr, NULL))
        return -EEXIST;
    if (socket_group && strlen(socket_group) >= sizeof(((struct tgt_listener *)0)->socket_group))
        return -ENAMETOOLONG;
    if (group_name && vnvme_parse_group(group_name, &gid) != 0) {
        VNVME_ERR(LOG_COMP, "listener %s: no group '%s'", traddr, group_name);
        return -EINVAL;
    }
    int rc = make_dirs(traddr, group_name ? &gid : NULL);
    if (rc) {
        VNVME_ERR(LOG_COMP, "listener %s: cannot create the directory: %s", traddr, strerror(-rc));
        return rc;
    }
    struct tgt_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    snprintf(l->traddr, sizeof(l->traddr), "%s", traddr);
    snprintf(l->socket_group, sizeof(l->socket_group), "%s", socket_group ? socket_group : "");
    struct ctrlr_call c = {.reactor = ts->reactor, .ss = ts->ss, .socket_path = socket_path,
                           .socket_group = group_name ? &gid : NULL, .traddr = traddr,
                           .group_name = socket_group ? socket_group : ""};
    reactor_call(ts->reactor, ctrlr_start_on_reactor, &c);
    if (!c.vc) {
        VNVME_ERR(LOG_COMP, "listener %s: %s", socket_path, strerror(-c.rc));
        free(l);
        return c.rc ? c.rc : -EIO;
    }
    l->vc = c.vc;
    struct tgt_listener **pp = &ts->listeners;
    while (*pp)
        pp = &(*pp)->next;
    *pp = l;
    VNVME_INFO(LOG_COMP, "%s listening on %s", ts->ss->nqn, socket_path);
    return 0;
}

static void listener_stop(struct tgt_subsystem *ts, struct tgt_listener *l)
{
    struct ctrlr_call c = {.reactor = ts->reactor, .vc = l->vc};
    reactor_call(ts->reactor, ctrlr_stop_on_reactor, &c);
    free(l);
}

int tgt_listener_remove(struct tgt_subsystem *ts, const char *trtype, const char *traddr)
{
    if (!ts || !traddr || !is_vfio_user(trtype))
        return -EINVAL;
    for (struct tgt_listener **pp = &ts->listeners; *pp; pp = &(*pp)->next) {
        struct tgt_listener *l = *pp;
        if (strcmp(l->traddr, traddr) != 0)
            continue;
        *pp = l->next;
        listener_stop(ts, l);
        return 0;
    }
    return -ENOENT;
}

/* ---- deletion ---- */

static void subsys_destroy_on_reactor(void *arg)
{
    nvmet_subsys_destroy(arg);
}

int tgt_subsystem_delete(const char *nqn)
{
    for (struct tgt_subsystem **pp = &subsystems; *pp; pp = &(*pp)->next) {
        struct tgt_subsystem *ts = *pp;
        if (strcmp(ts->ss->nqn, nqn) != 0)
            continue;
        *pp = ts->next;
        while (ts->listeners) {
            struct tgt_listener *l = ts->listeners;
            ts->listeners = l->next;
            listener_stop(ts, l);
        }
        /* Releases the namespaces' bdev claims; the bdevs stay registered. */
        reactor_call(ts->reactor, subsys_destroy_on_reactor, ts->ss);
        VNVME_INFO(LOG_COMP, "subsystem %s deleted", nqn);
        free(ts);
        return 0;
    }
    return -ENOENT;
}

void tgt_shutdown(void)
{
    while (subsystems) {
        char nqn[sizeof(subsystems->ss->nqn)];
        snprintf(nqn, sizeof(nqn), "%s", subsystems->ss->nqn);
        tgt_subsystem_delete(nqn);
    }
    transport_created = false;
}
