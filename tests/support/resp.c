/*
 * The tests' RESP client: multibulk requests out, whole replies in, with a
 * reply's end found by walking its RESP2/RESP3 structure (aggregates
 * nested at any depth), so pipelined replies split at the right bytes.
 */
#define _GNU_SOURCE /* memmem */
#include "resp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raw.h"
#include "server.h"

void resp_client_open(struct resp_client *c, unsigned port)
{
    memset(c, 0, sizeof(*c));
    c->fd = raw_connect(port);
    assert_true(c->fd >= 0);
}

void resp_client_close(struct resp_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

void resp_send_raw(struct resp_client *c, const void *bytes, size_t len)
{
    assert_int_equal(raw_send(c->fd, bytes, len), 0);
}

void resp_send_argv(struct resp_client *c, size_t argc, const char *const *argv, const size_t *lens)
{
    size_t size = 32;
    for (size_t i = 0; i < argc; i++)
        size += 32 + (lens ? lens[i] : strlen(argv[i]));
    char *req = malloc(size);
    assert_non_null(req);
    size_t n = (size_t)snprintf(req, size, "*%zu\r\n", argc);
    for (size_t i = 0; i < argc; i++) {
        size_t len = lens ? lens[i] : strlen(argv[i]);
        n += (size_t)snprintf(req + n, size - n, "$%zu\r\n", len);
        memcpy(req + n, argv[i], len);
        n += len;
        memcpy(req + n, "\r\n", 2);
        n += 2;
    }
    resp_send_raw(c, req, n);
    free(req);
}

/* The length of the line at buf (up to and with its CRLF), or 0 if it has not all arrived. */
static size_t line_length(const char *buf, size_t len)
{
    const char *crlf = memmem(buf, len, "\r\n", 2);
    return crlf == NULL ? 0 : (size_t)(crlf - buf) + 2;
}

size_t resp_reply_length(const char *buf, size_t len)
{
    size_t head = line_length(buf, len);
    if (head == 0)
        return 0;
    long long n = strtoll(buf + 1, NULL, 10);
    switch (buf[0]) {
    case '$': /* bulk string */
    case '=': /* verbatim string */
    case '!': /* bulk error */
        if (n < 0)
            return head;
        return len >= head + (size_t)n + 2 ? head + (size_t)n + 2 : 0;
    case '*': /* array */
    case '~': /* set */
    case '>': /* push */
    case '%': /* map: n pairs */
    case '|': {
        size_t elements = n < 0 ? 0 : (size_t)n * (buf[0] == '%' || buf[0] == '|' ? 2 : 1);
        size_t at = head;
        for (size_t i = 0; i < elements; i++) {
            size_t one = resp_reply_length(buf + at, len - at);
            if (one == 0)
                return 0;
            at += one;
        }
        return at;
    }
    default: /* + - : _ , # ( one line */
        return head;
    }
}

char *resp_read(struct resp_client *c, int timeout_ms, size_t *len)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        size_t whole = c->len > 0 ? resp_reply_length(c->buf, c->len) : 0;
        if (whole > 0) {
            char *reply = malloc(whole + 1);
            assert_non_null(reply);
            memcpy(reply, c->buf, whole);
            reply[whole] = '\0';
            memmove(c->buf, c->buf + whole, c->len - whole);
            c->len -= whole;
            if (len != NULL)
                *len = whole;
            return reply;
        }
        int left = (int)(deadline - now_ms());
        if (left <= 0)
            return NULL;
        size_t before = c->len;
        if (raw_read(c->fd, NULL, left < 50 ? left : 50, &c->buf, &c->len) && c->len == before)
            return NULL; /* closed, nothing more */
    }
}

int resp_closed(struct resp_client *c, int timeout_ms)
{
    return raw_read(c->fd, NULL, timeout_ms, &c->buf, &c->len);
}

static char *call_va(struct resp_client *c, va_list args)
{
    const char *argv[64];
    size_t argc = 0;
    for (const char *a; (a = va_arg(args, const char *)) != NULL && argc < 64;)
        argv[argc++] = a;
    resp_send_argv(c, argc, argv, NULL);
    return resp_read(c, 10000, NULL);
}

char *resp_call(struct resp_client *c, ...)
{
    va_list args;
    va_start(args, c);
    char *reply = call_va(c, args);
    va_end(args);
    return reply;
}

void expect_reply_at(const char *file, int line, struct resp_client *c, const char *expected, ...)
{
    va_list args;
    va_start(args, expected);
    char *reply = call_va(c, args);
    va_end(args);
    if (reply == NULL || strcmp(reply, expected) != 0) {
        fprintf(stderr, "%s:%d: expected reply %s, got %s\n", file, line, expected, reply ? reply : "(none)");
        free(reply);
        fail();
    }
    free(reply);
}
