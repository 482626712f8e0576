/*
 * Internals shared by the store's modules (store.c, table.c, evict.c,
 * sieve.c, s3fifo.c, expire.c). Nothing outside src/store/ includes this file.
 *
 * Locking. The store is cut into 2^shard_bits shards by the top bits of a
 * key's hash. Each shard has one rwlock serialising its writers: every
 * change to its hash table, its eviction queues and its entries' writer-side
 * fields takes the write lock. Gets take no lock at all: they walk the table
 * with acquire loads inside an epoch-based reclamation section (ebr.c), which
 * keeps every entry and table they can reach from being freed until they are
 * done. This works because an entry is immutable once linked (a write
 * replaces the whole entry, store_set_ttl included), so a reader only ever
 * needs the links to it (32-bit references, entry_ref) to be published with
 * release stores, never a lock. Scans take the read lock. Functions named
 * do_*() expect the caller to hold the shard's write lock (or, where they
 * say so, its read lock).
 *
 * The lock order. Five kinds of lock, always taken in this order, never
 * back up it, and never two of one kind at once:
 *
 *   1. store.sweep_lock (mutex): one expiry sweep at a time; guards
 *      sweep_shard and sweep_bucket. Held across the sweep's shard locks
 *      and its retiring of what it unlinked (expire.c).
 *   2. shard.lock (rwlock): the shard's table, queues, ghost, retired
 *      tables, version counter and its entries' writer-side fields. One
 *      shard at a time: eviction and flush visit shards in turn, unlocking
 *      each before the next (evict.c), so shards need no order among
 *      themselves.
 *   3. ebr.lock (mutex): the registry of thread records and the orphan
 *      list (ebr.c). Taken under a shard lock only by a thread's first
 *      registration (ebr_this_thread, e.g. from memory_release); entries
 *      are retired after the shard lock is dropped, and retiring frees
 *      under it.
 *   4. slab_class.lock (mutex): one size class's partial-page list and its
 *      pages' bitmaps (slab.c). Taken to allocate an entry (under a shard's
 *      read lock only by store_set_ttl's copy in a thread with no EBR
 *      record) and to free one (under ebr.lock when the orphans go). One
 *      class at a time, slab_trim included.
 *   5. slab.lock (mutex): the page counters top, committed and free_pages.
 *      Taken under a class lock to take a fresh page, or alone to release
 *      one (after the class lock is dropped).
 *
 * Nothing here calls out of the store (callbacks, JSON, I/O) with any of
 * them held, except store_scan's key callback, store_iterate's entry
 * callback and store_get's alloc under a shard read lock, and the change
 * hook under the write lock, which store.h forbids to call back into the
 * store.
 *
 * `entry.chain` and the table slots are atomics: writers store them with
 * release order under the lock, lock-free readers load them with acquire.
 * `entry.flags` holds the SIEVE visited bit and the S3-FIFO frequency, which
 * readers update; it is only ever touched with atomic operations. The queue
 * links `newer`/`older` are read and written by lock holders only, and once
 * an entry is unlinked, they carry it on its reclamation list.
 *
 * The byte count (`store.used`) and the statistics are atomics: they are
 * updated by whoever changes memory and read without locks.
 */
#ifndef CACHETTE_STORE_INTERNAL_H
#define CACHETTE_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "cachette/store.h"

/* 1 in an ASan build: GCC defines __SANITIZE_ADDRESS__, clang answers __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define STORE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STORE_ASAN 1
#endif
#endif
#ifndef STORE_ASAN
#define STORE_ASAN 0
#endif

/* entry.flags bits */
#define ENTRY_VISITED    0x01u /* SIEVE: read since the hand last passed */
#define ENTRY_HAS_EXPIRY 0x02u /* data starts with an int64 expiry (ms; 0 = none) */
#define ENTRY_IN_MAIN    0x04u /* S3-FIFO: in the main queue, not the small one */
#define ENTRY_FREQ_SHIFT 3     /* S3-FIFO: 2-bit access count, saturating at 3 */
#define ENTRY_FREQ_MASK  (3u << ENTRY_FREQ_SHIFT)
#define ENTRY_EXTERNAL   0x20u /* larger than a slab slot: data holds a pointer to the rest, malloc'd */

/*
 * A bucket slot or an entry's chain link: the reference (entry_ref) of the
 * next entry in the bucket, 0 at the end.
 */
