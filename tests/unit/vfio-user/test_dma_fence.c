/* SPDX-License-Identifier: MIT */
/* I/O mappings and fences: shared pages, fencing whole pages only, lifting, windows removed while fenced. */
#include <errno.h>
#include <pthread.h>
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
#define IO_W (VFIO_USER_DMA_WRITE_OK | VFIO_USER_DMA_IO_MAPPING)
#define MEM_SIZE (64u << 10)
#define PG 4096u

struct fixture {
    int fd;
    uint8_t *map; /* the client's view of its memory */
    struct vfio_user_dma_table *t;
};

/* Two windows: IOVA 0x100000 -> file 0x0 and IOVA 0x200000 -> file 0x8000, 0x8000 bytes each. */
static int setup(void **state)
{
    static struct fixture f;
    f.fd = memfd_create("fence-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(f.fd >= 0);
    assert_int_equal(ftruncate(f.fd, MEM_SIZE), 0);
    f.map = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd, 0);
    assert_true(f.map != MAP_FAILED);
    for (unsigned i = 0; i < MEM_SIZE; i++)
        f.map[i] = (uint8_t)(i * 7);
    f.t = vfio_user_dma_table_create(0);
    assert_int_equal(vfio_user_dma_table_add(f.t, 0x100000, 0x8000, RW, dup(f.fd), 0x0), 0);
    assert_int_equal(vfio_user_dma_table_add(f.t, 0x200000, 0x8000, RW, dup(f.fd), 0x8000), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vfio_user_dma_table_destroy(f->t);
    munmap(f->map, MEM_SIZE);
    close(f->fd);
    return 0;
}

static uint8_t *io_ptr(struct fixture *f, uint64_t iova, uint64_t len)
{
    struct iovec iov;
    assert_int_equal(vfio_user_dma_translate(f->t, iova, len, IO_W, &iov, 1), 1);
    return iov.iov_base;
}

static bool mapped(const void *p)
{
    return msync((void *)((uintptr_t)p & ~(uintptr_t)(PG - 1)), PG, MS_ASYNC) == 0;
}

static void test_io_mapping_shares_the_clients_pages(void **state)
{
    struct fixture *f = *state;
    uint8_t *main_p = vfio_user_dma_ptr(f->t, 0x100000, 0x8000, RW);
    uint8_t *io = io_ptr(f, 0x100000, 0x8000);
    assert_non_null(main_p);
    assert_ptr_not_equal(io, main_p);
    assert_ptr_equal(vfio_user_dma_table_find(f->t, 0x100000)->io_vaddr, io);
    assert_memory_equal(io, f->map, 0x8000);
    io[0x10] = 0xab;
    assert_int_equal(f->map[0x10], 0xab);
    f->map[0x20] = 0xcd;
    assert_int_equal(io[0x20], 0xcd);
    /* A window shared without an fd has no local mapping of either kind. */
    assert_int_equal(vfio_user_dma_table_add(f->t, 0x300000, 0x1000, RW, -1, 0), 0);
    struct iovec iov;
    assert_int_equal(vfio_user_dma_translate(f->t, 0x300000, 0x1000, IO_W, &iov, 1), -EFAULT);
    assert_int_equal(vfio_user_dma_translate(f->t, 0x300000, 0x1000, RW, &iov, 1), -EFAULT);
}

static void test_fence_takes_pages_and_lift_gives_them_back(void **state)
{
    struct fixture *f = *state;
    uint8_t *io = io_ptr(f, 0x100000, 0x8000);
    struct iovec fenced = {.iov_base = io + PG, .iov_len = 2 * PG};
    struct vfio_user_dma_fence *fence = vfio_user_dma_fence(f->t, &fenced, 1);
    assert_non_null(fence);
    /* A late write into the fenced pages reaches neither the client nor the main mapping. */
    uint8_t before[2 * PG];
    memcpy(before, f->map + PG, sizeof(before));
    memset(io + PG, 0xee, 2 * PG);
    assert_memory_equal(f->map + PG, before, sizeof(before));
    assert_memory_equal(vfio_user_dma_ptr(f->t, 0x100000 + PG, 2 * PG, RW), before, sizeof(before));
    /* The pages around still share. */
    io[PG - 1] = 0x11;
    io[3 * PG] = 0x22;
    assert_int_equal(f->map[PG - 1], 0x11);
    assert_int_equal(f->map[3 * PG], 0x22);
    /* The fenced window refuses I/O mapping translations; the other window and main translations do not. */
    struct iovec iov;
    assert_int_equal(vfio_user_dma_translate(f->t, 0x106000, 0x1000, IO_W, &iov, 1), -EAGAIN);
    assert_int_equal(vfio_user_dma_translate(f->t, 0x106000, 0x1000, RW, &iov, 1), 1);
    assert_int_equal(vfio_user_dma_translate(f->t, 0x200000, 0x1000, IO_W, &iov, 1), 1);

    vfio_user_dma_fence_lift(fence);
    assert_ptr_equal(io_ptr(f, 0x100000, 0x8000), io);
    assert_memory_equal(io + PG, before, sizeof(before));
    io[PG] = 0x33;
    assert_int_equal(f->map[PG], 0x33);
}

static void test_fence_refuses_what_it_cannot_fence(void **state)
{
    struct fixture *f = *state;
    uint8_t *io = io_ptr(f, 0x100000, 0x8000);
    uint8_t *main_p = vfio_user_dma_ptr(f->t, 0x100000, 0x8000, RW);
    struct iovec bad[] = {
        {.iov_base = io + 512, .iov_len = PG},     /* starts inside a page */
        {.iov_base = io, .iov_len = PG + 512},     /* ends inside a page */
        {.iov_base = main_p, .iov_len = PG},       /* the main mapping */
        {.iov_base = io + 7 * PG, .iov_len = 2 * PG}, /* runs past the I/O mapping */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        assert_null(vfio_user_dma_fence(f->t, &bad[i], 1));
        assert_int_equal(errno, EINVAL);
    }
    assert_null(vfio_user_dma_fence(f->t, bad, 0));
    /* Nothing was fenced on the way. */
    io[0] = 0x44;
    assert_int_equal(f->map[0], 0x44);
    struct iovec iov;
    assert_int_equal(vfio_user_dma_translate(f->t, 0x100000, 0x1000, IO_W, &iov, 1), 1);
}

static void *drop_thread(void *arg)
{
    vfio_user_dma_fence_drop(arg);
    return NULL;
}

/* The window goes while an I/O still writes its fenced pages: addresses stay reserved until the fence goes. */
static void test_window_removed_while_fenced(void **state)
{
    struct fixture *f = *state;
    uint8_t *io = io_ptr(f, 0x200000, 0x8000);
    struct iovec v[2] = {{.iov_base = io, .iov_len = PG}, {.iov_base = io + 4 * PG, .iov_len = PG}};
    struct vfio_user_dma_fence *fence = vfio_user_dma_fence(f->t, v, 2);
    assert_non_null(fence);
    struct vfio_user_dma_region r;
    assert_int_equal(vfio_user_dma_table_remove(f->t, 0x200000, 0x8000, &r), 0);
    vfio_user_dma_region_release(&r);
    /* Late writes (fenced pages or not) fault nowhere and reach nobody. */
    uint8_t before[0x8000];
    memcpy(before, f->map + 0x8000, sizeof(before));
    memset(io, 0xee, 0x8000);
    assert_memory_equal(f->map + 0x8000, before, sizeof(before));
    /* A fence dropped on another thread lets the addresses go. */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, drop_thread, fence), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_false(mapped(io));
}

