/* SPDX-License-Identifier: MIT */
/* malloc and null bdevs, the registry and the bdev_get_bdevs JSON. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "bdev_done.h"
#include "vnvme/bdev.h"


/* Submits and returns the completion status; these bdevs complete inside submit. */
static int run_io(struct vnvme_bdev_channel *ch, enum vnvme_bdev_op op, uint64_t off, uint64_t nb, struct iovec *iov,
                  int iovcnt)
{
    struct done d = {0};
    struct vnvme_bdev_io io = {.op = op, .offset_blocks = off, .num_blocks = nb, .iov = iov, .iovcnt = iovcnt,
                               .cb = record, .cb_arg = &d};
    int rc = vnvme_bdev_submit(ch, &io);
    if (rc < 0) {
        assert_int_equal(d.calls, 0);
        return rc;
    }
    assert_int_equal(d.calls, 1);
    return d.status;
}

/* Split len bytes of buf into iovecs of the given sizes (last one takes the rest). */
static int split(uint8_t *buf, size_t len, const size_t *sizes, int n, struct iovec *iov)
{
    int cnt = 0;
    size_t pos = 0;
    for (int i = 0; i < n && pos < len; i++) {
        size_t s = i == n - 1 ? len - pos : sizes[i];
        if (s > len - pos)
            s = len - pos;
        iov[cnt].iov_base = buf + pos;
        iov[cnt].iov_len = s;
        pos += s;
        cnt++;
    }
    return cnt;
}

static void fill_pattern(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)((i * 31 + seed) ^ (i >> 9));
}

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

static void check_rw_patterns(uint32_t bs)
{
    struct vnvme_bdev *b;
    assert_int_equal(vnvme_bdev_malloc_create("m0", 256, bs, NULL, &b), 0);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    assert_non_null(ch);

    size_t len = 9 * (size_t)bs;
    uint8_t *src = malloc(len), *dst = malloc(len);
    fill_pattern(src, len, bs);
    struct iovec iov[8];
    const size_t wsplit[] = {1, 511, 1000, 7, 3 * 4096 + 5, 0};
    const size_t rsplit[] = {4097, 3, 2, 700};
    int wcnt = split(src, len, wsplit, 6, iov);
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, 5, 9, iov, wcnt), 0);

    memset(dst, 0xee, len);
    int rcnt = split(dst, len, rsplit, 4, iov);
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 5, 9, iov, rcnt), 0);
    assert_memory_equal(src, dst, len);

    /* Neighbours untouched. */
    struct iovec one = {dst, bs};
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 4, 1, &one, 1), 0);
    assert_true(all_zero(dst, bs));
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 14, 1, &one, 1), 0);
    assert_true(all_zero(dst, bs));

    /* Last block of the device is reachable. */
    fill_pattern(src, bs, 7);
    one.iov_base = src;
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, 255, 1, &one, 1), 0);
    one.iov_base = dst;
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 255, 1, &one, 1), 0);
    assert_memory_equal(src, dst, bs);

    free(src);
    free(dst);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

static void test_malloc_rw_4096(void **state)
{
    (void)state;
    check_rw_patterns(4096);
}

static void test_malloc_rw_512(void **state)
{
    (void)state;
    check_rw_patterns(512);
}

static void test_malloc_compare(void **state)
{
    (void)state;
    struct vnvme_bdev *b;
    assert_int_equal(vnvme_bdev_malloc_create("m0", 64, 512, NULL, &b), 0);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    uint8_t buf[4 * 512];
    fill_pattern(buf, sizeof(buf), 3);
    struct iovec iov[3] = {{buf, 100}, {buf + 100, 1500}, {buf + 1600, 448}};
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, 10, 4, iov, 3), 0);
    assert_int_equal(run_io(ch, VNVME_BDEV_COMPARE, 10, 4, iov, 3), 0);
    buf[2047] ^= 1; /* last byte of the last element */
    assert_int_equal(run_io(ch, VNVME_BDEV_COMPARE, 10, 4, iov, 3), -EILSEQ);
    buf[2047] ^= 1;
    assert_int_equal(run_io(ch, VNVME_BDEV_COMPARE, 11, 4, iov, 3), -EILSEQ); /* shifted range */
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

