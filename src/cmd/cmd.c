/*
 * The command layer (see cmd.h): validation that every front shares, then
 * one call into the store, and the wording of every refusal. It holds no
 * state of its own and takes no locks; the store does all the
 * synchronisation. Keys are any non-empty bytes, as Redis's are: each front
 * says how it writes one that is not text (HTTP: percent-encoded in a path,
 * base64 in JSON).
 *
 * Messages are formatted here from the limits and the constants rather than
 * written out by each front, so that a limit changed in one place changes
 * every message that names it; a front adds only its own prefix ("entries[3]:
 * ") and its status code.
 */
#include "cmd/cmd.h"

#include <stdio.h>
#include <string.h>

static enum cmd_status from_store(int err)
{
    switch (err) {
    case STORE_OK:
        return CMD_OK;
    case STORE_ENOTFOUND:
        return CMD_NOT_FOUND;
    case STORE_EEXISTS:
        return CMD_EXISTS;
    case STORE_EVERSION:
        return CMD_VERSION_MISMATCH;
    case STORE_EFULL:
        return CMD_FULL;
    case STORE_ENOTINT:
        return CMD_NOT_INTEGER;
    case STORE_EOVERFLOW:
        return CMD_OVERFLOW;
    case STORE_EINVAL:
        return CMD_BAD_TTL; /* lengths were checked here first, so only the TTL is left */
    }
    return CMD_NO_MEMORY;
}

enum cmd_status cmd_check_key(const struct cmd_ctx *ctx, size_t len)
{
    if (len == 0)
        return CMD_BAD_KEY;
    if (len > ctx->limits.max_key_bytes)
        return CMD_KEY_TOO_LONG;
    return CMD_OK;
}

enum cmd_status cmd_check_ttl(int64_t ttl_ms)
{
    return ttl_ms < 0 || ttl_ms > CMD_MAX_TTL_MS ? CMD_BAD_TTL : CMD_OK;
}

enum cmd_status cmd_check_value(const struct cmd_ctx *ctx, const struct store_value *value, int64_t ttl_ms)
{
    if (value->kind != STORE_KIND_JSON && value->kind != STORE_KIND_STRING && value->kind != STORE_KIND_BYTES)
        return CMD_BAD_VALUE;
    if (value->len > ctx->limits.max_value_bytes)
        return CMD_VALUE_TOO_LARGE;
    if (value->kind == STORE_KIND_BYTES && value->content_type_len > STORE_MAX_CONTENT_TYPE_LEN)
        return CMD_CONTENT_TYPE_TOO_LONG;
    return cmd_check_ttl(ttl_ms);
}

static int64_t effective_ttl(const struct cmd_ctx *ctx, int64_t ttl_ms)
{
    return ttl_ms ? ttl_ms : ctx->limits.default_ttl_ms;
}

enum cmd_status cmd_set(const struct cmd_ctx *ctx, const char *key, size_t key_len, const struct store_value *value,
                        int64_t ttl_ms, struct cmd_cond cond, struct store_meta *meta)
{
    enum cmd_status st = cmd_check_key(ctx, key_len);
    if (st == CMD_OK)
        st = cmd_check_value(ctx, value, ttl_ms);
    if (st != CMD_OK)
        return st;
    struct store_meta own;
    if (meta == NULL)
        meta = &own; /* CMD_CREATED needs it even when the caller does not */
    struct store_set_opts opts = {.ttl_ms = effective_ttl(ctx, ttl_ms), .mode = cond.mode, .version = cond.version};
    st = from_store(store_set(ctx->store, key, key_len, value, &opts, meta));
    if (st == CMD_OK && meta->created)
        st = CMD_CREATED;
    return st;
}

enum cmd_status cmd_get(const struct cmd_ctx *ctx, const char *key, size_t key_len, store_alloc_fn alloc,
                        void *alloc_ctx, struct store_item *item)
{
    if (cmd_check_key(ctx, key_len) != CMD_OK)
        return CMD_NOT_FOUND; /* no such key can have been stored */
    return from_store(store_get(ctx->store, key, key_len, alloc, alloc_ctx, item));
}

enum cmd_status cmd_peek(const struct cmd_ctx *ctx, const char *key, size_t key_len, struct store_meta *meta)
{
    if (cmd_check_key(ctx, key_len) != CMD_OK)
        return CMD_NOT_FOUND;
    return from_store(store_peek(ctx->store, key, key_len, meta));
}

