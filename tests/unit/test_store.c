/*
 * Unit tests of the embeddable store (include/cachette/store.h, src/store/).
 *
 * Each test opens its own store through the fixture, with a clock the test
 * moves by hand, so expiry is exercised without sleeping and every outcome is
 * deterministic. Where a result depends on the store's random hash key (which
 * shard or bucket a key lands in), the test either checks a property that
 * holds for every key placement or uses enough keys that the property it
 * checks is forced by the algorithm, not by luck.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/internal.h" /* white-box: retired bucket arrays are freed; the budget taken up by hand */

#include "cachette/store.h"
#include "store/hash.h"

#define KIB 1024u

/* ------------------------------------------------------------------------ */
/* Fixture and helpers                                                       */
/* ------------------------------------------------------------------------ */

struct fixture {
    int64_t now; /* the injected clock, in ms */
    struct store *store;
};

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
    free(fx);
    return 0;
}

/* Opens the fixture's store with the test clock and these settings. */
static struct store *open_store_as(void **state, size_t max_memory, unsigned shard_bits, bool single_shard,
                                   enum store_eviction eviction)
{
    struct fixture *fx = *state;
    struct store_config cfg = {
        .max_memory = max_memory,
        .shard_bits = shard_bits,
        .single_shard = single_shard,
        .eviction = eviction,
        .clock = test_clock,
        .clock_ctx = fx,
    };
    fx->store = store_create(&cfg);
    assert_non_null(fx->store);
    return fx->store;
}

static struct store *open_store(void **state, size_t max_memory, unsigned shard_bits, enum store_eviction eviction)
{
    return open_store_as(state, max_memory, shard_bits, false, eviction);
}

/* One shard, so every key shares one eviction queue. */
static struct store *open_single_shard(void **state, size_t max_memory, enum store_eviction eviction)
{
    return open_store_as(state, max_memory, 0, true, eviction);
}

static void advance(void **state, int64_t ms)
{
    ((struct fixture *)*state)->now += ms;
}

static void *test_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void *failing_alloc(void *ctx, size_t size)
{
    (void)ctx;
    (void)size;
    return NULL;
}

static int set_kind(struct store *s, const char *key, enum store_kind kind, const void *data, size_t len,
                    int64_t ttl_ms, enum store_set_mode mode, uint64_t version, struct store_meta *meta)
{
    struct store_value v = {.kind = kind, .data = data, .len = len};
    struct store_set_opts o = {.ttl_ms = ttl_ms, .mode = mode, .version = version};
    return store_set(s, key, strlen(key), &v, &o, meta);
}

/* Sets a JSON value (text) with a ttl and STORE_SET_ALWAYS. */
static int set_json(struct store *s, const char *key, const char *json, int64_t ttl_ms, struct store_meta *meta)
{
    return set_kind(s, key, STORE_KIND_JSON, json, strlen(json), ttl_ms, STORE_SET_ALWAYS, 0, meta);
}

/* Gets key into *item (caller frees item->data) and returns the store's code. */
static int get(struct store *s, const char *key, struct store_item *item)
{
    memset(item, 0xa5, sizeof(*item));
    return store_get(s, key, strlen(key), test_alloc, NULL, item);
}

/* Asserts key holds exactly this JSON text. */
static void assert_json(struct store *s, const char *key, const char *json)
{
    struct store_item item;
    assert_int_equal(get(s, key, &item), STORE_OK);
    assert_int_equal(item.kind, STORE_KIND_JSON);
    assert_int_equal(item.len, strlen(json));
    assert_memory_equal(item.data, json, item.len);
    assert_int_equal(item.data[item.len], '\0');
    free(item.data);
}

static void assert_absent(struct store *s, const char *key)
{
    struct store_item item;
    assert_int_equal(get(s, key, &item), STORE_ENOTFOUND);
}

static uint64_t version_of(struct store *s, const char *key)
{
    struct store_item item;
    assert_int_equal(get(s, key, &item), STORE_OK);
    free(item.data);
    return item.meta.version;
}

