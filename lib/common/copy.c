/* SPDX-License-Identifier: MIT */
#include "common/copy.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__SSE2__)
#include <emmintrin.h>

/* Below this, the fence and the alignment work cost more than the cache lines they save. */
#define STREAM_MIN 1024u

void vnvme_copy_stream(void *dst, const void *src, size_t n)
{
    if (n < STREAM_MIN) {
        memcpy(dst, src, n);
        return;
    }
    uint8_t *d = dst;
    const uint8_t *s = src;
    /* Streaming stores need a 16-byte aligned destination; the source may be anywhere. */
    size_t head = (16u - ((uintptr_t)d & 15u)) & 15u;
    memcpy(d, s, head);
    d += head;
    s += head;
    n -= head;
    __m128i *dv = (__m128i *)(void *)d;
    const __m128i *sv = (const __m128i *)(const void *)s;
    size_t blocks = n / 64u;
    for (size_t i = 0; i < blocks; i++, dv += 4, sv += 4) {
        __m128i a = _mm_loadu_si128(sv), b = _mm_loadu_si128(sv + 1);
        __m128i c = _mm_loadu_si128(sv + 2), e = _mm_loadu_si128(sv + 3);
        _mm_stream_si128(dv, a);
        _mm_stream_si128(dv + 1, b);
        _mm_stream_si128(dv + 2, c);
        _mm_stream_si128(dv + 3, e);
    }
    memcpy(dv, sv, n % 64u);
}

void vnvme_copy_stream_fence(void)
{
    _mm_sfence();
}

#else

void vnvme_copy_stream(void *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
}

void vnvme_copy_stream_fence(void)
{
}

#endif
