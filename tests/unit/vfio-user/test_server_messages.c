/* SPDX-License-Identifier: MIT */
/* vfio-user server: listener, VERSION negotiation, device-level commands, broken streams. */
#include <poll.h>
#include <sys/stat.h>
#include <sys/un.h>
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

/* ---- listener ----------------------------------------------------------- */

static void socket_path_for(char *buf, size_t len, const char *tag)
{
    snprintf(buf, len, "/tmp/vnvme-srv-test-%d-%s.sock", (int)getpid(), tag);
}

static struct vfio_user_server *listen_on(const char *path, int *err)
{
    struct vfio_user_server_config cfg = {
        .socket_path = path, .num_regions = VFIO_USER_PCI_NUM_REGIONS, .num_irqs = VFIO_USER_PCI_NUM_IRQS};
    *err = 0;
    return vfio_user_server_create(&cfg, err);
}

static int connect_to(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void test_socket_mode_0600(void **state)
{
    (void)state;
    char path[108];
    socket_path_for(path, sizeof(path), "mode");
    unlink(path);
    mode_t old = umask(0);
    umask(old);
    int err;
    struct vfio_user_server *s = listen_on(path, &err);
    assert_non_null(s);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    /* The process umask is left alone. */
    mode_t now = umask(old);
    assert_int_equal(now, old);
    vfio_user_server_destroy(s);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_stale_socket_replaced(void **state)
{
    (void)state;
    char path[108];
    socket_path_for(path, sizeof(path), "stale");
    unlink(path);
    /* A socket file bound by a listener that is gone: connect gets ECONNREFUSED. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    close(fd);
    assert_int_equal(access(path, F_OK), 0);
    int err;
    struct vfio_user_server *s = listen_on(path, &err);
    assert_non_null(s);
    int c = connect_to(path);
    assert_int_equal(vfio_user_server_poll(s), 0);
    assert_true(vfio_user_server_connected(s));
    close(c);
    vfio_user_server_destroy(s);
}

static void test_live_socket_refused(void **state)
{
    (void)state;
    char path[108];
    socket_path_for(path, sizeof(path), "live");
    unlink(path);
    int err;
    struct vfio_user_server *s1 = listen_on(path, &err);
    assert_non_null(s1);
    struct vfio_user_server *s2 = listen_on(path, &err);
    assert_null(s2);
    assert_int_equal(err, -EADDRINUSE);
    /* The first server's socket is still there and working. */
    int c = connect_to(path);
    vfio_user_server_poll(s1);
    assert_true(vfio_user_server_connected(s1));
    close(c);
    vfio_user_server_destroy(s1);
}

static void test_non_socket_path_refused(void **state)
{
    (void)state;
    char path[108];
    socket_path_for(path, sizeof(path), "file");
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    close(fd);
    int err;
    assert_null(listen_on(path, &err));
    assert_int_equal(err, -EEXIST);
    assert_int_equal(access(path, F_OK), 0); /* not removed */
    unlink(path);
}

static void test_second_client_gets_eof(void **state)
{
    (void)state;
    char path[108];
    socket_path_for(path, sizeof(path), "second");
    unlink(path);
    int err;
    struct vfio_user_server *s = listen_on(path, &err);
    assert_non_null(s);
    int c1 = connect_to(path);
    vfio_user_server_poll(s);
    int c2 = connect_to(path);
    vfio_user_server_poll(s);
    char b;
    struct pollfd p = {.fd = c2, .events = POLLIN};
    assert_int_equal(poll(&p, 1, REPLY_TIMEOUT_MS), 1);
    assert_int_equal(recv(c2, &b, 1, 0), 0);
    close(c2);
    /* The first client still works. */
    negotiate(s, c1);
    struct vfio_user_device_info di = {.argsz = sizeof(di)};
    struct reply r;
    assert_int_equal(call(s, c1, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0, &r), 0);
    close(c1);
    vfio_user_server_poll(s);
    assert_false(vfio_user_server_connected(s));
    /* And a new client is accepted after the first left. */
    int c3 = connect_to(path);
    vfio_user_server_poll(s);
    assert_true(vfio_user_server_connected(s));
    negotiate(s, c3);
    close(c3);
    vfio_user_server_destroy(s);
}

/* ---- VERSION ----------------------------------------------------------- */

static int version_call(struct vfio_user_server *s, int cli, uint16_t major, uint16_t minor, const char *json,
                        struct reply *r)
{
    uint8_t buf[512];
    struct vfio_user_version v = {.major = major, .minor = minor};
    memcpy(buf, &v, sizeof(v));
    size_t jl = json ? strlen(json) + 1 : 0;
    memcpy(buf + sizeof(v), json ? json : "", jl);
    return call(s, cli, VFIO_USER_VERSION, buf, sizeof(v) + jl, NULL, 0, r);
}

static void test_version_negotiation(void **state)
{
    (void)state;
    struct vfio_user_server_config cfg = {.num_regions = 9, .num_irqs = 5, .max_data_xfer_size = 65536,
                                          .max_dma_maps = 77};
    int err;
    struct vfio_user_server *s = vfio_user_server_create(&cfg, &err);
    assert_non_null(s);
    int cli = attach_client(s);
    struct reply r;
    assert_int_equal(version_call(s, cli, 0, 0, "{\"capabilities\":{\"max_msg_fds\":0,\"max_data_xfer_size\":4096}}", &r),
                     0);
    struct vfio_user_version v;
    assert_true(r.len > sizeof(v));
    memcpy(&v, r.data, sizeof(v));
    assert_int_equal(v.major, VFIO_USER_VERSION_MAJOR);
    assert_int_equal(v.minor, 0); /* min(theirs, ours) */
    assert_int_equal(r.data[r.len - 1], '\0');
    struct vfio_user_caps caps;
    assert_int_equal(vfio_user_caps_parse((char *)r.data + sizeof(v), r.len - sizeof(v), &caps), 0);
    assert_int_equal(caps.max_msg_fds, VFIO_USER_MAX_MSG_FDS_LIMIT);
    assert_int_equal(caps.max_data_xfer_size, 65536);
    assert_int_equal(caps.max_dma_maps, 77);
    assert_int_equal(caps.pgsizes, 4096);
    assert_false(caps.twin_socket);
    assert_null(strstr((char *)r.data + sizeof(v), "migration"));
    assert_null(strstr((char *)r.data + sizeof(v), "write_multiple"));
    /* The client's limits are remembered. */
    assert_int_equal(s->peer.max_msg_fds, 0);
    assert_int_equal(s->peer.max_data_xfer_size, 4096);
    /* A second VERSION is refused but the connection stays. */
    assert_int_equal(version_call(s, cli, 0, 1, NULL, &r), EINVAL);
    assert_true(vfio_user_server_connected(s));
    close(cli);
    vfio_user_server_destroy(s);
}

/*
 * The VERSION reply never offers more than 16 fds, and passes every check
 * QEMU's vfio-user-pci makes of it, for the exact request QEMU 10.2 sends
 * (version 0.0): QEMU refused our earlier offer of 64 ("malformed max_msg_fds").
 */
static void test_version_reply_qemu_accepts(void **state)
{
    (void)state;
    static const char qemu_caps[] =
        "{\"capabilities\":{\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":268435456},\"max_msg_fds\":16,"
        "\"max_data_xfer_size\":1048576,\"pgsizes\":4096,\"max_dma_maps\":65535,\"write_multiple\":true}}";
    const uint32_t xfers[] = {0, 4096, VFIO_USER_MAX_DATA_XFER_LIMIT};
    for (size_t i = 0; i < sizeof(xfers) / sizeof(xfers[0]); i++) {
        struct vfio_user_server_config cfg = {.num_regions = 9, .num_irqs = 5, .max_data_xfer_size = xfers[i],
                                              .max_dma_maps = i == 2 ? VFIO_USER_MAX_DMA_MAPS_LIMIT : 0};
        int err;
        struct vfio_user_server *s = vfio_user_server_create(&cfg, &err);
        assert_non_null(s);
        int cli = attach_client(s);
        struct reply r;
        assert_int_equal(version_call(s, cli, 0, 0, qemu_caps, &r), 0);
        struct vfio_user_version v;
        memcpy(&v, r.data, sizeof(v));
        assert_int_equal(v.major, 0);
        assert_int_equal(v.minor, 0);
        struct vfio_user_caps caps;
        const char *data = (const char *)r.data + sizeof(v), *why = NULL;
        assert_int_equal(vfio_user_caps_parse(data, r.len - sizeof(v), &caps), 0);
        assert_true(caps.max_msg_fds <= 16);
        assert_int_equal(vfio_user_caps_check_reply(data, r.len - sizeof(v), sizeof(qemu_caps), &caps, &why), 0);
        assert_null(why);
        close(cli);
        vfio_user_server_destroy(s);
    }
    /* A server that would offer what QEMU refuses is not created at all. */
    struct vfio_user_server_config big = {.num_regions = 9, .num_irqs = 5,
                                          .max_data_xfer_size = VFIO_USER_MAX_DATA_XFER_LIMIT + 1};
    int err = 0;
    assert_null(vfio_user_server_create(&big, &err));
    assert_int_equal(err, -EINVAL);
    big.max_data_xfer_size = 0;
    big.max_dma_maps = VFIO_USER_MAX_DMA_MAPS_LIMIT + 1;
    assert_null(vfio_user_server_create(&big, &err));
    assert_int_equal(err, -EINVAL);
}

static void test_version_higher_minor(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(NULL, NULL, 0);
    int cli = attach_client(s);
    struct reply r;
    assert_int_equal(version_call(s, cli, 0, 7, NULL, &r), 0);
    struct vfio_user_version v;
    memcpy(&v, r.data, sizeof(v));
    assert_int_equal(v.minor, VFIO_USER_VERSION_MINOR);
    assert_int_equal(s->peer.max_msg_fds, VFIO_USER_DEFAULT_MAX_MSG_FDS); /* no caps: spec defaults */
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_version_bad_major(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(NULL, NULL, 0);
    int cli = attach_client(s);
    assert_int_equal(version_call(s, cli, 1, 0, NULL, NULL), EINVAL);
    assert_false(vfio_user_server_connected(s));
    assert_true(peer_closed(cli));
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_version_bad_json(void **state)
{
    (void)state;
    const char *bad[] = {"{\"capabilities\":", "[1,2]", "{\"capabilities\":{\"max_msg_fds\":-1}}",
                         "{\"capabilities\":{\"max_data_xfer_size\":\"big\"}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vfio_user_server *s = make_server(NULL, NULL, 0);
        int cli = attach_client(s);
        assert_int_equal(version_call(s, cli, 0, 1, bad[i], NULL), EINVAL);
        assert_false(vfio_user_server_connected(s));
        close(cli);
        vfio_user_server_destroy(s);
    }
}

static void test_command_before_version(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(NULL, NULL, 0);
    int cli = attach_client(s);
    struct vfio_user_device_info di = {.argsz = sizeof(di)};
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0, NULL), EINVAL);
    assert_true(vfio_user_server_connected(s));
    negotiate(s, cli);
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0, NULL), 0);
    close(cli);
    vfio_user_server_destroy(s);
}

