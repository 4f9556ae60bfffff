/* SPDX-License-Identifier: MIT */
/*
 * Our vfio-user client against our vfio-user server in one process: the server
 * runs its poll loop in a thread (all server calls happen there), the client
 * in the test thread. Work the device does on its own (DMA, interrupts) is
 * handed to the server thread as a job while the test thread keeps serving
 * client-side requests, as a VMM would.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "vnvme/vfio_user_client.h"
#include "vnvme/vfio_user_server.h"

#define PAGE 4096u
#define BAR0_SIZE (4 * PAGE)
#define CFG_SIZE 256u

struct device {
    uint8_t cfg[CFG_SIZE];
    uint8_t *bar0; /* memfd mapping: what the client mmaps and what the callback serves */
    int bar0_fd;
    atomic_int resets;
    atomic_int maps;
    atomic_int unmaps;
    atomic_int connects;
    atomic_int disconnects;
    atomic_int region_calls;
};

typedef int (*job_fn)(struct vfio_user_server *s, void *arg);

struct harness {
    char dir[64];
    char path[128];
    struct device dev;
    struct vfio_user_server *srv;
    pthread_t thread;
    atomic_bool stop;
    /* One job at a time, run on the server thread. */
    pthread_mutex_t lock;
    job_fn job;
    void *job_arg;
    atomic_bool job_done;
    int job_rc;
};

static ssize_t cfg_access(void *ctx, uint8_t *buf, size_t count, uint64_t offset, bool is_write)
{
    struct device *d = ctx;
    d->region_calls++;
    if (is_write)
        memcpy(d->cfg + offset, buf, count);
    else
        memcpy(buf, d->cfg + offset, count);
    return (ssize_t)count;
}

static ssize_t bar0_access(void *ctx, uint8_t *buf, size_t count, uint64_t offset, bool is_write)
{
    struct device *d = ctx;
    d->region_calls++;
    if (is_write)
        memcpy(d->bar0 + offset, buf, count);
    else
        memcpy(buf, d->bar0 + offset, count);
    return (ssize_t)count;
}

static int dev_reset(void *ctx, enum vfio_user_reset_reason why)
{
    struct device *d = ctx;
    if (why == VFIO_USER_RESET_CLIENT)
        d->resets++;
    return 0;
}

static void dev_dma_map(void *ctx, const struct vfio_user_dma_region *r)
{
    (void)r;
    ((struct device *)ctx)->maps++;
}

static bool dev_dma_unmap(void *ctx, const struct vfio_user_dma_region *r)
{
    (void)r;
    ((struct device *)ctx)->unmaps++;
    return false;
}

static void dev_connected(void *ctx)
{
    ((struct device *)ctx)->connects++;
}

static void dev_disconnected(void *ctx)
{
    ((struct device *)ctx)->disconnects++;
}

static const struct vfio_user_server_ops dev_ops = {
    .reset = dev_reset,
    .dma_map = dev_dma_map,
    .dma_unmap = dev_dma_unmap,
    .connected = dev_connected,
    .disconnected = dev_disconnected,
};

static void *server_main(void *arg)
{
    struct harness *h = arg;
    while (!h->stop) {
        int lfd, cfd;
        vfio_user_server_fds(h->srv, &lfd, &cfd);
        struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = cfd, .events = POLLIN}};
        poll(p, cfd >= 0 ? 2 : 1, 10);
        vfio_user_server_poll(h->srv);
        pthread_mutex_lock(&h->lock);
        job_fn job = h->job;
        h->job = NULL;
        pthread_mutex_unlock(&h->lock);
        if (job) {
            h->job_rc = job(h->srv, h->job_arg);
            h->job_done = true;
        }
    }
    return NULL;
}

/* Run fn on the server thread while this thread serves the client's side. */
static int run_job(struct harness *h, struct vfio_user_client *c, job_fn fn, void *arg)
{
    h->job_done = false;
    pthread_mutex_lock(&h->lock);
    h->job_arg = arg;
    h->job = fn;
    pthread_mutex_unlock(&h->lock);
    while (!h->job_done) {
        if (c) {
            struct pollfd p = {.fd = vfio_user_client_fd(c), .events = POLLIN};
            poll(&p, 1, 10);
            int rc = vfio_user_client_poll(c);
            assert_true(rc >= 0);
        } else {
            usleep(1000);
        }
    }
    return h->job_rc;
}

