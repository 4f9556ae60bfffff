/* SPDX-License-Identifier: MIT */
/*
 * State shared by the config-space half (pci.c) and the MSI-X half
 * (pci_msix.c) of the PCI device model. Not a public API: devices use
 * include/vnvme/vfio_user_pci.h.
 */
#ifndef VNVME_VFIO_USER_PCI_INTERNAL_H
#define VNVME_VFIO_USER_PCI_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vnvme/vfio_user_pci.h"

#define PCI_NUM_BARS 6u

/* Type-0 header registers. */
#define PCI_CFG_VENDOR_ID 0x00
#define PCI_CFG_DEVICE_ID 0x02
#define PCI_CFG_COMMAND 0x04
#define PCI_CFG_STATUS 0x06
#define PCI_CFG_REVISION 0x08
#define PCI_CFG_CLASS_PROG 0x09
#define PCI_CFG_CACHE_LINE 0x0c
#define PCI_CFG_HEADER_TYPE 0x0e
#define PCI_CFG_BAR0 0x10
#define PCI_CFG_SUBSYS_VENDOR 0x2c
#define PCI_CFG_SUBSYS_ID 0x2e
#define PCI_CFG_ROM 0x30
#define PCI_CFG_CAP_PTR 0x34
#define PCI_CFG_INT_LINE 0x3c
#define PCI_CFG_INT_PIN 0x3d

#define PCI_CMD_IO (1u << 0)
#define PCI_CMD_MEMORY (1u << 1)
#define PCI_CMD_BUS_MASTER (1u << 2)
#define PCI_CMD_PARITY (1u << 6)
#define PCI_CMD_SERR (1u << 8)
#define PCI_CMD_INTX_DISABLE (1u << 10)

#define PCI_STATUS_INTX (1u << 3)
#define PCI_STATUS_CAP_LIST (1u << 4)
/* Error bits software clears by writing 1: parity, target/master aborts, SERR, parity error. */
#define PCI_STATUS_W1C 0xf900u

#define PCI_CAP_ID_PM 0x01
#define PCI_CAP_ID_MSI 0x05
#define PCI_CAP_ID_EXP 0x10
#define PCI_CAP_ID_MSIX 0x11

/* MSI capability with 64-bit address and per-vector masking. */
#define PCI_MSI_CTRL 2
#define PCI_MSI_ADDR_LO 4
#define PCI_MSI_ADDR_HI 8
#define PCI_MSI_DATA 12
#define PCI_MSI_MASK 16
#define PCI_MSI_PENDING 20
#define PCI_MSI_CAP_LEN 24
#define PCI_MSI_CTRL_ENABLE (1u << 0)
#define PCI_MSI_CTRL_64BIT (1u << 7)
#define PCI_MSI_CTRL_PVM (1u << 8)

/* MSI-X capability. */
#define PCI_MSIX_CTRL 2
#define PCI_MSIX_TABLE 4
#define PCI_MSIX_PBA 8
#define PCI_MSIX_CAP_LEN 12
#define PCI_MSIX_CTRL_ENABLE (1u << 15)
#define PCI_MSIX_CTRL_FMASK (1u << 14)
#define PCI_MSIX_ENTRY_SIZE 16u
#define PCI_MSIX_ENTRY_CTRL_MASKED 1u

/* Power Management capability. */
#define PCI_PM_PMC 2
#define PCI_PM_PMCSR 4
#define PCI_PM_CAP_LEN 8
#define PCI_PM_STATE_MASK 0x3u
#define PCI_PM_NO_SOFT_RESET (1u << 3)

/* PCI Express capability, version 2 layout. */
#define PCI_EXP_FLAGS 2
#define PCI_EXP_DEVCAP 4
#define PCI_EXP_DEVCTL 8
#define PCI_EXP_DEVSTA 10
#define PCI_EXP_LNKCAP 12
#define PCI_EXP_LNKCTL 16
#define PCI_EXP_LNKSTA 18
#define PCI_EXP_DEVCAP2 36
#define PCI_EXP_DEVCTL2 40
#define PCI_EXP_LNKCAP2 44
#define PCI_EXP_LNKCTL2 48
#define PCI_EXP_CAP_LEN 60
#define PCI_EXP_DEVCAP_FLR (1u << 28)
#define PCI_EXP_DEVCTL_FLR (1u << 15)

struct vfio_user_pci_bar {
    struct vfio_user_pci *p; /* the region callback's ctx is the BAR */
    uint32_t index;
    bool used;               /* declared, or the upper half of a 64-bit BAR */
    bool upper_half;
    uint64_t size;
    uint32_t flags;
    vfio_user_region_access_cb access;
};

struct vfio_user_pci {
    struct vfio_user_server *server;
    struct vfio_user_pci_info info;
    uint8_t cfg[VFIO_USER_PCI_CONFIG_SIZE];
    uint8_t cfg_reset[VFIO_USER_PCI_CONFIG_SIZE]; /* power-on values */
    uint8_t wmask[VFIO_USER_PCI_CONFIG_SIZE];
    uint8_t w1cmask[VFIO_USER_PCI_CONFIG_SIZE];
    struct vfio_user_pci_bar bars[PCI_NUM_BARS];
    uint8_t pm_cap;   /* capability offsets; 0 when absent */
    uint8_t msi_cap;
    uint8_t msix_cap;
    uint8_t exp_cap;
    uint32_t *msix_table; /* msix_vectors entries of 4 dwords */
    uint64_t *msix_pba;
    uint32_t msix_pba_words;
    uint64_t config_writes; /* pci_state.c: a crash-recovery record is rewritten when this moves */
};

static inline uint16_t pci_cfg_get16(const struct vfio_user_pci *p, uint32_t off)
{
    return (uint16_t)(p->cfg[off] | p->cfg[off + 1] << 8);
}

static inline uint32_t pci_cfg_get32(const struct vfio_user_pci *p, uint32_t off)
{
    return (uint32_t)pci_cfg_get16(p, off) | (uint32_t)pci_cfg_get16(p, off + 2) << 16;
}

static inline void pci_put16(uint8_t *space, uint32_t off, uint16_t v)
{
    space[off] = (uint8_t)v;
    space[off + 1] = (uint8_t)(v >> 8);
}

static inline void pci_put32(uint8_t *space, uint32_t off, uint32_t v)
{
    pci_put16(space, off, (uint16_t)v);
    pci_put16(space, off + 2, (uint16_t)(v >> 16));
}

/* pci_msix.c */
int pci_msix_init(struct vfio_user_pci *p);
void pci_msix_fini(struct vfio_user_pci *p);
void pci_msix_reset(struct vfio_user_pci *p);
/* Whether [offset, offset+count) of bar touches the MSI-X table or PBA. */
bool pci_msix_claims(const struct vfio_user_pci *p, uint32_t bar, uint64_t offset, size_t count);
ssize_t pci_msix_bar_access(struct vfio_user_pci *p, uint32_t bar, uint8_t *buf, size_t count, uint64_t offset,
                            bool is_write);
/* Deliver an MSI-X vector, or record it in the PBA when it may not be sent now. */
int pci_msix_irq(struct vfio_user_pci *p, uint32_t vector);
/* Send every pending vector that may be sent now (after an unmask or enable). */
void pci_msix_deliver_pending(struct vfio_user_pci *p);

/* pci.c: for the MSI-X half and for tests that need device-side status changes. */
void pci_set_status_bits(struct vfio_user_pci *p, uint16_t bits);

#endif
