/*
 * cachette store: a thread-safe, memory-bounded, in-memory key/value table.
 *
 * The store knows nothing of HTTP or JSON: it holds byte strings tagged with a
 * kind, so any protocol front (HTTP today, RESP later) or any C program can use
 * it in-process. Every function here may be called from any thread at any time
 * between store_create() and store_destroy().
 *
 * Errors are negative `enum store_error` values; 0 means success. Results come
 * back through out-parameters. Nothing returned points into the store: values
 * are copied out of the entry while it cannot be freed (gets take no lock:
 * entries are immutable and reclaimed by epochs, see docs/DESIGN.md).
 */
#ifndef CACHETTE_STORE_H
#define CACHETTE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* What the value bytes mean. The store only keeps the tag; the front decides. */
enum store_kind {
    STORE_KIND_JSON = 0,   /* compact JSON text of a non-string value */
    STORE_KIND_STRING = 1, /* a text string (UTF-8, may hold NUL), kept unquoted */
    STORE_KIND_BYTES = 2,  /* opaque bytes with a content type */
};

enum store_error {
    STORE_OK = 0,
    STORE_ENOTFOUND = -1, /* no live entry under that key */
    STORE_EEXISTS = -2,   /* STORE_SET_IF_ABSENT, and a live entry exists */
    STORE_EVERSION = -3,  /* the entry's version is not the one asked for */
    STORE_ENOMEM = -4,    /* an allocation failed */
    STORE_EFULL = -5,     /* does not fit under max_memory, even after eviction */
    STORE_ENOTINT = -6,   /* store_incr on a value that is not a JSON integer */
    STORE_EOVERFLOW = -7, /* store_incr would leave the int64 range */
    STORE_EINVAL = -8,    /* an argument is out of range (key or value length, ttl) */
};

/* A short English description of an error code, for logs. Never NULL. */
const char *store_strerror(int err);

enum store_eviction {
    STORE_EVICT_SIEVE = 0,  /* evict with SIEVE when max_memory is reached */
    STORE_EVICT_NONE = 1,   /* refuse writes that would grow past it with STORE_EFULL instead */
    STORE_EVICT_S3FIFO = 2, /* evict with S3-FIFO */
};

/* Milliseconds on a clock that never goes back (readings below 0 count as 0). All expiry is read through it. */
typedef int64_t (*store_clock_fn)(void *ctx);

/*
 * A committed change, as the store reports it to its change hook
 * (store_config.on_change), and an entry as store_iterate shows it.
 */
enum store_change_op {
    STORE_CHANGE_SET = 1,    /* the key now holds this entry (set, incr, set_ttl, restore) */
    STORE_CHANGE_DELETE = 2, /* store_delete removed the key's live entry */
    STORE_CHANGE_EVICT = 3,  /* the memory bound removed the key's entry */
    STORE_CHANGE_FLUSH = 4,  /* store_flush removed the key's live entry (one change per entry) */
};

struct store_change {
    enum store_change_op op;
    const char *key;          /* not NUL-terminated */
    size_t key_len;
    /* STORE_CHANGE_SET only: */
    enum store_kind kind;
    const void *value;
    size_t value_len;
    const char *content_type; /* STORE_KIND_BYTES only (not NUL-terminated), else NULL */
    size_t content_type_len;
    int64_t expires_at_ms;    /* on the store's clock (store_now_ms); 0 = never */
    uint64_t version;
};

/*
 * The change hook: called for every change of the store, in the order the
 * changes are made to each key, while the key's shard is locked, so another
 * change to the same key waits for it to return, and before the change is
 * visible: a read that sees it (the new entry, or the key gone) runs after
 * the hook returned. It must be quick (copy
 * what it needs), must not call into the store, and the pointers in *change
 * are valid only during the call.
 * Expiry is not reported: an entry's deadline is in its SET change.
 */
typedef void (*store_change_fn)(void *ctx, const struct store_change *change);

