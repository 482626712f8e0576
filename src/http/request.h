/* Small helpers every handler uses to read a request (request.c). */
#ifndef CACHETTE_HTTP_REQUEST_H
#define CACHETTE_HTTP_REQUEST_H

#include <h2o.h>

#include "http/body.h"

/* A store_alloc_fn over the request's pool (pass &req->pool). */
void *request_pool_alloc(void *pool, size_t size);

int request_method_is(const h2o_req_t *req, const char *name, size_t len);
int request_is_get_or_head(const h2o_req_t *req);

/* The query string without '?', or an empty one. */
h2o_iovec_t request_query(const h2o_req_t *req);

/* Finds a query parameter, as query_find. */
int request_query_param(const h2o_req_t *req, const char *name, h2o_iovec_t *value);

/* Sets *value to the first header `token` and returns 1, or returns 0 if absent. */
int request_header(const h2o_req_t *req, const h2o_token_t *token, h2o_iovec_t *value);

/*
 * Picks the TTL from ?ttl= (read by cmd_ttl_parse) or from the body's, in
 * milliseconds (at most one may be given). Returns 0, or -1 after replying 400.
 */
int request_ttl(h2o_req_t *req, int64_t body_ttl_ms, int64_t *ttl_ms);

/*
 * Parses a single-write JSON body (body_parse_write) and its TTL. Returns 0,
 * or -1 after replying 400; either way the caller calls body_free.
 */
int request_parse_write(h2o_req_t *req, int with_key, struct body *body, int64_t *ttl_ms);

/* The Content-Type's media type, without parameters (empty for "; charset=utf-8"); 0 if there is no Content-Type. */
int request_media_type(const h2o_req_t *req, h2o_iovec_t *type);

/* True when the body is declared JSON (application/json, …+json) or not declared. */
int request_body_is_json(const h2o_req_t *req);

#endif
