/*
 * The store's operations: create and destroy, get, peek, set, delete, incr,
 * set_ttl, flush and statistics, over the sharded tables of table.c.
 *
 * Every write follows one pattern, so that nothing slow happens under a lock:
 * build the new entry (allocate and copy) with no lock held, reserve its bytes
 * (which may evict, taking other locks one at a time, never the key's own
 * entry: evict.c), then take the shard's write lock only to check the
 * condition and swap links, and free the replaced entry after unlocking (then
 * evict again if the insert grew the table past max_memory:
 * memory_evict_to_bound). The writes of one key (set, incr, set_ttl) share
 * that sequence as a write_op: each brings its entry and one step that
 * decides, under the lock, whether it may replace the key's entry and
 * completes its own.
 *
 * A get takes no lock: it finds the entry lock-free inside an EBR section
 * (table.c, ebr.c), copies the value out into the caller's memory and records
 * the hit for the eviction policy; a peek reads only the metadata and
 * records nothing.
 *
 * Versions come from a per-shard counter bumped under the write lock. A key
 * always lives in the same shard, so the version of a key changes on every
 * write of its value and never repeats while the process lives (a copy made
 * by store_set_ttl keeps the version of the value it copies); the counters
 * start from the wall clock (seconds << 20) so versions rarely repeat across
 * restarts. The change hook (store.h) is called where a change is linked or
 * unlinked, under the same lock, so it sees each key's changes in order.
 * store_restore links a saved entry with its saved version and pushes the
 * shard's counter past it; store_raise_versions lifts every counter above
 * the versions a previous process gave, deleted keys' included.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"
#include "monotonic.h"

#define DEFAULT_SHARD_BITS 8
#define MAX_SHARD_BITS     16
#define INT64_TEXT_MAX     20 /* "-9223372036854775808" */

const char *store_strerror(int err)
{
    switch (err) {
    case STORE_OK:
        return "ok";
    case STORE_ENOTFOUND:
        return "key not found";
    case STORE_EEXISTS:
        return "key exists";
    case STORE_EVERSION:
        return "version mismatch";
    case STORE_ENOMEM:
        return "out of memory";
    case STORE_EFULL:
        return "does not fit in max memory";
    case STORE_ENOTINT:
        return "value is not an integer";
    case STORE_EOVERFLOW:
        return "integer overflow";
    case STORE_EINVAL:
        return "invalid argument";
    }
    return "unknown error";
}

static int64_t default_clock(void *ctx)
{
    (void)ctx;
    return monotonic_ms();
}

int64_t store_now_ms(const struct store *s)
{
    int64_t now = s->clock(s->clock_ctx);
    return now > 0 ? now : 0; /* so that now + ttl cannot overflow once ttl <= INT64_MAX - now is checked */
}

static int init_shard(struct store *s, struct shard *sh, uint64_t first_version)
{
#ifdef STORE_SHARD_MUTEX
    int rc = pthread_mutex_init(&sh->lock, NULL);
#else
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Writers must not starve behind a steady stream of gets. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&sh->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
#endif
    if (rc != 0)
        return STORE_ENOMEM;
    sh->next_version = first_version;
    if (table_init(s, sh) != 0) {
        shard_lock_destroy(&sh->lock);
        return STORE_ENOMEM;
    }
    return 0;
}

struct store *store_create(const struct store_config *cfg)
{
    static const struct store_config defaults = {0};
    if (cfg == NULL)
        cfg = &defaults;
    if (cfg->shard_bits > MAX_SHARD_BITS || (cfg->eviction != STORE_EVICT_SIEVE && cfg->eviction != STORE_EVICT_NONE &&
                                             cfg->eviction != STORE_EVICT_S3FIFO))
        return NULL;

