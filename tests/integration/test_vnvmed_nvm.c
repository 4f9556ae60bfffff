/* SPDX-License-Identifier: MIT */
/*
 * vnvmed end to end, the NVM command set and queues, through a guest NVMe
 * driver over the vfio-user client (daemon: tests/support/vnvmed_fixture.h):
 * two SQs on one CQ, Dataset Management / Write Zeroes / Compare, namespace
 * hot add and remove with their AEN, queue deletion with commands in flight,
 * DMA unmap under live queues, SGLs and bad PRPs.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "nvme_guest.h"
#include "test_pattern.h"
#include "vnvmed_fixture.h"

/* One JSON-RPC call to vnvmed; params as JSON text (or NULL). 0, the error code or -errno. */
static int rpc(const char *method, const char *params_json, struct json_object **result)
{
    return vnvmed_harness_rpc(&vnvmed, method, params_json, result);
}

static int get_log_page(struct nvme_guest *g, uint8_t lid, uint64_t buf, uint32_t len)
{
    struct nvme_sqe sqe = {.opc = NVME_ADMIN_GET_LOG_PAGE, .nsid = 0xffffffffu,
                           .cdw10 = ((len / 4 - 1) << 16) | lid};
    sqe.dptr.prp1 = buf;
    return ng_cmd(g, 0, &sqe, NULL);
}

static int set_feature(struct nvme_guest *g, uint8_t fid, uint32_t cdw11)
{
    struct nvme_sqe sqe = {.opc = NVME_ADMIN_SET_FEATURES, .cdw10 = fid, .cdw11 = cdw11};
    return ng_cmd(g, 0, &sqe, NULL);
}

/* Two I/O SQs completing into one CQ: every CQE names the SQ and command it belongs to. */
static void test_shared_cq(void **state)
{
    (void)state;
    struct nvme_guest *gp = &slots[0];
    open_enabled(gp);
    assert_int_equal(ng_set_num_queues(gp, 2, 2, NULL), 0);
    assert_int_equal(ng_create_io_cq(gp, 1, 64, 1), 0);
    assert_int_equal(ng_create_io_sq(gp, 1, 32, 1), 0);
    assert_int_equal(ng_create_io_sq(gp, 2, 32, 1), 0);

    enum { PER_SQ = 12, LEN = 4096 };
    uint64_t buf[2][PER_SQ];
    uint16_t cids[2][PER_SQ];
    bool seen[2][PER_SQ] = {{false}};
    for (unsigned i = 0; i < PER_SQ; i++) {
        for (unsigned s = 0; s < 2; s++) {
            buf[s][i] = ng_alloc(gp, LEN, NG_PAGE);
            fill_pattern(ng_ptr(gp, buf[s][i]), LEN, 1000 + s * 100 + i);
            uint64_t slba = 30000 + (s * PER_SQ + i) * (LEN / BLOCK_SIZE);
            struct nvme_sqe sqe = {.opc = NVME_NVM_WRITE, .nsid = 1, .cdw10 = (uint32_t)slba,
                                   .cdw12 = LEN / BLOCK_SIZE - 1};
            ng_set_prps(gp, &sqe, buf[s][i], LEN);
            cids[s][i] = ng_submit(gp, (uint16_t)(s + 1), &sqe);
        }
    }
    for (unsigned n = 0; n < 2 * PER_SQ; n++) {
        struct nvme_cqe cqe;
        assert_int_equal(ng_wait_cqe(gp, 1, &cqe, 5000), 0);
        assert_int_equal(cqe.status >> 1, 0);
        assert_true(cqe.sqid == 1 || cqe.sqid == 2);
        unsigned s = cqe.sqid - 1u, found = PER_SQ;
        for (unsigned i = 0; i < PER_SQ; i++)
            if (cids[s][i] == cqe.cid)
                found = i;
        assert_true(found < PER_SQ);
        assert_false(seen[s][found]);
        seen[s][found] = true;
        assert_true(cqe.sqhd < 32);
    }
    /* Each write landed where its own SQ's command said: read back through the other SQ. */
    for (unsigned s = 0; s < 2; s++)
        for (unsigned i = 0; i < PER_SQ; i++) {
            uint64_t slba = 30000 + (s * PER_SQ + i) * (LEN / BLOCK_SIZE);
            uint64_t rbuf = ng_alloc(gp, LEN, NG_PAGE);
            assert_int_equal(ng_rw(gp, (uint16_t)(2 - s), NVME_NVM_READ, 1, slba, LEN / BLOCK_SIZE, rbuf, LEN), 0);
            assert_memory_equal(ng_ptr(gp, rbuf), ng_ptr(gp, buf[s][i]), LEN);
        }
    ng_close(gp);
}

