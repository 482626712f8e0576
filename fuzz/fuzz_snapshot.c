/*
 * Fuzz target: snapshot files (snapshot_parse, src/persist/snapshot.c).
 *
 * The input is a whole snapshot file, parsed three times (fuzz_persist.h):
 * strictly, with recover, and with recover stopping halfway. Every record
 * handed out lies inside the input, ends at the offset given with it, is a
 * SET with a valid kind, a version other than 0, a non-negative expiry and
 * lengths within the store's limits; offsets only grow.
 *
 * Particular to the snapshot: the header out-parameter is the header's
 * fields when its checked bytes (0-55) verify, else zeros; no torn bytes; with
 * recover, an error always comes with a damaged region. A strict PARSE_OK
 * is held to the whole format, checked here with a CRC-32C of our own: a
 * header that verifies, then blocks, each with a verified header and
 * payload, back to back up to a trailer that verifies, ends the file, counts
 * the records handed out and holds the CRC chain of the checked bytes of
 * the file header and of every block header.
 *
 * Links: src/persist/snapshot.c src/persist/format.c src/persist/crc32c.c src/persist/fileio.c src/store/
 */
#include "fuzz_persist.h"
#include "persist/snapshot.h"

static void check_header(const uint8_t *data, size_t len, const struct snapshot_header *h)
{
    struct snapshot_header want = {0};
    if (len >= SNAPSHOT_HEADER_SIZE && snapshot_header_decode(data, &want) != NULL)
        memset(&want, 0, sizeof(want));
    CHECK(memcmp(h, &want, sizeof(want)) == 0);
}

static enum parse_outcome parse(const uint8_t *data, size_t len, bool recover, record_fn fn, void *ctx,
                                struct parse_report *report)
{
    struct snapshot_header h;
    memset(&h, 0xa5, sizeof(h));
    enum parse_outcome o = snapshot_parse(data, len, recover, fn, ctx, &h, report);
    check_header(data, len, &h);
    CHECK(report->torn_bytes == 0 && report->good_len == 0); /* the log's alone */
    if (recover && o == PARSE_OK)
        CHECK((report->error[0] != '\0') == (report->damaged != 0));
    return o;
}

/* What a strict PARSE_OK promises: the file is exactly what docs/PERSISTENCE.md lays out. */
static void check_whole(const uint8_t *data, size_t len, uint64_t records)
{
    CHECK(len >= SNAPSHOT_HEADER_SIZE + TRAILER_SIZE);
    CHECK(memcmp(data, SNAPSHOT_MAGIC, 8) == 0 && get32(data + 8) == FORMAT_VERSION);
    CHECK(get32(data + 56) == ref_crc32c(0, data, 56));
    uint32_t chain = ref_crc32c(0, data, 56);
    size_t at = SNAPSHOT_HEADER_SIZE, end = len - TRAILER_SIZE;
    uint64_t counted = 0;
    while (at < end) {
        const uint8_t *b = data + at;
        CHECK(end - at >= BLOCK_HEADER_SIZE);
        CHECK(memcmp(b, BLOCK_TAG, 4) == 0 && get32(b + 16) == ref_crc32c(0, b, 16));
        uint32_t payload = get32(b + 4);
        CHECK(payload <= end - at - BLOCK_HEADER_SIZE);
        CHECK(get32(b + 12) == ref_crc32c(0, b + BLOCK_HEADER_SIZE, payload));
        chain = ref_crc32c(chain, b, 16);
        counted += get32(b + 8);
        at += BLOCK_HEADER_SIZE + payload;
    }
    CHECK(at == end);
    const uint8_t *t = data + end;
    CHECK(memcmp(t, TRAILER_TAG, 4) == 0 && get32(t + 4) == 0 && get32(t + 20) == ref_crc32c(0, t, 20));
    CHECK(get64(t + 8) == records && counted == records);
    CHECK(get32(t + 16) == chain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run runs[3];
    parse_three(data, size, parse, true, runs);
    if (runs[0].outcome == PARSE_OK)
        check_whole(data, size, runs[0].report.records);
    free_runs(runs);
    return 0;
}
