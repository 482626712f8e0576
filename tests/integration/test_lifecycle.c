/*
 * The process around the API (issue 2, section 4): flags and their
 * CACHETTE_* variables, bad values (exit 2, a message on stderr, nothing on
 * stdout), --help and --version, the drain on SIGTERM/SIGINT, the
 * --max-connections limit, and a second server on a port that is taken.
 *
 * Most tests start servers of their own, each stopped with an assertion
 * that it exits 0 (so a sanitizer report fails the test); the group's server
 * is the one whose port a second server tries to take.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/http.h"
#include "../support/procfs.h"
#include "../support/raw.h"
#include "../support/server.h"

#define CLI_TIMEOUT_MS  30000
#define STOP_TIMEOUT_MS 15000

static void expect_contains(const char *haystack, const char *needle, const char *what)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("%s does not contain '%s'; it is:\n%s", what, needle, haystack);
}

/* Runs the binary to completion and asserts its exit status; returns stdout and stderr (caller frees). */
static void run_expecting(const char *const *argv, const char *const *env, int want_status, char **out, char **err)
{
    int status = run_binary(argv, env, CLI_TIMEOUT_MS, out, err);
    if (status != want_status) {
        print_error("cachette %s…: exit status %d, expected %d; stderr:\n%s\n", argv[0] ? argv[0] : "", status,
                    want_status, *err);
        free(*out);
        free(*err);
        fail();
    }
}

/* Polls until connecting to port is refused (the server stopped accepting), for up to timeout_ms. */
static int wait_until_refused(unsigned port, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        int fd = raw_try_connect(port);
        if (fd == -1 && errno == ECONNREFUSED)
            return 0;
        if (fd != -1)
            close(fd);
        sleep_ms(10);
    }
    return -1;
}

/* Polls /stats until the server counts at least want open connections (its own request included). */
static void wait_for_connections(unsigned port, json_int_t want)
{
    int64_t deadline = now_ms() + 30000;
    json_int_t open = -1;
    while (now_ms() < deadline) {
        json_t *stats = get_stats(port);
        open = json_int_member(stats, "connections");
        json_decref(stats);
        if (open >= want)
            return;
        sleep_ms(10);
    }
    fail_msg("the server counts %lld connections, expected %lld", (long long)open, (long long)want);
}

/* ---- flags --------------------------------------------------------------------- */

static void bad_flag_values_exit_2_with_a_message(void **state)
{
    (void)state;
    static const struct {
        const char *argv[5];
        const char *message;
    } cases[] = {
        {{"--port", "70000"}, "invalid value '70000' for --port"},
        {{"--port=70000"}, "invalid value '70000' for --port"},
        {{"--port", "-1"}, "invalid value '-1' for --port"},
        {{"--port", "80x"}, "invalid value '80x' for --port"},
        {{"--max-memory", "12qb"}, "invalid value '12qb' for --max-memory"},
        {{"--max-memory", "1kb"}, "invalid value '1kb' for --max-memory"},
        {{"--threads", "0"}, "invalid value '0' for --threads"},
        {{"--threads", "many"}, "invalid value 'many' for --threads"},
        {{"--max-key-bytes", "0"}, "invalid value '0' for --max-key-bytes"},
        {{"--default-ttl", "soon"}, "invalid value 'soon' for --default-ttl"},
        {{"--request-timeout", "50ms"}, "invalid value '50ms' for --request-timeout"},
        {{"--max-connections", "0"}, "invalid value '0' for --max-connections"},
        {{"--eviction", "lru"}, "invalid value 'lru' for --eviction"},
        {{"--log-level", "loud"}, "invalid value 'loud' for --log-level"},
        {{"--http2", "yes"}, "invalid value 'yes' for --http2"},
        {{"--bind", ""}, "invalid value '' for --bind"},
        {{"--nope"}, "unknown flag '--nope'"},
        {{"--nope=1"}, "unknown flag '--nope'"},
        {{"stray"}, "unexpected argument 'stray'"},
        {{"--port"}, "flag --port needs a value"},
        {{"--max-memory", "1mb", "--max-value-bytes", "2mb"},
         "--max-value-bytes (2097152) is larger than --max-memory"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out, *err;
        run_expecting(cases[i].argv, NULL, 2, &out, &err);
        expect_contains(err, cases[i].message, "stderr");
        if (out[0] != '\0')
            fail_msg("case %zu printed on stdout: %s", i, out);
        free(out);
        free(err);
    }
}

static void bad_bind_address_exits_2(void **state)
{
    (void)state;
    /* A --bind that is not an address is a bad value like any other (issue 2: "A bad value exits 2"). */
    static const char *const argv[] = {"--port", "0", "--bind", "not-an-ip", NULL};
    char *out, *err;
    run_expecting(argv, NULL, 2, &out, &err);
    expect_contains(err, "not-an-ip", "stderr");
    assert_string_equal(out, "");
    free(out);
    free(err);
}

static void bad_environment_values_exit_2_naming_the_variable(void **state)
{
    (void)state;
    static const struct {
        const char *env, *message;
    } cases[] = {
        {"CACHETTE_PORT=abc", "invalid value 'abc' for CACHETTE_PORT"},
        {"CACHETTE_MAX_MEMORY=lots", "invalid value 'lots' for CACHETTE_MAX_MEMORY"},
        {"CACHETTE_THREADS=0", "invalid value '0' for CACHETTE_THREADS"},
        {"CACHETTE_EVICTION=random", "invalid value 'random' for CACHETTE_EVICTION"},
    };
    static const char *const no_args[] = {NULL};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *env[] = {cases[i].env, NULL};
        char *out, *err;
        run_expecting(no_args, env, 2, &out, &err);
        expect_contains(err, cases[i].message, "stderr");
        assert_string_equal(out, "");
        free(out);
        free(err);
    }
}

