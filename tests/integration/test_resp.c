/*
 * The Redis protocol on its own port (--resp-port), against the real binary
 * over real sockets: replies checked byte for byte, pipelining, errors in
 * Redis's words, authentication, the output bound, the same entries seen
 * from HTTP, durability with --append-log always, and real clients:
 * redis-cli, redis-benchmark and redis-py.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../support/http.h"
#include "../support/procfs.h"
#include "../support/resp.h"
#include "../support/server.h"
#include "../support/shell.h"

static const char *const server_flags[] = {"--resp-port", "0", "--resp-max-output", "64kb", NULL};

#define RESP_PORT (group_server.resp_port)

/* The sanitizer builds (make asan, make tsan) are GCC's, which names the sanitizer in these. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* Requests per redis-benchmark test: the 100,000, fewer where valgrind or a sanitizer slows the server. */
static int benchmark_requests(void)
{
    if (getenv("CACHETTE_MEMCHECK") != NULL || procfs_runs_under_valgrind(group_server.pid))
        return 2000;
    return SANITIZED ? 10000 : 100000;
}

static void open_client(struct resp_client *c)
{
    resp_client_open(c, RESP_PORT);
    expect_reply(c, "+OK\r\n", "FLUSHALL", NULL);
}

static void ping_echo_and_inline_commands(void **state)
{
    (void)state;
    struct resp_client c;
    open_client(&c);
    expect_reply(&c, "+PONG\r\n", "PING", NULL);
    expect_reply(&c, "$5\r\nhello\r\n", "PING", "hello", NULL);
    expect_reply(&c, "$3\r\na b\r\n", "ECHO", "a b", NULL);
    expect_reply(&c, "+PONG\r\n", "ping", NULL); /* names in any case */
    /* Inline, as typed in telnet: spaces split, quotes group, escapes decode. */
    const char *typed = "PING\r\nSET \"in line\" 'v 1'\nGET \"in\\x20line\"\r\n";
    resp_send_raw(&c, typed, strlen(typed));
    char *a = resp_read(&c, 5000, NULL), *b = resp_read(&c, 5000, NULL), *d = resp_read(&c, 5000, NULL);
    assert_string_equal(a, "+PONG\r\n");
    assert_string_equal(b, "+OK\r\n");
    assert_string_equal(d, "$3\r\nv 1\r\n");
    free(a);
    free(b);
    free(d);
    resp_client_close(&c);
}

static void set_and_its_options(void **state)
{
    (void)state;
    struct resp_client c;
    open_client(&c);
    expect_reply(&c, "+OK\r\n", "SET", "k", "v1", NULL);
    expect_reply(&c, "$2\r\nv1\r\n", "GET", "k", NULL);
    expect_reply(&c, "$-1\r\n", "GET", "absent", NULL);
    expect_reply(&c, "$-1\r\n", "SET", "k", "v2", "NX", NULL);
    expect_reply(&c, "$-1\r\n", "SET", "absent", "v", "XX", NULL);
    expect_reply(&c, "$-1\r\n", "GET", "absent", NULL);
    expect_reply(&c, "$2\r\nv1\r\n", "SET", "k", "v2", "XX", "GET", NULL);
    expect_reply(&c, "$-1\r\n", "SET", "fresh", "v", "GET", NULL);
    expect_reply(&c, "+OK\r\n", "SET", "k", "v3", "EX", "100", NULL);
    expect_reply(&c, ":100\r\n", "TTL", "k", NULL);
    expect_reply(&c, "+OK\r\n", "SET", "k", "v4", "KEEPTTL", NULL);
    expect_reply(&c, ":100\r\n", "TTL", "k", NULL);
    expect_reply(&c, "+OK\r\n", "SET", "k", "v5", NULL);
    expect_reply(&c, ":-1\r\n", "TTL", "k", NULL);
    expect_reply(&c, "+OK\r\n", "SET", "p", "v", "PX", "100000", NULL);
    expect_reply(&c, ":100\r\n", "TTL", "p", NULL);
    char at[32];
    snprintf(at, sizeof(at), "%lld", (long long)time(NULL) + 200);
    expect_reply(&c, "+OK\r\n", "SET", "p", "v", "EXAT", at, NULL);
    char *ttl = resp_call(&c, "TTL", "p", NULL);
    assert_true(strcmp(ttl, ":199\r\n") == 0 || strcmp(ttl, ":200\r\n") == 0);
    free(ttl);
    expect_reply(&c, "-ERR invalid expire time in 'set' command\r\n", "SET", "k", "v", "EX", "0", NULL);
    expect_reply(&c, "-ERR value is not an integer or out of range\r\n", "SET", "k", "v", "EX", "ten", NULL);
    expect_reply(&c, "-ERR syntax error\r\n", "SET", "k", "v", "NX", "XX", NULL);
    expect_reply(&c, "-ERR syntax error\r\n", "SET", "k", "v", "EX", "1", "PX", "5", NULL);
    expect_reply(&c, ":1\r\n", "SETNX", "n1", "a", NULL);
    expect_reply(&c, ":0\r\n", "SETNX", "n1", "b", NULL);
    expect_reply(&c, "+OK\r\n", "SETEX", "e", "50", "x", NULL);
    expect_reply(&c, ":50\r\n", "TTL", "e", NULL);
    expect_reply(&c, "+OK\r\n", "PSETEX", "e", "50000", "y", NULL);
    expect_reply(&c, "$1\r\ny\r\n", "GETSET", "e", "z", NULL);
    expect_reply(&c, ":1\r\n", "STRLEN", "e", NULL);
    expect_reply(&c, ":0\r\n", "STRLEN", "absent", NULL);
    expect_reply(&c, "$1\r\nz\r\n", "GETDEL", "e", NULL);
    expect_reply(&c, "$-1\r\n", "GETDEL", "e", NULL);
    resp_client_close(&c);
}

