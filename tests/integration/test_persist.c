/*
 * Persistence (issue 14) against the real binary: what a data directory
 * keeps across a clean restart and a crash, how the server meets every kind
 * of damage to its files (with and without --recover), the directory lock,
 * POST /snapshot, the loading state, the memory bound while loading, and the
 * figures in /stats and /metrics. docs/PERSISTENCE.md is the specification.
 *
 * Every test makes its own data directories under /tmp (removed at the end,
 * or when the binary exits after a failure) and starts its own servers,
 * each stopped with an assertion on its exit status, so a sanitizer or
 * valgrind report fails the test that stopped it. Damaged files are built
 * byte by byte from the documented layout (tests/support/datafile.h), which
 * is how a test can name the exact offset the server must report; a crash
 * is a SIGKILL, and the torn log tails are appended to logs the server
 * wrote itself.
 *
 * Nothing here sleeps for correctness: the load is waited for by polling
 * /health with a deadline, and the tests that need something to be slow (a
 * load to watch, a snapshot to collide with) try again, or grow their data,
 * until they see it, a bounded number of times, and fail saying so if they
 * never do.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../support/codec.h"
#include "../support/datafile.h"
#include "../support/exposition.h"
#include "../support/http.h"
#include "../support/server.h"

#define STOP_TIMEOUT_MS     60000  /* a final snapshot under valgrind on a loaded machine */
#define LOAD_TIMEOUT_MS     180000 /* the largest load, under valgrind */
#define SNAPSHOT_TIMEOUT_MS 120000
#define MAX_VALUE           (256 * 1024)

/* Whether the server runs under valgrind (make valgrind): data sets are then scaled down. */
static int server_is_slow(void)
{
    return strstr(server_binary(), "valgrind") != NULL;
}

/* ---- the process ------------------------------------------------------------ */

static void expect_contains(const char *haystack, const char *needle, const char *what)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("%s does not contain '%s'; it is:\n%s", what, needle, haystack);
}

static void make_dir(char *dir)
{
    if (df_dir_make(dir, 64) != 0)
        fail_msg("cannot make a data directory under /tmp");
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    if (df_write(dir, name, data, len) != 0)
        fail_msg("cannot write %s/%s", dir, name);
}

/* args: "--data-dir", dir, then extra (NULL-terminated, may be NULL), then NULL. */
static void data_dir_args(const char **args, size_t cap, const char *dir, const char *const *extra)
{
    size_t n = 0;
    args[n++] = "--data-dir";
    args[n++] = dir;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        assert_true(n + 1 < cap);
        args[n++] = extra[i];
    }
    args[n] = NULL;
}

/* Starts the server on dir with extra flags; returns as soon as it listens, the load perhaps still running. */
static void start_loading(struct server *s, const char *dir, const char *const *extra)
{
    const char *args[32];
    data_dir_args(args, 32, dir, extra);
    struct server_opts opts = {.args = args};
    if (server_start(s, &opts) != 0)
        fail_msg("the server did not start on %s (exit status %d)", dir, s->exit_status);
}

/* GET path on a fresh connection; 0 with *res, or -1 when nothing answered. */
static int try_get(unsigned port, const char *path, struct http_res *res)
{
    struct http_req req = {.path = path};
    if (http_do(NULL, port, &req, res) == 0)
        return 0;
    http_res_free(res);
    return -1;
}

/* Polls /health until 200 (the load is done); fails with the server's stderr if it exits or stays 503. */
static void wait_loaded(struct server *s)
{
    int64_t deadline = now_ms() + LOAD_TIMEOUT_MS;
    long status = 0;
    while (now_ms() < deadline) {
        struct http_res res;
        if (try_get(s->port, "/health", &res) == 0) {
            status = res.status;
            http_res_free(&res);
            if (status == 200)
                return;
            if (status != 503)
                fail_msg("GET /health answered %ld while loading", status);
        } else if (server_wait_exit(s, 0) != -1 || s->pid == 0) {
            char *err = server_stderr(s);
            fail_msg("the server exited with status %d while loading; stderr:\n%s", s->exit_status, err);
        }
        sleep_ms(10);
    }
    fail_msg("GET /health still answers %ld after %d ms", status, LOAD_TIMEOUT_MS);
}

static void start_on(struct server *s, const char *dir, const char *const *extra)
{
    start_loading(s, dir, extra);
    wait_loaded(s);
}

/* A process crash: SIGKILL, nothing flushed or saved. */
static void crash(struct server *s)
{
    server_signal(s, SIGKILL);
    int status = server_wait_exit(s, STOP_TIMEOUT_MS);
    server_cleanup(s);
    assert_int_equal(status, 128 + SIGKILL);
}

/* SIGTERM; asserts exit status 0 and returns the server's stderr (caller frees). */
static char *stop_clean(struct server *s)
{
    int status = server_stop(s, STOP_TIMEOUT_MS);
    char *err = server_stderr(s);
    server_cleanup(s);
    if (status != 0) {
        free(err);
        fail_msg("exit status %d on SIGTERM, expected 0", status);
    }
    return err;
}

static void stop_and_forget(struct server *s)
{
    free(stop_clean(s));
}

/* Makes a fresh data directory into dir (64 bytes) and starts a server on it with flags (may be NULL). */
static void start_fresh(char *dir, struct server *s, const char *const *flags)
{
    make_dir(dir);
    start_on(s, dir, flags);
}

/* Stops the server cleanly (exit 0) and removes its data directory. */
static void finish(char *dir, struct server *s)
{
    stop_and_forget(s);
    df_dir_remove(dir);
}

/* Snapshots only when asked: tests count them, so the timer must not add any. */
static const char *const on_request[] = {"--snapshot-interval", "0", NULL};

/*
 * Starts the server on dir and expects it to exit by itself, without ever
 * answering /health with 200 (as a server that refuses its data directory
 * does: it listens, answers 503 while it reads the files, then exits).
 * Returns the exit status; *err is its stderr (caller frees).
 */
static int expect_no_start(const char *dir, char **err)
{
    const char *args[32];
    data_dir_args(args, 32, dir, NULL);
    struct server_opts opts = {.args = args, .quiet = 1};
    struct server s;
    if (server_start(&s, &opts) == 0) {
        int64_t deadline = now_ms() + LOAD_TIMEOUT_MS;
        while (server_wait_exit(&s, 20) == -1 && s.pid != 0) {
            struct http_res res;
            if (try_get(s.port, "/health", &res) == 0) {
                long status = res.status;
                http_res_free(&res);
                if (status == 200) {
                    server_stop(&s, STOP_TIMEOUT_MS);
                    char *text = server_stderr(&s);
                    server_cleanup(&s);
                    fail_msg("the server started on %s, which it should refuse; stderr:\n%s", dir, text);
                }
            }
            if (now_ms() > deadline) {
                server_cleanup(&s);
                fail_msg("the server on %s neither started nor exited within %d ms", dir, LOAD_TIMEOUT_MS);
            }
        }
    }
    *err = server_stderr(&s);
    int status = s.exit_status;
    server_cleanup(&s);
    return status;
}

/* The names in dir other than . and .., sorted, separated by spaces, into out. */
static void list_dir(const char *dir, char *out, size_t size)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        fail_msg("cannot list %s", dir);
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0 && len < size)
            len += (size_t)snprintf(out + len, size - len, "%s%s", len ? " " : "", names[i]->d_name);
        free(names[i]);
    }
    free(names);
}

static void expect_listing(const char *dir, const char *want)
{
    char got[1024];
    list_dir(dir, got, sizeof(got));
    if (strcmp(got, want) != 0)
        fail_msg("%s holds '%s', expected '%s'", dir, got, want);
}

/* The one log file in dir into name (size 32); fails unless there is exactly one. */
static void the_log_file(const char *dir, char *name)
{
    char got[1024];
    list_dir(dir, got, sizeof(got));
    const char *at = strstr(got, "log.");
    if (at == NULL || strstr(at + 4, "log.") != NULL || strlen(at) < 24)
        fail_msg("%s holds '%s', expected one log file", dir, got);
    snprintf(name, 32, "%.24s", at);
}

/* ---- HTTP ---------------------------------------------------------------------- */

static void copy_etag(const struct http_res *res, char *etag)
{
    if (http_header(res, "ETag", etag, 64) == NULL)
        fail_msg("status %ld without an ETag", res->status);
}

/* PUT /cache/key{query} {"value": json}; asserts 201 or 200 and copies the ETag (64 bytes) if etag is not NULL. */
static void put_json(unsigned port, const char *key, const char *json, const char *query, char *etag)
{
    char path[1024];
    snprintf(path, sizeof(path), "/cache/%s%s", key, query ? query : "");
    size_t body_len = strlen(json) + 16;
    char *body = malloc(body_len);
    assert_non_null(body);
    snprintf(body, body_len, "{\"value\":%s}", json);
    struct http_res res;
    http_call(port, "PUT", path, body, &res);
    free(body);
    if (res.status != 201 && res.status != 200)
        fail_msg("PUT %s: status %ld: %s", path, res.status, res.body);
    if (etag != NULL)
        copy_etag(&res, etag);
    http_res_free(&res);
}

