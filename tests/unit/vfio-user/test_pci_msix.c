/* SPDX-License-Identifier: MIT */
/*
 * MSI-X table and PBA emulation and MSI-X delivery of the vfio-user PCI
 * device model, and the BAR wrapper that routes accesses between the table,
 * the PBA and the device's own BAR callback.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "vfio-user/msg.h"
#include "vfio-user/pci_internal.h"
#include "vfio-user/server_internal.h"
#include "vnvme/vfio_user_pci.h"

/*
 * A real server without listener, with a socketpair attached as its client,
 * so interrupts can be observed on eventfds registered through SET_IRQS
 * exactly as a VMM would register them.
 */
struct dev_log {
    unsigned config_writes;
    uint32_t last_write_off, last_write_count;
    unsigned function_resets;
    unsigned bar_calls;
    uint64_t bar_last_off;
    size_t bar_last_count;
    bool bar_last_write;
    uint8_t bar_mem[0x4000];
};

struct harness {
    struct vfio_user_server *s;
    struct vfio_user_pci *p;
    int client;
    uint16_t msg_id;
    struct vfio_user_rx rx;
    int intx_fd;
    int msi_fd[32];
    int msix_fd[64];
    struct dev_log log;
};

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

static ssize_t dev_bar_access(void *ctx, uint8_t *buf, size_t count, uint64_t offset, bool is_write)
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

static struct vfio_user_pci_info default_info(struct harness *h)
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

static struct vfio_user_server *make_server(void)
{
    struct vfio_user_server_config cfg = {
        .socket_path = NULL,
        .flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
        .num_regions = VFIO_USER_PCI_NUM_REGIONS,
        .num_irqs = VFIO_USER_PCI_NUM_IRQS,
    };
    int err = 0;
    struct vfio_user_server *s = vfio_user_server_create(&cfg, &err);
    assert_non_null(s);
    return s;
}

static void send_cmd(struct harness *h, uint16_t cmd, const void *payload, size_t len, const int *fds, size_t nfds)
{
    struct vfio_user_header hdr = {
        .msg_id = ++h->msg_id,
        .cmd = cmd,
        .msg_size = (uint32_t)(sizeof(hdr) + len),
        .flags = VFIO_USER_F_TYPE_COMMAND,
    };
    struct iovec iov = {(void *)payload, len};
    assert_int_equal(vfio_user_send_all(h->client, &hdr, &iov, 1, fds, nfds, 2000), 0);
    assert_true(vfio_user_server_poll(h->s) >= 1);
    assert_int_equal(vfio_user_rx_wait(&h->rx, h->client, 2000), 1);
    assert_int_equal(h->rx.msg.hdr.msg_id, h->msg_id);
    assert_int_equal(h->rx.msg.hdr.flags & VFIO_USER_F_ERROR, 0);
    vfio_user_rx_release(&h->rx);
}

static void register_eventfds(struct harness *h, uint32_t index, int *fds, uint32_t n)
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
    send_cmd(h, VFIO_USER_DEVICE_SET_IRQS, &set, sizeof(set), fds, n);
}

/* How many times the eventfd fired since the last look. */
static uint64_t fired(int fd)
{
    uint64_t v = 0;
    if (read(fd, &v, sizeof(v)) != sizeof(v))
        return 0;
    return v;
}

static void harness_start(struct harness *h, const struct vfio_user_pci_info *info)
{
    int sv[2];
    int err = 0;
    struct vfio_user_version ver = {.major = VFIO_USER_VERSION_MAJOR, .minor = VFIO_USER_VERSION_MINOR};

    h->s = make_server();
    h->p = vfio_user_pci_create(h->s, info, &err);
    assert_non_null(h->p);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    h->client = sv[1];
    assert_int_equal(vfio_user_server_attach_fd(h->s, sv[0]), 0);
    vfio_user_rx_init(&h->rx, 1u << 20, 8);
    send_cmd(h, VFIO_USER_VERSION, &ver, sizeof(ver), NULL, 0);
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

static int setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));
    struct vfio_user_pci_info info = default_info(h);
    harness_start(h, &info);
    assert_int_equal(vfio_user_pci_setup_bar(h->p, 0, 0x4000, VFIO_USER_PCI_BAR_MEM64, dev_bar_access, -1, 0, 0, NULL),
                     0);
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    struct harness *h = *state;
    vfio_user_server_destroy(h->s);
    vfio_user_pci_destroy(h->p);
    vfio_user_rx_fini(&h->rx);
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

