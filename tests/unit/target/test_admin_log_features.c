/* SPDX-License-Identifier: MIT */
/* Get Log Page (every log, offsets, lengths, clearing) and Get/Set Features. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "admin_harness.h"
#include "fake_transport.h"


#define RAE (1u << 15)

/* Get Log Page of len bytes (a multiple of 4) at offset into a 0xAA-filled buffer. */
static uint16_t get_log(struct ft *ft, uint8_t lid, uint32_t nsid, uint32_t flags, uint64_t offset, uint32_t len,
                        uint8_t **data)
{
    uint32_t buf_len = len > 4096 ? len : 4096;
    uint64_t buf = ft_alloc(ft, buf_len, 4096);
    memset(ft_ptr(ft, buf), 0xaa, buf_len);
    uint32_t numd = len / 4 - 1;
    struct nvme_sqe sqe;
    sqe_init(&sqe, NVME_ADMIN_GET_LOG_PAGE);
    sqe.nsid = nsid;
    sqe.dptr.prp1 = buf;
    if (len > 4096) {
        /* Two pages at most in these tests: PRP2 points at the second. */
        assert_true(len <= 8192);
        sqe.dptr.prp2 = buf + 4096;
    }
    sqe.cdw10 = lid | flags | (numd & 0xffff) << 16;
    sqe.cdw11 = numd >> 16;
    sqe.cdw12 = (uint32_t)offset;
    sqe.cdw13 = (uint32_t)(offset >> 32);
    *data = ft_ptr(ft, buf);
    return admin(ft, &sqe, NULL);
}

static uint16_t get_feature(struct ft *ft, uint8_t fid, uint8_t sel, uint32_t cdw11, uint32_t *result)
{
    struct nvme_sqe sqe;
    struct nvme_cqe cqe;
    sqe_init(&sqe, NVME_ADMIN_GET_FEATURES);
    sqe.cdw10 = fid | (uint32_t)sel << 8;
    sqe.cdw11 = cdw11;
    uint16_t st = admin(ft, &sqe, &cqe);
    if (result)
        *result = cqe.cdw0;
    return st;
}

static uint16_t set_feature(struct ft *ft, uint8_t fid, bool save, uint32_t cdw11, uint32_t *result)
{
    struct nvme_sqe sqe;
    struct nvme_cqe cqe;
    sqe_init(&sqe, NVME_ADMIN_SET_FEATURES);
    sqe.cdw10 = fid | (save ? 1u << 31 : 0);
    sqe.cdw11 = cdw11;
    uint16_t st = admin(ft, &sqe, &cqe);
    if (result)
        *result = cqe.cdw0;
    return st;
}

static uint16_t feature_data(struct ft *ft, uint8_t opc, uint8_t fid, uint32_t nsid, uint64_t buf)
{
    struct nvme_sqe sqe;
    sqe_init(&sqe, opc);
    sqe.nsid = nsid;
    sqe.cdw10 = fid;
    sqe.dptr.prp1 = buf;
    return admin(ft, &sqe, NULL);
}

static uint16_t bad_opcode(struct ft *ft, uint16_t *cid)
{
    struct nvme_sqe sqe;
    sqe_init(&sqe, NVME_ADMIN_FORMAT_NVM);
    sqe.nsid = 1;
    *cid = sqe.cid;
    return admin(ft, &sqe, NULL);
}

/* ---- logs ---- */

static void error_log_newest_first(void **state)
{
    struct ft *ft = *state;
    uint8_t *p;
    uint16_t cid1, cid2;
    assert_int_equal(bad_opcode(ft, &cid1), SC(GENERIC, INVALID_OPCODE));
    assert_int_equal(bad_opcode(ft, &cid2), SC(GENERIC, INVALID_OPCODE));

    assert_int_equal(get_log(ft, NVME_LOG_ERROR, 0, 0, 0, 4096, &p), 0);
    const struct nvme_error_log_entry *e = (const void *)p;
    assert_int_equal(e[0].error_count, 2);
    assert_int_equal(e[0].cid, cid2);
    assert_int_equal(e[0].sqid, 0);
    assert_int_equal(e[0].nsid, 1);
    assert_int_equal(e[0].status >> 1, SC(GENERIC, INVALID_OPCODE) | NVME_STATUS_DNR);
    assert_int_equal(e[0].status & 1, 0); /* phase tag is zero in the log */
    assert_int_equal(e[1].error_count, 1);
    assert_int_equal(e[1].cid, cid1);
    assert_int_equal(e[2].error_count, 0); /* unused entries are zero */

    /* A request longer than the log: the tail is zero filled. */
    assert_int_equal(get_log(ft, NVME_LOG_ERROR, 0, 0, 0, 8192, &p), 0);
    for (int i = 4096; i < 8192; i++)
        assert_int_equal(p[i], 0);
}

