/*
 * The history recorder (see recorder.h).
 *
 * Each client thread appends its operations to a buffer of its own, one
 * line each, and the buffers are written out when every client has stopped:
 * the checker sorts by invocation time, so the file's order is irrelevant,
 * and no lock is shared between clients but the server's. Times are
 * CLOCK_MONOTONIC nanoseconds since the run began, taken just before a
 * request is handed to libcurl and just after its answer is complete, so an
 * operation's interval always contains the moment the server ran it.
 *
 * What a response says is read strictly: a status the API does not give for
 * that request, or a body that does not parse, makes the operation unknown
 * rather than guessed at. A value is the text before its first ':' (the
 * padding after it only takes memory).
 */
#include "recorder.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../support/http.h"
#include "../support/netfuzz.h"
#include "../support/resp.h"
#include "../support/server.h"

#define VERSION_HEX 16

struct client {
    const struct recorder_config *cfg;
    unsigned id;
    struct rng rng;
    CURL *easy;
    struct resp_client resp; /* a Redis-protocol client's connection (fd -1 for an HTTP client) */
    struct timespec epoch;
    struct buf lines;
    uint64_t writes;               /* values written so far: "c<id>-<writes>" */
    char (*seen)[VERSION_HEX + 1]; /* per key: the last version this client saw, "" for none */
    struct recorder_counts counts;
    int unsent;    /* the last request reached no server, or one that ran nothing */
    int connected; /* the last request was answered: its connection may be reused */
    int started;   /* 0 when the thread could not be created */
    pthread_t thread;
};

/* One request's outcome, read from the response. */
struct answer {
    int known; /* 0: no answer, or not one the API gives for the request */
    long status;
    char version[VERSION_HEX + 1]; /* from ETag, "" when absent */
    json_t *json;                  /* the body, when JSON (owned by the http_res) */
};

static int64_t elapsed_ns(const struct client *c)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - c->epoch.tv_sec) * 1000000000 + (now.tv_nsec - c->epoch.tv_nsec);
}

static unsigned key_count(const struct recorder_config *cfg)
{
    return cfg->plain_keys + cfg->counter_keys;
}

/* Key index i: plain keys first, then counters. */
static void key_name(const struct recorder_config *cfg, unsigned i, char out[16])
{
    if (i < cfg->plain_keys)
        snprintf(out, 16, "p%u", i);
    else
        snprintf(out, 16, "n%u", i - cfg->plain_keys);
}

static unsigned key_index(const struct recorder_config *cfg, const char *name)
{
    unsigned n = (unsigned)strtoul(name + 1, NULL, 10);
    return name[0] == 'p' ? n : cfg->plain_keys + n;
}

/* The version in an ETag header ("0006b0849e800001"), or "" if there is none of that form. */
static void etag_version(const struct http_res *res, char out[VERSION_HEX + 1])
{
    char tag[64];
    out[0] = '\0';
    if (http_header(res, "ETag", tag, sizeof(tag)) != NULL && strlen(tag) == VERSION_HEX + 2 && tag[0] == '"') {
        memcpy(out, tag + 1, VERSION_HEX);
        out[VERSION_HEX] = '\0';
    }
}

/* A value as the history names it: a string up to its first ':', an integer in decimal; 0 for anything else. */
static int value_token(const json_t *v, char *out, size_t size)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = strcspn(s, ":");
        if (n == 0 || n >= size || strpbrk(s, " \t\n") != NULL)
            return 0;
        memcpy(out, s, n);
        out[n] = '\0';
        return 1;
    }
    if (json_is_integer(v)) {
        snprintf(out, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return 1;
    }
    return 0;
}

/*
 * Sends one request; the answer is known when a response came with one of
 * the statuses in ok (0-terminated). res must be freed by the caller.
 */
