/* SPDX-License-Identifier: MIT */
/*
 * Client side of device regions: region info with its capability chain,
 * mmap of the areas the server offers, and REGION_READ/REGION_WRITE.
 *
 * The capability chain comes from the server and is walked with every offset
 * checked against the bytes actually received, and a bounded number of
 * steps, so a hostile chain can neither read out of bounds nor loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client_priv.h"
#include "common/log.h"

#define COMP "vfio-user-client"
#define INFO_SIZE sizeof(struct vfio_region_info)
#define MAX_CAPS_WALKED 64
#define MAX_INFO_ATTEMPTS 3
/* QEMU's client asks with the bare struct first and grows to what the reply says. */
#define FIRST_INFO_ASK ((uint32_t)INFO_SIZE)

/*
 * DEVICE_GET_REGION_INFO with argsz growing to what the server says it
 * needs. On success *buf_out (malloc'ed) holds the whole reply payload, the
 * region info first, so cap offsets index it directly.
 */
static int fetch_region_info(struct vfio_user_client *c, uint32_t index, uint8_t **buf_out, size_t *len_out,
                             int *fd_out)
{
    uint32_t ask = FIRST_INFO_ASK;
    for (int attempt = 0; attempt < MAX_INFO_ATTEMPTS; attempt++) {
        struct vfio_region_info req = {.argsz = ask, .index = index};
        struct iovec iov = {.iov_base = &req, .iov_len = sizeof(req)};
        int rc = client_call(c, VFIO_USER_DEVICE_GET_REGION_INFO, 0, &iov, 1, NULL, 0);
        if (rc)
            return rc;
        struct vfio_user_msg *m = &c->rx.msg;
        struct vfio_region_info info;
        if (m->len < INFO_SIZE || m->len > ask) {
            VNVME_ERR(COMP, "region %u info reply of %zu bytes for argsz %u", index, m->len, ask);
            vfio_user_rx_release(&c->rx);
            return -EPROTO;
        }
        memcpy(&info, m->payload, sizeof(info));
        if (info.index != index || info.argsz < INFO_SIZE) {
            vfio_user_rx_release(&c->rx);
            return -EPROTO;
        }
        /*
         * QEMU's client fails the device on a reply that flags a capability
         * chain it does not carry (cap_offset below the struct or past argsz),
         * short replies included: be as strict.
         */
        if ((info.flags & VFIO_REGION_INFO_FLAG_CAPS) &&
            (info.cap_offset < INFO_SIZE || info.cap_offset > info.argsz)) {
            VNVME_ERR(COMP, "region %u info: FLAG_CAPS with cap_offset %u (argsz %u, %zu bytes)", index,
                      info.cap_offset, info.argsz, m->len);
            vfio_user_rx_release(&c->rx);
            return -EPROTO;
        }
        if (info.argsz > ask) {
            vfio_user_rx_release(&c->rx);
            if (info.argsz > CLIENT_MAX_REGION_INFO)
                return -EMSGSIZE;
            ask = info.argsz;
            continue;
        }
        uint8_t *buf = malloc(m->len);
        if (!buf) {
            vfio_user_rx_release(&c->rx);
            return -ENOMEM;
        }
        memcpy(buf, m->payload, m->len);
        *buf_out = buf;
        *len_out = m->len;
        *fd_out = -1;
        if (m->nfds > 0) {
            *fd_out = m->fds[0];
            m->fds[0] = -1; /* ours now; any extra fds are closed by the release */
        }
        vfio_user_rx_release(&c->rx);
        return 0;
    }
    VNVME_ERR(COMP, "region %u info: server keeps asking for a larger argsz", index);
    return -EPROTO;
}

/*
 * caps_buf receives the whole reply payload (region info first, then the
 * capabilities) so that info->cap_offset indexes it directly; the return value
 * is the number of bytes stored there. *fd_out gets the region fd or -1.
 */
int vfio_user_client_region_info(struct vfio_user_client *c, uint32_t index, struct vfio_region_info *info,
                                 uint8_t *caps_buf, size_t caps_buf_len, int *fd_out)
{
    uint8_t *buf;
    size_t len;
    int fd;
    int rc = fetch_region_info(c, index, &buf, &len, &fd);
    if (rc)
        return rc;
    memcpy(info, buf, sizeof(*info));
    size_t copied = 0;
    if (caps_buf) {
        copied = len < caps_buf_len ? len : caps_buf_len;
        memcpy(caps_buf, buf, copied);
    }
    free(buf);
    if (fd_out)
        *fd_out = fd;
    else if (fd >= 0)
        close(fd);
    return (int)copied;
}

