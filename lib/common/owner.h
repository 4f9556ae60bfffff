/* SPDX-License-Identifier: MIT */
/*
 * Owners, groups and modes as an operator writes them: on the command line
 * and in RPC parameters ("kvm", "107", "0660"). A name is looked up in the
 * system's user and group databases; a decimal number is taken as an id, so
 * ids without a name (containers, initramfs) work too.
 */
#ifndef VNVME_COMMON_OWNER_H
#define VNVME_COMMON_OWNER_H

#include <sys/types.h>

/* 0, or -EINVAL (empty, malformed) / -ENOENT (no such name). */
int vnvme_parse_user(const char *s, uid_t *out);
int vnvme_parse_group(const char *s, gid_t *out);
/* Octal permission bits, at most 07777 ("0640", "640"). 0 or -EINVAL. */
int vnvme_parse_mode(const char *s, mode_t *out);

#endif
