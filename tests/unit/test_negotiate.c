/*
 * Unit tests of the HTTP semantics cachette implements itself: entity tags
 * and their conditions, Accept negotiation, base64, and the Prometheus text
 * the metrics module writes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/auth.h"
#include "http/metrics.h"
#include "http/negotiate.h"

static int matches(const char *field, int exists, uint64_t version, int weak)
{
    return etag_matches(field, strlen(field), exists, version, weak, ETAG_OF_ENVELOPE);
}

static void test_etag_format(void **state)
{
    (void)state;
    char tag[ETAG_RAW_LEN];
    assert_int_equal(etag_format(tag, 0x0123456789abcdefULL, ETAG_OF_ENVELOPE), ETAG_LEN);
    assert_memory_equal(tag, "\"0123456789abcdef\"", ETAG_LEN);
    assert_int_equal(etag_format(tag, 1, ETAG_OF_ENVELOPE), ETAG_LEN);
    assert_memory_equal(tag, "\"0000000000000001\"", ETAG_LEN);
    assert_int_equal(etag_format(tag, 1, ETAG_OF_RAW), ETAG_RAW_LEN);
    assert_memory_equal(tag, "\"0000000000000001-raw\"", ETAG_RAW_LEN);
}

/* Each representation has its own tag; a field may be matched against one or both. */
static void test_etag_matches_by_representation(void **state)
{
    (void)state;
    static const char env[] = "\"000000000000002a\"", raw[] = "\"000000000000002a-raw\"";
    const uint64_t v = 0x2a;
    assert_true(etag_matches(env, strlen(env), 1, v, 0, ETAG_OF_ENVELOPE));
    assert_false(etag_matches(env, strlen(env), 1, v, 0, ETAG_OF_RAW));
    assert_true(etag_matches(raw, strlen(raw), 1, v, 0, ETAG_OF_RAW));
    assert_false(etag_matches(raw, strlen(raw), 1, v, 0, ETAG_OF_ENVELOPE));
    assert_true(etag_matches(env, strlen(env), 1, v, 0, ETAG_OF_EITHER));
    assert_true(etag_matches(raw, strlen(raw), 1, v, 1, ETAG_OF_EITHER));
    assert_false(etag_matches(raw, strlen(raw), 1, v + 1, 1, ETAG_OF_EITHER));
    assert_false(etag_matches("\"000000000000002a-ra\"", 21, 1, v, 1, ETAG_OF_EITHER));
    assert_true(etag_matches("W/\"000000000000002a-raw\"", 24, 1, v, 1, ETAG_OF_RAW));
    assert_false(etag_matches("W/\"000000000000002a-raw\"", 24, 1, v, 0, ETAG_OF_RAW));
}

static void test_etag_matches(void **state)
{
    (void)state;
    const uint64_t v = 0x2a;
    assert_true(matches("\"000000000000002a\"", 1, v, 0));
    assert_true(matches("  \"000000000000002a\"  ", 1, v, 0));
    assert_true(matches("\"1111111111111111\", \"000000000000002a\"", 1, v, 0));
    assert_false(matches("\"000000000000002b\"", 1, v, 0));
    assert_false(matches("\"000000000000002a\"", 0, v, 0)); /* no entry, nothing matches */
    /* If-Match compares strongly: a weak tag never matches; If-None-Match compares weakly. */
    assert_false(matches("W/\"000000000000002a\"", 1, v, 0));
    assert_true(matches("W/\"000000000000002a\"", 1, v, 1));
    /* "*" matches any existing entry and nothing when absent. */
    assert_true(matches("*", 1, v, 0));
    assert_false(matches("*", 0, v, 0));
    /* Malformed fields match nothing. */
    assert_false(matches("000000000000002a", 1, v, 0));
    assert_false(matches("\"000000000000002a", 1, v, 0));
    assert_false(matches("\"000000000000002a\" junk", 1, v, 0));
    assert_false(matches("", 1, v, 0));
}

static int prefers(const char *accept, const char *type)
{
    return accept_prefers(accept, strlen(accept), type, strlen(type));
}

static void test_accept(void **state)
{
    (void)state;
    assert_true(prefers("image/png", "image/png"));
    assert_true(prefers("image/*", "image/png"));
    assert_true(prefers("image/png, application/json;q=0.5", "image/png"));
    assert_true(prefers("text/plain", "text/plain; charset=utf-8"));
    assert_false(prefers("application/json", "image/png"));
    assert_false(prefers("*/*", "image/png"));           /* equal quality: the envelope */
    assert_false(prefers("image/png;q=0.4, application/json", "image/png"));
    assert_false(prefers("image/png;q=0, */*", "image/png"));
    assert_false(prefers("text/html", "image/png"));
    assert_true(prefers("IMAGE/PNG", "image/png"));
}

