/* SPDX-License-Identifier: MIT */
/* vfio-user server: DMA_MAP/DMA_UNMAP and device access to client memory. */
#include <pthread.h>
#include <sys/mman.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "vfio-user/msg.h"
#include "vfio-user/server_internal.h"
#include "vnvme/vfio_user_server.h"

#include "raw_client.h"

struct dma_events {
    int maps;
    int unmaps;
    uint64_t last_iova;
    uint64_t last_size;
    uint8_t first_byte_at_unmap; /* read through the mapping inside the callback */
    bool still_writing;          /* what the callback answers: the device may still write */
    uint8_t *vaddr_at_unmap;
};
static struct dma_events ev;

static void on_dma_map(void *ctx, const struct vfio_user_dma_region *r)
{
    (void)ctx;
    ev.maps++;
    ev.last_iova = r->iova;
    ev.last_size = r->size;
}

static bool on_dma_unmap(void *ctx, const struct vfio_user_dma_region *r)
{
    (void)ctx;
    ev.unmaps++;
    ev.last_iova = r->iova;
    ev.last_size = r->size;
    ev.vaddr_at_unmap = r->vaddr;
    /* Still mapped while the device is told to let go. */
    if (r->vaddr)
        ev.first_byte_at_unmap = *(volatile uint8_t *)r->vaddr;
    return ev.still_writing;
}

static const struct vfio_user_server_ops dma_ops = {.dma_map = on_dma_map, .dma_unmap = on_dma_unmap};

static int dma_map(struct vfio_user_server *s, int cli, uint64_t iova, uint64_t size, uint32_t flags, int fd,
                   uint64_t offset)
{
    struct vfio_user_dma_map m = {.argsz = sizeof(m), .flags = flags, .offset = offset, .addr = iova, .size = size};
    return call(s, cli, VFIO_USER_DMA_MAP, &m, sizeof(m), fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0, NULL);
}

static int dma_unmap(struct vfio_user_server *s, int cli, uint64_t iova, uint64_t size, uint32_t flags)
{
    struct vfio_user_dma_unmap u = {.argsz = sizeof(u), .flags = flags, .addr = iova, .size = size};
    struct reply r;
    int rc = call(s, cli, VFIO_USER_DMA_UNMAP, &u, sizeof(u), NULL, 0, &r);
    if (rc == 0) {
        assert_int_equal(r.len, sizeof(u));
        assert_memory_equal(r.data, &u, sizeof(u));
    }
    return rc;
}

#define RW (VFIO_USER_DMA_F_READ | VFIO_USER_DMA_F_WRITE)

static int new_memfd(size_t size)
{
    int fd = memfd_create("guest", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    return fd;
}

/* A negotiated client with 64 KiB of memory in a memfd, which it maps too. */
struct dma_client {
    struct vfio_user_server *s;
    int cli, memfd;
    uint8_t *guest;
};

static void dma_client_open(struct dma_client *d)
{
    d->s = make_server(&dma_ops, NULL, 0);
    d->cli = attach_client(d->s);
    negotiate(d->s, d->cli);
    memset(&ev, 0, sizeof(ev));
    d->memfd = new_memfd(65536);
    d->guest = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, d->memfd, 0);
    assert_true(d->guest != MAP_FAILED);
}

static void dma_client_close(struct dma_client *d)
{
    munmap(d->guest, 65536);
    close(d->memfd);
    close(d->cli);
    vfio_user_server_destroy(d->s);
}

