/* SPDX-License-Identifier: MIT */
/*
 * Controller attach, initialisation (the NVMe "controller initialization"
 * sequence over vfio-user), namespace list and detach.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "host_internal.h"
#include "common/log.h"

#define COMP "host"
#define BAR0 VFIO_PCI_BAR0_REGION_INDEX
#define CONFIG VFIO_PCI_CONFIG_REGION_INDEX
#define PCI_COMMAND 0x04
#define PCI_COMMAND_MEMORY 0x2u
#define PCI_COMMAND_MASTER 0x4u
#define PCI_CAP_ID_MSIX 0x11
#define MSIX_ENABLE 0x8000u

/*
 * Deadlines are whole milliseconds checked every few ms, so the coarse clock
 * (the kernel's last tick, read from the vDSO without touching the TSC) is
 * precise enough and several times cheaper than CLOCK_MONOTONIC, which
 * dominated the client's polling loop. It lags real time by less than its
 * resolution; deadlines add that (clock_slack_ms) so none expires early.
 */
uint64_t vnvme_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0)
        clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint32_t vnvme_clock_resolution_ms(void)
{
    struct timespec res;
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) != 0)
        return 1u;
    uint64_t ms = ((uint64_t)res.tv_sec * 1000000000u + (uint64_t)res.tv_nsec + 999999u) / 1000000u;
    return ms > 1000u ? 1000u : (uint32_t)ms;
}

void vnvme_ctrlr_set_failed(struct vnvme_ctrlr *c)
{
    if (!__atomic_exchange_n(&c->failed, true, __ATOMIC_ACQ_REL))
        VNVME_ERR(COMP, "%s: controller failed", c->path);
}

void vnvme_ctrlr_transport_error(struct vnvme_ctrlr *c, int rc)
{
    /* A timed-out request leaves the stream in an unknown state: treat it like a disconnect. */
    if (rc == -ENOTCONN || rc == -ECONNRESET || rc == -EPIPE || rc == -ETIMEDOUT || rc == -EBADF)
        vnvme_ctrlr_set_failed(c);
}

static int cfg_access(struct vnvme_ctrlr *c, uint32_t index, uint64_t off, void *v, size_t len, bool write)
{
    pthread_mutex_lock(&c->client_lock);
    int rc = write ? vfio_user_client_region_write(c->client, index, off, v, len)
                   : vfio_user_client_region_read(c->client, index, off, v, len);
    pthread_mutex_unlock(&c->client_lock);
    if (rc)
        vnvme_ctrlr_transport_error(c, rc);
    return rc;
}

int vnvme_reg_read32(struct vnvme_ctrlr *c, uint32_t off, uint32_t *v)
{
    return cfg_access(c, BAR0, off, v, 4, false);
}

int vnvme_reg_write32(struct vnvme_ctrlr *c, uint32_t off, uint32_t v)
{
    return cfg_access(c, BAR0, off, &v, 4, true);
}

static int reg_write64(struct vnvme_ctrlr *c, uint32_t off, uint64_t v)
{
    int rc = vnvme_reg_write32(c, off, (uint32_t)v);
    return rc ? rc : vnvme_reg_write32(c, off + 4, (uint32_t)(v >> 32));
}

void vnvme_ring_doorbell(struct vnvme_ctrlr *c, volatile uint32_t *db, uint32_t db_index, uint32_t value)
{
    if (db) {
        /*
         * The doorbell page is shared memory that the controller polls with
         * acquire loads, not MMIO. A release store is exactly the ordering
         * needed: the SQ entries we wrote (SQ tail) and the CQ entries we read
         * (CQ head, whose slots the controller may then overwrite) happen
         * before the controller can observe the new value. On x86-64 (TSO)
         * stores are not reordered with older loads or stores, so this is a
         * plain mov plus a compiler barrier; the full fence it replaces
         * ordered only store->load, which nothing here depends on.
         */
        __atomic_store_n(db, value, __ATOMIC_RELEASE);
        return;
    }
    (void)cfg_access(c, BAR0, NVME_REG_DBS + (uint64_t)db_index * c->dstrd_bytes, &value, 4, true);
}

