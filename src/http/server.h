/*
 * The HTTP front (server.c, routes.c): the REST API over HTTP/1.1 and h2c,
 * and over HTTPS (HTTP/2 through ALPN) when given a certificate, served by
 * h2o on the network core's workers (src/net/). Nothing outside src/http/
 * sees an h2o HTTP or OpenSSL type.
 */
#ifndef CACHETTE_HTTP_SERVER_H
#define CACHETTE_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "cmd/cmd.h"
#include "net/net.h"
#include "stats.h"

struct http_settings {
    int serve_http;             /* plain HTTP on http_port */
    unsigned http_port;         /* 0 = any free port */
    const char *tls_cert;       /* PEM chain; NULL: no HTTPS */
    const char *tls_key;        /* PEM private key, with tls_cert */
    unsigned https_port;        /* 0 = any free port */
    size_t max_body_bytes;
    size_t max_header_bytes;    /* request target and headers, summed */
    size_t max_mget_bytes;      /* an _mget response body */
    int64_t request_timeout_ms;
    int64_t idle_timeout_ms;
    int http2;                  /* also HTTP/2: h2c (prior knowledge, Upgrade) and h2 by ALPN */
    const char *auth_token;     /* NULL or "": no authentication */
    int flush_when_down;        /* a health check whose X-Haproxy-Server-State is not UP flushes the store */
};

struct http_server;

/*
 * Makes the HTTP front and registers its ports with net (before net_start):
 * plain HTTP, HTTPS, or both. The caller keeps cmd (and its store), stats
 * and net alive until http_server_destroy. Returns NULL after logging why
 * (address in use, bad address, unusable certificate or key, out of memory).
 */
struct http_server *http_server_create(const struct http_settings *settings, const struct cmd_ctx *cmd,
                                       const struct stats_sources *stats, struct net *net);

/* The ports actually bound (useful with port 0); 0 for a kind not served. */
unsigned http_server_http_port(const struct http_server *server);
unsigned http_server_https_port(const struct http_server *server);

/* Frees the front, once net_join has detached it (returned 0), or if net_start never ran. */
void http_server_destroy(struct http_server *server);

#endif
