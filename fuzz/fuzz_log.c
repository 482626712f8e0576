/*
 * Fuzz target: append-only log files (applog_parse, src/persist/applog.c).
 *
 * The input is a whole log file, parsed three times (fuzz_persist.h):
 * strictly, with recover, and with recover stopping halfway. Every record
 * handed out lies inside the input, ends at the offset given with it, has a
 * valid operation (a SET: a valid kind, a version other than 0, a
 * non-negative expiry) and lengths within the store's limits; offsets only
 * grow. Each record is checked against its frame with a CRC-32C of our own:
 * the frame's length is the record's, and its checksum holds.
 *
 * The report: the header out-parameter is the header's fields when the first
 * 40 bytes verify, else zeros; torn_bytes + good_len == len when a tail is
 * torn. A torn tail is what docs/PERSISTENCE.md says a crash leaves and
 * nothing else: a frame that runs past the end, or one last whole frame
 * whose checksum fails, or zeros to the end; and no record that verifies
 * starts anywhere inside it (otherwise loading would cut verified records
 * off the file). A strict PARSE_OK is held to the whole format: a header
 * that verifies, then frames that verify back to back up to good_len.
 *
 * With recover, an error comes with a damaged region, except for a file
 * shorter than its header, which is reported (error) but counts no region.
 *
 * Links: src/persist/applog.c src/persist/format.c src/persist/crc32c.c src/persist/fileio.c src/log.c src/cmd/utf8.c
 */
#include "fuzz_persist.h"
#include "persist/applog.h"

/* Whether a frame of length n starts at p[0, avail), is whole, and its checksum holds. */
static bool frame_verifies(const uint8_t *p, size_t avail)
{
    if (avail < FRAME_HEADER_SIZE)
        return false;
    uint32_t n = get32(p);
    return n != 0 && n <= avail - FRAME_HEADER_SIZE &&
           get32(p + 4) == ref_crc32c(ref_crc32c(0, p, 4), p + FRAME_HEADER_SIZE, n);
}

/* Whether a frame that verifies starts at p[0, avail) and holds one whole record: one the parser would load. */
static bool record_loads(const uint8_t *p, size_t avail)
{
    if (!frame_verifies(p, avail))
        return false;
    struct record r;
    const char *why = NULL;
    return record_decode(p + FRAME_HEADER_SIZE, get32(p), &r, &why) == get32(p);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/*
 * A torn tail is one of the three forms a crash leaves (a whole last frame
 * is torn only if its checksum fails), and no record that would load
 * starts inside it.
 */
static void check_torn(const uint8_t *data, size_t len, const struct parse_report *rep)
{
    if (rep->torn_bytes == 0)
        return;
    const uint8_t *tail = data + rep->good_len;
    size_t n = rep->torn_bytes;
    bool cut = n < FRAME_HEADER_SIZE || get32(tail) > n - FRAME_HEADER_SIZE;
    bool last_fails = !cut && get32(tail) == n - FRAME_HEADER_SIZE && !frame_verifies(tail, n);
    CHECK(cut || last_fails || all_zero(tail, n));
    for (size_t i = 0; i < n; i++)
        CHECK(!record_loads(tail + i, len - rep->good_len - i));
}

static void check_header(const uint8_t *data, size_t len, const struct log_header *h)
{
    struct log_header want = {0};
    if (len >= LOG_HEADER_SIZE && log_header_decode(data, &want) != NULL)
        memset(&want, 0, sizeof(want));
    CHECK(memcmp(h, &want, sizeof(want)) == 0);
}

static enum parse_outcome parse(const uint8_t *data, size_t len, bool recover, record_fn fn, void *ctx,
                                struct parse_report *report)
{
    struct log_header h;
    memset(&h, 0xa5, sizeof(h));
    enum parse_outcome o = applog_parse(data, len, recover, fn, ctx, &h, report);
    check_header(data, len, &h);
    if (o == PARSE_STOPPED)
        return o;
    check_torn(data, len, report);
    if (recover)
        CHECK(report->error[0] == '\0' || report->damaged != 0 || len < LOG_HEADER_SIZE);
    if (o == PARSE_OK && len >= LOG_HEADER_SIZE)
        CHECK(report->good_len + report->torn_bytes == len);
    return o;
}

/* What a strict PARSE_OK promises: a header that verifies, then frames that verify, up to good_len. */
static void check_whole(const uint8_t *data, size_t len, const struct parse_report *rep)
{
    CHECK(len >= LOG_HEADER_SIZE);
    CHECK(memcmp(data, LOG_MAGIC, 8) == 0 && get32(data + 8) == FORMAT_VERSION);
    CHECK(get32(data + 32) == ref_crc32c(0, data, 32));
    size_t at = LOG_HEADER_SIZE;
    uint64_t frames = 0;
    while (at < rep->good_len) {
        CHECK(frame_verifies(data + at, rep->good_len - at));
        at += FRAME_HEADER_SIZE + get32(data + at);
        frames++;
    }
    CHECK(at == rep->good_len && frames == rep->records);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run runs[3];
    parse_three(data, size, parse, false, runs);
    if (runs[0].outcome == PARSE_OK)
        check_whole(data, size, &runs[0].report);
    free_runs(runs);
    return 0;
}
