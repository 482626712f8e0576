/*
 * cachette's entry point: settings, the store, the HTTP front, the expiry
 * sweeper and the process lifecycle.
 *
 * Signals: SIGINT, SIGTERM and SIGHUP are blocked in every thread (the mask
 * is set before any thread is created and inherited) and taken synchronously
 * by the main thread with sigwait(), so no handler ever runs inside a worker.
 * On SIGINT or SIGTERM the server stops accepting, drains, and the process
 * exits 0. SIGHUP reopens --log-file (for log rotation) and changes nothing
 * else.
 *
 * The sweeper thread calls store_expire_step() every SWEEP_INTERVAL_MS; when
 * a step finds expired entries it runs again at once, up to SWEEP_BURST
 * steps, so memory from mass expiry comes back quickly while the work per
 * step, and so the time any shard lock is held, stays bounded.
 *
 * glibc keeps freed memory on its own free lists rather than returning it:
 * after a mass expiry, or after large request and response buffers (a
 * 256 KiB value through 64 connections leaves ~30 MB behind), RSS stays far
 * above what the store holds. So every TRIM_CHECK_MS the sweeper compares
 * the process's RSS with the store's bytes; past bytes x 1.25 + TRIM_SLACK
 * it hands free memory back (malloc_trim). A trim walks the free lists with
 * each arena locked (~10 ms for 500k scattered free chunks), so one that
 * gives back less than half the excess (fragmentation, not free pages)
 * doubles the wait before the next, up to TRIM_BACKOFF_MAX_MS.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "config.h"
#include "http/server.h"
#include "log.h"

#define SWEEP_INTERVAL_MS 100
#define SWEEP_BUCKETS 4096
#define SWEEP_BURST 16
#define TRIM_CHECK_MS 1000
#define TRIM_SLACK ((size_t)16 << 20)
#define TRIM_BACKOFF_MAX_MS 64000

struct sweeper {
    struct store *store;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop; /* guarded by lock */
    /* The sweeper's own: */
    int64_t next_trim_check_ms; /* CLOCK_MONOTONIC */
    int64_t trim_wait_ms;
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* This process's resident bytes, or 0 if /proc cannot tell. */
static size_t resident_bytes(void)
{
    unsigned long pages_total = 0, pages_resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    int n = fscanf(f, "%lu %lu", &pages_total, &pages_resident);
    fclose(f);
    return n == 2 ? (size_t)pages_resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* Hands free heap back to the system when RSS is well above what the store holds (see the top comment). */
static void trim_if_bloated(struct sweeper *sw)
{
    int64_t now = monotonic_ms();
    if (now < sw->next_trim_check_ms)
        return;
    struct store_stats st;
    store_stats(sw->store, &st);
    size_t expected = st.bytes_used + st.bytes_used / 4 + TRIM_SLACK, before = resident_bytes();
    if (before > expected) {
        malloc_trim(0);
        size_t after = resident_bytes();
        int helped = before - after >= (before - expected) / 2;
        sw->trim_wait_ms = helped ? TRIM_CHECK_MS : sw->trim_wait_ms * 2;
        if (sw->trim_wait_ms > TRIM_BACKOFF_MAX_MS)
            sw->trim_wait_ms = TRIM_BACKOFF_MAX_MS;
        log_msg(LOG_DEBUG, "malloc_trim: RSS %zu -> %zu bytes (store %zu); next check in %lld ms", before, after,
                st.bytes_used, (long long)sw->trim_wait_ms);
    } else {
        sw->trim_wait_ms = TRIM_CHECK_MS;
    }
    sw->next_trim_check_ms = now + sw->trim_wait_ms;
}

static void *sweeper_main(void *arg)
{
    struct sweeper *sw = arg;
    pthread_mutex_lock(&sw->lock);
    while (!sw->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += SWEEP_INTERVAL_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&sw->wake, &sw->lock, &until);
        if (sw->stop)
            break;
        pthread_mutex_unlock(&sw->lock);
        for (int i = 0; i < SWEEP_BURST && store_expire_step(sw->store, SWEEP_BUCKETS) > 0; i++)
            ;
        trim_if_bloated(sw);
        pthread_mutex_lock(&sw->lock);
    }
    pthread_mutex_unlock(&sw->lock);
    return NULL;
}

static void sweeper_stop(struct sweeper *sw)
{
    pthread_mutex_lock(&sw->lock);
    sw->stop = 1;
    pthread_cond_signal(&sw->wake);
    pthread_mutex_unlock(&sw->lock);
    pthread_join(sw->thread, NULL);
    pthread_cond_destroy(&sw->wake);
    pthread_mutex_destroy(&sw->lock);
}

/* Whether a numeric address (already validated) is on the loopback interface. */
static int is_loopback(const char *address)
{
    return strncmp(address, "127.", 4) == 0 || strcmp(address, "::1") == 0;
}

