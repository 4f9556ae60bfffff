/* SPDX-License-Identifier: MIT */
/*
 * The NVMe target core: subsystems, namespaces, controllers, queues and
 * requests. Transport-independent: a transport (today vfio-user, in
 * transport_vfio_user.c) supplies client-memory translation, interrupt
 * delivery and the doorbell array through struct nvmet_transport_ops, which
 * is also how unit tests drive the core without a socket.
 *
 * Threading: a controller and all its queues are owned by one reactor
 * thread. Register accesses, admin and I/O commands and completions for a
 * controller all run there, so the core has no locks. Other threads (RPC)
 * talk to a controller only through its reactor's message queue.
 *
 * File map (where to look):
 *   ctrlr.c          controller state: CAP/CC/CSTS/AQA..., enable, reset, shutdown, fatal status
 *   queue.c          SQ/CQ: mapping rings in client memory, doorbells, fetching SQEs, posting CQEs
 *   interrupts.c     completion interrupts, once per CQ per poll round, and Interrupt Coalescing
 *   data_ptr.c       PRP and SGL data pointers -> iovecs through the transport's translation
 *   admin_cmd.c      admin opcode dispatch, Abort, Keep Alive, fused-command refusal
 *   admin_queue.c    Create/Delete I/O SQ and CQ and every validation the spec names
 *   admin_identify.c Identify CNS 00/01/02/03
 *   admin_log.c      Get Log Page: error, SMART, firmware slot, changed NS list, command effects
 *   admin_features.c Get/Set Features
 *   aer.c            Asynchronous Event Requests and event queueing
 *   doorbell_buffer.c Doorbell Buffer Config: shadow doorbells and EventIdx (waking a sleeping reactor)
 *   io_cmd.c         NVM command set: Read, Write, Flush, Write Zeroes, DSM, Compare -> bdev
 *   subsystem.c      subsystems and namespaces (hot add/remove, namespace-changed notices)
 */
#ifndef VNVME_NVMET_H
#define VNVME_NVMET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vnvme/bdev.h"
#include "vnvme/bdev_qos.h"
#include "vnvme/nvme_spec.h"

#define NVMET_MAX_NSID 1024u        /* namespaces per subsystem */
#define NVMET_MAX_IO_QUEUES 64u     /* I/O SQs (and CQs) per controller */
#define NVMET_MAX_QUEUE_ENTRIES 4096u /* CAP.MQES + 1 */
#define NVMET_MDTS 8u               /* 2^8 pages of 4 KiB = 1 MiB per command */
#define NVMET_PAGE_SIZE 4096u       /* CC.MPS = 0 is the only page size supported (MPSMIN = MPSMAX) */
#define NVMET_MAX_DATA_LEN (NVMET_PAGE_SIZE << NVMET_MDTS)
#define NVMET_MAX_IOV 272u          /* 256 data pages + PRP/SGL slack for window splits */
#define NVMET_MAX_REQS_PER_SQ 128u  /* commands in flight per SQ; the rest wait in the SQ (backpressure) */
#define NVMET_AERL 3u               /* AERL is 0's based: 4 outstanding AERs */
#define NVMET_ERROR_LOG_ENTRIES 64u
#define NVMET_CHANGED_NS_MAX 1024u
#define NVMET_QMAP_WORDS ((NVMET_MAX_IO_QUEUES + 1 + 63) / 64) /* 64-bit words of a queue id bitmap */
#define NVMET_DB_SLOTS (2 * (NVMET_MAX_IO_QUEUES + 1)) /* doorbells: SQ y tail at [2y], CQ y head at [2y+1] */

struct nvmet_ctrlr;
struct nvmet_req;

/* doorbell_buffer.c: the host's shadow doorbell and EventIdx pages (I/O queues only). */
struct nvmet_dbbuf {
    bool on;                 /* configured since the last reset */
    uint64_t dbs_iova, eis_iova;
    volatile uint32_t *dbs;  /* shadow doorbells (host writes); NULL while its memory is unmapped */
    volatile uint32_t *eis;  /* EventIdx (we write); NULL while unmapped */
    uint32_t seen[NVMET_DB_SLOTS]; /* shadow values already acted on */
};