void vnvme_notify_doorbell(struct vnvme_ctrlr *c, uint32_t db_index, uint32_t value)
{
    pthread_mutex_lock(&c->client_lock);
    int rc = vfio_user_client_region_write_posted(c->client, BAR0, NVME_REG_DBS + (uint64_t)db_index * c->dstrd_bytes,
                                                  &value, 4);
    pthread_mutex_unlock(&c->client_lock);
    if (rc)
        vnvme_ctrlr_transport_error(c, rc);
}

static uint32_t cap_timeout_ms(const struct vnvme_ctrlr *c)
{
    uint32_t to = (uint32_t)((c->cap >> NVME_CAP_TO_SHIFT) & 0xff) * 500u;
    return to ? to : 500u;
}

static int wait_csts(struct vnvme_ctrlr *c, uint32_t mask, uint32_t value, uint32_t timeout_ms)
{
    uint64_t end = vnvme_now_ms() + timeout_ms;
    for (;;) {
        uint32_t csts;
        int rc = vnvme_reg_read32(c, NVME_REG_CSTS, &csts);
        if (rc)
            return rc;
        if (csts == 0xffffffffu)
            return -EIO;
        if ((csts & mask) == value)
            return 0;
        if ((csts & NVME_CSTS_CFS) && !(mask & NVME_CSTS_CFS) && (value & NVME_CSTS_RDY))
            return -EIO;
        if (vnvme_now_ms() >= end)
            return -ETIMEDOUT;
        usleep(1000);
    }
}

static int disable(struct vnvme_ctrlr *c)
{
    uint32_t cc, csts;
    int rc = vnvme_reg_read32(c, NVME_REG_CC, &cc);
    if (!rc)
        rc = vnvme_reg_read32(c, NVME_REG_CSTS, &csts);
    if (rc)
        return rc;
    if (!(cc & NVME_CC_EN) && !(csts & NVME_CSTS_RDY))
        return 0;
    rc = vnvme_reg_write32(c, NVME_REG_CC, cc & ~NVME_CC_EN);
    return rc ? rc : wait_csts(c, NVME_CSTS_RDY, 0, cap_timeout_ms(c));
}

/* Disable, program the admin queue, enable and wait for RDY. */
int vnvme_ctrlr_enable(struct vnvme_ctrlr *c)
{
    int rc = disable(c);
    if (rc)
        return rc;
    vnvme_queue_reset_rings(c, &c->admin);
    uint32_t n = c->admin.size - 1u;
    rc = vnvme_reg_write32(c, NVME_REG_AQA, (n << 16) | n);
    if (!rc)
        rc = reg_write64(c, NVME_REG_ASQ, c->admin.sq_iova);
    if (!rc)
        rc = reg_write64(c, NVME_REG_ACQ, c->admin.cq_iova);
    uint32_t cc = (6u << NVME_CC_IOSQES_SHIFT) | (4u << NVME_CC_IOCQES_SHIFT) | (0u << NVME_CC_MPS_SHIFT) |
                  (0u << NVME_CC_CSS_SHIFT) | NVME_CC_EN;
    if (!rc)
        rc = vnvme_reg_write32(c, NVME_REG_CC, cc);
    if (!rc)
        rc = wait_csts(c, NVME_CSTS_RDY | NVME_CSTS_CFS, NVME_CSTS_RDY, cap_timeout_ms(c));
    return rc;
}

static int admin_cmd(struct vnvme_ctrlr *c, struct nvme_sqe *cmd, void *buf, uint32_t len, uint32_t *cdw0)
{
    struct nvme_cqe cpl;
    int rc = vnvme_ctrlr_admin_sync(c, cmd, buf, len, &cpl);
    if (rc)
        return rc;
    if (vnvme_cpl_is_error(&cpl)) {
        VNVME_WARN(COMP, "%s: admin opcode 0x%02x failed: status 0x%x", c->path, cmd->opc, vnvme_cpl_status(&cpl));
        return -EIO;
    }
    if (cdw0)
        *cdw0 = cpl.cdw0;
    return 0;
}

