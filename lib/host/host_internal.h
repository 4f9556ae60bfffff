/* SPDX-License-Identifier: MIT */
/* Private state of the userspace NVMe driver (lib/host). */
#ifndef VNVME_HOST_INTERNAL_H
#define VNVME_HOST_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vnvme/nvme_host.h"
#include "vnvme/vfio_user_client.h"

#define VNVME_PAGE 4096u
#define VNVME_DMA_IOVA_BASE (1ull << 40) /* 1 TiB: far from anything a server might special-case */
#define VNVME_MAX_AERS 4u
/* PRP lists are one page of 512 entries; no chaining, which caps a command at 2 MiB. */
#define VNVME_PRP_LIST_ENTRIES (VNVME_PAGE / 8u)
/* Preallocated PRP list pages per queue: deeper queues share them (-EAGAIN when exhausted). */
#define VNVME_PRP_LISTS_MAX 256u

/* ---- DMA pool ---- */
struct vnvme_dma_block;
struct vnvme_dma_pool {
    int memfd;
    uint8_t *base;
    size_t size;
    uint64_t iova;
    pthread_mutex_t lock;
    struct vnvme_dma_block *blocks; /* every block, free or used, sorted by offset */
};

int vnvme_dma_pool_init(struct vnvme_dma_pool *p, size_t size, uint64_t iova);
void vnvme_dma_pool_fini(struct vnvme_dma_pool *p);
void *vnvme_dma_pool_alloc(struct vnvme_dma_pool *p, size_t size, size_t align);
void vnvme_dma_pool_free(struct vnvme_dma_pool *p, void *buf);
/* IOVA of [buf, buf+len) when it lies entirely in the pool, else 0. Inline: every zero-copy I/O asks. */
static inline uint64_t vnvme_dma_pool_iova(const struct vnvme_dma_pool *p, const void *buf, size_t len)
{
    const uint8_t *b = buf;
    if (!p->base || b < p->base || b >= p->base + p->size || len > (size_t)(p->base + p->size - b))
        return 0;
    return p->iova + (uint64_t)(b - p->base);
}
size_t vnvme_dma_pool_bytes_free(struct vnvme_dma_pool *p);

/* ---- requests and queues ---- */
struct vnvme_req {
    vnvme_cmd_cb cb;
    void *arg;
    uint64_t deadline_ms; /* 0: no timeout (AERs) */
    void *bounce;         /* pool copy of a caller buffer, NULL for zero copy */
    void *user_buf;       /* where a bounced read is copied back */
    uint32_t len;
    uint16_t cid;
    uint8_t opc;
    bool active;
    bool abort_sent;
    bool aborting;      /* marked by a reset: completed by the reset once queues are back */
    int16_t prp_list;   /* index of the PRP list page in use, -1 none */
    struct vnvme_req *next_free;
};

struct vnvme_queue {
    uint16_t qid;
    uint32_t size;      /* entries */
    struct nvme_sqe *sq;
    volatile struct nvme_cqe *cq;
    uint64_t sq_iova, cq_iova;
    volatile uint32_t *sq_db, *cq_db; /* NULL: doorbells by message */
    /* Doorbell buffer: [0] SQ tail, [1] CQ head of this queue in the shadow and EventIdx pages, or NULL. */
    volatile uint32_t *shadow_db, *event_idx;
    uint64_t db_notices; /* doorbell register writes EventIdx asked for */
    uint32_t sq_tail, cq_head;
    uint8_t phase;
    uint32_t outstanding;
    struct vnvme_req *reqs; /* size - 1 of them, cid = index */
    struct vnvme_req *free_reqs;
    uint64_t *prp_lists; /* nr_prp_lists pages */
    uint64_t prp_lists_iova;
    uint32_t nr_prp_lists;
    int16_t *prp_free; /* stack of free list page indexes */
    uint32_t prp_free_top;
    bool use_sgl; /* I/O queue of a controller with SGLs: one data block descriptor instead of a PRP list */
    /*
     * Clock as of the completion batch being processed: stamps the deadlines
     * of commands submitted from its callbacks. Submissions from outside
     * process() read the clock themselves.
     */
    uint64_t now_ms;
    uint64_t next_timeout_check_ms;
    uint32_t empty_polls;  /* since the clock was last read while commands were outstanding */
    bool in_callbacks;     /* process() is running completion callbacks: SQ doorbell deferred */
    bool sq_db_pending;    /* submissions since the last SQ doorbell store */
};

struct vnvme_ns {
    struct vnvme_ctrlr *ctrlr;
    uint32_t nsid;
    bool active;
    struct nvme_id_ns data;
    uint32_t block_size;
    uint32_t md_size;
    uint64_t num_blocks;
};

struct vnvme_qpair {
    struct vnvme_ctrlr *ctrlr;
    struct vnvme_queue q;
    int irq_fd;
    bool created;
    struct vnvme_qpair *next;
};

