/*
 * The files of a cachette data directory (--data-dir), built byte by byte
 * for tests that load them: records, snapshots, log files, and temporary
 * directories to hold them. Everything here follows the layout written in
 * docs/PERSISTENCE.md, not the server's code (src/persist/), so a
 * difference between the two documents and the server fails a test rather
 * than hiding behind a shared bug. All integers are little-endian.
 *
 * Every builder returns the byte offset where what it wrote begins, so a
 * test can name the offset the server must report for damage there.
 * Allocation failure aborts: a test helper has no better answer.
 */
#ifndef CACHETTE_TESTS_SUPPORT_DATAFILE_H
#define CACHETTE_TESTS_SUPPORT_DATAFILE_H

#include <stddef.h>
#include <stdint.h>

/* ---- bytes --------------------------------------------------------------- */

/* A growable byte string; zero-initialise, free with df_bytes_free. */
struct df_bytes {
    unsigned char *data;
    size_t len, cap;
};

void df_bytes_free(struct df_bytes *b);

/* Appends n bytes; returns the offset they start at. */
size_t df_put(struct df_bytes *b, const void *p, size_t n);
size_t df_put32(struct df_bytes *b, uint32_t v);
size_t df_put64(struct df_bytes *b, uint64_t v);

/* CRC-32C (Castagnoli, reflected), continued from crc (0 to start): crc32c("123456789") is 0xE3069283. */
uint32_t df_crc32c(uint32_t crc, const void *p, size_t n);

/* ---- records ------------------------------------------------------------- */

/* The kinds a SET record names. */
enum df_kind { DF_JSON = 0, DF_TEXT = 1, DF_BYTES = 2 };

/* One entry as a SET record holds it. */
struct df_entry {
    const char *key; /* NUL-terminated */
    enum df_kind kind;
    const char *content_type; /* DF_BYTES only; NULL otherwise */
    const void *value;
    size_t value_len;
    uint64_t version;        /* never 0: the entry's ETag is these 16 hex digits */
    int64_t expires_unix_ms; /* 0: never */
};

/* Appends a SET or DELETE record; each returns its offset. */
size_t df_record_set(struct df_bytes *b, const struct df_entry *e);
size_t df_record_delete(struct df_bytes *b, const char *key);

/* A SET record of a JSON value given as its compact text, version `version`, never expiring. */
size_t df_record_json(struct df_bytes *b, const char *key, const char *json, uint64_t version);

/* ---- snapshot ------------------------------------------------------------ */

#define DF_SNAPSHOT_HEADER 64u
#define DF_BLOCK_HEADER    20u
#define DF_TRAILER         24u

/* A snapshot being built: the file's bytes and the trailer's running figures. */
struct df_snapshot {
    struct df_bytes file;
    uint32_t chain;   /* CRC-32C over the checked bytes of the file header and of every block header so far */
    uint64_t entries; /* records in every block so far */
};

/* Starts a snapshot with format version 1 and the given version floor and first log to replay. */
void df_snapshot_begin(struct df_snapshot *s, uint64_t version_floor, uint64_t log_seq);

/* Appends a block holding `records` (count SET records). Returns the block header's offset. */
size_t df_snapshot_block(struct df_snapshot *s, const struct df_bytes *records, uint32_t count);

/* Appends the trailer. Returns its offset; the file ends DF_TRAILER bytes later. */
size_t df_snapshot_end(struct df_snapshot *s);

/* ---- log ----------------------------------------------------------------- */

#define DF_LOG_HEADER   40u
#define DF_FRAME_HEADER 8u

/* A log file's name, "log." and seq in 20 decimal digits. */
void df_log_name(char out[32], uint64_t seq);

/* Starts log file seq: its 40-byte header. */
void df_log_begin(struct df_bytes *f, uint64_t seq);

/* Appends one record (all of `record`) in a frame. Returns the frame's offset. */
size_t df_log_frame(struct df_bytes *f, const struct df_bytes *record);

/* ---- the directory --------------------------------------------------------- */

/*
 * Creates an empty directory /tmp/cachette-data-XXXXXX into path (size >= 64).
 * It is removed with everything in it by df_dir_remove, or when the test
 * binary exits if a failed test left it. Returns 0, or -1 with errno.
 */
int df_dir_make(char *path, size_t size);

/* Removes the directory and everything below it; safe to call twice. */
void df_dir_remove(const char *path);

/* dir/name into out; returns out. */
char *df_path(char *out, size_t size, const char *dir, const char *name);

/* Writes (creating or replacing) dir/name with len bytes. Returns 0, or -1 with errno. */
int df_write(const char *dir, const char *name, const void *data, size_t len);

/* Appends len bytes to dir/name. Returns 0, or -1 with errno. */
int df_append(const char *dir, const char *name, const void *data, size_t len);

/* Reads all of dir/name (malloc'ed into *data). Returns 0, or -1 with errno. */
int df_read(const char *dir, const char *name, unsigned char **data, size_t *len);

/* The size of dir/name, or -1 if it cannot be stat'ed. */
long long df_size(const char *dir, const char *name);

#endif
