/* SPDX-License-Identifier: MIT */
/* vnvme_build_prps against an independent page walk, for every dword offset and many sizes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vnvme/nvme_host.h"

#define PAGE 4096u
#define MDTS_PAGES 256u /* 1 MiB */
#define BASE 0x10000000000ull
#define LIST_IOVA 0x20000000000ull

static uint64_t list[PAGE / 8];

/* The page addresses a controller would transfer through, in order. */
static void check(uint64_t iova, uint32_t len)
{
    uint64_t prp1 = 1, prp2 = 1;
    memset(list, 0xee, sizeof(list));
    assert_int_equal(vnvme_build_prps(iova, len, PAGE, list, LIST_IOVA, MDTS_PAGES, &prp1, &prp2), 0);
    assert_int_equal(prp1, iova);
    uint64_t first = PAGE - (iova % PAGE);
    if (len <= first) {
        assert_int_equal(prp2, 0);
        return;
    }
    uint64_t pages_after = (len - first + PAGE - 1) / PAGE;
    uint64_t page0 = iova - iova % PAGE;
    if (pages_after == 1) {
        assert_int_equal(prp2, page0 + PAGE);
        return;
    }
    assert_int_equal(prp2, LIST_IOVA);
    for (uint64_t i = 0; i < pages_after; i++)
        assert_int_equal(list[i], page0 + (i + 1) * PAGE);
    if (pages_after < PAGE / 8)
        assert_int_equal(list[pages_after], 0xeeeeeeeeeeeeeeeeull); /* nothing beyond the last entry */
}

static void test_every_offset_small_sizes(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {1, 4, 511, 512, 513, 4092, 4095, 4096, 4097, 8191, 8192, 8193, 12288, 16384};
    for (uint32_t off = 0; off < PAGE; off += 4)
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
            check(BASE + 7 * PAGE + off, sizes[s]);
}

static void test_page_boundaries_per_offset(void **state)
{
    (void)state;
    /* Lengths that end exactly at, just before and just after the first and second page boundary. */
    for (uint32_t off = 0; off < PAGE; off += 4) {
        uint32_t first = PAGE - off;
        for (int d = -1; d <= 1; d++) {
            if ((int)first + d > 0)
                check(BASE + off, (uint32_t)((int)first + d));
            check(BASE + off, (uint32_t)((int)first + (int)PAGE + d));
        }
    }
}

static void test_sizes_up_to_mdts(void **state)
{
    (void)state;
    static const uint32_t offsets[] = {0, 4, 512, 2048, 4092};
    for (size_t o = 0; o < sizeof(offsets) / sizeof(offsets[0]); o++) {
        for (uint32_t pages = 1; pages <= MDTS_PAGES; pages++) {
            check(BASE + offsets[o], pages * PAGE);
            check(BASE + offsets[o], pages * PAGE - 4);
            if (pages < MDTS_PAGES)
                check(BASE + offsets[o], pages * PAGE + 1);
        }
        for (uint32_t len = 1; len <= (1u << 20); len = len * 3 + 1)
            check(BASE + offsets[o], len);
    }
    /* Exactly MDTS, unaligned: 257 pages touched, 256 list entries. */
    uint64_t p1, p2;
    assert_int_equal(vnvme_build_prps(BASE + 4, 1u << 20, PAGE, list, LIST_IOVA, MDTS_PAGES, &p1, &p2), 0);
    assert_int_equal(list[255], BASE + 256 * PAGE);
}

static void test_rejects(void **state)
{
    (void)state;
    uint64_t p1, p2;
    for (uint32_t odd = 1; odd < 4; odd++) {
        assert_int_equal(vnvme_build_prps(BASE + odd, 512, PAGE, list, LIST_IOVA, MDTS_PAGES, &p1, &p2), -EINVAL);
        assert_int_equal(vnvme_build_prps(BASE + 4096 + 4 * 17 + odd, 8192, PAGE, list, LIST_IOVA, MDTS_PAGES, &p1, &p2),
                         -EINVAL);
    }
    /* More than MDTS. */
    assert_int_equal(vnvme_build_prps(BASE, (1u << 20) + 1, PAGE, list, LIST_IOVA, MDTS_PAGES, &p1, &p2), -EINVAL);
    assert_int_equal(vnvme_build_prps(BASE, 2u << 20, PAGE, list, LIST_IOVA, MDTS_PAGES, &p1, &p2), -EINVAL);
    /* A list is needed but none was given, or it is not page aligned. */
    assert_int_equal(vnvme_build_prps(BASE, 3 * PAGE, PAGE, NULL, 0, MDTS_PAGES, &p1, &p2), -EINVAL);
    assert_int_equal(vnvme_build_prps(BASE, 3 * PAGE, PAGE, list, LIST_IOVA + 8, MDTS_PAGES, &p1, &p2), -EINVAL);
    /* Two pages need no list. */
    assert_int_equal(vnvme_build_prps(BASE, 2 * PAGE, PAGE, NULL, 0, MDTS_PAGES, &p1, &p2), 0);
    assert_int_equal(p2, BASE + PAGE);
    /* Bad page size. */
    assert_int_equal(vnvme_build_prps(BASE, 512, 3000, list, LIST_IOVA, MDTS_PAGES, &p1, &p2), -EINVAL);
    /* No data. */
    assert_int_equal(vnvme_build_prps(BASE, 0, PAGE, NULL, 0, MDTS_PAGES, &p1, &p2), 0);
    assert_int_equal(p1, 0);
    assert_int_equal(p2, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_offset_small_sizes),
        cmocka_unit_test(test_page_boundaries_per_offset),
        cmocka_unit_test(test_sizes_up_to_mdts),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
