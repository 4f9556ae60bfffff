/* SPDX-License-Identifier: MIT */
/*
 * `vnvme list`'s table, from already-fetched Identify data: no devices, no
 * ioctls, so the exact output is tested on any machine.
 */
#ifndef VNVME_CLI_LIST_FORMAT_H
#define VNVME_CLI_LIST_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct nvme_id_ctrl;
struct nvme_id_ns;

struct list_row {
    const char *node; /* the device path */
    uint32_t nsid;    /* what NVME_IOCTL_ID answered */
    const struct nvme_id_ctrl *ctrl;
    const struct nvme_id_ns *ns;
};

/*
 * Header, dashes and one line per row, in the given order:
 *   Node  SN  Model  Namespace  Usage  Format  FW Rev
 * Usage is NUSE / NSZE in bytes of the formatted LBA size with decimal units
 * ("  1.07 GB /   1.07 GB"), Format the LBA data size with binary units plus
 * the metadata size ("512   B +  0 B", "  4 KiB +  8 B").
 */
void list_print(FILE *out, const struct list_row *rows, size_t n);

/* The columns computed from Identify Namespace, for the tests. */
void list_usage(char *buf, size_t size, const struct nvme_id_ns *ns);
void list_lba_format(char *buf, size_t size, const struct nvme_id_ns *ns);
/* An Identify string (space padded, not terminated) trimmed, unprintable bytes as '?'. buf: len + 1. */
void list_id_string(char *buf, const char *field, size_t len);

#endif
