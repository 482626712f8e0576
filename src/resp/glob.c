/*
 * Glob matching over bytes, with Redis's syntax (its KEYS documentation):
 * keys are binary-safe, so a C-string matcher such as fnmatch(3), which
 * stops at the first NUL and reads "[!…]" where Redis reads "[^…]", will not
 * do. Every pattern element but '*' matches exactly one byte, so the classic
 * two-pointer walk suffices: on a mismatch, go back to just after the last
 * '*' and let it swallow one more byte. That is O(len x plen) at worst, never
 * the exponential backtracking of a recursive matcher (Redis needed a guard
 * against "*a*a*a*…b").
 *
 * An unterminated class ("[ab" at the end) ends with the pattern, as in
 * Redis; a '\' as the last byte matches a '\'.
 */
#include "resp/glob.h"

#include <stdint.h>

static unsigned char fold(unsigned char c, bool nocase)
{
    return nocase && c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Matches c against the class at pattern[*i] ('['); moves *i past its ']' (or to the end). */
static bool match_class(const char *pattern, size_t plen, size_t *i, unsigned char c, bool nocase)
{
    size_t j = *i + 1;
    bool negate = j < plen && pattern[j] == '^', found = false;
    j += negate;
    c = fold(c, nocase);
    while (j < plen && pattern[j] != ']') {
        if (pattern[j] == '\\' && j + 1 < plen) {
            found |= fold((unsigned char)pattern[j + 1], nocase) == c;
            j += 2;
        } else if (j + 2 < plen && pattern[j + 1] == '-') {
            unsigned char lo = fold((unsigned char)pattern[j], nocase),
                          hi = fold((unsigned char)pattern[j + 2], nocase);
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
            found |= c >= lo && c <= hi;
            j += 3;
        } else {
            found |= fold((unsigned char)pattern[j], nocase) == c;
            j++;
        }
    }
    *i = j < plen ? j + 1 : j;
    return found != negate;
}

/* Matches c against the one-byte element at pattern[*i] (not '*'); moves *i past it. */
static bool match_one(const char *pattern, size_t plen, size_t *i, unsigned char c, bool nocase)
{
    switch (pattern[*i]) {
    case '?':
        (*i)++;
        return true;
    case '[':
        return match_class(pattern, plen, i, c, nocase);
    case '\\':
        if (*i + 1 < plen)
            (*i)++; /* the escaped byte is a literal */
        return fold((unsigned char)pattern[(*i)++], nocase) == fold(c, nocase);
    default:
        return fold((unsigned char)pattern[(*i)++], nocase) == fold(c, nocase);
    }
}

bool glob_match(const char *pattern, size_t plen, const char *s, size_t len, bool nocase)
{
    size_t p = 0, at = 0, star = SIZE_MAX, star_at = 0;
    while (at < len) {
        if (p < plen && pattern[p] == '*') {
            while (p < plen && pattern[p] == '*')
                p++;
            if (p == plen)
                return true;
            star = p;
            star_at = at;
            continue;
        }
        size_t next = p;
        if (p < plen && match_one(pattern, plen, &next, (unsigned char)s[at], nocase)) {
            p = next;
            at++;
        } else if (star != SIZE_MAX) {
            p = star; /* the last '*' takes one byte more */
            at = ++star_at;
        } else {
            return false;
        }
    }
    while (p < plen && pattern[p] == '*')
        p++;
    return p == plen;
}

size_t glob_literal_prefix(const char *pattern, size_t plen)
{
    size_t n = 0;
    while (n < plen && pattern[n] != '*' && pattern[n] != '?' && pattern[n] != '[' && pattern[n] != '\\')
        n++;
    return n;
}
