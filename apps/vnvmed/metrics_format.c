/* SPDX-License-Identifier: MIT */
/*
 * A metrics snapshot in Prometheus' text exposition format 0.0.4. Each
 * family is written whole (HELP and TYPE once, then all its samples), since
 * parsers reject a family that shows up twice; a family with no sample is
 * left out. Names follow Prometheus' conventions: the vnvme_ prefix, _total
 * on counters, seconds and bytes as the units. Counters that only a reset
 * makes go down (bdev_reset_iostat) are still counters: rate() treats a
 * decrease as a restart from zero.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "metrics.h"

/* Exponential-ish steps from 5 us (a RAM namespace) to 10 s (a stalled cluster). */
const char *const metrics_latency_bounds[METRICS_NR_LATENCY_BOUNDS] = {
    "0.000005", "0.00001", "0.000025", "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
    "0.01",     "0.025",   "0.05",     "0.1",     "0.25",   "0.5",     "1",     "2.5",   "5",      "10",
};

static const char *const op_name[VNVME_STAT_NR_KINDS] = {"read", "write", "unmap"};

struct label {
    const char *key, *value;
};

enum value_kind { U32, U64, BOOL, TICKS };

/* A figure at an offset of the entity a family is about (reactor_stats, metrics_ctrlr, metrics_bdev). */
struct field {
    const char *name, *type, *help;
    size_t offset;
    enum value_kind kind;
};

static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '"')
            fputs("\\\"", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* "name{k="v",...} " */
static void series(FILE *f, const char *name, const char *suffix, const struct label *l, size_t n)
{
    fputs(name, f);
    fputs(suffix, f);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%c%s=\"", i ? ',' : '{', l[i].key);
        put_escaped(f, l[i].value);
        fputc('"', f);
    }
    fputs(n ? "} " : " ", f);
}

static void sample_u64(FILE *f, const char *name, const struct label *l, size_t n, uint64_t v)
{
    series(f, name, "", l, n);
    fprintf(f, "%" PRIu64 "\n", v);
}

/* 15 significant digits, what a double holds reliably: 0.1 prints as 0.1, not 0.10000000000000001. */
static void put_double(FILE *f, double v)
{
    fprintf(f, "%.15g\n", v);
}

static double seconds(uint64_t ticks, uint64_t tick_rate)
{
    return tick_rate ? (double)ticks / (double)tick_rate : 0.0;
}

static void sample_field(FILE *f, const struct field *fl, const void *base, const struct label *l, size_t n,
                         uint64_t tick_rate)
{
    const char *p = (const char *)base + fl->offset;
    series(f, fl->name, "", l, n);
    switch (fl->kind) {
    case U32: fprintf(f, "%" PRIu32 "\n", *(const uint32_t *)p); break;
    case U64: fprintf(f, "%" PRIu64 "\n", *(const uint64_t *)p); break;
    case BOOL: fputs(*(const bool *)p ? "1\n" : "0\n", f); break;
    case TICKS: put_double(f, seconds(*(const uint64_t *)p, tick_rate)); break;
    }
}

/* An entity's labels (at most 2) into l, numbers formatted into buf; returns how many. */
typedef size_t (*labels_fn)(const void *entity, struct label *l, char (*buf)[16]);

/* Each field of the table as a family, with a sample per entity (n of them, stride bytes apart). */
static void field_families(FILE *f, const struct field *fields, size_t nr_fields, const void *entities,
                           size_t stride, size_t n, labels_fn labels, uint64_t tick_rate)
{
    if (!n)
        return;
    for (size_t k = 0; k < nr_fields; k++) {
        family(f, fields[k].name, fields[k].type, fields[k].help);
        for (size_t i = 0; i < n; i++) {
            const void *e = (const char *)entities + i * stride;
            struct label l[2];
            char buf[2][16];
            sample_field(f, &fields[k], e, l, labels(e, l, buf), tick_rate);
        }
    }
}

#define NR(table) (sizeof(table) / sizeof((table)[0]))

/* ---- the daemon ---- */

