/*
 * Binary-safe values (issue 3) against the real binary: a PUT with a
 * non-JSON Content-Type stores the body's bytes and that type; ?raw or an
 * Accept that prefers the stored type returns exactly those bytes; the JSON
 * envelope shows UTF-8 bytes as "value" and anything else as "value_base64",
 * never cut at a NUL; the size limit holds to the byte; ?ttl applies.
 *
 * One server serves the group, started with a 64 KiB value limit and a body
 * limit well above it, so that one byte over the value limit is refused by
 * the value check (413 naming max-value-bytes), not by the body check.
 * Every byte comparison is by length and memcmp: a body that is right up to
 * its first NUL and wrong after it must fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/codec.h"
#include "../support/http.h"
#include "../support/server.h"

#define MAX_VALUE (64 * 1024)

static const char *const server_flags[] = {"--max-value-bytes", "64kb", "--max-body-bytes", "256kb", NULL};

#define PORT (group_server.port)

/* ---- helpers ------------------------------------------------------------------ */

/* PUT path with the body's bytes as they are and Content-Type: type (NULL: none at all). */
static void put_raw(const char *path, const char *type, const void *data, size_t len, struct http_res *res)
{
    char header[512];
    const char *headers[] = {header, NULL};
    snprintf(header, sizeof(header), "Content-Type:%s%s", type ? " " : "", type ? type : "");
    /* An empty body still goes out as a body: http.c takes body_len 0 as strlen(body), which is 0 for "". */
    struct http_req req = {.method = "PUT", .path = path, .headers = headers, .body = len ? data : "", .body_len = len};
    if (http_do(NULL, PORT, &req, res) != 0)
        fail_msg("PUT %s: no response: %s", path, curl_easy_strerror(res->curl_code));
}

/* put_raw that must create (201) or replace (200). */
static void put_raw_ok(const char *path, const char *type, const void *data, size_t len)
{
    struct http_res res;
    put_raw(path, type, data, len, &res);
    if (res.status != 201 && res.status != 200)
        fail_msg("PUT %s (%s, %zu bytes): status %ld: %s", path, type, len, res.status, res.body);
    expect_message(&res, res.status, res.status == 201 ? "created" : "replaced");
    http_res_free(&res);
}

/* GET path with the given request headers (NULL-terminated, may be NULL); asserts a response. */
static void get_with(const char *path, const char *const *headers, struct http_res *res)
{
    struct http_req req = {.path = path, .headers = headers};
    if (http_do(NULL, PORT, &req, res) != 0)
        fail_msg("GET %s: no response: %s", path, curl_easy_strerror(res->curl_code));
}

/* Asserts a 200 whose body is exactly data (len bytes) with Content-Type exactly type. */
static void expect_bytes(const struct http_res *res, const char *type, const void *data, size_t len)
{
    char ct[512];
    if (res->status != 200)
        fail_msg("expected 200, got %ld: %s", res->status, res->body);
    if (http_header(res, "Content-Type", ct, sizeof(ct)) == NULL)
        fail_msg("no Content-Type on the raw value");
    if (strcmp(ct, type) != 0)
        fail_msg("Content-Type is '%s', expected '%s'", ct, type);
    if (res->body_len != len)
        fail_msg("raw body is %zu bytes, expected %zu", res->body_len, len);
    if (len > 0 && memcmp(res->body, data, len) != 0) {
        size_t i = 0;
        while (((const unsigned char *)data)[i] == (unsigned char)res->body[i])
            i++;
        fail_msg("raw body differs from the stored bytes at offset %zu", i);
    }
}

/* GET path?raw and expect exactly data with type. */
static void expect_raw(const char *key, const char *type, const void *data, size_t len)
{
    char path[256];
    struct http_res res;
    snprintf(path, sizeof(path), "/cache/%s?raw", key);
    get_with(path, NULL, &res);
    expect_bytes(&res, type, data, len);
    http_res_free(&res);
}

/*
 * GET /cache/key (the JSON envelope), asserting that the bytes come back
 * exactly: as "value" when as_text, else as "value_base64"; that the other
 * member is absent; and that "content_type" is type. Returns the envelope
 * (caller decrefs).
 */