static void test_dma_map_memfd_read_write(void **state)
{
    (void)state;
    struct dma_client d;
    dma_client_open(&d);
    struct vfio_user_server *s = d.s;
    int cli = d.cli, memfd = d.memfd;
    uint8_t *guest = d.guest;
    /* Window at IOVA 1 MiB covering the memfd's second half. */
    assert_int_equal(dma_map(s, cli, 0x100000, 32768, RW, memfd, 32768), 0);
    assert_int_equal(ev.maps, 1);
    assert_int_equal(ev.last_iova, 0x100000);
    assert_int_equal(ev.last_size, 32768);
    assert_int_equal(vfio_user_dma_table_count(vfio_user_server_dma(s)), 1);

    const char msg[] = "written by the device";
    assert_int_equal(vfio_user_server_dma_write(s, 0x100000 + 100, msg, sizeof(msg)), 0);
    assert_memory_equal(guest + 32768 + 100, msg, sizeof(msg));
    memcpy(guest + 32768 + 5000, "from the guest", 15);
    char buf[15];
    assert_int_equal(vfio_user_server_dma_read(s, 0x100000 + 5000, buf, sizeof(buf)), 0);
    assert_memory_equal(buf, "from the guest", 15);
    /* Out of the window, partly out, unmapped address. */
    assert_int_equal(vfio_user_server_dma_read(s, 0x100000 + 32760, buf, 15), -EFAULT);
    assert_int_equal(vfio_user_server_dma_read(s, 0x5000, buf, 4), -EFAULT);

    /* Read-only window: the device may read, not write. */
    assert_int_equal(dma_map(s, cli, 0x200000, 4096, VFIO_USER_DMA_F_READ, memfd, 0), 0);
    assert_int_equal(vfio_user_server_dma_read(s, 0x200000, buf, 4), 0);
    assert_int_equal(vfio_user_server_dma_write(s, 0x200000, buf, 4), -EACCES);

    /* Unmap: the device is told while the window is still mapped. */
    guest[32768] = 0xab;
    assert_int_equal(dma_unmap(s, cli, 0x100000, 32768, 0), 0);
    assert_int_equal(ev.unmaps, 1);
    assert_int_equal(ev.first_byte_at_unmap, 0xab);
    assert_int_equal(vfio_user_server_dma_read(s, 0x100000, buf, 4), -EFAULT);
    dma_client_close(&d);
}

/*
 * A device that may still write a window when the client unmaps it (an I/O
 * nobody can cancel): the server quarantines the window. A late write through
 * the device's old address lands in the daemon's own memory, never in the
 * client's, and the address is not handed out again.
 */
static void test_dma_unmap_quarantines_a_window_still_written(void **state)
{
    (void)state;
    struct dma_client d;
    dma_client_open(&d);
    memset(d.guest, 0x11, 65536);
    assert_int_equal(dma_map(d.s, d.cli, 0x100000, 65536, RW, d.memfd, 0), 0);
    ev.still_writing = true;
    assert_int_equal(dma_unmap(d.s, d.cli, 0x100000, 65536, 0), 0);
    assert_int_equal(ev.unmaps, 1);
    uint8_t *late = ev.vaddr_at_unmap;
    assert_non_null(late);
    assert_int_equal(vfio_user_dma_table_count(vfio_user_server_dma(d.s)), 0);

    /* The late write: no fault, and the client's memory does not change. */
    memset(late, 0x22, 65536);
    for (size_t i = 0; i < 65536; i++)
        if (d.guest[i] != 0x11)
            fail_msg("byte %zu of the client's memory changed after the unmap", i);
    assert_int_equal(late[65535], 0x22);
    /* A new window gets other addresses. */
    assert_int_equal(dma_map(d.s, d.cli, 0x100000, 65536, RW, d.memfd, 0), 0);
    const struct vfio_user_dma_region *r = vfio_user_dma_table_find(vfio_user_server_dma(d.s), 0x100000);
    assert_non_null(r);
    assert_true((uint8_t *)r->vaddr + 65536 <= late || (uint8_t *)r->vaddr >= late + 65536);
    ev.still_writing = false;
    assert_int_equal(dma_unmap(d.s, d.cli, 0x100000, 65536, 0), 0);
    dma_client_close(&d);
}

