/*
 * JSON string writing. Responses are assembled by hand rather than through
 * jansson because a GET must not parse the stored JSON again: a stored
 * value is already compact JSON text and is copied in verbatim; only keys
 * and string values need escaping, which is this one function.
 */
#include "http/jsonw.h"

char *json_write_string(char *dst, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    *dst++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *dst++ = '\\';
            *dst++ = (char)c;
        } else if (c >= 0x20) {
            *dst++ = (char)c;
        } else if (c == '\n') {
            *dst++ = '\\', *dst++ = 'n';
        } else if (c == '\r') {
            *dst++ = '\\', *dst++ = 'r';
        } else if (c == '\t') {
            *dst++ = '\\', *dst++ = 't';
        } else {
            *dst++ = '\\', *dst++ = 'u', *dst++ = '0', *dst++ = '0';
            *dst++ = hex[c >> 4];
            *dst++ = hex[c & 15];
        }
    }
    *dst++ = '"';
    return dst;
}