static void error_log_wraps(void **state)
{
    struct ft *ft = *state;
    uint8_t *p;
    uint16_t cid, last = 0;
    for (unsigned i = 0; i < NVMET_ERROR_LOG_ENTRIES + 5; i++) {
        bad_opcode(ft, &cid);
        last = cid;
    }
    assert_int_equal(get_log(ft, NVME_LOG_ERROR, 0, 0, 0, 4096, &p), 0);
    const struct nvme_error_log_entry *e = (const void *)p;
    assert_int_equal(e[0].error_count, NVMET_ERROR_LOG_ENTRIES + 5);
    assert_int_equal(e[0].cid, last);
    assert_int_equal(e[NVMET_ERROR_LOG_ENTRIES - 1].error_count, 6); /* the oldest kept */
}

static void smart_log(void **state)
{
    struct ft *ft = *state;
    uint8_t *p;
    uint16_t cid;
    bad_opcode(ft, &cid);

    assert_int_equal(get_log(ft, NVME_LOG_SMART, 0xffffffffu, 0, 0, 512, &p), 0);
    struct nvme_smart_log s;
    memcpy(&s, p, sizeof(s));
    assert_int_equal(s.critical_warning, 0);
    assert_true(s.temperature > 273 && s.temperature < 343);
    assert_int_equal(s.avail_spare, 100);
    assert_int_equal(s.avail_spare_threshold, 10);
    assert_int_equal(s.power_cycles[0], 1);
    assert_int_equal(s.num_error_log_entries[0], 1);
    assert_int_equal(get_log(ft, NVME_LOG_SMART, 0, 0, 0, 512, &p), 0);

    /* Not supported per namespace (LPA bit 0 clear). */
    assert_int_equal(ft_add_ns(ft, 1, 16, 512, NULL), 1);
    assert_int_equal(get_log(ft, NVME_LOG_SMART, 1, 0, 0, 512, &p), SC(GENERIC, INVALID_FIELD));
}

static void smart_log_offsets(void **state)
{
    struct ft *ft = *state;
    uint8_t *full, *part;
    assert_int_equal(get_log(ft, NVME_LOG_SMART, 0, 0, 0, 512, &full), 0);

    /* 8 bytes at offset 4: NUMD = 1. */
    assert_int_equal(get_log(ft, NVME_LOG_SMART, 0, 0, 4, 8, &part), 0);
    assert_memory_equal(part, full + 4, 8);
    assert_int_equal(part[8], 0xaa); /* nothing beyond the requested length */

    /* Window running past the end: the rest is zeroes. */
    assert_int_equal(get_log(ft, NVME_LOG_SMART, 0, 0, 504, 64, &part), 0);
    assert_memory_equal(part, full + 504, 8);
    for (int i = 8; i < 64; i++)
        assert_int_equal(part[i], 0);

    /* Offset at the end of the log is still valid (all zeroes). */
    assert_int_equal(get_log(ft, NVME_LOG_SMART, 0, 0, 512, 4, &part), 0);
    assert_int_equal(part[0], 0);

    assert_int_equal(get_log(ft, NVME_LOG_SMART, 0, 0, 2, 8, &part), SC(GENERIC, INVALID_FIELD));
    assert_int_equal(get_log(ft, NVME_LOG_SMART, 0, 0, 516, 4, &part), SC(GENERIC, INVALID_FIELD));
    assert_int_equal(get_log(ft, NVME_LOG_SMART, 0, 0, 1ull << 32, 4, &part), SC(GENERIC, INVALID_FIELD));
}

