/* SPDX-License-Identifier: MIT */
/*
 * The statistics and rate-limit methods over real bdevs and the fake tgt:
 * bdev_get_iostat / bdev_reset_iostat, histograms, bdev_set_qos_limit, and
 * the shapes of framework_get_reactors and nvmf_get_stats.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "fake_tgt.h"
#include "rpc_check.h"
#include "vnvme/bdev.h"
#include "vnvme/bdev_stat.h"

static void iostat_done(struct vnvme_bdev_io *io, int status)
{
    *(int *)io->cb_arg = status + 1;
}

static void do_io(struct vnvme_bdev_channel *ch, enum vnvme_bdev_op op, uint64_t blocks, uint8_t *buf)
{
    int done = 0;
    struct iovec iov = {buf, blocks * 512};
    struct vnvme_bdev_io io = {.op = op, .num_blocks = blocks, .iov = &iov, .iovcnt = 1, .cb = iostat_done,
                               .cb_arg = &done};
    assert_int_equal(vnvme_bdev_submit(ch, &io), 0);
    assert_int_equal(done, 1); /* malloc completes inside submit */
}


/* bdev_get_iostat and bdev_reset_iostat, SPDK's shapes: the fields iostat.py reads. */
static void test_iostat(void **state)
{
    (void)state;
    json_object_put(ok("bdev_malloc_create", "{\"name\": \"Malloc0\", \"num_blocks\": 64, \"block_size\": 512}"));
    json_object_put(ok("bdev_malloc_create", "{\"name\": \"Malloc1\", \"num_blocks\": 64, \"block_size\": 512}"));
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(vnvme_bdev_get("Malloc0"));
    uint8_t buf[4096] = {0};
    do_io(ch, VNVME_BDEV_WRITE, 8, buf);
    do_io(ch, VNVME_BDEV_READ, 2, buf);
    do_io(ch, VNVME_BDEV_READ, 1, buf);

    struct json_object *r = ok("bdev_get_iostat", NULL), *bdevs = NULL;
    assert_int_equal(u64_at(r, "tick_rate"), vnvme_bdev_stat_tick_rate());
    assert_true(u64_at(r, "tick_rate") > 1000000u); /* a TSC, or the ns clock elsewhere */
    assert_true(u64_at(r, "ticks") > 0);
    assert_true(json_object_object_get_ex(r, "bdevs", &bdevs));
    assert_int_equal(json_object_array_length(bdevs), 2);
    struct json_object *m0 = json_object_array_get_idx(bdevs, 0), *m1 = json_object_array_get_idx(bdevs, 1);
    assert_string_equal(str_at(m0, "name"), "Malloc0");
    assert_int_equal(u64_at(m0, "num_read_ops"), 2);
    assert_int_equal(u64_at(m0, "bytes_read"), 3 * 512);
    assert_int_equal(u64_at(m0, "num_write_ops"), 1);
    assert_int_equal(u64_at(m0, "bytes_written"), 8 * 512);
    assert_int_equal(u64_at(m0, "num_unmap_ops"), 0);
    assert_true(u64_at(m0, "max_read_latency_ticks") >= u64_at(m0, "min_read_latency_ticks"));
    assert_true(u64_at(m0, "read_latency_ticks") >= u64_at(m0, "max_read_latency_ticks"));
    assert_int_equal(u64_at(m0, "min_unmap_latency_ticks"), 0); /* none yet: 0, not a sentinel */
    assert_int_equal(u64_at(m0, "queue_depth"), 0);
    u64_at(m0, "io_time");
    u64_at(m0, "weighted_io_time");
    assert_int_equal(u64_at(m1, "num_read_ops"), 0);
    json_object_put(r);

    r = ok("bdev_get_iostat", "{\"name\": \"Malloc0\", \"per_channel\": true}");
    struct json_object *chans = NULL;
    assert_string_equal(str_at(r, "name"), "Malloc0");
    assert_true(json_object_object_get_ex(r, "channels", &chans));
    assert_int_equal(json_object_array_length(chans), 1);
    assert_int_equal(u64_at(json_object_array_get_idx(chans, 0), "num_read_ops"), 2);
    json_object_put(r);

    ok_true("bdev_reset_iostat", "{\"name\": \"Malloc0\", \"mode\": \"maxmin\"}");
    r = ok("bdev_get_iostat", "{\"name\": \"Malloc0\"}");
    struct json_object *one = json_object_array_get_idx(json_object_object_get(r, "bdevs"), 0);
    assert_int_equal(u64_at(one, "num_read_ops"), 2);
    assert_int_equal(u64_at(one, "max_read_latency_ticks"), 0);
    json_object_put(r);
    ok_true("bdev_reset_iostat", NULL);
    r = ok("bdev_get_iostat", "{\"name\": \"Malloc0\"}");
    one = json_object_array_get_idx(json_object_object_get(r, "bdevs"), 0);
    assert_int_equal(u64_at(one, "num_read_ops"), 0);
    assert_int_equal(u64_at(one, "bytes_written"), 0);
    json_object_put(r);

    err("bdev_get_iostat", "{\"name\": \"nope\"}", -ENODEV, "No such device");
    err("bdev_get_iostat", "{\"per_channel\": true}", -32602, "per_channel needs a bdev name");
    err("bdev_reset_iostat", "{\"mode\": \"some\"}", -32602, "mode must be");
    err("bdev_reset_iostat", "{\"name\": \"nope\"}", -ENODEV, "No such device");
    vnvme_bdev_channel_put(ch);
}

