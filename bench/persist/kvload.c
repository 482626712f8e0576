/*
 * kvload: the load generator and probes of bench/persist/run.sh, speaking
 * either cachette's HTTP or the Redis protocol (RESP), so cachette and Redis
 * are driven by the same code and their figures differ by the server alone.
 *
 *   kvload fill http PORT COUNT     PUT COUNT entries over one connection,
 *                                   256 requests pipelined
 *   kvload fill resp - COUNT        print the same entries as RESP SET
 *                                   commands, for `redis-cli --pipe`
 *   kvload run http|resp PORT CONNS SECONDS KEYS SET_PERCENT
 *                                   closed loop: CONNS connections, one
 *                                   request outstanding on each, uniform keys
 *   kvload call http|resp PORT 'POST /snapshot' | 'SAVE'
 *                                   one request; prints "MS STATUS BODY"
 *   kvload ready http|redis|ping PORT TIMEOUT_S T0 [PID]
 *                                   polls every millisecond until the server
 *                                   answers /health 200 (http), PONG and
 *                                   INFO's loading:0 (redis), or PONG (ping);
 *                                   prints the milliseconds since T0 (a Unix
 *                                   time with decimals, bash's $EPOCHREALTIME);
 *                                   fails at once if process PID has exited
 *   kvload snaploop http|redis PORT SECONDS
 *                                   snapshots back to back for SECONDS:
 *                                   POST /snapshot, or BGSAVE and INFO polls
 *                                   until it is done; prints the count and
 *                                   each one's milliseconds
 *
 * The data: key i is the 16-byte string "key:%012u"; its value in `fill` is
 * VALUE_BYTES bytes from splitmix64 seeded with i, so cachette and Redis hold
 * the same bytes; `run`'s SETs write fresh random bytes. Random bytes do not
 * compress: neither server's file can shrink them. Over HTTP a value is a
 * PUT /cache/KEY with Content-Type application/octet-stream and read back
 * with GET ?raw; over RESP it is SET KEY VALUE and GET KEY.
 *
 * `run` prints one line: "requests N seconds S rps R p50_ms A p99_ms B
 * max_ms C errors E misses M". Latency is from the moment a request is
 * written to the moment its whole response is read, kept in a histogram of
 * 1 µs buckets to 10 ms and 100 µs buckets to 10 s. Only responses completed
 * within SECONDS count. An error is an HTTP status other than 2xx (404 on a
 * GET is a miss) or a RESP error reply.
 *
 * Every mode is bounded by an alarm; a server that stops answering for 10 s
 * fails the run. Exit 0, or 1 with the reason on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    VALUE_BYTES = 100,
    FILL_DEPTH = 256, /* requests in flight on fill's one connection */
    MAX_CONNS = 1024,
    MAX_REQUEST = 512,   /* the longest request formatted */
    OUT_CAP = 96 * 1024, /* per connection: FILL_DEPTH requests fit */
    IN_CAP = 256 * 1024,
    STALL_MS = 10000,                 /* no progress this long fails the run */
    HIST_FINE = 10000,                /* 1 µs buckets below 10 ms */
    HIST_BUCKETS = HIST_FINE + 99900, /* then 100 µs buckets to 10 s */
};

enum proto { HTTP, RESP };

static int die(const char *fmt, const char *arg)
{
    fprintf(stderr, "kvload: ");
    fprintf(stderr, fmt, arg);
    if (errno)
        fprintf(stderr, ": %s", strerror(errno));
    fprintf(stderr, "\n");
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- data --------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Fills out[0..n) with bytes drawn from *state. */
static void random_bytes(unsigned char *out, size_t n, uint64_t *state)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = splitmix64(state);
        memcpy(out + i, &r, n - i < 8 ? n - i : 8);
    }
}

/* The value `fill` stores under key i. */
static void fill_value(unsigned char out[VALUE_BYTES], unsigned i)
{
    uint64_t state = i;
    random_bytes(out, VALUE_BYTES, &state);
}