static json_t *expect_envelope(const char *key, const char *type, const void *data, size_t len, int as_text)
{
    char path[256];
    struct http_res res;
    snprintf(path, sizeof(path), "/cache/%s", key);
    get_with(path, NULL, &res);
    json_t *obj = json_incref(expect_json(&res, 200));
    json_t *value = json_object_get(obj, "value"), *b64 = json_object_get(obj, "value_base64");

    assert_string_equal(json_string_value(json_object_get(obj, "key")), key);
    assert_string_equal(json_string_value(json_object_get(obj, "content_type")), type);
    if (as_text) {
        if (!json_is_string(value) || b64 != NULL)
            fail_msg("expected \"value\" as a string (and no value_base64): %.300s", res.body);
        if (json_string_length(value) != len || memcmp(json_string_value(value), data, len) != 0)
            fail_msg("\"value\" is %zu bytes, not the %zu stored: %.300s", json_string_length(value), len, res.body);
    } else {
        if (!json_is_string(b64) || value != NULL)
            fail_msg("expected \"value_base64\" (and no value): %.300s", res.body);
        const char *text = json_string_value(b64);
        size_t text_len = json_string_length(b64);
        unsigned char *decoded = malloc(text_len / 4 * 3 + 1);
        assert_non_null(decoded);
        long n = b64_decode(text, text_len, decoded);
        if (n < 0)
            fail_msg("value_base64 is not canonical base64: %.300s", text);
        if ((size_t)n != len || memcmp(decoded, data, len) != 0)
            fail_msg("value_base64 decodes to %ld bytes that differ from the %zu stored", n, len);
        free(decoded);
    }
    http_res_free(&res);
    return obj;
}

static void expect_get_status(const char *path, long status)
{
    struct http_res res;
    get_with(path, NULL, &res);
    if (res.status != status)
        fail_msg("GET %s: expected %ld, got %ld: %s", path, status, res.status, res.body);
    http_res_free(&res);
}

/* ---- raw PUT and GET ?raw ------------------------------------------------------ */

static void raw_put_stores_the_bytes_with_their_content_type(void **state)
{
    (void)state;
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0,    0,   0,
                                        13,   'I', 'H', 'D', 'R',  0,    0,    0,    1,    0,   0,
                                        0,    1,   8,   6,   0,    0,    0,    0x1f, 0x15, 0xc4};
    static const char text[] = "plain text, with \"quotes\" and a \\ backslash\n";
    static const unsigned char octets[] = {0, 1, 2, 0xfe, 0xff, 0, '{', '}', 0};
    struct http_res res;
    char etag[64], location[128];

    put_raw("/cache/img", "image/png", png, sizeof(png), &res);
    expect_message(&res, 201, "created");
    assert_non_null(http_header(&res, "ETag", etag, sizeof(etag)));
    assert_non_null(http_header(&res, "Location", location, sizeof(location)));
    assert_string_equal(location, "/cache/img");
    http_res_free(&res);
    put_raw_ok("/cache/txt", "text/plain", text, strlen(text));
    put_raw_ok("/cache/bin", "application/octet-stream", octets, sizeof(octets));
    /* The Content-Type is kept as sent, parameters included. */
    put_raw_ok("/cache/txt-utf8", "text/plain; charset=utf-8", text, strlen(text));
    put_raw_ok("/cache/vendor", "application/vnd.example.thing+xml", "<a/>", 4);

    expect_raw("img", "image/png", png, sizeof(png));
    expect_raw("txt", "text/plain", text, strlen(text));
    expect_raw("bin", "application/octet-stream", octets, sizeof(octets));
    expect_raw("txt-utf8", "text/plain; charset=utf-8", text, strlen(text));
    expect_raw("vendor", "application/vnd.example.thing+xml", "<a/>", 4);

    /* ?raw takes any value but 0 or false. */
    get_with("/cache/bin?raw=1", NULL, &res);
    expect_bytes(&res, "application/octet-stream", octets, sizeof(octets));
    http_res_free(&res);
    get_with("/cache/bin?x=y&raw=true", NULL, &res);
    expect_bytes(&res, "application/octet-stream", octets, sizeof(octets));
    http_res_free(&res);
    json_decref(expect_envelope("bin", "application/octet-stream", octets, sizeof(octets), 0));
    get_with("/cache/bin?raw=0", NULL, &res);
    expect_json(&res, 200);
    assert_non_null(json_object_get(res.json, "value_base64"));
    http_res_free(&res);
    get_with("/cache/txt?raw=false", NULL, &res);
    expect_json(&res, 200);
    http_res_free(&res);

    /* A raw write replaces a JSON value and the other way round; each read shows the latest. */
    put_raw_ok("/cache/flip", "text/plain", "raw one", 7);
    http_call(PORT, "PUT", "/cache/flip", "{\"value\":{\"json\":true}}", &res);
    expect_message(&res, 200, "replaced");
    http_res_free(&res);
    get_with("/cache/flip", NULL, &res);
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"key\":\"flip\",\"value\":{\"json\":true}}");
    http_res_free(&res);
    put_raw_ok("/cache/flip", "application/octet-stream", "\x01\x02", 2);
    expect_raw("flip", "application/octet-stream", "\x01\x02", 2);

    /* HEAD ?raw: the raw representation's headers, no body. */
    struct http_req head = {.method = "HEAD", .path = "/cache/img?raw"};
    char ct[64], cl[32];
    assert_int_equal(http_do(NULL, PORT, &head, &res), 0);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body_len, 0);
    assert_non_null(http_header(&res, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "image/png");
    assert_non_null(http_header(&res, "Content-Length", cl, sizeof(cl)));
    assert_int_equal(atoi(cl), sizeof(png));
    http_res_free(&res);
}

