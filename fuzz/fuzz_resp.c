/*
 * Fuzz target: the RESP request parser (src/resp/parse.c).
 *
 * Input: a limits byte (bits 0-1: max_args 1, 3, 10 or Redis's; bits 2-3:
 * max_bulk_bytes 0, 4, 64 or Redis's; bits 4-5: max_line_bytes 0, 8, 64 or
 * Redis's 64 KiB; bit 6: before_auth; bit 7: feed one byte at a time), a
 * byte whose low four bits name the allocation of argv to fail (0: none) and
 * whose high four seed the cutting of the stream (bit 4 also lets bulks of
 * up to 256 bytes over max_bulk_bytes be skipped, but before_auth), then the
 * stream of requests a client sends.
 *
 * The stream is parsed as a connection would: once given whole, once in
 * pieces of random sizes (empty ones among them) appended to a buffer that
 * moves at every append, each time dropping a request's bytes once it is
 * DONE. The two must see the same requests, the same arguments and the same
 * end (MORE, or the same error). A third parse, in the same pieces, gives
 * each call the limits or Redis's at random, as a front relaxes and tightens
 * them around AUTH: it must agree with the first up to the first request
 * the limits refuse or skip, and a request DONE under the limits must fit them
 * whatever held while it arrived. Every DONE request is checked
 * against the bytes it came from: a multibulk request is exactly the
 * canonical encoding of its arguments (numbers have one spelling), an
 * inline one is its line split by a reference splitter written here. Also:
 * progress on every DONE, argc and argv's room within max_args, errors with
 * Redis's "ERR " prefix, a failed allocation only ever as "ERR out of
 * memory", and work linear in the stream. resp_peek_keys, the prefetch
 * hint, must stay inside the stream and, request by request, name the
 * second argument the parser finds, as far as both read the stream.
 *
 * Links: src/resp/parse.c
 */
#include "fuzz_check.h"
#include "resp/parse.h"

/* ---- The allocation to fail --------------------------------------------------------- */

static unsigned grow_calls, grow_fail_at;

static void *fuzz_grow(void *ptr, size_t size)
{
    if (++grow_calls == grow_fail_at)
        return NULL;
    return realloc(ptr, size);
}

/* ---- A reference for inline lines --------------------------------------------------- */

struct ref_args {
    size_t count;
    size_t start[8192], len[8192]; /* into bytes */
    uint8_t bytes[65536 + 8];
};

