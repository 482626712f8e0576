/*
 * Store micro-benchmark: operations per second of the store itself, no HTTP,
 * by thread count, operation mix and key distribution.
 *
 * bench/store/run.sh compiles this file with the store's own sources four
 * times, so the hash, the entry layout and every line of table code are the
 * same and only the locking differs:
 *
 *   cachette        256 shards, writers on one rwlock each, gets lock-free
 *                   (the server's store)
 *   sharded-rwlock  the same with gets taking the read lock (-DSTORE_LOCKED_READS)
 *   single-rwlock   one shard, one rwlock, gets locked
 *                   (-DBENCH_SINGLE_SHARD -DSTORE_LOCKED_READS)
 *   single-mutex    one shard, one mutex, gets locked: the seed's "mutex + map"
 *                   (-DBENCH_SINGLE_SHARD -DSTORE_LOCKED_READS -DSTORE_SHARD_MUTEX)
 *
 * Keys are the 16-byte strings "key:%012u" over KEYS keys, all present
 * before timing starts; values are 32 bytes. A get copies the value out into
 * a per-thread buffer, as the server copies into its request pool. Keys are
 * drawn uniformly or by Zipf (alpha 0.99: a few keys take most requests);
 * Zipf draws come from a table of samples precomputed from the exact CDF, so
 * drawing costs one array read in the timed loop.
 *
 * Usage: bench THREADS SECONDS KEYS [WORKLOAD/DISTRIBUTION], e.g.
 * "bench 1,2 3 1000000 get90-set10/zipf0.99" runs that one cell.
 *
 * Output: one line per run, "impl workload distribution threads ops_per_sec".
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cachette/store.h"

#ifndef BENCH_IMPL
#define BENCH_IMPL "cachette"
#endif

#define KEY_LEN 16
#define VALUE_LEN 32
#define ZIPF_SAMPLES (1u << 22)

struct workload {
    const char *name;
    unsigned get_percent;
};

static const struct workload workloads[] = {
    {"get100", 100},
    {"get90-set10", 90},
    {"get50-set50", 50},
    {"set100", 0},
};

struct shared {
    struct store *store;
    char (*keys)[KEY_LEN];
    uint32_t nkeys;
    uint32_t *zipf;          /* NULL: uniform */
    unsigned get_percent;
    atomic_int go, stop;
};

/* One per thread, on cache lines of its own: a get writes buf, and no other thread may share that line. */
struct worker {
    pthread_t thread;
    struct shared *sh;
    unsigned id;
    uint64_t ops;
    char buf[64];
} __attribute__((aligned(64)));

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void *copy_into(void *ctx, size_t size)
{
    struct worker *w = ctx;
    return size <= sizeof(w->buf) ? w->buf : NULL;
}

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    uint64_t rng = 0x9e3779b97f4a7c15ULL * (w->id + 1), ops = 0;
    uint32_t z = (uint32_t)(xorshift(&rng) % ZIPF_SAMPLES);
    static const char value[VALUE_LEN] = "0123456789abcdef0123456789abcdef";
    struct store_value v = {.kind = STORE_KIND_STRING, .data = value, .len = VALUE_LEN};
    struct store_item item;

    while (!atomic_load_explicit(&sh->go, memory_order_acquire))
        ;
    while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        for (int i = 0; i < 256; i++) {
            uint64_t r = xorshift(&rng);
            uint32_t k = sh->zipf ? sh->zipf[z++ & (ZIPF_SAMPLES - 1)] : (uint32_t)(r % sh->nkeys);
            if ((r >> 40) % 100 < sh->get_percent)
                store_get(sh->store, sh->keys[k], KEY_LEN, copy_into, w, &item);
            else
                store_set(sh->store, sh->keys[k], KEY_LEN, &v, NULL, NULL);
        }
        ops += 256;
    }
    w->ops = ops;
    return NULL;
}

