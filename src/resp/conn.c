/*
 * One RESP connection on its worker's thread: read, parse, run, reply.
 *
 * Every read parses as many whole requests as the input holds (a pipeline
 * of any depth), runs each and appends its reply to `out`; then `out` is
 * handed to the socket, while the next replies gather in a second buffer
 * (two buffers swap: one being written, one being filled). Bounded memory:
 * once PAUSE_OUTPUT_BYTES of replies wait (or max_output_bytes, if smaller),
 * the connection stops reading, so a client that sends without reading
 * stalls itself, and TCP pushes back; a single reply larger than
 * max_output_bytes closes the connection (a client that asks for more than
 * it may be sent at once). So a connection holds at most about twice
 * max_output_bytes of replies.
 *
 * Held replies (--append-log always): a write is acknowledged only once its
 * log record is on disk, and a read shows nothing that is not (a crash must
 * not undo what a client saw). After each command the connection's hold_lsn
 * moves to the log's last appended position (persist_visible_lsn); while it
 * is not durable, nothing of `out` is sent (replies keep their order: a read
 * pipelined after a write waits too) and the connection waits on its
 * worker's held list. The log's writer thread wakes the worker after each
 * fsync (persist_subscribe), and the worker sends what is now durable.
 *
 * Before authentication (--auth-token), requests are held to Redis's smaller
 * limits (10 arguments of 16 KiB). A protocol error is answered with Redis's
 * text and closes the connection once the reply is sent. The network core
 * closes idle connections on drain: a connection is "settled" whenever
 * nothing it sent is unanswered.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "persist/persist.h"
#include "resp/internal.h"

/* Replies waiting past this stop the reading until the socket has taken them. */
#define PAUSE_OUTPUT_BYTES (256 * 1024)

static struct persist *persist_of(const struct resp_conn *c)
{
    return c->worker->server->cmd->persist;
}

static void close_conn(struct resp_conn *c)
{
    if (h2o_linklist_is_linked(&c->held_link)) {
        h2o_linklist_unlink(&c->held_link);
        durable_wait_unhold(&c->worker->durable);
    }
    resp_request_free(&c->req);
    resp_scratch_clear(c);
    free(c->scratch);
    resp_out_free(&c->out);
    resp_out_free(&c->sending);
    h2o_socket_close(c->sock); /* cancels a write in flight: its buffer is not touched again */
    free(c);
}

static bool held(const struct resp_conn *c)
{
    return c->hold_lsn != 0 && !persist_is_durable(persist_of(c), c->hold_lsn);
}

static void update_settled(struct resp_conn *c)
{
    /* (A request whose skipped bytes were let go of leaves no input, yet is not answered.) */
    int settled =
        !c->writing && c->out.len == 0 && c->sock->input->size == 0 && c->req.phase == RESP_PHASE_START && !held(c);
    net_connection_settled(c->sock, settled);
}

static void on_written(h2o_socket_t *sock, const char *err);

/*
 * Hands `out` to the socket if it is free and nothing holds the replies;
 * closes the connection when it is closing and all is sent. Returns false if
 * the connection was closed.
 */
static bool flush(struct resp_conn *c)
{
    if (c->writing)
        return true;
    if (c->out.len == 0) {
        if (c->closing) {
            close_conn(c);
            return false;
        }
        return true;
    }
    if (held(c)) {
        if (!h2o_linklist_is_linked(&c->held_link)) {
            /* Counted before durability is checked again: the writer's wake sees one or the other (seq_cst). */
            h2o_linklist_insert(&c->worker->held, &c->held_link);
            durable_wait_hold(&c->worker->durable);
            if (held(c))
                return true;
            h2o_linklist_unlink(&c->held_link);
            durable_wait_unhold(&c->worker->durable);
        } else {
            return true;
        }
    }
    c->hold_lsn = 0;
    struct resp_out swap = c->sending;
    c->sending = c->out;
    c->out = swap;
    c->out.len = 0;
    c->out.protocol = c->sending.protocol;
    c->writing = true;
    h2o_iovec_t buf = h2o_iovec_init(c->sending.buf, c->sending.len);
    h2o_socket_write(c->sock, &buf, 1, on_written);
    return true;
}

static const struct resp_limits *limits_of(const struct resp_conn *c)
{
    static const struct resp_limits before_auth = {
        .max_args = RESP_REDIS_PREAUTH_ARGS,
        .max_bulk_bytes = RESP_REDIS_PREAUTH_BULK_BYTES,
        .max_line_bytes = RESP_REDIS_MAX_LINE_BYTES,
        .before_auth = true,
    };
    return c->authenticated ? &c->worker->server->limits : &before_auth;
}

/* How many bytes of replies may wait before the connection stops reading. */
static size_t pause_at(const struct resp_conn *c)
{
    size_t max = c->worker->server->settings.max_output_bytes;
    return max < PAUSE_OUTPUT_BYTES ? max : PAUSE_OUTPUT_BYTES;
}

/*
 * A pipeline's keys, looked up in the store all at once before its commands
 * run one by one: their cache misses then overlap rather than follow each
 * other (a random read over a large store waits for memory twice: its bucket,
 * then its entry). Only for two or more requests: one has nothing to overlap.
 * Only when no request is half parsed: one that arrives in pieces (a large
 * value, or a client trickling a long request) would be peeked at again on
 * every read.
 */
