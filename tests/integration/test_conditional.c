/*
 * Compare-and-set and caching headers (issue 3) against the real binary:
 * strong ETags that change on every write, If-None-Match on GET and HEAD,
 * If-Match and If-None-Match on PUT, DELETE and incr (412 with nothing
 * changed), Cache-Control from the entry's TTL, and the lost-update race
 * run by eight clients that must end with no update lost.
 *
 * "Nothing changed" is checked by reading the value and the ETag back after
 * every refused write: a server that wrote and then answered 412 fails.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/http.h"
#include "../support/server.h"

/*
 * More worker threads than cores: a server that checked a precondition and then wrote in a
 * separate step would be preempted between the two more often, so the race tests catch it more
 * often. A correct server passes either way.
 */
static const char *const server_flags[] = {"--threads", "4", NULL};

#define PORT (group_server.port)

static const char *const json_ct[] = {"Content-Type: application/json", NULL};

/* A tag no entry has: version 0 is never given out. */
#define NO_SUCH_TAG "\"0000000000000000\""

/* ---- helpers ---------------------------------------------------------------------- */

struct tag {
    char s[64];
};

/* Performs method path [body] with extra headers (NULL-terminated, may be NULL); asserts a response. */
static void request(const char *method, const char *path, const char *body, const char *const *extra,
                    struct http_res *res)
{
    const char *headers[8];
    size_t n = 0;
    if (body != NULL)
        headers[n++] = json_ct[0];
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 7; i++)
        headers[n++] = extra[i];
    headers[n] = NULL;
    struct http_req req = {.method = method, .path = path, .body = body, .headers = headers};
    if (http_do(NULL, PORT, &req, res) != 0)
        fail_msg("%s %s: no response: %s", method, path, curl_easy_strerror(res->curl_code));
}

/* The request with one extra header "name: value". */
static void request_if(const char *method, const char *path, const char *body, const char *name, const char *value,
                       struct http_res *res)
{
    char header[256];
    const char *extra[] = {header, NULL};
    snprintf(header, sizeof(header), "%s: %s", name, value);
    request(method, path, body, extra, res);
}

/* Asserts the response has a strong ETag: a quoted, non-empty opaque tag without W/. */
static struct tag etag_of(const struct http_res *res)
{
    struct tag t;
    if (http_header(res, "ETag", t.s, sizeof(t.s)) == NULL)
        fail_msg("status %ld: no ETag; headers: %s", res->status, res->headers);
    size_t len = strlen(t.s);
    if (len < 3 || t.s[0] != '"' || t.s[len - 1] != '"' || memchr(t.s + 1, '"', len - 2) != NULL)
        fail_msg("ETag %s is not a strong entity tag", t.s);
    return t;
}

static void expect_no_etag(const struct http_res *res)
{
    char buf[64];
    if (http_header(res, "ETag", buf, sizeof(buf)) != NULL)
        fail_msg("status %ld: unexpected ETag %s", res->status, buf);
}

/* GET path: asserts 200 and returns the envelope's body text (malloc'ed) and its ETag. */
static char *get_entry(const char *path, struct tag *tag)
{
    struct http_res res;
    request("GET", path, NULL, NULL, &res);
    expect_json(&res, 200);
    *tag = etag_of(&res);
    char *body = strdup(res.body);
    http_res_free(&res);
    return body;
}

/* Asserts that GET path answers exactly body with ETag tag: the entry did not change. */
static void expect_unchanged(const char *path, const char *body, const struct tag *tag)
{
    struct tag now;
    char *got = get_entry(path, &now);
    if (strcmp(got, body) != 0)
        fail_msg("GET %s changed: '%s', was '%s'", path, got, body);
    if (strcmp(now.s, tag->s) != 0)
        fail_msg("GET %s: ETag changed from %s to %s without a write", path, tag->s, now.s);
    free(got);
}

static void expect_absent(const char *path)
{
    struct http_res res;
    request("GET", path, NULL, NULL, &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
}

static void expect_precondition_failed(const struct http_res *res)
{
    expect_error(res, 412, "precondition failed");
}

/* Tags seen so far in one test, to prove each write gave a new one. */
struct tag_set {
    struct tag tags[64];
    size_t n;
};

static void add_new_tag(struct tag_set *set, const struct tag *t, const char *what)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->tags[i].s, t->s) == 0)
            fail_msg("%s: ETag %s was already given to an earlier write", what, t->s);
    assert_true(set->n < sizeof(set->tags) / sizeof(set->tags[0]));
    set->tags[set->n++] = *t;
}

/* ---- ETag ----------------------------------------------------------------------------- */

