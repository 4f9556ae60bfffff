/* SPDX-License-Identifier: MIT */
#include "nvme_guest.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define BAR0 VFIO_PCI_BAR0_REGION_INDEX
#define CONFIG VFIO_PCI_CONFIG_REGION_INDEX
#define PCI_CAP_ID_MSIX 0x11
#define PCI_COMMAND 0x04
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define CMD_TIMEOUT_MS 5000

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int setup_msix(struct nvme_guest *g)
{
    for (unsigned v = 0; v < NG_VECTORS; v++) {
        g->irq_fds[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (g->irq_fds[v] < 0)
            return -errno;
    }
    int rc = vfio_user_client_set_irqs(g->c, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0, NG_VECTORS,
                                       g->irq_fds, NULL);
    if (rc)
        return rc;
    g->msix_cap = vfio_user_client_pci_find_cap(g->c, PCI_CAP_ID_MSIX);
    if (g->msix_cap < 0)
        return g->msix_cap;
    /* MSI-X Enable; the device's table stays untouched, as under QEMU (see lib/host/qpair.c). */
    return vfio_user_client_pci_set16(g->c, (uint64_t)g->msix_cap + 2, 0x8000);
}

int ng_open(struct nvme_guest *g, const char *socket_path, uint64_t mem_size)
{
    int rc;
    memset(g, 0, sizeof(*g));
    g->memfd = -1;
    for (unsigned v = 0; v < NG_VECTORS; v++)
        g->irq_fds[v] = -1;
    g->c = vfio_user_client_connect(socket_path, 5000, &rc);
    if (!g->c)
        return rc;
    rc = vfio_user_client_pci_set16(g->c, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    if (rc)
        goto fail;
    if (!vfio_user_client_region(g->c, BAR0, &rc))
        goto fail;
    g->db = vfio_user_client_region_ptr(g->c, BAR0, NVME_REG_DBS, NG_PAGE);

    g->mem_size = mem_size;
    g->memfd = memfd_create("ng-guest-ram", MFD_CLOEXEC);
    if (g->memfd < 0 || ftruncate(g->memfd, (off_t)mem_size) < 0) {
        rc = -errno;
        goto fail;
    }
    g->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
    if (g->mem == MAP_FAILED) {
        g->mem = NULL;
        rc = -errno;
        goto fail;
    }
    g->alloc_next = NG_MEM_IOVA;
    rc = vfio_user_client_dma_map(g->c, NG_MEM_IOVA, mem_size, VFIO_USER_DMA_F_READ | VFIO_USER_DMA_F_WRITE,
                                  g->memfd, 0, g->mem);
    if (rc)
        goto fail;
    rc = setup_msix(g);
    if (rc)
        goto fail;
    rc = ng_read64(g, NVME_REG_CAP, &g->cap);
    if (rc)
        goto fail;
    return 0;
fail:
    ng_close(g);
    return rc;
}

int ng_open_retry(struct nvme_guest *g, const char *socket_path, uint64_t mem_size, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    int rc;
    for (;;) {
        rc = ng_open(g, socket_path, mem_size);
        if (rc == 0 || now_ms() >= end)
            return rc;
        usleep(20000);
    }
}

void ng_close(struct nvme_guest *g)
{
    if (g->c)
        vfio_user_client_close(g->c);
    if (g->mem)
        munmap(g->mem, g->mem_size);
    if (g->memfd >= 0)
        close(g->memfd);
    for (unsigned v = 0; v < NG_VECTORS; v++)
        if (g->irq_fds[v] >= 0)
            close(g->irq_fds[v]);
    memset(g, 0, sizeof(*g));
    g->memfd = -1;
    for (unsigned v = 0; v < NG_VECTORS; v++)
        g->irq_fds[v] = -1;
}

int ng_read32(struct nvme_guest *g, uint64_t off, uint32_t *v)
{
    return vfio_user_client_region_read(g->c, BAR0, off, v, 4);
}

int ng_write32(struct nvme_guest *g, uint64_t off, uint32_t v)
{
    return vfio_user_client_region_write(g->c, BAR0, off, &v, 4);
}

int ng_read64(struct nvme_guest *g, uint64_t off, uint64_t *v)
{
    return vfio_user_client_region_read(g->c, BAR0, off, v, 8);
}

int ng_write64(struct nvme_guest *g, uint64_t off, uint64_t v)
{
    return vfio_user_client_region_write(g->c, BAR0, off, &v, 8);
}

int ng_wait_csts(struct nvme_guest *g, uint32_t mask, uint32_t value, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint32_t csts;
        int rc = ng_read32(g, NVME_REG_CSTS, &csts);
        if (rc)
            return rc;
        if ((csts & mask) == value)
            return 0;
        if (now_ms() >= end)
            return -ETIMEDOUT;
        usleep(1000);
    }
}

uint64_t ng_alloc(struct nvme_guest *g, uint64_t size, uint64_t align)
{
    if (!align)
        align = 1;
    uint64_t at = (g->alloc_next + align - 1) & ~(align - 1);
    if (at + size > NG_MEM_IOVA + g->mem_size) {
        fprintf(stderr, "ng_alloc: guest memory exhausted\n");
        abort();
    }
    g->alloc_next = at + size;
    memset(g->mem + (at - NG_MEM_IOVA), 0, size);
    return at;
}

void *ng_ptr(struct nvme_guest *g, uint64_t iova)
{
    if (iova < NG_MEM_IOVA || iova >= NG_MEM_IOVA + g->mem_size)
        return NULL;
    return g->mem + (iova - NG_MEM_IOVA);
}

int ng_disable(struct nvme_guest *g)
{
    uint32_t cc;
    int rc = ng_read32(g, NVME_REG_CC, &cc);
    if (!rc)
        rc = ng_write32(g, NVME_REG_CC, cc & ~NVME_CC_EN);
    if (!rc)
        rc = ng_wait_csts(g, NVME_CSTS_RDY, 0, CMD_TIMEOUT_MS);
    memset(g->q, 0, sizeof(g->q));
    return rc;
}

int ng_enable(struct nvme_guest *g, uint32_t aq_size)
{
    int rc = ng_disable(g);
    if (rc)
        return rc;
    struct ng_queue *q = &g->q[0];
    q->used = true;
    q->size = aq_size;
    q->cq_size = aq_size;
    q->phase = 1;
    q->sq_iova = ng_alloc(g, (uint64_t)aq_size * sizeof(struct nvme_sqe), NG_PAGE);
    q->cq_iova = ng_alloc(g, (uint64_t)aq_size * sizeof(struct nvme_cqe), NG_PAGE);
    rc = ng_write32(g, NVME_REG_AQA, ((aq_size - 1) << 16) | (aq_size - 1));
    if (!rc)
        rc = ng_write64(g, NVME_REG_ASQ, q->sq_iova);
    if (!rc)
        rc = ng_write64(g, NVME_REG_ACQ, q->cq_iova);
    if (!rc)
        rc = ng_write32(g, NVME_REG_CC, (6u << NVME_CC_IOSQES_SHIFT) | (4u << NVME_CC_IOCQES_SHIFT) | NVME_CC_EN);
    if (!rc)
        rc = ng_wait_csts(g, NVME_CSTS_RDY | NVME_CSTS_CFS, NVME_CSTS_RDY, CMD_TIMEOUT_MS);
    return rc;
}

int ng_shutdown(struct nvme_guest *g)
{
    uint32_t cc;
    int rc = ng_read32(g, NVME_REG_CC, &cc);
    if (!rc)
        rc = ng_write32(g, NVME_REG_CC, (cc & ~NVME_CC_SHN_MASK) | (NVME_CC_SHN_NORMAL << NVME_CC_SHN_SHIFT));
    if (!rc)
        rc = ng_wait_csts(g, NVME_CSTS_SHST_MASK, NVME_CSTS_SHST_COMPLETE << NVME_CSTS_SHST_SHIFT, CMD_TIMEOUT_MS);
    return rc;
}

static void ring(struct nvme_guest *g, uint32_t slot, uint32_t value)
{
    if (g->db && !g->db_by_message) {
        /* The SQE (or our CQ reads) must be visible before the doorbell store. */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        g->db[slot] = value;
        return;
    }
    (void)vfio_user_client_region_write(g->c, BAR0, NVME_REG_DBS + slot * 4u, &value, 4);
}

uint16_t ng_submit(struct nvme_guest *g, uint16_t qid, struct nvme_sqe *sqe)
{
    struct ng_queue *q = &g->q[qid];
    sqe->cid = q->next_cid++;
    struct nvme_sqe *ring_mem = ng_ptr(g, q->sq_iova);
    memcpy(&ring_mem[q->sq_tail], sqe, sizeof(*sqe));
    q->sq_tail = (q->sq_tail + 1) % q->size;
    ring(g, 2u * qid, q->sq_tail);
    return sqe->cid;
}

int ng_wait_cqe(struct nvme_guest *g, uint16_t cqid, struct nvme_cqe *out, int timeout_ms)
{
    struct ng_queue *q = &g->q[cqid];
    volatile struct nvme_cqe *cq = ng_ptr(g, q->cq_iova);
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    for (uint64_t spins = 0;; spins++) {
        uint16_t status = __atomic_load_n(&cq[q->cq_head].status, __ATOMIC_ACQUIRE);
        if ((status & 1u) == q->phase)
            break;
        if ((spins & 0xff) == 0xff) {
            if (now_ms() >= end)
                return -ETIMEDOUT;
            usleep(50);
        }
    }
    memcpy(out, (const void *)&cq[q->cq_head], sizeof(*out));
    if (++q->cq_head == q->cq_size) {
        q->cq_head = 0;
        q->phase ^= 1;
    }
    ring(g, 2u * cqid + 1u, q->cq_head);
    return 0;
}

int ng_cmd(struct nvme_guest *g, uint16_t qid, struct nvme_sqe *sqe, struct nvme_cqe *out)
{
    struct nvme_cqe local;
    if (!out)
        out = &local;
    uint16_t cid = ng_submit(g, qid, sqe);
    int rc = ng_wait_cqe(g, g->q[qid].cqid, out, CMD_TIMEOUT_MS);
    if (rc)
        return rc;
    if (out->cid != cid || out->sqid != qid)
        return -EPROTO;
    return out->status >> 1;
}

uint64_t ng_irq_wait(struct nvme_guest *g, uint32_t vector, int timeout_ms)
{
    struct pollfd p = {.fd = g->irq_fds[vector], .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    uint64_t n = 0;
    if (read(g->irq_fds[vector], &n, sizeof(n)) != sizeof(n))
        return 0;
    return n;
}

int ng_identify(struct nvme_guest *g, uint8_t cns, uint32_t nsid, uint64_t buf_iova)
{
    struct nvme_sqe sqe = {.opc = NVME_ADMIN_IDENTIFY, .nsid = nsid, .cdw10 = cns};
    sqe.dptr.prp1 = buf_iova;
    return ng_cmd(g, 0, &sqe, NULL);
}

int ng_set_num_queues(struct nvme_guest *g, uint16_t nsq, uint16_t ncq, uint32_t *result)
{
    struct nvme_sqe sqe = {.opc = NVME_ADMIN_SET_FEATURES, .cdw10 = 0x07,
                           .cdw11 = ((uint32_t)(ncq - 1) << 16) | (uint32_t)(nsq - 1)};
    struct nvme_cqe cqe;
    int rc = ng_cmd(g, 0, &sqe, &cqe);
    if (rc == 0 && result)
        *result = cqe.cdw0;
    return rc;
}

int ng_create_io_cq(struct nvme_guest *g, uint16_t qid, uint32_t size, uint16_t iv)
{
    struct ng_queue *q = &g->q[qid];
    q->cq_size = size;
    q->phase = 1;
    q->cq_head = 0;
    q->cq_iova = ng_alloc(g, (uint64_t)size * sizeof(struct nvme_cqe), NG_PAGE);
    /* CDW11: PC (physically contiguous), IEN and the vector. */
    struct nvme_sqe cq = {.opc = NVME_ADMIN_CREATE_IO_CQ,
                          .cdw10 = ((size - 1) << 16) | qid,
                          .cdw11 = ((uint32_t)iv << 16) | 0x2u | 0x1u};
    cq.dptr.prp1 = q->cq_iova;
    return ng_cmd(g, 0, &cq, NULL);
}

int ng_create_io_sq(struct nvme_guest *g, uint16_t qid, uint32_t size, uint16_t cqid)
{
    struct ng_queue *q = &g->q[qid];
    q->size = size;
    q->sq_tail = 0;
    q->next_cid = 0;
    q->cqid = cqid;
    q->sq_iova = ng_alloc(g, (uint64_t)size * sizeof(struct nvme_sqe), NG_PAGE);
    struct nvme_sqe sq = {.opc = NVME_ADMIN_CREATE_IO_SQ,
                          .cdw10 = ((size - 1) << 16) | qid,
                          .cdw11 = ((uint32_t)cqid << 16) | 0x1u};
    sq.dptr.prp1 = q->sq_iova;
    int rc = ng_cmd(g, 0, &sq, NULL);
    if (rc == 0)
        q->used = true;
    return rc;
}

int ng_create_io_queues(struct nvme_guest *g, uint16_t qid, uint32_t size, uint16_t iv)
{
    memset(&g->q[qid], 0, sizeof(g->q[qid]));
    int rc = ng_create_io_cq(g, qid, size, iv);
    if (rc)
        return rc;
    return ng_create_io_sq(g, qid, size, qid);
}

static int delete_queue(struct nvme_guest *g, uint8_t opc, uint16_t qid)
{
    struct nvme_sqe sqe = {.opc = opc, .cdw10 = qid};
    return ng_cmd(g, 0, &sqe, NULL);
}

int ng_delete_io_sq(struct nvme_guest *g, uint16_t qid)
{
    int rc = delete_queue(g, NVME_ADMIN_DELETE_IO_SQ, qid);
    if (rc == 0) {
        g->q[qid].used = false;
        g->q[qid].sq_tail = 0;
        g->q[qid].next_cid = 0;
    }
    return rc;
}

int ng_delete_io_cq(struct nvme_guest *g, uint16_t qid)
{
    int rc = delete_queue(g, NVME_ADMIN_DELETE_IO_CQ, qid);
    if (rc == 0) {
        g->q[qid].cq_head = 0;
        g->q[qid].phase = 1;
    }
    return rc;
}

void ng_set_prps(struct nvme_guest *g, struct nvme_sqe *sqe, uint64_t buf_iova, uint64_t len)
{
    uint64_t pages = (len + NG_PAGE - 1) / NG_PAGE;
    sqe->dptr.prp1 = buf_iova;
    sqe->dptr.prp2 = 0;
    if (pages == 2) {
        sqe->dptr.prp2 = buf_iova + NG_PAGE;
    } else if (pages > 2) {
        /* One list page holds 512 entries: enough for the 1 MiB MDTS without chaining. */
        uint64_t list_iova = ng_alloc(g, NG_PAGE, NG_PAGE);
        uint64_t *list = ng_ptr(g, list_iova);
        for (uint64_t i = 1; i < pages; i++)
            list[i - 1] = buf_iova + i * NG_PAGE;
        sqe->dptr.prp2 = list_iova;
    }
}

int ng_rw(struct nvme_guest *g, uint16_t qid, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb,
          uint64_t buf_iova, uint64_t len)
{
    struct nvme_sqe sqe = {.opc = opc, .nsid = nsid,
                           .cdw10 = (uint32_t)slba, .cdw11 = (uint32_t)(slba >> 32), .cdw12 = nlb - 1};
    ng_set_prps(g, &sqe, buf_iova, len);
    return ng_cmd(g, qid, &sqe, NULL);
}
