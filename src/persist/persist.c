/*
 * Persistence: the data directory, loading it at start, the change hook,
 * snapshots on a timer and on request, and the link from the log's fsyncs
 * to the fronts that hold replies.
 *
 * The directory holds `lock` (flock'ed by the running server), `snapshot`
 * and log files `log.<seq>`. The snapshot's header names the first log
 * file to replay after it (log_seq). A snapshot begins by rotating the log
 * (every change from then on goes to file log_seq), reads the version floor
 * after the rotation (every version given before it is below the floor;
 * every one after is in the new file), walks the store, and once renamed
 * into place deletes the files before log_seq. So at every instant, the
 * snapshot and the files from its log_seq on hold every change: a crash
 * mid-snapshot leaves the previous snapshot and every log since it.
 *
 * Loading maps each file read-only and applies its records through
 * store_restore and store_delete: in order, and under the
 * memory bound (what does not fit is evicted by the policy, and counted).
 * Expiry is saved as Unix time, so downtime counts; an entry whose time
 * passed is not loaded. Versions are restored as saved and every shard's
 * counter is raised past the floor: an ETag taken before the restart still
 * names the same value after it, and no new value gets an old ETag.
 *
 * The change hook runs under a shard lock (store.h): it only appends to the
 * log's memory buffer (applog.c) and notes the LSN in the calling thread,
 * which the front reads once its handler returns to hold the reply
 * (persist_is_durable) until the writer thread has fsynced that far.
 *
 * Threads: the snapshot thread (timer and requests), the log's writer. The
 * lock `mutex` guards the snapshot state and statistics; `subscribers_lock`
 * the fronts' wake-up table (taken by the writer thread to notify).
 */
#define _GNU_SOURCE /* gettid */
#include "persist/persist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "monotonic.h"
#include "persist/applog.h"
#include "persist/snapshot.h"

#define LOCK_FILE         "lock"
#define MAX_SUBSCRIBERS   256
#define STOP_POLL_RECORDS 4096 /* records applied between two looks at stop_requested */
#define SNAPSHOT_NICE     10   /* the snapshot thread's niceness */

struct subscriber {
    void (*fn)(void *ctx);
    void *ctx;
};

struct persist {
    struct persist_settings settings;
    char dir[4096];
    int dir_fd, lock_fd;
    struct store *store;
    struct applog *log; /* NULL with --append-log off, and until loaded */
    atomic_int logging; /* the hook appends (set once loaded, with the log open) */
    atomic_int dirty;   /* a change since the last snapshot began: the timer has work */
    atomic_bool loading;
    atomic_uint_fast64_t load_bytes, load_bytes_total, load_records;
    bool loaded; /* the load completed: a final snapshot may replace the files */

    pthread_mutex_t mutex; /* the snapshot state and figures below */
    pthread_cond_t cond;   /* the snapshot thread: a request, or stop */
    pthread_t snapshot_thread;
    bool thread_started, stopping, running, requested;
    void (*done)(void *ctx, const struct persist_snapshot_result *r);
    void *done_ctx;
    uint64_t next_log_seq; /* the next log file's number */
    uint64_t snapshots, snapshot_failures, last_entries, last_bytes;
    int64_t last_ms, last_unix_ms;

    pthread_mutex_t subscribers_lock;
    struct subscriber subscribers[MAX_SUBSCRIBERS];
};

static int64_t wall_ms(const struct persist *p)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + p->settings.clock_offset_ms;
}

/* Unix time less the store's clock: what turns a deadline on the one into the other. */
static int64_t wall_offset(const struct persist *p)
{
    return wall_ms(p) - store_now_ms(p->store);
}

/* ---- opening -------------------------------------------------------------- */

