/* UTF-8 validation and scrubbing (utf8.c). */
#ifndef CACHETTE_CMD_UTF8_H
#define CACHETTE_CMD_UTF8_H

#include <stddef.h>

/* True if every byte sequence in [s, s+len) is well-formed UTF-8 (RFC 3629). */
int utf8_is_valid(const char *s, size_t len);

/* Replaces each byte that is not part of a well-formed UTF-8 sequence with '?', in place. */
void utf8_scrub(char *s, size_t len);

#endif
