/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous Event Requests (limit, delivery, masking until the log is
 * read, queueing, abort, reset/shutdown) and the admin dispatch rules
 * (fused, SGL, unknown opcodes, Keep Alive).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "admin_harness.h"
#include "fake_transport.h"


#define EV_NS_CHANGED (NVME_AER_TYPE_NOTICE | NVME_AER_INFO_NOTICE_NS_ATTR_CHANGED << 8 | \
                       (uint32_t)NVME_LOG_CHANGED_NS_LIST << 16)

/* Submit an AER (it stays outstanding); returns its CID. */
static uint16_t submit_aer(struct ft *ft)
{
    struct nvme_sqe sqe;
    sqe_init(&sqe, NVME_ADMIN_ASYNC_EVENT_REQUEST);
    ft_submit(ft, 0, &sqe);
    ft_poll(ft);
    return sqe.cid;
}

static bool poll_cqe(struct ft *ft, struct nvme_cqe *cqe)
{
    for (int i = 0; i < 4; i++) {
        ft_poll(ft);
        if (ft_get_cqe(ft, 0, cqe))
            return true;
    }
    return false;
}

static uint16_t set_feature(struct ft *ft, uint8_t fid, uint32_t cdw11)
{
    struct nvme_sqe sqe;
    sqe_init(&sqe, NVME_ADMIN_SET_FEATURES);
    sqe.cdw10 = fid;
    sqe.cdw11 = cdw11;
    return admin(ft, &sqe, NULL);
}

static uint16_t read_log(struct ft *ft, uint8_t lid, bool rae, uint32_t len, uint8_t **data)
{
    uint64_t buf = ft_alloc(ft, 4096, 4096);
    struct nvme_sqe sqe;
    sqe_init(&sqe, NVME_ADMIN_GET_LOG_PAGE);
    sqe.dptr.prp1 = buf;
    sqe.cdw10 = lid | (rae ? 1u << 15 : 0) | (len / 4 - 1) << 16;
    if (data)
        *data = ft_ptr(ft, buf);
    return admin(ft, &sqe, NULL);
}

static void aer_limit(void **state)
{
    struct ft *ft = *state;
    struct nvme_cqe cqe;
    for (unsigned i = 0; i < NVMET_AERL + 1; i++)
        submit_aer(ft);
    assert_false(poll_cqe(ft, &cqe));
    assert_int_equal(ft->c->nr_aer_reqs, NVMET_AERL + 1);

    struct nvme_sqe sqe;
    sqe_init(&sqe, NVME_ADMIN_ASYNC_EVENT_REQUEST);
    assert_int_equal(admin(ft, &sqe, &cqe), SC(COMMAND_SPECIFIC, ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED));
    assert_int_equal(ft->c->nr_aer_reqs, NVMET_AERL + 1);
}

static void namespace_notice_masked_until_log_read(void **state)
{
    struct ft *ft = *state;
    struct nvme_cqe cqe;
    uint8_t *p;
    assert_int_equal(set_feature(ft, NVME_FEAT_ASYNC_EVENT_CONFIGURATION, NVME_AEN_CFG_NS_ATTR), 0);

    uint16_t cid = submit_aer(ft);
    assert_false(poll_cqe(ft, &cqe));
    assert_int_equal(ft_add_ns(ft, 2, 16, 512, NULL), 2);
    assert_true(poll_cqe(ft, &cqe));
    assert_int_equal(cqe.cid, cid);
    assert_int_equal(ft_status(&cqe), 0);
    assert_int_equal(cqe.cdw0, EV_NS_CHANGED);

    /* Masked: another change is not reported while the log is unread. */
    submit_aer(ft);
    assert_int_equal(ft_add_ns(ft, 3, 16, 512, NULL), 3);
    assert_false(poll_cqe(ft, &cqe));

    /* Reading with RAE keeps the mask. */
    assert_int_equal(read_log(ft, NVME_LOG_CHANGED_NS_LIST, true, 4096, &p), 0);
    assert_int_equal(((const uint32_t *)p)[0], 2);
    assert_int_equal(((const uint32_t *)p)[1], 3);
    assert_int_equal(ft_add_ns(ft, 4, 16, 512, NULL), 4);
    assert_false(poll_cqe(ft, &cqe));

    /* Reading without RAE unmasks: the next change is reported. */
    assert_int_equal(read_log(ft, NVME_LOG_CHANGED_NS_LIST, false, 4096, &p), 0);
    assert_int_equal(((const uint32_t *)p)[0], 4);
    assert_false(poll_cqe(ft, &cqe));
    assert_int_equal(nvmet_subsys_remove_ns(ft->ss, 3), 0);
    assert_true(poll_cqe(ft, &cqe));
    assert_int_equal(cqe.cdw0, EV_NS_CHANGED);
}

