/*
 * Unit tests of glob matching (src/resp/glob.c): Redis's pattern syntax as
 * its KEYS documentation gives it, over bytes (NUL and bytes above 0x7f
 * included), the edge cases Redis resolves its own way (unterminated
 * classes, a trailing '\', reversed ranges), and a pattern that makes a
 * backtracking matcher exponential.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resp/glob.h"

/* Both strings given with explicit lengths, so that either may hold NUL. */
#define MATCH(p, s)    assert_true(glob_match(p, sizeof(p) - 1, s, sizeof(s) - 1, false))
#define NO_MATCH(p, s) assert_false(glob_match(p, sizeof(p) - 1, s, sizeof(s) - 1, false))

static void test_stars_and_questions(void **state)
{
    (void)state;
    MATCH("*", "");
    MATCH("*", "anything");
    MATCH("", "");
    NO_MATCH("", "a");
    MATCH("h?llo", "hello");
    MATCH("h?llo", "hallo");
    NO_MATCH("h?llo", "hllo");
    MATCH("h*llo", "hllo");
    MATCH("h*llo", "heeeello");
    NO_MATCH("h*llo", "hello!");
    MATCH("user:*", "user:42");
    NO_MATCH("user:*", "user");
    MATCH("*:*:*", "a:b:c");
    NO_MATCH("*:*:*", "a:b");
    MATCH("**a**", "bab");
    MATCH("a*b*c", "aXXbYYbc");
    NO_MATCH("a*b*c", "aXXbYYbcd");
}

static void test_classes(void **state)
{
    (void)state;
    MATCH("h[ae]llo", "hello");
    MATCH("h[ae]llo", "hallo");
    NO_MATCH("h[ae]llo", "hillo");
    MATCH("h[^e]llo", "hallo");
    NO_MATCH("h[^e]llo", "hello");
    MATCH("h[a-b]llo", "hbllo");
    NO_MATCH("h[a-b]llo", "hcllo");
    MATCH("h[b-a]llo", "hallo"); /* a reversed range is read the right way round */
    MATCH("k[0-9][0-9]", "k42");
    NO_MATCH("k[0-9][0-9]", "k4x");
    MATCH("[\\]]", "]"); /* '\' escapes inside a class */
    MATCH("[a\\-z]", "-");
    NO_MATCH("[a\\-z]", "m");
    NO_MATCH("[!a]", "b"); /* '!' is an ordinary byte in a class ("[^…]" negates) */
    MATCH("[!a]", "!");
    /* An unterminated class ends with the pattern. */
    MATCH("[ab", "a");
    NO_MATCH("[ab", "c");
    NO_MATCH("[", "a");
    MATCH("[^", "x");
}

static void test_escapes(void **state)
{
    (void)state;
    MATCH("h\\*llo", "h*llo");
    NO_MATCH("h\\*llo", "hello");
    MATCH("\\?", "?");
    NO_MATCH("\\?", "a");
    MATCH("a\\", "a\\"); /* a trailing '\' is itself */
}

static void test_any_bytes(void **state)
{
    (void)state;
    MATCH("a\0*", "a\0b");
    NO_MATCH("a\0*", "ab");
    NO_MATCH("a\0*", "a");
    MATCH("?", "\0");
    MATCH("[\x80-\xff]", "\xc3");
    NO_MATCH("[\x80-\xff]", "c");
    MATCH("caf\xc3\xa9*", "caf\xc3\xa9s");
    MATCH("caf??", "caf\xc3\xa9"); /* '?' is one byte, not one character */
}

static void test_nocase(void **state)
{
    (void)state;
    assert_true(glob_match("MAX*", 4, "maxmemory", 9, true));
    assert_false(glob_match("MAX*", 4, "maxmemory", 9, false));
    assert_true(glob_match("[L-N]axmemory", 13, "maxmemory", 9, true));
}

static void test_no_exponential_backtracking(void **state)
{
    (void)state;
    enum { LEN = 100000 };
    char *s = malloc(LEN);
    assert_non_null(s);
    memset(s, 'a', LEN);
    const char pattern[] = "*a*a*a*a*a*a*a*a*a*a*a*a*b";
    assert_false(glob_match(pattern, sizeof(pattern) - 1, s, LEN, false));
    s[LEN - 1] = 'b';
    assert_true(glob_match(pattern, sizeof(pattern) - 1, s, LEN, false));
    free(s);
}

static void test_literal_prefix(void **state)
{
    (void)state;
    assert_int_equal(glob_literal_prefix("user:*", 6), 5);
    assert_int_equal(glob_literal_prefix("abc", 3), 3);
    assert_int_equal(glob_literal_prefix("a\\*", 3), 1);
    assert_int_equal(glob_literal_prefix("k?", 2), 1);
    assert_int_equal(glob_literal_prefix("[ab]c", 5), 0);
    assert_int_equal(glob_literal_prefix("a\0b*", 4), 3);
    assert_int_equal(glob_literal_prefix("", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stars_and_questions),
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_any_bytes),
        cmocka_unit_test(test_nocase),
        cmocka_unit_test(test_no_exponential_backtracking),
        cmocka_unit_test(test_literal_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
