/* SPDX-License-Identifier: MIT */
/*
 * Get Features / Set Features. No feature is namespace specific here, so
 * every value lives in c->feat (current) and c->feat_saved (what Set
 * Features with SV stored, for the features marked in feat_saved_fids: it
 * survives controller resets, not the process).
 */
#include <string.h>

#include "nvmet.h"

#define NR_IRQ_VECTORS (sizeof(((struct nvmet_features *)0)->int_vector_cfg) / sizeof(uint32_t))
#define DEFAULT_TEMP_OVER_K 343 /* = WCTEMP */
#define KEEP_ALIVE_GRANULARITY_MS 1000u /* KAS = 10 (100 ms units) */
#define AEN_CFG_SUPPORTED (0x1fu | NVME_AEN_CFG_NS_ATTR) /* SMART warnings 4:0, namespace attribute notice */
#define TIMESTAMP_MASK ((1ull << 48) - 1)
#define TIMESTAMP_ORIGIN_HOST (1u << 1) /* attributes bits 3:1 = 001b: set by Set Features */

struct feature_desc {
    uint8_t fid;
    bool saveable;
};

static const struct feature_desc features[] = {
    {NVME_FEAT_ARBITRATION, true},
    {NVME_FEAT_POWER_MANAGEMENT, true},
    {NVME_FEAT_TEMPERATURE_THRESHOLD, true},
    {NVME_FEAT_ERROR_RECOVERY, true},
    {NVME_FEAT_VOLATILE_WRITE_CACHE, true},
    {NVME_FEAT_NUMBER_OF_QUEUES, false},
    {NVME_FEAT_INTERRUPT_COALESCING, true},
    {NVME_FEAT_INTERRUPT_VECTOR_CONFIGURATION, false},
    {NVME_FEAT_WRITE_ATOMICITY, true},
    {NVME_FEAT_ASYNC_EVENT_CONFIGURATION, true},
    {NVME_FEAT_TIMESTAMP, false},
    {NVME_FEAT_KEEP_ALIVE_TIMER, false},
    {NVME_FEAT_HOST_BEHAVIOR_SUPPORT, false},
};

static const struct feature_desc *find_feature(uint8_t fid)
{
    for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++)
        if (features[i].fid == fid)
            return &features[i];
    return NULL;
}

static void default_features(struct nvmet_features *f)
{
    memset(f, 0, sizeof(*f));
    f->temp_threshold_over = DEFAULT_TEMP_OVER_K;
    f->temp_threshold_under = 0;
    f->volatile_wc = 1; /* write cache enabled: Flush is what makes data durable */
    f->num_queues = (NVMET_MAX_IO_QUEUES - 1) << 16 | (NVMET_MAX_IO_QUEUES - 1);
    f->num_queues_set = false;
    /* int_vector_cfg: every vector's Coalescing Disable clear, so Interrupt Coalescing applies to all I/O CQs. */
}

static void apply_saved(struct nvmet_features *cur, const struct nvmet_features *saved, uint8_t fid)
{
    switch (fid) {
    case NVME_FEAT_ARBITRATION:
        cur->arbitration = saved->arbitration;
        break;
    case NVME_FEAT_POWER_MANAGEMENT:
        cur->power_management = saved->power_management;
        break;
    case NVME_FEAT_TEMPERATURE_THRESHOLD:
        cur->temp_threshold_over = saved->temp_threshold_over;
        cur->temp_threshold_under = saved->temp_threshold_under;
        break;
    case NVME_FEAT_ERROR_RECOVERY:
        cur->error_recovery = saved->error_recovery;
        break;
    case NVME_FEAT_VOLATILE_WRITE_CACHE:
        cur->volatile_wc = saved->volatile_wc;
        break;
    case NVME_FEAT_INTERRUPT_COALESCING:
        cur->int_coalescing = saved->int_coalescing;
        break;
    case NVME_FEAT_WRITE_ATOMICITY:
        cur->write_atomicity = saved->write_atomicity;
        break;
    case NVME_FEAT_ASYNC_EVENT_CONFIGURATION:
        cur->async_event_cfg = saved->async_event_cfg;
        break;
    default:
        break;
    }
}

void nvmet_features_reset(struct nvmet_ctrlr *c)
{
    default_features(&c->feat);
    for (uint8_t fid = 0; fid < 32; fid++)
        if (c->feat_saved_fids & (1u << fid))
            apply_saved(&c->feat, &c->feat_saved, fid);
}

