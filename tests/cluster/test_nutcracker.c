/*
 * The Redis protocol behind twemproxy (issue 16, docs/SCALING.md): three
 * real cachette nodes with --resp-port on loopback behind a real nutcracker
 * 0.5.0, run from deploy/nutcracker/nutcracker.yml as scripts/cluster.sh
 * renders it (the listening port and the node list rewritten, nothing else;
 * a test that needs another setting edits that one line, and says so).
 *
 * Each test starts its own cluster and asks the nodes directly, at their own
 * RESP ports, where each key landed:
 *
 *   - 3,000 keys SET through the proxy, read back through it, each on exactly
 *     one node, the busiest node at most 1.15x the average;
 *   - the hash: keys that differ only in their last bytes (user:1, user:2…)
 *     spread evenly with the shipped md5, and bunch up with twemproxy's
 *     default fnv1a_64 (the reason the file does not use it; shown);
 *   - MGET of 100 keys from every node, in order; MSET across nodes; a
 *     multi-key DEL's count;
 *   - what twemproxy answers itself (PING, QUIT) and what closes the
 *     connection (commands it does not route), and EXISTS with several keys;
 *   - a node killed: the requests that fail before twemproxy ejects it
 *     (counted), then the other nodes' keys all hit and its own miss and can
 *     be written again;
 *   - a node hung (SIGSTOP): ejected after its timeouts, and once resumed and
 *     let back in it serves the value that was rewritten elsewhere meanwhile
 *     (the hazard, shown);
 *   - nodes under --eviction noeviction: each full node's -OOM ejects it, until
 *     none is left (the hazard, shown);
 *   - --auth-token on the nodes with redis_auth;
 *   - redis-benchmark through the proxy.
 *
 * nutcracker runs with its stats port on loopback and a 100 ms stats interval,
 * so that its counters (server_ejects) can be polled. Every wait is bounded;
 * nothing sleeps for a fixed time to let something happen.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "../support/child.h"
#include "../support/raw.h"
#include "../support/resp.h"
#include "../support/server.h"
#include "../support/shell.h"

#define NODES         3
#define SPREAD_KEYS   3000
#define MGET_KEYS     100
#define FAILOVER_KEYS 3000
#define CHUNK         200 /* requests per pipelined batch */
#define PROXY_WAIT_MS 20000
#define REPLY_MS      10000
/* deploy/nutcracker/nutcracker.yml's server_failure_limit; cluster_start checks the file says so. */
#define FAILURE_LIMIT 3
#define TOKEN         "nc-secret"

struct cluster {
    struct server node[NODES];
    pid_t proxy_pid;
    unsigned port;       /* twemproxy's */
    unsigned stats_port; /* its JSON counters */
    char dir[64];
    char conf[128];
    const char *token; /* the nodes' --auth-token, which twemproxy asks of its clients too; NULL if none */
};

/* ---- the cluster ---------------------------------------------------------- */

static const char *node_args_plain[] = {"--resp-port", "0", "--max-memory", "64mb", NULL};
static const char *node_args_noeviction[] = {"--resp-port", "0", "--max-memory", "8mb", "--eviction",
                                             "noeviction",  NULL};
static const char *node_args_auth[] = {"--resp-port", "0", "--max-memory", "64mb", "--auth-token", TOKEN, NULL};

/* Runs a shell command; fails the test, with its output, unless it exits 0. Its first line goes to line, if not NULL.
 */
static void shell_ok(const char *cmd, char *line, size_t size)
{
    char *out = NULL;
    int rc = run_shell(cmd, &out);
    if (rc != 0)
        fprintf(stderr, "%s: exit %d: %s\n", cmd, rc, out);
    assert_int_equal(rc, 0);
    if (line != NULL)
        snprintf(line, size, "%.*s", (int)strcspn(out, "\n"), out);
    free(out);
}

/* twemproxy's configuration for the nodes as scripts/cluster.sh renders it, then each sed expression in edits applied.
 */
static void render_config(struct cluster *c, const char *const *edits)
{
    char cmd[512];
    int len = snprintf(cmd, sizeof(cmd), "scripts/cluster.sh config nutcracker %u %s", c->port, c->dir);
    for (unsigned i = 0; i < NODES; i++)
        len += snprintf(cmd + len, sizeof(cmd) - (size_t)len, " %u", c->node[i].resp_port);
    shell_ok(cmd, c->conf, sizeof(c->conf));
    /* The figures this file checks are the shipped ones. */
    snprintf(cmd, sizeof(cmd), "grep -q '^  server_failure_limit: %d$' %s", FAILURE_LIMIT, c->conf);
    shell_ok(cmd, NULL, 0);
    for (const char *const *e = edits; e != NULL && *e != NULL; e++) {
        snprintf(cmd, sizeof(cmd), "sed -i -e '%s' %s && grep -q . %s", *e, c->conf, c->conf);
        shell_ok(cmd, NULL, 0);
    }
}

static void print_proxy_log(const struct cluster *c)
{
    char path[96];
    snprintf(path, sizeof(path), "%s/proxy.log", c->dir);
    child_print_log(path, "nutcracker's log");
}

