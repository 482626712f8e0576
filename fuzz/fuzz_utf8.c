/*
 * Fuzz target: UTF-8 validation (utf8_is_valid, src/cmd/utf8.c) and the JSON
 * string writer (src/http/jsonw.c).
 *
 * utf8_is_valid is compared with a reference decoder written from the table
 * of well-formed byte sequences in the Unicode Standard (§3.9, Table 3-7),
 * a different formulation from cmd.c's decode-then-range-check. The whole
 * input is also written with json_write_string into a buffer of exactly
 * JSONW_STRING_MAX(n) bytes; when the input is UTF-8, jansson must parse the
 * output back to the same bytes (NULs included), and when it is not, jansson
 * must refuse it (the server only writes UTF-8 there: keys and byte values
 * that are not UTF-8 go out as base64). json_write_item is
 * checked to agree with json_item_is_text and json_item_max for each kind.
 *
 * Links: src/http/jsonw.c src/http/negotiate.c src/cmd/utf8.c -ljansson
 */
#include <jansson.h>

#include "cmd/cmd.h"
#include "cmd/utf8.h"
#include "fuzz_check.h"
#include "http/jsonw.h"

/* Table 3-7: the first byte fixes the length and the range of the second byte; the others are 80..BF. */
static int ref_utf8(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c <= 0x7f) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
        } else if (c == 0xe0) {
            n = 3, lo = 0xa0;
        } else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
            n = 3;
        } else if (c == 0xed) {
            n = 3, hi = 0x9f;
        } else if (c == 0xf0) {
            n = 4, lo = 0x90;
        } else if (c >= 0xf1 && c <= 0xf3) {
            n = 4;
        } else if (c == 0xf4) {
            n = 4, hi = 0x8f;
        } else {
            return 0;
        }
        if (len - i < n || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < n; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return 0;
        i += n;
    }
    return 1;
}

static void check_item(const char *data, size_t len, enum store_kind kind, int valid)
{
    struct store_item item = {.kind = kind, .data = (char *)data, .len = len};
    int text = json_item_is_text(&item);
    CHECK(text == (kind != STORE_KIND_BYTES || valid));
    if (!text)
        return;
    size_t max = json_item_max(&item);
    char *out = malloc(max ? max : 1);
    CHECK(out != NULL);
    char *end = json_write_item(out, &item);
    CHECK((size_t)(end - out) <= max);
    if (kind == STORE_KIND_JSON)
        CHECK((size_t)(end - out) == len && memcmp(out, data, len) == 0);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    int valid = utf8_is_valid(s, size);
    CHECK(valid == 0 || valid == 1);
    CHECK(valid == ref_utf8(data, size));

    size_t max = JSONW_STRING_MAX(size);
    char *out = malloc(max);
    CHECK(out != NULL);
    char *end = json_write_string(out, s, size);
    size_t len = (size_t)(end - out);
    CHECK(len >= size + 2 && len <= max);
    CHECK(out[0] == '"' && out[len - 1] == '"');
    for (size_t i = 0; i < len; i++)
        CHECK((uint8_t)out[i] >= 0x20); /* no raw control characters */

    json_error_t err;
    json_t *back = json_loadb(out, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (valid) {
        if (back == NULL)
            fprintf(stderr, "jansson refused our output: %s\n", err.text);
        CHECK(json_is_string(back));
        CHECK(json_string_length(back) == size && memcmp(json_string_value(back), s, size) == 0);
    } else {
        CHECK(back == NULL);
    }
    json_decref(back);
    free(out);

    check_item(s, size, STORE_KIND_STRING, valid);
    check_item(s, size, STORE_KIND_BYTES, valid);
    check_item(s, size, STORE_KIND_JSON, valid);
    return 0;
}
