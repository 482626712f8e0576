/* Sending JSON responses, and the one table from command status to HTTP status (reply.c). */
#ifndef CACHETTE_HTTP_REPLY_H
#define CACHETTE_HTTP_REPLY_H

#include <h2o.h>

#include "cmd/cmd.h"

/* Sends body (JSON text) with the status, Content-Type and Content-Length; HEAD gets no body. */
void reply_json(h2o_req_t *req, int status, const char *body, size_t len);

/* Sends {"error": message} with the status. */
void reply_error(h2o_req_t *req, int status, const char *message);

/* Sends the error response for a failed command (any status but CMD_OK/CMD_CREATED). */
void reply_cmd_error(h2o_req_t *req, const struct cmd_ctx *cmd, enum cmd_status status);

/* Sends {"message": text} with the status. */
void reply_message(h2o_req_t *req, int status, const char *text);

/* Sends 405 with an Allow header listing the methods the resource takes. */
void reply_method_not_allowed(h2o_req_t *req, const char *allow);

/*
 * Registers, on pathconf, the filter that turns h2o's own text/plain error
 * responses (413 for a body over the limit, 417, 400…) into JSON errors.
 */
void reply_register_error_filter(h2o_pathconf_t *pathconf, size_t max_body_bytes);

#endif
