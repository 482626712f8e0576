/*
 * Unit tests of persistence's files (src/persist/): the CRC-32C every file
 * is checked with, the record encoding both files share, snapshot_write of a
 * real store read back by snapshot_parse, the parsers' answers to damage at
 * every byte and every truncation of small files, and the append-only log
 * written from several threads, rotated, and read back in append order.
 *
 * Small files are built here from the format's own encoders (format.h), so
 * that a test can name each block and frame it damages; the larger ones come
 * from the real writers in a temporary directory. Nothing waits on time: the
 * store's clock is the test's, and the log tests wait on the log itself
 * (applog_rotate returns once the old file is written and fsynced; the
 * notify callback says when durable moves), each wait with a hard deadline.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cachette/store.h"
#include "persist/applog.h"
#include "persist/crc32c.h"
#include "persist/format.h"
#include "persist/snapshot.h"

#define KIB         1024u
#define WALL_OFFSET ((int64_t)1700000000000 - 1000000) /* the test clock's 1000000 is this Unix time */

/* ------------------------------------------------------------------------ */
/* A temporary data directory, a byte buffer, and records copied out         */
/* ------------------------------------------------------------------------ */

struct fixture {
    char dir[64];
    int dir_fd;
    int64_t now; /* the store's clock */
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof(fx->dir), "%s/cachette-persist-XXXXXX", tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    fx->dir_fd = open(fx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    fx->now = 1000000;
    *state = fx;
    return fx->dir_fd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    DIR *d = fdopendir(dup(fx->dir_fd));
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlinkat(fx->dir_fd, e->d_name, 0);
    if (d != NULL)
        closedir(d);
    close(fx->dir_fd);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static int64_t test_clock(void *ctx)
{
    return ((struct fixture *)ctx)->now;
}

/* A growing byte buffer: the files built by hand. */
struct bytes {
    unsigned char *p;
    size_t len, cap;
};

static unsigned char *bytes_grow(struct bytes *b, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    unsigned char *at = b->p + b->len;
    b->len += n;
    return at;
}

static void bytes_put(struct bytes *b, const void *p, size_t n)
{
    memcpy(bytes_grow(b, n), p, n);
}

static unsigned char *read_file(int dir_fd, const char *name, size_t *len)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    unsigned char *p = malloc((size_t)st.st_size + 1);
    assert_non_null(p);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, p + got, (size_t)st.st_size - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return p;
}

/* A record a parser handed out, copied, with the offset it came with. */
struct saved {
    enum record_op op;
    enum store_kind kind;
    char *key, *content_type, *value;
    size_t key_len, content_type_len, value_len;
    uint64_t version;
    int64_t expires_unix_ms;
    uint64_t offset;
};

struct collected {
    struct saved *v;
    size_t n, cap;
    size_t stop_at; /* return non-zero on this record (1-based); 0: never */
};

static char *copy_of(const void *p, size_t n)
{
    char *c = malloc(n + 1);
    assert_non_null(c);
    if (n != 0)
        memcpy(c, p, n);
    c[n] = '\0';
    return c;
}

static int collect(void *ctx, const struct record *r, uint64_t offset)
{
    struct collected *c = ctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->v = realloc(c->v, c->cap * sizeof(*c->v));
        assert_non_null(c->v);
    }
    c->v[c->n++] = (struct saved){
        .op = r->op,
        .kind = r->kind,
        .key = copy_of(r->key, r->key_len),
        .key_len = r->key_len,
        .content_type = r->content_type != NULL ? copy_of(r->content_type, r->content_type_len) : NULL,
        .content_type_len = r->content_type_len,
        .value = copy_of(r->value, r->value_len),
        .value_len = r->value_len,
        .version = r->version,
        .expires_unix_ms = r->expires_unix_ms,
        .offset = offset,
    };
    return c->stop_at != 0 && c->n == c->stop_at;
}

static void collected_free(struct collected *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].key);
        free(c->v[i].content_type);
        free(c->v[i].value);
    }
    free(c->v);
    memset(c, 0, sizeof(*c));
}

/* Parses a snapshot into *c (freed first); returns the outcome. */
static enum parse_outcome parse_snapshot(const unsigned char *p, size_t len, bool recover, struct collected *c,
                                         struct parse_report *rep)
{
    struct snapshot_header h;
    collected_free(c);
    return snapshot_parse(p, len, recover, collect, c, &h, rep);
}

static enum parse_outcome parse_log(const unsigned char *p, size_t len, bool recover, struct collected *c,
                                    struct parse_report *rep)
{
    struct log_header h;
    collected_free(c);
    return applog_parse(p, len, recover, collect, c, &h, rep);
}

/* ------------------------------------------------------------------------ */
/* CRC-32C                                                                   */
/* ------------------------------------------------------------------------ */

/* The check value of the Castagnoli CRC, and RFC 3720 appendix B.4's vectors (iSCSI). */
static void test_crc32c_known_answers(void **state)
{
    (void)state;
    unsigned char buf[32];
    assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c(0, "", 0), 0);
    assert_int_equal(crc32c(0x12345678u, "", 0), 0x12345678u); /* nothing to add: the CRC so far */
    memset(buf, 0, sizeof(buf));
    assert_int_equal(crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    assert_int_equal(crc32c(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    assert_int_equal(crc32c(0, buf, 32), 0x113FDB5Cu);
}

/* A 1 MiB pattern and an odd-length, unaligned slice of it (expected values from a table-driven reference). */
static void test_crc32c_long_buffers(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    unsigned char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (unsigned char)(i * 131 + (i >> 8));
    assert_int_equal(crc32c(0, big, n), 0x4CC3B12Fu);
    assert_int_equal(crc32c(0, big + 1, 100003), 0xEEF1D909u);
    memset(big, 'a', 1000);
    assert_int_equal(crc32c(0, big, 1000), 0x9F19EF6Au);
    free(big);
}

/* crc32c(crc32c(0, a), b) is the CRC of a then b, wherever the split falls and however the pieces align. */
static void test_crc32c_split_updates(void **state)
{
    (void)state;
    unsigned char buf[300];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 7 + 3);
    uint32_t whole = crc32c(0, buf, sizeof(buf));
    for (size_t k = 0; k <= sizeof(buf); k++) {
        uint32_t two = crc32c(crc32c(0, buf, k), buf + k, sizeof(buf) - k);
        if (two != whole)
            fail_msg("split at %zu: %08" PRIx32 " != %08" PRIx32, k, two, whole);
        size_t j = k + (sizeof(buf) - k) / 3;
        assert_int_equal(crc32c(crc32c(crc32c(0, buf, k), buf + k, j - k), buf + j, sizeof(buf) - j), whole);
    }
    /* One byte at a time. */
    uint32_t c = 0;
    for (size_t i = 0; i < sizeof(buf); i++)
        c = crc32c(c, buf + i, 1);
    assert_int_equal(c, whole);
    /* Any change of one bit changes it. */
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] ^= 0x10;
        assert_true(crc32c(0, buf, sizeof(buf)) != whole);
        buf[i] ^= 0x10;
    }
}

/* ------------------------------------------------------------------------ */
/* Records                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * Encodes c into exactly record_size bytes (a guard byte after them must
 * stay), decodes it back, checks it decodes the same with bytes after it,
 * and that every shorter prefix is refused. Returns the encoding (caller
 * frees) and the decoded record, whose pointers point into it.
 */
static unsigned char *round_trip(const struct store_change *c, int64_t offset, struct record *r, size_t *size)
{
    size_t n = record_size(c);
    unsigned char *p = malloc(n + 16);
    assert_non_null(p);
    memset(p, 0xEE, n + 16);
    record_encode(p, c, offset);
    for (size_t i = n; i < n + 16; i++)
        assert_int_equal(p[i], 0xEE);
    const char *why = NULL;
    assert_int_equal(record_decode(p, n + 16, r, &why), n);
    assert_int_equal(record_decode(p, n, r, &why), n);
    /* Every prefix is cut short; checking every length of a large record costs nothing (no copy). */
    for (size_t len = 0; len < n; len++) {
        struct record cut;
        why = NULL;
        if (record_decode(p, len, &cut, &why) != 0)
            fail_msg("a record of %zu bytes decoded from its first %zu", n, len);
        assert_non_null(why);
    }
    *size = n;
    return p;
}

