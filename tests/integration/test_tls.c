/*
 * HTTPS (issue 6, "Access control"): --tls-cert and --tls-key serve the API
 * over TLS with HTTP/2 negotiated through ALPN; with --tls-port as well,
 * plain HTTP keeps its own port and both reach the same store. Bad
 * certificate settings stop start-up with a message, and clients that
 * abandon or garble the handshake leave the server serving.
 *
 * The certificates are made for each run with the openssl command line: a
 * self-signed P-256 certificate for 127.0.0.1 that the clients trust
 * explicitly (libcurl's CAINFO), a second key that does not match it with
 * its own certificate for the same name, and a file that is not PEM at all. The group's server serves HTTPS only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/http.h"
#include "../support/raw.h"
#include "../support/server.h"
#include "../support/shell.h"

#define TLS_PORT (group_server.tls_port)

static char dir[] = "/tmp/cachette-tls-XXXXXX";
static char cert_path[64], key_path[64], other_key_path[64], other_cert_path[64], garbage_path[64];

/* Makes the certificate, its key, an unrelated key and a non-PEM file in dir. Returns 0 or -1. */
static int make_certificates(void)
{
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir);
    snprintf(key_path, sizeof(key_path), "%s/key.pem", dir);
    snprintf(other_key_path, sizeof(other_key_path), "%s/other-key.pem", dir);
    snprintf(other_cert_path, sizeof(other_cert_path), "%s/other-cert.pem", dir);
    snprintf(garbage_path, sizeof(garbage_path), "%s/garbage.pem", dir);
    char cmd[1024], *out;
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s 2>&1 && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out %s 2>&1 && "
             "openssl req -x509 -new -key %s -nodes -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 -out %s 2>&1 && "
             "echo 'not a certificate' > %s",
             key_path, cert_path, other_key_path, other_key_path, other_cert_path, garbage_path);
    int status = run_shell(cmd, &out);
    if (status != 0)
        fprintf(stderr, "test_tls: openssl failed (exit %d):\n%s\n", status, out);
    free(out);
    return status == 0 ? 0 : -1;
}

static void remove_certificates(void)
{
    unlink(cert_path);
    unlink(key_path);
    unlink(other_key_path);
    unlink(other_cert_path);
    unlink(garbage_path);
    rmdir(dir);
}

/* One request over HTTPS (HTTP/2 by ALPN unless http_version says otherwise); the response must arrive. */
static void https_call(unsigned port, const char *method, const char *path, const char *body, long http_version,
                       struct http_res *res)
{
    const char *json[] = {"Content-Type: application/json", NULL};
    struct http_req req = {.method = method,
                           .path = path,
                           .body = body,
                           .headers = body ? json : NULL,
                           .http_version = http_version ? http_version : (long)CURL_HTTP_VERSION_2TLS,
                           .tls_ca = cert_path};
    if (http_do(NULL, port, &req, res) != 0)
        fail_msg("%s https://127.0.0.1:%u%s: %s", method, port, path, curl_easy_strerror(res->curl_code));
}

static json_int_t https_stat(unsigned port, const char *name)
{
    struct http_res res;
    https_call(port, "GET", "/stats", NULL, 0, &res);
    json_int_t v = json_int_member(expect_json(&res, 200), name);
    http_res_free(&res);
    return v;
}

static void https_serves_the_api_over_http2_and_http1(void **state)
{
    (void)state;
    assert_int_equal(group_server.port, 0); /* no --tls-port: HTTPS only */
    struct http_res res;
    https_call(TLS_PORT, "PUT", "/cache/tls-key", "{\"value\":\"over h2\"}", 0, &res);
    assert_int_equal(res.http_version, CURL_HTTP_VERSION_2_0);
    expect_message(&res, 201, "created");
    http_res_free(&res);

    https_call(TLS_PORT, "GET", "/cache/tls-key", NULL, CURL_HTTP_VERSION_1_1, &res);
    assert_int_equal(res.http_version, CURL_HTTP_VERSION_1_1);
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"key\":\"tls-key\",\"value\":\"over h2\"}");
    http_res_free(&res);
}

static void the_certificate_must_be_trusted(void **state)
{
    (void)state;
    /*
     * Trusting another certificate for the same name, libcurl must refuse the
     * server's in the handshake: the connection is real TLS, verified.
     */
    struct http_res res;
    struct http_req req = {.path = "/health", .tls_ca = other_cert_path};
    assert_int_equal(http_do(NULL, TLS_PORT, &req, &res), -1);
    assert_int_equal(res.curl_code, CURLE_PEER_FAILED_VERIFICATION);
    http_res_free(&res);
}

