/*
 * A network fuzzer against the real binary. Thousands of requests, generated
 * from one seeded PRNG, go to the server over loopback sockets: valid
 * requests from a template set (every endpoint and method, with If-Match,
 * Accept, Content-Type, Expect, Upgrade, chunked and sized bodies) and from a
 * looser grammar (odd methods, versions and targets, keys with invalid UTF-8
 * and broken percent-escapes, bogus Content-Length values and chunk sizes,
 * duplicated and oversized headers, JSON bodies with wrong types and deep
 * nesting), often with their bytes flipped, inserted, deleted, duplicated or
 * cut, several pipelined on one connection; also random bytes, and HTTP/2
 * prefaces followed by garbage frames. Each case is sent in one write or in
 * pieces, then the client half-closes, waits, closes early or resets.
 *
 * Cases run SLOTS at a time, multiplexed with poll(), so a connection the
 * server keeps open costs one slot a second (the --request-timeout), not the
 * whole run. Per case, whatever came back must start like an HTTP/1.1
 * response (or HTTP/2 frames, for an HTTP/2 case), no status may be a 5xx but
 * 503, every error body must be JSON {"error": ...} (h2o's own fixed
 * text/plain 400 aside), and the server must close the connection within the
 * request timeout of the client's last byte. After each batch the server
 * must still answer /health, store a value and return it verbatim, and count
 * no connection left open; at the end the group teardown requires exit 0 on
 * SIGTERM (under ASan: no sanitizer report).
 *
 * Case i's bytes depend only on the seed and i, never on timing. The seed is
 * printed; NETFUZZ_SEED repeats a run and NETFUZZ_CASES changes its length.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/http.h"
#include "../support/procfs.h"
#include "../support/raw.h"
#include "../support/server.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define CASES              (SANITIZED ? 5000 : 8000)
#define VALGRIND_CASES     2000 /* the server under valgrind runs 20-50 times slower */
#define BATCH              500
#define SLOTS              64
#define REQUEST_TIMEOUT_MS 1000

/*
 * How long a connection may stay open past the client's last byte: the
 * request timeout, and slack for a loaded machine. Decided at run time, since
 * it is the server that is slow: SANITIZED describes this binary, but in the
 * valgrind variant only the server runs under valgrind.
 */
static int hang_ms = REQUEST_TIMEOUT_MS + 5000;
#define READ_CAP   (1 << 20)
#define MAX_PIECES 16

/* Small limits, so that small requests reach 413 and 431, and a small store that evicts. */
static const char *const server_flags[] = {
    "--request-timeout=1s",   "--idle-timeout=1s", "--max-body-bytes=64kb", "--max-value-bytes=32kb",
    "--max-header-bytes=8kb", "--max-batch=50",    "--max-memory=32mb",     NULL};

#define PORT          (group_server.port)
#define ANY(r, array) ((array)[pick((r), sizeof(array) / sizeof((array)[0]))])

/* ---- bytes and randomness ----------------------------------------------- */

struct buf {
    char *p; /* NUL-terminated once anything was put */
    size_t len, cap;
};