/*
 * Doorbell Buffer Config when the controller has it: zeroed pages (a new
 * queue starts at 0 in both), given again after every reset, which makes the
 * controller forget them. Without it, or if it fails, register doorbells.
 */
static void configure_doorbell_buffer(struct vnvme_ctrlr *c)
{
    c->dbbuf_on = false;
    if (!c->opts.doorbell_buffer || !(c->id->oacs & NVME_CTRL_OACS_DBBUF) || c->dstrd_bytes != 4)
        return;
    if (!c->dbbuf_dbs) {
        c->dbbuf_dbs = vnvme_dma_pool_alloc(&c->pool, VNVME_PAGE, VNVME_PAGE);
        c->dbbuf_eis = vnvme_dma_pool_alloc(&c->pool, VNVME_PAGE, VNVME_PAGE);
        if (!c->dbbuf_dbs || !c->dbbuf_eis)
            return; /* what was allocated stays for the next try; the pool goes at detach */
    }
    memset(c->dbbuf_dbs, 0, VNVME_PAGE);
    memset(c->dbbuf_eis, 0, VNVME_PAGE);
    struct nvme_sqe cmd = {.opc = NVME_ADMIN_DOORBELL_BUFFER_CONFIG};
    cmd.dptr.prp1 = vnvme_dma_pool_iova(&c->pool, c->dbbuf_dbs, VNVME_PAGE);
    cmd.dptr.prp2 = vnvme_dma_pool_iova(&c->pool, c->dbbuf_eis, VNVME_PAGE);
    c->dbbuf_on = admin_cmd(c, &cmd, NULL, 0, NULL) == 0;
}

/* Everything after enable: features, AERs, queue count, doorbell buffer. Also run after a reset. */
int vnvme_ctrlr_configure(struct vnvme_ctrlr *c)
{
    uint32_t want = c->opts.num_io_queues ? c->opts.num_io_queues : 8u;
    if (want > 63)
        want = 63; /* qids are tracked in a 64-bit mask */
    struct nvme_sqe nq = {.opc = NVME_ADMIN_SET_FEATURES, .cdw10 = NVME_FEAT_NUMBER_OF_QUEUES,
                          .cdw11 = ((want - 1u) << 16) | (want - 1u)};
    uint32_t granted;
    int rc = admin_cmd(c, &nq, NULL, 0, &granted);
    if (rc)
        return rc;
    uint32_t nsq = (granted & 0xffffu) + 1u, ncq = (granted >> 16) + 1u;
    uint32_t n = nsq < ncq ? nsq : ncq;
    c->max_io_queues = n < want ? n : want;
    configure_doorbell_buffer(c);
    if (c->id->oaes & NVME_CTRL_OAES_NS_ATTR) {
        struct nvme_sqe aec = {.opc = NVME_ADMIN_SET_FEATURES, .cdw10 = NVME_FEAT_ASYNC_EVENT_CONFIGURATION,
                               .cdw11 = NVME_AEN_CFG_NS_ATTR};
        rc = admin_cmd(c, &aec, NULL, 0, NULL);
        if (rc)
            return rc;
    }
    return vnvme_admin_submit_aers(c);
}

static struct vnvme_ns *ns_get(struct vnvme_ctrlr *c, uint32_t nsid, bool create)
{
    uint32_t lo = 0, hi = c->nr_ns;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (c->ns[mid]->nsid == nsid)
            return c->ns[mid];
        if (c->ns[mid]->nsid < nsid)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!create)
        return NULL;
    if (c->nr_ns == c->cap_ns) {
        uint32_t cap = c->cap_ns ? c->cap_ns * 2 : 16;
        struct vnvme_ns **a = realloc(c->ns, cap * sizeof(*a));
        if (!a)
            return NULL;
        c->ns = a;
        c->cap_ns = cap;
    }
    struct vnvme_ns *ns = calloc(1, sizeof(*ns));
    if (!ns)
        return NULL;
    ns->ctrlr = c;
    ns->nsid = nsid;
    memmove(&c->ns[lo + 1], &c->ns[lo], (c->nr_ns - lo) * sizeof(*c->ns));
    c->ns[lo] = ns;
    c->nr_ns++;
    return ns;
}

