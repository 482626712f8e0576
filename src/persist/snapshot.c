/*
 * The snapshot: a header, blocks of entry records, a trailer (layout in
 * docs/PERSISTENCE.md).
 *
 * Writing. The store is walked with store_iterate, which holds one shard's
 * read lock at a time for ITERATE_BATCH entries: the callback only encodes
 * each entry into the current block (memory, no I/O), and the block goes to
 * the file once the lock is dropped, when it passes BLOCK_TARGET bytes. So
 * writers wait at most one batch's copy, nothing is forked, and the only
 * extra memory is one block. Each entry is saved with a value it held at
 * the moment its shard was visited: a committed value. Writes that land
 * after the walk began are also in the log that the walk's start opened
 * (persist.c), so replaying it over the snapshot gives them back. The file
 * is written as snapshot.tmp, fsynced, renamed over the snapshot and the
 * directory fsynced: a crash at any point leaves the previous snapshot or
 * the new one, whole. After every batch the walk yields the CPU: a worker
 * woken meanwhile runs at once instead of after the scheduler's slice (the
 * snapshot thread runs at nice 10, persist.c), and with no one waiting
 * the yield returns at once.
 *
 * Reading. Every block header and payload is checked before its records
 * are used; the trailer's count and its checksum chain (over the checked
 * bytes of the file header and of every block header, each holding its
 * payload's CRC) prove that no block was lost, repeated or reordered. A
 * truncated snapshot has no trailer: damage.
 */
#include "persist/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "persist/crc32c.h"
#include "persist/fileio.h"

#define BLOCK_TARGET  (256u * 1024) /* a block goes to the file once its records pass this */
#define ITERATE_BATCH 128           /* entries copied per shard-lock hold */

/* ---- writing ------------------------------------------------------------ */

struct block_writer {
    int fd;
    unsigned char *buf; /* BLOCK_HEADER_SIZE bytes of room, then the records */
    size_t len, cap;    /* record bytes in buf, and room for them */
    uint32_t count;
    int oom; /* an entry did not fit and the buffer could not grow */
    int64_t wall_offset_ms;
    uint32_t chain; /* CRC over the file header and the block headers so far */
    uint64_t entries, bytes;
};

/* store_iterate's callback, under a shard's read lock: encode only. */
static void collect(void *ctx, const struct store_change *entry)
{
    struct block_writer *w = ctx;
    size_t need = record_size(entry);
    if (w->oom)
        return;
    if (w->len + need > w->cap) {
        size_t cap = w->cap * 2 > w->len + need ? w->cap * 2 : w->len + need;
        unsigned char *buf = realloc(w->buf, BLOCK_HEADER_SIZE + cap);
        if (buf == NULL) {
            w->oom = 1;
            return;
        }
        w->buf = buf;
        w->cap = cap;
    }
    record_encode(w->buf + BLOCK_HEADER_SIZE + w->len, entry, w->wall_offset_ms);
    w->len += need;
    w->count++;
}

static int flush_block(struct block_writer *w)
{
    if (w->count == 0)
        return 0;
    struct block_header b = {.payload_len = (uint32_t)w->len,
                             .count = w->count,
                             .payload_crc = crc32c(0, w->buf + BLOCK_HEADER_SIZE, w->len)};
    block_header_encode(w->buf, &b);
    w->chain = crc32c(w->chain, w->buf, BLOCK_HEADER_CHECKED);
    if (fileio_write_all(w->fd, w->buf, BLOCK_HEADER_SIZE + w->len) != 0)
        return -1;
    w->bytes += BLOCK_HEADER_SIZE + w->len;
    w->entries += w->count;
    w->len = 0;
    w->count = 0;
    return 0;
}

/* Walks the store into blocks and ends the file with the trailer. 0 or -1 with errno (ENOMEM for a block). */
static int write_body(struct block_writer *w, struct store *store)
{
    uint64_t cursor = 0;
    do {
        store_iterate(store, cursor, ITERATE_BATCH, collect, w, &cursor);
        if (w->oom) {
            errno = ENOMEM;
            return -1;
        }
        if (w->len >= BLOCK_TARGET && flush_block(w) != 0)
            return -1;
        sched_yield();
    } while (cursor != 0);
    if (flush_block(w) != 0)
        return -1;
    unsigned char trailer[TRAILER_SIZE];
    trailer_encode(trailer, &(struct trailer){.entries = w->entries, .chain_crc = w->chain});
    if (fileio_write_all(w->fd, trailer, sizeof(trailer)) != 0)
        return -1;
    w->bytes += TRAILER_SIZE;
    return 0;
}

