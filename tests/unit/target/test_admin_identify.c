/* SPDX-License-Identifier: MIT */
/* Identify CNS 00h/01h/02h/03h as a host sees them through the admin queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "admin_harness.h"
#include "fake_transport.h"


/* Identify into a fresh page pre-filled with 0xAA (so zero fill is visible); returns the page. */
static uint16_t identify(struct ft *ft, uint8_t cns, uint32_t nsid, uint8_t **data)
{
    uint64_t buf = ft_alloc(ft, 4096, 4096);
    memset(ft_ptr(ft, buf), 0xaa, 4096);
    struct nvme_sqe sqe;
    sqe_init(&sqe, NVME_ADMIN_IDENTIFY);
    sqe.nsid = nsid;
    sqe.dptr.prp1 = buf;
    sqe.cdw10 = cns;
    *data = ft_ptr(ft, buf);
    return admin(ft, &sqe, NULL);
}

static void assert_padded(const char *field, size_t len, const char *text)
{
    size_t n = strlen(text);
    assert_memory_equal(field, text, n);
    for (size_t i = n; i < len; i++)
        assert_int_equal(field[i], ' ');
}

static void identify_controller(void **state)
{
    struct ft *ft = *state;
    uint8_t *p;
    assert_int_equal(identify(ft, NVME_ID_CNS_CTRL, 0, &p), 0);
    const struct nvme_id_ctrl *id = (const void *)p;

    assert_int_equal(id->vid, 0x4e56);
    assert_int_equal(id->ssvid, 0x4e56);
    assert_padded(id->sn, sizeof(id->sn), "SN0001");
    assert_padded(id->mn, sizeof(id->mn), "vnvme test");
    assert_padded(id->fr, sizeof(id->fr), "0.1.0");
    assert_int_equal(id->mdts, NVMET_MDTS);
    assert_int_equal(id->cntlid, ft->c->cntlid);
    assert_int_equal(id->ver, NVME_VS(2, 0, 0));
    assert_int_equal(id->oaes, NVME_CTRL_OAES_NS_ATTR);
    assert_int_equal(id->cntrltype, 1);
    assert_int_equal(id->oacs, NVME_CTRL_OACS_DBBUF);
    assert_int_equal(id->acl, 3);
    assert_int_equal(id->aerl, NVMET_AERL);
    assert_int_equal(id->frmw, 0x03);
    assert_int_equal(id->lpa, NVME_CTRL_LPA_CMD_EFFECTS | NVME_CTRL_LPA_EXTENDED);
    assert_int_equal(id->elpe, NVMET_ERROR_LOG_ENTRIES - 1);
    assert_int_equal(id->npss, 0);
    assert_true(id->psd[0].mp > 0);
    assert_int_equal(id->wctemp, 343);
    assert_int_equal(id->cctemp, 373);
    assert_int_equal(id->sqes, 0x66);
    assert_int_equal(id->cqes, 0x44);
    assert_int_equal(id->nn, NVMET_MAX_NSID);
    assert_true(id->oncs & NVME_CTRL_ONCS_DSM);
    assert_true(id->oncs & NVME_CTRL_ONCS_WRITE_ZEROES);
    assert_true(id->oncs & NVME_CTRL_ONCS_TIMESTAMP);
    assert_true(id->oncs & NVME_CTRL_ONCS_SAVE_FEATURES);
    assert_int_equal(id->fuses, 0);
    assert_int_equal(id->vwc, NVME_CTRL_VWC_PRESENT | NVME_CTRL_VWC_NSID_FFFFFFFF);
    assert_int_equal(id->sgls & 3u, 1u);
    assert_string_equal(id->subnqn, "nqn.2024-01.io.vnvme:test");
    /* The rest of SUBNQN is zero, not the 0xAA the buffer held. */
    assert_int_equal(id->subnqn[sizeof(id->subnqn) - 1], 0);
    assert_int_equal(p[4095], 0);
}

/* A data pointer whose first PRP starts mid-page: the structure continues on the PRP2 page. */
static void identify_controller_split_prp(void **state)
{
    struct ft *ft = *state;
    uint64_t first = ft_alloc(ft, 4096, 4096);
    uint64_t second = ft_alloc(ft, 4096, 4096);
    struct nvme_sqe sqe;
    sqe_init(&sqe, NVME_ADMIN_IDENTIFY);
    sqe.dptr.prp1 = first + 2048;
    sqe.dptr.prp2 = second;
    sqe.cdw10 = NVME_ID_CNS_CTRL;
    assert_int_equal(admin(ft, &sqe, NULL), 0);

    struct nvme_id_ctrl id;
    memcpy(&id, (uint8_t *)ft_ptr(ft, first) + 2048, 2048);
    memcpy((uint8_t *)&id + 2048, ft_ptr(ft, second), 2048);
    assert_int_equal(id.vid, 0x4e56);
    assert_string_equal(id.subnqn, "nqn.2024-01.io.vnvme:test"); /* offset 768: first page */
    assert_true(id.psd[0].mp > 0);                             /* offset 2048: second page */
}

