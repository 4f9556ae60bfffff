/* SPDX-License-Identifier: MIT */
/*
 * vfio-user client against the fake server: DMA requests served while a call
 * waits, DMA map bookkeeping and limits, SET_IRQS fd batching, raw requests.
 */
#include "fake_server.h"

/* ---- DMA served while a call waits ---- */

#define IOVA_RW 0x100000ull
#define IOVA_RO (IOVA_RW + 2 * PAGE) /* adjacent to the RW window */

static void script_dma(struct fake *f)
{
    if (!fake_version(f))
        return;
    /* The two DMA_MAPs: RW with the memfd, RO without fd. */
    if (fake_expect(f, VFIO_USER_DMA_MAP)) {
        struct vfio_user_dma_map m;
        FCHECK(f, f->rx.msg.len == sizeof(m));
        memcpy(&m, f->rx.msg.payload, sizeof(m));
        FCHECK(f, m.argsz == 32 && m.addr == IOVA_RW && m.size == 2 * PAGE && m.offset == PAGE);
        FCHECK(f, m.flags == (VFIO_USER_DMA_F_READ | VFIO_USER_DMA_F_WRITE));
        FCHECK(f, f->rx.msg.nfds == 1);
        struct stat st;
        FCHECK(f, f->rx.msg.nfds == 1 && fstat(f->rx.msg.fds[0], &st) == 0 && st.st_size == 3 * PAGE);
        fake_reply(f, NULL, 0);
    }
    if (fake_expect(f, VFIO_USER_DMA_MAP)) {
        struct vfio_user_dma_map m;
        memcpy(&m, f->rx.msg.payload, sizeof(m));
        FCHECK(f, m.addr == IOVA_RO && m.size == PAGE && m.flags == VFIO_USER_DMA_F_READ && m.offset == 0);
        FCHECK(f, f->rx.msg.nfds == 0);
        fake_reply(f, NULL, 0);
    }
    if (!fake_expect(f, VFIO_USER_DEVICE_RESET))
        return;
    struct vfio_user_header reset_hdr = f->rx.msg.hdr;

    /* DMA_WRITE 8 bytes at IOVA_RW + 16. */
    uint8_t wr[16 + 8];
    struct vfio_user_dma_access a = {.addr = IOVA_RW + 16, .count = 8};
    memcpy(wr, &a, 16);
    memcpy(wr + 16, "ABCDEFGH", 8);
    if (fake_request(f, 900, VFIO_USER_DMA_WRITE, wr, sizeof(wr))) {
        FCHECK(f, !(f->rx.msg.hdr.flags & VFIO_USER_F_ERROR));
        FCHECK(f, f->rx.msg.len == 12); /* spec: address 8 + count 4 */
        uint64_t addr;
        uint32_t count;
        memcpy(&addr, f->rx.msg.payload, 8);
        memcpy(&count, f->rx.msg.payload + 8, 4);
        FCHECK(f, addr == IOVA_RW + 16 && count == 8);
    }
    /* DMA_READ across the RW/RO boundary. */
    a = (struct vfio_user_dma_access){.addr = IOVA_RO - 4, .count = 8};
    if (fake_request(f, 901, VFIO_USER_DMA_READ, &a, sizeof(a))) {
        FCHECK(f, f->rx.msg.len == 16 + 8);
        FCHECK(f, f->rx.msg.len == 24 && memcmp(f->rx.msg.payload + 16, "wxyz1234", 8) == 0);
    }
    /* Read back what was written. */
    a = (struct vfio_user_dma_access){.addr = IOVA_RW + 16, .count = 8};
    if (fake_request(f, 902, VFIO_USER_DMA_READ, &a, sizeof(a)))
        FCHECK(f, f->rx.msg.len == 24 && memcmp(f->rx.msg.payload + 16, "ABCDEFGH", 8) == 0);

    struct {
        uint16_t cmd;
        struct vfio_user_dma_access a;
        size_t data;  /* bytes of data appended */
        size_t trunc; /* bytes cut from the 16-byte struct */
        int err;
    } bad[] = {
        {VFIO_USER_DMA_READ, {IOVA_RO + PAGE - 4, 8}, 0, 0, EFAULT},   /* past the last window */
        {VFIO_USER_DMA_READ, {0x10, 4}, 0, 0, EFAULT},                 /* never mapped */
        {VFIO_USER_DMA_READ, {UINT64_MAX - 3, 8}, 0, 0, EFAULT},       /* wraps */
        {VFIO_USER_DMA_WRITE, {IOVA_RO, 4}, 4, 0, EACCES},             /* read-only window */
        {VFIO_USER_DMA_WRITE, {IOVA_RW, 8}, 4, 0, EINVAL},             /* data shorter than count */
        {VFIO_USER_DMA_READ, {IOVA_RW, (2u << 20)}, 0, 0, EINVAL},     /* above max_data_xfer_size */
        {VFIO_USER_DMA_READ, {IOVA_RW, 4}, 0, 4, EINVAL},              /* truncated request */
        {VFIO_USER_DMA_READ, {IOVA_RW, 0}, 0, 0, EINVAL},              /* nothing to move */
        {VFIO_USER_REGION_READ, {IOVA_RW, 4}, 0, 0, EOPNOTSUPP},       /* not a server command */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t msg[16 + 8] = {0};
        memcpy(msg, &bad[i].a, 16);
        if (fake_request(f, (uint16_t)(910 + i), bad[i].cmd, msg, 16 + bad[i].data - bad[i].trunc)) {
            FCHECK(f, f->rx.msg.hdr.flags & VFIO_USER_F_ERROR);
            FCHECK(f, f->rx.msg.hdr.error_no == (uint32_t)bad[i].err);
            if (f->rx.msg.hdr.error_no != (uint32_t)bad[i].err)
                f->u[15] = i; /* which case, for the failure message */
        }
    }
    /* A stray reply, then the real one. */
    struct vfio_user_header stray = reset_hdr;
    stray.msg_id = (uint16_t)(stray.msg_id + 7);
    struct vfio_user_header h;
    vfio_user_reply_header(&h, &stray, 0, 0);
    fake_send(f, &h, NULL, 0, NULL, 0);
    vfio_user_reply_header(&h, &reset_hdr, 0, 0);
    fake_send(f, &h, NULL, 0, NULL, 0);

    /* Unprompted DMA_WRITE, served by vfio_user_client_poll(). */
    a = (struct vfio_user_dma_access){.addr = IOVA_RW + 100, .count = 3};
    memcpy(wr, &a, 16);
    memcpy(wr + 16, "xyz", 3);
    if (fake_request(f, 950, VFIO_USER_DMA_WRITE, wr, 16 + 3))
        FCHECK(f, !(f->rx.msg.hdr.flags & VFIO_USER_F_ERROR));
    /* Then the server leaves. */
}

