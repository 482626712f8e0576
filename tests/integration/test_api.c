/*
 * The REST API of issue 2, section 3, against the real binary: the seed's
 * calls verbatim, every endpoint, every status and error message, keys from
 * the raw path, the size limits, /health and /stats. One server serves the
 * whole group (started with small limits so the limits are cheap to cross);
 * the two memory-bound tests start their own. Every response is checked for
 * Content-Type: application/json and a body that parses.
 *
 * Expiry is tested here only end to end, with one ~1.5 s wait; its semantics
 * are unit-tested with a fake clock (tests/unit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/http.h"
#include "../support/raw.h"
#include "../support/server.h"

#define MAX_KEY   64
#define MAX_VALUE 8192
#define MAX_BODY  32768

static const char *const server_flags[] = {
    "--max-key-bytes", "64", "--max-value-bytes", "8kb", "--max-body-bytes", "32kb", NULL};
static const char *const json_ct[] = {"Content-Type: application/json", NULL};

#define PORT (group_server.port)

/* ---- helpers --------------------------------------------------------------- */

static void post(const char *body, struct http_res *res)
{
    http_call(PORT, "POST", "/cache", body, res);
}

static void get(const char *path, struct http_res *res)
{
    http_call(PORT, "GET", path, NULL, res);
}

/* PUT path with a JSON body; asserts a 200 or 201. */
static void put_ok(const char *path, const char *body)
{
    struct http_res res;
    http_call(PORT, "PUT", path, body, &res);
    if (res.status != 200 && res.status != 201)
        fail_msg("PUT %s %s: status %ld: %s", path, body, res.status, res.body);
    expect_json(&res, 0);
    http_res_free(&res);
}

static void post_ok(const char *body)
{
    struct http_res res;
    post(body, &res);
    expect_message(&res, 200, "stored");
    http_res_free(&res);
}

/* GET path, asserting 200 and a body {"key": key, "value": …}; returns the value (a new reference). */
static json_t *get_value(const char *path, const char *key, size_t key_len)
{
    struct http_res res;
    get(path, &res);
    json_t *obj = expect_json(&res, 200);
    json_t *k = json_object_get(obj, "key");
    if (!json_is_string(k) || json_string_length(k) != key_len || memcmp(json_string_value(k), key, key_len) != 0)
        fail_msg("GET %s: expected key '%.*s', got %s", path, (int)key_len, key, res.body);
    json_t *v = json_incref(json_object_get(obj, "value"));
    if (v == NULL)
        fail_msg("GET %s: no \"value\": %s", path, res.body);
    http_res_free(&res);
    return v;
}

static void expect_status_error(const char *method, const char *path, const char *body, long status,
                                const char *message)
{
    struct http_res res;
    http_call(PORT, method, path, body, &res);
    if (res.status != status)
        fail_msg("%s %s %s: expected %ld, got %ld: %s", method, path, body ? body : "", status, res.status, res.body);
    expect_error(&res, status, message);
    http_res_free(&res);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- the seed's calls ------------------------------------------------------- */

static void seed_post_then_get_verbatim(void **state)
{
    (void)state;
    struct http_res res;
    /* curl -X POST …/cache -H "Content-Type: application/json" -d '{"key":"user42", "value":"Alice"}' */
    post("{\"key\":\"user42\", \"value\":\"Alice\"}", &res);
    expect_message(&res, 200, "stored");
    assert_string_equal(res.body, "{\"message\":\"stored\"}");
    http_res_free(&res);

    /* curl …/cache/user42 */
    get("/cache/user42", &res);
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"key\":\"user42\",\"value\":\"Alice\"}");
    http_res_free(&res);
}

/* ---- values ------------------------------------------------------------------ */

static void values_of_every_json_type_round_trip(void **state)
{
    (void)state;
    static const char *const values[] = {
        "\"Alice\"",
        "\"\"",
        "\"123\"",           /* a string that looks like a number stays a string */
        "\"{\\\"a\\\":1}\"", /* a string holding JSON stays a string */
        "\"true\"",
        "{\"a\":1,\"b\":\"two\"}",
        "{}",
        "[]",
        "[1,\"two\",3.5,null,false,{\"x\":[]}]",
        "0",
        "-17",
        "9007199254740993",
        "3.25",
        "-1.5e300",
        "true",
        "false",
        "{\"l1\":{\"l2\":{\"l3\":{\"l4\":[[[{\"deep\":\"yes\"}]]]}}}}",
        "\"h\\u00e9llo \\u2014 \\u65e5\\u672c \\ud83c\\udf89\"",
        "\"h\xc3\xa9llo raw UTF-8 \xe6\x97\xa5\xe6\x9c\xac\"",
        "\"a\\u0000b\"",
        "\"\\u0000\"",
        "{\"nk\":\"v\\u0000\"}",
        "\"quote \\\" backslash \\\\ newline \\n tab \\t slash \\/ \\u0001\"",
    };
    char body[512], key[32], path[64];
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        snprintf(key, sizeof(key), "rt-%zu", i);
        snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":%s}", key, values[i]);
        post_ok(body);

        snprintf(path, sizeof(path), "/cache/%s", key);
        json_t *expected = json_parse(values[i], strlen(values[i]));
        json_t *got = get_value(path, key, strlen(key));
        if (!json_equal(expected, got) || json_typeof(expected) != json_typeof(got)) {
            char *text = json_dumps(got, JSON_ENCODE_ANY);
            fail_msg("value %s came back as %s", values[i], text);
        }
        json_decref(expected);
        json_decref(got);

        /* The same value through PUT. */
        snprintf(body, sizeof(body), "{\"value\":%s}", values[i]);
        snprintf(path, sizeof(path), "/cache/put-rt-%zu", i);
        put_ok(path, body);
        snprintf(key, sizeof(key), "put-rt-%zu", i);
        expected = json_parse(values[i], strlen(values[i]));
        got = get_value(path, key, strlen(key));
        assert_true(json_equal(expected, got));
        json_decref(expected);
        json_decref(got);
    }
}

static void get_of_a_missing_key_is_404(void **state)
{
    (void)state;
    struct http_res res;
    get("/cache/never-stored", &res);
    expect_error(&res, 404, "key not found");
    assert_string_equal(res.body, "{\"error\":\"key not found\"}");
    http_res_free(&res);
}

/* ---- PUT, DELETE, HEAD -------------------------------------------------------- */

