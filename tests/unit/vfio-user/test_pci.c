/* SPDX-License-Identifier: MIT */
/*
 * PCI config space, BARs, INTx and MSI of the vfio-user PCI device model,
 * driven through vfio_user_pci_config_access() and a real server whose
 * client end is a socketpair (interrupts are checked on their eventfds).
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

/* ---- header and capabilities ---- */

static void test_header_values(void **state)
{
    struct harness *h = *state;
    assert_int_equal(cfg_read(h, 0x00, 2), 0x1b36);
    assert_int_equal(cfg_read(h, 0x02, 2), 0x0010);
    assert_int_equal(cfg_read(h, 0x08, 1), 2);
    assert_int_equal(cfg_read(h, 0x09, 1), 0x02);
    assert_int_equal(cfg_read(h, 0x0a, 2), 0x0108);
    assert_int_equal(cfg_read(h, 0x0e, 1), 0);
    assert_int_equal(cfg_read(h, 0x2c, 2), 0x1af4);
    assert_int_equal(cfg_read(h, 0x2e, 2), 0x1100);
    assert_int_equal(cfg_read(h, 0x04, 2), 0);
    assert_int_equal(cfg_read(h, 0x06, 2), PCI_STATUS_CAP_LIST);
    assert_int_equal(cfg_read(h, 0x34, 1), 0x40);
    assert_int_equal(cfg_read(h, 0x3d, 1), 1);
    cfg_write(h, 0x3c, 1, 0x0b);
    assert_int_equal(cfg_read(h, 0x3c, 1), 0x0b);
    assert_int_equal(cfg_read(h, 0x100, 4), 0);
}

static void test_capability_chain(void **state)
{
    struct harness *h = *state;
    const uint8_t want[] = {PCI_CAP_ID_PM, PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX, PCI_CAP_ID_EXP};
    uint32_t off = cfg_read(h, 0x34, 1);

    for (size_t i = 0; i < sizeof(want); i++) {
        assert_true(off >= 0x40 && off < 0x100 && off % 4 == 0);
        assert_int_equal(cfg_read(h, off, 1), want[i]);
        off = cfg_read(h, off + 1, 1);
    }
    assert_int_equal(off, 0);

    uint32_t pm = find_cap(h, PCI_CAP_ID_PM);
    assert_int_equal(cfg_read(h, pm + 2, 2) & 7, 3);
    assert_int_equal(cfg_read(h, pm + 4, 2), PCI_PM_NO_SOFT_RESET);

    uint32_t msi = find_cap(h, PCI_CAP_ID_MSI);
    uint32_t ctrl = cfg_read(h, msi + 2, 2);
    assert_true(ctrl & PCI_MSI_CTRL_64BIT);
    assert_true(ctrl & PCI_MSI_CTRL_PVM);
    assert_int_equal((ctrl >> 1) & 7, 2); /* 4 vectors */
    assert_int_equal(ctrl & PCI_MSI_CTRL_ENABLE, 0);

    uint32_t msix = find_cap(h, PCI_CAP_ID_MSIX);
    assert_int_equal(cfg_read(h, msix + 2, 2), 7);
    assert_int_equal(cfg_read(h, msix + 4, 4), 0x2000 | 0);
    assert_int_equal(cfg_read(h, msix + 8, 4), 0x3000 | 0);

    uint32_t exp = find_cap(h, PCI_CAP_ID_EXP);
    assert_int_equal(cfg_read(h, exp + 2, 2), 0x0002);
    uint32_t devcap = cfg_read(h, exp + 4, 4);
    assert_true(devcap & PCI_EXP_DEVCAP_FLR);
    assert_int_equal(devcap & 7, 1);
    assert_int_equal(cfg_read(h, exp + PCI_EXP_LNKCAP, 4) & 0x3ff, 0x11);
    assert_int_equal(cfg_read(h, exp + PCI_EXP_LNKSTA, 2) & 0x3ff, 0x11);
    assert_int_equal(cfg_read(h, exp + PCI_EXP_DEVCAP2, 4), 0);
}

