/* SPDX-License-Identifier: MIT */
#include "iostat_format.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

static uint64_t u64(const struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex((struct json_object *)o, key, &v))
        return 0;
    return json_object_get_uint64(v);
}

static const struct json_object *find_bdev(const struct json_object *r, const char *name)
{
    struct json_object *arr = NULL;
    if (!json_object_object_get_ex((struct json_object *)r, "bdevs", &arr) || !json_object_is_type(arr, json_type_array))
        return NULL;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        struct json_object *b = json_object_array_get_idx(arr, i), *n = NULL;
        if (json_object_object_get_ex(b, "name", &n) && strcmp(json_object_get_string(n), name) == 0)
            return b;
    }
    return NULL;
}

/* cur - prev, or cur when the counter went down (reset in between). */
static uint64_t delta(const struct json_object *p, const struct json_object *c, const char *key)
{
    uint64_t a = u64(p, key), b = u64(c, key);
    return b >= a ? b - a : b;
}

int iostat_rates(const struct json_object *prev, const struct json_object *cur, const char *name,
                 struct iostat_rates *out)
{
    const struct json_object *p = find_bdev(prev, name), *c = find_bdev(cur, name);
    uint64_t hz = u64(cur, "tick_rate"), t0 = u64(prev, "ticks"), t1 = u64(cur, "ticks");
    if (!p || !c || hz == 0 || t1 <= t0)
        return -1;
    double secs = (double)(t1 - t0) / (double)hz;
    uint64_t r = delta(p, c, "num_read_ops"), w = delta(p, c, "num_write_ops"), u = delta(p, c, "num_unmap_ops");
    memset(out, 0, sizeof(*out));
    out->read_iops = (double)r / secs;
    out->write_iops = (double)w / secs;
    out->unmap_iops = (double)u / secs;
    out->read_mib_s = (double)delta(p, c, "bytes_read") / secs / 1048576.0;
    out->write_mib_s = (double)delta(p, c, "bytes_written") / secs / 1048576.0;
    if (r)
        out->avg_read_us = (double)delta(p, c, "read_latency_ticks") / (double)r / (double)hz * 1e6;
    if (w)
        out->avg_write_us = (double)delta(p, c, "write_latency_ticks") / (double)w / (double)hz * 1e6;
    out->queue_depth = u64(c, "queue_depth");
    out->p99_us = -1;
    return 0;
}

static int b64(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* The counts of a bdev_get_histogram result (malloc'd), *n of them; NULL when malformed. */
static uint64_t *decode_counts(const struct json_object *h, size_t *n)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex((struct json_object *)h, "histogram", &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    const char *t = json_object_get_string(v);
    size_t len = strlen(t);
    if (len % 4)
        return NULL;
    uint8_t *raw = malloc(len / 4 * 3 + 1);
    size_t r = 0;
    for (size_t i = 0; raw && i < len; i += 4) {
        uint32_t x = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            int d = t[i + k] == '=' ? (pad++, 0) : b64(t[i + k]);
            if (d < 0 || (pad && t[i + k] != '=')) {
                free(raw);
                return NULL;
            }
            x = x << 6 | (uint32_t)d;
        }
        for (int k = 0; k < 3 - pad; k++)
            raw[r++] = (uint8_t)(x >> (16 - 8 * k));
    }
    if (!raw || r % 8) {
        free(raw);
        return NULL;
    }
    uint64_t *c = malloc(r / 8 * sizeof(uint64_t) + 1);
    for (size_t i = 0; c && i < r / 8; i++) {
        c[i] = 0;
        for (int k = 7; k >= 0; k--)
            c[i] = c[i] << 8 | raw[i * 8 + (size_t)k];
    }
    free(raw);
    *n = r / 8;
    return c;
}

/* The exclusive upper edge of bucket i in SPDK's layout (see vnvme/bdev_stat.h). */
static double bucket_end(size_t i, unsigned shift)
{
    size_t range = i >> shift, sub = i & ((1u << shift) - 1);
    if (range == 0)
        return (double)sub + 1;
    return (double)((1ull << shift) + sub + 1) * (double)(1ull << (range - 1));
}

double iostat_p99_us(const struct json_object *prev_hist, const struct json_object *cur_hist)
{
    size_t np = 0, nc = 0;
    uint64_t *p = decode_counts(prev_hist, &np), *c = decode_counts(cur_hist, &nc);
    uint64_t shift = u64(cur_hist, "bucket_shift"), hz = u64(cur_hist, "tsc_rate");
    double res = -1;
    if (p && c && np == nc && hz && shift > 0 && shift < 16) {
        uint64_t total = 0;
        for (size_t i = 0; i < nc; i++) {
            c[i] = c[i] >= p[i] ? c[i] - p[i] : c[i];
            total += c[i];
        }
        uint64_t want = total - total / 100, seen = 0; /* the smallest bucket with 99 % at or below it */
        for (size_t i = 0; total && i < nc; i++) {
            seen += c[i];
            if (seen >= want && seen) {
                res = bucket_end(i, (unsigned)shift) / (double)hz * 1e6;
                break;
            }
        }
    }
    free(p);
    free(c);
    return res;
}

void iostat_print_header(FILE *out)
{
    fprintf(out, "%-20s %10s %10s %9s %9s %9s %10s %10s %9s %5s\n", "bdev", "r/s", "w/s", "rMiB/s", "wMiB/s",
            "unmap/s", "r_await_us", "w_await_us", "p99_us", "qd");
}

void iostat_print_row(FILE *out, const char *name, const struct iostat_rates *r)
{
    char p99[16] = "-";
    if (r->p99_us >= 0)
        snprintf(p99, sizeof(p99), "%.1f", r->p99_us);
    fprintf(out, "%-20s %10.1f %10.1f %9.2f %9.2f %9.1f %10.1f %10.1f %9s %5llu\n", name, r->read_iops, r->write_iops,
            r->read_mib_s, r->write_mib_s, r->unmap_iops, r->avg_read_us, r->avg_write_us, p99,
            (unsigned long long)r->queue_depth);
}
