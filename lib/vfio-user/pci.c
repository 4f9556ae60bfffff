/* SPDX-License-Identifier: MIT */
/*
 * PCI configuration space, BARs and interrupt delivery of a vfio-user device.
 *
 * Config space is a byte array with two masks beside it: which bits the
 * driver may write, and which bits a written 1 clears. Every write goes
 * through them byte by byte, so odd sizes and unaligned accesses behave like
 * on hardware and BAR sizing falls out of the masks for free. Side effects
 * (FLR, MSI clamping, delivering pending vectors) are derived afterwards by
 * comparing registers before and after the write.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "vfio-user/pci_internal.h"

#define LOG_COMP "vfio-user-pci"

#define CAP_LIST_START 0x40
#define MSI_MAX_VECTORS 32u
#define MSIX_MAX_VECTORS 2048u
#define IO_BAR_MAX_SIZE 256u /* PCI limits an I/O BAR to 256 bytes */
#define DEVCAP_MPS_SUPPORTED 1u /* 256 bytes */

static void init8(struct vfio_user_pci *p, uint32_t off, uint8_t val, uint8_t wmask)
{
    p->cfg[off] = val;
    p->wmask[off] = wmask;
}

static void init16(struct vfio_user_pci *p, uint32_t off, uint16_t val, uint16_t wmask, uint16_t w1c)
{
    pci_put16(p->cfg, off, val);
    pci_put16(p->wmask, off, wmask);
    pci_put16(p->w1cmask, off, w1c);
}

static void init32(struct vfio_user_pci *p, uint32_t off, uint32_t val, uint32_t wmask)
{
    pci_put32(p->cfg, off, val);
    pci_put32(p->wmask, off, wmask);
}

static uint16_t cmd_reg(const struct vfio_user_pci *p)
{
    return pci_cfg_get16(p, PCI_CFG_COMMAND);
}

static void init_header(struct vfio_user_pci *p)
{
    const struct vfio_user_pci_info *info = &p->info;

    init16(p, PCI_CFG_VENDOR_ID, info->vendor_id, 0, 0);
    init16(p, PCI_CFG_DEVICE_ID, info->device_id, 0, 0);
    /* I/O space enable becomes writable when an I/O BAR is declared. */
    init16(p, PCI_CFG_COMMAND, 0,
           PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER | PCI_CMD_PARITY | PCI_CMD_SERR | PCI_CMD_INTX_DISABLE, 0);
    init16(p, PCI_CFG_STATUS, PCI_STATUS_CAP_LIST, 0, PCI_STATUS_W1C);
    init8(p, PCI_CFG_REVISION, info->revision, 0);
    init8(p, PCI_CFG_CLASS_PROG, (uint8_t)info->class_code, 0);
    init8(p, PCI_CFG_CLASS_PROG + 1, (uint8_t)(info->class_code >> 8), 0);
    init8(p, PCI_CFG_CLASS_PROG + 2, (uint8_t)(info->class_code >> 16), 0);
    /* PCIe keeps Cache Line Size read-write for legacy software, with no effect. */
    init8(p, PCI_CFG_CACHE_LINE, 0, 0xff);
    init8(p, PCI_CFG_HEADER_TYPE, 0, 0);
    init16(p, PCI_CFG_SUBSYS_VENDOR, info->subsys_vendor_id, 0, 0);
    init16(p, PCI_CFG_SUBSYS_ID, info->subsys_id, 0, 0);
    init8(p, PCI_CFG_CAP_PTR, CAP_LIST_START, 0);
    init8(p, PCI_CFG_INT_LINE, 0, 0xff);
    init8(p, PCI_CFG_INT_PIN, info->intx_pin, 0);
}

static uint8_t add_cap(struct vfio_user_pci *p, uint8_t *next_free, uint8_t *prev, uint8_t id, uint8_t len)
{
    uint8_t off = *next_free;

    if (*prev)
        p->cfg[*prev + 1] = off;
    init8(p, off, id, 0);
    init8(p, off + 1, 0, 0);
    *prev = off;
    *next_free = (uint8_t)((off + len + 3) & ~3);
    return off;
}

static uint32_t log2_u32(uint32_t v)
{
    return 31u - (uint32_t)__builtin_clz(v);
}