typedef _Atomic(uint32_t) entry_link;

/*
 * One block per entry: this header, then the optional expiry, the key, for
 * STORE_KIND_BYTES one length byte and the content type, then the value (no
 * terminator: 16-byte key + 32-byte value + header is 76 bytes, in an 80-byte
 * slab slot). ENTRY_HEADER_SIZE (28) bytes of header.
 *
 * Entries sit in the store's slab reservation (slab.c), so every link to an
 * entry, in the hash table and the eviction queues, is a 32-bit reference
 * (entry_ref/entry_at), not a pointer.
 */
struct entry {
    entry_link chain;      /* next entry in the same hash bucket */
    uint32_t newer, older; /* eviction queue, newest at the head */
    uint32_t value_len;
    uint64_t version;
    uint16_t key_len;
    uint8_t kind;          /* enum store_kind */
    _Atomic uint8_t flags; /* ENTRY_* bits */
    unsigned char data[];
};
#define ENTRY_HEADER_SIZE offsetof(struct entry, data)

/*
 * The shard lock. A rwlock (writer-preferring) in the server; the store
 * benchmark builds the same sources with -DSTORE_SHARD_MUTEX to measure a
 * plain mutex in its place, and with -DSTORE_LOCKED_READS to make gets take
 * the lock instead of reading lock-free (bench/store/).
 */
#ifdef STORE_SHARD_MUTEX
typedef pthread_mutex_t shard_lock_t;
#define shard_rdlock       pthread_mutex_lock
#define shard_wrlock       pthread_mutex_lock
#define shard_unlock       pthread_mutex_unlock
#define shard_lock_destroy pthread_mutex_destroy
#else
typedef pthread_rwlock_t shard_lock_t;
#define shard_rdlock       pthread_rwlock_rdlock
#define shard_wrlock       pthread_rwlock_wrlock
#define shard_unlock       pthread_rwlock_unlock
#define shard_lock_destroy pthread_rwlock_destroy
#endif

/* A FIFO of entries through entry.newer/older. */
struct queue {
    struct entry *newest, *oldest;
};

/*
 * A shard, laid out so that readers do not share cache lines with what
 * writers change: the lock word, the table (read by every lookup, written
 * only when it grows) and the write-side state each have their own line.
 */
/* A bucket array; replaced whole when it grows, the old one retired. */
struct table {
    size_t mask;                /* buckets - 1 */
    struct table *retired_next; /* on the shard's list of retired tables */
    uint64_t retired_epoch;
    entry_link slots[];
};

struct shard {
    shard_lock_t lock;
    _Atomic(struct table *) table __attribute__((aligned(64)));
    atomic_uint_fast64_t resizes;                   /* odd while the table is being rehashed */
    struct queue main __attribute__((aligned(64))); /* SIEVE's queue; S3-FIFO's main queue M */
    struct queue small;                             /* S3-FIFO's small queue S */
    struct entry *hand;                             /* SIEVE's hand */
    size_t small_bytes, main_bytes;                 /* S3-FIFO: bytes in S and in M */
    uint32_t *ghost;                                /* S3-FIFO: fingerprints of entries evicted from S */
    size_t ghost_mask;                              /* ghost slots - 1 */
    struct table *retired_tables;                   /* replaced tables readers may still be walking */
    uint64_t next_version;
    atomic_size_t count; /* entries linked, written under the lock */
} __attribute__((aligned(64)));

/*
 * Statistics counters. Each thread counts in its own EBR record, which only
 * it writes: a load and a store, no locked instruction, and no cache line
 * that another thread writes. A thread without a record (out of memory)
 * counts in the store's shared set with atomic adds. Reading the statistics
 * sums the shared set and every record, including those of exited threads
 * (a record keeps its counts when a new thread takes it over).
 */
enum stat_kind { STAT_HITS, STAT_MISSES, STAT_SETS, STAT_DELETES, STAT_EXPIRED, STAT_EVICTED, STAT_KINDS };
struct stat_counters {
    atomic_uint_fast64_t n[STAT_KINDS];
};

/*
 * The entry allocator (slab.c): SLAB_RESERVE bytes of address space in pages
 * of 2^SLAB_PAGE_SHIFT bytes, each holding slots of one size class.
 */