/* The device is told of a removal (dma_unmap) after the table dropped the window: it can still fence it then. */
static void test_fence_while_the_window_is_being_removed(void **state)
{
    struct fixture *f = *state;
    uint8_t *io = io_ptr(f, 0x100000, 0x8000);
    struct vfio_user_dma_region r;
    assert_int_equal(vfio_user_dma_table_remove(f->t, 0x100000, 0x8000, &r), 0);
    struct iovec v = {.iov_base = io + PG, .iov_len = PG};
    struct vfio_user_dma_fence *fence = vfio_user_dma_fence(f->t, &v, 1);
    assert_non_null(fence);
    io[PG] = 0x77;
    assert_int_not_equal(f->map[PG], 0x77);
    vfio_user_dma_region_release(&r);
    assert_true(mapped(io));
    vfio_user_dma_fence_lift(fence);
    assert_false(mapped(io));
    /* Released windows are gone for fences too. */
    assert_null(vfio_user_dma_fence(f->t, &v, 1));
}

/* A fence lifted after its window went maps nothing back, and frees the addresses. */
static void test_lift_after_the_window_went(void **state)
{
    struct fixture *f = *state;
    uint8_t *io = io_ptr(f, 0x100000, 0x8000);
    struct iovec v = {.iov_base = io + 2 * PG, .iov_len = PG};
    struct vfio_user_dma_fence *a = vfio_user_dma_fence(f->t, &v, 1);
    struct vfio_user_dma_fence *b = vfio_user_dma_fence(f->t, &v, 1); /* a second I/O on the same page */
    assert_non_null(a);
    assert_non_null(b);
    vfio_user_dma_table_clear(f->t, NULL, NULL);
    vfio_user_dma_fence_lift(a);
    assert_true(mapped(io));
    io[2 * PG] = 0x55;
    assert_int_not_equal(f->map[2 * PG], 0x55);
    vfio_user_dma_fence_lift(b);
    assert_false(mapped(io));
}

