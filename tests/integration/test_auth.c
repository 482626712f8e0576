/*
 * Access control against the real binary: with --auth-token (or
 * --auth-token-file, or CACHETTE_AUTH_TOKEN) every request but /health needs
 * "Authorization: Bearer <token>"; anything else is 401 JSON with a
 * WWW-Authenticate challenge, and nothing is read or written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../support/http.h"
#include "../support/server.h"

#define TOKEN "s3cret-Token_42"
#define PORT (group_server.port)

static const char *const server_flags[] = {"--auth-token", TOKEN, NULL};

static void call_with(unsigned port, const char *method, const char *path, const char *authorization,
                      const char *body, struct http_res *res)
{
    char header[128];
    const char *headers[] = {header, "Content-Type: application/json", NULL};
    snprintf(header, sizeof(header), "Authorization: %s", authorization ? authorization : "");
    struct http_req req = {.method = method, .path = path, .headers = authorization ? headers : headers + 1,
                           .body = body};
    assert_int_equal(http_do(NULL, port, &req, res), 0);
}

static void expect_challenge(const struct http_res *res, const char *message, const char *challenge)
{
    char value[128];
    expect_error(res, 401, message);
    assert_non_null(http_header(res, "WWW-Authenticate", value, sizeof(value)));
    assert_string_equal(value, challenge);
}

static void requests_without_the_token_are_401(void **state)
{
    (void)state;
    static const char *const paths[] = {"/cache/k", "/cache", "/stats", "/metrics", "/nope"};
    struct http_res res;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        call_with(PORT, "GET", paths[i], NULL, NULL, &res);
        expect_challenge(&res, "missing bearer token: send Authorization: Bearer <token>", "Bearer realm=\"cachette\"");
        http_res_free(&res);
    }
}

static void wrong_tokens_are_401_and_change_nothing(void **state)
{
    (void)state;
    static const char *const wrong[] = {
        "Bearer nope", ("Bearer " TOKEN "x"), "Bearer s3cret-Token_4", ("Basic " TOKEN), TOKEN, "Bearer", "Bearer ",
    };
    struct http_res res;
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        call_with(PORT, "PUT", "/cache/guarded", wrong[i], "{\"value\":1}", &res);
        expect_challenge(&res, "invalid bearer token", "Bearer realm=\"cachette\", error=\"invalid_token\"");
        http_res_free(&res);
    }
    call_with(PORT, "GET", "/cache/guarded", "Bearer " TOKEN, NULL, &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
}

static void the_token_opens_every_endpoint(void **state)
{
    (void)state;
    struct http_res res;
    call_with(PORT, "PUT", "/cache/open", "Bearer " TOKEN, "{\"value\":\"yes\"}", &res);
    expect_message(&res, 201, "created");
    http_res_free(&res);
    /* The scheme is case-insensitive; spaces after it are allowed. */
    call_with(PORT, "GET", "/cache/open", "bearer   " TOKEN, NULL, &res);
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"key\":\"open\",\"value\":\"yes\"}");
    http_res_free(&res);
    call_with(PORT, "GET", "/stats", "Bearer " TOKEN, NULL, &res);
    expect_json(&res, 200);
    http_res_free(&res);
}

static void health_needs_no_token(void **state)
{
    (void)state;
    struct http_res res;
    call_with(PORT, "GET", "/health", NULL, NULL, &res);
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"status\":\"ok\"}");
    http_res_free(&res);
}

/* Starts a server with opts, checks the token gates it, stops it. */
static void check_gated(const struct server_opts *opts, const char *token)
{
    struct server s;
    struct http_res res;
    char auth[128];
    assert_int_equal(server_start(&s, opts), 0);
    call_with(s.port, "GET", "/cache/k", NULL, NULL, &res);
    assert_int_equal(res.status, 401);
    http_res_free(&res);
    snprintf(auth, sizeof(auth), "Bearer %s", token);
    call_with(s.port, "GET", "/cache/k", auth, NULL, &res);
    expect_error(&res, 404, "key not found");
    http_res_free(&res);
    assert_int_equal(server_stop(&s, 10000), 0);
    server_cleanup(&s);
}

static void token_from_a_file_or_the_environment(void **state)
{
    (void)state;
    char path[] = "/tmp/cachette-token-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "from-file-token\n", 16), 16);
    close(fd);
    const char *const file_args[] = {"--auth-token-file", path, NULL};
    struct server_opts file_opts = {.args = file_args};
    check_gated(&file_opts, "from-file-token");
    unlink(path);

    const char *const env[] = {"CACHETTE_AUTH_TOKEN=from-env-token", NULL};
    struct server_opts env_opts = {.env = env};
    check_gated(&env_opts, "from-env-token");
}

static void bad_token_settings_exit_2_without_echoing_the_token(void **state)
{
    (void)state;
    static const char *const cases[][4] = {
        {"--auth-token", "has space", NULL},
        {"--auth-token", "", NULL},
        {"--auth-token", "tok", "--auth-token-file", "/dev/null"},
        {"--auth-token-file", "/nonexistent/cachette-token", NULL},
        {"--auth-token-file", "/dev/null", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL, *err = NULL;
        const char *argv[5] = {cases[i][0], cases[i][1], cases[i][2], cases[i][3], NULL};
        assert_int_equal(run_binary(argv, NULL, 10000, &out, &err), 2);
        assert_true(strlen(err) > 0);
        assert_null(strstr(err, "has space"));
        free(out);
        free(err);
    }
    /* A setting from the environment is named as such. */
    static const char *const no_args[] = {NULL};
    static const char *const env[] = {"CACHETTE_AUTH_TOKEN_FILE=/nonexistent/cachette-token", NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(run_binary(no_args, env, 10000, &out, &err), 2);
    assert_non_null(strstr(err, "cannot read CACHETTE_AUTH_TOKEN_FILE /nonexistent/cachette-token"));
    free(out);
    free(err);
}

/* Starts a server with the flags, stops it, and returns whether its stderr warned that anyone can reach it. */
static int warns_of_open_access(const char *const *args)
{
    struct server s;
    struct server_opts opts = {.args = args};
    assert_int_equal(server_start(&s, &opts), 0);
    char *err = server_stderr(&s);
    int warned = strstr(err, "ANYONE who can reach this port") != NULL;
    free(err);
    expect_clean_exit(&s, 15000);
    return warned;
}

static void a_non_loopback_bind_without_a_token_warns_loudly(void **state)
{
    (void)state;
    static const char *const open_bind[] = {"--bind", "0.0.0.0", NULL};
    static const char *const tokened_bind[] = {"--bind", "0.0.0.0", "--auth-token", TOKEN, NULL};
    static const char *const loopback[] = {"--bind", "127.0.0.1", NULL};
    assert_true(warns_of_open_access(open_bind));
    assert_false(warns_of_open_access(tokened_bind));
    assert_false(warns_of_open_access(loopback));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(requests_without_the_token_are_401),
        cmocka_unit_test(wrong_tokens_are_401_and_change_nothing),
        cmocka_unit_test(the_token_opens_every_endpoint),
        cmocka_unit_test(health_needs_no_token),
        cmocka_unit_test(token_from_a_file_or_the_environment),
        cmocka_unit_test(bad_token_settings_exit_2_without_echoing_the_token),
        cmocka_unit_test(a_non_loopback_bind_without_a_token_warns_loudly),
    };
    group_server_args = server_flags;
    return support_exit_code(cmocka_run_group_tests(tests, group_server_setup, group_server_teardown));
}