/* Namespace objects live until detach so pointers stay valid; removal only clears active. */
int vnvme_ctrlr_scan_ns(struct vnvme_ctrlr *c)
{
    uint32_t *list = c->scratch;
    struct nvme_id_ns *idns = (struct nvme_id_ns *)((uint8_t *)c->scratch + VNVME_PAGE);
    uint32_t *seen = NULL;
    uint32_t nr_seen = 0, prev = 0;
    int rc = 0;
    for (;;) {
        struct nvme_sqe cmd = {.opc = NVME_ADMIN_IDENTIFY, .nsid = prev, .cdw10 = NVME_ID_CNS_ACTIVE_NS_LIST};
        rc = admin_cmd(c, &cmd, list, VNVME_PAGE, NULL);
        if (rc)
            goto out;
        uint32_t n = 0;
        while (n < 1024 && list[n] && list[n] > prev)
            n++;
        uint32_t *s = realloc(seen, (nr_seen + n + 1) * sizeof(*s));
        if (!s) {
            rc = -ENOMEM;
            goto out;
        }
        seen = s;
        memcpy(seen + nr_seen, list, n * sizeof(*list));
        nr_seen += n;
        if (n < 1024)
            break;
        prev = list[1023];
    }
    for (uint32_t i = 0; i < c->nr_ns; i++)
        c->ns[i]->active = false;
    for (uint32_t i = 0; i < nr_seen; i++) {
        struct nvme_sqe cmd = {.opc = NVME_ADMIN_IDENTIFY, .nsid = seen[i], .cdw10 = NVME_ID_CNS_NS};
        rc = admin_cmd(c, &cmd, idns, sizeof(*idns), NULL);
        if (rc == -EIO)
            continue; /* went away between the list and now */
        if (rc)
            goto out;
        if (idns->nsze == 0)
            continue;
        struct vnvme_ns *ns = ns_get(c, seen[i], true);
        if (!ns) {
            rc = -ENOMEM;
            goto out;
        }
        ns->data = *idns;
        const struct nvme_lbaf *f = &idns->lbaf[idns->flbas & 0xfu];
        ns->block_size = f->lbads >= 9 && f->lbads < 32 ? 1u << f->lbads : 512u;
        ns->md_size = f->ms;
        ns->num_blocks = idns->nsze;
        ns->active = true;
    }
out:
    free(seen);
    return rc;
}

static const char *parse_trid(const char *trid, char *out, size_t out_len)
{
    /* "trtype:VFIOUSER traddr:DIR" (keys case-insensitive, any order), or a plain socket path. */
    if (!strchr(trid, ':') || trid[0] == '/' || trid[0] == '.') {
        if (strlen(trid) >= out_len)
            return NULL;
        strcpy(out, trid);
        return out;
    }
    bool vfiouser = false;
    const char *addr = NULL;
    size_t addr_len = 0;
    const char *p = trid;
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *key = p;
        const char *colon = strpbrk(p, ":=");
        if (!colon)
            return NULL;
        size_t key_len = (size_t)(colon - key);
        const char *val = colon + 1;
        size_t val_len = strcspn(val, " \t");
        if (key_len == 6 && strncasecmp(key, "trtype", 6) == 0)
            vfiouser = val_len == 8 && strncasecmp(val, "vfiouser", 8) == 0;
        else if (key_len == 6 && strncasecmp(key, "traddr", 6) == 0) {
            addr = val;
            addr_len = val_len;
        }
        p = val + val_len;
    }
    if (!vfiouser || !addr || addr_len == 0 || addr_len + sizeof("/cntrl") > out_len)
        return NULL;
    memcpy(out, addr, addr_len);
    strcpy(out + addr_len, "/cntrl");
    return out;
}