/* Formats a SET (PUT) of key i to value; returns its length. */
static size_t format_set(char *out, enum proto p, unsigned i, const unsigned char *value)
{
    int n;
    if (p == HTTP)
        n = sprintf(out,
                    "PUT /cache/key:%012u HTTP/1.1\r\nHost: b\r\n"
                    "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n",
                    i, VALUE_BYTES);
    else
        n = sprintf(out, "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012u\r\n$%d\r\n", i, VALUE_BYTES);
    memcpy(out + n, value, VALUE_BYTES);
    n += VALUE_BYTES;
    if (p == RESP) {
        memcpy(out + n, "\r\n", 2);
        n += 2;
    }
    return (size_t)n;
}

static size_t format_get(char *out, enum proto p, unsigned i)
{
    if (p == HTTP)
        return (size_t)sprintf(out, "GET /cache/key:%012u?raw HTTP/1.1\r\nHost: b\r\n\r\n", i);
    return (size_t)sprintf(out, "*2\r\n$3\r\nGET\r\n$16\r\nkey:%012u\r\n", i);
}

/* ---- responses ---------------------------------------------------------- */

/*
 * Parses one whole HTTP response at buf[0..len). Returns its length, 0 when
 * it is not all there yet, -1 when malformed; sets *status, and *body and
 * *body_len to its body.
 */
static long http_reply(const char *buf, size_t len, int *status, const char **body, size_t *body_len)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL)
        return len > 65536 ? -1 : 0;
    if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(buf + 9);
    long clen = -1;
    for (const char *line = buf; line < end;) {
        const char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        if (eol == NULL)
            break;
        if (eol - line > 15 && strncasecmp(line, "content-length:", 15) == 0)
            clen = strtol(line + 15, NULL, 10);
        line = eol + 2;
    }
    if (clen < 0)
        return -1; /* cachette always sends a Content-Length */
    size_t head = (size_t)(end - buf) + 4;
    if (head + (size_t)clen > len)
        return 0;
    *body = buf + head;
    *body_len = (size_t)clen;
    return (long)(head + (size_t)clen);
}

/*
 * Parses one whole RESP reply (simple string, error, integer or bulk
 * string) at buf[0..len). Returns its length, 0 when incomplete, -1 when
 * malformed; *is_error says it was an error reply, *is_nil a null bulk.
 */
static long resp_reply(const char *buf, size_t len, bool *is_error, bool *is_nil)
{
    const char *eol = memmem(buf, len, "\r\n", 2);
    if (eol == NULL)
        return len > 65536 ? -1 : 0;
    size_t line = (size_t)(eol - buf) + 2;
    *is_error = buf[0] == '-';
    *is_nil = false;
    switch (buf[0]) {
    case '+':
    case '-':
    case ':':
        return (long)line;
    case '$': {
        long n = strtol(buf + 1, NULL, 10);
        if (n < 0) {
            *is_nil = true;
            return (long)line;
        }
        return line + (size_t)n + 2 <= len ? (long)(line + (size_t)n + 2) : 0;
    }
    default:
        return -1;
    }
}

/* ---- connections -------------------------------------------------------- */

/* A blocking connection to 127.0.0.1:port, or -1. */
static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket", "");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Writes all of buf to a blocking fd; false on failure. */
static bool write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        buf += w;
        len -= (size_t)w;
    }
    return true;
}

/*
 * One request and its response on a blocking connection, within timeout_ms.
 * For HTTP, *status is the status and the body goes to reply (NUL-ended,
 * cut to reply_cap); for RESP, *status is 0 or -1 (an error reply) and the
 * reply's text goes to reply. Returns false when the connection fails.
 */