    struct store *s = aligned_alloc(64, sizeof(*s));
    if (s == NULL)
        return NULL;
    memset(s, 0, sizeof(*s));
    s->shard_bits = cfg->single_shard ? 0 : cfg->shard_bits ? cfg->shard_bits : DEFAULT_SHARD_BITS;
    s->nshards = (size_t)1 << s->shard_bits;
    s->max_memory = cfg->max_memory;
    /* noeviction keeps no credit, so a write is refused exactly at the bound (evict.c). */
    if (cfg->max_memory != 0 && cfg->eviction == STORE_EVICT_NONE)
        s->credit_max = 0;
    else if (cfg->max_memory == 0 || cfg->max_memory / 1024 > CREDIT_MAX_BYTES)
        s->credit_max = CREDIT_MAX_BYTES;
    else
        s->credit_max = cfg->max_memory / 1024;
    s->eviction = cfg->eviction;
    s->clock = cfg->clock ? cfg->clock : default_clock;
    s->clock_ctx = cfg->clock ? cfg->clock_ctx : NULL;
    s->on_change = cfg->on_change;
    s->change_ctx = cfg->change_ctx;
    atomic_init(&s->used, 0);
    if (cfg->hash_key != NULL) {
        memcpy(s->hash_key, cfg->hash_key, sizeof(s->hash_key));
    } else if (getrandom(s->hash_key, sizeof(s->hash_key), 0) != sizeof(s->hash_key)) {
        /* Unkeyed hashing is still correct, only open to flooding. */
        s->hash_key[0] = (uint64_t)monotonic_ms() ^ (uintptr_t)s;
        s->hash_key[1] = (uint64_t)time(NULL);
    }
    pthread_mutex_init(&s->sweep_lock, NULL);
    if (ebr_init(s) != 0)
        goto fail;
    if (slab_init(&s->slab) != 0) {
        ebr_destroy(s);
        goto fail;
    }

    s->shards = aligned_alloc(64, s->nshards * sizeof(*s->shards));
    if (s->shards == NULL) {
        ebr_destroy(s);
        slab_destroy(&s->slab);
        goto fail;
    }
    memset(s->shards, 0, s->nshards * sizeof(*s->shards));
    uint64_t first_version = ((uint64_t)time(NULL) << 20) + 1;
    for (size_t i = 0; i < s->nshards; i++) {
        if (init_shard(s, &s->shards[i], first_version) != 0) {
            s->nshards = i; /* destroy only what was made */
            store_destroy(s);
            return NULL;
        }
    }
    return s;

fail:
    pthread_mutex_destroy(&s->sweep_lock);
    free(s);
    return NULL;
}

void store_destroy(struct store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nshards; i++) {
        do_policy_reset(s, &s->shards[i], 1);
        table_free(s, &s->shards[i]);
        shard_lock_destroy(&s->shards[i].lock);
    }
    free(s->shards);
    ebr_destroy(s); /* frees the limbo: before the slabs go */
    slab_destroy(&s->slab);
    pthread_mutex_destroy(&s->sweep_lock);
    free(s);
}

static void fill_meta(struct store_meta *meta, const struct entry *e, int64_t now, bool created)
{
    if (meta == NULL)
        return;
    int64_t at = entry_expires_at(e);
    meta->version = e->version;
    meta->ttl_ms = at == 0 ? -1 : at - now;
    meta->created = created;
}

/*
 * Links e in place of whatever is under its key and reports it to the change
 * hook; returns the entry it replaced, or NULL. e gets the shard's next
 * version, unless it already has one (store_set_ttl keeps the version of the
 * entry it copies; store_restore brings a saved one, which later versions
 * must pass).
 */
static struct entry *do_link(struct store *s, struct shard *sh, uint64_t hash, struct entry *e, struct entry *old,
                             entry_link *link)
{
    if (e->version == 0)
        e->version = sh->next_version++;
    else if (e->version >= sh->next_version)
        sh->next_version = e->version + 1;
    do_report(s, STORE_CHANGE_SET, e);
    if (old != NULL)
        do_table_replace(s, sh, link, old, e);
    else
        do_table_insert(s, sh, hash, e);
    return old;
}

/* ---- the write path ------------------------------------------------------ */

