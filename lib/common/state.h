/* SPDX-License-Identifier: MIT */
/*
 * The handover state format's building blocks (docs/STATE-FORMAT.md): what
 * one vnvmed process writes about its devices for the next one to carry on.
 *
 * Values are little-endian fixed-width integers and length-prefixed byte
 * strings, grouped in tagged sections (tag, length) so a reader checks that
 * it is where it thinks it is and never reads past a section. File
 * descriptors travel beside the bytes (SCM_RIGHTS); the bytes name them by
 * their index in that list.
 *
 * Writing never fails midway: an allocation failure is remembered and
 * reported by vnvme_state_out_error(). Reading never trusts the input: a short
 * section, a wrong tag or an fd index out of range marks the reader failed,
 * and every later get returns zero, so a caller may read a whole structure
 * and check once at the end.
 */
#ifndef VNVME_COMMON_STATE_H
#define VNVME_COMMON_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vnvme_state_out {
    uint8_t *buf;
    size_t len, cap;
    int *fds; /* not owned: the writer only lists them */
    size_t nfds, fds_cap;
    int err;  /* first failure (-ENOMEM), 0 when none */
};

void vnvme_state_out_init(struct vnvme_state_out *w);
void vnvme_state_out_fini(struct vnvme_state_out *w);
int vnvme_state_out_error(const struct vnvme_state_out *w);

void vnvme_state_put_u8(struct vnvme_state_out *w, uint8_t v);
void vnvme_state_put_u16(struct vnvme_state_out *w, uint16_t v);
void vnvme_state_put_u32(struct vnvme_state_out *w, uint32_t v);
void vnvme_state_put_u64(struct vnvme_state_out *w, uint64_t v);
void vnvme_state_put_bytes(struct vnvme_state_out *w, const void *p, size_t n); /* raw, the reader knows n */
void vnvme_state_put_str(struct vnvme_state_out *w, const char *s);            /* u32 length, then the bytes */
/* Lists fd (which must stay open until the state is sent) and writes its index; -1 writes "none". */
void vnvme_state_put_fd(struct vnvme_state_out *w, int fd);
/* A section: put_begin returns where its length goes, put_end fills it in. */
size_t vnvme_state_begin(struct vnvme_state_out *w, uint32_t tag);
void vnvme_state_end(struct vnvme_state_out *w, size_t at);

struct vnvme_state_in {
    const uint8_t *buf;
    size_t len, pos;
    int *fds;   /* shared by nested readers: a taken fd is set to -1 so the rest can be closed */
    size_t nfds;
    const char *why_store; /* the first failure of a top-level reader, NULL while none */
    const char **why;      /* where failures go: a section's reader fails its parent too */
};

void vnvme_state_in_init(struct vnvme_state_in *r, const void *buf, size_t len, int *fds, size_t nfds);
static inline bool vnvme_state_in_ok(const struct vnvme_state_in *r)
{
    return *r->why == NULL;
}
/* Mark r failed with why (kept only if it is the first failure); what failed it first. */
void vnvme_state_fail(struct vnvme_state_in *r, const char *why);
static inline const char *vnvme_state_in_why(const struct vnvme_state_in *r)
{
    return *r->why;
}

uint8_t vnvme_state_get_u8(struct vnvme_state_in *r);
uint16_t vnvme_state_get_u16(struct vnvme_state_in *r);
uint32_t vnvme_state_get_u32(struct vnvme_state_in *r);
uint64_t vnvme_state_get_u64(struct vnvme_state_in *r);
bool vnvme_state_get_bool(struct vnvme_state_in *r); /* a u8 that must be 0 or 1 */
void vnvme_state_get_bytes(struct vnvme_state_in *r, void *p, size_t n);
/* A string into out (cap bytes with its NUL): too long or with a NUL inside fails the reader. */
void vnvme_state_get_str(struct vnvme_state_in *r, char *out, size_t cap);
/* Take the fd a put_fd wrote: the caller owns it (-1 for "none", or when the reader failed). */
int vnvme_state_get_fd(struct vnvme_state_in *r);
/* Enter the section with this tag: sub reads only its bytes; r moves past it. */
void vnvme_state_enter(struct vnvme_state_in *r, uint32_t tag, struct vnvme_state_in *sub);
/* A reader at the end of its section; trailing bytes fail it (the format has no optional tails). */
void vnvme_state_expect_end(struct vnvme_state_in *r);

#endif