static void an_empty_raw_body_is_an_empty_value(void **state)
{
    (void)state;
    put_raw_ok("/cache/empty-raw", "application/octet-stream", "", 0);
    expect_raw("empty-raw", "application/octet-stream", "", 0);
    json_decref(expect_envelope("empty-raw", "application/octet-stream", "", 0, 1));
}

/* ---- content negotiation --------------------------------------------------------- */

static void accept_that_prefers_the_stored_type_gets_the_bytes(void **state)
{
    (void)state;
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', 0, 0xff, 0x10};
    static const struct {
        const char *accept; /* NULL: no Accept header */
        int raw;
    } cases[] = {
        {"image/png", 1},
        {"image/*", 1},
        {"image/png, application/json;q=0.9", 1},
        {"application/json;q=0.5, image/png", 1},
        {"text/html, image/*;q=0.8, application/json;q=0.7", 1},
        {"application/json", 0},
        {"*/*", 0},
        {NULL, 0},
        {"image/png;q=0.5, application/json", 0},
        {"image/png, application/json", 0}, /* equal quality: the envelope */
        {"image/png;q=0, */*", 0},          /* q=0: not acceptable at all */
        {"text/plain", 0},                  /* neither is covered: the envelope */
        {"image/gif", 0},
    };
    char header[128], vary[64];
    struct http_res res;

    put_raw_ok("/cache/neg", "image/png", png, sizeof(png));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *headers[] = {header, NULL};
        /* "Accept:" with nothing after the colon makes libcurl drop its default "Accept: * / *". */
        snprintf(header, sizeof(header), "Accept:%s%s", cases[i].accept ? " " : "",
                 cases[i].accept ? cases[i].accept : "");
        get_with("/cache/neg", headers, &res);
        if (cases[i].raw) {
            expect_bytes(&res, "image/png", png, sizeof(png));
        } else {
            json_t *obj = expect_json(&res, 200);
            if (json_object_get(obj, "value_base64") == NULL)
                fail_msg("Accept: %s: expected the envelope, got %.200s", cases[i].accept, res.body);
        }
        assert_non_null(http_header(&res, "Vary", vary, sizeof(vary)));
        assert_string_equal(vary, "Accept");
        http_res_free(&res);
    }

    /* A JSON value is never sent raw because of Accept: only ?raw does that. */
    static const char *const wants_png[] = {"Accept: image/png", NULL};
    http_call(PORT, "PUT", "/cache/neg-json", "{\"value\":[1,2]}", &res);
    http_res_free(&res);
    get_with("/cache/neg-json", wants_png, &res);
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"key\":\"neg-json\",\"value\":[1,2]}");
    http_res_free(&res);

    /* ?raw wins over an Accept that asks for JSON. */
    static const char *const wants_json[] = {"Accept: application/json", NULL};
    get_with("/cache/neg?raw", wants_json, &res);
    expect_bytes(&res, "image/png", png, sizeof(png));
    http_res_free(&res);
}