/*
 * Whether twemproxy answers PING on its port: itself, with +PONG, or with
 * -NOAUTH when it asks its clients a token (redis_auth). This says it
 * listens, nothing of the nodes.
 */
static int proxy_answers(const struct cluster *c)
{
    int fd = raw_try_connect(c->port);
    if (fd < 0)
        return 0;
    char *buf = NULL;
    size_t len = 0;
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    int ok = 0;
    if (raw_send(fd, ping, sizeof(ping) - 1) == 0) {
        raw_read(fd, "\r\n", 2000, &buf, &len);
        ok = buf != NULL && (strcmp(buf, "+PONG\r\n") == 0 || strcmp(buf, "-NOAUTH Authentication required\r\n") == 0);
    }
    free(buf);
    close(fd);
    return ok;
}

/* Starts twemproxy on free ports (again if one was taken meanwhile) and waits until it answers. */
static void start_proxy(struct cluster *c, const char *const *edits)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        c->port = free_port();
        c->stats_port = free_port();
        assert_true(c->port > 0 && c->stats_port > 0);
        render_config(c, edits);
        char log_path[96], stats[16];
        snprintf(log_path, sizeof(log_path), "%s/proxy.log", c->dir);
        snprintf(stats, sizeof(stats), "%u", c->stats_port);
        /* Counters on loopback, refreshed every 100 ms (30 s by default). */
        const char *argv[] = {"nutcracker", "-c", c->conf, "-a", "127.0.0.1", "-s", stats, "-i", "100", NULL};
        c->proxy_pid = child_start(argv, log_path);
        assert_true(c->proxy_pid > 0);
        for (int64_t deadline = now_ms() + PROXY_WAIT_MS; now_ms() < deadline && !child_exited(&c->proxy_pid);
             sleep_ms(20))
            if (proxy_answers(c))
                return;
        child_stop(&c->proxy_pid, 10000);
    }
    print_proxy_log(c);
    fail_msg("nutcracker did not start");
}

/* The one cluster a test runs: static, so that cluster_teardown can still stop it after a failed assertion. */
static struct cluster the_cluster;

static struct cluster *cluster_start(const char *const *node_args, const char *const *edits)
{
    struct cluster *c = &the_cluster;
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "/tmp/cachette-nutcracker-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    for (unsigned i = 0; i < NODES; i++) {
        struct server_opts opts = {.args = node_args};
        assert_int_equal(server_start(&c->node[i], &opts), 0);
        assert_true(c->node[i].resp_port > 0);
    }
    start_proxy(c, edits);
    return c;
}

/* Stops the proxy, then every node still running, which must exit 0. */
static void cluster_stop(struct cluster *c)
{
    child_stop(&c->proxy_pid, 10000);
    expect_all_clean_exit(c->node, NODES, 10000);
    child_remove_dir(c->dir);
}

/* After every test: whatever a failed one left running is stopped, its files removed. */
static int cluster_teardown(void **state)
{
    (void)state;
    struct cluster *c = &the_cluster;
    if (c->proxy_pid != 0) {
        print_proxy_log(c);
        child_stop(&c->proxy_pid, 10000);
    }
    for (unsigned i = 0; i < NODES; i++) {
        if (c->node[i].pid != 0)
            server_signal(&c->node[i], SIGCONT);
        server_cleanup(&c->node[i]);
    }
    child_remove_dir(c->dir);
    return 0;
}

/* One of twemproxy's counters for the pool ("server_ejects"), or for a server when server is not NULL; -1 if absent. */
static json_int_t proxy_counter(const struct cluster *c, const char *server, const char *name)
{
    int fd = raw_try_connect(c->stats_port);
    if (fd < 0)
        return -1;
    char *buf = NULL;
    size_t len = 0;
    raw_read(fd, NULL, 2000, &buf, &len); /* it writes the JSON and closes */
    close(fd);
    json_t *doc = buf != NULL ? json_loadb(buf, len, 0, NULL) : NULL;
    free(buf);
    json_t *pool = json_object_get(doc, "cachette");
    json_t *value = json_object_get(server != NULL ? json_object_get(pool, server) : pool, name);
    json_int_t n = json_is_integer(value) ? json_integer_value(value) : -1;
    json_decref(doc);
    return n;
}

/* Waits until the pool's counter reaches want (stats are refreshed every 100 ms). */
static void wait_counter(const struct cluster *c, const char *name, json_int_t want)
{
    json_int_t now = -1;
    for (int64_t deadline = now_ms() + PROXY_WAIT_MS; now_ms() < deadline; sleep_ms(50))
        if ((now = proxy_counter(c, NULL, name)) == want)
            return;
    fail_msg("twemproxy's %s is %lld, not %lld, after %d ms", name, (long long)now, (long long)want, PROXY_WAIT_MS);
}

/* ---- keys and requests ---------------------------------------------------- */

/*
 * Key i of a test: ASCII, UTF-8 with a '/', a space and a ':', CJK with CR
 * LF inside (a RESP key is counted, not delimited; cachette's keys are UTF-8
 * text). A prefix per test keeps them apart. Returns the length.
 */