static void help_and_version_exit_0(void **state)
{
    (void)state;
    static const char *const flags[] = {"--port",
                                        "--bind",
                                        "--threads",
                                        "--max-memory",
                                        "--eviction",
                                        "--max-key-bytes",
                                        "--max-value-bytes",
                                        "--max-body-bytes",
                                        "--default-ttl",
                                        "--max-connections",
                                        "--request-timeout",
                                        "--idle-timeout",
                                        "--drain-timeout",
                                        "--log-level",
                                        "--http2",
                                        "--help",
                                        "--version",
                                        "CACHETTE_PORT",
                                        "CACHETTE_MAX_MEMORY",
                                        "CACHETTE_LOG_LEVEL"};
    static const char *const help[] = {"--help", NULL}, *const h[] = {"-h", NULL};
    static const char *const version[] = {"--version", NULL};
    static const char *const help_wins[] = {"--port", "1", "--help", "--nope", NULL};
    char *out, *err;

    run_expecting(help, NULL, 0, &out, &err);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        expect_contains(out, flags[i], "--help");
    assert_string_equal(err, "");
    free(out);
    free(err);

    run_expecting(h, NULL, 0, &out, &err);
    expect_contains(out, "--max-memory", "-h");
    free(out);
    free(err);

    run_expecting(help_wins, NULL, 0, &out, &err); /* --help before a bad flag: the help, not an error */
    expect_contains(out, "--port", "--help");
    free(out);
    free(err);

    run_expecting(version, NULL, 0, &out, &err);
    assert_string_equal(out, "cachette 0.1.0\n");
    assert_string_equal(err, "");
    free(out);
    free(err);
}

