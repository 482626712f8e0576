/*
 * The HTTP front's place on the network core: one h2o_globalconf_t built
 * before any thread starts (read-only afterwards), one h2o context per
 * worker made by attach on that worker's thread, and the callbacks the core makes for each
 * connection (serve, refuse, drain). The threads, listening sockets,
 * connection limits, write timeout and drain deadline are the core's
 * (src/net/net.c).
 *
 * A port is plain HTTP or HTTPS: the two differ only in the accept context,
 * which carries the shared TLS context (tls.c) for HTTPS; h2o does the
 * handshake and picks HTTP/2 or HTTP/1.1 from ALPN.
 *
 * Draining: h2o_context_request_shutdown sends GOAWAY on HTTP/2 and stops
 * keep-alive for HTTP/1 requests parsed after it; routes.c closes the ones
 * in flight. h2o 2.2.5 never closes an idle HTTP/1 keep-alive connection on
 * shutdown, so each finished HTTP/1 request marks its connection settled
 * (log_access), and the core closes those that stay idle.
 */
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"
#include "http/reply.h"
#include "log.h"
#include "net/h2o_quirks.h"
#include "net/tls.h"

/* ---- the network core's callbacks --------------------------------------- */

static void on_refusal_sent(h2o_socket_t *sock, const char *err)
{
    (void)err;
    h2o_socket_close(sock);
}

