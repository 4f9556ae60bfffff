/* SPDX-License-Identifier: MIT */
/* VERSION capabilities JSON: defaults, values, malformed input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vfio-user/msg.h"

static int parse(const char *s, struct vfio_user_caps *c)
{
    return vfio_user_caps_parse(s, strlen(s) + 1, c);
}

static void test_absent_data_gives_spec_defaults(void **state)
{
    (void)state;
    struct vfio_user_caps c;
    assert_int_equal(vfio_user_caps_parse(NULL, 0, &c), 0);
    assert_int_equal(c.max_msg_fds, 1);
    assert_int_equal(c.max_data_xfer_size, 1048576);
    assert_int_equal(c.max_dma_maps, 65535);
    assert_int_equal(c.pgsizes, 4096);
    assert_false(c.twin_socket);
    assert_int_equal(parse("{}", &c), 0);
    assert_int_equal(c.max_msg_fds, 1);
    assert_int_equal(parse("{\"capabilities\":{}}", &c), 0);
    assert_int_equal(c.max_data_xfer_size, 1048576);
}

static void test_values_are_read(void **state)
{
    (void)state;
    struct vfio_user_caps c;
    /* What QEMU's client sends, give or take keys we do not know. */
    assert_int_equal(parse("{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":262144,"
                           "\"max_dma_maps\":100,\"pgsizes\":4096,\"write_multiple\":true,"
                           "\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":1},"
                           "\"twin_socket\":{\"supported\":true}}}",
                           &c),
                     0);
    assert_int_equal(c.max_msg_fds, 16);
    assert_int_equal(c.max_data_xfer_size, 262144);
    assert_int_equal(c.max_dma_maps, 100);
    assert_int_equal(c.pgsizes, 4096);
    assert_true(c.twin_socket);
    /* pgsizes is a 64-bit mask. */
    assert_int_equal(parse("{\"capabilities\":{\"pgsizes\":18446744073709547520}}", &c), 0);
    assert_true(c.pgsizes == 0xfffffffffffff000ull);
    /* Without the terminating NUL too. */
    const char *s = "{\"capabilities\":{\"max_msg_fds\":3}}";
    assert_int_equal(vfio_user_caps_parse(s, strlen(s), &c), 0);
    assert_int_equal(c.max_msg_fds, 3);
}

static void test_malformed_is_refused(void **state)
{
    (void)state;
    struct vfio_user_caps c;
    const char *bad[] = {
        "{",
        "[]",
        "42",
        "{\"capabilities\":[]}",
        "{\"capabilities\":{\"max_msg_fds\":-1}}",
        "{\"capabilities\":{\"max_msg_fds\":\"8\"}}",
        "{\"capabilities\":{\"max_msg_fds\":4294967296}}",
        "{\"capabilities\":{\"max_data_xfer_size\":1.5}}",
        "{\"capabilities\":{\"twin_socket\":true}}",
        "{\"capabilities\":{\"twin_socket\":{\"supported\":1}}}",
        "{} trailing",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &c) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
    }
    /* A NUL inside the data is not JSON. */
    const char embedded[] = "{}\0{}";
    assert_int_equal(vfio_user_caps_parse(embedded, sizeof(embedded), &c), -EINVAL);
}

static void test_format_round_trips(void **state)
{
    (void)state;
    struct vfio_user_caps in = {.max_msg_fds = 64, .max_data_xfer_size = 1 << 20, .max_dma_maps = 1024,
                                .pgsizes = 4096};
    char buf[256];
    int n = vfio_user_caps_format(&in, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(buf) + 1);
    struct vfio_user_caps out;
    assert_int_equal(vfio_user_caps_parse(buf, (size_t)n, &out), 0);
    assert_int_equal(out.max_msg_fds, 64);
    assert_int_equal(out.max_data_xfer_size, 1 << 20);
    assert_int_equal(out.max_dma_maps, 1024);
    assert_int_equal(out.pgsizes, 4096);
    assert_int_equal(vfio_user_caps_format(&in, buf, 10), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absent_data_gives_spec_defaults),
        cmocka_unit_test(test_values_are_read),
        cmocka_unit_test(test_malformed_is_refused),
        cmocka_unit_test(test_format_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