static void environment_variables_are_honoured_and_flags_win(void **state)
{
    (void)state;
    struct server s;
    struct http_res res;
    char port_env[32];
    unsigned port = free_port();
    assert_true(port > 0);
    snprintf(port_env, sizeof(port_env), "CACHETTE_PORT=%u", port);
    const char *env[] = {port_env,
                         "CACHETTE_THREADS=3",
                         "CACHETTE_MAX_MEMORY=1mb",
                         "CACHETTE_MAX_KEY_BYTES=8",
                         "CACHETTE_DEFAULT_TTL=100",
                         "CACHETTE_LOG_LEVEL=error",
                         NULL};
    struct server_opts opts = {.env = env, .no_default_port = 1, .no_default_threads = 1};

    assert_int_equal(server_start(&s, &opts), 0);
    assert_int_equal(s.port, port);
    json_t *stats = get_stats(s.port);
    assert_int_equal(json_int_member(stats, "threads"), 3);
    assert_int_equal(json_int_member(stats, "max_memory"), 1024 * 1024);
    json_decref(stats);
    http_call(s.port, "PUT", "/cache/123456789", "{\"value\":1}", &res);
    expect_error(&res, 414, "key is longer than max-key-bytes (8)");
    http_res_free(&res);
    http_call(s.port, "PUT", "/cache/12345678", "{\"value\":1}", &res);
    expect_message(&res, 201, "created");
    http_res_free(&res);
    http_call(s.port, "GET", "/cache/12345678", NULL, &res);
    json_int_t ttl = json_int_member(expect_json(&res, 200), "ttl"); /* the default TTL applies */
    assert_true(ttl > 0 && ttl <= 100);
    http_res_free(&res);
    assert_int_equal(server_stop(&s, STOP_TIMEOUT_MS), 0);
    char *log = server_stderr(&s);
    server_cleanup(&s);
    if (strstr(log, " info ") != NULL) /* CACHETTE_LOG_LEVEL=error */
        fail_msg("info lines were logged at log level error:\n%s", log);
    free(log);

    /* Flags win over the environment. */
    static const char *const args[] = {"--max-key-bytes", "16", "--default-ttl", "0", NULL};
    opts = (struct server_opts){.env = env, .args = args}; /* with the default --port 0 --threads 2 */
    assert_int_equal(server_start(&s, &opts), 0);
    assert_true(s.port != port);
    stats = get_stats(s.port);
    assert_int_equal(json_int_member(stats, "threads"), 2);
    assert_int_equal(json_int_member(stats, "max_memory"), 1024 * 1024);
    json_decref(stats);
    http_call(s.port, "PUT", "/cache/0123456789abcdef", "{\"value\":1}", &res);
    expect_message(&res, 201, "created");
    http_res_free(&res);
    http_call(s.port, "GET", "/cache/0123456789abcdef", NULL, &res);
    assert_null(json_object_get(expect_json(&res, 200), "ttl"));
    http_res_free(&res);
    expect_clean_exit(&s, STOP_TIMEOUT_MS);
}

/* ---- stopping ---------------------------------------------------------------------- */

/*
 * Starts a server with --drain-timeout drain, leaves a POST half sent, sends
 * SIGTERM, waits until the listener is closed, then sends the rest. Returns
 * the raw response (caller frees) and whether the server closed the
 * connection within wait_close_ms after it; *exit_ms is how long after
 * SIGTERM the server exited (with status 0, asserted), or -1.
 */
