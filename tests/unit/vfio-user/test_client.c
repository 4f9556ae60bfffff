/* SPDX-License-Identifier: MIT */
/*
 * vfio-user client against the fake server: negotiation, device/IRQ info,
 * region info and sparse mmaps, malformed capability chains, chunking, timeouts.
 */
#include "fake_server.h"

/* ---- negotiation ---- */

static void script_version_then_eof(struct fake *f)
{
    if (fake_version(f))
        fake_wait_eof(f);
}

static void test_connect_negotiates_caps(void **state)
{
    (void)state;
    int fds_before = count_open_fds();
    struct fake f;
    fake_init(&f, script_version_then_eof,
              "{\"capabilities\":{\"max_msg_fds\":3,\"max_data_xfer_size\":4096,\"max_dma_maps\":7,"
              "\"pgsizes\":4096}}");
    f.reply_minor = 0; /* a lower minor is the server's right */
    fake_start(&f);
    struct vfio_user_client *c = connect_ok(&f, 0);
    const struct vfio_user_client_caps *caps = vfio_user_client_server_caps(c);
    assert_int_equal(caps->max_msg_fds, 3);
    assert_int_equal(caps->max_data_xfer_size, 4096);
    assert_int_equal(caps->max_dma_maps, 7);
    assert_int_equal(caps->pgsizes, 4096);
    assert_int_equal(vfio_user_client_version_minor(c), 0);
    assert_true(vfio_user_client_fd(c) >= 0);
    vfio_user_client_close(c);
    fake_finish(&f);
    assert_int_equal(count_open_fds(), fds_before);
}

static void test_connect_without_caps_uses_defaults(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, script_version_then_eof, NULL);
    fake_start(&f);
    struct vfio_user_client *c = connect_ok(&f, 0);
    assert_int_equal(vfio_user_client_server_caps(c)->max_msg_fds, VFIO_USER_DEFAULT_MAX_MSG_FDS);
    assert_int_equal(vfio_user_client_server_caps(c)->max_data_xfer_size, VFIO_USER_DEFAULT_MAX_DATA_XFER);
    vfio_user_client_close(c);
    fake_finish(&f);
}

static void test_connect_no_socket(void **state)
{
    (void)state;
    int err = 0;
    assert_null(vfio_user_client_connect("/tmp/vu-client-does-not-exist/sock", 0, &err));
    assert_int_equal(err, -ENOENT);
}

static void test_connect_dead_socket(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, NULL, NULL);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, f.path);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(s); /* the path stays, nobody listens */
    int err = 0;
    assert_null(vfio_user_client_connect(f.path, 0, &err));
    assert_int_equal(err, -ECONNREFUSED);
    unlink(f.path);
    rmdir(f.dir);
}

static void test_connect_rejects_higher_minor(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, script_version_then_eof, DEFAULT_CAPS);
    f.reply_minor = 2;
    fake_start(&f);
    assert_int_equal(connect_err(&f), -EPROTO);
    fake_finish(&f);
}

static void test_connect_rejects_other_major(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, script_version_then_eof, DEFAULT_CAPS);
    f.reply_major = 1;
    fake_start(&f);
    assert_int_equal(connect_err(&f), -EPROTO);
    fake_finish(&f);
}

static void test_connect_rejects_bad_json(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"capabilities\":{\"max_msg_fds\":", /* truncated */
        "{\"capabilities\":{\"max_msg_fds\":-1}}",
        "{\"capabilities\":{\"max_data_xfer_size\":\"big\"}}",
        "{\"capabilities\":{\"max_data_xfer_size\":0}}", /* nothing could ever be transferred */
        "[1,2]",
        /* Offers QEMU's client refuses: we must never accept what VMs cannot. */
        "{\"capabilities\":{\"max_msg_fds\":64}}",
        "{\"capabilities\":{\"max_data_xfer_size\":67108865}}",
        "{\"capabilities\":{\"max_dma_maps\":65536}}",
        "{\"capabilities\":{\"pgsizes\":512}}",
        /* Longer than our request: QEMU reads the reply into its request's buffer. */
        "{\"capabilities\":{\"max_msg_fds\":16},\"padding\":\""
        "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
        "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
        "\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fake f;
        fake_init(&f, script_version_then_eof, bad[i]);
        fake_start(&f);
        assert_int_equal(connect_err(&f), -EPROTO);
        fake_finish(&f);
    }
}