static void process_families(FILE *f, const struct metrics_snapshot *s)
{
    const struct label version = {"version", s->version};
    family(f, "vnvme_build_info", "gauge", "The running vnvmed's version, as a label; the value is always 1.");
    sample_u64(f, "vnvme_build_info", &version, 1, 1);
    family(f, "vnvme_start_time_seconds", "gauge", "When vnvmed started, in seconds since the Unix epoch.");
    series(f, "vnvme_start_time_seconds", "", NULL, 0);
    fprintf(f, "%.3f\n", s->start_time);
    family(f, "vnvme_uptime_seconds", "gauge", "Seconds since vnvmed started.");
    series(f, "vnvme_uptime_seconds", "", NULL, 0);
    fprintf(f, "%.3f\n", s->uptime);
}

/* ---- bdevs (bdev_get_iostat, bdev_get_bdevs' assigned_rate_limits, bdev_get_histogram) ---- */

#define IOSTAT(member) (offsetof(struct metrics_bdev, io) + offsetof(struct vnvme_bdev_iostat, member))
static const struct field bdev_fields[] = {
    {"vnvme_bdev_queue_depth", "gauge", "I/Os outstanding in the bdev now.", IOSTAT(queue_depth), U64},
    {"vnvme_bdev_io_time_seconds_total", "counter", "Time with at least one I/O outstanding.", IOSTAT(io_time_ticks),
     TICKS},
    {"vnvme_bdev_weighted_io_time_seconds_total", "counter",
     "I/Os outstanding integrated over time (the sum of every completed I/O's latency).",
     IOSTAT(weighted_io_time_ticks), TICKS},
};

static size_t bdev_labels(const void *entity, struct label *l, char (*buf)[16])
{
    (void)buf;
    l[0] = (struct label){"bdev", ((const struct metrics_bdev *)entity)->name};
    return 1;
}

/* A family with an op label: per bdev, one value of each kind from an array of the iostat struct. */
struct by_op {
    const char *name, *help;
    size_t offset;
    bool ticks;
    bool with_other; /* and op="other": flushes and write zeroes, which have no bytes or latency sums */
};

static const struct by_op bdev_by_op[] = {
    {"vnvme_bdev_io_ops_total",
     "I/Os completed successfully, by operation (read includes compare; other is flush and write zeroes).",
     offsetof(struct vnvme_bdev_iostat, ops), false, true},
    {"vnvme_bdev_io_bytes_total", "Bytes of the I/Os completed successfully, by operation.",
     offsetof(struct vnvme_bdev_iostat, bytes), false, false},
    {"vnvme_bdev_io_latency_seconds_total", "Summed latency of the I/Os completed successfully, by operation.",
     offsetof(struct vnvme_bdev_iostat, latency_ticks), true, false},
};

static void bdev_op_family(FILE *f, const struct metrics_snapshot *s, const struct by_op *fam)
{
    family(f, fam->name, "counter", fam->help);
    for (size_t i = 0; i < s->nr_bdevs; i++) {
        const struct metrics_bdev *b = &s->bdevs[i];
        const uint64_t *v = (const uint64_t *)((const char *)&b->io + fam->offset);
        for (int k = 0; k < VNVME_STAT_NR_KINDS; k++) {
            const struct label l[2] = {{"bdev", b->name}, {"op", op_name[k]}};
            series(f, fam->name, "", l, 2);
            if (fam->ticks)
                put_double(f, seconds(v[k], s->tick_rate));
            else
                fprintf(f, "%" PRIu64 "\n", v[k]);
        }
        if (fam->with_other) {
            const struct label l[2] = {{"bdev", b->name}, {"op", "other"}};
            sample_u64(f, fam->name, l, 2, b->io.other_ops);
        }
    }
}