static void raw_of_a_json_value_is_its_json_text(void **state)
{
    (void)state;
    static const struct {
        const char *put, *raw;
    } cases[] = {
        {"{\"value\":{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}}", "{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}"},
        {"{\"value\":\"Alice\"}", "\"Alice\""},
        {"{\"value\":\"a\\u0000b \\\"q\\\"\"}", "\"a\\u0000b \\\"q\\\"\""},
        {"{\"value\":42}", "42"},
        {"{\"value\":false}", "false"},
        {"{\"value\":[]}", "[]"},
    };
    char path[64];
    struct http_res res;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(path, sizeof(path), "/cache/json-raw-%zu", i);
        http_call(PORT, "PUT", path, cases[i].put, &res);
        expect_json(&res, 201);
        http_res_free(&res);
        snprintf(path, sizeof(path), "/cache/json-raw-%zu?raw", i);
        get_with(path, NULL, &res);
        if (res.status != 200 || res.json == NULL)
            fail_msg("GET %s: %ld %s", path, res.status, res.body);
        /* Compare as JSON: the text must parse to the very value that was stored. */
        json_t *want = json_parse(cases[i].raw, strlen(cases[i].raw));
        if (!json_equal(want, res.json))
            fail_msg("GET %s: '%s', expected '%s'", path, res.body, cases[i].raw);
        json_decref(want);
        char ct[64];
        assert_non_null(http_header(&res, "Content-Type", ct, sizeof(ct)));
        assert_string_equal(ct, "application/json");
        http_res_free(&res);
    }
}

/* ---- exact bytes ------------------------------------------------------------------- */

static void all_256_byte_values_round_trip(void **state)
{
    (void)state;
    unsigned char all[512];
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (unsigned char)(i < 256 ? i : 511 - i); /* 0..255 then 255..0 */
    put_raw_ok("/cache/bytes", "application/octet-stream", all, sizeof(all));
    expect_raw("bytes", "application/octet-stream", all, sizeof(all));
    json_decref(expect_envelope("bytes", "application/octet-stream", all, sizeof(all), 0));

    /* Each byte alone, including NUL and every byte that is not UTF-8 by itself. */
    char key[32];
    for (unsigned b = 0; b < 256; b += 17) {
        unsigned char one = (unsigned char)b;
        snprintf(key, sizeof(key), "byte-%u", b);
        char path[64];
        snprintf(path, sizeof(path), "/cache/%s", key);
        put_raw_ok(path, "application/octet-stream", &one, 1);
        expect_raw(key, "application/octet-stream", &one, 1);
        json_decref(expect_envelope(key, "application/octet-stream", &one, 1, b < 0x80));
    }
}

static void a_value_of_exactly_max_value_bytes_round_trips_and_one_more_is_413(void **state)
{
    (void)state;
    unsigned char *big = malloc(MAX_VALUE + 1);
    struct http_res res;
    assert_non_null(big);
    fill_pseudo_random(big, MAX_VALUE + 1, 12345);

    put_raw_ok("/cache/at-limit", "application/octet-stream", big, MAX_VALUE);
    expect_raw("at-limit", "application/octet-stream", big, MAX_VALUE);
    json_decref(expect_envelope("at-limit", "application/octet-stream", big, MAX_VALUE, 0));

    /* One byte more: refused by the value limit, and the stored value is untouched. */
    put_raw("/cache/at-limit", "application/octet-stream", big, MAX_VALUE + 1, &res);
    expect_error(&res, 413, "value is larger than max-value-bytes (65536)");
    http_res_free(&res);
    expect_raw("at-limit", "application/octet-stream", big, MAX_VALUE);
    put_raw("/cache/over-limit", "image/png", big, MAX_VALUE + 1, &res);
    expect_error(&res, 413, "value is larger than max-value-bytes (65536)");
    http_res_free(&res);
    expect_get_status("/cache/over-limit", 404);

    /* A UTF-8 text value at the limit comes back whole in "value". */
    memset(big, 'u', MAX_VALUE);
    memcpy(big + MAX_VALUE - 4, "\xf0\x9f\x8e\x89", 4); /* ends with a 4-byte sequence */
    put_raw_ok("/cache/text-at-limit", "text/plain", big, MAX_VALUE);
    expect_raw("text-at-limit", "text/plain", big, MAX_VALUE);
    json_decref(expect_envelope("text-at-limit", "text/plain", big, MAX_VALUE, 1));
    free(big);
}