static void script_version_short(struct fake *f)
{
    if (!fake_expect(f, VFIO_USER_VERSION))
        return;
    uint16_t major = 0;
    fake_reply(f, &major, sizeof(major));
    fake_wait_eof(f);
}

static void test_connect_rejects_short_reply(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, script_version_short, NULL);
    fake_start(&f);
    assert_int_equal(connect_err(&f), -EPROTO);
    fake_finish(&f);
}

static void script_version_error(struct fake *f)
{
    if (!fake_expect(f, VFIO_USER_VERSION))
        return;
    fake_error(f, ENOTSUP);
    fake_wait_eof(f);
}

static void test_connect_error_reply(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, script_version_error, NULL);
    fake_start(&f);
    assert_int_equal(connect_err(&f), -ENOTSUP);
    fake_finish(&f);
}

/* A stray reply with an unknown msg_id is dropped, the real one accepted. */
static void script_version_after_stray(struct fake *f)
{
    if (!fake_expect(f, VFIO_USER_VERSION))
        return;
    struct vfio_user_header stray;
    struct vfio_user_header req = f->rx.msg.hdr;
    req.msg_id = (uint16_t)(req.msg_id + 100);
    vfio_user_reply_header(&stray, &req, 0, 0);
    fake_send(f, &stray, NULL, 0, NULL, 0);
    struct vfio_user_version rv = {.major = 0, .minor = 1};
    fake_reply(f, &rv, sizeof(rv));
    fake_wait_eof(f);
}

static void test_connect_drops_unknown_msg_id(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, script_version_after_stray, NULL);
    fake_start(&f);
    struct vfio_user_client *c = connect_ok(&f, 0);
    vfio_user_client_close(c);
    fake_finish(&f);
}

/* ---- device and irq info ---- */

static void script_infos(struct fake *f)
{
    if (!fake_version(f))
        return;
    if (fake_expect(f, VFIO_USER_DEVICE_GET_INFO)) {
        struct vfio_user_device_info req;
        FCHECK(f, f->rx.msg.len == sizeof(req));
        memcpy(&req, f->rx.msg.payload, sizeof(req));
        FCHECK(f, req.argsz == sizeof(req));
        struct vfio_user_device_info di = {.argsz = 16, .flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
                                           .num_regions = 9, .num_irqs = 5};
        fake_reply(f, &di, sizeof(di));
    }
    if (fake_expect(f, VFIO_USER_DEVICE_GET_IRQ_INFO)) {
        struct vfio_irq_info req;
        memcpy(&req, f->rx.msg.payload, sizeof(req));
        FCHECK(f, req.index == VFIO_PCI_MSIX_IRQ_INDEX && req.argsz == 16);
        struct vfio_irq_info ii = {.argsz = 16, .flags = VFIO_IRQ_INFO_EVENTFD, .index = req.index, .count = 64};
        fake_reply(f, &ii, sizeof(ii));
    }
    /* Wrong index echoed. */
    if (fake_expect(f, VFIO_USER_DEVICE_GET_IRQ_INFO)) {
        struct vfio_irq_info ii = {.argsz = 16, .index = 3, .count = 1};
        fake_reply(f, &ii, sizeof(ii));
    }
    /* Too short. */
    if (fake_expect(f, VFIO_USER_DEVICE_GET_INFO)) {
        uint32_t argsz = 16;
        fake_reply(f, &argsz, sizeof(argsz));
    }
    /* Error reply. */
    if (fake_expect(f, VFIO_USER_DEVICE_RESET))
        fake_error(f, EBUSY);
    /* Error flag without errno. */
    if (fake_expect(f, VFIO_USER_DEVICE_RESET)) {
        struct vfio_user_header h;
        vfio_user_reply_header(&h, &f->rx.msg.hdr, 0, 0);
        h.flags |= VFIO_USER_F_ERROR;
        fake_send(f, &h, NULL, 0, NULL, 0);
    }
    if (fake_expect(f, VFIO_USER_DEVICE_RESET))
        fake_reply(f, NULL, 0);
    fake_wait_eof(f);
}