static void test_dsm_write_zeroes_compare(void **state)
{
    (void)state;
    struct nvme_guest *gp = &slots[0];
    open_enabled(gp);
    assert_int_equal(ng_create_io_queues(gp, 1, 64, 1), 0);

    /* Deallocate, then read: zeroes. */
    wrv_ns(gp, 1, 1, 512, 20000, 4096, 31);
    uint64_t rng = ng_alloc(gp, NG_PAGE, NG_PAGE);
    struct nvme_dsm_range *r = ng_ptr(gp, rng);
    r->slba = 20000;
    r->nlb = 8;
    struct nvme_sqe dsm = {.opc = NVME_NVM_DATASET_MANAGEMENT, .nsid = 1, .cdw10 = 0, .cdw11 = 1u << 2};
    dsm.dptr.prp1 = rng;
    assert_int_equal(ng_cmd(gp, 1, &dsm, NULL), 0);
    read_expect_zeroes(gp, 1, 1, 512, 20000, 4096);

    /* Write Zeroes the middle 16 of 32 written blocks: the rest keeps its data. */
    uint64_t wbuf = ng_alloc(gp, 16384, NG_PAGE);
    fill_pattern(ng_ptr(gp, wbuf), 16384, 32);
    assert_int_equal(ng_rw(gp, 1, NVME_NVM_WRITE, 1, 21000, 32, wbuf, 16384), 0);
    struct nvme_sqe wz = {.opc = NVME_NVM_WRITE_ZEROES, .nsid = 1, .cdw10 = 21008, .cdw12 = 15};
    assert_int_equal(ng_cmd(gp, 1, &wz, NULL), 0);
    uint64_t rbuf = ng_alloc(gp, 16384, NG_PAGE);
    assert_int_equal(ng_rw(gp, 1, NVME_NVM_READ, 1, 21000, 32, rbuf, 16384), 0);
    const uint8_t *rd = ng_ptr(gp, rbuf), *wr = ng_ptr(gp, wbuf);
    assert_memory_equal(rd, wr, 4096);
    assert_true(all_bytes(rd + 4096, 8192, 0));
    assert_memory_equal(rd + 12288, wr + 12288, 4096);

    /* Compare: match, then one byte off -> Compare Failure (media errors). */
    uint64_t cbuf = ng_alloc(gp, 4096, NG_PAGE);
    fill_pattern(ng_ptr(gp, cbuf), 4096, 33);
    assert_int_equal(ng_rw(gp, 1, NVME_NVM_WRITE, 1, 22000, 8, cbuf, 4096), 0);
    assert_int_equal(ng_rw(gp, 1, NVME_NVM_COMPARE, 1, 22000, 8, cbuf, 4096), 0);
    ((uint8_t *)ng_ptr(gp, cbuf))[4000] ^= 0x40;
    assert_int_equal(sc_of(ng_rw(gp, 1, NVME_NVM_COMPARE, 1, 22000, 8, cbuf, 4096)),
                     NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_COMPARE_FAILURE));
    ng_close(gp);
}

/* The AER for a namespace change: notice / namespace attribute changed / log page 04h. */
static void expect_ns_notice(struct nvme_guest *g, uint16_t aer_cid)
{
    struct nvme_cqe cqe;
    assert_int_equal(ng_wait_cqe(g, 0, &cqe, 5000), 0);
    assert_int_equal(cqe.cid, aer_cid);
    assert_int_equal(cqe.status >> 1, 0);
    assert_int_equal(cqe.cdw0 & 0x7, NVME_AER_TYPE_NOTICE);
    assert_int_equal((cqe.cdw0 >> 8) & 0xff, 0);
    assert_int_equal((cqe.cdw0 >> 16) & 0xff, NVME_LOG_CHANGED_NS_LIST);
}