static void notice_disabled_is_not_reported(void **state)
{
    struct ft *ft = *state;
    struct nvme_cqe cqe;
    submit_aer(ft);
    assert_int_equal(ft_add_ns(ft, 1, 16, 512, NULL), 1);
    assert_false(poll_cqe(ft, &cqe));
    assert_int_equal(ft->c->nr_pending_events, 0);
    /* The change is still in the log. */
    uint8_t *p;
    assert_int_equal(read_log(ft, NVME_LOG_CHANGED_NS_LIST, false, 4096, &p), 0);
    assert_int_equal(((const uint32_t *)p)[0], 1);
}

static void event_waits_for_an_aer(void **state)
{
    struct ft *ft = *state;
    struct nvme_cqe cqe;
    assert_int_equal(set_feature(ft, NVME_FEAT_ASYNC_EVENT_CONFIGURATION, NVME_AEN_CFG_NS_ATTR), 0);
    assert_int_equal(ft_add_ns(ft, 1, 16, 512, NULL), 1);
    assert_int_equal(ft_add_ns(ft, 2, 16, 512, NULL), 2); /* same event: reported once */
    assert_int_equal(ft->c->nr_pending_events, 1);

    uint16_t cid = submit_aer(ft);
    assert_true(poll_cqe(ft, &cqe));
    assert_int_equal(cqe.cid, cid);
    assert_int_equal(cqe.cdw0, EV_NS_CHANGED);
    submit_aer(ft);
    assert_false(poll_cqe(ft, &cqe));
}

static void invalid_doorbell_reported(void **state)
{
    struct ft *ft = *state;
    struct nvme_cqe cqe;
    const uint32_t ev_db_register = NVME_AER_TYPE_ERROR | NVME_AER_INFO_ERR_INVALID_DB_REGISTER << 8 |
                                    (uint32_t)NVME_LOG_ERROR << 16;

    submit_aer(ft);
    ft->doorbells[2 * 5] = 3; /* tail of SQ 5, which does not exist */
    assert_true(poll_cqe(ft, &cqe));
    assert_int_equal(ft_status(&cqe), 0);
    assert_int_equal(cqe.cdw0, ev_db_register);

    /* Error events are masked until the error log is read. */
    submit_aer(ft);
    ft->doorbells[2 * 6 + 1] = 1;
    assert_false(poll_cqe(ft, &cqe));
    assert_int_equal(read_log(ft, NVME_LOG_ERROR, false, 64, NULL), 0);
    assert_false(poll_cqe(ft, &cqe));
    ft->doorbells[2 * 6 + 1] = 2;
    assert_true(poll_cqe(ft, &cqe));
    assert_int_equal(cqe.cdw0, ev_db_register);
}

