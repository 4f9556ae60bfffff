/* SPDX-License-Identifier: MIT */
/* NVM command set through the fake transport: Read/Write/Compare/Flush/Write Zeroes/DSM and namespaces. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "common/ticks.h"

#include "fake_transport.h"

#define BS 512u
#define NBLOCKS 4096u
#define ST(sct, sc) NVME_STATUS(sct, sc)

struct env {
    struct ft *ft;
    struct ft_bdev *b1; /* nsid 1: 512-byte blocks */
    struct ft_bdev *b2; /* nsid 2: 4 KiB blocks */
    uint64_t buf;       /* 1 MiB + 4 KiB of guest memory, page aligned */
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->ft = ft_create();
    assert_non_null(e->ft);
    assert_int_equal(ft_add_ns(e->ft, 1, NBLOCKS, BS, &e->b1), 1);
    assert_int_equal(ft_add_ns(e->ft, 2, 512, 4096, &e->b2), 2);
    assert_true(ft_enable(e->ft, 32) & NVME_CSTS_RDY);
    assert_int_equal(ft_create_io_queues(e->ft, 1, 64, true, 1), 0);
    e->buf = ft_alloc(e->ft, NVMET_MAX_DATA_LEN + 4096, 4096);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    ft_destroy(e->ft);
    free(e);
    return 0;
}

