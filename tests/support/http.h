/*
 * HTTP requests to the server under test through libcurl (HTTP/1.1, h2c with
 * prior knowledge or Upgrade, chunked uploads, reused connections), and the
 * assertions every suite makes on responses: status, Content-Type
 * application/json, a body that parses, exact error messages.
 */
#ifndef CACHETTE_TESTS_SUPPORT_HTTP_H
#define CACHETTE_TESTS_SUPPORT_HTTP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>

/* ---- HTTP through libcurl ----------------------------------------------- */

struct http_req {
    const char *method;         /* NULL: GET, or POST when there is a body */
    const char *path;           /* sent as is: no dot-segment removal */
    const char *const *headers; /* NULL-terminated "Name: value" */
    const char *body;           /* NULL: no body */
    size_t body_len;            /* 0: strlen(body) */
    long http_version;          /* 0: HTTP/1.1; else a CURL_HTTP_VERSION_* */
    size_t chunk_size;          /* > 0: send the body chunked, at most this many bytes per chunk */
    long timeout_ms;            /* 0: 15000 (the connect phase, TLS included, at most 10000) */
    const char *tls_ca;         /* NULL: http://; else https:// trusting this PEM CA file */
};

struct http_res {
    CURLcode curl_code;
    long status;
    char *headers; /* the raw header block(s), NUL-terminated */
    size_t headers_len;
    char *body; /* NUL-terminated */
    size_t body_len;
    json_t *json;         /* the body parsed with JSON_DECODE_ANY | JSON_ALLOW_NUL, or NULL */
    long http_version;    /* CURL_HTTP_VERSION_1_1, CURL_HTTP_VERSION_2_0… */
    long new_connections; /* CURLINFO_NUM_CONNECTS: 0 when a connection was reused */
    void *priv;           /* request state owned by http.c */
};

/*
 * Performs req against 127.0.0.1:port on easy (a handle to reuse, so that
 * libcurl keeps the connection alive), or on a fresh handle when easy is
 * NULL. Returns 0 when a response arrived, else -1 with res->curl_code set.
 * res must be freed with http_res_free.
 */
int http_do(CURL *easy, unsigned port, const struct http_req *req, struct http_res *res);

/* Sets up an easy handle the way http_do does (timeouts, no proxy, loopback only). */
CURL *http_easy_new(void);

/* Prepares easy for req and adds it to multi, waiting to multiplex onto an existing connection. */
void http_multi_add(CURLM *multi, unsigned port, CURL *easy, const struct http_req *req, struct http_res *res);

/* Runs multi's n handles (added by http_multi_add) to completion, timeout_ms at most; returns how many finished. */
int http_multi_run(CURLM *multi, int n, int64_t timeout_ms);

/*
 * Opens multi's one connection to port as HTTP/2: multi multiplexes every
 * stream onto a single connection, and a GET /health on `opener` upgrades
 * it (h2c). Streams added afterwards wait for it (PIPEWAIT) and share it.
 * (Prior knowledge would do, but libcurl 7.88 cannot multiplex onto a
 * prior-knowledge connection: curl issue #10634.) Asserts that one new
 * connection answered 200 with JSON over HTTP/2; frees the response and leaves
 * `opener` out of multi.
 */
void http_multi_open_h2(CURLM *multi, unsigned port, CURL *opener, int64_t timeout_ms);

void http_res_free(struct http_res *res);

/*
 * The value of the response header name (case-insensitive; the last block
 * when there were several, as after 100 Continue), copied into buf; NULL if
 * absent.
 */
const char *http_header(const struct http_res *res, const char *name, char *buf, size_t size);

/*
 * Asserting shorthands: one request on a fresh connection that must get a
 * response. body is sent with Content-Type: application/json when not NULL.
 */
void http_call(unsigned port, const char *method, const char *path, const char *body, struct http_res *res);

/* ---- assertions on responses -------------------------------------------- */

/*
 * Asserts the status (any when status is 0), Content-Type: application/json,
 * and a body that is a JSON object; returns res->json (owned by res).
 */
json_t *expect_json(const struct http_res *res, long status);

/* Asserts status and that the body is exactly {"error": message}. */
void expect_error(const struct http_res *res, long status, const char *message);

/* Asserts status and that the body is exactly {"message": text}. */
void expect_message(const struct http_res *res, long status, const char *text);

/* Asserts the body is exactly {"error": <string starting with prefix>}. */
void expect_error_prefix(const struct http_res *res, long status, const char *prefix);

/* GET /stats on a fresh connection; returns the object (caller decrefs). */
json_t *get_stats(unsigned port);

/* The integer member name of obj; fails the test if absent or not an integer. */
json_int_t json_int_member(const json_t *obj, const char *name);

/* Parses JSON text with the suites' flags (NUL allowed, any value); fails the test on error. */
json_t *json_parse(const char *text, size_t len);

#endif