/* PUT /cache/key with the bytes as they are and Content-Type: type; asserts 201 or 200 and copies the ETag. */
static void put_bytes(unsigned port, const char *key, const char *type, const void *data, size_t len, char *etag)
{
    char path[1024], header[512];
    snprintf(path, sizeof(path), "/cache/%s", key);
    snprintf(header, sizeof(header), "Content-Type: %s", type);
    const char *headers[] = {header, NULL};
    struct http_req req = {.method = "PUT", .path = path, .headers = headers, .body = data, .body_len = len};
    struct http_res res;
    if (http_do(NULL, port, &req, &res) != 0)
        fail_msg("PUT %s: no response: %s", path, curl_easy_strerror(res.curl_code));
    if (res.status != 201 && res.status != 200)
        fail_msg("PUT %s: status %ld: %s", path, res.status, res.body);
    if (etag != NULL)
        copy_etag(&res, etag);
    http_res_free(&res);
}

static void delete_key(unsigned port, const char *key)
{
    char path[1024];
    snprintf(path, sizeof(path), "/cache/%s", key);
    struct http_res res;
    http_call(port, "DELETE", path, NULL, &res);
    expect_message(&res, 200, "deleted");
    http_res_free(&res);
}

/* GET /cache/key: asserts 200 and returns the envelope (res owns it). */
static json_t *get_envelope(unsigned port, const char *key, struct http_res *res)
{
    char path[1024];
    snprintf(path, sizeof(path), "/cache/%s", key);
    http_call(port, "GET", path, NULL, res);
    if (res->status != 200)
        fail_msg("GET %s: status %ld, expected 200: %s", path, res->status, res->body);
    return expect_json(res, 200);
}

/* Asserts that key holds the JSON value json (not raw bytes) and, if etag is not NULL, has that ETag. */
static void expect_json_value(unsigned port, const char *key, const char *json, const char *etag)
{
    struct http_res res;
    json_t *env = get_envelope(port, key, &res);
    json_t *want = json_parse(json, strlen(json));
    json_t *got = json_object_get(env, "value");
    if (got == NULL || !json_equal(got, want))
        fail_msg("GET /cache/%s: %s, expected the value %s", key, res.body, json);
    if (json_object_get(env, "content_type") != NULL)
        fail_msg("GET /cache/%s: a JSON value came back as raw bytes: %s", key, res.body);
    char got_etag[64];
    copy_etag(&res, got_etag);
    if (etag != NULL && strcmp(got_etag, etag) != 0)
        fail_msg("GET /cache/%s: ETag %s, expected %s", key, got_etag, etag);
    json_decref(want);
    http_res_free(&res);
}

static void expect_absent(unsigned port, const char *key)
{
    char path[1024];
    snprintf(path, sizeof(path), "/cache/%s", key);
    struct http_res res;
    http_call(port, "GET", path, NULL, &res);
    if (res.status != 404)
        fail_msg("GET %s: status %ld, expected 404: %s", path, res.status, res.body);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
}

/* Asserts that GET /cache/key?raw is exactly data with Content-Type type, and the envelope's ETag is etag. */
static void expect_raw(unsigned port, const char *key, const char *type, const void *data, size_t len, const char *etag)
{
    char path[1024], ct[512];
    snprintf(path, sizeof(path), "/cache/%s?raw", key);
    struct http_res res;
    http_call(port, "GET", path, NULL, &res);
    if (res.status != 200)
        fail_msg("GET %s: status %ld: %s", path, res.status, res.body);
    if (http_header(&res, "Content-Type", ct, sizeof(ct)) == NULL || strcmp(ct, type) != 0)
        fail_msg("GET %s: Content-Type '%s', expected '%s'", path, ct, type);
    if (res.body_len != len || memcmp(res.body, data, len) != 0)
        fail_msg("GET %s: %zu bytes that differ from the %zu stored", path, res.body_len, len);
    http_res_free(&res);
    json_t *env = get_envelope(port, key, &res);
    const char *env_type = json_string_value(json_object_get(env, "content_type"));
    if (env_type == NULL || strcmp(env_type, type) != 0)
        fail_msg("GET /cache/%s: envelope %.200s, expected content_type %s", key, res.body, type);
    char got_etag[64];
    copy_etag(&res, got_etag);
    if (etag != NULL && strcmp(got_etag, etag) != 0)
        fail_msg("GET /cache/%s: ETag %s, expected %s", key, got_etag, etag);
    http_res_free(&res);
}

/* POST /snapshot: returns the response (caller frees). */
static void post_snapshot(unsigned port, struct http_res *res)
{
    struct http_req req = {.method = "POST", .path = "/snapshot", .timeout_ms = SNAPSHOT_TIMEOUT_MS};
    if (http_do(NULL, port, &req, res) != 0)
        fail_msg("POST /snapshot: no response: %s", curl_easy_strerror(res->curl_code));
}

/*
 * POST /snapshot that must succeed; returns the entries it saved. A 409
 * here, when no other snapshot was asked for, is the server answering the
 * previous snapshot before it counts as done: that bug is what
 * snapshots_one_after_another_are_never_refused shows, so other tests wait
 * it out (a few times at most) rather than fail on it.
 */
static json_int_t snapshot_now(unsigned port)
{
    struct http_res res;
    for (int refused = 0;; refused++) {
        post_snapshot(port, &res);
        if (res.status != 409 || refused == 100)
            break;
        http_res_free(&res);
        sleep_ms(10);
    }
    json_int_t entries = json_int_member(expect_json(&res, 200), "entries");
    http_res_free(&res);
    return entries;
}

/* The "persistence" object of /stats (caller decrefs), and the whole of it in *stats if not NULL (caller decrefs). */
static json_t *persistence_stats(unsigned port, json_t **stats)
{
    json_t *all = get_stats(port);
    json_t *p = json_object_get(all, "persistence");
    if (!json_is_object(p))
        fail_msg("/stats has no persistence object");
    json_incref(p);
    if (stats != NULL)
        *stats = all;
    else
        json_decref(all);
    return p;
}

static json_int_t stats_member(unsigned port, const char *name)
{
    json_t *stats = get_stats(port);
    json_int_t v = json_int_member(stats, name);
    json_decref(stats);
    return v;
}

/* ---- a clean restart --------------------------------------------------------- */

/* JSON values of every type, each under its own key; null only inside others (a value may not be null). */
static const struct {
    const char *key, *json;
} json_values[] = {
    {"object", "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}"},
    {"array", "[1,\"two\",3.5,false,null,{\"k\":\"v\"},[]]"},
    {"integer", "42"},
    {"smallest", "-9223372036854775808"},
    {"real", "2.5"},
    {"true", "true"},
    {"false", "false"},
    {"string", "\"plain\""},
    {"digits", "\"42\""}, /* a string that looks like a number stays a string */
    {"utf8", "\"h\\u00e9llo w\\u00f6rld \\u2014 \\u65e5\\u672c\\u8a9e \\ud83c\\udf89\""},
    {"nul", "\"a\\u0000b\""},
    {"caf%C3%A9", "\"a key in UTF-8\""},
};
#define JSON_VALUES (sizeof(json_values) / sizeof(json_values[0]))

/* Raw values: every byte value, UTF-8 text kept as bytes, and the largest value --max-value-bytes allows. */
struct raw_value {
    const char *key, *type;
    const unsigned char *data;
    size_t len;
};

/*
 * Every ETag given before a restart, to show that none is given again after
 * it. (Versions count per shard, so two keys may share one within a run;
 * the floor a restart raises every counter to puts each new one above all.)
 */
struct etags {
    char tag[64][64];
    size_t n;
};

static void remember_etag(struct etags *seen, const char *tag)
{
    assert_true(seen->n < 64);
    snprintf(seen->tag[seen->n++], 64, "%.63s", tag);
}

static void expect_new_etag(const struct etags *seen, const char *tag)
{
    for (size_t i = 0; i < seen->n; i++)
        if (strcmp(seen->tag[i], tag) == 0)
            fail_msg("the ETag %s after the restart was given before it", tag);
}

/* Asserts every value of the round trip, each with the ETag in etags (JSON values first, then raw). */
static void expect_round_trip_values(unsigned port, const struct raw_value *raw, size_t nraw, char (*etags)[64])
{
    for (size_t i = 0; i < JSON_VALUES; i++)
        expect_json_value(port, json_values[i].key, json_values[i].json, etags[i]);
    for (size_t i = 0; i < nraw; i++)
        expect_raw(port, raw[i].key, raw[i].type, raw[i].data, raw[i].len, etags[JSON_VALUES + i]);
}