/* Samples of key ranks drawn from Zipf(alpha) over n keys, by inverting the exact CDF. */
static uint32_t *zipf_samples(uint32_t n, double alpha)
{
    double *cdf = malloc(n * sizeof(*cdf)), sum = 0;
    uint32_t *out = malloc(ZIPF_SAMPLES * sizeof(*out));
    if (cdf == NULL || out == NULL)
        abort();
    for (uint32_t i = 0; i < n; i++)
        cdf[i] = (sum += 1.0 / pow(i + 1, alpha));
    uint64_t rng = 42;
    for (uint32_t s = 0; s < ZIPF_SAMPLES; s++) {
        double u = (double)(xorshift(&rng) >> 11) / (double)(1ULL << 53) * sum;
        uint32_t lo = 0, hi = n - 1;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        out[s] = lo;
    }
    free(cdf);
    return out;
}

static double run(struct shared *sh, unsigned threads, double seconds)
{
    struct worker *ws = aligned_alloc(64, threads * sizeof(*ws));
    if (ws == NULL)
        abort();
    memset(ws, 0, threads * sizeof(*ws));
    struct timespec t0, t1;
    atomic_store(&sh->go, 0);
    atomic_store(&sh->stop, 0);
    for (unsigned i = 0; i < threads; i++) {
        ws[i].sh = sh;
        ws[i].id = i;
        pthread_create(&ws[i].thread, NULL, run_worker, &ws[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    atomic_store_explicit(&sh->go, 1, memory_order_release);
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&sh->stop, 1);
    uint64_t ops = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(ws[i].thread, NULL);
        ops += ws[i].ops;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(ws);
    return (double)ops / ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

int main(int argc, char **argv)
{
    const char *thread_list = argc > 1 ? argv[1] : "1,2,4,8";
    double seconds = argc > 2 ? atof(argv[2]) : 1.0;
    uint32_t nkeys = argc > 3 ? (uint32_t)atol(argv[3]) : 1000000;
    const char *only = argc > 4 ? argv[4] : NULL;
    struct store_config cfg = {0};
#ifdef BENCH_SINGLE_SHARD
    cfg.single_shard = true;
#endif
    struct shared sh = {.nkeys = nkeys};
    sh.store = store_create(&cfg);
    sh.keys = malloc((size_t)nkeys * KEY_LEN);
    if (sh.store == NULL || sh.keys == NULL)
        return 1;
    static const char value[VALUE_LEN] = "0123456789abcdef0123456789abcdef";
    struct store_value v = {.kind = STORE_KIND_STRING, .data = value, .len = VALUE_LEN};
    for (uint32_t i = 0; i < nkeys; i++) {
        char text[KEY_LEN + 1];
        snprintf(text, sizeof(text), "key:%012u", i);
        memcpy(sh.keys[i], text, KEY_LEN);
        store_set(sh.store, sh.keys[i], KEY_LEN, &v, NULL, NULL);
    }
    uint32_t *zipf = zipf_samples(nkeys, 0.99);

    for (size_t wl = 0; wl < sizeof(workloads) / sizeof(workloads[0]); wl++) {
        for (int dist = 0; dist < 2; dist++) {
            char cell[64];
            snprintf(cell, sizeof(cell), "%s/%s", workloads[wl].name, dist ? "zipf0.99" : "uniform");
            if (only != NULL && strcmp(only, cell) != 0)
                continue;
            sh.get_percent = workloads[wl].get_percent;
            sh.zipf = dist ? zipf : NULL;
            char list[64];
            snprintf(list, sizeof(list), "%s", thread_list);
            for (char *t = strtok(list, ","); t != NULL; t = strtok(NULL, ",")) {
                double ops = run(&sh, (unsigned)atoi(t), seconds);
                printf("%s %s %s %s %.0f\n", BENCH_IMPL, workloads[wl].name, dist ? "zipf0.99" : "uniform", t, ops);
                fflush(stdout);
            }
        }
    }
    store_destroy(sh.store);
    free(sh.keys);
    free(zipf);
    return 0;
}
