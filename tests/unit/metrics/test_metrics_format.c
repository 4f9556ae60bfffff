/* SPDX-License-Identifier: MIT */
/*
 * The metrics text from made-up snapshots: exact lines, label escaping, each
 * family's HELP and TYPE once and its samples together, every sample line in
 * the exposition format's grammar, and histograms folded into cumulative
 * buckets that never decrease and end with +Inf equal to _count.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

#define GHZ 1000000000ull

/* ---- the text ---- */

static char *format(const struct metrics_snapshot *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(metrics_format(s, f), 0);
    assert_int_equal(fclose(f), 0);
    return text;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static void expect_line(const char *text, const char *line)
{
    if (!has_line(text, line))
        fail_msg("missing line: %s\n--- in:\n%s", line, text);
}

static size_t count_prefix(const char *text, const char *prefix)
{
    size_t n = 0, len = strlen(prefix);
    for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
        if (strncmp(p, prefix, len) == 0)
            n++;
        if (!strchr(p, '\n'))
            break;
    }
    return n;
}

/* ---- a strict reading of the format: what Prometheus' parser would reject fails the test ---- */

struct seen {
    char names[128][96]; /* families in order of their TYPE line */
    int n;
};

static bool is_name_char(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':' || (!first && isdigit((unsigned char)c));
}

/* name{k="v",...} value: returns the end of the name, or fails. */
static const char *check_sample(const char *line, size_t len)
{
    const char *p = line, *end = line + len;
    if (p == end || !is_name_char(*p, true))
        fail_msg("bad metric name: %.*s", (int)len, line);
    while (p < end && is_name_char(*p, false))
        p++;
    const char *name_end = p;
    if (p < end && *p == '{') {
        p++;
        for (;;) {
            if (p == end || !(isalpha((unsigned char)*p) || *p == '_'))
                fail_msg("bad label name: %.*s", (int)len, line);
            while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
                p++;
            if (end - p < 2 || p[0] != '=' || p[1] != '"')
                fail_msg("label without =\": %.*s", (int)len, line);
            for (p += 2; p < end && *p != '"'; p++) {
                if (*p == '\\') {
                    p++;
                    if (p == end || (*p != '\\' && *p != '"' && *p != 'n'))
                        fail_msg("bad escape: %.*s", (int)len, line);
                }
            }
            if (p == end)
                fail_msg("unterminated label value: %.*s", (int)len, line);
            p++;
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            fail_msg("bad label list: %.*s", (int)len, line);
        }
    }
    if (p == end || *p != ' ')
        fail_msg("no space before the value: %.*s", (int)len, line);
    p++;
    char value[64];
    if ((size_t)(end - p) >= sizeof(value) || p == end)
        fail_msg("bad value: %.*s", (int)len, line);
    memcpy(value, p, (size_t)(end - p));
    value[end - p] = '\0';
    char *vend;
    strtod(value, &vend);
    if (*vend || isspace((unsigned char)value[0]))
        fail_msg("value is not a number: %.*s", (int)len, line);
    return name_end;
}

static int family_index(const struct seen *s, const char *name, size_t len)
{
    for (int i = 0; i < s->n; i++)
        if (strlen(s->names[i]) == len && strncmp(s->names[i], name, len) == 0)
            return i;
    return -1;
}

/* The family a sample belongs to: its name, or a histogram's without _bucket/_sum/_count. */
static int sample_family(const struct seen *s, const char *name, size_t len)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    int i = family_index(s, name, len);
    for (size_t k = 0; i < 0 && k < 3; k++) {
        size_t sl = strlen(suffixes[k]);
        if (len > sl && strncmp(name + len - sl, suffixes[k], sl) == 0)
            i = family_index(s, name, len - sl);
    }
    return i;
}

