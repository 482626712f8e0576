/*
 * Data directory files for tests (see datafile.h), from the layout in
 * docs/PERSISTENCE.md. The CRC-32C here is the plain byte-at-a-time table
 * form, deliberately unlike the server's SSE4.2 path: the two agreeing on
 * every file a test builds is part of what the tests check.
 *
 * Temporary directories are remembered until removed, and an atexit hook
 * removes whatever a failed test (cmocka longjmps out of it) left behind.
 */
#define _GNU_SOURCE
#include "datafile.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- bytes --------------------------------------------------------------- */

void df_bytes_free(struct df_bytes *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

size_t df_put(struct df_bytes *b, const void *p, size_t n)
{
    size_t at = b->len;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *grown = realloc(b->data, cap);
        if (grown == NULL)
            abort();
        b->data = grown;
        b->cap = cap;
    }
    if (n != 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return at;
}

size_t df_put32(struct df_bytes *b, uint32_t v)
{
    unsigned char le[4];
    for (int i = 0; i < 4; i++)
        le[i] = (unsigned char)(v >> (8 * i));
    return df_put(b, le, sizeof(le));
}

size_t df_put64(struct df_bytes *b, uint64_t v)
{
    size_t at = df_put32(b, (uint32_t)v);
    df_put32(b, (uint32_t)(v >> 32));
    return at;
}

uint32_t df_crc32c(uint32_t crc, const void *p, size_t n)
{
    static uint32_t table[256];
    if (table[1] == 0) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
            table[i] = c;
        }
    }
    const unsigned char *s = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = (crc >> 8) ^ table[(crc ^ s[i]) & 0xff];
    return ~crc;
}

/* ---- records ------------------------------------------------------------- */

/* The record's first four bytes: its type, then three bytes that the type gives a meaning or leaves 0. */
static size_t put_lead(struct df_bytes *b, unsigned op, unsigned kind, unsigned ct_len)
{
    unsigned char lead[4] = {(unsigned char)op, (unsigned char)kind, (unsigned char)ct_len, 0};
    return df_put(b, lead, sizeof(lead));
}

size_t df_record_set(struct df_bytes *b, const struct df_entry *e)
{
    size_t ct_len = e->content_type != NULL ? strlen(e->content_type) : 0;
    size_t at = put_lead(b, 1, (unsigned)e->kind, (unsigned)ct_len);
    df_put32(b, (uint32_t)strlen(e->key));
    df_put32(b, (uint32_t)e->value_len);
    df_put64(b, e->version);
    df_put64(b, (uint64_t)e->expires_unix_ms);
    df_put(b, e->key, strlen(e->key));
    df_put(b, e->content_type, ct_len);
    df_put(b, e->value, e->value_len);
    return at;
}

size_t df_record_delete(struct df_bytes *b, const char *key)
{
    size_t at = put_lead(b, 2, 0, 0);
    df_put32(b, (uint32_t)strlen(key));
    df_put(b, key, strlen(key));
    return at;
}


size_t df_record_json(struct df_bytes *b, const char *key, const char *json, uint64_t version)
{
    struct df_entry e = {.key = key, .kind = DF_JSON, .value = json, .value_len = strlen(json), .version = version};
    return df_record_set(b, &e);
}

/* ---- snapshot ------------------------------------------------------------ */

/* Appends the CRC-32C of the n bytes that end here. */
static void put_crc_of_last(struct df_bytes *b, size_t n)
{
    df_put32(b, df_crc32c(0, b->data + b->len - n, n));
}

void df_snapshot_begin(struct df_snapshot *s, uint64_t version_floor, uint64_t log_seq)
{
    memset(s, 0, sizeof(*s));
    df_put(&s->file, "CACHSNAP", 8);
    df_put32(&s->file, 1);
    df_put32(&s->file, 0);
    df_put64(&s->file, version_floor);
    df_put64(&s->file, log_seq);
    df_put64(&s->file, 1700000000000ull);
    df_put64(&s->file, 0x0706050403020100ull); /* the store's hash key: any will do */
    df_put64(&s->file, 0x0f0e0d0c0b0a0908ull);
    put_crc_of_last(&s->file, 56);
    df_put32(&s->file, 0);
    s->chain = df_crc32c(0, s->file.data, 56);
}