static struct store_stats stats_of(struct store *s)
{
    struct store_stats st;
    store_stats(s, &st);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Hashing and creation                                                      */
/* ------------------------------------------------------------------------ */

/* SipHash-2-4 against the vectors of the paper (Aumasson and Bernstein, appendix A). */
static void test_siphash_vectors(void **state)
{
    (void)state;
    const uint64_t key[2] = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
    unsigned char msg[64];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (unsigned char)i;

    assert_int_equal(siphash(key, msg, 15, 2, 4), 0xa129ca6149be45e5ULL);
    assert_int_equal(siphash(key, msg, 0, 2, 4), 0x726fdb47dd0e0e31ULL);
    assert_int_equal(siphash(key, "", 0, 2, 4), 0x726fdb47dd0e0e31ULL);
    /* A whole 8-byte block and one byte past it (reference implementation's vectors 8 and 9). */
    assert_int_equal(siphash(key, msg, 8, 2, 4), 0x93f5f5799a932462ULL);
    assert_int_equal(siphash(key, msg, 9, 2, 4), 0x9e0082df0ba9e4b0ULL);
    /* The round counts matter, and the last byte of the message does too. */
    assert_true(siphash(key, msg, 15, 1, 3) != 0xa129ca6149be45e5ULL);
    assert_true(siphash(key, msg, 14, 2, 4) != siphash(key, msg, 15, 2, 4));
}

static void test_create_config(void **state)
{
    (void)state;
    struct store_config cfg = {.shard_bits = 17};
    assert_null(store_create(&cfg));
    cfg.shard_bits = 16;
    struct store *s = store_create(&cfg);
    assert_non_null(s);
    store_destroy(s);
    cfg.shard_bits = 2;
    cfg.eviction = (enum store_eviction)7;
    assert_null(store_create(&cfg));

    s = store_create(NULL); /* the defaults: unbounded, monotonic clock */
    assert_non_null(s);
    assert_int_equal(set_json(s, "k", "1", 0, NULL), STORE_OK);
    assert_json(s, "k", "1");
    assert_true(store_now_ms(s) > 0);
    struct store_stats st = stats_of(s);
    assert_int_equal(st.max_memory, 0);
    assert_int_equal(st.entries, 1);
    store_destroy(s);
    store_destroy(NULL);
}

static void test_strerror(void **state)
{
    (void)state;
    for (int e = 0; e >= -8; e--) {
        assert_non_null(store_strerror(e));
        assert_true(strlen(store_strerror(e)) > 0);
    }
    assert_string_equal(store_strerror(STORE_ENOTFOUND), "key not found");
    assert_non_null(store_strerror(-1000));
    assert_non_null(store_strerror(42));
}

/* ------------------------------------------------------------------------ */
/* Set and get                                                               */
/* ------------------------------------------------------------------------ */

static void test_json_round_trip(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    struct store_meta meta = {.version = 0, .ttl_ms = 0, .created = false};
    const char *json = "{\"a\":[1,2,{\"b\":null}]}";

    assert_int_equal(set_json(s, "doc", json, 0, &meta), STORE_OK);
    assert_true(meta.created);
    assert_true(meta.version != 0);
    assert_int_equal(meta.ttl_ms, -1);

    struct store_item item;
    assert_int_equal(get(s, "doc", &item), STORE_OK);
    assert_int_equal(item.kind, STORE_KIND_JSON);
    assert_int_equal(item.len, strlen(json));
    assert_memory_equal(item.data, json, item.len);
    assert_int_equal(item.data[item.len], '\0');
    assert_null(item.content_type);
    assert_int_equal(item.content_type_len, 0);
    assert_int_equal(item.meta.version, meta.version);
    assert_int_equal(item.meta.ttl_ms, -1);
    assert_false(item.meta.created);
    free(item.data);

    /* Keys are byte strings: a prefix or an extension of a key is another key. */
    assert_absent(s, "do");
    assert_absent(s, "docs");
    assert_int_equal(store_count(s), 1);
}

static void test_string_with_nul(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    static const char text[] = "a\0b\0\0c\xc3\xa9"; /* 9 bytes, three NULs, a UTF-8 é */
    const size_t len = sizeof(text) - 1;

    assert_int_equal(set_kind(s, "str", STORE_KIND_STRING, text, len, 0, STORE_SET_ALWAYS, 0, NULL), STORE_OK);
    struct store_item item;
    assert_int_equal(get(s, "str", &item), STORE_OK);
    assert_int_equal(item.kind, STORE_KIND_STRING);
    assert_int_equal(item.len, len);
    assert_memory_equal(item.data, text, len);
    assert_int_equal(item.data[len], '\0');
    assert_null(item.content_type);
    free(item.data);

    /* Keys may hold NUL bytes too. */
    struct store_value v = {.kind = STORE_KIND_STRING, .data = "x", .len = 1};
    assert_int_equal(store_set(s, "k\0a", 3, &v, NULL, NULL), STORE_OK);
    assert_int_equal(store_get(s, "k\0b", 3, test_alloc, NULL, &item), STORE_ENOTFOUND);
    assert_int_equal(store_get(s, "k", 1, test_alloc, NULL, &item), STORE_ENOTFOUND);
    assert_int_equal(store_get(s, "k\0a", 3, test_alloc, NULL, &item), STORE_OK);
    free(item.data);
}

static void test_bytes_with_content_type(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    unsigned char blob[300];
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (unsigned char)(i * 7);
    const char *ct = "image/png";
    struct store_value v = {
        .kind = STORE_KIND_BYTES,
        .data = blob,
        .len = sizeof(blob),
        .content_type = ct,
        .content_type_len = strlen(ct),
    };
    assert_int_equal(store_set(s, "img", 3, &v, NULL, NULL), STORE_OK);

    struct store_item item;
    assert_int_equal(get(s, "img", &item), STORE_OK);
    assert_int_equal(item.kind, STORE_KIND_BYTES);
    assert_int_equal(item.len, sizeof(blob));
    assert_memory_equal(item.data, blob, sizeof(blob));
    assert_int_equal(item.data[item.len], '\0');
    assert_non_null(item.content_type);
    assert_int_equal(item.content_type_len, strlen(ct));
    assert_string_equal(item.content_type, ct);
    free(item.data);

    /* The longest content type fits, one byte more does not. */
    char long_ct[STORE_MAX_CONTENT_TYPE_LEN + 2];
    memset(long_ct, 't', sizeof(long_ct));
    v.content_type = long_ct;
    v.content_type_len = STORE_MAX_CONTENT_TYPE_LEN + 1;
    assert_int_equal(store_set(s, "img", 3, &v, NULL, NULL), STORE_EINVAL);
    v.content_type_len = STORE_MAX_CONTENT_TYPE_LEN;
    assert_int_equal(store_set(s, "img", 3, &v, NULL, NULL), STORE_OK);
    assert_int_equal(get(s, "img", &item), STORE_OK);
    assert_int_equal(item.content_type_len, STORE_MAX_CONTENT_TYPE_LEN);
    assert_memory_equal(item.content_type, long_ct, STORE_MAX_CONTENT_TYPE_LEN);
    assert_int_equal(item.content_type[STORE_MAX_CONTENT_TYPE_LEN], '\0');
    assert_memory_equal(item.data, blob, sizeof(blob));
    free(item.data);

    /* No content type at all: an empty one comes back. */
    v.content_type = NULL;
    v.content_type_len = 0;
    assert_int_equal(store_set(s, "raw", 3, &v, NULL, NULL), STORE_OK);
    assert_int_equal(get(s, "raw", &item), STORE_OK);
    assert_int_equal(item.kind, STORE_KIND_BYTES);
    assert_int_equal(item.content_type_len, 0);
    assert_string_equal(item.content_type, "");
    assert_memory_equal(item.data, blob, sizeof(blob));
    free(item.data);

    /* A content type given with another kind is ignored. */
    v.kind = STORE_KIND_STRING;
    v.content_type = ct;
    v.content_type_len = strlen(ct);
    assert_int_equal(store_set(s, "img", 3, &v, NULL, NULL), STORE_OK);
    assert_int_equal(get(s, "img", &item), STORE_OK);
    assert_int_equal(item.kind, STORE_KIND_STRING);
    assert_null(item.content_type);
    assert_memory_equal(item.data, blob, sizeof(blob));
    free(item.data);
}

/*
 * An entry larger than a slab slot keeps its header in the slab and the rest
 * in malloc's heap: key, content type, expiry and value all come back, and
 * its bytes are counted and returned like any other entry's.
 */
static void test_large_entry_round_trip(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    enum { LARGE = 100 * 1024 };
    static unsigned char blob[LARGE];
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (unsigned char)(i * 13 + 1);
    const char *ct = "application/x-large";
    struct store_value v = {
        .kind = STORE_KIND_BYTES, .data = blob, .len = LARGE, .content_type = ct, .content_type_len = strlen(ct)};
    struct store_set_opts opts = {.ttl_ms = 5000};
    size_t empty = stats_of(s).bytes_used;
    struct store_meta meta;
    assert_int_equal(store_set(s, "big", 3, &v, &opts, &meta), STORE_OK);
    assert_true(stats_of(s).bytes_used - empty >= LARGE);

    struct store_item item;
    assert_int_equal(get(s, "big", &item), STORE_OK);
    assert_int_equal(item.kind, STORE_KIND_BYTES);
    assert_int_equal(item.len, LARGE);
    assert_memory_equal(item.data, blob, LARGE);
    assert_string_equal(item.content_type, ct);
    assert_int_equal(item.meta.version, meta.version);
    assert_int_equal(item.meta.ttl_ms, 5000);
    free(item.data);

    /* Replaced by a small value and back: each write's bytes replace the last's. */
    assert_int_equal(set_json(s, "big", "1", 0, NULL), STORE_OK);
    size_t small = stats_of(s).bytes_used;
    assert_true(small - empty < 1024);
    int64_t counter = 0;
    assert_int_equal(store_incr(s, "big", 3, 41, NULL, &counter, NULL), STORE_OK);
    assert_int_equal(counter, 42);
    assert_int_equal(store_set(s, "big", 3, &v, NULL, NULL), STORE_OK);
    assert_int_equal(get(s, "big", &item), STORE_OK);
    assert_memory_equal(item.data, blob, LARGE);
    assert_int_equal(item.meta.ttl_ms, -1);
    free(item.data);
    assert_int_equal(store_delete(s, "big", 3, 0), STORE_OK);
    assert_int_equal(stats_of(s).bytes_used, empty);
}

static void test_empty_value_and_key(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    struct store_value v = {.kind = STORE_KIND_STRING, .data = NULL, .len = 0};
    assert_int_equal(store_set(s, "", 0, &v, NULL, NULL), STORE_OK);

    struct store_item item;
    assert_int_equal(store_get(s, "", 0, test_alloc, NULL, &item), STORE_OK);
    assert_int_equal(item.kind, STORE_KIND_STRING);
    assert_int_equal(item.len, 0);
    assert_int_equal(item.data[0], '\0');
    free(item.data);
    assert_int_equal(store_delete(s, "", 0, 0), STORE_OK);
    assert_int_equal(store_count(s), 0);
}

/* The prefetch hint changes nothing: no entry, no statistic, more keys than it looks at included. */
static void test_prefetch_changes_nothing(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    char keys_text[STORE_PREFETCH_MAX + 8][16];
    struct store_key keys[STORE_PREFETCH_MAX + 8];
    for (size_t i = 0; i < STORE_PREFETCH_MAX + 8; i++) {
        snprintf(keys_text[i], sizeof(keys_text[i]), "k%zu", i);
        keys[i] = (struct store_key){keys_text[i], strlen(keys_text[i])};
        if (i % 2 == 0) {
            struct store_value v = {.kind = STORE_KIND_STRING, .data = keys_text[i], .len = strlen(keys_text[i])};
            assert_int_equal(store_set(s, keys_text[i], strlen(keys_text[i]), &v, NULL, NULL), STORE_OK);
        }
    }
    struct store_stats before = stats_of(s);
    store_prefetch(s, keys, STORE_PREFETCH_MAX + 8);
    store_prefetch(s, keys, 0);
    struct store_stats after = stats_of(s);
    assert_memory_equal(&before, &after, sizeof(before));
    struct store_item item;
    assert_int_equal(get(s, "k0", &item), STORE_OK);
    assert_memory_equal(item.data, "k0", 2);
    free(item.data);
    assert_absent(s, "k1");
    assert_int_equal(store_count(s), (STORE_PREFETCH_MAX + 8) / 2);
}

static void test_longest_key(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    char *key = malloc(STORE_MAX_KEY_LEN + 1);
    assert_non_null(key);
    memset(key, 'k', STORE_MAX_KEY_LEN + 1);
    struct store_value v = {.kind = STORE_KIND_JSON, .data = "7", .len = 1};
    int64_t sum = 0;

    assert_int_equal(store_set(s, key, STORE_MAX_KEY_LEN, &v, NULL, NULL), STORE_OK);
    struct store_item item;
    assert_int_equal(store_get(s, key, STORE_MAX_KEY_LEN, test_alloc, NULL, &item), STORE_OK);
    assert_memory_equal(item.data, "7", 2);
    free(item.data);
    assert_int_equal(store_incr(s, key, STORE_MAX_KEY_LEN, 1, NULL, &sum, NULL), STORE_OK);
    assert_int_equal(sum, 8);
    assert_int_equal(store_delete(s, key, STORE_MAX_KEY_LEN, 0), STORE_OK);

    /* One byte longer is refused, and changes nothing. */
    assert_int_equal(store_set(s, key, STORE_MAX_KEY_LEN + 1, &v, NULL, NULL), STORE_EINVAL);
    assert_int_equal(store_incr(s, key, STORE_MAX_KEY_LEN + 1, 1, NULL, &sum, NULL), STORE_EINVAL);
    assert_int_equal(store_count(s), 0);
    free(key);
}

static void test_invalid_args(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    struct store_meta meta;
    int64_t sum = 0;
    uint64_t sets = stats_of(s).sets;

    assert_int_equal(set_json(s, "k", "1", -1, &meta), STORE_EINVAL);
    assert_int_equal(set_json(s, "k", "1", INT64_MIN, &meta), STORE_EINVAL);
    assert_int_equal(set_json(s, "k", "1", INT64_MAX, &meta), STORE_EINVAL); /* now + ttl overflows */
    assert_int_equal(store_incr(s, "k", 1, 1, &(struct store_set_opts){.ttl_ms = -5}, &sum, &meta), STORE_EINVAL);
    assert_int_equal(store_count(s), 0);
    assert_int_equal(stats_of(s).sets, sets);
    assert_absent(s, "k");

    /* A failed write leaves the old value alone. */
    assert_int_equal(set_json(s, "k", "1", 0, NULL), STORE_OK);
    assert_int_equal(set_json(s, "k", "2", -1, NULL), STORE_EINVAL);
    assert_json(s, "k", "1");

    /* A kind that does not exist is out of range too. */
    assert_int_equal(set_kind(s, "k", (enum store_kind)3, "2", 1, 0, STORE_SET_ALWAYS, 0, NULL), STORE_EINVAL);
    assert_int_equal(set_kind(s, "k", (enum store_kind) - 1, "2", 1, 0, STORE_SET_ALWAYS, 0, NULL), STORE_EINVAL);
    assert_json(s, "k", "1");
}

static void test_get_alloc_failure(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    struct store_item item;
    assert_int_equal(set_json(s, "k", "[1]", 0, NULL), STORE_OK);
    assert_int_equal(store_get(s, "k", 1, failing_alloc, NULL, &item), STORE_ENOMEM);
    assert_json(s, "k", "[1]");
    /* A miss never calls the allocator. */
    assert_int_equal(store_get(s, "nope", 4, failing_alloc, NULL, &item), STORE_ENOTFOUND);
}

static void test_replace(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    struct store_meta first, second;

    assert_int_equal(set_json(s, "k", "1", 0, &first), STORE_OK);
    assert_true(first.created);
    assert_int_equal(set_kind(s, "k", STORE_KIND_STRING, "two", 3, 0, STORE_SET_ALWAYS, 0, &second), STORE_OK);
    assert_false(second.created);
    assert_true(second.version != 0);
    assert_true(second.version != first.version);

    struct store_item item;
    assert_int_equal(get(s, "k", &item), STORE_OK);
    assert_int_equal(item.kind, STORE_KIND_STRING);
    assert_int_equal(item.len, 3);
    assert_memory_equal(item.data, "two", 3);
    assert_int_equal(item.meta.version, second.version);
    free(item.data);
    assert_int_equal(store_count(s), 1);

    /* Every write of a key gets a version never seen before on that key, and never 0. */
    enum { N = 300 };
    uint64_t seen[N];
    for (int i = 0; i < N; i++) {
        struct store_meta m;
        if (i % 3 == 0)
            assert_int_equal(store_delete(s, "k", 1, 0), STORE_OK);
        if (i % 2 == 0) {
            assert_int_equal(set_json(s, "k", "3", 0, &m), STORE_OK);
        } else {
            int64_t sum;
            assert_int_equal(store_incr(s, "k", 1, 1, NULL, &sum, &m), STORE_OK);
        }
        assert_true(m.version != 0);
        assert_int_equal(version_of(s, "k"), m.version);
        for (int j = 0; j < i; j++)
            assert_true(seen[j] != m.version);
        seen[i] = m.version;
    }
}

static void test_set_if_absent(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    struct store_meta meta;

    assert_int_equal(set_kind(s, "k", STORE_KIND_JSON, "1", 1, 0, STORE_SET_IF_ABSENT, 0, &meta), STORE_OK);
    assert_true(meta.created);
    uint64_t v1 = meta.version;

    assert_int_equal(set_kind(s, "k", STORE_KIND_JSON, "2", 1, 0, STORE_SET_IF_ABSENT, 0, &meta), STORE_EEXISTS);
    assert_json(s, "k", "1");
    assert_int_equal(version_of(s, "k"), v1);

    /* An expired entry does not count as present. */
    assert_int_equal(set_kind(s, "t", STORE_KIND_JSON, "1", 1, 100, STORE_SET_IF_ABSENT, 0, NULL), STORE_OK);
    advance(state, 99);
    assert_int_equal(set_kind(s, "t", STORE_KIND_JSON, "2", 1, 0, STORE_SET_IF_ABSENT, 0, NULL), STORE_EEXISTS);
    advance(state, 1);
    assert_int_equal(set_kind(s, "t", STORE_KIND_JSON, "3", 1, 0, STORE_SET_IF_ABSENT, 0, &meta), STORE_OK);
    assert_true(meta.created);
    assert_int_equal(meta.ttl_ms, -1);
    assert_json(s, "t", "3");

    /* A deleted key is absent again. */
    assert_int_equal(store_delete(s, "k", 1, 0), STORE_OK);
    assert_int_equal(set_kind(s, "k", STORE_KIND_JSON, "4", 1, 0, STORE_SET_IF_ABSENT, 0, &meta), STORE_OK);
    assert_true(meta.created);
    assert_json(s, "k", "4");
}

static void test_set_if_version(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    struct store_meta m1, m2, m3;

    assert_int_equal(set_json(s, "k", "1", 0, &m1), STORE_OK);
    assert_int_equal(set_kind(s, "k", STORE_KIND_JSON, "2", 1, 0, STORE_SET_IF_VERSION, m1.version, &m2), STORE_OK);
    assert_false(m2.created);
    assert_true(m2.version != m1.version);
    assert_json(s, "k", "2");

    /* The old version no longer matches. */
    assert_int_equal(set_kind(s, "k", STORE_KIND_JSON, "3", 1, 0, STORE_SET_IF_VERSION, m1.version, &m3),
                     STORE_EVERSION);
    assert_json(s, "k", "2");
    assert_int_equal(version_of(s, "k"), m2.version);

    /* An absent key never matches, whatever the version, 0 included. */
    assert_int_equal(set_kind(s, "x", STORE_KIND_JSON, "1", 1, 0, STORE_SET_IF_VERSION, m2.version, NULL),
                     STORE_EVERSION);
    assert_int_equal(set_kind(s, "x", STORE_KIND_JSON, "1", 1, 0, STORE_SET_IF_VERSION, 0, NULL), STORE_EVERSION);
    assert_absent(s, "x");

    /* Nor does an expired one, even with its last version. */
    assert_int_equal(set_json(s, "t", "1", 50, &m3), STORE_OK);
    advance(state, 50);
    assert_int_equal(set_kind(s, "t", STORE_KIND_JSON, "2", 1, 0, STORE_SET_IF_VERSION, m3.version, NULL),
                     STORE_EVERSION);
    assert_absent(s, "t");
}

/* ------------------------------------------------------------------------ */
/* Delete                                                                    */
/* ------------------------------------------------------------------------ */

static void test_delete(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    struct store_meta meta;

    assert_int_equal(set_json(s, "a", "1", 0, NULL), STORE_OK);
    assert_int_equal(store_delete(s, "a", 1, 0), STORE_OK);
    assert_absent(s, "a");
    assert_int_equal(store_delete(s, "a", 1, 0), STORE_ENOTFOUND);
    assert_int_equal(store_delete(s, "never", 5, 0), STORE_ENOTFOUND);
    assert_int_equal(store_delete(s, "never", 5, 12345), STORE_ENOTFOUND);

    assert_int_equal(set_json(s, "b", "1", 0, &meta), STORE_OK);
    assert_int_equal(store_delete(s, "b", 1, meta.version + 1), STORE_EVERSION);
    assert_json(s, "b", "1");
    assert_int_equal(store_delete(s, "b", 1, meta.version), STORE_OK);
    assert_absent(s, "b");
    assert_int_equal(store_count(s), 0);

    /* An expired key is already gone. */
    assert_int_equal(set_json(s, "c", "1", 10, NULL), STORE_OK);
    advance(state, 10);
    assert_int_equal(store_delete(s, "c", 1, 0), STORE_ENOTFOUND);
    assert_int_equal(store_count(s), 0);
}

/* ------------------------------------------------------------------------ */
/* Incr                                                                      */
/* ------------------------------------------------------------------------ */

static void test_incr(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    struct store_meta meta;
    int64_t sum = 99;

    assert_int_equal(store_incr(s, "n", 1, 5, NULL, &sum, &meta), STORE_OK);
    assert_int_equal(sum, 5);
    assert_true(meta.created);
    assert_true(meta.version != 0);
    assert_int_equal(meta.ttl_ms, -1);
    assert_json(s, "n", "5");

    uint64_t v = meta.version;
    assert_int_equal(store_incr(s, "n", 1, -7, NULL, &sum, &meta), STORE_OK);
    assert_int_equal(sum, -2);
    assert_false(meta.created);
    assert_true(meta.version != v);
    assert_json(s, "n", "-2");

    assert_int_equal(store_incr(s, "n", 1, 0, NULL, &sum, NULL), STORE_OK);
    assert_int_equal(sum, -2);

    /* A JSON integer written by set counts on from its value. */
    assert_int_equal(set_json(s, "m", "-40", 0, NULL), STORE_OK);
    assert_int_equal(store_incr(s, "m", 1, 42, NULL, &sum, &meta), STORE_OK);
    assert_int_equal(sum, 2);
    assert_false(meta.created);
    assert_json(s, "m", "2");

    /* The extremes of int64 are reachable and print in full. */
    assert_int_equal(store_incr(s, "lo", 2, INT64_MIN, NULL, &sum, NULL), STORE_OK);
    assert_int_equal(sum, INT64_MIN);
    assert_json(s, "lo", "-9223372036854775808");
    assert_int_equal(store_incr(s, "lo", 2, 1, NULL, &sum, NULL), STORE_OK);
    assert_json(s, "lo", "-9223372036854775807");
    assert_int_equal(store_incr(s, "hi", 2, INT64_MAX, NULL, &sum, NULL), STORE_OK);
    assert_json(s, "hi", "9223372036854775807");

    /* Conditions as for store_set, decided under the lock: only-if-absent, only-this-version. */
    struct store_set_opts absent = {.mode = STORE_SET_IF_ABSENT};
    assert_int_equal(store_incr(s, "new", 3, 3, &absent, &sum, &meta), STORE_OK);
    assert_true(meta.created);
    assert_int_equal(store_incr(s, "new", 3, 3, &absent, &sum, NULL), STORE_EEXISTS);
    assert_json(s, "new", "3");
    struct store_set_opts stale = {.mode = STORE_SET_IF_VERSION, .version = meta.version + 1};
    assert_int_equal(store_incr(s, "new", 3, 1, &stale, &sum, NULL), STORE_EVERSION);
    struct store_set_opts current = {.mode = STORE_SET_IF_VERSION, .version = meta.version};
    assert_int_equal(store_incr(s, "new", 3, 1, &current, &sum, NULL), STORE_OK);
    assert_int_equal(sum, 4);
}

static void test_incr_not_integer(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    static const char *const not_ints[] = {
        "1.5", "\"7\"", "[1]", "{}", "true", "null", "1e3", "12abc", "+3", " 4", "-", "99999999999999999999",
    };
    int64_t sum = 1234;

    for (size_t i = 0; i < sizeof(not_ints) / sizeof(not_ints[0]); i++) {
        assert_int_equal(set_json(s, "k", not_ints[i], 0, NULL), STORE_OK);
        uint64_t v = version_of(s, "k");
        assert_int_equal(store_incr(s, "k", 1, 1, NULL, &sum, NULL), STORE_ENOTINT);
        assert_int_equal(sum, 1234);
        assert_json(s, "k", not_ints[i]);
        assert_int_equal(version_of(s, "k"), v);
    }

    /* Digits held as a string or as bytes are not a JSON integer. */
    assert_int_equal(set_kind(s, "s", STORE_KIND_STRING, "5", 1, 0, STORE_SET_ALWAYS, 0, NULL), STORE_OK);
    assert_int_equal(store_incr(s, "s", 1, 1, NULL, &sum, NULL), STORE_ENOTINT);
    assert_int_equal(set_kind(s, "b", STORE_KIND_BYTES, "5", 1, 0, STORE_SET_ALWAYS, 0, NULL), STORE_OK);
    assert_int_equal(store_incr(s, "b", 1, 1, NULL, &sum, NULL), STORE_ENOTINT);
    assert_int_equal(set_kind(s, "e", STORE_KIND_JSON, "", 0, 0, STORE_SET_ALWAYS, 0, NULL), STORE_OK);
    assert_int_equal(store_incr(s, "e", 1, 1, NULL, &sum, NULL), STORE_ENOTINT);
    /* A NUL inside the text must not cut it short. */
    assert_int_equal(set_kind(s, "z", STORE_KIND_JSON, "5\0x", 3, 0, STORE_SET_ALWAYS, 0, NULL), STORE_OK);
    assert_int_equal(store_incr(s, "z", 1, 1, NULL, &sum, NULL), STORE_ENOTINT);
    assert_int_equal(sum, 1234);

    struct store_item item;
    assert_int_equal(get(s, "s", &item), STORE_OK);
    assert_int_equal(item.kind, STORE_KIND_STRING);
    assert_memory_equal(item.data, "5", 2);
    free(item.data);
}

static void test_incr_overflow(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    int64_t sum = 77;

    assert_int_equal(set_json(s, "max", "9223372036854775807", 0, NULL), STORE_OK);
    uint64_t v = version_of(s, "max");
    assert_int_equal(store_incr(s, "max", 3, 1, NULL, &sum, NULL), STORE_EOVERFLOW);
    assert_int_equal(sum, 77);
    assert_json(s, "max", "9223372036854775807");
    assert_int_equal(version_of(s, "max"), v);
    assert_int_equal(store_incr(s, "max", 3, INT64_MAX, NULL, &sum, NULL), STORE_EOVERFLOW);
    assert_int_equal(store_incr(s, "max", 3, INT64_MIN, NULL, &sum, NULL), STORE_OK);
    assert_int_equal(sum, -1);

    assert_int_equal(set_json(s, "min", "-9223372036854775808", 0, NULL), STORE_OK);
    assert_int_equal(store_incr(s, "min", 3, -1, NULL, &sum, NULL), STORE_EOVERFLOW);
    assert_json(s, "min", "-9223372036854775808");

    /* Overflow from an absent key is impossible: 0 + by always fits. A failed
     * incr on an absent key creates nothing. */
    assert_int_equal(store_incr(s, "k", 1, INT64_MAX, NULL, &sum, NULL), STORE_OK);
    assert_int_equal(store_incr(s, "k", 1, 1, NULL, &sum, NULL), STORE_EOVERFLOW);
    assert_json(s, "k", "9223372036854775807");
    assert_int_equal(store_count(s), 3);
}

static void test_incr_ttl(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    struct store_meta meta;
    int64_t sum;

    /* The ttl applies when the key is created... */
    assert_int_equal(store_incr(s, "c", 1, 1, &(struct store_set_opts){.ttl_ms = 1000}, &sum, &meta), STORE_OK);
    assert_true(meta.created);
    assert_int_equal(meta.ttl_ms, 1000);

    /* ...and an existing key keeps its expiry, whatever ttl is passed. */
    advance(state, 400);
    assert_int_equal(store_incr(s, "c", 1, 1, &(struct store_set_opts){.ttl_ms = 5000}, &sum, &meta), STORE_OK);
    assert_int_equal(sum, 2);
    assert_false(meta.created);
    assert_int_equal(meta.ttl_ms, 600);
    assert_int_equal(store_incr(s, "c", 1, 1, NULL, &sum, &meta), STORE_OK);
    assert_int_equal(meta.ttl_ms, 600);

    advance(state, 600);
    assert_absent(s, "c");
    /* Expired: counting starts again from 0, with the new ttl. */
    assert_int_equal(store_incr(s, "c", 1, 10, &(struct store_set_opts){.ttl_ms = 200}, &sum, &meta), STORE_OK);
    assert_int_equal(sum, 10);
    assert_true(meta.created);
    assert_int_equal(meta.ttl_ms, 200);

    /* A key without expiry keeps having none. */
    assert_int_equal(set_json(s, "p", "5", 0, NULL), STORE_OK);
    assert_int_equal(store_incr(s, "p", 1, 1, &(struct store_set_opts){.ttl_ms = 300}, &sum, &meta), STORE_OK);
    assert_int_equal(meta.ttl_ms, -1);
    advance(state, 1000000);
    assert_json(s, "p", "6");

    /* A value set with a ttl keeps it through incr. */
    assert_int_equal(set_json(s, "q", "1", 100, NULL), STORE_OK);
    assert_int_equal(store_incr(s, "q", 1, 1, NULL, &sum, &meta), STORE_OK);
    assert_int_equal(meta.ttl_ms, 100);
    advance(state, 100);
    assert_absent(s, "q");
}

/* ------------------------------------------------------------------------ */
/* Expiry                                                                    */
/* ------------------------------------------------------------------------ */

static void test_ttl_expiry(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    struct store_meta meta;
    struct store_item item;

    assert_int_equal(set_json(s, "k", "1", 1000, &meta), STORE_OK);
    assert_int_equal(meta.ttl_ms, 1000);

    advance(state, 250);
    assert_int_equal(get(s, "k", &item), STORE_OK);
    assert_int_equal(item.meta.ttl_ms, 750);
    free(item.data);

    advance(state, 749);
    assert_int_equal(get(s, "k", &item), STORE_OK);
    assert_int_equal(item.meta.ttl_ms, 1);
    free(item.data);

    uint64_t misses = stats_of(s).misses;
    advance(state, 1);
    assert_absent(s, "k");
    advance(state, 5000);
    assert_absent(s, "k");
    assert_int_equal(stats_of(s).misses, misses + 2);

    /* Until reclaimed the entry is still held, but never visible. */
    assert_int_equal(store_count(s), 1);

    /* Setting the key again without ttl makes it permanent; the old entry was expired. */
    assert_int_equal(set_json(s, "k", "2", 0, &meta), STORE_OK);
    assert_true(meta.created);
    assert_int_equal(meta.ttl_ms, -1);
    assert_int_equal(stats_of(s).expired, 1);
    advance(state, INT64_C(1) << 40);
    assert_json(s, "k", "2");

    /* Replacing a live key with a ttl gives it one; replacing without removes it. */
    assert_int_equal(set_json(s, "k", "3", 10, &meta), STORE_OK);
    assert_false(meta.created);
    assert_int_equal(meta.ttl_ms, 10);
    assert_int_equal(set_json(s, "k", "4", 0, &meta), STORE_OK);
    assert_int_equal(meta.ttl_ms, -1);
    advance(state, 10);
    assert_json(s, "k", "4");
}

/* An injected clock may start below zero: it counts as 0, and TTLs work from there. */
static void test_clock_below_zero(void **state)
{
    struct store *s = open_store(state, 0, 0, STORE_EVICT_SIEVE);
    struct store_meta meta;
    advance(state, -1000000 - 1000); /* the fixture's clock starts at 1,000,000 ms */
    assert_int_equal(set_json(s, "k", "1", 1000, &meta), STORE_OK);
    assert_int_equal(meta.ttl_ms, 1000);
    assert_json(s, "k", "1");
    advance(state, 1999); /* the clock reads 999: one millisecond left */
    assert_json(s, "k", "1");
    advance(state, 1);
    assert_absent(s, "k");
}

static void test_expire_step(void **state)
{
    /* 2 shards of 16 buckets: at most 15 keys never grow a table, so byte counts compare exactly. */
    struct store *s = open_store(state, 0, 1, STORE_EVICT_SIEVE);
    char key[32];
    size_t empty = stats_of(s).bytes_used;
    assert_true(empty > 0); /* the bucket arrays */

    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof(key), "keep:%d", i);
        assert_int_equal(set_json(s, key, "true", 0, NULL), STORE_OK);
    }
    size_t permanent = stats_of(s).bytes_used;
    assert_true(permanent > empty);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "temp:%d", i);
        assert_int_equal(set_json(s, key, "[1,2,3]", 100 + i, NULL), STORE_OK);
    }
    assert_true(stats_of(s).bytes_used > permanent);
    assert_int_equal(store_count(s), 15);

    /* Nothing has expired yet: a full sweep reclaims nothing. */
    advance(state, 99);
    assert_int_equal(store_expire_step(s, 1000), 0);
    assert_int_equal(store_count(s), 15);

    /* Half of them expire. A sweep bucket by bucket reclaims them within one round of the 32 buckets. */
    advance(state, 5); /* now = start + 104: temp:0..4 expired */
    size_t reclaimed = 0;
    for (int i = 0; i < 32; i++)
        reclaimed += store_expire_step(s, 1);
    assert_int_equal(reclaimed, 5);
    assert_int_equal(store_count(s), 10);
    assert_int_equal(stats_of(s).expired, 5);

    advance(state, 1000);
    assert_int_equal(store_expire_step(s, 0), 0);
    assert_int_equal(store_expire_step(s, 64), 5);
    struct store_stats st = stats_of(s);
    assert_int_equal(st.expired, 10);
    assert_int_equal(st.entries, 5);
    assert_int_equal(st.bytes_used, permanent);
    assert_int_equal(store_expire_step(s, 64), 0);

    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof(key), "keep:%d", i);
        assert_json(s, key, "true");
        assert_int_equal(store_delete(s, key, strlen(key), 0), STORE_OK);
    }
    assert_int_equal(stats_of(s).bytes_used, empty);
}

