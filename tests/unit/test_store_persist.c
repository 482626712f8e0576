/*
 * Unit tests of what the store offers persistence (include/cachette/store.h,
 * "saving and loading"): the change hook, store_iterate, store_restore and
 * the version floor. src/persist/ builds the log on the hook and the
 * snapshot on the iterator, and loads through restore and the floor, so each
 * promise those make is held here against a real store.
 *
 * Every test owns its store's clock (expiry without sleeping) and records
 * each change the hook reports, copied, in order. The strongest check
 * replays that record into a mirror and compares it with the store: what a
 * log replay would rebuild is what the store holds.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cachette/store.h"

#define KIB 1024u

/* ------------------------------------------------------------------------ */
/* Fixture: a store with the test's clock and a recorder on its change hook  */
/* ------------------------------------------------------------------------ */

struct change_copy {
    enum store_change_op op;
    char *key; /* NULL for a flush */
    size_t key_len;
    enum store_kind kind;
    char *value;
    size_t value_len;
    char *content_type;
    size_t content_type_len;
    int64_t expires_at_ms;
    uint64_t version;
};

struct fixture {
    int64_t now;
    struct store *store;
    struct change_copy *changes;
    size_t n, cap;
};

static char *dup_bytes(const void *p, size_t n)
{
    if (p == NULL)
        return NULL;
    char *c = malloc(n + 1);
    assert_non_null(c);
    if (n != 0)
        memcpy(c, p, n);
    c[n] = '\0';
    return c;
}

/* The change hook: copies every field (its pointers last only for the call). */
static void record_change(void *ctx, const struct store_change *c)
{
    struct fixture *fx = ctx;
    if (fx->n == fx->cap) {
        fx->cap = fx->cap ? fx->cap * 2 : 256;
        fx->changes = realloc(fx->changes, fx->cap * sizeof(*fx->changes));
        assert_non_null(fx->changes);
    }
    fx->changes[fx->n++] = (struct change_copy){
        .op = c->op,
        .key = dup_bytes(c->key, c->key_len),
        .key_len = c->key_len,
        .kind = c->kind,
        .value = c->op == STORE_CHANGE_SET ? dup_bytes(c->value != NULL ? c->value : "", c->value_len) : NULL,
        .value_len = c->value_len,
        .content_type = dup_bytes(c->content_type, c->content_type_len),
        .content_type_len = c->content_type_len,
        .expires_at_ms = c->expires_at_ms,
        .version = c->version,
    };
}

static void forget_changes(struct fixture *fx)
{
    for (size_t i = 0; i < fx->n; i++) {
        free(fx->changes[i].key);
        free(fx->changes[i].value);
        free(fx->changes[i].content_type);
    }
    fx->n = 0;
}

static int64_t test_clock(void *ctx)
{
    return ((struct fixture *)ctx)->now;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    fx->now = 1000000;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    store_destroy(fx->store);
    forget_changes(fx);
    free(fx->changes);
    free(fx);
    return 0;
}

/* (Re)opens the fixture's store, hooked and on the test clock. */
static struct store *open_store(struct fixture *fx, size_t max_memory, unsigned shard_bits, bool single_shard,
                                enum store_eviction eviction)
{
    store_destroy(fx->store);
    forget_changes(fx);
    struct store_config cfg = {.max_memory = max_memory,
                               .shard_bits = shard_bits,
                               .single_shard = single_shard,
                               .eviction = eviction,
                               .clock = test_clock,
                               .clock_ctx = fx,
                               .on_change = record_change,
                               .change_ctx = fx};
    fx->store = store_create(&cfg);
    assert_non_null(fx->store);
    return fx->store;
}

static int set_value(struct store *s, const char *key, enum store_kind kind, const void *data, size_t len,
                     const char *ct, int64_t ttl_ms, struct store_meta *meta)
{
    struct store_value v = {
        .kind = kind, .data = data, .len = len, .content_type = ct, .content_type_len = ct != NULL ? strlen(ct) : 0};
    struct store_set_opts o = {.ttl_ms = ttl_ms};
    return store_set(s, key, strlen(key), &v, &o, meta);
}

static int set_text(struct store *s, const char *key, const char *text, int64_t ttl_ms, struct store_meta *meta)
{
    return set_value(s, key, STORE_KIND_STRING, text, strlen(text), NULL, ttl_ms, meta);
}

