/* SipHash-c-d of data under a 128-bit key (see hash.c). */
#ifndef CACHETTE_STORE_HASH_H
#define CACHETTE_STORE_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t siphash(const uint64_t key[2], const void *data, size_t len, int c_rounds, int d_rounds);

#endif
