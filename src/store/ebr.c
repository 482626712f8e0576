/*
 * Epoch-based reclamation: what lets gets read without any lock.
 *
 * A reader announces the global epoch it reads in (a store to its own
 * record, then a full fence) and clears it when done. A writer that unlinks
 * an entry does not free it: it tags it with the global epoch read after the
 * unlink and keeps it on its own thread's limbo list. The global epoch moves
 * from g to g+1 only when every reader in a section announced g. So once it
 * reaches tag + 2, every reader that could have found the entry before its
 * unlink (it announced tag or less) has left its section, and the entry is
 * freed. Readers write only their own record's line: no shared cache line
 * moves between cores on a get.
 *
 * Each thread's record is found through a pthread key of the store and kept
 * on a push-only registry. When a thread exits, its key destructor hands its
 * limbo to the store's orphan list and marks the record reusable. Limbo is
 * reclaimed by its owner every LIMBO_BATCH retirements, or sooner once it
 * holds LIMBO_BYTES (large values must not wait for 63 more); what a reader
 * then still holds back, if LIMBO_BYTES or more, goes to the orphans, so
 * that it does not wait for the owner's next write. Orphans are freed by
 * whoever reclaims next and by store_expire_step, everything left by
 * store_destroy.
 *
 * Memory accounting: an entry's bytes return to the budget when it is
 * retired, so eviction makes progress at once; the memory itself follows a
 * few reads later. DESIGN.md bounds the difference.
 */
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

#define LIMBO_BATCH 64
#define LIMBO_BYTES (256u * 1024)

/* The limbo lists link through entry.newer (a reference) and keep the low 32 bits of the tag in entry.older. */
static int old_enough(const struct entry *e, uint64_t epoch)
{
    return ebr_tag_is_old(e->older, epoch);
}

/* Moves thread t's whole limbo to the orphan list; the caller holds ebr->lock. */
static void do_orphan_limbo(struct store *s, struct ebr_thread *t)
{
    struct ebr *ebr = &s->ebr;
    while (t->limbo != NULL) {
        struct entry *e = t->limbo;
        t->limbo = entry_at(s, e->newer);
        e->newer = entry_ref(s, ebr->orphans);
        ebr->orphans = e;
    }
    t->limbo_count = 0;
    atomic_fetch_add_explicit(&ebr->orphan_bytes, atomic_exchange_explicit(&t->limbo_bytes, 0, memory_order_relaxed),
                              memory_order_relaxed);
}

static void on_thread_exit(void *arg)
{
    struct ebr_thread *t = arg;
    struct ebr *ebr = &t->store->ebr;
    pthread_mutex_lock(&ebr->lock);
    do_orphan_limbo(t->store, t);
    /* The thread's credit goes back to the budget; the record's next thread starts with none. */
    atomic_fetch_sub_explicit(&t->store->used, atomic_exchange_explicit(&t->credit, 0, memory_order_relaxed),
                              memory_order_relaxed);
    slab_cache_flush(&t->store->slab, &t->cache);
    atomic_store_explicit(&t->in_use, 0, memory_order_release);
    pthread_mutex_unlock(&ebr->lock);
}

int ebr_init(struct store *s)
{
    struct ebr *ebr = &s->ebr;
    atomic_init(&ebr->epoch, 1);
    atomic_init(&ebr->threads, NULL);
    ebr->orphans = NULL;
    atomic_init(&ebr->orphan_bytes, 0);
    if (pthread_key_create(&ebr->key, on_thread_exit) != 0)
        return STORE_ENOMEM;
    pthread_mutex_init(&ebr->lock, NULL);
    return 0;
}

static void free_list(struct store *s, struct entry *e)
{
    while (e != NULL) {
        struct entry *next = entry_at(s, e->newer);
        entry_free(s, NULL, e);
        e = next;
    }
}

void ebr_destroy(struct store *s)
{
    struct ebr *ebr = &s->ebr;
    pthread_key_delete(ebr->key);
    struct ebr_thread *t = atomic_load_explicit(&ebr->threads, memory_order_acquire);
    while (t != NULL) {
        struct ebr_thread *next = atomic_load_explicit(&t->next, memory_order_relaxed);
        free_list(s, t->limbo);
        slab_cache_flush(&s->slab, &t->cache);
        free(t);
        t = next;
    }
    free_list(s, ebr->orphans);
    pthread_mutex_destroy(&ebr->lock);
}

