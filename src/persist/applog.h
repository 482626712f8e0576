/*
 * The append-only log (applog.c): every change the store reports, framed and
 * checksummed, written by one thread with group commit, in numbered files
 * (log.<seq>) that a snapshot makes obsolete.
 */
#ifndef CACHETTE_PERSIST_APPLOG_H
#define CACHETTE_PERSIST_APPLOG_H

#include <stdint.h>

#include "persist/parse.h"

/* What --append-log promises. */
enum applog_sync {
    APPLOG_NO = 0,       /* write to the OS at once (within milliseconds); it flushes when it likes */
    APPLOG_EVERYSEC = 1, /* fsync once a second */
    APPLOG_ALWAYS = 2,   /* fsync before a write is acknowledged (applog_durable) */
};

#define APPLOG_NAME_MAX 32
/* The file name of log number seq: "log.00000000000000000042". */
void applog_name(char out[APPLOG_NAME_MAX], uint64_t seq);
/* Whether name is a log file's, and its number. */
int applog_name_parse(const char *name, uint64_t *seq);

struct applog;

/*
 * Creates log file seq in the directory dir_fd (written as a temporary
 * file with its header, fsynced, renamed) and starts the writer thread.
 * notify(ctx), if not NULL, is called on the writer thread each time
 * applog_durable advances: it must be quick and must not call into the log.
 * Returns NULL with the reason in err.
 */
struct applog *applog_start(int dir_fd, uint64_t seq, enum applog_sync sync, void (*notify)(void *ctx), void *ctx,
                            char *err, size_t err_size);

/*
 * Appends a change (called from the store's change hook, under the key's
 * shard lock, so each key's records are in the order of its changes).
 * Never blocks on the disk: it copies into memory and wakes the writer.
 * Returns the change's log sequence number (LSN: bytes appended since start,
 * this record included).
 */
uint64_t applog_append(struct applog *log, const struct store_change *c, int64_t wall_offset_ms);

/*
 * The LSN of the last change appended, by any thread. Read after seeing a
 * change in the store, it is at least that change's LSN: the store reports a
 * change to its hook before publishing it (see store.h's change hook).
 */
uint64_t applog_appended(const struct applog *log);

/* The LSN up to which the log is as durable as its setting promises (for APPLOG_ALWAYS: fsynced). */
uint64_t applog_durable(const struct applog *log);

/*
 * Sends every change appended from now on to a new file, seq, and waits
 * until the current file has all the changes appended before the call,
 * fsynced and closed. Returns 0, or -1 with the reason in err (the writer
 * goes on with the old file).
 */
int applog_rotate(struct applog *log, uint64_t seq, char *err, size_t err_size);

/* Writes and fsyncs what is buffered, stops the thread, closes the file and frees the log. */
void applog_stop(struct applog *log);

struct applog_stats {
    uint64_t appended; /* LSN: bytes appended */
    uint64_t durable;  /* applog_durable */
    uint64_t fsyncs;
    uint64_t write_errors; /* failed writes, retried each second */
    size_t buffered;       /* bytes waiting in memory for the writer */
};
void applog_stats(struct applog *log, struct applog_stats *out);

/*
 * Parses a log file: its header into *h, then every record to fn. A torn
 * last record (one that runs past the end; or the last one, whose checksum
 * fails; or zeros to the end: what a crash leaves) is not damage: it is
 * left out, counted in torn_bytes, and good_len says where it begins.
 */
enum parse_outcome applog_parse(const unsigned char *data, size_t len, bool recover, record_fn fn, void *ctx,
                                struct log_header *h, struct parse_report *report);

#endif
