/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the NVMe target core's command handling: one
 * controller on a fake transport (guest memory = a memfd at FZ_MEM_IOVA in a
 * vfio_user_dma_table, translation = vfio_user_dma_translate, interrupts
 * counted) with a malloc bdev namespace, enabled once with an admin queue
 * and I/O queue pair 1. Each input is copied into guest memory (see
 * fuzz_nvme_cmd.h for the layout), its SQEs are placed in the admin and I/O
 * rings, doorbells are rung (optionally with fuzzed values), the controller
 * is polled until idle and the CQEs are consumed. Whenever an input leaves
 * the controller in a state the next input cannot start from (fatal,
 * shut down, queues deleted or moved, extra queues, doorbells out of step),
 * the controller is reset and brought back up the same way.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "fuzz_nvme_cmd.h"
#include "target/nvmet.h"
#include "vnvme/vfio_user_dma.h"

#define NR_DOORBELLS (2u * (NVMET_MAX_IO_QUEUES + 1))
#define MAX_POLL_ROUNDS 256

struct host_queue {
    uint64_t sq_iova, cq_iova;
    uint32_t sq_tail, cq_head;
    uint8_t phase;
};

static struct {
    bool ready;
    bool verbose; /* FUZZ_NVME_CMD_VERBOSE set: print every CQE (to check seeds) */
    uint8_t *mem;
    int memfd;
    struct vnvme_bdev *bdev;
    struct vfio_user_dma_table *dma;
    struct nvmet_subsys *ss;
    struct nvmet_ctrlr *c;
    uint32_t doorbells[NR_DOORBELLS];
    uint64_t irqs;
    struct host_queue q[2];
} fz;

static int fz_translate(void *tctx, uint64_t iova, uint64_t len, uint32_t access, struct iovec *iov, int max_iov)
{
    (void)tctx;
    return vfio_user_dma_translate(fz.dma, iova, len, access, iov, max_iov);
}

static void fz_irq(void *tctx, uint16_t vector)
{
    (void)tctx;
    (void)vector;
    fz.irqs++;
}

static const struct nvmet_transport_ops fz_ops = {.translate = fz_translate, .irq = fz_irq};

static void *guest(uint64_t iova)
{
    return fz.mem + (iova - FZ_MEM_IOVA);
}

static uint32_t reg_read32(uint64_t off)
{
    uint32_t v = 0;
    nvmet_ctrlr_reg_read(fz.c, off, &v, 4);
    return v;
}

static void reg_write32(uint64_t off, uint32_t v)
{
    nvmet_ctrlr_reg_write(fz.c, off, &v, 4);
}

static void reg_write64(uint64_t off, uint64_t v)
{
    nvmet_ctrlr_reg_write(fz.c, off, &v, 8);
}

/* CC.EN=0, then the admin queue and I/O queue pair 1 as at start-up. */
static void bring_up(void)
{
    reg_write32(NVME_REG_CC, 0);
    /* Saved feature values outlive resets; forget them so every input starts alike. */
    fz.c->feat_saved_fids = 0;
    nvmet_features_reset(fz.c);
    memset(fz.doorbells, 0, sizeof(fz.doorbells));
    memset(guest(FZ_MEM_IOVA), 0, FZ_INPUT_IOVA - FZ_MEM_IOVA);
    memset(fz.q, 0, sizeof(fz.q));
    fz.q[0] = (struct host_queue){.sq_iova = FZ_ASQ_IOVA, .cq_iova = FZ_ACQ_IOVA, .phase = 1};
    fz.q[1] = (struct host_queue){.sq_iova = FZ_IOSQ_IOVA, .cq_iova = FZ_IOCQ_IOVA, .phase = 1};
    reg_write32(NVME_REG_AQA, ((FZ_QSIZE - 1) << 16) | (FZ_QSIZE - 1));
    reg_write64(NVME_REG_ASQ, FZ_ASQ_IOVA);
    reg_write64(NVME_REG_ACQ, FZ_ACQ_IOVA);
    reg_write32(NVME_REG_CC, (6u << NVME_CC_IOSQES_SHIFT) | (4u << NVME_CC_IOCQES_SHIFT) | NVME_CC_EN);
    if (!(reg_read32(NVME_REG_CSTS) & NVME_CSTS_RDY) || nvmet_cq_create(fz.c, 1, FZ_IOCQ_IOVA, FZ_QSIZE, true, 1) ||
        nvmet_sq_create(fz.c, 1, FZ_IOSQ_IOVA, FZ_QSIZE, 1, 0)) {
        fprintf(stderr, "fuzz_nvme_cmd: cannot bring the controller up\n");
        abort();
    }
}

