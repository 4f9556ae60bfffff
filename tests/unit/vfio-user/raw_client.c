/* SPDX-License-Identifier: MIT */
#include "raw_client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "vfio-user/msg.h"
#include "vfio-user/pci_internal.h"
#include "vfio-user/server_internal.h"

int count_open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

struct vfio_user_server *make_server(const struct vfio_user_server_ops *ops, void *ctx, uint32_t max_xfer)
{
    struct vfio_user_server_config cfg = {
        .socket_path = NULL,
        .flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
        .num_regions = VFIO_USER_PCI_NUM_REGIONS,
        .num_irqs = VFIO_USER_PCI_NUM_IRQS,
        .max_data_xfer_size = max_xfer,
        .ops = ops,
        .dev_ctx = ctx,
    };
    int err = 0;
    struct vfio_user_server *s = vfio_user_server_create(&cfg, &err);
    assert_non_null(s);
    return s;
}

int attach_client(struct vfio_user_server *s)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(vfio_user_server_attach_fd(s, sv[0]), 0);
    return sv[1];
}

static uint16_t next_id = 100;

uint16_t send_cmd_flags(int cli, uint16_t cmd, uint32_t flags, const void *payload, size_t len, const int *fds,
                        size_t nfds)
{
    struct vfio_user_header h = {
        .msg_id = next_id++, .cmd = cmd, .msg_size = (uint32_t)(sizeof(h) + len), .flags = flags};
    struct iovec iov = {(void *)payload, len};
    assert_int_equal(vfio_user_send_all(cli, &h, &iov, len ? 1 : 0, fds, nfds, REPLY_TIMEOUT_MS), 0);
    return h.msg_id;
}

uint16_t send_cmd(int cli, uint16_t cmd, const void *payload, size_t len, const int *fds, size_t nfds)
{
    return send_cmd_flags(cli, cmd, VFIO_USER_F_TYPE_COMMAND, payload, len, fds, nfds);
}

int recv_msg(int cli, struct reply *r)
{
    struct vfio_user_rx rx;
    vfio_user_rx_init(&rx, 1u << 21, 8);
    int rc = vfio_user_rx_wait(&rx, cli, REPLY_TIMEOUT_MS);
    if (rc == 1) {
        r->hdr = rx.msg.hdr;
        r->len = rx.msg.len < sizeof(r->data) ? rx.msg.len : sizeof(r->data);
        if (r->len)
            memcpy(r->data, rx.msg.payload, r->len);
        r->nfds = rx.msg.nfds;
        for (size_t i = 0; i < rx.msg.nfds; i++) {
            r->fds[i] = rx.msg.fds[i];
            rx.msg.fds[i] = -1;
        }
    }
    vfio_user_rx_fini(&rx);
    return rc;
}

void close_reply_fds(struct reply *r)
{
    for (size_t i = 0; i < r->nfds; i++)
        close(r->fds[i]);
    r->nfds = 0;
}

int call(struct vfio_user_server *s, int cli, uint16_t cmd, const void *payload, size_t len, const int *fds,
         size_t nfds, struct reply *r)
{
    struct reply tmp;
    if (!r)
        r = &tmp;
    uint16_t id = send_cmd(cli, cmd, payload, len, fds, nfds);
    assert_true(vfio_user_server_poll(s) >= 1);
    assert_int_equal(recv_msg(cli, r), 1);
    assert_int_equal(r->hdr.msg_id, id);
    assert_int_equal(r->hdr.cmd, cmd);
    assert_int_equal(r->hdr.flags & VFIO_USER_F_TYPE_MASK, VFIO_USER_F_TYPE_REPLY);
    if (r == &tmp)
        close_reply_fds(r);
    if (r->hdr.flags & VFIO_USER_F_ERROR) {
        assert_int_equal(r->hdr.msg_size, sizeof(struct vfio_user_header));
        return (int)r->hdr.error_no;
    }
    return 0;
}

