/*
 * One entry: GET, HEAD, PUT and DELETE on /cache/{key}, and POST on
 * /cache/{key}/incr.
 *
 * Representations. A JSON write is stored as JSON; a PUT with any other
 * Content-Type stores the body's bytes with that type. GET answers the JSON
 * envelope {"key","value"} unless the client asks for the stored bytes, with
 * ?raw or an Accept that prefers the stored type to application/json; raw
 * bytes that are not UTF-8 appear in the envelope as "value_base64".
 *
 * Preconditions (RFC 9110 §13). Every answer carrying an entry has a strong
 * ETag made from the entry's version, one per representation (the
 * envelope's, which writes answer with, and the stored bytes'; a write's
 * If-Match takes either, a GET's compares the one it selects). A write with
 * If-Match or If-None-Match first reads the entry's version, evaluates the
 * fields against it, then writes only if the version is still that one (or,
 * for an absent entry, only if it is still absent): the check and the write
 * are one atomic step in the store, so two clients doing read-modify-write
 * cannot lose an update. If the entry changed in between, the fields are
 * evaluated again on the new state. That loop is the command layer's
 * (cmd/cond.c); this file only turns the header fields into its test.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cond.h"
#include "http/internal.h"
#include "http/jsonw.h"
#include "http/keypath.h"
#include "http/negotiate.h"
#include "http/reply.h"
#include "http/request.h"

static void add_etag(h2o_req_t *req, uint64_t version, enum etag_of which)
{
    char *etag = h2o_mem_alloc_pool(&req->pool, ETAG_RAW_LEN);
    size_t len = etag_format(etag, version, which);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, etag, len);
}

static void add_cache_control(h2o_req_t *req, int64_t ttl_ms)
{
    if (ttl_ms < 0) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
        return;
    }
    char *value = h2o_mem_alloc_pool(&req->pool, 32);
    int len = snprintf(value, 32, "max-age=%" PRId64, (ttl_ms + 999) / 1000);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, value, (size_t)len);
}

/* ---- preconditions ------------------------------------------------------ */

struct preconditions {
    int has_if_match, has_if_none_match;
    h2o_iovec_t if_match, if_none_match;
};

/* cmd_precondition_fn: RFC 9110 13.2.2 for a write; either representation's tag names the version. */
static bool preconditions_hold(void *arg, bool exists, uint64_t version)
{
    const struct preconditions *pre = arg;
    if (pre->has_if_match && !etag_matches(pre->if_match.base, pre->if_match.len, exists, version, 0, ETAG_OF_EITHER))
        return false;
    if (pre->has_if_none_match &&
        etag_matches(pre->if_none_match.base, pre->if_none_match.len, exists, version, 1, ETAG_OF_EITHER))
        return false;
    return true;
}

/*
 * The request's If-Match and If-None-Match as a command precondition, which
 * the command layer evaluates and pins to the entry's state (cmd/cond.h);
 * none when neither is sent. pre holds the headers and must outlive it.
 */
static struct cmd_precondition read_preconditions(const h2o_req_t *req, struct preconditions *pre)
{
    pre->has_if_match = request_header(req, H2O_TOKEN_IF_MATCH, &pre->if_match);
    pre->has_if_none_match = request_header(req, H2O_TOKEN_IF_NONE_MATCH, &pre->if_none_match);
    if (!pre->has_if_match && !pre->has_if_none_match)
        return CMD_PRE_NONE;
    return (struct cmd_precondition){.kind = CMD_PRE_TEST, .test = preconditions_hold, .test_arg = pre};
}

static void reply_precondition_failed(h2o_req_t *req)
{
    reply_error(req, 412, "precondition failed");
}

/* ---- GET and HEAD ------------------------------------------------------- */

static int wants_raw(const h2o_req_t *req, const struct store_item *item)
{
    h2o_iovec_t value, accept;
    if (request_query_param(req, "raw", &value))
        return !h2o_memis(value.base, value.len, H2O_STRLIT("0")) &&
               !h2o_memis(value.base, value.len, H2O_STRLIT("false"));
    return item->kind == STORE_KIND_BYTES && request_header(req, H2O_TOKEN_ACCEPT, &accept) &&
           accept_prefers(accept.base, accept.len, item->content_type, item->content_type_len);
}

static void reply_raw(h2o_req_t *req, const struct store_item *item)
{
    if (item->kind == STORE_KIND_BYTES) {
        reply_body(req, 200, item->content_type, item->content_type_len, item->data, item->len);
        return;
    }
    char *body = h2o_mem_alloc_pool(&req->pool, json_item_max(item));
    char *end = json_write_item(body, item);
    reply_json(req, 200, body, (size_t)(end - body));
}

