/*
 * Persistence as the HTTP front shows it: the loading gate, POST /snapshot,
 * the "persistence" member of /stats, and replies held for the disk.
 *
 * Held replies. With --append-log always, a write is acknowledged only once
 * its log record is fsynced, and no reply shows a change before it is: a
 * read that saw a write (or a delete) still in the log's buffer would let a
 * client act on a state that a crash then undoes, which the linearizability
 * check (tests/lin/) caught. The handler runs as usual (the store changes,
 * the change hook appends the record before the change is visible), and the
 * response it builds goes through an output filter that, when the log's
 * last appended LSN, read after the handler, is not yet durable, holds the
 * response's final send on the worker's `held` list instead of passing it
 * on. With no write in flight nothing is held. The event loop goes on
 * serving other connections meanwhile. After each fsync the log's writer
 * wakes the worker if it holds anything
 * (src/cmd/durable.c, shared with the RESP front); on the worker's
 * thread the task sends every held response whose LSN is now durable. The
 * LSNs one worker reads only grow, so the list is in LSN order and the walk stops
 * at the first one still waiting. A client that goes away meanwhile
 * disposes of its request, and the hold's pool-linked dispose unlinks it.
 *
 * POST /snapshot runs on the snapshot thread; its completion comes back to
 * the request's worker as a net_task. The request's pool holds a token
 * whose dispose cuts the link if the client leaves first, so the task never
 * touches a freed request.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"
#include "http/reply.h"
#include "http/request.h"
#include "persist/persist.h"

/* ---- held replies ------------------------------------------------------ */

struct held_reply {
    h2o_linklist_t link; /* on the worker's held list while waiting */
    struct http_worker *hw;
    h2o_req_t *req;
    h2o_ostream_t *ostream;
    uint64_t lsn;
    h2o_iovec_t *bufs; /* the final send, copied into the request's pool */
    size_t bufcnt;
    h2o_send_state_t state;
};

struct held_ostream {
    h2o_ostream_t super;
    struct held_reply *held;
};

static struct persist *persist_of(const struct http_worker *hw)
{
    return hw->server->cmd->persist;
}

/* Sends every held reply the log now has on disk. On the worker's thread. */
static void release_durable(struct durable_wait *w)
{
    struct http_worker *hw = H2O_STRUCT_FROM_MEMBER(struct http_worker, durable, w);
    struct persist *p = persist_of(hw);
    while (!h2o_linklist_is_empty(&hw->held)) {
        struct held_reply *h = H2O_STRUCT_FROM_MEMBER(struct held_reply, link, hw->held.next);
        if (!persist_is_durable(p, h->lsn))
            break;
        h2o_linklist_unlink(&h->link);
        durable_wait_unhold(&hw->durable);
        h2o_ostream_send_next(h->ostream, h->req, h->bufs, h->bufcnt, h->state); /* may dispose of the request */
    }
}

/* The request's pool is being cleared (answered, or the client left): forget the hold. */
static void on_held_dispose(void *mem)
{
    struct held_reply *h = mem;
    if (h2o_linklist_is_linked(&h->link)) {
        h2o_linklist_unlink(&h->link);
        durable_wait_unhold(&h->hw->durable);
    }
}

static void held_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
    struct held_reply *h = ((struct held_ostream *)self)->held;
    if (h2o_send_state_is_in_progress(state)) { /* cachette's replies come in one final send; pass others on */
        h2o_ostream_send_next(self, req, bufs, bufcnt, state);
        return;
    }
    h->bufs = h2o_mem_alloc_pool(&req->pool, sizeof(*bufs) * (bufcnt ? bufcnt : 1));
    if (bufcnt != 0)
        memcpy(h->bufs, bufs, sizeof(*bufs) * bufcnt);
    h->bufcnt = bufcnt;
    h->state = state;
    h->ostream = self;
    /* Counted before the durability check in release_durable: the writer's wake sees one or the other (seq_cst). */
    h2o_linklist_insert(&h->hw->held, &h->link);
    durable_wait_hold(&h->hw->durable);
    release_durable(&h->hw->durable);
}

