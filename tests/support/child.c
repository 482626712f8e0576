/* Other programs as children of a test (see child.h): fork, exec, a bounded stop. */
#define _GNU_SOURCE
#include "child.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <sys/prctl.h>
#include <sys/wait.h>

#include "server.h"
#include "shell.h"

pid_t child_start(const char *const *argv, const char *log_path)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

int child_exited(pid_t *pid)
{
    if (*pid == 0 || waitpid(*pid, NULL, WNOHANG) != *pid)
        return *pid == 0;
    *pid = 0;
    return 1;
}

void child_stop(pid_t *pid, int timeout_ms)
{
    if (*pid == 0)
        return;
    kill(*pid, SIGTERM);
    for (int64_t deadline = now_ms() + timeout_ms; now_ms() < deadline; sleep_ms(10))
        if (child_exited(pid))
            return;
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = 0;
}

void child_print_log(const char *path, const char *title)
{
    char line[512];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    fprintf(stderr, "--- %s:\n", title);
    while (fgets(line, sizeof(line), f) != NULL)
        fputs(line, stderr);
    fclose(f);
}

void child_remove_dir(char *dir)
{
    if (dir[0] == '\0')
        return;
    char cmd[300], *out = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    run_shell(cmd, &out);
    free(out);
    dir[0] = '\0';
}
