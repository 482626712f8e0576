/*
 * make install and make uninstall, into a staging root (DESTDIR) with
 * PREFIX=/usr: the files land where they should, the installed server runs,
 * and a C program builds against the installed header and library through
 * pkg-config alone (PKG_CONFIG_SYSROOT_DIR points it into the root) and
 * stores, reads and counts an entry; the manual page renders without a
 * warning and lists every flag and variable --help does. Then make
 * uninstall leaves none of the files. The build installed is the one under test: the directory of
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
};

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

/* Every "--flag" line of --help is an entry of the rendered page's OPTIONS, and every variable is named. */
static void expect_manual_lists_the_help(const char *root)
{
    char cmd[2 * PATH_MAX], *help, *page;
    snprintf(cmd, sizeof(cmd), "groff -man -Tascii -ww -z %s/usr/share/man/man1/cachette.1 2>&1", root);
    run_ok(cmd, &page);
    if (page[0] != '\0')
        fail_msg("groff warns about the manual page: %s", page);
    free(page);
    snprintf(cmd, sizeof(cmd), "MANWIDTH=300 LC_ALL=C man -l %s/usr/share/man/man1/cachette.1 2>&1", root);
    run_ok(cmd, &page);
    snprintf(cmd, sizeof(cmd), "%s/usr/bin/cachette --help", root);
    run_ok(cmd, &help);
    size_t flags = 0;
    for (char *line = strtok(help, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char name[64], entry[80], env[80];
        if (sscanf(line, "  --%63[a-z0-9-]", name) == 1) {
            snprintf(entry, sizeof(entry), "\n       --%s", name);
            const char *at = strstr(page, entry);
            if (at == NULL || (at[strlen(entry)] != ' ' && at[strlen(entry)] != '\n'))
                fail_msg("--%s is in --help but not an entry of the manual page", name);
            flags++;
        } else if (sscanf(line, " [env %63[A-Z0-9_]]", name) == 1) {
            snprintf(env, sizeof(env), "Environment: %s", name);
            if (strstr(page, env) == NULL)
                fail_msg("%s is in --help but not in the manual page", name);
        }
    }
    assert_true(flags >= 30);
    free(help);
    free(page);
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
    for (size_t i = 0; i < sizeof(installed) / sizeof(installed[0]); i++) {
        struct stat st;
        snprintf(path, sizeof(path), "%s%s", root, installed[i]);
        if (stat(path, &st) != 0)
            fail_msg("make install left no %s", path);
        mode_t want = i == 0 ? 0755 : 0644;
        if ((st.st_mode & 07777) != want)
            fail_msg("%s has mode %o, expected %o", path, st.st_mode & 07777, want);
    }

    snprintf(cmd, sizeof(cmd), "%s/usr/bin/cachette --version", root);
    run_ok(cmd, &out);
    assert_true(strncmp(out, "cachette ", 9) == 0);
    free(out);
    expect_manual_lists_the_help(root);

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
    for (size_t i = 0; i < sizeof(installed) / sizeof(installed[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", root, installed[i]);
        if (access(path, F_OK) == 0)
            fail_msg("make uninstall left %s", path);
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
