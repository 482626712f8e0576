/*
 * The network fuzzers' shared machinery (see netfuzz.h): bytes, a PRNG,
 * mutations and the case runner.
 *
 * The runner keeps NETFUZZ_SLOTS connections open at once and drives them
 * from one poll() loop: each slot sends its case's next piece when it is
 * due, reads whatever the server sends (up to read_cap bytes), and ends the
 * connection as the case planned. So a connection the server keeps open
 * for a while (HTTP's request timeout, a RESP client waiting in silence)
 * costs one slot that long, not the whole run, and a run of thousands of
 * cases takes seconds. A slot finishes when the server closes or the
 * client does; the protocol's check then sees everything that came back.
 */
#define _GNU_SOURCE
#include "netfuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "raw.h"
#include "server.h"

/* ---- bytes and randomness ----------------------------------------------- */

void buf_put(struct buf *b, const void *data, size_t n)
{
    if (b->cap - b->len < n + 1) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            abort();
    }
    if (n > 0) /* data may be NULL then: an empty buffer */
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void buf_str(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

void buf_byte(struct buf *b, int c)
{
    char ch = (char)c;
    buf_put(b, &ch, 1);
}

void buf_repeat(struct buf *b, const char *s, size_t times)
{
    for (size_t i = 0; i < times; i++)
        buf_str(b, s);
}

void buf_fmt(struct buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    buf_put(b, tmp, n < (int)sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

size_t rng_pick(struct rng *r, size_t n)
{
    return n == 0 ? 0 : (size_t)(rng_next(r) % n);
}

int rng_chance(struct rng *r, unsigned percent)
{
    return rng_pick(r, 100) < percent;
}

void rng_bytes(struct rng *r, struct buf *b, size_t n, int printable)
{
    for (size_t i = 0; i < n; i++)
        buf_byte(b, printable ? 0x20 + (int)rng_pick(r, 95) : (int)rng_pick(r, 256));
}

void rng_word(struct rng *r, struct buf *b, const char *words)
{
    size_t n = 1;
    for (const char *p = words; *p != '\0'; p++)
        n += *p == '|';
    const char *p = words;
    for (size_t k = rng_pick(r, n); k > 0; k--)
        p = strchr(p, '|') + 1;
    const char *end = strchr(p, '|');
    buf_put(b, p, end != NULL ? (size_t)(end - p) : strlen(p));
}

struct rng netfuzz_case_rng(uint64_t seed, unsigned long index)
{
    return (struct rng){seed ^ ((uint64_t)(index + 1) * 0xD1B54A32D192ED03ull)};
}

/* ---- cases ------------------------------------------------------------------ */

void netfuzz_plan_delivery(struct rng *r, struct netfuzz_case *c)
{
    size_t send_len = c->bytes.len;
    if (c->ending >= NETFUZZ_CLOSE && rng_chance(r, 50))
        send_len = rng_pick(r, send_len + 1);
    c->pieces = rng_chance(r, 65) ? 1 : 2 + (int)rng_pick(r, NETFUZZ_MAX_PIECES - 1);
    for (int i = 0; i < c->pieces - 1; i++)
        c->cuts[i] = rng_pick(r, send_len + 1);
    c->cuts[c->pieces - 1] = send_len;
    for (int i = 1; i < c->pieces; i++) /* insertion sort: a handful of cuts */
        for (int j = i; j > 0 && c->cuts[j - 1] > c->cuts[j]; j--) {
            size_t swap = c->cuts[j];
            c->cuts[j] = c->cuts[j - 1];
            c->cuts[j - 1] = swap;
        }
    c->gap_ms = (int)rng_pick(r, c->pieces > 4 ? 6 : 25);
}

void netfuzz_mutate(struct rng *r, struct buf *b, const char *tokens)
{
    for (size_t i = 0, n = 1 + rng_pick(r, 6); i < n && b->len > 0; i++) {
        size_t at = rng_pick(r, b->len), span = 1 + rng_pick(r, 64);
        struct buf tail = {0};
        if (span > b->len - at)
            span = b->len - at;
        switch (rng_pick(r, 7)) {
        case 0:
            b->p[at] ^= (char)(1u << rng_pick(r, 8));
            break;
        case 1:
            b->p[at] = (char)rng_pick(r, 256);
            break;
        case 2: /* insert a token that means something to a parser, or random bytes */
        case 3:
            buf_put(&tail, b->p + at, b->len - at);
            b->len = at;
            if (rng_chance(r, 10))
                buf_put(b, "\0", 1);
            else if (rng_chance(r, 50))
                rng_word(r, b, tokens);
            else
                rng_bytes(r, b, 1 + rng_pick(r, 16), 0);
            buf_put(b, tail.p, tail.len);
            break;
        case 4: /* delete */
            memmove(b->p + at, b->p + at + span, b->len - at - span);
            b->len -= span;
            break;
        case 5: /* duplicate */
            buf_put(&tail, b->p + at, b->len - at);
            b->len = at + span;
            buf_put(b, tail.p, tail.len);
            break;
        default: /* truncate */
            b->len = at;
            break;
        }
        free(tail.p);
    }
}

int netfuzz_contains_nocase(const char *p, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(p + i, needle, n) == 0)
            return 1;
    return 0;
}

/* ---- failing ------------------------------------------------------------------ */

static const char *const ending_names[] = {"half-close", "wait", "close", "reset"};

void netfuzz_print_escaped(const char *label, const char *p, size_t len, size_t limit)
{
    fprintf(stderr, "  %s (%zu bytes): \"", label, len);
    for (size_t i = 0; i < len && i < limit; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '\\' || ch == '"')
            fprintf(stderr, "\\%c", ch);
        else if (ch == '\r')
            fputs("\\r", stderr);
        else if (ch == '\n')
            fputs("\\n", stderr);
        else if (ch >= 0x20 && ch < 0x7f)
            fputc(ch, stderr);
        else
            fprintf(stderr, "\\x%02x\"\"", ch); /* "" ends the escape before a following hex digit */
    }
    fprintf(stderr, "\"%s\n", len > limit ? "..." : "");
}

/* Writes the case's bytes to a file for a repro (printf '...' is no good for megabytes); returns its path or "". */
static const char *save_request(const struct netfuzz *f, const struct netfuzz_slot *s, char *path, size_t size)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, size, "%s/%s-%" PRIu64 "-%lu.bin", dir != NULL && *dir != '\0' ? dir : "/tmp", f->name, f->seed,
             s->c.index);
    FILE *file = fopen(path, "wb");
    if (file == NULL)
        return "";
    size_t written = fwrite(s->c.bytes.p, 1, s->c.bytes.len, file);
    if (fclose(file) != 0 || written != s->c.bytes.len)
        return "";
    return path;
}

