/* SPDX-License-Identifier: MIT */
/*
 * Shared by the admin command tests: the test is the host, driving the admin
 * queue of a controller on the fake transport. Header-only so each test file
 * keeps its own command id counter.
 */
#ifndef VNVME_TEST_ADMIN_HARNESS_H
#define VNVME_TEST_ADMIN_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fake_transport.h"

static inline struct ft *setup_ft(void)
{
    struct ft *ft = ft_create();
    assert_non_null(ft);
    assert_true(ft_enable(ft, 32) & NVME_CSTS_RDY);
    return ft;
}

static inline int setup(void **state)
{
    *state = setup_ft();
    return 0;
}

static inline int teardown(void **state)
{
    ft_destroy(*state);
    return 0;
}

/* Command ids only need to differ between outstanding commands; one counter per test file. */
static uint16_t next_cid = 0x100;

static inline void sqe_init(struct nvme_sqe *sqe, uint8_t opc)
{
    memset(sqe, 0, sizeof(*sqe));
    sqe->opc = opc;
    sqe->cid = next_cid++;
}

/* Run one admin command; returns SCT/SC (no DNR/More) and the CQE in *out when given. */
static inline uint16_t admin(struct ft *ft, const struct nvme_sqe *sqe, struct nvme_cqe *out)
{
    struct nvme_cqe cqe;
    int st = ft_cmd(ft, 0, sqe, &cqe);
    assert_true(st >= 0);
    assert_int_equal(cqe.cid, sqe->cid);
    assert_int_equal(cqe.sqid, 0);
    if (out)
        *out = cqe;
    return ft_sct_sc((uint16_t)st);
}

#define SC(sct, sc) NVME_STATUS(NVME_SCT_##sct, NVME_SC_##sc)

#endif
