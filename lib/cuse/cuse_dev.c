/* SPDX-License-Identifier: MIT */
/*
 * /dev/vnvme/nvmeN and /dev/vnvme/nvmeNnM on libfuse3's CUSE low-level API.
 *
 * Each device is one CUSE session served by its own thread (a single-threaded
 * fuse_session_loop), which is also the only user of that device's I/O queue
 * pair (see vnvme/nvme_cuse.h). A per-controller poller thread processes admin
 * completions and asynchronous events and creates/removes the namespace
 * devices, so no request thread ever has to join another one.
 *
 * Sessions are made with cuse_lowlevel_new + fuse_session_mount("/dev/fd/N")
 * rather than cuse_lowlevel_setup: setup installs process-wide signal
 * handlers (and may daemonize without -f), which belongs to a daemon's main,
 * not to a library running inside vnvmed.
 */
#define FUSE_USE_VERSION 31

#include <cuse_lowlevel.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "vnvme/nvme_cuse.h"
#include "vnvme/nvme_host.h"

#define COMP "cuse"
#define CUSE_DEV_PATH "/dev/cuse"
#define LOCK_PATH_FMT "/var/tmp/vnvme_cuse_lock_%d"
#define MAX_INDEX 1024
#define POLL_INTERVAL_US 10000
/* Interrupts a session thread's read() of /dev/cuse so it sees fuse_session_exit. */
#define WAKE_SIGNAL (SIGRTMIN + 3)

struct cuse_dev {
    struct vnvme_cuse_set *set;
    struct vnvme_cuse_ioctl_dev io;
    char name[64];
    struct fuse_session *se;
    pthread_t thread;
    struct cuse_dev *next;
};

struct vnvme_cuse_set {
    struct vnvme_cuse_ctrlr cc;
    struct vnvme_cuse_node_perm perm;
    int index;
    int lock_fd;
    struct cuse_dev *ctrlr_dev;
    struct cuse_dev *ns_devs; /* changed by the registering thread, then only by the poller */
    pthread_mutex_t devs_lock; /* the list, for readers on other threads (foreach) */
    pthread_t poller;
    atomic_bool stop;
    atomic_bool ns_dirty;
};

/* fcntl locks are per process: a second set in this process must not take an index this process holds. */
static pthread_mutex_t index_lock = PTHREAD_MUTEX_INITIALIZER;
static bool index_used[MAX_INDEX];

bool vnvme_cuse_available(void)
{
    struct stat st;
    return stat(CUSE_DEV_PATH, &st) == 0 && S_ISCHR(st.st_mode);
}

/* ---- index claim ---- */

static int claim_index(int *lock_fd)
{
    pthread_mutex_lock(&index_lock);
    for (int i = 0; i < MAX_INDEX; i++) {
        if (index_used[i])
            continue;
        char path[64];
        snprintf(path, sizeof(path), LOCK_PATH_FMT, i);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            continue;
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(fd, F_SETLK, &fl) != 0) {
            close(fd); /* another live process owns it */
            continue;
        }
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
        if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
            VNVME_WARN(COMP, "%s: cannot record the owner pid", path);
        index_used[i] = true;
        pthread_mutex_unlock(&index_lock);
        *lock_fd = fd;
        return i;
    }
    pthread_mutex_unlock(&index_lock);
    return -EBUSY;
}

static void release_index(int index, int lock_fd)
{
    pthread_mutex_lock(&index_lock);
    char path[64];
    snprintf(path, sizeof(path), LOCK_PATH_FMT, index);
    /* Unlink while still locked so nobody locks a file that is about to vanish. */
    unlink(path);
    close(lock_fd);
    index_used[index] = false;
    pthread_mutex_unlock(&index_lock);
}

/* ---- FUSE operations ---- */

