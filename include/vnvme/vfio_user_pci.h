/* SPDX-License-Identifier: MIT */
/*
 * PCI device model on top of a vfio-user server: a type-0 configuration
 * space with a capability list (Power Management, MSI, MSI-X, PCI Express),
 * BARs that answer sizing writes the way hardware does, the command register
 * (memory/bus-master enable, INTx disable), and the MSI-X table and PBA.
 *
 * vfio_user_pci_irq() is how a device raises an interrupt: it delivers
 * MSI-X, MSI or INTx, whichever the driver enabled, honouring the command
 * register, the MSI-X function mask and SET_IRQS masks (a held vector is
 * recorded in the PBA and fires when released). The Mask bits of the device's
 * MSI-X table are not a gate: VMMs emulate the table the guest sees and mask
 * vectors through SET_IRQS, never through the device's copy (see pci_msix.c).
 */
#ifndef VNVME_VFIO_USER_PCI_H
#define VNVME_VFIO_USER_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "vnvme/vfio_user_server.h"

#define VFIO_USER_PCI_CONFIG_SIZE 4096u /* PCI Express extended configuration space */

/* BAR flags. */
#define VFIO_USER_PCI_BAR_MEM64 (1u << 0) /* 64-bit memory BAR: takes the next BAR slot too */
#define VFIO_USER_PCI_BAR_PREFETCH (1u << 1)
#define VFIO_USER_PCI_BAR_IO (1u << 2)

struct vfio_user_pci;

struct vfio_user_pci_ops {
    /*
     * The driver wrote config space at [offset, offset+count) and the write
     * has been applied (read the new values with vfio_user_pci_config()).
     */
    void (*config_write)(void *dev_ctx, uint32_t offset, uint32_t count);
    /* Function level reset (PCIe FLR or DEVICE_RESET): reset device state. */
    void (*function_reset)(void *dev_ctx);
};

struct vfio_user_pci_info {
    uint16_t vendor_id;
    uint16_t device_id;
    uint16_t subsys_vendor_id;
    uint16_t subsys_id;
    uint8_t revision;
    uint32_t class_code;   /* base << 16 | sub << 8 | prog-if */
    uint8_t intx_pin;      /* 1 = INTA#, 0 = no INTx */
    uint16_t msi_vectors;  /* 0 = no MSI capability; else 1, 2, 4, 8, 16 or 32 */
    uint16_t msix_vectors; /* 0 = no MSI-X capability; at most 2048 */
    uint8_t msix_table_bar;
    uint32_t msix_table_offset;
    uint8_t msix_pba_bar;
    uint32_t msix_pba_offset;
    const struct vfio_user_pci_ops *ops;
    void *dev_ctx;
};

/*
 * Build the config space and register region 7 (config) and the IRQ indexes
 * on the server. BARs are added with vfio_user_pci_setup_bar().
 */
struct vfio_user_pci *vfio_user_pci_create(struct vfio_user_server *s, const struct vfio_user_pci_info *info,
                                           int *err);
void vfio_user_pci_destroy(struct vfio_user_pci *p);

/*
 * Declare BAR n of size bytes (a power of two, at least 16; 4096 or more for
 * memory BARs that are mmapped). The region's access callback receives every
 * access outside the MSI-X table and PBA, which the PCI layer serves itself
 * when they live in this BAR. mmap_fd/sparse describe mappable parts as in
 * struct vfio_user_region_desc.
 */
int vfio_user_pci_setup_bar(struct vfio_user_pci *p, uint32_t bar, uint64_t size, uint32_t bar_flags,
                            vfio_user_region_access_cb access, int mmap_fd, uint64_t mmap_offset, uint32_t nr_sparse,
                            const struct vfio_user_sparse_area *sparse);

/* Raise interrupt vector (MSI-X/MSI vector number; INTx ignores it). */
int vfio_user_pci_irq(struct vfio_user_pci *p, uint32_t vector);
/*
 * The client changed an IRQ index through SET_IRQS (the server's irq_changed
 * op): an MSI-X vector that fired while it had no eventfd goes out now that
 * it has one.
 */
void vfio_user_pci_irqs_changed(struct vfio_user_pci *p);
/* Lower INTx (level interrupts end when the device has nothing pending). */
void vfio_user_pci_intx_deassert(struct vfio_user_pci *p);

bool vfio_user_pci_bus_master(const struct vfio_user_pci *p);
bool vfio_user_pci_msix_enabled(const struct vfio_user_pci *p);
bool vfio_user_pci_msi_enabled(const struct vfio_user_pci *p);
bool vfio_user_pci_intx_disabled(const struct vfio_user_pci *p);
/* Whether vector is held by the function mask or masked through SET_IRQS. */
bool vfio_user_pci_msix_vector_masked(const struct vfio_user_pci *p, uint32_t vector);

/* Read-only view of config space (VFIO_USER_PCI_CONFIG_SIZE bytes). */
const uint8_t *vfio_user_pci_config(const struct vfio_user_pci *p);

/* Config space, MSI-X table and PBA back to power-on values. */
void vfio_user_pci_reset(struct vfio_user_pci *p);

/*
 * Config-space access as the client sees it (the region 7 callback); exposed
 * for unit tests and for devices that need to poke config space themselves.
 */
ssize_t vfio_user_pci_config_access(struct vfio_user_pci *p, uint8_t *buf, size_t count, uint64_t offset,
                                    bool is_write);

/*
 * Handover (docs/STATE-FORMAT.md): config space, MSI-X table and pending bits
 * to or from another process's function of the same layout (restore refuses
 * a different device with -EPROTO and leaves p as it was).
 */
struct vnvme_state_out;
struct vnvme_state_in;
int vfio_user_pci_save(const struct vfio_user_pci *p, struct vnvme_state_out *w);
int vfio_user_pci_restore(struct vfio_user_pci *p, struct vnvme_state_in *r);
/* Config space writes so far: what a copy of the state kept elsewhere compares to see it is stale. */
uint64_t vfio_user_pci_config_writes(const struct vfio_user_pci *p);

#endif