void negotiate_caps(struct vfio_user_server *s, int cli, const char *json)
{
    uint8_t buf[512];
    struct vfio_user_version v = {.major = VFIO_USER_VERSION_MAJOR, .minor = VFIO_USER_VERSION_MINOR};
    memcpy(buf, &v, sizeof(v));
    size_t jl = json ? strlen(json) + 1 : 0;
    if (jl)
        memcpy(buf + sizeof(v), json, jl);
    assert_int_equal(call(s, cli, VFIO_USER_VERSION, buf, sizeof(v) + jl, NULL, 0, NULL), 0);
}

void negotiate(struct vfio_user_server *s, int cli)
{
    negotiate_caps(s, cli, "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":1048576}}");
}

bool peer_closed(int cli)
{
    char c;
    ssize_t n = recv(cli, &c, 1, MSG_DONTWAIT);
    return n == 0;
}

uint64_t fired(int fd)
{
    uint64_t v = 0;
    if (read(fd, &v, sizeof(v)) != sizeof(v))
        return 0;
    return v;
}

/* ---- PCI device behind the raw client ---- */

static void on_config_write(void *ctx, uint32_t off, uint32_t count)
{
    struct dev_log *l = ctx;
    l->config_writes++;
    l->last_write_off = off;
    l->last_write_count = count;
}

static void on_function_reset(void *ctx)
{
    ((struct dev_log *)ctx)->function_resets++;
}

static const struct vfio_user_pci_ops test_ops = {
    .config_write = on_config_write,
    .function_reset = on_function_reset,
};

ssize_t dev_bar_access(void *ctx, uint8_t *buf, size_t count, uint64_t offset, bool is_write)
{
    struct dev_log *l = ctx;
    l->bar_calls++;
    l->bar_last_off = offset;
    l->bar_last_count = count;
    l->bar_last_write = is_write;
    if (offset + count > sizeof(l->bar_mem))
        return -EINVAL;
    if (is_write)
        memcpy(l->bar_mem + offset, buf, count);
    else
        memcpy(buf, l->bar_mem + offset, count);
    return (ssize_t)count;
}

struct vfio_user_pci_info pci_harness_default_info(struct pci_harness *h)
{
    struct vfio_user_pci_info info = {
        .vendor_id = 0x1b36,
        .device_id = 0x0010,
        .subsys_vendor_id = 0x1af4,
        .subsys_id = 0x1100,
        .revision = 2,
        .class_code = 0x010802,
        .intx_pin = 1,
        .msi_vectors = 4,
        .msix_vectors = 8,
        .msix_table_bar = 0,
        .msix_table_offset = 0x2000,
        .msix_pba_bar = 0,
        .msix_pba_offset = 0x3000,
        .ops = &test_ops,
        .dev_ctx = &h->log,
    };
    return info;
}

static void register_eventfds(struct pci_harness *h, uint32_t index, int *fds, uint32_t n)
{
    struct vfio_irq_set set = {
        .argsz = sizeof(set),
        .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
        .index = index,
        .start = 0,
        .count = n,
    };
    for (uint32_t i = 0; i < n; i++) {
        fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        assert_true(fds[i] >= 0);
    }
    assert_int_equal(call(h->s, h->client, VFIO_USER_DEVICE_SET_IRQS, &set, sizeof(set), fds, n, NULL), 0);
}

void pci_set_irqs(struct pci_harness *h, uint32_t index, uint32_t action, uint32_t start, uint32_t count,
                  const int *fds)
{
    struct vfio_irq_set set = {
        .argsz = sizeof(set),
        .flags = (fds ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE) | action,
        .index = index,
        .start = start,
        .count = count,
    };
    /* A run of -1 goes as DATA_EVENTFD with no fds attached, as QEMU sends it. */
    size_t nfds = fds && fds[0] >= 0 ? count : 0;
    assert_int_equal(call(h->s, h->client, VFIO_USER_DEVICE_SET_IRQS, &set, sizeof(set), fds, nfds, NULL), 0);
}

