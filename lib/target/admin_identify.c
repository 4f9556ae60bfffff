/* SPDX-License-Identifier: MIT */
/*
 * Identify: controller (CNS 01h), namespace (00h), active namespace list
 * (02h) and namespace identification descriptors (03h). Every structure is
 * 4096 bytes and built on the stack; this is the admin path, not I/O.
 */
#include <string.h>

#include "nvmet.h"

#define VENDOR_ID 0x4e56 /* vnvme's own vendor id space ("NV"), as on the PCI function */
#define FIRMWARE_REVISION "0.1.0"
#define IDENTIFY_LEN 4096u
#define NS_LIST_MAX (IDENTIFY_LEN / sizeof(uint32_t))

/* ASCII fields of Identify Controller are space padded, never NUL terminated. */
static void copy_padded(char *dst, size_t dst_len, const char *src)
{
    size_t n = strnlen(src, dst_len);
    memcpy(dst, src, n);
    memset(dst + n, ' ', dst_len - n);
}

static bool nsid_active(const struct nvmet_subsys *ss, uint32_t nsid)
{
    return nsid >= 1 && nsid <= ss->max_namespaces && nsid <= NVMET_MAX_NSID && ss->ns[nsid] != NULL;
}

static void build_id_ctrl(const struct nvmet_ctrlr *c, struct nvme_id_ctrl *id)
{
    const struct nvmet_subsys *ss = c->subsys;

    id->vid = VENDOR_ID;
    id->ssvid = VENDOR_ID;
    copy_padded(id->sn, sizeof(id->sn), ss->serial);
    copy_padded(id->mn, sizeof(id->mn), ss->model);
    copy_padded(id->fr, sizeof(id->fr), FIRMWARE_REVISION);
    id->rab = 6;
    id->cmic = 0;
    id->mdts = NVMET_MDTS;
    id->cntlid = c->cntlid;
    id->ver = c->vs ? c->vs : NVME_VS(2, 0, 0);
    id->oaes = NVME_CTRL_OAES_NS_ATTR;
    id->cntrltype = 1; /* I/O controller */

    id->oacs = NVME_CTRL_OACS_DBBUF; /* Doorbell Buffer Config; no namespace management, format, firmware */
    id->acl = 3;           /* 0's based: 4 concurrent Aborts */
    id->aerl = NVMET_AERL; /* 0's based */
    id->frmw = 0x03;       /* one slot, slot 1 read-only */
    id->lpa = NVME_CTRL_LPA_CMD_EFFECTS | NVME_CTRL_LPA_EXTENDED;
    id->elpe = NVMET_ERROR_LOG_ENTRIES - 1;
    id->npss = 0;
    id->wctemp = 343;
    id->cctemp = 373;
    id->kas = 10; /* Keep Alive granularity, 100 ms units */
    id->psd[0].mp = 2500; /* centiwatts: a made-up 25 W that no host will throttle against */

    id->sqes = 0x66;
    id->cqes = 0x44;
    id->maxcmd = NVMET_MAX_REQS_PER_SQ;
    id->nn = ss->max_namespaces;
    id->oncs = NVME_CTRL_ONCS_COMPARE | NVME_CTRL_ONCS_DSM | NVME_CTRL_ONCS_WRITE_ZEROES |
               NVME_CTRL_ONCS_SAVE_FEATURES | NVME_CTRL_ONCS_TIMESTAMP;
    id->fuses = 0;
    /*
     * Reported for the whole controller, not per bdev: hot-added namespaces
     * would otherwise change it under a running host. Flush on a bdev
     * without a cache is simply a no-op.
     */
    id->vwc = NVME_CTRL_VWC_PRESENT | NVME_CTRL_VWC_NSID_FFFFFFFF;
    id->awun = 0;
    id->awupf = 0;
    id->sgls = NVME_CTRL_SGLS_SUPPORTED;
    strncpy(id->subnqn, ss->nqn, sizeof(id->subnqn) - 1);
}

