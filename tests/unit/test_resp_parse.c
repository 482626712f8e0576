/*
 * Unit tests of the RESP request parser (src/resp/parse.c): multibulk and
 * inline requests as Redis 7 reads them, its error texts (the cases of
 * Redis's tests/unit/protocol.tcl among them), the limits, pipelining, and
 * requests cut at every byte: each outcome must be the one the whole request
 * gives, the buffer may move between calls, and the work stays linear.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resp/parse.h"

static const struct resp_limits redis = {
    .max_args = RESP_REDIS_MAX_ARGS,
    .max_bulk_bytes = RESP_REDIS_MAX_BULK_BYTES,
    .max_line_bytes = RESP_REDIS_MAX_LINE_BYTES,
};

static const struct resp_limits preauth = {
    .max_args = RESP_REDIS_PREAUTH_ARGS,
    .max_bulk_bytes = RESP_REDIS_PREAUTH_BULK_BYTES,
    .max_line_bytes = RESP_REDIS_MAX_LINE_BYTES,
    .before_auth = true,
};

/* ---- Outcomes written as text ------------------------------------------------------ */

struct text {
    char *s;
    size_t len, cap;
};

static void put(struct text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

/*
 * An outcome as text: "more"; the error's text; or for DONE the bytes
 * consumed, ':' and each argument in brackets, a byte outside printable
 * ASCII (and '\') as \xHH. Returns a string to free.
 */
static char *describe(enum resp_parse_status status, const struct resp_request *req, const char *buf, size_t consumed,
                      const char *error)
{
    struct text t = {0};
    if (status == RESP_PARSE_MORE) {
        put(&t, "more", 4);
    } else if (status == RESP_PARSE_ERROR) {
        put(&t, error, strlen(error));
    } else {
        char num[32];
        put(&t, num, (size_t)snprintf(num, sizeof(num), "%zu:", consumed));
        for (size_t i = 0; i < req->argc; i++) {
            const struct resp_arg *a = &req->argv[i];
            assert_true(a->offset + a->len <= consumed);
            put(&t, "[", 1);
            for (size_t j = 0; j < a->len; j++) {
                unsigned char c = (unsigned char)buf[a->offset + j];
                if (c >= 0x20 && c < 0x7f && c != '\\')
                    put(&t, (const char *)&c, 1);
                else
                    put(&t, num, (size_t)snprintf(num, sizeof(num), "\\x%02x", c));
            }
            put(&t, "]", 1);
        }
    }
    return t.s;
}

static char *copy_of(const char *in, size_t len)
{
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, in, len);
    return buf;
}

/* The outcome of the first request of in[0..len), given at once, in a buffer of exactly len bytes. */
static char *parse_whole(const char *in, size_t len, const struct resp_limits *limits)
{
    struct resp_request req = {0};
    char *buf = copy_of(in, len);
    size_t consumed = 0;
    const char *error = NULL;
    enum resp_parse_status status = resp_parse(&req, buf, len, limits, &consumed, &error);
    char *out = describe(status, &req, buf, consumed, error);
    resp_request_free(&req);
    free(buf);
    return out;
}

/*
 * The same request given as in[0..cut) and then all of it, in another
 * buffer of exactly len bytes: the parser must go on from offsets alone.
 */
static char *parse_cut(const char *in, size_t len, size_t cut, const struct resp_limits *limits)
{
    struct resp_request req = {0};
    char *first = copy_of(in, cut);
    size_t consumed = 0;
    const char *error = NULL;
    enum resp_parse_status status = resp_parse(&req, first, cut, limits, &consumed, &error);
    if (status == RESP_PARSE_MORE)
        assert_memory_equal(first, in, cut); /* waiting changes nothing */
    char *out;
    if (status != RESP_PARSE_MORE) {
        out = describe(status, &req, first, consumed, error);
    } else {
        char *all = copy_of(in, len);
        status = resp_parse(&req, all, len, limits, &consumed, &error);
        out = describe(status, &req, all, consumed, error);
        free(all);
    }
    free(first);
    resp_request_free(&req);
    return out;
}

/*
 * The request given one byte more at a time. Small requests get a new
 * buffer of exactly the bytes so far at each call, so that ASan sees any
 * read past them; large ones grow in place. *calls counts resp_parse calls.
 */