static void assert_set_record(const struct record *r, const struct store_change *c, int64_t expires_unix)
{
    assert_int_equal(r->op, RECORD_SET);
    assert_int_equal(r->kind, c->kind);
    assert_int_equal(r->key_len, c->key_len);
    assert_memory_equal(r->key, c->key, c->key_len);
    assert_int_equal(r->value_len, c->value_len);
    if (c->value_len != 0)
        assert_memory_equal(r->value, c->value, c->value_len);
    assert_int_equal(r->content_type_len, c->content_type_len);
    if (c->kind == STORE_KIND_BYTES) {
        assert_non_null(r->content_type);
        if (c->content_type_len != 0)
            assert_memory_equal(r->content_type, c->content_type, c->content_type_len);
    } else {
        assert_null(r->content_type);
    }
    assert_int_equal(r->version, c->version);
    assert_int_equal(r->expires_unix_ms, expires_unix);
}

static void test_record_set_round_trip(void **state)
{
    (void)state;
    struct record r;
    size_t n;
    struct store_change c = {.op = STORE_CHANGE_SET,
                             .key = "user:1",
                             .key_len = 6,
                             .kind = STORE_KIND_JSON,
                             .value = "{\"a\":[1,2]}",
                             .value_len = 11,
                             .version = 42};
    unsigned char *p = round_trip(&c, WALL_OFFSET, &r, &n);
    assert_int_equal(n, RECORD_SET_FIXED + 6 + 11);
    assert_set_record(&r, &c, 0); /* no expiry stays none, whatever the offset */
    free(p);

    /* A string with a NUL in it, expiring: the store's clock plus the offset. */
    c = (struct store_change){.op = STORE_CHANGE_SET,
                              .key = "s",
                              .key_len = 1,
                              .kind = STORE_KIND_STRING,
                              .value = "a\0b",
                              .value_len = 3,
                              .version = UINT64_MAX,
                              .expires_at_ms = 1005000};
    p = round_trip(&c, WALL_OFFSET, &r, &n);
    assert_set_record(&r, &c, 1005000 + WALL_OFFSET);
    free(p);

    /* Bytes with a content type, and bytes with an empty one. */
    c = (struct store_change){.op = STORE_CHANGE_SET,
                              .key = "img",
                              .key_len = 3,
                              .kind = STORE_KIND_BYTES,
                              .value = "\x89PNG",
                              .value_len = 4,
                              .content_type = "image/png",
                              .content_type_len = 9,
                              .version = 7,
                              .expires_at_ms = 1};
    p = round_trip(&c, 0, &r, &n);
    assert_set_record(&r, &c, 1);
    assert_ptr_equal(r.content_type, r.key + r.key_len); /* key, content type, value: in that order */
    assert_ptr_equal(r.value, (const unsigned char *)r.content_type + 9);
    free(p);
    c.content_type = NULL;
    c.content_type_len = 0;
    c.value = NULL;
    c.value_len = 0;
    c.key_len = 0; /* the empty key */
    p = round_trip(&c, 0, &r, &n);
    assert_int_equal(n, RECORD_SET_FIXED);
    assert_set_record(&r, &c, 1);
    free(p);
}

/* An expiry that the offset would put at or before the epoch is kept as 1 ms: long past, still an expiry. */
static void test_record_expiry_before_the_epoch(void **state)
{
    (void)state;
    struct record r;
    size_t n;
    struct store_change c = {.op = STORE_CHANGE_SET,
                             .key = "k",
                             .key_len = 1,
                             .kind = STORE_KIND_JSON,
                             .value = "1",
                             .value_len = 1,
                             .version = 1,
                             .expires_at_ms = 500};
    unsigned char *p = round_trip(&c, -500, &r, &n);
    assert_int_equal(r.expires_unix_ms, 1);
    free(p);
    p = round_trip(&c, -10000, &r, &n);
    assert_int_equal(r.expires_unix_ms, 1);
    free(p);
    p = round_trip(&c, -499, &r, &n);
    assert_int_equal(r.expires_unix_ms, 1);
    free(p);
    p = round_trip(&c, -498, &r, &n);
    assert_int_equal(r.expires_unix_ms, 2);
    free(p);
}

/* The largest key, content type and a 3 MiB value. */
static void test_record_big(void **state)
{
    (void)state;
    size_t vlen = 3u << 20;
    char *key = malloc(STORE_MAX_KEY_LEN), *ct = malloc(STORE_MAX_CONTENT_TYPE_LEN), *value = malloc(vlen);
    assert_true(key != NULL && ct != NULL && value != NULL);
    for (size_t i = 0; i < STORE_MAX_KEY_LEN; i++)
        key[i] = (char)('a' + i % 26);
    memset(ct, 'c', STORE_MAX_CONTENT_TYPE_LEN);
    for (size_t i = 0; i < vlen; i++)
        value[i] = (char)(i * 13);
    struct store_change c = {.op = STORE_CHANGE_SET,
                             .key = key,
                             .key_len = STORE_MAX_KEY_LEN,
                             .kind = STORE_KIND_BYTES,
                             .value = value,
                             .value_len = vlen,
                             .content_type = ct,
                             .content_type_len = STORE_MAX_CONTENT_TYPE_LEN,
                             .version = 1ull << 62,
                             .expires_at_ms = INT64_MAX / 2};
    struct record r;
    size_t n;
    unsigned char *p = round_trip(&c, 0, &r, &n);
    assert_int_equal(n, RECORD_SET_FIXED + STORE_MAX_KEY_LEN + STORE_MAX_CONTENT_TYPE_LEN + vlen);
    assert_set_record(&r, &c, INT64_MAX / 2);
    free(p);
    free(key);
    free(ct);
    free(value);
}

/*
 * A delete, an eviction and an entry removed by a flush all encode as
 * DELETE (an evicted or flushed key must not come back on replay).
 */
static void test_record_delete_evict_and_flush(void **state)
{
    (void)state;
    enum store_change_op ops[] = {STORE_CHANGE_DELETE, STORE_CHANGE_EVICT, STORE_CHANGE_FLUSH};
    for (int i = 0; i < 3; i++) {
        /* The hook passes the removed entry's value along: none of it goes into the record. */
        struct store_change c = {.op = ops[i],
                                 .key = "gone",
                                 .key_len = 4,
                                 .kind = STORE_KIND_STRING,
                                 .value = "xyz",
                                 .value_len = 3,
                                 .version = 9,
                                 .expires_at_ms = 5};
        struct record r;
        size_t n;
        unsigned char *p = round_trip(&c, WALL_OFFSET, &r, &n);
        assert_int_equal(n, RECORD_DELETE_FIXED + 4);
        assert_int_equal(r.op, RECORD_DELETE);
        assert_int_equal(r.key_len, 4);
        assert_memory_equal(r.key, "gone", 4);
        assert_int_equal(r.value_len, 0);
        assert_int_equal(r.version, 0);
        free(p);
    }
}

/* Decodes p after one change made by `mutate`: expects a refusal with a reason. */
static void assert_refused(const unsigned char *good, size_t n, size_t at, unsigned char byte, const char *what)
{
    unsigned char *p = malloc(n);
    assert_non_null(p);
    memcpy(p, good, n);
    p[at] = byte;
    struct record r;
    const char *why = NULL;
    size_t used = record_decode(p, n, &r, &why);
    if (used != 0)
        fail_msg("%s: decoded (%zu bytes)", what, used);
    assert_non_null(why);
    assert_true(why[0] != '\0');
    free(p);
}