static void test_capability_chain_without_msi(void **state)
{
    (void)state;
    struct harness h2 = {0};
    struct vfio_user_pci_info info = default_info(&h2);
    int err = 0;

    info.msi_vectors = 0;
    info.msix_vectors = 0;
    h2.s = make_server();
    h2.p = vfio_user_pci_create(h2.s, &info, &err);
    assert_non_null(h2.p);
    assert_int_equal(cfg_read(&h2, 0x40, 1), PCI_CAP_ID_PM);
    uint32_t next = cfg_read(&h2, 0x41, 1);
    assert_int_equal(cfg_read(&h2, next, 1), PCI_CAP_ID_EXP);
    assert_int_equal(cfg_read(&h2, next + 1, 1), 0);
    /* No MSI/MSI-X index declared on the server. */
    assert_int_equal(h2.s->irqs[VFIO_PCI_MSI_IRQ_INDEX].count, 0);
    assert_int_equal(h2.s->irqs[VFIO_PCI_MSIX_IRQ_INDEX].count, 0);
    assert_int_equal(h2.s->irqs[VFIO_PCI_INTX_IRQ_INDEX].count, 1);
    vfio_user_server_destroy(h2.s);
    vfio_user_pci_destroy(h2.p);
}

static void test_server_registration(void **state)
{
    struct harness *h = *state;
    const struct srv_region *cfg = &h->s->regions[VFIO_PCI_CONFIG_REGION_INDEX];
    const struct srv_region *bar0 = &h->s->regions[VFIO_PCI_BAR0_REGION_INDEX];

    assert_true(cfg->set);
    assert_int_equal(cfg->desc.size, VFIO_USER_PCI_CONFIG_SIZE);
    assert_int_equal(cfg->desc.flags & (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE),
                     VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE);
    assert_true(bar0->set);
    assert_int_equal(bar0->desc.size, 0x4000);
    assert_false(h->s->regions[VFIO_PCI_BAR0_REGION_INDEX + 1].set);
    assert_int_equal(h->s->irqs[VFIO_PCI_INTX_IRQ_INDEX].count, 1);
    assert_int_equal(h->s->irqs[VFIO_PCI_MSI_IRQ_INDEX].count, 4);
    assert_int_equal(h->s->irqs[VFIO_PCI_MSIX_IRQ_INDEX].count, 8);
    assert_int_equal(h->s->irqs[VFIO_PCI_ERR_IRQ_INDEX].count, 1);
    assert_int_equal(h->s->irqs[VFIO_PCI_REQ_IRQ_INDEX].count, 1);
    assert_true(h->s->irqs[VFIO_PCI_MSIX_IRQ_INDEX].info_flags & VFIO_IRQ_INFO_MASKABLE);
    assert_true(h->s->irqs[VFIO_PCI_INTX_IRQ_INDEX].info_flags & VFIO_IRQ_INFO_EVENTFD);
    assert_false(h->s->irqs[VFIO_PCI_ERR_IRQ_INDEX].info_flags & VFIO_IRQ_INFO_MASKABLE);
}

/* ---- write masks ---- */

static void test_read_only_bits_keep_value(void **state)
{
    struct harness *h = *state;
    uint8_t before[VFIO_USER_PCI_CONFIG_SIZE];
    uint32_t exp = find_cap(h, PCI_CAP_ID_EXP), msix = find_cap(h, PCI_CAP_ID_MSIX);
    const uint32_t ro[] = {0x00, 0x08, 0x0e, 0x2c, 0x30, 0x34, 0x3d, 0x40, 0x42, exp, exp + 4, exp + 12, exp + 18,
                           exp + 36, msix + 4, msix + 8, 0x100, 0xffc};

    memcpy(before, vfio_user_pci_config(h->p), sizeof(before));
    for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
        size_t n = ro[i] == 0x3d ? 1 : (ro[i] % 4 ? 2 : 4);
        cfg_write(h, ro[i], n, 0xffffffff);
        assert_memory_equal(vfio_user_pci_config(h->p) + ro[i], before + ro[i], n);
    }
    /* Every byte of the header except the writable ones is still as it was. */
    for (uint32_t o = 0; o < 0x40; o++)
        if (o != 0x04 && o != 0x05 && o != 0x0c && o != 0x3c && !(o >= 0x10 && o < 0x18))
            assert_int_equal(vfio_user_pci_config(h->p)[o], before[o]);
}