static void put_creates_with_location_then_replaces(void **state)
{
    (void)state;
    struct http_res res;
    char location[256];

    http_call(PORT, "PUT", "/cache/put-me", "{\"value\":\"first\"}", &res);
    expect_message(&res, 201, "created");
    assert_non_null(http_header(&res, "Location", location, sizeof(location)));
    assert_string_equal(location, "/cache/put-me");
    http_res_free(&res);

    http_call(PORT, "PUT", "/cache/put-me", "{\"value\":{\"second\":2}}", &res);
    expect_message(&res, 200, "replaced");
    http_res_free(&res);

    json_t *v = get_value("/cache/put-me", "put-me", 6);
    assert_int_equal(json_integer_value(json_object_get(v, "second")), 2);
    json_decref(v);

    /* Location is the key's path without the query. */
    http_call(PORT, "PUT", "/cache/put%20loc?ttl=60", "{\"value\":1}", &res);
    expect_message(&res, 201, "created");
    assert_non_null(http_header(&res, "Location", location, sizeof(location)));
    assert_string_equal(location, "/cache/put%20loc");
    http_res_free(&res);
}

static void put_parses_json_types_and_stores_others_raw(void **state)
{
    (void)state;
    static const char *const text_plain[] = {"Content-Type: text/plain", NULL};
    static const char *const charset[] = {"Content-Type: application/json; charset=utf-8", NULL};
    static const char *const plus_json[] = {"Content-Type: application/merge-patch+json", NULL};
    static const char *const tab_params[] = {"Content-Type: application/json\t; charset=utf-8", NULL};
    static const char *const none[] = {"Content-Type:", NULL};
    struct http_res res;
    struct http_req req = {.method = "PUT", .path = "/cache/ct", .body = "{\"value\":1}", .headers = text_plain};

    /* A non-JSON type stores the body's bytes as they are, with that type. */
    assert_int_equal(http_do(NULL, PORT, &req, &res), 0);
    expect_message(&res, 201, "created");
    http_res_free(&res);
    get("/cache/ct", &res);
    assert_string_equal(res.body, "{\"key\":\"ct\",\"value\":\"{\\\"value\\\":1}\",\"content_type\":\"text/plain\"}");
    http_res_free(&res);
    http_call(PORT, "DELETE", "/cache/ct", NULL, &res);
    http_res_free(&res);

    req.headers = charset;
    assert_int_equal(http_do(NULL, PORT, &req, &res), 0);
    expect_message(&res, 201, "created");
    http_res_free(&res);
    req.headers = plus_json;
    assert_int_equal(http_do(NULL, PORT, &req, &res), 0);
    expect_message(&res, 200, "replaced");
    http_res_free(&res);
    req.headers = tab_params; /* optional whitespace before ';' may be a tab (RFC 9110 8.3.1) */
    assert_int_equal(http_do(NULL, PORT, &req, &res), 0);
    expect_message(&res, 200, "replaced");
    http_res_free(&res);
    get("/cache/ct", &res);
    assert_string_equal(res.body, "{\"key\":\"ct\",\"value\":1}");
    http_res_free(&res);
    req.headers = none; /* no Content-Type at all is taken as JSON */
    assert_int_equal(http_do(NULL, PORT, &req, &res), 0);
    expect_message(&res, 200, "replaced");
    http_res_free(&res);
}