/* ------------------------------------------------------------------------ */
/* Scan                                                                      */
/* ------------------------------------------------------------------------ */

/* Records keys "<prefix><n>" (n < SEEN_MAX) seen by a scan; anything else counts as foreign. */
#define SEEN_MAX 4096
struct seen {
    const char *prefix;
    unsigned char hits[SEEN_MAX];
    size_t calls, foreign;
};

static void seen_key(void *ctx, const char *key, size_t key_len)
{
    struct seen *seen = ctx;
    size_t plen = strlen(seen->prefix);
    char buf[64];
    seen->calls++;
    if (key_len <= plen || key_len >= sizeof(buf) || memcmp(key, seen->prefix, plen) != 0) {
        seen->foreign++;
        return;
    }
    memcpy(buf, key + plen, key_len - plen);
    buf[key_len - plen] = '\0';
    char *end;
    unsigned long n = strtoul(buf, &end, 10);
    if (*end != '\0' || n >= SEEN_MAX) {
        seen->foreign++;
        return;
    }
    if (seen->hits[n] < 255)
        seen->hits[n]++;
}

static void count_key(void *ctx, const char *key, size_t key_len)
{
    (void)key;
    (void)key_len;
    ++*(size_t *)ctx;
}

/* Scans to the end with this limit; returns the number of calls. Asserts the limit is kept. */
static size_t scan_all(struct store *s, const char *prefix, size_t limit, struct seen *seen)
{
    size_t prefix_len = prefix ? strlen(prefix) : 0;
    uint64_t cursor = 0;
    size_t calls = 0;
    do {
        size_t before = seen->calls;
        uint64_t from = cursor;
        size_t n = store_scan(s, cursor, prefix, prefix_len, limit, seen_key, seen, &cursor);
        assert_int_equal(n, seen->calls - before);
        if (n > limit) {
            /* Only a first bucket bigger than the limit may pass it: then that bucket is all the call visited. */
            size_t first_bucket = 0;
            uint64_t ignored;
            store_scan(s, from, prefix, prefix_len, 1, count_key, &first_bucket, &ignored);
            assert_int_equal(n, first_bucket);
        }
        calls++;
        assert_true(calls < 100000);
    } while (cursor != 0);
    return calls;
}

