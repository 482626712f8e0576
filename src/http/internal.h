/*
 * State shared by server.c, routes.c and the handlers. The network core
 * (src/net/) owns the threads, loops and sockets; the HTTP front keeps one
 * h2o context per worker, made by its attach callback. Shared between
 * workers: the cmd layer (thread-safe), the statistics sources, the
 * read-only settings and h2o configuration, and each worker's request
 * counters, written by it alone and read by any worker's /stats and
 * /metrics (relaxed atomics).
 */
#ifndef CACHETTE_HTTP_INTERNAL_H
#define CACHETTE_HTTP_INTERNAL_H

#include <h2o.h>
#include <stdatomic.h>

#include "cmd/durable.h"
#include "http/metrics.h"
#include "http/server.h"

/* The two kinds of listening port (the tag given to net_listen); a server has one or both. */
enum listen_kind { LISTEN_HTTP, LISTEN_HTTPS, LISTEN_KINDS };

/* The HTTP front on one worker of the network core: written by that worker's thread only. */
struct http_worker {
    struct http_server *server;
    struct net_worker *net_worker;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx[LISTEN_KINDS]; /* plain, and with the TLS context */
    atomic_uint_fast64_t requests;             /* read by /stats */
    struct metrics metrics;                    /* read by /metrics */
    /* persistence.c: replies held until the log has their writes on disk (--append-log always) */
    h2o_linklist_t held;                       /* oldest first; this thread only */
    struct durable_wait durable;               /* counts them, and wakes this worker when the log moves on */
} __attribute__((aligned(64)));

struct http_server {
    struct net_front front;             /* what the network core calls */
    struct http_settings settings;
    const struct cmd_ctx *cmd;
    const struct stats_sources *stats;
    struct net *net;
    h2o_globalconf_t config;
    SSL_CTX *ssl_ctx;                   /* NULL without HTTPS */
    struct http_worker **workers;       /* one per network worker, by index; NULL until attached; freed with the server */
    unsigned worker_count;
    unsigned ports[LISTEN_KINDS];       /* bound ports; 0 = that kind is not served */
    char server_name[64];               /* the Server header */
};

/*
 * Builds srv->config from srv->settings: limits, timeouts, the one handler
 * (routes_handle) and the hooks on every path (server.c). Needs no socket or
 * thread, so fuzz/fuzz_routes.c drives requests through the same config.
 */
void http_server_configure(struct http_server *srv);

/* The handler behind every path (routes.c). */
int routes_handle(h2o_handler_t *self, h2o_req_t *req);

/* /cache/{key} and /cache/{key}/incr; raw is the still-encoded rest of the path after "/cache/" (cache_entry.c). */
void cache_entry_handle(struct http_server *srv, h2o_req_t *req, const char *raw, size_t raw_len);

/* /cache (cache_collection.c). */
void cache_collection_handle(struct http_server *srv, h2o_req_t *req);

/* ---- persistence as HTTP shows it (persistence.c) ---- */

/* Sets up and frees the worker's held replies (on its thread). */
void persistence_attach(struct http_worker *hw);
void persistence_detach(struct http_worker *hw);

/*
 * Registers, on pathconf, the filter that holds the response to a write
 * until the append-only log has it on disk (--append-log always).
 */
void persistence_register_filter(h2o_pathconf_t *pathconf);

/*
 * While the data directory loads: /health answers 503 {"status":"loading"},
 * /stats and /metrics answer as usual (with the progress), every other
 * request 503 with a JSON error. Returns 0 to go on, -1 after replying.
 */
int persistence_gate(struct http_server *srv, h2o_req_t *req, const char *path, size_t path_len);

/* POST /snapshot. */
void persistence_handle_snapshot(struct http_server *srv, h2o_req_t *req);

/* The "persistence" member of /stats ({...}, or null without --data-dir) into buf; returns its length. */
size_t persistence_stats_json(char *buf, size_t size, const struct stats *st);
#define PERSISTENCE_STATS_JSON_MAX 768

/* POST /cache/_mget and /cache/_mset (cache_collection.c). */
void cache_batch_handle(struct http_server *srv, h2o_req_t *req, int is_mset);

/* Per-handler data: h2o hands the handler to routes_handle. */
struct route_handler {
    h2o_handler_t super;
    struct http_server *server;
};

/*
 * Tells the network core whether the request's connection is settled: an
 * HTTP/1 connection whose request is finished is; one carrying HTTP/2 (an
 * h2c upgrade included) is not, and is left to h2o's GOAWAY on drain.
 */
static inline void http_connection_settled(h2o_req_t *req, int settled)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (sock != NULL)
        net_connection_settled(sock, settled);
}

/* The worker a request is served on. */
static inline struct http_worker *http_worker_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(struct http_worker, ctx, req->conn->ctx);
}

#endif
