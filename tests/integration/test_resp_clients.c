/*
 * Node's mainstream Redis clients against the RESP port, with their default
 * options: ioredis 6 from npm (RESP3 by default, HELLO 3; then its ready
 * check, INFO with loading:0), again asking for RESP2; node-redis 4,
 * Debian's node-redis, over RESP2, the only protocol it speaks; and
 * node-redis 6 from npm, RESP3 by default. Each script in
 * tests/clients/ runs PING, SET/GET with EX, EXPIRE/TTL, INCR/INCRBY,
 * MSET/MGET, a SCAN with MATCH, a pipeline of 100 commands, DEL and a value
 * of bytes that are not text, and prints "ok"; run with "reconnect", it
 * connects, prints "connected", and prints "ok" once the client is back on a
 * server that was stopped and started again on the same port.
 *
 * The group setup installs the npm packages pinned in
 * tests/clients/package-lock.json into build/node-clients, once
 * (scripts/npm-ci.sh); scripts/deps.sh installs node, npm and
 * node-redis. Each run gets one folder on NODE_PATH: Debian's
 * /usr/share/nodejs for node-redis 4, npm's for the others, so npm's
 * @redis/client 6 cannot stand in for Debian's 1.4 (or the reverse).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../support/procfs.h"
#include "../support/server.h"
#include "../support/shell.h"

static const char *const server_flags[] = {"--resp-port", "0", NULL};

/*
 * Seconds a script may take (it says where it stopped when it runs out: see
 * tests/clients/common.js). Each takes about one on an idle machine; the
 * bound is for a sanitized server, or one under valgrind, on a loaded one.
 */
static int script_deadline_s(pid_t server)
{
    return getenv("CACHETTE_MEMCHECK") != NULL || procfs_runs_under_valgrind(server) ? 300 : 120;
}

/* Where npm's packages are: build/node-clients/node_modules, as an absolute path. */
static char npm_modules[1024];

/* Debian's node packages (node-redis), which Debian's node searches by itself and NodeSource's does not. */
#define DEBIAN_MODULES "/usr/share/nodejs"

/* Installs the npm packages (once for every variant), then starts the group's server. */
static int setup(void **state)
{
    char *out = NULL;
    int rc = run_shell("scripts/npm-ci.sh tests/clients build/node-clients 2>&1", &out);
    char *last = strrchr(out, '\n');
    if (last != NULL)
        *last = '\0'; /* the folder, on the last line */
    last = strrchr(out, '\n');
    const char *modules = last != NULL ? last + 1 : out;
    if (rc != 0 || modules[0] != '/' || strlen(modules) >= sizeof(npm_modules)) {
        fprintf(stderr, "scripts/npm-ci.sh failed (exit %d):\n%s\n", rc, out);
        free(out);
        return -1;
    }
    strcpy(npm_modules, modules);
    free(out);
    if (group_server_setup(state) != 0)
        return -1;
    char deadline[16];
    snprintf(deadline, sizeof(deadline), "%d", script_deadline_s(group_server.pid));
    setenv("CLIENT_DEADLINE_S", deadline, 1);
    return 0;
}

/* The one folder on NODE_PATH: Debian's for node-redis 4 (args "4…"), npm's for the rest. */
static const char *modules_of(const char *script, const char *args)
{
    return strcmp(script, "node-redis.js") == 0 && args[0] == '4' ? DEBIAN_MODULES : npm_modules;
}

/* Runs `node tests/clients/<script> <port> <args>` and asserts that it printed "ok" and nothing else. */
static void expect_script_ok(const char *script, unsigned port, const char *args)
{
    char cmd[2048], *out = NULL;
    /* The script's own deadline comes first; this one is for a node that hangs before it starts. */
    snprintf(cmd, sizeof(cmd), "NODE_PATH='%s' timeout -k 5 %d node tests/clients/%s %u %s 2>&1",
             modules_of(script, args), atoi(getenv("CLIENT_DEADLINE_S")) + 30, script, port, args);
    int rc = run_shell(cmd, &out);
    if (rc != 0 || strcmp(out, "ok\n") != 0)
        fail_msg("%s: exit %d\n%s", cmd, rc, out);
    free(out);
}

/* ioredis 6's defaults: RESP3. */
static void ioredis_defaults(void **state)
{
    (void)state;
    expect_script_ok("ioredis.js", group_server.resp_port, "default");
}

static void ioredis_resp2(void **state)
{
    (void)state;
    expect_script_ok("ioredis.js", group_server.resp_port, "2");
}

static void node_redis_4(void **state)
{
    (void)state;
    expect_script_ok("node-redis.js", group_server.resp_port, "4");
}

/* node-redis 6's defaults: RESP3. */
static void node_redis_6(void **state)
{
    (void)state;
    expect_script_ok("node-redis.js", group_server.resp_port, "6");
}