static void expect_changed_ns(struct nvme_guest *g, uint32_t nsid)
{
    uint64_t buf = ng_alloc(g, NG_PAGE, NG_PAGE);
    assert_int_equal(get_log_page(g, NVME_LOG_CHANGED_NS_LIST, buf, NG_PAGE), 0);
    const uint32_t *list = ng_ptr(g, buf);
    assert_int_equal(list[0], nsid);
    assert_int_equal(list[1], 0);
    /* Reading it (RAE clear) empties the list. */
    assert_int_equal(get_log_page(g, NVME_LOG_CHANGED_NS_LIST, buf, NG_PAGE), 0);
    assert_int_equal(list[0], 0);
}

static void expect_active_ns(struct nvme_guest *g, const uint32_t *expect, unsigned n)
{
    uint64_t buf = ng_alloc(g, NG_PAGE, NG_PAGE);
    assert_int_equal(ng_identify(g, NVME_ID_CNS_ACTIVE_NS_LIST, 0, buf), 0);
    const uint32_t *list = ng_ptr(g, buf);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(list[i], expect[i]);
    assert_int_equal(list[n], 0);
}

static void test_ns_hot_add_remove(void **state)
{
    (void)state;
    struct nvme_guest *gp = &slots[0];
    open_enabled(gp);
    assert_int_equal(ng_create_io_queues(gp, 1, 64, 1), 0);
    assert_int_equal(rpc("bdev_malloc_create", "{\"name\": \"Hot0\", \"num_blocks\": 2048, \"block_size\": 512}",
                         NULL),
                     0);
    assert_int_equal(set_feature(gp, NVME_FEAT_ASYNC_EVENT_CONFIGURATION, 1u << 8), 0);

    struct nvme_sqe aer = {.opc = NVME_ADMIN_ASYNC_EVENT_REQUEST};
    uint16_t aer_cid = ng_submit(gp, 0, &aer);
    char params[256];
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Hot0\", \"nsid\": %u}}", NQN,
             NSID_HOT);
    assert_int_equal(rpc("nvmf_subsystem_add_ns", params, NULL), 0);
    expect_ns_notice(gp, aer_cid);
    expect_changed_ns(gp, NSID_HOT);
    const uint32_t with_hot[] = {1, 2, 3, 4, NSID_HOT};
    expect_active_ns(gp, with_hot, 5);
    wrv_ns(gp, 1, NSID_HOT, 512, 100, 8192, 41);

    struct nvme_sqe aer2 = {.opc = NVME_ADMIN_ASYNC_EVENT_REQUEST};
    aer_cid = ng_submit(gp, 0, &aer2);
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"nsid\": %u}", NQN, NSID_HOT);
    assert_int_equal(rpc("nvmf_subsystem_remove_ns", params, NULL), 0);
    expect_ns_notice(gp, aer_cid);
    expect_changed_ns(gp, NSID_HOT);
    const uint32_t without_hot[] = {1, 2, 3, 4};
    expect_active_ns(gp, without_hot, 4);
    uint64_t buf = ng_alloc(gp, 4096, NG_PAGE);
    assert_int_equal(sc_of(ng_rw(gp, 1, NVME_NVM_READ, NSID_HOT, 0, 8, buf, 4096)),
                     NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
    /* No longer claimed by a namespace: the bdev can go. */
    assert_int_equal(rpc("bdev_malloc_delete", "{\"name\": \"Hot0\"}", NULL), 0);
    ng_close(gp);
}

