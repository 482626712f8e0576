/* Parsing of JSON request bodies (body.c). No h2o types: fuzzable on its own. */
#ifndef CACHETTE_HTTP_BODY_H
#define CACHETTE_HTTP_BODY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cachette/store.h"

/* What a write request asked for. Strings point into root or into alloc'd memory. */
struct body_write {
    json_t *root;             /* owns the parsed document; release with body_write_free */
    const char *key;          /* "key" member, when asked for */
    size_t key_len;
    struct store_value value; /* a string is kept unquoted; any other JSON as compact text */
    int64_t ttl_ms;           /* "ttl" in milliseconds; 0 when absent or null */
};

/*
 * Parses {"key"?: string, "value": any JSON but null, "ttl"?: seconds > 0}.
 * with_key says whether "key" is required (POST /cache) or ignored (PUT).
 * Compact JSON text of non-string values is written into memory from alloc.
 * Returns 0, or -1 with a message for the client in err (always set).
 * Members other than these are ignored.
 */
int body_parse_write(const char *body, size_t len, int with_key, store_alloc_fn alloc, void *alloc_ctx,
                     struct body_write *out, char *err, size_t err_size);

void body_write_free(struct body_write *w);

/*
 * Parses a TTL in whole seconds from text (the ?ttl= query parameter) into
 * milliseconds. Returns 0 or -1.
 */
int body_parse_ttl_text(const char *text, size_t len, int64_t *ttl_ms);

#endif
