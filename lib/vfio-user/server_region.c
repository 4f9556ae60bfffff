/* SPDX-License-Identifier: MIT */
/* Regions: description, GET_REGION_INFO (with sparse mmap capability), REGION_READ/WRITE. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "server_internal.h"

#define KNOWN_DESC_FLAGS (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP)

static bool page_aligned(uint64_t v)
{
    return (v & (SRV_PAGE_SIZE - 1)) == 0;
}

static int check_desc(const struct vfio_user_region_desc *d)
{
    if (d->flags & ~KNOWN_DESC_FLAGS)
        return -EINVAL;
    if ((d->flags & (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE)) && !d->access)
        return -EINVAL;
    if (d->nr_sparse > VFIO_USER_MAX_SPARSE_AREAS)
        return -EINVAL;
    if (d->mmap_fd < 0) {
        if (d->nr_sparse)
            return -EINVAL; /* sparse areas describe what can be mapped from the fd */
        return 0;
    }
    if (!page_aligned(d->mmap_offset) || !page_aligned(d->size) || d->size == 0)
        return -EINVAL;
    for (uint32_t i = 0; i < d->nr_sparse; i++) {
        const struct vfio_user_sparse_area *a = &d->sparse[i];
        if (a->size == 0 || !page_aligned(a->offset) || !page_aligned(a->size))
            return -EINVAL;
        if (a->offset > d->size || a->size > d->size - a->offset)
            return -EINVAL;
    }
    return 0;
}

int vfio_user_server_setup_region(struct vfio_user_server *s, uint32_t index, const struct vfio_user_region_desc *desc)
{
    if (!s || !desc || index >= s->num_regions)
        return -EINVAL;
    int rc = check_desc(desc);
    if (rc)
        return rc;
    int fd = -1;
    if (desc->mmap_fd >= 0) {
        fd = fcntl(desc->mmap_fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
    }
    struct srv_region *r = &s->regions[index];
    if (r->desc.mmap_fd >= 0)
        close(r->desc.mmap_fd);
    r->desc = *desc;
    r->desc.flags &= ~VFIO_REGION_INFO_FLAG_MMAP;
    r->desc.mmap_fd = fd;
    r->set = true;
    return 0;
}

void srv_regions_free(struct vfio_user_server *s)
{
    for (uint32_t i = 0; i < s->num_regions; i++)
        if (s->regions[i].desc.mmap_fd >= 0)
            close(s->regions[i].desc.mmap_fd);
    free(s->regions);
    s->regions = NULL;
}

void srv_handle_region_info(struct vfio_user_server *s, struct vfio_user_msg *m)
{
    struct vfio_region_info in;
    if (m->len < sizeof(in)) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    memcpy(&in, m->payload, sizeof(in));
    if (in.argsz < sizeof(in) || in.index >= s->num_regions) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    const struct srv_region *r = &s->regions[in.index];
    struct vfio_region_info out = {.argsz = sizeof(out), .index = in.index};
    /* A client that takes no fds cannot map anything; it gets plain read/write regions. */
    bool mappable = r->set && r->desc.mmap_fd >= 0 && s->peer.max_msg_fds > 0;
    if (r->set) {
        out.flags = r->desc.flags;
        out.size = r->desc.size;
        out.offset = r->desc.mmap_offset;
    }
    uint8_t cap[sizeof(struct vfio_region_info_cap_sparse_mmap) +
                VFIO_USER_MAX_SPARSE_AREAS * sizeof(struct vfio_region_sparse_mmap_area)];
    size_t cap_len = 0;
    if (mappable) {
        out.flags |= VFIO_REGION_INFO_FLAG_MMAP;
        if (r->desc.nr_sparse) {
            struct vfio_region_info_cap_sparse_mmap hdr = {
                .header = {.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP, .version = 1, .next = 0},
                .nr_areas = r->desc.nr_sparse,
            };
            memcpy(cap, &hdr, sizeof(hdr));
            cap_len = sizeof(hdr);
            for (uint32_t i = 0; i < r->desc.nr_sparse; i++) {
                struct vfio_region_sparse_mmap_area a = {.offset = r->desc.sparse[i].offset,
                                                         .size = r->desc.sparse[i].size};
                memcpy(cap + cap_len, &a, sizeof(a));
                cap_len += sizeof(a);
            }
        }
    }
    out.argsz = (uint32_t)(sizeof(out) + cap_len);
    struct iovec iov[2] = {{&out, sizeof(out)}, {cap, cap_len}};
    int iovcnt = 1;
    /*
     * Short argsz: report the size needed, and no chain and no FLAG_CAPS. The
     * kernel would set FLAG_CAPS with cap_offset 0 here, but QEMU's vfio-user
     * client refuses that reply (it wants cap_offset within the struct's end
     * and argsz whenever FLAG_CAPS is set), and asks with a 32-byte argsz first.
     */
    if (cap_len && in.argsz >= out.argsz) {
        out.flags |= VFIO_REGION_INFO_FLAG_CAPS;
        out.cap_offset = sizeof(out);
        iovcnt = 2;
    }
    int fd = r->desc.mmap_fd;
    srv_reply(s, &m->hdr, iov, iovcnt, mappable ? &fd : NULL, mappable ? 1 : 0);
}

void srv_handle_region_access(struct vfio_user_server *s, struct vfio_user_msg *m, bool is_write)
{
    struct vfio_user_region_access ra;
    if (m->len < sizeof(ra)) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    memcpy(&ra, m->payload, sizeof(ra));
    size_t expect = sizeof(ra) + (is_write ? (size_t)ra.count : 0);
    uint32_t need_flag = is_write ? VFIO_REGION_INFO_FLAG_WRITE : VFIO_REGION_INFO_FLAG_READ;
    if (m->len != expect || ra.count == 0 || ra.count > s->max_data_xfer_size || ra.region >= s->num_regions) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    const struct srv_region *r = &s->regions[ra.region];
    if (!r->set || !(r->desc.flags & need_flag) || !r->desc.access || ra.offset > r->desc.size ||
        ra.count > r->desc.size - ra.offset) {
        srv_reply_err(s, &m->hdr, EINVAL);
        return;
    }
    uint8_t *buf = m->payload + sizeof(ra);
    uint8_t *rbuf = NULL;
    if (!is_write) {
        rbuf = malloc(ra.count);
        if (!rbuf) {
            srv_reply_err(s, &m->hdr, ENOMEM);
            return;
        }
        memset(rbuf, 0, ra.count);
        buf = rbuf;
    }
    ssize_t n = r->desc.access(r->desc.ctx, buf, ra.count, ra.offset, is_write);
    if (n < 0) {
        srv_reply_err(s, &m->hdr, n < -4095 ? EIO : (int)-n);
    } else if ((size_t)n != ra.count) {
        srv_reply_err(s, &m->hdr, EIO);
    } else {
        struct iovec iov[2] = {{&ra, sizeof(ra)}, {buf, is_write ? 0 : ra.count}};
        srv_reply(s, &m->hdr, iov, is_write ? 1 : 2, NULL, 0);
    }
    free(rbuf);
}
