/* SPDX-License-Identifier: MIT */
/*
 * vfio-user client against a scripted fake server (a thread on a temporary
 * unix socket speaking raw messages), so the client is tested on its own:
 * negotiation, region info and mmap, malformed capability chains, chunking,
 * timeouts, DMA requests served while a call waits, IRQ fd batching, DMA map.
 *
 * The fake server never calls cmocka asserts (they would longjmp across
 * threads): it counts failures, which the test checks after joining it.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "vfio-user/msg.h"
#include "vnvme/vfio_user_client.h"

#define PAGE 4096u

struct fake;
typedef void (*fake_script)(struct fake *f);

struct fake {
    char dir[64];
    char path[128];
    int lsock;
    int sock;
    pthread_t thread;
    fake_script script;
    const char *caps_json; /* VERSION reply data; NULL for no data */
    uint16_t reply_major;
    uint16_t reply_minor;
    struct vfio_user_rx rx;
    int failures;
    char first_failure[256];
    /* Scenario inputs and observations. */
    int memfd;
    uint64_t u[16];
    int n_seen;
};

#define FCHECK(f, cond)                                                                                                \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            if ((f)->failures++ == 0)                                                                                  \
                snprintf((f)->first_failure, sizeof((f)->first_failure), "line %d: %s", __LINE__, #cond);          \
        }                                                                                                              \
    } while (0)

static int count_open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Next message into f->rx.msg; false on timeout or EOF. */
static bool fake_recv(struct fake *f)
{
    vfio_user_rx_release(&f->rx);
    return vfio_user_rx_wait(&f->rx, f->sock, 5000) == 1;
}

static bool fake_expect(struct fake *f, uint16_t cmd)
{
    bool ok = fake_recv(f);
    FCHECK(f, ok);
    if (!ok)
        return false;
    FCHECK(f, f->rx.msg.hdr.cmd == cmd);
    FCHECK(f, (f->rx.msg.hdr.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_COMMAND);
    return f->rx.msg.hdr.cmd == cmd;
}

static void fake_send(struct fake *f, const struct vfio_user_header *h, const void *p, size_t len, const int *fds,
                      size_t nfds)
{
    struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
    FCHECK(f, vfio_user_send_all(f->sock, h, &iov, len ? 1 : 0, fds, nfds, 5000) == 0);
}

static void fake_reply_fds(struct fake *f, const void *p, size_t len, const int *fds, size_t nfds)
{
    struct vfio_user_header h;
    vfio_user_reply_header(&h, &f->rx.msg.hdr, (uint32_t)len, 0);
    fake_send(f, &h, p, len, fds, nfds);
}

static void fake_reply(struct fake *f, const void *p, size_t len)
{
    fake_reply_fds(f, p, len, NULL, 0);
}

static void fake_error(struct fake *f, int err)
{
    struct vfio_user_header h;
    vfio_user_reply_header(&h, &f->rx.msg.hdr, 0, err);
    fake_send(f, &h, NULL, 0, NULL, 0);
}

/* Send a command of our own (DMA_READ/DMA_WRITE) and wait for its reply. */
static bool fake_request(struct fake *f, uint16_t id, uint16_t cmd, const void *p, size_t len)
{
    struct vfio_user_header h = {.msg_id = id, .cmd = cmd, .msg_size = (uint32_t)(16 + len)};
    fake_send(f, &h, p, len, NULL, 0);
    bool ok = fake_recv(f);
    FCHECK(f, ok);
    if (!ok)
        return false;
    FCHECK(f, (f->rx.msg.hdr.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_REPLY);
    FCHECK(f, f->rx.msg.hdr.msg_id == id && f->rx.msg.hdr.cmd == cmd);
    return ok;
}

static void fake_wait_eof(struct fake *f)
{
    FCHECK(f, !fake_recv(f));
}

/* Check the client's proposal, answer with the configured version and caps. */
static bool fake_version(struct fake *f)
{
    if (!fake_expect(f, VFIO_USER_VERSION))
        return false;
    const struct vfio_user_msg *m = &f->rx.msg;
    struct vfio_user_version v;
    FCHECK(f, m->len > sizeof(v));
    memcpy(&v, m->payload, sizeof(v));
    FCHECK(f, v.major == 0 && v.minor == 1);
    struct vfio_user_caps caps;
    FCHECK(f, vfio_user_caps_parse((const char *)m->payload + 4, m->len - 4, &caps) == 0);
    FCHECK(f, m->payload[m->len - 1] == '\0');
    FCHECK(f, caps.max_msg_fds == VFIO_USER_MSG_MAX_FDS);
    FCHECK(f, caps.max_data_xfer_size == (1u << 20));
    FCHECK(f, caps.pgsizes == 4096);
    uint8_t buf[512];
    struct vfio_user_version rv = {.major = f->reply_major, .minor = f->reply_minor};
    memcpy(buf, &rv, sizeof(rv));
    size_t len = sizeof(rv);
    if (f->caps_json) {
        size_t j = strlen(f->caps_json) + 1;
        memcpy(buf + len, f->caps_json, j);
        len += j;
    }
    fake_reply(f, buf, len);
    return true;
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    f->sock = accept4(f->lsock, NULL, NULL, SOCK_CLOEXEC);
    FCHECK(f, f->sock >= 0);
    if (f->sock >= 0) {
        vfio_user_rx_init(&f->rx, (2u << 20), VFIO_USER_MSG_MAX_FDS);
        f->script(f);
        vfio_user_rx_fini(&f->rx);
        close(f->sock);
    }
    return NULL;
}

#define DEFAULT_CAPS "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":65536}}"

static void fake_init(struct fake *f, fake_script script, const char *caps_json)
{
    memset(f, 0, sizeof(*f));
    f->script = script;
    f->caps_json = caps_json;
    f->reply_minor = 1;
    f->memfd = -1;
    strcpy(f->dir, "/tmp/vu-client-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/sock", f->dir);
}

static void fake_start(struct fake *f)
{
    f->lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->lsock >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, f->path);
    assert_int_equal(bind(f->lsock, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->lsock, 1), 0);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_finish(struct fake *f)
{
    pthread_join(f->thread, NULL);
    close(f->lsock);
    unlink(f->path);
    rmdir(f->dir);
    if (f->failures)
        print_error("fake server: %d failure(s), first at %s\n", f->failures, f->first_failure);
    assert_int_equal(f->failures, 0);
}

static struct vfio_user_client *connect_ok(struct fake *f, int timeout_ms)
{
    int err = 1;
    struct vfio_user_client *c = vfio_user_client_connect(f->path, timeout_ms, &err);
    assert_non_null(c);
    assert_int_equal(err, 0);
    return c;
}

static int connect_err(struct fake *f)
{
    int err = 0;
    struct vfio_user_client *c = vfio_user_client_connect(f->path, 2000, &err);
    assert_null(c);
    return err;
}

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
    }
    memcpy(buf, &info, sizeof(info));
    memcpy(buf + 32, &sp, sizeof(sp));
    memcpy(buf + 48, &area, sizeof(area));
    return 64;
}

#define N_BAD_INFOS 7

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
        cmocka_unit_test(test_dma_served_during_call),
        cmocka_unit_test(test_dma_map_bookkeeping),
        cmocka_unit_test(test_dma_map_limits),
        cmocka_unit_test(test_set_irqs_batches_fds),
        cmocka_unit_test(test_raw_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