static bool roundtrip(int fd, enum proto p, const char *req, size_t req_len, int timeout_ms, int *status, char *reply,
                      size_t reply_cap)
{
    static char in[IN_CAP];
    size_t in_len = 0;
    if (!write_all(fd, req, req_len))
        return false;
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        long used;
        if (p == HTTP) {
            const char *body = NULL;
            size_t body_len = 0;
            used = http_reply(in, in_len, status, &body, &body_len);
            if (used > 0) {
                size_t n = body_len < reply_cap - 1 ? body_len : reply_cap - 1;
                memcpy(reply, body, n);
                reply[n] = '\0';
                return true;
            }
        } else {
            bool err, nil;
            used = in_len ? resp_reply(in, in_len, &err, &nil) : 0;
            if (used > 0) {
                size_t n = (size_t)used < reply_cap - 1 ? (size_t)used : reply_cap - 1;
                memcpy(reply, in, n);
                reply[n] = '\0';
                *status = err ? -1 : 0;
                return true;
            }
        }
        if (used < 0)
            return false;
        uint64_t now = now_ns();
        if (now >= deadline || in_len == sizeof in)
            return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        ssize_t r = read(fd, in + in_len, sizeof in - in_len);
        if (r <= 0)
            return false;
        in_len += (size_t)r;
    }
}

/* Formats "WORD WORD ..." as a RESP array, or "METHOD PATH" as an HTTP request. */
static size_t format_command(char *out, size_t cap, enum proto p, const char *cmd)
{
    if (p == HTTP) {
        char method[16], path[256];
        if (sscanf(cmd, "%15s %255s", method, path) != 2)
            die("not 'METHOD PATH': %s", cmd);
        return (size_t)snprintf(out, cap, "%s %s HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n", method, path);
    }
    char words[16][64];
    int n = 0;
    for (const char *s = cmd; *s && n < 16;) {
        while (*s == ' ')
            s++;
        size_t len = strcspn(s, " ");
        if (len == 0)
            break;
        if (len >= sizeof words[0])
            die("word too long in '%s'", cmd);
        memcpy(words[n], s, len);
        words[n++][len] = '\0';
        s += len;
    }
    size_t off = (size_t)snprintf(out, cap, "*%d\r\n", n);
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(out + off, cap - off, "$%zu\r\n%s\r\n", strlen(words[i]), words[i]);
    return off;
}

/* ---- the load engine ---------------------------------------------------- */

struct conn {
    int fd;
    bool want_out; /* EPOLLOUT registered */
    size_t out_len, out_off, in_len;
    unsigned outstanding;
    uint64_t sent[FILL_DEPTH]; /* ring of send times, oldest at head */
    unsigned head;
    bool is_set[FILL_DEPTH]; /* the request at that slot was a SET */
    uint64_t rng;
    char out[OUT_CAP];
    char in[IN_CAP];
};

struct engine {
    enum proto proto;
    int epfd;
    struct conn *conns;
    int nconns;
    unsigned depth;
    /* what to send */
    bool fill; /* sequential keys 0..count-1, fill's values */
    unsigned next_key, count;
    unsigned keys, set_percent;
    /* results */
    uint64_t done, errors, misses;
    uint64_t *hist;
    uint64_t max_ns;
};

static void hist_add(struct engine *e, uint64_t ns)
{
    uint64_t us = ns / 1000;
    size_t b = us < HIST_FINE ? us : HIST_FINE + (us - HIST_FINE) / 100;
    if (b >= HIST_BUCKETS)
        b = HIST_BUCKETS - 1;
    e->hist[b]++;
    if (ns > e->max_ns)
        e->max_ns = ns;
}

/* The latency, in ms, under which fraction q of the requests completed. */
static double hist_quantile(const struct engine *e, double q)
{
    uint64_t want = (uint64_t)(q * (double)e->done + 0.5), seen = 0;
    if (want == 0)
        want = 1;
    for (size_t b = 0; b < HIST_BUCKETS; b++) {
        seen += e->hist[b];
        if (seen >= want)
            return b < HIST_FINE ? (b + 1) / 1000.0 : (HIST_FINE + (b - HIST_FINE + 1) * 100.0) / 1000.0;
    }
    return e->max_ns / 1e6;
}