static void a_clean_restart_keeps_every_value_its_kind_bytes_and_etag(void **state)
{
    (void)state;
    char dir[64];
    make_dir(dir);
    unsigned char every_byte[256];
    for (int i = 0; i < 256; i++)
        every_byte[i] = (unsigned char)i;
    static const char text[] = "gr\u00fc\u00dfe, \u4e16\u754c \u2713"; /* UTF-8: 2, 3 byte characters */
    unsigned char *largest = malloc(MAX_VALUE);
    assert_non_null(largest);
    fill_pseudo_random(largest, MAX_VALUE, 14);
    const struct raw_value raw[] = {
        {"png", "image/png", every_byte, sizeof(every_byte)},
        {"text", "text/plain; charset=utf-8", (const unsigned char *)text, strlen(text)},
        {"largest", "application/octet-stream", largest, MAX_VALUE},
    };
    size_t nraw = sizeof(raw) / sizeof(raw[0]);
    char etags[JSON_VALUES + 3][64];
    struct etags seen = {.n = 0};

    /* --append-log everysec as well: a clean stop must still leave the snapshot alone. */
    static const char *const flags[] = {"--max-value-bytes", "256kb", "--append-log", "everysec", NULL};
    struct server s;
    start_on(&s, dir, flags);
    for (size_t i = 0; i < JSON_VALUES; i++)
        put_json(s.port, json_values[i].key, json_values[i].json, NULL, etags[i]);
    for (size_t i = 0; i < nraw; i++)
        put_bytes(s.port, raw[i].key, raw[i].type, raw[i].data, raw[i].len, etags[JSON_VALUES + i]);
    for (size_t i = 0; i < JSON_VALUES + nraw; i++)
        remember_etag(&seen, etags[i]);
    char tag[64];
    put_json(s.port, "short", "\"gone after the restart\"", "?ttl=60", tag);
    remember_etag(&seen, tag);
    put_json(s.port, "long", "\"kept\"", "?ttl=3600", tag);
    remember_etag(&seen, tag);
    expect_round_trip_values(s.port, raw, nraw, etags);
    stop_and_forget(&s);
    expect_listing(dir, "lock snapshot"); /* a clean stop: the last snapshot holds everything, no log is left */

    /*
     * Ten minutes later by the clock expiry is read with: the one-minute entry ran out meanwhile, the 1 h one did
     * not. (A minute, not seconds, so that a slow first run, under valgrind, cannot see it expire before it is saved.)
     */
    static const char *const later[] = {
        "--max-value-bytes", "256kb", "--append-log", "everysec", "--clock-offset", "10m", NULL};
    start_on(&s, dir, later);
    char *err = server_stderr(&s);
    char loaded[128];
    snprintf(loaded, sizeof(loaded), "loaded %zu entries from %s", JSON_VALUES + nraw + 1, dir);
    expect_contains(err, loaded, "stderr");
    expect_contains(err, "1 expired while down", "stderr");
    free(err);
    expect_round_trip_values(s.port, raw, nraw, etags);
    expect_absent(s.port, "short");
    struct http_res res;
    json_t *env = get_envelope(s.port, "long", &res);
    json_int_t ttl = json_int_member(env, "ttl");
    if (ttl > 3000 || ttl < 2900)
        fail_msg("the 1 h entry has %lld s left after 10 min of downtime, expected at most 3000", (long long)ttl);
    http_res_free(&res);

    /* The ETag from before the restart still names the value: If-Match with it succeeds, once. */
    char if_match[128];
    snprintf(if_match, sizeof(if_match), "If-Match: %s", etags[0]);
    const char *headers[] = {"Content-Type: application/json", if_match, NULL};
    struct http_req req = {.method = "PUT", .path = "/cache/object", .headers = headers, .body = "{\"value\":7}"};
    assert_int_equal(http_do(NULL, s.port, &req, &res), 0);
    expect_message(&res, 200, "replaced");
    copy_etag(&res, tag);
    http_res_free(&res);
    expect_new_etag(&seen, tag);
    assert_int_equal(http_do(NULL, s.port, &req, &res), 0);
    expect_error(&res, 412, "precondition failed");
    http_res_free(&res);
    /* A key written for the first time after the restart, or one that expired meanwhile, gets a new ETag too. */
    put_json(s.port, "fresh", "1", NULL, tag);
    expect_new_etag(&seen, tag);
    put_json(s.port, "short", "1", NULL, tag);
    expect_new_etag(&seen, tag);
    stop_and_forget(&s);
    free(largest);
    df_dir_remove(dir);
}

/* The version in an ETag ("<16 hex digits>", or with -raw). */
static uint64_t etag_version(const char *etag)
{
    if (etag[0] != '"' || strlen(etag) < 18)
        fail_msg("'%s' is not an ETag of 16 hex digits", etag);
    return strtoull(etag + 1, NULL, 16);
}

/*
 * New versions start above every version the files name: the snapshot's
 * floor (which covers deleted keys too) and any later version in the log,
 * in every shard written, however far ahead of this process's clock they are.
 */
static void new_versions_start_above_every_saved_version(void **state)
{
    (void)state;
    char dir[64], log[32];
    make_dir(dir);
    const uint64_t floor = 0x7000000000000000ull, logged = floor + 100;
    struct df_snapshot snap;
    df_snapshot_begin(&snap, floor, 2);
    struct df_bytes records = {0};
    df_record_json(&records, "saved", "[1]", floor - 1);
    df_snapshot_block(&snap, &records, 1);
    df_snapshot_end(&snap);
    write_file(dir, "snapshot", snap.file.data, snap.file.len);
    struct df_bytes file = {0};
    df_log_name(log, 2);
    df_log_begin(&file, 2);
    records.len = 0;
    df_record_json(&records, "logged", "[2]", logged);
    df_log_frame(&file, &records);
    write_file(dir, log, file.data, file.len);

    struct server s;
    start_on(&s, dir, NULL);
    char etag[64];
    snprintf(etag, sizeof(etag), "\"%016" PRIx64 "\"", floor - 1);
    expect_json_value(s.port, "saved", "[1]", etag);
    snprintf(etag, sizeof(etag), "\"%016" PRIx64 "\"", logged);
    expect_json_value(s.port, "logged", "[2]", etag);
    for (int i = 0; i < 64; i++) { /* keys in many shards, each with a counter of its own */
        char key[16];
        snprintf(key, sizeof(key), "new%d", i);
        put_json(s.port, key, "0", NULL, etag);
        if (etag_version(etag) <= logged)
            fail_msg("%s got the version %s, not above the %" PRIx64 " in the log", key, etag, logged);
    }
    stop_and_forget(&s);
    df_bytes_free(&records);
    df_bytes_free(&file);
    df_bytes_free(&snap.file);
    df_dir_remove(dir);
}

/* ---- a crash ------------------------------------------------------------------- */

static const char *const log_always[] = {"--append-log", "always", "--snapshot-interval", "0", NULL};

/*
 * With --append-log always every acknowledged write is on disk: after a
 * SIGKILL the log replays over the last snapshot in order. Two crashes: the
 * first shows deletes, overwrites, increments and expiry after a snapshot; the
 * second, whose replay crosses both runs' log files, a flush followed by
 * writes and deletes.
 */
static void after_a_crash_the_log_replays_every_acknowledged_change_in_order(void **state)
{
    (void)state;
    char dir[64], s2_tag[64], f1_tag[64];
    struct server s;
    start_fresh(dir, &s, log_always);
    put_json(s.port, "s1", "\"one\"", NULL, NULL);
    put_json(s.port, "s2", "\"two\"", NULL, NULL);
    put_json(s.port, "s3", "\"three\"", NULL, NULL);
    assert_int_equal(snapshot_now(s.port), 3);
    delete_key(s.port, "s1");
    put_json(s.port, "s2", "\"two, again\"", NULL, s2_tag);
    put_json(s.port, "n1", "[\"new\"]", NULL, NULL);
    put_json(s.port, "minute", "1", "?ttl=60", NULL);
    put_json(s.port, "hour", "2", "?ttl=3600", NULL);
    for (int i = 0; i < 5; i++) {
        struct http_res res;
        http_call(s.port, "POST", "/cache/c/incr", NULL, &res);
        expect_json(&res, 200);
        http_res_free(&res);
    }
    crash(&s);

    /* Ten minutes later by the clock expiry is read with: the log's deadlines are Unix time too. */
    static const char *const later[] = {"--append-log", "always", "--clock-offset", "10m", NULL};
    start_on(&s, dir, later);
    expect_absent(s.port, "s1");
    expect_json_value(s.port, "s2", "\"two, again\"", s2_tag);
    expect_json_value(s.port, "s3", "\"three\"", NULL);
    expect_json_value(s.port, "n1", "[\"new\"]", NULL);
    expect_json_value(s.port, "c", "5", NULL);
    expect_absent(s.port, "minute");
    expect_json_value(s.port, "hour", "2", NULL);
    assert_int_equal(stats_member(s.port, "entries"), 5);

    struct http_res res;
    http_call(s.port, "DELETE", "/cache", NULL, &res);
    expect_json(&res, 200);
    http_res_free(&res);
    put_json(s.port, "f1", "\"first\"", NULL, NULL);
    put_json(s.port, "f2", "\"second\"", NULL, NULL);
    put_json(s.port, "f1", "\"last\"", NULL, f1_tag);
    delete_key(s.port, "f2");
    put_json(s.port, "f3", "{\"after\":\"the delete\"}", NULL, NULL);
    crash(&s);

    start_on(&s, dir, later); /* the clock does not go back: "minute" stays expired */
    static const char *const flushed[] = {"s2", "s3", "n1", "c", "hour", "f2"};
    for (size_t i = 0; i < sizeof(flushed) / sizeof(flushed[0]); i++)
        expect_absent(s.port, flushed[i]);
    expect_json_value(s.port, "f1", "\"last\"", f1_tag);
    expect_json_value(s.port, "f3", "{\"after\":\"the delete\"}", NULL);
    assert_int_equal(stats_member(s.port, "entries"), 2);
    finish(dir, &s);
}