static void identify_namespace(void **state)
{
    struct ft *ft = *state;
    uint8_t *p;
    assert_int_equal(ft_add_ns(ft, 1, 128, 512, NULL), 1);
    assert_int_equal(ft_add_ns(ft, 2, 100, 4096, NULL), 2);

    assert_int_equal(identify(ft, NVME_ID_CNS_NS, 1, &p), 0);
    const struct nvme_id_ns *ns = (const void *)p;
    assert_int_equal(ns->nsze, 128);
    assert_int_equal(ns->ncap, 128);
    assert_int_equal(ns->nuse, 128);
    assert_int_equal(ns->nlbaf, 0);
    assert_int_equal(ns->flbas, 0);
    assert_int_equal(ns->lbaf[0].lbads, 9);
    assert_int_equal(ns->lbaf[0].ms, 0);
    assert_int_equal(ns->dlfeat, 0x09);
    assert_int_equal(ns->nmic, 0);
    assert_memory_equal(ns->nguid, ft->ss->ns[1]->nguid, 16);
    assert_memory_equal(ns->eui64, ft->ss->ns[1]->eui64, 8);
    assert_int_equal(p[4095], 0);

    assert_int_equal(identify(ft, NVME_ID_CNS_NS, 2, &p), 0);
    ns = (const void *)p;
    assert_int_equal(ns->nsze, 100);
    assert_int_equal(ns->lbaf[0].lbads, 12);
}

static void identify_namespace_inactive_and_invalid(void **state)
{
    struct ft *ft = *state;
    uint8_t *p;
    assert_int_equal(ft_add_ns(ft, 1, 128, 512, NULL), 1);

    /* Valid but inactive: success with a zero-filled structure. */
    assert_int_equal(identify(ft, NVME_ID_CNS_NS, 5, &p), 0);
    for (int i = 0; i < 4096; i++)
        assert_int_equal(p[i], 0);
    assert_int_equal(identify(ft, NVME_ID_CNS_NS, NVMET_MAX_NSID, &p), 0);

    assert_int_equal(identify(ft, NVME_ID_CNS_NS, 0, &p), SC(GENERIC, INVALID_NAMESPACE_OR_FORMAT));
    assert_int_equal(identify(ft, NVME_ID_CNS_NS, NVMET_MAX_NSID + 1, &p), SC(GENERIC, INVALID_NAMESPACE_OR_FORMAT));
    /* No Namespace Management: no "common to all namespaces" structure. */
    assert_int_equal(identify(ft, NVME_ID_CNS_NS, 0xffffffffu, &p), SC(GENERIC, INVALID_NAMESPACE_OR_FORMAT));
    assert_int_equal(p[0], 0xaa); /* nothing written on failure */
}

static void active_namespace_list(void **state)
{
    struct ft *ft = *state;
    uint8_t *p;
    const uint32_t *list;
    assert_int_equal(ft_add_ns(ft, 7, 16, 512, NULL), 7);
    assert_int_equal(ft_add_ns(ft, 1, 16, 512, NULL), 1);
    assert_int_equal(ft_add_ns(ft, 3, 16, 512, NULL), 3);
    assert_int_equal(ft_add_ns(ft, NVMET_MAX_NSID, 16, 512, NULL), (int)NVMET_MAX_NSID);

    assert_int_equal(identify(ft, NVME_ID_CNS_ACTIVE_NS_LIST, 0, &p), 0);
    list = (const void *)p;
    assert_int_equal(list[0], 1);
    assert_int_equal(list[1], 3);
    assert_int_equal(list[2], 7);
    assert_int_equal(list[3], NVMET_MAX_NSID);
    assert_int_equal(list[4], 0);
    assert_int_equal(list[1023], 0);

    /* Strictly greater than the start NSID. */
    assert_int_equal(identify(ft, NVME_ID_CNS_ACTIVE_NS_LIST, 3, &p), 0);
    list = (const void *)p;
    assert_int_equal(list[0], 7);
    assert_int_equal(list[1], NVMET_MAX_NSID);
    assert_int_equal(list[2], 0);

    assert_int_equal(identify(ft, NVME_ID_CNS_ACTIVE_NS_LIST, NVMET_MAX_NSID, &p), 0);
    assert_int_equal(((const uint32_t *)p)[0], 0);
    assert_int_equal(identify(ft, NVME_ID_CNS_ACTIVE_NS_LIST, 0xfffffffeu, &p),
                     SC(GENERIC, INVALID_NAMESPACE_OR_FORMAT));
    assert_int_equal(identify(ft, NVME_ID_CNS_ACTIVE_NS_LIST, 0xffffffffu, &p),
                     SC(GENERIC, INVALID_NAMESPACE_OR_FORMAT));
}

