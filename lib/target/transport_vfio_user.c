/* SPDX-License-Identifier: MIT */
/*
 * One NVMe controller behind one vfio-user socket.
 *
 * BAR0 layout (16 KiB, 64-bit memory BAR):
 *   0x0000-0x0fff  controller registers, trapped: every access is a message
 *                  handled by nvmet_ctrlr_reg_read/write
 *   0x1000-0x1fff  doorbells, backed by a memfd the client mmaps (sparse
 *                  area), so a doorbell write is a plain store the reactor
 *                  sees on its next poll; REGION_WRITE/READ of these offsets
 *                  load/store the same memory for clients that do not mmap
 *   0x2000-0x3fff  reserved: reads zero, writes ignored
 * BAR4 holds the MSI-X table, BAR5 the PBA; the PCI layer serves both.
 *
 * INTx is edge-like here: every interrupt the core raises pulses the
 * eventfd, and the line is lowered once no interrupt-enabled CQ holds
 * entries the host has not consumed (checked on the data path only while
 * INTx is asserted, so MSI-X users pay nothing for it).
 */
#include "transport_vfio_user.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/state.h"
#include "vnvme/vfio_user_pci.h"
#include "vnvme/vfio_user_server.h"

#define LOG_COMP "nvmet-vfio-user"

#define BAR0_SIZE 0x4000u
#define DB_OFFSET 0x1000u
#define DB_SIZE 0x1000u
#define MSIX_VECTORS (NVMET_MAX_IO_QUEUES + 1)
#define PCI_CLASS_NVME 0x010802u

_Static_assert(2 * (NVMET_MAX_IO_QUEUES + 1) * sizeof(uint32_t) <= DB_SIZE, "doorbells fit in one page");

struct nvmet_vfio_user_ctrlr {
    struct nvmet_ctrlr nvme;
    struct nvmet_subsys *ss;
    bool nvme_ready;          /* nvmet_ctrlr_init succeeded */
    struct vfio_user_server *srv;
    struct vfio_user_pci *pci;
    int db_fd;
    uint8_t *db_page;         /* local mapping of BAR0 page 1 */
    bool intx_asserted;
    struct vnvme_bdev_mem bdev_mem; /* fences over the DMA windows' I/O mappings */
    /*
     * The DMA window the last translation fell in (vaddr NULL = none), checked
     * before the table's bisection: nearly every data pointer lands in the
     * same window as the one before. Only this controller's reactor thread
     * reads or changes it; it is dropped before any window goes away
     * (on_dma_unmap runs on that thread, before the unmap is answered).
     */
    struct {
        uint64_t iova, last; /* first and last IOVA of the window */
        uint8_t *vaddr;
        uint32_t prot;
    } hit;
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    uint64_t control_gen; /* bumped by every change a crash-recovery record holds (besides config writes) */
    uint32_t connections; /* clients accepted so far: tells a new client's socket from the last one's */
    void *owner;          /* the daemon's (its recovery record) */
};

/* ---- transport ops for the core ---- */

static int vu_translate(void *tctx, uint64_t iova, uint64_t len, uint32_t access, struct iovec *iov, int max_iov)
{
    struct nvmet_vfio_user_ctrlr *vc = tctx;
    /*
     * Same answer as the table for a range inside the remembered window; anything else asks the table.
     * The window remembered is the main mapping: an I/O-mapping request (VFIO_USER_DMA_IO_MAPPING,
     * never in hit.prot) always asks the table, which knows whether the window is fenced.
     */
    if (vc->hit.vaddr && len && max_iov > 0 && access && !(access & ~vc->hit.prot) && iova >= vc->hit.iova &&
        iova <= vc->hit.last && len - 1 <= vc->hit.last - iova) {
        iov[0].iov_base = vc->hit.vaddr + (iova - vc->hit.iova);
        iov[0].iov_len = len;
        return 1;
    }
    const struct vfio_user_dma_table *t = vfio_user_server_dma(vc->srv);
    int n = vfio_user_dma_translate(t, iova, len, access, iov, max_iov);
    if (n == 1) {
        const struct vfio_user_dma_region *r = vfio_user_dma_table_find(t, iova);
        if (r && r->vaddr) {
            vc->hit.iova = r->iova;
            vc->hit.last = r->iova + (r->size - 1);
            vc->hit.vaddr = r->vaddr;
            vc->hit.prot = r->prot;
        }
    }
    return n;
}

