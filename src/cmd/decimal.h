/*
 * Whole numbers written in ASCII decimal, as protocols carry them in query
 * strings and bodies (a TTL, a page size, a cursor): digits only, no sign,
 * no spaces, no empty string.
 */
#ifndef CACHETTE_CMD_DECIMAL_H
#define CACHETTE_CMD_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

/* Parses text[0..len) as 1 to max_digits digits into *out; 0, or -1 if it is anything else or exceeds UINT64_MAX. */
static inline int decimal_parse(const char *text, size_t len, size_t max_digits, uint64_t *out)
{
    uint64_t n = 0;
    if (len == 0 || len > max_digits)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        unsigned digit = (unsigned)(text[i] - '0');
        if (n > (UINT64_MAX - digit) / 10)
            return -1;
        n = n * 10 + digit;
    }
    *out = n;
    return 0;
}

#endif