static void firmware_slot_log(void **state)
{
    struct ft *ft = *state;
    uint8_t *p;
    assert_int_equal(get_log(ft, NVME_LOG_FIRMWARE_SLOT, 0, 0, 0, 512, &p), 0);
    const struct nvme_fw_slot_log *fw = (const void *)p;
    assert_int_equal(fw->afi, 1);
    assert_memory_equal(fw->frs[0], "0.1.0   ", 8);
    assert_int_equal(fw->frs[1][0], 0);
}

static void changed_namespace_list_clears_on_read(void **state)
{
    struct ft *ft = *state;
    uint8_t *p;
    assert_int_equal(ft_add_ns(ft, 2, 16, 512, NULL), 2);
    assert_int_equal(ft_add_ns(ft, 9, 16, 512, NULL), 9);

    /* Reading only the first entry keeps the list. */
    assert_int_equal(get_log(ft, NVME_LOG_CHANGED_NS_LIST, 0, 0, 0, 4, &p), 0);
    assert_int_equal(((const uint32_t *)p)[0], 2);
    assert_int_equal(get_log(ft, NVME_LOG_CHANGED_NS_LIST, 0, 0, 0, 4096, &p), 0);
    const uint32_t *list = (const void *)p;
    assert_int_equal(list[0], 2);
    assert_int_equal(list[1], 9);
    assert_int_equal(list[2], 0);
    assert_int_equal(list[1023], 0);

    assert_int_equal(get_log(ft, NVME_LOG_CHANGED_NS_LIST, 0, 0, 0, 4096, &p), 0);
    assert_int_equal(((const uint32_t *)p)[0], 0);
}

static void changed_namespace_list_overflow(void **state)
{
    struct ft *ft = *state;
    uint8_t *p;
    for (uint32_t nsid = 1; nsid <= NVMET_CHANGED_NS_MAX + 1; nsid++)
        nvmet_ctrlr_ns_changed(ft->c, nsid);
    assert_int_equal(get_log(ft, NVME_LOG_CHANGED_NS_LIST, 0, 0, 0, 4096, &p), 0);
    const uint32_t *list = (const void *)p;
    assert_int_equal(list[0], 0xffffffffu);
    assert_int_equal(list[1], 0);
    assert_int_equal(get_log(ft, NVME_LOG_CHANGED_NS_LIST, 0, 0, 0, 4096, &p), 0);
    assert_int_equal(((const uint32_t *)p)[0], 0);
}

static void command_effects_log(void **state)
{
    struct ft *ft = *state;
    uint8_t *p;
    assert_int_equal(get_log(ft, NVME_LOG_COMMAND_EFFECTS, 0, 0, 0, 4096, &p), 0);
    const struct nvme_cmd_effects_log *e = (const void *)p;
    assert_int_equal(e->acs[NVME_ADMIN_IDENTIFY], NVME_CMD_EFFECTS_CSUPP);
    assert_int_equal(e->acs[NVME_ADMIN_CREATE_IO_SQ], NVME_CMD_EFFECTS_CSUPP);
    assert_int_equal(e->acs[NVME_ADMIN_KEEP_ALIVE], NVME_CMD_EFFECTS_CSUPP);
    assert_int_equal(e->acs[NVME_ADMIN_FORMAT_NVM], 0);
    assert_int_equal(e->acs[NVME_ADMIN_NS_MANAGEMENT], 0);
    assert_int_equal(e->iocs[NVME_NVM_READ], NVME_CMD_EFFECTS_CSUPP);
    assert_int_equal(e->iocs[NVME_NVM_WRITE], NVME_CMD_EFFECTS_CSUPP | NVME_CMD_EFFECTS_LBCC);
    assert_int_equal(e->iocs[NVME_NVM_WRITE_ZEROES], NVME_CMD_EFFECTS_CSUPP | NVME_CMD_EFFECTS_LBCC);
    assert_int_equal(e->iocs[NVME_NVM_DATASET_MANAGEMENT], NVME_CMD_EFFECTS_CSUPP | NVME_CMD_EFFECTS_LBCC);
    assert_int_equal(e->iocs[NVME_NVM_FLUSH], NVME_CMD_EFFECTS_CSUPP);
    assert_int_equal(e->iocs[NVME_NVM_COPY], 0);
}