static void set_want_out(struct engine *e, struct conn *c, bool want)
{
    if (c->want_out == want)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        die("epoll_ctl", "");
    c->want_out = want;
}

/* Writes what c has queued; false when the connection failed. */
static bool flush_out(struct engine *e, struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            break;
        if (w <= 0)
            return false;
        c->out_off += (size_t)w;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    set_want_out(e, c, c->out_off < c->out_len);
    return true;
}

/* Queues requests on c while under the depth and there is something to send. */
static void queue_requests(struct engine *e, struct conn *c, uint64_t now)
{
    while (c->outstanding < e->depth) {
        if (e->fill && e->next_key >= e->count)
            return;
        if (OUT_CAP - c->out_len < MAX_REQUEST) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
            if (OUT_CAP - c->out_len < MAX_REQUEST)
                return;
        }
        unsigned key;
        bool set;
        unsigned char value[VALUE_BYTES];
        if (e->fill) {
            key = e->next_key++;
            set = true;
            fill_value(value, key);
        } else {
            key = (unsigned)(splitmix64(&c->rng) % e->keys);
            set = splitmix64(&c->rng) % 100 < e->set_percent;
            if (set)
                random_bytes(value, VALUE_BYTES, &c->rng);
        }
        char *at = c->out + c->out_len;
        c->out_len += set ? format_set(at, e->proto, key, value) : format_get(at, e->proto, key);
        unsigned slot = (c->head + c->outstanding) % FILL_DEPTH;
        c->sent[slot] = now;
        c->is_set[slot] = set;
        c->outstanding++;
    }
}

