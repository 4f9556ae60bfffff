/* SPDX-License-Identifier: MIT */
/*
 * `vnvme iostat [-i SECONDS] [-c COUNT] [-b BDEV] [-H]`: per-bdev rates every
 * interval, from bdev_get_iostat (SPDK's iostat.py as the model), and the 99th
 * percentile latency from bdev_get_histogram for bdevs whose histogram is on
 * (-H turns it on). The first sample only starts the clock; each later one
 * prints the rates since the one before.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "iostat_format.h"
#include "rpc_client.h"

/* A method's result, or NULL (the error printed when loud). params are taken. */
static struct json_object *call(const char *method, struct json_object *params, bool loud)
{
    struct json_object *result = NULL;
    int code = 0;
    char *msg = NULL;
    int rc = rpc_client_call(socket_path, method, params, &result, &code, &msg);
    json_object_put(params);
    if (rc != 0) {
        if (rc > 0 && loud)
            fprintf(stderr, "vnvme: %s failed: %s (code %d)\n", method, msg, code);
        free(msg);
        return NULL;
    }
    return result;
}

static struct json_object *sample(const char *bdev)
{
    return call("bdev_get_iostat", bdev ? obj_with("name", bdev) : NULL, true);
}

/* Each listed bdev's histogram ({name: result}); bdevs without one are left out. */
static struct json_object *histograms(struct json_object *iostat, bool enable)
{
    struct json_object *arr = NULL, *map = json_object_new_object();
    json_object_object_get_ex(iostat, "bdevs", &arr);
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        const char *name = json_object_get_string(json_object_object_get(json_object_array_get_idx(arr, i), "name"));
        if (!name)
            continue;
        if (enable) {
            struct json_object *p = obj_with("name", name);
            json_object_object_add(p, "enable", json_object_new_boolean(1));
            json_object_put(call("bdev_enable_histogram", p, true));
        }
        struct json_object *h = call("bdev_get_histogram", obj_with("name", name), false);
        if (h)
            json_object_object_add(map, name, h);
    }
    return map;
}

static int parse_positive(const char *s, const char *what, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno != 0 || !(v > 0)) {
        fprintf(stderr, "vnvme: invalid %s: %s\n", what, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cmd_iostat(int argc, char **argv)
{
    double interval = 1, count = 0;
    const char *bdev = NULL;
    bool enable_hist = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-i") == 0 && i + 1 < argc) {
            if (parse_positive(argv[++i], "interval", &interval))
                return 2;
        } else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            if (parse_positive(argv[++i], "count", &count))
                return 2;
        } else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) {
            bdev = argv[++i];
        } else if (strcmp(argv[i], "-H") == 0) {
            enable_hist = true;
        } else {
            fprintf(stderr, "vnvme: iostat [-i SECONDS] [-c COUNT] [-b BDEV] [-H]\n");
            return 2;
        }
    }
    struct json_object *prev = sample(bdev);
    if (!prev)
        return 1;
    struct json_object *prev_hist = histograms(prev, enable_hist);
    for (unsigned long n = 0; count == 0 || n < (unsigned long)count; n++) {
        struct timespec ts = {(time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        struct json_object *cur = sample(bdev);
        if (!cur) {
            json_object_put(prev);
            json_object_put(prev_hist);
            return 1;
        }
        struct json_object *cur_hist = histograms(cur, false);
        iostat_print_header(stdout);
        struct json_object *arr = NULL;
        json_object_object_get_ex(cur, "bdevs", &arr);
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
            const char *name = json_object_get_string(json_object_object_get(json_object_array_get_idx(arr, i), "name"));
            struct iostat_rates r;
            if (name && iostat_rates(prev, cur, name, &r) == 0) {
                struct json_object *hp = json_object_object_get(prev_hist, name), *hc = json_object_object_get(cur_hist, name);
                if (hp && hc)
                    r.p99_us = iostat_p99_us(hp, hc);
                iostat_print_row(stdout, name, &r);
            }
        }
        printf("\n");
        fflush(stdout);
        json_object_put(prev);
        json_object_put(prev_hist);
        prev = cur;
        prev_hist = cur_hist;
    }
    json_object_put(prev);
    json_object_put(prev_hist);
    return 0;
}