/* With --append-log off (the default) a crash loses every write since the last snapshot, and only those. */
static void without_a_log_a_crash_goes_back_to_the_last_snapshot(void **state)
{
    (void)state;
    char dir[64];
    struct server s;
    start_fresh(dir, &s, on_request);
    put_json(s.port, "k1", "\"one\"", NULL, NULL);
    put_json(s.port, "k2", "\"two\"", NULL, NULL);
    assert_int_equal(snapshot_now(s.port), 2);
    put_json(s.port, "k3", "\"three\"", NULL, NULL);
    delete_key(s.port, "k1");
    put_json(s.port, "k2", "\"changed\"", NULL, NULL);
    crash(&s);
    expect_listing(dir, "lock snapshot"); /* no log is written with off */

    start_on(&s, dir, on_request);
    expect_json_value(s.port, "k1", "\"one\"", NULL);
    expect_json_value(s.port, "k2", "\"two\"", NULL);
    expect_absent(s.port, "k3");
    assert_int_equal(stats_member(s.port, "entries"), 2);
    finish(dir, &s);
}

/* ---- a torn log tail ------------------------------------------------------------- */

/* What a crash can leave after the last whole record of a log: each is dropped with a warning, never damage. */
enum torn_tail { TORN_CUT_SHORT, TORN_BAD_CHECKSUM, TORN_ZEROS };

/* The tail's bytes: a frame for key "torn" cut short, or whole with a checksum that fails, or zeros. */
static void build_torn_tail(enum torn_tail kind, struct df_bytes *tail)
{
    struct df_bytes record = {0};
    df_record_json(&record, "torn", "\"never acknowledged\"", 1);
    switch (kind) {
    case TORN_CUT_SHORT:
        df_log_frame(tail, &record);
        tail->len = DF_FRAME_HEADER + 5;
        break;
    case TORN_BAD_CHECKSUM:
        df_log_frame(tail, &record);
        tail->data[tail->len - 1] ^= 0x20;
        break;
    case TORN_ZEROS: {
        unsigned char zeros[100] = {0};
        df_put(tail, zeros, sizeof(zeros));
        break;
    }
    }
    df_bytes_free(&record);
}

static void a_torn_last_log_record_is_dropped_with_a_warning(void **state)
{
    enum torn_tail kind = *(const enum torn_tail *)*state;
    char dir[64], log[32];
    struct server s;
    start_fresh(dir, &s, log_always);
    put_json(s.port, "t1", "1", NULL, NULL);
    put_json(s.port, "t2", "2", NULL, NULL);
    put_json(s.port, "t3", "3", NULL, NULL);
    crash(&s);
    the_log_file(dir, log);
    long long whole = df_size(dir, log);
    struct df_bytes tail = {0};
    build_torn_tail(kind, &tail);
    if (df_append(dir, log, tail.data, tail.len) != 0)
        fail_msg("cannot append to %s/%s", dir, log);

    start_on(&s, dir, log_always);
    char *err = server_stderr(&s);
    char warning[512];
    snprintf(warning, sizeof(warning),
             "%s/%s: the last record is torn (what a crash leaves): dropped its %zu byte(s) at byte %lld; every "
             "record before it is loaded",
             dir, log, tail.len, whole);
    expect_contains(err, warning, "stderr");
    free(err);
    if (df_size(dir, log) != whole) /* cut where the records that verify end */
        fail_msg("%s is %lld bytes after the load, expected %lld", log, df_size(dir, log), whole);
    expect_json_value(s.port, "t1", "1", NULL);
    expect_json_value(s.port, "t2", "2", NULL);
    expect_json_value(s.port, "t3", "3", NULL);
    expect_absent(s.port, "torn");
    df_bytes_free(&tail);
    finish(dir, &s);
}

static const enum torn_tail torn_cut_short = TORN_CUT_SHORT, torn_bad_checksum = TORN_BAD_CHECKSUM,
                            torn_zeros = TORN_ZEROS;

/* ---- damage ---------------------------------------------------------------------- */

/*
 * Every damage case starts from the same directory: a snapshot of three
 * blocks of two entries each (b0a b0b | b1a b1b | b2a b2b) whose header
 * names log 7, and log 7 with three more (l1 l2 l3). Each entry's value is
 * {"key":<its key>} and its version is base_versions[i], so its ETag after
 * loading is that number in 16 hex digits.
 */
#define BASE_KEYS 9
#define LOG_SEQ   7
static const char *const base_keys[BASE_KEYS] = {"b0a", "b0b", "b1a", "b1b", "b2a", "b2b", "l1", "l2", "l3"};
static const uint64_t base_versions[BASE_KEYS] = {0x101, 0x102, 0x203, 0x204, 0x305, 0x306, 0x407, 0x408, 0x409};

struct base {
    struct df_bytes snap, log;
    char log_name[32];
    size_t block[3], trailer, frame[3];
    enum { SNAP_FILE, SNAP_FIFO, SNAP_DIRECTORY } snap_kind;
};

static void base_record(struct df_bytes *b, int i)
{
    char json[64];
    snprintf(json, sizeof(json), "{\"key\":\"%s\"}", base_keys[i]);
    df_record_json(b, base_keys[i], json, base_versions[i]);
}

static void build_base(struct base *b)
{
    memset(b, 0, sizeof(*b));
    struct df_snapshot snap;
    df_snapshot_begin(&snap, 0x1000, LOG_SEQ);
    for (int blk = 0; blk < 3; blk++) {
        struct df_bytes records = {0};
        base_record(&records, 2 * blk);
        base_record(&records, 2 * blk + 1);
        b->block[blk] = df_snapshot_block(&snap, &records, 2);
        df_bytes_free(&records);
    }
    b->trailer = df_snapshot_end(&snap);
    b->snap = snap.file;
    df_log_name(b->log_name, LOG_SEQ);
    df_log_begin(&b->log, LOG_SEQ);
    for (int i = 0; i < 3; i++) {
        struct df_bytes record = {0};
        base_record(&record, 6 + i);
        b->frame[i] = df_log_frame(&b->log, &record);
        df_bytes_free(&record);
    }
}

static void write_base(const char *dir, const struct base *b)
{
    char path[128];
    df_path(path, sizeof(path), dir, "snapshot");
    if (b->snap_kind == SNAP_FIFO && mkfifo(path, 0600) != 0)
        fail_msg("mkfifo %s failed", path);
    if (b->snap_kind == SNAP_DIRECTORY && mkdir(path, 0700) != 0)
        fail_msg("mkdir %s failed", path);
    if (b->snap_kind == SNAP_FILE)
        write_file(dir, "snapshot", b->snap.data, b->snap.len);
    write_file(dir, b->log_name, b->log.data, b->log.len);
}

/* Rewrites the CRC-32C at `at` of the n bytes before it (a header changed on purpose, its checksum kept right). */
static void reseal(struct df_bytes *f, size_t at, size_t n)
{
    uint32_t crc = df_crc32c(0, f->data + at - n, n);
    for (int i = 0; i < 4; i++)
        f->data[at + (size_t)i] = (unsigned char)(crc >> (8 * i));
}

/* What a case expects: the refusal's file, offset and phrase; what --recover loads and says. */
struct expect {
    const char *file; /* "snapshot", or NULL for the log */
    uint64_t at;
    const char *what;
    const char *present; /* BASE_KEYS characters, '1' where --recover loads the key */
    char recovered[256]; /* the --recover warning after "--recover: DIR/FILE: " */
    const char *skipped; /* if not NULL, the warning is "--recover: skipping DIR/FILE: <skipped>" instead */
};

/* "first damage at byte N: WHAT; skipped R damaged region(s), B bytes; loaded L record(s) that verify" */
static void recovered(struct expect *e, unsigned regions, size_t bytes, unsigned loaded)
{
    snprintf(e->recovered, sizeof(e->recovered),
             "first damage at byte %" PRIu64 ": %s; skipped %u damaged region(s), %zu bytes; loaded %u record(s) "
             "that verify",
             e->at, e->what, regions, bytes, loaded);
}

static void bad_block_checksum(struct base *b, struct expect *e)
{
    b->snap.data[b->block[1] + DF_BLOCK_HEADER + 9] ^= 0x01; /* a byte of the middle block's payload */
    *e = (struct expect){
        .file = "snapshot", .at = b->block[1], .what = "block checksum mismatch", .present = "110011111"};
    recovered(e, 1, b->block[2] - b->block[1], 4);
}

static void trailer_cut_off(struct base *b, struct expect *e)
{
    b->snap.len = b->trailer;
    *e =
        (struct expect){.file = "snapshot", .at = b->trailer, .what = "no trailer (truncated)", .present = "111111111"};
    recovered(e, 1, 0, 6);
}

