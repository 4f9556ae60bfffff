/* SPDX-License-Identifier: MIT */
/*
 * NVMe character devices for nvme-cli, served through CUSE (lib/cuse/).
 *
 * Two layers:
 *  - the ioctl layer (nvme_ioctl.c): the semantics of the Linux NVMe ioctls
 *    (<linux/nvme_ioctl.h>, BLK*) for one controller or namespace device,
 *    given already-fetched buffers. No FUSE in it, so it is tested directly.
 *  - the CUSE layer (cuse_dev.c): /dev/vnvme/nvmeN and nvmeNnM on libfuse3,
 *    the unrestricted-ioctl retry dance, read()/write() on namespaces.
 *
 * Threads: each CUSE device has one request thread (a single-threaded FUSE
 * session loop). That thread owns an I/O queue pair of its own, allocated on
 * its first I/O and polled to completion by the same thread, so I/O needs no
 * queue lock and never runs on (or waits for) a vnvmed reactor. What the
 * threads share is the controller, guarded by vnvme_cuse_ctrlr.lock: I/O takes
 * it for reading; everything that can change the namespace list or re-create
 * queues (admin commands, whose completion processing may deliver a
 * namespace-change event and rescan; reset; subsystem reset; rescan; the AER
 * poller) takes it for writing.
 */
#ifndef VNVME_NVME_CUSE_H
#define VNVME_NVME_CUSE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vnvme_ctrlr;
struct vnvme_qpair;
struct nvme_sqe;

/*
 * The kernel's CUSE caps one ioctl at 32 pages per direction, the argument
 * struct included (and does not negotiate more). Larger requests fail in the
 * kernel with ENOMEM before reaching us; the limits below let the ioctl layer
 * refuse them itself with -EINVAL, so they are also enforced for callers
 * that are not the kernel.
 */
#define VNVME_CUSE_IOCTL_MAX 131072u
/* ADMIN_CMD / IO_CMD: the 72-byte struct travels both ways; data_len + metadata_len at most: */
#define VNVME_CUSE_PASSTHRU_MAX_XFER (VNVME_CUSE_IOCTL_MAX - 72u) /* 131000 */
/* ADMIN64_CMD / IO64_CMD: 80-byte struct. */
#define VNVME_CUSE_PASSTHRU64_MAX_XFER (VNVME_CUSE_IOCTL_MAX - 80u) /* 130992 */
/* SUBMIT_IO: the 48-byte struct only goes in, so a read may fill the whole reply... */
#define VNVME_CUSE_SUBMIT_IO_MAX_READ VNVME_CUSE_IOCTL_MAX /* 131072 */
/* ...while a write (or compare) carries struct + data + metadata in. */
#define VNVME_CUSE_SUBMIT_IO_MAX_WRITE (VNVME_CUSE_IOCTL_MAX - 48u) /* 131024 */
/* read()/write() on a namespace device: FUSE's own request size, also capped. */
#define VNVME_CUSE_RW_MAX VNVME_CUSE_IOCTL_MAX

/* One attached controller as the CUSE devices share it. */
struct vnvme_cuse_ctrlr {
    struct vnvme_ctrlr *ctrlr;
    pthread_rwlock_t lock; /* see the header comment */
    /* Called (outside the lock) after NVME_IOCTL_RESCAN: the CUSE layer re-syncs its namespace devices. */
    void (*ns_changed)(void *arg);
    void *ns_changed_arg;
    /*
     * The I/O command set's Commands Supported and Effects (log page 05h, with
     * what Linux knows of NVM commands added), read at init and after resets:
     * what decides which I/O commands an unprivileged caller may send.
     */
    uint32_t io_effects[256];
};