static void delete_then_404(void **state)
{
    (void)state;
    struct http_res res;
    post_ok("{\"key\":\"doomed\",\"value\":[1]}");

    http_call(PORT, "DELETE", "/cache/doomed", NULL, &res);
    expect_message(&res, 200, "deleted");
    http_res_free(&res);

    get("/cache/doomed", &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);

    http_call(PORT, "DELETE", "/cache/doomed", NULL, &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
}

/* The header lines of a response without Date (which may tick between two requests). */
static void headers_without_date(const char *block, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = block; *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p + 1) : strlen(p);
        if (strncasecmp(p, "date:", 5) != 0 && n + len < size) {
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    out[n] = '\0';
}

/* GETs path, then HEADs it: the same status and headers (Content-Length and Content-Type included), no body. */
static void expect_head_like_get(const char *path, long status)
{
    struct http_res get_res, head_res;
    char a[2048], b[2048];
    struct http_req head = {.method = "HEAD", .path = path};
    get(path, &get_res);
    expect_json(&get_res, status);
    assert_int_equal(http_do(NULL, PORT, &head, &head_res), 0);
    assert_int_equal(head_res.status, status);
    assert_int_equal(head_res.body_len, 0);
    headers_without_date(get_res.headers, a, sizeof(a));
    headers_without_date(head_res.headers, b, sizeof(b));
    assert_string_equal(a, b);
    http_res_free(&get_res);
    http_res_free(&head_res);
}

static void head_has_gets_status_and_headers_but_no_body(void **state)
{
    (void)state;
    struct http_res head_res;
    char type[64];

    post_ok("{\"key\":\"user42\",\"value\":\"Alice\"}");
    expect_head_like_get("/cache/user42", 200);
    expect_head_like_get("/cache/never-stored", 404);
    /* The collection and the read-only endpoints answer HEAD as GET; /stats' figures move between two calls. */
    expect_head_like_get("/health", 200);
    expect_head_like_get("/cache?prefix=never-stored", 200);
    expect_head_like_get("/cache?limit=0", 400);
    struct http_req head = {.method = "HEAD", .path = "/stats"};
    assert_int_equal(http_do(NULL, PORT, &head, &head_res), 0);
    assert_int_equal(head_res.status, 200);
    assert_int_equal(head_res.body_len, 0);
    assert_string_equal(http_header(&head_res, "Content-Type", type, sizeof(type)), "application/json");
    http_res_free(&head_res);

    /* On the wire: no body bytes follow HEAD's head, so the next response starts right there. */
    static const char pipelined[] = "HEAD /cache/user42 HTTP/1.1\r\nHost: t\r\n\r\n"
                                    "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    size_t len;
    int closed;
    char *buf = raw_exchange(PORT, pipelined, sizeof(pipelined) - 1, 3000, &len, &closed);
    struct raw_res r[2];
    assert_true(closed);
    assert_int_equal(raw_parse(buf, len, r, 2, 1u), 2);
    assert_int_equal(r[0].status, 200);
    char cl[32];
    assert_non_null(raw_header(&r[0], "Content-Length", cl, sizeof(cl)));
    assert_string_equal(cl, "32");
    assert_int_equal(r[1].status, 200);
    assert_true(r[1].head == r[0].body); /* nothing in between */
    json_t *health = expect_raw_json(&r[1], 200);
    json_decref(health);
    assert_true(r[1].body + r[1].body_len == buf + len);
    free(buf);
}

/* A target in absolute form, as a request sent through a proxy carries, is served like its origin form. */
static void absolute_form_targets_are_served(void **state)
{
    (void)state;
    put_ok("/cache/absolute", "{\"value\":\"form\"}");
    static const struct {
        const char *target;
        int status;
        const char *member;
    } cases[] = {
        {"http://127.0.0.1/cache/absolute", 200, "value"},
        {"HTTPS://cache.example:8080/cache/absolute?raw=0", 200, "value"},
        {"http://127.0.0.1/health", 200, "status"},
        {"http://127.0.0.1?x=1", 404, "error"},
        {"ftp://127.0.0.1/cache/absolute", 404, "error"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char req[256];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", cases[i].target);
        size_t len;
        char *buf = raw_exchange(PORT, req, strlen(req), 3000, &len, NULL);
        struct raw_res r;
        assert_int_equal(raw_parse(buf, len, &r, 1, 0), 1);
        json_t *body = expect_raw_json(&r, cases[i].status);
        if (json_object_get(body, cases[i].member) == NULL)
            fail_msg("GET %s: no \"%s\" in the answer", cases[i].target, cases[i].member);
        if (cases[i].status == 200 && strcmp(cases[i].member, "value") == 0)
            assert_string_equal(json_string_value(json_object_get(body, "value")), "form");
        json_decref(body);
        free(buf);
    }
}

/*
 * A page on another site can make a browser send a "simple" POST to a cache
 * on the visitor's machine; the browser names the page in Origin. A foreign
 * Origin is refused and changes nothing; the server's own origin, any letter
 * case, and no Origin at all (every non-browser client) are served, and so
 * are reads.
 */
/* POST /cache with body as text/plain and one Origin header line, over HTTP/2 or HTTP/1.1. */
static void post_from(const char *origin, const char *body, int h2, struct http_res *res)
{
    const char *headers[] = {"Content-Type: text/plain", origin, NULL};
    struct http_req req = {.method = "POST",
                           .path = "/cache",
                           .body = body,
                           .headers = headers,
                           .http_version = h2 ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_1_1};
    assert_int_equal(http_do(NULL, PORT, &req, res), 0);
}

static void requests_from_another_origin_are_403(void **state)
{
    (void)state;
    char own[64], own_upper[64];
    snprintf(own, sizeof(own), "Origin: http://127.0.0.1:%u", PORT);
    snprintf(own_upper, sizeof(own_upper), "Origin: HTTP://127.0.0.1:%u", PORT);
    static const char *const foreign[] = {"Origin: http://evil.example", "Origin: null", "Origin: http://127.0.0.1:1",
                                          "Origin: 127.0.0.1"};
    struct http_res res;
    for (int h2 = 0; h2 < 2; h2++) {
        for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
            post_from(foreign[i], "{\"key\":\"csrf\",\"value\":1}", h2, &res);
            expect_error(&res, 403, "cross-origin request refused: its Origin is not this server");
            http_res_free(&res);
        }
        /* GET and HEAD change nothing, and a browser keeps their answers from the page: not checked. */
        const char *evil[] = {foreign[0], NULL};
        struct http_req read = {.path = "/cache/csrf", .headers = evil};
        assert_int_equal(http_do(NULL, PORT, &read, &res), 0);
        expect_error(&res, 404, "key not found");
        http_res_free(&res);
        const char *const mine[] = {own, own_upper};
        for (size_t i = 0; i < 2; i++) {
            post_from(mine[i], "{\"key\":\"same\",\"value\":1}", h2, &res);
            expect_message(&res, 200, "stored");
            http_res_free(&res);
        }
    }
}

/* method path [JSON body] with one Origin header line; asserts a response. */
static void request_from(const char *origin, const char *method, const char *path, const char *body,
                         struct http_res *res)
{
    const char *headers[] = {origin, body != NULL ? "Content-Type: application/json" : NULL, NULL};
    struct http_req req = {.method = method, .path = path, .body = body, .headers = headers};
    assert_int_equal(http_do(NULL, PORT, &req, res), 0);
}

/*
 * Every method that changes the cache is refused from a foreign origin, not
 * only the POST a form can send: a page's fetch() sends PUT and DELETE too
 * (preflighted, but the server must not rely on the browser's CORS check to
 * keep a flush from running). Nothing changes.
 */
static void writes_and_deletes_from_another_origin_are_403(void **state)
{
    (void)state;
    static const char *const refused = "cross-origin request refused: its Origin is not this server";
    static const struct {
        const char *method, *path, *body;
    } writes[] = {
        {"PUT", "/cache/csrf-k", "{\"value\":\"evil\"}"},
        {"DELETE", "/cache/csrf-k", NULL},
        {"DELETE", "/cache", NULL},
        {"POST", "/cache/csrf-k/incr", NULL},
        {"POST", "/cache/_mset", "{\"entries\":[{\"key\":\"csrf-k\",\"value\":\"evil\"}]}"},
    };
    struct http_res res;
    put_ok("/cache/csrf-k", "{\"value\":\"mine\"}");
    for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
        request_from("Origin: http://evil.example", writes[i].method, writes[i].path, writes[i].body, &res);
        if (res.status != 403)
            fail_msg("%s %s from another origin: %ld %s", writes[i].method, writes[i].path, res.status, res.body);
        expect_error(&res, 403, refused);
        http_res_free(&res);
        json_t *v = get_value("/cache/csrf-k", "csrf-k", 6);
        assert_string_equal(json_string_value(v), "mine");
        json_decref(v);
    }
    /* The server's own origin may. */
    char own[64];
    snprintf(own, sizeof(own), "Origin: http://127.0.0.1:%u", PORT);
    request_from(own, "DELETE", "/cache/csrf-k", NULL, &res);
    expect_message(&res, 200, "deleted");
    http_res_free(&res);
}

/* ---- TTL ------------------------------------------------------------------------ */

static json_int_t ttl_of(const char *path)
{
    struct http_res res;
    get(path, &res);
    json_t *obj = expect_json(&res, 200);
    json_t *ttl = json_object_get(obj, "ttl");
    json_int_t v = ttl == NULL ? -1 : json_int_member(obj, "ttl");
    http_res_free(&res);
    return v;
}

static void ttl_from_query_or_body_is_shown_by_get(void **state)
{
    (void)state;
    json_int_t t;

    put_ok("/cache/ttl-q?ttl=100", "{\"value\":\"q\"}");
    t = ttl_of("/cache/ttl-q");
    assert_true(t > 0 && t <= 100);
    assert_true(t >= 98); /* it was just written */

    put_ok("/cache/ttl-b", "{\"value\":\"b\",\"ttl\":30}");
    t = ttl_of("/cache/ttl-b");
    assert_true(t > 0 && t <= 30);

    post_ok("{\"key\":\"ttl-p\",\"value\":{\"o\":1},\"ttl\":50}");
    t = ttl_of("/cache/ttl-p");
    assert_true(t > 0 && t <= 50);

    /* ?ttl= on POST /cache too. */
    struct http_res res;
    http_call(PORT, "POST", "/cache?ttl=7", "{\"key\":\"ttl-pq\",\"value\":1}", &res);
    expect_message(&res, 200, "stored");
    http_res_free(&res);
    t = ttl_of("/cache/ttl-pq");
    assert_true(t > 0 && t <= 7);

    /* An entry written without a TTL has none, and a rewrite without one clears it. */
    post_ok("{\"key\":\"ttl-none\",\"value\":1}");
    assert_int_equal(ttl_of("/cache/ttl-none"), -1);
    put_ok("/cache/ttl-q", "{\"value\":\"q2\"}");
    assert_int_equal(ttl_of("/cache/ttl-q"), -1);
}