static void test_command_register_mask(void **state)
{
    struct harness *h = *state;
    cfg_write(h, PCI_CFG_COMMAND, 2, 0xffff);
    /* No I/O BAR: I/O space enable stays 0. */
    assert_int_equal(cfg_read(h, PCI_CFG_COMMAND, 2),
                     PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER | PCI_CMD_PARITY | PCI_CMD_SERR | PCI_CMD_INTX_DISABLE);
    assert_true(vfio_user_pci_bus_master(h->p));
    assert_true(vfio_user_pci_intx_disabled(h->p));
    cfg_write(h, PCI_CFG_COMMAND, 2, 0);
    assert_int_equal(cfg_read(h, PCI_CFG_COMMAND, 2), 0);
    assert_false(vfio_user_pci_bus_master(h->p));
}

static void test_status_w1c(void **state)
{
    struct harness *h = *state;
    pci_set_status_bits(h->p, PCI_STATUS_W1C | PCI_STATUS_INTX);
    assert_int_equal(cfg_read(h, PCI_CFG_STATUS, 2), PCI_STATUS_W1C | PCI_STATUS_INTX | PCI_STATUS_CAP_LIST);
    cfg_write(h, PCI_CFG_STATUS, 2, 0);
    assert_int_equal(cfg_read(h, PCI_CFG_STATUS, 2), PCI_STATUS_W1C | PCI_STATUS_INTX | PCI_STATUS_CAP_LIST);
    cfg_write(h, PCI_CFG_STATUS, 2, 1u << 13);
    assert_int_equal(cfg_read(h, PCI_CFG_STATUS, 2),
                     (PCI_STATUS_W1C & ~(1u << 13)) | PCI_STATUS_INTX | PCI_STATUS_CAP_LIST);
    cfg_write(h, PCI_CFG_STATUS, 2, 0xffff);
    /* Interrupt status and the capability bit are read-only. */
    assert_int_equal(cfg_read(h, PCI_CFG_STATUS, 2), PCI_STATUS_INTX | PCI_STATUS_CAP_LIST);
}

static void test_access_bounds(void **state)
{
    struct harness *h = *state;
    uint8_t buf[VFIO_USER_PCI_CONFIG_SIZE + 8];

    memset(buf, 0, sizeof(buf));
    assert_int_equal(vfio_user_pci_config_access(h->p, buf, 1, 4096, false), -EINVAL);
    assert_int_equal(vfio_user_pci_config_access(h->p, buf, 2, 4095, false), -EINVAL);
    assert_int_equal(vfio_user_pci_config_access(h->p, buf, 2, 4095, true), -EINVAL);
    assert_int_equal(vfio_user_pci_config_access(h->p, buf, 0, 0, false), -EINVAL);
    assert_int_equal(vfio_user_pci_config_access(h->p, buf, 4, UINT64_MAX - 1, false), -EINVAL);
    assert_int_equal(vfio_user_pci_config_access(h->p, buf, SIZE_MAX, 8, false), -EINVAL);
    assert_int_equal(vfio_user_pci_config_access(h->p, buf, 4097, 0, false), -EINVAL);
    assert_int_equal(vfio_user_pci_config_access(h->p, buf, 4, 4092, false), 4);
    assert_int_equal(vfio_user_pci_config_access(h->p, buf, 4096, 0, false), 4096);
    assert_memory_equal(buf, vfio_user_pci_config(h->p), 4096);
    assert_int_equal(h->log.config_writes, 0);
}

static void test_unaligned_write_is_bytewise(void **state)
{
    struct harness *h = *state;
    /* Bytes 0x3b..0x3e: reserved (RO), interrupt line (RW), pin (RO), Min_Gnt (RO). */
    cfg_write(h, 0x3b, 4, 0x44332211);
    assert_int_equal(cfg_read(h, 0x3c, 1), 0x22);
    assert_int_equal(cfg_read(h, 0x3d, 1), 1);
    assert_int_equal(cfg_read(h, 0x3e, 1), 0);
    assert_int_equal(cfg_read(h, 0x3b, 1), 0);
    /* Three bytes straddling command (upper byte) and status. */
    cfg_write(h, 0x05, 3, 0xffff04);
    assert_int_equal(cfg_read(h, PCI_CFG_COMMAND, 2), PCI_CMD_INTX_DISABLE);
    assert_int_equal(cfg_read(h, PCI_CFG_STATUS, 2), PCI_STATUS_CAP_LIST);
    /* An unaligned read across registers returns the bytes in order. */
    assert_int_equal(cfg_read(h, 0x02, 4), 0x04000010);
}