void vnvme_cuse_ctrlr_init(struct vnvme_cuse_ctrlr *cc, struct vnvme_ctrlr *ctrlr);
void vnvme_cuse_ctrlr_fini(struct vnvme_cuse_ctrlr *cc);
/* Re-read io_effects from the controller (the caller holds the write lock, or nobody shares cc yet). */
void vnvme_cuse_ctrlr_load_effects(struct vnvme_cuse_ctrlr *cc);
/* Poll admin completions and asynchronous events under the write lock (the AER poller). */
int vnvme_cuse_ctrlr_poll(struct vnvme_cuse_ctrlr *cc);

/* One device: the controller (nsid 0) or one namespace. Used by one thread. */
struct vnvme_cuse_ioctl_dev {
    struct vnvme_cuse_ctrlr *cc;
    uint32_t nsid;
    struct vnvme_qpair *qp; /* lazily allocated by the using thread */
    void *xfer;             /* VNVME_CUSE_RW_MAX bytes of DMA-pool memory: every transfer's data, lazily */
};

/*
 * The device's transfer buffer (NULL when out of DMA memory): data placed there
 * moves without a bounce in the driver, and no other user of the device sees it
 * except through the same device.
 */
void *vnvme_cuse_xfer_buf(struct vnvme_cuse_ioctl_dev *d);

/* Free the device's queue pair (from the thread that used it, or after it stopped). */
void vnvme_cuse_ioctl_dev_fini(struct vnvme_cuse_ioctl_dev *d);

/*
 * What moves between the caller's memory and the ioctl. The argument struct
 * (at the ioctl's arg address) is read (arg_in bytes) and written back
 * (arg_out bytes); data and metadata live at user addresses named in it and
 * go one way each.
 */
struct vnvme_ioctl_xfer {
    uint32_t arg_in;
    uint32_t arg_out;
    uint64_t data_addr;
    uint32_t data_len;
    bool data_to_dev; /* else from the device (or no data) */
    uint64_t meta_addr;
    uint32_t meta_len;
};

/*
 * Plan an ioctl. With arg NULL: fills arg_in/arg_out only (what must be
 * fetched first). With the fetched argument (arg_len >= arg_in): fills the
 * data/metadata part and checks every length against the limits above.
 * compat: the caller is a 32-bit process (FUSE_IOCTL_COMPAT): -ENOSYS.
 * Returns 0, or the ioctl's -errno (-ENOTTY unknown, -EINVAL bad, -EFAULT...).
 */
int vnvme_ioctl_plan(struct vnvme_cuse_ioctl_dev *d, unsigned int cmd, bool compat, const void *arg, size_t arg_len,
                     struct vnvme_ioctl_xfer *x);

/*
 * Execute an ioctl. arg: the fetched argument, updated in place (arg_out
 * bytes of it are the reply; needs max(arg_in, arg_out) bytes); data/meta:
 * data_len/meta_len bytes (the plan is redone: buffers smaller than it
 * now asks, e.g. after a format change, give -EINVAL), read when to the
 * device, filled when from it.
 * Returns what ioctl(2) returns: the NVMe status field (>= 0; 0 success) for
 * commands, the NSID for NVME_IOCTL_ID, 0, or -errno.
 */
long vnvme_ioctl_exec(struct vnvme_cuse_ioctl_dev *d, unsigned int cmd, bool compat, void *arg, size_t arg_len,
                      void *data, size_t data_cap, void *meta, size_t meta_cap);

/*
 * Access control, as Linux applies it to its NVMe devices (nvme_cmd_allowed in
 * drivers/nvme/host/ioctl.c): without CAP_SYS_ADMIN a caller may send, as
 * admin commands, only Identify Namespace/Controller (CNS 00h, 01h, 05h, 06h,
 * 08h); as I/O commands, only those the controller lists as supported with no
 * effect beyond changing logical blocks; never a vendor-specific (>= 80h) or
 * fabrics (7Fh) opcode; and a command that writes data or changes logical
 * blocks only through a file opened for writing. Reset, subsystem reset and
 * rescan need CAP_SYS_ADMIN. SUBMIT_IO follows the I/O rule too (the kernel
 * leaves that to the block device's file permissions, which a CUSE node does
 * not have for ioctls).
 */
