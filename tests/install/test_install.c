/*
 * make install and make uninstall, into a staging root (DESTDIR) with
 * PREFIX=/usr: the files land where they should, the installed server runs,
 * and a C program builds against the installed header and library through
 * pkg-config alone (PKG_CONFIG_SYSROOT_DIR points it into the root) and
 * stores, reads and counts an entry; the manual page renders without a
 * warning and lists every flag and variable --help does, and so does the
 * settings file; the systemd unit passes systemd-analyze verify (its
 * ExecStart pointed at the staged binary) and scores at most 2.0 on
 * systemd-analyze security. A second install keeps an edited settings
 * file. Then make uninstall leaves none of the files but that one. The build installed is the one under test: the directory of
 * $CACHETTE_BIN, passed to make as B.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../support/server.h"
#include "../support/shell.h"

static const char *const installed[] = {
    "/usr/bin/cachette",
    "/usr/lib/libcachette.a",
    "/usr/include/cachette/store.h",
    "/usr/lib/pkgconfig/cachette.pc",
    "/usr/share/man/man1/cachette.1",
    "/usr/lib/systemd/system/cachette.service",
    "/etc/default/cachette", /* the last: the one uninstall keeps */
};
#define NINSTALLED (sizeof(installed) / sizeof(installed[0]))

/* The embedder's program: only what pkg-config gives it. */
static const char program[] = "#include <stdio.h>\n"
                              "#include <stdlib.h>\n"
                              "#include <cachette/store.h>\n"
                              "static void *heap(void *ctx, size_t n) { (void)ctx; return malloc(n); }\n"
                              "int main(void) {\n"
                              "    struct store *s = store_create(&(struct store_config){.max_memory = 1 << 20});\n"
                              "    struct store_value v = {.kind = STORE_KIND_STRING, .data = \"hello\", .len = 5};\n"
                              "    struct store_item item;\n"
                              "    if (s == NULL || store_set(s, \"k\", 1, &v, NULL, NULL) != STORE_OK ||\n"
                              "        store_get(s, \"k\", 1, heap, NULL, &item) != STORE_OK)\n"
                              "        return 1;\n"
                              "    printf(\"%.*s %zu\\n\", (int)item.len, item.data, store_count(s));\n"
                              "    free(item.data);\n"
                              "    store_destroy(s);\n"
                              "    return 0;\n"
                              "}\n";

static void run_ok(const char *cmd, char **out)
{
    int rc = run_shell(cmd, out);
    if (rc != 0)
        fail_msg("%s: exit %d: %s", cmd, rc, *out);
}

/*
 * Every "--flag" line of the installed server's --help is an entry of the
 * rendered manual page's OPTIONS, and every variable is named there and is
 * a commented line of the settings file; groff has no warning about the page.
 */
