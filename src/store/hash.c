/*
 * Key hashing: SipHash (Aumasson and Bernstein, 2012) with a random key per
 * store, so that a client who chooses keys cannot force them into one bucket
 * (hash flooding). The store uses the 1-3 variant, as Redis and Rust do: two
 * fewer rounds than SipHash-2-4 and still keyed. The top bits of the hash pick
 * the shard and the low bits the bucket, so the two are independent.
 *
 * siphash() takes the round counts so that the tests can check the 2-4
 * variant against the paper's published test vector.
 */
#include "hash.h"

#include <endian.h>
#include <string.h>

#include "internal.h"

static inline uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

/* One unaligned load (a byte loop made each word a chain of eight dependent shifts). */
static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}

static inline void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = rotl(v[1], 13);
    v[1] ^= v[0];
    v[0] = rotl(v[0], 32);
    v[2] += v[3];
    v[3] = rotl(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = rotl(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = rotl(v[1], 17);
    v[1] ^= v[2];
    v[2] = rotl(v[2], 32);
}

uint64_t siphash(const uint64_t key[2], const void *data, size_t len, int c_rounds, int d_rounds)
{
    const unsigned char *p = data;
    uint64_t v[4] = {
        key[0] ^ 0x736f6d6570736575ULL,
        key[1] ^ 0x646f72616e646f6dULL,
        key[0] ^ 0x6c7967656e657261ULL,
        key[1] ^ 0x7465646279746573ULL,
    };
    size_t whole = len & ~(size_t)7;

    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_le64(p + i);
        v[3] ^= m;
        for (int r = 0; r < c_rounds; r++)
            sip_round(v);
        v[0] ^= m;
    }
    uint64_t last = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        last |= (uint64_t)p[whole + i] << (8 * i);
    v[3] ^= last;
    for (int r = 0; r < c_rounds; r++)
        sip_round(v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for (int r = 0; r < d_rounds; r++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

uint64_t store_hash(const struct store *s, const void *key, size_t len)
{
    return siphash(s->hash_key, key, len, 1, 3);
}