static void unknown_log_page(void **state)
{
    struct ft *ft = *state;
    uint8_t *p;
    assert_int_equal(get_log(ft, 0x00, 0, 0, 0, 512, &p), SC(COMMAND_SPECIFIC, INVALID_LOG_PAGE));
    assert_int_equal(get_log(ft, NVME_LOG_DEVICE_SELF_TEST, 0, 0, 0, 512, &p), SC(COMMAND_SPECIFIC, INVALID_LOG_PAGE));
    assert_int_equal(get_log(ft, 0x7f, 0, 0, 0, 512, &p), SC(COMMAND_SPECIFIC, INVALID_LOG_PAGE));
}

/* ---- features ---- */

static void number_of_queues(void **state)
{
    struct ft *ft = *state;
    uint32_t r;
    assert_int_equal(get_feature(ft, NVME_FEAT_NUMBER_OF_QUEUES, 0, 0, &r), 0);
    assert_int_equal(r, (NVMET_MAX_IO_QUEUES - 1) << 16 | (NVMET_MAX_IO_QUEUES - 1));

    assert_int_equal(set_feature(ft, NVME_FEAT_NUMBER_OF_QUEUES, false, 5u << 16 | 3u, &r), 0);
    assert_int_equal(r, 5u << 16 | 3u);
    assert_int_equal(get_feature(ft, NVME_FEAT_NUMBER_OF_QUEUES, 0, 0, &r), 0);
    assert_int_equal(r, 5u << 16 | 3u);

    /* More than we have: capped at what we allocate. */
    assert_int_equal(set_feature(ft, NVME_FEAT_NUMBER_OF_QUEUES, false, 1000u << 16 | 1000u, &r), 0);
    assert_int_equal(r, (NVMET_MAX_IO_QUEUES - 1) << 16 | (NVMET_MAX_IO_QUEUES - 1));

    assert_int_equal(set_feature(ft, NVME_FEAT_NUMBER_OF_QUEUES, false, 0xffffu, NULL), SC(GENERIC, INVALID_FIELD));
    assert_int_equal(set_feature(ft, NVME_FEAT_NUMBER_OF_QUEUES, false, 0xffffu << 16, NULL),
                     SC(GENERIC, INVALID_FIELD));
    assert_int_equal(set_feature(ft, NVME_FEAT_NUMBER_OF_QUEUES, true, 0, NULL),
                     SC(COMMAND_SPECIFIC, FEATURE_ID_NOT_SAVEABLE));

    assert_int_equal(ft_create_io_queues(ft, 1, 16, true, 1), 0);
    assert_int_equal(set_feature(ft, NVME_FEAT_NUMBER_OF_QUEUES, false, 0, NULL), SC(GENERIC, COMMAND_SEQUENCE_ERROR));
}

