/* SPDX-License-Identifier: MIT */
/* Leveled logging to stderr, shared by every library and daemon of vnvme. */
#ifndef VNVME_LOG_H
#define VNVME_LOG_H

enum vnvme_log_level {
    VNVME_LOG_ERROR = 0,
    VNVME_LOG_WARN = 1,
    VNVME_LOG_NOTICE = 2,
    VNVME_LOG_INFO = 3,
    VNVME_LOG_DEBUG = 4,
};

void vnvme_log_set_level(enum vnvme_log_level level);
enum vnvme_log_level vnvme_log_get_level(void);
/* Parse "error", "warn", "notice", "info" or "debug"; -1 when unknown. */
int vnvme_log_parse_level(const char *name);
void vnvme_log(enum vnvme_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define VNVME_ERR(comp, ...) vnvme_log(VNVME_LOG_ERROR, comp, __VA_ARGS__)
#define VNVME_WARN(comp, ...) vnvme_log(VNVME_LOG_WARN, comp, __VA_ARGS__)
#define VNVME_NOTICE(comp, ...) vnvme_log(VNVME_LOG_NOTICE, comp, __VA_ARGS__)
#define VNVME_INFO(comp, ...) vnvme_log(VNVME_LOG_INFO, comp, __VA_ARGS__)
/* Debug messages cost one load and a branch when disabled. */
#define VNVME_DEBUG(comp, ...)                                                                                         \
    do {                                                                                                               \
        if (vnvme_log_get_level() >= VNVME_LOG_DEBUG)                                                                  \
            vnvme_log(VNVME_LOG_DEBUG, comp, __VA_ARGS__);                                                             \
    } while (0)

#endif
