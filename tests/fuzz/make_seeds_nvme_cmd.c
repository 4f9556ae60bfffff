/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpus of fuzz_nvme_cmd into the directory argv[1]: valid
 * command sequences (admin and I/O) with the data structures they point to,
 * so the fuzzer starts from inputs that reach every handler.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_nvme_cmd.h"
#include "vnvme/nvme_spec.h"

#define EXTRA_OFF 0x1000u /* PRP lists, SGL segments, DSM ranges: at FZ_INPUT_IOVA + EXTRA_OFF */
#define EXTRA_IOVA (FZ_INPUT_IOVA + EXTRA_OFF)
#define SEED_MAX (EXTRA_OFF + 0x1000u)

struct seed {
    uint8_t buf[SEED_MAX];
    struct nvme_sqe admin[FZ_MAX_ADMIN], io[FZ_MAX_IO];
    uint32_t n_admin, n_io;
    size_t extra_len;
    uint16_t next_cid;
};

static const char *out_dir;

static void seed_init(struct seed *s)
{
    memset(s, 0, sizeof(*s));
}

static struct nvme_sqe *admin(struct seed *s, uint8_t opc)
{
    if (s->n_admin == FZ_MAX_ADMIN)
        abort();
    struct nvme_sqe *e = &s->admin[s->n_admin++];
    e->opc = opc;
    e->cid = s->next_cid++;
    return e;
}

static struct nvme_sqe *io(struct seed *s, uint8_t opc, uint32_t nsid)
{
    if (s->n_io == FZ_MAX_IO)
        abort();
    struct nvme_sqe *e = &s->io[s->n_io++];
    e->opc = opc;
    e->nsid = nsid;
    e->cid = s->next_cid++;
    return e;
}

/* Append bytes to the extra area; returns their IOVA once copied into guest memory. */
static uint64_t extra(struct seed *s, const void *p, size_t len)
{
    if (s->extra_len + len > SEED_MAX - EXTRA_OFF)
        abort();
    uint64_t at = EXTRA_IOVA + s->extra_len;
    memcpy(s->buf + EXTRA_OFF + s->extra_len, p, len);
    s->extra_len += len;
    return at;
}

static void rw(struct nvme_sqe *e, uint64_t slba, uint32_t nlb, uint64_t prp1, uint64_t prp2)
{
    e->cdw10 = (uint32_t)slba;
    e->cdw11 = (uint32_t)(slba >> 32);
    e->cdw12 = nlb - 1;
    e->dptr.prp1 = prp1;
    e->dptr.prp2 = prp2;
}

static void emit(struct seed *s, const char *name, const struct fz_header *hdr_in)
{
    struct fz_header h = {0};
    if (hdr_in)
        h = *hdr_in;
    h.n_admin = (uint8_t)s->n_admin;
    h.n_io = (uint8_t)s->n_io;
    size_t off = sizeof(h);
    memcpy(s->buf, &h, sizeof(h));
    memcpy(s->buf + off, s->admin, s->n_admin * sizeof(struct nvme_sqe));
    off += s->n_admin * sizeof(struct nvme_sqe);
    memcpy(s->buf + off, s->io, s->n_io * sizeof(struct nvme_sqe));
    off += s->n_io * sizeof(struct nvme_sqe);
    if (off > EXTRA_OFF)
        abort();
    size_t len = s->extra_len ? EXTRA_OFF + s->extra_len : off;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s->buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    printf("%s\n", path);
}

