/* SPDX-License-Identifier: MIT */
/*
 * MSI-X table and PBA emulation and MSI-X delivery of the vfio-user PCI
 * device model, and the BAR wrapper that routes accesses between the table,
 * the PBA and the device's own BAR callback.
 *
 * The masking facts follow the vfio rule that QEMU's vfio-user-pci relies on:
 * the VMM emulates the MSI-X table the guest programs and never writes the
 * device's copy; it enables vectors by giving them eventfds and masks them
 * with SET_IRQS MASK/UNMASK.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <cmocka.h>

#include "vfio-user/pci_internal.h"
#include "vnvme/vfio_user_pci.h"

#include "raw_client.h"

#define TABLE 0x2000u
#define PBA 0x3000u

static uint32_t msix_cap(struct pci_harness *h)
{
    uint32_t c = find_cap(h, PCI_CAP_ID_MSIX);
    assert_int_not_equal(c, 0);
    return c;
}

static void msix_ctrl(struct pci_harness *h, uint16_t v)
{
    cfg_write(h, msix_cap(h) + PCI_MSIX_CTRL, 2, v);
}

static uint32_t bar_read32(struct pci_harness *h, uint64_t off)
{
    uint32_t v = 0xdeadbeef;
    assert_int_equal(bar_io(h, 0, &v, 4, off, false), 4);
    return v;
}

static void bar_write32(struct pci_harness *h, uint64_t off, uint32_t v)
{
    assert_int_equal(bar_io(h, 0, &v, 4, off, true), 4);
}

static uint64_t pba(struct pci_harness *h)
{
    uint64_t v = 0;
    assert_int_equal(bar_io(h, 0, &v, 8, PBA, false), 8);
    return v;
}

/* Masking as a VMM does it: SET_IRQS MASK/UNMASK on the MSI-X index. */
static void vector_mask(struct pci_harness *h, uint32_t vector, bool masked)
{
    pci_set_irqs(h, VFIO_PCI_MSIX_IRQ_INDEX, masked ? VFIO_IRQ_SET_ACTION_MASK : VFIO_IRQ_SET_ACTION_UNMASK, vector, 1,
                 NULL);
}

/* Take a vector's eventfd away (fd -1), as QEMU does between its vector set-ups. */
static void vector_no_eventfd(struct pci_harness *h, uint32_t vector)
{
    int none = -1;
    pci_set_irqs(h, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, vector, 1, &none);
    close(h->msix_fd[vector]);
    h->msix_fd[vector] = -1;
}

static void vector_new_eventfd(struct pci_harness *h, uint32_t vector)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(fd >= 0);
    if (h->msix_fd[vector] >= 0)
        close(h->msix_fd[vector]);
    h->msix_fd[vector] = fd;
    pci_set_irqs(h, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, vector, 1, &fd);
}

/* Bus master on, MSI-X enabled, function unmasked. */
static void enable_msix(struct pci_harness *h)
{
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER);
    msix_ctrl(h, PCI_MSIX_CTRL_ENABLE);
}

static void test_table_reset_values(void **state)
{
    struct pci_harness *h = *state;
    for (uint32_t v = 0; v < 8; v++) {
        assert_int_equal(bar_read32(h, TABLE + v * 16), 0);
        assert_int_equal(bar_read32(h, TABLE + v * 16 + 4), 0);
        assert_int_equal(bar_read32(h, TABLE + v * 16 + 8), 0);
        assert_int_equal(bar_read32(h, TABLE + v * 16 + 12), 1);
    }
    assert_int_equal(pba(h), 0);
    assert_true(vfio_user_pci_msix_vector_masked(h->p, 8)); /* out of range never deliverable */
}

/*
 * A vector whose table entry nobody wrote fires once MSI-X is on and it has an
 * eventfd: QEMU emulates the table and never writes the device's copy, so a
 * device gating on its own (masked-from-reset) entry never interrupts a VM.
 */
static void test_untouched_table_delivers(void **state)
{
    struct pci_harness *h = *state;
    enable_msix(h);
    for (uint32_t v = 0; v < 8; v++) {
        assert_false(vfio_user_pci_msix_vector_masked(h->p, v));
        assert_int_equal(vfio_user_pci_irq(h->p, v), 0);
        assert_int_equal(fired(h->msix_fd[v]), 1);
    }
    assert_int_equal(pba(h), 0);
}