static void test_delete_queues(void **state)
{
    (void)state;
    struct nvme_guest *gp = &slots[0];
    open_enabled(gp);
    assert_int_equal(ng_set_num_queues(gp, 2, 2, NULL), 0);
    assert_int_equal(ng_create_io_queues(gp, 1, 16, 1), 0);
    assert_int_equal(ng_create_io_queues(gp, 2, 16, 2), 0);
    wrv_ns(gp, 2, 1, 512, 40000, 4096, 51);

    assert_int_equal(sc_of(ng_delete_io_cq(gp, 2)),
                     NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_DELETION));
    assert_int_equal(ng_delete_io_sq(gp, 2), 0);
    assert_int_equal(ng_delete_io_cq(gp, 2), 0);
    assert_int_equal(sc_of(ng_delete_io_sq(gp, 2)),
                     NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER));
    assert_int_equal(sc_of(ng_delete_io_cq(gp, 2)),
                     NVME_STATUS(NVME_SCT_COMMAND_SPECIFIC, NVME_SC_INVALID_QUEUE_IDENTIFIER));
    /* Queue 2 can be created again, and queue 1 never noticed. */
    assert_int_equal(ng_create_io_queues(gp, 2, 16, 2), 0);
    wrv_ns(gp, 2, 1, 512, 40008, 4096, 52);
    wrv_ns(gp, 1, 1, 512, 40016, 4096, 53);
    ng_close(gp);
}

/* Guest memory holding live queues goes away and comes back: the queues resume. */
static void test_dma_unmap_live_queues(void **state)
{
    (void)state;
    struct nvme_guest *gp = &slots[0];
    open_enabled(gp);
    assert_int_equal(ng_create_io_queues(gp, 1, 16, 1), 0);
    wrv_ns(gp, 1, 1, 512, 50000, 4096, 61);
    uint64_t wbuf = ng_alloc(gp, 4096, NG_PAGE);
    fill_pattern(ng_ptr(gp, wbuf), 4096, 62);

    assert_int_equal(vfio_user_client_dma_unmap(gp->c, NG_MEM_IOVA, gp->mem_size), 0);
    /* Doorbells rung while the rings are unmapped: nothing can be fetched, nothing posted. */
    struct nvme_sqe wr = {.opc = NVME_NVM_WRITE, .nsid = 1, .cdw10 = 50008, .cdw12 = 7};
    ng_set_prps(gp, &wr, wbuf, 4096);
    uint16_t io_cid = ng_submit(gp, 1, &wr);
    uint64_t idbuf = ng_alloc(gp, NG_PAGE, NG_PAGE);
    struct nvme_sqe id = {.opc = NVME_ADMIN_IDENTIFY, .cdw10 = NVME_ID_CNS_CTRL};
    id.dptr.prp1 = idbuf;
    uint16_t admin_cid = ng_submit(gp, 0, &id);
    struct nvme_cqe cqe;
    assert_int_equal(ng_wait_cqe(gp, 1, &cqe, 200), -ETIMEDOUT);
    assert_int_equal(ng_wait_cqe(gp, 0, &cqe, 10), -ETIMEDOUT);
    uint32_t csts;
    assert_int_equal(ng_read32(gp, NVME_REG_CSTS, &csts), 0);
    assert_int_equal(csts & NVME_CSTS_CFS, 0);

    /* Same IOVA, same memfd: the commands rung in the meantime run, the queues go on. */
    assert_int_equal(vfio_user_client_dma_map(gp->c, NG_MEM_IOVA, gp->mem_size,
                                              VFIO_USER_DMA_F_READ | VFIO_USER_DMA_F_WRITE, gp->memfd, 0, gp->mem),
                     0);
    assert_int_equal(ng_wait_cqe(gp, 1, &cqe, 5000), 0);
    assert_int_equal(cqe.cid, io_cid);
    assert_int_equal(cqe.status >> 1, 0);
    assert_int_equal(ng_wait_cqe(gp, 0, &cqe, 5000), 0);
    assert_int_equal(cqe.cid, admin_cid);
    assert_int_equal(cqe.status >> 1, 0);
    assert_int_equal(((const struct nvme_id_ctrl *)ng_ptr(gp, idbuf))->vid, VENDOR_ID);
    uint64_t rbuf = ng_alloc(gp, 4096, NG_PAGE);
    assert_int_equal(ng_rw(gp, 1, NVME_NVM_READ, 1, 50008, 8, rbuf, 4096), 0);
    assert_memory_equal(ng_ptr(gp, rbuf), ng_ptr(gp, wbuf), 4096);
    wrv_ns(gp, 1, 1, 512, 50016, 8192, 63);
    ng_close(gp);
}

