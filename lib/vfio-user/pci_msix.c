/* SPDX-License-Identifier: MIT */
/*
 * MSI-X table and Pending Bit Array emulation, and MSI-X delivery.
 *
 * The table and PBA live in BAR space; pci.c routes accesses that touch them
 * here. Who masks what follows the vfio rule, not bare PCI: a VMM emulates the
 * MSI-X table the guest programs and never writes the device's copy (QEMU's
 * vfio-user-pci does exactly that). It enables a vector by giving it an eventfd
 * through SET_IRQS and masks it with SET_IRQS MASK (server_irq.c keeps such a
 * vector pending). So the Mask bit of the device's table is storage only: were
 * it a gate, every vector would stay masked from reset under such a VMM and no
 * interrupt would ever leave. What does gate here is config space, which VMMs
 * forward: Function Mask, MSI-X Enable and Bus Master Enable. A vector held by
 * those is recorded in the PBA and sent when the obstacle goes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vfio-user/pci_internal.h"

static uint64_t table_bytes(const struct vfio_user_pci *p)
{
    return (uint64_t)p->info.msix_vectors * PCI_MSIX_ENTRY_SIZE;
}

static uint64_t pba_bytes(const struct vfio_user_pci *p)
{
    return (uint64_t)p->msix_pba_words * sizeof(uint64_t);
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

static bool range_within(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a >= b && alen <= blen && a - b <= blen - alen;
}

int pci_msix_init(struct vfio_user_pci *p)
{
    uint32_t n = p->info.msix_vectors;

    if (n == 0)
        return 0;
    p->msix_pba_words = (n + 63) / 64;
    p->msix_table = calloc(n, PCI_MSIX_ENTRY_SIZE);
    p->msix_pba = calloc(p->msix_pba_words, sizeof(uint64_t));
    if (!p->msix_table || !p->msix_pba) {
        pci_msix_fini(p);
        return -ENOMEM;
    }
    pci_msix_reset(p);
    return 0;
}

void pci_msix_fini(struct vfio_user_pci *p)
{
    free(p->msix_table);
    free(p->msix_pba);
    p->msix_table = NULL;
    p->msix_pba = NULL;
}

void pci_msix_reset(struct vfio_user_pci *p)
{
    if (!p->msix_table)
        return;
    memset(p->msix_table, 0, table_bytes(p));
    for (uint32_t v = 0; v < p->info.msix_vectors; v++)
        p->msix_table[v * 4 + 3] = PCI_MSIX_ENTRY_CTRL_MASKED;
    memset(p->msix_pba, 0, pba_bytes(p));
}

bool pci_msix_claims(const struct vfio_user_pci *p, uint32_t bar, uint64_t offset, size_t count)
{
    if (!p->msix_table)
        return false;
    if (bar == p->info.msix_table_bar && ranges_overlap(offset, count, p->info.msix_table_offset, table_bytes(p)))
        return true;
    return bar == p->info.msix_pba_bar && ranges_overlap(offset, count, p->info.msix_pba_offset, pba_bytes(p));
}

static uint16_t msix_ctrl(const struct vfio_user_pci *p)
{
    return pci_cfg_get16(p, p->msix_cap + PCI_MSIX_CTRL);
}

bool vfio_user_pci_msix_enabled(const struct vfio_user_pci *p)
{
    return p->msix_cap && (msix_ctrl(p) & PCI_MSIX_CTRL_ENABLE);
}

bool vfio_user_pci_msix_vector_masked(const struct vfio_user_pci *p, uint32_t vector)
{
    if (!p->msix_table || vector >= p->info.msix_vectors)
        return true;
    return (msix_ctrl(p) & PCI_MSIX_CTRL_FMASK) ||
           vfio_user_server_irq_masked(p->server, VFIO_PCI_MSIX_IRQ_INDEX, vector);
}

static void set_pending(struct vfio_user_pci *p, uint32_t vector)
{
    p->msix_pba[vector / 64] |= 1ull << (vector % 64);
}

/*
 * Bus mastering off: an MSI-X message is a memory write, which the function
 * may not issue. The vector is kept pending (like a masked one) and goes out
 * once the driver sets Bus Master Enable; -EPERM tells the caller it did not
 * go out now.
 */