static void test_dma_served_during_call(void **state)
{
    (void)state;
    int fds_before = count_open_fds();
    struct fake f;
    fake_init(&f, script_dma, DEFAULT_CAPS);
    fake_start(&f);
    int memfd = memfd_create("guest", MFD_CLOEXEC);
    assert_int_equal(ftruncate(memfd, 3 * PAGE), 0);
    uint8_t *mem = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    assert_true(mem != MAP_FAILED);
    /* Guest layout: RW window = mem[PAGE, 3*PAGE) at IOVA_RW; RO window = a separate buffer at IOVA_RO. */
    uint8_t *ro = calloc(1, PAGE);
    memcpy(mem + 3 * PAGE - 4, "wxyz", 4);
    memcpy(ro, "1234", 4);

    struct vfio_user_client *c = connect_ok(&f, 0);
    assert_int_equal(vfio_user_client_dma_map(c, IOVA_RW, 2 * PAGE, VFIO_USER_DMA_F_READ | VFIO_USER_DMA_F_WRITE,
                                              memfd, PAGE, mem + PAGE),
                     0);
    assert_int_equal(vfio_user_client_dma_map(c, IOVA_RO, PAGE, VFIO_USER_DMA_F_READ, -1, 0, ro), 0);
    assert_int_equal(vfio_user_client_device_reset(c), 0);
    assert_memory_equal(mem + PAGE + 16, "ABCDEFGH", 8);
    assert_int_equal(vfio_user_client_dma_requests_served(c), 3);
    /* Nothing of the rejected requests reached memory. */
    assert_int_equal(ro[0], '1');
    assert_int_equal(mem[PAGE], 0);

    struct pollfd pfd = {.fd = vfio_user_client_fd(c), .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    int served = 0;
    while (served == 0) {
        int rc = vfio_user_client_poll(c);
        assert_true(rc >= 0);
        served += rc;
        if (served == 0)
            assert_int_equal(poll(&pfd, 1, 5000), 1);
    }
    assert_int_equal(served, 1);
    assert_memory_equal(mem + PAGE + 100, "xyz", 3);
    /* The server is gone now. */
    int rc;
    while ((rc = vfio_user_client_poll(c)) == 0)
        assert_int_equal(poll(&pfd, 1, 5000), 1);
    assert_int_equal(rc, -ECONNRESET);
    assert_int_equal(vfio_user_client_device_reset(c), -ENOTCONN);

    vfio_user_client_close(c);
    fake_finish(&f);
    munmap(mem, 3 * PAGE);
    close(memfd);
    free(ro);
    assert_int_equal(count_open_fds(), fds_before);
}

/* ---- DMA map bookkeeping ---- */

static void script_map_unmap(struct fake *f)
{
    if (!fake_version(f))
        return;
    if (fake_expect(f, VFIO_USER_DMA_MAP))
        fake_reply(f, NULL, 0);
    /* The second map (overlapping) is never sent; next comes the failing map. */
    if (fake_expect(f, VFIO_USER_DMA_MAP))
        fake_error(f, ENOMEM);
    if (fake_expect(f, VFIO_USER_DMA_UNMAP)) {
        struct vfio_user_dma_unmap u;
        FCHECK(f, f->rx.msg.len == sizeof(u));
        memcpy(&u, f->rx.msg.payload, sizeof(u));
        FCHECK(f, u.argsz == 24 && u.flags == 0 && u.addr == 0x10000 && u.size == 0x2000);
        fake_reply(f, &u, sizeof(u));
    }
    if (fake_expect(f, VFIO_USER_DMA_MAP))
        fake_reply(f, NULL, 0);
    if (fake_expect(f, VFIO_USER_DMA_UNMAP)) {
        struct vfio_user_dma_unmap u;
        memcpy(&u, f->rx.msg.payload, sizeof(u));
        FCHECK(f, u.flags == VFIO_DMA_UNMAP_FLAG_ALL && u.addr == 0 && u.size == 0);
        fake_reply(f, &u, sizeof(u));
    }
    /* After unmap-all, the old window is gone from the client. */
    struct vfio_user_dma_access a = {.addr = 0x10000, .count = 4};
    if (fake_request(f, 77, VFIO_USER_DMA_READ, &a, sizeof(a)))
        FCHECK(f, (f->rx.msg.hdr.flags & VFIO_USER_F_ERROR) && f->rx.msg.hdr.error_no == EFAULT);
    fake_wait_eof(f);
}

static void test_dma_map_bookkeeping(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, script_map_unmap, "{\"capabilities\":{\"max_dma_maps\":2}}");
    fake_start(&f);
    static uint8_t mem[0x4000];
    struct vfio_user_client *c = connect_ok(&f, 0);
    uint32_t rw = VFIO_USER_DMA_F_READ | VFIO_USER_DMA_F_WRITE;
    assert_int_equal(vfio_user_client_dma_map(c, 0x10000, 0x2000, rw, -1, 0, mem), 0);
    assert_int_equal(vfio_user_client_dma_map(c, 0x11000, 0x2000, rw, -1, 0, mem), -EEXIST);
    assert_int_equal(vfio_user_client_dma_map(c, 0xf000, 0x1001, rw, -1, 0, mem), -EEXIST);
    assert_int_equal(vfio_user_client_dma_map(c, 0, 0, rw, -1, 0, mem), -EINVAL);
    assert_int_equal(vfio_user_client_dma_map(c, UINT64_MAX, 2, rw, -1, 0, mem), -EINVAL);
    assert_int_equal(vfio_user_client_dma_map(c, 0x20000, 0x1000, 1u << 5, -1, 0, mem), -EINVAL);
    assert_int_equal(vfio_user_client_dma_map(c, 0x20000, 0x1000, rw, -1, 0, mem), -ENOMEM);
    assert_int_equal(vfio_user_client_dma_unmap(c, 0x10000, 0x1000), -ENOENT); /* not exact */
    assert_int_equal(vfio_user_client_dma_unmap(c, 0x10000, 0x2000), 0);
    assert_int_equal(vfio_user_client_dma_unmap(c, 0x10000, 0x2000), -ENOENT);
    assert_int_equal(vfio_user_client_dma_map(c, 0x10000, 0x2000, rw, -1, 0, mem), 0);
    assert_int_equal(vfio_user_client_dma_unmap_all(c), 0);
    /* The fake's DMA_READ arrives while nothing waits: serve it. */
    struct pollfd pfd = {.fd = vfio_user_client_fd(c), .events = POLLIN};
    int served = 0;
    while (served == 0) {
        assert_int_equal(poll(&pfd, 1, 5000), 1);
        int rc = vfio_user_client_poll(c);
        assert_true(rc >= 0);
        served += rc;
    }
    assert_int_equal(vfio_user_client_dma_requests_served(c), 0); /* refused, not served */
    vfio_user_client_close(c);
    fake_finish(&f);
}

