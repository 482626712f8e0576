/*
 * Worker threads, listening sockets, connection accounting and shutdown.
 *
 * One h2o_globalconf_t is built before any thread starts and is read-only
 * afterwards. Each worker owns an evloop, an h2o context and its own
 * listening socket on each port it serves (SO_REUSEPORT, so the kernel
 * spreads new connections across workers with no shared accept lock): plain
 * HTTP, HTTPS, or both. An HTTPS listener differs only in its accept context,
 * which carries the shared TLS context (tls.c); h2o does the handshake and
 * picks HTTP/2 or HTTP/1.1 from ALPN. A connection lives its whole life on
 * the worker that accepted it.
 *
 * Connections are kept twice: on a list per worker (thread-local: the drain
 * waits for it to empty, the write timeout sweeps it) and in a global count
 * (an atomic, to enforce --max-connections). Over the limit a connection
 * gets a fixed 503 JSON answer and is closed.
 *
 * The write timeout. h2o 2.2.5 has none: a client that asks for a large value
 * and never reads keeps the response in memory (h2o's, or the kernel's send
 * buffer) for as long as it likes. Once a second each worker looks at its
 * connections with bytes still to deliver (a write pending in h2o, or a
 * non-empty send queue): one whose peer has acknowledged no new byte (TCP's
 * own count, tcpi_bytes_acked) for --write-timeout is shut down, and h2o,
 * seeing the socket fail, closes it (with a reset, so the kernel drops its
 * queue too) and frees the response. A slow reader that keeps taking bytes
 * is never cut off, however long its response.
 *
 * Stopping: http_server_stop() sets `stopping` and sends each worker a message
 * through its h2o multithread receiver, one worker at a time (h2o shares one
 * buffer recycler among their wake-up sockets; see http_server_stop). Each
 * worker closes its listener, asks h2o to shut down gracefully (GOAWAY for
 * HTTP/2, no more keep-alive for HTTP/1) and runs its loop until its
 * connections are gone or the drain deadline passes, and leaves once it has
 * had its message (h2o cannot dispose of a queue holding one).
 * h2o 2.2.5 never closes idle HTTP/1 keep-alive connections on shutdown, so
 * the deadline is what bounds the drain for those. Contexts are freed by
 * http_server_join once every worker has exited, on the thread that made
 * them: their wake-up sockets' buffers belong to its recycler.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/tcp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/internal.h"
#include "http/reply.h"
#include "http/tls.h"
#include "log.h"
#include "monotonic.h"

/* ---- accepting and counting connections -------------------------------- */

/* How often a worker looks for stalled writes: the write timeout's resolution. */
#define SWEEP_MS 1000

/* One open connection, on its worker's list. */
struct connection {
    h2o_linklist_t link;
    struct worker *worker;
    h2o_socket_t *sock;
    uint64_t acked;        /* the peer's acknowledged bytes at the last sweep */
    int64_t stalled_since; /* when a write was first seen making no progress; 0 if none */
};

static void on_connection_close(void *data)
{
    struct connection *c = data;
    struct worker *w = c->worker;
    h2o_linklist_unlink(&c->link);
    free(c);
    atomic_fetch_sub_explicit(&w->server->connections, 1, memory_order_relaxed);
}

/* Whether the connection has bytes its peer has yet to take: in h2o, or in the kernel's send queue. */
static int has_bytes_to_deliver(h2o_socket_t *sock, int fd)
{
    int queued = 0;
    return h2o_socket_is_writing(sock) || (ioctl(fd, TIOCOUTQ, &queued) == 0 && queued > 0);
}

/* The bytes the peer has acknowledged into *acked; -1 if the kernel cannot say (before Linux 4.1). */
static int bytes_acked(int fd, uint64_t *acked)
{
    struct tcp_info info;
    socklen_t len = sizeof(info);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(info.tcpi_bytes_acked))
        return -1;
    *acked = info.tcpi_bytes_acked;
    return 0;
}

