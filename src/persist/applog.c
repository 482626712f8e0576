/*
 * The append-only log: a file of framed records (a length, a CRC-32C, a
 * record: format.h), written by one thread per server.
 *
 * Appending. The store's change hook encodes each change into `active`, a
 * memory buffer, under `lock` (taken under a shard lock: the lock order is
 * shard, then this lock, then nothing). That is all a writer of the store
 * pays: no system call, unless the writer thread sleeps and must be woken.
 * Each append advances the LSN (bytes appended since start) and records it
 * in the appending thread (persist.c hands it to the fronts).
 *
 * Writing. The writer thread swaps `active` with its own buffer and writes
 * it with one write(), then, as --append-log says, fsyncs: after every
 * write (always), once a second (everysec) or never (no). Group commit
 * falls out of the swap: every change appended while an fsync runs goes
 * into the next write and shares the next fsync. With `always` it sleeps
 * until woken by an append; otherwise it wakes every WRITE_INTERVAL_MS, so
 * a crash of the process (not of the machine) loses at most that much. Once
 * an fsync (always) or a write (everysec, no) completes, `durable` moves and
 * notify() tells the fronts, which then answer the writes they held.
 *
 * Rotation. A snapshot starts a new file: applog_rotate notes the LSN where
 * the old file ends; the writer writes up to it into the old file, fsyncs
 * (but with `no`) and closes it, creates the new one and goes on there.
 *
 * Failures. A failed write (disk full) is retried every second from the
 * same offset, the held writes waiting meanwhile. A failed fsync, or no
 * memory to buffer a change, ends the process (exit 1) with a message: the
 * kernel may have dropped the unsynced pages, so no later fsync can promise
 * them, and answering writes the log does not hold would break the promise
 * the setting makes. (Redis stops on a failed fsync with `always` too.)
 */
#include "persist/applog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "monotonic.h"
#include "persist/fileio.h"

#define WRITE_INTERVAL_MS 5           /* no, everysec: how often the writer hands the buffer to the OS */
#define RETRY_MS          1000        /* after a failed write */
#define SHRINK_BYTES      (16u << 20) /* a buffer that grew past this is freed once written */

struct buffer {
    unsigned char *data;
    size_t len, cap;
    uint64_t start_lsn; /* the LSN of data[0] */
};

struct applog {
    enum applog_sync sync;
    int dir_fd;
    void (*notify)(void *ctx);
    void *notify_ctx;
    pthread_t thread;

    pthread_mutex_t lock;   /* everything down to `written` */
    pthread_cond_t wake;    /* the writer: something to do */
    pthread_cond_t rotated; /* applog_rotate: the writer switched files */
    struct buffer active;   /* appended, not yet taken by the writer */
    uint64_t appended;      /* the LSN after the last append */
    int writer_idle;        /* waiting on `wake` with nothing to do */
    atomic_int stop;        /* written under the lock; read without it by a retrying write */
    int rotate_pending;     /* applog_rotate waits for the switch */
    uint64_t rotate_at;     /* the LSN where the current file ends */
    uint64_t rotate_seq;    /* the next file's number */
    uint64_t rotations;     /* switches done */
    int rotate_failed;
    char rotate_error[160];

    /* The writer thread's own. */
    struct buffer flushing;
    int fd;
    uint64_t seq;

    atomic_uint_fast64_t durable;
    atomic_uint_fast64_t published; /* `appended`, readable without the lock (applog_appended) */
    atomic_uint_fast64_t fsyncs;
    atomic_uint_fast64_t write_errors;
};

void applog_name(char out[APPLOG_NAME_MAX], uint64_t seq)
{
    snprintf(out, APPLOG_NAME_MAX, "log.%020" PRIu64, seq);
}

int applog_name_parse(const char *name, uint64_t *seq)
{
    if (strncmp(name, "log.", 4) != 0 || strlen(name) != 24)
        return 0;
    uint64_t v = 0;
    for (const char *p = name + 4; *p; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *seq = v;
    return 1;
}

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Creates log file seq: header written and fsynced under a temporary name, then renamed. Returns its fd or -1. */
static int create_file(int dir_fd, uint64_t seq, char *err, size_t err_size)
{
    char name[APPLOG_NAME_MAX], tmp[APPLOG_NAME_MAX + 4];
    applog_name(name, seq);
    snprintf(tmp, sizeof(tmp), "%s.tmp", name);
    unsigned char header[LOG_HEADER_SIZE];
    log_header_encode(header, &(struct log_header){.seq = seq, .created_unix_ms = unix_ms()});
    int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || fileio_write_all(fd, header, sizeof(header)) != 0 || fsync(fd) != 0 ||
        renameat(dir_fd, tmp, dir_fd, name) != 0 || fsync(dir_fd) != 0) {
        snprintf(err, err_size, "cannot create %s: %s", name, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlinkat(dir_fd, tmp, 0);
        }
        return -1;
    }
    return fd;
}