static void test_config_write_callback(void **state)
{
    struct harness *h = *state;
    cfg_read(h, 0x04, 2);
    assert_int_equal(h->log.config_writes, 0);
    cfg_write(h, 0x04, 2, PCI_CMD_MEMORY);
    assert_int_equal(h->log.config_writes, 1);
    assert_int_equal(h->log.last_write_off, 0x04);
    assert_int_equal(h->log.last_write_count, 2);
    cfg_write(h, 0x00, 4, 0); /* read-only target: still reported, like any write */
    assert_int_equal(h->log.config_writes, 2);
}

/* ---- BARs ---- */

static void test_bar_sizing_64bit(void **state)
{
    struct harness *h = *state; /* BAR0: 16 KiB, 64-bit, not prefetchable */
    assert_int_equal(cfg_read(h, 0x10, 4), 0x4);
    cfg_write(h, 0x10, 4, 0xffffffff);
    cfg_write(h, 0x14, 4, 0xffffffff);
    assert_int_equal(cfg_read(h, 0x10, 4), 0xffffc004);
    assert_int_equal(cfg_read(h, 0x14, 4), 0xffffffff);
    cfg_write(h, 0x10, 4, 0xfebc1234);
    cfg_write(h, 0x14, 4, 0x00000012);
    assert_int_equal(cfg_read(h, 0x10, 4), 0xfebc0004);
    assert_int_equal(cfg_read(h, 0x14, 4), 0x12);
}

static void test_bar_sizing_large_64bit_prefetch(void **state)
{
    struct harness *h = *state;
    assert_int_equal(vfio_user_pci_setup_bar(h->p, 2, 1ull << 33, VFIO_USER_PCI_BAR_MEM64 | VFIO_USER_PCI_BAR_PREFETCH,
                                             dev_bar_access, -1, 0, 0, NULL),
                     0);
    cfg_write(h, 0x18, 4, 0xffffffff);
    cfg_write(h, 0x1c, 4, 0xffffffff);
    assert_int_equal(cfg_read(h, 0x18, 4), 0x0000000c);
    assert_int_equal(cfg_read(h, 0x1c, 4), 0xfffffffe);
}

static void test_bar_sizing_32bit_and_prefetch(void **state)
{
    struct harness *h = *state;
    assert_int_equal(vfio_user_pci_setup_bar(h->p, 2, 0x1000, 0, dev_bar_access, -1, 0, 0, NULL), 0);
    assert_int_equal(vfio_user_pci_setup_bar(h->p, 3, 0x100000, VFIO_USER_PCI_BAR_PREFETCH, dev_bar_access, -1, 0, 0,
                                             NULL),
                     0);
    cfg_write(h, 0x18, 4, 0xffffffff);
    assert_int_equal(cfg_read(h, 0x18, 4), 0xfffff000);
    cfg_write(h, 0x18, 4, 0x12345678);
    assert_int_equal(cfg_read(h, 0x18, 4), 0x12345000);
    cfg_write(h, 0x1c, 4, 0xffffffff);
    assert_int_equal(cfg_read(h, 0x1c, 4), 0xfff00008);
}

static void test_io_bar(void **state)
{
    struct harness *h = *state;
    assert_int_equal(vfio_user_pci_setup_bar(h->p, 2, 0x100, VFIO_USER_PCI_BAR_IO, dev_bar_access, -1, 0, 0, NULL), 0);
    assert_int_equal(cfg_read(h, 0x18, 4), 0x1);
    cfg_write(h, 0x18, 4, 0xffffffff);
    assert_int_equal(cfg_read(h, 0x18, 4), 0xffffff01);
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_IO);
    assert_int_equal(cfg_read(h, PCI_CFG_COMMAND, 2), PCI_CMD_IO);
}

static void test_unimplemented_bar_and_rom_read_zero(void **state)
{
    struct harness *h = *state;
    for (uint32_t off = 0x18; off <= 0x24; off += 4) {
        cfg_write(h, off, 4, 0xffffffff);
        assert_int_equal(cfg_read(h, off, 4), 0);
    }
    cfg_write(h, 0x30, 4, 0xffffffff);
    assert_int_equal(cfg_read(h, 0x30, 4), 0);
}

static void test_bar_reset_keeps_type(void **state)
{
    struct harness *h = *state;
    cfg_write(h, 0x10, 4, 0xfebc0000);
    cfg_write(h, 0x14, 4, 0x1);
    vfio_user_pci_reset(h->p);
    assert_int_equal(cfg_read(h, 0x10, 4), 0x4);
    assert_int_equal(cfg_read(h, 0x14, 4), 0);
    /* Still sizable after reset. */
    cfg_write(h, 0x10, 4, 0xffffffff);
    assert_int_equal(cfg_read(h, 0x10, 4), 0xffffc004);
}