static void smart_event_on_temperature_threshold(void **state)
{
    struct ft *ft = *state;
    struct nvme_cqe cqe;
    uint8_t *p;
    assert_int_equal(set_feature(ft, NVME_FEAT_ASYNC_EVENT_CONFIGURATION, 1u << 1), 0);
    uint16_t aer_cid = submit_aer(ft);
    /* An over-temperature threshold below the current temperature is crossed at once. */
    struct nvme_sqe sqe;
    sqe_init(&sqe, NVME_ADMIN_SET_FEATURES);
    sqe.cdw10 = NVME_FEAT_TEMPERATURE_THRESHOLD;
    sqe.cdw11 = 200;
    ft_submit(ft, 0, &sqe);
    bool aer_seen = false, set_seen = false;
    while (poll_cqe(ft, &cqe)) {
        assert_int_equal(ft_status(&cqe), 0);
        if (cqe.cid == aer_cid) {
            aer_seen = true;
            assert_int_equal(cqe.cdw0, NVME_AER_TYPE_SMART | 0x01u << 8 | (uint32_t)NVME_LOG_SMART << 16);
        } else {
            assert_int_equal(cqe.cid, sqe.cid);
            set_seen = true;
        }
    }
    assert_true(aer_seen && set_seen);
    assert_int_equal(read_log(ft, NVME_LOG_SMART, false, 512, &p), 0);
    assert_int_equal(p[0] & (1u << 1), 1u << 1);
}

static void abort_outstanding_aer(void **state)
{
    struct ft *ft = *state;
    struct nvme_cqe cqe, aer_cqe, abort_cqe;
    uint16_t aer_cid = submit_aer(ft);

    /* Unknown CID, or an I/O SQ: nothing to abort. */
    struct nvme_sqe sqe;
    sqe_init(&sqe, NVME_ADMIN_ABORT);
    sqe.cdw10 = (uint32_t)(aer_cid + 1) << 16;
    assert_int_equal(admin(ft, &sqe, &cqe), 0);
    assert_int_equal(cqe.cdw0 & 1, 1);
    sqe_init(&sqe, NVME_ADMIN_ABORT);
    sqe.cdw10 = (uint32_t)aer_cid << 16 | 1;
    assert_int_equal(admin(ft, &sqe, &cqe), 0);
    assert_int_equal(cqe.cdw0 & 1, 1);
    assert_int_equal(ft->c->nr_aer_reqs, 1);

    sqe_init(&sqe, NVME_ADMIN_ABORT);
    sqe.cdw10 = (uint32_t)aer_cid << 16;
    ft_submit(ft, 0, &sqe);
    assert_true(poll_cqe(ft, &aer_cqe));
    assert_true(poll_cqe(ft, &abort_cqe));
    assert_int_equal(aer_cqe.cid, aer_cid);
    assert_int_equal(ft_sct_sc(ft_status(&aer_cqe)), SC(GENERIC, ABORTED_BY_REQUEST));
    assert_int_equal(abort_cqe.cid, sqe.cid);
    assert_int_equal(ft_status(&abort_cqe), 0);
    assert_int_equal(abort_cqe.cdw0 & 1, 0);
    assert_int_equal(ft->c->nr_aer_reqs, 0);
}

static void reset_drops_outstanding_aers(void **state)
{
    struct ft *ft = *state;
    struct nvme_cqe cqe;
    submit_aer(ft);
    submit_aer(ft);
    assert_int_equal(ft->c->sqs[0].in_flight, 2);
    assert_int_equal(ft_disable(ft) & NVME_CSTS_RDY, 0);
    assert_int_equal(ft->c->nr_aer_reqs, 0);

    assert_true(ft_enable(ft, 32) & NVME_CSTS_RDY);
    assert_int_equal(set_feature(ft, NVME_FEAT_ASYNC_EVENT_CONFIGURATION, NVME_AEN_CFG_NS_ATTR), 0);
    uint16_t cid = submit_aer(ft);
    assert_int_equal(ft_add_ns(ft, 1, 16, 512, NULL), 1);
    assert_true(poll_cqe(ft, &cqe));
    assert_int_equal(cqe.cid, cid);
}