static void bdev_errors(FILE *f, const struct metrics_snapshot *s)
{
    const char *name = "vnvme_bdev_io_errors_total";
    family(f, name, "counter", "Failed I/Os by cause (bdev_get_iostat's io_error).");
    for (size_t i = 0; i < s->nr_bdevs; i++) {
        for (int e = 0; e < VNVME_BDEV_NR_ERR_KINDS; e++) {
            const struct label l[2] = {{"bdev", s->bdevs[i].name},
                                       {"cause", vnvme_bdev_err_kind_name((enum vnvme_bdev_err_kind)e)}};
            sample_u64(f, name, l, 2, s->bdevs[i].io.errors[e]);
        }
    }
}

static void bdev_qos(FILE *f, const struct metrics_snapshot *s)
{
    const char *name = "vnvme_bdev_qos_limit";
    bool any = false;
    for (size_t i = 0; i < s->nr_bdevs; i++)
        for (int q = 0; q < VNVME_QOS_NR_LIMITS; q++)
            any |= s->bdevs[i].qos[q] != 0;
    if (!any)
        return;
    family(f, name, "gauge",
           "Rate limits set with bdev_set_qos_limit, by its parameter: rw_ios_per_sec in I/Os per second, "
           "the _mbytes_per_sec ones in MiB per second.");
    for (size_t i = 0; i < s->nr_bdevs; i++) {
        for (int q = 0; q < VNVME_QOS_NR_LIMITS; q++) {
            if (!s->bdevs[i].qos[q])
                continue;
            const struct label l[2] = {{"bdev", s->bdevs[i].name},
                                       {"type", vnvme_qos_limit_name((enum vnvme_qos_limit)q)}};
            sample_u64(f, name, l, 2, s->bdevs[i].qos[q]);
        }
    }
}

/*
 * The log-linear buckets (2^7 per power of two) folded into the fixed le
 * bounds: a bucket counts under the first bound its largest value does not
 * exceed, so every count under a bound is of latencies at most that long; one
 * that straddles a bound (it is within 1/128 of it) goes to the next one. The
 * sum is estimated from the buckets' midpoints, within the same 1/128.
 */
static void bdev_histogram(FILE *f, const struct metrics_snapshot *s, const struct metrics_bdev *b,
                           const uint64_t *bound_ticks)
{
    const char *name = "vnvme_bdev_io_latency_seconds";
    uint64_t under[METRICS_NR_LATENCY_BOUNDS + 1] = {0}, count = 0;
    double sum_ticks = 0;
    size_t j = 0;
    for (unsigned i = 0; i < VNVME_BDEV_HIST_BUCKETS; i++) {
        if (!b->hist[i])
            continue;
        uint64_t lo = vnvme_bdev_hist_bucket_start(i);
        uint64_t hi = i + 1 < VNVME_BDEV_HIST_BUCKETS ? vnvme_bdev_hist_bucket_start(i + 1) - 1 : UINT64_MAX;
        while (j < METRICS_NR_LATENCY_BOUNDS && hi > bound_ticks[j])
            j++; /* buckets ascend, so the bound only moves up */
        under[j] += b->hist[i];
        count += b->hist[i];
        sum_ticks += (double)b->hist[i] * ((double)lo + (double)(hi - lo) / 2.0);
    }
    uint64_t cumulative = 0;
    for (size_t k = 0; k <= METRICS_NR_LATENCY_BOUNDS; k++) {
        cumulative += under[k];
        const struct label l[2] = {{"bdev", b->name},
                                   {"le", k < METRICS_NR_LATENCY_BOUNDS ? metrics_latency_bounds[k] : "+Inf"}};
        series(f, name, "_bucket", l, 2);
        fprintf(f, "%" PRIu64 "\n", cumulative);
    }
    const struct label l = {"bdev", b->name};
    series(f, name, "_sum", &l, 1);
    put_double(f, s->tick_rate ? sum_ticks / (double)s->tick_rate : 0.0);
    series(f, name, "_count", &l, 1);
    fprintf(f, "%" PRIu64 "\n", count);
}

