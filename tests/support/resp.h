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
