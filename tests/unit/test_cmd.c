/*
 * The command layer (src/cmd/) on a real store, with no HTTP: key and value
 * checks, the reading of TTLs, batches, conditional writes, side-effect-free
 * peeks, expiry changes and the wording of refusals. Each test opens its own
 * store with a clock the test owns, so remaining TTLs are exact.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cachette/store.h"
#include "cmd/batch.h"
#include "cmd/cmd.h"
#include "cmd/cond.h"
#include "cmd/ttl.h"

struct fixture {
    struct cmd_ctx ctx;
    int64_t now; /* the store's clock, in ms */
};

static int64_t test_clock(void *arg)
{
    return ((struct fixture *)arg)->now;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    fx->now = 1000000;
    struct store_config cfg = {.clock = test_clock, .clock_ctx = fx};
    fx->ctx.store = store_create(&cfg);
    fx->ctx.limits = (struct cmd_limits){.max_key_bytes = 16, .max_value_bytes = 64, .max_batch = 8};
    *state = fx;
    return fx->ctx.store == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    store_destroy(fx->ctx.store);
    free(fx);
    return 0;
}

static struct store_value json_value(const char *text)
{
    return (struct store_value){.kind = STORE_KIND_JSON, .data = text, .len = strlen(text)};
}

/* Sets key to the JSON text; asserts it was written. Returns the new version. */
static uint64_t put(const struct cmd_ctx *ctx, const char *key, const char *text)
{
    struct store_value v = json_value(text);
    struct store_meta meta;
    enum cmd_status st = cmd_set(ctx, key, strlen(key), &v, 0, CMD_UNCONDITIONAL, &meta);
    assert_true(st == CMD_OK || st == CMD_CREATED);
    return meta.version;
}

/* ---- keys and values ---------------------------------------------------- */

static void keys_are_checked(void **state)
{
    struct fixture *fx = *state;
    const struct cmd_ctx *ctx = &fx->ctx;
    assert_int_equal(cmd_check_key(ctx, 1), CMD_OK);
    assert_int_equal(cmd_check_key(ctx, 0), CMD_BAD_KEY);
    assert_int_equal(cmd_check_key(ctx, 16), CMD_OK);
    assert_int_equal(cmd_check_key(ctx, 17), CMD_KEY_TOO_LONG);
    struct store_value v = json_value("1");
    assert_int_equal(cmd_set(ctx, "0123456789abcdefg", 17, &v, 0, CMD_UNCONDITIONAL, NULL), CMD_KEY_TOO_LONG);
    assert_int_equal(store_count(ctx->store), 0);

    /* Any bytes make a key, NUL and bytes that are not UTF-8 included: each of these is its own entry. */
    static const struct {
        const char *key;
        size_t len;
    } binary[] = {{"a\0b", 3}, {"a\0c", 3}, {"\xff", 1}, {"\xff\xfe", 2}, {"a", 1}};
    for (size_t i = 0; i < sizeof(binary) / sizeof(binary[0]); i++) {
        static const char *const lengths_tell_them_apart[] = {"1", "22", "333", "4444", "55555"};
        v = json_value(lengths_tell_them_apart[i]);
        assert_int_equal(cmd_set(ctx, binary[i].key, binary[i].len, &v, 0, CMD_UNCONDITIONAL, NULL), CMD_CREATED);
    }
    for (size_t i = 0; i < sizeof(binary) / sizeof(binary[0]); i++) {
        struct store_item item;
        assert_int_equal(cmd_get(ctx, binary[i].key, binary[i].len, NULL, NULL, &item), CMD_OK);
        assert_int_equal(item.len, i + 1);
    }
}

