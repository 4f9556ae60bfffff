/* SPDX-License-Identifier: MIT */
/* vfio-user server: region description, GET_REGION_INFO, REGION_READ/WRITE. */
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

#include "vfio-user/server_internal.h"
#include "vnvme/vfio_user_server.h"

#include "raw_client.h"

/* A 4 KiB read/write register file that records the last access. */
struct regs {
    uint8_t mem[4096];
    uint64_t last_offset;
    size_t last_count;
    bool last_write;
    int calls;
    ssize_t force; /* != 0: return this instead */
};

static ssize_t regs_access(void *ctx, uint8_t *buf, size_t count, uint64_t offset, bool is_write)
{
    struct regs *r = ctx;
    r->calls++;
    r->last_offset = offset;
    r->last_count = count;
    r->last_write = is_write;
    if (r->force)
        return r->force;
    assert_true(offset + count <= sizeof(r->mem));
    if (is_write)
        memcpy(r->mem + offset, buf, count);
    else
        memcpy(buf, r->mem + offset, count);
    return (ssize_t)count;
}

static struct regs regs;

static void setup_regs_region(struct vfio_user_server *s, uint32_t index, uint32_t flags)
{
    struct vfio_user_region_desc d = {
        .size = sizeof(regs.mem), .flags = flags, .access = regs_access, .ctx = &regs, .mmap_fd = -1};
    assert_int_equal(vfio_user_server_setup_region(s, index, &d), 0);
}

static int region_read(struct vfio_user_server *s, int cli, uint32_t region, uint64_t offset, uint32_t count,
                       struct reply *r)
{
    struct vfio_user_region_access ra = {.offset = offset, .region = region, .count = count};
    return call(s, cli, VFIO_USER_REGION_READ, &ra, sizeof(ra), NULL, 0, r);
}

static int region_write(struct vfio_user_server *s, int cli, uint32_t region, uint64_t offset, const void *data,
                        uint32_t count, struct reply *r)
{
    uint8_t buf[16 + 512];
    struct vfio_user_region_access ra = {.offset = offset, .region = region, .count = count};
    memcpy(buf, &ra, sizeof(ra));
    memcpy(buf + sizeof(ra), data, count);
    return call(s, cli, VFIO_USER_REGION_WRITE, buf, sizeof(ra) + count, NULL, 0, r);
}

static void test_setup_region_validation(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(NULL, NULL, 0);
    int memfd = memfd_create("bar", MFD_CLOEXEC);
    assert_true(memfd >= 0);
    assert_int_equal(ftruncate(memfd, 16384), 0);
    struct vfio_user_region_desc d = {.size = 16384, .flags = VFIO_REGION_INFO_FLAG_READ, .mmap_fd = -1};
    assert_int_equal(vfio_user_server_setup_region(s, 0, &d), -EINVAL); /* no callback */
    d.access = regs_access;
    assert_int_equal(vfio_user_server_setup_region(s, VFIO_USER_PCI_NUM_REGIONS, &d), -EINVAL);
    d.mmap_fd = memfd;
    d.nr_sparse = 1;
    d.sparse[0] = (struct vfio_user_sparse_area){.offset = 8192, .size = 12288}; /* past the end */
    assert_int_equal(vfio_user_server_setup_region(s, 0, &d), -EINVAL);
    d.sparse[0] = (struct vfio_user_sparse_area){.offset = 100, .size = 4096}; /* unaligned */
    assert_int_equal(vfio_user_server_setup_region(s, 0, &d), -EINVAL);
    d.sparse[0] = (struct vfio_user_sparse_area){.offset = UINT64_MAX - 4095, .size = 8192}; /* wraps */
    assert_int_equal(vfio_user_server_setup_region(s, 0, &d), -EINVAL);
    d.nr_sparse = VFIO_USER_MAX_SPARSE_AREAS + 1;
    assert_int_equal(vfio_user_server_setup_region(s, 0, &d), -EINVAL);
    d.nr_sparse = 1;
    d.sparse[0] = (struct vfio_user_sparse_area){.offset = 8192, .size = 8192};
    assert_int_equal(vfio_user_server_setup_region(s, 0, &d), 0);
    /* The server keeps its own copy of the fd. */
    close(memfd);
    assert_true(s->regions[0].desc.mmap_fd >= 0);
    assert_true(fd_is_open(s->regions[0].desc.mmap_fd));
    vfio_user_server_destroy(s);
}

