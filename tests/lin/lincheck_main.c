/*
 * lincheck: checks recorded histories (tests/lin/history.h's text format)
 * for linearizability, one file after another, each on its own.
 *
 *     lincheck [--max-states N] [--max-mib N] FILE...
 *
 * One line a file: "FILE: N ops, K keys: linearizable (X ms)", or NOT
 * linearizable followed by the report of each failing key, or UNDECIDED
 * with the limit reached. Exit status: 1 if any file is not linearizable
 * (a violation is never hidden behind another outcome), else 2 if a file
 * could not be read or parsed (or the usage was wrong), else 3 if a limit
 * left one undecided, else 0.
 *
 * The report is collected in memory while the check runs, so the summary
 * line comes before it.
 */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"

enum exit_status {
    EXIT_LINEARIZABLE = 0,
    EXIT_NOT_LINEARIZABLE = 1,
    EXIT_BAD_INPUT = 2,
    EXIT_UNDECIDED = 3,
};

static void usage(void)
{
    fputs("usage: lincheck [--max-states N] [--max-mib N] FILE...\n"
          "  checks each history file for linearizability (format: tests/lin/history.h)\n"
          "  --max-states N  states one key's search may memoise (default 50000000)\n"
          "  --max-mib N     memory the checker may hold, in MiB (default 4096)\n"
          "  exit: 0 all linearizable, 1 one is not, 2 unreadable or bad input, 3 undecided (a limit)\n",
          stderr);
}

/* A positive integer option value; 0 when s is not one. */
static uint64_t parse_positive(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
        return 0;
    return n;
}

/* Checks one file; its exit status. */
static enum exit_status check_file(const char *path, const struct lin_limits *limits)
{
    FILE *in = fopen(path, "r");
    if (in == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return EXIT_BAD_INPUT;
    }
    struct lin_history h;
    struct lin_parse_error err;
    int rc = lin_history_read(in, &h, &err);
    fclose(in);
    if (rc != 0) {
        if (err.line > 0)
            fprintf(stderr, "%s:%u: %s\n", path, err.line, err.message);
        else
            fprintf(stderr, "%s: %s\n", path, err.message);
        return EXIT_BAD_INPUT;
    }

    char *report = NULL;
    size_t report_len = 0;
    FILE *out = open_memstream(&report, &report_len);
    struct lin_stats st;
    int verdict = lin_check(&h, limits, out, &st);
    if (out != NULL)
        fclose(out);
    lin_history_free(&h);

    const char *words = verdict == LIN_LINEARIZABLE       ? "linearizable"
                        : verdict == LIN_NOT_LINEARIZABLE ? "NOT linearizable"
                                                          : "UNDECIDED";
    printf("%s: %" PRIu64 " ops, %" PRIu64 " keys: %s (%.0f ms)\n", path, st.ops, st.keys, words,
           (double)st.elapsed_ns / 1e6);
    if (report != NULL)
        fputs(report, stdout);
    free(report);
    return verdict == LIN_LINEARIZABLE       ? EXIT_LINEARIZABLE
           : verdict == LIN_NOT_LINEARIZABLE ? EXIT_NOT_LINEARIZABLE
                                             : EXIT_UNDECIDED;
}

int main(int argc, char **argv)
{
    struct lin_limits limits = {0};
    int i = 1;
    while (i < argc && strncmp(argv[i], "--", 2) == 0) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        uint64_t n = i + 1 < argc ? parse_positive(argv[i + 1]) : 0;
        if (strcmp(argv[i], "--max-states") == 0 && n > 0)
            limits.max_states = n;
        else if (strcmp(argv[i], "--max-mib") == 0 && n > 0 && n <= SIZE_MAX >> 20)
            limits.max_bytes = (size_t)n << 20;
        else {
            usage();
            return EXIT_BAD_INPUT;
        }
        i += 2;
    }
    if (i >= argc) {
        usage();
        return EXIT_BAD_INPUT;
    }
    bool seen[EXIT_UNDECIDED + 1] = {false};
    for (; i < argc; i++)
        seen[check_file(argv[i], &limits)] = true;
    fflush(stdout);
    if (seen[EXIT_NOT_LINEARIZABLE])
        return EXIT_NOT_LINEARIZABLE;
    if (seen[EXIT_BAD_INPUT])
        return EXIT_BAD_INPUT;
    return seen[EXIT_UNDECIDED] ? EXIT_UNDECIDED : EXIT_LINEARIZABLE;
}
