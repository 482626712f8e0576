/*
 * HTTP header semantics cachette implements itself (negotiate.c): entity
 * tags and their conditions (RFC 9110 §8.8.3, §13.1), Accept, and base64.
 * No h2o types, so each is fuzzable and unit-tested on its own.
 */
#ifndef CACHETTE_HTTP_NEGOTIATE_H
#define CACHETTE_HTTP_NEGOTIATE_H

#include <stddef.h>
#include <stdint.h>

/*
 * An entry has two representations, so two strong entity tags per version
 * (RFC 9110 8.8.3: a strong tag names one representation): the JSON
 * envelope's, '"', 16 lowercase hex digits of the version, '"'; and the
 * stored bytes' (?raw, or an Accept that prefers their type), the same with
 * "-raw" before the closing quote.
 */
enum etag_of { ETAG_OF_ENVELOPE = 1, ETAG_OF_RAW = 2, ETAG_OF_EITHER = ETAG_OF_ENVELOPE | ETAG_OF_RAW };
#define ETAG_LEN     18 /* the envelope's */
#define ETAG_RAW_LEN 22 /* the stored bytes' */

/* Writes the ETag of one representation of version into out (not NUL-terminated); returns its length. */
size_t etag_format(char *out, uint64_t version, enum etag_of which);

/*
 * Evaluates an If-Match (weak = 0: strong comparison) or If-None-Match
 * (weak = 1: W/ prefixes ignored) field value against the current entry:
 * returns 1 when the field lists "*" and the entry exists, or lists the tag
 * of one of the representations in `which`; 0 otherwise, including for a
 * malformed field.
 */
int etag_matches(const char *field, size_t len, int exists, uint64_t version, int weak, enum etag_of which);

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