/*
 * A TTL is any number of seconds: 3600.0 (what Python's
 * timedelta.total_seconds() sends) and 1.5, in the body or the query, and
 * in _mset items. 1.5 s is 1500 ms: shown as 2 (seconds left, rounded up)
 * while more than 1 s is left, and gone 1.5 s after the write, which a TTL
 * cut to 1 s or rounded to 2 s would not both satisfy.
 */
static void fractional_ttls_are_read_to_the_millisecond(void **state)
{
    (void)state;
    put_ok("/cache/ttl-real", "{\"value\":1,\"ttl\":3600.0}");
    assert_int_equal(ttl_of("/cache/ttl-real"), 3600);
    post_ok("{\"key\":\"ttl-real-p\",\"value\":1,\"ttl\":36e2}");
    assert_int_equal(ttl_of("/cache/ttl-real-p"), 3600);
    struct http_res res;
    int64_t sent = now_ms();
    http_call(PORT, "POST", "/cache/_mset", "{\"entries\":[{\"key\":\"ttl-real-m\",\"value\":1,\"ttl\":300.5}]}", &res);
    expect_json(&res, 200);
    http_res_free(&res);
    json_int_t m = ttl_of("/cache/ttl-real-m");
    assert_true(m <= 301 && m >= 301 - (now_ms() - sent) / 1000 - 1); /* 300.5 s, not 300 or 301 whole */

    int64_t start = now_ms();
    put_ok("/cache/ttl-frac-b", "{\"value\":1,\"ttl\":1.5}");
    put_ok("/cache/ttl-frac-q?ttl=1.5", "{\"value\":1}");
    int64_t written = now_ms();
    json_int_t b = ttl_of("/cache/ttl-frac-b"), q = ttl_of("/cache/ttl-frac-q");
    if (now_ms() - start < 400) { /* read well within the first 1.1 s of both: more than 1 s left */
        assert_int_equal(b, 2);
        assert_int_equal(q, 2);
    } /* else a machine too slow to tell: the expiry below still decides */
    /* Both were written before `written`, so both are gone 1.5 s after it; with a 2 s TTL they would stay. */
    sleep_ms((int)(written + 1600 - now_ms()));
    get("/cache/ttl-frac-b", &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
    get("/cache/ttl-frac-q", &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
}

static void ttl_one_second_entry_is_gone_after_it_expires(void **state)
{
    (void)state;
    struct http_res res;
    int64_t before = now_ms();
    post_ok("{\"key\":\"short-lived\",\"value\":\"x\",\"ttl\":1}");
    put_ok("/cache/short-lived-q?ttl=1", "{\"value\":\"y\"}");
    post_ok("{\"key\":\"long-lived\",\"value\":\"z\",\"ttl\":600}");
    get("/cache/short-lived", &res);
    if (now_ms() - before < 900) { /* answered within its second: it must still be there, with 1 s shown */
        json_t *obj = expect_json(&res, 200);
        assert_int_equal(json_int_member(obj, "ttl"), 1);
    }
    http_res_free(&res);

    sleep_ms(1500); /* the one sleep of the suite */

    get("/cache/short-lived", &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
    get("/cache/short-lived-q", &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
    http_call(PORT, "DELETE", "/cache/short-lived", NULL, &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
    json_t *v = get_value("/cache/long-lived", "long-lived", 10);
    assert_string_equal(json_string_value(v), "z");
    json_decref(v);
}

/* ---- keys in the path ------------------------------------------------------------- */

static void keys_are_percent_decoded_from_the_raw_path(void **state)
{
    (void)state;
    struct http_res res;
    json_t *v;

    /* "a/b" written through the body is read back as a%2Fb; a/b in the path is no key at all. */
    post_ok("{\"key\":\"a/b\",\"value\":\"slash\"}");
    v = get_value("/cache/a%2Fb", "a/b", 3);
    assert_string_equal(json_string_value(v), "slash");
    json_decref(v);
    v = get_value("/cache/a%2fb", "a/b", 3); /* lower-case hex too */
    json_decref(v);
    get("/cache/a/b", &res);
    expect_json(&res, 404);
    assert_true(json_is_string(json_object_get(res.json, "error")));
    http_res_free(&res);

    /* a%2Fb is its own key, distinct from "a" and "b" and from "a%2Fb" literally. */
    put_ok("/cache/a", "{\"value\":\"just a\"}");
    v = get_value("/cache/a%2Fb", "a/b", 3);
    assert_string_equal(json_string_value(v), "slash");
    json_decref(v);
    get("/cache/a%252Fb", &res); /* the key "a%2Fb" */
    expect_error(&res, 404, "key not found");
    http_res_free(&res);

    /* Spaces, '+' (not a space in a path), '?', and UTF-8. */
    post_ok("{\"key\":\"hello world\",\"value\":1}");
    v = get_value("/cache/hello%20world", "hello world", 11);
    assert_int_equal(json_integer_value(v), 1);
    json_decref(v);
    put_ok("/cache/a+b", "{\"value\":\"plus\"}");
    v = get_value("/cache/a%2Bb", "a+b", 3);
    assert_string_equal(json_string_value(v), "plus");
    json_decref(v);
    put_ok("/cache/what%3F", "{\"value\":\"q\"}");
    v = get_value("/cache/what%3F?ignored=1", "what?", 5);
    assert_string_equal(json_string_value(v), "q");
    json_decref(v);
    post_ok("{\"key\":\"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\",\"value\":\"utf8\"}");
    v = get_value("/cache/caf%C3%A9%20%E6%97%A5%E6%9C%AC", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", 12);
    assert_string_equal(json_string_value(v), "utf8");
    json_decref(v);
    v = get_value("/cache/caf%c3%a9%20%e6%97%a5%e6%9c%ac", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", 12);
    json_decref(v);

    /* Dot-segments are not resolved: /cache/x/../user42 is not user42. */
    post_ok("{\"key\":\"user42\",\"value\":\"Alice\"}");
    get("/cache/x/../user42", &res);
    expect_json(&res, 404);
    http_res_free(&res);
    get("/cache/..", &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);

    /* DELETE by an escaped key. */
    http_call(PORT, "DELETE", "/cache/a%2Fb", NULL, &res);
    expect_message(&res, 200, "deleted");
    http_res_free(&res);
    get("/cache/a%2Fb", &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
    v = get_value("/cache/a", "a", 1); /* untouched */
    json_decref(v);
}

static void bad_percent_escapes_are_400(void **state)
{
    (void)state;
    static const char *const paths[] = {"/cache/%",   "/cache/%2",   "/cache/abc%", "/cache/%zz",
                                        "/cache/%G1", "/cache/x%2g", "/cache/%%41"};
    const char *msg = "key has a malformed percent-escape";
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        expect_status_error("GET", paths[i], NULL, 400, msg);
        expect_status_error("PUT", paths[i], "{\"value\":1}", 400, msg);
        expect_status_error("DELETE", paths[i], NULL, 400, msg);
    }
}

/* GET path, asserting 200 and a body {"key_base64": want, "value": …}; returns the value as a number. */
static json_int_t get_binary_key(const char *path, const char *want_base64)
{
    struct http_res res;
    get(path, &res);
    json_t *obj = expect_json(&res, 200);
    const char *got = json_string_value(json_object_get(obj, "key_base64"));
    if (json_object_get(obj, "key") != NULL || got == NULL || strcmp(got, want_base64) != 0)
        fail_msg("GET %s: expected key_base64 %s, got %s", path, want_base64, res.body);
    json_int_t value = json_integer_value(json_object_get(obj, "value"));
    http_res_free(&res);
    return value;
}

/*
 * Keys are any bytes, as over RESP: percent-encoded in the path, NUL
 * included; a response names a key that is not UTF-8 as "key_base64".
 */
static void keys_are_binary_safe_and_only_the_empty_key_is_refused(void **state)
{
    (void)state;
    static const struct {
        const char *path, *base64;
    } binary[] = {
        {"/cache/%FF", "/w=="},       {"/cache/%C3", "ww=="}, {"/cache/%C0%AF", "wK8="}, /* overlong '/' */
        {"/cache/%ED%A0%80", "7aCA"},                                                    /* a surrogate */
        {"/cache/%FF%00k", "/wBr"},
    };
    for (size_t i = 0; i < sizeof(binary) / sizeof(binary[0]); i++) {
        char body[32];
        snprintf(body, sizeof(body), "{\"value\":%zu}", i);
        put_ok(binary[i].path, body);
    }
    for (size_t i = 0; i < sizeof(binary) / sizeof(binary[0]); i++)
        assert_int_equal(get_binary_key(binary[i].path, binary[i].base64), (json_int_t)i);

    /* A NUL in a UTF-8 key: the same key from the path and from a JSON body, written back with \u0000. */
    post_ok("{\"key\":\"a\\u0000b\",\"value\":7}");
    json_t *v = get_value("/cache/a%00b", "a\0b", 3);
    assert_int_equal(json_integer_value(v), 7);
    json_decref(v);
    struct http_res res;
    http_call(PORT, "POST", "/cache/a%00b/incr", "{}", &res);
    assert_string_equal(res.body, "{\"key\":\"a\\u0000b\",\"value\":8}");
    http_res_free(&res);
    http_call(PORT, "POST", "/cache/%FF/incr", "{}", &res);
    assert_string_equal(res.body, "{\"key_base64\":\"/w==\",\"value\":1}");
    http_res_free(&res);
    for (size_t i = 0; i < sizeof(binary) / sizeof(binary[0]); i++) {
        http_call(PORT, "DELETE", binary[i].path, NULL, &res);
        assert_int_equal(res.status, 200);
        http_res_free(&res);
        expect_status_error("GET", binary[i].path, NULL, 404, "key not found");
    }

    expect_status_error("PUT", "/cache/", "{\"value\":1}", 400, "key must not be empty");
    expect_status_error("GET", "/cache/", NULL, 404, "key not found");
}

/* ---- bad bodies --------------------------------------------------------------------- */

static void bad_post_bodies_get_400_with_the_reason(void **state)
{
    (void)state;
    static const struct {
        const char *body, *message;
    } cases[] = {
        {"", "request body is empty: expected a JSON object"},
        {"nope", "invalid JSON: invalid token near 'nope' (line 1, column 4)"},
        {"[1,2]", "request body must be a JSON object"},
        {"\"user42\"", "request body must be a JSON object"},
        {"42", "request body must be a JSON object"},
        {"null", "request body must be a JSON object"},
        {"{\"value\":\"Alice\"}", "missing \"key\""},
        {"{\"key\":42,\"value\":\"Alice\"}", "\"key\" must be a string"},
        {"{\"key\":null,\"value\":\"Alice\"}", "\"key\" must be a string"},
        {"{\"key\":[\"k\"],\"value\":\"Alice\"}", "\"key\" must be a string"},
        {"{\"key\":{},\"value\":\"Alice\"}", "\"key\" must be a string"},
        {"{\"key\":\"\",\"value\":\"Alice\"}", "\"key\" must not be empty"},
        {"{\"key\":\"k\"}", "missing \"value\""},
        {"{\"key\":\"k\",\"value\":null}", "\"value\" must not be null"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct http_res res;
        struct http_req req = {.method = "POST", .path = "/cache", .body = cases[i].body, .headers = json_ct};
        if (cases[i].body[0] == '\0')
            req.body_len = 0; /* an empty body, Content-Length: 0 */
        assert_int_equal(http_do(NULL, PORT, &req, &res), 0);
        if (res.status != 400)
            fail_msg("POST %s: expected 400, got %ld: %s", cases[i].body, res.status, res.body);
        expect_error(&res, 400, cases[i].message);
        http_res_free(&res);
    }
    /* A POST with no body at all, and other broken JSON: the message names the parse error. */
    struct http_res res;
    struct http_req req = {.method = "POST", .path = "/cache", .headers = json_ct};
    assert_int_equal(http_do(NULL, PORT, &req, &res), 0);
    expect_error(&res, 400, "request body is empty: expected a JSON object");
    http_res_free(&res);
    static const char *const broken[] = {"{\"key\":",
                                         "{\"key\":\"k\",\"value\":1,}",
                                         "{'key':'k'}",
                                         "{\"key\":\"k\",\"value\":1}garbage",
                                         "{\"key\":\"k\",\"key\":\"j\",\"value\":1}",
                                         "\xff\xfe"};
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        post(broken[i], &res);
        expect_error_prefix(&res, 400, "invalid JSON: ");
        http_res_free(&res);
    }
    /* The same rules for PUT's body (no key needed there). */
    expect_status_error("PUT", "/cache/pb", "{\"ttl\":5}", 400, "missing \"value\"");
    expect_status_error("PUT", "/cache/pb", "{\"value\":null}", 400, "\"value\" must not be null");
    expect_status_error("PUT", "/cache/pb", "[]", 400, "request body must be a JSON object");
    expect_status_error("GET", "/cache/pb", NULL, 404, "key not found");
}

static void bad_ttls_get_400(void **state)
{
    (void)state;
    static const char *const body_ttls[] = {
        "0", "0.0", "-1", "-0.5", "\"5\"", "true", "[5]", "315360001", "315360000.001", "1e9", "99999999999999999"};
    /* One message for the body and the query, worded by the command layer. */
    const char *body_msg = "ttl must be a number of seconds above 0 and at most 315360000";
    const char *query_msg = body_msg;
    char body[128];
    for (size_t i = 0; i < sizeof(body_ttls) / sizeof(body_ttls[0]); i++) {
        snprintf(body, sizeof(body), "{\"key\":\"bad-ttl\",\"value\":1,\"ttl\":%s}", body_ttls[i]);
        expect_status_error("POST", "/cache", body, 400, body_msg);
        snprintf(body, sizeof(body), "{\"value\":1,\"ttl\":%s}", body_ttls[i]);
        expect_status_error("PUT", "/cache/bad-ttl", body, 400, body_msg);
    }
    static const char *const queries[] = {"0",   "0.0", "-1", "abc", "",     "5s",   "315360001", "nan",
                                          "inf", "1.",  ".5", "+5",  "0x10", "%205", "1e400"};
    char path[64];
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        snprintf(path, sizeof(path), "/cache/bad-ttl?ttl=%s", queries[i]);
        expect_status_error("PUT", path, "{\"value\":1}", 400, query_msg);
    }
    expect_status_error("PUT", "/cache/bad-ttl?ttl=5", "{\"value\":1,\"ttl\":5}", 400,
                        "ttl is given both in the query and in the body");
    expect_status_error("GET", "/cache/bad-ttl", NULL, 404, "key not found");
    /* The boundary itself is accepted; "ttl": null means none. */
    put_ok("/cache/ttl-max?ttl=315360000", "{\"value\":1}");
    post_ok("{\"key\":\"ttl-null\",\"value\":1,\"ttl\":null}");
    assert_int_equal(ttl_of("/cache/ttl-null"), -1);
}

static void unknown_fields_are_ignored(void **state)
{
    (void)state;
    post_ok("{\"key\":\"extra\",\"value\":{\"v\":1},\"flags\":7,\"nested\":{\"a\":[1,2]},\"x\":null}");
    struct http_res res;
    get("/cache/extra", &res);
    json_t *obj = expect_json(&res, 200);
    assert_int_equal(json_object_size(obj), 2); /* key and value only */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(obj, "value"), "v")), 1);
    http_res_free(&res);

    /* A "key" in PUT's body is just an unknown field: the path names the key. */
    put_ok("/cache/path-key", "{\"key\":\"body-key\",\"value\":2}");
    json_t *v = get_value("/cache/path-key", "path-key", 8);
    assert_int_equal(json_integer_value(v), 2);
    json_decref(v);
    get("/cache/body-key", &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
}

/* ---- limits ------------------------------------------------------------------------- */

static void keys_over_max_key_bytes_are_refused(void **state)
{
    (void)state;
    char body[512], path[512], msg[64];
    char *at_limit = repeat('k', MAX_KEY), *over = repeat('k', MAX_KEY + 1);
    snprintf(msg, sizeof(msg), "key is longer than max-key-bytes (%d)", MAX_KEY);

    snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":1}", at_limit);
    post_ok(body);
    snprintf(path, sizeof(path), "/cache/%s", at_limit);
    json_decref(get_value(path, at_limit, MAX_KEY));

    snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":1}", over);
    expect_status_error("POST", "/cache", body, 413, msg);
    snprintf(path, sizeof(path), "/cache/%s", over);
    expect_status_error("PUT", path, "{\"value\":1}", 414, msg);
    expect_status_error("GET", path, NULL, 414, msg);
    expect_status_error("DELETE", path, NULL, 414, msg);

    /* The limit is on the decoded key: 64 escapes of 3 characters are 64 bytes. */
    size_t n = (size_t)snprintf(path, sizeof(path), "/cache/");
    for (int i = 0; i < MAX_KEY; i++)
        n += (size_t)snprintf(path + n, sizeof(path) - n, "%%41");
    put_ok(path, "{\"value\":\"escaped\"}");
    char *as = repeat('A', MAX_KEY);
    json_t *v = get_value(path, as, MAX_KEY);
    assert_string_equal(json_string_value(v), "escaped");
    json_decref(v);
    snprintf(path + n, sizeof(path) - n, "%%41");
    expect_status_error("PUT", path, "{\"value\":1}", 414, msg);
    free(as);
    free(at_limit);
    free(over);
}

static void values_over_max_value_bytes_are_413(void **state)
{
    (void)state;
    char msg[64];
    snprintf(msg, sizeof(msg), "value is larger than max-value-bytes (%d)", MAX_VALUE);
    char *s = repeat('v', MAX_VALUE + 1);
    char *body = malloc(MAX_VALUE + 64);
    assert_non_null(body);

    /* A string's size is its bytes: exactly the limit fits, one more does not. */
    s[MAX_VALUE] = '\0';
    snprintf(body, MAX_VALUE + 64, "{\"key\":\"big\",\"value\":\"%s\"}", s);
    post_ok(body);
    s[MAX_VALUE] = 'v';
    snprintf(body, MAX_VALUE + 64, "{\"key\":\"big\",\"value\":\"%s\"}", s);
    expect_status_error("POST", "/cache", body, 413, msg);
    snprintf(body, MAX_VALUE + 64, "{\"value\":\"%s\"}", s);
    expect_status_error("PUT", "/cache/big2", body, 413, msg);
    expect_status_error("GET", "/cache/big2", NULL, 404, "key not found");

    /* The stored value is still the one that fit. */
    s[MAX_VALUE] = '\0';
    json_t *v = get_value("/cache/big", "big", 3);
    assert_int_equal(json_string_length(v), MAX_VALUE);
    json_decref(v);

    /* Other JSON values are measured as compact JSON text. */
    size_t n = (size_t)snprintf(body, MAX_VALUE + 64, "{\"value\":[");
    while (n < MAX_VALUE + 16)
        n += (size_t)snprintf(body + n, MAX_VALUE + 64 - n, "1,");
    snprintf(body + n, MAX_VALUE + 64 - n, "1]}");
    expect_status_error("PUT", "/cache/big-array", body, 413, msg);
    free(body);
    free(s);
}

static void bodies_over_max_body_bytes_are_413_json(void **state)
{
    (void)state;
    char msg[80];
    snprintf(msg, sizeof(msg), "request body is larger than max-body-bytes (%d)", MAX_BODY);

    /* Through libcurl: a body of 40000 bytes. */
    char *filler = repeat('x', 40000);
    char *body = malloc(40100);
    assert_non_null(body);
    snprintf(body, 40100, "{\"key\":\"huge\",\"value\":\"%s\"}", filler);
    expect_status_error("POST", "/cache", body, 413, msg);

    /* Declared by Content-Length, rejected before the body is sent (h2o's early 413, rewritten as JSON). */
    static const char declared[] = "POST /cache HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                   "Content-Length: 1000000\r\n\r\n";
    size_t len;
    int closed;
    char *buf = raw_exchange(PORT, declared, sizeof(declared) - 1, 3000, &len, &closed);
    struct raw_res r;
    assert_int_equal(raw_parse(buf, len, &r, 1, 0), 1);
    json_t *err = expect_raw_json(&r, 413);
    assert_string_equal(json_string_value(json_object_get(err, "error")), msg);
    json_decref(err);
    free(buf);

    /* Chunked: the limit applies to the decoded body as it arrives. */
    struct http_res res;
    struct http_req req = {
        .method = "PUT", .path = "/cache/huge-chunked", .body = body, .headers = json_ct, .chunk_size = 4096};
    if (http_do(NULL, PORT, &req, &res) != 0)
        fail_msg("chunked PUT over the limit: no response: %s", curl_easy_strerror(res.curl_code));
    expect_error(&res, 413, msg);
    http_res_free(&res);

    /* Nothing was stored, and the server still serves. */
    expect_status_error("GET", "/cache/huge", NULL, 404, "key not found");
    expect_status_error("GET", "/cache/huge-chunked", NULL, 404, "key not found");
    free(filler);
    free(body);
}

/* ---- /health, /stats, routing ------------------------------------------------------- */

static void health_is_ok(void **state)
{
    (void)state;
    struct http_res res;
    get("/health", &res);
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"status\":\"ok\"}");
    http_res_free(&res);
    get("/health?verbose=1", &res);
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"status\":\"ok\"}");
    http_res_free(&res);
}

