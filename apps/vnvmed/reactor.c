/* SPDX-License-Identifier: MIT */
/*
 * Reactors: one pinned polling thread per core of the cpumask.
 *
 * The loop polls every controller's data path (doorbells in shared memory,
 * bdev completions) without syscalls. Socket messages and cross-thread calls
 * are noticed through one epoll set per reactor (every controller's listen
 * and connection fds plus the reactor's eventfd), checked without blocking
 * every EPOLL_CHECK_EVERY iterations. After IDLE_SLEEP_NS without any work
 * the reactor sleeps in epoll_wait for up to IDLE_SLEEP_MS per round, so an
 * idle daemon costs little; the price is that the first doorbell after an
 * idle period (a plain store, no wakeup) waits up to that long. Without any
 * connected client no doorbell can be written, and everything that can
 * bring work (a connection, a message, a call) wakes epoll, so the reactor
 * then sleeps IDLE_SLEEP_NO_CLIENT_MS at a time (the bound only matters for
 * bdev completions of a client that went away, which nobody waits for).
 *
 * How long to poll before sleeping adapts to the client (spin_ns, between
 * IDLE_SLEEP_NS and IDLE_SPIN_MAX_NS): a sleep after which the very next poll
 * finds a doorbell means a command waited for the wakeup, so the window
 * doubles; a sleep that ends with nothing to do halves it. A client that
 * submits one command at a time with gaps longer than 200 us between them
 * (a CUSE ioctl: several FUSE round trips per command; much more under
 * emulation) then keeps the reactor polling while it is active instead of
 * paying up to a millisecond per command, and an idle client lets it decay
 * back to the short window within a few sleeps, so idle CPU stays the same.
 *
 * Waiting on asynchronous bdevs: while commands are inside bdevs (an RBD
 * I/O takes hundreds of microseconds to milliseconds) there is never 200 us
 * without work, so the rule above would poll a whole core between
 * completions; on a small machine that core is what librbd's threads and the
 * cluster need. So when the only thing outstanding is bdev work, the reactor
 * sleeps after BDEV_WAIT_SPIN_NS without work, with every bdev channel's fd
 * in the epoll set: a completion wakes it at once. They are edge-triggered,
 * since a signal may land after its completion was polled; level-triggered,
 * such an fd would end every sleep at once and turn it into a busy loop of
 * syscalls. What cannot wake the reactor is a doorbell, so such a sleep
 * lasts at most BDEV_WAIT_MAX_NS:
 *  - The spin first: after posting completions the reactor keeps polling
 *    BDEV_WAIT_SPIN_NS, long enough for a polling host (or a guest that
 *    answers its interrupt at once) to submit the next commands, so a
 *    closed-loop workload does not pay the bound on every command.
 *  - A command submitted during the sleep waits for the next bdev
 *    completion or the bound, whichever comes first: at most ~200 us (plus
 *    the kernel's timer slack, 50 us by default) on top of a command that
 *    costs the cluster hundreds of microseconds or more, and the first
 *    command for a RAM namespace sharing the reactor after a quiet stretch
 *    pays it too. Shorter bounds cost wakeups: 5 000 per second at this one,
 *    a few percent of a core.
 *  - An interrupt held back by Interrupt Coalescing (lib/target/interrupts.c)
 *    is due by its deadline, so no sleep lasts past the earliest one.
 *  - A bdev whose channel has no fd (a delay bdev over a RAM bdev, which
 *    completes on a deadline) is polled only on these wakeups, so it may
 *    complete up to the bound late; under the idle rule alone it could be
 *    IDLE_SLEEP_MS late.

 * Many controllers, few busy: see reactor_poll.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/ticks.h"
#include "reactor_internal.h"
#include "recovery.h"

#define LOG_COMP "reactor"
#define MAX_REACTORS 64
#define EPOLL_CHECK_EVERY 64u    /* iterations between non-blocking event checks (power of two) */
#define IDLE_CLOCK_EVERY 64u     /* idle iterations between clock reads */
#define IDLE_SLEEP_NS 200000ull  /* idle this long before sleeping (the shortest window) ... */
#define IDLE_SPIN_MAX_NS 5000000ull /* ... up to this, for a client that a sleep keeps waiting */
#define IDLE_SLEEP_MS 1
#define IDLE_SLEEP_NO_CLIENT_MS 100 /* nothing but fds can bring work: sleep long */
#define BDEV_WAIT_SPIN_NS 20000ull  /* commands inside bdevs, nothing else to do: poll this long ... */
#define BDEV_WAIT_MAX_NS 200000ll   /* ... then sleep until a bdev fd fires, at most this long */
#define MAX_EVENTS 32

