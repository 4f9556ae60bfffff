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
#include <unistd.h>
#include <cmocka.h>

#include "vfio-user/pci_internal.h"
#include "vfio-user/server_internal.h"
#include "vnvme/vfio_user_pci.h"

#include "raw_client.h"

/* ---- header and capabilities ---- */

static void test_header_values(void **state)
{
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state;
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
    struct pci_harness h2 = {0};
    struct vfio_user_pci_info info = pci_harness_default_info(&h2);
    int err = 0;

    info.msi_vectors = 0;
    info.msix_vectors = 0;
    h2.s = make_server(NULL, NULL, 0);
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
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state; /* BAR0: 16 KiB, 64-bit, not prefetchable */
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
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state;
    assert_int_equal(vfio_user_pci_setup_bar(h->p, 2, 0x100, VFIO_USER_PCI_BAR_IO, dev_bar_access, -1, 0, 0, NULL), 0);
    assert_int_equal(cfg_read(h, 0x18, 4), 0x1);
    cfg_write(h, 0x18, 4, 0xffffffff);
    assert_int_equal(cfg_read(h, 0x18, 4), 0xffffff01);
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_IO);
    assert_int_equal(cfg_read(h, PCI_CFG_COMMAND, 2), PCI_CMD_IO);
}

static void test_unimplemented_bar_and_rom_read_zero(void **state)
{
    struct pci_harness *h = *state;
    for (uint32_t off = 0x18; off <= 0x24; off += 4) {
        cfg_write(h, off, 4, 0xffffffff);
        assert_int_equal(cfg_read(h, off, 4), 0);
    }
    cfg_write(h, 0x30, 4, 0xffffffff);
    assert_int_equal(cfg_read(h, 0x30, 4), 0);
}

static void test_bar_reset_keeps_type(void **state)
{
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state;
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
    struct pci_harness h2 = {0};
    struct vfio_user_pci_info info = pci_harness_default_info(&h2);
    int err = 0;

    info.msix_table_bar = 2;
    info.msix_pba_bar = 3;
    info.msix_table_offset = 0;
    info.msix_pba_offset = 0;
    h2.s = make_server(NULL, NULL, 0);
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
    struct pci_harness h2 = {0};
    struct vfio_user_pci_info info;
    int err = 0;

    h2.s = make_server(NULL, NULL, 0);
    info = pci_harness_default_info(&h2);
    assert_null(vfio_user_pci_create(NULL, &info, &err));
    assert_int_equal(err, -EINVAL);
    info.msi_vectors = 3;
    err = 0;
    assert_null(vfio_user_pci_create(h2.s, &info, &err));
    assert_int_equal(err, -EINVAL);
    info = pci_harness_default_info(&h2);
    info.msi_vectors = 64;
    assert_null(vfio_user_pci_create(h2.s, &info, &err));
    info = pci_harness_default_info(&h2);
    info.msix_vectors = 2049;
    assert_null(vfio_user_pci_create(h2.s, &info, &err));
    info = pci_harness_default_info(&h2);
    info.msix_table_offset = 0x2004;
    assert_null(vfio_user_pci_create(h2.s, &info, &err));
    info = pci_harness_default_info(&h2);
    info.msix_pba_offset = 0x2040; /* inside the 128-byte table */
    assert_null(vfio_user_pci_create(h2.s, &info, &err));
    info = pci_harness_default_info(&h2);
    info.msix_table_bar = 6;
    assert_null(vfio_user_pci_create(h2.s, &info, &err));
    info = pci_harness_default_info(&h2);
    info.intx_pin = 5;
    assert_null(vfio_user_pci_create(h2.s, &info, &err));
    assert_int_equal(err, -EINVAL);
    vfio_user_server_destroy(h2.s);
}

/* ---- power management, PCIe control, FLR ---- */

static void test_power_state(void **state)
{
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state;
    uint32_t devctl = find_cap(h, PCI_CAP_ID_EXP) + PCI_EXP_DEVCTL;
    assert_int_equal(cfg_read(h, devctl, 2), 0x2810);
    /* Max payload 4096 (5) clamps to the 256 bytes the device supports; reserved bits 8-10 stay 0. */
    cfg_write(h, devctl, 2, 0x0000 | (5u << 5) | 0x0700 | 0x000f);
    assert_int_equal(cfg_read(h, devctl, 2), (1u << 5) | 0x000f);
    assert_int_equal(h->log.function_resets, 0);
}

static void test_flr(void **state)
{
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state;

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
    struct pci_harness h2 = {0};
    struct vfio_user_pci_info info = pci_harness_default_info(&h2);
    int err = 0;

    info.intx_pin = 0;
    h2.s = make_server(NULL, NULL, 0);
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
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state;
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
        cmocka_unit_test_setup_teardown(test_header_values, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_capability_chain, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test(test_capability_chain_without_msi),
        cmocka_unit_test_setup_teardown(test_server_registration, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_read_only_bits_keep_value, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_command_register_mask, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_status_w1c, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_access_bounds, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_unaligned_write_is_bytewise, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_config_write_callback, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_bar_sizing_64bit, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_bar_sizing_large_64bit_prefetch, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_bar_sizing_32bit_and_prefetch, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_io_bar, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_unimplemented_bar_and_rom_read_zero, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_bar_reset_keeps_type, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_setup_bar_validation, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test(test_setup_bar_msix_must_fit),
        cmocka_unit_test(test_create_validation),
        cmocka_unit_test_setup_teardown(test_power_state, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_devctl_fields, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_flr, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_intx_delivery, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test(test_intx_without_pin),
        cmocka_unit_test_setup_teardown(test_msi_enable_and_mme_clamp, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_msi_delivery, pci_harness_setup, pci_harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