/*
 * Every write of one key (set, incr, set_ttl) is a write_op run by
 * write_run: the caller builds the new entry with no lock held and names
 * its own step; write_run does the rest, in the same order for all:
 *
 *   write_begin   no lock: counts the entry's bytes; past max_memory, makes
 *                 room for what the write adds (e less the entry it will
 *                 replace, read under the read lock, where the step is
 *                 asked first, so a write bound to fail evicts nothing);
 *   write_commit  the write lock: finds the key's entry, asks the step (the
 *                 decision that counts; the step also fills in e), checks
 *                 the bound under noeviction, links e, fills in meta;
 *   write_end     no lock: frees whichever entry lost and counts the write.
 */
struct write_op;

/*
 * A write's own step, under the shard lock: 0 if the write may replace old
 * (NULL when the key is absent; live: old is there and not expired), else
 * the error that refuses it. With fill (the write lock, after which the
 * write links) it also completes op->e from old: the value, the expiry.
 * Without fill (the read lock, before evicting) it only decides.
 */
typedef int (*write_step_fn)(struct write_op *op, struct entry *old, bool live, bool fill);

struct write_op {
    struct entry *e; /* the new entry, built with no lock held */
    const void *key;
    size_t key_len;
    int64_t now;
    write_step_fn step;
    void *ctx;               /* the step's own arguments and results */
    struct store_meta *meta; /* may be NULL */
    bool keeps_version;      /* e carries the version of the entry it replaces (store_set_ttl) */
    /* Set by write_begin and write_commit. */
    uint64_t hash;
    struct spared_key spare;
    size_t bytes;      /* e's footprint, counted in store.used */
    struct entry *old; /* the entry e replaced, once linked */
    bool old_was_live;
};

/*
 * Ends a write after its critical section: on failure frees the unlinked new
 * entry and its reservation; on success frees the entry it displaced
 * (counting it as expired if it was), evicts back under max_memory if the
 * insert grew a table past it, and counts the write. Fails after all if
 * only evicting the new entry itself brought the store back under the bound.
 */
static int write_end(struct store *s, struct write_op *op, int rc)
{
    if (rc != 0) {
        entry_free(s, NULL, op->e);
        memory_release(s, op->bytes);
        return rc;
    }
    if (op->old != NULL) {
        if (!op->old_was_live)
            stat_add(s, STAT_EXPIRED, 1);
        entry_retire(s, op->old);
    }
    if (memory_evict_to_bound(s, &op->spare) != 0)
        return STORE_EFULL;
    stat_add(s, STAT_SETS, 1);
    return 0;
}

/*
 * Finds the key's shard and counts e's bytes. If that takes the store past
 * max_memory, makes room (evict.c) for what the write adds: e less the key's
 * current entry, which it will replace, read under the shard's read lock. A
 * write its step already refuses evicts nothing (the step under the write
 * lock still decides). On failure frees e and its bytes.
 */
static int write_begin(struct store *s, struct write_op *op)
{
    op->hash = store_hash(s, op->key, op->key_len);
    op->spare =
        (struct spared_key){.shard = shard_for(s, op->hash), .hash = op->hash, .key = op->key, .key_len = op->key_len};
    op->bytes = entry_footprint(s, op->e);
    int rc = memory_reserve(s, op->bytes);
    if (rc != 0) {
        entry_free(s, NULL, op->e);
        return rc;
    }
    if (!memory_is_over(s))
        return 0;
    struct shard *sh = op->spare.shard;
    shard_rdlock(&sh->lock);
    struct entry *old = do_table_find(s, sh, op->hash, op->key, op->key_len, NULL);
    rc = op->step(op, old, old != NULL && !entry_is_expired(old, op->now), false);
    size_t freed = old != NULL ? entry_footprint(s, old) : 0;
    shard_unlock(&sh->lock);
    if (rc == 0)
        rc = memory_make_room(s, &op->spare, freed);
    return rc == 0 ? 0 : write_end(s, op, rc);
}