static void check_text(const char *text)
{
    static struct seen s;
    memset(&s, 0, sizeof(s));
    int current = -1;
    bool help_pending = false;
    char help_name[96] = "";
    assert_true(text[0] != '\0');
    assert_int_equal(text[strlen(text) - 1], '\n');
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = (size_t)(nl - line);
        if (len == 0)
            fail_msg("empty line");
        if (strncmp(line, "# HELP ", 7) == 0) {
            const char *name = line + 7, *sp = memchr(name, ' ', len - 7);
            assert_non_null(sp);
            if (family_index(&s, name, (size_t)(sp - name)) >= 0)
                fail_msg("HELP twice: %.*s", (int)len, line);
            snprintf(help_name, sizeof(help_name), "%.*s", (int)(sp - name), name);
            help_pending = true;
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            const char *name = line + 7, *sp = memchr(name, ' ', len - 7);
            assert_non_null(sp);
            size_t nlen = (size_t)(sp - name);
            if (family_index(&s, name, nlen) >= 0)
                fail_msg("TYPE twice: %.*s", (int)len, line);
            assert_true(help_pending && strlen(help_name) == nlen && strncmp(help_name, name, nlen) == 0);
            help_pending = false;
            const char *type = sp + 1;
            size_t tlen = len - 7 - nlen - 1;
            bool counter = tlen == 7 && strncmp(type, "counter", 7) == 0;
            assert_true(counter || (tlen == 5 && strncmp(type, "gauge", 5) == 0) ||
                        (tlen == 9 && strncmp(type, "histogram", 9) == 0));
            /* Prometheus' convention, which this endpoint keeps: counters and only they end in _total. */
            assert_int_equal(counter, nlen > 6 && strncmp(name + nlen - 6, "_total", 6) == 0);
            assert_true(s.n < 128 && nlen < sizeof(s.names[0]));
            snprintf(s.names[s.n], sizeof(s.names[0]), "%.*s", (int)nlen, name);
            current = s.n++;
        } else if (line[0] == '#') {
            fail_msg("unexpected comment: %.*s", (int)len, line);
        } else {
            const char *name_end = check_sample(line, len);
            int fam = sample_family(&s, line, (size_t)(name_end - line));
            if (fam < 0 || fam != current)
                fail_msg("sample outside its family's block: %.*s", (int)len, line);
        }
        line = nl + 1;
    }
    assert_false(help_pending);
}

/* ---- snapshots ---- */

static struct metrics_snapshot base(void)
{
    return (struct metrics_snapshot){.version = "1.2.3", .start_time = 1700000000.5, .uptime = 2.25,
                                     .tick_rate = GHZ};
}

static void test_process_only(void **state)
{
    (void)state;
    struct metrics_snapshot s = base();
    char *t = format(&s);
    check_text(t);
    expect_line(t, "# HELP vnvme_build_info The running vnvmed's version, as a label; the value is always 1.");
    expect_line(t, "# TYPE vnvme_build_info gauge");
    expect_line(t, "vnvme_build_info{version=\"1.2.3\"} 1");
    expect_line(t, "vnvme_start_time_seconds 1700000000.500");
    expect_line(t, "vnvme_uptime_seconds 2.250");
    /* Nothing about bdevs, reactors or controllers when there are none. */
    assert_null(strstr(t, "vnvme_bdev"));
    assert_null(strstr(t, "vnvme_reactor"));
    assert_null(strstr(t, "vnvme_controller"));
    free(t);
}