static void test_record_malformed(void **state)
{
    (void)state;
    struct record r;
    const char *why;
    unsigned char set[64], del[16];
    struct store_change c = {.op = STORE_CHANGE_SET,
                             .key = "key",
                             .key_len = 3,
                             .kind = STORE_KIND_STRING,
                             .value = "val",
                             .value_len = 3,
                             .version = 5,
                             .expires_at_ms = 10};
    size_t set_n = record_size(&c);
    record_encode(set, &c, 0);
    assert_int_equal(record_decode(set, set_n, &r, &why), set_n); /* the control: unchanged, it decodes */
    c = (struct store_change){.op = STORE_CHANGE_DELETE, .key = "key", .key_len = 3};
    size_t del_n = record_size(&c);
    record_encode(del, &c, 0);
    assert_int_equal(record_decode(del, del_n, &r, &why), del_n);

    /* The operation. */
    assert_refused(set, set_n, 0, 0, "op 0");
    assert_refused(set, set_n, 0, 3, "op 3");
    assert_refused(set, set_n, 0, 4, "op 4");
    assert_refused(set, set_n, 0, 0xff, "op 255");
    /* SET: kind, content type on a kind without one, the zero byte, the key length, the version, the expiry. */
    assert_refused(set, set_n, 1, 3, "kind 3");
    assert_refused(set, set_n, 1, 0xff, "kind 255");
    assert_refused(set, set_n, 2, 1, "content type length on a string");
    set[1] = STORE_KIND_JSON;
    assert_refused(set, set_n, 2, 1, "content type length on JSON");
    set[1] = STORE_KIND_STRING;
    assert_refused(set, set_n, 3, 1, "set padding");
    assert_refused(set, set_n, 6, 1, "key of 65539 bytes"); /* key_len's third byte: 0x10003 */
    assert_refused(set, set_n, 4, 4, "key longer than the record");
    assert_refused(set, set_n, 8, 4, "value longer than the record");
    assert_refused(set, set_n, 11, 0xff, "value length near 4 GiB");
    unsigned char zero_version[64];
    memcpy(zero_version, set, set_n);
    memset(zero_version + 12, 0, 8);
    assert_refused(zero_version, set_n, 12, 0, "version 0");
    assert_refused(set, set_n, 27, 0x80, "negative expiry");
    /* A kind of bytes with a content type longer than the record. */
    set[1] = STORE_KIND_BYTES;
    assert_refused(set, set_n, 2, 200, "content type longer than the record");
    set[1] = STORE_KIND_STRING;

    /* DELETE: padding, key length. */
    for (size_t i = 1; i < 4; i++)
        assert_refused(del, del_n, i, 1, "delete padding");
    assert_refused(del, del_n, 6, 1, "delete key of 65539 bytes");
    assert_refused(del, del_n, 4, 4, "delete key longer than the record");
    assert_int_equal(record_decode(del, RECORD_DELETE_FIXED - 1, &r, &why), 0);
}

/* ------------------------------------------------------------------------ */
/* Headers, block headers, trailers and frames                               */
/* ------------------------------------------------------------------------ */

static void test_headers_round_trip_and_every_byte_counts(void **state)
{
    (void)state;
    unsigned char sh[SNAPSHOT_HEADER_SIZE], lh[LOG_HEADER_SIZE], bh[BLOCK_HEADER_SIZE], tr[TRAILER_SIZE];
    struct snapshot_header s = {.version_floor = 0x0102030405060708u, .log_seq = 99, .created_unix_ms = -5}, s2;
    struct log_header l = {.seq = 1ull << 40, .created_unix_ms = 1700000000000}, l2;
    struct block_header b = {.payload_len = 123456, .count = 77, .payload_crc = 0xdeadbeef}, b2;
    struct trailer t = {.entries = 1ull << 33, .chain_crc = 0xfeedface}, t2;
    snapshot_header_encode(sh, &s);
    log_header_encode(lh, &l);
    block_header_encode(bh, &b);
    trailer_encode(tr, &t);
    assert_null(snapshot_header_decode(sh, &s2));
    assert_memory_equal(&s, &s2, sizeof(s));
    assert_null(log_header_decode(lh, &l2));
    assert_memory_equal(&l, &l2, sizeof(l));
    assert_null(block_header_decode(bh, &b2));
    assert_memory_equal(&b, &b2, sizeof(b));
    assert_null(trailer_decode(tr, &t2));
    assert_int_equal(t2.entries, t.entries); /* field by field: the struct has padding */
    assert_int_equal(t2.chain_crc, t.chain_crc);
    /* A snapshot header is not a log header, and the other way round. */
    assert_non_null(log_header_decode(sh, &l2));
    assert_non_null(snapshot_header_decode((unsigned char[SNAPSHOT_HEADER_SIZE]){0}, &s2));

    /* Every byte up to and with the checksum is checked (the reserved zero after it is not read). */
    for (size_t i = 0; i < 44; i++) {
        sh[i] ^= 0x01;
        assert_non_null(snapshot_header_decode(sh, &s2));
        sh[i] ^= 0x01;
    }
    for (size_t i = 0; i < 36; i++) {
        lh[i] ^= 0x01;
        assert_non_null(log_header_decode(lh, &l2));
        lh[i] ^= 0x01;
    }
    for (size_t i = 0; i < BLOCK_HEADER_SIZE; i++) {
        bh[i] ^= 0x01;
        assert_non_null(block_header_decode(bh, &b2));
        bh[i] ^= 0x01;
    }
    for (size_t i = 0; i < TRAILER_SIZE; i++) {
        tr[i] ^= 0x01;
        assert_non_null(trailer_decode(tr, &t2));
        tr[i] ^= 0x01;
    }
    /* The format version. */
    put32(sh + 8, 2);
    put32(sh + 40, crc32c(0, sh, 40));
    assert_string_equal(snapshot_header_decode(sh, &s2), "unsupported format version");
}

static void test_frames(void **state)
{
    (void)state;
    unsigned char f[FRAME_HEADER_SIZE + 5];
    memcpy(f + FRAME_HEADER_SIZE, "hello", 5);
    frame_seal(f, 5);
    size_t len = 0;
    assert_int_equal(frame_open(f, sizeof(f), &len), 0);
    assert_int_equal(len, 5);
    for (size_t avail = 0; avail < sizeof(f); avail++)
        assert_int_equal(frame_open(f, avail, &len), -1); /* runs past what there is */
    for (size_t i = 4; i < sizeof(f); i++) {              /* checksum and body: whole but wrong */
        f[i] ^= 0x20;
        assert_int_equal(frame_open(f, sizeof(f), &len), -2);
        f[i] ^= 0x20;
    }
    f[0] = 4; /* a shorter length: the checksum covers it */
    assert_int_equal(frame_open(f, sizeof(f), &len), -2);
    unsigned char empty[FRAME_HEADER_SIZE];
    frame_seal(empty, 0); /* a frame of 0 bytes is refused even with its checksum right */
    assert_int_equal(frame_open(empty, sizeof(empty), &len), -2);
}

/* ------------------------------------------------------------------------ */
/* snapshot_write of a real store, read back                                 */
/* ------------------------------------------------------------------------ */

struct expected {
    char key[32];
    size_t key_len;
    enum store_kind kind;
    const char *content_type;
    char *value;
    size_t value_len;
    uint64_t version;
    int64_t expires_unix_ms;
    int seen;
};

static void put_entry(struct store *s, struct expected *e, const char *key, enum store_kind kind, const char *ct,
                      size_t value_len, int64_t ttl_ms, int64_t now)
{
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->key_len = strlen(key);
    e->kind = kind;
    e->content_type = kind == STORE_KIND_BYTES ? ct : NULL;
    e->value = malloc(value_len + 1);
    assert_non_null(e->value);
    for (size_t i = 0; i < value_len; i++)
        e->value[i] = (char)(i * 31 + e->key_len);
    e->value_len = value_len;
    struct store_value v = {.kind = kind,
                            .data = e->value,
                            .len = value_len,
                            .content_type = ct,
                            .content_type_len = ct != NULL ? strlen(ct) : 0};
    struct store_set_opts o = {.ttl_ms = ttl_ms};
    struct store_meta meta;
    assert_int_equal(store_set(s, e->key, e->key_len, &v, &o, &meta), STORE_OK);
    e->version = meta.version;
    e->expires_unix_ms = ttl_ms == 0 ? 0 : now + ttl_ms + WALL_OFFSET;
}

