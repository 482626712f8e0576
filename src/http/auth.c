/*
 * Bearer tokens (RFC 6750). The only secret cachette holds is compared in
 * constant time: every byte of the expected token is read and XORed whether
 * or not an earlier one differed, and a length mismatch is folded into the
 * same accumulator instead of returning early, so the time a comparison
 * takes depends only on the expected token's length.
 */
#include "http/auth.h"

#include <strings.h>

int auth_bearer_matches(const char *field, size_t len, const char *token, size_t token_len)
{
    static const char scheme[] = "Bearer ";
    const size_t scheme_len = sizeof(scheme) - 1;
    if (len < scheme_len || strncasecmp(field, scheme, scheme_len) != 0)
        return 0;
    const char *given = field + scheme_len;
    size_t given_len = len - scheme_len;
    while (given_len > 0 && *given == ' ')
        given++, given_len--;

    unsigned diff = given_len != token_len;
    for (size_t i = 0; i < token_len; i++)
        diff |= (unsigned char)(i < given_len ? given[i] : 0) ^ (unsigned char)token[i];
    return diff == 0;
}