static void values_are_checked_content_type_included(void **state)
{
    struct fixture *fx = *state;
    const struct cmd_ctx *ctx = &fx->ctx;
    char type[STORE_MAX_CONTENT_TYPE_LEN + 2], big[66];
    memset(type, 't', sizeof(type));
    memset(big, 'v', sizeof(big));
    struct store_value bytes = {.kind = STORE_KIND_BYTES, .data = "x", .len = 1, .content_type = type};

    bytes.content_type_len = STORE_MAX_CONTENT_TYPE_LEN;
    assert_int_equal(cmd_check_value(ctx, &bytes, 0), CMD_OK);
    bytes.content_type_len = STORE_MAX_CONTENT_TYPE_LEN + 1;
    assert_int_equal(cmd_check_value(ctx, &bytes, 0), CMD_CONTENT_TYPE_TOO_LONG);
    /* What any front gets from a write, not the store's EINVAL read as a bad TTL. */
    assert_int_equal(cmd_set(ctx, "ct", 2, &bytes, 0, CMD_UNCONDITIONAL, NULL), CMD_CONTENT_TYPE_TOO_LONG);
    assert_int_equal(store_count(ctx->store), 0);

    struct store_value v = {.kind = STORE_KIND_STRING, .data = big, .len = 64};
    assert_int_equal(cmd_check_value(ctx, &v, 0), CMD_OK);
    v.len = 65;
    assert_int_equal(cmd_check_value(ctx, &v, 0), CMD_VALUE_TOO_LARGE);
    v.len = 1;
    v.kind = (enum store_kind)7;
    assert_int_equal(cmd_check_value(ctx, &v, 0), CMD_BAD_VALUE);
    v.kind = STORE_KIND_STRING;
    assert_int_equal(cmd_check_value(ctx, &v, -1), CMD_BAD_TTL);
    assert_int_equal(cmd_check_value(ctx, &v, CMD_MAX_TTL_MS), CMD_OK);
    assert_int_equal(cmd_check_value(ctx, &v, CMD_MAX_TTL_MS + 1), CMD_BAD_TTL);
}

/* ---- TTLs --------------------------------------------------------------- */

static void ttls_are_seconds_above_zero_to_the_millisecond(void **state)
{
    (void)state;
    static const struct {
        double seconds;
        int64_t ms; /* 0: refused */
    } cases[] = {
        {3600.0, 3600000}, {1.5, 1500},        {0.0001, 1},   {0.29, 290},  {1.1, 1100}, {1.0005, 1001},
        {2.007, 2007}, /* 2.007 * 1000 is 2007.0000000000002 in binary: noise, not a remainder to round up */
        {300000000.0002, 300000000001}, /* a real 0.2 ms fraction of a large TTL, not noise: rounded up */
        {1, 1000},         {315360000, CMD_MAX_TTL_MS},        {315360000.0005, 0},      {315360001, 0},
        {1e300, 0},        {0, 0},            {-0.0, 0},     {-1, 0},      {-0.5, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -7;
        enum cmd_status st = cmd_ttl_from_seconds(cases[i].seconds, &ms);
        if (cases[i].ms == 0) {
            if (st != CMD_BAD_TTL || ms != -7)
                fail_msg("%.17g s: expected a refusal, got %d (%lld ms)", cases[i].seconds, st, (long long)ms);
        } else if (st != CMD_OK || ms != cases[i].ms) {
            fail_msg("%.17g s: expected %lld ms, got %d (%lld ms)", cases[i].seconds, (long long)cases[i].ms, st,
                     (long long)ms);
        }
    }
    int64_t ms = 0;
    assert_int_equal(cmd_ttl_from_seconds(NAN, &ms), CMD_BAD_TTL);
    assert_int_equal(cmd_ttl_from_seconds(INFINITY, &ms), CMD_BAD_TTL);
    assert_int_equal(cmd_ttl_from_seconds(-INFINITY, &ms), CMD_BAD_TTL);
}

static void ttl_text_reads_as_a_json_number(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms; /* 0: refused */
    } cases[] = {
        {"3600", 3600000}, {"3600.0", 3600000}, {"1.5", 1500}, {"0.0001", 1}, {"36e2", 3600000}, {"1E-3", 1},
        {"2.007", 2007},   {"300000000.0002", 300000000001},
        {"007", 7000},     {"315360000", CMD_MAX_TTL_MS},      {"315360001", 0}, {"0", 0},       {"0.0", 0},
        {"", 0},           {"-1", 0},          {"+1", 0},      {"nan", 0},    {"NaN", 0},       {"inf", 0},
        {"0x10", 0},       {"1.", 0},          {".5", 0},      {" 5", 0},     {"5 ", 0},        {"1e", 0},
        {"1e400", 0},      {"1,5", 0},         {"5s", 0},      {"99999999999999999999", 0},
        {"000000000000000000000000000000001", 0}, /* 33 characters: longer than any TTL needs */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -7;
        enum cmd_status st = cmd_ttl_parse(cases[i].text, strlen(cases[i].text), &ms);
        if (cases[i].ms == 0) {
            if (st != CMD_BAD_TTL || ms != -7)
                fail_msg("\"%s\": expected a refusal, got %d (%lld ms)", cases[i].text, st, (long long)ms);
        } else if (st != CMD_OK || ms != cases[i].ms) {
            fail_msg("\"%s\": expected %lld ms, got %d (%lld ms)", cases[i].text, (long long)cases[i].ms, st,
                     (long long)ms);
        }
    }
    /* The text is not read past its length (no NUL needed). */
    int64_t ms = 0;
    assert_int_equal(cmd_ttl_parse("15x", 2, &ms), CMD_OK);
    assert_int_equal(ms, 15000);
}

