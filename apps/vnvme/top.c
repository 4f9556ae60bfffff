/* SPDX-License-Identifier: MIT */
/*
 * `vnvme top [-i SECONDS]`: a view of a running vnvmed that redraws in place
 * every interval: its reactors (busy %), then either its bdevs (IOPS, MiB/s,
 * mean and p99 latency, queue depth, rate limit and how much of it is used)
 * or its controllers (subsystem, cntlid, I/O queues, client socket). Keys:
 * b bdevs, c controllers, s sort by IOPS or by name, q quit. Everything comes
 * from the same RPCs a script would use (framework_get_reactors,
 * bdev_get_iostat, bdev_get_histogram, bdev_get_bdevs, nvmf_get_subsystems,
 * nvmf_subsystem_get_controllers).
 */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "iostat_format.h"
#include "rpc_client.h"

static struct json_object *call(const char *method, struct json_object *params)
{
    struct json_object *result = NULL;
    int code = 0;
    char *msg = NULL;
    int rc = rpc_client_call(socket_path, method, params, &result, &code, &msg);
    json_object_put(params);
    free(msg);
    return rc == 0 ? result : NULL;
}

static uint64_t u64(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_uint64(v) : 0;
}

static const char *str(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

struct sample {
    struct json_object *reactors, *iostat, *bdevs, *hists;
};

static void sample_free(struct sample *s)
{
    json_object_put(s->reactors);
    json_object_put(s->iostat);
    json_object_put(s->bdevs);
    json_object_put(s->hists);
    memset(s, 0, sizeof(*s));
}

static int take(struct sample *s)
{
    s->reactors = call("framework_get_reactors", NULL);
    s->iostat = call("bdev_get_iostat", NULL);
    s->bdevs = call("bdev_get_bdevs", NULL);
    s->hists = json_object_new_object();
    struct json_object *arr = json_object_object_get(s->iostat, "bdevs");
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        const char *name = str(json_object_array_get_idx(arr, i), "name");
        struct json_object *h = call("bdev_get_histogram", obj_with("name", name));
        if (h)
            json_object_object_add(s->hists, name, h);
    }
    return s->reactors && s->iostat && s->bdevs ? 0 : -1;
}

static void show_reactors(const struct sample *prev, const struct sample *cur)
{
    struct json_object *pa = json_object_object_get(prev->reactors, "reactors");
    struct json_object *ca = json_object_object_get(cur->reactors, "reactors");
    printf("%-10s %6s %8s %12s\n", "reactor", "core", "busy%", "polls/s");
    for (size_t i = 0; ca && i < json_object_array_length(ca); i++) {
        struct json_object *c = json_object_array_get_idx(ca, i), *p = pa ? json_object_array_get_idx(pa, i) : NULL;
        uint64_t busy = u64(c, "busy") - (p ? u64(p, "busy") : 0), idle = u64(c, "idle") - (p ? u64(p, "idle") : 0);
        uint64_t dt = u64(cur->iostat, "ticks") - u64(prev->iostat, "ticks");
        double secs = dt ? (double)dt / (double)u64(cur->iostat, "tick_rate") : 0;
        printf("%-10zu %6llu %7.1f%% %12.0f\n", i, (unsigned long long)u64(c, "lcore"),
               busy + idle ? 100.0 * (double)busy / (double)(busy + idle) : 0.0,
               secs > 0 ? (double)(u64(c, "polls") - (p ? u64(p, "polls") : 0)) / secs : 0.0);
    }
}

struct bdev_row {
    const char *name;
    struct iostat_rates r;
    uint64_t limit_iops, limit_mbps;
};

static int by_iops(const void *a, const void *b)
{
    const struct bdev_row *x = a, *y = b;
    double ix = x->r.read_iops + x->r.write_iops, iy = y->r.read_iops + y->r.write_iops;
    return ix < iy ? 1 : ix > iy ? -1 : strcmp(x->name, y->name);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct bdev_row *)a)->name, ((const struct bdev_row *)b)->name);
}