int persist_open(const struct persist_settings *settings, struct persist **out)
{
    const char *dir = settings->dir;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        log_msg(LOG_LEVEL_ERROR, "cannot create --data-dir %s: %s", dir, strerror(errno));
        return 2;
    }
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        log_msg(LOG_LEVEL_ERROR, "cannot open --data-dir %s: %s", dir,
                errno == ENOTDIR ? "not a directory" : strerror(errno));
        return 2;
    }
    int lock_fd = openat(dir_fd, LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) {
        log_msg(LOG_LEVEL_ERROR, "cannot open %s/%s: %s", dir, LOCK_FILE, strerror(errno));
        close(dir_fd);
        return 2;
    }
    if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char holder[32] = "";
        ssize_t n = pread(lock_fd, holder, sizeof(holder) - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        log_msg(LOG_LEVEL_ERROR, "--data-dir %s is in use by another cachette (pid %s): one server per data directory",
                dir, holder[0] ? holder : "unknown");
        close(lock_fd);
        close(dir_fd);
        return 2;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(lock_fd, 0) != 0 || pwrite(lock_fd, pid, (size_t)n, 0) != n)
        log_msg(LOG_LEVEL_WARN, "cannot write the pid into %s/%s: %s", dir, LOCK_FILE, strerror(errno));

    struct persist *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        log_msg(LOG_LEVEL_ERROR, "out of memory");
        close(lock_fd);
        close(dir_fd);
        return 1;
    }
    p->settings = *settings;
    snprintf(p->dir, sizeof(p->dir), "%s", dir);
    p->settings.dir = p->dir;
    p->dir_fd = dir_fd;
    p->lock_fd = lock_fd;
    atomic_init(&p->loading, true);
    pthread_mutex_init(&p->mutex, NULL);
    monotonic_cond_init(&p->cond);
    pthread_mutex_init(&p->subscribers_lock, NULL);
    *out = p;
    return 0;
}

