/*
 * The command layer: the cache's operations as every protocol front sees
 * them (cmd.c). It applies the configured limits and the default TTL, and
 * turns store errors into one protocol-neutral status, which each front maps
 * to its own wire status in one table (HTTP: src/http/reply.c).
 */
#ifndef CACHETTE_CMD_H
#define CACHETTE_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "cachette/store.h"

enum cmd_status {
    CMD_OK = 0,
    CMD_CREATED,            /* a write created the key */
    CMD_NOT_FOUND,          /* no live entry */
    CMD_BAD_KEY,            /* empty, not UTF-8, or holds NUL */
    CMD_KEY_TOO_LONG,       /* over max_key_bytes */
    CMD_VALUE_TOO_LARGE,    /* over max_value_bytes */
    CMD_BAD_TTL,            /* negative or beyond the longest TTL */
    CMD_EXISTS,             /* create-only write, and the key exists */
    CMD_VERSION_MISMATCH,   /* a conditional write or delete did not match */
    CMD_NOT_INTEGER,        /* incr of a value that is not an integer */
    CMD_OVERFLOW,           /* incr past the int64 range */
    CMD_FULL,               /* does not fit in max memory */
    CMD_NO_MEMORY,          /* an allocation failed */
};

/* Longest TTL a client may ask for: 10 years, in milliseconds. */
#define CMD_MAX_TTL_MS (315360000LL * 1000)

struct cmd_limits {
    size_t max_key_bytes;
    size_t max_value_bytes;
    int64_t default_ttl_ms;     /* applied to writes that give no TTL; 0 = none */
};

struct cmd_ctx {
    struct store *store;
    struct cmd_limits limits;
};

/* Checks a key against the limits: CMD_OK, CMD_BAD_KEY or CMD_KEY_TOO_LONG. */
enum cmd_status cmd_check_key(const struct cmd_ctx *ctx, const char *key, size_t len);

/* A condition on the entry a write or delete touches. */
struct cmd_cond {
    enum store_set_mode mode; /* STORE_SET_ALWAYS, _IF_ABSENT or _IF_VERSION */
    uint64_t version;         /* with STORE_SET_IF_VERSION */
};

/* No condition. */
#define CMD_UNCONDITIONAL ((struct cmd_cond){STORE_SET_ALWAYS, 0})

/*
 * Checks a value against the limits before any write: CMD_OK,
 * CMD_VALUE_TOO_LARGE or CMD_BAD_TTL (ttl_ms as for cmd_set).
 */
enum cmd_status cmd_check_value(const struct cmd_ctx *ctx, const struct store_value *value, int64_t ttl_ms);

/*
 * Writes value under key if cond holds. ttl_ms: > 0 a lifetime, 0 the
 * default TTL. Returns CMD_CREATED or CMD_OK (replaced), or the reason it did
 * nothing (CMD_EXISTS, CMD_VERSION_MISMATCH for an unmet condition).
 */
enum cmd_status cmd_set(const struct cmd_ctx *ctx, const char *key, size_t key_len, const struct store_value *value,
                        int64_t ttl_ms, struct cmd_cond cond, struct store_meta *meta);

/*
 * Reads key into memory from alloc (see store_get; alloc NULL reads only the
 * metadata). CMD_OK or CMD_NOT_FOUND.
 */
enum cmd_status cmd_get(const struct cmd_ctx *ctx, const char *key, size_t key_len, store_alloc_fn alloc,
                        void *alloc_ctx, struct store_item *item);

/* Deletes key (if_version 0: whatever is there). CMD_OK, CMD_NOT_FOUND or CMD_VERSION_MISMATCH. */
enum cmd_status cmd_delete(const struct cmd_ctx *ctx, const char *key, size_t key_len, uint64_t if_version);

/*
 * Adds `by` to the integer under key (absent counts from 0; ttl_ms applies
 * when it creates the key; cond as for cmd_set). CMD_OK or CMD_CREATED with
 * the sum in *result, else CMD_NOT_INTEGER, CMD_OVERFLOW, CMD_EXISTS,
 * CMD_VERSION_MISMATCH, CMD_BAD_TTL, CMD_FULL, ….
 */
enum cmd_status cmd_incr(const struct cmd_ctx *ctx, const char *key, size_t key_len, int64_t by, int64_t ttl_ms,
                         struct cmd_cond cond, int64_t *result, struct store_meta *meta);

/* Visits live keys with prefix from cursor on, as store_scan. */
size_t cmd_scan(const struct cmd_ctx *ctx, uint64_t cursor, const char *prefix, size_t prefix_len, size_t limit,
                store_key_fn fn, void *fn_ctx, uint64_t *next_cursor);

/* Deletes every entry; returns how many were live. */
size_t cmd_flush(const struct cmd_ctx *ctx);


#endif