static void counters(void **state)
{
    (void)state;
    struct resp_client c;
    open_client(&c);
    expect_reply(&c, ":1\r\n", "INCR", "hits", NULL);
    expect_reply(&c, "+OK\r\n", "SET", "n", "5", NULL);
    expect_reply(&c, ":6\r\n", "INCR", "n", NULL);
    expect_reply(&c, ":-4\r\n", "INCRBY", "n", "-10", NULL);
    expect_reply(&c, ":-5\r\n", "DECR", "n", NULL);
    expect_reply(&c, ":0\r\n", "DECRBY", "n", "-5", NULL);
    expect_reply(&c, "$1\r\n0\r\n", "GET", "n", NULL);
    expect_reply(&c, "+OK\r\n", "SET", "word", "abc", NULL);
    expect_reply(&c, "-ERR value is not an integer or out of range\r\n", "INCR", "word", NULL);
    expect_reply(&c, "+OK\r\n", "SET", "padded", "05", NULL); /* not how Redis writes 5: text */
    expect_reply(&c, "-ERR value is not an integer or out of range\r\n", "INCR", "padded", NULL);
    expect_reply(&c, "+OK\r\n", "SET", "top", "9223372036854775807", NULL);
    expect_reply(&c, "-ERR increment or decrement would overflow\r\n", "INCR", "top", NULL);
    expect_reply(&c, "-ERR value is not an integer or out of range\r\n", "INCRBY", "n", "1.5", NULL);
    expect_reply(&c, "-ERR decrement would overflow\r\n", "DECRBY", "n", "-9223372036854775808", NULL);
    /* INCRBYFLOAT, Redis's examples: 17 decimals at most, trailing zeros cut; the TTL kept. */
    expect_reply(&c, "+OK\r\n", "SET", "f", "10.50", "EX", "100", NULL);
    expect_reply(&c, "$4\r\n10.6\r\n", "INCRBYFLOAT", "f", "0.1", NULL);
    expect_reply(&c, "$3\r\n5.6\r\n", "INCRBYFLOAT", "f", "-5", NULL);
    expect_reply(&c, ":100\r\n", "TTL", "f", NULL);
    expect_reply(&c, "+OK\r\n", "SET", "g", "5.0e3", NULL);
    expect_reply(&c, "$4\r\n5200\r\n", "INCRBYFLOAT", "g", "2.0e2", NULL);
    expect_reply(&c, "$3\r\n1.5\r\n", "INCRBYFLOAT", "fresh-float", "1.5", NULL);
    expect_reply(&c, "-ERR value is not a valid float\r\n", "INCRBYFLOAT", "word", "1", NULL);
    expect_reply(&c, "-ERR value is not a valid float\r\n", "INCRBYFLOAT", "f", "x", NULL);
    expect_reply(&c, "-ERR value is not a valid float\r\n", "INCRBYFLOAT", "f", "inf", NULL);
    resp_client_close(&c);
}