static void expect_help_in_manual_and_settings(const char *root)
{
    char cmd[2 * PATH_MAX], *help, *page, *settings;
    snprintf(cmd, sizeof(cmd), "groff -man -Tascii -ww -z %s/usr/share/man/man1/cachette.1 2>&1", root);
    run_ok(cmd, &page);
    if (page[0] != '\0')
        fail_msg("groff warns about the manual page: %s", page);
    free(page);
    snprintf(cmd, sizeof(cmd), "MANWIDTH=300 LC_ALL=C man -l %s/usr/share/man/man1/cachette.1 2>&1", root);
    run_ok(cmd, &page);
    snprintf(cmd, sizeof(cmd), "cat %s/etc/default/cachette", root);
    run_ok(cmd, &settings);
    snprintf(cmd, sizeof(cmd), "%s/usr/bin/cachette --help", root);
    run_ok(cmd, &help);
    size_t flags = 0, vars = 0;
    for (char *line = strtok(help, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char name[64], want[80];
        if (sscanf(line, "  --%63[a-z0-9-]", name) == 1) {
            snprintf(want, sizeof(want), "\n       --%s", name);
            const char *at = strstr(page, want);
            if (at == NULL || (at[strlen(want)] != ' ' && at[strlen(want)] != '\n'))
                fail_msg("--%s is in --help but not an entry of the manual page", name);
            flags++;
        } else if (sscanf(line, " [env %63[A-Z0-9_]]", name) == 1) {
            snprintf(want, sizeof(want), "Environment: %s", name);
            if (strstr(page, want) == NULL)
                fail_msg("%s is in --help but not in the manual page", name);
            snprintf(want, sizeof(want), "\n#%s=", name);
            if (strstr(settings, want) == NULL)
                fail_msg("%s is in --help but not in /etc/default/cachette", name);
            vars++;
        }
    }
    assert_true(flags >= 30 && vars >= 30);
    free(help);
    free(page);
    free(settings);
}

/* systemd-analyze verify, with ExecStart pointed at the staged binary; then the sandbox's exposure score. */
static void expect_unit_verifies(const char *root)
{
    char cmd[4 * PATH_MAX], *out;
    snprintf(cmd, sizeof(cmd),
             "sed 's|^ExecStart=/usr/bin/cachette$|ExecStart=%s/usr/bin/cachette|' %s/usr/lib/systemd/system/cachette.service "
             "> %s/cachette.service && systemd-analyze verify --man=no %s/cachette.service 2>&1",
             root, root, root, root);
    run_ok(cmd, &out);
    if (out[0] != '\0')
        fail_msg("systemd-analyze verify: %s", out);
    free(out);
    snprintf(cmd, sizeof(cmd), "systemd-analyze security --offline=yes %s/cachette.service 2>&1 | tail -n 1", root);
    run_ok(cmd, &out);
    const char *at = strstr(out, "cachette.service: ");
    double score = at != NULL ? strtod(at + strlen("cachette.service: "), NULL) : 10;
    printf("  systemd-analyze security: %s", out);
    if (score > 2.0)
        fail_msg("the unit's exposure is %.1f, above 2.0: %s", score, out);
    free(out);
}

static void install_builds_an_embedder_and_uninstall_removes_it(void **state)
{
    (void)state;
    char root[] = "/tmp/cachette-install-XXXXXX", build[PATH_MAX], cmd[4 * PATH_MAX], path[PATH_MAX];
    assert_non_null(mkdtemp(root));
    snprintf(build, sizeof(build), "%s", server_binary());
    char *slash = strrchr(build, '/');
    assert_non_null(slash);
    *slash = '\0';
    char *out;

    snprintf(cmd, sizeof(cmd), "make --no-print-directory -s install B=%s DESTDIR=%s PREFIX=/usr 2>&1", build, root);
    run_ok(cmd, &out);
    free(out);
    for (size_t i = 0; i < NINSTALLED; i++) {
        struct stat st;
        snprintf(path, sizeof(path), "%s%s", root, installed[i]);
        if (stat(path, &st) != 0)
            fail_msg("make install left no %s", path);
        mode_t want = i == 0 ? 0755 : i == NINSTALLED - 1 ? 0600 : 0644; /* the settings may hold a token */
        if ((st.st_mode & 07777) != want)
            fail_msg("%s has mode %o, expected %o", path, st.st_mode & 07777, want);
    }

    snprintf(cmd, sizeof(cmd), "%s/usr/bin/cachette --version", root);
    run_ok(cmd, &out);
    assert_true(strncmp(out, "cachette ", 9) == 0);
    free(out);
    expect_help_in_manual_and_settings(root);
    expect_unit_verifies(root);

    /* An operator's settings survive the next install. */
    snprintf(cmd, sizeof(cmd),
             "echo CACHETTE_PORT=9999 >> %s/etc/default/cachette && "
             "make --no-print-directory -s install B=%s DESTDIR=%s PREFIX=/usr 2>&1 && "
             "tail -n 1 %s/etc/default/cachette",
             root, build, root, root);
    run_ok(cmd, &out);
    if (strstr(out, "CACHETTE_PORT=9999") == NULL)
        fail_msg("a second install replaced the edited settings: %s", out);
    free(out);

    /* pkg-config reads the installed .pc; the sysroot puts its -I and -L inside the staging root. */
    snprintf(path, sizeof(path), "%s/embed.c", root);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(program, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "export PKG_CONFIG_PATH=%s/usr/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=%s PKG_CONFIG_LIBDIR=; "
             "pkg-config --modversion cachette && "
             "cc -std=gnu11 -Wall -Wextra -Werror -o %s/embed %s/embed.c $(pkg-config --cflags cachette) "
             "$(pkg-config --libs --static cachette) && %s/embed 2>&1",
             root, root, root, root, root);
    run_ok(cmd, &out);
    if (strstr(out, "hello 1\n") == NULL)
        fail_msg("the embedder printed: %s", out);
    free(out);

    snprintf(cmd, sizeof(cmd), "make --no-print-directory -s uninstall B=%s DESTDIR=%s PREFIX=/usr 2>&1", build, root);
    run_ok(cmd, &out);
    free(out);
    for (size_t i = 0; i < NINSTALLED; i++) {
        snprintf(path, sizeof(path), "%s%s", root, installed[i]);
        if ((access(path, F_OK) == 0) != (i == NINSTALLED - 1))
            fail_msg("make uninstall %s %s", i == NINSTALLED - 1 ? "removed" : "left", path);
    }
    snprintf(path, sizeof(path), "%s/usr/include/cachette", root);
    assert_int_not_equal(access(path, F_OK), 0);

    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    run_ok(cmd, &out);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(install_builds_an_embedder_and_uninstall_removes_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
