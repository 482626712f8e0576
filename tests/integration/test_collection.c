/*
 * Counters, listing, flushing, batches, metrics and HTTP/2 multiplexing
 * (issue 3) against the real binary.
 *
 * The concurrency tests run real clients on threads, each with its own
 * keep-alive libcurl handle, and check every answer as well as the end
 * state: concurrent increments must hand out every value exactly once, and a
 * listing that runs while another client writes tens of thousands of keys
 * (so that every shard's table grows under the scan) must still return each
 * key that was there all along. Threads never call cmocka: they record the
 * first failure, and the test asserts after joining them.
 *
 * One server serves the group (default --max-batch 1000, a 4 KiB value limit
 * so the batch size errors are cheap to reach); the --max-batch test starts
 * a second one.
 */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/codec.h"
#include "../support/exposition.h"
#include "../support/http.h"
#include "../support/server.h"
#include "../support/shell.h"

static const char *const server_flags[] = {"--max-value-bytes", "4kb", NULL};
static const char *const json_ct[] = {"Content-Type: application/json", NULL};

#define PORT (group_server.port)

/* ---- helpers ------------------------------------------------------------------------ */

static void call(const char *method, const char *path, const char *body, struct http_res *res)
{
    http_call(PORT, method, path, body, res);
}

/* method path [body] must answer status with exactly the body want. */
static void expect_exact(const char *method, const char *path, const char *body, long status, const char *want)
{
    struct http_res res;
    call(method, path, body, &res);
    if (res.status != status || strcmp(res.body, want) != 0)
        fail_msg("%s %s %s: expected %ld %s, got %ld %s", method, path, body ? body : "", status, want, res.status,
                 res.body);
    expect_json(&res, status);
    http_res_free(&res);
}

static void expect_status_error(const char *method, const char *path, const char *body, long status,
                                const char *message)
{
    struct http_res res;
    call(method, path, body, &res);
    if (res.status != status)
        fail_msg("%s %s %s: expected %ld, got %ld: %s", method, path, body ? body : "", status, res.status, res.body);
    expect_error(&res, status, message);
    http_res_free(&res);
}

static void put_json(const char *key, const char *value_json)
{
    char path[256], body[4096];
    struct http_res res;
    snprintf(path, sizeof(path), "/cache/%s", key);
    snprintf(body, sizeof(body), "{\"value\":%s}", value_json);
    call("PUT", path, body, &res);
    if (res.status != 200 && res.status != 201)
        fail_msg("PUT %s %s: %ld %s", path, body, res.status, res.body);
    http_res_free(&res);
}

static void put_raw(const char *key, const char *type, const void *data, size_t len)
{
    char path[256], header[128];
    const char *headers[] = {header, NULL};
    struct http_res res;
    snprintf(path, sizeof(path), "/cache/%s", key);
    snprintf(header, sizeof(header), "Content-Type: %s", type);
    struct http_req req = {.method = "PUT", .path = path, .headers = headers, .body = data, .body_len = len};
    assert_int_equal(http_do(NULL, PORT, &req, &res), 0);
    if (res.status != 200 && res.status != 201)
        fail_msg("PUT %s: %ld %s", path, res.status, res.body);
    http_res_free(&res);
}

/* GET /cache/key: the body text (malloc'ed), or NULL on 404. */
static char *get_body(const char *key)
{
    char path[256];
    struct http_res res;
    snprintf(path, sizeof(path), "/cache/%s", key);
    call("GET", path, NULL, &res);
    char *body = res.status == 200 ? strdup(res.body) : NULL;
    if (res.status != 200 && res.status != 404)
        fail_msg("GET %s: %ld %s", path, res.status, res.body);
    http_res_free(&res);
    return body;
}

static void expect_absent(const char *key)
{
    char *body = get_body(key);
    if (body != NULL)
        fail_msg("key %s should not exist, but reads %s", key, body);
}

static void expect_body(const char *key, const char *want)
{
    char *body = get_body(key);
    if (body == NULL)
        fail_msg("key %s: 404, expected %s", key, want);
    if (strcmp(body, want) != 0)
        fail_msg("key %s reads %s, expected %s", key, body, want);
    free(body);
}

/* The "ttl" of GET /cache/key, or -1 when it has none. */
static json_int_t ttl_of(const char *key)
{
    char path[256];
    struct http_res res;
    snprintf(path, sizeof(path), "/cache/%s", key);
    call("GET", path, NULL, &res);
    json_t *obj = expect_json(&res, 200);
    json_int_t ttl = json_object_get(obj, "ttl") ? json_int_member(obj, "ttl") : -1;
    http_res_free(&res);
    return ttl;
}

/* POST /cache/key/incr [body]: asserts 200 with {"key": key, "value": n}; returns n. */
static json_int_t incr(const char *path_key, const char *key, const char *body)
{
    char path[256];
    struct http_res res;
    snprintf(path, sizeof(path), "/cache/%s/incr", path_key);
    call("POST", path, body, &res);
    json_t *obj = expect_json(&res, 200);
    if (json_object_size(obj) != 2 || !json_is_string(json_object_get(obj, "key")) ||
        strcmp(json_string_value(json_object_get(obj, "key")), key) != 0)
        fail_msg("POST %s %s: %s", path, body ? body : "", res.body);
    json_int_t n = json_int_member(obj, "value");
    http_res_free(&res);
    return n;
}

/* ---- GET /metrics ------------------------------------------------------------------------ */

