/*
 * The network core (src/net/net.c) with a front that is not HTTP: a line
 * protocol that answers "PONG\n" to each "PING\n", refuses with "BUSY\n",
 * and marks its connection settled after each answer. It shows what a new
 * front gets from the core alone: connections on every worker, counted
 * across fronts; the refusal over max_connections; and a drain that calls
 * the front and closes its idle connections long before the deadline.
 * Clients are plain blocking sockets on loopback, every read bounded in time.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "monotonic.h"
#include "net/net.h"

/* How long any wait for the server may take before the test fails: far above what a slow machine needs. */
#define WAIT_MS 10000

struct line_front {
    struct net_front front;
    atomic_int attached, detached, drained;
};

static void on_written(h2o_socket_t *sock, const char *err)
{
    if (err != NULL)
        h2o_socket_close(sock);
    else
        net_connection_settled(sock, 1); /* answered everything it asked */
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    static const char pong[] = "PONG\n";
    if (err != NULL) {
        h2o_socket_close(sock);
        return;
    }
    char *nl = memchr(sock->input->bytes, '\n', sock->input->size);
    if (nl == NULL)
        return; /* a line still coming */
    h2o_buffer_consume(&sock->input, (size_t)(nl + 1 - sock->input->bytes));
    h2o_iovec_t buf = h2o_iovec_init(pong, sizeof(pong) - 1);
    h2o_socket_write(sock, &buf, 1, on_written);
}

static void *attach(struct net_front *front, struct net_worker *w)
{
    (void)w;
    struct line_front *lf = (struct line_front *)front;
    atomic_fetch_add(&lf->attached, 1);
    return lf;
}

static void detach(struct net_front *front, void *state)
{
    (void)state;
    atomic_fetch_add(&((struct line_front *)front)->detached, 1);
}

static void serve(void *state, int tag, h2o_socket_t *sock)
{
    (void)state;
    (void)tag;
    h2o_socket_read_start(sock, on_read);
}

static void on_refusal_written(h2o_socket_t *sock, const char *err)
{
    (void)err;
    h2o_socket_close(sock);
}

static void refuse(void *state, int tag, h2o_socket_t *sock)
{
    static const char busy[] = "BUSY\n";
    (void)state;
    (void)tag;
    h2o_iovec_t buf = h2o_iovec_init(busy, sizeof(busy) - 1);
    h2o_socket_write(sock, &buf, 1, on_refusal_written);
}

static void drain(void *state)
{
    atomic_fetch_add(&((struct line_front *)state)->drained, 1);
}

static void init_front(struct line_front *lf)
{
    memset(lf, 0, sizeof(*lf));
    lf->front = (struct net_front){.name = "LINE", .attach = attach, .detach = detach, .serve = serve,
                                   .refuse = refuse, .drain = drain};
}

/* A started core with the line front on a free port. */
static struct net *start(struct line_front *lf, unsigned threads, unsigned max_connections, int64_t drain_ms,
                         unsigned *port)
{
    init_front(lf);
    struct net *net = net_create(&(struct net_settings){.bind = "127.0.0.1",
                                                        .threads = threads,
                                                        .max_connections = max_connections,
                                                        .write_timeout_ms = 60000,
                                                        .drain_timeout_ms = drain_ms});
    assert_non_null(net);
    *port = net_listen(net, &lf->front, 0, 0, "LINE");
    assert_true(*port != 0);
    assert_int_equal(net_start(net), 0);
    assert_int_equal(atomic_load(&lf->attached), (int)threads);
    return net;
}

static int client_connect(unsigned port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

/* Reads one line (at most size-1 bytes) within WAIT_MS; returns its length, 0 at EOF. */
static size_t read_line(int fd, char *out, size_t size)
{
    size_t have = 0;
    int64_t deadline = monotonic_ms() + WAIT_MS;
    while (have + 1 < size) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - monotonic_ms();
        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            fail_msg("no answer from the server within %d ms", WAIT_MS);
        ssize_t n = read(fd, out + have, 1);
        if (n <= 0)
            break;
        have++;
        if (out[have - 1] == '\n')
            break;
    }
    out[have] = '\0';
    return have;
}

static void expect_pong(int fd)
{
    char line[16];
    assert_int_equal(write(fd, "PING\n", 5), 5);
    read_line(fd, line, sizeof(line));
    assert_string_equal(line, "PONG\n");
}

