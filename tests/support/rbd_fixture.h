/* SPDX-License-Identifier: MIT */
/*
 * The RBD tests' fixture: a throw-away one-node Ceph cluster
 * (scripts/ceph-test-cluster, or $CEPH_TEST_CLUSTER) with images img0..img4,
 * and a vnvmed (rbd_daemon) serving RBD_NQN with two rbd namespaces: nsid 1 on
 * img0 (512-byte blocks, the registered cluster "ceph", librbd's cache on) and
 * nsid 2 on img1 (4096-byte blocks, a private connection, no cache), both
 * with RBD_TIMEOUT_MS. A cluster that cannot start is a failure, not a skip:
 * CI installs Ceph.
 */
#ifndef VNVME_TEST_RBD_FIXTURE_H
#define VNVME_TEST_RBD_FIXTURE_H

#include <sys/types.h>

#include "vnvmed_harness.h"

struct json_object;
struct vnvme_ctrlr;

#define RBD_NQN "nqn.2026-11.io.vnvme:rbd"
#define RBD_IMG0_MIB 64u /* ns 1: 512-byte blocks, shared cluster connection */
#define RBD_IMG1_MIB 32u /* ns 2: 4096-byte blocks, private connection */
#define RBD_TIMEOUT_MS 2000u

extern struct vnvmed_harness rbd_daemon;
extern char rbd_ceph_conf[160]; /* the cluster's ceph.conf */
extern char rbd_mon_host[96];

/* cmocka group setup/teardown: cluster, images, daemon (teardown resumes a stopped OSD first). */
int rbd_fixture_setup(void **state);
int rbd_fixture_teardown(void **state);

/* A shell command (printf format); 0, or -1 with the command on stderr. */
int rbd_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The OSD's pid, for SIGSTOP/SIGCONT; -1 when unknown. */
pid_t rbd_osd_pid(void);

/* Attach the userspace driver to the daemon (16 MiB DMA pool). */
struct vnvme_ctrlr *rbd_attach(void);
/* JSON-RPC to the daemon: 0 with *result (may be NULL), or the error code. */
int rbd_rpc_result(const char *method, const char *params_json, struct json_object **result);
int rbd_rpc(const char *method, const char *params_json);
/* bdev_get_bdevs for one bdev (a new reference; the test fails if it is not there). */
struct json_object *rbd_bdev_info(const char *name);
/* A nested member as a string ("true", "512", ...), or NULL when absent: JSTR(obj, "a", "b"). */
const char *rbd_jstr_path(struct json_object *o, const char *const *path);
#define JSTR(o, ...) rbd_jstr_path((o), (const char *const[]){__VA_ARGS__, NULL})

#endif