static char *parse_bytewise(const char *in, size_t len, const struct resp_limits *limits, size_t *calls,
                            size_t *examined)
{
    int copies = len <= 4096;
    struct resp_request req = {0};
    char *grown = copies ? NULL : copy_of(in, len);
    size_t consumed = 0;
    const char *error = NULL;
    enum resp_parse_status status = RESP_PARSE_MORE;
    char *out = NULL;
    *calls = 0;
    for (size_t n = 0; n <= len && status == RESP_PARSE_MORE; n++) {
        char *buf = copies ? copy_of(in, n) : grown;
        status = resp_parse(&req, buf, n, limits, &consumed, &error);
        ++*calls;
        if (status != RESP_PARSE_MORE || n == len)
            out = describe(status, &req, buf, consumed, error);
        if (copies)
            free(buf);
    }
    *examined = req.examined;
    free(grown);
    resp_request_free(&req);
    return out;
}

/* Every way of giving the request must end as giving it whole does, and as `want` says. */
static void expect_with(const char *in, size_t len, const struct resp_limits *limits, const char *want)
{
    char *whole = parse_whole(in, len, limits);
    assert_string_equal(whole, want);
    if (len <= 4096)
        for (size_t cut = 0; cut <= len; cut++) {
            char *got = parse_cut(in, len, cut, limits);
            if (strcmp(got, whole) != 0)
                fail_msg("cut at %zu: got \"%s\", whole \"%s\"", cut, got, whole);
            free(got);
        }
    size_t calls, examined;
    char *got = parse_bytewise(in, len, limits, &calls, &examined);
    assert_string_equal(got, whole);
    assert_true(examined <= 2 * len + 2);
    free(got);
    free(whole);
}

#define EXPECT(in, want)              expect_with(in, sizeof(in) - 1, &redis, want)
#define EXPECT_WITH(limits, in, want) expect_with(in, sizeof(in) - 1, limits, want)

/* ---- Multibulk requests ------------------------------------------------------------ */

static void test_multibulk(void **state)
{
    (void)state;
    EXPECT("*1\r\n$4\r\nPING\r\n", "14:[PING]");
    EXPECT("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n", "31:[SET][k][hello]");
    EXPECT("*2\r\n$3\r\nGET\r\n$0\r\n\r\n", "19:[GET][]");
    /* Only the first request counts; what follows is the next one's. */
    EXPECT("*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI", "14:[PING]");
    EXPECT("*1\r\n$4\r\nPING\r\ngarbage", "14:[PING]");
    /* Not yet whole. */
    EXPECT("*", "more");
    EXPECT("*2\r", "more");
    EXPECT("*2\r\n$3\r\nGET\r\n$1\r\nk\r", "more");
    EXPECT("*1\r\n$500000000\r\nabc", "more");
}

static void test_multibulk_binary(void **state)
{
    (void)state;
    /* A bulk is its declared bytes, CR, LF, NUL, '$' and '*' among them. */
    EXPECT("*2\r\n$3\r\nGET\r\n$6\r\n\r\n\0$*\xff\r\n", "25:[GET][\\x0d\\x0a\\x00$*\\xff]");
    EXPECT("*1\r\n$2\r\n\r\n\r\n", "12:[\\x0d\\x0a]");
}

static void test_multibulk_empty(void **state)
{
    (void)state;
    /* Redis skips a count of zero or less: an empty request the caller ignores. */
    EXPECT("*0\r\n", "4:");
    EXPECT("*-1\r\n", "5:");
    EXPECT("*-10\r\n*1\r\n", "6:");
    EXPECT("*-9223372036854775808\r\n", "23:");
}

/* The multibulk cases of Redis's tests/unit/protocol.tcl, with Redis's answers. */
static void test_redis_protocol_cases(void **state)
{
    (void)state;
    EXPECT("*3000000000\r\n", "ERR Protocol error: invalid multibulk length");
    EXPECT("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", "ERR Protocol error: expected '$', got 'f'");
    EXPECT("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", "ERR Protocol error: invalid bulk length");
    EXPECT("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n", "ERR Protocol error: invalid bulk length");
    EXPECT("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n", "ERR Protocol error: invalid bulk length");
    EXPECT("*1\r\nfoo\r\n", "ERR Protocol error: expected '$', got 'f'");
    EXPECT("set \"\"\"test-key\"\"\" test-value\r\nping\r\n", "ERR Protocol error: unbalanced quotes in request");
}