static int setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    strcpy(h->dir, "/tmp/vu-e2e-XXXXXX");
    assert_non_null(mkdtemp(h->dir));
    snprintf(h->path, sizeof(h->path), "%s/sock", h->dir);
    pthread_mutex_init(&h->lock, NULL);

    struct device *d = &h->dev;
    d->bar0_fd = memfd_create("bar0", MFD_CLOEXEC);
    assert_true(d->bar0_fd >= 0);
    assert_int_equal(ftruncate(d->bar0_fd, BAR0_SIZE), 0);
    d->bar0 = mmap(NULL, BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, d->bar0_fd, 0);
    assert_true(d->bar0 != MAP_FAILED);
    for (unsigned i = 0; i < CFG_SIZE; i++)
        d->cfg[i] = (uint8_t)i;

    struct vfio_user_server_config cfg = {
        .socket_path = h->path,
        .flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
        .num_regions = VFIO_USER_PCI_NUM_REGIONS,
        .num_irqs = VFIO_USER_PCI_NUM_IRQS,
        .max_data_xfer_size = 4096,
        .ops = &dev_ops,
        .dev_ctx = d,
    };
    int err = 0;
    h->srv = vfio_user_server_create(&cfg, &err);
    assert_non_null(h->srv);

    /* BAR0: the first page only by message (like doorbells would be), the rest mappable. */
    struct vfio_user_region_desc bar0 = {
        .size = BAR0_SIZE,
        .flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
        .access = bar0_access,
        .ctx = d,
        .mmap_fd = d->bar0_fd,
        .mmap_offset = 0,
        .nr_sparse = 1,
        .sparse = {{.offset = PAGE, .size = BAR0_SIZE - PAGE}},
    };
    assert_int_equal(vfio_user_server_setup_region(h->srv, VFIO_PCI_BAR0_REGION_INDEX, &bar0), 0);
    struct vfio_user_region_desc cfgr = {
        .size = CFG_SIZE,
        .flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
        .access = cfg_access,
        .ctx = d,
        .mmap_fd = -1,
    };
    assert_int_equal(vfio_user_server_setup_region(h->srv, VFIO_PCI_CONFIG_REGION_INDEX, &cfgr), 0);
    assert_int_equal(vfio_user_server_setup_irq(h->srv, VFIO_PCI_MSIX_IRQ_INDEX, 4,
                                                VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE),
                     0);
    assert_int_equal(pthread_create(&h->thread, NULL, server_main, h), 0);
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    struct harness *h = *state;
    h->stop = true;
    pthread_join(h->thread, NULL);
    vfio_user_server_destroy(h->srv);
    munmap(h->dev.bar0, BAR0_SIZE);
    close(h->dev.bar0_fd);
    unlink(h->path);
    rmdir(h->dir);
    pthread_mutex_destroy(&h->lock);
    free(h);
    return 0;
}

static struct vfio_user_client *connect_client(struct harness *h)
{
    int err = 0;
    struct vfio_user_client *c = vfio_user_client_connect(h->path, 5000, &err);
    assert_int_equal(err, 0);
    assert_non_null(c);
    return c;
}

