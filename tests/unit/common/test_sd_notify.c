/* SPDX-License-Identifier: MIT */
/* The service manager notification (lib/common/sd_notify.c): addresses as systemd gives them, payload as sent. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/sd_notify.h"

static int bind_dgram(const char *name, bool abstract)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    memcpy(a.sun_path + (abstract ? 1 : 0), name, len);
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, alen), 0);
    return fd;
}

static void expect_datagram(int fd, const char *text)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, text);
}

static void test_no_manager(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(vnvme_sd_notify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(vnvme_sd_notify("READY=1"), 0);
}

static void test_path_and_abstract(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof(path), "/tmp/vnvme-notify-%d", (int)getpid());
    unlink(path);
    int fd = bind_dgram(path, false);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(vnvme_sd_notify("READY=1\nSTATUS=up"), 1);
    expect_datagram(fd, "READY=1\nSTATUS=up");
    close(fd);
    unlink(path);

    char name[64], env[72];
    snprintf(name, sizeof(name), "vnvme-notify-abstract-%d", (int)getpid());
    snprintf(env, sizeof(env), "@%s", name);
    fd = bind_dgram(name, true);
    setenv("NOTIFY_SOCKET", env, 1);
    assert_int_equal(vnvme_sd_notify("STOPPING=1"), 1);
    expect_datagram(fd, "STOPPING=1");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

static void test_bad_addresses(void **state)
{
    (void)state;
    setenv("NOTIFY_SOCKET", "relative/notify", 1);
    assert_int_equal(vnvme_sd_notify("READY=1"), -EINVAL);
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    setenv("NOTIFY_SOCKET", longpath, 1);
    assert_int_equal(vnvme_sd_notify("READY=1"), -EINVAL);
    /* A manager that went away: the error is reported, not hidden. */
    setenv("NOTIFY_SOCKET", "/tmp/vnvme-notify-nobody-listens", 1);
    assert_true(vnvme_sd_notify("READY=1") < 0);
    unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_manager),
        cmocka_unit_test(test_path_and_abstract),
        cmocka_unit_test(test_bad_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
