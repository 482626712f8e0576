/*
 * The collection: POST /cache (the seed's write), GET /cache (list keys),
 * DELETE /cache (flush), and the batches POST /cache/_mget and _mset.
 *
 * Listing pages through the store's scan cursor, which guarantees that a key
 * present for the whole listing is returned at least once even while other
 * clients write and the tables grow; a key may come back twice. The cursor
 * is opaque to clients: a decimal number, null when the listing is complete.
 *
 * The batches' rules (the size limit, _mset checking every item before
 * writing any) are the command layer's (cmd/batch.h); this file parses the
 * JSON, adds what only HTTP has (?ttl= for every item) and writes the answer.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cmd/decimal.h"
#include "cmd/utf8.h"
#include "http/internal.h"
#include "http/jsonw.h"
#include "http/keypath.h"
#include "http/negotiate.h"
#include "http/reply.h"
#include "http/request.h"

#define LIST_DEFAULT_LIMIT 100
#define LIST_MAX_LIMIT 1000

/* ---- POST /cache --------------------------------------------------------- */

static void store_one(struct http_server *srv, h2o_req_t *req)
{
    struct body body;
    struct store_meta meta;
    int64_t ttl_ms;
    if (request_parse_write(req, 1, &body, &ttl_ms) == 0) {
        const struct cmd_item *item = &body.items[0];
        enum cmd_status st = cmd_set(srv->cmd, item->key, item->key_len, &item->value, ttl_ms, CMD_UNCONDITIONAL, &meta);
        if (st == CMD_OK || st == CMD_CREATED)
            reply_message(req, 200, "stored");
        else
            reply_cmd_error(req, srv->cmd, st, NULL);
    }
    body_free(&body);
}

/* ---- GET /cache ---------------------------------------------------------- */

struct key_list {
    h2o_mem_pool_t *pool;
    h2o_iovec_t *keys;
    size_t count, capacity, json_bytes;
};

/* store_key_fn: runs under a shard's read lock, so it only copies into the pool. */
static void collect_key(void *ctx, const char *key, size_t len)
{
    struct key_list *list = ctx;
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? 2 * list->capacity : 64;
        h2o_iovec_t *keys = h2o_mem_alloc_pool(list->pool, capacity * sizeof(*keys));
        if (list->count)
            memcpy(keys, list->keys, list->count * sizeof(*keys));
        list->keys = keys;
        list->capacity = capacity;
    }
    list->keys[list->count++] = h2o_strdup(list->pool, key, len);
    list->json_bytes += JSONW_STRING_MAX(len) + 1;
}

/* Parses ?limit= (default 100); returns 0 or -1 after replying 400. */
static int list_limit(h2o_req_t *req, size_t *limit)
{
    h2o_iovec_t text;
    *limit = LIST_DEFAULT_LIMIT;
    if (!request_query_param(req, "limit", &text))
        return 0;
    uint64_t n;
    if (decimal_parse(text.base, text.len, 4, &n) != 0 || n < 1 || n > LIST_MAX_LIMIT) {
        reply_error(req, 400, "limit must be a whole number from 1 to 1000");
        return -1;
    }
    *limit = n;
    return 0;
}

/* Parses ?cursor= (absent or empty: the start); returns 0 or -1 after replying 400. */
static int list_cursor(h2o_req_t *req, uint64_t *cursor)
{
    h2o_iovec_t text;
    *cursor = 0;
    if (!request_query_param(req, "cursor", &text) || text.len == 0)
        return 0;
    if (decimal_parse(text.base, text.len, 20, cursor) != 0) {
        reply_error(req, 400, "cursor must be a next_cursor value this server returned");
        return -1;
    }
    return 0;
}