static void test_sgl_and_bad_prp(void **state)
{
    (void)state;
    struct nvme_guest *gp = &slots[0];
    open_enabled(gp);
    assert_int_equal(ng_create_io_queues(gp, 1, 16, 1), 0);

    /* SGL: PSDT=01b with one Data Block descriptor in the command. */
    uint64_t wbuf = ng_alloc(gp, 4096, NG_PAGE), rbuf = ng_alloc(gp, 4096, NG_PAGE);
    fill_pattern(ng_ptr(gp, wbuf), 4096, 71);
    struct nvme_sqe w = {.opc = NVME_NVM_WRITE, .nsid = 1, .cdw10 = 60000, .cdw12 = 7,
                         .flags = NVME_PSDT_SGL_MPTR_CONTIG << NVME_SQE_PSDT_SHIFT};
    w.dptr.sgl1 = (struct nvme_sgl_desc){.addr = wbuf, .length = 4096, .type = NVME_SGL_TYPE_DATA_BLOCK << 4};
    assert_int_equal(ng_cmd(gp, 1, &w, NULL), 0);
    struct nvme_sqe r = w;
    r.opc = NVME_NVM_READ;
    r.dptr.sgl1.addr = rbuf;
    assert_int_equal(ng_cmd(gp, 1, &r, NULL), 0);
    assert_memory_equal(ng_ptr(gp, rbuf), ng_ptr(gp, wbuf), 4096);
    /* And the PRP path sees what the SGL path wrote. */
    uint64_t pbuf = ng_alloc(gp, 4096, NG_PAGE);
    assert_int_equal(ng_rw(gp, 1, NVME_NVM_READ, 1, 60000, 8, pbuf, 4096), 0);
    assert_memory_equal(ng_ptr(gp, pbuf), ng_ptr(gp, wbuf), 4096);

    /* A PRP list whose entries point outside the shared memory: Data Transfer Error. */
    uint64_t buf = ng_alloc(gp, 16384, NG_PAGE);
    uint64_t list_iova = ng_alloc(gp, NG_PAGE, NG_PAGE);
    uint64_t *list = ng_ptr(gp, list_iova);
    for (unsigned i = 0; i < 3; i++)
        list[i] = 0x10000 + i * NG_PAGE;
    struct nvme_sqe bad = {.opc = NVME_NVM_WRITE, .nsid = 1, .cdw10 = 61000, .cdw12 = 31};
    bad.dptr.prp1 = buf;
    bad.dptr.prp2 = list_iova;
    assert_int_equal(sc_of(ng_cmd(gp, 1, &bad, NULL)), NVME_SC_DATA_TRANSFER_ERROR);
    bad.opc = NVME_NVM_READ;
    assert_int_equal(sc_of(ng_cmd(gp, 1, &bad, NULL)), NVME_SC_DATA_TRANSFER_ERROR);
    /* The PRP list itself outside the shared memory. */
    bad.dptr.prp2 = 0x20000;
    assert_int_equal(sc_of(ng_cmd(gp, 1, &bad, NULL)), NVME_SC_DATA_TRANSFER_ERROR);

    /* vnvmed keeps serving this controller. */
    uint32_t csts;
    assert_int_equal(ng_read32(gp, NVME_REG_CSTS, &csts), 0);
    assert_int_equal(csts & (NVME_CSTS_RDY | NVME_CSTS_CFS), NVME_CSTS_RDY);
    wrv_ns(gp, 1, 1, 512, 61000, 16384, 72);
    ng_close(gp);
}

static json_object *arr_at(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    assert_true(json_object_object_get_ex(o, key, &v));
    assert_true(json_object_is_type(v, json_type_array));
    return v;
}

static uint64_t u64_of(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("no %s in %s", key, json_object_to_json_string(o));
    return json_object_get_uint64(v);
}

/*
 * What the daemon says about a live controller: nvmf_subsystem_get_controllers
 * and _qpairs name its queues, nvmf_get_stats and framework_get_reactors its
 * reactor's work, bdev_get_iostat the I/O that reached Malloc0.
 */