static void bdev_histograms(FILE *f, const struct metrics_snapshot *s)
{
    bool any = false;
    for (size_t i = 0; i < s->nr_bdevs; i++)
        any |= s->bdevs[i].hist != NULL;
    if (!any)
        return;
    uint64_t bound_ticks[METRICS_NR_LATENCY_BOUNDS];
    for (size_t k = 0; k < METRICS_NR_LATENCY_BOUNDS; k++) /* rounded: 0.000025 s * 1e9 is 24999.999... */
        bound_ticks[k] = (uint64_t)(strtod(metrics_latency_bounds[k], NULL) * (double)s->tick_rate + 0.5);
    family(f, "vnvme_bdev_io_latency_seconds", "histogram",
           "Latency of every I/O, failed ones and flushes included, while bdev_enable_histogram is on.");
    for (size_t i = 0; i < s->nr_bdevs; i++)
        if (s->bdevs[i].hist)
            bdev_histogram(f, s, &s->bdevs[i], bound_ticks);
}

static void bdev_families(FILE *f, const struct metrics_snapshot *s)
{
    if (!s->nr_bdevs)
        return;
    for (size_t k = 0; k < NR(bdev_by_op); k++)
        bdev_op_family(f, s, &bdev_by_op[k]);
    bdev_errors(f, s);
    field_families(f, bdev_fields, NR(bdev_fields), s->bdevs, sizeof(*s->bdevs), s->nr_bdevs, bdev_labels,
                   s->tick_rate);
    bdev_qos(f, s);
    bdev_histograms(f, s);
}

/* ---- reactors (framework_get_reactors, nvmf_get_stats) ---- */

#define REACTOR(member) offsetof(struct reactor_stats, member)
static const struct field reactor_fields[] = {
    {"vnvme_reactor_busy_seconds_total", "counter", "Time in poll rounds that found work.", REACTOR(busy_ticks),
     TICKS},
    {"vnvme_reactor_idle_seconds_total", "counter", "Time in poll rounds that found none, and asleep.",
     REACTOR(idle_ticks), TICKS},
    {"vnvme_reactor_polls_total", "counter", "Poll rounds.", REACTOR(polls), U64},
    {"vnvme_reactor_polls_with_work_total", "counter", "Poll rounds that found work.", REACTOR(polls_with_work), U64},
    {"vnvme_reactor_sleeps_total", "counter", "Waits for events when idle.", REACTOR(sleeps), U64},
    {"vnvme_reactor_wakeups_total", "counter", "Waits ended by an event rather than their timeout.", REACTOR(wakeups),
     U64},
    {"vnvme_reactor_controllers", "gauge", "Controllers the reactor polls.", REACTOR(ctrlrs), U32},
    {"vnvme_reactor_connected_controllers", "gauge", "Of those, the ones a client is connected to.",
     REACTOR(connected), U32},
    {"vnvme_reactor_enabled_controllers", "gauge", "Of those, the enabled ones (their admin queue pair).",
     REACTOR(admin_qpairs), U32},
    {"vnvme_reactor_io_qpairs", "gauge", "I/O queue pairs of its controllers.", REACTOR(io_qpairs), U32},
    {"vnvme_reactor_bdev_commands", "gauge", "Commands inside bdevs now.", REACTOR(in_bdev), U64},
    {"vnvme_reactor_completed_io_total", "counter", "Reads and writes its controllers completed.",
     REACTOR(completed_io), U64},
    {"vnvme_reactor_completions_posted_total", "counter", "Completion queue entries posted.", REACTOR(cqes_posted),
     U64},
    {"vnvme_reactor_interrupts_raised_total", "counter", "Interrupts sent to hosts (fewer when coalesced).",
     REACTOR(irqs_raised), U64},
    {"vnvme_reactor_interrupts_coalesced_total", "counter",
     "Completions that shared another's interrupt (Interrupt Coalescing).", REACTOR(irqs_coalesced), U64},
    {"vnvme_reactor_cq_full_holds_total", "counter", "Completions held back because their completion queue was full.",
     REACTOR(cq_full_holds), U64},
    {"vnvme_reactor_doorbell_buffer_arms_total", "counter",
     "EventIdx arms before a sleep (hosts with a doorbell buffer).", REACTOR(dbbuf_arms), U64},
};

