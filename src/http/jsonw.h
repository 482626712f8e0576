/* Writing JSON text by hand, for the response bodies on the hot path (jsonw.c). */
#ifndef CACHETTE_HTTP_JSONW_H
#define CACHETTE_HTTP_JSONW_H

#include <stddef.h>

/* The most bytes json_write_string() can write for n input bytes. */
#define JSONW_STRING_MAX(n) (6 * (n) + 2)

/*
 * Writes s[0..n) as a quoted JSON string at dst and returns the end. Quotes,
 * backslashes and control characters (NUL included) are escaped; other bytes,
 * which callers ensure are UTF-8, are copied as they are.
 */
char *json_write_string(char *dst, const char *s, size_t n);

#endif
