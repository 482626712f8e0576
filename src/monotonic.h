/*
 * CLOCK_MONOTONIC in milliseconds: the one clock for deadlines, back-offs and
 * uptime in the server, and the store's default clock (a header alone, so
 * the store library links nothing of the server's); and the server threads'
 * timed waits on it.
 */
#ifndef CACHETTE_MONOTONIC_H
#define CACHETTE_MONOTONIC_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

static inline int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A condition variable whose timed waits run on CLOCK_MONOTONIC: a wall clock stepped back must not stall them. */
static inline void monotonic_cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

/* The instant ms from now on CLOCK_MONOTONIC, for pthread_cond_timedwait on such a condition variable. */
static inline struct timespec monotonic_deadline(int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    return until;
}

#endif