static void put(struct buf *b, const void *data, size_t n)
{
    if (b->cap - b->len < n + 1) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            abort();
    }
    if (n > 0) /* data may be NULL then: an empty buffer */
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void put_str(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_byte(struct buf *b, int c)
{
    char ch = (char)c;
    put(b, &ch, 1);
}

static void put_repeat(struct buf *b, const char *s, size_t times)
{
    for (size_t i = 0; i < times; i++)
        put_str(b, s);
}

static void put_fmt(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_fmt(struct buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    put(b, tmp, n < (int)sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* splitmix64: tiny, fast, and any 64-bit state is a good one. */
struct rng {
    uint64_t s;
};

static uint64_t next(struct rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A number in [0, n), or 0 when n is 0. */
static size_t pick(struct rng *r, size_t n)
{
    return n == 0 ? 0 : (size_t)(next(r) % n);
}

static int chance(struct rng *r, unsigned percent)
{
    return pick(r, 100) < percent;
}

static void put_random_bytes(struct rng *r, struct buf *b, size_t n, int printable)
{
    for (size_t i = 0; i < n; i++)
        put_byte(b, printable ? 0x20 + (int)pick(r, 95) : (int)pick(r, 256));
}

/* Appends one of the '|'-separated words of words (empty ones too), chosen at random. */
static void put_any(struct rng *r, struct buf *b, const char *words)
{
    size_t n = 1;
    for (const char *p = words; *p != '\0'; p++)
        n += *p == '|';
    const char *p = words;
    for (size_t k = pick(r, n); k > 0; k--)
        p = strchr(p, '|') + 1;
    const char *end = strchr(p, '|');
    put(b, p, end != NULL ? (size_t)(end - p) : strlen(p));
}

/* ---- HTTP/1 requests ------------------------------------------------------ */

/* Numbers as a client might send them for a TTL, a limit, a length or an increment. */
#define NUMBERS                                                                                                        \
    "0|1|-1|60|315360000|315360001|1.5|abc||99999999999999999999|9223372036854775807|-9223372036854775808|"            \
    "18446744073709551616|0x10|1e3| 5|+5|007|1000|1001|4294967296|5, 5"

enum target { T_CACHE, T_KEY, T_INCR, T_MGET, T_MSET, T_OTHER };

/* One path segment naming a key, percent-encoded as a client would, or not quite. */
static void gen_key(struct rng *r, struct buf *b)
{
    switch (pick(r, 12)) {
    case 0:
    case 1:
    case 2:
    case 3:
        put_any(r, b, "k|user42|cart:7|a%2Fb|caf%C3%A9|_mget|..|%2e%2e|nf|counter|x%20y|img|_mset|a+b");
        break;
    case 4: /* printable ASCII, escaped where a URL needs it */
        for (size_t i = 0, n = 1 + pick(r, 40); i < n; i++) {
            int c = 0x20 + (int)pick(r, 95);
            if (isalnum(c) || c == '-' || c == '_' || c == '.')
                put_byte(b, c);
            else
                put_fmt(b, "%%%02X", c);
        }
        break;
    case 5: /* arbitrary bytes, every one escaped: NUL and invalid UTF-8 included */
        for (size_t i = 0, n = 1 + pick(r, 20); i < n; i++)
            put_fmt(b, "%%%02x", (unsigned)pick(r, 256));
        break;
    case 6: /* invalid UTF-8: a bad continuation, a surrogate, past U+10FFFF, overlong, cut short */
        put_str(b, "k");
        put_any(r, b, "%C3%28|%ff|%ED%A0%80|%F4%90%80%80|%C0%AF|%E2%82|%F0%9F%98|%80|%EF%BF%BF%FE|%F8%88%80%80%80");
        break;
    case 7:
        put_any(r, b, "%|%4|%zz|%00|a%|%%|%G1|%2|%0|k%00k");
        break;
    case 8: /* raw bytes, not escaped at all */
        put_random_bytes(r, b, 1 + pick(r, 10), 0);
        break;
    case 9: { /* around --max-key-bytes (1024) */
        static const size_t lengths[] = {1023, 1024, 1025, 3000};
        put_repeat(b, chance(r, 50) ? "k" : "%41", ANY(r, lengths));
        break;
    }
    case 10:
        break; /* empty */
    default:
        put_any(r, b, "a/b|a?b|a#b");
        break;
    }
}

static void gen_query(struct rng *r, struct buf *b)
{
    for (size_t i = 0, n = 1 + pick(r, 3); i < n; i++) {
        if (i > 0)
            put_byte(b, '&');
        switch (pick(r, 8)) {
        case 0:
        case 1:
            put_str(b, "ttl=");
            put_any(r, b, NUMBERS);
            break;
        case 2:
            put_any(r, b, "raw|raw=0|raw=false|raw=1|raw=|raw=yes");
            break;
        case 3:
            put_str(b, "prefix=");
            gen_key(r, b);
            break;
        case 4:
            put_str(b, chance(r, 50) ? "limit=" : "cursor=");
            put_any(r, b, NUMBERS);
            break;
        case 5:
            put_any(r, b, "%zz|&&|=|a=b=c|ttl|ttl=1&ttl=2|%00=1");
            break;
        default:
            put_random_bytes(r, b, 1 + pick(r, 8), 1);
            break;
        }
    }
}

/* The request target; returns which endpoint it names, for the body. */
static enum target gen_target(struct rng *r, struct buf *b)
{
    enum target t = T_OTHER;
    switch (pick(r, 16)) {
    case 0:
    case 1:
        put_str(b, "/cache");
        t = T_CACHE;
        break;
    case 2:
    case 3:
    case 4:
    case 5:
        put_str(b, "/cache/");
        gen_key(r, b);
        t = T_KEY;
        break;
    case 6:
    case 7:
        put_str(b, "/cache/");
        gen_key(r, b);
        put_str(b, chance(r, 90) ? "/incr" : "/incr/more");
        t = T_INCR;
        break;
    case 8:
        put_str(b, "/cache/_mget");
        t = T_MGET;
        break;
    case 9:
        put_str(b, "/cache/_mset");
        t = T_MSET;
        break;
    case 10:
        put_str(b, "http://t/cache/");
        gen_key(r, b);
        t = T_KEY;
        break;
    case 11:
        put_str(b, "/cache//");
        gen_key(r, b);
        break;
    case 12:
        put_any(r, b, "/stats|/metrics|/health|/|*|/nowhere|/CACHE/k|/health?x|//cache|/cache/|/stats/|");
        break;
    case 13:
        put_byte(b, '/');
        put_random_bytes(r, b, pick(r, 30), chance(r, 50));
        break;
    default:
        put_str(b, chance(r, 50) ? "/cache/" : "/cache");
        if (chance(r, 50))
            gen_key(r, b);
        put_byte(b, '?');
        gen_query(r, b);
        t = T_KEY;
        break;
    }
    if (chance(r, 10)) {
        put_byte(b, '?');
        gen_query(r, b);
    }
    return t;
}

static void gen_json_string(struct rng *r, struct buf *b)
{
    put_byte(b, '"');
    if (chance(r, 2)) {
        put_repeat(b, "v", 33000); /* over --max-value-bytes (32 KiB) */
    } else {
        int risky = chance(r, 25);
        for (size_t i = 0, n = pick(r, 12); i < n; i++) {
            if (risky && chance(r, 40)) /* bad escapes, lone surrogates, control characters, invalid UTF-8 */
                put_any(r, b,
                        "\\\"|\\\\|\\/|\\n|\\u0000|\\ud800|\\udc00|\\ud83d\\ude00|\\x|\\u12|\x01|\xc3\xa9|\xff|"
                        "\xc3\x28|\xed\xa0\x80|\xf0\x9f\x98\x80| |\t|%2F|\"");
            else
                put_str(b, chance(r, 80) ? "abc" : "\\u00e9");
        }
    }
    put_byte(b, '"');
}

static void gen_json_number(struct rng *r, struct buf *b)
{
    if (chance(r, 70))
        put_any(r, b, NUMBERS);
    else
        put_any(r, b, "1e400|-0|1.5|01|1e|NaN|Infinity|-|1.|.5");
}

/* A JSON value, valid or nearly so, at most depth levels deep. */
static void gen_json(struct rng *r, struct buf *b, int depth)
{
    switch (pick(r, depth > 0 ? 9 : 6)) {
    case 0:
        put_str(b, "null");
        break;
    case 1:
        put_str(b, chance(r, 50) ? "true" : "false");
        break;
    case 2:
    case 3:
        gen_json_number(r, b);
        break;
    case 4:
    case 5:
        gen_json_string(r, b);
        break;
    case 6:
    case 7:
        put_byte(b, '[');
        for (size_t i = 0, n = pick(r, 5); i < n; i++) {
            if (i > 0)
                put_byte(b, ',');
            gen_json(r, b, depth - 1);
        }
        put_byte(b, ']');
        break;
    default:
        put_byte(b, '{');
        for (size_t i = 0, n = pick(r, 5); i < n; i++) {
            if (i > 0)
                put_byte(b, ',');
            gen_json_string(r, b);
            put_byte(b, ':');
            gen_json(r, b, depth - 1);
        }
        put_byte(b, '}');
        break;
    }
}

/* A key as a JSON value: usually a string (valid or not), sometimes another type. */
static void gen_json_key(struct rng *r, struct buf *b)
{
    if (chance(r, 80)) {
        put_any(r, b,
                "\"k\"|\"user42\"|\"\"|\"a/b\"|\"caf\\u00e9\"|\"\\u0000\"|\"k\\u0000\"|1|null|[]|{}|true|\"\xff\"|"
                "\"nf\"|\"_mget\"");
    } else if (chance(r, 50)) {
        put_byte(b, '"');
        put_repeat(b, "k", chance(r, 50) ? 1024 : 1025);
        put_byte(b, '"');
    } else {
        gen_json_string(r, b);
    }
}

/* Members of a store request, each one present, absent, or of the wrong type. */
static void gen_entry(struct rng *r, struct buf *b, int with_key)
{
    const char *sep = "";
    put_byte(b, '{');
    if (with_key && chance(r, 90)) {
        put_str(b, "\"key\":");
        gen_json_key(r, b);
        sep = ",";
    }
    if (chance(r, 90)) {
        put_fmt(b, "%s\"value\":", sep);
        gen_json(r, b, 3);
        sep = ",";
    }
    if (chance(r, 25)) {
        put_fmt(b, "%s\"ttl\":", sep);
        if (chance(r, 80))
            gen_json_number(r, b);
        else
            gen_json(r, b, 1);
        sep = ",";
    }
    if (chance(r, 10)) {
        put_fmt(b, "%s\"key\":", sep); /* a member given twice */
        gen_json_key(r, b);
    }
    put_byte(b, '}');
}

/* A body for the endpoint t: mostly its own shape, sometimes anything at all. */
static void gen_body(struct rng *r, struct buf *b, enum target t)
{
    size_t start = b->len;
    int kind = (int)pick(r, 100);
    if (kind < 4) {
        return; /* empty */
    } else if (kind < 12) {
        put_random_bytes(r, b, 1 + pick(r, 300), chance(r, 50));
        return;
    } else if (kind < 18) { /* deep nesting, around jansson's limit of 2048 */
        static const size_t depths[] = {10, 100, 2047, 2048, 2049, 20000};
        size_t depth = ANY(r, depths);
        int object = chance(r, 50);
        put_repeat(b, object ? "{\"a\":" : "[", depth);
        put_str(b, "1");
        put_repeat(b, object ? "}" : "]", depth);
        return;
    } else if (kind < 20) {
        put_repeat(b, " ", 70000); /* over --max-body-bytes (64 KiB) */
        return;
    } else if (kind < 28) {
        gen_json(r, b, 4);
        return;
    }
    switch (t) {
    case T_CACHE:
        gen_entry(r, b, 1);
        break;
    case T_KEY:
        if (chance(r, 70))
            gen_entry(r, b, 0);
        else
            put_random_bytes(r, b, pick(r, 200), 0);
        break;
    case T_INCR:
        if (chance(r, 30))
            break;
        put_str(b, "{\"by\":");
        if (chance(r, 80))
            gen_json_number(r, b);
        else
            gen_json(r, b, 1);
        if (chance(r, 30)) {
            put_str(b, ",\"ttl\":");
            gen_json_number(r, b);
        }
        put_byte(b, '}');
        break;
    case T_MGET:
    case T_MSET:
        put_str(b, t == T_MGET ? "{\"keys\":" : "{\"entries\":");
        if (chance(r, 85)) {
            put_byte(b, '[');
            for (size_t i = 0, n = pick(r, 60); i < n; i++) { /* --max-batch is 50 */
                if (i > 0)
                    put_byte(b, ',');
                if (t == T_MGET)
                    gen_json_key(r, b);
                else if (chance(r, 90))
                    gen_entry(r, b, 1);
                else
                    gen_json(r, b, 1);
            }
            put_byte(b, ']');
        } else {
            gen_json(r, b, 2);
        }
        put_byte(b, '}');
        break;
    case T_OTHER:
        gen_json(r, b, 3);
        break;
    }
    if (chance(r, 8) && b->len > start) /* truncated */
        b->len = start + pick(r, b->len - start);
}

static void gen_header(struct rng *r, struct buf *b, const char *eol)
{
    static const char *const tags = "*|\"0000000000000001\"|W/\"0000000000000001\"|\"|a, b, c|\"x\", *|W/|"
                                    "\"ffffffffffffffff\", \"0000000000000000\"";
    int k = (int)pick(r, 100);
    if (k < 20) {
        put_str(b, "Content-Type: ");
        if (chance(r, 10))
            put_repeat(b, "x", 300); /* over 255 bytes */
        else
            put_any(r, b,
                    "application/json|text/plain|image/png|application/ld+json|application/octet-stream||"
                    "application/json; charset=utf-8|text/plain; charset=\xff");
    } else if (k < 32) {
        put_str(b, "Accept: ");
        put_any(r, b,
                "*/*|application/json|image/png|image/png;q=0.9, application/json;q=0.1|text/*;q=abc|a/b;q=1.0001|"
                ";;;,,,|*/*;q=0, text/plain;q=0.5;level=1|application/json;q=0");
    } else if (k < 44) {
        put_str(b, "If-Match: ");
        put_any(r, b, tags);
    } else if (k < 56) {
        put_str(b, "If-None-Match: ");
        put_any(r, b, tags);
    } else if (k < 72) {
        put_any(r, b,
                "Expect: 100-continue|Expect: 100-continue, foo|Expect: fancy|Connection: close|"
                "Connection: keep-alive|Connection: close, close|Authorization: Bearer x|"
                "Authorization: Basic Zm9vOmJhcg==|Cookie: a=b|Accept-Encoding: gzip|Range: bytes=0-1|Host: t|"
                "Content-Length: 0");
    } else if (k < 76) {
        put_fmt(b, "Connection: Upgrade, HTTP2-Settings%sUpgrade: h2c%sHTTP2-Settings: %s", eol, eol,
                chance(r, 70) ? "AAMAAABkAARAAAAAAAIAAAAA" : "AAQAAAAA");
    } else if (k < 84) {
        if (chance(r, 10))
            put(b, "X-Nul: a\0b", 10);
        else
            put_any(r, b,
                    "X-Fold: a\r\n folded|NoColon|Bad Name: v|Name : v|:authority: t|Host:|Connection:|"
                    "Upgrade: h2c|Transfer-Encoding: chunked");
    } else if (k < 90) { /* a random header */
        put_random_bytes(r, b, 1 + pick(r, 20), 1);
        put_str(b, ": ");
        put_random_bytes(r, b, pick(r, 40), chance(r, 70));
    } else if (k < 94) { /* the same header many times */
        for (size_t i = 0, n = 2 + pick(r, 60); i < n; i++)
            put_fmt(b, "If-Match: \"%zu\"%s", i, eol);
        put_str(b, "X-Many: 1");
    } else if (k < 97) { /* over --max-header-bytes (8 KiB), rarely over h2o's own limit of about 400 KiB */
        put_str(b, "X-Long: ");
        put_repeat(b, "a", chance(r, 5) ? 420000 : 9000);
    } else { /* many small headers, around h2o's limit of 100 */
        for (size_t i = 0, n = 50 + pick(r, 80); i < n; i++)
            put_fmt(b, "X-H%zu: %zu%s", i, i, eol);
        put_str(b, "X-Last: 1");
    }
    put_str(b, eol);
}

/* The body as chunks, each size line in some spelling, sometimes broken. */
static void put_chunked(struct rng *r, struct buf *b, const char *body, size_t len)
{
    int breaks = chance(r, 20);
    size_t at = 0;
    while (at < len) {
        size_t n = 1 + pick(r, len - at);
        if (breaks && chance(r, 30)) {
            put_any(r, b, "zz|-1|fffffffffffffffff1|1 1|| |0x10|+5");
            put_str(b, "\r\n");
        } else {
            static const char *const spellings[] = {"%zx\r\n", "%zX\r\n", "%08zx\r\n", "%zx;ext=1\r\n"};
            put_fmt(b, ANY(r, spellings), n);
        }
        if (breaks && chance(r, 20) && at + n < len)
            n++; /* one byte more than the size line said */
        put(b, body + at, n);
        at += n;
        put_str(b, breaks && chance(r, 10) ? "\n" : "\r\n");
    }
    if (breaks && chance(r, 30))
        return; /* no last chunk */
    put_any(r, b, "0\r\n\r\n|0\r\n\r\n|0\r\n\r\n|0\r\nX-Trailer: t\r\n\r\n|0;x\r\n\r\n");
}

/* A request from the loose grammar: any method, target, version, headers and framing. */
static void gen_request(struct rng *r, struct buf *b)
{
    const char *eol = chance(r, 5) ? "\n" : "\r\n";
    struct buf method = {0}, body = {0};
    if (chance(r, 92))
        put_any(r, &method, "GET|GET|GET|POST|POST|PUT|PUT|DELETE|HEAD");
    else
        put_any(r, &method, "OPTIONS|PATCH|TRACE|CONNECT|PRI|get|G E T||\x01GET|FOO");
    put(b, method.p, method.len);
    put_byte(b, ' ');
    enum target t = gen_target(r, b);
    put_byte(b, ' ');
    if (chance(r, 95))
        put_str(b, "HTTP/1.1");
    else
        put_any(r, b, "HTTP/1.0|HTTP/2.0|HTTP/1.|HTTP/9.9||http/1.1|HTTP/1.1 x");
    put_str(b, eol);
    if (chance(r, 90))
        put_fmt(b, "Host: t%s", eol);
    for (size_t i = 0, n = pick(r, 4); i < n; i++)
        gen_header(r, b, eol);
    if (strcmp(method.p, "POST") == 0 || strcmp(method.p, "PUT") == 0 || chance(r, 15))
        gen_body(r, &body, t);

    if (body.len == 0 && !chance(r, 5)) {
        put_str(b, eol);
    } else {
        int framing = (int)pick(r, 100);
        if (framing < 55) {
            put_fmt(b, "Content-Length: %zu%s%s", body.len, eol, eol);
            put(b, body.p, body.len);
        } else if (framing < 72) {
            put_fmt(b, "Transfer-Encoding: chunked%s%s", eol, eol);
            put_chunked(r, b, body.p, body.len);
        } else if (framing < 80) {
            put_str(b, "Content-Length: ");
            put_any(r, b, NUMBERS);
            put_fmt(b, "%s%s", eol, eol);
            put(b, body.p, body.len);
        } else if (framing < 84) { /* two lengths that disagree */
            put_fmt(b, "Content-Length: %zu%sContent-Length: %zu%s%s", body.len, eol, body.len + 1 + pick(r, 9), eol,
                    eol);
            put(b, body.p, body.len);
        } else if (framing < 88) {
            put_fmt(b, "Content-Length: %zu%sTransfer-Encoding: chunked%s%s", body.len, eol, eol, eol);
            put_chunked(r, b, body.p, body.len);
        } else if (framing < 92) {
            put_str(b, eol); /* no framing: the body reads as the next request */
            put(b, body.p, body.len);
        } else if (framing < 96) {
            put_str(b, "Transfer-Encoding: ");
            put_any(r, b, "gzip, chunked|chunked, gzip|identity|CHUNKED|chunked, chunked|gzip");
            put_fmt(b, "%s%s", eol, eol);
            put(b, body.p, body.len);
        } else { /* a length that does not match the body */
            size_t n = chance(r, 50) ? body.len + 1 + pick(r, 100) : pick(r, body.len + 1);
            put_fmt(b, "Content-Length: %zu%s%s", n, eol, eol);
            put(b, body.p, body.len);
        }
    }
    free(method.p);
    free(body.p);
}

/* A JSON value a store request accepts: never null, always well formed. */
static void gen_valid_json(struct rng *r, struct buf *b, int depth)
{
    switch (pick(r, depth > 0 ? 6 : 4)) {
    case 0:
        put_fmt(b, "%lld", (long long)(next(r) >> (1 + pick(r, 63))) * (chance(r, 50) ? 1 : -1));
        break;
    case 1:
        put_any(r, b, "true|false|1.25|\"\"");
        break;
    case 2:
    case 3:
        put_byte(b, '"');
        for (size_t i = 0, n = pick(r, 30); i < n; i++) {
            int c = 0x20 + (int)pick(r, 95);
            put_byte(b, c == '"' || c == '\\' ? '_' : c);
        }
        put_str(b, chance(r, 20) ? "caf\\u00e9\"" : "\"");
        break;
    case 4:
        put_byte(b, '[');
        for (size_t i = 0, n = pick(r, 4); i < n; i++) {
            if (i > 0)
                put_byte(b, ',');
            gen_valid_json(r, b, depth - 1);
        }
        put_byte(b, ']');
        break;
    default:
        put_byte(b, '{');
        for (size_t i = 0, n = pick(r, 4); i < n; i++)
            put_fmt(b, "%s\"m%zu\":%d", i > 0 ? "," : "", i, (int)pick(r, 100));
        put_byte(b, '}');
        break;
    }
}

/*
 * A request the API accepts, on one of twenty keys so that reads, conditional
 * writes and counters find entries: the template set the mutations start from.
 */
static void gen_valid_request(struct rng *r, struct buf *b)
{
    struct buf body = {0};
    int key = (int)pick(r, 20);
    const char *ttl = chance(r, 20) ? "?ttl=60" : "";
    const char *content_type = "application/json";
    switch (pick(r, 14)) {
    case 0:
    case 1:
        put_fmt(b, "POST /cache%s HTTP/1.1\r\n", ttl);
        put_fmt(&body, "{\"key\":\"k%d\",\"value\":", key);
        gen_valid_json(r, &body, 2);
        put_str(&body, chance(r, 20) ? ",\"ttl\":3600}" : "}");
        break;
    case 2:
        put_fmt(b, "PUT /cache/k%d%s HTTP/1.1\r\n", key, ttl);
        if (chance(r, 30)) {
            content_type = chance(r, 50) ? "image/png" : "text/plain";
            put_random_bytes(r, &body, pick(r, 100), chance(r, 50));
        } else {
            put_str(&body, "{\"value\":");
            gen_valid_json(r, &body, 2);
            put_byte(&body, '}');
        }
        if (chance(r, 20))
            put_str(b, chance(r, 50) ? "If-None-Match: *\r\n" : "If-Match: *\r\n");
        break;
    case 3:
    case 4:
    case 5:
        put_fmt(b, "%s /cache/k%d%s HTTP/1.1\r\n", chance(r, 80) ? "GET" : "HEAD", key, chance(r, 15) ? "?raw" : "");
        if (chance(r, 20))
            put_str(b, chance(r, 50) ? "Accept: image/png, application/json;q=0.5\r\n" : "Accept: */*\r\n");
        if (chance(r, 15))
            put_str(b, "If-None-Match: *\r\n");
        break;
    case 6:
        put_fmt(b, "DELETE /cache/k%d HTTP/1.1\r\n%s", key, chance(r, 20) ? "If-Match: *\r\n" : "");
        break;
    case 7:
    case 8:
        put_fmt(b, "POST /cache/k%d/incr%s HTTP/1.1\r\n", key, ttl);
        if (chance(r, 50))
            put_fmt(&body, "{\"by\":%d}", (int)pick(r, 201) - 100);
        break;
    case 9:
        put_str(b, "POST /cache/_mget HTTP/1.1\r\n");
        put_str(&body, "{\"keys\":[");
        for (size_t i = 0, n = pick(r, 20); i < n; i++)
            put_fmt(&body, "%s\"k%d\"", i > 0 ? "," : "", (int)pick(r, 20));
        put_str(&body, "]}");
        break;
    case 10:
        put_str(b, "POST /cache/_mset HTTP/1.1\r\n");
        put_str(&body, "{\"entries\":[");
        for (size_t i = 0, n = 1 + pick(r, 10); i < n; i++) {
            put_fmt(&body, "%s{\"key\":\"k%d\",\"value\":", i > 0 ? "," : "", (int)pick(r, 20));
            gen_valid_json(r, &body, 1);
            put_byte(&body, '}');
        }
        put_str(&body, "]}");
        break;
    case 11:
        put_fmt(b, "GET /cache?prefix=k%d&limit=%d HTTP/1.1\r\n", key % 3, 1 + (int)pick(r, 20));
        break;
    case 12:
        put_fmt(b, "GET %s HTTP/1.1\r\n", chance(r, 50) ? "/stats" : "/metrics");
        break;
    default:
        put_fmt(b, "%s /health HTTP/1.1\r\n", chance(r, 80) ? "GET" : "HEAD");
        break;
    }
    put_str(b, "Host: t\r\n");
    if (chance(r, 40))
        put_str(b, "Connection: close\r\n");
    if (body.len > 0 && chance(r, 25)) {
        put_fmt(b, "Content-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n", content_type);
        for (size_t at = 0, n; at < body.len; at += n) {
            n = 1 + pick(r, body.len - at);
            put_fmt(b, "%zx\r\n", n);
            put(b, body.p + at, n);
            put_str(b, "\r\n");
        }
        put_str(b, "0\r\n\r\n");
    } else if (body.len > 0) {
        put_fmt(b, "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n", content_type, body.len);
        put(b, body.p, body.len);
    } else {
        put_str(b, "\r\n");
    }
    free(body.p);
}

/* ---- HTTP/2 ------------------------------------------------------------------ */

/* An HPACK integer with an n-bit prefix (RFC 7541, 5.1) after the bits in first. */
static void hpack_int(struct buf *b, unsigned first, int prefix_bits, size_t v)
{
    size_t max = ((size_t)1 << prefix_bits) - 1;
    if (v < max) {
        put_byte(b, (int)(first | v));
        return;
    }
    put_byte(b, (int)(first | max));
    for (v -= max; v >= 128; v >>= 7)
        put_byte(b, (int)((v & 127) | 128));
    put_byte(b, (int)v);
}

static void hpack_str(struct buf *b, const char *s, size_t n)
{
    hpack_int(b, 0, 7, n);
    put(b, s, n);
}

/* A literal field without indexing, its name from the static table (RFC 7541, 6.2.2). */
static void hpack_field(struct buf *b, unsigned name_index, const struct buf *value)
{
    hpack_int(b, 0, 4, name_index);
    hpack_str(b, value->p, value->len);
}

/* A header block: a request from the grammar's targets, or bytes HPACK must refuse. */
static void gen_header_block(struct rng *r, struct buf *b)
{
    struct buf v = {0};
    if (chance(r, 15)) { /* huge integers, a table size update, bad Huffman, a lone prefix */
        if (chance(r, 50))
            put_any(r, b, "\x7f\xff\xff\xff\xff\xff\x0f|\x3f\xe1\xff\xff\x0f|\xbf|\x8a\xff|\x40|\xff\xff\xff\xff");
        else
            put_random_bytes(r, b, 1 + pick(r, 40), 0);
        return;
    }
    if (chance(r, 60)) {
        put_byte(b, chance(r, 70) ? 0x82 : 0x83); /* :method GET or POST, indexed */
    } else {
        put_any(r, &v, "GET|POST|PUT|DELETE|HEAD|PATCH|");
        hpack_field(b, 2, &v);
    }
    if (chance(r, 95))
        put_byte(b, 0x86); /* :scheme http */
    if (chance(r, 95)) {
        v.len = 0;
        gen_target(r, &v);
        hpack_field(b, 4, &v); /* :path */
    }
    if (chance(r, 80)) {
        v.len = 0;
        put_str(&v, "t");
        hpack_field(b, 1, &v); /* :authority */
    }
    if (chance(r, 30)) {
        v.len = 0;
        put_str(&v, "application/json");
        hpack_field(b, 31, &v); /* content-type */
    }
    if (chance(r, 20)) {
        v.len = 0;
        put_any(r, &v, NUMBERS);
        hpack_field(b, 28, &v); /* content-length */
    }
    if (chance(r, 15)) { /* a new name: upper-case, a pseudo-header out of place, a connection header */
        v.len = 0;
        put_any(r, &v, "if-match|accept|X-Upper|:path|connection|te|");
        put_byte(b, 0);
        hpack_str(b, v.p, v.len);
        hpack_str(b, "*", 1);
    }
    free(v.p);
}

static void put_u32(struct buf *b, uint32_t v)
{
    const unsigned char be[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                                 (unsigned char)v};
    put(b, be, sizeof(be));
}

static void put_frame(struct rng *r, struct buf *b, int type, int flags, uint32_t stream, const struct buf *payload)
{
    size_t len = chance(r, 94) ? payload->len : pick(r, 40000); /* now and then a length that lies */
    const unsigned char head[5] = {(unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len,
                                   (unsigned char)type, (unsigned char)flags};
    put(b, head, sizeof(head));
    put_u32(b, stream);
    put(b, payload->p, payload->len);
}

/* The connection preface, then frames: requests, and frames a server must refuse. */
static void gen_h2(struct rng *r, struct buf *b)
{
    static const uint32_t values[] = {0, 1, 100, 16383, 16384, 16777215, 16777216, 0x7fffffff, 0xffffffff};
    struct buf p = {0};
    uint32_t stream = 1;
    put_str(b, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    for (size_t i = 0, n = 1 + pick(r, 8); i < n; i++) {
        int type = i == 0 && chance(r, 85) ? 4 : (int)pick(r, 16);
        int flags = 0;
        uint32_t id = chance(r, 90) ? stream : (uint32_t)next(r);
        p.len = 0;
        switch (type) {
        case 0: /* DATA */
            gen_body(r, &p, T_CACHE);
            flags = chance(r, 70) ? 0x1 : 0;
            break;
        case 1: /* HEADERS, three times as often as other types (10 and 11 become HEADERS) */
        case 10:
        case 11:
        case 9: /* CONTINUATION */
            type = type == 9 ? 9 : 1;
            if (chance(r, 5)) {
                put_u32(&p, 0x80000000u); /* PRIORITY flag: an exclusive dependency on stream 0 */
                put_byte(&p, 16);
                flags |= 0x20;
            }
            gen_header_block(r, &p);
            flags |= (chance(r, 85) ? 0x4 : 0) | (chance(r, 50) ? 0x1 : 0);
            if (type == 1 && chance(r, 80))
                stream += 2;
            break;
        case 2: /* PRIORITY, sometimes on itself */
            put_u32(&p, chance(r, 30) ? id : (uint32_t)pick(r, 8));
            put_byte(&p, (int)pick(r, 256));
            break;
        case 3: /* RST_STREAM */
            put_u32(&p, (uint32_t)pick(r, 16));
            break;
        case 4: /* SETTINGS */
            for (size_t k = 0, params = pick(r, 6); k < params; k++) {
                put_byte(&p, 0);
                put_byte(&p, (int)pick(r, 9));
                put_u32(&p, chance(r, 80) ? ANY(r, values) : (uint32_t)next(r));
            }
            flags = chance(r, 10) ? 0x1 : 0;
            id = chance(r, 95) ? 0 : id;
            break;
        case 5: /* PUSH_PROMISE, which a client may not send */
            put_u32(&p, stream + 1);
            gen_header_block(r, &p);
            flags = 0x4;
            break;
        case 6: /* PING, sometimes of the wrong length */
            put_random_bytes(r, &p, chance(r, 80) ? 8 : pick(r, 12), 0);
            id = chance(r, 90) ? 0 : id;
            break;
        case 7: /* GOAWAY */
            put_u32(&p, stream);
            put_u32(&p, (uint32_t)pick(r, 16));
            id = 0;
            break;
        case 8: /* WINDOW_UPDATE: zero, overflowing, or ordinary */
            put_u32(&p, chance(r, 50) ? ANY(r, values) : (uint32_t)pick(r, 65536));
            id = chance(r, 50) ? 0 : id;
            break;
        default: /* an unknown type, or bytes that are no frame at all */
            put_random_bytes(r, &p, pick(r, 64), 0);
            if (chance(r, 50)) {
                put(b, p.p, p.len);
                continue;
            }
            break;
        }
        put_frame(r, b, type, flags, id, &p);
    }
    free(p.p);
}

/* ---- cases ------------------------------------------------------------------------ */

/* After its last byte the client half-closes, waits for the server to close, closes, or resets. */
enum ending { END_HALF_CLOSE, END_WAIT, END_CLOSE, END_RESET };

static const char *const ending_names[] = {"half-close", "wait", "close", "reset"};

struct fuzz_case {
    unsigned long index;
    struct buf bytes;
    size_t cuts[MAX_PIECES]; /* the sends end at these offsets; the last is how much is sent */
    int pieces;
    int gap_ms; /* between pieces, and before a close or reset */
    enum ending ending;
    int h2; /* an HTTP/2 preface or an h2c upgrade: frames may come back */
};

static void mutate(struct rng *r, struct buf *b)
{
    for (size_t i = 0, n = 1 + pick(r, 6); i < n && b->len > 0; i++) {
        size_t at = pick(r, b->len), span = 1 + pick(r, 64);
        struct buf tail = {0};
        if (span > b->len - at)
            span = b->len - at;
        switch (pick(r, 7)) {
        case 0:
            b->p[at] ^= (char)(1u << pick(r, 8));
            break;
        case 1:
            b->p[at] = (char)pick(r, 256);
            break;
        case 2: /* insert a token that means something to a parser, or random bytes */
        case 3:
            put(&tail, b->p + at, b->len - at);
            b->len = at;
            if (chance(r, 10))
                put(b, "\0", 1);
            else if (chance(r, 50))
                put_any(r, b,
                        "\r\n|\r\n\r\n|:| |%|%00|\xff|chunked|Content-Length: 5\r\n|0\r\n\r\n|HTTP/1.1|"
                        "GET / HTTP/1.1\r\n\r\n|\n|\t|\x80");
            else
                put_random_bytes(r, b, 1 + pick(r, 16), 0);
            put(b, tail.p, tail.len);
            break;
        case 4: /* delete */
            memmove(b->p + at, b->p + at + span, b->len - at - span);
            b->len -= span;
            break;
        case 5: /* duplicate */
            put(&tail, b->p + at, b->len - at);
            b->len = at + span;
            put(b, tail.p, tail.len);
            break;
        default: /* truncate */
            b->len = at;
            break;
        }
        free(tail.p);
    }
}

/* Whether needle occurs in the len bytes at p, in any case (NULs included). */
static int contains_nocase(const char *p, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(p + i, needle, n) == 0)
            return 1;
    return 0;
}

/* Case index of the run with seed: its bytes and how they are delivered. */
static void gen_case(uint64_t seed, unsigned long index, struct fuzz_case *c)
{
    struct rng r = {seed ^ ((uint64_t)(index + 1) * 0xD1B54A32D192ED03ull)};
    memset(c, 0, sizeof(*c));
    c->index = index;
    put_str(&c->bytes, "");
    int kind = (int)pick(&r, 100);
    if (kind < 5) {
        put_random_bytes(&r, &c->bytes, 1 + pick(&r, 4096), chance(&r, 50));
    } else if (kind < 13) {
        gen_h2(&r, &c->bytes);
    } else {
        for (size_t i = 0, n = chance(&r, 15) ? 2 + pick(&r, 5) : 1; i < n; i++) {
            if (chance(&r, 40))
                gen_valid_request(&r, &c->bytes);
            else
                gen_request(&r, &c->bytes);
        }
    }
    if (kind >= 5 && chance(&r, 35))
        mutate(&r, &c->bytes);

    c->h2 =
        contains_nocase(c->bytes.p, c->bytes.len, "PRI * HTTP/2") || contains_nocase(c->bytes.p, c->bytes.len, "h2c");
    int e = (int)pick(&r, 100);
    c->ending = e < 50 ? END_HALF_CLOSE : e < 75 ? END_WAIT : e < 88 ? END_CLOSE : END_RESET;
    /* A server may hold an HTTP/2 connection whose client window is shut: that is no hang. */
    if (c->ending == END_WAIT && c->h2)
        c->ending = END_HALF_CLOSE;
    size_t send_len = c->bytes.len;
    if (c->ending >= END_CLOSE && chance(&r, 50))
        send_len = pick(&r, send_len + 1);
    c->pieces = chance(&r, 65) ? 1 : 2 + (int)pick(&r, MAX_PIECES - 1);
    for (int i = 0; i < c->pieces - 1; i++)
        c->cuts[i] = pick(&r, send_len + 1);
    c->cuts[c->pieces - 1] = send_len;
    for (int i = 1; i < c->pieces; i++) /* insertion sort: a handful of cuts */
        for (int j = i; j > 0 && c->cuts[j - 1] > c->cuts[j]; j--) {
            size_t swap = c->cuts[j];
            c->cuts[j] = c->cuts[j - 1];
            c->cuts[j - 1] = swap;
        }
    c->gap_ms = (int)pick(&r, c->pieces > 4 ? 6 : 25);
}

/* ---- running cases ------------------------------------------------------------------ */

struct tally {
    uint64_t seed;
    unsigned long cases, responses, none, h2;
    unsigned long status[600];
};

struct slot {
    int fd; /* -1: free */
    struct fuzz_case c;
    size_t sent;
    int piece;        /* the cut the sends are heading for */
    int done_sending; /* the last piece went out, or the server stopped reading */
    int64_t next_at;  /* when the next piece, or the close, is due */
    int64_t deadline; /* the server must have closed the connection by then */
    struct buf in;
};

/* Prints a buffer as a C string literal (at most limit bytes of it). */
static void print_escaped(const char *label, const char *p, size_t len, size_t limit)
{
    fprintf(stderr, "  %s (%zu bytes): \"", label, len);
    for (size_t i = 0; i < len && i < limit; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '\\' || ch == '"')
            fprintf(stderr, "\\%c", ch);
        else if (ch == '\r')
            fputs("\\r", stderr);
        else if (ch == '\n')
            fputs("\\n", stderr);
        else if (ch >= 0x20 && ch < 0x7f)
            fputc(ch, stderr);
        else
            fprintf(stderr, "\\x%02x\"\"", ch); /* "" ends the escape before a following hex digit */
    }
    fprintf(stderr, "\"%s\n", len > limit ? "..." : "");
}

static void fail_case(const struct tally *t, const struct slot *s, const char *why)
{
    fprintf(stderr, "netfuzz: case %lu of NETFUZZ_SEED=%" PRIu64 ": %s\n", s->c.index, t->seed, why);
    fprintf(stderr, "  delivery: %zu of %zu bytes in %d pieces %d ms apart, then %s\n", s->c.cuts[s->c.pieces - 1],
            s->c.bytes.len, s->c.pieces, s->c.gap_ms, ending_names[s->c.ending]);
    print_escaped("request", s->c.bytes.p, s->c.bytes.len, 4096);
    print_escaped("response", s->in.len > 0 ? s->in.p : "", s->in.len, 2048);
    fail_msg("netfuzz case %lu: %s", s->c.index, why);
}

/* The value of header name in a response head, copied into out; NULL if absent. */
static const char *header(const char *head, size_t head_len, const char *name, char *out, size_t size)
{
    struct raw_res r = {.head = head, .head_len = head_len};
    return raw_header(&r, name, out, size);
}

/* An error response is {"error": string} as application/json, or h2o's own fixed 400. */
static int is_valid_error(int status, const char *head, size_t head_len, const char *body, size_t body_len)
{
    char ct[128];
    if (header(head, head_len, "Content-Type", ct, sizeof(ct)) == NULL)
        return 0;
    if (status == 400 && strncmp(ct, "text/plain", 10) == 0)
        return body_len == 11 && memcmp(body, "Bad Request", 11) == 0;
    if (strcmp(ct, "application/json") != 0)
        return 0;
    json_t *v = json_loadb(body, body_len, 0, NULL);
    int ok = json_is_object(v) && json_is_string(json_object_get(v, "error"));
    json_decref(v);
    return ok;
}

static int is_status_line(const char *p, size_t len)
{
    return len >= 13 && memcmp(p, "HTTP/1.1 ", 9) == 0 && isdigit((unsigned char)p[9]) &&
           isdigit((unsigned char)p[10]) && isdigit((unsigned char)p[11]) && p[12] == ' ';
}

/*
 * Checks what came back for one case and counts its statuses. Responses are
 * read in order by Content-Length; a response to HEAD has none of its body,
 * which shows when a status line follows its head at once (a JSON body never
 * starts with one, and the fuzzer stores no raw value that does).
 */
static void check_response(struct tally *t, const struct slot *s)
{
    const char *in = s->in.p;
    size_t len = s->in.len, at = 0;
    if (len == 0) {
        t->none++;
        return;
    }
    if (s->c.h2 && len >= 9 && memcmp(in, "HTTP/", 5) != 0) {
        /* The server's preface: a SETTINGS frame (or a GOAWAY) on stream 0. */
        if ((in[3] != 4 && in[3] != 7) || (in[5] | in[6] | in[7] | in[8]) != 0)
            fail_case(t, s, "an HTTP/2 answer that does not start with SETTINGS or GOAWAY on stream 0");
        t->h2++;
        return;
    }
    for (int n = 0; at < len; n++) {
        const char *p = in + at;
        size_t left = len - at;
        if (left < 13) { /* cut short by a reset: what there is must still fit */
            if (memcmp(p, "HTTP/1.1 ", left < 9 ? left : 9) != 0)
                fail_case(t, s, "bytes that are not an HTTP/1.1 status line");
            return;
        }
        if (!is_status_line(p, left)) {
            if (n == 0)
                fail_case(t, s, "a response that does not start with \"HTTP/1.1 \" and a 3-digit status");
            return; /* past a body misjudged, or after an upgrade */
        }
        int status = atoi(p + 9);
        if (status < 100 || status >= 600)
            fail_case(t, s, "a status out of range");
        t->status[status]++;
        t->responses++;
        if (status >= 500 && status != 503)
            fail_case(t, s, "a 5xx status other than 503");
        const char *blank = memmem(p, left, "\r\n\r\n", 4);
        if (blank == NULL || status == 101)
            return;
        size_t head_len = (size_t)(blank - p) + 2, body_len = 0;
        const char *body = blank + 4;
        size_t body_at = (size_t)(body - in);
        if (status >= 200 && status != 204 && status != 304) {
            char cl[32];
            if (header(p, head_len, "Content-Length", cl, sizeof(cl)) == NULL)
                fail_case(t, s, "a response without Content-Length");
            body_len = strtoul(cl, NULL, 10);
        }
        int head_only = body_len > 0 && is_status_line(body, len - body_at);
        if (head_only)
            body_len = 0;
        if (body_at + body_len > len)
            return; /* the rest was cut off by the close */
        if (status >= 400 && !head_only && !is_valid_error(status, p, head_len, body, body_len))
            fail_case(t, s, "an error that is not JSON {\"error\": ...} (nor h2o's text/plain 400)");
        at = body_at + body_len;
    }
}

static void start_case(const struct tally *t, struct slot *s, unsigned long index)
{
    gen_case(t->seed, index, &s->c);
    s->fd = raw_try_connect(PORT);
    if (s->fd == -1)
        fail_msg("netfuzz case %lu: connect: %s (has the server died?)", index, strerror(errno));
    fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
    s->sent = 0;
    s->piece = 0;
    s->done_sending = 0;
    s->next_at = now_ms();
    s->deadline = s->next_at + hang_ms;
    s->in = (struct buf){0};
}

static void finish_case(struct tally *t, struct slot *s, int closed_by_server)
{
    if (!closed_by_server && s->c.ending == END_RESET)
        raw_close_with_reset(s->fd);
    else
        close(s->fd);
    s->fd = -1;
    check_response(t, s);
    t->cases++;
    free(s->c.bytes.p);
    free(s->in.p);
}

/* Reads what is there; returns 1 once the server has closed (or reset) the connection. */
static int read_some(struct slot *s)
{
    char chunk[16384];
    for (;;) {
        ssize_t n = recv(s->fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return 1;
        if (s->in.len < READ_CAP)
            put(&s->in, chunk, (size_t)n);
    }
}

/* The last byte went out (or the server stopped taking them): start the ending. */
static void end_sending(struct slot *s, int64_t now)
{
    s->done_sending = 1;
    s->deadline = now + hang_ms;
    if (s->c.ending == END_HALF_CLOSE)
        shutdown(s->fd, SHUT_WR);
    else if (s->c.ending >= END_CLOSE)
        s->next_at = now + s->c.gap_ms;
}

static void send_some(struct slot *s, int64_t now)
{
    size_t cut = s->c.cuts[s->piece];
    while (s->sent < cut) {
        ssize_t n = send(s->fd, s->c.bytes.p + s->sent, cut - s->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) { /* the server closed: read what it said */
            end_sending(s, now);
            return;
        }
        s->sent += (size_t)n;
        s->deadline = now + hang_ms;
    }
    if (++s->piece == s->c.pieces)
        end_sending(s, now);
    else
        s->next_at = now + s->c.gap_ms;
}

/* Runs cases [first, end), SLOTS at a time, until every one has finished. */
static void run_batch(struct tally *t, unsigned long first, unsigned long end)
{
    /* Static: after a failure, what the cases hold stays reachable, so LSan adds no report of its own. */
    static struct slot slots[SLOTS];
    struct pollfd fds[SLOTS];
    unsigned long next_case = first;
    for (int i = 0; i < SLOTS; i++)
        slots[i].fd = -1;
    for (;;) {
        int active = 0, timeout = 100;
        int64_t now = now_ms();
        for (int i = 0; i < SLOTS; i++) {
            struct slot *s = &slots[i];
            if (s->fd == -1 && next_case < end)
                start_case(t, s, next_case++);
            fds[i] = (struct pollfd){.fd = s->fd, .events = POLLIN};
            if (s->fd == -1)
                continue;
            active++;
            int64_t due = s->deadline;
            if ((!s->done_sending || s->c.ending >= END_CLOSE) && s->next_at < due)
                due = s->next_at;
            if (!s->done_sending && now >= s->next_at)
                fds[i].events |= POLLOUT;
            if (due - now < timeout)
                timeout = due > now ? (int)(due - now) : 0;
        }
        if (active == 0)
            return;
        if (poll(fds, SLOTS, timeout) < 0 && errno != EINTR)
            fail_msg("poll: %s", strerror(errno));
        now = now_ms();
        for (int i = 0; i < SLOTS; i++) {
            struct slot *s = &slots[i];
            if (s->fd == -1)
                continue;
            if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) && read_some(s)) {
                finish_case(t, s, 1);
                continue;
            }
            if (!s->done_sending && now >= s->next_at)
                send_some(s, now);
            if (s->done_sending && s->c.ending >= END_CLOSE && now >= s->next_at) {
                read_some(s);
                finish_case(t, s, 0);
                continue;
            }
            if (now > s->deadline)
                fail_case(t, s, "the server kept the connection open past the request timeout");
        }
    }
}

/* ---- checks between batches ------------------------------------------------------ */

/* The server is alive, healthy, stores and returns a value verbatim, and holds no connection of the batch. */
static void expect_server_answers(const struct tally *t, unsigned long first, unsigned long end)
{
    int status = server_wait_exit(&group_server, 0);
    if (group_server.pid == 0)
        fail_msg("the server exited with status %d during cases %lu-%lu (NETFUZZ_SEED=%" PRIu64 ")", status, first,
                 end - 1, t->seed);

    struct http_res res;
    struct http_req req = {.path = "/health"};
    if (http_do(NULL, PORT, &req, &res) != 0)
        fail_msg("GET /health after cases %lu-%lu: %s", first, end - 1, curl_easy_strerror(res.curl_code));
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"status\":\"ok\"}");
    http_res_free(&res);

    /* A store request has the shape of the answer to GET, so one string is both. */
    char entry[192], path[64];
    snprintf(path, sizeof(path), "/cache/netfuzz-check-%lu", first);
    snprintf(entry, sizeof(entry), "{\"key\":\"%s\",\"value\":[%lu,\"netfuzz\",true,{\"seed\":\"%" PRIu64 "\"}]}",
             path + 7, first, t->seed);
    http_call(PORT, "POST", "/cache", entry, &res);
    expect_message(&res, 200, "stored");
    http_res_free(&res);
    http_call(PORT, "GET", path, NULL, &res);
    expect_json(&res, 200);
    if (strcmp(res.body, entry) != 0)
        fail_msg("after cases %lu-%lu: GET %s returned %s, expected %s", first, end - 1, path, res.body, entry);
    http_res_free(&res);

    expect_connections_drop_to(PORT, 1, hang_ms); /* the /stats connection itself */
}

/* ---- the test ------------------------------------------------------------------------- */

static uint64_t env_u64(const char *name, uint64_t fallback)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return fallback;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 0);
    if (errno != 0 || *end != '\0')
        fail_msg("%s=%s is not a number", name, v);
    return n;
}

static void thousands_of_malformed_requests_leave_the_server_answering_correctly(void **state)
{
    (void)state;
    static struct tally t; /* 5 KB of counters: off the stack */
    memset(&t, 0, sizeof(t));
    struct rng clock_rng = {(uint64_t)now_ms() ^ ((uint64_t)getpid() << 32)};
    t.seed = env_u64("NETFUZZ_SEED", next(&clock_rng));
    int valgrind = procfs_runs_under_valgrind(group_server.pid);
    hang_ms = REQUEST_TIMEOUT_MS + (SANITIZED || valgrind ? 20000 : 5000);
    unsigned long cases = (unsigned long)env_u64("NETFUZZ_CASES", valgrind ? VALGRIND_CASES : CASES);
    printf("netfuzz: seed %" PRIu64 " (repeat with NETFUZZ_SEED=%" PRIu64 "), %lu cases, %d at a time%s\n", t.seed,
           t.seed, cases, SLOTS,
           SANITIZED  ? ", sanitized build"
           : valgrind ? ", server under valgrind"
                      : "");
    fflush(stdout);

    int64_t start = now_ms();
    for (unsigned long first = 0; first < cases; first += BATCH) {
        unsigned long end = first + BATCH < cases ? first + BATCH : cases;
        run_batch(&t, first, end);
        expect_server_answers(&t, first, end);
    }
    assert_int_equal(t.cases, cases);

    printf("netfuzz: %lu cases, seed %" PRIu64 ", %.1f s, statuses", t.cases, t.seed,
           (double)(now_ms() - start) / 1000);
    for (int i = 0; i < 600; i++)
        if (t.status[i] > 0)
            printf(" %d:%lu", i, t.status[i]);
    printf(" (%lu responses), no answer:%lu, HTTP/2 frames:%lu\n", t.responses, t.none, t.h2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(thousands_of_malformed_requests_leave_the_server_answering_correctly),
    };
    group_server_args = server_flags;
    return support_exit_code(cmocka_run_group_tests(tests, group_server_setup, group_server_teardown));
}