/* Counts and lengths are read as Redis's string2ll reads them. */
static void test_numbers(void **state)
{
    (void)state;
    static const char *bad_counts[] = {"*\r\n",
                                       "*01\r\n",
                                       "*+1\r\n",
                                       "* 1\r\n",
                                       "*1 \r\n",
                                       "*-0\r\n",
                                       "*-\r\n",
                                       "*1x\r\n",
                                       "*0x10\r\n",
                                       "*1\n$1\r\n",
                                       "*-9223372036854775809\r\n",
                                       "*9223372036854775808\r\n",
                                       "*99999999999999999999\r\n",
                                       "*2147483648\r\n"};
    for (size_t i = 0; i < sizeof(bad_counts) / sizeof(*bad_counts); i++)
        expect_with(bad_counts[i], strlen(bad_counts[i]), &redis, "ERR Protocol error: invalid multibulk length");
    static const char *bad_lengths[] = {"*1\r\n$\r\n",
                                        "*1\r\n$01\r\n",
                                        "*1\r\n$+1\r\n",
                                        "*1\r\n$-1\r\n",
                                        "*1\r\n$-0\r\n",
                                        "*1\r\n$1 \r\n",
                                        "*1\r\n$ 1\r\n",
                                        "*1\r\n$536870913\r\n",
                                        "*1\r\n$18446744073709551616\r\n",
                                        "*1\r\n$-9223372036854775808\r\n"};
    for (size_t i = 0; i < sizeof(bad_lengths) / sizeof(*bad_lengths); i++)
        expect_with(bad_lengths[i], strlen(bad_lengths[i]), &redis, "ERR Protocol error: invalid bulk length");
    /* The largest bulk Redis takes is declared without allocating it: the bytes stay the caller's. */
    EXPECT("*1\r\n$536870912\r\n", "more");
    EXPECT("*2147483647\r\n", "more");
}

/* Redis names the byte it found instead of '$', as its %c and its reply writer leave it. */
static void test_expected_dollar(void **state)
{
    (void)state;
    EXPECT("*1\r\n:1\r\n", "ERR Protocol error: expected '$', got ':'");
    EXPECT("*1\r\n\xff\r\n", "ERR Protocol error: expected '$', got '\xff'");
    EXPECT("*1\r\n\r\n", "ERR Protocol error: expected '$', got ' '");     /* CR */
    EXPECT("*1\r\n\n$1\r\n", "ERR Protocol error: expected '$', got ' '"); /* LF */
    EXPECT("*1\r\n\0\r\n", "ERR Protocol error: expected '$', got '");     /* NUL ends Redis's C string */
    /* Redis decides only once the line has its CR and the byte after it. */
    EXPECT("*1\r\nfoo", "more");
    EXPECT("*1\r\nfoo\r", "more");
}

/* Where Redis skips two bytes unread, this parser wants CR LF. */
static void test_line_ends(void **state)
{
    (void)state;
    EXPECT("*1\r\n$3\r\nfooXY", "ERR Protocol error: expected CRLF after bulk data");
    EXPECT("*1\r\n$3\r\nfoo\r\r", "ERR Protocol error: expected CRLF after bulk data");
    EXPECT("*1\r\n$3\r\nfoo\n\r", "ERR Protocol error: expected CRLF after bulk data");
    EXPECT("*1\r\n$3\r\nfoo\r", "more");
    EXPECT("*1\rX$1\r\na\r\n", "ERR Protocol error: invalid multibulk length");
    EXPECT("*1\r\n$1\rXa\r\n", "ERR Protocol error: invalid bulk length");
    /* Redis's own errors come first: it would have sent them. */
    EXPECT("*x\rX", "ERR Protocol error: invalid multibulk length");
    EXPECT("*1\r\nf\rX", "ERR Protocol error: expected '$', got 'f'");
    EXPECT_WITH(&preauth, "*11\rX", "ERR Protocol error: unauthenticated multibulk length");
}

