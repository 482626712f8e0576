/*
 * The command layer (see cmd.h): validation that every front shares, then
 * one call into the store. It holds no state of its own and takes no locks;
 * the store does all the synchronisation. Keys are UTF-8 text without NUL so
 * that they print the same in JSON, in logs and in any later protocol.
 */
#include "cmd/cmd.h"
#include "cmd/utf8.h"

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

enum cmd_status cmd_check_key(const struct cmd_ctx *ctx, const char *key, size_t len)
{
    if (len == 0 || memchr(key, '\0', len) != NULL || !utf8_is_valid(key, len))
        return CMD_BAD_KEY;
    if (len > ctx->limits.max_key_bytes)
        return CMD_KEY_TOO_LONG;
    return CMD_OK;
}

enum cmd_status cmd_check_value(const struct cmd_ctx *ctx, const struct store_value *value, int64_t ttl_ms)
{
    if (value->len > ctx->limits.max_value_bytes)
        return CMD_VALUE_TOO_LARGE;
    if (ttl_ms < 0 || ttl_ms > CMD_MAX_TTL_MS)
        return CMD_BAD_TTL;
    return CMD_OK;
}

static int64_t effective_ttl(const struct cmd_ctx *ctx, int64_t ttl_ms)
{
    return ttl_ms ? ttl_ms : ctx->limits.default_ttl_ms;
}

enum cmd_status cmd_set(const struct cmd_ctx *ctx, const char *key, size_t key_len, const struct store_value *value,
                        int64_t ttl_ms, struct cmd_cond cond, struct store_meta *meta)
{
    enum cmd_status st = cmd_check_key(ctx, key, key_len);
    if (st == CMD_OK)
        st = cmd_check_value(ctx, value, ttl_ms);
    if (st != CMD_OK)
        return st;
    struct store_set_opts opts = {.ttl_ms = effective_ttl(ctx, ttl_ms), .mode = cond.mode, .version = cond.version};
    st = from_store(store_set(ctx->store, key, key_len, value, &opts, meta));
    if (st == CMD_OK && meta->created)
        st = CMD_CREATED;
    return st;
}

enum cmd_status cmd_get(const struct cmd_ctx *ctx, const char *key, size_t key_len, store_alloc_fn alloc,
                        void *alloc_ctx, struct store_item *item)
{
    if (cmd_check_key(ctx, key, key_len) != CMD_OK)
        return CMD_NOT_FOUND; /* no such key can have been stored */
    return from_store(store_get(ctx->store, key, key_len, alloc, alloc_ctx, item));
}

enum cmd_status cmd_delete(const struct cmd_ctx *ctx, const char *key, size_t key_len, uint64_t if_version)
{
    if (cmd_check_key(ctx, key, key_len) != CMD_OK)
        return CMD_NOT_FOUND;
    return from_store(store_delete(ctx->store, key, key_len, if_version));
}

enum cmd_status cmd_incr(const struct cmd_ctx *ctx, const char *key, size_t key_len, int64_t by, int64_t ttl_ms,
                         struct cmd_cond cond, int64_t *result, struct store_meta *meta)
{
    enum cmd_status st = cmd_check_key(ctx, key, key_len);
    if (st != CMD_OK)
        return st;
    if (ttl_ms < 0 || ttl_ms > CMD_MAX_TTL_MS)
        return CMD_BAD_TTL;
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
