/*
 * The memory bound and SIEVE eviction.
 *
 * Accounting. store.used counts the bytes of every entry and bucket array as
 * the allocator sized them (entry_footprint). A writer reserves an entry's
 * bytes before linking it; if that takes the total past max_memory, the
 * writer evicts until the total is back under it, and only then allocates
 * nothing more and links. So the entries in the store never exceed
 * max_memory by more than the writes in flight at that instant, and a write
 * that cannot fit even in an empty store fails with STORE_EFULL.
 *
 * Credits. store.used is one cache line every writer would update twice per
 * overwrite (reserve the new entry, release the old), bouncing it between
 * cores. Instead, bytes released by a thread stay counted in store.used as
 * that thread's credit (its EBR record), up to credit_max, and its next
 * reservation takes from that credit first; only the rest touches the shared
 * counter. An overwrite by a thread whose last write freed as much touches it
 * not at all. Credits only overstate what the entries hold, so the bound
 * still holds, tighter by at most credit_max per thread; the statistics
 * subtract them. A reservation larger than the credit uses up the credit and
 * counts only the rest; a thread's remaining credit returns to the budget
 * when it exits and before it evicts, and the bytes of the entries it evicts
 * go straight to the total, never into credit, so eviction stops as soon as
 * there is room. Bucket arrays are counted when they grow, under a shard
 * lock where nothing can be evicted, so the writer whose insert grew one
 * evicts back under the bound once it has unlocked (memory_trim), starting
 * with the next shard so that its own new entry, often alone in its shard,
 * is not the first to go. With STORE_EVICT_NONE a table that would not fit
 * simply does not grow: slower, never over the bound.
 *
 * Policies. Which entry goes is decided per shard by SIEVE (sieve.c) or
 * S3-FIFO (s3fifo.c), through the do_policy_* calls below; noeviction keeps
 * SIEVE's queue but refuses writes at the bound instead of evicting.
 *
 * The evicting writer holds no lock when it starts: it takes one shard's
 * write lock at a time (its own shard first, then the others in turn; after
 * a table's growth, the next shard first), so eviction adds no lock order.
 */
#include <stdlib.h>

#include "internal.h"

/* ---- policy dispatch ------------------------------------------------------ */

void do_policy_insert(struct store *s, struct shard *sh, struct entry *e, uint64_t hash, struct entry *replaced)
{
    if (s->eviction == STORE_EVICT_S3FIFO) {
        do_s3fifo_insert(s, sh, e, hash, replaced);
        return;
    }
    /* SIEVE, and noeviction, which keeps SIEVE's queue but never evicts. */
    queue_push(s, &sh->main, e);
}

void do_policy_remove(struct store *s, struct shard *sh, struct entry *e)
{
    if (s->eviction == STORE_EVICT_S3FIFO)
        do_s3fifo_remove(s, sh, e);
    else
        do_sieve_remove(s, sh, e);
}

void policy_hit(const struct store *s, struct entry *e)
{
    if (s->eviction == STORE_EVICT_S3FIFO)
        s3fifo_hit(e);
    else
        sieve_hit(e);
}

struct entry *do_policy_victim(struct store *s, struct shard *sh, int64_t now)
{
    return s->eviction == STORE_EVICT_S3FIFO ? do_s3fifo_victim(s, sh, now) : do_sieve_victim(s, sh, now);
}

void do_policy_reset(struct store *s, struct shard *sh, int release)
{
    sh->main.newest = sh->main.oldest = sh->hand = NULL;
    do_s3fifo_reset(s, sh, release);
}

/* ---- the memory bound ------------------------------------------------------ */

void memory_release_by(struct store *s, struct ebr_thread *t, size_t bytes)
{
    if (t != NULL) {
        size_t credit = atomic_load_explicit(&t->credit, memory_order_relaxed);
        if (credit + bytes <= s->credit_max) {
            atomic_store_explicit(&t->credit, credit + bytes, memory_order_relaxed);
            return;
        }
    }
    atomic_fetch_sub_explicit(&s->used, bytes, memory_order_relaxed);
}

void memory_release(struct store *s, size_t bytes)
{
    memory_release_by(s, ebr_this_thread(s), bytes);
}

