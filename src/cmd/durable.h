/*
 * Replies that wait for the disk (durable.c): what every front shares of
 * --append-log always. A front keeps its own list of what it holds (HTTP:
 * responses, RESP: connections) on each worker, counts it here, and gets
 * its release callback called on that worker's thread whenever the log's
 * writer may have put more on disk. Without persistence nothing is held and
 * the callback is never called.
 */
#ifndef CACHETTE_CMD_DURABLE_H
#define CACHETTE_CMD_DURABLE_H

#include <stdatomic.h>
#include <stddef.h>

#include "net/net.h"

struct persist;

struct durable_wait {
    struct persist *persist; /* NULL: persistence is off */
    struct net_worker *worker;
    /* The front's: sends, on the worker's thread, what persist_is_durable now allows. */
    void (*release)(struct durable_wait *w);
    atomic_size_t held;     /* what the front holds; read by the log's writer thread */
    atomic_int wake_posted; /* wake_task is posted and has not begun */
    struct net_task wake_task;
    int subscription; /* persist_subscribe's handle, or -1 */
};

/* Sets w up for worker nw (on its thread). */
void durable_wait_attach(struct durable_wait *w, struct persist *p, struct net_worker *nw,
                         void (*release)(struct durable_wait *w));

/* After this, release is never called for w. */
void durable_wait_detach(struct durable_wait *w);

/*
 * The front holds one more reply (count it before checking durability, so
 * that the writer's wake sees one or the other), or one fewer.
 */
void durable_wait_hold(struct durable_wait *w);
void durable_wait_unhold(struct durable_wait *w);

#endif