/* Shuts down the connections whose pending write made no progress for the write timeout. */
static void on_sweep(h2o_timeout_entry_t *entry)
{
    struct worker *w = H2O_STRUCT_FROM_MEMBER(struct worker, sweep_entry, entry);
    int64_t now = monotonic_ms();
    for (h2o_linklist_t *node = w->connections.next; node != &w->connections; node = node->next) {
        struct connection *c = H2O_STRUCT_FROM_MEMBER(struct connection, link, node);
        int fd = h2o_socket_get_fd(c->sock);
        uint64_t acked = 0;
        /* Progress unless bytes wait and the count of acknowledged ones is known and has not moved. */
        if (!has_bytes_to_deliver(c->sock, fd) || bytes_acked(fd, &acked) != 0 || acked != c->acked) {
            c->acked = acked;
            c->stalled_since = 0;
        } else if (c->stalled_since == 0) {
            c->stalled_since = now;
        } else if (now - c->stalled_since >= w->server->settings.write_timeout_ms) {
            log_msg(LOG_LEVEL_DEBUG, "closing a connection whose client took no response byte for %lld ms",
                    (long long)(now - c->stalled_since));
            /*
             * Not closed here: h2o owns the socket. Shut down, it fails h2o's
             * write (or read), and h2o closes it; with a zero linger the close
             * is a reset, which drops what the kernel still queues for the peer.
             */
            atomic_fetch_add_explicit(&w->server->write_timeouts, 1, memory_order_relaxed);
            struct linger abort_on_close = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
            shutdown(fd, SHUT_RDWR);
            c->stalled_since = now;
        }
    }
    h2o_timeout_link(w->ctx.loop, &w->sweep, &w->sweep_entry);
}

static void on_refusal_sent(h2o_socket_t *sock, const char *err)
{
    (void)err;
    h2o_socket_close(sock);
}

static void refuse(h2o_socket_t *sock)
{
    static const char response[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                   "Content-Type: application/json\r\n"
                                   "Content-Length: 34\r\n"
                                   "Connection: close\r\n"
                                   "\r\n"
                                   "{\"error\":\"too many connections\"}\r\n";
    h2o_iovec_t buf = h2o_iovec_init(response, sizeof(response) - 1);
    h2o_socket_write(sock, &buf, 1, on_refusal_sent);
}

/* Accepts up to max waiting connections from l; returns how many were waiting (served or refused). */
static int accept_waiting(struct listener *l, int max)
{
    struct worker *w = l->worker;
    int n = 0;
    for (; n < max; n++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(l->sock);
        if (sock == NULL)
            break;
        unsigned open = atomic_fetch_add_explicit(&w->server->connections, 1, memory_order_relaxed);
        if (open >= w->server->settings.max_connections) {
            atomic_fetch_sub_explicit(&w->server->connections, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&w->server->connections_refused, 1, memory_order_relaxed);
            log_msg(LOG_LEVEL_DEBUG, "refused a connection: %u open", open);
            if (l->accept_ctx.ssl_ctx == NULL)
                refuse(sock);
            else
                h2o_socket_close(sock); /* a plain-text 503 means nothing before a TLS handshake */
            continue;
        }
        struct connection *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            atomic_fetch_sub_explicit(&w->server->connections, 1, memory_order_relaxed);
            h2o_socket_close(sock);
            continue;
        }
        c->worker = w;
        c->sock = sock;
        h2o_linklist_insert(&w->connections, &c->link);
        atomic_fetch_add_explicit(&w->server->connections_total, 1, memory_order_relaxed);
        sock->on_close.cb = on_connection_close;
        sock->on_close.data = c;
        h2o_accept(&l->accept_ctx, sock);
    }
    return n;
}

static void on_accept(h2o_socket_t *listen_sock, const char *err)
{
    if (err == NULL)
        accept_waiting(listen_sock->data, 16); /* a few per wake-up, so a busy listener cannot starve the loop */
}

/* ---- listening sockets -------------------------------------------------- */

static int parse_address(const char *host, unsigned port, struct sockaddr_storage *addr, socklen_t *len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE}, *res;
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    if (getaddrinfo(host, service, &hints, &res) != 0)
        return -1;
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static unsigned bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