static void script_map_limit(struct fake *f)
{
    if (!fake_version(f))
        return;
    if (fake_expect(f, VFIO_USER_DMA_MAP))
        fake_reply(f, NULL, 0);
    fake_wait_eof(f);
}

static void test_dma_map_limits(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, script_map_limit, "{\"capabilities\":{\"max_dma_maps\":1,\"max_msg_fds\":0}}");
    fake_start(&f);
    static uint8_t mem[0x2000];
    struct vfio_user_client *c = connect_ok(&f, 0);
    int memfd = memfd_create("m", MFD_CLOEXEC);
    /* The server takes no fds at all. */
    assert_int_equal(vfio_user_client_dma_map(c, 0, 0x1000, VFIO_USER_DMA_F_READ, memfd, 0, mem), -EOPNOTSUPP);
    assert_int_equal(vfio_user_client_dma_map(c, 0, 0x1000, VFIO_USER_DMA_F_READ, -1, 0, mem), 0);
    assert_int_equal(vfio_user_client_dma_map(c, 0x1000, 0x1000, VFIO_USER_DMA_F_READ, -1, 0, mem), -ENOSPC);
    int efd = eventfd(0, EFD_CLOEXEC);
    assert_int_equal(vfio_user_client_set_irqs(c, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1, &efd,
                                               NULL),
                     -EOPNOTSUPP);
    close(efd);
    close(memfd);
    vfio_user_client_close(c);
    fake_finish(&f);
}