static void test_dma_map_errors(void **state)
{
    (void)state;
    struct vfio_user_server_config cfg = {.num_regions = 9, .num_irqs = 5, .max_dma_maps = 2, .ops = &dma_ops};
    int err;
    struct vfio_user_server *s = vfio_user_server_create(&cfg, &err);
    assert_non_null(s);
    int cli = attach_client(s);
    negotiate(s, cli);
    memset(&ev, 0, sizeof(ev));
    int base = count_open_fds();
    int memfd = new_memfd(65536);
    assert_int_equal(dma_map(s, cli, 0x10000, 8192, RW, memfd, 0), 0);
    assert_int_equal(dma_map(s, cli, 0x11000, 8192, RW, memfd, 0), EEXIST); /* overlap */
    assert_int_equal(dma_map(s, cli, 0x20000, 4096, 0, memfd, 0), EINVAL);  /* no access */
    assert_int_equal(dma_map(s, cli, 0x20000, 4096, RW | 4, memfd, 0), EINVAL);
    assert_int_equal(dma_map(s, cli, 0x20000, 0, RW, memfd, 0), EINVAL);
    assert_int_equal(dma_map(s, cli, UINT64_MAX - 4095, 8192, RW, memfd, 0), EINVAL); /* wraps */
    /* Two fds in one DMA_MAP. */
    struct vfio_user_dma_map m = {.argsz = sizeof(m), .flags = RW, .addr = 0x30000, .size = 4096};
    int two[2] = {memfd, memfd};
    assert_int_equal(call(s, cli, VFIO_USER_DMA_MAP, &m, sizeof(m), two, 2, NULL), EINVAL);
    m.argsz = 16;
    assert_int_equal(call(s, cli, VFIO_USER_DMA_MAP, &m, sizeof(m), NULL, 0, NULL), EINVAL);
    assert_int_equal(call(s, cli, VFIO_USER_DMA_MAP, &m, 24, NULL, 0, NULL), EINVAL);
    /* A window without fd; then the table is full. */
    assert_int_equal(dma_map(s, cli, 0x40000, 4096, RW, -1, 0), 0);
    assert_int_equal(dma_map(s, cli, 0x50000, 4096, RW, memfd, 0), ENOSPC);
    assert_int_equal(ev.maps, 2);
    close(memfd);
    /* The server holds exactly one fd: the mapped window's. */
    assert_int_equal(count_open_fds(), base + 1);
    close(cli);
    vfio_user_server_destroy(s);
}

/*
 * A window longer than the file passed with it (what SPDK's initiator sends on
 * DPDK's default hugepage files) is refused with EINVAL, and the log says why
 * at the default level, once per connection: the first refusal is a warning,
 * the next ones are not.
 */
