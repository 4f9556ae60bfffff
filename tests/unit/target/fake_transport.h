/* SPDX-License-Identifier: MIT */
/*
 * A fake transport for driving the NVMe target core in unit tests: guest
 * memory is a memfd mapped at FT_MEM_IOVA through a real vfio_user_dma_table
 * (so translation, bounds and permission checks are the production ones),
 * interrupts are counted per vector, and the doorbell array is plain memory
 * the test stores into like a host would.
 *
 * The test plays the host: it allocates rings and buffers in guest memory
 * (ft_alloc), writes SQEs, rings doorbells and consumes CQEs with phase
 * checking, exactly as a driver would.
 */
#ifndef VNVME_TEST_FAKE_TRANSPORT_H
#define VNVME_TEST_FAKE_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "nvmet.h"
#include "vnvme/vfio_user_dma.h"

#define FT_MEM_IOVA 0x1000000ull
#define FT_MEM_SIZE (16ull << 20)
#define FT_NR_QUEUES (NVMET_MAX_IO_QUEUES + 1)
#define FT_NR_VECTORS (NVMET_MAX_IO_QUEUES + 1)

/* A synchronous (or deferred) RAM bdev with failure injection. */
struct ft_bdev {
    struct vnvme_bdev bdev;
    uint8_t *data;
    int inject_status;    /* nonzero: every I/O completes with this status */
    int inject_submit;    /* nonzero: submit returns this (cb never called) */
    bool deferred;        /* complete in poll instead of inside submit */
    bool hold;            /* deferred I/Os stay pending: poll completes none */
    bool recallable;      /* ops.abort recalls a pending I/O (-ECANCELED) */
    struct vnvme_bdev_io *pending; /* deferred I/Os, completed by poll */
    uint32_t nr_submitted;
    enum vnvme_bdev_op last_op;
    bool last_fua;
    uint32_t nr_flush;
    uint32_t nr_unmap;
};

/* Host-side view of one queue pair. */
struct ft_queue {
    bool used;
    uint64_t sq_iova, cq_iova;
    uint32_t sq_size, cq_size;
    uint32_t sq_tail; /* next slot the host writes */
    uint32_t cq_head; /* next slot the host reads */
    uint8_t phase;    /* phase the host expects at cq_head */
};

struct ft {
    int memfd;
    uint8_t *mem; /* host view of guest memory (FT_MEM_IOVA) */
    struct vfio_user_dma_table *dma;
    uint64_t alloc_next; /* bump allocator for guest memory */

    uint32_t doorbells[2 * FT_NR_QUEUES];
    uint32_t irq_count[FT_NR_VECTORS];
    uint32_t irq_total;
    uint32_t status_changes;
    uint32_t last_csts;

    struct nvmet_subsys *ss;
    struct nvmet_ctrlr *c;
    struct ft_queue q[FT_NR_QUEUES];
    struct ft_bdev *bdevs[8];
    uint32_t nr_bdevs;
};

/* Transport ops used by ft (exposed so tests can build a second controller). */
extern const struct nvmet_transport_ops ft_ops;

/* Create the memory, subsystem and a controller (disabled). NULL on failure. */
struct ft *ft_create(void);
void ft_destroy(struct ft *ft);

/* Guest memory. */
uint64_t ft_alloc(struct ft *ft, uint64_t size, uint64_t align); /* zeroed; aborts when out of memory */
void *ft_ptr(struct ft *ft, uint64_t iova);                       /* host pointer; NULL outside memory */
void *ft_local(struct ft *ft, uint64_t iova); /* the target's own mapping of iova (what bdevs are given) */

/* Registers (return what nvmet_ctrlr_reg_* returns). */
int ft_reg_write32(struct ft *ft, uint64_t off, uint32_t v);
int ft_reg_write64(struct ft *ft, uint64_t off, uint64_t v);
uint32_t ft_reg_read32(struct ft *ft, uint64_t off);
uint64_t ft_reg_read64(struct ft *ft, uint64_t off);

/*
 * Set up an admin queue pair of aq_size entries (AQA/ASQ/ACQ) and set
 * CC.EN with IOSQES=6, IOCQES=4. Returns CSTS after the write.
 */
uint32_t ft_enable(struct ft *ft, uint32_t aq_size);
/* Clear CC.EN; host-side queue state is forgotten. Returns CSTS. */
uint32_t ft_disable(struct ft *ft);

/*
 * Create I/O queue pair qid (CQ then SQ) directly through the core (not
 * through admin commands). Returns 0 or what nvmet_*_create returned.
 */
int ft_create_io_queues(struct ft *ft, uint16_t qid, uint32_t size, bool ien, uint16_t iv);

/* Namespaces backed by ft_bdev; returns the NSID or -errno. */
int ft_add_ns(struct ft *ft, uint32_t nsid, uint64_t num_blocks, uint32_t block_size, struct ft_bdev **out);
struct ft_bdev *ft_bdev_create(const char *name, uint64_t num_blocks, uint32_t block_size);
void ft_bdev_free(struct ft_bdev *fb);

/* Host side: write an SQE at the tail and ring the SQ tail doorbell. */
void ft_submit(struct ft *ft, uint16_t qid, const struct nvme_sqe *sqe);
/* Write an SQE without ringing the doorbell (to batch several). */
void ft_queue_sqe(struct ft *ft, uint16_t qid, const struct nvme_sqe *sqe);
void ft_ring_sq(struct ft *ft, uint16_t qid);
int ft_poll(struct ft *ft);
/*
 * Fetch the next CQE if its phase matches; advances the host head and
 * writes the CQ head doorbell when ring_db. False when nothing new.
 */
bool ft_get_cqe_ex(struct ft *ft, uint16_t qid, struct nvme_cqe *out, bool ring_db);
bool ft_get_cqe(struct ft *ft, uint16_t qid, struct nvme_cqe *out);
/* Submit, poll until a CQE arrives (bounded), return its status field (without phase) or -1. */
int ft_cmd(struct ft *ft, uint16_t qid, const struct nvme_sqe *sqe, struct nvme_cqe *out);

/* Status field of a CQE without the phase tag. */
static inline uint16_t ft_status(const struct nvme_cqe *cqe)
{
    return (uint16_t)(cqe->status >> 1);
}
/* SCT/SC of a status field (ignoring DNR/More). */
static inline uint16_t ft_sct_sc(uint16_t status)
{
    return (uint16_t)(status & 0x7ff);
}

/* SQE builders. */
void ft_sqe_rw(struct nvme_sqe *sqe, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, uint64_t prp1,
               uint64_t prp2);

#endif
