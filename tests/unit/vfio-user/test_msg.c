/* SPDX-License-Identifier: MIT */
/* Message framing: partial reads, fds belong to their message, header validation, pending output. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "vfio-user/msg.h"

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
}

static struct vfio_user_header hdr(uint16_t id, uint16_t cmd, uint32_t payload)
{
    struct vfio_user_header h = {.msg_id = id, .cmd = cmd, .msg_size = 16 + payload, .flags = 0};
    return h;
}

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void test_message_in_pieces(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    struct vfio_user_rx rx;
    vfio_user_rx_init(&rx, 4096, 8);
    struct vfio_user_header h = hdr(7, VFIO_USER_REGION_WRITE, 20);
    uint8_t payload[20];
    for (int i = 0; i < 20; i++)
        payload[i] = (uint8_t)(i + 1);
    uint8_t wire[36];
    memcpy(wire, &h, 16);
    memcpy(wire + 16, payload, 20);
    /* Nothing yet, then 3 bytes, then the rest of the header, then the payload in two steps. */
    assert_int_equal(vfio_user_rx_step(&rx, sv[1]), 0);
    size_t cuts[] = {3, 16, 30, 36};
    size_t done = 0;
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(write(sv[0], wire + done, cuts[i] - done), (ssize_t)(cuts[i] - done));
        done = cuts[i];
        int rc = vfio_user_rx_step(&rx, sv[1]);
        assert_int_equal(rc, i == 3 ? 1 : 0);
    }
    assert_int_equal(rx.msg.hdr.msg_id, 7);
    assert_int_equal(rx.msg.len, 20);
    assert_memory_equal(rx.msg.payload, payload, 20);
    vfio_user_rx_release(&rx);
    /* Peer gone: EOF is a reset. */
    close(sv[0]);
    assert_int_equal(vfio_user_rx_step(&rx, sv[1]), -ECONNRESET);
    vfio_user_rx_fini(&rx);
    close(sv[1]);
}

static void test_fds_stay_with_their_message(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    int a = eventfd(0, EFD_CLOEXEC), b = eventfd(0, EFD_CLOEXEC), c = eventfd(0, EFD_CLOEXEC);
    struct vfio_user_header h1 = hdr(1, VFIO_USER_DMA_MAP, 8), h2 = hdr(2, VFIO_USER_DEVICE_SET_IRQS, 8);
    uint64_t p1 = 0x1111, p2 = 0x2222;
    struct iovec v1 = {&p1, 8}, v2 = {&p2, 8};
    int fds1[] = {a};
    int fds2[] = {b, c};
    assert_int_equal(vfio_user_send_all(sv[0], &h1, &v1, 1, fds1, 1, 1000), 0);
    assert_int_equal(vfio_user_send_all(sv[0], &h2, &v2, 1, fds2, 2, 1000), 0);

    struct vfio_user_rx rx;
    vfio_user_rx_init(&rx, 4096, 8);
    assert_int_equal(vfio_user_rx_step(&rx, sv[1]), 1);
    assert_int_equal(rx.msg.hdr.msg_id, 1);
    assert_int_equal(rx.msg.nfds, 1);
    uint64_t one = 1, got = 0;
    /* The received fd is the same eventfd as a. */
    assert_int_equal(write(rx.msg.fds[0], &one, 8), 8);
    assert_int_equal(read(a, &got, 8), 8);
    assert_int_equal(got, 1);
    int kept = rx.msg.fds[0];
    rx.msg.fds[0] = -1; /* taken by the consumer */
    vfio_user_rx_release(&rx);
    assert_true(fd_open(kept));
    close(kept);

    assert_int_equal(vfio_user_rx_step(&rx, sv[1]), 1);
    assert_int_equal(rx.msg.hdr.msg_id, 2);
    assert_int_equal(rx.msg.nfds, 2);
    int dropped = rx.msg.fds[1];
    vfio_user_rx_release(&rx); /* not taken: closed */
    assert_false(fd_open(dropped));
    vfio_user_rx_fini(&rx);
    close(a), close(b), close(c), close(sv[0]), close(sv[1]);
}

