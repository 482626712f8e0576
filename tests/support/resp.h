/*
 * A Redis-protocol client for tests (resp.c): commands sent as RESP
 * multibulk requests over a raw loopback socket, replies read back one at a
 * time as their raw bytes ("+OK\r\n", "$3\r\nbar\r\n"), so that a test
 * states exactly what goes over the wire. Pipelining: send many, then read
 * their replies in order.
 */
#ifndef CACHETTE_TESTS_SUPPORT_RESP_H
#define CACHETTE_TESTS_SUPPORT_RESP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

struct resp_client {
    int fd;
    char *buf; /* bytes received and not yet returned as a reply */
    size_t len;
};

/* Connects to 127.0.0.1:port; fails the test if it cannot. */
void resp_client_open(struct resp_client *c, unsigned port);
void resp_client_close(struct resp_client *c);

/* Sends one command: argc arguments, each of lens[i] bytes (lens NULL: NUL-terminated strings). */
void resp_send_argv(struct resp_client *c, size_t argc, const char *const *argv, const size_t *lens);

/* Sends raw bytes as they are (inline commands, malformed requests). */
void resp_send_raw(struct resp_client *c, const void *bytes, size_t len);

/* The length of the first whole reply in buf[0..len), or 0 if it is not whole yet. */
size_t resp_reply_length(const char *buf, size_t len);

/* What a well-formed reply holds, at any depth. */
struct resp_shape {
    int resp3;      /* a type only RESP3 has: _ % ~ > | , # ( = ! */
    int resp2_null; /* RESP2's nulls, $-1 or *-1, which RESP3 writes as _ */
};

/*
 * Whether reply[0..len) is one well-formed RESP2 or RESP3 reply of exactly
 * len bytes (as resp_reply_length frames it): a known type byte; a count or
 * length that is -1 (a RESP2 null, for $ and *) or a decimal without sign or
 * leading zero; an integer within int64; a bulk's bytes followed by CRLF; a
 * line with no CR or LF but its end; RESP3's null, boolean, double and big
 * number in their grammar; and the elements of an aggregate well formed in
 * turn. Fills *shape (if not NULL). Returns 1, or 0 with *why (static text)
 * saying what is wrong.
 */
int resp_reply_valid(const char *reply, size_t len, struct resp_shape *shape, const char **why);

/*
 * Reads the next whole reply (malloc'ed, NUL-terminated; *len its length if
 * len is not NULL); NULL if the server closed the connection or timeout_ms
 * passed first.
 */
char *resp_read(struct resp_client *c, int timeout_ms, size_t *len);

/* Whether the server closes the connection within timeout_ms, with nothing more sent. */
int resp_closed(struct resp_client *c, int timeout_ms);

/* Sends the NULL-terminated string arguments as one command and returns its reply (malloc'ed; NULL as resp_read). */
char *resp_call(struct resp_client *c, ...);

/* Asserts that the command (NULL-terminated arguments) gets exactly the reply `expected`. */
#define expect_reply(c, expected, ...) expect_reply_at(__FILE__, __LINE__, c, expected, __VA_ARGS__)
void expect_reply_at(const char *file, int line, struct resp_client *c, const char *expected, ...);

#endif