static void init_caps(struct vfio_user_pci *p)
{
    const struct vfio_user_pci_info *info = &p->info;
    uint8_t next_free = CAP_LIST_START, prev = 0;
    uint8_t c;

    c = p->pm_cap = add_cap(p, &next_free, &prev, PCI_CAP_ID_PM, PCI_PM_CAP_LEN);
    init16(p, c + PCI_PM_PMC, 3 /* version 3: PCI PM 1.2 */, 0, 0);
    init16(p, c + PCI_PM_PMCSR, PCI_PM_NO_SOFT_RESET, PCI_PM_STATE_MASK, 0);

    if (info->msi_vectors) {
        uint16_t mmc = (uint16_t)(log2_u32(info->msi_vectors) << 1);
        uint32_t mask_bits = info->msi_vectors == 32 ? 0xffffffffu : (1u << info->msi_vectors) - 1;

        c = p->msi_cap = add_cap(p, &next_free, &prev, PCI_CAP_ID_MSI, PCI_MSI_CAP_LEN);
        init16(p, c + PCI_MSI_CTRL, PCI_MSI_CTRL_64BIT | PCI_MSI_CTRL_PVM | mmc, PCI_MSI_CTRL_ENABLE | 0x70, 0);
        init32(p, c + PCI_MSI_ADDR_LO, 0, 0xfffffffcu);
        init32(p, c + PCI_MSI_ADDR_HI, 0, 0xffffffffu);
        init16(p, c + PCI_MSI_DATA, 0, 0xffff, 0);
        init32(p, c + PCI_MSI_MASK, 0, mask_bits);
        init32(p, c + PCI_MSI_PENDING, 0, 0);
    }

    if (info->msix_vectors) {
        c = p->msix_cap = add_cap(p, &next_free, &prev, PCI_CAP_ID_MSIX, PCI_MSIX_CAP_LEN);
        init16(p, c + PCI_MSIX_CTRL, (uint16_t)(info->msix_vectors - 1), PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK,
               0);
        init32(p, c + PCI_MSIX_TABLE, info->msix_table_offset | info->msix_table_bar, 0);
        init32(p, c + PCI_MSIX_PBA, info->msix_pba_offset | info->msix_pba_bar, 0);
    }

    c = p->exp_cap = add_cap(p, &next_free, &prev, PCI_CAP_ID_EXP, PCI_EXP_CAP_LEN);
    init16(p, c + PCI_EXP_FLAGS, 2 /* version 2, type 0 = endpoint */, 0, 0);
    init32(p, c + PCI_EXP_DEVCAP, DEVCAP_MPS_SUPPORTED | (1u << 15) /* role-based errors */ | PCI_EXP_DEVCAP_FLR, 0);
    /* Relaxed ordering and no snoop on, 512-byte read requests: the spec's defaults. */
    init16(p, c + PCI_EXP_DEVCTL, 0x2810,
           0x00ff /* error reporting, RO, MPS */ | 0x0800 /* no snoop */ | 0x7000 /* MRRS */ | PCI_EXP_DEVCTL_FLR, 0);
    init16(p, c + PCI_EXP_DEVSTA, 0, 0, 0x000f);
    init32(p, c + PCI_EXP_LNKCAP, 0x11 /* 2.5 GT/s, x1 */, 0);
    init16(p, c + PCI_EXP_LNKCTL, 0, 0x00c8 /* RCB, common clock, extended synch */, 0);
    init16(p, c + PCI_EXP_LNKSTA, 0x11, 0, 0);
    init32(p, c + PCI_EXP_DEVCAP2, 0, 0);
    init16(p, c + PCI_EXP_DEVCTL2, 0, 0, 0);
    init32(p, c + PCI_EXP_LNKCAP2, 1u << 1 /* 2.5 GT/s supported */, 0);
    init16(p, c + PCI_EXP_LNKCTL2, 1, 0, 0);
}

static ssize_t config_region_access(void *ctx, uint8_t *buf, size_t count, uint64_t offset, bool is_write)
{
    return vfio_user_pci_config_access(ctx, buf, count, offset, is_write);
}

static int check_info(const struct vfio_user_pci_info *info)
{
    uint32_t n = info->msi_vectors;

    if (info->intx_pin > 4)
        return -EINVAL;
    if (n > MSI_MAX_VECTORS || (n & (n - 1)) != 0)
        return -EINVAL;
    if (info->msix_vectors > MSIX_MAX_VECTORS)
        return -EINVAL;
    if (info->msix_vectors) {
        uint64_t table_end = (uint64_t)info->msix_table_offset + info->msix_vectors * PCI_MSIX_ENTRY_SIZE;
        uint64_t pba_end = (uint64_t)info->msix_pba_offset + (info->msix_vectors + 63u) / 64u * 8u;

        /* The low 3 bits of the offset registers hold the BIR. */
        if (info->msix_table_bar >= PCI_NUM_BARS || info->msix_pba_bar >= PCI_NUM_BARS ||
            (info->msix_table_offset & 7) || (info->msix_pba_offset & 7))
            return -EINVAL;
        if (info->msix_table_bar == info->msix_pba_bar && info->msix_table_offset < pba_end &&
            info->msix_pba_offset < table_end)
            return -EINVAL;
    }
    return 0;
}

