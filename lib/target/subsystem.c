/* SPDX-License-Identifier: MIT */
/* Subsystems and their namespaces; controllers are told when a namespace comes or goes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "nvmet.h"

#define CNTLID_MAX 0xffefu /* FFF0h-FFFFh are reserved */

struct nvmet_subsys *nvmet_subsys_create(const char *nqn, const char *serial, const char *model,
                                         uint32_t max_namespaces)
{
    if (!nqn || strlen(nqn) >= sizeof(((struct nvmet_subsys *)0)->nqn))
        return NULL;
    struct nvmet_subsys *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return NULL;
    snprintf(ss->nqn, sizeof(ss->nqn), "%s", nqn);
    snprintf(ss->serial, sizeof(ss->serial), "%s", serial ? serial : "");
    snprintf(ss->model, sizeof(ss->model), "%s", model ? model : "");
    ss->max_namespaces = max_namespaces == 0 || max_namespaces > NVMET_MAX_NSID ? NVMET_MAX_NSID : max_namespaces;
    ss->next_cntlid = 1;
    return ss;
}

void nvmet_subsys_destroy(struct nvmet_subsys *ss)
{
    if (!ss)
        return;
    for (uint32_t i = 0; i < ss->nr_ctrlrs; i++)
        ss->ctrlrs[i]->subsys = NULL;
    ss->nr_ctrlrs = 0; /* nobody left to notify */
    for (uint32_t nsid = 1; nsid <= NVMET_MAX_NSID; nsid++)
        if (ss->ns[nsid])
            nvmet_subsys_remove_ns(ss, nsid);
    free(ss);
}

static int log2_block_size(uint32_t bs)
{
    if (bs < 512 || (bs & (bs - 1)))
        return -1;
    return __builtin_ctz(bs);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

int nvmet_subsys_add_ns(struct nvmet_subsys *ss, struct vnvme_bdev *bdev, uint32_t nsid, const uint8_t *nguid,
                        const uint8_t *eui64, const uint8_t *uuid)
{
    if (!ss || !bdev)
        return -EINVAL;
    int lbads = log2_block_size(bdev->block_size);
    if (lbads < 0 || bdev->num_blocks == 0)
        return -EINVAL;
    if (nsid > ss->max_namespaces)
        return -EINVAL;
    for (uint32_t i = 1; i <= NVMET_MAX_NSID; i++)
        if (ss->ns[i] && ss->ns[i]->bdev == bdev)
            return -EEXIST; /* two namespaces with one bdev would share their identifiers */
    if (nsid == 0) {
        for (uint32_t i = 1; i <= ss->max_namespaces && nsid == 0; i++)
            if (!ss->ns[i])
                nsid = i;
        if (nsid == 0)
            return -ENOSPC;
    } else if (ss->ns[nsid]) {
        return -EEXIST;
    }

    struct nvmet_ns *ns = calloc(1, sizeof(*ns));
    if (!ns)
        return -ENOMEM;
    ns->nsid = nsid;
    ns->bdev = bdev;
    ns->lbads = (uint8_t)lbads;
    ns->nsze = bdev->num_blocks;
    memcpy(ns->uuid, uuid ? uuid : bdev->uuid, sizeof(ns->uuid));
    /* Without explicit identifiers they derive from the UUID, so they stay stable across restarts. */
    if (nguid)
        memcpy(ns->nguid, nguid, sizeof(ns->nguid));
    else
        memcpy(ns->nguid, ns->uuid, sizeof(ns->nguid));
    if (eui64) {
        memcpy(ns->eui64, eui64, sizeof(ns->eui64));
    } else if (!all_zero(ns->uuid, sizeof(ns->uuid))) {
        for (int i = 0; i < 8; i++)
            ns->eui64[i] = ns->uuid[i] ^ ns->uuid[i + 8];
    }
    ss->ns[nsid] = ns;
    bdev->claims++;
    for (uint32_t i = 0; i < ss->nr_ctrlrs; i++)
        nvmet_ctrlr_ns_changed(ss->ctrlrs[i], nsid);
    return (int)nsid;
}

int nvmet_subsys_remove_ns(struct nvmet_subsys *ss, uint32_t nsid)
{
    if (!ss || nsid == 0 || nsid > NVMET_MAX_NSID)
        return -EINVAL;
    struct nvmet_ns *ns = ss->ns[nsid];
    if (!ns)
        return -ENOENT;
    /* New commands stop finding it before its channels and claim go away. */
    ss->ns[nsid] = NULL;
    for (uint32_t i = 0; i < ss->nr_ctrlrs; i++) {
        nvmet_io_release_channel(ss->ctrlrs[i], nsid);
        nvmet_ctrlr_ns_changed(ss->ctrlrs[i], nsid);
    }
    if (ns->bdev->claims)
        ns->bdev->claims--;
    vnvme_qos_destroy(ns->qos); /* its channels, the only users, are gone */
    free(ns);
    return 0;
}

int nvmet_subsys_add_ctrlr(struct nvmet_subsys *ss, struct nvmet_ctrlr *c)
{
    for (uint32_t i = 0; i < ss->nr_ctrlrs; i++)
        if (ss->ctrlrs[i] == c)
            return 0;
    if (ss->nr_ctrlrs >= sizeof(ss->ctrlrs) / sizeof(ss->ctrlrs[0]))
        return -ENOSPC;
    /* CNTLIDs are unique within the subsystem: skip ones still in use after a wrap. */
    for (uint32_t tries = 0; tries <= CNTLID_MAX; tries++) {
        uint16_t id = ss->next_cntlid;
        ss->next_cntlid = id >= CNTLID_MAX ? 1 : (uint16_t)(id + 1);
        bool used = false;
        for (uint32_t i = 0; i < ss->nr_ctrlrs; i++)
            used |= ss->ctrlrs[i]->cntlid == id;
        if (id == 0 || used)
            continue;
        c->cntlid = id;
        c->subsys = ss;
        ss->ctrlrs[ss->nr_ctrlrs++] = c;
        return 0;
    }
    return -ENOSPC;
}

void nvmet_subsys_remove_ctrlr(struct nvmet_subsys *ss, struct nvmet_ctrlr *c)
{
    for (uint32_t i = 0; i < ss->nr_ctrlrs; i++) {
        if (ss->ctrlrs[i] == c) {
            ss->ctrlrs[i] = ss->ctrlrs[--ss->nr_ctrlrs];
            return;
        }
    }
}

void nvmet_ctrlr_ns_changed(struct nvmet_ctrlr *c, uint32_t nsid)
{
    if (c->nr_changed_ns <= NVMET_CHANGED_NS_MAX) {
        bool known = false;
        for (uint32_t i = 0; i < c->nr_changed_ns && !known; i++)
            known = c->changed_ns[i] == nsid;
        if (!known) {
            if (c->nr_changed_ns == NVMET_CHANGED_NS_MAX)
                c->nr_changed_ns = NVMET_CHANGED_NS_MAX + 1; /* overflow: the log reports FFFFFFFFh */
            else
                c->changed_ns[c->nr_changed_ns++] = nsid;
        }
    }
    if (c->feat.async_event_cfg & NVME_AEN_CFG_NS_ATTR)
        nvmet_aer_post(c, NVME_AER_TYPE_NOTICE, NVME_AER_INFO_NOTICE_NS_ATTR_CHANGED, NVME_LOG_CHANGED_NS_LIST);
}
