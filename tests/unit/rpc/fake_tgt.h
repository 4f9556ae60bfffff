/* SPDX-License-Identifier: MIT */
/* In-memory tgt_* for testing the RPC layer alone: no reactors, no sockets, no controllers. */
#ifndef VNVME_TEST_FAKE_TGT_H
#define VNVME_TEST_FAKE_TGT_H

/* Delete every subsystem and bdev and forget the transport: a clean slate between tests. */
void fake_tgt_reset(void);
/* Number of calls that reached tgt_* (to check that invalid params stop before the target). */
extern int fake_tgt_calls;

#endif