static int setup_irqs(struct vfio_user_pci *p)
{
    const uint32_t maskable = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE;
    int r = 0;

    if (p->info.intx_pin)
        r = vfio_user_server_setup_irq(p->server, VFIO_PCI_INTX_IRQ_INDEX, 1, maskable);
    if (!r && p->info.msi_vectors)
        r = vfio_user_server_setup_irq(p->server, VFIO_PCI_MSI_IRQ_INDEX, p->info.msi_vectors, maskable);
    if (!r && p->info.msix_vectors)
        r = vfio_user_server_setup_irq(p->server, VFIO_PCI_MSIX_IRQ_INDEX, p->info.msix_vectors, maskable);
    if (!r)
        r = vfio_user_server_setup_irq(p->server, VFIO_PCI_ERR_IRQ_INDEX, 1, VFIO_IRQ_INFO_EVENTFD);
    if (!r)
        r = vfio_user_server_setup_irq(p->server, VFIO_PCI_REQ_IRQ_INDEX, 1, VFIO_IRQ_INFO_EVENTFD);
    return r;
}

struct vfio_user_pci *vfio_user_pci_create(struct vfio_user_server *s, const struct vfio_user_pci_info *info,
                                           int *err)
{
    struct vfio_user_pci *p;
    struct vfio_user_region_desc cfg_desc = {
        .size = VFIO_USER_PCI_CONFIG_SIZE,
        .flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
        .access = config_region_access,
        .mmap_fd = -1,
    };
    int r;

    if (!s || !info) {
        r = -EINVAL;
        goto fail;
    }
    r = check_info(info);
    if (r)
        goto fail;
    p = calloc(1, sizeof(*p));
    if (!p) {
        r = -ENOMEM;
        goto fail;
    }
    p->server = s;
    p->info = *info;
    for (uint32_t i = 0; i < PCI_NUM_BARS; i++) {
        p->bars[i].p = p;
        p->bars[i].index = i;
    }
    init_header(p);
    init_caps(p);
    memcpy(p->cfg_reset, p->cfg, sizeof(p->cfg));
    r = pci_msix_init(p);
    if (r) {
        free(p);
        goto fail;
    }
    cfg_desc.ctx = p;
    r = vfio_user_server_setup_region(s, VFIO_PCI_CONFIG_REGION_INDEX, &cfg_desc);
    if (!r)
        r = setup_irqs(p);
    if (r) {
        vfio_user_pci_destroy(p);
        goto fail;
    }
    return p;
fail:
    if (err)
        *err = r;
    return NULL;
}

/* The server keeps callbacks into p: destroy the server first, or never poll it again. */
void vfio_user_pci_destroy(struct vfio_user_pci *p)
{
    if (!p)
        return;
    pci_msix_fini(p);
    free(p);
}

static ssize_t bar_region_access(void *ctx, uint8_t *buf, size_t count, uint64_t offset, bool is_write)
{
    struct vfio_user_pci_bar *bar = ctx;
    struct vfio_user_pci *p = bar->p;

    if (pci_msix_claims(p, bar->index, offset, count))
        return pci_msix_bar_access(p, bar->index, buf, count, offset, is_write);
    if (!bar->access) {
        /* A BAR that only holds MSI-X structures: the rest is empty space. */
        if (!is_write)
            memset(buf, 0, count);
        return (ssize_t)count;
    }
    return bar->access(p->info.dev_ctx, buf, count, offset, is_write);
}

static bool msix_in_bar(const struct vfio_user_pci *p, uint32_t bar)
{
    return p->info.msix_vectors && (p->info.msix_table_bar == bar || p->info.msix_pba_bar == bar);
}