static void seed_identify(void)
{
    struct seed s;
    seed_init(&s);
    static const uint8_t cns[] = {NVME_ID_CNS_CTRL, NVME_ID_CNS_NS, NVME_ID_CNS_ACTIVE_NS_LIST, 0x03};
    for (unsigned i = 0; i < sizeof(cns); i++) {
        struct nvme_sqe *e = admin(&s, NVME_ADMIN_IDENTIFY);
        e->nsid = cns[i] == NVME_ID_CNS_CTRL ? 0 : 1;
        e->cdw10 = cns[i];
        e->dptr.prp1 = FZ_DATA_IOVA + i * 4096u;
    }
    /* Unaligned PRP1 with PRP2 for the rest of the page. */
    struct nvme_sqe *e = admin(&s, NVME_ADMIN_IDENTIFY);
    e->cdw10 = NVME_ID_CNS_CTRL;
    e->dptr.prp1 = FZ_DATA_IOVA + 0x10000 + 0x800;
    e->dptr.prp2 = FZ_DATA_IOVA + 0x11000;
    emit(&s, "identify", NULL);
}

static void seed_get_log_page(void)
{
    struct seed s;
    seed_init(&s);
    static const uint8_t lids[] = {0x01, 0x02, 0x03, 0x04, 0x05};
    for (unsigned i = 0; i < sizeof(lids); i++) {
        struct nvme_sqe *e = admin(&s, NVME_ADMIN_GET_LOG_PAGE);
        e->nsid = 0xffffffffu;
        uint32_t numd = 1024; /* 4 KiB */
        e->cdw10 = ((numd - 1) << 16) | lids[i];
        e->dptr.prp1 = FZ_DATA_IOVA + i * 4096u;
    }
    /* An offset into the SMART log (LPOL) and a short read. */
    struct nvme_sqe *e = admin(&s, NVME_ADMIN_GET_LOG_PAGE);
    e->nsid = 0xffffffffu;
    e->cdw10 = (15u << 16) | 0x02;
    e->cdw12 = 64;
    e->dptr.prp1 = FZ_DATA_IOVA + 0x8000;
    emit(&s, "get_log_page", NULL);
}

static void seed_features(void)
{
    struct seed s;
    seed_init(&s);
    static const uint8_t fids[] = {0x01, 0x02, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0e, 0x0f};
    for (unsigned i = 0; i < sizeof(fids); i++) {
        struct nvme_sqe *e = admin(&s, NVME_ADMIN_GET_FEATURES);
        e->cdw10 = fids[i];
        e->dptr.prp1 = FZ_DATA_IOVA;
    }
    struct nvme_sqe *e = admin(&s, NVME_ADMIN_SET_FEATURES);
    e->cdw10 = 0x0b; /* async event configuration: namespace attribute notices */
    e->cdw11 = 1u << 8;
    e = admin(&s, NVME_ADMIN_SET_FEATURES);
    e->cdw10 = 0x06; /* volatile write cache */
    e->cdw11 = 1;
    uint64_t ts = 1234567890123ull;
    e = admin(&s, NVME_ADMIN_SET_FEATURES);
    e->cdw10 = 0x0e; /* timestamp: 8 bytes of data */
    e->dptr.prp1 = extra(&s, &ts, sizeof(ts));
    e = admin(&s, NVME_ADMIN_GET_FEATURES);
    e->cdw10 = 0x0e;
    e->dptr.prp1 = FZ_DATA_IOVA + 0x1000;
    emit(&s, "features", NULL);

    seed_init(&s);
    e = admin(&s, NVME_ADMIN_SET_FEATURES);
    e->cdw10 = 0x07; /* number of queues */
    e->cdw11 = (3u << 16) | 3u;
    e = admin(&s, NVME_ADMIN_SET_FEATURES);
    e->cdw10 = 0x01 | (1u << 31); /* arbitration, saved */
    e->cdw11 = 0x03;
    e = admin(&s, NVME_ADMIN_SET_FEATURES);
    e->cdw10 = 0x08; /* interrupt coalescing */
    e->cdw11 = 0x0104;
    e = admin(&s, NVME_ADMIN_GET_FEATURES);
    e->cdw10 = 0x01 | (2u << 8); /* saved value */
    e = admin(&s, NVME_ADMIN_GET_FEATURES);
    e->cdw10 = 0x01 | (3u << 8); /* capabilities */
    e = admin(&s, NVME_ADMIN_ASYNC_EVENT_REQUEST);
    e = admin(&s, NVME_ADMIN_KEEP_ALIVE);
    e = admin(&s, NVME_ADMIN_ABORT);
    e->cdw10 = (uint32_t)(s.next_cid - 3) << 16; /* the AER above, on SQ 0 */
    emit(&s, "features_aer_abort", NULL);
}