static void keys_and_expiry(void **state)
{
    (void)state;
    struct resp_client c;
    open_client(&c);
    expect_reply(&c, "+OK\r\n", "MSET", "a", "1", "b", "two", NULL);
    expect_reply(&c, "*3\r\n$1\r\n1\r\n$-1\r\n$3\r\ntwo\r\n", "MGET", "a", "nope", "b", NULL);
    expect_reply(&c, "-ERR wrong number of arguments for 'mset' command\r\n", "MSET", "a", "1", "b", NULL);
    expect_reply(&c, ":1\r\n", "MSETNX", "x1", "1", "x2", "2", NULL);
    expect_reply(&c, ":0\r\n", "MSETNX", "x2", "3", "x3", "4", NULL); /* x2 exists: nothing written */
    expect_reply(&c, ":0\r\n", "EXISTS", "x3", NULL);
    expect_reply(&c, "$1\r\n2\r\n", "GET", "x2", NULL);
    expect_reply(&c, ":2\r\n", "DEL", "x1", "x2", NULL);
    expect_reply(&c, ":3\r\n", "EXISTS", "a", "b", "a", "nope", NULL);
    expect_reply(&c, "+string\r\n", "TYPE", "a", NULL);
    expect_reply(&c, "+none\r\n", "TYPE", "nope", NULL);
    expect_reply(&c, ":2\r\n", "DBSIZE", NULL);
    expect_reply(&c, ":1\r\n", "EXPIRE", "a", "100", NULL);
    expect_reply(&c, ":0\r\n", "EXPIRE", "nope", "100", NULL);
    char *pttl = resp_call(&c, "PTTL", "a", NULL);
    long long ms = strtoll(pttl + 1, NULL, 10);
    assert_true(pttl[0] == ':' && ms > 95000 && ms <= 100000);
    free(pttl);
    expect_reply(&c, ":1\r\n", "PERSIST", "a", NULL);
    expect_reply(&c, ":0\r\n", "PERSIST", "a", NULL);
    expect_reply(&c, ":-1\r\n", "TTL", "a", NULL);
    expect_reply(&c, ":-2\r\n", "TTL", "nope", NULL);
    expect_reply(&c, ":1\r\n", "PEXPIRE", "b", "100000", NULL);
    expect_reply(&c, ":100\r\n", "TTL", "b", NULL);
    /* NX, XX, GT, LT against the current expiry (none counts as forever). */
    expect_reply(&c, "+OK\r\n", "SET", "cond", "v", NULL);
    expect_reply(&c, ":0\r\n", "EXPIRE", "cond", "100", "XX", NULL);
    expect_reply(&c, ":0\r\n", "EXPIRE", "cond", "100", "GT", NULL);
    expect_reply(&c, ":1\r\n", "EXPIRE", "cond", "100", "NX", NULL);
    expect_reply(&c, ":0\r\n", "EXPIRE", "cond", "200", "NX", NULL);
    expect_reply(&c, ":0\r\n", "EXPIRE", "cond", "50", "GT", NULL);
    expect_reply(&c, ":1\r\n", "EXPIRE", "cond", "200", "GT", NULL);
    expect_reply(&c, ":200\r\n", "TTL", "cond", NULL);
    expect_reply(&c, ":0\r\n", "EXPIRE", "cond", "300", "LT", NULL);
    expect_reply(&c, ":1\r\n", "EXPIRE", "cond", "150", "LT", "XX", NULL);
    expect_reply(&c, ":150\r\n", "TTL", "cond", NULL);
    expect_reply(&c, "+OK\r\n", "SET", "forever", "v", NULL);
    expect_reply(&c, ":0\r\n", "EXPIRE", "forever", "10", "LT", "XX", NULL); /* XX: it has no expiry */
    expect_reply(&c, ":1\r\n", "EXPIRE", "forever", "10", "LT", NULL);       /* none is longer than any */
    expect_reply(&c, "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n", "EXPIRE", "cond", "1",
                 "NX", "GT", NULL);
    expect_reply(&c, "-ERR GT and LT options at the same time are not compatible\r\n", "EXPIRE", "cond", "1", "GT",
                 "LT", NULL);
    expect_reply(&c, "-ERR Unsupported option FOO\r\n", "EXPIRE", "cond", "1", "FOO", NULL);
    expect_reply(&c, ":0\r\n", "EXPIRE", "cond", "0", "NX", NULL); /* the condition holds back the deletion too */
    expect_reply(&c, ":1\r\n", "EXISTS", "cond", NULL);
    expect_reply(&c, ":1\r\n", "EXPIRE", "b", "0", NULL); /* not above zero: deleted */
    expect_reply(&c, ":0\r\n", "EXISTS", "b", NULL);
    expect_reply(&c, ":1\r\n", "DEL", "a", "nope", NULL);
    expect_reply(&c, ":0\r\n", "UNLINK", "a", NULL);
    expect_reply(&c, "+OK\r\n", "SET", "x", "1", NULL);
    expect_reply(&c, "+OK\r\n", "FLUSHDB", "ASYNC", NULL);
    expect_reply(&c, ":0\r\n", "DBSIZE", NULL);
    resp_client_close(&c);
}

/* Every key of a SCAN with MATCH, page by page, and KEYS and RANDOMKEY over the same keys. */
static void scan_keys_and_randomkey(void **state)
{
    (void)state;
    struct resp_client c;
    open_client(&c);
    expect_reply(&c, "$-1\r\n", "RANDOMKEY", NULL);
    for (int i = 0; i < 300; i++) {
        char key[16];
        snprintf(key, sizeof(key), i % 3 ? "user:%d" : "other:%d", i);
        expect_reply(&c, "+OK\r\n", "SET", key, "v", NULL);
    }
    char seen[300] = {0};
    char cursor[24] = "0";
    int pages = 0;
    do {
        char *page = resp_call(&c, "SCAN", cursor, "MATCH", "user:*", "COUNT", "20", NULL);
        assert_int_equal(strncmp(page, "*2\r\n$", 5), 0);
        char *at = strchr(page + 5, '\n') + 1;
        size_t cursor_len = strcspn(at, "\r");
        memcpy(cursor, at, cursor_len);
        cursor[cursor_len] = '\0';
        /* Below 2^53: exact in a double, as JavaScript clients hold it. */
        assert_true(strtoull(cursor, NULL, 10) < (UINT64_C(1) << 53));
        for (char *k = strstr(at, "user:"); k != NULL; k = strstr(k + 1, "user:"))
            seen[atoi(k + 5)] = 1;
        assert_null(strstr(at, "other:"));
        free(page);
        pages++;
    } while (strcmp(cursor, "0") != 0);
    assert_true(pages > 1);
    for (int i = 0; i < 300; i++)
        assert_int_equal(seen[i], i % 3 != 0);
    int matching = 0; /* other:12, other:15, … other:198 */
    for (int i = 0; i < 300; i += 3)
        matching += snprintf(NULL, 0, "%d", i) > 1 && (i / (i < 100 ? 10 : 100)) == 1;
    char *keys = resp_call(&c, "KEYS", "other:1*", NULL), head[16];
    snprintf(head, sizeof(head), "*%d\r\n", matching);
    assert_int_equal(strncmp(keys, head, strlen(head)), 0);
    assert_null(strstr(keys, "user:"));
    free(keys);
    char *random_key = resp_call(&c, "RANDOMKEY", NULL);
    assert_true(strstr(random_key, "user:") != NULL || strstr(random_key, "other:") != NULL);
    free(random_key);
    expect_reply(&c, "-ERR invalid cursor\r\n", "SCAN", "abc", NULL);
    resp_client_close(&c);
}

