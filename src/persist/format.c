/*
 * Encoding and decoding of the snapshot's and the log's bytes; the layout is
 * documented in docs/PERSISTENCE.md and in format.h. Every header carries a
 * CRC-32C of its own bytes, so a damaged length is caught before it is used
 * to size anything; record payloads are covered by their block's (snapshot)
 * or frame's (log) checksum, and record_decode still checks every length
 * against the bytes it has, so a checksum collision cannot make it read out
 * of bounds (fuzz/fuzz_snapshot.c and fuzz_log.c hold it to that).
 */
#include "persist/format.h"

#include <string.h>

#include "persist/crc32c.h"

size_t record_size(const struct store_change *c)
{
    switch (c->op) {
    case STORE_CHANGE_SET:
        return RECORD_SET_FIXED + c->key_len + c->content_type_len + c->value_len;
    case STORE_CHANGE_DELETE:
    case STORE_CHANGE_EVICT:
    case STORE_CHANGE_FLUSH:
        break;
    }
    return RECORD_DELETE_FIXED + c->key_len;
}

void record_encode(unsigned char *out, const struct store_change *c, int64_t wall_offset_ms)
{
    memset(out, 0, 4);
    switch (c->op) {
    case STORE_CHANGE_SET: {
        out[0] = RECORD_SET;
        out[1] = (unsigned char)c->kind;
        out[2] = (unsigned char)c->content_type_len;
        put32(out + 4, (uint32_t)c->key_len);
        put32(out + 8, (uint32_t)c->value_len);
        put64(out + 12, c->version);
        int64_t expires = c->expires_at_ms + wall_offset_ms;
        if (c->expires_at_ms == 0)
            expires = 0;
        else if (expires <= 0)
            expires = 1; /* long past, and still an expiry */
        put64(out + 20, (uint64_t)expires);
        unsigned char *p = out + RECORD_SET_FIXED;
        memcpy(p, c->key, c->key_len);
        p += c->key_len;
        if (c->content_type_len != 0)
            memcpy(p, c->content_type, c->content_type_len);
        p += c->content_type_len;
        if (c->value_len != 0)
            memcpy(p, c->value, c->value_len);
        return;
    }
    case STORE_CHANGE_DELETE:
    case STORE_CHANGE_EVICT:
    case STORE_CHANGE_FLUSH:
        out[0] = RECORD_DELETE;
        put32(out + 4, (uint32_t)c->key_len);
        memcpy(out + RECORD_DELETE_FIXED, c->key, c->key_len);
        return;
    }
}

size_t record_decode(const unsigned char *p, size_t len, struct record *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (len == 0) {
        *why = "record cut short";
        return 0;
    }
    if (p[0] == RECORD_DELETE) {
        if (len < RECORD_DELETE_FIXED || p[1] != 0 || p[2] != 0 || p[3] != 0) {
            *why = len < RECORD_DELETE_FIXED ? "record cut short" : "delete record with non-zero padding";
            return 0;
        }
        uint32_t key_len = get32(p + 4);
        if (key_len > STORE_MAX_KEY_LEN || key_len > len - RECORD_DELETE_FIXED) {
            *why = key_len > STORE_MAX_KEY_LEN ? "key longer than 65535 bytes" : "record cut short";
            return 0;
        }
        out->op = RECORD_DELETE;
        out->key = (const char *)p + RECORD_DELETE_FIXED;
        out->key_len = key_len;
        return RECORD_DELETE_FIXED + key_len;
    }
    if (p[0] != RECORD_SET) {
        *why = "unknown record type";
        return 0;
    }
    if (len < RECORD_SET_FIXED) {
        *why = "record cut short";
        return 0;
    }
    unsigned kind = p[1], ct_len = p[2];
    uint32_t key_len = get32(p + 4), value_len = get32(p + 8);
    uint64_t version = get64(p + 12);
    int64_t expires = (int64_t)get64(p + 20);
    if (kind > STORE_KIND_BYTES || (kind != STORE_KIND_BYTES && ct_len != 0) || p[3] != 0) {
        *why = "set record with a bad kind or content type";
        return 0;
    }
    if (key_len > STORE_MAX_KEY_LEN || version == 0 || expires < 0) {
        *why = key_len > STORE_MAX_KEY_LEN ? "key longer than 65535 bytes"
               : version == 0              ? "set record with version 0"
                                           : "set record with a negative expiry";
        return 0;
    }
    uint64_t total = (uint64_t)RECORD_SET_FIXED + key_len + ct_len + value_len;
    if (total > len) {
        *why = "record cut short";
        return 0;
    }
    out->op = RECORD_SET;
    out->kind = (enum store_kind)kind;
    out->key = (const char *)p + RECORD_SET_FIXED;
    out->key_len = key_len;
    out->content_type = kind == STORE_KIND_BYTES ? out->key + key_len : NULL;
    out->content_type_len = ct_len;
    out->value = p + RECORD_SET_FIXED + key_len + ct_len;
    out->value_len = value_len;
    out->version = version;
    out->expires_unix_ms = expires;
    return (size_t)total;
}

