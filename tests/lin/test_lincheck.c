/*
 * Unit tests of the linearizability checker (tests/lin/lincheck.c) and its
 * history parser (history.c): hand-made histories, each a few lines, that
 * are linearizable (so the checker must not cry wolf) or are not (so it must
 * catch the bug a cache could have: a stale read, a lost update, a write
 * that vanishes, a broken precondition), asserting the verdict and that the
 * report names the failing key and operations; the parser's line-numbered
 * errors; the limits; and a generated history of 50,000 operations by 8
 * clients on 4 keys, checked whole and then with one read made stale.
 *
 * Lines read "<client> <invoke> <complete> <key> <op> [args] : <result>".
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "history.h"
#include "lincheck.h"

#define V1 "0000000000000001"
#define V2 "0000000000000002"
#define V3 "0000000000000003"
#define V4 "0000000000000004"

/* Parses text (which must parse) and checks it; the report, to free, through *report. */
static int check_text(const char *text, char **report, struct lin_stats *stats, const struct lin_limits *limits)
{
    struct lin_history h;
    struct lin_parse_error err;
    int rc = lin_history_parse(text, &h, &err);
    if (rc != 0)
        fail_msg("history does not parse: line %u: %s", err.line, err.message);
    size_t len = 0;
    *report = NULL;
    FILE *out = open_memstream(report, &len);
    assert_non_null(out);
    int verdict = lin_check(&h, limits, out, stats);
    fclose(out);
    lin_history_free(&h);
    return verdict;
}

static void expect_linearizable(const char *text)
{
    char *report;
    int verdict = check_text(text, &report, NULL, NULL);
    if (verdict != LIN_LINEARIZABLE)
        fail_msg("expected linearizable, got %d:\n%s", verdict, report);
    assert_string_equal(report, "");
    free(report);
}

/* Expects a failure whose report holds each of the NULL-terminated strings. */
static void expect_failure(const char *text, ...)
{
    char *report;
    int verdict = check_text(text, &report, NULL, NULL);
    if (verdict != LIN_NOT_LINEARIZABLE)
        fail_msg("expected NOT linearizable, got %d:\n%s", verdict, report);
    va_list ap;
    va_start(ap, text);
    for (const char *want = va_arg(ap, const char *); want != NULL; want = va_arg(ap, const char *))
        if (strstr(report, want) == NULL)
            fail_msg("the report lacks \"%s\":\n%s", want, report);
    va_end(ap);
    free(report);
}

/* The section of a report that lists the ops which could not come next. */
static const char *stuck_section(const char *report)
{
    const char *s = strstr(report, "none of these can come next");
    assert_non_null(s);
    return s;
}

/* ------------------------------------------------------------------ */
/* Linearizable histories                                               */
/* ------------------------------------------------------------------ */

static void test_empty_and_comments(void **state)
{
    (void)state;
    expect_linearizable("");
    expect_linearizable("# nothing but a comment\n\n   \n");
}

static void test_sequential(void **state)
{
    (void)state;
    expect_linearizable("0 0 10 k get : miss\n"
                        "0 20 30 k set a : ok " V1 "\n"
                        "0 40 50 k get : hit a " V1 "\n"
                        "0 60 70 k cas b " V1 " : ok " V2 "\n"
                        "0 80 90 k cas c " V1 " : fail\n"
                        "0 100 110 k create d : fail\n"
                        "0 120 130 k delif " V1 " : fail\n"
                        "0 140 150 k delif " V2 " : ok\n"
                        "0 160 170 k del : miss\n"
                        "0 180 190 k cas e " V2 " : fail\n"
                        "0 200 210 k create f : ok " V3 "\n"
                        "0 220 230 k incr 1 : notint\n"
                        "0 240 250 k del : ok\n"
                        "0 260 270 k get : miss\n");
}