/* ---- NULL meta ----------------------------------------------------------- */

static void writes_take_a_null_meta(void **state)
{
    struct fixture *fx = *state;
    const struct cmd_ctx *ctx = &fx->ctx;
    struct store_value v = json_value("5");
    assert_int_equal(cmd_set(ctx, "m", 1, &v, 0, CMD_UNCONDITIONAL, NULL), CMD_CREATED);
    assert_int_equal(cmd_set(ctx, "m", 1, &v, 0, CMD_UNCONDITIONAL, NULL), CMD_OK);
    int64_t sum = 0;
    assert_int_equal(cmd_incr(ctx, "m", 1, 2, 0, CMD_UNCONDITIONAL, &sum, NULL), CMD_OK);
    assert_int_equal(sum, 7);
    assert_int_equal(cmd_incr(ctx, "n", 1, 1, 0, CMD_UNCONDITIONAL, NULL, NULL), CMD_CREATED);
    assert_int_equal(cmd_set_if(ctx, "m", 1, &v, 0, NULL, NULL), CMD_OK);
    assert_int_equal(cmd_incr_if(ctx, "m", 1, 1, 0, NULL, NULL, NULL), CMD_OK);
}

/* ---- batches ------------------------------------------------------------- */

static void mset_with_a_bad_item_anywhere_writes_nothing(void **state)
{
    struct fixture *fx = *state;
    const struct cmd_ctx *ctx = &fx->ctx;
    put(ctx, "keep", "\"old\"");
    char type[STORE_MAX_CONTENT_TYPE_LEN + 1];
    memset(type, 't', sizeof(type));
    struct cmd_item bad[] = {
        {.key = "", .key_len = 0, .value = json_value("1")},
        {.key = "0123456789abcdefg", .key_len = 17, .value = json_value("1")},
        {.key = "x", .key_len = 1, .value = json_value("1"), .ttl_ms = -1},
        {.key = "x", .key_len = 1, .value = json_value("1"), .ttl_ms = CMD_MAX_TTL_MS + 1},
        {.key = "x",
         .key_len = 1,
         .value = {.kind = STORE_KIND_BYTES, .data = "b", .len = 1, .content_type = type, .content_type_len = sizeof(type)}},
        {.key = "x", .key_len = 1, .value = {.kind = STORE_KIND_STRING, .data = type, .len = 65}},
    };
    static const enum cmd_status why[] = {CMD_BAD_KEY, CMD_KEY_TOO_LONG, CMD_BAD_TTL,
                                          CMD_BAD_TTL, CMD_CONTENT_TYPE_TOO_LONG, CMD_VALUE_TOO_LARGE};
    for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
        /* Good items on both sides of the bad one; the first replaces "keep". */
        struct cmd_item items[] = {
            {.key = "keep", .key_len = 4, .value = json_value("\"new\"")},
            {.key = "b1", .key_len = 2, .value = json_value("1")},
            bad[b],
            {.key = "b2", .key_len = 2, .value = json_value("2")},
        };
        struct cmd_mset_result res;
        assert_int_equal(cmd_mset(ctx, items, 4, &res), why[b]);
        assert_int_equal(res.failed_at, 2);
        assert_int_equal(res.stored, 0);
        assert_false(res.checked);
        assert_int_equal(store_count(ctx->store), 1);
        struct store_item item;
        assert_int_equal(cmd_get(ctx, "keep", 4, NULL, NULL, &item), CMD_OK);
        assert_int_equal(item.len, 5); /* "old" with its quotes, not "new" */
    }
    struct cmd_item good[] = {
        {.key = "keep", .key_len = 4, .value = json_value("1")},
        {.key = "g", .key_len = 1, .value = json_value("2"), .ttl_ms = 1500},
    };
    struct cmd_mset_result res;
    assert_int_equal(cmd_mset(ctx, good, 2, &res), CMD_OK);
    assert_int_equal(res.stored, 2);
    assert_true(res.checked);
    struct store_meta meta;
    assert_int_equal(cmd_peek(ctx, "g", 1, &meta), CMD_OK);
    assert_int_equal(meta.ttl_ms, 1500);
}

