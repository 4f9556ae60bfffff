/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum vnvme_log_level current_level = VNVME_LOG_NOTICE;
static const char *const level_names[] = {"error", "warn", "notice", "info", "debug"};

void vnvme_log_set_level(enum vnvme_log_level level)
{
    current_level = level;
}

enum vnvme_log_level vnvme_log_get_level(void)
{
    return current_level;
}

int vnvme_log_parse_level(const char *name)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

void vnvme_log(enum vnvme_log_level level, const char *component, const char *fmt, ...)
{
    if (level > current_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* One fprintf per line so lines from several threads do not interleave. */
    fprintf(stderr, "[%lld.%06ld] %s %s: %s\n", (long long)ts.tv_sec, ts.tv_nsec / 1000, level_names[level],
            component, msg);
}
