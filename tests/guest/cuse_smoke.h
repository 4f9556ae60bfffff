/* What the guest smoke test's CUSE server and client agree on. */
#ifndef VNVME_TESTS_GUEST_CUSE_SMOKE_H
#define VNVME_TESTS_GUEST_CUSE_SMOKE_H

#include <stdint.h>
#include <linux/ioctl.h>

#define CUSE_SMOKE_DEVNAME "vnvme-smoke"
#define CUSE_SMOKE_READ_TEXT "vnvme-smoke\n"
/* Reads a u32 and writes back the value plus one: in and out data go through the
 * unrestricted-ioctl retry, the path NVMe passthrough needs. */
#define CUSE_SMOKE_IOCTL_INC _IOWR('V', 0x01, uint32_t)

#endif
