/*
 * Unit tests of the request parsers that sit in front of the store: key
 * percent-decoding, query strings, UTF-8 validation, JSON request bodies,
 * JSON string writing and the size and duration syntax of the flags.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cmd/cmd.h"
#include "cmd/decimal.h"
#include "cmd/utf8.h"
#include "config.h"
#include "http/body.h"
#include "http/jsonw.h"
#include "http/keypath.h"

/* A bump allocator standing in for the request pool: reset by each parse. */
static char arena[1 << 16];
static size_t arena_used;

static void *test_alloc(void *ctx, size_t size)
{
    (void)ctx;
    size = (size + 15) & ~(size_t)15;
    if (arena_used + size > sizeof(arena))
        return NULL;
    arena_used += size;
    return arena + arena_used - size;
}

static void decode_ok(const char *in, const char *want, size_t want_len)
{
    char out[256];
    long n = keypath_decode(in, strlen(in), out);
    assert_int_equal(n, (long)want_len);
    assert_memory_equal(out, want, want_len);
}

static void test_keypath_decode(void **state)
{
    (void)state;
    decode_ok("user42", "user42", 6);
    decode_ok("a%2Fb", "a/b", 3);
    decode_ok("a%2fb", "a/b", 3);
    decode_ok("%20x%20", " x ", 3);
    decode_ok("caf%C3%A9", "caf\xc3\xa9", 5);
    decode_ok("a+b", "a+b", 3);
    decode_ok("%25", "%", 1);
    decode_ok("", "", 0);
}

static void test_keypath_rejects(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(keypath_decode("%", 1, out), -1);
    assert_int_equal(keypath_decode("%2", 2, out), -1);
    assert_int_equal(keypath_decode("ab%", 3, out), -1);
    assert_int_equal(keypath_decode("%zz", 3, out), -1);
    assert_int_equal(keypath_decode("%g0", 3, out), -1);
    assert_int_equal(keypath_decode("a%00b%ff", 8, out), 4);
    assert_memory_equal(out, "a\0b\xff", 4);
}

static void test_query_find(void **state)
{
    (void)state;
    const char *v;
    size_t n;
    const char *q = "raw&ttl=30&x=&ttlx=9";
    assert_int_equal(query_find(q, strlen(q), "ttl", &v, &n), 1);
    assert_int_equal(n, 2);
    assert_memory_equal(v, "30", 2);
    assert_int_equal(query_find(q, strlen(q), "raw", &v, &n), 1);
    assert_int_equal(n, 0);
    assert_int_equal(query_find(q, strlen(q), "x", &v, &n), 1);
    assert_int_equal(n, 0);
    assert_int_equal(query_find(q, strlen(q), "tt", &v, &n), 0);
    assert_int_equal(query_find(q, strlen(q), "y", &v, &n), 0);
    assert_int_equal(query_find("", 0, "ttl", &v, &n), 0);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(utf8_is_valid("plain", 5));
    assert_true(utf8_is_valid("caf\xc3\xa9", 5));
    assert_true(utf8_is_valid("\xe2\x82\xac", 3));         /* U+20AC */
    assert_true(utf8_is_valid("\xf0\x9f\x98\x80", 4));     /* U+1F600 */
    assert_false(utf8_is_valid("\xc3", 1));                /* truncated */
    assert_false(utf8_is_valid("\xc0\xaf", 2));            /* overlong '/' */
    assert_false(utf8_is_valid("\xed\xa0\x80", 3));        /* surrogate */
    assert_false(utf8_is_valid("\xf4\x90\x80\x80", 4));    /* past U+10FFFF */
    assert_false(utf8_is_valid("\xff", 1));
    assert_false(utf8_is_valid("a\x80", 2));

    /* Scrubbing replaces each byte of a broken sequence and keeps the rest. */
    char text[] = "a\xc3'\xe2\x82 caf\xc3\xa9\xff";
    utf8_scrub(text, strlen(text));
    assert_string_equal(text, "a?'?? caf\xc3\xa9?");
}

static void test_check_key(void **state)
{
    (void)state;
    struct cmd_ctx ctx = {.limits = {.max_key_bytes = 4}};
    assert_int_equal(cmd_check_key(&ctx, 4), CMD_OK);
    assert_int_equal(cmd_check_key(&ctx, 5), CMD_KEY_TOO_LONG);
    assert_int_equal(cmd_check_key(&ctx, 0), CMD_BAD_KEY);
}

