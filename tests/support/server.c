/*
 * The server under test as a child process (see server.h).
 *
 * The child is fork()ed and exec()ed with a prepared argv and envp, so
 * nothing but async-signal-safe calls run between the two. Its stdout is a
 * pipe: the first line, "cachette 0.1.0 listening on http://127.0.0.1:PORT
 * (...)", says it is ready and on which port (or ports: "http://… and
 * https://…"). Its stderr goes to a temporary
 * file, read back when a test wants the messages or when the exit status is
 * not 0 (then it holds the sanitizer's report), so logs do not interleave
 * with cmocka's output. PR_SET_PDEATHSIG kills the child if the test binary
 * dies first, and an atexit hook kills and removes whatever a failed test
 * (cmocka longjmps out of it) left, so no run leaves a server behind.
 *
 * Waiting is always bounded: poll() on the pipe with a deadline for the
 * ready line, and waitpid(WNOHANG) every few milliseconds for the exit.
 */
#define _GNU_SOURCE
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 30000
#define MAX_ARGS         64
#define MAX_ENV          512

extern char **environ;

/* ---- time ---------------------------------------------------------------- */

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

unsigned free_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return 0;
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        close(fd);
        return 0;
    }
    close(fd);
    return ntohs(addr.sin_port);
}

/* ---- spawning ------------------------------------------------------------ */

/*
 * Every child not yet reaped, by pid and stderr file, so that a test that
 * fails (cmocka longjmps out of it) leaves no process or file behind once
 * the binary exits. Copies, not pointers: the struct server may have lived
 * on the failed test's stack.
 */
static struct {
    pid_t pid;
    char stderr_path[64];
} live[64];

static void forget_all(void)
{
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
        if (live[i].pid > 0) {
            kill(live[i].pid, SIGKILL);
            waitpid(live[i].pid, NULL, 0);
        }
        if (live[i].stderr_path[0] != '\0')
            unlink(live[i].stderr_path);
        live[i].pid = 0;
        live[i].stderr_path[0] = '\0';
    }
}

static void remember(pid_t pid, const char *stderr_path)
{
    static int registered;
    if (!registered) {
        registered = 1;
        atexit(forget_all);
    }
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
        if (live[i].pid == 0 && live[i].stderr_path[0] == '\0') {
            live[i].pid = pid;
            snprintf(live[i].stderr_path, sizeof(live[i].stderr_path), "%s", stderr_path);
            return;
        }
    }
}

/* Marks pid reaped (pid > 0) or the stderr file removed (path not NULL). */
static void forget(pid_t pid, const char *stderr_path)
{
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
        if (pid > 0 && live[i].pid == pid)
            live[i].pid = 0;
        if (stderr_path != NULL && strcmp(live[i].stderr_path, stderr_path) == 0)
            live[i].stderr_path[0] = '\0';
    }
}

const char *server_binary(void)
{
    const char *bin = getenv("CACHETTE_BIN");
    return bin != NULL && bin[0] != '\0' ? bin : "build/cachette";
}

/* envp for the child: ours without CACHETTE_* (except CACHETTE_BIN is harmless, drop it too), plus extra. */
static int build_env(const char *const *extra, const char **envp, size_t cap)
{
    size_t n = 0;
    for (char **e = environ; *e != NULL; e++) {
        if (strncmp(*e, "CACHETTE_", 9) == 0)
            continue;
        if (n + 1 >= cap)
            return -1;
        envp[n++] = *e;
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        if (n + 1 >= cap)
            return -1;
        envp[n++] = extra[i];
    }
    envp[n] = NULL;
    return 0;
}

static int exit_code_of(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return -1;
}

/*
 * Forks and execs the binary with argv (argv[0] included) and envp; the
 * child's stdout goes to *out_fd (a pipe's read end) and its stderr to
 * err_fd; max_open_files, if not 0, is its RLIMIT_NOFILE (soft and hard).
 * Returns the pid, or -1.
 */
