/* SPDX-License-Identifier: MIT */
/* The BAR0 register file: CAP/VS, access sizes, CC/CSTS, enable/disable, shutdown, NSSR, fatal status. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_transport.h"

static int setup(void **state)
{
    struct ft *ft = ft_create();
    assert_non_null(ft);
    *state = ft;
    return 0;
}

static int teardown(void **state)
{
    ft_destroy(*state);
    return 0;
}

static void cap_and_version(void **state)
{
    struct ft *ft = *state;
    uint64_t cap = ft_reg_read64(ft, NVME_REG_CAP);
    assert_int_equal(NVME_CAP_MQES(cap), NVMET_MAX_QUEUE_ENTRIES - 1);
    assert_true(cap & NVME_CAP_CQR);
    assert_int_equal((cap >> NVME_CAP_AMS_SHIFT) & 3, 0);
    assert_true(((cap >> NVME_CAP_TO_SHIFT) & 0xff) > 0);
    assert_int_equal((cap >> NVME_CAP_DSTRD_SHIFT) & 0xf, 0);
    assert_true(cap & NVME_CAP_NSSRS);
    assert_true(cap & NVME_CAP_CSS_NVM);
    assert_int_equal((cap >> NVME_CAP_MPSMIN_SHIFT) & 0xf, 0);
    assert_int_equal((cap >> NVME_CAP_MPSMAX_SHIFT) & 0xf, 0);
    /* Two 4-byte halves read the same value. */
    assert_int_equal(ft_reg_read32(ft, 0) | (uint64_t)ft_reg_read32(ft, 4) << 32, cap);
    assert_int_equal(ft_reg_read32(ft, NVME_REG_VS), 0x00020000);
    /* Read-only. */
    ft_reg_write64(ft, NVME_REG_CAP, 0);
    ft_reg_write32(ft, NVME_REG_VS, 0);
    assert_int_equal(ft_reg_read64(ft, NVME_REG_CAP), cap);
    assert_int_equal(ft_reg_read32(ft, NVME_REG_VS), 0x00020000);
}

static void access_sizes(void **state)
{
    struct ft *ft = *state;
    uint8_t buf[8];
    assert_int_equal(nvmet_ctrlr_reg_read(ft->c, NVME_REG_CC, buf, 2), -EINVAL);
    assert_int_equal(nvmet_ctrlr_reg_read(ft->c, NVME_REG_CC, buf, 8), -EINVAL);
    assert_int_equal(nvmet_ctrlr_reg_read(ft->c, NVME_REG_CC + 1, buf, 4), -EINVAL);
    assert_int_equal(nvmet_ctrlr_reg_read(ft->c, NVME_REG_CAP + 4, buf, 8), -EINVAL);
    assert_int_equal(nvmet_ctrlr_reg_read(ft->c, 0, buf, 1), -EINVAL);
    assert_int_equal(nvmet_ctrlr_reg_write(ft->c, NVME_REG_CC, buf, 8), -EINVAL);
    assert_int_equal(nvmet_ctrlr_reg_write(ft->c, NVME_REG_CC + 2, buf, 4), -EINVAL);
    assert_int_equal(nvmet_ctrlr_reg_read(ft->c, 0x100000, buf, 4), -EINVAL);
    /* Unimplemented registers up to the doorbells read zero. */
    for (uint64_t off = 0x40; off < 0x1000; off += 4)
        assert_int_equal(ft_reg_read32(ft, off), 0);
    ft_reg_write32(ft, 0x40, 0xffffffff);
    assert_int_equal(ft_reg_read32(ft, 0x40), 0);
    /* Doorbells written through the register path land in the doorbell array. */
    assert_int_equal(ft_reg_write32(ft, NVME_REG_DBS + 8, 5), 0);
    assert_int_equal(ft->doorbells[2], 5);
}

