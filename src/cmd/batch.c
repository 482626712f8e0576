/*
 * Batches (see batch.h). cmd_mset is two passes over the items: the first
 * checks all of them with the very checks cmd_set makes, the second writes.
 * A client that sent one bad item among a thousand therefore finds nothing
 * changed and can resend the corrected batch whole, instead of working out
 * which half landed. Only failures the checks cannot foresee (memory running
 * out midway) leave a prefix written, and the caller is told how long.
 *
 * cmd_mget reads one key at a time and hands each result to the caller
 * before reading the next, so that a front whose answer has a size bound can
 * stop early: a small request naming one large value a thousand times must
 * not make the server copy gigabytes first.
 *
 * Both refuse a batch over max_batch before touching the store.
 */
#include "cmd/batch.h"

static int over_max_batch(const struct cmd_ctx *ctx, size_t n)
{
    return ctx->limits.max_batch != 0 && n > ctx->limits.max_batch;
}

enum cmd_status cmd_mset(const struct cmd_ctx *ctx, const struct cmd_item *items, size_t n,
                         struct cmd_mset_result *res)
{
    *res = (struct cmd_mset_result){.stored = 0, .failed_at = n, .checked = false};
    if (over_max_batch(ctx, n))
        return CMD_BATCH_TOO_LARGE;
    for (size_t i = 0; i < n; i++) {
        enum cmd_status st = cmd_check_key(ctx, items[i].key_len);
        if (st == CMD_OK)
            st = cmd_check_value(ctx, &items[i].value, items[i].ttl_ms);
        if (st != CMD_OK) {
            res->failed_at = i;
            return st;
        }
    }
    res->checked = true;
    for (size_t i = 0; i < n; i++) {
        const struct cmd_item *it = &items[i];
        enum cmd_status st = cmd_set(ctx, it->key, it->key_len, &it->value, it->ttl_ms, CMD_UNCONDITIONAL, NULL);
        if (st != CMD_OK && st != CMD_CREATED) {
            res->failed_at = i;
            return st;
        }
        res->stored++;
    }
    return CMD_OK;
}

enum cmd_status cmd_mget(const struct cmd_ctx *ctx, struct cmd_read *reads, size_t n, store_alloc_fn alloc,
                         void *alloc_ctx, cmd_read_fn fn, void *fn_arg, size_t *done)
{
    *done = 0;
    if (over_max_batch(ctx, n))
        return CMD_BATCH_TOO_LARGE;
    for (size_t i = 0; i < n; i++) {
        enum cmd_status st = cmd_get(ctx, reads[i].key, reads[i].key_len, alloc, alloc_ctx, &reads[i].item);
        if (st != CMD_OK && st != CMD_NOT_FOUND)
            return st;
        reads[i].found = st == CMD_OK;
        (*done)++;
        if (fn != NULL && fn(fn_arg, i, &reads[i]) != 0)
            break;
    }
    return CMD_OK;
}