static void list_keys(struct http_server *srv, h2o_req_t *req)
{
    struct key_list list = {.pool = &req->pool};
    h2o_iovec_t prefix_text = {"", 0};
    size_t limit;
    uint64_t cursor, next;

    if (list_limit(req, &limit) != 0 || list_cursor(req, &cursor) != 0)
        return;
    request_query_param(req, "prefix", &prefix_text);
    char *prefix = h2o_mem_alloc_pool(&req->pool, prefix_text.len + 1);
    long prefix_len = keypath_decode(prefix_text.base, prefix_text.len, prefix);
    if (prefix_len < 0) {
        reply_error(req, 400, "prefix has a malformed percent-escape");
        return;
    }
    cmd_scan(srv->cmd, cursor, prefix, (size_t)prefix_len, limit, collect_key, &list, &next);

    /* Text keys, then (only if there are any) the others in base64: a key is written in one of the two. */
    char *body = h2o_mem_alloc_pool(&req->pool, list.json_bytes + 96), *p = body;
    size_t binary = 0;
    p = stpcpy(p, "{\"keys\":[");
    for (size_t i = 0; i < list.count; i++) {
        if (!utf8_is_valid(list.keys[i].base, list.keys[i].len)) {
            list.keys[binary++] = list.keys[i]; /* keep it for the second array */
            continue;
        }
        if (p[-1] != '[')
            *p++ = ',';
        p = json_write_string(p, list.keys[i].base, list.keys[i].len);
    }
    if (binary > 0) {
        p = stpcpy(p, "],\"keys_base64\":[");
        for (size_t i = 0; i < binary; i++) {
            if (i > 0)
                *p++ = ',';
            *p++ = '"';
            p = base64_encode(p, (const unsigned char *)list.keys[i].base, list.keys[i].len);
            *p++ = '"';
        }
    }
    if (next == 0)
        p += sprintf(p, "],\"next_cursor\":null}");
    else
        p += sprintf(p, "],\"next_cursor\":\"%" PRIu64 "\"}", next);
    reply_json(req, 200, body, (size_t)(p - body));
}

/* ---- DELETE /cache ------------------------------------------------------- */

static void flush(struct http_server *srv, h2o_req_t *req)
{
    char body[64];
    int len = snprintf(body, sizeof(body), "{\"message\":\"flushed\",\"deleted\":%zu}", cmd_flush(srv->cmd));
    reply_json(req, 200, h2o_strdup(&req->pool, body, (size_t)len).base, (size_t)len);
}

void cache_collection_handle(struct http_server *srv, h2o_req_t *req)
{
    if (request_method_is(req, H2O_STRLIT("POST")))
        store_one(srv, req);
    else if (request_is_get_or_head(req))
        list_keys(srv, req);
    else if (request_method_is(req, H2O_STRLIT("DELETE")))
        flush(srv, req);
    else
        reply_method_not_allowed(req, "GET, HEAD, POST, DELETE");
}

/* ---- POST /cache/_mget and /cache/_mset ----------------------------------- */

enum { MISSING, TEXT, BINARY }; /* where an _mget key goes: the output pass that writes it */

/* The size of an _mget answer, summed as cmd_mget reads each entry. */
struct mget_answer {
    char *where;                  /* per key: MISSING, TEXT or BINARY */
    size_t len;                   /* the answer's exact length so far */
    size_t text, binary, missing; /* keys in each part */
    size_t max_len;               /* --max-mget-bytes */
};

/* cmd_read_fn: adds read i to the answer's length; stops once it is over the bound. */
static int mget_measure(void *arg, size_t i, const struct cmd_read *read)
{
    struct mget_answer *a = arg;
    a->where[i] = MISSING;
    a->len += json_string_len(read->key, read->key_len);
    if (read->found) {
        a->where[i] = json_item_is_text(&read->item) ? TEXT : BINARY;
        a->len += 1 + (a->where[i] == TEXT ? json_item_len(&read->item) : BASE64_LEN(read->item.len) + 2);
        a->len += a->binary == 0 && a->where[i] == BINARY ? sizeof(",\"entries_base64\":{}") - 1 : 0;
    }
    size_t *n = a->where[i] == TEXT ? &a->text : a->where[i] == BINARY ? &a->binary : &a->missing;
    a->len += (*n)++ > 0; /* the comma before it */
    return a->len > a->max_len;
}

/*
 * {"entries":{k:v,…},"entries_base64":{k:b64,…},"missing":[k,…]}; the second
 * only when needed. The body's exact length is summed as the values are
 * read, and a request whose answer would pass --max-mget-bytes gets 413 as
 * soon as it does: a small request naming a large value many times must not
 * make the server build gigabytes.
 */
