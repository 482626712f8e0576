/*
 * Replies of the Redis-protocol front (out.c): RESP2 or RESP3 values
 * appended to a connection's output buffer, which grows as needed. A failed
 * allocation marks the buffer failed (further appends do nothing) and the
 * connection is then closed: a reply is never sent cut short.
 */
#ifndef CACHETTE_RESP_OUT_H
#define CACHETTE_RESP_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct resp_out {
    char *buf;
    size_t len, cap;
    int protocol; /* 2 or 3: how null and maps are written */
    bool failed;  /* an allocation failed: the connection must close */
};

void resp_out_free(struct resp_out *out);

/* Raw bytes, already in RESP. */
void resp_out_raw(struct resp_out *out, const void *bytes, size_t len);

/* +text */
void resp_out_status(struct resp_out *out, const char *text);

/* -text: text begins with the error code ("ERR ...", "WRONGTYPE ..."); CR and LF in it become spaces. */
void resp_out_error(struct resp_out *out, const char *text);
void resp_out_errorf(struct resp_out *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* :n */
void resp_out_integer(struct resp_out *out, int64_t n);

/* $len bytes */
void resp_out_bulk(struct resp_out *out, const void *bytes, size_t len);
void resp_out_bulk_str(struct resp_out *out, const char *text);

/*
 * A bulk string written in two steps, for a value copied straight into the
 * buffer: resp_out_bulk_reserve returns room for up to max_len bytes (NULL,
 * and the buffer failed, if it cannot be had), and resp_out_bulk_commit then
 * makes the first len bytes written there the bulk. Nothing may be appended
 * in between.
 */
char *resp_out_bulk_reserve(struct resp_out *out, size_t max_len);
void resp_out_bulk_commit(struct resp_out *out, size_t len);

/* RESP2 $-1, RESP3 _ */
void resp_out_null(struct resp_out *out);

/* RESP2 *-1, RESP3 _ */
void resp_out_null_array(struct resp_out *out);

/* *n: n elements follow */
void resp_out_array(struct resp_out *out, size_t n);

/* RESP3 %n (n pairs follow); RESP2 *2n */
void resp_out_map(struct resp_out *out, size_t pairs);

#endif
