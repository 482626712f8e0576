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

void queue_push(struct queue *q, struct entry *e)
{
    e->newer = NULL;
    e->older = q->newest;
    if (q->newest != NULL)
        q->newest->newer = e;
    else
        q->oldest = e;
    q->newest = e;
}

void queue_unlink(struct queue *q, struct entry *e)
{
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        q->newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        q->oldest = e->newer;
    e->newer = e->older = NULL;
}

void do_sieve_remove(struct shard *sh, struct entry *e)
{
    if (sh->hand == e)
        sh->hand = e->newer;
    queue_unlink(&sh->main, e);
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

struct entry *do_sieve_victim(struct shard *sh, int64_t now)
{
    /* Terminates: after one full turn every visited bit is clear. */
    struct entry *e = sh->hand != NULL ? sh->hand : sh->main.oldest;
    while (e != NULL) {
        if (entry_is_expired(e, now) || !test_and_clear_visited(e))
            break;
        e = e->newer != NULL ? e->newer : sh->main.oldest;
    }
    if (e != NULL)
        sh->hand = e->newer;
    return e;
}