static int check_bar(const struct vfio_user_pci *p, uint32_t bar, uint64_t size, uint32_t flags,
                     vfio_user_region_access_cb access)
{
    const struct vfio_user_pci_info *info = &p->info;
    bool is64 = flags & VFIO_USER_PCI_BAR_MEM64;
    bool io = flags & VFIO_USER_PCI_BAR_IO;

    if (bar >= PCI_NUM_BARS || (is64 && bar + 1 >= PCI_NUM_BARS))
        return -EINVAL;
    if (flags & ~(VFIO_USER_PCI_BAR_MEM64 | VFIO_USER_PCI_BAR_PREFETCH | VFIO_USER_PCI_BAR_IO))
        return -EINVAL;
    if (io && (flags & (VFIO_USER_PCI_BAR_MEM64 | VFIO_USER_PCI_BAR_PREFETCH)))
        return -EINVAL;
    if (size < 16 || (size & (size - 1)) != 0)
        return -EINVAL;
    /* Sizes the BAR register cannot express would read back as "no BAR". */
    if ((io && size > IO_BAR_MAX_SIZE) || (!io && !is64 && size > (1ull << 31)) || size > (1ull << 63))
        return -EINVAL;
    if (p->bars[bar].used || (is64 && p->bars[bar + 1].used))
        return -EEXIST;
    if (info->msix_vectors) {
        uint64_t table_end = (uint64_t)info->msix_table_offset + info->msix_vectors * PCI_MSIX_ENTRY_SIZE;
        uint64_t pba_end = (uint64_t)info->msix_pba_offset + p->msix_pba_words * 8ull;

        /* A BIR naming the upper half of a 64-bit BAR is invalid. */
        if (is64 && (info->msix_table_bar == bar + 1 || info->msix_pba_bar == bar + 1))
            return -EINVAL;
        if (io && msix_in_bar(p, bar))
            return -EINVAL; /* MSI-X structures are memory space */
        if ((info->msix_table_bar == bar && table_end > size) || (info->msix_pba_bar == bar && pba_end > size))
            return -EINVAL;
    }
    if (!access && !msix_in_bar(p, bar))
        return -EINVAL;
    return 0;
}

int vfio_user_pci_setup_bar(struct vfio_user_pci *p, uint32_t bar, uint64_t size, uint32_t bar_flags,
                            vfio_user_region_access_cb access, int mmap_fd, uint64_t mmap_offset, uint32_t nr_sparse,
                            const struct vfio_user_sparse_area *sparse)
{
    struct vfio_user_region_desc desc = {
        .size = size,
        .flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
        .access = bar_region_access,
        .mmap_fd = mmap_fd,
        .mmap_offset = mmap_offset,
        .nr_sparse = nr_sparse,
    };
    bool is64 = bar_flags & VFIO_USER_PCI_BAR_MEM64;
    uint32_t off = PCI_CFG_BAR0 + bar * 4;
    uint32_t type_bits;
    int r;

    if (!p)
        return -EINVAL;
    r = check_bar(p, bar, size, bar_flags, access);
    if (r)
        return r;
    if (nr_sparse > VFIO_USER_MAX_SPARSE_AREAS || (nr_sparse && !sparse))
        return -EINVAL;
    if (nr_sparse)
        memcpy(desc.sparse, sparse, nr_sparse * sizeof(*sparse));
    desc.ctx = &p->bars[bar];
    r = vfio_user_server_setup_region(p->server, VFIO_PCI_BAR0_REGION_INDEX + bar, &desc);
    if (r)
        return r;

    p->bars[bar].used = true;
    p->bars[bar].size = size;
    p->bars[bar].flags = bar_flags;
    p->bars[bar].access = access;
    if (bar_flags & VFIO_USER_PCI_BAR_IO) {
        type_bits = 0x1;
        init32(p, off, type_bits, (uint32_t)~(size - 1) & ~0x3u);
        p->wmask[PCI_CFG_COMMAND] |= PCI_CMD_IO;
    } else {
        type_bits = (is64 ? 0x4u : 0) | ((bar_flags & VFIO_USER_PCI_BAR_PREFETCH) ? 0x8u : 0);
        init32(p, off, type_bits, (uint32_t)~(size - 1) & ~0xfu);
        if (is64) {
            init32(p, off + 4, 0, (uint32_t)(~(size - 1) >> 32));
            p->bars[bar + 1].used = true;
            p->bars[bar + 1].upper_half = true;
        }
    }
    memcpy(p->cfg_reset + off, p->cfg + off, is64 ? 8 : 4);
    return 0;
}

/* ---- config space accesses ---- */

struct watched_regs {
    uint16_t command;
    uint16_t msi_ctrl;
    uint32_t msi_mask;
    uint16_t msix_ctrl;
    uint16_t pmcsr;
};