static uint64_t version_of(struct store *s, const char *key)
{
    struct store_meta meta;
    assert_int_equal(store_peek(s, key, strlen(key), &meta), STORE_OK);
    return meta.version;
}

/* The last change recorded is a SET of key with this value, kind, content type, expiry and version. */
static void assert_set_change(const struct change_copy *c, const char *key, enum store_kind kind, const void *value,
                              size_t value_len, const char *ct, int64_t expires_at_ms, uint64_t version)
{
    assert_int_equal(c->op, STORE_CHANGE_SET);
    assert_int_equal(c->key_len, strlen(key));
    assert_memory_equal(c->key, key, c->key_len);
    assert_int_equal(c->kind, kind);
    assert_int_equal(c->value_len, value_len);
    assert_memory_equal(c->value, value, value_len);
    if (ct != NULL) {
        assert_int_equal(c->content_type_len, strlen(ct));
        assert_memory_equal(c->content_type, ct, c->content_type_len);
    } else {
        assert_int_equal(c->content_type_len, 0);
    }
    assert_int_equal(c->expires_at_ms, expires_at_ms);
    assert_int_equal(c->version, version);
}

/* ------------------------------------------------------------------------ */
/* The change hook                                                           */
/* ------------------------------------------------------------------------ */

/* Every successful write reports one SET with what the key now holds; failed writes report nothing. */
static void test_hook_reports_sets(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_store(fx, 0, 2, false, STORE_EVICT_SIEVE);
    struct store_meta meta;

    assert_int_equal(set_value(s, "j", STORE_KIND_JSON, "[1,2]", 5, NULL, 0, &meta), STORE_OK);
    assert_int_equal(fx->n, 1);
    assert_set_change(&fx->changes[0], "j", STORE_KIND_JSON, "[1,2]", 5, NULL, 0, meta.version);
    assert_null(fx->changes[0].content_type); /* other kinds have none */

    assert_int_equal(set_value(s, "b", STORE_KIND_BYTES, "\x89PNG", 4, "image/png", 5000, &meta), STORE_OK);
    assert_int_equal(fx->n, 2);
    assert_set_change(&fx->changes[1], "b", STORE_KIND_BYTES, "\x89PNG", 4, "image/png", fx->now + 5000, meta.version);

    assert_int_equal(set_value(s, "s", STORE_KIND_STRING, "a\0b", 3, NULL, 0, &meta), STORE_OK);
    assert_set_change(&fx->changes[2], "s", STORE_KIND_STRING, "a\0b", 3, NULL, 0, meta.version);
    uint64_t s_version = meta.version;

    /* Refused writes: the key is unchanged, and the hook hears nothing. */
    struct store_value v = {.kind = STORE_KIND_STRING, .data = "x", .len = 1};
    struct store_set_opts if_absent = {.mode = STORE_SET_IF_ABSENT};
    struct store_set_opts if_version = {.mode = STORE_SET_IF_VERSION, .version = s_version + 1};
    assert_int_equal(store_set(s, "s", 1, &v, &if_absent, NULL), STORE_EEXISTS);
    assert_int_equal(store_set(s, "s", 1, &v, &if_version, NULL), STORE_EVERSION);
    assert_int_equal(store_set(s, "s", 1, &v, &(struct store_set_opts){.ttl_ms = -1}, NULL), STORE_EINVAL);
    assert_int_equal(fx->n, 3);

    /* An increment reports the sum as the new JSON value. */
    int64_t sum;
    assert_int_equal(store_incr(s, "n", 1, 5, NULL, &sum, &meta), STORE_OK);
    assert_int_equal(store_incr(s, "n", 1, -7, NULL, &sum, &meta), STORE_OK);
    assert_int_equal(fx->n, 5);
    assert_set_change(&fx->changes[4], "n", STORE_KIND_JSON, "-2", 2, NULL, 0, meta.version);

    /* A TTL change reports the entry whole, with its version unchanged and the new deadline. */
    uint64_t j_version = version_of(s, "j");
    assert_int_equal(store_set_ttl(s, "j", 1, 7000, 0, &meta), STORE_OK);
    assert_int_equal(fx->n, 6);
    assert_set_change(&fx->changes[5], "j", STORE_KIND_JSON, "[1,2]", 5, NULL, fx->now + 7000, j_version);
    assert_int_equal(store_set_ttl(s, "j", 1, 0, 0, &meta), STORE_OK);
    assert_set_change(&fx->changes[6], "j", STORE_KIND_JSON, "[1,2]", 5, NULL, 0, j_version);
    /* Removing an expiry that is not there changes nothing, and reports nothing. */
    assert_int_equal(store_set_ttl(s, "s", 1, 0, 0, &meta), STORE_OK);
    assert_int_equal(fx->n, 7);
}