/* Walks a snapshot's blocks; returns how many there are (the file is whole). */
static size_t count_blocks(const unsigned char *p, size_t len)
{
    size_t at = SNAPSHOT_HEADER_SIZE, blocks = 0;
    struct block_header b;
    while (at + TRAILER_SIZE < len) {
        assert_null(block_header_decode(p + at, &b));
        at += BLOCK_HEADER_SIZE + b.payload_len;
        blocks++;
    }
    assert_int_equal(at + TRAILER_SIZE, len);
    return blocks;
}

static void test_snapshot_write_then_parse(void **state)
{
    struct fixture *fx = *state;
    struct store_config cfg = {.clock = test_clock, .clock_ctx = fx, .shard_bits = 3};
    struct store *s = store_create(&cfg);
    assert_non_null(s);
    enum { SMALL = 1500 };
    size_t n = SMALL + 6;
    struct expected *want = calloc(n, sizeof(*want));
    assert_non_null(want);
    put_entry(s, &want[0], "json", STORE_KIND_JSON, NULL, 20, 0, fx->now);
    put_entry(s, &want[1], "text", STORE_KIND_STRING, NULL, 5, 5000, fx->now);
    put_entry(s, &want[2], "bytes", STORE_KIND_BYTES, "image/png", 64, 0, fx->now);
    put_entry(s, &want[3], "no-type", STORE_KIND_BYTES, NULL, 0, 3600000, fx->now);
    put_entry(s, &want[4], "", STORE_KIND_JSON, NULL, 2, 0, fx->now);
    put_entry(s, &want[5], "big", STORE_KIND_BYTES, "application/octet-stream", 300 * KIB, 86400000, fx->now);
    char key[32];
    for (int i = 0; i < SMALL; i++) {
        snprintf(key, sizeof(key), "k%05d", i);
        put_entry(s, &want[6 + i], key, (enum store_kind)(i % 3), "text/csv", 100 + (size_t)i % 400,
                  i % 4 == 0 ? 1000 + i : 0, fx->now);
    }
    /* Entries whose time is up are not saved. */
    struct store_value gone = {.kind = STORE_KIND_JSON, .data = "1", .len = 1};
    assert_int_equal(store_set(s, "expired", 7, &gone, &(struct store_set_opts){.ttl_ms = 10}, NULL), STORE_OK);
    fx->now += 10;

    struct snapshot_header h = {.version_floor = store_version_floor(s), .log_seq = 12, .created_unix_ms = 17};
    struct snapshot_stats st;
    char err[256];
    assert_int_equal(snapshot_write(fx->dir_fd, s, &h, WALL_OFFSET, &st, err, sizeof(err)), 0);
    assert_int_equal(faccessat(fx->dir_fd, SNAPSHOT_TMP_FILE, F_OK, 0), -1); /* renamed into place */
    size_t len;
    unsigned char *file = read_file(fx->dir_fd, SNAPSHOT_FILE, &len);
    assert_int_equal(st.entries, n);
    assert_int_equal(st.bytes, len);
    assert_true(count_blocks(file, len) >= 2); /* 300 KiB and more: more than one 256 KiB block */

    struct collected got = {0};
    struct parse_report rep;
    struct snapshot_header h2;
    assert_int_equal(snapshot_parse(file, len, false, collect, &got, &h2, &rep), PARSE_OK);
    assert_memory_equal(&h, &h2, sizeof(h));
    assert_int_equal(rep.records, n);
    assert_int_equal(got.n, n);
    assert_string_equal(rep.error, "");
    for (size_t i = 0; i < got.n; i++) {
        const struct saved *r = &got.v[i];
        assert_int_equal(r->op, RECORD_SET);
        size_t j = 0;
        while (j < n && (want[j].key_len != r->key_len || memcmp(want[j].key, r->key, r->key_len) != 0))
            j++;
        if (j == n)
            fail_msg("saved a key never set: %s", r->key);
        struct expected *e = &want[j];
        assert_int_equal(e->seen++, 0);
        assert_int_equal(r->kind, e->kind);
        assert_int_equal(r->value_len, e->value_len);
        assert_memory_equal(r->value, e->value, e->value_len);
        if (e->kind == STORE_KIND_BYTES)
            assert_string_equal(r->content_type, e->content_type != NULL ? e->content_type : "");
        else
            assert_null(r->content_type);
        assert_int_equal(r->version, e->version);
        assert_true(r->version < h.version_floor);
        assert_int_equal(r->expires_unix_ms, e->expires_unix_ms);
    }
    for (size_t i = 0; i < n; i++)
        free(want[i].value);
    free(want);
    collected_free(&got);
    free(file);
    store_destroy(s);
}

/* An empty store: a header and a trailer, no block. */
static void test_snapshot_of_an_empty_store(void **state)
{
    struct fixture *fx = *state;
    struct store *s = store_create(&(struct store_config){.clock = test_clock, .clock_ctx = fx});
    assert_non_null(s);
    struct snapshot_header h = {.version_floor = 1, .log_seq = 1};
    struct snapshot_stats st;
    char err[256];
    assert_int_equal(snapshot_write(fx->dir_fd, s, &h, 0, &st, err, sizeof(err)), 0);
    size_t len;
    unsigned char *file = read_file(fx->dir_fd, SNAPSHOT_FILE, &len);
    assert_int_equal(len, SNAPSHOT_HEADER_SIZE + TRAILER_SIZE);
    assert_int_equal(st.entries, 0);
    struct collected got = {0};
    struct parse_report rep;
    assert_int_equal(parse_snapshot(file, len, false, &got, &rep), PARSE_OK);
    assert_int_equal(got.n, 0);
    free(file);
    store_destroy(s);
}

/* ------------------------------------------------------------------------ */
/* Snapshot damage, at the parser                                            */
/* ------------------------------------------------------------------------ */

#define BLOCKS 3

/* A snapshot built from the encoders: block b holds counts[b] SET records with keys "b<b>r<i>". */
struct built {
    struct bytes file;
    size_t block_at[BLOCKS], block_len[BLOCKS]; /* each block's offset and size, its header included */
    uint32_t counts[BLOCKS];
    size_t trailer_at;
};

static void build_snapshot(struct built *out, const uint32_t counts[BLOCKS])
{
    memset(out, 0, sizeof(*out));
    struct bytes *f = &out->file;
    snapshot_header_encode(bytes_grow(f, SNAPSHOT_HEADER_SIZE),
                           &(struct snapshot_header){.version_floor = 1000, .log_seq = 4, .created_unix_ms = 5});
    uint32_t chain = crc32c(0, f->p, SNAPSHOT_HEADER_CHECKED);
    uint64_t entries = 0;
    for (int b = 0; b < BLOCKS; b++) {
        size_t at = f->len;
        bytes_grow(f, BLOCK_HEADER_SIZE);
        for (uint32_t i = 0; i < counts[b]; i++) {
            char key[16], value[16];
            snprintf(key, sizeof(key), "b%dr%" PRIu32, b, i);
            snprintf(value, sizeof(value), "%03d", b * 100 + (int)i); /* one length: blocks of one size */
            struct store_change c = {.op = STORE_CHANGE_SET,
                                     .key = key,
                                     .key_len = strlen(key),
                                     .kind = STORE_KIND_JSON,
                                     .value = value,
                                     .value_len = strlen(value),
                                     .version = 10 + entries,
                                     .expires_at_ms = i % 2 ? 2000000 : 0};
            record_encode(bytes_grow(f, record_size(&c)), &c, WALL_OFFSET);
            entries++;
        }
        size_t payload = f->len - at - BLOCK_HEADER_SIZE;
        struct block_header bh = {.payload_len = (uint32_t)payload,
                                  .count = counts[b],
                                  .payload_crc = crc32c(0, f->p + at + BLOCK_HEADER_SIZE, payload)};
        block_header_encode(f->p + at, &bh);
        chain = crc32c(chain, f->p + at, BLOCK_HEADER_CHECKED);
        out->block_at[b] = at;
        out->block_len[b] = BLOCK_HEADER_SIZE + payload;
        out->counts[b] = counts[b];
    }
    out->trailer_at = f->len;
    trailer_encode(bytes_grow(f, TRAILER_SIZE), &(struct trailer){.entries = entries, .chain_crc = chain});
}

