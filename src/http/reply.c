/*
 * Responses. Every response of cachette's is JSON with a Content-Length,
 * which keeps HTTP/1.1 connections alive for errors too (h2o 2.2.5 closes the
 * connection after a non-200 response of unknown length). Command outcomes
 * map to HTTP statuses in `cmd_http_status` below and nowhere else; their
 * messages are the command layer's, which every front shares.
 *
 * h2o answers some bad requests itself before any handler runs (a declared
 * body over max-body-bytes: 413; an unknown Expect: 417) with a text/plain
 * body. The error filter registered here rewrites those into the same
 * {"error": …} form, so clients see one error format. Malformed HTTP that h2o
 * cannot parse at all is answered with its fixed text "400 Bad Request", which
 * no filter sees; docs/API.md says so.
 */
#include "http/reply.h"

#include <stdio.h>
#include <string.h>

#include "http/jsonw.h"

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 304:
        return "Not Modified";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 431:
        return "Request Header Fields Too Large";
    case 417:
        return "Expectation Failed";
    case 503:
        return "Service Unavailable";
    case 507:
        return "Insufficient Storage";
    }
    return status < 500 ? "Client Error" : "Server Error";
}

void reply_body(h2o_req_t *req, int status, const char *content_type, size_t type_len, const char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, type_len);
    h2o_start_response(req, &generator);
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    } else {
        h2o_iovec_t buf = h2o_iovec_init(body, len);
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
    }
}

void reply_json(h2o_req_t *req, int status, const char *body, size_t len)
{
    reply_body(req, status, H2O_STRLIT("application/json"), body, len);
}

void reply_not_modified(h2o_req_t *req)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = 304;
    req->res.reason = "Not Modified";
    h2o_start_response(req, &generator);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

/* Sends {"<member>": text}. */
static void reply_member(h2o_req_t *req, int status, const char *member, const char *text)
{
    size_t member_len = strlen(member), text_len = strlen(text);
    char *body = h2o_mem_alloc_pool(&req->pool, JSONW_STRING_MAX(member_len + text_len) + 3);
    char *p = body;
    *p++ = '{';
    p = json_write_string(p, member, member_len);
    *p++ = ':';
    p = json_write_string(p, text, text_len);
    *p++ = '}';
    reply_json(req, status, body, (size_t)(p - body));
}

void reply_error(h2o_req_t *req, int status, const char *message)
{
    reply_member(req, status, "error", message);
}

void reply_message(h2o_req_t *req, int status, const char *text)
{
    reply_member(req, status, "message", text);
}

void reply_method_not_allowed(h2o_req_t *req, const char *allow)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    reply_error(req, 405, "method not allowed");
}

/* The HTTP status of each command outcome; the words are the command layer's (cmd_status_message). */
static const int cmd_http_status[] = {
    [CMD_NOT_FOUND] = 404,
    [CMD_BAD_KEY] = 400,
    [CMD_KEY_TOO_LONG] = 413,
    [CMD_VALUE_TOO_LARGE] = 413,
    [CMD_BAD_TTL] = 400,
    [CMD_EXISTS] = 412,
    [CMD_VERSION_MISMATCH] = 412,
    [CMD_NOT_INTEGER] = 409,
    [CMD_OVERFLOW] = 409,
    [CMD_FULL] = 507,
    [CMD_NO_MEMORY] = 503,
    [CMD_CONTENT_TYPE_TOO_LONG] = 400,
    [CMD_BAD_VALUE] = 400,
    [CMD_BATCH_TOO_LARGE] = 413,
};

int reply_cmd_message(const struct cmd_ctx *cmd, enum cmd_status status, const char *prefix, char *buf, size_t size)
{
    size_t at = prefix != NULL ? (size_t)snprintf(buf, size, "%s", prefix) : 0;
    if (at >= size)
        at = size - 1;
    if (status <= CMD_CREATED || status >= sizeof(cmd_http_status) / sizeof(cmd_http_status[0]) ||
        cmd_http_status[status] == 0) {
        snprintf(buf + at, size - at, "internal error");
        return 500;
    }
    cmd_status_message(cmd, status, buf + at, size - at);
    return cmd_http_status[status];
}

void reply_cmd_error(h2o_req_t *req, const struct cmd_ctx *cmd, enum cmd_status status, const char *prefix)
{
    char message[160];
    int http_status = reply_cmd_message(cmd, status, prefix, message, sizeof(message));
    reply_error(req, http_status, message);
}

/* ---- rewriting h2o's own error responses ------------------------------- */

struct error_filter {
    h2o_filter_t super;
    size_t max_body_bytes;
};

struct error_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
};

static void error_ostream_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                               h2o_send_state_t state)
{
    struct error_ostream *ostr = (struct error_ostream *)self;
    (void)bufs;
    /* h2o's error bodies arrive in one final send (h2o_send_inline); replace them whole. */
    if (bufcnt != 0 && h2o_send_state_is_in_progress(state) == 0)
        h2o_ostream_send_next(self, req, &ostr->body, 1, state);
    else
        h2o_ostream_send_next(self, req, NULL, 0, state);
}

static void format_body_too_large(char *buf, size_t size, size_t max_body_bytes)
{
    snprintf(buf, size, "request body is larger than max-body-bytes (%zu)", max_body_bytes);
}

void reply_body_too_large(h2o_req_t *req, size_t max_body_bytes)
{
    char message[96];
    format_body_too_large(message, sizeof(message), max_body_bytes);
    reply_error(req, 413, message);
}

static void error_filter_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    struct error_filter *filter = (struct error_filter *)self;
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (req->res.status >= 400 && ct != -1 && req->res.headers.entries[ct].value.len >= 10 &&
        memcmp(req->res.headers.entries[ct].value.base, "text/plain", 10) == 0) {
        char message[128];
        if (req->res.status == 413)
            format_body_too_large(message, sizeof(message), filter->max_body_bytes);
        else if (req->res.status == 417)
            snprintf(message, sizeof(message), "expectation failed: only \"Expect: 100-continue\" is supported");
        else
            snprintf(message, sizeof(message), "%s", req->res.reason);
        size_t len = strlen(message);
        char *body = h2o_mem_alloc_pool(&req->pool, JSONW_STRING_MAX(len) + 16);
        char *p = body;
        memcpy(p, "{\"error\":", 9);
        p = json_write_string(p + 9, message, len);
        *p++ = '}';
        req->res.headers.entries[ct].value = h2o_iovec_init(H2O_STRLIT("application/json"));
        req->res.content_length = (size_t)(p - body);
        struct error_ostream *ostr = (void *)h2o_add_ostream(req, sizeof(*ostr), slot);
        ostr->super.do_send = error_ostream_send;
        ostr->body = h2o_iovec_init(body, (size_t)(p - body));
        slot = &ostr->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

void reply_register_error_filter(h2o_pathconf_t *pathconf, size_t max_body_bytes)
{
    struct error_filter *filter = (void *)h2o_create_filter(pathconf, sizeof(*filter));
    filter->super.on_setup_ostream = error_filter_setup;
    filter->max_body_bytes = max_body_bytes;
}
