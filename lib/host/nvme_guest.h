/* SPDX-License-Identifier: MIT */
/*
 * A minimal synchronous NVMe driver over the vfio-user client, used by the
 * integration tests and the demo: what Linux's nvme-pci does on a real PCI
 * function, reduced to the steps they need. (The full userspace driver with
 * per-thread queue pairs is a separate library.) Guest RAM is one memfd
 * shared with DMA_MAP; queues and buffers come from a bump allocator in it. Doorbells go through the mmapped
 * doorbell page unless db_by_message is set (then REGION_WRITE messages).
 * MSI-X vectors 0..NG_VECTORS-1 each get an eventfd.
 */
#ifndef VNVME_HOST_NVME_GUEST_H
#define VNVME_HOST_NVME_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "vnvme/nvme_spec.h"
#include "vnvme/vfio_user_client.h"

#define NG_MEM_IOVA 0x100000000ull /* above 4 GiB: 64-bit addresses everywhere */
#define NG_VECTORS 3u
#define NG_MAX_QUEUES 4u
#define NG_PAGE 4096u

struct ng_queue {
    bool used;
    uint32_t size;    /* SQ entries */
    uint32_t cq_size; /* CQ entries (a shared CQ may differ from the SQs using it) */
    uint16_t cqid;    /* the CQ this SQ completes into (its own qid unless shared) */
    uint64_t sq_iova, cq_iova;
    uint32_t sq_tail; /* next slot we write */
    uint32_t cq_head; /* next slot we read */
    uint8_t phase;    /* phase expected at cq_head */
    uint16_t next_cid;
};

struct nvme_guest {
    struct vfio_user_client *c;
    int memfd;
    uint8_t *mem;
    uint64_t mem_size;
    uint64_t alloc_next;
    volatile uint32_t *db; /* mmapped doorbell page, NULL if not offered */
    bool db_by_message;
    int irq_fds[NG_VECTORS];
    int msix_cap;
    uint64_t cap;
    struct ng_queue q[NG_MAX_QUEUES];
};

/*
 * Connect and bring the PCI function up: memory + bus master, BAR0 mapped,
 * mem_size bytes of guest RAM DMA-mapped at NG_MEM_IOVA, MSI-X enabled with
 * eventfds for NG_VECTORS vectors (unmasked). Returns 0 or -errno.
 */
int ng_open(struct nvme_guest *g, const char *socket_path, uint64_t mem_size);
/* Same, retrying while the server is still busy with a previous client. */
int ng_open_retry(struct nvme_guest *g, const char *socket_path, uint64_t mem_size, int timeout_ms);
void ng_close(struct nvme_guest *g);

int ng_read32(struct nvme_guest *g, uint64_t off, uint32_t *v);
int ng_write32(struct nvme_guest *g, uint64_t off, uint32_t v);
int ng_read64(struct nvme_guest *g, uint64_t off, uint64_t *v);
int ng_write64(struct nvme_guest *g, uint64_t off, uint64_t v);
/* Wait until (CSTS & mask) == value; returns 0, -ETIMEDOUT or a transport error. */
int ng_wait_csts(struct nvme_guest *g, uint32_t mask, uint32_t value, int timeout_ms);

/* Guest RAM. ng_alloc aborts when exhausted; the memory is zeroed. */
uint64_t ng_alloc(struct nvme_guest *g, uint64_t size, uint64_t align);
void *ng_ptr(struct nvme_guest *g, uint64_t iova);

/* CC.EN=0 and wait RDY=0 (forgets host queue state). */
int ng_disable(struct nvme_guest *g);
/* Disable if needed, set up an admin queue of aq_size entries, CC.EN=1, wait RDY=1. */
int ng_enable(struct nvme_guest *g, uint32_t aq_size);
/* CC.SHN=normal and wait for CSTS.SHST=complete. */
int ng_shutdown(struct nvme_guest *g);

/* Write an SQE (cid assigned) and ring the SQ doorbell; returns the cid. */
uint16_t ng_submit(struct nvme_guest *g, uint16_t qid, struct nvme_sqe *sqe);
/* Take the next CQE (phase-checked) from CQ cqid and ring its head doorbell: 0 or -ETIMEDOUT. */
int ng_wait_cqe(struct nvme_guest *g, uint16_t cqid, struct nvme_cqe *out, int timeout_ms);
/* Submit on SQ qid and wait on the CQ it completes into: the status field without the phase bit, or -errno. */
int ng_cmd(struct nvme_guest *g, uint16_t qid, struct nvme_sqe *sqe, struct nvme_cqe *out);
/* Consume pending interrupts of a vector; returns the count seen (waits up to timeout_ms for one). */
uint64_t ng_irq_wait(struct nvme_guest *g, uint32_t vector, int timeout_ms);

/* Admin helpers (status field or -errno). */
int ng_identify(struct nvme_guest *g, uint8_t cns, uint32_t nsid, uint64_t buf_iova);
int ng_set_num_queues(struct nvme_guest *g, uint16_t nsq, uint16_t ncq, uint32_t *result);
/* Create I/O CQ qid (interrupts on vector iv) then SQ qid, size entries each. */
int ng_create_io_queues(struct nvme_guest *g, uint16_t qid, uint32_t size, uint16_t iv);
/* The two halves, for CQs shared by several SQs: a CQ with its own ring, an SQ completing into cqid. */
int ng_create_io_cq(struct nvme_guest *g, uint16_t qid, uint32_t size, uint16_t iv);
int ng_create_io_sq(struct nvme_guest *g, uint16_t qid, uint32_t size, uint16_t cqid);
/* Delete I/O SQ / CQ qid (status or -errno); the host forgets the queue on success. */
int ng_delete_io_sq(struct nvme_guest *g, uint16_t qid);
int ng_delete_io_cq(struct nvme_guest *g, uint16_t qid);

/*
 * Build the PRPs for [buf_iova, buf_iova+len) (page-aligned buffer) into sqe,
 * allocating a PRP list page when more than two pages are needed.
 */
void ng_set_prps(struct nvme_guest *g, struct nvme_sqe *sqe, uint64_t buf_iova, uint64_t len);
/* Read or write nlb blocks at slba through queue qid (status or -errno). */
int ng_rw(struct nvme_guest *g, uint16_t qid, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb,
          uint64_t buf_iova, uint64_t len);

#endif