bool persist_saved_hash_key(const struct persist *p, uint64_t out[2])
{
    unsigned char header[SNAPSHOT_HEADER_SIZE];
    struct snapshot_header h;
    int fd = openat(p->dir_fd, SNAPSHOT_FILE, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok =
        pread(fd, header, sizeof(header), 0) == (ssize_t)sizeof(header) && snapshot_header_decode(header, &h) == NULL;
    close(fd);
    if (ok)
        memcpy(out, h.hash_key, sizeof(h.hash_key));
    return ok; /* anything wrong with the file is for the load to report */
}

/* ---- the change hook and durability ---------------------------------------- */

void persist_on_change(void *ctx, const struct store_change *change)
{
    struct persist *p = ctx;
    /* Read first: in the steady state no write touches the shared line. */
    if (!atomic_load_explicit(&p->dirty, memory_order_relaxed))
        atomic_store_explicit(&p->dirty, 1, memory_order_relaxed);
    if (!atomic_load_explicit(&p->logging, memory_order_acquire))
        return; /* loading (replayed changes are on disk already), or no log */
    int64_t offset = change->op == STORE_CHANGE_SET && change->expires_at_ms != 0 ? wall_offset(p) : 0;
    applog_append(p->log, change, offset);
}

uint64_t persist_visible_lsn(const struct persist *p)
{
    /* Called for every reply, also while loading: p->log is read only once `logging` says it is set. */
    if (p == NULL || p->settings.append_log != PERSIST_LOG_ALWAYS ||
        !atomic_load_explicit(&p->logging, memory_order_acquire))
        return 0;
    return applog_appended(p->log);
}

bool persist_is_durable(const struct persist *p, uint64_t lsn)
{
    if (p == NULL || p->settings.append_log != PERSIST_LOG_ALWAYS || p->log == NULL)
        return true;
    return applog_durable(p->log) >= lsn;
}

/* The log's notify: wake every front that holds replies. On the writer thread. */
static void notify_subscribers(void *ctx)
{
    struct persist *p = ctx;
    pthread_mutex_lock(&p->subscribers_lock);
    for (int i = 0; i < MAX_SUBSCRIBERS; i++)
        if (p->subscribers[i].fn != NULL)
            p->subscribers[i].fn(p->subscribers[i].ctx);
    pthread_mutex_unlock(&p->subscribers_lock);
}

int persist_subscribe(struct persist *p, void (*fn)(void *ctx), void *ctx)
{
    int handle = -1;
    pthread_mutex_lock(&p->subscribers_lock);
    for (int i = 0; i < MAX_SUBSCRIBERS && handle < 0; i++)
        if (p->subscribers[i].fn == NULL) {
            p->subscribers[i] = (struct subscriber){fn, ctx};
            handle = i;
        }
    pthread_mutex_unlock(&p->subscribers_lock);
    return handle;
}

void persist_unsubscribe(struct persist *p, int handle)
{
    if (handle < 0 || handle >= MAX_SUBSCRIBERS)
        return;
    pthread_mutex_lock(&p->subscribers_lock);
    p->subscribers[handle] = (struct subscriber){0};
    pthread_mutex_unlock(&p->subscribers_lock);
}

/* ---- loading ------------------------------------------------------------- */

struct loader {
    struct persist *p;
    int (*stop_requested)(void);
    uint64_t base_bytes; /* of the files before this one */
    int64_t now_unix_ms;
    uint64_t max_version;
    uint64_t applied, expired, dropped, dropped_bytes;
};

/* record_fn: applies one record to the store. */
static int apply_record(void *ctx, const struct record *r, uint64_t offset)
{
    struct loader *l = ctx;
    struct store *store = l->p->store;
    atomic_store_explicit(&l->p->load_bytes, l->base_bytes + offset, memory_order_relaxed);
    if (++l->applied % STOP_POLL_RECORDS == 0 && l->stop_requested != NULL && l->stop_requested())
        return 1;
    atomic_store_explicit(&l->p->load_records, l->applied, memory_order_relaxed);
    switch (r->op) {
    case RECORD_SET: {
        if (r->version > l->max_version)
            l->max_version = r->version;
        if (r->expires_unix_ms != 0 && r->expires_unix_ms <= l->now_unix_ms) {
            store_delete(store, r->key, r->key_len, 0); /* an older value of the key must not stay either */
            l->expired++;
            return 0;
        }
        struct store_value v = {.kind = r->kind,
                                .data = r->value,
                                .len = r->value_len,
                                .content_type = r->content_type,
                                .content_type_len = r->content_type_len};
        int64_t ttl = r->expires_unix_ms == 0 ? 0 : r->expires_unix_ms - l->now_unix_ms;
        if (store_restore(store, r->key, r->key_len, &v, ttl, r->version) != 0) {
            l->dropped++;
            l->dropped_bytes += r->key_len + r->value_len;
        }
        return 0;
    }
    case RECORD_DELETE:
        store_delete(store, r->key, r->key_len, 0);
        return 0;
    }
    return 0;
}

/* A file of the directory, mapped read-only. */
struct mapped {
    const unsigned char *data;
    size_t len;
};

/* Maps name; 0, or -1 with what is wrong in why. An empty file maps to len 0. */
static int map_file(struct persist *p, const char *name, struct mapped *m, char *why, size_t why_size)
{
    m->data = NULL;
    m->len = 0;
    /* O_NONBLOCK: a FIFO put where a file should be must not hang the start. */
    int fd = openat(p->dir_fd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(why, why_size, "cannot read it: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_size, "not a regular file (%s)", S_ISDIR(st.st_mode) ? "a directory" : "a special file");
        close(fd);
        return -1;
    }
    if (st.st_size > 0) {
        void *data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (data == MAP_FAILED) {
            snprintf(why, why_size, "cannot map it: %s", strerror(errno));
            close(fd);
            return -1;
        }
        madvise(data, (size_t)st.st_size, MADV_SEQUENTIAL);
        m->data = data;
        m->len = (size_t)st.st_size;
    }
    close(fd);
    return 0;
}

static void unmap_file(struct mapped *m)
{
    if (m->len != 0)
        munmap((void *)m->data, m->len);
}

/* The message for damage that stops start-up. */
static void report_damage(const struct persist *p, const char *name, const struct parse_report *rep)
{
    log_msg(LOG_LEVEL_ERROR,
            "cannot load %s/%s: at byte %" PRIu64 ": %s. Start with --recover to load every record that verifies "
            "and skip the rest, or move the file out of %s to start without it (docs/PERSISTENCE.md)",
            p->dir, name, rep->error_offset, rep->error, p->dir);
}

/* Under --recover: what was skipped in a file. */
static void report_recovered(const struct persist *p, const char *name, const struct parse_report *rep)
{
    if (rep->error[0] == '\0')
        return;
    log_msg(LOG_LEVEL_WARN,
            "--recover: %s/%s: first damage at byte %" PRIu64 ": %s; skipped %" PRIu64 " damaged region(s), %" PRIu64
            " bytes; loaded %" PRIu64 " record(s) that verify",
            p->dir, name, rep->error_offset, rep->error, rep->damaged, rep->skipped_bytes, rep->records);
}

/* The log files in the directory, sorted by number; removes leftover temporary files. */
static int list_logs(struct persist *p, uint64_t **seqs, size_t *count)
{
    *seqs = NULL;
    *count = 0;
    int fd = dup(p->dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    rewinddir(d);
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t seq;
        size_t n = strlen(de->d_name);
        if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0 &&
            (strncmp(de->d_name, "log.", 4) == 0 || strcmp(de->d_name, SNAPSHOT_TMP_FILE) == 0)) {
            unlinkat(p->dir_fd, de->d_name, 0); /* a write that a crash cut short; never renamed, never needed */
            continue;
        }
        if (!applog_name_parse(de->d_name, &seq))
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *grown = realloc(*seqs, cap * sizeof(**seqs));
            if (grown == NULL) {
                closedir(d);
                return -1;
            }
            *seqs = grown;
        }
        (*seqs)[(*count)++] = seq;
    }
    closedir(d);
    for (size_t i = 1; i < *count; i++) /* insertion sort: a handful of files */
        for (size_t j = i; j > 0 && (*seqs)[j - 1] > (*seqs)[j]; j--) {
            uint64_t t = (*seqs)[j];
            (*seqs)[j] = (*seqs)[j - 1];
            (*seqs)[j - 1] = t;
        }
    return 0;
}

