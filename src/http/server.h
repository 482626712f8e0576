/*
 * The HTTP front (server.c, routes.c): h2o worker threads serving the REST
 * API over HTTP/1.1 and h2c, and over HTTPS (HTTP/2 through ALPN) when given
 * a certificate. Nothing outside src/http/ sees an h2o or OpenSSL type.
 */
#ifndef CACHETTE_HTTP_SERVER_H
#define CACHETTE_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "cmd/cmd.h"

struct http_settings {
    const char *bind;
    int serve_http;             /* plain HTTP on http_port */
    unsigned http_port;         /* 0 = any free port */
    const char *tls_cert;       /* PEM chain; NULL: no HTTPS */
    const char *tls_key;        /* PEM private key, with tls_cert */
    unsigned https_port;        /* 0 = any free port */
    unsigned threads;
    unsigned max_connections;
    size_t max_body_bytes;
    size_t max_header_bytes;    /* request target and headers, summed */
    size_t max_batch;           /* items in one _mget or _mset */
    size_t max_mget_bytes;      /* an _mget response body */
    int64_t request_timeout_ms;
    int64_t write_timeout_ms; /* a response the client takes nothing of for this long closes its connection */
    int64_t idle_timeout_ms;
    int64_t drain_timeout_ms;
    int http2;                  /* also HTTP/2: h2c (prior knowledge, Upgrade) and h2 by ALPN */
    const char *version;        /* reported by /stats and the Server header */
    const char *auth_token;     /* NULL or "": no authentication */
};

struct http_server;

/*
 * Binds the listening sockets and starts the worker threads. The caller keeps
 * cmd (and its store) alive until http_server_join returns. Returns NULL after
 * logging why (address in use, bad address, unusable certificate or key, out
 * of memory).
 */
struct http_server *http_server_start(const struct http_settings *settings, const struct cmd_ctx *cmd);

/* The ports actually bound (useful with port 0); 0 for a kind not served. */
unsigned http_server_http_port(const struct http_server *server);
unsigned http_server_https_port(const struct http_server *server);

/*
 * Asks every worker to stop accepting, finish what is in flight and close its
 * connections within the drain timeout. Returns once each worker has taken
 * the request (at most a second for one that does not); call it from any
 * thread but a worker's.
 */
void http_server_stop(struct http_server *server);

/* Waits for the workers and frees the server. Returns connections still open at the deadline. */
size_t http_server_join(struct http_server *server);

#endif
