/*
 * The wake-up behind held replies: the log's writer thread calls on_durable
 * after each fsync (persist_subscribe); if the worker holds anything and is
 * not already being woken, it posts the worker's wake task, which runs the
 * front's release on the worker's thread. The counter is read by the writer
 * and written by the worker: sequentially consistent, so a reply counted
 * before its durability is checked is either seen by the writer's wake or
 * found durable by the check.
 */
#include "cmd/durable.h"

#include "persist/persist.h"

static void on_wake(struct net_task *task)
{
    struct durable_wait *w = (struct durable_wait *)((char *)task - offsetof(struct durable_wait, wake_task));
    atomic_store(&w->wake_posted, 0);
    w->release(w);
}

/* persist_subscribe's callback, on the log's writer thread: wake the worker if it holds anything. */
static void on_durable(void *ctx)
{
    struct durable_wait *w = ctx;
    if (atomic_load(&w->held) == 0 || atomic_exchange(&w->wake_posted, 1) != 0)
        return;
    if (net_worker_post(w->worker, &w->wake_task) != 0)
        atomic_store(&w->wake_posted, 0); /* the worker has stopped: nothing of it is held any more */
}

void durable_wait_attach(struct durable_wait *w, struct persist *p, struct net_worker *nw,
                         void (*release)(struct durable_wait *w))
{
    w->persist = p;
    w->worker = nw;
    w->release = release;
    atomic_init(&w->held, 0);
    atomic_init(&w->wake_posted, 0);
    w->wake_task.run = on_wake;
    w->subscription = p != NULL ? persist_subscribe(p, on_durable, w) : -1;
}

void durable_wait_detach(struct durable_wait *w)
{
    if (w->persist != NULL)
        persist_unsubscribe(w->persist, w->subscription);
}

void durable_wait_hold(struct durable_wait *w)
{
    atomic_fetch_add(&w->held, 1);
}

void durable_wait_unhold(struct durable_wait *w)
{
    atomic_fetch_sub(&w->held, 1);
}