#define SLAB_RESERVE      STORE_ENTRY_RESERVE /* 2^32 references of 8 bytes */
#define SLAB_PAGE_SHIFT   16
#define SLAB_MIN_SLOT     48u   /* an entry's header and a 1-byte key fit */
#define SLAB_MAX_SLOT     8192u /* a larger entry is a slot pointing to a malloc'd body (entry.c) */
#define SLAB_CLASSES      107u
#define SLAB_BITMAP_WORDS ((((size_t)1 << SLAB_PAGE_SHIFT) / SLAB_MIN_SLOT + 63) / 64)
#define SLAB_NO_PAGE      UINT32_MAX

/* A page's metadata, kept apart from its memory. */
struct slab_page {
    uint32_t prev, next; /* its class's pages with a free slot; `next` also links the free pages */
    uint16_t used;       /* slots handed out */
    uint8_t class_index;
    uint8_t in_partial; /* on its class's list */
    uint8_t trimmed;    /* slab_trim() has handed back its free slots' memory since a slot was last taken or freed */
    uint64_t free_bits[SLAB_BITMAP_WORDS]; /* 1 = slot free */
};

/* A thread's free slots, per class, linked through their first word (slab.c). */
#define SLAB_CACHE_BYTES 4096u /* per class, or 2 slots where those are larger */
struct slab_cache {
    void *head[SLAB_CLASSES];
    uint8_t count[SLAB_CLASSES];
};

struct slab_class {
    pthread_mutex_t lock;
    uint32_t partial; /* first page with a free slot */
} __attribute__((aligned(64)));

struct slab {
    unsigned char *base;
    struct slab_page *pages; /* one per page of the reservation, touched only once used */
    pthread_mutex_t lock;    /* the three fields below */
    uint32_t top;            /* pages handed out at least once */
    uint32_t committed;      /* pages made accessible */
    uint32_t free_pages;     /* released pages, linked through `next` */
    struct slab_class classes[SLAB_CLASSES];
};

/* Epoch-based reclamation (ebr.c): one record per thread that reads or retires. */
struct ebr_thread {
    atomic_uint_fast64_t epoch; /* the epoch it reads in; 0 outside a read */
    struct entry *limbo;        /* entries it retired, newest first; its own thread only */
    size_t limbo_count;
    atomic_size_t limbo_bytes;         /* their footprint; written by its thread, read by the statistics */
    _Atomic(struct ebr_thread *) next; /* the registry; records are never freed before the store */
    atomic_int in_use;                 /* 0 once its thread has exited: reusable */
    struct store *store;
    atomic_size_t credit;       /* bytes counted in store.used that no entry holds (evict.c); written by its thread */
    struct slab_cache cache;    /* free entry slots; its own thread only */
    struct stat_counters stats; /* written by its thread only */
} __attribute__((aligned(64)));

struct ebr {
    atomic_uint_fast64_t epoch; /* the global epoch, from 1 */
    pthread_key_t key;          /* this thread's record */
    _Atomic(struct ebr_thread *) threads;
    pthread_mutex_t lock;       /* registration and orphans */
    struct entry *orphans;      /* limbo of exited threads, guarded by lock */
    atomic_size_t orphan_bytes; /* their footprint; written under lock */
};

/* The most credit a thread keeps (evict.c), however large the store. */
#define CREDIT_MAX_BYTES (64u * 1024)

struct store {
    struct shard *shards;
    size_t nshards;
    unsigned shard_bits;
    size_t max_memory;
    enum store_eviction eviction;
    store_clock_fn clock;
    void *clock_ctx;
    store_change_fn on_change; /* may be NULL */
    void *change_ctx;
    uint64_t hash_key[2];       /* SipHash key, random per store */
    atomic_size_t used;         /* bytes of entries and bucket arrays, plus the threads' credits */
    size_t credit_max;          /* most bytes of credit one thread keeps: max_memory / 1024, at most CREDIT_MAX_BYTES */
    pthread_mutex_t sweep_lock; /* one expiry sweep at a time */
    size_t sweep_shard, sweep_bucket; /* guarded by sweep_lock */
    struct ebr ebr;
    struct slab slab;
    struct stat_counters shared_stats; /* threads without an EBR record */
};

/*
 * An entry's 32-bit reference: its offset in the slab reservation in 8-byte
 * units (SLAB_RESERVE is 2^35 bytes). 0 is no entry: page 0 is never used.
 */
static inline uint32_t entry_ref(const struct store *s, const struct entry *e)
{
    return e == NULL ? 0 : (uint32_t)(((uintptr_t)e - (uintptr_t)s->slab.base) >> 3);
}