/* The device table's Mask bit is storage: it neither holds nor releases a vector. */
static void test_table_mask_bit_is_not_a_gate(void **state)
{
    struct pci_harness *h = *state;
    enable_msix(h);
    bar_write32(h, TABLE + 3 * 16 + 12, 1);
    assert_int_equal(vfio_user_pci_irq(h->p, 3), 0);
    assert_int_equal(fired(h->msix_fd[3]), 1);
    /* Held by SET_IRQS MASK: writing the table's bit does not release it. */
    vector_mask(h, 3, true);
    assert_int_equal(vfio_user_pci_irq(h->p, 3), 0);
    bar_write32(h, TABLE + 3 * 16 + 12, 0);
    assert_int_equal(fired(h->msix_fd[3]), 0);
    assert_int_equal(pba(h), 1u << 3);
    vector_mask(h, 3, false);
    assert_int_equal(fired(h->msix_fd[3]), 1);
    assert_int_equal(pba(h), 0);
}

/*
 * A vector that fires while it has no eventfd (the VMM has not enabled it, or
 * is re-doing its vectors) is pending and goes out when an eventfd comes.
 */
static void test_no_eventfd_keeps_pending(void **state)
{
    struct pci_harness *h = *state;
    enable_msix(h);
    vector_no_eventfd(h, 6);
    assert_int_equal(vfio_user_pci_irq(h->p, 6), -ENOENT);
    assert_int_equal(pba(h), 1u << 6);
    assert_int_equal(vfio_user_pci_irq(h->p, 6), -ENOENT); /* still one pending interrupt */
    vector_new_eventfd(h, 6);
    assert_int_equal(fired(h->msix_fd[6]), 1);
    assert_int_equal(pba(h), 0);
    /* Disabling the whole index (count 0) and enabling it again, QEMU's resize. */
    pci_set_irqs(h, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL);
    for (uint32_t v = 0; v < 8; v++) {
        close(h->msix_fd[v]);
        h->msix_fd[v] = -1;
    }
    assert_int_equal(vfio_user_pci_irq(h->p, 1), -ENOENT);
    int fds[8];
    for (uint32_t v = 0; v < 8; v++)
        h->msix_fd[v] = fds[v] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pci_set_irqs(h, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 8, fds);
    assert_int_equal(fired(h->msix_fd[1]), 1);
    assert_int_equal(fired(h->msix_fd[0]), 0);
    assert_int_equal(pba(h), 0);
}

static void test_table_write_read(void **state)
{
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state;
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
    struct pci_harness *h = *state;
    msix_ctrl(h, 0xffff);
    assert_int_equal(cfg_read(h, msix_cap(h) + PCI_MSIX_CTRL, 2), PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK | 7);
    assert_true(vfio_user_pci_msix_enabled(h->p));
    msix_ctrl(h, 0);
    assert_int_equal(cfg_read(h, msix_cap(h) + PCI_MSIX_CTRL, 2), 7);
}

static void test_disabled_uses_intx(void **state)
{
    struct pci_harness *h = *state;
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER);
    assert_int_equal(vfio_user_pci_irq(h->p, 0), 0);
    assert_int_equal(fired(h->intx_fd), 1);
    assert_int_equal(fired(h->msix_fd[0]), 0);
    assert_int_equal(pba(h), 0);
}

static void test_enabled_unmasked_fires(void **state)
{
    struct pci_harness *h = *state;
    enable_msix(h);
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
    struct pci_harness *h = *state;
    enable_msix(h);
    vector_mask(h, 2, true);
    assert_true(vfio_user_pci_msix_vector_masked(h->p, 2));
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
    struct pci_harness *h = *state;
    enable_msix(h);
    vector_mask(h, 3, true);
    msix_ctrl(h, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK);
    assert_true(vfio_user_pci_msix_vector_masked(h->p, 1));
    assert_int_equal(vfio_user_pci_irq(h->p, 1), 0);
    assert_int_equal(vfio_user_pci_irq(h->p, 3), 0); /* also masked through SET_IRQS */
    assert_int_equal(fired(h->msix_fd[1]), 0);
    assert_int_equal(pba(h), (1u << 1) | (1u << 3));
    msix_ctrl(h, PCI_MSIX_CTRL_ENABLE);
    assert_int_equal(fired(h->msix_fd[1]), 1);
    assert_int_equal(fired(h->msix_fd[3]), 0);
    assert_int_equal(pba(h), 1u << 3);
    vector_mask(h, 3, false);
    assert_int_equal(fired(h->msix_fd[3]), 1);
    assert_int_equal(pba(h), 0);
}

