/*
 * Fuzz target: the request helpers that parse header and target text
 * (src/http/request.c): Content-Type (request_body_is_json) and query
 * parameters through the request (request_query, request_query_param).
 *
 * An h2o_req_t is built by hand, with no connection or event loop: its
 * memory pool, one Content-Type header and a path. The input's first byte
 * picks the query parameter; the rest, split at the first '\n', is the
 * Content-Type value and the path (a '?' in the path starts the query, as
 * h2o's query_at says). request_body_is_json is compared with a strict
 * RFC 9110 §8.3 reading: type "/" subtype, OWS before each ';', and JSON
 * when it is application/json or any "+json" subtype, case-insensitive.
 *
 * A whole-request target (routes.c and the handlers without sockets) is not
 * here: it needs a loopback h2o_conn_t (h2o keeps one in its unit tests,
 * not in libh2o), a context and an event loop, and struct http_server
 * (src/http/internal.h). The black-box network fuzzer covers that path.
 *
 * Links: src/http/request.c src/http/reply.c src/http/body.c src/http/keypath.c src/http/jsonw.c src/http/negotiate.c
 * Links: src/cmd/batch.c src/cmd/cmd.c src/cmd/cond.c src/cmd/ttl.c src/cmd/utf8.c src/store/ -lh2o-evloop -lssl -lcrypto -lz -ljansson
 */
#include <ctype.h>
#include <h2o.h>

#include "fuzz_check.h"
#include "http/request.h"

static int is_tchar(uint8_t c)
{
    return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int ci_equal(const uint8_t *a, size_t n, const char *b)
{
    if (strlen(b) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (tolower(a[i]) != b[i])
            return 0;
    return 1;
}

/* -1 when the field is not a strict media-type (parameters are not checked), else whether it names JSON. */
static int ref_is_json(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len && is_tchar(p[i]))
        i++;
    if (i == 0 || i == len || p[i] != '/')
        return -1;
    size_t slash = i++;
    while (i < len && is_tchar(p[i]))
        i++;
    if (i == slash + 1)
        return -1;
    size_t end = i;
    while (i < len && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (i != len && p[i] != ';')
        return -1;
    return ci_equal(p, end, "application/json") || (end - slash - 1 >= 5 && ci_equal(p + end - 5, 5, "+json"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"ttl", "prefix", "limit", "cursor"};
    if (size == 0)
        return 0;
    const char *name = names[data[0] % 4];
    const uint8_t *rest = data + 1, *nl = memchr(rest, '\n', size - 1);
    size_t ct_len = nl ? (size_t)(nl - rest) : size - 1;
    const uint8_t *path = nl ? nl + 1 : rest + size - 1;
    size_t path_len = (size_t)(data + size - path);

    h2o_req_t req;
    memset(&req, 0, sizeof(req));
    h2o_mem_init_pool(&req.pool);
    /* Copies of exactly their size: ASan sees any read past them. */
    char *ct = malloc(ct_len ? ct_len : 1);
    char *target = malloc(path_len ? path_len : 1);
    CHECK(ct != NULL && target != NULL);
    memcpy(ct, rest, ct_len);
    memcpy(target, path, path_len);
    req.path = h2o_iovec_init(target, path_len);
    const char *q = memchr(target, '?', path_len);
    req.query_at = q ? (size_t)(q - target) : SIZE_MAX;

    CHECK(request_body_is_json(&req) == 1); /* no Content-Type: JSON */
    h2o_add_header(&req.pool, &req.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct, ct_len);
    int got = request_body_is_json(&req);
    CHECK(got == 0 || got == 1);
    int want = ref_is_json((const uint8_t *)ct, ct_len);
    if (want >= 0 && got != want)
        fprintf(stderr, "Content-Type '%.*s': request_body_is_json says %d, RFC 9110 says %d\n", (int)ct_len, ct, got,
                want);
    CHECK(want < 0 || got == want);

    h2o_iovec_t query = request_query(&req);
    if (q == NULL) {
        CHECK(query.len == 0);
    } else {
        CHECK(query.base == q + 1 && query.len == path_len - (size_t)(q - target) - 1);
    }
    h2o_iovec_t value = {NULL, 0};
    if (request_query_param(&req, name, &value))
        CHECK(value.base >= query.base && value.base + value.len <= query.base + query.len);

    h2o_mem_clear_pool(&req.pool);
    free(ct);
    free(target);
    return 0;
}