static void snapshot(const struct vfio_user_pci *p, struct watched_regs *w)
{
    w->command = cmd_reg(p);
    w->msi_ctrl = p->msi_cap ? pci_cfg_get16(p, p->msi_cap + PCI_MSI_CTRL) : 0;
    w->msi_mask = p->msi_cap ? pci_cfg_get32(p, p->msi_cap + PCI_MSI_MASK) : 0;
    w->msix_ctrl = p->msix_cap ? pci_cfg_get16(p, p->msix_cap + PCI_MSIX_CTRL) : 0;
    w->pmcsr = pci_cfg_get16(p, p->pm_cap + PCI_PM_PMCSR);
}

static uint32_t msi_enabled_vectors(const struct vfio_user_pci *p)
{
    return 1u << ((pci_cfg_get16(p, p->msi_cap + PCI_MSI_CTRL) >> 4) & 7);
}

static void msi_deliver_pending(struct vfio_user_pci *p)
{
    uint32_t n, pending, mask, ready;

    if (!vfio_user_pci_msi_enabled(p) || !vfio_user_pci_bus_master(p))
        return;
    n = msi_enabled_vectors(p);
    pending = pci_cfg_get32(p, p->msi_cap + PCI_MSI_PENDING);
    mask = pci_cfg_get32(p, p->msi_cap + PCI_MSI_MASK);
    ready = pending & ~mask & (n == 32 ? 0xffffffffu : (1u << n) - 1);
    if (!ready)
        return;
    pci_put32(p->cfg, p->msi_cap + PCI_MSI_PENDING, pending & ~ready);
    while (ready) {
        uint32_t v = (uint32_t)__builtin_ctz(ready);
        ready &= ready - 1;
        (void)vfio_user_server_irq_trigger(p->server, VFIO_PCI_MSI_IRQ_INDEX, v);
    }
}

/* Fix up values the masks alone cannot express; returns whether an FLR was requested. */
static bool apply_side_effects(struct vfio_user_pci *p, const struct watched_regs *old)
{
    uint16_t v;

    /* D1 and D2 are not supported: the spec says such a write is discarded. */
    v = pci_cfg_get16(p, p->pm_cap + PCI_PM_PMCSR);
    if ((v & PCI_PM_STATE_MASK) == 1 || (v & PCI_PM_STATE_MASK) == 2)
        pci_put16(p->cfg, p->pm_cap + PCI_PM_PMCSR,
                  (uint16_t)((v & ~PCI_PM_STATE_MASK) | (old->pmcsr & PCI_PM_STATE_MASK)));

    if (p->msi_cap) {
        uint32_t mmc, mme;

        v = pci_cfg_get16(p, p->msi_cap + PCI_MSI_CTRL);
        mmc = (v >> 1) & 7;
        mme = (v >> 4) & 7;
        if (mme > mmc)
            pci_put16(p->cfg, p->msi_cap + PCI_MSI_CTRL, (uint16_t)((v & ~0x70u) | mmc << 4));
    }

    v = pci_cfg_get16(p, p->exp_cap + PCI_EXP_DEVCTL);
    if (((v >> 5) & 7) > DEVCAP_MPS_SUPPORTED)
        v = (uint16_t)((v & ~0xe0u) | DEVCAP_MPS_SUPPORTED << 5);
    pci_put16(p->cfg, p->exp_cap + PCI_EXP_DEVCTL, v & (uint16_t)~PCI_EXP_DEVCTL_FLR);
    if (v & PCI_EXP_DEVCTL_FLR)
        return true;

    /* A level interrupt still asserted becomes visible again when INTx is re-enabled. */
    if ((old->command & PCI_CMD_INTX_DISABLE) && !(cmd_reg(p) & PCI_CMD_INTX_DISABLE) && p->info.intx_pin &&
        (pci_cfg_get16(p, PCI_CFG_STATUS) & PCI_STATUS_INTX) && !vfio_user_pci_msi_enabled(p) &&
        !vfio_user_pci_msix_enabled(p))
        (void)vfio_user_server_irq_trigger(p->server, VFIO_PCI_INTX_IRQ_INDEX, 0);

    pci_msix_deliver_pending(p);
    msi_deliver_pending(p);
    return false;
}

