/*
 * The Redis-protocol front (src/resp/): RESP2 and RESP3 on a port of its
 * own, on the network core's worker threads, over the same command layer
 * as HTTP. server.c registers it with the core; conn.c runs a connection;
 * commands.c holds the command table.
 */
#ifndef CACHETTE_RESP_SERVER_H
#define CACHETTE_RESP_SERVER_H

#include <stddef.h>

#include "cmd/cmd.h"
#include "net/net.h"
#include "stats.h"

struct resp_settings {
    unsigned port;           /* 0 = any free port */
    const char *auth_token;  /* NULL or "": no authentication */
    const char *tls_cert;    /* PEM chain: the port speaks TLS only; NULL: plain text */
    const char *tls_key;
    size_t max_output_bytes; /* a reply larger than this closes its connection */
    size_t max_bulk_bytes;   /* one argument (at least the value limit) */
    /* What CONFIG GET and INFO report, in Redis's terms. */
    size_t max_memory;
    unsigned max_clients;
    const char *maxmemory_policy; /* "allkeys-lru" (s3fifo, sieve) or "noeviction" */
    const char *save;             /* "" without snapshots, else "<seconds> 1" */
    const char *appendonly;       /* "yes" or "no" */
    const char *appendfsync;      /* "always", "everysec" or "no" */
};

struct resp_server;

/*
 * Makes the RESP front and registers its port with net (before net_start).
 * The caller keeps cmd, stats and net alive until resp_server_destroy.
 * Returns NULL after logging why.
 */
struct resp_server *resp_server_create(const struct resp_settings *settings, const struct cmd_ctx *cmd,
                                       const struct stats_sources *stats, struct net *net);

/* The port bound. */
unsigned resp_server_port(const struct resp_server *server);

/* Frees the front, once net_join has detached it (returned 0), or if net_start never ran. */
void resp_server_destroy(struct resp_server *server);

#endif
