/*
 * Store memory benchmark: what an entry really costs, and whether max_memory
 * bounds the process's resident memory, measured with the store alone (no
 * HTTP) and read from the kernel (VmRSS in /proc/self/status), not from the
 * store's own accounting, which is printed beside it.
 *
 *   memory entries [N]                      bytes per entry (default N = 1,000,000)
 *   memory bound MiB sieve|s3fifo [EVERY [THREADS]]
 *                                           max_memory honoured (sample RSS every EVERY writes)
 *
 * "entries" inserts N entries of 16-byte keys and 32-byte string values into
 * an unbounded store and prints the RSS growth and stats.bytes_used per entry.
 * Keys are formatted on the stack, so the only heap the process grows is the
 * store's.
 *
 * "bound" creates a store with max_memory = MiB and the named eviction
 * policy, then writes ten times max_memory of key and value bytes under
 * distinct keys, so the store must evict all along. Value sizes are drawn
 * log-uniformly from 16 B to 4 KiB with a fixed seed, which spreads entries
 * over most of the store's size classes and so exercises fragmentation. The
 * base is the RSS of this process with the empty store just created; the goal
 * is peak RSS <= max_memory x 1.15 + base. The sampled peak can miss a spike
 * between samples, so VmHWM (the kernel's own high-water mark, exact for this
 * process) is printed too. At the end malloc_trim(0) shows how much of the
 * RSS is memory glibc holds free (bucket arrays, ghosts, entries over 8 KiB:
 * the rest lives in the store's own slabs) rather than memory the store uses.
 *
 * Each mode runs in its own process (bench/store/memory.sh), so the base and
 * the high-water mark are not polluted by an earlier measurement. Output is
 * "key=value" pairs, one result line per run, for the script to tabulate.
 * With THREADS = 1 (the default) the one writer is the main thread; the
 * server's worker threads instead write at once and evict each other's
 * entries, which THREADS > 1 reproduces (each writer writes its share of the
 * ten times). When entries were malloc'd, that left memory freed by one
 * thread idle in another's glibc arena; the store's slabs reuse it.
 */
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cachette/store.h"

#define KEY_LEN 16
#define VALUE_LEN 32
#define MIN_VALUE 16
#define MAX_VALUE 4096
#define BOUND_FACTOR 10
#define SLACK 1.15

