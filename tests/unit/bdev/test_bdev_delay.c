/* SPDX-License-Identifier: MIT */
/* The delay bdev over a malloc base: latency per op class, p99, abort, claims, update, JSON. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "bdev_done.h"
#include "vnvme/bdev.h"

#define BS 512u
#define BLOCKS 1024u


static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct vnvme_bdev *make(const char *base, const char *name, uint64_t ar, uint64_t pr, uint64_t aw, uint64_t pw)
{
    struct vnvme_bdev *b = NULL;
    if (vnvme_bdev_get(base) == NULL)
        assert_int_equal(vnvme_bdev_malloc_create(base, BLOCKS, BS, NULL, &b), 0);
    uint64_t lat[4] = {ar, pr, aw, pw};
    assert_int_equal(vnvme_bdev_delay_create(name, base, lat, NULL, &b), 0);
    return b;
}

static void cleanup(const char *base, const char *name)
{
    assert_int_equal(vnvme_bdev_delete(name), 0);
    assert_int_equal(vnvme_bdev_delete(base), 0);
}

static void init_io(struct vnvme_bdev_io *io, enum vnvme_bdev_op op, uint64_t lba, struct iovec *iov,
                    struct done *d)
{
    memset(io, 0, sizeof(*io));
    io->op = op;
    io->offset_blocks = lba;
    io->num_blocks = 1;
    io->iov = iov;
    io->iovcnt = iov ? 1 : 0;
    io->cb = record;
    io->cb_arg = d;
}

/* Poll until d completes or limit_ms passes; returns the time it took. */
static uint64_t wait_done(struct vnvme_bdev_channel *ch, struct done *d, uint64_t limit_ms)
{
    uint64_t t0 = now_ms();
    while (d->calls == 0 && now_ms() - t0 < limit_ms) {
        vnvme_bdev_channel_poll(ch);
        usleep(200);
    }
    return now_ms() - t0;
}

static void test_reads_and_writes_wait_their_latency(void **state)
{
    (void)state;
    struct vnvme_bdev *b = make("DBase0", "Delay0", 30000, 30000, 60000, 60000);
    assert_string_equal(b->name, "Delay0");
    assert_int_equal(b->block_size, BS);
    assert_int_equal(b->num_blocks, BLOCKS);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    assert_non_null(ch);
    uint8_t w[BS], r[BS];
    memset(w, 0x5a, sizeof(w));
    struct iovec wi = {w, BS}, ri = {r, BS};
    struct done dw = {0}, dr = {0};
    struct vnvme_bdev_io iow, ior;

    init_io(&iow, VNVME_BDEV_WRITE, 7, &wi, &dw);
    uint64_t t0 = now_ms();
    assert_int_equal(vnvme_bdev_submit(ch, &iow), 0);
    assert_int_equal(dw.calls, 0); /* the base (malloc) would have completed inside submit */
    wait_done(ch, &dw, 2000);
    uint64_t took = now_ms() - t0;
    assert_int_equal(dw.calls, 1);
    assert_int_equal(dw.status, 0);
    assert_true(took >= 60);

    init_io(&ior, VNVME_BDEV_READ, 7, &ri, &dr);
    t0 = now_ms();
    assert_int_equal(vnvme_bdev_submit(ch, &ior), 0);
    wait_done(ch, &dr, 2000);
    took = now_ms() - t0;
    assert_int_equal(dr.calls, 1);
    assert_true(took >= 30);
    assert_memory_equal(w, r, BS); /* the data went through the base */

    /* Flush passes straight through: done inside submit. */
    struct done df = {0};
    struct vnvme_bdev_io iof;
    init_io(&iof, VNVME_BDEV_FLUSH, 0, NULL, &df);
    assert_int_equal(vnvme_bdev_submit(ch, &iof), 0);
    assert_int_equal(df.calls, 1);

    /* Out of range: refused at submit, no callback. */
    struct done dx = {0};
    struct vnvme_bdev_io iox;
    init_io(&iox, VNVME_BDEV_READ, BLOCKS, &ri, &dx);
    assert_int_equal(vnvme_bdev_submit(ch, &iox), -ERANGE);
    assert_int_equal(dx.calls, 0);

    vnvme_bdev_channel_put(ch);
    cleanup("DBase0", "Delay0");
}

/* One I/O in a hundred waits the p99 latency: with avg 0, exactly the 100th is held. */
static void test_p99_every_hundredth(void **state)
{
    (void)state;
    struct vnvme_bdev *b = make("DBase1", "Delay1", 0, 3600000000ull, 0, 3600000000ull);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    uint8_t buf[BS];
    struct iovec iov = {buf, BS};
    struct done d[200] = {{0}};
    struct vnvme_bdev_io io[200];
    int held = 0;
    for (int i = 0; i < 200; i++) {
        init_io(&io[i], VNVME_BDEV_READ, (uint64_t)i, &iov, &d[i]);
        assert_int_equal(vnvme_bdev_submit(ch, &io[i]), 0);
        if (d[i].calls == 0)
            held++;
    }
    assert_int_equal(held, 2);
    assert_int_equal(d[99].calls, 0);
    assert_int_equal(d[199].calls, 0);
    /* Destroying the channel completes what still waits, with -ECANCELED. */
    vnvme_bdev_channel_put(ch);
    assert_int_equal(d[99].calls, 1);
    assert_int_equal(d[99].status, -ECANCELED);
    assert_int_equal(d[199].status, -ECANCELED);
    cleanup("DBase1", "Delay1");
}