static void test_info_and_regions(void **state)
{
    struct harness *h = *state;
    struct vfio_user_client *c = connect_client(h);
    assert_int_equal(vfio_user_client_server_caps(c)->max_data_xfer_size, 4096);

    struct vfio_user_device_info di;
    assert_int_equal(vfio_user_client_device_info(c, &di), 0);
    assert_int_equal(di.num_regions, VFIO_USER_PCI_NUM_REGIONS);
    assert_int_equal(di.num_irqs, VFIO_USER_PCI_NUM_IRQS);
    assert_true(di.flags & VFIO_DEVICE_FLAGS_PCI);

    struct vfio_irq_info ii;
    assert_int_equal(vfio_user_client_irq_info(c, VFIO_PCI_MSIX_IRQ_INDEX, &ii), 0);
    assert_int_equal(ii.count, 4);
    assert_true(ii.flags & VFIO_IRQ_INFO_EVENTFD);

    /* Config space by message. */
    uint8_t buf[CFG_SIZE];
    assert_int_equal(vfio_user_client_region_read(c, VFIO_PCI_CONFIG_REGION_INDEX, 0, buf, sizeof(buf)), 0);
    for (unsigned i = 0; i < CFG_SIZE; i++)
        assert_int_equal(buf[i], (uint8_t)i);
    uint32_t v = 0xcafef00d;
    assert_int_equal(vfio_user_client_region_write(c, VFIO_PCI_CONFIG_REGION_INDEX, 0x40, &v, 4), 0);
    assert_memory_equal(h->dev.cfg + 0x40, &v, 4);

    /* BAR0: sparse mmap of pages 1-3, page 0 by message. */
    int err = 1;
    const struct vfio_user_client_region *r = vfio_user_client_region(c, VFIO_PCI_BAR0_REGION_INDEX, &err);
    assert_non_null(r);
    assert_int_equal(r->size, BAR0_SIZE);
    assert_int_equal(r->nr_mmaps, 1);
    assert_non_null(r->mmaps[0].addr);
    assert_null(vfio_user_client_region_ptr(c, VFIO_PCI_BAR0_REGION_INDEX, 0, 4));
    uint8_t *p = vfio_user_client_region_ptr(c, VFIO_PCI_BAR0_REGION_INDEX, PAGE, 4);
    assert_non_null(p);
    int calls = h->dev.region_calls;
    uint64_t q = 0x1122334455667788ull;
    assert_int_equal(vfio_user_client_region_access(c, VFIO_PCI_BAR0_REGION_INDEX, 2 * PAGE, &q, 8, true), 0);
    assert_memory_equal(h->dev.bar0 + 2 * PAGE, &q, 8);
    assert_int_equal(h->dev.region_calls, calls); /* no message for the mapped part */
    assert_int_equal(vfio_user_client_region_access(c, VFIO_PCI_BAR0_REGION_INDEX, 8, &q, 8, true), 0);
    assert_memory_equal(h->dev.bar0 + 8, &q, 8);
    assert_true(h->dev.region_calls > calls);

    /* A read larger than max_data_xfer_size is split by the client. */
    static uint8_t big[BAR0_SIZE];
    for (unsigned i = 0; i < BAR0_SIZE; i++)
        h->dev.bar0[i] = (uint8_t)(i * 13);
    assert_int_equal(vfio_user_client_region_read(c, VFIO_PCI_BAR0_REGION_INDEX, 0, big, BAR0_SIZE), 0);
    assert_memory_equal(big, h->dev.bar0, BAR0_SIZE);

    /* Out of range: the server refuses, the connection stays usable. */
    assert_true(vfio_user_client_region_read(c, VFIO_PCI_CONFIG_REGION_INDEX, CFG_SIZE - 2, buf, 4) < 0);
    assert_int_equal(vfio_user_client_device_reset(c), 0);
    assert_int_equal(h->dev.resets, 1);
    vfio_user_client_close(c);
}

struct dma_job {
    uint64_t iova;
    uint8_t data[64];
    size_t len;
    bool write;
};

static int do_dma(struct vfio_user_server *s, void *arg)
{
    struct dma_job *j = arg;
    if (j->write)
        return vfio_user_server_dma_write(s, j->iova, j->data, j->len);
    return vfio_user_server_dma_read(s, j->iova, j->data, j->len);
}

