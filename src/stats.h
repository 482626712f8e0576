/*
 * The figures every front reports (stats.c): the store's, the network
 * core's, persistence's, and the server's version, read together so that HTTP's /stats and
 * /metrics, and any later front, show the same numbers from one place.
 * A front's own counters (HTTP's per-method requests, say) stay its own.
 */
#ifndef CACHETTE_STATS_H
#define CACHETTE_STATS_H

#include <stdbool.h>

#include "cachette/store.h"
#include "net/net.h"
#include "persist/persist.h"

/* Where the figures come from; set once at start and read-only after. */
struct stats_sources {
    struct store *store;
    const struct net *net;
    const struct persist *persist; /* NULL without --data-dir */
    const char *version;
};

struct stats {
    struct store_stats store;
    struct net_counters net;
    bool persisting;               /* persist below is filled in */
    struct persist_stats persist;
    const char *version;
};

/* Reads every source; each figure is exact, the set is not one instant. */
void stats_collect(const struct stats_sources *sources, struct stats *out);

#endif
