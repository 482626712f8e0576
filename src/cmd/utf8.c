/*
 * UTF-8 (RFC 3629): what keys and JSON strings must be. A sequence is well
 * formed when its lead byte announces 1-4 bytes, its continuation bytes are
 * all there, and the code point is neither overlong, a UTF-16 surrogate nor
 * past U+10FFFF. Validation for keys and the value envelope; scrubbing for
 * text we did not write (a parser's message quoting client bytes) before it
 * goes into a JSON reply.
 */
#include "cmd/utf8.h"

#include <stdint.h>
#include <string.h>

/* The length of the well-formed UTF-8 sequence at s (before end), or 0 if there is none. */
static size_t utf8_sequence_len(const unsigned char *s, const unsigned char *end)
{
    unsigned c = *s;
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        n = 1, min = 0x80, c &= 0x1f;
    else if ((c & 0xf0) == 0xe0)
        n = 2, min = 0x800, c &= 0x0f;
    else if ((c & 0xf8) == 0xf0)
        n = 3, min = 0x10000, c &= 0x07;
    else
        return 0;
    if ((size_t)(end - s) <= n)
        return 0;
    for (size_t i = 1; i <= n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8. */
    if (c < min || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
        return 0;
    return n + 1;
}

int utf8_is_valid(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text, *end = s + len;
    while (s < end) {
        uint64_t word;
        if (end - s >= 8 && (memcpy(&word, s, 8), (word & UINT64_C(0x8080808080808080)) == 0)) {
            s += 8; /* eight ASCII bytes at once: most text, and what a cache's values mostly are */
            continue;
        }
        size_t n = utf8_sequence_len(s, end);
        if (n == 0)
            return 0;
        s += n;
    }
    return 1;
}

void utf8_scrub(char *text, size_t len)
{
    unsigned char *s = (unsigned char *)text, *end = s + len;
    while (s < end) {
        size_t n = utf8_sequence_len(s, end);
        if (n == 0) {
            *s++ = '?';
            continue;
        }
        s += n;
    }
}