static void test_region_info_plain_and_unset(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(NULL, NULL, 0);
    setup_regs_region(s, 0, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE);
    int cli = attach_client(s);
    negotiate(s, cli);
    struct vfio_region_info ri = {.argsz = sizeof(ri), .index = 0};
    struct reply r;
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0, &r), 0);
    assert_int_equal(r.len, sizeof(ri));
    assert_int_equal(r.nfds, 0);
    memcpy(&ri, r.data, sizeof(ri));
    assert_int_equal(ri.argsz, sizeof(ri));
    assert_int_equal(ri.flags, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE);
    assert_int_equal(ri.size, 4096);
    assert_int_equal(ri.index, 0);
    assert_int_equal(ri.cap_offset, 0);
    /* A region never set up. */
    ri = (struct vfio_region_info){.argsz = sizeof(ri), .index = 3};
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0, &r), 0);
    memcpy(&ri, r.data, sizeof(ri));
    assert_int_equal(ri.size, 0);
    assert_int_equal(ri.flags, 0);
    assert_int_equal(ri.index, 3);
    /* Bad requests. */
    ri = (struct vfio_region_info){.argsz = sizeof(ri), .index = VFIO_USER_PCI_NUM_REGIONS};
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0, NULL), EINVAL);
    ri = (struct vfio_region_info){.argsz = 31, .index = 0};
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0, NULL), EINVAL);
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, 16, NULL, 0, NULL), EINVAL);
    close(cli);
    vfio_user_server_destroy(s);
}

static void setup_mappable_region(struct vfio_user_server *s, int *memfd_out)
{
    int memfd = memfd_create("bar0", MFD_CLOEXEC);
    assert_true(memfd >= 0);
    assert_int_equal(ftruncate(memfd, 16384), 0);
    struct vfio_user_region_desc d = {
        .size = 16384,
        .flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
        .access = regs_access,
        .ctx = &regs,
        .mmap_fd = memfd,
        .mmap_offset = 0,
        .nr_sparse = 2,
        .sparse = {{.offset = 4096, .size = 4096}, {.offset = 12288, .size = 4096}},
    };
    assert_int_equal(vfio_user_server_setup_region(s, 0, &d), 0);
    *memfd_out = memfd;
}