static void send_request(struct client *c, const struct http_req *req, const long *ok, struct http_res *res,
                         struct answer *a)
{
    struct http_req r = *req;
    /* h2c by Upgrade on the connection's first request: libcurl 7.88 fails prior-knowledge requests on a reused handle.
     */
    r.http_version = c->cfg->http2 ? CURL_HTTP_VERSION_2 : CURL_HTTP_VERSION_1_1;
    r.timeout_ms = rng_chance(&c->rng, c->cfg->lossy_percent) ? 1 + (long)rng_pick(&c->rng, 4) : c->cfg->timeout_ms;
    memset(a, 0, sizeof(*a));
    c->unsent = 0;
    /*
     * A refused connection (a server being restarted) sent nothing, and a 503
     * (loading the data directory after a restart) ran nothing: no operation
     * to record. But a refusal after the request went out on a kept-alive
     * connection is not that: libcurl sends a request again on a new
     * connection when the old one turns out dead, and the first may have
     * been run. So a refusal counts as nothing sent only when no connection
     * was open before the request.
     */
    int answered = http_do(c->easy, c->cfg->port, &r, res) == 0;
    c->unsent = answered ? res->status == 503 : res->curl_code == CURLE_COULDNT_CONNECT && !c->connected;
    c->connected = answered;
    if (c->unsent)
        sleep_ms(2);
    if (!answered || c->unsent)
        return;
    a->status = res->status;
    for (const long *s = ok; *s != 0; s++)
        if (*s == res->status)
            a->known = 1;
    etag_version(res, a->version);
    a->json = res->json;
}

static void record(struct client *c, int64_t invoked, int64_t completed, const char *key, const char *op,
                   const char *result)
{
    if (c->unsent)
        return;
    if (completed < 0) {
        buf_fmt(&c->lines, "%u %" PRId64 " - %s %s : ?\n", c->id, invoked, key, op);
        c->counts.unknown++;
    } else {
        buf_fmt(&c->lines, "%u %" PRId64 " %" PRId64 " %s %s : %s\n", c->id, invoked, completed, key, op, result);
    }
    c->counts.ops++;
}

static void remember(struct client *c, const char *key, const char *version)
{
    if (version[0] != '\0')
        snprintf(c->seen[key_index(c->cfg, key)], VERSION_HEX + 1, "%s", version);
}

/* A version to name in If-Match: usually the last one this client saw of key, sometimes a made-up one. */
static const char *version_to_match(struct client *c, const char *key)
{
    const char *seen = c->seen[key_index(c->cfg, key)];
    return seen[0] != '\0' && !rng_chance(&c->rng, 10) ? seen : "00000000000000ff";
}

static void new_value(struct client *c, char token[32], struct buf *json_value)
{
    snprintf(token, 32, "c%u-%" PRIu64, c->id, ++c->writes);
    buf_fmt(json_value, "\"%s", token);
    if (c->cfg->value_padding > 0) {
        buf_byte(json_value, ':');
        buf_repeat(json_value, "x", c->cfg->value_padding);
    }
    buf_byte(json_value, '"');
}

static void write_path(const struct client *c, struct buf *path, const char *base)
{
    buf_str(path, base);
    if (c->cfg->ttl != NULL)
        buf_fmt(path, "?ttl=%s", c->cfg->ttl);
}

/* No "Expect: 100-continue" (libcurl's default for bodies over 1 KiB): it would wait for the go-ahead. */
static const char *const json_content[] = {"Content-Type: application/json", "Expect:", NULL};

static void op_get(struct client *c, const char *key)
{
    char path[32], value[48], result[96];
    static const long ok[] = {200, 404, 0};
    struct http_res res;
    struct answer a;
    snprintf(path, sizeof(path), "/cache/%s", key);
    struct http_req req = {.method = "GET", .path = path};
    int64_t t0 = elapsed_ns(c);
    send_request(c, &req, ok, &res, &a);
    int64_t t1 = elapsed_ns(c);
    if (a.known && a.status == 404) {
        record(c, t0, t1, key, "get", "miss");
        c->counts.failed++;
    } else if (a.known && a.version[0] != '\0' && value_token(json_object_get(a.json, "value"), value, sizeof(value))) {
        snprintf(result, sizeof(result), "hit %s %s", value, a.version);
        record(c, t0, t1, key, "get", result);
        remember(c, key, a.version);
    } else {
        record(c, t0, -1, key, "get", NULL);
    }
    http_res_free(&res);
}

