/* SPDX-License-Identifier: MIT */
/* vfio-user server: IRQ description, GET_IRQ_INFO, SET_IRQS, delivery and masking. */
#include <sys/eventfd.h>
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

#define IDX_INTX VFIO_PCI_INTX_IRQ_INDEX
#define IDX_MSIX VFIO_PCI_MSIX_IRQ_INDEX

static int irq_changed_calls;
static uint32_t irq_changed_last;
static void on_irq_changed(void *ctx, uint32_t index)
{
    (void)ctx;
    irq_changed_calls++;
    irq_changed_last = index;
}
static const struct vfio_user_server_ops irq_ops = {.irq_changed = on_irq_changed};

static struct vfio_user_server *irq_server(int *cli)
{
    struct vfio_user_server *s = make_server(&irq_ops, NULL, 0);
    assert_int_equal(vfio_user_server_setup_irq(s, IDX_INTX, 1, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE), 0);
    assert_int_equal(vfio_user_server_setup_irq(s, IDX_MSIX, 8, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE), 0);
    *cli = attach_client(s);
    negotiate(s, *cli);
    irq_changed_calls = 0;
    return s;
}

static int set_irqs(struct vfio_user_server *s, int cli, uint32_t flags, uint32_t index, uint32_t start,
                    uint32_t count, const uint8_t *data, size_t data_len, const int *fds, size_t nfds)
{
    uint8_t buf[20 + 64];
    struct vfio_irq_set is = {.argsz = (uint32_t)(sizeof(is) + data_len), .flags = flags, .index = index,
                              .start = start, .count = count};
    memcpy(buf, &is, sizeof(is));
    if (data_len)
        memcpy(buf + sizeof(is), data, data_len);
    return call(s, cli, VFIO_USER_DEVICE_SET_IRQS, buf, sizeof(is) + data_len, fds, nfds, NULL);
}

static uint64_t eventfd_count(int fd)
{
    uint64_t v = 0;
    if (read(fd, &v, sizeof(v)) != sizeof(v))
        return 0; /* EAGAIN: nothing signalled */
    return v;
}

static void make_eventfds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        assert_true(fds[i] >= 0);
    }
}

static void close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

#define EVENTFD_TRIGGER (VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER)

