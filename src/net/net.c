/*
 * The network core (see net.h): workers, listeners, connections, limits,
 * the write timeout and the drain, for every protocol front alike.
 *
 * Each worker owns an evloop and its own listening socket on each port
 * (SO_REUSEPORT, so the kernel spreads new connections across workers with
 * no shared accept lock). A connection lives its whole life on the worker
 * that accepted it, and its front's callbacks run there.
 *
 * Connections are kept twice: on a list per worker (thread-local: the drain
 * waits for it to empty, the write timeout sweeps it) and in a global count
 * (an atomic, to enforce max_connections over every front). Over the limit
 * a connection gets its front's refusal (HTTP: a fixed 503) and is closed.
 *
 * The write timeout. h2o 2.2.5 has none: a client that asks for a large
 * value and never reads keeps the response in memory (h2o's, or the kernel's
 * send buffer) for as long as it likes. Once a second each worker looks at
 * its connections with bytes still to deliver (a write pending in h2o, or a
 * non-empty send queue): one whose peer has acknowledged no new byte (TCP's
 * own count, tcpi_bytes_acked) for the write timeout is shut down, and its
 * front, seeing the socket fail, closes it (with a reset, so the kernel
 * drops its queue too). A slow reader that keeps taking bytes is never cut.
 *
 * Each worker makes its loop, queue, listening sockets and every front's
 * per-worker state on its own thread, and frees them there: h2o's socket
 * buffers come from a per-thread recycler that takes no lock. net_start
 * waits until every worker is set up before letting any serve.
 *
 * Stopping: net_stop() sets `stopping` and sends each worker a message
 * through its multithread queue. Each worker takes what waits in its accept
 * queues, closes its listeners, asks each front to drain, and runs its loop
 * until its connections are gone or the drain deadline passes, closing on
 * the way every connection its front marked settled that is idle
 * (net_connection_settled); once it has had its message (h2o cannot dispose
 * of a queue holding one) it frees what it made and exits.
 *
 * Tasks: another thread (the snapshot thread, the log's writer) hands a
 * front work for a worker's thread with net_worker_post, through a second
 * receiver on the same queue. A worker stops taking them under post_lock
 * before it detaches the fronts, and first runs every one already posted,
 * so a task is either run with its front attached or refused to its poster.
 */
#include "net/net.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <h2o/multithread.h>
#include <h2o/timeout.h>
#include <linux/tcp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "monotonic.h"
#include "net/h2o_quirks.h"

/* Ports (all fronts together) and fronts one core serves: HTTP and HTTPS today, room for two more fronts. */
#define MAX_PORTS 4
#define MAX_FRONTS 4

/* How often a worker looks for stalled writes: the write timeout's resolution. */
#define SWEEP_MS 1000

/*
 * While draining, how long a settled connection must be seen quiet before
 * it is closed. Closing an idle keep-alive connection races with a request
 * the client sends at that instant (RFC 9112, 9.5); a client that is using
 * its connection sends its next request well within this, gets an answer
 * with Connection: close, and loses nothing.
 */
#define DRAIN_QUIET_MS 1000

/* One port, served by every worker. */
struct port {
    struct net_front *front;
    unsigned front_index;       /* into net.fronts and net_worker.front_state */
    int tag;
    unsigned number;
};

/* One listening socket of one worker. */
struct listener {
    struct net_worker *worker;
    const struct port *port;
    int fd;                     /* -1 until net_listen opens it */
    h2o_socket_t *sock;         /* NULL until net_start, and once closed */
};