/* With two fences on one window, it takes I/O mapping translations again only once both are lifted or dropped. */
static void test_window_waits_for_every_fence(void **state)
{
    struct fixture *f = *state;
    uint8_t *io = io_ptr(f, 0x100000, 0x8000);
    struct iovec v1 = {.iov_base = io, .iov_len = PG}, v2 = {.iov_base = io + 5 * PG, .iov_len = PG};
    struct vfio_user_dma_fence *a = vfio_user_dma_fence(f->t, &v1, 1);
    struct vfio_user_dma_fence *b = vfio_user_dma_fence(f->t, &v2, 1);
    assert_non_null(a);
    assert_non_null(b);
    struct iovec iov;
    vfio_user_dma_fence_lift(a);
    assert_int_equal(vfio_user_dma_translate(f->t, 0x100000, PG, IO_W, &iov, 1), -EAGAIN);
    io[0] = 0x66;
    assert_int_equal(f->map[0], 0x66); /* a's page is the client's again */
    vfio_user_dma_fence_lift(b);
    assert_int_equal(vfio_user_dma_translate(f->t, 0x100000, PG, IO_W, &iov, 1), 1);
    /*
     * A fence dropped on another thread (the library finished the I/O there) is lifted by the
     * table thread at its next I/O-mapping translation into the window.
     */
    struct vfio_user_dma_fence *c = vfio_user_dma_fence(f->t, &v1, 1);
    struct vfio_user_dma_fence *d = vfio_user_dma_fence(f->t, &v2, 1);
    assert_non_null(c);
    assert_non_null(d);
    io[0] = 0x77;
    assert_int_equal(f->map[0], 0x66); /* fenced: the late write went to private memory */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, drop_thread, c), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    io[0] = 0x78;
    assert_int_equal(f->map[0], 0x66); /* not lifted by the drop itself: only the table thread maps */
    assert_int_equal(vfio_user_dma_translate(f->t, 0x100000, PG, IO_W, &iov, 1), -EAGAIN); /* d still holds it */
    io[0] = 0x79;
    assert_int_equal(f->map[0], 0x79); /* c's page was lifted on the way */
    vfio_user_dma_fence_lift(d);
    assert_int_equal(vfio_user_dma_translate(f->t, 0x100000, PG, IO_W, &iov, 1), 1);
    /* A drop after the window went: nothing to lift, the reserved addresses go with the last reference. */
    struct vfio_user_dma_fence *e = vfio_user_dma_fence(f->t, &v1, 1);
    assert_non_null(e);
    vfio_user_dma_table_clear(f->t, NULL, NULL);
    assert_true(mapped(io));
    assert_int_equal(pthread_create(&th, NULL, drop_thread, e), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_false(mapped(io));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_io_mapping_shares_the_clients_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fence_takes_pages_and_lift_gives_them_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fence_refuses_what_it_cannot_fence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_removed_while_fenced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fence_while_the_window_is_being_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lift_after_the_window_went, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_waits_for_every_fence, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
