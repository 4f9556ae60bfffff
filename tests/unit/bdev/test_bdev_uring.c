/* SPDX-License-Identifier: MIT */
/* uring bdev on a sparse temp file: async completion through poll, batching, zeroing, errors. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <liburing.h>

#include "bdev_done.h"
#include "vnvme/bdev.h"

#define FILE_SIZE (64ull << 20)

static bool uring_available;
static char path[64];


static void require_uring(void)
{
    if (!uring_available) {
        print_message("io_uring is not available here (io_uring_queue_init failed): skipping\n");
        skip();
    }
}

static int group_setup(void **state)
{
    (void)state;
    struct io_uring ring;
    int rc = io_uring_queue_init(4, &ring, 0);
    if (rc == 0) {
        io_uring_queue_exit(&ring);
        uring_available = true;
    } else {
        fprintf(stderr, "io_uring_queue_init: %s; uring tests will be skipped\n", strerror(-rc));
    }
    return 0;
}

static int make_file(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/vnvme-uring-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    int rc = ftruncate(fd, (off_t)FILE_SIZE);
    close(fd);
    return rc;
}

static int remove_file(void **state)
{
    (void)state;
    vnvme_bdev_delete("u0"); /* after a failed test, so the next one starts clean */
    unlink(path);
    return 0;
}

