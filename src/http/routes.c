/*
 * The REST API's routing, on the raw request path (never h2o's normalised
 * one, which would decode %2F and resolve dot-segments), and the small
 * read-only endpoints. Handlers run on the connection's worker thread and
 * never block: the store's locks are held only to copy bytes in or out.
 *
 *   /cache               GET HEAD (list)  POST (store)  DELETE (flush)     cache_collection.c
 *   /cache/_mget, _mset  POST                                                cache_collection.c
 *   /cache/{key}         GET HEAD PUT DELETE                                 cache_entry.c
 *   /cache/{key}/incr    POST                                                cache_entry.c
 *   /health /stats /metrics  GET HEAD                                        here
 *   /snapshot            POST                                                persistence.c
 *
 * While --data-dir loads, persistence_gate answers 503 for all but /stats
 * and /metrics.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "http/auth.h"
#include "http/internal.h"
#include "http/reply.h"
#include "http/request.h"
#include "log.h"

#define CACHE_PREFIX "/cache/"

/*
 * Formats a JSON body into the request's pool, sized by a first pass, so the
 * length sent is always the length written, however the figures grow.
 */
static void reply_json_format(h2o_req_t *req, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reply_json_format(h2o_req_t *req, int status, const char *fmt, ...)
{
    va_list args, again;
    va_start(args, fmt);
    va_copy(again, args);
    int len = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    char *body = h2o_mem_alloc_pool(&req->pool, (size_t)len + 1);
    vsnprintf(body, (size_t)len + 1, fmt, again);
    va_end(again);
    reply_json(req, status, body, (size_t)len);
}

static void handle_stats(struct http_server *srv, h2o_req_t *req)
{
    struct stats st;
    uint64_t requests = 0;
    char persistence[PERSISTENCE_STATS_JSON_MAX];
    stats_collect(srv->stats, &st);
    persistence_stats_json(persistence, sizeof(persistence), &st);
    for (unsigned i = 0; i < srv->worker_count; i++)
        if (srv->workers[i] != NULL)
            requests += atomic_load_explicit(&srv->workers[i]->requests, memory_order_relaxed);
    reply_json_format(req, 200,
                      "{\"entries\":%zu,\"bytes_used\":%zu,\"bytes_pending_free\":%zu,\"max_memory\":%zu,\"hits\":%" PRIu64
                      ",\"misses\":%" PRIu64 ",\"sets\":%" PRIu64 ",\"deletes\":%" PRIu64 ",\"expired\":%" PRIu64
                      ",\"evicted\":%" PRIu64 ",\"connections\":%u,\"connections_total\":%" PRIu64
                      ",\"connections_refused\":%" PRIu64 ",\"write_timeouts\":%" PRIu64 ",\"requests\":%" PRIu64
                      ",\"uptime_seconds\":%.3f,\"threads\":%u,\"version\":\"%s\",\"persistence\":%s}",
                      st.store.entries, st.store.bytes_used, st.store.bytes_pending_free, st.store.max_memory,
                      st.store.hits, st.store.misses, st.store.sets, st.store.deletes, st.store.expired,
                      st.store.evicted, st.net.connections, st.net.connections_total, st.net.connections_refused,
                      st.net.write_timeouts, requests, st.net.uptime_seconds, st.net.threads, st.version, persistence);
}

static void handle_metrics(struct http_server *srv, h2o_req_t *req)
{
    struct stats st;
    struct metrics_totals http = {0};
    char *body = h2o_mem_alloc_pool(&req->pool, METRICS_TEXT_MAX);
    stats_collect(srv->stats, &st);
    for (unsigned i = 0; i < srv->worker_count; i++)
        if (srv->workers[i] != NULL)
            metrics_add(&http, &srv->workers[i]->metrics);
    size_t len = metrics_render(body, &http, &st);
    reply_body(req, 200, H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"), body, len);
}

/* A read-only endpoint: GET and HEAD only. */
static void read_only(struct http_server *srv, h2o_req_t *req, void (*handler)(struct http_server *, h2o_req_t *))
{
    if (request_is_get_or_head(req))
        handler(srv, req);
    else
        reply_method_not_allowed(req, "GET, HEAD");
}

/*
 * HAProxy's health checks, with "http-check send-state", say what the
 * balancer thinks of this node: "UP", "UP 1/2" (failing, still in), "DOWN",
 * "DOWN 1/3" (recovering, still out), or "NOLB" (up, but given no traffic).
 * DOWN and NOLB mean the balancer is sending this node's keys to other
 * nodes, where they may be rewritten; with --flush-when-down the node
 * forgets its own copies before it is let back in, so it never serves one
 * superseded elsewhere meanwhile. Every such check flushes (an empty store
 * costs one walk of its tables), so nothing written meanwhile by a client
 * that reaches the node directly survives into the return either. Any other
 * word changes nothing. /health needs no token, so with --auth-token the
 * header counts only on a check that carries the token (HAProxy: http-check
 * send hdr Authorization): nobody else can empty the cache through it.
 */
static void flush_if_balancer_took_out(struct http_server *srv, h2o_req_t *req)
{
    ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-haproxy-server-state"), -1);
    if (at < 0)
        return;
    h2o_iovec_t state = req->headers.entries[at].value;
    size_t word = 0;
    while (word < state.len && state.base[word] != ' ' && state.base[word] != ';')
        word++;
    if (!h2o_memis(state.base, word, H2O_STRLIT("DOWN")) && !h2o_memis(state.base, word, H2O_STRLIT("NOLB")))
        return;
    const char *token = srv->settings.auth_token;
    h2o_iovec_t field;
    if (token != NULL && token[0] != '\0' &&
        !(request_header(req, H2O_TOKEN_AUTHORIZATION, &field) &&
          auth_bearer_matches(field.base, field.len, token, strlen(token)))) {
        static atomic_int warned; /* once: a client without the token must not be able to fill the log */
        if (atomic_exchange_explicit(&warned, 1, memory_order_relaxed) == 0)
            log_msg(LOG_LEVEL_WARN,
                    "ignored X-Haproxy-Server-State: %.*s on a health check without the bearer token (add the "
                    "token to HAProxy's http-check send; this is said once)",
                    (int)word, state.base);
        return;
    }
    size_t deleted = cmd_flush(srv->cmd);
    if (deleted > 0)
        log_msg(LOG_LEVEL_WARN,
                "flushed %zu entries: the balancer's health check says %.*s (X-Haproxy-Server-State: %.*s)", deleted,
                (int)word, state.base, (int)state.len, state.base);
}

static void handle_health(struct http_server *srv, h2o_req_t *req)
{
    if (srv->settings.flush_when_down)
        flush_if_balancer_took_out(srv, req);
    reply_json(req, 200, H2O_STRLIT("{\"status\":\"ok\"}"));
}

/*
 * h2o itself accepts up to about 400 KiB of request head; cachette's own
 * limit is --max-header-bytes over the method, the target and every header's
 * name and value, the ones h2o takes out of the list included: Host (or
 * :authority) and Upgrade. (HTTP/1 headers h2o keeps nowhere cost nothing
 * past its read: an Upgrade without Connection: upgrade, and Expect, which
 * it refuses unless 100-continue and ignores without a body.)
 * Returns 0, or -1 after replying 431 (and closing: the client is likely to
 * send more of the same).
 */
static int check_header_size(struct http_server *srv, h2o_req_t *req)
{
    /* The target as sent (input.path): use_origin_form may have cut an absolute one short. */
    size_t total = req->method.len + req->input.path.len + req->authority.len + req->upgrade.len;
    for (size_t i = 0; i < req->headers.size; i++)
        total += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    if (total <= srv->settings.max_header_bytes)
        return 0;
    char message[96];
    snprintf(message, sizeof(message), "request headers are larger than max-header-bytes (%zu)",
             srv->settings.max_header_bytes);
    req->http1_is_persistent = 0;
    reply_error(req, 431, message);
    return -1;
}

/* A body of max-body-bytes + 1, the one byte of slack server.c gives h2o; returns 0 or -1 after replying 413. */
static int check_body_size(struct http_server *srv, h2o_req_t *req)
{
    if (req->entity.base == NULL || req->entity.len <= srv->settings.max_body_bytes)
        return 0;
    reply_body_too_large(req, srv->settings.max_body_bytes);
    return -1;
}

/* With --auth-token, every request but /health needs the bearer token; returns 0 or -1 after replying 401. */
static int authorize(struct http_server *srv, h2o_req_t *req, const char *path, size_t path_len)
{
    const char *token = srv->settings.auth_token;
    h2o_iovec_t field;
    if (token == NULL || token[0] == '\0' || h2o_memis(path, path_len, H2O_STRLIT("/health")))
        return 0;
    int given = request_header(req, H2O_TOKEN_AUTHORIZATION, &field);
    if (given && auth_bearer_matches(field.base, field.len, token, strlen(token)))
        return 0;
    if (given)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"cachette\", error=\"invalid_token\""));
    else
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"cachette\""));
    reply_error(req, 401, given ? "invalid bearer token" : "missing bearer token: send Authorization: Bearer <token>");
    return -1;
}