static void vu_irq(void *tctx, uint16_t vector)
{
    struct nvmet_vfio_user_ctrlr *vc = tctx;
    if (!vfio_user_pci_msix_enabled(vc->pci) && !vfio_user_pci_msi_enabled(vc->pci))
        vc->intx_asserted = true;
    (void)vfio_user_pci_irq(vc->pci, vector);
}

static void vu_status_changed(void *tctx, uint32_t csts)
{
    struct nvmet_vfio_user_ctrlr *vc = tctx;
    VNVME_INFO(LOG_COMP, "%s: CSTS now 0x%x", vc->socket_path, csts);
}

/*
 * Client memory a bdev's READ can be fenced from (see vnvme_bdev_mem): the
 * data was mapped through the windows' I/O mappings (VFIO_USER_DMA_IO_MAPPING),
 * and fences live on after this controller, as the bdev may hold them longer.
 */
static void *vu_fence(const struct vnvme_bdev_mem *mem, const struct iovec *iov, int iovcnt)
{
    const struct nvmet_vfio_user_ctrlr *vc =
        (const void *)((const char *)mem - offsetof(struct nvmet_vfio_user_ctrlr, bdev_mem));
    struct vfio_user_dma_fence *f = vfio_user_dma_fence(vfio_user_server_dma(vc->srv), iov, iovcnt);
    if (!f)
        VNVME_ERR(LOG_COMP, "%s: cannot fence a read's buffer: %s", vc->socket_path, strerror(errno));
    return f;
}

static void vu_fence_lift(void *f)
{
    vfio_user_dma_fence_lift(f);
}

static void vu_fence_drop(void *f)
{
    vfio_user_dma_fence_drop(f);
}

static const struct vnvme_bdev_mem_ops vu_bdev_mem_ops = {
    .fence = vu_fence,
    .lift = vu_fence_lift,
    .drop = vu_fence_drop,
};

static const struct nvmet_transport_ops vu_tops = {
    .translate = vu_translate,
    .irq = vu_irq,
    .status_changed = vu_status_changed,
};

/* ---- BAR0 ---- */

static ssize_t bar0_access(void *ctx, uint8_t *buf, size_t count, uint64_t offset, bool is_write)
{
    struct nvmet_vfio_user_ctrlr *vc = ctx;
    int rc;

    if (offset < DB_OFFSET) {
        if (count > DB_OFFSET - offset)
            return -EINVAL; /* one access never spans registers and doorbells */
        rc = is_write ? nvmet_ctrlr_reg_write(&vc->nvme, offset, buf, count)
                      : nvmet_ctrlr_reg_read(&vc->nvme, offset, buf, count);
        vc->control_gen += is_write;
        return rc ? rc : (ssize_t)count;
    }
    if (offset < DB_OFFSET + DB_SIZE) {
        if (count > DB_OFFSET + DB_SIZE - offset)
            return -EINVAL;
        if (is_write)
            memcpy(vc->db_page + (offset - DB_OFFSET), buf, count);
        else
            memcpy(buf, vc->db_page + (offset - DB_OFFSET), count);
        return (ssize_t)count;
    }
    if (!is_write)
        memset(buf, 0, count);
    return (ssize_t)count;
}

/* ---- resets ---- */

/* Controller and doorbells back to power-on; the host rewrites doorbells from 0 after enabling. */
static void reset_controller(struct nvmet_vfio_user_ctrlr *vc)
{
    nvmet_ctrlr_reset(&vc->nvme);
    memset(vc->db_page, 0, DB_SIZE);
    if (vc->intx_asserted) {
        vfio_user_pci_intx_deassert(vc->pci);
        vc->intx_asserted = false;
    }
}