static void show_bdevs(const struct sample *prev, const struct sample *cur, bool sort_iops)
{
    struct json_object *arr = json_object_object_get(cur->iostat, "bdevs");
    size_t n = arr ? json_object_array_length(arr) : 0;
    struct bdev_row *rows = calloc(n ? n : 1, sizeof(*rows));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = str(json_object_array_get_idx(arr, i), "name");
        struct bdev_row *row = &rows[m];
        if (iostat_rates(prev->iostat, cur->iostat, name, &row->r) != 0)
            continue;
        struct json_object *hp = json_object_object_get(prev->hists, name), *hc = json_object_object_get(cur->hists, name);
        if (hp && hc)
            row->r.p99_us = iostat_p99_us(hp, hc);
        for (size_t k = 0; k < json_object_array_length(cur->bdevs); k++) {
            struct json_object *b = json_object_array_get_idx(cur->bdevs, k);
            if (strcmp(str(b, "name"), name) == 0) {
                struct json_object *rl = json_object_object_get(b, "assigned_rate_limits");
                row->limit_iops = u64(rl, "rw_ios_per_sec");
                row->limit_mbps = u64(rl, "rw_mbytes_per_sec");
            }
        }
        row->name = name;
        m++;
    }
    qsort(rows, m, sizeof(*rows), sort_iops ? by_iops : by_name);
    printf("%-16s %10s %9s %10s %9s %5s %14s %6s\n", "bdev", "IOPS", "MiB/s", "await_us", "p99_us", "qd", "limit",
           "used");
    for (size_t i = 0; i < m; i++) {
        const struct iostat_rates *r = &rows[i].r;
        double iops = r->read_iops + r->write_iops, mbps = r->read_mib_s + r->write_mib_s;
        double ops = r->read_iops + r->write_iops;
        double await = ops > 0 ? (r->avg_read_us * r->read_iops + r->avg_write_us * r->write_iops) / ops : 0;
        char limit[32] = "-", used[24] = "-", p99[32] = "-";
        if (rows[i].limit_iops) {
            snprintf(limit, sizeof(limit), "%llu IOPS", (unsigned long long)rows[i].limit_iops);
            snprintf(used, sizeof(used), "%.0f%%", 100.0 * iops / (double)rows[i].limit_iops);
        } else if (rows[i].limit_mbps) {
            snprintf(limit, sizeof(limit), "%llu MiB/s", (unsigned long long)rows[i].limit_mbps);
            snprintf(used, sizeof(used), "%.0f%%", 100.0 * mbps / (double)rows[i].limit_mbps);
        }
        if (r->p99_us >= 0)
            snprintf(p99, sizeof(p99), "%.1f", r->p99_us);
        printf("%-16s %10.0f %9.2f %10.1f %9s %5llu %14s %6s\n", rows[i].name, iops, mbps, await, p99,
               (unsigned long long)r->queue_depth, limit, used);
    }
    free(rows);
}

static void show_controllers(void)
{
    struct json_object *subs = call("nvmf_get_subsystems", NULL);
    printf("%-36s %6s %9s %7s  %s\n", "subsystem", "cntlid", "io_queues", "enabled", "socket");
    for (size_t i = 0; subs && i < json_object_array_length(subs); i++) {
        const char *nqn = str(json_object_array_get_idx(subs, i), "nqn");
        struct json_object *ctrlrs = call("nvmf_subsystem_get_controllers", obj_with("nqn", nqn));
        for (size_t k = 0; ctrlrs && k < json_object_array_length(ctrlrs); k++) {
            struct json_object *c = json_object_array_get_idx(ctrlrs, k);
            struct json_object *en = json_object_object_get(c, "enabled");
            printf("%-36s %6llu %9llu %7s  %s\n", nqn, (unsigned long long)u64(c, "cntlid"),
                   (unsigned long long)u64(c, "num_io_qpairs"), en && json_object_get_boolean(en) ? "yes" : "no",
                   str(json_object_object_get(c, "listen_address"), "traddr"));
        }
        json_object_put(ctrlrs);
    }
    json_object_put(subs);
}

int cmd_top(int argc, char **argv)
{
    double interval = 1;
    for (int i = 0; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "-i") == 0 && i + 1 < argc && (interval = strtod(argv[i + 1], &end)) > 0 && !*end) {
            i++;
        } else {
            fprintf(stderr, "vnvme: top [-i SECONDS]\n");
            return 2;
        }
    }
    struct termios saved, raw;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        raw = saved;
        raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    struct sample prev = {0}, cur = {0};
    int rc = take(&prev) == 0 ? 0 : 1;
    bool bdev_view = true, sort_iops = true, quit = false;
    while (rc == 0 && !quit) {
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        int wait_ms = (int)(interval * 1000);
        if (poll(&p, 1, wait_ms) > 0) {
            char key = 0;
            if (read(STDIN_FILENO, &key, 1) <= 0)
                key = 'q';
            quit = key == 'q';
            bdev_view = key == 'b' ? true : key == 'c' ? false : bdev_view;
            sort_iops = key == 's' ? !sort_iops : sort_iops;
            usleep(100000); /* a little time to count over before redrawing */
        }
        if (take(&cur) != 0) {
            rc = 1;
            break;
        }
        printf("\033[H\033[2J");
        printf("vnvme top - %s   [b]devs [c]ontrollers [s]ort: %s [q]uit\n\n", socket_path,
               sort_iops ? "IOPS" : "name");
        show_reactors(&prev, &cur);
        printf("\n");
        if (bdev_view)
            show_bdevs(&prev, &cur, sort_iops);
        else
            show_controllers();
        fflush(stdout);
        sample_free(&prev);
        prev = cur;
        memset(&cur, 0, sizeof(cur));
    }
    sample_free(&prev);
    if (tty)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    if (rc)
        fprintf(stderr, "vnvme: lost vnvmed (%s)\n", socket_path);
    return rc;
}
