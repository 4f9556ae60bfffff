/* SPDX-License-Identifier: MIT */
/* `vnvme iostat`'s rates and table from two bdev_get_iostat results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "iostat_format.h"

/* 1 GHz ticks; prev at t = 1 s, cur at t = 3 s (a 2 s interval). */
static const char prev_json[] =
    "{\"tick_rate\": 1000000000, \"ticks\": 1000000000, \"bdevs\": ["
    " {\"name\": \"Malloc0\", \"num_read_ops\": 1000, \"bytes_read\": 4096000, \"read_latency_ticks\": 5000000,"
    "  \"num_write_ops\": 10, \"bytes_written\": 1048576, \"write_latency_ticks\": 100000,"
    "  \"num_unmap_ops\": 0, \"queue_depth\": 0},"
    " {\"name\": \"Malloc1\", \"num_read_ops\": 500}]}";
static const char cur_json[] =
    "{\"tick_rate\": 1000000000, \"ticks\": 3000000000, \"bdevs\": ["
    " {\"name\": \"Malloc0\", \"num_read_ops\": 3000, \"bytes_read\": 12288000, \"read_latency_ticks\": 25000000,"
    "  \"num_write_ops\": 10, \"bytes_written\": 1048576, \"write_latency_ticks\": 100000,"
    "  \"num_unmap_ops\": 4, \"queue_depth\": 3},"
    " {\"name\": \"Malloc1\", \"num_read_ops\": 20}]}";

static void test_rates(void **state)
{
    (void)state;
    struct json_object *p = json_tokener_parse(prev_json), *c = json_tokener_parse(cur_json);
    struct iostat_rates r;
    assert_int_equal(iostat_rates(p, c, "Malloc0", &r), 0);
    assert_true(r.read_iops == 1000.0);                  /* 2000 reads in 2 s */
    assert_true(r.read_mib_s > 3.906 && r.read_mib_s < 3.907); /* 8192000 B in 2 s */
    assert_true(r.avg_read_us == 10.0);                  /* 20 ms of latency over 2000 reads */
    assert_true(r.write_iops == 0.0 && r.avg_write_us == 0.0);
    assert_true(r.unmap_iops == 2.0);
    assert_int_equal(r.queue_depth, 3);
    /* Counters that went down were reset in between: counted from zero. */
    assert_int_equal(iostat_rates(p, c, "Malloc1", &r), 0);
    assert_true(r.read_iops == 10.0);
    /* Missing bdev, or no time between the samples. */
    assert_int_equal(iostat_rates(p, c, "Malloc9", &r), -1);
    assert_int_equal(iostat_rates(c, p, "Malloc0", &r), -1);
    json_object_put(p);
    json_object_put(c);
}

static void test_table(void **state)
{
    (void)state;
    struct json_object *p = json_tokener_parse(prev_json), *c = json_tokener_parse(cur_json);
    struct iostat_rates r;
    assert_int_equal(iostat_rates(p, c, "Malloc0", &r), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    iostat_print_header(f);
    iostat_print_row(f, "Malloc0", &r);
    iostat_print_row(f, "Malloc0", &(struct iostat_rates){.read_iops = 5, .p99_us = 201});
    fclose(f);
    assert_string_equal(buf,
                        "bdev                        r/s        w/s    rMiB/s    wMiB/s   unmap/s r_await_us w_await_us    p99_us    qd\n"
                        "Malloc0                  1000.0        0.0      3.91      0.00       2.0       10.0        0.0         -     3\n"
                        "Malloc0                     5.0        0.0      0.00      0.00       0.0        0.0        0.0     201.0     0\n");
    free(buf);
    json_object_put(p);
    json_object_put(c);
}

/* A bdev_get_histogram result of n counts (1 tick = 1 µs) as SPDK sends it. */
static struct json_object *hist_json(const uint64_t *counts, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t *raw = calloc(n, 8);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 8; k++)
            raw[i * 8 + (size_t)k] = (uint8_t)(counts[i] >> (8 * k));
    size_t len = n * 8;
    char *text = calloc((len + 2) / 3 * 4 + 1, 1), *p = text;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (i + 1 < len ? (uint32_t)raw[i + 1] << 8 : 0) | (i + 2 < len ? raw[i + 2] : 0);
        *p++ = abc[v >> 18 & 63];
        *p++ = abc[v >> 12 & 63];
        *p++ = i + 1 < len ? abc[v >> 6 & 63] : '=';
        *p++ = i + 2 < len ? abc[v & 63] : '=';
    }
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "histogram", json_object_new_string(text));
    json_object_object_add(o, "bucket_shift", json_object_new_int(7));
    json_object_object_add(o, "tsc_rate", json_object_new_int(1000000));
    free(raw);
    free(text);
    return o;
}

/* p99 of the interval: the upper edge of the bucket holding the 99th percentile of what was added. */
static void test_p99(void **state)
{
    (void)state;
    uint64_t before[256] = {0}, after[256] = {0};
    before[10] = 1000; /* counted before the interval: not in it */
    after[10] = 1000 + 99;
    after[200] = 1;
    struct json_object *p = hist_json(before, 256), *c = hist_json(after, 256);
    assert_true(iostat_p99_us(p, c) == 11.0); /* bucket 10 holds 10 ticks: it ends at 11 */
    json_object_put(c);
    after[10] = 1000 + 98;
    after[200] = 2;
    c = hist_json(after, 256);
    assert_true(iostat_p99_us(p, c) == 201.0); /* range 1, bucket 72: [200, 201) */
    json_object_put(c);
    /* Nothing new, or a malformed result: no figure. */
    assert_true(iostat_p99_us(p, p) < 0);
    struct json_object *bad = json_tokener_parse("{\"histogram\": \"@@@@\", \"bucket_shift\": 7, \"tsc_rate\": 1}");
    assert_true(iostat_p99_us(p, bad) < 0);
    json_object_put(bad);
    json_object_put(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rates),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_p99),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