static void check_zeroing_range(uint32_t bs, enum vnvme_bdev_op op, uint64_t nb, uint64_t off, uint64_t cnt)
{
    struct vnvme_bdev *b;
    assert_int_equal(vnvme_bdev_malloc_create("m0", nb, bs, NULL, &b), 0);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    size_t len = nb * bs;
    uint8_t *src = malloc(len), *dst = malloc(len);
    fill_pattern(src, len, 11);
    for (size_t i = 0; i < len; i += 64)
        src[i] |= 1; /* no accidental zero runs hiding a bug at the edges */
    struct iovec iov = {src, len};
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, 0, nb, &iov, 1), 0);

    assert_int_equal(run_io(ch, op, off, cnt, NULL, 0), 0);

    iov.iov_base = dst;
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 0, nb, &iov, 1), 0);
    size_t zs = off * bs, ze = (off + cnt) * bs;
    assert_memory_equal(dst, src, zs);
    assert_true(all_zero(dst + zs, ze - zs));
    assert_memory_equal(dst + ze, src + ze, len - ze);

    /* The range is usable again after deallocation. */
    iov.iov_base = src;
    iov.iov_len = len;
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, 0, nb, &iov, 1), 0);
    iov.iov_base = dst;
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 0, nb, &iov, 1), 0);
    assert_memory_equal(dst, src, len);

    free(src);
    free(dst);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

static void check_zeroing(uint32_t bs, enum vnvme_bdev_op op)
{
    /* For 512-byte blocks the range starts and ends inside pages; whole pages lie in between. */
    uint64_t off = bs == 512 ? 3 : 1, cnt = bs == 512 ? 8 * 9 + 2 : 5;
    check_zeroing_range(bs, op, 64 * 4096 / bs, off, cnt);
}

static void test_malloc_write_zeroes_unmap(void **state)
{
    (void)state;
    check_zeroing(4096, VNVME_BDEV_WRITE_ZEROES);
    check_zeroing(4096, VNVME_BDEV_UNMAP);
    check_zeroing(512, VNVME_BDEV_WRITE_ZEROES);
    check_zeroing(512, VNVME_BDEV_UNMAP);
}

/*
 * Bdevs of 2 MiB and more ask for transparent huge pages: deallocating a
 * range that starts and ends inside huge pages (the kernel splits them) and
 * one covering a whole huge page must still read back exactly as zeroes.
 */
static void test_malloc_zeroing_inside_huge_pages(void **state)
{
    (void)state;
    const uint64_t nb = (8u << 20) / 4096; /* four 2 MiB pages */
    check_zeroing_range(4096, VNVME_BDEV_UNMAP, nb, 300, 700);            /* inside the first, into the second */
    check_zeroing_range(4096, VNVME_BDEV_UNMAP, nb, 511, 514);            /* all of the second, edges of its neighbours */
    check_zeroing_range(512, VNVME_BDEV_WRITE_ZEROES, nb * 8, 4097, 9000); /* edges inside 4 KiB pages too */
}