/* DELETE is reported for the removal of a live entry, and only then. */
static void test_hook_reports_live_deletes_only(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_store(fx, 0, 2, false, STORE_EVICT_SIEVE);
    assert_int_equal(set_text(s, "a", "1", 0, NULL), STORE_OK);
    assert_int_equal(set_text(s, "b", "2", 0, NULL), STORE_OK);
    assert_int_equal(set_text(s, "c", "3", 10, NULL), STORE_OK);
    forget_changes(fx);

    assert_int_equal(store_delete(s, "a", 1, 0), STORE_OK);
    assert_int_equal(fx->n, 1);
    assert_int_equal(fx->changes[0].op, STORE_CHANGE_DELETE);
    assert_int_equal(fx->changes[0].key_len, 1);
    assert_memory_equal(fx->changes[0].key, "a", 1);

    assert_int_equal(store_delete(s, "a", 1, 0), STORE_ENOTFOUND);     /* gone already */
    assert_int_equal(store_delete(s, "never", 5, 0), STORE_ENOTFOUND); /* never there */
    uint64_t b_version = version_of(s, "b");
    assert_int_equal(store_delete(s, "b", 1, b_version + 1), STORE_EVERSION); /* not that version */
    fx->now += 10;
    assert_int_equal(store_delete(s, "c", 1, 0), STORE_ENOTFOUND); /* expired: reclaimed, not deleted */
    assert_int_equal(fx->n, 1);

    assert_int_equal(store_delete(s, "b", 1, b_version), STORE_OK);
    assert_int_equal(fx->n, 2);
    assert_int_equal(fx->changes[1].op, STORE_CHANGE_DELETE);
    assert_memory_equal(fx->changes[1].key, "b", 1);
}

/* Expiry is not a change: the SET carried the deadline. Reclaiming expired entries reports nothing. */
static void test_hook_not_told_of_expiry(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_store(fx, 0, 1, false, STORE_EVICT_SIEVE);
    char key[16];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "e%d", i);
        assert_int_equal(set_text(s, key, "x", 10, NULL), STORE_OK);
    }
    forget_changes(fx);
    fx->now += 10;
    assert_int_equal(store_peek(s, "e1", 2, NULL), STORE_ENOTFOUND);
    size_t reclaimed = 0;
    for (int i = 0; i < 100 && store_count(s) > 0; i++)
        reclaimed += store_expire_step(s, 1000);
    assert_int_equal(reclaimed, 50);
    assert_int_equal(fx->n, 0);
}

/* Eviction and replay: one key's state after replaying every change, as a log load would. */
struct mirror {
    bool present;
    uint64_t version;
    size_t value_len;
};

/*
 * Fills a small store far past max_memory. The hook reports an EVICT for
 * every entry the bound removed (as many as stats.evicted), never a DELETE,
 * and replaying the changes in order gives exactly what the store holds:
 * the same keys, with the same versions.
 */
static void check_evictions(struct fixture *fx, enum store_eviction policy)
{
    enum { KEYS = 400, VALUE = 1000 };
    struct store *s = open_store(fx, 64 * KIB, 0, true, policy);
    static char value[VALUE];
    char key[16];
    int stored = 0;
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof(key), "k%04d", i);
        memset(value, 'a' + i % 26, sizeof(value));
        int rc = set_value(s, key, STORE_KIND_STRING, value, VALUE - (size_t)(i % 10), NULL, 0, NULL);
        assert_true(rc == STORE_OK || (policy == STORE_EVICT_NONE && rc == STORE_EFULL));
        stored += rc == STORE_OK;
    }
    struct store_stats st;
    store_stats(s, &st);

    static struct mirror m[KEYS];
    memset(m, 0, sizeof(m));
    size_t sets = 0, evicts = 0;
    for (size_t c = 0; c < fx->n; c++) {
        const struct change_copy *ch = &fx->changes[c];
        assert_true(ch->op == STORE_CHANGE_SET || ch->op == STORE_CHANGE_EVICT); /* no DELETE, no FLUSH */
        int i;
        assert_int_equal(sscanf(ch->key, "k%d", &i), 1);
        assert_true(i >= 0 && i < KEYS);
        if (ch->op == STORE_CHANGE_SET) {
            m[i] = (struct mirror){.present = true, .version = ch->version, .value_len = ch->value_len};
            sets++;
        } else {
            assert_true(m[i].present); /* only what is there can be evicted */
            assert_int_equal(ch->version, m[i].version);
            m[i].present = false;
            evicts++;
        }
    }
    assert_int_equal(sets, (size_t)stored);
    assert_int_equal(evicts, st.evicted);
    if (policy == STORE_EVICT_NONE)
        assert_int_equal(evicts, 0);
    else
        assert_true(evicts > KEYS / 2);
    size_t live = 0;
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof(key), "k%04d", i);
        struct store_meta meta;
        int rc = store_peek(s, key, strlen(key), &meta);
        assert_int_equal(rc == STORE_OK, m[i].present);
        if (rc == STORE_OK) {
            assert_int_equal(meta.version, m[i].version);
            live++;
        }
    }
    assert_int_equal(live, st.entries);
}

