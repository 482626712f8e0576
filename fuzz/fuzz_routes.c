/*
 * Fuzz target: whole requests through routing and every handler, without
 * sockets (src/http/routes.c and everything it calls, down to the store).
 *
 * The server's own h2o configuration is built once (http_server_configure:
 * the same handler, error filter and logger as a running server, with small
 * limits) beside one worker's context, exactly as server.c's attach lays them out.
 * An input is one or more requests separated by "\n##\n", run in order on
 * the same store (so a PUT can meet the GET or If-Match after it). Each one
 * goes on an in-memory connection whose final output stream captures the
 * response, and is split at '\n' into a method line, a request-target line,
 * header lines ("name: value") up to an empty line, and the body after it
 * (no empty line: no body). The store is flushed before each input, so an
 * input means the same thing every time.
 *
 * Invariants: every request is answered before h2o_process_request returns
 * (nothing in cachette is asynchronous); never 500; every response says its
 * Content-Length (h2o would otherwise end keep-alive, see
 * shared/notes/H2O.md pitfall 4) and its body has that length; every error
 * body is a JSON object {"error": "<UTF-8 text>"}; every JSON body parses.
 *
 * Links: src/http/ src/cmd/ src/net/ src/persist/ src/store/ src/log.c src/stats.c
 * Links: -lh2o-evloop -lssl -lcrypto -lz -ljansson
 */
#define _GNU_SOURCE /* memmem */
#include <jansson.h>

#include "fuzz_check.h"
#include "http/internal.h"
#include "log.h"

#define MAX_RESPONSE (1u << 20)

/* A connection with no socket: the request it carries and what came out of it. */
struct memory_conn {
    h2o_conn_t super;
    h2o_req_t req;
    h2o_ostream_t final;
    char *out;
    size_t out_len;
    int complete;
};

static struct store *store;
static struct cmd_ctx cmd;
static struct stats_sources stats;
static struct http_server server;
static struct http_worker worker;

static void capture(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
    struct memory_conn *conn = H2O_STRUCT_FROM_MEMBER(struct memory_conn, final, self);
    for (size_t i = 0; i < bufcnt; i++) {
        CHECK(conn->out_len + bufs[i].len <= MAX_RESPONSE);
        memcpy(conn->out + conn->out_len, bufs[i].base, bufs[i].len);
        conn->out_len += bufs[i].len;
    }
    if (h2o_send_state_is_in_progress(state))
        h2o_proceed_response(req);
    else
        conn->complete = 1;
}

static socklen_t loopback_address(h2o_conn_t *conn, struct sockaddr *sa)
{
    (void)conn;
    struct sockaddr_in *sin = (struct sockaddr_in *)sa;
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sizeof(*sin);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_LEVEL_ERROR);
    store = store_create(&(struct store_config){.max_memory = 1 << 20, .eviction = STORE_EVICT_S3FIFO});
    CHECK(store != NULL);
    cmd = (struct cmd_ctx){.store = store, .limits = {.max_key_bytes = 64, .max_value_bytes = 4096, .max_batch = 8}};
    /* A core that never starts: it gives /stats its counters, and runs no thread. */
    struct net *net = net_create(&(struct net_settings){.bind = "127.0.0.1", .threads = 1, .max_connections = 16});
    CHECK(net != NULL);
    stats = (struct stats_sources){.store = store, .net = net, .version = "fuzz"};
    server.settings = (struct http_settings){
        .max_body_bytes = 8192,
        .max_header_bytes = 2048,
        .request_timeout_ms = 1000,
        .idle_timeout_ms = 1000,
        .auth_token = "",
    };
    server.cmd = &cmd;
    server.stats = &stats;
    server.net = net;
    server.worker_count = 1;
    static struct http_worker *workers[1] = {&worker};
    server.workers = workers;
    http_server_configure(&server);
    worker.server = &server;
    h2o_context_init(&worker.ctx, h2o_evloop_create(), &server.config);
    return 0;
}

/* The next '\n'-terminated line of [*p, end) (the rest when there is no '\n'); advances *p past it. */
static h2o_iovec_t next_line(const char **p, const char *end)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    h2o_iovec_t line = h2o_iovec_init(*p, (size_t)((nl ? nl : end) - *p));
    *p = nl ? nl + 1 : end;
    return line;
}