static void test_bad_headers(void **state)
{
    (void)state;
    struct {
        uint32_t size;
        uint32_t flags;
        int expect;
    } cases[] = {
        {15, 0, -EMSGSIZE},     /* smaller than the header */
        {4097, 0, -EMSGSIZE},   /* larger than allowed */
        {16, 2, -EPROTO},       /* type 2 does not exist */
        {16, 1u << 8, -EPROTO}, /* reserved flag bit */
        {16, VFIO_USER_F_NO_REPLY, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int sv[2];
        pair(sv);
        struct vfio_user_rx rx;
        vfio_user_rx_init(&rx, 4096, 8);
        struct vfio_user_header h = {.msg_id = 1, .cmd = 1, .msg_size = cases[i].size, .flags = cases[i].flags};
        assert_int_equal(write(sv[0], &h, 16), 16);
        assert_int_equal(vfio_user_rx_step(&rx, sv[1]), cases[i].expect);
        vfio_user_rx_fini(&rx);
        close(sv[0]), close(sv[1]);
    }
}

static void test_too_many_fds(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    int fds[4];
    for (int i = 0; i < 4; i++)
        fds[i] = eventfd(0, EFD_CLOEXEC);
    struct vfio_user_header h = hdr(1, VFIO_USER_DEVICE_SET_IRQS, 0);
    assert_int_equal(vfio_user_send_all(sv[0], &h, NULL, 0, fds, 4, 1000), 0);
    for (int i = 0; i < 4; i++)
        close(fds[i]);
    struct vfio_user_rx rx;
    vfio_user_rx_init(&rx, 4096, 2);
    assert_int_equal(vfio_user_rx_step(&rx, sv[1]), -EPROTO);
    /* The two it kept are closed by fini; nothing leaks (checked under ASan/valgrind runs). */
    int kept0 = rx.msg.fds[0];
    vfio_user_rx_fini(&rx);
    assert_false(fd_open(kept0));
    close(sv[0]), close(sv[1]);
}

static void test_pending_output_and_fds(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    int sz = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    /* Fill the socket so the next send cannot go at all. */
    uint8_t junk[4096];
    memset(junk, 0, sizeof(junk));
    size_t filled = 0;
    for (;;) {
        ssize_t n = write(sv[0], junk, sizeof(junk));
        if (n <= 0)
            break;
        filled += (size_t)n;
    }
    struct vfio_user_tx tx;
    vfio_user_tx_init(&tx);
    size_t plen = 100000;
    uint8_t *big = malloc(plen);
    for (size_t i = 0; i < plen; i++)
        big[i] = (uint8_t)(i * 7);
    int efd = eventfd(0, EFD_CLOEXEC);
    struct vfio_user_header h = hdr(9, VFIO_USER_DMA_WRITE, (uint32_t)plen);
    struct iovec v = {big, plen};
    assert_int_equal(vfio_user_tx_send(&tx, sv[0], &h, &v, 1, &efd, 1), 0);
    assert_true(vfio_user_tx_pending(&tx));
    /* A second message must wait for the first. */
    assert_int_equal(vfio_user_tx_send(&tx, sv[0], &h, &v, 1, NULL, 0), -EINVAL);
    close(efd); /* the tx holds its own copy until it is sent */

    /* Drain the junk, then alternate flushing and receiving until the message is in. */
    uint8_t *sink = malloc(filled);
    size_t drained = 0;
    while (drained < filled) {
        ssize_t n = read(sv[1], sink, filled - drained);
        assert_true(n > 0);
        drained += (size_t)n;
    }
    free(sink);
    struct vfio_user_rx rx;
    vfio_user_rx_init(&rx, 1 << 20, 8);
    int got = 0;
    for (int spins = 0; spins < 100000 && !got; spins++) {
        int rc = vfio_user_tx_flush(&tx, sv[0]);
        assert_true(rc == 0 || rc == -EAGAIN);
        got = vfio_user_rx_step(&rx, sv[1]);
        assert_true(got >= 0);
    }
    assert_int_equal(got, 1);
    assert_false(vfio_user_tx_pending(&tx));
    assert_int_equal(rx.msg.len, plen);
    assert_memory_equal(rx.msg.payload, big, plen);
    assert_int_equal(rx.msg.nfds, 1);
    uint64_t one = 1;
    assert_int_equal(write(rx.msg.fds[0], &one, 8), 8);
    vfio_user_rx_fini(&rx);
    vfio_user_tx_fini(&tx);
    free(big);
    close(sv[0]), close(sv[1]);
}

static void test_wait_times_out(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    struct vfio_user_rx rx;
    vfio_user_rx_init(&rx, 4096, 8);
    assert_int_equal(vfio_user_rx_wait(&rx, sv[1], 50), -ETIMEDOUT);
    vfio_user_rx_fini(&rx);
    close(sv[0]), close(sv[1]);
}

static void test_reply_header(void **state)
{
    (void)state;
    struct vfio_user_header req = hdr(0x1234, VFIO_USER_DMA_UNMAP, 24), rep;
    vfio_user_reply_header(&rep, &req, 24, 0);
    assert_int_equal(rep.msg_id, 0x1234);
    assert_int_equal(rep.cmd, VFIO_USER_DMA_UNMAP);
    assert_int_equal(rep.flags, VFIO_USER_F_TYPE_REPLY);
    assert_int_equal(rep.msg_size, 40);
    vfio_user_reply_header(&rep, &req, 24, EINVAL);
    assert_int_equal(rep.flags, VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR);
    assert_int_equal(rep.error_no, EINVAL);
    assert_int_equal(rep.msg_size, 16); /* error replies carry no payload */
    assert_string_equal(vfio_user_command_name(VFIO_USER_REGION_WRITE), "REGION_WRITE");
    assert_string_equal(vfio_user_command_name(14), "UNKNOWN");
    assert_string_equal(vfio_user_command_name(0xffff), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_in_pieces),
        cmocka_unit_test(test_fds_stay_with_their_message),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_too_many_fds),
        cmocka_unit_test(test_pending_output_and_fds),
        cmocka_unit_test(test_wait_times_out),
        cmocka_unit_test(test_reply_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
