/*
 * load: fill a cachette server with N entries as fast as one connection
 * allows, for the benchmark's preload and its memory figure.
 *
 * Usage: load PORT COUNT [FIRST]
 *
 * Sends COUNT pipelined `POST /cache` requests to 127.0.0.1:PORT over one
 * keep-alive connection, for keys FIRST..FIRST+COUNT-1. Key i is the 16-byte
 * string "key:%012u" and its value the 32-byte JSON string "v%031u" — the same
 * names bench/http/workload.lua generates, so the two agree on what is loaded.
 *
 * At most DEPTH requests are outstanding: the loop writes while under that
 * bound and reads whenever the socket is readable, so neither side can block
 * the other (writing everything before reading could deadlock once both
 * socket buffers fill). Responses are framed by their Content-Length; any
 * status other than 200 is an error. The whole run is bounded by an alarm.
 *
 * Prints "loaded COUNT in SECONDS s (RATE req/s)" and exits 0, or prints why
 * it failed on stderr and exits 1.
 */
#define _GNU_SOURCE
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

enum {
    DEPTH = 256,           /* requests in flight at most */
    OUT_CAP = 64 * 1024,   /* bytes of requests buffered for writing */
    IN_CAP = 256 * 1024,   /* bytes of responses buffered for parsing */
    TIME_LIMIT_S = 110,    /* the whole run, whatever happens */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
    fprintf(stderr, "load: %s: %s\n", what, errno ? strerror(errno) : "failed");
    return 1;
}

/* Appends the request for key i to buf; returns its length. */
static int format_request(char *buf, size_t cap, unsigned i)
{
    char body[96];
    int blen = snprintf(body, sizeof body, "{\"key\":\"key:%012u\",\"value\":\"v%031u\"}", i, i);
    return snprintf(buf, cap,
                    "POST /cache HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                    blen, body);
}

/*
 * Parses one complete response at the start of buf[0..len). Returns its
 * length, 0 when it is not complete yet, or -1 when it is malformed. Sets
 * *status to its status code.
 */
static long parse_response(const char *buf, size_t len, int *status)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL)
        return len > 16384 ? -1 : 0;
    size_t head = (size_t)(end - buf) + 4;
    if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(buf + 9);
    long body = -1;
    for (const char *p = buf; p < end;) {
        const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
        if (eol == NULL)
            break;
        if (eol - p > 15 && strncasecmp(p, "content-length:", 15) == 0)
            body = strtol(p + 15, NULL, 10);
        p = eol + 2;
    }
    if (body < 0)
        return -1;
    return head + (size_t)body <= len ? (long)(head + (size_t)body) : 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: load PORT COUNT [FIRST]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    unsigned count = (unsigned)strtoul(argv[2], NULL, 10);
    unsigned first = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 0;
    alarm(TIME_LIMIT_S);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return fail("socket");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return fail("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    static char out[OUT_CAP], in[IN_CAP];
    size_t out_len = 0, out_off = 0, in_len = 0;
    unsigned next = 0, done = 0;
    double start = now_s();

    while (done < count) {
        /* Queue requests while under the depth bound and the buffer has room. */
        while (next < count && next - done < DEPTH && OUT_CAP - out_len > 512) {
            out_len += (size_t)format_request(out + out_len, OUT_CAP - out_len, first + next);
            next++;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN | (out_off < out_len ? POLLOUT : 0)};
        int n = poll(&pfd, 1, 10000);
        if (n == 0) {
            fprintf(stderr, "load: no progress for 10 s (%u of %u done)\n", done, count);
            return 1;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail("poll");
        }
        if (pfd.revents & POLLOUT) {
            ssize_t w = write(fd, out + out_off, out_len - out_off);
            if (w < 0 && errno != EAGAIN && errno != EINTR)
                return fail("write");
            if (w > 0)
                out_off += (size_t)w;
            if (out_off == out_len)
                out_off = out_len = 0;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(fd, in + in_len, IN_CAP - in_len);
            if (r == 0) {
                fprintf(stderr, "load: server closed the connection (%u of %u done)\n", done, count);
                return 1;
            }
            if (r < 0 && errno != EAGAIN && errno != EINTR)
                return fail("read");
            if (r > 0)
                in_len += (size_t)r;
            size_t off = 0;
            for (;;) {
                int status = 0;
                long used = parse_response(in + off, in_len - off, &status);
                if (used < 0) {
                    fprintf(stderr, "load: malformed response\n");
                    return 1;
                }
                if (used == 0)
                    break;
                if (status != 200) {
                    fprintf(stderr, "load: key %u got HTTP %d: %.*s\n", first + done, status,
                            (int)used, in + off);
                    return 1;
                }
                off += (size_t)used;
                done++;
            }
            memmove(in, in + off, in_len - off);
            in_len -= off;
        }
    }
    double secs = now_s() - start;
    printf("loaded %u in %.2f s (%.0f req/s)\n", count, secs, count / (secs > 0 ? secs : 1e-9));
    close(fd);
    return 0;
}
