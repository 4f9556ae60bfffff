/* SPDX-License-Identifier: MIT */
/*
 * A scripted fake vfio-user server for the client's unit tests: a thread on a
 * temporary unix socket that speaks raw messages, so the client is tested on
 * its own. The fake never calls cmocka asserts (they would longjmp across
 * threads): it counts failures, which the test checks after joining it.
 */
#ifndef VNVME_TEST_FAKE_SERVER_H
#define VNVME_TEST_FAKE_SERVER_H

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "vfio-user/msg.h"
#include "vnvme/vfio_user_client.h"

#define PAGE 4096u
/* What the fake server advertises unless a test says otherwise. */
#define DEFAULT_CAPS "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":65536}}"

struct fake;
typedef void (*fake_script)(struct fake *f);

struct fake {
    char dir[64];
    char path[128];
    int lsock;
    int sock;
    pthread_t thread;
    fake_script script;
    const char *caps_json; /* VERSION reply data; NULL for no data */
    uint16_t reply_major;
    uint16_t reply_minor;
    struct vfio_user_rx rx;
    int failures;
    char first_failure[256];
    /* Scenario inputs and observations. */
    int memfd;
    uint64_t u[16];
    int n_seen;
};

#define FCHECK(f, cond)                                                                                                \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            if ((f)->failures++ == 0)                                                                                  \
                snprintf((f)->first_failure, sizeof((f)->first_failure), "line %d: %s", __LINE__, #cond);          \
        }                                                                                                              \
    } while (0)

int count_open_fds(void);
bool fake_recv(struct fake *f);
bool fake_expect(struct fake *f, uint16_t cmd);
void fake_send(struct fake *f, const struct vfio_user_header *h, const void *p, size_t len, const int *fds,
                      size_t nfds);
void fake_reply_fds(struct fake *f, const void *p, size_t len, const int *fds, size_t nfds);
void fake_reply(struct fake *f, const void *p, size_t len);
void fake_error(struct fake *f, int err);
bool fake_request(struct fake *f, uint16_t id, uint16_t cmd, const void *p, size_t len);
void fake_wait_eof(struct fake *f);
bool fake_version(struct fake *f);
void fake_init(struct fake *f, fake_script script, const char *caps_json);
void fake_start(struct fake *f);
void fake_finish(struct fake *f);
struct vfio_user_client *connect_ok(struct fake *f, int timeout_ms);
int connect_err(struct fake *f);

#endif
