/*
 * What the fuzz targets share: CHECK, an assertion that is never compiled out
 * and names the broken invariant, and a cursor that hands out the fuzzer's
 * bytes one field at a time (zeros once they run out), so a target can read
 * an input as a little program.
 */
#ifndef CACHETTE_FUZZ_CHECK_H
#define CACHETTE_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Aborts with the failed condition: libFuzzer records the input as a crash. */
#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);                               \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

struct cursor {
    const uint8_t *p, *end;
};

static inline int cursor_left(const struct cursor *c)
{
    return c->p < c->end;
}

static inline uint8_t cursor_u8(struct cursor *c)
{
    return c->p < c->end ? *c->p++ : 0;
}

static inline uint64_t cursor_u64(struct cursor *c)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | cursor_u8(c);
    return v;
}

/* Up to n bytes; *len gets how many there were. */
static inline const uint8_t *cursor_bytes(struct cursor *c, size_t n, size_t *len)
{
    size_t left = (size_t)(c->end - c->p);
    const uint8_t *p = c->p;
    *len = n < left ? n : left;
    c->p += *len;
    return p;
}

#endif