static void prefetch_keys(struct resp_conn *c)
{
    if (c->req.phase != RESP_PHASE_START)
        return;
    struct resp_arg found[STORE_PREFETCH_MAX];
    struct store_key keys[STORE_PREFETCH_MAX];
    const char *in = c->sock->input->bytes;
    size_t n = resp_peek_keys(in, c->sock->input->size, c->worker->server->cmd->limits.max_key_bytes, found,
                              STORE_PREFETCH_MAX);
    if (n < 2)
        return;
    for (size_t i = 0; i < n; i++)
        keys[i] = (struct store_key){in + found[i].offset, found[i].len};
    store_prefetch(c->worker->server->cmd->store, keys, n);
}

/*
 * Runs every whole request the input holds, while the replies may grow.
 * Returns false if the connection was closed.
 */
static bool process_input(struct resp_conn *c)
{
    struct persist *p = persist_of(c);
    prefetch_keys(c);
    while (!c->closing && c->out.len < pause_at(c) && c->sock->input->size > 0) {
        size_t consumed;
        const char *error;
        h2o_buffer_t *in = c->sock->input;
        enum resp_parse_status status = resp_parse(&c->req, in->bytes, in->size, limits_of(c), &consumed, &error);
        if (status == RESP_PARSE_MORE) {
            h2o_buffer_consume(&c->sock->input, consumed); /* the bytes of a request too large to run */
            break;
        }
        if (status == RESP_PARSE_ERROR) {
            resp_out_error(&c->out, error);
            c->closing = true;
            break;
        }
        size_t reply_at = c->out.len;
        if (status == RESP_PARSE_TOO_LARGE) {
            resp_out_errorf(&c->out, "ERR an argument is longer than max-body-bytes (%zu)",
                            c->worker->server->limits.max_bulk_bytes);
        } else if (c->req.argc > 0) {
            resp_command_run(c, in->bytes, c->req.argv, c->req.argc);
            resp_scratch_clear(c);
            /* Whatever the reply shows (a write, or what a read saw) must be on disk before it goes. */
            uint64_t visible = persist_visible_lsn(p);
            if (visible > c->hold_lsn)
                c->hold_lsn = visible;
        }
        h2o_buffer_consume(&c->sock->input, consumed);
        resp_request_reset(&c->req);
        if (c->out.failed || c->out.len - reply_at > c->worker->server->settings.max_output_bytes) {
            log_msg(LOG_LEVEL_WARN, "closing RESP client %llu: %s", (unsigned long long)c->id,
                    c->out.failed ? "out of memory for its replies" : "a reply larger than --resp-max-output");
            close_conn(c);
            return false;
        }
    }
    if (!c->paused && c->out.len >= pause_at(c)) {
        h2o_socket_read_stop(c->sock);
        c->paused = true;
    }
    return true;
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    struct resp_conn *c = sock->data;
    if (err != NULL) {
        close_conn(c);
        return;
    }
    if (process_input(c) && flush(c))
        update_settled(c);
}

/* The socket took `sending`: send what gathered meanwhile, and read again if reading was paused. */
static void on_written(h2o_socket_t *sock, const char *err)
{
    struct resp_conn *c = sock->data;
    c->writing = false;
    c->sending.len = 0;
    if (err != NULL) {
        close_conn(c);
        return;
    }
    if (!flush(c))
        return;
    if (c->paused && c->out.len < pause_at(c)) {
        c->paused = false;
        h2o_socket_read_start(c->sock, on_read);
        if (!process_input(c) || !flush(c))
            return;
    }
    update_settled(c);
}

void resp_conn_serve(struct resp_worker *w, h2o_socket_t *sock)
{
    struct resp_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        h2o_socket_close(sock);
        return;
    }
    const char *token = w->server->settings.auth_token;
    c->worker = w;
    c->sock = sock;
    c->out.protocol = c->sending.protocol = 2;
    c->authenticated = token == NULL || token[0] == '\0';
    c->id = atomic_fetch_add(&w->server->next_client_id, 1) + 1;
    sock->data = c;
    net_connection_settled(sock, 1);
    h2o_socket_read_start(sock, on_read);
    /* After a TLS handshake, what the client sent with its last handshake message is already decrypted here. */
    if (sock->input->size > 0)
        on_read(sock, NULL);
}

/* ---- held replies -------------------------------------------------------- */

/* Sends the replies of every held connection whose writes are now on disk. On the worker's thread. */
static void release_durable(struct durable_wait *dw)
{
    struct resp_worker *w = H2O_STRUCT_FROM_MEMBER(struct resp_worker, durable, dw);
    h2o_linklist_t *node = w->held.next;
    while (node != &w->held) {
        struct resp_conn *c = H2O_STRUCT_FROM_MEMBER(struct resp_conn, held_link, node);
        node = node->next;
        if (held(c))
            continue;
        h2o_linklist_unlink(&c->held_link);
        durable_wait_unhold(dw);
        if (flush(c))
            update_settled(c);
    }
}

void resp_held_attach(struct resp_worker *w)
{
    h2o_linklist_init_anchor(&w->held);
    durable_wait_attach(&w->durable, w->server->cmd->persist, w->net_worker, release_durable);
}

void resp_held_detach(struct resp_worker *w)
{
    durable_wait_detach(&w->durable);
}
