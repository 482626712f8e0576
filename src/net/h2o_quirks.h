/*
 * What cachette does about libh2o 2.2.5 (library 0.13, Debian 12) that a
 * later h2o does differently: each work-around touches memory or a private
 * field that h2o owns, so it is tied here to the version it was written
 * for. Another version stops the build at the #error below, and whoever
 * upgrades checks each item against that version's sources.
 */
#ifndef CACHETTE_NET_H2O_QUIRKS_H
#define CACHETTE_NET_H2O_QUIRKS_H

#include <h2o.h>
#include <h2o/version.h>
#include <stdlib.h>

#if !(H2O_LIBRARY_VERSION_MAJOR == 0 && H2O_LIBRARY_VERSION_MINOR == 13)
#error "written for libh2o 2.2.x (library 0.13): check each work-around in src/net/h2o_quirks.h against this h2o"
#endif

/*
 * h2o_multithread_destroy_queue (called by h2o_context_dispose for a
 * context's own queue) closes the queue's socket but never frees the queue.
 * Call this after the loop has run once more, which frees the socket. Later
 * h2o frees the queue itself: this free would then be a double free.
 */
static inline void h2o_quirk_free_destroyed_queue(h2o_multithread_queue_t *queue)
{
    free(queue);
}

/*
 * h2o_context_request_shutdown arms a one-second HTTP/2 GOAWAY timer (a
 * private field of the context) that it leaves linked, and
 * h2o_context_dispose asserts that no timer is linked: unlink it first.
 */
static inline void h2o_quirk_unlink_graceful_shutdown_timer(h2o_context_t *ctx)
{
    if (h2o_timeout_is_linked(&ctx->http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&ctx->http2._graceful_shutdown_timeout);
}

#endif
