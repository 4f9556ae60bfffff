/* SPDX-License-Identifier: MIT */
/*
 * TAP lines from the guest's C test programs (no plan; scripts/test counts
 * them): check() prints "ok N - ..." or "not ok N - ...", and failures
 * counts the second kind for the program's exit status.
 */
#ifndef VNVME_GUEST_TAP_CHECK_H
#define VNVME_GUEST_TAP_CHECK_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/ioctl.h>

static int checks, failures;

static inline __attribute__((format(printf, 2, 3))) void check(bool ok, const char *fmt, ...)
{
    va_list ap;
    checks++;
    if (!ok)
        failures++;
    printf("%s %d - ", ok ? "ok" : "not ok", checks);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* An ioctl's outcome as one number: its return value, or -errno. */
static inline long ioctl_result(int fd, unsigned long cmd, void *arg)
{
    long rc = ioctl(fd, cmd, arg);
    return rc < 0 ? -errno : rc;
}

#endif
