/* SPDX-License-Identifier: MIT */
#include "fake_server.h"

int count_open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Next message into f->rx.msg; false on timeout or EOF. */
bool fake_recv(struct fake *f)
{
    vfio_user_rx_release(&f->rx);
    return vfio_user_rx_wait(&f->rx, f->sock, 5000) == 1;
}

bool fake_expect(struct fake *f, uint16_t cmd)
{
    bool ok = fake_recv(f);
    FCHECK(f, ok);
    if (!ok)
        return false;
    FCHECK(f, f->rx.msg.hdr.cmd == cmd);
    FCHECK(f, (f->rx.msg.hdr.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_COMMAND);
    return f->rx.msg.hdr.cmd == cmd;
}

void fake_send(struct fake *f, const struct vfio_user_header *h, const void *p, size_t len, const int *fds,
                      size_t nfds)
{
    struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
    FCHECK(f, vfio_user_send_all(f->sock, h, &iov, len ? 1 : 0, fds, nfds, 5000) == 0);
}

void fake_reply_fds(struct fake *f, const void *p, size_t len, const int *fds, size_t nfds)
{
    struct vfio_user_header h;
    vfio_user_reply_header(&h, &f->rx.msg.hdr, (uint32_t)len, 0);
    fake_send(f, &h, p, len, fds, nfds);
}

void fake_reply(struct fake *f, const void *p, size_t len)
{
    fake_reply_fds(f, p, len, NULL, 0);
}

void fake_error(struct fake *f, int err)
{
    struct vfio_user_header h;
    vfio_user_reply_header(&h, &f->rx.msg.hdr, 0, err);
    fake_send(f, &h, NULL, 0, NULL, 0);
}

/* Send a command of our own (DMA_READ/DMA_WRITE) and wait for its reply. */
bool fake_request(struct fake *f, uint16_t id, uint16_t cmd, const void *p, size_t len)
{
    struct vfio_user_header h = {.msg_id = id, .cmd = cmd, .msg_size = (uint32_t)(16 + len)};
    fake_send(f, &h, p, len, NULL, 0);
    bool ok = fake_recv(f);
    FCHECK(f, ok);
    if (!ok)
        return false;
    FCHECK(f, (f->rx.msg.hdr.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_REPLY);
    FCHECK(f, f->rx.msg.hdr.msg_id == id && f->rx.msg.hdr.cmd == cmd);
    return ok;
}

void fake_wait_eof(struct fake *f)
{
    FCHECK(f, !fake_recv(f));
}

/* Check the client's proposal, answer with the configured version and caps. */
bool fake_version(struct fake *f)
{
    if (!fake_expect(f, VFIO_USER_VERSION))
        return false;
    const struct vfio_user_msg *m = &f->rx.msg;
    struct vfio_user_version v;
    FCHECK(f, m->len > sizeof(v));
    memcpy(&v, m->payload, sizeof(v));
    FCHECK(f, v.major == 0 && v.minor == 1);
    struct vfio_user_caps caps;
    FCHECK(f, vfio_user_caps_parse((const char *)m->payload + 4, m->len - 4, &caps) == 0);
    FCHECK(f, m->payload[m->len - 1] == '\0');
    FCHECK(f, caps.max_msg_fds == VFIO_USER_MAX_MSG_FDS_LIMIT);
    FCHECK(f, caps.max_data_xfer_size == (1u << 20));
    FCHECK(f, caps.pgsizes == 4096);
    uint8_t buf[512];
    struct vfio_user_version rv = {.major = f->reply_major, .minor = f->reply_minor};
    memcpy(buf, &rv, sizeof(rv));
    size_t len = sizeof(rv);
    if (f->caps_json) {
        size_t j = strlen(f->caps_json) + 1;
        memcpy(buf + len, f->caps_json, j);
        len += j;
    }
    fake_reply(f, buf, len);
    return true;
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    f->sock = accept4(f->lsock, NULL, NULL, SOCK_CLOEXEC);
    FCHECK(f, f->sock >= 0);
    if (f->sock >= 0) {
        vfio_user_rx_init(&f->rx, (2u << 20), VFIO_USER_MSG_MAX_FDS);
        f->script(f);
        vfio_user_rx_fini(&f->rx);
        close(f->sock);
    }
    return NULL;
}


void fake_init(struct fake *f, fake_script script, const char *caps_json)
{
    memset(f, 0, sizeof(*f));
    f->script = script;
    f->caps_json = caps_json;
    f->reply_minor = 1;
    f->memfd = -1;
    strcpy(f->dir, "/tmp/vu-client-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/sock", f->dir);
}

void fake_start(struct fake *f)
{
    f->lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->lsock >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, f->path);
    assert_int_equal(bind(f->lsock, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->lsock, 1), 0);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

void fake_finish(struct fake *f)
{
    pthread_join(f->thread, NULL);
    close(f->lsock);
    unlink(f->path);
    rmdir(f->dir);
    if (f->failures)
        print_error("fake server: %d failure(s), first at %s\n", f->failures, f->first_failure);
    assert_int_equal(f->failures, 0);
}

struct vfio_user_client *connect_ok(struct fake *f, int timeout_ms)
{
    int err = 1;
    struct vfio_user_client *c = vfio_user_client_connect(f->path, timeout_ms, &err);
    assert_non_null(c);
    assert_int_equal(err, 0);
    return c;
}

int connect_err(struct fake *f)
{
    int err = 0;
    struct vfio_user_client *c = vfio_user_client_connect(f->path, 2000, &err);
    assert_null(c);
    return err;
}
