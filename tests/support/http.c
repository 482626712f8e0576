/*
 * HTTP through libcurl (see http.h).
 *
 * Each request gets its header list and upload state in a small struct that
 * lives in res->priv until http_finish, so the same code serves a single
 * curl_easy_perform and a curl_multi with many handles in flight. Handles
 * never use a proxy (a developer's http_proxy must not reroute loopback
 * tests), never install signal handlers, and always carry a total timeout,
 * so no request can hang a suite. Paths are sent as written
 * (CURLOPT_PATH_AS_IS): the suites test how the server itself treats
 * "/cache/x/../k" and percent-escapes.
 */
#include "http.h"
#include "contract.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct request_state {
    struct curl_slist *headers;
    char *method, *path, *accept; /* for the response log (contract.h) */
    const char *body;
    size_t body_len, sent, chunk_size;
};

static int curl_ready;

/* Frees a request's state but its header list, which a handle still in flight may point at. */
static void request_state_free(struct request_state *st)
{
    if (st == NULL)
        return;
    free(st->method);
    free(st->path);
    free(st->accept);
    free(st);
}

static void global_cleanup(void)
{
    curl_global_cleanup();
}

static void global_init(void)
{
    if (!curl_ready) {
        curl_ready = 1;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        atexit(global_cleanup);
    }
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
    char *grown = realloc(*buf, *len + n + 1);
    if (grown == NULL)
        abort();
    memcpy(grown + *len, data, n);
    *len += n;
    grown[*len] = '\0';
    *buf = grown;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct http_res *res = userdata;
    append(&res->body, &res->body_len, data, size * nmemb);
    return size * nmemb;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct http_res *res = userdata;
    size_t n = size * nmemb;
    /* A new status line starts a new block (after 100 Continue or 101): keep only the last. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
        res->headers_len = 0;
    append(&res->headers, &res->headers_len, data, n);
    return n;
}

static size_t on_read(char *buffer, size_t size, size_t nitems, void *userdata)
{
    struct request_state *st = userdata;
    size_t n = size * nitems, left = st->body_len - st->sent;
    if (n > st->chunk_size)
        n = st->chunk_size;
    if (n > left)
        n = left;
    memcpy(buffer, st->body + st->sent, n);
    st->sent += n;
    return n;
}

CURL *http_easy_new(void)
{
    global_init();
    CURL *easy = curl_easy_init();
    if (easy == NULL)
        abort();
    return easy;
}

/*
 * Builds the handle for req (callbacks write into res) without performing
 * it; after the transfer, http_finish.
 */
static void http_prepare(CURL *easy, unsigned port, const struct http_req *req, struct http_res *res)
{
    char url[4096];
    struct request_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        abort();
    memset(res, 0, sizeof(*res));
    res->priv = st;

    /* Options that a reused handle may carry from its last request are reset here. */
    curl_easy_reset(easy);
    snprintf(url, sizeof(url), "%s://127.0.0.1:%u%s", req->tls_ca ? "https" : "http", port, req->path);
    curl_easy_setopt(easy, CURLOPT_URL, url);
    if (req->tls_ca != NULL)
        curl_easy_setopt(easy, CURLOPT_CAINFO, req->tls_ca);
    curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    /* The connect phase takes in a TLS handshake, which a valgrind'd server on a loaded machine takes seconds over. */
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 15000L);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, req->http_version ? req->http_version : (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, res);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, res);
    if (getenv("CACHETTE_TEST_VERBOSE") != NULL)
        curl_easy_setopt(easy, CURLOPT_VERBOSE, 1L);

    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        st->headers = curl_slist_append(st->headers, req->headers[i]);
        if (strncasecmp(req->headers[i], "Accept:", 7) == 0) {
            free(st->accept);
            st->accept = strdup(req->headers[i] + 7 + strspn(req->headers[i] + 7, " "));
        }
    }
    if (st->headers != NULL)
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, st->headers);

    const char *method = req->method;
    if (req->body != NULL) {
        st->body = req->body;
        st->body_len = req->body_len ? req->body_len : strlen(req->body);
        if (req->chunk_size > 0) {
            /* An upload of unknown size: HTTP/1.1 sends it chunked, HTTP/2 as DATA frames. */
            st->chunk_size = req->chunk_size;
            curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(easy, CURLOPT_READDATA, st);
        } else {
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, st->body);
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st->body_len);
        }
        if (method == NULL)
            method = "POST";
    }
    st->method = strdup(method != NULL ? method : "GET");
    st->path = strdup(req->path);
    if (method != NULL && strcmp(method, "HEAD") == 0)
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    else if (method != NULL && (strcmp(method, "GET") != 0 || req->body != NULL))
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
}

static void http_finish(CURL *easy, CURLcode code, struct http_res *res)
{
    struct request_state *st = res->priv;
    json_error_t err;

    res->curl_code = code;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &res->status);
    curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &res->http_version);
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &res->new_connections);
    if (res->body == NULL)
        append(&res->body, &res->body_len, "", 0);
    if (res->headers == NULL)
        append(&res->headers, &res->headers_len, "", 0);
    if (res->body_len > 0)
        res->json = json_loadb(res->body, res->body_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (st != NULL) {
        if (code == CURLE_OK)
            contract_record(st->method, st->path, st->accept, res->status, res->headers, res->headers_len, res->body,
                            res->body_len);
        /* Detach the list from the handle before freeing it: the handle may be reused or inspected. */
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(st->headers);
        st->headers = NULL;
        request_state_free(st);
        res->priv = NULL;
    }
}