static size_t key_bytes(char *buf, size_t size, const char *prefix, unsigned i)
{
    switch (i % 4) {
    case 0:
        return (size_t)snprintf(buf, size, "%s:%05u", prefix, i);
    case 1:
        return (size_t)snprintf(buf, size, "%s/clé/%u", prefix, i);
    case 2:
        return (size_t)snprintf(buf, size, "%s user:%u", prefix, i);
    default:
        return (size_t)snprintf(buf, size, "%s\r\n日本%u", prefix, i);
    }
}

/* The next reply on c; fails the test if none comes. */
static char *reply(struct resp_client *c)
{
    char *r = resp_read(c, REPLY_MS, NULL);
    if (r == NULL)
        fail_msg("no reply within %d ms (connection closed?)", REPLY_MS);
    return r;
}

static void expect_next(struct resp_client *c, const char *want, const char *what)
{
    char *r = reply(c);
    if (strcmp(r, want) != 0)
        fail_msg("%s: got %s, not %s", what, r, want);
    free(r);
}

/* A two- or three-argument command with binary arguments. */
static void send3(struct resp_client *c, const char *cmd, const char *a, size_t a_len, const char *b, size_t b_len)
{
    const char *argv[] = {cmd, a, b};
    size_t lens[] = {strlen(cmd), a_len, b_len};
    resp_send_argv(c, b != NULL ? 3 : 2, argv, lens);
}

/* A connection to twemproxy, authenticated when the cluster has a token. */
static void open_proxy(const struct cluster *cl, struct resp_client *c)
{
    resp_client_open(c, cl->port);
    if (cl->token != NULL)
        expect_reply(c, "+OK\r\n", "AUTH", cl->token, NULL);
}

/* Key i's value in the tests, "v<i>"; returns its length. */
static size_t value_of(char *buf, size_t size, unsigned i)
{
    return (size_t)snprintf(buf, size, "v%u", i);
}

/*
 * Through twemproxy, pipelined in chunks: write sets key i of prefix to
 * value_of(i) for i in [0, n); otherwise each key is read and must hold it.
 */
static void keys_through(const struct cluster *cl, int write, const char *prefix, unsigned n)
{
    struct resp_client c;
    open_proxy(cl, &c);
    char key[64], value[32], want[64];
    for (unsigned at = 0; at < n; at += CHUNK) {
        unsigned end = at + CHUNK < n ? at + CHUNK : n;
        for (unsigned i = at; i < end; i++) {
            size_t len = key_bytes(key, sizeof(key), prefix, i);
            if (write)
                send3(&c, "SET", key, len, value, value_of(value, sizeof(value), i));
            else
                send3(&c, "GET", key, len, NULL, 0);
        }
        for (unsigned i = at; i < end; i++) {
            if (write) {
                expect_next(&c, "+OK\r\n", "SET through the proxy");
            } else {
                size_t len = value_of(value, sizeof(value), i);
                snprintf(want, sizeof(want), "$%zu\r\n%s\r\n", len, value);
                expect_next(&c, want, "GET through the proxy");
            }
        }
    }
    resp_client_close(&c);
}

static void set_keys(const struct cluster *cl, const char *prefix, unsigned n)
{
    keys_through(cl, 1, prefix, n);
}

static void expect_all_read_back(const struct cluster *cl, const char *prefix, unsigned n)
{
    keys_through(cl, 0, prefix, n);
}

/* A connection to node i itself, authenticated when the cluster has a token. */
static void open_node(const struct cluster *c, unsigned i, struct resp_client *rc)
{
    resp_client_open(rc, c->node[i].resp_port);
    if (c->token != NULL)
        expect_reply(rc, "+OK\r\n", "AUTH", c->token, NULL);
}

/*
 * Asks each running node directly (EXISTS, pipelined) which of the n keys
 * of prefix it holds: owner[i] is the node, -1 if none; fails the test if a
 * key is on several. counts[node] gets each node's number.
 */
static void find_owners(const struct cluster *c, const char *prefix, unsigned n, int *owner, unsigned *counts)
{
    char key[64];
    for (unsigned i = 0; i < n; i++)
        owner[i] = -1;
    for (unsigned node = 0; node < NODES; node++) {
        counts[node] = 0;
        if (c->node[node].pid == 0)
            continue;
        struct resp_client rc;
        open_node(c, node, &rc);
        for (unsigned at = 0; at < n; at += CHUNK) {
            unsigned end = at + CHUNK < n ? at + CHUNK : n;
            for (unsigned i = at; i < end; i++)
                send3(&rc, "EXISTS", key, key_bytes(key, sizeof(key), prefix, i), NULL, 0);
            for (unsigned i = at; i < end; i++) {
                char *r = reply(&rc);
                if (strcmp(r, ":1\r\n") == 0) {
                    if (owner[i] != -1)
                        fail_msg("key %u of %s is on node %d and node %u", i, prefix, owner[i] + 1, node + 1);
                    owner[i] = (int)node;
                    counts[node]++;
                } else if (strcmp(r, ":0\r\n") != 0) {
                    fail_msg("EXISTS at node %u: %s", node + 1, r);
                }
                free(r);
            }
        }
        resp_client_close(&rc);
    }
}