static void put_numbered(struct store *s, const char *prefix, int from, int to, int64_t ttl)
{
    char key[64];
    for (int i = from; i < to; i++) {
        snprintf(key, sizeof(key), "%s%d", prefix, i);
        assert_int_equal(set_json(s, key, "0", ttl, NULL), STORE_OK);
    }
}

static void test_scan_every_key(void **state)
{
    static const unsigned shard_bits[] = {1, 3, 0};
    static const size_t limits[] = {1, 2, 3, 4, 5, 7, 10, 33, 100, 100000};

    for (size_t b = 0; b < sizeof(shard_bits) / sizeof(shard_bits[0]); b++) {
        struct store *s = open_store(state, 0, shard_bits[b], STORE_EVICT_SIEVE);
        put_numbered(s, "key:", 0, 1500, 0);
        put_numbered(s, "other:", 0, 300, 0);
        put_numbered(s, "key:", 1500, 1600, 50); /* expire below: never visited */
        advance(state, 50);

        for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
            struct seen all = {.prefix = "key:"};
            size_t calls = scan_all(s, NULL, limits[l], &all);
            for (int i = 0; i < 1500; i++)
                assert_int_equal(all.hits[i] >= 1, 1);
            for (int i = 1500; i < 1600; i++)
                assert_int_equal(all.hits[i], 0);
            assert_int_equal(all.foreign, 300); /* the other: keys, each once */
            /* Nothing grows during this scan, so no key is visited twice. */
            assert_int_equal(all.calls, 1800);
            if (limits[l] >= 10)
                assert_true(calls <= 1800 / (limits[l] / 2) + ((size_t)1 << (shard_bits[b] ? shard_bits[b] : 8)));

            struct seen some = {.prefix = "key:"};
            scan_all(s, "key:", limits[l], &some);
            assert_int_equal(some.foreign, 0);
            assert_int_equal(some.calls, 1500);
            for (int i = 0; i < 1500; i++)
                assert_int_equal(some.hits[i], 1);
        }

        /* A prefix that matches nothing, and the empty store. */
        struct seen none = {.prefix = "zzz"};
        scan_all(s, "zzz", 10, &none);
        assert_int_equal(none.calls, 0);
        assert_int_equal(store_flush(s), 1800);
        scan_all(s, NULL, 10, &none);
        assert_int_equal(none.calls, 0);

        store_destroy(s);
        ((struct fixture *)*state)->store = NULL;
    }
}

/* Writes key "same:<8 digits>" with a 1-byte JSON value: every entry the same size, whatever the allocator. */
static void put_same_size(struct store *s, int i)
{
    char key[32];
    snprintf(key, sizeof(key), "same:%08d", i);
    assert_int_equal(set_json(s, key, "0", 0, NULL), STORE_OK);
}

/*
 * A write's own bucket array or ghost can grow after its bytes were
 * reserved; the eviction that then brings the store back under the bound
 * must not take the entry just written. With 256 shards and a few dozen
 * entries, a new key is often alone in its shard, where eviction starts.
 * Fresh stores draw fresh hash keys, so the shards differ each round.
 */