static void test_abort_recalls_waiting_io(void **state)
{
    (void)state;
    struct vnvme_bdev *b = make("DBase2", "Delay2", 3600000000ull, 3600000000ull, 3600000000ull, 3600000000ull);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    uint8_t buf[3][BS];
    struct iovec iov[3] = {{buf[0], BS}, {buf[1], BS}, {buf[2], BS}};
    struct done d[3] = {{0}};
    struct vnvme_bdev_io io[3];
    for (int i = 0; i < 3; i++) {
        init_io(&io[i], i == 1 ? VNVME_BDEV_WRITE : VNVME_BDEV_READ, (uint64_t)i, &iov[i], &d[i]);
        assert_int_equal(vnvme_bdev_submit(ch, &io[i]), 0);
    }
    vnvme_bdev_channel_poll(ch);
    for (int i = 0; i < 3; i++)
        assert_int_equal(d[i].calls, 0); /* an hour to go */
    /* The middle of a FIFO, then its only entry, then its head. */
    struct done dn = {0};
    struct vnvme_bdev_io never;
    init_io(&never, VNVME_BDEV_READ, 0, &iov[0], &dn);
    assert_int_equal(vnvme_bdev_abort(ch, &never), -ENOENT);
    assert_int_equal(vnvme_bdev_abort(ch, &io[2]), 0);
    assert_int_equal(d[2].calls, 1);
    assert_int_equal(d[2].status, -ECANCELED);
    assert_int_equal(vnvme_bdev_abort(ch, &io[1]), 0);
    assert_int_equal(d[1].status, -ECANCELED);
    assert_int_equal(vnvme_bdev_abort(ch, &io[0]), 0);
    assert_int_equal(d[0].status, -ECANCELED);
    assert_int_equal(vnvme_bdev_abort(ch, &io[0]), -ENOENT); /* once */
    /* The FIFOs are consistent afterwards: a new I/O queues and is released by an update to 0. */
    assert_int_equal(vnvme_bdev_delay_update_latency("Delay2", "avg_read", 0), 0);
    struct done dz = {0};
    struct vnvme_bdev_io z;
    init_io(&z, VNVME_BDEV_READ, 5, &iov[0], &dz);
    assert_int_equal(vnvme_bdev_submit(ch, &z), 0);
    assert_int_equal(dz.calls, 1);
    vnvme_bdev_channel_put(ch);
    for (int i = 0; i < 3; i++)
        assert_int_equal(d[i].calls, 1);
    cleanup("DBase2", "Delay2");
}

/* Abort on a bdev without recall. */
static void test_abort_not_supported(void **state)
{
    (void)state;
    struct vnvme_bdev *m = NULL;
    assert_int_equal(vnvme_bdev_malloc_create("DPlain", BLOCKS, BS, NULL, &m), 0);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(m);
    struct vnvme_bdev_io io = {0};
    assert_int_equal(vnvme_bdev_abort(ch, &io), -ENOTSUP);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("DPlain"), 0);
}

static void test_create_rules_claims_update_and_json(void **state)
{
    (void)state;
    struct vnvme_bdev *b = NULL;
    uint64_t lat[4] = {100, 200, 300, 400};
    assert_int_equal(vnvme_bdev_delay_create("DelayX", "NoSuchBase", lat, NULL, &b), -ENODEV);
    make("DBase3", "Delay3", 100, 200, 300, 400);
    uint64_t bad[4] = {200, 100, 0, 0};
    assert_int_equal(vnvme_bdev_delay_create("DelayBad", "DBase3", bad, NULL, &b), -EINVAL);
    assert_int_equal(vnvme_bdev_delay_create("Delay3", "DBase3", lat, NULL, &b), -EEXIST);
    /* The base is claimed while the delay bdev exists. */
    assert_int_equal(vnvme_bdev_delete("DBase3"), -EBUSY);

    assert_int_equal(vnvme_bdev_delay_update_latency("Delay3", "p99_write", 5000), 0);
    assert_int_equal(vnvme_bdev_delay_update_latency("Delay3", "avg_write", 6000), -EINVAL); /* above p99 */
    assert_int_equal(vnvme_bdev_delay_update_latency("Delay3", "median", 1), -EINVAL);
    assert_int_equal(vnvme_bdev_delay_update_latency("DBase3", "avg_read", 1), -ENODEV);

    struct vnvme_bdev *d = vnvme_bdev_get("Delay3");
    struct json_object *j = vnvme_bdev_to_json(d), *ds, *delay, *v;
    assert_true(json_object_object_get_ex(j, "driver_specific", &ds));
    assert_true(json_object_object_get_ex(ds, "delay", &delay));
    assert_true(json_object_object_get_ex(delay, "base_bdev_name", &v));
    assert_string_equal(json_object_get_string(v), "DBase3");
    assert_true(json_object_object_get_ex(delay, "p99_write_latency", &v));
    assert_int_equal(json_object_get_uint64(v), 5000);
    json_object_put(j);

    struct json_object *p = vnvme_bdev_delay_save(d);
    assert_non_null(p);
    assert_true(json_object_object_get_ex(p, "avg_read_latency", &v));
    assert_int_equal(json_object_get_uint64(v), 100);
    assert_true(json_object_object_get_ex(p, "uuid", &v));
    json_object_put(p);
    assert_null(vnvme_bdev_delay_save(vnvme_bdev_get("DBase3")));

    cleanup("DBase3", "Delay3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_and_writes_wait_their_latency),
        cmocka_unit_test(test_p99_every_hundredth),
        cmocka_unit_test(test_abort_recalls_waiting_io),
        cmocka_unit_test(test_abort_not_supported),
        cmocka_unit_test(test_create_rules_claims_update_and_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