/* What a device on this model does with the server's irq_changed op (the NVMe transport does the same). */
static void harness_irq_changed(void *ctx, uint32_t index)
{
    struct pci_harness *h = ctx;
    (void)index;
    vfio_user_pci_irqs_changed(h->p);
}

static const struct vfio_user_server_ops harness_server_ops = {.irq_changed = harness_irq_changed};

void pci_harness_start(struct pci_harness *h, const struct vfio_user_pci_info *info)
{
    int err = 0;

    h->s = make_server(&harness_server_ops, h, 0);
    h->p = vfio_user_pci_create(h->s, info, &err);
    assert_non_null(h->p);
    h->client = attach_client(h->s);
    negotiate_caps(h->s, h->client, NULL);
    h->intx_fd = -1;
    for (size_t i = 0; i < 32; i++)
        h->msi_fd[i] = -1;
    for (size_t i = 0; i < 64; i++)
        h->msix_fd[i] = -1;
    if (info->intx_pin)
        register_eventfds(h, VFIO_PCI_INTX_IRQ_INDEX, &h->intx_fd, 1);
    if (info->msi_vectors)
        register_eventfds(h, VFIO_PCI_MSI_IRQ_INDEX, h->msi_fd, info->msi_vectors);
    /* The first 64 vectors get eventfds: enough to observe, within one message's fd limit. */
    if (info->msix_vectors)
        register_eventfds(h, VFIO_PCI_MSIX_IRQ_INDEX, h->msix_fd, info->msix_vectors < 64 ? info->msix_vectors : 64);
}

int pci_harness_setup(void **state)
{
    struct pci_harness *h = calloc(1, sizeof(*h));
    struct vfio_user_pci_info info = pci_harness_default_info(h);
    pci_harness_start(h, &info);
    assert_int_equal(vfio_user_pci_setup_bar(h->p, 0, 0x4000, VFIO_USER_PCI_BAR_MEM64, dev_bar_access, -1, 0, 0, NULL),
                     0);
    *state = h;
    return 0;
}

int pci_harness_teardown(void **state)
{
    struct pci_harness *h = *state;
    vfio_user_server_destroy(h->s);
    vfio_user_pci_destroy(h->p);
    close(h->client);
    if (h->intx_fd >= 0)
        close(h->intx_fd);
    for (size_t i = 0; i < 32; i++)
        if (h->msi_fd[i] >= 0)
            close(h->msi_fd[i]);
    for (size_t i = 0; i < 64; i++)
        if (h->msix_fd[i] >= 0)
            close(h->msix_fd[i]);
    free(h);
    return 0;
}

uint32_t cfg_read(struct pci_harness *h, uint64_t off, size_t count)
{
    uint8_t b[4] = {0};
    assert_int_equal(vfio_user_pci_config_access(h->p, b, count, off, false), (ssize_t)count);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

void cfg_write(struct pci_harness *h, uint64_t off, size_t count, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    assert_int_equal(vfio_user_pci_config_access(h->p, b, count, off, true), (ssize_t)count);
}

uint32_t find_cap(struct pci_harness *h, uint8_t id)
{
    uint32_t off = cfg_read(h, PCI_CFG_CAP_PTR, 1);
    for (int guard = 0; off && guard < 48; guard++) {
        if (cfg_read(h, off, 1) == id)
            return off;
        off = cfg_read(h, off + 1, 1);
    }
    return 0;
}

ssize_t bar_io(struct pci_harness *h, uint32_t bar, void *buf, size_t count, uint64_t off, bool is_write)
{
    struct srv_region *r = &h->s->regions[VFIO_PCI_BAR0_REGION_INDEX + bar];
    assert_true(r->set);
    return r->desc.access(r->desc.ctx, buf, count, off, is_write);
}