static void test_overlapping_writes_read_in_either_order(void **state)
{
    (void)state;
    const char *writes = "0 0 100 k set a : ok " V1 "\n"
                         "1 10 110 k set b : ok " V2 "\n";
    char text[512];
    /* After both: either may have been last. */
    snprintf(text, sizeof(text), "%s2 200 210 k get : hit a " V1 "\n", writes);
    expect_linearizable(text);
    snprintf(text, sizeof(text), "%s2 200 210 k get : hit b " V2 "\n", writes);
    expect_linearizable(text);
    /* During both, reads may even see b then a: b first, a second, with a read between. */
    snprintf(text, sizeof(text), "%s2 20 30 k get : hit b " V2 "\n3 40 50 k get : hit a " V1 "\n", writes);
    expect_linearizable(text);
    /* A read overlapping the writes may still see the key absent. */
    snprintf(text, sizeof(text), "%s2 5 50 k get : miss\n", writes);
    expect_linearizable(text);
}

static void test_concurrent_cas_one_wins(void **state)
{
    (void)state;
    expect_linearizable("0 0 10 k set a : ok " V1 "\n"
                        "1 20 100 k cas b " V1 " : fail\n"
                        "2 30 90 k cas c " V1 " : ok " V2 "\n"
                        "1 110 120 k get : hit c " V2 "\n");
    /* The winner may be the one that started last. */
    expect_linearizable("0 0 10 k set a : ok " V1 "\n"
                        "1 20 100 k cas b " V1 " : ok " V3 "\n"
                        "2 30 90 k cas c " V1 " : fail\n"
                        "1 110 120 k get : hit b " V3 "\n");
}

static void test_unknown_outcome_took_effect(void **state)
{
    (void)state;
    /* The set's answer never came, yet a read long after sees it: it took effect (the read teaches its version). */
    expect_linearizable("0 0 10 k set a : ok " V1 "\n"
                        "1 20 - k set b : ?\n"
                        "2 500 510 k get : hit b " V2 "\n"
                        "2 520 530 k cas c " V2 " : ok " V3 "\n");
    /* An increment whose answer never came counts in the next one's result. */
    expect_linearizable("0 0 10 k incr 1 : ok 1 " V1 "\n"
                        "1 20 - k incr 5 : ?\n"
                        "2 500 510 k incr 1 : ok 7 " V3 "\n");
}

static void test_unknown_outcome_did_not_take_effect(void **state)
{
    (void)state;
    expect_linearizable("0 0 10 k set a : ok " V1 "\n"
                        "1 20 - k set b : ?\n"
                        "1 30 - k del : ?\n"
                        "1 35 - k incr 3 : ?\n"
                        "1 36 - k get : ?\n"
                        "2 500 510 k get : hit a " V1 "\n");
    /* Nor must it be placed before it was invoked: the earlier read saw a. */
    expect_linearizable("0 0 10 k set a : ok " V1 "\n"
                        "2 20 30 k get : hit a " V1 "\n"
                        "1 40 - k set b : ?\n"
                        "2 50 60 k get : hit b " V2 "\n");
}

static void test_counter_increments(void **state)
{
    (void)state;
    /* Three concurrent increments from absent (counting from 0) may finish in any order. */
    expect_linearizable("0 0 100 k incr 1 : ok 3 " V3 "\n"
                        "1 10 110 k incr 1 : ok 1 " V1 "\n"
                        "2 20 120 k incr 1 : ok 2 " V2 "\n"
                        "0 200 210 k get : hit 3 " V3 "\n"
                        "0 220 230 k incr -10 : ok -7 " V4 "\n");
    /* A value set as text that reads as an integer counts, as the server's strtoll reads it. */
    expect_linearizable("0 0 10 k set 007 : ok " V1 "\n"
                        "0 20 30 k incr 1 : ok 8 " V2 "\n"
                        "0 40 50 k get : hit 8 " V2 "\n");
}

static void test_unknown_version_is_learned(void **state)
{
    (void)state;
    expect_linearizable("0 0 10 k set a : ok -\n"
                        "0 20 30 k cas b " V3 " : fail\n"
                        "0 40 50 k get : hit a " V2 "\n"
                        "0 60 70 k cas c " V2 " : ok " V4 "\n");
}