/* PUT, plain or with If-Match (cas) or If-None-Match: * (create). */
static void op_put(struct client *c, const char *key, const char *kind)
{
    char token[32], op[96], header[64], result[64];
    static const long ok[] = {200, 201, 412, 0};
    struct buf path = {0}, body = {0};
    struct http_res res;
    struct answer a;
    const char *headers[4] = {json_content[0], json_content[1], NULL, NULL};
    buf_fmt(&path, "/cache/%s", key);
    write_path(c, &path, "");
    buf_str(&body, "{\"value\":");
    new_value(c, token, &body);
    buf_byte(&body, '}');
    if (strcmp(kind, "cas") == 0) {
        const char *v = version_to_match(c, key);
        snprintf(header, sizeof(header), "If-Match: \"%s\"", v);
        snprintf(op, sizeof(op), "cas %s %s", token, v);
        headers[2] = header;
    } else if (strcmp(kind, "create") == 0) {
        snprintf(op, sizeof(op), "create %s", token);
        headers[2] = "If-None-Match: *";
    } else {
        snprintf(op, sizeof(op), "set %s", token);
    }
    struct http_req req = {.method = "PUT", .path = path.p, .headers = headers, .body = body.p};
    int64_t t0 = elapsed_ns(c);
    send_request(c, &req, ok, &res, &a);
    int64_t t1 = elapsed_ns(c);
    if (a.known && a.status == 412 && strcmp(kind, "set") != 0) {
        record(c, t0, t1, key, op, "fail");
        c->counts.failed++;
    } else if (a.known && a.status != 412 && a.version[0] != '\0') {
        snprintf(result, sizeof(result), "ok %s", a.version);
        record(c, t0, t1, key, op, result);
        remember(c, key, a.version);
    } else {
        record(c, t0, -1, key, op, NULL);
    }
    http_res_free(&res);
    free(path.p);
    free(body.p);
}

/* The seed's POST /cache: no ETag in its answer, so the version it made is unknown. */
static void op_post(struct client *c, const char *key)
{
    char token[32], op[64];
    static const long ok[] = {200, 0};
    struct buf path = {0}, body = {0};
    struct http_res res;
    struct answer a;
    write_path(c, &path, "/cache");
    buf_fmt(&body, "{\"key\":\"%s\",\"value\":", key);
    new_value(c, token, &body);
    buf_byte(&body, '}');
    snprintf(op, sizeof(op), "set %s", token);
    struct http_req req = {.method = "POST", .path = path.p, .headers = json_content, .body = body.p};
    int64_t t0 = elapsed_ns(c);
    send_request(c, &req, ok, &res, &a);
    record(c, t0, a.known ? elapsed_ns(c) : -1, key, op, "ok -");
    http_res_free(&res);
    free(path.p);
    free(body.p);
}

static void op_delete(struct client *c, const char *key, int conditional)
{
    char path[32], op[64], header[64];
    static const long ok[] = {200, 404, 412, 0};
    const char *headers[2] = {header, NULL};
    struct http_res res;
    struct answer a;
    snprintf(path, sizeof(path), "/cache/%s", key);
    if (conditional) {
        const char *v = version_to_match(c, key);
        snprintf(header, sizeof(header), "If-Match: \"%s\"", v);
        snprintf(op, sizeof(op), "delif %s", v);
    } else {
        snprintf(op, sizeof(op), "del");
    }
    struct http_req req = {.method = "DELETE", .path = path, .headers = conditional ? headers : NULL};
    int64_t t0 = elapsed_ns(c);
    send_request(c, &req, ok, &res, &a);
    int64_t t1 = elapsed_ns(c);
    /* A conditional delete of a missing key is 412 (If-Match on nothing), a plain one 404. */
    int expected_refusal = conditional ? a.status == 412 : a.status == 404;
    if (a.known && a.status == 200)
        record(c, t0, t1, key, op, "ok");
    else if (a.known && expected_refusal)
        record(c, t0, t1, key, op, conditional ? "fail" : "miss");
    else
        record(c, t0, -1, key, op, NULL);
    c->counts.failed += a.known && expected_refusal;
    http_res_free(&res);
}