void netfuzz_fail_case(const struct netfuzz *f, const struct netfuzz_slot *s, const char *why)
{
    char path[256];
    fprintf(stderr, "%s: case %lu of NETFUZZ_SEED=%" PRIu64 ": %s\n", f->name, s->c.index, f->seed, why);
    fprintf(stderr, "  delivery: %zu of %zu bytes in %d pieces %d ms apart, then %s", s->c.cuts[s->c.pieces - 1],
            s->c.bytes.len, s->c.pieces, s->c.gap_ms, ending_names[s->c.ending]);
    if (s->c.ending == NETFUZZ_WAIT && s->c.quiet_ms > 0)
        fprintf(stderr, " (%d ms quiet, then %s)", s->c.quiet_ms,
                s->awaiting_close ? "waiting for the server" : "half-close");
    fprintf(stderr, "; %s\n",
            s->fd != -1           ? "the connection is still open"
            : s->closed_by_server ? "the server closed it first"
                                  : "the client closed it first");
    fprintf(stderr, "  request bytes in %s\n", save_request(f, s, path, sizeof(path)));
    netfuzz_print_escaped("request", s->c.bytes.p, s->c.bytes.len, 4096);
    netfuzz_print_escaped("response", s->in.len > 0 ? s->in.p : "", s->in.len, 4096);
    fail_msg("%s case %lu: %s", f->name, s->c.index, why);
}