static int on_reset(void *ctx, enum vfio_user_reset_reason why)
{
    struct nvmet_vfio_user_ctrlr *vc = ctx;
    vc->control_gen++;
    if (why == VFIO_USER_RESET_DISCONNECT) {
        /*
         * State is kept, like a device whose driver went away: the queues'
         * memory is already gone (dma_unmap quiesced them), and the next
         * client resets the controller before using it.
         */
        return 0;
    }
    VNVME_INFO(LOG_COMP, "%s: device reset", vc->socket_path);
    reset_controller(vc);
    vfio_user_pci_reset(vc->pci);
    return 0;
}

static void on_function_reset(void *ctx)
{
    struct nvmet_vfio_user_ctrlr *vc = ctx;
    VNVME_INFO(LOG_COMP, "%s: function level reset", vc->socket_path);
    reset_controller(vc);
}

static void on_dma_map(void *ctx, const struct vfio_user_dma_region *r)
{
    struct nvmet_vfio_user_ctrlr *vc = ctx;
    vc->control_gen++;
    (void)r;
    nvmet_ctrlr_memory_added(&vc->nvme);
}

static bool on_dma_unmap(void *ctx, const struct vfio_user_dma_region *r)
{
    struct nvmet_vfio_user_ctrlr *vc = ctx;
    vc->control_gen++;
    vc->hit.vaddr = NULL; /* first: the window is already out of the table */
    return nvmet_ctrlr_memory_removed(&vc->nvme, r->iova, r->size, r->vaddr, r->io_vaddr);
}

static void on_connected(void *ctx)
{
    struct nvmet_vfio_user_ctrlr *vc = ctx;
    vc->control_gen++;
    vc->connections++;
    VNVME_NOTICE(LOG_COMP, "%s: client connected", vc->socket_path);
}

static void on_disconnected(void *ctx)
{
    struct nvmet_vfio_user_ctrlr *vc = ctx;
    vc->control_gen++;
    VNVME_NOTICE(LOG_COMP, "%s: client disconnected", vc->socket_path);
}

static void on_irq_changed(void *ctx, uint32_t index)
{
    struct nvmet_vfio_user_ctrlr *vc = ctx;
    vc->control_gen++;
    (void)index;
    vfio_user_pci_irqs_changed(vc->pci);
}

static const struct vfio_user_server_ops server_ops = {
    .reset = on_reset,
    .dma_map = on_dma_map,
    .dma_unmap = on_dma_unmap,
    .irq_changed = on_irq_changed,
    .connected = on_connected,
    .disconnected = on_disconnected,
};

static const struct vfio_user_pci_ops pci_ops = {
    .function_reset = on_function_reset,
};

/* ---- lifetime ---- */

static uint64_t pow2_at_least(uint64_t v, uint64_t min)
{
    uint64_t s = min;
    while (s < v)
        s <<= 1;
    return s;
}

/* db_fd -1: a new page; else the page a handover passed (the client has it mapped). */
static int setup_doorbells(struct nvmet_vfio_user_ctrlr *vc, int db_fd)
{
    /* The fd covers BAR0 from offset 0 so the sparse area's fd offset equals its BAR offset. */
    if (db_fd < 0) {
        vc->db_fd = memfd_create("vnvme-doorbells", MFD_CLOEXEC);
        if (vc->db_fd < 0)
            return -errno;
        if (ftruncate(vc->db_fd, DB_OFFSET + DB_SIZE) < 0)
            return -errno;
    } else {
        struct stat st;
        vc->db_fd = db_fd;
        if (fstat(db_fd, &st) < 0)
            return -errno;
        if (st.st_size != DB_OFFSET + DB_SIZE)
            return -EPROTO;
    }
    void *p = mmap(NULL, DB_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, vc->db_fd, DB_OFFSET);
    if (p == MAP_FAILED)
        return -errno;
    vc->db_page = p;
    return 0;
}

