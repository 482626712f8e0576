/*
 * The statistics registry (see stats.h). It owns no counter: the store and
 * the network core keep theirs (atomics, per thread where they are hot), and
 * this reads them on demand, so a report costs nothing until asked for.
 */
#include "stats.h"

void stats_collect(const struct stats_sources *sources, struct stats *out)
{
    store_stats(sources->store, &out->store);
    net_counters(sources->net, &out->net);
    out->version = sources->version;
}
