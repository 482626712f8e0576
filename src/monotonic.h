/*
 * CLOCK_MONOTONIC in milliseconds: the one clock for deadlines, back-offs and
 * uptime in the server, and the store's default clock (a header alone, so
 * the store library links nothing of the server's).
 */
#ifndef CACHETTE_MONOTONIC_H
#define CACHETTE_MONOTONIC_H

#include <stdint.h>
#include <time.h>

static inline int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
