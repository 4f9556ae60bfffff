/* SPDX-License-Identifier: MIT */
/*
 * The daemon that test_vnvmed and test_vnvmed_nvm drive, one per test
 * program: the built vnvmed with two reactors and two subsystems, NQN at
 * vnvmed.listen_dir with NSIDs 1 (malloc, 512 B blocks), 2 (malloc, 4 KiB
 * blocks), 3 (null), 4 (uring on a temp file), and NQN2 at nvme1 with NSID 1
 * (malloc) on the other reactor; plus the guest-side helpers both use.
 */
#ifndef VNVME_TEST_VNVMED_FIXTURE_H
#define VNVME_TEST_VNVMED_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvme_guest.h"
#include "vnvmed_harness.h"

#define NQN "nqn.2026-11.io.vnvme:itest"
#define NQN2 "nqn.2026-11.io.vnvme:itest2"
#define SERIAL "VNVMEITEST0001"
#define MODEL "vnvme integration test"
#define BLOCK_SIZE 512u
#define NUM_BLOCKS 131072u /* 64 MiB */
#define GUEST_RAM (16u << 20)
#define VENDOR_ID 0x4e56
#define DEVICE_ID 0x0001
#define NSID_MALLOC 1u
#define NSID_MALLOC_4K 2u
#define NSID_NULL 3u
#define NSID_URING 4u
#define NSID_HOT 5u
#define MALLOC_4K_BLOCKS 4096u /* 16 MiB */
#define NULL_BLOCKS 262144u
#define URING_FILE_SIZE (8u << 20)
#define URING_LBA 1000u
#define URING_LEN (16u << 10)
#define URING_SEED 99u

extern struct vnvmed_harness vnvmed;
extern char sock_path2[128]; /* NQN2's vfio-user socket */
extern char uring_path[128]; /* NSID 4's file */

/* cmocka group setup / teardown: start the daemon from the config above, stop it and remove its files. */
int vnvmed_fixture_setup(void **state);
int vnvmed_fixture_teardown(void **state);

/* A guest connected to NQN's socket with the controller enabled (admin queues of 32). */
void open_enabled(struct nvme_guest *g);
/* Write len bytes of pattern seed at slba of nsid (block size bs) through qid, read them back, compare. */
void wrv_ns(struct nvme_guest *g, uint16_t qid, uint32_t nsid, uint32_t bs, uint64_t slba, uint32_t len,
            uint32_t seed);
/* wrv_ns on NSID 1. */
void write_read_verify(struct nvme_guest *g, uint16_t qid, uint64_t slba, uint32_t len, uint32_t seed);
bool all_bytes(const uint8_t *p, size_t len, uint8_t v);
/* Read len bytes at slba of nsid into a buffer pre-filled with 0xa5 and check they are all zero. */
void read_expect_zeroes(struct nvme_guest *g, uint16_t qid, uint32_t nsid, uint32_t bs, uint64_t slba,
                        uint32_t len);

/* The status code of an ng_* result (its status field without the type). */
static inline int sc_of(int status)
{
    return status & 0x7ff;
}

/* Guests of tests that end with close_slots: closed even when an assertion ends a test early. */
extern struct nvme_guest slots[2];
int close_slots(void **state);

#endif