void ebr_totals(const struct store *s, struct ebr_totals *out)
{
    out->credits = 0;
    out->pending_bytes = atomic_load_explicit(&s->ebr.orphan_bytes, memory_order_relaxed);
    for (int k = 0; k < STAT_KINDS; k++)
        out->stats[k] = atomic_load_explicit(&s->shared_stats.n[k], memory_order_relaxed);
    for (struct ebr_thread *t = atomic_load_explicit(&s->ebr.threads, memory_order_acquire); t != NULL;
         t = atomic_load_explicit(&t->next, memory_order_acquire)) {
        out->credits += atomic_load_explicit(&t->credit, memory_order_relaxed);
        out->pending_bytes += atomic_load_explicit(&t->limbo_bytes, memory_order_relaxed);
        for (int k = 0; k < STAT_KINDS; k++)
            out->stats[k] += atomic_load_explicit(&t->stats.n[k], memory_order_relaxed);
    }
}

struct ebr_thread *ebr_this_thread(struct store *s)
{
    struct ebr *ebr = &s->ebr;
    struct ebr_thread *t = pthread_getspecific(ebr->key);
    if (t != NULL)
        return t;
    pthread_mutex_lock(&ebr->lock);
    for (t = atomic_load_explicit(&ebr->threads, memory_order_relaxed); t != NULL;
         t = atomic_load_explicit(&t->next, memory_order_relaxed))
        if (!atomic_load_explicit(&t->in_use, memory_order_acquire))
            break;
    if (t == NULL && (t = aligned_alloc(64, sizeof(*t))) != NULL) {
        memset(t, 0, sizeof(*t));
        t->store = s;
        atomic_init(&t->next, atomic_load_explicit(&ebr->threads, memory_order_relaxed));
        atomic_store_explicit(&ebr->threads, t, memory_order_release);
    }
    if (t != NULL) {
        atomic_store_explicit(&t->in_use, 1, memory_order_relaxed);
        if (pthread_setspecific(ebr->key, t) != 0) {
            atomic_store_explicit(&t->in_use, 0, memory_order_relaxed);
            t = NULL;
        }
    }
    pthread_mutex_unlock(&ebr->lock);
    return t;
}

void ebr_enter(struct ebr_thread *t)
{
    atomic_store_explicit(&t->epoch, atomic_load_explicit(&t->store->ebr.epoch, memory_order_relaxed),
                          memory_order_relaxed);
    /* The announcement must be visible before this thread reads any pointer. */
    atomic_thread_fence(memory_order_seq_cst);
}

void ebr_exit(struct ebr_thread *t)
{
    atomic_store_explicit(&t->epoch, 0, memory_order_release);
}

uint64_t ebr_retire_epoch(struct store *s)
{
    /* Whatever was unlinked before must be ordered before the epoch is read. */
    atomic_thread_fence(memory_order_seq_cst);
    return atomic_load_explicit(&s->ebr.epoch, memory_order_relaxed);
}

/* Moves the global epoch on if every reader in a section announced the current one; returns the epoch. */
static uint64_t try_advance(struct ebr *ebr)
{
    uint64_t g = atomic_load_explicit(&ebr->epoch, memory_order_acquire);
    /* Pairs with the readers' fence in ebr_enter: a reader this loop sees as outside a section sees every unlink retired before. */
    atomic_thread_fence(memory_order_seq_cst);
    for (struct ebr_thread *t = atomic_load_explicit(&ebr->threads, memory_order_acquire); t != NULL;
         t = atomic_load_explicit(&t->next, memory_order_acquire)) {
        uint64_t e = atomic_load_explicit(&t->epoch, memory_order_acquire);
        if (e != 0 && e != g)
            return g;
    }
    if (atomic_compare_exchange_strong_explicit(&ebr->epoch, &g, g + 1, memory_order_acq_rel,
                                                memory_order_acquire))
        return g + 1;
    return g;
}

int ebr_is_safe(struct store *s, uint64_t tag)
{
    return try_advance(&s->ebr) >= tag + 2;
}

/* Frees the thread's limbo entries old enough to free (the list is newest first, so in tag order). */
static void reclaim_limbo(struct store *s, struct ebr_thread *t, uint64_t epoch)
{
    struct entry *e = t->limbo, *last_kept = NULL;
    size_t kept = 0, freed_bytes = 0;
    while (e != NULL && !old_enough(e, epoch)) {
        last_kept = e;
        e = entry_at(s, e->newer);
        kept++;
    }
    if (last_kept != NULL)
        last_kept->newer = 0;
    else
        t->limbo = NULL;
    while (e != NULL) {
        struct entry *next = entry_at(s, e->newer);
        freed_bytes += entry_footprint(s, e);
        entry_free(s, t, e);
        e = next;
    }
    t->limbo_count = kept;
    atomic_store_explicit(&t->limbo_bytes, atomic_load_explicit(&t->limbo_bytes, memory_order_relaxed) - freed_bytes,
                          memory_order_relaxed);
}