/* The critical section: decides, links and reads back the meta under the shard's write lock. */
static int write_commit(struct store *s, struct write_op *op)
{
    struct shard *sh = op->spare.shard;
    entry_link *link;
    shard_wrlock(&sh->lock);
    struct entry *old = do_table_find(s, sh, op->hash, op->key, op->key_len, &link);
    bool live = old != NULL && !entry_is_expired(old, op->now);
    int rc = op->step(op, old, live, true);
    if (rc == 0 && !memory_admits(s, old))
        rc = STORE_EFULL;
    if (rc == 0) {
        op->old = do_link(s, sh, op->hash, op->e, old, link);
        op->old_was_live = live;
        /*
         * What memory_evict_to_bound may take back as this write's own entry:
         * only a version no other write links. A copy that keeps its
         * version (store_set_ttl) claims none, so a concurrent copy of the
         * same version is never evicted in its name.
         */
        op->spare.version = op->keeps_version ? 0 : op->e->version;
        fill_meta(op->meta, op->e, op->now, !live); /* e may be replaced as soon as the lock drops */
    }
    shard_unlock(&sh->lock);
    return rc;
}

/* Runs a write whose op->e, key, now, step (and ctx, meta) are set. Returns 0 or the write's error. */
static int write_run(struct store *s, struct write_op *op)
{
    int rc = write_begin(s, op);
    if (rc != 0)
        return rc;
    return write_end(s, op, write_commit(s, op));
}

/* ---- set, incr --------------------------------------------------------- */

/* Whether a write with these options may replace old: STORE_EEXISTS, STORE_EVERSION or 0. */
static int set_condition(const struct store_set_opts *opts, const struct entry *old, bool live)
{
    if (opts->mode == STORE_SET_IF_ABSENT && live)
        return STORE_EEXISTS;
    if (opts->mode == STORE_SET_IF_VERSION && (!live || old->version != opts->version))
        return STORE_EVERSION;
    return 0;
}

/* store_set's step: the condition only (its entry is complete before the lock). ctx: the options. */
static int set_step(struct write_op *op, struct entry *old, bool live, bool fill)
{
    (void)fill;
    return set_condition(op->ctx, old, live);
}

/*
 * Builds the entry store_set and store_restore write, expiring ttl_ms after
 * now (0: never). Returns 0, STORE_EINVAL or STORE_ENOMEM.
 */
static int build_value_entry(struct store *s, const void *key, size_t key_len, const struct store_value *value,
                             int64_t ttl_ms, int64_t now, struct entry **out)
{
    size_t ct_len = value->kind == STORE_KIND_BYTES ? value->content_type_len : 0;
    if (key_len > STORE_MAX_KEY_LEN || value->len > STORE_MAX_VALUE_LEN || ct_len > STORE_MAX_CONTENT_TYPE_LEN ||
        (unsigned)value->kind > STORE_KIND_BYTES || ttl_ms < 0 || ttl_ms > INT64_MAX - now)
        return STORE_EINVAL;
    int has_expiry = ttl_ms > 0;
    struct entry *e =
        entry_new(s, key, key_len, value->kind, value->content_type, ct_len, value->len, has_expiry, now + ttl_ms);
    if (e == NULL)
        return STORE_ENOMEM;
    if (value->len)
        memcpy(entry_value(e), value->data, value->len);
    e->value_len = (uint32_t)value->len;
    *out = e;
    return 0;
}

int store_set(struct store *s, const void *key, size_t key_len, const struct store_value *value,
              const struct store_set_opts *opts, struct store_meta *meta)
{
    static const struct store_set_opts defaults = {0};
    if (opts == NULL)
        opts = &defaults;
    int64_t now = store_now_ms(s);
    struct entry *e;
    int rc = build_value_entry(s, key, key_len, value, opts->ttl_ms, now, &e);
    if (rc != 0)
        return rc;
    struct write_op op = {
        .e = e, .key = key, .key_len = key_len, .now = now, .step = set_step, .ctx = (void *)opts, .meta = meta};
    return write_run(s, &op);
}

