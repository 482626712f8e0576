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

static size_t table_footprint(struct table *t)
{
    return malloc_usable_size(t) + sizeof(size_t);
}

static struct table *table_alloc(size_t buckets)
{
    struct table *t = calloc(1, sizeof(*t) + buckets * sizeof(t->slots[0]));
    if (t != NULL)
        t->mask = buckets - 1;
    return t;
}

int table_init(struct store *s, struct shard *sh)
{
    struct table *t = table_alloc(INITIAL_BUCKETS);
    if (t == NULL)
        return STORE_ENOMEM;
    atomic_init(&sh->table, t);
    atomic_fetch_add_explicit(&s->used, table_footprint(t), memory_order_relaxed);
    return 0;
}

void table_free(struct store *s, struct shard *sh)
{
    struct table *t = shard_table(sh);
    for (size_t i = 0; i <= t->mask; i++) {
        struct entry *e = link_load(s, &t->slots[i]);
        while (e != NULL) {
            struct entry *next = link_load(s, &e->chain);
            entry_free(s, NULL, e);
            e = next;
        }
    }
    free(t);
    while (sh->retired_tables != NULL) {
        struct table *next = sh->retired_tables->retired_next;
        free(sh->retired_tables);
        sh->retired_tables = next;
    }
}

struct entry *do_table_find(const struct store *s, struct shard *sh, uint64_t hash, const void *key, size_t key_len,
                            entry_link **link_out)
{
    struct table *t = shard_table(sh);
    entry_link *link = &t->slots[hash & t->mask];
    for (struct entry *e = link_load(s, link); e != NULL; link = &e->chain, e = link_load(s, link)) {
        if (entry_key_equals(e, key, key_len)) {
            if (link_out != NULL)
                *link_out = link;
            return e;
        }
    }
    return NULL;
}

/*
 * The lock-free lookup. Entries are immutable once linked and stay
 * allocated while the caller is in its EBR section, so following chain
 * links is safe at any time; unlinking or replacing an entry leaves its own
 * chain link intact, so a walk that is on it still reaches the rest of the
 * bucket. Only growth rewrites chains (entries move to their new buckets), so
 * a miss is trusted only if no rehash ran meanwhile (the `resizes` count,
 * odd while one runs); otherwise, and if a walk runs implausibly long while
 * chains are being rewritten, the lookup is repeated under the read lock. A
 * hit needs no check: the key matched an entry that was live when reached.
 */
struct entry *table_lookup(const struct store *s, struct shard *sh, uint64_t hash, const void *key, size_t key_len)
{
    uint64_t before = atomic_load_explicit(&sh->resizes, memory_order_acquire);
    if ((before & 1) == 0) {
        struct table *t = shard_table(sh);
        /*
         * The walk limit comes from the table, which readers share read-only,
         * not from sh->count, whose line every write dirties. Tables grow
         * before their entries outnumber their buckets, so no honest chain is
         * that long; one that is (growth refused under noeviction) only sends
         * the lookup to the locked path.
         */
        size_t steps = 0, limit = t->mask + 1 + 64;
        for (struct entry *e = link_load(s, &t->slots[hash & t->mask]); e != NULL && ++steps < limit;
             e = link_load(s, &e->chain)) {
            if (entry_key_equals(e, key, key_len))
                return e;
        }
        atomic_thread_fence(memory_order_acquire);
        if (steps < limit && atomic_load_explicit(&sh->resizes, memory_order_relaxed) == before)
            return NULL;
    }
    shard_rdlock(&sh->lock);
    struct entry *e = do_table_find(s, sh, hash, key, key_len, NULL);
    shard_unlock(&sh->lock);
    return e;
}

void do_free_retired_tables(struct store *s, struct shard *sh)
{
    struct table **link = &sh->retired_tables;
    while (*link != NULL) {
        struct table *t = *link;
        if (ebr_is_safe(s, t->retired_epoch)) {
            *link = t->retired_next;
            free(t);
        } else {
            link = &t->retired_next;
        }
    }
}

