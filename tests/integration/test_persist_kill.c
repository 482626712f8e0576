/*
 * Crash consistency (issue 14, docs/PERSISTENCE.md): SIGKILL the server at
 * random moments under load, restart it on the same --data-dir, and check
 * every key against what its client was told.
 *
 * The load is a few writer threads, each on a keep-alive connection of its
 * own and each the only writer of its own keys. A writer sends one request
 * at a time: a PUT of the key's next value (a key's values only grow, so a
 * value names the write that stored it) or, now and then, a DELETE of a key
 * that holds one. Before sending, it notes the request as in flight; once a
 * 2xx response has arrived whole, it appends the write, with the time, to
 * the key's list of acknowledged writes. So at the kill a key has a state
 * it started the round with (what the previous restart showed), the
 * acknowledged writes since, in order, and at most one write in flight.
 *
 * After the restart each key may hold the state after its last
 * acknowledged write, or after the write in flight (applied and logged
 * before the kill, its reply lost with the process). judge() finds the
 * latest state the observed one equals; the acknowledged writes after it
 * are lost, and a state that is none of these (a value never sent, an old
 * value back after a later one was acknowledged and then deleted...) is
 * corruption. What the restart shows becomes the next round's start, and
 * each round goes on with the data of the one before.
 *
 *   - --append-log always: no acknowledged write may be lost (20 kills;
 *     PERSIST_KILLS sets how many, `make persist-kill-long` runs 200).
 *   - --append-log everysec: a process kill may lose what the log's writer
 *     had not yet handed to the OS (every 5 ms): the loss is measured and
 *     printed, and every lost acknowledgement must be younger than
 *     EVERYSEC_BOUND_MS at the kill (the setting promises ~1 s even to a
 *     machine crash; the bound is generous so that the scheduler cannot fail
 *     the test).
 *   - SIGKILL while a snapshot of BULK_ENTRIES entries is being written:
 *     the restart must load the previous snapshot and the log whole, every
 *     time, and leave no snapshot.tmp.
 *   - judge() itself, on made-up histories: each kind of loss it exists to
 *     catch, caught.
 *   - A probe, run only with PERSIST_KILL_PROBES=1: SIGKILL while the log
 *     rotates with --append-log no, which loses more than ~5 ms (see there).
 *
 * Kills land at a random moment within KILL_WINDOW_MS once every writer has
 * had a write acknowledged in the round (a precondition waited for, not a
 * sleep); every third round sends POST /snapshot first and kills while it
 * may still run, and with a short --snapshot-interval and BULK_FILLER
 * entries besides, other kills also land in and around the timer's
 * snapshots. How many kills left a snapshot.tmp (so landed during a
 * snapshot's write) is printed. The random seed is printed too, and
 * PERSIST_KILL_SEED replays its choices (not the timing). Under valgrind or
 * a sanitizer the server is many times slower, and the rounds and writers
 * are fewer. A failed test leaves its data directory (/tmp/cachette-kill-*)
 * for a look at the files.
 */
#define _GNU_SOURCE /* strcasestr */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../support/http.h"
#include "../support/procfs.h"
#include "../support/raw.h"
#include "../support/server.h"

/* The sanitizer builds (make asan, make tsan) are GCC's, which names the sanitizer in these. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#define KILLS               20 /* --append-log always; PERSIST_KILLS overrides */
#define EVERYSEC_KILLS      5
#define SNAPSHOT_KILLS      5 /* kills that land while snapshot.tmp is being written */
#define WRITERS             6
#define KEYS_PER_WRITER     32
#define KILL_WINDOW_MS      600 /* a kill lands within this long after every writer had an acknowledgement */
#define SNAPSHOT_EVERY      "250ms"
#define BULK_FILLER         20000  /* entries beside the writers' keys, so that the timer's snapshots take a while */
#define BULK_ENTRIES        200000 /* in the snapshot that is killed while being written */
#define BULK_VALUE_BYTES    100
#define BATCH               1000 /* keys per _mset or _mget (--max-batch) */
#define MARKERS             100  /* bulk keys rewritten (and logged) before each killed snapshot */
#define SAMPLE_KEYS         2000 /* of the others, checked after each of those restarts (all at the end) */
#define EVERYSEC_BOUND_MS   1500
#define PROBE_FILLER        600000 /* about 80 MB of log, unsynced with --append-log no */
#define PROBE_KILLS         3
#define PROBE_KILL_AFTER_MS 25
#define PROBE_BOUND_MS      15 /* the promise (~5 ms) with room for the scheduler */
#define ABSENT              (-1)
#define UNREADABLE          (-2) /* the key holds something that is not one of the values this test writes */

/* ---- how big a run is ----------------------------------------------------- */

struct scale {
    const char *what;
    int kills, everysec_kills, snapshot_kills, writers;
    size_t filler, bulk;
    int64_t patience_ms; /* the most any one wait may take: a load, the first acknowledgements */
};