/* GET /metrics on easy (keep-alive), parsed. */
static void scrape(CURL *easy, struct exposition *x)
{
    struct http_res res;
    struct http_req req = {.path = "/metrics"};
    char ct[128];
    assert_int_equal(http_do(easy, PORT, &req, &res), 0);
    assert_int_equal(res.status, 200);
    assert_non_null(http_header(&res, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "text/plain; version=0.0.4; charset=utf-8");
    exposition_parse(res.body, res.body_len, x);
    http_res_free(&res);
}

static double requests_of(const struct exposition *x, const char *method, const char *code)
{
    char labels[96];
    snprintf(labels, sizeof(labels), "method=\"%s\",code=\"%s\"", method, code);
    double v = exposition_value(x, "cachette_http_requests_total", labels);
    if (isnan(v))
        fail_msg("no cachette_http_requests_total{%s}", labels);
    return v;
}

static void metrics_parse_as_prometheus_text_and_the_counters_move(void **state)
{
    (void)state;
    struct exposition *before = malloc(sizeof(*before)), *after = malloc(sizeof(*after));
    CURL *easy = http_easy_new();
    struct http_res res;
    assert_non_null(before);
    assert_non_null(after);

    scrape(easy, before);

    static const struct {
        const char *name, *type;
    } expected[] = {
        {"cachette_entries", "gauge"},
        {"cachette_memory_used_bytes", "gauge"},
        {"cachette_memory_pending_free_bytes", "gauge"},
        {"cachette_memory_max_bytes", "gauge"},
        {"cachette_hits_total", "counter"},
        {"cachette_misses_total", "counter"},
        {"cachette_sets_total", "counter"},
        {"cachette_deletes_total", "counter"},
        {"cachette_expired_total", "counter"},
        {"cachette_evicted_total", "counter"},
        {"cachette_connections", "gauge"},
        {"cachette_connections_total", "counter"},
        {"cachette_connections_refused_total", "counter"},
        {"cachette_write_timeouts_total", "counter"},
        {"cachette_uptime_seconds", "gauge"},
        {"cachette_threads", "gauge"},
        {"cachette_http_requests_total", "counter"},
        {"cachette_http_request_duration_seconds", "histogram"},
    };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        const struct family *f = exposition_family(before, expected[i].name);
        if (f == NULL || strcmp(f->type, expected[i].type) != 0 || !f->has_help || !f->has_samples)
            fail_msg("%s: expected HELP, TYPE %s and samples", expected[i].name, expected[i].type);
    }
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "other"};
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    for (size_t m = 0; m < 6; m++)
        for (size_t c = 0; c < 5; c++)
            requests_of(before, methods[m], classes[c]);
    assert_true(exposition_value(before, "cachette_threads", "") == 2);
    expect_histogram(before, "cachette_http_request_duration_seconds");

    /*
     * Requests on the same keep-alive connection as the scrapes: h2o logs a request (and so counts
     * it) before it reads the next one from that connection, so the deltas below are exact.
     */
    static const struct {
        const char *method, *path, *body;
        long status;
    } requests[] = {
        {"PUT", "/cache/metrics-a", "{\"value\":1}", 201},
        {"PUT", "/cache/metrics-a", "{\"value\":2}", 200},
        {"PUT", "/cache/metrics-b", "{\"value\":3}", 201},
        {"GET", "/cache/metrics-missing", NULL, 404},
        {"GET", "/cache/metrics-missing-too", NULL, 404},
        {"GET", "/cache/metrics-a", NULL, 200},
        {"HEAD", "/cache/metrics-a", NULL, 200},
        {"DELETE", "/cache/metrics-missing", NULL, 404},
        {"DELETE", "/cache/metrics-b", NULL, 200},
        {"POST", "/cache/metrics-c/incr", NULL, 200},
        {"PATCH", "/cache/metrics-a", NULL, 405},
        {"OPTIONS", "/health", NULL, 405},
        {"GET", "/cache/metrics-a", NULL, 200},
    };
    const size_t nreq = sizeof(requests) / sizeof(requests[0]);
    for (size_t i = 0; i < nreq; i++) {
        struct http_req req = {.method = requests[i].method,
                               .path = requests[i].path,
                               .body = requests[i].body,
                               .headers = requests[i].body ? json_ct : NULL};
        assert_int_equal(http_do(easy, PORT, &req, &res), 0);
        if (res.status != requests[i].status)
            fail_msg("%s %s: %ld, expected %ld", requests[i].method, requests[i].path, res.status, requests[i].status);
        http_res_free(&res);
    }
    scrape(easy, after);
    expect_histogram(after, "cachette_http_request_duration_seconds");

    static const struct {
        const char *method, *code;
        double delta;
    } deltas[] = {
        {"PUT", "2xx", 3},  {"PUT", "4xx", 0},   {"GET", "2xx", 3}, /* two GETs and the first scrape */
        {"GET", "4xx", 2},  {"HEAD", "2xx", 1},  {"DELETE", "2xx", 1}, {"DELETE", "4xx", 1},
        {"POST", "2xx", 1}, {"other", "4xx", 2}, {"GET", "5xx", 0},
    };
    for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
        double d = requests_of(after, deltas[i].method, deltas[i].code) -
                   requests_of(before, deltas[i].method, deltas[i].code);
        if (d != deltas[i].delta)
            fail_msg("cachette_http_requests_total{method=\"%s\",code=\"%s\"} moved by %g, expected %g",
                     deltas[i].method, deltas[i].code, d, deltas[i].delta);
    }
    double observed = exposition_value(after, "cachette_http_request_duration_seconds_count", "") -
                      exposition_value(before, "cachette_http_request_duration_seconds_count", "");
    if (observed != (double)nreq + 1)
        fail_msg("the latency histogram observed %g requests, expected %zu", observed, nreq + 1);
    assert_true(exposition_value(after, "cachette_http_request_duration_seconds_sum", "") >=
                exposition_value(before, "cachette_http_request_duration_seconds_sum", ""));
    /* The store's counters are there too: two misses, at least three sets, one delete. */
    assert_true(exposition_value(after, "cachette_misses_total", "") -
                    exposition_value(before, "cachette_misses_total", "") >=
                2);
    assert_true(
        exposition_value(after, "cachette_sets_total", "") - exposition_value(before, "cachette_sets_total", "") >= 3);
    assert_true(exposition_value(after, "cachette_deletes_total", "") -
                    exposition_value(before, "cachette_deletes_total", "") ==
                1);
    assert_true(exposition_value(after, "cachette_uptime_seconds", "") >=
                exposition_value(before, "cachette_uptime_seconds", ""));

    /* HEAD /metrics: the headers, no body; other methods: 405. */
    struct http_req head = {.method = "HEAD", .path = "/metrics"};
    assert_int_equal(http_do(easy, PORT, &head, &res), 0);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body_len, 0);
    http_res_free(&res);
    curl_easy_cleanup(easy);
    expect_status_error("POST", "/metrics", "{}", 405, "method not allowed");
    free(before);
    free(after);
}

/* ---- POST /cache/{key}/incr -------------------------------------------------------------------- */

static void incr_counts_from_zero_by_one_or_by(void **state)
{
    (void)state;
    expect_exact("POST", "/cache/c-basic/incr", NULL, 200, "{\"key\":\"c-basic\",\"value\":1}");
    expect_exact("POST", "/cache/c-basic/incr", NULL, 200, "{\"key\":\"c-basic\",\"value\":2}");
    assert_int_equal(incr("c-basic", "c-basic", "{\"by\":5}"), 7);
    assert_int_equal(incr("c-basic", "c-basic", "{\"by\":-10}"), -3);
    assert_int_equal(incr("c-basic", "c-basic", "{\"by\":0}"), -3);
    assert_int_equal(incr("c-basic", "c-basic", "{}"), -2);
    expect_body("c-basic", "{\"key\":\"c-basic\",\"value\":-2}"); /* a JSON integer, readable with GET */

    /* A missing key counts from 0, whatever the step. */
    assert_int_equal(incr("c-neg", "c-neg", "{\"by\":-4}"), -4);
    assert_int_equal(incr("c-max", "c-max", "{\"by\":9223372036854775807}"), INT64_MAX);
    assert_int_equal(incr("c-min", "c-min", "{\"by\":-9223372036854775808}"), INT64_MIN);
    /* The key is the percent-decoded path segment. */
    assert_int_equal(incr("a%2Fb%20c", "a/b c", NULL), 1);
    expect_body("a%2Fb%20c", "{\"key\":\"a/b c\",\"value\":1}");

    /* An integer stored by PUT counts on from its value; up to the very edge of int64. */
    put_json("c-put", "100");
    assert_int_equal(incr("c-put", "c-put", NULL), 101);
    put_json("c-put", "-5");
    assert_int_equal(incr("c-put", "c-put", "{\"by\":5}"), 0);
    put_json("c-put", "9223372036854775806");
    assert_int_equal(incr("c-put", "c-put", NULL), INT64_MAX);
    put_json("c-put", "-9223372036854775807");
    assert_int_equal(incr("c-put", "c-put", "{\"by\":-1}"), INT64_MIN);
}

static void incr_ttl_applies_when_it_creates_and_an_expired_key_counts_from_zero(void **state)
{
    (void)state;
    struct http_res res;

    /* ttl in the body or the query, on create. */
    assert_int_equal(incr("c-ttl", "c-ttl", "{\"ttl\":100}"), 1);
    json_int_t ttl = ttl_of("c-ttl");
    assert_true(ttl >= 98 && ttl <= 100);
    expect_exact("POST", "/cache/c-ttl-q/incr?ttl=50", NULL, 200, "{\"key\":\"c-ttl-q\",\"value\":1}");
    ttl = ttl_of("c-ttl-q");
    assert_true(ttl >= 48 && ttl <= 50);

    /* An existing key keeps its expiry (none, or the one it had). */
    assert_int_equal(incr("c-ttl", "c-ttl", "{\"ttl\":5}"), 2);
    ttl = ttl_of("c-ttl");
    if (ttl < 98 || ttl > 100)
        fail_msg("incr with ttl 5 changed an existing counter's ttl to %lld", (long long)ttl);
    put_json("c-forever", "7");
    assert_int_equal(incr("c-forever", "c-forever", "{\"ttl\":5}"), 8);
    assert_int_equal(ttl_of("c-forever"), -1);

    expect_status_error("POST", "/cache/c-ttl-both/incr?ttl=5", "{\"ttl\":5}", 400,
                        "ttl is given both in the query and in the body");
    expect_absent("c-ttl-both");

    /* A counter that expired starts again from 0, without the old expiry (ttl 2: the second incr lands first). */
    assert_int_equal(incr("c-expiring", "c-expiring", "{\"ttl\":2}"), 1);
    assert_int_equal(incr("c-expiring", "c-expiring", "{\"by\":2}"), 3);
    int64_t deadline = now_ms() + 10000;
    long status = 200;
    while (status == 200 && now_ms() < deadline) {
        sleep_ms(100);
        call("GET", "/cache/c-expiring", NULL, &res);
        status = res.status;
        http_res_free(&res);
    }
    assert_int_equal(status, 404);
    assert_int_equal(incr("c-expiring", "c-expiring", NULL), 1);
    assert_int_equal(ttl_of("c-expiring"), -1);
}

