/*
 * JSON request bodies, parsed with jansson. A string value is stored as its
 * unescaped UTF-8 bytes (kind STRING) so "Alice" costs five bytes, not seven,
 * and any other value as compact JSON text (kind JSON), which GET copies out
 * without parsing it again. Duplicate members are refused rather than
 * guessed at, NUL is allowed inside strings (\u0000), and the messages say
 * exactly which member is wrong and why.
 */
#include "http/body.h"

#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

static int fail(char *err, size_t err_size, const char *msg)
{
    snprintf(err, err_size, "%s", msg);
    return -1;
}

static int ttl_from_json(json_t *ttl, int64_t *ttl_ms)
{
    *ttl_ms = 0;
    if (ttl == NULL || json_is_null(ttl))
        return 0;
    if (!json_is_integer(ttl))
        return -1;
    json_int_t seconds = json_integer_value(ttl);
    if (seconds <= 0 || seconds > CMD_MAX_TTL_MS / 1000)
        return -1;
    *ttl_ms = (int64_t)seconds * 1000;
    return 0;
}

int body_parse_ttl_text(const char *text, size_t len, int64_t *ttl_ms)
{
    int64_t seconds = 0;
    if (len == 0 || len > 12)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        seconds = seconds * 10 + (text[i] - '0');
    }
    if (seconds <= 0 || seconds > CMD_MAX_TTL_MS / 1000)
        return -1;
    *ttl_ms = seconds * 1000;
    return 0;
}

int body_parse_write(const char *body, size_t len, int with_key, store_alloc_fn alloc, void *alloc_ctx,
                     struct body_write *out, char *err, size_t err_size)
{
    json_error_t jerr;
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return fail(err, err_size, "request body is empty: expected a JSON object");
    out->root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (out->root == NULL) {
        snprintf(err, err_size, "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return -1;
    }
    if (!json_is_object(out->root))
        return fail(err, err_size, "request body must be a JSON object");

    if (with_key) {
        json_t *key = json_object_get(out->root, "key");
        if (key == NULL)
            return fail(err, err_size, "missing \"key\"");
        if (!json_is_string(key))
            return fail(err, err_size, "\"key\" must be a string");
        out->key = json_string_value(key);
        out->key_len = json_string_length(key);
        if (out->key_len == 0)
            return fail(err, err_size, "\"key\" must not be empty");
    }

    json_t *value = json_object_get(out->root, "value");
    if (value == NULL)
        return fail(err, err_size, "missing \"value\"");
    if (json_is_null(value))
        return fail(err, err_size, "\"value\" must not be null");
    if (ttl_from_json(json_object_get(out->root, "ttl"), &out->ttl_ms) != 0)
        return fail(err, err_size, "\"ttl\" must be a whole number of seconds, at least 1 and at most 315360000");

    if (json_is_string(value)) {
        out->value.kind = STORE_KIND_STRING;
        out->value.data = json_string_value(value);
        out->value.len = json_string_length(value);
        return 0;
    }
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    size_t size = json_dumpb(value, NULL, 0, flags);
    char *text = size ? alloc(alloc_ctx, size) : NULL;
    if (text == NULL || json_dumpb(value, text, size, flags) != size)
        return fail(err, err_size, "out of memory while encoding \"value\"");
    out->value.kind = STORE_KIND_JSON;
    out->value.data = text;
    out->value.len = size;
    return 0;
}

void body_write_free(struct body_write *w)
{
    json_decref(w->root);
    w->root = NULL;
}