/* What the core needs from a transport. */
struct nvmet_transport_ops {
    /*
     * Translate client memory (IOVA) for the given access (VFIO_USER_DMA_READ_OK
     * = device reads, _WRITE_OK = device writes) into iovecs. Returns count or
     * -EFAULT/-EACCES/-ENOSPC, exactly like vfio_user_dma_translate().
     */
    int (*translate)(void *tctx, uint64_t iova, uint64_t len, uint32_t access, struct iovec *iov, int max_iov);
    /* Raise interrupt vector (MSI-X vector or INTx). */
    void (*irq)(void *tctx, uint16_t vector);
    /* Controller status changed (RDY/CFS/SHST), e.g. to log it. Optional. */
    void (*status_changed)(void *tctx, uint32_t csts);
};

/* ---- Subsystems and namespaces ---- */
struct nvmet_ns {
    uint32_t nsid;
    struct vnvme_bdev *bdev;
    uint8_t lbads; /* log2(block size) */
    uint64_t nsze; /* blocks */
    uint8_t nguid[16];
    uint8_t eui64[8];
    uint8_t uuid[16];
    /* Rate limits of this namespace alone (nvmf_ns_set_qos_limit), besides its bdev's; NULL until set. */
    struct vnvme_qos *qos;
};

struct nvmet_subsys {
    char nqn[224];
    char serial[21];
    char model[41];
    uint32_t max_namespaces;
    bool allow_any_host;
    struct nvmet_ns *ns[NVMET_MAX_NSID + 1]; /* by NSID; [0] unused */
    struct nvmet_ctrlr *ctrlrs[16];           /* controllers to notify of namespace changes */
    uint32_t nr_ctrlrs;
    uint16_t next_cntlid;
};

/* ---- Queues and requests ---- */
struct nvmet_cq {
    bool created;
    uint16_t qid;
    uint32_t size;        /* entries */
    uint64_t iova;
    struct nvme_cqe *ring; /* local mapping; NULL while its memory is not mapped (quiesced) */
    uint32_t tail;         /* next slot the controller writes */
    uint32_t head;         /* last head the host wrote to the doorbell */
    uint8_t phase;
    bool ien;
    uint16_t iv;
    uint32_t irq_pending;  /* entries posted since this CQ's last interrupt (interrupts.c) */
    uint64_t coalesce_since_ns; /* when the oldest of them was held back by interrupt coalescing */
    uint32_t nr_sqs;       /* SQs completing here: a CQ with SQs cannot be deleted */
    /* Completed requests waiting for room (CQ full or quiesced), oldest first; linked by next_free. */
    struct nvmet_req *overflow_head, *overflow_tail;
};

/*
 * Field order matters for speed: everything a command touches on its way
 * through (cmd, rsp, bookkeeping, bio) sits in the first few cache lines and
 * the 4 KiB iovec array comes last, so a 4 KiB read touches ~5 lines of the
 * request instead of lines 4 KiB apart.
 */
struct nvmet_req {
    struct nvme_sqe cmd;
    struct nvme_cqe rsp; /* cdw0/cdw1/status filled by the handler; sqhd/sqid/cid/phase at posting */
    struct nvmet_sq *sq;
    struct nvmet_ns *ns;
    struct nvmet_req *next_free;
    int iovcnt;
    bool in_flight;
    bool in_bdev; /* handed to a bdev and not called back yet */
    bool carry;   /* being recalled for a handover: its completion is carried over, not posted (ctrlr_state.c) */
    uint64_t data_len;
    vnvme_bdev_io_cb bdev_cb; /* io_cmd.c's continuation; bio.cb counts commands inside bdevs first */
    struct vnvme_bdev_io bio;
    union {
        struct iovec iov[NVMET_MAX_IOV];
        struct nvme_dsm_range dsm_ranges[256]; /* Dataset Management: ranges copied in once, then unmapped */
    };
};

