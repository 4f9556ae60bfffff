/* SPDX-License-Identifier: MIT */
#include "iostat_format.h"

#include <json-c/json.h>
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
    return 0;
}

void iostat_print_header(FILE *out)
{
    fprintf(out, "%-20s %10s %10s %9s %9s %9s %10s %10s %5s\n", "bdev", "r/s", "w/s", "rMiB/s", "wMiB/s", "unmap/s",
            "r_await_us", "w_await_us", "qd");
}

void iostat_print_row(FILE *out, const char *name, const struct iostat_rates *r)
{
    fprintf(out, "%-20s %10.1f %10.1f %9.2f %9.2f %9.1f %10.1f %10.1f %5llu\n", name, r->read_iops, r->write_iops,
            r->read_mib_s, r->write_mib_s, r->unmap_iops, r->avg_read_us, r->avg_write_us,
            (unsigned long long)r->queue_depth);
}