static void fatal(const char *what, uint64_t seq)
{
    char name[APPLOG_NAME_MAX];
    applog_name(name, seq);
    log_msg(LOG_LEVEL_ERROR,
            "append-only log %s: %s: %s; exiting, so that no write is acknowledged that the log "
            "does not hold (restart to load what is on disk)",
            name, what, strerror(errno));
    _exit(1);
}

/* fsyncs the current file; a failure ends the process (see the top of this file). */
static void sync_file(struct applog *log)
{
    if (fdatasync(log->fd) != 0)
        fatal("fsync failed", log->seq);
    atomic_fetch_add_explicit(&log->fsyncs, 1, memory_order_relaxed);
}

/*
 * Writes n bytes to the current file, retrying every second while the disk
 * refuses them, until the log is stopped: then what could not be written is
 * dropped, with an error (the server is going down; held replies were never
 * sent).
 */
static void write_or_retry(struct applog *log, const unsigned char *p, size_t n)
{
    off_t at = lseek(log->fd, 0, SEEK_END);
    while (fileio_write_all(log->fd, p, n) != 0) {
        char name[APPLOG_NAME_MAX];
        applog_name(name, log->seq);
        atomic_fetch_add_explicit(&log->write_errors, 1, memory_order_relaxed);
        int stopping = atomic_load_explicit(&log->stop, memory_order_relaxed);
        log_msg(LOG_LEVEL_ERROR, "append-only log %s: write failed: %s; %s", name, strerror(errno),
                stopping ? "stopping: the changes not written are lost"
                         : "retrying in a second (writes with --append-log always wait)");
        if (at >= 0 && ftruncate(log->fd, at) != 0) /* no half-written record stays before the retry */
            fatal("cannot cut a failed write back", log->seq);
        if (stopping)
            return;
        struct timespec pause = {.tv_sec = RETRY_MS / 1000};
        nanosleep(&pause, NULL);
    }
}

/*
 * Switches to file `seq`, closing the old one: fsynced first, except with
 * `no`, where the OS decides as it does for every write (an fsync of all
 * the file took since it was opened would hold the writer, and the appends
 * waiting for it, for as long as the disk takes). 0 or -1 with the reason
 * in log->rotate_error.
 */
static int switch_file(struct applog *log, uint64_t seq)
{
    int fd = create_file(log->dir_fd, seq, log->rotate_error, sizeof(log->rotate_error));
    if (fd < 0)
        return -1;
    if (log->sync != APPLOG_NO)
        sync_file(log);
    close(log->fd);
    log->fd = fd;
    log->seq = seq;
    return 0;
}

/* Waits for work. Returns with the lock held; 0 when there is nothing left and the log is stopping. */
static int wait_for_work(struct applog *log, int64_t *next_sync_ms)
{
    while (log->active.len == 0 && !log->rotate_pending) {
        if (atomic_load_explicit(&log->stop, memory_order_relaxed))
            return 0;
        if (log->sync == APPLOG_ALWAYS) {
            log->writer_idle = 1;
            pthread_cond_wait(&log->wake, &log->lock);
            log->writer_idle = 0;
            /*
             * Woken by the first append of a burst: let the appending
             * thread go on (if it shares this core) so that one fsync takes
             * the rest of the burst too. Nothing else runnable: no wait.
             */
            pthread_mutex_unlock(&log->lock);
            sched_yield();
            pthread_mutex_lock(&log->lock);
            continue;
        }
        if (log->sync == APPLOG_EVERYSEC && *next_sync_ms != 0 && monotonic_ms() >= *next_sync_ms)
            return 1; /* an fsync is due for what was written */
        struct timespec until = monotonic_deadline(WRITE_INTERVAL_MS);
        pthread_cond_timedwait(&log->wake, &log->lock, &until);
    }
    return 1;
}