static void envelope_shows_utf8_as_value_and_the_rest_as_base64(void **state)
{
    (void)state;
    /* B(s): the literal and its length, NULs included. */
#define B(s) s, sizeof(s) - 1
    static const struct {
        const char *bytes;
        size_t len;
        int text;
    } cases[] = {
        {B("hello"), 1},
        {B("h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89"), 1},
        {B("nul\0inside\0"), 1}, /* NUL is UTF-8: kept in "value", not cut there */
        {B("\0"), 1},
        {B("ctl \x01\x1f\x7f \"q\" \\"), 1}, /* needs escaping in JSON, still text */
        {B("\xff"), 0},
        {B("abc\0\xfe"), 0},        /* NUL before the bad byte: still all of it */
        {B("\xc0\xaf"), 0},         /* overlong '/' */
        {B("\xed\xa0\x80"), 0},     /* a UTF-16 surrogate */
        {B("\xf4\x90\x80\x80"), 0}, /* past U+10FFFF */
        {B("ok \xe2\x82"), 0},      /* cut mid-sequence */
        {B("\x80"), 0},             /* a lone continuation byte */
    };
#undef B
    char key[32], path[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(key, sizeof(key), "env-%zu", i);
        snprintf(path, sizeof(path), "/cache/%s", key);
        put_raw_ok(path, "text/plain", cases[i].bytes, cases[i].len);
        json_decref(expect_envelope(key, "text/plain", cases[i].bytes, cases[i].len, cases[i].text));
        expect_raw(key, "text/plain", cases[i].bytes, cases[i].len);
    }
}

/* ---- TTL and Content-Type limits ----------------------------------------------------- */

static void ttl_query_applies_to_raw_puts(void **state)
{
    (void)state;
    struct http_res res;
    char cc[64];

    put_raw_ok("/cache/raw-ttl?ttl=100", "application/octet-stream", "\xff\xad", 2);
    json_t *obj = expect_envelope("raw-ttl", "application/octet-stream", "\xff\xad", 2, 0);
    json_int_t ttl = json_int_member(obj, "ttl");
    if (ttl < 98 || ttl > 100)
        fail_msg("ttl is %lld, expected 98..100", (long long)ttl);
    json_decref(obj);
    get_with("/cache/raw-ttl?raw", NULL, &res);
    expect_bytes(&res, "application/octet-stream", "\xff\xad", 2);
    assert_non_null(http_header(&res, "Cache-Control", cc, sizeof(cc)));
    if (strncmp(cc, "max-age=", 8) != 0 || atoi(cc + 8) < 98 || atoi(cc + 8) > 100)
        fail_msg("Cache-Control '%s', expected max-age=98..100", cc);
    http_res_free(&res);

    /* Without ?ttl: no "ttl" member, the entry does not expire. */
    put_raw_ok("/cache/raw-no-ttl", "text/plain", "forever", 7);
    obj = expect_envelope("raw-no-ttl", "text/plain", "forever", 7, 1);
    assert_null(json_object_get(obj, "ttl"));
    json_decref(obj);

    /* A bad ?ttl is refused and stores nothing. */
    static const char *const bad[] = {"0", "-1", "abc", "", "0.0", "315360001"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/cache/raw-bad-ttl?ttl=%s", bad[i]);
        put_raw(path, "text/plain", "x", 1, &res);
        expect_error(&res, 400, "ttl must be a number of seconds above 0 and at most 315360000");
        http_res_free(&res);
    }
    expect_get_status("/cache/raw-bad-ttl", 404);

    /* And it really expires. */
    put_raw_ok("/cache/raw-short?ttl=2", "application/octet-stream", "\x00\x01", 2); /* 2: read before it goes */
    expect_raw("raw-short", "application/octet-stream", "\x00\x01", 2);
    int64_t deadline = now_ms() + 10000;
    long status = 200;
    while (status == 200 && now_ms() < deadline) {
        sleep_ms(100);
        get_with("/cache/raw-short?raw", NULL, &res);
        status = res.status;
        http_res_free(&res);
    }
    assert_int_equal(status, 404);
}