static void held_filter_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    struct http_worker *hw = http_worker_of(req);
    struct persist *p = persist_of(hw);
    uint64_t lsn = persist_visible_lsn(p);
    if (lsn != 0 && !persist_is_durable(p, lsn)) {
        struct held_reply *h = h2o_mem_alloc_shared(&req->pool, sizeof(*h), on_held_dispose);
        memset(h, 0, sizeof(*h));
        h->hw = hw;
        h->req = req;
        h->lsn = lsn;
        struct held_ostream *ostr = (void *)h2o_add_ostream(req, sizeof(*ostr), slot);
        ostr->super.do_send = held_send;
        ostr->held = h;
        slot = &ostr->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

void persistence_register_filter(h2o_pathconf_t *pathconf)
{
    h2o_filter_t *filter = h2o_create_filter(pathconf, sizeof(*filter));
    filter->on_setup_ostream = held_filter_setup;
}

void persistence_attach(struct http_worker *hw)
{
    h2o_linklist_init_anchor(&hw->held);
    durable_wait_attach(&hw->durable, persist_of(hw), hw->net_worker, release_durable);
}

void persistence_detach(struct http_worker *hw)
{
    durable_wait_detach(&hw->durable); /* after this, release_durable is never called for hw */
}

/* ---- the loading gate ---------------------------------------------------- */

int persistence_gate(struct http_server *srv, h2o_req_t *req, const char *path, size_t path_len)
{
    if (!persist_loading(srv->cmd->persist) || h2o_memis(path, path_len, H2O_STRLIT("/stats")) ||
        h2o_memis(path, path_len, H2O_STRLIT("/metrics")))
        return 0;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
    if (h2o_memis(path, path_len, H2O_STRLIT("/health")))
        reply_json(req, 503, H2O_STRLIT("{\"status\":\"loading\"}"));
    else
        reply_error(req, 503, "loading the data directory: try again shortly (GET /stats shows the progress)");
    return -1;
}

/* ---- POST /snapshot ---------------------------------------------------- */

/* One snapshot request, malloc'd: it may outlive its HTTP request. */
struct snapshot_call {
    struct net_task task; /* the completion, run on the request's worker */
    struct http_worker *hw;
    h2o_req_t *req; /* NULL once the client has gone */
    struct snapshot_token *token;
    struct persist_snapshot_result result;
};

/* In the request's pool: its dispose tells the call the request is gone. */
struct snapshot_token {
    struct snapshot_call *call; /* NULL once the call has answered */
};

static void on_token_dispose(void *mem)
{
    struct snapshot_token *token = mem;
    if (token->call != NULL)
        token->call->req = NULL;
}

/* The completion, on the request's worker. */
static void answer_snapshot(struct net_task *task)
{
    struct snapshot_call *call = H2O_STRUCT_FROM_MEMBER(struct snapshot_call, task, task);
    h2o_req_t *req = call->req;
    if (req != NULL) {
        call->token->call = NULL;
        const struct persist_snapshot_result *r = &call->result;
        if (r->ok) {
            char body[128];
            int len = snprintf(body, sizeof(body),
                               "{\"entries\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"milliseconds\":%" PRId64 "}",
                               r->entries, r->bytes, r->ms);
            char *copy = h2o_mem_alloc_pool(&req->pool, (size_t)len);
            memcpy(copy, body, (size_t)len);
            reply_json(req, 200, copy, (size_t)len);
        } else {
            char message[sizeof(r->error) + 32];
            snprintf(message, sizeof(message), "snapshot failed: %s", r->error);
            reply_error(req, 500, message);
        }
    }
    free(call);
}

/* persist_request_snapshot's callback, on the snapshot thread. */
static void snapshot_done(void *ctx, const struct persist_snapshot_result *r)
{
    struct snapshot_call *call = ctx;
    call->result = *r;
    if (net_worker_post(call->hw->net_worker, &call->task) != 0)
        free(call); /* the worker has stopped: its requests are gone with it */
}

void persistence_handle_snapshot(struct http_server *srv, h2o_req_t *req)
{
    struct persist *p = srv->cmd->persist;
    if (!request_method_is(req, H2O_STRLIT("POST"))) {
        reply_method_not_allowed(req, "POST");
        return;
    }
    if (p == NULL) {
        reply_error(req, 404, "persistence is off: start cachette with --data-dir to take snapshots");
        return;
    }
    struct snapshot_call *call = calloc(1, sizeof(*call));
    if (call == NULL) {
        reply_error(req, 503, "out of memory");
        return;
    }
    call->hw = http_worker_of(req);
    call->req = req;
    call->task.run = answer_snapshot;
    call->token = h2o_mem_alloc_shared(&req->pool, sizeof(*call->token), on_token_dispose);
    call->token->call = call;
    int rc = persist_request_snapshot(p, snapshot_done, call);
    if (rc != 0) {
        call->token->call = NULL;
        free(call);
        if (rc == PERSIST_EBUSY)
            reply_error(req, 409, "a snapshot is already being written: try again when it is done");
        else
            reply_error(req, 503, "loading the data directory: try again shortly");
    }
}

/* ---- /stats -------------------------------------------------------------- */

size_t persistence_stats_json(char *buf, size_t size, const struct stats *st)
{
    static const char *const log_names[] = {"off", "no", "everysec", "always"};
    const struct persist_stats *ps = &st->persist;
    int n;
    if (!st->persisting)
        n = snprintf(buf, size, "null");
    else
        n = snprintf(
            buf, size,
            "{\"loading\":%s,\"loading_bytes\":%" PRIu64 ",\"loading_bytes_total\":%" PRIu64
            ",\"loading_records\":%" PRIu64 ",\"append_log\":\"%s\",\"snapshot_running\":%s,\"snapshots\":%" PRIu64
            ",\"snapshot_failures\":%" PRIu64 ",\"last_snapshot_entries\":%" PRIu64 ",\"last_snapshot_bytes\":%" PRIu64
            ",\"last_snapshot_ms\":%" PRId64 ",\"last_snapshot_unix_ms\":%" PRId64 ",\"log_bytes\":%" PRIu64
            ",\"log_fsyncs\":%" PRIu64 ",\"log_write_errors\":%" PRIu64 ",\"log_buffered_bytes\":%" PRIu64 "}",
            ps->loading ? "true" : "false", ps->load_bytes, ps->load_bytes_total, ps->load_records,
            log_names[ps->append_log], ps->snapshot_running ? "true" : "false", ps->snapshots, ps->snapshot_failures,
            ps->last_snapshot_entries, ps->last_snapshot_bytes, ps->last_snapshot_ms, ps->last_snapshot_unix_ms,
            ps->log_bytes, ps->log_fsyncs, ps->log_write_errors, ps->log_buffered);
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}