/* listen_fd -1: a new socket at socket_path; else the listener a handover passed. */
static int setup_device(struct nvmet_vfio_user_ctrlr *vc, const char *socket_path, const gid_t *socket_group,
                        int listen_fd)
{
    int rc = 0;
    struct vfio_user_server_config cfg = {
        .socket_path = socket_path,
        .socket_group = socket_group,
        .flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
        .num_regions = VFIO_USER_PCI_NUM_REGIONS,
        .num_irqs = VFIO_USER_PCI_NUM_IRQS,
        .ops = &server_ops,
        .dev_ctx = vc,
    };
    vc->srv = listen_fd < 0 ? vfio_user_server_create(&cfg, &rc) : vfio_user_server_create_adopted(&cfg, listen_fd, &rc);
    if (!vc->srv)
        return rc;

    uint64_t table_size = pow2_at_least(MSIX_VECTORS * 16ull, 4096);
    uint64_t pba_size = pow2_at_least((MSIX_VECTORS + 63) / 64 * 8ull, 4096);
    struct vfio_user_pci_info info = {
        .vendor_id = NVMET_VFIO_USER_VENDOR_ID,
        .device_id = NVMET_VFIO_USER_DEVICE_ID,
        .subsys_vendor_id = NVMET_VFIO_USER_VENDOR_ID,
        .subsys_id = NVMET_VFIO_USER_DEVICE_ID,
        .class_code = PCI_CLASS_NVME,
        .intx_pin = 1,
        .msix_vectors = MSIX_VECTORS,
        .msix_table_bar = 4,
        .msix_table_offset = 0,
        .msix_pba_bar = 5,
        .msix_pba_offset = 0,
        .ops = &pci_ops,
        .dev_ctx = vc,
    };
    vc->pci = vfio_user_pci_create(vc->srv, &info, &rc);
    if (!vc->pci)
        return rc;

    struct vfio_user_sparse_area doorbells = {.offset = DB_OFFSET, .size = DB_SIZE};
    rc = vfio_user_pci_setup_bar(vc->pci, 0, BAR0_SIZE, VFIO_USER_PCI_BAR_MEM64, bar0_access, vc->db_fd, 0, 1,
                                 &doorbells);
    if (rc == 0)
        rc = vfio_user_pci_setup_bar(vc->pci, 4, table_size, 0, NULL, -1, 0, 0, NULL);
    if (rc == 0)
        rc = vfio_user_pci_setup_bar(vc->pci, 5, pba_size, 0, NULL, -1, 0, 0, NULL);
    return rc;
}

static struct nvmet_vfio_user_ctrlr *ctrlr_new(struct nvmet_subsys *ss, const char *socket_path, int *rc)
{
    struct nvmet_vfio_user_ctrlr *vc;
    if (!ss || !socket_path || strlen(socket_path) >= sizeof(vc->socket_path)) {
        *rc = socket_path && ss ? -ENAMETOOLONG : -EINVAL;
        return NULL;
    }
    vc = calloc(1, sizeof(*vc));
    if (!vc) {
        *rc = -ENOMEM;
        return NULL;
    }
    vc->db_fd = -1;
    vc->ss = ss;
    snprintf(vc->socket_path, sizeof(vc->socket_path), "%s", socket_path);
    return vc;
}

static void attach_bdev_mem(struct nvmet_vfio_user_ctrlr *vc)
{
    vc->nvme_ready = true; /* init registered it with the subsystem (cntlid, namespace notices) */
    vc->bdev_mem.ops = &vu_bdev_mem_ops;
    vc->nvme.bdev_mem = &vc->bdev_mem;
}

struct nvmet_vfio_user_ctrlr *nvmet_vfio_user_ctrlr_create(struct nvmet_subsys *ss, const char *socket_path,
                                                           const gid_t *socket_group, int *err)
{
    int rc = -EINVAL;
    struct nvmet_vfio_user_ctrlr *vc = ctrlr_new(ss, socket_path, &rc);
    if (!vc)
        goto fail;
    rc = setup_doorbells(vc, -1);
    if (rc)
        goto fail;
    rc = nvmet_ctrlr_init(&vc->nvme, ss, &vu_tops, vc, (volatile uint32_t *)vc->db_page);
    if (rc)
        goto fail;
    attach_bdev_mem(vc);
    rc = setup_device(vc, socket_path, socket_group, -1);
    if (rc)
        goto fail;
    VNVME_INFO(LOG_COMP, "%s: controller %u of %s", socket_path, vc->nvme.cntlid, ss->nqn);
    return vc;
fail:
    nvmet_vfio_user_ctrlr_destroy(vc);
    if (err)
        *err = rc;
    return NULL;
}