static uint32_t cfg_read(struct harness *h, uint64_t off, size_t count)
{
    uint8_t b[4] = {0};
    assert_int_equal(vfio_user_pci_config_access(h->p, b, count, off, false), (ssize_t)count);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void cfg_write(struct harness *h, uint64_t off, size_t count, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    assert_int_equal(vfio_user_pci_config_access(h->p, b, count, off, true), (ssize_t)count);
}

/* Offset of the capability with this id, walking the list from the header. */
static uint32_t find_cap(struct harness *h, uint8_t id)
{
    uint32_t off = cfg_read(h, PCI_CFG_CAP_PTR, 1);
    for (int guard = 0; off && guard < 48; guard++) {
        if (cfg_read(h, off, 1) == id)
            return off;
        off = cfg_read(h, off + 1, 1);
    }
    return 0;
}

/* An access to a BAR region as the server would dispatch a REGION_READ/WRITE. */
__attribute__((unused)) static ssize_t bar_io(struct harness *h, uint32_t bar, void *buf, size_t count, uint64_t off, bool is_write)
{
    struct srv_region *r = &h->s->regions[VFIO_PCI_BAR0_REGION_INDEX + bar];
    assert_true(r->set);
    return r->desc.access(r->desc.ctx, buf, count, off, is_write);
}

#define TABLE 0x2000u
#define PBA 0x3000u

static uint32_t msix_cap(struct harness *h)
{
    uint32_t c = find_cap(h, PCI_CAP_ID_MSIX);
    assert_int_not_equal(c, 0);
    return c;
}

static void msix_ctrl(struct harness *h, uint16_t v)
{
    cfg_write(h, msix_cap(h) + PCI_MSIX_CTRL, 2, v);
}

static uint32_t bar_read32(struct harness *h, uint64_t off)
{
    uint32_t v = 0xdeadbeef;
    assert_int_equal(bar_io(h, 0, &v, 4, off, false), 4);
    return v;
}

static void bar_write32(struct harness *h, uint64_t off, uint32_t v)
{
    assert_int_equal(bar_io(h, 0, &v, 4, off, true), 4);
}

static uint64_t pba(struct harness *h)
{
    uint64_t v = 0;
    assert_int_equal(bar_io(h, 0, &v, 8, PBA, false), 8);
    return v;
}

static void vector_mask(struct harness *h, uint32_t vector, bool masked)
{
    bar_write32(h, TABLE + vector * 16 + 12, masked ? 1 : 0);
}

/* Bus master on, MSI-X enabled, function unmasked. */
static void enable_msix(struct harness *h)
{
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER);
    msix_ctrl(h, PCI_MSIX_CTRL_ENABLE);
}

static void test_table_reset_values(void **state)
{
    struct harness *h = *state;
    for (uint32_t v = 0; v < 8; v++) {
        assert_int_equal(bar_read32(h, TABLE + v * 16), 0);
        assert_int_equal(bar_read32(h, TABLE + v * 16 + 4), 0);
        assert_int_equal(bar_read32(h, TABLE + v * 16 + 8), 0);
        assert_int_equal(bar_read32(h, TABLE + v * 16 + 12), 1);
        assert_true(vfio_user_pci_msix_vector_masked(h->p, v));
    }
    assert_int_equal(pba(h), 0);
    assert_true(vfio_user_pci_msix_vector_masked(h->p, 8)); /* out of range never deliverable */
}

static void test_table_write_read(void **state)
{
    struct harness *h = *state;
    uint64_t addr = 0x00000001fee01000ull, got = 0;

    assert_int_equal(bar_io(h, 0, &addr, 8, TABLE + 3 * 16, true), 8);
    bar_write32(h, TABLE + 3 * 16 + 8, 0x4041);
    bar_write32(h, TABLE + 3 * 16 + 12, 0xfffffffe); /* reserved bits dropped, unmasked */
    assert_int_equal(bar_io(h, 0, &got, 8, TABLE + 3 * 16, false), 8);
    assert_int_equal(got, addr);
    assert_int_equal(bar_read32(h, TABLE + 3 * 16 + 4), 1);
    assert_int_equal(bar_read32(h, TABLE + 3 * 16 + 8), 0x4041);
    assert_int_equal(bar_read32(h, TABLE + 3 * 16 + 12), 0);
    /* Neighbours untouched. */
    assert_int_equal(bar_read32(h, TABLE + 2 * 16 + 12), 1);
    assert_int_equal(bar_read32(h, TABLE + 4 * 16), 0);
    /* The device callback never saw any of it. */
    assert_int_equal(h->log.bar_calls, 0);
}

