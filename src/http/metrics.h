/* Request metrics and their Prometheus text exposition (metrics.c). No h2o types. */
#ifndef CACHETTE_HTTP_METRICS_H
#define CACHETTE_HTTP_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

enum metrics_method { METRICS_GET, METRICS_HEAD, METRICS_POST, METRICS_PUT, METRICS_DELETE, METRICS_OTHER,
                      METRICS_METHODS };

#define METRICS_STATUS_CLASSES 5 /* 1xx … 5xx */
#define METRICS_LATENCY_BUCKETS 14

/* One per worker thread: written by that thread only, read by any with relaxed loads. */
struct metrics {
    atomic_uint_fast64_t requests[METRICS_METHODS][METRICS_STATUS_CLASSES];
    atomic_uint_fast64_t latency[METRICS_LATENCY_BUCKETS + 1]; /* per bucket, not cumulative; last is +Inf */
    atomic_uint_fast64_t latency_sum_us;
};

/* Maps a request method to its row. */
enum metrics_method metrics_method(const char *method, size_t len);

/* Records one finished request. Called by the worker that owns m. */
void metrics_observe(struct metrics *m, enum metrics_method method, int status, uint64_t duration_us);

/* The sum of every worker's metrics at one reading (plain integers: one thread's copy). */
struct metrics_totals {
    uint64_t requests[METRICS_METHODS][METRICS_STATUS_CLASSES];
    uint64_t latency[METRICS_LATENCY_BUCKETS + 1];
    uint64_t latency_sum_us;
};

/* Adds one worker's metrics into sum (relaxed loads: exact per counter, not one instant). */
void metrics_add(struct metrics_totals *sum, const struct metrics *m);

/* Upper bound of the text metrics_render writes. */
#define METRICS_TEXT_MAX 24576

/*
 * Writes the Prometheus text exposition (format 0.0.4) of the server's
 * figures and of the HTTP front's summed metrics into buf (METRICS_TEXT_MAX
 * bytes). Returns the length written, never more than METRICS_TEXT_MAX.
 */
size_t metrics_render(char *buf, const struct metrics_totals *http, const struct stats *stats);

#endif