static uint32_t total_records(const struct built *b)
{
    uint32_t n = 0;
    for (int i = 0; i < BLOCKS; i++)
        n += b->counts[i];
    return n;
}

/* The keys handed out are those of every block but `skip` (-1: none), in file order. */
static void assert_blocks(const struct collected *got, const struct built *b, int skip)
{
    size_t at = 0;
    for (int blk = 0; blk < BLOCKS; blk++) {
        if (blk == skip)
            continue;
        for (uint32_t i = 0; i < b->counts[blk]; i++, at++) {
            char key[16];
            snprintf(key, sizeof(key), "b%dr%" PRIu32, blk, i);
            assert_true(at < got->n);
            assert_string_equal(got->v[at].key, key);
        }
    }
    assert_int_equal(got->n, at);
}

static const uint32_t COUNTS[BLOCKS] = {2, 3, 1};

static void test_snapshot_parse_built(void **state)
{
    (void)state;
    struct built b;
    build_snapshot(&b, COUNTS);
    struct collected got = {0};
    struct parse_report rep;
    assert_int_equal(parse_snapshot(b.file.p, b.file.len, false, &got, &rep), PARSE_OK);
    assert_blocks(&got, &b, -1);
    assert_int_equal(got.v[1].expires_unix_ms, 2000000 + WALL_OFFSET);
    assert_int_equal(got.v[0].expires_unix_ms, 0);
    /* Offsets: each record's end; the last one ends where the trailer begins. */
    assert_int_equal(got.v[got.n - 1].offset, b.trailer_at);
    /* A callback that stops: PARSE_STOPPED at once, the record it stopped on not counted. */
    struct snapshot_header h;
    collected_free(&got);
    got.stop_at = 4;
    assert_int_equal(snapshot_parse(b.file.p, b.file.len, true, collect, &got, &h, &rep), PARSE_STOPPED);
    assert_int_equal(got.n, 4);
    assert_int_equal(rep.records, 3);
    collected_free(&got);
    free(b.file.p);
}

/*
 * The file b holds, with block blk damaged: without recover the parse stops
 * at that block (why, if not NULL, says so), after handing out the blocks
 * before it; with recover every other block is still read and the damaged
 * one is skipped whole, counted as one region of exactly its bytes.
 */
static void assert_block_skipped(const struct built *b, int blk, const char *why)
{
    struct collected got = {0};
    struct parse_report rep;
    uint32_t before = 0;
    for (int i = 0; i < blk; i++)
        before += b->counts[i];
    assert_int_equal(parse_snapshot(b->file.p, b->file.len, false, &got, &rep), PARSE_DAMAGED);
    assert_int_equal(rep.error_offset, b->block_at[blk]);
    assert_true(rep.error[0] != '\0');
    if (why != NULL)
        assert_string_equal(rep.error, why);
    assert_int_equal(got.n, before);
    assert_int_equal(parse_snapshot(b->file.p, b->file.len, true, &got, &rep), PARSE_OK);
    assert_blocks(&got, b, blk);
    assert_int_equal(rep.records, total_records(b) - b->counts[blk]);
    assert_int_equal(rep.damaged, 1);
    assert_int_equal(rep.skipped_bytes, b->block_len[blk]);
    assert_int_equal(rep.error_offset, b->block_at[blk]);
    collected_free(&got);
}

/* Every byte of every block header, damaged. */
static void test_snapshot_block_header_damage(void **state)
{
    (void)state;
    struct built b;
    build_snapshot(&b, COUNTS);
    for (int blk = 0; blk < BLOCKS; blk++) {
        for (size_t i = 0; i < BLOCK_HEADER_SIZE; i++) {
            b.file.p[b.block_at[blk] + i] ^= 0x55;
            assert_block_skipped(&b, blk, NULL);
            b.file.p[b.block_at[blk] + i] ^= 0x55;
        }
    }
    free(b.file.p);
}

/* A payload byte: the block's checksum fails, and the block is skipped whole (none of its records load). */
static void test_snapshot_payload_damage(void **state)
{
    (void)state;
    struct built b;
    build_snapshot(&b, COUNTS);
    for (int blk = 0; blk < BLOCKS; blk++) {
        for (size_t i = BLOCK_HEADER_SIZE; i < b.block_len[blk]; i++) {
            b.file.p[b.block_at[blk] + i] ^= 0x01;
            assert_block_skipped(&b, blk, "block checksum mismatch");
            b.file.p[b.block_at[blk] + i] ^= 0x01;
        }
    }
    free(b.file.p);
}

/* The trailer: every byte. Without recover, damage (the blocks before it were read); with recover, every record. */
static void test_snapshot_trailer_damage(void **state)
{
    (void)state;
    struct built b;
    build_snapshot(&b, COUNTS);
    struct collected got = {0};
    struct parse_report rep;
    for (size_t i = 0; i < TRAILER_SIZE; i++) {
        b.file.p[b.trailer_at + i] ^= 0x08;
        assert_int_equal(parse_snapshot(b.file.p, b.file.len, false, &got, &rep), PARSE_DAMAGED);
        assert_int_equal(rep.error_offset, b.trailer_at);
        assert_int_equal(parse_snapshot(b.file.p, b.file.len, true, &got, &rep), PARSE_OK);
        assert_blocks(&got, &b, -1);
        assert_true(rep.damaged >= 1);
        assert_int_equal(rep.skipped_bytes, TRAILER_SIZE);
        b.file.p[b.trailer_at + i] ^= 0x08;
    }
    collected_free(&got);
    free(b.file.p);
}

/* The file header: damage. With recover the blocks after it still load (and *h is zeros). */
static void test_snapshot_header_damage(void **state)
{
    (void)state;
    struct built b;
    build_snapshot(&b, COUNTS);
    struct collected got = {0};
    struct parse_report rep;
    for (size_t i = 0; i < 44; i++) {
        b.file.p[i] ^= 0x02;
        assert_int_equal(parse_snapshot(b.file.p, b.file.len, false, &got, &rep), PARSE_DAMAGED);
        assert_int_equal(rep.error_offset, 0);
        assert_int_equal(got.n, 0);
        struct snapshot_header h;
        collected_free(&got);
        assert_int_equal(snapshot_parse(b.file.p, b.file.len, true, collect, &got, &h, &rep), PARSE_OK);
        assert_blocks(&got, &b, -1);
        assert_int_equal(rep.damaged, 1);
        assert_int_equal(h.version_floor, 0);
        assert_int_equal(h.log_seq, 0);
        b.file.p[i] ^= 0x02;
    }
    collected_free(&got);
    free(b.file.p);
}

/*
 * Truncation at every length: damage without recover; with recover, the
 * blocks wholly inside the cut still load, and nothing after it is invented.
 */
static void test_snapshot_truncated_at_every_length(void **state)
{
    (void)state;
    struct built b;
    build_snapshot(&b, COUNTS);
    struct collected got = {0};
    struct parse_report rep;
    for (size_t cut = 0; cut < b.file.len; cut++) {
        if (parse_snapshot(b.file.p, cut, false, &got, &rep) != PARSE_DAMAGED)
            fail_msg("a snapshot cut to %zu of %zu bytes parsed", cut, b.file.len);
        assert_true(rep.error[0] != '\0');
        uint32_t whole = 0;
        for (int blk = 0; blk < BLOCKS && cut >= SNAPSHOT_HEADER_SIZE; blk++)
            if (b.block_at[blk] + b.block_len[blk] <= cut)
                whole += b.counts[blk];
        assert_int_equal(parse_snapshot(b.file.p, cut, true, &got, &rep), PARSE_OK);
        if (got.n != whole)
            fail_msg("cut to %zu: %zu records loaded, %" PRIu32 " blocks' worth wholly inside", cut, got.n, whole);
        assert_true(rep.damaged >= 1);
        assert_true(rep.skipped_bytes <= cut);
        assert_true(rep.error[0] != '\0');
    }
    collected_free(&got);
    free(b.file.p);
}

