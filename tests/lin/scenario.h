/*
 * One linearizability scenario, end to end: start a server, run the
 * recorder's clients against it while a fault is injected, write the
 * history to a file, check it (lincheck.h), stop the server. The short runs
 * of `make test` (test_linearizable.c) and the long ones of
 * `make linearizability` (linearizability.c) are both lists of these.
 */
#ifndef CACHETTE_TESTS_LIN_SCENARIO_H
#define CACHETTE_TESTS_LIN_SCENARIO_H

#include <stdint.h>

#include "recorder.h"

enum scenario_fault {
    FAULT_NONE,
    FAULT_PAUSE,  /* SIGSTOP for 50-600 ms, then SIGCONT, again and again */
    FAULT_KILL,   /* SIGKILL and a restart on the same port and data directory (--append-log always) */
    FAULT_EVICT,  /* a --max-memory small enough that writes evict: a read may miss (allow-loss) */
    FAULT_EXPIRE, /* every write with a TTL of 2 ms: entries expire while the history runs (allow-loss) */
};

struct scenario {
    const char *name;
    enum scenario_fault fault;
    int http2;
    unsigned lossy_percent; /* requests cut off after 1-4 ms: connections reset mid-request */
    unsigned resp_clients;  /* clients on the Redis protocol, beside the HTTP ones, on the same keys */
    int hot;                /* one key, every client reading it and writing it back with If-Match */
};

struct scenario_result {
    int verdict;          /* 1 linearizable, 0 not, -1 the check gave up (a resource bound), -2 the run failed */
    uint64_t ops;         /* operations checked */
    uint64_t unknown;     /* of which with an unknown outcome */
    uint64_t faults;      /* pauses, kills, or entries evicted or expired while it ran */
    double check_seconds; /* the checker's time */
    char history[256];    /* the history's file, kept when the verdict is not 1 */
    char why[512];        /* for verdict -2, or -1 */
};

/*
 * Runs sc with seed for duration_ms against server_bin (NULL: the binary
 * under test, server.h). The history goes to a file under dir, removed when
 * it checks as linearizable; a report of the failing window goes to stdout.
 */
void scenario_run(const struct scenario *sc, const char *server_bin, uint64_t seed, int64_t duration_ms,
                  const char *dir, struct scenario_result *out);

/* The scenarios `make test` and `make linearizability` run, in a table ending with a NULL name. */
extern const struct scenario scenarios[];

#endif
