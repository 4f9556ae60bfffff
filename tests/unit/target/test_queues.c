/* SPDX-License-Identifier: MIT */
/* Queues: phase tags, full CQs, interrupts and their coalescing, doorbell validation, quiesce on memory removal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_transport.h"

static int setup(void **state)
{
    struct ft *ft = ft_create();
    assert_non_null(ft);
    assert_int_equal(ft_add_ns(ft, 1, 1024, 512, NULL), 1);
    assert_true(ft_enable(ft, 16) & NVME_CSTS_RDY);
    *state = ft;
    return 0;
}

static int teardown(void **state)
{
    ft_destroy(*state);
    return 0;
}

static void flush_sqe(struct nvme_sqe *sqe, uint16_t cid)
{
    memset(sqe, 0, sizeof(*sqe));
    sqe->opc = NVME_NVM_FLUSH;
    sqe->nsid = 1;
    sqe->cid = cid;
}

static void phase_flips_on_wrap(void **state)
{
    struct ft *ft = *state;
    assert_int_equal(ft_create_io_queues(ft, 1, 4, true, 1), 0);
    struct nvme_cqe *ring = ft_ptr(ft, ft->q[1].cq_iova);
    for (uint16_t i = 0; i < 10; i++) {
        struct nvme_sqe sqe;
        struct nvme_cqe cqe;
        flush_sqe(&sqe, (uint16_t)(100 + i));
        assert_int_equal(ft_cmd(ft, 1, &sqe, &cqe), 0);
        assert_int_equal(cqe.cid, 100 + i);
        assert_int_equal(cqe.sqid, 1);
        assert_int_equal(cqe.sqhd, (i + 1) % 4);
        assert_int_equal(cqe.status & 1, (i / 4) % 2 == 0 ? 1 : 0);
    }
    /* Slots 0-1 carry the third pass (phase 1 again); slots 2-3 still the second pass (phase 0). */
    assert_int_equal(ring[1].status & 1, 1);
    assert_int_equal(ring[3].status & 1, 0);
}

static void full_cq_holds_completions(void **state)
{
    struct ft *ft = *state;
    struct ft_queue *q = &ft->q[1];
    /* SQ of 8, CQ of 4: the CQ can hold 3 completions. */
    q->sq_size = 8;
    q->cq_size = 4;
    q->sq_iova = ft_alloc(ft, 8 * 64, 4096);
    q->cq_iova = ft_alloc(ft, 4 * 16, 4096);
    q->phase = 1;
    q->used = true;
    assert_int_equal(nvmet_cq_create(ft->c, 1, q->cq_iova, 4, true, 1), 0);
    assert_int_equal(nvmet_sq_create(ft->c, 1, q->sq_iova, 8, 1, 0), 0);
    struct nvme_sqe sqe;
    for (uint16_t i = 0; i < 6; i++) {
        flush_sqe(&sqe, i);
        ft_queue_sqe(ft, 1, &sqe);
    }
    ft_ring_sq(ft, 1);
    for (int i = 0; i < 5; i++)
        ft_poll(ft);
    struct nvme_cqe *ring = ft_ptr(ft, q->cq_iova);
    assert_int_equal(ring[3].status, 0); /* never written: would have overwritten the unconsumed head */
    struct nvme_cqe cqe;
    uint16_t next = 0;
    /* Read the three without telling the controller: nothing more may arrive. */
    for (int i = 0; i < 3; i++) {
        assert_true(ft_get_cqe_ex(ft, 1, &cqe, false));
        assert_int_equal(cqe.cid, next++);
    }
    assert_false(ft_get_cqe_ex(ft, 1, &cqe, false));
    /* nvmf_get_stats' counts: three posted, the others held by the full CQ (each time they tried). */
    assert_int_equal(ft->c->cqes_posted, 3);
    assert_true(ft->c->cq_full_holds >= 3);
    ft_poll(ft);
    assert_false(ft_get_cqe_ex(ft, 1, &cqe, false));
    /* Now the head doorbell: the rest arrive, in order. */
    ft->doorbells[3] = q->cq_head;
    ft_poll(ft);
    while (ft_get_cqe(ft, 1, &cqe))
        assert_int_equal(cqe.cid, next++);
    ft_poll(ft);
    while (ft_get_cqe(ft, 1, &cqe))
        assert_int_equal(cqe.cid, next++);
    assert_int_equal(next, 6);
    assert_int_equal(ft->c->sqs[1].in_flight, 0);
}

