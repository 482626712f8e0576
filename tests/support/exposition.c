/*
 * A strict parser for the Prometheus text format 0.0.4 (see exposition.h).
 *
 * It works on one line at a time, copied into a fixed buffer (a longer line
 * fails the test), and keeps everything in fixed arrays sized for cachette's
 * exposition: the point is to reject what a Prometheus scraper would reject,
 * not to be a general client library.
 */
#include "exposition.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_name_start(char c, int colon_ok)
{
    return isalpha((unsigned char)c) || c == '_' || (colon_ok && c == ':');
}

static int is_name_char(char c, int colon_ok)
{
    return is_name_start(c, colon_ok) || isdigit((unsigned char)c);
}

/* Reads a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or label name ([a-zA-Z_][a-zA-Z0-9_]*) at *p; returns its length. */
static size_t read_name(const char **p, const char *end, int colon_ok, char *out, size_t size)
{
    const char *s = *p;
    if (s >= end || !is_name_start(*s, colon_ok))
        return 0;
    while (s < end && is_name_char(*s, colon_ok))
        s++;
    size_t n = (size_t)(s - *p);
    if (n >= size)
        return 0;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p = s;
    return n;
}

/* A sample value as the format allows it: a Go float (digits, exponent) or +Inf, -Inf, NaN. */
static int parse_value(const char *text, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (strcmp(buf, "+Inf") == 0 || strcmp(buf, "Inf") == 0) {
        *out = INFINITY;
        return 0;
    }
    if (strcmp(buf, "-Inf") == 0) {
        *out = -INFINITY;
        return 0;
    }
    if (strcmp(buf, "NaN") == 0) {
        *out = NAN;
        return 0;
    }
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)buf[i]) && strchr("+-.eE", buf[i]) == NULL)
            return -1;
    char *end;
    *out = strtod(buf, &end);
    return *end == '\0' ? 0 : -1;
}

static struct family *family_get(struct exposition *x, const char *name, int create)
{
    for (size_t i = 0; i < x->nfamilies; i++)
        if (strcmp(x->families[i].name, name) == 0)
            return &x->families[i];
    if (!create)
        return NULL;
    assert_true(x->nfamilies < sizeof(x->families) / sizeof(x->families[0]));
    struct family *f = &x->families[x->nfamilies++];
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", name);
    return f;
}

const struct family *exposition_family(const struct exposition *x, const char *name)
{
    return family_get((struct exposition *)x, name, 0);
}

/* The family a sample belongs to: its own name, or a histogram's/summary's _bucket, _sum, _count. */
static struct family *family_of_sample(struct exposition *x, const char *name)
{
    struct family *f = family_get(x, name, 0);
    if (f != NULL)
        return f;
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(name), s = strlen(suffixes[i]);
        if (n > s && strcmp(name + n - s, suffixes[i]) == 0) {
            char base[128];
            snprintf(base, sizeof(base), "%.*s", (int)(n - s), name);
            f = family_get(x, base, 0);
            if (f != NULL && (strcmp(f->type, "histogram") == 0 || (i > 0 && strcmp(f->type, "summary") == 0)))
                return f;
        }
    }
    return NULL;
}

/* Checks the label set {name="value",…} between p and end (the braces excluded). */
static void check_labels(const char *p, const char *end, const char *line)
{
    char name[128], seen[8][128];
    size_t nseen = 0;
    while (p < end) {
        if (read_name(&p, end, 0, name, sizeof(name)) == 0)
            fail_msg("bad label name in: %s", line);
        for (size_t i = 0; i < nseen; i++)
            if (strcmp(seen[i], name) == 0)
                fail_msg("label %s twice in: %s", name, line);
        if (nseen < 8)
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", name);
        if (p + 1 >= end || p[0] != '=' || p[1] != '"')
            fail_msg("label %s is not followed by =\" in: %s", name, line);
        p += 2;
        while (p < end && *p != '"') {
            if (*p == '\\') {
                if (p + 1 >= end || strchr("\\\"n", p[1]) == NULL)
                    fail_msg("bad escape in a label value: %s", line);
                p++;
            } else if (*p == '\n') {
                fail_msg("raw newline in a label value: %s", line);
            }
            p++;
        }
        if (p >= end)
            fail_msg("unterminated label value in: %s", line);
        p++; /* the closing quote */
        if (p < end) {
            if (*p != ',')
                fail_msg("labels not separated by ',' in: %s", line);
            p++; /* a trailing comma is allowed */
        }
    }
}

