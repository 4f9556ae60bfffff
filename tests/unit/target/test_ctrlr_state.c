/* SPDX-License-Identifier: MIT */
/*
 * A controller's handover state (ctrlr_state.c): saved from one controller
 * and restored into another over the same guest memory and doorbells, the
 * host (this test) must carry on as if nothing happened: queue heads, tails
 * and phases, an outstanding AER, features, commands recalled from a stuck
 * bdev. And a restore never trusts its input: every truncation and every
 * flipped byte of a saved state is refused or restored without harm.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "admin_harness.h"
#include "common/state.h"
#include "fake_transport.h"

struct env {
    struct ft *ft;
    struct ft_bdev *b;
    uint64_t buf;
};

static int env_setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->ft = setup_ft();
    assert_int_equal(ft_add_ns(e->ft, 1, 1024, 512, &e->b), 1);
    assert_int_equal(ft_create_io_queues(e->ft, 1, 16, true, 1), 0);
    e->buf = ft_alloc(e->ft, 4096, 4096);
    *state = e;
    return 0;
}

static int env_teardown(void **state)
{
    struct env *e = *state;
    ft_destroy(e->ft);
    free(e);
    return 0;
}

static int io(struct env *e, uint8_t opc, uint64_t lba)
{
    struct nvme_sqe sqe;
    ft_sqe_rw(&sqe, opc, 1, lba, 1, e->buf, 0);
    sqe.cid = next_cid++;
    struct nvme_cqe cqe;
    return ft_cmd(e->ft, 1, &sqe, &cqe);
}

/* A second controller for the same subsystem, guest memory and doorbells, restored from w. */
static struct nvmet_ctrlr *restore_into_new(struct env *e, struct vnvme_state_out *w, const char **why)
{
    struct nvmet_ctrlr *c = calloc(1, sizeof(*c));
    assert_int_equal(nvmet_ctrlr_init_keep_doorbells(c, e->ft->ss, &ft_ops, e->ft, e->ft->doorbells), 0);
    struct vnvme_state_in r;
    vnvme_state_in_init(&r, w->buf, w->len, NULL, 0);
    int rc = nvmet_ctrlr_restore(c, &r);
    if (why)
        *why = vnvme_state_in_why(&r);
    if (rc) {
        nvmet_ctrlr_forget(c);
        free(c);
        return NULL;
    }
    return c;
}

/* The old controller goes, without a reset, as it does in the process that hands it over. */
static void let_go(struct env *e)
{
    nvmet_ctrlr_forget(e->ft->c);
    free(e->ft->c);
    e->ft->c = NULL;
}

/* Save, let the old controller go, restore a new one in its place; the host talks to it from now on. */
static struct nvmet_ctrlr *hand_over(struct env *e)
{
    struct vnvme_state_out w;
    vnvme_state_out_init(&w);
    assert_int_equal(nvmet_ctrlr_save(e->ft->c, &w), 0);
    let_go(e);
    const char *why = NULL;
    struct nvmet_ctrlr *c = restore_into_new(e, &w, &why);
    if (!c)
        print_message("restore: %s\n", why);
    assert_non_null(c);
    vnvme_state_out_fini(&w);
    e->ft->c = c;
    return c;
}

