/*
 * The statistics registry (see stats.h). It owns no counter: the store and
 * the network core and persistence keep theirs (atomics, per thread where they are hot), and
 * this reads them on demand, so a report costs nothing until asked for.
 */
#include "stats.h"

void stats_collect(const struct stats_sources *sources, struct stats *out)
{
    store_stats(sources->store, &out->store);
    net_counters(sources->net, &out->net);
    out->persisting = sources->persist != NULL;
    if (out->persisting)
        persist_stats(sources->persist, &out->persist);
    else
        out->persist = (struct persist_stats){0};
    out->version = sources->version;
}