static void cc_reserved_bits_and_intms(void **state)
{
    struct ft *ft = *state;
    ft_reg_write32(ft, NVME_REG_CC, 0xfffffffe); /* everything but EN */
    assert_int_equal(ft_reg_read32(ft, NVME_REG_CC), NVME_CC_WRITABLE_MASK & ~NVME_CC_EN);
    assert_int_equal(ft_reg_read32(ft, NVME_REG_CSTS), 0);
    ft_reg_write32(ft, NVME_REG_AQA, 0xffffffff);
    assert_int_equal(ft_reg_read32(ft, NVME_REG_AQA), 0x0fff0fff);
    ft_reg_write64(ft, NVME_REG_ASQ, 0x123456789abcdefull);
    assert_int_equal(ft_reg_read64(ft, NVME_REG_ASQ), 0x123456789abc000ull);
    ft_reg_write32(ft, NVME_REG_ACQ, 0x5000);
    ft_reg_write32(ft, NVME_REG_ACQ + 4, 0x7);
    assert_int_equal(ft_reg_read64(ft, NVME_REG_ACQ), 0x700005000ull);
    ft_reg_write32(ft, NVME_REG_INTMS, 0x5);
    ft_reg_write32(ft, NVME_REG_INTMS, 0x2);
    assert_int_equal(ft_reg_read32(ft, NVME_REG_INTMS), 7);
    ft_reg_write32(ft, NVME_REG_INTMC, 0x4);
    assert_int_equal(ft_reg_read32(ft, NVME_REG_INTMC), 3);
}

static void enable_and_disable(void **state)
{
    struct ft *ft = *state;
    uint32_t csts = ft_enable(ft, 32);
    assert_int_equal(csts, NVME_CSTS_RDY);
    assert_true(ft->c->sqs[0].created);
    assert_int_equal(ft->c->sqs[0].size, 32);
    assert_true(ft->c->cqs[0].ien);
    assert_int_equal(ft->c->cqs[0].iv, 0);
    assert_true(ft->status_changes > 0);
    assert_int_equal(ft->last_csts, NVME_CSTS_RDY);
    /* AQA cannot change while enabled. */
    ft_reg_write32(ft, NVME_REG_AQA, 0x00030003);
    assert_int_equal(ft_reg_read32(ft, NVME_REG_AQA), (31u << 16) | 31u);
    uint64_t asq = ft_reg_read64(ft, NVME_REG_ASQ);
    assert_int_equal(ft_create_io_queues(ft, 1, 16, true, 1), 0);
    assert_int_equal(ft_disable(ft), 0);
    assert_false(ft->c->sqs[0].created);
    assert_false(ft->c->sqs[1].created);
    assert_false(ft->c->cqs[1].created);
    /* Admin queue registers survive a controller reset. */
    assert_int_equal(ft_reg_read64(ft, NVME_REG_ASQ), asq);
    assert_int_equal(ft_reg_read32(ft, NVME_REG_AQA), (31u << 16) | 31u);
    /* And enabling again works. */
    assert_int_equal(ft_enable(ft, 8), NVME_CSTS_RDY);
}

static void enable_refused(void **state)
{
    struct ft *ft = *state;
    ft_reg_write32(ft, NVME_REG_AQA, 0); /* one-entry queues */
    ft_reg_write64(ft, NVME_REG_ASQ, ft_alloc(ft, 4096, 4096));
    ft_reg_write64(ft, NVME_REG_ACQ, ft_alloc(ft, 4096, 4096));
    ft_reg_write32(ft, NVME_REG_CC, NVME_CC_EN | (6u << 16) | (4u << 20));
    uint32_t csts = ft_reg_read32(ft, NVME_REG_CSTS);
    assert_true(csts & NVME_CSTS_CFS);
    assert_false(csts & NVME_CSTS_RDY);
    ft_disable(ft);
    assert_int_equal(ft_reg_read32(ft, NVME_REG_CSTS), 0);
    /* Page size other than 4 KiB. */
    ft_reg_write32(ft, NVME_REG_AQA, 0x00070007);
    ft_reg_write32(ft, NVME_REG_CC, NVME_CC_EN | (1u << NVME_CC_MPS_SHIFT));
    assert_true(ft_reg_read32(ft, NVME_REG_CSTS) & NVME_CSTS_CFS);
    ft_disable(ft);
    /* Admin queue outside client memory. */
    ft_reg_write64(ft, NVME_REG_ASQ, 0x2000);
    ft_reg_write32(ft, NVME_REG_CC, NVME_CC_EN);
    csts = ft_reg_read32(ft, NVME_REG_CSTS);
    assert_true(csts & NVME_CSTS_CFS);
    assert_false(csts & NVME_CSTS_RDY);
    assert_false(ft->c->cqs[0].created);
}

