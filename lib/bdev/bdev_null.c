/* SPDX-License-Identifier: MIT */
/*
 * "null" bdev: no storage. Reads return zeroes, writes vanish, so a compare
 * matches only all-zero data. Useful for measuring the target alone.
 */
#include "vnvme/bdev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/log.h"

static bool iov_all_zero(const struct vnvme_bdev_io *io)
{
    for (int i = 0; i < io->iovcnt; i++) {
        const uint8_t *p = io->iov[i].iov_base;
        size_t len = io->iov[i].iov_len;
        /* p[0] == 0 and p[k] == p[k+1] for all k <=> all zero; memcmp does it fast. */
        if (len && (p[0] != 0 || memcmp(p, p + 1, len - 1) != 0))
            return false;
    }
    return true;
}

static int null_submit(struct vnvme_bdev *b, void *ch_ctx, struct vnvme_bdev_io *io)
{
    (void)ch_ctx;
    int rc = vnvme_bdev_io_check(b, io);
    if (rc < 0)
        return rc;

    int status = 0;
    switch (io->op) {
    case VNVME_BDEV_READ:
        for (int i = 0; i < io->iovcnt; i++)
            memset(io->iov[i].iov_base, 0, io->iov[i].iov_len);
        break;
    case VNVME_BDEV_COMPARE:
        status = iov_all_zero(io) ? 0 : -EILSEQ;
        break;
    case VNVME_BDEV_WRITE:
    case VNVME_BDEV_WRITE_ZEROES:
    case VNVME_BDEV_UNMAP:
    case VNVME_BDEV_FLUSH:
        break;
    }
    io->cb(io, status);
    return 0;
}

static void null_dump_json(struct vnvme_bdev *b, struct json_object *obj)
{
    (void)b;
    json_object_object_add(obj, "null", json_object_new_object());
}

static void null_destroy(struct vnvme_bdev *b)
{
    free(b);
}

static const struct vnvme_bdev_ops null_ops = {
    .type = "null",
    .product_name = "Null disk",
    .submit = null_submit,
    .dump_json = null_dump_json,
    .destroy = null_destroy,
};

int vnvme_bdev_null_create(const char *name, uint64_t num_blocks, uint32_t block_size, const uint8_t *uuid,
                           struct vnvme_bdev **out)
{
    struct vnvme_bdev *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    int rc = vnvme_bdev_init(b, name, block_size, num_blocks, uuid);
    if (rc == 0) {
        b->ops = &null_ops;
        b->supports_unmap = true;
        b->supports_write_zeroes = true;
        rc = vnvme_bdev_register(b);
    }
    if (rc < 0) {
        free(b);
        return rc;
    }
    VNVME_INFO("bdev", "null %s: %llu blocks of %u", name, (unsigned long long)num_blocks, block_size);
    if (out)
        *out = b;
    return 0;
}