static void every_response_carrying_an_entry_has_a_strong_etag_that_changes_on_every_write(void **state)
{
    (void)state;
    static const char *const text_plain[] = {"Content-Type: text/plain", NULL};
    struct tag_set seen = {.n = 0};
    struct http_res res;
    struct tag t, put_tag;

    /* PUT (create): the response carries the new entry's tag, and GET and HEAD show the same. */
    request("PUT", "/cache/tagged", "{\"value\":1}", NULL, &res);
    expect_message(&res, 201, "created");
    put_tag = etag_of(&res);
    add_new_tag(&seen, &put_tag, "PUT create");
    http_res_free(&res);
    free(get_entry("/cache/tagged", &t));
    assert_string_equal(t.s, put_tag.s);
    request("HEAD", "/cache/tagged", NULL, NULL, &res);
    assert_int_equal(res.status, 200);
    t = etag_of(&res);
    assert_string_equal(t.s, put_tag.s);
    http_res_free(&res);
    /* The raw representation has a tag of its own (RFC 9110 8.8.3): the same version, "-raw". */
    request("GET", "/cache/tagged?raw", NULL, NULL, &res);
    assert_int_equal(res.status, 200);
    t = etag_of(&res);
    char raw_tag[64];
    snprintf(raw_tag, sizeof(raw_tag), "%.*s-raw\"", (int)strlen(put_tag.s) - 1, put_tag.s);
    assert_string_equal(t.s, raw_tag);
    http_res_free(&res);

    /* Reads do not change it. */
    free(get_entry("/cache/tagged", &t));
    assert_string_equal(t.s, put_tag.s);

    /* PUT (replace), even with the same value: a new tag. */
    for (int i = 0; i < 3; i++) {
        request("PUT", "/cache/tagged", "{\"value\":1}", NULL, &res);
        expect_message(&res, 200, "replaced");
        put_tag = etag_of(&res);
        add_new_tag(&seen, &put_tag, "PUT replace");
        http_res_free(&res);
        free(get_entry("/cache/tagged", &t));
        assert_string_equal(t.s, put_tag.s);
    }

    /* A raw PUT. */
    struct http_req raw = {.method = "PUT", .path = "/cache/tagged", .body = "2", .headers = text_plain};
    assert_int_equal(http_do(NULL, PORT, &raw, &res), 0);
    expect_message(&res, 200, "replaced");
    put_tag = etag_of(&res);
    add_new_tag(&seen, &put_tag, "raw PUT");
    http_res_free(&res);

    /* incr: its response carries the tag of the entry it wrote. */
    request("PUT", "/cache/tagged", "{\"value\":10}", NULL, &res);
    put_tag = etag_of(&res);
    add_new_tag(&seen, &put_tag, "PUT");
    http_res_free(&res);
    for (int i = 0; i < 3; i++) {
        request("POST", "/cache/tagged/incr", NULL, NULL, &res);
        expect_json(&res, 200);
        put_tag = etag_of(&res);
        add_new_tag(&seen, &put_tag, "incr");
        http_res_free(&res);
        free(get_entry("/cache/tagged", &t));
        assert_string_equal(t.s, put_tag.s);
    }

    /* Writes whose responses carry no entry still change the tag: POST /cache and _mset. */
    request("POST", "/cache", "{\"key\":\"tagged\",\"value\":\"posted\"}", NULL, &res);
    expect_message(&res, 200, "stored");
    http_res_free(&res);
    free(get_entry("/cache/tagged", &t));
    add_new_tag(&seen, &t, "POST /cache");
    request("POST", "/cache/_mset", "{\"entries\":[{\"key\":\"tagged\",\"value\":\"mset\"}]}", NULL, &res);
    expect_json(&res, 200);
    http_res_free(&res);
    free(get_entry("/cache/tagged", &t));
    add_new_tag(&seen, &t, "_mset");

    /* Delete and create again: a new tag, not the old one reused. */
    request("DELETE", "/cache/tagged", NULL, NULL, &res);
    expect_message(&res, 200, "deleted");
    http_res_free(&res);
    request("PUT", "/cache/tagged", "{\"value\":1}", NULL, &res);
    expect_message(&res, 201, "created");
    put_tag = etag_of(&res);
    add_new_tag(&seen, &put_tag, "PUT after DELETE");
    http_res_free(&res);

    /* Answers that carry no entry carry no tag. */
    request("GET", "/cache/never-tagged", NULL, NULL, &res);
    expect_error(&res, 404, "key not found");
    expect_no_etag(&res);
    http_res_free(&res);
    request("DELETE", "/cache/tagged", NULL, NULL, &res);
    expect_no_etag(&res);
    http_res_free(&res);
}

/* ---- If-None-Match on reads ------------------------------------------------------------ */

