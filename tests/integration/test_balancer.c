/*
 * The node's side of running behind HAProxy (docs/SCALING.md): with
 * --flush-when-down on, a GET /health whose X-Haproxy-Server-State (sent by
 * "http-check send-state") says the balancer has taken this node out (DOWN
 * or NOLB, in any phase) empties the cache before answering; any other
 * state, or no such header, changes nothing; with --auth-token only a check
 * that carries the token counts; without the flag nothing flushes.
 * tests/cluster/ shows the same with a real HAProxy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../support/http.h"
#include "../support/server.h"

#define PORT (group_server.port)

static const char *const server_flags[] = {"--flush-when-down", "on", NULL};

static void put_entries(unsigned port, int n)
{
    for (int i = 0; i < n; i++) {
        char path[32];
        struct http_res res;
        snprintf(path, sizeof(path), "/cache/e%d", i);
        http_call(port, "PUT", path, "{\"value\":\"x\"}", &res);
        assert_in_range(res.status, 200, 201);
        http_res_free(&res);
    }
}

static json_int_t entries(unsigned port)
{
    json_t *stats = get_stats(port);
    json_int_t n = json_int_member(stats, "entries");
    json_decref(stats);
    return n;
}

/* A health check as HAProxy sends it, with state (NULL: without the header); asserts 200 {"status":"ok"}. */
static void check(unsigned port, const char *state)
{
    char header[256];
    const char *headers[] = {header, NULL};
    snprintf(header, sizeof(header), "X-Haproxy-Server-State: %s", state ? state : "");
    struct http_req req = {.path = "/health", .headers = state ? headers : NULL};
    struct http_res res;
    assert_int_equal(http_do(NULL, port, &req, &res), 0);
    json_t *body = expect_json(&res, 200);
    assert_string_equal(json_string_value(json_object_get(body, "status")), "ok");
    http_res_free(&res);
}

static void other_states_keep_the_cache(void **state)
{
    (void)state;
    put_entries(PORT, 5);
    const char *keep[] = {
        NULL,
        "UP",
        "UP; address=127.0.0.1; port=8081; name=cachette_nodes/node1; node=lb1; weight=100/300; scur=0/0; qcur=0",
        "UP 1/2; address=127.0.0.1; port=8081; name=cachette_nodes/node1; node=lb1; weight=100/300; scur=0/0; qcur=0",
        "MAINT", /* HAProxy sends no check in maintenance: a made-up word, like the next ones */
        "",
        "down",
        "DOWNTIME",
        "x",
    };
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        check(PORT, keep[i]);
        assert_int_equal(entries(PORT), 5);
    }
}

static void out_states_flush(void **state)
{
    (void)state;
    const char *out[] = {
        "DOWN",
        "DOWN; address=127.0.0.1; port=8081; name=cachette_nodes/node1; node=lb1; weight=100/200; scur=0/0; qcur=0",
        "DOWN 1/3; address=127.0.0.1; port=8081; name=cachette_nodes/node1; node=lb1",
        "NOLB; name=cachette_nodes/node1",
    };
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
        put_entries(PORT, 5);
        assert_int_equal(entries(PORT), 5);
        check(PORT, out[i]);
        assert_int_equal(entries(PORT), 0);
        char *err = server_stderr(&group_server);
        assert_non_null(strstr(err, "flushed 5 entries: the balancer's health check says"));
        free(err);
    }
    /* A check that finds the cache empty already flushes nothing and writes no log line. */
    check(PORT, "DOWN 2/3");
    assert_int_equal(entries(PORT), 0);
}

/* With --auth-token, /health needs none, but only a check that carries it may flush. */
static void with_a_token_only_an_authorized_check_flushes(void **state)
{
    (void)state;
    struct server guarded = {0};
    assert_int_equal(
        server_start_args(&guarded, "--flush-when-down", "on", "--auth-token", "balancer-token", (const char *)NULL),
        0);
    static const char *const token[] = {"Authorization: Bearer balancer-token", "Content-Type: application/json", NULL};
    static const char *const down_without[] = {"X-Haproxy-Server-State: DOWN", NULL};
    static const char *const down_wrong[] = {"X-Haproxy-Server-State: DOWN", "Authorization: Bearer nope", NULL};
    static const char *const down_with[] = {"X-Haproxy-Server-State: DOWN", "Authorization: Bearer balancer-token",
                                            NULL};
    struct http_req put = {.method = "PUT", .path = "/cache/kept", .body = "{\"value\":1}", .headers = token};
    struct http_req stats = {.path = "/stats", .headers = token};
    struct http_res res;
    assert_int_equal(http_do(NULL, guarded.port, &put, &res), 0);
    assert_int_equal(res.status, 201);
    http_res_free(&res);

    const char *const *checks[] = {down_without, down_wrong, down_with};
    json_int_t expected_entries[] = {1, 1, 0};
    for (size_t i = 0; i < 3; i++) {
        struct http_req check = {.path = "/health", .headers = checks[i]};
        assert_int_equal(http_do(NULL, guarded.port, &check, &res), 0);
        assert_int_equal(res.status, 200);
        http_res_free(&res);
        assert_int_equal(http_do(NULL, guarded.port, &stats, &res), 0);
        assert_int_equal(json_int_member(expect_json(&res, 200), "entries"), expected_entries[i]);
        http_res_free(&res);
    }
    char *err = server_stderr(&guarded);
    assert_non_null(strstr(err, "ignored X-Haproxy-Server-State: DOWN on a health check without the bearer token"));
    assert_non_null(strstr(err, "flushed 1 entries"));
    free(err);
    expect_clean_exit(&guarded, 10000);
    server_cleanup(&guarded);
}

static void without_the_flag_nothing_flushes(void **state)
{
    (void)state;
    struct server plain = {0};
    assert_int_equal(server_start_args(&plain, (const char *)NULL), 0);
    put_entries(plain.port, 4);
    check(plain.port, "DOWN");
    check(plain.port, "MAINT");
    assert_int_equal(entries(plain.port), 4);
    expect_clean_exit(&plain, 10000);
    server_cleanup(&plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(other_states_keep_the_cache),
        cmocka_unit_test(out_states_flush),
        cmocka_unit_test(with_a_token_only_an_authorized_check_flushes),
        cmocka_unit_test(without_the_flag_nothing_flushes),
    };
    group_server_args = server_flags;
    return support_exit_code(cmocka_run_group_tests(tests, group_server_setup, group_server_teardown));
}
