/*
 * S3-FIFO eviction (Yang et al., SOSP'23), one instance per shard.
 *
 * Three FIFO queues: a small one S (about 10% of the shard's bytes) that
 * new entries enter, a main one M, and a ghost G remembering the keys
 * recently evicted from S. A hit only bumps the entry's 2-bit frequency
 * (an atomic update by a lock-free get, skipped once it saturates at 3, so
 * hot keys cost readers no writes at all); nothing is relinked on a hit.
 *
 * Eviction: while S holds more than a tenth of the bytes, its tail goes: to
 * M if it was read at all while in S, else out, its fingerprint into G. (The
 * paper moves only entries read more than once; bench/store/trace.sh measured
 * "at least once" 0.6 to 0.9 points of miss ratio better on the scan and
 * one-hit-wonder traces and no worse on Zipf, so that is what this does.) Otherwise M's tail goes, unless it was read since it last reached the
 * tail, in which case its frequency drops by one and it goes back to M's
 * head. A new key found in G skips S and enters M: it was evicted too early
 * once. Most one-hit wonders thus leave from S quickly without disturbing M,
 * which is why S3-FIFO beats LRU on skewed web and scan-heavy traces.
 *
 * The ghost is a direct-mapped table of 32-bit fingerprints, one slot per
 * hash bucket of the shard (so its size follows the number of entries, as
 * the paper sizes G to M): inserting overwrites whatever fingerprint shared
 * the slot, an approximation of G's FIFO order that costs 4 bytes per slot
 * and O(1) per operation. It is counted in the store's bytes.
 */
#include <malloc.h>
#include <stdlib.h>

#include "internal.h"

static unsigned freq_of(const struct entry *e)
{
    return (atomic_load_explicit(&e->flags, memory_order_relaxed) & ENTRY_FREQ_MASK) >> ENTRY_FREQ_SHIFT;
}

static void set_freq(struct entry *e, unsigned freq)
{
    uint8_t flags = atomic_load_explicit(&e->flags, memory_order_relaxed);
    uint8_t next = (uint8_t)((flags & ~ENTRY_FREQ_MASK) | (freq << ENTRY_FREQ_SHIFT));
    while (!atomic_compare_exchange_weak_explicit(&e->flags, &flags, next, memory_order_relaxed,
                                                  memory_order_relaxed))
        next = (uint8_t)((flags & ~ENTRY_FREQ_MASK) | (freq << ENTRY_FREQ_SHIFT));
}