static void refuse(void *state, int tag, h2o_socket_t *sock)
{
    static const char response[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                   "Content-Type: application/json\r\n"
                                   "Content-Length: 34\r\n"
                                   "Connection: close\r\n"
                                   "\r\n"
                                   "{\"error\":\"too many connections\"}\r\n";
    (void)state;
    if (tag == LISTEN_HTTPS) {
        h2o_socket_close(sock); /* a plain-text 503 means nothing before a TLS handshake */
        return;
    }
    h2o_iovec_t buf = h2o_iovec_init(response, sizeof(response) - 1);
    h2o_socket_write(sock, &buf, 1, on_refusal_sent);
}

static void serve(void *state, int tag, h2o_socket_t *sock)
{
    struct http_worker *hw = state;
    h2o_accept(&hw->accept_ctx[tag], sock);
}

static void drain(void *state)
{
    struct http_worker *hw = state;
    h2o_context_request_shutdown(&hw->ctx);
}

static void *attach(struct net_front *front, struct net_worker *w)
{
    struct http_server *srv = H2O_STRUCT_FROM_MEMBER(struct http_server, front, front);
    struct http_worker *hw = aligned_alloc(64, sizeof(*hw));
    if (hw == NULL)
        return NULL;
    memset(hw, 0, sizeof(*hw));
    hw->server = srv;
    hw->net_worker = w;
    h2o_context_init(&hw->ctx, net_worker_loop(w), &srv->config);
    persistence_attach(hw);
    for (int kind = 0; kind < LISTEN_KINDS; kind++) {
        hw->accept_ctx[kind].ctx = &hw->ctx;
        hw->accept_ctx[kind].hosts = srv->config.hosts;
        hw->accept_ctx[kind].ssl_ctx = kind == LISTEN_HTTPS ? srv->ssl_ctx : NULL;
    }
    srv->workers[net_worker_index(w)] = hw;
    return hw;
}

/*
 * Disposes of the worker's h2o context. The struct itself, with the
 * counters other workers' /stats and /metrics still read, goes with the
 * server (http_server_destroy).
 */
static void detach(struct net_front *front, void *state)
{
    (void)front;
    struct http_worker *hw = state;
    h2o_loop_t *loop = hw->ctx.loop;
    h2o_multithread_queue_t *queue = hw->ctx.queue;
    persistence_detach(hw);
    h2o_quirk_unlink_graceful_shutdown_timer(&hw->ctx);
    h2o_context_dispose(&hw->ctx);
    h2o_evloop_run(loop, 0); /* frees the queue's socket, closed by dispose */
    h2o_quirk_free_destroyed_queue(queue);
}

/* ---- configuration ------------------------------------------------------ */

/*
 * Logger callback: every finished request, h2o's own early errors included,
 * feeds the worker's metrics; a finished HTTP/1 request leaves its
 * connection settled for the drain.
 */
static void log_access(h2o_logger_t *self, h2o_req_t *req)
{
    (void)self;
    struct http_worker *hw = http_worker_of(req);
    int64_t duration_us = 0;
    if (!h2o_time_compute_duration(req, &duration_us) || duration_us < 0)
        duration_us = 0;
    metrics_observe(&hw->metrics, metrics_method(req->method.base, req->method.len), req->res.status,
                    (uint64_t)duration_us);
    if (req->version < 0x200)
        http_connection_settled(req, 1);
}

static void register_pathconf_hooks(struct http_server *srv, h2o_pathconf_t *pathconf)
{
    reply_register_error_filter(pathconf, srv->settings.max_body_bytes);
    persistence_register_filter(pathconf);
    h2o_create_logger(pathconf, sizeof(h2o_logger_t))->log_access = log_access;
}

void http_server_configure(struct http_server *srv)
{
    h2o_globalconf_t *conf = &srv->config;
    h2o_config_init(conf);
    snprintf(srv->server_name, sizeof(srv->server_name), "cachette/%s", srv->stats->version);
    conf->server_name = h2o_iovec_init(srv->server_name, strlen(srv->server_name));
    /*
     * One byte of slack: h2o 2.2.5 refuses a chunked HTTP/1 body when it reaches
     * the limit (>=) but a Content-Length or HTTP/2 body only past it (>), so a
     * chunked body of exactly max-body-bytes would get 413. routes.c refuses
     * the one extra byte the slack lets in, with the same JSON 413.
     */
    conf->max_request_entity_size = srv->settings.max_body_bytes + 1;
    conf->http1.req_timeout = (uint64_t)srv->settings.request_timeout_ms;
    conf->http2.idle_timeout = (uint64_t)srv->settings.idle_timeout_ms;
    conf->http1.upgrade_to_http2 = srv->settings.http2; /* both ways to h2c: prior knowledge and Upgrade */

    h2o_hostconf_t *host = h2o_config_register_host(conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *root = h2o_config_register_path(host, "/", 0);
    struct route_handler *handler = (void *)h2o_create_handler(root, sizeof(*handler));
    handler->super.on_req = routes_handle;
    handler->server = srv;
    register_pathconf_hooks(srv, root);
    /* Errors h2o raises before routing (413, 417) are bound to the host's fallback path. */
    register_pathconf_hooks(srv, &host->fallback_path);
}

/* ---- lifecycle ---------------------------------------------------------- */

struct http_server *http_server_create(const struct http_settings *settings, const struct cmd_ctx *cmd,
                                       const struct stats_sources *stats, struct net *net)
{
    struct http_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->front = (struct net_front){
        .name = "HTTP", .attach = attach, .detach = detach, .serve = serve, .refuse = refuse, .drain = drain};
    srv->settings = *settings;
    srv->cmd = cmd;
    srv->stats = stats;
    srv->net = net;
    srv->worker_count = net_threads(net);
    srv->workers = calloc(srv->worker_count, sizeof(*srv->workers));
    if (srv->workers == NULL) {
        free(srv);
        return NULL;
    }
    /* ALPN: h2 first, so HTTP/2 clients negotiate it and everything else falls back; without HTTP/2, http/1.1 alone. */
    static const h2o_iovec_t http1_only[] = {{H2O_STRLIT("http/1.1")}, {NULL, 0}};
    const h2o_iovec_t *alpn = settings->http2 ? h2o_http2_alpn_protocols : http1_only;
    if (settings->tls_cert != NULL &&
        (srv->ssl_ctx = tls_context_create(settings->tls_cert, settings->tls_key, alpn)) == NULL) {
        free(srv->workers);
        free(srv);
        return NULL;
    }
    http_server_configure(srv);
    int failed = settings->serve_http && (srv->ports[LISTEN_HTTP] = net_listen(net, &srv->front, LISTEN_HTTP,
                                                                               settings->http_port, "HTTP")) == 0;
    if (!failed && settings->tls_cert != NULL)
        failed =
            (srv->ports[LISTEN_HTTPS] = net_listen(net, &srv->front, LISTEN_HTTPS, settings->https_port, "HTTPS")) == 0;
    if (failed) {
        http_server_destroy(srv);
        return NULL;
    }
    return srv;
}

unsigned http_server_http_port(const struct http_server *srv)
{
    return srv->ports[LISTEN_HTTP];
}

unsigned http_server_https_port(const struct http_server *srv)
{
    return srv->ports[LISTEN_HTTPS];
}

void http_server_destroy(struct http_server *srv)
{
    h2o_config_dispose(&srv->config);
    if (srv->ssl_ctx != NULL)
        SSL_CTX_free(srv->ssl_ctx);
    for (unsigned i = 0; i < srv->worker_count; i++)
        free(srv->workers[i]);
    free(srv->workers);
    free(srv);
}