/* DBSIZE of node i, asked directly. */
static long node_dbsize(const struct cluster *c, unsigned i)
{
    struct resp_client rc;
    open_node(c, i, &rc);
    char *r = resp_call(&rc, "DBSIZE", NULL);
    assert_non_null(r);
    assert_int_equal(r[0], ':');
    long n = strtol(r + 1, NULL, 10);
    free(r);
    resp_client_close(&rc);
    return n;
}

/* The busiest node's count against the average. */
static double busiest_ratio(const unsigned *counts, unsigned total)
{
    unsigned busiest = 0;
    for (unsigned i = 0; i < NODES; i++)
        if (counts[i] > busiest)
            busiest = counts[i];
    return (double)busiest / ((double)total / NODES);
}

/* ---- tests ------------------------------------------------------------------ */

/* 3,000 keys through twemproxy: all read back, each on exactly one node, the ring even. */
static void spread(void **state)
{
    (void)state;
    struct cluster *c = cluster_start(node_args_plain, NULL);
    set_keys(c, "spread", SPREAD_KEYS);
    expect_all_read_back(c, "spread", SPREAD_KEYS);

    int *owner = calloc(SPREAD_KEYS, sizeof(*owner));
    unsigned counts[NODES], total = 0;
    assert_non_null(owner);
    find_owners(c, "spread", SPREAD_KEYS, owner, counts);
    for (unsigned i = 0; i < SPREAD_KEYS; i++)
        if (owner[i] < 0)
            fail_msg("key %u is on no node", i);
    for (unsigned n = 0; n < NODES; n++) {
        assert_int_equal(node_dbsize(c, n), counts[n]); /* nothing else was stored */
        total += counts[n];
    }
    assert_int_equal(total, SPREAD_KEYS);
    double ratio = busiest_ratio(counts, total);
    printf("nutcracker: %u / %u / %u keys, busiest %.3fx the average\n", counts[0], counts[1], counts[2], ratio);
    assert_true(ratio <= 1.15);
    free(owner);
    cluster_stop(c);
}

/* Writes user:0..user:2999 through the proxy; returns the busiest node's share against the average. */
static double user_keys_ratio(const struct cluster *c, unsigned *counts)
{
    struct resp_client rc;
    resp_client_open(&rc, c->port);
    char key[32];
    for (unsigned at = 0; at < SPREAD_KEYS; at += CHUNK) {
        for (unsigned i = at; i < at + CHUNK; i++)
            send3(&rc, "SET", key, (size_t)snprintf(key, sizeof(key), "user:%u", i), "v", 1);
        for (unsigned i = at; i < at + CHUNK; i++)
            expect_next(&rc, "+OK\r\n", "SET user:N");
    }
    resp_client_close(&rc);
    for (unsigned n = 0; n < NODES; n++)
        counts[n] = (unsigned)node_dbsize(c, n);
    return busiest_ratio(counts, SPREAD_KEYS);
}

/*
 * Keys that differ only in their last bytes: even with the shipped md5;
 * bunched with twemproxy's default, fnv1a_64, which is FNV-1a in 32 bits
 * with the multiplier 435 (the hazard the file's comment states, shown).
 */
static void hash_of_similar_keys(void **state)
{
    (void)state;
    unsigned md5[NODES], fnv[NODES];
    struct cluster *c = cluster_start(node_args_plain, NULL);
    double md5_ratio = user_keys_ratio(c, md5);
    cluster_stop(c);
    static const char *const fnv1a_64[] = {"s/^  hash: md5$/  hash: fnv1a_64/", NULL};
    c = cluster_start(node_args_plain, fnv1a_64);
    double fnv_ratio = user_keys_ratio(c, fnv);
    cluster_stop(c);
    printf("user:0..user:%u: md5 %u / %u / %u keys, busiest %.3fx; fnv1a_64 %u / %u / %u, busiest %.3fx\n",
           SPREAD_KEYS - 1, md5[0], md5[1], md5[2], md5_ratio, fnv[0], fnv[1], fnv[2], fnv_ratio);
    assert_true(md5_ratio <= 1.15);
    assert_true(fnv_ratio > 1.15);
}