static void test_setup_bar_validation(void **state)
{
    struct harness *h = *state;
    struct vfio_user_pci *p = h->p;
    struct vfio_user_sparse_area sp = {0, 0x1000};

    assert_int_equal(vfio_user_pci_setup_bar(p, 6, 0x1000, 0, dev_bar_access, -1, 0, 0, NULL), -EINVAL);
    assert_int_equal(vfio_user_pci_setup_bar(p, 2, 0, 0, dev_bar_access, -1, 0, 0, NULL), -EINVAL);
    assert_int_equal(vfio_user_pci_setup_bar(p, 2, 8, 0, dev_bar_access, -1, 0, 0, NULL), -EINVAL);
    assert_int_equal(vfio_user_pci_setup_bar(p, 2, 0x3000, 0, dev_bar_access, -1, 0, 0, NULL), -EINVAL);
    assert_int_equal(vfio_user_pci_setup_bar(p, 5, 0x1000, VFIO_USER_PCI_BAR_MEM64, dev_bar_access, -1, 0, 0, NULL),
                     -EINVAL);
    /* BAR1 is the upper half of the 64-bit BAR0. */
    assert_int_equal(vfio_user_pci_setup_bar(p, 1, 0x1000, 0, dev_bar_access, -1, 0, 0, NULL), -EEXIST);
    assert_int_equal(vfio_user_pci_setup_bar(p, 0, 0x1000, 0, dev_bar_access, -1, 0, 0, NULL), -EEXIST);
    assert_int_equal(vfio_user_pci_setup_bar(p, 2, 0x100, VFIO_USER_PCI_BAR_IO | VFIO_USER_PCI_BAR_MEM64,
                                             dev_bar_access, -1, 0, 0, NULL),
                     -EINVAL);
    assert_int_equal(vfio_user_pci_setup_bar(p, 2, 0x1000, VFIO_USER_PCI_BAR_IO, dev_bar_access, -1, 0, 0, NULL),
                     -EINVAL);
    assert_int_equal(vfio_user_pci_setup_bar(p, 2, 1ull << 32, 0, dev_bar_access, -1, 0, 0, NULL), -EINVAL);
    assert_int_equal(vfio_user_pci_setup_bar(p, 2, 0x1000, 1u << 7, dev_bar_access, -1, 0, 0, NULL), -EINVAL);
    /* Device registers without a callback. */
    assert_int_equal(vfio_user_pci_setup_bar(p, 2, 0x1000, 0, NULL, -1, 0, 0, NULL), -EINVAL);
    assert_int_equal(vfio_user_pci_setup_bar(p, 2, 0x1000, 0, dev_bar_access, -1, 0, 1, NULL), -EINVAL);
    assert_int_equal(vfio_user_pci_setup_bar(p, 2, 0x1000, 0, dev_bar_access, -1, 0, VFIO_USER_MAX_SPARSE_AREAS + 1,
                                             &sp),
                     -EINVAL);
    /* Nothing of the failures stuck: BAR2 is still free and unimplemented. */
    assert_false(h->s->regions[VFIO_PCI_BAR0_REGION_INDEX + 2].set);
    cfg_write(h, 0x18, 4, 0xffffffff);
    assert_int_equal(cfg_read(h, 0x18, 4), 0);
    assert_int_equal(vfio_user_pci_setup_bar(p, 2, 0x1000, 0, dev_bar_access, -1, 0, 0, NULL), 0);
}