static void trailer_cut_short(struct base *b, struct expect *e)
{
    b->snap.len = b->trailer + 10;
    *e = (struct expect){
        .file = "snapshot", .at = b->trailer, .what = "trailer cut short (truncated)", .present = "111111111"};
    recovered(e, 2, 10, 6); /* the piece of trailer, then the end with no trailer */
}

static void cut_inside_a_block(struct base *b, struct expect *e)
{
    b->snap.len = b->block[2] + DF_BLOCK_HEADER + 7;
    *e = (struct expect){.file = "snapshot",
                         .at = b->block[2],
                         .what = "block runs past the end of the file (truncated)",
                         .present = "111100111"};
    recovered(e, 2, DF_BLOCK_HEADER + 7, 4);
}

static void wrong_magic(struct base *b, struct expect *e)
{
    memcpy(b->snap.data, "CACHSNAQ", 8);
    *e = (struct expect){
        .file = "snapshot", .at = 0, .what = "wrong magic: not a cachette file of this kind", .present = "111111111"};
    recovered(e, 1, 0, 6);
}

static void unsupported_version(struct base *b, struct expect *e)
{
    b->snap.data[8] = 2;
    reseal(&b->snap, 40, 40);
    *e = (struct expect){.file = "snapshot", .at = 0, .what = "unsupported format version", .present = "111111111"};
    recovered(e, 1, 0, 6);
}

static void empty_snapshot(struct base *b, struct expect *e)
{
    b->snap.len = 0;
    *e = (struct expect){.file = "snapshot", .at = 0, .what = "empty file", .present = "000000111"};
    recovered(e, 1, 0, 0);
}

static void fifo_snapshot(struct base *b, struct expect *e)
{
    b->snap_kind = SNAP_FIFO;
    *e = (struct expect){.file = "snapshot",
                         .at = 0,
                         .what = "not a regular file (a special file)",
                         .present = "000000111",
                         .skipped = "not a regular file (a special file)"};
}

static void directory_snapshot(struct base *b, struct expect *e)
{
    b->snap_kind = SNAP_DIRECTORY;
    *e = (struct expect){.file = "snapshot",
                         .at = 0,
                         .what = "not a regular file (a directory)",
                         .present = "000000111",
                         .skipped = "not a regular file (a directory)"};
}

static void bad_record_checksum_mid_log(struct base *b, struct expect *e)
{
    b->log.data[b->frame[1] + DF_FRAME_HEADER + 30] ^= 0x40; /* a byte of l2's value; l3 follows */
    *e = (struct expect){.at = b->frame[1], .what = "record checksum mismatch", .present = "111111101"};
    recovered(e, 1, b->frame[2] - b->frame[1], 2);
}

static void log_wrong_magic(struct base *b, struct expect *e)
{
    b->log.data[0] = 'X';
    *e = (struct expect){.at = 0, .what = "wrong magic: not a cachette file of this kind", .present = "111111111"};
    recovered(e, 1, 0, 3);
}

struct damage_case {
    const char *name;
    void (*damage)(struct base *b, struct expect *e);
};

static const struct damage_case damage_cases[] = {
    {"damage: a snapshot block's checksum fails", bad_block_checksum},
    {"damage: the snapshot's trailer is cut off", trailer_cut_off},
    {"damage: the snapshot's trailer is cut short", trailer_cut_short},
    {"damage: the snapshot ends inside a block", cut_inside_a_block},
    {"damage: the snapshot has the wrong magic", wrong_magic},
    {"damage: the snapshot has an unsupported format version", unsupported_version},
    {"damage: the snapshot is empty", empty_snapshot},
    {"damage: the snapshot is a FIFO", fifo_snapshot},
    {"damage: the snapshot is a directory", directory_snapshot},
    {"damage: a record in the middle of a log fails its checksum", bad_record_checksum_mid_log},
    {"damage: a log has the wrong magic", log_wrong_magic},
};
#define DAMAGE_CASES (sizeof(damage_cases) / sizeof(damage_cases[0]))

/* Asserts, with --recover, which base keys are loaded (with their value and version) and which are not. */
static void expect_base_keys(unsigned port, const char *present)
{
    for (int i = 0; i < BASE_KEYS; i++) {
        if (present[i] == '0') {
            expect_absent(port, base_keys[i]);
            continue;
        }
        char json[64], etag[64];
        snprintf(json, sizeof(json), "{\"key\":\"%s\"}", base_keys[i]);
        snprintf(etag, sizeof(etag), "\"%016" PRIx64 "\"", base_versions[i]);
        expect_json_value(port, base_keys[i], json, etag);
    }
}

/* Asserts that dir/name still holds exactly want (the refusal changed nothing). */
static void expect_unchanged(const char *dir, const char *name, const struct df_bytes *want)
{
    unsigned char *data;
    size_t len;
    if (df_read(dir, name, &data, &len) != 0)
        fail_msg("cannot read %s/%s back", dir, name);
    if (len != want->len || memcmp(data, want->data, len) != 0)
        fail_msg("%s/%s changed while the server refused to start (%zu bytes, was %zu)", dir, name, len, want->len);
    free(data);
}

/*
 * Without --recover: exit 1 with "cannot load DIR/FILE: at byte AT: WHAT.
 * Start with --recover…" (what NULL: any phrase), and the files as they were.
 */
static void expect_refusal(const char *dir, const struct base *b, const char *file, uint64_t at, const char *what)
{
    char *err, message[512];
    int status = expect_no_start(dir, &err);
    if (status != 1)
        fail_msg("exit status %d on a damaged %s, expected 1; stderr:\n%s", status, file, err);
    int n = snprintf(message, sizeof(message), "cannot load %s/%s: at byte %" PRIu64 ": ", dir, file, at);
    if (what != NULL)
        snprintf(message + n, sizeof(message) - (size_t)n,
                 "%s. Start with --recover to load every record that verifies and skip the rest, or move the file "
                 "out of %s to start without it",
                 what, dir);
    expect_contains(err, message, "stderr");
    free(err);
    if (b->snap_kind == SNAP_FILE)
        expect_unchanged(dir, "snapshot", &b->snap);
    expect_unchanged(dir, b->log_name, &b->log);
}

static void start_recovering(struct server *s, const char *dir)
{
    static const char *const recover[] = {"--recover", NULL};
    start_on(s, dir, recover);
}

static void free_base(struct base *b, const char *dir)
{
    df_bytes_free(&b->snap);
    df_bytes_free(&b->log);
    df_dir_remove(dir);
}

/*
 * Without --recover the server exits 1 naming the file, the offset and what
 * is wrong, and leaves the files as they were. With it, it starts, loads
 * every record that verifies and says what it skipped.
 */
static void damage_stops_the_start_and_recover_loads_what_verifies(void **state)
{
    const struct damage_case *c = *state;
    char dir[64], message[512];
    make_dir(dir);
    struct base b;
    struct expect e;
    build_base(&b);
    c->damage(&b, &e);
    const char *file = e.file != NULL ? e.file : b.log_name;
    write_base(dir, &b);
    expect_refusal(dir, &b, file, e.at, e.what);

    struct server s;
    start_recovering(&s, dir);
    char *err = server_stderr(&s);
    if (e.skipped != NULL)
        snprintf(message, sizeof(message), "--recover: skipping %s/%s: %s", dir, file, e.skipped);
    else
        snprintf(message, sizeof(message), "--recover: %s/%s: %s", dir, file, e.recovered);
    expect_contains(err, message, "stderr");
    free(err);
    expect_base_keys(s.port, e.present);
    if (b.snap_kind == SNAP_DIRECTORY) {
        /* No snapshot can replace a directory: the server says so, and succeeds once it is gone. */
        struct http_res res;
        post_snapshot(s.port, &res);
        expect_error_prefix(&res, 500, "snapshot failed: ");
        http_res_free(&res);
        char path[128];
        assert_int_equal(rmdir(df_path(path, sizeof(path), dir, "snapshot")), 0);
        snapshot_now(s.port);
    }
    stop_and_forget(&s);
    free_base(&b, dir);
}

/*
 * A damaged length field in the middle of a log (a bit flip on disk) makes
 * the frame seem to run past the end of the file, as a torn last record
 * does. But whole records that verify follow it, which no crash leaves
 * after a torn write: this is damage, and l3, an acknowledged write, must
 * not be cut off with a warning.
 */
static void a_damaged_length_mid_log_is_damage_not_a_torn_tail(void **state)
{
    (void)state;
    char dir[64];
    make_dir(dir);
    struct base b;
    build_base(&b);
    b.log.data[b.frame[1] + 3] = 0x40; /* l2's length, now about 1 GiB */
    write_base(dir, &b);
    expect_refusal(dir, &b, b.log_name, b.frame[1], NULL);

    struct server s;
    start_recovering(&s, dir);
    expect_base_keys(s.port, "111111101");
    stop_and_forget(&s);
    free_base(&b, dir);
}

/* ---- one server per directory --------------------------------------------------- */