/* Polls the core's counters until fn says they are as wanted, within WAIT_MS. */
static void wait_for_counters(struct net *net, int (*fn)(const struct net_counters *, unsigned), unsigned want)
{
    struct net_counters c;
    int64_t deadline = monotonic_ms() + WAIT_MS;
    for (;;) {
        net_counters(net, &c);
        if (fn(&c, want))
            return;
        if (monotonic_ms() > deadline)
            fail_msg("counters not as expected within %d ms: %u open, %llu total, %llu refused", WAIT_MS,
                     c.connections, (unsigned long long)c.connections_total,
                     (unsigned long long)c.connections_refused);
        nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
    }
}

static int open_is(const struct net_counters *c, unsigned want)
{
    return c->connections == want;
}

static void a_front_is_served_on_every_worker_and_counted(void **state)
{
    (void)state;
    struct line_front lf;
    unsigned port;
    struct net *net = start(&lf, 2, 100, 5000, &port);
    int fds[6];
    for (int i = 0; i < 6; i++) {
        fds[i] = client_connect(port);
        expect_pong(fds[i]);
    }
    wait_for_counters(net, open_is, 6);
    struct net_counters c;
    net_counters(net, &c);
    assert_int_equal(c.connections_total, 6);
    assert_int_equal(c.connections_refused, 0);
    assert_int_equal(c.threads, 2);
    for (int i = 0; i < 6; i++)
        close(fds[i]);
    wait_for_counters(net, open_is, 0); /* the front closed them: the core counted each close */
    net_stop(net);
    assert_int_equal(net_join(net), 0);
    assert_int_equal(atomic_load(&lf.detached), 2);
}

static void a_connection_over_the_limit_gets_the_fronts_refusal(void **state)
{
    (void)state;
    struct line_front lf;
    unsigned port;
    struct net *net = start(&lf, 1, 2, 5000, &port);
    int a = client_connect(port), b = client_connect(port);
    expect_pong(a);
    expect_pong(b);
    int over = client_connect(port);
    char line[16];
    read_line(over, line, sizeof(line));
    assert_string_equal(line, "BUSY\n");
    assert_int_equal(read_line(over, line, sizeof(line)), 0); /* then closed */
    struct net_counters c;
    net_counters(net, &c);
    assert_int_equal(c.connections_refused, 1);
    assert_int_equal(c.connections, 2);
    expect_pong(a); /* the others are untouched */
    close(over);
    close(a);
    close(b);
    net_stop(net);
    assert_int_equal(net_join(net), 0);
}

/*
 * Settled, idle connections of a non-HTTP front do not hold the drain to
 * its deadline: with 60 s given, the core closes them (once quiet for its
 * second) and returns with none left, having asked the front to drain on
 * each worker.
 */
static void the_drain_closes_a_fronts_idle_connections(void **state)
{
    (void)state;
    struct line_front lf;
    unsigned port;
    struct net *net = start(&lf, 2, 100, 60000, &port);
    int fds[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = client_connect(port);
        expect_pong(fds[i]);
    }
    wait_for_counters(net, open_is, 4);
    int64_t began = monotonic_ms();
    net_stop(net);
    assert_int_equal(net_join(net), 0);
    int64_t took = monotonic_ms() - began;
    if (took > 30000)
        fail_msg("the drain took %lld ms: it waited for the deadline, not for the idle connections",
                 (long long)took);
    assert_int_equal(atomic_load(&lf.drained), 2);
    assert_int_equal(atomic_load(&lf.detached), 2);
    for (int i = 0; i < 4; i++) {
        char line[16];
        assert_int_equal(read_line(fds[i], line, sizeof(line)), 0); /* closed, nothing more sent */
        close(fds[i]);
    }
}

static void a_taken_port_is_refused(void **state)
{
    (void)state;
    struct line_front lf, other;
    unsigned port;
    struct net *net = start(&lf, 1, 10, 1000, &port);
    init_front(&other);
    struct net *second = net_create(&(struct net_settings){.bind = "127.0.0.1", .threads = 1, .max_connections = 10});
    assert_non_null(second);
    assert_int_equal(net_listen(second, &other.front, 0, port, "LINE"), 0);
    assert_int_equal(net_listen(second, &other.front, 0, 0, "LINE") != 0, 1); /* another port is fine */
    assert_int_equal(net_join(second), 0); /* never started: frees the core and its fds */
    assert_int_equal(atomic_load(&other.attached), 0);
    net_stop(net);
    assert_int_equal(net_join(net), 0);
}

int main(void)
{
    log_set_level(LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_front_is_served_on_every_worker_and_counted),
        cmocka_unit_test(a_connection_over_the_limit_gets_the_fronts_refusal),
        cmocka_unit_test(the_drain_closes_a_fronts_idle_connections),
        cmocka_unit_test(a_taken_port_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
