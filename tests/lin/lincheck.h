/*
 * A linearizability checker for recorded key/value cache histories
 * (history.h): does some order of the operations, each placed at one
 * instant between its invoke and its complete, explain every result by a
 * single copy of the cache? The cache's model, key by key: absent, or present
 * with a value and a version (the ETag); lincheck.c states its rules.
 *
 * The search is Wing and Gong's, with Lowe's memo of the states already
 * explored, run on each key's operations alone: a history is linearizable
 * if and only if each key's sub-history is (linearizability is local).
 * When a key's is not, the report names the key and the smallest failing
 * window: the end of the longest order found that explains its operations,
 * the model's state after it, and the operations none of which could come
 * next.
 */
#ifndef CACHETTE_TESTS_LIN_LINCHECK_H
#define CACHETTE_TESTS_LIN_LINCHECK_H

#include <stdint.h>
#include <stdio.h>

#include "history.h"

#define LIN_DEFAULT_MAX_STATES 50000000u
#define LIN_DEFAULT_MAX_BYTES  ((size_t)4 << 30)

/* What lin_check() found. */
enum lin_verdict {
    LIN_UNDECIDED = -1,       /* a limit of struct lin_limits was reached first (lin_stats.limit says which) */
    LIN_NOT_LINEARIZABLE = 0, /* some key's operations have no legal order: the report says which */
    LIN_LINEARIZABLE = 1,
};

/* Bounds on the search; a zero field takes its default. */
struct lin_limits {
    uint64_t max_states; /* (set of ops placed, model state) pairs memoised for one key: LIN_DEFAULT_MAX_STATES */
    size_t max_bytes;    /* what the checker's own structures may hold allocated at once: LIN_DEFAULT_MAX_BYTES */
};

enum lin_limit {
    LIN_LIMIT_NONE,
    LIN_LIMIT_STATES, /* max_states was reached */
    LIN_LIMIT_MEMORY, /* max_bytes would have been passed, or an allocation failed */
};

struct lin_stats {
    uint64_t ops;         /* in the history */
    uint64_t keys;        /* distinct keys */
    uint64_t keys_failed; /* keys whose operations are not linearizable */
    uint64_t states;      /* states explored (memoised), over all keys */
    size_t peak_bytes;    /* the most the checker held allocated at once */
    uint64_t elapsed_ns;  /* wall time of the whole check */
    enum lin_limit limit; /* why the verdict is LIN_UNDECIDED */
};

/*
 * Checks every key of h. Returns LIN_LINEARIZABLE; LIN_NOT_LINEARIZABLE when
 * at least one key's operations are not (each such key is reported, and
 * keys the limits left undecided do not change that verdict); or
 * LIN_UNDECIDED when no key failed but a limit stopped the search on one
 * (the report says which limit, on which key). Reports go to report, which
 * may be NULL for none; limits may be NULL for the defaults; stats, filled in
 * whatever the verdict, may be NULL. h is only read.
 */
int lin_check(const struct lin_history *h, const struct lin_limits *limits, FILE *report, struct lin_stats *stats);

#endif