/* ---- running cases ------------------------------------------------------------ */

static void start_case(struct netfuzz *f, struct netfuzz_slot *s, unsigned long index)
{
    memset(&s->c, 0, sizeof(s->c));
    s->c.index = index;
    buf_str(&s->c.bytes, "");
    f->gen(f->seed, index, &s->c);
    s->fd = raw_try_connect(f->port);
    if (s->fd == -1)
        fail_msg("%s case %lu: connect: %s (has the server died?)", f->name, index, strerror(errno));
    fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
    s->sent = 0;
    s->piece = 0;
    s->done_sending = 0;
    s->shut = 0;
    s->awaiting_close = 0;
    s->closed_by_server = 0;
    s->server_gone = 0;
    s->capped = 0;
    s->next_at = s->last_io = now_ms();
    s->deadline = s->next_at + f->hang_ms;
    s->in = (struct buf){0};
}

static void finish_case(struct netfuzz *f, struct netfuzz_slot *s, int closed_by_server)
{
    if (!closed_by_server && s->c.ending == NETFUZZ_RESET)
        raw_close_with_reset(s->fd);
    else
        close(s->fd);
    s->fd = -1;
    s->closed_by_server = closed_by_server;
    f->check(f, s);
    f->cases++;
    free(s->c.bytes.p);
    free(s->in.p);
}

