/* SPDX-License-Identifier: MIT */
/*
 * vnvme's userspace NVMe driver: attaches to any vfio-user NVMe controller
 * (vnvmed, SPDK's nvmf_tgt with the VFIOUSER transport, ...) through the
 * vfio-user client library, the way a guest's nvme driver attaches to a PCI
 * function. No hugepages and no root: DMA memory is a memfd shared with
 * DMA_MAP.
 *
 * Threads: the controller object (admin queue, AER, reset, namespace list)
 * is used from one thread at a time (the caller serialises; the admin calls
 * take an internal lock so CUSE threads may share it). Each I/O queue pair is
 * used by exactly one thread: submission and completion take no lock, make no
 * syscall (doorbells are stores to the mmapped doorbell page) and allocate
 * nothing.
 */
#ifndef VNVME_NVME_HOST_H
#define VNVME_NVME_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vnvme/nvme_spec.h"

struct vnvme_ctrlr;
struct vnvme_qpair;
struct vnvme_ns;

/* Completion callback: cpl->status holds the phase bit too; use the helpers below. */
typedef void (*vnvme_cmd_cb)(void *arg, const struct nvme_cqe *cpl);

static inline uint16_t vnvme_cpl_status(const struct nvme_cqe *cpl)
{
    return (uint16_t)(cpl->status >> 1); /* status field: DNR, M, CRD, SCT, SC */
}
static inline bool vnvme_cpl_is_error(const struct nvme_cqe *cpl)
{
    return (vnvme_cpl_status(cpl) & 0x7ff) != 0;
}
/* Status values the driver itself reports (SCT 7 = vendor specific, path related). */
#define VNVME_HOST_SC_ABORTED_DISCONNECT NVME_STATUS(0x3, 0x71) /* transport gone: path error */
#define VNVME_HOST_SC_TIMEOUT NVME_STATUS(0x3, 0x72)

struct vnvme_ctrlr_opts {
    uint32_t admin_queue_size; /* 0: 32 */
    uint32_t io_queue_size;    /* 0: 256; clamped to CAP.MQES+1 */
    uint32_t num_io_queues;    /* asked with Set Features Number of Queues; 0: 8 */
    size_t dma_pool_size;      /* 0: 64 MiB of memfd for queues and buffers */
    uint32_t timeout_ms;       /* per command; 0: 30000. On expiry: Abort, then controller reset */
    bool io_interrupts;        /* I/O CQs with IEN=1 and an eventfd per qpair (else pure polling) */
    bool prp_only;             /* PRPs even when the controller takes SGLs (else SGLs beyond two pages) */
    /*
     * Doorbell Buffer Config when the controller has it: I/O queue doorbells
     * go to a shadow page, and the register is written, as a message, only
     * when the controller asks (a sleeping vnvmed reactor does, so the message
     * wakes it). See lib/host/qpair.c and BENCHMARKS.md for what it costs.
     */
    bool doorbell_buffer;
    /* Asynchronous events (namespace changes, errors): called from vnvme_ctrlr_process_admin. */
    void (*aer_cb)(void *arg, uint32_t cdw0);
    void *aer_arg;
};

/*
 * trid: SPDK's transport id string "trtype:VFIOUSER traddr:DIR" (the socket
 * is DIR/cntrl), or a plain socket path. Returns 0 or -errno.
 */
int vnvme_ctrlr_attach(const char *trid, const struct vnvme_ctrlr_opts *opts, struct vnvme_ctrlr **out);
/* Normal shutdown (CC.SHN), then close. Outstanding commands complete with ABORTED_DISCONNECT. */
void vnvme_ctrlr_detach(struct vnvme_ctrlr *c);

const struct nvme_id_ctrl *vnvme_ctrlr_data(const struct vnvme_ctrlr *c);
uint64_t vnvme_ctrlr_cap(const struct vnvme_ctrlr *c);
uint32_t vnvme_ctrlr_vs(const struct vnvme_ctrlr *c);
/* Socket path the controller was attached through. */
const char *vnvme_ctrlr_path(const struct vnvme_ctrlr *c);
/* Whether the controller failed (CFS, disconnect) and needs a reset or reattach. */
bool vnvme_ctrlr_is_failed(const struct vnvme_ctrlr *c);

/* Active namespaces (refreshed on attach, reset, rescan and namespace-change events). */
struct vnvme_ns *vnvme_ctrlr_ns(struct vnvme_ctrlr *c, uint32_t nsid);
struct vnvme_ns *vnvme_ctrlr_first_ns(struct vnvme_ctrlr *c);
struct vnvme_ns *vnvme_ctrlr_next_ns(struct vnvme_ctrlr *c, struct vnvme_ns *ns);
int vnvme_ctrlr_rescan(struct vnvme_ctrlr *c);
uint32_t vnvme_ns_id(const struct vnvme_ns *ns);
const struct nvme_id_ns *vnvme_ns_data(const struct vnvme_ns *ns);
uint64_t vnvme_ns_num_blocks(const struct vnvme_ns *ns);
uint32_t vnvme_ns_block_size(const struct vnvme_ns *ns);
uint32_t vnvme_ns_md_size(const struct vnvme_ns *ns);