static void test_dma(void **state)
{
    struct harness *h = *state;
    struct vfio_user_client *c = connect_client(h);
    int memfd = memfd_create("guest", MFD_CLOEXEC);
    assert_int_equal(ftruncate(memfd, 4 * PAGE), 0);
    uint8_t *mem = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    assert_true(mem != MAP_FAILED);
    static uint8_t nofd_mem[PAGE];
    uint32_t rw = VFIO_USER_DMA_F_READ | VFIO_USER_DMA_F_WRITE;

    /* Window shared with an fd: the server writes through its own mapping. */
    assert_int_equal(vfio_user_client_dma_map(c, 0x100000, 2 * PAGE, rw, memfd, PAGE, mem + PAGE), 0);
    /* Window without an fd: the server must use DMA_READ/DMA_WRITE messages. */
    assert_int_equal(vfio_user_client_dma_map(c, 0x200000, PAGE, rw, -1, 0, nofd_mem), 0);
    assert_int_equal(h->dev.maps, 2);

    struct dma_job j = {.iova = 0x100000 + 32, .len = 5, .write = true};
    memcpy(j.data, "hello", 5);
    assert_int_equal(run_job(h, c, do_dma, &j), 0);
    assert_memory_equal(mem + PAGE + 32, "hello", 5);

    j = (struct dma_job){.iova = 0x200000 + 100, .len = 6, .write = true};
    memcpy(j.data, "world!", 6);
    uint64_t served = vfio_user_client_dma_requests_served(c);
    assert_int_equal(run_job(h, c, do_dma, &j), 0);
    assert_memory_equal(nofd_mem + 100, "world!", 6);
    assert_true(vfio_user_client_dma_requests_served(c) > served);

    memcpy(nofd_mem + 200, "by message", 10);
    j = (struct dma_job){.iova = 0x200000 + 200, .len = 10, .write = false};
    assert_int_equal(run_job(h, c, do_dma, &j), 0);
    assert_memory_equal(j.data, "by message", 10);

    /* Outside every window: the client refuses, the server reports it. */
    j = (struct dma_job){.iova = 0x300000, .len = 4, .write = false};
    assert_true(run_job(h, c, do_dma, &j) < 0);

    assert_int_equal(vfio_user_client_dma_unmap(c, 0x200000, PAGE), 0);
    assert_int_equal(h->dev.unmaps, 1);
    assert_int_equal(vfio_user_client_dma_unmap_all(c), 0);
    assert_int_equal(h->dev.unmaps, 2);
    vfio_user_client_close(c);
    munmap(mem, 4 * PAGE);
    close(memfd);
}

static int trigger_vector2(struct vfio_user_server *s, void *arg)
{
    (void)arg;
    return vfio_user_server_irq_trigger(s, VFIO_PCI_MSIX_IRQ_INDEX, 2);
}

static void test_irqs(void **state)
{
    struct harness *h = *state;
    struct vfio_user_client *c = connect_client(h);
    int efds[4];
    for (int i = 0; i < 4; i++)
        efds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_int_equal(vfio_user_client_set_irqs(c, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 4, efds,
                                               NULL),
                     0);
    assert_int_equal(run_job(h, c, trigger_vector2, NULL), 0);
    uint64_t v = 0;
    assert_int_equal(read(efds[2], &v, 8), 8);
    assert_int_equal(v, 1);
    assert_int_equal(read(efds[1], &v, 8), -1);
    /* Disable all: the trigger has no eventfd any more. */
    assert_int_equal(vfio_user_client_set_irqs(c, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL,
                                               NULL),
                     0);
    assert_int_not_equal(run_job(h, c, trigger_vector2, NULL), 0);
    for (int i = 0; i < 4; i++)
        close(efds[i]);
    vfio_user_client_close(c);
}

static int noop(struct vfio_user_server *s, void *arg)
{
    (void)s;
    (void)arg;
    return 0;
}

static void test_reconnect(void **state)
{
    struct harness *h = *state;
    struct vfio_user_client *c = connect_client(h);
    struct vfio_user_device_info di;
    assert_int_equal(vfio_user_client_device_info(c, &di), 0);
    int before = h->dev.disconnects;
    vfio_user_client_close(c);
    /* The server notices the disconnect on a later poll. */
    while (h->dev.disconnects == before)
        run_job(h, NULL, noop, NULL);
    c = connect_client(h);
    assert_int_equal(vfio_user_client_device_info(c, &di), 0);
    vfio_user_client_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_info_and_regions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irqs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
