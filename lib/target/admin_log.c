/* SPDX-License-Identifier: MIT */
/*
 * Get Log Page: Error Information, SMART / Health Information, Firmware Slot
 * Information, Changed Namespace List, Commands Supported and Effects.
 *
 * Each page is built whole (at most 4 KiB) and the requested window
 * [offset, offset + length) is copied out; bytes past the end of the page
 * read as zeroes, as the spec requires.
 */
#include <string.h>

#include "common/ticks.h"
#include "nvmet.h"
#include "vnvme/vfio_user_dma.h"

#define LOG_BUF_LEN 4096u
#define FIRMWARE_REVISION "0.1.0"
#define COMPOSITE_TEMPERATURE_K 293 /* an emulated device has no sensor: room temperature */
#define AVAILABLE_SPARE 100
#define AVAILABLE_SPARE_THRESHOLD 10
#define MS_PER_HOUR (3600ull * 1000ull)

union log_buf {
    struct nvme_error_log_entry errors[NVMET_ERROR_LOG_ENTRIES];
    struct nvme_smart_log smart;
    struct nvme_fw_slot_log fw;
    uint32_t changed_ns[NVMET_CHANGED_NS_MAX];
    struct nvme_cmd_effects_log effects;
    uint8_t raw[LOG_BUF_LEN];
};

static void put_u128(uint8_t dst[16], uint64_t v)
{
    memset(dst, 0, 16);
    memcpy(dst, &v, sizeof(v));
}

static size_t build_error_log(const struct nvmet_ctrlr *c, union log_buf *b)
{
    uint64_t n = c->error_count < NVMET_ERROR_LOG_ENTRIES ? c->error_count : NVMET_ERROR_LOG_ENTRIES;

    for (uint64_t i = 0; i < n; i++) /* newest first */
        b->errors[i] = c->error_log[(c->error_count - 1 - i) % NVMET_ERROR_LOG_ENTRIES];
    return sizeof(b->errors);
}

uint8_t nvmet_smart_critical_warning(const struct nvmet_ctrlr *c)
{
    uint8_t w = 0;

    if (COMPOSITE_TEMPERATURE_K > c->feat.temp_threshold_over ||
        COMPOSITE_TEMPERATURE_K < c->feat.temp_threshold_under)
        w |= 1u << 1;
    return w;
}

uint64_t nvmet_ctrlr_busy_ticks(const struct nvmet_ctrlr *c)
{
    return c->busy_ticks + (c->in_bdev ? vnvme_ticks() - c->busy_since_ticks : 0);
}

static size_t build_smart_log(const struct nvmet_ctrlr *c, union log_buf *b)
{
    struct nvme_smart_log *s = &b->smart;
    uint64_t now = nvmet_now_ms();
    uint64_t on_ms = now > c->power_on_ms_base ? now - c->power_on_ms_base : 0;

    s->critical_warning = nvmet_smart_critical_warning(c);
    s->temperature = COMPOSITE_TEMPERATURE_K;
    s->avail_spare = AVAILABLE_SPARE;
    s->avail_spare_threshold = AVAILABLE_SPARE_THRESHOLD;
    s->percentage_used = 0;
    put_u128(s->data_units_read, c->units_read);
    put_u128(s->data_units_written, c->units_written);
    put_u128(s->host_read_commands, c->read_cmds);
    put_u128(s->host_write_commands, c->write_cmds);
    /* Minutes with I/O outstanding. */
    put_u128(s->controller_busy_time, vnvme_ticks_to_ns(nvmet_ctrlr_busy_ticks(c)) / (60ull * 1000000000ull));
    put_u128(s->power_cycles, 1);
    put_u128(s->power_on_hours, on_ms / MS_PER_HOUR);
    put_u128(s->unsafe_shutdowns, 0);
    put_u128(s->num_error_log_entries, c->error_count);
    return sizeof(b->smart);
}

static size_t build_fw_slot_log(union log_buf *b)
{
    b->fw.afi = 1; /* running from slot 1, no pending activation */
    memset(b->fw.frs[0], ' ', sizeof(b->fw.frs[0]));
    memcpy(b->fw.frs[0], FIRMWARE_REVISION, strlen(FIRMWARE_REVISION));
    return sizeof(b->fw);
}

static size_t build_changed_ns_log(const struct nvmet_ctrlr *c, union log_buf *b)
{
    if (c->nr_changed_ns > NVMET_CHANGED_NS_MAX)
        b->changed_ns[0] = 0xffffffffu; /* overflowed: "rescan everything" */
    else
        memcpy(b->changed_ns, c->changed_ns, c->nr_changed_ns * sizeof(uint32_t));
    return sizeof(b->changed_ns);
}

