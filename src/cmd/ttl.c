/*
 * TTLs in seconds, as clients send them, into the milliseconds the store
 * keeps (see ttl.h).
 *
 * One conversion from a double serves every source: a JSON number arrives
 * as one (jansson parses it), and text is checked against the JSON number
 * grammar and then converted with strtod, so "1.5" in a query string and
 * 1.5 in a body are the same double and give the same TTL. (strtod reads '.'
 * as the decimal point because cachette never calls setlocale.)
 *
 * Rounding. seconds * 1000 is rarely a whole number in binary even when the
 * decimal text was (2.007 * 1000 = 2007.0000000000002), so a product within
 * four units of its last place (4 DBL_EPSILON, relative) above a whole number
 * is taken as that number: the decimal to binary conversion and the product
 * each err by at most one such unit. A wider margin would swallow real
 * fractions of large TTLs (300000000.0002 s is 0.2 ms over a whole number).
 * Any other remainder rounds up, to the next millisecond: a TTL that was
 * given is never cut to 0, which would mean "never expires".
 */
#include "cmd/ttl.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

/* Longest text taken: 32 characters is far more than any TTL needs, and bounds the copy. */
#define TTL_TEXT_MAX 32

enum cmd_status cmd_ttl_from_seconds(double seconds, int64_t *ttl_ms)
{
    if (!(seconds > 0) || seconds > CMD_MAX_TTL_SECONDS) /* !(> 0) also refuses NaN */
        return CMD_BAD_TTL;
    double ms = seconds * 1000;
    int64_t whole = (int64_t)ms; /* ms is at most CMD_MAX_TTL_MS here: no overflow */
    /* A remainder just above a whole number is conversion noise; any other rounds up (just below: up too). */
    if (ms - (double)whole > ms * 4 * DBL_EPSILON)
        whole++;
    if (whole < 1 || whole > CMD_MAX_TTL_MS)
        return CMD_BAD_TTL;
    *ttl_ms = whole;
    return CMD_OK;
}

/* Skips a run of ASCII digits from text[*at]; returns how many. */
static size_t skip_digits(const char *text, size_t len, size_t *at)
{
    size_t start = *at;
    while (*at < len && text[*at] >= '0' && text[*at] <= '9')
        (*at)++;
    return *at - start;
}

/* Whether text[0..len) is digits [. digits] [e|E [+|-] digits]. */
static int is_unsigned_number(const char *text, size_t len)
{
    size_t at = 0;
    if (skip_digits(text, len, &at) == 0)
        return 0;
    if (at < len && text[at] == '.') {
        at++;
        if (skip_digits(text, len, &at) == 0)
            return 0;
    }
    if (at < len && (text[at] == 'e' || text[at] == 'E')) {
        at++;
        if (at < len && (text[at] == '+' || text[at] == '-'))
            at++;
        if (skip_digits(text, len, &at) == 0)
            return 0;
    }
    return at == len;
}

enum cmd_status cmd_ttl_parse(const char *text, size_t len, int64_t *ttl_ms)
{
    char copy[TTL_TEXT_MAX + 1];
    if (len > TTL_TEXT_MAX || !is_unsigned_number(text, len))
        return CMD_BAD_TTL;
    memcpy(copy, text, len);
    copy[len] = '\0';
    return cmd_ttl_from_seconds(strtod(copy, NULL), ttl_ms); /* an overflow gives HUGE_VAL: refused */
}
