/* SPDX-License-Identifier: MIT */
/*
 * vnvmed --upgrade-fd FD: the new process of a live upgrade (handover.h).
 *
 * It builds everything it can while the old process still serves (bdevs,
 * subsystems, namespaces from the running configuration; RAM bdevs on the
 * old one's memory), then rebuilds the controllers from their state, and
 * starts polling only when the old process says COMMIT. Until then it has
 * written nothing a client can see, so on any failure it just exits
 * (_exit: no cleanup that would remove a socket file or reset a
 * controller) and the old process carries on.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "handover.h"
#include "vnvmed.h"

#define LOG_COMP "takeover"
#define OFFER_TIMEOUT_MS 10000
#define STATE_TIMEOUT_MS 30000  /* the old process drains its controllers meanwhile */
#define COMMIT_TIMEOUT_MS 10000
static void __attribute__((noreturn)) give_up(int sock, uint32_t type, const char *why)
{
    VNVME_ERR(LOG_COMP, "%s; the running vnvmed keeps serving", why);
    (void)handover_send_text(sock, type, why);
    /*
     * Closing with the old process's messages unread would reset the
     * connection and lose ours: read them until it hangs up (it does once it
     * has the reason), a few seconds at most.
     */
    struct handover_msg m;
    while (handover_recv(sock, 5000, &m) == 0)
        handover_msg_free(&m);
    _exit(1);
}

static void take_offer(int sock, struct handover_msg *m)
{
    char why[512];
    struct vnvme_state_in r;
    vnvme_state_in_init(&r, m->data, m->len, m->fds, m->nfds);
    /* The test suite plays a binary of another format version through this variable. */
    const char *reads_env = getenv("VNVME_TEST_HANDOVER_READS");
    uint32_t reads = reads_env ? (uint32_t)strtoul(reads_env, NULL, 10) : HANDOVER_STATE_VERSION;
    if (config_record_apply(&r, reads, "the running configuration", why, sizeof(why)) != 0)
        give_up(sock, HO_REFUSE, why);
}

int takeover_run(int sock, int *metrics_fd)
{
    struct handover_msg m;
    char why[600];
    int rc = handover_recv(sock, OFFER_TIMEOUT_MS, &m);
    if (rc || m.type != HO_OFFER)
        give_up(sock, HO_REFUSE, rc ? "no offer from the running vnvmed" : "the first message is not an offer");
    take_offer(sock, &m);
    handover_msg_free(&m);
    rc = handover_send(sock, HO_PREPARED, NULL, 0, NULL, 0);
    if (rc)
        _exit(1);

    /* Every controller's record first, then all rebuilt at once: one call per reactor, not one per controller. */
    uint32_t ctrlrs = 0, cap = 0;
    struct handover_msg *msgs = NULL;
    for (;;) {
        rc = handover_recv(sock, STATE_TIMEOUT_MS, &m);
        if (rc) {
            VNVME_ERR(LOG_COMP, "the running vnvmed stopped the handover (%s); it keeps serving", strerror(-rc));
            _exit(1);
        }
        if (m.type == HO_END)
            break;
        if (m.type != HO_CTRLR)
            give_up(sock, HO_FAILED, "unexpected message while receiving controllers");
        if (ctrlrs == cap) {
            cap = cap ? cap * 2 : 64;
            msgs = realloc(msgs, cap * sizeof(*msgs));
            if (!msgs)
                give_up(sock, HO_FAILED, "out of memory for the controllers' records");
        }
        msgs[ctrlrs++] = m;
    }
    if (tgt_restore_ctrlrs(msgs, ctrlrs, why, sizeof(why)) != 0)
        give_up(sock, HO_FAILED, why);
    for (uint32_t i = 0; i < ctrlrs; i++)
        handover_msg_free(&msgs[i]);
    free(msgs);
    struct vnvme_state_in r;
    vnvme_state_in_init(&r, m.data, m.len, m.fds, m.nfds);
    int rpc_fd = vnvme_state_get_fd(&r);
    char rpc_path[108];
    vnvme_state_get_str(&r, rpc_path, sizeof(rpc_path));
    *metrics_fd = vnvme_state_get_fd(&r);
    vnvme_state_expect_end(&r);
    handover_msg_free(&m);
    if (!vnvme_state_in_ok(&r) || rpc_fd < 0)
        give_up(sock, HO_FAILED, "the RPC socket was not handed over");
    rc = rpc_server_adopt(rpc_fd, rpc_path);
    if (rc) {
        snprintf(why, sizeof(why), "cannot serve the handed-over RPC socket: %s", strerror(-rc));
        give_up(sock, HO_FAILED, why);
    }
    rc = handover_send(sock, HO_READY, NULL, 0, NULL, 0);
    if (rc)
        _exit(1);
    rc = handover_recv(sock, COMMIT_TIMEOUT_MS, &m);
    if (rc || m.type != HO_COMMIT) {
        VNVME_ERR(LOG_COMP, "no go-ahead from the running vnvmed (%s); it keeps serving",
                  rc ? strerror(-rc) : "unexpected message");
        _exit(1);
    }
    handover_msg_free(&m);
    close(sock);
    tgt_start_restored();
    VNVME_NOTICE(LOG_COMP, "serving %u controller%s handed over", ctrlrs, ctrlrs == 1 ? "" : "s");
    /* The host role (CUSE devices), which the old process detached: attached again now that the target serves. */
    if (config_record_apply_host_role("the running configuration's host role") != 0)
        VNVME_ERR(LOG_COMP, "not every host-role controller could be attached again");
    return 0;
}
