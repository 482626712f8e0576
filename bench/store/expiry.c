/*
 * Expiry benchmark: how fast the server's sweeper gives back the memory of a
 * mass expiry, and what the sweep costs a concurrent reader.
 *
 *   expiry sweep   [N]             with the sweeper thread
 *   expiry control [N] [WINDOW_MS] without it (entries expire, nothing reclaims them)
 *
 * Both use the store's real clock (CLOCK_MONOTONIC). The store first gets
 * READER_KEYS entries that never expire, then the main thread inserts N
 * (default 1,000,000) keys with a 1-second TTL that nobody reads. In "sweep"
 * mode the server's sweeper (src/sweeper.c) runs from the start
 * (store_expire_step(store, 4096) every 100 ms, repeated at once up to 16
 * times while a step reclaims something), with its malloc_trim off: the
 * figures are the store's reclamation, and the end of the run trims once
 * to show what the allocator then gives back.
 *
 * When the load is done one reader thread calls store_get on the READER_KEYS
 * keys in a tight loop, copying each value out as the server does, and times
 * every call with clock_gettime(CLOCK_MONOTONIC) into a log-linear histogram
 * (32 sub-buckets per power of two: percentiles within about 3%, rounded up).
 * The histogram follows the phase the main thread announces: "idle" (the full
 * table before the first TTL passes), "window" (from the first TTL passing to
 * the end of the measurement) and "after". Meanwhile the main thread samples
 * stats.entries, stats.bytes_used and VmRSS every 100 ms. In "sweep" mode the
 * window ends when every TTL entry is reclaimed (or MAX_WAIT_MS after the last
 * TTL passed); in "control" mode there is no sweeper and the window lasts
 * WINDOW_MS (bench/store/memory.sh passes the sweep run's window, so both
 * histograms cover the same stretch of time after the TTL).
 *
 * On a machine with two or more allowed CPUs the reader is pinned to the first
 * and the sweeper and the main thread to the second, so the reader never
 * shares a core with the sweep; the output says whether pinning happened.
 * Output is "key=value" lines: "sample" lines (the timeline) and one "result".
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cachette/store.h"
#include "sweeper.h"

#define KEY_LEN 16
#define VALUE_LEN 32
#define READER_KEYS 10000
#define TTL_MS 1000
#define SAMPLE_MS 100
#define MAX_WAIT_MS 20000
#define DEFAULT_WINDOW_MS 3000

#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 40 /* about 18 minutes in ns: longer calls are clamped */
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

enum phase { PHASE_IDLE, PHASE_WINDOW, PHASE_AFTER, PHASES };
static const char *const phase_names[PHASES] = {"idle", "window", "after"};

struct hist {
    uint64_t count[HIST_BUCKETS];
    uint64_t total, max_ns;
};

struct reader {
    struct store *store;
    pthread_t thread;
    int cpu; /* -1: not pinned */
    atomic_int phase, stop;
    uint64_t misses; /* read after join */
    struct hist hist[PHASES];
};

/* ------------------------------------------------------------------------ */
/* Helpers */

static size_t rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kib = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtoull(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib * 1024;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

/* Writes prefix followed by i in decimal, zero-padded, into exactly KEY_LEN bytes (no NUL). */
static void format_key(char *key, const char *prefix, size_t i)
{
    size_t p = strlen(prefix);
    memcpy(key, prefix, p);
    for (size_t k = KEY_LEN; k > p; k--, i /= 10)
        key[k - 1] = (char)('0' + i % 10);
}

/* Pins the calling thread to cpu; returns 0, or -1 when cpu < 0 or the call fails. */
static int pin(int cpu)
{
    if (cpu < 0)
        return -1;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0 ? 0 : -1;
}

static unsigned hist_index(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    if (msb >= HIST_MAX_BITS)
        return HIST_BUCKETS - 1;
    unsigned shift = msb - HIST_SUB_BITS;
    return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* The upper edge of bucket i, so a percentile is never reported below the truth. */
static uint64_t hist_value(unsigned i)
{
    if (i < 2 * HIST_SUB)
        return i;
    unsigned shift = i / HIST_SUB - 1;
    return (((uint64_t)(i % HIST_SUB) + HIST_SUB + 1) << shift) - 1;
}

static uint64_t hist_percentile(const struct hist *h, double p)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)(p * (double)h->total);
    if (rank >= h->total)
        rank = h->total - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen > rank)
            return hist_value(i);
    }
    return h->max_ns;
}

