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
    CMD_BAD_KEY,            /* empty */
    CMD_KEY_TOO_LONG,       /* over max_key_bytes */
    CMD_VALUE_TOO_LARGE,    /* over max_value_bytes */
    CMD_BAD_TTL,            /* negative or beyond the longest TTL */
    CMD_EXISTS,             /* create-only write, and the key exists */
    CMD_VERSION_MISMATCH,   /* a conditional write or delete did not match */
    CMD_NOT_INTEGER,        /* incr of a value that is not an integer */
    CMD_OVERFLOW,           /* incr past the int64 range */
    CMD_FULL,               /* does not fit in max memory */
    CMD_NO_MEMORY,          /* an allocation failed */
    CMD_CONTENT_TYPE_TOO_LONG, /* over STORE_MAX_CONTENT_TYPE_LEN */
    CMD_BAD_VALUE,          /* a value kind the store does not know */
    CMD_BATCH_TOO_LARGE,    /* more items than max_batch */
};

/*
 * Longest TTL a client may ask for: 10 years. The one definition of that
 * limit: the TTL reader (ttl.h), the value checks and the messages all use
 * it. Kept a plain literal so that it can also be spelled into text.
 */
#define CMD_MAX_TTL_SECONDS 315360000
#define CMD_MAX_TTL_MS ((int64_t)CMD_MAX_TTL_SECONDS * 1000)

struct cmd_limits {
    size_t max_key_bytes;
    size_t max_value_bytes;
    int64_t default_ttl_ms;     /* applied to writes that give no TTL; 0 = none */
    size_t max_batch;           /* items in one cmd_mset or cmd_mget; 0 = no limit here (a front may have its own) */
};

struct cmd_ctx {
    struct store *store;
    struct cmd_limits limits;
    struct persist *persist; /* NULL without --data-dir: loading state, durability, snapshots (persist.h) */
};

/* Checks a key of len bytes (any bytes) against the limits: CMD_OK, CMD_BAD_KEY (empty) or CMD_KEY_TOO_LONG. */
enum cmd_status cmd_check_key(const struct cmd_ctx *ctx, size_t len);

/* A condition on the entry a write or delete touches. */
struct cmd_cond {
    enum store_set_mode mode; /* STORE_SET_ALWAYS, _IF_ABSENT or _IF_VERSION */
    uint64_t version;         /* with STORE_SET_IF_VERSION */
};

/* No condition. */
#define CMD_UNCONDITIONAL ((struct cmd_cond){STORE_SET_ALWAYS, 0})

/*
 * Checks a value and its TTL against the limits before any write, so that
 * every front refuses the same values with the same status: CMD_OK,
 * CMD_BAD_VALUE (unknown kind), CMD_VALUE_TOO_LARGE,
 * CMD_CONTENT_TYPE_TOO_LONG (STORE_KIND_BYTES only) or CMD_BAD_TTL (ttl_ms
 * as for cmd_set).
 */
enum cmd_status cmd_check_value(const struct cmd_ctx *ctx, const struct store_value *value, int64_t ttl_ms);

/* Checks a TTL in milliseconds as cmd_set takes it (0: the default; else 1 to CMD_MAX_TTL_MS): CMD_OK or CMD_BAD_TTL. */
enum cmd_status cmd_check_ttl(int64_t ttl_ms);

/*
 * Writes value under key if cond holds. ttl_ms: > 0 a lifetime, 0 the
 * default TTL. Returns CMD_CREATED or CMD_OK (replaced), or the reason it did
 * nothing (CMD_EXISTS, CMD_VERSION_MISMATCH for an unmet condition). meta may
 * be NULL.
 */
enum cmd_status cmd_set(const struct cmd_ctx *ctx, const char *key, size_t key_len, const struct store_value *value,
                        int64_t ttl_ms, struct cmd_cond cond, struct store_meta *meta);

/*
 * Reads key into memory from alloc (see store_get; alloc NULL reads only the
 * metadata). CMD_OK or CMD_NOT_FOUND.
 */
enum cmd_status cmd_get(const struct cmd_ctx *ctx, const char *key, size_t key_len, store_alloc_fn alloc,
                        void *alloc_ctx, struct store_item *item);

/*
 * Reads key's metadata (version, remaining TTL; meta may be NULL) with no
 * side effect: no hit or miss counted, recency untouched, so that checking a
 * precondition does not change what the cache keeps or reports. CMD_OK or
 * CMD_NOT_FOUND (also for a key that cannot exist).
 */
enum cmd_status cmd_peek(const struct cmd_ctx *ctx, const char *key, size_t key_len, struct store_meta *meta);

/*
 * Changes only key's expiry, atomically, keeping its value and version:
 * ttl_ms > 0 (at most CMD_MAX_TTL_MS) expires it that long from now, 0 makes
 * it never expire (unlike cmd_set, no default TTL applies). if_version 0:
 * whatever version is there. meta (may be NULL) gets the version and the new
 * TTL. CMD_OK, CMD_BAD_KEY, CMD_KEY_TOO_LONG, CMD_BAD_TTL, CMD_NOT_FOUND,
 * CMD_VERSION_MISMATCH, CMD_FULL or CMD_NO_MEMORY.
 */
enum cmd_status cmd_set_ttl(const struct cmd_ctx *ctx, const char *key, size_t key_len, int64_t ttl_ms,
                            uint64_t if_version, struct store_meta *meta);

/* Deletes key (if_version 0: whatever is there). CMD_OK, CMD_NOT_FOUND or CMD_VERSION_MISMATCH. */
enum cmd_status cmd_delete(const struct cmd_ctx *ctx, const char *key, size_t key_len, uint64_t if_version);

/*
 * Adds `by` to the integer under key (absent counts from 0; ttl_ms applies
 * when it creates the key; cond as for cmd_set). CMD_OK or CMD_CREATED with
 * the sum in *result, else CMD_NOT_INTEGER, CMD_OVERFLOW, CMD_EXISTS,
 * CMD_VERSION_MISMATCH, CMD_BAD_TTL, CMD_FULL, …. meta may be NULL.
 */
enum cmd_status cmd_incr(const struct cmd_ctx *ctx, const char *key, size_t key_len, int64_t by, int64_t ttl_ms,
                         struct cmd_cond cond, int64_t *result, struct store_meta *meta);

/* Visits live keys with prefix from cursor on, as store_scan. */
size_t cmd_scan(const struct cmd_ctx *ctx, uint64_t cursor, const char *prefix, size_t prefix_len, size_t limit,
                store_key_fn fn, void *fn_ctx, uint64_t *next_cursor);

/* Deletes every entry; returns how many were live. */
size_t cmd_flush(const struct cmd_ctx *ctx);

/*
 * Writes the message for a status into buf (at most size bytes, always
 * NUL-terminated when size > 0), with the limit it names formatted from
 * ctx's limits or from the constants ("key is longer than max-key-bytes
 * (1024)"), so that every front words a refusal alike. The text names no
 * protocol. ctx may be NULL (a parser that has none): a message that names
 * a configured limit then leaves the number out. Returns the message's
 * length, as snprintf.
 */
int cmd_status_message(const struct cmd_ctx *ctx, enum cmd_status status, char *buf, size_t size);


#endif