struct net_worker {
    struct net *net;
    unsigned index;
    pthread_t thread;
    h2o_loop_t *loop;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t wakeup;
    h2o_multithread_message_t stop_message; /* what net_stop sends it */
    atomic_int woken;                       /* its thread has received stop_message */
    h2o_multithread_receiver_t tasks;       /* net_worker_post */
    pthread_mutex_t post_lock;              /* guards posts_open against the end of the loop */
    int posts_open;
    atomic_size_t posts_pending;            /* posted, not yet run */
    struct listener listeners[MAX_PORTS];
    void *front_state[MAX_FRONTS];          /* what each front's attach returned */
    h2o_linklist_t connections;             /* open ones (struct connection); its thread only */
    h2o_timeout_t sweep;                    /* runs sweep_entry once a second */
    h2o_timeout_entry_t sweep_entry;
    size_t left;                            /* connections still open when its drain ended */
} __attribute__((aligned(64)));

struct net {
    struct net_settings settings;
    struct net_worker *workers;
    struct net_front *fronts[MAX_FRONTS];
    unsigned front_count;
    struct port ports[MAX_PORTS];
    unsigned port_count;
    unsigned running;                       /* workers whose thread was started */
    pthread_mutex_t start_lock;             /* guards ready, start_failed and go */
    pthread_cond_t start_cond;
    unsigned ready;                         /* workers set up (or failed to) */
    int start_failed;
    int go;                                 /* 0 until net_start decides: 1 serve, -1 give up */
    atomic_uint connections;                /* open, all workers */
    atomic_uint_fast64_t connections_total;
    atomic_uint_fast64_t connections_refused;
    atomic_uint_fast64_t write_timeouts;
    atomic_int stopping;
    int64_t started_ms;                     /* CLOCK_MONOTONIC */
};

/* ---- connections --------------------------------------------------------- */

/* One open connection, on its worker's list. */
struct connection {
    h2o_linklist_t link;
    struct net_worker *worker;
    h2o_socket_t *sock;
    uint64_t acked;         /* the peer's acknowledged bytes at the last sweep */
    int64_t stalled_since;  /* when a write was first seen making no progress; 0 if none */
    int settled;            /* its front's last word: everything asked is answered */
    int64_t quiet_since;    /* draining: since when it has been seen quiet; 0 if not */
    uint64_t quiet_received; /* the kernel's count of bytes received from the peer then */
    int closing;            /* shut down by the core; its front closes it */
};

static void on_connection_close(void *data)
{
    struct connection *c = data;
    struct net *net = c->worker->net;
    h2o_linklist_unlink(&c->link);
    free(c);
    atomic_fetch_sub_explicit(&net->connections, 1, memory_order_relaxed);
}

void net_connection_settled(h2o_socket_t *sock, int settled)
{
    struct connection *c = sock->on_close.data;
    c->settled = settled;
}

/* Whether the connection has bytes its peer has yet to take: in h2o, or in the kernel's send queue. */
static int has_bytes_to_deliver(h2o_socket_t *sock, int fd)
{
    int queued = 0;
    return h2o_socket_is_writing(sock) || (ioctl(fd, TIOCOUTQ, &queued) == 0 && queued > 0);
}

/*
 * TCP's own counts of the bytes the peer has acknowledged and the bytes
 * received from it (whatever h2o or TLS made of them); -1 if the kernel
 * cannot say (before Linux 4.1 and 4.2).
 */
static int tcp_counts(int fd, uint64_t *acked, uint64_t *received)
{
    struct tcp_info info;
    socklen_t len = sizeof(info);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(info.tcpi_bytes_received))
        return -1;
    *acked = info.tcpi_bytes_acked;
    *received = info.tcpi_bytes_received;
    return 0;
}

/*
 * Ends a connection the front owns: shut down, it fails the front's next
 * read or write and the front closes it. With reset set the close is a
 * reset (zero linger), which drops what the kernel still queues for the peer.
 */
static void shut_down(struct connection *c, int fd, int reset)
{
    if (reset) {
        struct linger abort_on_close = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
    }
    shutdown(fd, SHUT_RDWR);
    c->closing = 1;
}

