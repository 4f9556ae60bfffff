/* SPDX-License-Identifier: MIT */
#include "host_test_io.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#include <cmocka.h>

#include "vnvmed_harness.h"

struct vnvme_ctrlr *host_attach(const char *where, const struct vnvme_ctrlr_opts *opts)
{
    struct vnvme_ctrlr *c = NULL;
    uint64_t end = vnvmed_harness_now_ms() + 10000;
    int rc;
    while ((rc = vnvme_ctrlr_attach(where, opts, &c)) != 0 && vnvmed_harness_now_ms() < end)
        usleep(20000);
    assert_int_equal(rc, 0);
    assert_non_null(c);
    return c;
}

void io_done_cb(void *arg, const struct nvme_cqe *cpl)
{
    struct io_done *d = arg;
    d->count++;
    d->status = vnvme_cpl_status(cpl) & 0x7ffu;
    d->dnr = (vnvme_cpl_status(cpl) & NVME_STATUS_DNR) != 0;
    d->cdw0 = cpl->cdw0;
    d->timeouts += d->status == VNVME_HOST_SC_TIMEOUT;
    d->disconnects += d->status == VNVME_HOST_SC_ABORTED_DISCONNECT;
    d->ok += d->status == 0;
}

void io_wait_done(struct vnvme_ctrlr *c, struct vnvme_qpair *qp, struct io_done *d, int n)
{
    uint64_t end = vnvmed_harness_now_ms() + HOST_TEST_WAIT_LIMIT_MS;
    while (d->count < n) {
        if (qp)
            vnvme_qpair_process(qp, 0);
        vnvme_ctrlr_process_admin(c);
        assert_true(vnvmed_harness_now_ms() < end);
    }
    assert_int_equal(d->count, n);
}

uint16_t io_sync(struct vnvme_ctrlr *c, struct vnvme_qpair *qp, int rc_submit, struct io_done *d)
{
    assert_int_equal(rc_submit, 0);
    io_wait_done(c, qp, d, d->count + 1);
    return d->status;
}