static void append_getex_and_expiry_times(void **state)
{
    (void)state;
    struct resp_client c;
    open_client(&c);
    expect_reply(&c, ":3\r\n", "APPEND", "s", "abc", NULL);
    expect_reply(&c, ":6\r\n", "APPEND", "s", "def", NULL);
    expect_reply(&c, "$6\r\nabcdef\r\n", "GET", "s", NULL);
    expect_reply(&c, "$6\r\nabcdef\r\n", "GETEX", "s", "EX", "100", NULL);
    expect_reply(&c, ":100\r\n", "TTL", "s", NULL);
    expect_reply(&c, "$6\r\nabcdef\r\n", "GETEX", "s", "PERSIST", NULL);
    expect_reply(&c, ":-1\r\n", "TTL", "s", NULL);
    expect_reply(&c, "$-1\r\n", "GETEX", "nope", "EX", "5", NULL);
    char at[32], at_ms[32];
    long long when = (long long)time(NULL) + 500;
    snprintf(at, sizeof(at), "%lld", when);
    snprintf(at_ms, sizeof(at_ms), ":%lld\r\n", when);
    expect_reply(&c, ":1\r\n", "EXPIREAT", "s", at, NULL);
    expect_reply(&c, at_ms, "EXPIRETIME", "s", NULL);
    char *ms = resp_call(&c, "PEXPIRETIME", "s", NULL);
    long long pat = strtoll(ms + 1, NULL, 10);
    assert_true(pat > when * 1000 - 2000 && pat < when * 1000 + 2000);
    free(ms);
    expect_reply(&c, ":-2\r\n", "EXPIRETIME", "nope", NULL);
    expect_reply(&c, ":1\r\n", "PEXPIREAT", "s", "1000", NULL); /* in the past: deleted */
    expect_reply(&c, ":0\r\n", "EXISTS", "s", NULL);
    resp_client_close(&c);
}

static void connection_commands(void **state)
{
    (void)state;
    struct resp_client c;
    open_client(&c);
    expect_reply(&c, "+OK\r\n", "SELECT", "0", NULL);
    expect_reply(&c, "-ERR DB index is out of range\r\n", "SELECT", "1", NULL);
    expect_reply(&c, "$-1\r\n", "CLIENT", "GETNAME", NULL);
    expect_reply(&c, "+OK\r\n", "CLIENT", "SETNAME", "worker-1", NULL);
    expect_reply(&c, "$8\r\nworker-1\r\n", "CLIENT", "GETNAME", NULL);
    expect_reply(&c, "-ERR Client names cannot contain spaces, newlines or special characters.\r\n", "CLIENT",
                 "SETNAME", "a b", NULL);
    expect_reply(&c, "+OK\r\n", "CLIENT", "SETINFO", "LIB-NAME", "tests", NULL);
    char *info = resp_call(&c, "CLIENT", "INFO", NULL);
    assert_non_null(strstr(info, "name=worker-1"));
    assert_non_null(strstr(info, "lib-name=tests"));
    free(info);
    char *id = resp_call(&c, "CLIENT", "ID", NULL);
    assert_int_equal(id[0], ':');
    free(id);
    char *server_info = resp_call(&c, "INFO", NULL);
    assert_non_null(strstr(server_info, "redis_version:"));
    assert_non_null(strstr(server_info, "loading:0\r\n"));
    free(server_info);
    char *config = resp_call(&c, "CONFIG", "GET", "maxmemory", "append*", NULL);
    assert_int_equal(strncmp(config, "*6\r\n$9\r\nmaxmemory\r\n$", 20), 0);
    assert_non_null(strstr(config, "$10\r\nappendonly\r\n$2\r\nno\r\n$11\r\nappendfsync\r\n$2\r\nno\r\n"));
    free(config);
    char *count = resp_call(&c, "COMMAND", "COUNT", NULL);
    assert_true(count[0] == ':' && atoi(count + 1) > 30);
    /* Every command COMMAND lists is found by its name, in upper case too. */
    char *all = resp_call(&c, "COMMAND", NULL);
    int listed = 0;
    for (char *at = strstr(all, "*6\r\n$"); at != NULL; at = strstr(at + 1, "*6\r\n$")) {
        char name[32];
        int len = atoi(at + 5);
        const char *text = strchr(at + 5, '\n') + 1;
        for (int i = 0; i < len && i < 31; i++)
            name[i] = (char)toupper((unsigned char)text[i]);
        name[len < 31 ? len : 31] = '\0';
        char *info = resp_call(&c, "COMMAND", "INFO", name, NULL);
        if (strncmp(info, "*1\r\n*6\r\n", 8) != 0)
            fail_msg("COMMAND INFO %s: %s", name, info);
        free(info);
        listed++;
    }
    assert_int_equal(listed, atoi(count + 1));
    free(all);
    free(count);
    char *now = resp_call(&c, "TIME", NULL);
    assert_int_equal(strncmp(now, "*2\r\n$10\r\n", 9), 0);
    free(now);

    /* HELLO 3, byte for byte, then RESP3's null; RESET goes back to RESP2. */
    char *hello = resp_call(&c, "HELLO", "3", NULL);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "%%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n"
             ":%s\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
             strstr(hello, "$2\r\nid\r\n:") ? strtok(strstr(hello, "$2\r\nid\r\n:") + 9, "\r") : "?");
    free(hello);
    hello = resp_call(&c, "HELLO", "3", NULL);
    assert_string_equal(hello, expected);
    free(hello);
    expect_reply(&c, "_\r\n", "GET", "absent", NULL);
    expect_reply(&c, "-NOPROTO unsupported protocol version\r\n", "HELLO", "4", NULL);
    expect_reply(&c, "+RESET\r\n", "RESET", NULL);
    expect_reply(&c, "$-1\r\n", "GET", "absent", NULL);
    expect_reply(&c, "+OK\r\n", "QUIT", NULL);
    assert_true(resp_closed(&c, 5000));
    resp_client_close(&c);
}

