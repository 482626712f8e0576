/*
 * Small encodings the suites check server output against, written
 * independently of the server's own code so that a bug there cannot hide
 * behind the same bug here.
 */
#ifndef CACHETTE_TESTS_SUPPORT_CODEC_H
#define CACHETTE_TESTS_SUPPORT_CODEC_H

#include <stddef.h>

/*
 * Decodes standard base64 (RFC 4648 §4, with '=' padding, no whitespace) of
 * len characters into out, which must hold len / 4 * 3 bytes. Returns the
 * number of bytes decoded, or -1 if the text is not canonical base64 (a
 * length that is not a multiple of 4, a character outside the alphabet,
 * misplaced padding, or padding bits that are not zero).
 */
long b64_decode(const char *in, size_t len, unsigned char *out);

/* Fills buf with n bytes from a fixed xorshift sequence started at seed (never 0). */
void fill_pseudo_random(unsigned char *buf, size_t n, unsigned seed);

#endif
