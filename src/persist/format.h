/*
 * The bytes of cachette's two files (format.c), laid out in
 * docs/PERSISTENCE.md: the records both hold, the snapshot's header, block
 * headers and trailer, and the log's header and record frames. Encoding
 * only writes into memory the caller sized; decoding only reads what it is
 * given and says what is wrong in a short phrase, never trusting a length.
 * All integers are little-endian.
 */
#ifndef CACHETTE_PERSIST_FORMAT_H
#define CACHETTE_PERSIST_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cachette/store.h"

#define FORMAT_VERSION       1u
#define SNAPSHOT_MAGIC       "CACHSNAP"
#define LOG_MAGIC            "CACHELOG"
#define SNAPSHOT_HEADER_SIZE 64u
#define LOG_HEADER_SIZE      40u
#define BLOCK_HEADER_SIZE    20u
#define TRAILER_SIZE         24u
#define FRAME_HEADER_SIZE    8u /* a log record's length and checksum */
/*
 * The bytes of the snapshot's header and of a block header that their own
 * checksums cover, and the trailer's chain covers: a CRC run over bytes
 * followed by their own CRC ends the same whatever the bytes, so a chain
 * over whole headers would depend only on how many there are.
 */
#define SNAPSHOT_HEADER_CHECKED 56u
#define BLOCK_HEADER_CHECKED    16u
#define BLOCK_TAG               "BLCK"
#define TRAILER_TAG             "TRLR"

/* A record's operation (its first byte). */
enum record_op { RECORD_SET = 1, RECORD_DELETE = 2 };

#define RECORD_SET_FIXED    28u /* op, kind, content type length, 0, key length, value length, version, expiry */
#define RECORD_DELETE_FIXED 8u  /* op, 0, 0, 0, key length */

/* A decoded record; its pointers point into the bytes decoded. */
struct record {
    enum record_op op;
    enum store_kind kind;
    const char *key;
    size_t key_len;
    const char *content_type;
    size_t content_type_len;
    const void *value;
    size_t value_len;
    uint64_t version;
    int64_t expires_unix_ms; /* 0 = never */
};

/*
 * The encoded size of a change: SET, or DELETE for the three ways a key goes
 * (STORE_CHANGE_DELETE; STORE_CHANGE_EVICT, so that an evicted key does not
 * come back on replay; STORE_CHANGE_FLUSH, one per entry a flush removed,
 * each logged under its shard's lock like any other change of the key).
 */
size_t record_size(const struct store_change *c);

/*
 * Encodes a change into out (record_size bytes). wall_offset_ms turns the
 * store's clock into Unix time for the expiry: expires_at_ms + offset.
 */
void record_encode(unsigned char *out, const struct store_change *c, int64_t wall_offset_ms);

/*
 * Decodes the record at the start of p[0, len). Returns its length, or 0
 * with *why set when the bytes are not a valid record.
 */
size_t record_decode(const unsigned char *p, size_t len, struct record *out, const char **why);

struct snapshot_header {
    uint64_t version_floor; /* above every version given before the snapshot began */
    uint64_t log_seq;       /* the first log file replayed after it */
    int64_t created_unix_ms;
    uint64_t hash_key[2]; /* the store's (store_hash_key): a reload finds each key where it was */
};
void snapshot_header_encode(unsigned char out[SNAPSHOT_HEADER_SIZE], const struct snapshot_header *h);
/* NULL, or what is wrong (magic, version, checksum). */
const char *snapshot_header_decode(const unsigned char in[SNAPSHOT_HEADER_SIZE], struct snapshot_header *h);

struct block_header {
    uint32_t payload_len;
    uint32_t count;       /* records in the payload */
    uint32_t payload_crc; /* CRC-32C of the payload */
};
void block_header_encode(unsigned char out[BLOCK_HEADER_SIZE], const struct block_header *b);
/* NULL, or what is wrong (tag, checksum). */
const char *block_header_decode(const unsigned char in[BLOCK_HEADER_SIZE], struct block_header *b);

struct trailer {
    uint64_t entries;   /* records in every block */
    uint32_t chain_crc; /* CRC-32C over the file header and every block header, in order */
};
void trailer_encode(unsigned char out[TRAILER_SIZE], const struct trailer *t);
const char *trailer_decode(const unsigned char in[TRAILER_SIZE], struct trailer *t);

struct log_header {
    uint64_t seq;
    int64_t created_unix_ms;
};
void log_header_encode(unsigned char out[LOG_HEADER_SIZE], const struct log_header *h);
const char *log_header_decode(const unsigned char in[LOG_HEADER_SIZE], struct log_header *h);

/* Frames a record of len bytes at out + FRAME_HEADER_SIZE: writes its length and checksum before it. */
void frame_seal(unsigned char *out, size_t len);

/*
 * Reads the frame at p[0, avail): 0 and *len when it is whole and its
 * checksum holds; -1 when its header or body runs past avail; -2 when it
 * is whole but wrong (checksum, or a length of 0).
 */
int frame_open(const unsigned char *p, size_t avail, size_t *len);

/* Little-endian loads and stores. */
static inline void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

#endif