struct store_config {
    size_t max_memory;             /* bytes of entries and tables; 0 = unbounded (see STORE_ENTRY_RESERVE) */
    unsigned shard_bits;           /* 2^shard_bits shards; 0 = default (8), at most 16 */
    bool single_shard;             /* one shard, one lock: the baseline of bench/store */
    enum store_eviction eviction;  /* what to do at max_memory */
    store_clock_fn clock;          /* NULL = CLOCK_MONOTONIC */
    void *clock_ctx;               /* passed to clock */
    store_change_fn on_change;     /* NULL = none */
    void *change_ctx;              /* passed to on_change */
    const uint64_t *hash_key;      /* NULL = random; else 2 words, from store_hash_key of a saved store */
};

/* Largest key and value the store can hold; fronts set lower limits. */
#define STORE_MAX_KEY_LEN 65535u
#define STORE_MAX_VALUE_LEN ((size_t)UINT32_MAX)
#define STORE_MAX_CONTENT_TYPE_LEN 255u

/*
 * Creates an empty store. Returns NULL when cfg is out of range or memory is
 * short. cfg may be NULL for the defaults (unbounded, SIEVE, monotonic clock).
 * The store reserves STORE_ENTRY_RESERVE bytes of address space for its
 * entries (memory only as they use it): every entry's header and every entry
 * up to 8 KiB live there, so past it writes fail with STORE_ENOMEM whatever
 * max_memory says (the server caps --max-memory at three quarters of it).
 */
#define STORE_ENTRY_RESERVE ((size_t)32 << 30)
struct store *store_create(const struct store_config *cfg);

/* Frees the store and every entry. No other thread may be using it. */
void store_destroy(struct store *store);

/* The store's clock, in milliseconds. */
int64_t store_now_ms(const struct store *store);

/* A value to write. content_type is used with STORE_KIND_BYTES only. */
struct store_value {
    enum store_kind kind;
    const void *data;
    size_t len;
    const char *content_type;
    size_t content_type_len;
};

enum store_set_mode {
    STORE_SET_ALWAYS = 0,     /* create or replace */
    STORE_SET_IF_ABSENT = 1,  /* create only; STORE_EEXISTS if a live entry exists */
    STORE_SET_IF_VERSION = 2, /* replace only the entry whose version is opts.version */
};

struct store_set_opts {
    int64_t ttl_ms;           /* > 0: expires that long after now; 0: never */
    enum store_set_mode mode;
    uint64_t version;         /* with STORE_SET_IF_VERSION */
};

/* What a write or read learned about the entry it touched. */
struct store_meta {
    uint64_t version;         /* changes on every write of the value (not on store_set_ttl); never 0 */
    int64_t ttl_ms;           /* remaining lifetime, or -1 when it never expires */
    bool created;             /* the write created the key (it was absent or expired) */
};

/*
 * Stores value under key. opts NULL means STORE_SET_ALWAYS without expiry.
 * Returns 0, STORE_EINVAL (lengths, negative ttl), STORE_EEXISTS, STORE_EVERSION
 * (also when the key is absent), STORE_EFULL or STORE_ENOMEM. On failure
 * the key is unchanged, with one exception: a STORE_EFULL may follow the
 * eviction of every other key, and where the write's own growth of the
 * table did not fit even then, of the key too. Eviction on a write's behalf
 * takes the key's own entry only in that last case. meta may be NULL.
 */
int store_set(struct store *store, const void *key, size_t key_len, const struct store_value *value,
              const struct store_set_opts *opts, struct store_meta *meta);

/*
 * Called once by store_get, while the entry cannot be freed (in the store
 * benchmark's locked-read builds, with the shard's read lock held), for the
 * buffer the value is copied into. It must not call into the store. Returning NULL makes
 * store_get fail with STORE_ENOMEM.
 */
typedef void *(*store_alloc_fn)(void *ctx, size_t size);

/* A copy of an entry, in memory from the caller's store_alloc_fn. */
struct store_item {
    enum store_kind kind;
    char *data;               /* value bytes, followed by a NUL not counted in len */
    size_t len;
    char *content_type;       /* STORE_KIND_BYTES only, NUL-terminated; else NULL */
    size_t content_type_len;
    struct store_meta meta;   /* meta.created is false */
};

/* A key, for calls that take several. */
struct store_key {
    const void *bytes;
    size_t len;
};