/* Hands this thread's whole credit back to the shared counter. */
static void return_credit(struct store *s)
{
    struct ebr_thread *t = ebr_this_thread(s);
    size_t credit = t == NULL ? 0 : atomic_load_explicit(&t->credit, memory_order_relaxed);
    if (credit == 0)
        return;
    atomic_store_explicit(&t->credit, 0, memory_order_relaxed);
    atomic_fetch_sub_explicit(&s->used, credit, memory_order_relaxed);
}

/* Takes up to bytes from this thread's credit; returns how many it took. */
static size_t take_credit(struct store *s, size_t bytes)
{
    struct ebr_thread *t = ebr_this_thread(s);
    if (t == NULL)
        return 0;
    size_t credit = atomic_load_explicit(&t->credit, memory_order_relaxed);
    size_t taken = credit < bytes ? credit : bytes;
    atomic_store_explicit(&t->credit, credit - taken, memory_order_relaxed);
    return taken;
}

/* Picks and unlinks the policy's victim in one shard, or returns NULL if the shard is empty. */
static struct entry *do_evict_one(struct store *s, struct shard *sh, int64_t now, int *was_expired)
{
    struct entry *e = do_policy_victim(s, sh, now);
    if (e == NULL)
        return NULL;
    *was_expired = entry_is_expired(e, now);
    do_table_remove(s, sh, e);
    return e;
}

static int over_budget(struct store *s)
{
    return atomic_load_explicit(&s->used, memory_order_relaxed) > s->max_memory;
}

/* Evicts, starting at home, until the total is under max_memory. 0, or STORE_EFULL once every shard is empty. */
static int evict_to_budget(struct store *s, struct shard *home)
{
    size_t idx = (size_t)(home - s->shards);
    size_t empty_in_a_row = 0;
    int64_t now = store_now_ms(s);
    return_credit(s); /* counted in the total but holding no entry: it must not cost an entry */
    while (over_budget(s)) {
        struct shard *sh = &s->shards[idx];
        int was_expired = 0;
        shard_wrlock(&sh->lock);
        struct entry *victim = do_evict_one(s, sh, now, &was_expired);
        shard_unlock(&sh->lock);
        if (victim != NULL) {
            stat_add(s, was_expired ? STAT_EXPIRED : STAT_EVICTED, 1);
            entry_retire_evicted(s, victim);
            empty_in_a_row = 0;
            continue;
        }
        if (++empty_in_a_row == s->nshards)
            return STORE_EFULL;
        idx = (idx + 1) & (s->nshards - 1);
    }
    return 0;
}

int memory_reserve(struct store *s, struct shard *home, size_t bytes)
{
    if (s->max_memory != 0 && bytes > s->max_memory)
        return STORE_EFULL;
    size_t uncounted = bytes - take_credit(s, bytes); /* credit is already in the total */
    if (uncounted == 0)
        return 0;
    atomic_fetch_add_explicit(&s->used, uncounted, memory_order_relaxed);
    if (s->max_memory == 0 || !over_budget(s))
        return 0;
    if (s->eviction == STORE_EVICT_NONE || evict_to_budget(s, home) != 0) {
        memory_release(s, bytes);
        return STORE_EFULL;
    }
    return 0;
}

void memory_trim(struct store *s, struct shard *home)
{
    /*
     * The write that grew home's table (or ghost) is in home, often alone
     * there: start with the next shard, so that it goes last, not first.
     */
    if (s->max_memory != 0 && s->eviction != STORE_EVICT_NONE && over_budget(s))
        evict_to_budget(s, &s->shards[(size_t)(home + 1 - s->shards) & (s->nshards - 1)]);
}

int memory_grow(struct store *s, size_t bytes)
{
    /*
     * Counted before the check, as memory_reserve does: a check first and a
     * count after the rehash would let writers in other shards fill the
     * room meanwhile, and under noeviction nothing would bring the total
     * back under the bound.
     */
    size_t used = atomic_fetch_add_explicit(&s->used, bytes, memory_order_relaxed) + bytes;
    if (s->max_memory == 0 || s->eviction != STORE_EVICT_NONE || used <= s->max_memory)
        return 1;
    atomic_fetch_sub_explicit(&s->used, bytes, memory_order_relaxed);
    return 0;
}