static void incr_of_a_non_integer_or_past_int64_is_409_and_changes_nothing(void **state)
{
    (void)state;
    static const char *const not_integers[] = {"\"abc\"", "\"5\"", "1.5", "1e3", "true", "[1]", "{\"n\":1}", "\"\""};
    char key[32], path[64], *before;
    for (size_t i = 0; i < sizeof(not_integers) / sizeof(not_integers[0]); i++) {
        snprintf(key, sizeof(key), "c-nan-%zu", i);
        snprintf(path, sizeof(path), "/cache/%s/incr", key);
        put_json(key, not_integers[i]);
        before = get_body(key);
        expect_status_error("POST", path, NULL, 409, "value is not an integer");
        expect_status_error("POST", path, "{\"by\":0}", 409, "value is not an integer");
        expect_body(key, before);
        free(before);
    }
    /* Raw bytes, even digits, are not a JSON integer. */
    put_raw("c-raw", "text/plain", "5", 1);
    before = get_body("c-raw");
    expect_status_error("POST", "/cache/c-raw/incr", NULL, 409, "value is not an integer");
    expect_body("c-raw", before);
    free(before);

    static const struct {
        const char *value, *body;
    } overflows[] = {
        {"9223372036854775807", NULL},           {"9223372036854775807", "{\"by\":9223372036854775807}"},
        {"-9223372036854775808", "{\"by\":-1}"}, {"1", "{\"by\":9223372036854775807}"},
        {"-2", "{\"by\":-9223372036854775807}"},
    };
    for (size_t i = 0; i < sizeof(overflows) / sizeof(overflows[0]); i++) {
        snprintf(key, sizeof(key), "c-over-%zu", i);
        snprintf(path, sizeof(path), "/cache/%s/incr", key);
        put_json(key, overflows[i].value);
        before = get_body(key);
        expect_status_error("POST", path, overflows[i].body, 409, "increment would overflow a 64-bit integer");
        expect_body(key, before);
        free(before);
    }
}

static void incr_with_a_bad_body_is_400_and_creates_nothing(void **state)
{
    (void)state;
    struct http_res res;
    char allow[32];
    static const struct {
        const char *body, *message;
        int prefix;
    } bad[] = {
        {"{\"by\":\"1\"}", "\"by\" must be a whole number", 0},
        {"{\"by\":1.5}", "\"by\" must be a whole number", 0},
        {"{\"by\":true}", "\"by\" must be a whole number", 0},
        {"{\"by\":null}", "\"by\" must be a whole number", 0},
        {"{\"by\":[1]}", "\"by\" must be a whole number", 0},
        {"{\"ttl\":0}", "ttl must be a number of seconds above 0 and at most 315360000", 0},
        {"{\"ttl\":\"5\"}", "ttl must be a number of seconds above 0 and at most 315360000", 0},
        {"{\"by\":99999999999999999999}", "invalid JSON", 1},
        {"by=1", "invalid JSON", 1},
        {"[1]", "request body must be a JSON object", 0},
        {"1", "request body must be a JSON object", 0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        call("POST", "/cache/c-bad/incr", bad[i].body, &res);
        if (res.status != 400)
            fail_msg("incr %s: expected 400, got %ld: %s", bad[i].body, res.status, res.body);
        if (bad[i].prefix)
            expect_error_prefix(&res, 400, bad[i].message);
        else
            expect_error(&res, 400, bad[i].message);
        http_res_free(&res);
        expect_absent("c-bad");
    }
    expect_status_error("POST", "/cache/c-bad/incr?ttl=0", NULL, 400,
                        "ttl must be a number of seconds above 0 and at most 315360000");
    expect_absent("c-bad");

    /* A bad body leaves an existing counter alone. */
    put_json("c-bad", "10");
    expect_status_error("POST", "/cache/c-bad/incr", "{\"by\":\"5\"}", 400, "\"by\" must be a whole number");
    expect_body("c-bad", "{\"key\":\"c-bad\",\"value\":10}");

    /* incr takes POST only; anything after /incr is not a resource. */
    static const char *const methods[] = {"GET", "PUT", "DELETE"};
    for (size_t i = 0; i < 3; i++) {
        call(methods[i], "/cache/c-bad/incr", NULL, &res);
        expect_error(&res, 405, "method not allowed");
        assert_non_null(http_header(&res, "Allow", allow, sizeof(allow)));
        assert_string_equal(allow, "POST");
        http_res_free(&res);
    }
    expect_status_error("POST", "/cache/c-bad/incr/more", NULL, 404, "not found");
    expect_status_error("POST", "/cache/c-bad/increment", NULL, 404, "not found");
    expect_body("c-bad", "{\"key\":\"c-bad\",\"value\":10}");
}

/* ---- concurrent counters ------------------------------------------------------------------------ */

#define INCR_CLIENTS     8
#define INCR_SHARED_EACH 1000
#define INCR_OWN_EACH    250

struct incr_client {
    pthread_t thread;
    int id;
    const char *key; /* the shared key, or NULL: "own-<id>" */
    int count;
    long long by;
    long long *values; /* each answer's value, in order */
    char error[256];
};

static void *incr_client_run(void *arg)
{
    struct incr_client *c = arg;
    CURL *easy = http_easy_new();
    char path[64], body[64], key[32];
    if (c->key != NULL)
        snprintf(key, sizeof(key), "%s", c->key);
    else
        snprintf(key, sizeof(key), "own-%d", c->id);
    snprintf(path, sizeof(path), "/cache/%s/incr", key);
    snprintf(body, sizeof(body), "{\"by\":%lld}", c->by);
    struct http_req req = {
        .method = "POST", .path = path, .body = c->by != 1 ? body : NULL, .headers = c->by != 1 ? json_ct : NULL};
    for (int i = 0; i < c->count; i++) {
        struct http_res res;
        const char *got_key = NULL;
        if (http_do(easy, PORT, &req, &res) == 0 && json_is_object(res.json))
            got_key = json_string_value(json_object_get(res.json, "key"));
        if (res.status != 200 || got_key == NULL || strcmp(got_key, key) != 0 ||
            !json_is_integer(json_object_get(res.json, "value"))) {
            snprintf(c->error, sizeof(c->error), "request %d: curl %d, status %ld: %.100s", i, res.curl_code,
                     res.status, res.body ? res.body : "");
            http_res_free(&res);
            break;
        }
        c->values[i] = json_integer_value(json_object_get(res.json, "value"));
        http_res_free(&res);
    }
    curl_easy_cleanup(easy);
    return NULL;
}

static void run_incr_clients(struct incr_client *clients, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&clients[i].thread, NULL, incr_client_run, &clients[i]), 0);
    for (int i = 0; i < n; i++)
        pthread_join(clients[i].thread, NULL);
    for (int i = 0; i < n; i++)
        if (clients[i].error[0] != '\0')
            fail_msg("client %d: %s", i, clients[i].error);
}

static void eight_clients_incrementing_one_key_end_at_exactly_8000(void **state)
{
    (void)state;
    struct incr_client clients[INCR_CLIENTS];
    const int total = INCR_CLIENTS * INCR_SHARED_EACH;
    char *seen = calloc((size_t)total + 1, 1);
    assert_non_null(seen);

    for (int i = 0; i < INCR_CLIENTS; i++) {
        clients[i] = (struct incr_client){.id = i, .key = "hot", .count = INCR_SHARED_EACH, .by = 1};
        clients[i].values = calloc(INCR_SHARED_EACH, sizeof(long long));
        assert_non_null(clients[i].values);
    }
    int64_t start = now_ms();
    run_incr_clients(clients, INCR_CLIENTS);
    int64_t took = now_ms() - start;

    /* Atomic increments hand out every value from 1 to 8000 exactly once, increasing for each client. */
    for (int i = 0; i < INCR_CLIENTS; i++) {
        for (int j = 0; j < INCR_SHARED_EACH; j++) {
            long long v = clients[i].values[j];
            if (v < 1 || v > total)
                fail_msg("client %d got %lld, outside 1..%d", i, v, total);
            if (seen[v]++)
                fail_msg("the value %lld was handed out twice: an increment was lost", v);
            if (j > 0 && v <= clients[i].values[j - 1])
                fail_msg("client %d saw %lld after %lld", i, v, clients[i].values[j - 1]);
        }
        free(clients[i].values);
    }
    free(seen);
    expect_body("hot", "{\"key\":\"hot\",\"value\":8000}");
    print_message("  %d increments by %d clients in %lld ms\n", total, INCR_CLIENTS, (long long)took);
}

