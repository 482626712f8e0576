/*
 * Raw TCP to the server under test (see raw.h). Sockets carry a 2 s send
 * timeout (which also bounds connect on Linux) and every read is a poll()
 * against a deadline, so a server that never answers costs a test at most
 * its timeout. The response parser understands exactly what cachette sends:
 * HTTP/1.x heads and bodies sized by Content-Length.
 */
#define _GNU_SOURCE
#include "raw.h"
#include "contract.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "server.h"

int raw_try_connect(unsigned port)
{
    struct sockaddr_in addr = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 2};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int raw_connect(unsigned port)
{
    int fd = raw_try_connect(port);
    if (fd == -1)
        fail_msg("connect to 127.0.0.1:%u: %s", port, strerror(errno));
    return fd;
}

int raw_send(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void raw_close_with_reset(int fd)
{
    struct linger abort_close = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
    close(fd);
}

int raw_read_once(int fd, int timeout_ms, char **buf, size_t *len)
{
    int64_t deadline = now_ms() + timeout_ms;
    char chunk[16384];
    if (*buf == NULL) {
        *buf = calloc(1, 1);
        *len = 0;
        if (*buf == NULL)
            abort();
    }
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n <= 0)
            return 1; /* closed, or reset */
        char *grown = realloc(*buf, *len + (size_t)n + 1);
        if (grown == NULL)
            abort();
        memcpy(grown + *len, chunk, (size_t)n);
        *len += (size_t)n;
        grown[*len] = '\0';
        *buf = grown;
        return 0;
    }
}

int raw_read(int fd, const char *stop, int timeout_ms, char **buf, size_t *len)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if (*buf != NULL && stop != NULL && memmem(*buf, *len, stop, strlen(stop)) != NULL)
            return 0;
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        if (raw_read_once(fd, (int)left, buf, len))
            return 1;
    }
}

char *raw_exchange(unsigned port, const void *req, size_t req_len, int timeout_ms, size_t *len, int *closed)
{
    char *buf = NULL;
    size_t n = 0;
    int fd = raw_connect(port);
    if (raw_send(fd, req, req_len) != 0) {
        /* The server may answer and close before reading everything; read what it sent. */
    }
    int c = raw_read(fd, NULL, timeout_ms, &buf, &n);
    close(fd);
    if (len != NULL)
        *len = n;
    if (closed != NULL)
        *closed = c;
    return buf;
}

/* ---- parsing responses --------------------------------------------------- */