int pci_msix_irq(struct vfio_user_pci *p, uint32_t vector)
{
    if (vector >= p->info.msix_vectors)
        return -EINVAL;
    if (msix_ctrl(p) & PCI_MSIX_CTRL_FMASK) {
        set_pending(p, vector);
        return 0;
    }
    if (!vfio_user_pci_bus_master(p)) {
        set_pending(p, vector);
        return -EPERM;
    }
    /*
     * No eventfd: the VMM has not enabled the vector yet, or is between taking
     * its vectors down and setting them up again (QEMU does so when the guest
     * asks for more vectors). Hardware behind vfio keeps such a vector masked
     * and pending, so it is delivered once the eventfd comes.
     */
    if (vfio_user_server_irq_fd(p->server, VFIO_PCI_MSIX_IRQ_INDEX, vector) < 0) {
        set_pending(p, vector);
        return -ENOENT;
    }
    /* A vector masked through SET_IRQS is kept pending by the server. */
    return vfio_user_server_irq_trigger(p->server, VFIO_PCI_MSIX_IRQ_INDEX, vector);
}

void pci_msix_deliver_pending(struct vfio_user_pci *p)
{
    if (!vfio_user_pci_msix_enabled(p) || (msix_ctrl(p) & PCI_MSIX_CTRL_FMASK) || !vfio_user_pci_bus_master(p))
        return;
    for (uint32_t w = 0; w < p->msix_pba_words; w++) {
        uint64_t bits = p->msix_pba[w];
        while (bits) {
            uint32_t vector = w * 64 + (uint32_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (vfio_user_server_irq_fd(p->server, VFIO_PCI_MSIX_IRQ_INDEX, vector) < 0)
                continue;
            p->msix_pba[w] &= ~(1ull << (vector % 64));
            (void)vfio_user_server_irq_trigger(p->server, VFIO_PCI_MSIX_IRQ_INDEX, vector);
        }
    }
}

void vfio_user_pci_irqs_changed(struct vfio_user_pci *p)
{
    if (p && p->msix_table)
        pci_msix_deliver_pending(p);
}

/* Only 4- and 8-byte naturally aligned accesses are defined by the spec for the table and PBA. */
static bool access_shape_ok(uint64_t offset, size_t count)
{
    return (count == 4 || count == 8) && offset % count == 0;
}

/*
 * Pending is what this function holds (Function Mask, bus mastering off) and
 * what the server holds for vectors masked through SET_IRQS: QEMU reads the
 * device's PBA for the guest, so both must show.
 */
static void pba_read(const struct vfio_user_pci *p, uint8_t *buf, size_t count, uint64_t rel)
{
    for (size_t i = 0; i < count; i++) {
        uint8_t byte = ((const uint8_t *)p->msix_pba)[rel + i];
        for (uint32_t b = 0; b < 8; b++) {
            uint64_t vector = (rel + i) * 8 + b;
            if (vector < p->info.msix_vectors &&
                vfio_user_server_irq_pending(p->server, VFIO_PCI_MSIX_IRQ_INDEX, (uint32_t)vector))
                byte |= (uint8_t)(1u << b);
        }
        buf[i] = byte;
    }
}

static ssize_t table_access(struct vfio_user_pci *p, uint8_t *buf, size_t count, uint64_t rel, bool is_write)
{
    uint32_t first = (uint32_t)(rel / 4);

    if (!is_write) {
        memcpy(buf, &p->msix_table[first], count);
        return (ssize_t)count;
    }
    for (uint32_t i = 0; i < count / 4; i++) {
        uint32_t dw = first + i;
        uint32_t val;

        memcpy(&val, buf + i * 4, sizeof(val));
        if (dw % 4 == 3)
            val &= PCI_MSIX_ENTRY_CTRL_MASKED; /* the other vector control bits are reserved */
        p->msix_table[dw] = val;
    }
    return (ssize_t)count;
}

ssize_t pci_msix_bar_access(struct vfio_user_pci *p, uint32_t bar, uint8_t *buf, size_t count, uint64_t offset,
                            bool is_write)
{
    if (!access_shape_ok(offset, count))
        return -EINVAL;
    if (bar == p->info.msix_table_bar && range_within(offset, count, p->info.msix_table_offset, table_bytes(p)))
        return table_access(p, buf, count, offset - p->info.msix_table_offset, is_write);
    if (bar == p->info.msix_pba_bar && range_within(offset, count, p->info.msix_pba_offset, pba_bytes(p))) {
        /* The PBA is read-only; writes are dropped as the spec allows. */
        if (!is_write)
            pba_read(p, buf, count, offset - p->info.msix_pba_offset);
        return (ssize_t)count;
    }
    return -EINVAL; /* straddles the table or PBA edge */
}
