/*
 * Base64 decoding and reproducible test bytes (see codec.h).
 *
 * The decoder is strict on purpose: the server must send canonical base64,
 * so anything a lenient decoder would accept (missing padding, stray bits,
 * line breaks) counts as a failure here.
 */
#include "codec.h"

#include <stdint.h>
#include <string.h>

static int sextet(char c)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c != '\0' ? strchr(alphabet, c) : NULL;
    return p != NULL ? (int)(p - alphabet) : -1;
}

long b64_decode(const char *in, size_t len, unsigned char *out)
{
    size_t n = 0;
    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int last = i + 4 == len;
        int pad = last && in[i + 3] == '=' ? (in[i + 2] == '=' ? 2 : 1) : 0;
        int s[4];
        for (int j = 0; j < 4; j++) {
            s[j] = j >= 4 - pad ? 0 : sextet(in[i + (size_t)j]);
            if (s[j] < 0)
                return -1;
        }
        uint32_t v = (uint32_t)s[0] << 18 | (uint32_t)s[1] << 12 | (uint32_t)s[2] << 6 | (uint32_t)s[3];
        /* Padding must stand for zero bits: "QQ==" is 'A', "QR==" is not canonical. */
        if ((pad == 2 && (v & 0xffff) != 0) || (pad == 1 && (v & 0xff) != 0))
            return -1;
        out[n++] = (unsigned char)(v >> 16);
        if (pad < 2)
            out[n++] = (unsigned char)(v >> 8);
        if (pad < 1)
            out[n++] = (unsigned char)v;
    }
    return (long)n;
}

void fill_pseudo_random(unsigned char *buf, size_t n, unsigned seed)
{
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)(x >> 24);
    }
}
