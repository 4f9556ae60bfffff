/* SPDX-License-Identifier: MIT */
/*
 * systemd's file descriptor store (FDSTORE=1, sd_notify(3)) as vnvmed uses it
 * for crash recovery (recovery.c): every descriptor a controller's client
 * depends on is kept by the service manager under a name, so a vnvmed
 * restarted after a crash gets them back (LISTEN_FDS/LISTEN_FDNAMES).
 *
 * The manager keeps one copy of each open file description: storing one it
 * already has is a no-op that keeps the old name (a VM's RAM memfd comes
 * with every DMA window of it). So names are per file description, found
 * with kcmp(KCMP_FILE) against a copy kept here, and counted: a name goes
 * (FDSTOREREMOVE) when no controller uses its file any more.
 *
 * Finding a file must not cost a scan of every stored one: a record is
 * rewritten on a reactor, and hundreds of VMs hold tens of thousands of
 * descriptors. The caller's hint (the name this record gave the same fd
 * number last time) settles the usual case with one kcmp; otherwise only
 * entries of the same inode are compared. Anonymous-inode files (eventfds)
 * all share one inode: one of them is compared with the hint, and with the
 * entries a restart adopted that no record claimed yet (a VMM gives each
 * vector an eventfd of its own, so one already claimed is not it).
 *
 * Called from reactors (a controller's recovery record changes) and the
 * control thread; a mutex orders them. Nothing here is on the I/O path.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sd_notify.h"
#include "recovery.h"

#define LOG_COMP "fdstore"

struct stored {
    char name[FDSTORE_NAME_MAX];
    int fd; /* our copy, for kcmp */
    dev_t dev;
    ino_t ino;
    uint32_t refs;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool enabled;
static struct stored *tab;
static uint32_t n, cap;
static uint64_t next_seq = 1;
static pid_t self;

bool fdstore_enabled(void)
{
    return enabled;
}

void fdstore_enable(void)
{
    enabled = true;
    self = getpid();
}

static bool same_file(int a, int b)
{
    return syscall(SYS_kcmp, self, self, KCMP_FILE, a, b) == 0;
}

static int send_store(const char *name, int fd)
{
    char state[64 + FDSTORE_NAME_MAX];
    snprintf(state, sizeof(state), "FDSTORE=1\nFDNAME=%s", name);
    int rc = vnvme_sd_notify_fds(state, &fd, 1);
    return rc < 0 ? rc : 0;
}

static void send_remove(const char *name)
{
    char state[64 + FDSTORE_NAME_MAX];
    snprintf(state, sizeof(state), "FDSTOREREMOVE=1\nFDNAME=%s", name);
    (void)vnvme_sd_notify(state);
}

static int use(struct stored *s, char *out)
{
    s->refs++;
    if (out)
        snprintf(out, FDSTORE_NAME_MAX, "%s", s->name);
    return 0;
}

static int add_locked(int fd, const char *name, const char *prefix, const char *hint, bool send, char *out)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    for (uint32_t i = 0; hint && i < n; i++)
        if (strcmp(tab[i].name, hint) == 0 && tab[i].ino == st.st_ino && tab[i].dev == st.st_dev &&
            same_file(tab[i].fd, fd))
            return use(&tab[i], out);
    bool anonymous = (st.st_mode & S_IFMT) == 0;
    for (uint32_t i = 0; i < n; i++)
        if ((!anonymous || tab[i].refs == 0) && tab[i].ino == st.st_ino && tab[i].dev == st.st_dev &&
            same_file(tab[i].fd, fd))
            return use(&tab[i], out);
    if (n == cap) {
        uint32_t c = cap ? cap * 2 : 64;
        struct stored *t = realloc(tab, c * sizeof(*t));
        if (!t)
            return -ENOMEM;
        tab = t;
        cap = c;
    }
    struct stored *s = &tab[n];
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (s->fd < 0)
        return -errno;
    if (name)
        snprintf(s->name, sizeof(s->name), "%s", name);
    else
        snprintf(s->name, sizeof(s->name), "%s-%d-%llu", prefix ? prefix : "vnvme", (int)self,
                 (unsigned long long)next_seq++);
    if (send) {
        int rc = send_store(s->name, fd);
        if (rc) {
            close(s->fd);
            return rc;
        }
    }
    s->refs = 1;
    n++;
    if (out)
        snprintf(out, FDSTORE_NAME_MAX, "%s", s->name);
    return 0;
}

int fdstore_acquire(int fd, const char *prefix, const char *hint, char *name)
{
    pthread_mutex_lock(&lock);
    int rc = add_locked(fd, NULL, prefix, hint, true, name);
    pthread_mutex_unlock(&lock);
    return rc;
}

int fdstore_adopt(int fd, const char *name)
{
    pthread_mutex_lock(&lock);
    int rc = add_locked(fd, name, NULL, NULL, false, NULL);
    if (rc == 0)
        tab[n - 1].refs = 0; /* counted by the records that name it */
    pthread_mutex_unlock(&lock);
    return rc;
}

void fdstore_release(const char *name)
{
    pthread_mutex_lock(&lock);
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp(tab[i].name, name) != 0)
            continue;
        if (tab[i].refs && --tab[i].refs == 0) {
            send_remove(tab[i].name);
            close(tab[i].fd);
            tab[i] = tab[--n];
        }
        break;
    }
    pthread_mutex_unlock(&lock);
}

void fdstore_forget_all(void)
{
    pthread_mutex_lock(&lock);
    for (uint32_t i = 0; i < n; i++) {
        send_remove(tab[i].name);
        close(tab[i].fd);
    }
    n = 0;
    pthread_mutex_unlock(&lock);
}

void fdstore_drop_unused(void)
{
    pthread_mutex_lock(&lock);
    for (uint32_t i = 0; i < n;) {
        if (tab[i].refs == 0) {
            send_remove(tab[i].name);
            close(tab[i].fd);
            tab[i] = tab[--n];
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&lock);
}