static void select_current_default_saved_supported(void **state)
{
    struct ft *ft = *state;
    uint32_t r;

    assert_int_equal(get_feature(ft, NVME_FEAT_VOLATILE_WRITE_CACHE, NVME_FEAT_SEL_CURRENT, 0, &r), 0);
    assert_int_equal(r, 1);
    assert_int_equal(set_feature(ft, NVME_FEAT_VOLATILE_WRITE_CACHE, false, 0, NULL), 0);
    assert_int_equal(get_feature(ft, NVME_FEAT_VOLATILE_WRITE_CACHE, NVME_FEAT_SEL_CURRENT, 0, &r), 0);
    assert_int_equal(r, 0);
    assert_int_equal(ft->c->feat.volatile_wc, 0);
    /* Not saved: saved reads as the default. */
    assert_int_equal(get_feature(ft, NVME_FEAT_VOLATILE_WRITE_CACHE, NVME_FEAT_SEL_SAVED, 0, &r), 0);
    assert_int_equal(r, 1);
    assert_int_equal(get_feature(ft, NVME_FEAT_VOLATILE_WRITE_CACHE, NVME_FEAT_SEL_DEFAULT, 0, &r), 0);
    assert_int_equal(r, 1);

    /* Arbitration saved with SV; current changed again without. */
    assert_int_equal(set_feature(ft, NVME_FEAT_ARBITRATION, true, 0x01020303u, NULL), 0);
    assert_int_equal(set_feature(ft, NVME_FEAT_ARBITRATION, false, 0x00000002u, NULL), 0);
    assert_int_equal(get_feature(ft, NVME_FEAT_ARBITRATION, NVME_FEAT_SEL_SAVED, 0, &r), 0);
    assert_int_equal(r, 0x01020303u);
    assert_int_equal(get_feature(ft, NVME_FEAT_ARBITRATION, NVME_FEAT_SEL_CURRENT, 0, &r), 0);
    assert_int_equal(r, 2);
    assert_int_equal(get_feature(ft, NVME_FEAT_ARBITRATION, NVME_FEAT_SEL_DEFAULT, 0, &r), 0);
    assert_int_equal(r, 0);

    assert_int_equal(get_feature(ft, NVME_FEAT_ARBITRATION, NVME_FEAT_SEL_SUPPORTED, 0, &r), 0);
    assert_int_equal(r, NVME_FEAT_CAP_SAVEABLE | NVME_FEAT_CAP_CHANGEABLE);
    assert_int_equal(get_feature(ft, NVME_FEAT_NUMBER_OF_QUEUES, NVME_FEAT_SEL_SUPPORTED, 0, &r), 0);
    assert_int_equal(r, NVME_FEAT_CAP_CHANGEABLE);
    assert_int_equal(get_feature(ft, NVME_FEAT_ARBITRATION, 4, 0, NULL), SC(GENERIC, INVALID_FIELD));
    assert_int_equal(get_feature(ft, NVME_FEAT_ARBITRATION, 7, 0, NULL), SC(GENERIC, INVALID_FIELD));
}

static void saved_values_survive_reset(void **state)
{
    struct ft *ft = *state;
    uint32_t r;
    assert_int_equal(set_feature(ft, NVME_FEAT_ASYNC_EVENT_CONFIGURATION, true, NVME_AEN_CFG_NS_ATTR, NULL), 0);
    assert_int_equal(set_feature(ft, NVME_FEAT_INTERRUPT_COALESCING, false, 0x0a05, NULL), 0);
    /* What a controller-level reset does to features (see the report: ctrlr.c should call this). */
    nvmet_features_reset(ft->c);
    assert_int_equal(get_feature(ft, NVME_FEAT_ASYNC_EVENT_CONFIGURATION, 0, 0, &r), 0);
    assert_int_equal(r, NVME_AEN_CFG_NS_ATTR);
    assert_int_equal(get_feature(ft, NVME_FEAT_INTERRUPT_COALESCING, 0, 0, &r), 0);
    assert_int_equal(r, 0);
}

