/*
 * Unit tests of the expiry sweeper (src/sweeper.c) on a real store: it
 * reclaims expired entries on its own, and with trimming on it hands the heap
 * they leave behind back to the system once RSS outgrows what the store holds.
 *
 * The store's clock is the test's, so entries expire the moment the test
 * moves it; the sweeper's own timing (a step every 100 ms, an RSS check every
 * second) is real, so each test waits for an outcome with a deadline instead
 * of sleeping a fixed time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cachette/store.h"
#include "monotonic.h"
#include "sweeper.h"
#include "../support/procfs.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_BUILD 1 /* its shadow memory and quarantine: RSS says nothing about the trim */
#else
#define SANITIZER_BUILD 0
#endif

#define TRIM_SLACK_KIB (16 * 1024) /* sweeper.c's TRIM_SLACK */

static _Atomic int64_t clock_ms = 1000000;

static int64_t test_clock(void *ctx)
{
    (void)ctx;
    return clock_ms;
}

static struct store *open_store(void)
{
    struct store_config cfg = {.clock = test_clock, .eviction = STORE_EVICT_S3FIFO};
    struct store *s = store_create(&cfg);
    assert_non_null(s);
    return s;
}

/*
 * Writes `count` entries of `len` bytes; every `keep_every`-th never expires,
 * the others expire after 1 ms of the test clock. Returns how many are kept.
 */
static size_t fill(struct store *s, size_t count, size_t len, size_t keep_every)
{
    char key[32], *value = malloc(len);
    assert_non_null(value);
    memset(value, 'v', len);
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        int keep = i % keep_every == 0;
        struct store_value v = {.kind = STORE_KIND_STRING, .data = value, .len = len};
        struct store_set_opts opts = {.ttl_ms = keep ? 0 : 1};
        int n = snprintf(key, sizeof(key), "k%zu", i);
        assert_int_equal(store_set(s, key, (size_t)n, &v, &opts, NULL), STORE_OK);
        kept += (size_t)keep;
    }
    free(value);
    return kept;
}

/* Waits up to timeout_ms for the store to hold `entries`; returns whether it did. */
static int wait_for_count(struct store *s, size_t entries, int timeout_ms)
{
    int64_t deadline = monotonic_ms() + timeout_ms;
    while (store_count(s) != entries && monotonic_ms() < deadline)
        usleep(20000);
    return store_count(s) == entries;
}

static void expired_entries_are_reclaimed_without_reads(void **state)
{
    (void)state;
    struct store *s = open_store();
    size_t kept = fill(s, 50000, 32, 10);
    struct sweeper *sw = sweeper_start(s, 0);
    assert_non_null(sw);
    usleep(300000);
    assert_int_equal(store_count(s), 50000); /* nothing has expired yet: the sweeper takes nothing */
    clock_ms += 2;
    int64_t started = monotonic_ms();
    assert_true(wait_for_count(s, kept, 30000));
    printf("  %d expired entries reclaimed in %lld ms\n", 50000 - (int)kept, (long long)(monotonic_ms() - started));
    sweeper_stop(sw); /* a sweep counts what it unlinked after unlocking: join it before reading the counter */
    struct store_stats st;
    store_stats(s, &st);
    assert_int_equal(st.expired, 50000 - kept);
    store_destroy(s);
}

/*
 * 40 MB of 2 KiB values, one kept after every nine (more where pages are
 * larger than 4 KiB, so that free runs still span whole pages), so that what
 * expiry frees lies between live entries: no slab page empties, so none goes
 * back on its own; only the trim (store_trim) returns the memory between.
 */
static void trim_returns_the_heap_expiry_left_behind(void **state)
{
    (void)state;
    struct store *s = open_store();
    size_t page = (size_t)sysconf(_SC_PAGESIZE), keep_every = page > 4096 ? 10 * page / 4096 : 10;
    long start_kb = procfs_rss_kb(getpid());
    size_t kept = fill(s, 20000, 2048, keep_every);
    long loaded_kb = procfs_rss_kb(getpid());
    struct sweeper *sw = sweeper_start(s, 1);
    assert_non_null(sw);
    clock_ms += 2;
    int64_t started = monotonic_ms(), deadline = started + 30000; /* the longest back-off (8 s), on a loaded machine */
    assert_true(wait_for_count(s, kept, 30000));

    struct store_stats st;
    store_stats(s, &st);
    long bound_kb = start_kb + (long)((st.bytes_used + st.bytes_used / 4) / 1024) + TRIM_SLACK_KIB;
    long rss_kb = procfs_rss_kb(getpid());
    while (!SANITIZER_BUILD && rss_kb > bound_kb && monotonic_ms() < deadline) {
        usleep(50000);
        rss_kb = procfs_rss_kb(getpid());
    }
    printf("  RSS %ld KiB at start, %ld KiB loaded, %ld KiB %lld ms after the entries expired (store %zu KiB, bound "
           "%ld KiB)%s\n",
           start_kb, loaded_kb, rss_kb, (long long)(monotonic_ms() - started), st.bytes_used / 1024, bound_kb,
           SANITIZER_BUILD ? " (not asserted: sanitizer build)" : "");
    if (!SANITIZER_BUILD) {
        assert_true(loaded_kb > bound_kb); /* else the test proves nothing */
        assert_true(rss_kb <= bound_kb);
    }
    sweeper_stop(sw);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* The trim test first, while this process's heap holds nothing else. */
        cmocka_unit_test(trim_returns_the_heap_expiry_left_behind),
        cmocka_unit_test(expired_entries_are_reclaimed_without_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