static void plain_http_on_the_https_port_gets_no_response(void **state)
{
    (void)state;
    static const char get[] = "GET /cache/tls-key HTTP/1.1\r\nHost: t\r\n\r\n";
    size_t len;
    int closed;
    char *buf = raw_exchange(TLS_PORT, get, sizeof(get) - 1, 3000, &len, &closed);
    assert_true(closed);
    assert_null(strstr(buf, "tls-key")); /* nothing of the cache leaks over plain text */
    free(buf);

    struct http_res res;
    https_call(TLS_PORT, "GET", "/health", NULL, 0, &res);
    expect_json(&res, 200);
    http_res_free(&res);
}

static void h2load_over_tls_negotiates_h2_and_every_request_succeeds(void **state)
{
    (void)state;
    if (!have_program("h2load")) {
        print_message("  h2load (Debian nghttp2-client) is not installed: skipped\n");
        skip();
    }
    char cmd[512], *out;
    snprintf(
        cmd, sizeof(cmd),
        "timeout 120 h2load -n 2000 -c 4 -m 10 https://127.0.0.1:%u/cache/tls-key https://127.0.0.1:%u/health 2>&1",
        TLS_PORT, TLS_PORT);
    int status = run_shell(cmd, &out);
    if (status != 0 || strstr(out, "Application protocol: h2") == NULL ||
        strstr(out, "requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed") == NULL ||
        strstr(out, "status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx") == NULL)
        fail_msg("h2load over TLS (exit %d):\n%s", status, out);
    free(out);
}

static void clients_abandoning_the_handshake_leave_the_server_serving(void **state)
{
    (void)state;
    json_int_t baseline = https_stat(TLS_PORT, "connections") - 1; /* less the /stats request's own */
    /* The first bytes of a TLS 1.2 ClientHello record, then nothing: the handshake is cut off. */
    static const unsigned char hello_start[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03};
    static const unsigned char garbage[] = {0x16, 0x03, 0x03, 0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00};
    for (int i = 0; i < 30; i++) {
        int fd = raw_connect(TLS_PORT);
        if (i % 3 == 0)
            assert_int_equal(raw_send(fd, hello_start, sizeof(hello_start)), 0);
        else if (i % 3 == 1)
            assert_int_equal(raw_send(fd, garbage, sizeof(garbage)), 0);
        if (i % 2 == 0)
            raw_close_with_reset(fd);
        else
            close(fd);
    }
    int64_t deadline = now_ms() + 30000;
    json_int_t open;
    while ((open = https_stat(TLS_PORT, "connections") - 1) > baseline && now_ms() < deadline)
        sleep_ms(20);
    assert_int_equal(open, baseline);
    struct http_res res;
    https_call(TLS_PORT, "GET", "/cache/tls-key", NULL, 0, &res);
    expect_json(&res, 200);
    http_res_free(&res);
}

static void with_tls_port_plain_http_and_https_share_one_store(void **state)
{
    (void)state;
    struct server s;
    assert_int_equal(server_start_args(&s, "--tls-cert", cert_path, "--tls-key", key_path, "--tls-port", "0", NULL), 0);
    assert_true(s.port != 0 && s.tls_port != 0 && s.port != s.tls_port);

    struct http_res res;
    http_call(s.port, "PUT", "/cache/both", "{\"value\":\"plain\"}", &res);
    expect_message(&res, 201, "created");
    http_res_free(&res);
    https_call(s.tls_port, "GET", "/cache/both", NULL, 0, &res);
    assert_int_equal(res.http_version, CURL_HTTP_VERSION_2_0);
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"key\":\"both\",\"value\":\"plain\"}");
    http_res_free(&res);
    expect_clean_exit(&s, 15000);
}

/* --http2 off: ALPN offers http/1.1 alone, and neither way to h2c (Upgrade, prior knowledge) is taken. */
static void with_http2_off_every_connection_speaks_http1(void **state)
{
    (void)state;
    struct server s;
    assert_int_equal(server_start_args(&s, "--tls-cert", cert_path, "--tls-key", key_path, "--tls-port", "0", "--http2",
                                       "off", NULL),
                     0);
    struct http_res res;
    https_call(s.tls_port, "PUT", "/cache/h1", "{\"value\":\"only\"}", 0, &res);
    assert_int_equal(res.http_version, CURL_HTTP_VERSION_1_1);
    expect_message(&res, 201, "created");
    http_res_free(&res);

    struct http_req req = {.path = "/cache/h1", .http_version = CURL_HTTP_VERSION_2}; /* asks for Upgrade: h2c */
    assert_int_equal(http_do(NULL, s.port, &req, &res), 0);
    assert_int_equal(res.http_version, CURL_HTTP_VERSION_1_1);
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"key\":\"h1\",\"value\":\"only\"}");
    http_res_free(&res);

    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    size_t len;
    int closed;
    char *buf = raw_exchange(s.port, preface, sizeof(preface) - 1, 3000, &len, &closed);
    if (len < 13 || strncmp(buf, "HTTP/1.1 400 ", 13) != 0)
        fail_msg("expected an HTTP/1.1 400 to the HTTP/2 preface, got '%.*s'", (int)len, buf);
    free(buf);
    expect_clean_exit(&s, 15000);
}