static void stats_has_every_field_and_its_counters_move(void **state)
{
    (void)state;
    static const char *const counters[] = {
        "entries", "bytes_used", "bytes_pending_free", "max_memory", "hits",   "misses", "sets", "deletes",
        "expired", "evicted",    "connections",        "requests",   "threads"};
    struct http_res res;
    json_t *before = get_stats(PORT);
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        assert_true(json_int_member(before, counters[i]) >= 0);
    assert_true(json_is_number(json_object_get(before, "uptime_seconds")));
    assert_true(json_number_value(json_object_get(before, "uptime_seconds")) > 0);
    assert_string_equal(json_string_value(json_object_get(before, "version")), "0.1.0");
    assert_int_equal(json_int_member(before, "threads"), 2);
    assert_true(json_int_member(before, "connections") >= 1); /* this request's own */
    assert_true(json_int_member(before, "bytes_used") <= json_int_member(before, "max_memory"));

    /* One of each: 2 new sets, 1 hit, 1 miss, 1 delete: 6 requests with the second /stats. */
    post_ok("{\"key\":\"stats-a\",\"value\":\"a\"}");
    put_ok("/cache/stats-b", "{\"value\":\"b\"}");
    json_decref(get_value("/cache/stats-a", "stats-a", 7));
    get("/cache/stats-missing", &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
    http_call(PORT, "DELETE", "/cache/stats-b", NULL, &res);
    expect_message(&res, 200, "deleted");
    http_res_free(&res);
    json_t *after = get_stats(PORT);

#define DELTA(name) (json_int_member(after, name) - json_int_member(before, name))
    assert_int_equal(DELTA("sets"), 2);
    assert_int_equal(DELTA("hits"), 1);
    assert_int_equal(DELTA("misses"), 1);
    assert_int_equal(DELTA("deletes"), 1);
    assert_int_equal(DELTA("entries"), 1);
    assert_int_equal(DELTA("requests"), 6);
    assert_true(DELTA("bytes_used") > 0);
    assert_int_equal(DELTA("max_memory"), 0);
#undef DELTA
    assert_true(json_number_value(json_object_get(after, "uptime_seconds")) >=
                json_number_value(json_object_get(before, "uptime_seconds")));
    json_decref(before);
    json_decref(after);
}

static void unknown_paths_are_404_json(void **state)
{
    (void)state;
    static const char *const paths[] = {"/",         "/nope",    "/cachex",  "/cache2/k",
                                        "/health/x", "/stats/x", "/CACHE/k", "/favicon.ico"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        expect_status_error("GET", paths[i], NULL, 404, "not found");
        expect_status_error("POST", paths[i], "{}", 404, "not found");
    }
}

static void wrong_methods_are_405_with_allow(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *allow;
    } cases[] = {
        {"PUT", "/cache", "GET, HEAD, POST, DELETE"},
        {"PATCH", "/cache", "GET, HEAD, POST, DELETE"},
        {"POST", "/cache/k", "GET, HEAD, PUT, DELETE"},
        {"PATCH", "/cache/k", "GET, HEAD, PUT, DELETE"},
        {"OPTIONS", "/cache/k", "GET, HEAD, PUT, DELETE"},
        {"POST", "/health", "GET, HEAD"},
        {"DELETE", "/health", "GET, HEAD"},
        {"PUT", "/stats", "GET, HEAD"},
    };
    char allow[128];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct http_res res;
        http_call(PORT, cases[i].method, cases[i].path, "{\"key\":\"k\",\"value\":1}", &res);
        if (res.status != 405)
            fail_msg("%s %s: expected 405, got %ld: %s", cases[i].method, cases[i].path, res.status, res.body);
        expect_error(&res, 405, "method not allowed");
        assert_non_null(http_header(&res, "Allow", allow, sizeof(allow)));
        assert_string_equal(allow, cases[i].allow);
        http_res_free(&res);
    }
    /* POST /cache/k did not store anything. */
    expect_status_error("GET", "/cache/k", NULL, 404, "key not found");
}