static void if_none_match_on_get_and_head_is_304_when_it_matches(void **state)
{
    (void)state;
    struct http_res res;
    struct tag t;
    char value[512], cc[64];

    request("PUT", "/cache/inm", "{\"value\":{\"big\":\"enough to notice\"}}", NULL, &res);
    http_res_free(&res);
    free(get_entry("/cache/inm", &t));

    char weak[80], list[200], list_weak[200], others[200];
    snprintf(weak, sizeof(weak), "W/%s", t.s);
    snprintf(list, sizeof(list), "\"abc\", %s , \"def\"", t.s);
    snprintf(list_weak, sizeof(list_weak), "W/\"abc\",W/%s", t.s);
    snprintf(others, sizeof(others), "\"abc\", W/\"def\", %s", NO_SUCH_TAG);
    const char *const match[] = {t.s, weak, list, list_weak, "*", " * "};
    const char *const no_match[] = {others, NO_SUCH_TAG, "\"\"", "garbage", ""};
    const char *const methods[] = {"GET", "HEAD"};

    for (size_t m = 0; m < 2; m++) {
        for (size_t i = 0; i < sizeof(match) / sizeof(match[0]); i++) {
            request_if(methods[m], "/cache/inm", NULL, "If-None-Match", match[i], &res);
            if (res.status != 304)
                fail_msg("%s If-None-Match: %s: expected 304, got %ld", methods[m], match[i], res.status);
            assert_int_equal(res.body_len, 0);
            struct tag got = etag_of(&res); /* a 304 still names the current tag */
            assert_string_equal(got.s, t.s);
            assert_non_null(http_header(&res, "Cache-Control", cc, sizeof(cc)));
            http_res_free(&res);
        }
        for (size_t i = 0; i < sizeof(no_match) / sizeof(no_match[0]); i++) {
            request_if(methods[m], "/cache/inm", NULL, "If-None-Match", no_match[i], &res);
            if (res.status != 200)
                fail_msg("%s If-None-Match: %s: expected 200, got %ld", methods[m], no_match[i], res.status);
            if (m == 0) {
                expect_json(&res, 200);
                assert_string_equal(res.body, "{\"key\":\"inm\",\"value\":{\"big\":\"enough to notice\"}}");
            } else {
                assert_int_equal(res.body_len, 0);
                assert_non_null(http_header(&res, "Content-Length", value, sizeof(value)));
                assert_int_not_equal(atoi(value), 0);
            }
            http_res_free(&res);
        }
    }

    /* After a write the old tag no longer matches: the client gets the new entry. */
    request("PUT", "/cache/inm", "{\"value\":2}", NULL, &res);
    http_res_free(&res);
    request_if("GET", "/cache/inm", NULL, "If-None-Match", t.s, &res);
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"key\":\"inm\",\"value\":2}");
    struct tag fresh = etag_of(&res);
    assert_string_not_equal(fresh.s, t.s);
    http_res_free(&res);
    request_if("GET", "/cache/inm", NULL, "If-None-Match", fresh.s, &res);
    assert_int_equal(res.status, 304);
    http_res_free(&res);

    /* An absent key: If-None-Match: * does not match, so GET is the usual 404. */
    request_if("GET", "/cache/inm-absent", NULL, "If-None-Match", "*", &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
}

/* GET path with one extra header (or none: name NULL); asserts status and returns the ETag. */
static struct tag get_tag(const char *path, const char *name, const char *value, long status)
{
    struct http_res res;
    if (name != NULL)
        request_if("GET", path, NULL, name, value, &res);
    else
        request("GET", path, NULL, NULL, &res);
    if (res.status != status)
        fail_msg("GET %s %s: %s: expected %ld, got %ld", path, name ? name : "", name ? value : "", status, res.status);
    struct tag t = {""};
    if (status != 412)
        t = etag_of(&res);
    http_res_free(&res);
    return t;
}

/*
 * The JSON envelope and the stored bytes are two representations, so two
 * strong tags (RFC 9110 8.8.3): a cache that keeps both (Vary: Accept) and
 * revalidates one must not be told it still has the other. A GET compares the
 * tag of the representation it selects; a write takes either, since both name
 * the version it is conditioned on.
 */
static void each_representation_has_its_own_tag(void **state)
{
    (void)state;
    static const char *const text_plain[] = {"Content-Type: text/plain", NULL};
    struct http_res res;
    struct http_req put = {.method = "PUT", .path = "/cache/reps", .body = "hello", .headers = text_plain};
    assert_int_equal(http_do(NULL, PORT, &put, &res), 0);
    http_res_free(&res);

    struct tag env = get_tag("/cache/reps", NULL, NULL, 200), raw = get_tag("/cache/reps?raw", NULL, NULL, 200);
    assert_string_not_equal(env.s, raw.s);
    struct tag accepted = get_tag("/cache/reps", "Accept", "text/plain", 200); /* raw through Accept */
    assert_string_equal(accepted.s, raw.s);

    get_tag("/cache/reps?raw", "If-None-Match", env.s, 200);
    assert_string_equal(get_tag("/cache/reps?raw", "If-None-Match", raw.s, 304).s, raw.s);
    get_tag("/cache/reps", "If-None-Match", raw.s, 200);
    assert_string_equal(get_tag("/cache/reps", "If-None-Match", env.s, 304).s, env.s);
    get_tag("/cache/reps?raw", "If-Match", env.s, 412);
    get_tag("/cache/reps?raw", "If-Match", raw.s, 200);

    /* Writes take either tag of the current version, and neither of an old one. */
    char if_match[96];
    snprintf(if_match, sizeof(if_match), "If-Match: %s", raw.s);
    const char *conditional[] = {text_plain[0], if_match, NULL};
    put.headers = conditional;
    assert_int_equal(http_do(NULL, PORT, &put, &res), 0);
    expect_message(&res, 200, "replaced");
    http_res_free(&res);
    assert_int_equal(http_do(NULL, PORT, &put, &res), 0);
    expect_precondition_failed(&res);
    http_res_free(&res);
    struct tag now = get_tag("/cache/reps?raw", NULL, NULL, 200);
    request_if("DELETE", "/cache/reps", NULL, "If-Match", now.s, &res);
    assert_int_equal(res.status, 200);
    http_res_free(&res);
    expect_absent("/cache/reps");
}

