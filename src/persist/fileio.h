/* Writing files whole (fileio.c): what the snapshot and the log share. */
#ifndef CACHETTE_PERSIST_FILEIO_H
#define CACHETTE_PERSIST_FILEIO_H

#include <stddef.h>

/* Writes all n bytes of p to fd, through short writes and EINTR. Returns 0, or -1 with errno. */
int fileio_write_all(int fd, const void *p, size_t n);

#endif