static void test_table_bad_shapes(void **state)
{
    struct harness *h = *state;
    uint64_t v = 0;

    assert_int_equal(bar_io(h, 0, &v, 2, TABLE, false), -EINVAL);
    assert_int_equal(bar_io(h, 0, &v, 1, TABLE + 12, true), -EINVAL);
    assert_int_equal(bar_io(h, 0, &v, 4, TABLE + 2, false), -EINVAL);
    assert_int_equal(bar_io(h, 0, &v, 8, TABLE + 4, false), -EINVAL);
    /* Straddling the table's start or end. */
    assert_int_equal(bar_io(h, 0, &v, 8, TABLE - 4, false), -EINVAL);
    assert_int_equal(bar_io(h, 0, &v, 8, TABLE + 8 * 16 - 4, false), -EINVAL);
    assert_int_equal(bar_io(h, 0, &v, 2, PBA, false), -EINVAL);
    assert_int_equal(h->log.bar_calls, 0);
    assert_int_equal(bar_read32(h, TABLE + 12), 1);
}

static void test_msix_ctrl_writable_bits(void **state)
{
    struct harness *h = *state;
    msix_ctrl(h, 0xffff);
    assert_int_equal(cfg_read(h, msix_cap(h) + PCI_MSIX_CTRL, 2), PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK | 7);
    assert_true(vfio_user_pci_msix_enabled(h->p));
    msix_ctrl(h, 0);
    assert_int_equal(cfg_read(h, msix_cap(h) + PCI_MSIX_CTRL, 2), 7);
}

static void test_disabled_uses_intx(void **state)
{
    struct harness *h = *state;
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER);
    vector_mask(h, 0, false);
    assert_int_equal(vfio_user_pci_irq(h->p, 0), 0);
    assert_int_equal(fired(h->intx_fd), 1);
    assert_int_equal(fired(h->msix_fd[0]), 0);
    assert_int_equal(pba(h), 0);
}

static void test_enabled_unmasked_fires(void **state)
{
    struct harness *h = *state;
    enable_msix(h);
    vector_mask(h, 5, false);
    assert_false(vfio_user_pci_msix_vector_masked(h->p, 5));
    assert_int_equal(vfio_user_pci_irq(h->p, 5), 0);
    assert_int_equal(fired(h->msix_fd[5]), 1);
    assert_int_equal(fired(h->intx_fd), 0);
    assert_false(cfg_read(h, PCI_CFG_STATUS, 2) & PCI_STATUS_INTX);
    assert_int_equal(pba(h), 0);
    assert_int_equal(vfio_user_pci_irq(h->p, 8), -EINVAL);
}

static void test_vector_mask_sets_pba(void **state)
{
    struct harness *h = *state;
    enable_msix(h);
    /* Vector 2 is masked from reset. */
    assert_int_equal(vfio_user_pci_irq(h->p, 2), 0);
    assert_int_equal(fired(h->msix_fd[2]), 0);
    assert_int_equal(pba(h), 1u << 2);
    /* The PBA is read-only to the driver. */
    uint64_t ones = ~0ull;
    assert_int_equal(bar_io(h, 0, &ones, 8, PBA, true), 8);
    assert_int_equal(pba(h), 1u << 2);
    assert_int_equal(bar_read32(h, PBA), 1u << 2);
    /* Unmask: delivered once, bit cleared. */
    vector_mask(h, 2, false);
    assert_int_equal(fired(h->msix_fd[2]), 1);
    assert_int_equal(pba(h), 0);
    /* Masking again with nothing pending sends nothing. */
    vector_mask(h, 2, true);
    vector_mask(h, 2, false);
    assert_int_equal(fired(h->msix_fd[2]), 0);
}