static void test_irq_info(void **state)
{
    (void)state;
    int cli;
    struct vfio_user_server *s = irq_server(&cli);
    struct vfio_irq_info ii = {.argsz = sizeof(ii), .index = IDX_MSIX};
    struct reply r;
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), NULL, 0, &r), 0);
    assert_int_equal(r.len, sizeof(ii));
    memcpy(&ii, r.data, sizeof(ii));
    assert_int_equal(ii.argsz, sizeof(ii));
    assert_int_equal(ii.count, 8);
    assert_int_equal(ii.index, IDX_MSIX);
    assert_int_equal(ii.flags, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE);
    ii = (struct vfio_irq_info){.argsz = sizeof(ii), .index = VFIO_PCI_MSI_IRQ_INDEX};
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), NULL, 0, &r), 0);
    memcpy(&ii, r.data, sizeof(ii));
    assert_int_equal(ii.count, 0);
    ii = (struct vfio_irq_info){.argsz = sizeof(ii), .index = VFIO_USER_PCI_NUM_IRQS};
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), NULL, 0, NULL), EINVAL);
    ii = (struct vfio_irq_info){.argsz = 8, .index = 0};
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), NULL, 0, NULL), EINVAL);
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_IRQ_INFO, &ii, 12, NULL, 0, NULL), EINVAL);
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_eventfd_assign_and_trigger(void **state)
{
    (void)state;
    int cli;
    struct vfio_user_server *s = irq_server(&cli);
    int efd[3];
    make_eventfds(efd, 3);
    assert_int_equal(set_irqs(s, cli, EVENTFD_TRIGGER, IDX_MSIX, 2, 3, NULL, 0, efd, 3), 0);
    assert_int_equal(irq_changed_calls, 1);
    assert_int_equal(irq_changed_last, IDX_MSIX);
    assert_int_equal(vfio_user_server_irq_enabled_count(s, IDX_MSIX), 3);
    assert_true(vfio_user_server_irq_fd(s, IDX_MSIX, 2) >= 0);
    assert_int_equal(vfio_user_server_irq_fd(s, IDX_MSIX, 1), -1);
    assert_int_equal(vfio_user_server_irq_trigger(s, IDX_MSIX, 3), 0);
    assert_int_equal(eventfd_count(efd[1]), 1);
    assert_int_equal(eventfd_count(efd[0]), 0);
    assert_int_equal(vfio_user_server_irq_trigger(s, IDX_MSIX, 0), -ENOENT);
    assert_int_equal(vfio_user_server_irq_trigger(s, IDX_MSIX, 8), -EINVAL);
    assert_int_equal(vfio_user_server_irq_trigger(s, VFIO_USER_PCI_NUM_IRQS, 0), -EINVAL);
    /* TRIGGER with DATA_NONE and DATA_BOOL from the client fire the same path. */
    assert_int_equal(set_irqs(s, cli, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, IDX_MSIX, 2, 2, NULL, 0,
                              NULL, 0),
                     0);
    assert_int_equal(eventfd_count(efd[0]), 1);
    assert_int_equal(eventfd_count(efd[1]), 1);
    assert_int_equal(eventfd_count(efd[2]), 0);
    uint8_t bools[3] = {0, 0, 1};
    assert_int_equal(set_irqs(s, cli, VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, IDX_MSIX, 2, 3, bools, 3,
                              NULL, 0),
                     0);
    assert_int_equal(eventfd_count(efd[0]), 0);
    assert_int_equal(eventfd_count(efd[2]), 1);
    /* De-assign a sub-range with no fds. */
    assert_int_equal(set_irqs(s, cli, EVENTFD_TRIGGER, IDX_MSIX, 3, 1, NULL, 0, NULL, 0), 0);
    assert_int_equal(vfio_user_server_irq_enabled_count(s, IDX_MSIX), 2);
    assert_int_equal(vfio_user_server_irq_fd(s, IDX_MSIX, 3), -1);
    close_all(efd, 3);
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_mask_pending_unmask(void **state)
{
    (void)state;
    int cli;
    struct vfio_user_server *s = irq_server(&cli);
    int efd;
    make_eventfds(&efd, 1);
    assert_int_equal(set_irqs(s, cli, EVENTFD_TRIGGER, IDX_INTX, 0, 1, NULL, 0, &efd, 1), 0);
    assert_int_equal(set_irqs(s, cli, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, IDX_INTX, 0, 1, NULL, 0,
                              NULL, 0),
                     0);
    assert_true(vfio_user_server_irq_masked(s, IDX_INTX, 0));
    assert_int_equal(vfio_user_server_irq_trigger(s, IDX_INTX, 0), 0);
    assert_int_equal(eventfd_count(efd), 0);
    assert_int_equal(set_irqs(s, cli, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, IDX_INTX, 0, 1, NULL, 0,
                              NULL, 0),
                     0);
    assert_false(vfio_user_server_irq_masked(s, IDX_INTX, 0));
    assert_int_equal(eventfd_count(efd), 1);
    /* Unmask without anything pending delivers nothing. */
    assert_int_equal(set_irqs(s, cli, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, IDX_INTX, 0, 1, NULL, 0,
                              NULL, 0),
                     0);
    assert_int_equal(eventfd_count(efd), 0);
    /* Mask with DATA_BOOL false leaves it unmasked. */
    uint8_t f = 0;
    assert_int_equal(set_irqs(s, cli, VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_MASK, IDX_INTX, 0, 1, &f, 1, NULL,
                              0),
                     0);
    assert_false(vfio_user_server_irq_masked(s, IDX_INTX, 0));
    /* Masking is refused where the index is not maskable, and with eventfds. */
    assert_int_equal(set_irqs(s, cli, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, IDX_MSIX, 0, 1, NULL, 0,
                              NULL, 0),
                     EINVAL);
    int efd2;
    make_eventfds(&efd2, 1);
    assert_int_equal(set_irqs(s, cli, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_MASK, IDX_INTX, 0, 1, NULL, 0,
                              &efd2, 1),
                     EINVAL);
    close(efd2);
    close(efd);
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_disable_all(void **state)
{
    (void)state;
    int cli;
    struct vfio_user_server *s = irq_server(&cli);
    int efd[8];
    make_eventfds(efd, 8);
    int base = count_open_fds();
    assert_int_equal(set_irqs(s, cli, EVENTFD_TRIGGER, IDX_MSIX, 0, 8, NULL, 0, efd, 8), 0);
    assert_int_equal(count_open_fds(), base + 8); /* the server holds its copies */
    assert_int_equal(set_irqs(s, cli, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, IDX_MSIX, 0, 0, NULL, 0,
                              NULL, 0),
                     0);
    assert_int_equal(vfio_user_server_irq_enabled_count(s, IDX_MSIX), 0);
    assert_int_equal(count_open_fds(), base);
    assert_int_equal(irq_changed_calls, 2);
    close_all(efd, 8);
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_set_irqs_errors_change_nothing(void **state)
{
    (void)state;
    int cli;
    struct vfio_user_server *s = irq_server(&cli);
    int efd[4];
    make_eventfds(efd, 4);
    int base = count_open_fds();
    const uint32_t none_trig = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
    /* Flags: two data types, two actions, no action, unknown bit. */
    assert_int_equal(set_irqs(s, cli, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER,
                              IDX_MSIX, 0, 1, (uint8_t[]){1}, 1, NULL, 0),
                     EINVAL);
    assert_int_equal(set_irqs(s, cli, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_TRIGGER,
                              IDX_INTX, 0, 1, NULL, 0, NULL, 0),
                     EINVAL);
    assert_int_equal(set_irqs(s, cli, VFIO_IRQ_SET_DATA_NONE, IDX_MSIX, 0, 1, NULL, 0, NULL, 0), EINVAL);
    assert_int_equal(set_irqs(s, cli, none_trig | (1u << 10), IDX_MSIX, 0, 1, NULL, 0, NULL, 0), EINVAL);
    /* Index and range. */
    assert_int_equal(set_irqs(s, cli, none_trig, VFIO_USER_PCI_NUM_IRQS, 0, 1, NULL, 0, NULL, 0), EINVAL);
    assert_int_equal(set_irqs(s, cli, none_trig, IDX_MSIX, 7, 2, NULL, 0, NULL, 0), EINVAL);
    assert_int_equal(set_irqs(s, cli, none_trig, IDX_MSIX, UINT32_MAX, 2, NULL, 0, NULL, 0), EINVAL);
    assert_int_equal(set_irqs(s, cli, none_trig, IDX_MSIX, 1, 0, NULL, 0, NULL, 0), EINVAL);
    /* DATA_BOOL without enough data. */
    assert_int_equal(set_irqs(s, cli, VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, IDX_MSIX, 0, 4,
                              (uint8_t[]){1, 1}, 2, NULL, 0),
                     EINVAL);
    /* Wrong fd count: fds must be closed, nothing assigned. */
    assert_int_equal(set_irqs(s, cli, EVENTFD_TRIGGER, IDX_MSIX, 0, 3, NULL, 0, efd, 2), EINVAL);
    /* fds where none are expected. */
    assert_int_equal(set_irqs(s, cli, none_trig, IDX_MSIX, 0, 1, NULL, 0, efd, 1), EINVAL);
    /* A non-eventfd fd. */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(set_irqs(s, cli, EVENTFD_TRIGGER, IDX_MSIX, 0, 1, NULL, 0, &p[1], 1), EINVAL);
    close(p[0]);
    close(p[1]);
    /* argsz larger than the payload, and too small. */
    struct vfio_irq_set is = {.argsz = 40, .flags = none_trig, .index = IDX_MSIX, .start = 0, .count = 1};
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_SET_IRQS, &is, sizeof(is), NULL, 0, NULL), EINVAL);
    is.argsz = 16;
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_SET_IRQS, &is, sizeof(is), NULL, 0, NULL), EINVAL);
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_SET_IRQS, &is, 16, NULL, 0, NULL), EINVAL);

    assert_int_equal(vfio_user_server_irq_enabled_count(s, IDX_MSIX), 0);
    assert_int_equal(irq_changed_calls, 0);
    assert_int_equal(count_open_fds(), base);
    close_all(efd, 4);
    close(cli);
    vfio_user_server_destroy(s);
}