/* RFC 9110 13.2.2: If-Match is evaluated for every method, a GET's too, and before If-None-Match. */
static void if_match_on_get_and_head_is_412_unless_it_matches(void **state)
{
    (void)state;
    struct http_res res;
    struct tag t;
    request("PUT", "/cache/im-get", "{\"value\":\"read me\"}", NULL, &res);
    http_res_free(&res);
    free(get_entry("/cache/im-get", &t));

    char list[200], weak[80];
    snprintf(list, sizeof(list), "\"abc\", %s", t.s);
    snprintf(weak, sizeof(weak), "W/%s", t.s);
    const char *const match[] = {t.s, list, "*"};
    const char *const no_match[] = {NO_SUCH_TAG, weak, "garbage"}; /* If-Match compares strongly */
    const char *const methods[] = {"GET", "HEAD"};
    for (size_t m = 0; m < 2; m++) {
        for (size_t i = 0; i < sizeof(match) / sizeof(match[0]); i++) {
            request_if(methods[m], "/cache/im-get", NULL, "If-Match", match[i], &res);
            if (res.status != 200)
                fail_msg("%s If-Match: %s: expected 200, got %ld", methods[m], match[i], res.status);
            http_res_free(&res);
        }
        for (size_t i = 0; i < sizeof(no_match) / sizeof(no_match[0]); i++) {
            request_if(methods[m], "/cache/im-get", NULL, "If-Match", no_match[i], &res);
            if (res.status != 412)
                fail_msg("%s If-Match: %s: expected 412, got %ld", methods[m], no_match[i], res.status);
            if (m == 0)
                expect_precondition_failed(&res);
            http_res_free(&res);
        }
    }

    /* A failed If-Match wins over a matching If-None-Match: 412, not 304. */
    char im[128], inm[128];
    snprintf(im, sizeof(im), "If-Match: %s", NO_SUCH_TAG);
    snprintf(inm, sizeof(inm), "If-None-Match: %s", t.s);
    const char *const both[] = {im, inm, NULL};
    request("GET", "/cache/im-get", NULL, both, &res);
    expect_precondition_failed(&res);
    http_res_free(&res);

    /* A missing key is 404 whatever the preconditions (RFC 9110 13.2.1). */
    request_if("GET", "/cache/im-get-absent", NULL, "If-Match", "*", &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
}

/* ---- If-Match on writes ------------------------------------------------------------------ */

static void if_match_on_put_is_412_unless_it_matches(void **state)
{
    (void)state;
    struct http_res res;
    struct tag t;

    request("PUT", "/cache/im-put", "{\"value\":\"v1\"}", NULL, &res);
    http_res_free(&res);
    char *body = get_entry("/cache/im-put", &t);

    char weak[80], list[200];
    snprintf(weak, sizeof(weak), "W/%s", t.s);
    snprintf(list, sizeof(list), "\"x\", %s", t.s);
    /* W/ never matches If-Match: it requires the strong comparison. A malformed field matches nothing. */
    const char *const refused[] = {NO_SUCH_TAG, weak, "\"x\", \"y\"", "garbage", t.s + 1};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        request_if("PUT", "/cache/im-put", "{\"value\":\"v2\"}", "If-Match", refused[i], &res);
        if (res.status != 412)
            fail_msg("PUT If-Match: %s: expected 412, got %ld: %s", refused[i], res.status, res.body);
        expect_precondition_failed(&res);
        expect_no_etag(&res);
        http_res_free(&res);
        expect_unchanged("/cache/im-put", body, &t);
    }
    free(body);

    /* The current tag, in a list, or *: the write goes through and the answer has the new tag. */
    for (int form = 0; form < 3; form++) {
        char header_value[200], value[64], want[128];
        struct tag now;
        if (form == 0)
            snprintf(header_value, sizeof(header_value), "%s", t.s);
        else if (form == 1)
            snprintf(header_value, sizeof(header_value), "\"x\" , W/\"y\",%s", t.s);
        else
            snprintf(header_value, sizeof(header_value), "*");
        snprintf(value, sizeof(value), "{\"value\":\"accepted-%d\"}", form);
        request_if("PUT", "/cache/im-put", value, "If-Match", header_value, &res);
        if (res.status != 200)
            fail_msg("PUT If-Match: %s (current %s): expected 200, got %ld: %s", header_value, t.s, res.status,
                     res.body);
        expect_message(&res, 200, "replaced");
        struct tag written = etag_of(&res);
        assert_string_not_equal(written.s, t.s);
        http_res_free(&res);
        body = get_entry("/cache/im-put", &now);
        snprintf(want, sizeof(want), "{\"key\":\"im-put\",\"value\":\"accepted-%d\"}", form);
        assert_string_equal(body, want);
        assert_string_equal(now.s, written.s);
        free(body);
        t = now;
    }

    /* The old tag is stale now: 412. */
    request_if("PUT", "/cache/im-put", "{\"value\":\"stale\"}", "If-Match", list, &res);
    expect_precondition_failed(&res);
    http_res_free(&res);
}