static pid_t spawn(const char **argv, const char **envp, int *out_fd, int err_fd, unsigned max_open_files)
{
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == -1) {
        close(out[0]);
        close(out[1]);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (devnull == -1 || dup2(devnull, 0) == -1 || dup2(out[1], 1) == -1 || dup2(err_fd, 2) == -1)
            _exit(127);
        struct rlimit files = {.rlim_cur = max_open_files, .rlim_max = max_open_files};
        if (max_open_files != 0 && setrlimit(RLIMIT_NOFILE, &files) != 0)
            _exit(127);
        execve(argv[0], (char *const *)argv, (char *const *)envp);
        static const char msg[] = "test support: cannot exec the server binary\n";
        ssize_t ignored = write(2, msg, sizeof(msg) - 1);
        (void)ignored;
        _exit(127);
    }
    close(out[1]);
    *out_fd = out[0];
    return pid;
}

static int make_stderr_file(char *path, size_t size)
{
    snprintf(path, size, "/tmp/cachette-test-stderr-XXXXXX");
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd == -1)
        path[0] = '\0';
    return fd;
}

static char *read_file_all(const char *path)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    FILE *f = path[0] != '\0' ? fopen(path, "r") : NULL;
    if (buf == NULL)
        abort();
    if (f != NULL) {
        size_t n;
        while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
            len += n;
            if (cap - len - 1 == 0) {
                cap *= 2;
                buf = realloc(buf, cap);
                if (buf == NULL)
                    abort();
            }
        }
        fclose(f);
    }
    buf[len] = '\0';
    return buf;
}

char *server_stderr(const struct server *s)
{
    return read_file_all(s->stderr_path);
}

static void print_stderr(const struct server *s, const char *why)
{
    char *text = server_stderr(s);
    fprintf(stderr, "--- cachette %s; its stderr:\n%s--- end of cachette's stderr\n", why, text);
    free(text);
}

/* Reads the child's stdout until a full line arrives or the deadline passes; returns 0 and the line, or -1. */
static int read_ready_line(int fd, int64_t deadline, char *line, size_t size)
{
    size_t len = 0;
    while (len + 1 < size) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t n = read(fd, line + len, 1); /* byte by byte: nothing after the line is consumed */
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1; /* EOF: the child exited */
        if (line[len] == '\n') {
            line[len] = '\0';
            return 0;
        }
        len++;
    }
    return -1;
}

/* The port of the " http://", " https://" or " redis://" URL (scheme) in the listening line, whatever its host; 0 if
 * none. */
static unsigned url_port(const char *line, const char *scheme)
{
    const char *at = strstr(line, scheme);
    if (at == NULL)
        return 0;
    at += strlen(scheme);
    if (*at == '[' && (at = strchr(at, ']')) == NULL) /* an IPv6 host */
        return 0;
    const char *colon = strchr(at, ':');
    return colon == NULL ? 0 : (unsigned)strtoul(colon + 1, NULL, 10);
}

int server_start(struct server *s, const struct server_opts *opts)
{
    static const struct server_opts none = {0};
    const char *argv[MAX_ARGS], *envp[MAX_ENV];
    size_t argc = 0;
    char line[512];

    if (opts == NULL)
        opts = &none;
    memset(s, 0, sizeof(*s));
    s->stdout_fd = -1;
    s->exit_status = -1;

    argv[argc++] = opts->binary != NULL ? opts->binary : server_binary();
    if (!opts->no_default_port) {
        argv[argc++] = "--port";
        argv[argc++] = "0";
    }
    if (!opts->no_default_threads) {
        argv[argc++] = "--threads";
        argv[argc++] = "2";
    }
    for (size_t i = 0; opts->args != NULL && opts->args[i] != NULL; i++) {
        if (argc + 1 >= MAX_ARGS) {
            fprintf(stderr, "test support: too many server flags\n");
            return -1;
        }
        argv[argc++] = opts->args[i];
    }
    argv[argc] = NULL;
    if (build_env(opts->env, envp, MAX_ENV) != 0) {
        fprintf(stderr, "test support: environment too large\n");
        return -1;
    }

    int err_fd = make_stderr_file(s->stderr_path, sizeof(s->stderr_path));
    if (err_fd == -1) {
        perror("test support: mkstemp");
        return -1;
    }
    s->pid = spawn(argv, envp, &s->stdout_fd, err_fd, opts->max_open_files);
    close(err_fd);
    if (s->pid == -1) {
        perror("test support: fork");
        s->pid = 0;
        server_cleanup(s);
        return -1;
    }
    remember(s->pid, s->stderr_path);

    if (read_ready_line(s->stdout_fd, now_ms() + READY_TIMEOUT_MS, line, sizeof(line)) != 0 ||
        strstr(line, "listening on ") == NULL) {
        /*
         * It exited (bad flags, port taken…) or hung: reap it, killing it if needed. A process that closed its
         * stdout may still be exiting (under valgrind, seconds): a SIGKILL then would hide its exit status.
         */
        int status = server_wait_exit(s, 10000);
        if (status == -1 && s->pid != 0) {
            kill(s->pid, SIGKILL);
            status = server_wait_exit(s, 2000);
        }
        s->exit_status = status;
        if (!opts->quiet) {
            char why[96];
            snprintf(why, sizeof(why), "did not print its listening line (exit status %d)", status);
            print_stderr(s, why);
        }
        return -1;
    }
    s->port = url_port(line, " http://");
    s->tls_port = url_port(line, " https://");
    s->resp_port = url_port(line, " redis://");
    if (s->port > 65535 || s->tls_port > 65535 || (s->port == 0 && s->tls_port == 0)) {
        fprintf(stderr, "test support: no port in the server's line: %s\n", line);
        kill(s->pid, SIGKILL);
        server_wait_exit(s, 2000);
        return -1;
    }
    return 0;
}