/* A line with no end yet waits until it is longer than max_line_bytes, Redis's 64 KiB. */
static void test_long_lines(void **state)
{
    (void)state;
    const size_t max = RESP_REDIS_MAX_LINE_BYTES;
    char *buf = malloc(max + 16);
    assert_non_null(buf);

    /* A count line: max bytes with no CR wait, one more is refused. */
    buf[0] = '*';
    memset(buf + 1, '1', max + 8);
    expect_with(buf, max, &redis, "more");
    expect_with(buf, max + 1, &redis, "ERR Protocol error: too big mbulk count string");
    expect_with(buf, max + 9, &redis, "ERR Protocol error: too big mbulk count string");
    /* A CR right after max bytes is found, and the number is too long. */
    buf[max] = '\r';
    buf[max + 1] = '\n';
    expect_with(buf, max + 2, &redis, "ERR Protocol error: invalid multibulk length");

    /* A length line, counted from its '$'. */
    memcpy(buf, "*1\r\n$", 5);
    memset(buf + 5, '1', max + 8);
    expect_with(buf, 4 + max, &redis, "more");
    expect_with(buf, 4 + max + 1, &redis, "ERR Protocol error: too big bulk count string");

    /* An inline line: max bytes and its LF are a request, max + 1 bytes without one are refused. */
    memset(buf, 'a', max + 8);
    buf[max] = '\n';
    char want[32];
    snprintf(want, sizeof(want), "%zu:[", max + 1);
    char *whole = parse_whole(buf, max + 1, &redis);
    assert_memory_equal(whole, want, strlen(want));
    assert_int_equal(strlen(whole), strlen(want) + max + 1);
    free(whole);
    expect_with(buf, max, &redis, "more");
    buf[max] = 'a';
    expect_with(buf, max + 1, &redis, "ERR Protocol error: too big inline request");
    /* However the bytes arrive: Redis would take this line if it came in one read. */
    buf[max + 4] = '\n';
    expect_with(buf, max + 5, &redis, "ERR Protocol error: too big inline request");
    free(buf);

    /* The limit is the caller's. */
    static const struct resp_limits short_lines = {100, 100, 4, 0, false};
    EXPECT_WITH(&short_lines, "*12\r\n", "more");
    EXPECT_WITH(&short_lines, "*1\r\n$123\r\n", "ERR Protocol error: invalid bulk length");
    EXPECT_WITH(&short_lines, "*1\r\n$1234\r\n", "ERR Protocol error: too big bulk count string");
    EXPECT_WITH(&short_lines, "*123\r\n", "ERR Protocol error: invalid multibulk length");
    EXPECT_WITH(&short_lines, "*1234\r\n", "ERR Protocol error: too big mbulk count string");
    EXPECT_WITH(&short_lines, "a b\r\n", "5:[a][b]");
    EXPECT_WITH(&short_lines, "ab cd\n", "ERR Protocol error: too big inline request");
}

/* ---- Inline requests ---------------------------------------------------------------- */

static void test_inline(void **state)
{
    (void)state;
    EXPECT("PING\r\n", "6:[PING]");
    EXPECT("PING\n", "5:[PING]");
    EXPECT("set k v\r\n", "9:[set][k][v]");
    EXPECT("  set \t k   v  \r\n", "17:[set][k][v]");
    /* Only a CR right before the LF belongs to the line's end; others separate arguments. */
    EXPECT("a\rb\n", "4:[a][b]");
    EXPECT("a\r\r\n", "4:[a]");
    /* Vertical tab and form feed are skipped between arguments but belong to one. */
    EXPECT("\va\fb\v c\n", "8:[a\\x0cb\\x0b][c]");
    /* Any byte but the separators is an argument's, NUL and '*' included (Redis cannot see past a NUL). */
    EXPECT("GET a\0b *\n", "10:[GET][a\\x00b][*]");
    EXPECT("PING", "more");
    EXPECT("PING\r", "more");
    EXPECT("PING\nPING\n", "5:[PING]");
}

static void test_inline_empty(void **state)
{
    (void)state;
    EXPECT("\r\n", "2:");
    EXPECT("\n", "1:");
    EXPECT(" \t \r\n", "5:");
    EXPECT("\r\r\n", "3:");
}

static void test_inline_quotes(void **state)
{
    (void)state;
    EXPECT("set k \"hello world\"\n", "20:[set][k][hello world]");
    EXPECT("set k 'hello world'\n", "20:[set][k][hello world]");
    EXPECT("\"\" ''\n", "6:[][]");
    EXPECT("\"a\\n\\r\\t\\b\\a\\\\\\\"\\q\"\n", "20:[a\\x0a\\x0d\\x09\\x08\\x07\\x5c\"q]");
    EXPECT("\"\\x41\\x7a\\xFf\\x00\"\n", "19:[Az\\xff\\x00]");
    /* \x without two hex digits escapes the x alone. */
    EXPECT("\"\\x4\" \"\\xg1\"\n", "13:[x4][xg1]");
    /* In single quotes only \' is an escape. */
    EXPECT("'it\\'s \\n'\n", "11:[it's \\x5cn]");
    /* Quotes open anywhere in an argument and join what is around them. */
    EXPECT("a\"b c\" x'd'\n", "12:[ab c][xd]");
    /* A closing quote may be followed by any blank or the end. */
    EXPECT("\"a\"\tb\n", "6:[a][b]");
    EXPECT("\"a\"\vb\n", "6:[a][b]");
    EXPECT("\"a\"\r\n", "5:[a]");
    EXPECT("\"a\"\r\r\n", "6:[a]");
}

static void test_inline_unbalanced(void **state)
{
    (void)state;
    static const char *lines[] = {"\"a\"b\n",  "'a'b\n",      "\"abc\n",      "'abc\n", "\"abc\\\"\n",
                                  "'abc\\'\n", "x \"a\\\"\n", "\"a\"\"b\"\n", "a\"b\n", "\"\\x4\n"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(*lines); i++)
        expect_with(lines[i], strlen(lines[i]), &redis, "ERR Protocol error: unbalanced quotes in request");
}

