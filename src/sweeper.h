/* The expiry sweeper thread (sweeper.c). */
#ifndef CACHETTE_SWEEPER_H
#define CACHETTE_SWEEPER_H

#include "cachette/store.h"

struct sweeper;

/*
 * Starts a thread that reclaims store's expired entries in bounded steps
 * and, with trim, hands free memory back to the system (the store's slabs and
 * glibc's heap) when the process's RSS outgrows what the store holds.
 * Returns NULL if the thread cannot start.
 */
struct sweeper *sweeper_start(struct store *store, int trim);

/* Stops and joins the thread and frees the sweeper. */
void sweeper_stop(struct sweeper *sweeper);

#endif
