/* Leveled logging to stderr, which may be a log file (log.c). */
#ifndef CACHETTE_LOG_H
#define CACHETTE_LOG_H

/* LOG_LEVEL_, not LOG_: <syslog.h> defines LOG_INFO and LOG_DEBUG as macros, and a front may need it. */
enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN = 1, LOG_LEVEL_INFO = 2, LOG_LEVEL_DEBUG = 3 };

enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

/* Messages above this level are dropped. Set once, before threads start. */
void log_set_level(enum log_level level);

/*
 * TEXT: "<time> <level> <message>" lines. JSON: one object a line,
 * {"time":"<RFC 3339, ms>","level":"info","message":"..."}, the message's
 * bytes that are not UTF-8 replaced by '?'. Set once, before threads start.
 */
void log_set_format(enum log_format format);

/* Parses "text" or "json". Returns 0 or -1. */
int log_parse_format(const char *text, enum log_format *out);

/*
 * Sends the log (all of stderr) to path, appended, created if missing; call
 * it again to reopen after the file was rotated. Returns 0, or -1 with errno
 * set (the log stays where it was).
 */
int log_open_file(const char *path);

/* Parses "error", "warn", "info" or "debug". Returns 0 or -1. */
int log_parse_level(const char *text, enum log_level *out);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