static void test_a_write_is_never_evicted_by_its_own_growth(void **state)
{
    struct fixture *fx = *state;
    static char value[4000];
    memset(value, 's', sizeof(value));
    for (int round = 0; round < 40; round++) {
        struct store *s = open_store(state, 128 * KIB, 0, round % 2 ? STORE_EVICT_SIEVE : STORE_EVICT_S3FIFO);
        for (int i = 0; i < 60; i++) {
            char key[32];
            snprintf(key, sizeof(key), "k-%d", i);
            assert_int_equal(set_kind(s, key, STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                             STORE_OK);
            struct store_item item;
            if (get(s, key, &item) != STORE_OK)
                fail_msg("round %d: %s evicted by its own write (%" PRIu64 " evicted)", round, key,
                         stats_of(s).evicted);
            free(item.data);
        }
        assert_true(stats_of(s).evicted > 0);
        store_destroy(s);
        fx->store = NULL;
    }
}

static void test_a_full_store_evicts_one_entry_per_write_of_the_same_size(void **state)
{
    /* 1 MiB bound: a thread's byte credit (max_memory / 1024) holds about ten of these entries. */
    struct store *s = open_store(state, 1 << 20, 2, STORE_EVICT_SIEVE);
    int i = 0;
    while (stats_of(s).evicted == 0) {
        put_same_size(s, i);
        assert_true(++i < 100000);
    }
    for (int n = 0; n < 2000; n++) /* past any table growth the bound still allows */
        put_same_size(s, i++);
    /* Each further write must free exactly what it needs: one entry, not a credit's worth at a time. */
    for (int n = 0; n < 200; n++) {
        uint64_t before = stats_of(s).evicted;
        put_same_size(s, i++);
        assert_int_equal(stats_of(s).evicted - before, 1);
    }
}

/* Reads filler:0 .. filler:n-1, those still there (a hit for the eviction policy). */
static void read_fillers(struct store *s, int n)
{
    for (int i = 0; i < n; i++) {
        char key[32];
        struct store_item item;
        snprintf(key, sizeof(key), "filler:%d", i);
        if (get(s, key, &item) == STORE_OK)
            free(item.data);
    }
}

/*
 * Fills a store with 200-byte strings until it evicts, reads them, writes
 * `key` as `json` and reads the fillers again. Under SIEVE the key is then
 * the first entry a write of it would evict: that eviction starts in the
 * key's shard, where every other entry has been read since the hand last
 * passed it. Returns the key's version.
 */
static uint64_t make_next_victim(struct store *s, const char *key, const char *json)
{
    char value[200], filler[32];
    memset(value, 'f', sizeof(value));
    int n = 0;
    while (stats_of(s).evicted == 0) {
        snprintf(filler, sizeof(filler), "filler:%d", n++);
        assert_int_equal(set_kind(s, filler, STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                         STORE_OK);
        assert_true(n < 10000);
    }
    read_fillers(s, n);
    struct store_meta meta;
    assert_int_equal(set_json(s, key, json, 0, &meta), STORE_OK);
    read_fillers(s, n);
    return meta.version;
}

/*
 * A write at the bound that needs more room than its key's old entry gives
 * back evicts other entries, never that one: a compare-and-set would fail on
 * the key it just lost, an increment would restart from 0.
 */
static void test_a_write_at_the_bound_spares_its_own_key(void **state)
{
    struct fixture *fx = *state;
    static const enum store_eviction policies[] = {STORE_EVICT_SIEVE, STORE_EVICT_S3FIFO};
    char bigger[600];
    memset(bigger, 'b', sizeof(bigger));
    for (size_t p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
        struct store *s = open_store(state, 64 * KIB, 0, policies[p]);
        uint64_t version = make_next_victim(s, "cas", "\"old\"");
        uint64_t evicted = stats_of(s).evicted;
        assert_int_equal(
            set_kind(s, "cas", STORE_KIND_STRING, bigger, sizeof(bigger), 0, STORE_SET_IF_VERSION, version, NULL),
            STORE_OK);
        assert_true(stats_of(s).evicted > evicted); /* it did need room */
        struct store_item item;
        assert_int_equal(get(s, "cas", &item), STORE_OK);
        assert_int_equal(item.len, sizeof(bigger));
        free(item.data);
        store_destroy(s);
        fx->store = NULL;

        /* A counter's entry is bigger than the 2-byte JSON it replaces. */
        s = open_store(state, 64 * KIB, 0, policies[p]);
        make_next_victim(s, "n", "41");
        int64_t sum = 0;
        assert_int_equal(store_incr(s, "n", 1, 1, NULL, &sum, NULL), STORE_OK);
        assert_int_equal(sum, 42);
        store_destroy(s);
        fx->store = NULL;
    }
}

/* A write whose condition fails changes nothing: not even by evicting room for itself. */
static void test_a_failing_conditional_write_evicts_nothing(void **state)
{
    struct store *s = open_store(state, 64 * KIB, 0, STORE_EVICT_SIEVE);
    uint64_t version = make_next_victim(s, "k", "1");
    static char bigger[4000];
    memset(bigger, 'b', sizeof(bigger));
    struct store_stats before = stats_of(s);
    assert_int_equal(set_kind(s, "k", STORE_KIND_STRING, bigger, sizeof(bigger), 0, STORE_SET_IF_ABSENT, 0, NULL),
                     STORE_EEXISTS);
    assert_int_equal(
        set_kind(s, "k", STORE_KIND_STRING, bigger, sizeof(bigger), 0, STORE_SET_IF_VERSION, version + 1, NULL),
        STORE_EVERSION);
    assert_int_equal(
        set_kind(s, "absent", STORE_KIND_STRING, bigger, sizeof(bigger), 0, STORE_SET_IF_VERSION, version, NULL),
        STORE_EVERSION);
    assert_int_equal(stats_of(s).evicted, before.evicted);
    assert_int_equal(stats_of(s).entries, before.entries);
    assert_json(s, "k", "1");
}

static void test_scan_while_growing(void **state)
{
    struct store *s = open_store(state, 0, 1, STORE_EVICT_SIEVE);
    put_numbered(s, "base:", 0, 200, 0);
    size_t table_bytes = stats_of(s).bytes_used;

    struct seen seen = {.prefix = "base:"};
    uint64_t cursor = 0;
    int grown = 0, calls = 0;
    do {
        store_scan(s, cursor, "base:", 5, 4, seen_key, &seen, &cursor);
        /* Each pause adds more keys than are in the store: every table doubles many times during the scan. */
        put_numbered(s, "grow:", grown, grown + 150, 0);
        grown += 150;
        calls++;
        assert_true(calls < 10000);
    } while (cursor != 0);

    assert_true(grown >= 200 * 8);
    assert_true(stats_of(s).bytes_used > table_bytes);
    assert_int_equal(seen.foreign, 0);
    for (int i = 0; i < 200; i++)
        assert_true(seen.hits[i] >= 1);

    /* White box: the bucket arrays the growth retired are freed by the sweep, not kept to the end. */
    int retired = 0;
    for (size_t i = 0; i < s->nshards; i++)
        retired += s->shards[i].retired_tables != NULL;
    assert_true(retired > 0);
    for (int step = 0; step < 3; step++) /* each step may move the epoch on once; freeing needs two */
        store_expire_step(s, 1u << 20);
    for (size_t i = 0; i < s->nshards; i++)
        assert_null(s->shards[i].retired_tables);
}

/* ------------------------------------------------------------------------ */
/* Flush and statistics                                                      */
/* ------------------------------------------------------------------------ */

static void test_flush(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    size_t empty = stats_of(s).bytes_used;
    assert_int_equal(store_flush(s), 0);

    put_numbered(s, "dead:", 0, 4, 10);
    advance(state, 10);
    put_numbered(s, "live:", 0, 8, 0);
    assert_int_equal(store_count(s), 12);
    assert_int_equal(store_flush(s), 8);
    assert_int_equal(store_count(s), 0);
    assert_int_equal(stats_of(s).bytes_used, empty);
    assert_absent(s, "live:3");

    /* The store works as before after a flush. */
    struct store_meta meta;
    assert_int_equal(set_json(s, "live:3", "3", 0, &meta), STORE_OK);
    assert_true(meta.created);
    assert_json(s, "live:3", "3");
    assert_int_equal(store_flush(s), 1);
    assert_int_equal(store_flush(s), 0);
}

static void test_stats_counters(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    struct store_item item;
    int64_t sum;
    struct store_stats st = stats_of(s);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.hits + st.misses + st.sets + st.deletes + st.expired + st.evicted, 0);

    assert_int_equal(set_json(s, "a", "1", 0, NULL), STORE_OK);
    assert_int_equal(set_json(s, "a", "2", 0, NULL), STORE_OK);
    assert_int_equal(set_json(s, "b", "1", 0, NULL), STORE_OK);
    assert_int_equal(store_incr(s, "c", 1, 1, NULL, &sum, NULL), STORE_OK);
    /* Failed writes count nothing. */
    assert_int_equal(set_kind(s, "a", STORE_KIND_JSON, "3", 1, 0, STORE_SET_IF_ABSENT, 0, NULL), STORE_EEXISTS);
    assert_int_equal(store_incr(s, "c", 1, INT64_MAX - 1, NULL, &sum, NULL), STORE_OK);
    assert_int_equal(store_incr(s, "c", 1, 1, NULL, &sum, NULL), STORE_EOVERFLOW);

    for (int i = 0; i < 3; i++) {
        assert_int_equal(get(s, "b", &item), STORE_OK);
        free(item.data);
    }
    assert_absent(s, "x");
    assert_absent(s, "y");
    assert_int_equal(store_delete(s, "b", 1, 0), STORE_OK);
    assert_int_equal(store_delete(s, "b", 1, 0), STORE_ENOTFOUND);
    assert_int_equal(store_delete(s, "c", 1, 999), STORE_EVERSION);

    st = stats_of(s);
    assert_int_equal(st.sets, 5);
    assert_int_equal(st.hits, 3);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.deletes, 1);
    assert_int_equal(st.expired, 0);
    assert_int_equal(st.evicted, 0);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.entries, store_count(s));
    assert_int_equal(st.max_memory, 0);
}

/* Two stores side by side share nothing. */
static void test_stores_independent(void **state)
{
    struct store *a = open_store(state, 0, 1, STORE_EVICT_SIEVE);
    struct store *b = store_create(NULL);
    assert_non_null(b);
    assert_int_equal(set_json(a, "k", "1", 0, NULL), STORE_OK);
    assert_int_equal(set_json(b, "k", "2", 0, NULL), STORE_OK);
    assert_json(a, "k", "1");
    assert_json(b, "k", "2");
    assert_int_equal(store_flush(b), 1);
    assert_json(a, "k", "1");
    assert_int_equal(stats_of(a).sets, 1);
    store_destroy(b);
}

/* ------------------------------------------------------------------------ */
/* Memory bound and eviction                                                 */
/* ------------------------------------------------------------------------ */

static void fill_value(char *buf, size_t len, int seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)('a' + (seed + i) % 26);
}

static void test_memory_bound(void **state)
{
    const size_t max = 256 * KIB;
    struct store *s = open_store(state, max, 2, STORE_EVICT_SIEVE);
    static char value[4096];
    char key[32];
    size_t written = 0;
    unsigned rng = 12345;
    int writes = 0;

    /* Large values first, then small ones (the store's entry count climbs past anything seen
     * before, growing the tables while full), then a mix. */
    while (written < 10 * max) {
        size_t len;
        if (written < 3 * max)
            len = 2000 + writes % 1000;
        else if (written < 5 * max)
            len = 10 + writes % 40;
        else {
            rng = rng * 1103515245u + 12345u;
            len = (rng >> 8) % 4096;
        }
        snprintf(key, sizeof(key), "k%d", writes);
        fill_value(value, len, writes);
        assert_int_equal(set_kind(s, key, STORE_KIND_STRING, value, len, 0, STORE_SET_ALWAYS, 0, NULL), STORE_OK);
        written += len + strlen(key);
        writes++;
        struct store_stats st = stats_of(s);
        if (st.bytes_used > max)
            fail_msg("write %d: bytes_used %zu > max_memory %zu", writes, st.bytes_used, max);
    }

    struct store_stats st = stats_of(s);
    assert_int_equal(st.max_memory, max);
    assert_int_equal(st.sets, (uint64_t)writes);
    assert_true(st.evicted > 0);
    assert_int_equal(st.entries + st.evicted, (uint64_t)writes);
    assert_true(st.bytes_used > max / 2); /* eviction stops once there is room */

    /* Every key still held has its value intact, and the newest write is always held. */
    struct store_item item;
    size_t live = 0;
    for (int i = 0; i < writes; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        if (get(s, key, &item) != STORE_OK)
            continue;
        live++;
        char *expect = malloc(item.len + 1);
        fill_value(expect, item.len, i);
        assert_memory_equal(item.data, expect, item.len);
        free(expect);
        free(item.data);
    }
    assert_int_equal(live, st.entries);
    snprintf(key, sizeof(key), "k%d", writes - 1);
    assert_int_equal(get(s, key, &item), STORE_OK);
    free(item.data);
}