/* The size of name in the directory, 0 if it has none. */
static uint64_t file_size(const struct persist *p, const char *name)
{
    struct stat st;
    return fstatat(p->dir_fd, name, &st, 0) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
}

/* Loads one file (snapshot or log). Returns 0, 1 for damage that stops start-up (logged), or -1 if stopped. */
static int load_file(struct loader *l, const char *name, bool is_snapshot, struct snapshot_header *snap)
{
    struct persist *p = l->p;
    struct mapped m;
    struct parse_report rep;
    char why[sizeof(rep.error)];
    if (map_file(p, name, &m, why, sizeof(why)) != 0) {
        memset(&rep, 0, sizeof(rep));
        snprintf(rep.error, sizeof(rep.error), "%s", why);
        if (!p->settings.recover) {
            report_damage(p, name, &rep);
            return 1;
        }
        log_msg(LOG_LEVEL_WARN, "--recover: skipping %s/%s: %s", p->dir, name, why);
        return 0;
    }
    enum parse_outcome o;
    struct log_header lh;
    if (is_snapshot)
        o = snapshot_parse(m.data, m.len, p->settings.recover, apply_record, l, snap, &rep);
    else
        o = applog_parse(m.data, m.len, p->settings.recover, apply_record, l, &lh, &rep);
    unmap_file(&m);
    l->base_bytes += m.len;
    atomic_store_explicit(&p->load_bytes, l->base_bytes, memory_order_relaxed);
    if (o == PARSE_STOPPED)
        return -1;
    if (o == PARSE_DAMAGED) {
        report_damage(p, name, &rep);
        return 1;
    }
    report_recovered(p, name, &rep);
    if (rep.torn_bytes != 0) {
        log_msg(LOG_LEVEL_WARN,
                "%s/%s: the last record is torn (what a crash leaves): dropped its %" PRIu64 " byte(s) at byte %" PRIu64
                "; every record before it is loaded",
                p->dir, name, rep.torn_bytes, rep.good_len);
        int fd = openat(p->dir_fd, name, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ftruncate(fd, (off_t)rep.good_len) != 0 || fsync(fd) != 0)
            log_msg(LOG_LEVEL_WARN, "cannot cut the torn record off %s/%s: %s", p->dir, name, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    return 0;
}

/* Loads the snapshot and the logs after it. 0, 1 (damage) or -1 (stopped). */
static int load_all(struct loader *l, uint64_t *next_seq, uint64_t *floor)
{
    struct persist *p = l->p;
    struct snapshot_header snap = {0};
    uint64_t *seqs;
    size_t count;
    if (list_logs(p, &seqs, &count) != 0) {
        log_msg(LOG_LEVEL_ERROR, "cannot list --data-dir %s: %s", p->dir, strerror(errno));
        return 1;
    }
    bool have_snapshot = faccessat(p->dir_fd, SNAPSHOT_FILE, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
    uint64_t total = have_snapshot ? file_size(p, SNAPSHOT_FILE) : 0;
    for (size_t i = 0; i < count; i++) {
        char name[APPLOG_NAME_MAX];
        applog_name(name, seqs[i]);
        total += file_size(p, name);
    }
    atomic_store_explicit(&p->load_bytes_total, total, memory_order_relaxed);

    int rc = have_snapshot ? load_file(l, SNAPSHOT_FILE, true, &snap) : 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        char name[APPLOG_NAME_MAX];
        applog_name(name, seqs[i]);
        if (have_snapshot && seqs[i] < snap.log_seq) {
            unlinkat(p->dir_fd, name, 0); /* the snapshot holds it: a crash came before its removal */
            continue;
        }
        rc = load_file(l, name, false, NULL);
    }
    *next_seq = snap.log_seq > 0 ? snap.log_seq : 1;
    if (count > 0 && seqs[count - 1] + 1 > *next_seq)
        *next_seq = seqs[count - 1] + 1;
    *floor = snap.version_floor > l->max_version ? snap.version_floor : l->max_version + 1;
    free(seqs);
    return rc;
}

static void *snapshot_main(void *arg);

int persist_load(struct persist *p, struct store *store, int (*stop_requested)(void))
{
    p->store = store;
    struct loader l = {.p = p, .stop_requested = stop_requested, .now_unix_ms = wall_ms(p)};
    struct store_stats before, after;
    store_stats(store, &before);
    int64_t started = monotonic_ms();
    uint64_t next_seq, floor;
    int rc = load_all(&l, &next_seq, &floor);
    if (rc != 0)
        return rc;
    store_raise_versions(store, floor);
    store_stats(store, &after);
    uint64_t evicted = after.evicted - before.evicted;
    log_msg(LOG_LEVEL_INFO,
            "loaded %zu entries from %s in %" PRId64 " ms (%" PRIu64 " records, %" PRIu64 " bytes read; %" PRIu64
            " expired while down)",
            after.entries, p->dir, monotonic_ms() - started, l.applied, l.base_bytes, l.expired);
    if (evicted + l.dropped != 0)
        log_msg(LOG_LEVEL_WARN,
                "--max-memory %zu is smaller than the saved data: %" PRIu64 " entries evicted by policy and %" PRIu64
                " (%" PRIu64 " bytes) not loaded",
                after.max_memory, evicted, l.dropped, l.dropped_bytes);

    p->next_log_seq = next_seq;
    if (p->settings.append_log != PERSIST_LOG_OFF) {
        char err[192];
        static const enum applog_sync sync[] = {[PERSIST_LOG_NO] = APPLOG_NO,
                                                [PERSIST_LOG_EVERYSEC] = APPLOG_EVERYSEC,
                                                [PERSIST_LOG_ALWAYS] = APPLOG_ALWAYS};
        p->log = applog_start(p->dir_fd, p->next_log_seq++, sync[p->settings.append_log], notify_subscribers, p, err,
                              sizeof(err));
        if (p->log == NULL) {
            log_msg(LOG_LEVEL_ERROR, "cannot start the append-only log in %s: %s", p->dir, err);
            return 1;
        }
        atomic_store_explicit(&p->logging, 1, memory_order_release);
    }
    if (pthread_create(&p->snapshot_thread, NULL, snapshot_main, p) != 0) {
        log_msg(LOG_LEVEL_ERROR, "cannot start the snapshot thread");
        return 1;
    }
    p->thread_started = true;
    p->loaded = true;
    atomic_store_explicit(&p->loading, false, memory_order_release);
    return 0;
}

bool persist_loading(const struct persist *p)
{
    return p != NULL && atomic_load_explicit(&p->loading, memory_order_acquire);
}

/* ---- snapshots ------------------------------------------------------------- */

/* Removes the log files before seq, which the snapshot just written holds. */
static void remove_logs_before(struct persist *p, uint64_t seq)
{
    uint64_t *seqs;
    size_t count;
    if (list_logs(p, &seqs, &count) != 0)
        return;
    for (size_t i = 0; i < count; i++) {
        char name[APPLOG_NAME_MAX];
        applog_name(name, seqs[i]);
        if (seqs[i] < seq && unlinkat(p->dir_fd, name, 0) != 0)
            log_msg(LOG_LEVEL_WARN, "cannot remove %s/%s: %s", p->dir, name, strerror(errno));
    }
    free(seqs);
}

/* Writes one snapshot (rotating the log first). On the snapshot thread, or in persist_close. */
static void take_snapshot(struct persist *p, struct persist_snapshot_result *r)
{
    int64_t started = monotonic_ms();
    struct snapshot_header h = {0};
    memset(r, 0, sizeof(*r));
    atomic_store_explicit(&p->dirty, 0, memory_order_relaxed); /* a change from now on is for the next one */
    pthread_mutex_lock(&p->mutex);
    uint64_t seq = p->next_log_seq++;
    pthread_mutex_unlock(&p->mutex);
    if (p->log != NULL && applog_rotate(p->log, seq, r->error, sizeof(r->error)) != 0) {
        log_msg(LOG_LEVEL_ERROR, "snapshot not taken: %s", r->error);
        goto done;
    }
    /* The floor is read after the rotation: a version given before it is below; one after, in the new file. */
    h = (struct snapshot_header){
        .version_floor = store_version_floor(p->store), .log_seq = seq, .created_unix_ms = wall_ms(p)};
    store_hash_key(p->store, h.hash_key);
    struct snapshot_stats st;
    if (snapshot_write(p->dir_fd, p->store, &h, wall_offset(p), &st, r->error, sizeof(r->error)) != 0) {
        log_msg(LOG_LEVEL_ERROR, "snapshot of %s failed: %s", p->dir, r->error);
        goto done;
    }
    remove_logs_before(p, seq);
    r->ok = true;
    r->entries = st.entries;
    r->bytes = st.bytes;
done:
    r->ms = monotonic_ms() - started;
    pthread_mutex_lock(&p->mutex);
    if (r->ok) {
        p->snapshots++;
        p->last_entries = r->entries;
        p->last_bytes = r->bytes;
        p->last_ms = r->ms;
        p->last_unix_ms = h.created_unix_ms;
    } else {
        p->snapshot_failures++;
    }
    pthread_mutex_unlock(&p->mutex);
    if (r->ok)
        log_msg(LOG_LEVEL_INFO, "snapshot: %" PRIu64 " entries, %" PRIu64 " bytes in %" PRId64 " ms", r->entries,
                r->bytes, r->ms);
}

/* Waits for a request, the interval, or stop. Returns with the mutex held; false on stop. */
static bool wait_for_snapshot(struct persist *p)
{
    int64_t interval = p->settings.snapshot_interval_ms;
    struct timespec until = monotonic_deadline(interval);
    while (!p->stopping && !p->requested) {
        if (interval <= 0) {
            pthread_cond_wait(&p->cond, &p->mutex);
        } else if (pthread_cond_timedwait(&p->cond, &p->mutex, &until) == ETIMEDOUT) {
            if (!atomic_load_explicit(&p->dirty, memory_order_relaxed)) {
                until = monotonic_deadline(interval); /* nothing changed: the last snapshot holds it all */
                continue;
            }
            p->running = true; /* the timer's own snapshot: a request meanwhile gets PERSIST_EBUSY */
            return !p->stopping;
        }
    }
    return !p->stopping;
}

static void *snapshot_main(void *arg)
{
    struct persist *p = arg;
    /*
     * A snapshot is background work: on a busy core the workers' requests
     * come first (nice 10 weighs about a tenth of a normal thread), and the
     * snapshot takes the idle time. The log's writer keeps its priority:
     * held replies wait for it.
     */
    setpriority(PRIO_PROCESS, (id_t)gettid(), SNAPSHOT_NICE);
    pthread_mutex_lock(&p->mutex);
    while (wait_for_snapshot(p)) {
        void (*done)(void *, const struct persist_snapshot_result *) = p->requested ? p->done : NULL;
        void *done_ctx = p->done_ctx;
        p->requested = false;
        p->running = true;
        pthread_mutex_unlock(&p->mutex);
        struct persist_snapshot_result r;
        take_snapshot(p, &r);
        pthread_mutex_lock(&p->mutex);
        p->running = false; /* before the answer: a client that is told it is done may ask again at once */
        pthread_mutex_unlock(&p->mutex);
        if (done != NULL)
            done(done_ctx, &r);
        pthread_mutex_lock(&p->mutex);
    }
    p->running = false;
    void (*done)(void *, const struct persist_snapshot_result *) = p->requested ? p->done : NULL;
    p->requested = false;
    pthread_mutex_unlock(&p->mutex);
    if (done != NULL) { /* asked for as the server stopped: its answer says so (the last snapshot follows) */
        struct persist_snapshot_result r = {.ok = false};
        snprintf(r.error, sizeof(r.error), "the server is stopping (it writes a snapshot as it stops)");
        done(p->done_ctx, &r);
    }
    return NULL;
}

int persist_request_snapshot(struct persist *p, void (*done)(void *ctx, const struct persist_snapshot_result *r),
                             void *ctx)
{
    if (persist_loading(p))
        return PERSIST_ELOADING;
    int rc = 0;
    pthread_mutex_lock(&p->mutex);
    if (p->running || p->requested || p->stopping) {
        rc = PERSIST_EBUSY;
    } else {
        p->requested = true;
        p->done = done;
        p->done_ctx = ctx;
        pthread_cond_signal(&p->cond);
    }
    pthread_mutex_unlock(&p->mutex);
    return rc;
}

void persist_stats(const struct persist *p, struct persist_stats *out)
{
    struct persist *mp = (struct persist *)p; /* the mutex is the only thing written */
    memset(out, 0, sizeof(*out));
    out->loading = persist_loading(p);
    out->load_bytes = atomic_load_explicit(&p->load_bytes, memory_order_relaxed);
    out->load_bytes_total = atomic_load_explicit(&p->load_bytes_total, memory_order_relaxed);
    out->load_records = atomic_load_explicit(&p->load_records, memory_order_relaxed);
    out->append_log = p->settings.append_log;
    pthread_mutex_lock(&mp->mutex);
    out->snapshot_running = p->running || p->requested;
    out->snapshots = p->snapshots;
    out->snapshot_failures = p->snapshot_failures;
    out->last_snapshot_entries = p->last_entries;
    out->last_snapshot_bytes = p->last_bytes;
    out->last_snapshot_ms = p->last_ms;
    out->last_snapshot_unix_ms = p->last_unix_ms;
    pthread_mutex_unlock(&mp->mutex);
    if (!out->loading && p->log != NULL) {
        struct applog_stats ls;
        applog_stats(p->log, &ls);
        out->log_bytes = ls.appended;
        out->log_fsyncs = ls.fsyncs;
        out->log_write_errors = ls.write_errors;
        out->log_buffered = ls.buffered;
    }
}

int persist_close(struct persist *p, bool final_snapshot)
{
    int rc = 0;
    if (p->thread_started) {
        pthread_mutex_lock(&p->mutex);
        p->stopping = true;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->mutex);
        pthread_join(p->snapshot_thread, NULL);
    }
    if (final_snapshot && p->loaded) {
        struct persist_snapshot_result r;
        take_snapshot(p, &r);
        rc = r.ok ? 0 : 1;
    }
    if (p->log != NULL) {
        atomic_store_explicit(&p->logging, 0, memory_order_release);
        applog_stop(p->log);
        if (final_snapshot && rc == 0)
            remove_logs_before(p, p->next_log_seq); /* the last file is empty: the snapshot came after it */
    }
    close(p->lock_fd);
    close(p->dir_fd);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->subscribers_lock);
    free(p);
    return rc;
}