static void shutdown_sets_shst(void **state)
{
    struct ft *ft = *state;
    assert_int_equal(ft_add_ns(ft, 1, 64, 512, NULL), 1);
    assert_int_equal(ft_enable(ft, 8), NVME_CSTS_RDY);
    assert_int_equal(ft_create_io_queues(ft, 1, 8, true, 1), 0);
    uint32_t cc = ft_reg_read32(ft, NVME_REG_CC);
    ft_reg_write32(ft, NVME_REG_CC, cc | (NVME_CC_SHN_NORMAL << NVME_CC_SHN_SHIFT));
    uint32_t csts = ft_reg_read32(ft, NVME_REG_CSTS);
    assert_int_equal((csts & NVME_CSTS_SHST_MASK) >> NVME_CSTS_SHST_SHIFT, NVME_CSTS_SHST_COMPLETE);
    assert_true(csts & NVME_CSTS_RDY);
    /* No command is fetched after shutdown. */
    struct nvme_sqe sqe;
    memset(&sqe, 0, sizeof(sqe));
    sqe.opc = NVME_NVM_FLUSH;
    sqe.nsid = 1;
    ft_submit(ft, 1, &sqe);
    assert_int_equal(ft_poll(ft), 0);
    struct nvme_cqe cqe;
    assert_false(ft_get_cqe(ft, 1, &cqe));
    /* Reset clears it. */
    ft_disable(ft);
    assert_int_equal(ft_reg_read32(ft, NVME_REG_CSTS), 0);
    assert_int_equal(ft_enable(ft, 8), NVME_CSTS_RDY);
}

static void nssr(void **state)
{
    struct ft *ft = *state;
    assert_int_equal(ft_enable(ft, 8), NVME_CSTS_RDY);
    ft_reg_write32(ft, NVME_REG_NSSR, 0x12345678);
    assert_int_equal(ft_reg_read32(ft, NVME_REG_CSTS), NVME_CSTS_RDY);
    assert_int_equal(ft_reg_read32(ft, NVME_REG_NSSR), 0);
    ft_reg_write32(ft, NVME_REG_NSSR, NVME_NSSR_MAGIC);
    uint32_t csts = ft_reg_read32(ft, NVME_REG_CSTS);
    assert_true(csts & NVME_CSTS_NSSRO);
    assert_false(csts & NVME_CSTS_RDY);
    assert_int_equal(ft_reg_read32(ft, NVME_REG_CC), 0);
    assert_false(ft->c->sqs[0].created);
}

static void fatal_stops_processing(void **state)
{
    struct ft *ft = *state;
    assert_int_equal(ft_add_ns(ft, 1, 64, 512, NULL), 1);
    assert_int_equal(ft_enable(ft, 8), NVME_CSTS_RDY);
    assert_int_equal(ft_create_io_queues(ft, 1, 8, true, 1), 0);
    nvmet_ctrlr_fatal(ft->c, "test");
    assert_true(ft_reg_read32(ft, NVME_REG_CSTS) & NVME_CSTS_CFS);
    struct nvme_sqe sqe;
    memset(&sqe, 0, sizeof(sqe));
    sqe.opc = NVME_NVM_FLUSH;
    sqe.nsid = 1;
    ft_submit(ft, 1, &sqe);
    assert_int_equal(ft_poll(ft), 0);
    ft_disable(ft);
    assert_int_equal(ft_reg_read32(ft, NVME_REG_CSTS), 0);
    assert_int_equal(ft_enable(ft, 8), NVME_CSTS_RDY);
}

static void cntlids_are_unique(void **state)
{
    struct ft *ft = *state;
    struct nvmet_ctrlr *c2 = calloc(1, sizeof(*c2));
    uint32_t db[2 * FT_NR_QUEUES];
    assert_int_equal(nvmet_ctrlr_init(c2, ft->ss, &ft_ops, ft, db), 0);
    assert_int_not_equal(c2->cntlid, ft->c->cntlid);
    assert_int_equal(ft->ss->nr_ctrlrs, 2);
    nvmet_ctrlr_fini(c2);
    assert_int_equal(ft->ss->nr_ctrlrs, 1);
    free(c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(cap_and_version, setup, teardown),
        cmocka_unit_test_setup_teardown(access_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(cc_reserved_bits_and_intms, setup, teardown),
        cmocka_unit_test_setup_teardown(enable_and_disable, setup, teardown),
        cmocka_unit_test_setup_teardown(enable_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(shutdown_sets_shst, setup, teardown),
        cmocka_unit_test_setup_teardown(nssr, setup, teardown),
        cmocka_unit_test_setup_teardown(fatal_stops_processing, setup, teardown),
        cmocka_unit_test_setup_teardown(cntlids_are_unique, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