/* ---- SET_IRQS ---- */

static void script_irqs(struct fake *f)
{
    if (!fake_version(f))
        return;
    /* 5 eventfds from start 3 with max_msg_fds 2: (3,2) (5,2) (7,1). */
    const uint32_t starts[3] = {3, 5, 7}, counts[3] = {2, 2, 1};
    for (int i = 0; i < 3; i++) {
        if (!fake_expect(f, VFIO_USER_DEVICE_SET_IRQS))
            return;
        struct vfio_irq_set s;
        FCHECK(f, f->rx.msg.len == sizeof(s));
        memcpy(&s, f->rx.msg.payload, sizeof(s));
        FCHECK(f, s.argsz == 20 && s.index == VFIO_PCI_MSIX_IRQ_INDEX);
        FCHECK(f, s.flags == (VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER));
        FCHECK(f, s.start == starts[i] && s.count == counts[i]);
        FCHECK(f, f->rx.msg.nfds == counts[i]);
        /* The fds are the client's eventfds: signal one so the test can see it arrived. */
        if (f->rx.msg.nfds > 0) {
            uint64_t one = 1;
            FCHECK(f, write(f->rx.msg.fds[0], &one, 8) == 8);
        }
        fake_reply(f, NULL, 0);
    }
    if (fake_expect(f, VFIO_USER_DEVICE_SET_IRQS)) {
        struct vfio_irq_set s;
        FCHECK(f, f->rx.msg.len == sizeof(s) + 3);
        memcpy(&s, f->rx.msg.payload, sizeof(s));
        FCHECK(f, s.argsz == 23 && s.flags == (VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_MASK));
        FCHECK(f, s.start == 0 && s.count == 3 && f->rx.msg.len == 23);
        FCHECK(f, f->rx.msg.len == 23 && memcmp(f->rx.msg.payload + 20, "\1\0\1", 3) == 0);
        fake_reply(f, NULL, 0);
    }
    if (fake_expect(f, VFIO_USER_DEVICE_SET_IRQS)) {
        struct vfio_irq_set s;
        memcpy(&s, f->rx.msg.payload, sizeof(s));
        FCHECK(f, s.argsz == 20 && s.flags == (VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER));
        FCHECK(f, s.start == 0 && s.count == 0 && f->rx.msg.nfds == 0);
        fake_error(f, EINVAL);
    }
    fake_wait_eof(f);
}