/*
 * A removed entry's bytes leave bytes_used at once and show in
 * bytes_pending_free until the entry is freed; a thread replacing large values
 * frees them after a few writes, not after 64 of them.
 */
static void test_removed_memory_is_freed_soon(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    enum { LARGE = 64 * KIB, WRITES = 200 };
    static char value[LARGE];

    assert_int_equal(set_json(s, "gone", "\"x\"", 0, NULL), STORE_OK);
    struct store_stats before = stats_of(s);
    assert_int_equal(store_delete(s, "gone", 4, 0), STORE_OK);
    struct store_stats after = stats_of(s);
    assert_true(before.bytes_used > after.bytes_used);
    assert_int_equal(after.bytes_pending_free - before.bytes_pending_free, before.bytes_used - after.bytes_used);

    size_t most_pending = 0;
    for (int i = 0; i < WRITES; i++) {
        fill_value(value, LARGE, i);
        assert_int_equal(set_kind(s, "large", STORE_KIND_STRING, value, LARGE, 0, STORE_SET_ALWAYS, 0, NULL), STORE_OK);
        size_t pending = stats_of(s).bytes_pending_free;
        most_pending = pending > most_pending ? pending : most_pending;
    }
    /* No reader holds anything, so the epoch moves whenever this thread reclaims: at most
     * 256 KiB waits, and the values retired in the last two epochs (one or two more). */
    printf("  most bytes pending while replacing %d values of %d KiB: %zu KiB\n", WRITES, LARGE / KIB,
           most_pending / KIB);
    assert_true(most_pending >= LARGE);
    assert_true(most_pending <= 256 * KIB + 2 * (LARGE + KIB));

    /* A value of 256 KiB or more is freed by its own removal, with no reader in the way. */
    static char huge[256 * KIB];
    fill_value(huge, sizeof(huge), 7);
    assert_int_equal(set_kind(s, "huge", STORE_KIND_STRING, huge, sizeof(huge), 0, STORE_SET_ALWAYS, 0, NULL),
                     STORE_OK);
    assert_int_equal(store_delete(s, "huge", 4, 0), STORE_OK);
    assert_int_equal(stats_of(s).bytes_pending_free, 0);
}

static void test_value_bigger_than_memory(void **state)
{
    const size_t max = 64 * KIB;
    struct store *s = open_store(state, max, 1, STORE_EVICT_SIEVE);
    char *big = calloc(1, max + 1);
    assert_non_null(big);
    assert_int_equal(set_json(s, "small", "1", 0, NULL), STORE_OK);
    struct store_stats before = stats_of(s);

    assert_int_equal(set_kind(s, "big", STORE_KIND_BYTES, big, max + 1, 0, STORE_SET_ALWAYS, 0, NULL), STORE_EFULL);
    /* Nearly max_memory: fits no better, since the tables take some of it; the small key may go in trying. */
    assert_int_equal(set_kind(s, "big", STORE_KIND_BYTES, big, max - 64, 0, STORE_SET_ALWAYS, 0, NULL), STORE_EFULL);
    struct store_stats after = stats_of(s);
    assert_true(after.bytes_used <= before.bytes_used);
    assert_int_equal(after.sets, before.sets);
    assert_absent(s, "big");

    /* Half of it fits. */
    assert_int_equal(set_kind(s, "big", STORE_KIND_BYTES, big, max / 2, 0, STORE_SET_ALWAYS, 0, NULL), STORE_OK);
    assert_true(stats_of(s).bytes_used <= max);
    free(big);
}