/* Shuts down the connections whose pending write made no progress for the write timeout. */
static void on_sweep(h2o_timeout_entry_t *entry)
{
    struct net_worker *w = H2O_STRUCT_FROM_MEMBER(struct net_worker, sweep_entry, entry);
    int64_t now = monotonic_ms();
    for (h2o_linklist_t *node = w->connections.next; node != &w->connections; node = node->next) {
        struct connection *c = H2O_STRUCT_FROM_MEMBER(struct connection, link, node);
        int fd = h2o_socket_get_fd(c->sock);
        uint64_t acked = 0, received;
        /* Progress unless bytes wait and the count of acknowledged ones is known and has not moved. */
        if (!has_bytes_to_deliver(c->sock, fd) || tcp_counts(fd, &acked, &received) != 0 || acked != c->acked) {
            c->acked = acked;
            c->stalled_since = 0;
        } else if (c->stalled_since == 0) {
            c->stalled_since = now;
        } else if (now - c->stalled_since >= w->net->settings.write_timeout_ms) {
            log_msg(LOG_LEVEL_DEBUG, "closing a connection whose client took no response byte for %lld ms",
                    (long long)(now - c->stalled_since));
            atomic_fetch_add_explicit(&w->net->write_timeouts, 1, memory_order_relaxed);
            shut_down(c, fd, 1);
            c->stalled_since = now;
        }
    }
    h2o_timeout_link(w->loop, &w->sweep, &w->sweep_entry);
}

/* Accepts up to max waiting connections from l; returns how many were waiting (served or refused). */
static int accept_waiting(struct listener *l, int max)
{
    struct net_worker *w = l->worker;
    struct net *net = w->net;
    const struct port *port = l->port;
    void *state = w->front_state[port->front_index];
    int n = 0;
    for (; n < max; n++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(l->sock);
        if (sock == NULL)
            break;
        unsigned open = atomic_fetch_add_explicit(&net->connections, 1, memory_order_relaxed);
        if (open >= net->settings.max_connections) {
            atomic_fetch_sub_explicit(&net->connections, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&net->connections_refused, 1, memory_order_relaxed);
            log_msg(LOG_LEVEL_DEBUG, "refused a connection: %u open", open);
            if (port->front->refuse != NULL)
                port->front->refuse(state, port->tag, sock);
            else
                h2o_socket_close(sock);
            continue;
        }
        struct connection *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            atomic_fetch_sub_explicit(&net->connections, 1, memory_order_relaxed);
            h2o_socket_close(sock);
            continue;
        }
        c->worker = w;
        c->sock = sock;
        h2o_linklist_insert(&w->connections, &c->link);
        atomic_fetch_add_explicit(&net->connections_total, 1, memory_order_relaxed);
        sock->on_close.cb = on_connection_close;
        sock->on_close.data = c;
        port->front->serve(state, port->tag, sock);
    }
    return n;
}

static void on_accept(h2o_socket_t *listen_sock, const char *err)
{
    if (err == NULL)
        accept_waiting(listen_sock->data, 16); /* a few per wake-up, so a busy listener cannot starve the loop */
}

/* ---- listening sockets --------------------------------------------------- */

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

/* The front's index in net->fronts: where it is, or the next free one; MAX_FRONTS if there is no room. */
static unsigned front_index(const struct net *net, const struct net_front *front)
{
    unsigned i = 0;
    while (i < net->front_count && net->fronts[i] != front)
        i++;
    return i;
}

/*
 * Ports are claimed one after the other, so with port 0 for two of them the
 * second claim cannot pick the port the first already holds.
 */
