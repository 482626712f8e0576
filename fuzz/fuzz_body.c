/*
 * Fuzz target: JSON request bodies (src/http/body.c).
 *
 * The first byte is a control byte: its low four bits name the allocation to
 * fail (0: none; the count runs over all the parsers of one input), the next
 * three the max-batch limit (0-7) for _mset and _mget. The rest is the body,
 * given to every parser: body_parse_write with and without "key",
 * body_parse_mset, body_parse_mget, body_parse_incr, and cmd_ttl_parse (the
 * reading of ?ttl=, beside the body's "ttl").
 *
 * The allocator is a per-input pool of separate malloc blocks, so ASan sees an
 * overrun of any one of them, all freed after the input. On success every
 * item is checked: a key is non-empty, a TTL is in range and is the JSON
 * number's seconds rounded up to the millisecond, a
 * string value is the document's string, and a JSON value is compact text
 * that jansson parses back to a value equal to the one in the document and
 * that dumps to the same text again. On failure the message is non-empty
 * UTF-8 (it is sent inside a JSON reply).
 * cmd_ttl_parse agrees with a reference for whole seconds, and whatever it
 * accepts is in range.
 *
 * An allocation that fails must give BODY_NOMEM (and only then), with a
 * message; body_error_status must map each code to 400, 413 or 503.
 *
 * Links: src/http/body.c src/cmd/cmd.c src/cmd/ttl.c src/cmd/utf8.c src/store/ -ljansson
 */
#include "fuzz_check.h"
#include "cmd/cmd.h"
#include "cmd/ttl.h"
#include "cmd/utf8.h"
#include "http/body.h"

#define POOL_MAX 64

struct pool {
    void *blocks[POOL_MAX];
    size_t count;
    unsigned calls;   /* allocations asked for since the input began */
    unsigned fail_at; /* fail this call (1-based), 0 never */
    int failed;       /* an allocation failed in the current parse */
};

static void *pool_alloc(void *ctx, size_t size)
{
    struct pool *p = ctx;
    p->calls++;
    if (p->calls == p->fail_at) {
        p->failed = 1;
        return NULL;
    }
    CHECK(p->count < POOL_MAX);
    CHECK(size > 0);
    void *b = malloc(size);
    CHECK(b != NULL);
    p->blocks[p->count++] = b;
    return b;
}

static void pool_reset(struct pool *p)
{
    for (size_t i = 0; i < p->count; i++)
        free(p->blocks[i]);
    p->count = 0;
}

/* Starts a parse: clears the message and the failure flag. */
static void begin(struct pool *p, char *err, size_t err_size)
{
    p->failed = 0;
    memset(err, 0, err_size);
}

/* Every failure has a message and a status; BODY_NOMEM exactly when the allocator failed. */
static void check_failure(const struct pool *p, int rc, const char *err, size_t err_size)
{
    CHECK((rc == BODY_NOMEM) == p->failed);
    if (rc == 0)
        return;
    CHECK(strnlen(err, err_size) > 0 && strnlen(err, err_size) < err_size);
    CHECK(utf8_is_valid(err, strlen(err))); /* it goes into a JSON reply */
    int status = body_error_status(rc);
    CHECK(status == (rc == BODY_TOO_MANY ? 413 : rc == BODY_NOMEM ? 503 : 400));
}

static void check_ttl(json_t *obj, int64_t ttl_ms)
{
    json_t *ttl = json_object_get(obj, "ttl");
    if (ttl == NULL || json_is_null(ttl)) {
        CHECK(ttl_ms == 0);
        return;
    }
    CHECK(json_is_number(ttl));
    CHECK(ttl_ms >= 1 && ttl_ms <= CMD_MAX_TTL_MS);
    /*
     * Rounded up to the millisecond: never below the seconds given, less than
     * 1 ms above. (ttl_ms - 1 < ms, not ttl_ms < ms + 1: for a TTL of 1e-24 s,
     * ms + 1 is exactly 1.0 in a double.)
     */
    double ms = json_number_value(ttl) * 1000;
    CHECK((double)ttl_ms >= ms * (1 - 1e-12) && (double)(ttl_ms - 1) < ms);
}

