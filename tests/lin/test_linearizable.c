/*
 * Linearizability over the wire, the short runs of `make test` (issue 19,
 * docs/RELIABILITY.md): each scenario (scenario.c: HTTP/1.1, HTTP/2 with
 * requests cut off mid-way, SIGSTOP pauses, eviction, expiry, SIGKILL and
 * restart with --append-log always) runs SEEDS histories of a couple of
 * seconds against the server under test, each of which must check as
 * linearizable, and each fault must have happened. Then the check must be
 * able to fail: a server built with the first deliberate bug of
 * tests/lin/bugs.txt (scripts/lin-broken.sh) must be caught.
 *
 * The verdicts do not depend on timing: a slow machine records fewer
 * operations, never a different verdict. Only the count of operations and
 * faults is asserted to be above a floor that a loaded machine still
 * passes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/child.h"
#include "../support/server.h"
#include "../support/shell.h"
#include "scenario.h"

#define SEEDS        3
#define HISTORY_MS   2000
#define BROKEN_TRIES 5

static char dir[] = "/tmp/cachette-lin-XXXXXX";

static void expect_linearizable(const struct scenario *sc)
{
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        struct scenario_result r;
        scenario_run(sc, NULL, seed, HISTORY_MS, dir, &r);
        printf("%s seed %" PRIu64 ": %" PRIu64 " operations (%" PRIu64 " unknown), %" PRIu64
               " faults, checked in %.2f s: %s\n",
               sc->name, seed, r.ops, r.unknown, r.faults, r.check_seconds,
               r.verdict == 1   ? "linearizable"
               : r.verdict == 0 ? "NOT linearizable"
                                : r.why);
        if (r.verdict != 1)
            fail_msg("%s seed %" PRIu64 ": %s (history kept: %s)", sc->name, seed,
                     r.verdict == 0 ? "not linearizable" : r.why, r.history);
        assert_true(r.ops >= 100);
        if (sc->fault != FAULT_NONE && r.faults == 0)
            fail_msg("%s seed %" PRIu64 ": the fault never happened", sc->name, seed);
    }
}

static void each_scenario_is_linearizable(void **state)
{
    const struct scenario *sc = *state;
    expect_linearizable(sc);
}

/* The check can fail: a server whose If-Match ignores the version is caught within a few histories. */
static void a_server_with_a_deliberate_bug_is_caught(void **state)
{
    (void)state;
    char *out = NULL, bin[512];
    int rc = run_shell("scripts/lin-broken.sh 1 build/lin-broken 2>&1", &out);
    if (rc != 0)
        fail_msg("scripts/lin-broken.sh 1 failed (exit %d):\n%s", rc, out);
    bin[0] = '\0';
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n"))
        snprintf(bin, sizeof(bin), "%s", line); /* the script's last line is the binary */
    free(out);

    const struct scenario *sc = &scenarios[0];
    int caught = 0;
    for (uint64_t seed = 1; seed <= BROKEN_TRIES && !caught; seed++) {
        struct scenario_result r;
        scenario_run(sc, bin, seed, HISTORY_MS, dir, &r);
        printf("broken server, %s seed %" PRIu64 ": %" PRIu64 " operations: %s\n", sc->name, seed, r.ops,
               r.verdict == 0   ? "not linearizable (caught)"
               : r.verdict == 1 ? "linearizable"
                                : r.why);
        if (r.verdict < 0)
            fail_msg("broken server, seed %" PRIu64 ": %s", seed, r.why);
        caught = r.verdict == 0;
    }
    if (!caught)
        fail_msg("a server whose If-Match ignores the version passed %d histories", BROKEN_TRIES);
}

int main(void)
{
    /* Hundreds of thousands of answers: too many for docs/openapi.yaml's log, which the other suites fill. */
    unsetenv("CACHETTE_TEST_RESPONSE_LOG");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    struct CMUnitTest tests[16];
    size_t n = 0;
    for (const struct scenario *sc = scenarios; sc->name != NULL; sc++) {
        tests[n] = (struct CMUnitTest)cmocka_unit_test(each_scenario_is_linearizable);
        tests[n].name = sc->name;
        tests[n].initial_state = (void *)sc;
        n++;
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(a_server_with_a_deliberate_bug_is_caught);
    int rc = _cmocka_run_group_tests("linearizable", tests, n, NULL, NULL);
    if (rc == 0)
        child_remove_dir(dir); /* else the failing histories stay for a person to read */
    return rc;
}