static void test_setup_bar_msix_must_fit(void **state)
{
    (void)state;
    struct harness h2 = {0};
    struct vfio_user_pci_info info = default_info(&h2);
    int err = 0;

    info.msix_table_bar = 2;
    info.msix_pba_bar = 3;
    info.msix_table_offset = 0;
    info.msix_pba_offset = 0;
    h2.s = make_server();
    h2.p = vfio_user_pci_create(h2.s, &info, &err);
    assert_non_null(h2.p);
    /* 8 vectors need 128 bytes of table. */
    assert_int_equal(vfio_user_pci_setup_bar(h2.p, 2, 64, 0, NULL, -1, 0, 0, NULL), -EINVAL);
    /* A 64-bit BAR at 2 would make the PBA's BIR (3) name its upper half. */
    assert_int_equal(vfio_user_pci_setup_bar(h2.p, 2, 0x1000, VFIO_USER_PCI_BAR_MEM64, NULL, -1, 0, 0, NULL), -EINVAL);
    /* MSI-X structures are memory space. */
    assert_int_equal(vfio_user_pci_setup_bar(h2.p, 2, 256, VFIO_USER_PCI_BAR_IO, NULL, -1, 0, 0, NULL), -EINVAL);
    /* A BAR holding only MSI-X structures needs no device callback. */
    assert_int_equal(vfio_user_pci_setup_bar(h2.p, 2, 0x1000, 0, NULL, -1, 0, 0, NULL), 0);
    assert_int_equal(vfio_user_pci_setup_bar(h2.p, 3, 16, 0, NULL, -1, 0, 0, NULL), 0);
    vfio_user_server_destroy(h2.s);
    vfio_user_pci_destroy(h2.p);
}

static void test_create_validation(void **state)
{
    (void)state;
    struct harness h2 = {0};
    struct vfio_user_pci_info info;
    int err = 0;

    h2.s = make_server();
    info = default_info(&h2);
    assert_null(vfio_user_pci_create(NULL, &info, &err));
    assert_int_equal(err, -EINVAL);
    info.msi_vectors = 3;
    err = 0;
    assert_null(vfio_user_pci_create(h2.s, &info, &err));
    assert_int_equal(err, -EINVAL);
    info = default_info(&h2);
    info.msi_vectors = 64;
    assert_null(vfio_user_pci_create(h2.s, &info, &err));
    info = default_info(&h2);
    info.msix_vectors = 2049;
    assert_null(vfio_user_pci_create(h2.s, &info, &err));
    info = default_info(&h2);
    info.msix_table_offset = 0x2004;
    assert_null(vfio_user_pci_create(h2.s, &info, &err));
    info = default_info(&h2);
    info.msix_pba_offset = 0x2040; /* inside the 128-byte table */
    assert_null(vfio_user_pci_create(h2.s, &info, &err));
    info = default_info(&h2);
    info.msix_table_bar = 6;
    assert_null(vfio_user_pci_create(h2.s, &info, &err));
    info = default_info(&h2);
    info.intx_pin = 5;
    assert_null(vfio_user_pci_create(h2.s, &info, &err));
    assert_int_equal(err, -EINVAL);
    vfio_user_server_destroy(h2.s);
}

/* ---- power management, PCIe control, FLR ---- */

static void test_power_state(void **state)
{
    struct harness *h = *state;
    uint32_t pmcsr = find_cap(h, PCI_CAP_ID_PM) + PCI_PM_PMCSR;
    cfg_write(h, pmcsr, 2, 0xffff);
    assert_int_equal(cfg_read(h, pmcsr, 2), 3 | PCI_PM_NO_SOFT_RESET);
    /* D1/D2 are not supported: the write is discarded. */
    cfg_write(h, pmcsr, 2, 1);
    assert_int_equal(cfg_read(h, pmcsr, 2), 3 | PCI_PM_NO_SOFT_RESET);
    cfg_write(h, pmcsr, 2, 0);
    assert_int_equal(cfg_read(h, pmcsr, 2), PCI_PM_NO_SOFT_RESET);
}

static void test_devctl_fields(void **state)
{
    struct harness *h = *state;
    uint32_t devctl = find_cap(h, PCI_CAP_ID_EXP) + PCI_EXP_DEVCTL;
    assert_int_equal(cfg_read(h, devctl, 2), 0x2810);
    /* Max payload 4096 (5) clamps to the 256 bytes the device supports; reserved bits 8-10 stay 0. */
    cfg_write(h, devctl, 2, 0x0000 | (5u << 5) | 0x0700 | 0x000f);
    assert_int_equal(cfg_read(h, devctl, 2), (1u << 5) | 0x000f);
    assert_int_equal(h->log.function_resets, 0);
}