static void check_bad_io(struct vnvme_bdev *b)
{
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    assert_non_null(ch);
    uint32_t bs = b->block_size;
    uint8_t *buf = calloc(4, bs);
    struct iovec iov[2] = {{buf, bs}, {buf + bs, bs}};

    assert_int_equal(run_io(ch, VNVME_BDEV_READ, b->num_blocks - 1, 2, iov, 2), -ERANGE);
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, b->num_blocks, 1, iov, 1), -ERANGE);
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, UINT64_MAX, 2, iov, 2), -ERANGE);
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 1, UINT64_MAX, iov, 2), -ERANGE);
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE_ZEROES, 2, b->num_blocks, NULL, 0), -ERANGE);
    assert_int_equal(run_io(ch, VNVME_BDEV_UNMAP, UINT64_MAX, 1, NULL, 0), -ERANGE);

    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 0, 2, iov, 1), -EINVAL);   /* iov too short */
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, 0, 1, iov, 2), -EINVAL);  /* iov too long */
    assert_int_equal(run_io(ch, VNVME_BDEV_COMPARE, 0, 1, NULL, 0), -EINVAL);
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 0, 1, iov, -1), -EINVAL);
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 0, 0, NULL, 0), -EINVAL);
    iov[1].iov_len = SIZE_MAX; /* a sum that would wrap */
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 0, 1, iov, 2), -EINVAL);
    iov[1].iov_len = bs;
    assert_int_equal(run_io(ch, (enum vnvme_bdev_op)99, 0, 1, iov, 1), -EINVAL);

    struct vnvme_bdev_io no_cb = {.op = VNVME_BDEV_READ, .num_blocks = 1, .iov = iov, .iovcnt = 1};
    assert_int_equal(vnvme_bdev_submit(ch, &no_cb), -EINVAL);

    /* FLUSH ignores range and data. */
    assert_int_equal(run_io(ch, VNVME_BDEV_FLUSH, UINT64_MAX, UINT64_MAX, NULL, 0), 0);
    free(buf);
    vnvme_bdev_channel_put(ch);
}

static void test_bad_io(void **state)
{
    (void)state;
    struct vnvme_bdev *m, *n;
    assert_int_equal(vnvme_bdev_malloc_create("m0", 16, 4096, NULL, &m), 0);
    assert_int_equal(vnvme_bdev_null_create("n0", 16, 512, NULL, &n), 0);
    check_bad_io(m);
    check_bad_io(n);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
    assert_int_equal(vnvme_bdev_delete("n0"), 0);
}

static void test_null_bdev(void **state)
{
    (void)state;
    struct vnvme_bdev *b;
    assert_int_equal(vnvme_bdev_null_create("n0", 1ull << 40, 4096, NULL, &b), 0); /* 4 PiB costs nothing */
    assert_int_equal(b->num_blocks, 1ull << 40);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    assert_int_equal(vnvme_bdev_channel_fd(ch), -1);
    assert_int_equal(vnvme_bdev_channel_poll(ch), 0);

    uint8_t buf[3 * 4096];
    memset(buf, 0xab, sizeof(buf));
    struct iovec iov[3] = {{buf, 5}, {buf + 5, 3 * 4096 - 10}, {buf + 3 * 4096 - 5, 5}};
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, 7, 3, iov, 3), 0);
    assert_int_equal(run_io(ch, VNVME_BDEV_COMPARE, 7, 3, iov, 3), -EILSEQ);
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 7, 3, iov, 3), 0);
    assert_true(all_zero(buf, sizeof(buf)));
    assert_int_equal(run_io(ch, VNVME_BDEV_COMPARE, 7, 3, iov, 3), 0);
    buf[sizeof(buf) - 1] = 1;
    assert_int_equal(run_io(ch, VNVME_BDEV_COMPARE, 7, 3, iov, 3), -EILSEQ);
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE_ZEROES, 0, 100, NULL, 0), 0);
    assert_int_equal(run_io(ch, VNVME_BDEV_UNMAP, (1ull << 40) - 1, 1, NULL, 0), 0);
    assert_int_equal(run_io(ch, VNVME_BDEV_FLUSH, 0, 0, NULL, 0), 0);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("n0"), 0);
}