/* epoll data of bdev channel fds: their events only end a sleep, the poll does the work. */
static char bdev_wakeup;

static struct reactor *reactors[MAX_REACTORS];
static int nr_reactors;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- epoll registrations ---- */

/* Bdev channel fds are edge-triggered (see channel_fd in bdev.h): nobody reads them. */
static void epoll_watch(struct reactor *r, int fd, void *ptr)
{
    struct epoll_event ev = {.events = EPOLLIN | (ptr == &bdev_wakeup ? EPOLLET : 0), .data.ptr = ptr};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 && errno != EEXIST)
        VNVME_WARN(LOG_COMP, "reactor %d: epoll add fd %d: %s", r->index, fd, strerror(errno));
}

static void epoll_unwatch(struct reactor *r, int fd)
{
    /* The fd may already be closed (its registration went with it): nothing to do then. */
    (void)epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/*
 * Bring the epoll set in line with the controller's current fds.
 *
 * The connection is watched through a copy of its fd that only the reactor
 * closes. epoll keeps a registration for as long as the socket is open
 * anywhere, and the server closes its fd inside a poll, before the reactor
 * can unregister it: with the socket still open elsewhere (the crash
 * recovery fd store keeps it, and so does a live upgrade's other process),
 * a registration made on the server's fd would outlive the controller and
 * report events for freed memory. The copy is unregistered, then closed,
 * whenever the server's fd changes, a client that left and a new one that
 * arrived on the same number within one poll included.
 */
static void sync_fds(struct reactor *r, struct reactor_ctrlr *rc)
{
    int lfd, cfd;
    nvmet_vfio_user_fds(rc->vc, &lfd, &cfd);
    if (lfd != rc->listen_fd) {
        if (rc->listen_fd >= 0)
            epoll_unwatch(r, rc->listen_fd);
        if (lfd >= 0)
            epoll_watch(r, lfd, rc);
        rc->listen_fd = lfd;
    }
    uint32_t conn = nvmet_vfio_user_connections(rc->vc);
    if (cfd == rc->conn_fd && cfd >= 0 && rc->conn_watch >= 0 && conn == rc->conn_seen)
        return; /* the same socket: no client came or went */
    if (rc->conn_watch >= 0) {
        epoll_unwatch(r, rc->conn_watch);
        close(rc->conn_watch);
        rc->conn_watch = -1;
    }
    if (cfd >= 0) {
        rc->conn_watch = fcntl(cfd, F_DUPFD_CLOEXEC, 0);
        rc->conn_seen = conn;
        if (rc->conn_watch >= 0)
            epoll_watch(r, rc->conn_watch, rc);
        else
            VNVME_WARN(LOG_COMP, "reactor %d: cannot watch a client socket: %s", r->index, strerror(errno));
    }
    r->nr_connected += (cfd >= 0) - (rc->conn_fd >= 0);
    rc->conn_fd = cfd;
}

/*
 * Register the controller's bdev channel fds. The old ones go first, all of
 * them: a channel may have been replaced by one whose fd has the same number,
 * and a closed fd's registration is already gone.
 */
static void sync_chan_fds(struct reactor *r, struct reactor_ctrlr *rc)
{
    for (uint32_t i = 0; i < rc->nr_chan_fds; i++)
        epoll_unwatch(r, rc->chan_fds[i]);
    rc->nr_chan_fds = 0;
    rc->chan_gen = rc->nvme->chan_gen;
    uint32_t n = nvmet_io_channel_fds(rc->nvme, rc->chan_fds, rc->chan_fds_cap);
    if (n > rc->chan_fds_cap) {
        int *fds = realloc(rc->chan_fds, n * sizeof(*fds));
        if (!fds) {
            /* Those channels are then polled on the sleep bound's wakeups only. */
            VNVME_WARN(LOG_COMP, "reactor %d: out of memory watching bdev channels", r->index);
            n = rc->chan_fds_cap;
        } else {
            rc->chan_fds = fds;
            rc->chan_fds_cap = n;
            n = nvmet_io_channel_fds(rc->nvme, rc->chan_fds, rc->chan_fds_cap);
        }
    }
    for (uint32_t i = 0; i < n; i++)
        epoll_watch(r, rc->chan_fds[i], &bdev_wakeup);
    rc->nr_chan_fds = n;
}

/* ---- controllers ---- */

void reactor_add_ctrlr(struct reactor *r, struct nvmet_vfio_user_ctrlr *vc)
{
    struct reactor_ctrlr *rc = calloc(1, sizeof(*rc));
    if (!rc || !reactor_lists_grow(r)) {
        VNVME_ERR(LOG_COMP, "reactor %d: out of memory adding a controller", r->index);
        free(rc);
        return;
    }
    reactor_list_put(r, rc, false);
    rc->vc = vc;
    rc->nvme = nvmet_vfio_user_nvme(vc);
    rc->chan_gen = rc->nvme->chan_gen - 1; /* registered before the first sleep */
    rc->listen_fd = rc->conn_fd = rc->conn_watch = -1;
    rc->next = r->ctrlrs;
    r->ctrlrs = rc;
    sync_fds(r, rc);
}

void reactor_remove_ctrlr(struct reactor *r, struct nvmet_vfio_user_ctrlr *vc)
{
    for (struct reactor_ctrlr **pp = &r->ctrlrs; *pp; pp = &(*pp)->next) {
        struct reactor_ctrlr *rc = *pp;
        if (rc->vc != vc)
            continue;
        if (rc->listen_fd >= 0)
            epoll_unwatch(r, rc->listen_fd);
        if (rc->conn_watch >= 0) {
            epoll_unwatch(r, rc->conn_watch);
            close(rc->conn_watch);
        }
        if (rc->conn_fd >= 0)
            r->nr_connected--;
        for (uint32_t i = 0; i < rc->nr_chan_fds; i++)
            epoll_unwatch(r, rc->chan_fds[i]);
        reactor_list_take(r, rc);
        *pp = rc->next;
        free(rc->chan_fds);
        free(rc);
        return;
    }
}

static int poll_control(struct reactor *r, struct reactor_ctrlr *rc)
{
    reactor_make_hot(r, rc); /* a message may be a doorbell write or bring a client */
    int n = nvmet_vfio_user_poll_control(rc->vc);
    if (n < 0)
        VNVME_WARN(LOG_COMP, "%s: listener failed: %s", nvmet_vfio_user_socket_path(rc->vc), strerror(-n));
    recovery_poll(rc->vc); /* a message that changed what a restart after a crash needs rewrites its record */
    sync_fds(r, rc);
    return n > 0 ? n : 0;
}

/* ---- cross-thread calls ---- */

static void run_calls(struct reactor *r)
{
    uint64_t v;
    /* Drain the wakeup first so a call queued while we run is not slept through. */
    if (read(r->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        VNVME_WARN(LOG_COMP, "reactor %d: eventfd read: %s", r->index, strerror(errno));
    pthread_mutex_lock(&r->lock);
    struct reactor_call_msg *m = r->calls;
    r->calls = r->calls_tail = NULL;
    pthread_mutex_unlock(&r->lock);
    while (m) {
        struct reactor_call_msg *next = m->next; /* m lives on the caller's stack until done */
        m->fn(m->arg);
        pthread_mutex_lock(&r->lock);
        m->done = true;
        pthread_cond_broadcast(&r->done_cond);
        pthread_mutex_unlock(&r->lock);
        m = next;
    }
}

void reactor_call(struct reactor *r, reactor_fn fn, void *arg)
{
    if (!r->thread_started || pthread_equal(pthread_self(), r->thread)) {
        fn(arg);
        return;
    }
    struct reactor_call_msg m = {.fn = fn, .arg = arg};
    pthread_mutex_lock(&r->lock);
    if (r->calls_tail)
        r->calls_tail->next = &m;
    else
        r->calls = &m;
    r->calls_tail = &m;
    pthread_mutex_unlock(&r->lock);
    uint64_t one = 1;
    if (write(r->evfd, &one, sizeof(one)) < 0)
        VNVME_WARN(LOG_COMP, "reactor %d: eventfd write: %s", r->index, strerror(errno));
    pthread_mutex_lock(&r->lock);
    while (!m.done)
        pthread_cond_wait(&r->done_cond, &r->lock);
    pthread_mutex_unlock(&r->lock);
}

/* ---- the loop ---- */

/*
 * What a reactor looks at before it sleeps concerns hot controllers only: a
 * controller goes cold only with nothing inside bdevs, no interrupt held back
 * and its doorbells armed, and whatever would change that is work, which
 * makes it hot again. So a sleep costs no walk over hundreds of idle ones.
 */
static bool any_client(const struct reactor *r)
{
    return r->nr_connected > 0;
}

/* Commands are inside bdevs; also brings the epoll set up to date with the bdev channels. */
static bool waiting_on_bdevs(struct reactor *r)
{
    bool waiting = false;
    for (uint32_t i = 0; i < r->nr_hot; i++) {
        struct reactor_ctrlr *rc = r->hot[i];
        if (rc->nvme->in_bdev == 0)
            continue;
        waiting = true;
        if (rc->chan_gen != rc->nvme->chan_gen)
            sync_chan_fds(r, rc);
    }
    return waiting;
}

/*
 * Before a sleep: controllers whose host keeps a doorbell buffer are asked
 * for a doorbell write on the next submission (EventIdx). A host whose
 * doorbell writes reach us as messages then wakes the reactor at once; for
 * the others (a store into the mmapped page wakes nothing) the sleep bounds
 * still apply. True when a submission already came in: poll, do not sleep.
 */
static bool arm_doorbells(struct reactor *r)
{
    bool pending = false;
    for (uint32_t i = 0; i < r->nr_hot; i++)
        pending |= nvmet_ctrlr_arm_doorbells(r->hot[i]->nvme) == NVMET_DB_PENDING;
    return pending;
}

/* Interrupts held back by Interrupt Coalescing are due by their deadlines: no sleep may pass one. */
static int64_t bound_by_irq_deadlines(struct reactor *r, int64_t timeout_ns)
{
    uint64_t now = 0;
    for (uint32_t i = 0; i < r->nr_hot; i++) {
        uint64_t due = nvmet_vfio_user_irq_deadline_ns(r->hot[i]->vc);
        if (!due)
            continue;
        if (!now)
            now = now_ns();
        int64_t left = due > now ? (int64_t)(due - now) : 0;
        if (left < timeout_ns)
            timeout_ns = left;
    }
    return timeout_ns;
}

static int wait_events(struct reactor *r, struct epoll_event *evs, int64_t timeout_ns)
{
    static atomic_bool no_pwait2; /* shared by the reactors; any of them may find out first */
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
        int n = epoll_pwait2(r->epfd, evs, MAX_EVENTS, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store_explicit(&no_pwait2, true, memory_order_relaxed); /* before Linux 5.11: whole ms, rounded up */
    }
    return epoll_wait(r->epfd, evs, MAX_EVENTS, (int)((timeout_ns + 999999) / 1000000));
}

/* Handle what epoll reports; returns the work done. Calls run last: they may remove controllers. */
static int check_events(struct reactor *r, int64_t timeout_ns)
{
    struct epoll_event evs[MAX_EVENTS];
    int n = wait_events(r, evs, timeout_ns);
    int work = 0;
    bool calls = false;

    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == NULL) {
            calls = true;
            continue;
        }
        if (evs[i].data.ptr == &bdev_wakeup)
            continue; /* the next data poll reaps the completions */
        work += poll_control(r, evs[i].data.ptr);
    }
    if (calls) {
        run_calls(r);
        work++;
    }
    return work;
}

static void *reactor_main(void *arg)
{
    struct reactor *r = arg;
    uint64_t iter = 0, idle_iters = 0, idle_since = 0, spin_ns = IDLE_SLEEP_NS;
    bool sleeping = false, slept = false;

    VNVME_INFO(LOG_COMP, "reactor %d running on core %d", r->index, r->cpu);
    uint64_t last_tick = vnvme_ticks();
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        /* Rounds next to a sleep poll the cold controllers too (every COLD_SLEEP_EVERY-th time). */
        int work = reactor_poll_data(r, sleeping);
        iter++;
        if (slept) {
            /* Was a command kept waiting by the idle sleep that just ended? */
            slept = false;
            if (work)
                spin_ns = spin_ns * 2 > IDLE_SPIN_MAX_NS ? IDLE_SPIN_MAX_NS : spin_ns * 2;
            else
                spin_ns = spin_ns / 2 < IDLE_SLEEP_NS ? IDLE_SLEEP_NS : spin_ns / 2;
        }

        if (sleeping && arm_doorbells(r)) {
            work++;
        } else if (sleeping) {
            bool bdev_wait = waiting_on_bdevs(r);
            int64_t ms = any_client(r) ? IDLE_SLEEP_MS : IDLE_SLEEP_NO_CLIENT_MS;
            uint64_t before = vnvme_ticks();
            int ev = check_events(r, bound_by_irq_deadlines(r, bdev_wait ? BDEV_WAIT_MAX_NS : ms * 1000000));
            uint64_t slept_ticks = vnvme_ticks() - before;
            /* The sleep is idle time whatever woke it; the rest of the round is judged by its work. */
            r->st.idle_ticks += slept_ticks;
            last_tick += slept_ticks;
            r->st.sleeps++;
            r->st.wakeups += ev > 0;
            work += ev;
            slept = ev == 0 && !bdev_wait && ms == IDLE_SLEEP_MS;
        } else if ((iter & (EPOLL_CHECK_EVERY - 1)) == 0) {
            work += check_events(r, 0);
        }

        uint64_t now_tick = vnvme_ticks();
        r->st.polls++;
        if (work) {
            r->st.busy_ticks += now_tick - last_tick;
            r->st.polls_with_work++;
        } else {
            r->st.idle_ticks += now_tick - last_tick;
        }
        last_tick = now_tick;
        if (work) {
            idle_iters = 0;
            sleeping = false;
            continue;
        }
        if (idle_iters++ == 0) {
            idle_since = now_ns();
        } else if (!sleeping && idle_iters % IDLE_CLOCK_EVERY == 0) {
            uint64_t idle = now_ns() - idle_since;
            sleeping = idle >= spin_ns || (idle >= BDEV_WAIT_SPIN_NS && waiting_on_bdevs(r));
        }
    }
    /* Calls queued while stopping must not leave their callers waiting. */
    run_calls(r);
    return NULL;
}

