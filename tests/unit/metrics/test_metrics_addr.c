/* SPDX-License-Identifier: MIT */
/* vnvmed --metrics' argument: what binds where, and what is refused with which reason. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

/* Parses arg and formats the result back: "127.0.0.1:9477", "[::1]:80". */
static const char *round_trip(const char *arg)
{
    static char buf[80];
    struct sockaddr_storage ss;
    socklen_t len = 0;
    const char *why = NULL;
    if (metrics_parse_address(arg, &ss, &len, &why) != 0)
        fail_msg("'%s' refused: %s", arg, why);
    assert_int_equal(len, ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    metrics_format_address((struct sockaddr *)&ss, buf, sizeof(buf));
    return buf;
}

static void test_accepted(void **state)
{
    (void)state;
    /* No address: loopback only, never every interface by default. */
    assert_string_equal(round_trip("9477"), "127.0.0.1:9477");
    assert_string_equal(round_trip(":9477"), "127.0.0.1:9477");
    assert_string_equal(round_trip("127.0.0.1:1"), "127.0.0.1:1");
    assert_string_equal(round_trip("0.0.0.0:65535"), "0.0.0.0:65535");
    assert_string_equal(round_trip("10.1.2.3:80"), "10.1.2.3:80");
    assert_string_equal(round_trip("[::1]:9477"), "[::1]:9477");
    assert_string_equal(round_trip("[::]:9477"), "[::]:9477");
    assert_string_equal(round_trip("[fe80::1:2]:8080"), "[fe80::1:2]:8080");
}

static void refused(const char *arg, const char *want_why)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    const char *why = NULL;
    if (metrics_parse_address(arg, &ss, &len, &why) != -EINVAL)
        fail_msg("'%s' accepted", arg);
    assert_non_null(why);
    if (!strstr(why, want_why))
        fail_msg("'%s': reason '%s', expected one with '%s'", arg, why, want_why);
}

static void test_refused(void **state)
{
    (void)state;
    refused("", "no port");
    refused(":", "no port");
    refused("127.0.0.1:", "no port");
    refused("0", "1 to 65535");
    refused("65536", "1 to 65535");
    refused("99999999999999999999", "1 to 65535");
    refused("127.0.0.1", "1 to 65535"); /* an address alone reads as a port */
    refused("127.0.0.1:80x", "1 to 65535");
    refused("127.0.0.1:-1", "1 to 65535");
    refused("127.0.0.1: 80", "1 to 65535");
    refused("localhost:9477", "not an IPv4 address");
    refused("1.2.3:80", "not an IPv4 address");
    refused("256.0.0.1:80", "not an IPv4 address");
    refused("::1:9477", "brackets");
    refused("[::1", "brackets");
    refused("[::1]", "a port must follow");
    refused("[::1]9477", "a port must follow");
    refused("[::1]:", "no port");
    refused("[127.0.0.1]:80", "not an IPv6 address");
    refused("[0123456789012345678901234567890123456789012345678901234567890123456789]:80", "brackets");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