static void seed_queues(void)
{
    struct seed s;
    seed_init(&s);
    struct nvme_sqe *e = admin(&s, NVME_ADMIN_CREATE_IO_CQ);
    e->cdw10 = (15u << 16) | 2;
    e->cdw11 = (2u << 16) | 0x3;
    e->dptr.prp1 = FZ_FREE_IOVA;
    e = admin(&s, NVME_ADMIN_CREATE_IO_SQ);
    e->cdw10 = (15u << 16) | 2;
    e->cdw11 = (2u << 16) | 0x1;
    e->dptr.prp1 = FZ_FREE_IOVA + 0x1000;
    e = admin(&s, NVME_ADMIN_DELETE_IO_CQ); /* still has SQ 2: Invalid Queue Deletion */
    e->cdw10 = 2;
    e = admin(&s, NVME_ADMIN_DELETE_IO_SQ);
    e->cdw10 = 2;
    e = admin(&s, NVME_ADMIN_DELETE_IO_CQ);
    e->cdw10 = 2;
    emit(&s, "create_delete_queues", NULL);

    /* A CQ shared by two SQs, left in place (the harness resets afterwards). */
    seed_init(&s);
    e = admin(&s, NVME_ADMIN_CREATE_IO_SQ);
    e->cdw10 = (15u << 16) | 2;
    e->cdw11 = (1u << 16) | 0x1;
    e->dptr.prp1 = FZ_FREE_IOVA + 0x1000;
    emit(&s, "shared_cq", NULL);
}

static void seed_rw(void)
{
    struct seed s;
    seed_init(&s);
    rw(io(&s, NVME_NVM_WRITE, 1), 0, 8, FZ_DATA_IOVA, 0);
    rw(io(&s, NVME_NVM_READ, 1), 0, 8, FZ_DATA_IOVA + 0x1000, 0);
    /* Two pages through PRP1 + PRP2, with an offset into the first page. */
    rw(io(&s, NVME_NVM_WRITE, 1), 16, 8, FZ_DATA_IOVA + 0x2800, FZ_DATA_IOVA + 0x3000);
    rw(io(&s, NVME_NVM_FLUSH, 1), 0, 1, 0, 0);
    emit(&s, "read_write_prp1", NULL);

    seed_init(&s);
    uint64_t list[7];
    for (unsigned i = 0; i < 7; i++)
        list[i] = FZ_DATA_IOVA + 0x10000 + (i + 1) * 0x1000u;
    uint64_t list_iova = extra(&s, list, sizeof(list));
    rw(io(&s, NVME_NVM_WRITE, 1), 64, 64, FZ_DATA_IOVA + 0x10000, list_iova);
    rw(io(&s, NVME_NVM_READ, 1), 64, 64, FZ_DATA_IOVA + 0x10000, list_iova);
    emit(&s, "read_write_prp_list", NULL);

    seed_init(&s);
    struct nvme_sqe *e = io(&s, NVME_NVM_WRITE, 1);
    rw(e, 128, 8, 0, 0);
    e->flags = NVME_PSDT_SGL_MPTR_CONTIG << NVME_SQE_PSDT_SHIFT;
    e->dptr.sgl1 = (struct nvme_sgl_desc){.addr = FZ_DATA_IOVA, .length = 4096, .type = 0};
    struct nvme_sgl_desc seg[3] = {
        {.addr = FZ_DATA_IOVA + 0x4000, .length = 1024, .type = NVME_SGL_TYPE_DATA_BLOCK << 4},
        {.addr = FZ_DATA_IOVA + 0x4c00, .length = 512, .type = NVME_SGL_TYPE_DATA_BLOCK << 4},
        {.addr = FZ_DATA_IOVA + 0x5000, .length = 2560, .type = NVME_SGL_TYPE_DATA_BLOCK << 4},
    };
    uint64_t seg_iova = extra(&s, seg, sizeof(seg));
    e = io(&s, NVME_NVM_READ, 1);
    rw(e, 128, 8, 0, 0);
    e->flags = NVME_PSDT_SGL_MPTR_CONTIG << NVME_SQE_PSDT_SHIFT;
    e->dptr.sgl1 = (struct nvme_sgl_desc){
        .addr = seg_iova, .length = sizeof(seg), .type = NVME_SGL_TYPE_LAST_SEGMENT << 4};
    emit(&s, "read_write_sgl", NULL);
}