unsigned net_listen(struct net *net, struct net_front *front, int tag, unsigned port, const char *what)
{
    struct sockaddr_storage addr;
    socklen_t len;
    unsigned fi = front_index(net, front);
    if (net->port_count == MAX_PORTS || fi == MAX_FRONTS) {
        log_msg(LOG_LEVEL_ERROR, "cannot listen for %s: at most %d ports and %d fronts", what, MAX_PORTS, MAX_FRONTS);
        return 0;
    }
    if (parse_address(net->settings.bind, port, &addr, &len) != 0) {
        log_msg(LOG_LEVEL_ERROR, "--bind %s is not a numeric IPv4 or IPv6 address", net->settings.bind);
        return 0;
    }
    unsigned bound = claim_port(&addr, len);
    if (bound != 0) {
        if (addr.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&addr)->sin6_port = htons((uint16_t)bound);
        else
            ((struct sockaddr_in *)&addr)->sin_port = htons((uint16_t)bound);
    }
    struct port *p = &net->ports[net->port_count];
    unsigned opened = 0;
    while (bound != 0 && opened < net->settings.threads) {
        int fd = open_listener(&addr, len);
        if (fd == -1)
            break;
        net->workers[opened++].listeners[net->port_count] = (struct listener){.port = p, .fd = fd};
    }
    if (bound == 0 || opened < net->settings.threads) {
        log_msg(LOG_LEVEL_ERROR, "cannot listen for %s on %s port %u: %s", what, net->settings.bind, port,
                strerror(errno));
        while (opened > 0)
            close(net->workers[--opened].listeners[net->port_count].fd);
        return 0;
    }
    *p = (struct port){.front = front, .front_index = fi, .tag = tag, .number = bound};
    net->port_count++;
    if (fi == net->front_count)
        net->fronts[net->front_count++] = front; /* registered once a port of its is bound, never before */
    return bound;
}

/* Stops and closes a worker's listening sockets (freed by its loop's next run), or their bare fds before start. */
static void close_listeners(struct net_worker *w)
{
    for (unsigned i = 0; i < w->net->port_count; i++) {
        struct listener *l = &w->listeners[i];
        if (l->sock != NULL) {
            h2o_socket_read_stop(l->sock);
            h2o_socket_close(l->sock);
        } else if (l->fd != -1) {
            close(l->fd);
        }
        l->sock = NULL;
        l->fd = -1;
    }
}

/* ---- the open-file limit ------------------------------------------------- */

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
 * Every connection holds a descriptor, so max_connections must fit under
 * RLIMIT_NOFILE next to the descriptors already open (every front's
 * listeners, event loops, queues): past the limit accept() fails, the
 * listener stays readable, and its worker spins without serving anyone.
 * Raises the soft limit as far as needed (up to the hard one), else lowers
 * max_connections to what fits, as Redis does with maxclients. Returns -1
 * if not even one connection fits.
 */
static int fit_open_file_limit(struct net_settings *settings)
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

/* ---- worker threads ------------------------------------------------------ */

/* The stop message: once this returns, the loop re-reads `stopping`. */
static void on_wakeup(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages))
        h2o_linklist_unlink(messages->next);
    struct net_worker *w = H2O_STRUCT_FROM_MEMBER(struct net_worker, wakeup, receiver);
    atomic_store_explicit(&w->woken, 1, memory_order_release);
}

/* Runs the tasks net_worker_post sent. */
static void on_tasks(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct net_worker *w = H2O_STRUCT_FROM_MEMBER(struct net_worker, tasks, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        struct net_task *task = H2O_STRUCT_FROM_MEMBER(struct net_task, message.link, messages->next);
        h2o_linklist_unlink(&task->message.link);
        atomic_fetch_sub_explicit(&w->posts_pending, 1, memory_order_relaxed);
        task->run(task);
    }
}

int net_worker_post(struct net_worker *w, struct net_task *task)
{
    int rc = -1;
    pthread_mutex_lock(&w->post_lock);
    if (w->posts_open) {
        atomic_fetch_add_explicit(&w->posts_pending, 1, memory_order_relaxed);
        memset(&task->message, 0, sizeof(task->message));
        h2o_multithread_send_message(&w->tasks, &task->message);
        rc = 0;
    }
    pthread_mutex_unlock(&w->post_lock);
    return rc;
}

