/*
 * The memory bound and SIEVE eviction.
 *
 * Accounting. store.used counts the bytes of every entry and bucket array as
 * the allocator sized them (entry_footprint). A writer counts its new
 * entry's bytes before linking it (memory_reserve); if that takes the total
 * past max_memory, it evicts until the total, less the bytes of the entry
 * the write will replace, is back under it (memory_make_room), and only then
 * links. So the entries in the store never exceed max_memory by more than
 * the writes in flight at that instant, and a write that cannot fit even in
 * an empty store fails with STORE_EFULL.
 *
 * The key being written is spared, unless its entry has expired. Its
 * current entry leaves when the write replaces it, so evicting it would
 * free nothing the write needs and would lose what a compare-and-set or an
 * increment must read. So while the policy picks a victim in the key's
 * shard, the entry is out of the queues, and it goes back at the new end of
 * its queue, as an access would put it (the write is one). A write that
 * already fails on the key's entry (its condition, or an increment's
 * integer) evicts nothing (store.c checks that first).
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
 * evicts back under the bound once it has unlocked
 * (memory_evict_to_bound), sparing its own new entry, often alone in its
 * shard, unless nothing else is left: then the bound wins and the write
 * fails. With STORE_EVICT_NONE a write
 * is checked under its shard lock, where the entry it replaces is known: it
 * fails unless the total less that entry's bytes is within the bound, so an
 * overwrite that does not grow always succeeds. A table that would not fit
 * simply does not grow: slower, never over the bound.
 *
 * Policies. Which entry goes is decided per shard by SIEVE (sieve.c) or
 * S3-FIFO (s3fifo.c), through the do_policy_* calls below; noeviction keeps
 * SIEVE's queue but refuses writes at the bound instead of evicting.
 *
 * The evicting writer holds no lock when it starts: it takes one shard's
 * write lock at a time (its own shard first, then the others in turn), so
 * eviction adds no lock order.
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

/* Puts an entry taken out of the eviction queues back at the new end of the queue it was in. */
static void do_policy_requeue(struct store *s, struct shard *sh, struct entry *e)
{
    if (s->eviction == STORE_EVICT_S3FIFO)
        do_s3fifo_requeue(s, sh, e);
    else
        queue_push(s, &sh->main, e);
}

/*
 * Picks and unlinks the policy's victim in one shard, or returns NULL if the
 * shard has nothing to give. The spared key's live entry is out of the
 * queues while the policy chooses (an expired one goes like any other: the
 * write finds the key dead either way).
 */
static struct entry *do_evict_one(struct store *s, struct shard *sh, int64_t now, const struct spared_key *spare,
                                  int *was_expired)
{
    struct entry *kept = NULL;
    if (spare->key != NULL && sh == spare->shard) {
        kept = do_table_find(s, sh, spare->hash, spare->key, spare->key_len, NULL);
        if (kept != NULL && entry_is_expired(kept, now))
            kept = NULL;
        if (kept != NULL)
            do_policy_remove(s, sh, kept);
    }
    struct entry *e = do_policy_victim(s, sh, now);
    if (e != NULL) {
        *was_expired = entry_is_expired(e, now);
        if (!*was_expired)
            do_report(s, STORE_CHANGE_EVICT, e); /* before the unlink: see do_report */
        do_table_remove(s, sh, e);
    }
    if (kept != NULL)
        do_policy_requeue(s, sh, kept);
    return e;
}

/* Whether the total, less `freed` bytes a write is about to give back, is over max_memory. */
static int over_budget(struct store *s, size_t freed)
{
    return atomic_load_explicit(&s->used, memory_order_relaxed) > s->max_memory + freed;
}

/*
 * Evicts, starting in the spared key's shard, until the total less `freed`
 * is under max_memory. 0, or STORE_EFULL once no shard has anything to give.
 */
static int evict_until_under(struct store *s, const struct spared_key *spare, size_t freed)
{
    size_t idx = (size_t)(spare->shard - s->shards);
    size_t empty_in_a_row = 0;
    int64_t now = store_now_ms(s);
    return_credit(s); /* counted in the total but holding no entry: it must not cost an entry */
    while (over_budget(s, freed)) {
        struct shard *sh = &s->shards[idx];
        int was_expired = 0;
        shard_wrlock(&sh->lock);
        struct entry *victim = do_evict_one(s, sh, now, spare, &was_expired);
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

int memory_reserve(struct store *s, size_t bytes)
{
    if (s->max_memory != 0 && bytes > s->max_memory)
        return STORE_EFULL;
    size_t uncounted = bytes - take_credit(s, bytes); /* credit is already in the total */
    if (uncounted != 0)
        atomic_fetch_add_explicit(&s->used, uncounted, memory_order_relaxed);
    return 0;
}

int memory_make_room(struct store *s, const struct spared_key *spare, size_t freed)
{
    if (s->max_memory == 0 || !over_budget(s, freed))
        return 0;
    if (s->eviction == STORE_EVICT_NONE)
        return STORE_EFULL;
    return evict_until_under(s, spare, freed);
}

int memory_is_over(struct store *s)
{
    return s->max_memory != 0 && over_budget(s, 0);
}

int memory_admits(struct store *s, const struct entry *old)
{
    if (s->max_memory == 0 || s->eviction != STORE_EVICT_NONE)
        return 1;
    return !over_budget(s, old != NULL ? entry_footprint(s, old) : 0);
}

int memory_evict_to_bound(struct store *s, const struct spared_key *spare)
{
    if (s->eviction == STORE_EVICT_NONE || memory_make_room(s, spare, 0) == 0)
        return 0;
    /*
     * Nothing else could go: the bound wins over the write, if the key still
     * holds what it wrote (another writer may have replaced it meanwhile).
     */
    struct shard *sh = spare->shard;
    shard_wrlock(&sh->lock);
    struct entry *e = do_table_find(s, sh, spare->hash, spare->key, spare->key_len, NULL);
    int own = e != NULL && e->version == spare->version;
    if (own) {
        do_report(s, STORE_CHANGE_EVICT, e);
        do_table_remove(s, sh, e);
    }
    shard_unlock(&sh->lock);
    if (!own)
        return 0;
    stat_add(s, STAT_EVICTED, 1);
    entry_retire_evicted(s, e);
    return STORE_EFULL;
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