static size_t reactor_labels(const void *entity, struct label *l, char (*buf)[16])
{
    const struct reactor_stats *r = entity;
    snprintf(buf[0], sizeof(buf[0]), "%d", r->index);
    snprintf(buf[1], sizeof(buf[1]), "%d", r->cpu);
    l[0] = (struct label){"reactor", buf[0]};
    l[1] = (struct label){"cpu", buf[1]};
    return 2;
}

/* ---- controllers (nvmf_subsystem_get_controllers, the SMART log) ---- */

#define CTRLR(member) (offsetof(struct metrics_ctrlr, st) + offsetof(struct ctrlr_stats, member))
static const struct field ctrlr_fields[] = {
    {"vnvme_controller_connected", "gauge", "1 while a client is connected to the controller.", CTRLR(connected),
     BOOL},
    {"vnvme_controller_enabled", "gauge", "1 while the controller is enabled (CSTS.RDY).", CTRLR(enabled), BOOL},
    {"vnvme_controller_io_qpairs", "gauge", "I/O queue pairs created.", CTRLR(io_qpairs), U32},
    {"vnvme_controller_bdev_commands", "gauge", "Commands inside bdevs now.", CTRLR(in_bdev), U32},
    {"vnvme_controller_busy_seconds_total", "counter", "Time with commands outstanding (SMART Controller Busy Time).",
     CTRLR(busy_ticks), TICKS},
    {"vnvme_controller_completions_posted_total", "counter", "Completion queue entries posted.", CTRLR(cqes_posted),
     U64},
    {"vnvme_controller_interrupts_raised_total", "counter", "Interrupts sent to the host.", CTRLR(irqs_raised), U64},
};

static size_t ctrlr_labels(const void *entity, struct label *l, char (*buf)[16])
{
    const struct metrics_ctrlr *c = entity;
    snprintf(buf[0], sizeof(buf[0]), "%u", (unsigned)c->st.cntlid);
    l[0] = (struct label){"subsystem", c->subsystem};
    l[1] = (struct label){"cntlid", buf[0]};
    return 2;
}

static void ctrlr_by_op(FILE *f, const struct metrics_snapshot *s, const char *name, const char *help,
                        size_t read_offset, size_t write_offset)
{
    family(f, name, "counter", help);
    for (size_t i = 0; i < s->nr_ctrlrs; i++) {
        const char *base = (const char *)&s->ctrlrs[i];
        struct label l[3];
        char buf[2][16];
        size_t n = ctrlr_labels(base, l, buf);
        l[n] = (struct label){"op", "read"};
        sample_u64(f, name, l, n + 1, *(const uint64_t *)(base + read_offset));
        l[n] = (struct label){"op", "write"};
        sample_u64(f, name, l, n + 1, *(const uint64_t *)(base + write_offset));
    }
}

static void ctrlr_families(FILE *f, const struct metrics_snapshot *s)
{
    if (!s->nr_ctrlrs)
        return;
    field_families(f, ctrlr_fields, NR(ctrlr_fields), s->ctrlrs, sizeof(*s->ctrlrs), s->nr_ctrlrs, ctrlr_labels,
                   s->tick_rate);
    ctrlr_by_op(f, s, "vnvme_controller_commands_total", "Read and write commands completed (SMART Host Commands).",
                CTRLR(read_cmds), CTRLR(write_cmds));
    ctrlr_by_op(f, s, "vnvme_controller_bytes_total", "Bytes read and written (what SMART's Data Units count).",
                CTRLR(bytes_read), CTRLR(bytes_written));
}

int metrics_format(const struct metrics_snapshot *s, FILE *out)
{
    process_families(out, s);
    bdev_families(out, s);
    field_families(out, reactor_fields, NR(reactor_fields), s->reactors, sizeof(*s->reactors), s->nr_reactors,
                   reactor_labels, s->tick_rate);
    ctrlr_families(out, s);
    return ferror(out) ? -EIO : 0;
}