static void test_registry(void **state)
{
    (void)state;
    struct vnvme_bdev *a, *b, *c, *dup = NULL;
    assert_null(vnvme_bdev_first());
    assert_int_equal(vnvme_bdev_malloc_create("a", 8, 512, NULL, &a), 0);
    assert_int_equal(vnvme_bdev_null_create("b", 8, 512, NULL, &b), 0);
    assert_int_equal(vnvme_bdev_malloc_create("c", 8, 4096, NULL, &c), 0);
    assert_int_equal(vnvme_bdev_malloc_create("b", 8, 512, NULL, &dup), -EEXIST);
    assert_int_equal(vnvme_bdev_null_create("a", 8, 512, NULL, &dup), -EEXIST);
    assert_null(dup);

    assert_ptr_equal(vnvme_bdev_get("a"), a);
    assert_ptr_equal(vnvme_bdev_get("b"), b);
    assert_null(vnvme_bdev_get("nope"));
    assert_ptr_equal(vnvme_bdev_first(), a);
    assert_ptr_equal(vnvme_bdev_next(a), b);
    assert_ptr_equal(vnvme_bdev_next(b), c);
    assert_null(vnvme_bdev_next(c));

    b->claims = 1;
    assert_int_equal(vnvme_bdev_delete("b"), -EBUSY);
    assert_ptr_equal(vnvme_bdev_get("b"), b);
    b->claims = 0;
    assert_int_equal(vnvme_bdev_delete("b"), 0);
    assert_null(vnvme_bdev_get("b"));
    assert_int_equal(vnvme_bdev_delete("b"), -ENOENT);
    assert_ptr_equal(vnvme_bdev_next(a), c);
    /* The name is free again. */
    assert_int_equal(vnvme_bdev_null_create("b", 8, 512, NULL, &b), 0);
    assert_ptr_equal(vnvme_bdev_next(c), b);

    char longname[80];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(vnvme_bdev_malloc_create(longname, 8, 512, NULL, &dup), -EINVAL);
    assert_int_equal(vnvme_bdev_malloc_create("", 8, 512, NULL, &dup), -EINVAL);
    assert_int_equal(vnvme_bdev_malloc_create("z", 8, 1000, NULL, &dup), -EINVAL);
    assert_int_equal(vnvme_bdev_malloc_create("z", 8, 256, NULL, &dup), -EINVAL);
    assert_int_equal(vnvme_bdev_malloc_create("z", 0, 512, NULL, &dup), -EINVAL);
    assert_int_equal(vnvme_bdev_null_create("z", UINT64_MAX / 256, 512, NULL, &dup), -EINVAL);
    assert_null(vnvme_bdev_get("z"));

    assert_int_equal(vnvme_bdev_delete("a"), 0);
    assert_int_equal(vnvme_bdev_delete("b"), 0);
    assert_int_equal(vnvme_bdev_delete("c"), 0);
    assert_null(vnvme_bdev_first());
}

