/* SPDX-License-Identifier: MIT */
/*
 * What the reactor's files share (reactor.c the loop, epoll and calls;
 * reactor_poll.c which controllers a round polls; reactor_stats.c the
 * figures). Everything here belongs to the reactor's thread unless said.
 */
#ifndef VNVMED_REACTOR_INTERNAL_H
#define VNVMED_REACTOR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vnvmed.h"

#define COLD_AFTER_POLLS 1024u /* empty polls in a row before a controller is polled less often */
#define COLD_PER_ROUND 1u      /* cold controllers polled per busy round */
#define COLD_SLEEP_EVERY 2u    /* rounds next to a sleep between polls of every cold controller */
#define COLD_FULL_POLL_EVERY 16u /* a cold controller's visits: one full poll, the others a doorbell look */
#define WATCH_WORDS 4u           /* submission doorbells a cold controller's look covers */

struct reactor_ctrlr {
    struct nvmet_vfio_user_ctrlr *vc;
    struct nvmet_ctrlr *nvme;
    int listen_fd, conn_fd; /* the server's, as last seen */
    int conn_watch;         /* the reactor's copy of conn_fd, registered in the epoll set (reactor.c) */
    uint32_t conn_seen;     /* nvmet_vfio_user_connections() when conn_watch was made */
    /* Bdev channel fds registered in the epoll set, as of the controller's chan_gen. */
    int *chan_fds;
    uint32_t nr_chan_fds, chan_fds_cap;
    uint32_t chan_gen;
    uint32_t quiet;  /* polls in a row that found nothing */
    bool cold;       /* on the cold list (else the hot one) */
    uint32_t slot;   /* index in that list */
    struct reactor_ctrlr *next;
};

struct reactor_call_msg {
    reactor_fn fn;
    void *arg;
    bool done;
    struct reactor_call_msg *next;
};

struct reactor {
    int index;
    int cpu;
    pthread_t thread;
    bool thread_started;
    int epfd;
    int evfd;
    atomic_bool stop;

    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    struct reactor_call_msg *calls, *calls_tail;

    struct reactor_ctrlr *ctrlrs; /* reactor thread only */
    /*
     * What a visit to a cold controller reads: its submission doorbells, as
     * nvmet_ctrlr_doorbell_watch() gave them when it went cold, one cache line
     * each, in the cold list's order (cold_watch[i] is cold[i]'s).
     */
    struct cold_watch {
        const volatile uint32_t *word[WATCH_WORDS];
        uint32_t seen[WATCH_WORDS];
        int n; /* -1: cannot be watched, poll it */
        uint32_t visits;
    } __attribute__((aligned(64))) * cold_watch;
    /* The same controllers by how often they are polled (reactor thread only). */
    struct reactor_ctrlr **hot, **cold;
    uint32_t nr_hot, nr_cold, list_cap, cold_cursor;
    uint32_t sleep_rounds; /* rounds next to a sleep, for COLD_SLEEP_EVERY */
    uint32_t nr_connected; /* controllers with a client (sync_fds keeps it) */
    struct reactor_stats st;      /* reactor thread only: read through reactor_call */
};

/* reactor_poll.c: the hot and cold lists (see there). */
void reactor_list_put(struct reactor *r, struct reactor_ctrlr *rc, bool cold);
void reactor_list_take(struct reactor *r, struct reactor_ctrlr *rc);
void reactor_make_hot(struct reactor *r, struct reactor_ctrlr *rc);
void reactor_make_cold(struct reactor *r, struct reactor_ctrlr *rc);
bool reactor_lists_grow(struct reactor *r);
/* One round of data polls; sleepy: the round is next to a sleep. Returns the work found. */
int reactor_poll_data(struct reactor *r, bool sleepy);

#endif