static int ref_space(uint8_t c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static int ref_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static uint8_t ref_hex_value(uint8_t c)
{
    return (uint8_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
}

/* sdssplitargs over line[0..n), NUL being an ordinary byte. Returns 0, or -1 for unbalanced quotes. */
static int ref_split(const uint8_t *line, size_t n, struct ref_args *out)
{
    size_t o = 0;
    out->count = 0;
    const uint8_t *p = line, *end = line + n;
    while (1) {
        while (p < end && ref_space(*p))
            p++;
        if (p == end)
            return 0;
        CHECK(out->count < sizeof(out->start) / sizeof(*out->start));
        out->start[out->count] = o;
        enum { PLAIN, DOUBLE, SINGLE } mode = PLAIN;
        int done = 0;
        while (!done) {
            size_t left = (size_t)(end - p);
            if (mode == PLAIN) {
                if (left == 0 || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
                    done = 1;
                } else if (*p == '"') {
                    mode = DOUBLE;
                } else if (*p == '\'') {
                    mode = SINGLE;
                } else {
                    out->bytes[o++] = *p;
                }
            } else if (left == 0) {
                return -1;
            } else if (mode == DOUBLE && left >= 4 && p[0] == '\\' && p[1] == 'x' && ref_hex(p[2]) && ref_hex(p[3])) {
                out->bytes[o++] = (uint8_t)(ref_hex_value(p[2]) << 4 | ref_hex_value(p[3]));
                p += 3;
            } else if (mode == DOUBLE && left >= 2 && p[0] == '\\') {
                p++;
                static const char from[] = "nrtba", to[] = "\n\r\t\b\a";
                const char *at = memchr(from, *p, 5);
                out->bytes[o++] = at ? (uint8_t)to[at - from] : *p;
            } else if (mode == SINGLE && left >= 2 && p[0] == '\\' && p[1] == '\'') {
                p++;
                out->bytes[o++] = '\'';
            } else if ((mode == DOUBLE && *p == '"') || (mode == SINGLE && *p == '\'')) {
                if (left > 1 && !ref_space(p[1]))
                    return -1;
                done = 1;
            } else {
                out->bytes[o++] = *p;
            }
            if (p < end)
                p++;
        }
        out->len[out->count] = o - out->start[out->count];
        out->count++;
    }
}

/* ---- Checks on each outcome ---------------------------------------------------------- */

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The canonical encoding of argv, compared with the request's bytes, which the parser left as they came. */
static void check_multibulk(const struct resp_request *req, const char *buf, const uint8_t *orig, size_t consumed)
{
    CHECK(memcmp(buf, orig, consumed) == 0);
    if (req->argc == 0) {
        CHECK(consumed >= 4 && orig[0] == '*' && (orig[1] == '0' || orig[1] == '-'));
        return;
    }
    char line[32];
    size_t at = (size_t)snprintf(line, sizeof(line), "*%zu\r\n", req->argc);
    CHECK(at <= consumed && memcmp(orig, line, at) == 0);
    for (size_t i = 0; i < req->argc; i++) {
        const struct resp_arg *a = &req->argv[i];
        size_t n = (size_t)snprintf(line, sizeof(line), "$%zu\r\n", a->len);
        CHECK(at + n <= consumed && memcmp(orig + at, line, n) == 0);
        at += n;
        CHECK(a->offset == at && a->len <= consumed && at + a->len + 2 <= consumed);
        at += a->len;
        CHECK(orig[at] == '\r' && orig[at + 1] == '\n');
        at += 2;
    }
    CHECK(at == consumed);
}

static struct ref_args ref;

static void check_inline(const struct resp_request *req, const char *buf, const uint8_t *orig, size_t consumed,
                         const struct resp_limits *limits)
{
    CHECK(orig[consumed - 1] == '\n' && memchr(orig, '\n', consumed - 1) == NULL);
    CHECK(consumed - 1 <= limits->max_line_bytes);
    size_t n = consumed - 1;
    if (n > 0 && orig[n - 1] == '\r')
        n--;
    CHECK(ref_split(orig, n, &ref) == 0);
    CHECK(ref.count == req->argc);
    for (size_t i = 0; i < req->argc; i++) {
        CHECK(req->argv[i].len == ref.len[i]);
        CHECK(memcmp(buf + req->argv[i].offset, ref.bytes + ref.start[i], ref.len[i]) == 0);
    }
}

/* What one parse of the stream saw, as bytes: each request's arguments, then its end. */
struct log {
    char *s;
    size_t len, cap;
    int refused; /* a request was refused or skipped: the first such entry starts at refused_at */
    size_t refused_at;
};

static void log_put(struct log *l, const void *s, size_t n)
{
    if (l->len + n > l->cap) {
        l->cap = (l->len + n) * 2 + 64;
        l->s = realloc(l->s, l->cap);
        CHECK(l->s != NULL);
    }
    memcpy(l->s + l->len, s, n);
    l->len += n;
}

static void log_done(struct log *l, const struct resp_request *req, const char *buf, size_t consumed)
{
    log_put(l, "D", 1);
    log_put(l, &consumed, sizeof(consumed));
    log_put(l, &req->argc, sizeof(req->argc));
    for (size_t i = 0; i < req->argc; i++) {
        log_put(l, &req->argv[i].len, sizeof(req->argv[i].len));
        log_put(l, buf + req->argv[i].offset, req->argv[i].len);
    }
}

/*
 * Checks one outcome of a call under `now`; the request began at byte `at`
 * of the stream `orig` (for TOO_LARGE, `at` is instead the bytes MORE let
 * go of before it), and argv may have grown under `loosest`. Logs it;
 * returns whether parsing goes on. A request DONE under `now` fits it, even
 * if looser limits held for part of it.
 */
static int check_outcome(enum resp_parse_status status, struct resp_request *req, const char *buf, size_t len,
                         size_t consumed, const char *error, const uint8_t *orig, size_t orig_len, size_t at,
                         const struct resp_limits *now, const struct resp_limits *loosest, struct log *log)
{
    CHECK(req->argc <= req->cap && req->cap <= loosest->max_args);
    if (status == RESP_PARSE_TOO_LARGE) {
        /* Logged with every byte the request took, what MORE let go of included (at counts them). */
        CHECK(consumed > 0 && consumed <= len);
        if (!log->refused) {
            log->refused = 1;
            log->refused_at = log->len;
        }
        size_t total = at + consumed;
        log_put(log, "T", 1);
        log_put(log, &total, sizeof(total));
        return 1;
    }
    if (status == RESP_PARSE_DONE) {
        CHECK(consumed > 0 && consumed <= len && at + consumed <= orig_len);
        CHECK(req->argc <= now->max_args);
        for (size_t i = 0; i < req->argc; i++)
            CHECK(req->argv[i].offset <= consumed && req->argv[i].len <= consumed - req->argv[i].offset);
        for (size_t i = 0; i < req->argc && orig[at] == '*'; i++)
            CHECK(req->argv[i].len <= now->max_bulk_bytes);
        if (orig[at] == '*')
            check_multibulk(req, buf, orig + at, consumed);
        else
            check_inline(req, buf, orig + at, consumed, now);
        log_done(log, req, buf, consumed);
        return 1;
    }
    if (status == RESP_PARSE_ERROR) {
        CHECK(error != NULL && starts_with(error, "ERR "));
        CHECK(strcmp(error, "ERR out of memory") != 0 || grow_fail_at != 0);
        if (strcmp(error, "ERR Protocol error: unbalanced quotes in request") == 0) {
            const uint8_t *lf = memchr(orig + at, '\n', orig_len - at);
            CHECK(lf != NULL && orig[at] != '*');
            size_t n = (size_t)(lf - (orig + at));
            if (n > 0 && lf[-1] == '\r')
                n--;
            CHECK(ref_split(orig + at, n, &ref) == -1);
        }
        if (!log->refused) {
            log->refused = 1;
            log->refused_at = log->len;
        }
        log_put(log, "E", 1);
        log_put(log, error, strlen(error));
        return 0;
    }
    CHECK(status == RESP_PARSE_MORE);
    log_put(log, "M", 1);
    return 0;
}

/* ---- The two ways of giving the stream --------------------------------------------------- */

static uint32_t next_random(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

struct conn {
    struct resp_request req;
    char *buf; /* the bytes not yet taken by a request */
    size_t len;
    size_t base; /* where buf[0] is in the stream */
    size_t calls;
    const struct resp_limits *limits;
    const struct resp_limits *looser; /* when set, each call takes limits or these, at random */
    size_t dropped;                   /* bytes of the request MORE let go of */
    uint32_t random;
    struct log log;
};

/* Parses what conn holds until a request is incomplete or refused. Returns 0 after an error. */
static int drain(struct conn *c, const uint8_t *orig, size_t orig_len, int final)
{
    /* argv may have grown under the loosest limits. */
    const struct resp_limits *loosest = c->looser ? c->looser : c->limits;
    for (;;) {
        size_t consumed = 0;
        const char *error = NULL;
        const struct resp_limits *now = c->looser && next_random(&c->random) & 1 ? c->looser : c->limits;
        enum resp_parse_status status = resp_parse(&c->req, c->buf, c->len, now, &consumed, &error);
        c->calls++;
        if (status == RESP_PARSE_MORE) {
            /* Waiting leaves the bytes as they came; only a request that will not run lets some go. */
            CHECK(c->len == 0 || memcmp(c->buf, orig + c->base, c->len) == 0);
            CHECK(consumed <= c->len && (consumed == 0 || c->req.too_large));
            if (consumed > 0) {
                memmove(c->buf, c->buf + consumed, c->len - consumed);
                c->len -= consumed;
                c->base += consumed;
                c->dropped += consumed;
            }
            if (final)
                check_outcome(status, &c->req, c->buf, c->len, 0, NULL, orig, orig_len, c->base, now, loosest, &c->log);
            return 1;
        }
        CHECK(status != RESP_PARSE_TOO_LARGE || c->limits->max_skip_bytes > 0);
        CHECK(status != RESP_PARSE_DONE || c->dropped == 0); /* (a skipped request may still be refused) */
        size_t at = status == RESP_PARSE_TOO_LARGE ? c->dropped : c->base;
        if (!check_outcome(status, &c->req, c->buf, c->len, consumed, error, orig, orig_len, at, now, loosest,
                           &c->log))
            return 0;
        c->dropped = 0;
        memmove(c->buf, c->buf + consumed, c->len - consumed);
        c->len -= consumed;
        c->base += consumed;
        resp_request_reset(&c->req);
    }
}

/* Appends n bytes, moving the buffer to a new block of exactly the bytes held, so ASan sees a read past them. */
static void append(struct conn *c, const uint8_t *p, size_t n)
{
    size_t total = c->len + n;
    char *moved = malloc(total ? total : 1);
    CHECK(moved != NULL);
    if (c->len > 0)
        memcpy(moved, c->buf, c->len);
    if (n > 0)
        memcpy(moved + c->len, p, n);
    free(c->buf);
    c->buf = moved;
    c->len += n;
}

static size_t next_piece(uint32_t *s, int bytewise)
{
    if (bytewise)
        return 1;
    uint32_t r = next_random(s);
    switch (r & 7) {
    case 0:
        return 0;
    case 1:
        return (r >> 8) % 512;
    default:
        return 1 + (r >> 8) % 16;
    }
}

/* Gives the stream to c in pieces of random sizes, draining it after each. */
static void feed_in_pieces(struct conn *c, const uint8_t *stream, size_t len, int bytewise, uint32_t seed)
{
    size_t fed = 0;
    int going = 1;
    while (going && fed < len) {
        size_t n = next_piece(&seed, bytewise);
        if (n > len - fed)
            n = len - fed;
        append(c, stream + fed, n);
        fed += n;
        going = drain(c, stream, len, fed == len);
    }
    if (len == 0)
        drain(c, stream, len, 1);
}

/* The prefetch hint: inside the stream, and the key a real parse finds for as long as it reads the same requests. */
static void check_peek(const uint8_t *stream, size_t len, const struct resp_limits *redis)
{
    struct resp_arg keys[32];
    char *buf = malloc(len ? len : 1);
    CHECK(buf != NULL);
    memcpy(buf, stream, len);
    size_t n = resp_peek_keys(buf, len, SIZE_MAX, keys, 32), matched = 0, at = 0;
    CHECK(n <= 32);
    for (size_t i = 0; i < n; i++)
        CHECK(keys[i].offset <= len && keys[i].len <= len - keys[i].offset);
    struct resp_request req = {0};
    while (matched < n && at < len && buf[at] == '*') {
        size_t consumed;
        const char *error;
        if (resp_parse(&req, buf + at, len - at, redis, &consumed, &error) != RESP_PARSE_DONE)
            break;
        if (req.argc >= 2) {
            CHECK(keys[matched].offset == at + req.argv[1].offset && keys[matched].len == req.argv[1].len);
            matched++;
        }
        at += consumed;
        resp_request_reset(&req);
    }
    resp_request_free(&req);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cursor cur = {data, data + size};
    uint8_t shape = cursor_u8(&cur), control = cursor_u8(&cur);
    static const size_t args[] = {1, 3, 10, RESP_REDIS_MAX_ARGS};
    static const size_t bulks[] = {0, 4, 64, RESP_REDIS_MAX_BULK_BYTES};
    static const size_t lines[] = {0, 8, 64, RESP_REDIS_MAX_LINE_BYTES};
    const struct resp_limits limits = {
        .max_args = args[shape & 3],
        .max_bulk_bytes = bulks[(shape >> 2) & 3],
        .max_line_bytes = lines[(shape >> 4) & 3],
        .before_auth = (shape >> 6) & 1,
        .max_skip_bytes = (control & 0x10) && !((shape >> 6) & 1) ? 256 : 0,
    };
    const struct resp_limits redis = {
        .max_args = RESP_REDIS_MAX_ARGS,
        .max_bulk_bytes = RESP_REDIS_MAX_BULK_BYTES,
        .max_line_bytes = RESP_REDIS_MAX_LINE_BYTES,
        .before_auth = limits.before_auth,
    };
    const uint8_t *stream = cur.p;
    size_t len = (size_t)(cur.end - cur.p);
    uint32_t seed = 0x9e3779b9u ^ (uint32_t)control << 24 ^ (uint32_t)len;
    grow_fail_at = control & 15;

    /* Whole. */
    struct conn whole = {.req = {.grow = fuzz_grow}, .limits = &limits};
    grow_calls = 0;
    append(&whole, stream, len);
    drain(&whole, stream, len, 1);

    /* In pieces: the same requests, the same arguments, the same end. */
    struct conn cut = {.req = {.grow = fuzz_grow}, .limits = &limits};
    grow_calls = 0;
    feed_in_pieces(&cut, stream, len, shape >> 7, seed);
    CHECK(whole.log.len == cut.log.len && memcmp(whole.log.s, cut.log.s, whole.log.len) == 0);
    /* Each byte is looked at about once, whatever the pieces: a '\r' again when the '\n' after it was late. */
    CHECK(cut.req.examined <= 2 * len + cut.calls);

    /*
     * In pieces again, each call under the limits or Redis's at random:
     * limits lowered under a request never refuse what they accept, nor let
     * through what they refuse before they refused it. The parses agree up
     * to the first request the limits refuse, and part ways after it.
     */
    struct conn mixed = {.req = {.grow = fuzz_grow}, .limits = &limits, .looser = &redis, .random = seed ^ 0x5bd1e995u};
    grow_calls = 0;
    feed_in_pieces(&mixed, stream, len, shape >> 7, seed);
    size_t agreed = whole.log.refused ? whole.log.refused_at : whole.log.len;
    CHECK(mixed.log.len >= agreed && memcmp(whole.log.s, mixed.log.s, agreed) == 0);

    check_peek(stream, len, &redis);

    struct conn *conns[] = {&whole, &cut, &mixed};
    for (size_t i = 0; i < 3; i++) {
        resp_request_free(&conns[i]->req);
        free(conns[i]->buf);
        free(conns[i]->log.s);
    }
    return 0;
}