/* ---- handover (docs/STATE-FORMAT.md, section "vfio-user NVMe controller") ---- */

#define TAG_VU_CTRLR 0x4e565543u /* "NVUC" */

void nvmet_vfio_user_ctrlr_pause(struct nvmet_vfio_user_ctrlr *vc, bool paused)
{
    vc->nvme.fetch_paused = paused;
}

uint32_t nvmet_vfio_user_ctrlr_recall(struct nvmet_vfio_user_ctrlr *vc)
{
    return nvmet_ctrlr_recall_for_handover(&vc->nvme);
}

int nvmet_vfio_user_ctrlr_save(struct nvmet_vfio_user_ctrlr *vc, struct vnvme_state_out *w)
{
    int listen_fd, conn_fd;
    vfio_user_server_fds(vc->srv, &listen_fd, &conn_fd);
    size_t at = vnvme_state_begin(w, TAG_VU_CTRLR);
    vnvme_state_put_fd(w, listen_fd);
    vnvme_state_put_fd(w, vc->db_fd);
    vnvme_state_put_u8(w, vc->intx_asserted);
    int rc = vfio_user_pci_save(vc->pci, w);
    if (rc == 0)
        rc = vfio_user_server_save(vc->srv, w);
    if (rc == 0)
        rc = nvmet_ctrlr_save(&vc->nvme, w);
    vnvme_state_end(w, at);
    return rc ? rc : vnvme_state_out_error(w);
}

/*
 * A controller around handed-over descriptors (the section r is in: its
 * listening socket and doorbell page first, then the PCI function and the
 * connection), before the controller's own state. NULL with *rc and the
 * reason in r; the descriptors are closed then.
 */
static struct nvmet_vfio_user_ctrlr *adopt_device(struct nvmet_subsys *ss, const char *socket_path,
                                                  struct vnvme_state_in *r, bool with_intx, int *rc)
{
    int listen_fd = vnvme_state_get_fd(r);
    int db_fd = vnvme_state_get_fd(r);
    bool intx = with_intx && vnvme_state_get_bool(r);
    struct nvmet_vfio_user_ctrlr *vc = NULL;
    *rc = -EPROTO;
    if (!vnvme_state_in_ok(r) || listen_fd < 0 || db_fd < 0) {
        vnvme_state_fail(r, "a controller's listening socket or doorbell page is missing");
        goto fail;
    }
    vc = ctrlr_new(ss, socket_path, rc);
    if (!vc)
        goto fail;
    *rc = setup_doorbells(vc, db_fd);
    db_fd = -1; /* vc's now */
    if (*rc) {
        vnvme_state_fail(r, "the doorbell page cannot be mapped");
        goto fail;
    }
    *rc = nvmet_ctrlr_init_keep_doorbells(&vc->nvme, ss, &vu_tops, vc, (volatile uint32_t *)vc->db_page);
    if (*rc)
        goto fail;
    attach_bdev_mem(vc);
    *rc = setup_device(vc, socket_path, NULL, listen_fd);
    if (*rc)
        goto fail;
    listen_fd = -1; /* the server's now */
    vc->intx_asserted = intx;
    *rc = -EPROTO;
    if (vfio_user_pci_restore(vc->pci, r) || vfio_user_server_restore(vc->srv, r))
        goto fail;
    return vc;
fail:
    if (vnvme_state_in_ok(r))
        vnvme_state_fail(r, strerror(-*rc));
    if (listen_fd >= 0)
        close(listen_fd);
    if (db_fd >= 0)
        close(db_fd);
    nvmet_vfio_user_ctrlr_abandon(vc);
    return NULL;
}

