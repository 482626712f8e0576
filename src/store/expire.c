/*
 * Expiry. An expired entry is never returned: every read compares its expiry
 * with the clock. Its memory comes back in three ways: a write to the same
 * key replaces it, eviction removes it when it reaches it (evict.c), and
 * this sweep walks the buckets in order, a bounded number per call.
 *
 * The sweep remembers where it stopped (shard, bucket) and visits at most
 * max_buckets buckets per call, taking each shard's write lock for at most
 * SWEEP_BATCH buckets at a time, so neither the caller nor the readers of a
 * shard ever wait long, however many keys the store holds. Unlinked entries
 * are retired (ebr.c): readers still on them finish first. The sweep also
 * frees the bucket arrays a shard retired when it grew, once no reader can
 * be on them, and the removed entries left on the orphan list (ebr.c).
 */
#include <stdlib.h>

#include "internal.h"

#define SWEEP_BATCH 64

/*
 * Unlinks the expired entries of buckets [first, first+n) and chains them on
 * *dead through entry.newer (free once off the policy's queue), for the
 * caller to retire after unlocking; returns how many.
 */
static size_t do_sweep_buckets(struct store *s, struct shard *sh, size_t first, size_t n, int64_t now,
                               struct entry **dead)
{
    struct table *t = shard_table(sh);
    size_t reclaimed = 0;
    for (size_t b = first; b < first + n && b <= t->mask; b++) {
        entry_link *link = &t->slots[b];
        struct entry *e;
        while ((e = link_load(s, link)) != NULL) {
            if (!entry_is_expired(e, now)) {
                link = &e->chain;
                continue;
            }
            do_table_unlink(s, sh, link, e); /* link now points past e */
            e->newer = entry_ref(s, *dead);
            *dead = e;
            reclaimed++;
        }
    }
    return reclaimed;
}

size_t store_expire_step(struct store *s, size_t max_buckets)
{
    size_t reclaimed = 0;
    int64_t now = store_now_ms(s);

    pthread_mutex_lock(&s->sweep_lock);
    while (max_buckets > 0) {
        struct shard *sh = &s->shards[s->sweep_shard];
        size_t n = max_buckets < SWEEP_BATCH ? max_buckets : SWEEP_BATCH;
        size_t swept;
        struct entry *dead = NULL;

        shard_wrlock(&sh->lock);
        do_free_retired_tables(s, sh);
        size_t mask = shard_table(sh)->mask;
        if (n > mask + 1 - s->sweep_bucket)
            n = mask + 1 - s->sweep_bucket; /* charge only the buckets this shard has left */
        swept = do_sweep_buckets(s, sh, s->sweep_bucket, n, now, &dead);
        s->sweep_bucket += n;
        if (s->sweep_bucket > mask) {
            s->sweep_bucket = 0;
            s->sweep_shard = (s->sweep_shard + 1) & (s->nshards - 1);
        }
        shard_unlock(&sh->lock);
        while (dead != NULL) { /* retiring may free a batch of limbo: not under the lock */
            struct entry *next = entry_at(s, dead->newer);
            entry_retire(s, dead);
            dead = next;
        }

        stat_add(s, STAT_EXPIRED, swept);
        reclaimed += swept;
        max_buckets -= n;
    }
    pthread_mutex_unlock(&s->sweep_lock);
    ebr_reclaim_orphans(s);
    return reclaimed;
}
