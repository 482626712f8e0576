/*
 * RESP reply encoding: each function appends one value to the buffer,
 * growing it by doubling. RESP3 differs from RESP2 only where a reply needs
 * it here: null (_ rather than $-1 or *-1), maps (% rather than a flat
 * array) and doubles (, rather than a bulk string).
 */
#include "resp/out.h"

#include "cmd/decimal.h"

#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void resp_out_free(struct resp_out *out)
{
    free(out->buf);
    out->buf = NULL;
    out->len = out->cap = 0;
}

/* Room for n more bytes; false (and failed) if it cannot be had. */
static bool reserve(struct resp_out *out, size_t n)
{
    if (out->failed)
        return false;
    if (out->cap - out->len >= n)
        return true;
    size_t cap = out->cap ? out->cap : 512;
    while (cap - out->len < n) {
        if (cap > SIZE_MAX / 2) {
            out->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *grown = realloc(out->buf, cap);
    if (grown == NULL) {
        out->failed = true;
        return false;
    }
    out->buf = grown;
    out->cap = cap;
    return true;
}

void resp_out_raw(struct resp_out *out, const void *bytes, size_t len)
{
    if (!reserve(out, len))
        return;
    memcpy(out->buf + out->len, bytes, len);
    out->len += len;
}

/* The most bytes header() writes: a type, a sign, the digits and CRLF. */
#define HEADER_MAX (2 + DECIMAL_MAX_DIGITS + 2)

/* A type byte, a number and CRLF: ":42\r\n", "*3\r\n", "$5\r\n". */
static void header(struct resp_out *out, char type, int64_t n)
{
    if (!reserve(out, HEADER_MAX))
        return;
    char *p = out->buf + out->len;
    *p++ = type;
    if (n < 0)
        *p++ = '-';
    p = decimal_format(p, n < 0 ? 0 - (uint64_t)n : (uint64_t)n); /* 0 - : INT64_MIN's magnitude too */
    *p++ = '\r';
    *p++ = '\n';
    out->len = (size_t)(p - out->buf);
}

/* type, then text with CR and LF replaced (a simple string cannot hold them), then CRLF. */
static void line(struct resp_out *out, char type, const char *text, size_t len)
{
    if (!reserve(out, len + 3))
        return;
    char *p = out->buf + out->len;
    *p++ = type;
    for (size_t i = 0; i < len; i++)
        *p++ = text[i] == '\r' || text[i] == '\n' ? ' ' : text[i];
    *p++ = '\r';
    *p++ = '\n';
    out->len += len + 3;
}

void resp_out_status(struct resp_out *out, const char *text)
{
    line(out, '+', text, strlen(text));
}

void resp_out_error(struct resp_out *out, const char *text)
{
    line(out, '-', text, strlen(text));
}

void resp_out_errorf(struct resp_out *out, const char *fmt, ...)
{
    char text[512];
    va_list args;
    va_start(args, fmt);
    int len = vsnprintf(text, sizeof(text), fmt, args);
    va_end(args);
    line(out, '-', text, len < 0 ? 0 : (size_t)len < sizeof(text) ? (size_t)len : sizeof(text) - 1);
}

void resp_out_integer(struct resp_out *out, int64_t n)
{
    header(out, ':', n);
}

void resp_out_bulk(struct resp_out *out, const void *bytes, size_t len)
{
    if (len > SIZE_MAX - HEADER_MAX - 2)
        out->failed = true;
    if (!reserve(out, HEADER_MAX + len + 2)) /* one reservation for the three parts */
        return;
    header(out, '$', (int64_t)len);
    resp_out_raw(out, bytes, len);
    resp_out_raw(out, "\r\n", 2);
}

/* The bytes go after room for the longest header; the commit writes the header and moves them up to it. */
char *resp_out_bulk_reserve(struct resp_out *out, size_t max_len)
{
    if (max_len > SIZE_MAX - HEADER_MAX - 2)
        out->failed = true;
    if (!reserve(out, HEADER_MAX + max_len + 2))
        return NULL;
    return out->buf + out->len + HEADER_MAX;
}

void resp_out_bulk_commit(struct resp_out *out, size_t len)
{
    const char *data = out->buf + out->len + HEADER_MAX;
    header(out, '$', (int64_t)len); /* within the room reserved: no reallocation, and it ends before data */
    memmove(out->buf + out->len, data, len);
    memcpy(out->buf + out->len + len, "\r\n", 2);
    out->len += len + 2;
}

void resp_out_bulk_str(struct resp_out *out, const char *text)
{
    resp_out_bulk(out, text, strlen(text));
}

void resp_out_null(struct resp_out *out)
{
    if (out->protocol == 3)
        resp_out_raw(out, "_\r\n", 3);
    else
        resp_out_raw(out, "$-1\r\n", 5);
}

void resp_out_null_array(struct resp_out *out)
{
    if (out->protocol == 3)
        resp_out_raw(out, "_\r\n", 3);
    else
        resp_out_raw(out, "*-1\r\n", 5);
}

void resp_out_array(struct resp_out *out, size_t n)
{
    header(out, '*', (int64_t)n);
}

void resp_out_map(struct resp_out *out, size_t pairs)
{
    if (out->protocol == 3)
        header(out, '%', (int64_t)pairs);
    else
        header(out, '*', (int64_t)(pairs * 2));
}
