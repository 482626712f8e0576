/*
 * Conditional writes (see cond.h): the compare-and-set loop that every front
 * shares.
 *
 * A precondition is a test on the entry's state, which the store cannot
 * evaluate itself (an HTTP tag list, say). So the state is read first, the
 * test run on it, and the write then made under the store condition that
 * pins exactly that state: STORE_SET_IF_VERSION with the version read, or
 * STORE_SET_IF_ABSENT when there was no entry. The store applies that
 * condition atomically with the write, so two clients doing
 * read-modify-write cannot both succeed on the same version, and a delete
 * removes only the version its condition was evaluated on, never a newer
 * one written in between.
 *
 * If the pinned write fails because the state moved (a version mismatch, an
 * entry that appeared, or one that vanished before a delete), the test is
 * run again on the new state: the answer must be the one the client would
 * have got had it arrived a moment later, not a spurious refusal. Under
 * constant contention that could go on forever, so after COND_ATTEMPTS the
 * write is refused as a failed precondition, which a client retries anyway.
 *
 * A write without precondition reads nothing and is never retried.
 */
#include "cmd/cond.h"

/* Evaluations of a precondition when the entry keeps changing under it. */
#define COND_ATTEMPTS 8

enum cond_op { COND_SET, COND_DELETE, COND_INCR };

/* One write and its arguments: what cmd_set_if, _delete_if and _incr_if were asked to do. */
struct cond_write {
    enum cond_op op;
    const struct store_value *value; /* COND_SET */
    int64_t ttl_ms;                  /* COND_SET, COND_INCR */
    int64_t by, *result;             /* COND_INCR */
    struct store_meta *meta;         /* COND_SET, COND_INCR; may be NULL */
};

static bool precondition_holds(const struct cmd_precondition *pre, bool exists, uint64_t version)
{
    switch (pre->kind) {
    case CMD_PRE_ANY:
        return true;
    case CMD_PRE_IF_EXISTS:
        return exists;
    case CMD_PRE_IF_ABSENT:
        return !exists;
    case CMD_PRE_IF_VERSION:
        return exists && version == pre->version;
    case CMD_PRE_TEST:
        return pre->test(pre->test_arg, exists, version);
    }
    return false;
}

/*
 * Reads whether key has a live entry, and its version, without the value and
 * without side effects: a precondition checked is not a read by the client
 * (no hit counted, no recency given to an entry about to be replaced).
 */
static void read_state(const struct cmd_ctx *ctx, const char *key, size_t key_len, bool *exists, uint64_t *version)
{
    struct store_meta now = {0};
    *exists = cmd_peek(ctx, key, key_len, &now) == CMD_OK;
    *version = *exists ? now.version : 0;
}

static enum cmd_status do_write(const struct cmd_ctx *ctx, const char *key, size_t key_len,
                                const struct cond_write *w, struct cmd_cond cond)
{
    switch (w->op) {
    case COND_SET:
        return cmd_set(ctx, key, key_len, w->value, w->ttl_ms, cond, w->meta);
    case COND_DELETE:
        return cmd_delete(ctx, key, key_len, cond.mode == STORE_SET_IF_VERSION ? cond.version : 0);
    case COND_INCR:
        return cmd_incr(ctx, key, key_len, w->by, w->ttl_ms, cond, w->result, w->meta);
    }
    return CMD_NO_MEMORY;
}

static enum cmd_status write_if(const struct cmd_ctx *ctx, const char *key, size_t key_len,
                                const struct cmd_precondition *pre, const struct cond_write *w)
{
    if (pre == NULL || pre->kind == CMD_PRE_ANY)
        return do_write(ctx, key, key_len, w, CMD_UNCONDITIONAL);
    for (int attempt = 0; attempt < COND_ATTEMPTS; attempt++) {
        bool exists;
        uint64_t version;
        read_state(ctx, key, key_len, &exists, &version);
        if (!precondition_holds(pre, exists, version))
            return CMD_VERSION_MISMATCH;
        if (!exists && w->op == COND_DELETE)
            return CMD_NOT_FOUND; /* deleting now could remove an entry written since */
        struct cmd_cond cond = exists ? (struct cmd_cond){STORE_SET_IF_VERSION, version}
                                      : (struct cmd_cond){STORE_SET_IF_ABSENT, 0};
        enum cmd_status st = do_write(ctx, key, key_len, w, cond);
        /* The state it was pinned to is gone: evaluate the precondition on the new one. */
        bool moved = st == CMD_VERSION_MISMATCH || st == CMD_EXISTS || (st == CMD_NOT_FOUND && exists);
        if (!moved)
            return st;
    }
    return CMD_VERSION_MISMATCH;
}

enum cmd_status cmd_set_if(const struct cmd_ctx *ctx, const char *key, size_t key_len,
                           const struct store_value *value, int64_t ttl_ms, const struct cmd_precondition *pre,
                           struct store_meta *meta)
{
    enum cmd_status st = cmd_check_key(ctx, key_len);
    if (st == CMD_OK)
        st = cmd_check_value(ctx, value, ttl_ms);
    if (st != CMD_OK)
        return st;
    struct cond_write w = {.op = COND_SET, .value = value, .ttl_ms = ttl_ms, .meta = meta};
    return write_if(ctx, key, key_len, pre, &w);
}

enum cmd_status cmd_delete_if(const struct cmd_ctx *ctx, const char *key, size_t key_len,
                              const struct cmd_precondition *pre)
{
    struct cond_write w = {.op = COND_DELETE};
    return write_if(ctx, key, key_len, pre, &w);
}

enum cmd_status cmd_incr_if(const struct cmd_ctx *ctx, const char *key, size_t key_len, int64_t by, int64_t ttl_ms,
                            const struct cmd_precondition *pre, int64_t *result, struct store_meta *meta)
{
    enum cmd_status st = cmd_check_key(ctx, key_len);
    if (st == CMD_OK)
        st = cmd_check_ttl(ttl_ms);
    if (st != CMD_OK)
        return st;
    struct cond_write w = {.op = COND_INCR, .ttl_ms = ttl_ms, .by = by, .result = result, .meta = meta};
    return write_if(ctx, key, key_len, pre, &w);
}