static void test_device_and_irq_info(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, script_infos, DEFAULT_CAPS);
    fake_start(&f);
    struct vfio_user_client *c = connect_ok(&f, 0);
    struct vfio_user_device_info di;
    assert_int_equal(vfio_user_client_device_info(c, &di), 0);
    assert_int_equal(di.num_regions, 9);
    assert_int_equal(di.num_irqs, 5);
    assert_int_equal(di.flags, VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
    struct vfio_irq_info ii;
    assert_int_equal(vfio_user_client_irq_info(c, VFIO_PCI_MSIX_IRQ_INDEX, &ii), 0);
    assert_int_equal(ii.count, 64);
    assert_int_equal(ii.flags, VFIO_IRQ_INFO_EVENTFD);
    assert_int_equal(vfio_user_client_irq_info(c, VFIO_PCI_MSIX_IRQ_INDEX, &ii), -EPROTO);
    assert_int_equal(vfio_user_client_device_info(c, &di), -EPROTO);
    assert_int_equal(vfio_user_client_device_reset(c), -EBUSY);
    assert_int_equal(vfio_user_client_device_reset(c), -EIO);
    /* Protocol errors in a reply do not break the connection. */
    assert_int_equal(vfio_user_client_device_reset(c), 0);
    vfio_user_client_close(c);
    fake_finish(&f);
}

/* ---- regions ---- */

/* Region info with a sparse cap: [0, 4K) and [8K, 12K) of a 12K region, fd = the memfd. */
static size_t build_sparse_info(uint8_t *buf, uint32_t index, uint32_t argsz_hint)
{
    struct vfio_region_info info = {
        .argsz = 32 + 16 + 2 * 16,
        .flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP |
                 VFIO_REGION_INFO_FLAG_CAPS,
        .index = index,
        .cap_offset = 32,
        .size = 3 * PAGE,
        .offset = 0,
    };
    if (argsz_hint > info.argsz)
        info.argsz = argsz_hint;
    struct vfio_region_info_cap_sparse_mmap sp = {
        .header = {.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP, .version = 1, .next = 0}, .nr_areas = 2};
    struct vfio_region_sparse_mmap_area areas[2] = {{.offset = 0, .size = PAGE}, {.offset = 2 * PAGE, .size = PAGE}};
    memcpy(buf, &info, sizeof(info));
    memcpy(buf + 32, &sp, sizeof(sp));
    memcpy(buf + 48, areas, sizeof(areas));
    return 32 + 16 + sizeof(areas);
}

static void script_sparse_region(struct fake *f)
{
    if (!fake_version(f))
        return;
    uint8_t buf[256];
    /* First ask: claim more than the client offered so it retries with a larger argsz. */
    if (fake_expect(f, VFIO_USER_DEVICE_GET_REGION_INFO)) {
        struct vfio_region_info req;
        memcpy(&req, f->rx.msg.payload, sizeof(req));
        f->u[0] = req.argsz;
        FCHECK(f, req.index == VFIO_PCI_BAR0_REGION_INDEX);
        build_sparse_info(buf, VFIO_PCI_BAR0_REGION_INDEX, req.argsz + 100);
        fake_reply(f, buf, 32);
    }
    if (fake_expect(f, VFIO_USER_DEVICE_GET_REGION_INFO)) {
        struct vfio_region_info req;
        memcpy(&req, f->rx.msg.payload, sizeof(req));
        f->u[1] = req.argsz;
        size_t len = build_sparse_info(buf, VFIO_PCI_BAR0_REGION_INDEX, (uint32_t)f->u[0] + 100);
        fake_reply_fds(f, buf, len, &f->memfd, 1);
    }
    /* The hole at [4K, 8K) goes by message. */
    if (fake_expect(f, VFIO_USER_REGION_READ)) {
        struct vfio_user_region_access req;
        memcpy(&req, f->rx.msg.payload, sizeof(req));
        FCHECK(f, req.offset == PAGE + 8 && req.count == 4 && req.region == VFIO_PCI_BAR0_REGION_INDEX);
        uint8_t rep[20];
        memcpy(rep, &req, 16);
        uint32_t v = 0xfeedf00d;
        memcpy(rep + 16, &v, 4);
        fake_reply(f, rep, sizeof(rep));
    }
    fake_wait_eof(f);
}