static void op_incr(struct client *c, const char *key)
{
    char body[48], op[32], result[96];
    static const long ok[] = {200, 409, 0};
    struct buf path = {0};
    struct http_res res;
    struct answer a;
    int by = (int)rng_pick(&c->rng, 9) - 3;
    buf_fmt(&path, "/cache/%s/incr", key);
    write_path(c, &path, "");
    snprintf(body, sizeof(body), "{\"by\":%d}", by);
    snprintf(op, sizeof(op), "incr %d", by);
    struct http_req req = {.method = "POST", .path = path.p, .headers = json_content, .body = body};
    int64_t t0 = elapsed_ns(c);
    send_request(c, &req, ok, &res, &a);
    int64_t t1 = elapsed_ns(c);
    json_t *v = json_object_get(a.json, "value");
    if (a.known && a.status == 409) {
        record(c, t0, t1, key, op, "notint");
        c->counts.failed++;
    } else if (a.known && json_is_integer(v) && a.version[0] != '\0') {
        snprintf(result, sizeof(result), "ok %" JSON_INTEGER_FORMAT " %s", json_integer_value(v), a.version);
        record(c, t0, t1, key, op, result);
        remember(c, key, a.version);
    } else {
        record(c, t0, -1, key, op, NULL);
    }
    http_res_free(&res);
}

/* Two distinct plain keys, for a batch. */
static void two_plain_keys(struct client *c, char a[16], char b[16])
{
    unsigned i = (unsigned)rng_pick(&c->rng, c->cfg->plain_keys);
    unsigned j = (i + 1 + (unsigned)rng_pick(&c->rng, c->cfg->plain_keys - 1)) % c->cfg->plain_keys;
    key_name(c->cfg, i, a);
    key_name(c->cfg, j, b);
}

/* _mset of two keys: the items are written one by one, so each is an operation of its own, in the same interval. */
static void op_mset(struct client *c)
{
    char keys[2][16], tokens[2][32], op[80];
    static const long ok[] = {200, 0};
    struct buf path = {0}, body = {0};
    struct http_res res;
    struct answer a;
    two_plain_keys(c, keys[0], keys[1]);
    write_path(c, &path, "/cache/_mset");
    buf_str(&body, "{\"entries\":[");
    for (int i = 0; i < 2; i++) {
        buf_fmt(&body, "%s{\"key\":\"%s\",\"value\":", i ? "," : "", keys[i]);
        new_value(c, tokens[i], &body);
        buf_byte(&body, '}');
    }
    buf_str(&body, "]}");
    struct http_req req = {.method = "POST", .path = path.p, .headers = json_content, .body = body.p};
    int64_t t0 = elapsed_ns(c);
    send_request(c, &req, ok, &res, &a);
    int64_t t1 = a.known && json_integer_value(json_object_get(a.json, "stored")) == 2 ? elapsed_ns(c) : -1;
    for (int i = 0; i < 2; i++) {
        snprintf(op, sizeof(op), "set %s", tokens[i]);
        record(c, t0, t1, keys[i], op, "ok -");
    }
    http_res_free(&res);
    free(path.p);
    free(body.p);
}