static int parse(const char *body, int with_key, struct body *b, char *err)
{
    arena_used = 0;
    return body_parse_write(body, strlen(body), with_key, test_alloc, NULL, b, err, 256);
}

static void expect_body_error(const char *body, int with_key, const char *message)
{
    struct body w;
    char err[256];
    assert_int_equal(parse(body, with_key, &w, err), -1);
    assert_string_equal(err, message);
    body_free(&w);
}

static void test_body_string_value(void **state)
{
    (void)state;
    struct body w;
    char err[256];
    assert_int_equal(parse("{\"key\":\"user42\", \"value\":\"Alice\", \"extra\":1}", 1, &w, err), 0);
    assert_int_equal(w.items[0].key_len, 6);
    assert_memory_equal(w.items[0].key, "user42", 6);
    assert_int_equal(w.items[0].value.kind, STORE_KIND_STRING);
    assert_int_equal(w.items[0].value.len, 5);
    assert_memory_equal(w.items[0].value.data, "Alice", 5);
    assert_int_equal(w.items[0].ttl_ms, 0);
    body_free(&w);

    assert_int_equal(parse("{\"value\":\"a\\u0000b\",\"ttl\":7}", 0, &w, err), 0);
    assert_int_equal(w.items[0].value.len, 3);
    assert_memory_equal(w.items[0].value.data, "a\0b", 3);
    assert_int_equal(w.items[0].ttl_ms, 7000);
    body_free(&w);
}

static void test_body_json_value(void **state)
{
    (void)state;
    struct body w;
    char err[256];
    assert_int_equal(parse("{\"key\":\"k\",\"value\": { \"a\" : [1, 2.5, true, null] }}", 1, &w, err), 0);
    assert_int_equal(w.items[0].value.kind, STORE_KIND_JSON);
    assert_int_equal(w.items[0].value.len, strlen("{\"a\":[1,2.5,true,null]}"));
    assert_memory_equal(w.items[0].value.data, "{\"a\":[1,2.5,true,null]}", w.items[0].value.len);
    body_free(&w);

    assert_int_equal(parse("{\"key\":\"k\",\"value\":-12}", 1, &w, err), 0);
    assert_memory_equal(w.items[0].value.data, "-12", 3);
    body_free(&w);
}

static void test_body_errors(void **state)
{
    (void)state;
    const char *ttl_msg = "ttl must be a number of seconds above 0 and at most 315360000";
    expect_body_error("", 1, "request body is empty: expected a JSON object");
    expect_body_error("[1]", 1, "request body must be a JSON object");
    expect_body_error("\"s\"", 1, "request body must be a JSON object");
    expect_body_error("{\"value\":1}", 1, "missing \"key\"");
    expect_body_error("{\"key\":5,\"value\":1}", 1, "\"key\" must be a string");
    expect_body_error("{\"key\":\"\",\"value\":1}", 1, "\"key\" must not be empty");
    expect_body_error("{\"key\":\"k\"}", 1, "missing \"value\"");
    expect_body_error("{\"key\":\"k\",\"value\":null}", 1, "\"value\" must not be null");
    expect_body_error("{\"key\":\"k\",\"value\":1,\"ttl\":0}", 1, ttl_msg);
    expect_body_error("{\"key\":\"k\",\"value\":1,\"ttl\":-1}", 1, ttl_msg);
    expect_body_error("{\"key\":\"k\",\"value\":1,\"ttl\":\"5\"}", 1, ttl_msg);
    expect_body_error("{\"key\":\"k\",\"value\":1,\"ttl\":0.0}", 1, ttl_msg);
    expect_body_error("{\"key\":\"k\",\"value\":1,\"ttl\":-0.001}", 1, ttl_msg);
    expect_body_error("{\"key\":\"k\",\"value\":1,\"ttl\":315360001}", 1, ttl_msg);

    struct body w;
    char err[256];
    assert_int_equal(parse("{\"key\":\"k\",\"value\":1,\"key\":\"j\"}", 1, &w, err), -1);
    assert_non_null(strstr(err, "duplicate"));
    body_free(&w);
    assert_int_equal(parse("{\"key\":", 1, &w, err), -1);
    assert_non_null(strstr(err, "invalid JSON"));
    body_free(&w);
    /* jansson's message quotes the input near the error and cut "\u" + "é" after its first byte (found by netfuzz). */
    assert_int_equal(parse("{\"a\":\"\\u\xc3\xa9\"}", 1, &w, err), -1);
    assert_non_null(strstr(err, "invalid JSON"));
    assert_true(utf8_is_valid(err, strlen(err)));
    body_free(&w);
}

