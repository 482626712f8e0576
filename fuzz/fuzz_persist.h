/*
 * What fuzz_snapshot.c and fuzz_log.c share: a record callback that holds
 * every record a parser hands out to the invariants of src/persist/parse.h
 * and format.h, checks on the parse report, and a driver that parses one
 * input three times and compares the runs.
 *
 * The three runs: without recover, with recover, and with recover again
 * but with the callback asking to stop halfway through the records the
 * second run saw. Whatever the first run hands out before it stops on
 * damage is the start of what the second hands out (recovery only goes on
 * where the strict parse stops, from the same first damage); a strict
 * PARSE_OK means recovery has nothing to add (the same records, the same
 * report); the third run stops exactly where it was asked to, after the same
 * records.
 *
 * ref_crc32c is a bitwise CRC-32C written from the polynomial alone, so the
 * targets' structural checks do not lean on src/persist/crc32c.c (which
 * computes it with SSE4.2 where the CPU has it): the fuzzer compares the two
 * on every frame and block it looks at.
 */
#ifndef CACHETTE_FUZZ_PERSIST_H
#define CACHETTE_FUZZ_PERSIST_H

#include <stdbool.h>

#include "fuzz_check.h"
#include "persist/parse.h"

static inline uint32_t ref_crc32c(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return ~crc;
}

/* Whether [p, p + n) lies inside [data, data + len); p may be NULL only when n is 0. */
static inline int inside(const uint8_t *data, size_t len, const void *p, size_t n)
{
    const uint8_t *q = p;
    if (q == NULL)
        return n == 0;
    return q >= data && n <= len && (size_t)(q - data) <= len - n;
}

struct seen {
    const uint8_t *data;
    size_t len;
    bool sets_only;    /* a snapshot holds SET records alone */
    bool framed;       /* a log: each record sits in a frame (a length, a CRC-32C) */
    uint64_t calls;    /* callback calls in this run */
    uint64_t stop_at;  /* return non-zero on this call (1-based); 0: never */
    uint64_t *offsets; /* each call's offset, to compare runs */
    size_t cap;
    uint32_t touched; /* a sum over every byte handed out, so ASan sees each read */
};

/*
 * The bytes a record takes, from its decoded fields: where it must begin,
 * given that it ends at `offset` (every parser reports the offset just past
 * the record).
 */
static inline size_t record_bytes(const struct record *r)
{
    if (r->op == RECORD_SET)
        return RECORD_SET_FIXED + r->key_len + r->content_type_len + r->value_len;
    return RECORD_DELETE_FIXED + r->key_len;
}

static inline uint32_t touch(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint32_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += b[i];
    return sum;
}

static inline int check_record(void *ctx, const struct record *r, uint64_t offset)
{
    struct seen *s = ctx;
    CHECK(offset <= s->len);
    CHECK(s->calls == 0 || offset > s->offsets[s->calls - 1]); /* forward only, never the same bytes twice */
    CHECK(s->calls < s->cap);
    s->offsets[s->calls++] = offset;

    CHECK(r->op == RECORD_SET || r->op == RECORD_DELETE);
    CHECK(!s->sets_only || r->op == RECORD_SET);
    CHECK(r->key_len <= STORE_MAX_KEY_LEN);
    size_t n = record_bytes(r);
    CHECK(n <= offset);
    const uint8_t *start = s->data + offset - n, *end = s->data + offset;
    CHECK(start[0] == (uint8_t)r->op);
    if (s->framed) {
        CHECK(n + FRAME_HEADER_SIZE <= offset);
        const uint8_t *frame = start - FRAME_HEADER_SIZE;
        CHECK(get32(frame) == n);
        CHECK(get32(frame + 4) == ref_crc32c(ref_crc32c(0, frame, 4), start, n));
    }
    switch (r->op) {
    case RECORD_SET:
        CHECK(r->kind == STORE_KIND_JSON || r->kind == STORE_KIND_STRING || r->kind == STORE_KIND_BYTES);
        CHECK(r->version != 0);
        CHECK(r->expires_unix_ms >= 0);
        CHECK(r->content_type_len <= STORE_MAX_CONTENT_TYPE_LEN);
        CHECK(r->value_len <= STORE_MAX_VALUE_LEN);
        CHECK((const uint8_t *)r->key == start + RECORD_SET_FIXED);
        if (r->kind == STORE_KIND_BYTES)
            CHECK(r->content_type == r->key + r->key_len);
        else
            CHECK(r->content_type == NULL && r->content_type_len == 0);
        CHECK((const uint8_t *)r->value == start + RECORD_SET_FIXED + r->key_len + r->content_type_len);
        CHECK((const uint8_t *)r->value + r->value_len == end);
        CHECK(inside(s->data, s->len, r->key, r->key_len));
        CHECK(inside(s->data, s->len, r->content_type, r->content_type_len));
        CHECK(inside(s->data, s->len, r->value, r->value_len));
        s->touched += touch(r->content_type, r->content_type_len) + touch(r->value, r->value_len);
        break;
    case RECORD_DELETE:
        CHECK((const uint8_t *)r->key == start + RECORD_DELETE_FIXED && (const uint8_t *)r->key + r->key_len == end);
        CHECK(inside(s->data, s->len, r->key, r->key_len));
        CHECK(r->value == NULL && r->value_len == 0 && r->content_type == NULL && r->version == 0);
        break;
    }
    s->touched += touch(r->key, r->key_len);
    return s->stop_at != 0 && s->calls == s->stop_at;
}