static inline struct entry *entry_at(const struct store *s, uint32_t ref)
{
    return ref == 0 ? NULL : (struct entry *)(s->slab.base + ((size_t)ref << 3));
}

/* The entry a link points at: acquire, so a lock-free reader sees it whole. */
static inline struct entry *link_load(const struct store *s, entry_link *link)
{
    return entry_at(s, atomic_load_explicit(link, memory_order_acquire));
}

/* Points a link at e (NULL: the end); release, publishing e to lock-free readers. Under the write lock. */
static inline void link_store(const struct store *s, entry_link *link, struct entry *e)
{
    atomic_store_explicit(link, entry_ref(s, e), memory_order_release);
}

/* ---- the entry allocator (slab.c) ---- */

int slab_init(struct slab *sl);
void slab_destroy(struct slab *sl);
/*
 * A slot of at least size (<= SLAB_MAX_SLOT) bytes, or NULL when the
 * reservation is used up. `cache` is the calling thread's, or NULL.
 */
void *slab_alloc(struct slab *sl, struct slab_cache *cache, size_t size);
void slab_free(struct slab *sl, struct slab_cache *cache, void *p);
/* Returns every slot in the cache to the pages. */
void slab_cache_flush(struct slab *sl, struct slab_cache *cache);
size_t slab_slot_size(const struct slab *sl, const void *p);
/* The slot a request of size (<= SLAB_MAX_SLOT) bytes gets. */
size_t slab_slot_size_for(size_t size);
/* Hands back to the system the memory of free slots in pages still in use. */
void slab_trim(struct slab *sl);

/* ---- entry layout (entry.c) ---- */

/* Bytes to allocate for an entry of these sizes. */
size_t entry_alloc_size(size_t key_len, enum store_kind kind, size_t ct_len, size_t value_capacity, int has_expiry);
/*
 * A new entry with room for value_capacity bytes of value: every header field
 * set, key and content type copied, value_len 0. NULL when out of memory.
 */
struct entry *entry_new(struct store *s, const void *key, size_t key_len, enum store_kind kind, const char *ct,
                        size_t ct_len, size_t value_capacity, int has_expiry, int64_t expires_at);
/*
 * A new, unlinked copy of e (key, kind, content type, value and version) whose
 * expiry is expires_at (0: none; e's expiry slot is kept if it has one).
 * NULL when out of memory. e must stay allocated meanwhile (an EBR section).
 */
struct entry *entry_clone(struct store *s, const struct entry *e, int64_t expires_at);
const char *entry_key(const struct entry *e);
/* Fills *out (op STORE_CHANGE_SET) with e's key, value, content type, expiry and version. */
void entry_describe(const struct entry *e, struct store_change *out);
unsigned char *entry_value(struct entry *e);
/* STORE_KIND_BYTES: the content type and its length; other kinds: NULL, 0. */
const char *entry_content_type(const struct entry *e, size_t *len);
/* Absolute expiry in store milliseconds, or 0 when it never expires. */
int64_t entry_expires_at(const struct entry *e);
void entry_set_expires_at(struct entry *e, int64_t at);
/* t: the calling thread's record, whose slot cache takes e, or NULL. */
void entry_free(struct store *s, struct ebr_thread *t, struct entry *e);
/* The bytes this entry costs, as the allocator sized it. */
size_t entry_footprint(const struct store *s, const struct entry *e);

static inline int entry_is_expired(const struct entry *e, int64_t now)
{
    int64_t at = entry_expires_at(e);
    return at != 0 && at <= now;
}

static inline int entry_key_equals(const struct entry *e, const void *key, size_t key_len)
{
    return e->key_len == key_len && memcmp(entry_key(e), key, key_len) == 0;
}

/*
 * Reports to the change hook, if any, that e was set (op STORE_CHANGE_SET) or
 * removed. Under the shard's write lock, and before the change is published
 * to lock-free readers (the link, or the unlink): a reader that sees the
 * change can then count on the hook having run, which the persistence
 * relies on to hold a reply until what it shows is on disk.
 */
static inline void do_report(struct store *s, enum store_change_op op, const struct entry *e)
{
    if (s->on_change == NULL)
        return;
    struct store_change change;
    entry_describe(e, &change);
    change.op = op;
    s->on_change(s->change_ctx, &change);
}

/* ---- hashing (hash.c) ---- */

