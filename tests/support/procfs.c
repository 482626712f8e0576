/*
 * /proc readers (see procfs.h). Each call reads the files afresh: no state,
 * nothing cached, so a test can poll them in a loop while the server works.
 */
#define _GNU_SOURCE
#include "procfs.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

long procfs_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

int procfs_fd_count(pid_t pid)
{
    char path[64];
    int n = 0;
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

char *procfs_fd_list(pid_t pid)
{
    char dir_path[64], link_path[320], target[256];
    size_t len = 0, cap = 1024;
    char *out = malloc(cap);
    if (out == NULL)
        abort();
    out[0] = '\0';
    snprintf(dir_path, sizeof(dir_path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir_path);
    if (d == NULL)
        return out;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(link_path, sizeof(link_path), "%s/%s", dir_path, e->d_name);
        ssize_t n = readlink(link_path, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        size_t need = strlen(e->d_name) + strlen(target) + 6;
        if (len + need >= cap) {
            cap = (len + need) * 2;
            out = realloc(out, cap);
            if (out == NULL)
                abort();
        }
        len += (size_t)snprintf(out + len, cap - len, "%s -> %s\n", e->d_name, target);
    }
    closedir(d);
    return out;
}

int procfs_runs_under_valgrind(pid_t pid)
{
    char link[64], exe[4096];
    snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(link, exe, sizeof(exe) - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    return strstr(exe, "valgrind") != NULL;
}