int store_restore(struct store *s, const void *key, size_t key_len, const struct store_value *value, int64_t ttl_ms,
                  uint64_t version)
{
    static const struct store_set_opts always = {0};
    if (version == 0)
        return STORE_EINVAL;
    int64_t now = store_now_ms(s);
    struct entry *e;
    int rc = build_value_entry(s, key, key_len, value, ttl_ms, now, &e);
    if (rc != 0)
        return rc;
    e->version = version; /* do_link keeps it and raises the shard's counter past it */
    struct write_op op = {.e = e, .key = key, .key_len = key_len, .now = now, .step = set_step, .ctx = (void *)&always};
    return write_run(s, &op);
}

uint64_t store_version_floor(struct store *s)
{
    uint64_t floor = 0;
    for (size_t i = 0; i < s->nshards; i++) {
        struct shard *sh = &s->shards[i];
        shard_rdlock(&sh->lock);
        if (sh->next_version > floor)
            floor = sh->next_version;
        shard_unlock(&sh->lock);
    }
    return floor;
}

void store_hash_key(const struct store *s, uint64_t out[2])
{
    memcpy(out, s->hash_key, sizeof(s->hash_key));
}

void store_raise_versions(struct store *s, uint64_t floor)
{
    for (size_t i = 0; i < s->nshards; i++) {
        struct shard *sh = &s->shards[i];
        shard_wrlock(&sh->lock);
        if (sh->next_version < floor)
            sh->next_version = floor;
        shard_unlock(&sh->lock);
    }
}

/* Parses the JSON integer an entry holds. Returns 0 or STORE_ENOTINT. */
static int entry_integer(struct entry *e, int64_t *out)
{
    char text[INT64_TEXT_MAX + 1], *end;
    if (e->kind != STORE_KIND_JSON || e->value_len == 0 || e->value_len > INT64_TEXT_MAX)
        return STORE_ENOTINT;
    memcpy(text, entry_value(e), e->value_len);
    text[e->value_len] = '\0';
    if (!(text[0] == '-' || (text[0] >= '0' && text[0] <= '9')))
        return STORE_ENOTINT;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end != text + e->value_len)
        return STORE_ENOTINT;
    *out = v;
    return 0;
}

struct incr_args {
    const struct store_set_opts *opts;
    int64_t by;
    int64_t sum; /* out: what the increment stores */
};

/*
 * store_incr's step: the condition, then STORE_ENOTINT or STORE_EOVERFLOW;
 * filling, writes the sum and keeps a live entry's expiry (a new key gets
 * opts->ttl_ms).
 */
static int incr_step(struct write_op *op, struct entry *old, bool live, bool fill)
{
    struct incr_args *a = op->ctx;
    int64_t base = 0;
    int rc = set_condition(a->opts, old, live);
    if (rc == 0 && live)
        rc = entry_integer(old, &base);
    if (rc == 0 && __builtin_add_overflow(base, a->by, &a->sum))
        rc = STORE_EOVERFLOW;
    if (rc != 0 || !fill)
        return rc;
    int64_t ttl_ms = a->opts->ttl_ms;
    entry_set_expires_at(op->e, live ? entry_expires_at(old) : ttl_ms > 0 ? op->now + ttl_ms : 0);
    char text[INT64_TEXT_MAX + 1];
    op->e->value_len = (uint32_t)snprintf(text, sizeof(text), "%" PRId64, a->sum);
    memcpy(entry_value(op->e), text, op->e->value_len);
    return 0;
}

/*
 * A read of one key's entry: lock-free inside an EBR section, or under the
 * shard's read lock where the calling thread has no EBR record (out of
 * memory) or in bench/store's locked-read builds. The entry read_begin
 * returns (or NULL) stays allocated until read_end; it is immutable once
 * linked, so it can be read whole without the write lock (internal.h).
 */
struct read_section {
    struct shard *shard;
    struct ebr_thread *self; /* the calling thread's record, or NULL */
    bool lock_free;
};