struct nvmet_vfio_user_ctrlr *nvmet_vfio_user_ctrlr_restore(struct nvmet_subsys *ss, const char *socket_path,
                                                            struct vnvme_state_in *in, int *err)
{
    struct vnvme_state_in sec, *r = &sec;
    int rc;
    vnvme_state_enter(in, TAG_VU_CTRLR, r);
    struct nvmet_vfio_user_ctrlr *vc = adopt_device(ss, socket_path, r, true, &rc);
    if (!vc)
        goto fail;
    rc = -EPROTO;
    if (nvmet_ctrlr_restore(&vc->nvme, r))
        goto fail;
    vnvme_state_expect_end(r);
    if (!vnvme_state_in_ok(r))
        goto fail;
    VNVME_INFO(LOG_COMP, "%s: controller %u of %s taken over (CSTS 0x%x)", socket_path, vc->nvme.cntlid, ss->nqn,
               vc->nvme.csts);
    return vc;
fail:
    nvmet_vfio_user_ctrlr_abandon(vc);
    if (err)
        *err = rc;
    return NULL;
}

/* ---- crash recovery (docs/STATE-FORMAT.md, "Crash recovery records") ---- */

#define TAG_VU_RECOVERY 0x4e565243u /* "NVRC" */
#define TAG_CTRLR_RECOVERY 0x4e524543u /* "NREC" */

uint64_t nvmet_vfio_user_control_gen(const struct nvmet_vfio_user_ctrlr *vc)
{
    return vc->control_gen + vfio_user_pci_config_writes(vc->pci);
}

void nvmet_vfio_user_set_owner(struct nvmet_vfio_user_ctrlr *vc, void *owner)
{
    vc->owner = owner;
}

void *nvmet_vfio_user_owner(const struct nvmet_vfio_user_ctrlr *vc)
{
    return vc->owner;
}

int nvmet_vfio_user_ctrlr_save_recovery(struct nvmet_vfio_user_ctrlr *vc, struct vnvme_state_out *w)
{
    int listen_fd, conn_fd;
    vfio_user_server_fds(vc->srv, &listen_fd, &conn_fd);
    size_t at = vnvme_state_begin(w, TAG_VU_RECOVERY);
    vnvme_state_put_fd(w, listen_fd);
    vnvme_state_put_fd(w, vc->db_fd);
    int rc = vfio_user_pci_save(vc->pci, w);
    if (rc == 0)
        rc = vfio_user_server_save_anytime(vc->srv, w);
    /* The controller: what survives a reset, and whether it was enabled (queues cannot be known after a crash). */
    size_t c = vnvme_state_begin(w, TAG_CTRLR_RECOVERY);
    vnvme_state_put_u16(w, vc->nvme.cntlid);
    vnvme_state_put_u32(w, vc->nvme.cc);
    vnvme_state_put_u32(w, vc->nvme.aqa);
    vnvme_state_put_u64(w, vc->nvme.asq);
    vnvme_state_put_u64(w, vc->nvme.acq);
    vnvme_state_end(w, c);
    vnvme_state_end(w, at);
    return rc ? rc : vnvme_state_out_error(w);
}

struct nvmet_vfio_user_ctrlr *nvmet_vfio_user_ctrlr_recover(struct nvmet_subsys *ss, const char *socket_path,
                                                            struct vnvme_state_in *in, int *err)
{
    struct vnvme_state_in sec, *r = &sec, nrec;
    int rc;
    vnvme_state_enter(in, TAG_VU_RECOVERY, r);
    struct nvmet_vfio_user_ctrlr *vc = adopt_device(ss, socket_path, r, false, &rc);
    if (!vc)
        goto fail;
    rc = -EPROTO;
    vnvme_state_enter(r, TAG_CTRLR_RECOVERY, &nrec);
    uint16_t cntlid = vnvme_state_get_u16(&nrec);
    uint32_t cc = vnvme_state_get_u32(&nrec);
    vc->nvme.aqa = vnvme_state_get_u32(&nrec);
    vc->nvme.asq = vnvme_state_get_u64(&nrec);
    vc->nvme.acq = vnvme_state_get_u64(&nrec);
    vnvme_state_expect_end(&nrec);
    vnvme_state_expect_end(r);
    if (!vnvme_state_in_ok(r))
        goto fail;
    vc->nvme.cntlid = cntlid;
    if (cc & NVME_CC_EN) {
        /*
         * Its queues and the commands in flight died with the process. The host
         * sees a controller that failed (CSTS.CFS): its driver resets it on the
         * next timeout and sets it up again, which this process can serve.
         */
        vc->nvme.cc = cc;
        vc->nvme.csts = NVME_CSTS_RDY | NVME_CSTS_CFS;
        vc->nvme.fatal = true;
    }
    VNVME_NOTICE(LOG_COMP, "%s: controller %u of %s recovered after a crash%s", socket_path, cntlid, ss->nqn,
                 (cc & NVME_CC_EN) ? ", reporting a controller fatal status until the host resets it" : "");
    return vc;
fail:
    if (vnvme_state_in_ok(r))
        vnvme_state_fail(r, strerror(-rc));
    nvmet_vfio_user_ctrlr_abandon(vc);
    if (err)
        *err = rc;
    return NULL;
}

