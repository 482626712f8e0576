/*
 * The REST API: routing on the raw request path and one handler per
 * resource. Keys are taken from the raw path (keypath.c), bodies are parsed
 * by body.c, the work is done by the command layer, and every answer goes out
 * through reply.c. Handlers run on the connection's worker thread and never
 * block: the store's locks are held only for the copy in or out.
 *
 *   /cache          POST   store {"key","value","ttl"?}           (the seed's API)
 *   /cache/{key}    GET HEAD PUT DELETE   ({key}: one segment, percent-decoded)
 *   /health         GET HEAD
 *   /stats          GET HEAD
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "http/body.h"
#include "http/internal.h"
#include "http/jsonw.h"
#include "http/keypath.h"
#include "http/reply.h"

#define CACHE_PREFIX "/cache/"

static void *pool_alloc(void *pool, size_t size)
{
    return h2o_mem_alloc_pool((h2o_mem_pool_t *)pool, size);
}

static int method_is(const h2o_req_t *req, const char *name, size_t len)
{
    return h2o_memis(req->method.base, req->method.len, name, len);
}

static int is_get_or_head(const h2o_req_t *req)
{
    return method_is(req, H2O_STRLIT("GET")) || method_is(req, H2O_STRLIT("HEAD"));
}

/* The query string without '?', or an empty one. */
static h2o_iovec_t query_of(const h2o_req_t *req)
{
    if (req->query_at == SIZE_MAX)
        return h2o_iovec_init("", 0);
    return h2o_iovec_init(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
}

/*
 * Picks the TTL from ?ttl= or the body's "ttl" (at most one may be given).
 * Returns 0, or -1 after replying 400.
 */
static int resolve_ttl(h2o_req_t *req, int64_t body_ttl_ms, int64_t *ttl_ms)
{
    h2o_iovec_t query = query_of(req);
    const char *text;
    size_t len;
    *ttl_ms = body_ttl_ms;
    if (!query_find(query.base, query.len, "ttl", &text, &len))
        return 0;
    if (body_ttl_ms != 0) {
        reply_error(req, 400, "ttl is given both in the query and in the body");
        return -1;
    }
    if (body_parse_ttl_text(text, len, ttl_ms) != 0) {
        reply_error(req, 400, "ttl must be a whole number of seconds, at least 1 and at most 315360000");
        return -1;
    }
    return 0;
}

/* Parses a write body; returns 0, or -1 after replying 400. */
static int parse_write(h2o_req_t *req, int with_key, struct body_write *w, int64_t *ttl_ms)
{
    char err[256];
    if (body_parse_write(req->entity.base, req->entity.len, with_key, pool_alloc, &req->pool, w, err,
                         sizeof(err)) != 0) {
        reply_error(req, 400, err);
        return -1;
    }
    return resolve_ttl(req, w->ttl_ms, ttl_ms);
}

/* True when the request body is declared JSON, or not declared at all. */
static int body_is_json(const h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i == -1)
        return 1;
    h2o_iovec_t ct = req->headers.entries[i].value;
    size_t len = 0;
    while (len < ct.len && ct.base[len] != ';' && ct.base[len] != ' ')
        len++;
    return h2o_lcstris(ct.base, len, H2O_STRLIT("application/json")) ||
           (len >= 5 && h2o_lcstris(ct.base + len - 5, 5, H2O_STRLIT("+json")));
}

/* ---- POST /cache ------------------------------------------------------- */

static void handle_collection(struct http_server *srv, h2o_req_t *req)
{
    struct body_write w;
    struct store_meta meta;
    int64_t ttl_ms;

    if (!method_is(req, H2O_STRLIT("POST"))) {
        reply_method_not_allowed(req, "POST");
        return;
    }
    if (parse_write(req, 1, &w, &ttl_ms) == 0) {
        enum cmd_status st = cmd_set(srv->cmd, w.key, w.key_len, &w.value, ttl_ms, CMD_UNCONDITIONAL, &meta);
        if (st == CMD_OK || st == CMD_CREATED)
            reply_message(req, 200, "stored");
        else
            reply_cmd_error(req, srv->cmd, st);
    }
    body_write_free(&w);
}

/* ---- /cache/{key} ------------------------------------------------------ */

/* {"key":…,"value":…[,"ttl":seconds]} */
static void reply_entry(h2o_req_t *req, const char *key, size_t key_len, const struct store_item *item)
{
    size_t cap = JSONW_STRING_MAX(key_len) + (item->kind == STORE_KIND_JSON ? item->len : JSONW_STRING_MAX(item->len)) +
                 48;
    char *body = h2o_mem_alloc_pool(&req->pool, cap), *p = body;

    memcpy(p, "{\"key\":", 7);
    p = json_write_string(p + 7, key, key_len);
    memcpy(p, ",\"value\":", 9);
    p += 9;
    if (item->kind == STORE_KIND_JSON) {
        memcpy(p, item->data, item->len);
        p += item->len;
    } else {
        p = json_write_string(p, item->data, item->len);
    }
    if (item->meta.ttl_ms >= 0)
        p += sprintf(p, ",\"ttl\":%" PRId64, (item->meta.ttl_ms + 999) / 1000);
    *p++ = '}';
    reply_json(req, 200, body, (size_t)(p - body));
}