int snapshot_write(int dir_fd, struct store *store, const struct snapshot_header *h, int64_t wall_offset_ms,
                   struct snapshot_stats *out, char *err, size_t err_size)
{
    struct block_writer w = {.wall_offset_ms = wall_offset_ms, .cap = BLOCK_TARGET};
    const char *step = "create";
    w.buf = malloc(BLOCK_HEADER_SIZE + w.cap);
    w.fd = openat(dir_fd, SNAPSHOT_TMP_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w.buf == NULL || w.fd < 0) {
        if (w.buf == NULL)
            errno = ENOMEM;
        goto fail;
    }
    unsigned char header[SNAPSHOT_HEADER_SIZE];
    snapshot_header_encode(header, h);
    w.chain = crc32c(0, header, SNAPSHOT_HEADER_CHECKED);
    w.bytes = sizeof(header);
    step = "write";
    if (fileio_write_all(w.fd, header, sizeof(header)) != 0 || write_body(&w, store) != 0)
        goto fail;
    step = "fsync";
    if (fsync(w.fd) != 0)
        goto fail;
    step = "close";
    int fd = w.fd;
    w.fd = -1;
    if (close(fd) != 0)
        goto fail;
    step = "rename";
    if (renameat(dir_fd, SNAPSHOT_TMP_FILE, dir_fd, SNAPSHOT_FILE) != 0)
        goto fail;
    free(w.buf);
    /* The rename is only durable once the directory is: a failure here leaves a whole file either way. */
    if (fsync(dir_fd) != 0) {
        snprintf(err, err_size, "cannot fsync the data directory after renaming %s: %s", SNAPSHOT_FILE,
                 strerror(errno));
        return -1;
    }
    out->entries = w.entries;
    out->bytes = w.bytes;
    return 0;

fail:
    snprintf(err, err_size, "cannot %s %s: %s", step, SNAPSHOT_TMP_FILE, strerror(errno));
    if (w.fd >= 0)
        close(w.fd);
    unlinkat(dir_fd, SNAPSHOT_TMP_FILE, 0);
    free(w.buf);
    return -1;
}

/* ---- reading ------------------------------------------------------------ */

struct snapshot_reader {
    const unsigned char *data;
    size_t len;
    bool recover;
    record_fn fn;
    void *ctx;
    struct parse_report *report;
    uint32_t chain;
    bool chain_broken; /* a region was skipped: the trailer's chain cannot match */
};

/* Notes damage at `at`. Returns PARSE_DAMAGED to stop, or PARSE_OK when recovering. */
static enum parse_outcome damage(struct snapshot_reader *r, size_t at, const char *why)
{
    struct parse_report *rep = r->report;
    if (rep->error[0] == '\0') {
        rep->error_offset = at;
        snprintf(rep->error, sizeof(rep->error), "%s", why);
    }
    if (!r->recover)
        return PARSE_DAMAGED;
    rep->damaged++;
    r->chain_broken = true;
    return PARSE_OK;
}

/* The next offset after `at` where a block header or the trailer verifies, or len. */
static size_t resync(const struct snapshot_reader *r, size_t at)
{
    for (size_t i = at + 1; i + BLOCK_HEADER_SIZE <= r->len; i++) {
        struct block_header b;
        struct trailer t;
        if (block_header_decode(r->data + i, &b) == NULL ||
            (i + TRAILER_SIZE <= r->len && trailer_decode(r->data + i, &t) == NULL))
            return i;
    }
    return r->len;
}

