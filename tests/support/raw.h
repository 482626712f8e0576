/*
 * Raw TCP to the server under test, for what libcurl will not send:
 * pipelined requests in one write, malformed HTTP, bodies cut off midway,
 * connections held open. Also a small parser for HTTP/1.x responses.
 */
#ifndef CACHETTE_TESTS_SUPPORT_RAW_H
#define CACHETTE_TESTS_SUPPORT_RAW_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>

/* ---- raw sockets --------------------------------------------------------- */

/* Connects to 127.0.0.1:port (2 s deadline). Returns the fd; fails the test on error. */
int raw_connect(unsigned port);

/* Connects, returns the fd or -1 (errno set) without failing the test. */
int raw_try_connect(unsigned port);

/* Writes all of buf; returns 0 or -1. */
int raw_send(int fd, const void *buf, size_t len);

/* Closes fd with a TCP reset instead of a FIN (SO_LINGER with a zero timeout). */
void raw_close_with_reset(int fd);

/* Sends a keep-alive GET /health on fd; returns 0 when a 200 came back. */
int raw_ping(int fd);

/*
 * One member of /stats, asked on a raw connection of its own and without
 * cmocka assertions: the value, or -1 when no 200 came back (a server at
 * --max-connections answers 503).
 */
json_int_t raw_stat(unsigned port, const char *name);

/* raw_stat with "Authorization: Bearer <token>" (none if token is NULL), for a server with --auth-token. */
json_int_t raw_stat_auth(unsigned port, const char *token, const char *name);

/* Polls /stats until the server counts at most want open connections (its own request included), for timeout_ms. */
void expect_connections_drop_to(unsigned port, json_int_t want, int timeout_ms);
void expect_connections_drop_to_auth(unsigned port, const char *token, json_int_t want, int timeout_ms);

/*
 * Reads into a growing buffer until the peer closes, until the bytes read so
 * far contain stop (if not NULL), or until timeout_ms passes in all.
 * Appends to *buf and *len (malloc'ed, NUL-terminated). Returns 1 if the peer
 * closed (or reset) the connection, 0 otherwise.
 */
int raw_read(int fd, const char *stop, int timeout_ms, char **buf, size_t *len);

/*
 * Waits up to timeout_ms for bytes and appends what one recv gives (as
 * raw_read appends). Returns 1 if the peer closed (or reset) the
 * connection, 0 otherwise (bytes read, or none in time).
 */
int raw_read_once(int fd, int timeout_ms, char **buf, size_t *len);

/* Connect, send, read until close or timeout_ms; returns the bytes (malloc'ed). *closed says if the peer closed. */
char *raw_exchange(unsigned port, const void *req, size_t req_len, int timeout_ms, size_t *len, int *closed);

/* One parsed HTTP/1.x response from a raw byte stream. */
struct raw_res {
    int status;
    const char *head; /* status line and headers (points into the stream) */
    size_t head_len;
    const char *body;
    size_t body_len;
};

/*
 * Parses consecutive responses (bodies by Content-Length; a response to HEAD
 * has none: pass head_mask bit i for the i-th response) from buf. Returns
 * how many complete responses were parsed, at most max.
 */
size_t raw_parse(const char *buf, size_t len, struct raw_res *out, size_t max, unsigned head_mask);

/* The value of header name in a raw response (case-insensitive), copied into out; NULL if absent. */
const char *raw_header(const struct raw_res *r, const char *name, char *out, size_t size);

/* Asserts a raw response is JSON with the status; returns the parsed body (caller decrefs). */
json_t *expect_raw_json(const struct raw_res *r, int status);

#endif