static void feature_validation(void **state)
{
    struct ft *ft = *state;
    uint32_t r;

    assert_int_equal(set_feature(ft, 0x50, false, 0, NULL), SC(GENERIC, INVALID_FIELD));
    assert_int_equal(get_feature(ft, 0x50, 0, 0, NULL), SC(GENERIC, INVALID_FIELD));
    assert_int_equal(set_feature(ft, NVME_FEAT_LBA_RANGE_TYPE, false, 0, NULL), SC(GENERIC, INVALID_FIELD));
    assert_int_equal(set_feature(ft, NVME_FEAT_HOST_MEM_BUFFER, false, 0, NULL), SC(GENERIC, INVALID_FIELD));

    /* Power state 0 only. */
    assert_int_equal(set_feature(ft, NVME_FEAT_POWER_MANAGEMENT, false, 1, NULL), SC(GENERIC, INVALID_FIELD));
    assert_int_equal(set_feature(ft, NVME_FEAT_POWER_MANAGEMENT, false, 0, NULL), 0);

    /* Not namespace specific. */
    struct nvme_sqe sqe;
    sqe_init(&sqe, NVME_ADMIN_SET_FEATURES);
    sqe.nsid = 1;
    sqe.cdw10 = NVME_FEAT_ARBITRATION;
    assert_int_equal(admin(ft, &sqe, NULL), SC(COMMAND_SPECIFIC, FEATURE_NOT_NAMESPACE_SPECIFIC));
    sqe_init(&sqe, NVME_ADMIN_GET_FEATURES);
    sqe.nsid = 1;
    sqe.cdw10 = NVME_FEAT_ARBITRATION;
    assert_int_equal(admin(ft, &sqe, NULL), SC(COMMAND_SPECIFIC, FEATURE_NOT_NAMESPACE_SPECIFIC));
    sqe.nsid = 0xffffffffu;
    assert_int_equal(admin(ft, &sqe, NULL), 0);

    /* Temperature threshold: composite sensor, over/under. */
    assert_int_equal(set_feature(ft, NVME_FEAT_TEMPERATURE_THRESHOLD, false, 350, NULL), 0);
    assert_int_equal(set_feature(ft, NVME_FEAT_TEMPERATURE_THRESHOLD, false, 1u << 20 | 250, NULL), 0);
    assert_int_equal(get_feature(ft, NVME_FEAT_TEMPERATURE_THRESHOLD, 0, 0, &r), 0);
    assert_int_equal(r, 350);
    assert_int_equal(get_feature(ft, NVME_FEAT_TEMPERATURE_THRESHOLD, 0, 1u << 20, &r), 0);
    assert_int_equal(r, 250);
    assert_int_equal(set_feature(ft, NVME_FEAT_TEMPERATURE_THRESHOLD, false, 2u << 20 | 250, NULL),
                     SC(GENERIC, INVALID_FIELD));
    assert_int_equal(set_feature(ft, NVME_FEAT_TEMPERATURE_THRESHOLD, false, 1u << 16 | 250, NULL),
                     SC(GENERIC, INVALID_FIELD));

    /* Error recovery: DULBE is refused (no deallocated-block error support). */
    assert_int_equal(set_feature(ft, NVME_FEAT_ERROR_RECOVERY, false, 1u << 16, NULL), SC(GENERIC, INVALID_FIELD));
    assert_int_equal(set_feature(ft, NVME_FEAT_ERROR_RECOVERY, false, 100, NULL), 0);
    assert_int_equal(get_feature(ft, NVME_FEAT_ERROR_RECOVERY, 0, 0, &r), 0);
    assert_int_equal(r, 100);

    /* Interrupt vector configuration. */
    assert_int_equal(set_feature(ft, NVME_FEAT_INTERRUPT_VECTOR_CONFIGURATION, false, FT_NR_VECTORS, NULL),
                     SC(GENERIC, INVALID_FIELD));
    assert_int_equal(set_feature(ft, NVME_FEAT_INTERRUPT_VECTOR_CONFIGURATION, false, 1u << 16 | 3u, NULL), 0);
    assert_int_equal(get_feature(ft, NVME_FEAT_INTERRUPT_VECTOR_CONFIGURATION, 0, 3, &r), 0);
    assert_int_equal(r, 1u << 16 | 3u);
    assert_int_equal(get_feature(ft, NVME_FEAT_INTERRUPT_VECTOR_CONFIGURATION, 0, 4, &r), 0);
    assert_int_equal(r, 4u);
    assert_int_equal(get_feature(ft, NVME_FEAT_INTERRUPT_VECTOR_CONFIGURATION, 0, FT_NR_VECTORS, NULL),
                     SC(GENERIC, INVALID_FIELD));

    /* Async event configuration keeps only the events we can raise. */
    assert_int_equal(set_feature(ft, NVME_FEAT_ASYNC_EVENT_CONFIGURATION, false, 0xffffffffu, NULL), 0);
    assert_int_equal(get_feature(ft, NVME_FEAT_ASYNC_EVENT_CONFIGURATION, 0, 0, &r), 0);
    assert_int_equal(r, 0x1fu | NVME_AEN_CFG_NS_ATTR);

    /* Keep Alive: rounded up to the 1 s granularity of KAS; 0 disables. */
    assert_int_equal(set_feature(ft, NVME_FEAT_KEEP_ALIVE_TIMER, false, 1500, NULL), 0);
    assert_int_equal(get_feature(ft, NVME_FEAT_KEEP_ALIVE_TIMER, 0, 0, &r), 0);
    assert_int_equal(r, 2000);
    assert_true(ft->c->keep_alive_deadline_ms != 0);
    assert_int_equal(set_feature(ft, NVME_FEAT_KEEP_ALIVE_TIMER, false, 0, NULL), 0);
    assert_int_equal(ft->c->feat.keep_alive_ms, 0);

    assert_int_equal(set_feature(ft, NVME_FEAT_WRITE_ATOMICITY, false, 1, NULL), 0);
    assert_int_equal(get_feature(ft, NVME_FEAT_WRITE_ATOMICITY, 0, 0, &r), 0);
    assert_int_equal(r, 1);
}