static void test_hook_reports_evictions_sieve(void **state)
{
    check_evictions(*state, STORE_EVICT_SIEVE);
}

static void test_hook_reports_evictions_s3fifo(void **state)
{
    check_evictions(*state, STORE_EVICT_S3FIFO);
}

static void test_hook_reports_no_evictions_when_evict_none(void **state)
{
    check_evictions(*state, STORE_EVICT_NONE);
}

/*
 * A flush reports one FLUSH per live entry it removes, with its key (so the
 * log replays it as a delete); expired entries go unreported, as they would
 * on replay; an empty store's flush reports nothing.
 */
static void test_hook_reports_each_entry_a_flush_removes(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_store(fx, 0, 3, false, STORE_EVICT_SIEVE);
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "f%d", i);
        assert_int_equal(set_text(s, key, "v", i % 2 ? 10 : 0, NULL), STORE_OK);
    }
    fx->now += 10; /* half of them expired, not yet reclaimed */
    forget_changes(fx);
    assert_int_equal(store_flush(s), 150);
    assert_int_equal(fx->n, 150);
    bool seen[300] = {false};
    for (size_t i = 0; i < fx->n; i++) {
        assert_int_equal(fx->changes[i].op, STORE_CHANGE_FLUSH);
        int k = -1;
        assert_int_equal(sscanf(fx->changes[i].key, "f%d", &k), 1);
        assert_true(k >= 0 && k < 300 && k % 2 == 0); /* only the live ones */
        assert_false(seen[k]);
        seen[k] = true;
    }
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(fx->n, 150);
    /* A write after the flush is reported after it. */
    assert_int_equal(set_text(s, "after", "1", 0, NULL), STORE_OK);
    assert_int_equal(fx->n, 151);
    assert_int_equal(fx->changes[150].op, STORE_CHANGE_SET);
}

/* ------------------------------------------------------------------------ */
/* store_iterate                                                             */
/* ------------------------------------------------------------------------ */

enum { LIVE = 2000, DEAD = 200 };

struct visits {
    int hits[LIVE + DEAD];
    uint64_t version[LIVE + DEAD];
    size_t calls;
    int64_t now;
};

static void count_visit(void *ctx, const struct store_change *e)
{
    struct visits *v = ctx;
    v->calls++;
    assert_int_equal(e->op, STORE_CHANGE_SET);
    char key[16];
    assert_true(e->key_len < sizeof(key));
    memcpy(key, e->key, e->key_len);
    key[e->key_len] = '\0';
    int i;
    assert_int_equal(sscanf(key, "it%d", &i), 1);
    assert_true(i >= 0 && i < LIVE + DEAD);
    v->hits[i]++;
    /* The entry as it was written (see put_iterated). */
    char want[32];
    snprintf(want, sizeof(want), "value of %d", i);
    assert_int_equal(e->value_len, strlen(want));
    assert_memory_equal(e->value, want, e->value_len);
    assert_int_equal(e->kind, (enum store_kind)(i % 3));
    if (e->kind == STORE_KIND_BYTES) {
        assert_int_equal(e->content_type_len, 8);
        assert_memory_equal(e->content_type, "text/csv", 8);
    }
    assert_int_equal(e->version, v->version[i]);
    assert_true(e->expires_at_ms == 0 || e->expires_at_ms > v->now);
}

