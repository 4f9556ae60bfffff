/* SPDX-License-Identifier: MIT */
/* DMA window table: overlap rules, exact unmap, translation across windows, permissions. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "vnvme/vfio_user_dma.h"

#define RW (VFIO_USER_DMA_READ_OK | VFIO_USER_DMA_WRITE_OK)
#define MEM_SIZE (64u << 10)

/* A memfd of MEM_SIZE bytes where byte i holds (uint8_t)i, and our own mapping of it. */
static int make_memfd(uint8_t **map)
{
    int fd = memfd_create("dma-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, MEM_SIZE), 0);
    *map = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(*map != MAP_FAILED);
    for (unsigned i = 0; i < MEM_SIZE; i++)
        (*map)[i] = (uint8_t)i;
    return fd;
}

static void test_add_rejects_overlap(void **state)
{
    (void)state;
    struct vfio_user_dma_table *t = vfio_user_dma_table_create(0);
    assert_int_equal(vfio_user_dma_table_add(t, 0x10000, 0x1000, RW, -1, 0), 0);
    /* Same start, inside, straddling the start, straddling the end, covering. */
    assert_int_equal(vfio_user_dma_table_add(t, 0x10000, 0x1000, RW, -1, 0), -EEXIST);
    assert_int_equal(vfio_user_dma_table_add(t, 0x10800, 0x100, RW, -1, 0), -EEXIST);
    assert_int_equal(vfio_user_dma_table_add(t, 0xf000, 0x1001, RW, -1, 0), -EEXIST);
    assert_int_equal(vfio_user_dma_table_add(t, 0x10fff, 0x2000, RW, -1, 0), -EEXIST);
    assert_int_equal(vfio_user_dma_table_add(t, 0x0, 0x100000, RW, -1, 0), -EEXIST);
    /* Touching windows on both sides are fine. */
    assert_int_equal(vfio_user_dma_table_add(t, 0xf000, 0x1000, RW, -1, 0), 0);
    assert_int_equal(vfio_user_dma_table_add(t, 0x11000, 0x1000, RW, -1, 0), 0);
    assert_int_equal(vfio_user_dma_table_count(t), 3);
    /* Kept sorted. */
    assert_int_equal(vfio_user_dma_table_at(t, 0)->iova, 0xf000);
    assert_int_equal(vfio_user_dma_table_at(t, 1)->iova, 0x10000);
    assert_int_equal(vfio_user_dma_table_at(t, 2)->iova, 0x11000);
    vfio_user_dma_table_destroy(t);
}

static void test_add_rejects_bad_arguments(void **state)
{
    (void)state;
    struct vfio_user_dma_table *t = vfio_user_dma_table_create(2);
    assert_int_equal(vfio_user_dma_table_add(t, 0x1000, 0, RW, -1, 0), -EINVAL);
    assert_int_equal(vfio_user_dma_table_add(t, UINT64_MAX - 0xfff, 0x2000, RW, -1, 0), -EINVAL);
    assert_int_equal(vfio_user_dma_table_add(t, 0x1000, 0x1000, 0, -1, 0), -EINVAL);
    assert_int_equal(vfio_user_dma_table_add(t, 0x1000, 0x1000, 0x4, -1, 0), -EINVAL);
    /* The very last byte of the address space is a valid window end. */
    assert_int_equal(vfio_user_dma_table_add(t, UINT64_MAX - 0xfff, 0x1000, RW, -1, 0), 0);
    assert_int_equal(vfio_user_dma_table_add(t, 0, 0x1000, RW, -1, 0), 0);
    assert_int_equal(vfio_user_dma_table_add(t, 0x8000, 0x1000, RW, -1, 0), -ENOSPC);
    vfio_user_dma_table_destroy(t);
}

static void test_add_checks_backing_file(void **state)
{
    (void)state;
    uint8_t *map;
    int fd = make_memfd(&map);
    struct vfio_user_dma_table *t = vfio_user_dma_table_create(0);
    /* Larger than the file: would SIGBUS on access, so refused (the table closes the fd it got). */
    assert_int_equal(vfio_user_dma_table_add(t, 0, MEM_SIZE + 0x1000, RW, dup(fd), 0), -EINVAL);
    assert_int_equal(vfio_user_dma_table_add(t, 0, 0x1000, RW, dup(fd), MEM_SIZE), -EINVAL);
    /* A pipe cannot back memory. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(vfio_user_dma_table_add(t, 0, 0x1000, RW, p[0], 0), -EINVAL);
    assert_int_equal(fcntl(p[0], F_GETFD), -1); /* closed by the table */
    close(p[1]);
    /* A fitting window seals the memfd against shrinking. */
    assert_int_equal(vfio_user_dma_table_add(t, 0, MEM_SIZE, RW, dup(fd), 0), 0);
    assert_true(fcntl(fd, F_GET_SEALS) & F_SEAL_SHRINK);
    assert_int_not_equal(ftruncate(fd, 0x1000), 0);
    vfio_user_dma_table_destroy(t);
    munmap(map, MEM_SIZE);
    close(fd);
}

static void test_remove_exact_only(void **state)
{
    (void)state;
    struct vfio_user_dma_table *t = vfio_user_dma_table_create(0);
    assert_int_equal(vfio_user_dma_table_add(t, 0x1000, 0x3000, RW, -1, 0), 0);
    assert_int_equal(vfio_user_dma_table_add(t, 0x8000, 0x1000, RW, -1, 0), 0);
    /* Unmapping the middle of a window, a prefix or a superset is refused. */
    assert_int_equal(vfio_user_dma_table_remove(t, 0x2000, 0x1000, NULL), -ENOENT);
    assert_int_equal(vfio_user_dma_table_remove(t, 0x1000, 0x1000, NULL), -ENOENT);
    assert_int_equal(vfio_user_dma_table_remove(t, 0x1000, 0x4000, NULL), -ENOENT);
    assert_int_equal(vfio_user_dma_table_count(t), 2);
    struct vfio_user_dma_region out;
    assert_int_equal(vfio_user_dma_table_remove(t, 0x1000, 0x3000, &out), 0);
    assert_int_equal(out.iova, 0x1000);
    assert_int_equal(out.size, 0x3000);
    vfio_user_dma_region_release(&out);
    assert_int_equal(vfio_user_dma_table_count(t), 1);
    assert_null(vfio_user_dma_table_find(t, 0x1000));
    assert_non_null(vfio_user_dma_table_find(t, 0x8fff));
    vfio_user_dma_table_destroy(t);
}

static int clear_calls;
static bool count_cb(void *arg, const struct vfio_user_dma_region *r)
{
    (void)r;
    assert_ptr_equal(arg, &clear_calls);
    clear_calls++;
    return false;
}

static void test_clear_notifies_each(void **state)
{
    (void)state;
    struct vfio_user_dma_table *t = vfio_user_dma_table_create(0);
    for (uint64_t i = 0; i < 5; i++)
        assert_int_equal(vfio_user_dma_table_add(t, i * 0x10000, 0x1000, RW, -1, 0), 0);
    clear_calls = 0;
    vfio_user_dma_table_clear(t, count_cb, &clear_calls);
    assert_int_equal(clear_calls, 5);
    assert_int_equal(vfio_user_dma_table_count(t), 0);
    vfio_user_dma_table_destroy(t);
}

static uint8_t *held_vaddr;

/* The device still writes the first window, not the others. */
static bool hold_first_cb(void *arg, const struct vfio_user_dma_region *r)
{
    (void)arg;
    if (r->iova != 0x100000)
        return false;
    held_vaddr = r->vaddr;
    return true;
}

/* A window cleared while the device may still write it is quarantined, not unmapped. */
static void test_clear_quarantines_a_held_window(void **state)
{
    (void)state;
    uint8_t *map;
    int fd = make_memfd(&map);
    struct vfio_user_dma_table *t = vfio_user_dma_table_create(0);
    assert_int_equal(vfio_user_dma_table_add(t, 0x100000, 0x4000, RW, dup(fd), 0x8000), 0);
    assert_int_equal(vfio_user_dma_table_add(t, 0x200000, 0x4000, RW, dup(fd), 0x0), 0);
    held_vaddr = NULL;
    vfio_user_dma_table_clear(t, hold_first_cb, NULL);
    assert_int_equal(vfio_user_dma_table_count(t), 0);
    assert_non_null(held_vaddr);
    /* Still writable, and writes no longer reach the client's memory. */
    memset(held_vaddr, 0xee, 0x4000);
    for (unsigned i = 0x8000; i < 0xc000; i++)
        assert_int_equal(map[i], (uint8_t)i);
    assert_int_equal(held_vaddr[0x3fff], 0xee);
    vfio_user_dma_table_destroy(t);
    munmap(map, MEM_SIZE);
    close(fd);
}

static void test_translate_within_and_across(void **state)
{
    (void)state;
    uint8_t *map;
    int fd = make_memfd(&map);
    struct vfio_user_dma_table *t = vfio_user_dma_table_create(0);
    /*
     * Two windows adjacent in IOVA space backed by non-adjacent file ranges:
     * IOVA [0x100000, +0x4000) -> file 0x8000, IOVA [0x104000, +0x4000) -> file 0x0.
     */
    assert_int_equal(vfio_user_dma_table_add(t, 0x100000, 0x4000, RW, dup(fd), 0x8000), 0);
    assert_int_equal(vfio_user_dma_table_add(t, 0x104000, 0x4000, RW, dup(fd), 0x0), 0);

    struct iovec iov[4];
    int n = vfio_user_dma_translate(t, 0x100010, 0x100, VFIO_USER_DMA_READ_OK, iov, 4);
    assert_int_equal(n, 1);
    assert_int_equal(iov[0].iov_len, 0x100);
    assert_int_equal(((uint8_t *)iov[0].iov_base)[0], (uint8_t)(0x8000 + 0x10));

    /* Across the IOVA edge: two iovecs, each pointing at the right file bytes. */
    n = vfio_user_dma_translate(t, 0x103ff0, 0x20, VFIO_USER_DMA_READ_OK, iov, 4);
    assert_int_equal(n, 2);
    assert_int_equal(iov[0].iov_len, 0x10);
    assert_int_equal(iov[1].iov_len, 0x10);
    assert_int_equal(((uint8_t *)iov[0].iov_base)[0], (uint8_t)(0x8000 + 0x3ff0));
    assert_int_equal(((uint8_t *)iov[1].iov_base)[0], 0);
    /* Writes through the translation land in the client's memory. */
    ((uint8_t *)iov[1].iov_base)[5] = 0xa5;
    assert_int_equal(map[5], 0xa5);

    /* Not enough iovecs. */
    assert_int_equal(vfio_user_dma_translate(t, 0x103ff0, 0x20, VFIO_USER_DMA_READ_OK, iov, 1), -ENOSPC);
    /* Running off the last window, starting before the first, zero and wrapping lengths. */
    assert_int_equal(vfio_user_dma_translate(t, 0x107ff0, 0x20, VFIO_USER_DMA_READ_OK, iov, 4), -EFAULT);
    assert_int_equal(vfio_user_dma_translate(t, 0xfffff, 0x2, VFIO_USER_DMA_READ_OK, iov, 4), -EFAULT);
    assert_int_equal(vfio_user_dma_translate(t, 0x100000, 0, VFIO_USER_DMA_READ_OK, iov, 4), -EINVAL);
    assert_int_equal(vfio_user_dma_translate(t, UINT64_MAX, 2, VFIO_USER_DMA_READ_OK, iov, 4), -EINVAL);

    /* The pointer fast path only for spans inside one window. */
    assert_non_null(vfio_user_dma_ptr(t, 0x100000, 0x4000, RW));
    assert_null(vfio_user_dma_ptr(t, 0x100001, 0x4000, RW));
    assert_null(vfio_user_dma_ptr(t, 0x0, 0x10, RW));
    vfio_user_dma_table_destroy(t);
    munmap(map, MEM_SIZE);
    close(fd);
}

static void test_translate_merges_locally_contiguous(void **state)
{
    (void)state;
    uint8_t *map;
    int fd = make_memfd(&map);
    struct vfio_user_dma_table *t = vfio_user_dma_table_create(0);
    /* One window split in two maps of the same file; the local mappings are separate, so two iovecs. */
    assert_int_equal(vfio_user_dma_table_add(t, 0x0, 0x2000, RW, dup(fd), 0x0), 0);
    assert_int_equal(vfio_user_dma_table_add(t, 0x2000, 0x2000, RW, dup(fd), 0x2000), 0);
    struct iovec iov[2];
    int n = vfio_user_dma_translate(t, 0x1000, 0x2000, VFIO_USER_DMA_WRITE_OK, iov, 2);
    assert_true(n == 1 || n == 2);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    assert_int_equal(total, 0x2000);
    vfio_user_dma_table_destroy(t);
    munmap(map, MEM_SIZE);
    close(fd);
}

static void test_translate_gap_and_permissions(void **state)
{
    (void)state;
    uint8_t *map;
    int fd = make_memfd(&map);
    struct vfio_user_dma_table *t = vfio_user_dma_table_create(0);
    assert_int_equal(vfio_user_dma_table_add(t, 0x0, 0x1000, VFIO_USER_DMA_READ_OK, dup(fd), 0x0), 0);
    assert_int_equal(vfio_user_dma_table_add(t, 0x1000, 0x1000, RW, dup(fd), 0x1000), 0);
    assert_int_equal(vfio_user_dma_table_add(t, 0x3000, 0x1000, RW, dup(fd), 0x3000), 0);
    /* A window shared without an fd cannot be reached through memory. */
    assert_int_equal(vfio_user_dma_table_add(t, 0x4000, 0x1000, RW, -1, 0), 0);
    struct iovec iov[4];

    /* Read-only window: reads fine, writes refused, also when only its last byte is touched. */
    assert_int_equal(vfio_user_dma_translate(t, 0x0, 0x1000, VFIO_USER_DMA_READ_OK, iov, 4), 1);
    assert_int_equal(vfio_user_dma_translate(t, 0x0, 0x1000, VFIO_USER_DMA_WRITE_OK, iov, 4), -EACCES);
    assert_int_equal(vfio_user_dma_translate(t, 0xfff, 0x2, VFIO_USER_DMA_WRITE_OK, iov, 4), -EACCES);
    assert_int_equal(vfio_user_dma_translate(t, 0xfff, 0x2, VFIO_USER_DMA_READ_OK, iov, 4) > 0, 1);
    assert_null(vfio_user_dma_ptr(t, 0x0, 0x10, VFIO_USER_DMA_WRITE_OK));

    /* The hole at [0x2000, 0x3000) breaks a span even though both sides are mapped. */
    assert_int_equal(vfio_user_dma_translate(t, 0x1800, 0x2000, VFIO_USER_DMA_READ_OK, iov, 4), -EFAULT);
    assert_int_equal(vfio_user_dma_translate(t, 0x2000, 0x1, VFIO_USER_DMA_READ_OK, iov, 4), -EFAULT);

    /* fd-less window. */
    assert_int_equal(vfio_user_dma_translate(t, 0x4000, 0x10, VFIO_USER_DMA_READ_OK, iov, 4), -EFAULT);
    assert_int_equal(vfio_user_dma_translate(t, 0x3ff0, 0x20, VFIO_USER_DMA_READ_OK, iov, 4), -EFAULT);
    assert_non_null(vfio_user_dma_table_find(t, 0x4000));
    assert_null(vfio_user_dma_table_find(t, 0x4000)->vaddr);
    vfio_user_dma_table_destroy(t);
    munmap(map, MEM_SIZE);
    close(fd);
}

static void test_unmap_in_the_middle_keeps_neighbours(void **state)
{
    (void)state;
    uint8_t *map;
    int fd = make_memfd(&map);
    struct vfio_user_dma_table *t = vfio_user_dma_table_create(0);
    for (uint64_t i = 0; i < 4; i++)
        assert_int_equal(vfio_user_dma_table_add(t, i * 0x1000, 0x1000, RW, dup(fd), i * 0x1000), 0);
    assert_int_equal(vfio_user_dma_table_remove(t, 0x1000, 0x1000, NULL), 0);
    struct iovec iov[4];
    assert_int_equal(vfio_user_dma_translate(t, 0x0, 0x1000, VFIO_USER_DMA_READ_OK, iov, 4), 1);
    assert_int_equal(vfio_user_dma_translate(t, 0x800, 0x1000, VFIO_USER_DMA_READ_OK, iov, 4), -EFAULT);
    assert_int_equal(vfio_user_dma_translate(t, 0x2000, 0x2000, VFIO_USER_DMA_READ_OK, iov, 4) >= 1, 1);
    assert_int_equal(((uint8_t *)iov[0].iov_base)[1], (uint8_t)(0x2000 + 1));
    /* The freed range can be mapped again. */
    assert_int_equal(vfio_user_dma_table_add(t, 0x1000, 0x1000, RW, dup(fd), 0x1000), 0);
    assert_int_equal(vfio_user_dma_translate(t, 0x0, 0x4000, VFIO_USER_DMA_READ_OK, iov, 4) >= 1, 1);
    vfio_user_dma_table_destroy(t);
    munmap(map, MEM_SIZE);
    close(fd);
}

static void test_unaligned_file_offset(void **state)
{
    (void)state;
    uint8_t *map;
    int fd = make_memfd(&map);
    struct vfio_user_dma_table *t = vfio_user_dma_table_create(0);
    /* mmap needs a page-aligned offset; the table maps the page and points inside it. */
    assert_int_equal(vfio_user_dma_table_add(t, 0x0, 0x1000, RW, dup(fd), 0x123), 0);
    uint8_t *p = vfio_user_dma_ptr(t, 0x0, 0x10, VFIO_USER_DMA_READ_OK);
    assert_non_null(p);
    assert_int_equal(p[0], 0x23);
    vfio_user_dma_table_destroy(t);
    munmap(map, MEM_SIZE);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_rejects_overlap),
        cmocka_unit_test(test_add_rejects_bad_arguments),
        cmocka_unit_test(test_add_checks_backing_file),
        cmocka_unit_test(test_remove_exact_only),
        cmocka_unit_test(test_clear_notifies_each),
        cmocka_unit_test(test_clear_quarantines_a_held_window),
        cmocka_unit_test(test_translate_within_and_across),
        cmocka_unit_test(test_translate_merges_locally_contiguous),
        cmocka_unit_test(test_translate_gap_and_permissions),
        cmocka_unit_test(test_unmap_in_the_middle_keeps_neighbours),
        cmocka_unit_test(test_unaligned_file_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