/* Stops taking tasks and runs those already posted (the fronts still attached). */
static void close_posts(struct net_worker *w)
{
    pthread_mutex_lock(&w->post_lock);
    w->posts_open = 0;
    pthread_mutex_unlock(&w->post_lock);
    while (atomic_load_explicit(&w->posts_pending, memory_order_relaxed) != 0)
        h2o_evloop_run(w->loop, 10);
}

/* Whether a settled connection has nothing in hand: no byte to read, unread or to send. */
static int is_quiet(const struct connection *c)
{
    int fd = h2o_socket_get_fd(c->sock), unread = 0;
    return c->settled && !c->closing &&
           (c->sock->input == NULL || c->sock->input->size == 0) && !has_bytes_to_deliver(c->sock, fd) &&
           ioctl(fd, FIONREAD, &unread) == 0 && unread == 0;
}

/*
 * Closes the connections seen quiet, with no byte received from the peer
 * meanwhile (the kernel's count, so nothing h2o or TLS consumed is missed),
 * for DRAIN_QUIET_MS; starts the clock on the others that are quiet now.
 */
static void close_idle(struct net_worker *w)
{
    int64_t now = monotonic_ms();
    for (h2o_linklist_t *node = w->connections.next; node != &w->connections; node = node->next) {
        struct connection *c = H2O_STRUCT_FROM_MEMBER(struct connection, link, node);
        int fd = h2o_socket_get_fd(c->sock);
        uint64_t acked, received;
        if (!is_quiet(c) || tcp_counts(fd, &acked, &received) != 0)
            c->quiet_since = 0;
        else if (c->quiet_since == 0 || received != c->quiet_received)
            c->quiet_since = now, c->quiet_received = received;
        else if (now - c->quiet_since >= DRAIN_QUIET_MS)
            shut_down(c, fd, 0);
    }
}

static void drain(struct net_worker *w)
{
    int64_t deadline = monotonic_ms() + w->net->settings.drain_timeout_ms;

    /*
     * Closing a listening socket makes the kernel reset every connection still
     * in its accept queue, requests and all. Take them first, so they are
     * served; only a connection completing its handshake in the instant
     * between the last accept and the close is reset.
     */
    for (unsigned i = 0; i < w->net->port_count; i++)
        if (w->listeners[i].sock != NULL)
            while (accept_waiting(&w->listeners[i], 64) == 64)
                ;
    close_listeners(w);
    for (unsigned i = 0; i < w->net->front_count; i++)
        if (w->net->fronts[i]->drain != NULL)
            w->net->fronts[i]->drain(w->front_state[i]);
    while (!h2o_linklist_is_empty(&w->connections) && monotonic_ms() < deadline) {
        close_idle(w);
        h2o_evloop_run(w->loop, 50);
    }
    h2o_evloop_run(w->loop, 0); /* let closed sockets be freed */
}

static size_t open_connections(struct net_worker *w)
{
    size_t n = 0;
    for (h2o_linklist_t *node = w->connections.next; node != &w->connections; node = node->next)
        n++;
    return n;
}

/* Makes a worker's loop, queue and sweep timer, on its own thread, and attaches every front. Returns 0 or -1. */
static int set_up_worker(struct net_worker *w)
{
    struct net *net = w->net;
    w->loop = h2o_evloop_create();
    w->queue = h2o_multithread_create_queue(w->loop);
    h2o_multithread_register_receiver(w->queue, &w->wakeup, on_wakeup);
    h2o_multithread_register_receiver(w->queue, &w->tasks, on_tasks);
    pthread_mutex_lock(&w->post_lock);
    w->posts_open = 1;
    pthread_mutex_unlock(&w->post_lock);
    h2o_linklist_init_anchor(&w->connections);
    h2o_timeout_init(w->loop, &w->sweep, SWEEP_MS);
    w->sweep_entry.cb = on_sweep;
    h2o_timeout_link(w->loop, &w->sweep, &w->sweep_entry);
    for (unsigned i = 0; i < net->front_count; i++) {
        w->front_state[i] = net->fronts[i]->attach(net->fronts[i], w);
        if (w->front_state[i] == NULL) {
            log_msg(LOG_LEVEL_ERROR, "cannot set up the %s front: out of memory", net->fronts[i]->name);
            return -1;
        }
    }
    return 0;
}