/* ---- headers ------------------------------------------------------------ */

void snapshot_header_encode(unsigned char out[SNAPSHOT_HEADER_SIZE], const struct snapshot_header *h)
{
    memset(out, 0, SNAPSHOT_HEADER_SIZE);
    memcpy(out, SNAPSHOT_MAGIC, 8);
    put32(out + 8, FORMAT_VERSION);
    put64(out + 16, h->version_floor);
    put64(out + 24, h->log_seq);
    put64(out + 32, (uint64_t)h->created_unix_ms);
    put64(out + 40, h->hash_key[0]);
    put64(out + 48, h->hash_key[1]);
    put32(out + SNAPSHOT_HEADER_CHECKED, crc32c(0, out, SNAPSHOT_HEADER_CHECKED));
}

/* The checks both file headers share: magic, then format version, then the header's checksum. */
static const char *check_header(const unsigned char *in, const char *magic, size_t crc_at)
{
    if (memcmp(in, magic, 8) != 0)
        return "wrong magic: not a cachette file of this kind";
    if (get32(in + 8) != FORMAT_VERSION)
        return "unsupported format version";
    if (get32(in + crc_at) != crc32c(0, in, crc_at))
        return "header checksum mismatch";
    return NULL;
}

const char *snapshot_header_decode(const unsigned char in[SNAPSHOT_HEADER_SIZE], struct snapshot_header *h)
{
    const char *why = check_header(in, SNAPSHOT_MAGIC, SNAPSHOT_HEADER_CHECKED);
    if (why != NULL)
        return why;
    h->version_floor = get64(in + 16);
    h->log_seq = get64(in + 24);
    h->created_unix_ms = (int64_t)get64(in + 32);
    h->hash_key[0] = get64(in + 40);
    h->hash_key[1] = get64(in + 48);
    return NULL;
}

void block_header_encode(unsigned char out[BLOCK_HEADER_SIZE], const struct block_header *b)
{
    memcpy(out, BLOCK_TAG, 4);
    put32(out + 4, b->payload_len);
    put32(out + 8, b->count);
    put32(out + 12, b->payload_crc);
    put32(out + BLOCK_HEADER_CHECKED, crc32c(0, out, BLOCK_HEADER_CHECKED));
}

const char *block_header_decode(const unsigned char in[BLOCK_HEADER_SIZE], struct block_header *b)
{
    if (memcmp(in, BLOCK_TAG, 4) != 0)
        return "expected a block";
    if (get32(in + BLOCK_HEADER_CHECKED) != crc32c(0, in, BLOCK_HEADER_CHECKED))
        return "block header checksum mismatch";
    b->payload_len = get32(in + 4);
    b->count = get32(in + 8);
    b->payload_crc = get32(in + 12);
    return NULL;
}

void trailer_encode(unsigned char out[TRAILER_SIZE], const struct trailer *t)
{
    memcpy(out, TRAILER_TAG, 4);
    put32(out + 4, 0);
    put64(out + 8, t->entries);
    put32(out + 16, t->chain_crc);
    put32(out + 20, crc32c(0, out, 20));
}

const char *trailer_decode(const unsigned char in[TRAILER_SIZE], struct trailer *t)
{
    if (memcmp(in, TRAILER_TAG, 4) != 0 || get32(in + 4) != 0)
        return "expected the trailer";
    if (get32(in + 20) != crc32c(0, in, 20))
        return "trailer checksum mismatch";
    t->entries = get64(in + 8);
    t->chain_crc = get32(in + 16);
    return NULL;
}

void log_header_encode(unsigned char out[LOG_HEADER_SIZE], const struct log_header *h)
{
    memset(out, 0, LOG_HEADER_SIZE);
    memcpy(out, LOG_MAGIC, 8);
    put32(out + 8, FORMAT_VERSION);
    put64(out + 16, h->seq);
    put64(out + 24, (uint64_t)h->created_unix_ms);
    put32(out + 32, crc32c(0, out, 32));
}

const char *log_header_decode(const unsigned char in[LOG_HEADER_SIZE], struct log_header *h)
{
    const char *why = check_header(in, LOG_MAGIC, 32);
    if (why != NULL)
        return why;
    h->seq = get64(in + 16);
    h->created_unix_ms = (int64_t)get64(in + 24);
    return NULL;
}

/* ---- log frames ----------------------------------------------------------- */

void frame_seal(unsigned char *out, size_t len)
{
    put32(out, (uint32_t)len);
    put32(out + 4, crc32c(crc32c(0, out, 4), out + FRAME_HEADER_SIZE, len));
}

int frame_open(const unsigned char *p, size_t avail, size_t *len)
{
    if (avail < FRAME_HEADER_SIZE)
        return -1;
    uint32_t n = get32(p);
    if (n > avail - FRAME_HEADER_SIZE)
        return -1;
    if (n == 0 || get32(p + 4) != crc32c(crc32c(0, p, 4), p + FRAME_HEADER_SIZE, n))
        return -2;
    *len = n;
    return 0;
}
