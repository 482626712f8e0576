/*
 * The network fuzzer on the Redis-protocol port (--resp-port), against the
 * real binary: thousands of cases from one seeded PRNG, over loopback
 * sockets, NETFUZZ_SLOTS at a time (the runner and the mutations are
 * test_netfuzz.c's, in tests/support/netfuzz.c).
 *
 * A case is a pipeline built from a template for every command of
 * src/resp/commands.c's table (the test fails if the server names one it
 * has no template for), with valid and wrong arities, options, numbers at
 * and past int64's limits, binary, non-UTF-8 and NUL-holding keys and
 * values, values around --max-value-bytes and bulks past --max-body-bytes;
 * each command written as a multibulk request (sometimes with a count or a
 * length that lies, is spelled wrong or is huge) or as an inline one (bare,
 * "double-quoted" with escapes or 'single-quoted', sometimes unbalanced or
 * over 64 KiB); often after a HELLO 2|3 or AUTH sequence. Also deep
 * pipelines of thousands of small commands or of large replies, commands
 * with thousands of arguments, random bytes, and soups of RESP tokens; a third of the cases have their bytes
 * flipped, inserted, deleted, duplicated or cut. Each is sent in one write
 * or in pieces; then the client half-closes, waits in silence (up to 1.5 s,
 * past the HTTP idle and request timeouts, which a RESP connection does not
 * have) and then half-closes, closes early or resets.
 *
 * Per case: everything that came back is a sequence of well-formed RESP
 * replies (resp_reply_valid), a cut one only at the end and only when the
 * client closed early; RESP3 types only after HELLO 3 switched to them, and
 * RESP2's nulls only before; every error starts with one of Redis's codes
 * (ERR, WRONGTYPE, NOAUTH, NOPROTO, WRONGPASS, OOM, LOADING); a protocol
 * error ("-ERR Protocol error: ...") is the last thing sent and the server
 * then closes; the server closes a connection before the client is done
 * only after a protocol error or QUIT, and otherwise within hang_ms of the
 * client's half-close. Between batches the server still answers PING,
 * stores and returns a binary value verbatim, answers /health over HTTP,
 * and counts no connection left open; at the end it exits 0 on SIGTERM
 * (under ASan: no sanitizer report).
 *
 * Two servers: the group's, without --auth-token, for most cases, and one
 * with a token, where a case authenticates (or fails to) first, and what it
 * sends before is held to Redis's pre-authentication limits.
 *
 * The seed is printed; NETFUZZ_SEED repeats a run, NETFUZZ_CASES sets the
 * cases of the first test (the second runs a fifth as many).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../support/netfuzz.h"
#include "../support/procfs.h"
#include "../support/raw.h"
#include "../support/resp.h"
#include "../support/server.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define CASES          (SANITIZED ? 3000 : 5000)
#define VALGRIND_CASES 1500 /* the server under valgrind runs 20-50 times slower */
#define BATCH          500
#define READ_CAP       (8 << 20)
#define TOKEN          "netfuzz-token"
#define KEYS           20 /* k0..k19: the keys most commands name, so reads find what writes left */

/*
 * Small limits, as test_netfuzz.c has them: a bulk past --max-body-bytes is
 * a protocol error, a value past --max-value-bytes an error reply, and the
 * store evicts. The HTTP timeouts are short so that a RESP connection that
 * fell under them would show.
 */
static const char *const server_flags[] = {
    "--resp-port=0",          "--request-timeout=1s", "--idle-timeout=1s", "--max-body-bytes=64kb",
    "--max-value-bytes=32kb", "--max-batch=50",       "--max-memory=32mb", NULL};

#define ANY(r, array) ((array)[rng_pick((r), sizeof(array) / sizeof((array)[0]))])

/* ---- arguments ------------------------------------------------------------ */

/* Numbers as a client might send them for a count, an increment or a time: int64's edges and past them. */
#define NUMBERS                                                                                                        \
    "0|1|-1|2|10|100|-100|1000|9223372036854775807|-9223372036854775808|9223372036854775808|-9223372036854775809|"     \
    "9223372036854775806|18446744073709551615|18446744073709551616|99999999999999999999|4294967296|2147483648|"        \
    "007|-0|+5| 5|5 |1.5|1e3|0x10|abc||-|--1"

/* Times for EX, PX, EXAT, PXAT and EXPIRE*: relative, absolute (past, near, far), zero, negative, overflowing. */
#define TIMES                                                                                                          \
    "1|10|60|1000|3600|86400|315360000|315360001|0|-1|-100|1700000000|1700000000000|4102444800|4102444800000|"         \
    "9223372036854775807|9223372036854775806|-9223372036854775808|9223372036854775808|9223372036854|1.5|abc||+5|007"

/* A command's arguments, each of any bytes. */
struct args {
    struct buf *v;
    size_t n, cap;
};

/* A new, empty argument (the pointer lasts until the next one is added). */
static struct buf *arg_new(struct args *a)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->v = realloc(a->v, a->cap * sizeof(*a->v));
        if (a->v == NULL)
            abort();
    }
    a->v[a->n] = (struct buf){0};
    buf_str(&a->v[a->n], "");
    return &a->v[a->n++];
}

static void args_free(struct args *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i].p);
    free(a->v);
    *a = (struct args){0};
}

static void arg_str(struct args *a, const char *s)
{
    buf_str(arg_new(a), s);
}

static void arg_word(struct rng *r, struct args *a, const char *words)
{
    rng_word(r, arg_new(a), words);
}

