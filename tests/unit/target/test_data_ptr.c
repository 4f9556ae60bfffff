/* SPDX-License-Identifier: MIT */
/* PRP and SGL data pointers, driven by Read/Write commands through the fake transport. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_transport.h"

#define BS 512u
#define ST(sc) NVME_STATUS(NVME_SCT_GENERIC, sc)
#define PAGE 4096ull

struct env {
    struct ft *ft;
    struct ft_bdev *b;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->ft = ft_create();
    assert_non_null(e->ft);
    assert_int_equal(ft_add_ns(e->ft, 1, 8192, BS, &e->b), 1);
    assert_true(ft_enable(e->ft, 32) & NVME_CSTS_RDY);
    assert_int_equal(ft_create_io_queues(e->ft, 1, 64, true, 1), 0);
    for (uint32_t i = 0; i < 8192 * BS; i++)
        e->b->data[i] = (uint8_t)(i * 13 + (i >> 9));
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    ft_destroy(e->ft);
    free(e);
    return 0;
}

static int rw(struct env *e, uint8_t opc, uint64_t slba, uint32_t nlb, uint64_t prp1, uint64_t prp2)
{
    struct nvme_sqe sqe;
    ft_sqe_rw(&sqe, opc, 1, slba, nlb, prp1, prp2);
    return ft_cmd(e->ft, 1, &sqe, NULL);
}

static void prp1_only(void **state)
{
    struct env *e = *state;
    uint64_t buf = ft_alloc(e->ft, PAGE, PAGE);
    /* A dword-aligned offset inside the page is allowed for PRP1. */
    assert_int_equal(rw(e, NVME_NVM_READ, 3, 1, buf + 0x204, 0), 0);
    assert_memory_equal((uint8_t *)ft_ptr(e->ft, buf) + 0x204, e->b->data + 3 * BS, BS);
}

static void prp1_and_prp2(void **state)
{
    struct env *e = *state;
    uint64_t a = ft_alloc(e->ft, PAGE, PAGE);
    ft_alloc(e->ft, PAGE, PAGE); /* keep the two pages apart */
    uint64_t b = ft_alloc(e->ft, PAGE, PAGE);
    /* 4 KiB starting 0x200 into the first page: 3.5 KiB there, 512 bytes in the second. */
    assert_int_equal(rw(e, NVME_NVM_READ, 16, 8, a + 0x200, b), 0);
    assert_memory_equal((uint8_t *)ft_ptr(e->ft, a) + 0x200, e->b->data + 16 * BS, PAGE - 0x200);
    assert_memory_equal(ft_ptr(e->ft, b), e->b->data + 16 * BS + PAGE - 0x200, 0x200);
    /* And back the other way. */
    memset(e->b->data + 16 * BS, 0, 8 * BS);
    assert_int_equal(rw(e, NVME_NVM_WRITE, 16, 8, a + 0x200, b), 0);
    assert_memory_equal(ft_ptr(e->ft, b), e->b->data + 16 * BS + PAGE - 0x200, 0x200);
}

static void prp2_must_be_page_aligned(void **state)
{
    struct env *e = *state;
    uint64_t a = ft_alloc(e->ft, 2 * PAGE, PAGE);
    assert_int_equal(ft_sct_sc(rw(e, NVME_NVM_READ, 0, 16, a, a + PAGE + 8)), ST(NVME_SC_INVALID_PRP_OFFSET));
    assert_int_equal(ft_sct_sc(rw(e, NVME_NVM_READ, 0, 1, a + 2, 0)), ST(NVME_SC_INVALID_PRP_OFFSET));
}

/* Scattered pages in reverse order, so a wrong walk cannot pass by accident. */
static uint64_t scattered_pages(struct env *e, uint64_t *pages, uint32_t n)
{
    uint64_t base = ft_alloc(e->ft, n * PAGE, PAGE);
    for (uint32_t i = 0; i < n; i++)
        pages[i] = base + (uint64_t)(n - 1 - i) * PAGE;
    return base;
}

static void check_pages(struct env *e, const uint64_t *pages, uint32_t n, uint64_t slba)
{
    for (uint32_t i = 0; i < n; i++)
        assert_memory_equal(ft_ptr(e->ft, pages[i]), e->b->data + slba * BS + i * PAGE, PAGE);
}