/* Opens one listening socket on the address; returns the fd or -1 with errno set. */
static int open_listener(const struct sockaddr_storage *addr, socklen_t len)
{
    int on = 1;
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, (const struct sockaddr *)addr, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/*
 * Claims the port with a plain socket first: SO_REUSEPORT would let this
 * process join another server already on the port (the kernel would split
 * connections between the two), so a port in use must fail here. Returns
 * the port (the one chosen, with port 0) or 0 with errno set.
 */
static unsigned claim_port(const struct sockaddr_storage *addr, socklen_t len)
{
    int on = 1;
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return 0;
    unsigned port = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == 0 &&
        bind(fd, (const struct sockaddr *)addr, len) == 0)
        port = bound_port(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return port;
}

/*
 * Binds one SO_REUSEPORT socket per worker for one kind of listener. Ports are
 * claimed one kind after the other, so with port 0 for both the second claim
 * cannot pick the port the first kind already holds.
 */
static int open_listeners(struct http_server *srv, enum listen_kind kind, unsigned port)
{
    static const char *const kind_names[] = {"HTTP", "HTTPS"};
    struct sockaddr_storage addr;
    socklen_t len;
    if (parse_address(srv->settings.bind, port, &addr, &len) != 0) {
        log_msg(LOG_LEVEL_ERROR, "--bind %s is not a numeric IPv4 or IPv6 address", srv->settings.bind);
        return -1;
    }
    unsigned bound = claim_port(&addr, len);
    if (bound != 0) {
        if (addr.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&addr)->sin6_port = htons((uint16_t)bound);
        else
            ((struct sockaddr_in *)&addr)->sin_port = htons((uint16_t)bound);
    }
    for (unsigned i = 0; bound != 0 && i < srv->settings.threads; i++) {
        if ((srv->workers[i].listeners[kind].fd = open_listener(&addr, len)) == -1)
            break;
    }
    if (bound == 0 || srv->workers[srv->settings.threads - 1].listeners[kind].fd == -1) {
        log_msg(LOG_LEVEL_ERROR, "cannot listen for %s on %s port %u: %s", kind_names[kind], srv->settings.bind, port,
                strerror(errno));
        return -1;
    }
    srv->ports[kind] = bound;
    return 0;
}

static void close_listener_fds(struct http_server *srv)
{
    for (unsigned i = 0; i < srv->settings.threads; i++)
        for (int kind = 0; kind < LISTEN_KINDS; kind++)
            if (srv->workers[i].listeners[kind].fd != -1)
                close(srv->workers[i].listeners[kind].fd);
}

/* ---- worker threads ----------------------------------------------------- */

/* The stop message: once this returns, the loop re-reads `stopping`. */
static void on_wakeup(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages))
        h2o_linklist_unlink(messages->next);
    struct worker *w = H2O_STRUCT_FROM_MEMBER(struct worker, wakeup, receiver);
    atomic_store_explicit(&w->woken, 1, memory_order_release);
}

/* Stops and closes a worker's listening sockets (freed by its loop's next run). */
static void close_listeners(struct worker *w)
{
    for (int kind = 0; kind < LISTEN_KINDS; kind++) {
        struct listener *l = &w->listeners[kind];
        if (l->sock != NULL) {
            h2o_socket_read_stop(l->sock);
            h2o_socket_close(l->sock);
            l->sock = NULL;
        }
    }
}

static void drain(struct worker *w)
{
    int64_t deadline = monotonic_ms() + w->server->settings.drain_timeout_ms;

    /*
     * Closing a listening socket makes the kernel reset every connection still
     * in its accept queue, requests and all. Take them first, so they are
     * served (with Connection: close); only a connection completing its
     * handshake in the instant between the last accept and the close is reset.
     */
    for (int kind = 0; kind < LISTEN_KINDS; kind++)
        if (w->listeners[kind].sock != NULL)
            while (accept_waiting(&w->listeners[kind], 64) == 64)
                ;
    close_listeners(w);
    h2o_context_request_shutdown(&w->ctx);
    while (!h2o_linklist_is_empty(&w->connections) && monotonic_ms() < deadline)
        h2o_evloop_run(w->ctx.loop, 50);
    h2o_evloop_run(w->ctx.loop, 0); /* let closed sockets be freed */
}

static size_t open_connections(struct worker *w)
{
    size_t n = 0;
    for (h2o_linklist_t *node = w->connections.next; node != &w->connections; node = node->next)
        n++;
    return n;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    h2o_evloop_t *loop = w->ctx.loop;

    while (!atomic_load_explicit(&w->server->stopping, memory_order_acquire))
        h2o_evloop_run(loop, INT32_MAX);
    drain(w);
    size_t left = open_connections(w);
    if (left > 0)
        log_msg(LOG_LEVEL_WARN, "drain deadline passed with %zu connection(s) open on a worker", left);
    /* Woken by something else first: take the stop message before going, h2o cannot dispose of a queued one. */
    while (!atomic_load_explicit(&w->woken, memory_order_acquire))
        h2o_evloop_run(loop, 10);
    return NULL;
}