static struct entry *read_begin(struct store *s, const void *key, size_t key_len, struct read_section *r)
{
    uint64_t hash = store_hash(s, key, key_len);
    r->shard = shard_for(s, hash);
    r->self = ebr_this_thread(s);
#ifdef STORE_LOCKED_READS
    r->lock_free = false; /* bench/store's lock-based baselines */
#else
    r->lock_free = r->self != NULL;
#endif
    if (r->lock_free) {
        ebr_enter(r->self);
        return table_lookup(s, r->shard, hash, key, key_len);
    }
    shard_rdlock(&r->shard->lock);
    return do_table_find(s, r->shard, hash, key, key_len, NULL);
}

static void read_end(struct read_section *r)
{
    if (r->lock_free)
        ebr_exit(r->self);
    else
        shard_unlock(&r->shard->lock);
}

void store_prefetch(struct store *s, const struct store_key *keys, size_t n)
{
    struct ebr_thread *self = ebr_this_thread(s);
    if (self == NULL)
        return; /* no EBR record: reads take the lock, and a hint is not worth one */
    if (n > STORE_PREFETCH_MAX)
        n = STORE_PREFETCH_MAX;
    entry_link *slots[STORE_PREFETCH_MAX];
    ebr_enter(self); /* the tables read here stay allocated until ebr_exit */
    for (size_t i = 0; i < n; i++) {
        uint64_t hash = store_hash(s, keys[i].bytes, keys[i].len);
        struct table *t = shard_table(shard_for(s, hash));
        slots[i] = &t->slots[hash & t->mask];
        __builtin_prefetch(slots[i]);
    }
    /* By now the first buckets have arrived: load each, and start on its first entry (and its key). */
    for (size_t i = 0; i < n; i++) {
        struct entry *e = link_load(s, slots[i]);
        if (e != NULL)
            __builtin_prefetch(e);
    }
    ebr_exit(self);
}

int store_get(struct store *s, const void *key, size_t key_len, store_alloc_fn alloc, void *alloc_ctx,
              struct store_item *item)
{
    int rc = 0;
    struct read_section r;
    struct entry *e = read_begin(s, key, key_len, &r);
    /* Only an entry that can expire needs the clock (a call that costs as much as the hash). */
    int64_t now = e != NULL && entry_expires_at(e) != 0 ? store_now_ms(s) : 0;
    if (e == NULL || entry_is_expired(e, now)) {
        rc = STORE_ENOTFOUND;
    } else {
        size_t ct_len;
        const char *ct = entry_content_type(e, &ct_len);
        size_t ct_bytes = ct ? ct_len + 1 : 0;
        char *buf = alloc ? alloc(alloc_ctx, (size_t)e->value_len + 1 + ct_bytes) : NULL;
        if (alloc != NULL && buf == NULL) {
            rc = STORE_ENOMEM;
        } else {
            item->kind = (enum store_kind)e->kind;
            item->data = buf;
            item->len = e->value_len;
            item->content_type = NULL;
            item->content_type_len = ct_len;
            if (buf != NULL) {
                memcpy(buf, entry_value(e), e->value_len);
                buf[e->value_len] = '\0';
                if (ct != NULL) {
                    item->content_type = buf + e->value_len + 1;
                    memcpy(item->content_type, ct, ct_len);
                    item->content_type[ct_len] = '\0';
                }
            }
            fill_meta(&item->meta, e, now, false);
            policy_hit(s, e);
        }
    }
    read_end(&r);

    if (rc == 0)
        stat_add_by(s, r.self, STAT_HITS, 1);
    else if (rc == STORE_ENOTFOUND)
        stat_add_by(s, r.self, STAT_MISSES, 1);
    return rc;
}

int store_peek(struct store *s, const void *key, size_t key_len, struct store_meta *meta)
{
    struct read_section r;
    struct entry *e = read_begin(s, key, key_len, &r);
    int64_t now = e != NULL && entry_expires_at(e) != 0 ? store_now_ms(s) : 0;
    int rc = e == NULL || entry_is_expired(e, now) ? STORE_ENOTFOUND : 0;
    if (rc == 0)
        fill_meta(meta, e, now, false); /* and no policy_hit, no statistics: a peek leaves no trace */
    read_end(&r);
    return rc;
}