/* Bytes after the trailer, a wrong magic, another format version, an empty file. */
static void test_snapshot_other_damage(void **state)
{
    (void)state;
    struct built b;
    build_snapshot(&b, COUNTS);
    struct collected got = {0};
    struct parse_report rep;
    bytes_put(&b.file, "", 1);
    assert_int_equal(parse_snapshot(b.file.p, b.file.len, false, &got, &rep), PARSE_DAMAGED);
    assert_int_equal(rep.error_offset, b.trailer_at);
    b.file.len--;
    assert_int_equal(parse_snapshot(b.file.p, b.file.len, false, &got, &rep), PARSE_OK);
    assert_int_equal(parse_snapshot(b.file.p, 0, false, &got, &rep), PARSE_DAMAGED);
    assert_string_equal(rep.error, "empty file");
    assert_int_equal(parse_snapshot(b.file.p, 0, true, &got, &rep), PARSE_OK);
    assert_int_equal(rep.damaged, 1);
    /* A log is not a snapshot. */
    unsigned char lh[LOG_HEADER_SIZE + SNAPSHOT_HEADER_SIZE] = {0};
    log_header_encode(lh, &(struct log_header){.seq = 1});
    assert_int_equal(parse_snapshot(lh, sizeof(lh), false, &got, &rep), PARSE_DAMAGED);
    assert_int_equal(rep.error_offset, 0);
    collected_free(&got);
    free(b.file.p);
}

/* A block whose checksums hold but whose count or records are wrong is damage too. */
static void test_snapshot_block_contents_checked(void **state)
{
    (void)state;
    for (int variant = 0; variant < 2; variant++) {
        struct built b;
        build_snapshot(&b, COUNTS);
        size_t at = b.block_at[1];
        struct block_header bh;
        assert_null(block_header_decode(b.file.p + at, &bh));
        if (variant == 0) {
            bh.count++; /* a count that is not the records' */
        } else {
            /* The first record turned into a DELETE of the same key, its checksums redone: not a SET. */
            unsigned char *rec = b.file.p + at + BLOCK_HEADER_SIZE;
            uint32_t key_len = get32(rec + 4);
            size_t set_len = RECORD_SET_FIXED + key_len + get32(rec + 8);
            memset(rec, 0, set_len);
            rec[0] = RECORD_DELETE;
            put32(rec + 4, (uint32_t)(set_len - RECORD_DELETE_FIXED));
            bh.payload_crc = crc32c(0, b.file.p + at + BLOCK_HEADER_SIZE, bh.payload_len);
        }
        block_header_encode(b.file.p + at, &bh);
        assert_block_skipped(&b, 1, variant == 0 ? "block record count mismatch" : "a snapshot holds only set records");
        free(b.file.p);
    }
}

/* A block missing, the trailer's count adjusted: the chain (one block header fewer) catches it. */
static void test_snapshot_missing_block(void **state)
{
    (void)state;
    struct built b;
    build_snapshot(&b, COUNTS);
    struct collected got = {0};
    struct parse_report rep;
    struct trailer t;
    assert_null(trailer_decode(b.file.p + b.trailer_at, &t));
    t.entries -= b.counts[1];
    trailer_encode(b.file.p + b.trailer_at, &t);
    memmove(b.file.p + b.block_at[1], b.file.p + b.block_at[2], b.file.len - b.block_at[2]);
    b.file.len -= b.block_len[1];
    assert_int_equal(parse_snapshot(b.file.p, b.file.len, false, &got, &rep), PARSE_DAMAGED);
    assert_string_equal(rep.error, "trailer checksum chain mismatch: a block is missing or out of order");
    collected_free(&got);
    free(b.file.p);
}

/*
 * docs/PERSISTENCE.md: "a missing, repeated or reordered block breaks" the
 * trailer's chain. Two blocks swapped, and one block written twice in place
 * of another of the same count, each with its own checksums intact.
 * (A chain over whole headers, each ending in its own CRC, would not: a CRC
 * run over bytes followed by their own CRC ends the same whatever the bytes.)
 */
static void test_snapshot_chain_catches_reordered_and_repeated_blocks(void **state)
{
    (void)state;
    static const uint32_t same[BLOCKS] = {2, 2, 2};
    struct built b;
    build_snapshot(&b, same);
    struct collected got = {0};
    struct parse_report rep;
    assert_int_equal(parse_snapshot(b.file.p, b.file.len, false, &got, &rep), PARSE_OK);

    /* Blocks 0 and 1 swapped (the same length: their keys and values are as long). */
    assert_int_equal(b.block_len[0], b.block_len[1]);
    unsigned char *copy = malloc(b.file.len);
    assert_non_null(copy);
    memcpy(copy, b.file.p, b.file.len);
    memcpy(copy + b.block_at[0], b.file.p + b.block_at[1], b.block_len[1]);
    memcpy(copy + b.block_at[1], b.file.p + b.block_at[0], b.block_len[0]);
    enum parse_outcome swapped = parse_snapshot(copy, b.file.len, false, &got, &rep);

    /* Block 0 written again in place of block 1. */
    memcpy(copy, b.file.p, b.file.len);
    memcpy(copy + b.block_at[1], b.file.p + b.block_at[0], b.block_len[0]);
    enum parse_outcome repeated = parse_snapshot(copy, b.file.len, false, &got, &rep);

    free(copy);
    collected_free(&got);
    free(b.file.p);
    assert_int_equal(swapped, PARSE_DAMAGED);
    assert_int_equal(repeated, PARSE_DAMAGED);
}

/* ------------------------------------------------------------------------ */
/* The append-only log                                                       */
/* ------------------------------------------------------------------------ */

enum { THREADS = 4, PER_THREAD = 600 };

struct appender {
    struct applog *log;
    int id;
    uint64_t lsn[PER_THREAD]; /* what each append returned */
};

/* Thread t's change i: mostly SETs of "t<t>:<i>", every 7th a DELETE, every 50th an EVICT, every 100th a FLUSH. */
static void change_of(int t, int i, char key[32], struct store_change *c)
{
    snprintf(key, 32, "t%d:%05d", t, i);
    if (i % 100 == 99) {
        *c = (struct store_change){.op = STORE_CHANGE_FLUSH, .key = key, .key_len = strlen(key)};
    } else if (i % 50 == 49) {
        *c = (struct store_change){.op = STORE_CHANGE_EVICT, .key = key, .key_len = strlen(key)};
    } else if (i % 7 == 6) {
        *c = (struct store_change){.op = STORE_CHANGE_DELETE, .key = key, .key_len = strlen(key)};
    } else {
        *c = (struct store_change){.op = STORE_CHANGE_SET,
                                   .key = key,
                                   .key_len = strlen(key),
                                   .kind = (enum store_kind)(i % 3),
                                   .value = key,
                                   .value_len = strlen(key),
                                   .content_type = i % 3 == 2 ? "a/b" : NULL,
                                   .content_type_len = i % 3 == 2 ? 3 : 0,
                                   .version = (uint64_t)i + 1,
                                   .expires_at_ms = i % 2 ? 1000 + i : 0};
    }
}

static void *append_many(void *arg)
{
    struct appender *a = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char key[32];
        struct store_change c;
        change_of(a->id, i, key, &c);
        a->lsn[i] = applog_append(a->log, &c, WALL_OFFSET);
    }
    return NULL;
}

/* Reads log file seq from the fixture's directory, whole and verified, into *got. Returns its size. */
static size_t read_log(struct fixture *fx, uint64_t seq, struct collected *got)
{
    char name[APPLOG_NAME_MAX];
    applog_name(name, seq);
    size_t len;
    unsigned char *p = read_file(fx->dir_fd, name, &len);
    struct parse_report rep;
    struct log_header h;
    collected_free(got);
    assert_int_equal(applog_parse(p, len, false, collect, got, &h, &rep), PARSE_OK);
    assert_int_equal(h.seq, seq);
    assert_int_equal(rep.torn_bytes, 0);
    assert_int_equal(rep.good_len, len);
    assert_int_equal(rep.records, got->n);
    free(p);
    return len;
}