void exposition_parse(const char *body, size_t len, struct exposition *x)
{
    memset(x, 0, sizeof(*x));
    if (len == 0 || body[len - 1] != '\n')
        fail_msg("the exposition must end with a newline");
    const char *p = body, *end = body + len;
    const struct family *current = NULL; /* the family of the last sample */
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        char line[512];
        if ((size_t)(eol - p) >= sizeof(line) || memchr(p, '\0', (size_t)(eol - p)) != NULL)
            fail_msg("a line too long for this parser, or holding NUL: %.80s", p);
        memcpy(line, p, (size_t)(eol - p));
        line[eol - p] = '\0';
        const char *q = line, *qend = line + (eol - p);
        p = eol + 1;
        if (line[0] == '\0')
            continue; /* empty lines are ignored */
        if (line[0] == '#') {
            char name[128];
            int help = strncmp(line, "# HELP ", 7) == 0, type = strncmp(line, "# TYPE ", 7) == 0;
            if (!help && !type)
                continue; /* a comment */
            q += 7;
            if (read_name(&q, qend, 1, name, sizeof(name)) == 0)
                fail_msg("bad metric name in: %s", line);
            struct family *f = family_get(x, name, 1);
            if (help) {
                if (f->has_help)
                    fail_msg("second HELP for %s", name);
                if (q < qend && *q != ' ')
                    fail_msg("HELP name not followed by a space: %s", line);
                f->has_help = 1;
            } else {
                if (f->type[0] != '\0')
                    fail_msg("second TYPE for %s", name);
                if (f->has_samples)
                    fail_msg("TYPE for %s after its samples", name);
                if (q >= qend || *q != ' ')
                    fail_msg("TYPE line without a type: %s", line);
                q++;
                if (strcmp(q, "counter") != 0 && strcmp(q, "gauge") != 0 && strcmp(q, "histogram") != 0 &&
                    strcmp(q, "summary") != 0 && strcmp(q, "untyped") != 0)
                    fail_msg("unknown type in: %s", line);
                snprintf(f->type, sizeof(f->type), "%s", q);
            }
            continue;
        }

        assert_true(x->nsamples < sizeof(x->samples) / sizeof(x->samples[0]));
        struct sample *s = &x->samples[x->nsamples++];
        if (read_name(&q, qend, 1, s->name, sizeof(s->name)) == 0)
            fail_msg("bad metric name at the start of: %s", line);
        if (q < qend && *q == '{') {
            const char *close = q + 1;
            /* The closing brace is the first one outside a quoted label value. */
            int quoted = 0;
            while (close < qend && (quoted || *close != '}')) {
                if (*close == '\\' && quoted)
                    close++;
                else if (*close == '"')
                    quoted = !quoted;
                close++;
            }
            if (close >= qend)
                fail_msg("unterminated label set in: %s", line);
            check_labels(q + 1, close, line);
            snprintf(s->labels, sizeof(s->labels), "%.*s", (int)(close - q - 1), q + 1);
            q = close + 1;
        }
        if (q >= qend || *q != ' ')
            fail_msg("no space before the value in: %s", line);
        while (q < qend && *q == ' ')
            q++;
        const char *value_end = memchr(q, ' ', (size_t)(qend - q));
        if (value_end == NULL)
            value_end = qend;
        if (parse_value(q, (size_t)(value_end - q), &s->value) != 0)
            fail_msg("bad value in: %s", line);
        if (value_end < qend) { /* an optional timestamp: an integer */
            const char *t = value_end + 1;
            if (*t == '-')
                t++;
            if (t >= qend)
                fail_msg("empty timestamp in: %s", line);
            for (; t < qend; t++)
                if (!isdigit((unsigned char)*t))
                    fail_msg("bad timestamp in: %s", line);
        }
        struct family *f = family_of_sample(x, s->name);
        if (f == NULL || f->type[0] == '\0')
            fail_msg("sample %s has no TYPE line before it", s->name);
        /* A family's samples form one group, and a histogram has only its _bucket, _sum and _count. */
        if (f != current && f->has_samples)
            fail_msg("the samples of %s are not in one group", f->name);
        if (strcmp(f->type, "histogram") == 0 && strcmp(s->name, f->name) == 0)
            fail_msg("histogram %s has a sample without a _bucket, _sum or _count suffix", f->name);
        f->has_samples = 1;
        current = f;
        for (size_t i = 0; i + 1 < x->nsamples; i++)
            if (strcmp(x->samples[i].name, s->name) == 0 && strcmp(x->samples[i].labels, s->labels) == 0)
                fail_msg("series %s{%s} appears twice", s->name, s->labels);
    }
}

double exposition_value(const struct exposition *x, const char *name, const char *labels)
{
    for (size_t i = 0; i < x->nsamples; i++)
        if (strcmp(x->samples[i].name, name) == 0 && strcmp(x->samples[i].labels, labels) == 0)
            return x->samples[i].value;
    return NAN;
}

void expect_histogram(const struct exposition *x, const char *name)
{
    char bucket[160], count[160], sum[160];
    snprintf(bucket, sizeof(bucket), "%s_bucket", name);
    snprintf(count, sizeof(count), "%s_count", name);
    snprintf(sum, sizeof(sum), "%s_sum", name);
    double last_le = -INFINITY, last_count = 0;
    size_t buckets = 0;
    int saw_inf = 0;
    for (size_t i = 0; i < x->nsamples; i++) {
        const struct sample *s = &x->samples[i];
        if (strcmp(s->name, bucket) != 0)
            continue;
        double le;
        if (strncmp(s->labels, "le=\"", 4) != 0 || s->labels[strlen(s->labels) - 1] != '"')
            fail_msg("bucket without an le label: {%s}", s->labels);
        if (saw_inf)
            fail_msg("a bucket after le=\"+Inf\": {%s}", s->labels);
        if (parse_value(s->labels + 4, strlen(s->labels) - 5, &le) != 0)
            fail_msg("le is not a number: {%s}", s->labels);
        if (!(le > last_le))
            fail_msg("bucket bounds not increasing at {%s}", s->labels);
        if (s->value < last_count || s->value != (double)(long long)s->value)
            fail_msg("bucket counts not cumulative whole numbers at {%s}: %g after %g", s->labels, s->value,
                     last_count);
        saw_inf = isinf(le) && le > 0;
        last_le = le;
        last_count = s->value;
        buckets++;
    }
    if (buckets < 2 || !saw_inf)
        fail_msg("histogram %s: %zu buckets, the last must be le=\"+Inf\"", name, buckets);
    double total = exposition_value(x, count, "");
    if (isnan(total) || total != last_count)
        fail_msg("histogram %s: _count %g, +Inf bucket %g", name, total, last_count);
    double s = exposition_value(x, sum, "");
    if (isnan(s) || s < 0)
        fail_msg("histogram %s: _sum missing or negative", name);
}
