/*
 * `make linearizability`: the long runs (issue 19, docs/RELIABILITY.md).
 *
 *   build/tests/linearizability    LIN_SECONDS (300) in all, LIN_HISTORY_SECONDS (10) a history
 *
 * Four fifths of the time go to histories against the server under test,
 * the scenarios in turn (scenario.c), each with a new seed; every one must
 * check as linearizable. The last fifth goes to the deliberate bugs of
 * tests/lin/bugs.txt, an equal share each: a server built with the bug
 * (scripts/lin-broken.sh) runs scenarios until one history is not
 * linearizable, and a bug whose share runs out first was missed. Prints a
 * line per history, the totals docs/RELIABILITY.md quotes, and last
 * "N passed, M failed" (a history or a bug is one each); exit status 1 when
 * anything failed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../support/child.h"
#include "../support/server.h"
#include "../support/shell.h"
#include "scenario.h"

struct totals {
    uint64_t histories, ops, unknown, faults, passed, failed;
    double check_seconds;
};

static double seconds_env(const char *name, double fallback)
{
    const char *v = getenv(name);
    return v != NULL && atof(v) > 0 ? atof(v) : fallback;
}

static void add(struct totals *t, const struct scenario_result *r)
{
    t->histories++;
    t->ops += r->ops;
    t->unknown += r->unknown;
    t->faults += r->faults;
    t->check_seconds += r->check_seconds;
}

static size_t scenario_count(void)
{
    size_t n = 0;
    while (scenarios[n].name != NULL)
        n++;
    return n;
}

/* The number of bugs in tests/lin/bugs.txt. */
static int bug_count(void)
{
    char *out = NULL;
    int n = 0;
    if (run_shell("/usr/bin/python3 scripts/mutants.py list tests/lin/bugs.txt", &out) == 0)
        for (const char *p = out; (p = strchr(p, '\n')) != NULL; p++)
            n++;
    free(out);
    return n;
}

/* Builds bug n's server; returns 0 with its path in bin. */
static int build_bug(int n, char *bin, size_t size)
{
    char cmd[128], *out = NULL;
    snprintf(cmd, sizeof(cmd), "scripts/lin-broken.sh %d build/lin-broken 2>&1", n);
    int rc = run_shell(cmd, &out);
    bin[0] = '\0';
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n"))
        snprintf(bin, size, "%s", line);
    if (rc != 0)
        printf("scripts/lin-broken.sh %d failed (exit %d): %s\n", n, rc, bin);
    free(out);
    return rc;
}

int main(void)
{
    static char dir[] = "/tmp/cachette-lin-XXXXXX";
    double total = seconds_env("LIN_SECONDS", 300), history = seconds_env("LIN_HISTORY_SECONDS", 10);
    int64_t history_ms = (int64_t)(history * 1000);
    struct totals good = {0}, broken = {0};
    int64_t start = now_ms(), correct_end = start + (int64_t)(total * 800);
    size_t n_scenarios = scenario_count();
    uint64_t seed = (uint64_t)time(NULL);

    unsetenv("CACHETTE_TEST_RESPONSE_LOG");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    printf("linearizability: %.0f s in all, %.0f s a history, first seed %" PRIu64 "\n", total, history, seed);
    for (size_t i = 0; now_ms() + history_ms <= correct_end || good.histories < n_scenarios; i++) {
        const struct scenario *sc = &scenarios[i % n_scenarios];
        struct scenario_result r;
        scenario_run(sc, NULL, seed + i, history_ms, dir, &r);
        add(&good, &r);
        int ok = r.verdict == 1;
        good.passed += ok;
        good.failed += !ok;
        printf("%-10s seed %" PRIu64 ": %7" PRIu64 " ops (%" PRIu64 " unknown), %4" PRIu64
               " faults, checked in %6.2f s: %s %s\n",
               sc->name, seed + i, r.ops, r.unknown, r.faults, r.check_seconds,
               ok               ? "linearizable"
               : r.verdict == 0 ? "NOT LINEARIZABLE, kept:"
                                : "void:",
               ok               ? ""
               : r.verdict == 0 ? r.history
                                : r.why);
        fflush(stdout);
    }

    int bugs = bug_count();
    int64_t share_ms = bugs > 0 ? (int64_t)(total * 200) / bugs : 0;
    for (int b = 1; b <= bugs; b++) {
        char bin[512];
        int caught = 0;
        if (build_bug(b, bin, sizeof(bin)) == 0) {
            int64_t end = now_ms() + share_ms;
            for (size_t i = 0; !caught && (i < n_scenarios || now_ms() + history_ms / 2 <= end); i++) {
                const struct scenario *sc = &scenarios[i % n_scenarios];
                struct scenario_result r;
                scenario_run(sc, bin, seed + 1000 + i, history_ms / 2, dir, &r);
                add(&broken, &r);
                caught = r.verdict == 0;
                printf("bug %d, %-10s: %7" PRIu64 " ops: %s\n", b, sc->name, r.ops,
                       caught           ? "not linearizable: caught"
                       : r.verdict == 1 ? "linearizable"
                                        : r.why);
                fflush(stdout);
            }
        }
        broken.passed += caught;
        broken.failed += !caught;
        printf("bug %d: %s\n", b, caught ? "caught" : "MISSED");
    }

    printf("\nagainst the server under test: %" PRIu64 " histories, %" PRIu64 " operations checked (%" PRIu64
           " with an unknown outcome), %" PRIu64 " faults injected, checker time %.1f s, %" PRIu64
           " not linearizable\n",
           good.histories, good.ops, good.unknown, good.faults, good.check_seconds, good.failed);
    printf("against deliberately broken servers: %" PRIu64 " of %d bugs caught, %" PRIu64 " histories, %" PRIu64
           " operations, checker time %.1f s\n",
           broken.passed, bugs, broken.histories, broken.ops, broken.check_seconds);
    printf("%" PRIu64 " passed, %" PRIu64 " failed\n", good.passed + broken.passed, good.failed + broken.failed);
    if (good.failed + broken.failed == 0)
        child_remove_dir(dir);
    return good.failed + broken.failed == 0 ? 0 : 1;
}
