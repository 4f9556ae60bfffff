/* SPDX-License-Identifier: MIT */
/* `vnvme list`'s table: column layout and how each Identify field is shown. */
#include "list_format.h"

#include <stdbool.h>
#include <string.h>

#include "vnvme/nvme_spec.h"

/* Fixed widths as nvme-cli's `nvme list` uses them, so the table reads the same. */
#define SN_W 20
#define MN_W 40
#define NS_W 9
#define USAGE_W 26
#define FORMAT_W 16
#define NODE_MIN_W 16

void list_id_string(char *buf, const char *field, size_t len)
{
    size_t n = 0;
    while (n < len && field[n] != '\0')
        n++;
    while (n > 0 && field[n - 1] == ' ')
        n--;
    /* The controller chooses these bytes: never pass control characters to a terminal. */
    for (size_t i = 0; i < n; i++)
        buf[i] = field[i] >= 0x20 && field[i] < 0x7f ? field[i] : '?';
    buf[n] = '\0';
}

/* The LBA format in use: FLBAS bits 3:0, and bits 6:5 above them for formats 16-63 (NVMe 2.0). */
static const struct nvme_lbaf *lbaf_in_use(const struct nvme_id_ns *ns)
{
    unsigned idx = (ns->flbas & 0xfu) | (ns->nlbaf >= 16 ? ((ns->flbas >> 5) & 3u) << 4 : 0);
    return &ns->lbaf[idx];
}

void list_usage(char *buf, size_t size, const struct nvme_id_ns *ns)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
    const unsigned last = sizeof(units) / sizeof(units[0]) - 1;
    unsigned lbads = lbaf_in_use(ns)->lbads;
    if (lbads > 63) {
        snprintf(buf, size, "%6s %2s / %6s %2s", "?", "B", "?", "B");
        return;
    }
    /* In floating point: NSZE (64 bits) times the block size does not fit in 64 bits. */
    double block = (double)(UINT64_C(1) << lbads);
    double v[2] = {(double)ns->nuse * block, (double)ns->nsze * block};
    unsigned u[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        while (v[i] >= 1000.0 && u[i] < last) {
            v[i] /= 1000.0;
            u[i]++;
        }
    snprintf(buf, size, "%6.2f %2s / %6.2f %2s", v[0], units[u[0]], v[1], units[u[1]]);
}

void list_lba_format(char *buf, size_t size, const struct nvme_id_ns *ns)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    const struct nvme_lbaf *f = lbaf_in_use(ns);
    if (f->lbads > 63) {
        snprintf(buf, size, "  ?   B + %2u B", f->ms);
        return;
    }
    /* 2^lbads = 2^(lbads % 10) of the unit 1024^(lbads / 10): always a whole number of it. */
    snprintf(buf, size, "%3u %3s + %2u B", 1u << (f->lbads % 10), units[f->lbads / 10], f->ms);
}

static void dashes(FILE *out, int n, const char *after)
{
    for (int i = 0; i < n; i++)
        fputc('-', out);
    fputs(after, out);
}

void list_print(FILE *out, const struct list_row *rows, size_t n)
{
    int node_w = NODE_MIN_W;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(rows[i].node) > node_w)
            node_w = (int)strlen(rows[i].node);

    /* The last column is not padded: no trailing blanks. */
    fprintf(out, "%-*s %-*s %-*s %-*s %-*s %-*s %s\n", node_w, "Node", SN_W, "SN", MN_W, "Model", NS_W, "Namespace",
            USAGE_W, "Usage", FORMAT_W, "Format", "FW Rev");
    dashes(out, node_w, " ");
    dashes(out, SN_W, " ");
    dashes(out, MN_W, " ");
    dashes(out, NS_W, " ");
    dashes(out, USAGE_W, " ");
    dashes(out, FORMAT_W, " ");
    dashes(out, 8, "\n");

    for (size_t i = 0; i < n; i++) {
        const struct list_row *r = &rows[i];
        char sn[sizeof(r->ctrl->sn) + 1], mn[sizeof(r->ctrl->mn) + 1], fr[sizeof(r->ctrl->fr) + 1];
        char usage[64], format[64];
        list_id_string(sn, r->ctrl->sn, sizeof(r->ctrl->sn));
        list_id_string(mn, r->ctrl->mn, sizeof(r->ctrl->mn));
        list_id_string(fr, r->ctrl->fr, sizeof(r->ctrl->fr));
        list_usage(usage, sizeof(usage), r->ns);
        list_lba_format(format, sizeof(format), r->ns);
        fprintf(out, "%-*s %-*s %-*s %-*u %-*s %-*s %s\n", node_w, r->node, SN_W, sn, MN_W, mn, NS_W, r->nsid,
                USAGE_W, usage, FORMAT_W, format, fr);
    }
}