enum cmd_status cmd_set_ttl(const struct cmd_ctx *ctx, const char *key, size_t key_len, int64_t ttl_ms,
                            uint64_t if_version, struct store_meta *meta)
{
    enum cmd_status st = cmd_check_key(ctx, key_len);
    if (st == CMD_OK)
        st = cmd_check_ttl(ttl_ms);
    if (st != CMD_OK)
        return st;
    return from_store(store_set_ttl(ctx->store, key, key_len, ttl_ms, if_version, meta));
}

enum cmd_status cmd_delete(const struct cmd_ctx *ctx, const char *key, size_t key_len, uint64_t if_version)
{
    if (cmd_check_key(ctx, key_len) != CMD_OK)
        return CMD_NOT_FOUND;
    return from_store(store_delete(ctx->store, key, key_len, if_version));
}

enum cmd_status cmd_incr(const struct cmd_ctx *ctx, const char *key, size_t key_len, int64_t by, int64_t ttl_ms,
                         struct cmd_cond cond, int64_t *result, struct store_meta *meta)
{
    enum cmd_status st = cmd_check_key(ctx, key_len);
    if (st != CMD_OK)
        return st;
    if ((st = cmd_check_ttl(ttl_ms)) != CMD_OK)
        return st;
    struct store_meta own;
    int64_t sum;
    if (meta == NULL)
        meta = &own;
    if (result == NULL)
        result = &sum;
    struct store_set_opts opts = {.ttl_ms = effective_ttl(ctx, ttl_ms), .mode = cond.mode, .version = cond.version};
    st = from_store(store_incr(ctx->store, key, key_len, by, &opts, result, meta));
    if (st == CMD_OK && meta->created)
        st = CMD_CREATED;
    return st;
}

size_t cmd_scan(const struct cmd_ctx *ctx, uint64_t cursor, const char *prefix, size_t prefix_len, size_t limit,
                store_key_fn fn, void *fn_ctx, uint64_t *next_cursor)
{
    return store_scan(ctx->store, cursor, prefix, prefix_len, limit, fn, fn_ctx, next_cursor);
}

size_t cmd_flush(const struct cmd_ctx *ctx)
{
    return store_flush(ctx->store);
}

/* ---- messages ------------------------------------------------------------ */

/* "<what> (<limit>)", or "<what>" alone when there is no ctx to take the limit from. */
static int with_limit(char *buf, size_t size, const char *what, const struct cmd_ctx *ctx, size_t limit)
{
    return ctx != NULL ? snprintf(buf, size, "%s (%zu)", what, limit) : snprintf(buf, size, "%s", what);
}

int cmd_status_message(const struct cmd_ctx *ctx, enum cmd_status status, char *buf, size_t size)
{
    const struct cmd_limits none = {0}, *limits = ctx != NULL ? &ctx->limits : &none;
    switch (status) {
    case CMD_OK:
        return snprintf(buf, size, "ok");
    case CMD_CREATED:
        return snprintf(buf, size, "created");
    case CMD_NOT_FOUND:
        return snprintf(buf, size, "key not found");
    case CMD_BAD_KEY:
        return snprintf(buf, size, "key must not be empty");
    case CMD_KEY_TOO_LONG:
        return with_limit(buf, size, "key is longer than max-key-bytes", ctx, limits->max_key_bytes);
    case CMD_VALUE_TOO_LARGE:
        return with_limit(buf, size, "value is larger than max-value-bytes", ctx, limits->max_value_bytes);
    case CMD_BAD_TTL:
        return snprintf(buf, size, "ttl must be a number of seconds above 0 and at most %d", CMD_MAX_TTL_SECONDS);
    case CMD_EXISTS:
        return snprintf(buf, size, "precondition failed: key exists");
    case CMD_VERSION_MISMATCH:
        return snprintf(buf, size, "precondition failed");
    case CMD_NOT_INTEGER:
        return snprintf(buf, size, "value is not an integer");
    case CMD_OVERFLOW:
        return snprintf(buf, size, "increment would overflow a 64-bit integer");
    case CMD_FULL:
        return snprintf(buf, size, "not enough memory: the entry does not fit in max-memory");
    case CMD_NO_MEMORY:
        return snprintf(buf, size, "out of memory, try again later");
    case CMD_CONTENT_TYPE_TOO_LONG:
        return snprintf(buf, size, "content type is longer than %u bytes", STORE_MAX_CONTENT_TYPE_LEN);
    case CMD_BAD_VALUE:
        return snprintf(buf, size, "value has a kind the store does not know");
    case CMD_BATCH_TOO_LARGE:
        return with_limit(buf, size, "batch has more items than max-batch", ctx, limits->max_batch);
    }
    return snprintf(buf, size, "internal error (status %d)", (int)status);
}
