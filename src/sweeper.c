/*
 * The expiry sweeper: a thread that calls store_expire_step() every
 * SWEEP_INTERVAL_MS; when a step finds expired entries it runs again at
 * once, up to SWEEP_BURST steps, so memory from mass expiry comes back
 * quickly while the work per step, and so the time any shard lock is held,
 * stays bounded.
 *
 * Allocators keep freed memory to reuse rather than returning it: after a
 * mass expiry whose freed entries lie between live ones (or large request
 * and response buffers freed the same way), RSS stays far above what the
 * store holds. So every TRIM_CHECK_MS the sweeper compares the process's RSS
 * with the store's bytes; past bytes x 1.25 + TRIM_SLACK it hands free memory
 * back: the store's slabs (store_trim, which walks each size class's pages
 * with a free slot under that class's lock) and glibc's heap (malloc_trim,
 * which walks the free lists with each arena locked: ~10 ms for 500k
 * scattered free chunks). A trim that gives back less than half the excess
 * (fragmentation, or buffers still in use) doubles the wait before the next,
 * up to TRIM_BACKOFF_MAX_MS: short enough that memory freed once a burst is
 * over still comes back within seconds.
 *
 * The server starts it with trimming on (src/main.c); bench/store/expiry.c
 * runs the same loop with it off, to measure the store's reclamation alone.
 */
#include "sweeper.h"

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "monotonic.h"

#define SWEEP_INTERVAL_MS 100
#define SWEEP_BUCKETS 4096
#define SWEEP_BURST 16
#define TRIM_CHECK_MS 1000
#define TRIM_SLACK ((size_t)16 << 20)
#define TRIM_BACKOFF_MAX_MS 8000

struct sweeper {
    struct store *store;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop; /* guarded by lock */
    int trim; /* return free heap to the system (below) */
    /* The sweeper's own: */
    int64_t next_trim_check_ms; /* CLOCK_MONOTONIC */
    int64_t trim_wait_ms;
};

/* This process's resident bytes, or 0 if /proc cannot tell. */
static size_t resident_bytes(void)
{
    unsigned long pages_total = 0, pages_resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    int n = fscanf(f, "%lu %lu", &pages_total, &pages_resident);
    fclose(f);
    return n == 2 ? (size_t)pages_resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* Hands free heap back to the system when RSS is well above what the store holds (see the top comment). */
static void trim_if_bloated(struct sweeper *sw)
{
    int64_t now = monotonic_ms();
    if (now < sw->next_trim_check_ms)
        return;
    struct store_stats st;
    store_stats(sw->store, &st);
    size_t held = st.bytes_used + st.bytes_pending_free; /* pending: not free yet, so no trim can return it */
    size_t expected = held + held / 4 + TRIM_SLACK, before = resident_bytes();
    if (before > expected) {
        store_trim(sw->store);
        malloc_trim(0);
        size_t after = resident_bytes();
        int helped = after < before && before - after >= (before - expected) / 2;
        sw->trim_wait_ms = helped ? TRIM_CHECK_MS : sw->trim_wait_ms * 2;
        if (sw->trim_wait_ms > TRIM_BACKOFF_MAX_MS)
            sw->trim_wait_ms = TRIM_BACKOFF_MAX_MS;
        log_msg(LOG_LEVEL_DEBUG, "trim: RSS %zu -> %zu bytes (store %zu); next check in %lld ms", before, after,
                st.bytes_used, (long long)sw->trim_wait_ms);
    } else {
        sw->trim_wait_ms = TRIM_CHECK_MS;
    }
    sw->next_trim_check_ms = now + sw->trim_wait_ms;
}

static void *sweeper_main(void *arg)
{
    struct sweeper *sw = arg;
    pthread_mutex_lock(&sw->lock);
    while (!sw->stop) {
        struct timespec until = monotonic_deadline(SWEEP_INTERVAL_MS);
        pthread_cond_timedwait(&sw->wake, &sw->lock, &until);
        if (sw->stop)
            break;
        pthread_mutex_unlock(&sw->lock);
        for (int i = 0; i < SWEEP_BURST && store_expire_step(sw->store, SWEEP_BUCKETS) > 0; i++)
            ;
        if (sw->trim)
            trim_if_bloated(sw);
        pthread_mutex_lock(&sw->lock);
    }
    pthread_mutex_unlock(&sw->lock);
    return NULL;
}

void sweeper_stop(struct sweeper *sw)
{
    pthread_mutex_lock(&sw->lock);
    sw->stop = 1;
    pthread_cond_signal(&sw->wake);
    pthread_mutex_unlock(&sw->lock);
    pthread_join(sw->thread, NULL);
    pthread_cond_destroy(&sw->wake);
    pthread_mutex_destroy(&sw->lock);
    free(sw);
}

struct sweeper *sweeper_start(struct store *store, int trim)
{
    struct sweeper *sw = calloc(1, sizeof(*sw));
    if (sw == NULL)
        return NULL;
    sw->store = store;
    sw->trim = trim;
    sw->trim_wait_ms = TRIM_CHECK_MS;
    pthread_mutex_init(&sw->lock, NULL);
    monotonic_cond_init(&sw->wake);
    if (pthread_create(&sw->thread, NULL, sweeper_main, sw) != 0) {
        pthread_cond_destroy(&sw->wake);
        pthread_mutex_destroy(&sw->lock);
        free(sw);
        return NULL;
    }
    return sw;
}