static void put_iterated(struct store *s, int i, int64_t ttl_ms, struct visits *v)
{
    char key[16], value[32];
    snprintf(key, sizeof(key), "it%d", i);
    snprintf(value, sizeof(value), "value of %d", i);
    struct store_meta meta;
    assert_int_equal(set_value(s, key, (enum store_kind)(i % 3), value, strlen(value),
                               i % 3 == STORE_KIND_BYTES ? "text/csv" : NULL, ttl_ms, &meta),
                     STORE_OK);
    v->version[i] = meta.version;
}

/* With nothing changing, a walk at any batch size visits every live entry once and no expired one. */
static void test_iterate_visits_every_live_entry_once(void **state)
{
    struct fixture *fx = *state;
    static const unsigned shard_bits[] = {1, 3, 0};
    static const size_t limits[] = {1, 3, 10, 128, 100000};
    static struct visits v;
    for (size_t b = 0; b < sizeof(shard_bits) / sizeof(shard_bits[0]); b++) {
        struct store *s = open_store(fx, 0, shard_bits[b], false, STORE_EVICT_SIEVE);
        memset(&v, 0, sizeof(v));
        for (int i = 0; i < LIVE; i++)
            put_iterated(s, i, i % 5 == 0 ? 60000 : 0, &v);
        for (int i = LIVE; i < LIVE + DEAD; i++)
            put_iterated(s, i, 50, &v);
        fx->now += 50;
        v.now = fx->now;
        for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
            memset(v.hits, 0, sizeof(v.hits));
            v.calls = 0;
            uint64_t cursor = 0;
            size_t visited = 0, walks = 0;
            do {
                visited += store_iterate(s, cursor, limits[l], count_visit, &v, &cursor);
                assert_true(++walks <= LIVE + 1000); /* it ends */
            } while (cursor != 0);
            assert_int_equal(visited, LIVE);
            assert_int_equal(v.calls, LIVE);
            for (int i = 0; i < LIVE; i++)
                if (v.hits[i] != 1)
                    fail_msg("shard bits %u, limit %zu: entry %d visited %d times", shard_bits[b], limits[l], i,
                             v.hits[i]);
            for (int i = LIVE; i < LIVE + DEAD; i++)
                assert_int_equal(v.hits[i], 0);
        }
        /* Iterating changes nothing the hook would report. */
        forget_changes(fx);
        uint64_t cursor = 0;
        do
            store_iterate(s, cursor, 64, count_visit, &v, &cursor);
        while (cursor != 0);
        assert_int_equal(fx->n, 0);
    }
    /* An empty store (a fresh one: TSan cannot follow a flush holding all 256 shard locks): nothing, done at once. */
    struct store *s = open_store(fx, 0, 0, false, STORE_EVICT_SIEVE);
    uint64_t cursor = 1;
    v.calls = 0;
    assert_int_equal(store_iterate(s, 0, 10, count_visit, &v, &cursor), 0);
    assert_int_equal(cursor, 0);
    assert_int_equal(v.calls, 0);
}

/* ------------------------------------------------------------------------ */
/* store_restore and versions                                                */
/* ------------------------------------------------------------------------ */

/* A restored entry keeps its version; the next write of the key gets a higher one. */
static void test_restore_keeps_version(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_store(fx, 0, 2, false, STORE_EVICT_SIEVE);
    uint64_t high = store_version_floor(s) + 1000000;
    struct store_value v = {
        .kind = STORE_KIND_BYTES, .data = "raw", .len = 3, .content_type = "a/b", .content_type_len = 3};
    assert_int_equal(store_restore(s, "r", 1, &v, 0, high), STORE_OK);
    assert_int_equal(version_of(s, "r"), high);
    assert_int_equal(fx->n, 1); /* reported like any write: a log replays it */
    assert_set_change(&fx->changes[0], "r", STORE_KIND_BYTES, "raw", 3, "a/b", 0, high);
    assert_true(store_version_floor(s) > high);

    struct store_meta meta;
    assert_int_equal(set_text(s, "r", "new", 0, &meta), STORE_OK);
    assert_true(meta.version > high);
    assert_true(store_version_floor(s) > meta.version);

    /* Below the counter, a restore still keeps exactly its version; writes after it go past it. */
    assert_int_equal(store_restore(s, "low", 3, &v, 0, 5), STORE_OK);
    assert_int_equal(version_of(s, "low"), 5);
    assert_int_equal(set_text(s, "low", "x", 0, &meta), STORE_OK);
    assert_true(meta.version > 5);

    /* A restore replaces what is there, and its TTL counts from now. */
    struct store_value t = {.kind = STORE_KIND_JSON, .data = "7", .len = 1};
    assert_int_equal(store_restore(s, "low", 3, &t, 3000, 77), STORE_OK);
    assert_int_equal(store_peek(s, "low", 3, &meta), STORE_OK);
    assert_int_equal(meta.version, 77);
    assert_int_equal(meta.ttl_ms, 3000);
    assert_set_change(&fx->changes[fx->n - 1], "low", STORE_KIND_JSON, "7", 1, NULL, fx->now + 3000, 77);
    fx->now += 3000;
    assert_int_equal(store_peek(s, "low", 3, NULL), STORE_ENOTFOUND);
}

