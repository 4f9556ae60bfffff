/* SPDX-License-Identifier: MIT */
/*
 * Results: the table spdk_nvme_perf prints (one row per namespace and core,
 * then a Total row, latencies in microseconds) followed by percentiles, or
 * one JSON object with the same numbers for scripts.
 */
#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "perf.h"

struct row {
    char name[160];
    uint32_t core, nsid;
    double seconds;
    uint64_t ios, ios_all, bytes, errors, verified, verify_failures;
    struct latency_hist *hist;
};

struct stats {
    double iops, mib_s, avg_us, min_us, max_us, p50_us, p99_us, p999_us;
};

static double us(uint64_t ticks)
{
    return ticks_to_ns(ticks) / 1000.0;
}

static struct stats compute(const struct row *r)
{
    struct stats s = {0};
    const struct latency_hist *h = r->hist;
    if (r->seconds > 0) {
        s.iops = (double)r->ios / r->seconds;
        s.mib_s = (double)r->bytes / r->seconds / (1024.0 * 1024.0);
    }
    if (h->count > 0) {
        s.avg_us = us(h->sum) / (double)h->count;
        s.min_us = us(h->min);
        s.max_us = us(h->max);
        s.p50_us = us(hist_quantile(h, 0.50));
        s.p99_us = us(hist_quantile(h, 0.99));
        s.p999_us = us(hist_quantile(h, 0.999));
    }
    return s;
}

static void print_table(const struct perf_config *cfg, struct row *rows, unsigned nrows, struct row *total)
{
    printf("Workload: %s, %u bytes, queue depth %u", cfg->workload, cfg->io_size, cfg->queue_depth);
    if (cfg->read_pct > 0 && cfg->read_pct < 100)
        printf(", %d%% reads", cfg->read_pct);
    printf(", %u s%s%s\n", cfg->seconds, cfg->interrupts ? ", interrupts" : ", polling", cfg->verify ? ", verify" : "");
    printf("========================================================\n");
    printf("%-60s %54s\n", "", "Latency(us)");
    printf("%-60s: %10s %10s %10s %10s %10s\n", "Device Information", "IOPS", "MiB/s", "Average", "min", "max");
    for (unsigned i = 0; i <= nrows; i++) {
        struct row *r = i < nrows ? &rows[i] : total;
        if (i == nrows)
            printf("========================================================\n");
        struct stats s = compute(r);
        printf("%-60s: %10.2f %10.2f %10.2f %10.2f %10.2f\n", r->name, s.iops, s.mib_s, s.avg_us, s.min_us, s.max_us);
    }
    printf("\n");
    for (unsigned i = 0; i <= nrows; i++) {
        struct row *r = i < nrows ? &rows[i] : total;
        struct stats s = compute(r);
        printf("Latency percentiles for %s:\n", r->name);
        printf("  p50   : %10.3fus\n  p99   : %10.3fus\n  p99.9 : %10.3fus\n", s.p50_us, s.p99_us, s.p999_us);
    }
    if (total->errors)
        printf("\nI/O errors: %llu\n", (unsigned long long)total->errors);
    if (cfg->verify)
        printf("\nVerify: %llu I/Os read back and compared, %llu mismatches\n",
               (unsigned long long)total->verified, (unsigned long long)total->verify_failures);
}

static struct json_object *row_json(const struct row *r)
{
    struct stats s = compute(r);
    struct json_object *o = json_object_new_object();
    if (r->core != UINT32_MAX) {
        json_object_object_add(o, "core", json_object_new_int((int)r->core));
        json_object_object_add(o, "nsid", json_object_new_int64(r->nsid));
    }
    json_object_object_add(o, "seconds", json_object_new_double(r->seconds));
    json_object_object_add(o, "ios", json_object_new_uint64(r->ios));
    json_object_object_add(o, "ios_all_phases", json_object_new_uint64(r->ios_all));
    json_object_object_add(o, "iops", json_object_new_double(s.iops));
    json_object_object_add(o, "mib_per_sec", json_object_new_double(s.mib_s));
    json_object_object_add(o, "avg_us", json_object_new_double(s.avg_us));
    json_object_object_add(o, "min_us", json_object_new_double(s.min_us));
    json_object_object_add(o, "max_us", json_object_new_double(s.max_us));
    json_object_object_add(o, "p50_us", json_object_new_double(s.p50_us));
    json_object_object_add(o, "p99_us", json_object_new_double(s.p99_us));
    json_object_object_add(o, "p99_9_us", json_object_new_double(s.p999_us));
    json_object_object_add(o, "io_errors", json_object_new_uint64(r->errors));
    json_object_object_add(o, "verified", json_object_new_uint64(r->verified));
    json_object_object_add(o, "verify_failures", json_object_new_uint64(r->verify_failures));
    return o;
}