static void prp_list(void **state)
{
    struct env *e = *state;
    uint64_t pages[16];
    scattered_pages(e, pages, 16);
    uint64_t list = ft_alloc(e->ft, PAGE, PAGE) + 0x100; /* a list may start inside its page */
    uint64_t *l = ft_ptr(e->ft, list);
    for (int i = 1; i < 16; i++)
        l[i - 1] = pages[i];
    assert_int_equal(rw(e, NVME_NVM_READ, 40, 16 * 8, pages[0], list), 0);
    check_pages(e, pages, 16, 40);
}

static void chained_prp_list(void **state)
{
    struct env *e = *state;
    static uint64_t pages[256];
    scattered_pages(e, pages, 256);
    /* First list page holds 10 entries: 9 data pages and the pointer to the next list page. */
    uint64_t l1 = ft_alloc(e->ft, PAGE, PAGE) + PAGE - 10 * 8;
    uint64_t l2 = ft_alloc(e->ft, PAGE, PAGE);
    uint64_t *p1 = ft_ptr(e->ft, l1), *p2 = ft_ptr(e->ft, l2);
    for (int i = 0; i < 9; i++)
        p1[i] = pages[1 + i];
    p1[9] = l2;
    for (int i = 0; i < 255 - 9; i++)
        p2[i] = pages[10 + i];
    assert_int_equal(rw(e, NVME_NVM_READ, 0, 2048, pages[0], l1), 0); /* 1 MiB = MDTS */
    check_pages(e, pages, 256, 0);

    /* A chain pointer with an offset is refused. */
    p1[9] = l2 + 8;
    assert_int_equal(ft_sct_sc(rw(e, NVME_NVM_READ, 0, 2048, pages[0], l1)), ST(NVME_SC_INVALID_PRP_OFFSET));
}

static void prp_list_outside_memory(void **state)
{
    struct env *e = *state;
    uint64_t pages[4];
    uint64_t base = scattered_pages(e, pages, 4);
    memset(ft_ptr(e->ft, base), 0xee, 4 * PAGE);
    uint32_t before = e->b->nr_submitted;
    /* The list itself is outside client memory. */
    assert_int_equal(ft_sct_sc(rw(e, NVME_NVM_READ, 0, 32, pages[0], 0x100000)), ST(NVME_SC_DATA_TRANSFER_ERROR));
    /* The list is fine but one entry points outside. */
    uint64_t list = ft_alloc(e->ft, PAGE, PAGE);
    uint64_t *l = ft_ptr(e->ft, list);
    l[0] = pages[1];
    l[1] = FT_MEM_IOVA + FT_MEM_SIZE;
    l[2] = pages[3];
    assert_int_equal(ft_sct_sc(rw(e, NVME_NVM_READ, 0, 32, pages[0], list)), ST(NVME_SC_DATA_TRANSFER_ERROR));
    /* PRP1 itself outside. */
    assert_int_equal(ft_sct_sc(rw(e, NVME_NVM_WRITE, 0, 1, 0x2000, 0)), ST(NVME_SC_DATA_TRANSFER_ERROR));
    /* Nothing reached the bdev and no page was written. */
    assert_int_equal(e->b->nr_submitted, before);
    uint8_t *p = ft_ptr(e->ft, base);
    for (uint32_t i = 0; i < 4 * PAGE; i++)
        assert_int_equal(p[i], 0xee);
    /* A data entry with an offset. */
    l[1] = pages[2] + 0x10;
    assert_int_equal(ft_sct_sc(rw(e, NVME_NVM_READ, 0, 32, pages[0], list)), ST(NVME_SC_INVALID_PRP_OFFSET));
}

static void sgl_desc(struct nvme_sgl_desc *d, uint8_t type, uint64_t addr, uint32_t len)
{
    memset(d, 0, sizeof(*d));
    d->addr = addr;
    d->length = len;
    d->type = (uint8_t)(type << 4);
}

static int sgl_rw(struct env *e, uint8_t opc, uint64_t slba, uint32_t nlb, const struct nvme_sgl_desc *d)
{
    struct nvme_sqe sqe;
    ft_sqe_rw(&sqe, opc, 1, slba, nlb, 0, 0);
    sqe.flags = NVME_PSDT_SGL_MPTR_CONTIG << NVME_SQE_PSDT_SHIFT;
    sqe.dptr.sgl1 = *d;
    return ft_cmd(e->ft, 1, &sqe, NULL);
}

