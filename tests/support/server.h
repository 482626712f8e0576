/*
 * Black-box test support: the real cachette binary as a child process on a
 * free loopback port, and the cmocka group fixtures that start and stop it.
 * HTTP through libcurl is in http.h, raw sockets in raw.h.
 *
 * Every wait here has a hard deadline and every socket is on 127.0.0.1. A
 * server that exits non-zero (a crash, or a sanitizer report: ASan exits 23)
 * fails the test or the group that stopped it. Helpers whose names start
 * with expect_ use cmocka assertions and so may only be called from a test.
 */
#ifndef CACHETTE_TESTS_SUPPORT_SERVER_H
#define CACHETTE_TESTS_SUPPORT_SERVER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/types.h>

/* ---- the server process ------------------------------------------------- */

struct server {
    pid_t pid;            /* 0 once reaped */
    unsigned port;        /* plain HTTP, from the "listening on" line; 0 if it serves HTTPS only */
    unsigned tls_port;    /* HTTPS, likewise; 0 without --tls-cert */
    unsigned resp_port;   /* the Redis protocol (redis://), likewise; 0 without --resp-port */
    int stdout_fd;        /* read end of the child's stdout, or -1 */
    char stderr_path[64]; /* the child's stderr, captured in a temporary file */
    int exit_status;      /* after reaping: the exit code, or 128 + signal */
};

struct server_opts {
    const char *const *args; /* NULL-terminated flags appended after the defaults (later flags win) */
    const char *const *env;  /* NULL-terminated NAME=VALUE added to the child's environment */
    int no_default_port;     /* leave out "--port 0" (to test CACHETTE_PORT) */
    int no_default_threads;  /* leave out "--threads 2" (to test CACHETTE_THREADS) */
    int quiet;               /* a failure to start is expected: do not print the server's stderr */
    unsigned max_open_files; /* if not 0, the child's RLIMIT_NOFILE, soft and hard */
    const char *binary;      /* NULL: server_binary() */
};

/* The binary under test: $CACHETTE_BIN, or build/cachette. */
const char *server_binary(void);

/*
 * Starts the binary with "--port 0 --threads 2" and then opts->args (opts may
 * be NULL), with every inherited CACHETTE_* variable removed and opts->env
 * added, and waits at most 30 s for its "listening on" line. Returns 0 with
 * s->port and s->tls_port set, or -1 after printing why (the process is reaped, and its exit
 * status is in s->exit_status when it exited by itself).
 */
int server_start(struct server *s, const struct server_opts *opts);

/* server_start with the NULL-terminated flags given as arguments. */
int server_start_args(struct server *s, ...);

/*
 * Sends SIGTERM and waits at most timeout_ms for the exit (then SIGKILL).
 * Returns the exit status (128 + signal if killed by one, -1 if it had to be
 * killed); a non-zero status prints the server's stderr.
 */
int server_stop(struct server *s, int timeout_ms);

/* Sends sig to the server (SIGTERM, SIGINT…) without waiting. */
void server_signal(struct server *s, int sig);

/*
 * Sends SIGSTOP and waits at most timeout_ms until the process has stopped,
 * every thread of it (kill() returns before that: a thread running on
 * another core may still answer a request or two). Returns 0 once stopped,
 * -1 otherwise (if it exited instead, it is reaped as server_wait_exit does).
 * SIGCONT (server_signal) resumes it.
 */
int server_pause(struct server *s, int timeout_ms);

/* Waits at most timeout_ms for the process to exit. Returns its status as server_stop does, or -1 on timeout. */
int server_wait_exit(struct server *s, int timeout_ms);

/* The captured stderr so far (malloc'ed, NUL-terminated; never NULL). */
char *server_stderr(const struct server *s);

/* Kills (if needed), reaps and removes temporary files; safe to call twice. */
void server_cleanup(struct server *s);

/*
 * Runs the binary with argv (NULL-terminated, without the program name) and
 * env (NULL-terminated NAME=VALUE, may be NULL), waits at most timeout_ms and
 * collects stdout and stderr (malloc'ed, NUL-terminated). Returns the exit
 * status, 128 + signal, or -1 if it had to be killed at the deadline.
 */
int run_binary(const char *const *argv, const char *const *env, int timeout_ms, char **out, char **err);

/* ---- cmocka group fixtures ---------------------------------------------- */

/*
 * The group's server. group_server_setup starts it with the flags in
 * group_server_args (NULL-terminated, may be NULL); group_server_teardown
 * stops it and fails unless it exits 0. Tests read the port from
 * group_server.port.
 */
extern struct server group_server;
extern const char *const *group_server_args;
int group_server_setup(void **state);
int group_server_teardown(void **state);

/*
 * Returns the binary's exit code: cmocka's result, or 1 (with a cmocka-style
 * "[  FAILED  ]" line that tests/run.sh counts) when a group teardown failed,
 * which cmocka 1.1 reports but does not count.
 */
int support_exit_code(int cmocka_result);

/* Asserts that the server stops on SIGTERM within timeout_ms and exits 0. */
void expect_clean_exit(struct server *s, int timeout_ms);

/*
 * The same for each of the n servers still running (pid not 0), each sent
 * SIGCONT first in case a test stopped it; then cleans up all n.
 */
void expect_all_clean_exit(struct server *s, size_t n, int timeout_ms);

/* ---- time ----------------------------------------------------------------- */

int64_t now_ms(void);

/* Sleeps ms milliseconds (for bounded polling loops). */
void sleep_ms(int ms);

/* A port that was free a moment ago (bound to 127.0.0.1:0 and released). */
unsigned free_port(void);

#endif