/* ---- the memory bound ------------------------------------------------------------------ */

static void full_store_with_noeviction_answers_507(void **state)
{
    (void)state;
    struct server s;
    struct http_res res;
    char path[64], *value = repeat('m', 4000), *body = malloc(4100);
    assert_non_null(body);
    snprintf(body, 4100, "{\"value\":\"%s\"}", value);
    assert_int_equal(
        server_start_args(&s, "--max-memory", "128kb", "--eviction", "noeviction", "--max-value-bytes", "8kb", NULL),
        0);

    int stored = 0, full = 0;
    for (int i = 0; i < 100 && full < 3; i++) { /* 128 KiB holds at most 32 values of 4000 bytes */
        snprintf(path, sizeof(path), "/cache/fill-%d", i);
        http_call(s.port, "PUT", path, body, &res);
        if (res.status == 201) {
            expect_message(&res, 201, "created");
            assert_int_equal(full, 0); /* once full, it stays full */
            stored++;
        } else {
            expect_error(&res, 507, "not enough memory: the entry does not fit in max-memory");
            full++;
        }
        http_res_free(&res);
    }
    assert_true(stored >= 5);
    assert_int_equal(full, 3);

    /* The seed's POST and a batch are refused alike; the batch says it stored none of its items. */
    char *post = malloc(4200), *batch = malloc(8400);
    assert_non_null(post);
    assert_non_null(batch);
    snprintf(post, 4200, "{\"key\":\"fill-post\",\"value\":\"%s\"}", value);
    http_call(s.port, "POST", "/cache", post, &res);
    expect_error(&res, 507, "not enough memory: the entry does not fit in max-memory");
    http_res_free(&res);
    snprintf(batch, 8400, "{\"entries\":[{\"key\":\"fill-m1\",\"value\":\"%s\"},{\"key\":\"fill-m2\",\"value\":1}]}",
             value);
    http_call(s.port, "POST", "/cache/_mset", batch, &res);
    json_t *partly = expect_json(&res, 507);
    assert_string_equal(json_string_value(json_object_get(partly, "error")),
                        "entries[0]: not enough memory: the entry does not fit in max-memory");
    assert_int_equal(json_int_member(partly, "stored"), 0);
    assert_int_equal(json_object_size(partly), 2);
    http_res_free(&res);
    free(post);
    free(batch);

    json_t *stats = get_stats(s.port);
    assert_int_equal(json_int_member(stats, "entries"), stored);
    assert_int_equal(json_int_member(stats, "evicted"), 0);
    assert_true(json_int_member(stats, "bytes_used") <= 128 * 1024);
    assert_int_equal(json_int_member(stats, "max_memory"), 128 * 1024);
    json_decref(stats);

    /* Everything stored is still there; deleting one makes room again. */
    for (int i = 0; i < stored; i++) {
        snprintf(path, sizeof(path), "/cache/fill-%d", i);
        http_call(s.port, "GET", path, NULL, &res);
        expect_json(&res, 200);
        http_res_free(&res);
    }
    http_call(s.port, "DELETE", "/cache/fill-0", NULL, &res);
    expect_message(&res, 200, "deleted");
    http_res_free(&res);
    http_call(s.port, "PUT", "/cache/after-delete", body, &res);
    expect_message(&res, 201, "created");
    http_res_free(&res);

    free(value);
    free(body);
    expect_clean_exit(&s, 15000);
}

