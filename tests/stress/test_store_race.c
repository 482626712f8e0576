/*
 * Concurrency stress tests of the store, meant to run under ThreadSanitizer
 * (make tsan) as well as in the release build.
 *
 * Each test starts THREADS threads behind a barrier on one store, lets them
 * hammer a small, overlapping key space, joins them, and then checks what
 * must hold whatever the interleaving: exact counter totals, values that were
 * never read half-written, the memory bound, and statistics that add up.
 * Worker threads never call cmocka's assertions (they longjmp, which is only
 * safe on the main thread): they count violations with CHECK() and the main
 * thread asserts the count is zero.
 *
 * The iteration counts keep each test to a few seconds under TSan on a
 * two-core machine; STRESS_SCALE (an integer, default 1) multiplies them for
 * longer runs.
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cachette/store.h"
#include "store/internal.h" /* shard_for, to give each writer a shard */

#define THREADS 8

/* ------------------------------------------------------------------------ */
/* Harness                                                                   */
/* ------------------------------------------------------------------------ */

static atomic_int failures;
static atomic_int writers_done;    /* test_flush_race */
static atomic_int flushes_emptied; /* test_flush_race: flushes that removed entries */
static atomic_int refusals;        /* test_a_refused_write_is_absent: writes refused so far */

/*
 * How long a test may go on waiting for an interleaving it needs (two
 * writers overlapping, say) before it fails: generous, since a loaded
 * two-core machine may run the threads one after another for a long while,
 * and a test whose verdict hangs on the scheduler is a defect.
 */
#define PRECONDITION_WAIT_MS 60000

/* Milliseconds on CLOCK_MONOTONIC: the real time a test has waited, not the store's clock. */
static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static _Atomic int64_t wait_until_ms; /* set by a test before its workers start */

/* Records a violation seen on a worker thread; the first few are printed. */
#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            check_failed(__LINE__, __VA_ARGS__);                                                                       \
    } while (0)

static void check_failed(int line, const char *fmt, ...)
{
    if (atomic_fetch_add(&failures, 1) >= 10)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "test_store_race.c:%d: ", line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int scale(void)
{
    const char *s = getenv("STRESS_SCALE");
    int n = s ? atoi(s) : 1;
    return n > 0 ? n : 1;
}

/* A clock the tests move by hand; atomic because every thread reads it. */
static _Atomic int64_t fake_now = 1000000;

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return atomic_load_explicit(&fake_now, memory_order_relaxed);
}

static struct store *open_store_with(size_t max_memory, unsigned shard_bits, int fake_time,
                                     enum store_eviction eviction)
{
    struct store_config cfg = {
        .max_memory = max_memory,
        .shard_bits = shard_bits,
        .eviction = eviction,
        .clock = fake_time ? fake_clock : NULL,
    };
    return store_create(&cfg);
}

static struct store *open_store(size_t max_memory, unsigned shard_bits, int fake_time)
{
    return open_store_with(max_memory, shard_bits, fake_time, STORE_EVICT_SIEVE);
}

struct worker {
    pthread_t thread;
    int id;
    struct store *store;
    pthread_barrier_t *start;
    uint64_t rng;
    /* What this thread did, summed by the test afterwards. */
    uint64_t sets, created, deletes, hits, misses, flushed, scans, ops;
    size_t max_used;
};

/* Runs fn on THREADS workers over one store and waits for all of them. */
static void run_workers(struct store *s, struct worker w[THREADS], void *(*fn)(void *))
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].id = i;
        w[i].store = s;
        w[i].start = &start;
        w[i].rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
        assert_int_equal(pthread_create(&w[i].thread, NULL, fn, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(w[i].thread, NULL), 0);
    pthread_barrier_destroy(&start);
}

static uint64_t next_rand(struct worker *w)
{
    /* xorshift64* */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 0x2545f4914f6cdd1dULL;
}

static void *plain_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static int setup(void **state)
{
    (void)state;
    atomic_store(&failures, 0);
    atomic_store(&fake_now, 1000000);
    atomic_store(&writers_done, 0);
    atomic_store(&flushes_emptied, 0);
    atomic_store(&refusals, 0);
    atomic_store(&wait_until_ms, real_ms() + PRECONDITION_WAIT_MS);
    return 0;
}

