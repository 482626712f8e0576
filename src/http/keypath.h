/* Request-target parsing that must not go through h2o's normalisation (keypath.c). */
#ifndef CACHETTE_HTTP_KEYPATH_H
#define CACHETTE_HTTP_KEYPATH_H

#include <stddef.h>

/*
 * Percent-decodes src[0..len) into dst (at least len bytes). '+' stays '+'.
 * Returns the decoded length, or -1 for a malformed escape (%00 is a NUL byte).
 */
long keypath_decode(const char *src, size_t len, char *dst);

/*
 * Finds parameter `name` in a query string (the part after '?', without it).
 * Returns 1 and sets *value and *value_len to the raw (still encoded) value, "" for
 * a bare "name"; returns 0 if absent.
 */
int query_find(const char *query, size_t len, const char *name, const char **value, size_t *value_len);

#endif