static void errors_in_redis_words(void **state)
{
    (void)state;
    struct resp_client c;
    open_client(&c);
    expect_reply(&c, "-ERR unknown command 'LPUSH', with args beginning with: 'list' 'x' \r\n", "LPUSH", "list", "x",
                 NULL);
    expect_reply(&c, "-ERR wrong number of arguments for 'get' command\r\n", "GET", NULL);
    expect_reply(&c, "-ERR wrong number of arguments for 'set' command\r\n", "SET", "k", NULL);
    expect_reply(&c, "-ERR key must not be empty\r\n", "SET", "", "v", NULL); /* the one key no entry can have */
    expect_reply(&c, "$-1\r\n", "GET", "", NULL);
    expect_reply(&c, "+PONG\r\n", "PING", NULL); /* errors leave the connection open */
    resp_send_raw(&c, "*1\r\n$x\r\n", 8);
    char *error = resp_read(&c, 5000, NULL);
    assert_string_equal(error, "-ERR Protocol error: invalid bulk length\r\n");
    free(error);
    assert_true(resp_closed(&c, 5000)); /* a protocol error closes it */
    resp_client_close(&c);
}

/* 2,000 commands in one write: every reply, in order. */
/*
 * An argument over --max-body-bytes (2 MiB here) is read through and
 * answered with an error; the connection goes on (a proxy that shares it
 * among clients would otherwise fail them all).
 */
static void an_argument_over_max_body_bytes_is_an_error_not_a_closed_connection(void **state)
{
    (void)state;
    struct resp_client c;
    open_client(&c);
    size_t big = 3 * 1024 * 1024;
    char *value = malloc(big);
    assert_non_null(value);
    memset(value, 'v', big);
    const char *argv[] = {"SET", "big", value};
    const size_t lens[] = {3, 3, big};
    resp_send_argv(&c, 3, argv, lens);
    free(value);
    char *refused = resp_read(&c, 30000, NULL);
    assert_string_equal(refused, "-ERR an argument is longer than max-body-bytes (2097152)\r\n");
    free(refused);
    expect_reply(&c, "$-1\r\n", "GET", "big", NULL);
    expect_reply(&c, "+PONG\r\n", "PING", NULL);
    resp_client_close(&c);
}

/* Sends argv (lengths given: any bytes) and asserts the reply is exactly want[0..want_len). */
static void expect_bytes_reply(struct resp_client *c, const char *want, size_t want_len, size_t argc,
                               const char *const *argv, const size_t *lens)
{
    size_t len;
    resp_send_argv(c, argc, argv, lens);
    char *reply = resp_read(c, 5000, &len);
    if (len != want_len || memcmp(reply, want, len) != 0)
        fail_msg("%s: expected %zu reply bytes, got %zu: %.*s", argv[0], want_len, len, (int)len, reply);
    free(reply);
}