static void test_stats_of_a_live_controller(void **state)
{
    (void)state;
    struct nvme_guest *gp = &slots[0];
    open_enabled(gp);
    assert_int_equal(ng_set_num_queues(gp, 2, 2, NULL), 0);
    assert_int_equal(ng_create_io_queues(gp, 1, 64, 1), 0);
    struct json_object *r = NULL;
    assert_int_equal(rpc("bdev_get_iostat", "{\"name\": \"Malloc0\"}", &r), 0);
    uint64_t writes0 = u64_of(json_object_array_get_idx(arr_at(r, "bdevs"), 0), "num_write_ops");
    json_object_put(r);
    write_read_verify(gp, 1, 2000, 64u << 10, 81);

    assert_int_equal(rpc("nvmf_subsystem_get_controllers", "{\"nqn\": \"" NQN "\"}", &r), 0);
    assert_int_equal(json_object_array_length(r), 1);
    struct json_object *c = json_object_array_get_idx(r, 0);
    assert_true(u64_of(c, "cntlid") > 0);
    assert_int_equal(u64_of(c, "num_io_qpairs"), 1);
    json_object_put(r);

    assert_int_equal(rpc("nvmf_subsystem_get_qpairs", "{\"nqn\": \"" NQN "\"}", &r), 0);
    assert_int_equal(json_object_array_length(r), 2); /* admin and I/O queue 1 */
    assert_int_equal(u64_of(json_object_array_get_idx(r, 0), "qid"), 0);
    assert_int_equal(u64_of(json_object_array_get_idx(r, 1), "qid"), 1);
    assert_int_equal(u64_of(json_object_array_get_idx(r, 1), "size"), 64);
    json_object_put(r);
    assert_int_not_equal(rpc("nvmf_subsystem_get_qpairs", "{\"nqn\": \"nqn.2026-11.io.vnvme:none\"}", NULL), 0);

    assert_int_equal(rpc("nvmf_get_stats", NULL, &r), 0);
    struct json_object *groups = arr_at(r, "poll_groups");
    assert_int_equal(json_object_array_length(groups), 2); /* the fixture's two reactors */
    uint64_t io = 0, qpairs = 0, clients = 0, posted = 0, irqs = 0;
    for (size_t i = 0; i < 2; i++) {
        struct json_object *g = json_object_array_get_idx(groups, i);
        io += u64_of(g, "completed_nvme_io");
        posted += u64_of(g, "completions_posted");
        irqs += u64_of(g, "interrupts_raised");
        u64_of(g, "cq_full_holds");
        u64_of(g, "interrupts_coalesced");
        u64_of(g, "doorbell_buffer_arms");
        qpairs += u64_of(g, "current_io_qpairs");
        clients += u64_of(g, "connected_clients");
    }
    assert_true(io >= 2);
    assert_true(posted >= io + 4); /* the admin commands of the set-up too */
    assert_true(irqs >= 1 && irqs <= posted);
    assert_true(qpairs >= 1);
    assert_true(clients >= 1);
    assert_true(u64_of(r, "tick_rate") > 0);
    json_object_put(r);

    assert_int_equal(rpc("framework_get_reactors", NULL, &r), 0);
    struct json_object *reactors = arr_at(r, "reactors");
    assert_int_equal(json_object_array_length(reactors), 2);
    uint64_t busy = 0, polls = 0;
    for (size_t i = 0; i < 2; i++) {
        busy += u64_of(json_object_array_get_idx(reactors, i), "busy");
        polls += u64_of(json_object_array_get_idx(reactors, i), "polls");
    }
    assert_true(busy > 0);
    assert_true(polls > 0);
    json_object_put(r);

    assert_int_equal(rpc("bdev_get_iostat", "{\"name\": \"Malloc0\"}", &r), 0);
    assert_true(u64_of(json_object_array_get_idx(arr_at(r, "bdevs"), 0), "num_write_ops") > writes0);
    json_object_put(r);
    ng_close(gp);
}

/*
 * nvmf_ns_set_qos_limit: one namespace's own limit holds for the guest's I/O
 * (100 reads at 1000/s take >= 90 ms), shows in nvmf_get_subsystems, is kept
 * by save_config right after the namespace, and 0 lifts it.
 */
