/*
 * Logging: one line per message on stderr, with a UTC timestamp and the level,
 * as text or as a JSON object (--log-format json, for log shippers). Each line
 * is written with a single fprintf call, which stdio locks, so lines from
 * different threads never interleave. The level is set once at start-up,
 * before any worker thread exists, and only read afterwards.
 *
 * A log file is not a second stream: log_open_file() opens it for appending
 * and dup2()s it onto file descriptor 2, so our lines and anything a library
 * writes to stderr land in it alike. Reopening (SIGHUP, after logrotate has
 * moved the file away) does the same again; dup2 replaces descriptor 2 in one
 * step, so a line written meanwhile goes whole to the old file or the new
 * one. stderr is unbuffered, so no line is left behind in a stdio buffer.
 */
#include "log.h"

#include "cmd/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level max_level = LOG_LEVEL_INFO;
static enum log_format format = LOG_FORMAT_TEXT;
static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const format_names[] = {"text", "json"};

void log_set_level(enum log_level level)
{
    max_level = level;
}

void log_set_format(enum log_format f)
{
    format = f;
}

int log_parse_format(const char *text, enum log_format *out)
{
    for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
        if (strcmp(text, format_names[i]) == 0) {
            *out = (enum log_format)i;
            return 0;
        }
    }
    return -1;
}

/* text (UTF-8) as the inside of a JSON string: '"' and '\\' escaped, control characters as \u00XX. */
static void escape_json(const char *text, char *out, size_t size)
{
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)text; *c != '\0' && n + 7 < size; c++) {
        if (*c == '"' || *c == '\\')
            n += (size_t)snprintf(out + n, size - n, "\\%c", *c);
        else if (*c < 0x20)
            n += (size_t)snprintf(out + n, size - n, "\\u%04x", *c);
        else
            out[n++] = (char)*c;
    }
    out[n] = '\0';
}

int log_open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd == -1)
        return -1;
    int failed = dup2(fd, STDERR_FILENO) == -1;
    int saved = errno;
    close(fd);
    errno = saved;
    return failed ? -1 : 0;
}

int log_parse_level(const char *text, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level > max_level)
        return;
    char stamp[40], text[1024];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t len = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (format == LOG_FORMAT_TEXT) {
        fprintf(stderr, "%sZ %s %s\n", stamp, level_names[level], text);
        return;
    }
    char escaped[6 * sizeof(text)];
    snprintf(stamp + len, sizeof(stamp) - len, ".%03ldZ", now.tv_nsec / 1000000);
    utf8_scrub(text, strlen(text));
    escape_json(text, escaped, sizeof(escaped));
    fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"message\":\"%s\"}\n", stamp, level_names[level], escaped);
}