static void mget(struct http_server *srv, h2o_req_t *req)
{
    struct body body;
    char err[256];
    int rc = body_parse_mget(req->entity.base, req->entity.len, srv->cmd->limits.max_batch, request_pool_alloc,
                             &req->pool, &body, err, sizeof(err));
    if (rc != 0) {
        reply_error(req, body_error_status(rc), err);
        body_free(&body);
        return;
    }
    struct cmd_read *reads = h2o_mem_alloc_pool(&req->pool, (body.count ? body.count : 1) * sizeof(*reads));
    for (size_t i = 0; i < body.count; i++)
        reads[i] = (struct cmd_read){.key = body.items[i].key, .key_len = body.items[i].key_len};
    struct mget_answer a = {.where = h2o_mem_alloc_pool(&req->pool, body.count + 1),
                            .len = sizeof("{\"entries\":{},\"missing\":[]}") - 1, /* the frame */
                            .max_len = srv->settings.max_mget_bytes};
    size_t done; /* fewer than asked when mget_measure stopped it: a.len tells */
    enum cmd_status st =
        cmd_mget(srv->cmd, reads, body.count, request_pool_alloc, &req->pool, mget_measure, &a, &done);
    if (st != CMD_OK || a.len > a.max_len) {
        if (st != CMD_OK) {
            reply_cmd_error(req, srv->cmd, st, NULL);
        } else {
            snprintf(err, sizeof(err),
                     "the entries asked for make a response over max-mget-bytes (%zu): ask for fewer or smaller ones",
                     srv->settings.max_mget_bytes);
            reply_error(req, 413, err);
        }
        body_free(&body);
        return;
    }

    char *out = h2o_mem_alloc_pool(&req->pool, a.len + 1), *p = out; /* + 1: stpcpy's NUL */
    static const struct {
        int where;
        const char *head;
    } passes[] = {{TEXT, "{\"entries\":{"}, {BINARY, "},\"entries_base64\":{"}, {MISSING, "},\"missing\":["}};
    for (size_t pass = 0; pass < sizeof(passes) / sizeof(passes[0]); pass++) {
        if (passes[pass].where == BINARY && a.binary == 0)
            continue;
        size_t n = 0;
        p = stpcpy(p, passes[pass].head);
        for (size_t i = 0; i < body.count; i++) {
            if (a.where[i] != passes[pass].where)
                continue;
            if (n++ > 0)
                *p++ = ',';
            p = json_write_string(p, reads[i].key, reads[i].key_len);
            if (a.where[i] == TEXT) {
                *p++ = ':';
                p = json_write_item(p, &reads[i].item);
            } else if (a.where[i] == BINARY) {
                *p++ = ':';
                *p++ = '"';
                p = base64_encode(p, (const unsigned char *)reads[i].item.data, reads[i].item.len);
                *p++ = '"';
            }
        }
    }
    p = stpcpy(p, "]}");
    body_free(&body);
    reply_json(req, 200, out, (size_t)(p - out));
}

static void mset(struct http_server *srv, h2o_req_t *req)
{
    struct body body;
    char err[256], prefix[32];
    int rc = body_parse_mset(req->entity.base, req->entity.len, srv->cmd->limits.max_batch, request_pool_alloc,
                             &req->pool, &body, err, sizeof(err));
    int64_t query_ttl_ms; /* ?ttl= applies to every item that names none */
    if (rc != 0) {
        reply_error(req, body_error_status(rc), err);
        goto done;
    }
    if (request_ttl(req, 0, &query_ttl_ms) != 0)
        goto done;
    for (size_t i = 0; i < body.count; i++) {
        struct cmd_item *it = &body.items[i];
        if (it->ttl_ms != 0 && query_ttl_ms != 0) {
            snprintf(err, sizeof(err), "entries[%zu]: ttl is given both in the query and in the body", i);
            reply_error(req, 400, err);
            goto done;
        }
        if (it->ttl_ms == 0)
            it->ttl_ms = query_ttl_ms;
    }
    struct cmd_mset_result res;
    enum cmd_status st = cmd_mset(srv->cmd, body.items, body.count, &res);
    if (st == CMD_OK) {
        int len = snprintf(err, sizeof(err), "{\"stored\":%zu}", res.stored);
        reply_json(req, 200, h2o_strdup(&req->pool, err, (size_t)len).base, (size_t)len);
        goto done;
    }
    if (res.failed_at < body.count)
        snprintf(prefix, sizeof(prefix), "entries[%zu]: ", res.failed_at);
    else
        prefix[0] = '\0';
    if (!res.checked) {
        reply_cmd_error(req, srv->cmd, st, prefix); /* nothing was written */
        goto done;
    }
    /* Items before this one are stored: say how many, beside the error. */
    int status = reply_cmd_message(srv->cmd, st, prefix, err, sizeof(err));
    char *out = h2o_mem_alloc_pool(&req->pool, JSONW_STRING_MAX(sizeof(err)) + 48), *p = out;
    p = json_write_string(stpcpy(p, "{\"error\":"), err, strlen(err));
    p += sprintf(p, ",\"stored\":%zu}", res.stored);
    reply_json(req, status, out, (size_t)(p - out));
done:
    body_free(&body);
}

void cache_batch_handle(struct http_server *srv, h2o_req_t *req, int is_mset)
{
    if (is_mset)
        mset(srv, req);
    else
        mget(srv, req);
}