/*
 * Two concurrent writes of the same value, one reporting its version, one
 * not (a Redis-protocol SET, an HTTP POST): the one without may come second
 * and leave a version a later read names. Placing it first, where it
 * changes nothing, must not be taken as the only order worth trying.
 */
static void test_same_value_write_of_unknown_version_comes_second(void **state)
{
    (void)state;
    expect_linearizable("0 0 10 k set a : ok -\n"
                        "1 20 60 k set a : ok " V1 "\n"
                        "2 30 70 k set a : ok -\n"
                        "3 80 90 k get : hit a " V2 "\n");
    expect_linearizable("0 0 10 k incr 10 : ok 10 -\n"
                        "1 20 60 k incr 0 : ok 10 " V1 "\n"
                        "2 30 70 k incr 0 : ok 10 -\n"
                        "3 80 90 k get : hit 10 " V2 "\n");
}

static void test_keys_are_independent(void **state)
{
    (void)state;
    /* Ops on one key constrain nothing on another: a miss on y right after x was written is fine. */
    expect_linearizable("0 0 100 x set a : ok " V1 "\n"
                        "1 0 100 y set b : ok " V2 "\n"
                        "2 50 60 x get : miss\n"
                        "0 110 120 y get : hit b " V2 "\n"
                        "1 110 120 x get : hit a " V1 "\n"
                        "2 130 140 y del : ok\n"
                        "2 150 160 x get : hit a " V1 "\n");
}

static void test_allow_loss_miss_after_write(void **state)
{
    (void)state;
    const char *history = "0 0 10 k set a : ok " V1 "\n"
                          "0 20 30 k get : miss\n"
                          "0 40 50 k create b : ok " V2 "\n"
                          "0 60 70 k incr 2 : notint\n"
                          "0 80 90 k del : miss\n";
    char text[512];
    snprintf(text, sizeof(text), "# allow-loss\n%s", history);
    expect_linearizable(text);
    expect_failure(history, "key k: NOT linearizable", "0 20 30 k get : miss", NULL);
}

/* ------------------------------------------------------------------ */
/* Histories that are not                                               */
/* ------------------------------------------------------------------ */

static void test_stale_read(void **state)
{
    (void)state;
    char *report;
    int verdict = check_text("0 0 10 k set a : ok " V1 "\n"
                             "0 20 30 k set b : ok " V2 "\n"
                             "1 40 50 k get : hit a " V1 "\n",
                             &report, NULL, NULL);
    assert_int_equal(verdict, LIN_NOT_LINEARIZABLE);
    /* The order reached both writes; the read is the op that cannot follow. */
    assert_non_null(strstr(report, "key k: NOT linearizable"));
    assert_non_null(strstr(report, "places 2 of its 3 completed ops"));
    assert_non_null(strstr(report, "1. line 1: 0 0 10 k set a : ok " V1));
    assert_non_null(strstr(report, "2. line 2: 0 20 30 k set b : ok " V2));
    assert_non_null(strstr(report, "state after it: present, value b, version " V2));
    assert_non_null(strstr(stuck_section(report), "line 3: 1 40 50 k get : hit a " V1));
    free(report);
}

static void test_lost_update_increments(void **state)
{
    (void)state;
    expect_failure("0 0 10 k set 5 : ok " V1 "\n"
                   "1 20 100 k incr 1 : ok 6 " V2 "\n"
                   "2 30 110 k incr 1 : ok 6 " V3 "\n",
                   "key k: NOT linearizable", "k incr 1 : ok 6 " V2, "k incr 1 : ok 6 " V3, NULL);
}

static void test_lost_update_cas(void **state)
{
    (void)state;
    expect_failure("0 0 10 k set a : ok " V1 "\n"
                   "1 20 100 k cas b " V1 " : ok " V2 "\n"
                   "2 30 110 k cas c " V1 " : ok " V3 "\n",
                   "key k: NOT linearizable", "cas b " V1 " : ok " V2, "cas c " V1 " : ok " V3, NULL);
}