static void a_second_server_on_the_same_directory_exits_2(void **state)
{
    (void)state;
    char dir[64], *err;
    make_dir(dir);
    struct server first;
    start_on(&first, dir, NULL);
    put_json(first.port, "mine", "1", NULL, NULL);

    int status = expect_no_start(dir, &err);
    char message[256];
    snprintf(message, sizeof(message), "--data-dir %s is in use by another cachette (pid %d)", dir, (int)first.pid);
    if (status != 2)
        fail_msg("the second server exited %d, expected 2; stderr:\n%s", status, err);
    expect_contains(err, message, "stderr");
    free(err);

    /* The first is unharmed, and once it has stopped the directory is free again. */
    expect_json_value(first.port, "mine", "1", NULL);
    stop_and_forget(&first);
    struct server second;
    start_on(&second, dir, NULL);
    expect_json_value(second.port, "mine", "1", NULL);
    stop_and_forget(&second);
    df_dir_remove(dir);
}

/* ---- POST /snapshot ----------------------------------------------------------------- */

/* A SET record's size: the fixed part, the key, the content type, the value (docs/PERSISTENCE.md). */
static size_t set_record_size(size_t key_len, size_t type_len, size_t value_len)
{
    return 28 + key_len + type_len + value_len;
}

static void post_snapshot_answers_what_it_saved(void **state)
{
    (void)state;
    char dir[64];
    struct server s;
    start_fresh(dir, &s, on_request);

    /* 20 objects, 20 strings (kept unquoted) and 5 raw values: a single block, so the size is known exactly. */
    size_t records = 0, entries = 0;
    for (int i = 0; i < 20; i++) {
        char key[32], json[64];
        snprintf(key, sizeof(key), "obj%02d", i);
        snprintf(json, sizeof(json), "{\"n\":%d}", i);
        put_json(s.port, key, json, NULL, NULL);
        records += set_record_size(strlen(key), 0, strlen(json));
        snprintf(key, sizeof(key), "str%02d", i);
        put_json(s.port, key, "\"caf\\u00e9\"", NULL, NULL);
        records += set_record_size(strlen(key), 0, strlen("caf\xc3\xa9"));
        entries += 2;
    }
    for (int i = 0; i < 5; i++) {
        char key[32];
        snprintf(key, sizeof(key), "raw%d", i);
        put_bytes(s.port, key, "application/x-test", "\x00\x01\x02", 3, NULL);
        records += set_record_size(strlen(key), strlen("application/x-test"), 3);
        entries++;
    }
    size_t file_size = DF_SNAPSHOT_HEADER + DF_BLOCK_HEADER + records + DF_TRAILER;

    int64_t started = now_ms();
    struct http_res res;
    post_snapshot(s.port, &res);
    int64_t took = now_ms() - started;
    json_t *body = expect_json(&res, 200);
    assert_int_equal(json_object_size(body), 3);
    assert_int_equal(json_int_member(body, "entries"), entries);
    assert_int_equal(json_int_member(body, "bytes"), file_size);
    json_int_t ms = json_int_member(body, "milliseconds");
    if (ms < 0 || ms > took)
        fail_msg("the snapshot says it took %lld ms; the request took %lld ms", (long long)ms, (long long)took);
    http_res_free(&res);
    assert_int_equal(df_size(dir, "snapshot"), file_size);
    json_t *p = persistence_stats(s.port, NULL);
    assert_int_equal(json_int_member(p, "snapshots"), 1);
    assert_int_equal(json_int_member(p, "last_snapshot_entries"), entries);
    assert_int_equal(json_int_member(p, "last_snapshot_bytes"), file_size);
    assert_int_equal(json_int_member(p, "last_snapshot_ms"), ms);
    json_decref(p);

    /* The next one holds what is stored then. */
    delete_key(s.port, "obj00");
    assert_int_equal(snapshot_now(s.port), entries - 1);

    /* Only POST. */
    http_call(s.port, "GET", "/snapshot", NULL, &res);
    expect_json(&res, 405);
    char allow[64];
    if (http_header(&res, "Allow", allow, sizeof(allow)) == NULL || strcmp(allow, "POST") != 0)
        fail_msg("405 without 'Allow: POST'");
    http_res_free(&res);
    finish(dir, &s);
}

/*
 * A client that waits for each snapshot's answer before asking for the next
 * never collides with a snapshot, so it never gets 409. (The server must
 * count a snapshot as done before it answers it; a 409 here means it
 * answered first. Each request can only fail for that reason, so many of
 * them, on one connection for speed, make the window show if it is there.)
 */
static void snapshots_one_after_another_are_never_refused(void **state)
{
    (void)state;
    char dir[64];
    struct server s;
    start_fresh(dir, &s, on_request);
    put_json(s.port, "k", "1", NULL, NULL);
    CURL *easy = http_easy_new();
    int refused = 0, total = server_is_slow() ? 20 : 200;
    for (int i = 0; i < total; i++) {
        struct http_req req = {.method = "POST", .path = "/snapshot", .timeout_ms = SNAPSHOT_TIMEOUT_MS};
        struct http_res res;
        if (http_do(easy, s.port, &req, &res) != 0)
            fail_msg("POST /snapshot: no response: %s", curl_easy_strerror(res.curl_code));
        if (res.status == 409)
            refused++;
        else
            expect_json(&res, 200);
        http_res_free(&res);
    }
    curl_easy_cleanup(easy);
    if (refused != 0)
        fail_msg("%d of %d POST /snapshot, each sent once the one before was answered, got 409", refused, total);
    finish(dir, &s);
}

static void post_snapshot_without_a_data_dir_is_404(void **state)
{
    (void)state;
    struct server s;
    assert_int_equal(server_start(&s, NULL), 0);
    struct http_res res;
    post_snapshot(s.port, &res);
    expect_error(&res, 404, "persistence is off: start cachette with --data-dir to take snapshots");
    http_res_free(&res);
    http_call(s.port, "GET", "/snapshot", NULL, &res);
    expect_json(&res, 405);
    http_res_free(&res);
    /* Nor is there a persistence member in /stats, or its series in /metrics. */
    json_t *stats = get_stats(s.port);
    if (!json_is_null(json_object_get(stats, "persistence")))
        fail_msg("/stats has a persistence member without --data-dir");
    json_decref(stats);
    http_call(s.port, "GET", "/metrics", NULL, &res);
    assert_int_equal(res.status, 200);
    struct exposition *x = malloc(sizeof(*x));
    assert_non_null(x);
    exposition_parse(res.body, res.body_len, x);
    if (exposition_family(x, "cachette_snapshots_total") != NULL)
        fail_msg("/metrics has cachette_snapshots_total without --data-dir");
    free(x);
    http_res_free(&res);
    stop_and_forget(&s);
}

/* ---- large data sets ------------------------------------------------------------------ */

/*
 * Writes dir/snapshot holding n entries "big%07zu" -> {"i":i}, versions 1
 * to n, in blocks of 1024: built here rather than through HTTP, so a
 * million entries take a fraction of a second. Returns the file's size.
 */
static size_t write_big_snapshot(const char *dir, size_t n)
{
    struct df_snapshot snap;
    df_snapshot_begin(&snap, n + 1, 1);
    struct df_bytes records = {0};
    uint32_t count = 0;
    for (size_t i = 0; i < n; i++) {
        char key[32], json[32];
        snprintf(key, sizeof(key), "big%07zu", i);
        snprintf(json, sizeof(json), "{\"i\":%zu}", i);
        df_record_json(&records, key, json, i + 1);
        if (++count == 1024 || i + 1 == n) {
            df_snapshot_block(&snap, &records, count);
            records.len = 0;
            count = 0;
        }
    }
    df_snapshot_end(&snap);
    write_file(dir, "snapshot", snap.file.data, snap.file.len);
    size_t size = snap.file.len;
    df_bytes_free(&records);
    df_bytes_free(&snap.file);
    return size;
}

/* Entries for the tests that need a load or a snapshot to take a while: grown by them until it does. */
static size_t big_entries(void)
{
    return server_is_slow() ? 20000 : 250000;
}

struct background_snapshot {
    pthread_t thread;
    unsigned port;
    long status; /* 0: no response */
    atomic_int done;
};

static void *background_snapshot_main(void *arg)
{
    struct background_snapshot *b = arg;
    struct http_req req = {.method = "POST", .path = "/snapshot", .timeout_ms = SNAPSHOT_TIMEOUT_MS};
    struct http_res res;
    b->status = http_do(NULL, b->port, &req, &res) == 0 ? res.status : 0;
    http_res_free(&res);
    atomic_store(&b->done, 1);
    return NULL;
}

/*
 * A second POST /snapshot while one is being written gets 409. One request
 * runs in a thread; this one posts until the thread's returns, so one of
 * them lands while the other's snapshot runs; should the snapshot finish
 * before any did, the pair goes again (20 times at most).
 */
