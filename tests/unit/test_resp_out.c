/*
 * Unit tests of RESP reply encoding (src/resp/out.c): integers and lengths
 * written by hand at their extremes, bulk strings of any bytes, the values
 * RESP2 and RESP3 write differently, growth across many appends, and simple
 * strings that cannot hold a line break.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resp/out.h"

static void expect_out(struct resp_out *out, const char *want, size_t want_len)
{
    assert_false(out->failed);
    if (out->len != want_len || memcmp(out->buf, want, want_len) != 0)
        fail_msg("expected %zu bytes \"%.*s\", got %zu \"%.*s\"", want_len, (int)want_len, want, out->len,
                 (int)out->len, out->buf);
    out->len = 0;
}

#define EXPECT(out, literal) expect_out(out, literal, sizeof(literal) - 1)

static void test_integers(void **state)
{
    (void)state;
    struct resp_out out = {.protocol = 2};
    resp_out_integer(&out, 0);
    EXPECT(&out, ":0\r\n");
    resp_out_integer(&out, 42);
    EXPECT(&out, ":42\r\n");
    resp_out_integer(&out, -7);
    EXPECT(&out, ":-7\r\n");
    resp_out_integer(&out, INT64_MAX);
    EXPECT(&out, ":9223372036854775807\r\n");
    resp_out_integer(&out, INT64_MIN);
    EXPECT(&out, ":-9223372036854775808\r\n");
    int64_t n = 1;
    for (int i = 0; i < 19; i++, n = i < 19 ? n * 10 : n) { /* 1 to 10^18, and one below each */
        char want[32];
        int len = snprintf(want, sizeof(want), ":%lld\r\n", (long long)n);
        resp_out_integer(&out, n);
        expect_out(&out, want, (size_t)len);
        len = snprintf(want, sizeof(want), ":%lld\r\n", (long long)(n - 1));
        resp_out_integer(&out, n - 1);
        expect_out(&out, want, (size_t)len);
    }
    resp_out_free(&out);
}

static void test_bulks_and_aggregates(void **state)
{
    (void)state;
    struct resp_out out = {.protocol = 2};
    resp_out_bulk(&out, "", 0);
    EXPECT(&out, "$0\r\n\r\n");
    resp_out_bulk(&out, "a\0\r\n\xff", 5);
    EXPECT(&out, "$5\r\na\0\r\n\xff\r\n");
    resp_out_bulk_str(&out, "hello");
    EXPECT(&out, "$5\r\nhello\r\n");
    resp_out_array(&out, 3);
    EXPECT(&out, "*3\r\n");
    resp_out_map(&out, 2);
    EXPECT(&out, "*4\r\n");
    resp_out_null(&out);
    EXPECT(&out, "$-1\r\n");
    resp_out_null_array(&out);
    EXPECT(&out, "*-1\r\n");
    out.protocol = 3;
    resp_out_map(&out, 2);
    EXPECT(&out, "%2\r\n");
    resp_out_null(&out);
    EXPECT(&out, "_\r\n");
    resp_out_null_array(&out);
    EXPECT(&out, "_\r\n");
    resp_out_free(&out);
}

static void test_lines(void **state)
{
    (void)state;
    struct resp_out out = {.protocol = 2};
    resp_out_status(&out, "OK");
    EXPECT(&out, "+OK\r\n");
    resp_out_error(&out, "ERR two\r\nlines");
    EXPECT(&out, "-ERR two  lines\r\n");
    resp_out_errorf(&out, "ERR %s %d", "n", 5);
    EXPECT(&out, "-ERR n 5\r\n");
    resp_out_free(&out);
}

/* A thousand bulks of growing size in one buffer: every byte where it belongs after each regrowth. */
static void test_growth(void **state)
{
    (void)state;
    struct resp_out out = {.protocol = 2};
    char value[1000];
    size_t want = 0;
    for (size_t i = 0; i < sizeof(value); i++) {
        memset(value, 'a' + (int)(i % 26), i);
        resp_out_bulk(&out, value, i);
        want += (size_t)snprintf(NULL, 0, "$%zu\r\n", i) + i + 2;
    }
    assert_false(out.failed);
    assert_int_equal(out.len, want);
    size_t at = 0;
    for (size_t i = 0; i < sizeof(value); i++) {
        char head[16];
        int len = snprintf(head, sizeof(head), "$%zu\r\n", i);
        assert_memory_equal(out.buf + at, head, (size_t)len);
        at += (size_t)len;
        for (size_t j = 0; j < i; j++)
            assert_int_equal(out.buf[at + j], 'a' + (int)(i % 26));
        at += i;
        assert_memory_equal(out.buf + at, "\r\n", 2);
        at += 2;
    }
    resp_out_free(&out);
}

/* A value copied straight into the buffer: the header goes before it, whatever the room reserved. */
static void test_reserved_bulks(void **state)
{
    (void)state;
    struct resp_out out = {.protocol = 2};
    resp_out_status(&out, "OK");
    char *room = resp_out_bulk_reserve(&out, 100);
    assert_non_null(room);
    memcpy(room, "hello", 5);
    resp_out_bulk_commit(&out, 5);
    resp_out_integer(&out, 1);
    EXPECT(&out, "+OK\r\n$5\r\nhello\r\n:1\r\n");

    enum { BIG = 100000 };
    room = resp_out_bulk_reserve(&out, BIG);
    assert_non_null(room);
    for (size_t i = 0; i < BIG; i++)
        room[i] = (char)('a' + i % 26);
    resp_out_bulk_commit(&out, BIG);
    assert_int_equal(out.len, 9 + BIG + 2);
    assert_memory_equal(out.buf, "$100000\r\n", 9);
    for (size_t i = 0; i < BIG; i++)
        assert_int_equal(out.buf[9 + i], 'a' + i % 26);
    assert_memory_equal(out.buf + 9 + BIG, "\r\n", 2);
    out.len = 0;

    room = resp_out_bulk_reserve(&out, 0);
    assert_non_null(room);
    resp_out_bulk_commit(&out, 0);
    EXPECT(&out, "$0\r\n\r\n");
    resp_out_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_bulks_and_aggregates),
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_reserved_bulks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