/*
 * Frees a worker's context, queue and loop once its thread has exited. Done
 * by http_server_join, on the thread that made them, not by the worker: the
 * wake-up socket's buffers go back to that thread's recycler (see
 * http_server_stop), which the workers must not share.
 */
static void dispose_worker(struct worker *w)
{
    h2o_evloop_t *loop = w->ctx.loop;
    /* The graceful-shutdown GOAWAY timer stays linked for a second; dispose would assert. */
    if (h2o_timeout_is_linked(&w->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&w->ctx.http2._graceful_shutdown_timeout);
    if (h2o_timeout_is_linked(&w->sweep_entry))
        h2o_timeout_unlink(&w->sweep_entry);
    h2o_timeout_dispose(loop, &w->sweep);
    h2o_multithread_queue_t *queue = w->ctx.queue;
    h2o_multithread_unregister_receiver(queue, &w->wakeup);
    h2o_context_dispose(&w->ctx);
    h2o_evloop_run(loop, 0); /* frees the queue's socket, closed by dispose */
    h2o_evloop_destroy(loop);
    free(queue); /* h2o 2.2.5's h2o_multithread_destroy_queue closes the queue but never frees it */
    w->ctx.loop = NULL;
}

/* Logger callback: every finished request, h2o's own early errors included, feeds the worker's metrics. */
static void log_access(h2o_logger_t *self, h2o_req_t *req)
{
    (void)self;
    struct worker *w = H2O_STRUCT_FROM_MEMBER(struct worker, ctx, req->conn->ctx);
    int64_t duration_us = 0;
    if (!h2o_time_compute_duration(req, &duration_us) || duration_us < 0)
        duration_us = 0;
    metrics_observe(&w->metrics, metrics_method(req->method.base, req->method.len), req->res.status,
                    (uint64_t)duration_us);
}

static void register_pathconf_hooks(struct http_server *srv, h2o_pathconf_t *pathconf)
{
    reply_register_error_filter(pathconf, srv->settings.max_body_bytes);
    h2o_create_logger(pathconf, sizeof(h2o_logger_t))->log_access = log_access;
}

void http_server_configure(struct http_server *srv)
{
    h2o_globalconf_t *conf = &srv->config;
    h2o_config_init(conf);
    snprintf(srv->server_name, sizeof(srv->server_name), "cachette/%s", srv->settings.version);
    conf->server_name = h2o_iovec_init(srv->server_name, strlen(srv->server_name));
    /*
     * One byte of slack: h2o 2.2.5 refuses a chunked HTTP/1 body when it reaches
     * the limit (>=) but a Content-Length or HTTP/2 body only past it (>), so a
     * chunked body of exactly max-body-bytes would get 413. routes.c refuses
     * the one extra byte the slack lets in, with the same JSON 413.
     */
    conf->max_request_entity_size = srv->settings.max_body_bytes + 1;
    conf->http1.req_timeout = (uint64_t)srv->settings.request_timeout_ms;
    conf->http2.idle_timeout = (uint64_t)srv->settings.idle_timeout_ms;
    conf->http1.upgrade_to_http2 = srv->settings.http2; /* both ways to h2c: prior knowledge and Upgrade */

    h2o_hostconf_t *host = h2o_config_register_host(conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *root = h2o_config_register_path(host, "/", 0);
    struct route_handler *handler = (void *)h2o_create_handler(root, sizeof(*handler));
    handler->super.on_req = routes_handle;
    handler->server = srv;
    register_pathconf_hooks(srv, root);
    /* Errors h2o raises before routing (413, 417) are bound to the host's fallback path. */
    register_pathconf_hooks(srv, &host->fallback_path);
}

static void init_worker(struct http_server *srv, struct worker *w)
{
    w->server = srv;
    h2o_context_init(&w->ctx, h2o_evloop_create(), &srv->config);
    h2o_multithread_register_receiver(w->ctx.queue, &w->wakeup, on_wakeup);
    h2o_linklist_init_anchor(&w->connections);
    h2o_timeout_init(w->ctx.loop, &w->sweep, SWEEP_MS);
    w->sweep_entry.cb = on_sweep;
    h2o_timeout_link(w->ctx.loop, &w->sweep, &w->sweep_entry);
    for (int kind = 0; kind < LISTEN_KINDS; kind++) {
        struct listener *l = &w->listeners[kind];
        if (l->fd == -1)
            continue;
        l->worker = w;
        l->accept_ctx.ctx = &w->ctx;
        l->accept_ctx.hosts = srv->config.hosts;
        l->accept_ctx.ssl_ctx = kind == LISTEN_HTTPS ? srv->ssl_ctx : NULL;
        l->sock = h2o_evloop_socket_create(w->ctx.loop, l->fd, H2O_SOCKET_FLAG_DONT_READ);
        l->sock->data = l;
        h2o_socket_read_start(l->sock, on_accept);
    }
}

/* ---- the open-file limit ------------------------------------------------ */

/* Descriptors left for whatever else opens one: a log file reopened, a TLS handshake's reads. */
#define SPARE_FDS 16

/* How many descriptors the process has open, or -1 if /proc cannot say. */
static long open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL)
        return -1;
    long n = -1; /* not the directory's own descriptor */
    while (readdir(dir) != NULL)
        n++;
    closedir(dir);
    return n - 2; /* nor "." and ".." */
}