void s3fifo_hit(struct entry *e)
{
    uint8_t flags = atomic_load_explicit(&e->flags, memory_order_relaxed);
    while ((flags & ENTRY_FREQ_MASK) != ENTRY_FREQ_MASK) {
        uint8_t next = (uint8_t)(flags + (1u << ENTRY_FREQ_SHIFT));
        if (atomic_compare_exchange_weak_explicit(&e->flags, &flags, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            break;
    }
}

static int in_main(const struct entry *e)
{
    return atomic_load_explicit(&e->flags, memory_order_relaxed) & ENTRY_IN_MAIN;
}

/* ---- the ghost ---------------------------------------------------------- */

static uint32_t fingerprint(uint64_t hash)
{
    return (uint32_t)hash | 1; /* never 0, which marks an empty slot */
}

static size_t ghost_slot(const struct shard *sh, uint64_t hash)
{
    return (size_t)(hash >> 32) & sh->ghost_mask;
}

/* Keeps one ghost slot per bucket; a failed allocation leaves the ghost as it was (or absent). */
static void do_ghost_fit(struct store *s, struct shard *sh)
{
    size_t mask = shard_table(sh)->mask;
    if (sh->ghost != NULL && sh->ghost_mask == mask)
        return;
    uint32_t *fresh = calloc(mask + 1, sizeof(*fresh));
    if (fresh == NULL)
        return;
    if (sh->ghost != NULL) {
        memory_release(s, malloc_usable_size(sh->ghost) + sizeof(size_t));
        free(sh->ghost);
    }
    atomic_fetch_add_explicit(&s->used, malloc_usable_size(fresh) + sizeof(size_t), memory_order_relaxed);
    sh->ghost = fresh;
    sh->ghost_mask = mask;
}

/* Whether the ghost remembers hash; forgets it if so. */
static int do_ghost_take(struct shard *sh, uint64_t hash)
{
    if (sh->ghost == NULL)
        return 0;
    uint32_t *slot = &sh->ghost[ghost_slot(sh, hash)];
    if (*slot != fingerprint(hash))
        return 0;
    *slot = 0;
    return 1;
}

static void do_ghost_add(struct store *s, struct shard *sh, const struct entry *e)
{
    if (sh->ghost == NULL)
        return;
    uint64_t hash = store_hash(s, entry_key(e), e->key_len);
    sh->ghost[ghost_slot(sh, hash)] = fingerprint(hash);
}

/* ---- the queues ---------------------------------------------------------- */

static void do_push_small(struct store *s, struct shard *sh, struct entry *e)
{
    atomic_fetch_and_explicit(&e->flags, (uint8_t)~ENTRY_IN_MAIN, memory_order_relaxed);
    queue_push(s, &sh->small, e);
    sh->small_bytes += entry_footprint(s, e);
}

static void do_push_main(struct store *s, struct shard *sh, struct entry *e)
{
    atomic_fetch_or_explicit(&e->flags, ENTRY_IN_MAIN, memory_order_relaxed);
    queue_push(s, &sh->main, e);
    sh->main_bytes += entry_footprint(s, e);
}

void do_s3fifo_remove(struct store *s, struct shard *sh, struct entry *e)
{
    if (in_main(e)) {
        queue_unlink(s, &sh->main, e);
        sh->main_bytes -= entry_footprint(s, e);
    } else {
        queue_unlink(s, &sh->small, e);
        sh->small_bytes -= entry_footprint(s, e);
    }
}

void do_s3fifo_requeue(struct store *s, struct shard *sh, struct entry *e)
{
    if (in_main(e))
        do_push_main(s, sh, e);
    else
        do_push_small(s, sh, e);
}

void do_s3fifo_insert(struct store *s, struct shard *sh, struct entry *e, uint64_t hash, struct entry *replaced)
{
    do_ghost_fit(s, sh);
    if (replaced != NULL) {
        /* A new value for a live key: an access, in the queue the key was in. */
        unsigned freq = freq_of(replaced);
        set_freq(e, freq < 3 ? freq + 1 : 3);
        if (in_main(replaced))
            do_push_main(s, sh, e);
        else
            do_push_small(s, sh, e);
        return;
    }
    if (do_ghost_take(sh, hash))
        do_push_main(s, sh, e);
    else
        do_push_small(s, sh, e);
}

/*
 * Terminates: each step returns, moves an entry from S to M (S only
 * shrinks meanwhile), or lowers a frequency in M. With no reader about, M's
 * frequencies (at most 3) are all 0 after three turns of M. But lock-free
 * gets may raise a frequency again while the walk holds the lock, so on a
 * small, hot shard it could turn for as long as the readers keep up: after
 * three full turns of M (counted at the first entry it sent round) it takes
 * M's tail whatever its frequency, which is where the walk would have ended
 * with no reader. As for SIEVE, no test forces the spin: only a hook inside
 * the walk could put a get between every two of its steps.
 */
struct entry *do_s3fifo_victim(struct store *s, struct shard *sh, int64_t now)
{
    struct entry *first_sent_round = NULL;
    unsigned turns = 0;
    for (;;) {
        struct entry *small = sh->small.oldest, *main = sh->main.oldest;
        if (small == NULL && main == NULL)
            return NULL;
        if (small != NULL && (main == NULL || sh->small_bytes * 10 > sh->small_bytes + sh->main_bytes)) {
            if (entry_is_expired(small, now))
                return small;
            if (freq_of(small) > 0) {
                do_s3fifo_remove(s, sh, small);
                do_push_main(s, sh, small);
                continue;
            }
            do_ghost_add(s, sh, small);
            return small;
        }
        if (entry_is_expired(main, now))
            return main;
        if (main == first_sent_round && ++turns == 3)
            return main;
        unsigned freq = freq_of(main);
        if (freq == 0)
            return main;
        if (first_sent_round == NULL)
            first_sent_round = main;
        set_freq(main, freq - 1);
        queue_unlink(s, &sh->main, main);
        queue_push(s, &sh->main, main);
    }
}

void do_s3fifo_reset(struct store *s, struct shard *sh, int release)
{
    sh->small.newest = sh->small.oldest = NULL;
    sh->small_bytes = sh->main_bytes = 0;
    if (sh->ghost != NULL && release) {
        memory_release(s, malloc_usable_size(sh->ghost) + sizeof(size_t));
        free(sh->ghost);
        sh->ghost = NULL;
    } else if (sh->ghost != NULL) {
        memset(sh->ghost, 0, (sh->ghost_mask + 1) * sizeof(*sh->ghost));
    }
}
