/* SPDX-License-Identifier: MIT */
/*
 * Doorbell Buffer Config: validation of the command, I/O queue doorbells
 * taken from the host's shadow page (and register writes then only a
 * wakeup), shadow values validated like register writes, EventIdx arming
 * before a sleep, and the buffers forgotten on reset and quiesced while their
 * memory is unmapped.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_transport.h"

#define SC(sct, sc) NVME_STATUS(NVME_SCT_##sct, NVME_SC_##sc)

struct dbb {
    struct ft *ft;
    uint64_t dbs_iova, eis_iova;
    volatile uint32_t *dbs, *eis;
};

static int setup(void **state)
{
    struct dbb *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->ft = ft_create();
    assert_non_null(t->ft);
    assert_int_equal(ft_add_ns(t->ft, 1, 1024, 512, NULL), 1);
    assert_true(ft_enable(t->ft, 16) & NVME_CSTS_RDY);
    t->dbs_iova = ft_alloc(t->ft, 4096, 4096);
    t->eis_iova = ft_alloc(t->ft, 4096, 4096);
    t->dbs = ft_ptr(t->ft, t->dbs_iova);
    t->eis = ft_ptr(t->ft, t->eis_iova);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct dbb *t = *state;
    ft_destroy(t->ft);
    free(t);
    return 0;
}

static int dbbuf_config(struct ft *ft, uint64_t prp1, uint64_t prp2)
{
    struct nvme_sqe sqe = {.opc = NVME_ADMIN_DOORBELL_BUFFER_CONFIG, .cid = 0x7c};
    sqe.dptr.prp1 = prp1;
    sqe.dptr.prp2 = prp2;
    return ft_cmd(ft, 0, &sqe, NULL);
}

static void flush_sqe(struct nvme_sqe *sqe, uint16_t cid)
{
    memset(sqe, 0, sizeof(*sqe));
    sqe->opc = NVME_NVM_FLUSH;
    sqe->nsid = 1;
    sqe->cid = cid;
}

/* Linux's nvme_dbbuf_need_event: does moving old -> new pass the controller's EventIdx? */
static bool need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
    return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

/* Host side: queue a Flush on qid and publish the new tail in the shadow page only. */
static void submit_shadow(struct dbb *t, uint16_t qid, uint16_t cid)
{
    struct nvme_sqe sqe;
    flush_sqe(&sqe, cid);
    ft_queue_sqe(t->ft, qid, &sqe);
    __atomic_store_n(&t->dbs[2 * qid], t->ft->q[qid].sq_tail, __ATOMIC_RELEASE);
}

/* Consume completions of qid and tell the controller through the shadow CQ head. */
static int reap(struct dbb *t, uint16_t qid, uint16_t *cids, int max)
{
    struct nvme_cqe cqe;
    int n = 0;
    while (n < max && ft_get_cqe_ex(t->ft, qid, &cqe, false))
        cids[n++] = cqe.cid;
    __atomic_store_n(&t->dbs[2 * qid + 1], t->ft->q[qid].cq_head, __ATOMIC_RELEASE);
    return n;
}

static void config_validation(void **state)
{
    struct dbb *t = *state;
    assert_int_equal(dbbuf_config(t->ft, 0, t->eis_iova), SC(GENERIC, INVALID_FIELD) | NVME_STATUS_DNR);
    assert_int_equal(dbbuf_config(t->ft, t->dbs_iova, 0), SC(GENERIC, INVALID_FIELD) | NVME_STATUS_DNR);
    assert_int_equal(dbbuf_config(t->ft, t->dbs_iova + 8, t->eis_iova), SC(GENERIC, INVALID_FIELD) | NVME_STATUS_DNR);
    assert_int_equal(dbbuf_config(t->ft, t->dbs_iova, t->eis_iova + 512),
                     SC(GENERIC, INVALID_FIELD) | NVME_STATUS_DNR);
    assert_int_equal(dbbuf_config(t->ft, t->dbs_iova, t->dbs_iova), SC(GENERIC, INVALID_FIELD) | NVME_STATUS_DNR);
    /* Outside the memory the client shared. */
    assert_int_equal(dbbuf_config(t->ft, FT_MEM_IOVA + FT_MEM_SIZE, t->eis_iova),
                     SC(GENERIC, INVALID_FIELD) | NVME_STATUS_DNR);
    assert_int_equal(dbbuf_config(t->ft, t->dbs_iova, 0x1000), SC(GENERIC, INVALID_FIELD) | NVME_STATUS_DNR);
    assert_false(t->ft->c->dbbuf.on);
    assert_int_equal(nvmet_ctrlr_arm_doorbells(t->ft->c), NVMET_DB_UNARMED);
    assert_int_equal(dbbuf_config(t->ft, t->dbs_iova, t->eis_iova), 0);
    assert_true(t->ft->c->dbbuf.on);
}