/* Reads and accounts c's responses; false when the connection failed. */
static bool read_replies(struct engine *e, struct conn *c, uint64_t deadline)
{
    ssize_t r = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
    if (r == 0) {
        errno = 0;
        return false;
    }
    if (r < 0)
        return errno == EAGAIN || errno == EINTR;
    c->in_len += (size_t)r;
    size_t off = 0;
    uint64_t now = now_ns();
    while (off < c->in_len && c->outstanding > 0) {
        long used;
        bool error = false, miss = false;
        if (e->proto == HTTP) {
            int status = 0;
            const char *body;
            size_t body_len;
            used = http_reply(c->in + off, c->in_len - off, &status, &body, &body_len);
            if (status == 404 && !c->is_set[c->head])
                miss = true;
            else if (status < 200 || status > 299)
                error = true;
        } else {
            bool nil;
            used = resp_reply(c->in + off, c->in_len - off, &error, &nil);
            miss = nil;
        }
        if (used < 0) {
            errno = 0;
            die("malformed response from the server%s", "");
        }
        if (used == 0)
            break;
        off += (size_t)used;
        if (e->fill && error) {
            errno = 0;
            die("the server refused a write: %.200s", c->in + off - used);
        }
        if (deadline == 0 || now < deadline) {
            e->done++;
            e->errors += error;
            e->misses += miss;
            if (e->hist)
                hist_add(e, now - c->sent[c->head]);
        }
        c->head = (c->head + 1) % FILL_DEPTH;
        c->outstanding--;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (c->in_len == IN_CAP) {
        errno = 0;
        die("a response larger than the buffer%s", "");
    }
    return true;
}

/*
 * Runs the engine until fill's count is done, or until deadline (ns of
 * CLOCK_MONOTONIC) for run.
 */
static void engine_run(struct engine *e, int port, uint64_t deadline)
{
    e->epfd = epoll_create1(0);
    if (e->epfd < 0)
        die("epoll_create1", "");
    uint64_t start = now_ns();
    for (int i = 0; i < e->nconns; i++) {
        struct conn *c = &e->conns[i];
        c->fd = connect_port(port); /* blocking connect: the server is up */
        if (c->fd < 0)
            die("cannot connect to the server%s", "");
        if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0)
            die("fcntl", "");
        c->rng = start ^ ((uint64_t)i << 32) ^ 0x5eed;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
            die("epoll_ctl", "");
    }
    uint64_t now = now_ns();
    for (int i = 0; i < e->nconns; i++) {
        queue_requests(e, &e->conns[i], now);
        if (!flush_out(e, &e->conns[i]))
            die("write", "");
    }
    uint64_t last_progress = now, last_done = 0;
    struct epoll_event evs[256];
    for (;;) {
        if (e->fill && e->done >= e->count)
            return;
        if (deadline && now >= deadline)
            return;
        int n = epoll_wait(e->epfd, evs, 256, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait", "");
        now = now_ns();
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if ((evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !read_replies(e, c, deadline))
                die("the server closed a connection%s", "");
            if ((evs[k].events & EPOLLOUT) && !flush_out(e, c))
                die("write", "");
            queue_requests(e, c, now);
            if (!flush_out(e, c))
                die("write", "");
        }
        if (e->done != last_done) {
            last_done = e->done;
            last_progress = now;
        } else if (now - last_progress > (uint64_t)STALL_MS * 1000000u) {
            errno = 0;
            die("no response for 10 s%s", "");
        }
    }
}

/* ---- modes -------------------------------------------------------------- */

static struct conn *new_conns(int n)
{
    struct conn *c = calloc((size_t)n, sizeof *c);
    if (c == NULL)
        die("out of memory%s", "");
    return c;
}

static int mode_fill(enum proto p, int port, unsigned count)
{
    if (p == RESP) { /* to stdout, for redis-cli --pipe */
        static char buf[1 << 20];
        size_t len = 0;
        unsigned char value[VALUE_BYTES];
        for (unsigned i = 0; i < count; i++) {
            fill_value(value, i);
            len += format_set(buf + len, RESP, i, value);
            if (sizeof buf - len < MAX_REQUEST || i + 1 == count) {
                if (fwrite(buf, 1, len, stdout) != len)
                    die("writing to stdout%s", "");
                len = 0;
            }
        }
        return fflush(stdout) == 0 ? 0 : die("writing to stdout%s", "");
    }
    struct engine e = {
        .proto = p, .conns = new_conns(1), .nconns = 1, .depth = FILL_DEPTH, .fill = true, .count = count};
    uint64_t start = now_ns();
    engine_run(&e, port, 0);
    double secs = (now_ns() - start) / 1e9;
    printf("loaded %u in %.2f s (%.0f req/s)\n", count, secs, count / (secs > 0 ? secs : 1e-9));
    return 0;
}

static int mode_run(enum proto p, int port, int conns, int secs, unsigned keys, unsigned set_percent)
{
    struct engine e = {
        .proto = p, .conns = new_conns(conns), .nconns = conns, .depth = 1, .keys = keys, .set_percent = set_percent};
    e.hist = calloc(HIST_BUCKETS, sizeof *e.hist);
    if (e.hist == NULL)
        die("out of memory%s", "");
    engine_run(&e, port, now_ns() + (uint64_t)secs * 1000000000u);
    printf("requests %llu seconds %d rps %.0f p50_ms %.3f p99_ms %.3f max_ms %.3f errors %llu misses %llu\n",
           (unsigned long long)e.done, secs, e.done / (double)secs, hist_quantile(&e, 0.5), hist_quantile(&e, 0.99),
           e.max_ns / 1e6, (unsigned long long)e.errors, (unsigned long long)e.misses);
    return 0;
}

/* Prints the reply on one line: control characters become spaces. */
static void print_line(const char *s)
{
    for (; *s; s++)
        putchar((unsigned char)*s < 32 ? ' ' : *s);
    putchar('\n');
}

static int mode_call(enum proto p, int port, const char *cmd)
{
    char req[1024], reply[65536];
    size_t len = format_command(req, sizeof req, p, cmd);
    int fd = connect_port(port), status = 0;
    if (fd < 0)
        die("cannot connect to the server%s", "");
    uint64_t start = now_ns();
    if (!roundtrip(fd, p, req, len, 550000, &status, reply, sizeof reply))
        die("no answer to '%s'", cmd);
    printf("%.1f %d ", (now_ns() - start) / 1e6, status);
    print_line(reply);
    close(fd);
    return 0;
}

enum probe { PROBE_HTTP, PROBE_REDIS, PROBE_PING };

/* One readiness check on fd: 1 ready, 0 not yet, -1 the connection failed. */
static int probe_once(int fd, enum probe kind, uint64_t deadline)
{
    char req[256], reply[16384];
    int status = 0, timeout_ms = (int)((deadline - now_ns()) / 1000000u) + 1;
    enum proto p = kind == PROBE_HTTP ? HTTP : RESP;
    size_t len = format_command(req, sizeof req, p, kind == PROBE_HTTP ? "GET /health" : "PING");
    if (!roundtrip(fd, p, req, len, timeout_ms, &status, reply, sizeof reply))
        return -1;
    if (kind == PROBE_HTTP)
        return status == 200;
    if (strncmp(reply, "+PONG", 5) != 0)
        return 0; /* -LOADING */
    if (kind == PROBE_PING)
        return 1;
    len = format_command(req, sizeof req, RESP, "INFO persistence");
    if (!roundtrip(fd, RESP, req, len, timeout_ms, &status, reply, sizeof reply))
        return -1;
    return strstr(reply, "loading:0") != NULL;
}

/* Whether process pid still runs (a zombie does not). */
static bool alive(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *state = strrchr(buf, ')');
    return state != NULL && state[1] == ' ' && state[2] != 'Z' && state[2] != 'X';
}

static int mode_ready(enum probe kind, int port, int timeout_s, double t0, long pid)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_s * 1000000000u;
    while (now_ns() < deadline) {
        if (pid > 0 && !alive(pid)) {
            errno = 0;
            die("the server exited before it was ready%s", "");
        }
        int fd = connect_port(port);
        if (fd < 0) {
            sleep_ms(1);
            continue;
        }
        int r;
        while ((r = probe_once(fd, kind, deadline)) == 0 && now_ns() < deadline)
            sleep_ms(1);
        close(fd);
        if (r == 1) {
            printf("%.1f\n", (wall_s() - t0) * 1000);
            return 0;
        }
        sleep_ms(1);
    }
    errno = 0;
    return die("not ready within the timeout%s", "");
}