/* ---- device-level commands --------------------------------------------- */

static void test_device_get_info(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(NULL, NULL, 0);
    int cli = attach_client(s);
    negotiate(s, cli);
    struct vfio_user_device_info di = {.argsz = 64};
    struct reply r;
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0, &r), 0);
    assert_int_equal(r.len, sizeof(di));
    memcpy(&di, r.data, sizeof(di));
    assert_int_equal(di.argsz, 16);
    assert_int_equal(di.flags, VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
    assert_int_equal(di.num_regions, VFIO_USER_PCI_NUM_REGIONS);
    assert_int_equal(di.num_irqs, VFIO_USER_PCI_NUM_IRQS);
    di.argsz = 15;
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0, NULL), EINVAL);
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_INFO, &di, 12, NULL, 0, NULL), EINVAL);
    close(cli);
    vfio_user_server_destroy(s);
}

static int reset_calls;
static int reset_result;
static int on_reset(void *ctx, enum vfio_user_reset_reason why)
{
    (void)ctx;
    assert_int_equal(why, VFIO_USER_RESET_CLIENT);
    reset_calls++;
    return reset_result;
}

static void test_device_reset(void **state)
{
    (void)state;
    struct vfio_user_server_ops ops = {.reset = on_reset};
    struct vfio_user_server *s = make_server(&ops, NULL, 0);
    int cli = attach_client(s);
    negotiate(s, cli);
    reset_calls = 0;
    reset_result = 0;
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_RESET, NULL, 0, NULL, 0, NULL), 0);
    assert_int_equal(reset_calls, 1);
    reset_result = -EBUSY;
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_RESET, NULL, 0, NULL, 0, NULL), EBUSY);
    uint32_t junk = 0;
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_RESET, &junk, sizeof(junk), NULL, 0, NULL), EINVAL);
    assert_int_equal(reset_calls, 2);
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_unsupported_commands(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(NULL, NULL, 0);
    int cli = attach_client(s);
    negotiate(s, cli);
    uint16_t cmds[] = {VFIO_USER_DEVICE_GET_REGION_IO_FDS, VFIO_USER_REGION_WRITE_MULTI, VFIO_USER_DEVICE_FEATURE,
                       VFIO_USER_MIG_DATA_READ, VFIO_USER_MIG_DATA_WRITE, VFIO_USER_DMA_READ, VFIO_USER_DMA_WRITE,
                       14, VFIO_USER_MAX_COMMAND, 0, 0xffff};
    uint8_t payload[32] = {0};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        assert_int_equal(call(s, cli, cmds[i], payload, sizeof(payload), NULL, 0, NULL), EOPNOTSUPP);
    /* A stray reply is dropped without an answer; the next command still works. */
    send_cmd_flags(cli, VFIO_USER_DEVICE_GET_INFO, VFIO_USER_F_TYPE_REPLY, NULL, 0, NULL, 0);
    struct vfio_user_device_info di = {.argsz = sizeof(di)};
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0, NULL), 0);
    assert_true(vfio_user_server_connected(s));
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_no_reply_flag(void **state)
{
    (void)state;
    struct vfio_user_server_ops ops = {.reset = on_reset};
    struct vfio_user_server *s = make_server(&ops, NULL, 0);
    int cli = attach_client(s);
    negotiate(s, cli);
    reset_calls = 0;
    reset_result = 0;
    send_cmd_flags(cli, VFIO_USER_DEVICE_RESET, VFIO_USER_F_TYPE_COMMAND | VFIO_USER_F_NO_REPLY, NULL, 0, NULL, 0);
    assert_int_equal(vfio_user_server_poll(s), 1);
    reset_result = -EIO;
    send_cmd_flags(cli, VFIO_USER_DEVICE_RESET, VFIO_USER_F_TYPE_COMMAND | VFIO_USER_F_NO_REPLY, NULL, 0, NULL, 0);
    assert_int_equal(vfio_user_server_poll(s), 1);
    assert_int_equal(reset_calls, 2);
    char b;
    assert_int_equal(recv(cli, &b, 1, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    close(cli);
    vfio_user_server_destroy(s);
}

/* ---- broken streams ---------------------------------------------------- */

static int disconnected_calls;
static void on_disconnected(void *ctx)
{
    (void)ctx;
    disconnected_calls++;
}

static void test_broken_headers_disconnect(void **state)
{
    (void)state;
    struct vfio_user_server_ops ops = {.disconnected = on_disconnected};
    int base = count_open_fds();
    struct vfio_user_header bad[] = {
        {.msg_id = 1, .cmd = VFIO_USER_VERSION, .msg_size = 8},                      /* shorter than a header */
        {.msg_id = 2, .cmd = VFIO_USER_VERSION, .msg_size = 0xfffffff0u},            /* oversized */
        {.msg_id = 3, .cmd = VFIO_USER_VERSION, .msg_size = 16, .flags = 0x7},       /* bad type */
        {.msg_id = 4, .cmd = VFIO_USER_VERSION, .msg_size = 16, .flags = 1u << 20}, /* unknown flag */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vfio_user_server *s = make_server(&ops, NULL, 0);
        int cli = attach_client(s);
        disconnected_calls = 0;
        assert_int_equal(send(cli, &bad[i], sizeof(bad[i]), 0), (ssize_t)sizeof(bad[i]));
        vfio_user_server_poll(s);
        assert_false(vfio_user_server_connected(s));
        assert_int_equal(disconnected_calls, 1);
        assert_true(peer_closed(cli));
        close(cli);
        vfio_user_server_destroy(s);
    }
    /* A truncated message followed by EOF. */
    struct vfio_user_server *s = make_server(&ops, NULL, 0);
    int cli = attach_client(s);
    struct vfio_user_header h = {.msg_id = 5, .cmd = VFIO_USER_VERSION, .msg_size = 100};
    assert_int_equal(send(cli, &h, 10, 0), 10);
    assert_int_equal(vfio_user_server_poll(s), 0);
    assert_true(vfio_user_server_connected(s));
    assert_int_equal(send(cli, (char *)&h + 10, 6, 0), 6);
    assert_int_equal(vfio_user_server_poll(s), 0);
    close(cli);
    vfio_user_server_poll(s);
    assert_false(vfio_user_server_connected(s));
    vfio_user_server_destroy(s);
    assert_int_equal(count_open_fds(), base);
}

static void test_backpressure(void **state)
{
    (void)state;
    struct vfio_user_server *s = make_server(NULL, NULL, 0);
    int cli = attach_client(s);
    int small = 4096;
    setsockopt(cli, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    int srv_fd;
    vfio_user_server_fds(s, NULL, &srv_fd);
    setsockopt(srv_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    negotiate(s, cli);
    /* Many commands whose replies the client does not read: the server stops reading at some point. */
    struct vfio_user_device_info di = {.argsz = sizeof(di)};
    int sent = 0;
    for (; sent < 400; sent++) {
        struct vfio_user_header h = {.msg_id = (uint16_t)sent, .cmd = VFIO_USER_DEVICE_GET_INFO,
                                     .msg_size = sizeof(h) + sizeof(di)};
        uint8_t m[32];
        memcpy(m, &h, 16);
        memcpy(m + 16, &di, 16);
        if (send(cli, m, sizeof(m), MSG_DONTWAIT) != (ssize_t)sizeof(m))
            break;
        vfio_user_server_poll(s);
    }
    /* Now read everything back: every reply arrives, in order, nothing lost. */
    int got = 0;
    while (got < sent) {
        vfio_user_server_poll(s);
        struct reply r;
        struct pollfd p = {.fd = cli, .events = POLLIN};
        if (poll(&p, 1, 0) == 0)
            continue;
        assert_int_equal(recv_msg(cli, &r), 1);
        assert_int_equal(r.hdr.msg_id, (uint16_t)got);
        assert_false(r.hdr.flags & VFIO_USER_F_ERROR);
        got++;
    }
    assert_true(vfio_user_server_connected(s));
    close(cli);
    vfio_user_server_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socket_mode_0600),
        cmocka_unit_test(test_stale_socket_replaced),
        cmocka_unit_test(test_live_socket_refused),
        cmocka_unit_test(test_non_socket_path_refused),
        cmocka_unit_test(test_second_client_gets_eof),
        cmocka_unit_test(test_version_negotiation),
        cmocka_unit_test(test_version_reply_qemu_accepts),
        cmocka_unit_test(test_version_higher_minor),
        cmocka_unit_test(test_version_bad_major),
        cmocka_unit_test(test_version_bad_json),
        cmocka_unit_test(test_command_before_version),
        cmocka_unit_test(test_device_get_info),
        cmocka_unit_test(test_device_reset),
        cmocka_unit_test(test_unsupported_commands),
        cmocka_unit_test(test_no_reply_flag),
        cmocka_unit_test(test_broken_headers_disconnect),
        cmocka_unit_test(test_backpressure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
