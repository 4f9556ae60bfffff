/* SPDX-License-Identifier: MIT */
/*
 * Handing a PCI function's state to another process (docs/STATE-FORMAT.md,
 * section "PCI function"): config space as the client programmed it (command
 * register, BARs, capabilities' control words), the MSI-X table and the
 * pending bits. The receiving function was built with the same layout; a
 * different one is refused rather than guessed at.
 */
#include <errno.h>
#include <string.h>

#include "common/state.h"
#include "pci_internal.h"

#define TAG_PCI 0x56504349u /* "VPCI" */

int vfio_user_pci_save(const struct vfio_user_pci *p, struct vnvme_state_out *w)
{
    size_t at = vnvme_state_begin(w, TAG_PCI);
    vnvme_state_put_u32(w, VFIO_USER_PCI_CONFIG_SIZE);
    vnvme_state_put_bytes(w, p->cfg, VFIO_USER_PCI_CONFIG_SIZE);
    vnvme_state_put_u32(w, p->info.msix_vectors);
    if (p->msix_table)
        vnvme_state_put_bytes(w, p->msix_table, (size_t)p->info.msix_vectors * PCI_MSIX_ENTRY_SIZE);
    vnvme_state_put_u32(w, p->msix_pba ? p->msix_pba_words : 0);
    for (uint32_t i = 0; p->msix_pba && i < p->msix_pba_words; i++)
        vnvme_state_put_u64(w, p->msix_pba[i]);
    vnvme_state_end(w, at);
    return vnvme_state_out_error(w);
}

uint64_t vfio_user_pci_config_writes(const struct vfio_user_pci *p)
{
    return p->config_writes;
}

int vfio_user_pci_restore(struct vfio_user_pci *p, struct vnvme_state_in *in)
{
    struct vnvme_state_in sec, *r = &sec;
    vnvme_state_enter(in, TAG_PCI, r);
    if (vnvme_state_get_u32(r) != VFIO_USER_PCI_CONFIG_SIZE)
        vnvme_state_fail(r, "the PCI config space has a different size");
    uint8_t cfg[VFIO_USER_PCI_CONFIG_SIZE];
    vnvme_state_get_bytes(r, cfg, sizeof(cfg));
    /* Identity (ids, revision, class, subsystem ids) must match: it says the function is the same device. */
    static const struct {
        uint32_t off, len;
    } ident[] = {{PCI_CFG_VENDOR_ID, 4}, {PCI_CFG_REVISION, 4}, {PCI_CFG_SUBSYS_VENDOR, 4}};
    for (size_t i = 0; i < sizeof(ident) / sizeof(ident[0]) && vnvme_state_in_ok(r); i++)
        if (memcmp(cfg + ident[i].off, p->cfg_reset + ident[i].off, ident[i].len) != 0)
            vnvme_state_fail(r, "the PCI function is a different device");
    uint32_t vectors = vnvme_state_get_u32(r);
    if (vnvme_state_in_ok(r) && (vectors != p->info.msix_vectors || (vectors && !p->msix_table)))
        vnvme_state_fail(r, "the MSI-X table has a different size");
    if (vnvme_state_in_ok(r) && vectors)
        vnvme_state_get_bytes(r, p->msix_table, (size_t)vectors * PCI_MSIX_ENTRY_SIZE);
    uint32_t words = vnvme_state_get_u32(r);
    if (vnvme_state_in_ok(r) && words != (p->msix_pba ? p->msix_pba_words : 0))
        vnvme_state_fail(r, "the MSI-X pending bits have a different size");
    for (uint32_t i = 0; i < words && vnvme_state_in_ok(r); i++)
        p->msix_pba[i] = vnvme_state_get_u64(r);
    vnvme_state_expect_end(r);
    if (!vnvme_state_in_ok(r))
        return -EPROTO;
    memcpy(p->cfg, cfg, sizeof(cfg));
    return 0;
}