/* A command or option name as a client might spell it: upper case, lower case, or mixed. */
static void arg_name(struct rng *r, struct args *a, const char *name)
{
    struct buf *b = arg_new(a);
    int mode = (int)rng_pick(r, 10);
    for (const char *p = name; *p != '\0'; p++) {
        int upper = mode < 5 ? 1 : mode < 9 ? 0 : rng_chance(r, 50);
        buf_byte(b, upper && *p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    }
}

static void gen_key(struct rng *r, struct buf *b)
{
    int k = (int)rng_pick(r, 100);
    if (k < 55) {
        buf_fmt(b, "k%d", (int)rng_pick(r, KEYS));
    } else if (k < 62) {
        buf_fmt(b, "c%d", (int)rng_pick(r, 4)); /* counters */
    } else if (k < 67) {
        rng_word(r, b,
                 "user:42|{tag}:x|a b|caf\xc3\xa9|\xe2\x82\xac|\xf0\x9f\x98\x80|*|k?|[k]|\\|k\r\nk|-|+|$3|*1|:5|\"|'");
    } else if (k < 72) { /* not UTF-8: a bad continuation, a surrogate, past U+10FFFF, overlong, cut short */
        buf_str(b, "k");
        rng_word(r, b, "\xff|\xc3\x28|\xed\xa0\x80|\xf4\x90\x80\x80|\xc0\xaf|\x80|\xe2\x82|\xfe\xff");
    } else if (k < 76) {
        if (rng_chance(r, 50))
            buf_put(b, "k\0k", 3);
        else
            buf_put(b, "\0", 1);
    } else if (k < 80) {
        rng_bytes(r, b, 1 + rng_pick(r, 16), 0);
    } else if (k < 84) { /* around --max-key-bytes (1024) */
        static const size_t lengths[] = {1023, 1024, 1025, 4096};
        buf_repeat(b, "k", ANY(r, lengths));
    } else if (k < 87) {
        /* empty */
    } else {
        rng_bytes(r, b, 1 + rng_pick(r, 30), 1);
    }
}

static void arg_key(struct rng *r, struct args *a)
{
    gen_key(r, arg_new(a));
}

static void gen_value(struct rng *r, struct buf *b)
{
    int k = (int)rng_pick(r, 100);
    if (k < 30) {
        rng_word(r, b, "v|hello|Alice|caf\xc3\xa9|{\"a\":1}|[1,2]|true|null|\"q\"| ||0.5|-|OK|PONG");
    } else if (k < 50) {
        rng_word(r, b, NUMBERS);
    } else if (k < 62) {
        rng_bytes(r, b, rng_pick(r, 65), 0);
    } else if (k < 70) {
        rng_bytes(r, b, rng_pick(r, 200), 1);
    } else if (k < 74) { /* what a reply parser would choke on, were it echoed unframed */
        static const char *const tricky[] = {"a\r\nb", "\r\n", "$-1\r\n", "+OK\r\n", "-ERR x\r\n", "*1\r\n", "\r"};
        if (rng_chance(r, 20))
            buf_put(b, "\0\0\0", 1 + rng_pick(r, 3));
        else
            buf_str(b, ANY(r, tricky));
    } else if (k < 80) {
        rng_word(r, b,
                 "\xff\xfe|\xc3\x28|\xed\xa0\x80|\x80"
                 "abc|caf\xe9|\xf4\x90\x80\x80");
    } else if (k < 84) { /* around --max-value-bytes (32 KiB) */
        static const size_t lengths[] = {32767, 32768, 32769, 40000};
        size_t n = ANY(r, lengths);
        if (rng_chance(r, 50))
            buf_repeat(b, "v", n);
        else
            rng_bytes(r, b, n, 0);
    } else if (k < 86) { /* past --max-body-bytes (64 KiB): a multibulk request is refused, an inline one too long */
        buf_repeat(b, "w", 65537 + rng_pick(r, 5000));
    } else {
        rng_bytes(r, b, 1 + rng_pick(r, 2000), 1);
    }
}

static void arg_value(struct rng *r, struct args *a)
{
    gen_value(r, arg_new(a));
}

static void arg_pattern(struct rng *r, struct args *a)
{
    if (rng_chance(r, 70))
        arg_word(r, a, "*|k*|k?|k[0-9]|k[1-3]*|c*|[|\\|*\xff*|k\\*|[a-|**|?|*[|[!k]*|user:*|\\\\");
    else
        arg_key(r, a);
}

/* A client name for CLIENT SETNAME and HELLO SETNAME: valid, with a space, too long, or not printable. */
static void arg_client_name(struct rng *r, struct args *a)
{
    struct buf *b = arg_new(a);
    int k = (int)rng_pick(r, 10);
    if (k < 5)
        rng_word(r, b, "fuzz|netfuzz-1|x|a-b_c.d|redis-py");
    else if (k < 7)
        rng_bytes(r, b, 1 + rng_pick(r, 80), 1);
    else if (k < 8)
        rng_word(r, b, "a b|\r\n|\xff|");
    else
        rng_bytes(r, b, 1 + rng_pick(r, 8), 0);
}

/* ---- commands -------------------------------------------------------------- */

/*
 * Every command of src/resp/commands.c's table (the test checks this list
 * against COMMAND's), then commands Redis has and cachette does not.
 */
static const char *const commands[] = {
    "append", "auth",      "client",  "command",  "config",     "dbsize",      "decr",    "decrby", "del",
    "echo",   "exists",    "expire",  "expireat", "expiretime", "flushall",    "flushdb", "get",    "getex",
    "getdel", "getset",    "hello",   "incr",     "incrby",     "incrbyfloat", "info",    "keys",   "mget",
    "mset",   "msetnx",    "persist", "pexpire",  "pexpireat",  "pexpiretime", "ping",    "psetex", "pttl",
    "quit",   "randomkey", "reset",   "scan",     "select",     "set",         "setex",   "setnx",  "strlen",
    "time",   "ttl",       "type",    "unlink",
};
#define COMMANDS (sizeof(commands) / sizeof(commands[0]))

#define UNKNOWN_COMMANDS                                                                                               \
    "lpush|rpop|hset|sadd|zadd|xadd|multi|exec|watch|eval|subscribe|publish|incrbyfloat|msetnx|getrange|setrange|"     \
    "rename|object|dump|restore|swapdb|sync|psync|monitor|debug|shutdown|cluster|acl|latency|memory|slowlog|wait|"     \
    "bgsave|save|lastsave|role|replicaof|move|copy|touch|lcs|"

/* The AUTH arguments: the token (when the server has one) in each form, or a wrong password or user. */
static void gen_auth_args(struct rng *r, struct args *a, int with_token)
{
    int k = (int)rng_pick(r, 10);
    if (k < 2 || (with_token && k < 6)) {
        if (rng_chance(r, 50))
            arg_name(r, a, "default");
        arg_str(a, TOKEN);
    } else if (k < 7) {
        arg_word(r, a, "wrong|netfuzz-tokeN|netfuzz-token |");
    } else if (k < 8) {
        arg_word(r, a, "nobody|admin|");
        arg_str(a, TOKEN);
    } else {
        arg_word(r, a, "default|a");
        arg_word(r, a, "wrong|" TOKEN);
        arg_word(r, a, "extra|" TOKEN);
    }
}

/* HELLO's arguments: a version (valid, unsupported or not a number), then AUTH and SETNAME, whole or broken. */
static void gen_hello_args(struct rng *r, struct args *a, int with_token)
{
    if (rng_chance(r, 90))
        arg_word(r, a, rng_chance(r, 80) ? "3|2" : "4|1|0|-1|abc||3.0|9223372036854775808|03");
    for (size_t i = 0, n = rng_pick(r, 3); i < n; i++) {
        int k = (int)rng_pick(r, 10);
        if (k < 5) {
            arg_name(r, a, "auth");
            if (rng_chance(r, 90))
                arg_word(r, a, "default|default|nobody");
            if (rng_chance(r, 90))
                arg_word(r, a, with_token ? TOKEN "|" TOKEN "|wrong" : "pass|" TOKEN);
        } else if (k < 9) {
            arg_name(r, a, "setname");
            if (rng_chance(r, 90))
                arg_client_name(r, a);
        } else {
            arg_word(r, a, "SETINFO|x|");
        }
    }
}

/* SET's options: some valid together, some not, some missing their number. */
static void gen_set_options(struct rng *r, struct args *a)
{
    for (size_t i = 0, n = rng_pick(r, 5); i < n; i++) {
        int k = (int)rng_pick(r, 12);
        if (k < 4) {
            arg_name(r, a, ANY(r, ((const char *const[]){"ex", "px", "exat", "pxat"})));
            if (rng_chance(r, 95))
                arg_word(r, a, TIMES);
        } else if (k < 11) {
            arg_name(r, a, ANY(r, ((const char *const[]){"nx", "xx", "keepttl", "get", "nx", "get", "xx"})));
        } else {
            arg_word(r, a, "persist|ex1|EXX|-|");
        }
    }
}

/* The arguments after the name of command name (a lower-case entry of commands[], or another one). */
static void gen_command_args(struct rng *r, struct args *a, const char *name, int with_token)
{
    if (strcmp(name, "auth") == 0) {
        gen_auth_args(r, a, with_token);
    } else if (strcmp(name, "hello") == 0) {
        gen_hello_args(r, a, with_token);
    } else if (strcmp(name, "client") == 0) {
        int k = (int)rng_pick(r, 9);
        arg_name(r, a,
                 ANY(r, ((const char *const[]){"setname", "getname", "id", "setinfo", "info", "setinfo", "setname",
                                               "list", "kill"})));
        if (k < 3) {
            arg_client_name(r, a);
        } else if (k < 6 && strcasecmp(a->v[a->n - 1].p, "setinfo") == 0) {
            arg_word(r, a, "LIB-NAME|lib-ver|LIB-VER|bad|");
            rng_bytes(r, arg_new(a), rng_pick(r, 40), rng_chance(r, 80));
        }
    } else if (strcmp(name, "command") == 0) {
        if (rng_chance(r, 80))
            arg_word(r, a, "COUNT|INFO|DOCS|count|LIST|GETKEYS|");
        for (size_t i = 0, n = rng_pick(r, 4); i < n; i++)
            arg_word(r, a, "get|SET|nosuch|mget|hello|");
    } else if (strcmp(name, "config") == 0) {
        arg_word(r, a, "GET|GET|get|SET|RESETSTAT|");
        for (size_t i = 0, n = rng_pick(r, 4); i < n; i++)
            arg_word(r, a,
                     "maxmemory|*|*max*|port|[|\\|save|appendonly|appendfsync|MAXMEMORY-POLICY|databases|maxclients|"
                     "nosuch|?????|*\xff|");
    } else if (strcmp(name, "echo") == 0 || strcmp(name, "ping") == 0) {
        for (size_t i = 0, n = strcmp(name, "echo") == 0 ? 1 : rng_pick(r, 2); i < n; i++)
            arg_value(r, a);
    } else if (strcmp(name, "select") == 0) {
        arg_word(r, a, "0|0|1|-1|abc|15|99999999999999999999|");
    } else if (strcmp(name, "info") == 0) {
        for (size_t i = 0, n = rng_pick(r, 3); i < n; i++)
            arg_word(r, a, "server|clients|memory|persistence|stats|keyspace|all|everything|default|nosuch|SERVER|");
    } else if (strcmp(name, "flushall") == 0 || strcmp(name, "flushdb") == 0) {
        if (rng_chance(r, 40))
            arg_word(r, a, "ASYNC|SYNC|async|bad|");
    } else if (strcmp(name, "keys") == 0) {
        arg_pattern(r, a);
    } else if (strcmp(name, "scan") == 0) {
        arg_word(r, a, "0|0|1|12345|18446744073709551615|18446744073709551616|-1|abc||00|9223372036854775808");
        for (size_t i = 0, n = rng_pick(r, 4); i < n; i++) {
            int k = (int)rng_pick(r, 4);
            arg_name(r, a, k == 0 ? "match" : k == 1 ? "count" : k == 2 ? "type" : "bogus");
            if (k == 0)
                arg_pattern(r, a);
            else if (k == 1)
                arg_word(r, a, NUMBERS);
            else if (rng_chance(r, 90))
                arg_word(r, a, "string|list|STRING|hash|");
        }
    } else if (strcmp(name, "mget") == 0 || strcmp(name, "del") == 0 || strcmp(name, "unlink") == 0 ||
               strcmp(name, "exists") == 0) {
        for (size_t i = 0, n = rng_chance(r, 90) ? 1 + rng_pick(r, 12) : rng_pick(r, 60); i < n; i++)
            arg_key(r, a); /* --max-batch is 50 */
    } else if (strcmp(name, "mset") == 0 || strcmp(name, "msetnx") == 0) {
        for (size_t i = 0, n = rng_chance(r, 90) ? 1 + rng_pick(r, 6) : rng_pick(r, 60); i < n; i++) {
            arg_key(r, a);
            if (i + 1 < n || rng_chance(r, 90))
                arg_value(r, a);
        }
    } else if (strcmp(name, "set") == 0 || strcmp(name, "getset") == 0 || strcmp(name, "setnx") == 0 ||
               strcmp(name, "append") == 0) {
        arg_key(r, a);
        arg_value(r, a);
        if (strcmp(name, "set") == 0)
            gen_set_options(r, a);
    } else if (strcmp(name, "setex") == 0 || strcmp(name, "psetex") == 0) {
        arg_key(r, a);
        arg_word(r, a, TIMES);
        arg_value(r, a);
    } else if (strcmp(name, "incrby") == 0 || strcmp(name, "decrby") == 0) {
        arg_key(r, a);
        arg_word(r, a, NUMBERS);
    } else if (strcmp(name, "incrbyfloat") == 0) {
        arg_key(r, a);
        arg_word(r, a, NUMBERS "|0.1|-0.1|1e308|-1e308|1e-320|nan|inf|-inf|3.0e3|.5|5.|1e|0x1p3");
    } else if (strncmp(name, "expire", 6) == 0 || strncmp(name, "pexpire", 7) == 0) {
        arg_key(r, a);
        if (strstr(name, "time") == NULL) {
            arg_word(r, a, TIMES);
            if (rng_chance(r, 15))
                arg_word(r, a, "NX|XX|GT|LT|nx|bad");
        }
    } else if (strcmp(name, "getex") == 0) {
        arg_key(r, a);
        int k = (int)rng_pick(r, 8);
        if (k < 4) {
            arg_name(r, a, ANY(r, ((const char *const[]){"ex", "px", "exat", "pxat"})));
            if (rng_chance(r, 90))
                arg_word(r, a, TIMES);
        } else if (k < 5) {
            arg_name(r, a, "persist");
        } else if (k < 6) {
            arg_word(r, a, "bad|KEEPTTL|EX");
        }
    } else if (strcmp(name, "dbsize") == 0 || strcmp(name, "time") == 0 || strcmp(name, "randomkey") == 0 ||
               strcmp(name, "quit") == 0 || strcmp(name, "reset") == 0) {
        /* no arguments */
    } else if (strcmp(name, "incr") == 0 || strcmp(name, "decr") == 0) {
        if (rng_chance(r, 60))
            buf_fmt(arg_new(a), "c%d", (int)rng_pick(r, 4));
        else
            arg_key(r, a);
    } else if (rng_chance(r, 90)) { /* get, getdel, strlen, ttl, pttl, persist, type, and unknown commands */
        arg_key(r, a);
    }
}

/* One command: a template for a command of the table (or an unknown one), sometimes of the wrong arity. */
static void gen_command(struct rng *r, struct args *a, int with_token)
{
    struct buf unknown = {0};
    const char *name;
    if (rng_chance(r, 6)) {
        buf_str(&unknown, ""); /* never NULL, even when empty */
        rng_word(r, &unknown, UNKNOWN_COMMANDS);
        if (unknown.len == 0)
            rng_bytes(r, &unknown, rng_pick(r, 200), rng_chance(r, 50));
        buf_put(arg_new(a), unknown.p, unknown.len);
        name = unknown.p; /* for gen_command_args, which gives an unknown name a key (a NUL in it changes nothing) */
    } else {
        name = commands[rng_pick(r, COMMANDS)];
        /*
         * Otherwise FLUSHALL and FLUSHDB empty the store every other case,
         * which leaves reads little to find, and QUIT ends many pipelines early.
         */
        if ((strncmp(name, "flush", 5) == 0 && rng_chance(r, 85)) || (strcmp(name, "quit") == 0 && rng_chance(r, 60)))
            name = "get";
        arg_name(r, a, name);
    }
    gen_command_args(r, a, name, with_token);
    if (rng_chance(r, 8)) { /* the wrong arity: one argument fewer, or one more */
        if (a->n > 1 && rng_chance(r, 50)) {
            free(a->v[--a->n].p);
        } else {
            arg_value(r, a);
        }
    }
    free(unknown.p);
}

/* ---- requests ---------------------------------------------------------------- */

/*
 * Encodes the command as a multibulk request, now and then with its framing
 * wrong: the count one off (0), misspelt (1) or huge (2), a bulk's length
 * one off (3), misspelt (4) or huge (5), an LF without its CR (6), a
 * length line without its '$' (7).
 */
static void put_multibulk(struct rng *r, struct buf *b, const struct args *a)
{
    int fault = rng_chance(r, 12) ? (int)rng_pick(r, 8) : -1;
    size_t wrong_at = rng_pick(r, a->n); /* the bulk whose header a fault spoils */
    switch (fault) {
    case 0:
        buf_fmt(b, "*%zu\r\n", rng_chance(r, 50) ? a->n + 1 : a->n - 1);
        break;
    case 1:
        buf_str(b, "*");
        rng_word(r, b, "+1|01|-1|0| 1|1 |-0|-2|");
        buf_str(b, "\r\n");
        break;
    case 2:
        buf_str(b, "*");
        rng_word(r, b, "2147483647|2147483648|9223372036854775807|9223372036854775808|99999999999999999999|1048576");
        buf_str(b, "\r\n");
        break;
    case 6:
        buf_fmt(b, "*%zu%s", a->n, rng_chance(r, 50) ? "\n" : "\r");
        break;
    default:
        buf_fmt(b, "*%zu\r\n", a->n);
        break;
    }
    for (size_t i = 0; i < a->n; i++) {
        const struct buf *v = &a->v[i];
        if (i != wrong_at || fault < 3) {
            buf_fmt(b, "$%zu\r\n", v->len);
        } else if (fault == 3) {
            buf_fmt(b, "$%zu\r\n", rng_chance(r, 50) ? v->len + 1 : v->len - (v->len > 0));
        } else if (fault == 4) {
            buf_str(b, "$");
            rng_word(r, b, "+3|03|-1|-2| 3|3 |-0||x");
            buf_str(b, "\r\n");
        } else if (fault == 5) {
            buf_str(b, "$");
            rng_word(r, b, "65537|9223372036854775807|18446744073709551616|99999999999|2147483648|16385");
            buf_str(b, "\r\n");
        } else if (fault == 6) {
            buf_fmt(b, "$%zu\n", v->len);
        } else {
            rng_word(r, b, ":|+||%|*");
            buf_fmt(b, "%zu\r\n", v->len);
        }
        buf_put(b, v->p, v->len);
        buf_str(b, "\r\n");
    }
}

/* Whether an inline argument may go bare: nothing that ends or quotes it, and not empty. */
static int bare(const struct buf *v)
{
    if (v->len == 0)
        return 0;
    for (size_t i = 0; i < v->len; i++)
        if (strchr(" \t\r\n\v\f\"'", v->p[i]) != NULL && v->p[i] != '\0')
            return 0;
    return 1;
}

/* An argument in double quotes, with the escapes sdssplitargs reads. */
static void put_double_quoted(struct rng *r, struct buf *b, const struct buf *v)
{
    buf_byte(b, '"');
    for (size_t i = 0; i < v->len; i++) {
        unsigned char ch = (unsigned char)v->p[i];
        const char *named = ch == '\n'   ? "\\n"
                            : ch == '\r' ? "\\r"
                            : ch == '\t' ? "\\t"
                            : ch == '\b' ? "\\b"
                            : ch == '\a' ? "\\a"
                            : ch == '"'  ? "\\\""
                            : ch == '\\' ? "\\\\"
                                         : NULL;
        if (named != NULL && rng_chance(r, 80))
            buf_str(b, named);
        else if (ch < 0x20 || ch >= 0x7f || named != NULL)
            buf_fmt(b, rng_chance(r, 50) ? "\\x%02x" : "\\x%02X", ch);
        else
            buf_byte(b, ch);
    }
    buf_byte(b, '"');
}

/* Encodes the command as an inline request, the way one types it in telnet; now and then broken. */
static void put_inline(struct rng *r, struct buf *b, const struct args *a)
{
    if (rng_chance(r, 10))
        rng_word(r, b, " |\t|  ");
    for (size_t i = 0; i < a->n; i++) {
        const struct buf *v = &a->v[i];
        if (i > 0)
            buf_str(b, rng_chance(r, 85) ? " " : rng_chance(r, 50) ? "\t" : "   ");
        int k = (int)rng_pick(r, 10);
        if (bare(v) && k < 7) {
            buf_put(b, v->p, v->len);
        } else if (k < 9 || memchr(v->p, '\'', v->len) != NULL || memchr(v->p, '\\', v->len) != NULL ||
                   memchr(v->p, '\n', v->len) != NULL) {
            put_double_quoted(r, b, v);
        } else {
            buf_byte(b, '\'');
            buf_put(b, v->p, v->len);
            buf_byte(b, '\'');
        }
    }
    if (rng_chance(r, 10)) { /* unbalanced quotes, a quote closed too soon, escapes cut short or not, a long line */
        static const char *const endings[] = {" \"abc", " 'abc", " \"a\"b", " \"\\x4\" \"\\x\"", " 'it\\'s' \"\\\"\"",
                                              NULL};
        const char *ending = ANY(r, endings);
        if (ending != NULL)
            buf_str(b, ending);
        else
            buf_repeat(b, "L", 65536 + rng_pick(r, 3));
    }
    buf_str(b, rng_chance(r, 80) ? "\r\n" : "\n");
}

static void put_command(struct rng *r, struct buf *b, const struct args *a)
{
    if (rng_chance(r, 80))
        put_multibulk(r, b, a);
    else
        put_inline(r, b, a);
}

/* What a client sends first: HELLO, AUTH, or both; with the token (on its server) usually right. */
static void put_prelude(struct rng *r, struct buf *b, int with_token)
{
    struct args a = {0};
    int k = (int)rng_pick(r, 100);
    if (with_token ? k < 45 : k < 4) {
        arg_name(r, &a, "auth");
        gen_auth_args(r, &a, with_token);
    } else if (with_token ? k < 75 : k < 25) {
        arg_name(r, &a, "hello");
        arg_word(r, &a, rng_chance(r, 80) ? "3" : "2");
        if (with_token || rng_chance(r, 10)) {
            arg_name(r, &a, "auth");
            arg_str(&a, "default");
            arg_str(&a, with_token && rng_chance(r, 85) ? TOKEN : "wrong");
        }
        if (rng_chance(r, 30)) {
            arg_name(r, &a, "setname");
            arg_client_name(r, &a);
        }
    } else if (!with_token && k < 30) {
        arg_name(r, &a, "hello");
        gen_hello_args(r, &a, 0);
    }
    if (a.n > 0)
        put_command(r, b, &a);
    args_free(&a);
}

/*
 * A deep pipeline: one small command thousands of times, a large value read
 * back many times, or one command with thousands of arguments.
 */
static void put_deep_pipeline(struct rng *r, struct buf *b)
{
    struct args a = {0};
    struct buf one = {0};
    int k = (int)rng_pick(r, 100);
    if (k < 20) {
        arg_word(r, &a, "DEL|EXISTS|UNLINK|MGET|PING|ECHO|LPUSH|mset");
        for (size_t i = 0, n = rng_chance(r, 90) ? 100 + rng_pick(r, 10000) : 100000; i < n; i++)
            buf_fmt(arg_new(&a), "k%zu", i % KEYS);
        put_command(r, b, &a);
    } else if (k < 36) {
        char key[16];
        snprintf(key, sizeof(key), "big%d", (int)rng_pick(r, 4));
        arg_str(&a, "SET");
        arg_str(&a, key);
        buf_repeat(arg_new(&a), "B", 30000 + rng_pick(r, 2700)); /* under --max-value-bytes */
        put_command(r, b, &a);
        args_free(&a);
        arg_str(&a, "GET");
        arg_str(&a, key);
        put_command(r, &one, &a);
        buf_repeat(b, one.p, 10 + rng_pick(r, 60)); /* up to 2 MB of replies, past the 256 KiB that pauses reading */
    } else {
        static const char *const small[][3] = {{"PING", NULL, NULL},   {"INCR", "c0", NULL},   {"SET", "k1", "v"},
                                               {"GET", "k1", NULL},    {"ECHO", "hi", NULL},   {"EXISTS", "k2", NULL},
                                               {"CLIENT", "ID", NULL}, {"DBSIZE", NULL, NULL}, {"TTL", "k3", NULL}};
        const char *const *words = small[rng_pick(r, sizeof(small) / sizeof(small[0]))];
        for (int i = 0; i < 3 && words[i] != NULL; i++)
            arg_str(&a, words[i]);
        put_command(r, &one, &a);
        buf_repeat(b, one.p, 100 + rng_pick(r, 3000));
    }
    args_free(&a);
    free(one.p);
}

/* What a mutation inserts, besides random bytes: tokens that mean something to a RESP parser. */
#define MUTATION_TOKENS                                                                                                \
    "\r\n|\r|\n|*|$|*1\r\n|*-1\r\n|*0\r\n|$-1\r\n|$0\r\n\r\n|$99999999999\r\n|*2147483648\r\n|\"|'|\\|\\x|\\x4|:|+|-|" \
    "PING\r\n|QUIT\r\n|HELLO 3\r\n|*1\r\n$4\r\nQUIT\r\n| |\t|\xff|\x80|*3\r\n$3\r\nSET\r\n"

/* A soup of RESP tokens: as close to a request as random gets. */
static void put_token_soup(struct rng *r, struct buf *b)
{
    for (size_t i = 0, n = 1 + rng_pick(r, 60); i < n; i++)
        rng_word(r, b,
                 "*|$|:|+|-|%|_|~|>|#|\r\n|\r\n|\r\n|\r|\n|0|1|2|3|-1|10|99999999999999999999|PING|SET|GET|k|v|\"|'|"
                 "\\|\\x|\x01| |\t|HELLO|3|AUTH|QUIT|*2\r\n|$3\r\n|$1\r\n");
}

/* ---- cases ------------------------------------------------------------------- */

/* Case index of the run with seed: its bytes, how they go out, and how the client ends. */
static void gen_case(uint64_t seed, unsigned long index, struct netfuzz_case *c, int with_token)
{
    struct rng r = netfuzz_case_rng(seed, index);
    int kind = (int)rng_pick(&r, 100);
    if (kind < 4) {
        rng_bytes(&r, &c->bytes, 1 + rng_pick(&r, 4096), rng_chance(&r, 50));
    } else if (kind < 8) {
        put_token_soup(&r, &c->bytes);
    } else {
        put_prelude(&r, &c->bytes, with_token);
        if (kind < 14) {
            put_deep_pipeline(&r, &c->bytes);
        } else {
            for (size_t i = 0, n = rng_chance(&r, 65) ? 1 : 2 + rng_pick(&r, 9); i < n; i++) {
                struct args a = {0};
                gen_command(&r, &a, with_token);
                put_command(&r, &c->bytes, &a);
                args_free(&a);
            }
        }
        if (rng_chance(&r, 4))
            buf_str(&c->bytes, rng_chance(&r, 50) ? "QUIT\r\n" : "*1\r\n$4\r\nquit\r\n");
        if (rng_chance(&r, 33))
            netfuzz_mutate(&r, &c->bytes, MUTATION_TOKENS);
    }
    int e = (int)rng_pick(&r, 100);
    c->ending = e < 40 ? NETFUZZ_HALF_CLOSE : e < 70 ? NETFUZZ_WAIT : e < 85 ? NETFUZZ_CLOSE : NETFUZZ_RESET;
    /* Mostly short waits; some past the 1 s HTTP idle and request timeouts, which must not close a RESP client. */
    c->quiet_ms = rng_chance(&r, 5) ? 1500 : 50 + (int)rng_pick(&r, 300);
    netfuzz_plan_delivery(&r, c);
}

static void gen_open_case(uint64_t seed, unsigned long index, struct netfuzz_case *c)
{
    gen_case(seed, index, c, 0);
}

static void gen_auth_case(uint64_t seed, unsigned long index, struct netfuzz_case *c)
{
    gen_case(seed ^ 0xA5A5A5A5A5A5A5A5ull, index, c, 1);
}

/* ---- checking cases ---------------------------------------------------------- */

/* The error codes a client may see (docs/API.md's list): each starts an error reply, a space after it. */
static const char *const error_codes[] = {"ERR", "WRONGTYPE", "NOAUTH", "NOPROTO", "WRONGPASS", "OOM", "LOADING"};
#define ERROR_CODES (sizeof(error_codes) / sizeof(error_codes[0]))

static const char PROTOCOL_ERROR[] = "-ERR Protocol error: ";

struct tally {
    unsigned long replies, none, cut, capped, server_closed, protocol_errors, resp3_cases;
    unsigned long types[128];
    unsigned long errors[ERROR_CODES];
};

static int is_protocol_error(const char *reply, size_t len)
{
    return len >= sizeof(PROTOCOL_ERROR) - 1 && memcmp(reply, PROTOCOL_ERROR, sizeof(PROTOCOL_ERROR) - 1) == 0;
}

/* The last whole reply in what came back, or NULL; *len its length. */
static const char *last_reply(const struct netfuzz_slot *s, size_t *len)
{
    const char *last = NULL;
    for (size_t at = 0, n; at < s->in.len && (n = resp_reply_length(s->in.p + at, s->in.len - at)) > 0; at += n) {
        last = s->in.p + at;
        *len = n;
    }
    return last;
}

/* A quiet wait ended: the server is to close by itself if its last reply was a protocol error. */
static int expects_close(const struct netfuzz *f, const struct netfuzz_slot *s)
{
    (void)f;
    size_t len = 0;
    const char *last = last_reply(s, &len);
    return last != NULL && is_protocol_error(last, len);
}

/*
 * HELLO's reply, written in the protocol it switched to: 3 for a map, 2 for
 * a flat array, -1 for one that names the other protocol; 0 for another reply.
 */
static int hello_switches_to(const char *reply, size_t len)
{
    static const char fields[] = "$6\r\nserver\r\n$5\r\nredis\r\n";
    int protocol = 0;
    if (len > 4 + sizeof(fields) && memcmp(reply, "%7\r\n", 4) == 0 &&
        memcmp(reply + 4, fields, sizeof(fields) - 1) == 0)
        protocol = 3;
    else if (len > 5 + sizeof(fields) && memcmp(reply, "*14\r\n", 5) == 0 &&
             memcmp(reply + 5, fields, sizeof(fields) - 1) == 0)
        protocol = 2;
    else
        return 0;
    char proto[24];
    snprintf(proto, sizeof(proto), "$5\r\nproto\r\n:%d\r\n", protocol);
    return memmem(reply, len, proto, strlen(proto)) != NULL ? protocol : -1;
}

/* One error reply: one of the codes, then a space. */
static void check_error(struct netfuzz *f, const struct netfuzz_slot *s, const char *reply, size_t len)
{
    struct tally *t = f->tally;
    for (size_t i = 0; i < ERROR_CODES; i++) {
        size_t n = strlen(error_codes[i]);
        if (len > n + 1 && memcmp(reply + 1, error_codes[i], n) == 0 && reply[1 + n] == ' ') {
            t->errors[i]++;
            return;
        }
    }
    netfuzz_fail_case(f, s,
                      "an error reply that does not start with ERR, WRONGTYPE, NOAUTH, NOPROTO, WRONGPASS, OOM "
                      "or LOADING and a space");
}

/* Checks everything that came back for one case, reply by reply, and how the connection ended. */
static void check_replies(struct netfuzz *f, const struct netfuzz_slot *s)
{
    struct tally *t = f->tally;
    const char *in = s->in.p, *last = NULL;
    size_t len = s->in.len, at = 0, last_len = 0;
    int protocol = 2, saw_resp3 = 0;
    char why[160];
    /* The client closed (or reset) its end before the server closed: replies may be cut there. */
    int closed_early = !s->closed_by_server && s->c.ending >= NETFUZZ_CLOSE;
    if (len == 0)
        t->none++;
    while (at < len) {
        const char *p = in + at;
        size_t n = resp_reply_length(p, len - at);
        if (n == 0) {
            if (strchr("+-:$*%_~>|,#(=!", p[0]) == NULL || p[0] == '\0')
                netfuzz_fail_case(f, s, "bytes that do not start a RESP reply");
            if (!closed_early && !s->capped) {
                snprintf(why, sizeof(why), "an incomplete reply at byte %zu, though the client did not close early",
                         at);
                netfuzz_fail_case(f, s, why);
            }
            t->cut++;
            break;
        }
        struct resp_shape shape;
        const char *wrong;
        if (!resp_reply_valid(p, n, &shape, &wrong)) {
            snprintf(why, sizeof(why), "a malformed reply at byte %zu: %s", at, wrong);
            netfuzz_fail_case(f, s, why);
        }
        int switched = hello_switches_to(p, n);
        if (switched < 0)
            netfuzz_fail_case(f, s, "a HELLO reply whose proto field is not the protocol it is written in");
        if (switched != 0)
            protocol = switched;
        else if (n == 8 && memcmp(p, "+RESET\r\n", 8) == 0)
            protocol = 2;
        if (shape.resp3 && protocol == 2) {
            snprintf(why, sizeof(why), "a RESP3 type at byte %zu, without HELLO 3 before it", at);
            netfuzz_fail_case(f, s, why);
        }
        if (shape.resp2_null && protocol == 3) {
            snprintf(why, sizeof(why), "a RESP2 null ($-1 or *-1) at byte %zu, after HELLO 3", at);
            netfuzz_fail_case(f, s, why);
        }
        saw_resp3 |= protocol == 3;
        if (p[0] == '-')
            check_error(f, s, p, n);
        if (is_protocol_error(p, n)) {
            t->protocol_errors++;
            if (at + n != len)
                netfuzz_fail_case(f, s, "bytes after a protocol error, which must be the last reply");
        }
        t->types[(unsigned char)p[0] & 127]++;
        t->replies++;
        last = p;
        last_len = n;
        at += n;
    }
    t->resp3_cases += saw_resp3;
    t->capped += s->capped;
    if (s->closed_by_server && !s->shut) {
        t->server_closed++;
        int after_quit = last != NULL && last_len == 5 && memcmp(last, "+OK\r\n", 5) == 0 &&
                         netfuzz_contains_nocase(s->c.bytes.p, s->c.bytes.len, "quit");
        if (!s->capped && !(last != NULL && is_protocol_error(last, last_len)) && !after_quit)
            netfuzz_fail_case(f, s,
                              "the server closed the connection before the client was done, and not after a protocol "
                              "error or QUIT");
    }
}

/* ---- checks between batches -------------------------------------------------- */

/*
 * The server is alive and answers /health, answers PING, stores a binary
 * value and returns it verbatim, and holds no connection of the batch.
 */
static void expect_server_answers(const struct netfuzz *f, struct server *srv, const char *token, unsigned long first,
                                  unsigned long end)
{
    netfuzz_expect_alive(f, srv, first, end);
    struct resp_client c;
    resp_client_open(&c, srv->resp_port);
    if (token != NULL)
        expect_reply(&c, "+OK\r\n", "AUTH", token, NULL);
    expect_reply(&c, "+PONG\r\n", "PING", NULL);
    char key[48], value[256 + 24], expected[sizeof(value) + 16];
    snprintf(key, sizeof(key), "netfuzz-check-%lu", first);
    for (int i = 0; i < 256; i++)
        value[i] = (char)i; /* NUL, CR, LF, invalid UTF-8: every byte */
    size_t value_len = 256 + (size_t)snprintf(value + 256, sizeof(value) - 256, "%" PRIu64, f->seed);
    const char *set[] = {"SET", key, value}, *get[] = {"GET", key};
    const size_t set_lens[] = {3, strlen(key), value_len}, get_lens[] = {3, strlen(key)};
    resp_send_argv(&c, 3, set, set_lens);
    resp_send_argv(&c, 2, get, get_lens);
    size_t got_len = 0, expected_len = (size_t)snprintf(expected, sizeof(expected), "$%zu\r\n", value_len);
    memcpy(expected + expected_len, value, value_len);
    memcpy(expected + expected_len + value_len, "\r\n", 2);
    expected_len += value_len + 2;
    char *stored = resp_read(&c, 10000, NULL), *got = resp_read(&c, 10000, &got_len);
    if (stored == NULL || strcmp(stored, "+OK\r\n") != 0 || got == NULL || got_len != expected_len ||
        memcmp(got, expected, expected_len) != 0)
        fail_msg("after cases %lu-%lu: SET and GET of a binary value answered %s and %s", first, end - 1,
                 stored ? stored : "(nothing)", got ? got : "(nothing)");
    free(stored);
    free(got);
    resp_client_close(&c);
    expect_connections_drop_to_auth(srv->port, token, 1, f->hang_ms); /* the /stats connection itself */
}

/* ---- the tests ----------------------------------------------------------------- */

/* COMMAND's names, each checked against commands[]: a command added to the table needs a template here. */
static void expect_a_template_for_every_command(unsigned port)
{
    struct resp_client c;
    resp_client_open(&c, port);
    size_t len = 0;
    char *reply = resp_call(&c, "COMMAND", NULL);
    assert_non_null(reply);
    len = strlen(reply);
    size_t at = (size_t)(strstr(reply, "\r\n") - reply) + 2, found = 0;
    while (at < len) {
        size_t n = resp_reply_length(reply + at, len - at);
        assert_true(n > 0);
        /* *6\r\n$<len>\r\n<name>\r\n... */
        const char *name_line = strstr(reply + at + 4, "\r\n") + 2;
        size_t name_len = (size_t)atoi(reply + at + 5);
        int known = 0;
        for (size_t i = 0; i < COMMANDS; i++)
            known |= strlen(commands[i]) == name_len && strncasecmp(commands[i], name_line, name_len) == 0;
        if (!known)
            fail_msg("the server has the command '%.*s', and the fuzzer no template for it: add one to commands[]",
                     (int)name_len, name_line);
        found++;
        at += n;
    }
    assert_true(found > 0);
    free(reply);
    resp_client_close(&c);
}

static void print_tally(const struct netfuzz *f, const struct tally *t, int64_t start)
{
    printf("%s: %lu cases, seed %" PRIu64 ", %.1f s, %lu replies (", f->name, f->cases, f->seed,
           (double)(now_ms() - start) / 1000, t->replies);
    const char *sep = "";
    for (int i = 0; i < 128; i++)
        if (t->types[i] > 0) {
            printf("%s%c:%lu", sep, i, t->types[i]);
            sep = " ";
        }
    printf("), errors");
    for (size_t i = 0; i < ERROR_CODES; i++)
        if (t->errors[i] > 0)
            printf(" %s:%lu", error_codes[i], t->errors[i]);
    printf(", protocol errors:%lu, closed by the server:%lu, RESP3:%lu, no answer:%lu, cut by the client:%lu%s\n",
           t->protocol_errors, t->server_closed, t->resp3_cases, t->none, t->cut, t->capped ? ", capped" : "");
}

/* Runs the cases against srv in batches, with the checks between them. */
static void run(struct netfuzz *f, struct server *srv, const char *token, unsigned long cases)
{
    int valgrind = procfs_runs_under_valgrind(srv->pid);
    f->port = srv->resp_port;
    f->hang_ms = SANITIZED || valgrind ? 20000 : 5000;
    f->quiet_scale = valgrind ? 10 : SANITIZED ? 2 : 1;
    f->read_cap = READ_CAP;
    f->hang_why = "the server kept the connection open past hang_ms after the client's last byte or half-close";
    f->check = check_replies;
    f->expects_close = expects_close;
    printf("%s: seed %" PRIu64 " (repeat with NETFUZZ_SEED=%" PRIu64 "), %lu cases, %d at a time%s\n", f->name, f->seed,
           f->seed, cases, NETFUZZ_SLOTS,
           SANITIZED  ? ", sanitized build"
           : valgrind ? ", server under valgrind"
                      : "");
    fflush(stdout);
    int64_t start = now_ms();
    for (unsigned long first = 0; first < cases; first += BATCH) {
        unsigned long end = first + BATCH < cases ? first + BATCH : cases;
        netfuzz_run_batch(f, first, end);
        expect_server_answers(f, srv, token, first, end);
    }
    assert_int_equal(f->cases, cases);
    print_tally(f, f->tally, start);
}

static unsigned long default_cases(void)
{
    return procfs_runs_under_valgrind(group_server.pid) ? VALGRIND_CASES : CASES;
}

static void thousands_of_malformed_resp_requests_leave_the_server_answering_correctly(void **state)
{
    (void)state;
    static struct tally t;
    memset(&t, 0, sizeof(t));
    expect_a_template_for_every_command(group_server.resp_port);
    struct netfuzz f = {.name = "netfuzz-resp", .seed = netfuzz_seed(), .gen = gen_open_case, .tally = &t};
    run(&f, &group_server, NULL, (unsigned long)netfuzz_env_u64("NETFUZZ_CASES", default_cases()));
}

static struct server auth_server;

static int stop_auth_server(void **state)
{
    (void)state;
    server_cleanup(&auth_server);
    return 0;
}

static void resp_requests_before_and_after_auth_leave_the_server_answering_correctly(void **state)
{
    (void)state;
    static struct tally t;
    memset(&t, 0, sizeof(t));
    const char *args[sizeof(server_flags) / sizeof(server_flags[0]) + 2];
    size_t n = 0;
    for (; server_flags[n] != NULL; n++)
        args[n] = server_flags[n];
    args[n++] = "--auth-token=" TOKEN;
    args[n] = NULL;
    struct server_opts opts = {.args = args};
    assert_int_equal(server_start(&auth_server, &opts), 0);
    struct netfuzz f = {.name = "netfuzz-resp-auth", .seed = netfuzz_seed(), .gen = gen_auth_case, .tally = &t};
    run(&f, &auth_server, TOKEN, (unsigned long)netfuzz_env_u64("NETFUZZ_CASES", default_cases()) / 5);
    expect_clean_exit(&auth_server, 60000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(thousands_of_malformed_resp_requests_leave_the_server_answering_correctly),
        cmocka_unit_test_teardown(resp_requests_before_and_after_auth_leave_the_server_answering_correctly,
                                  stop_auth_server),
    };
    group_server_args = server_flags;
    return support_exit_code(cmocka_run_group_tests(tests, group_server_setup, group_server_teardown));
}