static void test_write_visible_then_gone(void **state)
{
    (void)state;
    char *report;
    int verdict = check_text("0 0 10 k set a : ok " V1 "\n"
                             "1 20 100 k set b : ok " V2 "\n"
                             "2 30 40 k get : hit b " V2 "\n"
                             "2 50 60 k get : hit a " V1 "\n",
                             &report, NULL, NULL);
    assert_int_equal(verdict, LIN_NOT_LINEARIZABLE);
    assert_non_null(strstr(report, "state after it: present, value b"));
    assert_non_null(strstr(stuck_section(report), "line 4: 2 50 60 k get : hit a " V1));
    free(report);
}

static void test_read_of_value_never_written(void **state)
{
    (void)state;
    char *report;
    int verdict = check_text("0 0 10 k set a : ok " V1 "\n"
                             "1 20 30 k get : hit zz " V1 "\n",
                             &report, NULL, NULL);
    assert_int_equal(verdict, LIN_NOT_LINEARIZABLE);
    assert_non_null(strstr(stuck_section(report), "line 2: 1 20 30 k get : hit zz " V1));
    free(report);
}

static void test_cas_against_old_version(void **state)
{
    (void)state;
    expect_failure("0 0 10 k set a : ok " V1 "\n"
                   "0 20 30 k set b : ok " V2 "\n"
                   "1 40 50 k cas c " V1 " : ok " V3 "\n",
                   "key k: NOT linearizable", "line 3: 1 40 50 k cas c " V1 " : ok " V3, NULL);
    /* Nor may a cas fail against the current version. */
    expect_failure("0 0 10 k set a : ok " V1 "\n"
                   "1 40 50 k cas c " V1 " : fail\n",
                   "line 2: 1 40 50 k cas c " V1 " : fail", NULL);
}

static void test_create_while_present(void **state)
{
    (void)state;
    expect_failure("0 0 10 k set a : ok " V1 "\n"
                   "1 20 30 k create b : ok " V2 "\n",
                   "key k: NOT linearizable", "line 2: 1 20 30 k create b : ok " V2, NULL);
}

static void test_delete_miss_while_present(void **state)
{
    (void)state;
    expect_failure("0 0 10 k set a : ok " V1 "\n"
                   "1 20 30 k del : miss\n",
                   "key k: NOT linearizable", "line 2: 1 20 30 k del : miss", NULL);
    /* Overlapping the write, the miss is fine. */
    expect_linearizable("0 0 100 k set a : ok " V1 "\n"
                        "1 20 30 k del : miss\n");
}

static void test_version_reused(void **state)
{
    (void)state;
    expect_failure("0 0 10 k set a : ok " V1 "\n"
                   "0 20 30 k set b : ok " V1 "\n",
                   "line 2: 0 20 30 k set b : ok " V1, NULL);
}

static void test_incr_on_wrong_kind(void **state)
{
    (void)state;
    expect_failure("0 0 10 k set 41 : ok " V1 "\n"
                   "0 20 30 k incr 1 : notint\n",
                   "incr 1 : notint", NULL);
    expect_failure("0 0 10 k set forty : ok " V1 "\n"
                   "0 20 30 k incr 1 : ok 1 " V2 "\n",
                   "incr 1 : ok 1", NULL);
}

static void test_allow_loss_old_value_after_miss(void **state)
{
    (void)state;
    char *report;
    int verdict = check_text("# allow-loss\n"
                             "0 0 10 k set a : ok " V1 "\n"
                             "1 20 30 k get : miss\n"
                             "1 40 50 k get : hit a " V1 "\n",
                             &report, NULL, NULL);
    assert_int_equal(verdict, LIN_NOT_LINEARIZABLE);
    assert_non_null(strstr(report, "allow-loss"));
    assert_non_null(strstr(stuck_section(report), "line 4: 1 40 50 k get : hit a " V1));
    free(report);
}