static int find_msix(struct vnvme_ctrlr *c)
{
    pthread_mutex_lock(&c->client_lock);
    int rc = vfio_user_client_pci_find_cap(c->client, PCI_CAP_ID_MSIX);
    pthread_mutex_unlock(&c->client_lock);
    if (rc < 0 && rc != -ENOENT)
        vnvme_ctrlr_transport_error(c, rc);
    return rc;
}

static int setup_pci(struct vnvme_ctrlr *c)
{
    pthread_mutex_lock(&c->client_lock);
    int rc = vfio_user_client_pci_set16(c->client, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    if (rc) {
        pthread_mutex_unlock(&c->client_lock);
        vnvme_ctrlr_transport_error(c, rc);
        return rc;
    }
    /* Maps the sparse doorbell area when the server offers one; doorbells go by message otherwise. */
    if (!vfio_user_client_region(c->client, BAR0, &rc))
        VNVME_WARN(COMP, "%s: BAR0 region query failed (%d)", c->path, rc);
    else
        rc = 0;
    pthread_mutex_unlock(&c->client_lock);
    if (rc)
        return rc;
    c->msix_cap = find_msix(c);
    if (c->msix_cap < 0) {
        if (c->opts.io_interrupts)
            return c->msix_cap;
        return 0;
    }
    struct vfio_irq_info info = {.argsz = sizeof(info), .index = VFIO_PCI_MSIX_IRQ_INDEX};
    pthread_mutex_lock(&c->client_lock);
    rc = vfio_user_client_irq_info(c->client, VFIO_PCI_MSIX_IRQ_INDEX, &info);
    pthread_mutex_unlock(&c->client_lock);
    c->nr_msix = rc == 0 ? info.count : 0;
    if (!c->opts.io_interrupts)
        return 0;
    uint16_t ctl;
    rc = cfg_access(c, CONFIG, (uint64_t)c->msix_cap + 2, &ctl, 2, false);
    if (rc)
        return rc;
    ctl |= MSIX_ENABLE;
    return cfg_access(c, CONFIG, (uint64_t)c->msix_cap + 2, &ctl, 2, true);
}

static int init(struct vnvme_ctrlr *c)
{
    int rc = setup_pci(c);
    if (rc)
        return rc;
    size_t pool = c->opts.dma_pool_size ? c->opts.dma_pool_size : (64u << 20);
    rc = vnvme_dma_pool_init(&c->pool, pool, VNVME_DMA_IOVA_BASE);
    if (rc)
        return rc;
    pthread_mutex_lock(&c->client_lock);
    rc = vfio_user_client_dma_map(c->client, c->pool.iova, c->pool.size, VFIO_USER_DMA_F_READ | VFIO_USER_DMA_F_WRITE,
                                  c->pool.memfd, 0, c->pool.base);
    pthread_mutex_unlock(&c->client_lock);
    if (rc)
        return rc;
    uint32_t lo, hi;
    rc = vnvme_reg_read32(c, NVME_REG_CAP, &lo);
    if (!rc)
        rc = vnvme_reg_read32(c, NVME_REG_CAP + 4, &hi);
    if (!rc)
        rc = vnvme_reg_read32(c, NVME_REG_VS, &c->vs);
    if (rc)
        return rc;
    c->cap = ((uint64_t)hi << 32) | lo;
    if ((c->cap >> NVME_CAP_MPSMIN_SHIFT) & 0xf)
        return -ENOTSUP; /* 4 KiB pages must be allowed */
    if (!(c->cap & NVME_CAP_CSS_NVM))
        return -ENOTSUP;
    c->dstrd_bytes = 4u << ((c->cap >> NVME_CAP_DSTRD_SHIFT) & 0xf);
    uint32_t mqes = NVME_CAP_MQES(c->cap) + 1u;
    uint32_t aqs = c->opts.admin_queue_size ? c->opts.admin_queue_size : 32u;
    if (aqs > 4096)
        aqs = 4096;
    if (aqs > mqes)
        aqs = mqes;
    if (aqs < 2)
        aqs = 2;
    c->io_queue_size = c->opts.io_queue_size ? c->opts.io_queue_size : 256u;
    if (c->io_queue_size > mqes)
        c->io_queue_size = mqes;
    c->max_xfer = VNVME_PAGE * 2u; /* enough for identify until MDTS is known */
    c->id = vnvme_dma_pool_alloc(&c->pool, sizeof(*c->id), VNVME_PAGE);
    c->scratch = vnvme_dma_pool_alloc(&c->pool, 2 * VNVME_PAGE, VNVME_PAGE);
    if (!c->id || !c->scratch)
        return -ENOMEM;
    rc = vnvme_queue_init(c, &c->admin, 0, aqs);
    if (rc)
        return rc;
    rc = vnvme_ctrlr_enable(c);
    if (rc) {
        VNVME_ERR(COMP, "%s: enable failed (%d)", c->path, rc);
        return rc;
    }
    struct nvme_sqe idc = {.opc = NVME_ADMIN_IDENTIFY, .cdw10 = NVME_ID_CNS_CTRL};
    rc = admin_cmd(c, &idc, c->id, sizeof(*c->id), NULL);
    if (rc)
        return rc;
    uint64_t max = (uint64_t)VNVME_PAGE * VNVME_PRP_LIST_ENTRIES;
    if (c->id->mdts && ((uint64_t)VNVME_PAGE << c->id->mdts) < max)
        max = (uint64_t)VNVME_PAGE << c->id->mdts;
    c->max_xfer = (uint32_t)max;
    rc = vnvme_ctrlr_configure(c);
    if (rc)
        return rc;
    return vnvme_ctrlr_scan_ns(c);
}

static void destroy(struct vnvme_ctrlr *c)
{
    while (c->qpairs) {
        struct vnvme_qpair *qp = c->qpairs;
        c->qpairs = qp->next;
        vnvme_queue_abort_all(c, &qp->q, VNVME_HOST_SC_ABORTED_DISCONNECT, vnvme_now_ms());
        if (qp->irq_fd >= 0)
            close(qp->irq_fd);
        vnvme_queue_fini(c, &qp->q);
        free(qp);
    }
    if (c->admin.reqs) {
        vnvme_queue_abort_all(c, &c->admin, VNVME_HOST_SC_ABORTED_DISCONNECT, vnvme_now_ms());
        vnvme_queue_fini(c, &c->admin);
    }
    if (c->client)
        vfio_user_client_close(c->client);
    vnvme_dma_pool_fini(&c->pool);
    for (uint32_t i = 0; i < c->nr_ns; i++)
        free(c->ns[i]);
    free(c->ns);
    pthread_mutex_destroy(&c->client_lock);
    pthread_mutex_destroy(&c->admin_lock);
    free(c);
}

int vnvme_ctrlr_attach(const char *trid, const struct vnvme_ctrlr_opts *opts, struct vnvme_ctrlr **out)
{
    if (!trid || !out)
        return -EINVAL;
    *out = NULL;
    struct vnvme_ctrlr *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    if (opts)
        c->opts = *opts;
    c->pool.memfd = -1;
    c->msix_cap = -1;
    pthread_mutex_init(&c->client_lock, NULL);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&c->admin_lock, &attr);
    pthread_mutexattr_destroy(&attr);
    if (!parse_trid(trid, c->path, sizeof(c->path))) {
        destroy(c);
        return -EINVAL;
    }
    c->timeout_ms = c->opts.timeout_ms ? c->opts.timeout_ms : 30000u;
    c->clock_slack_ms = vnvme_clock_resolution_ms();
    /* Each vfio-user request waits at most this long: short enough that a hung server is noticed. */
    int client_timeout = c->timeout_ms < 2000u ? 2000 : (c->timeout_ms > 5000u ? 5000 : (int)c->timeout_ms);
    int rc;
    c->client = vfio_user_client_connect(c->path, client_timeout, &rc);
    if (!c->client) {
        destroy(c);
        return rc ? rc : -ECONNREFUSED;
    }
    pthread_mutex_lock(&c->admin_lock);
    rc = init(c);
    pthread_mutex_unlock(&c->admin_lock);
    if (rc) {
        VNVME_ERR(COMP, "%s: attach failed (%d)", c->path, rc);
        destroy(c);
        return rc;
    }
    *out = c;
    return 0;
}