/* The scale for the server in pid: full, or smaller when valgrind or a sanitizer slows it down. */
static struct scale scale_for(pid_t pid)
{
    struct scale s = {"release", KILLS, EVERYSEC_KILLS, SNAPSHOT_KILLS, WRITERS, BULK_FILLER, BULK_ENTRIES, 60000};
    if (getenv("CACHETTE_MEMCHECK") != NULL || procfs_runs_under_valgrind(pid))
        s = (struct scale){"the server under valgrind", 4, 2, 2, 2, 2000, 20000, 600000};
    else if (SANITIZED)
        s = (struct scale){"a sanitizer build", 8, 3, 3, 4, 5000, 50000, 300000};
    const char *kills = getenv("PERSIST_KILLS");
    if (kills != NULL && atoi(kills) > 0)
        s.kills = atoi(kills);
    return s;
}

static uint64_t rng_state;

/* xorshift64: the kill moments and the writers' choices (each writer has its own state). */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int64_t rng_below(uint64_t *s, int64_t n)
{
    return n <= 0 ? 0 : (int64_t)(rng_next(s) % (uint64_t)n);
}

static void seed_once(void)
{
    if (rng_state != 0)
        return;
    const char *given = getenv("PERSIST_KILL_SEED");
    rng_state = given != NULL ? strtoull(given, NULL, 10) : (uint64_t)now_ms() * 2654435761u ^ (uint64_t)getpid();
    if (rng_state == 0)
        rng_state = 1;
    print_message("  seed %" PRIu64 " (PERSIST_KILL_SEED replays its choices)\n", rng_state);
}

/* ---- what each key may hold ------------------------------------------------- */

/* One acknowledged write: the value stored, or ABSENT for a delete. */
struct ack {
    int64_t value;
    int64_t at_ms;
};

struct key_state {
    char name[24];
    int64_t start;     /* the state the round began with: a value, or ABSENT */
    int64_t last_sent; /* the greatest value ever sent (values only grow) */
    struct ack *acks;  /* acknowledged this round, in order */
    size_t n_acks, cap;
    int in_flight; /* a request was sent and no response came */
    int64_t in_flight_value;
};

static int64_t current_state(const struct key_state *k)
{
    return k->n_acks != 0 ? k->acks[k->n_acks - 1].value : k->start;
}

static void note_ack(struct key_state *k, int64_t value, int64_t at_ms)
{
    if (k->n_acks == k->cap) {
        k->cap = k->cap != 0 ? k->cap * 2 : 64;
        k->acks = realloc(k->acks, k->cap * sizeof(*k->acks));
        if (k->acks == NULL)
            abort(); /* off the test's thread: no cmocka assertion */
    }
    k->acks[k->n_acks++] = (struct ack){value, at_ms};
    k->in_flight = 0;
}

struct verdict {
    int known;              /* the observed state is one the key may have held */
    size_t lost;            /* acknowledged writes after it */
    int64_t oldest_lost_ms; /* when the first of them was acknowledged */
    int in_flight_kept;     /* it is the state after the write in flight */
};

/*
 * Where observed (a value, ABSENT or UNREADABLE) stands in k's history: the
 * latest state it equals (the round's start, or after an acknowledged write,
 * or after the write in flight) and how many acknowledged writes follow it.
 */
static struct verdict judge(const struct key_state *k, int64_t observed)
{
    struct verdict v = {0};
    if (observed == UNREADABLE)
        return v;
    if (k->in_flight && k->in_flight_value == observed) {
        v.known = v.in_flight_kept = 1;
        return v;
    }
    for (size_t i = k->n_acks + 1; i-- > 0;) {
        int64_t state = i == 0 ? k->start : k->acks[i - 1].value;
        if (state == observed) {
            v.known = 1;
            v.lost = k->n_acks - i;
            v.oldest_lost_ms = v.lost != 0 ? k->acks[i].at_ms : 0;
            return v;
        }
    }
    return v;
}

/* The next round starts from what the restart showed. */
static void restart_from(struct key_state *k, int64_t observed)
{
    k->start = observed;
    k->n_acks = 0;
    k->in_flight = 0;
}

static void describe(const struct key_state *k, int64_t observed, char *out, size_t size)
{
    snprintf(out, size,
             "%s: holds %" PRId64 " (-1: absent, -2: not a value of this test); the round began with %" PRId64
             ", %zu write(s) acknowledged since, the last %" PRId64 "; in flight: %s %" PRId64,
             k->name, observed, k->start, k->n_acks, current_state(k), k->in_flight ? "yes" : "no",
             k->in_flight ? k->in_flight_value : 0);
}

/* ---- the writers ------------------------------------------------------------ */

struct writer {
    struct round *round;
    struct key_state *keys; /* KEYS_PER_WRITER, this writer's alone */
    uint64_t rng;
    atomic_long acks;
    long deletes;
    char error[160]; /* what went wrong before the kill, if anything; read once failed is set */
    atomic_int failed;
    pthread_t thread;
};

struct round {
    unsigned port;
    atomic_int killing; /* set just before the SIGKILL: from then on a broken connection is expected */
    struct writer *writers;
    int n_writers;
};