static uint16_t status_of(uint8_t sct, uint8_t sc)
{
    return NVME_STATUS(sct, sc) | NVME_STATUS_DNR;
}

static bool io_queues_exist(const struct nvmet_ctrlr *c)
{
    for (uint32_t q = 1; q <= NVMET_MAX_IO_QUEUES; q++)
        if (c->sqs[q].created || c->cqs[q].created)
            return true;
    return false;
}

static uint64_t timestamp_now(const struct nvmet_ctrlr *c, uint8_t *attributes)
{
    uint64_t now = nvmet_now_ms();

    if (c->feat.timestamp_set) {
        *attributes = TIMESTAMP_ORIGIN_HOST;
        return (c->feat.timestamp_ms + (now - c->feat.timestamp_set_at_ms)) & TIMESTAMP_MASK;
    }
    /* Never set: time since the controller was powered on (origin 000b). */
    *attributes = 0;
    return (now > c->power_on_ms_base ? now - c->power_on_ms_base : 0) & TIMESTAMP_MASK;
}

/* Value of a feature from f (current, default or saved) for Get Features. */
static uint32_t feature_value(const struct nvmet_features *f, uint8_t fid, uint32_t cdw11)
{
    switch (fid) {
    case NVME_FEAT_ARBITRATION:
        return f->arbitration;
    case NVME_FEAT_POWER_MANAGEMENT:
        return f->power_management;
    case NVME_FEAT_TEMPERATURE_THRESHOLD:
        return ((cdw11 >> 20) & 3) == 1 ? f->temp_threshold_under : f->temp_threshold_over;
    case NVME_FEAT_ERROR_RECOVERY:
        return f->error_recovery;
    case NVME_FEAT_VOLATILE_WRITE_CACHE:
        return f->volatile_wc;
    case NVME_FEAT_NUMBER_OF_QUEUES:
        return f->num_queues;
    case NVME_FEAT_INTERRUPT_COALESCING:
        return f->int_coalescing;
    case NVME_FEAT_INTERRUPT_VECTOR_CONFIGURATION: {
        uint16_t iv = (uint16_t)(cdw11 & 0xffff);
        return iv | (iv < NR_IRQ_VECTORS ? f->int_vector_cfg[iv] : 0);
    }
    case NVME_FEAT_WRITE_ATOMICITY:
        return f->write_atomicity;
    case NVME_FEAT_ASYNC_EVENT_CONFIGURATION:
        return f->async_event_cfg;
    case NVME_FEAT_KEEP_ALIVE_TIMER:
        return f->keep_alive_ms;
    default:
        return 0;
    }
}

/* Fields in cdw11 that Get Features uses to select among several values. */
static uint16_t check_get_selector(uint8_t fid, uint32_t cdw11)
{
    if (fid == NVME_FEAT_TEMPERATURE_THRESHOLD) {
        uint32_t tmpsel = (cdw11 >> 16) & 0xf, thsel = (cdw11 >> 20) & 3;
        if ((tmpsel != 0 && tmpsel != 0xf) || thsel > 1)
            return status_of(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
    }
    if (fid == NVME_FEAT_INTERRUPT_VECTOR_CONFIGURATION && (cdw11 & 0xffff) >= NR_IRQ_VECTORS)
        return status_of(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
    return 0;
}

static uint16_t get_data(struct nvmet_req *req, uint8_t fid, uint8_t sel)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);

    if (fid == NVME_FEAT_TIMESTAMP) {
        uint8_t ts[8] = {0};
        uint64_t v = timestamp_now(c, &ts[6]);
        memcpy(ts, &v, 6);
        return nvmet_req_copy_to_host(req, ts, sizeof(ts));
    }
    /* Host Behavior Support: not saveable, so saved = default = all zero. */
    uint8_t zero[sizeof(c->feat.host_behavior)] = {0};
    return nvmet_req_copy_to_host(req, sel == NVME_FEAT_SEL_CURRENT ? c->feat.host_behavior : zero,
                                  sizeof(zero));
}

static bool feature_has_data(uint8_t fid)
{
    return fid == NVME_FEAT_TIMESTAMP || fid == NVME_FEAT_HOST_BEHAVIOR_SUPPORT;
}