static void test_function_mask(void **state)
{
    struct harness *h = *state;
    enable_msix(h);
    vector_mask(h, 1, false);
    msix_ctrl(h, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK);
    assert_true(vfio_user_pci_msix_vector_masked(h->p, 1));
    assert_int_equal(vfio_user_pci_irq(h->p, 1), 0);
    assert_int_equal(vfio_user_pci_irq(h->p, 3), 0); /* also vector-masked */
    assert_int_equal(fired(h->msix_fd[1]), 0);
    assert_int_equal(pba(h), (1u << 1) | (1u << 3));
    msix_ctrl(h, PCI_MSIX_CTRL_ENABLE);
    assert_int_equal(fired(h->msix_fd[1]), 1);
    assert_int_equal(fired(h->msix_fd[3]), 0);
    assert_int_equal(pba(h), 1u << 3);
}

static void test_pending_fires_on_enable(void **state)
{
    struct harness *h = *state;
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER);
    /* Enabled with the function masked: the usual driver setup sequence. */
    msix_ctrl(h, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK);
    vector_mask(h, 7, false);
    assert_int_equal(vfio_user_pci_irq(h->p, 7), 0);
    assert_int_equal(pba(h), 1u << 7);
    /* Disable, then enable unmasked: the pending vector goes out. */
    msix_ctrl(h, 0);
    assert_int_equal(fired(h->msix_fd[7]), 0);
    msix_ctrl(h, PCI_MSIX_CTRL_ENABLE);
    assert_int_equal(fired(h->msix_fd[7]), 1);
    assert_int_equal(pba(h), 0);
}

static void test_bus_master_off_keeps_pending(void **state)
{
    struct harness *h = *state;
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY);
    msix_ctrl(h, PCI_MSIX_CTRL_ENABLE);
    vector_mask(h, 4, false);
    assert_int_equal(vfio_user_pci_irq(h->p, 4), -EPERM);
    assert_int_equal(fired(h->msix_fd[4]), 0);
    assert_int_equal(pba(h), 1u << 4);
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER);
    assert_int_equal(fired(h->msix_fd[4]), 1);
    assert_int_equal(pba(h), 0);
}

static void test_intx_disable_irrelevant_to_msix(void **state)
{
    struct harness *h = *state;
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER | PCI_CMD_INTX_DISABLE);
    msix_ctrl(h, PCI_MSIX_CTRL_ENABLE);
    vector_mask(h, 0, false);
    assert_int_equal(vfio_user_pci_irq(h->p, 0), 0);
    assert_int_equal(fired(h->msix_fd[0]), 1);
}

static void test_flr_resets_msix(void **state)
{
    struct harness *h = *state;
    uint32_t devctl = find_cap(h, PCI_CAP_ID_EXP) + PCI_EXP_DEVCTL;

    enable_msix(h);
    bar_write32(h, TABLE + 16, 0xfee00000);
    vector_mask(h, 1, false);
    assert_int_equal(vfio_user_pci_irq(h->p, 2), 0);
    assert_int_equal(pba(h), 1u << 2);
    cfg_write(h, devctl, 2, PCI_EXP_DEVCTL_FLR);
    assert_int_equal(h->log.function_resets, 1);
    assert_false(vfio_user_pci_msix_enabled(h->p));
    assert_int_equal(bar_read32(h, TABLE + 16), 0);
    assert_int_equal(bar_read32(h, TABLE + 16 + 12), 1);
    assert_int_equal(pba(h), 0);
    /* After reset the device is back on INTx. */
    assert_int_equal(vfio_user_pci_irq(h->p, 1), 0);
    assert_int_equal(fired(h->msix_fd[1]), 0);
    assert_int_equal(fired(h->intx_fd), 1);
}

