/*
 * The history recorder of the linearizability check (docs/RELIABILITY.md):
 * concurrent clients run random operations on a few keys of a live server,
 * over real sockets, and every operation is written down with the times it
 * was sent and answered and what the answer said, in the text format
 * tests/lin/history.h reads. The keys are few so that operations collide.
 *
 * Each client is a thread with its own connection (HTTP/1.1 keep-alive, or
 * HTTP/2: h2c by Upgrade). Plain keys ("p0", "p1"…) get reads, writes
 * (PUT and the seed's POST), conditional writes with If-Match (a version the
 * client saw), create-only writes (If-None-Match: *), deletes (plain and
 * with If-Match) and batches (_mset, _mget, one operation per key they
 * name). Counter keys ("n0"…) get increments, reads and deletes. Clients
 * on the Redis protocol share the same keys: GET, SET, DEL and INCRBY,
 * whose replies carry no version. Every
 * value written is unique ("c3-17": client 3's 17th), so a read names the
 * write it saw. An operation whose answer never came (a timeout, a reset, a
 * server killed or paused past the deadline) or is not one the API gives
 * (5xx) is recorded with an unknown outcome: it may or may not have taken
 * effect, as Jepsen records them. A request that never reached the server
 * (a refused connection) or that it refused before running it (503 while it
 * loads its data directory) is no operation and is not recorded.
 */
#ifndef CACHETTE_TESTS_LIN_RECORDER_H
#define CACHETTE_TESTS_LIN_RECORDER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct recorder_config {
    unsigned port;          /* the server's plain HTTP port on 127.0.0.1 */
    unsigned resp_port;     /* its Redis-protocol port, for resp_clients */
    unsigned clients;       /* concurrent clients (threads) */
    unsigned resp_clients;  /* of which this many speak the Redis protocol (the last ones) */
    int read_then_write;    /* each client reads a key, then writes it at once with If-Match on what it read */
    unsigned plain_keys;    /* keys for reads, writes, conditional writes, batches */
    unsigned counter_keys;  /* keys for increments */
    int64_t duration_ms;    /* how long the clients run */
    uint64_t seed;          /* the operations' randomness */
    int http2;              /* 1: HTTP/2 (h2c); 0: HTTP/1.1 */
    unsigned lossy_percent; /* operations sent with a 1–4 ms deadline: most are cut off mid-request */
    size_t value_padding;   /* bytes appended to each written value (memory pressure with a small --max-memory) */
    const char *ttl;        /* "?ttl=" on every write (expiry while the history runs), or NULL */
    int64_t timeout_ms;     /* any other operation's deadline (a paused server makes them unknown) */
};

struct recorder_counts {
    uint64_t ops;     /* operations recorded (a batch counts one per key) */
    uint64_t unknown; /* of which the outcome is unknown */
    uint64_t failed;  /* of which a precondition failed or a key was missing (412, 404, 409) */
};

/*
 * Runs cfg->clients clients for cfg->duration_ms and writes their history
 * to out (a "# allow-loss" line first when loss_allowed: eviction or expiry
 * may drop an entry). Returns 0, or -1 if a client could not start.
 */
int recorder_run(const struct recorder_config *cfg, int loss_allowed, FILE *out, struct recorder_counts *counts);

#endif
