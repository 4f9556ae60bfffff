/* SPDX-License-Identifier: MIT */
/* vnvme_copy_stream: memcpy's result for every length, alignment pair and around the streaming threshold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/copy.h"

#define SPAN 8192u
#define GUARD 64u

static void check_copy(size_t dst_off, size_t src_off, size_t n)
{
    static uint8_t src[SPAN + 2 * GUARD] __attribute__((aligned(64)));
    static uint8_t dst[SPAN + 2 * GUARD] __attribute__((aligned(64)));
    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)(i * 7u + n);
    memset(dst, 0xcd, sizeof(dst));
    vnvme_copy_stream(dst + GUARD + dst_off, src + GUARD + src_off, n);
    vnvme_copy_stream_fence();
    assert_memory_equal(dst + GUARD + dst_off, src + GUARD + src_off, n);
    /* Nothing outside [dst_off, dst_off + n) was touched. */
    for (size_t i = 0; i < GUARD + dst_off; i++)
        assert_int_equal(dst[i], 0xcd);
    for (size_t i = GUARD + dst_off + n; i < sizeof(dst); i++)
        assert_int_equal(dst[i], 0xcd);
}

static void test_small_and_threshold_lengths(void **state)
{
    (void)state;
    for (size_t n = 0; n <= 1100; n++)
        check_copy(n % 16u, (n * 5u) % 16u, n);
}

static void test_every_alignment(void **state)
{
    (void)state;
    static const size_t lens[] = {1023, 1024, 1025, 1087, 4096, 4092, 4100, 8000};
    for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
        for (size_t d = 0; d < 16; d++)
            for (size_t s = 0; s < 16; s++)
                check_copy(d, s, lens[l]);
}

static void test_whole_pages(void **state)
{
    (void)state;
    check_copy(0, 0, SPAN);
    check_copy(4, 0, SPAN - 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_and_threshold_lengths),
        cmocka_unit_test(test_every_alignment),
        cmocka_unit_test(test_whole_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