uint64_t store_hash(const struct store *s, const void *key, size_t len);

/* ---- the per-shard hash table (table.c) ---- */

static inline struct shard *shard_for(const struct store *s, uint64_t hash)
{
    return &s->shards[s->shard_bits == 0 ? 0 : hash >> (64 - s->shard_bits)];
}

/* The shard's current bucket array. */
static inline struct table *shard_table(struct shard *sh)
{
    return atomic_load_explicit(&sh->table, memory_order_acquire);
}

int table_init(struct store *s, struct shard *sh);
/*
 * Frees the shard's retired bucket arrays that no reader can still be walking
 * (the last one a shard retired would otherwise stay until it grows again or
 * the store is destroyed). Called when a table grows and by the expiry sweep.
 */
void do_free_retired_tables(struct store *s, struct shard *sh);

/* Frees the table, every entry in it and the retired tables (store_destroy). */
void table_free(struct store *s, struct shard *sh);
/* Finds key under the write (or read) lock; *link_out (if not NULL) gets the slot that points at it. */
struct entry *do_table_find(const struct store *s, struct shard *sh, uint64_t hash, const void *key, size_t key_len,
                            entry_link **link_out);
/* Finds key with no lock, inside an EBR read section: the entry stays valid until ebr_exit. */
struct entry *table_lookup(const struct store *s, struct shard *sh, uint64_t hash, const void *key, size_t key_len);
/* Links a new entry (absent from the table) into its bucket; may grow the table. */
void do_table_insert(struct store *s, struct shard *sh, uint64_t hash, struct entry *e);
/* Replaces old, found through link, by e in the table and the queue. */
void do_table_replace(struct store *s, struct shard *sh, entry_link *link, struct entry *old, struct entry *e);
/* Unlinks e from its bucket and from the queue. */
void do_table_remove(struct store *s, struct shard *sh, struct entry *e);
/* The same, when the caller already has the slot that points at e (from do_table_find). */
void do_table_unlink(struct store *s, struct shard *sh, entry_link *link, struct entry *e);

/* ---- epoch-based reclamation (ebr.c) ---- */

int ebr_init(struct store *s);
/* Frees everything retired (no thread may be using the store). */
void ebr_destroy(struct store *s);
/* Enters a read section as the calling thread, whose record t is (ebr_this_thread). */
void ebr_enter(struct ebr_thread *t);
void ebr_exit(struct ebr_thread *t);
/* The current epoch, read after whatever was unlinked before the call. */
uint64_t ebr_retire_epoch(struct store *s);
/* Whether memory retired at epoch `tag` can no longer be reached by any reader. */
int ebr_is_safe(struct store *s, uint64_t tag);
/* Frees the orphans no reader can still reach (for the periodic sweep: a thread's limbo may have gone there). */
void ebr_reclaim_orphans(struct store *s);

/*
 * The same test for an entry, whose header keeps only the low 32 bits of its
 * tag, against an epoch read before or after the tag was taken: the
 * difference is signed, so an entry retired after `epoch` was read (an
 * orphan added meanwhile) is never taken for an old one. An entry left in
 * limbo 2^31 epochs or more may look young, which only delays its freeing.
 */
static inline int ebr_tag_is_old(uint32_t tag, uint64_t epoch)
{
    return (int32_t)((uint32_t)epoch - tag) >= 2;
}

/* ---- memory bound and SIEVE eviction (evict.c) ---- */

/* The key a write is for, in its shard: eviction on the write's behalf never takes its entry (key NULL: any). */
struct spared_key {
    struct shard *shard;
    uint64_t hash;
    const void *key;
    size_t key_len;
    uint64_t version; /* once linked, the version only this write gave the key, or 0 (memory_evict_to_bound) */
};

/* Counts bytes about to be allocated (no eviction). 0, or STORE_EFULL if they exceed max_memory alone. */
int memory_reserve(struct store *s, size_t bytes);
/*
 * With no lock held: if the total less `freed` (what the write will give
 * back) is over max_memory, evicts back under it, sparing the key's entry;
 * under STORE_EVICT_NONE only checks. 0 or STORE_EFULL.
 */
int memory_make_room(struct store *s, const struct spared_key *spare, size_t freed);
/* Whether the total is over max_memory (a write that just counted its bytes must make room). */
int memory_is_over(struct store *s);
/*
 * Under the write lock, old being the entry the write replaces (or NULL):
 * under STORE_EVICT_NONE, 0 if the total less old's bytes is over
 * max_memory; 1 otherwise (the policies evict instead).
 */