static size_t build_effects_log(union log_buf *b)
{
    static const uint8_t admin[] = {
        NVME_ADMIN_DELETE_IO_SQ, NVME_ADMIN_CREATE_IO_SQ, NVME_ADMIN_GET_LOG_PAGE, NVME_ADMIN_DELETE_IO_CQ,
        NVME_ADMIN_CREATE_IO_CQ, NVME_ADMIN_IDENTIFY, NVME_ADMIN_ABORT, NVME_ADMIN_SET_FEATURES,
        NVME_ADMIN_GET_FEATURES, NVME_ADMIN_ASYNC_EVENT_REQUEST, NVME_ADMIN_KEEP_ALIVE,
        NVME_ADMIN_DOORBELL_BUFFER_CONFIG,
    };
    for (size_t i = 0; i < sizeof(admin); i++)
        b->effects.acs[admin[i]] = NVME_CMD_EFFECTS_CSUPP;

    b->effects.iocs[NVME_NVM_FLUSH] = NVME_CMD_EFFECTS_CSUPP;
    b->effects.iocs[NVME_NVM_READ] = NVME_CMD_EFFECTS_CSUPP;
    b->effects.iocs[NVME_NVM_COMPARE] = NVME_CMD_EFFECTS_CSUPP;
    b->effects.iocs[NVME_NVM_WRITE] = NVME_CMD_EFFECTS_CSUPP | NVME_CMD_EFFECTS_LBCC;
    b->effects.iocs[NVME_NVM_WRITE_ZEROES] = NVME_CMD_EFFECTS_CSUPP | NVME_CMD_EFFECTS_LBCC;
    b->effects.iocs[NVME_NVM_DATASET_MANAGEMENT] = NVME_CMD_EFFECTS_CSUPP | NVME_CMD_EFFECTS_LBCC;
    return sizeof(b->effects);
}

/* Write log[offset, log_len) to the host and zeroes for the rest of len. */
static uint16_t copy_log_window(struct nvmet_req *req, const uint8_t *log, size_t log_len, uint64_t offset,
                                uint64_t len)
{
    uint16_t st = nvmet_req_map_data(req, len, VFIO_USER_DMA_WRITE_OK);
    if (st)
        return st;

    const uint8_t *src = log + offset;
    uint64_t avail = log_len - offset;
    uint64_t done = 0;
    for (int i = 0; i < req->iovcnt && done < len; i++) {
        uint8_t *dst = req->iov[i].iov_base;
        uint64_t n = req->iov[i].iov_len;
        if (n > len - done)
            n = len - done;
        uint64_t from_log = done < avail ? (avail - done < n ? avail - done : n) : 0;
        memcpy(dst, src + done, from_log);
        memset(dst + from_log, 0, n - from_log);
        done += n;
    }
    return done == len ? 0 : NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_DATA_TRANSFER_ERROR);
}

static uint16_t invalid_field(void)
{
    return NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD) | NVME_STATUS_DNR;
}

void nvmet_execute_get_log_page(struct nvmet_req *req)
{
    struct nvmet_ctrlr *c = nvmet_req_ctrlr(req);
    uint8_t lid = (uint8_t)(req->cmd.cdw10 & 0xff);
    bool rae = req->cmd.cdw10 & (1u << 15);
    uint64_t numd = (uint64_t)(req->cmd.cdw11 & 0xffff) << 16 | (req->cmd.cdw10 >> 16);
    uint64_t len = (numd + 1) * 4;
    uint64_t offset = (uint64_t)req->cmd.cdw13 << 32 | req->cmd.cdw12;
    uint32_t nsid = req->cmd.nsid;
    union log_buf b;
    size_t log_len;

    memset(&b, 0, sizeof(b));
    switch (lid) {
    case NVME_LOG_ERROR:
        log_len = build_error_log(c, &b);
        break;
    case NVME_LOG_SMART:
        /* LPA bit 0 is clear: only controller-wide health information. */
        if (nsid != 0 && nsid != 0xffffffffu) {
            req->rsp.status = invalid_field();
            nvmet_req_complete(req);
            return;
        }
        log_len = build_smart_log(c, &b);
        break;
    case NVME_LOG_FIRMWARE_SLOT:
        log_len = build_fw_slot_log(&b);
        break;
    case NVME_LOG_CHANGED_NS_LIST:
        log_len = build_changed_ns_log(c, &b);
        break;
    case NVME_LOG_COMMAND_EFFECTS:
        log_len = build_effects_log(&b);
        break;
    default:
        nvmet_req_status(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_LOG_PAGE, true);
        nvmet_req_complete(req);
        return;
    }

    if ((offset & 3) || offset > log_len || len > NVMET_MAX_DATA_LEN) {
        req->rsp.status = invalid_field();
        nvmet_req_complete(req);
        return;
    }
    req->rsp.status = copy_log_window(req, b.raw, log_len, offset, len);
    if (req->rsp.status == 0) {
        /*
         * The list is consumed by reading it; a host reading it in pieces
         * keeps it until the piece that reaches its last entry.
         */
        if (lid == NVME_LOG_CHANGED_NS_LIST) {
            uint64_t used = c->nr_changed_ns > NVMET_CHANGED_NS_MAX ? 4 : (uint64_t)c->nr_changed_ns * 4;
            if (offset + len >= used)
                c->nr_changed_ns = 0;
        }
        if (!rae)
            nvmet_aer_log_read(c, lid);
    }
    nvmet_req_complete(req);
}
