/* Shell commands from tests (see shell.h): popen, read everything, pclose. */
#include "shell.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

int run_shell(const char *cmd, char **out)
{
    size_t len = 0, cap = 4096;
    *out = malloc(cap);
    if (*out == NULL)
        abort();
    (*out)[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    size_t n;
    while ((n = fread(*out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 1024) {
            cap *= 2;
            if ((*out = realloc(*out, cap)) == NULL)
                abort();
        }
    }
    (*out)[len] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int have_program(const char *name)
{
    char cmd[256], *out;
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
    int status = run_shell(cmd, &out);
    free(out);
    return status == 0;
}