static void test_region_sparse_mmap(void **state)
{
    (void)state;
    int fds_before = count_open_fds();
    struct fake f;
    fake_init(&f, script_sparse_region, DEFAULT_CAPS);
    f.memfd = memfd_create("bar0", MFD_CLOEXEC);
    assert_true(f.memfd >= 0);
    assert_int_equal(ftruncate(f.memfd, 3 * PAGE), 0);
    uint8_t *dev = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, f.memfd, 0);
    assert_true(dev != MAP_FAILED);
    uint32_t v0 = 0x11223344;
    memcpy(dev + 4, &v0, 4);
    fake_start(&f);

    struct vfio_user_client *c = connect_ok(&f, 0);
    int err = 1;
    const struct vfio_user_client_region *r = vfio_user_client_region(c, VFIO_PCI_BAR0_REGION_INDEX, &err);
    assert_non_null(r);
    assert_int_equal(err, 0);
    assert_true(f.u[1] > f.u[0]); /* retried with the larger argsz the server asked for */
    assert_int_equal(r->size, 3 * PAGE);
    assert_true(r->fd >= 0);
    assert_int_equal(r->nr_mmaps, 2);
    assert_int_equal(r->mmaps[1].offset, 2 * PAGE);
    assert_non_null(r->mmaps[0].addr);
    assert_non_null(r->mmaps[1].addr);
    /* Cached: a second call sends nothing (the script would fail on an extra message). */
    assert_ptr_equal(vfio_user_client_region(c, VFIO_PCI_BAR0_REGION_INDEX, &err), r);

    uint8_t *p = vfio_user_client_region_ptr(c, VFIO_PCI_BAR0_REGION_INDEX, 4, 4);
    assert_non_null(p);
    uint32_t got;
    memcpy(&got, p, 4);
    assert_int_equal(got, v0);
    assert_null(vfio_user_client_region_ptr(c, VFIO_PCI_BAR0_REGION_INDEX, PAGE, 4));     /* hole */
    assert_null(vfio_user_client_region_ptr(c, VFIO_PCI_BAR0_REGION_INDEX, PAGE - 2, 4)); /* straddles */
    assert_null(vfio_user_client_region_ptr(c, VFIO_PCI_BAR0_REGION_INDEX, 3 * PAGE - 4, 8));
    assert_non_null(vfio_user_client_region_ptr(c, VFIO_PCI_BAR0_REGION_INDEX, 2 * PAGE, PAGE));
    assert_null(vfio_user_client_region_ptr(c, VFIO_PCI_BAR1_REGION_INDEX, 0, 4)); /* never queried */

    /* Through the mmap: the device memory changes without a message. */
    uint32_t w = 0xa5a5a5a5;
    assert_int_equal(vfio_user_client_region_access(c, VFIO_PCI_BAR0_REGION_INDEX, 2 * PAGE + 8, &w, 4, true), 0);
    memcpy(&got, dev + 2 * PAGE + 8, 4);
    assert_int_equal(got, w);
    uint64_t q = 0;
    memcpy(dev + 16, &(uint64_t){0x0102030405060708ull}, 8);
    assert_int_equal(vfio_user_client_region_access(c, VFIO_PCI_BAR0_REGION_INDEX, 16, &q, 8, false), 0);
    assert_int_equal(q, 0x0102030405060708ull);
    /* In the hole: by message. */
    assert_int_equal(vfio_user_client_region_access(c, VFIO_PCI_BAR0_REGION_INDEX, PAGE + 8, &got, 4, false), 0);
    assert_int_equal(got, 0xfeedf00d);

    vfio_user_client_close(c);
    fake_finish(&f);
    munmap(dev, 3 * PAGE);
    close(f.memfd);
    assert_int_equal(count_open_fds(), fds_before);
}

/* Region info replies with broken capability chains, one per region index. */
static size_t build_bad_info(uint8_t *buf, uint32_t index)
{
    struct vfio_region_info info = {
        .argsz = 32 + 16 + 16,
        .flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS,
        .index = index,
        .cap_offset = 32,
        .size = PAGE,
    };
    struct vfio_region_info_cap_sparse_mmap sp = {
        .header = {.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP, .version = 1}, .nr_areas = 1};
    struct vfio_region_sparse_mmap_area area = {.offset = 0, .size = PAGE};
    switch (index) {
    case 0: /* cap beyond the reply */
        info.cap_offset = 1000;
        break;
    case 1: /* chain pointing to itself */
        sp.header.id = 99;
        sp.header.next = 32;
        break;
    case 2: /* more areas than bytes */
        sp.nr_areas = 1000;
        break;
    case 3: /* cap inside the info struct */
        info.cap_offset = 8;
        break;
    case 4: /* area beyond the region */
        area.offset = PAGE;
        break;
    case 5: /* area size wrapping */
        area.offset = 8;
        area.size = UINT64_MAX;
        break;
    case 6: /* header straddling the end */
        info.cap_offset = 32 + 16 + 16 - 4;
        break;
    case 7: /* short reply flagging a chain at offset 0: what QEMU's client refuses */
        info.cap_offset = 0;
        memcpy(buf, &info, sizeof(info));
        return 32;
    }
    memcpy(buf, &info, sizeof(info));
    memcpy(buf + 32, &sp, sizeof(sp));
    memcpy(buf + 48, &area, sizeof(area));
    return 64;
}