static void test_set_irqs_batches_fds(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, script_irqs, "{\"capabilities\":{\"max_msg_fds\":2}}");
    fake_start(&f);
    struct vfio_user_client *c = connect_ok(&f, 0);
    int efds[5];
    for (int i = 0; i < 5; i++)
        efds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_int_equal(vfio_user_client_set_irqs(c, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 3, 5, efds,
                                               NULL),
                     0);
    uint64_t v;
    assert_int_equal(read(efds[0], &v, 8), 8);
    assert_int_equal(read(efds[2], &v, 8), 8);
    assert_int_equal(read(efds[4], &v, 8), 8);
    assert_int_equal(read(efds[1], &v, 8), -1); /* not the first of its batch: untouched */
    const uint8_t bools[3] = {1, 0, 1};
    assert_int_equal(vfio_user_client_set_irqs(c, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_MASK, 0, 3, NULL,
                                               bools),
                     0);
    assert_int_equal(vfio_user_client_set_irqs(c, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL,
                                               NULL),
                     -EINVAL);
    /* Refused locally: a -1 eventfd cannot travel, nor can start+count wrap, nor an unknown action. */
    int with_hole[2] = {efds[0], -1};
    assert_int_equal(vfio_user_client_set_irqs(c, 0, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 2, with_hole, NULL), -EBADF);
    assert_int_equal(vfio_user_client_set_irqs(c, 0, VFIO_IRQ_SET_ACTION_TRIGGER, UINT32_MAX, 2, efds, NULL),
                     -EINVAL);
    assert_int_equal(vfio_user_client_set_irqs(c, 0, 1u << 9, 0, 1, efds, NULL), -EINVAL);
    for (int i = 0; i < 5; i++)
        close(efds[i]);
    vfio_user_client_close(c);
    fake_finish(&f);
}

/* ---- raw request ---- */

static void script_raw(struct fake *f)
{
    if (!fake_version(f))
        return;
    if (fake_expect(f, VFIO_USER_DEVICE_GET_REGION_INFO)) {
        uint8_t rep[40] = {1, 2, 3};
        fake_reply_fds(f, rep, sizeof(rep), &f->memfd, 1);
    }
    if (fake_expect(f, VFIO_USER_DEVICE_GET_REGION_INFO)) {
        uint8_t rep[40] = {0};
        fake_reply_fds(f, rep, sizeof(rep), &f->memfd, 1);
    }
    fake_wait_eof(f);
}

static void test_raw_request(void **state)
{
    (void)state;
    int fds_before = count_open_fds();
    struct fake f;
    fake_init(&f, script_raw, DEFAULT_CAPS);
    f.memfd = memfd_create("raw", MFD_CLOEXEC);
    fake_start(&f);
    struct vfio_user_client *c = connect_ok(&f, 0);
    struct vfio_region_info req = {.argsz = 40};
    uint8_t rep[64];
    size_t len = 0, nfds = 1;
    int fd = -1;
    assert_int_equal(vfio_user_client_request(c, VFIO_USER_DEVICE_GET_REGION_INFO, 0, &req, sizeof(req), NULL, 0,
                                              rep, sizeof(rep), &len, &fd, &nfds),
                     0);
    assert_int_equal(len, 40);
    assert_int_equal(rep[2], 3);
    assert_int_equal(nfds, 1);
    assert_true(fd >= 0);
    close(fd);
    /* Reply larger than the buffer: refused, and the fd it carried is not leaked. */
    assert_int_equal(vfio_user_client_request(c, VFIO_USER_DEVICE_GET_REGION_INFO, 0, &req, sizeof(req), NULL, 0,
                                              rep, 8, &len, NULL, NULL),
                     -EMSGSIZE);
    vfio_user_client_close(c);
    fake_finish(&f);
    close(f.memfd);
    assert_int_equal(count_open_fds(), fds_before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dma_served_during_call),
        cmocka_unit_test(test_dma_map_bookkeeping),
        cmocka_unit_test(test_dma_map_limits),
        cmocka_unit_test(test_set_irqs_batches_fds),
        cmocka_unit_test(test_raw_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