static void build_id_ns(const struct nvmet_ns *ns, struct nvme_id_ns *id)
{
    id->nsze = ns->nsze;
    id->ncap = ns->nsze;
    id->nuse = ns->nsze;
    id->nsfeat = 0;
    id->nlbaf = 0; /* 0's based: one format */
    id->flbas = 0;
    id->lbaf[0].lbads = ns->lbads;
    /* Deallocated blocks read as zeroes; Write Zeroes with DEAC deallocates. */
    id->dlfeat = 0x01 | 0x08;
    id->nmic = 0;
    memcpy(id->nguid, ns->nguid, sizeof(id->nguid));
    memcpy(id->eui64, ns->eui64, sizeof(id->eui64));
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static size_t add_descriptor(uint8_t *buf, size_t off, uint8_t type, const void *val, uint8_t len)
{
    buf[off] = type;
    buf[off + 1] = len;
    memcpy(buf + off + 4, val, len);
    return off + 4u + len;
}

static void build_ns_descriptors(const struct nvmet_ns *ns, uint8_t *buf)
{
    size_t off = 0;
    uint8_t csi_nvm = 0;

    /* An all-zero identifier means "none"; reporting it would make hosts see duplicates. */
    if (!all_zero(ns->eui64, sizeof(ns->eui64)))
        off = add_descriptor(buf, off, NVME_NIDT_EUI64, ns->eui64, sizeof(ns->eui64));
    if (!all_zero(ns->nguid, sizeof(ns->nguid)))
        off = add_descriptor(buf, off, NVME_NIDT_NGUID, ns->nguid, sizeof(ns->nguid));
    if (!all_zero(ns->uuid, sizeof(ns->uuid)))
        off = add_descriptor(buf, off, NVME_NIDT_UUID, ns->uuid, sizeof(ns->uuid));
    add_descriptor(buf, off, NVME_NIDT_CSI, &csi_nvm, 1);
}

static uint16_t build_active_ns_list(const struct nvmet_subsys *ss, uint32_t start, uint32_t *list)
{
    /* The list holds NSIDs greater than start, so these two leave nothing to list. */
    if (start >= 0xfffffffeu)
        return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_NAMESPACE_OR_FORMAT) | NVME_STATUS_DNR;
    uint32_t n = 0;
    for (uint32_t nsid = start + 1; nsid <= NVMET_MAX_NSID && n < NS_LIST_MAX; nsid++)
        if (nsid_active(ss, nsid))
            list[n++] = nsid;
    return 0;
}

void nvmet_execute_identify(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    const struct nvmet_subsys *ss = c->subsys;
    uint8_t cns = (uint8_t)(req->cmd.cdw10 & 0xff);
    uint32_t nsid = req->cmd.nsid;
    union {
        struct nvme_id_ctrl ctrl;
        struct nvme_id_ns ns;
        uint32_t ns_list[NS_LIST_MAX];
        uint8_t raw[IDENTIFY_LEN];
    } buf;
    uint16_t status = 0;

    memset(&buf, 0, sizeof(buf));
    switch (cns) {
    case NVME_ID_CNS_CTRL:
        build_id_ctrl(c, &buf.ctrl);
        break;
    case NVME_ID_CNS_NS:
        /*
         * FFFFFFFFh asks for capabilities common to all namespaces, which is
         * defined only for controllers with Namespace Management (we have none).
         * A valid but inactive NSID gets a zero-filled structure.
         */
        if (nsid == 0 || nsid > ss->max_namespaces || nsid > NVMET_MAX_NSID)
            status = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_NAMESPACE_OR_FORMAT) | NVME_STATUS_DNR;
        else if (ss->ns[nsid])
            build_id_ns(ss->ns[nsid], &buf.ns);
        break;
    case NVME_ID_CNS_ACTIVE_NS_LIST:
        status = build_active_ns_list(ss, nsid, buf.ns_list);
        break;
    case NVME_ID_CNS_NS_DESC_LIST:
        if (!nsid_active(ss, nsid))
            status = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_NAMESPACE_OR_FORMAT) | NVME_STATUS_DNR;
        else
            build_ns_descriptors(ss->ns[nsid], buf.raw);
        break;
    default:
        status = NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD) | NVME_STATUS_DNR;
        break;
    }

    if (status == 0)
        status = nvmet_req_copy_to_host(req, buf.raw, IDENTIFY_LEN);
    req->rsp.status = status;
    nvmet_req_complete(req);
}