struct vnvme_ioctl_caller {
    bool open_for_write;
    int pid;        /* the calling thread as FUSE reports it (0: unknown, never privileged) */
    int privileged; /* -1: not known yet, looked up from pid only when a command needs it */
};

/* The rule without the privilege: whether anyone may send cmd (admin or I/O, with the controller's effects). */
bool vnvme_nvme_cmd_allowed_unprivileged(bool admin, const struct nvme_sqe *cmd, uint32_t io_effects,
                                         bool open_for_write);
/* Whether the thread pid holds CAP_SYS_ADMIN in this process's user namespace (read from /proc). */
bool vnvme_cuse_pid_privileged(int pid);
/*
 * 0 when the caller may issue ioctl cmd with the fetched argument arg (NULL
 * for the ioctls that take none), else -EACCES. Call after vnvme_ioctl_plan
 * accepted the argument and before moving any data.
 */
int vnvme_ioctl_access(struct vnvme_cuse_ioctl_dev *d, unsigned int cmd, const void *arg, size_t arg_len,
                       struct vnvme_ioctl_caller *caller);

/*
 * read()/write() on a namespace device at an LBA-aligned offset: the whole blocks of len (less than one
 * block, or an unaligned offset: -EINVAL). Returns bytes or -errno.
 * Data passes through d->xfer; a read with buf NULL leaves it there (the CUSE reply is sent from it).
 */
long vnvme_cuse_ns_rw(struct vnvme_cuse_ioctl_dev *d, bool write, void *buf, size_t len, uint64_t off);

/* ---- CUSE devices (cuse_dev.c) ---- */

struct vnvme_cuse_set;

/*
 * Owner, group and mode of a set's device nodes. The kernel creates them root
 * 0600; vnvmed sets these once each node exists (before that nobody but root
 * can open it, so there is no window with wider access). A udev rule that
 * matches the node may still change them afterwards.
 */
struct vnvme_cuse_node_perm {
    uid_t uid;
    gid_t gid;
    mode_t mode; /* permission bits only */
};
#define VNVME_CUSE_NODE_PERM_DEFAULT ((struct vnvme_cuse_node_perm){.uid = 0, .gid = 0, .mode = 0600})

/* Whether the kernel offers CUSE here (/dev/cuse exists and opens). */
bool vnvme_cuse_available(void);
/*
 * Create /dev/vnvme/nvmeN (N: the first index whose /var/tmp/vnvme_cuse_lock_N
 * this process can lock) and nvmeNnM per active namespace, each served by a
 * thread, with perm's owner, group and mode (NULL: the default). The
 * controller must stay attached until unregister. Returns 0,
 * -ENODEV without CUSE, or -errno.
 */
int vnvme_cuse_register(struct vnvme_ctrlr *ctrlr, const struct vnvme_cuse_node_perm *perm,
                        struct vnvme_cuse_set **out);
void vnvme_cuse_unregister(struct vnvme_cuse_set *s);
/* The shared controller object (for the AER poller) and the controller device index N. */
struct vnvme_cuse_ctrlr *vnvme_cuse_set_ctrlr(struct vnvme_cuse_set *s);
int vnvme_cuse_set_index(const struct vnvme_cuse_set *s);
/* Bring the namespace devices in line with the active namespaces (after an event or a rescan). */
void vnvme_cuse_sync_namespaces(struct vnvme_cuse_set *s);
/* Forward the controller's aer_cb here (arg: the set): namespace-change events sync the devices. */
void vnvme_cuse_aer_cb(void *arg, uint32_t cdw0);
/* Device names "vnvme/nvme0", "vnvme/nvme0n1"...: calls fn for each; stops at a non-zero return. */
int vnvme_cuse_foreach_dev(struct vnvme_cuse_set *s, int (*fn)(void *arg, const char *name, uint32_t nsid),
                           void *arg);

#endif