static void batches_over_max_batch_are_refused_whole(void **state)
{
    struct fixture *fx = *state;
    const struct cmd_ctx *ctx = &fx->ctx;
    struct cmd_item items[9];
    struct cmd_read reads[9];
    char keys[9][4];
    for (int i = 0; i < 9; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        items[i] = (struct cmd_item){.key = keys[i], .key_len = strlen(keys[i]), .value = json_value("1")};
        reads[i] = (struct cmd_read){.key = keys[i], .key_len = strlen(keys[i])};
    }
    struct cmd_mset_result res;
    size_t done;
    assert_int_equal(cmd_mset(ctx, items, 9, &res), CMD_BATCH_TOO_LARGE);
    assert_int_equal(store_count(ctx->store), 0);
    assert_int_equal(cmd_mget(ctx, reads, 9, NULL, NULL, NULL, NULL, &done), CMD_BATCH_TOO_LARGE);
    assert_int_equal(done, 0);
    assert_int_equal(cmd_mset(ctx, items, 8, &res), CMD_OK);
    assert_int_equal(res.stored, 8);
    assert_int_equal(cmd_mget(ctx, reads, 8, NULL, NULL, NULL, NULL, &done), CMD_OK);
    assert_int_equal(done, 8);
}

/* cmd_read_fn: counts calls, stops after *arg of them. */
static int stop_after(void *arg, size_t i, const struct cmd_read *read)
{
    (void)read;
    return i + 1 >= *(size_t *)arg;
}

static void mget_reads_in_order_and_stops_when_asked(void **state)
{
    struct fixture *fx = *state;
    const struct cmd_ctx *ctx = &fx->ctx;
    put(ctx, "a", "1");
    put(ctx, "b", "22");
    struct cmd_read reads[] = {
        {.key = "a", .key_len = 1}, {.key = "nope", .key_len = 4}, {.key = "b", .key_len = 1},
        {.key = "a", .key_len = 1}, {.key = "", .key_len = 0},
    };
    size_t done, stop = 100;
    assert_int_equal(cmd_mget(ctx, reads, 5, NULL, NULL, stop_after, &stop, &done), CMD_OK);
    assert_int_equal(done, 5);
    static const bool found[] = {true, false, true, true, false};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(reads[i].found, found[i]);
    assert_int_equal(reads[2].item.len, 2);
    stop = 2;
    assert_int_equal(cmd_mget(ctx, reads, 5, NULL, NULL, stop_after, &stop, &done), CMD_OK);
    assert_int_equal(done, 2);
}

/* ---- conditional writes ---------------------------------------------------- */