static void host_carries_on(void **state)
{
    struct env *e = *state;
    /* Move the I/O queue's indices off zero and through a phase flip (16 entries). */
    for (int i = 0; i < 20; i++)
        assert_int_equal(io(e, NVME_NVM_WRITE, (uint64_t)i), 0);
    struct nvme_sqe aer;
    sqe_init(&aer, NVME_ADMIN_ASYNC_EVENT_REQUEST);
    ft_submit(e->ft, 0, &aer);
    ft_poll(e->ft);
    assert_int_equal(e->ft->c->nr_aer_reqs, 1);
    struct nvme_sqe sf;
    sqe_init(&sf, NVME_ADMIN_SET_FEATURES);
    sf.cdw10 = NVME_FEAT_ARBITRATION;
    sf.cdw11 = 0x03020103;
    assert_int_equal(admin(e->ft, &sf, NULL), 0);
    sqe_init(&sf, NVME_ADMIN_SET_FEATURES);
    sf.cdw10 = NVME_FEAT_ASYNC_EVENT_CONFIGURATION;
    sf.cdw11 = NVME_AEN_CFG_NS_ATTR;
    assert_int_equal(admin(e->ft, &sf, NULL), 0);
    uint16_t cntlid = e->ft->c->cntlid;
    uint32_t sq_head = e->ft->c->sqs[1].head, cq_tail = e->ft->c->cqs[1].tail;
    uint8_t phase = e->ft->c->cqs[1].phase;
    uint64_t writes = e->ft->c->write_cmds;

    struct nvmet_ctrlr *c = hand_over(e);
    assert_int_equal(c->cntlid, cntlid);
    assert_int_equal(c->sqs[1].head, sq_head);
    assert_int_equal(c->cqs[1].tail, cq_tail);
    assert_int_equal(c->cqs[1].phase, phase);
    assert_int_equal(c->write_cmds, writes);
    assert_true(c->csts & NVME_CSTS_RDY);
    /* The host goes on where it was: reads of what it wrote, across another phase flip. */
    for (int i = 0; i < 20; i++)
        assert_int_equal(io(e, NVME_NVM_READ, (uint64_t)i), 0);
    assert_int_equal(c->write_cmds, writes);
    /* The AER it sent to the first controller answers a namespace change made on the second. */
    struct ft_bdev *b2;
    assert_int_equal(ft_add_ns(e->ft, 2, 64, 512, &b2), 2);
    struct nvme_cqe cqe;
    bool got = false;
    for (int i = 0; i < 8 && !got; i++) {
        ft_poll(e->ft);
        got = ft_get_cqe(e->ft, 0, &cqe);
    }
    assert_true(got);
    assert_int_equal(cqe.cid, aer.cid);
    assert_int_equal(cqe.cdw0 & 0xff, NVME_AER_TYPE_NOTICE);
    /* Features came along. */
    sqe_init(&sf, NVME_ADMIN_GET_FEATURES);
    sf.cdw10 = NVME_FEAT_ARBITRATION;
    assert_int_equal(admin(e->ft, &sf, &cqe), 0);
    assert_int_equal(cqe.cdw0, 0x03020103);
}

static void busy_controller_is_not_saved(void **state)
{
    struct env *e = *state;
    e->b->deferred = e->b->hold = true;
    struct nvme_sqe sqe;
    ft_sqe_rw(&sqe, NVME_NVM_READ, 1, 3, 1, e->buf, 0);
    sqe.cid = next_cid++;
    ft_submit(e->ft, 1, &sqe);
    ft_poll(e->ft);
    assert_int_equal(e->ft->c->in_bdev, 1);
    struct vnvme_state_out w;
    vnvme_state_out_init(&w);
    assert_int_equal(nvmet_ctrlr_save(e->ft->c, &w), -EBUSY);
    vnvme_state_out_fini(&w);
    /* Fetching paused: a new command waits in the SQ while the one in flight finishes. */
    e->ft->c->fetch_paused = true;
    struct nvme_sqe next;
    ft_sqe_rw(&next, NVME_NVM_READ, 1, 4, 1, e->buf, 0);
    next.cid = next_cid++;
    ft_submit(e->ft, 1, &next);
    e->b->hold = false;
    for (int i = 0; i < 4; i++)
        ft_poll(e->ft);
    assert_true(nvmet_ctrlr_quiet(e->ft->c));
    assert_int_equal(e->ft->c->sqs[1].head, e->ft->c->sqs[1].tail - 1); /* the new one is still in the SQ */
    struct nvme_cqe cqe;
    assert_true(ft_get_cqe(e->ft, 1, &cqe));
    assert_int_equal(cqe.cid, sqe.cid);
    assert_false(ft_get_cqe(e->ft, 1, &cqe));
    e->ft->c->fetch_paused = false;
    for (int i = 0; i < 4; i++)
        ft_poll(e->ft);
    assert_true(ft_get_cqe(e->ft, 1, &cqe));
    assert_int_equal(cqe.cid, next.cid);
}