size_t df_snapshot_block(struct df_snapshot *s, const struct df_bytes *records, uint32_t count)
{
    size_t at = df_put(&s->file, "BLCK", 4);
    df_put32(&s->file, (uint32_t)records->len);
    df_put32(&s->file, count);
    df_put32(&s->file, df_crc32c(0, records->data, records->len));
    put_crc_of_last(&s->file, 16);
    s->chain = df_crc32c(s->chain, s->file.data + at, 16);
    df_put(&s->file, records->data, records->len);
    s->entries += count;
    return at;
}

size_t df_snapshot_end(struct df_snapshot *s)
{
    size_t at = df_put(&s->file, "TRLR", 4);
    df_put32(&s->file, 0);
    df_put64(&s->file, s->entries);
    df_put32(&s->file, s->chain);
    put_crc_of_last(&s->file, 20);
    return at;
}

/* ---- log ----------------------------------------------------------------- */

void df_log_name(char out[32], uint64_t seq)
{
    snprintf(out, 32, "log.%020" PRIu64, seq);
}

void df_log_begin(struct df_bytes *f, uint64_t seq)
{
    df_put(f, "CACHELOG", 8);
    df_put32(f, 1);
    df_put32(f, 0);
    df_put64(f, seq);
    df_put64(f, 1700000000000ull);
    put_crc_of_last(f, 32);
    df_put32(f, 0);
}

size_t df_log_frame(struct df_bytes *f, const struct df_bytes *record)
{
    size_t at = df_put32(f, (uint32_t)record->len);
    uint32_t crc = df_crc32c(df_crc32c(0, f->data + at, 4), record->data, record->len);
    df_put32(f, crc);
    df_put(f, record->data, record->len);
    return at;
}

/* ---- the directory --------------------------------------------------------- */

static char made[32][64]; /* directories not yet removed */

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

void df_dir_remove(const char *path)
{
    if (path == NULL || path[0] == '\0')
        return;
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++)
        if (strcmp(made[i], path) == 0)
            made[i][0] = '\0';
}

static void remove_all_made(void)
{
    for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++)
        if (made[i][0] != '\0') {
            char copy[sizeof(made[i])];
            memcpy(copy, made[i], sizeof(copy)); /* df_dir_remove clears made[i] */
            df_dir_remove(copy);
        }
}

int df_dir_make(char *path, size_t size)
{
    static int registered;
    if (size < 64) {
        errno = EINVAL;
        return -1;
    }
    snprintf(path, size, "/tmp/cachette-data-XXXXXX");
    if (mkdtemp(path) == NULL)
        return -1;
    if (!registered) {
        registered = 1;
        atexit(remove_all_made);
    }
    for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++)
        if (made[i][0] == '\0') {
            snprintf(made[i], sizeof(made[i]), "%s", path);
            break;
        }
    return 0;
}

char *df_path(char *out, size_t size, const char *dir, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
    return out;
}

/* Opens dir/name with flags and writes len bytes. */
static int write_with(const char *dir, const char *name, int flags, const void *data, size_t len)
{
    char path[4096];
    int fd = open(df_path(path, sizeof(path), dir, name), flags | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return close(fd);
}

int df_write(const char *dir, const char *name, const void *data, size_t len)
{
    return write_with(dir, name, O_CREAT | O_TRUNC, data, len);
}

int df_append(const char *dir, const char *name, const void *data, size_t len)
{
    return write_with(dir, name, O_APPEND, data, len);
}

int df_read(const char *dir, const char *name, unsigned char **data, size_t *len)
{
    char path[4096];
    FILE *f = fopen(df_path(path, sizeof(path), dir, name), "rb");
    if (f == NULL)
        return -1;
    struct df_bytes b = {0};
    unsigned char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        df_put(&b, chunk, n);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        df_bytes_free(&b);
        errno = EIO;
        return -1;
    }
    *data = b.data != NULL ? b.data : malloc(1);
    *len = b.len;
    return 0;
}

long long df_size(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    return stat(df_path(path, sizeof(path), dir, name), &st) == 0 ? (long long)st.st_size : -1;
}