static void handle_put(struct http_server *srv, h2o_req_t *req, const char *key, size_t key_len)
{
    struct body_write w;
    struct store_meta meta;
    int64_t ttl_ms;

    if (!body_is_json(req)) {
        reply_error(req, 415, "Content-Type must be application/json");
        return;
    }
    if (parse_write(req, 0, &w, &ttl_ms) == 0) {
        enum cmd_status st = cmd_set(srv->cmd, key, key_len, &w.value, ttl_ms, CMD_UNCONDITIONAL, &meta);
        if (st == CMD_CREATED) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, req->path.base,
                           req->query_at == SIZE_MAX ? req->path.len : req->query_at);
            reply_message(req, 201, "created");
        } else if (st == CMD_OK) {
            reply_message(req, 200, "replaced");
        } else {
            reply_cmd_error(req, srv->cmd, st);
        }
    }
    body_write_free(&w);
}

static void handle_key(struct http_server *srv, h2o_req_t *req, const char *raw, size_t raw_len)
{
    /* {key} is one path segment: a key holding '/' is sent as %2F. */
    if (memchr(raw, '/', raw_len) != NULL) {
        reply_error(req, 404, "not found");
        return;
    }
    char *key = h2o_mem_alloc_pool(&req->pool, raw_len + 1);
    long decoded = keypath_decode(raw, raw_len, key);
    if (decoded < 0) {
        reply_error(req, 400, "key has a malformed or NUL percent-escape");
        return;
    }
    size_t key_len = (size_t)decoded;
    if (key_len > srv->cmd->limits.max_key_bytes) {
        char message[96];
        snprintf(message, sizeof(message), "key is longer than max-key-bytes (%zu)", srv->cmd->limits.max_key_bytes);
        reply_error(req, 414, message);
        return;
    }

    if (is_get_or_head(req)) {
        struct store_item item;
        enum cmd_status st = cmd_get(srv->cmd, key, key_len, pool_alloc, &req->pool, &item);
        if (st == CMD_OK)
            reply_entry(req, key, key_len, &item);
        else
            reply_cmd_error(req, srv->cmd, st);
    } else if (method_is(req, H2O_STRLIT("PUT"))) {
        handle_put(srv, req, key, key_len);
    } else if (method_is(req, H2O_STRLIT("DELETE"))) {
        enum cmd_status st = cmd_delete(srv->cmd, key, key_len, 0);
        if (st == CMD_OK)
            reply_message(req, 200, "deleted");
        else
            reply_cmd_error(req, srv->cmd, st);
    } else {
        reply_method_not_allowed(req, "GET, HEAD, PUT, DELETE");
    }
}

/* ---- /health and /stats ------------------------------------------------ */

static void handle_stats(struct http_server *srv, h2o_req_t *req)
{
    struct store_stats st;
    struct http_counters hc;
    char *body = h2o_mem_alloc_pool(&req->pool, 1024);

    store_stats(srv->cmd->store, &st);
    http_server_counters(srv, &hc);
    int len = snprintf(body, 1024,
                       "{\"entries\":%zu,\"bytes_used\":%zu,\"max_memory\":%zu,\"hits\":%" PRIu64
                       ",\"misses\":%" PRIu64 ",\"sets\":%" PRIu64 ",\"deletes\":%" PRIu64 ",\"expired\":%" PRIu64
                       ",\"evicted\":%" PRIu64 ",\"connections\":%u,\"connections_total\":%" PRIu64
                       ",\"requests\":%" PRIu64 ",\"uptime_seconds\":%.3f,\"threads\":%u,\"version\":\"%s\"}",
                       st.entries, st.bytes_used, st.max_memory, st.hits, st.misses, st.sets, st.deletes, st.expired,
                       st.evicted, hc.connections, hc.connections_total, hc.requests, hc.uptime_seconds,
                       srv->settings.threads, srv->settings.version);
    reply_json(req, 200, body, (size_t)len);
}

int routes_handle(h2o_handler_t *self, h2o_req_t *req)
{
    struct http_server *srv = ((struct route_handler *)self)->server;
    struct worker *w = H2O_STRUCT_FROM_MEMBER(struct worker, ctx, req->conn->ctx);
    const char *path = req->path.base;
    size_t path_len = req->query_at == SIZE_MAX ? req->path.len : req->query_at;

    atomic_store_explicit(&w->requests, atomic_load_explicit(&w->requests, memory_order_relaxed) + 1,
                          memory_order_relaxed);

    if (path_len >= sizeof(CACHE_PREFIX) - 1 && memcmp(path, CACHE_PREFIX, sizeof(CACHE_PREFIX) - 1) == 0) {
        handle_key(srv, req, path + sizeof(CACHE_PREFIX) - 1, path_len - (sizeof(CACHE_PREFIX) - 1));
    } else if (h2o_memis(path, path_len, H2O_STRLIT("/cache"))) {
        handle_collection(srv, req);
    } else if (h2o_memis(path, path_len, H2O_STRLIT("/health"))) {
        if (is_get_or_head(req))
            reply_json(req, 200, H2O_STRLIT("{\"status\":\"ok\"}"));
        else
            reply_method_not_allowed(req, "GET, HEAD");
    } else if (h2o_memis(path, path_len, H2O_STRLIT("/stats"))) {
        if (is_get_or_head(req))
            handle_stats(srv, req);
        else
            reply_method_not_allowed(req, "GET, HEAD");
    } else {
        reply_error(req, 404, "not found");
    }
    return 0;
}