struct nvmet_sq {
    bool created;
    uint16_t qid;
    uint32_t size;
    uint64_t iova;
    struct nvme_sqe *ring; /* NULL while quiesced */
    uint32_t head;         /* next entry the controller fetches */
    uint32_t tail;         /* last tail the host wrote to the doorbell */
    uint16_t cqid;
    struct nvmet_cq *cq;
    uint8_t qprio;
    struct nvmet_req *reqs; /* min(size - 1, NVMET_MAX_REQS_PER_SQ) entries, preallocated at creation */
    uint32_t nr_reqs;
    struct nvmet_req *free_reqs;
    uint32_t in_flight;
    bool deleting;          /* Delete I/O SQ waits for in-flight commands */
    struct nvmet_req *delete_req;
};

/* ---- Controller ---- */
struct nvmet_features {
    uint32_t arbitration;
    uint32_t power_management;
    uint32_t temp_threshold_over; /* Kelvin */
    uint32_t temp_threshold_under;
    uint32_t error_recovery;
    uint32_t volatile_wc;
    uint32_t num_queues; /* result: NCQA << 16 | NSQA, 0's based */
    bool num_queues_set;
    uint32_t int_coalescing;
    uint32_t int_vector_cfg[NVMET_MAX_IO_QUEUES + 1]; /* per vector: CD bit */
    uint32_t write_atomicity;
    uint32_t async_event_cfg;
    uint64_t timestamp_ms;       /* host-set timestamp ... */
    uint64_t timestamp_set_at_ms; /* ... and our monotonic clock when it was set */
    bool timestamp_set;
    uint8_t host_behavior[512];
    uint32_t keep_alive_ms;
};

struct nvmet_ctrlr {
    uint16_t cntlid;
    struct nvmet_subsys *subsys;
    const struct nvmet_transport_ops *tops;
    void *tctx;
    /* Set by the transport when it can fence client memory: READs of bdevs with fenced_reads use it. */
    const struct vnvme_bdev_mem *bdev_mem;

    /* Registers. */
    uint64_t cap;
    uint32_t vs;
    uint32_t intms; /* INTx mask (INTMS/INTMC) */
    uint32_t cc;
    uint32_t csts;
    uint32_t aqa;
    uint64_t asq;
    uint64_t acq;
    /*
     * Doorbells: 2 * (NVMET_MAX_IO_QUEUES + 1) 32-bit slots, SQ y tail at
     * [2y], CQ y head at [2y+1]. For vfio-user it is the page the client
     * mmaps (writes arrive without any message); REGION_WRITEs to the same
     * offsets store into it too.
     */
    volatile uint32_t *doorbells;

    struct nvmet_sq sqs[NVMET_MAX_IO_QUEUES + 1]; /* [0] = admin */
    struct nvmet_cq cqs[NVMET_MAX_IO_QUEUES + 1];
    struct vnvme_bdev_channel *channels[NVMET_MAX_NSID + 1]; /* lazily created, by NSID */

    struct nvmet_features feat;
    /* admin_features.c: values saved with Set Features SV; kept across controller resets, not the process. */
    struct nvmet_features feat_saved;
    uint32_t feat_saved_fids; /* bit n: feature n has a saved value (n < 32) */

    /* Asynchronous events. */
    struct nvmet_req *aer_reqs[NVMET_AERL + 1];
    uint32_t nr_aer_reqs;
    uint32_t pending_events[16]; /* cdw0 values queued until an AER is outstanding */
    uint32_t nr_pending_events;
    uint32_t masked_event_types; /* event types awaiting their log page read (spec: masked until read) */