/* Reads one response on fd into buf (NUL-terminated). Returns its status, or -1 if the connection ended first. */
static int read_reply(int fd, char *buf, size_t size)
{
    size_t have = 0;
    struct raw_res res;
    while (raw_parse(buf, have, &res, 1, 0) == 0) {
        ssize_t n = have + 1 < size ? recv(fd, buf + have, size - 1 - have, 0) : 0;
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = '\0';
    }
    return res.body + res.body_len == buf + have ? res.status : -1; /* one request at a time: nothing may follow */
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct round *round = w->round;
    char req[256], buf[2048];
    int fd = raw_try_connect(round->port);
    if (fd == -1) {
        snprintf(w->error, sizeof(w->error), "cannot connect: %s", strerror(errno));
        atomic_store(&w->failed, 1);
        return NULL;
    }
    struct timeval patience = {.tv_sec = 120}; /* a hang guard; a kill ends the connection at once */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof(patience));
    for (;;) {
        struct key_state *k = &w->keys[rng_below(&w->rng, KEYS_PER_WRITER)];
        int del = current_state(k) != ABSENT && rng_below(&w->rng, 8) == 0;
        int len;
        if (del) {
            len = snprintf(req, sizeof(req), "DELETE /cache/%s HTTP/1.1\r\nHost: t\r\n\r\n", k->name);
            k->in_flight_value = ABSENT;
        } else {
            char body[48];
            int body_len = snprintf(body, sizeof(body), "{\"value\":%" PRId64 "}", ++k->last_sent);
            len = snprintf(req, sizeof(req),
                           "PUT /cache/%s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                           "Content-Length: %d\r\n\r\n%s",
                           k->name, body_len, body);
            k->in_flight_value = k->last_sent;
        }
        k->in_flight = 1;
        int status = raw_send(fd, req, (size_t)len) == 0 ? read_reply(fd, buf, sizeof(buf)) : -1;
        if (status == -1) {
            if (!atomic_load(&round->killing)) {
                snprintf(w->error, sizeof(w->error), "the connection broke before the kill (%s)", k->name);
                atomic_store(&w->failed, 1);
            }
            break;
        }
        if (status < 200 || status > 299) {
            snprintf(w->error, sizeof(w->error), "%s %s answered %d: %.80s", del ? "DELETE" : "PUT", k->name, status,
                     buf);
            atomic_store(&w->failed, 1);
            break;
        }
        note_ack(k, k->in_flight_value, now_ms());
        w->deletes += del;
        atomic_fetch_add(&w->acks, 1);
    }
    close(fd);
    return NULL;
}

/* ---- bulk data: many keys written and read in batches ------------------------ */

static void bulk_key(char out[24], size_t i)
{
    snprintf(out, 24, "b%07zu", i);
}

/* The value of bulk key i at version v: BULK_VALUE_BYTES that name both. */
static void bulk_value(char out[BULK_VALUE_BYTES + 1], size_t i, unsigned v)
{
    int n = snprintf(out, BULK_VALUE_BYTES + 1, "%zu.%u:", i, v);
    for (int j = n; j < BULK_VALUE_BYTES; j++)
        out[j] = (char)('a' + (i + (size_t)j) % 26);
    out[BULK_VALUE_BYTES] = '\0';
}

static const long BULK_TIMEOUT_MS = 120000; /* a batch of a server under valgrind */

/*
 * The body of an _mset of bulk keys idx[from, to) at their versions, or,
 * with versions NULL, of an _mget of them; idx NULL means the keys from, to.
 * Returns its length.
 */
static size_t bulk_body(char *body, size_t cap, const size_t *idx, size_t from, size_t to, const unsigned *versions)
{
    size_t len = (size_t)snprintf(body, cap, versions != NULL ? "{\"entries\":[" : "{\"keys\":[");
    for (size_t i = from; i < to; i++) {
        size_t at = idx != NULL ? idx[i] : i;
        char key[24], value[BULK_VALUE_BYTES + 1];
        bulk_key(key, at);
        const char *comma = i == from ? "" : ",";
        if (versions == NULL) {
            len += (size_t)snprintf(body + len, cap - len, "%s\"%s\"", comma, key);
        } else {
            bulk_value(value, at, versions[at]);
            len += (size_t)snprintf(body + len, cap - len, "%s{\"key\":\"%s\",\"value\":\"%s\"}", comma, key, value);
        }
    }
    return len + (size_t)snprintf(body + len, cap - len, "]}");
}

/* Writes bulk keys idx[0..n) (idx NULL: 0..n) at their versions in _mset batches; each must be acknowledged. */
static void bulk_write(unsigned port, const size_t *idx, size_t n, const unsigned *versions)
{
    size_t cap = BATCH * (BULK_VALUE_BYTES + 48) + 32;
    char *body = malloc(cap);
    assert_non_null(body);
    CURL *easy = http_easy_new();
    for (size_t from = 0; from < n; from += BATCH) {
        size_t len = bulk_body(body, cap, idx, from, from + BATCH < n ? from + BATCH : n, versions);
        struct http_req req = {
            .method = "POST", .path = "/cache/_mset", .body = body, .body_len = len, .timeout_ms = BULK_TIMEOUT_MS};
        struct http_res res;
        assert_int_equal(http_do(easy, port, &req, &res), 0);
        if (res.status != 200)
            fail_msg("_mset answered %ld: %s", res.status, res.body);
        http_res_free(&res);
    }
    curl_easy_cleanup(easy);
    free(body);
}

