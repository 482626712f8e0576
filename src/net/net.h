/*
 * The network core (net.c): worker threads with one event loop each, the
 * listening sockets of every protocol front, connection tracking and limits
 * shared by all fronts, the write timeout, the drain on stop and one
 * open-file budget over all listeners. It knows no protocol: a front
 * (src/http/, and later others) describes itself with a struct net_front,
 * asks for its ports with net_listen, and gets each accepted connection on
 * the worker thread that accepted it, for the connection's whole life.
 *
 * The event loop and sockets are libh2o's evloop flavour (h2o_socket_t), the
 * one type a front shares with the core. Counters that are not a front's own
 * (connections, uptime) come from net_counters, through src/stats.h.
 */
#ifndef CACHETTE_NET_H
#define CACHETTE_NET_H

#if H2O_USE_LIBUV
#error "cachette uses h2o's evloop flavour: build with -DH2O_USE_LIBUV=0"
#endif

#include <h2o/multithread.h>
#include <h2o/socket.h>
#include <stddef.h>
#include <stdint.h>

struct net;
struct net_worker;

struct net_settings {
    const char *bind;           /* numeric IPv4 or IPv6 address every port listens on */
    unsigned threads;           /* worker threads, one event loop each */
    unsigned max_connections;   /* open connections, all fronts together; beyond, the front's refusal */
    int64_t write_timeout_ms;   /* a connection whose peer takes no byte of what waits for this long is reset */
    int64_t drain_timeout_ms;   /* on stop, time given to open connections */
};

/*
 * What a protocol front gives the core. Every callback runs on the thread
 * of the worker it concerns: attach before the worker serves, detach after
 * its drain (never while another of its callbacks runs). Other workers may
 * still be serving when one detaches: memory they can reach (counters read
 * by a statistics request, say) must outlive detach.
 */
struct net_front {
    const char *name;           /* for logs: "HTTP" */

    /* Sets up the front's state for worker w (on net_worker_loop(w)); returns it, or NULL to fail net_start. */
    void *(*attach)(struct net_front *front, struct net_worker *w);

    /* Frees what attach made that only w's thread uses, once w has drained (or never served). */
    void (*detach)(struct net_front *front, void *state);

    /*
     * Takes a new connection that came in on the port net_listen gave `tag`.
     * The core has set sock->on_close to count the connection: the front
     * must leave it as it is, and closes the socket when it is done.
     */
    void (*serve)(void *state, int tag, h2o_socket_t *sock);

    /* Answers a connection over max_connections (a 503, say) and closes it; NULL closes it at once. */
    void (*refuse)(void *state, int tag, h2o_socket_t *sock);

    /*
     * On stop, after the listeners are closed: the front starts its own
     * graceful shutdown (no new requests on kept-alive connections). NULL if
     * it has none. Connections it has marked settled and that are idle are
     * then closed by the core (net_connection_settled).
     */
    void (*drain)(void *state);
};

/* Makes a core with no port and no thread yet. Returns NULL when memory is short. */
struct net *net_create(const struct net_settings *settings);

/*
 * Binds `port` (0: any free one) on settings.bind for front, one socket per
 * worker (SO_REUSEPORT: the kernel spreads connections with no shared
 * lock). Connections from it reach front->serve with `tag`. `what` names
 * the port in messages ("HTTP"). Returns the port bound, or 0 after logging
 * why (address in use, not a numeric address, too many ports). Call before
 * net_start. A front whose set-up fails after one of its ports was bound
 * (and is then freed) leaves the core fit only for net_join.
 */
unsigned net_listen(struct net *net, struct net_front *front, int tag, unsigned port, const char *what);

/*
 * Attaches every front to every worker, fits max_connections under the
 * open-file limit (lowering it, with a warning, if the limit cannot be
 * raised), and starts the threads. Returns 0, or -1 after logging why; then
 * only net_join may follow (it frees the core).
 */
int net_start(struct net *net);

/*
 * Asks every worker to stop accepting, let the fronts finish what is in
 * flight, close idle connections and leave by the drain deadline. Returns
 * at once; call it from any thread but a worker's.
 */
void net_stop(struct net *net);

/*
 * Waits for the workers and frees the core (each worker has detached the
 * fronts). Returns connections still open at the deadline; then nothing is
 * freed (a worker with connections left does not detach: h2o cannot dispose
 * of contexts in use) and the process should exit.
 */
size_t net_join(struct net *net);

/* Whether net_stop has been called (a relaxed read: for a front's keep-alive decision). */
int net_stopping(const struct net *net);

unsigned net_threads(const struct net *net);
h2o_loop_t *net_worker_loop(struct net_worker *w);
unsigned net_worker_index(const struct net_worker *w);

/* Work handed to a worker's thread from any thread (net_worker_post). */
struct net_task {
    h2o_multithread_message_t message; /* the core's */
    void (*run)(struct net_task *task); /* called on the worker's thread, with the fronts attached */
};

/*
 * Has task->run(task) called on w's thread, soon (a front answering, on
 * its connection's worker, what another thread finished: a snapshot, an
 * fsync). Returns 0, or -1 when w has stopped taking tasks (its loop is
 * ending): run is then never called and the task is the caller's again.
 * The task must stay allocated, and not be posted again, until run begins.
 * Tasks posted before a worker stops are run before it detaches the fronts.
 */
int net_worker_post(struct net_worker *w, struct net_task *task);

/*
 * Said by a front on the connection's worker: settled 1 when everything the
 * peer has sent so far is answered (an HTTP/1 keep-alive connection between
 * requests), 0 when the connection may again hold work the core cannot see
 * (an HTTP/1 connection upgraded to HTTP/2). While draining, a settled
 * connection seen quiet for a second (nothing received, nothing to read or
 * send) is closed rather than held to the deadline. A connection never
 * marked settled is left to its front.
 */
void net_connection_settled(h2o_socket_t *sock, int settled);

struct net_counters {
    unsigned connections;           /* open now, all fronts */
    uint64_t connections_total;     /* accepted since start */
    uint64_t connections_refused;   /* over max_connections */
    uint64_t write_timeouts;        /* reset by the write timeout */
    double uptime_seconds;
    unsigned threads;
};

/* A reading of the counters; each is exact, the set is not one instant. */
void net_counters(const struct net *net, struct net_counters *out);

#endif