static void do_grow(struct store *s, struct shard *sh)
{
    struct table *old = shard_table(sh);
    size_t new_mask = old->mask * 2 + 1;
    do_free_retired_tables(s, sh);
    struct table *fresh = table_alloc(new_mask + 1);
    if (fresh == NULL)
        return;
    if (!memory_grow(s, table_footprint(fresh) - table_footprint(old))) {
        free(fresh);
        return;
    }
    /* Odd while chains are rewritten: lock-free misses meanwhile are retried under the lock. */
    atomic_fetch_add_explicit(&sh->resizes, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    for (size_t i = 0; i <= old->mask; i++) {
        struct entry *e = link_load(s, &old->slots[i]);
        while (e != NULL) {
            struct entry *next = link_load(s, &e->chain);
            entry_link *slot = &fresh->slots[store_hash(s, entry_key(e), e->key_len) & new_mask];
            link_store(s, &e->chain, link_load(s, slot));
            link_store(s, slot, e);
            e = next;
        }
    }
    atomic_store_explicit(&sh->table, fresh, memory_order_release);
    atomic_fetch_add_explicit(&sh->resizes, 1, memory_order_release);

    old->retired_epoch = ebr_retire_epoch(s);
    old->retired_next = sh->retired_tables;
    sh->retired_tables = old;
}

void do_table_insert(struct store *s, struct shard *sh, uint64_t hash, struct entry *e)
{
    struct table *t = shard_table(sh);
    entry_link *slot = &t->slots[hash & t->mask];
    link_store(s, &e->chain, link_load(s, slot));
    link_store(s, slot, e);
    do_policy_insert(s, sh, e, hash, NULL);
    size_t count = atomic_load_explicit(&sh->count, memory_order_relaxed) + 1;
    atomic_store_explicit(&sh->count, count, memory_order_relaxed);
    if (count > t->mask + 1)
        do_grow(s, sh);
}

void do_table_replace(struct store *s, struct shard *sh, entry_link *link, struct entry *old,
                      struct entry *e)
{
    link_store(s, &e->chain, link_load(s, &old->chain));
    link_store(s, link, e);
    do_policy_insert(s, sh, e, 0, old);
    do_policy_remove(s, sh, old);
}

void do_table_remove(struct store *s, struct shard *sh, struct entry *e)
{
    struct table *t = shard_table(sh);
    entry_link *link = &t->slots[store_hash(s, entry_key(e), e->key_len) & t->mask];
    while (link_load(s, link) != e)
        link = &link_load(s, link)->chain;
    do_table_unlink(s, sh, link, e);
}

void do_table_unlink(struct store *s, struct shard *sh, entry_link *link, struct entry *e)
{
    /* e keeps its own chain link: a reader standing on it still reaches the rest of the bucket. */
    link_store(s, link, link_load(s, &e->chain));
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

/* What a walk (store_scan, store_iterate) visits and hands out. */
struct walk {
    const void *prefix;
    size_t prefix_len;
    int64_t now;
    store_key_fn key_fn;     /* store_scan */
    store_entry_fn entry_fn; /* store_iterate */
    void *fn_ctx;
};

/* Visits one bucket unless that would pass `room` entries; returns entries visited or -1 if skipped. */
static long do_walk_bucket(const struct store *s, struct shard *sh, uint64_t bucket, const struct walk *w,
                           size_t room, int must_fit)
{
    size_t n = 0;
    struct table *t = shard_table(sh);
    for (struct entry *e = link_load(s, &t->slots[bucket & t->mask]); e != NULL; e = link_load(s, &e->chain))
        n += key_matches(e, w->prefix, w->prefix_len, w->now);
    if (must_fit && n > room)
        return -1;
    for (struct entry *e = link_load(s, &t->slots[bucket & t->mask]); e != NULL; e = link_load(s, &e->chain)) {
        if (!key_matches(e, w->prefix, w->prefix_len, w->now))
            continue;
        if (w->key_fn != NULL) {
            w->key_fn(w->fn_ctx, entry_key(e), e->key_len);
        } else {
            struct store_change entry;
            entry_describe(e, &entry);
            w->entry_fn(w->fn_ctx, &entry);
        }
    }
    return (long)n;
}

/* The cursor loop of store_scan and store_iterate: one shard's read lock at a time. */
static size_t walk(struct store *s, uint64_t cursor, size_t limit, const struct walk *w, uint64_t *next_cursor)
{
    size_t shard_idx = cursor >> CURSOR_SHARD_SHIFT;
    uint64_t v = cursor & ((UINT64_C(1) << CURSOR_SHARD_SHIFT) - 1);
    size_t visited = 0;
    int full = 0;

    if (limit == 0)
        limit = 1;
    while (shard_idx < s->nshards && !full) {
        struct shard *sh = &s->shards[shard_idx];
        int shard_done = 0;
        shard_rdlock(&sh->lock);
        do {
            long n = do_walk_bucket(s, sh, v, w, limit - visited, visited > 0);
            if (n < 0) {
                full = 1; /* resume at this bucket, which may be bucket 0: v == 0 alone means nothing */
                break;
            }
            visited += (size_t)n;
            v = next_reverse_cursor(v, shard_table(sh)->mask);
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

size_t store_scan(struct store *s, uint64_t cursor, const void *prefix, size_t prefix_len, size_t limit,
                  store_key_fn fn, void *fn_ctx, uint64_t *next_cursor)
{
    struct walk w = {.prefix = prefix, .prefix_len = prefix_len, .now = store_now_ms(s), .key_fn = fn, .fn_ctx = fn_ctx};
    return walk(s, cursor, limit, &w, next_cursor);
}

size_t store_iterate(struct store *s, uint64_t cursor, size_t limit, store_entry_fn fn, void *fn_ctx,
                     uint64_t *next_cursor)
{
    struct walk w = {.now = store_now_ms(s), .entry_fn = fn, .fn_ctx = fn_ctx};
    return walk(s, cursor, limit, &w, next_cursor);
}