#define N_BAD_INFOS 8

static void script_bad_caps(struct fake *f)
{
    if (!fake_version(f))
        return;
    for (int i = 0; i < N_BAD_INFOS; i++) {
        if (!fake_expect(f, VFIO_USER_DEVICE_GET_REGION_INFO))
            return;
        struct vfio_region_info req;
        memcpy(&req, f->rx.msg.payload, sizeof(req));
        uint8_t buf[64];
        size_t len = build_bad_info(buf, req.index);
        fake_reply_fds(f, buf, len, &f->memfd, 1);
    }
    fake_wait_eof(f);
}

static void test_region_malformed_caps(void **state)
{
    (void)state;
    int fds_before = count_open_fds();
    struct fake f;
    fake_init(&f, script_bad_caps, DEFAULT_CAPS);
    f.memfd = memfd_create("bar", MFD_CLOEXEC);
    assert_int_equal(ftruncate(f.memfd, PAGE), 0);
    fake_start(&f);
    struct vfio_user_client *c = connect_ok(&f, 0);
    for (uint32_t i = 0; i < N_BAD_INFOS; i++) {
        int err = 0;
        assert_null(vfio_user_client_region(c, i, &err));
        assert_int_equal(err, -EPROTO);
        assert_null(vfio_user_client_region_ptr(c, i, 0, 4));
    }
    vfio_user_client_close(c);
    fake_finish(&f);
    close(f.memfd);
    assert_int_equal(count_open_fds(), fds_before);
}

/* ---- region read/write chunking ---- */

static uint8_t pattern_at(uint64_t off)
{
    return (uint8_t)(off * 7 + 3);
}

static void script_chunks(struct fake *f)
{
    if (!fake_version(f))
        return;
    /* 150 bytes at 1000 in chunks of 64: 64 + 64 + 22. */
    const uint32_t counts[3] = {64, 64, 22};
    for (int i = 0; i < 3; i++) {
        if (!fake_expect(f, VFIO_USER_REGION_READ))
            return;
        struct vfio_user_region_access req;
        FCHECK(f, f->rx.msg.len == sizeof(req));
        memcpy(&req, f->rx.msg.payload, sizeof(req));
        FCHECK(f, req.offset == 1000 + 64u * i && req.count == counts[i] && req.region == 2);
        uint8_t rep[16 + 64];
        memcpy(rep, &req, 16);
        for (uint32_t k = 0; k < req.count && k < 64; k++)
            rep[16 + k] = pattern_at(req.offset + k);
        fake_reply(f, rep, 16 + (req.count < 64 ? req.count : 64));
    }
    for (int i = 0; i < 3; i++) {
        if (!fake_expect(f, VFIO_USER_REGION_WRITE))
            return;
        struct vfio_user_region_access req;
        memcpy(&req, f->rx.msg.payload, sizeof(req));
        FCHECK(f, req.offset == 2000 + 64u * i && req.count == counts[i] && req.region == 2);
        FCHECK(f, f->rx.msg.len == 16 + req.count);
        for (uint32_t k = 0; k < req.count && 16 + k < f->rx.msg.len; k++)
            FCHECK(f, f->rx.msg.payload[16 + k] == pattern_at(req.offset + k));
        fake_reply(f, &req, sizeof(req));
    }
    /* Posted write: No_reply set, nothing answered. */
    if (fake_expect(f, VFIO_USER_REGION_WRITE)) {
        FCHECK(f, f->rx.msg.hdr.flags & VFIO_USER_F_NO_REPLY);
        FCHECK(f, f->rx.msg.len == 16 + 4);
    }
    /* Read reply with a short count. */
    if (fake_expect(f, VFIO_USER_REGION_READ)) {
        struct vfio_user_region_access req;
        memcpy(&req, f->rx.msg.payload, sizeof(req));
        req.count = 2;
        uint8_t rep[18] = {0};
        memcpy(rep, &req, 16);
        fake_reply(f, rep, sizeof(rep));
    }
    /* Read reply with the right count but missing data. */
    if (fake_expect(f, VFIO_USER_REGION_READ)) {
        struct vfio_user_region_access req;
        memcpy(&req, f->rx.msg.payload, sizeof(req));
        fake_reply(f, &req, sizeof(req));
    }
    /* Write reply echoing another offset. */
    if (fake_expect(f, VFIO_USER_REGION_WRITE)) {
        struct vfio_user_region_access req;
        memcpy(&req, f->rx.msg.payload, sizeof(req));
        req.offset += 4;
        fake_reply(f, &req, sizeof(req));
    }
    if (fake_expect(f, VFIO_USER_REGION_WRITE))
        fake_error(f, EACCES);
    fake_wait_eof(f);
}

