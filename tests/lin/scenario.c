/*
 * One linearizability scenario (see scenario.h).
 *
 * The fault runs on a thread of its own beside the recorder's clients and
 * only while they run. A pause stops every thread of the server (server.h
 * waits until the kernel says so) for longer than the clients' 400 ms
 * deadline at times, so some answers never come and those operations are
 * recorded as unknown. A kill restarts the server on the same port and data
 * directory with --append-log always: every write acknowledged before the
 * kill must still be there, so the history across restarts is judged with
 * no loss allowed. Eviction and expiry are the two ways the server may drop
 * an entry on its own; their histories say "# allow-loss", and the scenario
 * reads /stats afterwards to make sure the loss did happen (a run in which
 * nothing was evicted would prove nothing about eviction).
 */
#include "scenario.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../support/child.h"
#include "../support/http.h"
#include "../support/netfuzz.h"
#include "../support/server.h"
#include "history.h"
#include "lincheck.h"

#define CLIENTS       8
#define OP_TIMEOUT_MS 400

const struct scenario scenarios[] = {
    {"http1", FAULT_NONE, 0, 0, 0, 0},     {"hot-key", FAULT_NONE, 0, 0, 0, 1}, {"http2-cut", FAULT_NONE, 1, 3, 0, 0},
    {"http+resp", FAULT_NONE, 0, 0, 4, 0}, {"pause", FAULT_PAUSE, 0, 1, 0, 0},  {"evict", FAULT_EVICT, 0, 0, 0, 0},
    {"expire", FAULT_EXPIRE, 0, 0, 0, 0},  {"kill", FAULT_KILL, 0, 1, 0, 0},    {NULL, FAULT_NONE, 0, 0, 0, 0},
};

struct fault_run {
    const struct scenario *sc;
    struct server *s;
    const struct server_opts *opts;
    struct rng rng;
    atomic_int stop;
    uint64_t injected;
    char failure[256]; /* a restart that failed: the run is void */
};

static void *fault_main(void *arg)
{
    struct fault_run *f = arg;
    while (!atomic_load(&f->stop) && f->failure[0] == '\0') {
        sleep_ms(100 + (int)rng_pick(&f->rng, 400));
        if (atomic_load(&f->stop))
            break;
        if (f->sc->fault == FAULT_PAUSE) {
            if (server_pause(f->s, 5000) != 0) {
                snprintf(f->failure, sizeof(f->failure), "the server did not stop on SIGSTOP");
                break;
            }
            sleep_ms(50 + (int)rng_pick(&f->rng, 550));
            server_signal(f->s, SIGCONT);
        } else {
            server_signal(f->s, SIGKILL);
            server_wait_exit(f->s, 10000);
            server_cleanup(f->s);
            if (server_start(f->s, f->opts) != 0) {
                snprintf(f->failure, sizeof(f->failure), "the server did not restart after a SIGKILL");
                break;
            }
        }
        f->injected++;
    }
    return NULL;
}

/* A /stats member, or -1 (the check of a fault that must have happened). */
static long long stat_member(unsigned port, const char *name)
{
    struct http_req req = {.path = "/stats"};
    struct http_res res;
    long long v = -1;
    if (http_do(NULL, port, &req, &res) == 0 && res.status == 200 && json_is_integer(json_object_get(res.json, name)))
        v = json_integer_value(json_object_get(res.json, name));
    http_res_free(&res);
    return v;
}

static void check_history(const char *path, struct scenario_result *out)
{
    struct lin_history h;
    struct lin_parse_error err;
    struct lin_stats stats;
    FILE *in = fopen(path, "r");
    if (in == NULL || lin_history_read(in, &h, &err) != 0) {
        snprintf(out->why, sizeof(out->why), "%s: line %u: %s", path, in ? err.line : 0,
                 in ? err.message : strerror(errno));
        out->verdict = -2;
        if (in != NULL)
            fclose(in);
        return;
    }
    fclose(in);
    out->verdict = lin_check(&h, NULL, stdout, &stats);
    out->check_seconds = (double)stats.elapsed_ns / 1e9;
    if (out->verdict == LIN_UNDECIDED)
        snprintf(out->why, sizeof(out->why), "the checker reached its bound on %s (history kept: %s)",
                 stats.limit == LIN_LIMIT_STATES ? "states" : "memory", path);
    lin_history_free(&h);
}