static void *writer_main(void *arg)
{
    struct applog *log = arg;
    int64_t next_sync_ms = 0; /* everysec: when written bytes are next fsynced; 0 = nothing unsynced */
    uint64_t written = 0;     /* LSN written to files */
    pthread_mutex_lock(&log->lock);
    for (;;) {
        if (!wait_for_work(log, &next_sync_ms))
            break;
        struct buffer taken = log->active;
        log->active = log->flushing;
        log->active.len = 0;
        log->active.start_lsn = log->appended;
        log->flushing = taken;
        int rotating = log->rotate_pending;
        uint64_t rotate_seq = log->rotate_seq;
        /* Appends before the rotation are in `taken` or written already: split is within taken. */
        size_t split = rotating ? (size_t)(log->rotate_at - taken.start_lsn) : taken.len;
        pthread_mutex_unlock(&log->lock);

        if (split != 0)
            write_or_retry(log, taken.data, split);
        int rotate_rc = 0;
        if (rotating) {
            rotate_rc = switch_file(log, rotate_seq);
            if (taken.len > split)
                write_or_retry(log, taken.data + split, taken.len - split);
        }
        written = taken.start_lsn + taken.len;
        if (log->sync == APPLOG_ALWAYS && taken.len != 0) {
            sync_file(log);
        } else if (log->sync == APPLOG_EVERYSEC) {
            int64_t now = monotonic_ms();
            if (next_sync_ms != 0 && now >= next_sync_ms) {
                sync_file(log);
                next_sync_ms = 0;
            } else if (next_sync_ms == 0 && taken.len != 0) {
                next_sync_ms = now + 1000;
            }
        }
        if ((log->sync != APPLOG_EVERYSEC || next_sync_ms == 0) &&
            written != atomic_load_explicit(&log->durable, memory_order_relaxed)) {
            atomic_store_explicit(&log->durable, written, memory_order_seq_cst); /* before notify reads who waits */
            if (log->notify != NULL)
                log->notify(log->notify_ctx);
        }
        if (log->flushing.cap > SHRINK_BYTES) {
            free(log->flushing.data);
            log->flushing = (struct buffer){0};
        }

        pthread_mutex_lock(&log->lock);
        if (rotating) {
            log->rotate_pending = 0;
            log->rotations++;
            log->rotate_failed = rotate_rc != 0;
            pthread_cond_broadcast(&log->rotated);
        }
    }
    pthread_mutex_unlock(&log->lock);
    sync_file(log);
    atomic_store_explicit(&log->durable, written, memory_order_release);
    if (log->notify != NULL)
        log->notify(log->notify_ctx);
    return NULL;
}