static void eight_clients_incrementing_their_own_keys_end_exact(void **state)
{
    (void)state;
    struct incr_client clients[INCR_CLIENTS];
    for (int i = 0; i < INCR_CLIENTS; i++) {
        clients[i] = (struct incr_client){.id = i, .key = NULL, .count = INCR_OWN_EACH, .by = i + 1};
        clients[i].values = calloc(INCR_OWN_EACH, sizeof(long long));
        assert_non_null(clients[i].values);
    }
    run_incr_clients(clients, INCR_CLIENTS);
    for (int i = 0; i < INCR_CLIENTS; i++) {
        char key[32], want[96];
        for (int j = 0; j < INCR_OWN_EACH; j++)
            if (clients[i].values[j] != (long long)(j + 1) * (i + 1))
                fail_msg("own-%d: answer %d was %lld, expected %lld", i, j, clients[i].values[j],
                         (long long)(j + 1) * (i + 1));
        free(clients[i].values);
        snprintf(key, sizeof(key), "own-%d", i);
        snprintf(want, sizeof(want), "{\"key\":\"%s\",\"value\":%d}", key, INCR_OWN_EACH * (i + 1));
        expect_body(key, want);
    }
}

/* ---- GET /cache (listing) ------------------------------------------------------------------------ */

/* One page of GET /cache; appends its keys to *keys (a JSON array); returns the next cursor (malloc'ed) or NULL. */
static char *list_page(CURL *easy, const char *query, json_t *keys, size_t *page_len)
{
    char path[512];
    struct http_res res;
    snprintf(path, sizeof(path), "/cache?%s", query);
    struct http_req req = {.path = path};
    if (http_do(easy, PORT, &req, &res) != 0)
        fail_msg("GET %s: no response", path);
    json_t *obj = expect_json(&res, 200);
    json_t *page = json_object_get(obj, "keys"), *next = json_object_get(obj, "next_cursor");
    if (json_object_size(obj) != 2 || !json_is_array(page) || next == NULL ||
        !(json_is_null(next) || json_is_string(next)))
        fail_msg("GET %s: expected {\"keys\":[…],\"next_cursor\":…}, got %.300s", path, res.body);
    size_t i;
    json_t *k;
    json_array_foreach(page, i, k)
    {
        if (!json_is_string(k))
            fail_msg("GET %s: a key that is not a string: %.300s", path, res.body);
        json_array_append(keys, k);
    }
    *page_len = json_array_size(page);
    char *cursor = json_is_string(next) ? strdup(json_string_value(next)) : NULL;
    if (cursor != NULL && cursor[0] == '\0')
        fail_msg("GET %s: an empty next_cursor", path);
    http_res_free(&res);
    return cursor;
}

/* Pages through GET /cache?prefix=…&limit=… to the end; returns every key returned (a new array). */
static json_t *list_all(const char *prefix_query, int limit, size_t *pages)
{
    CURL *easy = http_easy_new();
    json_t *keys = json_array();
    char query[512];
    char *cursor = NULL;
    *pages = 0;
    do {
        size_t n;
        int len = snprintf(query, sizeof(query), "prefix=%s", prefix_query);
        if (limit > 0)
            len += snprintf(query + len, sizeof(query) - (size_t)len, "&limit=%d", limit);
        if (cursor != NULL)
            snprintf(query + len, sizeof(query) - (size_t)len, "&cursor=%s", cursor);
        free(cursor);
        cursor = list_page(easy, query, keys, &n);
        if (++*pages > 100000)
            fail_msg("the listing did not end");
    } while (cursor != NULL);
    curl_easy_cleanup(easy);
    return keys;
}

/* Counts how often each of the keys "<prefix><i>" (i < n) is in list; fails on any other key. */
static void count_keys(const json_t *list, const char *prefix, int n, int *counts)
{
    size_t i, plen = strlen(prefix);
    json_t *k;
    memset(counts, 0, (size_t)n * sizeof(*counts));
    json_array_foreach(list, i, k)
    {
        const char *s = json_string_value(k);
        char *end = NULL;
        long idx = -1;
        if (strncmp(s, prefix, plen) == 0 && isdigit((unsigned char)s[plen]))
            idx = strtol(s + plen, &end, 10);
        if (idx < 0 || idx >= n || *end != '\0')
            fail_msg("listing with prefix %s returned the key %s", prefix, s);
        counts[idx]++;
    }
}

/* Stores "<prefix><i>" for i < n through _mset (batches of at most 1000). */
static void mset_keys(const char *prefix, int from, int n)
{
    size_t cap = (size_t)(n > 1000 ? 1000 : n) * 64 + 64;
    char *body = malloc(cap);
    assert_non_null(body);
    for (int start = from; start < from + n; start += 1000) {
        int end = start + 1000 < from + n ? start + 1000 : from + n;
        size_t len = (size_t)snprintf(body, cap, "{\"entries\":[");
        for (int i = start; i < end; i++)
            len += (size_t)snprintf(body + len, cap - len, "%s{\"key\":\"%s%d\",\"value\":%d}", i > start ? "," : "",
                                    prefix, i, i);
        snprintf(body + len, cap - len, "]}");
        struct http_res res;
        call("POST", "/cache/_mset", body, &res);
        char want[48];
        snprintf(want, sizeof(want), "{\"stored\":%d}", end - start);
        if (res.status != 200 || strcmp(res.body, want) != 0)
            fail_msg("_mset of %d keys: %ld %s", end - start, res.status, res.body);
        http_res_free(&res);
    }
    free(body);
}

static void listing_pages_through_every_key(void **state)
{
    (void)state;
    enum { N = 250 };
    int counts[N];
    size_t pages, n;
    CURL *easy = http_easy_new();

    mset_keys("ls:", 0, N);
    mset_keys("other:", 0, 30); /* not under the prefix */

    /* The default limit is 100: the first page holds at most that many and is not the last. */
    json_t *keys = json_array();
    char *cursor = list_page(easy, "prefix=ls:", keys, &n);
    if (n == 0 || n > 100 + 8 || cursor == NULL)
        fail_msg("first page without limit: %zu keys, next_cursor %s", n, cursor ? cursor : "null");
    free(cursor);
    json_decref(keys);

    /* limit=1000 takes all 250 in one page, and says it is the last. */
    keys = json_array();
    cursor = list_page(easy, "prefix=ls:&limit=1000", keys, &n);
    assert_null(cursor);
    assert_int_equal(n, N);
    count_keys(keys, "ls:", N, counts);
    for (int i = 0; i < N; i++)
        if (counts[i] != 1)
            fail_msg("ls:%d returned %d times in one page", i, counts[i]);
    json_decref(keys);

    /* Small pages, followed to next_cursor null, return every key (the table is still: once each). */
    static const int limits[] = {1, 7, 100};
    for (size_t l = 0; l < 3; l++) {
        keys = list_all("ls:", limits[l], &pages);
        count_keys(keys, "ls:", N, counts);
        for (int i = 0; i < N; i++)
            if (counts[i] != 1)
                fail_msg("limit %d: ls:%d returned %d times", limits[l], i, counts[i]);
        if (limits[l] == 100 && pages < 3)
            fail_msg("limit 100 over 250 keys took %zu pages", pages);
        if (limits[l] == 1 && pages < N / 2)
            fail_msg("limit 1 over 250 keys took only %zu pages", pages);
        json_decref(keys);
    }

    /* A percent-encoded prefix; a prefix nothing has; the empty prefix (everything). */
    keys = list_all("l%73%3A", 50, &pages); /* "ls:" */
    count_keys(keys, "ls:", N, counts);
    json_decref(keys);
    keys = list_all("nothing-has-this-prefix", 0, &pages);
    assert_int_equal(json_array_size(keys), 0);
    json_decref(keys);
    keys = list_all("", 1000, &pages);
    assert_true(json_array_size(keys) >= N + 30);
    json_decref(keys);
    curl_easy_cleanup(easy);
}

/* A key that is not UTF-8 is listed in base64, in "keys_base64" (there only when one is listed). */
static void listing_shows_keys_that_are_not_utf8_in_base64(void **state)
{
    (void)state;
    put_json("bin:%FF%FE", "1");
    put_json("bin:t%00x", "2");
    put_json("bin:plain", "3");
    expect_exact("GET", "/cache?prefix=bin%3A%FF", NULL, 200, "{\"keys\":[],\"keys_base64\":[\"YmluOv/+\"],\"next_cursor\":null}");
    expect_exact("GET", "/cache?prefix=bin%3At", NULL, 200, "{\"keys\":[\"bin:t\\u0000x\"],\"next_cursor\":null}");

    struct http_res res;
    call("GET", "/cache?prefix=bin:&limit=1000", NULL, &res);
    json_t *page = expect_json(&res, 200), *keys = json_object_get(page, "keys");
    assert_int_equal(json_array_size(keys), 2);
    int plain = 0, nul = 0;
    for (size_t i = 0; i < 2; i++) {
        const char *k = json_string_value(json_array_get(keys, i));
        size_t len = json_string_length(json_array_get(keys, i));
        plain += len == 9 && memcmp(k, "bin:plain", 9) == 0;
        nul += len == 7 && memcmp(k, "bin:t\0x", 7) == 0;
    }
    assert_true(plain == 1 && nul == 1);
    json_t *binary = json_object_get(page, "keys_base64");
    assert_int_equal(json_array_size(binary), 1);
    assert_string_equal(json_string_value(json_array_get(binary, 0)), "YmluOv/+");
    http_res_free(&res);
}