static int io(struct env *e, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, uint64_t prp1, uint64_t prp2)
{
    struct nvme_sqe sqe;
    ft_sqe_rw(&sqe, opc, nsid, slba, nlb, prp1, prp2);
    return ft_cmd(e->ft, 1, &sqe, NULL);
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

static void write_then_read(void **state)
{
    struct env *e = *state;
    uint8_t *host = ft_ptr(e->ft, e->buf);
    fill(host, 4096, 3);
    assert_int_equal(io(e, NVME_NVM_WRITE, 1, 10, 8, e->buf, 0), 0);
    assert_memory_equal(e->b1->data + 10 * BS, host, 4096);
    assert_false(e->b1->last_fua);
    memset(host, 0, 4096);
    assert_int_equal(io(e, NVME_NVM_READ, 1, 10, 8, e->buf, 0), 0);
    assert_memory_equal(e->b1->data + 10 * BS, host, 4096);
    assert_int_equal(e->ft->c->read_cmds, 1);
    assert_int_equal(e->ft->c->write_cmds, 1);
    assert_int_equal(e->ft->c->units_read, 1); /* 8 sectors, rounded up to one thousand */
}

static void fua_is_passed_to_bdev(void **state)
{
    struct env *e = *state;
    struct nvme_sqe sqe;
    ft_sqe_rw(&sqe, NVME_NVM_WRITE, 1, 0, 1, e->buf, 0);
    sqe.cdw12 |= NVME_RW_FUA;
    assert_int_equal(ft_cmd(e->ft, 1, &sqe, NULL), 0);
    assert_true(e->b1->last_fua);
}

static void lba_out_of_range(void **state)
{
    struct env *e = *state;
    uint32_t before = e->b1->nr_submitted;
    assert_int_equal(ft_sct_sc(io(e, NVME_NVM_READ, 1, NBLOCKS - 1, 2, e->buf, 0)),
                     ST(NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE));
    assert_int_equal(ft_sct_sc(io(e, NVME_NVM_WRITE, 1, UINT64_MAX, 2, e->buf, 0)),
                     ST(NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE));
    assert_int_equal(ft_sct_sc(io(e, NVME_NVM_WRITE_ZEROES, 1, NBLOCKS, 1, 0, 0)),
                     ST(NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE));
    /* The last block is fine. */
    assert_int_equal(io(e, NVME_NVM_READ, 1, NBLOCKS - 1, 1, e->buf, 0), 0);
    assert_int_equal(e->b1->nr_submitted, before + 1);
}

static void invalid_nsid(void **state)
{
    struct env *e = *state;
    uint16_t inv = ST(NVME_SCT_GENERIC, NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
    assert_int_equal(ft_sct_sc(io(e, NVME_NVM_READ, 0, 0, 1, e->buf, 0)), inv);
    assert_int_equal(ft_sct_sc(io(e, NVME_NVM_READ, 7, 0, 1, e->buf, 0)), inv);
    assert_int_equal(ft_sct_sc(io(e, NVME_NVM_READ, 0xfffffffe, 0, 1, e->buf, 0)), inv);
    assert_int_equal(ft_sct_sc(io(e, NVME_NVM_WRITE, 0xffffffff, 0, 1, e->buf, 0)), inv);
}

static void mdts_exceeded(void **state)
{
    struct env *e = *state;
    /* 257 blocks of 4 KiB is one page more than MDTS allows. */
    uint64_t list = ft_alloc(e->ft, 4096, 4096);
    uint64_t *l = ft_ptr(e->ft, list);
    for (int i = 0; i < 256; i++)
        l[i] = e->buf + 4096ull * (uint64_t)(i + 1);
    uint32_t before = e->b2->nr_submitted;
    int st = io(e, NVME_NVM_READ, 2, 0, 257, e->buf, list);
    assert_int_equal(ft_sct_sc(st), ST(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD));
    assert_true(st & NVME_STATUS_DNR);
    assert_int_equal(e->b2->nr_submitted, before);
    /* Exactly MDTS works. */
    assert_int_equal(io(e, NVME_NVM_READ, 2, 0, 256, e->buf, list), 0);
}

static void write_zeroes(void **state)
{
    struct env *e = *state;
    memset(e->b1->data, 0xaa, 64 * BS);
    assert_int_equal(io(e, NVME_NVM_WRITE_ZEROES, 1, 4, 8, 0, 0), 0);
    assert_int_equal(e->b1->last_op, VNVME_BDEV_WRITE_ZEROES);
    for (uint32_t i = 0; i < 64 * BS; i++)
        assert_int_equal(e->b1->data[i], (i >= 4 * BS && i < 12 * BS) ? 0 : 0xaa);

    struct nvme_sqe sqe;
    ft_sqe_rw(&sqe, NVME_NVM_WRITE_ZEROES, 1, 20, 4, 0, 0);
    sqe.cdw12 |= NVME_WZ_DEAC;
    assert_int_equal(ft_cmd(e->ft, 1, &sqe, NULL), 0);
    assert_int_equal(e->b1->last_op, VNVME_BDEV_UNMAP);
    assert_int_equal(e->b1->data[20 * BS], 0);
    assert_int_equal(e->b1->data[24 * BS], 0xaa);
    /* NLB 0's based: 65536 blocks without any data pointer. */
    struct ft_bdev *big;
    assert_int_equal(ft_add_ns(e->ft, 3, 70000, 512, &big), 3);
    assert_int_equal(io(e, NVME_NVM_WRITE_ZEROES, 3, 0, 65536, 0, 0), 0);
}

static int dsm(struct env *e, uint32_t nsid, const struct nvme_dsm_range *r, uint32_t nr, uint32_t attrs)
{
    uint64_t rl = ft_alloc(e->ft, 4096, 4096);
    memcpy(ft_ptr(e->ft, rl), r, nr * sizeof(*r));
    struct nvme_sqe sqe;
    memset(&sqe, 0, sizeof(sqe));
    sqe.opc = NVME_NVM_DATASET_MANAGEMENT;
    sqe.nsid = nsid;
    sqe.dptr.prp1 = rl;
    sqe.cdw10 = nr - 1;
    sqe.cdw11 = attrs;
    return ft_cmd(e->ft, 1, &sqe, NULL);
}

static void dsm_deallocate_reads_zeroes(void **state)
{
    struct env *e = *state;
    memset(e->b1->data, 0x5a, 128 * BS);
    struct nvme_dsm_range r[3] = {
        {.nlb = 4, .slba = 8},
        {.nlb = 0, .slba = 100}, /* empty range: nothing */
        {.nlb = 2, .slba = 60},
    };
    /* Hints alone deallocate nothing. */
    assert_int_equal(dsm(e, 1, r, 3, NVME_DSM_IDR | NVME_DSM_IDW), 0);
    assert_int_equal(e->b1->nr_unmap, 0);
    assert_int_equal(dsm(e, 1, r, 3, NVME_DSM_AD), 0);
    assert_int_equal(e->b1->nr_unmap, 2);
    uint8_t *host = ft_ptr(e->ft, e->buf);
    memset(host, 0xff, 8 * BS);
    assert_int_equal(io(e, NVME_NVM_READ, 1, 6, 8, e->buf, 0), 0);
    for (uint32_t i = 0; i < 8 * BS; i++)
        assert_int_equal(host[i], (i >= 2 * BS && i < 6 * BS) ? 0 : 0x5a);
    assert_int_equal(e->b1->data[60 * BS], 0);
    assert_int_equal(e->b1->data[62 * BS], 0x5a);

    /* One bad range: nothing is deallocated at all. */
    struct nvme_dsm_range bad[2] = {{.nlb = 1, .slba = 0}, {.nlb = 2, .slba = NBLOCKS - 1}};
    e->b1->data[0] = 1;
    assert_int_equal(ft_sct_sc(dsm(e, 1, bad, 2, NVME_DSM_AD)), ST(NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE));
    assert_int_equal(e->b1->nr_unmap, 2);
    assert_int_equal(e->b1->data[0], 1);
}

static void dsm_256_ranges(void **state)
{
    struct env *e = *state;
    struct nvme_dsm_range r[256];
    memset(e->b1->data, 0x11, (size_t)NBLOCKS * BS);
    for (uint32_t i = 0; i < 256; i++)
        r[i] = (struct nvme_dsm_range){.nlb = 1, .slba = i * 2};
    assert_int_equal(dsm(e, 1, r, 256, NVME_DSM_AD), 0);
    assert_int_equal(e->b1->nr_unmap, 256);
    assert_int_equal(e->b1->data[510 * BS], 0);
    assert_int_equal(e->b1->data[511 * BS], 0x11);
}

static void compare_match_and_mismatch(void **state)
{
    struct env *e = *state;
    uint8_t *host = ft_ptr(e->ft, e->buf);
    fill(e->b1->data + 30 * BS, 2 * BS, 9);
    memcpy(host, e->b1->data + 30 * BS, 2 * BS);
    assert_int_equal(io(e, NVME_NVM_COMPARE, 1, 30, 2, e->buf, 0), 0);
    host[BS + 5] ^= 1;
    int st = io(e, NVME_NVM_COMPARE, 1, 30, 2, e->buf, 0);
    assert_int_equal(ft_sct_sc(st), ST(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILURE));
}

static void flush_one_and_all(void **state)
{
    struct env *e = *state;
    assert_int_equal(io(e, NVME_NVM_FLUSH, 1, 0, 0, 0, 0), 0);
    assert_int_equal(e->b1->nr_flush, 1);
    assert_int_equal(e->b2->nr_flush, 0);
    assert_int_equal(io(e, NVME_NVM_FLUSH, 0xffffffff, 0, 0, 0, 0), 0);
    assert_int_equal(e->b1->nr_flush, 2);
    assert_int_equal(e->b2->nr_flush, 1);
    /* An error from any namespace fails the whole flush. */
    e->b2->inject_status = -EIO;
    assert_int_equal(ft_sct_sc(io(e, NVME_NVM_FLUSH, 0xffffffff, 0, 0, 0, 0)),
                     ST(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT));
}

static void fused_and_unknown_opcodes(void **state)
{
    struct env *e = *state;
    struct nvme_sqe sqe;
    ft_sqe_rw(&sqe, NVME_NVM_COMPARE, 1, 0, 1, e->buf, 0);
    sqe.flags |= 1; /* first command of a fused pair */
    assert_int_equal(ft_sct_sc(ft_cmd(e->ft, 1, &sqe, NULL)), ST(NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD));
    ft_sqe_rw(&sqe, 0x7f, 1, 0, 1, e->buf, 0);
    assert_int_equal(ft_sct_sc(ft_cmd(e->ft, 1, &sqe, NULL)), ST(NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE));
    ft_sqe_rw(&sqe, NVME_NVM_WRITE_UNCORRECTABLE, 1, 0, 1, 0, 0);
    assert_int_equal(ft_sct_sc(ft_cmd(e->ft, 1, &sqe, NULL)), ST(NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE));
}

static void bdev_errors_map_to_nvme_status(void **state)
{
    struct env *e = *state;
    e->b1->inject_status = -EIO;
    assert_int_equal(ft_sct_sc(io(e, NVME_NVM_READ, 1, 0, 1, e->buf, 0)),
                     ST(NVME_SCT_MEDIA, NVME_SC_UNRECOVERED_READ_ERROR));
    assert_int_equal(ft_sct_sc(io(e, NVME_NVM_WRITE, 1, 0, 1, e->buf, 0)), ST(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT));
    e->b1->inject_status = -ENXIO;
    assert_int_equal(ft_sct_sc(io(e, NVME_NVM_READ, 1, 0, 1, e->buf, 0)),
                     ST(NVME_SCT_GENERIC, NVME_SC_NAMESPACE_NOT_READY));
    /* A backend that timed out: Namespace Not Ready and no DNR (the whole status, so DNR is checked too). */
    e->b1->inject_status = -ETIMEDOUT;
    assert_int_equal(io(e, NVME_NVM_READ, 1, 0, 1, e->buf, 0), ST(NVME_SCT_GENERIC, NVME_SC_NAMESPACE_NOT_READY));
    assert_int_equal(io(e, NVME_NVM_FLUSH, 1, 0, 0, 0, 0), ST(NVME_SCT_GENERIC, NVME_SC_NAMESPACE_NOT_READY));
    e->b1->inject_status = 0;
    e->b1->inject_submit = -ENOMEM;
    assert_int_equal(ft_sct_sc(io(e, NVME_NVM_WRITE, 1, 0, 1, e->buf, 0)), ST(NVME_SCT_GENERIC, NVME_SC_INTERNAL));
    e->b1->inject_submit = 0;
    assert_int_equal(io(e, NVME_NVM_WRITE, 1, 0, 1, e->buf, 0), 0);
    assert_int_equal(e->ft->c->sqs[1].in_flight, 0);
}

static void deferred_completion(void **state)
{
    struct env *e = *state;
    struct ft *ft = e->ft;
    e->b1->deferred = true;
    struct nvme_sqe sqe;
    ft_sqe_rw(&sqe, NVME_NVM_WRITE, 1, 0, 1, e->buf, 0);
    ft_submit(ft, 1, &sqe);
    /* First poll: fetched and submitted, then the channel poll completes it in the same round. */
    assert_true(ft_poll(ft) >= 2);
    struct nvme_cqe cqe;
    assert_true(ft_get_cqe(ft, 1, &cqe));
    assert_int_equal(ft_status(&cqe), 0);
    assert_int_equal(cqe.cid, sqe.cid);
    assert_int_equal(ft->c->sqs[1].in_flight, 0);
}

/*
 * SMART's Controller Busy Time: the time with I/O outstanding, counted while a
 * held command waits, stopped once it completes, in whole minutes in the log.
 */
static void controller_busy_time(void **state)
{
    struct env *e = *state;
    struct ft *ft = e->ft;
    e->b1->deferred = e->b1->hold = true;
    struct nvme_sqe sqe;
    ft_sqe_rw(&sqe, NVME_NVM_READ, 1, 0, 1, e->buf, 0);
    ft_submit(ft, 1, &sqe);
    ft_poll(ft);
    assert_int_equal(ft->c->in_bdev, 1);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_int_equal(ft->c->busy_ticks, 0); /* still busy: added when the last command leaves */
    e->b1->hold = false;
    ft_poll(ft);
    struct nvme_cqe cqe;
    assert_true(ft_get_cqe(ft, 1, &cqe));
    assert_int_equal(ft->c->in_bdev, 0);
    assert_true(vnvme_ticks_to_ns(ft->c->busy_ticks) >= 20u * 1000 * 1000);
    uint64_t after = ft->c->busy_ticks;
    nanosleep(&ts, NULL);
    assert_int_equal(ft->c->busy_ticks, after); /* idle time is not busy time */

    /* The log reports whole minutes: 3 min 59 s reads as 3. */
    ft->c->busy_ticks = (3 * 60 + 59) * vnvme_ticks_hz();
    struct nvme_sqe gl;
    uint64_t buf = ft_alloc(ft, 512, 4096);
    memset(&gl, 0, sizeof(gl));
    gl.opc = NVME_ADMIN_GET_LOG_PAGE;
    gl.nsid = 0xffffffffu;
    gl.cdw10 = NVME_LOG_SMART | (512u / 4 - 1) << 16;
    gl.dptr.prp1 = buf;
    ft_submit(ft, 0, &gl);
    ft_poll(ft);
    assert_true(ft_get_cqe(ft, 0, &cqe));
    assert_int_equal(ft_status(&cqe), 0);
    struct nvme_smart_log smart;
    memcpy(&smart, ft_ptr(ft, buf), sizeof(smart));
    assert_int_equal(smart.controller_busy_time[0], 3);
    assert_int_equal(smart.controller_busy_time[1], 0);
}

/*
 * Client memory going away recalls the commands whose data is in it, at once;
 * the others carry on and complete normally.
 */
static void unmap_recalls_only_commands_in_the_window(void **state)
{
    struct env *e = *state;
    struct ft *ft = e->ft;
    e->b1->deferred = e->b1->hold = e->b1->recallable = true;
    uint64_t other = ft_alloc(ft, 4096, 4096);
    struct nvme_sqe in_window, elsewhere;
    ft_sqe_rw(&in_window, NVME_NVM_READ, 1, 0, 8, e->buf, 0);
    ft_sqe_rw(&elsewhere, NVME_NVM_READ, 1, 8, 8, other, 0);
    elsewhere.cid = (uint16_t)(in_window.cid + 1);
    ft_submit(ft, 1, &in_window);
    ft_submit(ft, 1, &elsewhere);
    ft_poll(ft);
    assert_int_equal(ft->c->in_bdev, 2);

    assert_false(nvmet_ctrlr_memory_removed(ft->c, e->buf, 4096, ft_local(ft, e->buf), NULL));
    assert_int_equal(ft->c->in_bdev, 1);
    struct nvme_cqe cqe;
    assert_true(ft_get_cqe(ft, 1, &cqe));
    assert_int_equal(cqe.cid, in_window.cid);
    assert_int_equal(ft_sct_sc(ft_status(&cqe)), ST(NVME_SCT_GENERIC, NVME_SC_ABORTED_BY_REQUEST));
    assert_false(ft_get_cqe(ft, 1, &cqe));

    e->b1->hold = false;
    ft_poll(ft);
    assert_true(ft_get_cqe(ft, 1, &cqe));
    assert_int_equal(cqe.cid, elsewhere.cid);
    assert_int_equal(ft_status(&cqe), 0);
    assert_int_equal(ft->c->in_bdev, 0);
}

static void namespaces_add_remove(void **state)
{
    struct env *e = *state;
    struct nvmet_subsys *ss = e->ft->ss;
    struct ft_bdev *fb = ft_bdev_create("extra", 64, 512);
    assert_int_equal(nvmet_subsys_add_ns(ss, &fb->bdev, 1, NULL, NULL, NULL), -EEXIST);
    assert_int_equal(nvmet_subsys_add_ns(ss, &fb->bdev, NVMET_MAX_NSID + 1, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(nvmet_subsys_add_ns(ss, &e->b1->bdev, 9, NULL, NULL, NULL), -EEXIST); /* bdev in use */
    assert_int_equal(fb->bdev.claims, 0);
    e->ft->c->nr_changed_ns = 0;
    int nsid = nvmet_subsys_add_ns(ss, &fb->bdev, 0, NULL, NULL, NULL);
    assert_int_equal(nsid, 3); /* lowest free */
    assert_int_equal(fb->bdev.claims, 1);
    assert_memory_equal(ss->ns[3]->nguid, fb->bdev.uuid, 16);
    assert_int_equal(e->ft->c->nr_changed_ns, 1);
    assert_int_equal(e->ft->c->changed_ns[0], 3);
    assert_int_equal(io(e, NVME_NVM_WRITE, 3, 0, 1, e->buf, 0), 0);
    assert_non_null(e->ft->c->channels[3]);

    assert_int_equal(nvmet_subsys_remove_ns(ss, 3), 0);
    assert_int_equal(fb->bdev.claims, 0);
    assert_null(e->ft->c->channels[3]);
    assert_int_equal(e->ft->c->nr_changed_ns, 1); /* same NSID is listed once */
    assert_int_equal(nvmet_subsys_remove_ns(ss, 3), -ENOENT);
    assert_int_equal(ft_sct_sc(io(e, NVME_NVM_READ, 3, 0, 1, e->buf, 0)),
                     ST(NVME_SCT_GENERIC, NVME_SC_INVALID_NAMESPACE_OR_FORMAT));
    ft_bdev_free(fb);
}

static void *never_fence(const struct vnvme_bdev_mem *mem, const struct iovec *iov, int iovcnt)
{
    (void)mem;
    (void)iov;
    (void)iovcnt;
    return NULL;
}

static void never_lift(void *f)
{
    (void)f;
}

/*
 * A bdev that reads straight into fenceable memory gets a READ's data through
 * the windows' I/O mappings, whole pages only; everything else is mapped the
 * ordinary way, as is any READ while its window has a fence.
 */
static void fenced_reads_get_the_io_mapping(void **state)
{
    struct env *e = *state;
    struct ft *ft = e->ft;
    static const struct vnvme_bdev_mem_ops ops = {.fence = never_fence, .lift = never_lift, .drop = never_lift};
    const struct vnvme_bdev_mem mem = {.ops = &ops};
    ft->c->bdev_mem = &mem;
    e->b2->bdev.fenced_reads = true;
    e->b2->deferred = e->b2->hold = e->b2->recallable = true;
    const struct vfio_user_dma_region *r = vfio_user_dma_table_find(ft->dma, e->buf);
    assert_non_null(r->io_vaddr);
    uint8_t *io_at_buf = (uint8_t *)r->io_vaddr + (e->buf - r->iova);

    struct nvme_sqe sqe;
    ft_sqe_rw(&sqe, NVME_NVM_READ, 2, 0, 2, e->buf, e->buf + 4096);
    ft_submit(ft, 1, &sqe);
    ft_sqe_rw(&sqe, NVME_NVM_READ, 2, 0, 1, e->buf + 3 * 4096 + 512, e->buf + 4 * 4096); /* not whole pages */
    sqe.cid++;
    ft_submit(ft, 1, &sqe);
    ft_sqe_rw(&sqe, NVME_NVM_WRITE, 2, 8, 1, e->buf + 6 * 4096, 0);
    sqe.cid++;
    ft_submit(ft, 1, &sqe);
    ft_poll(ft);
    struct vnvme_bdev_io *wr = e->b2->pending, *part = wr->next, *whole = part->next;
    assert_int_equal(whole->op, VNVME_BDEV_READ);
    assert_ptr_equal(whole->mem, &mem);
    assert_int_equal(whole->iovcnt, 1);
    assert_ptr_equal(whole->iov[0].iov_base, io_at_buf);
    assert_int_equal(whole->iov[0].iov_len, 8192);
    assert_null(part->mem);
    assert_ptr_equal(part->iov[0].iov_base, ft_local(ft, e->buf + 3 * 4096 + 512));
    assert_int_equal(wr->op, VNVME_BDEV_WRITE);
    assert_null(wr->mem);
    assert_ptr_equal(wr->iov[0].iov_base, ft_local(ft, e->buf + 6 * 4096));

    /* While the window has a fence, READs are mapped the ordinary way. */
    struct iovec page = {.iov_base = io_at_buf, .iov_len = 4096};
    struct vfio_user_dma_fence *f = vfio_user_dma_fence(ft->dma, &page, 1);
    assert_non_null(f);
    ft_sqe_rw(&sqe, NVME_NVM_READ, 2, 0, 1, e->buf + 8 * 4096, 0);
    sqe.cid++;
    ft_submit(ft, 1, &sqe);
    ft_poll(ft);
    assert_null(e->b2->pending->mem);
    assert_ptr_equal(e->b2->pending->iov[0].iov_base, ft_local(ft, e->buf + 8 * 4096));

    /* Memory going away recalls the READ whose data is only in the I/O mapping, too. */
    assert_int_equal(ft->c->in_bdev, 4);
    assert_false(nvmet_ctrlr_memory_removed(ft->c, e->buf, 8192, ft_local(ft, e->buf), io_at_buf));
    assert_int_equal(ft->c->in_bdev, 3);
    vfio_user_dma_fence_lift(f);
    e->b2->hold = false;
    ft_poll(ft);
    assert_int_equal(ft->c->in_bdev, 0);
    ft->c->bdev_mem = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(write_then_read, setup, teardown),
        cmocka_unit_test_setup_teardown(fua_is_passed_to_bdev, setup, teardown),
        cmocka_unit_test_setup_teardown(lba_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_nsid, setup, teardown),
        cmocka_unit_test_setup_teardown(mdts_exceeded, setup, teardown),
        cmocka_unit_test_setup_teardown(write_zeroes, setup, teardown),
        cmocka_unit_test_setup_teardown(dsm_deallocate_reads_zeroes, setup, teardown),
        cmocka_unit_test_setup_teardown(dsm_256_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(compare_match_and_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(flush_one_and_all, setup, teardown),
        cmocka_unit_test_setup_teardown(fused_and_unknown_opcodes, setup, teardown),
        cmocka_unit_test_setup_teardown(bdev_errors_map_to_nvme_status, setup, teardown),
        cmocka_unit_test_setup_teardown(deferred_completion, setup, teardown),
        cmocka_unit_test_setup_teardown(controller_busy_time, setup, teardown),
        cmocka_unit_test_setup_teardown(unmap_recalls_only_commands_in_the_window, setup, teardown),
        cmocka_unit_test_setup_teardown(fenced_reads_get_the_io_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(namespaces_add_remove, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