static void test_uuid(void **state)
{
    (void)state;
    const uint8_t given[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8};
    struct vnvme_bdev *a, *b, *c;
    assert_int_equal(vnvme_bdev_malloc_create("a", 8, 512, given, &a), 0);
    assert_int_equal(vnvme_bdev_malloc_create("b", 8, 512, NULL, &b), 0);
    assert_int_equal(vnvme_bdev_null_create("c", 8, 512, NULL, &c), 0);
    assert_memory_equal(a->uuid, given, 16);
    assert_int_equal(b->uuid[6] >> 4, 4);
    assert_int_equal(b->uuid[8] & 0xc0, 0x80);
    assert_int_equal(c->uuid[6] >> 4, 4);
    assert_memory_not_equal(b->uuid, c->uuid, 16);
    char s[37];
    vnvme_bdev_uuid_format(given, s);
    assert_string_equal(s, "12345678-9abc-def0-0102-030405060708");
    assert_int_equal(vnvme_bdev_delete("a"), 0);
    assert_int_equal(vnvme_bdev_delete("b"), 0);
    assert_int_equal(vnvme_bdev_delete("c"), 0);
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
    const uint8_t given[16] = {0xde, 0xad, 0xbe, 0xef, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 1};
    struct vnvme_bdev *m, *n;
    assert_int_equal(vnvme_bdev_malloc_create("Malloc0", 2048, 4096, given, &m), 0);
    assert_int_equal(vnvme_bdev_null_create("Null0", 100, 512, NULL, &n), 0);
    m->claims = 2;

    struct json_object *o = vnvme_bdev_to_json(m);
    assert_non_null(o);
    assert_string_equal(json_object_get_string(get(o, "name")), "Malloc0");
    assert_true(json_object_is_type(get(o, "aliases"), json_type_array));
    assert_int_equal(json_object_array_length(get(o, "aliases")), 0);
    assert_string_equal(json_object_get_string(get(o, "product_name")), "Malloc disk");
    assert_int_equal(json_object_get_int64(get(o, "block_size")), 4096);
    assert_int_equal(json_object_get_uint64(get(o, "num_blocks")), 2048);
    assert_string_equal(json_object_get_string(get(o, "uuid")), "deadbeef-0000-4000-8000-000000000001");
    assert_true(json_object_get_boolean(get(o, "claimed")));
    struct json_object *t = get(o, "supported_io_types");
    const char *types[] = {"read", "write", "flush", "write_zeroes", "unmap", "compare"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        assert_true(json_object_get_boolean(get(t, types[i])));
    struct json_object *drv = get(o, "driver_specific");
    assert_true(json_object_is_type(drv, json_type_object));
    assert_int_equal(json_object_get_uint64(get(get(drv, "malloc"), "size_bytes")), 2048ull * 4096);
    json_object_put(o);

    m->claims = 0;
    o = vnvme_bdev_to_json(n);
    assert_string_equal(json_object_get_string(get(o, "product_name")), "Null disk");
    assert_false(json_object_get_boolean(get(o, "claimed")));
    assert_int_equal(json_object_get_int64(get(o, "block_size")), 512);
    assert_int_equal(json_object_get_uint64(get(o, "num_blocks")), 100);
    assert_int_equal(strlen(json_object_get_string(get(o, "uuid"))), 36);
    json_object_put(o);

    assert_int_equal(vnvme_bdev_delete("Malloc0"), 0);
    assert_int_equal(vnvme_bdev_delete("Null0"), 0);
}

static long resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    long size = 0, resident = 0;
    assert_int_equal(fscanf(f, "%ld %ld", &size, &resident), 2);
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static void test_malloc_large_is_lazy(void **state)
{
    (void)state;
    const long MiB = 1 << 20;
    long before = resident_bytes();
    struct vnvme_bdev *b;
    assert_int_equal(vnvme_bdev_malloc_create("big", (1ull << 30) / 4096, 4096, NULL, &b), 0);
    long created = resident_bytes();
    assert_true(created - before < 16 * MiB);

    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    uint8_t *src = malloc(MiB);
    fill_pattern(src, MiB, 5);
    struct iovec iov = {src, MiB};
    /* 32 MiB in the middle of the bdev, then the very last MiB. */
    for (uint64_t i = 0; i < 32; i++)
        assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, 1000 + i * 256, 256, &iov, 1), 0);
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE, b->num_blocks - 256, 256, &iov, 1), 0);
    long written = resident_bytes();
    assert_true(written - created >= 30 * MiB);

    /* Deallocation gives the memory back. */
    assert_int_equal(run_io(ch, VNVME_BDEV_UNMAP, 1000, 32 * 256, NULL, 0), 0);
    long unmapped = resident_bytes();
    assert_true(written - unmapped >= 28 * MiB);
    assert_int_equal(run_io(ch, VNVME_BDEV_WRITE_ZEROES, b->num_blocks - 256, 256, NULL, 0), 0);
    assert_true(unmapped - resident_bytes() >= MiB / 2);

    free(src);
    vnvme_bdev_channel_put(ch);
    assert_int_equal(vnvme_bdev_delete("big"), 0);
}