/* {"key" | "key_base64":…,"value":… | "value_base64":…[,"content_type":…][,"ttl":seconds]} */
static void reply_envelope(h2o_req_t *req, const char *key, size_t key_len, const struct store_item *item)
{
    int text = json_item_is_text(item);
    size_t cap = JSONW_KEY_MEMBER_MAX(key_len) + (text ? json_item_max(item) : BASE64_LEN(item->len) + 2) +
                 JSONW_STRING_MAX(item->content_type_len) + 96;
    char *body = h2o_mem_alloc_pool(&req->pool, cap), *p = body;

    *p++ = '{';
    p = json_write_key_member(p, key, key_len);
    if (text) {
        memcpy(p, ",\"value\":", 9);
        p = json_write_item(p + 9, item);
    } else {
        memcpy(p, ",\"value_base64\":\"", 17);
        p = base64_encode(p + 17, (const unsigned char *)item->data, item->len);
        *p++ = '"';
    }
    if (item->kind == STORE_KIND_BYTES) {
        memcpy(p, ",\"content_type\":", 16);
        p = json_write_string(p + 16, item->content_type, item->content_type_len);
    }
    if (item->meta.ttl_ms >= 0)
        p += sprintf(p, ",\"ttl\":%" PRId64, (item->meta.ttl_ms + 999) / 1000);
    *p++ = '}';
    reply_json(req, 200, body, (size_t)(p - body));
}

static void get_entry(struct http_server *srv, h2o_req_t *req, const char *key, size_t key_len)
{
    struct store_item item;
    h2o_iovec_t im, inm;
    enum cmd_status st = cmd_get(srv->cmd, key, key_len, request_pool_alloc, &req->pool, &item);
    if (st != CMD_OK) {
        reply_cmd_error(req, srv->cmd, st, NULL); /* a 404 ignores preconditions (RFC 9110 13.2.1) */
        return;
    }
    /*
     * RFC 9110 13.2.2: If-Match first, for every method; then If-None-Match,
     * which a GET answers with 304. Both compare the tag of the
     * representation this request selects.
     */
    int raw = wants_raw(req, &item);
    enum etag_of selected = raw ? ETAG_OF_RAW : ETAG_OF_ENVELOPE;
    if (request_header(req, H2O_TOKEN_IF_MATCH, &im) &&
        !etag_matches(im.base, im.len, 1, item.meta.version, 0, selected)) {
        reply_precondition_failed(req);
        return;
    }
    add_etag(req, item.meta.version, selected);
    add_cache_control(req, item.meta.ttl_ms);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("Accept"));
    if (request_header(req, H2O_TOKEN_IF_NONE_MATCH, &inm) &&
        etag_matches(inm.base, inm.len, 1, item.meta.version, 1, selected))
        reply_not_modified(req);
    else if (raw)
        reply_raw(req, &item);
    else
        reply_envelope(req, key, key_len, &item);
}

/* ---- PUT and DELETE ------------------------------------------------------ */

/* Whether every byte is a space, a tab or visible ASCII. */
static int is_printable_ascii(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((text[i] < 0x20 && text[i] != '\t') || (unsigned char)text[i] > 0x7e)
            return 0;
    return 1;
}

static void put_entry(struct http_server *srv, h2o_req_t *req, const char *key, size_t key_len)
{
    struct body body = {0};
    struct store_value value;
    struct store_meta meta;
    int64_t ttl_ms;

    if (request_body_is_json(req)) {
        if (request_parse_write(req, 0, &body, &ttl_ms) != 0)
            goto done;
        value = body.items[0].value;
    } else {
        h2o_iovec_t type = {NULL, 0}, media = {NULL, 0};
        request_header(req, H2O_TOKEN_CONTENT_TYPE, &type); /* present: an absent one is JSON */
        request_media_type(req, &media);
        if (h2o_lcstris(media.base, media.len, H2O_STRLIT("application/x-www-form-urlencoded"))) {
            /* curl -d's default: far more often JSON sent without its type than a form meant to be kept. */
            reply_error(req, 415,
                        "Content-Type application/x-www-form-urlencoded is not stored: send JSON with Content-Type: "
                        "application/json, or bytes with their own type");
            goto done;
        }
        if (media.len == 0) {
            reply_error(req, 400, "Content-Type is empty: leave it out for JSON, or name the bytes' type");
            goto done;
        }
        if (!is_printable_ascii(type.base, type.len)) {
            /* It is echoed in a header and in JSON envelopes: a media type is ASCII (RFC 9110 §8.3). */
            reply_error(req, 400, "Content-Type must be printable ASCII");
            goto done;
        }
        if (request_ttl(req, 0, &ttl_ms) != 0)
            goto done;
        value = (struct store_value){STORE_KIND_BYTES, req->entity.base, req->entity.len, type.base, type.len};
    }

    struct preconditions headers;
    struct cmd_precondition pre = read_preconditions(req, &headers);
    enum cmd_status st = cmd_set_if(srv->cmd, key, key_len, &value, ttl_ms, &pre, &meta);
    if (st == CMD_CREATED || st == CMD_OK) {
        add_etag(req, meta.version, ETAG_OF_ENVELOPE);
        if (st == CMD_CREATED) {
            size_t path_len = req->query_at == SIZE_MAX ? req->path.len : req->query_at;
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, req->path.base, path_len);
        }
        reply_message(req, st == CMD_CREATED ? 201 : 200, st == CMD_CREATED ? "created" : "replaced");
    } else {
        reply_cmd_error(req, srv->cmd, st, NULL);
    }
