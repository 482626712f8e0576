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
#include "cmd/ttl.h"
#include "cmd/utf8.h"

static int fail(char *err, size_t err_size, const char *msg)
{
    snprintf(err, err_size, "%s", msg);
    return -1;
}

/* Reads "ttl" (absent or null: none, 0) as the command layer reads every TTL; 0, or -1 with err set. */
static int ttl_from_json(json_t *ttl, int64_t *ttl_ms, char *err, size_t err_size)
{
    *ttl_ms = 0;
    if (ttl == NULL || json_is_null(ttl))
        return 0;
    if (json_is_number(ttl) && cmd_ttl_from_seconds(json_number_value(ttl), ttl_ms) == CMD_OK)
        return 0;
    cmd_status_message(NULL, CMD_BAD_TTL, err, err_size);
    return -1;
}

/* Loads a JSON object; returns it, or NULL with err set. */
static json_t *load_object(const char *body, size_t len, char *err, size_t err_size)
{
    json_error_t jerr;
    if (len == 0) {
        fail(err, err_size, "request body is empty: expected a JSON object");
        return NULL;
    }
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        /* jansson quotes the input near the error, and may cut a multi-byte character: the reply must stay UTF-8. */
        utf8_scrub(jerr.text, strlen(jerr.text));
        snprintf(err, err_size, "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        fail(err, err_size, "request body must be a JSON object");
        return NULL;
    }
    return root;
}

/* Fills item from one {"key"?, "value", "ttl"?} object. */
static int parse_item(json_t *obj, int with_key, store_alloc_fn alloc, void *alloc_ctx, struct cmd_item *item,
                      char *err, size_t err_size)
{
    memset(item, 0, sizeof(*item));
    if (!json_is_object(obj))
        return fail(err, err_size, "must be a JSON object");
    if (with_key) {
        json_t *key = json_object_get(obj, "key");
        if (key == NULL)
            return fail(err, err_size, "missing \"key\"");
        if (!json_is_string(key))
            return fail(err, err_size, "\"key\" must be a string");
        item->key = json_string_value(key);
        item->key_len = json_string_length(key);
        if (item->key_len == 0)
            return fail(err, err_size, "\"key\" must not be empty");
    }

    json_t *value = json_object_get(obj, "value");
    if (value == NULL)
        return fail(err, err_size, "missing \"value\"");
    if (json_is_null(value))
        return fail(err, err_size, "\"value\" must not be null");
    if (ttl_from_json(json_object_get(obj, "ttl"), &item->ttl_ms, err, err_size) != 0)
        return -1;

    if (json_is_string(value)) {
        item->value.kind = STORE_KIND_STRING;
        item->value.data = json_string_value(value);
        item->value.len = json_string_length(value);
        return 0;
    }
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    size_t size = json_dumpb(value, NULL, 0, flags);
    char *text = size ? alloc(alloc_ctx, size) : NULL;
    if (text == NULL || json_dumpb(value, text, size, flags) != size) {
        fail(err, err_size, "out of memory while encoding \"value\"");
        return BODY_NOMEM;
    }
    item->value.kind = STORE_KIND_JSON;
    item->value.data = text;
    item->value.len = size;
    return 0;
}

int body_parse_write(const char *body, size_t len, int with_key, store_alloc_fn alloc, void *alloc_ctx,
                     struct body *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof(*out));
    if ((out->root = load_object(body, len, err, err_size)) == NULL)
        return BODY_INVALID;
    out->items = alloc(alloc_ctx, sizeof(*out->items));
    if (out->items == NULL) {
        fail(err, err_size, "out of memory while parsing the body");
        return BODY_NOMEM;
    }
    out->count = 1;
    return parse_item(out->root, with_key, alloc, alloc_ctx, out->items, err, err_size);
}

/*
 * Loads a batch body {"<name>": [...]}: checks the array and its size and
 * allocates out->items for it.
 */
static int load_batch(const char *body, size_t len, const char *name, size_t max_items, store_alloc_fn alloc,
                      void *alloc_ctx, struct body *out, json_t **array, char *err, size_t err_size)
{
    memset(out, 0, sizeof(*out));
    if ((out->root = load_object(body, len, err, err_size)) == NULL)
        return BODY_INVALID;
    *array = json_object_get(out->root, name);
    if (*array == NULL || !json_is_array(*array)) {
        snprintf(err, err_size, "\"%s\" must be an array", name);
        return BODY_INVALID;
    }
    out->count = json_array_size(*array);
    if (out->count > max_items) {
        snprintf(err, err_size, "\"%s\" has %zu items, more than max-batch (%zu)", name, out->count, max_items);
        return BODY_TOO_MANY;
    }
    out->items = alloc(alloc_ctx, (out->count ? out->count : 1) * sizeof(*out->items));
    if (out->items == NULL) {
        fail(err, err_size, "out of memory while parsing the body");
        return BODY_NOMEM;
    }
    return 0;
}

int body_parse_mset(const char *body, size_t len, size_t max_items, store_alloc_fn alloc, void *alloc_ctx,
                    struct body *out, char *err, size_t err_size)
{
    json_t *array;
    int rc = load_batch(body, len, "entries", max_items, alloc, alloc_ctx, out, &array, err, err_size);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < out->count; i++) {
        char why[200];
        int rc = parse_item(json_array_get(array, i), 1, alloc, alloc_ctx, &out->items[i], why, sizeof(why));
        if (rc != 0) {
            snprintf(err, err_size, "entries[%zu]: %s", i, why);
            return rc;
        }
    }
    return 0;
}

int body_parse_mget(const char *body, size_t len, size_t max_items, store_alloc_fn alloc, void *alloc_ctx,
                    struct body *out, char *err, size_t err_size)
{
    json_t *array;
    int rc = load_batch(body, len, "keys", max_items, alloc, alloc_ctx, out, &array, err, err_size);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < out->count; i++) {
        json_t *key = json_array_get(array, i);
        if (!json_is_string(key)) {
            snprintf(err, err_size, "keys[%zu] must be a string", i);
            return BODY_INVALID;
        }
        memset(&out->items[i], 0, sizeof(out->items[i]));
        out->items[i].key = json_string_value(key);
        out->items[i].key_len = json_string_length(key);
    }
    return 0;
}

int body_parse_incr(const char *body, size_t len, int64_t *by, int64_t *ttl_ms, char *err, size_t err_size)
{
    *by = 1;
    *ttl_ms = 0;
    if (len == 0)
        return 0;
    json_t *root = load_object(body, len, err, err_size);
    if (root == NULL)
        return BODY_INVALID;
    int rc = 0;
    json_t *step = json_object_get(root, "by");
    if (step != NULL && !json_is_integer(step))
        rc = fail(err, err_size, "\"by\" must be a whole number");
    else if (ttl_from_json(json_object_get(root, "ttl"), ttl_ms, err, err_size) != 0)
        rc = BODY_INVALID;
    else if (step != NULL)
        *by = json_integer_value(step);
    json_decref(root);
    return rc;
}

int body_error_status(int rc)
{
    return rc == BODY_TOO_MANY ? 413 : rc == BODY_NOMEM ? 503 : 400;
}

void body_free(struct body *b)
{
    json_decref(b->root);
    b->root = NULL;
}