/* Controller reset: CC.EN 1->0->1, admin queue and every allocated qpair re-created. */
int vnvme_ctrlr_reset(struct vnvme_ctrlr *c);
/* NVM subsystem reset (NSSR) followed by re-initialisation. */
int vnvme_ctrlr_subsystem_reset(struct vnvme_ctrlr *c);

/* DMA memory from the controller's shared pool (zeroed, align a power of two). */
void *vnvme_dma_alloc(struct vnvme_ctrlr *c, size_t size, size_t align);
void vnvme_dma_free(struct vnvme_ctrlr *c, void *buf);
/* IOVA of a pointer inside the pool, or 0 when it is not pool memory. */
uint64_t vnvme_dma_iova(const struct vnvme_ctrlr *c, const void *buf);

/* Admin commands. Raw: buf may be any memory (copied through the pool when it is not pool memory). */
int vnvme_ctrlr_admin_raw(struct vnvme_ctrlr *c, const struct nvme_sqe *cmd, void *buf, uint32_t len,
                          vnvme_cmd_cb cb, void *arg);
/* Synchronous admin command: waits (processing admin completions); fills *cpl. Returns 0 or -errno. */
int vnvme_ctrlr_admin_sync(struct vnvme_ctrlr *c, const struct nvme_sqe *cmd, void *buf, uint32_t len,
                           struct nvme_cqe *cpl);
/* Poll admin completions, AERs and timeouts; returns completions processed or -errno. */
int vnvme_ctrlr_process_admin(struct vnvme_ctrlr *c);

/* I/O queue pairs: one per thread. qsize 0 = opts.io_queue_size. */
struct vnvme_qpair *vnvme_qpair_alloc(struct vnvme_ctrlr *c, uint32_t qsize);
void vnvme_qpair_free(struct vnvme_qpair *qp);
/* Poll completions (at most max, 0 = all). Returns completions or -errno (-ENXIO after a failure). */
int vnvme_qpair_process(struct vnvme_qpair *qp, uint32_t max);
/* Eventfd that becomes readable on completions (when opts.io_interrupts), else -1. */
int vnvme_qpair_fd(const struct vnvme_qpair *qp);
uint32_t vnvme_qpair_outstanding(const struct vnvme_qpair *qp);
/* Whether transfers beyond two pages go out as one SGL data block (else as a PRP list). */
bool vnvme_qpair_uses_sgl(const struct vnvme_qpair *qp);
/* Whether its doorbells go to the shadow page (opts.doorbell_buffer and the controller has it). */
bool vnvme_qpair_uses_doorbell_buffer(const struct vnvme_qpair *qp);
/* Doorbell register writes the controller asked for through EventIdx so far (sent as messages). */
uint64_t vnvme_qpair_doorbell_notices(const struct vnvme_qpair *qp);

/*
 * I/O. buf: pool memory for zero copy (else it is bounced through the pool).
 * Return 0 (cb will be called exactly once), -EAGAIN (queue full: process
 * completions and retry), or -errno (cb not called).
 */
#define VNVME_IO_FUA (1u << 0)
int vnvme_ns_read(struct vnvme_ns *ns, struct vnvme_qpair *qp, void *buf, uint64_t lba, uint32_t nlb,
                  vnvme_cmd_cb cb, void *arg, uint32_t flags);
int vnvme_ns_write(struct vnvme_ns *ns, struct vnvme_qpair *qp, const void *buf, uint64_t lba, uint32_t nlb,
                   vnvme_cmd_cb cb, void *arg, uint32_t flags);
int vnvme_ns_flush(struct vnvme_ns *ns, struct vnvme_qpair *qp, vnvme_cmd_cb cb, void *arg);
int vnvme_ns_write_zeroes(struct vnvme_ns *ns, struct vnvme_qpair *qp, uint64_t lba, uint32_t nlb,
                          vnvme_cmd_cb cb, void *arg, uint32_t flags);
int vnvme_ns_deallocate(struct vnvme_ns *ns, struct vnvme_qpair *qp, const struct nvme_dsm_range *ranges,
                        uint16_t nr, vnvme_cmd_cb cb, void *arg);
/* Raw I/O command (nsid/opcode/cdws from cmd; cid and data pointer are filled in). */
int vnvme_qpair_submit_raw(struct vnvme_qpair *qp, const struct nvme_sqe *cmd, void *buf, uint32_t len,
                           vnvme_cmd_cb cb, void *arg);

/* PRP construction (exposed for unit tests): fills prp1/prp2 for [iova, iova+len); uses list (a page of
 * pool memory at list_iova/list) when more than two pages are needed. Returns 0 or -EINVAL (len > MDTS). */
int vnvme_build_prps(uint64_t iova, uint32_t len, uint32_t page_size, uint64_t *list, uint64_t list_iova,
                     uint32_t max_entries, uint64_t *prp1, uint64_t *prp2);

#endif
