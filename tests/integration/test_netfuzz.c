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
 * Cases run NETFUZZ_SLOTS at a time, multiplexed with poll() by the runner in
 * tests/support/netfuzz.c, so a connection the server keeps open costs one
 * slot a second (the --request-timeout), not the whole run. Per case,
 * whatever came back must start like an HTTP/1.1 response (or HTTP/2 frames,
 * for an HTTP/2 case), no status may be a 5xx but 503, every error body must
 * be JSON {"error": ...} (h2o's own fixed text/plain 400 aside), and the
 * server must close the connection within the request timeout of the client's
 * last byte. After each batch the server must still answer /health, store a
 * value and return it verbatim, and count no connection left open; at the end
 * the group teardown requires exit 0 on SIGTERM (under ASan: no sanitizer
 * report).
 *
 * Case i's bytes depend only on the seed and i, never on timing. The seed is
 * printed; NETFUZZ_SEED repeats a run and NETFUZZ_CASES changes its length.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/http.h"
#include "../support/netfuzz.h"
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
#define REQUEST_TIMEOUT_MS 1000
#define READ_CAP           (1 << 20)

/* Small limits, so that small requests reach 413 and 431, and a small store that evicts. */
static const char *const server_flags[] = {
    "--request-timeout=1s",   "--idle-timeout=1s", "--max-body-bytes=64kb", "--max-value-bytes=32kb",
    "--max-header-bytes=8kb", "--max-batch=50",    "--max-memory=32mb",     NULL};

#define PORT          (group_server.port)
#define ANY(r, array) ((array)[rng_pick((r), sizeof(array) / sizeof((array)[0]))])

/* A case's flags: an HTTP/2 preface or an h2c upgrade, so frames may come back. */
#define CASE_H2 1u

/* What a mutation inserts, besides random bytes: tokens that mean something to an HTTP/1 parser. */
#define MUTATION_TOKENS                                                                                                \
    "\r\n|\r\n\r\n|:| |%|%00|\xff|chunked|Content-Length: 5\r\n|0\r\n\r\n|HTTP/1.1|GET / HTTP/1.1\r\n\r\n|\n|\t|\x80"

/* ---- HTTP/1 requests ------------------------------------------------------ */

/* Numbers as a client might send them for a TTL, a limit, a length or an increment. */
#define NUMBERS                                                                                                        \
    "0|1|-1|60|315360000|315360001|1.5|abc||99999999999999999999|9223372036854775807|-9223372036854775808|"            \
    "18446744073709551616|0x10|1e3| 5|+5|007|1000|1001|4294967296|5, 5"

enum target { T_CACHE, T_KEY, T_INCR, T_MGET, T_MSET, T_OTHER };

/* One path segment naming a key, percent-encoded as a client would, or not quite. */
static void gen_key(struct rng *r, struct buf *b)
{
    switch (rng_pick(r, 12)) {
    case 0:
    case 1:
    case 2:
    case 3:
        rng_word(r, b, "k|user42|cart:7|a%2Fb|caf%C3%A9|_mget|..|%2e%2e|nf|counter|x%20y|img|_mset|a+b");
        break;
    case 4: /* printable ASCII, escaped where a URL needs it */
        for (size_t i = 0, n = 1 + rng_pick(r, 40); i < n; i++) {
            int c = 0x20 + (int)rng_pick(r, 95);
            if (isalnum(c) || c == '-' || c == '_' || c == '.')
                buf_byte(b, c);
            else
                buf_fmt(b, "%%%02X", c);
        }
        break;
    case 5: /* arbitrary bytes, every one escaped: NUL and invalid UTF-8 included */
        for (size_t i = 0, n = 1 + rng_pick(r, 20); i < n; i++)
            buf_fmt(b, "%%%02x", (unsigned)rng_pick(r, 256));
        break;
    case 6: /* invalid UTF-8: a bad continuation, a surrogate, past U+10FFFF, overlong, cut short */
        buf_str(b, "k");
        rng_word(r, b, "%C3%28|%ff|%ED%A0%80|%F4%90%80%80|%C0%AF|%E2%82|%F0%9F%98|%80|%EF%BF%BF%FE|%F8%88%80%80%80");
        break;
    case 7:
        rng_word(r, b, "%|%4|%zz|%00|a%|%%|%G1|%2|%0|k%00k");
        break;
    case 8: /* raw bytes, not escaped at all */
        rng_bytes(r, b, 1 + rng_pick(r, 10), 0);
        break;
    case 9: { /* around --max-key-bytes (1024) */
        static const size_t lengths[] = {1023, 1024, 1025, 3000};
        buf_repeat(b, rng_chance(r, 50) ? "k" : "%41", ANY(r, lengths));
        break;
    }
    case 10:
        break; /* empty */
    default:
        rng_word(r, b, "a/b|a?b|a#b");
        break;
    }
}

static void gen_query(struct rng *r, struct buf *b)
{
    for (size_t i = 0, n = 1 + rng_pick(r, 3); i < n; i++) {
        if (i > 0)
            buf_byte(b, '&');
        switch (rng_pick(r, 8)) {
        case 0:
        case 1:
            buf_str(b, "ttl=");
            rng_word(r, b, NUMBERS);
            break;
        case 2:
            rng_word(r, b, "raw|raw=0|raw=false|raw=1|raw=|raw=yes");
            break;
        case 3:
            buf_str(b, "prefix=");
            gen_key(r, b);
            break;
        case 4:
            buf_str(b, rng_chance(r, 50) ? "limit=" : "cursor=");
            rng_word(r, b, NUMBERS);
            break;
        case 5:
            rng_word(r, b, "%zz|&&|=|a=b=c|ttl|ttl=1&ttl=2|%00=1");
            break;
        default:
            rng_bytes(r, b, 1 + rng_pick(r, 8), 1);
            break;
        }
    }
}

/* The request target; returns which endpoint it names, for the body. */
static enum target gen_target(struct rng *r, struct buf *b)
{
    enum target t = T_OTHER;
    switch (rng_pick(r, 16)) {
    case 0:
    case 1:
        buf_str(b, "/cache");
        t = T_CACHE;
        break;
    case 2:
    case 3:
    case 4:
    case 5:
        buf_str(b, "/cache/");
        gen_key(r, b);
        t = T_KEY;
        break;
    case 6:
    case 7:
        buf_str(b, "/cache/");
        gen_key(r, b);
        buf_str(b, rng_chance(r, 90) ? "/incr" : "/incr/more");
        t = T_INCR;
        break;
    case 8:
        buf_str(b, "/cache/_mget");
        t = T_MGET;
        break;
    case 9:
        buf_str(b, "/cache/_mset");
        t = T_MSET;
        break;
    case 10:
        buf_str(b, "http://t/cache/");
        gen_key(r, b);
        t = T_KEY;
        break;
    case 11:
        buf_str(b, "/cache//");
        gen_key(r, b);
        break;
    case 12:
        rng_word(r, b, "/stats|/metrics|/health|/|*|/nowhere|/CACHE/k|/health?x|//cache|/cache/|/stats/|");
        break;
    case 13:
        buf_byte(b, '/');
        rng_bytes(r, b, rng_pick(r, 30), rng_chance(r, 50));
        break;
    default:
        buf_str(b, rng_chance(r, 50) ? "/cache/" : "/cache");
        if (rng_chance(r, 50))
            gen_key(r, b);
        buf_byte(b, '?');
        gen_query(r, b);
        t = T_KEY;
        break;
    }
    if (rng_chance(r, 10)) {
        buf_byte(b, '?');
        gen_query(r, b);
    }
    return t;
}

static void gen_json_string(struct rng *r, struct buf *b)
{
    buf_byte(b, '"');
    if (rng_chance(r, 2)) {
        buf_repeat(b, "v", 33000); /* over --max-value-bytes (32 KiB) */
    } else {
        int risky = rng_chance(r, 25);
        for (size_t i = 0, n = rng_pick(r, 12); i < n; i++) {
            if (risky && rng_chance(r, 40)) /* bad escapes, lone surrogates, control characters, invalid UTF-8 */
                rng_word(r, b,
                         "\\\"|\\\\|\\/|\\n|\\u0000|\\ud800|\\udc00|\\ud83d\\ude00|\\x|\\u12|\x01|\xc3\xa9|\xff|"
                         "\xc3\x28|\xed\xa0\x80|\xf0\x9f\x98\x80| |\t|%2F|\"");
            else
                buf_str(b, rng_chance(r, 80) ? "abc" : "\\u00e9");
        }
    }
    buf_byte(b, '"');
}

static void gen_json_number(struct rng *r, struct buf *b)
{
    if (rng_chance(r, 70))
        rng_word(r, b, NUMBERS);
    else
        rng_word(r, b, "1e400|-0|1.5|01|1e|NaN|Infinity|-|1.|.5");
}

/* A JSON value, valid or nearly so, at most depth levels deep. */
static void gen_json(struct rng *r, struct buf *b, int depth)
{
    switch (rng_pick(r, depth > 0 ? 9 : 6)) {
    case 0:
        buf_str(b, "null");
        break;
    case 1:
        buf_str(b, rng_chance(r, 50) ? "true" : "false");
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
        buf_byte(b, '[');
        for (size_t i = 0, n = rng_pick(r, 5); i < n; i++) {
            if (i > 0)
                buf_byte(b, ',');
            gen_json(r, b, depth - 1);
        }
        buf_byte(b, ']');
        break;
    default:
        buf_byte(b, '{');
        for (size_t i = 0, n = rng_pick(r, 5); i < n; i++) {
            if (i > 0)
                buf_byte(b, ',');
            gen_json_string(r, b);
            buf_byte(b, ':');
            gen_json(r, b, depth - 1);
        }
        buf_byte(b, '}');
        break;
    }
}

/* A key as a JSON value: usually a string (valid or not), sometimes another type. */
static void gen_json_key(struct rng *r, struct buf *b)
{
    if (rng_chance(r, 80)) {
        rng_word(r, b,
                 "\"k\"|\"user42\"|\"\"|\"a/b\"|\"caf\\u00e9\"|\"\\u0000\"|\"k\\u0000\"|1|null|[]|{}|true|\"\xff\"|"
                 "\"nf\"|\"_mget\"");
    } else if (rng_chance(r, 50)) {
        buf_byte(b, '"');
        buf_repeat(b, "k", rng_chance(r, 50) ? 1024 : 1025);
        buf_byte(b, '"');
    } else {
        gen_json_string(r, b);
    }
}

/* Members of a store request, each one present, absent, or of the wrong type. */
static void gen_entry(struct rng *r, struct buf *b, int with_key)
{
    const char *sep = "";
    buf_byte(b, '{');
    if (with_key && rng_chance(r, 90)) {
        buf_str(b, "\"key\":");
        gen_json_key(r, b);
        sep = ",";
    }
    if (rng_chance(r, 90)) {
        buf_fmt(b, "%s\"value\":", sep);
        gen_json(r, b, 3);
        sep = ",";
    }
    if (rng_chance(r, 25)) {
        buf_fmt(b, "%s\"ttl\":", sep);
        if (rng_chance(r, 80))
            gen_json_number(r, b);
        else
            gen_json(r, b, 1);
        sep = ",";
    }
    if (rng_chance(r, 10)) {
        buf_fmt(b, "%s\"key\":", sep); /* a member given twice */
        gen_json_key(r, b);
    }
    buf_byte(b, '}');
}

/* A body for the endpoint t: mostly its own shape, sometimes anything at all. */
static void gen_body(struct rng *r, struct buf *b, enum target t)
{
    size_t start = b->len;
    int kind = (int)rng_pick(r, 100);
    if (kind < 4) {
        return; /* empty */
    } else if (kind < 12) {
        rng_bytes(r, b, 1 + rng_pick(r, 300), rng_chance(r, 50));
        return;
    } else if (kind < 18) { /* deep nesting, around jansson's limit of 2048 */
        static const size_t depths[] = {10, 100, 2047, 2048, 2049, 20000};
        size_t depth = ANY(r, depths);
        int object = rng_chance(r, 50);
        buf_repeat(b, object ? "{\"a\":" : "[", depth);
        buf_str(b, "1");
        buf_repeat(b, object ? "}" : "]", depth);
        return;
    } else if (kind < 20) {
        buf_repeat(b, " ", 70000); /* over --max-body-bytes (64 KiB) */
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
        if (rng_chance(r, 70))
            gen_entry(r, b, 0);
        else
            rng_bytes(r, b, rng_pick(r, 200), 0);
        break;
    case T_INCR:
        if (rng_chance(r, 30))
            break;
        buf_str(b, "{\"by\":");
        if (rng_chance(r, 80))
            gen_json_number(r, b);
        else
            gen_json(r, b, 1);
        if (rng_chance(r, 30)) {
            buf_str(b, ",\"ttl\":");
            gen_json_number(r, b);
        }
        buf_byte(b, '}');
        break;
    case T_MGET:
    case T_MSET:
        buf_str(b, t == T_MGET ? "{\"keys\":" : "{\"entries\":");
        if (rng_chance(r, 85)) {
            buf_byte(b, '[');
            for (size_t i = 0, n = rng_pick(r, 60); i < n; i++) { /* --max-batch is 50 */
                if (i > 0)
                    buf_byte(b, ',');
                if (t == T_MGET)
                    gen_json_key(r, b);
                else if (rng_chance(r, 90))
                    gen_entry(r, b, 1);
                else
                    gen_json(r, b, 1);
            }
            buf_byte(b, ']');
        } else {
            gen_json(r, b, 2);
        }
        buf_byte(b, '}');
        break;
    case T_OTHER:
        gen_json(r, b, 3);
        break;
    }
    if (rng_chance(r, 8) && b->len > start) /* truncated */
        b->len = start + rng_pick(r, b->len - start);
}

static void gen_header(struct rng *r, struct buf *b, const char *eol)
{
    static const char *const tags = "*|\"0000000000000001\"|W/\"0000000000000001\"|\"|a, b, c|\"x\", *|W/|"
                                    "\"ffffffffffffffff\", \"0000000000000000\"";
    int k = (int)rng_pick(r, 100);
    if (k < 20) {
        buf_str(b, "Content-Type: ");
        if (rng_chance(r, 10))
            buf_repeat(b, "x", 300); /* over 255 bytes */
        else
            rng_word(r, b,
                     "application/json|text/plain|image/png|application/ld+json|application/octet-stream||"
                     "application/json; charset=utf-8|text/plain; charset=\xff");
    } else if (k < 32) {
        buf_str(b, "Accept: ");
        rng_word(r, b,
                 "*/*|application/json|image/png|image/png;q=0.9, application/json;q=0.1|text/*;q=abc|a/b;q=1.0001|"
                 ";;;,,,|*/*;q=0, text/plain;q=0.5;level=1|application/json;q=0");
    } else if (k < 44) {
        buf_str(b, "If-Match: ");
        rng_word(r, b, tags);
    } else if (k < 56) {
        buf_str(b, "If-None-Match: ");
        rng_word(r, b, tags);
    } else if (k < 72) {
        rng_word(r, b,
                 "Expect: 100-continue|Expect: 100-continue, foo|Expect: fancy|Connection: close|"
                 "Connection: keep-alive|Connection: close, close|Authorization: Bearer x|"
                 "Authorization: Basic Zm9vOmJhcg==|Cookie: a=b|Accept-Encoding: gzip|Range: bytes=0-1|Host: t|"
                 "Content-Length: 0");
    } else if (k < 76) {
        buf_fmt(b, "Connection: Upgrade, HTTP2-Settings%sUpgrade: h2c%sHTTP2-Settings: %s", eol, eol,
                rng_chance(r, 70) ? "AAMAAABkAARAAAAAAAIAAAAA" : "AAQAAAAA");
    } else if (k < 84) {
        if (rng_chance(r, 10))
            buf_put(b, "X-Nul: a\0b", 10);
        else
            rng_word(r, b,
                     "X-Fold: a\r\n folded|NoColon|Bad Name: v|Name : v|:authority: t|Host:|Connection:|"
                     "Upgrade: h2c|Transfer-Encoding: chunked");
    } else if (k < 90) { /* a random header */
        rng_bytes(r, b, 1 + rng_pick(r, 20), 1);
        buf_str(b, ": ");
        rng_bytes(r, b, rng_pick(r, 40), rng_chance(r, 70));
    } else if (k < 94) { /* the same header many times */
        for (size_t i = 0, n = 2 + rng_pick(r, 60); i < n; i++)
            buf_fmt(b, "If-Match: \"%zu\"%s", i, eol);
        buf_str(b, "X-Many: 1");
    } else if (k < 97) { /* over --max-header-bytes (8 KiB), rarely over h2o's own limit of about 400 KiB */
        buf_str(b, "X-Long: ");
        buf_repeat(b, "a", rng_chance(r, 5) ? 420000 : 9000);
    } else { /* many small headers, around h2o's limit of 100 */
        for (size_t i = 0, n = 50 + rng_pick(r, 80); i < n; i++)
            buf_fmt(b, "X-H%zu: %zu%s", i, i, eol);
        buf_str(b, "X-Last: 1");
    }
    buf_str(b, eol);
}

/* The body as chunks, each size line in some spelling, sometimes broken. */
static void put_chunked(struct rng *r, struct buf *b, const char *body, size_t len)
{
    int breaks = rng_chance(r, 20);
    size_t at = 0;
    while (at < len) {
        size_t n = 1 + rng_pick(r, len - at);
        if (breaks && rng_chance(r, 30)) {
            rng_word(r, b, "zz|-1|fffffffffffffffff1|1 1|| |0x10|+5");
            buf_str(b, "\r\n");
        } else {
            static const char *const spellings[] = {"%zx\r\n", "%zX\r\n", "%08zx\r\n", "%zx;ext=1\r\n"};
            buf_fmt(b, ANY(r, spellings), n);
        }
        if (breaks && rng_chance(r, 20) && at + n < len)
            n++; /* one byte more than the size line said */
        buf_put(b, body + at, n);
        at += n;
        buf_str(b, breaks && rng_chance(r, 10) ? "\n" : "\r\n");
    }
    if (breaks && rng_chance(r, 30))
        return; /* no last chunk */
    rng_word(r, b, "0\r\n\r\n|0\r\n\r\n|0\r\n\r\n|0\r\nX-Trailer: t\r\n\r\n|0;x\r\n\r\n");
}

/* A request from the loose grammar: any method, target, version, headers and framing. */
static void gen_request(struct rng *r, struct buf *b)
{
    const char *eol = rng_chance(r, 5) ? "\n" : "\r\n";
    struct buf method = {0}, body = {0};
    if (rng_chance(r, 92))
        rng_word(r, &method, "GET|GET|GET|POST|POST|PUT|PUT|DELETE|HEAD");
    else
        rng_word(r, &method, "OPTIONS|PATCH|TRACE|CONNECT|PRI|get|G E T||\x01GET|FOO");
    buf_put(b, method.p, method.len);
    buf_byte(b, ' ');
    enum target t = gen_target(r, b);
    buf_byte(b, ' ');
    if (rng_chance(r, 95))
        buf_str(b, "HTTP/1.1");
    else
        rng_word(r, b, "HTTP/1.0|HTTP/2.0|HTTP/1.|HTTP/9.9||http/1.1|HTTP/1.1 x");
    buf_str(b, eol);
    if (rng_chance(r, 90))
        buf_fmt(b, "Host: t%s", eol);
    for (size_t i = 0, n = rng_pick(r, 4); i < n; i++)
        gen_header(r, b, eol);
    if (strcmp(method.p, "POST") == 0 || strcmp(method.p, "PUT") == 0 || rng_chance(r, 15))
        gen_body(r, &body, t);

    if (body.len == 0 && !rng_chance(r, 5)) {
        buf_str(b, eol);
    } else {
        int framing = (int)rng_pick(r, 100);
        if (framing < 55) {
            buf_fmt(b, "Content-Length: %zu%s%s", body.len, eol, eol);
            buf_put(b, body.p, body.len);
        } else if (framing < 72) {
            buf_fmt(b, "Transfer-Encoding: chunked%s%s", eol, eol);
            put_chunked(r, b, body.p, body.len);
        } else if (framing < 80) {
            buf_str(b, "Content-Length: ");
            rng_word(r, b, NUMBERS);
            buf_fmt(b, "%s%s", eol, eol);
            buf_put(b, body.p, body.len);
        } else if (framing < 84) { /* two lengths that disagree */
            buf_fmt(b, "Content-Length: %zu%sContent-Length: %zu%s%s", body.len, eol, body.len + 1 + rng_pick(r, 9),
                    eol, eol);
            buf_put(b, body.p, body.len);
        } else if (framing < 88) {
            buf_fmt(b, "Content-Length: %zu%sTransfer-Encoding: chunked%s%s", body.len, eol, eol, eol);
            put_chunked(r, b, body.p, body.len);
        } else if (framing < 92) {
            buf_str(b, eol); /* no framing: the body reads as the next request */
            buf_put(b, body.p, body.len);
        } else if (framing < 96) {
            buf_str(b, "Transfer-Encoding: ");
            rng_word(r, b, "gzip, chunked|chunked, gzip|identity|CHUNKED|chunked, chunked|gzip");
            buf_fmt(b, "%s%s", eol, eol);
            buf_put(b, body.p, body.len);
        } else { /* a length that does not match the body */
            size_t n = rng_chance(r, 50) ? body.len + 1 + rng_pick(r, 100) : rng_pick(r, body.len + 1);
            buf_fmt(b, "Content-Length: %zu%s%s", n, eol, eol);
            buf_put(b, body.p, body.len);
        }
    }
    free(method.p);
    free(body.p);
}

/* A JSON value a store request accepts: never null, always well formed. */
static void gen_valid_json(struct rng *r, struct buf *b, int depth)
{
    switch (rng_pick(r, depth > 0 ? 6 : 4)) {
    case 0:
        buf_fmt(b, "%lld", (long long)(rng_next(r) >> (1 + rng_pick(r, 63))) * (rng_chance(r, 50) ? 1 : -1));
        break;
    case 1:
        rng_word(r, b, "true|false|1.25|\"\"");
        break;
    case 2:
    case 3:
        buf_byte(b, '"');
        for (size_t i = 0, n = rng_pick(r, 30); i < n; i++) {
            int c = 0x20 + (int)rng_pick(r, 95);
            buf_byte(b, c == '"' || c == '\\' ? '_' : c);
        }
        buf_str(b, rng_chance(r, 20) ? "caf\\u00e9\"" : "\"");
        break;
    case 4:
        buf_byte(b, '[');
        for (size_t i = 0, n = rng_pick(r, 4); i < n; i++) {
            if (i > 0)
                buf_byte(b, ',');
            gen_valid_json(r, b, depth - 1);
        }
        buf_byte(b, ']');
        break;
    default:
        buf_byte(b, '{');
        for (size_t i = 0, n = rng_pick(r, 4); i < n; i++)
            buf_fmt(b, "%s\"m%zu\":%d", i > 0 ? "," : "", i, (int)rng_pick(r, 100));
        buf_byte(b, '}');
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
    int key = (int)rng_pick(r, 20);
    const char *ttl = rng_chance(r, 20) ? "?ttl=60" : "";
    const char *content_type = "application/json";
    switch (rng_pick(r, 14)) {
    case 0:
    case 1:
        buf_fmt(b, "POST /cache%s HTTP/1.1\r\n", ttl);
        buf_fmt(&body, "{\"key\":\"k%d\",\"value\":", key);
        gen_valid_json(r, &body, 2);
        buf_str(&body, rng_chance(r, 20) ? ",\"ttl\":3600}" : "}");
        break;
    case 2:
        buf_fmt(b, "PUT /cache/k%d%s HTTP/1.1\r\n", key, ttl);
        if (rng_chance(r, 30)) {
            content_type = rng_chance(r, 50) ? "image/png" : "text/plain";
            rng_bytes(r, &body, rng_pick(r, 100), rng_chance(r, 50));
        } else {
            buf_str(&body, "{\"value\":");
            gen_valid_json(r, &body, 2);
            buf_byte(&body, '}');
        }
        if (rng_chance(r, 20))
            buf_str(b, rng_chance(r, 50) ? "If-None-Match: *\r\n" : "If-Match: *\r\n");
        break;
    case 3:
    case 4:
    case 5:
        buf_fmt(b, "%s /cache/k%d%s HTTP/1.1\r\n", rng_chance(r, 80) ? "GET" : "HEAD", key,
                rng_chance(r, 15) ? "?raw" : "");
        if (rng_chance(r, 20))
            buf_str(b, rng_chance(r, 50) ? "Accept: image/png, application/json;q=0.5\r\n" : "Accept: */*\r\n");
        if (rng_chance(r, 15))
            buf_str(b, "If-None-Match: *\r\n");
        break;
    case 6:
        buf_fmt(b, "DELETE /cache/k%d HTTP/1.1\r\n%s", key, rng_chance(r, 20) ? "If-Match: *\r\n" : "");
        break;
    case 7:
    case 8:
        buf_fmt(b, "POST /cache/k%d/incr%s HTTP/1.1\r\n", key, ttl);
        if (rng_chance(r, 50))
            buf_fmt(&body, "{\"by\":%d}", (int)rng_pick(r, 201) - 100);
        break;
    case 9:
        buf_str(b, "POST /cache/_mget HTTP/1.1\r\n");
        buf_str(&body, "{\"keys\":[");
        for (size_t i = 0, n = rng_pick(r, 20); i < n; i++)
            buf_fmt(&body, "%s\"k%d\"", i > 0 ? "," : "", (int)rng_pick(r, 20));
        buf_str(&body, "]}");
        break;
    case 10:
        buf_str(b, "POST /cache/_mset HTTP/1.1\r\n");
        buf_str(&body, "{\"entries\":[");
        for (size_t i = 0, n = 1 + rng_pick(r, 10); i < n; i++) {
            buf_fmt(&body, "%s{\"key\":\"k%d\",\"value\":", i > 0 ? "," : "", (int)rng_pick(r, 20));
            gen_valid_json(r, &body, 1);
            buf_byte(&body, '}');
        }
        buf_str(&body, "]}");
        break;
    case 11:
        buf_fmt(b, "GET /cache?prefix=k%d&limit=%d HTTP/1.1\r\n", key % 3, 1 + (int)rng_pick(r, 20));
        break;
    case 12:
        buf_fmt(b, "GET %s HTTP/1.1\r\n", rng_chance(r, 50) ? "/stats" : "/metrics");
        break;
    default:
        buf_fmt(b, "%s /health HTTP/1.1\r\n", rng_chance(r, 80) ? "GET" : "HEAD");
        break;
    }
    buf_str(b, "Host: t\r\n");
    if (rng_chance(r, 40))
        buf_str(b, "Connection: close\r\n");
    if (body.len > 0 && rng_chance(r, 25)) {
        buf_fmt(b, "Content-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n", content_type);
        for (size_t at = 0, n; at < body.len; at += n) {
            n = 1 + rng_pick(r, body.len - at);
            buf_fmt(b, "%zx\r\n", n);
            buf_put(b, body.p + at, n);
            buf_str(b, "\r\n");
        }
        buf_str(b, "0\r\n\r\n");
    } else if (body.len > 0) {
        buf_fmt(b, "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n", content_type, body.len);
        buf_put(b, body.p, body.len);
    } else {
        buf_str(b, "\r\n");
    }
    free(body.p);
}

/* ---- HTTP/2 ------------------------------------------------------------------ */

/* An HPACK integer with an n-bit prefix (RFC 7541, 5.1) after the bits in first. */
static void hpack_int(struct buf *b, unsigned first, int prefix_bits, size_t v)
{
    size_t max = ((size_t)1 << prefix_bits) - 1;
    if (v < max) {
        buf_byte(b, (int)(first | v));
        return;
    }
    buf_byte(b, (int)(first | max));
    for (v -= max; v >= 128; v >>= 7)
        buf_byte(b, (int)((v & 127) | 128));
    buf_byte(b, (int)v);
}

static void hpack_str(struct buf *b, const char *s, size_t n)
{
    hpack_int(b, 0, 7, n);
    buf_put(b, s, n);
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
    if (rng_chance(r, 15)) { /* huge integers, a table size update, bad Huffman, a lone prefix */
        if (rng_chance(r, 50))
            rng_word(r, b, "\x7f\xff\xff\xff\xff\xff\x0f|\x3f\xe1\xff\xff\x0f|\xbf|\x8a\xff|\x40|\xff\xff\xff\xff");
        else
            rng_bytes(r, b, 1 + rng_pick(r, 40), 0);
        return;
    }
    if (rng_chance(r, 60)) {
        buf_byte(b, rng_chance(r, 70) ? 0x82 : 0x83); /* :method GET or POST, indexed */
    } else {
        rng_word(r, &v, "GET|POST|PUT|DELETE|HEAD|PATCH|");
        hpack_field(b, 2, &v);
    }
    if (rng_chance(r, 95))
        buf_byte(b, 0x86); /* :scheme http */
    if (rng_chance(r, 95)) {
        v.len = 0;
        gen_target(r, &v);
        hpack_field(b, 4, &v); /* :path */
    }
    if (rng_chance(r, 80)) {
        v.len = 0;
        buf_str(&v, "t");
        hpack_field(b, 1, &v); /* :authority */
    }
    if (rng_chance(r, 30)) {
        v.len = 0;
        buf_str(&v, "application/json");
        hpack_field(b, 31, &v); /* content-type */
    }
    if (rng_chance(r, 20)) {
        v.len = 0;
        rng_word(r, &v, NUMBERS);
        hpack_field(b, 28, &v); /* content-length */
    }
    if (rng_chance(r, 15)) { /* a new name: upper-case, a pseudo-header out of place, a connection header */
        v.len = 0;
        rng_word(r, &v, "if-match|accept|X-Upper|:path|connection|te|");
        buf_byte(b, 0);
        hpack_str(b, v.p, v.len);
        hpack_str(b, "*", 1);
    }
    free(v.p);
}

static void put_u32(struct buf *b, uint32_t v)
{
    const unsigned char be[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                                 (unsigned char)v};
    buf_put(b, be, sizeof(be));
}

static void put_frame(struct rng *r, struct buf *b, int type, int flags, uint32_t stream, const struct buf *payload)
{
    size_t len = rng_chance(r, 94) ? payload->len : rng_pick(r, 40000); /* now and then a length that lies */
    const unsigned char head[5] = {(unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len,
                                   (unsigned char)type, (unsigned char)flags};
    buf_put(b, head, sizeof(head));
    put_u32(b, stream);
    buf_put(b, payload->p, payload->len);
}

/* The connection preface, then frames: requests, and frames a server must refuse. */
static void gen_h2(struct rng *r, struct buf *b)
{
    static const uint32_t values[] = {0, 1, 100, 16383, 16384, 16777215, 16777216, 0x7fffffff, 0xffffffff};
    struct buf p = {0};
    uint32_t stream = 1;
    buf_str(b, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    for (size_t i = 0, n = 1 + rng_pick(r, 8); i < n; i++) {
        int type = i == 0 && rng_chance(r, 85) ? 4 : (int)rng_pick(r, 16);
        int flags = 0;
        uint32_t id = rng_chance(r, 90) ? stream : (uint32_t)rng_next(r);
        p.len = 0;
        switch (type) {
        case 0: /* DATA */
            gen_body(r, &p, T_CACHE);
            flags = rng_chance(r, 70) ? 0x1 : 0;
            break;
        case 1: /* HEADERS, three times as often as other types (10 and 11 become HEADERS) */
        case 10:
        case 11:
        case 9: /* CONTINUATION */
            type = type == 9 ? 9 : 1;
            if (rng_chance(r, 5)) {
                put_u32(&p, 0x80000000u); /* PRIORITY flag: an exclusive dependency on stream 0 */
                buf_byte(&p, 16);
                flags |= 0x20;
            }
            gen_header_block(r, &p);
            flags |= (rng_chance(r, 85) ? 0x4 : 0) | (rng_chance(r, 50) ? 0x1 : 0);
            if (type == 1 && rng_chance(r, 80))
                stream += 2;
            break;
        case 2: /* PRIORITY, sometimes on itself */
            put_u32(&p, rng_chance(r, 30) ? id : (uint32_t)rng_pick(r, 8));
            buf_byte(&p, (int)rng_pick(r, 256));
            break;
        case 3: /* RST_STREAM */
            put_u32(&p, (uint32_t)rng_pick(r, 16));
            break;
        case 4: /* SETTINGS */
            for (size_t k = 0, params = rng_pick(r, 6); k < params; k++) {
                buf_byte(&p, 0);
                buf_byte(&p, (int)rng_pick(r, 9));
                put_u32(&p, rng_chance(r, 80) ? ANY(r, values) : (uint32_t)rng_next(r));
            }
            flags = rng_chance(r, 10) ? 0x1 : 0;
            id = rng_chance(r, 95) ? 0 : id;
            break;
        case 5: /* PUSH_PROMISE, which a client may not send */
            put_u32(&p, stream + 1);
            gen_header_block(r, &p);
            flags = 0x4;
            break;
        case 6: /* PING, sometimes of the wrong length */
            rng_bytes(r, &p, rng_chance(r, 80) ? 8 : rng_pick(r, 12), 0);
            id = rng_chance(r, 90) ? 0 : id;
            break;
        case 7: /* GOAWAY */
            put_u32(&p, stream);
            put_u32(&p, (uint32_t)rng_pick(r, 16));
            id = 0;
            break;
        case 8: /* WINDOW_UPDATE: zero, overflowing, or ordinary */
            put_u32(&p, rng_chance(r, 50) ? ANY(r, values) : (uint32_t)rng_pick(r, 65536));
            id = rng_chance(r, 50) ? 0 : id;
            break;
        default: /* an unknown type, or bytes that are no frame at all */
            rng_bytes(r, &p, rng_pick(r, 64), 0);
            if (rng_chance(r, 50)) {
                buf_put(b, p.p, p.len);
                continue;
            }
            break;
        }
        put_frame(r, b, type, flags, id, &p);
    }
    free(p.p);
}

/* ---- cases ------------------------------------------------------------------------ */

/* Case index of the run with seed: its bytes and how they are delivered. */
static void gen_case(uint64_t seed, unsigned long index, struct netfuzz_case *c)
{
    struct rng r = netfuzz_case_rng(seed, index);
    int kind = (int)rng_pick(&r, 100);
    if (kind < 5) {
        rng_bytes(&r, &c->bytes, 1 + rng_pick(&r, 4096), rng_chance(&r, 50));
    } else if (kind < 13) {
        gen_h2(&r, &c->bytes);
    } else {
        for (size_t i = 0, n = rng_chance(&r, 15) ? 2 + rng_pick(&r, 5) : 1; i < n; i++) {
            if (rng_chance(&r, 40))
                gen_valid_request(&r, &c->bytes);
            else
                gen_request(&r, &c->bytes);
        }
    }
    if (kind >= 5 && rng_chance(&r, 35))
        netfuzz_mutate(&r, &c->bytes, MUTATION_TOKENS);

    if (netfuzz_contains_nocase(c->bytes.p, c->bytes.len, "PRI * HTTP/2") ||
        netfuzz_contains_nocase(c->bytes.p, c->bytes.len, "h2c"))
        c->flags |= CASE_H2;
    int e = (int)rng_pick(&r, 100);
    c->ending = e < 50 ? NETFUZZ_HALF_CLOSE : e < 75 ? NETFUZZ_WAIT : e < 88 ? NETFUZZ_CLOSE : NETFUZZ_RESET;
    /* A server may hold an HTTP/2 connection whose client window is shut: that is no hang. */
    if (c->ending == NETFUZZ_WAIT && (c->flags & CASE_H2))
        c->ending = NETFUZZ_HALF_CLOSE;
    netfuzz_plan_delivery(&r, c);
}

/* ---- checking cases ------------------------------------------------------------------ */

struct tally {
    unsigned long responses, none, h2;
    unsigned long status[600];
};

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
static void check_response(struct netfuzz *f, const struct netfuzz_slot *s)
{
    struct tally *t = f->tally;
    const char *in = s->in.p;
    size_t len = s->in.len, at = 0;
    if (len == 0) {
        t->none++;
        return;
    }
    if ((s->c.flags & CASE_H2) && len >= 9 && memcmp(in, "HTTP/", 5) != 0) {
        /* The server's preface: a SETTINGS frame (or a GOAWAY) on stream 0. */
        if ((in[3] != 4 && in[3] != 7) || (in[5] | in[6] | in[7] | in[8]) != 0)
            netfuzz_fail_case(f, s, "an HTTP/2 answer that does not start with SETTINGS or GOAWAY on stream 0");
        t->h2++;
        return;
    }
    for (int n = 0; at < len; n++) {
        const char *p = in + at;
        size_t left = len - at;
        if (left < 13) { /* cut short by a reset: what there is must still fit */
            if (memcmp(p, "HTTP/1.1 ", left < 9 ? left : 9) != 0)
                netfuzz_fail_case(f, s, "bytes that are not an HTTP/1.1 status line");
            return;
        }
        if (!is_status_line(p, left)) {
            if (n == 0)
                netfuzz_fail_case(f, s, "a response that does not start with \"HTTP/1.1 \" and a 3-digit status");
            return; /* past a body misjudged, or after an upgrade */
        }
        int status = atoi(p + 9);
        if (status < 100 || status >= 600)
            netfuzz_fail_case(f, s, "a status out of range");
        t->status[status]++;
        t->responses++;
        if (status >= 500 && status != 503)
            netfuzz_fail_case(f, s, "a 5xx status other than 503");
        const char *blank = memmem(p, left, "\r\n\r\n", 4);
        if (blank == NULL || status == 101)
            return;
        size_t head_len = (size_t)(blank - p) + 2, body_len = 0;
        const char *body = blank + 4;
        size_t body_at = (size_t)(body - in);
        if (status >= 200 && status != 204 && status != 304) {
            char cl[32];
            if (header(p, head_len, "Content-Length", cl, sizeof(cl)) == NULL)
                netfuzz_fail_case(f, s, "a response without Content-Length");
            body_len = strtoul(cl, NULL, 10);
        }
        int head_only = body_len > 0 && is_status_line(body, len - body_at);
        if (head_only)
            body_len = 0;
        if (body_at + body_len > len)
            return; /* the rest was cut off by the close */
        if (status >= 400 && !head_only && !is_valid_error(status, p, head_len, body, body_len))
            netfuzz_fail_case(f, s, "an error that is not JSON {\"error\": ...} (nor h2o's text/plain 400)");
        at = body_at + body_len;
    }
}

/* ---- checks between batches ------------------------------------------------------ */

/* The server is alive, healthy, stores and returns a value verbatim, and holds no connection of the batch. */
static void expect_server_answers(const struct netfuzz *f, unsigned long first, unsigned long end)
{
    netfuzz_expect_alive(f, &group_server, first, end);
    struct http_res res;

    /* A store request has the shape of the answer to GET, so one string is both. */
    char entry[192], path[64];
    snprintf(path, sizeof(path), "/cache/netfuzz-check-%lu", first);
    snprintf(entry, sizeof(entry), "{\"key\":\"%s\",\"value\":[%lu,\"netfuzz\",true,{\"seed\":\"%" PRIu64 "\"}]}",
             path + 7, first, f->seed);
    http_call(PORT, "POST", "/cache", entry, &res);
    expect_message(&res, 200, "stored");
    http_res_free(&res);
    http_call(PORT, "GET", path, NULL, &res);
    expect_json(&res, 200);
    if (strcmp(res.body, entry) != 0)
        fail_msg("after cases %lu-%lu: GET %s returned %s, expected %s", first, end - 1, path, res.body, entry);
    http_res_free(&res);

    expect_connections_drop_to(PORT, 1, f->hang_ms); /* the /stats connection itself */
}

/* ---- the test ------------------------------------------------------------------------- */

static void thousands_of_malformed_requests_leave_the_server_answering_correctly(void **state)
{
    (void)state;
    static struct tally t; /* 5 KB of counters: off the stack */
    memset(&t, 0, sizeof(t));
    int valgrind = procfs_runs_under_valgrind(group_server.pid);
    /*
     * How long a connection may stay open past the client's last byte: the
     * request timeout, and slack for a loaded machine. Decided at run time,
     * since it is the server that is slow: SANITIZED describes this binary,
     * but in the valgrind variant only the server runs under valgrind.
     */
    struct netfuzz f = {
        .name = "netfuzz",
        .port = PORT,
        .seed = netfuzz_seed(),
        .hang_ms = REQUEST_TIMEOUT_MS + (SANITIZED || valgrind ? 20000 : 5000),
        .read_cap = READ_CAP,
        .hang_why = "the server kept the connection open past the request timeout",
        .gen = gen_case,
        .check = check_response,
        .tally = &t,
    };
    unsigned long cases = (unsigned long)netfuzz_env_u64("NETFUZZ_CASES", valgrind ? VALGRIND_CASES : CASES);
    printf("netfuzz: seed %" PRIu64 " (repeat with NETFUZZ_SEED=%" PRIu64 "), %lu cases, %d at a time%s\n", f.seed,
           f.seed, cases, NETFUZZ_SLOTS,
           SANITIZED  ? ", sanitized build"
           : valgrind ? ", server under valgrind"
                      : "");
    fflush(stdout);

    int64_t start = now_ms();
    for (unsigned long first = 0; first < cases; first += BATCH) {
        unsigned long end = first + BATCH < cases ? first + BATCH : cases;
        netfuzz_run_batch(&f, first, end);
        expect_server_answers(&f, first, end);
    }
    assert_int_equal(f.cases, cases);

    printf("netfuzz: %lu cases, seed %" PRIu64 ", %.1f s, statuses", f.cases, f.seed,
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