/* MSET and MGET of 100 keys over every node, and a multi-key DEL: split by twemproxy, joined in order. */
static void multi_key_commands(void **state)
{
    (void)state;
    struct cluster *c = cluster_start(node_args_plain, NULL);
    char keys[MGET_KEYS][64], values[MGET_KEYS][32];
    size_t key_len[MGET_KEYS];
    const char *argv[1 + 2 * MGET_KEYS];
    size_t lens[1 + 2 * MGET_KEYS];

    /* One MSET of all 100 (twemproxy splits it by node and answers OK once every node did). */
    argv[0] = "MSET";
    lens[0] = 4;
    for (unsigned i = 0; i < MGET_KEYS; i++) {
        key_len[i] = key_bytes(keys[i], sizeof(keys[i]), "multi", i);
        snprintf(values[i], sizeof(values[i]), "value-%u", i);
        argv[1 + 2 * i] = keys[i];
        lens[1 + 2 * i] = key_len[i];
        argv[2 + 2 * i] = values[i];
        lens[2 + 2 * i] = strlen(values[i]);
    }
    struct resp_client rc;
    resp_client_open(&rc, c->port);
    resp_send_argv(&rc, 1 + 2 * MGET_KEYS, argv, lens);
    expect_next(&rc, "+OK\r\n", "MSET over three nodes");

    int owner[MGET_KEYS];
    unsigned counts[NODES], spread[NODES];
    find_owners(c, "multi", MGET_KEYS, owner, counts);
    for (unsigned i = 0; i < MGET_KEYS; i++)
        assert_true(owner[i] >= 0);
    for (unsigned n = 0; n < NODES; n++) {
        assert_true(counts[n] > 0); /* the keys are on every node */
        spread[n] = counts[n];
    }

    /*
     * MGET of the 100 keys with an absent key after every tenth: the values
     * in the order asked, nil where absent, as one reply.
     */
    const char *mget[1 + MGET_KEYS + MGET_KEYS / 10];
    size_t mget_lens[1 + MGET_KEYS + MGET_KEYS / 10], argc = 1;
    mget[0] = "MGET";
    mget_lens[0] = 4;
    size_t cap = 64 * (MGET_KEYS + 10), n = 0;
    char *want = malloc(cap);
    assert_non_null(want);
    n += (size_t)snprintf(want + n, cap - n, "*%u\r\n", MGET_KEYS + MGET_KEYS / 10);
    for (unsigned i = 0; i < MGET_KEYS; i++) {
        mget[argc] = keys[i];
        mget_lens[argc++] = key_len[i];
        n += (size_t)snprintf(want + n, cap - n, "$%zu\r\n%s\r\n", strlen(values[i]), values[i]);
        if (i % 10 == 9) {
            mget[argc] = "multi-absent";
            mget_lens[argc++] = strlen("multi-absent");
            n += (size_t)snprintf(want + n, cap - n, "$-1\r\n");
        }
    }
    resp_send_argv(&rc, argc, mget, mget_lens);
    expect_next(&rc, want, "MGET of 110 keys over three nodes");

    /* DEL of the first 30 (on every node) and two absent keys: 30, summed over the nodes. */
    const char *del[1 + 32];
    size_t del_lens[1 + 32];
    unsigned on[NODES] = {0};
    del[0] = "DEL";
    del_lens[0] = 3;
    for (unsigned i = 0; i < 30; i++) {
        del[1 + i] = keys[i];
        del_lens[1 + i] = key_len[i];
        on[owner[i]]++;
    }
    del[31] = "multi-absent";
    del_lens[31] = strlen("multi-absent");
    del[32] = "multi-absent-2";
    del_lens[32] = strlen("multi-absent-2");
    for (unsigned node = 0; node < NODES; node++)
        assert_true(on[node] > 0);
    resp_send_argv(&rc, 33, del, del_lens);
    expect_next(&rc, ":30\r\n", "DEL of 30 keys on three nodes and 2 absent");
    find_owners(c, "multi", MGET_KEYS, owner, counts);
    for (unsigned i = 0; i < MGET_KEYS; i++)
        assert_true(i < 30 ? owner[i] == -1 : owner[i] >= 0);
    /* UNLINK is split the same way. */
    del[0] = "UNLINK";
    del_lens[0] = 6;
    for (unsigned i = 0; i < 30; i++) {
        del[1 + i] = keys[30 + i];
        del_lens[1 + i] = key_len[30 + i];
    }
    resp_send_argv(&rc, 31, del, del_lens);
    expect_next(&rc, ":30\r\n", "UNLINK of 30 keys");
    printf("nutcracker: MSET and MGET of %u keys (%u / %u / %u per node), in order; DEL of 30 keys (%u / %u / %u) and "
           "2 absent: 30\n",
           MGET_KEYS, spread[0], spread[1], spread[2], on[0], on[1], on[2]);
    free(want);
    resp_client_close(&rc);
    cluster_stop(c);
}

/* Sends a raw request on a fresh connection; returns whether twemproxy closed it with nothing sent back. */
static int closed_without_reply(const struct cluster *c, const char *request)
{
    struct resp_client rc;
    resp_client_open(&rc, c->port);
    resp_send_raw(&rc, request, strlen(request));
    int closed = resp_closed(&rc, 5000) && rc.len == 0;
    if (!closed)
        fprintf(stderr, "%s: got %.*s\n", request, (int)rc.len, rc.buf ? rc.buf : "");
    resp_client_close(&rc);
    return closed;
}