static void if_match_on_delete_is_412_unless_it_matches(void **state)
{
    (void)state;
    struct http_res res;
    struct tag t;

    request("PUT", "/cache/im-del", "{\"value\":[1,2,3]}", NULL, &res);
    http_res_free(&res);
    char *body = get_entry("/cache/im-del", &t);

    char weak[80];
    snprintf(weak, sizeof(weak), "W/%s", t.s);
    const char *const refused[] = {NO_SUCH_TAG, weak, "garbage"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        request_if("DELETE", "/cache/im-del", NULL, "If-Match", refused[i], &res);
        expect_precondition_failed(&res);
        http_res_free(&res);
        expect_unchanged("/cache/im-del", body, &t);
    }
    free(body);

    request_if("DELETE", "/cache/im-del", NULL, "If-Match", t.s, &res);
    expect_message(&res, 200, "deleted");
    http_res_free(&res);
    expect_absent("/cache/im-del");

    /* If-Match: * deletes whatever is there. */
    request("PUT", "/cache/im-del", "{\"value\":0}", NULL, &res);
    http_res_free(&res);
    request_if("DELETE", "/cache/im-del", NULL, "If-Match", "*", &res);
    expect_message(&res, 200, "deleted");
    http_res_free(&res);
    expect_absent("/cache/im-del");
}

static void if_match_on_incr_is_412_unless_it_matches(void **state)
{
    (void)state;
    struct http_res res;
    struct tag t;

    request("PUT", "/cache/im-incr", "{\"value\":41}", NULL, &res);
    http_res_free(&res);
    char *body = get_entry("/cache/im-incr", &t);

    request_if("POST", "/cache/im-incr/incr", NULL, "If-Match", NO_SUCH_TAG, &res);
    expect_precondition_failed(&res);
    http_res_free(&res);
    request_if("POST", "/cache/im-incr/incr", "{\"by\":5}", "If-Match", "\"stale\", W/\"x\"", &res);
    expect_precondition_failed(&res);
    http_res_free(&res);
    expect_unchanged("/cache/im-incr", body, &t);
    free(body);

    request_if("POST", "/cache/im-incr/incr", NULL, "If-Match", t.s, &res);
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"key\":\"im-incr\",\"value\":42}");
    struct tag written = etag_of(&res);
    http_res_free(&res);
    /* The same tag again is stale. */
    request_if("POST", "/cache/im-incr/incr", NULL, "If-Match", t.s, &res);
    expect_precondition_failed(&res);
    http_res_free(&res);
    request_if("POST", "/cache/im-incr/incr", "{\"by\":-2}", "If-Match", written.s, &res);
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"key\":\"im-incr\",\"value\":40}");
    http_res_free(&res);
    request_if("POST", "/cache/im-incr/incr", NULL, "If-Match", "*", &res);
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"key\":\"im-incr\",\"value\":41}");
    http_res_free(&res);
}

static void if_match_star_on_an_absent_key_is_412_and_creates_nothing(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *body;
    } writes[] = {
        {"PUT", "/cache/im-absent", "{\"value\":1}"},
        {"DELETE", "/cache/im-absent", NULL},
        {"POST", "/cache/im-absent/incr", NULL},
        {"POST", "/cache/im-absent/incr", "{\"by\":3,\"ttl\":60}"},
    };
    struct http_res res;
    const char *const tags[] = {"*", NO_SUCH_TAG};
    for (size_t t = 0; t < 2; t++) {
        for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
            request_if(writes[i].method, writes[i].path, writes[i].body, "If-Match", tags[t], &res);
            if (res.status != 412)
                fail_msg("%s %s If-Match: %s on an absent key: expected 412, got %ld: %s", writes[i].method,
                         writes[i].path, tags[t], res.status, res.body);
            expect_precondition_failed(&res);
            http_res_free(&res);
            expect_absent("/cache/im-absent");
        }
    }

    /* A raw PUT is held to the same rule. */
    const char *const raw_headers[] = {"Content-Type: application/octet-stream", "If-Match: *", NULL};
    struct http_req raw = {.method = "PUT", .path = "/cache/im-absent", .body = "\x01", .headers = raw_headers};
    assert_int_equal(http_do(NULL, PORT, &raw, &res), 0);
    expect_precondition_failed(&res);
    http_res_free(&res);
    expect_absent("/cache/im-absent");
}

/* ---- If-None-Match on PUT ------------------------------------------------------------------ */

