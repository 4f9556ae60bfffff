/*
 * A minimal CUSE character device, /dev/vnvme-smoke, that proves the guest harness can run
 * a libfuse3 CUSE server: read() returns a fixed text, NVME_IOCTL_ID answers namespace 1,
 * and CUSE_SMOKE_IOCTL_INC exercises the unrestricted-ioctl retry with data both ways.
 * Runs in the foreground until killed.
 */
#define FUSE_USE_VERSION 31
#include <cuse_lowlevel.h>
#include <fuse_lowlevel.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <linux/nvme_ioctl.h>

#include "cuse_smoke.h"

static void smoke_open(fuse_req_t req, struct fuse_file_info *fi)
{
    fuse_reply_open(req, fi);
}

static void smoke_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi)
{
    static const char text[] = CUSE_SMOKE_READ_TEXT;
    size_t len = sizeof(text) - 1;

    (void)fi;
    if (off < 0 || (size_t)off >= len) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    if (size > len - (size_t)off)
        size = len - (size_t)off;
    fuse_reply_buf(req, text + off, size);
}

/* Unrestricted mode: the kernel cannot know the argument's size, so the first call carries
 * no data and we name the user memory to copy in and out; the retried call brings it. */
static void smoke_ioctl_inc(fuse_req_t req, void *arg, const void *in_buf, size_t in_bufsz,
                            size_t out_bufsz)
{
    uint32_t value;

    if (in_bufsz < sizeof(value) || out_bufsz < sizeof(value)) {
        struct iovec iov = { .iov_base = arg, .iov_len = sizeof(value) };
        fuse_reply_ioctl_retry(req, &iov, 1, &iov, 1);
        return;
    }
    memcpy(&value, in_buf, sizeof(value));
    value++;
    fuse_reply_ioctl(req, 0, &value, sizeof(value));
}

static void smoke_ioctl(fuse_req_t req, int cmd, void *arg, struct fuse_file_info *fi,
                        unsigned int flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
    /* ioctl numbers with the direction bits set are negative as int. */
    unsigned int request = (unsigned int)cmd;

    (void)fi;
    if (flags & FUSE_IOCTL_COMPAT) {
        fuse_reply_err(req, ENOSYS);
        return;
    }
    switch (request) {
    case NVME_IOCTL_ID:
        fuse_reply_ioctl(req, 1, NULL, 0);
        break;
    case CUSE_SMOKE_IOCTL_INC:
        smoke_ioctl_inc(req, arg, in_buf, in_bufsz, out_bufsz);
        break;
    default:
        fuse_reply_err(req, ENOTTY);
        break;
    }
}

int main(int argc, char **argv)
{
    static const char *dev_info[] = { "DEVNAME=" CUSE_SMOKE_DEVNAME };
    const struct cuse_info info = {
        .dev_info_argc = 1,
        .dev_info_argv = dev_info,
        .flags = CUSE_UNRESTRICTED_IOCTL,
    };
    const struct cuse_lowlevel_ops ops = {
        .open = smoke_open,
        .read = smoke_read,
        .ioctl = smoke_ioctl,
    };
    /* Foreground and single-threaded whatever the caller passed: the guest script
     * backgrounds us itself and kills us by pid. */
    char **args = calloc((size_t)argc + 3, sizeof(*args));
    int nargs = 0;

    if (!args) {
        perror("calloc");
        return 1;
    }
    args[nargs++] = argv[0];
    args[nargs++] = "-f";
    args[nargs++] = "-s";
    for (int i = 1; i < argc; i++)
        args[nargs++] = argv[i];

    int rc = cuse_lowlevel_main(nargs, args, &info, &ops, NULL);
    free(args);
    return rc;
}