/* Mappable areas: filled from the sparse cap, or the whole region. */
struct area_list {
    uint32_t n;
    struct {
        uint64_t offset;
        uint64_t size;
    } a[8];
};

static int take_sparse_cap(const uint8_t *buf, size_t len, size_t off, const struct vfio_region_info *info,
                           struct area_list *out)
{
    struct vfio_region_info_cap_sparse_mmap sp;
    if (len - off < sizeof(sp))
        return -EPROTO;
    memcpy(&sp, buf + off, sizeof(sp));
    size_t room = len - off - sizeof(sp);
    if ((uint64_t)sp.nr_areas * sizeof(struct vfio_region_sparse_mmap_area) > room)
        return -EPROTO;
    out->n = 0;
    for (uint32_t i = 0; i < sp.nr_areas; i++) {
        struct vfio_region_sparse_mmap_area a;
        memcpy(&a, buf + off + sizeof(sp) + (size_t)i * sizeof(a), sizeof(a));
        if (a.offset > info->size || a.size > info->size - a.offset)
            return -EPROTO;
        if (a.size == 0)
            continue;
        if (out->n == sizeof(out->a) / sizeof(out->a[0])) {
            VNVME_WARN(COMP, "region %u: more sparse areas than we map, the rest goes by message", info->index);
            continue;
        }
        out->a[out->n].offset = a.offset;
        out->a[out->n].size = a.size;
        out->n++;
    }
    return 1;
}

/* Returns 1 when a sparse cap was found (areas filled), 0 when none, -EPROTO when malformed. */
static int parse_caps(const uint8_t *buf, size_t len, const struct vfio_region_info *info, struct area_list *out)
{
    if (!(info->flags & VFIO_REGION_INFO_FLAG_CAPS) || info->cap_offset == 0)
        return 0;
    size_t off = info->cap_offset;
    bool found = false;
    for (int steps = 0; steps < MAX_CAPS_WALKED; steps++) {
        struct vfio_info_cap_header h;
        if (off < INFO_SIZE || off > len || len - off < sizeof(h)) {
            VNVME_ERR(COMP, "region %u: capability at %zu outside the %zu-byte reply", info->index, off, len);
            return -EPROTO;
        }
        memcpy(&h, buf + off, sizeof(h));
        if (h.id == VFIO_REGION_INFO_CAP_SPARSE_MMAP && !found) {
            int rc = take_sparse_cap(buf, len, off, info, out);
            if (rc < 0) {
                VNVME_ERR(COMP, "region %u: malformed sparse mmap capability", info->index);
                return rc;
            }
            found = true;
        }
        if (h.next == 0)
            return found ? 1 : 0;
        off = h.next;
    }
    VNVME_ERR(COMP, "region %u: capability chain too long or looping", info->index);
    return -EPROTO;
}

static void map_areas(struct vfio_user_client_region *r, const struct area_list *areas)
{
    int prot = 0;
    if (r->flags & VFIO_REGION_INFO_FLAG_READ)
        prot |= PROT_READ;
    if (r->flags & VFIO_REGION_INFO_FLAG_WRITE)
        prot |= PROT_WRITE;
    r->nr_mmaps = 0;
    if (r->fd < 0 || prot == 0 || !(r->flags & VFIO_REGION_INFO_FLAG_MMAP))
        return;
    for (uint32_t i = 0; i < areas->n; i++) {
        uint64_t off = areas->a[i].offset;
        uint64_t size = areas->a[i].size;
        void *addr = NULL;
        if (r->fd_offset <= (uint64_t)INT64_MAX - off && size <= SIZE_MAX) {
            addr = mmap(NULL, (size_t)size, prot, MAP_SHARED, r->fd, (off_t)(r->fd_offset + off));
            if (addr == MAP_FAILED) {
                VNVME_WARN(COMP, "region %u: mmap of [%#lx, +%#lx) failed: %s, using messages", r->index,
                           (unsigned long)off, (unsigned long)size, strerror(errno));
                addr = NULL;
            }
        }
        r->mmaps[r->nr_mmaps].offset = off;
        r->mmaps[r->nr_mmaps].size = size;
        r->mmaps[r->nr_mmaps].addr = addr;
        r->nr_mmaps++;
    }
}