/* Starts accepting on every port. */
static void start_listening(struct net_worker *w)
{
    for (unsigned i = 0; i < w->net->port_count; i++) {
        struct listener *l = &w->listeners[i];
        l->worker = w;
        l->sock = h2o_evloop_socket_create(w->loop, l->fd, H2O_SOCKET_FLAG_DONT_READ);
        l->sock->data = l;
        h2o_socket_read_start(l->sock, on_accept);
    }
}

/* Frees what set_up_worker made (and the listeners), on the worker's thread. */
static void dispose_worker(struct net_worker *w)
{
    close_listeners(w);
    for (unsigned i = w->net->front_count; i-- > 0;)
        if (w->front_state[i] != NULL)
            w->net->fronts[i]->detach(w->net->fronts[i], w->front_state[i]);
    if (h2o_timeout_is_linked(&w->sweep_entry))
        h2o_timeout_unlink(&w->sweep_entry);
    h2o_timeout_dispose(w->loop, &w->sweep);
    h2o_multithread_unregister_receiver(w->queue, &w->wakeup);
    h2o_multithread_unregister_receiver(w->queue, &w->tasks);
    h2o_multithread_destroy_queue(w->queue);
    h2o_evloop_run(w->loop, 0); /* frees the sockets closed above */
    h2o_quirk_free_destroyed_queue(w->queue);
    h2o_evloop_destroy(w->loop);
    w->loop = NULL;
}

/*
 * Reports the worker set up (or failed) and waits for net_start's verdict:
 * 1 to serve, -1 to give up (another worker failed, or no connection fits).
 */
static int wait_for_go(struct net_worker *w, int ok)
{
    struct net *net = w->net;
    pthread_mutex_lock(&net->start_lock);
    net->ready++;
    if (!ok)
        net->start_failed = 1;
    pthread_cond_broadcast(&net->start_cond);
    while (net->go == 0)
        pthread_cond_wait(&net->start_cond, &net->start_lock);
    int go = net->go;
    pthread_mutex_unlock(&net->start_lock);
    return go;
}

/*
 * A worker's whole life runs on its thread: its loop, queue, listening
 * sockets and each front's state are made and freed there. h2o's socket
 * buffers come from a per-thread recycler that takes no lock, so a socket
 * must never be made on one thread and used on another.
 */
static void *worker_main(void *arg)
{
    struct net_worker *w = arg;
    int ok = set_up_worker(w) == 0;
    if (wait_for_go(w, ok) > 0) {
        start_listening(w);
        while (!atomic_load_explicit(&w->net->stopping, memory_order_acquire))
            h2o_evloop_run(w->loop, INT32_MAX);
        drain(w);
    }
    w->left = open_connections(w);
    if (w->left > 0)
        log_msg(LOG_LEVEL_WARN, "drain deadline passed with %zu connection(s) open on a worker", w->left);
    /* Woken by something else first: take the stop message before going, h2o cannot dispose of a queued one. */
    while (!atomic_load_explicit(&w->woken, memory_order_acquire))
        h2o_evloop_run(w->loop, 10);
    if (w->loop != NULL)
        close_posts(w);
    if (w->left == 0)
        dispose_worker(w); /* else h2o cannot dispose of contexts in use: the process is about to exit */
    return NULL;
}

/* ---- lifecycle ----------------------------------------------------------- */