done:
    body_free(&body);
}

static void delete_entry(struct http_server *srv, h2o_req_t *req, const char *key, size_t key_len)
{
    struct preconditions headers;
    struct cmd_precondition pre = read_preconditions(req, &headers);
    enum cmd_status st = cmd_delete_if(srv->cmd, key, key_len, &pre);
    if (st == CMD_OK)
        reply_message(req, 200, "deleted");
    else
        reply_cmd_error(req, srv->cmd, st, NULL);
}

/* ---- POST /cache/{key}/incr ---------------------------------------------- */

static void incr_entry(struct http_server *srv, h2o_req_t *req, const char *key, size_t key_len)
{
    int64_t by, body_ttl_ms, ttl_ms, sum;
    struct store_meta meta;
    char err[256];

    if (!request_method_is(req, H2O_STRLIT("POST"))) {
        reply_method_not_allowed(req, "POST");
        return;
    }
    if (body_parse_incr(req->entity.base, req->entity.len, &by, &body_ttl_ms, err, sizeof(err)) != 0) {
        reply_error(req, 400, err);
        return;
    }
    if (request_ttl(req, body_ttl_ms, &ttl_ms) != 0)
        return;
    struct preconditions headers;
    struct cmd_precondition pre = read_preconditions(req, &headers);
    enum cmd_status st = cmd_incr_if(srv->cmd, key, key_len, by, ttl_ms, &pre, &sum, &meta);
    if (st != CMD_OK && st != CMD_CREATED) {
        reply_cmd_error(req, srv->cmd, st, NULL);
        return;
    }
    add_etag(req, meta.version, ETAG_OF_ENVELOPE);
    char *body = h2o_mem_alloc_pool(&req->pool, JSONW_KEY_MEMBER_MAX(key_len) + 48), *p = body;
    *p++ = '{';
    p = json_write_key_member(p, key, key_len);
    p += sprintf(p, ",\"value\":%" PRId64 "}", sum);
    reply_json(req, 200, body, (size_t)(p - body));
}

/* ---- routing ------------------------------------------------------------- */

void cache_entry_handle(struct http_server *srv, h2o_req_t *req, const char *raw, size_t raw_len)
{
    /* {key} is one path segment (a key holding '/' is sent as %2F); "/incr" may follow it. */
    const char *slash = memchr(raw, '/', raw_len);
    int incr = 0;
    if (slash != NULL) {
        incr = h2o_memis(slash, (size_t)(raw + raw_len - slash), H2O_STRLIT("/incr"));
        if (!incr) {
            reply_error(req, 404, "not found");
            return;
        }
        raw_len = (size_t)(slash - raw);
    }

    char *key = h2o_mem_alloc_pool(&req->pool, raw_len + 1);
    long decoded = keypath_decode(raw, raw_len, key);
    if (decoded < 0) {
        reply_error(req, 400, "key has a malformed percent-escape");
        return;
    }
    size_t key_len = (size_t)decoded;
    if (key_len > srv->cmd->limits.max_key_bytes) {
        char message[96];
        cmd_status_message(srv->cmd, CMD_KEY_TOO_LONG, message, sizeof(message));
        reply_error(req, 414, message); /* the key is in the URI: 414 here, 413 in a body */
        return;
    }

    if (incr)
        incr_entry(srv, req, key, key_len);
    else if (request_is_get_or_head(req))
        get_entry(srv, req, key, key_len);
    else if (request_method_is(req, H2O_STRLIT("PUT")))
        put_entry(srv, req, key, key_len);
    else if (request_method_is(req, H2O_STRLIT("DELETE")))
        delete_entry(srv, req, key, key_len);
    else
        reply_method_not_allowed(req, "GET, HEAD, PUT, DELETE");
}
