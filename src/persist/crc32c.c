/*
 * CRC-32C (Castagnoli polynomial, reflected 0x82F63B78), as iSCSI, ext4 and
 * RocksDB use it: chosen over zlib's CRC-32 because x86-64 computes it in
 * hardware (SSE4.2's crc32 instruction, 8 bytes per instruction, several
 * GB/s per core), so checksumming a snapshot costs a small fraction of
 * writing it. Machines without SSE4.2 use a byte-at-a-time table, built
 * once (about 400 MB/s): slower, the same result.
 */
#include "persist/crc32c.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static int use_hardware;

static void init_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        table[i] = c;
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    use_hardware = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc32c_table(uint32_t crc, const unsigned char *p, size_t len)
{
    while (len--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hardware(uint32_t crc, const unsigned char *p, size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&table_once, init_table);
    crc = ~crc;
#if defined(__x86_64__)
    if (use_hardware)
        return ~crc32c_hardware(crc, data, len);
#endif
    return ~crc32c_table(crc, data, len);
}
