/*
 * HTTP header semantics cachette implements itself (negotiate.c): entity
 * tags and their conditions (RFC 9110 §8.8.3, §13.1), Accept, and base64.
 * No h2o types, so each is fuzzable and unit-tested on its own.
 */
#ifndef CACHETTE_HTTP_NEGOTIATE_H
#define CACHETTE_HTTP_NEGOTIATE_H

#include <stddef.h>
#include <stdint.h>

/* A strong entity tag: '"', 16 lowercase hex digits of the version, '"'. */
#define ETAG_LEN 18

/* Writes the ETag of version into out (ETAG_LEN bytes, not NUL-terminated). */
void etag_format(char *out, uint64_t version);

/*
 * Evaluates an If-Match (weak = 0: strong comparison) or If-None-Match
 * (weak = 1: W/ prefixes ignored) field value against the current entry:
 * returns 1 when the field lists "*" and the entry exists, or lists the
 * entry's tag; 0 otherwise, including for a malformed field.
 */
int etag_matches(const char *field, size_t len, int exists, uint64_t version, int weak);

/*
 * Returns 1 when an Accept field value gives media type `type` (its
 * parameters ignored) a higher quality than application/json, so the client
 * prefers the stored representation to the JSON envelope.
 */
int accept_prefers(const char *accept, size_t len, const char *type, size_t type_len);

/* Bytes base64_encode writes for n input bytes. */
#define BASE64_LEN(n) (((n) + 2) / 3 * 4)

/* Standard base64 (RFC 4648 §4) with padding; returns the end of what was written. */
char *base64_encode(char *dst, const unsigned char *src, size_t n);

#endif
