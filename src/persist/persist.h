/*
 * Persistence (src/persist/): a data directory holding a snapshot of the
 * store and an append-only log of every change since, loaded at start.
 * The server wires it between the store (the change hook) and the fronts
 * (loading state, held replies, snapshots on request). Formats, guarantees
 * and recovery: docs/PERSISTENCE.md.
 */
#ifndef CACHETTE_PERSIST_H
#define CACHETTE_PERSIST_H

#include <stdbool.h>
#include <stdint.h>

#include "cachette/store.h"

/* --append-log */
enum persist_append_log {
    PERSIST_LOG_OFF = 0,      /* snapshots only */
    PERSIST_LOG_NO = 1,       /* log every change; the OS decides when it reaches the disk */
    PERSIST_LOG_EVERYSEC = 2, /* log, fsync once a second */
    PERSIST_LOG_ALWAYS = 3,   /* log, and answer a write only once it is fsynced */
};

struct persist_settings {
    const char *dir;
    int64_t snapshot_interval_ms; /* 0: only at shutdown and on request */
    enum persist_append_log append_log;
    bool recover;            /* load what verifies past damage instead of stopping */
    int64_t clock_offset_ms; /* added to the wall clock (tests move time across a restart) */
};

struct persist;

/*
 * Creates the directory (0700) if it is missing and locks it for this
 * process. Returns 0 with *out set, or the exit status for main after
 * logging why: 2 when another process holds the directory or it cannot be
 * used (not a directory, no permission).
 */
int persist_open(const struct persist_settings *settings, struct persist **out);

/*
 * The hashing key the snapshot's store had, into out (2 words), if there is
 * a snapshot whose header verifies: create the store with it
 * (store_config.hash_key) and the load walks one shard at a time.
 */
bool persist_saved_hash_key(const struct persist *p, uint64_t out[2]);

/* The store's change hook: store_config.on_change, with the persist as change_ctx. */
void persist_on_change(void *persist, const struct store_change *change);

/*
 * Loads the snapshot and replays the log into store (created with the hook
 * above), then starts the log and the snapshot timer. stop_requested is
 * polled while loading. Returns 0; 1 after logging the damage that stops
 * start-up (the file, the offset, what is wrong, what to do); or -1 if
 * stop_requested said so (nothing on disk was changed).
 */
int persist_load(struct persist *p, struct store *store, int (*stop_requested)(void));

/* Whether the load is still running (every other request is refused meanwhile). */
bool persist_loading(const struct persist *p);

struct persist_stats {
    bool loading;
    uint64_t load_bytes, load_bytes_total; /* read so far, of every file to load */
    uint64_t load_records;                 /* records applied so far */
    enum persist_append_log append_log;
    bool snapshot_running;
    uint64_t snapshots, snapshot_failures;
    uint64_t last_snapshot_entries, last_snapshot_bytes;
    int64_t last_snapshot_ms, last_snapshot_unix_ms; /* 0: none yet */
    uint64_t log_bytes;                              /* appended since start */
    uint64_t log_fsyncs, log_write_errors;
    uint64_t log_buffered; /* appended, not yet written */
};
void persist_stats(const struct persist *p, struct persist_stats *out);

/*
 * With --append-log always, the position in the log just past every change
 * a reader can have seen so far, whoever made it (0 otherwise): a reply
 * sent once persist_is_durable() holds for it shows nothing a crash could
 * undo, whether it acknowledges a write or shows a read.
 */
uint64_t persist_visible_lsn(const struct persist *p);

/*
 * Whether a write whose changes end at lsn may be acknowledged: with
 * --append-log always, once they are fsynced; otherwise at once.
 */
bool persist_is_durable(const struct persist *p, uint64_t lsn);

/*
 * Calls fn(ctx) on the log's writer thread each time persist_is_durable
 * may have become true for more positions; fn must be quick (wake a worker)
 * and must not call into the persist. Returns a handle for
 * persist_unsubscribe, or -1 when the table is full.
 */
int persist_subscribe(struct persist *p, void (*fn)(void *ctx), void *ctx);
void persist_unsubscribe(struct persist *p, int handle);

struct persist_snapshot_result {
    bool ok;
    uint64_t entries, bytes;
    int64_t ms;
    char error[192]; /* when not ok */
};

#define PERSIST_EBUSY    (-1) /* a snapshot is running */
#define PERSIST_ELOADING (-2) /* the load is still running */

/*
 * Takes a snapshot now, on the snapshot thread, which then calls
 * done(ctx, result). Returns 0, PERSIST_EBUSY or PERSIST_ELOADING (done
 * is not called then).
 */
int persist_request_snapshot(struct persist *p, void (*done)(void *ctx, const struct persist_snapshot_result *r),
                             void *ctx);

/*
 * Once no front can write any more: stops the timer, writes a last snapshot
 * if final_snapshot and the load completed, stops the log and frees p.
 * Returns 0, or 1 after logging why the last snapshot failed.
 */
int persist_close(struct persist *p, bool final_snapshot);

#endif
