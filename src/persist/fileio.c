/*
 * write(2) may write less than asked (a signal, a pipe, a nearly full
 * disk): the snapshot and the log go through this loop, so a short write
 * is finished and a real failure comes back with its errno.
 */
#include "persist/fileio.h"

#include <errno.h>
#include <unistd.h>

int fileio_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}