static void conditions_hold_or_change_nothing(void **state)
{
    struct fixture *fx = *state;
    const struct cmd_ctx *ctx = &fx->ctx;
    struct store_value v = json_value("2");
    struct store_meta meta;
    struct cmd_precondition if_exists = {.kind = CMD_PRE_IF_EXISTS}, if_absent = {.kind = CMD_PRE_IF_ABSENT};

    /* Absent: if-exists creates nothing, if-absent creates. */
    assert_int_equal(cmd_set_if(ctx, "c", 1, &v, 0, &if_exists, NULL), CMD_VERSION_MISMATCH);
    assert_int_equal(cmd_incr_if(ctx, "c", 1, 1, 0, &if_exists, NULL, NULL), CMD_VERSION_MISMATCH);
    assert_int_equal(cmd_delete_if(ctx, "c", 1, &if_exists), CMD_VERSION_MISMATCH);
    assert_int_equal(store_count(ctx->store), 0);
    assert_int_equal(cmd_set_if(ctx, "c", 1, &v, 0, &if_absent, &meta), CMD_CREATED);
    uint64_t v1 = meta.version;
    assert_int_equal(cmd_set_if(ctx, "c", 1, &v, 0, &if_absent, NULL), CMD_VERSION_MISMATCH);

    /* If-version: only the version named. */
    struct cmd_precondition old = {.kind = CMD_PRE_IF_VERSION, .version = v1 + 1000};
    assert_int_equal(cmd_set_if(ctx, "c", 1, &v, 0, &old, NULL), CMD_VERSION_MISMATCH);
    assert_int_equal(cmd_delete_if(ctx, "c", 1, &old), CMD_VERSION_MISMATCH);
    assert_int_equal(cmd_incr_if(ctx, "c", 1, 1, 0, &old, NULL, NULL), CMD_VERSION_MISMATCH);
    assert_int_equal(cmd_peek(ctx, "c", 1, &meta), CMD_OK);
    assert_int_equal(meta.version, v1);
    struct cmd_precondition cur = {.kind = CMD_PRE_IF_VERSION, .version = v1};
    int64_t sum;
    assert_int_equal(cmd_incr_if(ctx, "c", 1, 3, 0, &cur, &sum, &meta), CMD_OK);
    assert_int_equal(sum, 5);
    assert_int_not_equal(meta.version, v1);
    /* The version it was pinned to is gone now. */
    assert_int_equal(cmd_delete_if(ctx, "c", 1, &cur), CMD_VERSION_MISMATCH);
    cur.version = meta.version;
    assert_int_equal(cmd_delete_if(ctx, "c", 1, &cur), CMD_OK);
    assert_int_equal(store_count(ctx->store), 0);

    /* A condition that holds on an absent entry deletes nothing: there is nothing. */
    assert_int_equal(cmd_delete_if(ctx, "c", 1, &if_absent), CMD_NOT_FOUND);
    /* Checks come first: a bad value is refused whatever the condition. */
    v.len = 65;
    assert_int_equal(cmd_set_if(ctx, "c", 1, &v, 0, &if_exists, NULL), CMD_VALUE_TOO_LARGE);
    assert_int_equal(cmd_incr_if(ctx, "c", 1, 1, -5, &if_exists, NULL, NULL), CMD_BAD_TTL);
}

/*
 * A test that writes the key the first time it is asked, as another client
 * would between the check and the write. (cond.h forbids a test to call into
 * the store; this one breaks the rule on purpose, to make the race happen
 * every time.) It holds only on the version it was given.
 */
struct racing_test {
    const struct cmd_ctx *ctx;
    uint64_t want;  /* holds on this version only */
    int calls;
    uint64_t newer; /* the version it wrote */
    bool deletes;   /* deletes the key instead of writing it */
};

static bool race_then_match(void *arg, bool exists, uint64_t version)
{
    struct racing_test *t = arg;
    if (t->calls++ == 0 && t->deletes)
        assert_int_equal(cmd_delete(t->ctx, "r", 1, 0), CMD_OK);
    else if (t->calls == 1)
        t->newer = put(t->ctx, "r", "\"newer\"");
    return exists && version == t->want;
}