static void test_disconnect_closes_irq_fds(void **state)
{
    (void)state;
    int cli;
    struct vfio_user_server *s = irq_server(&cli);
    int efd[2];
    make_eventfds(efd, 2);
    int base = count_open_fds();
    assert_int_equal(set_irqs(s, cli, EVENTFD_TRIGGER, IDX_MSIX, 0, 1, NULL, 0, efd, 1), 0);
    assert_int_equal(set_irqs(s, cli, EVENTFD_TRIGGER, IDX_INTX, 0, 1, NULL, 0, &efd[1], 1), 0);
    assert_int_equal(set_irqs(s, cli, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, IDX_INTX, 0, 1, NULL, 0,
                              NULL, 0),
                     0);
    assert_int_equal(vfio_user_server_irq_trigger(s, IDX_INTX, 0), 0); /* pending */
    close(cli);
    vfio_user_server_poll(s);
    assert_false(vfio_user_server_connected(s));
    /* base counted the socketpair's client end, now closed. */
    assert_int_equal(count_open_fds(), base - 2);
    assert_int_equal(vfio_user_server_irq_enabled_count(s, IDX_MSIX), 0);
    assert_false(vfio_user_server_irq_masked(s, IDX_INTX, 0));
    /* The description stays: a new client sees the same IRQs and can set them again. */
    cli = attach_client(s);
    negotiate(s, cli);
    struct vfio_irq_info ii = {.argsz = sizeof(ii), .index = IDX_MSIX};
    struct reply r;
    assert_int_equal(call(s, cli, VFIO_USER_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), NULL, 0, &r), 0);
    memcpy(&ii, r.data, sizeof(ii));
    assert_int_equal(ii.count, 8);
    assert_int_equal(set_irqs(s, cli, EVENTFD_TRIGGER, IDX_MSIX, 0, 1, NULL, 0, efd, 1), 0);
    assert_int_equal(vfio_user_server_irq_trigger(s, IDX_MSIX, 0), 0);
    assert_int_equal(eventfd_count(efd[0]), 1);
    close_all(efd, 2);
    close(cli);
    vfio_user_server_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_irq_info),
        cmocka_unit_test(test_eventfd_assign_and_trigger),
        cmocka_unit_test(test_mask_pending_unmask),
        cmocka_unit_test(test_disable_all),
        cmocka_unit_test(test_set_irqs_errors_change_nothing),
        cmocka_unit_test(test_disconnect_closes_irq_fds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
