/*
 * The per-shard hash table: separate chaining through entry.chain over a
 * power-of-two bucket array, indexed by the low bits of the key's hash (the
 * top bits chose the shard). The table doubles when it holds more entries
 * than buckets, so chains stay about one entry long; growing rehashes every
 * key of the shard under its write lock, which with the default 256 shards is
 * 1/256 of the keys at a time. If the bigger array cannot be allocated (or,
 * without eviction, would not fit under max_memory) the table simply stays
 * smaller: slower, never wrong. It never shrinks.
 *
 * Scanning uses a reverse-binary cursor over the bucket index (the technique
 * Redis's dict scan made well known): incrementing the bit-reversed index
 * visits, after a doubling, the two buckets a visited bucket split into
 * together, so a key present for the whole scan is seen at least once, even
 * while the table grows between calls. The cursor's top 16 bits hold the
 * shard.
 */
#include <malloc.h>
#include <stdlib.h>

#include "internal.h"

#define INITIAL_BUCKETS 16
#define CURSOR_SHARD_SHIFT 48

static size_t array_footprint(void *p)
{
    return malloc_usable_size(p) + sizeof(size_t);
}

int table_init(struct store *s, struct shard *sh)
{
    sh->buckets = calloc(INITIAL_BUCKETS, sizeof(*sh->buckets));
    if (sh->buckets == NULL)
        return STORE_ENOMEM;
    sh->mask = INITIAL_BUCKETS - 1;
    atomic_fetch_add_explicit(&s->used, array_footprint(sh->buckets), memory_order_relaxed);
    return 0;
}

void table_free(struct shard *sh)
{
    for (size_t i = 0; i <= sh->mask; i++) {
        struct entry *e = sh->buckets[i];
        while (e != NULL) {
            struct entry *next = e->chain;
            free(e);
            e = next;
        }
    }
    free(sh->buckets);
    sh->buckets = NULL;
}

struct entry *do_table_find(struct shard *sh, uint64_t hash, const void *key, size_t key_len,
                            struct entry ***link_out)
{
    struct entry **link = &sh->buckets[hash & sh->mask];
    for (struct entry *e = *link; e != NULL; link = &e->chain, e = e->chain) {
        if (entry_key_equals(e, key, key_len)) {
            if (link_out != NULL)
                *link_out = link;
            return e;
        }
    }
    return NULL;
}

static void do_grow(struct store *s, struct shard *sh)
{
    size_t new_mask = sh->mask * 2 + 1;
    struct entry **fresh = calloc(new_mask + 1, sizeof(*fresh));
    if (fresh == NULL)
        return;
    if (!memory_may_grow(s, array_footprint(fresh) - array_footprint(sh->buckets))) {
        free(fresh);
        return;
    }
    for (size_t i = 0; i <= sh->mask; i++) {
        struct entry *e = sh->buckets[i];
        while (e != NULL) {
            struct entry *next = e->chain;
            struct entry **slot = &fresh[store_hash(s, entry_key(e), e->key_len) & new_mask];
            e->chain = *slot;
            *slot = e;
            e = next;
        }
    }
    atomic_fetch_add_explicit(&s->used, array_footprint(fresh), memory_order_relaxed);
    memory_release(s, array_footprint(sh->buckets));
    free(sh->buckets);
    sh->buckets = fresh;
    sh->mask = new_mask;
}

void do_table_insert(struct store *s, struct shard *sh, uint64_t hash, struct entry *e)
{
    struct entry **slot = &sh->buckets[hash & sh->mask];
    e->chain = *slot;
    *slot = e;
    do_policy_insert(s, sh, e, hash, NULL);
    size_t count = atomic_load_explicit(&sh->count, memory_order_relaxed) + 1;
    atomic_store_explicit(&sh->count, count, memory_order_relaxed);
    if (count > sh->mask + 1)
        do_grow(s, sh);
}

void do_table_replace(struct store *s, struct shard *sh, struct entry **link, struct entry *old, struct entry *e)
{
    e->chain = old->chain;
    *link = e;
    do_policy_insert(s, sh, e, 0, old);
    do_policy_remove(s, sh, old);
}

void do_table_remove(struct store *s, struct shard *sh, struct entry *e)
{
    struct entry **link = &sh->buckets[store_hash(s, entry_key(e), e->key_len) & sh->mask];
    while (*link != e)
        link = &(*link)->chain;
    *link = e->chain;
    do_policy_remove(s, sh, e);
    atomic_store_explicit(&sh->count, atomic_load_explicit(&sh->count, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}

static uint64_t reverse_bits(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
    v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
    v = ((v >> 4) & 0x0f0f0f0f0f0f0f0fULL) | ((v & 0x0f0f0f0f0f0f0f0fULL) << 4);
    return __builtin_bswap64(v);
}

/* The bucket after v in bit-reversed order, or 0 after the last one. */
static uint64_t next_reverse_cursor(uint64_t v, uint64_t mask)
{
    v |= ~mask;
    v = reverse_bits(v);
    v++;
    return reverse_bits(v);
}

static int key_matches(const struct entry *e, const void *prefix, size_t prefix_len, int64_t now)
{
    /* No prefix may come as NULL, which memcmp must not see even for 0 bytes. */
    return e->key_len >= prefix_len && (prefix_len == 0 || memcmp(entry_key(e), prefix, prefix_len) == 0) &&
           !entry_is_expired(e, now);
}

/* Visits one bucket unless that would pass `room` keys; returns keys visited or -1 if skipped. */
static long do_scan_bucket(struct shard *sh, uint64_t bucket, const void *prefix, size_t prefix_len, int64_t now,
                           size_t room, int must_fit, store_key_fn fn, void *fn_ctx)
{
    size_t n = 0;
    for (struct entry *e = sh->buckets[bucket & sh->mask]; e != NULL; e = e->chain)
        n += key_matches(e, prefix, prefix_len, now);
    if (must_fit && n > room)
        return -1;
    for (struct entry *e = sh->buckets[bucket & sh->mask]; e != NULL; e = e->chain)
        if (key_matches(e, prefix, prefix_len, now))
            fn(fn_ctx, entry_key(e), e->key_len);
    return (long)n;
}

size_t store_scan(struct store *s, uint64_t cursor, const void *prefix, size_t prefix_len, size_t limit,
                  store_key_fn fn, void *fn_ctx, uint64_t *next_cursor)
{
    size_t shard_idx = cursor >> CURSOR_SHARD_SHIFT;
    uint64_t v = cursor & ((UINT64_C(1) << CURSOR_SHARD_SHIFT) - 1);
    size_t visited = 0;
    int64_t now = store_now_ms(s);
    int full = 0;

    if (limit == 0)
        limit = 1;
    while (shard_idx < s->nshards && !full) {
        struct shard *sh = &s->shards[shard_idx];
        int shard_done = 0;
        shard_rdlock(&sh->lock);
        do {
            long n = do_scan_bucket(sh, v, prefix, prefix_len, now, limit - visited, visited > 0, fn, fn_ctx);
            if (n < 0) {
                full = 1; /* resume at this bucket, which may be bucket 0: v == 0 alone means nothing */
                break;
            }
            visited += (size_t)n;
            v = next_reverse_cursor(v, sh->mask);
            shard_done = v == 0;
            full = visited >= limit;
        } while (!shard_done && !full);
        shard_unlock(&sh->lock);
        if (shard_done)
            shard_idx++;
    }
    *next_cursor = shard_idx >= s->nshards ? 0 : ((uint64_t)shard_idx << CURSOR_SHARD_SHIFT) | v;
    return visited;
}