/* Fills the request from the input; returns 0, or -1 for an input h2o's parsers would never produce. */
static int build_request(h2o_req_t *req, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    h2o_iovec_t method = next_line(&p, end), target = next_line(&p, end);
    if (method.len == 0 || method.len > 16 || target.len == 0 || target.base[0] != '/')
        return -1;
    req->input.method = h2o_strdup(&req->pool, method.base, method.len);
    req->input.path = h2o_strdup(&req->pool, target.base, target.len);
    req->input.scheme = &H2O_URL_SCHEME_HTTP;
    req->input.authority = h2o_iovec_init(H2O_STRLIT("fuzz"));
    req->version = 0x101;
    while (p < end) {
        h2o_iovec_t line = next_line(&p, end);
        if (line.len == 0) {
            req->entity = h2o_strdup(&req->pool, p, (size_t)(end - p));
            break;
        }
        const char *colon = memchr(line.base, ':', line.len);
        if (colon == NULL || colon == line.base)
            return -1;
        /* HTTP/1 delivers names lower-cased and values without surrounding blanks. */
        size_t name_len = (size_t)(colon - line.base);
        char *name = h2o_mem_alloc_pool(&req->pool, name_len);
        for (size_t i = 0; i < name_len; i++)
            name[i] = (char)h2o_tolower(line.base[i]);
        const char *value = colon + 1, *value_end = line.base + line.len;
        while (value < value_end && (*value == ' ' || *value == '\t'))
            value++;
        h2o_add_header_by_str(&req->pool, &req->headers, name, name_len, 1, NULL, value, (size_t)(value_end - value));
    }
    return 0;
}

static void check_response(const struct memory_conn *conn)
{
    const h2o_req_t *req = &conn->req;
    int status = req->res.status;
    CHECK(conn->complete);
    CHECK(status >= 200 && status <= 599 && status != 500);
    CHECK(req->res.content_length != SIZE_MAX);
    int bodiless = status == 304 || h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
    CHECK(conn->out_len == (bodiless ? 0 : req->res.content_length));
    if (bodiless)
        return;
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    int is_json = ct != -1 && h2o_memis(req->res.headers.entries[ct].value.base, req->res.headers.entries[ct].value.len,
                                        H2O_STRLIT("application/json"));
    CHECK(status < 400 || is_json);
    if (!is_json)
        return; /* a raw value, as stored */
    json_error_t err;
    json_t *body = json_loadb(conn->out, conn->out_len, JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
    CHECK(body != NULL);
    if (status >= 400) {
        CHECK(json_is_object(body) && json_is_string(json_object_get(body, "error")));
        CHECK(json_string_length(json_object_get(body, "error")) > 0);
    }
    json_decref(body);
}

/* Runs one request through the server's configuration and checks its response. */
static void run_request(const char *text, size_t len)
{
    static const h2o_conn_callbacks_t callbacks = {.get_sockname = loopback_address,
                                                   .get_peername = loopback_address};
    static char out[MAX_RESPONSE];
    struct memory_conn *conn = (struct memory_conn *)h2o_create_connection(
        sizeof(*conn), &worker.ctx, server.config.hosts, (struct timeval){0}, &callbacks);
    memset((char *)conn + sizeof(conn->super), 0, sizeof(*conn) - sizeof(conn->super));
    h2o_init_request(&conn->req, &conn->super, NULL);
    conn->final.do_send = capture;
    conn->req._ostr_top = &conn->final;
    conn->out = out;
    if (build_request(&conn->req, text, len) == 0) {
        h2o_process_request(&conn->req);
        check_response(conn);
    }
    h2o_dispose_request(&conn->req);
    free(conn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char separator[] = "\n##\n";
    const char *p = (const char *)data, *end = p + size;
    cmd_flush(&cmd);
    while (p < end) {
        const char *next = memmem(p, (size_t)(end - p), separator, sizeof(separator) - 1);
        run_request(p, (size_t)((next ? next : end) - p));
        p = next ? next + sizeof(separator) - 1 : end;
    }
    return 0;
}