static void oversized_headers_are_431_and_close(void **state)
{
    (void)state;
    struct server s;
    struct http_res res;
    char *big = malloc(3100), *ok = malloc(1100);
    assert_non_null(big);
    assert_non_null(ok);
    char *a3000 = repeat('a', 3000), *a1000 = repeat('a', 1000);
    snprintf(big, 3100, "X-Big: %s", a3000);
    snprintf(ok, 1100, "X-Ok: %s", a1000);
    free(a3000);
    free(a1000);
    assert_int_equal(server_start_args(&s, "--max-header-bytes", "2kb", NULL), 0);

    const char *big_headers[] = {big, NULL};
    struct http_req req = {.method = "GET", .path = "/cache/k", .headers = big_headers};
    assert_int_equal(http_do(NULL, s.port, &req, &res), 0);
    expect_error(&res, 431, "request headers are larger than max-header-bytes (2048)");
    char value[32];
    assert_non_null(http_header(&res, "Connection", value, sizeof(value)));
    assert_string_equal(value, "close");
    http_res_free(&res);

    const char *ok_headers[] = {ok, NULL};
    req.headers = ok_headers;
    assert_int_equal(http_do(NULL, s.port, &req, &res), 0);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
    free(big);
    free(ok);
    expect_clean_exit(&s, 15000);
}

