/*
 * The RESP front's place on the network core: its port, and the callbacks
 * the core makes on each worker (attach, detach, serve, refuse). A RESP
 * connection has no drain of its own: the core closes each one that is
 * settled (nothing unanswered) and quiet, and the rest at the deadline.
 * With --tls-cert the port speaks TLS only (as redis-cli --tls does): the
 * handshake comes first, then the connection is served as any other.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net/tls.h"
#include "resp/internal.h"

static void on_refusal_sent(h2o_socket_t *sock, const char *err)
{
    (void)err;
    h2o_socket_close(sock);
}

/* Redis's words for the same refusal, which clients know (over TLS, nothing: it would mean nothing before a handshake).
 */
static void refuse(void *state, int tag, h2o_socket_t *sock)
{
    static const char reply[] = "-ERR max number of clients reached\r\n";
    struct resp_worker *w = state;
    (void)tag;
    if (w->server->ssl_ctx != NULL) {
        h2o_socket_close(sock);
        return;
    }
    h2o_iovec_t buf = h2o_iovec_init(reply, sizeof(reply) - 1);
    h2o_socket_write(sock, &buf, 1, on_refusal_sent);
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    struct resp_worker *w = sock->data;
    if (err != NULL) {
        log_msg(LOG_LEVEL_DEBUG, "RESP TLS handshake failed: %s", err);
        h2o_socket_close(sock);
        return;
    }
    resp_conn_serve(w, sock);
}

static void serve(void *state, int tag, h2o_socket_t *sock)
{
    struct resp_worker *w = state;
    (void)tag;
    if (w->server->ssl_ctx == NULL) {
        resp_conn_serve(w, sock);
        return;
    }
    sock->data = w;
    h2o_socket_ssl_handshake(sock, w->server->ssl_ctx, NULL, on_handshake);
}

static void *attach(struct net_front *front, struct net_worker *nw)
{
    struct resp_server *srv = H2O_STRUCT_FROM_MEMBER(struct resp_server, front, front);
    struct resp_worker *w = aligned_alloc(64, sizeof(*w));
    if (w == NULL)
        return NULL;
    memset(w, 0, sizeof(*w));
    w->server = srv;
    w->net_worker = nw;
    resp_held_attach(w);
    srv->workers[net_worker_index(nw)] = w;
    return w;
}

/* The struct itself goes with the server: INFO on other workers may still read the server's counters. */
static void detach(struct net_front *front, void *state)
{
    (void)front;
    resp_held_detach(state);
}

struct resp_server *resp_server_create(const struct resp_settings *settings, const struct cmd_ctx *cmd,
                                       const struct stats_sources *stats, struct net *net)
{
    struct resp_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->front =
        (struct net_front){.name = "RESP", .attach = attach, .detach = detach, .serve = serve, .refuse = refuse};
    srv->settings = *settings;
    srv->limits = (struct resp_limits){.max_args = RESP_REDIS_MAX_ARGS,
                                       .max_bulk_bytes = settings->max_bulk_bytes,
                                       .max_line_bytes = RESP_REDIS_MAX_LINE_BYTES,
                                       .max_skip_bytes = RESP_REDIS_MAX_BULK_BYTES};
    srv->cmd = cmd;
    srv->stats = stats;
    srv->net = net;
    srv->worker_count = net_threads(net);
    srv->workers = calloc(srv->worker_count, sizeof(*srv->workers));
    if (srv->workers == NULL ||
        (settings->tls_cert != NULL &&
         (srv->ssl_ctx = tls_context_create(settings->tls_cert, settings->tls_key, NULL)) == NULL) ||
        (srv->port = net_listen(net, &srv->front, 0, settings->port, "RESP")) == 0) {
        resp_server_destroy(srv);
        return NULL;
    }
    return srv;
}

unsigned resp_server_port(const struct resp_server *srv)
{
    return srv->port;
}

void resp_server_destroy(struct resp_server *srv)
{
    if (srv == NULL)
        return;
    for (unsigned i = 0; srv->workers != NULL && i < srv->worker_count; i++)
        free(srv->workers[i]);
    if (srv->ssl_ctx != NULL)
        SSL_CTX_free(srv->ssl_ctx);
    free(srv->workers);
    free(srv);
}