/* The number after "name" in text (JSON "name": or INFO name:), or -1. */
static double field(const char *text, const char *name)
{
    const char *at = strstr(text, name);
    if (at == NULL)
        return -1;
    at += strlen(name);
    while (*at == '"' || *at == ':')
        at++;
    return strtod(at, NULL);
}

static int mode_snaploop(enum probe kind, int port, int secs)
{
    char req[256], reply[65536], list[65536] = "";
    size_t list_len = 0;
    int fd = connect_port(port), status = 0, count = 0;
    if (fd < 0)
        die("cannot connect to the server%s", "");
    uint64_t end = now_ns() + (uint64_t)secs * 1000000000u;
    while (now_ns() < end) {
        uint64_t start = now_ns();
        double ms;
        if (kind == PROBE_HTTP) {
            size_t len = format_command(req, sizeof req, HTTP, "POST /snapshot");
            if (!roundtrip(fd, HTTP, req, len, 300000, &status, reply, sizeof reply))
                die("no answer to POST /snapshot%s", "");
            if (status == 409) {
                sleep_ms(1);
                continue;
            }
            if (status != 200) {
                errno = 0;
                die("POST /snapshot failed: %s", reply);
            }
            ms = field(reply, "milliseconds");
        } else {
            size_t len = format_command(req, sizeof req, RESP, "BGSAVE");
            if (!roundtrip(fd, RESP, req, len, 10000, &status, reply, sizeof reply))
                die("no answer to BGSAVE%s", "");
            if (status != 0) { /* one already runs */
                sleep_ms(2);
                continue;
            }
            len = format_command(req, sizeof req, RESP, "INFO persistence");
            for (;;) {
                sleep_ms(2);
                if (!roundtrip(fd, RESP, req, len, 10000, &status, reply, sizeof reply))
                    die("no answer to INFO%s", "");
                if (strstr(reply, "rdb_bgsave_in_progress:0"))
                    break;
                if (now_ns() - start > 300000000000u)
                    die("BGSAVE still running after 300 s%s", "");
            }
            if (strstr(reply, "rdb_last_bgsave_status:ok") == NULL) {
                errno = 0;
                die("BGSAVE failed: %s", reply);
            }
            ms = (now_ns() - start) / 1e6;
        }
        count++;
        if (list_len < sizeof list - 32)
            list_len += (size_t)snprintf(list + list_len, sizeof list - list_len, "%s%.0f", count > 1 ? "," : "", ms);
    }
    printf("snapshots %d ms %s\n", count, count ? list : "-");
    close(fd);
    return 0;
}