/*
 * Several threads append while the log is rotated under them, then once
 * more after they finish: every change is in the files exactly once, each
 * thread's in its order, each ending at the byte its LSN names (counting
 * frame bytes across the files in order), and applog_durable reaches the
 * last LSN (with `always`, rotation returns once the old file is fsynced).
 */
static void test_applog_threads_rotate_and_read_back(void **state)
{
    struct fixture *fx = *state;
    char err[256];
    struct applog *log = applog_start(fx->dir_fd, 1, APPLOG_ALWAYS, NULL, NULL, err, sizeof(err));
    assert_non_null(log);
    static struct appender app[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        app[t] = (struct appender){.log = log, .id = t};
        assert_int_equal(pthread_create(&th[t], NULL, append_many, &app[t]), 0);
    }
    assert_int_equal(applog_rotate(log, 2, err, sizeof(err)), 0); /* wherever the threads are */
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(applog_rotate(log, 3, err, sizeof(err)), 0);

    uint64_t last = 0;
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++) {
            if (i > 0)
                assert_true(app[t].lsn[i] > app[t].lsn[i - 1]);
            last = app[t].lsn[i] > last ? app[t].lsn[i] : last;
        }
    assert_int_equal(applog_durable(log), last);
    struct applog_stats st;
    applog_stats(log, &st);
    assert_int_equal(st.appended, last);
    assert_int_equal(st.durable, last);
    assert_int_equal(st.buffered, 0);
    assert_true(st.fsyncs <= THREADS * PER_THREAD + 2); /* at most one per append, and one per rotation */
    applog_stop(log);

    int next[THREADS] = {0};
    uint64_t base = 0; /* frame bytes in the files before this one */
    struct collected got = {0};
    for (uint64_t seq = 1; seq <= 3; seq++) {
        size_t len = read_log(fx, seq, &got);
        for (size_t k = 0; k < got.n; k++) {
            const struct saved *r = &got.v[k];
            int t, i;
            assert_int_equal(sscanf(r->key, "t%d:%d", &t, &i), 2);
            assert_true(t >= 0 && t < THREADS);
            assert_int_equal(i, next[t]); /* each thread's changes in its order, none twice */
            next[t]++;
            char key[32];
            struct store_change c;
            change_of(t, i, key, &c);
            enum record_op op = c.op == STORE_CHANGE_SET ? RECORD_SET : RECORD_DELETE;
            assert_int_equal(r->op, op);
            if (op == RECORD_SET) {
                assert_int_equal(r->version, c.version);
                assert_int_equal(r->kind, c.kind);
                assert_string_equal(r->value, key);
                assert_int_equal(r->expires_unix_ms, c.expires_at_ms ? c.expires_at_ms + WALL_OFFSET : 0);
            }
            assert_int_equal(base + r->offset - LOG_HEADER_SIZE, app[t].lsn[i]);
        }
        base += len - LOG_HEADER_SIZE;
        if (seq == 3)
            assert_int_equal(got.n, 0); /* nothing was appended after the last rotation */
    }
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(next[t], PER_THREAD);
    assert_int_equal(base, last);
    collected_free(&got);
}

/* Holds the writer thread inside notify() while the test appends, then lets it go. */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool closed; /* notify waits while closed */
    int entered; /* notify calls */
    struct applog *log;
    uint64_t last_durable;
};

static void gate_notify(void *ctx)
{
    struct gate *g = ctx;
    pthread_mutex_lock(&g->lock);
    g->entered++;
    pthread_cond_broadcast(&g->cond);
    while (g->closed)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

/* Waits (10 s at most) until cond(g) holds, under g->lock. */
static void gate_wait(struct gate *g, bool (*cond)(struct gate *g))
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&g->lock);
    while (!cond(g))
        if (pthread_cond_timedwait(&g->cond, &g->lock, &until) == ETIMEDOUT)
            break;
    bool held = cond(g);
    pthread_mutex_unlock(&g->lock);
    assert_true(held);
}

static bool first_notify(struct gate *g)
{
    return g->entered >= 1;
}

static bool all_durable(struct gate *g)
{
    return applog_durable(g->log) == g->last_durable;
}

/*
 * Group commit, made deterministic: the writer is held inside notify() after
 * fsyncing the first record, while four threads append 4 x 600 more. Let
 * go, it finds them all buffered and writes them with one write and one
 * fsync: two fsyncs for 2401 appends.
 */