/* The most keys store_prefetch looks at in one call (it ignores the rest). */
#define STORE_PREFETCH_MAX 32

/*
 * A hint that these keys are about to be read: starts loading into the CPU
 * cache what a read of each touches (its bucket, then its entry), so that a
 * pipeline of reads waits for memory once rather than once per key. Changes
 * nothing and takes no lock; keys that do not exist cost a bucket's load.
 */
void store_prefetch(struct store *store, const struct store_key *keys, size_t n);

/*
 * Copies the live entry under key into memory from alloc(alloc_ctx, …) and
 * marks it recently used. With alloc NULL nothing is copied: item gets the
 * kind, length and meta only, data and content_type are NULL. Returns 0,
 * STORE_ENOTFOUND (absent or expired) or STORE_ENOMEM. Takes no lock (the
 * read lock only to retry a miss that raced a table's growth).
 */
int store_get(struct store *store, const void *key, size_t key_len, store_alloc_fn alloc, void *alloc_ctx,
              struct store_item *item);

/*
 * The metadata of the live entry under key (version, remaining ttl_ms,
 * created false) into *meta (may be NULL), with no side effect: unlike
 * store_get it neither marks the entry recently used for eviction nor counts
 * a hit or a miss, so a front can check a precondition (If-Match) without
 * changing what the cache keeps or reports. Returns 0 or STORE_ENOTFOUND
 * (absent or expired). Takes no lock, as store_get.
 */
int store_peek(struct store *store, const void *key, size_t key_len, struct store_meta *meta);

/*
 * Changes only the expiry of the live entry under key, atomically: ttl_ms > 0
 * makes it expire that long after now, ttl_ms 0 makes it never expire.
 * if_version 0 changes whatever version is there; otherwise only that
 * version. The value, kind, content type and version stay as they are (the
 * version names the value, as an HTTP ETag does, and the value has not
 * changed); for eviction it counts as a write of the key, as store_set, and
 * in store_stats as a set (removing an expiry that is not there changes and
 * counts nothing). meta (may be NULL) gets the version and the new remaining
 * ttl_ms (created false). Returns 0, STORE_ENOTFOUND (absent or expired),
 * STORE_EVERSION (not if_version, or, with if_version 0, the value kept
 * changing under the copy: 8 writes in a row landed between copy and link),
 * STORE_EINVAL (key length, negative ttl) or, since an entry gains room for an
 * expiry or is copied to change it, STORE_ENOMEM or STORE_EFULL (then the key
 * is unchanged, as for store_set).
 */
int store_set_ttl(struct store *store, const void *key, size_t key_len, int64_t ttl_ms, uint64_t if_version,
                  struct store_meta *meta);

/*
 * Deletes key. if_version 0 deletes whatever is there; otherwise only that
 * version. Returns 0, STORE_ENOTFOUND or STORE_EVERSION.
 */
int store_delete(struct store *store, const void *key, size_t key_len, uint64_t if_version);

/*
 * Atomically adds `by` to the JSON integer under key and returns the sum in
 * *result. An absent or expired key counts from 0 and, when opts->ttl_ms > 0,
 * is created with that lifetime; an existing key keeps its expiry. opts->mode
 * conditions it as for store_set: STORE_SET_IF_ABSENT only creates,
 * STORE_SET_IF_VERSION only increments that version of a live entry (opts
 * may be NULL: no TTL, no condition). Returns 0, STORE_ENOTINT,
 * STORE_EOVERFLOW, STORE_EEXISTS, STORE_EVERSION, STORE_EFULL, STORE_ENOMEM or
 * STORE_EINVAL.
 */
int store_incr(struct store *store, const void *key, size_t key_len, int64_t by, const struct store_set_opts *opts,
               int64_t *result, struct store_meta *meta);

/* Called by store_scan for each key, with a shard lock held: copy, do not call the store. */
typedef void (*store_key_fn)(void *ctx, const char *key, size_t key_len);

/*
 * Visits live keys starting with prefix, resuming at cursor (0 = start). Stops
 * after about `limit` keys (never fewer than one hash bucket's worth) and sets
 * *next_cursor to pass back, or to 0 when the scan is complete. A key present
 * for the whole scan is visited at least once, even while the table grows;
 * keys may be visited more than once. Returns the number of keys visited.
 */