static void stuck_command_is_carried(void **state)
{
    struct env *e = *state;
    e->b->deferred = e->b->hold = e->b->recallable = true;
    struct nvme_sqe sqe;
    ft_sqe_rw(&sqe, NVME_NVM_WRITE, 1, 7, 1, e->buf, 0);
    sqe.cid = next_cid++;
    ft_submit(e->ft, 1, &sqe);
    ft_poll(e->ft);
    e->ft->c->fetch_paused = true;
    assert_int_equal(nvmet_ctrlr_recall_for_handover(e->ft->c), 1);
    assert_int_equal(e->ft->c->nr_carried, 1);
    assert_true(nvmet_ctrlr_quiet(e->ft->c));
    struct nvme_cqe cqe;
    ft_poll(e->ft);
    assert_false(ft_get_cqe(e->ft, 1, &cqe)); /* recalled, not completed to the host */
    uint32_t errors = (uint32_t)e->ft->c->error_count;

    struct nvmet_ctrlr *c = hand_over(e);
    assert_int_equal(c->nr_carried, 1);
    e->b->hold = false;
    bool got = false;
    for (int i = 0; i < 8 && !got; i++) {
        ft_poll(e->ft);
        got = ft_get_cqe(e->ft, 1, &cqe);
    }
    assert_true(got);
    assert_int_equal(cqe.cid, sqe.cid);
    assert_int_equal(ft_status(&cqe), 0);
    assert_int_equal(c->nr_carried, 0);
    assert_int_equal((uint32_t)c->error_count, errors); /* the recall was no error the host can see */
}

static void carried_commands_dropped_by_reset(void **state)
{
    struct env *e = *state;
    e->b->deferred = e->b->hold = e->b->recallable = true;
    struct nvme_sqe sqe;
    ft_sqe_rw(&sqe, NVME_NVM_WRITE, 1, 9, 1, e->buf, 0);
    sqe.cid = next_cid++;
    ft_submit(e->ft, 1, &sqe);
    ft_poll(e->ft);
    assert_int_equal(nvmet_ctrlr_recall_for_handover(e->ft->c), 1);
    ft_disable(e->ft);
    assert_int_equal(e->ft->c->nr_carried, 0);
}

/* Every prefix of a valid state and every single-byte change: refused, or restored into a working controller. */
static void restore_never_trusts_input(void **state)
{
    struct env *e = *state;
    assert_int_equal(io(e, NVME_NVM_WRITE, 1), 0);
    struct vnvme_state_out w;
    vnvme_state_out_init(&w);
    assert_int_equal(nvmet_ctrlr_save(e->ft->c, &w), 0);
    let_go(e);
    /* The state as saved restores: the refusals below are about the changes alone. */
    struct nvmet_ctrlr *ok = restore_into_new(e, &w, NULL);
    assert_non_null(ok);
    nvmet_ctrlr_forget(ok);
    free(ok);
    for (size_t len = 0; len < w.len; len += 1 + len / 64) {
        struct vnvme_state_out t = w;
        t.len = len;
        const char *why = NULL;
        assert_null(restore_into_new(e, &t, &why));
        assert_non_null(why);
    }
    srand(7);
    int restored = 0;
    for (int k = 0; k < 2000; k++) {
        size_t at = (size_t)rand() % w.len;
        uint8_t saved = w.buf[at];
        w.buf[at] ^= (uint8_t)(1 + rand() % 255);
        struct nvmet_ctrlr *c = restore_into_new(e, &w, NULL);
        if (c) {
            /* Accepted values (a counter, a feature) make a controller that polls without harm. */
            e->ft->c = c;
            for (int i = 0; i < 4; i++)
                ft_poll(e->ft);
            e->ft->c = NULL;
            nvmet_ctrlr_forget(c);
            free(c);
            restored++;
        }
        w.buf[at] = saved;
    }
    assert_true(restored > 0 && restored < 2000); /* both kinds of change occurred */
    vnvme_state_out_fini(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(host_carries_on, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(busy_controller_is_not_saved, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(stuck_command_is_carried, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(carried_commands_dropped_by_reset, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(restore_never_trusts_input, env_setup, env_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