static void seed_dsm_zeroes_compare(void)
{
    struct seed s;
    seed_init(&s);
    struct nvme_dsm_range ranges[2] = {{.nlb = 8, .slba = 0}, {.nlb = 16, .slba = 100}};
    struct nvme_sqe *e = io(&s, NVME_NVM_DATASET_MANAGEMENT, 1);
    e->cdw10 = 1;       /* two ranges */
    e->cdw11 = 1u << 2; /* deallocate */
    e->dptr.prp1 = extra(&s, ranges, sizeof(ranges));
    rw(io(&s, NVME_NVM_READ, 1), 0, 8, FZ_DATA_IOVA, 0);
    emit(&s, "dsm_deallocate", NULL);

    seed_init(&s);
    rw(io(&s, NVME_NVM_WRITE_ZEROES, 1), 200, 32, 0, 0);
    e = io(&s, NVME_NVM_WRITE_ZEROES, 1);
    rw(e, 300, 8, 0, 0);
    e->cdw12 |= 1u << 25; /* deallocate */
    emit(&s, "write_zeroes", NULL);

    seed_init(&s);
    rw(io(&s, NVME_NVM_WRITE, 1), 400, 8, FZ_DATA_IOVA, 0);
    rw(io(&s, NVME_NVM_COMPARE, 1), 400, 8, FZ_DATA_IOVA, 0);
    rw(io(&s, NVME_NVM_COMPARE, 1), 400, 8, FZ_DATA_IOVA + 0x1000, 0);
    emit(&s, "compare", NULL);
}

static void seed_doorbells(void)
{
    struct seed s;
    seed_init(&s);
    rw(io(&s, NVME_NVM_READ, 1), 0, 1, FZ_DATA_IOVA, 0);
    struct fz_header h = {.flags = FZ_F_DOORBELL_A | FZ_F_DOORBELL_B, .db_slot_a = 2, .db_value_a = 1000,
                          .db_slot_b = 3, .db_value_b = 5};
    emit(&s, "bad_doorbells", &h);

    /* Memory unmapped under live queues, and a namespace hot-removed with an AER waiting for it. */
    seed_init(&s);
    struct nvme_sqe *e = admin(&s, NVME_ADMIN_SET_FEATURES);
    e->cdw10 = 0x0b;
    e->cdw11 = 1u << 8;
    admin(&s, NVME_ADMIN_ASYNC_EVENT_REQUEST);
    e = admin(&s, NVME_ADMIN_GET_LOG_PAGE);
    e->nsid = 0xffffffffu;
    e->cdw10 = (1023u << 16) | 0x04;
    e->dptr.prp1 = FZ_DATA_IOVA;
    rw(io(&s, NVME_NVM_WRITE, 1), 0, 8, FZ_DATA_IOVA, 0);
    rw(io(&s, NVME_NVM_READ, 1), 0, 8, FZ_DATA_IOVA + 0x1000, 0);
    struct fz_header h2 = {.flags = FZ_F_UNMAP};
    emit(&s, "dma_unmap", &h2);
    h2.flags = FZ_F_NS_REMOVE;
    emit(&s, "ns_remove", &h2);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    seed_identify();
    seed_get_log_page();
    seed_features();
    seed_queues();
    seed_rw();
    seed_dsm_zeroes_compare();
    seed_doorbells();
    return 0;
}
