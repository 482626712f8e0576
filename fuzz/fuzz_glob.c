/*
 * Fuzz target: glob matching (src/resp/glob.c), the KEYS and SCAN MATCH
 * patterns, against a reference written here another way: the pattern is
 * first cut into elements (a '*', or a test on one byte), then a table says
 * for every pair of positions whether the rest of the pattern matches the
 * rest of the string. glob.c instead walks both with one remembered '*'.
 * Also checked: every match starts with the pattern's literal prefix.
 *
 * Input: one byte, the pattern's length (what is left if fewer), the pattern, then the string.
 *
 * Links: src/resp/glob.c
 */
#include <stdbool.h>

#include "fuzz_check.h"
#include "resp/glob.h"

#define MAX_LEN 200

struct element {
    bool star;
    bool set[256]; /* for a one-byte element: the bytes it matches */
};

/* Cuts the pattern into elements as Redis's KEYS documentation reads it; returns how many. */
static size_t ref_elements(const uint8_t *p, size_t plen, bool nocase, struct element *out)
{
    size_t n = 0;
    for (size_t i = 0; i < plen; n++) {
        struct element *e = &out[n];
        memset(e, 0, sizeof(*e));
        if (p[i] == '*') {
            e->star = true;
            i++;
        } else if (p[i] == '?') {
            memset(e->set, true, sizeof(e->set));
            i++;
        } else if (p[i] == '[') {
            size_t j = i + 1;
            bool negate = j < plen && p[j] == '^';
            if (negate)
                j++;
            while (j < plen && p[j] != ']') {
                int lo, hi;
                if (p[j] == '\\' && j + 1 < plen) {
                    lo = hi = p[j + 1];
                    j += 2;
                } else if (j + 2 < plen && p[j + 1] == '-') {
                    lo = p[j] < p[j + 2] ? p[j] : p[j + 2];
                    hi = p[j] < p[j + 2] ? p[j + 2] : p[j];
                    j += 3;
                } else {
                    lo = hi = p[j];
                    j++;
                }
                for (int c = 0; c < 256; c++) {
                    int folded = nocase && c >= 'A' && c <= 'Z' ? c + 32 : c;
                    int flo = nocase && lo >= 'A' && lo <= 'Z' ? lo + 32 : lo;
                    int fhi = nocase && hi >= 'A' && hi <= 'Z' ? hi + 32 : hi;
                    if (flo > fhi) {
                        int t = flo;
                        flo = fhi;
                        fhi = t;
                    }
                    if (folded >= flo && folded <= fhi)
                        e->set[c] = true;
                }
            }
            if (negate)
                for (int c = 0; c < 256; c++)
                    e->set[c] = !e->set[c];
            i = j < plen ? j + 1 : j;
        } else {
            if (p[i] == '\\' && i + 1 < plen)
                i++;
            int c = p[i++];
            e->set[c] = true;
            if (nocase && c >= 'a' && c <= 'z')
                e->set[c - 32] = true;
            if (nocase && c >= 'A' && c <= 'Z')
                e->set[c + 32] = true;
        }
    }
    return n;
}

static bool ref_match(const struct element *e, size_t n, const uint8_t *s, size_t len)
{
    static bool rest[MAX_LEN + 2][MAX_LEN + 2]; /* rest[i][j]: elements i.. match s[j..] */
    for (size_t i = n + 1; i-- > 0;)
        for (size_t j = len + 1; j-- > 0;) {
            if (i == n)
                rest[i][j] = j == len;
            else if (e[i].star)
                rest[i][j] = rest[i + 1][j] || (j < len && rest[i][j + 1]);
            else
                rest[i][j] = j < len && e[i].set[s[j]] && rest[i + 1][j + 1];
        }
    return rest[0][0];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct element elements[MAX_LEN];
    if (size == 0 || size > 2 * MAX_LEN)
        return 0;
    size_t plen = data[0] < size - 1 ? data[0] : size - 1;
    const uint8_t *pattern = data + 1, *s = data + 1 + plen;
    size_t len = size - 1 - plen;
    if (plen > MAX_LEN || len > MAX_LEN)
        return 0;
    for (int nocase = 0; nocase < 2; nocase++) {
        size_t n = ref_elements(pattern, plen, nocase, elements);
        bool got = glob_match((const char *)pattern, plen, (const char *)s, len, nocase);
        CHECK(got == ref_match(elements, n, s, len));
        size_t prefix = glob_literal_prefix((const char *)pattern, plen);
        CHECK(prefix <= plen);
        if (got && !nocase)
            CHECK(prefix <= len && memcmp(pattern, s, prefix) == 0);
    }
    return 0;
}