static void if_none_match_star_on_put_creates_only(void **state)
{
    (void)state;
    struct http_res res;
    struct tag t;

    request_if("PUT", "/cache/create-only", "{\"value\":\"first\"}", "If-None-Match", "*", &res);
    expect_message(&res, 201, "created");
    struct tag created = etag_of(&res);
    http_res_free(&res);
    char *body = get_entry("/cache/create-only", &t);
    assert_string_equal(body, "{\"key\":\"create-only\",\"value\":\"first\"}");
    assert_string_equal(t.s, created.s);

    request_if("PUT", "/cache/create-only", "{\"value\":\"second\"}", "If-None-Match", "*", &res);
    if (res.status != 412)
        fail_msg("PUT If-None-Match: * on an existing key: expected 412, got %ld: %s", res.status, res.body);
    expect_precondition_failed(&res);
    http_res_free(&res);
    expect_unchanged("/cache/create-only", body, &t);

    /* A listed current tag refuses the write too; a tag that is not current lets it through. */
    request_if("PUT", "/cache/create-only", "{\"value\":\"third\"}", "If-None-Match", t.s, &res);
    expect_precondition_failed(&res);
    http_res_free(&res);
    expect_unchanged("/cache/create-only", body, &t);
    free(body);
    request_if("PUT", "/cache/create-only", "{\"value\":\"fourth\"}", "If-None-Match", NO_SUCH_TAG, &res);
    expect_message(&res, 200, "replaced");
    http_res_free(&res);
    body = get_entry("/cache/create-only", &t);
    assert_string_equal(body, "{\"key\":\"create-only\",\"value\":\"fourth\"}");
    free(body);

    /* Once deleted, create-only works again; raw PUTs follow the same rule. */
    request("DELETE", "/cache/create-only", NULL, NULL, &res);
    http_res_free(&res);
    const char *const raw_headers[] = {"Content-Type: text/plain", "If-None-Match: *", NULL};
    struct http_req raw = {.method = "PUT", .path = "/cache/create-only", .body = "raw", .headers = raw_headers};
    assert_int_equal(http_do(NULL, PORT, &raw, &res), 0);
    expect_message(&res, 201, "created");
    http_res_free(&res);
    assert_int_equal(http_do(NULL, PORT, &raw, &res), 0);
    expect_precondition_failed(&res);
    http_res_free(&res);
}

/* ---- Cache-Control -------------------------------------------------------------------------- */

static int max_age_of(const char *method, const char *path)
{
    struct http_res res;
    char cc[64];
    request(method, path, NULL, NULL, &res);
    assert_int_equal(res.status, 200);
    if (http_header(&res, "Cache-Control", cc, sizeof(cc)) == NULL)
        fail_msg("%s %s: no Cache-Control", method, path);
    http_res_free(&res);
    if (strcmp(cc, "no-cache") == 0)
        return -1;
    if (strncmp(cc, "max-age=", 8) != 0 || cc[8] < '0' || cc[8] > '9')
        fail_msg("%s %s: Cache-Control '%s' is neither no-cache nor max-age=N", method, path, cc);
    return atoi(cc + 8);
}

static void cache_control_follows_the_entrys_ttl(void **state)
{
    (void)state;
    struct http_res res;

    request("PUT", "/cache/cc-ttl?ttl=30", "{\"value\":1}", NULL, &res);
    http_res_free(&res);
    request("PUT", "/cache/cc-body", "{\"value\":1,\"ttl\":7}", NULL, &res);
    http_res_free(&res);
    request("PUT", "/cache/cc-forever", "{\"value\":1}", NULL, &res);
    http_res_free(&res);
    request("POST", "/cache/cc-counter/incr", "{\"ttl\":5}", NULL, &res);
    http_res_free(&res);

    const char *const methods[] = {"GET", "HEAD"};
    for (int m = 0; m < 2; m++) {
        int age = max_age_of(methods[m], "/cache/cc-ttl");
        if (age <= 0 || age > 30 || age < 28)
            fail_msg("%s with ttl=30: max-age=%d, expected 28..30", methods[m], age);
        age = max_age_of(methods[m], "/cache/cc-body");
        if (age <= 0 || age > 7 || age < 5)
            fail_msg("%s with ttl 7: max-age=%d, expected 5..7", methods[m], age);
        age = max_age_of(methods[m], "/cache/cc-counter");
        if (age <= 0 || age > 5 || age < 3)
            fail_msg("%s of a counter with ttl 5: max-age=%d, expected 3..5", methods[m], age);
        assert_int_equal(max_age_of(methods[m], "/cache/cc-forever"), -1);
    }
    assert_int_equal(max_age_of("GET", "/cache/cc-forever?raw"), -1);

    /* Replacing without a TTL makes it no-cache; adding one makes it max-age. */
    request("PUT", "/cache/cc-ttl", "{\"value\":2}", NULL, &res);
    http_res_free(&res);
    assert_int_equal(max_age_of("GET", "/cache/cc-ttl"), -1);
    request("PUT", "/cache/cc-forever?ttl=100", "{\"value\":2}", NULL, &res);
    http_res_free(&res);
    int age = max_age_of("GET", "/cache/cc-forever");
    if (age < 98 || age > 100)
        fail_msg("max-age=%d after ttl=100, expected 98..100", age);
}

/* ---- the lost-update race ---------------------------------------------------------------------- */

#define RACE_CLIENTS    8
#define RACE_INCREMENTS 50

struct race_client {
    pthread_t thread;
    int id;
    int done;        /* successful increments */
    int conflicts;   /* 412s, each followed by a fresh read */
    char error[256]; /* the first failure, if any (cmocka may not be called off the main thread) */
};

static int64_t race_deadline;

