/*
 * Whole numbers written in ASCII decimal, as protocols carry them in query
 * strings and bodies (a TTL, a page size, a cursor) and in replies (RESP's
 * lengths and integers): digits only, no sign, no spaces, no empty string.
 */
#ifndef CACHETTE_CMD_DECIMAL_H
#define CACHETTE_CMD_DECIMAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The most digits a uint64_t has (UINT64_MAX: 18446744073709551615). */
#define DECIMAL_MAX_DIGITS 20

/* Writes n in decimal at dst (no NUL, at most DECIMAL_MAX_DIGITS bytes); returns the end. By hand: printf's cost shows in every RESP reply. */
static inline char *decimal_format(char *dst, uint64_t n)
{
    char digits[DECIMAL_MAX_DIGITS];
    size_t start = DECIMAL_MAX_DIGITS;
    do {
        digits[--start] = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    memcpy(dst, digits + start, DECIMAL_MAX_DIGITS - start);
    return dst + (DECIMAL_MAX_DIGITS - start);
}

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