void vnvme_ctrlr_detach(struct vnvme_ctrlr *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->admin_lock);
    if (!vnvme_ctrlr_failed_now(c)) {
        uint32_t cc;
        if (vnvme_reg_read32(c, NVME_REG_CC, &cc) == 0 &&
            vnvme_reg_write32(c, NVME_REG_CC, (cc & ~NVME_CC_SHN_MASK) | (NVME_CC_SHN_NORMAL << NVME_CC_SHN_SHIFT)) == 0)
            if (wait_csts(c, NVME_CSTS_SHST_MASK, NVME_CSTS_SHST_COMPLETE << NVME_CSTS_SHST_SHIFT,
                          cap_timeout_ms(c)) != 0)
                VNVME_WARN(COMP, "%s: shutdown did not complete", c->path);
    }
    /* Everything still outstanding completes now, and nothing new is accepted. */
    __atomic_store_n(&c->failed, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&c->admin_lock);
    destroy(c);
}

const struct nvme_id_ctrl *vnvme_ctrlr_data(const struct vnvme_ctrlr *c)
{
    return c->id;
}

uint64_t vnvme_ctrlr_cap(const struct vnvme_ctrlr *c)
{
    return c->cap;
}

uint32_t vnvme_ctrlr_vs(const struct vnvme_ctrlr *c)
{
    return c->vs;
}