static struct client_region_entry *find_cached(struct vfio_user_client *c, uint32_t index)
{
    for (struct client_region_entry *e = c->regions; e; e = e->next)
        if (e->r.index == index)
            return e;
    return NULL;
}

const struct vfio_user_client_region *vfio_user_client_region(struct vfio_user_client *c, uint32_t index,
                                                              int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    struct client_region_entry *e = find_cached(c, index);
    if (e) {
        *err = 0;
        return &e->r;
    }
    uint8_t *buf;
    size_t len;
    int fd;
    int rc = fetch_region_info(c, index, &buf, &len, &fd);
    if (rc) {
        *err = rc;
        return NULL;
    }
    struct vfio_region_info info;
    memcpy(&info, buf, sizeof(info));
    struct area_list areas = {0};
    rc = parse_caps(buf, len, &info, &areas);
    free(buf);
    if (rc == 0 && info.size > 0) {
        areas.n = 1;
        areas.a[0].offset = 0;
        areas.a[0].size = info.size;
    }
    if (rc < 0 || !(e = calloc(1, sizeof(*e)))) {
        if (fd >= 0)
            close(fd);
        *err = rc < 0 ? rc : -ENOMEM;
        return NULL;
    }
    e->r.index = index;
    e->r.flags = info.flags;
    e->r.size = info.size;
    e->r.fd_offset = info.offset;
    e->r.fd = fd;
    map_areas(&e->r, &areas);
    e->next = c->regions;
    c->regions = e;
    *err = 0;
    return &e->r;
}

void client_regions_free(struct vfio_user_client *c)
{
    while (c->regions) {
        struct client_region_entry *e = c->regions;
        c->regions = e->next;
        for (uint32_t i = 0; i < e->r.nr_mmaps; i++)
            if (e->r.mmaps[i].addr)
                munmap(e->r.mmaps[i].addr, (size_t)e->r.mmaps[i].size);
        if (e->r.fd >= 0)
            close(e->r.fd);
        free(e);
    }
}

static void *cached_ptr(struct client_region_entry *e, uint64_t offset, uint64_t len)
{
    for (uint32_t i = 0; i < e->r.nr_mmaps; i++) {
        const __typeof__(e->r.mmaps[0]) *m = &e->r.mmaps[i];
        if (!m->addr || offset < m->offset)
            continue;
        uint64_t rel = offset - m->offset;
        if (rel < m->size && len <= m->size - rel)
            return (uint8_t *)m->addr + rel;
    }
    return NULL;
}

/* Only regions already set up by vfio_user_client_region(): no hidden message. */
void *vfio_user_client_region_ptr(struct vfio_user_client *c, uint32_t index, uint64_t offset, uint64_t len)
{
    struct client_region_entry *e = find_cached(c, index);
    return e ? cached_ptr(e, offset, len) : NULL;
}

static uint32_t chunk_size(const struct vfio_user_client *c)
{
    uint32_t n = c->server_caps.max_data_xfer_size;
    return n < CLIENT_MAX_DATA_XFER ? n : CLIENT_MAX_DATA_XFER;
}

/* The reply must be about exactly the access we asked for. */
static bool echoes(const struct vfio_user_msg *m, const struct vfio_user_region_access *req)
{
    struct vfio_user_region_access r;
    if (m->len < sizeof(r))
        return false;
    memcpy(&r, m->payload, sizeof(r));
    return r.offset == req->offset && r.region == req->region && r.count == req->count;
}

int vfio_user_client_region_read(struct vfio_user_client *c, uint32_t index, uint64_t offset, void *buf,
                                 size_t len)
{
    if (len > UINT64_MAX - offset)
        return -EINVAL;
    uint32_t chunk = chunk_size(c);
    size_t done = 0;
    while (done < len) {
        uint32_t n = len - done > chunk ? chunk : (uint32_t)(len - done);
        struct vfio_user_region_access req = {.offset = offset + done, .region = index, .count = n};
        struct iovec iov = {.iov_base = &req, .iov_len = sizeof(req)};
        int rc = client_call(c, VFIO_USER_REGION_READ, 0, &iov, 1, NULL, 0);
        if (rc)
            return rc;
        const struct vfio_user_msg *m = &c->rx.msg;
        if (!echoes(m, &req) || m->len != sizeof(req) + n) {
            VNVME_ERR(COMP, "REGION_READ reply does not match the request");
            vfio_user_rx_release(&c->rx);
            return -EPROTO;
        }
        memcpy((uint8_t *)buf + done, m->payload + sizeof(req), n);
        vfio_user_rx_release(&c->rx);
        done += n;
    }
    return 0;
}

