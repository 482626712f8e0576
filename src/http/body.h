/* Parsing of JSON request bodies (body.c). No h2o types: fuzzable on its own. */
#ifndef CACHETTE_HTTP_BODY_H
#define CACHETTE_HTTP_BODY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cachette/store.h"
#include "cmd/batch.h"

/*
 * A parsed request body: release with body_free. Each item is one entry to
 * write, as the command layer takes it: "key" (when asked for), "value" (a
 * string kept unquoted, any other JSON as compact text) and "ttl" in
 * milliseconds (0 when absent or null). Strings point into the parsed
 * document or into alloc'd memory.
 */
struct body {
    json_t *root;
    size_t count;            /* items parsed */
    struct cmd_item *items;  /* from alloc; one item for a single write */
};

/*
 * body_parse_* return 0, BODY_INVALID (answer 400), BODY_TOO_MANY (413) or
 * BODY_NOMEM (the allocator failed: 503), with a message in err.
 */
#define BODY_INVALID (-1)
#define BODY_TOO_MANY (-2)
#define BODY_NOMEM (-3)

/* The HTTP status for a body_parse_* failure. */
int body_error_status(int rc);

/*
 * A single write: {"key"?: string, "value": any JSON but null, "ttl"?: seconds}
 * ("ttl" any number cmd_ttl_from_seconds takes, or null for none).
 * with_key says whether "key" is required (POST /cache) or ignored (PUT).
 * Members other than these are ignored.
 */
int body_parse_write(const char *body, size_t len, int with_key, store_alloc_fn alloc, void *alloc_ctx,
                     struct body *out, char *err, size_t err_size);

/* A batch write: {"entries": [{"key", "value", "ttl"?}, …]}, at most max_items, each checked as above. */
int body_parse_mset(const char *body, size_t len, size_t max_items, store_alloc_fn alloc, void *alloc_ctx,
                    struct body *out, char *err, size_t err_size);

/* A batch read: {"keys": [string, …]}, at most max_items; fills items[].key only. */
int body_parse_mget(const char *body, size_t len, size_t max_items, store_alloc_fn alloc, void *alloc_ctx,
                    struct body *out, char *err, size_t err_size);

/* An increment: empty, or {"by"?: integer (default 1), "ttl"?: seconds}. */
int body_parse_incr(const char *body, size_t len, int64_t *by, int64_t *ttl_ms, char *err, size_t err_size);

void body_free(struct body *b);

#endif