/* Frees the orphans old enough to free; the caller holds ebr->lock. */
static void reclaim_orphans(struct store *s, uint64_t epoch)
{
    struct ebr *ebr = &s->ebr;
    /* Orphans come from several threads' lists: not in tag order, so each is judged alone. */
    struct entry *e = ebr->orphans, *prev = NULL;
    while (e != NULL) {
        struct entry *next = entry_at(s, e->newer);
        if (old_enough(e, epoch)) {
            if (prev != NULL)
                prev->newer = e->newer;
            else
                ebr->orphans = next;
            atomic_fetch_sub_explicit(&ebr->orphan_bytes, entry_footprint(s, e), memory_order_relaxed);
            entry_free(s, NULL, e);
        } else {
            prev = e;
        }
        e = next;
    }
}

/* Puts e, whose bytes the caller has returned to the budget, on this thread's limbo (or the orphans). */
static void retire(struct store *s, struct ebr_thread *t, struct entry *e, size_t bytes)
{
    uint64_t tag = ebr_retire_epoch(s);
    e->older = (uint32_t)tag;
    struct ebr *ebr = &s->ebr;
    if (t == NULL) {
        /* No record for this thread: the orphan list takes it. */
        pthread_mutex_lock(&ebr->lock);
        e->newer = entry_ref(s, ebr->orphans);
        ebr->orphans = e;
        atomic_fetch_add_explicit(&ebr->orphan_bytes, bytes, memory_order_relaxed);
        pthread_mutex_unlock(&ebr->lock);
        return;
    }
    e->newer = entry_ref(s, t->limbo);
    t->limbo = e;
    size_t limbo_bytes = atomic_load_explicit(&t->limbo_bytes, memory_order_relaxed) + bytes;
    atomic_store_explicit(&t->limbo_bytes, limbo_bytes, memory_order_relaxed);
    if (++t->limbo_count < LIMBO_BATCH && limbo_bytes < LIMBO_BYTES)
        return;
    /*
     * What was just retired carries the current epoch, so it needs two
     * advances: try for the second at once (it succeeds when no reader is
     * mid-get), or a large value would wait for this thread's next removal.
     */
    uint64_t epoch = try_advance(ebr);
    if (epoch < tag + 2)
        epoch = try_advance(ebr);
    reclaim_limbo(s, t, epoch);
    /*
     * If a reader still in its section kept a batch's worth (one large value
     * is enough), the orphans take it: any thread's next reclaim, or the next
     * store_expire_step, frees it. Kept here, it would wait for this
     * thread's next removal, however long that takes.
     */
    if (atomic_load_explicit(&t->limbo_bytes, memory_order_relaxed) >= LIMBO_BYTES) {
        pthread_mutex_lock(&ebr->lock);
        do_orphan_limbo(s, t);
    } else if (pthread_mutex_trylock(&ebr->lock) != 0) {
        return;
    }
    reclaim_orphans(s, epoch);
    pthread_mutex_unlock(&ebr->lock);
}

void ebr_reclaim_orphans(struct store *s)
{
    struct ebr *ebr = &s->ebr;
    if (atomic_load_explicit(&ebr->orphan_bytes, memory_order_relaxed) == 0)
        return; /* nothing orphaned: no epoch to move, no lock to take */
    try_advance(ebr);
    uint64_t epoch = try_advance(ebr);
    pthread_mutex_lock(&ebr->lock);
    reclaim_orphans(s, epoch);
    pthread_mutex_unlock(&ebr->lock);
}

void entry_retire(struct store *s, struct entry *e)
{
    struct ebr_thread *t = ebr_this_thread(s);
    size_t bytes = entry_footprint(s, e);
    memory_release_by(s, t, bytes);
    retire(s, t, e, bytes);
}

void entry_retire_evicted(struct store *s, struct entry *e)
{
    size_t bytes = entry_footprint(s, e);
    atomic_fetch_sub_explicit(&s->used, bytes, memory_order_relaxed);
    retire(s, ebr_this_thread(s), e, bytes);
}