/*
 * Every connection holds a descriptor, so --max-connections must fit under
 * RLIMIT_NOFILE next to the descriptors already open (listeners, event
 * loops, queues): past the limit accept() fails, the listener stays
 * readable, and its worker spins without serving anyone. Raises the soft
 * limit as far as needed (up to the hard one), else lowers max_connections
 * to what fits, as Redis does with maxclients. Returns -1 if not even one
 * connection fits.
 */
static int fit_open_file_limit(struct http_settings *settings)
{
    struct rlimit lim;
    long in_use = open_fds();
    if (in_use < 0 || getrlimit(RLIMIT_NOFILE, &lim) != 0)
        return 0; /* nothing to go on: leave both as they are */
    rlim_t needed = (rlim_t)in_use + SPARE_FDS + settings->max_connections;
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < needed) {
        rlim_t wanted = lim.rlim_max == RLIM_INFINITY || lim.rlim_max > needed ? needed : lim.rlim_max;
        struct rlimit raised = {.rlim_cur = wanted, .rlim_max = lim.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            lim.rlim_cur = wanted;
    }
    if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur >= needed)
        return 0;
    if (lim.rlim_cur <= (rlim_t)in_use + SPARE_FDS) {
        log_msg(LOG_LEVEL_ERROR,
                "the open-file limit (%llu) leaves no descriptor for a connection: %ld in use, %d kept "
                "spare; raise it (ulimit -n)",
                (unsigned long long)lim.rlim_cur, in_use, SPARE_FDS);
        return -1;
    }
    unsigned fits = (unsigned)(lim.rlim_cur - (rlim_t)in_use - SPARE_FDS);
    log_msg(LOG_LEVEL_WARN,
            "--max-connections lowered from %u to %u to fit the open-file limit of %llu (raise it with "
            "ulimit -n)",
            settings->max_connections, fits, (unsigned long long)lim.rlim_cur);
    settings->max_connections = fits;
    return 0;
}

/* Disposes of workers from..threads-1, set up by init_worker but never run. */
static void dispose_unstarted(struct http_server *srv, unsigned from)
{
    for (unsigned i = from; i < srv->settings.threads; i++) {
        close_listeners(&srv->workers[i]);
        dispose_worker(&srv->workers[i]);
    }
}

/* Frees a server whose workers never ran (or have all been joined). */
static void free_server(struct http_server *srv)
{
    if (srv->ssl_ctx != NULL)
        SSL_CTX_free(srv->ssl_ctx);
    free(srv->workers);
    free(srv);
}

struct http_server *http_server_start(const struct http_settings *settings, const struct cmd_ctx *cmd)
{
    struct http_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->settings = *settings;
    srv->cmd = cmd;
    srv->started_ms = monotonic_ms();
    srv->workers = aligned_alloc(64, settings->threads * sizeof(*srv->workers));
    if (srv->workers == NULL) {
        free(srv);
        return NULL;
    }
    memset(srv->workers, 0, settings->threads * sizeof(*srv->workers));
    for (unsigned i = 0; i < settings->threads; i++)
        for (int kind = 0; kind < LISTEN_KINDS; kind++)
            srv->workers[i].listeners[kind].fd = -1;