static void test_report_names_only_failing_key(void **state)
{
    (void)state;
    char *report;
    struct lin_stats st;
    int verdict = check_text("0 0 10 good set a : ok " V1 "\n"
                             "0 20 30 bad set a : ok " V2 "\n"
                             "1 40 50 good get : hit a " V1 "\n"
                             "1 60 70 bad get : miss\n",
                             &report, &st, NULL);
    assert_int_equal(verdict, LIN_NOT_LINEARIZABLE);
    assert_non_null(strstr(report, "key bad: NOT linearizable"));
    assert_null(strstr(report, "good"));
    assert_int_equal(st.ops, 4);
    assert_int_equal(st.keys, 2);
    assert_int_equal(st.keys_failed, 1);
    free(report);
}

/* ------------------------------------------------------------------ */
/* Parser errors and limits                                             */
/* ------------------------------------------------------------------ */

static void expect_parse_error(const char *text, unsigned line, const char *words)
{
    struct lin_history h;
    struct lin_parse_error err;
    assert_int_equal(lin_history_parse(text, &h, &err), -EINVAL);
    if (err.line != line || strstr(err.message, words) == NULL)
        fail_msg("expected line %u: ...%s..., got line %u: %s", line, words, err.line, err.message);
    assert_null(h.ops);
}

static void test_parse_errors(void **state)
{
    (void)state;
    const char *good = "# a comment\n0 0 10 k set a : ok " V1 "\n";
    char text[256];
#define BAD(line_text, words)                                                                                          \
    do {                                                                                                               \
        snprintf(text, sizeof(text), "%s%s\n", good, line_text);                                                       \
        expect_parse_error(text, 3, words);                                                                            \
    } while (0)
    BAD("0 0 10 k get hit a " V1, "no ' : '");
    BAD("0 0 10 k : miss", "expected <client>");
    BAD("0 0 10 k get :", "no result");
    BAD("x 0 10 k get : miss", "bad client");
    BAD("-1 0 10 k get : miss", "bad client");
    BAD("0 zero 10 k get : miss", "bad invoke");
    BAD("0 10 5 k get : miss", "before it is invoked");
    BAD("0 0 10 k fetch : miss", "unknown op 'fetch'");
    BAD("0 0 10 k get a : miss", "get takes 0 argument(s), got 1");
    BAD("0 0 10 k get : hit a", "bad result for get");
    BAD("0 0 10 k get : hit a 00000000000000AB", "bad version");
    BAD("0 0 10 k get : hit a 123", "bad version");
    BAD("0 0 10 k cas b - : fail", "bad If-Match");
    BAD("0 0 10 k delif xyz : ok", "bad If-Match");
    BAD("0 0 10 k set b : fail", "bad result for set");
    BAD("0 0 10 k del : fail", "bad result for del");
    BAD("0 0 10 k incr 1.5 : notint", "incr's amount");
    BAD("0 0 10 k incr 1 : ok one " V1, "not an integer");
    BAD("0 0 - k set b : ok " V1, "complete '-' goes with result '?'");
    BAD("0 0 10 k set b : ?", "complete '-' goes with result '?'");
    BAD("0 0 10 k set b : ok " V1 " extra words beyond any op", "too many fields");
    BAD("# allow-loss", "before the first operation");
#undef BAD
    expect_parse_error("0 0 10 k get : miss\n\n0 0 10 k del : gone\n", 3, "bad result for del");
}

