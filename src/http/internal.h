/*
 * State shared by server.c and routes.c. Each worker thread owns one h2o
 * event loop, context and listening socket; the only state shared between
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

struct worker {
    struct http_server *server;
    pthread_t thread;
    int listen_fd;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_multithread_receiver_t wakeup;
    size_t open;                        /* this worker's connections; its thread only */
    atomic_uint_fast64_t requests;      /* written by its thread, read by /stats */
    struct metrics metrics;             /* likewise */
} __attribute__((aligned(64)));

struct http_server {
    struct http_settings settings;
    const struct cmd_ctx *cmd;
    h2o_globalconf_t config;
    struct worker *workers;
    unsigned port;
    atomic_uint connections;            /* open, all workers */
    atomic_uint_fast64_t connections_total;
    atomic_int stopping;
    int64_t started_ms;                 /* CLOCK_MONOTONIC */
    char server_name[64];               /* the Server header */
};

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
    uint64_t connections_total;
    unsigned connections;
    double uptime_seconds;
};

void http_server_counters(struct http_server *server, struct http_counters *out);

#endif