static void test_body_batches(void **state)
{
    (void)state;
    struct body b;
    char err[256];
    const char *mset = "{\"entries\":[{\"key\":\"a\",\"value\":1},{\"key\":\"b\",\"value\":\"x\",\"ttl\":5}]}";
    arena_used = 0;
    assert_int_equal(body_parse_mset(mset, strlen(mset), 10, test_alloc, NULL, &b, err, sizeof(err)), 0);
    assert_int_equal(b.count, 2);
    assert_memory_equal(b.items[1].key, "b", 1);
    assert_int_equal(b.items[1].ttl_ms, 5000);
    assert_int_equal(b.items[1].value.kind, STORE_KIND_STRING);
    body_free(&b);

    assert_int_equal(body_parse_mset(mset, strlen(mset), 1, test_alloc, NULL, &b, err, sizeof(err)), BODY_TOO_MANY);
    assert_string_equal(err, "\"entries\" has 2 items, more than max-batch (1)");
    body_free(&b);

    const char *bad = "{\"entries\":[{\"key\":\"a\",\"value\":1},{\"key\":\"b\"}]}";
    assert_int_equal(body_parse_mset(bad, strlen(bad), 10, test_alloc, NULL, &b, err, sizeof(err)), BODY_INVALID);
    assert_string_equal(err, "entries[1]: missing \"value\"");
    body_free(&b);

    const char *mget = "{\"keys\":[\"a\",\"b\"]}";
    assert_int_equal(body_parse_mget(mget, strlen(mget), 10, test_alloc, NULL, &b, err, sizeof(err)), 0);
    assert_int_equal(b.count, 2);
    assert_memory_equal(b.items[0].key, "a", 1);
    body_free(&b);
    const char *mget_bad = "{\"keys\":[\"a\",3]}";
    assert_int_equal(body_parse_mget(mget_bad, strlen(mget_bad), 10, test_alloc, NULL, &b, err, sizeof(err)),
                     BODY_INVALID);
    assert_string_equal(err, "keys[1] must be a string");
    body_free(&b);
    assert_int_equal(body_parse_mget("{}", 2, 10, test_alloc, NULL, &b, err, sizeof(err)), BODY_INVALID);
    assert_string_equal(err, "\"keys\" must be an array");
    body_free(&b);
}

static void test_body_incr(void **state)
{
    (void)state;
    int64_t by, ttl;
    char err[256];
    assert_int_equal(body_parse_incr("", 0, &by, &ttl, err, sizeof(err)), 0);
    assert_int_equal(by, 1);
    assert_int_equal(ttl, 0);
    const char *incr = "{\"by\":-5,\"ttl\":9}";
    assert_int_equal(body_parse_incr(incr, strlen(incr), &by, &ttl, err, sizeof(err)), 0);
    assert_int_equal(by, -5);
    assert_int_equal(ttl, 9000);
    const char *real = "{\"by\":1.5}";
    assert_int_equal(body_parse_incr(real, strlen(real), &by, &ttl, err, sizeof(err)), BODY_INVALID);
    assert_string_equal(err, "\"by\" must be a whole number");
    assert_int_equal(body_parse_incr("[1]", 3, &by, &ttl, err, sizeof(err)), BODY_INVALID);
}

static void *failing_alloc(void *ctx, size_t size)
{
    (void)ctx;
    (void)size;
    return NULL;
}

static void test_body_allocation_failure(void **state)
{
    (void)state;
    struct body b;
    char err[256];
    const char *write = "{\"key\":\"k\",\"value\":1}";
    const char *mset = "{\"entries\":[{\"key\":\"k\",\"value\":[1]}]}";
    const char *mget = "{\"keys\":[\"k\"]}";
    assert_int_equal(body_parse_write(write, strlen(write), 1, failing_alloc, NULL, &b, err, sizeof(err)),
                     BODY_NOMEM);
    assert_int_equal(body_error_status(BODY_NOMEM), 503);
    body_free(&b);
    assert_int_equal(body_parse_mset(mset, strlen(mset), 10, failing_alloc, NULL, &b, err, sizeof(err)), BODY_NOMEM);
    body_free(&b);
    assert_int_equal(body_parse_mget(mget, strlen(mget), 10, failing_alloc, NULL, &b, err, sizeof(err)), BODY_NOMEM);
    body_free(&b);
    assert_int_equal(body_error_status(BODY_INVALID), 400);
    assert_int_equal(body_error_status(BODY_TOO_MANY), 413);
}