ssize_t vfio_user_pci_config_access(struct vfio_user_pci *p, uint8_t *buf, size_t count, uint64_t offset,
                                    bool is_write)
{
    struct watched_regs old;
    bool flr;

    if (!p || !buf || count == 0 || count > VFIO_USER_PCI_CONFIG_SIZE || offset > VFIO_USER_PCI_CONFIG_SIZE - count)
        return -EINVAL;
    if (!is_write) {
        memcpy(buf, p->cfg + offset, count);
        return (ssize_t)count;
    }
    p->config_writes++;
    snapshot(p, &old);
    for (size_t i = 0; i < count; i++) {
        size_t o = offset + i;
        uint8_t val = buf[i];

        p->cfg[o] = (uint8_t)((p->cfg[o] & ~p->wmask[o]) | (val & p->wmask[o]));
        p->cfg[o] &= (uint8_t)~(val & p->w1cmask[o]);
    }
    flr = apply_side_effects(p, &old);
    /* The device quiesces first, then config space goes back to power-on values; the
     * config_write notice below then shows the device its post-reset config. */
    if (flr) {
        VNVME_DEBUG(LOG_COMP, "function level reset");
        if (p->info.ops && p->info.ops->function_reset)
            p->info.ops->function_reset(p->info.dev_ctx);
        vfio_user_pci_reset(p);
    }
    if (p->info.ops && p->info.ops->config_write)
        p->info.ops->config_write(p->info.dev_ctx, (uint32_t)offset, (uint32_t)count);
    return (ssize_t)count;
}

void pci_set_status_bits(struct vfio_user_pci *p, uint16_t bits)
{
    pci_put16(p->cfg, PCI_CFG_STATUS, pci_cfg_get16(p, PCI_CFG_STATUS) | bits);
}

void vfio_user_pci_reset(struct vfio_user_pci *p)
{
    if (!p)
        return;
    memcpy(p->cfg, p->cfg_reset, sizeof(p->cfg));
    pci_msix_reset(p);
}

const uint8_t *vfio_user_pci_config(const struct vfio_user_pci *p)
{
    return p->cfg;
}

/* ---- interrupt delivery ---- */

bool vfio_user_pci_bus_master(const struct vfio_user_pci *p)
{
    return cmd_reg(p) & PCI_CMD_BUS_MASTER;
}

bool vfio_user_pci_msi_enabled(const struct vfio_user_pci *p)
{
    return p->msi_cap && (pci_cfg_get16(p, p->msi_cap + PCI_MSI_CTRL) & PCI_MSI_CTRL_ENABLE);
}

bool vfio_user_pci_intx_disabled(const struct vfio_user_pci *p)
{
    return cmd_reg(p) & PCI_CMD_INTX_DISABLE;
}

/* Same bus-master rule as MSI-X (see pci_msix_irq): kept pending, -EPERM. */
static int msi_irq(struct vfio_user_pci *p, uint32_t vector)
{
    uint32_t bit, pend_off = p->msi_cap + PCI_MSI_PENDING;

    if (vector >= msi_enabled_vectors(p))
        return -EINVAL;
    bit = 1u << vector;
    if (pci_cfg_get32(p, p->msi_cap + PCI_MSI_MASK) & bit) {
        pci_put32(p->cfg, pend_off, pci_cfg_get32(p, pend_off) | bit);
        return 0;
    }
    if (!vfio_user_pci_bus_master(p)) {
        pci_put32(p->cfg, pend_off, pci_cfg_get32(p, pend_off) | bit);
        return -EPERM;
    }
    return vfio_user_server_irq_trigger(p->server, VFIO_PCI_MSI_IRQ_INDEX, vector);
}

/*
 * Interrupt Status records the device's request even when the pin is
 * disabled, as on hardware; the line is only driven when INTx is enabled.
 * INTx is not a memory write, so Bus Master Enable does not gate it.
 */
static int intx_irq(struct vfio_user_pci *p)
{
    pci_set_status_bits(p, PCI_STATUS_INTX);
    if (!p->info.intx_pin || vfio_user_pci_intx_disabled(p))
        return 0;
    return vfio_user_server_irq_trigger(p->server, VFIO_PCI_INTX_IRQ_INDEX, 0);
}

int vfio_user_pci_irq(struct vfio_user_pci *p, uint32_t vector)
{
    if (vfio_user_pci_msix_enabled(p))
        return pci_msix_irq(p, vector);
    if (vfio_user_pci_msi_enabled(p))
        return msi_irq(p, vector);
    return intx_irq(p);
}

void vfio_user_pci_intx_deassert(struct vfio_user_pci *p)
{
    pci_put16(p->cfg, PCI_CFG_STATUS, pci_cfg_get16(p, PCI_CFG_STATUS) & (uint16_t)~PCI_STATUS_INTX);
}
