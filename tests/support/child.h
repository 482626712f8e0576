/*
 * Other programs as children of a test (child.c): a balancer such as HAProxy,
 * nginx or twemproxy started with its output in a log file, stopped with a
 * bounded wait, and its log shown when a test fails. The cachette binary
 * itself is started by server.h, which also reads its ready line.
 */
#ifndef CACHETTE_TESTS_SUPPORT_CHILD_H
#define CACHETTE_TESTS_SUPPORT_CHILD_H

#include <sys/types.h>

/*
 * Starts argv[0] (looked up on the PATH) with argv (NULL-terminated), its
 * stdout and stderr appended to log_path, and SIGTERM sent to it if the test
 * binary dies first (a test killed at its timeout leaves nothing behind).
 * Returns the pid, or -1 if it could not fork; a program that cannot be run
 * exits 127.
 */
pid_t child_start(const char *const *argv, const char *log_path);

/*
 * Sends SIGTERM to *pid (nothing if 0), waits at most timeout_ms for it to
 * exit, then SIGKILLs it; reaps it either way and sets *pid to 0. SIGTERM
 * first: nginx's master stops its workers, which a SIGKILL would orphan.
 */
void child_stop(pid_t *pid, int timeout_ms);

/* Whether *pid has exited (reaped, then *pid is 0) without waiting. */
int child_exited(pid_t *pid);

/* Copies the file at path to stderr under "--- title:" (a child's log after a failure), if it can be read. */
void child_print_log(const char *path, const char *title);

/* Removes the directory dir and all below it, and empties dir (a test's temporary directory); nothing if dir is "". */
void child_remove_dir(char *dir);

#endif