struct vnvme_ctrlr {
    char path[256];
    struct vnvme_ctrlr_opts opts;
    struct vfio_user_client *client;
    pthread_mutex_t client_lock; /* the client is single threaded; message doorbells come from I/O threads */
    pthread_mutex_t admin_lock;  /* recursive: admin_sync polls, which may recover, which issues admin_sync */
    struct vnvme_dma_pool pool;
    uint64_t cap;
    uint32_t vs;
    uint32_t dstrd_bytes;
    uint32_t timeout_ms;
    uint32_t clock_slack_ms; /* vnvme_now_ms resolution: added to deadlines so none expires early */
    uint32_t max_xfer;     /* bytes per command: MDTS, capped by the PRP list */
    uint32_t io_queue_size;
    uint32_t max_io_queues; /* granted by Set Features Number of Queues */
    uint32_t nr_msix;
    int msix_cap;
    struct nvme_id_ctrl *id; /* pool memory */
    /* Doorbell Buffer Config: shadow doorbell and EventIdx pages (pool memory), in use when dbbuf_on. */
    uint32_t *dbbuf_dbs, *dbbuf_eis;
    bool dbbuf_on;
    void *scratch;           /* pool page for identify/log pages issued by the driver */
    struct vnvme_queue admin;
    uint32_t aers_outstanding;
    struct vnvme_qpair *qpairs;
    uint64_t qid_used; /* bit qid */
    struct vnvme_ns **ns;
    uint32_t nr_ns, cap_ns;
    bool failed;          /* atomic: read by I/O threads */
    bool recovery_needed; /* atomic: set by I/O threads whose aborts did not help */
    bool rescan_needed;
    bool in_recovery;
    uint32_t pending_aer_cdw0[VNVME_MAX_AERS * 2];
    uint32_t nr_pending_aer;
    uint64_t next_csts_check_ms;
};

/* ---- queue mechanics (qpair.c) ---- */
int vnvme_queue_init(struct vnvme_ctrlr *c, struct vnvme_queue *q, uint16_t qid, uint32_t size);
void vnvme_queue_fini(struct vnvme_ctrlr *c, struct vnvme_queue *q);
/* Forget ring state (the controller forgot the queue): empty rings, phase 1. */
void vnvme_queue_reset_rings(struct vnvme_ctrlr *c, struct vnvme_queue *q);
int vnvme_queue_submit(struct vnvme_ctrlr *c, struct vnvme_queue *q, const struct nvme_sqe *cmd, void *buf,
                       uint32_t len, vnvme_cmd_cb cb, void *arg, bool timed);
int vnvme_queue_process(struct vnvme_ctrlr *c, struct vnvme_queue *q, uint32_t max);
/* Complete one request locally with status (no CQE from the controller). */
void vnvme_queue_complete_local(struct vnvme_ctrlr *c, struct vnvme_queue *q, struct vnvme_req *r, uint16_t status);
/* Complete every outstanding request: expired ones with TIMEOUT, the others with status. */
void vnvme_queue_abort_all(struct vnvme_ctrlr *c, struct vnvme_queue *q, uint16_t status, uint64_t now);
void vnvme_queue_mark_aborting(struct vnvme_queue *q);
void vnvme_queue_complete_aborting(struct vnvme_ctrlr *c, struct vnvme_queue *q, uint16_t status, uint64_t now);
/* Abort (first expiry) and recovery request (second expiry) for expired commands. */
void vnvme_queue_check_timeouts(struct vnvme_ctrlr *c, struct vnvme_queue *q, uint64_t now);
int vnvme_qpair_create_hw(struct vnvme_qpair *qp);

/* ---- controller (ctrlr.c) ---- */
/* Coarse monotonic milliseconds (a few ns, no hardware read); every deadline uses this one clock. */
uint64_t vnvme_now_ms(void);
/* Granularity of vnvme_now_ms, rounded up to whole ms. */
uint32_t vnvme_clock_resolution_ms(void);
int vnvme_reg_read32(struct vnvme_ctrlr *c, uint32_t off, uint32_t *v);
int vnvme_reg_write32(struct vnvme_ctrlr *c, uint32_t off, uint32_t v);
void vnvme_ring_doorbell(struct vnvme_ctrlr *c, volatile uint32_t *db, uint32_t db_index, uint32_t value);
/* The doorbell register db_index written as a message (posted: no reply awaited), whatever the mapping. */
void vnvme_notify_doorbell(struct vnvme_ctrlr *c, uint32_t db_index, uint32_t value);
/* A client call failed: mark the controller failed when the connection is unusable. */
void vnvme_ctrlr_transport_error(struct vnvme_ctrlr *c, int rc);
void vnvme_ctrlr_set_failed(struct vnvme_ctrlr *c);
int vnvme_ctrlr_enable(struct vnvme_ctrlr *c);
int vnvme_ctrlr_configure(struct vnvme_ctrlr *c);
int vnvme_ctrlr_scan_ns(struct vnvme_ctrlr *c);

/* ---- admin (admin.c) ---- */
int vnvme_admin_submit_aers(struct vnvme_ctrlr *c);
int vnvme_ctrlr_recover(struct vnvme_ctrlr *c);
int vnvme_ctrlr_reinit(struct vnvme_ctrlr *c, bool subsystem);

static inline bool vnvme_ctrlr_failed_now(const struct vnvme_ctrlr *c)
{
    return __atomic_load_n(&c->failed, __ATOMIC_ACQUIRE);
}

#endif
