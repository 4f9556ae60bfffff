/* SPDX-License-Identifier: MIT */
/*
 * vnvme-perf: NVMe I/O benchmark over vfio-user, with spdk_nvme_perf's
 * options and output. Setup (attach, queue pairs, DMA buffers) happens on the
 * main thread, which then only flips the phase (fill, warm-up, measure, stop);
 * the workers own their queue pairs from then on.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "perf.h"

#define BUF_ALIGN 4096u

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: vnvme-perf -r TRID -q DEPTH -o BYTES -w WORKLOAD -t SECONDS [options]\n"
            "NVMe I/O benchmark over vfio-user (spdk_nvme_perf's options).\n"
            "\n"
            "  -r, --transport-id TRID  'trtype:VFIOUSER traddr:DIR' (socket DIR/cntrl) or a socket path\n"
            "  -q, --io-depth N         I/Os in flight per namespace and core\n"
            "  -o, --io-size BYTES      I/O size, a multiple of the block size\n"
            "  -w, --io-pattern P       read, write, randread, randwrite, rw or randrw\n"
            "  -M, --rwmixread PCT      percentage of reads for rw and randrw (default 50)\n"
            "  -t, --time SECONDS       measured run time\n"
            "  -a, --warmup SECONDS     run before measuring (default 0)\n"
            "  -c, --core-mask MASK     hex mask: one pinned worker per core (default 0x1)\n"
            "  -n, --nsid NSID          only this namespace (default: every active one)\n"
            "  -I, --interrupts         sleep on completion interrupts instead of polling\n"
            "      --doorbell-buffer    shadow doorbells (Doorbell Buffer Config) when the controller has it\n"
            "      --irq-coalescing N,US  ask for one interrupt per N completions or after US microseconds\n"
            "                           (Interrupt Coalescing: N 1-256, US a multiple of 100 up to 25500)\n"
            "      --verify             write a pattern, read it back and compare (not a throughput run)\n"
            "      --fill               write every namespace once, sequentially, before the run\n"
            "      --json               print the results as JSON\n"
            "      --rate IOPS          pace each namespace of each core to IOPS I/Os per second (light,\n"
            "                           steady load like an idle VM's; sleeps between them)\n"
            "      --idle               attach and create the queue pairs, then stay idle for -t seconds\n"
            "                           (to measure what a connected but idle client costs the target)\n"
            "  -h, --help               this text\n");
}

static bool parse_u32(const char *s, unsigned base, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, (int)base);
    if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v < min || v > max)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_workload(struct perf_config *cfg, const char *w)
{
    static const struct {
        const char *name;
        enum perf_pattern pattern;
        int read_pct; /* -1: from -M */
    } table[] = {
        {"read", PAT_SEQ, 100}, {"write", PAT_SEQ, 0}, {"randread", PAT_RAND, 100},
        {"randwrite", PAT_RAND, 0}, {"rw", PAT_SEQ, -1}, {"randrw", PAT_RAND, -1},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (strcmp(w, table[i].name) == 0) {
            cfg->workload = table[i].name;
            cfg->pattern = table[i].pattern;
            if (table[i].read_pct >= 0)
                cfg->read_pct = table[i].read_pct;
            return true;
        }
    }
    return false;
}

/* "trtype:VFIOUSER traddr:DIR" -> DIR, for the table; anything else is shown as given. */
static const char *display_addr(const char *trid)
{
    static char buf[256];
    const char *p = strstr(trid, "traddr:");
    if (!p)
        return trid;
    p += strlen("traddr:");
    size_t n = strcspn(p, " \t");
    snprintf(buf, sizeof(buf), "%.*s", (int)n, p);
    return buf;
}

/* "N,US" of --irq-coalescing, in the units Set Features Interrupt Coalescing can express. */
static bool parse_coalescing(const char *arg, struct perf_config *cfg)
{
    char entries[16];
    const char *comma = strchr(arg, ',');
    if (!comma || (size_t)(comma - arg) >= sizeof(entries))
        return false;
    memcpy(entries, arg, (size_t)(comma - arg));
    entries[comma - arg] = '\0';
    return parse_u32(entries, 10, 1, 256, &cfg->coalesce_entries) &&
           parse_u32(comma + 1, 10, 100, 25500, &cfg->coalesce_us) && cfg->coalesce_us % 100 == 0;
}