/* ------------------------------------------------------------------------ */
/* Threads */

static void *alloc_into(void *ctx, size_t size)
{
    return size <= 64 ? ctx : NULL;
}

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    char key[KEY_LEN], buf[64];
    uint64_t seed = 0x2545f4914f6cdd1dull;
    pin(r->cpu);
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        struct hist *h = &r->hist[atomic_load_explicit(&r->phase, memory_order_relaxed)];
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        format_key(key, "p:", seed % READER_KEYS);
        struct store_item item;
        uint64_t t0 = mono_ns();
        int rc = store_get(r->store, key, KEY_LEN, alloc_into, buf, &item);
        uint64_t ns = mono_ns() - t0;
        if (rc != 0)
            r->misses++;
        h->count[hist_index(ns)]++;
        h->total++;
        if (ns > h->max_ns)
            h->max_ns = ns;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The run */

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "sweep") != 0 && strcmp(argv[1], "control") != 0)) {
        fprintf(stderr, "usage: %s sweep [N] | control [N] [WINDOW_MS]\n", argv[0]);
        return 2;
    }
    int sweep = strcmp(argv[1], "sweep") == 0;
    size_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
    int64_t window_ms = argc > 3 ? strtoll(argv[3], NULL, 10) : DEFAULT_WINDOW_MS;
    if (window_ms <= 0 || window_ms > MAX_WAIT_MS)
        window_ms = DEFAULT_WINDOW_MS;

    /* The first two CPUs this process may run on: reader on one, sweeper and main on the other. */
    int cpus[2] = {-1, -1}, ncpus = 0;
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0)
        for (int c = 0; c < CPU_SETSIZE && ncpus < 2; c++)
            if (CPU_ISSET(c, &allowed))
                cpus[ncpus++] = c;
    if (ncpus < 2)
        cpus[0] = cpus[1] = -1;

    struct store *store = store_create(NULL);
    struct reader *r = calloc(1, sizeof(*r));
    if (store == NULL || r == NULL) {
        fprintf(stderr, "expiry: out of memory\n");
        return 1;
    }
    char key[KEY_LEN], value[VALUE_LEN];
    memset(value, 'v', sizeof(value));
    struct store_value v = {.kind = STORE_KIND_STRING, .data = value, .len = VALUE_LEN};
    for (size_t i = 0; i < READER_KEYS; i++) {
        format_key(key, "p:", i);
        if (store_set(store, key, KEY_LEN, &v, NULL, NULL) != 0) {
            fprintf(stderr, "expiry: store_set failed\n");
            return 1;
        }
    }

    r->store = store;
    r->cpu = cpus[0];
    /* Pinned before the sweeper starts, so its thread inherits the CPU. */
    int pinned = ncpus == 2 && pin(cpus[1]) == 0;
    struct sweeper *sw = NULL;
    if (sweep && (sw = sweeper_start(store, 0)) == NULL) {
        fprintf(stderr, "expiry: cannot start the sweeper\n");
        return 1;
    }

    /* Load N keys with a 1-second TTL, the sweeper (if any) running. */
    struct store_stats st;
    store_stats(store, &st);
    size_t rss_before = rss(), bytes_before = st.bytes_used;
    struct store_set_opts opts = {.ttl_ms = TTL_MS};
    int64_t first = store_now_ms(store);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        format_key(key, "e:", i);
        if (store_set(store, key, KEY_LEN, &v, &opts, NULL) != 0)
            failed++;
    }
    int64_t last = store_now_ms(store);
    size_t rss_loaded = rss();
    store_stats(store, &st);
    size_t bytes_loaded = st.bytes_used, entries_loaded = st.entries;

    /*
     * The reader starts once the load is done: until the first TTL passes it
     * fills the "idle" histogram (the full table, nothing expired yet), then
     * the "window" one. A load slower than TTL_MS leaves no idle phase, and
     * then the window starts late: window_start_ms says by how much.
     */
    if (pthread_create(&r->thread, NULL, reader_main, r) != 0) {
        fprintf(stderr, "expiry: cannot start the reader\n");
        return 1;
    }
    int64_t ttl_first = first + TTL_MS, ttl_last = last + TTL_MS;
    sleep_until_ms(ttl_first);
    atomic_store(&r->phase, PHASE_WINDOW);
    int64_t window_start = store_now_ms(store);
    int64_t end = sweep ? ttl_last + MAX_WAIT_MS : ttl_first + window_ms;
    int64_t t_1pct = -1, t_all = -1, t = window_start;
    size_t rss_peak = rss_loaded;
    for (;;) {
        t += SAMPLE_MS;
        sleep_until_ms(t);
        int64_t now = store_now_ms(store);
        size_t now_rss = rss();
        store_stats(store, &st);
        size_t left = st.entries > READER_KEYS ? st.entries - READER_KEYS : 0;
        if (now_rss > rss_peak)
            rss_peak = now_rss;
        printf("sample mode=%s t_ms=%" PRId64 " entries_left=%zu bytes_used=%zu rss=%zu expired=%" PRIu64 "\n",
               argv[1], now - ttl_first, left, st.bytes_used, now_rss, st.expired);
        if (t_1pct < 0 && left * 100 <= n)
            t_1pct = now;
        if (t_all < 0 && left == 0)
            t_all = now;
        if (now >= end || (sweep && t_all >= 0))
            break;
    }
    int64_t window_end = store_now_ms(store);
    atomic_store(&r->phase, PHASE_AFTER);
    store_stats(store, &st);
    size_t rss_after = rss(), bytes_after = st.bytes_used, entries_after = st.entries;
    uint64_t expired = st.expired;
    malloc_trim(0);
    size_t rss_trimmed = rss();

    atomic_store(&r->stop, 1);
    pthread_join(r->thread, NULL);
    if (sw != NULL)
        sweeper_stop(sw);

    printf("result mode=%s n=%zu failed=%zu pinned=%s reader_cpu=%d sweeper_cpu=%d load_ms=%" PRId64
           " window_start_ms=%" PRId64 " window_ms=%" PRId64 " reclaimed_1pct_after_last_ttl_ms=%" PRId64 " reclaimed_all_after_last_ttl_ms=%" PRId64
           " reclaimed_all_after_first_ttl_ms=%" PRId64 " entries_loaded=%zu entries_after=%zu expired=%" PRIu64
           " bytes_before=%zu bytes_loaded=%zu bytes_after=%zu rss_before=%zu rss_loaded=%zu rss_peak=%zu"
           " rss_after=%zu rss_trimmed=%zu reader_misses=%" PRIu64,
           argv[1], n, failed, pinned ? "yes" : "no", pinned ? cpus[0] : -1, pinned && sweep ? cpus[1] : -1,
           last - first, window_start - ttl_first, window_end - ttl_first, t_1pct < 0 ? -1 : t_1pct - ttl_last,
           t_all < 0 ? -1 : t_all - ttl_last, t_all < 0 ? -1 : t_all - ttl_first, entries_loaded, entries_after,
           expired, bytes_before, bytes_loaded, bytes_after, rss_before, rss_loaded, rss_peak, rss_after,
           rss_trimmed, r->misses);
    for (int p = 0; p < PHASES; p++) {
        const struct hist *h = &r->hist[p];
        printf(" %s_gets=%" PRIu64 " %s_p50_ns=%" PRIu64 " %s_p99_ns=%" PRIu64 " %s_p999_ns=%" PRIu64
               " %s_max_ns=%" PRIu64,
               phase_names[p], h->total, phase_names[p], hist_percentile(h, 0.50), phase_names[p],
               hist_percentile(h, 0.99), phase_names[p], hist_percentile(h, 0.999), phase_names[p], h->max_ns);
    }
    printf("\n");
    store_destroy(store);
    free(r);
    return 0;
}
