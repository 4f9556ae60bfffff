/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the vfio-user server's message handling. The input is
 * a byte stream of messages as a client would send them; it is split by each
 * header's msg_size and sent message by message over a socketpair, with fds
 * attached where a real client would attach them, and the server is polled in
 * between. Everything the server opens for one input must be gone after it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "vfio-user/server_internal.h"

#define MAX_IRQ_FDS 8u
#define DMA_MEMFD_SIZE (64u << 10)

static uint8_t region0[4096];

static ssize_t region0_access(void *ctx, uint8_t *buf, size_t count, uint64_t offset, bool is_write)
{
    (void)ctx;
    if (offset > sizeof(region0) || count > sizeof(region0) - offset)
        abort(); /* the server must have checked this */
    if (is_write)
        memcpy(region0 + offset, buf, count);
    else
        memcpy(buf, region0 + offset, count);
    return (ssize_t)count;
}

static ssize_t region2_access(void *ctx, uint8_t *buf, size_t count, uint64_t offset, bool is_write)
{
    (void)ctx;
    (void)offset;
    if (!is_write)
        memset(buf, 0xa5, count);
    return (ssize_t)count;
}

static int reset_cb(void *ctx, enum vfio_user_reset_reason why)
{
    (void)ctx;
    (void)why;
    return 0;
}

static const struct vfio_user_server_ops fuzz_ops = {.reset = reset_cb};

static struct vfio_user_server *test_device(void)
{
    static struct vfio_user_server *s;
    if (s)
        return s;
    vnvme_log_set_level(VNVME_LOG_ERROR);
    struct vfio_user_server_config cfg = {
        .flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
        .num_regions = VFIO_USER_PCI_NUM_REGIONS,
        .num_irqs = VFIO_USER_PCI_NUM_IRQS,
        .max_data_xfer_size = 65536,
        .max_dma_maps = 16,
        .ops = &fuzz_ops,
    };
    int err;
    s = vfio_user_server_create(&cfg, &err);
    if (!s)
        abort();
    struct vfio_user_region_desc r0 = {.size = sizeof(region0),
                                       .flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
                                       .access = region0_access,
                                       .mmap_fd = -1};
    int memfd = memfd_create("fuzz-bar2", MFD_CLOEXEC);
    if (memfd < 0 || ftruncate(memfd, 16384) < 0)
        abort();
    struct vfio_user_region_desc r2 = {.size = 16384,
                                       .flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
                                       .access = region2_access,
                                       .mmap_fd = memfd,
                                       .nr_sparse = 1,
                                       .sparse = {{.offset = 4096, .size = 8192}}};
    if (vfio_user_server_setup_region(s, 0, &r0) || vfio_user_server_setup_region(s, 2, &r2))
        abort();
    close(memfd);
    if (vfio_user_server_setup_irq(s, VFIO_PCI_INTX_IRQ_INDEX, 1, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE) ||
        vfio_user_server_setup_irq(s, VFIO_PCI_MSI_IRQ_INDEX, 4, VFIO_IRQ_INFO_EVENTFD) ||
        vfio_user_server_setup_irq(s, VFIO_PCI_MSIX_IRQ_INDEX, 16, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE))
        abort();
    return s;
}

/* Read and throw away whatever the server sent, closing fds it passed. */
static void drain(int sock)
{
    uint8_t buf[8192];
    for (;;) {
        union {
            struct cmsghdr align;
            char b[CMSG_SPACE(sizeof(int) * 64)];
        } ctl;
        struct iovec iov = {buf, sizeof(buf)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b)};
        ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n <= 0)
            return;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < nfd; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
                close(fd);
            }
        }
    }
}

static void send_with_fds(int sock, const uint8_t *data, size_t len, const int *fds, size_t nfds)
{
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(sizeof(int) * MAX_IRQ_FDS)];
    } ctl;
    struct iovec iov = {(void *)data, len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        memset(ctl.b, 0, sizeof(ctl.b));
        mh.msg_control = ctl.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    /* A full socket just drops the rest: the server sees a truncated stream, which is a valid input too. */
    (void)sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* fds a well-behaved client would attach to this message. */
static size_t make_fds(const struct vfio_user_header *h, const uint8_t *data, size_t len, int *fds)
{
    if (h->cmd == VFIO_USER_DMA_MAP) {
        int fd = memfd_create("fuzz-dma", MFD_CLOEXEC);
        if (fd < 0)
            return 0;
        if (ftruncate(fd, DMA_MEMFD_SIZE) < 0) {
            close(fd);
            return 0;
        }
        fds[0] = fd;
        return 1;
    }
    if (h->cmd == VFIO_USER_DEVICE_SET_IRQS) {
        /* The count byte of struct vfio_irq_set picks how many eventfds go along. */
        size_t want = len > 16 + 16 ? data[16 + 16] % (MAX_IRQ_FDS + 1) : 0;
        size_t n = 0;
        for (; n < want; n++) {
            fds[n] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (fds[n] < 0)
                break;
        }
        return n;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vfio_user_server *s = test_device();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    if (vfio_user_server_attach_fd(s, sv[0]) < 0)
        abort();
    size_t off = 0;
    while (off < size && vfio_user_server_connected(s)) {
        size_t len = size - off;
        struct vfio_user_header h;
        memset(&h, 0, sizeof(h));
        if (len >= sizeof(h)) {
            memcpy(&h, data + off, sizeof(h));
            if (h.msg_size >= sizeof(h) && h.msg_size < len)
                len = h.msg_size;
        }
        int fds[MAX_IRQ_FDS];
        size_t nfds = len >= sizeof(h) ? make_fds(&h, data + off, len, fds) : 0;
        send_with_fds(sv[1], data + off, len, fds, nfds);
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]);
        vfio_user_server_poll(s);
        drain(sv[1]);
        off += len;
    }
    close(sv[1]);
    /* EOF: disconnect, release everything of this client. */
    for (int i = 0; i < 64 && vfio_user_server_connected(s); i++)
        vfio_user_server_poll(s);
    if (vfio_user_server_connected(s))
        abort();
    return 0;
}