/* Interrupt Coalescing (Set Features 08h): THR is 0's based, TIME in 100 us units. */
static int set_coalescing(struct vnvme_ctrlr *c, const struct perf_config *cfg)
{
    struct nvme_sqe cmd = {.opc = NVME_ADMIN_SET_FEATURES, .cdw10 = NVME_FEAT_INTERRUPT_COALESCING,
                           .cdw11 = (cfg->coalesce_us / 100u) << 8 | (cfg->coalesce_entries - 1u)};
    struct nvme_cqe cpl;
    int rc = vnvme_ctrlr_admin_sync(c, &cmd, NULL, 0, &cpl);
    if (rc == 0 && vnvme_cpl_is_error(&cpl))
        rc = -EIO;
    if (rc < 0)
        fprintf(stderr, "vnvme-perf: Set Features Interrupt Coalescing failed: %s\n",
                rc == -EIO ? "the controller refused it" : strerror(-rc));
    return rc;
}

static int parse_args(int argc, char **argv, struct perf_config *cfg)
{
    enum { OPT_VERIFY = 256, OPT_JSON, OPT_FILL, OPT_IDLE, OPT_DBBUF, OPT_COALESCE, OPT_RATE };
    static const struct option options[] = {
        {"transport-id", required_argument, NULL, 'r'}, {"io-depth", required_argument, NULL, 'q'},
        {"io-size", required_argument, NULL, 'o'},      {"io-pattern", required_argument, NULL, 'w'},
        {"rwmixread", required_argument, NULL, 'M'},    {"time", required_argument, NULL, 't'},
        {"warmup", required_argument, NULL, 'a'},       {"core-mask", required_argument, NULL, 'c'},
        {"nsid", required_argument, NULL, 'n'},         {"interrupts", no_argument, NULL, 'I'},
        {"verify", no_argument, NULL, OPT_VERIFY},      {"json", no_argument, NULL, OPT_JSON},
        {"fill", no_argument, NULL, OPT_FILL},          {"idle", no_argument, NULL, OPT_IDLE},
        {"doorbell-buffer", no_argument, NULL, OPT_DBBUF},
        {"rate", required_argument, NULL, OPT_RATE},
        {"irq-coalescing", required_argument, NULL, OPT_COALESCE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *workload = NULL;
    uint32_t mix = 50;
    bool have_q = false, have_o = false, have_t = false, have_m = false;
    int opt;
    *cfg = (struct perf_config){.core_mask = 1};
    while ((opt = getopt_long(argc, argv, "r:q:o:w:M:t:a:c:n:Ih", options, NULL)) != -1) {
        switch (opt) {
        case 'r':
            cfg->trid = optarg;
            break;
        case 'q':
            if (!parse_u32(optarg, 0, 1, 65535, &cfg->queue_depth))
                goto bad;
            have_q = true;
            break;
        case 'o':
            if (!parse_u32(optarg, 0, 1, 1u << 30, &cfg->io_size))
                goto bad;
            have_o = true;
            break;
        case 'w':
            workload = optarg;
            break;
        case 'M':
            if (!parse_u32(optarg, 10, 0, 100, &mix))
                goto bad;
            have_m = true;
            break;
        case 't':
            if (!parse_u32(optarg, 10, 1, 1000000, &cfg->seconds))
                goto bad;
            have_t = true;
            break;
        case 'a':
            if (!parse_u32(optarg, 10, 0, 1000000, &cfg->warmup_seconds))
                goto bad;
            break;
        case 'c': {
            char *end;
            errno = 0;
            unsigned long long m = strtoull(optarg, &end, 16);
            if (*optarg == '\0' || *end != '\0' || errno || m == 0)
                goto bad;
            cfg->core_mask = m;
            break;
        }
        case 'n':
            if (!parse_u32(optarg, 0, 1, 0xfffffffe, &cfg->nsid))
                goto bad;
            break;
        case 'I':
            cfg->interrupts = true;
            break;
        case OPT_VERIFY:
            cfg->verify = true;
            break;
        case OPT_DBBUF:
            cfg->doorbell_buffer = true;
            break;
        case OPT_COALESCE:
            if (!parse_coalescing(optarg, cfg)) {
                fprintf(stderr, "vnvme-perf: --irq-coalescing takes N,US: N 1-256, US a multiple of 100 up to 25500\n");
                return -1;
            }
            break;
        case OPT_RATE:
            if (!parse_u32(optarg, 10, 1, 10000000, &cfg->rate)) {
                fprintf(stderr, "vnvme-perf: --rate takes I/Os per second, 1-10000000\n");
                return -1;
            }
            break;
        case OPT_JSON:
            cfg->json = true;
            break;
        case OPT_FILL:
            cfg->fill = true;
            break;
        case OPT_IDLE:
            cfg->idle = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc || !cfg->trid || !have_q || !have_o || !have_t || !workload) {
        fprintf(stderr, "vnvme-perf: -r, -q, -o, -w and -t are required\n");
        usage(stderr);
        return -1;
    }
    cfg->read_pct = (int)mix;
    if (!parse_workload(cfg, workload)) {
        fprintf(stderr, "vnvme-perf: unknown workload %s\n", workload);
        return -1;
    }
    if (have_m && strcmp(cfg->workload, "rw") != 0 && strcmp(cfg->workload, "randrw") != 0)
        fprintf(stderr, "vnvme-perf: -M only applies to rw and randrw; ignored\n");
    if (cfg->io_size % 8 != 0 && cfg->verify) {
        fprintf(stderr, "vnvme-perf: --verify needs an I/O size that is a multiple of 8\n");
        return -1;
    }
    cfg->traddr = display_addr(cfg->trid);
    return 0;
bad:
    fprintf(stderr, "vnvme-perf: invalid value for -%c: %s\n", opt, optarg);
    return -1;
}

static size_t round_up(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

static unsigned count_namespaces(struct vnvme_ctrlr *c, const struct perf_config *cfg, struct vnvme_ns **list)
{
    unsigned n = 0;
    if (cfg->nsid) {
        struct vnvme_ns *ns = vnvme_ctrlr_ns(c, cfg->nsid);
        if (ns)
            list[n++] = ns;
        return n;
    }
    for (struct vnvme_ns *ns = vnvme_ctrlr_first_ns(c); ns && n < PERF_MAX_NS; ns = vnvme_ctrlr_next_ns(c, ns))
        list[n++] = ns;
    return n;
}

/* Queue pair, tasks and buffers of one worker on one namespace. */
static int setup_ctx(struct vnvme_ctrlr *c, struct perf_worker *w, struct perf_ns_ctx *ctx, struct vnvme_ns *ns,
                     uint32_t qsize)
{
    const struct perf_config *cfg = w->cfg;
    ctx->w = w;
    ctx->ns = ns;
    ctx->nsid = vnvme_ns_id(ns);
    ctx->block_size = vnvme_ns_block_size(ns);
    if (ctx->block_size == 0 || cfg->io_size % ctx->block_size != 0) {
        fprintf(stderr, "vnvme-perf: nsid %u: I/O size %u is not a multiple of the block size %u\n", ctx->nsid,
                cfg->io_size, ctx->block_size);
        return -EINVAL;
    }
    ctx->blocks_per_io = cfg->io_size / ctx->block_size;
    ctx->io_units = vnvme_ns_num_blocks(ns) / ctx->blocks_per_io;
    ctx->ntasks = cfg->queue_depth;
    ctx->issue_every = cfg->rate ? (uint64_t)(ticks_per_sec() / cfg->rate) : 0;
    uint64_t needed = cfg->verify ? (uint64_t)w->nworkers * ctx->ntasks : 1;
    if (ctx->io_units < needed) {
        fprintf(stderr, "vnvme-perf: nsid %u: namespace too small for this I/O size%s\n", ctx->nsid,
                cfg->verify ? " and depth with --verify" : "");
        return -EINVAL;
    }
    hist_reset(&ctx->hist);
    ctx->qp = vnvme_qpair_alloc(c, qsize);
    if (!ctx->qp) {
        fprintf(stderr, "vnvme-perf: core %u nsid %u: cannot allocate a queue pair\n", w->core, ctx->nsid);
        return -ENOMEM;
    }
    ctx->tasks = calloc(ctx->ntasks, sizeof(*ctx->tasks));
    if (!ctx->tasks)
        return -ENOMEM;
    size_t stride = round_up(cfg->io_size, BUF_ALIGN);
    uint8_t *bufs = vnvme_dma_alloc(c, stride * ctx->ntasks, BUF_ALIGN);
    if (!bufs) {
        fprintf(stderr, "vnvme-perf: out of DMA pool memory for buffers\n");
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < ctx->ntasks; i++)
        ctx->tasks[i] = (struct perf_task){.ctx = ctx, .buf = bufs + stride * i, .slot = i};
    return 0;
}

static void teardown(struct vnvme_ctrlr *c, struct perf_worker *workers, unsigned nworkers)
{
    for (unsigned i = 0; i < nworkers; i++) {
        for (unsigned j = 0; j < workers[i].nns; j++) {
            struct perf_ns_ctx *ctx = &workers[i].ns[j];
            if (ctx->qp)
                vnvme_qpair_free(ctx->qp);
            if (ctx->tasks && ctx->tasks[0].buf)
                vnvme_dma_free(c, ctx->tasks[0].buf);
            free(ctx->tasks);
        }
    }
}

static void sleep_ms(unsigned ms)
{
    struct timespec d = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&d, &d) != 0 && !interrupted)
        ;
}

static bool all_failed(const struct perf_worker *workers, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (!workers[i].failed)
            return false;
    return true;
}

/* Sleeps for seconds, returning early on SIGINT or when no worker is left. */
/* step_ms: how often to look at the workers (an idle client wakes no more than that: 255 of them are a load too). */
static void run_for(unsigned seconds, const struct perf_worker *workers, unsigned n, unsigned step_ms)
{
    for (unsigned ms = 0; ms < seconds * 1000u && !interrupted && !all_failed(workers, n); ms += step_ms)
        sleep_ms(step_ms);
}

static void set_phase(int p)
{
    __atomic_store_n(&perf_phase, p, __ATOMIC_RELEASE);
}

int main(int argc, char **argv)
{
    struct perf_config cfg;
    if (parse_args(argc, argv, &cfg) < 0)
        return 2;

    unsigned cores[PERF_MAX_CORES], nworkers = 0;
    for (unsigned i = 0; i < PERF_MAX_CORES; i++)
        if (cfg.core_mask & (1ull << i))
            cores[nworkers++] = i;

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    ticks_calibrate();

    /* Buffers, plus queues and PRP lists (a page per slot at most) per queue pair, plus slack. */
    size_t per_qp = (size_t)cfg.queue_depth * round_up(cfg.io_size, BUF_ALIGN) +
                    ((size_t)cfg.queue_depth + 1) * (64 + 16 + 4096) + (1u << 20);
    struct vnvme_ctrlr_opts opts = {
        .io_queue_size = cfg.queue_depth + 1 > 256 ? cfg.queue_depth + 1 : 256,
        .num_io_queues = nworkers * PERF_MAX_NS,
        .dma_pool_size = per_qp * nworkers * PERF_MAX_NS / 8 + (64u << 20),
        .io_interrupts = cfg.interrupts,
        .doorbell_buffer = cfg.doorbell_buffer,
    };
    struct vnvme_ctrlr *c = NULL;
    int rc = vnvme_ctrlr_attach(cfg.trid, &opts, &c);
    if (rc < 0) {
        fprintf(stderr, "vnvme-perf: cannot attach to %s: %s\n", cfg.trid, strerror(-rc));
        return 1;
    }

    struct vnvme_ns *nss[PERF_MAX_NS];
    unsigned nns = count_namespaces(c, &cfg, nss);
    if (nns == 0) {
        fprintf(stderr, "vnvme-perf: no %s namespace on %s\n", cfg.nsid ? "such" : "active", cfg.trid);
        vnvme_ctrlr_detach(c);
        return 1;
    }
    if ((size_t)per_qp * nworkers * nns > opts.dma_pool_size) {
        /* The pool was sized for an eighth of the maximum namespace count; reattach with what is needed. */
        vnvme_ctrlr_detach(c);
        opts.dma_pool_size = per_qp * nworkers * nns + (16u << 20);
        if ((rc = vnvme_ctrlr_attach(cfg.trid, &opts, &c)) < 0) {
            fprintf(stderr, "vnvme-perf: cannot attach to %s: %s\n", cfg.trid, strerror(-rc));
            return 1;
        }
        nns = count_namespaces(c, &cfg, nss);
    }
    if (cfg.coalesce_entries && set_coalescing(c, &cfg) < 0) {
        vnvme_ctrlr_detach(c);
        return 1;
    }

    struct perf_worker *workers = calloc(nworkers, sizeof(*workers));
    if (!workers) {
        vnvme_ctrlr_detach(c);
        return 1;
    }
    int status = 0;
    for (unsigned i = 0; i < nworkers && status == 0; i++) {
        struct perf_worker *w = &workers[i];
        w->cfg = &cfg;
        w->core = cores[i];
        w->index = i;
        w->nworkers = nworkers;
        w->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)(i + 1) * 0xbf58476d1ce4e5b9ull) ^ (uint64_t)time(NULL);
        if (w->rng == 0)
            w->rng = 1;
        for (unsigned j = 0; j < nns && status == 0; j++) {
            w->nns = j + 1;
            if (setup_ctx(c, w, &w->ns[j], nss[j], opts.io_queue_size) < 0)
                status = 1;
        }
    }
    if (status != 0) {
        teardown(c, workers, nworkers);
        vnvme_ctrlr_detach(c);
        free(workers);
        return 1;
    }

    if (cfg.idle) {
        run_for(cfg.seconds, workers, nworkers, 250);
        printf("attached to %s with %u queue pair(s), idle for %u s\n", cfg.trid, nworkers * nns, cfg.seconds);
        teardown(c, workers, nworkers);
        vnvme_ctrlr_detach(c);
        free(workers);
        return 0;
    }

    set_phase(PHASE_FILL);
    unsigned started = 0;
    for (; started < nworkers; started++) {
        rc = pthread_create(&workers[started].thread, NULL, perf_worker_main, &workers[started]);
        if (rc != 0) {
            fprintf(stderr, "vnvme-perf: pthread_create: %s\n", strerror(rc));
            status = 1;
            break;
        }
    }
    if (status == 0 && cfg.fill) {
        for (unsigned i = 0; i < nworkers; i++)
            while (!__atomic_load_n(&workers[i].fill_done, __ATOMIC_ACQUIRE) && !interrupted)
                sleep_ms(1);
    }
    if (status == 0 && cfg.warmup_seconds) {
        set_phase(PHASE_WARMUP);
        run_for(cfg.warmup_seconds, workers, nworkers, 10);
    }
    set_phase(PHASE_MEASURE);
    if (status == 0)
        run_for(cfg.seconds, workers, nworkers, 10);
    set_phase(PHASE_STOP);
    for (unsigned i = 0; i < started; i++)
        pthread_join(workers[i].thread, NULL);

    if (status == 0) {
        perf_report(&cfg, workers, nworkers);
        for (unsigned i = 0; i < nworkers; i++) {
            if (workers[i].failed)
                status = 1;
            for (unsigned j = 0; j < workers[i].nns; j++)
                if (workers[i].ns[j].io_errors || workers[i].ns[j].verify_failures)
                    status = 1;
        }
    }
    teardown(c, workers, nworkers);
    vnvme_ctrlr_detach(c);
    free(workers);
    return status;
}