static void test_parse_fields(void **state)
{
    (void)state;
    struct lin_history h;
    struct lin_parse_error err;
    assert_int_equal(lin_history_parse("# allow-loss\n"
                                       "7 -5 - key1 cas v9 00000000000000ff : ?\n"
                                       "3 1 2 key2 incr -4 : ok -4 -\n"
                                       "4 1 2 key1 get : hit v9 ffffffffffffffff\n",
                                       &h, &err),
                     0);
    assert_true(h.allow_loss);
    assert_int_equal(h.n_ops, 3);
    const struct lin_op *cas = &h.ops[0], *incr = &h.ops[1], *get = &h.ops[2];
    assert_int_equal(cas->client, 7);
    assert_int_equal(cas->invoke, -5);
    assert_true(cas->complete == LIN_NEVER);
    assert_string_equal(lin_history_key(&h, cas->key), "key1");
    assert_int_equal(cas->kind, LIN_CAS);
    assert_int_equal(cas->result, LIN_RESULT_UNKNOWN);
    assert_string_equal(lin_history_value(&h, cas->value), "v9");
    assert_int_equal(cas->if_version, 0xff);
    assert_int_equal(cas->line, 2);
    assert_int_equal(incr->by, -4);
    assert_false(incr->result_version_known);
    assert_int_equal(h.value_ints[incr->result_value].kind, LIN_CANONICAL_INT);
    assert_int_equal(get->key, cas->key);
    assert_int_equal(get->result_value, cas->value); /* interned: equal strings, equal ids */
    assert_true(get->result_version == UINT64_MAX);
    lin_history_free(&h);
}

static void test_limits(void **state)
{
    (void)state;
    const char *text = "0 0 100 k set a : ok " V1 "\n"
                       "1 0 100 k set b : ok " V2 "\n"
                       "2 0 100 k set c : ok " V3 "\n"
                       "3 200 300 k get : hit zz " V4 "\n";
    char *report;
    struct lin_stats st;
    struct lin_limits few_states = {.max_states = 3};
    assert_int_equal(check_text(text, &report, &st, &few_states), LIN_UNDECIDED);
    assert_int_equal(st.limit, LIN_LIMIT_STATES);
    assert_non_null(strstr(report, "key k: UNDECIDED: more than 3 states"));
    free(report);

    struct lin_limits little_memory = {.max_bytes = 4096};
    assert_int_equal(check_text(text, &report, &st, &little_memory), LIN_UNDECIDED);
    assert_int_equal(st.limit, LIN_LIMIT_MEMORY);
    assert_non_null(strstr(report, "out of memory"));
    free(report);

    /* Enough of both: the verdict. */
    assert_int_equal(check_text(text, &report, &st, NULL), LIN_NOT_LINEARIZABLE);
    assert_true(st.states > 3);
    free(report);
}

/* ------------------------------------------------------------------ */
/* A long generated history                                             */
/* ------------------------------------------------------------------ */

#define GEN_CLIENTS 8
#define GEN_KEYS    4
#define GEN_OPS     50000
#define GEN_LINE    160

/* What the generator's sequential cache holds under one key, and its last two changes. */
struct gen_key {
    char value[32];
    uint64_t version;
    bool present;
    char prev_value[32];
    uint64_t prev_version;
    bool prev_present;
    int64_t last_change_invoke, last_change_complete, prev_change_complete;
};

struct gen {
    uint64_t rng;
    uint64_t next_version;
    struct gen_key keys[GEN_KEYS];
    int64_t busy_until[GEN_CLIENTS];
    char (*lines)[GEN_LINE];
    long altered; /* the line whose read is made stale, or -1 */
    char altered_line[GEN_LINE];
};

static uint32_t gen_rand(struct gen *g, uint32_t below)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return (uint32_t)(g->rng % below);
}