static void test_dma_map_past_file_end_explained_once(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(&dma_ops, NULL, 0);
    int cli = attach_client(s);
    negotiate(s, cli);
    int memfd = new_memfd(2u << 20);
    FILE *log = tmpfile();
    assert_non_null(log);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(log), STDERR_FILENO) >= 0);
    int rc1 = dma_map(s, cli, 0x200000, 4u << 20, RW, memfd, 0);
    int rc2 = dma_map(s, cli, 0x600000, 4u << 20, RW, memfd, 0);
    int rc3 = dma_map(s, cli, 0xa00000, 4096, RW, memfd, (2u << 20) - 2048);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    assert_int_equal(rc1, EINVAL);
    assert_int_equal(rc2, EINVAL);
    assert_int_equal(rc3, EINVAL);
    char text[4096] = {0};
    rewind(log);
    size_t n = fread(text, 1, sizeof(text) - 1, log);
    fclose(log);
    assert_true(n > 0);
    const char *first = strstr(text, "runs past the end of the file passed with it (2097152 bytes)");
    assert_non_null(first);
    assert_non_null(strstr(text, "warn"));
    assert_null(strstr(first + 1, "runs past the end")); /* once per connection */
    /* A new connection is told again. */
    close(cli);
    vfio_user_server_poll(s);
    cli = attach_client(s);
    negotiate(s, cli);
    log = tmpfile();
    fflush(stderr);
    saved = dup(STDERR_FILENO);
    assert_true(dup2(fileno(log), STDERR_FILENO) >= 0);
    assert_int_equal(dma_map(s, cli, 0x200000, 4u << 20, RW, memfd, 0), EINVAL);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    memset(text, 0, sizeof(text));
    rewind(log);
    assert_true(fread(text, 1, sizeof(text) - 1, log) > 0);
    fclose(log);
    assert_non_null(strstr(text, "runs past the end of the file"));
    close(memfd);
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_dma_unmap_variants(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(&dma_ops, NULL, 0);
    int cli = attach_client(s);
    negotiate(s, cli);
    memset(&ev, 0, sizeof(ev));
    int base = count_open_fds();
    int memfd = new_memfd(65536);
    assert_int_equal(dma_map(s, cli, 0x10000, 8192, RW, memfd, 0), 0);
    assert_int_equal(dma_map(s, cli, 0x20000, 8192, RW, memfd, 8192), 0);
    assert_int_equal(dma_map(s, cli, 0x30000, 4096, RW, -1, 0), 0);
    close(memfd);
    /* Inexact unmaps name no window. */
    assert_int_equal(dma_unmap(s, cli, 0x10000, 4096, 0), ENOENT);
    assert_int_equal(dma_unmap(s, cli, 0x11000, 4096, 0), ENOENT);
    assert_int_equal(dma_unmap(s, cli, 0x90000, 4096, 0), ENOENT);
    /* Bad flags; ALL with an address. */
    assert_int_equal(dma_unmap(s, cli, 0x10000, 8192, 1u << 5), EINVAL);
    assert_int_equal(dma_unmap(s, cli, 0x10000, 8192, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP), EINVAL);
    assert_int_equal(dma_unmap(s, cli, 0x10000, 0, VFIO_DMA_UNMAP_FLAG_ALL), EINVAL);
    struct vfio_user_dma_unmap u = {.argsz = 20, .addr = 0x10000, .size = 8192};
    assert_int_equal(call(s, cli, VFIO_USER_DMA_UNMAP, &u, sizeof(u), NULL, 0, NULL), EINVAL);
    assert_int_equal(call(s, cli, VFIO_USER_DMA_UNMAP, &u, 16, NULL, 0, NULL), EINVAL);
    assert_int_equal(ev.unmaps, 0);
    /* Exact. */
    assert_int_equal(dma_unmap(s, cli, 0x10000, 8192, 0), 0);
    assert_int_equal(ev.unmaps, 1);
    assert_int_equal(vfio_user_dma_table_count(vfio_user_server_dma(s)), 2);
    /* All. */
    assert_int_equal(dma_unmap(s, cli, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL), 0);
    assert_int_equal(ev.unmaps, 3);
    assert_int_equal(vfio_user_dma_table_count(vfio_user_server_dma(s)), 0);
    assert_int_equal(count_open_fds(), base);
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_disconnect_unmaps_everything(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(&dma_ops, NULL, 0);
    int base = count_open_fds();
    int cli = attach_client(s);
    negotiate(s, cli);
    memset(&ev, 0, sizeof(ev));
    for (int i = 0; i < 3; i++) {
        int memfd = new_memfd(8192);
        assert_int_equal(dma_map(s, cli, 0x100000 * (uint64_t)(i + 1), 8192, RW, memfd, 0), 0);
        close(memfd);
    }
    assert_int_equal(dma_map(s, cli, 0x900000, 4096, RW, -1, 0), 0);
    close(cli);
    assert_int_equal(vfio_user_server_poll(s), 0);
    assert_false(vfio_user_server_connected(s));
    assert_int_equal(ev.unmaps, 4);
    assert_int_equal(vfio_user_dma_table_count(vfio_user_server_dma(s)), 0);
    assert_int_equal(count_open_fds(), base);
    assert_int_equal(vfio_user_server_dma_read(s, 0x100000, &base, 1), -ENOTCONN);
    /* Reconnect and map again. */
    cli = attach_client(s);
    negotiate(s, cli);
    int memfd = new_memfd(8192);
    assert_int_equal(dma_map(s, cli, 0x100000, 8192, RW, memfd, 0), 0);
    close(memfd);
    uint32_t v = 0xdeadbeef, back = 0;
    assert_int_equal(vfio_user_server_dma_write(s, 0x100000, &v, sizeof(v)), 0);
    assert_int_equal(vfio_user_server_dma_read(s, 0x100000, &back, sizeof(back)), 0);
    assert_int_equal(back, v);
    close(cli);
    vfio_user_server_destroy(s);
    assert_int_equal(count_open_fds(), base);
}

/* ---- fd-less windows: the test thread plays the client's memory ---------- */

struct fake_client {
    int sock;
    uint64_t base;
    uint8_t mem[65536];
    int requests;
    int max_chunk_seen;
    bool send_command_first; /* interleave a command before the first answer */
    bool corrupt_reply;      /* echo a wrong address */
    int flood;               /* commands sent before the first answer */
    uint16_t interleaved_id;
};

static void *fake_client_main(void *arg)
{
    struct fake_client *fc = arg;
    for (;;) {
        struct vfio_user_rx rx;
        vfio_user_rx_init(&rx, 1u << 21, 8);
        int rc = vfio_user_rx_wait(&rx, fc->sock, REPLY_TIMEOUT_MS);
        if (rc != 1) {
            vfio_user_rx_fini(&rx);
            return NULL;
        }
        struct vfio_user_msg *m = &rx.msg;
        if (m->hdr.cmd != VFIO_USER_DMA_READ && m->hdr.cmd != VFIO_USER_DMA_WRITE) {
            vfio_user_rx_fini(&rx);
            continue;
        }
        struct vfio_user_dma_access da;
        memcpy(&da, m->payload, sizeof(da));
        fc->requests++;
        if ((int)da.count > fc->max_chunk_seen)
            fc->max_chunk_seen = (int)da.count;
        if (fc->send_command_first && fc->requests == 1) {
            struct vfio_user_device_info di = {.argsz = sizeof(di)};
            struct vfio_user_header h = {.msg_id = fc->interleaved_id, .cmd = VFIO_USER_DEVICE_GET_INFO,
                                         .msg_size = sizeof(h) + sizeof(di)};
            struct iovec iov = {&di, sizeof(di)};
            vfio_user_send_all(fc->sock, &h, &iov, 1, NULL, 0, REPLY_TIMEOUT_MS);
        }
        for (int i = 0; i < fc->flood && fc->requests == 1; i++) {
            struct vfio_user_header h = {.msg_id = (uint16_t)i, .cmd = VFIO_USER_DEVICE_RESET, .msg_size = sizeof(h)};
            vfio_user_send_all(fc->sock, &h, NULL, 0, NULL, 0, REPLY_TIMEOUT_MS);
        }
        uint64_t off = da.addr - fc->base;
        struct vfio_user_dma_access echo = da;
        if (fc->corrupt_reply)
            echo.addr += 1;
        struct vfio_user_header h;
        uint8_t wr[12];
        struct iovec iov[2] = {{&echo, sizeof(echo)}, {fc->mem + off, 0}};
        if (m->hdr.cmd == VFIO_USER_DMA_READ) {
            iov[1].iov_len = da.count;
            vfio_user_reply_header(&h, &m->hdr, (uint32_t)(sizeof(echo) + da.count), 0);
        } else {
            /* The spec's DMA_WRITE reply: address (8 bytes) and a 4-byte count. */
            memcpy(fc->mem + off, m->payload + sizeof(da), da.count);
            uint32_t count32 = (uint32_t)echo.count;
            memcpy(wr, &echo.addr, 8);
            memcpy(wr + 8, &count32, 4);
            iov[0] = (struct iovec){wr, sizeof(wr)};
            vfio_user_reply_header(&h, &m->hdr, sizeof(wr), 0);
        }
        vfio_user_send_all(fc->sock, &h, iov, 2, NULL, 0, REPLY_TIMEOUT_MS);
        vfio_user_rx_fini(&rx);
    }
}

static void test_dma_by_message(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(&dma_ops, NULL, 0);
    int cli = attach_client(s);
    negotiate_caps(s, cli, "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":4096}}");
    assert_int_equal(dma_map(s, cli, 0x100000, 65536, RW, -1, 0), 0);

    static struct fake_client fc;
    memset(&fc, 0, sizeof(fc));
    fc.sock = cli;
    fc.base = 0x100000;
    fc.send_command_first = true;
    fc.interleaved_id = 4242;
    for (size_t i = 0; i < sizeof(fc.mem); i++)
        fc.mem[i] = (uint8_t)(i * 7);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fake_client_main, &fc), 0);
    static uint8_t buf[10000];
    assert_int_equal(vfio_user_server_dma_read(s, 0x100000 + 100, buf, sizeof(buf)), 0);
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], (uint8_t)((i + 100) * 7));
    assert_int_equal(fc.requests, 3); /* 4096 + 4096 + 1808: the client's limit */
    assert_int_equal(fc.max_chunk_seen, 4096);
    /* The command sent during the wait was parked, not handled yet. */
    assert_int_equal(s->queue_len, 1);
    memset(buf, 0x3c, sizeof(buf));
    assert_int_equal(vfio_user_server_dma_write(s, 0x100000 + 30000, buf, 5000), 0);
    assert_int_equal(fc.requests, 5);
    for (size_t i = 0; i < 5000; i++)
        assert_int_equal(fc.mem[30000 + i], 0x3c);
    /* Stop the thread: shut its reading side down. */
    shutdown(cli, SHUT_RD);
    pthread_join(t, NULL);
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_parked_command_answered_by_poll(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(&dma_ops, NULL, 0);
    int cli = attach_client(s);
    negotiate(s, cli);
    assert_int_equal(dma_map(s, cli, 0x100000, 65536, RW, -1, 0), 0);
    static struct fake_client fc;
    memset(&fc, 0, sizeof(fc));
    fc.sock = cli;
    fc.base = 0x100000;
    fc.send_command_first = true;
    fc.interleaved_id = 777;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fake_client_main, &fc), 0);
    uint32_t v;
    assert_int_equal(vfio_user_server_dma_read(s, 0x100000, &v, sizeof(v)), 0);
    /* End the thread: a shutdown of our reading side gives it EOF. */
    shutdown(cli, SHUT_RD);
    pthread_join(t, NULL);
    assert_int_equal(s->queue_len, 1);
    assert_int_equal(vfio_user_server_poll(s), 1);
    assert_int_equal(s->queue_len, 0);
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_dma_bad_reply_fails(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(&dma_ops, NULL, 0);
    int cli = attach_client(s);
    negotiate(s, cli);
    assert_int_equal(dma_map(s, cli, 0x100000, 65536, RW, -1, 0), 0);
    static struct fake_client fc;
    memset(&fc, 0, sizeof(fc));
    fc.sock = cli;
    fc.base = 0x100000;
    fc.corrupt_reply = true;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fake_client_main, &fc), 0);
    uint32_t v;
    assert_int_equal(vfio_user_server_dma_read(s, 0x100000, &v, sizeof(v)), -EPROTO);
    pthread_join(t, NULL); /* the server shut the connection down, the thread sees EOF */
    vfio_user_server_poll(s);
    assert_false(vfio_user_server_connected(s));
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_wait_queue_overflow_disconnects(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(&dma_ops, NULL, 0);
    int cli = attach_client(s);
    negotiate(s, cli);
    assert_int_equal(dma_map(s, cli, 0x100000, 65536, RW, -1, 0), 0);
    static struct fake_client fc;
    memset(&fc, 0, sizeof(fc));
    fc.sock = cli;
    fc.base = 0x100000;
    fc.flood = SRV_QUEUE_MAX_MSGS + 1;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fake_client_main, &fc), 0);
    uint32_t v;
    assert_int_equal(vfio_user_server_dma_read(s, 0x100000, &v, sizeof(v)), -ECONNRESET);
    pthread_join(t, NULL);
    memset(&ev, 0, sizeof(ev));
    vfio_user_server_poll(s);
    assert_false(vfio_user_server_connected(s));
    assert_int_equal(ev.unmaps, 1);
    close(cli);
    vfio_user_server_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dma_map_memfd_read_write),
        cmocka_unit_test(test_dma_unmap_quarantines_a_window_still_written),
        cmocka_unit_test(test_dma_map_errors),
        cmocka_unit_test(test_dma_map_past_file_end_explained_once),
        cmocka_unit_test(test_dma_unmap_variants),
        cmocka_unit_test(test_disconnect_unmaps_everything),
        cmocka_unit_test(test_dma_by_message),
        cmocka_unit_test(test_parked_command_answered_by_poll),
        cmocka_unit_test(test_dma_bad_reply_fails),
        cmocka_unit_test(test_wait_queue_overflow_disconnects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