static void test_exact_lines(void **state)
{
    (void)state;
    struct metrics_bdev b = {.name = "Malloc0"};
    b.io.ops[VNVME_STAT_READ] = 3;
    b.io.bytes[VNVME_STAT_READ] = 1536;
    b.io.latency_ticks[VNVME_STAT_READ] = 1500000; /* 1.5 ms */
    b.io.ops[VNVME_STAT_WRITE] = 1;
    b.io.bytes[VNVME_STAT_WRITE] = 4096;
    b.io.other_ops = 2;
    b.io.errors[VNVME_ERR_ABORTED] = 1;
    b.io.queue_depth = 2;
    b.io.io_time_ticks = GHZ / 2;
    b.io.weighted_io_time_ticks = 3 * GHZ / 4;
    b.qos[VNVME_QOS_RW_IOPS] = 5000;
    b.qos[VNVME_QOS_W_MBPS] = 100;
    struct reactor_stats r = {.index = 0, .cpu = 3, .busy_ticks = GHZ / 4, .idle_ticks = 3 * GHZ / 4, .polls = 10,
                              .polls_with_work = 7, .ctrlrs = 1, .connected = 1, .cqes_posted = 40};
    struct metrics_ctrlr c = {.subsystem = "nqn.2026-11.io.vnvme:a",
                              .st = {.cntlid = 7, .connected = true, .enabled = true, .io_qpairs = 2,
                                     .read_cmds = 3, .write_cmds = 1, .bytes_read = 1536, .busy_ticks = GHZ}};
    struct metrics_snapshot s = base();
    s.bdevs = &b;
    s.nr_bdevs = 1;
    s.reactors = &r;
    s.nr_reactors = 1;
    s.ctrlrs = &c;
    s.nr_ctrlrs = 1;
    char *t = format(&s);
    check_text(t);
    expect_line(t, "# TYPE vnvme_bdev_io_ops_total counter");
    expect_line(t, "vnvme_bdev_io_ops_total{bdev=\"Malloc0\",op=\"read\"} 3");
    expect_line(t, "vnvme_bdev_io_ops_total{bdev=\"Malloc0\",op=\"write\"} 1");
    expect_line(t, "vnvme_bdev_io_ops_total{bdev=\"Malloc0\",op=\"unmap\"} 0");
    expect_line(t, "vnvme_bdev_io_ops_total{bdev=\"Malloc0\",op=\"other\"} 2");
    expect_line(t, "vnvme_bdev_io_bytes_total{bdev=\"Malloc0\",op=\"read\"} 1536");
    expect_line(t, "vnvme_bdev_io_bytes_total{bdev=\"Malloc0\",op=\"write\"} 4096");
    assert_false(has_line(t, "vnvme_bdev_io_bytes_total{bdev=\"Malloc0\",op=\"other\"} 0"));
    expect_line(t, "vnvme_bdev_io_latency_seconds_total{bdev=\"Malloc0\",op=\"read\"} 0.0015");
    expect_line(t, "vnvme_bdev_io_errors_total{bdev=\"Malloc0\",cause=\"aborted\"} 1");
    expect_line(t, "vnvme_bdev_io_errors_total{bdev=\"Malloc0\",cause=\"failed\"} 0");
    expect_line(t, "# TYPE vnvme_bdev_queue_depth gauge");
    expect_line(t, "vnvme_bdev_queue_depth{bdev=\"Malloc0\"} 2");
    expect_line(t, "vnvme_bdev_io_time_seconds_total{bdev=\"Malloc0\"} 0.5");
    expect_line(t, "vnvme_bdev_weighted_io_time_seconds_total{bdev=\"Malloc0\"} 0.75");
    /* Rate limits: those set, by SPDK's parameter name. */
    expect_line(t, "# TYPE vnvme_bdev_qos_limit gauge");
    expect_line(t, "vnvme_bdev_qos_limit{bdev=\"Malloc0\",type=\"rw_ios_per_sec\"} 5000");
    expect_line(t, "vnvme_bdev_qos_limit{bdev=\"Malloc0\",type=\"w_mbytes_per_sec\"} 100");
    assert_null(strstr(t, "type=\"rw_mbytes_per_sec\""));
    /* No histogram enabled: no such family. */
    assert_null(strstr(t, "vnvme_bdev_io_latency_seconds_bucket"));
    assert_null(strstr(t, "# TYPE vnvme_bdev_io_latency_seconds histogram"));

    expect_line(t, "vnvme_reactor_busy_seconds_total{reactor=\"0\",cpu=\"3\"} 0.25");
    expect_line(t, "vnvme_reactor_idle_seconds_total{reactor=\"0\",cpu=\"3\"} 0.75");
    expect_line(t, "vnvme_reactor_polls_total{reactor=\"0\",cpu=\"3\"} 10");
    expect_line(t, "vnvme_reactor_polls_with_work_total{reactor=\"0\",cpu=\"3\"} 7");
    expect_line(t, "# TYPE vnvme_reactor_connected_controllers gauge");
    expect_line(t, "vnvme_reactor_connected_controllers{reactor=\"0\",cpu=\"3\"} 1");
    expect_line(t, "vnvme_reactor_completions_posted_total{reactor=\"0\",cpu=\"3\"} 40");

    expect_line(t, "vnvme_controller_connected{subsystem=\"nqn.2026-11.io.vnvme:a\",cntlid=\"7\"} 1");
    expect_line(t, "vnvme_controller_enabled{subsystem=\"nqn.2026-11.io.vnvme:a\",cntlid=\"7\"} 1");
    expect_line(t, "vnvme_controller_io_qpairs{subsystem=\"nqn.2026-11.io.vnvme:a\",cntlid=\"7\"} 2");
    expect_line(t, "vnvme_controller_busy_seconds_total{subsystem=\"nqn.2026-11.io.vnvme:a\",cntlid=\"7\"} 1");
    expect_line(t, "vnvme_controller_commands_total{subsystem=\"nqn.2026-11.io.vnvme:a\",cntlid=\"7\",op=\"read\"} 3");
    expect_line(t, "vnvme_controller_commands_total{subsystem=\"nqn.2026-11.io.vnvme:a\",cntlid=\"7\",op=\"write\"} 1");
    expect_line(t, "vnvme_controller_bytes_total{subsystem=\"nqn.2026-11.io.vnvme:a\",cntlid=\"7\",op=\"read\"} 1536");
    free(t);
}

