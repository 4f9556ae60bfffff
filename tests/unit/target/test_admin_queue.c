/* SPDX-License-Identifier: MIT */
/*
 * Create/Delete I/O SQ and CQ through admin commands: every validation the
 * spec names, shared CQs and deletion of an SQ with commands in a bdev.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "admin_harness.h"
#include "fake_transport.h"


#define CQ_PC 0x1u
#define CQ_IEN 0x2u

/* Create I/O CQ with explicit fields; on success the host side of queue qid tracks it. */
static uint16_t create_cq_raw(struct ft *ft, uint16_t qid, uint32_t qsize_0based, uint32_t flags, uint16_t iv,
                              uint64_t iova)
{
    struct nvme_sqe sqe;
    sqe_init(&sqe, NVME_ADMIN_CREATE_IO_CQ);
    sqe.dptr.prp1 = iova;
    sqe.cdw10 = qsize_0based << 16 | qid;
    sqe.cdw11 = (uint32_t)iv << 16 | flags;
    uint16_t st = admin(ft, &sqe, NULL);
    if (st == 0 && qid < FT_NR_QUEUES) {
        struct ft_queue *q = &ft->q[qid];
        q->cq_iova = iova;
        q->cq_size = qsize_0based + 1;
        q->cq_head = 0;
        q->phase = 1;
        q->used = true;
    }
    return st;
}

static uint16_t create_cq(struct ft *ft, uint16_t qid, uint32_t size, uint16_t iv)
{
    uint64_t iova = ft_alloc(ft, size * sizeof(struct nvme_cqe), 4096);
    return create_cq_raw(ft, qid, size - 1, CQ_PC | CQ_IEN, iv, iova);
}

static uint16_t create_sq_raw(struct ft *ft, uint16_t qid, uint32_t qsize_0based, uint32_t flags, uint16_t cqid,
                              uint64_t iova)
{
    struct nvme_sqe sqe;
    sqe_init(&sqe, NVME_ADMIN_CREATE_IO_SQ);
    sqe.dptr.prp1 = iova;
    sqe.cdw10 = qsize_0based << 16 | qid;
    sqe.cdw11 = (uint32_t)cqid << 16 | flags;
    uint16_t st = admin(ft, &sqe, NULL);
    if (st == 0 && qid < FT_NR_QUEUES) {
        struct ft_queue *q = &ft->q[qid];
        q->sq_iova = iova;
        q->sq_size = qsize_0based + 1;
        q->sq_tail = 0;
        q->used = true;
    }
    return st;
}

static uint16_t create_sq(struct ft *ft, uint16_t qid, uint32_t size, uint16_t cqid)
{
    uint64_t iova = ft_alloc(ft, size * sizeof(struct nvme_sqe), 4096);
    return create_sq_raw(ft, qid, size - 1, 1, cqid, iova);
}

static uint16_t delete_queue(struct ft *ft, uint8_t opc, uint16_t qid)
{
    struct nvme_sqe sqe;
    sqe_init(&sqe, opc);
    sqe.cdw10 = qid;
    return admin(ft, &sqe, NULL);
}

static uint16_t set_num_queues(struct ft *ft, uint16_t nsqr, uint16_t ncqr, uint32_t *result)
{
    struct nvme_sqe sqe;
    struct nvme_cqe cqe;
    sqe_init(&sqe, NVME_ADMIN_SET_FEATURES);
    sqe.cdw10 = NVME_FEAT_NUMBER_OF_QUEUES;
    sqe.cdw11 = (uint32_t)ncqr << 16 | nsqr;
    uint16_t st = admin(ft, &sqe, &cqe);
    if (result)
        *result = cqe.cdw0;
    return st;
}