/* ---- reconnecting ----------------------------------------------------------- */

static char *read_all(const char *path)
{
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);
    FILE *f = fopen(path, "r");
    if (buf == NULL)
        abort();
    while (f != NULL && (n = fread(buf + len, 1, cap - len - 1, f)) > 0)
        if ((len += n) + 1 == cap && (buf = realloc(buf, cap *= 2)) == NULL)
            abort();
    buf[len] = '\0';
    if (f != NULL)
        fclose(f);
    return buf;
}

/* Starts cmd through /bin/sh in its own process group, stdout and stderr to out_path. Returns the pid. */
static pid_t start_script(const char *cmd, const char *out_path)
{
    pid_t pid = fork();
    assert_true(pid != -1);
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY), out = open(out_path, O_WRONLY | O_TRUNC);
        if (setpgid(0, 0) != 0 || in == -1 || out == -1 || dup2(in, 0) == -1 || dup2(out, 1) == -1 ||
            dup2(out, 2) == -1)
            _exit(127);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Reaps the script if it has exited: its exit status (128 + signal if a signal ended it), or -1 while it runs. */
static int script_exited(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, WNOHANG) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Kills the script's process group and reaps it. */
static void kill_script(pid_t pid)
{
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/*
 * The script connects to a server of its own, says "connected"; the server
 * is stopped and started again on the same port; the client must come back
 * by itself (the script waits for the client's "ready" again) and work.
 */
static void expect_reconnect(const char *script, const char *args)
{
    unsigned port = free_port();
    assert_true(port > 0);
    char port_text[16];
    snprintf(port_text, sizeof(port_text), "%u", port);
    struct server s = {0};
    assert_int_equal(server_start_args(&s, "--resp-port", port_text, (const char *)NULL), 0);
    int deadline_s = atoi(getenv("CLIENT_DEADLINE_S"));

    char out_path[] = "/tmp/cachette-node-XXXXXX", cmd[2048];
    int fd = mkstemp(out_path);
    assert_true(fd != -1);
    close(fd);
    snprintf(cmd, sizeof(cmd), "NODE_PATH='%s' exec node tests/clients/%s %u %s reconnect", modules_of(script, args),
             script, port, args);
    pid_t pid = start_script(cmd, out_path);
    char *out = NULL;
    int rc = -1;
    for (int64_t until = now_ms() + deadline_s * 1000; now_ms() < until; sleep_ms(20)) {
        free(out);
        out = read_all(out_path);
        if (strstr(out, "connected\n") != NULL || (rc = script_exited(pid)) != -1)
            break;
    }
    if (strstr(out, "connected\n") == NULL) {
        if (rc == -1)
            kill_script(pid);
        unlink(out_path);
        fail_msg("%s never connected (exit %d):\n%s", cmd, rc, out);
    }
    free(out);

    int stopped = server_stop(&s, 30000);
    server_cleanup(&s);
    int started = stopped == 0 ? server_start_args(&s, "--resp-port", port_text, (const char *)NULL) : -1;
    if (started != 0)
        kill_script(pid);
    assert_int_equal(stopped, 0);
    assert_int_equal(started, 0);

    /* The script's own deadline ends it; a little more for node to exit. */
    for (int64_t until = now_ms() + (deadline_s + 10) * 1000; rc == -1 && now_ms() < until; sleep_ms(20))
        rc = script_exited(pid);
    if (rc == -1)
        kill_script(pid);
    out = read_all(out_path);
    unlink(out_path);
    size_t len = strlen(out);
    if (rc != 0 || strncmp(out, "connected\n", 10) != 0 || len < 3 || strcmp(out + len - 3, "ok\n") != 0)
        fail_msg("%s: exit %d\n%s", cmd, rc, out);
    free(out);
    expect_clean_exit(&s, 30000);
    server_cleanup(&s);
}

static void ioredis_reconnects(void **state)
{
    (void)state;
    expect_reconnect("ioredis.js", "default");
}

static void node_redis_4_reconnects(void **state)
{
    (void)state;
    expect_reconnect("node-redis.js", "4");
}

static void node_redis_6_reconnects(void **state)
{
    (void)state;
    expect_reconnect("node-redis.js", "6");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ioredis_defaults),
        cmocka_unit_test(ioredis_resp2),
        cmocka_unit_test(node_redis_4),
        cmocka_unit_test(node_redis_6),
        cmocka_unit_test(ioredis_reconnects),
        cmocka_unit_test(node_redis_4_reconnects),
        cmocka_unit_test(node_redis_6_reconnects),
    };
    group_server_args = server_flags;
    return support_exit_code(cmocka_run_group_tests(tests, setup, group_server_teardown));
}
