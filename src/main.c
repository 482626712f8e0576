/*
 * cachette's entry point: settings, the store, the network core and the
 * fronts it serves (HTTP), the expiry sweeper and the process lifecycle.
 *
 * Signals: SIGINT, SIGTERM and SIGHUP are blocked in every thread (the mask
 * is set before any thread is created and inherited) and taken synchronously
 * by the main thread with sigwait(), so no handler ever runs inside a worker.
 * On SIGINT or SIGTERM the server stops accepting, drains, and the process
 * exits 0. SIGHUP reopens --log-file (for log rotation) and changes nothing
 * else.
 *
 * The expiry sweeper (and its return of free heap to the system) is
 * src/sweeper.c.
 *
 * With --data-dir (src/persist/): the directory is locked before anything
 * starts, the store reports its changes to the persistence's hook, and the
 * fronts start serving (503 "loading") before the snapshot and the log are
 * loaded, so that health checks see a live, loading server. A stop signal
 * during the load abandons it and leaves the files as they were. After the
 * drain, a last snapshot is written.
 *
 * Under systemd (Type=notify: $NOTIFY_SOCKET set), the server says READY=1
 * once it serves with its data loaded, STATUS= while loading, and
 * STOPPING=1 when a stop signal starts the drain (sd_notify, libsystemd;
 * without $NOTIFY_SOCKET these do nothing).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "cmd/cmd.h"
#include "config.h"
#include "http/server.h"
#include "log.h"
#include "net/net.h"
#include "persist/persist.h"
#include "resp/server.h"
#include "stats.h"
#include "sweeper.h"

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
            log_msg(LOG_LEVEL_INFO, "received SIGHUP: no --log-file to reopen");
        else if (log_open_file(log_file) != 0)
            log_msg(LOG_LEVEL_ERROR, "received SIGHUP: cannot reopen --log-file %s: %s; logging on to the old file",
                    log_file, strerror(errno));
        else
            log_msg(LOG_LEVEL_INFO, "received SIGHUP: reopened the log file");
    }
}

/* Whether SIGINT or SIGTERM waits (blocked) for sigwait: polled while the data directory loads. */
static int stop_signal_pending(void)
{
    sigset_t pending;
    return sigpending(&pending) == 0 && (sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM));
}

/* Opens --data-dir if given. Returns 0 with *out (NULL without it), or main's exit status. */
static int open_persistence(const struct config *cfg, struct persist **out)
{
    *out = NULL;
    if (cfg->data_dir[0] == '\0')
        return 0;
    struct persist_settings settings = {.dir = cfg->data_dir,
                                        .snapshot_interval_ms = cfg->snapshot_interval_ms,
                                        .append_log = cfg->append_log,
                                        .recover = cfg->recover,
                                        .clock_offset_ms = cfg->clock_offset_ms};
    return persist_open(&settings, out);
}