/* Checks that bulk keys idx[0..n) (idx NULL: 0..n) hold their values at versions. */
static void expect_bulk(unsigned port, const size_t *idx, size_t n, const unsigned *versions)
{
    size_t cap = BATCH * 32 + 32;
    char *body = malloc(cap);
    assert_non_null(body);
    CURL *easy = http_easy_new();
    for (size_t from = 0; from < n; from += BATCH) {
        size_t to = from + BATCH < n ? from + BATCH : n, len = bulk_body(body, cap, idx, from, to, NULL);
        struct http_req req = {
            .method = "POST", .path = "/cache/_mget", .body = body, .body_len = len, .timeout_ms = BULK_TIMEOUT_MS};
        struct http_res res;
        assert_int_equal(http_do(easy, port, &req, &res), 0);
        json_t *entries = json_object_get(expect_json(&res, 200), "entries");
        for (size_t i = from; i < to; i++) {
            size_t at = idx != NULL ? idx[i] : i;
            char key[24], want[BULK_VALUE_BYTES + 1];
            bulk_key(key, at);
            bulk_value(want, at, versions[at]);
            const char *got = json_string_value(json_object_get(entries, key));
            if (got == NULL || strcmp(got, want) != 0)
                fail_msg("bulk key %s holds %s after the restart, not %s", key, got != NULL ? got : "nothing", want);
        }
        http_res_free(&res);
    }
    curl_easy_cleanup(easy);
    free(body);
}

/* ---- the server and its directory -------------------------------------------- */

struct site {
    char dir[64];
    const char *append_log;
    const char *snapshot_every;
    struct server s;
    int64_t patience_ms;
    long torn_restarts; /* restarts that cut a torn record off a log */
};

static int dir_has(const struct site *site, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", site->dir, name);
    return access(path, F_OK) == 0;
}

static json_int_t stat_entries(unsigned port)
{
    json_t *stats = get_stats(port);
    json_int_t n = json_int_member(stats, "entries");
    json_decref(stats);
    return n;
}

/* Starts the server on the site's directory and waits for the load to end (GET /health answers 200). */
static void site_start(struct site *site)
{
    const char *args[] = {"--data-dir",         site->dir, "--append-log", site->append_log, "--snapshot-interval",
                          site->snapshot_every, NULL};
    struct server_opts opts = {.args = args};
    if (server_start(&site->s, &opts) != 0)
        fail_msg("cachette did not start on %s (exit status %d)", site->dir, site->s.exit_status);
    int64_t deadline = now_ms() + site->patience_ms;
    for (;;) {
        struct http_req req = {.path = "/health"};
        struct http_res res;
        if (http_do(NULL, site->s.port, &req, &res) == 0 && res.status == 200) {
            http_res_free(&res);
            break;
        }
        http_res_free(&res);
        if (server_wait_exit(&site->s, 0) != -1 || now_ms() > deadline) {
            char *log = server_stderr(&site->s);
            fail_msg("the server did not load %s (exit status %d); stderr:\n%s", site->dir, site->s.exit_status, log);
        }
        sleep_ms(5);
    }
    if (dir_has(site, "snapshot.tmp"))
        fail_msg("%s/snapshot.tmp is still there once the load is done", site->dir);
    char *log = server_stderr(&site->s);
    site->torn_restarts += strstr(log, "is torn") != NULL;
    free(log);
}

/* SIGKILLs the server; returns the time of the kill. */
static int64_t site_kill(struct site *site)
{
    int64_t at = now_ms();
    server_signal(&site->s, SIGKILL);
    int status = server_wait_exit(&site->s, 30000);
    if (status != 128 + SIGKILL) {
        char *log = server_stderr(&site->s);
        fail_msg("the server ended with status %d, not by the SIGKILL; stderr:\n%s", status, log);
    }
    server_cleanup(&site->s);
    return at;
}

static void site_open(struct site *site, const char *append_log, const char *snapshot_every, int64_t patience_ms)
{
    memset(site, 0, sizeof(*site));
    snprintf(site->dir, sizeof(site->dir), "/tmp/cachette-kill-XXXXXX");
    assert_non_null(mkdtemp(site->dir));
    site->append_log = append_log;
    site->snapshot_every = snapshot_every;
    site->patience_ms = patience_ms;
}

/* Removes the directory and what the server left in it. */
static void site_close(struct site *site)
{
    server_cleanup(&site->s);
    DIR *d = opendir(site->dir);
    if (d != NULL) {
        for (struct dirent *de; (de = readdir(d)) != NULL;)
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
    }
    rmdir(site->dir);
}

/* Sends POST /snapshot on a connection of its own without waiting; returns the fd. */
static int request_snapshot(unsigned port)
{
    static const char req[] = "POST /snapshot HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";
    int fd = raw_connect(port);
    assert_int_equal(raw_send(fd, req, sizeof(req) - 1), 0);
    return fd;
}

/*
 * Waits until snapshot.tmp exists or the POST /snapshot on fd has been
 * answered (a snapshot quicker than the polling). Returns 1 if the file was
 * seen.
 */
static int wait_for_snapshot_file(const struct site *site, int fd, int64_t deadline)
{
    for (;;) {
        if (dir_has(site, "snapshot.tmp"))
            return 1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) != 0 || now_ms() > deadline)
            return 0;
        struct timespec pause = {.tv_nsec = 200000};
        nanosleep(&pause, NULL);
    }
}

/* ---- kills under load -------------------------------------------------------- */

