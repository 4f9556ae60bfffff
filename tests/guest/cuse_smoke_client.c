/*
 * Checks /dev/vnvme-smoke (cuse_smoke) from the guest and prints TAP lines, which
 * scripts/test counts as test cases. Exit status 0 only when every check passed.
 *   cuse_smoke_client [DEVICE]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/nvme_ioctl.h>

#include "cuse_smoke.h"

static int checks;
static int failures;

static void report(int ok, const char *what)
{
    checks++;
    if (!ok)
        failures++;
    printf("%s %d - %s\n", ok ? "ok" : "not ok", checks, what);
}

static void check_nvme_ioctl_id(int fd)
{
    int nsid = ioctl(fd, NVME_IOCTL_ID);

    if (nsid < 0)
        printf("# NVME_IOCTL_ID: %s\n", strerror(errno));
    report(nsid == 1, "NVME_IOCTL_ID returns namespace 1");
}

static void check_ioctl_data_both_ways(int fd)
{
    uint32_t value = 41;
    int rc = ioctl(fd, CUSE_SMOKE_IOCTL_INC, &value);

    if (rc < 0)
        printf("# CUSE_SMOKE_IOCTL_INC: %s\n", strerror(errno));
    report(rc == 0 && value == 42, "unrestricted ioctl copies data in and out");
}

static void check_unknown_ioctl(int fd)
{
    int rc = ioctl(fd, _IO('V', 0x7f));

    report(rc == -1 && errno == ENOTTY, "unknown ioctl fails with ENOTTY");
}

static void check_read(int fd)
{
    static const char expected[] = CUSE_SMOKE_READ_TEXT;
    char buf[64] = { 0 };
    /* CUSE devices are not seekable: plain read, no pread. */
    ssize_t n = read(fd, buf, sizeof(buf) - 1);

    report(n == (ssize_t)strlen(expected) && memcmp(buf, expected, (size_t)n) == 0,
           "read returns the device text");
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "/dev/" CUSE_SMOKE_DEVNAME;
    int fd = open(path, O_RDWR);

    report(fd >= 0, "open the CUSE device");
    if (fd < 0) {
        printf("# open %s: %s\n", path, strerror(errno));
        return 1;
    }
    check_nvme_ioctl_id(fd);
    check_ioctl_data_both_ways(fd);
    check_unknown_ioctl(fd);
    check_read(fd);
    close(fd);
    return failures ? 1 : 0;
}
