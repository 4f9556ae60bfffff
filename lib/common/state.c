/* SPDX-License-Identifier: MIT */
/* The handover state format's integers, strings, fds and sections (state.h). */
#include "common/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NO_FD 0xffffffffu

void vnvme_state_out_init(struct vnvme_state_out *w)
{
    memset(w, 0, sizeof(*w));
}

void vnvme_state_out_fini(struct vnvme_state_out *w)
{
    free(w->buf);
    free(w->fds);
    memset(w, 0, sizeof(*w));
}

int vnvme_state_out_error(const struct vnvme_state_out *w)
{
    return w->err;
}

static bool reserve(struct vnvme_state_out *w, size_t n)
{
    if (w->err)
        return false;
    if (n <= w->cap - w->len)
        return true;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap - w->len < n) {
        if (cap > SIZE_MAX / 2) {
            w->err = -ENOMEM;
            return false;
        }
        cap *= 2;
    }
    uint8_t *b = realloc(w->buf, cap);
    if (!b) {
        w->err = -ENOMEM;
        return false;
    }
    w->buf = b;
    w->cap = cap;
    return true;
}

void vnvme_state_put_bytes(struct vnvme_state_out *w, const void *p, size_t n)
{
    if (!n || !reserve(w, n))
        return;
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_le(struct vnvme_state_out *w, uint64_t v, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    vnvme_state_put_bytes(w, b, n);
}

void vnvme_state_put_u8(struct vnvme_state_out *w, uint8_t v)
{
    put_le(w, v, 1);
}

void vnvme_state_put_u16(struct vnvme_state_out *w, uint16_t v)
{
    put_le(w, v, 2);
}

void vnvme_state_put_u32(struct vnvme_state_out *w, uint32_t v)
{
    put_le(w, v, 4);
}

void vnvme_state_put_u64(struct vnvme_state_out *w, uint64_t v)
{
    put_le(w, v, 8);
}

void vnvme_state_put_str(struct vnvme_state_out *w, const char *s)
{
    size_t n = strlen(s);
    vnvme_state_put_u32(w, (uint32_t)n);
    vnvme_state_put_bytes(w, s, n);
}

void vnvme_state_put_fd(struct vnvme_state_out *w, int fd)
{
    if (fd < 0) {
        vnvme_state_put_u32(w, NO_FD);
        return;
    }
    if (w->err)
        return;
    if (w->nfds == w->fds_cap) {
        size_t cap = w->fds_cap ? w->fds_cap * 2 : 16;
        int *f = realloc(w->fds, cap * sizeof(*f));
        if (!f) {
            w->err = -ENOMEM;
            return;
        }
        w->fds = f;
        w->fds_cap = cap;
    }
    w->fds[w->nfds] = fd;
    vnvme_state_put_u32(w, (uint32_t)w->nfds++);
}

size_t vnvme_state_begin(struct vnvme_state_out *w, uint32_t tag)
{
    vnvme_state_put_u32(w, tag);
    size_t at = w->len;
    vnvme_state_put_u32(w, 0);
    return at;
}

void vnvme_state_end(struct vnvme_state_out *w, size_t at)
{
    if (w->err || at + 4 > w->len)
        return;
    size_t n = w->len - at - 4;
    if (n > UINT32_MAX) {
        w->err = -E2BIG;
        return;
    }
    for (size_t i = 0; i < 4; i++)
        w->buf[at + i] = (uint8_t)(n >> (8 * i));
}

/* ---- reading ---- */

void vnvme_state_in_init(struct vnvme_state_in *r, const void *buf, size_t len, int *fds, size_t nfds)
{
    memset(r, 0, sizeof(*r));
    r->buf = buf;
    r->len = len;
    r->fds = fds;
    r->nfds = nfds;
    r->why = &r->why_store;
}

void vnvme_state_fail(struct vnvme_state_in *r, const char *why)
{
    if (!*r->why)
        *r->why = why;
}

static const uint8_t *take(struct vnvme_state_in *r, size_t n, const char *what)
{
    if (!vnvme_state_in_ok(r))
        return NULL;
    if (n > r->len - r->pos) {
        vnvme_state_fail(r, what);
        return NULL;
    }
    const uint8_t *p = r->buf + r->pos;
    r->pos += n;
    return p;
}

static uint64_t get_le(struct vnvme_state_in *r, size_t n)
{
    const uint8_t *p = take(r, n, "state ends inside a value");
    uint64_t v = 0;
    for (size_t i = 0; p && i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

uint8_t vnvme_state_get_u8(struct vnvme_state_in *r)
{
    return (uint8_t)get_le(r, 1);
}

uint16_t vnvme_state_get_u16(struct vnvme_state_in *r)
{
    return (uint16_t)get_le(r, 2);
}

uint32_t vnvme_state_get_u32(struct vnvme_state_in *r)
{
    return (uint32_t)get_le(r, 4);
}

uint64_t vnvme_state_get_u64(struct vnvme_state_in *r)
{
    return get_le(r, 8);
}

bool vnvme_state_get_bool(struct vnvme_state_in *r)
{
    uint8_t v = vnvme_state_get_u8(r);
    if (v > 1)
        vnvme_state_fail(r, "a flag is neither 0 nor 1");
    return v == 1;
}

void vnvme_state_get_bytes(struct vnvme_state_in *r, void *p, size_t n)
{
    const uint8_t *src = take(r, n, "state ends inside a byte string");
    if (src)
        memcpy(p, src, n);
    else
        memset(p, 0, n);
}

void vnvme_state_get_str(struct vnvme_state_in *r, char *out, size_t cap)
{
    uint32_t n = vnvme_state_get_u32(r);
    out[0] = '\0';
    if (!vnvme_state_in_ok(r))
        return;
    if (n >= cap) {
        vnvme_state_fail(r, "a string is longer than its field");
        return;
    }
    const uint8_t *p = take(r, n, "state ends inside a string");
    if (!p)
        return;
    if (memchr(p, '\0', n)) {
        vnvme_state_fail(r, "a string holds a NUL");
        return;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

int vnvme_state_get_fd(struct vnvme_state_in *r)
{
    uint32_t i = vnvme_state_get_u32(r);
    if (!vnvme_state_in_ok(r) || i == NO_FD)
        return -1;
    if (i >= r->nfds || r->fds[i] < 0) {
        vnvme_state_fail(r, "a file descriptor index is out of range or used twice");
        return -1;
    }
    int fd = r->fds[i];
    r->fds[i] = -1;
    return fd;
}

void vnvme_state_enter(struct vnvme_state_in *r, uint32_t tag, struct vnvme_state_in *sub)
{
    uint32_t t = vnvme_state_get_u32(r);
    uint32_t n = vnvme_state_get_u32(r);
    *sub = *r;
    sub->len = sub->pos; /* empty until the checks pass */
    if (!vnvme_state_in_ok(r))
        return;
    if (t != tag) {
        vnvme_state_fail(r, "a section is not the one expected here");
        return;
    }
    const uint8_t *p = take(r, n, "state ends inside a section");
    if (!p)
        return;
    sub->buf = p;
    sub->pos = 0;
    sub->len = n;
}

void vnvme_state_expect_end(struct vnvme_state_in *r)
{
    if (vnvme_state_in_ok(r) && r->pos != r->len)
        vnvme_state_fail(r, "a section has more bytes than its fields");
}