    /* Logs. */
    struct nvme_error_log_entry error_log[NVMET_ERROR_LOG_ENTRIES];
    uint64_t error_count;
    uint32_t changed_ns[NVMET_CHANGED_NS_MAX];
    uint32_t nr_changed_ns; /* NVMET_CHANGED_NS_MAX + 1 = overflow (list reports FFFFFFFFh) */
    /* SMART counters. */
    uint64_t units_read, units_written; /* 1000 x 512 bytes each */
    uint64_t read_cmds, write_cmds;
    /* What nvmf_get_stats shows, counted by the owning reactor alone. */
    uint64_t cqes_posted;    /* completions written into CQs */
    uint64_t irqs_raised;    /* interrupts sent (coalescing: fewer than completions) */
    uint64_t irqs_coalesced; /* completions that shared another's interrupt (each raise: entries since the last - 1) */
    uint64_t cq_full_holds;  /* completions held because their CQ was full */
    uint64_t dbbuf_arms;     /* times EventIdx was armed for a reactor about to sleep */
    uint64_t busy_ticks;       /* Controller Busy Time (common/ticks.h): I/O outstanding in a bdev */
    uint64_t busy_since_ticks; /* when in_bdev last went from 0 to 1 */
    uint64_t power_on_ms_base;
    uint64_t keep_alive_deadline_ms;
    bool fatal; /* CSTS.CFS is set; the controller only answers resets */
    uint32_t in_bdev; /* commands whose data transfer a bdev may still be doing */

    /* Data path bookkeeping (ctrlr.c, queue.c, io_cmd.c). */
    uint32_t db_seen[NVMET_DB_SLOTS]; /* doorbell register values already acted on */
    struct nvmet_dbbuf dbbuf;
    uint32_t chan_nsids[NVMET_MAX_NSID];             /* NSIDs with a channel, polled each round */
    uint32_t nr_chans;
    uint32_t chan_gen;                                /* changes whenever a channel comes or goes */
    uint64_t sectors_read, sectors_written;           /* 512-byte units behind units_read/written */
    uint32_t polls;                                   /* keep alive is checked every 1024 polls */
    /*
     * Queue id sets (bit q of word q / 64) so the poll visits only what
     * exists or has work instead of all NVMET_MAX_IO_QUEUES + 1 slots.
     * Maintained by queue.c (create/destroy/post/overflow); see nvmet_qmap_next().
     */
    uint64_t sq_created_map[NVMET_QMAP_WORDS];
    uint64_t cq_created_map[NVMET_QMAP_WORDS];
    uint64_t cq_irq_map[NVMET_QMAP_WORDS];      /* CQs with completions posted since the last interrupt */
    uint64_t cq_coalesce_map[NVMET_QMAP_WORDS]; /* CQs whose interrupt coalescing holds back (interrupts.c) */
    uint64_t cq_overflow_map[NVMET_QMAP_WORDS]; /* CQs whose overflow list may be non-empty (never the reverse) */
    uint32_t db_busy_checks; /* queue.c: doorbell checks that found work, paces the full doorbell scan */
    uint32_t db_idle_checks; /* queue.c: the same for idle checks while polled_rarely */
    /*
     * Set by the poller while it polls this controller less often (idle for a
     * while, nvmet_ctrlr_doorbell_watch): each of its polls then checks the
     * keep-alive timeout (busy ones: every KA_CHECK_EVERY-th), and only every
     * DB_IDLE_CHECK_EVERY-th idle one compares the whole doorbell page.
     */
    bool polled_rarely;
    bool ka_activity;                                 /* a command arrived since the last check */
    bool fetch_paused; /* a handover is draining the controller: no new command is fetched (ctrlr_state.c) */
    /* I/O commands recalled from a stuck bdev for a handover, to run again where the controller continues. */
    struct nvmet_carried {
        uint16_t sqid;
        struct nvme_sqe cmd;
    } *carried;
    uint32_t nr_carried, carried_cap;
};

/* ctrlr.c */
int nvmet_ctrlr_init(struct nvmet_ctrlr *c, struct nvmet_subsys *ss, const struct nvmet_transport_ops *tops,
                     void *tctx, volatile uint32_t *doorbells);
/* The same, leaving the doorbell page as it is: for a controller a handover rebuilds (ctrlr_state.c). */
int nvmet_ctrlr_init_keep_doorbells(struct nvmet_ctrlr *c, struct nvmet_subsys *ss,
                                    const struct nvmet_transport_ops *tops, void *tctx, volatile uint32_t *doorbells);
