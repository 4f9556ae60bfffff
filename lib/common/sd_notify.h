/* SPDX-License-Identifier: MIT */
/*
 * Telling a service manager how the daemon is doing: systemd's notification
 * protocol (sd_notify(3)), without linking libsystemd. A unit with
 * Type=notify sets $NOTIFY_SOCKET to a datagram socket (a path, or an
 * abstract name written with a leading '@'); each state is one datagram of
 * "KEY=VALUE" lines. Without $NOTIFY_SOCKET nothing is sent.
 */
#ifndef VNVME_COMMON_SD_NOTIFY_H
#define VNVME_COMMON_SD_NOTIFY_H

#include <stddef.h>

#define VNVME_SD_MAX_FDS 253 /* SCM_MAX_FD */
#define VNVME_SD_LISTEN_FDS_START 3

/* Send state (e.g. "READY=1\nSTATUS=serving 3 controllers"). 1 sent, 0 no manager, or -errno. */
int vnvme_sd_notify(const char *state);
/* The same with file descriptors attached (FDSTORE=1 and FDNAME=...: systemd keeps them for the next start). */
int vnvme_sd_notify_fds(const char *state, const int *fds, size_t nfds);
/*
 * The descriptors a service manager passed (sd_listen_fds(3)): how many there
 * are from fd 3 on, with their names in *names (malloc'd, NULL-terminated; the
 * caller frees). 0 when none are for this process. The variables are unset and
 * the fds made close-on-exec, so they reach no child.
 */
int vnvme_sd_listen_fds(char ***names);

#endif