static void interrupts_batched_per_vector(void **state)
{
    struct ft *ft = *state;
    assert_int_equal(ft_create_io_queues(ft, 1, 32, true, 3), 0);
    assert_int_equal(ft_create_io_queues(ft, 2, 32, false, 4), 0);
    memset(ft->irq_count, 0, sizeof(ft->irq_count));
    struct nvme_sqe sqe;
    for (uint16_t i = 0; i < 5; i++) {
        flush_sqe(&sqe, i);
        ft_queue_sqe(ft, 1, &sqe);
        ft_queue_sqe(ft, 2, &sqe);
    }
    ft_ring_sq(ft, 1);
    ft_ring_sq(ft, 2);
    assert_int_equal(ft_poll(ft), 10);
    assert_int_equal(ft->irq_count[3], 1); /* five completions, one interrupt */
    assert_int_equal(ft->irq_count[4], 0); /* interrupts disabled on that CQ */
    ft_poll(ft);
    assert_int_equal(ft->irq_count[3], 1); /* nothing new, no interrupt */
    struct nvme_cqe cqe;
    int n = 0;
    while (ft_get_cqe(ft, 2, &cqe))
        n++;
    assert_int_equal(n, 5);
}

static uint16_t set_feature(struct ft *ft, uint8_t fid, uint32_t cdw11)
{
    struct nvme_sqe sqe = {.opc = NVME_ADMIN_SET_FEATURES, .cid = 0x700, .cdw10 = fid, .cdw11 = cdw11};
    struct nvme_cqe cqe;
    assert_int_equal(ft_cmd(ft, 0, &sqe, &cqe), 0);
    return ft_status(&cqe);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Queues flushes on qid 1 and polls once: they complete within that poll. */
static void flushes(struct ft *ft, uint16_t first_cid, uint16_t n)
{
    struct nvme_sqe sqe;
    for (uint16_t i = 0; i < n; i++) {
        flush_sqe(&sqe, (uint16_t)(first_cid + i));
        ft_queue_sqe(ft, 1, &sqe);
    }
    ft_ring_sq(ft, 1);
    assert_int_equal(ft_poll(ft), n);
}

static void coalescing_waits_for_the_threshold(void **state)
{
    struct ft *ft = *state;
    assert_int_equal(ft_create_io_queues(ft, 1, 32, true, 3), 0);
    /* THR 3 (four entries), TIME 255 (25.5 ms: far longer than this test takes to get there). */
    assert_int_equal(set_feature(ft, NVME_FEAT_INTERRUPT_COALESCING, 0xff03), 0);
    memset(ft->irq_count, 0, sizeof(ft->irq_count));
    uint64_t raised = ft->c->irqs_raised, posted = ft->c->cqes_posted, coalesced = ft->c->irqs_coalesced;
    flushes(ft, 0, 3);
    assert_int_equal(ft->irq_count[3], 0);
    assert_int_equal(ft->c->irqs_raised, raised); /* coalesced: completions without interrupts */
    assert_int_equal(ft->c->cqes_posted, posted + 3);
    uint64_t due = nvmet_ctrlr_irq_deadline_ns(ft->c);
    assert_true(due > 0 && due <= mono_ns() + 25500000u);
    struct nvme_cqe cqe;
    assert_true(ft_get_cqe(ft, 1, &cqe)); /* the entries are posted; only the interrupt waits */
    flushes(ft, 3, 1);
    assert_int_equal(ft->irq_count[3], 1);
    assert_int_equal(ft->c->irqs_raised, raised + 1); /* one interrupt for four completions */
    assert_int_equal(ft->c->irqs_coalesced, coalesced + 3); /* three of them shared it */
    assert_int_equal(nvmet_ctrlr_irq_deadline_ns(ft->c), 0);
    ft_poll(ft);
    assert_int_equal(ft->irq_count[3], 1);
}

static void coalescing_sends_after_the_time(void **state)
{
    struct ft *ft = *state;
    assert_int_equal(ft_create_io_queues(ft, 1, 32, true, 3), 0);
    /* THR 255, TIME 1: 100 us. The clock starts when the poll first holds the interrupt back. */
    assert_int_equal(set_feature(ft, NVME_FEAT_INTERRUPT_COALESCING, 0x01ff), 0);
    memset(ft->irq_count, 0, sizeof(ft->irq_count));
    uint64_t before = mono_ns();
    flushes(ft, 0, 1);
    assert_int_equal(ft->irq_count[3], 0);
    uint64_t due = nvmet_ctrlr_irq_deadline_ns(ft->c);
    assert_true(due >= before + 100000u && due <= mono_ns() + 100000u);
    while (mono_ns() < due)
        usleep(50);
    ft_poll(ft);
    assert_int_equal(ft->irq_count[3], 1);
    assert_int_equal(nvmet_ctrlr_irq_deadline_ns(ft->c), 0);
}

static void coalescing_spares_admin_and_disabled_vectors(void **state)
{
    struct ft *ft = *state;
    assert_int_equal(ft_create_io_queues(ft, 1, 32, true, 3), 0);
    assert_int_equal(set_feature(ft, NVME_FEAT_INTERRUPT_COALESCING, 0xff07), 0);
    memset(ft->irq_count, 0, sizeof(ft->irq_count));
    /* The Admin CQ is never coalesced. */
    assert_int_equal(set_feature(ft, NVME_FEAT_INTERRUPT_VECTOR_CONFIGURATION, 1u << 16 | 3u), 0);
    assert_int_equal(ft->irq_count[0], 1);
    /* Vector 3 has Coalescing Disable set: one entry, one interrupt. */
    flushes(ft, 0, 1);
    assert_int_equal(ft->irq_count[3], 1);
    /* Coalescing Disable cleared again: held back; then coalescing turned off releases it at the next poll. */
    assert_int_equal(set_feature(ft, NVME_FEAT_INTERRUPT_VECTOR_CONFIGURATION, 3u), 0);
    flushes(ft, 1, 1);
    assert_int_equal(ft->irq_count[3], 1);
    assert_int_equal(set_feature(ft, NVME_FEAT_INTERRUPT_COALESCING, 0), 0);
    ft_poll(ft);
    assert_int_equal(ft->irq_count[3], 2);
    assert_int_equal(nvmet_ctrlr_irq_deadline_ns(ft->c), 0);
    /* A failed controller is not polled any more: nothing it holds is due. */
    assert_int_equal(set_feature(ft, NVME_FEAT_INTERRUPT_COALESCING, 0xff07), 0);
    flushes(ft, 2, 1);
    assert_true(nvmet_ctrlr_irq_deadline_ns(ft->c) > 0);
    nvmet_ctrlr_fatal(ft->c, "test");
    assert_int_equal(nvmet_ctrlr_irq_deadline_ns(ft->c), 0);
}

static void coalescing_forgets_a_deleted_queue(void **state)
{
    struct ft *ft = *state;
    assert_int_equal(ft_create_io_queues(ft, 1, 32, true, 3), 0);
    assert_int_equal(set_feature(ft, NVME_FEAT_INTERRUPT_COALESCING, 0xff07), 0);
    flushes(ft, 0, 1);
    assert_true(nvmet_ctrlr_irq_deadline_ns(ft->c) > 0);
    struct nvme_sqe del = {.opc = NVME_ADMIN_DELETE_IO_SQ, .cid = 0x701, .cdw10 = 1};
    struct nvme_cqe cqe;
    assert_int_equal(ft_cmd(ft, 0, &del, &cqe), 0);
    assert_int_equal(ft_status(&cqe), 0);
    del.opc = NVME_ADMIN_DELETE_IO_CQ;
    assert_int_equal(ft_cmd(ft, 0, &del, &cqe), 0);
    assert_int_equal(ft_status(&cqe), 0);
    assert_int_equal(nvmet_ctrlr_irq_deadline_ns(ft->c), 0);
}

static void submit_aer(struct ft *ft, uint16_t cid)
{
    struct nvme_sqe sqe;
    memset(&sqe, 0, sizeof(sqe));
    sqe.opc = NVME_ADMIN_ASYNC_EVENT_REQUEST;
    sqe.cid = cid;
    ft_submit(ft, 0, &sqe);
    ft_poll(ft);
}

static void invalid_sq_doorbell_value(void **state)
{
    struct ft *ft = *state;
    assert_int_equal(ft_create_io_queues(ft, 1, 8, true, 1), 0);
    submit_aer(ft, 77);
    ft->doorbells[2] = 8; /* tail == size */
    ft_poll(ft);
    ft_poll(ft);
    assert_int_equal(ft->c->sqs[1].tail, 0);
    assert_int_equal(ft->c->sqs[1].head, 0);
    struct nvme_cqe cqe;
    assert_true(ft_get_cqe(ft, 0, &cqe));
    assert_int_equal(cqe.cid, 77);
    assert_int_equal(cqe.cdw0 & 7, NVME_AER_TYPE_ERROR);
    assert_int_equal((cqe.cdw0 >> 8) & 0xff, NVME_AER_INFO_ERR_INVALID_DB_VALUE);
    assert_int_equal((cqe.cdw0 >> 16) & 0xff, NVME_LOG_ERROR);
    /* A valid doorbell afterwards works. */
    struct nvme_sqe sqe;
    flush_sqe(&sqe, 5);
    ft->q[1].sq_tail = 0;
    assert_int_equal(ft_cmd(ft, 1, &sqe, &cqe), 0);
    assert_int_equal(cqe.cid, 5);
}

static void doorbell_of_missing_queue(void **state)
{
    struct ft *ft = *state;
    submit_aer(ft, 78);
    ft->doorbells[2 * 9] = 3; /* SQ 9 does not exist */
    ft_poll(ft);
    struct nvme_cqe cqe;
    assert_true(ft_get_cqe(ft, 0, &cqe));
    assert_int_equal(cqe.cid, 78);
    assert_int_equal((cqe.cdw0 >> 8) & 0xff, NVME_AER_INFO_ERR_INVALID_DB_REGISTER);
    assert_false(ft->c->sqs[9].created);
    /* CQ head doorbell beyond what was posted. */
    assert_int_equal(ft_create_io_queues(ft, 1, 8, true, 1), 0);
    ft->doorbells[3] = 4;
    ft_poll(ft);
    assert_int_equal(ft->c->cqs[1].head, 0);
    ft->doorbells[3] = 100;
    ft_poll(ft);
    assert_int_equal(ft->c->cqs[1].head, 0);
}

static void quiesced_queue_is_skipped(void **state)
{
    struct ft *ft = *state;
    assert_int_equal(ft_create_io_queues(ft, 1, 8, true, 1), 0);
    /* Nothing is inside a bdev: the window can be unmapped, not quarantined. */
    assert_false(nvmet_ctrlr_memory_removed(ft->c, ft->q[1].sq_iova, 4096, ft_ptr(ft, ft->q[1].sq_iova), NULL));
    assert_null(ft->c->sqs[1].ring);
    assert_non_null(ft->c->cqs[1].ring);
    struct nvme_sqe sqe;
    flush_sqe(&sqe, 9);
    ft_submit(ft, 1, &sqe);
    assert_int_equal(ft_poll(ft), 0);
    nvmet_ctrlr_memory_added(ft->c);
    assert_non_null(ft->c->sqs[1].ring);
    assert_int_equal(ft_poll(ft), 1);
    struct nvme_cqe cqe;
    assert_true(ft_get_cqe(ft, 1, &cqe));
    assert_int_equal(cqe.cid, 9);
    /* A CQ quiesced while a completion is due: it waits and is posted once remapped. */
    nvmet_ctrlr_memory_removed(ft->c, ft->q[1].cq_iova, 16, ft_ptr(ft, ft->q[1].cq_iova), NULL);
    flush_sqe(&sqe, 10);
    ft_submit(ft, 1, &sqe);
    ft_poll(ft);
    assert_false(ft_get_cqe(ft, 1, &cqe));
    nvmet_ctrlr_memory_added(ft->c);
    ft_poll(ft);
    assert_true(ft_get_cqe(ft, 1, &cqe));
    assert_int_equal(cqe.cid, 10);
}

static void create_validation(void **state)
{
    struct ft *ft = *state;
    struct nvmet_ctrlr *c = ft->c;
    uint64_t mem = ft_alloc(ft, 65536, 4096);
    assert_int_equal(nvmet_cq_create(c, NVMET_MAX_IO_QUEUES + 1, mem, 8, true, 1),
                     NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(nvmet_cq_create(c, 1, mem, 1, true, 1),
                     NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_SIZE));
    /* Ring not (entirely) in client memory. */
    assert_int_equal(nvmet_cq_create(c, 1, FT_MEM_IOVA + FT_MEM_SIZE - 4096, 1024, true, 1),
                     NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD));
    assert_false(c->cqs[1].created);
    assert_int_equal(nvmet_sq_create(c, 1, mem, 8, 2, 0),
                     NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_COMPLETION_QUEUE_INVALID));
    assert_int_equal(nvmet_cq_create(c, 1, mem, 8, true, 1), 0);
    assert_int_equal(nvmet_cq_create(c, 1, mem, 8, true, 1),
                     NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(nvmet_sq_create(c, 1, 0x1000, 8, 1, 0), NVME_STATUS(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD));
    assert_int_equal(nvmet_sq_create(c, 1, mem + 4096, 8, 1, 0), 0);
    assert_int_equal(c->cqs[1].nr_sqs, 1);
    assert_int_equal(c->sqs[1].nr_reqs, 7);
    nvmet_sq_destroy(c, &c->sqs[1]);
    assert_int_equal(c->cqs[1].nr_sqs, 0);
    nvmet_cq_destroy(c, &c->cqs[1]);
    assert_false(c->cqs[1].created);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(phase_flips_on_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(full_cq_holds_completions, setup, teardown),
        cmocka_unit_test_setup_teardown(interrupts_batched_per_vector, setup, teardown),
        cmocka_unit_test_setup_teardown(coalescing_waits_for_the_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(coalescing_sends_after_the_time, setup, teardown),
        cmocka_unit_test_setup_teardown(coalescing_spares_admin_and_disabled_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(coalescing_forgets_a_deleted_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_sq_doorbell_value, setup, teardown),
        cmocka_unit_test_setup_teardown(doorbell_of_missing_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(quiesced_queue_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(create_validation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