static void bad_tls_settings_stop_start_up_with_a_message(void **state)
{
    (void)state;
    const struct {
        const char *argv[9];
        int status;
        const char *message;
    } cases[] = {
        {{"--port", "0", "--tls-cert", cert_path}, 2, "--tls-cert and --tls-key go together"},
        {{"--port", "0", "--tls-key", key_path}, 2, "--tls-cert and --tls-key go together"},
        {{"--port", "0", "--tls-port", "0"}, 2, "--tls-port needs --tls-cert and --tls-key"},
        {{"--port", "9443", "--tls-port", "9443", "--tls-cert", cert_path, "--tls-key", key_path},
         2,
         "--tls-port and --port must differ"},
        {{"--port", "0", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", key_path},
         2,
         "cannot read --tls-cert /nonexistent/cert.pem"},
        {{"--port", "0", "--tls-cert", cert_path, "--tls-key", other_key_path}, 1, "key values mismatch"},
        {{"--port", "0", "--tls-cert", garbage_path, "--tls-key", key_path}, 1, "cannot load the --tls-cert chain"},
        {{"--port", "0", "--tls-cert", cert_path, "--tls-key", garbage_path}, 1, "cannot load the --tls-key"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out, *err;
        int status = run_binary(cases[i].argv, NULL, 5000, &out, &err);
        if (status != cases[i].status || strstr(err, cases[i].message) == NULL || strstr(out, "listening") != NULL)
            fail_msg("case %zu: exit %d (expected %d), stderr:\n%s\nexpected it to say '%s'", i, status,
                     cases[i].status, err, cases[i].message);
        free(out);
        free(err);
    }
}

/* With --tls-cert, the Redis-protocol port speaks TLS only, as redis-cli --tls does. */
static void the_resp_port_speaks_tls(void **state)
{
    (void)state;
    struct server s = {0};
    assert_int_equal(server_start_args(&s, "--tls-cert", cert_path, "--tls-key", key_path, "--resp-port", "0", NULL),
                     0);
    assert_true(s.resp_port != 0);
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof(cmd),
             "redis-cli --tls --cacert %s -p %u SET over-tls yes && redis-cli --tls --cacert %s -p %u GET over-tls",
             cert_path, s.resp_port, cert_path, s.resp_port);
    int rc = run_shell(cmd, &out);
    if (rc != 0)
        fprintf(stderr, "%s\n%s\n", cmd, out);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "OK\nyes\n");
    free(out);
    /* Plain text on the TLS port: no reply, whatever is sent. */
    size_t len = 0;
    int closed = 0;
    char *reply = raw_exchange(s.resp_port, "PING\r\n", 6, 2000, &len, &closed);
    assert_null(strstr(reply, "PONG"));
    free(reply);
    expect_clean_exit(&s, 10000);
    server_cleanup(&s);
}

int main(void)
{
    if (!have_program("openssl")) {
        fprintf(stderr, "test_tls: the openssl command (Debian openssl) is needed to make test certificates\n");
        return 1;
    }
    if (make_certificates() != 0)
        return 1;
    const char *const args[] = {"--tls-cert", cert_path, "--tls-key", key_path, NULL};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(https_serves_the_api_over_http2_and_http1),
        cmocka_unit_test(the_certificate_must_be_trusted),
        cmocka_unit_test(plain_http_on_the_https_port_gets_no_response),
        cmocka_unit_test(h2load_over_tls_negotiates_h2_and_every_request_succeeds),
        cmocka_unit_test(clients_abandoning_the_handshake_leave_the_server_serving),
        cmocka_unit_test(with_tls_port_plain_http_and_https_share_one_store),
        cmocka_unit_test(with_http2_off_every_connection_speaks_http1),
        cmocka_unit_test(bad_tls_settings_stop_start_up_with_a_message),
        cmocka_unit_test(the_resp_port_speaks_tls),
    };
    group_server_args = args;
    int result = support_exit_code(cmocka_run_group_tests(tests, group_server_setup, group_server_teardown));
    remove_certificates();
    return result;
}