/* Keys are binary-safe, as Redis's: NUL and bytes that are not UTF-8; HTTP reaches them percent-encoded. */
static void keys_are_binary_safe(void **state)
{
    (void)state;
    struct resp_client c;
    struct http_res res;
    open_client(&c);
    const size_t set_lens[] = {3, 3, 1}, key_lens[] = {3, 3}, pattern_lens[] = {4, 4};
    expect_bytes_reply(&c, "+OK\r\n", 5, 3, (const char *[]){"SET", "\xff\0k", "v"}, set_lens);
    expect_bytes_reply(&c, "+OK\r\n", 5, 3, (const char *[]){"SET", "\xff\0j", "w"}, set_lens);
    expect_bytes_reply(&c, "$1\r\nv\r\n", 7, 2, (const char *[]){"GET", "\xff\0k"}, key_lens);
    expect_bytes_reply(&c, "$1\r\nw\r\n", 7, 2, (const char *[]){"GET", "\xff\0j"}, key_lens);
    expect_bytes_reply(&c, "*1\r\n$3\r\n\xff\0k\r\n", 13, 2, (const char *[]){"KEYS", "\xff\0k*"}, pattern_lens);

    http_call(group_server.port, "GET", "/cache/%FF%00k", NULL, &res);
    assert_string_equal(res.body, "{\"key_base64\":\"/wBr\",\"value\":\"v\"}");
    http_res_free(&res);
    http_call(group_server.port, "PUT", "/cache/%FE%FF", "{\"value\":\"from http\"}", &res);
    assert_int_equal(res.status, 201);
    http_res_free(&res);
    expect_bytes_reply(&c, "$9\r\nfrom http\r\n", 15, 2, (const char *[]){"GET", "\xfe\xff"}, (const size_t[]){3, 2});
    expect_bytes_reply(&c, ":2\r\n", 4, 3, (const char *[]){"DEL", "\xff\0k", "\xfe\xff"}, (const size_t[]){3, 3, 2});
    expect_reply(&c, ":1\r\n", "DBSIZE", NULL);
    resp_client_close(&c);
}

static void pipelining(void **state)
{
    (void)state;
    struct resp_client c;
    open_client(&c);
    char *batch = malloc(2000 * 64);
    size_t len = 0;
    for (int i = 0; i < 1000; i++)
        len += (size_t)sprintf(batch + len, "*3\r\n$3\r\nSET\r\n$%d\r\nk%d\r\n$%d\r\nv%d\r\n",
                               i < 10    ? 2
                               : i < 100 ? 3
                                         : 4,
                               i,
                               i < 10    ? 2
                               : i < 100 ? 3
                                         : 4,
                               i);
    for (int i = 0; i < 1000; i++)
        len += (size_t)sprintf(batch + len, "*2\r\n$3\r\nGET\r\n$%d\r\nk%d\r\n", i < 10 ? 2 : i < 100 ? 3 : 4, i);
    resp_send_raw(&c, batch, len);
    free(batch);
    for (int i = 0; i < 1000; i++) {
        char *r = resp_read(&c, 10000, NULL);
        assert_string_equal(r, "+OK\r\n");
        free(r);
    }
    for (int i = 0; i < 1000; i++) {
        char want[32], *r = resp_read(&c, 10000, NULL);
        snprintf(want, sizeof(want), "$%d\r\nv%d\r\n", i < 10 ? 2 : i < 100 ? 3 : 4, i);
        assert_string_equal(r, want);
        free(r);
    }
    resp_client_close(&c);
}

/* One store, two views: what RESP writes, HTTP reads, and the other way round. */
static void the_same_entries_over_http(void **state)
{
    (void)state;
    struct resp_client c;
    struct http_res res;
    open_client(&c);
    expect_reply(&c, "+OK\r\n", "SET", "text", "héllo", NULL);
    http_call(group_server.port, "GET", "/cache/text", NULL, &res);
    assert_string_equal(json_string_value(json_object_get(expect_json(&res, 200), "value")), "héllo");
    http_res_free(&res);
    expect_reply(&c, "+OK\r\n", "SET", "five", "5", NULL);
    http_call(group_server.port, "GET", "/cache/five", NULL, &res);
    assert_int_equal(json_integer_value(json_object_get(expect_json(&res, 200), "value")), 5);
    http_res_free(&res);

    http_call(group_server.port, "PUT", "/cache/count", "{\"value\":41}", &res);
    assert_int_equal(res.status, 201);
    http_res_free(&res);
    expect_reply(&c, ":42\r\n", "INCR", "count", NULL);
    http_call(group_server.port, "PUT", "/cache/doc", "{\"value\":{\"a\":[1,2]}}", &res);
    http_res_free(&res);
    expect_reply(&c, "$11\r\n{\"a\":[1,2]}\r\n", "GET", "doc", NULL);

    /* Bytes that are not UTF-8 go both ways untouched. */
    const char *argv[] = {"SET", "bin", "\xff\x00\x01"};
    const size_t lens[] = {3, 3, 3};
    resp_send_argv(&c, 3, argv, lens);
    char *ok = resp_read(&c, 5000, NULL);
    assert_string_equal(ok, "+OK\r\n");
    free(ok);
    struct http_req raw = {.path = "/cache/bin?raw"};
    assert_int_equal(http_do(NULL, group_server.port, &raw, &res), 0);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body_len, 3);
    assert_memory_equal(res.body, "\xff\x00\x01", 3);
    http_res_free(&res);

    /* A RESP write changes the ETag that an HTTP If-Match checks. */
    http_call(group_server.port, "GET", "/cache/text", NULL, &res);
    char etag[64], if_match[96];
    assert_non_null(http_header(&res, "etag", etag, sizeof(etag)));
    http_res_free(&res);
    expect_reply(&c, "+OK\r\n", "SET", "text", "changed", NULL);
    snprintf(if_match, sizeof(if_match), "If-Match: %s", etag);
    const char *headers[] = {if_match, "Content-Type: application/json", NULL};
    struct http_req put = {.method = "PUT", .path = "/cache/text", .body = "{\"value\":\"lost\"}", .headers = headers};
    assert_int_equal(http_do(NULL, group_server.port, &put, &res), 0);
    assert_int_equal(res.status, 412);
    http_res_free(&res);
    expect_reply(&c, "$7\r\nchanged\r\n", "GET", "text", NULL);
    resp_client_close(&c);
}