/* Checks the block at `at` and hands its records out. Returns PARSE_OK with *next, or damage's outcome. */
static enum parse_outcome read_block(struct snapshot_reader *r, size_t at, size_t *next, const char **why)
{
    struct block_header b;
    *why = block_header_decode(r->data + at, &b);
    if (*why != NULL)
        return PARSE_DAMAGED;
    if (b.payload_len > r->len - at - BLOCK_HEADER_SIZE) {
        *why = "block runs past the end of the file (truncated)";
        return PARSE_DAMAGED;
    }
    const unsigned char *payload = r->data + at + BLOCK_HEADER_SIZE;
    if (crc32c(0, payload, b.payload_len) != b.payload_crc) {
        *why = "block checksum mismatch";
        return PARSE_DAMAGED;
    }
    /* Decode the whole block before handing out any of it: a block is loaded whole or not at all. */
    size_t off = 0;
    uint32_t n = 0;
    struct record rec;
    while (off < b.payload_len) {
        size_t used = record_decode(payload + off, b.payload_len - off, &rec, why);
        if (used == 0)
            return PARSE_DAMAGED;
        if (rec.op != RECORD_SET) {
            *why = "a snapshot holds only set records";
            return PARSE_DAMAGED;
        }
        off += used;
        n++;
    }
    if (n != b.count) {
        *why = "block record count mismatch";
        return PARSE_DAMAGED;
    }
    r->chain = crc32c(r->chain, r->data + at, BLOCK_HEADER_CHECKED);
    for (off = 0; off < b.payload_len;) {
        off += record_decode(payload + off, b.payload_len - off, &rec, why);
        if (r->fn(r->ctx, &rec, at + BLOCK_HEADER_SIZE + off) != 0)
            return PARSE_STOPPED;
        r->report->records++;
    }
    *next = at + BLOCK_HEADER_SIZE + b.payload_len;
    return PARSE_OK;
}

/* Checks the trailer at `at` against what was read. NULL, or what is wrong. */
static const char *check_trailer(const struct snapshot_reader *r, size_t at)
{
    struct trailer t;
    if (at + TRAILER_SIZE > r->len)
        return "trailer cut short (truncated)";
    const char *why = trailer_decode(r->data + at, &t);
    if (why != NULL)
        return why;
    if (at + TRAILER_SIZE != r->len)
        return "bytes after the trailer";
    if (r->chain_broken)
        return NULL; /* what was skipped is reported already */
    if (t.chain_crc != r->chain)
        return "trailer checksum chain mismatch: a block is missing or out of order";
    if (t.entries != r->report->records)
        return "trailer entry count mismatch";
    return NULL;
}

enum parse_outcome snapshot_parse(const unsigned char *data, size_t len, bool recover, record_fn fn, void *ctx,
                                  struct snapshot_header *h, struct parse_report *report)
{
    struct snapshot_reader r = {.data = data, .len = len, .recover = recover, .fn = fn, .ctx = ctx, .report = report};
    memset(report, 0, sizeof(*report));
    memset(h, 0, sizeof(*h));
    if (len < SNAPSHOT_HEADER_SIZE)
        return damage(&r, 0, len == 0 ? "empty file" : "file shorter than its header") == PARSE_OK ? PARSE_OK
                                                                                                   : PARSE_DAMAGED;
    const char *why = snapshot_header_decode(data, h);
    if (why != NULL && damage(&r, 0, why) != PARSE_OK)
        return PARSE_DAMAGED;
    r.chain = crc32c(0, data, SNAPSHOT_HEADER_CHECKED);
    size_t at = SNAPSHOT_HEADER_SIZE;
    for (;;) {
        if (at + 4 <= len && memcmp(data + at, TRAILER_TAG, 4) == 0) {
            why = check_trailer(&r, at);
            if (why == NULL)
                return PARSE_OK;
        } else if (at + BLOCK_HEADER_SIZE > len) {
            why = at == len ? "no trailer (truncated)" : "block header cut short (truncated)";
        } else {
            size_t next;
            enum parse_outcome o = read_block(&r, at, &next, &why);
            if (o == PARSE_STOPPED)
                return o;
            if (o == PARSE_OK) {
                at = next;
                continue;
            }
        }
        if (damage(&r, at, why) != PARSE_OK)
            return PARSE_DAMAGED;
        if (at >= len)
            return PARSE_OK;
        size_t next = resync(&r, at);
        report->skipped_bytes += next - at;
        at = next;
    }
}
