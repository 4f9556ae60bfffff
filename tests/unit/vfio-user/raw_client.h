/* SPDX-License-Identifier: MIT */
/*
 * A hand-driven vfio-user client for unit tests: one end of a socketpair is
 * attached to a real server (no listener), the test drives the other end and
 * runs the server loop itself, so every message and reply is under its control.
 * Failures are cmocka assertions.
 */
#ifndef VNVME_TEST_RAW_CLIENT_H
#define VNVME_TEST_RAW_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vnvme/vfio_user_pci.h"
#include "vnvme/vfio_user_proto.h"
#include "vnvme/vfio_user_server.h"

#define REPLY_TIMEOUT_MS 5000

int count_open_fds(void);
bool fd_is_open(int fd);

/* A PCI-shaped server (all PCI regions and irq indexes) without listener. */
struct vfio_user_server *make_server(const struct vfio_user_server_ops *ops, void *ctx, uint32_t max_xfer);

/* Attach one end of a socketpair as the client connection; returns the test's end. */
int attach_client(struct vfio_user_server *s);

/* Send without waiting for a reply; returns the message id used. */
uint16_t send_cmd_flags(int cli, uint16_t cmd, uint32_t flags, const void *payload, size_t len, const int *fds,
                        size_t nfds);
uint16_t send_cmd(int cli, uint16_t cmd, const void *payload, size_t len, const int *fds, size_t nfds);

/* A received reply: header, payload copy, fds (owned by the caller). */
struct reply {
    struct vfio_user_header hdr;
    uint8_t data[8192];
    size_t len;
    int fds[8];
    size_t nfds;
};

/* 1 with the next message in r, or vfio_user_rx_wait()'s negative errno (-ECONNRESET on EOF). */
int recv_msg(int cli, struct reply *r);
void close_reply_fds(struct reply *r);

/*
 * Send one command, let the server handle it, return the reply's errno (0 for
 * success). r may be NULL when the reply's content does not matter.
 */
int call(struct vfio_user_server *s, int cli, uint16_t cmd, const void *payload, size_t len, const int *fds,
         size_t nfds, struct reply *r);

/* VERSION with this capabilities JSON (NULL: none), which must succeed. */
void negotiate_caps(struct vfio_user_server *s, int cli, const char *json);
void negotiate(struct vfio_user_server *s, int cli);

/* The server side saw EOF/closed: the client end reads EOF. */
bool peer_closed(int cli);

/* How many times the eventfd fired since the last look. */
uint64_t fired(int fd);

/*
 * A PCI device model on a server with a raw client attached, with eventfds
 * registered through SET_IRQS for INTx, MSI and MSI-X exactly as a VMM would
 * register them, so interrupts can be observed on those eventfds.
 */
struct dev_log {
    unsigned config_writes;
    uint32_t last_write_off, last_write_count;
    unsigned function_resets;
    unsigned bar_calls;
    uint64_t bar_last_off;
    size_t bar_last_count;
    bool bar_last_write;
    uint8_t bar_mem[0x4000];
};

struct pci_harness {
    struct vfio_user_server *s;
    struct vfio_user_pci *p;
    int client;
    int intx_fd;
    int msi_fd[32];
    int msix_fd[64];
    struct dev_log log;
};

/* BAR callback over h->log.bar_mem that records each access in h->log. */
ssize_t dev_bar_access(void *ctx, uint8_t *buf, size_t count, uint64_t offset, bool is_write);

/* An NVMe-like device with INTx, 4 MSI and 8 MSI-X vectors (table and PBA in BAR0). */
struct vfio_user_pci_info pci_harness_default_info(struct pci_harness *h);
void pci_harness_start(struct pci_harness *h, const struct vfio_user_pci_info *info);

/* cmocka fixtures: the default device with a 16 KiB BAR0 on dev_bar_access. */
int pci_harness_setup(void **state);
int pci_harness_teardown(void **state);

/* SET_IRQS as QEMU sends it: count eventfds, or all -1 (sent without fds), or, with fds NULL, DATA_NONE. */
void pci_set_irqs(struct pci_harness *h, uint32_t index, uint32_t action, uint32_t start, uint32_t count,
                  const int *fds);

uint32_t cfg_read(struct pci_harness *h, uint64_t off, size_t count);
void cfg_write(struct pci_harness *h, uint64_t off, size_t count, uint32_t v);
/* Offset of the capability with this id, walking the list from the header; 0 if absent. */
uint32_t find_cap(struct pci_harness *h, uint8_t id);
/* An access to a BAR region as the server would dispatch a REGION_READ/WRITE. */
ssize_t bar_io(struct pci_harness *h, uint32_t bar, void *buf, size_t count, uint64_t off, bool is_write);

#endif