/*
 * The output bound (--resp-max-output 64kb here): a client that sends
 * without reading is paused, not cut off, and gets every reply once it
 * reads; a single reply past the bound closes the connection.
 */
static void output_is_bounded(void **state)
{
    (void)state;
    struct resp_client c;
    open_client(&c);
    char *value = malloc(40001);
    memset(value, 'v', 40000);
    value[40000] = '\0';
    expect_reply(&c, "+OK\r\n", "SET", "big", value, NULL);
    char *batch = malloc(300 * 32);
    size_t len = 0;
    for (int i = 0; i < 300; i++)
        len += (size_t)sprintf(batch + len, "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    resp_send_raw(&c, batch, len); /* 12 MB of replies asked for, none read yet */
    free(batch);
    for (int i = 0; i < 300; i++) {
        size_t n;
        char *r = resp_read(&c, 20000, &n);
        assert_non_null(r);
        assert_int_equal(n, 40000 + 10);
        free(r);
    }
    expect_reply(&c, "+PONG\r\n", "PING", NULL);
    resp_send_raw(&c, "*3\r\n$4\r\nMGET\r\n$3\r\nbig\r\n$3\r\nbig\r\n", 33);
    size_t got = 0;
    char *r = resp_read(&c, 5000, &got);
    if (r != NULL)
        fail_msg("a reply of %zu bytes past --resp-max-output: %.60s", got, r);
    free(value);
    resp_client_close(&c);
}

static void authentication(void **state)
{
    (void)state;
    struct server s = {0};
    assert_int_equal(server_start_args(&s, "--resp-port", "0", "--auth-token", "s3cret", (const char *)NULL), 0);
    struct resp_client c;
    resp_client_open(&c, s.resp_port);
    expect_reply(&c, "-NOAUTH Authentication required.\r\n", "GET", "k", NULL);
    expect_reply(&c, "-NOAUTH Authentication required.\r\n", "NOSUCHCOMMAND", NULL);
    expect_reply(&c, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "nope", NULL);
    expect_reply(&c, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "admin", "s3cret",
                 NULL);
    expect_reply(&c, "+OK\r\n", "AUTH", "default", "s3cret", NULL);
    expect_reply(&c, "$-1\r\n", "GET", "k", NULL);
    resp_client_close(&c);

    resp_client_open(&c, s.resp_port);
    char *hello = resp_call(&c, "HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "h", NULL);
    assert_int_equal(strncmp(hello, "%7\r\n", 4), 0);
    free(hello);
    expect_reply(&c, "_\r\n", "GET", "k", NULL);
    resp_client_close(&c);

    /* Before AUTH, Redis's small limits: more than 10 arguments is refused and closes the connection. */
    resp_client_open(&c, s.resp_port);
    resp_send_raw(&c, "*11\r\n", 5);
    char *refused = resp_read(&c, 5000, NULL);
    assert_non_null(refused);
    assert_non_null(strstr(refused, "unauthenticated multibulk length"));
    free(refused);
    assert_true(resp_closed(&c, 5000));
    resp_client_close(&c);
    expect_clean_exit(&s, 10000);
    server_cleanup(&s);
}

static char *shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *shell(const char *fmt, ...)
{
    char cmd[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, args);
    va_end(args);
    char *out = NULL;
    int rc = run_shell(cmd, &out);
    if (rc != 0)
        fprintf(stderr, "%s: exit %d\n%s\n", cmd, rc, out);
    assert_int_equal(rc, 0);
    return out;
}

static void redis_cli(void **state)
{
    (void)state;
    char *out = shell("redis-cli -p %u SET cli yes && redis-cli -p %u GET cli", RESP_PORT, RESP_PORT);
    assert_string_equal(out, "OK\nyes\n");
    free(out);
    /* A session typed into redis-cli. */
    out = shell("printf 'set s 10\\nincrby s 5\\nget s\\nmget s nope\\nttl s\\n' | redis-cli -p %u", RESP_PORT);
    assert_string_equal(out, "OK\n15\n15\n15\n\n-1\n");
    free(out);
}

/* redis-benchmark exits 1 at the first error reply to a command it measures. */
static void redis_benchmark(void **state)
{
    (void)state;
    const char *pipelines[] = {"1", "16"};
    for (size_t i = 0; i < 2; i++) {
        /* The exit status, then the last report: every test ran to its end. */
        char *out = shell("redis-benchmark -p %u -t ping,set,get,incr,mset -n %d -c 50 -P %s -q > /tmp/resp-bench.$$ "
                          "2>&1; echo $?; tr '\\r' '\\n' < /tmp/resp-bench.$$ | tail -n 2; rm -f /tmp/resp-bench.$$",
                          RESP_PORT, benchmark_requests(), pipelines[i]);
        assert_int_equal(strncmp(out, "0\n", 2), 0);
        assert_non_null(strstr(out, "MSET (10 keys):"));
        free(out);
    }
}

/* redis-py (Debian's python3-redis 4.3, RESP2), with its default options. */
static void redis_py(void **state)
{
    (void)state;
    /* Debian's interpreter, where python3-redis is, whatever python3 comes first on the PATH. */
    char *out = shell("/usr/bin/python3 - %u <<'EOF'\n"
                      "import sys, redis\n"
                      "r = redis.Redis(port=int(sys.argv[1]))\n"
                      "assert r.ping()\n"
                      "assert r.set('py', 'v', ex=100)\n"
                      "assert r.get('py') == b'v'\n"
                      "assert 99 <= r.ttl('py') <= 100\n"
                      "assert r.expire('py', 50)\n"
                      "assert r.incr('pyn') == 1 and r.incrby('pyn', 9) == 10\n"
                      "assert r.mset({'m1': 'a', 'm2': 'b'})\n"
                      "assert r.mget('m1', 'nope', 'm2') == [b'a', None, b'b']\n"
                      "p = r.pipeline(transaction=False)\n"
                      "for i in range(100): p.set('pp%%d' %% i, i)\n"
                      "for i in range(100): p.get('pp%%d' %% i)\n"
                      "res = p.execute()\n"
                      "assert res[:100] == [True] * 100 and res[100:] == [str(i).encode() for i in range(100)]\n"
                      "assert r.delete('m1', 'm2', 'nope') == 2\n"
                      "print('ok')\n"
                      "EOF",
                      RESP_PORT);
    assert_string_equal(out, "ok\n");
    free(out);
}

/* Waits (10 s at most) until the server has loaded its --data-dir: PING answers while loading, GET does not. */
static void wait_loaded(struct server *s)
{
    struct resp_client c;
    resp_client_open(&c, s->resp_port);
    for (int64_t deadline = now_ms() + 10000; now_ms() < deadline; sleep_ms(20)) {
        char *r = resp_call(&c, "DBSIZE", NULL);
        int loading = r != NULL && strncmp(r, "-LOADING", 8) == 0;
        free(r);
        if (!loading) {
            resp_client_close(&c);
            return;
        }
    }
    fail_msg("still loading after 10 s");
}

/* --append-log always: a RESP write is answered once on disk, so a SIGKILL right after loses none. */
static void acknowledged_writes_survive_a_kill(void **state)
{
    (void)state;
    char dir[] = "/tmp/cachette-resp-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct server s = {0};
    assert_int_equal(
        server_start_args(&s, "--resp-port", "0", "--data-dir", dir, "--append-log", "always", (const char *)NULL), 0);
    struct resp_client c;
    wait_loaded(&s);
    resp_client_open(&c, s.resp_port);
    char *batch = malloc(200 * 48);
    size_t len = 0;
    for (int i = 0; i < 200; i++)
        len += (size_t)sprintf(batch + len, "*3\r\n$3\r\nSET\r\n$4\r\nd%03d\r\n$4\r\nv%03d\r\n", i, i);
    resp_send_raw(&c, batch, len);
    free(batch);
    for (int i = 0; i < 200; i++) {
        char *r = resp_read(&c, 10000, NULL);
        assert_string_equal(r, "+OK\r\n");
        free(r);
    }
    server_signal(&s, SIGKILL);
    server_wait_exit(&s, 10000);
    server_cleanup(&s);
    resp_client_close(&c);

    assert_int_equal(server_start_args(&s, "--resp-port", "0", "--data-dir", dir, (const char *)NULL), 0);
    wait_loaded(&s);
    resp_client_open(&c, s.resp_port);
    for (int i = 0; i < 200; i++) {
        char key[8], want[16];
        snprintf(key, sizeof(key), "d%03d", i);
        snprintf(want, sizeof(want), "$4\r\nv%03d\r\n", i);
        char *r = resp_call(&c, "GET", key, NULL);
        if (r == NULL || strcmp(r, want) != 0)
            fail_msg("%s after the kill: %s", key, r ? r : "(none)");
        free(r);
    }
    resp_client_close(&c);
    expect_clean_exit(&s, 10000);
    server_cleanup(&s);
    char *out = NULL;
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    run_shell(cmd, &out);
    free(out);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ping_echo_and_inline_commands),
        cmocka_unit_test(set_and_its_options),
        cmocka_unit_test(counters),
        cmocka_unit_test(keys_and_expiry),
        cmocka_unit_test(scan_keys_and_randomkey),
        cmocka_unit_test(append_getex_and_expiry_times),
        cmocka_unit_test(connection_commands),
        cmocka_unit_test(errors_in_redis_words),
        cmocka_unit_test(keys_are_binary_safe),
        cmocka_unit_test(an_argument_over_max_body_bytes_is_an_error_not_a_closed_connection),
        cmocka_unit_test(pipelining),
        cmocka_unit_test(the_same_entries_over_http),
        cmocka_unit_test(output_is_bounded),
        cmocka_unit_test(authentication),
        cmocka_unit_test(redis_cli),
        cmocka_unit_test(redis_benchmark),
        cmocka_unit_test(redis_py),
        cmocka_unit_test(acknowledged_writes_survive_a_kill),
    };
    group_server_args = server_flags;
    return support_exit_code(cmocka_run_group_tests(tests, group_server_setup, group_server_teardown));
}