struct kill_run {
    struct site site;
    struct scale scale;
    struct key_state *keys;
    size_t n_keys;
    unsigned *filler_versions; /* all 0 */
    /* Figures. */
    long acks, deletes, in_flight_kept, snapshot_kills, lost;
    int64_t delay_min_ms, delay_max_ms, delay_sum_ms; /* the kill moments of the rounds without a snapshot request */
    int delays;
    int64_t worst_age_ms; /* the oldest lost acknowledgement, at its kill */
};

/* Reads every writer key back with one _mget: observed[i] is a value, ABSENT or UNREADABLE. */
static void observe(unsigned port, const struct key_state *keys, size_t n, int64_t *observed)
{
    size_t cap = n * 32 + 32;
    char *body = malloc(cap);
    assert_non_null(body);
    size_t len = (size_t)snprintf(body, cap, "{\"keys\":[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(body + len, cap - len, "%s\"%s\"", i == 0 ? "" : ",", keys[i].name);
    len += (size_t)snprintf(body + len, cap - len, "]}");
    struct http_req req = {
        .method = "POST", .path = "/cache/_mget", .body = body, .body_len = len, .timeout_ms = BULK_TIMEOUT_MS};
    struct http_res res;
    assert_int_equal(http_do(NULL, port, &req, &res), 0);
    json_t *reply = expect_json(&res, 200), *entries = json_object_get(reply, "entries"),
           *missing = json_object_get(reply, "missing");
    assert_non_null(entries);
    assert_non_null(missing);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(entries, keys[i].name);
        observed[i] = v == NULL                                         ? ABSENT
                      : json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v)
                                                                        : UNREADABLE;
    }
    size_t present = 0;
    for (size_t i = 0; i < n; i++)
        present += observed[i] != ABSENT;
    assert_int_equal(present + json_array_size(missing), n);
    http_res_free(&res);
    free(body);
}

/*
 * Judges every key after a restart: returns how many acknowledged writes
 * were lost, fails the test on a state a key never had, and makes what was
 * observed the next round's start.
 */
static long check_keys(struct kill_run *run, int64_t killed_at, int64_t *worst_age_ms)
{
    int64_t *observed = calloc(run->n_keys, sizeof(*observed));
    assert_non_null(observed);
    observe(run->site.s.port, run->keys, run->n_keys, observed);
    long lost = 0, lost_keys = 0;
    size_t present = 0;
    for (size_t i = 0; i < run->n_keys; i++) {
        struct key_state *k = &run->keys[i];
        struct verdict v = judge(k, observed[i]);
        char what[256];
        describe(k, observed[i], what, sizeof(what));
        if (!v.known)
            fail_msg("after a SIGKILL and a restart on %s, %s: a state the key never had", run->site.dir, what);
        if (v.lost != 0) {
            int64_t age = killed_at - v.oldest_lost_ms;
            if (lost_keys++ < 4)
                print_message("    lost: %s (%zu acknowledged, the oldest %" PRId64 " ms before the kill)\n", what,
                              v.lost, age);
            if (age > *worst_age_ms)
                *worst_age_ms = age;
        }
        lost += (long)v.lost;
        run->in_flight_kept += v.in_flight_kept;
        present += observed[i] != ABSENT;
        restart_from(k, observed[i]);
    }
    free(observed);
    /* Nothing else came back or went: the filler is whole (checked value by value at the end) and no stray key. */
    assert_int_equal(stat_entries(run->site.s.port), (json_int_t)(run->scale.filler + present));
    return lost;
}

enum kill_style {
    KILL_AT_RANDOM,         /* within KILL_WINDOW_MS */
    KILL_IN_SNAPSHOT_WRITE, /* after POST /snapshot, once snapshot.tmp exists, within a snapshot's duration */
    KILL_IN_ROTATION,       /* PROBE_KILL_AFTER_MS after POST /snapshot: while the log rotates, if it takes that long */
};

/* Waits from the moment every writer has an acknowledgement to the kill's. Returns a POST /snapshot's fd, or -1. */
static int wait_for_the_moment(struct kill_run *run, enum kill_style style)
{
    unsigned port = run->site.s.port;
    if (style == KILL_IN_ROTATION) {
        int fd = request_snapshot(port);
        sleep_ms(PROBE_KILL_AFTER_MS);
        return fd;
    }
    if (style == KILL_IN_SNAPSHOT_WRITE) {
        json_t *stats = get_stats(port);
        json_int_t took = json_int_member(json_object_get(stats, "persistence"), "last_snapshot_ms");
        json_decref(stats);
        int fd = request_snapshot(port);
        wait_for_snapshot_file(&run->site, fd, now_ms() + run->scale.patience_ms);
        sleep_ms((int)rng_below(&rng_state, took + 1));
        return fd;
    }
    int64_t delay = rng_below(&rng_state, KILL_WINDOW_MS);
    if (run->delays++ == 0 || delay < run->delay_min_ms)
        run->delay_min_ms = delay;
    run->delay_max_ms = delay > run->delay_max_ms ? delay : run->delay_max_ms;
    run->delay_sum_ms += delay;
    sleep_ms((int)delay);
    return -1;
}

/*
 * One round: writers on the running server until every one has had an
 * acknowledgement, then the moment style picks, SIGKILL, restart, judge.
 * Returns the acknowledged writes lost.
 */
