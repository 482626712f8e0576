/* Sending JSON responses, and the one table from command status to HTTP status (reply.c). */
#ifndef CACHETTE_HTTP_REPLY_H
#define CACHETTE_HTTP_REPLY_H

#include <h2o.h>

#include "cmd/cmd.h"

/* Sends body with the status, Content-Type and Content-Length; HEAD gets no body. */
void reply_body(h2o_req_t *req, int status, const char *content_type, size_t type_len, const char *body, size_t len);

/* reply_body with Content-Type application/json. */
void reply_json(h2o_req_t *req, int status, const char *body, size_t len);

/* Sends 304 Not Modified: the headers already added, no body. */
void reply_not_modified(h2o_req_t *req);

/* Sends {"error": message} with the status. */
void reply_error(h2o_req_t *req, int status, const char *message);

/*
 * Writes the message for a failed command into buf (prefix, if not NULL,
 * first) and returns the HTTP status it maps to.
 */
int reply_cmd_message(const struct cmd_ctx *cmd, enum cmd_status status, const char *prefix, char *buf, size_t size);

/*
 * Sends the error response for a failed command (any status but CMD_OK and
 * CMD_CREATED); prefix, if not NULL, goes before the message ("entries[3]: ").
 */
void reply_cmd_error(h2o_req_t *req, const struct cmd_ctx *cmd, enum cmd_status status, const char *prefix);

/* Sends {"message": text} with the status. */
void reply_message(h2o_req_t *req, int status, const char *text);

/* Sends 413 {"error":"request body is larger than max-body-bytes (N)"}, as the error filter does for h2o's own. */
void reply_body_too_large(h2o_req_t *req, size_t max_body_bytes);

/* Sends 405 with an Allow header listing the methods the resource takes. */
void reply_method_not_allowed(h2o_req_t *req, const char *allow);

/*
 * Registers, on pathconf, the filter that turns h2o's own text/plain error
 * responses (413 for a body over the limit, 417, 400…) into JSON errors.
 */
void reply_register_error_filter(h2o_pathconf_t *pathconf, size_t max_body_bytes);

#endif