/* One client: GET the counter and its tag, PUT value + 1 with If-Match, and on 412 start over. */
static void *race_client_run(void *arg)
{
    struct race_client *c = arg;
    CURL *easy = http_easy_new();
    struct http_res res;
    char tag[64], header[96], body[64];
    const char *headers[] = {header, json_ct[0], NULL};

    while (c->done < RACE_INCREMENTS && c->error[0] == '\0') {
        if (now_ms() > race_deadline) {
            snprintf(c->error, sizeof(c->error), "deadline passed after %d increments", c->done);
            break;
        }
        struct http_req get = {.path = "/cache/race"};
        if (http_do(easy, PORT, &get, &res) != 0 || res.status != 200 || !json_is_object(res.json) ||
            !json_is_integer(json_object_get(res.json, "value")) ||
            http_header(&res, "ETag", tag, sizeof(tag)) == NULL) {
            snprintf(c->error, sizeof(c->error), "GET: curl %d, status %ld: %.100s", res.curl_code, res.status,
                     res.body ? res.body : "");
            http_res_free(&res);
            break;
        }
        json_int_t value = json_integer_value(json_object_get(res.json, "value"));
        http_res_free(&res);

        snprintf(header, sizeof(header), "If-Match: %s", tag);
        snprintf(body, sizeof(body), "{\"value\":%lld}", (long long)value + 1);
        struct http_req put = {.method = "PUT", .path = "/cache/race", .body = body, .headers = headers};
        if (http_do(easy, PORT, &put, &res) != 0) {
            snprintf(c->error, sizeof(c->error), "PUT: curl %d", res.curl_code);
        } else if (res.status == 200) {
            c->done++;
        } else if (res.status == 412) {
            c->conflicts++;
        } else {
            snprintf(c->error, sizeof(c->error), "PUT: status %ld: %.100s", res.status, res.body);
        }
        http_res_free(&res);
    }
    curl_easy_cleanup(easy);
    return NULL;
}

static void read_modify_write_with_if_match_loses_no_update(void **state)
{
    (void)state;
    struct race_client clients[RACE_CLIENTS];
    struct http_res res;
    int conflicts = 0;

    request("PUT", "/cache/race", "{\"value\":0}", NULL, &res);
    expect_json(&res, 0);
    http_res_free(&res);

    race_deadline = now_ms() + 120000; /* a hang guard only: valgrind and load may take well past 25 s */
    for (int i = 0; i < RACE_CLIENTS; i++) {
        clients[i] = (struct race_client){.id = i};
        assert_int_equal(pthread_create(&clients[i].thread, NULL, race_client_run, &clients[i]), 0);
    }
    for (int i = 0; i < RACE_CLIENTS; i++)
        pthread_join(clients[i].thread, NULL);
    for (int i = 0; i < RACE_CLIENTS; i++) {
        if (clients[i].error[0] != '\0')
            fail_msg("client %d: %s", i, clients[i].error);
        assert_int_equal(clients[i].done, RACE_INCREMENTS);
        conflicts += clients[i].conflicts;
    }

    struct tag t;
    char *body = get_entry("/cache/race", &t);
    char want[64];
    snprintf(want, sizeof(want), "{\"key\":\"race\",\"value\":%d}", RACE_CLIENTS * RACE_INCREMENTS);
    if (strcmp(body, want) != 0)
        fail_msg("after %d successful conditional writes (%d refused with 412) the counter reads %s",
                 RACE_CLIENTS * RACE_INCREMENTS, conflicts, body);
    free(body);
    print_message("  %d read-modify-writes, %d retried after 412\n", RACE_CLIENTS * RACE_INCREMENTS, conflicts);
}

/*
 * The sharpest form of the race: every client holds the same tag and sends
 * its conditional PUT at the same moment (a barrier releases them). The
 * check and the write are one step, so exactly one write wins each round and
 * all the others get 412; a server that checked and then wrote separately
 * would let two through whenever their checks fell between the other's check
 * and write.
 */
#define BURST_CLIENTS 8
#define BURST_ROUNDS  200

struct burst {
    int mixed;                                /* odd clients send DELETE instead of PUT */
    pthread_barrier_t go, done;
    struct tag tag;                           /* the round's tag, set by the main thread */
    long status[BURST_CLIENTS][BURST_ROUNDS]; /* each client's answer, 0 when none came */
};

struct burst_client {
    pthread_t thread;
    int id;
    struct burst *burst;
};

static void *burst_client_run(void *arg)
{
    struct burst_client *c = arg;
    struct burst *b = c->burst;
    CURL *easy = http_easy_new();
    char header[96], body[64];
    const char *headers[] = {header, json_ct[0], NULL};

    /* A first request opens the keep-alive connection, so that every round starts on a warm one. */
    struct http_req warm = {.path = "/health"};
    struct http_res res;
    http_do(easy, PORT, &warm, &res);
    http_res_free(&res);
    for (int round = 0; round < BURST_ROUNDS; round++) {
        pthread_barrier_wait(&b->go);
        snprintf(header, sizeof(header), "If-Match: %s", b->tag.s);
        snprintf(body, sizeof(body), "{\"value\":\"client %d, round %d\"}", c->id, round);
        int deletes = b->mixed && c->id % 2 == 1;
        struct http_req put = {.method = "PUT", .path = "/cache/burst", .body = body, .headers = headers};
        struct http_req del = {.method = "DELETE", .path = "/cache/burst", .headers = headers};
        b->status[c->id][round] = http_do(easy, PORT, deletes ? &del : &put, &res) == 0 ? res.status : 0;
        http_res_free(&res);
        pthread_barrier_wait(&b->done);
    }
    curl_easy_cleanup(easy);
    return NULL;
}

