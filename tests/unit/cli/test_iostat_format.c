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
    fclose(f);
    assert_string_equal(buf,
                        "bdev                        r/s        w/s    rMiB/s    wMiB/s   unmap/s r_await_us w_await_us    qd\n"
                        "Malloc0                  1000.0        0.0      3.91      0.00       2.0       10.0        0.0     3\n");
    free(buf);
    json_object_put(p);
    json_object_put(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rates),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