static void create_cq_bad_qid(void **state)
{
    struct ft *ft = *state;
    assert_int_equal(create_cq(ft, 0, 16, 1), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(create_cq(ft, NVMET_MAX_IO_QUEUES + 1, 16, 1), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(create_cq(ft, 0xffff, 16, 1), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(create_cq(ft, NVMET_MAX_IO_QUEUES, 16, 1), 0);
    /* Already exists. */
    assert_int_equal(create_cq(ft, NVMET_MAX_IO_QUEUES, 16, 1), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_true(ft->c->cqs[NVMET_MAX_IO_QUEUES].created);
}

static void create_cq_bad_size(void **state)
{
    struct ft *ft = *state;
    uint64_t iova = ft_alloc(ft, 2 * NVMET_MAX_QUEUE_ENTRIES * sizeof(struct nvme_cqe), 4096);
    /* 0's based: 0 is a 1-entry queue. */
    assert_int_equal(create_cq_raw(ft, 1, 0, CQ_PC, 0, iova), SC(COMMAND_SPECIFIC, INVALID_QUEUE_SIZE));
    assert_int_equal(create_cq_raw(ft, 1, NVMET_MAX_QUEUE_ENTRIES, CQ_PC, 0, iova),
                     SC(COMMAND_SPECIFIC, INVALID_QUEUE_SIZE));
    assert_int_equal(create_cq_raw(ft, 1, 0xffff, CQ_PC, 0, iova), SC(COMMAND_SPECIFIC, INVALID_QUEUE_SIZE));
    assert_false(ft->c->cqs[1].created);
    /* MQES itself is fine. */
    assert_int_equal(create_cq_raw(ft, 1, NVMET_MAX_QUEUE_ENTRIES - 1, CQ_PC, 0, iova), 0);
    assert_int_equal(ft->c->cqs[1].size, NVMET_MAX_QUEUE_ENTRIES);
}

static void create_cq_needs_contiguous(void **state)
{
    struct ft *ft = *state;
    uint64_t iova = ft_alloc(ft, 16 * sizeof(struct nvme_cqe), 4096);
    assert_int_equal(create_cq_raw(ft, 1, 15, CQ_IEN, 1, iova), SC(GENERIC, INVALID_FIELD));
    assert_false(ft->c->cqs[1].created);
}

static void create_cq_bad_vector(void **state)
{
    struct ft *ft = *state;
    uint64_t iova = ft_alloc(ft, 16 * sizeof(struct nvme_cqe), 4096);
    assert_int_equal(create_cq_raw(ft, 1, 15, CQ_PC | CQ_IEN, FT_NR_VECTORS, iova),
                     SC(COMMAND_SPECIFIC, INVALID_INTERRUPT_VECTOR));
    assert_int_equal(create_cq_raw(ft, 1, 15, CQ_PC | CQ_IEN, 0xffff, iova),
                     SC(COMMAND_SPECIFIC, INVALID_INTERRUPT_VECTOR));
    assert_false(ft->c->cqs[1].created);
    assert_int_equal(create_cq_raw(ft, 1, 15, CQ_PC | CQ_IEN, FT_NR_VECTORS - 1, iova), 0);
    assert_int_equal(ft->c->cqs[1].iv, FT_NR_VECTORS - 1);
    assert_true(ft->c->cqs[1].ien);
}

static void create_cq_bad_address(void **state)
{
    struct ft *ft = *state;
    uint64_t iova = ft_alloc(ft, 2 * 4096, 4096);
    assert_int_equal(create_cq_raw(ft, 1, 15, CQ_PC, 0, iova + 16), SC(GENERIC, INVALID_PRP_OFFSET));
    /* Outside guest memory: the ring cannot be mapped. */
    uint16_t st = create_cq_raw(ft, 1, 15, CQ_PC, 0, FT_MEM_IOVA + FT_MEM_SIZE);
    assert_int_not_equal(st, 0);
    assert_false(ft->c->cqs[1].created);
}

static void create_cq_checks_iocqes(void **state)
{
    struct ft *ft = *state;
    uint32_t cc = ft_reg_read32(ft, NVME_REG_CC);
    ft_reg_write32(ft, NVME_REG_CC, (cc & ~NVME_CC_IOCQES_MASK) | (5u << NVME_CC_IOCQES_SHIFT));
    assert_int_equal(create_cq(ft, 1, 16, 1), SC(GENERIC, INVALID_FIELD));
    ft_reg_write32(ft, NVME_REG_CC, cc);
    assert_int_equal(create_cq(ft, 1, 16, 1), 0);
    assert_int_equal(create_sq(ft, 1, 16, 1), 0);
}

static void create_sq_checks(void **state)
{
    struct ft *ft = *state;
    uint64_t iova = ft_alloc(ft, 16 * sizeof(struct nvme_sqe), 4096);

    /* SQ before its CQ: an allocated CQID with no queue is Completion Queue Invalid. */
    assert_int_equal(create_sq_raw(ft, 1, 15, 1, 1, iova), SC(COMMAND_SPECIFIC, COMPLETION_QUEUE_INVALID));
    /* The admin CQ, and a CQID beyond the range, are Invalid Queue Identifier (SPDK's nvme_compliance). */
    assert_int_equal(create_sq_raw(ft, 1, 15, 1, 0, iova), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(create_sq_raw(ft, 1, 15, 1, 0xffff, iova), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(create_sq_raw(ft, 1, 15, 1, NVMET_MAX_IO_QUEUES + 1, iova),
                     SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(create_cq(ft, 1, 16, 1), 0);
    assert_int_equal(create_sq_raw(ft, 0, 15, 1, 1, iova), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(create_sq_raw(ft, NVMET_MAX_IO_QUEUES + 1, 15, 1, 1, iova),
                     SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(create_sq_raw(ft, 1, 0, 1, 1, iova), SC(COMMAND_SPECIFIC, INVALID_QUEUE_SIZE));
    assert_int_equal(create_sq_raw(ft, 1, NVMET_MAX_QUEUE_ENTRIES, 1, 1, iova),
                     SC(COMMAND_SPECIFIC, INVALID_QUEUE_SIZE));
    assert_int_equal(create_sq_raw(ft, 1, 15, 0, 1, iova), SC(GENERIC, INVALID_FIELD)); /* PC = 0 */
    assert_int_equal(create_sq_raw(ft, 1, 15, 1, 1, iova + 64), SC(GENERIC, INVALID_PRP_OFFSET));
    assert_false(ft->c->sqs[1].created);
    /* QPRIO is kept. */
    assert_int_equal(create_sq_raw(ft, 1, 15, 1 | (2u << 1), 1, iova), 0);
    assert_int_equal(ft->c->sqs[1].qprio, 2);
    assert_int_equal(ft->c->sqs[1].cqid, 1);
    assert_int_equal(create_sq_raw(ft, 1, 15, 1, 1, iova), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
}

static void queue_count_limits_after_set_features(void **state)
{
    struct ft *ft = *state;
    uint32_t result;

    assert_int_equal(set_num_queues(ft, 1, 2, &result), 0); /* 2 SQs, 3 CQs */
    assert_int_equal(result, 2u << 16 | 1u);
    assert_int_equal(create_cq(ft, 4, 16, 1), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(create_cq(ft, 3, 16, 1), 0);
    assert_int_equal(create_sq(ft, 3, 16, 3), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(create_sq(ft, 2, 16, 3), 0);
    /* A CQID past the 3 CQs allocated is Invalid Queue Identifier, not Completion Queue Invalid. */
    assert_int_equal(create_sq(ft, 1, 16, 4), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(create_sq(ft, 1, 16, 2), SC(COMMAND_SPECIFIC, COMPLETION_QUEUE_INVALID));
    /* Once queues exist the counts are fixed. */
    assert_int_equal(set_num_queues(ft, 7, 7, NULL), SC(GENERIC, COMMAND_SEQUENCE_ERROR));
}

static void delete_checks(void **state)
{
    struct ft *ft = *state;

    assert_int_equal(delete_queue(ft, NVME_ADMIN_DELETE_IO_SQ, 0), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(delete_queue(ft, NVME_ADMIN_DELETE_IO_CQ, 0), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(delete_queue(ft, NVME_ADMIN_DELETE_IO_SQ, 1), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(delete_queue(ft, NVME_ADMIN_DELETE_IO_CQ, 1), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(delete_queue(ft, NVME_ADMIN_DELETE_IO_SQ, 0xffff),
                     SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(create_cq(ft, 1, 16, 1), 0);
    assert_int_equal(create_sq(ft, 1, 16, 1), 0);
    assert_int_equal(delete_queue(ft, NVME_ADMIN_DELETE_IO_CQ, 1), SC(COMMAND_SPECIFIC, INVALID_QUEUE_DELETION));
    assert_true(ft->c->cqs[1].created);
    assert_int_equal(delete_queue(ft, NVME_ADMIN_DELETE_IO_SQ, 1), 0);
    assert_false(ft->c->sqs[1].created);
    assert_int_equal(delete_queue(ft, NVME_ADMIN_DELETE_IO_SQ, 1), SC(COMMAND_SPECIFIC, INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(delete_queue(ft, NVME_ADMIN_DELETE_IO_CQ, 1), 0);
    assert_false(ft->c->cqs[1].created);
    /* The ids are free again. */
    assert_int_equal(create_cq(ft, 1, 16, 1), 0);
    assert_int_equal(create_sq(ft, 1, 16, 1), 0);
}

static void read_cmd(struct nvme_sqe *sqe, uint64_t buf)
{
    ft_sqe_rw(sqe, NVME_NVM_READ, 1, 0, 1, buf, 0);
}

static void shared_cq(void **state)
{
    struct ft *ft = *state;
    assert_int_equal(ft_add_ns(ft, 1, 64, 512, NULL), 1);
    assert_int_equal(create_cq(ft, 1, 16, 1), 0);
    assert_int_equal(create_sq(ft, 1, 16, 1), 0);
    assert_int_equal(create_sq(ft, 2, 16, 1), 0);
    assert_int_equal(ft->c->cqs[1].nr_sqs, 2);

    uint64_t buf = ft_alloc(ft, 4096, 4096);
    struct nvme_sqe a, b;
    read_cmd(&a, buf);
    read_cmd(&b, buf);
    ft_submit(ft, 1, &a);
    ft_submit(ft, 2, &b);
    bool seen1 = false, seen2 = false;
    for (int i = 0; i < 100 && !(seen1 && seen2); i++) {
        ft_poll(ft);
        struct nvme_cqe cqe;
        while (ft_get_cqe(ft, 1, &cqe)) {
            assert_int_equal(ft_status(&cqe), 0);
            if (cqe.sqid == 1 && cqe.cid == a.cid)
                seen1 = true;
            else if (cqe.sqid == 2 && cqe.cid == b.cid)
                seen2 = true;
            else
                fail_msg("unexpected CQE sqid %u cid %u", cqe.sqid, cqe.cid);
        }
    }
    assert_true(seen1 && seen2);

    /* The CQ is deletable only after both of its SQs. */
    assert_int_equal(delete_queue(ft, NVME_ADMIN_DELETE_IO_SQ, 1), 0);
    assert_int_equal(delete_queue(ft, NVME_ADMIN_DELETE_IO_CQ, 1), SC(COMMAND_SPECIFIC, INVALID_QUEUE_DELETION));
    assert_int_equal(delete_queue(ft, NVME_ADMIN_DELETE_IO_SQ, 2), 0);
    assert_int_equal(delete_queue(ft, NVME_ADMIN_DELETE_IO_CQ, 1), 0);
}

static void delete_sq_waits_for_bdev(void **state)
{
    struct ft *ft = *state;
    struct ft_bdev *fb;
    assert_int_equal(ft_add_ns(ft, 1, 64, 512, &fb), 1);
    assert_int_equal(create_cq(ft, 1, 16, 1), 0);
    assert_int_equal(create_sq(ft, 1, 16, 1), 0);
    fb->deferred = true;

    /* Fetch a read into the bdev without polling the bdev (step by step instead of ft_poll). */
    uint64_t buf = ft_alloc(ft, 4096, 4096);
    struct nvme_sqe rd, del;
    read_cmd(&rd, buf);
    ft_submit(ft, 1, &rd);
    nvmet_ctrlr_check_doorbells(ft->c);
    assert_int_equal(nvmet_sq_process(ft->c, &ft->c->sqs[1], 8), 1);
    assert_int_equal(ft->c->sqs[1].in_flight, 1);

    sqe_init(&del, NVME_ADMIN_DELETE_IO_SQ);
    del.cdw10 = 1;
    ft_submit(ft, 0, &del);
    nvmet_ctrlr_check_doorbells(ft->c);
    assert_int_equal(nvmet_sq_process(ft->c, &ft->c->sqs[0], 8), 1);
    struct nvme_cqe cqe;
    assert_false(ft_get_cqe(ft, 0, &cqe));
    assert_true(ft->c->sqs[1].deleting);

    /* The bdev finishes: the read completes, then the delete. */
    bool read_done = false, delete_done = false;
    for (int i = 0; i < 100 && !delete_done; i++) {
        ft_poll(ft);
        if (ft_get_cqe(ft, 1, &cqe)) {
            assert_int_equal(cqe.cid, rd.cid);
            read_done = true;
        }
        if (ft_get_cqe(ft, 0, &cqe)) {
            assert_int_equal(cqe.cid, del.cid);
            assert_int_equal(ft_status(&cqe), 0);
            delete_done = true;
        }
    }
    assert_true(read_done);
    assert_true(delete_done);
    assert_false(ft->c->sqs[1].created);
    assert_int_equal(ft->c->cqs[1].nr_sqs, 0);
    assert_int_equal(delete_queue(ft, NVME_ADMIN_DELETE_IO_CQ, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(create_cq_bad_qid, setup, teardown),
        cmocka_unit_test_setup_teardown(create_cq_bad_size, setup, teardown),
        cmocka_unit_test_setup_teardown(create_cq_needs_contiguous, setup, teardown),
        cmocka_unit_test_setup_teardown(create_cq_bad_vector, setup, teardown),
        cmocka_unit_test_setup_teardown(create_cq_bad_address, setup, teardown),
        cmocka_unit_test_setup_teardown(create_cq_checks_iocqes, setup, teardown),
        cmocka_unit_test_setup_teardown(create_sq_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_count_limits_after_set_features, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(shared_cq, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_sq_waits_for_bdev, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