static void a_second_snapshot_while_one_runs_is_409(void **state)
{
    (void)state;
    char dir[64];
    make_dir(dir);
    size_t n = big_entries();
    write_big_snapshot(dir, n);
    struct server s;
    start_on(&s, dir, on_request);
    assert_int_equal(stats_member(s.port, "entries"), n);

    json_int_t successes = 0;
    int conflicts = 0, attempts = 0;
    for (; attempts < 20 && conflicts == 0; attempts++) {
        struct background_snapshot b = {.port = s.port};
        atomic_init(&b.done, 0);
        assert_int_equal(pthread_create(&b.thread, NULL, background_snapshot_main, &b), 0);
        while (!atomic_load(&b.done) && conflicts == 0) {
            struct http_res res;
            post_snapshot(s.port, &res);
            if (res.status == 409) {
                expect_error(&res, 409, "a snapshot is already being written: try again when it is done");
                conflicts++;
            } else {
                expect_json(&res, 200);
                successes++;
            }
            http_res_free(&res);
        }
        pthread_join(b.thread, NULL);
        if (b.status != 200 && b.status != 409)
            fail_msg("the background POST /snapshot got %ld", b.status);
        successes += b.status == 200;
        conflicts += b.status == 409;
    }
    if (conflicts == 0)
        fail_msg("no 409 in %d pairs of snapshot requests over %zu entries", attempts, n);
    /* Each 200 wrote one snapshot; no 409 did. */
    json_t *p = persistence_stats(s.port, NULL);
    assert_int_equal(json_int_member(p, "snapshots"), successes);
    assert_int_equal(json_int_member(p, "last_snapshot_entries"), n);
    json_decref(p);
    finish(dir, &s);
}

/* ---- loading -------------------------------------------------------------------------- */

/* What a test saw answer as "loading" (each a bit), so that it can grow the data until it has seen them all. */
enum {
    SAW_HEALTH = 1,
    SAW_CACHE = 2,
    SAW_STATS = 4,
    SAW_METRICS = 8,
    SAW_ALL = 15,
};

static void expect_retry_after(const struct http_res *res)
{
    char value[16];
    if (http_header(res, "Retry-After", value, sizeof(value)) == NULL || strcmp(value, "1") != 0)
        fail_msg("a 503 while loading without 'Retry-After: 1'");
}

/*
 * One round of requests to a server that may still be loading a snapshot of
 * size bytes. Each answer is either the loading one or the ordinary one (the
 * load having finished first); anything else fails. Returns what answered
 * as loading.
 */
static unsigned probe_loading(unsigned port, size_t size)
{
    unsigned saw = 0;
    struct http_res res;
    http_call(port, "GET", "/health", NULL, &res);
    if (res.status == 503) {
        json_t *want = json_pack("{s:s}", "status", "loading");
        if (!json_equal(expect_json(&res, 503), want))
            fail_msg("GET /health while loading: %s", res.body);
        json_decref(want);
        expect_retry_after(&res);
        saw |= SAW_HEALTH;
    } else {
        expect_json(&res, 200);
    }
    http_res_free(&res);

    http_call(port, "GET", "/cache/x", NULL, &res);
    if (res.status == 503) {
        expect_error(&res, 503, "loading the data directory: try again shortly (GET /stats shows the progress)");
        expect_retry_after(&res);
        saw |= SAW_CACHE;
    } else {
        expect_error(&res, 404, "key not found");
    }
    http_res_free(&res);

    json_t *p = persistence_stats(port, NULL);
    if (json_is_true(json_object_get(p, "loading"))) {
        assert_int_equal(json_int_member(p, "loading_bytes_total"), size);
        if (json_int_member(p, "loading_bytes") > (json_int_t)size)
            fail_msg("loading_bytes is past loading_bytes_total");
        saw |= SAW_STATS;
    } else if (!json_is_false(json_object_get(p, "loading"))) {
        fail_msg("persistence.loading is neither true nor false");
    }
    json_decref(p);

    http_call(port, "GET", "/metrics", NULL, &res);
    assert_int_equal(res.status, 200);
    struct exposition *x = malloc(sizeof(*x));
    assert_non_null(x);
    exposition_parse(res.body, res.body_len, x);
    if (exposition_value(x, "cachette_loading", "") == 1) {
        assert_true(exposition_value(x, "cachette_loading_bytes_total", "") == (double)size);
        saw |= SAW_METRICS;
    }
    free(x);
    http_res_free(&res);
    return saw;
}

/*
 * While a large data directory loads, the server answers: /health 503
 * {"status":"loading"}, every other request 503 with an error, both with
 * Retry-After, and /stats and /metrics with the progress. Then it serves
 * everything it loaded. Rounds of requests go on while /health says it is
 * loading, and the data doubles until every kind of request has seen it
 * loading once.
 */
static void while_loading_the_server_answers_503_and_shows_the_progress(void **state)
{
    (void)state;
    unsigned saw = 0;
    size_t n = big_entries();
    for (int attempt = 0; attempt < 4 && saw != SAW_ALL; attempt++, n *= 2) {
        char dir[64];
        make_dir(dir);
        size_t size = write_big_snapshot(dir, n);
        struct server s;
        start_loading(&s, dir, NULL);
        unsigned round; /* rounds of requests until one begins after the load ended */
        do {
            round = probe_loading(s.port, size);
            saw |= round;
        } while ((round & SAW_HEALTH) != 0 && saw != SAW_ALL);
        wait_loaded(&s);
        json_t *stats;
        json_t *p = persistence_stats(s.port, &stats);
        assert_true(json_is_false(json_object_get(p, "loading")));
        assert_int_equal(json_int_member(p, "loading_records"), n);
        assert_int_equal(json_int_member(p, "loading_bytes"), size);
        assert_int_equal(json_int_member(stats, "entries"), n);
        json_decref(p);
        json_decref(stats);
        char etag[64];
        snprintf(etag, sizeof(etag), "\"%016x\"", 1235u);
        expect_json_value(s.port, "big0001234", "{\"i\":1234}", etag);
        stop_and_forget(&s);
        df_dir_remove(dir);
    }
    if (saw != SAW_ALL)
        fail_msg("loads of up to %zu entries ended before every request saw them (saw %#x of %#x)", n / 2, saw,
                 SAW_ALL);
}

/* SIGTERM during the load stops the server at once, exit 0, without writing anything to the directory. */
static void sigterm_while_loading_leaves_the_files_as_they_were(void **state)
{
    (void)state;
    size_t n = big_entries();
    int stopped_while_loading = 0;
    for (int attempt = 0; attempt < 4 && !stopped_while_loading; attempt++, n *= 2) {
        char dir[64];
        make_dir(dir);
        write_big_snapshot(dir, n);
        unsigned char *before;
        size_t before_len;
        assert_int_equal(df_read(dir, "snapshot", &before, &before_len), 0);
        struct server s;
        start_loading(&s, dir, NULL);
        json_t *p = persistence_stats(s.port, NULL);
        int loading = json_is_true(json_object_get(p, "loading"));
        json_decref(p);
        char *err = stop_clean(&s);
        /* The load may have ended between /stats and the signal: then the server saved as usual, and we retry. */
        stopped_while_loading = loading && strstr(err, "stop signal while loading: stopping without saving") != NULL;
        if (stopped_while_loading) {
            struct df_bytes want = {.data = before, .len = before_len};
            expect_unchanged(dir, "snapshot", &want);
            expect_listing(dir, "lock snapshot");
        }
        free(err);
        free(before);
        df_dir_remove(dir);
    }
    if (!stopped_while_loading)
        fail_msg("loads of up to %zu entries ended before SIGTERM reached them", n / 2);
}

/* ---- the memory bound while loading ---------------------------------------------------- */

#define MEM_ENTRIES 4000
#define MEM_VALUE   1000 /* bytes per value: about 4 MB saved, four times the bound below */

static void mem_value(char *out, int i)
{
    int n = snprintf(out, MEM_VALUE + 1, "value %d ", i);
    memset(out + n, 'x', (size_t)(MEM_VALUE - n));
    out[MEM_VALUE] = '\0';
}

/* Stores MEM_ENTRIES strings "m%04d" through _mset, 500 a request. */
static void fill_for_memory(unsigned port)
{
    for (int first = 0; first < MEM_ENTRIES; first += 500) {
        struct df_bytes body = {0};
        char item[MEM_VALUE + 64], value[MEM_VALUE + 1];
        df_put(&body, "{\"entries\":[", 12);
        for (int i = first; i < first + 500; i++) {
            mem_value(value, i);
            int len =
                snprintf(item, sizeof(item), "%s{\"key\":\"m%04d\",\"value\":\"%s\"}", i > first ? "," : "", i, value);
            df_put(&body, item, (size_t)len);
        }
        df_put(&body, "]}", 3); /* with the NUL */
        struct http_res res;
        http_call(port, "POST", "/cache/_mset", (const char *)body.data, &res);
        json_t *want = json_pack("{s:i}", "stored", 500);
        if (!json_equal(expect_json(&res, 200), want))
            fail_msg("_mset: %s", res.body);
        json_decref(want);
        http_res_free(&res);
        df_bytes_free(&body);
    }
}