static const char *find_header(const char *head, size_t head_len, const char *name, size_t *value_len)
{
    size_t name_len = strlen(name);
    const char *p = memchr(head, '\n', head_len), *end = head + head_len; /* skip the status line */
    while (p != NULL && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol != NULL ? eol : end;
        if ((size_t)(line_end - p) > name_len && strncasecmp(p, name, name_len) == 0 && p[name_len] == ':') {
            const char *v = p + name_len + 1;
            while (v < line_end && (*v == ' ' || *v == '\t'))
                v++;
            const char *v_end = line_end;
            while (v_end > v && (v_end[-1] == '\r' || v_end[-1] == ' '))
                v_end--;
            *value_len = (size_t)(v_end - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

size_t raw_parse(const char *buf, size_t len, struct raw_res *out, size_t max, unsigned head_mask)
{
    size_t count = 0, at = 0, request = 0;
    while (count < max && at < len) {
        const char *start = buf + at;
        const char *blank = memmem(start, len - at, "\r\n\r\n", 4);
        if (blank == NULL || len - at < 12 || memcmp(start, "HTTP/1.", 7) != 0)
            break;
        struct raw_res *r = &out[count];
        r->head = start;
        r->head_len = (size_t)(blank - start) + 2;
        r->status = atoi(start + 9);
        r->body = blank + 4;
        r->body_len = 0;
        size_t vlen;
        const char *cl = find_header(r->head, r->head_len, "Content-Length", &vlen);
        int is_head = request < 32 && ((head_mask >> request) & 1u);
        if (r->status >= 200 && r->status != 204 && r->status != 304 && !is_head && cl != NULL)
            r->body_len = strtoul(cl, NULL, 10);
        if ((size_t)(r->body - buf) + r->body_len > len)
            break; /* incomplete */
        at = (size_t)(r->body - buf) + r->body_len;
        count++;
        if (r->status >= 200)
            request++; /* an interim 100 Continue answers no request by itself */
    }
    return count;
}

const char *raw_header(const struct raw_res *r, const char *name, char *out, size_t size)
{
    size_t vlen;
    const char *v = find_header(r->head, r->head_len, name, &vlen);
    if (v == NULL)
        return NULL;
    if (vlen > size - 1)
        vlen = size - 1;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
    return out;
}

json_t *expect_raw_json(const struct raw_res *r, int status)
{
    char ct[128];
    if (r->status != status)
        fail_msg("expected status %d, got %d: %.*s", status, r->status, (int)(r->head_len + r->body_len), r->head);
    if (raw_header(r, "Content-Type", ct, sizeof(ct)) == NULL || strcmp(ct, "application/json") != 0)
        fail_msg("status %d: Content-Type is not application/json: %.*s", status, (int)r->head_len, r->head);
    contract_record(NULL, NULL, NULL, r->status, r->head, r->head_len, r->body, r->body_len);
    json_t *v = json_parse(r->body, r->body_len);
    if (!json_is_object(v)) {
        json_decref(v);
        fail_msg("status %d: the body is not a JSON object: %.*s", status, (int)r->body_len, r->body);
    }
    return v;
}

/*
 * One member of /stats, asked on a raw connection of its own and without
 * cmocka assertions: the value, or -1 when no 200 came back (a server at
 * --max-connections answers 503).
 */
json_int_t raw_stat(unsigned port, const char *name)
{
    return raw_stat_auth(port, NULL, name);
}

json_int_t raw_stat_auth(unsigned port, const char *token, const char *name)
{
    char req[512];
    int req_len = snprintf(req, sizeof(req), "GET /stats HTTP/1.1\r\nHost: t\r\n%s%s%sConnection: close\r\n\r\n",
                           token != NULL ? "Authorization: Bearer " : "", token != NULL ? token : "",
                           token != NULL ? "\r\n" : "");
    json_int_t value = -1;
    char *buf = NULL;
    size_t len = 0;
    struct raw_res r;
    if (req_len < 0 || (size_t)req_len >= sizeof(req))
        return -1;
    int fd = raw_try_connect(port);
    if (fd == -1)
        return -1;
    if (raw_send(fd, req, (size_t)req_len) == 0) {
        raw_read(fd, NULL, 3000, &buf, &len);
        if (raw_parse(buf, len, &r, 1, 0) == 1 && r.status == 200) {
            json_t *stats = json_loadb(r.body, r.body_len, 0, NULL);
            json_t *member = json_object_get(stats, name);
            if (json_is_integer(member))
                value = json_integer_value(member);
            json_decref(stats);
        }
    }
    free(buf);
    close(fd);
    return value;
}

/*
 * Polls /stats until the server counts at most want open connections (its
 * own request included), for up to timeout_ms.
 */
void expect_connections_drop_to(unsigned port, json_int_t want, int timeout_ms)
{
    expect_connections_drop_to_auth(port, NULL, want, timeout_ms);
}

void expect_connections_drop_to_auth(unsigned port, const char *token, json_int_t want, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    json_int_t open;
    while ((open = raw_stat_auth(port, token, "connections")) == -1 || open > want) {
        if (now_ms() >= deadline)
            fail_msg("the server counts %lld open connections after %d ms, expected at most %lld", (long long)open,
                     timeout_ms, (long long)want);
        sleep_ms(20);
    }
}

/* Sends a keep-alive GET /health on fd; returns 0 when a 200 came back. */
int raw_ping(int fd)
{
    static const char ping[] = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
    char *buf = NULL;
    size_t len = 0;
    struct raw_res r;
    int ok = raw_send(fd, ping, sizeof(ping) - 1) == 0;
    if (ok) {
        raw_read(fd, "{\"status\":\"ok\"}", 3000, &buf, &len);
        ok = raw_parse(buf, len, &r, 1, 0) == 1 && r.status == 200;
    }
    free(buf);
    return ok ? 0 : -1;
}