/* _mget of two keys: one read per key (the batch is not one atomic read), without versions. */
static void op_mget(struct client *c)
{
    char keys[2][16], body[64], value[48], result[80];
    static const long ok[] = {200, 0};
    struct http_res res;
    struct answer a;
    two_plain_keys(c, keys[0], keys[1]);
    snprintf(body, sizeof(body), "{\"keys\":[\"%s\",\"%s\"]}", keys[0], keys[1]);
    struct http_req req = {.method = "POST", .path = "/cache/_mget", .headers = json_content, .body = body};
    int64_t t0 = elapsed_ns(c);
    send_request(c, &req, ok, &res, &a);
    int64_t t1 = elapsed_ns(c);
    json_t *entries = json_object_get(a.json, "entries"), *missing = json_object_get(a.json, "missing");
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(entries, keys[i]);
        int is_missing = 0;
        for (size_t m = 0; m < json_array_size(missing); m++)
            is_missing |= strcmp(json_string_value(json_array_get(missing, m)), keys[i]) == 0;
        if (a.known && v != NULL && value_token(v, value, sizeof(value))) {
            snprintf(result, sizeof(result), "hit %s -", value);
            record(c, t0, t1, keys[i], "get", result);
        } else if (a.known && v == NULL && is_missing) {
            record(c, t0, t1, keys[i], "get", "miss");
        } else {
            record(c, t0, -1, keys[i], "get", NULL);
        }
    }
    http_res_free(&res);
}

/* ---- the Redis protocol ----------------------------------------------------- */

/*
 * One command and its reply; returns the reply (malloc'ed) or NULL when none
 * came. Times are taken around the write and the read.
 */
static char *resp_op(struct client *c, const char *const *argv, size_t argc, int64_t *t0, int64_t *t1)
{
    *t0 = elapsed_ns(c);
    resp_send_argv(&c->resp, argc, argv, NULL);
    char *reply = resp_read(&c->resp, (int)c->cfg->timeout_ms, NULL);
    *t1 = elapsed_ns(c);
    return reply;
}

/* A bulk reply's value as the history names it: RESP GET gives an HTTP JSON string with its quotes. */
static int resp_value_token(const char *reply, char *out, size_t size)
{
    const char *p = strstr(reply, "\r\n");
    if (reply[0] != '$' || p == NULL)
        return 0;
    p += 2 + (p[2] == '"');
    size_t n = strcspn(p, ":\"\r");
    if (n == 0 || n >= size)
        return 0;
    memcpy(out, p, n);
    out[n] = '\0';
    return 1;
}

static void resp_operation(struct client *c, const char *key, int counter)
{
    char token[32], op[64], result[96], by[16];
    int64_t t0, t1;
    unsigned dice = (unsigned)rng_pick(&c->rng, 100);
    const char *get[] = {"GET", key}, *del[] = {"DEL", key};
    char *reply;
    if (dice < 35) {
        reply = resp_op(c, get, 2, &t0, &t1);
        if (reply != NULL && strcmp(reply, "$-1\r\n") == 0) {
            record(c, t0, t1, key, "get", "miss");
        } else if (reply != NULL && resp_value_token(reply, token, sizeof(token))) {
            snprintf(result, sizeof(result), "hit %s -", token);
            record(c, t0, t1, key, "get", result);
        } else {
            record(c, t0, -1, key, "get", NULL);
        }
    } else if (dice < 55) {
        reply = resp_op(c, del, 2, &t0, &t1);
        int ok = reply != NULL && (strcmp(reply, ":1\r\n") == 0 || strcmp(reply, ":0\r\n") == 0);
        record(c, t0, ok ? t1 : -1, key, "del", ok && reply[1] == '1' ? "ok" : "miss");
    } else if (counter) {
        snprintf(by, sizeof(by), "%d", (int)rng_pick(&c->rng, 9) - 3);
        const char *incr[] = {"INCRBY", key, by};
        reply = resp_op(c, incr, 3, &t0, &t1);
        snprintf(op, sizeof(op), "incr %s", by);
        if (reply != NULL && reply[0] == ':') {
            snprintf(result, sizeof(result), "ok %.*s -", (int)strcspn(reply + 1, "\r"), reply + 1);
            record(c, t0, t1, key, op, result);
        } else if (reply != NULL && strstr(reply, "not an integer") != NULL) {
            record(c, t0, t1, key, op, "notint");
        } else {
            record(c, t0, -1, key, op, NULL);
        }
    } else {
        snprintf(token, sizeof(token), "c%u-%" PRIu64, c->id, ++c->writes);
        const char *set[] = {"SET", key, token};
        reply = resp_op(c, set, 3, &t0, &t1);
        snprintf(op, sizeof(op), "set %s", token);
        record(c, t0, reply != NULL && strcmp(reply, "+OK\r\n") == 0 ? t1 : -1, key, op, "ok -");
    }
    free(reply);
}

