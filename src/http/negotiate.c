/*
 * Entity tags, Accept and base64 (see negotiate.h).
 *
 * ETags are derived from the entry's version, which changes on every write
 * of the key, so a tag identifies one write of one key: strong, and never
 * reused while the process lives; a suffix tells the representation. Field
 * parsing is tolerant of optional whitespace and strict about everything
 * else: a malformed If-Match matches nothing (the write is refused, 412), a
 * malformed If-None-Match matches nothing (the request proceeds), which is
 * the safe side of each.
 */
#include "http/negotiate.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

size_t etag_format(char *out, uint64_t version, enum etag_of which)
{
    static const char hex[] = "0123456789abcdef";
    out[0] = '"';
    for (int i = 0; i < 16; i++)
        out[1 + i] = hex[(version >> (60 - 4 * i)) & 15];
    if (which == ETAG_OF_RAW) {
        memcpy(out + 17, "-raw\"", 5);
        return ETAG_RAW_LEN;
    }
    out[ETAG_LEN - 1] = '"';
    return ETAG_LEN;
}

static const char *skip_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* Whether the tag [p, p + len) is the one of representation `which` of version. */
static int is_tag_of(const char *p, size_t len, uint64_t version, enum etag_of which)
{
    char mine[ETAG_RAW_LEN];
    return len == etag_format(mine, version, which) && memcmp(p, mine, len) == 0;
}

int etag_matches(const char *field, size_t len, int exists, uint64_t version, int weak, enum etag_of which)
{
    const char *p = field, *end = field + len;

    int found = 0;
    p = skip_ows(p, end);
    if (p < end && *p == '*')
        return exists && skip_ows(p + 1, end) == end;
    if (p == end)
        return 0;
    while (p < end) {
        int is_weak = 0;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
            is_weak = 1;
            p += 2;
        }
        if (p >= end || *p != '"')
            return 0;
        const char *close = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (close == NULL)
            return 0;
        size_t tag_len = (size_t)(close - p + 1);
        if (exists && (weak || !is_weak) &&
            (((which & ETAG_OF_ENVELOPE) && is_tag_of(p, tag_len, version, ETAG_OF_ENVELOPE)) ||
             ((which & ETAG_OF_RAW) && is_tag_of(p, tag_len, version, ETAG_OF_RAW))))
            found = 1;
        p = skip_ows(close + 1, end);
        if (p < end && *p != ',')
            return 0;
        if (p < end)
            p = skip_ows(p + 1, end);
    }
    return found;
}

/* The length of the type/subtype part of a media type, before any ';' or space. */
static size_t essence_len(const char *type, size_t len)
{
    size_t n = 0;
    while (n < len && type[n] != ';' && type[n] != ' ' && type[n] != '\t' && type[n] != ',')
        n++;
    return n;
}

/* How specifically `range` (exact, "type/any" or "any/any") covers `type`: 3, 2, 1, or 0 if not at all. */
static int range_covers(const char *range, size_t range_len, const char *type, size_t type_len)
{
    if (range_len == 3 && memcmp(range, "*/*", 3) == 0)
        return 1;
    const char *slash = memchr(type, '/', type_len);
    if (slash == NULL)
        return 0;
    size_t major = (size_t)(slash - type) + 1;
    if (range_len == major + 1 && range[range_len - 1] == '*' && strncasecmp(range, type, major) == 0)
        return 2;
    return range_len == type_len && strncasecmp(range, type, type_len) == 0 ? 3 : 0;
}

/* The quality an Accept field gives a media type: that of its most specific covering range. */
static double quality(const char *accept, size_t len, const char *type, size_t type_len)
{
    const char *p = accept, *end = accept + len;
    int best_specificity = 0;
    double best_q = 0;
    while (p < end) {
        const char *next = memchr(p, ',', (size_t)(end - p));
        const char *item_end = next ? next : end;
        p = skip_ows(p, item_end);
        size_t range_len = essence_len(p, (size_t)(item_end - p));
        double q = 1;
        const char *param = memchr(p, ';', (size_t)(item_end - p));
        while (param != NULL) {
            const char *v = skip_ows(param + 1, item_end);
            if (item_end - v >= 2 && (v[0] == 'q' || v[0] == 'Q') && v[1] == '=') {
                char num[8] = {0};
                size_t n = (size_t)(item_end - v - 2) < sizeof(num) - 1 ? (size_t)(item_end - v - 2) : sizeof(num) - 1;
                memcpy(num, v + 2, n);
                q = strtod(num, NULL);
                if (q < 0 || q > 1)
                    q = 0;
            }
            param = memchr(param + 1, ';', (size_t)(item_end - param - 1));
        }
        int specificity = range_covers(p, range_len, type, type_len);
        if (specificity > best_specificity) {
            best_specificity = specificity;
            best_q = q;
        }
        p = next ? next + 1 : end;
    }
    return best_q;
}

int accept_prefers(const char *accept, size_t len, const char *type, size_t type_len)
{
    type_len = essence_len(type, type_len);
    return quality(accept, len, type, type_len) > quality(accept, len, "application/json", 16);
}

char *base64_encode(char *dst, const unsigned char *src, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        *dst++ = alphabet[v >> 18];
        *dst++ = alphabet[(v >> 12) & 63];
        *dst++ = alphabet[(v >> 6) & 63];
        *dst++ = alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)src[i] << 16 | (i + 1 < n ? (uint32_t)src[i + 1] << 8 : 0);
        *dst++ = alphabet[v >> 18];
        *dst++ = alphabet[(v >> 12) & 63];
        *dst++ = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        *dst++ = '=';
    }
    return dst;
}