/* ---- Limits ------------------------------------------------------------------------- */

static void test_limits(void **state)
{
    (void)state;
    static const struct resp_limits small = {2, 3, 64, 0, false}, none = {0, 0, 64, 0, false};
    static const struct {
        const struct resp_limits *limits;
        const char *in, *want;
    } cases[] = {
        /* Before AUTH Redis takes 10 arguments of 16 KiB, and says so. */
        {&preauth, "*10\r\n", "more"},
        {&preauth, "*11\r\n", "ERR Protocol error: unauthenticated multibulk length"},
        {&preauth, "*1\r\n$16384\r\n", "more"},
        {&preauth, "*1\r\n$16385\r\n", "ERR Protocol error: unauthenticated bulk length"},
        /* Malformed is malformed, authenticated or not. */
        {&preauth, "*x\r\n", "ERR Protocol error: invalid multibulk length"},
        {&preauth, "*1\r\n$-1\r\n", "ERR Protocol error: invalid bulk length"},
        {&preauth, "*-11\r\n", "6:"},
        {&small, "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", "22:[GET][key]"},
        {&small, "*3\r\n", "ERR Protocol error: invalid multibulk length"},
        {&small, "*1\r\n$4\r\n", "ERR Protocol error: invalid bulk length"},
        /* Inline requests are bounded by their line, and by max_args. */
        {&small, "GET keys\n", "9:[GET][keys]"},
        {&small, "a b c\n", "ERR Protocol error: too many arguments in inline request"},
        {&small, "a b   \n", "7:[a][b]"},
        {&none, "*0\r\n", "4:"},
        {&none, "*1\r\n", "ERR Protocol error: invalid multibulk length"},
        {&none, "\r\n", "2:"},
        {&none, "a\r\n", "ERR Protocol error: too many arguments in inline request"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
        expect_with(cases[i].in, strlen(cases[i].in), cases[i].limits, cases[i].want);
}

/* Parses in[0..cut) under `first`, then all of in under `then`. */
static char *parse_relimited(const char *in, size_t cut, size_t len, const struct resp_limits *first,
                             const struct resp_limits *then)
{
    struct resp_request req = {0};
    char *buf = copy_of(in, len);
    size_t consumed = 0;
    const char *error = NULL;
    assert_int_equal(resp_parse(&req, buf, cut, first, &consumed, &error), RESP_PARSE_MORE);
    enum resp_parse_status status = resp_parse(&req, buf, len, then, &consumed, &error);
    char *out = describe(status, &req, buf, consumed, error);
    resp_request_free(&req);
    free(buf);
    return out;
}

#define RELIMITED(in, cut, first, then, want)                                                                          \
    do {                                                                                                               \
        char *got_ = parse_relimited(in, cut, sizeof(in) - 1, first, then);                                            \
        assert_string_equal(got_, want);                                                                               \
        free(got_);                                                                                                    \
    } while (0)

/* Limits lowered under a request half read hold as if they had been there from its first byte. */
static void test_limits_change(void **state)
{
    (void)state;
    static const char set[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
    static const struct resp_limits two_args = {2, 100, 100, 0, false}, short_bulks = {10, 4, 100, 0, false},
                                    short_lines = {10, 100, 3, 0, false};
    for (size_t cut = 1; cut < sizeof(set) - 1; cut++) {
        /* The count is read at byte 4: from then on the request has too many arguments. */
        char *got = parse_relimited(set, cut, sizeof(set) - 1, &redis, &two_args);
        assert_string_equal(got, "ERR Protocol error: invalid multibulk length");
        free(got);
        got = parse_relimited(set, cut, sizeof(set) - 1, &redis, &preauth);
        assert_string_equal(got, "31:[SET][k][hello]");
        free(got);
    }
    /* Once "$5" is read, the bulk is too long for 4-byte bulks; before, it is refused as it comes. */
    for (size_t cut = 1; cut < sizeof(set) - 1; cut++) {
        char *got = parse_relimited(set, cut, sizeof(set) - 1, &redis, &short_bulks);
        assert_string_equal(got, "ERR Protocol error: invalid bulk length");
        free(got);
    }
    RELIMITED(set, 20, &redis, &preauth, "31:[SET][k][hello]");
    /* Before AUTH, the texts say so. */
    RELIMITED("*11\r\n$1\r\na\r\n", 6, &redis, &preauth, "ERR Protocol error: unauthenticated multibulk length");
    RELIMITED("*1\r\n$20000\r\nabc", 15, &redis, &preauth, "ERR Protocol error: unauthenticated bulk length");
    /* A line already longer than the new limit is refused; one that fits goes on. */
    RELIMITED("*1\r\n$1234", 8, &redis, &short_lines, "ERR Protocol error: too big bulk count string");
    RELIMITED("*1\r\n$1\r\na\r\n", 5, &redis, &short_lines, "11:[a]");
    RELIMITED("get key\r\n", 5, &redis, &short_lines, "ERR Protocol error: too big inline request");
    RELIMITED("*12\r\n", 3, &redis, &short_lines, "ERR Protocol error: invalid multibulk length");
    /* An inline line's arguments are counted when it is split, under the limits of that call. */
    RELIMITED("a b c\n", 5, &redis, &two_args, "ERR Protocol error: too many arguments in inline request");
    /* Raised limits simply let the request go on. */
    RELIMITED("*1\r\n$20000\r\n", 6, &preauth, &redis, "more");
}

/* ---- Pipelining, state and memory --------------------------------------------------- */

/* A connection's loop: parse, drop what a request took, reset, until the bytes run out. */
static void test_pipelining(void **state)
{
    (void)state;
    static const char stream[] = "*1\r\n$4\r\nPING\r\n"
                                 "\r\n"
                                 "set a 'b c'\r\n"
                                 "*0\r\n"
                                 "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
                                 "GET \"\\x61\"\n"
                                 "*2\r\n$3\r\nGET";
    static const char *want[] = {"14:[PING]", "2:", "13:[set][a][b c]", "4:", "20:[GET][a]", "11:[GET][a]", "more"};
    char *buf = copy_of(stream, sizeof(stream) - 1);
    size_t len = sizeof(stream) - 1;
    struct resp_request req = {0};
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
        size_t consumed = 0;
        const char *error = NULL;
        enum resp_parse_status status = resp_parse(&req, buf, len, &redis, &consumed, &error);
        char *got = describe(status, &req, buf, consumed, error);
        assert_string_equal(got, want[i]);
        free(got);
        if (status != RESP_PARSE_DONE)
            break;
        memmove(buf, buf + consumed, len - consumed);
        len -= consumed;
        resp_request_reset(&req);
    }
    resp_request_free(&req);
    free(buf);
}

static void test_done_and_error_stay(void **state)
{
    (void)state;
    char buf[] = "*1\r\n$1\r\na\r\nxyz";
    struct resp_request req = {0};
    size_t consumed = 0;
    const char *error = NULL;
    assert_int_equal(resp_parse(&req, buf, sizeof(buf) - 1, &redis, &consumed, &error), RESP_PARSE_DONE);
    assert_int_equal(consumed, 11);
    consumed = 0;
    assert_int_equal(resp_parse(&req, buf, sizeof(buf) - 1, &redis, &consumed, &error), RESP_PARSE_DONE);
    assert_int_equal(consumed, 11);
    assert_int_equal(req.argc, 1);
    resp_request_reset(&req);
    assert_int_equal(req.argc, 0);
    char bad[] = "*1\r\n:";
    assert_int_equal(resp_parse(&req, bad, 5, &redis, &consumed, &error), RESP_PARSE_MORE);
    char worse[] = "*1\r\n:1\r\n";
    assert_int_equal(resp_parse(&req, worse, 8, &redis, &consumed, &error), RESP_PARSE_ERROR);
    assert_string_equal(error, "ERR Protocol error: expected '$', got ':'");
    error = NULL;
    assert_int_equal(resp_parse(&req, worse, 8, &redis, &consumed, &error), RESP_PARSE_ERROR);
    assert_string_equal(error, "ERR Protocol error: expected '$', got ':'");
    resp_request_free(&req);
}

/* argv grows with the arguments that arrive, never to a count merely declared. */
static void test_argv_growth(void **state)
{
    (void)state;
    struct resp_request req = {0};
    size_t consumed = 0;
    const char *error = NULL;
    char huge[] = "*1000000\r\n$1\r\na\r\n$1\r\n";
    assert_int_equal(resp_parse(&req, huge, sizeof(huge) - 1, &redis, &consumed, &error), RESP_PARSE_MORE);
    assert_int_equal(req.argc, 1);
    assert_true(req.cap <= 8);
    resp_request_free(&req);

    char big_bulk[] = "*1\r\n$536870912\r\nabc";
    assert_int_equal(resp_parse(&req, big_bulk, sizeof(big_bulk) - 1, &redis, &consumed, &error), RESP_PARSE_MORE);
    assert_int_equal(req.cap, 0);
    resp_request_free(&req);

    char three[] = "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n";
    assert_int_equal(resp_parse(&req, three, sizeof(three) - 1, &redis, &consumed, &error), RESP_PARSE_DONE);
    assert_int_equal(req.cap, 3);
    resp_request_free(&req);

    /* 20 arguments: 8, 16, then the 20 declared. */
    struct text t = {0};
    put(&t, "*20\r\n", 5);
    for (int i = 0; i < 20; i++)
        put(&t, "$1\r\nx\r\n", 7);
    assert_int_equal(resp_parse(&req, t.s, t.len, &redis, &consumed, &error), RESP_PARSE_DONE);
    assert_int_equal(req.argc, 20);
    assert_int_equal(req.cap, 20);
    /* A reset keeps the room for the next request. */
    struct resp_arg *argv = req.argv;
    resp_request_reset(&req);
    assert_ptr_equal(req.argv, argv);
    assert_int_equal(req.cap, 20);
    assert_int_equal(resp_parse(&req, t.s, t.len, &redis, &consumed, &error), RESP_PARSE_DONE);
    assert_ptr_equal(req.argv, argv);
    resp_request_free(&req);
    assert_null(req.argv);
    assert_int_equal(req.cap, 0);
    free(t.s);
}

static int grow_calls, grow_fail_at;

static void *failing_grow(void *ptr, size_t size)
{
    if (++grow_calls == grow_fail_at)
        return NULL;
    return realloc(ptr, size);
}

/* Every growth of argv may fail: the request is refused, nothing leaks, and the next one can succeed. */
static void test_allocation_failure(void **state)
{
    (void)state;
    struct text t = {0};
    put(&t, "*20\r\n", 5);
    for (int i = 0; i < 20; i++)
        put(&t, "$1\r\nx\r\n", 7);
    static const char line[] = "a b c d e f g h i j k l m n o p q r s t\n";
    for (int fail = 1; fail <= 3; fail++) {
        const char *inputs[] = {t.s, line};
        size_t lens[] = {t.len, sizeof(line) - 1};
        for (int k = 0; k < 2; k++) {
            struct resp_request req = {.grow = failing_grow};
            grow_calls = 0;
            grow_fail_at = fail;
            char *buf = copy_of(inputs[k], lens[k]);
            size_t consumed = 0;
            const char *error = NULL;
            assert_int_equal(resp_parse(&req, buf, lens[k], &redis, &consumed, &error), RESP_PARSE_ERROR);
            assert_string_equal(error, "ERR out of memory");
            resp_request_free(&req);
            assert_ptr_equal(req.grow, failing_grow);
            memcpy(buf, inputs[k], lens[k]);
            assert_int_equal(resp_parse(&req, buf, lens[k], &redis, &consumed, &error), RESP_PARSE_DONE);
            assert_int_equal(req.argc, 20);
            resp_request_free(&req);
            free(buf);
        }
    }
    free(t.s);
}

/* ---- Work ---------------------------------------------------------------------------- */

/*
 * A request of about 1 MB given one byte per call: a parser that looked at
 * the request from its start on each call would look at half a million
 * times its bytes; this one looks at each about once.
 */
static void test_linear_work(void **state)
{
    (void)state;
    struct text t = {0};
    char head[32];
    put(&t, head, (size_t)snprintf(head, sizeof(head), "*%d\r\n", 2000));
    char value[500];
    memset(value, 'v', sizeof(value));
    for (int i = 0; i < 2000; i++) {
        put(&t, head, (size_t)snprintf(head, sizeof(head), "$%zu\r\n", sizeof(value)));
        put(&t, value, sizeof(value));
        put(&t, "\r\n", 2);
    }
    size_t calls, examined;
    char *got = parse_bytewise(t.s, t.len, &redis, &calls, &examined);
    char want[32];
    snprintf(want, sizeof(want), "%zu:[vvv", t.len);
    assert_int_equal(strncmp(got, want, strlen(want)), 0);
    assert_int_equal(calls, t.len + 1);
    assert_true(examined <= t.len + 2000);
    free(got);
    free(t.s);

    /* An inline line of 64 KiB, byte by byte. */
    struct text line = {0};
    for (int i = 0; i < 8191; i++)
        put(&line, "abcdefg ", 8);
    put(&line, "abcdefg\n", 8);
    got = parse_bytewise(line.s, line.len, &redis, &calls, &examined);
    assert_int_equal(strncmp(got, "65536:[abcdefg][abcdefg]", 24), 0);
    assert_int_equal(calls, line.len + 1);
    assert_true(examined <= 2 * line.len);
    free(got);
    free(line.s);
}

/*
 * Feeds stream one byte at a time to a buffer the way a connection keeps
 * one (dropping what MORE lets go and what each request takes), and writes
 * each outcome as "T<bytes>", "D<bytes>:<argc>", or the error. Returns the
 * outcomes, and in *held the most bytes the buffer ever held.
 */
static char *feed_bytewise(const char *stream, size_t len, const struct resp_limits *limits, size_t *held)
{
    struct resp_request req = {0};
    struct text log = {0};
    char *buf = malloc(len + 1);
    size_t have = 0, request_bytes = 0;
    assert_non_null(buf);
    *held = 0;
    for (size_t fed = 0; fed < len; fed++) {
        buf[have++] = stream[fed];
        if (have > *held)
            *held = have;
        for (;;) {
            size_t consumed = 0;
            const char *error = NULL;
            enum resp_parse_status status = resp_parse(&req, buf, have, limits, &consumed, &error);
            char entry[64];
            if (status == RESP_PARSE_ERROR) {
                put(&log, error, strlen(error));
                resp_request_free(&req);
                free(buf);
                return log.s;
            }
            memmove(buf, buf + consumed, have - consumed);
            have -= consumed;
            request_bytes += consumed;
            if (status == RESP_PARSE_MORE)
                break;
            int n = status == RESP_PARSE_TOO_LARGE ? snprintf(entry, sizeof(entry), "T%zu ", request_bytes)
                                                   : snprintf(entry, sizeof(entry), "D%zu:%zu ", request_bytes, req.argc);
            put(&log, entry, (size_t)n);
            request_bytes = 0;
            resp_request_reset(&req);
        }
    }
    resp_request_free(&req);
    free(buf);
    return log.s;
}

/* A bulk over max_bulk_bytes but within max_skip_bytes: read through, never held, and the request after it runs. */
static void test_skip_too_large(void **state)
{
    (void)state;
    static const struct resp_limits skipping = {
        .max_args = 100, .max_bulk_bytes = 4, .max_line_bytes = 64, .max_skip_bytes = 100};
    static const char two[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$40\r\n0123456789012345678901234567890123456789\r\n"
                              "*1\r\n$4\r\nPING\r\n";
    const size_t first = sizeof(two) - 1 - 14;
    size_t held;
    char *got = feed_bytewise(two, sizeof(two) - 1, &skipping, &held);
    char want[64];
    snprintf(want, sizeof(want), "T%zu D14:1 ", first);
    assert_string_equal(got, want);
    assert_true(held < 40); /* the 40 skipped bytes were dropped as they came */
    free(got);

    /* Given whole: the same outcome, TOO_LARGE with every byte of the request taken. */
    struct resp_request req = {0};
    char *buf = copy_of(two, sizeof(two) - 1);
    size_t consumed;
    const char *error;
    assert_int_equal(resp_parse(&req, buf, sizeof(two) - 1, &skipping, &consumed, &error), RESP_PARSE_TOO_LARGE);
    assert_int_equal(consumed, first);
    resp_request_free(&req);
    free(buf);

    /* Over max_skip_bytes, or before authentication (no skipping): refused as Redis refuses it. */
    static const char huge[] = "*2\r\n$3\r\nGET\r\n$101\r\n";
    got = feed_bytewise(huge, sizeof(huge) - 1, &skipping, &held);
    assert_string_equal(got, "ERR Protocol error: invalid bulk length");
    free(got);
    static const char big[] = "*2\r\n$4\r\nAUTH\r\n$16385\r\n";
    got = feed_bytewise(big, sizeof(big) - 1, &preauth, &held);
    assert_string_equal(got, "ERR Protocol error: unauthenticated bulk length");
    free(got);
    /* The skipped bytes must still end with CRLF. */
    static const char unended[] = "*2\r\n$3\r\nGET\r\n$5\r\n01234XY";
    got = feed_bytewise(unended, sizeof(unended) - 1, &skipping, &held);
    assert_string_equal(got, "ERR Protocol error: expected CRLF after bulk data");
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multibulk),       cmocka_unit_test(test_multibulk_binary),
        cmocka_unit_test(test_multibulk_empty), cmocka_unit_test(test_redis_protocol_cases),
        cmocka_unit_test(test_numbers),         cmocka_unit_test(test_expected_dollar),
        cmocka_unit_test(test_line_ends),       cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_inline),          cmocka_unit_test(test_inline_empty),
        cmocka_unit_test(test_inline_quotes),   cmocka_unit_test(test_inline_unbalanced),
        cmocka_unit_test(test_limits),          cmocka_unit_test(test_limits_change),
        cmocka_unit_test(test_pipelining),      cmocka_unit_test(test_done_and_error_stay),
        cmocka_unit_test(test_argv_growth),     cmocka_unit_test(test_allocation_failure),
        cmocka_unit_test(test_linear_work),      cmocka_unit_test(test_skip_too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