/* Version 0 is no version: STORE_EINVAL, the key untouched and nothing reported. */
static void test_restore_version_zero_is_einval(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_store(fx, 0, 2, false, STORE_EVICT_SIEVE);
    struct store_value v = {.kind = STORE_KIND_STRING, .data = "v", .len = 1};
    assert_int_equal(store_restore(s, "k", 1, &v, 0, 0), STORE_EINVAL);
    assert_int_equal(store_peek(s, "k", 1, NULL), STORE_ENOTFOUND);
    assert_int_equal(set_text(s, "k", "old", 0, NULL), STORE_OK);
    uint64_t version = version_of(s, "k");
    forget_changes(fx);
    assert_int_equal(store_restore(s, "k", 1, &v, 0, 0), STORE_EINVAL);
    assert_int_equal(version_of(s, "k"), version);
    assert_int_equal(fx->n, 0);
    assert_int_equal(store_restore(s, "k", 1, &v, -1, 9), STORE_EINVAL); /* and a negative TTL, as store_set */
}

/*
 * The floor is above every version given; after store_raise_versions every
 * new version, in every shard, is at least the floor raised to; raising to
 * a lower floor lowers nothing.
 */
static void test_version_floor_and_raise(void **state)
{
    struct fixture *fx = *state;
    struct store *s = open_store(fx, 0, 0, false, STORE_EVICT_SIEVE); /* 256 shards */
    enum { KEYS = 1000 };
    static uint64_t versions[KEYS];
    char key[16];
    uint64_t most = 0;
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof(key), "v%d", i);
        struct store_meta meta;
        assert_int_equal(set_text(s, key, "x", 0, &meta), STORE_OK);
        versions[i] = meta.version;
        most = meta.version > most ? meta.version : most;
    }
    /* Deleted keys' versions count too. */
    assert_int_equal(store_delete(s, "v0", 2, 0), STORE_OK);
    uint64_t floor = store_version_floor(s);
    assert_true(floor > most);

    uint64_t raised = floor + ((uint64_t)1 << 40);
    store_raise_versions(s, raised);
    assert_true(store_version_floor(s) >= raised);
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof(key), i % 2 ? "v%d" : "new%d", i);
        struct store_meta meta;
        assert_int_equal(set_text(s, key, "y", 0, &meta), STORE_OK);
        if (meta.version < raised)
            fail_msg("%s: version %" PRIu64 " below the floor %" PRIu64, key, meta.version, raised);
        versions[i] = meta.version;
    }
    int64_t sum;
    struct store_meta meta;
    assert_int_equal(store_incr(s, "counter", 7, 1, NULL, &sum, &meta), STORE_OK);
    assert_true(meta.version >= raised);

    /* A lower floor lowers nothing: versions keep rising past those given. */
    uint64_t before = store_version_floor(s);
    store_raise_versions(s, floor);
    assert_int_equal(store_version_floor(s), before);
    for (int i = 1; i < KEYS; i += 2) {
        snprintf(key, sizeof(key), "v%d", i);
        assert_int_equal(set_text(s, key, "z", 0, &meta), STORE_OK);
        assert_true(meta.version > versions[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_hook_reports_sets),
        T(test_hook_reports_live_deletes_only),
        T(test_hook_not_told_of_expiry),
        T(test_hook_reports_evictions_sieve),
        T(test_hook_reports_evictions_s3fifo),
        T(test_hook_reports_no_evictions_when_evict_none),
        T(test_hook_reports_each_entry_a_flush_removes),
        T(test_iterate_visits_every_live_entry_once),
        T(test_restore_keeps_version),
        T(test_restore_version_zero_is_einval),
        T(test_version_floor_and_raise),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