void nvmet_ctrlr_fini(struct nvmet_ctrlr *c);
/* Let go of a controller another process now runs (after nvmet_ctrlr_save): no reset, nothing posted, no doorbell written. */
void nvmet_ctrlr_forget(struct nvmet_ctrlr *c);
/* BAR0 register file (offset < 0x1000): 4- and 8-byte accesses. Returns 0 or -EINVAL. */
int nvmet_ctrlr_reg_read(struct nvmet_ctrlr *c, uint64_t offset, void *buf, size_t len);
int nvmet_ctrlr_reg_write(struct nvmet_ctrlr *c, uint64_t offset, const void *buf, size_t len);
/* Controller-level reset (CC.EN 1->0 or NVM subsystem reset): queues deleted, registers to defaults. */
void nvmet_ctrlr_reset(struct nvmet_ctrlr *c);
/* Internal failure: set CSTS.CFS, stop processing until reset. */
void nvmet_ctrlr_fatal(struct nvmet_ctrlr *c, const char *why);
/*
 * ctrlr_state.c: handover to another process (docs/STATE-FORMAT.md). With
 * fetch_paused set the poll fetches no new command but finishes what is in
 * flight; quiet is when only the host's outstanding AERs are left, and only a
 * quiet controller can be saved (-EBUSY). restore runs on a controller from
 * nvmet_ctrlr_init_keep_doorbells whose client memory is already mapped; -EPROTO
 * (reason in r) for state it cannot take.
 */
bool nvmet_ctrlr_quiet(const struct nvmet_ctrlr *c);
/*
 * A bdev that holds commands it has not started (a delay bdev, RBD) need not
 * hold up a handover: recall them now, without completing them to the host;
 * they travel with the state and run again (in the new process, or here when
 * the handover fails). Returns how many were recalled.
 */
uint32_t nvmet_ctrlr_recall_for_handover(struct nvmet_ctrlr *c);
/* Run the carried commands again (the poll does it once fetching resumes). */
void nvmet_ctrlr_resubmit_carried(struct nvmet_ctrlr *c);
/* queue.c: a recalled command's completion goes to c->carried instead of its CQ. */
void nvmet_req_carry(struct nvmet_req *req);
struct vnvme_state_out;
struct vnvme_state_in;
int nvmet_ctrlr_save(const struct nvmet_ctrlr *c, struct vnvme_state_out *w);
int nvmet_ctrlr_restore(struct nvmet_ctrlr *c, struct vnvme_state_in *r);
/* Poll doorbells and bdev channels: returns work done (0 = idle). The reactor's hot loop. */
int nvmet_ctrlr_poll(struct nvmet_ctrlr *c);
/* Client memory is going away / came back: unmap rings (quiesce) or remap them. */
/*
 * The client's window [iova, iova + size), mapped here at vaddr (NULL: not
 * mapped) and, for bdev I/O that can be fenced, at io_vaddr (NULL: no such
 * mapping), is going away. True when commands with data in it are still in
 * bdevs after recall and a wait (they may yet write it: quarantine it).
 */
bool nvmet_ctrlr_memory_removed(struct nvmet_ctrlr *c, uint64_t iova, uint64_t size, void *vaddr, void *io_vaddr);
void nvmet_ctrlr_memory_added(struct nvmet_ctrlr *c);

/* queue.c */
int nvmet_cq_create(struct nvmet_ctrlr *c, uint16_t qid, uint64_t iova, uint32_t size, bool ien, uint16_t iv);
/*
 * Both return 0 or an NVMe status field (NVME_STATUS(sct, sc)) ready for
 * rsp.status: Invalid Queue Identifier (qid out of range or in use), Invalid
 * Queue Size, Completion Queue Invalid (sq: cqid not created), Invalid Field
 * (ring not contiguously mapped in client memory), Internal (allocation).
 * The caller (admin_queue.c, ctrlr.c for qid 0) does the remaining spec checks.
 */
int nvmet_sq_create(struct nvmet_ctrlr *c, uint16_t qid, uint64_t iova, uint32_t size, uint16_t cqid, uint8_t qprio);
/*
 * The same without resetting the queue's doorbell: for a queue rebuilt from a
 * handover (ctrlr_state.c). Without must_map a ring whose memory is not mapped
 * is accepted, quiesced, as it was in the process that saved it (its client
 * went away, or unmapped the memory).
 */