static long kill_round(struct kill_run *run, int number, enum kill_style style, int64_t *age_ms)
{
    struct round round = {.port = run->site.s.port, .n_writers = run->scale.writers};
    struct writer *writers = calloc((size_t)round.n_writers, sizeof(*writers));
    assert_non_null(writers);
    round.writers = writers;
    for (int i = 0; i < round.n_writers; i++) {
        writers[i] = (struct writer){
            .round = &round, .keys = &run->keys[(size_t)i * KEYS_PER_WRITER], .rng = rng_next(&rng_state)};
        assert_int_equal(pthread_create(&writers[i].thread, NULL, writer_main, &writers[i]), 0);
    }
    /* The precondition: every writer has been acknowledged at least once in this round. */
    int64_t deadline = now_ms() + run->scale.patience_ms;
    for (int i = 0; i < round.n_writers; i++)
        while (atomic_load(&writers[i].acks) == 0 && !atomic_load(&writers[i].failed) && now_ms() < deadline)
            sleep_ms(1);
    int snapshot_fd = wait_for_the_moment(run, style);
    atomic_store(&round.killing, 1);
    int64_t killed_at = site_kill(&run->site);
    long acks = 0;
    for (int i = 0; i < round.n_writers; i++) {
        pthread_join(writers[i].thread, NULL);
        acks += atomic_load(&writers[i].acks);
        run->deletes += writers[i].deletes;
    }
    if (snapshot_fd != -1)
        close(snapshot_fd);
    for (int i = 0; i < round.n_writers; i++) {
        if (atomic_load(&writers[i].failed))
            fail_msg("round %d, writer %d: %s", number, i, writers[i].error);
        if (atomic_load(&writers[i].acks) == 0)
            fail_msg("round %d, writer %d: no write acknowledged within %" PRId64 " ms", number, i,
                     run->scale.patience_ms);
    }
    free(writers);
    run->acks += acks;
    run->snapshot_kills += dir_has(&run->site, "snapshot.tmp");
    site_start(&run->site);
    return check_keys(run, killed_at, age_ms);
}

/* Starts the server on a new directory and writes the filler (filler entries, or the scale's when 0). */
static void kill_run_open(struct kill_run *run, const char *append_log, const char *snapshot_every, size_t filler)
{
    seed_once();
    site_open(&run->site, append_log, snapshot_every, 60000);
    site_start(&run->site);
    run->scale = scale_for(run->site.s.pid);
    if (filler != 0)
        run->scale.filler = filler;
    run->site.patience_ms = run->scale.patience_ms;
    run->n_keys = (size_t)run->scale.writers * KEYS_PER_WRITER;
    run->keys = calloc(run->n_keys, sizeof(*run->keys));
    run->filler_versions = calloc(run->scale.filler, sizeof(*run->filler_versions));
    assert_non_null(run->keys);
    assert_non_null(run->filler_versions);
    for (size_t i = 0; i < run->n_keys; i++) {
        snprintf(run->keys[i].name, sizeof(run->keys[i].name), "w%zu-k%zu", i / KEYS_PER_WRITER, i % KEYS_PER_WRITER);
        run->keys[i].start = ABSENT;
    }
    bulk_write(run->site.s.port, NULL, run->scale.filler, run->filler_versions);
}

/* A clean stop, one more start: the keys hold exactly what the last restart showed, and the filler is whole. */
static void kill_run_close(struct kill_run *run)
{
    expect_clean_exit(&run->site.s, 30000);
    site_start(&run->site);
    int64_t *observed = calloc(run->n_keys, sizeof(*observed));
    assert_non_null(observed);
    observe(run->site.s.port, run->keys, run->n_keys, observed);
    for (size_t i = 0; i < run->n_keys; i++)
        if (observed[i] != run->keys[i].start)
            fail_msg("after a clean stop, %s holds %" PRId64 ", not %" PRId64, run->keys[i].name, observed[i],
                     run->keys[i].start);
    free(observed);
    expect_bulk(run->site.s.port, NULL, run->scale.filler, run->filler_versions);
    expect_clean_exit(&run->site.s, 30000);
    site_close(&run->site);
    for (size_t i = 0; i < run->n_keys; i++)
        free(run->keys[i].acks);
    free(run->keys);
    free(run->filler_versions);
}

static void print_kill_moments(const struct kill_run *run)
{
    print_message("  kills at random moments: %lld-%lld ms (mean %lld) after every writer had an acknowledgement, in "
                  "%d rounds; the other rounds killed while a requested snapshot ran\n",
                  (long long)run->delay_min_ms, (long long)run->delay_max_ms,
                  (long long)(run->delays != 0 ? run->delay_sum_ms / run->delays : 0), run->delays);
}