/* An epoll set waiting for the channel fd's signals as a reactor does: edge-triggered, never reading it. */
static int edge_sleeper(struct vnvme_bdev_channel *ch)
{
    int fd = vnvme_bdev_channel_fd(ch);
    assert_true(fd >= 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    assert_true(ep >= 0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
    assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
    return ep;
}

/*
 * io_uring posts some completions through task work, which ends a sleeping
 * syscall with EINTR on the submitting thread: wait again (the same deadline
 * is close enough for a test's bound).
 */
static int edge_wait(int ep, int timeout_ms)
{
    struct epoll_event ev;
    int n;
    do {
        n = epoll_wait(ep, &ev, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* Poll until `target` completions were counted; sleep on the channel fd when idle. */
static void drive(struct vnvme_bdev_channel *ch, const int *count, int target)
{
    int ep = edge_sleeper(ch);
    for (int idle = 0; *count < target; ) {
        if (vnvme_bdev_channel_poll(ch) > 0)
            continue;
        if (edge_wait(ep, 1000) == 0)
            assert_true(++idle < 30); /* a lost wakeup would hang here forever */
    }
    close(ep);
}

static int counter;
static void count_cb(struct vnvme_bdev_io *io, int status)
{
    struct done *d = io->cb_arg;
    d->calls++;
    d->status = status;
    counter++;
}

static int run_io(struct vnvme_bdev_channel *ch, enum vnvme_bdev_op op, uint64_t off, uint64_t nb, struct iovec *iov,
                  int iovcnt, bool fua)
{
    struct done d = {0};
    struct vnvme_bdev_io io = {.op = op, .offset_blocks = off, .num_blocks = nb, .iov = iov, .iovcnt = iovcnt,
                               .fua = fua, .cb = count_cb, .cb_arg = &d};
    counter = 0;
    int rc = vnvme_bdev_submit(ch, &io);
    if (rc < 0) {
        for (int i = 0; i < 3; i++)
            vnvme_bdev_channel_poll(ch);
        assert_int_equal(d.calls, 0);
        return rc;
    }
    assert_int_equal(d.calls, 0); /* completion only from poll */
    drive(ch, &counter, 1);
    assert_int_equal(d.calls, 1);
    return d.status;
}

static void fill_pattern(uint8_t *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)(x | 1); /* never zero, so zeroing shows */
    }
}

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

#define QD 32
#define IO_BLOCKS 8

/* Half the I/Os use page-aligned single buffers (O_DIRECT path), half odd splits (buffered path). */
static int make_iov(uint8_t *buf, size_t len, int k, struct iovec *iov)
{
    if (k % 2 == 0) {
        iov[0] = (struct iovec){buf, len};
        return 1;
    }
    size_t a = 1 + (size_t)k * 13, b = 1000 + (size_t)k;
    iov[0] = (struct iovec){buf, a};
    iov[1] = (struct iovec){buf + a, b};
    iov[2] = (struct iovec){buf + a + b, len - a - b};
    return 3;
}

static void check_qd32(uint32_t bs)
{
    struct vnvme_bdev *b;
    assert_int_equal(vnvme_bdev_uring_create("u0", path, bs, NULL, &b), 0);
    assert_int_equal(b->block_size, bs ? bs : 512);
    assert_int_equal(b->num_blocks, FILE_SIZE / b->block_size);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    assert_non_null(ch);

    size_t len = IO_BLOCKS * (size_t)b->block_size;
    uint8_t *wbuf = NULL, *rbuf = NULL;
    assert_int_equal(posix_memalign((void **)&wbuf, 4096, QD * len), 0);
    assert_int_equal(posix_memalign((void **)&rbuf, 4096, QD * len), 0);
    struct iovec iov[QD][3];
    struct vnvme_bdev_io io[QD];
    struct done d[QD];

    counter = 0;
    for (int k = 0; k < QD; k++) {
        fill_pattern(wbuf + k * len, len, (uint32_t)k + bs);
        int cnt = make_iov(wbuf + k * len, len, k, iov[k]);
        d[k] = (struct done){0};
        /* With gaps between them; block 3 stays unwritten. */
        io[k] = (struct vnvme_bdev_io){.op = VNVME_BDEV_WRITE, .offset_blocks = IO_BLOCKS * (2 + 3 * (uint64_t)k),
                                       .num_blocks = IO_BLOCKS, .iov = iov[k], .iovcnt = cnt, .cb = count_cb,
                                       .cb_arg = &d[k]};
        assert_int_equal(vnvme_bdev_submit(ch, &io[k]), 0);
    }
    assert_int_equal(counter, 0); /* nothing completes inside submit */
    drive(ch, &counter, QD);
    for (int k = 0; k < QD; k++) {
        assert_int_equal(d[k].calls, 1);
        assert_int_equal(d[k].status, 0);
    }

    memset(rbuf, 0, QD * len);
    counter = 0;
    for (int k = 0; k < QD; k++) {
        int cnt = make_iov(rbuf + k * len, len, k + 1, iov[k]); /* the other split than the write */
        d[k] = (struct done){0};
        io[k].op = VNVME_BDEV_READ;
        io[k].iov = iov[k];
        io[k].iovcnt = cnt;
        assert_int_equal(vnvme_bdev_submit(ch, &io[k]), 0);
    }
    assert_int_equal(counter, 0);
    drive(ch, &counter, QD);
    for (int k = 0; k < QD; k++) {
        assert_int_equal(d[k].calls, 1);
        assert_int_equal(d[k].status, 0);
    }
    assert_memory_equal(wbuf, rbuf, QD * len);

    /* A block nobody wrote reads as zeroes (sparse file). */
    struct iovec one = {rbuf, b->block_size};
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 3, 1, &one, 1, false), 0);
    assert_true(all_zero(rbuf, b->block_size));

    free(wbuf);
    free(rbuf);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("u0"), 0);
}

static void test_qd32_512(void **state)
{
    (void)state;
    require_uring();
    check_qd32(0);
}

static void test_qd32_4096(void **state)
{
    (void)state;
    require_uring();
    check_qd32(4096);
}