static int consume(uint16_t qid);

/* The DMA window over guest memory; the table owns the fd it is given, so it gets a duplicate. */
static bool map_guest_memory(void)
{
    int fd = dup(fz.memfd);
    return fd >= 0 && vfio_user_dma_table_add(fz.dma, FZ_MEM_IOVA, FZ_MEM_SIZE,
                                              VFIO_USER_DMA_READ_OK | VFIO_USER_DMA_WRITE_OK, fd, 0) == 0;
}

/* What the vfio-user transport does on DMA_UNMAP: tell the controller, then unmap. */
static void unmap_guest_memory(void)
{
    struct vfio_user_dma_region r;
    if (vfio_user_dma_table_remove(fz.dma, FZ_MEM_IOVA, FZ_MEM_SIZE, &r) != 0)
        abort();
    nvmet_ctrlr_memory_removed(fz.c, r.iova, r.size, r.vaddr, r.io_vaddr);
    vfio_user_dma_region_release(&r);
}

static void poll_and_consume(int max_rounds)
{
    for (int round = 0; round < max_rounds; round++) {
        int work = nvmet_ctrlr_poll(fz.c);
        int got = consume(0) + consume(1);
        if (work == 0 && got == 0)
            break;
    }
}

static void init_once(void)
{
    vnvme_log_set_level(VNVME_LOG_ERROR);
    fz.verbose = getenv("FUZZ_NVME_CMD_VERBOSE") != NULL;
    int memfd = memfd_create("fuzz-guest-ram", MFD_CLOEXEC);
    if (memfd < 0 || ftruncate(memfd, (off_t)FZ_MEM_SIZE) != 0)
        abort();
    fz.mem = mmap(NULL, FZ_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (fz.mem == MAP_FAILED)
        abort();
    fz.memfd = memfd;
    fz.dma = vfio_user_dma_table_create(4);
    if (!fz.dma || !map_guest_memory())
        abort();
    if (vnvme_bdev_malloc_create("FuzzMalloc0", FZ_NS_BLOCKS, FZ_NS_BLOCK_SIZE, NULL, &fz.bdev) != 0)
        abort();
    fz.ss = nvmet_subsys_create("nqn.2026-11.io.vnvme:fuzz", "FUZZ0001", "vnvme fuzz", 32);
    if (!fz.ss || nvmet_subsys_add_ns(fz.ss, fz.bdev, 1, NULL, NULL, NULL) != 1)
        abort();
    fz.c = calloc(1, sizeof(*fz.c));
    if (!fz.c || nvmet_ctrlr_init(fz.c, fz.ss, &fz_ops, NULL, fz.doorbells) != 0)
        abort();
    bring_up();
    fz.ready = true;
}

/* Take the CQEs the controller posted on a host-tracked queue; returns how many. */
static int consume(uint16_t qid)
{
    struct host_queue *q = &fz.q[qid];
    const struct nvme_cqe *ring = guest(q->cq_iova);
    int n = 0;
    while (n < (int)FZ_QSIZE) {
        uint16_t st = __atomic_load_n(&ring[q->cq_head].status, __ATOMIC_ACQUIRE);
        if ((st & 1u) != q->phase)
            break;
        if (fz.verbose)
            fprintf(stderr, "cqe q%u cid %u status 0x%x\n", qid, ring[q->cq_head].cid, st >> 1);
        if (++q->cq_head == FZ_QSIZE) {
            q->cq_head = 0;
            q->phase ^= 1u;
        }
        n++;
    }
    if (n)
        __atomic_store_n(&fz.doorbells[2u * qid + 1u], q->cq_head, __ATOMIC_RELEASE);
    return n;
}

static uint32_t place_sqes(uint16_t qid, const uint8_t *sqes, uint32_t count)
{
    struct host_queue *q = &fz.q[qid];
    struct nvme_sqe *ring = guest(q->sq_iova);
    for (uint32_t i = 0; i < count; i++) {
        memcpy(&ring[q->sq_tail], sqes + (size_t)i * sizeof(struct nvme_sqe), sizeof(struct nvme_sqe));
        q->sq_tail = (q->sq_tail + 1) % FZ_QSIZE;
    }
    if (count)
        __atomic_store_n(&fz.doorbells[2u * qid], q->sq_tail, __ATOMIC_RELEASE);
    return count;
}

/* Can the next input start from here, or does the controller need bringing back up? */
static bool needs_reset(bool doorbells_fuzzed)
{
    struct nvmet_ctrlr *c = fz.c;
    uint32_t csts = reg_read32(NVME_REG_CSTS);
    if (doorbells_fuzzed || c->fatal || !(csts & NVME_CSTS_RDY) || (csts & (NVME_CSTS_CFS | NVME_CSTS_SHST_MASK)))
        return true;
    if (!c->sqs[1].created || !c->cqs[1].created || c->sqs[1].iova != FZ_IOSQ_IOVA ||
        c->cqs[1].iova != FZ_IOCQ_IOVA || c->sqs[1].size != FZ_QSIZE || c->cqs[1].size != FZ_QSIZE ||
        c->sqs[1].cqid != 1)
        return true;
    for (uint32_t q = 2; q <= NVMET_MAX_IO_QUEUES; q++)
        if (c->sqs[q].created || c->cqs[q].created)
            return true;
    /* The rings must be where the host thinks they are, with nothing left unfetched. */
    for (uint16_t q = 0; q < 2; q++)
        if (c->sqs[q].head != fz.q[q].sq_tail || c->cqs[q].tail != fz.q[q].cq_head)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fz.ready)
        init_once();
    struct fz_header h;
    if (size < sizeof(h))
        return 0;
    memcpy(&h, data, sizeof(h));
    size_t copy = size < FZ_INPUT_MAX ? size : FZ_INPUT_MAX;
    memset(guest(FZ_INPUT_IOVA), 0, FZ_INPUT_MAX);
    memcpy(guest(FZ_INPUT_IOVA), data, copy);

    const uint8_t *sqes = data + sizeof(h);
    uint32_t avail = (uint32_t)((copy - sizeof(h)) / sizeof(struct nvme_sqe));
    uint32_t n_admin = h.n_admin % (FZ_MAX_ADMIN + 1);
    uint32_t n_io = h.n_io % (FZ_MAX_IO + 1);
    if (n_admin > avail)
        n_admin = avail;
    if (n_io > avail - n_admin)
        n_io = avail - n_admin;
    place_sqes(0, sqes, n_admin);
    place_sqes(1, sqes + (size_t)n_admin * sizeof(struct nvme_sqe), n_io);

    bool fuzzed_db = false;
    if (h.flags & FZ_F_DOORBELL_A) {
        __atomic_store_n(&fz.doorbells[h.db_slot_a % NR_DOORBELLS], h.db_value_a, __ATOMIC_RELEASE);
        fuzzed_db = true;
    }
    if (h.flags & FZ_F_DOORBELL_B) {
        __atomic_store_n(&fz.doorbells[h.db_slot_b % NR_DOORBELLS], h.db_value_b, __ATOMIC_RELEASE);
        fuzzed_db = true;
    }

    if (h.flags & FZ_F_NS_REMOVE) {
        if (nvmet_subsys_remove_ns(fz.ss, 1) != 0)
            abort();
    }
    if (h.flags & FZ_F_UNMAP) {
        unmap_guest_memory();
        /* Nothing can be fetched or posted now; commands already fetched fail their transfers. */
        for (int round = 0; round < 4; round++)
            nvmet_ctrlr_poll(fz.c);
        if (!map_guest_memory())
            abort();
        nvmet_ctrlr_memory_added(fz.c);
    }
    poll_and_consume(MAX_POLL_ROUNDS);
    if (h.flags & FZ_F_NS_REMOVE) {
        if (nvmet_subsys_add_ns(fz.ss, fz.bdev, 1, NULL, NULL, NULL) != 1)
            abort();
        poll_and_consume(MAX_POLL_ROUNDS);
    }
    if (needs_reset(fuzzed_db))
        bring_up();
    return 0;
}
