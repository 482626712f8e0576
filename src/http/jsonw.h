/* Writing JSON text by hand, for the response bodies on the hot path (jsonw.c). */
#ifndef CACHETTE_HTTP_JSONW_H
#define CACHETTE_HTTP_JSONW_H

#include <stddef.h>

#include "cachette/store.h"

/* The most bytes json_write_string() can write for n input bytes. */
#define JSONW_STRING_MAX(n) (6 * (n) + 2)

/* The bytes json_write_string(dst, s, n) writes, exactly. */
size_t json_string_len(const char *s, size_t n);

/*
 * Writes s[0..n) as a quoted JSON string at dst and returns the end. Quotes,
 * backslashes and control characters (NUL included) are escaped; other bytes,
 * which callers ensure are UTF-8, are copied as they are.
 */
char *json_write_string(char *dst, const char *s, size_t n);

/* The most bytes json_write_key_member() can write for a key of n bytes. */
#define JSONW_KEY_MEMBER_MAX(n) (JSONW_STRING_MAX(n) + 13)

/*
 * Writes the member naming a key at dst and returns the end: "key":"text"
 * for a UTF-8 key, "key_base64":"…" for any other bytes, as values are shown.
 */
char *json_write_key_member(char *dst, const char *key, size_t n);

/* Whether item can be written as a JSON value: JSON, a string, or raw bytes that are UTF-8. */
int json_item_is_text(const struct store_item *item);

/* The most bytes json_write_item can write for item. */
size_t json_item_max(const struct store_item *item);

/* The bytes json_write_item writes for item, exactly (a pass over a string's bytes). */
size_t json_item_len(const struct store_item *item);

/*
 * Writes the item as one JSON value at dst and returns the end: stored JSON
 * verbatim, a string (or UTF-8 raw bytes) as a JSON string. The caller has
 * checked json_item_is_text.
 */
char *json_write_item(char *dst, const struct store_item *item);

#endif