int nvmet_cq_adopt(struct nvmet_ctrlr *c, uint16_t qid, uint64_t iova, uint32_t size, bool ien, uint16_t iv,
                   bool must_map);
int nvmet_sq_adopt(struct nvmet_ctrlr *c, uint16_t qid, uint64_t iova, uint32_t size, uint16_t cqid, uint8_t qprio,
                   bool must_map);
void nvmet_sq_destroy(struct nvmet_ctrlr *c, struct nvmet_sq *sq);
void nvmet_cq_destroy(struct nvmet_ctrlr *c, struct nvmet_cq *cq);
/* (Re)map a queue's ring through the transport; false when its memory is not (yet) mapped. */
bool nvmet_sq_map(struct nvmet_ctrlr *c, struct nvmet_sq *sq);
bool nvmet_cq_map(struct nvmet_ctrlr *c, struct nvmet_cq *cq);
/* Fetch and start up to budget commands from sq; returns how many. */
int nvmet_sq_process(struct nvmet_ctrlr *c, struct nvmet_sq *sq, uint32_t budget);
/*
 * Finish a request: post its CQE (rsp.status is the status field without phase) and free it.
 * Delete I/O SQ protocol: the admin side sets sq->deleting (fetching stops) and, when
 * sq->in_flight != 0, parks its own request in sq->delete_req; the completion that
 * brings in_flight to 0 then destroys the SQ and completes delete_req with success.
 */
void nvmet_req_complete(struct nvmet_req *req);
/* Set the status of a request (SCT/SC, optional DNR) */
static inline void nvmet_req_status(struct nvmet_req *req, uint8_t sct, uint8_t sc, bool dnr)
{
    req->rsp.status = (uint16_t)(NVME_STATUS(sct, sc) | (dnr ? NVME_STATUS_DNR : 0));
}
/* Post completions that waited for CQ room, oldest first; returns how many were posted. */
int nvmet_cq_flush_overflow(struct nvmet_ctrlr *c, struct nvmet_cq *cq);

/* interrupts.c */
/*
 * Send interrupts for CQs that got completions (batched once per poll), as
 * Interrupt Coalescing allows; those held back are sent by a later call, at
 * nvmet_ctrlr_irq_deadline_ns() at the latest.
 */
void nvmet_ctrlr_flush_irqs(struct nvmet_ctrlr *c);
/* CLOCK_MONOTONIC ns by which a held-back interrupt is due, or 0 when none is (or the controller is not polled). */
uint64_t nvmet_ctrlr_irq_deadline_ns(const struct nvmet_ctrlr *c);
/* Check doorbell values written by the host; invalid writes raise an AER. */
void nvmet_ctrlr_check_doorbells(struct nvmet_ctrlr *c);
/*
 * What a poller can watch by itself to tell whether an idle controller needs
 * a full poll: the submission doorbell (or shadow doorbell) of each existing
 * queue and the value last acted on (other doorbell writes, such as CQ heads
 * and invalid registers, wait for the next full poll),
 * at most max of them. Valid until the controller's queues, doorbell buffer
 * or memory change, which only commands and messages do. Returns the count,
 * or -1 when there are more than max or no doorbell page.
 */
int nvmet_ctrlr_doorbell_watch(const struct nvmet_ctrlr *c, const volatile uint32_t **words, uint32_t *seen, int max);
/* Act on the value of doorbell slot (register or shadow) as a write of v. */
void nvmet_doorbell_write(struct nvmet_ctrlr *c, uint32_t slot, uint32_t v);

/* doorbell_buffer.c */
void nvmet_execute_doorbell_buffer_config(struct nvmet_req *req);
void nvmet_dbbuf_reset(struct nvmet_ctrlr *c);
void nvmet_dbbuf_memory_removed(struct nvmet_ctrlr *c, uint64_t iova, uint64_t size);
void nvmet_dbbuf_memory_added(struct nvmet_ctrlr *c);
/*
 * Before a sleep that only a doorbell write could end early: ask the host
 * for a doorbell write on its next submission to any I/O SQ (EventIdx).
 * NVMET_DB_ARMED: done, nothing new yet; NVMET_DB_PENDING: a submission is
 * already in the shadow page (poll instead of sleeping); NVMET_DB_UNARMED:
 * no doorbell buffer, the host writes doorbells without notice.
 */