/* Runs one parser over data[0, len): recover, and a header out-parameter the caller's wrapper owns. */
typedef enum parse_outcome (*parse_fn)(const uint8_t *data, size_t len, bool recover, record_fn fn, void *ctx,
                                       struct parse_report *report);

struct run {
    enum parse_outcome outcome;
    struct parse_report report;
    struct seen seen;
};

/*
 * The report against the outcome and the run's records. What an error
 * without a damaged region means differs by format: the targets check it.
 */
static inline void check_report(const struct run *run, bool recover)
{
    const struct parse_report *rep = &run->report;
    size_t len = run->seen.len;
    bool has_error = rep->error[0] != '\0';
    CHECK(strnlen(rep->error, sizeof(rep->error)) < sizeof(rep->error));
    CHECK(rep->good_len <= len && rep->torn_bytes <= len && rep->skipped_bytes <= len && rep->error_offset <= len);
    if (rep->torn_bytes != 0)
        CHECK(rep->good_len + rep->torn_bytes == len);
    if (run->outcome == PARSE_STOPPED) {
        CHECK(run->seen.stop_at != 0 && run->seen.calls == run->seen.stop_at);
        CHECK(rep->records + 1 == run->seen.calls); /* the record it stopped on is not counted */
        return;
    }
    CHECK(rep->records == run->seen.calls);
    if (!recover) {
        CHECK(run->outcome == PARSE_OK || run->outcome == PARSE_DAMAGED);
        CHECK(rep->damaged == 0 && rep->skipped_bytes == 0);
        /* PARSE_OK: nothing wrong but a torn log tail, which is no error. */
        CHECK(has_error == (run->outcome == PARSE_DAMAGED));
    } else {
        CHECK(run->outcome == PARSE_OK);
        CHECK(rep->damaged == 0 || has_error);
        CHECK(rep->skipped_bytes == 0 || rep->damaged != 0);
    }
}

/*
 * Parses data three times (see the top of this file), checks each report
 * and compares the runs. snapshot: the records are SETs in blocks; else
 * each sits in a log frame. runs[0] is the strict parse, runs[1] the
 * recovering one; the caller checks what is particular to its format, then
 * calls free_runs.
 */
static inline void parse_three(const uint8_t *data, size_t len, parse_fn parse, bool snapshot, struct run runs[3])
{
    size_t cap = len / RECORD_DELETE_FIXED + 1; /* the shortest record */
    for (int i = 0; i < 3; i++) {
        memset(&runs[i], 0, sizeof(runs[i]));
        runs[i].seen = (struct seen){.data = data, .len = len, .sets_only = snapshot, .framed = !snapshot, .cap = cap};
        runs[i].seen.offsets = malloc(cap * sizeof(uint64_t));
        CHECK(runs[i].seen.offsets != NULL);
    }
    runs[0].outcome = parse(data, len, false, check_record, &runs[0].seen, &runs[0].report);
    check_report(&runs[0], false);
    runs[1].outcome = parse(data, len, true, check_record, &runs[1].seen, &runs[1].report);
    check_report(&runs[1], true);

    const struct run *strict = &runs[0], *lenient = &runs[1];
    CHECK(strict->seen.calls <= lenient->seen.calls);
    CHECK(memcmp(strict->seen.offsets, lenient->seen.offsets, strict->seen.calls * sizeof(uint64_t)) == 0);
    if (strict->outcome == PARSE_OK) {
        CHECK(lenient->seen.calls == strict->seen.calls);
        CHECK(memcmp(&strict->report, &lenient->report, sizeof(strict->report)) == 0);
        CHECK(lenient->seen.touched == strict->seen.touched);
    } else {
        CHECK(strcmp(strict->report.error, lenient->report.error) == 0);
        CHECK(strict->report.error_offset == lenient->report.error_offset);
    }

    if (lenient->seen.calls != 0) {
        runs[2].seen.stop_at = (lenient->seen.calls + 1) / 2;
        runs[2].outcome = parse(data, len, true, check_record, &runs[2].seen, &runs[2].report);
        CHECK(runs[2].outcome == PARSE_STOPPED);
        check_report(&runs[2], true);
        CHECK(memcmp(runs[2].seen.offsets, lenient->seen.offsets, runs[2].seen.calls * sizeof(uint64_t)) == 0);
    }
}

static inline void free_runs(struct run runs[3])
{
    for (int i = 0; i < 3; i++)
        free(runs[i].seen.offsets);
}

#endif
