/*
 * JSON string writing. Responses are assembled by hand rather than through
 * jansson because a GET must not parse the stored JSON again: a stored
 * value is already compact JSON text and is copied in verbatim; only keys
 * and string values need escaping, which is this one function.
 */
#include "http/jsonw.h"

#include <string.h>

#include "cmd/cmd.h"
#include "cmd/utf8.h"
#include "http/negotiate.h"

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

size_t json_string_len(const char *s, size_t n)
{
    size_t len = 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        len += c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' ? 2 : c >= 0x20 ? 1 : 6;
    }
    return len;
}

char *json_write_key_member(char *dst, const char *key, size_t n)
{
    if (utf8_is_valid(key, n)) {
        memcpy(dst, "\"key\":", 6);
        return json_write_string(dst + 6, key, n);
    }
    memcpy(dst, "\"key_base64\":\"", 14);
    dst = base64_encode(dst + 14, (const unsigned char *)key, n);
    *dst++ = '"';
    return dst;
}

int json_item_is_text(const struct store_item *item)
{
    return item->kind != STORE_KIND_BYTES || utf8_is_valid(item->data, item->len);
}

size_t json_item_max(const struct store_item *item)
{
    return item->kind == STORE_KIND_JSON ? item->len : JSONW_STRING_MAX(item->len);
}

size_t json_item_len(const struct store_item *item)
{
    return item->kind == STORE_KIND_JSON ? item->len : json_string_len(item->data, item->len);
}

char *json_write_item(char *dst, const struct store_item *item)
{
    if (item->kind != STORE_KIND_JSON)
        return json_write_string(dst, item->data, item->len);
    memcpy(dst, item->data, item->len);
    return dst + item->len;
}