static void a_pinned_write_never_touches_the_entry_written_after_its_check(void **state)
{
    struct fixture *fx = *state;
    const struct cmd_ctx *ctx = &fx->ctx;
    struct store_value v = json_value("\"mine\"");
    struct racing_test t = {.ctx = ctx, .want = put(ctx, "r", "\"first\"")};
    struct cmd_precondition pre = {.kind = CMD_PRE_TEST, .test = race_then_match, .test_arg = &t};

    /* The delete was checked on "first": it must not delete "newer", and the re-check fails. */
    assert_int_equal(cmd_delete_if(ctx, "r", 1, &pre), CMD_VERSION_MISMATCH);
    assert_int_equal(t.calls, 2);
    struct store_meta meta;
    assert_int_equal(cmd_peek(ctx, "r", 1, &meta), CMD_OK);
    assert_int_equal(meta.version, t.newer);

    /* The same for a write and an increment. */
    t = (struct racing_test){.ctx = ctx, .want = meta.version};
    assert_int_equal(cmd_set_if(ctx, "r", 1, &v, 0, &pre, NULL), CMD_VERSION_MISMATCH);
    assert_int_equal(cmd_peek(ctx, "r", 1, &meta), CMD_OK);
    assert_int_equal(meta.version, t.newer);
    t = (struct racing_test){.ctx = ctx, .want = meta.version};
    assert_int_equal(cmd_incr_if(ctx, "r", 1, 1, 0, &pre, NULL, NULL), CMD_VERSION_MISMATCH);
    assert_int_equal(cmd_peek(ctx, "r", 1, &meta), CMD_OK);
    assert_int_equal(meta.version, t.newer);

    /* Deleted by another client in between: re-checked on the absent entry, 412, not 404. */
    t = (struct racing_test){.ctx = ctx, .want = meta.version, .deletes = true};
    assert_int_equal(cmd_delete_if(ctx, "r", 1, &pre), CMD_VERSION_MISMATCH);
    assert_int_equal(t.calls, 2);
}

/* ---- peek and set_ttl ------------------------------------------------------ */

static void preconditions_are_checked_without_side_effects(void **state)
{
    struct fixture *fx = *state;
    const struct cmd_ctx *ctx = &fx->ctx;
    uint64_t version = put(ctx, "p", "1");
    struct store_stats before, after;
    store_stats(ctx->store, &before);
    struct store_meta meta;
    assert_int_equal(cmd_peek(ctx, "p", 1, &meta), CMD_OK);
    assert_int_equal(meta.version, version);
    assert_int_equal(meta.ttl_ms, -1);
    assert_int_equal(cmd_peek(ctx, "absent", 6, NULL), CMD_NOT_FOUND);
    assert_int_equal(cmd_peek(ctx, "", 0, NULL), CMD_NOT_FOUND);
    struct store_value v = json_value("2");
    struct cmd_precondition pre = {.kind = CMD_PRE_IF_VERSION, .version = version};
    assert_int_equal(cmd_set_if(ctx, "p", 1, &v, 0, &pre, NULL), CMD_OK);
    assert_int_equal(cmd_delete_if(ctx, "absent", 6, &pre), CMD_VERSION_MISMATCH);
    store_stats(ctx->store, &after);
    assert_int_equal(after.hits, before.hits);
    assert_int_equal(after.misses, before.misses);
}