/* What twemproxy answers itself, what makes it close the connection, and how it sends EXISTS with several keys. */
static void what_the_proxy_answers(void **state)
{
    (void)state;
    struct cluster *c = cluster_start(node_args_plain, NULL);
    /* PING is answered by twemproxy even when no node can answer. */
    for (unsigned i = 0; i < NODES; i++)
        assert_int_equal(server_pause(&c->node[i], 10000), 0);
    struct resp_client rc;
    resp_client_open(&rc, c->port);
    expect_reply(&rc, "+PONG\r\n", "PING", NULL); /* a node's would have been -ERR Connection timed out */
    resp_client_close(&rc);
    for (unsigned i = 0; i < NODES; i++)
        server_signal(&c->node[i], SIGCONT);

    /* QUIT: closed, without Redis's +OK. */
    assert_true(closed_without_reply(c, "*1\r\n$4\r\nQUIT\r\n"));
    /* Commands twemproxy does not route, of those cachette answers: the connection is closed. */
    static const char *const unrouted[] = {
        "*1\r\n$4\r\nINFO\r\n",
        "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n",
        "*2\r\n$4\r\nSCAN\r\n$1\r\n0\r\n",
        "*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n",
        "*1\r\n$6\r\nDBSIZE\r\n",
        "*1\r\n$8\r\nFLUSHALL\r\n",
        "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n",
        "*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n",
        "*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$1\r\nx\r\n",
        "*2\r\n$4\r\nPING\r\n$1\r\nx\r\n",
        "*5\r\n$6\r\nMSETNX\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n",
        "*4\r\n$6\r\nEXPIRE\r\n$1\r\na\r\n$2\r\n10\r\n$2\r\nNX\r\n",
        "*3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$1\r\nx\r\n",
        "PING\r\n", /* inline */
    };
    for (size_t i = 0; i < sizeof(unrouted) / sizeof(unrouted[0]); i++)
        if (!closed_without_reply(c, unrouted[i]))
            fail_msg("twemproxy did not close the connection on %s", unrouted[i]);
    /* AUTH without redis_auth in the file: twemproxy's own error. */
    resp_client_open(&rc, c->port);
    expect_reply(&rc, "-ERR Client sent AUTH, but no password is set\r\n", "AUTH", "x", NULL);

    /*
     * EXISTS with several keys goes whole to the first key's node, which
     * counts only what it holds: find two keys on different nodes.
     */
    set_keys(c, "exists", 12);
    int owner[12];
    unsigned counts[NODES];
    find_owners(c, "exists", 12, owner, counts);
    unsigned other = 1;
    while (other < 12 && owner[other] == owner[0])
        other++;
    assert_true(other < 12);
    char first[64], second[64];
    size_t first_len = key_bytes(first, sizeof(first), "exists", 0);
    size_t second_len = key_bytes(second, sizeof(second), "exists", other);
    send3(&rc, "EXISTS", first, first_len, second, second_len);
    expect_next(&rc, ":1\r\n", "EXISTS of two keys on two nodes");
    send3(&rc, "EXISTS", first, first_len, NULL, 0);
    expect_next(&rc, ":1\r\n", "EXISTS of the first");
    send3(&rc, "EXISTS", second, second_len, NULL, 0);
    expect_next(&rc, ":1\r\n", "EXISTS of the second");
    resp_client_close(&rc);
    cluster_stop(c);
}

/*
 * A node killed: the requests that fail before twemproxy ejects it, then
 * every key of the other two hits, the dead node's keys miss and can be
 * written again, on the two others.
 */
static void node_killed(void **state)
{
    (void)state;
    struct cluster *c = cluster_start(node_args_plain, NULL);
    set_keys(c, "fail", FAILOVER_KEYS);
    int *owner = calloc(FAILOVER_KEYS, sizeof(*owner));
    unsigned counts[NODES];
    assert_non_null(owner);
    find_owners(c, "fail", FAILOVER_KEYS, owner, counts);
    const unsigned dead = 2;
    assert_true(counts[dead] > 0);

    assert_int_equal(kill(c->node[dead].pid, SIGKILL), 0);
    assert_int_equal(server_wait_exit(&c->node[dead], 10000), 128 + SIGKILL);

    /*
     * One client reads the dead node's keys, one request at a time, until
     * the first miss: every reply before it is twemproxy's error. The
     * connection twemproxy held to the node counts as a failure when it is
     * dropped, so fewer requests than the limit may fail.
     */
    struct resp_client rc;
    resp_client_open(&rc, c->port);
    char key[64];
    unsigned failed = 0, asked = 0;
    char first_error[128] = "";
    for (unsigned i = 0; i < FAILOVER_KEYS; i++) {
        if (owner[i] != (int)dead)
            continue;
        send3(&rc, "GET", key, key_bytes(key, sizeof(key), "fail", i), NULL, 0);
        char *r = reply(&rc);
        asked++;
        int miss = strcmp(r, "$-1\r\n") == 0;
        if (!miss) {
            if (r[0] != '-')
                fail_msg("a dead node's key, before ejection: %s", r);
            if (failed++ == 0)
                snprintf(first_error, sizeof(first_error), "%.*s", (int)strcspn(r, "\r"), r);
        }
        free(r);
        if (miss)
            break;
        assert_true(failed <= FAILURE_LIMIT); /* ejected after server_failure_limit failures */
    }
    assert_true(failed >= 1);
    assert_true(asked == failed + 1);
    wait_counter(c, "server_ejects", 1);

    /* Ejected: the others' keys all hit, the dead node's all miss and are written again, elsewhere. */
    unsigned hits = 0, misses = 0;
    for (unsigned at = 0; at < FAILOVER_KEYS; at += CHUNK) {
        unsigned end = at + CHUNK < FAILOVER_KEYS ? at + CHUNK : FAILOVER_KEYS;
        for (unsigned i = at; i < end; i++)
            send3(&rc, "GET", key, key_bytes(key, sizeof(key), "fail", i), NULL, 0);
        for (unsigned i = at; i < end; i++) {
            char *r = reply(&rc), want[64], v[32];
            size_t vlen = value_of(v, sizeof(v), i);
            snprintf(want, sizeof(want), "$%zu\r\n%s\r\n", vlen, v);
            if (owner[i] == (int)dead) {
                if (strcmp(r, "$-1\r\n") != 0)
                    fail_msg("key %u of the dead node, after ejection: %s", i, r);
                misses++;
            } else {
                if (strcmp(r, want) != 0)
                    fail_msg("key %u of node %d, after ejection: %s", i, owner[i] + 1, r);
                hits++;
            }
            free(r);
        }
    }
    resp_client_close(&rc);
    assert_int_equal(misses, counts[dead]);
    assert_int_equal(hits, FAILOVER_KEYS - counts[dead]);

    set_keys(c, "fail", FAILOVER_KEYS); /* all of them: the others' are overwritten in place */
    expect_all_read_back(c, "fail", FAILOVER_KEYS);
    int *after = calloc(FAILOVER_KEYS, sizeof(*after));
    unsigned now[NODES];
    assert_non_null(after);
    find_owners(c, "fail", FAILOVER_KEYS, after, now);
    for (unsigned i = 0; i < FAILOVER_KEYS; i++) {
        if (owner[i] != (int)dead && after[i] != owner[i])
            fail_msg("key %u moved from node %d to node %d", i, owner[i] + 1, after[i] + 1);
        assert_true(after[i] >= 0 && after[i] != (int)dead);
    }
    assert_int_equal(proxy_counter(c, NULL, "server_ejects"), 1);
    printf("nutcracker: node 3 killed: %u request(s) failed before ejection (first: %s; server_failure_limit %d); "
           "then %u of %u keys hit, %u (%.1f%%) moved: missed and were written again on nodes 1 and 2 "
           "(%u / %u more)\n",
           failed, first_error, FAILURE_LIMIT, hits, FAILOVER_KEYS, misses, 100.0 * misses / FAILOVER_KEYS,
           now[0] - counts[0], now[1] - counts[1]);
    free(after);
    free(owner);
    cluster_stop(c);
}