static void test_applog_group_commit(void **state)
{
    struct fixture *fx = *state;
    static struct gate g = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    g.closed = true;
    g.entered = 0;
    char err[256];
    struct applog *log = applog_start(fx->dir_fd, 1, APPLOG_ALWAYS, gate_notify, &g, err, sizeof(err));
    assert_non_null(log);
    g.log = log;
    char key[32];
    struct store_change c;
    change_of(1, 0, key, &c);
    uint64_t first = applog_append(log, &c, 0);
    gate_wait(&g, first_notify);
    assert_int_equal(applog_durable(log), first);

    static struct appender app[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        app[t] = (struct appender){.log = log, .id = t};
        assert_int_equal(pthread_create(&th[t], NULL, append_many, &app[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    struct applog_stats st;
    applog_stats(log, &st);
    assert_int_equal(st.durable, first); /* nothing more is durable while the writer is held */
    assert_int_equal(st.fsyncs, 1);

    pthread_mutex_lock(&g.lock);
    g.last_durable = st.appended;
    g.closed = false;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    gate_wait(&g, all_durable);
    applog_stats(log, &st);
    assert_int_equal(st.fsyncs, 2);
    assert_int_equal(st.durable, st.appended);
    applog_stop(log);

    struct collected got = {0};
    read_log(fx, 1, &got);
    assert_int_equal(got.n, 1 + THREADS * PER_THREAD);
    collected_free(&got);
}

/* A log of n SETs written by hand; frame_at[i] is where frame i begins. */
struct built_log {
    struct bytes file;
    size_t frame_at[8];
    size_t n;
};

static void build_log(struct built_log *out, size_t n)
{
    memset(out, 0, sizeof(*out));
    log_header_encode(bytes_grow(&out->file, LOG_HEADER_SIZE), &(struct log_header){.seq = 1});
    for (size_t i = 0; i < n; i++) {
        char key[32];
        struct store_change c;
        change_of(1, (int)i, key, &c);
        size_t len = record_size(&c);
        out->frame_at[i] = out->file.len;
        unsigned char *f = bytes_grow(&out->file, FRAME_HEADER_SIZE + len);
        record_encode(f + FRAME_HEADER_SIZE, &c, 0);
        frame_seal(f, len);
    }
    out->n = n;
}

static void assert_torn(const unsigned char *p, size_t len, size_t good_len, size_t records)
{
    struct collected got = {0};
    struct parse_report rep;
    for (int recover = 0; recover <= 1; recover++) {
        assert_int_equal(parse_log(p, len, recover, &got, &rep), PARSE_OK);
        assert_int_equal(got.n, records);
        assert_int_equal(rep.good_len, good_len);
        assert_int_equal(rep.torn_bytes, len - good_len);
        assert_string_equal(rep.error, "");
        assert_int_equal(rep.damaged, 0);
    }
    collected_free(&got);
}

/*
 * The three torn tails a crash leaves, cut off without an error: the log
 * cut at every length (the last frame runs past the end), the last frame's
 * checksum failing, and zeros to the end (the file grew before its data
 * reached the disk).
 */
static void test_applog_torn_tails(void **state)
{
    (void)state;
    struct built_log b;
    build_log(&b, 6);
    /* Cut at every length after the header. */
    for (size_t cut = LOG_HEADER_SIZE; cut <= b.file.len; cut++) {
        size_t whole = 0, good = LOG_HEADER_SIZE; /* frames wholly inside the cut, and where they end */
        for (size_t k = 0; k < b.n; k++) {
            size_t end = k + 1 < b.n ? b.frame_at[k + 1] : b.file.len;
            if (end <= cut) {
                whole = k + 1;
                good = end;
            }
        }
        assert_torn(b.file.p, cut, good, whole);
    }
    /* The last frame's checksum or body damaged. */
    size_t last = b.frame_at[b.n - 1];
    for (size_t i = last + 4; i < b.file.len; i++) {
        b.file.p[i] ^= 0x40;
        assert_torn(b.file.p, b.file.len, last, b.n - 1);
        b.file.p[i] ^= 0x40;
    }
    /* Zeros after every record, and zeros in place of the last one. */
    size_t len = b.file.len;
    memset(bytes_grow(&b.file, 4096), 0, 4096);
    for (size_t z = 1; z <= 4096; z = z * 3 + 1)
        assert_torn(b.file.p, len + z, len, b.n);
    memset(b.file.p + last, 0, len - last);
    assert_torn(b.file.p, len, last, b.n - 1);
    assert_torn(b.file.p, len + 100, last, b.n - 1);
    free(b.file.p);
}

/* A bad record in the middle is damage, not a torn tail; with recover it alone is skipped. */
static void test_applog_damage_in_the_middle(void **state)
{
    (void)state;
    struct built_log b;
    build_log(&b, 6);
    struct collected got = {0};
    struct parse_report rep;
    for (size_t k = 0; k + 1 < b.n; k++) {
        size_t frame_len = b.frame_at[k + 1] - b.frame_at[k];
        for (size_t i = 4; i < frame_len; i++) { /* checksum and record bytes */
            unsigned char *byte = b.file.p + b.frame_at[k] + i;
            *byte ^= 0x04;
            assert_int_equal(parse_log(b.file.p, b.file.len, false, &got, &rep), PARSE_DAMAGED);
            assert_int_equal(rep.error_offset, b.frame_at[k]);
            assert_int_equal(got.n, k);
            assert_int_equal(parse_log(b.file.p, b.file.len, true, &got, &rep), PARSE_OK);
            assert_int_equal(got.n, b.n - 1);
            assert_int_equal(rep.damaged, 1);
            assert_int_equal(rep.skipped_bytes, frame_len);
            assert_int_equal(rep.torn_bytes, 0);
            assert_int_equal(rep.good_len, b.file.len);
            *byte ^= 0x04;
        }
        /* A length one off: the checksum (which covers it) fails, and the frame does not end the file. */
        b.file.p[b.frame_at[k]] ^= 0x01;
        assert_int_equal(parse_log(b.file.p, b.file.len, false, &got, &rep), PARSE_DAMAGED);
        b.file.p[b.frame_at[k]] ^= 0x01;
    }
    /* The header. */
    b.file.p[20] ^= 0x01;
    assert_int_equal(parse_log(b.file.p, b.file.len, false, &got, &rep), PARSE_DAMAGED);
    assert_int_equal(rep.error_offset, 0);
    assert_int_equal(parse_log(b.file.p, b.file.len, true, &got, &rep), PARSE_OK);
    assert_int_equal(got.n, b.n);
    assert_int_equal(rep.damaged, 1);
    b.file.p[20] ^= 0x01;
    /* An empty file, and one shorter than its header. */
    assert_int_equal(parse_log(b.file.p, 0, false, &got, &rep), PARSE_DAMAGED);
    assert_string_equal(rep.error, "empty file");
    assert_int_equal(parse_log(b.file.p, LOG_HEADER_SIZE - 1, false, &got, &rep), PARSE_DAMAGED);
    collected_free(&got);
    free(b.file.p);
}

/*
 * A length field damaged in the middle of the log so that its frame seems
 * to run past the end: docs/PERSISTENCE.md calls a bad checksum mid-file
 * damage (the frame's checksum covers its length), and the records after it
 * verify, so it is not what a crash leaves.
 * Were it taken for a torn tail, the records after it would be dropped
 * without an error and the file cut: one flipped bit in a length's high
 * byte would silently destroy the rest of the log.
 */
static void test_applog_length_damage_in_the_middle_is_not_a_torn_tail(void **state)
{
    (void)state;
    struct built_log b;
    build_log(&b, 6);
    struct collected got = {0};
    struct parse_report rep;
    b.file.p[b.frame_at[2] + 3] = 0x40; /* the length's high byte: about 1 GiB */
    enum parse_outcome strict = parse_log(b.file.p, b.file.len, false, &got, &rep);
    uint64_t torn = rep.torn_bytes;
    enum parse_outcome lenient = parse_log(b.file.p, b.file.len, true, &got, &rep);
    size_t loaded = got.n;
    collected_free(&got);
    free(b.file.p);
    assert_int_equal(torn, 0);
    assert_int_equal(strict, PARSE_DAMAGED);
    assert_int_equal(lenient, PARSE_OK);
    assert_int_equal(loaded, 5); /* every record but the damaged one */
}

/*
 * A last frame whose checksum holds but whose record is not valid (an
 * unknown operation) is not what a crash leaves: docs/PERSISTENCE.md counts
 * a last record as torn only when it is cut short, its checksum fails, or
 * zeros run to the end.
 */
static void test_applog_verified_bad_last_record_is_damage(void **state)
{
    (void)state;
    struct built_log b;
    build_log(&b, 3);
    unsigned char *f = bytes_grow(&b.file, FRAME_HEADER_SIZE + 4);
    memcpy(f + FRAME_HEADER_SIZE, "\x09\0\0\0", 4);
    frame_seal(f, 4);
    struct collected got = {0};
    struct parse_report rep;
    enum parse_outcome strict = parse_log(b.file.p, b.file.len, false, &got, &rep);
    collected_free(&got);
    free(b.file.p);
    assert_int_equal(strict, PARSE_DAMAGED);
}

/* Log file names: 20 digits, and nothing else parses as one. */
static void test_applog_names(void **state)
{
    (void)state;
    char name[APPLOG_NAME_MAX];
    uint64_t seq = 0;
    applog_name(name, 42);
    assert_string_equal(name, "log.00000000000000000042");
    assert_int_equal(applog_name_parse(name, &seq), 1);
    assert_int_equal(seq, 42);
    applog_name(name, 10000000000000000000u); /* 20 digits, no leading zero */
    assert_int_equal(applog_name_parse(name, &seq), 1);
    assert_int_equal(seq, 10000000000000000000u);
    assert_int_equal(applog_name_parse("log.0000000000000000004", &seq), 0);
    assert_int_equal(applog_name_parse("log.000000000000000000042", &seq), 0);
    assert_int_equal(applog_name_parse("log.0000000000000000004x", &seq), 0);
    assert_int_equal(applog_name_parse("log.00000000000000000042.tmp", &seq), 0);
    assert_int_equal(applog_name_parse("log.99999999999999999999", &seq), 0); /* past UINT64_MAX */
    assert_int_equal(applog_name_parse("snapshot", &seq), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_crc32c_known_answers),
        T(test_crc32c_long_buffers),
        T(test_crc32c_split_updates),
        T(test_record_set_round_trip),
        T(test_record_expiry_before_the_epoch),
        T(test_record_big),
        T(test_record_delete_evict_and_flush),
        T(test_record_malformed),
        T(test_headers_round_trip_and_every_byte_counts),
        T(test_frames),
        T(test_snapshot_write_then_parse),
        T(test_snapshot_of_an_empty_store),
        T(test_snapshot_parse_built),
        T(test_snapshot_block_header_damage),
        T(test_snapshot_payload_damage),
        T(test_snapshot_trailer_damage),
        T(test_snapshot_header_damage),
        T(test_snapshot_truncated_at_every_length),
        T(test_snapshot_other_damage),
        T(test_snapshot_block_contents_checked),
        T(test_snapshot_missing_block),
        T(test_snapshot_chain_catches_reordered_and_repeated_blocks),
        T(test_applog_threads_rotate_and_read_back),
        T(test_applog_group_commit),
        T(test_applog_torn_tails),
        T(test_applog_damage_in_the_middle),
        T(test_applog_length_damage_in_the_middle_is_not_a_torn_tail),
        T(test_applog_verified_bad_last_record_is_damage),
        T(test_applog_names),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
