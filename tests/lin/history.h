/*
 * A recorded history of operations on a key/value cache, as the
 * linearizability checker (lincheck.h) reads it: one operation a line,
 *
 *     <client> <invoke> <complete> <key> <op> [args...] : <result...>
 *
 * with '#' starting a comment line and a "# allow-loss" line (before the
 * first operation) saying that the server may drop a key on its own at any
 * moment (eviction, expiry). Times are nanoseconds on one monotonic clock;
 * complete is '-' and the result '?' for an operation whose answer never
 * came. Versions are 16 lowercase hex digits (the ETag without quotes), or
 * '-' in a result that carried none.
 *
 *     op      args             results
 *     get                      hit <value> <version> | miss
 *     set     <value>          ok <version>
 *     cas     <value> <ver>    ok <version> | fail      (If-Match)
 *     create  <value>          ok <version> | fail      (If-None-Match: *)
 *     del                      ok | miss
 *     delif   <ver>            ok | fail                (DELETE with If-Match)
 *     incr    <by>             ok <newvalue> <version> | notint
 *
 * Keys and values are interned: an operation holds small integer ids, and
 * equal strings get equal ids, so the checker compares integers.
 */
#ifndef CACHETTE_TESTS_LIN_HISTORY_H
#define CACHETTE_TESTS_LIN_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The complete time of an operation whose answer never came: after every real time. */
#define LIN_NEVER INT64_MAX

enum lin_op_kind {
    LIN_GET,
    LIN_SET,
    LIN_CAS,
    LIN_CREATE,
    LIN_DEL,
    LIN_DELIF,
    LIN_INCR,
};

enum lin_result {
    LIN_RESULT_UNKNOWN, /* '?': the answer never came (complete is LIN_NEVER) */
    LIN_RESULT_OK,      /* "ok" of every op but get */
    LIN_RESULT_HIT,     /* get found the key */
    LIN_RESULT_MISS,    /* get or del found no key (404) */
    LIN_RESULT_FAIL,    /* cas, create or delif: the precondition failed (412) */
    LIN_RESULT_NOTINT,  /* incr: the value is not an integer (409) */
};

/* One operation, as one line of the history gave it. */
struct lin_op {
    uint32_t client;
    uint32_t key; /* id: lin_history_key() */
    int64_t invoke;
    int64_t complete; /* LIN_NEVER when the answer never came */
    enum lin_op_kind kind;
    enum lin_result result;
    uint32_t value;        /* set, cas, create: the value written (id: lin_history_value()) */
    uint64_t if_version;   /* cas, delif: the version asked for */
    int64_t by;            /* incr */
    uint32_t result_value; /* get hit, incr ok: the value returned (id) */
    uint64_t result_version;
    bool result_version_known; /* get hit, set, cas, create, incr ok: false when the response had none ('-') */
    unsigned line;             /* in the history's text, from 1 */
};

/* Interned strings: each distinct string gets the next id, from 0. */
struct lin_strtab {
    char *text; /* the strings end to end, each NUL-terminated */
    size_t text_len, text_cap;
    size_t *start; /* start[id]: where string id begins in text */
    uint32_t count, cap;
    uint32_t *slots; /* open addressing on the string's hash: id + 1, or 0 when empty */
    size_t slot_mask;
};

/* What a value means to incr, which reads it as the server does (strtoll over the whole value). */
enum lin_int_kind {
    LIN_NOT_INT,       /* not a decimal integer: incr answers notint */
    LIN_INT,           /* an integer written another way than %lld would ("007", "-0") */
    LIN_CANONICAL_INT, /* exactly what printing the integer with %lld gives: what incr writes */
};

struct lin_int {
    int64_t n;
    enum lin_int_kind kind;
};

struct lin_history {
    struct lin_op *ops; /* in the order of the text */
    size_t n_ops, ops_cap;
    bool allow_loss; /* "# allow-loss": the server may drop a key at any moment */
    struct lin_strtab keys;
    struct lin_strtab values;
    struct lin_int *value_ints; /* value_ints[id]: the value read as an integer */
    size_t value_ints_cap;
};

/* Where a history's text is wrong: the first bad line, from 1 (0 when the error has no line, as a read error). */
struct lin_parse_error {
    unsigned line;
    char message[160];
};

/*
 * Reads a history from in until EOF, into *h (which it initialises: no
 * lin_history_free() is needed on failure). Returns 0; -EINVAL for a bad line,
 * described in *err; -ENOMEM; or -EIO when reading in fails. Nothing of a
 * failed read is kept.
 */
int lin_history_read(FILE *in, struct lin_history *h, struct lin_parse_error *err);

/* lin_history_read() over a NUL-terminated string. */
int lin_history_parse(const char *text, struct lin_history *h, struct lin_parse_error *err);

/* Frees what a successful read allocated and zeroes *h. Safe on a zeroed history. */
void lin_history_free(struct lin_history *h);

/* The key or value string of an id from one of h's operations. */
const char *lin_history_key(const struct lin_history *h, uint32_t id);
const char *lin_history_value(const struct lin_history *h, uint32_t id);

/* The name of an operation kind as the text writes it ("get", "cas", ...). */
const char *lin_op_name(enum lin_op_kind kind);

/* Writes op as a line of the text would give it, without the newline. */
void lin_op_print(FILE *out, const struct lin_history *h, const struct lin_op *op);

#endif