int store_delete(struct store *s, const void *key, size_t key_len, uint64_t if_version)
{
    uint64_t hash = store_hash(s, key, key_len);
    struct shard *sh = shard_for(s, hash);
    int64_t now = store_now_ms(s);
    int rc = 0;

    entry_link *link;
    shard_wrlock(&sh->lock);
    struct entry *e = do_table_find(s, sh, hash, key, key_len, &link);
    bool live = e != NULL && !entry_is_expired(e, now);
    if (e == NULL)
        rc = STORE_ENOTFOUND;
    else if (live && if_version != 0 && e->version != if_version)
        rc = STORE_EVERSION;
    if (rc == 0 && live)
        do_report(s, STORE_CHANGE_DELETE, e); /* before the unlink: see do_report */
    if (rc == 0)
        do_table_unlink(s, sh, link, e);
    shard_unlock(&sh->lock);

    if (rc != 0)
        return rc;
    if (!live) {
        stat_add(s, STAT_EXPIRED, 1);
        entry_retire(s, e);
        return STORE_ENOTFOUND;
    }
    stat_add(s, STAT_DELETES, 1);
    entry_retire(s, e);
    return 0;
}

int store_incr(struct store *s, const void *key, size_t key_len, int64_t by, const struct store_set_opts *opts,
               int64_t *result, struct store_meta *meta)
{
    static const struct store_set_opts defaults = {0};
    if (opts == NULL)
        opts = &defaults;
    int64_t now = store_now_ms(s);
    if (key_len > STORE_MAX_KEY_LEN || opts->ttl_ms < 0 || opts->ttl_ms > INT64_MAX - now)
        return STORE_EINVAL;

    /* Counters always carry an expiry slot, so the entry can be sized before the lock. */
    struct entry *e = entry_new(s, key, key_len, STORE_KIND_JSON, NULL, 0, INT64_TEXT_MAX, 1, 0);
    if (e == NULL)
        return STORE_ENOMEM;
    struct incr_args args = {.opts = opts, .by = by};
    struct write_op op = {
        .e = e, .key = key, .key_len = key_len, .now = now, .step = incr_step, .ctx = &args, .meta = meta};
    int rc = write_run(s, &op);
    if (rc == 0)
        *result = args.sum;
    return rc;
}

/* ---- set_ttl ------------------------------------------------------------- */

/*
 * Copies the live entry under key with a new expiry (0: none), or returns
 * what stops it: STORE_ENOTFOUND, STORE_EVERSION (if_version), STORE_ENOMEM,
 * or 1 when there is nothing to change (no expiry to remove; *meta filled).
 * The copy keeps the entry's version: store_set_ttl links it only in place
 * of that same version.
 */
static int copy_with_expiry(struct store *s, const void *key, size_t key_len, int64_t expires_at, uint64_t if_version,
                            int64_t now, struct entry **copy, struct store_meta *meta)
{
    struct read_section r;
    struct entry *e = read_begin(s, key, key_len, &r);
    int rc = 0;
    if (e == NULL || entry_is_expired(e, now))
        rc = STORE_ENOTFOUND;
    else if (if_version != 0 && e->version != if_version)
        rc = STORE_EVERSION;
    else if (expires_at == 0 && entry_expires_at(e) == 0)
        rc = 1;
    else if ((*copy = entry_clone(s, e, expires_at)) == NULL)
        rc = STORE_ENOMEM;
    if (rc == 1)
        fill_meta(meta, e, now, false);
    read_end(&r);
    return rc;
}

/* Copies store_set_ttl makes of a key that keeps changing under it before it gives up. */
#define SET_TTL_ATTEMPTS 8

/* store_set_ttl's step: only in place of the live entry that was copied (same version). */
static int same_version_step(struct write_op *op, struct entry *old, bool live, bool fill)
{
    (void)fill;
    return live && old->version == op->e->version ? 0 : STORE_EVERSION;
}