static uint16_t check_nsid(uint32_t nsid)
{
    if (nsid != 0 && nsid != 0xffffffffu)
        return status_of(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_FEATURE_NOT_NAMESPACE_SPECIFIC);
    return 0;
}

void nvmet_execute_get_features(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    uint8_t fid = (uint8_t)(req->cmd.cdw10 & 0xff);
    uint8_t sel = (uint8_t)((req->cmd.cdw10 >> 8) & 7);
    uint32_t cdw11 = req->cmd.cdw11;
    const struct feature_desc *d = find_feature(fid);
    uint16_t st;

    if (!d || sel > NVME_FEAT_SEL_SUPPORTED) {
        st = status_of(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
        goto out;
    }
    if ((st = check_nsid(req->cmd.nsid)) != 0)
        goto out;
    if (sel == NVME_FEAT_SEL_SUPPORTED) {
        req->rsp.cdw0 = NVME_FEAT_CAP_CHANGEABLE | (d->saveable ? NVME_FEAT_CAP_SAVEABLE : 0);
        goto out;
    }
    if ((st = check_get_selector(fid, cdw11)) != 0)
        goto out;
    if (feature_has_data(fid)) {
        st = get_data(req, fid, sel);
        goto out;
    }

    struct nvmet_features other;
    const struct nvmet_features *f = &c->feat;
    if (sel != NVME_FEAT_SEL_CURRENT) {
        /* Never saved (or not saveable): the saved value is the default. */
        default_features(&other);
        if (sel == NVME_FEAT_SEL_SAVED && (c->feat_saved_fids & (1u << fid)))
            apply_saved(&other, &c->feat_saved, fid);
        f = &other;
    }
    req->rsp.cdw0 = feature_value(f, fid, cdw11);
out:
    req->rsp.status = st;
    nvmet_req_complete(req);
}

static uint16_t set_number_of_queues(struct nvmet_ctrlr *c, struct nvmet_req *req, uint32_t cdw11)
{
    uint32_t nsqr = cdw11 & 0xffff, ncqr = cdw11 >> 16;

    if (nsqr == 0xffff || ncqr == 0xffff)
        return status_of(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
    /* Queue ids already handed out were validated against the old counts. */
    if (io_queues_exist(c))
        return status_of(NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR);
    if (nsqr > NVMET_MAX_IO_QUEUES - 1)
        nsqr = NVMET_MAX_IO_QUEUES - 1;
    if (ncqr > NVMET_MAX_IO_QUEUES - 1)
        ncqr = NVMET_MAX_IO_QUEUES - 1;
    c->feat.num_queues = ncqr << 16 | nsqr;
    c->feat.num_queues_set = true;
    req->rsp.cdw0 = c->feat.num_queues;
    return 0;
}

static uint16_t set_temperature_threshold(struct nvmet_ctrlr *c, uint32_t cdw11, bool save)
{
    uint32_t tmpth = cdw11 & 0xffff, tmpsel = (cdw11 >> 16) & 0xf, thsel = (cdw11 >> 20) & 3;

    if ((tmpsel != 0 && tmpsel != 0xf) || thsel > 1)
        return status_of(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
    uint8_t before = nvmet_smart_critical_warning(c);
    if (thsel == 0)
        c->feat.temp_threshold_over = tmpth;
    else
        c->feat.temp_threshold_under = tmpth;
    if (save) {
        apply_saved(&c->feat_saved, &c->feat, NVME_FEAT_TEMPERATURE_THRESHOLD);
        c->feat_saved_fids |= 1u << NVME_FEAT_TEMPERATURE_THRESHOLD;
    }
    /* Moving a threshold past the (constant) temperature is the only way it ever crosses one. */
    if ((nvmet_smart_critical_warning(c) & ~before) & (1u << 1))
        nvmet_aer_post(c, NVME_AER_TYPE_SMART, 0x01, NVME_LOG_SMART);
    return 0;
}

static uint16_t set_data(struct nvmet_req *req, uint8_t fid)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);

    if (fid == NVME_FEAT_TIMESTAMP) {
        uint8_t ts[8];
        uint16_t st = nvmet_req_copy_from_host(req, ts, sizeof(ts));
        if (st)
            return st;
        uint64_t v = 0;
        memcpy(&v, ts, 6);
        c->feat.timestamp_ms = v;
        c->feat.timestamp_set_at_ms = nvmet_now_ms();
        c->feat.timestamp_set = true;
        return 0;
    }
    uint8_t hbs[sizeof(c->feat.host_behavior)];
    uint16_t st = nvmet_req_copy_from_host(req, hbs, sizeof(hbs));
    if (st)
        return st;
    memcpy(c->feat.host_behavior, hbs, sizeof(hbs));
    return 0;
}

/* Apply a value-in-cdw11 feature to f; returns a status (nothing changes on failure). */
static uint16_t set_simple(struct nvmet_features *f, uint8_t fid, uint32_t cdw11)
{
    switch (fid) {
    case NVME_FEAT_ARBITRATION:
        f->arbitration = cdw11 & 0xffffff07u;
        return 0;
    case NVME_FEAT_POWER_MANAGEMENT:
        if (cdw11 & 0x1f) /* NPSS = 0: power state 0 is the only one */
            return status_of(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
        f->power_management = cdw11 & 0xff;
        return 0;
    case NVME_FEAT_ERROR_RECOVERY:
        if (cdw11 & (1u << 16)) /* DULBE needs NSFEAT.DAE, which we do not report */
            return status_of(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
        f->error_recovery = cdw11 & 0xffff;
        return 0;
    case NVME_FEAT_VOLATILE_WRITE_CACHE:
        f->volatile_wc = cdw11 & 1u;
        return 0;
    case NVME_FEAT_INTERRUPT_COALESCING:
        f->int_coalescing = cdw11 & 0xffff;
        return 0;
    case NVME_FEAT_WRITE_ATOMICITY:
        f->write_atomicity = cdw11 & 1u;
        return 0;
    case NVME_FEAT_ASYNC_EVENT_CONFIGURATION:
        f->async_event_cfg = cdw11 & AEN_CFG_SUPPORTED;
        return 0;
    default:
        return status_of(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
    }
}

void nvmet_execute_set_features(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    uint8_t fid = (uint8_t)(req->cmd.cdw10 & 0xff);
    bool save = req->cmd.cdw10 & (1u << 31);
    uint32_t cdw11 = req->cmd.cdw11;
    const struct feature_desc *d = find_feature(fid);
    uint16_t st = 0;

    if (!d) {
        st = status_of(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
        goto out;
    }
    if ((st = check_nsid(req->cmd.nsid)) != 0)
        goto out;
    if (save && !d->saveable) {
        st = status_of(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_FEATURE_ID_NOT_SAVEABLE);
        goto out;
    }

    switch (fid) {
    case NVME_FEAT_NUMBER_OF_QUEUES:
        st = set_number_of_queues(c, req, cdw11);
        break;
    case NVME_FEAT_TEMPERATURE_THRESHOLD:
        st = set_temperature_threshold(c, cdw11, save);
        break;
    case NVME_FEAT_INTERRUPT_VECTOR_CONFIGURATION: {
        uint16_t iv = (uint16_t)(cdw11 & 0xffff);
        if (iv >= NR_IRQ_VECTORS) {
            st = status_of(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
            break;
        }
        c->feat.int_vector_cfg[iv] = cdw11 & (1u << 16);
        break;
    }
    case NVME_FEAT_KEEP_ALIVE_TIMER: {
        uint64_t kato = cdw11;
        /* Rounded up to the granularity we report in KAS; Get returns the rounded value. */
        kato = (kato + KEEP_ALIVE_GRANULARITY_MS - 1) / KEEP_ALIVE_GRANULARITY_MS * KEEP_ALIVE_GRANULARITY_MS;
        if (kato > UINT32_MAX)
            kato = UINT32_MAX / KEEP_ALIVE_GRANULARITY_MS * KEEP_ALIVE_GRANULARITY_MS;
        c->feat.keep_alive_ms = (uint32_t)kato;
        c->keep_alive_deadline_ms = kato ? nvmet_now_ms() + kato : 0;
        break;
    }
    case NVME_FEAT_TIMESTAMP:
    case NVME_FEAT_HOST_BEHAVIOR_SUPPORT:
        st = set_data(req, fid);
        break;
    default:
        st = set_simple(&c->feat, fid, cdw11);
        if (st == 0 && save) {
            apply_saved(&c->feat_saved, &c->feat, fid);
            c->feat_saved_fids |= 1u << fid;
        }
        break;
    }
out:
    req->rsp.status = st;
    nvmet_req_complete(req);
}