/* Backslash, double quote and newline are the three characters a label value escapes. */
static void test_label_escaping(void **state)
{
    (void)state;
    struct metrics_bdev b = {.name = "we\"ird\\na\nme"};
    struct metrics_ctrlr c = {.subsystem = "nqn.\"q\""};
    struct metrics_snapshot s = base();
    s.version = "0.1\\\"x";
    s.bdevs = &b;
    s.nr_bdevs = 1;
    s.ctrlrs = &c;
    s.nr_ctrlrs = 1;
    char *t = format(&s);
    check_text(t);
    expect_line(t, "vnvme_build_info{version=\"0.1\\\\\\\"x\"} 1");
    expect_line(t, "vnvme_bdev_queue_depth{bdev=\"we\\\"ird\\\\na\\nme\"} 0");
    expect_line(t, "vnvme_controller_connected{subsystem=\"nqn.\\\"q\\\"\",cntlid=\"0\"} 0");
    free(t);
}

/* Several of each: still one HELP and TYPE per family, with its samples in one block (check_text). */
static void test_families_once(void **state)
{
    (void)state;
    struct metrics_bdev b[3] = {{.name = "A"}, {.name = "B"}, {.name = "C"}};
    uint64_t *h1 = calloc(VNVME_BDEV_HIST_BUCKETS, sizeof(uint64_t)), *h2 = calloc(VNVME_BDEV_HIST_BUCKETS, 8);
    assert_non_null(h1);
    assert_non_null(h2);
    h1[vnvme_bdev_hist_index(5000)] = 1;
    h2[vnvme_bdev_hist_index(50000)] = 2;
    b[0].hist = h1;
    b[2].hist = h2;
    b[1].qos[VNVME_QOS_RW_MBPS] = 10;
    b[2].qos[VNVME_QOS_R_MBPS] = 20;
    struct reactor_stats r[2] = {{.index = 0, .cpu = 0}, {.index = 1, .cpu = 1}};
    struct metrics_ctrlr c[2] = {{.subsystem = "s1", .st = {.cntlid = 1}}, {.subsystem = "s2", .st = {.cntlid = 1}}};
    struct metrics_snapshot s = base();
    s.bdevs = b;
    s.nr_bdevs = 3;
    s.reactors = r;
    s.nr_reactors = 2;
    s.ctrlrs = c;
    s.nr_ctrlrs = 2;
    char *t = format(&s);
    check_text(t);
    assert_int_equal(count_prefix(t, "# TYPE vnvme_bdev_io_latency_seconds histogram"), 1);
    assert_int_equal(count_prefix(t, "# TYPE vnvme_bdev_qos_limit "), 1);
    assert_int_equal(count_prefix(t, "vnvme_bdev_qos_limit{"), 2);
    assert_int_equal(count_prefix(t, "vnvme_bdev_io_latency_seconds_count{"), 2);
    assert_int_equal(count_prefix(t, "vnvme_bdev_io_ops_total{"), 3 * 4);
    assert_int_equal(count_prefix(t, "vnvme_reactor_polls_total{"), 2);
    assert_int_equal(count_prefix(t, "vnvme_controller_commands_total{"), 2 * 2);
    expect_line(t, "vnvme_bdev_io_latency_seconds_count{bdev=\"C\"} 2");
    free(t);
    free(h1);
    free(h2);
}