int store_set_ttl(struct store *s, const void *key, size_t key_len, int64_t ttl_ms, uint64_t if_version,
                  struct store_meta *meta)
{
    if (key_len > STORE_MAX_KEY_LEN || ttl_ms < 0 || ttl_ms > INT64_MAX - store_now_ms(s))
        return STORE_EINVAL;

    /*
     * Entries are immutable for lock-free readers, so the new expiry goes
     * into a copy, made with no lock held and linked only if the key still
     * holds the version copied; if a write came in between (or the entry
     * expired), copy again: the next copy sees the write, or the absence.
     * A key rewritten faster than its value can be copied would keep this
     * going, so after SET_TTL_ATTEMPTS copies it gives up (STORE_EVERSION).
     */
    for (int attempt = 0; attempt < SET_TTL_ATTEMPTS; attempt++) {
        int64_t now = store_now_ms(s);
        int64_t expires_at = ttl_ms > 0 ? now + ttl_ms : 0;
        struct entry *e = NULL;
        int rc = copy_with_expiry(s, key, key_len, expires_at, if_version, now, &e, meta);
        if (rc != 0)
            return rc > 0 ? 0 : rc;
        struct write_op op = {.e = e,
                              .key = key,
                              .key_len = key_len,
                              .now = now,
                              .step = same_version_step,
                              .meta = meta,
                              .keeps_version = true};
        rc = write_run(s, &op);
        if (rc != STORE_EVERSION)
            return rc;
    }
    return STORE_EVERSION;
}

size_t store_flush(struct store *s)
{
    size_t live = 0;
    int64_t now = store_now_ms(s);
    for (size_t i = 0; i < s->nshards; i++) {
        struct shard *sh = &s->shards[i];
        struct entry *dead = NULL;

        shard_wrlock(&sh->lock);
        struct table *t = shard_table(sh);
        for (size_t b = 0; b <= t->mask; b++) {
            struct entry *first = entry_at(s, atomic_load_explicit(&t->slots[b], memory_order_relaxed));
            /* Reported before the bucket is emptied: see do_report. */
            for (struct entry *e = first; e != NULL;
                 e = entry_at(s, atomic_load_explicit(&e->chain, memory_order_relaxed)))
                if (!entry_is_expired(e, now)) {
                    live++;
                    do_report(s, STORE_CHANGE_FLUSH, e);
                }
            atomic_store_explicit(&t->slots[b], 0, memory_order_release);
            /* Chain links stay as they are for readers still walking them; the queue links carry the list. */
            for (struct entry *e = first; e != NULL;
                 e = entry_at(s, atomic_load_explicit(&e->chain, memory_order_relaxed))) {
                e->newer = entry_ref(s, dead);
                dead = e;
            }
        }
        do_policy_reset(s, sh, 0);
        atomic_store_explicit(&sh->count, 0, memory_order_relaxed);
        shard_unlock(&sh->lock);

        while (dead != NULL) { /* retiring may free a batch of limbo: not under the lock */
            struct entry *next = entry_at(s, dead->newer);
            entry_retire(s, dead);
            dead = next;
        }
    }
    return live;
}

size_t store_count(const struct store *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nshards; i++)
        n += atomic_load_explicit(&s->shards[i].count, memory_order_relaxed);
    return n;
}

void store_stats(const struct store *s, struct store_stats *out)
{
    struct ebr_totals totals;
    memset(out, 0, sizeof(*out));
    ebr_totals(s, &totals);
    out->hits = totals.stats[STAT_HITS];
    out->misses = totals.stats[STAT_MISSES];
    out->sets = totals.stats[STAT_SETS];
    out->deletes = totals.stats[STAT_DELETES];
    out->expired = totals.stats[STAT_EXPIRED];
    out->evicted = totals.stats[STAT_EVICTED];
    out->entries = store_count(s);
    size_t used = atomic_load_explicit(&s->used, memory_order_relaxed);
    out->bytes_used = used > totals.credits ? used - totals.credits : 0; /* read at different instants */
    out->bytes_pending_free = totals.pending_bytes;
    out->max_memory = s->max_memory;
}

void store_trim(struct store *s)
{
    slab_trim(&s->slab);
}