static void print_json(const struct perf_config *cfg, struct row *rows, unsigned nrows, struct row *total)
{
    struct json_object *root = json_object_new_object();
    struct json_object *c = json_object_new_object();
    json_object_object_add(c, "trid", json_object_new_string(cfg->trid));
    json_object_object_add(c, "workload", json_object_new_string(cfg->workload));
    json_object_object_add(c, "read_percent", json_object_new_int(cfg->read_pct));
    json_object_object_add(c, "io_size", json_object_new_int64(cfg->io_size));
    json_object_object_add(c, "queue_depth", json_object_new_int64(cfg->queue_depth));
    json_object_object_add(c, "seconds", json_object_new_int64(cfg->seconds));
    json_object_object_add(c, "interrupts", json_object_new_boolean(cfg->interrupts));
    json_object_object_add(c, "verify", json_object_new_boolean(cfg->verify));
    json_object_object_add(root, "config", c);
    struct json_object *arr = json_object_new_array();
    for (unsigned i = 0; i < nrows; i++)
        json_object_array_add(arr, row_json(&rows[i]));
    json_object_object_add(root, "results", arr);
    json_object_object_add(root, "total", row_json(total));
    printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
}

void perf_report(const struct perf_config *cfg, struct perf_worker *workers, unsigned nworkers)
{
    unsigned nrows = 0;
    for (unsigned i = 0; i < nworkers; i++)
        nrows += workers[i].nns;
    struct row *rows = calloc(nrows ? nrows : 1, sizeof(*rows));
    struct latency_hist *total_hist = malloc(sizeof(*total_hist));
    if (!rows || !total_hist) {
        fprintf(stderr, "vnvme-perf: out of memory\n");
        free(rows);
        free(total_hist);
        return;
    }
    hist_reset(total_hist);
    struct row total = {.core = UINT32_MAX, .hist = total_hist};
    snprintf(total.name, sizeof(total.name), "Total");
    double max_seconds = 0;
    unsigned k = 0;
    for (unsigned i = 0; i < nworkers; i++) {
        struct perf_worker *w = &workers[i];
        double secs = ticks_to_ns(w->end_ticks - w->start_ticks) / 1e9;
        if (secs > max_seconds)
            max_seconds = secs;
        for (unsigned j = 0; j < w->nns; j++, k++) {
            struct perf_ns_ctx *ctx = &w->ns[j];
            struct row *r = &rows[k];
            snprintf(r->name, sizeof(r->name), "VFIOUSER (%s) NSID %u from core %2u",
                     cfg->traddr, ctx->nsid, w->core);
            r->core = w->core;
            r->nsid = ctx->nsid;
            r->seconds = secs;
            r->ios = ctx->hist.count;
            r->bytes = ctx->bytes;
            r->ios_all = ctx->completions_all;
            r->errors = ctx->io_errors;
            r->verified = ctx->verified;
            r->verify_failures = ctx->verify_failures;
            r->hist = &ctx->hist;
            hist_merge(total_hist, &ctx->hist);
            total.ios += r->ios;
            total.bytes += r->bytes;
            total.ios_all += r->ios_all;
            total.errors += r->errors;
            total.verified += r->verified;
            total.verify_failures += r->verify_failures;
        }
    }
    /* Workers run the same window; the total rate is the sum of theirs, so divide by one window. */
    total.seconds = max_seconds;
    if (cfg->json)
        print_json(cfg, rows, nrows, &total);
    else
        print_table(cfg, rows, nrows, &total);
    free(rows);
    free(total_hist);
}