static void sgl_data_block(void **state)
{
    struct env *e = *state;
    uint64_t buf = ft_alloc(e->ft, 3 * BS, 1) + 3; /* SGLs are byte aligned */
    struct nvme_sgl_desc d;
    sgl_desc(&d, NVME_SGL_TYPE_DATA_BLOCK, buf, 2 * BS);
    assert_int_equal(sgl_rw(e, NVME_NVM_READ, 5, 2, &d), 0);
    assert_memory_equal(ft_ptr(e->ft, buf), e->b->data + 5 * BS, 2 * BS);
    /* Longer than the transfer: the excess is unused. */
    sgl_desc(&d, NVME_SGL_TYPE_DATA_BLOCK, buf, 3 * BS);
    assert_int_equal(sgl_rw(e, NVME_NVM_WRITE, 100, 2, &d), 0);
    assert_memory_equal(ft_ptr(e->ft, buf), e->b->data + 100 * BS, 2 * BS);
    /* Shorter: refused. */
    sgl_desc(&d, NVME_SGL_TYPE_DATA_BLOCK, buf, 2 * BS - 1);
    assert_int_equal(ft_sct_sc(sgl_rw(e, NVME_NVM_READ, 5, 2, &d)), ST(NVME_SC_DATA_SGL_LENGTH_INVALID));
}

static void sgl_segments(void **state)
{
    struct env *e = *state;
    uint64_t a = ft_alloc(e->ft, 100, 1), b = ft_alloc(e->ft, 900, 1), c = ft_alloc(e->ft, 124, 1);
    /* Segment: data a, then a Last Segment pointer; Last Segment: data b, data c. */
    uint64_t seg1 = ft_alloc(e->ft, 32, 16), seg2 = ft_alloc(e->ft, 32, 16);
    struct nvme_sgl_desc *s1 = ft_ptr(e->ft, seg1), *s2 = ft_ptr(e->ft, seg2);
    sgl_desc(&s1[0], NVME_SGL_TYPE_DATA_BLOCK, a, 100);
    sgl_desc(&s1[1], NVME_SGL_TYPE_LAST_SEGMENT, seg2, 32);
    sgl_desc(&s2[0], NVME_SGL_TYPE_DATA_BLOCK, b, 900);
    sgl_desc(&s2[1], NVME_SGL_TYPE_DATA_BLOCK, c, 24);
    struct nvme_sgl_desc d;
    sgl_desc(&d, NVME_SGL_TYPE_SEGMENT, seg1, 32);
    assert_int_equal(sgl_rw(e, NVME_NVM_READ, 7, 2, &d), 0);
    assert_memory_equal(ft_ptr(e->ft, a), e->b->data + 7 * BS, 100);
    assert_memory_equal(ft_ptr(e->ft, b), e->b->data + 7 * BS + 100, 900);
    assert_memory_equal(ft_ptr(e->ft, c), e->b->data + 7 * BS + 1000, 24);
    /* A Last Segment straight from the SQE. */
    sgl_desc(&d, NVME_SGL_TYPE_LAST_SEGMENT, seg2, 32);
    sgl_desc(&s2[1], NVME_SGL_TYPE_DATA_BLOCK, c, 124);
    assert_int_equal(sgl_rw(e, NVME_NVM_READ, 9, 2, &d), 0);
    assert_memory_equal(ft_ptr(e->ft, b), e->b->data + 9 * BS, 900);
    /* A Last Segment may not chain further. */
    sgl_desc(&s2[1], NVME_SGL_TYPE_SEGMENT, seg1, 32);
    assert_int_equal(ft_sct_sc(sgl_rw(e, NVME_NVM_READ, 9, 2, &d)), ST(NVME_SC_INVALID_SGL_SEG_DESCRIPTOR));
    /* Segment lengths are whole descriptors. */
    sgl_desc(&d, NVME_SGL_TYPE_SEGMENT, seg1, 24);
    assert_int_equal(ft_sct_sc(sgl_rw(e, NVME_NVM_READ, 9, 2, &d)), ST(NVME_SC_INVALID_SGL_SEG_DESCRIPTOR));
    sgl_desc(&d, NVME_SGL_TYPE_SEGMENT, seg1, 0);
    assert_int_equal(ft_sct_sc(sgl_rw(e, NVME_NVM_READ, 9, 2, &d)), ST(NVME_SC_INVALID_SGL_SEG_DESCRIPTOR));
    /* More descriptors than one segment page. */
    sgl_desc(&d, NVME_SGL_TYPE_LAST_SEGMENT, seg1, 257 * 16);
    assert_int_equal(ft_sct_sc(sgl_rw(e, NVME_NVM_READ, 9, 2, &d)), ST(NVME_SC_INVALID_NUM_SGL_DESCRIPTORS));
    /* A segment outside client memory. */
    sgl_desc(&d, NVME_SGL_TYPE_LAST_SEGMENT, 0x1000, 32);
    assert_int_equal(ft_sct_sc(sgl_rw(e, NVME_NVM_READ, 9, 2, &d)), ST(NVME_SC_DATA_TRANSFER_ERROR));
}

