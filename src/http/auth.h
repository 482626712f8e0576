/* Bearer-token authentication (auth.c). No h2o types. */
#ifndef CACHETTE_HTTP_AUTH_H
#define CACHETTE_HTTP_AUTH_H

#include <stddef.h>

/*
 * Whether an Authorization field value is "Bearer <token>" (the scheme in
 * any case, then spaces). The comparison takes the same time wherever the
 * given token differs from the expected one, so timing reveals nothing of it.
 */
int auth_bearer_matches(const char *field, size_t len, const char *token, size_t token_len);

#endif