/* Reads every key back with _mget; asserts each present one has its value, and returns how many are present. */
static json_int_t count_intact(unsigned port)
{
    json_int_t present = 0;
    for (int first = 0; first < MEM_ENTRIES; first += 1000) {
        struct df_bytes body = {0};
        df_put(&body, "{\"keys\":[", 9);
        for (int i = first; i < first + 1000; i++) {
            char key[16];
            int len = snprintf(key, sizeof(key), "%s\"m%04d\"", i > first ? "," : "", i);
            df_put(&body, key, (size_t)len);
        }
        df_put(&body, "]}", 3);
        struct http_res res;
        http_call(port, "POST", "/cache/_mget", (const char *)body.data, &res);
        json_t *entries = json_object_get(expect_json(&res, 200), "entries");
        const char *key;
        json_t *v;
        json_object_foreach(entries, key, v)
        {
            char want[MEM_VALUE + 1];
            mem_value(want, atoi(key + 1));
            if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0)
                fail_msg("%s came back with another value", key);
            present++;
        }
        http_res_free(&res);
        df_bytes_free(&body);
    }
    return present;
}

/*
 * Restarted with a --max-memory far below the saved data, the server still
 * starts: the policy evicts (or, with noeviction, what does not fit is not
 * loaded), the bound holds, what is loaded is intact, and the log says how
 * many entries were left out.
 */
static void a_smaller_max_memory_applies_while_loading(void **state)
{
    (void)state;
    char dir[64], copy[64];
    make_dir(dir);
    make_dir(copy);
    struct server s;
    start_on(&s, dir, NULL);
    fill_for_memory(s.port);
    stop_and_forget(&s);
    unsigned char *saved;
    size_t saved_len;
    assert_int_equal(df_read(dir, "snapshot", &saved, &saved_len), 0);
    write_file(copy, "snapshot", saved, saved_len); /* the first restart saves fewer entries over it */
    free(saved);

    static const char *const policies[][5] = {
        {"--max-memory", "1mb", NULL},
        {"--max-memory", "1mb", "--eviction", "noeviction", NULL},
    };
    for (int i = 0; i < 2; i++) {
        start_on(&s, i == 0 ? dir : copy, policies[i]);
        json_t *stats = get_stats(s.port);
        json_int_t entries = json_int_member(stats, "entries");
        json_int_t used = json_int_member(stats, "bytes_used"), max = json_int_member(stats, "max_memory");
        json_decref(stats);
        assert_int_equal(max, 1024 * 1024);
        if (used > max)
            fail_msg("bytes_used %lld is over max_memory %lld after the load", (long long)used, (long long)max);
        if (entries <= 0 || entries >= MEM_ENTRIES)
            fail_msg("%lld entries loaded of %d under a quarter of their memory", (long long)entries, MEM_ENTRIES);
        assert_int_equal(count_intact(s.port), entries);

        char *err = server_stderr(&s);
        char prefix[128];
        snprintf(prefix, sizeof(prefix), "--max-memory %d is smaller than the saved data: ", 1024 * 1024);
        const char *said = strstr(err, prefix);
        unsigned long long evicted = 0, dropped = 0, dropped_bytes = 0; /* fail_msg does not return */
        if (said == NULL ||
            sscanf(said + strlen(prefix), "%llu entries evicted by policy and %llu (%llu bytes) not loaded", &evicted,
                   &dropped, &dropped_bytes) != 3)
            fail_msg("no word of the entries left out; stderr:\n%s", err);
        free(err);
        if ((json_int_t)(evicted + dropped) + entries != MEM_ENTRIES)
            fail_msg("%llu evicted + %llu not loaded + %lld loaded is not the %d saved", evicted, dropped,
                     (long long)entries, MEM_ENTRIES);
        if (i == 1 && evicted != 0)
            fail_msg("noeviction evicted %llu entries while loading", evicted);
        if (i == 1 && dropped_bytes < dropped * MEM_VALUE)
            fail_msg("%llu entries not loaded counted as %llu bytes", dropped, dropped_bytes);
        stop_and_forget(&s);
    }
    df_dir_remove(dir);
    df_dir_remove(copy);
}

/* ---- /metrics ------------------------------------------------------------------------------ */

static void metrics_show_snapshots_and_the_log(void **state)
{
    (void)state;
    char dir[64];
    struct server s;
    start_fresh(dir, &s, log_always);
    put_json(s.port, "a", "1", NULL, NULL);
    put_json(s.port, "b", "2", NULL, NULL);
    assert_int_equal(snapshot_now(s.port), 2);
    put_json(s.port, "c", "3", NULL, NULL);

    struct http_res res;
    http_call(s.port, "GET", "/metrics", NULL, &res);
    assert_int_equal(res.status, 200);
    struct exposition *x = malloc(sizeof(*x));
    assert_non_null(x);
    exposition_parse(res.body, res.body_len, x);
    static const struct {
        const char *name, *type;
    } families[] = {
        {"cachette_loading", "gauge"},
        {"cachette_loading_bytes", "gauge"},
        {"cachette_loading_bytes_total", "gauge"},
        {"cachette_snapshots_total", "counter"},
        {"cachette_snapshot_failures_total", "counter"},
        {"cachette_snapshot_running", "gauge"},
        {"cachette_last_snapshot_entries", "gauge"},
        {"cachette_last_snapshot_bytes", "gauge"},
        {"cachette_last_snapshot_duration_seconds", "gauge"},
        {"cachette_last_snapshot_timestamp_seconds", "gauge"},
        {"cachette_log_bytes_total", "counter"},
        {"cachette_log_fsyncs_total", "counter"},
        {"cachette_log_write_errors_total", "counter"},
        {"cachette_log_buffered_bytes", "gauge"},
    };
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        const struct family *f = exposition_family(x, families[i].name);
        if (f == NULL || !f->has_help || strcmp(f->type, families[i].type) != 0 || !f->has_samples)
            fail_msg("/metrics lacks the %s %s with HELP and a sample", families[i].type, families[i].name);
    }
    assert_true(exposition_value(x, "cachette_loading", "") == 0);
    assert_true(exposition_value(x, "cachette_snapshots_total", "") == 1);
    assert_true(exposition_value(x, "cachette_snapshot_failures_total", "") == 0);
    assert_true(exposition_value(x, "cachette_last_snapshot_entries", "") == 2);
    assert_true(exposition_value(x, "cachette_last_snapshot_bytes", "") == (double)df_size(dir, "snapshot"));
    assert_true(exposition_value(x, "cachette_last_snapshot_timestamp_seconds", "") > 1.6e9);
    /* Three SET records in frames were appended, and with always each write was fsynced before its answer. */
    double logged = exposition_value(x, "cachette_log_bytes_total", "");
    double want = 3 * (DF_FRAME_HEADER + set_record_size(1, 0, 1));
    if (logged != want)
        fail_msg("cachette_log_bytes_total is %g, expected %g", logged, want);
    assert_true(exposition_value(x, "cachette_log_fsyncs_total", "") >= 1);
    assert_true(exposition_value(x, "cachette_log_buffered_bytes", "") == 0);
    free(x);
    http_res_free(&res);
    finish(dir, &s);
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(a_clean_restart_keeps_every_value_its_kind_bytes_and_etag),
        cmocka_unit_test(new_versions_start_above_every_saved_version),
        cmocka_unit_test(after_a_crash_the_log_replays_every_acknowledged_change_in_order),
        cmocka_unit_test(without_a_log_a_crash_goes_back_to_the_last_snapshot),
        {"a torn last log record: cut short", a_torn_last_log_record_is_dropped_with_a_warning, NULL, NULL,
         (void *)&torn_cut_short},
        {"a torn last log record: whole, its checksum failing", a_torn_last_log_record_is_dropped_with_a_warning, NULL,
         NULL, (void *)&torn_bad_checksum},
        {"a torn last log record: zeros to the end", a_torn_last_log_record_is_dropped_with_a_warning, NULL, NULL,
         (void *)&torn_zeros},
        cmocka_unit_test(a_damaged_length_mid_log_is_damage_not_a_torn_tail),
        cmocka_unit_test(a_second_server_on_the_same_directory_exits_2),
        cmocka_unit_test(post_snapshot_answers_what_it_saved),
        cmocka_unit_test(snapshots_one_after_another_are_never_refused),
        cmocka_unit_test(post_snapshot_without_a_data_dir_is_404),
        cmocka_unit_test(a_second_snapshot_while_one_runs_is_409),
        cmocka_unit_test(while_loading_the_server_answers_503_and_shows_the_progress),
        cmocka_unit_test(sigterm_while_loading_leaves_the_files_as_they_were),
        cmocka_unit_test(a_smaller_max_memory_applies_while_loading),
        cmocka_unit_test(metrics_show_snapshots_and_the_log),
    };
    enum { FIXED = sizeof(fixed) / sizeof(fixed[0]) };
    struct CMUnitTest tests[FIXED + DAMAGE_CASES];
    memcpy(tests, fixed, sizeof(fixed));
    for (size_t i = 0; i < DAMAGE_CASES; i++)
        tests[FIXED + i] =
            (struct CMUnitTest){damage_cases[i].name, damage_stops_the_start_and_recover_loads_what_verifies, NULL,
                                NULL, (void *)&damage_cases[i]};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