static void sgl_segment_loop_is_bounded(void **state)
{
    struct env *e = *state;
    /* A Segment whose last descriptor points back at itself, with no data: must end. */
    uint64_t seg = ft_alloc(e->ft, 32, 16), a = ft_alloc(e->ft, 16, 1);
    struct nvme_sgl_desc *s = ft_ptr(e->ft, seg);
    sgl_desc(&s[0], NVME_SGL_TYPE_DATA_BLOCK, a, 1);
    sgl_desc(&s[1], NVME_SGL_TYPE_SEGMENT, seg, 32);
    struct nvme_sgl_desc d;
    sgl_desc(&d, NVME_SGL_TYPE_SEGMENT, seg, 32);
    assert_int_equal(ft_sct_sc(sgl_rw(e, NVME_NVM_READ, 0, 2, &d)), ST(NVME_SC_INVALID_NUM_SGL_DESCRIPTORS));
}

static void sgl_wrong_types(void **state)
{
    struct env *e = *state;
    uint64_t buf = ft_alloc(e->ft, BS, 1);
    struct nvme_sgl_desc d;
    uint8_t types[] = {NVME_SGL_TYPE_BIT_BUCKET, NVME_SGL_TYPE_KEYED_DATA_BLOCK, 0x5, 0xf};
    for (size_t i = 0; i < sizeof(types); i++) {
        sgl_desc(&d, types[i], buf, BS);
        assert_int_equal(ft_sct_sc(sgl_rw(e, NVME_NVM_READ, 0, 1, &d)), ST(NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID));
    }
    sgl_desc(&d, NVME_SGL_TYPE_DATA_BLOCK, buf, BS);
    d.type |= NVME_SGL_SUBTYPE_OFFSET;
    assert_int_equal(ft_sct_sc(sgl_rw(e, NVME_NVM_READ, 0, 1, &d)), ST(NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID));
}

static void admin_sgl_and_copy_helpers(void **state)
{
    struct env *e = *state;
    struct nvmet_ctrlr *c = e->ft->c;
    struct nvmet_req req;
    memset(&req, 0, sizeof(req));
    req.sq = &c->sqs[0];
    uint64_t buf = ft_alloc(e->ft, 2 * PAGE, PAGE);
    req.cmd.dptr.prp1 = buf + PAGE - 16;
    req.cmd.dptr.prp2 = buf + PAGE;
    char out[64], in[64];
    for (int i = 0; i < 64; i++)
        out[i] = (char)i;
    assert_int_equal(nvmet_req_copy_to_host(&req, out, sizeof(out)), 0);
    assert_memory_equal((char *)ft_ptr(e->ft, buf) + PAGE - 16, out, 64);
    memset(in, 0, sizeof(in));
    assert_int_equal(nvmet_req_copy_from_host(&req, in, sizeof(in)), 0);
    assert_memory_equal(in, out, 64);
    assert_int_equal(req.iovcnt, 1); /* adjacent pages merged */
    req.cmd.flags = NVME_PSDT_SGL_MPTR_CONTIG << NVME_SQE_PSDT_SHIFT;
    assert_int_equal(nvmet_req_copy_to_host(&req, out, sizeof(out)) & 0x7ff, ST(NVME_SC_INVALID_FIELD));
    req.cmd.flags = 0;
    assert_int_equal(nvmet_req_map_data(&req, NVMET_MAX_DATA_LEN + 1, VFIO_USER_DMA_WRITE_OK) & 0x7ff,
                     ST(NVME_SC_INVALID_FIELD));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(prp1_only, setup, teardown),
        cmocka_unit_test_setup_teardown(prp1_and_prp2, setup, teardown),
        cmocka_unit_test_setup_teardown(prp2_must_be_page_aligned, setup, teardown),
        cmocka_unit_test_setup_teardown(prp_list, setup, teardown),
        cmocka_unit_test_setup_teardown(chained_prp_list, setup, teardown),
        cmocka_unit_test_setup_teardown(prp_list_outside_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(sgl_data_block, setup, teardown),
        cmocka_unit_test_setup_teardown(sgl_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(sgl_segment_loop_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(sgl_wrong_types, setup, teardown),
        cmocka_unit_test_setup_teardown(admin_sgl_and_copy_helpers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