enum { NVMET_DB_UNARMED, NVMET_DB_ARMED, NVMET_DB_PENDING };
int nvmet_ctrlr_arm_doorbells(struct nvmet_ctrlr *c);

/* data_ptr.c: map the command's PRP/SGL for len bytes into req->iov; returns an NVMe status (0 = ok). */
uint16_t nvmet_req_map_data(struct nvmet_req *req, uint64_t len, uint32_t access);

/* io_cmd.c: poll the bdev channels of this controller; drop the channel of a removed namespace. */
int nvmet_io_poll_channels(struct nvmet_ctrlr *c);
void nvmet_io_release_channel(struct nvmet_ctrlr *c, uint32_t nsid);
/* Recall a command from its bdev if the bdev can (it then completes as aborted); true when it did. */
bool nvmet_io_abort(struct nvmet_req *req);
/* nvmet_io_abort for every command of the SQ still in flight. */
void nvmet_sq_recall(struct nvmet_sq *sq);
/*
 * For a loop that sleeps while commands are inside bdevs (c->in_bdev): the
 * fds that become readable when a channel has completions to poll (bdevs
 * without one are left out). Fills up to max and returns how many there are
 * in all; valid until c->chan_gen changes.
 */
uint32_t nvmet_io_channel_fds(struct nvmet_ctrlr *c, int *fds, uint32_t max);

/* admin_*.c and io_cmd.c: execute a fetched command (complete it now or later). */
void nvmet_admin_execute(struct nvmet_req *req);
void nvmet_io_execute(struct nvmet_req *req);
/* Admin helpers. */
void nvmet_execute_create_io_cq(struct nvmet_req *req);
void nvmet_execute_create_io_sq(struct nvmet_req *req);
void nvmet_execute_delete_io_cq(struct nvmet_req *req);
void nvmet_execute_delete_io_sq(struct nvmet_req *req);
void nvmet_execute_identify(struct nvmet_req *req);
void nvmet_execute_get_log_page(struct nvmet_req *req);
void nvmet_execute_get_features(struct nvmet_req *req);
void nvmet_execute_set_features(struct nvmet_req *req);
void nvmet_execute_async_event_request(struct nvmet_req *req);
/*
 * admin_features.c: current feature values = defaults, then the values saved
 * with Set Features SV (feat_saved, feat_saved_fids). For controller init
 * (nothing saved yet) and controller-level reset.
 */
void nvmet_features_reset(struct nvmet_ctrlr *c);
/* admin_log.c: SMART critical warning bits as they stand now. */
uint8_t nvmet_smart_critical_warning(const struct nvmet_ctrlr *c);
/* admin_log.c: Controller Busy Time in ticks (common/ticks.h), the stretch still running included. */
uint64_t nvmet_ctrlr_busy_ticks(const struct nvmet_ctrlr *c);
/* Copy a controller-built buffer to/from the command's data pointer; returns an NVMe status. */
uint16_t nvmet_req_copy_to_host(struct nvmet_req *req, const void *buf, size_t len);
uint16_t nvmet_req_copy_from_host(struct nvmet_req *req, void *buf, size_t len);

/* aer.c */
void nvmet_aer_post(struct nvmet_ctrlr *c, uint8_t type, uint8_t info, uint8_t log_page);
void nvmet_aer_log_read(struct nvmet_ctrlr *c, uint8_t log_page); /* unmasks that event type */
void nvmet_aer_abort_all(struct nvmet_ctrlr *c);                  /* on reset: outstanding AERs are aborted */
/* Abort: take req off the outstanding AER list; true when it was an outstanding AER. */
bool nvmet_aer_cancel(struct nvmet_ctrlr *c, struct nvmet_req *req);
/* errors reported in the error log */
void nvmet_error_log_add(struct nvmet_ctrlr *c, const struct nvmet_req *req, uint16_t status);

/* subsystem.c */
struct nvmet_subsys *nvmet_subsys_create(const char *nqn, const char *serial, const char *model,
                                         uint32_t max_namespaces);