void nvmet_vfio_user_ctrlr_abandon(struct nvmet_vfio_user_ctrlr *vc)
{
    if (!vc)
        return;
    /*
     * Local resources only: the client, its queues and memory, the socket file
     * and the doorbell page's contents are another process's now. The
     * controller leaves its subsystem without a reset (no queue is deleted
     * in anyone's eyes), and its bdev channels are closed.
     */
    vfio_user_server_abandon(vc->srv);
    vc->srv = NULL;
    if (vc->pci)
        vfio_user_pci_destroy(vc->pci);
    vc->pci = NULL;
    if (vc->nvme_ready)
        nvmet_ctrlr_forget(&vc->nvme);
    vc->nvme_ready = false;
    nvmet_vfio_user_ctrlr_destroy(vc);
}

void nvmet_vfio_user_ctrlr_destroy(struct nvmet_vfio_user_ctrlr *vc)
{
    if (!vc)
        return;
    /* The server's disconnect calls into the controller (dma_unmap): it goes first. */
    if (vc->srv)
        vfio_user_server_destroy(vc->srv);
    if (vc->pci)
        vfio_user_pci_destroy(vc->pci);
    if (vc->nvme_ready)
        nvmet_ctrlr_fini(&vc->nvme);
    if (vc->db_page)
        munmap(vc->db_page, DB_SIZE);
    if (vc->db_fd >= 0)
        close(vc->db_fd);
    free(vc);
}

/* ---- polling ---- */

static bool intx_still_pending(const struct nvmet_ctrlr *c)
{
    for (uint32_t i = 0; i <= NVMET_MAX_IO_QUEUES; i++) {
        const struct nvmet_cq *cq = &c->cqs[i];
        if (cq->created && cq->ien && cq->tail != cq->head)
            return true;
    }
    return false;
}

int nvmet_vfio_user_poll_data(struct nvmet_vfio_user_ctrlr *vc)
{
    /* With Bus Master Enable clear the function may not touch memory, queues included. */
    if (!vfio_user_pci_bus_master(vc->pci))
        return 0;
    int work = nvmet_ctrlr_poll(&vc->nvme);
    if (vc->intx_asserted && !intx_still_pending(&vc->nvme)) {
        vfio_user_pci_intx_deassert(vc->pci);
        vc->intx_asserted = false;
    }
    return work;
}

uint64_t nvmet_vfio_user_irq_deadline_ns(struct nvmet_vfio_user_ctrlr *vc)
{
    /* Polls are skipped while Bus Master Enable is clear: nothing can be sent before it is set again. */
    return vfio_user_pci_bus_master(vc->pci) ? nvmet_ctrlr_irq_deadline_ns(&vc->nvme) : 0;
}

int nvmet_vfio_user_poll_control(struct nvmet_vfio_user_ctrlr *vc)
{
    return vfio_user_server_poll(vc->srv);
}

void nvmet_vfio_user_fds(struct nvmet_vfio_user_ctrlr *vc, int *listen_fd, int *conn_fd)
{
    vfio_user_server_fds(vc->srv, listen_fd, conn_fd);
}

uint32_t nvmet_vfio_user_connections(const struct nvmet_vfio_user_ctrlr *vc)
{
    return vc->connections;
}

struct nvmet_ctrlr *nvmet_vfio_user_nvme(struct nvmet_vfio_user_ctrlr *vc)
{
    return &vc->nvme;
}

const char *nvmet_vfio_user_socket_path(const struct nvmet_vfio_user_ctrlr *vc)
{
    return vc->socket_path;
}