int server_start_args(struct server *s, ...)
{
    const char *args[MAX_ARGS];
    size_t n = 0;
    va_list ap;
    va_start(ap, s);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && n + 1 < MAX_ARGS;)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    struct server_opts opts = {.args = args};
    return server_start(s, &opts);
}

/* ---- stopping ------------------------------------------------------------ */

void server_signal(struct server *s, int sig)
{
    if (s->pid > 0)
        kill(s->pid, sig);
}

int server_pause(struct server *s, int timeout_ms)
{
    if (s->pid <= 0 || kill(s->pid, SIGSTOP) != 0)
        return -1;
    for (int64_t deadline = now_ms() + timeout_ms; now_ms() < deadline; sleep_ms(5)) {
        int wstatus;
        pid_t r = waitpid(s->pid, &wstatus, WNOHANG | WUNTRACED);
        if (r == s->pid && WIFSTOPPED(wstatus))
            return 0;
        if (r == s->pid) {
            forget(s->pid, NULL);
            s->exit_status = exit_code_of(wstatus);
            s->pid = 0;
            return -1;
        }
    }
    return -1;
}

int server_wait_exit(struct server *s, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    if (s->pid <= 0)
        return s->exit_status;
    for (;;) {
        int wstatus;
        pid_t r = waitpid(s->pid, &wstatus, WNOHANG);
        if (r == s->pid) {
            forget(s->pid, NULL);
            s->exit_status = exit_code_of(wstatus);
            s->pid = 0;
            return s->exit_status;
        }
        if (r == -1 && errno != EINTR) {
            forget(s->pid, NULL);
            s->pid = 0;
            return s->exit_status = -1;
        }
        if (now_ms() >= deadline)
            return -1;
        sleep_ms(5);
    }
}

int server_stop(struct server *s, int timeout_ms)
{
    if (s->pid <= 0)
        return s->exit_status;
    pid_t pid = s->pid;
    kill(pid, SIGTERM);
    int status = server_wait_exit(s, timeout_ms);
    if (s->pid != 0) {
        fprintf(stderr, "test support: cachette (pid %d) did not exit within %d ms of SIGTERM; killing it\n", (int)pid,
                timeout_ms);
        kill(pid, SIGKILL);
        server_wait_exit(s, 2000);
        s->exit_status = status = -1;
    }
    if (status != 0) {
        char why[64];
        snprintf(why, sizeof(why), "exited with status %d", status);
        print_stderr(s, why);
    }
    return status;
}

void server_cleanup(struct server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        server_wait_exit(s, 2000);
    }
    if (s->stdout_fd != -1) {
        close(s->stdout_fd);
        s->stdout_fd = -1;
    }
    if (s->stderr_path[0] != '\0') {
        unlink(s->stderr_path);
        forget(0, s->stderr_path);
        s->stderr_path[0] = '\0';
    }
}

