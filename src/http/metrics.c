/*
 * Request metrics for GET /metrics, in Prometheus text format 0.0.4.
 *
 * Each worker thread keeps its own `struct metrics` and is its only writer,
 * so recording a request is a few relaxed atomic stores to memory no other
 * thread writes: no lock, no contended cache line. The exposition sums the
 * workers' counters at read time (the front adds each worker's into one
 * metrics_totals). Counters are exact; a scrape is not one
 * instant across workers, which Prometheus tolerates by design.
 *
 * Latency is from the first byte of the request to the last byte of the
 * response as h2o timestamps them, in a fixed histogram from 100 µs to 2.5 s.
 */
#include "http/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const uint64_t latency_bounds_us[METRICS_LATENCY_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
};

static const char *const method_names[METRICS_METHODS] = {"GET", "HEAD", "POST", "PUT", "DELETE", "other"};

enum metrics_method metrics_method(const char *method, size_t len)
{
    for (int i = 0; i < METRICS_OTHER; i++)
        if (strlen(method_names[i]) == len && memcmp(method_names[i], method, len) == 0)
            return (enum metrics_method)i;
    return METRICS_OTHER;
}

static void bump(atomic_uint_fast64_t *counter, uint64_t n)
{
    /* Single writer: a load and a store, no read-modify-write needed. */
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n, memory_order_relaxed);
}

void metrics_observe(struct metrics *m, enum metrics_method method, int status, uint64_t duration_us)
{
    int cls = status / 100 - 1;
    if (cls < 0 || cls >= METRICS_STATUS_CLASSES)
        cls = METRICS_STATUS_CLASSES - 1;
    bump(&m->requests[method][cls], 1);
    size_t b = 0;
    while (b < METRICS_LATENCY_BUCKETS && duration_us > latency_bounds_us[b])
        b++;
    bump(&m->latency[b], 1);
    bump(&m->latency_sum_us, duration_us);
}