/*
 * A web page on any site can send a request to a cache on the visitor's own
 * machine, and a "simple" POST (text/plain) needs no preflight: it would
 * store, increment or batch-write unseen. Browsers say where such a request
 * comes from in Origin; other clients send none. A request whose Origin names
 * another host than the one it was sent to (Host, or :authority) is refused:
 * returns 0, or -1 after replying 403. GET and HEAD change nothing, and the
 * browser keeps their answers from another origin's page, so they skip the
 * look-up (a scan of the headers by name: h2o 2.2.5 has no token for Origin).
 */
static int check_origin(h2o_req_t *req)
{
    if (request_is_get_or_head(req))
        return 0;
    ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    if (at < 0)
        return 0;
    h2o_iovec_t origin = req->headers.entries[at].value;
    size_t scheme_end = h2o_strstr(origin.base, origin.len, H2O_STRLIT("://"));
    if (scheme_end != SIZE_MAX) {
        size_t host_at = scheme_end + 3;
        if (h2o_lcstris(origin.base + host_at, origin.len - host_at, req->authority.base, req->authority.len))
            return 0;
    }
    reply_error(req, 403, "cross-origin request refused: its Origin is not this server");
    return -1;
}

/*
 * A target in absolute form ("http://host/cache/k?raw", what a request sent
 * through a proxy carries) must be accepted (RFC 9112, 3.2.2): it becomes
 * the origin form ("/cache/k?raw") that routing and the handlers read. Any
 * other target that does not start with '/' is left to answer 404.
 */
