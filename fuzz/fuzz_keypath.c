/*
 * Fuzz target: key percent-decoding and query-string lookup (src/http/keypath.c).
 *
 * The first byte picks the query parameter name; the rest is both the raw key
 * path and the query string. Each function is checked against a reference
 * written here independently, plus the invariants the server relies on:
 * the decoded key is never longer than its text, fits the len-byte buffer
 * exactly (ASan sees a one-byte overrun: the buffer is malloc'd to size) and
 * is shorter by exactly two bytes per escape, and query_find's value lies
 * inside the query.
 *
 * Links: src/http/keypath.c
 */
#include <ctype.h>

#include "fuzz_check.h"
#include "http/keypath.h"

static int ref_hex(uint8_t c)
{
    return isxdigit(c) ? (c <= '9' ? c - '0' : (tolower(c) - 'a' + 10)) : -1;
}

/* The reference decoder: the contract in keypath.h, written the plain way. */
static long ref_decode(const uint8_t *s, size_t len, uint8_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] != '%') {
            out[n++] = s[i++];
            continue;
        }
        if (i + 2 >= len) /* fewer than two characters after the '%' */
            return -1;
        int hi = ref_hex(s[i + 1]), lo = ref_hex(s[i + 2]);
        if (hi < 0 || lo < 0)
            return -1;
        out[n++] = (uint8_t)(hi * 16 + lo);
        i += 3;
    }
    return (long)n;
}

/* The reference lookup: split on '&', the key ends at the first '='. */
static int ref_find(const char *q, size_t len, const char *name, size_t *off, size_t *vlen)
{
    size_t name_len = strlen(name), start = 0;
    while (start < len) {
        size_t end = start;
        while (end < len && q[end] != '&')
            end++;
        size_t eq = start;
        while (eq < end && q[eq] != '=')
            eq++;
        if (eq - start == name_len && memcmp(q + start, name, name_len) == 0) {
            *off = eq < end ? eq + 1 : end;
            *vlen = eq < end ? end - eq - 1 : 0;
            return 1;
        }
        start = end + 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"ttl", "prefix", "limit", "cursor", "a", ""};
    if (size == 0)
        return 0;
    const char *name = names[data[0] % (sizeof(names) / sizeof(names[0]))];
    const char *src = (const char *)data + 1;
    size_t len = size - 1;

    /* Exactly len bytes, as the server allocates at least; malloc(0) is a valid, zero-byte block. */
    char *dst = malloc(len);
    uint8_t *ref = malloc(len + 1);
    CHECK(dst != NULL && ref != NULL);
    long n = keypath_decode(src, len, dst);
    long want = ref_decode((const uint8_t *)src, len, ref);
    CHECK(n == want);
    if (n >= 0) {
        CHECK((size_t)n <= len);
        CHECK(memcmp(dst, ref, (size_t)n) == 0);
        size_t escapes = 0;
        for (size_t i = 0; i < len; i++)
            escapes += src[i] == '%';
        CHECK((size_t)n == len - 2 * escapes); /* every '%' starts an escape of three characters */
    }
    free(dst);
    free(ref);

    const char *value = NULL;
    size_t value_len = 0, off = 0, ref_len = 0;
    int found = query_find(src, len, name, &value, &value_len);
    CHECK(found == ref_find(src, len, name, &off, &ref_len));
    if (found) {
        CHECK(value >= src && value <= src + len && value_len <= (size_t)(src + len - value));
        CHECK(value == src + off && value_len == ref_len);
    }
    return 0;
}
