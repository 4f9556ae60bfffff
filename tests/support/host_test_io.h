/* SPDX-License-Identifier: MIT */
/*
 * For tests that drive a vnvmed through the userspace NVMe driver
 * (nvme_host.h): attach while the daemon may still be busy with the previous
 * host, and a completion counter to wait on. Failures are cmocka failures.
 */
#ifndef VNVME_TEST_HOST_TEST_IO_H
#define VNVME_TEST_HOST_TEST_IO_H

#include <stdbool.h>
#include <stdint.h>

#include "vnvme/nvme_host.h"

/* How long a test waits for completions before it fails instead of hanging. */
#define HOST_TEST_WAIT_LIMIT_MS 60000u

/*
 * vnvme_ctrlr_attach (trid or socket path), retried for 10 s because the
 * daemon may still be tearing down the previous connection; fails the test
 * if it never works.
 */
struct vnvme_ctrlr *host_attach(const char *where, const struct vnvme_ctrlr_opts *opts);

struct io_done {
    int count;
    uint16_t status; /* SCT/SC of the last completion */
    bool dnr;        /* the last completion's Do Not Retry bit */
    uint32_t cdw0;
    int timeouts;    /* completions with VNVME_HOST_SC_TIMEOUT */
    int disconnects; /* completions with VNVME_HOST_SC_ABORTED_DISCONNECT */
    int ok;
};

/* Completion callback; arg is a struct io_done. */
void io_done_cb(void *arg, const struct nvme_cqe *cpl);

/* Polls qp (may be NULL) and the admin queue until d has seen n completions. */
void io_wait_done(struct vnvme_ctrlr *c, struct vnvme_qpair *qp, struct io_done *d, int n);

/* One command: asserts it was submitted (rc_submit 0), waits for it, its status. */
uint16_t io_sync(struct vnvme_ctrlr *c, struct vnvme_qpair *qp, int rc_submit, struct io_done *d);

#endif