static void test_evict_none(void **state)
{
    const size_t max = 64 * KIB;
    struct store *s = open_store(state, max, 1, STORE_EVICT_NONE);
    char value[1000];
    char key[32];
    int stored = 0, rc = STORE_OK;

    while (stored < 1000) {
        snprintf(key, sizeof(key), "k%d", stored);
        fill_value(value, sizeof(value), stored);
        rc = set_kind(s, key, STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL);
        if (rc != STORE_OK)
            break;
        stored++;
    }
    assert_int_equal(rc, STORE_EFULL);
    assert_true(stored > 30); /* 64 KiB holds dozens of 1 KB values */
    assert_absent(s, key);

    struct store_stats st = stats_of(s);
    assert_int_equal(st.evicted, 0);
    assert_int_equal(st.entries, (size_t)stored);
    assert_true(st.bytes_used <= max);
    assert_int_equal(set_kind(s, "again", STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                     STORE_EFULL);
    int64_t sum;
    /* Everything written is still there. */
    for (int i = 0; i < stored; i++) {
        struct store_item item;
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(get(s, key, &item), STORE_OK);
        fill_value(value, sizeof(value), i);
        assert_memory_equal(item.data, value, sizeof(value));
        free(item.data);
    }

    /* Deleting makes room again. */
    assert_int_equal(store_delete(s, "k0", 2, 0), STORE_OK);
    assert_int_equal(store_delete(s, "k1", 2, 0), STORE_OK);
    assert_int_equal(set_kind(s, "again", STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                     STORE_OK);
    assert_int_equal(store_incr(s, "n", 1, 1, NULL, &sum, NULL), STORE_OK);
    assert_true(stats_of(s).bytes_used <= max);
    assert_int_equal(stats_of(s).evicted, 0);
}

/*
 * An increment that fails on what the key holds (not an integer, or an
 * overflow) evicts nothing either. The budget is taken up by hand, so that
 * each of these increments would have to make room.
 */
static void test_a_failing_increment_evicts_nothing(void **state)
{
    struct store *s = open_store(state, 64 * KIB, 0, STORE_EVICT_SIEVE);
    int64_t sum = 0;
    make_next_victim(s, "n", "\"x\"");
    uint64_t evicted = stats_of(s).evicted;
    atomic_fetch_add(&s->used, 4 * KIB); /* as if 4 KiB more were held: every write now needs room */
    assert_int_equal(store_incr(s, "n", 1, 1, NULL, &sum, NULL), STORE_ENOTINT);
    assert_int_equal(stats_of(s).evicted, evicted);
    atomic_fetch_sub(&s->used, 4 * KIB);

    assert_int_equal(set_json(s, "n", "9223372036854775807", 0, NULL), STORE_OK);
    evicted = stats_of(s).evicted;
    atomic_fetch_add(&s->used, 4 * KIB);
    assert_int_equal(store_incr(s, "n", 1, 1, NULL, &sum, NULL), STORE_EOVERFLOW);
    assert_int_equal(stats_of(s).evicted, evicted);
    atomic_fetch_sub(&s->used, 4 * KIB);
    assert_json(s, "n", "9223372036854775807");
}

/*
 * Without eviction, the bound is checked against what a write adds: at the
 * bound an overwrite of the same size and an increment still succeed, one
 * that grows past it is refused and changes nothing.
 */
static void test_evict_none_admits_writes_that_do_not_grow(void **state)
{
    const size_t max = 64 * KIB;
    struct store *s = open_store(state, max, 0, STORE_EVICT_NONE);
    int64_t sum = 0;
    assert_int_equal(store_incr(s, "n", 1, 1, NULL, &sum, NULL), STORE_OK);
    char value[1000], key[32];
    int stored = 0, rc;
    fill_value(value, sizeof(value), 0);
    for (;; stored++) {
        snprintf(key, sizeof(key), "k%d", stored);
        rc = set_kind(s, key, STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL);
        if (rc != STORE_OK)
            break;
    }
    assert_int_equal(rc, STORE_EFULL);
    assert_true(stored > 30);

    fill_value(value, sizeof(value), 7);
    assert_int_equal(set_kind(s, "k0", STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                     STORE_OK);
    assert_int_equal(store_incr(s, "n", 1, 1, NULL, &sum, NULL), STORE_OK);
    assert_int_equal(sum, 2);

    static char bigger[4000]; /* 3 KB more than k1 holds: more than the room left, under one 1 KB entry */
    memset(bigger, 'b', sizeof(bigger));
    assert_int_equal(set_kind(s, "k1", STORE_KIND_STRING, bigger, sizeof(bigger), 0, STORE_SET_ALWAYS, 0, NULL),
                     STORE_EFULL);
    struct store_item item;
    assert_int_equal(get(s, "k1", &item), STORE_OK);
    fill_value(value, sizeof(value), 0);
    assert_int_equal(item.len, sizeof(value));
    assert_memory_equal(item.data, value, sizeof(value));
    free(item.data);
    assert_true(stats_of(s).bytes_used <= max);
    assert_int_equal(stats_of(s).evicted, 0);
}

/*
 * Without eviction, a table that would grow past max_memory stays smaller.
 * Filling stores of many sizes with small counters until STORE_EFULL puts
 * some shard's table at its doubling point just as the store fills up.
 */
static void test_evict_none_tables_stay_bounded(void **state)
{
    char key[32];
    for (size_t max = 8 * KIB; max <= 40 * KIB; max += 512) {
        struct store *s = open_store(state, max, 1, STORE_EVICT_NONE);
        int n = 0, rc;
        int64_t sum;
        do {
            snprintf(key, sizeof(key), "c%d", n);
            rc = store_incr(s, key, strlen(key), n, NULL, &sum, NULL);
            size_t used = stats_of(s).bytes_used;
            if (used > max)
                fail_msg("max %zu, write %d: bytes_used %zu", max, n, used);
            n += rc == STORE_OK;
        } while (rc == STORE_OK);
        assert_int_equal(rc, STORE_EFULL);
        assert_int_equal(store_count(s), (size_t)n);
        for (int i = 0; i < n; i += 7) {
            char want[24];
            snprintf(key, sizeof(key), "c%d", i);
            snprintf(want, sizeof(want), "%d", i);
            assert_json(s, key, want);
        }
        store_destroy(s);
        ((struct fixture *)*state)->store = NULL;
    }
}

enum { HOT = 32 };

/*
 * Writes HOT "hot:" and HOT "unread:" keys, then 5000 "cold:" keys (300-byte
 * values each), reading every hot key once every 8 cold writes.
 */
static void write_hot_and_cold(struct store *s)
{
    char value[300];
    char key[32];
    struct store_item item;
    memset(value, 'v', sizeof(value));
    for (int i = 0; i < HOT; i++) {
        snprintf(key, sizeof(key), "hot:%d", i);
        assert_int_equal(set_kind(s, key, STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                         STORE_OK);
        snprintf(key, sizeof(key), "unread:%d", i);
        assert_int_equal(set_kind(s, key, STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                         STORE_OK);
    }
    for (int w = 0; w < 5000; w++) {
        if (w % 8 == 0) {
            for (int i = 0; i < HOT; i++) {
                snprintf(key, sizeof(key), "hot:%d", i);
                assert_int_equal(get(s, key, &item), STORE_OK);
                free(item.data);
            }
        }
        snprintf(key, sizeof(key), "cold:%d", w);
        assert_int_equal(set_kind(s, key, STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                         STORE_OK);
    }
}

/* After write_hot_and_cold: the unread and the first cold keys are gone, every hot key is there. */
static void assert_hot_kept(struct store *s)
{
    char key[32];
    struct store_item item;
    for (int i = 0; i < HOT; i++) {
        snprintf(key, sizeof(key), "unread:%d", i);
        assert_absent(s, key);
    }
    for (int w = 0; w < 100; w++) {
        snprintf(key, sizeof(key), "cold:%d", w);
        assert_absent(s, key);
    }
    /* Checked last, since a get marks the key read. */
    for (int i = 0; i < HOT; i++) {
        snprintf(key, sizeof(key), "hot:%d", i);
        if (get(s, key, &item) != STORE_OK)
            fail_msg("hot key %s was evicted", key);
        free(item.data);
    }
}

/* Whether key is stored, without reading it (a scan records no hit). */
static int present_unread(struct store *s, const char *key)
{
    size_t n = 0;
    uint64_t cursor = 0;
    do
        store_scan(s, cursor, key, strlen(key), 1000, count_key, &n, &cursor);
    while (cursor != 0);
    return n > 0;
}

/*
 * SIEVE keeps what is read. With equal-sized values, every write into a full
 * shard evicts one entry of that same shard, so each shard holds a fixed
 * number of entries (over a hundred here). The hand stops at the first
 * unvisited entry, so it moves past one cold entry per eviction and needs
 * about a shard's worth of evictions to come back to a hot entry; reading the
 * hot keys every 8 writes sets their visited bit again long before that. The
 * cold keys written at the same time and never read are the oldest entries
 * with a clear bit, so they are the first to go.
 */
static void test_sieve_keeps_visited(void **state)
{
    const size_t max = 128 * KIB;
    struct store *s = open_store(state, max, 1, STORE_EVICT_SIEVE);
    struct store_item item;
    char key[32];

    write_hot_and_cold(s);
    struct store_stats st = stats_of(s);
    assert_true(st.evicted > 4000);
    assert_true(st.entries > 200);
    /* The newest writes are all there. */
    for (int w = 4990; w < 5000; w++) {
        snprintf(key, sizeof(key), "cold:%d", w);
        assert_int_equal(get(s, key, &item), STORE_OK);
        free(item.data);
    }
    assert_hot_kept(s);
}

/*
 * The hand removes an expired entry it meets whatever its visited bit, and
 * counts it as expired, not evicted. One shard, so one queue: entries with a
 * ttl, all read, fill it, then LIVE entries that are never read. Once the
 * ttl entries expire they are the oldest, where the hand starts, and the
 * unread live entries sit behind them: a hand that went by visited bits
 * alone would skip the expired ones and take the live ones. The writes that
 * follow must displace only expired entries.
 */
#define LIVE 10
static void test_evict_takes_expired(void **state)
{
    const size_t max = 64 * KIB;
    struct store *s = open_single_shard(state, max, STORE_EVICT_SIEVE);
    char value[500];
    char key[32];
    struct store_item item;
    memset(value, 'x', sizeof(value));

    int dying = 0;
    while (stats_of(s).bytes_used + (LIVE + 2) * sizeof(value) < max) {
        snprintf(key, sizeof(key), "ttl:%d", dying++);
        assert_int_equal(set_kind(s, key, STORE_KIND_STRING, value, sizeof(value), 100, STORE_SET_ALWAYS, 0, NULL),
                         STORE_OK);
        assert_int_equal(get(s, key, &item), STORE_OK);
        free(item.data);
    }
    for (int i = 0; i < LIVE; i++) {
        snprintf(key, sizeof(key), "live:%d", i);
        assert_int_equal(set_kind(s, key, STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                         STORE_OK);
    }
    assert_true(dying > 80);
    assert_int_equal(stats_of(s).evicted, 0);
    assert_int_equal(stats_of(s).expired, 0);

    advance(state, 100);
    for (int i = 0; i < dying / 2; i++) {
        snprintf(key, sizeof(key), "new:%d", i);
        assert_int_equal(set_kind(s, key, STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                         STORE_OK);
    }
    struct store_stats st = stats_of(s);
    assert_int_equal(st.evicted, 0);
    assert_true(st.expired >= (uint64_t)dying / 2 - 2);
    assert_int_equal(st.entries + st.expired, (uint64_t)(dying + LIVE + dying / 2));
    assert_true(st.bytes_used <= max);
    for (int i = 0; i < LIVE; i++) {
        snprintf(key, sizeof(key), "live:%d", i);
        if (!present_unread(s, key))
            fail_msg("%s, live, was evicted while expired entries were left", key);
    }
    for (int i = 0; i < dying / 2; i++) {
        snprintf(key, sizeof(key), "new:%d", i);
        assert_int_equal(get(s, key, &item), STORE_OK);
        free(item.data);
    }
}
#undef LIVE

/*
 * S3-FIFO keeps what is read. New keys enter the small queue; the hot keys,
 * read every 8 writes, are read before they reach its tail and move to the
 * main queue, while the cold and unread keys, read never, leave from the
 * small queue without touching the main one. (That one read is enough is
 * pinned by test_s3fifo_promotes_an_entry_read_once.)
 */
static void test_s3fifo_keeps_frequent(void **state)
{
    const size_t max = 128 * KIB;
    struct store *s = open_store(state, max, 1, STORE_EVICT_S3FIFO);

    write_hot_and_cold(s);
    struct store_stats st = stats_of(s);
    assert_true(st.evicted > 4000);
    assert_true(st.bytes_used <= max);
    assert_hot_kept(s);
}

/*
 * The ghost: a key evicted from the small queue and written again goes
 * straight to the main queue, so a flood of one-hit wonders, which only
 * churns the small queue, no longer displaces it even though it is never
 * read. Under SIEVE the same unread key would be among the first to go.
 */
static void test_s3fifo_ghost_readmits_to_main(void **state)
{
    struct store *s = open_single_shard(state, 128 * KIB, STORE_EVICT_S3FIFO);
    char value[300];
    char key[32];
    memset(value, 'g', sizeof(value));

    /*
     * One shard, so "again", the oldest entry of its small queue, is the
     * first to go. The ghost is direct-mapped on a random hash key, and a
     * fingerprint written after "again"'s could take its slot: so nothing
     * else may be evicted before "again" returns, and its return is made
     * room for by a delete.
     */
    assert_int_equal(set_kind(s, "again", STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                     STORE_OK);
    int w = 0;
    for (; w < 5000 && stats_of(s).evicted == 0; w++) {
        snprintf(key, sizeof(key), "first:%d", w);
        assert_int_equal(set_kind(s, key, STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                         STORE_OK);
    }
    assert_int_equal(stats_of(s).evicted, 1);
    assert_false(present_unread(s, "again")); /* evicted from the small queue, unread */
    snprintf(key, sizeof(key), "first:%d", w - 1);
    assert_int_equal(store_delete(s, key, strlen(key), 0), STORE_OK);
    assert_int_equal(set_kind(s, "again", STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                     STORE_OK);
    assert_int_equal(stats_of(s).evicted, 1);
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof(key), "flood:%d", i);
        assert_int_equal(set_kind(s, key, STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                         STORE_OK);
    }
    assert_true(stats_of(s).evicted > 3000);
    assert_true(present_unread(s, "again"));
}

/* ------------------------------------------------------------------------ */
/* store_peek and store_set_ttl                                              */
/* ------------------------------------------------------------------------ */

/* A peek returns what a get would, and counts neither a hit nor a miss. */
static void test_peek_meta_and_no_counts(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    struct store_meta set_meta, meta;
    assert_int_equal(set_json(s, "k", "1", 1000, &set_meta), STORE_OK);
    assert_int_equal(set_json(s, "forever", "2", 0, NULL), STORE_OK);
    struct store_stats before = stats_of(s);

    memset(&meta, 0xa5, sizeof(meta));
    assert_int_equal(store_peek(s, "k", 1, &meta), STORE_OK);
    assert_int_equal(meta.version, set_meta.version);
    assert_int_equal(meta.ttl_ms, 1000);
    assert_false(meta.created);
    assert_int_equal(store_peek(s, "forever", 7, &meta), STORE_OK);
    assert_int_equal(meta.ttl_ms, -1);
    assert_int_equal(store_peek(s, "forever", 7, NULL), STORE_OK);
    assert_int_equal(store_peek(s, "absent", 6, &meta), STORE_ENOTFOUND);
    advance(state, 400);
    assert_int_equal(store_peek(s, "k", 1, &meta), STORE_OK);
    assert_int_equal(meta.ttl_ms, 600);
    advance(state, 600);
    assert_int_equal(store_peek(s, "k", 1, &meta), STORE_ENOTFOUND); /* expired */

    struct store_stats after = stats_of(s);
    assert_int_equal(after.hits, before.hits);
    assert_int_equal(after.misses, before.misses);
    assert_int_equal(after.sets, before.sets);
}

/*
 * Fills one shard up to its bound with "first" written first (the oldest
 * entry, where both SIEVE's hand and S3-FIFO's small queue start), touches
 * it with a peek or a get, then writes until exactly one entry is evicted.
 * Returns whether "first" survived.
 */
static int first_survives_one_eviction(void **state, enum store_eviction eviction, bool read_it)
{
    struct store *s = open_single_shard(state, 64 * KIB, eviction);
    char value[400], key[32];
    struct store_item item;
    memset(value, 'p', sizeof(value));

    assert_int_equal(set_kind(s, "first", STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                     STORE_OK);
    if (read_it) {
        assert_int_equal(get(s, "first", &item), STORE_OK);
        free(item.data);
    } else {
        assert_int_equal(store_peek(s, "first", 5, NULL), STORE_OK);
    }
    for (int w = 0; stats_of(s).evicted == 0; w++) {
        assert_true(w < 1000);
        snprintf(key, sizeof(key), "fill:%d", w);
        assert_int_equal(set_kind(s, key, STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL),
                         STORE_OK);
    }
    assert_int_equal(stats_of(s).evicted, 1);
    return present_unread(s, "first");
}

/* A peek leaves the entry as cold as it was: the first to go, where a read keeps it. */
static void test_peek_marks_nothing_sieve(void **state)
{
    assert_false(first_survives_one_eviction(state, STORE_EVICT_SIEVE, false));
    teardown(state);
    setup(state);
    assert_true(first_survives_one_eviction(state, STORE_EVICT_SIEVE, true));
}

static void test_peek_marks_nothing_s3fifo(void **state)
{
    assert_false(first_survives_one_eviction(state, STORE_EVICT_S3FIFO, false));
    teardown(state);
    setup(state);
    assert_true(first_survives_one_eviction(state, STORE_EVICT_S3FIFO, true));
}

/* Asserts key's remaining ttl (-1: none) and version, by a peek. */
static void assert_ttl(struct store *s, const char *key, int64_t ttl_ms, uint64_t version)
{
    struct store_meta meta;
    assert_int_equal(store_peek(s, key, strlen(key), &meta), STORE_OK);
    assert_int_equal(meta.ttl_ms, ttl_ms);
    assert_int_equal(meta.version, version);
}

/* An expiry is added, changed and removed; the value and the version never change. */
static void test_set_ttl(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    struct store_meta meta;
    assert_int_equal(set_json(s, "k", "[1,2]", 0, &meta), STORE_OK);
    uint64_t v = meta.version;

    memset(&meta, 0xa5, sizeof(meta));
    assert_int_equal(store_set_ttl(s, "k", 1, 1000, 0, &meta), STORE_OK); /* added */
    assert_int_equal(meta.version, v);
    assert_int_equal(meta.ttl_ms, 1000);
    assert_false(meta.created);
    assert_ttl(s, "k", 1000, v);
    advance(state, 400);
    assert_ttl(s, "k", 600, v);
    assert_int_equal(store_set_ttl(s, "k", 1, 5000, v, &meta), STORE_OK); /* changed, on its version */
    assert_int_equal(meta.ttl_ms, 5000);
    advance(state, 4999);
    assert_ttl(s, "k", 1, v);
    assert_int_equal(store_set_ttl(s, "k", 1, 0, 0, &meta), STORE_OK); /* removed */
    assert_int_equal(meta.ttl_ms, -1);
    assert_int_equal(meta.version, v);
    advance(state, 1000000);
    assert_ttl(s, "k", -1, v);
    assert_int_equal(store_set_ttl(s, "k", 1, 0, 0, &meta), STORE_OK); /* nothing to remove */
    assert_ttl(s, "k", -1, v);
    assert_json(s, "k", "[1,2]");
    assert_int_equal(version_of(s, "k"), v);

    assert_int_equal(store_set_ttl(s, "k", 1, 100, 0, NULL), STORE_OK);
    advance(state, 100);
    assert_int_equal(store_set_ttl(s, "k", 1, 1000, 0, &meta), STORE_ENOTFOUND); /* expired */
    assert_absent(s, "k");
    assert_int_equal(store_set_ttl(s, "absent", 6, 1000, 0, &meta), STORE_ENOTFOUND);
    assert_int_equal(stats_of(s).entries, 1); /* the expired entry, not yet reclaimed */
}

static void test_set_ttl_conditions(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_SIEVE);
    struct store_meta meta;
    assert_int_equal(set_json(s, "k", "1", 1000, &meta), STORE_OK);
    uint64_t v = meta.version;

    assert_int_equal(store_set_ttl(s, "k", 1, 50, v + 1, &meta), STORE_EVERSION);
    assert_int_equal(store_set_ttl(s, "k", 1, -1, 0, &meta), STORE_EINVAL);
    assert_int_equal(store_set_ttl(s, "k", 1, INT64_MAX, 0, &meta), STORE_EINVAL);
    assert_ttl(s, "k", 1000, v); /* untouched */
    assert_int_equal(store_set_ttl(s, "k", 1, 50, v, NULL), STORE_OK);
    assert_ttl(s, "k", 50, v);
    /* A write after it gives a new version, and the old one no longer matches. */
    assert_int_equal(set_json(s, "k", "2", 0, &meta), STORE_OK);
    assert_true(meta.version != v);
    assert_int_equal(store_set_ttl(s, "k", 1, 50, v, NULL), STORE_EVERSION);
    assert_ttl(s, "k", -1, meta.version);
}

/* The copy keeps every part of the entry: kind, content type, a value with NUL, a large value. */
static void test_set_ttl_keeps_the_entry(void **state)
{
    struct store *s = open_store(state, 0, 2, STORE_EVICT_S3FIFO);
    struct store_value v = {
        .kind = STORE_KIND_BYTES, .data = "a\0b", .len = 3, .content_type = "image/png", .content_type_len = 9};
    struct store_meta meta;
    struct store_item item;
    assert_int_equal(store_set(s, "b", 1, &v, NULL, &meta), STORE_OK);
    assert_int_equal(store_set_ttl(s, "b", 1, 10, 0, NULL), STORE_OK);
    assert_int_equal(get(s, "b", &item), STORE_OK);
    assert_int_equal(item.kind, STORE_KIND_BYTES);
    assert_int_equal(item.len, 3);
    assert_memory_equal(item.data, "a\0b", 3);
    assert_string_equal(item.content_type, "image/png");
    assert_int_equal(item.meta.version, meta.version);
    assert_int_equal(item.meta.ttl_ms, 10);
    free(item.data);

    size_t big = 100 * KIB; /* an entry past a slab slot: header and malloc'd body */
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)(i * 7);
    assert_int_equal(set_kind(s, "big", STORE_KIND_STRING, data, big, 0, STORE_SET_ALWAYS, 0, NULL), STORE_OK);
    assert_int_equal(store_set_ttl(s, "big", 3, 10, 0, NULL), STORE_OK);
    assert_int_equal(get(s, "big", &item), STORE_OK);
    assert_int_equal(item.len, big);
    assert_memory_equal(item.data, data, big);
    free(item.data);
    free(data);
    advance(state, 10);
    assert_absent(s, "big");
    assert_absent(s, "b");
    assert_int_equal(store_expire_step(s, 1u << 20), 2);
    assert_int_equal(stats_of(s).entries, 0);
}

/*
 * S3-FIFO moves an entry read once, not only one read twice, from the small
 * queue to the main one (s3fifo.c: "read at least once" measured better
 * than the paper's "more than once"). "first" is the small queue's tail
 * when the first eviction comes; read exactly once, it must survive it.
 */
static void test_s3fifo_promotes_an_entry_read_once(void **state)
{
    assert_true(first_survives_one_eviction(state, STORE_EVICT_S3FIFO, true));
}

/* Opens a one-shard noeviction store, writes "a" then "b" (100 bytes each), returns bytes_used; *rc_b: b's code. */
static size_t bytes_for_two(void **state, size_t max, int *rc_b)
{
    struct fixture *fx = *state;
    store_destroy(fx->store);
    struct store *s = open_single_shard(state, max, STORE_EVICT_NONE);
    char value[100];
    memset(value, 'n', sizeof(value));
    assert_int_equal(set_kind(s, "a", STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL), STORE_OK);
    *rc_b = set_kind(s, "b", STORE_KIND_STRING, value, sizeof(value), 0, STORE_SET_ALWAYS, 0, NULL);
    return stats_of(s).bytes_used;
}

/*
 * Under noeviction the bound is inclusive: a write whose bytes land exactly
 * on max_memory succeeds, and the same write with one byte less of room is
 * refused, leaving the store as it was. Measured on a store with room to
 * spare, then replayed on stores bounded at exactly that total and one byte
 * under it (noeviction keeps no credit, so the total is exact).
 */
static void test_evict_none_bound_is_exact(void **state)
{
    int rc;
    size_t exact = bytes_for_two(state, 1u << 20, &rc);
    assert_int_equal(rc, STORE_OK);

    assert_int_equal(bytes_for_two(state, exact, &rc), exact);
    assert_int_equal(rc, STORE_OK);

    size_t one_a = bytes_for_two(state, exact - 1, &rc);
    assert_int_equal(rc, STORE_EFULL);
    assert_true(one_a < exact);
    assert_int_equal(stats_of(((struct fixture *)*state)->store).entries, 1);
    assert_int_equal(stats_of(((struct fixture *)*state)->store).evicted, 0);
}

/*
 * Opens a one-shard noeviction store bounded at max and writes keys g0, g1,
 * ... up to g<last> (every one must succeed); returns bytes_used, and in
 * *before_last what it was before the last write.
 */
static size_t bytes_for_keys(void **state, size_t max, int last, size_t *before_last)
{
    struct fixture *fx = *state;
    store_destroy(fx->store);
    struct store *s = open_single_shard(state, max, STORE_EVICT_NONE);
    char key[16];
    for (int i = 0; i <= last; i++) {
        *before_last = stats_of(s).bytes_used;
        snprintf(key, sizeof(key), "g%d", i);
        assert_int_equal(set_json(s, key, "1", 0, NULL), STORE_OK);
    }
    return stats_of(s).bytes_used;
}

/*
 * A hash table's growth counts against the bound like an entry, and as
 * inclusively: under noeviction a growth that lands exactly on max_memory
 * happens, one that would pass it by a byte does not (the write that caused
 * it still succeeds, on the smaller table). The write whose bytes jump by
 * more than an entry's is the one that grew the table; replayed on stores
 * bounded at exactly the total it reached, and one byte under. A table
 * counts as much as malloc_usable_size says, which the heap's state can
 * move by a few bytes between two stores: the replay at the bound must grow
 * and stay within it (landing exactly on it in the usual run), the one a
 * byte under must not go past it.
 */
static void test_evict_none_table_growth_bound_is_exact(void **state)
{
    struct store *s = open_single_shard(state, 1u << 20, STORE_EVICT_NONE);
    size_t before = stats_of(s).bytes_used, entry = 0, grown = 0;
    char key[16];
    int last = 0;
    for (; last < 10000 && grown == 0; last++) {
        snprintf(key, sizeof(key), "g%d", last);
        assert_int_equal(set_json(s, key, "1", 0, NULL), STORE_OK);
        size_t used = stats_of(s).bytes_used;
        if (entry == 0 && last == 1)
            entry = used - before; /* g0 may have been the first of anything; g1 is an entry alone */
        else if (entry != 0 && used - before > entry)
            grown = used;
        before = used;
    }
    last--; /* the write that grew the table */
    if (grown == 0)
        fail_msg("no write among %d grew the table", last + 1);

    size_t before_last, replay = bytes_for_keys(state, grown, last, &before_last);
    if (replay > grown || replay - before_last <= entry)
        fail_msg("bounded at %zu, the write of g%d took the store from %zu to %zu bytes: no growth within the bound",
                 grown, last, before_last, replay);
    size_t under = bytes_for_keys(state, grown - 1, last, &before_last);
    assert_true(under < grown);
    assert_int_equal(stats_of(((struct fixture *)*state)->store).entries, (size_t)last + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_siphash_vectors),
        T(test_create_config),
        T(test_strerror),
        T(test_json_round_trip),
        T(test_string_with_nul),
        T(test_bytes_with_content_type),
        T(test_large_entry_round_trip),
        T(test_empty_value_and_key),
        T(test_prefetch_changes_nothing),
        T(test_longest_key),
        T(test_invalid_args),
        T(test_get_alloc_failure),
        T(test_replace),
        T(test_set_if_absent),
        T(test_set_if_version),
        T(test_delete),
        T(test_incr),
        T(test_incr_not_integer),
        T(test_incr_overflow),
        T(test_incr_ttl),
        T(test_ttl_expiry),
        T(test_clock_below_zero),
        T(test_expire_step),
        T(test_scan_every_key),
        T(test_a_write_is_never_evicted_by_its_own_growth),
        T(test_a_full_store_evicts_one_entry_per_write_of_the_same_size),
        T(test_a_write_at_the_bound_spares_its_own_key),
        T(test_a_failing_conditional_write_evicts_nothing),
        T(test_a_failing_increment_evicts_nothing),
        T(test_scan_while_growing),
        T(test_flush),
        T(test_stats_counters),
        T(test_stores_independent),
        T(test_memory_bound),
        T(test_removed_memory_is_freed_soon),
        T(test_value_bigger_than_memory),
        T(test_evict_none),
        T(test_evict_none_admits_writes_that_do_not_grow),
        T(test_evict_none_tables_stay_bounded),
        T(test_sieve_keeps_visited),
        T(test_evict_takes_expired),
        T(test_s3fifo_keeps_frequent),
        T(test_s3fifo_ghost_readmits_to_main),
        T(test_peek_meta_and_no_counts),
        T(test_peek_marks_nothing_sieve),
        T(test_peek_marks_nothing_s3fifo),
        T(test_set_ttl),
        T(test_set_ttl_conditions),
        T(test_set_ttl_keeps_the_entry),
        T(test_s3fifo_promotes_an_entry_read_once),
        T(test_evict_none_bound_is_exact),
        T(test_evict_none_table_growth_bound_is_exact),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