static void sigkill_with_append_log_always_loses_no_acknowledged_write(void **state)
{
    (void)state;
    struct kill_run run = {0};
    kill_run_open(&run, "always", SNAPSHOT_EVERY, 0);
    int64_t started = now_ms(), age_ms = 0;
    for (int i = 0; i < run.scale.kills; i++)
        run.lost += kill_round(&run, i, i % 3 == 2 ? KILL_IN_SNAPSHOT_WRITE : KILL_AT_RANDOM, &age_ms);
    print_message("  --append-log %s (%s): %d SIGKILLs under load of %d writers in %" PRId64
                  " ms: %ld writes acknowledged (%ld of them deletes), lost %ld; %ld unacknowledged writes "
                  "found applied; %ld kills during a snapshot's write, %ld restarts cut a torn log record\n",
                  run.site.append_log, run.scale.what, run.scale.kills, run.scale.writers, now_ms() - started, run.acks,
                  run.deletes, run.lost, run.in_flight_kept, run.snapshot_kills, run.site.torn_restarts);
    print_kill_moments(&run);
    assert_true(run.acks > 0);
    assert_int_equal(run.lost, 0);
    kill_run_close(&run);
}

static void sigkill_with_append_log_everysec_loses_only_the_last_moments(void **state)
{
    (void)state;
    struct kill_run run = {0};
    kill_run_open(&run, "everysec", SNAPSHOT_EVERY, 0);
    long worst_kill = 0;
    for (int i = 0; i < run.scale.everysec_kills; i++) {
        int64_t age_ms = 0;
        long acks_before = run.acks;
        long lost = kill_round(&run, i, i % 3 == 2 ? KILL_IN_SNAPSHOT_WRITE : KILL_AT_RANDOM, &age_ms);
        print_message("  kill %d: %ld of %ld acknowledged writes lost, the oldest acknowledged %" PRId64
                      " ms before the kill\n",
                      i + 1, lost, run.acks - acks_before, age_ms);
        run.lost += lost;
        worst_kill = lost > worst_kill ? lost : worst_kill;
        run.worst_age_ms = age_ms > run.worst_age_ms ? age_ms : run.worst_age_ms;
    }
    print_message("  --append-log %s (%s): %d SIGKILLs: %ld writes acknowledged, %ld lost (at most %ld in "
                  "one kill), the oldest lost acknowledgement %" PRId64 " ms old at its kill (bound %d ms)\n",
                  run.site.append_log, run.scale.what, run.scale.everysec_kills, run.acks, run.lost, worst_kill,
                  run.worst_age_ms, EVERYSEC_BOUND_MS);
    print_kill_moments(&run);
    assert_true(run.acks > 0);
    assert_true(run.worst_age_ms < EVERYSEC_BOUND_MS);
    kill_run_close(&run);
}

/* ---- a probe: SIGKILL while the log rotates, with --append-log no ------------ */

/*
 * Not run by default (PERSIST_KILL_PROBES=1 runs it): what it measures
 * depends on how fast the disk syncs, so it cannot be a test that never
 * flakes. docs/PERSISTENCE.md promises that with --append-log no (and
 * everysec) a process crash loses at most the last ~5 ms. The log's writer
 * thread, though, calls fdatasync itself: on the old file at every rotation
 * (applog.c, switch_file) and, with everysec, once a second. Appends made
 * meanwhile wait in memory, so a SIGKILL during that fsync loses every
 * acknowledgement since it began. With --append-log no the old file holds
 * everything written since it was opened, unsynced: PROBE_FILLER entries of
 * it make the rotation's fsync last long enough to kill inside it.
 */
static void probe_sigkill_during_a_rotation_with_append_log_no(void **state)
{
    (void)state;
    struct kill_run run = {0};
    kill_run_open(&run, "no", "0", PROBE_FILLER);
    int64_t worst_ms = 0;
    for (int i = 0; i < PROBE_KILLS; i++) {
        if (i != 0) /* the restart began a new log: give it unsynced megabytes again */
            bulk_write(run.site.s.port, NULL, run.scale.filler, run.filler_versions);
        int64_t age_ms = 0;
        long acks_before = run.acks;
        long lost = kill_round(&run, i, KILL_IN_ROTATION, &age_ms);
        print_message("  kill %d, %d ms after POST /snapshot: %ld of %ld acknowledged writes lost, the oldest "
                      "acknowledged %" PRId64 " ms before the kill\n",
                      i + 1, PROBE_KILL_AFTER_MS, lost, run.acks - acks_before, age_ms);
        worst_ms = age_ms > worst_ms ? age_ms : worst_ms;
    }
    print_message("  --append-log no, SIGKILL while the log rotates: the oldest lost acknowledgement was %" PRId64
                  " ms old (promise: ~5 ms; bound %d ms)\n",
                  worst_ms, PROBE_BOUND_MS);
    assert_true(worst_ms < PROBE_BOUND_MS);
    kill_run_close(&run);
}

/* ---- SIGKILL while a snapshot is written --------------------------------------- */

