/*
 * State shared by the RESP front's files. A connection lives on one worker
 * thread and is touched only there; the server's settings are read-only
 * once the threads run; counters read by INFO are relaxed atomics.
 */
#ifndef CACHETTE_RESP_INTERNAL_H
#define CACHETTE_RESP_INTERNAL_H

#include <h2o.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "cmd/durable.h"
#include "resp/out.h"
#include "resp/parse.h"
#include "resp/server.h"

/* The RESP front on one worker of the network core. */
struct resp_worker {
    struct resp_server *server;
    struct net_worker *net_worker;
    /* Connections whose replies wait for the log to reach the disk (--append-log always). */
    h2o_linklist_t held;
    struct durable_wait durable;   /* counts them, and wakes this worker when the log moves on */
    atomic_uint_fast64_t commands; /* run on this worker: written by it alone, read by any worker's INFO */
} __attribute__((aligned(64)));

struct resp_server {
    struct net_front front;
    struct resp_settings settings;
    struct resp_limits limits; /* of a request once authenticated */
    const struct cmd_ctx *cmd;
    const struct stats_sources *stats;
    struct net *net;
    SSL_CTX *ssl_ctx; /* NULL: plain text */
    unsigned port;
    unsigned worker_count;
    struct resp_worker **workers; /* by worker index; NULL until attached */
    atomic_uint_fast64_t next_client_id;
};

struct resp_conn {
    struct resp_worker *worker;
    h2o_socket_t *sock;
    struct resp_request req;  /* the request at the head of sock->input */
    struct resp_out out;      /* replies not yet handed to the socket */
    struct resp_out sending;  /* replies the socket is writing */
    h2o_linklist_t held_link; /* on worker->held while hold_lsn is not durable */
    uint64_t hold_lsn;        /* the log position the replies in out wait for; 0: none */
    bool writing;             /* sending is in h2o_socket_write */
    bool paused;              /* reading stopped: too much output waits */
    bool closing;             /* close once out is sent (QUIT, a protocol error) */
    bool authenticated;
    uint64_t id;
    char name[64];                  /* CLIENT SETNAME; "" when unset */
    char lib_name[32], lib_ver[32]; /* CLIENT SETINFO */
    void **scratch;                 /* values read for the command being run: freed after it */
    size_t scratch_len, scratch_cap;
};

/* Runs the command argv[0..argc) (bytes in base) and appends its reply to c->out (commands.c). */
void resp_command_run(struct resp_conn *c, const char *base, const struct resp_arg *argv, size_t argc);

/* Frees what a command's reads allocated (commands.c). */
void resp_scratch_clear(struct resp_conn *c);

/* Takes a new connection (conn.c). */
void resp_conn_serve(struct resp_worker *w, h2o_socket_t *sock);

/* Sets up and frees the worker's held replies (conn.c). */
void resp_held_attach(struct resp_worker *w);
void resp_held_detach(struct resp_worker *w);

#endif
