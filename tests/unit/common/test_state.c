/* SPDX-License-Identifier: MIT */
/* The handover state codec (common/state.h): round trips, and every way a reader refuses bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/state.h"

#define TAG 0x54455354u

static void write_sample(struct vnvme_state_out *w, int fd)
{
    vnvme_state_put_u8(w, 0xab);
    size_t at = vnvme_state_begin(w, TAG);
    vnvme_state_put_u16(w, 0x1234);
    vnvme_state_put_u32(w, 0xdeadbeef);
    vnvme_state_put_u64(w, 0x0102030405060708ull);
    vnvme_state_put_str(w, "nqn.2026-12.io.vnvme:a");
    vnvme_state_put_fd(w, fd);
    vnvme_state_put_fd(w, -1);
    vnvme_state_put_u8(w, 1);
    vnvme_state_end(w, at);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct vnvme_state_out w;
    vnvme_state_out_init(&w);
    write_sample(&w, 42);
    assert_int_equal(vnvme_state_out_error(&w), 0);
    assert_int_equal(w.nfds, 1);
    assert_int_equal(w.fds[0], 42);
    /* Little-endian on the wire whatever the host: the u16 after the tag and length. */
    assert_int_equal(w.buf[9], 0x34);
    assert_int_equal(w.buf[10], 0x12);

    int fds[1] = {42};
    struct vnvme_state_in r, sec;
    vnvme_state_in_init(&r, w.buf, w.len, fds, 1);
    assert_int_equal(vnvme_state_get_u8(&r), 0xab);
    vnvme_state_enter(&r, TAG, &sec);
    assert_int_equal(vnvme_state_get_u16(&sec), 0x1234);
    assert_int_equal(vnvme_state_get_u32(&sec), 0xdeadbeef);
    assert_true(vnvme_state_get_u64(&sec) == 0x0102030405060708ull);
    char s[32];
    vnvme_state_get_str(&sec, s, sizeof(s));
    assert_string_equal(s, "nqn.2026-12.io.vnvme:a");
    assert_int_equal(vnvme_state_get_fd(&sec), 42);
    assert_int_equal(fds[0], -1); /* taken: not closed by whoever cleans up the rest */
    assert_int_equal(vnvme_state_get_fd(&sec), -1);
    assert_true(vnvme_state_get_bool(&sec));
    vnvme_state_expect_end(&sec);
    vnvme_state_expect_end(&r);
    assert_true(vnvme_state_in_ok(&r));
    vnvme_state_out_fini(&w);
}

/* Every prefix of a valid state is refused, never read past. */
static void test_truncated(void **state)
{
    (void)state;
    struct vnvme_state_out w;
    vnvme_state_out_init(&w);
    write_sample(&w, 7);
    for (size_t len = 0; len < w.len; len++) {
        int fds[1] = {7};
        struct vnvme_state_in r, sec;
        vnvme_state_in_init(&r, w.buf, len, fds, 1);
        (void)vnvme_state_get_u8(&r);
        vnvme_state_enter(&r, TAG, &sec);
        (void)vnvme_state_get_u16(&sec);
        (void)vnvme_state_get_u32(&sec);
        (void)vnvme_state_get_u64(&sec);
        char s[32];
        vnvme_state_get_str(&sec, s, sizeof(s));
        (void)vnvme_state_get_fd(&sec);
        (void)vnvme_state_get_fd(&sec);
        (void)vnvme_state_get_bool(&sec);
        vnvme_state_expect_end(&sec);
        assert_false(vnvme_state_in_ok(&r));
        assert_non_null(vnvme_state_in_why(&r));
    }
    vnvme_state_out_fini(&w);
}

static const char *read_after(const uint8_t *buf, size_t len, int nfds, void (*fn)(struct vnvme_state_in *))
{
    int fds[2] = {5, 6};
    static struct vnvme_state_in r;
    vnvme_state_in_init(&r, buf, len, fds, (size_t)nfds);
    fn(&r);
    return vnvme_state_in_why(&r);
}

static void take_two_fds(struct vnvme_state_in *r)
{
    (void)vnvme_state_get_fd(r);
    (void)vnvme_state_get_fd(r);
}

static void enter_tag(struct vnvme_state_in *r)
{
    struct vnvme_state_in sec;
    vnvme_state_enter(r, TAG, &sec);
}

static void short_string(struct vnvme_state_in *r)
{
    char s[4];
    vnvme_state_get_str(r, s, sizeof(s));
}

static void a_flag(struct vnvme_state_in *r)
{
    (void)vnvme_state_get_bool(r);
}

static void test_refusals(void **state)
{
    (void)state;
    const uint8_t same_fd_twice[] = {0, 0, 0, 0, 0, 0, 0, 0};
    assert_non_null(read_after(same_fd_twice, sizeof(same_fd_twice), 2, take_two_fds));
    const uint8_t fd_out_of_range[] = {2, 0, 0, 0};
    assert_non_null(read_after(fd_out_of_range, sizeof(fd_out_of_range), 2, take_two_fds));
    const uint8_t wrong_tag[] = {1, 2, 3, 4, 0, 0, 0, 0};
    assert_non_null(read_after(wrong_tag, sizeof(wrong_tag), 0, enter_tag));
    const uint8_t section_too_long[] = {0x54, 0x53, 0x45, 0x54, 9, 0, 0, 0, 1};
    assert_non_null(read_after(section_too_long, sizeof(section_too_long), 0, enter_tag));
    const uint8_t string_too_long[] = {4, 0, 0, 0, 'a', 'b', 'c', 'd'};
    assert_non_null(read_after(string_too_long, sizeof(string_too_long), 0, short_string));
    const uint8_t string_with_nul[] = {2, 0, 0, 0, 'a', 0};
    assert_non_null(read_after(string_with_nul, sizeof(string_with_nul), 0, short_string));
    const uint8_t not_a_flag[] = {2};
    assert_non_null(read_after(not_a_flag, sizeof(not_a_flag), 0, a_flag));
    const uint8_t trailing[] = {0x54, 0x53, 0x45, 0x54, 1, 0, 0, 0, 1};
    int fds[1] = {-1};
    struct vnvme_state_in r, sec;
    vnvme_state_in_init(&r, trailing, sizeof(trailing), fds, 0);
    vnvme_state_enter(&r, TAG, &sec);
    vnvme_state_expect_end(&sec);
    assert_false(vnvme_state_in_ok(&r)); /* a section's failure is its parent's */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
