/* SPDX-License-Identifier: MIT */
/*
 * `vnvme list [DIR]`: the table nvme-cli's `nvme list` prints, for the CUSE
 * namespace devices in /dev/vnvme (nvme-cli 2.x finds devices through sysfs,
 * where CUSE devices are not NVMe devices). Each device is asked with the
 * kernel's NVMe ioctls like any other user of it would, so the devices of
 * every vnvmed process show up and no RPC socket is needed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nvme_ioctl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "list_format.h"
#include "vnvme/nvme_spec.h"

#define DEFAULT_DIR "/dev/vnvme"

struct dev {
    char path[300];
    unsigned ctrl, ns; /* from the name nvme<ctrl>n<ns>: the listing's order */
    uint32_t nsid;
    struct nvme_id_ctrl id_ctrl;
    struct nvme_id_ns id_ns;
};

/* "nvme<digits>n<digits>" and nothing else (not the controller nvmeN, not nvmeNnMpK or leftovers). */
static bool namespace_name(const char *name, unsigned *ctrl, unsigned *ns)
{
    int end = 0;
    char c1, c2;
    if (sscanf(name, "nvme%c", &c1) != 1 || c1 < '0' || c1 > '9')
        return false;
    if (sscanf(name, "nvme%un%c", ctrl, &c2) != 2 || c2 < '0' || c2 > '9')
        return false;
    return sscanf(name, "nvme%*un%u%n", ns, &end) == 1 && name[end] == '\0';
}

/* Identify (CNS cns) through NVME_IOCTL_ADMIN_CMD: 0, the NVMe status (> 0) or -errno. */
static int identify(int fd, uint32_t nsid, uint32_t cns, void *buf)
{
    struct nvme_admin_cmd cmd = {
        .opcode = NVME_ADMIN_IDENTIFY,
        .nsid = nsid,
        .addr = (uint64_t)(uintptr_t)buf,
        .data_len = 4096,
        .cdw10 = cns,
    };
    int rc = ioctl(fd, NVME_IOCTL_ADMIN_CMD, &cmd);
    return rc < 0 ? -errno : rc;
}

static const char *query_error(int rc, char *buf, size_t size)
{
    if (rc < 0)
        return strerror(-rc);
    snprintf(buf, size, "NVMe status 0x%x", (unsigned)rc);
    return buf;
}

/* Fills d from the device; false with the reason on stderr. */
static bool query(struct dev *d)
{
    char why[32];
    int fd = open(d->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "vnvme: %s: %s\n", d->path, strerror(errno));
        return false;
    }
    int id = ioctl(fd, NVME_IOCTL_ID);
    if (id <= 0) {
        /* ENOTTY: some other character device under this name. */
        fprintf(stderr, "vnvme: %s: not an NVMe namespace (NVME_IOCTL_ID: %s)\n", d->path,
                id < 0 ? strerror(errno) : "no namespace ID");
        close(fd);
        return false;
    }
    d->nsid = (uint32_t)id;
    int rc = identify(fd, 0, NVME_ID_CNS_CTRL, &d->id_ctrl);
    if (rc != 0) {
        fprintf(stderr, "vnvme: %s: Identify Controller: %s\n", d->path, query_error(rc, why, sizeof(why)));
        close(fd);
        return false;
    }
    rc = identify(fd, d->nsid, NVME_ID_CNS_NS, &d->id_ns);
    close(fd);
    if (rc != 0) {
        fprintf(stderr, "vnvme: %s: Identify Namespace %u: %s\n", d->path, d->nsid, query_error(rc, why, sizeof(why)));
        return false;
    }
    return true;
}

static int by_name_numbers(const void *a, const void *b)
{
    const struct dev *x = a, *y = b;
    if (x->ctrl != y->ctrl)
        return x->ctrl < y->ctrl ? -1 : 1;
    return (x->ns > y->ns) - (x->ns < y->ns);
}

/*
 * The namespace character devices in dir, sorted nvme0n1, nvme0n2, nvme1n1...
 * *failed: devices that could not be asked. A missing dir: no devices.
 */
static struct dev *scan(const char *dir, size_t *count, bool *failed)
{
    *count = 0;
    DIR *dp = opendir(dir);
    if (dp == NULL) {
        if (errno != ENOENT) {
            fprintf(stderr, "vnvme: %s: %s\n", dir, strerror(errno));
            *failed = true;
        }
        return NULL;
    }
    struct dev *devs = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        unsigned c, n;
        if (!namespace_name(e->d_name, &c, &n))
            continue;
        if (*count == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            struct dev *nd = realloc(devs, ncap * sizeof(*devs));
            if (nd == NULL) {
                fprintf(stderr, "vnvme: out of memory\n");
                *failed = true;
                break;
            }
            devs = nd;
            cap = ncap;
        }
        struct dev *d = &devs[*count];
        memset(d, 0, sizeof(*d));
        snprintf(d->path, sizeof(d->path), "%s/%s", dir, e->d_name);
        d->ctrl = c;
        d->ns = n;
        struct stat st;
        if (stat(d->path, &st) != 0 || !S_ISCHR(st.st_mode))
            continue; /* not a device: e.g. a stale entry or someone else's file */
        if (query(d))
            (*count)++;
        else
            *failed = true;
    }
    closedir(dp);
    if (*count > 1) /* qsort's array may not be NULL, even empty */
        qsort(devs, *count, sizeof(*devs), by_name_numbers);
    return devs;
}

int cmd_list(int argc, char **argv)
{
    if (!need(argc, 0, 1))
        return 2;
    const char *dir = argc == 1 ? argv[0] : DEFAULT_DIR;
    size_t n = 0;
    bool failed = false;
    struct dev *devs = scan(dir, &n, &failed);
    struct list_row *rows = calloc(n ? n : 1, sizeof(*rows));
    if (rows == NULL) {
        free(devs);
        fprintf(stderr, "vnvme: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        rows[i] = (struct list_row){.node = devs[i].path, .nsid = devs[i].nsid, .ctrl = &devs[i].id_ctrl,
                                    .ns = &devs[i].id_ns};
    list_print(stdout, rows, n);
    free(rows);
    free(devs);
    /* The table still shows every device that answered; the status tells a script some did not. */
    return failed ? 1 : 0;
}