/* Waits for SIGINT or SIGTERM, reopening the log file on each SIGHUP meanwhile. */
static int wait_for_stop_signal(const sigset_t *set, const char *log_file)
{
    for (;;) {
        int sig;
        if (sigwait(set, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            return sig;
        if (log_file[0] == '\0')
            log_msg(LOG_INFO, "received SIGHUP: no --log-file to reopen");
        else if (log_open_file(log_file) != 0)
            log_msg(LOG_ERROR, "received SIGHUP: cannot reopen --log-file %s: %s; logging on to the old file",
                    log_file, strerror(errno));
        else
            log_msg(LOG_INFO, "received SIGHUP: reopened the log file");
    }
}

/* "http://127.0.0.1:8080", with IPv6 addresses in brackets. */
static void format_url(char *out, size_t size, const char *scheme, const char *bind, unsigned port)
{
    const char *fmt = strchr(bind, ':') != NULL ? "%s://[%s]:%u" : "%s://%s:%u";
    snprintf(out, size, fmt, scheme, bind, port);
}

int main(int argc, char **argv)
{
    struct config cfg;
    switch (config_load(&cfg, argc, argv)) {
    case CONFIG_RUN:
        break;
    case CONFIG_EXIT:
        return 0;
    case CONFIG_ERROR:
        return 2;
    }
    log_set_level(cfg.log_level);
    if (cfg.log_file[0] != '\0' && log_open_file(cfg.log_file) != 0) {
        fprintf(stderr, "cachette: cannot open --log-file %s: %s\n", cfg.log_file, strerror(errno));
        return 2;
    }

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct store_config store_cfg = {.max_memory = cfg.max_memory, .eviction = cfg.eviction};
    struct cmd_ctx cmd = {.limits = {.max_key_bytes = cfg.max_key_bytes,
                                     .max_value_bytes = cfg.max_value_bytes,
                                     .default_ttl_ms = cfg.default_ttl_ms}};
    cmd.store = store_create(&store_cfg);
    if (cmd.store == NULL) {
        log_msg(LOG_ERROR, "cannot create the store: out of memory");
        return 1;
    }

    struct sweeper sweeper = {.store = cmd.store, .trim_wait_ms = TRIM_CHECK_MS};
    pthread_mutex_init(&sweeper.lock, NULL);
    pthread_cond_init(&sweeper.wake, NULL);
    if (pthread_create(&sweeper.thread, NULL, sweeper_main, &sweeper) != 0) {
        log_msg(LOG_ERROR, "cannot start the expiry thread");
        store_destroy(cmd.store);
        return 1;
    }

    int tls = cfg.tls_cert[0] != '\0', tls_own_port = tls && cfg.tls_port != CONFIG_PORT_UNSET;
    struct http_settings http = {
        .bind = cfg.bind,
        .serve_http = !tls || tls_own_port,
        .http_port = cfg.port,
        .tls_cert = tls ? cfg.tls_cert : NULL,
        .tls_key = cfg.tls_key,
        .https_port = tls_own_port ? cfg.tls_port : cfg.port,
        .threads = cfg.threads,
        .max_connections = cfg.max_connections,
        .max_body_bytes = cfg.max_body_bytes,
        .max_header_bytes = cfg.max_header_bytes,
        .max_batch = cfg.max_batch,
        .request_timeout_ms = cfg.request_timeout_ms,
        .idle_timeout_ms = cfg.idle_timeout_ms,
        .drain_timeout_ms = cfg.drain_timeout_ms,
        .version = config_version(),
        .auth_token = cfg.auth_token,
    };
    if (cfg.auth_token[0] == '\0' && !is_loopback(cfg.bind))
        log_msg(LOG_WARN, "*** --bind %s is not a loopback address and no --auth-token is set: ANYONE who can "
                          "reach this port can read, write and flush the cache ***",
                cfg.bind);
    struct http_server *server = http_server_start(&http, &cmd);
    if (server == NULL) {
        sweeper_stop(&sweeper);
        store_destroy(cmd.store);
        return 1;
    }
    char urls[2][96] = {"", ""};
    if (http.serve_http)
        format_url(urls[0], sizeof(urls[0]), "http", cfg.bind, http_server_http_port(server));
    if (tls)
        format_url(urls[1], sizeof(urls[1]), "https", cfg.bind, http_server_https_port(server));
    printf("cachette %s listening on %s%s%s (threads %u, max-memory %zu bytes)\n", config_version(), urls[0],
           urls[0][0] && urls[1][0] ? " and " : "", urls[1], cfg.threads, cfg.max_memory);
    fflush(stdout);

    int sig = wait_for_stop_signal(&stop_signals, cfg.log_file);
    log_msg(LOG_INFO, "received %s: draining connections (up to %lld ms)", sig == SIGINT ? "SIGINT" : "SIGTERM",
            (long long)cfg.drain_timeout_ms);
    http_server_stop(server);
    size_t left = http_server_join(server);
    if (left > 0)
        log_msg(LOG_WARN, "closing %zu connection(s) still open at the drain deadline", left);
    sweeper_stop(&sweeper);
    store_destroy(cmd.store);
    log_msg(LOG_INFO, "stopped");
    return 0;
}