static uint64_t bucket_value(const char *text, const char *bdev, const char *le)
{
    char prefix[160];
    snprintf(prefix, sizeof(prefix), "vnvme_bdev_io_latency_seconds_bucket{bdev=\"%s\",le=\"%s\"} ", bdev, le);
    const char *p = strstr(text, prefix);
    if (!p)
        fail_msg("no bucket %s", prefix);
    return strtoull(p + strlen(prefix), NULL, 10);
}

/*
 * Latencies at 1 GHz: 3 us, 7 us (x2), 2 ms, 20 s (beyond every bound), and
 * 100 ticks (exactly one per bucket at that size). Cumulative counts, +Inf =
 * _count, _sum within the buckets' precision.
 */
static void test_histogram(void **state)
{
    (void)state;
    uint64_t *h = calloc(VNVME_BDEV_HIST_BUCKETS, sizeof(uint64_t));
    assert_non_null(h);
    h[vnvme_bdev_hist_index(100)] += 1;
    h[vnvme_bdev_hist_index(3000)] += 1;
    h[vnvme_bdev_hist_index(7000)] += 2;
    h[vnvme_bdev_hist_index(2000000)] += 1;
    h[vnvme_bdev_hist_index(20 * GHZ)] += 1;
    h[VNVME_BDEV_HIST_BUCKETS - 1] += 1; /* the last bucket, which ends at 2^64 */
    struct metrics_bdev b = {.name = "Malloc0", .hist = h};
    struct metrics_snapshot s = base();
    s.bdevs = &b;
    s.nr_bdevs = 1;
    char *t = format(&s);
    check_text(t);
    expect_line(t, "# TYPE vnvme_bdev_io_latency_seconds histogram");
    expect_line(t, "vnvme_bdev_io_latency_seconds_bucket{bdev=\"Malloc0\",le=\"0.000005\"} 2");
    expect_line(t, "vnvme_bdev_io_latency_seconds_bucket{bdev=\"Malloc0\",le=\"0.00001\"} 4");
    expect_line(t, "vnvme_bdev_io_latency_seconds_bucket{bdev=\"Malloc0\",le=\"0.001\"} 4");
    expect_line(t, "vnvme_bdev_io_latency_seconds_bucket{bdev=\"Malloc0\",le=\"0.0025\"} 5");
    expect_line(t, "vnvme_bdev_io_latency_seconds_bucket{bdev=\"Malloc0\",le=\"10\"} 5");
    expect_line(t, "vnvme_bdev_io_latency_seconds_bucket{bdev=\"Malloc0\",le=\"+Inf\"} 7");
    expect_line(t, "vnvme_bdev_io_latency_seconds_count{bdev=\"Malloc0\"} 7");
    uint64_t prev = 0;
    for (size_t k = 0; k < METRICS_NR_LATENCY_BOUNDS; k++) {
        uint64_t v = bucket_value(t, "Malloc0", metrics_latency_bounds[k]);
        assert_true(v >= prev);
        prev = v;
        if (k)
            assert_true(strtod(metrics_latency_bounds[k], NULL) > strtod(metrics_latency_bounds[k - 1], NULL));
    }
    assert_true(bucket_value(t, "Malloc0", "+Inf") >= prev);
    /* The sum, from the buckets' midpoints: the last bucket's (~1.4e19 ticks) dominates; the rest within 1/128. */
    const char *p = strstr(t, "vnvme_bdev_io_latency_seconds_sum{bdev=\"Malloc0\"} ");
    assert_non_null(p);
    double sum = strtod(strchr(p, '}') + 2, NULL);
    double last_mid = ((double)vnvme_bdev_hist_bucket_start(VNVME_BDEV_HIST_BUCKETS - 1) + 18446744073709551615.0) / 2;
    double want = (100 + 3000 + 2 * 7000 + 2000000 + 20.0 * GHZ + last_mid) / GHZ;
    assert_true(sum > want * (1 - 1.0 / 128) && sum < want * (1 + 1.0 / 128));
    free(t);

    /* Without the huge ones: the sum is close to the true one. */
    h[vnvme_bdev_hist_index(20 * GHZ)] = 0;
    h[VNVME_BDEV_HIST_BUCKETS - 1] = 0;
    t = format(&s);
    p = strstr(t, "vnvme_bdev_io_latency_seconds_sum{bdev=\"Malloc0\"} ");
    assert_non_null(p);
    sum = strtod(strchr(p, '}') + 2, NULL);
    want = (100 + 3000 + 2 * 7000 + 2000000) / (double)GHZ;
    assert_true(sum > want * (1 - 1.0 / 128) && sum < want * (1 + 1.0 / 128));
    expect_line(t, "vnvme_bdev_io_latency_seconds_bucket{bdev=\"Malloc0\",le=\"+Inf\"} 5");
    free(t);
    free(h);
}

