/*
 * The snapshot (snapshot.c): every live entry of the store in one file,
 * written while the store serves, and read back at start.
 */
#ifndef CACHETTE_PERSIST_SNAPSHOT_H
#define CACHETTE_PERSIST_SNAPSHOT_H

#include "persist/parse.h"

#define SNAPSHOT_FILE     "snapshot"
#define SNAPSHOT_TMP_FILE "snapshot.tmp"

struct snapshot_stats {
    uint64_t entries;
    uint64_t bytes; /* the file's size */
};

/*
 * Writes every live entry of store, with header h, to SNAPSHOT_TMP_FILE in
 * the directory dir_fd, fsyncs it, renames it over SNAPSHOT_FILE and fsyncs
 * the directory. wall_offset_ms turns the store's clock into Unix time.
 * Returns 0, or -1 with what failed in err (the temporary file removed, the
 * previous snapshot untouched).
 */
int snapshot_write(int dir_fd, struct store *store, const struct snapshot_header *h, int64_t wall_offset_ms,
                   struct snapshot_stats *out, char *err, size_t err_size);

/*
 * Parses a snapshot: its header into *h (zeroed if the header is damaged
 * and recover is set), then every entry record to fn.
 */
enum parse_outcome snapshot_parse(const unsigned char *data, size_t len, bool recover, record_fn fn, void *ctx,
                                  struct snapshot_header *h, struct parse_report *report);

#endif