const char *vnvme_ctrlr_path(const struct vnvme_ctrlr *c)
{
    return c->path;
}

bool vnvme_ctrlr_is_failed(const struct vnvme_ctrlr *c)
{
    return vnvme_ctrlr_failed_now(c);
}

struct vnvme_ns *vnvme_ctrlr_ns(struct vnvme_ctrlr *c, uint32_t nsid)
{
    struct vnvme_ns *ns = ns_get(c, nsid, false);
    return ns && ns->active ? ns : NULL;
}

static struct vnvme_ns *active_from(struct vnvme_ctrlr *c, uint32_t i)
{
    for (; i < c->nr_ns; i++)
        if (c->ns[i]->active)
            return c->ns[i];
    return NULL;
}

struct vnvme_ns *vnvme_ctrlr_first_ns(struct vnvme_ctrlr *c)
{
    return active_from(c, 0);
}

struct vnvme_ns *vnvme_ctrlr_next_ns(struct vnvme_ctrlr *c, struct vnvme_ns *ns)
{
    for (uint32_t i = 0; i < c->nr_ns; i++)
        if (c->ns[i] == ns)
            return active_from(c, i + 1);
    return NULL;
}

int vnvme_ctrlr_rescan(struct vnvme_ctrlr *c)
{
    pthread_mutex_lock(&c->admin_lock);
    int rc = vnvme_ctrlr_failed_now(c) ? -ENXIO : vnvme_ctrlr_scan_ns(c);
    pthread_mutex_unlock(&c->admin_lock);
    return rc;
}

uint32_t vnvme_ns_id(const struct vnvme_ns *ns)
{
    return ns->nsid;
}

const struct nvme_id_ns *vnvme_ns_data(const struct vnvme_ns *ns)
{
    return &ns->data;
}

uint64_t vnvme_ns_num_blocks(const struct vnvme_ns *ns)
{
    return ns->num_blocks;
}

uint32_t vnvme_ns_block_size(const struct vnvme_ns *ns)
{
    return ns->block_size;
}

uint32_t vnvme_ns_md_size(const struct vnvme_ns *ns)
{
    return ns->md_size;
}

void *vnvme_dma_alloc(struct vnvme_ctrlr *c, size_t size, size_t align)
{
    return vnvme_dma_pool_alloc(&c->pool, size, align);
}

void vnvme_dma_free(struct vnvme_ctrlr *c, void *buf)
{
    vnvme_dma_pool_free(&c->pool, buf);
}

uint64_t vnvme_dma_iova(const struct vnvme_ctrlr *c, const void *buf)
{
    return vnvme_dma_pool_iova(&c->pool, buf, 1);
}