/*
 * A latency of exactly a bound is counted under it when its bucket ends
 * there; a bucket that straddles a bound goes to the next one, so no count
 * claims a latency was shorter than it was.
 */
static void test_histogram_bounds(void **state)
{
    (void)state;
    uint64_t *h = calloc(VNVME_BDEV_HIST_BUCKETS, sizeof(uint64_t));
    assert_non_null(h);
    struct metrics_bdev b = {.name = "x", .hist = h};
    struct metrics_snapshot s = base();
    s.bdevs = &b;
    s.nr_bdevs = 1;

    s.tick_rate = 100; /* 1 s = 100 ticks: below 128, one value per bucket */
    h[vnvme_bdev_hist_index(100)] = 1;
    char *t = format(&s);
    check_text(t);
    expect_line(t, "vnvme_bdev_io_latency_seconds_bucket{bdev=\"x\",le=\"0.5\"} 0");
    expect_line(t, "vnvme_bdev_io_latency_seconds_bucket{bdev=\"x\",le=\"1\"} 1");
    free(t);

    s.tick_rate = 1000; /* 1 s = 1000 ticks: buckets of 4 there, [996, 999] and [1000, 1003] */
    memset(h, 0, VNVME_BDEV_HIST_BUCKETS * sizeof(uint64_t));
    h[vnvme_bdev_hist_index(999)] = 1;
    h[vnvme_bdev_hist_index(1000)] = 1;
    assert_int_equal(vnvme_bdev_hist_bucket_start(vnvme_bdev_hist_index(1000)), 1000);
    assert_int_equal(vnvme_bdev_hist_bucket_start(vnvme_bdev_hist_index(1000) + 1), 1004);
    t = format(&s);
    check_text(t);
    expect_line(t, "vnvme_bdev_io_latency_seconds_bucket{bdev=\"x\",le=\"1\"} 1");
    expect_line(t, "vnvme_bdev_io_latency_seconds_bucket{bdev=\"x\",le=\"2.5\"} 2");
    free(t);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_process_only),   cmocka_unit_test(test_exact_lines),
        cmocka_unit_test(test_label_escaping), cmocka_unit_test(test_families_once),
        cmocka_unit_test(test_histogram),      cmocka_unit_test(test_histogram_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