static void shadow_doorbells_drive_io_queues(void **state)
{
    struct dbb *t = *state;
    struct ft *ft = t->ft;
    assert_int_equal(dbbuf_config(ft, t->dbs_iova, t->eis_iova), 0);
    assert_int_equal(ft_create_io_queues(ft, 1, 8, true, 1), 0);
    struct nvme_sqe sqe;
    uint16_t cids[8];

    /* A register write alone moves nothing: the shadow value (still 0) is the tail. */
    flush_sqe(&sqe, 1);
    ft_submit(ft, 1, &sqe);
    ft_poll(ft);
    ft_poll(ft);
    assert_int_equal(reap(t, 1, cids, 8), 0);
    /* The shadow tail does. */
    __atomic_store_n(&t->dbs[2], ft->q[1].sq_tail, __ATOMIC_RELEASE);
    ft_poll(ft);
    assert_int_equal(reap(t, 1, cids, 8), 1);
    assert_int_equal(cids[0], 1);

    /* Two more through the shadow page; the register then gets an older value: no step back. */
    flush_sqe(&sqe, 2);
    ft_queue_sqe(ft, 1, &sqe);
    submit_shadow(t, 1, 3);
    ft_poll(ft);
    ft->doorbells[2] = ft->q[1].sq_tail - 1;
    for (int i = 0; i < 4; i++)
        ft_poll(ft);
    assert_int_equal(reap(t, 1, cids, 8), 2);
    assert_int_equal(cids[0], 2);
    assert_int_equal(cids[1], 3);
    assert_int_equal(ft->c->sqs[1].head, ft->c->sqs[1].tail);

    /* More completions than the CQ holds: the shadow CQ head frees the entries. */
    for (uint16_t i = 0; i < 20; i++) {
        submit_shadow(t, 1, (uint16_t)(10 + i));
        ft_poll(ft);
        assert_int_equal(reap(t, 1, cids, 8), 1);
        assert_int_equal(cids[0], 10 + i);
    }
    /* The admin queue keeps its registers. */
    struct nvme_sqe ka = {.opc = NVME_ADMIN_KEEP_ALIVE, .cid = 9};
    assert_int_equal(ft_cmd(ft, 0, &ka, NULL), 0);
}

static void bad_shadow_value_raises_event(void **state)
{
    struct dbb *t = *state;
    struct ft *ft = t->ft;
    assert_int_equal(dbbuf_config(ft, t->dbs_iova, t->eis_iova), 0);
    assert_int_equal(ft_create_io_queues(ft, 1, 8, true, 1), 0);
    struct nvme_sqe aer = {.opc = NVME_ADMIN_ASYNC_EVENT_REQUEST, .cid = 55};
    ft_submit(ft, 0, &aer);
    __atomic_store_n(&t->dbs[2], 8, __ATOMIC_RELEASE); /* tail == size */
    for (int i = 0; i < 3; i++)
        ft_poll(ft);
    assert_int_equal(ft->c->sqs[1].tail, 0);
    struct nvme_cqe cqe;
    assert_true(ft_get_cqe(ft, 0, &cqe));
    assert_int_equal(cqe.cid, 55);
    assert_int_equal(cqe.cdw0 & 7, NVME_AER_TYPE_ERROR);
    assert_int_equal((cqe.cdw0 >> 8) & 0xff, NVME_AER_INFO_ERR_INVALID_DB_VALUE);
}