/* Applies one random op to key k of the sequential cache; its text (op, args, ':', result) into out. */
static bool gen_apply(struct gen *g, int client, int seq, int k, char *out, size_t size)
{
    struct gen_key *s = &g->keys[k];
    char value[32];
    uint64_t version = g->next_version;
    uint32_t dice = gen_rand(g, 100);
    snprintf(value, sizeof(value), "c%d-%d", client, seq);
    bool changed = true;
    if (dice < 35) {
        changed = false;
        if (s->present)
            snprintf(out, size, "get : hit %s %016" PRIx64, s->value, s->version);
        else
            snprintf(out, size, "get : miss");
    } else if (dice < 55) {
        snprintf(out, size, "set %s : ok %016" PRIx64, value, version);
        snprintf(s->value, sizeof(s->value), "%s", value);
    } else if (dice < 65) {
        uint64_t want = gen_rand(g, 4) == 0 ? s->version + 1 : s->version;
        changed = s->present && want == s->version;
        if (changed) {
            snprintf(out, size, "cas %s %016" PRIx64 " : ok %016" PRIx64, value, want, version);
            snprintf(s->value, sizeof(s->value), "%s", value);
        } else {
            snprintf(out, size, "cas %s %016" PRIx64 " : fail", value, want);
        }
    } else if (dice < 70) {
        changed = !s->present;
        if (changed) {
            snprintf(out, size, "create %s : ok %016" PRIx64, value, version);
            snprintf(s->value, sizeof(s->value), "%s", value);
        } else {
            snprintf(out, size, "create %s : fail", value);
        }
    } else if (dice < 75) {
        changed = s->present;
        snprintf(out, size, "del : %s", changed ? "ok" : "miss");
    } else if (dice < 80) {
        uint64_t want = gen_rand(g, 2) == 0 ? s->version + 1 : s->version;
        changed = s->present && want == s->version;
        snprintf(out, size, "delif %016" PRIx64 " : %s", want, changed ? "ok" : "fail");
    } else {
        char *end = NULL;
        long long base = s->present ? strtoll(s->value, &end, 10) : 0;
        changed = !s->present || (*end == '\0' && s->value[0] != '\0');
        int by = (int)gen_rand(g, 5) + 1;
        if (changed) {
            snprintf(out, size, "incr %d : ok %lld %016" PRIx64, by, base + by, version);
            snprintf(s->value, sizeof(s->value), "%lld", base + by);
        } else {
            snprintf(out, size, "incr %d : notint", by);
        }
    }
    if (!changed)
        return false;
    s->present = !(dice >= 70 && dice < 80); /* del and delif remove the key */
    if (s->present) {
        s->version = version;
        g->next_version++;
    }
    return true;
}

/* Swaps the value and the version of a stored line for earlier ones, keeping the rest. */
static void gen_make_stale(struct gen *g, long line, int k)
{
    const struct gen_key *s = &g->keys[k];
    char *colon = strstr(g->lines[line], " get : hit ");
    size_t head = (size_t)(colon - g->lines[line]);
    snprintf(g->altered_line, sizeof(g->altered_line), "%.*s get : hit %s %016" PRIx64, (int)head, g->lines[line],
             s->prev_value, s->prev_version);
    g->altered = line;
}

/*
 * A history that is linearizable by construction: a sequential execution in
 * which op i takes effect at time t_i, each op's interval drawn around its
 * t_i and after its client's previous op completed. One read in the second
 * half, where the key's last change completed before the read began and
 * the change before completed before that one began, is also written stale
 * (the key's previous value and version) into g->altered_line.
 */
static void gen_history(struct gen *g)
{
    memset(g, 0, sizeof(*g));
    g->rng = 0x9e3779b97f4a7c15u;
    g->next_version = 1;
    g->altered = -1;
    g->lines = calloc(GEN_OPS, sizeof(*g->lines));
    assert_non_null(g->lines);
    int64_t t = 1000;
    for (long i = 0; i < GEN_OPS; i++) {
        t += 1 + gen_rand(g, 100);
        int client = (int)gen_rand(g, GEN_CLIENTS);
        for (int tries = 0; tries < GEN_CLIENTS && g->busy_until[client] >= t; tries++)
            client = (client + 1) % GEN_CLIENTS;
        if (g->busy_until[client] >= t)
            t = g->busy_until[client] + 1;
        int64_t earliest = g->busy_until[client] + 1 > t - 400 ? g->busy_until[client] + 1 : t - 400;
        int64_t invoke = earliest + gen_rand(g, (uint32_t)(t - earliest + 1));
        int64_t complete = t + gen_rand(g, 400);
        g->busy_until[client] = complete;

        int k = (int)gen_rand(g, GEN_KEYS);
        struct gen_key *s = &g->keys[k];
        struct gen_key before = *s;
        char op[80];
        bool changed = gen_apply(g, client, (int)i, k, op, sizeof(op));
        snprintf(g->lines[i], GEN_LINE, "%d %" PRId64 " %" PRId64 " key%d %s", client, invoke, complete, k, op);
        if (changed) {
            memcpy(s->prev_value, before.value, sizeof(s->prev_value));
            s->prev_version = before.version;
            s->prev_present = before.present;
            s->prev_change_complete = s->last_change_complete;
            s->last_change_invoke = invoke;
            s->last_change_complete = complete;
        } else if (g->altered < 0 && i > GEN_OPS / 2 && strstr(op, "get : hit") == op && s->prev_present &&
                   s->last_change_complete < invoke && s->prev_change_complete < s->last_change_invoke) {
            gen_make_stale(g, i, k);
        }
    }
}