static void timestamp(void **state)
{
    struct ft *ft = *state;
    uint64_t buf = ft_alloc(ft, 4096, 4096);
    uint8_t *p = ft_ptr(ft, buf);

    /* Before any Set: origin 000b (time since power on). */
    memset(p, 0xaa, 16);
    assert_int_equal(feature_data(ft, NVME_ADMIN_GET_FEATURES, NVME_FEAT_TIMESTAMP, 0, buf), 0);
    assert_int_equal(p[6] & 0x0e, 0);
    assert_int_equal(p[7], 0);
    assert_int_equal(p[8], 0xaa); /* 8 bytes only */

    const uint64_t set = 0x123456789abull;
    memset(p, 0, 8);
    memcpy(p, &set, 6);
    assert_int_equal(feature_data(ft, NVME_ADMIN_SET_FEATURES, NVME_FEAT_TIMESTAMP, 0, buf), 0);
    memset(p, 0xaa, 8);
    assert_int_equal(feature_data(ft, NVME_ADMIN_GET_FEATURES, NVME_FEAT_TIMESTAMP, 0, buf), 0);
    uint64_t now = 0;
    memcpy(&now, p, 6);
    assert_true(now >= set);
    assert_true(now - set < 24ull * 3600 * 1000); /* it counts from the set value, not from zero */
    assert_int_equal(p[6] & 0x0e, 0x02);          /* origin: set by the host */

    /* Not saveable. */
    struct nvme_sqe sqe;
    sqe_init(&sqe, NVME_ADMIN_SET_FEATURES);
    sqe.cdw10 = NVME_FEAT_TIMESTAMP | 1u << 31;
    sqe.dptr.prp1 = buf;
    assert_int_equal(admin(ft, &sqe, NULL), SC(COMMAND_SPECIFIC, FEATURE_ID_NOT_SAVEABLE));
    /* Bad data pointer. */
    assert_int_equal(feature_data(ft, NVME_ADMIN_SET_FEATURES, NVME_FEAT_TIMESTAMP, 0, FT_MEM_IOVA + FT_MEM_SIZE),
                     SC(GENERIC, DATA_TRANSFER_ERROR));
}

static void host_behavior_support(void **state)
{
    struct ft *ft = *state;
    uint64_t buf = ft_alloc(ft, 4096, 4096);
    uint8_t *p = ft_ptr(ft, buf);
    p[0] = 1;
    p[511] = 0x5a;
    assert_int_equal(feature_data(ft, NVME_ADMIN_SET_FEATURES, NVME_FEAT_HOST_BEHAVIOR_SUPPORT, 0, buf), 0);
    memset(p, 0xaa, 512);
    assert_int_equal(feature_data(ft, NVME_ADMIN_GET_FEATURES, NVME_FEAT_HOST_BEHAVIOR_SUPPORT, 0, buf), 0);
    assert_int_equal(p[0], 1);
    assert_int_equal(p[1], 0);
    assert_int_equal(p[511], 0x5a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(error_log_newest_first, setup, teardown),
        cmocka_unit_test_setup_teardown(error_log_wraps, setup, teardown),
        cmocka_unit_test_setup_teardown(smart_log, setup, teardown),
        cmocka_unit_test_setup_teardown(smart_log_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(firmware_slot_log, setup, teardown),
        cmocka_unit_test_setup_teardown(changed_namespace_list_clears_on_read, setup, teardown),
        cmocka_unit_test_setup_teardown(changed_namespace_list_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(command_effects_log, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_log_page, setup, teardown),
        cmocka_unit_test_setup_teardown(number_of_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(select_current_default_saved_supported, setup, teardown),
        cmocka_unit_test_setup_teardown(saved_values_survive_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(feature_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(timestamp, setup, teardown),
        cmocka_unit_test_setup_teardown(host_behavior_support, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