static void test_bar_forwards_other_offsets(void **state)
{
    struct harness *h = *state;
    uint32_t v = 0x11223344, got = 0;
    uint8_t b = 0x5a;

    assert_int_equal(bar_io(h, 0, &v, 4, 0x10, true), 4);
    assert_int_equal(h->log.bar_calls, 1);
    assert_int_equal(h->log.bar_last_off, 0x10);
    assert_int_equal(h->log.bar_last_count, 4);
    assert_true(h->log.bar_last_write);
    assert_memory_equal(h->log.bar_mem + 0x10, &v, 4);
    assert_int_equal(bar_io(h, 0, &got, 4, 0x10, false), 4);
    assert_int_equal(got, v);
    assert_false(h->log.bar_last_write);
    /* Just past the table and between table and PBA: the device's. */
    assert_int_equal(bar_io(h, 0, &b, 1, TABLE + 8 * 16, true), 1);
    assert_int_equal(h->log.bar_last_off, TABLE + 8 * 16);
    assert_int_equal(bar_io(h, 0, &got, 4, PBA + 8, false), 4);
    assert_int_equal(h->log.bar_last_off, PBA + 8);
    assert_int_equal(h->log.bar_calls, 4);
    /* The table itself is not. */
    bar_read32(h, TABLE + 8 * 16 - 4);
    assert_int_equal(h->log.bar_calls, 4);
}

static void test_msix_only_bar_without_callback(void **state)
{
    (void)state;
    struct harness h2 = {0};
    struct vfio_user_pci_info info = default_info(&h2);
    uint32_t v = 0xffffffff;
    int err = 0;

    info.msix_table_bar = 2;
    info.msix_table_offset = 0;
    info.msix_pba_bar = 2;
    info.msix_pba_offset = 0x800;
    h2.s = make_server();
    h2.p = vfio_user_pci_create(h2.s, &info, &err);
    assert_non_null(h2.p);
    assert_int_equal(vfio_user_pci_setup_bar(h2.p, 2, 0x1000, 0, NULL, -1, 0, 0, NULL), 0);
    assert_int_equal(bar_io(&h2, 2, &v, 4, 12, false), 4);
    assert_int_equal(v, 1);
    /* Empty space around the structures reads 0 and ignores writes. */
    v = 0xffffffff;
    assert_int_equal(bar_io(&h2, 2, &v, 4, 0x400, true), 4);
    assert_int_equal(bar_io(&h2, 2, &v, 4, 0x400, false), 4);
    assert_int_equal(v, 0);
    vfio_user_server_destroy(h2.s);
    vfio_user_pci_destroy(h2.p);
}

static void test_many_vectors_pba_words(void **state)
{
    (void)state;
    struct harness *h2 = calloc(1, sizeof(*h2));
    struct vfio_user_pci_info info = default_info(h2);
    uint32_t ctrl = 0;
    uint64_t word = 0;
    void *st = h2;

    info.msix_vectors = 100;
    info.msix_table_offset = 0;
    info.msix_pba_offset = 0x1000;
    harness_start(h2, &info);
    assert_int_equal(vfio_user_pci_setup_bar(h2->p, 0, 0x2000, 0, dev_bar_access, -1, 0, 0, NULL), 0);
    cfg_write(h2, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER);
    cfg_write(h2, msix_cap(h2) + PCI_MSIX_CTRL, 2, PCI_MSIX_CTRL_ENABLE);
    assert_int_equal(cfg_read(h2, msix_cap(h2) + PCI_MSIX_CTRL, 2) & 0x7ff, 99);
    assert_int_equal(vfio_user_pci_irq(h2->p, 99), 0);
    assert_int_equal(bar_io(h2, 0, &word, 8, 0x1008, false), 8);
    assert_int_equal(word, 1ull << (99 - 64));
    /* Unmasking the last vector clears its bit in the second PBA qword. */
    assert_int_equal(bar_io(h2, 0, &ctrl, 4, 99 * 16 + 12, true), 4);
    assert_int_equal(bar_io(h2, 0, &word, 8, 0x1008, false), 8);
    assert_int_equal(word, 0);
    /* Past the two PBA qwords the BAR belongs to the device again. */
    assert_int_equal(bar_io(h2, 0, &word, 8, 0x1010, false), 8);
    assert_int_equal(h2->log.bar_calls, 1);
    assert_int_equal(vfio_user_pci_irq(h2->p, 100), -EINVAL);
    teardown(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_table_reset_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_write_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_bad_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msix_ctrl_writable_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_uses_intx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enabled_unmasked_fires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vector_mask_sets_pba, setup, teardown),
        cmocka_unit_test_setup_teardown(test_function_mask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_fires_on_enable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bus_master_off_keeps_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intx_disable_irrelevant_to_msix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flr_resets_msix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_forwards_other_offsets, setup, teardown),
        cmocka_unit_test(test_msix_only_bar_without_callback),
        cmocka_unit_test(test_many_vectors_pba_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