/* The generated lines as one text, with the altered line in place when stale. */
static char *gen_text(const struct gen *g, bool stale)
{
    char *text = malloc((size_t)GEN_OPS * (GEN_LINE + 1) + 1);
    assert_non_null(text);
    size_t len = 0;
    for (long i = 0; i < GEN_OPS; i++) {
        const char *line = stale && i == g->altered ? g->altered_line : g->lines[i];
        len += (size_t)sprintf(text + len, "%s\n", line);
    }
    return text;
}

static void test_long_history(void **state)
{
    (void)state;
    struct gen g;
    gen_history(&g);
    assert_true(g.altered >= 0);

    char *text = gen_text(&g, false), *report;
    struct lin_stats st;
    int verdict = check_text(text, &report, &st, NULL);
    if (verdict != LIN_LINEARIZABLE)
        fail_msg("generated history: %d\n%s", verdict, report);
    print_message("%d ops, %d clients, %d keys: linearizable in %.0f ms, %" PRIu64 " states, %.1f MiB at most\n",
                  GEN_OPS, GEN_CLIENTS, GEN_KEYS, (double)st.elapsed_ns / 1e6, st.states,
                  (double)st.peak_bytes / (1 << 20));
    assert_int_equal(st.ops, GEN_OPS);
    assert_true(st.elapsed_ns < 10 * 1000000000ull);
    free(report);
    free(text);

    text = gen_text(&g, true);
    verdict = check_text(text, &report, &st, NULL);
    assert_int_equal(verdict, LIN_NOT_LINEARIZABLE);
    print_message("with line %ld made stale: NOT linearizable in %.0f ms, %" PRIu64 " states\n", g.altered + 1,
                  (double)st.elapsed_ns / 1e6, st.states);
    char where[32];
    snprintf(where, sizeof(where), "line %ld: ", g.altered + 1);
    assert_non_null(strstr(stuck_section(report), where));
    assert_int_equal(st.keys_failed, 1);
    free(report);
    free(text);
    free(g.lines);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_comments),
        cmocka_unit_test(test_sequential),
        cmocka_unit_test(test_overlapping_writes_read_in_either_order),
        cmocka_unit_test(test_concurrent_cas_one_wins),
        cmocka_unit_test(test_unknown_outcome_took_effect),
        cmocka_unit_test(test_unknown_outcome_did_not_take_effect),
        cmocka_unit_test(test_counter_increments),
        cmocka_unit_test(test_unknown_version_is_learned),
        cmocka_unit_test(test_same_value_write_of_unknown_version_comes_second),
        cmocka_unit_test(test_keys_are_independent),
        cmocka_unit_test(test_allow_loss_miss_after_write),
        cmocka_unit_test(test_stale_read),
        cmocka_unit_test(test_lost_update_increments),
        cmocka_unit_test(test_lost_update_cas),
        cmocka_unit_test(test_write_visible_then_gone),
        cmocka_unit_test(test_read_of_value_never_written),
        cmocka_unit_test(test_cas_against_old_version),
        cmocka_unit_test(test_create_while_present),
        cmocka_unit_test(test_delete_miss_while_present),
        cmocka_unit_test(test_version_reused),
        cmocka_unit_test(test_incr_on_wrong_kind),
        cmocka_unit_test(test_allow_loss_old_value_after_miss),
        cmocka_unit_test(test_report_names_only_failing_key),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_long_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
