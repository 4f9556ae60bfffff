/* SPDX-License-Identifier: MIT */
/* PCI configuration space as a client sees it: region 7 through REGION_READ/WRITE. */
#include <errno.h>

#include "vnvme/vfio_user_client.h"

#define CONFIG VFIO_PCI_CONFIG_REGION_INDEX
#define PCI_CAP_PTR 0x34
/* At most 48 capabilities fit in the 192 bytes after the header: a longer chain is a loop. */
#define MAX_CAPS 48

int vfio_user_client_pci_find_cap(struct vfio_user_client *c, uint8_t cap_id)
{
    uint8_t ptr;
    int rc = vfio_user_client_region_read(c, CONFIG, PCI_CAP_PTR, &ptr, 1);
    for (int i = 0; rc == 0 && ptr >= 0x40 && i < MAX_CAPS; i++) {
        uint8_t hdr[2];
        rc = vfio_user_client_region_read(c, CONFIG, ptr & ~3u, hdr, 2);
        if (rc == 0 && hdr[0] == cap_id)
            return ptr & ~3u;
        ptr = hdr[1];
    }
    return rc < 0 ? rc : -ENOENT;
}

int vfio_user_client_pci_set16(struct vfio_user_client *c, uint64_t offset, uint16_t bits)
{
    uint16_t v;
    int rc = vfio_user_client_region_read(c, CONFIG, offset, &v, 2);
    if (rc)
        return rc;
    v |= bits;
    return vfio_user_client_region_write(c, CONFIG, offset, &v, 2);
}