int memory_admits(struct store *s, const struct entry *old);
/* Returns bytes freed: into thread t's credit (t may be NULL) while it has room, else to the total. */
void memory_release_by(struct store *s, struct ebr_thread *t, size_t bytes);
/* The same for the calling thread. */
void memory_release(struct store *s, size_t bytes);
/*
 * With no lock held, after a write: evicts back under max_memory if it is
 * over (a table grew), sparing the write's key. (Not store_trim, which
 * hands free memory back to the system and evicts nothing: "trim" there
 * means what it means for malloc_trim and slab_trim.) STORE_EFULL if that was not
 * enough and the entry the write linked (spare->version) was evicted too.
 */
int memory_evict_to_bound(struct store *s, const struct spared_key *spare);
/* Counts bytes more for a growing table; 0, counting nothing, if they would pass the bound under STORE_EVICT_NONE. */
int memory_grow(struct store *s, size_t bytes);

/* ---- eviction policies (evict.c dispatches to sieve.c and s3fifo.c) ---- */

/* Puts a new entry in the eviction queues; `replaced`, if not NULL, is the entry it replaces (still queued). */
void do_policy_insert(struct store *s, struct shard *sh, struct entry *e, uint64_t hash, struct entry *replaced);
/* Takes e out of the eviction queues. */
void do_policy_remove(struct store *s, struct shard *sh, struct entry *e);
/* Records a hit; called by lock-free gets, so atomics only. */
void policy_hit(const struct store *s, struct entry *e);
/* Chooses the entry to evict (still linked), or NULL if the shard is empty. */
struct entry *do_policy_victim(struct store *s, struct shard *sh, int64_t now);
/* Forgets every entry (flush) and frees the policy's own memory if `release`. */
void do_policy_reset(struct store *s, struct shard *sh, int release);

void queue_push(const struct store *s, struct queue *q, struct entry *e);
void queue_unlink(const struct store *s, struct queue *q, struct entry *e);

void do_sieve_remove(const struct store *s, struct shard *sh, struct entry *e);
struct entry *do_sieve_victim(const struct store *s, struct shard *sh, int64_t now);
void sieve_hit(struct entry *e);

void do_s3fifo_insert(struct store *s, struct shard *sh, struct entry *e, uint64_t hash, struct entry *replaced);
void do_s3fifo_remove(struct store *s, struct shard *sh, struct entry *e);
/* Puts an entry taken out with do_s3fifo_remove back at the new end of the queue it was in. */
void do_s3fifo_requeue(struct store *s, struct shard *sh, struct entry *e);
struct entry *do_s3fifo_victim(struct store *s, struct shard *sh, int64_t now);
void s3fifo_hit(struct entry *e);
void do_s3fifo_reset(struct store *s, struct shard *sh, int release);
/*
 * Gives an unlinked entry's bytes back to the budget at once and frees its
 * memory once no reader can still reach it (ebr.c).
 */
void entry_retire(struct store *s, struct entry *e);
/* The same for an evicted entry: its bytes go straight to the total, not into the thread's credit (evict.c). */
void entry_retire_evicted(struct store *s, struct entry *e);

/* The calling thread's record, registered on first use; NULL if out of memory. */
struct ebr_thread *ebr_this_thread(struct store *s);

/* What the statistics sum over every thread's record (a snapshot, in one walk of the registry). */
struct ebr_totals {
    size_t credits;             /* bytes held as credit */
    size_t pending_bytes;       /* retired entries not yet freed, in every limbo and the orphans */
    uint64_t stats[STAT_KINDS]; /* the records' counters and the store's shared ones */
};
void ebr_totals(const struct store *s, struct ebr_totals *out);

/* Counts n events of one kind for the calling thread, whose record t is (NULL if it has none). */
static inline void stat_add_by(struct store *s, struct ebr_thread *t, enum stat_kind kind, uint64_t n)
{
    if (t != NULL) {
        atomic_uint_fast64_t *counter = &t->stats.n[kind];
        atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&s->shared_stats.n[kind], n, memory_order_relaxed);
    }
}

static inline void stat_add(struct store *s, enum stat_kind kind, uint64_t n)
{
    stat_add_by(s, ebr_this_thread(s), kind, n);
}

#endif