static void test_region_info_sparse_cap_and_fd(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(NULL, NULL, 0);
    int memfd;
    setup_mappable_region(s, &memfd);
    int cli = attach_client(s);
    negotiate(s, cli);
    struct vfio_region_info ri = {.argsz = 512, .index = 0};
    struct reply r;
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0, &r), 0);
    size_t cap_len = sizeof(struct vfio_region_info_cap_sparse_mmap) + 2 * sizeof(struct vfio_region_sparse_mmap_area);
    assert_int_equal(r.len, sizeof(ri) + cap_len);
    memcpy(&ri, r.data, sizeof(ri));
    assert_int_equal(ri.argsz, sizeof(ri) + cap_len);
    assert_int_equal(ri.flags, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP |
                                   VFIO_REGION_INFO_FLAG_CAPS);
    assert_int_equal(ri.size, 16384);
    assert_int_equal(ri.cap_offset, 32);
    struct vfio_region_info_cap_sparse_mmap cap;
    memcpy(&cap, r.data + ri.cap_offset, sizeof(cap));
    assert_int_equal(cap.header.id, VFIO_REGION_INFO_CAP_SPARSE_MMAP);
    assert_int_equal(cap.header.version, 1);
    assert_int_equal(cap.header.next, 0);
    assert_int_equal(cap.nr_areas, 2);
    struct vfio_region_sparse_mmap_area areas[2];
    memcpy(areas, r.data + ri.cap_offset + sizeof(cap), sizeof(areas));
    assert_int_equal(areas[0].offset, 4096);
    assert_int_equal(areas[0].size, 4096);
    assert_int_equal(areas[1].offset, 12288);
    assert_int_equal(areas[1].size, 4096);
    /* The fd came along and maps the same memory as the device's. */
    assert_int_equal(r.nfds, 1);
    uint8_t *mine = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    uint8_t *theirs = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, r.fds[0], (off_t)(ri.offset + 4096));
    assert_true(mine != MAP_FAILED && theirs != MAP_FAILED);
    theirs[10] = 0x5a;
    assert_int_equal(mine[4096 + 10], 0x5a);
    munmap(mine, 16384);
    munmap(theirs, 4096);
    close_reply_fds(&r);

    /*
     * Short argsz (QEMU's first ask is 32 bytes): argsz says what is needed, and
     * neither FLAG_CAPS nor a cap_offset is set, because QEMU's client fails the
     * device on FLAG_CAPS with a cap_offset outside [32, argsz].
     */
    ri = (struct vfio_region_info){.argsz = 32, .index = 0};
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0, &r), 0);
    assert_int_equal(r.len, 32);
    memcpy(&ri, r.data, sizeof(ri));
    assert_int_equal(ri.argsz, 32 + cap_len);
    assert_int_equal(ri.cap_offset, 0);
    assert_false(ri.flags & VFIO_REGION_INFO_FLAG_CAPS);
    assert_true(ri.flags & VFIO_REGION_INFO_FLAG_MMAP);
    close_reply_fds(&r);
    /* One byte short of the chain is still short. */
    ri = (struct vfio_region_info){.argsz = (uint32_t)(32 + cap_len - 1), .index = 0};
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0, &r), 0);
    memcpy(&ri, r.data, sizeof(ri));
    assert_false(ri.flags & VFIO_REGION_INFO_FLAG_CAPS);
    assert_int_equal(ri.cap_offset, 0);
    close_reply_fds(&r);
    close(memfd);
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_region_info_client_without_fds(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(NULL, NULL, 0);
    int memfd;
    setup_mappable_region(s, &memfd);
    int cli = attach_client(s);
    negotiate_caps(s, cli, "{\"capabilities\":{\"max_msg_fds\":0}}");
    struct vfio_region_info ri = {.argsz = 512, .index = 0};
    struct reply r;
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri), NULL, 0, &r), 0);
    assert_int_equal(r.nfds, 0);
    assert_int_equal(r.len, 32);
    memcpy(&ri, r.data, sizeof(ri));
    assert_int_equal(ri.flags, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE);
    close(memfd);
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_region_read_write(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(NULL, NULL, 0);
    memset(&regs, 0, sizeof(regs));
    setup_regs_region(s, 0, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE);
    int cli = attach_client(s);
    negotiate(s, cli);
    struct reply r;
    const char msg[] = "hello, device";
    assert_int_equal(region_write(s, cli, 0, 100, msg, sizeof(msg), &r), 0);
    assert_int_equal(regs.last_offset, 100);
    assert_int_equal(regs.last_count, sizeof(msg));
    assert_true(regs.last_write);
    assert_memory_equal(regs.mem + 100, msg, sizeof(msg));
    struct vfio_user_region_access ra;
    assert_int_equal(r.len, sizeof(ra));
    memcpy(&ra, r.data, sizeof(ra));
    assert_int_equal(ra.offset, 100);
    assert_int_equal(ra.count, sizeof(msg));

    regs.mem[4095] = 0x77;
    assert_int_equal(region_read(s, cli, 0, 4088, 8, &r), 0);
    assert_int_equal(r.len, sizeof(ra) + 8);
    memcpy(&ra, r.data, sizeof(ra));
    assert_int_equal(ra.offset, 4088);
    assert_int_equal(ra.region, 0);
    assert_int_equal(ra.count, 8);
    assert_int_equal(r.data[sizeof(ra) + 7], 0x77);
    assert_false(regs.last_write);
    assert_int_equal(regs.last_offset, 4088);
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_region_access_errors(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(NULL, NULL, 1024);
    memset(&regs, 0, sizeof(regs));
    setup_regs_region(s, 0, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE);
    setup_regs_region(s, 1, VFIO_REGION_INFO_FLAG_READ);
    int cli = attach_client(s);
    negotiate(s, cli);
    uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(region_read(s, cli, 0, 4093, 4, NULL), EINVAL);          /* past the end */
    assert_int_equal(region_read(s, cli, 0, UINT64_MAX - 1, 4, NULL), EINVAL); /* wraps */
    assert_int_equal(region_read(s, cli, 0, 0, 0, NULL), EINVAL);             /* empty */
    assert_int_equal(region_read(s, cli, 0, 0, 2048, NULL), EINVAL);          /* > max_data_xfer_size */
    assert_int_equal(region_read(s, cli, VFIO_USER_PCI_NUM_REGIONS, 0, 4, NULL), EINVAL);
    assert_int_equal(region_read(s, cli, 2, 0, 4, NULL), EINVAL); /* never set up */
    assert_int_equal(region_write(s, cli, 1, 0, data, 4, NULL), EINVAL); /* read-only */
    /* Payload size must match count exactly. */
    struct vfio_user_region_access ra = {.offset = 0, .region = 0, .count = 8};
    uint8_t buf[16 + 8];
    memcpy(buf, &ra, sizeof(ra));
    memcpy(buf + 16, data, 8);
    assert_int_equal(call(s, cli, VFIO_USER_REGION_WRITE, buf, 16 + 4, NULL, 0, NULL), EINVAL);
    assert_int_equal(call(s, cli, VFIO_USER_REGION_READ, buf, 16 + 8, NULL, 0, NULL), EINVAL);
    assert_int_equal(call(s, cli, VFIO_USER_REGION_READ, buf, 12, NULL, 0, NULL), EINVAL);
    assert_int_equal(regs.calls, 0);
    /* Callback failures. */
    regs.force = -EPERM;
    assert_int_equal(region_read(s, cli, 0, 0, 4, NULL), EPERM);
    regs.force = 2; /* short */
    assert_int_equal(region_write(s, cli, 0, 0, data, 4, NULL), EIO);
    regs.force = 0;
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_region_write_no_reply(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(NULL, NULL, 0);
    memset(&regs, 0, sizeof(regs));
    setup_regs_region(s, 0, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE);
    setup_regs_region(s, 1, VFIO_REGION_INFO_FLAG_READ);
    int cli = attach_client(s);
    negotiate(s, cli);
    uint8_t buf[16 + 4] = {0};
    struct vfio_user_region_access ra = {.offset = 8, .region = 0, .count = 4};
    memcpy(buf, &ra, sizeof(ra));
    memcpy(buf + 16, "abcd", 4);
    send_cmd_flags(cli, VFIO_USER_REGION_WRITE, VFIO_USER_F_TYPE_COMMAND | VFIO_USER_F_NO_REPLY, buf, sizeof(buf),
                   NULL, 0);
    ra.region = 1; /* read-only: fails, still no reply */
    memcpy(buf, &ra, sizeof(ra));
    send_cmd_flags(cli, VFIO_USER_REGION_WRITE, VFIO_USER_F_TYPE_COMMAND | VFIO_USER_F_NO_REPLY, buf, sizeof(buf),
                   NULL, 0);
    assert_int_equal(vfio_user_server_poll(s), 2);
    assert_memory_equal(regs.mem + 8, "abcd", 4);
    char b;
    assert_int_equal(recv(cli, &b, 1, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    assert_true(vfio_user_server_connected(s));
    close(cli);
    vfio_user_server_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setup_region_validation),
        cmocka_unit_test(test_region_info_plain_and_unset),
        cmocka_unit_test(test_region_info_sparse_cap_and_fd),
        cmocka_unit_test(test_region_info_client_without_fds),
        cmocka_unit_test(test_region_read_write),
        cmocka_unit_test(test_region_access_errors),
        cmocka_unit_test(test_region_write_no_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
