/*
 * Reading a TTL as clients send it: a number of seconds above zero, whole
 * or not (ttl.c). Every front reads TTLs through these two calls, so that
 * 3600, 3600.0 and "1.5" mean the same wherever they arrive.
 */
#ifndef CACHETTE_CMD_TTL_H
#define CACHETTE_CMD_TTL_H

#include <stddef.h>
#include <stdint.h>

#include "cmd/cmd.h"

/*
 * Converts seconds (> 0, at most CMD_MAX_TTL_SECONDS) into milliseconds:
 * a fraction finer than a millisecond rounds up, so a positive TTL never
 * becomes 0 ("never expires") and 0.0001 is 1 ms. Returns CMD_OK with
 * *ttl_ms set, or CMD_BAD_TTL (zero, negative, NaN, infinite or too long;
 * *ttl_ms untouched).
 */
enum cmd_status cmd_ttl_from_seconds(double seconds, int64_t *ttl_ms);

/*
 * Reads text[0..len) as seconds written as an unsigned JSON number (digits,
 * an optional fraction, an optional exponent: "60", "1.5", "36e2"; leading
 * zeros allowed; no sign, space or hex), then as cmd_ttl_from_seconds.
 * CMD_OK or CMD_BAD_TTL.
 */
enum cmd_status cmd_ttl_parse(const char *text, size_t len, int64_t *ttl_ms);

#endif