/*
 * A node hung (SIGSTOP), not dead: twemproxy ejects it after its timeouts,
 * the key is rewritten on another node, the node resumes, and once
 * server_retry_timeout has passed twemproxy sends the key to it again: the
 * old value comes back (the hazard; only a TTL bounds it). The retry
 * timeout is edited down to 2 s so that the test need not wait 30.
 */
static void hung_node_returns_stale(void **state)
{
    (void)state;
    static const char *const short_retry[] = {"s/^  server_retry_timeout: 30000$/  server_retry_timeout: 2000/", NULL};
    struct cluster *c = cluster_start(node_args_plain, short_retry);
    struct resp_client rc;
    resp_client_open(&rc, c->port);
    expect_reply(&rc, "+OK\r\n", "SET", "returning", "old", NULL);
    int home = -1;
    for (unsigned i = 0; i < NODES; i++) {
        struct resp_client direct;
        resp_client_open(&direct, c->node[i].resp_port);
        char *r = resp_call(&direct, "EXISTS", "returning", NULL);
        if (r != NULL && strcmp(r, ":1\r\n") == 0)
            home = (int)i;
        free(r);
        resp_client_close(&direct);
    }
    assert_true(home >= 0);
    assert_int_equal(server_pause(&c->node[home], 10000), 0);

    /* Each read times out (1 s, the shipped timeout) until the node is ejected; then a miss. */
    unsigned timeouts = 0;
    int64_t start = now_ms();
    for (;;) {
        char *r = resp_call(&rc, "GET", "returning", NULL);
        assert_non_null(r);
        int miss = strcmp(r, "$-1\r\n") == 0;
        if (!miss) {
            if (strcmp(r, "-ERR Connection timed out\r\n") != 0)
                fail_msg("the hung node's key: %s", r);
            timeouts++;
        }
        free(r);
        if (miss)
            break;
        assert_true(timeouts <= FAILURE_LIMIT);
    }
    int64_t ejected_after = now_ms() - start;
    expect_reply(&rc, "+OK\r\n", "SET", "returning", "new", NULL);
    expect_reply(&rc, "$3\r\nnew\r\n", "GET", "returning", NULL);
    server_signal(&c->node[home], SIGCONT);

    /* Read until twemproxy tries the node again (2 s after the ejection): the old value. */
    char *r = NULL;
    for (int64_t deadline = now_ms() + PROXY_WAIT_MS; now_ms() < deadline; sleep_ms(50)) {
        free(r);
        r = resp_call(&rc, "GET", "returning", NULL);
        assert_non_null(r);
        if (strcmp(r, "$3\r\nnew\r\n") != 0)
            break;
    }
    assert_string_equal(r, "$3\r\nold\r\n");
    free(r);
    printf("nutcracker: a hung node: %u timeouts (%lld ms) before ejection; back after the retry timeout, "
           "it served the old value\n",
           timeouts, (long long)ejected_after);
    resp_client_close(&rc);
    cluster_stop(c);
}