struct net *net_create(const struct net_settings *settings)
{
    struct net *net = calloc(1, sizeof(*net));
    if (net == NULL)
        return NULL;
    net->settings = *settings;
    net->workers = aligned_alloc(64, settings->threads * sizeof(*net->workers));
    if (net->workers == NULL) {
        free(net);
        return NULL;
    }
    memset(net->workers, 0, settings->threads * sizeof(*net->workers));
    for (unsigned i = 0; i < settings->threads; i++) {
        net->workers[i].net = net;
        net->workers[i].index = i;
        pthread_mutex_init(&net->workers[i].post_lock, NULL);
        for (unsigned p = 0; p < MAX_PORTS; p++)
            net->workers[i].listeners[p].fd = -1;
    }
    pthread_mutex_init(&net->start_lock, NULL);
    pthread_cond_init(&net->start_cond, NULL);
    net->started_ms = monotonic_ms();
    return net;
}

/*
 * Starts every worker, waits until each has set itself up, then fits the
 * connection limit under the open-file limit (every loop and listener is
 * open by then) and lets them serve, or has them all give up.
 */
int net_start(struct net *net)
{
    int failed = 0;
    for (; net->running < net->settings.threads; net->running++) {
        struct net_worker *w = &net->workers[net->running];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            log_msg(LOG_LEVEL_ERROR, "cannot start worker thread %u of %u", net->running + 1, net->settings.threads);
            failed = 1;
            break;
        }
    }
    pthread_mutex_lock(&net->start_lock);
    while (net->ready < net->running)
        pthread_cond_wait(&net->start_cond, &net->start_lock);
    failed = failed || net->start_failed || fit_open_file_limit(&net->settings) != 0;
    net->go = failed ? -1 : 1;
    pthread_cond_broadcast(&net->start_cond);
    pthread_mutex_unlock(&net->start_lock);
    if (failed)
        net_stop(net); /* each worker waits for its stop message before it frees its queue */
    return failed ? -1 : 0;
}

void net_stop(struct net *net)
{
    if (atomic_exchange_explicit(&net->stopping, 1, memory_order_acq_rel))
        return; /* each stop_message is sent once */
    for (unsigned i = 0; i < net->running; i++)
        h2o_multithread_send_message(&net->workers[i].wakeup, &net->workers[i].stop_message);
}

/*
 * A core whose drain deadline passed with connections open: those workers'
 * loops and the fronts' contexts are not disposed (h2o cannot dispose of one
 * in use), so it is not freed either; the process is about to exit. Kept
 * reachable here so that leak checkers see memory deliberately left, not lost.
 */
static struct net *volatile abandoned; /* volatile: a store never read would be optimised away */

size_t net_join(struct net *net)
{
    size_t left = 0;
    for (unsigned i = 0; i < net->running; i++) {
        pthread_join(net->workers[i].thread, NULL);
        left += net->workers[i].left;
    }
    if (left > 0) {
        abandoned = net;
        return left;
    }
    for (unsigned i = net->running; i < net->settings.threads; i++)
        close_listeners(&net->workers[i]); /* the fds of workers that never ran */
    for (unsigned i = 0; i < net->settings.threads; i++)
        pthread_mutex_destroy(&net->workers[i].post_lock);
    pthread_cond_destroy(&net->start_cond);
    pthread_mutex_destroy(&net->start_lock);
    free(net->workers);
    free(net);
    return 0;
}

int net_stopping(const struct net *net)
{
    return atomic_load_explicit(&net->stopping, memory_order_relaxed);
}

unsigned net_threads(const struct net *net)
{
    return net->settings.threads;
}

h2o_loop_t *net_worker_loop(struct net_worker *w)
{
    return w->loop;
}

unsigned net_worker_index(const struct net_worker *w)
{
    return w->index;
}

void net_counters(const struct net *net, struct net_counters *out)
{
    out->connections = atomic_load_explicit(&net->connections, memory_order_relaxed);
    out->connections_total = atomic_load_explicit(&net->connections_total, memory_order_relaxed);
    out->connections_refused = atomic_load_explicit(&net->connections_refused, memory_order_relaxed);
    out->write_timeouts = atomic_load_explicit(&net->write_timeouts, memory_order_relaxed);
    out->uptime_seconds = (double)(monotonic_ms() - net->started_ms) / 1000.0;
    out->threads = net->settings.threads;
}