void nvmet_subsys_destroy(struct nvmet_subsys *ss);
/* nsid 0 = lowest free. Claims the bdev. Returns the NSID or -errno. Notifies controllers. */
int nvmet_subsys_add_ns(struct nvmet_subsys *ss, struct vnvme_bdev *bdev, uint32_t nsid, const uint8_t *nguid,
                        const uint8_t *eui64, const uint8_t *uuid);
int nvmet_subsys_remove_ns(struct nvmet_subsys *ss, uint32_t nsid);
int nvmet_subsys_add_ctrlr(struct nvmet_subsys *ss, struct nvmet_ctrlr *c);
void nvmet_subsys_remove_ctrlr(struct nvmet_subsys *ss, struct nvmet_ctrlr *c);
/* Record a namespace change on a controller and raise the notice AEN if enabled. */
void nvmet_ctrlr_ns_changed(struct nvmet_ctrlr *c, uint32_t nsid);

/* Queue id bitmaps (struct nvmet_ctrlr's *_map fields). */
static inline void nvmet_qmap_set(uint64_t *map, uint32_t q)
{
    map[q / 64] |= 1ull << (q % 64);
}
static inline void nvmet_qmap_clear(uint64_t *map, uint32_t q)
{
    map[q / 64] &= ~(1ull << (q % 64));
}
/*
 * Lowest id >= from in the map, or a value > NVMET_MAX_IO_QUEUES when none.
 * It reads the live map, so a loop may change the map as it goes (like a
 * loop over the queue array would see queues created or deleted behind it).
 */
static inline uint32_t nvmet_qmap_next(const uint64_t *map, uint32_t from)
{
    uint32_t w = from / 64;
    if (w >= NVMET_QMAP_WORDS)
        return NVMET_MAX_IO_QUEUES + 1;
    uint64_t bits = map[w] & (~0ull << (from % 64));
    while (!bits) {
        if (++w >= NVMET_QMAP_WORDS)
            return NVMET_MAX_IO_QUEUES + 1;
        bits = map[w];
    }
    return w * 64 + (uint32_t)__builtin_ctzll(bits);
}
static inline bool nvmet_qmap_any(const uint64_t *map)
{
    uint64_t any = 0;
    for (uint32_t w = 0; w < NVMET_QMAP_WORDS; w++)
        any |= map[w];
    return any != 0;
}
#define NVMET_QMAP_FOREACH(q, map) \
    for (uint32_t q = nvmet_qmap_next((map), 0); q <= NVMET_MAX_IO_QUEUES; q = nvmet_qmap_next((map), q + 1))

/*
 * Start a command: a free request of sq (the caller checked sq->free_reqs)
 * with one copy of cmd, counted in flight. The host may rewrite its SQ slot
 * at any time; only this copy is ever looked at.
 */
static inline struct nvmet_req *nvmet_req_take(struct nvmet_sq *sq, const struct nvme_sqe *cmd)
{
    struct nvmet_req *req = sq->free_reqs;
    sq->free_reqs = req->next_free;
    sq->in_flight++;
    __builtin_memcpy(&req->cmd, cmd, sizeof(req->cmd));
    __builtin_memset(&req->rsp, 0, sizeof(req->rsp));
    req->ns = NULL;
    req->iovcnt = 0;
    req->data_len = 0;
    req->next_free = NULL;
    req->in_flight = true;
    return req;
}

/* The request's controller: requests belong to an SQ, SQs live in their controller's array. */
static inline struct nvmet_ctrlr *nvmet_sq_ctrlr(struct nvmet_sq *sq)
{
    return (struct nvmet_ctrlr *)((char *)(sq - sq->qid) - __builtin_offsetof(struct nvmet_ctrlr, sqs));
}
static inline struct nvmet_ctrlr *nvmet_req_ctrlr(struct nvmet_req *req)
{
    return nvmet_sq_ctrlr(req->sq);
}

uint64_t nvmet_now_ms(void); /* CLOCK_MONOTONIC in ms (ctrlr.c) */
uint64_t nvmet_now_ns(void); /* CLOCK_MONOTONIC in ns (ctrlr.c) */

#endif