static void listing_limits_and_cursors_are_validated(void **state)
{
    (void)state;
    static const char *const bad_limits[] = {"0", "1001", "abc", "-1", "", "10x", "1.5", "99999", "+5", "%31"};
    static const char *const bad_cursors[] = {"junk", "-5", "99999999999999999999999", "12ab", "%201", "0x10", "1%00"};
    char path[128];
    for (size_t i = 0; i < sizeof(bad_limits) / sizeof(bad_limits[0]); i++) {
        snprintf(path, sizeof(path), "/cache?limit=%s", bad_limits[i]);
        expect_status_error("GET", path, NULL, 400, "limit must be a whole number from 1 to 1000");
    }
    for (size_t i = 0; i < sizeof(bad_cursors) / sizeof(bad_cursors[0]); i++) {
        snprintf(path, sizeof(path), "/cache?cursor=%s", bad_cursors[i]);
        expect_status_error("GET", path, NULL, 400, "cursor must be a next_cursor value this server returned");
    }
    expect_status_error("GET", "/cache?prefix=%zz", NULL, 400, "prefix has a malformed percent-escape");
    expect_status_error("GET", "/cache?prefix=a%0", NULL, 400, "prefix has a malformed percent-escape");

    /* The bounds themselves are fine; an empty cursor is the start. */
    struct http_res res;
    call("GET", "/cache?limit=1", NULL, &res);
    expect_json(&res, 200);
    http_res_free(&res);
    call("GET", "/cache?limit=1000&cursor=", NULL, &res);
    expect_json(&res, 200);
    http_res_free(&res);
}

/* The writer of the growth test: _mset batches of churn keys until stopped. */
#define CHURN_BATCH       250
#define CHURN_MAX_BATCHES 120

struct churn {
    pthread_t thread;
    atomic_int batches; /* completed */
    atomic_int stop;
    char error[256];
};

static void *churn_run(void *arg)
{
    struct churn *c = arg;
    CURL *easy = http_easy_new();
    size_t cap = CHURN_BATCH * 64 + 64;
    char *body = malloc(cap);
    for (int b = 0; body != NULL && b < CHURN_MAX_BATCHES && !atomic_load(&c->stop); b++) {
        size_t len = (size_t)snprintf(body, cap, "{\"entries\":[");
        for (int i = 0; i < CHURN_BATCH; i++)
            len += (size_t)snprintf(body + len, cap - len, "%s{\"key\":\"churn:%d:%d\",\"value\":%d}", i ? "," : "", b,
                                    i, i);
        snprintf(body + len, cap - len, "]}");
        struct http_res res;
        struct http_req req = {.path = "/cache/_mset", .body = body, .headers = json_ct, .timeout_ms = 20000};
        if (http_do(easy, PORT, &req, &res) != 0 || res.status != 200) {
            snprintf(c->error, sizeof(c->error), "batch %d: curl %d, status %ld: %.100s", b, res.curl_code, res.status,
                     res.body ? res.body : "");
            http_res_free(&res);
            break;
        }
        http_res_free(&res);
        atomic_fetch_add(&c->batches, 1);
    }
    free(body);
    curl_easy_cleanup(easy);
    atomic_store(&c->stop, 1);
    return NULL;
}

static void a_key_present_for_the_whole_listing_is_returned_while_the_table_grows(void **state)
{
    (void)state;
    enum { STABLE = 500, LIMIT = 20, BATCHES_PER_PAGE = 3 };
    int counts[STABLE];
    struct churn churn = {.error = ""};
    CURL *easy = http_easy_new();
    json_t *keys = json_array();
    char *cursor = NULL, query[256];
    size_t pages = 0, n;

    mset_keys("stable:", 0, STABLE);
    atomic_init(&churn.batches, 0);
    atomic_init(&churn.stop, 0);
    assert_int_equal(pthread_create(&churn.thread, NULL, churn_run, &churn), 0);
    while (atomic_load(&churn.batches) < 1 && !atomic_load(&churn.stop))
        sleep_ms(1);
    int at_start = atomic_load(&churn.batches);

    /*
     * Small pages, and after each one the writer gets to add a few batches, so the tables grow
     * between the calls of one scan (and during them: the writer does not wait). 256 shards of
     * 16 buckets hold 4096 keys before growing; this adds up to 30,000.
     */
    do {
        int len = snprintf(query, sizeof(query), "prefix=stable:&limit=%d", LIMIT);
        if (cursor != NULL)
            snprintf(query + len, sizeof(query) - (size_t)len, "&cursor=%s", cursor);
        free(cursor);
        cursor = list_page(easy, query, keys, &n);
        pages++;
        int want = at_start + (int)pages * BATCHES_PER_PAGE;
        int64_t deadline = now_ms() + 10000;
        while (atomic_load(&churn.batches) < want && !atomic_load(&churn.stop) && now_ms() < deadline)
            sleep_ms(1);
        if (pages > 10000)
            fail_msg("the listing did not end");
    } while (cursor != NULL);
    int during = atomic_load(&churn.batches) - at_start;
    atomic_store(&churn.stop, 1);
    pthread_join(churn.thread, NULL);
    curl_easy_cleanup(easy);
    if (churn.error[0] != '\0')
        fail_msg("writer: %s", churn.error);

    count_keys(keys, "stable:", STABLE, counts);
    for (int i = 0; i < STABLE; i++)
        if (counts[i] == 0)
            fail_msg("stable:%d was present for the whole listing but was not returned (%zu pages, %d keys written "
                     "meanwhile)",
                     i, pages, during * CHURN_BATCH);
    json_decref(keys);
    /* The writer really was busy during the scan: at least 5,000 new keys, more than the tables held. */
    if (during * CHURN_BATCH < 5000)
        fail_msg("only %d keys were written during the listing", during * CHURN_BATCH);
    print_message("  %zu pages while %d keys were written\n", pages, during * CHURN_BATCH);
}

/* ---- DELETE /cache (flush) --------------------------------------------------------------------------- */

static void flush_deletes_every_entry_and_counts_them(void **state)
{
    (void)state;
    enum { N = 37 };
    struct http_res res;
    size_t pages;
    int counts[N];

    call("DELETE", "/cache", NULL, &res); /* whatever earlier tests left */
    expect_json(&res, 200);
    assert_string_equal(json_string_value(json_object_get(res.json, "message")), "flushed");
    http_res_free(&res);

    /* Entries of every kind: JSON, raw bytes, expiring, counters. */
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof(key), "fl:%d", i);
        if (i % 4 == 0)
            put_json(key, "{\"n\":1}");
        else if (i % 4 == 1)
            put_raw(key, "application/octet-stream", "\x00\xff", 2);
        else if (i % 4 == 2) {
            char path[48];
            snprintf(path, sizeof(path), "/cache/%s?ttl=300", key);
            call("PUT", path, "{\"value\":\"expiring\"}", &res);
            assert_int_equal(res.status, 201);
            http_res_free(&res);
        } else {
            incr(key, key, NULL);
        }
    }
    json_t *keys = list_all("", 5, &pages);
    count_keys(keys, "fl:", N, counts);
    assert_int_equal(json_array_size(keys), N); /* nothing else is left */
    json_decref(keys);
    json_t *stats = get_stats(PORT);
    assert_int_equal(json_int_member(stats, "entries"), N);
    json_decref(stats);

    expect_exact("DELETE", "/cache", NULL, 200, "{\"message\":\"flushed\",\"deleted\":37}");

    keys = list_all("", 0, &pages);
    assert_int_equal(json_array_size(keys), 0);
    assert_int_equal(pages, 1);
    json_decref(keys);
    stats = get_stats(PORT);
    assert_int_equal(json_int_member(stats, "entries"), 0);
    json_decref(stats);
    expect_absent("fl:0");
    expect_absent("fl:1");
    expect_exact("DELETE", "/cache", NULL, 200, "{\"message\":\"flushed\",\"deleted\":0}");

    /* The store works as before afterwards. */
    put_json("fl:after", "1");
    expect_body("fl:after", "{\"key\":\"fl:after\",\"value\":1}");
    expect_exact("DELETE", "/cache", NULL, 200, "{\"message\":\"flushed\",\"deleted\":1}");
}

