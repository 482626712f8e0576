/*
 * The response log (see contract.h). Lines are built with jansson and
 * written with one write(2) each on an O_APPEND descriptor, under a mutex, so
 * the threads of a stress test never interleave their lines. A body that is
 * not UTF-8 cannot be a JSON string: the line says so instead, and the check
 * fails it if the response claimed to be JSON.
 */
#include "contract.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -2; /* -2: not opened yet; -1: no log */

static int log_open(void)
{
    if (log_fd == -2) {
        const char *path = getenv("CACHETTE_TEST_RESPONSE_LOG");
        log_fd = path != NULL && path[0] != '\0' ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
        if (path != NULL && path[0] != '\0' && log_fd < 0)
            abort(); /* asked for a log that cannot be written: the check would pass on nothing */
    }
    return log_fd;
}

/* The response's headers as an object of lower-cased names (the last of a repeated one wins). */
static json_t *headers_object(const char *head, size_t len)
{
    json_t *obj = json_object();
    const char *p = head, *end = head + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol != NULL ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon != NULL && colon > p && memcmp(p, "HTTP/", 5) != 0) {
            char name[64];
            size_t n = (size_t)(colon - p) < sizeof(name) - 1 ? (size_t)(colon - p) : sizeof(name) - 1;
            for (size_t i = 0; i < n; i++)
                name[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
            name[n] = '\0';
            const char *v = colon + 1, *v_end = line_end;
            while (v < v_end && (*v == ' ' || *v == '\t'))
                v++;
            while (v_end > v && (v_end[-1] == '\r' || v_end[-1] == ' '))
                v_end--;
            json_t *value = json_stringn(v, (size_t)(v_end - v));
            if (value != NULL)
                json_object_set_new(obj, name, value);
        }
        p = line_end + 1;
    }
    return obj;
}

/* Text as a JSON string, its bytes outside printable ASCII written %XX: a path may carry any byte. */
static json_t *ascii_string(const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(text), n = 0;
    char *out = malloc(len * 3 + 1);
    if (out == NULL)
        abort();
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c < 0x7f) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    json_t *s = json_stringn(out, n);
    free(out);
    return s;
}

void contract_record(const char *method, const char *path, const char *accept, long status, const char *head,
                     size_t head_len, const char *body, size_t body_len)
{
    pthread_mutex_lock(&log_lock);
    if (log_open() < 0) {
        pthread_mutex_unlock(&log_lock);
        return;
    }
    json_t *headers = headers_object(head, head_len);
    const char *type = json_string_value(json_object_get(headers, "content-type"));
    json_t *line =
        json_pack("{s:o, s:o, s:o, s:I, s:o, s:I}", "method", method ? ascii_string(method) : json_null(), "path",
                  path ? ascii_string(path) : json_null(), "accept", accept ? ascii_string(accept) : json_null(),
                  "status", (json_int_t)status, "headers", headers, "body_bytes", (json_int_t)body_len);
    if (line == NULL)
        abort();
    if (type != NULL && strncasecmp(type, "application/json", 16) == 0 && body_len > 0) {
        json_t *text = json_stringn(body, body_len);
        json_object_set_new(line, text != NULL ? "body" : "body_not_utf8", text != NULL ? text : json_true());
    }
    char *out = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    if (out == NULL)
        abort();
    size_t n = strlen(out);
    out[n] = '\n'; /* replaces the NUL: the line is written with its length */
    if (write(log_fd, out, n + 1) != (ssize_t)(n + 1))
        abort();
    free(out);
    pthread_mutex_unlock(&log_lock);
}