/* Returns a field of /proc/self/status (VmRSS, VmHWM) in bytes, or 0 if it cannot be read. */
static size_t status_bytes(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kib = 0, n = strlen(field);
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kib = strtoull(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib * 1024;
}

static size_t rss(void)
{
    return status_bytes("VmRSS");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Writes prefix followed by i in decimal, zero-padded, into exactly KEY_LEN bytes (no NUL). */
static void format_key(char *key, const char *prefix, size_t i)
{
    size_t p = strlen(prefix);
    memcpy(key, prefix, p);
    for (size_t k = KEY_LEN; k > p; k--, i /= 10)
        key[k - 1] = (char)('0' + i % 10);
}

/* The heap glibc's arenas hold, in use and free; mmapped chunks are in hblkhd. */
static void print_mallinfo(const char *prefix)
{
    struct mallinfo2 mi = mallinfo2();
    printf(" %s_heap=%zu %s_inuse=%zu %s_free=%zu %s_mmap=%zu", prefix, mi.arena, prefix, mi.uordblks, prefix,
           mi.fordblks, prefix, mi.hblkhd);
}

static int run_entries(size_t n)
{
    struct store *store = store_create(NULL);
    char key[KEY_LEN], value[VALUE_LEN];
    struct store_stats st0, st;
    if (store == NULL) {
        fprintf(stderr, "memory: store_create failed\n");
        return 1;
    }
    memset(value, 'v', sizeof(value));
    store_stats(store, &st0);
    size_t before = rss();
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        format_key(key, "key:", i);
        struct store_value v = {.kind = STORE_KIND_STRING, .data = value, .len = VALUE_LEN};
        int rc = store_set(store, key, KEY_LEN, &v, NULL, NULL);
        if (rc != 0) {
            fprintf(stderr, "memory: store_set: %s\n", store_strerror(rc));
            store_destroy(store);
            return 1;
        }
    }
    double secs = now_s() - t0;
    size_t after = rss();
    store_stats(store, &st);
    printf("mode=entries n=%zu key=%d value=%d rss_before=%zu rss_after=%zu rss_per_entry=%.1f bytes_used=%zu "
           "bytes_used_per_entry=%.1f empty_bytes_used=%zu entries=%zu load_s=%.2f",
           n, KEY_LEN, VALUE_LEN, before, after, ((double)after - (double)before) / (double)n, st.bytes_used,
           (double)(st.bytes_used - st0.bytes_used) / (double)n, st0.bytes_used, st.entries, secs);
    print_mallinfo("m");
    printf("\n");
    store_destroy(store);
    return 0;
}

/* One writer of "bound": its own seed and key prefix, so keys never repeat across writers. */
struct writer {
    pthread_t thread;
    struct store *store;
    unsigned id;
    size_t target, every;
    size_t written, writes, failed, samples, peak;
};

static void *writer_main(void *arg)
{
    static char value[MAX_VALUE]; /* only read */
    struct writer *w = arg;
    double log_ratio = log((double)MAX_VALUE / MIN_VALUE);
    uint64_t seed = 0x9e3779b97f4a7c15ull * (w->id + 1);
    char key[KEY_LEN], prefix[4] = {'k', (char)('a' + w->id % 26), ':', '\0'};
    while (w->written < w->target) {
        /* log-uniform in [MIN_VALUE, MAX_VALUE]: exp of a uniform draw over the log range */
        double u = (double)(xorshift(&seed) >> 11) / (double)(1ull << 53);
        size_t len = (size_t)(MIN_VALUE * exp(u * log_ratio));
        if (len > MAX_VALUE)
            len = MAX_VALUE;
        format_key(key, prefix, w->writes);
        struct store_value v = {.kind = STORE_KIND_STRING, .data = value, .len = len};
        if (store_set(w->store, key, KEY_LEN, &v, NULL, NULL) != 0)
            w->failed++;
        w->written += KEY_LEN + len;
        w->writes++;
        if (w->writes % w->every == 0) {
            size_t r = rss();
            w->samples++;
            if (r > w->peak)
                w->peak = r;
        }
    }
    return NULL;
}

static int run_bound(size_t max_mib, const char *policy, size_t every, unsigned threads)
{
    struct store_config cfg = {.max_memory = max_mib << 20};
    if (strcmp(policy, "sieve") == 0) {
        cfg.eviction = STORE_EVICT_SIEVE;
    } else if (strcmp(policy, "s3fifo") == 0) {
        cfg.eviction = STORE_EVICT_S3FIFO;
    } else {
        fprintf(stderr, "memory: unknown policy %s (sieve|s3fifo)\n", policy);
        return 2;
    }
    struct store *store = store_create(&cfg);
    struct writer w[26];
    if (store == NULL) {
        fprintf(stderr, "memory: store_create failed\n");
        return 1;
    }
    size_t base = rss();
    size_t target = BOUND_FACTOR * cfg.max_memory;
    double t0 = now_s();
    unsigned started = 0;
    for (unsigned i = 0; i < threads; i++) {
        w[i] = (struct writer){.store = store, .id = i, .target = target / threads, .every = every, .peak = base};
        /* One writer runs on the main thread, so a 1-writer run uses glibc's main arena only. */
        if (i > 0) {
            if (pthread_create(&w[i].thread, NULL, writer_main, &w[i]) != 0) {
                fprintf(stderr, "memory: cannot start writer %u\n", i);
                break;
            }
        }
        started++;
    }
    writer_main(&w[0]);
    size_t peak = base, written = 0, writes = 0, failed = 0, samples = 0;
    for (unsigned i = 0; i < started; i++) {
        if (i > 0)
            pthread_join(w[i].thread, NULL);
        peak = w[i].peak > peak ? w[i].peak : peak;
        written += w[i].written;
        writes += w[i].writes;
        failed += w[i].failed;
        samples += w[i].samples;
    }
    double secs = now_s() - t0;
    size_t final = rss();
    if (final > peak)
        peak = final;
    size_t hwm = status_bytes("VmHWM");
    struct store_stats st;
    store_stats(store, &st);
    double limit = (double)cfg.max_memory * SLACK + (double)base;
    double worst = (double)(hwm > peak ? hwm : peak);
    printf("mode=bound policy=%s threads=%u max_memory=%zu written=%zu writes=%zu failed=%zu samples=%zu every=%zu "
           "base=%zu peak=%zu hwm=%zu final=%zu limit=%.0f peak_ok=%s over=%.0f evicted=%" PRIu64 " entries=%zu "
           "bytes_used=%zu used_ok=%s load_s=%.2f",
           policy, started, cfg.max_memory, written, writes, failed, samples, every, base, peak, hwm, final, limit,
           worst <= limit ? "yes" : "no", worst > limit ? worst - limit : 0.0, st.evicted, st.entries,
           st.bytes_used, st.bytes_used <= cfg.max_memory ? "yes" : "no", secs);
    print_mallinfo("m");
    malloc_trim(0);
    printf(" trimmed=%zu", rss());
    print_mallinfo("t");
    printf("\n");
    if (worst > limit)
        fprintf(stderr, "memory: %s, %u writers: RSS %.1f MiB is %.1f MiB over the bound %.1f MiB (continuing)\n",
                policy, started, worst / 1048576.0, (worst - limit) / 1048576.0, limit / 1048576.0);
    store_destroy(store);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "entries") == 0) {
        size_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
        if (n > 0)
            return run_entries(n);
    }
    if (argc >= 4 && strcmp(argv[1], "bound") == 0) {
        size_t every = argc > 4 ? strtoull(argv[4], NULL, 10) : 1000;
        unsigned long threads = argc > 5 ? strtoul(argv[5], NULL, 10) : 1;
        if (threads >= 1 && threads <= 26)
            return run_bound(strtoull(argv[2], NULL, 10), argv[3], every ? every : 1, (unsigned)threads);
        fprintf(stderr, "memory: THREADS must be 1..26\n");
        return 2;
    }
    fprintf(stderr, "usage: %s entries [N] | bound MiB sieve|s3fifo [EVERY [THREADS]]\n", argv[0]);
    return 2;
}
