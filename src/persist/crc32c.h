/* CRC-32C (Castagnoli), the checksum of every snapshot block and log record (crc32c.c). */
#ifndef CACHETTE_PERSIST_CRC32C_H
#define CACHETTE_PERSIST_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over len bytes of data: crc32c(crc32c(0, a), b) is the CRC of a then b. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif
