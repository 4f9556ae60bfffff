/* SPDX-License-Identifier: MIT */
/* The bdev tests' completion recorder: io->cb_arg points at a struct done. */
#ifndef VNVME_TEST_BDEV_DONE_H
#define VNVME_TEST_BDEV_DONE_H

#include "vnvme/bdev.h"

struct done {
    int calls;
    int status; /* of the last completion */
};

static inline void record(struct vnvme_bdev_io *io, int status)
{
    struct done *d = io->cb_arg;
    d->calls++;
    d->status = status;
}

#endif
