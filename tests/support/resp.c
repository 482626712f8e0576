/*
 * The tests' RESP client: multibulk requests out, whole replies in, with a
 * reply's end found by walking its RESP2/RESP3 structure (aggregates
 * nested at any depth), so pipelined replies split at the right bytes;
 * and a stricter walk of the same structure that says whether a reply is
 * well formed, for tests that take what a server sends as suspect.
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
        if (raw_read_once(c->fd, left, &c->buf, &c->len))
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

/* ---- checking replies ---------------------------------------------------- */

/* "0", or digits without a leading zero (a '-' first if negative is allowed), within long long. */
static int strict_decimal(const char *s, size_t n, int negative_allowed, long long *value)
{
    size_t at = negative_allowed && n > 0 && s[0] == '-';
    if (at == n || (s[at] == '0' && n - at > 1) || (at == 1 && s[1] == '0'))
        return 0;
    unsigned long long magnitude = 0;
    for (size_t i = at; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        unsigned digit = (unsigned)(s[i] - '0');
        if (magnitude > (9223372036854775808ull - digit) / 10)
            return 0;
        magnitude = magnitude * 10 + digit;
    }
    if (magnitude > 9223372036854775807ull + (unsigned long long)at)
        return 0;
    *value = at ? (long long)(0 - magnitude) : (long long)magnitude;
    return 1;
}

/* RESP3's double: inf, -inf, nan, or [-]digits[.digits][(e|E)[+|-]digits]. */
static int is_double(const char *s, size_t n)
{
    if ((n == 3 && (memcmp(s, "inf", 3) == 0 || memcmp(s, "nan", 3) == 0)) || (n == 4 && memcmp(s, "-inf", 4) == 0))
        return 1;
    size_t i = n > 0 && s[0] == '-', digits = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < n && s[i] == '.') {
        size_t before = digits;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
        if (digits == before)
            return 0;
    }
    if (digits == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t exponent = 0;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            exponent++;
        if (exponent == 0)
            return 0;
    }
    return i == n;
}

/* Checks the reply at p (at most left bytes); sets *used to its length. Returns NULL, or why it is not well formed. */
static const char *check_reply(const char *p, size_t left, size_t *used, struct resp_shape *shape, int depth)
{
    if (depth > 64)
        return "nested deeper than 64";
    if (left == 0)
        return "shorter than its structure says";
    const char *crlf = memmem(p, left, "\r\n", 2);
    if (crlf == NULL)
        return "a line without CRLF";
    const char *text = p + 1;
    size_t text_len = (size_t)(crlf - text), head = text_len + 3;
    if (memchr(text, '\r', text_len) != NULL || memchr(text, '\n', text_len) != NULL)
        return "a CR or LF inside a line";
    long long n = 0;
    char type = p[0];
    if (type != '\0' && strchr("_%~>|,#(=!", type) != NULL)
        shape->resp3 = 1;
    switch (type) {
    case '+':
    case '-':
        *used = head;
        return NULL;
    case ':':
        *used = head;
        return strict_decimal(text, text_len, 1, &n) ? NULL : "an integer that is not a decimal within int64";
    case '(':
        *used = head;
        return text_len > (text[0] == '-') &&
                       strspn(text + (text[0] == '-'), "0123456789") == text_len - (text[0] == '-')
                   ? NULL
                   : "a big number that is not [-]digits";
    case '_':
        *used = head;
        return text_len == 0 ? NULL : "a null with text after it";
    case '#':
        *used = head;
        return text_len == 1 && (text[0] == 't' || text[0] == 'f') ? NULL : "a boolean other than t or f";
    case ',':
        *used = head;
        return is_double(text, text_len) ? NULL : "a double that is not one";
    case '$':
    case '=':
    case '!':
        if (!strict_decimal(text, text_len, type == '$', &n) || n < -1)
            return "a bulk length that is not -1 or a decimal";
        if (n == -1) {
            shape->resp2_null = 1;
            *used = head;
            return NULL;
        }
        if ((unsigned long long)n > left - head || left - head - (size_t)n < 2)
            return "a bulk longer than the reply";
        if (p[head + (size_t)n] != '\r' || p[head + (size_t)n + 1] != '\n')
            return "a bulk not followed by CRLF";
        if (type == '=' && (n < 4 || p[head + 3] != ':'))
            return "a verbatim string without its 3-byte format and ':'";
        *used = head + (size_t)n + 2;
        return NULL;
    case '*':
    case '~':
    case '>':
    case '%':
    case '|': {
        if (!strict_decimal(text, text_len, type == '*', &n) || n < -1)
            return "a count that is not -1 or a decimal";
        if (n == -1) {
            shape->resp2_null = 1;
            *used = head;
            return NULL;
        }
        unsigned long long elements = (unsigned long long)n * (type == '%' || type == '|' ? 2 : 1);
        size_t at = head;
        for (unsigned long long i = 0; i < elements; i++) {
            size_t one;
            const char *why = check_reply(p + at, left - at, &one, shape, depth + 1);
            if (why != NULL)
                return why;
            at += one;
        }
        *used = at;
        return NULL;
    }
    default:
        return "an unknown type byte";
    }
}

int resp_reply_valid(const char *reply, size_t len, struct resp_shape *shape, const char **why)
{
    struct resp_shape ignored;
    size_t used = 0;
    if (shape == NULL)
        shape = &ignored;
    memset(shape, 0, sizeof(*shape));
    *why = check_reply(reply, len, &used, shape, 0);
    if (*why == NULL && used != len)
        *why = "a reply whose structure ends before its frame";
    return *why == NULL;
}
