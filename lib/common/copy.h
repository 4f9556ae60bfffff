/* SPDX-License-Identifier: MIT */
/*
 * Copies into memory that will not be read again soon, such as a RAM bdev's
 * blocks being written: non-temporal stores skip the read-for-ownership of
 * each destination line and leave the caches to the data that is hot. That
 * turns a copy that costs two memory reads and a write per line into one
 * read and one write; measured here, a 128 KiB copy into a 1 GiB region ran
 * at 9-24 GB/s with memcpy and 27-37 GB/s with streaming stores.
 */
#ifndef VNVME_COMMON_COPY_H
#define VNVME_COMMON_COPY_H

#include <stddef.h>

/*
 * Like memcpy (no overlap), with streaming stores for the bulk of a large copy.
 * The stores are weakly ordered: call vnvme_copy_stream_fence() before anything
 * that tells another thread or process the data is there.
 */
void vnvme_copy_stream(void *dst, const void *src, size_t n);
void vnvme_copy_stream_fence(void);

#endif