static void shutdown_completes_with_aers_outstanding(void **state)
{
    struct ft *ft = *state;
    struct nvme_cqe cqe;
    uint16_t cid = submit_aer(ft);
    uint32_t cc = ft_reg_read32(ft, NVME_REG_CC);
    ft_reg_write32(ft, NVME_REG_CC, cc | NVME_CC_SHN_NORMAL << NVME_CC_SHN_SHIFT);
    ft_poll(ft);
    uint32_t csts = ft_reg_read32(ft, NVME_REG_CSTS);
    assert_int_equal((csts & NVME_CSTS_SHST_MASK) >> NVME_CSTS_SHST_SHIFT, NVME_CSTS_SHST_COMPLETE);
    /*
     * The AER stays outstanding with no completion: a host shutting down has
     * dropped it already (SPDK's host logs each one posted as unknown).
     */
    assert_false(ft_get_cqe(ft, 0, &cqe));
    assert_int_equal(ft->c->nr_aer_reqs, 1);
    (void)cid;
    /* The reset after the shutdown discards it, still without a completion. */
    assert_int_equal(ft_disable(ft) & NVME_CSTS_RDY, 0);
    assert_int_equal(ft->c->nr_aer_reqs, 0);
    assert_true(ft_enable(ft, 32) & NVME_CSTS_RDY);
    assert_false(ft_get_cqe(ft, 0, &cqe));
}

static void dispatch_rules(void **state)
{
    struct ft *ft = *state;
    struct nvme_sqe sqe;
    struct nvme_cqe cqe;
    uint64_t buf = ft_alloc(ft, 4096, 4096);

    /* Fused (first or second half) admin command. */
    for (uint8_t fuse = 1; fuse <= 2; fuse++) {
        sqe_init(&sqe, NVME_ADMIN_IDENTIFY);
        sqe.flags = fuse;
        sqe.cdw10 = NVME_ID_CNS_CTRL;
        sqe.dptr.prp1 = buf;
        assert_int_equal(admin(ft, &sqe, NULL), SC(GENERIC, INVALID_FIELD));
    }
    /* SGL data pointer for an admin command. */
    sqe_init(&sqe, NVME_ADMIN_IDENTIFY);
    sqe.flags = NVME_PSDT_SGL_MPTR_CONTIG << NVME_SQE_PSDT_SHIFT;
    sqe.cdw10 = NVME_ID_CNS_CTRL;
    assert_int_equal(admin(ft, &sqe, NULL), SC(GENERIC, INVALID_FIELD));
    assert_int_equal(((uint8_t *)ft_ptr(ft, buf))[0], 0); /* nothing transferred */

    /* Unsupported opcodes: Invalid Opcode, do not retry. */
    const uint8_t unsupported[] = {NVME_ADMIN_FORMAT_NVM, NVME_ADMIN_NS_MANAGEMENT, NVME_ADMIN_SANITIZE,
                                   NVME_ADMIN_FIRMWARE_COMMIT, 0x03, 0xff};
    for (size_t i = 0; i < sizeof(unsupported); i++) {
        sqe_init(&sqe, unsupported[i]);
        assert_int_equal(ft_cmd(ft, 0, &sqe, &cqe), SC(GENERIC, INVALID_OPCODE) | NVME_STATUS_DNR);
    }
}

static void keep_alive(void **state)
{
    struct ft *ft = *state;
    struct nvme_sqe sqe;
    assert_int_equal(set_feature(ft, NVME_FEAT_KEEP_ALIVE_TIMER, 5000), 0);
    ft->c->keep_alive_deadline_ms = 0;
    sqe_init(&sqe, NVME_ADMIN_KEEP_ALIVE);
    assert_int_equal(admin(ft, &sqe, NULL), 0);
    assert_true(ft->c->keep_alive_deadline_ms >= nvmet_now_ms());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(aer_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(namespace_notice_masked_until_log_read, setup, teardown),
        cmocka_unit_test_setup_teardown(notice_disabled_is_not_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(event_waits_for_an_aer, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_doorbell_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(smart_event_on_temperature_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_outstanding_aer, setup, teardown),
        cmocka_unit_test_setup_teardown(reset_drops_outstanding_aers, setup, teardown),
        cmocka_unit_test_setup_teardown(shutdown_completes_with_aers_outstanding, setup, teardown),
        cmocka_unit_test_setup_teardown(dispatch_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(keep_alive, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