static char *post_across_sigterm(const char *drain, int wait_close_ms, int *closed, int64_t *exit_ms)
{
    struct server s;
    static const char head[] = "POST /cache HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                               "Content-Length: 34\r\n\r\n{\"key\":\"in-flight\",";
    static const char rest[] = "\"value\":\"done\"}";
    assert_int_equal(server_start_args(&s, "--drain-timeout", drain, NULL), 0);

    int fd = raw_connect(s.port);
    assert_int_equal(raw_send(fd, head, sizeof(head) - 1), 0);
    wait_for_connections(s.port, 2); /* ours has been accepted (the other is /stats's own) */

    server_signal(&s, SIGTERM);
    int64_t signalled = now_ms();
    if (wait_until_refused(s.port, 3000) != 0)
        fail_msg("the server still accepts connections 3 s after SIGTERM");

    /* The rest of the body arrives after the listener closed. */
    assert_int_equal(raw_send(fd, rest, sizeof(rest) - 1), 0);
    char *buf = NULL;
    size_t len = 0;
    raw_read(fd, "{\"message\":\"stored\"}", 3000, &buf, &len);
    *closed = raw_read(fd, NULL, wait_close_ms, &buf, &len);

    int status = server_wait_exit(&s, 70000);
    *exit_ms = s.pid == 0 ? now_ms() - signalled : -1;
    close(fd);
    server_cleanup(&s);
    if (*exit_ms == -1)
        fail_msg("the server had not exited 70 s after SIGTERM (--drain-timeout %s)", drain);
    assert_int_equal(status, 0);
    return buf;
}

static void sigterm_lets_an_in_flight_request_finish(void **state)
{
    (void)state;
    int closed;
    int64_t exit_ms;
    char *buf = post_across_sigterm("30s", 0, &closed, &exit_ms);
    struct raw_res r;
    assert_int_equal(raw_parse(buf, strlen(buf), &r, 1, 0), 1);
    json_t *obj = expect_raw_json(&r, 200);
    assert_string_equal(json_string_value(json_object_get(obj, "message")), "stored");
    json_decref(obj);
    free(buf);
    /* Once its one request is done, not at the drain deadline (30 s): a slow (sanitized, loaded) exit is fine. */
    assert_true(exit_ms < 20000);
}

static void responses_while_draining_close_the_connection(void **state)
{
    (void)state;
    /*
     * Once draining, a response should end its HTTP/1 connection (Connection: close), as
     * src/http/server.c intends ("no more keep-alive for HTTP/1"), so that a server whose
     * requests are all done exits at once instead of waiting out --drain-timeout.
     */
    int closed;
    int64_t exit_ms;
    char *buf = post_across_sigterm("60s", 1000, &closed, &exit_ms);
    struct raw_res r;
    char conn[32] = "";
    assert_int_equal(raw_parse(buf, strlen(buf), &r, 1, 0), 1);
    assert_int_equal(r.status, 200);
    if (raw_header(&r, "Connection", conn, sizeof(conn)) == NULL || strcmp(conn, "close") != 0) {
        free(buf);
        fail_msg("a response sent while draining says 'Connection: %s', not close; the server exited %lld ms "
                 "after SIGTERM (--drain-timeout 60s)",
                 conn[0] ? conn : "(none)", (long long)exit_ms);
    }
    free(buf);
    assert_true(closed);
    assert_true(exit_ms < 20000); /* at once, not at the drain deadline (60 s), however slow the machine */
}

/* Opens a connection, has one request answered on it and returns it: kept alive, between requests. */
static int open_idle_connection(unsigned port)
{
    static const char ping[] = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
    char *buf = NULL;
    size_t len = 0;
    int fd = raw_connect(port);
    assert_int_equal(raw_send(fd, ping, sizeof(ping) - 1), 0);
    raw_read(fd, "{\"status\":\"ok\"}", 3000, &buf, &len);
    expect_contains(buf, "{\"status\":\"ok\"}", "the response");
    free(buf);
    return fd;
}

static void sigterm_with_stalled_clients_exits_0_at_the_drain_deadline(void **state)
{
    (void)state;
    struct server s;
    static const char head[] = "POST /cache HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"key\":";
    /* --request-timeout 60s: the stalled client is not timed out first, so only the drain deadline ends it. */
    assert_int_equal(server_start_args(&s, "--drain-timeout", "1s", "--request-timeout", "60s", NULL), 0);

    int stalled = raw_connect(s.port); /* its body never completes */
    int idle = open_idle_connection(s.port);
    assert_int_equal(raw_send(stalled, head, sizeof(head) - 1), 0);
    char *buf = NULL;
    size_t len = 0;
    wait_for_connections(s.port, 3);

    int64_t signalled = now_ms();
    server_signal(&s, SIGTERM);
    int status = server_wait_exit(&s, 30000);
    int64_t took = now_ms() - signalled;
    if (status == -1)
        fail_msg("the server had not exited 30 s after SIGTERM (--drain-timeout 1s)");
    char *log = server_stderr(&s);
    server_cleanup(&s);
    if (status != 0)
        fail_msg("exit status %d after the drain deadline; stderr:\n%s", status, log);
    free(log);
    assert_true(took >= 800);  /* it did wait for the stalled request */
    assert_true(took < 20000); /* and no longer than the drain, however slow: not the 60 s request timeout */

    /* Both clients see their connection closed. */
    buf = NULL;
    assert_true(raw_read(stalled, NULL, 2000, &buf, &len));
    free(buf);
    buf = NULL;
    assert_true(raw_read(idle, NULL, 2000, &buf, &len));
    free(buf);
    close(stalled);
    close(idle);
}

/*
 * Idle keep-alive connections do not hold the drain: h2o 2.2.5 leaves them
 * open on shutdown, so the network core closes every connection whose last
 * HTTP/1 request is answered and that has sent nothing since. With a 30 s
 * deadline (and a 60 s keep-alive wait) the server must exit long before
 * either, and each client sees its connection closed with nothing more sent.
 */
static void sigterm_closes_idle_keep_alive_connections_at_once(void **state)
{
    (void)state;
    struct server s;
    int idle[3];
    /* The keep-alive wait (--request-timeout) would close them too: make it outlast the test. */
    assert_int_equal(server_start_args(&s, "--drain-timeout", "30s", "--request-timeout", "60s", NULL), 0);
    for (int i = 0; i < 3; i++)
        idle[i] = open_idle_connection(s.port);
    wait_for_connections(s.port, 4);

    int64_t signalled = now_ms();
    server_signal(&s, SIGTERM);
    int status = server_wait_exit(&s, 15000);
    int64_t took = now_ms() - signalled;
    char *log = server_stderr(&s);
    server_cleanup(&s);
    if (status != 0)
        fail_msg("exit status %d %lld ms after SIGTERM (--drain-timeout 30s, -1: still running); stderr:\n%s", status,
                 (long long)took, log);
    free(log);
    for (int i = 0; i < 3; i++) {
        char *buf = NULL;
        size_t len = 0;
        assert_true(raw_read(idle[i], NULL, 2000, &buf, &len)); /* closed */
        assert_int_equal(len, 0);                                 /* with nothing more sent */
        free(buf);
        close(idle[i]);
    }
}

static void sigint_also_stops_cleanly(void **state)
{
    (void)state;
    struct server s;
    assert_int_equal(server_start(&s, NULL), 0);
    struct http_res res;
    http_call(s.port, "POST", "/cache", "{\"key\":\"k\",\"value\":\"v\"}", &res);
    expect_message(&res, 200, "stored");
    http_res_free(&res);
    server_signal(&s, SIGINT);
    int status = server_wait_exit(&s, STOP_TIMEOUT_MS);
    char *log = server_stderr(&s);
    server_cleanup(&s);
    if (status != 0)
        fail_msg("exit status %d after SIGINT; stderr:\n%s", status, log);
    expect_contains(log, "SIGINT", "the log");
    free(log);
}

/* ---- connection limit ---------------------------------------------------------------- */

static void max_connections_refuses_the_sixth_with_503(void **state)
{
    (void)state;
    struct server s;
    int held[5];
    assert_int_equal(server_start_args(&s, "--max-connections", "5", NULL), 0);
    for (int i = 0; i < 5; i++) {
        held[i] = raw_connect(s.port);
        assert_int_equal(raw_ping(held[i]), 0); /* accepted and counted */
    }

    /* The sixth is answered 503 at once, without being read, and closed. */
    for (int attempt = 0; attempt < 2; attempt++) {
        int sixth = raw_connect(s.port);
        char *buf = NULL;
        size_t len = 0;
        int closed = raw_read(sixth, NULL, 3000, &buf, &len);
        close(sixth);
        assert_true(closed);
        struct raw_res r;
        assert_int_equal(raw_parse(buf, len, &r, 1, 0), 1);
        json_t *obj = expect_raw_json(&r, 503);
        assert_string_equal(json_string_value(json_object_get(obj, "error")), "too many connections");
        assert_int_equal(json_object_size(obj), 1);
        json_decref(obj);
        free(buf);
    }

    /*
     * A client that sent its request before the refusal still reads the 503:
     * closing a socket with unread bytes would send a reset, which can
     * destroy the answer before the client reads it.
     */
    static const char ping[] = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
    int eager[20];
    for (int i = 0; i < 20; i++) {
        eager[i] = raw_connect(s.port);
        assert_int_equal(raw_send(eager[i], ping, sizeof(ping) - 1), 0);
    }
    sleep_ms(100); /* every answer and close has arrived before the first read */
    for (int i = 0; i < 20; i++) {
        char *buf = NULL;
        size_t len = 0;
        int closed = raw_read(eager[i], NULL, 3000, &buf, &len);
        close(eager[i]);
        if (!closed || strncmp(buf, "HTTP/1.1 503 ", 13) != 0)
            fail_msg("client %d: expected a 503 and a close, got %zu bytes%s: '%.80s'", i, len,
                     closed ? "" : " and no close", buf);
        free(buf);
    }

    /* The five are unaffected. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(raw_ping(held[i]), 0);

    /* When one closes, a new connection is served again. */
    close(held[0]);
    int64_t deadline = now_ms() + 30000;
    int served = 0;
    while (!served && now_ms() < deadline) {
        static const char ping[] = "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        size_t len;
        char *buf = raw_exchange(s.port, ping, sizeof(ping) - 1, 3000, &len, NULL);
        served = strncmp(buf, "HTTP/1.1 200 ", 13) == 0;
        if (!served && strncmp(buf, "HTTP/1.1 503 ", 13) != 0)
            fail_msg("expected 200 or 503, got '%s'", buf);
        free(buf);
        if (!served)
            sleep_ms(10);
    }
    assert_true(served);
    for (int i = 1; i < 5; i++)
        close(held[i]);
    /* Counted: the 2 sixth connections, the 20 eager ones, and any 503 while waiting to be served again. */
    json_int_t refused = -1;
    for (int64_t until = now_ms() + 30000; refused < 0 && now_ms() < until; sleep_ms(10))
        refused = raw_stat(s.port, "connections_refused");
    if (refused < 22)
        fail_msg("connections_refused is %lld, expected at least 22", (long long)refused);
    expect_clean_exit(&s, STOP_TIMEOUT_MS);
}

/*
 * Each connection holds a descriptor. With an open-file limit (soft and hard)
 * far below --max-connections, the server lowers the limit to what fits and
 * says so; the connection past it gets the 503, not a hang from a listener
 * that accept() can no longer drain. With no room at all it does not start
 * (under valgrind, which keeps 12 descriptors of the limit for itself and
 * opens 7 more, "no room" is a higher limit).
 */
static void an_open_file_limit_lowers_max_connections(void **state)
{
    (void)state;
    struct server s;
    struct server_opts opts = {.max_open_files = 96};
    assert_int_equal(server_start(&s, &opts), 0);
    char *err = server_stderr(&s);
    const char *said = strstr(err, "--max-connections lowered from 10000 to ");
    if (said == NULL)
        fail_msg("no word of the lowered limit; stderr:\n%s", err);
    int fits = atoi(said + strlen("--max-connections lowered from 10000 to "));
    free(err);
    assert_true(fits > 0 && fits < 96);
    int valgrind = procfs_runs_under_valgrind(s.pid);

    int *held = calloc((size_t)fits, sizeof(*held));
    assert_non_null(held);
    for (int i = 0; i < fits; i++) {
        held[i] = raw_connect(s.port);
        assert_int_equal(raw_ping(held[i]), 0);
    }
    int extra = raw_connect(s.port);
    char *buf = NULL;
    size_t len = 0;
    assert_true(raw_read(extra, NULL, 3000, &buf, &len)); /* answered and closed */
    close(extra);
    assert_non_null(strstr(buf, "HTTP/1.1 503 "));
    free(buf);
    for (int i = 0; i < fits; i++)
        close(held[i]);
    free(held);
    expect_clean_exit(&s, STOP_TIMEOUT_MS);

    struct server_opts tiny = {.max_open_files = valgrind ? 40 : 20, .quiet = 1};
    assert_int_equal(server_start(&s, &tiny), -1);
    err = server_stderr(&s);
    int status = s.exit_status;
    server_cleanup(&s);
    assert_int_equal(status, 1);
    expect_contains(err, "leaves no descriptor for a connection", "stderr");
    free(err);
}

/* ---- the port ---------------------------------------------------------------------- */

static void a_second_server_on_a_taken_port_fails_to_start(void **state)
{
    (void)state;
    struct server second;
    char port[16];
    snprintf(port, sizeof(port), "%u", group_server.port);
    const char *args[] = {"--port", port, NULL};
    struct server_opts opts = {.args = args, .quiet = 1};

    if (server_start(&second, &opts) == 0) {
        /* It is listening on the same port as the first (and sharing its connections): stop it, then fail. */
        int status = server_stop(&second, STOP_TIMEOUT_MS);
        server_cleanup(&second);
        fail_msg("a second server started on port %s, which the group's server holds (it exited %d on SIGTERM)", port,
                 status);
    }
    char *err = server_stderr(&second);
    int status = second.exit_status;
    server_cleanup(&second);
    if (status == 0 || status == -1)
        fail_msg("the second server exited %d, expected a failure status; stderr:\n%s", status, err);
    expect_contains(err, port, "stderr");
    expect_contains(err, "in use", "stderr");
    free(err);

    /* The first is unharmed. */
    struct http_res res;
    http_call(group_server.port, "GET", "/health", NULL, &res);
    expect_json(&res, 200);
    http_res_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_flag_values_exit_2_with_a_message),
        cmocka_unit_test(bad_bind_address_exits_2),
        cmocka_unit_test(bad_environment_values_exit_2_naming_the_variable),
        cmocka_unit_test(help_and_version_exit_0),
        cmocka_unit_test(environment_variables_are_honoured_and_flags_win),
        cmocka_unit_test(sigterm_lets_an_in_flight_request_finish),
        cmocka_unit_test(responses_while_draining_close_the_connection),
        cmocka_unit_test(sigterm_with_stalled_clients_exits_0_at_the_drain_deadline),
        cmocka_unit_test(sigterm_closes_idle_keep_alive_connections_at_once),
        cmocka_unit_test(sigint_also_stops_cleanly),
        cmocka_unit_test(max_connections_refuses_the_sixth_with_503),
        cmocka_unit_test(an_open_file_limit_lowers_max_connections),
        cmocka_unit_test(a_second_server_on_a_taken_port_fails_to_start),
    };
    return support_exit_code(cmocka_run_group_tests(tests, group_server_setup, group_server_teardown));
}