void expect_clean_exit(struct server *s, int timeout_ms)
{
    int status = server_stop(s, timeout_ms);
    server_cleanup(s);
    assert_int_equal(status, 0);
}

void expect_all_clean_exit(struct server *s, size_t n, int timeout_ms)
{
    for (size_t i = 0; i < n; i++)
        if (s[i].pid != 0) {
            server_signal(&s[i], SIGCONT);
            assert_int_equal(server_stop(&s[i], timeout_ms), 0);
        }
    for (size_t i = 0; i < n; i++)
        server_cleanup(&s[i]);
}

/* ---- running the binary to completion ------------------------------------ */

static void slurp_fd(int fd, char **buf, size_t *len, size_t *cap)
{
    for (;;) {
        if (*cap - *len < 4096) {
            *cap = *cap * 2 + 4096;
            *buf = realloc(*buf, *cap);
            if (*buf == NULL)
                abort();
        }
        ssize_t n = read(fd, *buf + *len, *cap - *len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        *len += (size_t)n;
    }
    (*buf)[*len] = '\0';
}

int run_binary(const char *const *args, const char *const *env, int timeout_ms, char **out, char **err)
{
    const char *argv[MAX_ARGS], *envp[MAX_ENV];
    size_t argc = 0;
    struct server s = {.stdout_fd = -1, .exit_status = -1};

    argv[argc++] = server_binary();
    for (size_t i = 0; args != NULL && args[i] != NULL && argc + 1 < MAX_ARGS; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    *out = NULL;
    *err = NULL;
    if (build_env(env, envp, MAX_ENV) != 0)
        return -1;
    int err_fd = make_stderr_file(s.stderr_path, sizeof(s.stderr_path));
    if (err_fd == -1)
        return -1;
    s.pid = spawn(argv, envp, &s.stdout_fd, err_fd, 0);
    close(err_fd);
    if (s.pid == -1) {
        s.pid = 0;
        server_cleanup(&s);
        return -1;
    }
    remember(s.pid, s.stderr_path);

    /* Drain stdout while waiting, so a long --help cannot block on a full pipe. */
    size_t len = 0, cap = 0;
    int64_t deadline = now_ms() + timeout_ms;
    fcntl(s.stdout_fd, F_SETFL, O_NONBLOCK);
    int status = -1;
    for (;;) {
        slurp_fd(s.stdout_fd, out, &len, &cap);
        status = server_wait_exit(&s, 0);
        if (s.pid == 0)
            break;
        if (now_ms() >= deadline) {
            kill(s.pid, SIGKILL);
            server_wait_exit(&s, 2000);
            status = -1;
            break;
        }
        struct pollfd p = {.fd = s.stdout_fd, .events = POLLIN};
        poll(&p, 1, 10);
    }
    slurp_fd(s.stdout_fd, out, &len, &cap);
    *err = server_stderr(&s);
    server_cleanup(&s);
    return status;
}

/* ---- cmocka group fixtures ----------------------------------------------- */

struct server group_server = {.stdout_fd = -1};
const char *const *group_server_args;
static int teardown_failures;

int group_server_setup(void **state)
{
    (void)state;
    struct server_opts opts = {.args = group_server_args};
    if (server_start(&group_server, &opts) != 0) {
        fprintf(stderr, "test support: the group's server did not start (%s)\n", server_binary());
        teardown_failures++;
        return -1;
    }
    return 0;
}

int group_server_teardown(void **state)
{
    (void)state;
    int status = server_stop(&group_server, 15000);
    server_cleanup(&group_server);
    if (status != 0) {
        fprintf(stderr, "test support: the group's server exited with status %d, not 0\n", status);
        teardown_failures++;
        return -1;
    }
    return 0;
}

int support_exit_code(int cmocka_result)
{
    if (teardown_failures > 0) {
        int failed = (cmocka_result > 0 ? cmocka_result : 0) + 1;
        printf("[  FAILED  ] %d test(s), counting the group's fixture: its server did not start, or did not "
               "exit 0 on SIGTERM\n",
               failed);
        fflush(stdout);
        return failed;
    }
    return cmocka_result;
}
