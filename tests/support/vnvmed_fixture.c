/* SPDX-License-Identifier: MIT */
/* The daemon of test_vnvmed and test_vnvmed_nvm: see vnvmed_fixture.h. */
#include "vnvmed_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_pattern.h"

struct vnvmed_harness vnvmed;
char sock_path2[128];
char uring_path[128];
struct nvme_guest slots[2];
static char listen_dir2[96];

static int write_config(void)
{
    return vnvmed_harness_write_config(&vnvmed,
            "{\n"
            "  \"subsystems\": [\n"
            "    {\"subsystem\": \"bdev\", \"config\": [\n"
            "      {\"method\": \"bdev_malloc_create\",\n"
            "       \"params\": {\"name\": \"Malloc0\", \"num_blocks\": %u, \"block_size\": %u}},\n"
            "      {\"method\": \"bdev_malloc_create\",\n"
            "       \"params\": {\"name\": \"Malloc4K\", \"num_blocks\": %u, \"block_size\": 4096}},\n"
            "      {\"method\": \"bdev_null_create\",\n"
            "       \"params\": {\"name\": \"Null0\", \"num_blocks\": %u, \"block_size\": 512}},\n"
            "      {\"method\": \"bdev_uring_create\",\n"
            "       \"params\": {\"name\": \"Uring0\", \"filename\": \"%s\"}},\n"
            "      {\"method\": \"bdev_malloc_create\",\n"
            "       \"params\": {\"name\": \"Malloc2\", \"num_blocks\": 8192, \"block_size\": 512}}\n"
            "    ]},\n"
            "    {\"subsystem\": \"nvmf\", \"config\": [\n"
            "      {\"method\": \"nvmf_create_transport\", \"params\": {\"trtype\": \"VFIOUSER\"}},\n"
            "      {\"method\": \"nvmf_create_subsystem\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"serial_number\": \"%s\", \"model_number\": \"%s\",\n"
            "                  \"allow_any_host\": true}},\n"
            "      {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Malloc0\", \"nsid\": 1}}},\n"
            "      {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Malloc4K\", \"nsid\": 2}}},\n"
            "      {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Null0\", \"nsid\": 3}}},\n"
            "      {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Uring0\", \"nsid\": 4}}},\n"
            "      {\"method\": \"nvmf_subsystem_add_listener\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"listen_address\": {\"trtype\": \"VFIOUSER\", \"adrfam\": \"IPv4\",\n"
            "                  \"traddr\": \"%s\", \"trsvcid\": \"\"}}},\n"
            "      {\"method\": \"nvmf_create_subsystem\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"serial_number\": \"VNVMEITEST0002\", \"allow_any_host\": true}},\n"
            "      {\"method\": \"nvmf_subsystem_add_ns\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"namespace\": {\"bdev_name\": \"Malloc2\", \"nsid\": 1}}},\n"
            "      {\"method\": \"nvmf_subsystem_add_listener\",\n"
            "       \"params\": {\"nqn\": \"%s\", \"listen_address\": {\"trtype\": \"VFIOUSER\", \"adrfam\": \"IPv4\",\n"
            "                  \"traddr\": \"%s\", \"trsvcid\": \"\"}}}\n"
            "    ]}\n"
            "  ]\n"
            "}\n",
            NUM_BLOCKS, BLOCK_SIZE, MALLOC_4K_BLOCKS, NULL_BLOCKS, uring_path,
            NQN, SERIAL, MODEL, NQN, NQN, NQN, NQN, NQN, vnvmed.listen_dir,
            NQN2, NQN2, NQN2, listen_dir2);
}

/* A sparse file for the uring bdev. */
static int create_uring_file(void)
{
    FILE *f = fopen(uring_path, "w");
    if (!f)
        return -1;
    int rc = ftruncate(fileno(f), URING_FILE_SIZE);
    return fclose(f) | rc;
}

int vnvmed_fixture_setup(void **state)
{
    (void)state;
    if (vnvmed_harness_init(&vnvmed, "vnvmed-test") != 0 ||
        vnvmed_harness_path(&vnvmed, "nvme1", listen_dir2, sizeof(listen_dir2)) != 0 ||
        vnvmed_harness_path(&vnvmed, "nvme1/cntrl", sock_path2, sizeof(sock_path2)) != 0 ||
        vnvmed_harness_path(&vnvmed, "uring.img", uring_path, sizeof(uring_path)) != 0)
        return -1;
    if (create_uring_file() != 0 || write_config() != 0)
        return -1;
    /* Two reactors: the second subsystem runs on the other one. */
    const struct vnvmed_start how = {.core_mask = "0x3", .second_socket = sock_path2};
    return vnvmed_harness_start(&vnvmed, &how);
}

int vnvmed_fixture_teardown(void **state)
{
    (void)state;
    vnvmed_harness_cleanup(&vnvmed);
    return 0;
}

void open_enabled(struct nvme_guest *g)
{
    assert_int_equal(ng_open_retry(g, vnvmed.sock_path, GUEST_RAM, 5000), 0);
    assert_int_equal(ng_enable(g, 32), 0);
}

void wrv_ns(struct nvme_guest *g, uint16_t qid, uint32_t nsid, uint32_t bs, uint64_t slba, uint32_t len,
                   uint32_t seed)
{
    uint64_t wbuf = ng_alloc(g, len, NG_PAGE);
    uint64_t rbuf = ng_alloc(g, len, NG_PAGE);
    fill_pattern(ng_ptr(g, wbuf), len, seed);
    assert_int_equal(ng_rw(g, qid, NVME_NVM_WRITE, nsid, slba, len / bs, wbuf, len), 0);
    assert_int_equal(ng_rw(g, qid, NVME_NVM_READ, nsid, slba, len / bs, rbuf, len), 0);
    assert_memory_equal(ng_ptr(g, wbuf), ng_ptr(g, rbuf), len);
}

void write_read_verify(struct nvme_guest *g, uint16_t qid, uint64_t slba, uint32_t len, uint32_t seed)
{
    wrv_ns(g, qid, NSID_MALLOC, BLOCK_SIZE, slba, len, seed);
}

bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != v)
            return false;
    return true;
}

void read_expect_zeroes(struct nvme_guest *g, uint16_t qid, uint32_t nsid, uint32_t bs, uint64_t slba,
                               uint32_t len)
{
    uint64_t buf = ng_alloc(g, len, NG_PAGE);
    memset(ng_ptr(g, buf), 0xa5, len);
    assert_int_equal(ng_rw(g, qid, NVME_NVM_READ, nsid, slba, len / bs, buf, len), 0);
    assert_true(all_bytes(ng_ptr(g, buf), len, 0));
}

int close_slots(void **state)
{
    (void)state;
    for (unsigned i = 0; i < 2; i++)
        if (slots[i].c)
            ng_close(&slots[i]);
    return 0;
}