static int region_write(struct vfio_user_client *c, uint32_t index, uint64_t offset, const void *buf, size_t len,
                        uint32_t flags)
{
    if (len > UINT64_MAX - offset)
        return -EINVAL;
    uint32_t chunk = chunk_size(c);
    size_t done = 0;
    while (done < len) {
        uint32_t n = len - done > chunk ? chunk : (uint32_t)(len - done);
        struct vfio_user_region_access req = {.offset = offset + done, .region = index, .count = n};
        struct iovec iov[2] = {{.iov_base = &req, .iov_len = sizeof(req)},
                               {.iov_base = (uint8_t *)buf + done, .iov_len = n}};
        int rc = client_call(c, VFIO_USER_REGION_WRITE, flags, iov, 2, NULL, 0);
        if (rc)
            return rc;
        if (!(flags & VFIO_USER_F_NO_REPLY)) {
            bool ok = echoes(&c->rx.msg, &req);
            vfio_user_rx_release(&c->rx);
            if (!ok) {
                VNVME_ERR(COMP, "REGION_WRITE reply does not match the request");
                return -EPROTO;
            }
        }
        done += n;
    }
    return 0;
}

int vfio_user_client_region_write(struct vfio_user_client *c, uint32_t index, uint64_t offset, const void *buf,
                                  size_t len)
{
    return region_write(c, index, offset, buf, len, 0);
}

int vfio_user_client_region_write_posted(struct vfio_user_client *c, uint32_t index, uint64_t offset,
                                         const void *buf, size_t len)
{
    return region_write(c, index, offset, buf, len, VFIO_USER_F_NO_REPLY);
}

/*
 * Device registers care about access width, so naturally aligned 1/2/4/8
 * byte accesses are done as one load or store of that width.
 */
static void mmio_copy(void *dst, const void *src, size_t len, bool to_device)
{
/* One volatile access of this type on the device side; memcpy on the other, which may be unaligned. */
#define MMIO_COPY_AS(type)                                                                                             \
    do {                                                                                                               \
        type v;                                                                                                        \
        if (to_device) {                                                                                               \
            memcpy(&v, src, sizeof(v));                                                                                \
            *(volatile type *)dst = v;                                                                                 \
        } else {                                                                                                       \
            v = *(const volatile type *)src;                                                                           \
            memcpy(dst, &v, sizeof(v));                                                                                \
        }                                                                                                              \
    } while (0)

    const void *dev = to_device ? dst : src;
    if ((len == 1 || len == 2 || len == 4 || len == 8) && ((uintptr_t)dev & (len - 1)) == 0) {
        switch (len) {
        case 1:
            MMIO_COPY_AS(uint8_t);
            return;
        case 2:
            MMIO_COPY_AS(uint16_t);
            return;
        case 4:
            MMIO_COPY_AS(uint32_t);
            return;
        default:
            MMIO_COPY_AS(uint64_t);
            return;
        }
    }
#undef MMIO_COPY_AS
    memcpy(dst, src, len);
}

int vfio_user_client_region_access(struct vfio_user_client *c, uint32_t index, uint64_t offset, void *buf,
                                   size_t len, bool is_write)
{
    if (len == 0)
        return 0;
    struct client_region_entry *e = find_cached(c, index);
    uint32_t need = is_write ? VFIO_REGION_INFO_FLAG_WRITE : VFIO_REGION_INFO_FLAG_READ;
    /* The mapping's protection follows the region flags; never fault on a read-only map. */
    void *p = (e && (e->r.flags & need)) ? cached_ptr(e, offset, len) : NULL;
    if (p) {
        if (is_write)
            mmio_copy(p, buf, len, true);
        else
            mmio_copy(buf, p, len, false);
        return 0;
    }
    if (is_write)
        return vfio_user_client_region_write(c, index, offset, buf, len);
    return vfio_user_client_region_read(c, index, offset, buf, len);
}