void scenario_run(const struct scenario *sc, const char *server_bin, uint64_t seed, int64_t duration_ms,
                  const char *dir, struct scenario_result *out)
{
    char port[16], data_dir[256] = "";
    const char *args[16];
    size_t n = 0;
    struct server s;
    memset(out, 0, sizeof(*out));
    struct recorder_config cfg = {
        .clients = CLIENTS,
        .plain_keys = 3,
        .counter_keys = 1,
        .duration_ms = duration_ms,
        .seed = seed,
        .http2 = sc->http2,
        .lossy_percent = sc->lossy_percent,
        .resp_clients = sc->resp_clients,
        .timeout_ms = OP_TIMEOUT_MS,
    };

    if (sc->hot) {
        cfg.plain_keys = 1;
        cfg.counter_keys = 0;
        cfg.read_then_write = 1;
    } else if (sc->fault == FAULT_EVICT) {
        /* Eight keys of 16 KiB against 64 KiB: most writes evict another key. */
        cfg.plain_keys = 8;
        cfg.value_padding = 16 * 1024;
        args[n++] = "--max-memory";
        args[n++] = "64kb";
        args[n++] = "--max-value-bytes";
        args[n++] = "32kb";
    } else if (sc->fault == FAULT_EXPIRE) {
        cfg.ttl = "0.002";
    } else if (sc->fault == FAULT_KILL) {
        snprintf(data_dir, sizeof(data_dir), "%s/data-XXXXXX", dir);
        if (mkdtemp(data_dir) == NULL) {
            snprintf(out->why, sizeof(out->why), "mkdtemp %s: %s", data_dir, strerror(errno));
            out->verdict = -2;
            return;
        }
        snprintf(port, sizeof(port), "%u", free_port());
        args[n++] = "--port";
        args[n++] = port;
        args[n++] = "--data-dir";
        args[n++] = data_dir;
        args[n++] = "--append-log";
        args[n++] = "always";
    }
    if (sc->resp_clients > 0) {
        args[n++] = "--resp-port";
        args[n++] = "0";
    }
    args[n] = NULL;
    struct server_opts opts = {.args = args, .binary = server_bin};
    if (server_start(&s, &opts) != 0) {
        snprintf(out->why, sizeof(out->why), "the server did not start");
        out->verdict = -2;
        return;
    }
    cfg.port = s.port;
    cfg.resp_port = s.resp_port;

    snprintf(out->history, sizeof(out->history), "%s/%s-%" PRIu64 ".history", dir, sc->name, seed);
    FILE *history = fopen(out->history, "w");
    if (history == NULL) {
        snprintf(out->why, sizeof(out->why), "%s: %s", out->history, strerror(errno));
        out->verdict = -2;
        server_cleanup(&s);
        return;
    }
    struct fault_run fault = {.sc = sc, .s = &s, .opts = &opts, .rng = netfuzz_case_rng(seed, 1000)};
    pthread_t fault_thread;
    int faulting = (sc->fault == FAULT_PAUSE || sc->fault == FAULT_KILL) &&
                   pthread_create(&fault_thread, NULL, fault_main, &fault) == 0;
    struct recorder_counts counts;
    int loss_allowed = sc->fault == FAULT_EVICT || sc->fault == FAULT_EXPIRE;
    int recorded = recorder_run(&cfg, loss_allowed, history, &counts);
    if (faulting) {
        atomic_store(&fault.stop, 1);
        pthread_join(fault_thread, NULL);
    }
    fclose(history);
    out->ops = counts.ops;
    out->unknown = counts.unknown;
    out->faults = fault.injected;
    if (sc->fault == FAULT_EVICT)
        out->faults = (uint64_t)stat_member(s.port, "evicted");
    else if (sc->fault == FAULT_EXPIRE)
        out->faults = (uint64_t)stat_member(s.port, "expired");
    if (s.pid != 0)
        server_signal(&s, SIGCONT);
    server_stop(&s, 15000);
    server_cleanup(&s);
    if (data_dir[0] != '\0')
        child_remove_dir(data_dir);

    if (recorded != 0 || fault.failure[0] != '\0') {
        snprintf(out->why, sizeof(out->why), "%s", fault.failure[0] ? fault.failure : "a client did not start");
        out->verdict = -2;
        return;
    }
    check_history(out->history, out);
    if (out->verdict == 1)
        unlink(out->history);
}
