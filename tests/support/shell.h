/* Shell commands from tests: external tools such as h2load and openssl. */
#ifndef CACHETTE_TESTS_SUPPORT_SHELL_H
#define CACHETTE_TESTS_SUPPORT_SHELL_H

/*
 * Runs cmd through /bin/sh and collects its stdout (add 2>&1 for stderr too)
 * in *out (malloc'ed, NUL-terminated, never NULL). Returns the exit status,
 * or -1 if the shell could not run or was killed by a signal.
 */
int run_shell(const char *cmd, char **out);

/* Whether a program is on the PATH. */
int have_program(const char *name);

#endif