static void test_region_read_write_chunking(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, script_chunks, "{\"capabilities\":{\"max_data_xfer_size\":64}}");
    fake_start(&f);
    struct vfio_user_client *c = connect_ok(&f, 0);
    uint8_t buf[150];
    assert_int_equal(vfio_user_client_region_read(c, 2, 1000, buf, sizeof(buf)), 0);
    for (size_t k = 0; k < sizeof(buf); k++)
        assert_int_equal(buf[k], pattern_at(1000 + k));
    for (size_t k = 0; k < sizeof(buf); k++)
        buf[k] = pattern_at(2000 + k);
    assert_int_equal(vfio_user_client_region_write(c, 2, 2000, buf, sizeof(buf)), 0);
    uint32_t v = 5;
    assert_int_equal(vfio_user_client_region_write_posted(c, 2, 0, &v, 4), 0);
    assert_int_equal(vfio_user_client_region_read(c, 2, 0, &v, 4), -EPROTO);
    assert_int_equal(vfio_user_client_region_read(c, 2, 0, &v, 4), -EPROTO);
    assert_int_equal(vfio_user_client_region_write(c, 2, 0, &v, 4), -EPROTO);
    assert_int_equal(vfio_user_client_region_write(c, 2, 0, &v, 4), -EACCES);
    /* A read that would wrap the offset is refused locally. */
    assert_int_equal(vfio_user_client_region_read(c, 2, UINT64_MAX - 1, buf, 4), -EINVAL);
    vfio_user_client_close(c);
    fake_finish(&f);
}

/* ---- timeout ---- */

static void script_silent(struct fake *f)
{
    if (!fake_version(f))
        return;
    FCHECK(f, fake_expect(f, VFIO_USER_DEVICE_GET_INFO));
    fake_wait_eof(f); /* never answers */
}

static void test_request_timeout(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f, script_silent, DEFAULT_CAPS);
    fake_start(&f);
    struct vfio_user_client *c = connect_ok(&f, 200);
    struct vfio_user_device_info di;
    assert_int_equal(vfio_user_client_device_info(c, &di), -ETIMEDOUT);
    /* The connection is then unusable and says so at once. */
    assert_int_equal(vfio_user_client_device_info(c, &di), -ENOTCONN);
    assert_int_equal(vfio_user_client_poll(c), -ENOTCONN);
    vfio_user_client_close(c);
    fake_finish(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_negotiates_caps),
        cmocka_unit_test(test_connect_without_caps_uses_defaults),
        cmocka_unit_test(test_connect_no_socket),
        cmocka_unit_test(test_connect_dead_socket),
        cmocka_unit_test(test_connect_rejects_higher_minor),
        cmocka_unit_test(test_connect_rejects_other_major),
        cmocka_unit_test(test_connect_rejects_bad_json),
        cmocka_unit_test(test_connect_rejects_short_reply),
        cmocka_unit_test(test_connect_error_reply),
        cmocka_unit_test(test_connect_drops_unknown_msg_id),
        cmocka_unit_test(test_device_and_irq_info),
        cmocka_unit_test(test_region_sparse_mmap),
        cmocka_unit_test(test_region_malformed_caps),
        cmocka_unit_test(test_region_read_write_chunking),
        cmocka_unit_test(test_request_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