/* ---- POST /cache/_mget and /cache/_mset ------------------------------------------------------------- */

static void mget_returns_entries_and_the_missing_keys(void **state)
{
    (void)state;
    static const unsigned char bin[] = {0xff, 0x00, 0x01, 0x80};
    struct http_res res;

    put_json("mg-str", "\"Alice\"");
    put_json("mg-obj", "{\"a\":[1,{\"b\":null}]}");
    put_json("mg-num", "7");
    put_raw("mg-text", "text/plain", "h\xc3\xa9llo\0x", 8);
    put_raw("mg-bin", "application/octet-stream", bin, sizeof(bin));

    call("POST", "/cache/_mget",
         "{\"keys\":[\"mg-str\",\"mg-none\",\"mg-obj\",\"mg-num\",\"mg-text\",\"mg-bin\",\"mg-none-2\",\"\"]}", &res);
    json_t *obj = expect_json(&res, 200);
    json_t *entries = json_object_get(obj, "entries"), *b64 = json_object_get(obj, "entries_base64"),
           *missing = json_object_get(obj, "missing");
    if (json_object_size(obj) != 3 || !json_is_object(entries) || !json_is_object(b64) || !json_is_array(missing))
        fail_msg("expected entries, entries_base64 and missing: %s", res.body);

    static const char want_entries[] = "{\"mg-str\":\"Alice\",\"mg-obj\":{\"a\":[1,{\"b\":null}]},\"mg-num\":7,"
                                       "\"mg-text\":\"h\\u00e9llo\\u0000x\"}";
    json_t *want = json_parse(want_entries, sizeof(want_entries) - 1);
    if (!json_equal(want, entries))
        fail_msg("entries: %s", res.body);
    json_decref(want);
    assert_int_equal(json_object_size(b64), 1);
    json_t *bin_b64 = json_object_get(b64, "mg-bin");
    assert_true(json_is_string(bin_b64));
    unsigned char decoded[16];
    assert_int_equal(b64_decode(json_string_value(bin_b64), json_string_length(bin_b64), decoded), sizeof(bin));
    assert_memory_equal(decoded, bin, sizeof(bin));
    want = json_parse("[\"mg-none\",\"mg-none-2\",\"\"]", strlen("[\"mg-none\",\"mg-none-2\",\"\"]"));
    if (!json_equal(want, missing)) /* in the order asked */
        fail_msg("missing: %s", res.body);
    json_decref(want);
    http_res_free(&res);

    /* No raw binary entry: no entries_base64 at all. */
    expect_exact("POST", "/cache/_mget", "{\"keys\":[\"mg-num\",\"mg-gone\"]}", 200,
                 "{\"entries\":{\"mg-num\":7},\"missing\":[\"mg-gone\"]}");
    expect_exact("POST", "/cache/_mget", "{\"keys\":[]}", 200, "{\"entries\":{},\"missing\":[]}");

    /* Bad bodies. */
    expect_status_error("POST", "/cache/_mget", "{}", 400, "\"keys\" must be an array");
    expect_status_error("POST", "/cache/_mget", "{\"keys\":\"mg-str\"}", 400, "\"keys\" must be an array");
    expect_status_error("POST", "/cache/_mget", "{\"keys\":[\"mg-str\",1]}", 400, "keys[1] must be a string");
    expect_status_error("POST", "/cache/_mget", "[\"mg-str\"]", 400, "request body must be a JSON object");
    call("POST", "/cache/_mget", "{\"keys\":[", &res);
    expect_error_prefix(&res, 400, "invalid JSON");
    http_res_free(&res);
    /* GET /cache/_mget is just the key "_mget". */
    expect_status_error("GET", "/cache/_mget", NULL, 404, "key not found");
}

/* POST /cache/_mget with body on port must answer status; for 200, a body of exactly want_len bytes. */
static void expect_mget(unsigned port, const char *body, long status, size_t want_len)
{
    struct http_res res;
    http_call(port, "POST", "/cache/_mget", body, &res);
    if (res.status != status)
        fail_msg("_mget %s: expected %ld, got %ld: %.200s", body, status, res.status, res.body);
    if (status == 200 && res.body_len != want_len)
        fail_msg("_mget %s: a body of %zu bytes, expected %zu", body, res.body_len, want_len);
    if (status == 413)
        expect_error(&res, 413,
                     "the entries asked for make a response over max-mget-bytes (2048): ask for fewer or smaller ones");
    else
        expect_json(&res, 200);
    http_res_free(&res);
}

/*
 * A small _mget naming a large value many times must not make the server
 * build a huge answer: past --max-mget-bytes it gets 413. The limit is on the
 * exact body, escapes and base64 included, so an answer of exactly the limit
 * is served.
 */
static void mget_answers_up_to_max_mget_bytes_and_413_past_it(void **state)
{
    (void)state;
    struct server s;
    assert_int_equal(server_start_args(&s, "--max-mget-bytes", "2kb", NULL), 0);
    struct http_res res;

    /* "j": 1004 letters, 1006 bytes of JSON. Two of them: 27 of frame + 2 x (3 + 1 + 1006) + 1 comma = 2048. */
    char body[1100] = "{\"value\":\"";
    memset(body + strlen(body), 'v', 1004);
    strcpy(body + 10 + 1004, "\"}");
    http_call(s.port, "PUT", "/cache/j", body, &res);
    assert_int_equal(res.status, 201);
    http_res_free(&res);
    expect_mget(s.port, "{\"keys\":[\"j\",\"j\"]}", 200, 2048);
    expect_mget(s.port, "{\"keys\":[\"j\",\"j\",\"m\"]}", 413, 0); /* "m", missing, is 3 more */

    /* "c": 300 control bytes, each written \u0001: 27 + 3 + 1 + 1802 = 1833; twice is over. */
    char controls[300], bytes[600];
    memset(controls, 1, sizeof(controls));
    memset(bytes, 0xff, sizeof(bytes));
    const struct {
        const char *key, *type;
        const char *data;
        size_t len;
    } raw[] = {{"c", "Content-Type: text/plain", controls, sizeof(controls)},
               {"b", "Content-Type: application/octet-stream", bytes, sizeof(bytes)}};
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        char path[16];
        snprintf(path, sizeof(path), "/cache/%s", raw[i].key);
        const char *headers[] = {raw[i].type, NULL};
        struct http_req req = {
            .method = "PUT", .path = path, .headers = headers, .body = raw[i].data, .body_len = raw[i].len};
        assert_int_equal(http_do(NULL, s.port, &req, &res), 0);
        assert_int_equal(res.status, 201);
        http_res_free(&res);
    }
    expect_mget(s.port, "{\"keys\":[\"c\"]}", 200, 1833);
    expect_mget(s.port, "{\"keys\":[\"c\",\"c\"]}", 413, 0);

    /* "b": 600 bytes, not UTF-8, 800 of base64: 27 + 20 of entries_base64 + 2 x (3 + 1 + 802) + 1 = 1660. */
    expect_mget(s.port, "{\"keys\":[\"b\",\"b\"]}", 200, 1660);
    expect_mget(s.port, "{\"keys\":[\"b\",\"b\",\"b\"]}", 413, 0);
    expect_clean_exit(&s, 15000);
}