/* "ttl" is any number of seconds above 0, read as the command layer reads every TTL (tests/unit/test_cmd.c). */
static void test_body_ttl_numbers(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int64_t ms;
    } ok[] = {{"{\"value\":1,\"ttl\":3600.0}", 3600000},
              {"{\"value\":1,\"ttl\":1.5}", 1500},
              {"{\"value\":1,\"ttl\":0.0001}", 1},
              {"{\"value\":1,\"ttl\":36e2}", 3600000},
              {"{\"value\":1,\"ttl\":null}", 0}};
    struct body w;
    char err[256];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(parse(ok[i].body, 0, &w, err), 0);
        assert_int_equal(w.items[0].ttl_ms, ok[i].ms);
        body_free(&w);
    }
    int64_t by, ttl;
    const char *incr = "{\"ttl\":2.25}";
    assert_int_equal(body_parse_incr(incr, strlen(incr), &by, &ttl, err, sizeof(err)), 0);
    assert_int_equal(ttl, 2250);
}

static void test_decimal(void **state)
{
    (void)state;
    uint64_t n = 7;
    assert_int_equal(decimal_parse("0", 1, 4, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(decimal_parse("0042", 4, 4, &n), 0);
    assert_int_equal(n, 42);
    assert_int_equal(decimal_parse("18446744073709551615", 20, 20, &n), 0);
    assert_int_equal(n, UINT64_MAX);
    n = 7;
    static const char *const bad[] = {"", "12345", "-1", "+1", " 1", "1 ", "1.5", "0x1", "18446744073709551616",
                                      "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(decimal_parse(bad[i], strlen(bad[i]), i < 8 ? 4 : 20, &n), -1);
    assert_int_equal(decimal_parse("12\0", 3, 4, &n), -1); /* a NUL is not a digit */
    assert_int_equal(n, 7);                                /* left alone on failure */
}

static void test_json_write_string(void **state)
{
    (void)state;
    char out[64];
    const char in[] = "a\"b\\c\n\t\r\x01\0\xc3\xa9";
    char *end = json_write_string(out, in, sizeof(in) - 1);
    const char want[] = "\"a\\\"b\\\\c\\n\\t\\r\\u0001\\u0000\xc3\xa9\"";
    assert_int_equal(end - out, (long)(sizeof(want) - 1));
    assert_memory_equal(out, want, sizeof(want) - 1);
    assert_true((size_t)(end - out) <= JSONW_STRING_MAX(sizeof(in) - 1));

    /* Control characters from 0x10 up have a high nibble too: ESC is \u001b, not \u000b. */
    const char high[] = "\x10\x1b\x1f";
    end = json_write_string(out, high, sizeof(high) - 1);
    const char want_high[] = "\"\\u0010\\u001b\\u001f\"";
    assert_int_equal(end - out, (long)(sizeof(want_high) - 1));
    assert_memory_equal(out, want_high, sizeof(want_high) - 1);
    assert_int_equal(json_string_len(high, sizeof(high) - 1), sizeof(want_high) - 1);
}

static void test_sizes(void **state)
{
    (void)state;
    size_t n = 0; /* cmocka asserts may return, as far as the compiler knows */
    assert_int_equal(config_parse_size("512mb", &n), 0);
    assert_int_equal(n, 512u << 20);
    assert_int_equal(config_parse_size("512MB", &n), 0);
    assert_int_equal(n, 512u << 20);
    assert_int_equal(config_parse_size("1g", &n), 0);
    assert_int_equal(n, 1u << 30);
    assert_int_equal(config_parse_size("64k", &n), 0);
    assert_int_equal(n, 65536);
    assert_int_equal(config_parse_size("100", &n), 0);
    assert_int_equal(n, 100);
    assert_int_equal(config_parse_size("12qb", &n), -1);
    assert_int_equal(config_parse_size("-1", &n), -1);
    assert_int_equal(config_parse_size("", &n), -1);
    assert_int_equal(config_parse_size("mb", &n), -1);
    assert_int_equal(config_parse_size("99999999999999999999", &n), -1);
    assert_int_equal(config_parse_size("999999999999tb", &n), -1);
}

static void test_durations(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(config_parse_duration_ms("30", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(config_parse_duration_ms("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(config_parse_duration_ms("10m", &ms), 0);
    assert_int_equal(ms, 600000);
    assert_int_equal(config_parse_duration_ms("2h", &ms), 0);
    assert_int_equal(ms, 7200000);
    assert_int_equal(config_parse_duration_ms("5d", &ms), -1);
    assert_int_equal(config_parse_duration_ms("s", &ms), -1);
}

static void test_config_load(void **state)
{
    (void)state;
    struct config cfg;
    char *argv[] = {"cachette", "--port=9000", "--max-memory", "64mb", "--threads", "3", "--default-ttl", "90s", NULL};
    setenv("CACHETTE_MAX_KEY_BYTES", "200", 1);
    setenv("CACHETTE_PORT", "1234", 1);
    assert_int_equal(config_load(&cfg, 8, argv), CONFIG_RUN);
    unsetenv("CACHETTE_MAX_KEY_BYTES");
    unsetenv("CACHETTE_PORT");
    assert_int_equal(cfg.port, 9000); /* the flag wins over the environment */
    assert_int_equal(cfg.max_memory, 64u << 20);
    assert_int_equal(cfg.threads, 3);
    assert_int_equal(cfg.default_ttl_ms, 90000);
    assert_int_equal(cfg.max_key_bytes, 200);
    assert_string_equal(cfg.bind, "127.0.0.1");

    char *bad_port[] = {"cachette", "--port", "70000", NULL};
    assert_int_equal(config_load(&cfg, 3, bad_port), CONFIG_ERROR);
    /* An integer flag's bounds are inclusive, as --help prints them: the largest is taken, one more is not. */
    char *highest[] = {"cachette", "--port", "65535", "--max-batch", "100000", NULL},
         *port_over[] = {"cachette", "--port", "65536", NULL}, *batch_over[] = {"cachette", "--max-batch", "100001", NULL};
    assert_int_equal(config_load(&cfg, 5, highest), CONFIG_RUN);
    assert_int_equal(cfg.port, 65535);
    assert_int_equal(cfg.max_batch, 100000);
    assert_int_equal(config_load(&cfg, 3, port_over), CONFIG_ERROR);
    assert_int_equal(config_load(&cfg, 3, batch_over), CONFIG_ERROR);
    char *unknown[] = {"cachette", "--nope", "1", NULL};
    assert_int_equal(config_load(&cfg, 3, unknown), CONFIG_ERROR);
    char *missing[] = {"cachette", "--port", NULL};
    assert_int_equal(config_load(&cfg, 2, missing), CONFIG_ERROR);
    /* The store's entry reservation is 32 GiB: --max-memory stops at 24g, and so does the default. */
    char *largest[] = {"cachette", "--max-memory", "24g", NULL},
         *too_large[] = {"cachette", "--max-memory", "25g", NULL};
    assert_int_equal(config_load(&cfg, 3, largest), CONFIG_RUN);
    assert_int_equal(cfg.max_memory, (size_t)24 << 30);
    assert_int_equal(config_load(&cfg, 3, too_large), CONFIG_ERROR);
    char *defaults[] = {"cachette", NULL};
    assert_int_equal(config_load(&cfg, 1, defaults), CONFIG_RUN);
    assert_true(cfg.max_memory > 0 && cfg.max_memory <= (size_t)24 << 30);
    setenv("CACHETTE_THREADS", "0", 1);
    char *none[] = {"cachette", NULL};
    assert_int_equal(config_load(&cfg, 1, none), CONFIG_ERROR);
    unsetenv("CACHETTE_THREADS");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keypath_decode), cmocka_unit_test(test_keypath_rejects),
        cmocka_unit_test(test_query_find),     cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_check_key),      cmocka_unit_test(test_body_string_value),
        cmocka_unit_test(test_body_json_value), cmocka_unit_test(test_body_errors),
        cmocka_unit_test(test_body_batches),   cmocka_unit_test(test_body_incr),
        cmocka_unit_test(test_body_allocation_failure),
        cmocka_unit_test(test_body_ttl_numbers),       cmocka_unit_test(test_decimal),
        cmocka_unit_test(test_json_write_string), cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_config_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