static void base64_is(const char *in, size_t n, const char *want)
{
    char out[64];
    char *end = base64_encode(out, (const unsigned char *)in, n);
    assert_int_equal(end - out, (long)strlen(want));
    assert_int_equal((size_t)(end - out), BASE64_LEN(n));
    assert_memory_equal(out, want, strlen(want));
}

static void test_base64(void **state)
{
    (void)state;
    /* RFC 4648 §10 test vectors. */
    base64_is("", 0, "");
    base64_is("f", 1, "Zg==");
    base64_is("fo", 2, "Zm8=");
    base64_is("foo", 3, "Zm9v");
    base64_is("foob", 4, "Zm9vYg==");
    base64_is("fooba", 5, "Zm9vYmE=");
    base64_is("foobar", 6, "Zm9vYmFy");
    base64_is("\x00\x01\x02\xff", 4, "AAEC/w==");
}

/* Checks every line of a text exposition against the 0.0.4 format. */
static void assert_exposition(const char *text)
{
    char line[512];
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        size_t len = (size_t)(nl - p);
        assert_true(len < sizeof(line));
        memcpy(line, p, len);
        line[len] = '\0';
        if (line[0] == '#') {
            assert_true(strncmp(line, "# HELP cachette_", 16) == 0 || strncmp(line, "# TYPE cachette_", 16) == 0);
        } else {
            char name[128];
            double value;
            assert_int_equal(strncmp(line, "cachette_", 9), 0);
            const char *space = strrchr(line, ' ');
            assert_non_null(space);
            assert_int_equal(sscanf(space + 1, "%lf", &value), 1);
            /* The name runs up to a label set, which closes just before the value, or up to the value. */
            assert_true(sscanf(line, "%127[a-z_]", name) == 1);
            const char *after = line + strlen(name);
            if (*after == '{')
                assert_true(space > after && space[-1] == '}' &&
                            memchr(after, '}', (size_t)(space - after)) == space - 1);
            else
                assert_ptr_equal(after, space);
        }
        p = nl + 1;
    }
}

static void test_metrics(void **state)
{
    (void)state;
    static struct metrics workers[2];
    memset(workers, 0, sizeof(workers));
    metrics_observe(&workers[0], metrics_method("GET", 3), 200, 50);
    metrics_observe(&workers[1], metrics_method("GET", 3), 404, 700);
    metrics_observe(&workers[1], metrics_method("PATCH", 5), 405, 3000000);
    struct stats st = {.store = {.entries = 7, .hits = 3}, .net = {.threads = 2}, .version = "test"};
    struct metrics_totals sum = {0};
    metrics_add(&sum, &workers[0]);
    metrics_add(&sum, &workers[1]);
    char *text = malloc(METRICS_TEXT_MAX);
    size_t len = metrics_render(text, &sum, &st);
    assert_true(len > 0 && len < METRICS_TEXT_MAX);
    text[len] = '\0';
    assert_exposition(text);
    assert_non_null(strstr(text, "\ncachette_entries 7\n"));
    assert_non_null(strstr(text, "cachette_http_requests_total{method=\"GET\",code=\"2xx\"} 1\n"));
    assert_non_null(strstr(text, "cachette_http_requests_total{method=\"GET\",code=\"4xx\"} 1\n"));
    assert_non_null(strstr(text, "cachette_http_requests_total{method=\"other\",code=\"4xx\"} 1\n"));
    assert_non_null(strstr(text, "cachette_http_request_duration_seconds_bucket{le=\"0.0001\"} 1\n"));
    assert_non_null(strstr(text, "cachette_http_request_duration_seconds_bucket{le=\"0.001\"} 2\n"));
    assert_non_null(strstr(text, "cachette_http_request_duration_seconds_bucket{le=\"2.5\"} 2\n"));
    assert_non_null(strstr(text, "cachette_http_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "cachette_http_request_duration_seconds_count 3\n"));
    assert_non_null(strstr(text, "cachette_http_request_duration_seconds_sum 3.000750\n"));
    free(text);
}

static int bearer(const char *field, const char *token)
{
    return auth_bearer_matches(field, strlen(field), token, strlen(token));
}

static void test_bearer(void **state)
{
    (void)state;
    assert_true(bearer("Bearer abc", "abc"));
    assert_true(bearer("bearer abc", "abc"));
    assert_true(bearer("BEARER   abc", "abc"));
    assert_false(bearer("Bearer abd", "abc"));
    assert_false(bearer("Bearer ab", "abc"));
    assert_false(bearer("Bearer abcd", "abc"));
    assert_false(bearer("Bearer ", "abc"));
    assert_false(bearer("Bearer", "abc"));
    assert_false(bearer("Basic abc", "abc"));
    assert_false(bearer("abc", "abc"));
    assert_false(bearer("Bearerabc", "abc"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etag_format),
        cmocka_unit_test(test_etag_matches),
        cmocka_unit_test(test_etag_matches_by_representation),
        cmocka_unit_test(test_accept),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_bearer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