static int b64val(char c)
{
    const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(abc, c);
    return c && p ? (int)(p - abc) : -1;
}

/* bdev_enable_histogram / bdev_get_histogram: SPDK's result, buckets as base64 of little-endian counts. */
static void test_histogram(void **state)
{
    (void)state;
    json_object_put(ok("bdev_malloc_create", "{\"name\": \"Malloc0\", \"num_blocks\": 64, \"block_size\": 512}"));
    err("bdev_get_histogram", "{\"name\": \"Malloc0\"}", -32602, "histogram not enabled");
    ok_true("bdev_enable_histogram", "{\"name\": \"Malloc0\", \"enable\": true}");
    struct vnvme_bdev_channel *ch = vnvme_bdev_channel_get(vnvme_bdev_get("Malloc0"));
    uint8_t buf[4096] = {0};
    for (int i = 0; i < 5; i++)
        do_io(ch, VNVME_BDEV_READ, 1, buf);
    vnvme_bdev_channel_put(ch);

    struct json_object *r = ok("bdev_get_histogram", "{\"name\": \"Malloc0\"}");
    assert_int_equal(u64_at(r, "bucket_shift"), 7);
    assert_int_equal(u64_at(r, "tsc_rate"), vnvme_bdev_stat_tick_rate());
    const char *text = str_at(r, "histogram");
    size_t n = strlen(text);
    assert_int_equal(n, (VNVME_BDEV_HIST_BUCKETS * 8 + 2) / 3 * 4);
    /* Decode and add up the counts: the five reads. */
    uint8_t *raw = malloc(n / 4 * 3);
    size_t len = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            int d = text[i + k] == '=' ? (pad++, 0) : b64val(text[i + k]);
            assert_true(d >= 0);
            v = v << 6 | (uint32_t)d;
        }
        for (int k = 0; k < 3 - pad; k++)
            raw[len++] = (uint8_t)(v >> (16 - 8 * k));
    }
    assert_int_equal(len, VNVME_BDEV_HIST_BUCKETS * 8);
    uint64_t total = 0;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t c = 0;
        for (int k = 7; k >= 0; k--)
            c = c << 8 | raw[i + (size_t)k];
        total += c;
    }
    assert_int_equal(total, 5);
    free(raw);
    json_object_put(r);
    ok_true("bdev_enable_histogram", "{\"name\": \"Malloc0\", \"enable\": false}");
    err("bdev_get_histogram", "{\"name\": \"Malloc0\"}", -32602, "histogram not enabled");
    err("bdev_enable_histogram", "{\"name\": \"nope\", \"enable\": true}", -ENODEV, "No such device");
    err("bdev_enable_histogram", "{\"name\": \"Malloc0\"}", -32602, "missing parameter: enable");
}