/*
 * The data lives in a memfd that another process can map (a live upgrade
 * hands it over). Here the second holder is a second bdev on a dup of the
 * first one's fd: what either writes, the other reads.
 */
static void test_malloc_fd_shared(void **state)
{
    (void)state;
    const uint32_t bs = 512;
    const uint64_t nb = (4u << 20) / bs; /* two huge pages' worth */
    struct vnvme_bdev *a, *b, *n;
    assert_int_equal(vnvme_bdev_malloc_create("old", nb, bs, NULL, &a), 0);
    int fd = vnvme_bdev_malloc_fd(a);
    assert_true(fd >= 0);
    assert_int_equal(vnvme_bdev_null_create("n0", nb, bs, NULL, &n), 0);
    assert_int_equal(vnvme_bdev_malloc_fd(n), -1);
    assert_int_equal(vnvme_bdev_malloc_fd(NULL), -1);

    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, nb * bs);
    char link[64], target[128];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t tl = readlink(link, target, sizeof(target) - 1);
    assert_true(tl > 0);
    target[tl] = '\0';
    assert_string_equal(target, "/memfd:vnvme-malloc:old (deleted)");
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);

    struct vnvme_bdev_channel *cha = vnvme_bdev_channel_get(a);
    size_t len = 64 * 1024;
    uint8_t *src = malloc(len), *dst = malloc(len);
    fill_pattern(src, len, 11);
    struct iovec iov = {src, len};
    assert_int_equal(run_io(cha, VNVME_BDEV_WRITE, 3, len / bs, &iov, 1), 0);          /* inside the first page */
    assert_int_equal(run_io(cha, VNVME_BDEV_WRITE, nb - len / bs, len / bs, &iov, 1), 0); /* the very end */

    int fd2 = dup(fd);
    assert_true(fd2 >= 0);
    assert_int_equal(vnvme_bdev_malloc_create_from_fd("new", nb, bs, NULL, fd2, &b), 0);
    assert_int_equal(vnvme_bdev_malloc_fd(b), fd2);
    assert_ptr_equal(vnvme_bdev_get("new"), b);
    struct vnvme_bdev_channel *chb = vnvme_bdev_channel_get(b);
    iov.iov_base = dst;
    memset(dst, 0xee, len);
    assert_int_equal(run_io(chb, VNVME_BDEV_READ, 3, len / bs, &iov, 1), 0);
    assert_memory_equal(dst, src, len);
    memset(dst, 0xee, len);
    assert_int_equal(run_io(chb, VNVME_BDEV_READ, nb - len / bs, len / bs, &iov, 1), 0);
    assert_memory_equal(dst, src, len);
    /* Never written: zeroes on both. */
    assert_int_equal(run_io(chb, VNVME_BDEV_READ, 1000, len / bs, &iov, 1), 0);
    assert_true(all_zero(dst, len));

    /* The other way round, while both are mapped. */
    fill_pattern(src, len, 12);
    iov.iov_base = src;
    assert_int_equal(run_io(chb, VNVME_BDEV_WRITE, 2000, len / bs, &iov, 1), 0);
    iov.iov_base = dst;
    assert_int_equal(run_io(cha, VNVME_BDEV_READ, 2000, len / bs, &iov, 1), 0);
    assert_memory_equal(dst, src, len);
    vnvme_bdev_channel_put(cha);

    /* The old process goes away (its bdev closes its fd); the data stays with the new one. */
    assert_int_equal(vnvme_bdev_delete("old"), 0);
    memset(dst, 0xee, len);
    assert_int_equal(run_io(chb, VNVME_BDEV_READ, 2000, len / bs, &iov, 1), 0);
    assert_memory_equal(dst, src, len);
    assert_true(fcntl(fd2, F_GETFD) >= 0);

    free(src);
    free(dst);
    vnvme_bdev_channel_put(chb);
    assert_int_equal(vnvme_bdev_delete("new"), 0);
    assert_int_equal(fcntl(fd2, F_GETFD), -1); /* the bdev owned it */
    assert_int_equal(vnvme_bdev_delete("n0"), 0);
}

