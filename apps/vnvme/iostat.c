/* SPDX-License-Identifier: MIT */
/*
 * `vnvme iostat [-i SECONDS] [-c COUNT] [-b BDEV]`: per-bdev rates every
 * interval, from bdev_get_iostat (SPDK's iostat.py as the model). The first
 * sample only starts the clock; each later one prints the rates since the one
 * before.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "iostat_format.h"
#include "rpc_client.h"

static struct json_object *sample(const char *bdev)
{
    struct json_object *params = bdev ? obj_with("name", bdev) : NULL, *result = NULL;
    int code = 0;
    char *msg = NULL;
    int rc = rpc_client_call(socket_path, "bdev_get_iostat", params, &result, &code, &msg);
    json_object_put(params);
    if (rc != 0) {
        if (rc > 0)
            fprintf(stderr, "vnvme: bdev_get_iostat failed: %s (code %d)\n", msg, code);
        free(msg);
        return NULL;
    }
    return result;
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
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-i") == 0 && i + 1 < argc) {
            if (parse_positive(argv[++i], "interval", &interval))
                return 2;
        } else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            if (parse_positive(argv[++i], "count", &count))
                return 2;
        } else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) {
            bdev = argv[++i];
        } else {
            fprintf(stderr, "vnvme: iostat [-i SECONDS] [-c COUNT] [-b BDEV]\n");
            return 2;
        }
    }
    struct json_object *prev = sample(bdev);
    if (!prev)
        return 1;
    for (unsigned long n = 0; count == 0 || n < (unsigned long)count; n++) {
        struct timespec ts = {(time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        struct json_object *cur = sample(bdev);
        if (!cur) {
            json_object_put(prev);
            return 1;
        }
        iostat_print_header(stdout);
        struct json_object *arr = NULL;
        json_object_object_get_ex(cur, "bdevs", &arr);
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
            const char *name = json_object_get_string(json_object_object_get(json_object_array_get_idx(arr, i), "name"));
            struct iostat_rates r;
            if (name && iostat_rates(prev, cur, name, &r) == 0)
                iostat_print_row(stdout, name, &r);
        }
        printf("\n");
        fflush(stdout);
        json_object_put(prev);
        prev = cur;
    }
    json_object_put(prev);
    return 0;
}
