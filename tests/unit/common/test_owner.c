/* SPDX-License-Identifier: MIT */
/* Users, groups and modes as vnvmed's options and RPC parameters accept them (lib/common/owner.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/owner.h"

static void test_users(void **state)
{
    (void)state;
    uid_t u = 7;
    assert_int_equal(vnvme_parse_user("root", &u), 0);
    assert_int_equal(u, 0);
    assert_int_equal(vnvme_parse_user("107", &u), 0);
    assert_int_equal(u, 107);
    assert_int_equal(vnvme_parse_user("4294967294", &u), 0); /* an id with no name */
    assert_int_equal(u, 4294967294u);
    assert_int_equal(vnvme_parse_user("no-such-user-vnvme", &u), -ENOENT);
    assert_int_equal(vnvme_parse_user("", &u), -EINVAL);
    assert_int_equal(vnvme_parse_user(NULL, &u), -EINVAL);
    /* chown's "leave it" value and anything beyond 32 bits are no ids. */
    assert_int_equal(vnvme_parse_user("4294967295", &u), -ENOENT);
    assert_int_equal(vnvme_parse_user("99999999999", &u), -ENOENT);
    assert_int_equal(u, 4294967294u); /* untouched by failures */
}

static void test_groups(void **state)
{
    (void)state;
    gid_t g = 7;
    assert_int_equal(vnvme_parse_group("root", &g), 0);
    assert_int_equal(g, 0);
    assert_int_equal(vnvme_parse_group("64055", &g), 0);
    assert_int_equal(g, 64055);
    assert_int_equal(vnvme_parse_group("no-such-group-vnvme", &g), -ENOENT);
    assert_int_equal(vnvme_parse_group("12x", &g), -ENOENT); /* not a number, so a name nobody has */
    assert_int_equal(vnvme_parse_group("", &g), -EINVAL);
}

static void test_modes(void **state)
{
    (void)state;
    mode_t m = 0;
    assert_int_equal(vnvme_parse_mode("0640", &m), 0);
    assert_int_equal(m, 0640);
    assert_int_equal(vnvme_parse_mode("660", &m), 0);
    assert_int_equal(m, 0660);
    assert_int_equal(vnvme_parse_mode("4755", &m), 0);
    assert_int_equal(m, 04755);
    assert_int_equal(vnvme_parse_mode("0", &m), 0);
    assert_int_equal(m, 0);
    const char *bad[] = {"", "8", "0689", "10000", "-1", "rw-r-----", "0640 ", "0x1a4"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(vnvme_parse_mode(bad[i], &m), -EINVAL);
    assert_int_equal(vnvme_parse_mode(NULL, &m), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_users),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