static int teardown(void **state)
{
    store_destroy(*state);
    *state = NULL;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Self-validating values                                                    */
/* ------------------------------------------------------------------------ */

/*
 * A value is named by a 64-bit tag (writer id and sequence number). Its
 * length, kind, content type and every byte follow from the tag, so a reader
 * can tell a whole value from a torn or mixed one without knowing who wrote it.
 */
#define VALUE_MAX 200

static size_t tag_len(uint64_t tag)
{
    return 16 + (size_t)(tag * 0x9e3779b97f4a7c15ULL >> 58) * 3; /* 16..205, capped below */
}

static enum store_kind tag_kind(uint64_t tag)
{
    return (enum store_kind)(tag % 3);
}

static uint8_t tag_byte(uint64_t tag, size_t i)
{
    return (uint8_t)((tag >> (8 * (i % 8))) ^ (i * 131) ^ (tag * 7));
}

static size_t make_value(uint64_t tag, unsigned char *buf, char *ct, size_t *ct_len)
{
    size_t len = tag_len(tag);
    if (len > VALUE_MAX)
        len = VALUE_MAX;
    memcpy(buf, &tag, sizeof(tag));
    for (size_t i = sizeof(tag); i < len; i++)
        buf[i] = tag_byte(tag, i);
    *ct_len = (size_t)snprintf(ct, 32, "test/t%" PRIu64, tag % 9973);
    return len;
}

/* Checks a value read back is exactly some writer's whole value. */
static void check_value(const char *key, const struct store_item *item)
{
    uint64_t tag;
    unsigned char expect[VALUE_MAX];
    char ct[32];
    size_t ct_len;

    CHECK(item->len >= sizeof(tag), "%s: value of %zu bytes is too short", key, item->len);
    if (item->len < sizeof(tag))
        return;
    memcpy(&tag, item->data, sizeof(tag));
    size_t len = make_value(tag, expect, ct, &ct_len);
    CHECK(item->len == len, "%s: tag %" PRIx64 " has %zu bytes, not %zu", key, tag, item->len, len);
    CHECK(item->kind == tag_kind(tag), "%s: tag %" PRIx64 " has kind %d", key, tag, (int)item->kind);
    CHECK(item->meta.version != 0, "%s: version 0", key);
    CHECK(item->data[item->len] == '\0', "%s: no NUL after the value", key);
    if (item->len == len)
        CHECK(memcmp(item->data, expect, len) == 0, "%s: torn value for tag %" PRIx64, key, tag);
    if (item->kind == STORE_KIND_BYTES) {
        CHECK(item->content_type != NULL && item->content_type_len == ct_len &&
                  memcmp(item->content_type, ct, ct_len) == 0 && item->content_type[ct_len] == '\0',
              "%s: content type does not match tag %" PRIx64, key, tag);
    } else {
        CHECK(item->content_type == NULL, "%s: content type on kind %d", key, (int)item->kind);
    }
}

static int write_value(struct store *s, const char *key, uint64_t tag, const struct store_set_opts *opts,
                       struct store_meta *meta)
{
    unsigned char buf[VALUE_MAX];
    char ct[32];
    size_t ct_len;
    size_t len = make_value(tag, buf, ct, &ct_len);
    struct store_value v = {
        .kind = tag_kind(tag),
        .data = buf,
        .len = len,
        .content_type = ct,
        .content_type_len = ct_len,
    };
    return store_set(s, key, strlen(key), &v, opts, meta);
}

/* ------------------------------------------------------------------------ */
/* (a) Counters: no increment is lost                                        */
/* ------------------------------------------------------------------------ */

static int incr_rounds(void)
{
    return 12000 * scale();
}

static void *incr_worker(void *arg)
{
    struct worker *w = arg;
    char own[16];
    snprintf(own, sizeof(own), "own:%d", w->id);
    pthread_barrier_wait(w->start);
    for (int i = 0; i < incr_rounds(); i++) {
        int64_t sum;
        int rc = store_incr(w->store, "shared", 6, 1, NULL, &sum, NULL);
        CHECK(rc == STORE_OK, "incr shared: %s", store_strerror(rc));
        CHECK(sum >= 1 && sum <= (int64_t)THREADS * incr_rounds(), "shared sum %" PRId64 " out of range", sum);
        rc = store_incr(w->store, own, strlen(own), 2, NULL, &sum, NULL);
        CHECK(rc == STORE_OK && sum == 2 * (int64_t)(i + 1), "own counter %s is %" PRId64 " after %d", own, sum, i + 1);
        w->sets += 2;
    }
    return NULL;
}

static int64_t read_counter(struct store *s, const char *key)
{
    struct store_item item;
    assert_int_equal(store_get(s, key, strlen(key), plain_alloc, NULL, &item), STORE_OK);
    assert_int_equal(item.kind, STORE_KIND_JSON);
    char *end;
    long long v = strtoll(item.data, &end, 10);
    assert_true(end == item.data + item.len);
    free(item.data);
    return v;
}

static void test_incr_exact(void **state)
{
    struct store *s = open_store(0, 2, 0);
    assert_non_null(s);
    *state = s;
    struct worker w[THREADS];
    run_workers(s, w, incr_worker);

    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(read_counter(s, "shared"), (int64_t)THREADS * incr_rounds());
    char key[16];
    for (int i = 0; i < THREADS; i++) {
        snprintf(key, sizeof(key), "own:%d", i);
        assert_int_equal(read_counter(s, key), 2 * (int64_t)incr_rounds());
    }
    struct store_stats st;
    store_stats(s, &st);
    assert_int_equal(st.sets, 2 * (uint64_t)THREADS * incr_rounds());
    assert_int_equal(st.entries, THREADS + 1);
}

/* ------------------------------------------------------------------------ */
/* (b) A mix of every operation: values are never torn                       */
/* ------------------------------------------------------------------------ */

#define MIX_VALUES   64
#define MIX_COUNTERS 8

static int mix_rounds(void)
{
    return 16000 * scale();
}

static void mix_key(char *buf, size_t size, struct worker *w, int *is_counter)
{
    uint64_t r = next_rand(w);
    *is_counter = r % 5 == 0;
    if (*is_counter)
        snprintf(buf, size, "n%d", (int)((r >> 8) % MIX_COUNTERS));
    else
        snprintf(buf, size, "v%d", (int)((r >> 8) % MIX_VALUES));
}

static void mix_get(struct worker *w, const char *key, int is_counter)
{
    struct store_item item;
    int rc = store_get(w->store, key, strlen(key), plain_alloc, NULL, &item);
    if (rc == STORE_ENOTFOUND) {
        w->misses++;
        return;
    }
    CHECK(rc == STORE_OK, "get %s: %s", key, store_strerror(rc));
    if (rc != STORE_OK)
        return;
    w->hits++;
    if (is_counter) {
        char *end;
        CHECK(item.kind == STORE_KIND_JSON, "counter %s has kind %d", key, (int)item.kind);
        (void)strtoll(item.data, &end, 10);
        CHECK(item.len > 0 && end == item.data + item.len, "counter %s holds '%s'", key, item.data);
    } else {
        check_value(key, &item);
    }
    free(item.data);
}

/* Writers: every kind of write, with short lifetimes on the test clock. */
static void mix_write(struct worker *w, uint64_t seq)
{
    char key[16];
    int is_counter;
    mix_key(key, sizeof(key), w, &is_counter);
    uint64_t r = next_rand(w);
    uint64_t tag = ((uint64_t)w->id << 32) | seq;
    struct store_set_opts opts = {.ttl_ms = r % 4 == 0 ? (int64_t)(r >> 8) % 20 + 1 : 0};
    struct store_meta meta;
    int rc;

    if (is_counter) {
        int64_t sum;
        if (r % 7 == 0) {
            rc = store_delete(w->store, key, strlen(key), 0);
            CHECK(rc == STORE_OK || rc == STORE_ENOTFOUND, "delete %s: %s", key, store_strerror(rc));
            w->deletes += rc == STORE_OK;
            return;
        }
        rc = store_incr(w->store, key, strlen(key), (r >> 16) % 2 ? 1 : -1, &opts, &sum, &meta);
        CHECK(rc == STORE_OK, "incr %s: %s", key, store_strerror(rc));
        w->sets += rc == STORE_OK;
        w->created += rc == STORE_OK && meta.created;
        return;
    }
    switch ((r >> 4) % 7) {
    case 0: /* create only */
        opts.mode = STORE_SET_IF_ABSENT;
        rc = write_value(w->store, key, tag, &opts, &meta);
        CHECK(rc == STORE_OK || rc == STORE_EEXISTS, "set-if-absent %s: %s", key, store_strerror(rc));
        CHECK(rc != STORE_OK || meta.created, "set-if-absent %s succeeded over a live entry", key);
        break;
    case 1: { /* compare and set on what was just read */
        struct store_item item;
        rc = store_get(w->store, key, strlen(key), plain_alloc, NULL, &item);
        if (rc != STORE_OK) {
            w->misses++;
            return;
        }
        w->hits++;
        check_value(key, &item);
        free(item.data);
        opts.mode = STORE_SET_IF_VERSION;
        opts.version = item.meta.version;
        rc = write_value(w->store, key, tag, &opts, &meta);
        CHECK(rc == STORE_OK || rc == STORE_EVERSION, "set-if-version %s: %s", key, store_strerror(rc));
        CHECK(rc != STORE_OK || (!meta.created && meta.version != opts.version), "set-if-version %s meta", key);
        break;
    }
    case 2: /* delete */
        rc = store_delete(w->store, key, strlen(key), r % 3 == 0 ? (r >> 20) | 1 : 0);
        CHECK(rc == STORE_OK || rc == STORE_ENOTFOUND || rc == STORE_EVERSION, "delete %s: %s", key,
              store_strerror(rc));
        w->deletes += rc == STORE_OK;
        return;
    default:
        rc = write_value(w->store, key, tag, &opts, &meta);
        CHECK(rc == STORE_OK, "set %s: %s", key, store_strerror(rc));
        CHECK(rc != STORE_OK || meta.version != 0, "set %s: version 0", key);
        break;
    }
    if (rc == STORE_OK) {
        w->sets++;
        w->created += meta.created;
    }
}

struct scan_check {
    size_t keys;
    int bad;
};

static void scan_key(void *ctx, const char *key, size_t key_len)
{
    struct scan_check *c = ctx;
    char buf[16];
    c->keys++;
    if (key_len < 2 || key_len >= sizeof(buf) || (key[0] != 'v' && key[0] != 'n')) {
        c->bad++;
        return;
    }
    memcpy(buf, key + 1, key_len - 1);
    buf[key_len - 1] = '\0';
    int n = atoi(buf);
    if (n < 0 || n >= (key[0] == 'v' ? MIX_VALUES : MIX_COUNTERS))
        c->bad++;
}

/*
 * Thread 0 keeps time: it moves the clock, sweeps and scans. The next two
 * read values as fast as they can; the rest write.
 */
static void *mix_worker(void *arg)
{
    struct worker *w = arg;
    char key[16];
    uint64_t cursor = 0;
    pthread_barrier_wait(w->start);
    for (int i = 0; i < mix_rounds(); i++) {
        int is_counter;
        if (w->id == 0) {
            if (i % 4 == 0)
                atomic_fetch_add_explicit(&fake_now, 1, memory_order_relaxed);
            if (i % 16 == 0)
                store_expire_step(w->store, 8);
            struct scan_check c = {0};
            size_t n = store_scan(w->store, cursor, i % 2 ? "v" : NULL, i % 2, 5, scan_key, &c, &cursor);
            CHECK(n == c.keys && c.bad == 0, "scan: %zu keys reported, %zu seen, %d bad", n, c.keys, c.bad);
            w->scans++;
        } else if (w->id <= 2) {
            mix_key(key, sizeof(key), w, &is_counter);
            mix_get(w, key, is_counter);
        } else {
            mix_write(w, (uint64_t)i);
        }
        w->ops++;
    }
    return NULL;
}

static void test_mixed_ops(void **state)
{
    struct store *s = open_store(0, 2, 1);
    assert_non_null(s);
    *state = s;
    struct worker w[THREADS];
    run_workers(s, w, mix_worker);
    assert_int_equal(atomic_load(&failures), 0);

    uint64_t sets = 0, created = 0, deletes = 0, hits = 0, misses = 0;
    for (int i = 0; i < THREADS; i++) {
        sets += w[i].sets;
        created += w[i].created;
        deletes += w[i].deletes;
        hits += w[i].hits;
        misses += w[i].misses;
    }
    struct store_stats st;
    store_stats(s, &st);
    assert_int_equal(st.sets, sets);
    assert_int_equal(st.deletes, deletes);
    assert_int_equal(st.hits, hits);
    assert_int_equal(st.misses, misses);
    assert_int_equal(st.evicted, 0);
    assert_true(sets > 1000 && hits > 100 && deletes > 10);

    /* Every entry ever created was deleted, reclaimed as expired, or is still held. */
    store_expire_step(s, 1u << 20);
    store_stats(s, &st);
    assert_int_equal(created, st.deletes + st.expired + st.entries);

    /* What is left is whole, and a scan sees exactly the entries held. */
    size_t found = 0;
    char key[16];
    for (int i = 0; i < MIX_VALUES + MIX_COUNTERS; i++) {
        struct worker reader = {.store = s};
        if (i < MIX_VALUES)
            snprintf(key, sizeof(key), "v%d", i);
        else
            snprintf(key, sizeof(key), "n%d", i - MIX_VALUES);
        mix_get(&reader, key, i >= MIX_VALUES);
        found += reader.hits;
    }
    assert_int_equal(atomic_load(&failures), 0);
    struct scan_check c = {0};
    uint64_t cursor = 0;
    do
        store_scan(s, cursor, NULL, 0, 1000, scan_key, &c, &cursor);
    while (cursor != 0);
    assert_int_equal(c.bad, 0);
    assert_int_equal(c.keys, found);
    assert_int_equal(store_count(s), found);
}

/* ------------------------------------------------------------------------ */
/* (c) The memory bound holds with every writer evicting at once             */
/* ------------------------------------------------------------------------ */

#define BOUND_MAX (96 * 1024)
/*
 * What one writer can hold over the bound at an instant: the entry it has
 * reserved and not yet linked (at most VALUE_MAX bytes of value, a 40-byte
 * header, an expiry, a short key, a content type and malloc's rounding), plus
 * one table doubling it has not yet evicted for. With 16 shards sharing
 * well under a thousand entries, no table passes 128 buckets, so a doubling
 * adds at most 128 * 8 bytes.
 */
#define ENTRY_MAX  (VALUE_MAX + 40 + 8 + 16 + 33 + 1 + 32)
#define GROWTH_MAX (128 * 8 + 32)

static int bound_rounds(void)
{
    return 12000 * scale();
}

static void *bound_worker(void *arg)
{
    struct worker *w = arg;
    char key[24];
    pthread_barrier_wait(w->start);
    for (int i = 0; i < bound_rounds(); i++) {
        struct store_meta meta;
        struct store_stats st;
        uint64_t tag = ((uint64_t)w->id << 32) | (uint64_t)i;
        snprintf(key, sizeof(key), "b%d", (int)(next_rand(w) % 2000));
        if (w->id == 0 && i % 2 == 0) {
            mix_get(w, key, 0);
        } else if (w->id == 1 && i % 8 == 0) {
            int rc = store_delete(w->store, key, strlen(key), 0);
            w->deletes += rc == STORE_OK;
        } else {
            int rc = write_value(w->store, key, tag, NULL, &meta);
            CHECK(rc == STORE_OK, "set %s: %s", key, store_strerror(rc));
            w->sets += rc == STORE_OK;
            w->created += rc == STORE_OK && meta.created;
        }
        store_stats(w->store, &st);
        if (st.bytes_used > w->max_used)
            w->max_used = st.bytes_used;
    }
    return NULL;
}

static void check_memory_bound(void **state, enum store_eviction eviction)
{
    struct store *s = open_store_with(BOUND_MAX, 4, 0, eviction);
    assert_non_null(s);
    *state = s;
    struct worker w[THREADS];
    run_workers(s, w, bound_worker);
    assert_int_equal(atomic_load(&failures), 0);

    size_t max_used = 0;
    uint64_t sets = 0, created = 0, deletes = 0, hits = 0, misses = 0;
    for (int i = 0; i < THREADS; i++) {
        if (w[i].max_used > max_used)
            max_used = w[i].max_used;
        sets += w[i].sets;
        created += w[i].created;
        deletes += w[i].deletes;
        hits += w[i].hits;
        misses += w[i].misses;
    }
    if (max_used > BOUND_MAX + THREADS * (ENTRY_MAX + GROWTH_MAX))
        fail_msg("bytes_used reached %zu, over %d + %d writers' worth", max_used, BOUND_MAX, THREADS);

    struct store_stats st;
    store_stats(s, &st);
    /* At rest nothing is in flight: the bound is exact. */
    assert_true(st.bytes_used <= BOUND_MAX);
    assert_true(st.bytes_used > BOUND_MAX / 2);
    assert_true(st.evicted > 1000);
    assert_int_equal(st.sets, sets);
    assert_int_equal(st.deletes, deletes);
    assert_int_equal(st.hits, hits);
    assert_int_equal(st.misses, misses);
    assert_int_equal(st.expired, 0);
    assert_int_equal(created, st.deletes + st.evicted + st.entries);
    assert_int_equal(st.entries, store_count(s));

    /* Every survivor is whole. */
    size_t found = 0;
    char key[24];
    for (int i = 0; i < 2000; i++) {
        struct worker reader = {.store = s};
        snprintf(key, sizeof(key), "b%d", i);
        mix_get(&reader, key, 0);
        found += reader.hits;
    }
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(found, st.entries);

    /* With every entry gone only the tables are left: the count never drifted. */
    assert_int_equal(store_flush(s), found);
    store_stats(s, &st);
    assert_true(st.bytes_used > 0);
    /* Bucket arrays, and for S3-FIFO the ghosts (4 bytes a bucket). */
    assert_true(st.bytes_used <= 16 * (256 * 8 + 32) * (eviction == STORE_EVICT_S3FIFO ? 2 : 1));
}

static void test_memory_bound(void **state)
{
    check_memory_bound(state, STORE_EVICT_SIEVE);
}

static void test_memory_bound_s3fifo(void **state)
{
    check_memory_bound(state, STORE_EVICT_S3FIFO);
}

/*
 * Without eviction a write past the bound is refused, and so is a table's
 * growth: the total must never end above max_memory, even when one shard
 * rehashes (under its own lock) while the other fills what room is left or
 * grows too. Each round fills a fresh two-shard store with new keys until
 * every writer was refused a few times, half the writers on each shard (so
 * that neither waits on the other's lock); the bound moves each round so
 * that growths land at different distances from it.
 */
static int fill_rounds(void)
{
    return 12 * scale();
}

static void *fill_worker(void *arg)
{
    struct worker *w = arg;
    char key[24];
    struct store_value v = {.kind = STORE_KIND_STRING, .data = "abcd", .len = 4};
    pthread_barrier_wait(w->start);
    for (int i = 0, refused = 0; refused < 20; i++) {
        snprintf(key, sizeof(key), "f%d:%d", w->id, i);
        if (shard_for(w->store, store_hash(w->store, key, strlen(key))) != &w->store->shards[w->id % 2])
            continue;
        int rc = store_set(w->store, key, strlen(key), &v, NULL, NULL);
        CHECK(rc == STORE_OK || rc == STORE_EFULL, "set %s: %s", key, store_strerror(rc));
        w->sets += rc == STORE_OK;
        refused += rc != STORE_OK;
    }
    return NULL;
}

static void test_memory_bound_noeviction(void **state)
{
    for (int round = 0; round < fill_rounds(); round++) {
        size_t max = ((size_t)3 << 19) + (size_t)round * 130003;
        struct store *s = open_store_with(max, 1, 0, STORE_EVICT_NONE);
        assert_non_null(s);
        *state = s;
        struct worker w[THREADS];
        run_workers(s, w, fill_worker);
        assert_int_equal(atomic_load(&failures), 0);

        uint64_t sets = 0;
        for (int i = 0; i < THREADS; i++)
            sets += w[i].sets;
        struct store_stats st;
        store_stats(s, &st);
        if (st.bytes_used > max)
            fail_msg("round %d: %zu bytes used at rest, over the bound of %zu", round, st.bytes_used, max);
        assert_true(st.bytes_used > max / 2);
        assert_int_equal(st.entries, sets);
        assert_int_equal(st.evicted, 0);
        store_destroy(s);
        *state = NULL;
    }
}

/*
 * A write that fails with STORE_EFULL is not in the store afterwards: in a
 * store that holds one or two of these values, a write is linked, then only
 * evicted again if nothing else can go, and must then say so, but must not
 * say so of a write that stayed (another writer's entry went instead). Keys
 * are each thread's own, so nothing else writes them.
 *
 * A refusal needs writers to overlap, which a loaded machine does not
 * promise within any number of rounds: so the writers go on past their
 * rounds until some write was refused, for up to PRECONDITION_WAIT_MS, and
 * the test fails only if none ever was.
 */
static int refused_rounds(void)
{
    return 4000 * scale();
}

static void *refused_worker(void *arg)
{
    struct worker *w = arg;
    static const char value[1800];
    char key[24];
    pthread_barrier_wait(w->start);
    for (int i = 0; i < refused_rounds() || (atomic_load(&refusals) == 0 && real_ms() < atomic_load(&wait_until_ms));
         i++) {
        snprintf(key, sizeof(key), "r%d:%d", w->id, i);
        struct store_value v = {.kind = STORE_KIND_STRING, .data = value, .len = 1200 + next_rand(w) % 600};
        int rc = store_set(w->store, key, strlen(key), &v, NULL, NULL);
        CHECK(rc == STORE_OK || rc == STORE_EFULL, "set %s: %s", key, store_strerror(rc));
        if (rc != STORE_EFULL)
            continue;
        w->misses++; /* the refusals */
        atomic_fetch_add(&refusals, 1);
        struct store_item item;
        rc = store_get(w->store, key, strlen(key), NULL, NULL, &item);
        CHECK(rc == STORE_ENOTFOUND, "%s was refused with EFULL, yet a get found it (%s)", key, store_strerror(rc));
    }
    return NULL;
}

static void test_a_refused_write_is_absent(void **state)
{
    struct store *s = open_store(6000, 1, 0);
    assert_non_null(s);
    *state = s;
    struct worker w[THREADS];
    run_workers(s, w, refused_worker);
    assert_int_equal(atomic_load(&failures), 0);
    uint64_t refused = 0;
    for (int i = 0; i < THREADS; i++)
        refused += w[i].misses;
    if (refused == 0) /* the store is small enough to refuse, but the writers never overlapped */
        fail_msg("no write was refused in %d rounds and %d s", refused_rounds(), PRECONDITION_WAIT_MS / 1000);
}

/* ------------------------------------------------------------------------ */
/* (d) Read-modify-write with STORE_SET_IF_VERSION loses no update           */
/* ------------------------------------------------------------------------ */

static int cas_rounds(void)
{
    return 2000 * scale();
}

static void *cas_worker(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(w->start);
    for (int done = 0; done < cas_rounds();) {
        struct store_item item;
        int rc = store_get(w->store, "cas", 3, plain_alloc, NULL, &item);
        CHECK(rc == STORE_OK, "get cas: %s", store_strerror(rc));
        if (rc != STORE_OK)
            return NULL;
        char *end;
        long long v = strtoll(item.data, &end, 10);
        CHECK(end == item.data + item.len, "cas holds '%s'", item.data);
        free(item.data);

        char text[24];
        int len = snprintf(text, sizeof(text), "%lld", v + 1);
        struct store_value val = {.kind = STORE_KIND_JSON, .data = text, .len = (size_t)len};
        struct store_set_opts opts = {.mode = STORE_SET_IF_VERSION, .version = item.meta.version};
        struct store_meta meta;
        rc = store_set(w->store, "cas", 3, &val, &opts, &meta);
        if (rc == STORE_OK) {
            CHECK(meta.version != item.meta.version, "cas: the version did not change");
            done++;
            w->sets++;
        } else {
            CHECK(rc == STORE_EVERSION, "set cas: %s", store_strerror(rc));
            w->ops++; /* a retry */
        }
    }
    return NULL;
}

static void test_compare_and_set(void **state)
{
    struct store *s = open_store(0, 1, 0);
    assert_non_null(s);
    *state = s;
    struct store_value zero = {.kind = STORE_KIND_JSON, .data = "0", .len = 1};
    assert_int_equal(store_set(s, "cas", 3, &zero, NULL, NULL), STORE_OK);

    struct worker w[THREADS];
    run_workers(s, w, cas_worker);
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(read_counter(s, "cas"), (int64_t)THREADS * cas_rounds());
    struct store_stats st;
    store_stats(s, &st);
    assert_int_equal(st.sets, 1 + (uint64_t)THREADS * cas_rounds());
}

/* ------------------------------------------------------------------------ */
/* (e) Flush while others write and delete: every entry is accounted for    */
/* ------------------------------------------------------------------------ */

static int flush_rounds(void)
{
    return 16000 * scale();
}

/*
 * Thread 0 flushes until the writers (threads 2 and up) are done; thread 1
 * deletes. Writers go on past their rounds until a flush removed entries, so
 * a flusher the scheduler left waiting still flushes while they write (for
 * up to PRECONDITION_WAIT_MS: past it the test fails rather than hangs).
 */
static void *flush_worker(void *arg)
{
    struct worker *w = arg;
    char key[16];
    pthread_barrier_wait(w->start);
    if (w->id == 0) {
        const struct timespec pause = {.tv_nsec = 100000};
        while (atomic_load(&writers_done) < THREADS - 2) {
            size_t flushed = store_flush(w->store);
            w->flushed += flushed;
            if (flushed > 0)
                atomic_fetch_add(&flushes_emptied, 1);
            nanosleep(&pause, NULL);
        }
        return NULL;
    }
    for (int i = 0; i < flush_rounds() ||
                    (w->id >= 2 && atomic_load(&flushes_emptied) == 0 && real_ms() < atomic_load(&wait_until_ms));
         i++) {
        snprintf(key, sizeof(key), "f%d", (int)(next_rand(w) % 256));
        if (w->id == 1) {
            w->deletes += store_delete(w->store, key, strlen(key), 0) == STORE_OK;
        } else {
            struct store_meta meta;
            int rc = write_value(w->store, key, ((uint64_t)w->id << 32) | (uint64_t)i, NULL, &meta);
            CHECK(rc == STORE_OK, "set %s: %s", key, store_strerror(rc));
            w->created += rc == STORE_OK && meta.created;
            if (i % 4 == 0)
                mix_get(w, key, 0);
        }
    }
    if (w->id >= 2)
        atomic_fetch_add(&writers_done, 1);
    return NULL;
}

static void test_flush_race(void **state)
{
    struct store *s = open_store(0, 2, 0);
    assert_non_null(s);
    *state = s;
    struct worker w[THREADS];
    run_workers(s, w, flush_worker);
    assert_int_equal(atomic_load(&failures), 0);

    uint64_t created = 0, deletes = 0, flushed = 0;
    for (int i = 0; i < THREADS; i++) {
        created += w[i].created;
        deletes += w[i].deletes;
        flushed += w[i].flushed;
    }
    size_t left = store_count(s);
    assert_true(flushed > 0);
    assert_int_equal(created, flushed + deletes + left);
    struct store_stats st;
    store_stats(s, &st);
    assert_int_equal(st.deletes, deletes);
    assert_int_equal(store_flush(s), left);
    assert_int_equal(store_count(s), 0);
}

/* ------------------------------------------------------------------------ */
/* (f) Lock-free gets never miss a key that is there the whole time         */
/* ------------------------------------------------------------------------ */

/*
 * Gets take no lock, so a get walking a bucket can meet a writer replacing,
 * deleting or rehashing entries around it. Half the threads read the STABLE
 * keys, present throughout, and must find each with its own value every
 * time; the other half insert fresh keys (so the table grows many times: one
 * shard starting at 16 buckets, rehashed under the readers' feet), replace
 * the churn keys and delete them.
 */
#define STABLE 256

static int stable_rounds(void)
{
    return 3000 * scale();
}

static void *stable_worker(void *arg)
{
    struct worker *w = arg;
    char key[32];
    struct store_item item;
    pthread_barrier_wait(w->start);
    for (int r = 0; r < stable_rounds(); r++) {
        if (w->id % 2 == 0) {
            int k = (int)(next_rand(w) % STABLE);
            snprintf(key, sizeof(key), "stable:%d", k);
            if (r % 8 == 0) { /* the prefetch hint, racing the writers' growth and deletes */
                const struct store_key hint[] = {{key, strlen(key)}, {"churn:1", 7}, {"absent", 6}};
                store_prefetch(w->store, hint, 3);
            }
            int rc = store_get(w->store, key, strlen(key), plain_alloc, NULL, &item);
            CHECK(rc == STORE_OK, "get of %s, present throughout, returned %d", key, rc);
            if (rc == STORE_OK) {
                CHECK(item.len == strlen(key) && memcmp(item.data, key, item.len) == 0, "%s read back wrong", key);
                free(item.data);
            }
            continue;
        }
        struct store_value v = {.kind = STORE_KIND_STRING, .data = key};
        snprintf(key, sizeof(key), "fresh:%d:%d", w->id, r);
        v.len = strlen(key);
        CHECK(store_set(w->store, key, strlen(key), &v, NULL, NULL) == STORE_OK, "set %s", key);
        snprintf(key, sizeof(key), "churn:%d", (int)(next_rand(w) % 64));
        v.len = strlen(key);
        store_set(w->store, key, strlen(key), &v, NULL, NULL);
        if (r % 3 == 0)
            store_delete(w->store, key, strlen(key), 0);
    }
    return NULL;
}

static void test_lock_free_reads(void **state)
{
    struct store_config cfg = {.single_shard = true};
    struct store *s = store_create(&cfg);
    assert_non_null(s);
    *state = s;
    char key[32];
    for (int k = 0; k < STABLE; k++) {
        snprintf(key, sizeof(key), "stable:%d", k);
        struct store_value v = {.kind = STORE_KIND_STRING, .data = key, .len = strlen(key)};
        assert_int_equal(store_set(s, key, strlen(key), &v, NULL, NULL), STORE_OK);
    }
    struct worker w[THREADS];
    run_workers(s, w, stable_worker);
    assert_int_equal(atomic_load(&failures), 0);
    /* The writers grew every table far past its first 16 buckets. */
    assert_true(store_count(s) > (size_t)STABLE + (THREADS / 2) * (size_t)stable_rounds() - 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_incr_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixed_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_bound_s3fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_bound_noeviction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_refused_write_is_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_free_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compare_and_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_race, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