static enum proto parse_proto(const char *s)
{
    if (strcmp(s, "http") == 0)
        return HTTP;
    if (strcmp(s, "resp") == 0)
        return RESP;
    errno = 0;
    return (enum proto)die("protocol must be http or resp, not '%s'", s);
}

static enum probe parse_probe(const char *s)
{
    if (strcmp(s, "http") == 0)
        return PROBE_HTTP;
    if (strcmp(s, "redis") == 0)
        return PROBE_REDIS;
    if (strcmp(s, "ping") == 0)
        return PROBE_PING;
    errno = 0;
    return (enum probe)die("probe must be http, redis or ping, not '%s'", s);
}

static long number(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        errno = 0;
        die("'%s' is not a number in range", s);
    }
    return v;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "fill") == 0 && argc == 5) {
        alarm(300);
        enum proto p = parse_proto(argv[2]);
        return mode_fill(p, p == HTTP ? (int)number(argv[3], 1, 65535) : 0, (unsigned)number(argv[4], 1, 100000000));
    }
    if (strcmp(mode, "run") == 0 && argc == 8) {
        int secs = (int)number(argv[5], 1, 3600);
        alarm((unsigned)secs + 30);
        return mode_run(parse_proto(argv[2]), (int)number(argv[3], 1, 65535), (int)number(argv[4], 1, MAX_CONNS), secs,
                        (unsigned)number(argv[6], 1, 1000000000), (unsigned)number(argv[7], 0, 100));
    }
    if (strcmp(mode, "call") == 0 && argc == 5) {
        alarm(600);
        return mode_call(parse_proto(argv[2]), (int)number(argv[3], 1, 65535), argv[4]);
    }
    if (strcmp(mode, "ready") == 0 && (argc == 6 || argc == 7)) {
        int timeout = (int)number(argv[4], 1, 3600);
        alarm((unsigned)timeout + 5);
        return mode_ready(parse_probe(argv[2]), (int)number(argv[3], 1, 65535), timeout, strtod(argv[5], NULL),
                          argc == 7 ? number(argv[6], 1, 1L << 30) : 0);
    }
    if (strcmp(mode, "snaploop") == 0 && argc == 5) {
        int secs = (int)number(argv[4], 1, 3600);
        alarm((unsigned)secs + 330);
        return mode_snaploop(parse_probe(argv[2]), (int)number(argv[3], 1, 65535), secs);
    }
    fprintf(stderr, "usage: kvload fill http PORT COUNT | fill resp - COUNT\n"
                    "       kvload run http|resp PORT CONNS SECONDS KEYS SET_PERCENT\n"
                    "       kvload call http|resp PORT 'METHOD PATH' | 'COMMAND ARGS'\n"
                    "       kvload ready http|redis|ping PORT TIMEOUT_S T0 [PID]\n"
                    "       kvload snaploop http|redis PORT SECONDS\n");
    return 2;
}