/* Runs the burst rounds: PUTs only, or PUTs and DELETEs (mixed); asserts one winner a round and 412 for the rest. */
static void run_burst(int mixed)
{
    struct burst *b = calloc(1, sizeof(*b));
    struct burst_client clients[BURST_CLIENTS];
    struct http_res res;
    assert_non_null(b);
    b->mixed = mixed;

    request("PUT", "/cache/burst", "{\"value\":\"start\"}", NULL, &res);
    expect_json(&res, 0);
    http_res_free(&res);
    pthread_barrier_init(&b->go, NULL, BURST_CLIENTS + 1);
    pthread_barrier_init(&b->done, NULL, BURST_CLIENTS + 1);
    for (int i = 0; i < BURST_CLIENTS; i++) {
        clients[i] = (struct burst_client){.id = i, .burst = b};
        assert_int_equal(pthread_create(&clients[i].thread, NULL, burst_client_run, &clients[i]), 0);
    }

    /* The rounds run to the end even when one goes wrong, so that no client is left at a barrier. */
    char failure[256] = "";
    for (int round = 0; round < BURST_ROUNDS; round++) {
        if (mixed) { /* the last round may have deleted it */
            request("PUT", "/cache/burst", "{\"value\":\"start\"}", NULL, &res);
            http_res_free(&res);
        }
        char *before = get_entry("/cache/burst", &b->tag);
        free(before);
        pthread_barrier_wait(&b->go);
        pthread_barrier_wait(&b->done);

        int winner = -1, wins = 0;
        for (int i = 0; i < BURST_CLIENTS; i++) {
            long st = b->status[i][round];
            if (st == 200) {
                winner = i;
                wins++;
            } else if (st != 412 && failure[0] == '\0') {
                snprintf(failure, sizeof(failure), "round %d, client %d: status %ld", round, i, st);
            }
        }
        if (wins != 1 && failure[0] == '\0')
            snprintf(failure, sizeof(failure), "round %d: %d of %d writes with the same If-Match tag succeeded", round,
                     wins, BURST_CLIENTS);
        if (wins == 1 && failure[0] == '\0' && mixed && winner % 2 == 1) {
            request("GET", "/cache/burst", NULL, NULL, &res);
            if (res.status != 404)
                snprintf(failure, sizeof(failure), "round %d: the DELETE of client %d won but GET answers %ld %s",
                         round, winner, res.status, res.body);
            http_res_free(&res);
        } else if (wins == 1 && failure[0] == '\0') {
            struct tag now;
            char *after = get_entry("/cache/burst", &now), want[96];
            snprintf(want, sizeof(want), "{\"key\":\"burst\",\"value\":\"client %d, round %d\"}", winner, round);
            if (strcmp(after, want) != 0)
                snprintf(failure, sizeof(failure), "round %d: the winner was client %d but the entry reads %s", round,
                         winner, after);
            free(after);
        }
    }
    for (int i = 0; i < BURST_CLIENTS; i++)
        pthread_join(clients[i].thread, NULL);
    pthread_barrier_destroy(&b->go);
    pthread_barrier_destroy(&b->done);
    free(b);
    if (failure[0] != '\0')
        fail_msg("%s", failure);
}

static void simultaneous_writes_with_the_same_if_match_tag_let_exactly_one_through(void **state)
{
    (void)state;
    run_burst(0);
}

/*
 * PUTs and DELETEs holding the same tag: a DELETE is pinned to the version
 * it checked, so once any one of them has won, every other gets 412 (not a
 * 404 from a DELETE that checked before the winning one and deleted after,
 * nor a deletion of the winning PUT's entry).
 */
static void simultaneous_puts_and_deletes_with_the_same_if_match_tag_let_exactly_one_through(void **state)
{
    (void)state;
    run_burst(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_response_carrying_an_entry_has_a_strong_etag_that_changes_on_every_write),
        cmocka_unit_test(if_none_match_on_get_and_head_is_304_when_it_matches),
        cmocka_unit_test(if_match_on_get_and_head_is_412_unless_it_matches),
        cmocka_unit_test(each_representation_has_its_own_tag),
        cmocka_unit_test(if_match_on_put_is_412_unless_it_matches),
        cmocka_unit_test(if_match_on_delete_is_412_unless_it_matches),
        cmocka_unit_test(if_match_on_incr_is_412_unless_it_matches),
        cmocka_unit_test(if_match_star_on_an_absent_key_is_412_and_creates_nothing),
        cmocka_unit_test(if_none_match_star_on_put_creates_only),
        cmocka_unit_test(cache_control_follows_the_entrys_ttl),
        cmocka_unit_test(read_modify_write_with_if_match_loses_no_update),
        cmocka_unit_test(simultaneous_writes_with_the_same_if_match_tag_let_exactly_one_through),
        cmocka_unit_test(simultaneous_puts_and_deletes_with_the_same_if_match_tag_let_exactly_one_through),
    };
    group_server_args = server_flags;
    return support_exit_code(cmocka_run_group_tests(tests, group_server_setup, group_server_teardown));
}
