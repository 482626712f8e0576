/*
 * State shared by server.c and routes.c. Each worker thread owns one h2o
 * event loop, context and listening socket per port; the only state shared between
 * workers is the connection count and the stop flag (atomics), the cmd layer
 * (thread-safe) and the read-only settings.
 */
#ifndef CACHETTE_HTTP_INTERNAL_H
#define CACHETTE_HTTP_INTERNAL_H

#if H2O_USE_LIBUV
#error "cachette uses h2o's evloop flavour: build with -DH2O_USE_LIBUV=0"
#endif

#include <h2o.h>
#include <pthread.h>
#include <stdatomic.h>

#include "http/metrics.h"
#include "http/server.h"

/* The two kinds of listening socket; a server has one or both. */
enum listen_kind { LISTEN_HTTP, LISTEN_HTTPS, LISTEN_KINDS };

/* One listening socket of one worker, and how its connections are handed to h2o (plain or TLS). */
struct listener {
    struct worker *worker;
    int fd;                             /* -1 when this kind is not served */
    h2o_socket_t *sock;
    h2o_accept_ctx_t accept_ctx;
};

struct worker {
    struct http_server *server;
    pthread_t thread;
    h2o_context_t ctx;
    struct listener listeners[LISTEN_KINDS];
    h2o_multithread_receiver_t wakeup;
    h2o_multithread_message_t stop_message; /* what http_server_stop sends it */
    atomic_int woken;                       /* its thread has received stop_message */
    h2o_linklist_t connections;         /* open ones (struct connection, server.c); its thread only */
    h2o_timeout_t sweep;                /* runs sweep_entry once a second */
    h2o_timeout_entry_t sweep_entry;
    atomic_uint_fast64_t requests;      /* written by its thread, read by /stats */
    struct metrics metrics;             /* likewise */
} __attribute__((aligned(64)));

struct http_server {
    struct http_settings settings;
    const struct cmd_ctx *cmd;
    h2o_globalconf_t config;
    struct worker *workers;
    unsigned ports[LISTEN_KINDS];       /* bound ports; 0 = that kind is not served */
    SSL_CTX *ssl_ctx;                   /* NULL without HTTPS */
    atomic_uint connections;            /* open, all workers */
    atomic_uint_fast64_t connections_total;
    atomic_uint_fast64_t connections_refused; /* over --max-connections */
    atomic_uint_fast64_t write_timeouts;      /* reset by --write-timeout */
    atomic_int stopping;
    int64_t started_ms;                 /* CLOCK_MONOTONIC */
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

/* POST /cache/_mget and /cache/_mset (cache_collection.c). */
void cache_batch_handle(struct http_server *srv, h2o_req_t *req, int is_mset);

/* Per-handler data: h2o hands the handler to routes_handle. */
struct route_handler {
    h2o_handler_t super;
    struct http_server *server;
};

struct http_counters {
    uint64_t connections_total, connections_refused, write_timeouts;
    unsigned connections;
    double uptime_seconds;
};

void http_server_counters(struct http_server *server, struct http_counters *out);

#endif