static void namespace_descriptors(void **state)
{
    struct ft *ft = *state;
    uint8_t *p;
    assert_int_equal(ft_add_ns(ft, 2, 16, 512, NULL), 2);
    const struct nvmet_ns *ns = ft->ss->ns[2];

    assert_int_equal(identify(ft, NVME_ID_CNS_NS_DESC_LIST, 2, &p), 0);
    bool seen[5] = {false};
    size_t off = 0;
    while (off + 4 <= 4096 && p[off + 1] != 0) {
        uint8_t type = p[off], len = p[off + 1];
        const uint8_t *val = p + off + 4;
        assert_int_equal(p[off + 2], 0); /* reserved */
        assert_int_equal(p[off + 3], 0);
        assert_true(type >= 1 && type <= 4);
        assert_false(seen[type]);
        seen[type] = true;
        switch (type) {
        case NVME_NIDT_EUI64:
            assert_int_equal(len, 8);
            assert_memory_equal(val, ns->eui64, 8);
            break;
        case NVME_NIDT_NGUID:
            assert_int_equal(len, 16);
            assert_memory_equal(val, ns->nguid, 16);
            break;
        case NVME_NIDT_UUID:
            assert_int_equal(len, 16);
            assert_memory_equal(val, ns->uuid, 16);
            break;
        case NVME_NIDT_CSI:
            assert_int_equal(len, 1);
            assert_int_equal(val[0], 0); /* NVM command set */
            break;
        }
        off += 4u + len;
    }
    assert_true(seen[NVME_NIDT_CSI]);
    assert_true(seen[NVME_NIDT_UUID]); /* the fake bdev has a nonzero UUID */
    assert_true(seen[NVME_NIDT_NGUID]);
    /* The list ends with zeroes, not the old buffer contents. */
    for (size_t i = off; i < 4096; i++)
        assert_int_equal(p[i], 0);

    assert_int_equal(identify(ft, NVME_ID_CNS_NS_DESC_LIST, 3, &p), SC(GENERIC, INVALID_NAMESPACE_OR_FORMAT));
    assert_int_equal(identify(ft, NVME_ID_CNS_NS_DESC_LIST, 0, &p), SC(GENERIC, INVALID_NAMESPACE_OR_FORMAT));
    assert_int_equal(identify(ft, NVME_ID_CNS_NS_DESC_LIST, 0xffffffffu, &p),
                     SC(GENERIC, INVALID_NAMESPACE_OR_FORMAT));
}

static void unsupported_cns(void **state)
{
    struct ft *ft = *state;
    uint8_t *p;
    assert_int_equal(identify(ft, NVME_ID_CNS_NVMSET_LIST, 0, &p), SC(GENERIC, INVALID_FIELD));
    assert_int_equal(identify(ft, NVME_ID_CNS_CTRL_LIST, 0, &p), SC(GENERIC, INVALID_FIELD));
    assert_int_equal(identify(ft, 0xff, 0, &p), SC(GENERIC, INVALID_FIELD));
}

static void identify_bad_buffer(void **state)
{
    struct ft *ft = *state;
    struct nvme_sqe sqe;
    sqe_init(&sqe, NVME_ADMIN_IDENTIFY);
    sqe.dptr.prp1 = FT_MEM_IOVA + FT_MEM_SIZE; /* outside guest memory */
    sqe.cdw10 = NVME_ID_CNS_CTRL;
    assert_int_equal(admin(ft, &sqe, NULL), SC(GENERIC, DATA_TRANSFER_ERROR));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(identify_controller, setup, teardown),
        cmocka_unit_test_setup_teardown(identify_controller_split_prp, setup, teardown),
        cmocka_unit_test_setup_teardown(identify_namespace, setup, teardown),
        cmocka_unit_test_setup_teardown(identify_namespace_inactive_and_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(active_namespace_list, setup, teardown),
        cmocka_unit_test_setup_teardown(namespace_descriptors, setup, teardown),
        cmocka_unit_test_setup_teardown(unsupported_cns, setup, teardown),
        cmocka_unit_test_setup_teardown(identify_bad_buffer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