struct applog *applog_start(int dir_fd, uint64_t seq, enum applog_sync sync, void (*notify)(void *ctx), void *ctx,
                            char *err, size_t err_size)
{
    struct applog *log = calloc(1, sizeof(*log));
    if (log == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    log->sync = sync;
    log->dir_fd = dir_fd;
    log->notify = notify;
    log->notify_ctx = ctx;
    log->seq = seq;
    log->fd = create_file(dir_fd, seq, err, err_size);
    if (log->fd < 0) {
        free(log);
        return NULL;
    }
    pthread_mutex_init(&log->lock, NULL);
    monotonic_cond_init(&log->wake);
    pthread_cond_init(&log->rotated, NULL);
    if (pthread_create(&log->thread, NULL, writer_main, log) != 0) {
        snprintf(err, err_size, "cannot start the log writer thread");
        close(log->fd);
        pthread_mutex_destroy(&log->lock);
        pthread_cond_destroy(&log->wake);
        pthread_cond_destroy(&log->rotated);
        free(log);
        return NULL;
    }
    return log;
}

uint64_t applog_append(struct applog *log, const struct store_change *c, int64_t wall_offset_ms)
{
    size_t len = record_size(c), need = FRAME_HEADER_SIZE + len;
    pthread_mutex_lock(&log->lock);
    struct buffer *b = &log->active;
    if (b->len + need > b->cap) {
        size_t cap = b->cap * 2 > b->len + need ? b->cap * 2 : b->len + need;
        if (cap < 64 * 1024)
            cap = 64 * 1024;
        unsigned char *data = realloc(b->data, cap);
        if (data == NULL) {
            errno = ENOMEM;
            fatal("no memory to buffer a change", log->seq);
        }
        b->data = data;
        b->cap = cap;
    }
    record_encode(b->data + b->len + FRAME_HEADER_SIZE, c, wall_offset_ms);
    frame_seal(b->data + b->len, len);
    b->len += need;
    log->appended += need;
    uint64_t lsn = log->appended;
    atomic_store_explicit(&log->published, lsn, memory_order_seq_cst);
    if (log->writer_idle)
        pthread_cond_signal(&log->wake);
    pthread_mutex_unlock(&log->lock);
    return lsn;
}

uint64_t applog_appended(const struct applog *log)
{
    return atomic_load_explicit(&log->published, memory_order_seq_cst);
}

uint64_t applog_durable(const struct applog *log)
{
    return atomic_load_explicit(&log->durable, memory_order_seq_cst);
}

int applog_rotate(struct applog *log, uint64_t seq, char *err, size_t err_size)
{
    pthread_mutex_lock(&log->lock);
    log->rotate_pending = 1;
    log->rotate_at = log->appended;
    log->rotate_seq = seq;
    uint64_t target = log->rotations + 1;
    pthread_cond_signal(&log->wake);
    while (log->rotations < target)
        pthread_cond_wait(&log->rotated, &log->lock);
    int failed = log->rotate_failed;
    if (failed)
        snprintf(err, err_size, "%s", log->rotate_error);
    pthread_mutex_unlock(&log->lock);
    return failed ? -1 : 0;
}

void applog_stop(struct applog *log)
{
    pthread_mutex_lock(&log->lock);
    atomic_store_explicit(&log->stop, 1, memory_order_relaxed);
    pthread_cond_signal(&log->wake);
    pthread_mutex_unlock(&log->lock);
    pthread_join(log->thread, NULL);
    close(log->fd);
    pthread_mutex_destroy(&log->lock);
    pthread_cond_destroy(&log->wake);
    pthread_cond_destroy(&log->rotated);
    free(log->active.data);
    free(log->flushing.data);
    free(log);
}

void applog_stats(struct applog *log, struct applog_stats *out)
{
    pthread_mutex_lock(&log->lock);
    out->appended = log->appended;
    out->buffered = log->active.len;
    pthread_mutex_unlock(&log->lock);
    out->durable = atomic_load_explicit(&log->durable, memory_order_acquire);
    out->fsyncs = atomic_load_explicit(&log->fsyncs, memory_order_relaxed);
    out->write_errors = atomic_load_explicit(&log->write_errors, memory_order_relaxed);
}

/* ---- reading ------------------------------------------------------------ */

/* Whether p[0, n) is all zeros (a file extended by a crash before its data reached the disk). */
static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

/* Decodes the frame at p[0, avail) into rec if it verifies whole. Returns its size, or 0. */
static size_t verified_record(const unsigned char *p, size_t avail, struct record *rec, const char **why, int *frame)
{
    size_t len;
    *frame = frame_open(p, avail, &len);
    if (*frame != 0) {
        *why = *frame == -1 ? "record runs past the end of the file" : "record checksum mismatch";
        return 0;
    }
    size_t used = record_decode(p + FRAME_HEADER_SIZE, len, rec, why);
    if (used == 0)
        return 0;
    if (used != len) {
        *why = "record frame longer than its record";
        return 0;
    }
    return FRAME_HEADER_SIZE + len;
}

/* The offset of the next frame after `at` that verifies and decodes, or len when none does. */
static size_t next_verified(const unsigned char *data, size_t len, size_t at)
{
    struct record rec;
    const char *why;
    int frame;
    size_t next = at + 1;
    while (next < len && verified_record(data + next, len - next, &rec, &why, &frame) == 0)
        next++;
    return next;
}

/*
 * Whether what cannot be read at `at` is what a crash leaves, given that no
 * frame after it verifies: zeros to the end, or a last frame cut short or
 * failing its checksum. A whole frame whose checksum holds but whose record
 * is not valid was written so, and is damage.
 */
static bool torn_tail(const unsigned char *data, size_t len, size_t at, int frame)
{
    if (all_zero(data + at, len - at))
        return true;
    if (frame == -1)
        return true;
    size_t frame_len = get32(data + at);
    return frame == -2 && at + FRAME_HEADER_SIZE + frame_len == len;
}

enum parse_outcome applog_parse(const unsigned char *data, size_t len, bool recover, record_fn fn, void *ctx,
                                struct log_header *h, struct parse_report *report)
{
    memset(report, 0, sizeof(*report));
    memset(h, 0, sizeof(*h));
    size_t at = LOG_HEADER_SIZE;
    const char *why = len == 0                ? "empty file"
                      : len < LOG_HEADER_SIZE ? "file shorter than its header"
                                              : log_header_decode(data, h);
    if (why != NULL) {
        report->error_offset = 0;
        snprintf(report->error, sizeof(report->error), "%s", why);
        if (!recover || len < LOG_HEADER_SIZE)
            return recover ? PARSE_OK : PARSE_DAMAGED;
        report->damaged++;
    }
    while (at < len) {
        struct record rec;
        int frame;
        size_t used = verified_record(data + at, len - at, &rec, &why, &frame);
        if (used != 0) {
            if (fn(ctx, &rec, at + used) != 0)
                return PARSE_STOPPED;
            report->records++;
            at += used;
            continue;
        }
        /* Only the end of the file may be torn: a frame that verifies after this one makes it damage. */
        size_t next = next_verified(data, len, at);
        if (next == len && torn_tail(data, len, at, frame)) {
            report->torn_bytes = len - at;
            break;
        }
        if (report->error[0] == '\0') {
            report->error_offset = at;
            snprintf(report->error, sizeof(report->error), "%s", why);
        }
        if (!recover)
            return PARSE_DAMAGED;
        report->damaged++;
        report->skipped_bytes += next - at;
        at = next;
    }
    report->good_len = at;
    return PARSE_OK;
}