static void content_types_over_255_bytes_or_not_ascii_are_400(void **state)
{
    (void)state;
    char type[300];
    struct http_res res;

    /* Exactly 255 bytes is accepted and comes back whole. */
    memset(type, 'x', sizeof(type));
    memcpy(type, "application/", 12);
    type[255] = '\0';
    put_raw_ok("/cache/ct-255", type, "abc", 3);
    expect_raw("ct-255", type, "abc", 3);
    json_decref(expect_envelope("ct-255", type, "abc", 3, 1));

    /* 256 is refused, whether the key exists or not, and nothing changes. */
    type[255] = 'x';
    type[256] = '\0';
    put_raw("/cache/ct-256", type, "abc", 3, &res);
    expect_error(&res, 400, "content type is longer than 255 bytes");
    http_res_free(&res);
    expect_get_status("/cache/ct-256", 404);
    put_raw("/cache/ct-255", type, "changed", 7, &res);
    expect_error(&res, 400, "content type is longer than 255 bytes");
    http_res_free(&res);
    type[255] = '\0';
    expect_raw("ct-255", type, "abc", 3);

    /* A media type is ASCII: other bytes would reach headers and JSON envelopes (found by fuzz_routes). */
    put_raw("/cache/ct-utf8", "text/caf\xc3\xa9", "abc", 3, &res);
    expect_error(&res, 400, "Content-Type must be printable ASCII");
    http_res_free(&res);
    put_raw("/cache/ct-bad", "application/jso\x92\xf2", "abc", 3, &res);
    expect_error(&res, 400, "Content-Type must be printable ASCII");
    http_res_free(&res);
    expect_get_status("/cache/ct-bad", 404);
}

/*
 * A form body is what curl -d sends unless told otherwise, most often JSON
 * whose sender forgot its type: refused with 415, not kept as bytes the
 * sender did not mean. An empty Content-Type names nothing: 400. Neither
 * stores anything.
 */
static void form_bodies_are_415_and_an_empty_content_type_is_400(void **state)
{
    (void)state;
    struct http_res res;
    static const char *const forms[] = {"application/x-www-form-urlencoded",
                                        "Application/X-WWW-Form-Urlencoded; charset=utf-8"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        put_raw("/cache/form", forms[i], "{\"value\":42}", 12, &res);
        expect_error(&res, 415,
                     "Content-Type application/x-www-form-urlencoded is not stored: send JSON with Content-Type: "
                     "application/json, or bytes with their own type");
        http_res_free(&res);
    }
    expect_get_status("/cache/form", 404);

    /* "Content-Type;" is curl's way to send the header with no value; the other names no media type either. */
    static const char *const empty[] = {"Content-Type;", "Content-Type: ; charset=utf-8"};
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        const char *headers[] = {empty[i], NULL};
        struct http_req req = {.method = "PUT", .path = "/cache/form", .headers = headers, .body = "x", .body_len = 1};
        assert_int_equal(http_do(NULL, PORT, &req, &res), 0);
        expect_error(&res, 400, "Content-Type is empty: leave it out for JSON, or name the bytes' type");
        http_res_free(&res);
    }
    expect_get_status("/cache/form", 404);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(raw_put_stores_the_bytes_with_their_content_type),
        cmocka_unit_test(an_empty_raw_body_is_an_empty_value),
        cmocka_unit_test(accept_that_prefers_the_stored_type_gets_the_bytes),
        cmocka_unit_test(raw_of_a_json_value_is_its_json_text),
        cmocka_unit_test(all_256_byte_values_round_trip),
        cmocka_unit_test(a_value_of_exactly_max_value_bytes_round_trips_and_one_more_is_413),
        cmocka_unit_test(envelope_shows_utf8_as_value_and_the_rest_as_base64),
        cmocka_unit_test(ttl_query_applies_to_raw_puts),
        cmocka_unit_test(content_types_over_255_bytes_or_not_ascii_are_400),
        cmocka_unit_test(form_bodies_are_415_and_an_empty_content_type_is_400),
    };
    group_server_args = server_flags;
    return support_exit_code(cmocka_run_group_tests(tests, group_server_setup, group_server_teardown));
}