int http_do(CURL *easy, unsigned port, const struct http_req *req, struct http_res *res)
{
    CURL *own = easy == NULL ? http_easy_new() : NULL;
    CURL *h = own != NULL ? own : easy;
    http_prepare(h, port, req, res);
    http_finish(h, curl_easy_perform(h), res);
    if (own != NULL)
        curl_easy_cleanup(own);
    return res->curl_code == CURLE_OK ? 0 : -1;
}

void http_res_free(struct http_res *res)
{
    free(res->headers);
    free(res->body);
    json_decref(res->json);
    request_state_free(res->priv);
    memset(res, 0, sizeof(*res));
}

const char *http_header(const struct http_res *res, const char *name, char *buf, size_t size)
{
    size_t name_len = strlen(name);
    const char *p = res->headers, *end = res->headers + res->headers_len;
    while (p != NULL && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol != NULL ? eol : end;
        if ((size_t)(line_end - p) > name_len && strncasecmp(p, name, name_len) == 0 && p[name_len] == ':') {
            const char *v = p + name_len + 1;
            while (v < line_end && (*v == ' ' || *v == '\t'))
                v++;
            const char *v_end = line_end;
            while (v_end > v && (v_end[-1] == '\r' || v_end[-1] == ' '))
                v_end--;
            size_t n = (size_t)(v_end - v) < size - 1 ? (size_t)(v_end - v) : size - 1;
            memcpy(buf, v, n);
            buf[n] = '\0';
            return buf;
        }
        p = eol != NULL ? eol + 1 : NULL;
    }
    return NULL;
}

void http_call(unsigned port, const char *method, const char *path, const char *body, struct http_res *res)
{
    static const char *const json_headers[] = {"Content-Type: application/json", NULL};
    struct http_req req = {.method = method, .path = path, .body = body, .headers = body ? json_headers : NULL};
    if (http_do(NULL, port, &req, res) != 0)
        fail_msg("%s %s: no response: %s", method ? method : "GET", path, curl_easy_strerror(res->curl_code));
}

/* ---- assertions ---------------------------------------------------------- */

json_t *expect_json(const struct http_res *res, long status)
{
    char ct[128];
    if (status != 0 && res->status != status)
        fail_msg("expected status %ld, got %ld; body: %s", status, res->status, res->body);
    if (http_header(res, "Content-Type", ct, sizeof(ct)) == NULL)
        fail_msg("status %ld: no Content-Type; body: %s", res->status, res->body);
    if (strcmp(ct, "application/json") != 0)
        fail_msg("status %ld: Content-Type is '%s', not application/json; body: %s", res->status, ct, res->body);
    if (res->json == NULL || !json_is_object(res->json))
        fail_msg("status %ld: the body is not a JSON object: '%s'", res->status, res->body);
    return res->json;
}

static void expect_single_string(const struct http_res *res, long status, const char *member, const char *text,
                                 int prefix)
{
    json_t *obj = expect_json(res, status);
    json_t *v = json_object_get(obj, member);
    if (json_object_size(obj) != 1 || !json_is_string(v))
        fail_msg("expected {\"%s\": \"%s\"}, got %s", member, text, res->body);
    const char *got = json_string_value(v);
    if (prefix ? strncmp(got, text, strlen(text)) != 0 : strcmp(got, text) != 0)
        fail_msg("expected %s \"%s\"%s, got \"%s\"", member, text, prefix ? "…" : "", got);
}

void expect_error(const struct http_res *res, long status, const char *message)
{
    expect_single_string(res, status, "error", message, 0);
}

void expect_error_prefix(const struct http_res *res, long status, const char *prefix)
{
    expect_single_string(res, status, "error", prefix, 1);
}

void expect_message(const struct http_res *res, long status, const char *text)
{
    expect_single_string(res, status, "message", text, 0);
}

json_t *get_stats(unsigned port)
{
    struct http_res res;
    http_call(port, "GET", "/stats", NULL, &res);
    json_t *stats = json_incref(expect_json(&res, 200));
    http_res_free(&res);
    return stats;
}

json_int_t json_int_member(const json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_integer(v))
        fail_msg("member \"%s\" is missing or not an integer", name);
    return json_integer_value(v);
}

json_t *json_parse(const char *text, size_t len)
{
    json_error_t err;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (v == NULL)
        fail_msg("not JSON (%s): %.*s", err.text, (int)len, text);
    return v;
}

void http_multi_add(CURLM *multi, unsigned port, CURL *easy, const struct http_req *req, struct http_res *res)
{
    http_prepare(easy, port, req, res);
    curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)res);
    curl_multi_add_handle(multi, easy);
}

int http_multi_run(CURLM *multi, int n, int64_t timeout_ms)
{
    int running = n, done = 0;
    int64_t deadline = now_ms() + timeout_ms;
    while (done < n && now_ms() < deadline) {
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct http_res *r;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            http_finish(msg->easy_handle, msg->data.result, r);
            done++;
        }
        if (done < n)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    return done;
}

void http_multi_open_h2(CURLM *multi, unsigned port, CURL *opener, int64_t timeout_ms)
{
    struct http_req req = {.path = "/health", .http_version = CURL_HTTP_VERSION_2};
    struct http_res opened;
    curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 1L);
    http_multi_add(multi, port, opener, &req, &opened);
    assert_int_equal(http_multi_run(multi, 1, timeout_ms), 1);
    curl_multi_remove_handle(multi, opener);
    assert_int_equal(opened.curl_code, CURLE_OK);
    assert_int_equal(opened.http_version, CURL_HTTP_VERSION_2_0);
    assert_int_equal(opened.new_connections, 1);
    expect_json(&opened, 200); /* the JSON belongs to opened */
    http_res_free(&opened);
}