static void arming_asks_for_the_next_doorbell(void **state)
{
    struct dbb *t = *state;
    struct ft *ft = t->ft;
    assert_int_equal(dbbuf_config(ft, t->dbs_iova, t->eis_iova), 0);
    assert_int_equal(ft_create_io_queues(ft, 1, 16, true, 1), 0);
    assert_int_equal(ft_create_io_queues(ft, 2, 16, true, 2), 0);
    uint16_t cids[8];
    submit_shadow(t, 1, 1);
    ft_poll(ft);
    assert_int_equal(reap(t, 1, cids, 8), 1);

    assert_int_equal(nvmet_ctrlr_arm_doorbells(ft->c), NVMET_DB_ARMED);
    assert_int_equal(t->eis[2], 1); /* SQ 1: the tail it has seen */
    assert_int_equal(t->eis[4], 0); /* SQ 2 */
    /* The host's next submission to either SQ passes its EventIdx; the one after that does not. */
    assert_true(need_event((uint16_t)t->eis[2], 2, 1));
    assert_true(need_event((uint16_t)t->eis[4], 1, 0));
    assert_false(need_event((uint16_t)t->eis[2], 3, 2));

    /* A submission already in the shadow page: do not sleep. */
    submit_shadow(t, 2, 2);
    assert_int_equal(nvmet_ctrlr_arm_doorbells(ft->c), NVMET_DB_PENDING);
    ft_poll(ft);
    assert_int_equal(reap(t, 2, cids, 8), 1);
    assert_int_equal(cids[0], 2);
    uint64_t arms = ft->c->dbbuf_arms;
    assert_int_equal(nvmet_ctrlr_arm_doorbells(ft->c), NVMET_DB_ARMED);
    assert_int_equal(t->eis[4], 1);
    assert_int_equal(ft->c->dbbuf_arms, arms + 1); /* counted only when armed, not when work was pending */
}

static void reset_and_unmap(void **state)
{
    struct dbb *t = *state;
    struct ft *ft = t->ft;
    assert_int_equal(dbbuf_config(ft, t->dbs_iova, t->eis_iova), 0);
    assert_int_equal(ft_create_io_queues(ft, 1, 8, true, 1), 0);
    /* Its memory unmapped: nothing to arm, and the queues wait. */
    nvmet_ctrlr_memory_removed(ft->c, t->dbs_iova, 4096, ft_ptr(ft, t->dbs_iova), NULL);
    assert_int_equal(nvmet_ctrlr_arm_doorbells(ft->c), NVMET_DB_UNARMED);
    struct nvme_sqe sqe;
    uint16_t cids[8];
    submit_shadow(t, 1, 4);
    ft_poll(ft);
    assert_int_equal(reap(t, 1, cids, 8), 0);
    nvmet_ctrlr_memory_added(ft->c);
    ft_poll(ft);
    assert_int_equal(reap(t, 1, cids, 8), 1);
    assert_int_equal(nvmet_ctrlr_arm_doorbells(ft->c), NVMET_DB_ARMED);

    /* A reset forgets the buffers: register doorbells again. */
    ft_disable(ft);
    assert_false(ft->c->dbbuf.on);
    assert_true(ft_enable(ft, 16) & NVME_CSTS_RDY);
    assert_int_equal(ft_create_io_queues(ft, 1, 8, true, 1), 0);
    assert_int_equal(nvmet_ctrlr_arm_doorbells(ft->c), NVMET_DB_UNARMED);
    flush_sqe(&sqe, 5);
    struct nvme_cqe cqe;
    assert_int_equal(ft_cmd(ft, 1, &sqe, &cqe), 0);
    assert_int_equal(cqe.cid, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(config_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(shadow_doorbells_drive_io_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_shadow_value_raises_event, setup, teardown),
        cmocka_unit_test_setup_teardown(arming_asks_for_the_next_doorbell, setup, teardown),
        cmocka_unit_test_setup_teardown(reset_and_unmap, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