static void use_origin_form(h2o_req_t *req)
{
    const char *target = req->path.base;
    size_t len = req->path.len, at;
    if (len == 0 || target[0] == '/')
        return;
    if (len > 7 && h2o_lcstris(target, 7, H2O_STRLIT("http://")))
        at = 7;
    else if (len > 8 && h2o_lcstris(target, 8, H2O_STRLIT("https://")))
        at = 8;
    else
        return;
    while (at < len && target[at] != '/' && target[at] != '?')
        at++; /* the authority */
    if (at < len && target[at] == '/') {
        req->path = h2o_iovec_init(target + at, len - at);
        if (req->query_at != SIZE_MAX)
            req->query_at -= at;
        return;
    }
    /* No path: "/", then the query if any. */
    req->path = h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT("/")), h2o_iovec_init(target + at, len - at));
    if (req->query_at != SIZE_MAX)
        req->query_at = req->query_at - at + 1;
}

int routes_handle(h2o_handler_t *self, h2o_req_t *req)
{
    struct http_server *srv = ((struct route_handler *)self)->server;
    struct http_worker *w = http_worker_of(req);
    use_origin_form(req);
    const char *path = req->path.base;
    size_t path_len = req->query_at == SIZE_MAX ? req->path.len : req->query_at;
    const size_t prefix_len = sizeof(CACHE_PREFIX) - 1;

    atomic_store_explicit(&w->requests, atomic_load_explicit(&w->requests, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    /*
     * A request in hand: not settled until it is answered (log_access, HTTP/1
     * only), so the drain never closes a connection whose reply is held (a
     * write waiting for its fsync, a snapshot being written). An HTTP/2
     * connection, maybe upgraded from a settled HTTP/1 one, stays unsettled.
     */
    http_connection_settled(req, 0);
    /* h2o stops keep-alive only for requests parsed after shutdown began; close this one's too. */
    if (net_stopping(srv->net))
        req->http1_is_persistent = 0;

    if (check_header_size(srv, req) != 0 || authorize(srv, req, path, path_len) != 0 || check_origin(req) != 0 ||
        check_body_size(srv, req) != 0 || persistence_gate(srv, req, path, path_len) != 0)
        return 0;
    if (path_len >= prefix_len && memcmp(path, CACHE_PREFIX, prefix_len) == 0) {
        const char *rest = path + prefix_len;
        size_t rest_len = path_len - prefix_len;
        int post = request_method_is(req, H2O_STRLIT("POST"));
        if (post && h2o_memis(rest, rest_len, H2O_STRLIT("_mget")))
            cache_batch_handle(srv, req, 0);
        else if (post && h2o_memis(rest, rest_len, H2O_STRLIT("_mset")))
            cache_batch_handle(srv, req, 1);
        else
            cache_entry_handle(srv, req, rest, rest_len);
    } else if (h2o_memis(path, path_len, H2O_STRLIT("/cache"))) {
        cache_collection_handle(srv, req);
    } else if (h2o_memis(path, path_len, H2O_STRLIT("/health"))) {
        read_only(srv, req, handle_health);
    } else if (h2o_memis(path, path_len, H2O_STRLIT("/stats"))) {
        read_only(srv, req, handle_stats);
    } else if (h2o_memis(path, path_len, H2O_STRLIT("/metrics"))) {
        read_only(srv, req, handle_metrics);
    } else if (h2o_memis(path, path_len, H2O_STRLIT("/snapshot"))) {
        persistence_handle_snapshot(srv, req);
    } else {
        reply_error(req, 404, "not found");
    }
    return 0;
}