/* ---- start/stop ---- */

static void reactor_free(struct reactor *r)
{
    if (!r)
        return;
    while (r->ctrlrs)
        reactor_remove_ctrlr(r, r->ctrlrs->vc);
    free(r->hot);
    free(r->cold);
    free(r->cold_watch);
    if (r->epfd >= 0)
        close(r->epfd);
    if (r->evfd >= 0)
        close(r->evfd);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->done_cond);
    free(r);
}

static struct reactor *reactor_new(int index, int cpu)
{
    struct reactor *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->index = index;
    r->cpu = cpu;
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->done_cond, NULL);
    atomic_init(&r->stop, false);
    if (r->epfd < 0 || r->evfd < 0) {
        reactor_free(r);
        return NULL;
    }
    epoll_watch(r, r->evfd, NULL);
    return r;
}

static int reactor_launch(struct reactor *r)
{
    pthread_attr_t attr;
    cpu_set_t set;
    int rc;

    CPU_ZERO(&set);
    CPU_SET(r->cpu, &set);
    pthread_attr_init(&attr);
    rc = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
    if (rc == 0)
        rc = pthread_create(&r->thread, &attr, reactor_main, r);
    pthread_attr_destroy(&attr);
    if (rc)
        return -rc;
    r->thread_started = true;
    char name[16];
    snprintf(name, sizeof(name), "reactor_%d", r->index);
    pthread_setname_np(r->thread, name);
    return 0;
}