size_t store_scan(struct store *store, uint64_t cursor, const void *prefix, size_t prefix_len, size_t limit,
                  store_key_fn fn, void *fn_ctx, uint64_t *next_cursor);

/*
 * Deletes every entry; returns how many were live. It empties one shard at
 * a time, so a write to a shard it has passed stays; the change hook hears
 * of each live entry it removes, under that entry's shard lock.
 */
size_t store_flush(struct store *store);

/* ---- saving and loading (src/persist/ uses these) ---- */

/* Called by store_iterate for each live entry (op STORE_CHANGE_SET), with its shard's read lock held: copy, do not call the store. */
typedef void (*store_entry_fn)(void *ctx, const struct store_change *entry);

/*
 * Visits live entries, resuming at cursor (0 = start), as store_scan visits
 * keys: stops after about `limit` entries, sets *next_cursor (0 when done),
 * visits every entry present for the whole walk at least once (some maybe
 * twice, then the later visit shows a later value), and holds one shard's
 * read lock at a time, only while it visits. Returns the entries visited.
 */
size_t store_iterate(struct store *store, uint64_t cursor, size_t limit, store_entry_fn fn, void *fn_ctx,
                     uint64_t *next_cursor);

/*
 * Writes a saved entry back: as store_set with STORE_SET_ALWAYS and ttl_ms
 * (> 0: expires that long after now; 0: never), but the entry keeps
 * `version` (not 0), and later writes in its shard get versions above it.
 * Returns as store_set does; STORE_EINVAL also for version 0.
 */
int store_restore(struct store *store, const void *key, size_t key_len, const struct store_value *value,
                  int64_t ttl_ms, uint64_t version);

/*
 * One more than the highest version given so far (to a key that may since
 * have been deleted): a store that calls store_raise_versions with it after
 * a restart never gives a version seen before it.
 */
uint64_t store_version_floor(struct store *store);

/* Makes every later version at least floor. */
void store_raise_versions(struct store *store, uint64_t floor);

/*
 * The store's secret hashing key (2 words). A store created with it
 * (store_config.hash_key) puts every key in the same shard and bucket, so
 * reloading a saved walk visits one shard's table at a time: a load without
 * cache misses on the tables. Whoever holds it can aim keys at one bucket:
 * keep it as private as the data.
 */
void store_hash_key(const struct store *store, uint64_t out[2]);

/* Entries held, expired ones not yet reclaimed included. */
size_t store_count(const struct store *store);

struct store_stats {
    size_t entries;           /* as store_count */
    size_t bytes_used;        /* entries and hash tables, as the allocator sized them */
    size_t bytes_pending_free; /* removed entries not yet freed: readers may still hold them (not in bytes_used) */
    size_t max_memory;        /* 0 = unbounded */
    uint64_t hits, misses;    /* store_get outcomes (store_peek counts neither) */
    uint64_t sets, deletes;   /* successful store_set/store_incr/store_set_ttl, store_delete */
    uint64_t expired;         /* entries reclaimed because their time ran out */
    uint64_t evicted;         /* entries dropped to stay under max_memory */
};

/* A snapshot of the counters; each is exact, the set is not one instant. */
void store_stats(const struct store *store, struct store_stats *out);

/*
 * Reclaims expired entries, visiting at most max_buckets hash buckets from
 * where the previous call stopped, and frees removed entries that readers
 * held back from the thread that removed them. Meant for a background thread
 * to call on a timer: the work per call is bounded, and each shard lock is
 * held for at most a few dozen buckets. Returns the number of entries
 * reclaimed.
 */
size_t store_expire_step(struct store *store, size_t max_buckets);

/*
 * Hands back to the system the memory of freed entries that lies between
 * live ones (what a mass expiry or deletion leaves behind); the store keeps
 * working as before. Takes each size class's allocator lock in turn, so
 * writers of one size wait at most one walk of that class's pages. Meant for
 * the same background thread, when RSS has outgrown bytes_used.
 */
void store_trim(struct store *store);

#endif
