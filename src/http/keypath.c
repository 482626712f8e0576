/*
 * Keys come from the raw request target, not from h2o's path_normalized,
 * which decodes %2F into '/' and resolves dot-segments: there, "a%2Fb" and
 * "a/b" would be one key and "/cache/x/../k" would read "k". Here every byte
 * after "/cache/" is the key, with %XX escapes decoded exactly once, so keys
 * may hold '/', spaces, '?' (as %3F), UTF-8 and any other byte, NUL (%00)
 * included: keys are binary-safe, as over RESP.
 */
#include "http/keypath.h"

#include <string.h>

#include "cmd/hex.h"

long keypath_decode(const char *src, size_t len, char *dst)
{
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] != '%') {
            dst[out++] = src[i];
            continue;
        }
        if (len - i < 3)
            return -1;
        int hi = hex_digit_value(src[i + 1]), lo = hex_digit_value(src[i + 2]);
        if (hi < 0 || lo < 0)
            return -1;
        dst[out++] = (char)(hi << 4 | lo);
        i += 2;
    }
    return (long)out;
}

int query_find(const char *query, size_t len, const char *name, const char **value, size_t *value_len)
{
    size_t name_len = strlen(name);
    const char *p = query, *end = query + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *param_end = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(param_end - p));
        const char *key_end = eq ? eq : param_end;
        if ((size_t)(key_end - p) == name_len && memcmp(p, name, name_len) == 0) {
            *value = eq ? eq + 1 : param_end;
            *value_len = eq ? (size_t)(param_end - eq - 1) : 0;
            return 1;
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    return 0;
}
