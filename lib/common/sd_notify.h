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

/* Send state (e.g. "READY=1\nSTATUS=serving 3 controllers"). 1 sent, 0 no manager, or -errno. */
int vnvme_sd_notify(const char *state);

#endif
