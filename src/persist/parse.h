/*
 * What the two parsers share (snapshot_parse in snapshot.h, applog_parse in
 * applog.h): each walks a file's bytes in memory, hands every record that
 * verifies to a callback, and says what it found wrong. Damage stops the parse with the
 * offset and a phrase, unless `recover` is set: then the parser skips to
 * the next place where something verifies again and counts what it skipped.
 */
#ifndef CACHETTE_PERSIST_PARSE_H
#define CACHETTE_PERSIST_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "persist/format.h"

/* Takes one record found at byte `offset`. Returns 0 to go on, anything else to stop the parse. */
typedef int (*record_fn)(void *ctx, const struct record *r, uint64_t offset);

enum parse_outcome {
    PARSE_OK = 0,       /* the whole file was read (recovered damage and a torn log tail are in the report) */
    PARSE_DAMAGED = -1, /* damage, and no `recover`: error and error_offset say where and what */
    PARSE_STOPPED = -2, /* the callback asked to stop */
};

struct parse_report {
    uint64_t records;       /* handed to the callback */
    uint64_t damaged;       /* damaged regions skipped (recover) */
    uint64_t skipped_bytes; /* their bytes */
    uint64_t torn_bytes;    /* log: bytes of the torn last record cut off */
    uint64_t good_len;      /* log: where the verified records end (the length to truncate a torn log to) */
    uint64_t error_offset;  /* the first damage found */
    char error[128];        /* what it was; "" if none */
};

#endif