static void set_ttl_changes_only_the_expiry(void **state)
{
    struct fixture *fx = *state;
    const struct cmd_ctx *ctx = &fx->ctx;
    uint64_t version = put(ctx, "t", "1");
    struct store_meta meta;
    assert_int_equal(cmd_set_ttl(ctx, "t", 1, 1500, 0, &meta), CMD_OK);
    assert_int_equal(meta.version, version);
    assert_int_equal(meta.ttl_ms, 1500);
    assert_int_equal(cmd_set_ttl(ctx, "t", 1, CMD_MAX_TTL_MS + 1, 0, NULL), CMD_BAD_TTL);
    assert_int_equal(cmd_set_ttl(ctx, "t", 1, -1, 0, NULL), CMD_BAD_TTL);
    assert_int_equal(cmd_set_ttl(ctx, "t", 1, 5000, version + 1000, NULL), CMD_VERSION_MISMATCH);
    assert_int_equal(cmd_set_ttl(ctx, "absent", 6, 5000, 0, NULL), CMD_NOT_FOUND);
    assert_int_equal(cmd_set_ttl(ctx, "0123456789abcdefg", 17, 5000, 0, NULL), CMD_KEY_TOO_LONG);
    assert_int_equal(cmd_set_ttl(ctx, "", 0, 5000, 0, NULL), CMD_BAD_KEY);
    assert_int_equal(cmd_peek(ctx, "t", 1, &meta), CMD_OK);
    assert_int_equal(meta.ttl_ms, 1500);
    /* 0: never expires, and the entry outlives its old deadline. */
    assert_int_equal(cmd_set_ttl(ctx, "t", 1, 0, version, &meta), CMD_OK);
    assert_int_equal(meta.ttl_ms, -1);
    fx->now += 2000;
    assert_int_equal(cmd_peek(ctx, "t", 1, &meta), CMD_OK);
    assert_int_equal(meta.version, version);
}

/* ---- messages ------------------------------------------------------------- */

static void messages_are_formatted_from_the_limits(void **state)
{
    struct fixture *fx = *state;
    char buf[160];
    cmd_status_message(&fx->ctx, CMD_KEY_TOO_LONG, buf, sizeof(buf));
    assert_string_equal(buf, "key is longer than max-key-bytes (16)");
    cmd_status_message(&fx->ctx, CMD_VALUE_TOO_LARGE, buf, sizeof(buf));
    assert_string_equal(buf, "value is larger than max-value-bytes (64)");
    cmd_status_message(&fx->ctx, CMD_BATCH_TOO_LARGE, buf, sizeof(buf));
    assert_string_equal(buf, "batch has more items than max-batch (8)");
    cmd_status_message(NULL, CMD_KEY_TOO_LONG, buf, sizeof(buf));
    assert_string_equal(buf, "key is longer than max-key-bytes");
    cmd_status_message(NULL, CMD_BAD_TTL, buf, sizeof(buf));
    snprintf(buf + 100, 60, "at most %lld", (long long)(CMD_MAX_TTL_MS / 1000));
    assert_non_null(strstr(buf, buf + 100));
    cmd_status_message(NULL, CMD_CONTENT_TYPE_TOO_LONG, buf, sizeof(buf));
    assert_string_equal(buf, "content type is longer than 255 bytes");
    /* Every status has words of its own; a short buffer is cut, not overrun. */
    for (int st = CMD_NOT_FOUND; st <= CMD_BATCH_TOO_LARGE; st++) {
        cmd_status_message(&fx->ctx, (enum cmd_status)st, buf, sizeof(buf));
        if (strncmp(buf, "internal error", 14) == 0)
            fail_msg("status %d has no message", st);
    }
    char tiny[8];
    int len = cmd_status_message(&fx->ctx, CMD_KEY_TOO_LONG, tiny, sizeof(tiny));
    assert_true(len > 8);
    assert_int_equal(strlen(tiny), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(keys_are_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(values_are_checked_content_type_included, setup, teardown),
        cmocka_unit_test_setup_teardown(ttls_are_seconds_above_zero_to_the_millisecond, setup, teardown),
        cmocka_unit_test_setup_teardown(ttl_text_reads_as_a_json_number, setup, teardown),
        cmocka_unit_test_setup_teardown(writes_take_a_null_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(mset_with_a_bad_item_anywhere_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(batches_over_max_batch_are_refused_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(mget_reads_in_order_and_stops_when_asked, setup, teardown),
        cmocka_unit_test_setup_teardown(conditions_hold_or_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(a_pinned_write_never_touches_the_entry_written_after_its_check, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(preconditions_are_checked_without_side_effects, setup, teardown),
        cmocka_unit_test_setup_teardown(set_ttl_changes_only_the_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(messages_are_formatted_from_the_limits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