static void mset_stores_every_item_or_none(void **state)
{
    (void)state;
    expect_exact("POST", "/cache/_mset",
                 "{\"entries\":[{\"key\":\"ms-a\",\"value\":1},{\"key\":\"ms-b\",\"value\":\"x\",\"ttl\":60},"
                 "{\"key\":\"ms-c\",\"value\":{\"o\":[true]}}]}",
                 200, "{\"stored\":3}");
    expect_body("ms-a", "{\"key\":\"ms-a\",\"value\":1}");
    expect_body("ms-c", "{\"key\":\"ms-c\",\"value\":{\"o\":[true]}}");
    json_int_t ttl = ttl_of("ms-b");
    assert_true(ttl >= 58 && ttl <= 60);
    /* Replacing counts as stored too. */
    expect_exact("POST", "/cache/_mset", "{\"entries\":[{\"key\":\"ms-a\",\"value\":2}]}", 200, "{\"stored\":1}");
    expect_body("ms-a", "{\"key\":\"ms-a\",\"value\":2}");
    expect_exact("POST", "/cache/_mset", "{\"entries\":[]}", 200, "{\"stored\":0}");
    /* ?ttl= gives every item that names none its TTL; an item that names one as well is refused. */
    expect_exact("POST", "/cache/_mset?ttl=30", "{\"entries\":[{\"key\":\"ms-q\",\"value\":1}]}", 200,
                 "{\"stored\":1}");
    ttl = ttl_of("ms-q");
    assert_true(ttl >= 28 && ttl <= 30);
    expect_status_error("POST", "/cache/_mset?ttl=30",
                        "{\"entries\":[{\"key\":\"ms-r\",\"value\":1},{\"key\":\"ms-s\",\"value\":1,\"ttl\":5}]}", 400,
                        "entries[1]: ttl is given both in the query and in the body");
    expect_status_error("POST", "/cache/_mset?ttl=0", "{\"entries\":[{\"key\":\"ms-r\",\"value\":1}]}", 400,
                        "ttl must be a number of seconds above 0 and at most 315360000");
    expect_absent("ms-r");

    /*
     * A bad item anywhere: 400 (413 for sizes) naming it, and no item stored or replaced, not even
     * the ones before it. Item 0 always replaces ms-keep, which must keep its value.
     */
    put_json("ms-keep", "\"old\"");
    char *long_key = malloc(1100), *big_value = malloc(5000), *body = malloc(8000);
    assert_non_null(long_key);
    assert_non_null(big_value);
    assert_non_null(body);
    memset(long_key, 'k', 1025);
    long_key[1025] = '\0';
    memset(big_value, 'v', 4097);
    big_value[4097] = '\0';
    static const struct {
        const char *item1, *item2; /* %s: long_key or big_value */
        long status;
        const char *message;
    } bad[] = {
        {"{\"key\":\"ms-new-1\",\"value\":1}", "{\"key\":\"ms-new-2\"}", 400, "entries[2]: missing \"value\""},
        {"{\"key\":\"\",\"value\":1}", "{\"key\":\"ms-new-2\",\"value\":2}", 400,
         "entries[1]: \"key\" must not be empty"},
        {"{\"value\":1}", "{\"key\":\"ms-new-2\",\"value\":2}", 400, "entries[1]: missing \"key\""},
        {"{\"key\":7,\"value\":1}", "{\"key\":\"ms-new-2\",\"value\":2}", 400, "entries[1]: \"key\" must be a string"},
        {"{\"key\":\"ms-new-1\",\"value\":null}", "{\"key\":\"ms-new-2\",\"value\":2}", 400,
         "entries[1]: \"value\" must not be null"},
        {"{\"key\":\"ms-new-1\",\"value\":1}", "{\"key\":\"ms-new-2\",\"value\":2,\"ttl\":0}", 400,
         "entries[2]: ttl must be a number of seconds above 0 and at most 315360000"},
        {"[1]", "{\"key\":\"ms-new-2\",\"value\":2}", 400, "entries[1]: must be a JSON object"},
        /* These pass the parser and fail the check that runs over every item before any write. */
        {"{\"key\":\"%s\",\"value\":1}", "{\"key\":\"ms-new-2\",\"value\":2}", 413,
         "entries[1]: key is longer than max-key-bytes (1024)"},
        {"{\"key\":\"ms-new-1\",\"value\":1}", "{\"key\":\"ms-new-2\",\"value\":\"%s\"}", 413,
         "entries[2]: value is larger than max-value-bytes (4096)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char item1[1200], item2[4200];
        snprintf(item1, sizeof(item1), bad[i].item1, long_key);
        snprintf(item2, sizeof(item2), bad[i].item2, big_value);
        snprintf(body, 8000, "{\"entries\":[{\"key\":\"ms-keep\",\"value\":\"new\"},%s,%s]}", item1, item2);
        expect_status_error("POST", "/cache/_mset", body, bad[i].status, bad[i].message);
        expect_body("ms-keep", "{\"key\":\"ms-keep\",\"value\":\"old\"}");
        expect_absent("ms-new-1");
        expect_absent("ms-new-2");
    }
    free(long_key);
    free(big_value);
    free(body);
    expect_status_error("POST", "/cache/_mset", "{}", 400, "\"entries\" must be an array");
    expect_status_error("POST", "/cache/_mset", "{\"entries\":{}}", 400, "\"entries\" must be an array");
    expect_body("ms-keep", "{\"key\":\"ms-keep\",\"value\":\"old\"}");
}

/* {"keys":["b0",…]} or {"entries":[{"key":"b0","value":0},…]} with n items (malloc'ed). */
static char *batch_body(int is_mset, int n)
{
    size_t cap = (size_t)n * 40 + 64, len;
    char *body = malloc(cap);
    assert_non_null(body);
    len = (size_t)snprintf(body, cap, is_mset ? "{\"entries\":[" : "{\"keys\":[");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(body + len, cap - len, is_mset ? "%s{\"key\":\"b%d\",\"value\":%d}" : "%s\"b%d\"",
                                i ? "," : "", i, i);
    snprintf(body + len, cap - len, "]}");
    return body;
}

static void batches_over_max_batch_are_413(void **state)
{
    (void)state;
    struct http_res res;
    struct server small;

    /* The default, 1000. */
    char *body = batch_body(1, 1001);
    expect_status_error("POST", "/cache/_mset", body, 413, "\"entries\" has 1001 items, more than max-batch (1000)");
    free(body);
    expect_absent("b0");
    body = batch_body(0, 1001);
    expect_status_error("POST", "/cache/_mget", body, 413, "\"keys\" has 1001 items, more than max-batch (1000)");
    free(body);
    body = batch_body(1, 1000);
    expect_exact("POST", "/cache/_mset", body, 200, "{\"stored\":1000}");
    free(body);
    body = batch_body(0, 1000);
    call("POST", "/cache/_mget", body, &res);
    json_t *obj = expect_json(&res, 200);
    assert_int_equal(json_object_size(json_object_get(obj, "entries")), 1000);
    assert_int_equal(json_array_size(json_object_get(obj, "missing")), 0);
    http_res_free(&res);
    free(body);

    /* --max-batch sets it. */
    assert_int_equal(server_start_args(&small, "--max-batch", "3", NULL), 0);
    static const char *const json_headers[] = {"Content-Type: application/json", NULL};
    static const struct {
        const char *path, *body;
        long status;
        const char *want;
    } cases[] = {
        {"/cache/_mset",
         "{\"entries\":[{\"key\":\"a\",\"value\":1},{\"key\":\"b\",\"value\":1},{\"key\":\"c\",\"value\":1},"
         "{\"key\":\"d\",\"value\":1}]}",
         413, "{\"error\":\"\\\"entries\\\" has 4 items, more than max-batch (3)\"}"},
        {"/cache/_mget", "{\"keys\":[\"a\",\"b\",\"c\",\"d\"]}", 413,
         "{\"error\":\"\\\"keys\\\" has 4 items, more than max-batch (3)\"}"},
        {"/cache/_mset",
         "{\"entries\":[{\"key\":\"a\",\"value\":1},{\"key\":\"b\",\"value\":1},{\"key\":\"c\",\"value\":1}]}", 200,
         "{\"stored\":3}"},
        {"/cache/_mget", "{\"keys\":[\"a\",\"b\",\"d\"]}", 200, "{\"entries\":{\"a\":1,\"b\":1},\"missing\":[\"d\"]}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct http_req req = {.method = "POST", .path = cases[i].path, .body = cases[i].body, .headers = json_headers};
        assert_int_equal(http_do(NULL, small.port, &req, &res), 0);
        if (res.status != cases[i].status || strcmp(res.body, cases[i].want) != 0)
            fail_msg("--max-batch 3, %s: %ld %s, expected %ld %s", cases[i].path, res.status, res.body, cases[i].status,
                     cases[i].want);
        http_res_free(&res);
    }
    expect_clean_exit(&small, 15000);
    server_cleanup(&small);
}

/* ---- HTTP/2: many streams on one connection ---------------------------------------------------------------- */

static void a_hundred_concurrent_h2c_streams_mixing_every_kind_of_request(void **state)
{
    (void)state;
    enum { N = 100, KINDS = 5 };
    CURLM *multi = curl_multi_init();
    CURL *easy[N], *opener = http_easy_new();
    struct http_res res[N];
    struct http_req req[N];
    char bodies[N][64], paths[N][64];
    static const char *const raw_ct[] = {"Content-Type: application/octet-stream", NULL};

    /* The keys the reads expect. */
    for (int i = 0; i < N; i++) {
        char key[32], value[16];
        snprintf(key, sizeof(key), "h2-get-%d", i);
        snprintf(value, sizeof(value), "%d", i);
        put_json(key, value);
    }
    json_t *before = get_stats(PORT);

    http_multi_open_h2(multi, PORT, opener, 20000);

    for (int i = 0; i < N; i++) {
        easy[i] = http_easy_new();
        req[i] = (struct http_req){.timeout_ms = 15000, .http_version = CURL_HTTP_VERSION_2};
        switch (i % KINDS) {
        case 0: /* PUT a JSON value */
            snprintf(paths[i], sizeof(paths[i]), "/cache/h2-put-%d", i);
            snprintf(bodies[i], sizeof(bodies[i]), "{\"value\":{\"i\":%d}}", i);
            req[i].method = "PUT", req[i].body = bodies[i], req[i].headers = json_ct;
            break;
        case 1: /* GET one */
            snprintf(paths[i], sizeof(paths[i]), "/cache/h2-get-%d", i);
            break;
        case 2: /* incr one shared counter */
            snprintf(paths[i], sizeof(paths[i]), "/cache/h2-counter/incr");
            req[i].method = "POST";
            break;
        case 3: /* list the keys the reads use */
            snprintf(paths[i], sizeof(paths[i]), "/cache?prefix=h2-get-&limit=1000");
            break;
        case 4: /* PUT raw bytes */
            snprintf(paths[i], sizeof(paths[i]), "/cache/h2-raw-%d", i);
            snprintf(bodies[i], sizeof(bodies[i]), "raw\x01%d", i);
            req[i].method = "PUT", req[i].body = bodies[i], req[i].headers = raw_ct;
            break;
        }
        req[i].path = paths[i];
        http_multi_add(multi, PORT, easy[i], &req[i], &res[i]);
    }
    assert_int_equal(http_multi_run(multi, N, 20000), N);

    char counted[N / KINDS + 1] = {0};
    long connects = 0;
    for (int i = 0; i < N; i++) {
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
        if (res[i].curl_code != CURLE_OK)
            fail_msg("stream %d (%s): %s", i, paths[i], curl_easy_strerror(res[i].curl_code));
        if (res[i].http_version != CURL_HTTP_VERSION_2_0)
            fail_msg("stream %d (%s) was not HTTP/2", i, paths[i]);
        connects += res[i].new_connections;
        char want[128];
        switch (i % KINDS) {
        case 0:
        case 4:
            expect_message(&res[i], 201, "created");
            break;
        case 1:
            snprintf(want, sizeof(want), "{\"key\":\"h2-get-%d\",\"value\":%d}", i, i);
            expect_json(&res[i], 200);
            if (strcmp(res[i].body, want) != 0)
                fail_msg("stream %d: %s, expected %s", i, res[i].body, want);
            break;
        case 2: {
            json_t *obj = expect_json(&res[i], 200);
            json_int_t v = json_int_member(obj, "value");
            if (v < 1 || v > N / KINDS || counted[v]++)
                fail_msg("stream %d: incr answered %lld (outside 1..%d or twice)", i, (long long)v, N / KINDS);
            break;
        }
        case 3: {
            json_t *obj = expect_json(&res[i], 200);
            json_t *keys = json_object_get(obj, "keys");
            int counts[N];
            if (!json_is_null(json_object_get(obj, "next_cursor")))
                fail_msg("stream %d: a listing of 100 keys with limit 1000 was not complete: %.200s", i, res[i].body);
            count_keys(keys, "h2-get-", N, counts);
            for (int k = 0; k < N; k++)
                if (counts[k] != 1)
                    fail_msg("stream %d: h2-get-%d listed %d times", i, k, counts[k]);
            break;
        }
        }
        http_res_free(&res[i]);
    }
    assert_int_equal(connects, 0); /* every stream rode the opener's connection */
    curl_easy_cleanup(opener);
    curl_multi_cleanup(multi);

    /* One connection for all 101 requests (and one for each /stats). */
    json_t *after = get_stats(PORT);
    assert_int_equal(json_int_member(after, "connections_total") - json_int_member(before, "connections_total"), 2);
    json_decref(before);
    json_decref(after);

    /* The writes landed. */
    char want[64];
    snprintf(want, sizeof(want), "{\"key\":\"h2-counter\",\"value\":%d}", N / KINDS);
    expect_body("h2-counter", want);
    for (int i = 0; i < N; i += KINDS) {
        char key[32], body[64];
        snprintf(key, sizeof(key), "h2-put-%d", i);
        snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":{\"i\":%d}}", key, i);
        expect_body(key, body);
    }
}

static void h2load_runs_100_prior_knowledge_streams_on_one_connection(void **state)
{
    (void)state;
    char cmd[1024], *out;
    if (!have_program("h2load")) {
        print_message("  h2load (Debian nghttp2-client) is not installed: skipped\n");
        skip();
    }
    put_json("h2l-key", "\"h2load\"");
    /* Reads over every read endpoint, round robin: h2load uses prior knowledge for http:// URIs. */
    snprintf(cmd, sizeof(cmd),
             "timeout 60 h2load -n 100 -c 1 -m 100 http://127.0.0.1:%u/cache/h2l-key "
             "'http://127.0.0.1:%u/cache?prefix=h2l-&limit=10' http://127.0.0.1:%u/metrics "
             "http://127.0.0.1:%u/health 2>&1",
             PORT, PORT, PORT, PORT);
    int status = run_shell(cmd, &out);
    if (status != 0 || strstr(out, "requests: 100 total, 100 started, 100 done, 100 succeeded, 0 failed") == NULL ||
        strstr(out, "status codes: 100 2xx, 0 3xx, 0 4xx, 0 5xx") == NULL)
        fail_msg("h2load reads (exit %d):\n%s", status, out);
    free(out);

    /* 100 increments at once on one connection: each counted once. */
    char data[] = "/tmp/cachette-h2load-XXXXXX";
    int fd = mkstemp(data);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\"by\":2}", 8), 8);
    close(fd);
    snprintf(cmd, sizeof(cmd),
             "timeout 60 h2load -n 100 -c 1 -m 100 -d %s http://127.0.0.1:%u/cache/h2l-counter/incr 2>&1", data, PORT);
    status = run_shell(cmd, &out);
    unlink(data);
    if (status != 0 || strstr(out, "requests: 100 total, 100 started, 100 done, 100 succeeded, 0 failed") == NULL ||
        strstr(out, "status codes: 100 2xx, 0 3xx, 0 4xx, 0 5xx") == NULL)
        fail_msg("h2load increments (exit %d):\n%s", status, out);
    free(out);
    expect_body("h2l-counter", "{\"key\":\"h2l-counter\",\"value\":200}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* First, while no earlier test's connection can still be finishing a request. */
        cmocka_unit_test(metrics_parse_as_prometheus_text_and_the_counters_move),
        cmocka_unit_test(incr_counts_from_zero_by_one_or_by),
        cmocka_unit_test(incr_ttl_applies_when_it_creates_and_an_expired_key_counts_from_zero),
        cmocka_unit_test(incr_of_a_non_integer_or_past_int64_is_409_and_changes_nothing),
        cmocka_unit_test(incr_with_a_bad_body_is_400_and_creates_nothing),
        cmocka_unit_test(eight_clients_incrementing_one_key_end_at_exactly_8000),
        cmocka_unit_test(eight_clients_incrementing_their_own_keys_end_exact),
        cmocka_unit_test(listing_pages_through_every_key),
        cmocka_unit_test(listing_shows_keys_that_are_not_utf8_in_base64),
        cmocka_unit_test(listing_limits_and_cursors_are_validated),
        cmocka_unit_test(a_key_present_for_the_whole_listing_is_returned_while_the_table_grows),
        cmocka_unit_test(flush_deletes_every_entry_and_counts_them),
        cmocka_unit_test(mget_returns_entries_and_the_missing_keys),
        cmocka_unit_test(mget_answers_up_to_max_mget_bytes_and_413_past_it),
        cmocka_unit_test(mset_stores_every_item_or_none),
        cmocka_unit_test(batches_over_max_batch_are_413),
        cmocka_unit_test(a_hundred_concurrent_h2c_streams_mixing_every_kind_of_request),
        cmocka_unit_test(h2load_runs_100_prior_knowledge_streams_on_one_connection),
    };
    group_server_args = server_flags;
    return support_exit_code(cmocka_run_group_tests(tests, group_server_setup, group_server_teardown));
}