/* Reads what is there; returns 1 once the server has closed (or reset) the connection. */
static int read_some(const struct netfuzz *f, struct netfuzz_slot *s, int64_t now)
{
    char chunk[16384];
    for (;;) {
        ssize_t n = recv(s->fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return 1;
        s->last_io = now;
        size_t room = f->read_cap - s->in.len, keep = (size_t)n < room ? (size_t)n : room;
        if (!s->capped)
            buf_put(&s->in, chunk, keep);
        s->capped |= keep < (size_t)n;
    }
}

static void half_close(const struct netfuzz *f, struct netfuzz_slot *s, int64_t now)
{
    shutdown(s->fd, SHUT_WR);
    s->shut = 1;
    s->deadline = now + f->hang_ms;
}

/* The last byte went out (or the server stopped taking them): start the ending. */
static void end_sending(const struct netfuzz *f, struct netfuzz_slot *s, int64_t now)
{
    s->done_sending = 1;
    s->deadline = now + f->hang_ms;
    if (s->c.ending == NETFUZZ_HALF_CLOSE)
        half_close(f, s, now);
    else if (s->c.ending >= NETFUZZ_CLOSE)
        s->next_at = now + s->c.gap_ms;
}

static void send_some(const struct netfuzz *f, struct netfuzz_slot *s, int64_t now)
{
    size_t cut = s->c.cuts[s->piece];
    while (s->sent < cut) {
        ssize_t n = send(s->fd, s->c.bytes.p + s->sent, cut - s->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) { /* the server closed (a send fails only after its reset): read what it said */
            s->done_sending = 1;
            s->server_gone = 1;
            return;
        }
        s->sent += (size_t)n;
        s->last_io = now;
        s->deadline = now + f->hang_ms;
    }
    if (++s->piece == s->c.pieces)
        end_sending(f, s, now);
    else
        s->next_at = now + s->c.gap_ms;
}

/* A wait that ends after a quiet spell, and has not yet. */
static int waits_for_quiet(const struct netfuzz_slot *s)
{
    return s->done_sending && s->c.ending == NETFUZZ_WAIT && s->c.quiet_ms > 0 && !s->shut && !s->awaiting_close;
}

/* When the quiet spell of s ends, if nothing moves before. */
static int64_t quiet_until(const struct netfuzz *f, const struct netfuzz_slot *s)
{
    return s->last_io + (int64_t)s->c.quiet_ms * (f->quiet_scale > 1 ? f->quiet_scale : 1);
}

/* Nothing went either way for quiet_ms: half-close, or keep waiting if the server is to close by itself. */
static void end_quiet_wait(const struct netfuzz *f, struct netfuzz_slot *s, int64_t now)
{
    if (f->expects_close != NULL && f->expects_close(f, s)) {
        s->awaiting_close = 1;
        s->deadline = s->last_io + f->hang_ms;
    } else {
        half_close(f, s, now);
    }
}

void netfuzz_run_batch(struct netfuzz *f, unsigned long first, unsigned long end)
{
    /* Static: after a failure, what the cases hold stays reachable, so LSan adds no report of its own. */
    static struct netfuzz_slot slots[NETFUZZ_SLOTS];
    struct pollfd fds[NETFUZZ_SLOTS];
    unsigned long next_case = first;
    for (int i = 0; i < NETFUZZ_SLOTS; i++)
        slots[i].fd = -1;
    for (;;) {
        int active = 0, timeout = 100;
        int64_t now = now_ms();
        for (int i = 0; i < NETFUZZ_SLOTS; i++) {
            struct netfuzz_slot *s = &slots[i];
            if (s->fd == -1 && next_case < end)
                start_case(f, s, next_case++);
            fds[i] = (struct pollfd){.fd = s->fd, .events = POLLIN};
            if (s->fd == -1)
                continue;
            active++;
            int64_t due = s->deadline;
            if ((!s->done_sending || s->c.ending >= NETFUZZ_CLOSE) && s->next_at < due)
                due = s->next_at;
            if (waits_for_quiet(s) && quiet_until(f, s) < due)
                due = quiet_until(f, s);
            if (!s->done_sending && now >= s->next_at)
                fds[i].events |= POLLOUT;
            if (due - now < timeout)
                timeout = due > now ? (int)(due - now) : 0;
        }
        if (active == 0)
            return;
        if (poll(fds, NETFUZZ_SLOTS, timeout) < 0 && errno != EINTR)
            fail_msg("poll: %s", strerror(errno));
        now = now_ms();
        for (int i = 0; i < NETFUZZ_SLOTS; i++) {
            struct netfuzz_slot *s = &slots[i];
            if (s->fd == -1)
                continue;
            if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) && read_some(f, s, now)) {
                finish_case(f, s, 1);
                continue;
            }
            if (!s->done_sending && now >= s->next_at)
                send_some(f, s, now);
            if (s->server_gone) {
                read_some(f, s, now);
                finish_case(f, s, 1);
                continue;
            }
            if (s->done_sending && s->c.ending >= NETFUZZ_CLOSE && now >= s->next_at) {
                read_some(f, s, now);
                finish_case(f, s, 0);
                continue;
            }
            if (waits_for_quiet(s) && now >= quiet_until(f, s))
                end_quiet_wait(f, s, now);
            if (now > s->deadline)
                netfuzz_fail_case(f, s, f->hang_why);
        }
    }
}

/* ---- the run ------------------------------------------------------------------ */

uint64_t netfuzz_env_u64(const char *name, uint64_t fallback)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return fallback;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 0);
    if (errno != 0 || *end != '\0')
        fail_msg("%s=%s is not a number", name, v);
    return n;
}

void netfuzz_expect_alive(const struct netfuzz *f, struct server *srv, unsigned long first, unsigned long end)
{
    int status = server_wait_exit(srv, 0);
    if (srv->pid == 0)
        fail_msg("the server exited with status %d during cases %lu-%lu (NETFUZZ_SEED=%" PRIu64 ")", status, first,
                 end - 1, f->seed);
    struct http_res res;
    struct http_req req = {.path = "/health"};
    if (http_do(NULL, srv->port, &req, &res) != 0)
        fail_msg("GET /health after cases %lu-%lu: %s", first, end - 1, curl_easy_strerror(res.curl_code));
    expect_json(&res, 200);
    assert_string_equal(res.body, "{\"status\":\"ok\"}");
    http_res_free(&res);
}

uint64_t netfuzz_seed(void)
{
    struct rng clock_rng = {(uint64_t)now_ms() ^ ((uint64_t)getpid() << 32)};
    return netfuzz_env_u64("NETFUZZ_SEED", rng_next(&clock_rng));
}