static void one_operation(struct client *c)
{
    char key[16];
    const struct recorder_config *cfg = c->cfg;
    unsigned k = (unsigned)rng_pick(&c->rng, key_count(cfg));
    key_name(cfg, k, key);
    if (c->resp.fd >= 0) {
        resp_operation(c, key, k >= cfg->plain_keys);
        return;
    }
    if (cfg->read_then_write && k < cfg->plain_keys) {
        /* The tightest race there is for a conditional write: the version it names is a moment old. */
        op_get(c, key);
        if (rng_chance(&c->rng, 50))
            op_put(c, key, "cas");
        else
            op_delete(c, key, 1);
        return;
    }
    unsigned dice = (unsigned)rng_pick(&c->rng, 100);
    if (k >= cfg->plain_keys) {
        if (dice < 30)
            op_get(c, key);
        else if (dice < 80)
            op_incr(c, key);
        else
            op_delete(c, key, dice < 90);
    } else if (dice < 25) {
        op_get(c, key);
    } else if (dice < 40) {
        op_put(c, key, "set");
    } else if (dice < 45) {
        op_post(c, key);
    } else if (dice < 60) {
        op_put(c, key, "cas");
    } else if (dice < 68) {
        op_put(c, key, "create");
    } else if (dice < 75) {
        op_delete(c, key, 0);
    } else if (dice < 84) {
        op_delete(c, key, 1);
    } else if (dice < 90 && cfg->plain_keys > 1) {
        op_mset(c);
    } else if (cfg->plain_keys > 1) {
        op_mget(c);
    } else {
        op_get(c, key);
    }
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    int64_t end = c->cfg->duration_ms * 1000000;
    while (elapsed_ns(c) < end)
        one_operation(c);
    return NULL;
}

int recorder_run(const struct recorder_config *cfg, int loss_allowed, FILE *out, struct recorder_counts *counts)
{
    struct client *clients = calloc(cfg->clients, sizeof(*clients));
    struct timespec epoch;
    int rc = 0;
    if (clients == NULL)
        abort();
    clock_gettime(CLOCK_MONOTONIC, &epoch);
    memset(counts, 0, sizeof(*counts));
    for (unsigned i = 0; i < cfg->clients; i++) {
        struct client *c = &clients[i];
        *c = (struct client){.cfg = cfg, .id = i, .rng = netfuzz_case_rng(cfg->seed, i), .epoch = epoch};
        c->easy = http_easy_new();
        c->resp.fd = -1;
        if (i >= cfg->clients - cfg->resp_clients)
            resp_client_open(&c->resp, cfg->resp_port);
        c->seen = calloc(key_count(cfg), sizeof(*c->seen));
        if (c->seen == NULL)
            abort();
        c->started = pthread_create(&c->thread, NULL, client_main, c) == 0;
        if (!c->started)
            rc = -1;
    }
    fprintf(out, "# %u clients (%u on the Redis protocol), %u plain and %u counter keys, %s, seed %" PRIu64 "\n",
            cfg->clients, cfg->resp_clients, cfg->plain_keys, cfg->counter_keys, cfg->http2 ? "HTTP/2" : "HTTP/1.1",
            cfg->seed);
    if (loss_allowed)
        fprintf(out, "# allow-loss\n");
    for (unsigned i = 0; i < cfg->clients; i++) {
        struct client *c = &clients[i];
        if (c->started)
            pthread_join(c->thread, NULL);
        if (c->lines.len > 0)
            fwrite(c->lines.p, 1, c->lines.len, out);
        counts->ops += c->counts.ops;
        counts->unknown += c->counts.unknown;
        counts->failed += c->counts.failed;
        curl_easy_cleanup(c->easy);
        if (c->resp.fd >= 0)
            resp_client_close(&c->resp);
        free(c->lines.p);
        free(c->seen);
    }
    free(clients);
    return rc;
}
