/*
 * SIEVE eviction (Zhang et al., NSDI'24), one instance per shard.
 *
 * The shard's entries sit in one FIFO queue, newest at the head. A hit only
 * sets the entry's visited bit: no relinking, so gets stay read-only and take
 * no lock. To evict, a hand walks from its last position towards
 * the head, clearing visited bits, and picks the first entry whose bit is
 * clear; at the head it wraps to the tail. Expired entries the hand meets are
 * picked whatever their bit. Survivors stay where they are, so new entries
 * that are not reused are the first to go, which is what lets SIEVE match or
 * beat LRU on web traces while being simpler and lock-friendlier.
 *
 * Also the queue primitives the other policy builds on.
 */
#include "internal.h"

void queue_push(const struct store *s, struct queue *q, struct entry *e)
{
    e->newer = 0;
    e->older = entry_ref(s, q->newest);
    if (q->newest != NULL)
        q->newest->newer = entry_ref(s, e);
    else
        q->oldest = e;
    q->newest = e;
}

void queue_unlink(const struct store *s, struct queue *q, struct entry *e)
{
    struct entry *newer = entry_at(s, e->newer), *older = entry_at(s, e->older);
    if (newer != NULL)
        newer->older = e->older;
    else
        q->newest = older;
    if (older != NULL)
        older->newer = e->newer;
    else
        q->oldest = newer;
    e->newer = e->older = 0;
}

void do_sieve_remove(const struct store *s, struct shard *sh, struct entry *e)
{
    if (sh->hand == e)
        sh->hand = entry_at(s, e->newer);
    queue_unlink(s, &sh->main, e);
}

void sieve_hit(struct entry *e)
{
    if (!(atomic_load_explicit(&e->flags, memory_order_relaxed) & ENTRY_VISITED))
        atomic_fetch_or_explicit(&e->flags, ENTRY_VISITED, memory_order_relaxed);
}

static int test_and_clear_visited(struct entry *e)
{
    return atomic_fetch_and_explicit(&e->flags, (uint8_t)~ENTRY_VISITED, memory_order_relaxed) & ENTRY_VISITED;
}

/*
 * The walk is bounded to one full turn of the queue: lock-free gets may set
 * a visited bit again behind the hand while it walks (they take no lock), so
 * on a small, hot shard "until a clear bit" could go round for as long as
 * the readers keep up. Back where it started, the hand takes the entry it
 * holds, as it would have with no reader about. No test forces the spin:
 * that needs a get to land between two steps of the walk every time, which
 * only a hook inside the walk could arrange.
 */
struct entry *do_sieve_victim(const struct store *s, struct shard *sh, int64_t now)
{
    struct entry *start = sh->hand != NULL ? sh->hand : sh->main.oldest, *e = start;
    while (e != NULL) {
        if (entry_is_expired(e, now) || !test_and_clear_visited(e))
            break;
        e = e->newer != 0 ? entry_at(s, e->newer) : sh->main.oldest;
        if (e == start)
            break; /* one full turn */
    }
    if (e != NULL)
        sh->hand = entry_at(s, e->newer);
    return e;
}