/* Adoption checks the file against the bdev's size; on any failure the caller keeps its fd. */
static void test_malloc_from_fd_rejects(void **state)
{
    (void)state;
    struct vnvme_bdev *a, *b = NULL;
    assert_int_equal(vnvme_bdev_malloc_create("m0", 256, 4096, NULL, &a), 0);
    int fd = dup(vnvme_bdev_malloc_fd(a));
    assert_true(fd >= 0);

    assert_int_equal(vnvme_bdev_malloc_create_from_fd("m1", 255, 4096, NULL, fd, &b), -EINVAL);  /* file larger */
    assert_int_equal(vnvme_bdev_malloc_create_from_fd("m1", 257, 4096, NULL, fd, &b), -EINVAL);  /* file smaller */
    assert_int_equal(vnvme_bdev_malloc_create_from_fd("m1", 2047, 512, NULL, fd, &b), -EINVAL);  /* by one block */
    assert_int_equal(vnvme_bdev_malloc_create_from_fd("m0", 256, 4096, NULL, fd, &b), -EEXIST);  /* name taken */
    assert_int_equal(vnvme_bdev_malloc_create_from_fd("m1", 256, 1000, NULL, fd, &b), -EINVAL);  /* bad block size */
    assert_int_equal(vnvme_bdev_malloc_create_from_fd("m1", 256, 4096, NULL, -1, &b), -EBADF);
    assert_null(b);
    assert_null(vnvme_bdev_get("m1"));
    assert_true(fcntl(fd, F_GETFD) >= 0); /* still open, still ours */

    /* Not a regular file. */
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    assert_int_equal(vnvme_bdev_malloc_create_from_fd("m1", 1, 4096, NULL, pipefd[0], &b), -EINVAL);
    assert_true(fcntl(pipefd[0], F_GETFD) >= 0);
    close(pipefd[0]);
    close(pipefd[1]);

    /* The same fd with the right geometry (another block size, same bytes) is adopted. */
    assert_int_equal(vnvme_bdev_malloc_create_from_fd("m1", 2048, 512, NULL, fd, &b), 0);
    assert_int_equal(vnvme_bdev_malloc_fd(b), fd);
    assert_int_equal(vnvme_bdev_delete("m1"), 0);
    assert_int_equal(vnvme_bdev_delete("m0"), 0);
}

/* Read all of b and check that [zs, ze) is zero and the rest matches pattern. */
static void check_contents(struct vnvme_bdev *b, const uint8_t *pattern, size_t zs, size_t ze)
{
    size_t len = b->num_blocks * b->block_size;
    uint8_t *dst = malloc(len);
    memset(dst, 0xee, len);
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(b);
    struct iovec iov = {dst, len};
    assert_int_equal(run_io(ch, VNVME_BDEV_READ, 0, b->num_blocks, &iov, 1), 0);
    vnvme_bdev_channel_put(ch);
    assert_memory_equal(dst, pattern, zs);
    assert_true(all_zero(dst + zs, ze - zs));
    assert_memory_equal(dst + ze, pattern + ze, len - ze);
    free(dst);
}

/*
 * Deallocation must zero the file, not just this mapping: the other holder
 * reads zeroes too. Ranges with whole pages and partial edges, through
 * either bdev, on a bdev of four huge pages.
 */