static void test_pending_fires_on_enable(void **state)
{
    struct pci_harness *h = *state;
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER);
    /* Enabled with the function masked: the usual driver setup sequence. */
    msix_ctrl(h, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK);
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
    struct pci_harness *h = *state;
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY);
    msix_ctrl(h, PCI_MSIX_CTRL_ENABLE);
    assert_int_equal(vfio_user_pci_irq(h->p, 4), -EPERM);
    assert_int_equal(fired(h->msix_fd[4]), 0);
    assert_int_equal(pba(h), 1u << 4);
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER);
    assert_int_equal(fired(h->msix_fd[4]), 1);
    assert_int_equal(pba(h), 0);
}

static void test_intx_disable_irrelevant_to_msix(void **state)
{
    struct pci_harness *h = *state;
    cfg_write(h, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER | PCI_CMD_INTX_DISABLE);
    msix_ctrl(h, PCI_MSIX_CTRL_ENABLE);
    assert_int_equal(vfio_user_pci_irq(h->p, 0), 0);
    assert_int_equal(fired(h->msix_fd[0]), 1);
}

static void test_flr_resets_msix(void **state)
{
    struct pci_harness *h = *state;
    uint32_t devctl = find_cap(h, PCI_CAP_ID_EXP) + PCI_EXP_DEVCTL;

    enable_msix(h);
    bar_write32(h, TABLE + 16, 0xfee00000);
    msix_ctrl(h, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK);
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
    struct pci_harness *h = *state;
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
    struct pci_harness h2 = {0};
    struct vfio_user_pci_info info = pci_harness_default_info(&h2);
    uint32_t v = 0xffffffff;
    int err = 0;

    info.msix_table_bar = 2;
    info.msix_table_offset = 0;
    info.msix_pba_bar = 2;
    info.msix_pba_offset = 0x800;
    h2.s = make_server(NULL, NULL, 0);
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
    struct pci_harness *h2 = calloc(1, sizeof(*h2));
    struct vfio_user_pci_info info = pci_harness_default_info(h2);
    uint64_t word = 0;
    void *st = h2;

    info.msix_vectors = 100;
    info.msix_table_offset = 0;
    info.msix_pba_offset = 0x1000;
    pci_harness_start(h2, &info);
    assert_int_equal(vfio_user_pci_setup_bar(h2->p, 0, 0x2000, 0, dev_bar_access, -1, 0, 0, NULL), 0);
    cfg_write(h2, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER);
    cfg_write(h2, msix_cap(h2) + PCI_MSIX_CTRL, 2, PCI_MSIX_CTRL_ENABLE);
    assert_int_equal(cfg_read(h2, msix_cap(h2) + PCI_MSIX_CTRL, 2) & 0x7ff, 99);
    /* The harness gives only the first 64 vectors eventfds: 99 is held. */
    assert_int_equal(vfio_user_pci_irq(h2->p, 99), -ENOENT);
    assert_int_equal(bar_io(h2, 0, &word, 8, 0x1008, false), 8);
    assert_int_equal(word, 1ull << (99 - 64));
    /* Its eventfd arrives: delivered, and its bit in the second PBA qword clears. */
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pci_set_irqs(h2, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 99, 1, &fd);
    assert_int_equal(fired(fd), 1);
    close(fd);
    assert_int_equal(bar_io(h2, 0, &word, 8, 0x1008, false), 8);
    assert_int_equal(word, 0);
    /* Past the two PBA qwords the BAR belongs to the device again. */
    assert_int_equal(bar_io(h2, 0, &word, 8, 0x1010, false), 8);
    assert_int_equal(h2->log.bar_calls, 1);
    assert_int_equal(vfio_user_pci_irq(h2->p, 100), -EINVAL);
    pci_harness_teardown(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_table_reset_values, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_untouched_table_delivers, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_table_mask_bit_is_not_a_gate, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_no_eventfd_keeps_pending, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_table_write_read, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_table_bad_shapes, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_msix_ctrl_writable_bits, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_disabled_uses_intx, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_enabled_unmasked_fires, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_vector_mask_sets_pba, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_function_mask, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_pending_fires_on_enable, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_bus_master_off_keeps_pending, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_intx_disable_irrelevant_to_msix, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_flr_resets_msix, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test_setup_teardown(test_bar_forwards_other_offsets, pci_harness_setup, pci_harness_teardown),
        cmocka_unit_test(test_msix_only_bar_without_callback),
        cmocka_unit_test(test_many_vectors_pba_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
