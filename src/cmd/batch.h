/*
 * Batches (batch.c): many writes checked as one, many reads in one call.
 * The items name no protocol: a front fills them from its own request.
 */
#ifndef CACHETTE_CMD_BATCH_H
#define CACHETTE_CMD_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd/cmd.h"

/* One entry to write. */
struct cmd_item {
    const char *key;
    size_t key_len;
    struct store_value value;
    int64_t ttl_ms; /* as for cmd_set: > 0 a lifetime, 0 the default TTL */
};

/* What cmd_mset did. */
struct cmd_mset_result {
    size_t stored;    /* items written: all n, none, or those before a write that failed */
    size_t failed_at; /* the index of the item refused or whose write failed; n if none was */
    bool checked;     /* every item passed the checks, so a failure is a write's (stored may be > 0) */
};

/*
 * Writes items[0..n) all or nothing as far as checking goes: every item's
 * key, value and TTL is checked (as cmd_set would) before any is written,
 * so a bad item anywhere writes nothing. Then they are written in order,
 * unconditionally; the writes are not one transaction (a reader may see
 * some before others).
 *
 * Returns CMD_OK (all written); CMD_BATCH_TOO_LARGE (n over max_batch) or
 * the first bad item's status, with nothing written; or, when a write
 * fails (CMD_FULL, CMD_NO_MEMORY), its status, with the items before it
 * written. *res says which (see struct cmd_mset_result).
 */
enum cmd_status cmd_mset(const struct cmd_ctx *ctx, const struct cmd_item *items, size_t n,
                         struct cmd_mset_result *res);

/* One key to read and what was found. */
struct cmd_read {
    const char *key; /* in */
    size_t key_len;  /* in */
    bool found;      /* out: a live entry was read into item */
    struct store_item item;
};

/*
 * Called by cmd_mget after reading reads[i]; returns 0 to go on, anything
 * else to stop there (a front bounding its answer's size stops as soon as it
 * is over, before reading the rest).
 */
typedef int (*cmd_read_fn)(void *arg, size_t i, const struct cmd_read *read);

/*
 * Reads reads[0..n) in order into memory from alloc (as cmd_get; a key asked
 * twice is read twice, a key that cannot exist is not found), calling fn
 * (may be NULL) after each. Returns CMD_OK with *done = how many were read
 * (fewer than n when fn stopped it), CMD_BATCH_TOO_LARGE (nothing read), or
 * CMD_NO_MEMORY when alloc failed (*done: those before it).
 */
enum cmd_status cmd_mget(const struct cmd_ctx *ctx, struct cmd_read *reads, size_t n, store_alloc_fn alloc,
                         void *alloc_ctx, cmd_read_fn fn, void *fn_arg, size_t *done);

#endif