static void test_flush_and_fua(void **state)
{
    (void)state;
    require_uring();
    struct vnvme_bdev *b;
    assert_int_equal(vnvme_bdev_uring_create("u0", path, 4096, NULL, &b), 0);
    assert_true(b->volatile_write_cache); /* a file lives in the page cache */
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    uint8_t *buf = NULL;
    assert_int_equal(posix_memalign((void **)&buf, 4096, 8192), 0);
    fill_pattern(buf, 8192, 9);
    struct iovec iov = {buf, 8192};
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, 100, 2, &iov, 1, true), 0);
    assert_int_equal(run_io(ch, VNVME_BDEV_FLUSH, 0, 0, NULL, 0, false), 0);

    /* What the bdev wrote is in the file at the right place. */
    uint8_t check[8192];
    int fd = open(path, O_RDONLY);
    assert_int_equal(pread(fd, check, sizeof(check), 100 * 4096), (ssize_t)sizeof(check));
    close(fd);
    assert_memory_equal(buf, check, sizeof(check));
    free(buf);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("u0"), 0);
}

static void check_zeroing(enum vnvme_bdev_op op, uint32_t bs)
{
    struct vnvme_bdev *b;
    assert_int_equal(vnvme_bdev_uring_create("u0", path, bs, NULL, &b), 0);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    size_t nb = 64, len = nb * bs;
    uint8_t *src = malloc(len), *dst = malloc(len);
    fill_pattern(src, len, 21);
    struct iovec iov = {src, len};
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, 64, nb, &iov, 1, false), 0);
    assert_int_equal(run_io(ch, op, 64 + 3, 21, NULL, 0, false), 0);
    iov.iov_base = dst;
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 64, nb, &iov, 1, false), 0);
    assert_memory_equal(dst, src, 3 * bs);
    assert_true(all_zero(dst + 3 * bs, 21 * bs));
    assert_memory_equal(dst + 24 * bs, src + 24 * bs, len - 24 * bs);
    free(src);
    free(dst);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("u0"), 0);
}

static void test_write_zeroes_unmap(void **state)
{
    (void)state;
    require_uring();
    check_zeroing(VNVME_BDEV_WRITE_ZEROES, 512);
    check_zeroing(VNVME_BDEV_UNMAP, 512);
    check_zeroing(VNVME_BDEV_WRITE_ZEROES, 4096);
    check_zeroing(VNVME_BDEV_UNMAP, 4096);
}

static void test_compare(void **state)
{
    (void)state;
    require_uring();
    struct vnvme_bdev *b;
    assert_int_equal(vnvme_bdev_uring_create("u0", path, 512, NULL, &b), 0);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    /* Larger than the 1 MiB bounce buffer, so it is compared in pieces. */
    size_t nb = 2 * 2048 + 3, len = nb * 512;
    uint8_t *buf = malloc(len);
    fill_pattern(buf, len, 33);
    struct iovec iov[2] = {{buf, 777}, {buf + 777, len - 777}};
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, 10, nb, iov, 2, false), 0);
    assert_int_equal(run_io(ch, VNVME_BDEV_COMPARE, 10, nb, iov, 2, false), 0);
    buf[len - 1] ^= 0x40; /* in the last piece */
    assert_int_equal(run_io(ch, VNVME_BDEV_COMPARE, 10, nb, iov, 2, false), -EILSEQ);
    buf[len - 1] ^= 0x40;
    buf[5] ^= 0x40;
    assert_int_equal(run_io(ch, VNVME_BDEV_COMPARE, 10, nb, iov, 2, false), -EILSEQ);
    buf[5] ^= 0x40;

    /* Several compares at once share the bounce buffer by waiting, not by failing. */
    struct vnvme_bdev_io io[4];
    struct done d[4] = {{0}};
    struct iovec small[4];
    counter = 0;
    for (int k = 0; k < 4; k++) {
        small[k] = (struct iovec){buf + k * 512, 512};
        io[k] = (struct vnvme_bdev_io){.op = VNVME_BDEV_COMPARE, .offset_blocks = 10 + (uint64_t)k + (k == 2),
                                       .num_blocks = 1, .iov = &small[k], .iovcnt = 1, .cb = count_cb,
                                       .cb_arg = &d[k]};
        assert_int_equal(vnvme_bdev_submit(ch, &io[k]), 0);
    }
    drive(ch, &counter, 4);
    assert_int_equal(d[0].status, 0);
    assert_int_equal(d[1].status, 0);
    assert_int_equal(d[2].status, -EILSEQ); /* shifted by one block */
    assert_int_equal(d[3].status, 0);
    free(buf);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("u0"), 0);
}