static uint64_t load(const atomic_uint_fast64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

void metrics_add(struct metrics_totals *sum, const struct metrics *m)
{
    for (int i = 0; i < METRICS_METHODS; i++)
        for (int c = 0; c < METRICS_STATUS_CLASSES; c++)
            sum->requests[i][c] += load(&m->requests[i][c]);
    for (int b = 0; b <= METRICS_LATENCY_BUCKETS; b++)
        sum->latency[b] += load(&m->latency[b]);
    sum->latency_sum_us += load(&m->latency_sum_us);
}

/* Appends one metric family header and sample; keeps the buffer bound explicit. */
#define EMIT(...) (p += (size_t)snprintf(p, (size_t)(end - p), __VA_ARGS__), p = p > end ? end : p)

/* A metric family with one sample. */
struct sample {
    const char *name, *type, *help;
    double value;
};

static char *emit_samples(char *p, char *end, const struct sample *samples, size_t n)
{
    for (size_t i = 0; i < n; i++)
        EMIT("# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", samples[i].name, samples[i].help, samples[i].name,
             samples[i].type, samples[i].name, samples[i].value);
    return p;
}

size_t metrics_render(char *buf, const struct metrics_totals *http, const struct stats *stats)
{
    char *p = buf, *end = buf + METRICS_TEXT_MAX;
    const struct store_stats *st = &stats->store;
    const struct net_counters *g = &stats->net;
    const struct sample simple[] = {
        {"cachette_entries", "gauge", "Entries held, expired ones not yet reclaimed included.", (double)st->entries},
        {"cachette_memory_used_bytes", "gauge", "Bytes of entries and hash tables.", (double)st->bytes_used},
        {"cachette_memory_pending_free_bytes", "gauge", "Bytes of removed entries that readers may still hold.",
         (double)st->bytes_pending_free},
        {"cachette_memory_max_bytes", "gauge", "The memory bound (0: none).", (double)st->max_memory},
        {"cachette_hits_total", "counter", "Reads that found a live entry.", (double)st->hits},
        {"cachette_misses_total", "counter", "Reads that found no live entry.", (double)st->misses},
        {"cachette_sets_total", "counter", "Successful writes.", (double)st->sets},
        {"cachette_deletes_total", "counter", "Successful deletes.", (double)st->deletes},
        {"cachette_expired_total", "counter", "Entries reclaimed after their TTL.", (double)st->expired},
        {"cachette_evicted_total", "counter", "Entries evicted to stay under the memory bound.", (double)st->evicted},
        {"cachette_connections", "gauge", "Open client connections.", (double)g->connections},
        {"cachette_connections_total", "counter", "Connections accepted.", (double)g->connections_total},
        {"cachette_connections_refused_total", "counter", "Connections refused over --max-connections.",
         (double)g->connections_refused},
        {"cachette_write_timeouts_total", "counter", "Connections reset by --write-timeout.",
         (double)g->write_timeouts},
        {"cachette_uptime_seconds", "gauge", "Seconds since start.", g->uptime_seconds},
        {"cachette_threads", "gauge", "Worker threads.", (double)g->threads},
    };
    p = emit_samples(p, end, simple, sizeof(simple) / sizeof(simple[0]));
    const struct persist_stats *ps = &stats->persist;
    const struct sample persisting[] = {
        {"cachette_loading", "gauge", "1 while the data directory is being loaded.", (double)ps->loading},
        {"cachette_loading_bytes", "gauge", "Bytes of the data directory loaded so far.", (double)ps->load_bytes},
        {"cachette_loading_bytes_total", "gauge", "Bytes of the data directory to load.",
         (double)ps->load_bytes_total},
        {"cachette_snapshots_total", "counter", "Snapshots written.", (double)ps->snapshots},
        {"cachette_snapshot_failures_total", "counter", "Snapshots that failed.", (double)ps->snapshot_failures},
        {"cachette_snapshot_running", "gauge", "1 while a snapshot is being written.", (double)ps->snapshot_running},
        {"cachette_last_snapshot_entries", "gauge", "Entries in the last snapshot.",
         (double)ps->last_snapshot_entries},
        {"cachette_last_snapshot_bytes", "gauge", "Size of the last snapshot.", (double)ps->last_snapshot_bytes},
        {"cachette_last_snapshot_duration_seconds", "gauge", "Time the last snapshot took.",
         (double)ps->last_snapshot_ms / 1e3},
        {"cachette_last_snapshot_timestamp_seconds", "gauge", "Unix time the last snapshot began (0: none).",
         (double)ps->last_snapshot_unix_ms / 1e3},
        {"cachette_log_bytes_total", "counter", "Bytes appended to the append-only log.", (double)ps->log_bytes},
        {"cachette_log_fsyncs_total", "counter", "fsyncs of the append-only log.", (double)ps->log_fsyncs},
        {"cachette_log_write_errors_total", "counter", "Failed writes to the append-only log (retried).",
         (double)ps->log_write_errors},
        {"cachette_log_buffered_bytes", "gauge", "Log bytes waiting in memory for the writer.",
         (double)ps->log_buffered},
    };
    if (stats->persisting)
        p = emit_samples(p, end, persisting, sizeof(persisting) / sizeof(persisting[0]));

    EMIT("# HELP cachette_http_requests_total HTTP requests answered, by method and status class.\n"
         "# TYPE cachette_http_requests_total counter\n");
    for (int m = 0; m < METRICS_METHODS; m++) {
        for (int c = 0; c < METRICS_STATUS_CLASSES; c++) {
            EMIT("cachette_http_requests_total{method=\"%s\",code=\"%dxx\"} %" PRIu64 "\n", method_names[m], c + 1,
                 http->requests[m][c]);
        }
    }

    EMIT("# HELP cachette_http_request_duration_seconds Time from a request's first byte to its response's last.\n"
         "# TYPE cachette_http_request_duration_seconds histogram\n");
    uint64_t cumulative = 0;
    for (int b = 0; b <= METRICS_LATENCY_BUCKETS; b++) {
        cumulative += http->latency[b];
        if (b < METRICS_LATENCY_BUCKETS)
            EMIT("cachette_http_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                 (double)latency_bounds_us[b] / 1e6, cumulative);
        else
            EMIT("cachette_http_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cumulative);
    }
    EMIT("cachette_http_request_duration_seconds_sum %.6f\n", (double)http->latency_sum_us / 1e6);
    EMIT("cachette_http_request_duration_seconds_count %" PRIu64 "\n", cumulative);
    return (size_t)(p - buf);
}