static void test_flr(void **state)
{
    struct harness *h = *state;
    uint32_t devctl = find_cap(h, PCI_CAP_ID_EXP) + PCI_EXP_DEVCTL;
    uint32_t msi = find_cap(h, PCI_CAP_ID_MSI), msix = find_cap(h, PCI_CAP_ID_MSIX);
    uint8_t pristine[VFIO_USER_PCI_CONFIG_SIZE];

    memcpy(pristine, vfio_user_pci_config(h->p), sizeof(pristine));
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER);
    cfg_write(h, 0x10, 4, 0xfe000000);
    cfg_write(h, 0x3c, 1, 11);
    cfg_write(h, msi + PCI_MSI_CTRL, 2, PCI_MSI_CTRL_ENABLE);
    cfg_write(h, msix + PCI_MSIX_CTRL, 2, PCI_MSIX_CTRL_ENABLE);
    assert_true(vfio_user_pci_msix_enabled(h->p));
    unsigned writes = h->log.config_writes;

    cfg_write(h, devctl, 2, 0x2810 | PCI_EXP_DEVCTL_FLR);
    assert_int_equal(h->log.function_resets, 1);
    assert_int_equal(h->log.config_writes, writes + 1);
    assert_memory_equal(vfio_user_pci_config(h->p), pristine, sizeof(pristine));
    assert_int_equal(cfg_read(h, devctl, 2) & PCI_EXP_DEVCTL_FLR, 0);
    assert_false(vfio_user_pci_msix_enabled(h->p));
    assert_false(vfio_user_pci_msi_enabled(h->p));
    assert_false(vfio_user_pci_bus_master(h->p));
}

/* ---- INTx ---- */

static void test_intx_delivery(void **state)
{
    struct harness *h = *state;

    assert_int_equal(vfio_user_pci_irq(h->p, 0), 0);
    assert_int_equal(fired(h->intx_fd), 1);
    assert_true(cfg_read(h, PCI_CFG_STATUS, 2) & PCI_STATUS_INTX);
    vfio_user_pci_intx_deassert(h->p);
    assert_false(cfg_read(h, PCI_CFG_STATUS, 2) & PCI_STATUS_INTX);

    /* INTx disabled: recorded in the status register, not sent. */
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_INTX_DISABLE);
    assert_int_equal(vfio_user_pci_irq(h->p, 0), 0);
    assert_int_equal(fired(h->intx_fd), 0);
    assert_true(cfg_read(h, PCI_CFG_STATUS, 2) & PCI_STATUS_INTX);
    /* Re-enabling with the interrupt still asserted raises it. */
    cfg_write(h, PCI_CFG_COMMAND, 2, 0);
    assert_int_equal(fired(h->intx_fd), 1);
    /* Re-enabling with nothing asserted raises nothing. */
    vfio_user_pci_intx_deassert(h->p);
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_INTX_DISABLE);
    cfg_write(h, PCI_CFG_COMMAND, 2, 0);
    assert_int_equal(fired(h->intx_fd), 0);
}

static void test_intx_without_pin(void **state)
{
    (void)state;
    struct harness h2 = {0};
    struct vfio_user_pci_info info = default_info(&h2);
    int err = 0;

    info.intx_pin = 0;
    h2.s = make_server();
    h2.p = vfio_user_pci_create(h2.s, &info, &err);
    assert_non_null(h2.p);
    assert_int_equal(cfg_read(&h2, PCI_CFG_INT_PIN, 1), 0);
    assert_int_equal(h2.s->irqs[VFIO_PCI_INTX_IRQ_INDEX].count, 0);
    assert_int_equal(vfio_user_pci_irq(h2.p, 0), 0);
    assert_true(cfg_read(&h2, PCI_CFG_STATUS, 2) & PCI_STATUS_INTX);
    vfio_user_server_destroy(h2.s);
    vfio_user_pci_destroy(h2.p);
}

/* ---- MSI ---- */

