/* SPDX-License-Identifier: MIT */
/*
 * Input layout of fuzz_nvme_cmd, shared with make_seeds_nvme_cmd.
 *
 * The whole input is copied into guest memory at FZ_INPUT_IOVA, so data
 * pointers in the SQEs can point into the input (PRP lists, SGL segments,
 * DSM ranges) at FZ_INPUT_IOVA + offset. The input starts with a header:
 */
#ifndef VNVME_FUZZ_NVME_CMD_H
#define VNVME_FUZZ_NVME_CMD_H

#include <stdint.h>

struct fz_header {
    uint8_t n_admin; /* SQEs for the admin queue (mod FZ_MAX_ADMIN + 1), first after the header */
    uint8_t n_io;    /* then SQEs for I/O queue 1 (mod FZ_MAX_IO + 1) */
    uint8_t flags;   /* FZ_F_* */
    uint8_t db_slot_a;
    uint32_t db_value_a;
    uint8_t db_slot_b;
    uint8_t rsvd[3];
    uint32_t db_value_b;
};
_Static_assert(sizeof(struct fz_header) == 16, "header is 16 bytes");

#define FZ_F_DOORBELL_A 0x1u /* after the normal doorbells, write db_value_a to slot db_slot_a */
#define FZ_F_DOORBELL_B 0x2u /* and db_value_b to db_slot_b */
#define FZ_F_UNMAP 0x4u      /* guest memory is DMA-unmapped for the first polls, then mapped again */
#define FZ_F_NS_REMOVE 0x8u  /* namespace 1 is hot-removed before polling and added back after */

#define FZ_MEM_IOVA 0x10000000ull
#define FZ_MEM_SIZE (4ull << 20)
#define FZ_QSIZE 64u
#define FZ_ASQ_IOVA (FZ_MEM_IOVA + 0x0000)
#define FZ_ACQ_IOVA (FZ_MEM_IOVA + 0x1000)
#define FZ_IOSQ_IOVA (FZ_MEM_IOVA + 0x2000)
#define FZ_IOCQ_IOVA (FZ_MEM_IOVA + 0x3000)
#define FZ_FREE_IOVA (FZ_MEM_IOVA + 0x4000)  /* free pages (e.g. rings of queues the input creates) */
#define FZ_INPUT_IOVA (FZ_MEM_IOVA + 0x10000)
#define FZ_INPUT_MAX (64u << 10)
#define FZ_DATA_IOVA (FZ_MEM_IOVA + 0x100000) /* data buffers, up to the end of memory */
#define FZ_MAX_ADMIN 16u
#define FZ_MAX_IO 32u
#define FZ_NS_BLOCKS 2048u
#define FZ_NS_BLOCK_SIZE 512u

#endif