    int failed = settings->tls_cert != NULL &&
                 (srv->ssl_ctx = tls_context_create(settings->tls_cert, settings->tls_key, settings->http2)) == NULL;
    if (!failed && settings->serve_http)
        failed = open_listeners(srv, LISTEN_HTTP, settings->http_port) != 0;
    if (!failed && settings->tls_cert != NULL)
        failed = open_listeners(srv, LISTEN_HTTPS, settings->https_port) != 0;
    if (failed) {
        close_listener_fds(srv);
        free_server(srv);
        return NULL;
    }
    http_server_configure(srv);
    for (unsigned i = 0; i < settings->threads; i++)
        init_worker(srv, &srv->workers[i]);
    if (fit_open_file_limit(&srv->settings) != 0) {
        dispose_unstarted(srv, 0);
        h2o_config_dispose(&srv->config);
        free_server(srv);
        return NULL;
    }
    for (unsigned i = 0; i < settings->threads; i++) {
        if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]) != 0) {
            log_msg(LOG_LEVEL_ERROR, "cannot start worker thread %u of %u", i + 1, settings->threads);
            dispose_unstarted(srv, i);
            srv->settings.threads = i; /* stop and join only the ones that run */
            http_server_stop(srv);
            http_server_join(srv);
            return NULL;
        }
    }
    return srv;
}

unsigned http_server_http_port(const struct http_server *srv)
{
    return srv->ports[LISTEN_HTTP];
}

unsigned http_server_https_port(const struct http_server *srv)
{
    return srv->ports[LISTEN_HTTPS];
}

/*
 * h2o 2.2.5 makes each worker's wake-up socket in h2o_context_init, on the
 * thread that starts the server, so every one of them reads into buffers from
 * that thread's buffer recycler, which takes no lock. Woken all at once, the
 * workers would use it together. So they are woken one at a time: the next
 * once the last has received its message (its read, and the free of the
 * buffer it read into, come before) or has had a second.
 * (ThreadSanitizer still reports the hand-over of a recycled buffer from one
 * worker to the next, because its read() interceptor checks the buffer before
 * it records the pipe's synchronisation.)
 */
#define WAKE_WAIT_MS 1000

void http_server_stop(struct http_server *srv)
{
    if (atomic_exchange_explicit(&srv->stopping, 1, memory_order_acq_rel))
        return; /* each stop_message is sent once */
    for (unsigned i = 0; i < srv->settings.threads; i++) {
        struct worker *w = &srv->workers[i];
        h2o_multithread_send_message(&w->wakeup, &w->stop_message);
        int64_t deadline = monotonic_ms() + WAKE_WAIT_MS;
        while (!atomic_load_explicit(&w->woken, memory_order_acquire) && monotonic_ms() < deadline)
            nanosleep(&(struct timespec){.tv_nsec = 100000}, NULL);
    }
}

/*
 * A server whose drain deadline passed with connections open: its contexts
 * are not disposed (h2o cannot dispose one in use), so it is not freed
 * either; the process is about to exit. Kept reachable here so
 * that leak checkers see memory deliberately left, not lost.
 */
static struct http_server *volatile abandoned; /* volatile: a store never read would be optimised away */

size_t http_server_join(struct http_server *srv)
{
    size_t left = 0;
    for (unsigned i = 0; i < srv->settings.threads; i++) {
        pthread_join(srv->workers[i].thread, NULL);
        left += open_connections(&srv->workers[i]);
    }
    if (left == 0) {
        for (unsigned i = 0; i < srv->settings.threads; i++)
            dispose_worker(&srv->workers[i]);
        h2o_config_dispose(&srv->config);
        free_server(srv);
    } else {
        abandoned = srv;
    }
    return left;
}

void http_server_counters(struct http_server *srv, struct http_counters *out)
{
    out->connections = atomic_load_explicit(&srv->connections, memory_order_relaxed);
    out->connections_total = atomic_load_explicit(&srv->connections_total, memory_order_relaxed);
    out->connections_refused = atomic_load_explicit(&srv->connections_refused, memory_order_relaxed);
    out->write_timeouts = atomic_load_explicit(&srv->write_timeouts, memory_order_relaxed);
    out->uptime_seconds = (double)(monotonic_ms() - srv->started_ms) / 1000.0;
}