static void test_msi_enable_and_mme_clamp(void **state)
{
    struct harness *h = *state;
    uint32_t msi = find_cap(h, PCI_CAP_ID_MSI);

    cfg_write(h, msi + PCI_MSI_CTRL, 2, 0xffff);
    uint32_t ctrl = cfg_read(h, msi + PCI_MSI_CTRL, 2);
    assert_true(ctrl & PCI_MSI_CTRL_ENABLE);
    assert_int_equal((ctrl >> 4) & 7, 2); /* 7 requested, 4 vectors capable */
    assert_int_equal((ctrl >> 1) & 7, 2); /* MMC read-only */
    assert_true(vfio_user_pci_msi_enabled(h->p));
    cfg_write(h, msi + PCI_MSI_CTRL, 2, PCI_MSI_CTRL_ENABLE | (1u << 4));
    assert_int_equal((cfg_read(h, msi + PCI_MSI_CTRL, 2) >> 4) & 7, 1);

    cfg_write(h, msi + PCI_MSI_ADDR_LO, 4, 0xfee00003);
    assert_int_equal(cfg_read(h, msi + PCI_MSI_ADDR_LO, 4), 0xfee00000);
    cfg_write(h, msi + PCI_MSI_ADDR_HI, 4, 0x12345678);
    assert_int_equal(cfg_read(h, msi + PCI_MSI_ADDR_HI, 4), 0x12345678);
    cfg_write(h, msi + PCI_MSI_DATA, 4, 0xffff4021);
    assert_int_equal(cfg_read(h, msi + PCI_MSI_DATA, 4), 0x4021);
    cfg_write(h, msi + PCI_MSI_MASK, 4, 0xffffffff);
    assert_int_equal(cfg_read(h, msi + PCI_MSI_MASK, 4), 0xf);
    cfg_write(h, msi + PCI_MSI_PENDING, 4, 0xffffffff);
    assert_int_equal(cfg_read(h, msi + PCI_MSI_PENDING, 4), 0);
}

static void test_msi_delivery(void **state)
{
    struct harness *h = *state;
    uint32_t msi = find_cap(h, PCI_CAP_ID_MSI);

    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER);
    cfg_write(h, msi + PCI_MSI_CTRL, 2, PCI_MSI_CTRL_ENABLE | (1u << 4)); /* 2 vectors */
    assert_int_equal(vfio_user_pci_irq(h->p, 1), 0);
    assert_int_equal(fired(h->msi_fd[1]), 1);
    assert_int_equal(fired(h->msi_fd[0]), 0);
    assert_int_equal(fired(h->intx_fd), 0);
    assert_false(cfg_read(h, PCI_CFG_STATUS, 2) & PCI_STATUS_INTX);
    /* Beyond the enabled vectors. */
    assert_int_equal(vfio_user_pci_irq(h->p, 2), -EINVAL);

    /* Masked: pending, then sent on unmask. */
    cfg_write(h, msi + PCI_MSI_MASK, 4, 0x1);
    assert_int_equal(vfio_user_pci_irq(h->p, 0), 0);
    assert_int_equal(fired(h->msi_fd[0]), 0);
    assert_int_equal(cfg_read(h, msi + PCI_MSI_PENDING, 4), 0x1);
    cfg_write(h, msi + PCI_MSI_MASK, 4, 0);
    assert_int_equal(fired(h->msi_fd[0]), 1);
    assert_int_equal(cfg_read(h, msi + PCI_MSI_PENDING, 4), 0);

    /* Bus mastering off: no memory write allowed; pending, -EPERM, sent when re-enabled. */
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY);
    assert_int_equal(vfio_user_pci_irq(h->p, 1), -EPERM);
    assert_int_equal(fired(h->msi_fd[1]), 0);
    assert_int_equal(cfg_read(h, msi + PCI_MSI_PENDING, 4), 0x2);
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER);
    assert_int_equal(fired(h->msi_fd[1]), 1);
    assert_int_equal(cfg_read(h, msi + PCI_MSI_PENDING, 4), 0);

    /* MSI disabled again: back to INTx. */
    cfg_write(h, msi + PCI_MSI_CTRL, 2, 0);
    assert_int_equal(vfio_user_pci_irq(h->p, 0), 0);
    assert_int_equal(fired(h->intx_fd), 1);
    assert_int_equal(fired(h->msi_fd[0]), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_header_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capability_chain, setup, teardown),
        cmocka_unit_test(test_capability_chain_without_msi),
        cmocka_unit_test_setup_teardown(test_server_registration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_bits_keep_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_register_mask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_w1c, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unaligned_write_is_bytewise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_write_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_sizing_64bit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_sizing_large_64bit_prefetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_sizing_32bit_and_prefetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_bar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unimplemented_bar_and_rom_read_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_reset_keeps_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_setup_bar_validation, setup, teardown),
        cmocka_unit_test(test_setup_bar_msix_must_fit),
        cmocka_unit_test(test_create_validation),
        cmocka_unit_test_setup_teardown(test_power_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_devctl_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intx_delivery, setup, teardown),
        cmocka_unit_test(test_intx_without_pin),
        cmocka_unit_test_setup_teardown(test_msi_enable_and_mme_clamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msi_delivery, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