/* A full store evicts under either policy instead of refusing writes. */
static void full_store_evicts_with(const char *policy)
{
    struct server s;
    struct http_res res;
    char path[64], *value = repeat('s', 4000), *body = malloc(4100);
    assert_non_null(body);
    snprintf(body, 4100, "{\"value\":\"%s\"}", value);
    assert_int_equal(
        server_start_args(&s, "--max-memory", "128kb", "--max-value-bytes", "8kb", "--eviction", policy, NULL), 0);

    for (int i = 0; i < 60; i++) {
        snprintf(path, sizeof(path), "/cache/sieve-%d", i);
        http_call(s.port, "PUT", path, body, &res);
        expect_message(&res, 201, "created");
        http_res_free(&res);
    }
    json_t *stats = get_stats(s.port);
    assert_true(json_int_member(stats, "evicted") > 0);
    assert_true(json_int_member(stats, "entries") < 60);
    assert_int_equal(json_int_member(stats, "entries") + json_int_member(stats, "evicted"), 60);
    assert_true(json_int_member(stats, "bytes_used") <= 128 * 1024);
    json_decref(stats);
    /* The newest write is always there. */
    http_call(s.port, "GET", "/cache/sieve-59", NULL, &res);
    expect_json(&res, 200);
    http_res_free(&res);

    free(value);
    free(body);
    expect_clean_exit(&s, 15000);
}

static void full_store_with_s3fifo_evicts_instead(void **state)
{
    (void)state;
    full_store_evicts_with("s3fifo");
}

static void full_store_with_sieve_evicts_instead(void **state)
{
    (void)state;
    full_store_evicts_with("sieve");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seed_post_then_get_verbatim),
        /* Before any entry with a TTL exists, so the sweeper cannot move "entries" meanwhile. */
        cmocka_unit_test(stats_has_every_field_and_its_counters_move),
        cmocka_unit_test(values_of_every_json_type_round_trip),
        cmocka_unit_test(get_of_a_missing_key_is_404),
        cmocka_unit_test(put_creates_with_location_then_replaces),
        cmocka_unit_test(put_parses_json_types_and_stores_others_raw),
        cmocka_unit_test(delete_then_404),
        cmocka_unit_test(head_has_gets_status_and_headers_but_no_body),
        cmocka_unit_test(absolute_form_targets_are_served),
        cmocka_unit_test(requests_from_another_origin_are_403),
        cmocka_unit_test(writes_and_deletes_from_another_origin_are_403),
        cmocka_unit_test(ttl_from_query_or_body_is_shown_by_get),
        cmocka_unit_test(ttl_one_second_entry_is_gone_after_it_expires),
        cmocka_unit_test(fractional_ttls_are_read_to_the_millisecond),
        cmocka_unit_test(keys_are_percent_decoded_from_the_raw_path),
        cmocka_unit_test(bad_percent_escapes_are_400),
        cmocka_unit_test(keys_are_binary_safe_and_only_the_empty_key_is_refused),
        cmocka_unit_test(bad_post_bodies_get_400_with_the_reason),
        cmocka_unit_test(bad_ttls_get_400),
        cmocka_unit_test(unknown_fields_are_ignored),
        cmocka_unit_test(keys_over_max_key_bytes_are_refused),
        cmocka_unit_test(values_over_max_value_bytes_are_413),
        cmocka_unit_test(bodies_over_max_body_bytes_are_413_json),
        cmocka_unit_test(health_is_ok),
        cmocka_unit_test(unknown_paths_are_404_json),
        cmocka_unit_test(wrong_methods_are_405_with_allow),
        cmocka_unit_test(full_store_with_noeviction_answers_507),
        cmocka_unit_test(oversized_headers_are_431_and_close),
        cmocka_unit_test(full_store_with_sieve_evicts_instead),
        cmocka_unit_test(full_store_with_s3fifo_evicts_instead),
    };
    group_server_args = server_flags;
    return support_exit_code(cmocka_run_group_tests(tests, group_server_setup, group_server_teardown));
}
