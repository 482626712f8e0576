/*
 * Request helpers shared by the handlers: methods, query parameters,
 * headers, and the TTL and body rules that every write follows, so that each
 * rule is written once and every endpoint answers a bad TTL the same way.
 */
#include "http/request.h"

#include "cmd/ttl.h"
#include "http/keypath.h"
#include "http/reply.h"

void *request_pool_alloc(void *pool, size_t size)
{
    return h2o_mem_alloc_pool((h2o_mem_pool_t *)pool, size);
}

int request_method_is(const h2o_req_t *req, const char *name, size_t len)
{
    return h2o_memis(req->method.base, req->method.len, name, len);
}

int request_is_get_or_head(const h2o_req_t *req)
{
    return request_method_is(req, H2O_STRLIT("GET")) || request_method_is(req, H2O_STRLIT("HEAD"));
}

h2o_iovec_t request_query(const h2o_req_t *req)
{
    if (req->query_at == SIZE_MAX)
        return h2o_iovec_init("", 0);
    return h2o_iovec_init(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
}

int request_query_param(const h2o_req_t *req, const char *name, h2o_iovec_t *value)
{
    h2o_iovec_t query = request_query(req);
    const char *text;
    size_t len;
    if (!query_find(query.base, query.len, name, &text, &len))
        return 0;
    *value = h2o_iovec_init(text, len);
    return 1;
}

int request_header(const h2o_req_t *req, const h2o_token_t *token, h2o_iovec_t *value)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i == -1)
        return 0;
    *value = req->headers.entries[i].value;
    return 1;
}

int request_ttl(h2o_req_t *req, int64_t body_ttl_ms, int64_t *ttl_ms)
{
    h2o_iovec_t text;
    *ttl_ms = body_ttl_ms;
    if (!request_query_param(req, "ttl", &text))
        return 0;
    if (body_ttl_ms != 0) {
        reply_error(req, 400, "ttl is given both in the query and in the body");
        return -1;
    }
    enum cmd_status st = cmd_ttl_parse(text.base, text.len, ttl_ms);
    if (st != CMD_OK) {
        char message[128];
        cmd_status_message(NULL, st, message, sizeof(message));
        reply_error(req, 400, message);
        return -1;
    }
    return 0;
}

int request_parse_write(h2o_req_t *req, int with_key, struct body *body, int64_t *ttl_ms)
{
    char err[256];
    int rc = body_parse_write(req->entity.base, req->entity.len, with_key, request_pool_alloc, &req->pool, body, err,
                              sizeof(err));
    if (rc != 0) {
        reply_error(req, body_error_status(rc), err);
        return -1;
    }
    return request_ttl(req, body->items[0].ttl_ms, ttl_ms);
}

int request_media_type(const h2o_req_t *req, h2o_iovec_t *type)
{
    if (!request_header(req, H2O_TOKEN_CONTENT_TYPE, type))
        return 0;
    size_t len = 0;
    /* The media type ends at ';' or at the optional whitespace (spaces, tabs) before it (RFC 9110 8.3.1). */
    while (len < type->len && type->base[len] != ';' && type->base[len] != ' ' && type->base[len] != '\t')
        len++;
    type->len = len;
    return 1;
}

int request_body_is_json(const h2o_req_t *req)
{
    h2o_iovec_t type;
    if (!request_media_type(req, &type))
        return 1;
    return h2o_lcstris(type.base, type.len, H2O_STRLIT("application/json")) ||
           (type.len >= 5 && h2o_lcstris(type.base + type.len - 5, 5, H2O_STRLIT("+json")));
}
