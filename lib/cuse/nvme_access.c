/* SPDX-License-Identifier: MIT */
/*
 * Who may send what through a CUSE device. The rules are Linux's for its own
 * NVMe devices (see vnvme/nvme_cuse.h), so a device node given to a group of
 * users behaves as /dev/ng0n1 would: nvme-cli run by such a user can identify
 * and read, can write only through a writable open, and cannot reach the
 * controller's administration.
 *
 * The kernel asks capable(CAP_SYS_ADMIN) of the calling task. A FUSE server
 * only learns the caller's pid, so the capability is read from
 * /proc/PID/status, and only when a command needs it: the commands everyone
 * may send cost no lookup. The caller is blocked in its ioctl while we look,
 * so the pid names the same thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/nvme_ioctl.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "vnvme/nvme_cuse.h"
#include "vnvme/nvme_host.h"
#include "vnvme/nvme_spec.h"

#define OPC_FABRICS 0x7fu
#define OPC_VENDOR_START 0x80u
#define ID_CNS_NS_CS_INDEP 0x08u
#define CAP_SYS_ADMIN_BIT 21
/* Command effects an unprivileged command may have: supported, logical block change, UUID selection, scope. */
#define EFFECTS_UUID_SEL (1u << 19)
#define EFFECTS_SCOPE_MASK 0xfff00000u
#define EFFECTS_HARMLESS (NVME_CMD_EFFECTS_CSUPP | NVME_CMD_EFFECTS_LBCC | EFFECTS_UUID_SEL | EFFECTS_SCOPE_MASK)

bool vnvme_nvme_cmd_allowed_unprivileged(bool admin, const struct nvme_sqe *cmd, uint32_t io_effects,
                                         bool open_for_write)
{
    if (cmd->opc >= OPC_VENDOR_START || cmd->opc == OPC_FABRICS)
        return false; /* effects nobody can vouch for */
    if (admin) {
        /* What userspace needs to form I/O commands, and nothing that reveals more. */
        if (cmd->opc != NVME_ADMIN_IDENTIFY)
            return false;
        switch (cmd->cdw10 & 0xffu) {
        case NVME_ID_CNS_NS:
        case NVME_ID_CNS_CTRL:
        case NVME_ID_CNS_CS_NS:
        case NVME_ID_CNS_CS_CTRL:
        case ID_CNS_NS_CS_INDEP:
            return true;
        default:
            return false;
        }
    }
    if (!(io_effects & NVME_CMD_EFFECTS_CSUPP) || (io_effects & ~EFFECTS_HARMLESS))
        return false;
    bool writes = (cmd->opc & 1u) != 0 || (io_effects & NVME_CMD_EFFECTS_LBCC) != 0;
    return !writes || open_for_write;
}

/* The user namespace vnvmed runs in: a capability counts only there, as capable() checks the initial one. */
static bool same_user_ns(int pid)
{
    char path[64];
    struct stat mine, theirs;
    snprintf(path, sizeof(path), "/proc/%d/ns/user", pid);
    if (stat("/proc/self/ns/user", &mine) != 0 || stat(path, &theirs) != 0)
        return false;
    return mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino;
}

bool vnvme_cuse_pid_privileged(int pid)
{
    if (pid <= 0)
        return false; /* a caller FUSE could not name (another pid namespace) */
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    uint64_t eff = 0;
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = sscanf(line, "CapEff: %" SCNx64, &eff) == 1;
    fclose(f);
    return found && (eff >> CAP_SYS_ADMIN_BIT & 1u) && same_user_ns(pid);
}

static bool caller_privileged(struct vnvme_ioctl_caller *caller)
{
    if (caller->privileged < 0)
        caller->privileged = vnvme_cuse_pid_privileged(caller->pid);
    return caller->privileged > 0;
}

static uint32_t io_effects(struct vnvme_cuse_ctrlr *cc, uint8_t opc)
{
    pthread_rwlock_rdlock(&cc->lock);
    uint32_t e = cc->io_effects[opc];
    pthread_rwlock_unlock(&cc->lock);
    return e;
}

int vnvme_ioctl_access(struct vnvme_cuse_ioctl_dev *d, unsigned int cmd, const void *arg, size_t arg_len,
                       struct vnvme_ioctl_caller *caller)
{
    struct nvme_sqe sqe = {0};
    bool admin = false;
    switch (cmd) {
    case NVME_IOCTL_ADMIN_CMD:
    case NVME_IOCTL_ADMIN64_CMD:
    case NVME_IOCTL_IO_CMD:
    case NVME_IOCTL_IO64_CMD: {
        const struct nvme_passthru_cmd *c = arg; /* the two structs agree up to cdw15 */
        if (c == NULL || arg_len < sizeof(*c))
            return -EFAULT;
        admin = cmd == NVME_IOCTL_ADMIN_CMD || cmd == NVME_IOCTL_ADMIN64_CMD;
        sqe.opc = c->opcode;
        sqe.cdw10 = c->cdw10;
        break;
    }
    case NVME_IOCTL_SUBMIT_IO: {
        const struct nvme_user_io *io = arg;
        if (io == NULL || arg_len < sizeof(*io))
            return -EFAULT;
        sqe.opc = io->opcode;
        break;
    }
    case NVME_IOCTL_RESET:
    case NVME_IOCTL_SUBSYS_RESET:
    case NVME_IOCTL_RESCAN:
        return caller_privileged(caller) ? 0 : -EACCES;
    default:
        return 0; /* NVME_IOCTL_ID and the block-size queries: anyone who could open the node */
    }
    uint32_t effects = admin ? 0 : io_effects(d->cc, sqe.opc);
    if (vnvme_nvme_cmd_allowed_unprivileged(admin, &sqe, effects, caller->open_for_write))
        return 0;
    return caller_privileged(caller) ? 0 : -EACCES;
}

void vnvme_cuse_ctrlr_load_effects(struct vnvme_cuse_ctrlr *cc)
{
    memset(cc->io_effects, 0, sizeof(cc->io_effects));
    const struct nvme_id_ctrl *id = vnvme_ctrlr_data(cc->ctrlr);
    if (id != NULL && (id->lpa & NVME_CTRL_LPA_CMD_EFFECTS)) {
        struct nvme_cmd_effects_log *log = vnvme_dma_alloc(cc->ctrlr, sizeof(*log), 4096);
        if (log != NULL) {
            uint32_t numd = sizeof(*log) / 4u - 1u;
            struct nvme_sqe c = {.opc = NVME_ADMIN_GET_LOG_PAGE, .nsid = 0xffffffffu,
                                 .cdw10 = NVME_LOG_COMMAND_EFFECTS | (numd & 0xffffu) << 16, .cdw11 = numd >> 16};
            struct nvme_cqe cpl;
            if (vnvme_ctrlr_admin_sync(cc->ctrlr, &c, log, sizeof(*log), &cpl) == 0 && !vnvme_cpl_is_error(&cpl))
                memcpy(cc->io_effects, log->iocs, sizeof(cc->io_effects));
            vnvme_dma_free(cc->ctrlr, log);
        }
    }
    /*
     * What Linux assumes of the NVM command set whatever the log says: these
     * change logical blocks. Without a log, nothing is marked supported, so
     * unprivileged I/O is refused, as there.
     */
    cc->io_effects[NVME_NVM_WRITE] |= NVME_CMD_EFFECTS_LBCC;
    cc->io_effects[NVME_NVM_WRITE_ZEROES] |= NVME_CMD_EFFECTS_LBCC;
    cc->io_effects[NVME_NVM_WRITE_UNCORRECTABLE] |= NVME_CMD_EFFECTS_LBCC;
}