/* One parsed item against the object it came from. */
static void check_item(json_t *obj, const struct cmd_item *item, int with_key)
{
    CHECK(json_is_object(obj));
    if (with_key) {
        json_t *key = json_object_get(obj, "key");
        CHECK(json_is_string(key));
        CHECK(item->key == json_string_value(key) && item->key_len == json_string_length(key));
        CHECK(item->key_len > 0);
    } else {
        CHECK(item->key == NULL && item->key_len == 0);
    }
    check_ttl(obj, item->ttl_ms);

    json_t *value = json_object_get(obj, "value");
    CHECK(value != NULL && !json_is_null(value));
    if (item->value.kind == STORE_KIND_STRING) {
        CHECK(json_is_string(value));
        CHECK(item->value.len == json_string_length(value));
        CHECK(memcmp(item->value.data, json_string_value(value), item->value.len) == 0);
        return;
    }
    CHECK(item->value.kind == STORE_KIND_JSON && !json_is_string(value));
    CHECK(item->value.len > 0);
    json_error_t jerr;
    json_t *again = json_loadb(item->value.data, item->value.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (again == NULL)
        fprintf(stderr, "stored JSON does not parse: %s: %.*s\n", jerr.text, (int)item->value.len,
                (const char *)item->value.data);
    CHECK(again != NULL);
    CHECK(json_equal(again, value));
    char *text = json_dumps(again, JSON_COMPACT | JSON_ENCODE_ANY);
    CHECK(text != NULL);
    CHECK(strlen(text) == item->value.len && memcmp(text, item->value.data, item->value.len) == 0);
    free(text);
    json_decref(again);
}

/*
 * The reference for cmd_ttl_parse on text of digits alone (leading zeros
 * allowed, at most 32 characters): 1 s to 10 years. -2 for any other text.
 */
static int ref_ttl_text(const char *text, size_t len, int64_t *ttl_ms)
{
    int64_t s = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -2;
        if (s <= 315360000)
            s = s * 10 + (text[i] - '0');
    }
    if (len > 32 || s < 1 || s > 315360000)
        return -1;
    *ttl_ms = s * 1000;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct pool pool = {.fail_at = data[0] & 15};
    size_t max_items = (data[0] >> 4) & 7;
    /* A copy of exactly the body's size, so ASan sees any read past it. */
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    CHECK(body != NULL);
    memcpy(body, data + 1, len);

    char err[256];
    struct body b;
    for (int with_key = 0; with_key <= 1; with_key++) {
        begin(&pool, err, sizeof(err));
        int rc = body_parse_write(body, len, with_key, pool_alloc, &pool, &b, err, sizeof(err));
        CHECK(rc == 0 || rc == BODY_INVALID || rc == BODY_NOMEM);
        check_failure(&pool, rc, err, sizeof(err));
        if (rc == 0) {
            CHECK(b.count == 1 && b.items != NULL);
            check_item(b.root, &b.items[0], with_key);
        }
        body_free(&b);
        CHECK(b.root == NULL);
    }

    begin(&pool, err, sizeof(err));
    int rc = body_parse_mset(body, len, max_items, pool_alloc, &pool, &b, err, sizeof(err));
    CHECK(rc == 0 || rc == BODY_INVALID || rc == BODY_TOO_MANY || rc == BODY_NOMEM);
    check_failure(&pool, rc, err, sizeof(err));
    if (rc == 0) {
        json_t *entries = json_object_get(b.root, "entries");
        CHECK(json_is_array(entries) && json_array_size(entries) == b.count && b.count <= max_items);
        for (size_t i = 0; i < b.count; i++)
            check_item(json_array_get(entries, i), &b.items[i], 1);
    } else if (rc == BODY_TOO_MANY) {
        CHECK(json_array_size(json_object_get(b.root, "entries")) > max_items);
    }
    body_free(&b);

    begin(&pool, err, sizeof(err));
    rc = body_parse_mget(body, len, max_items, pool_alloc, &pool, &b, err, sizeof(err));
    CHECK(rc == 0 || rc == BODY_INVALID || rc == BODY_TOO_MANY || rc == BODY_NOMEM);
    check_failure(&pool, rc, err, sizeof(err));
    if (rc == 0) {
        json_t *keys = json_object_get(b.root, "keys");
        CHECK(json_is_array(keys) && json_array_size(keys) == b.count && b.count <= max_items);
        for (size_t i = 0; i < b.count; i++) {
            json_t *key = json_array_get(keys, i);
            CHECK(json_is_string(key));
            CHECK(b.items[i].key == json_string_value(key) && b.items[i].key_len == json_string_length(key));
        }
    } else if (rc == BODY_TOO_MANY) {
        CHECK(json_array_size(json_object_get(b.root, "keys")) > max_items);
    }
    body_free(&b);

    int64_t by = -7, ttl_ms = -7;
    begin(&pool, err, sizeof(err));
    rc = body_parse_incr(body, len, &by, &ttl_ms, err, sizeof(err)); /* allocates through jansson only */
    CHECK(rc == 0 || rc == BODY_INVALID);
    check_failure(&pool, rc, err, sizeof(err));
    if (rc == 0 && len == 0) {
        CHECK(by == 1 && ttl_ms == 0);
    } else if (rc == 0) {
        json_t *root = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        CHECK(json_is_object(root));
        json_t *step = json_object_get(root, "by");
        CHECK(step == NULL ? by == 1 : (json_is_integer(step) && json_integer_value(step) == by));
        check_ttl(root, ttl_ms);
        json_decref(root);
    }

    int64_t got = -7, want = -7;
    enum cmd_status tst = cmd_ttl_parse(body, len, &got);
    int ref = ref_ttl_text(body, len, &want);
    CHECK(tst == CMD_OK || tst == CMD_BAD_TTL);
    if (tst == CMD_OK)
        CHECK(got >= 1 && got <= CMD_MAX_TTL_MS);
    else
        CHECK(got == -7);
    if (ref != -2) /* digits alone: exactly the reference */
        CHECK((tst == CMD_OK ? 0 : -1) == ref && got == want);

    pool_reset(&pool);
    free(body);
    return 0;
}