static struct cuse_dev *req_dev(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/*
 * The kernel's CUSE sends every read and write at offset 0 and makes lseek a
 * no-op (cuse.c: a local pos of 0, noop_llseek), so the device keeps the
 * position of each open file itself: read()/write() stream through the
 * namespace from LBA 0 the way they do on a block device opened fresh.
 * pread/pwrite offsets never reach us; see the README.
 */
struct open_file {
    uint64_t pos;
    bool writable; /* opened for writing: what lets an unprivileged caller send commands that write */
};

static void op_open(fuse_req_t req, struct fuse_file_info *fi)
{
    struct open_file *of = calloc(1, sizeof(*of));
    if (of == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    of->writable = (fi->flags & O_ACCMODE) != O_RDONLY;
    fi->fh = (uint64_t)(uintptr_t)of;
    if (fuse_reply_open(req, fi) == -ENOENT)
        free(of); /* the open was interrupted: libfuse says no release will come */
}

static void op_release(fuse_req_t req, struct fuse_file_info *fi)
{
    free((void *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

static struct open_file *req_file(struct fuse_file_info *fi)
{
    return (struct open_file *)(uintptr_t)fi->fh;
}

static void op_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)off;
    struct cuse_dev *d = req_dev(req);
    struct open_file *of = req_file(fi);
    if (d->io.nsid == 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (size > VNVME_CUSE_RW_MAX)
        size = VNVME_CUSE_RW_MAX;
    /* NULL: the data stays in the device's transfer buffer, and the reply is sent from there. */
    long rc = vnvme_cuse_ns_rw(&d->io, false, NULL, size, of->pos);
    if (rc < 0) {
        fuse_reply_err(req, (int)-rc);
        return;
    }
    of->pos += (uint64_t)rc;
    fuse_reply_buf(req, rc > 0 ? d->io.xfer : NULL, (size_t)rc);
}

static void op_write(fuse_req_t req, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)off;
    struct cuse_dev *d = req_dev(req);
    struct open_file *of = req_file(fi);
    if (d->io.nsid == 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    long rc = vnvme_cuse_ns_rw(&d->io, true, (void *)(uintptr_t)buf, size, of->pos);
    if (rc < 0) {
        fuse_reply_err(req, (int)-rc);
        return;
    }
    of->pos += (uint64_t)rc;
    fuse_reply_write(req, (size_t)rc);
}

static size_t add_iov(struct iovec *v, size_t n, uint64_t addr, size_t len)
{
    if (len == 0)
        return n;
    v[n].iov_base = (void *)(uintptr_t)addr;
    v[n].iov_len = len;
    return n + 1;
}

/*
 * Unrestricted ioctls arrive with no data: each call asks the kernel to retry
 * with the user memory it now knows it needs (the struct first, then the
 * struct plus the data and metadata it names), and the last one executes.
 */
static struct vnvme_ioctl_caller req_caller(fuse_req_t req, struct fuse_file_info *fi)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    return (struct vnvme_ioctl_caller){.open_for_write = req_file(fi)->writable, .pid = ctx ? (int)ctx->pid : 0,
                                       .privileged = -1};
}

static void op_ioctl(fuse_req_t req, int cmd, void *arg, struct fuse_file_info *fi, unsigned int flags,
                     const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
    struct cuse_dev *d = req_dev(req);
    struct vnvme_ioctl_caller caller = req_caller(req, fi);
    unsigned int ucmd = (unsigned int)cmd; /* NVMe ioctl numbers are negative as int */
    bool compat = (flags & FUSE_IOCTL_COMPAT) != 0;
    uint64_t uarg = (uint64_t)(uintptr_t)arg;
    struct vnvme_ioctl_xfer x;
    int rc = vnvme_ioctl_plan(&d->io, ucmd, compat, NULL, 0, &x);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    if (x.arg_in == 0 && (rc = vnvme_ioctl_access(&d->io, ucmd, NULL, 0, &caller)) != 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct iovec in_iov[3], out_iov[3];
    size_t nin = 0, nout = 0;
    if (in_bufsz < x.arg_in || (x.arg_in == 0 && out_bufsz < x.arg_out)) {
        nin = add_iov(in_iov, nin, uarg, x.arg_in);
        if (x.arg_in == 0)
            nout = add_iov(out_iov, nout, uarg, x.arg_out);
        fuse_reply_ioctl_retry(req, nin ? in_iov : NULL, nin, nout ? out_iov : NULL, nout);
        return;
    }
    uint8_t argbuf[128] = {0};
    if (x.arg_in > sizeof(argbuf) || x.arg_out > sizeof(argbuf)) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    memcpy(argbuf, in_buf, x.arg_in);
    if (x.arg_in && ((rc = vnvme_ioctl_plan(&d->io, ucmd, compat, argbuf, sizeof(argbuf), &x)) != 0 ||
                     (rc = vnvme_ioctl_access(&d->io, ucmd, argbuf, sizeof(argbuf), &caller)) != 0)) {
        /* Refused before any of the caller's data is asked for. */
        fuse_reply_err(req, -rc);
        return;
    }
    size_t xfer = (size_t)x.data_len + x.meta_len;
    size_t need_in = x.arg_in + (x.data_to_dev ? xfer : 0);
    size_t need_out = x.arg_out + (x.data_to_dev ? 0 : xfer);
    if (in_bufsz < need_in || out_bufsz < need_out) {
        nin = add_iov(in_iov, nin, uarg, x.arg_in);
        nout = add_iov(out_iov, nout, uarg, x.arg_out);
        if (x.data_to_dev) {
            nin = add_iov(in_iov, nin, x.data_addr, x.data_len);
            nin = add_iov(in_iov, nin, x.meta_addr, x.meta_len);
        } else {
            nout = add_iov(out_iov, nout, x.data_addr, x.data_len);
            nout = add_iov(out_iov, nout, x.meta_addr, x.meta_len);
        }
        fuse_reply_ioctl_retry(req, nin ? in_iov : NULL, nin, nout ? out_iov : NULL, nout);
        return;
    }
    /*
     * Data goes through the device's DMA-pool transfer buffer (the limits above
     * keep it within VNVME_CUSE_RW_MAX), so the driver needs no bounce and
     * nothing is allocated per ioctl but a metadata buffer. Data from the device
     * starts zeroed: what the command does not fill must not show what an
     * earlier one left there.
     */
    if (xfer > VNVME_CUSE_RW_MAX) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    void *data = NULL, *meta = NULL, *meta_out = NULL;
    if (x.data_len && (data = vnvme_cuse_xfer_buf(&d->io)) == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (x.data_to_dev) {
        memcpy(data, (const uint8_t *)in_buf + x.arg_in, x.data_len);
        meta = (uint8_t *)(uintptr_t)in_buf + x.arg_in + x.data_len;
    } else {
        if (data)
            memset(data, 0, x.data_len);
        if (x.meta_len && (meta = meta_out = calloc(1, x.meta_len)) == NULL) {
            fuse_reply_err(req, ENOMEM);
            return;
        }
    }
    long ret = vnvme_ioctl_exec(&d->io, ucmd, compat, argbuf, sizeof(argbuf), data, x.data_len, meta, x.meta_len);
    if (ret < 0) {
        fuse_reply_err(req, (int)-ret);
    } else if (need_out == 0) {
        fuse_reply_ioctl(req, (int)ret, NULL, 0);
    } else {
        /* Reply layout = the out iovecs in order: struct, data, metadata. */
        struct iovec reply[3];
        size_t n = add_iov(reply, 0, (uint64_t)(uintptr_t)argbuf, x.arg_out);
        if (!x.data_to_dev) {
            n = add_iov(reply, n, (uint64_t)(uintptr_t)data, x.data_len);
            n = add_iov(reply, n, (uint64_t)(uintptr_t)meta_out, x.meta_len);
        }
        fuse_reply_ioctl_iov(req, (int)ret, reply, (int)n);
    }
    free(meta_out);
}

/*
 * The kernel has created the node (CUSE_INIT's reply, which libfuse has just
 * written, adds the device synchronously), root 0600: give it the set's owner,
 * group and mode.
 */
static void op_init_done(void *userdata)
{
    struct cuse_dev *d = userdata;
    const struct vnvme_cuse_node_perm *p = &d->set->perm;
    char path[80];
    snprintf(path, sizeof(path), "/dev/%s", d->name);
    if (chown(path, p->uid, p->gid) != 0 || chmod(path, p->mode) != 0)
        VNVME_WARN(COMP, "%s: cannot set owner %u, group %u, mode %04o: %s", path, (unsigned)p->uid,
                   (unsigned)p->gid, (unsigned)p->mode, strerror(errno));
}

static const struct cuse_lowlevel_ops cuse_ops = {
    .init_done = op_init_done,
    .open = op_open,
    .release = op_release,
    .read = op_read,
    .write = op_write,
    .ioctl = op_ioctl,
};

/* ---- device lifecycle ---- */

static void wake_handler(int sig)
{
    (void)sig;
}

static void install_wake_handler_once(void)
{
    struct sigaction sa = {.sa_handler = wake_handler}; /* no SA_RESTART: the blocked read() fails with EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(WAKE_SIGNAL, &sa, NULL);
}

static void install_wake_handler(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_wake_handler_once);
}

static void *dev_thread(void *arg)
{
    struct cuse_dev *d = arg;
    int rc = fuse_session_loop(d->se);
    if (rc != 0 && !fuse_session_exited(d->se))
        VNVME_WARN(COMP, "/dev/%s: session ended: %d", d->name, rc);
    /* The queue pair belongs to this thread; give it back here. */
    vnvme_cuse_ioctl_dev_fini(&d->io);
    return NULL;
}

static int dev_start(struct vnvme_cuse_set *s, uint32_t nsid, struct cuse_dev **out)
{
    struct cuse_dev *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return -ENOMEM;
    d->set = s;
    d->io.cc = &s->cc;
    d->io.nsid = nsid;
    if (nsid)
        snprintf(d->name, sizeof(d->name), "vnvme/nvme%dn%u", s->index, nsid);
    else
        snprintf(d->name, sizeof(d->name), "vnvme/nvme%d", s->index);
    char devname[80];
    snprintf(devname, sizeof(devname), "DEVNAME=%s", d->name);
    const char *dev_info[] = {devname};
    struct cuse_info ci = {.dev_info_argc = 1, .dev_info_argv = dev_info, .flags = CUSE_UNRESTRICTED_IOCTL};
    char *argv[] = {(char *)"vnvmed", NULL};
    struct fuse_args args = FUSE_ARGS_INIT(1, argv);
    int rc = -ENODEV;
    d->se = cuse_lowlevel_new(&args, &ci, &cuse_ops, d);
    fuse_opt_free_args(&args);
    if (d->se == NULL)
        goto fail;
    int fd = open(CUSE_DEV_PATH, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    char mnt[32];
    snprintf(mnt, sizeof(mnt), "/dev/fd/%d", fd);
    if (fuse_session_mount(d->se, mnt) != 0) { /* takes over fd */
        close(fd);
        goto fail;
    }
    install_wake_handler();
    rc = -pthread_create(&d->thread, NULL, dev_thread, d);
    if (rc)
        goto fail;
    VNVME_NOTICE(COMP, "/dev/%s created", d->name);
    *out = d;
    return 0;
fail:
    VNVME_ERR(COMP, "/dev/%s: cannot create the CUSE device: %s", d->name, strerror(-rc));
    if (d->se)
        fuse_session_destroy(d->se);
    free(d);
    return rc;
}

static void dev_stop(struct cuse_dev *d)
{
    fuse_session_exit(d->se);
    pthread_kill(d->thread, WAKE_SIGNAL);
    pthread_join(d->thread, NULL);
    fuse_session_destroy(d->se); /* closes /dev/cuse: the kernel removes the device node */
    VNVME_NOTICE(COMP, "/dev/%s removed", d->name);
    free(d);
}

/* Active NSIDs, read under the lock (the list changes only under the write lock). */
static uint32_t active_nsids(struct vnvme_cuse_set *s, uint32_t **out)
{
    uint32_t n = 0, cap = 0;
    uint32_t *ids = NULL;
    pthread_rwlock_rdlock(&s->cc.lock);
    for (struct vnvme_ns *ns = vnvme_ctrlr_first_ns(s->cc.ctrlr); ns; ns = vnvme_ctrlr_next_ns(s->cc.ctrlr, ns)) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            uint32_t *t = realloc(ids, cap * sizeof(*t));
            if (t == NULL)
                break;
            ids = t;
        }
        ids[n++] = vnvme_ns_id(ns);
    }
    pthread_rwlock_unlock(&s->cc.lock);
    *out = ids;
    return n;
}

void vnvme_cuse_sync_namespaces(struct vnvme_cuse_set *s)
{
    uint32_t *ids;
    uint32_t n = active_nsids(s, &ids);
    for (struct cuse_dev **pp = &s->ns_devs; *pp;) {
        struct cuse_dev *d = *pp;
        bool active = false;
        for (uint32_t i = 0; i < n && !active; i++)
            active = ids[i] == d->io.nsid;
        if (active) {
            pp = &d->next;
            continue;
        }
        pthread_mutex_lock(&s->devs_lock);
        *pp = d->next;
        pthread_mutex_unlock(&s->devs_lock);
        dev_stop(d);
    }
    for (uint32_t i = 0; i < n; i++) {
        bool have = false;
        for (struct cuse_dev *d = s->ns_devs; d && !have; d = d->next)
            have = d->io.nsid == ids[i];
        struct cuse_dev *d;
        if (!have && dev_start(s, ids[i], &d) == 0) {
            pthread_mutex_lock(&s->devs_lock);
            d->next = s->ns_devs;
            s->ns_devs = d;
            pthread_mutex_unlock(&s->devs_lock);
        }
    }
    free(ids);
}

static void request_sync(void *arg)
{
    struct vnvme_cuse_set *s = arg;
    atomic_store(&s->ns_dirty, true);
}

void vnvme_cuse_aer_cb(void *arg, uint32_t cdw0)
{
    (void)cdw0; /* any event may follow a namespace change; a sync with nothing to do is cheap */
    if (arg)
        request_sync(arg);
}

static void *poller_thread(void *arg)
{
    struct vnvme_cuse_set *s = arg;
    while (!atomic_load(&s->stop)) {
        vnvme_cuse_ctrlr_poll(&s->cc);
        if (atomic_exchange(&s->ns_dirty, false))
            vnvme_cuse_sync_namespaces(s);
        usleep(POLL_INTERVAL_US);
    }
    return NULL;
}

int vnvme_cuse_register(struct vnvme_ctrlr *ctrlr, const struct vnvme_cuse_node_perm *perm,
                        struct vnvme_cuse_set **out)
{
    if (perm && (perm->mode & ~07777u))
        return -EINVAL;
    if (!vnvme_cuse_available())
        return -ENODEV;
    struct vnvme_cuse_set *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->perm = perm ? *perm : VNVME_CUSE_NODE_PERM_DEFAULT;
    s->index = claim_index(&s->lock_fd);
    if (s->index < 0) {
        int rc = s->index;
        free(s);
        return rc;
    }
    pthread_mutex_init(&s->devs_lock, NULL);
    vnvme_cuse_ctrlr_init(&s->cc, ctrlr);
    s->cc.ns_changed = request_sync;
    s->cc.ns_changed_arg = s;
    int rc = dev_start(s, 0, &s->ctrlr_dev);
    if (rc)
        goto fail;
    vnvme_cuse_sync_namespaces(s);
    rc = -pthread_create(&s->poller, NULL, poller_thread, s);
    if (rc)
        goto fail;
    *out = s;
    return 0;
fail:
    while (s->ns_devs) {
        struct cuse_dev *d = s->ns_devs;
        s->ns_devs = d->next;
        dev_stop(d);
    }
    if (s->ctrlr_dev)
        dev_stop(s->ctrlr_dev);
    vnvme_cuse_ctrlr_fini(&s->cc);
    pthread_mutex_destroy(&s->devs_lock);
    release_index(s->index, s->lock_fd);
    free(s);
    return rc;
}

void vnvme_cuse_unregister(struct vnvme_cuse_set *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->poller, NULL);
    while (s->ns_devs) {
        struct cuse_dev *d = s->ns_devs;
        s->ns_devs = d->next;
        dev_stop(d);
    }
    dev_stop(s->ctrlr_dev);
    vnvme_cuse_ctrlr_fini(&s->cc);
    pthread_mutex_destroy(&s->devs_lock);
    release_index(s->index, s->lock_fd);
    free(s);
}

struct vnvme_cuse_ctrlr *vnvme_cuse_set_ctrlr(struct vnvme_cuse_set *s)
{
    return &s->cc;
}

int vnvme_cuse_set_index(const struct vnvme_cuse_set *s)
{
    return s->index;
}

int vnvme_cuse_foreach_dev(struct vnvme_cuse_set *s, int (*fn)(void *arg, const char *name, uint32_t nsid),
                           void *arg)
{
    pthread_mutex_lock(&s->devs_lock);
    int rc = fn(arg, s->ctrlr_dev->name, 0);
    for (struct cuse_dev *d = s->ns_devs; d && rc == 0; d = d->next)
        rc = fn(arg, d->name, d->io.nsid);
    pthread_mutex_unlock(&s->devs_lock);
    return rc;
}