static void test_namespace_rate_limit(void **state)
{
    (void)state;
    struct nvme_guest *gp = &slots[0];
    open_enabled(gp);
    assert_int_equal(ng_set_num_queues(gp, 1, 1, NULL), 0);
    assert_int_equal(ng_create_io_queues(gp, 1, 64, 1), 0);
    assert_int_not_equal(rpc("nvmf_ns_set_qos_limit", "{\"nqn\": \"" NQN "\", \"nsid\": 99, \"rw_ios_per_sec\": 1000}",
                             NULL), 0);
    assert_int_not_equal(rpc("nvmf_ns_set_qos_limit", "{\"nqn\": \"" NQN "\", \"nsid\": 1}", NULL), 0);
    char params[160];
    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"nsid\": %u, \"rw_ios_per_sec\": 1000, \"burst_ms\": 2}", NQN,
             NSID_MALLOC);
    assert_int_equal(rpc("nvmf_ns_set_qos_limit", params, NULL), 0);
    uint64_t buf = ng_alloc(gp, BLOCK_SIZE, NG_PAGE);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(ng_rw(gp, 1, NVME_NVM_READ, NSID_MALLOC, (uint64_t)i, 1, buf, BLOCK_SIZE), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("100 reads at 1000/s: %.1f ms\n", ms);
    assert_true(ms >= 90.0);

    struct json_object *r = NULL;
    assert_int_equal(rpc("nvmf_get_subsystems", "{\"nqn\": \"" NQN "\"}", &r), 0);
    struct json_object *nss = arr_at(json_object_array_get_idx(r, 0), "namespaces"), *limits = NULL;
    for (size_t i = 0; i < json_object_array_length(nss); i++)
        if (u64_of(json_object_array_get_idx(nss, i), "nsid") == NSID_MALLOC)
            json_object_object_get_ex(json_object_array_get_idx(nss, i), "assigned_rate_limits", &limits);
    assert_non_null(limits);
    assert_int_equal(u64_of(limits, "rw_ios_per_sec"), 1000);
    assert_int_equal(u64_of(limits, "burst_ms"), 2);
    json_object_put(r);
    assert_int_equal(rpc("save_config", NULL, &r), 0);
    const char *text = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN);
    const char *add = strstr(text, "\"nvmf_subsystem_add_ns\"");
    const char *set = strstr(text, "\"nvmf_ns_set_qos_limit\"");
    assert_non_null(add);
    assert_non_null(set);
    assert_true(set > add);
    assert_non_null(strstr(set, "\"rw_ios_per_sec\":1000"));
    json_object_put(r);

    snprintf(params, sizeof(params), "{\"nqn\": \"%s\", \"nsid\": %u, \"rw_ios_per_sec\": 0}", NQN, NSID_MALLOC);
    assert_int_equal(rpc("nvmf_ns_set_qos_limit", params, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(ng_rw(gp, 1, NVME_NVM_READ, NSID_MALLOC, (uint64_t)i, 1, buf, BLOCK_SIZE), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("100 reads with the limit lifted: %.1f ms\n",
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    assert_int_equal(rpc("save_config", NULL, &r), 0);
    assert_null(strstr(json_object_to_json_string(r), "nvmf_ns_set_qos_limit"));
    json_object_put(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_shared_cq, close_slots),
        cmocka_unit_test_teardown(test_dsm_write_zeroes_compare, close_slots),
        cmocka_unit_test_teardown(test_ns_hot_add_remove, close_slots),
        cmocka_unit_test_teardown(test_delete_queues, close_slots),
        cmocka_unit_test_teardown(test_dma_unmap_live_queues, close_slots),
        cmocka_unit_test_teardown(test_sgl_and_bad_prp, close_slots),
        cmocka_unit_test_teardown(test_stats_of_a_live_controller, close_slots),
        cmocka_unit_test_teardown(test_namespace_rate_limit, close_slots),
    };
    return cmocka_run_group_tests(tests, vnvmed_fixture_setup, vnvmed_fixture_teardown);
}