static void test_errors(void **state)
{
    (void)state;
    require_uring();
    struct vnvme_bdev *b = NULL;
    assert_int_equal(vnvme_bdev_uring_create("u0", "/nonexistent/file", 512, NULL, &b), -ENOENT);
    assert_int_equal(vnvme_bdev_uring_create("u0", path, 1000, NULL, &b), -EINVAL);
    assert_int_equal(vnvme_bdev_uring_create("u0", path, 256, NULL, &b), -EINVAL);
    assert_int_equal(vnvme_bdev_uring_create("u0", "/dev/null", 512, NULL, &b), -ENODEV);
    assert_null(vnvme_bdev_get("u0"));

    /* A file shorter than one block is no bdev; a ragged tail is not addressable. */
    assert_int_equal(truncate(path, 511), 0);
    assert_int_equal(vnvme_bdev_uring_create("u0", path, 512, NULL, &b), -EINVAL);
    assert_int_equal(truncate(path, 10 * 4096 + 100), 0);
    assert_int_equal(vnvme_bdev_uring_create("u0", path, 4096, NULL, &b), 0);
    assert_int_equal(b->num_blocks, 10);
    assert_int_equal(vnvme_bdev_uring_create("u0", path, 4096, NULL, &b), -EEXIST);

    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    uint8_t *buf = NULL;
    assert_int_equal(posix_memalign((void **)&buf, 4096, 4 * 4096), 0);
    memset(buf, 0x5a, 4 * 4096);
    struct iovec iov[2] = {{buf, 4096}, {buf + 4096, 3 * 4096}};
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 8, 4, iov, 2, false), -ERANGE);
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, UINT64_MAX - 1, 4, iov, 2, false), -ERANGE);
    assert_int_equal(run_io(ch, VNVME_BDEV_UNMAP, 10, 1, NULL, 0, false), -ERANGE);
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 0, 3, iov, 2, false), -EINVAL);
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, 0, 5, iov, 2, false), -EINVAL);

    /* The file shrinks under the bdev: reads past the new end fail instead of returning garbage. */
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, 6, 4, iov, 2, false), 0);
    assert_int_equal(truncate(path, 7 * 4096 + 100), 0);
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 6, 4, iov, 2, false), -EIO);
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 6, 1, iov, 1, false), 0);

    free(buf);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("u0"), 0);
}

static void test_eventfd_wakes(void **state)
{
    (void)state;
    require_uring();
    struct vnvme_bdev *b;
    assert_int_equal(vnvme_bdev_uring_create("u0", path, 4096, NULL, &b), 0);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    int ep = edge_sleeper(ch);

    /* A flush goes to an io_uring worker, so it usually is still running after the submitting poll. */
    bool observed = false;
    for (int attempt = 0; attempt < 50 && !observed; attempt++) {
        struct done d = {0};
        struct vnvme_bdev_io io = {.op = VNVME_BDEV_FLUSH, .cb = record, .cb_arg = &d};
        assert_int_equal(vnvme_bdev_submit(ch, &io), 0);
        assert_int_equal(d.calls, 0);
        vnvme_bdev_channel_poll(ch); /* submits */
        if (d.calls == 0) {
            assert_int_equal(edge_wait(ep, 10000), 1); /* the completion wakes a sleeper */
            observed = true;
        }
        while (d.calls == 0)
            vnvme_bdev_channel_poll(ch);
        assert_int_equal(d.calls, 1);
        assert_int_equal(d.status, 0);
        /*
         * Once idle, the sleeper sleeps: at most one signal that landed after
         * the wait above is still to be seen, then nothing.
         */
        vnvme_bdev_channel_poll(ch);
        (void)edge_wait(ep, 0);
        assert_int_equal(edge_wait(ep, 0), 0);
    }
    close(ep);
    if (!observed)
        print_message("every flush completed within its submitting poll; wakeup not observed\n");
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("u0"), 0);
}