static void sigkill_during_a_snapshot_leaves_the_previous_one_whole(void **state)
{
    (void)state;
    seed_once();
    struct site site;
    site_open(&site, "always", "0", 60000);
    site_start(&site);
    struct scale scale = scale_for(site.s.pid);
    site.patience_ms = scale.patience_ms;
    size_t n = scale.bulk;
    unsigned *versions = calloc(n, sizeof(*versions));
    /* The keys rewritten since the good snapshot, then room for a sample of the others. */
    size_t *touched = malloc(((size_t)(3 * scale.snapshot_kills) * MARKERS + SAMPLE_KEYS) * sizeof(*touched));
    size_t n_touched = 0;
    assert_non_null(versions);
    assert_non_null(touched);
    int64_t started = now_ms();
    bulk_write(site.s.port, NULL, n, versions);

    /* The good snapshot every kill below must fall back to. */
    struct http_res res;
    http_call(site.s.port, "POST", "/snapshot", NULL, &res);
    json_int_t snapshot_ms = json_int_member(expect_json(&res, 200), "milliseconds");
    assert_int_equal(json_int_member(res.json, "entries"), (json_int_t)n);
    http_res_free(&res);

    int mid_write = 0, attempts = 0;
    int64_t load_ms = 0;
    for (; mid_write < scale.snapshot_kills && attempts < 3 * scale.snapshot_kills; attempts++) {
        /* Writes that only the log holds: the killed snapshot would have been the first to have them. */
        for (size_t i = 0; i < MARKERS; i++) {
            touched[n_touched] = (size_t)rng_below(&rng_state, (int64_t)n);
            versions[touched[n_touched++]] = (unsigned)attempts + 1;
        }
        bulk_write(site.s.port, touched + n_touched - MARKERS, MARKERS, versions);
        int fd = request_snapshot(site.s.port);
        int seen = wait_for_snapshot_file(&site, fd, now_ms() + scale.patience_ms);
        sleep_ms((int)rng_below(&rng_state, snapshot_ms * 3 / 4 + 1));
        site_kill(&site);
        close(fd);
        int cut = dir_has(&site, "snapshot.tmp");
        mid_write += cut;
        if (!seen && !cut)
            print_message("  attempt %d: the snapshot was written before the kill\n", attempts + 1);
        int64_t restarted = now_ms();
        site_start(&site);
        load_ms += now_ms() - restarted;
        /* Every key is there; those rewritten since the good snapshot and a sample of the rest hold their values. */
        assert_int_equal(stat_entries(site.s.port), (json_int_t)n);
        for (size_t i = 0; i < SAMPLE_KEYS; i++)
            touched[n_touched + i] = (size_t)rng_below(&rng_state, (int64_t)n);
        expect_bulk(site.s.port, touched, n_touched + SAMPLE_KEYS, versions);
    }
    print_message("  SIGKILL during a snapshot of %zu entries (%s; a whole one takes %lld ms): %d kills, %d of "
                  "them while snapshot.tmp was being written; every restart loaded all %zu entries (in %lld ms on "
                  "average) and left no snapshot.tmp; %" PRId64 " ms in all\n",
                  n, scale.what, (long long)snapshot_ms, attempts, mid_write, n,
                  (long long)(load_ms / (attempts ? attempts : 1)), now_ms() - started);
    assert_true(mid_write >= 1);

    /* After all that, a clean stop writes a snapshot that holds everything, every value checked. */
    expect_clean_exit(&site.s, 60000);
    site_start(&site);
    assert_int_equal(stat_entries(site.s.port), (json_int_t)n);
    expect_bulk(site.s.port, NULL, n, versions);
    expect_clean_exit(&site.s, 60000);
    site_close(&site);
    free(versions);
    free(touched);
}

/* ---- the checker itself -------------------------------------------------------- */

/* judge() must report what the tests above exist to catch: each of these histories is one of them. */
static void the_checker_catches_lost_and_invented_states(void **state)
{
    (void)state;
    struct key_state k = {.name = "k", .start = 3, .last_sent = 3};
    struct verdict v = judge(&k, 3);
    assert_true(v.known && v.lost == 0);
    assert_false(judge(&k, 4).known);      /* a value never sent */
    assert_false(judge(&k, ABSENT).known); /* a key that was never deleted, gone */
    assert_false(judge(&k, UNREADABLE).known);

    note_ack(&k, 4, 100);
    note_ack(&k, 5, 200);
    note_ack(&k, ABSENT, 300); /* an acknowledged delete */
    v = judge(&k, 5);          /* the delete lost */
    assert_true(v.known);
    assert_int_equal(v.lost, 1);
    assert_int_equal(v.oldest_lost_ms, 300);
    v = judge(&k, 3); /* everything since the start lost */
    assert_int_equal(v.lost, 3);
    assert_int_equal(v.oldest_lost_ms, 100);
    v = judge(&k, ABSENT);
    assert_true(v.known && v.lost == 0);

    k.in_flight = 1;
    k.in_flight_value = 6;
    v = judge(&k, 6); /* the write in flight applied: allowed */
    assert_true(v.known && v.lost == 0 && v.in_flight_kept);
    assert_false(judge(&k, 7).known); /* but not one past it */
    restart_from(&k, 6);
    assert_true(judge(&k, 6).known);
    assert_false(judge(&k, 5).known); /* once the restart showed 6, 5 may never come back */
    free(k.acks);
}

int main(void)
{
    const struct CMUnitTest probes[] = {
        cmocka_unit_test(probe_sigkill_during_a_rotation_with_append_log_no),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_checker_catches_lost_and_invented_states),
        cmocka_unit_test(sigkill_with_append_log_always_loses_no_acknowledged_write),
        cmocka_unit_test(sigkill_with_append_log_everysec_loses_only_the_last_moments),
        cmocka_unit_test(sigkill_during_a_snapshot_leaves_the_previous_one_whole),
    };
    signal(SIGPIPE, SIG_IGN);
    if (getenv("PERSIST_KILL_PROBES") != NULL)
        return support_exit_code(cmocka_run_group_tests(probes, NULL, NULL));
    return support_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