int reactors_start(uint64_t cpumask)
{
    cpu_set_t allowed;
    int rc = 0;

    if (nr_reactors)
        return -EBUSY;
    if (cpumask == 0)
        return -EINVAL;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
        return -errno;
    for (int cpu = 0; cpu < 64; cpu++) {
        if (!(cpumask & (1ull << cpu)))
            continue;
        if (!CPU_ISSET(cpu, &allowed)) {
            VNVME_ERR(LOG_COMP, "core %d is in the cpumask but not available to this process", cpu);
            rc = -EINVAL;
            break;
        }
        struct reactor *r = reactor_new(nr_reactors, cpu);
        if (!r) {
            rc = -ENOMEM;
            break;
        }
        reactors[nr_reactors++] = r;
        rc = reactor_launch(r);
        if (rc) {
            VNVME_ERR(LOG_COMP, "cannot start reactor on core %d: %s", cpu, strerror(-rc));
            break;
        }
    }
    if (rc) {
        reactors_stop();
        return rc;
    }
    return nr_reactors;
}

void reactors_stop(void)
{
    for (int i = 0; i < nr_reactors; i++) {
        struct reactor *r = reactors[i];
        if (r->thread_started) {
            uint64_t one = 1;
            atomic_store(&r->stop, true);
            if (write(r->evfd, &one, sizeof(one)) < 0)
                VNVME_WARN(LOG_COMP, "reactor %d: eventfd write: %s", r->index, strerror(errno));
            pthread_join(r->thread, NULL);
        }
        reactor_free(r);
        reactors[i] = NULL;
    }
    nr_reactors = 0;
}

int reactors_count(void)
{
    return nr_reactors;
}

struct reactor *reactor_get(int i)
{
    if (i < 0 || i >= nr_reactors)
        return NULL;
    return reactors[i];
}