/*
 * Nodes run with --eviction noeviction answer -OOM once full, which
 * twemproxy takes, as it does for Redis, for a failing node: it closes the
 * connection (-ERR Invalid argument to the requests on it) and counts a
 * failure. Writes of 32 KiB values one at a time: the first full node is
 * ejected, its writes go to the next, which fills in turn, until no node is
 * left and every request, reads too, gets -ERR Connection refused.
 */
static void full_nodes_ejected_under_noeviction(void **state)
{
    (void)state;
    struct cluster *c = cluster_start(node_args_noeviction, NULL);
    struct resp_client rc;
    open_proxy(c, &rc);
    static char value[32 * 1024];
    memset(value, 'x', sizeof(value));
    char key[32];
    unsigned stored = 0, invalid = 0, i = 0;
    for (;; i++) {
        assert_true(i < 2000); /* 8 MiB on each of 3 nodes holds fewer than 800 */
        send3(&rc, "SET", key, (size_t)snprintf(key, sizeof(key), "full:%u", i), value, sizeof(value));
        char *r = reply(&rc);
        int refused = strcmp(r, "-ERR Connection refused\r\n") == 0;
        if (strcmp(r, "+OK\r\n") == 0)
            stored++;
        else if (strcmp(r, "-ERR Invalid argument\r\n") == 0)
            invalid++;
        else if (!refused)
            fail_msg("SET of a 32 KiB value into full nodes: %s", r);
        free(r);
        if (refused)
            break;
    }
    wait_counter(c, "server_ejects", NODES);
    expect_reply(&rc, "-ERR Connection refused\r\n", "GET", "full:0", NULL);
    printf(
        "nutcracker: noeviction nodes of 8 MiB: %u writes stored, %u answered -ERR Invalid argument (-OOM), then all "
        "%d nodes ejected and every request refused\n",
        stored, invalid, NODES);
    assert_true(invalid >= NODES);
    resp_client_close(&rc);
    cluster_stop(c);
}

/* Nodes with --auth-token, redis_auth set: twemproxy authenticates to them and asks its clients the token. */
static void auth(void **state)
{
    (void)state;
    static const char *const with_auth[] = {"s/^  #   redis_auth: <token>$/  redis_auth: " TOKEN "/", NULL};
    struct cluster *c = cluster_start(node_args_auth, with_auth);
    struct resp_client rc;
    resp_client_open(&rc, c->port);
    expect_reply(&rc, "-NOAUTH Authentication required\r\n", "GET", "k", NULL);
    expect_reply(&rc, "-ERR invalid password\r\n", "AUTH", "wrong", NULL);
    expect_reply(&rc, "-NOAUTH Authentication required\r\n", "GET", "k", NULL);
    expect_reply(&rc, "+OK\r\n", "AUTH", TOKEN, NULL);
    expect_reply(&rc, "$-1\r\n", "GET", "k", NULL);
    resp_client_close(&rc);
    /* Through twemproxy, which authenticated itself to every node: keys on all three, read back. */
    c->token = TOKEN;
    set_keys(c, "auth", 300);
    expect_all_read_back(c, "auth", 300);
    int owner[300];
    unsigned counts[NODES];
    find_owners(c, "auth", 300, owner, counts);
    for (unsigned n = 0; n < NODES; n++)
        assert_true(counts[n] > 0);
    /* The nodes themselves still ask for the token. */
    resp_client_open(&rc, c->node[0].resp_port);
    expect_reply(&rc, "-NOAUTH Authentication required.\r\n", "GET", "k", NULL);
    resp_client_close(&rc);
    cluster_stop(c);
}

/* redis-benchmark through twemproxy: no error reply (any makes it exit 1), keys on every node. */
static void benchmark(void **state)
{
    (void)state;
    struct cluster *c = cluster_start(node_args_plain, NULL);
    char cmd[256], *out = NULL;
    snprintf(cmd, sizeof(cmd),
             "timeout 120 redis-benchmark -h 127.0.0.1 -p %u -t set,get,incr -n 20000 -c 20 -r 10000 -q 2>&1 "
             "| tr '\\r' '\\n' | grep 'requests per second'",
             c->port);
    int rc = run_shell(cmd, &out);
    printf("%s", out);
    free(out);
    assert_int_equal(rc, 0);
    for (unsigned n = 0; n < NODES; n++)
        assert_true(node_dbsize(c, n) > 0);
    cluster_stop(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(spread, cluster_teardown),
        cmocka_unit_test_teardown(hash_of_similar_keys, cluster_teardown),
        cmocka_unit_test_teardown(multi_key_commands, cluster_teardown),
        cmocka_unit_test_teardown(what_the_proxy_answers, cluster_teardown),
        cmocka_unit_test_teardown(node_killed, cluster_teardown),
        cmocka_unit_test_teardown(hung_node_returns_stale, cluster_teardown),
        cmocka_unit_test_teardown(full_nodes_ejected_under_noeviction, cluster_teardown),
        cmocka_unit_test_teardown(auth, cluster_teardown),
        cmocka_unit_test_teardown(benchmark, cluster_teardown),
    };
    return support_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
