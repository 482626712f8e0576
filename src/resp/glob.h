/* Glob patterns as Redis's KEYS, SCAN MATCH and CONFIG GET read them, over any bytes (glob.c). */
#ifndef CACHETTE_RESP_GLOB_H
#define CACHETTE_RESP_GLOB_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Whether s[0..len) matches pattern[0..plen): '*' any run of bytes, '?' any
 * one byte, "[abc]", "[a-z]" and "[^…]" one byte of (or not of) a set, '\'
 * the next byte itself. NUL and every other byte are ordinary. nocase
 * compares ASCII letters without case (CONFIG GET does).
 */
bool glob_match(const char *pattern, size_t plen, const char *s, size_t len, bool nocase);

/* How many bytes at the start of pattern match only themselves: a prefix every match starts with. */
size_t glob_literal_prefix(const char *pattern, size_t plen);

#endif