/* "http://127.0.0.1:8080", with IPv6 addresses in brackets. */
/* CONFIG GET save, in Redis's words: "<seconds> 1" when snapshots are taken on a timer, else "". */
static const char *redis_save_setting(const struct config *cfg)
{
    static char save[32];
    if (cfg->data_dir[0] == '\0' || cfg->snapshot_interval_ms == 0)
        return "";
    snprintf(save, sizeof(save), "%lld 1", (long long)(cfg->snapshot_interval_ms / 1000));
    return save;
}

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
    log_set_format(cfg.log_format);
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

    struct persist *persist;
    int rc = open_persistence(&cfg, &persist);
    if (rc != 0)
        return rc;
    uint64_t saved_hash_key[2];
    struct store_config store_cfg = {.max_memory = cfg.max_memory,
                                     .eviction = cfg.eviction,
                                     .on_change = persist != NULL ? persist_on_change : NULL,
                                     .change_ctx = persist};
    if (persist != NULL && persist_saved_hash_key(persist, saved_hash_key))
        store_cfg.hash_key = saved_hash_key; /* the load then fills one shard at a time */
    struct cmd_ctx cmd = {.limits = {.max_key_bytes = cfg.max_key_bytes,
                                     .max_value_bytes = cfg.max_value_bytes,
                                     .max_batch = cfg.max_batch,
                                     .default_ttl_ms = cfg.default_ttl_ms},
                          .persist = persist};
    cmd.store = store_create(&store_cfg);
    if (cmd.store == NULL) {
        log_msg(LOG_LEVEL_ERROR, "cannot create the store: out of memory");
        if (persist != NULL)
            persist_close(persist, false);
        return 1;
    }

    struct sweeper *sweeper = sweeper_start(cmd.store, 1);
    if (sweeper == NULL) {
        log_msg(LOG_LEVEL_ERROR, "cannot start the expiry thread");
        if (persist != NULL)
            persist_close(persist, false);
        store_destroy(cmd.store);
        return 1;
    }

    struct net *net = net_create(&(struct net_settings){.bind = cfg.bind,
                                                        .threads = cfg.threads,
                                                        .max_connections = cfg.max_connections,
                                                        .write_timeout_ms = cfg.write_timeout_ms,
                                                        .drain_timeout_ms = cfg.drain_timeout_ms});
    if (net == NULL) {
        log_msg(LOG_LEVEL_ERROR, "cannot create the network core: out of memory");
        sweeper_stop(sweeper);
        if (persist != NULL)
            persist_close(persist, false);
        store_destroy(cmd.store);
        return 1;
    }
    struct stats_sources stats = {.store = cmd.store, .net = net, .persist = persist, .version = config_version()};

    int tls = cfg.tls_cert[0] != '\0', tls_own_port = tls && cfg.tls_port != CONFIG_PORT_UNSET;
    struct http_settings http = {
        .serve_http = !tls || tls_own_port,
        .http_port = cfg.port,
        .tls_cert = tls ? cfg.tls_cert : NULL,
        .tls_key = cfg.tls_key,
        .https_port = tls_own_port ? cfg.tls_port : cfg.port,
        .max_body_bytes = cfg.max_body_bytes,
        .max_header_bytes = cfg.max_header_bytes,
        .max_mget_bytes = cfg.max_mget_bytes,
        .request_timeout_ms = cfg.request_timeout_ms,
        .idle_timeout_ms = cfg.idle_timeout_ms,
        .http2 = cfg.http2,
        .auth_token = cfg.auth_token,
        .flush_when_down = cfg.flush_when_down,
    };
    if (cfg.auth_token[0] == '\0' && !is_loopback(cfg.bind))
        log_msg(LOG_LEVEL_WARN, "*** --bind %s is not a loopback address and no --auth-token is set: ANYONE who can "
                          "reach this port can read, write and flush the cache ***",
                cfg.bind);
    struct http_server *server = http_server_create(&http, &cmd, &stats, net);
    struct resp_server *resp = NULL;
    if (server != NULL && cfg.resp_port != CONFIG_PORT_UNSET)
        resp = resp_server_create(&(struct resp_settings){.port = cfg.resp_port,
                                                          .auth_token = cfg.auth_token,
                                                          .tls_cert = tls ? cfg.tls_cert : NULL,
                                                          .tls_key = cfg.tls_key,
                                                          .max_output_bytes = cfg.resp_max_output,
                                                          .max_bulk_bytes = cfg.max_body_bytes,
                                                          .max_memory = cfg.max_memory,
                                                          .max_clients = cfg.max_connections,
                                                          .maxmemory_policy = cfg.eviction == STORE_EVICT_NONE
                                                                                  ? "noeviction"
                                                                                  : "allkeys-lru",
                                                          .save = redis_save_setting(&cfg),
                                                          .appendonly = cfg.append_log != PERSIST_LOG_OFF ? "yes" : "no",
                                                          .appendfsync = cfg.append_log == PERSIST_LOG_ALWAYS ? "always"
                                                                         : cfg.append_log == PERSIST_LOG_EVERYSEC
                                                                             ? "everysec"
                                                                             : "no"},
                                  &cmd, &stats, net);
    if (server == NULL || (cfg.resp_port != CONFIG_PORT_UNSET && resp == NULL) || net_start(net) != 0) {
        net_join(net);
        if (server != NULL)
            http_server_destroy(server);
        resp_server_destroy(resp);
        sweeper_stop(sweeper);
        if (persist != NULL)
            persist_close(persist, false);
        store_destroy(cmd.store);
        return 1;
    }
    char urls[2][96] = {"", ""};
    if (http.serve_http)
        format_url(urls[0], sizeof(urls[0]), "http", cfg.bind, http_server_http_port(server));
    if (tls)
        format_url(urls[1], sizeof(urls[1]), "https", cfg.bind, http_server_https_port(server));
    char redis_url[96] = "";
    if (resp != NULL) {
        strcpy(redis_url, " and ");
        format_url(redis_url + 5, sizeof(redis_url) - 5, "redis", cfg.bind, resp_server_port(resp));
    }
    printf("cachette %s listening on %s%s%s%s (threads %u, max-memory %zu bytes)\n", config_version(), urls[0],
           urls[0][0] && urls[1][0] ? " and " : "", urls[1], redis_url, cfg.threads, cfg.max_memory);
    fflush(stdout);

    /* 1: damage stops start-up; -1: a stop signal came during the load (the files stay as they were). */
    if (persist != NULL)
        sd_notifyf(0, "STATUS=loading %s", cfg.data_dir);
    int load = persist != NULL ? persist_load(persist, cmd.store, stop_signal_pending) : 0;
    if (load == 0) {
        sd_notifyf(0, "READY=1\nSTATUS=serving on %s%s", urls[0][0] ? urls[0] : urls[1], redis_url);
        int sig = wait_for_stop_signal(&stop_signals, cfg.log_file);
        sd_notify(0, "STOPPING=1");
        log_msg(LOG_LEVEL_INFO, "received %s: draining connections (up to %lld ms)",
                sig == SIGINT ? "SIGINT" : "SIGTERM", (long long)cfg.drain_timeout_ms);
    } else {
        log_msg(LOG_LEVEL_INFO, load > 0 ? "not starting: the data directory cannot be loaded"
                                         : "stop signal while loading: stopping without saving");
    }
    net_stop(net);
    size_t left = net_join(net);
    if (left > 0)
        log_msg(LOG_LEVEL_WARN, "closing %zu connection(s) still open at the drain deadline", left);
    else {
        http_server_destroy(server); /* with connections left, h2o's contexts still use it: the process exits */
        resp_server_destroy(resp);
    }
    sweeper_stop(sweeper);
    int status = load > 0 ? 1 : 0;
    if (persist != NULL && persist_close(persist, load == 0) != 0)
        status = 1; /* the last snapshot failed (logged): the log files it would have replaced are kept */
    store_destroy(cmd.store);
    log_msg(LOG_LEVEL_INFO, "stopped");
    return status;
}