static void test_more_than_ring(void **state)
{
    (void)state;
    require_uring();
    struct vnvme_bdev *b;
    assert_int_equal(vnvme_bdev_uring_create("u0", path, 512, NULL, &b), 0);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    enum { N = 700 };
    static struct vnvme_bdev_io io[N];
    static struct done d[N];
    static struct iovec iov[N];
    static uint8_t data[N][512], back[N][512];

    for (int pass = 0; pass < 2; pass++) {
        counter = 0;
        for (int k = 0; k < N; k++) {
            if (pass == 0)
                fill_pattern(data[k], 512, (uint32_t)k);
            iov[k] = (struct iovec){pass ? back[k] : data[k], 512};
            d[k] = (struct done){0};
            io[k] = (struct vnvme_bdev_io){.op = pass ? VNVME_BDEV_READ : VNVME_BDEV_WRITE,
                                           .offset_blocks = (uint64_t)k * 3, .num_blocks = 1, .iov = &iov[k],
                                           .iovcnt = 1, .cb = count_cb, .cb_arg = &d[k]};
            assert_int_equal(vnvme_bdev_submit(ch, &io[k]), 0); /* a full ring never fails an I/O */
        }
        drive(ch, &counter, N);
        for (int k = 0; k < N; k++) {
            assert_int_equal(d[k].calls, 1);
            assert_int_equal(d[k].status, 0);
        }
    }
    assert_memory_equal(data, back, sizeof(data));
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("u0"), 0);
}

static struct json_object *get(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    assert_true(json_object_object_get_ex(o, key, &v));
    return v;
}

static void test_json(void **state)
{
    (void)state;
    require_uring();
    struct vnvme_bdev *b;
    assert_int_equal(vnvme_bdev_uring_create("u0", path, 4096, NULL, &b), 0);
    struct json_object *o = vnvme_bdev_to_json(b);
    assert_string_equal(json_object_get_string(get(o, "product_name")), "URING bdev");
    assert_int_equal(json_object_get_int64(get(o, "block_size")), 4096);
    assert_int_equal(json_object_get_uint64(get(o, "num_blocks")), FILE_SIZE / 4096);
    struct json_object *u = get(get(o, "driver_specific"), "uring");
    assert_string_equal(json_object_get_string(get(u, "filename")), path);
    assert_true(json_object_is_type(get(u, "direct_io"), json_type_boolean));
    assert_false(json_object_get_boolean(get(u, "block_device")));
    print_message("uring on %s: direct_io=%d\n", path, json_object_get_boolean(get(u, "direct_io")));
    json_object_put(o);
    assert_int_equal(vnvme_bdev_delete("u0"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_qd32_512, make_file, remove_file),
        cmocka_unit_test_setup_teardown(test_qd32_4096, make_file, remove_file),
        cmocka_unit_test_setup_teardown(test_flush_and_fua, make_file, remove_file),
        cmocka_unit_test_setup_teardown(test_write_zeroes_unmap, make_file, remove_file),
        cmocka_unit_test_setup_teardown(test_compare, make_file, remove_file),
        cmocka_unit_test_setup_teardown(test_errors, make_file, remove_file),
        cmocka_unit_test_setup_teardown(test_eventfd_wakes, make_file, remove_file),
        cmocka_unit_test_setup_teardown(test_more_than_ring, make_file, remove_file),
        cmocka_unit_test_setup_teardown(test_json, make_file, remove_file),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
