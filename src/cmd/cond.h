/*
 * Conditional writes (cond.c): a write, delete or increment that happens
 * only if the entry is in a state the client named: "exists", "absent",
 * "has version v", or any test of the client's own on (exists, version),
 * which is how HTTP's If-Match / If-None-Match tag lists are expressed and
 * how another front would express SET NX / XX or a CAS token.
 */
#ifndef CACHETTE_CMD_COND_H
#define CACHETTE_CMD_COND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd/cmd.h"

enum cmd_precondition_kind {
    CMD_PRE_ANY = 0,    /* no condition: whatever is there, or nothing */
    CMD_PRE_IF_EXISTS,  /* a live entry, whatever its version (If-Match: *, XX) */
    CMD_PRE_IF_ABSENT,  /* no live entry (If-None-Match: *, NX) */
    CMD_PRE_IF_VERSION, /* the live entry whose version is .version */
    CMD_PRE_TEST,       /* .test(.test_arg, exists, version) returns true */
};

/*
 * Decides whether a condition holds on the entry as it is now: exists says
 * whether there is a live entry, version is its version (0 when absent). It
 * may be called several times for one write (the entry may change between
 * the test and the write), must not call into cmd or the store, and must
 * not keep the values.
 */
typedef bool (*cmd_precondition_fn)(void *arg, bool exists, uint64_t version);

struct cmd_precondition {
    enum cmd_precondition_kind kind;
    uint64_t version;         /* CMD_PRE_IF_VERSION */
    cmd_precondition_fn test; /* CMD_PRE_TEST */
    void *test_arg;
};

/* No condition. */
#define CMD_PRE_NONE ((struct cmd_precondition){.kind = CMD_PRE_ANY})

/*
 * cmd_set under a precondition: key, value and TTL are checked first (a bad
 * one is refused whatever the condition), then the condition is evaluated
 * on the entry's current state and the write made only if that state is
 * still the one evaluated (the store checks the version atomically). If the
 * entry changed in between, the condition is evaluated again on the new
 * state, a few times at most. Returns cmd_set's statuses, or
 * CMD_VERSION_MISMATCH when the condition does not hold (or the entry kept
 * changing under it); nothing was written then. pre NULL: no condition.
 * meta may be NULL.
 */
enum cmd_status cmd_set_if(const struct cmd_ctx *ctx, const char *key, size_t key_len,
                           const struct store_value *value, int64_t ttl_ms, const struct cmd_precondition *pre,
                           struct store_meta *meta);

/*
 * cmd_delete under a precondition, as cmd_set_if: deletes exactly the
 * version the condition held on. CMD_OK, CMD_NOT_FOUND (the condition held
 * on an absent entry: nothing to delete) or CMD_VERSION_MISMATCH.
 */
enum cmd_status cmd_delete_if(const struct cmd_ctx *ctx, const char *key, size_t key_len,
                              const struct cmd_precondition *pre);

/* cmd_incr under a precondition, as cmd_set_if (an absent key that meets it is created from 0). */
enum cmd_status cmd_incr_if(const struct cmd_ctx *ctx, const char *key, size_t key_len, int64_t by, int64_t ttl_ms,
                            const struct cmd_precondition *pre, int64_t *result, struct store_meta *meta);

#endif
