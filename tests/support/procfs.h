/*
 * The server under test seen from /proc (Linux): its resident memory and its
 * open file descriptors. Tests read them to show that the process neither
 * grows nor leaks while every response it sends looks right.
 */
#ifndef CACHETTE_TESTS_SUPPORT_PROCFS_H
#define CACHETTE_TESTS_SUPPORT_PROCFS_H

#include <sys/types.h>

/* The VmRSS of process pid in KiB, or -1 if it cannot be read (the process is gone). */
long procfs_rss_kb(pid_t pid);

/* How many file descriptors process pid has open, or -1 if they cannot be listed. */
int procfs_fd_count(pid_t pid);

/*
 * The open descriptors of pid, one "fd -> target" a line (malloc'ed,
 * NUL-terminated, never NULL; empty if they cannot be listed), for failure
 * messages.
 */
char *procfs_fd_list(pid_t pid);

/* Whether process pid runs under valgrind (make valgrind): its executable is then valgrind's tool. */
int procfs_runs_under_valgrind(pid_t pid);

#endif
