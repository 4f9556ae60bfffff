/* SPDX-License-Identifier: MIT */
/*
 * vnvme-perf: spdk_nvme_perf's shape on vnvme's userspace NVMe driver. One
 * worker thread per core of the mask, pinned, with its own queue pair per
 * namespace; every I/O buffer is preallocated DMA pool memory (zero copy).
 */
#ifndef VNVME_PERF_H
#define VNVME_PERF_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backoff.h"
#include "latency.h"
#include "vnvme/nvme_host.h"

#define PERF_MAX_CORES 64
#define PERF_MAX_NS 32

enum perf_pattern { PAT_SEQ, PAT_RAND };

struct perf_config {
    const char *trid;
    const char *traddr; /* for display: the traddr part of trid */
    uint32_t queue_depth;
    uint32_t io_size;
    enum perf_pattern pattern;
    const char *workload; /* as given with -w */
    int read_pct;         /* 0..100 */
    uint32_t seconds;
    uint32_t warmup_seconds;
    uint64_t core_mask;
    uint32_t nsid; /* 0: all active */
    bool json;
    bool interrupts;
    bool doorbell_buffer;
    uint32_t coalesce_entries; /* Interrupt Coalescing: 0 leaves the controller's setting alone */
    uint32_t coalesce_us;
    bool verify;
    bool fill; /* write the whole namespace once before the timed run */
    bool idle; /* attach, create the queue pairs, then do nothing for the run time */
    uint32_t rate; /* I/Os per second per namespace and core, paced (0: as fast as completions come) */
};

struct perf_worker;
struct perf_ns_ctx;

/* One outstanding I/O slot: a buffer and what it is doing now. */
struct perf_task {
    struct perf_ns_ctx *ctx;
    void *buf;
    uint64_t lba;
    uint64_t submit_ticks;
    uint32_t slot;       /* index within ctx, selects the verify partition */
    uint32_t generation; /* verify: what this slot last wrote */
    bool is_read;
    bool verify_readback; /* verify: this read checks the write before it */
    bool pending;         /* could not be (re)submitted: retried from the loop */
    bool paced;           /* pending: waits for its turn under --rate (then a fresh I/O) */
};

/* A worker's view of one namespace: its qpair, tasks, offsets and statistics. */
struct perf_ns_ctx {
    struct perf_worker *w;
    struct vnvme_ns *ns;
    struct vnvme_qpair *qp;
    uint32_t nsid;
    uint32_t block_size;
    uint32_t blocks_per_io;
    uint64_t io_units; /* namespace size in I/O units */
    uint64_t next_seq; /* next sequential unit */
    uint64_t fill_end; /* fill pass: units [next_seq, fill_end) remain */
    struct perf_task *tasks;
    uint64_t next_issue;  /* --rate: when the next I/O may go (ticks) */
    uint64_t issue_every; /* --rate: ticks between I/Os */
    uint32_t ntasks;
    uint32_t npending;
    uint64_t io_errors;
    uint64_t verify_failures;
    uint64_t verified;
    uint64_t bytes;
    uint64_t completions_all; /* every phase, fill and drain included */
    struct latency_hist hist;
};

enum perf_phase { PHASE_FILL, PHASE_WARMUP, PHASE_MEASURE, PHASE_STOP };

struct perf_worker {
    const struct perf_config *cfg;
    unsigned core;
    unsigned index, nworkers;
    pthread_t thread;
    struct perf_ns_ctx ns[PERF_MAX_NS];
    unsigned nns;
    uint64_t rng;
    uint64_t batch_ticks; /* timestamp shared by one completion batch, 0 = not taken yet */
    struct perf_backoff backoff; /* polling mode: when to sleep between empty polls */
    uint64_t start_ticks, end_ticks;
    int phase_seen;
    bool submitting;
    bool failed;
    bool fill_done;
};

/* Set by the main thread, read by workers once per loop iteration. */
extern volatile int perf_phase;

void *perf_worker_main(void *arg);

/* Output: the spdk_nvme_perf table, or JSON. */
void perf_report(const struct perf_config *cfg, struct perf_worker *workers, unsigned nworkers);

#endif