static void check_zeroing_shared(enum vnvme_bdev_op op, bool through_second, uint64_t off, uint64_t cnt)
{
    const uint32_t bs = 512;
    const uint64_t nb = (8u << 20) / bs;
    struct vnvme_bdev *a, *b;
    assert_int_equal(vnvme_bdev_malloc_create("a", nb, bs, NULL, &a), 0);
    int fd2 = dup(vnvme_bdev_malloc_fd(a));
    assert_int_equal(vnvme_bdev_malloc_create_from_fd("b", nb, bs, NULL, fd2, &b), 0);

    size_t len = nb * bs;
    uint8_t *src = malloc(len);
    fill_pattern(src, len, 21);
    struct vnvme_bdev_channel *cha = vnvme_bdev_channel_get(a);
    struct iovec iov = {src, len};
    assert_int_equal(run_io(cha, VNVME_BDEV_WRITE, 0, nb, &iov, 1), 0);
    vnvme_bdev_channel_put(cha);
    check_contents(b, src, 0, 0); /* both see the data before... */

    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(through_second ? b : a);
    assert_int_equal(run_io(ch, op, off, cnt, NULL, 0), 0);
    vnvme_bdev_channel_put(ch);
    check_contents(a, src, off * bs, (off + cnt) * bs); /* ...and the zeroes after */
    check_contents(b, src, off * bs, (off + cnt) * bs);

    free(src);
    assert_int_equal(vnvme_bdev_delete("a"), 0);
    assert_int_equal(vnvme_bdev_delete("b"), 0);
}

static void test_malloc_zeroing_shared(void **state)
{
    (void)state;
    check_zeroing_shared(VNVME_BDEV_UNMAP, false, 16, 64);            /* whole 4 KiB pages only */
    check_zeroing_shared(VNVME_BDEV_WRITE_ZEROES, false, 3, 8 * 9 + 2); /* edges inside pages, whole ones between */
    check_zeroing_shared(VNVME_BDEV_UNMAP, true, 4097, 9000);         /* across huge page boundaries */
    check_zeroing_shared(VNVME_BDEV_WRITE_ZEROES, true, 4095, 4098);  /* a whole huge page plus edges */
    check_zeroing_shared(VNVME_BDEV_UNMAP, false, 5, 2);              /* inside one page */
}

/* No holder can shrink the file under another's mapping. */
static void test_malloc_fd_sealed(void **state)
{
    (void)state;
    struct vnvme_bdev *a, *b;
    assert_int_equal(vnvme_bdev_malloc_create("m0", 100, 512, NULL, &a), 0);
    int fd = vnvme_bdev_malloc_fd(a);
    int seals = fcntl(fd, F_GET_SEALS);
    assert_true(seals >= 0);
    assert_true(seals & F_SEAL_SHRINK);
    assert_int_equal(ftruncate(fd, 512), -1);
    assert_int_equal(errno, EPERM);

    /* A file that was not sealed gets the seal when adopted. */
    int raw = memfd_create("raw", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(raw >= 0);
    assert_int_equal(ftruncate(raw, 100 * 512), 0);
    assert_int_equal(fcntl(raw, F_GET_SEALS) & F_SEAL_SHRINK, 0);
    assert_int_equal(vnvme_bdev_malloc_create_from_fd("m1", 100, 512, NULL, raw, &b), 0);
    assert_true(fcntl(raw, F_GET_SEALS) & F_SEAL_SHRINK);

    assert_int_equal(vnvme_bdev_delete("m0"), 0);
    assert_int_equal(vnvme_bdev_delete("m1"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_malloc_rw_4096),
        cmocka_unit_test(test_malloc_rw_512),
        cmocka_unit_test(test_malloc_compare),
        cmocka_unit_test(test_malloc_write_zeroes_unmap),
        cmocka_unit_test(test_malloc_zeroing_inside_huge_pages),
        cmocka_unit_test(test_bad_io),
        cmocka_unit_test(test_null_bdev),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_malloc_large_is_lazy),
        cmocka_unit_test(test_malloc_fd_shared),
        cmocka_unit_test(test_malloc_from_fd_rejects),
        cmocka_unit_test(test_malloc_zeroing_shared),
        cmocka_unit_test(test_malloc_fd_sealed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
