/*
 * The Prometheus text exposition format, version 0.0.4, parsed strictly
 * enough to test a server's /metrics against it: every line must be a HELP,
 * TYPE or comment line or a sample the format allows (metric and label name
 * syntax, quoted and escaped label values, Go float values, an optional
 * integer timestamp), every sample must follow its family's TYPE, a family's
 * samples must form one group, and no series may appear twice. The format:
 * https://github.com/prometheus/docs/blob/main/content/docs/instrumenting/exposition_formats.md
 * The functions use cmocka assertions, so they may only be called from a test.
 */
#ifndef CACHETTE_TESTS_SUPPORT_EXPOSITION_H
#define CACHETTE_TESTS_SUPPORT_EXPOSITION_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

/* One sample line: the metric name, the labels as written between the braces, the value. */
struct sample {
    char name[128];
    char labels[256]; /* between the braces, "" when none */
    double value;
};

/* One metric family: its name, its TYPE ("" until one is seen), whether HELP and samples were seen. */
struct family {
    char name[128];
    char type[16];
    int has_help, has_samples;
};

/* A whole exposition, in the order of its lines. */
struct exposition {
    struct sample samples[256];
    size_t nsamples;
    struct family families[64];
    size_t nfamilies;
};

/* Parses body (len bytes) into *x, failing the test on the first line the format does not allow. */
void exposition_parse(const char *body, size_t len, struct exposition *x);

/* The family called name (its HELP and TYPE), or NULL when the exposition has neither for it. */
const struct family *exposition_family(const struct exposition *x, const char *name);

/* The value of the series name{labels}, labels exactly as written ("" for none); NAN when absent. */
double exposition_value(const struct exposition *x, const char *name, const char *labels);

/*
 * Asserts that histogram name has buckets with increasing le bounds and
 * cumulative whole counts, ending with le="+Inf" equal to name_count, and a
 * non-negative name_sum.
 */
void expect_histogram(const struct exposition *x, const char *name);

#endif