/* bdev_set_qos_limit: SPDK's parameters, shown by bdev_get_bdevs, written back by save_config. */
static void test_qos_limit(void **state)
{
    (void)state;
    json_object_put(ok("bdev_malloc_create", "{\"name\": \"Malloc0\", \"num_blocks\": 64, \"block_size\": 512}"));
    struct json_object *r = ok("bdev_get_bdevs", "{\"name\": \"Malloc0\"}");
    struct json_object *rl = json_object_object_get(json_object_array_get_idx(r, 0), "assigned_rate_limits");
    assert_non_null(rl);
    assert_int_equal(u64_at(rl, "rw_ios_per_sec"), 0);
    assert_int_equal(u64_at(rl, "w_mbytes_per_sec"), 0);
    json_object_put(r);

    ok_true("bdev_set_qos_limit", "{\"name\": \"Malloc0\", \"rw_ios_per_sec\": 20000, \"rw_mbytes_per_sec\": 100}");
    ok_true("bdev_set_qos_limit", "{\"name\": \"Malloc0\", \"r_mbytes_per_sec\": 50}"); /* the others stay */
    r = ok("bdev_get_bdevs", "{\"name\": \"Malloc0\"}");
    rl = json_object_object_get(json_object_array_get_idx(r, 0), "assigned_rate_limits");
    assert_int_equal(u64_at(rl, "rw_ios_per_sec"), 20000);
    assert_int_equal(u64_at(rl, "rw_mbytes_per_sec"), 100);
    assert_int_equal(u64_at(rl, "r_mbytes_per_sec"), 50);
    assert_int_equal(u64_at(rl, "w_mbytes_per_sec"), 0);
    json_object_put(r);

    r = ok("save_config", NULL);
    const char *text = json_object_to_json_string(r);
    const char *call = strstr(text, "\"bdev_set_qos_limit\"");
    assert_non_null(call);
    assert_true(call > strstr(text, "\"bdev_malloc_create\"")); /* after the bdev it limits */
    assert_non_null(strstr(call, "\"rw_ios_per_sec\": 20000"));
    assert_null(strstr(call, "\"w_mbytes_per_sec\"")); /* only what is set */
    json_object_put(r);

    ok_true("bdev_set_qos_limit", "{\"name\": \"Malloc0\", \"burst_ms\": 500}");
    r = ok("bdev_get_bdevs", "{\"name\": \"Malloc0\"}");
    rl = json_object_object_get(json_object_array_get_idx(r, 0), "assigned_rate_limits");
    assert_int_equal(u64_at(rl, "burst_ms"), 500);
    assert_int_equal(u64_at(rl, "rw_ios_per_sec"), 20000);
    json_object_put(r);
    r = ok("save_config", NULL);
    assert_non_null(strstr(json_object_to_json_string(r), "\"burst_ms\": 500"));
    json_object_put(r);
    err("bdev_set_qos_limit", "{\"name\": \"Malloc0\", \"burst_ms\": 60001}", -32602, "above a minute");
    ok_true("bdev_set_qos_limit", "{\"name\": \"Malloc0\", \"rw_ios_per_sec\": 0}");
    r = ok("bdev_get_bdevs", "{\"name\": \"Malloc0\"}");
    rl = json_object_object_get(json_object_array_get_idx(r, 0), "assigned_rate_limits");
    assert_int_equal(u64_at(rl, "rw_ios_per_sec"), 0);
    json_object_put(r);

    err("bdev_set_qos_limit", "{\"name\": \"Malloc0\"}", -32602, "no limit given");
    err("bdev_set_qos_limit", "{\"name\": \"nope\", \"rw_ios_per_sec\": 1}", -ENODEV, "No such device");
    err("bdev_set_qos_limit", "{\"name\": \"Malloc0\", \"rw_ios_per_sec\": -1}", -32602, "rw_ios_per_sec");
    err("bdev_set_qos_limit", "{\"name\": \"Malloc0\", \"r_mbytes_per_sec\": 1000000000000}", -32602, "too large");
}

/* framework_get_reactors and nvmf_get_stats: SPDK's shapes over the reactors' figures (one fake reactor). */
static void test_reactor_and_poll_group_stats(void **state)
{
    (void)state;
    struct json_object *r = ok("framework_get_reactors", NULL), *arr = NULL;
    assert_true(u64_at(r, "tick_rate") > 0);
    assert_true(json_object_object_get_ex(r, "reactors", &arr));
    assert_int_equal(json_object_array_length(arr), 1);
    struct json_object *re = json_object_array_get_idx(arr, 0), *threads = NULL;
    assert_int_equal(u64_at(re, "lcore"), 3);
    assert_int_equal(u64_at(re, "busy"), 700);
    assert_int_equal(u64_at(re, "idle"), 300);
    assert_true(json_object_object_get_ex(re, "lw_threads", &threads));
    assert_string_equal(str_at(json_object_array_get_idx(threads, 0), "cpumask"), "0x8");
    assert_int_equal(u64_at(json_object_array_get_idx(threads, 0), "elapsed"), 1000);
    json_object_put(r);

    r = ok("nvmf_get_stats", NULL);
    assert_true(json_object_object_get_ex(r, "poll_groups", &arr));
    struct json_object *pg = json_object_array_get_idx(arr, 0), *tr = NULL;
    assert_string_equal(str_at(pg, "name"), "nvmf_tgt_poll_group_000");
    assert_int_equal(u64_at(pg, "controllers"), 2);
    assert_int_equal(u64_at(pg, "connected_clients"), 1);
    assert_int_equal(u64_at(pg, "polls_with_work"), 7);
    assert_true(json_object_object_get_ex(pg, "transports", &tr));
    assert_string_equal(str_at(json_object_array_get_idx(tr, 0), "trtype"), "VFIOUSER");
    json_object_put(r);
    err("nvmf_subsystem_get_controllers", "{\"nqn\": \"nqn.none\"}", -32602, "no subsystem");
    err("framework_get_reactors", "{\"x\": 1}", -32602, "unknown parameter");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_iostat, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_histogram, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_qos_limit, rpc_clean_slate, rpc_clean_slate),
        cmocka_unit_test_setup_teardown(test_reactor_and_poll_group_stats, rpc_clean_slate, rpc_clean_slate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
