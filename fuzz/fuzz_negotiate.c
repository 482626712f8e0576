/*
 * Fuzz target: entity tags, Accept and base64 (src/http/negotiate.c).
 *
 * Input: a flags byte (bit 0: the entry exists, bit 1: weak comparison as for
 * If-None-Match, bits 2-3: which representations' tags count, bits 2-7: how
 * many of the remaining bytes are the stored media type for accept_prefers),
 * 8 bytes of version, then the field value. In the If-Match field every '@'
 * becomes the 16 hex digits of the version and every '#' the same followed by
 * "-raw", so the fuzzer can write the entry's own tags ("@" and "#") without
 * guessing them.
 *
 * Each function is compared with a reference written here for the fields a
 * strict grammar accepts (RFC 9110 §8.8.3 entity-tag lists, §12.5.1 Accept
 * with qvalues), and checked for invariants on every input: a missing entry
 * never matches, application/json is never preferred to itself, base64 output
 * has BASE64_LEN bytes of the RFC 4648 alphabet and decodes to its input, and
 * an ETag has the documented form and holds its version.
 *
 * Links: src/http/negotiate.c
 */
#include <ctype.h>
#include <strings.h>

#include "fuzz_check.h"
#include "http/negotiate.h"

/* ---- entity tags ------------------------------------------------------------ */

static const uint8_t *ref_ows(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static int is_etagc(uint8_t c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80;
}

/*
 * Strict If-Match / If-None-Match: -1 when malformed, else whether it matches
 * one of `mine`, the tags of the representations to match (mine_len[m] 0: not
 * matched).
 */
static int ref_etag(const uint8_t *p, size_t len, int exists, const char mine[2][ETAG_RAW_LEN],
                    const size_t mine_len[2], int weak)
{
    const uint8_t *end = p + len;
    p = ref_ows(p, end);
    if (p < end && *p == '*')
        return ref_ows(p + 1, end) == end ? exists : -1;
    int found = 0;
    for (;;) {
        int is_weak = end - p >= 2 && p[0] == 'W' && p[1] == '/';
        if (is_weak)
            p += 2;
        if (p == end || *p != '"')
            return -1;
        const uint8_t *open = p++;
        while (p < end && is_etagc(*p))
            p++;
        if (p == end || *p != '"')
            return -1;
        p++;
        for (int m = 0; m < 2; m++)
            if (exists && (weak || !is_weak) && mine_len[m] != 0 && (size_t)(p - open) == mine_len[m] &&
                memcmp(open, mine[m], mine_len[m]) == 0)
                found = 1;
        p = ref_ows(p, end);
        if (p == end)
            return found;
        if (*p != ',')
            return -1;
        p = ref_ows(p + 1, end);
    }
}

static void check_etag_format(uint64_t version)
{
    char tag[ETAG_RAW_LEN];
    CHECK(etag_format(tag, version, ETAG_OF_ENVELOPE) == ETAG_LEN);
    CHECK(tag[0] == '"' && tag[ETAG_LEN - 1] == '"');
    uint64_t back = 0;
    for (int i = 1; i < ETAG_LEN - 1; i++) {
        CHECK((tag[i] >= '0' && tag[i] <= '9') || (tag[i] >= 'a' && tag[i] <= 'f'));
        back = back << 4 | (uint64_t)(tag[i] <= '9' ? tag[i] - '0' : tag[i] - 'a' + 10);
    }
    CHECK(back == version);
    char raw[ETAG_RAW_LEN];
    CHECK(etag_format(raw, version, ETAG_OF_RAW) == ETAG_RAW_LEN);
    CHECK(memcmp(raw, tag, ETAG_LEN - 1) == 0 && memcmp(raw + ETAG_LEN - 1, "-raw\"", 5) == 0);
}

/*
 * '@' in the input stands for the version's 16 hex digits and '#' for the
 * same followed by "-raw", so the fuzzer reaches both tags of the entry.
 */
static void fuzz_etag(const uint8_t *raw, size_t raw_len, int exists, int weak, enum etag_of which, uint64_t version)
{
    char mine[2][ETAG_RAW_LEN];
    size_t mine_len[2] = {0, 0};
    if (which & ETAG_OF_ENVELOPE)
        mine_len[0] = etag_format(mine[0], version, ETAG_OF_ENVELOPE);
    if (which & ETAG_OF_RAW)
        mine_len[1] = etag_format(mine[1], version, ETAG_OF_RAW);
    char digits[ETAG_RAW_LEN];
    etag_format(digits, version, ETAG_OF_RAW);
    size_t len = 0;
    for (size_t i = 0; i < raw_len; i++)
        len += raw[i] == '@' ? 16 : raw[i] == '#' ? 20 : 1;
    uint8_t *field = malloc(len ? len : 1);
    CHECK(field != NULL);
    for (size_t i = 0, o = 0; i < raw_len; i++) {
        if (raw[i] == '@' || raw[i] == '#') {
            size_t n = raw[i] == '@' ? 16 : 20;
            memcpy(field + o, digits + 1, n);
            o += n;
        } else {
            field[o++] = raw[i];
        }
    }
    int got = etag_matches((const char *)field, len, exists, version, weak, which);
    CHECK(got == 0 || got == 1);
    if (!exists)
        CHECK(got == 0);
    int want = ref_etag(field, len, exists, (const char(*)[ETAG_RAW_LEN])mine, mine_len, weak);
    if (want >= 0)
        CHECK(got == want);
    if (got) {
        const uint8_t *star = ref_ows(field, field + len);
        int listed = star < field + len && *star == '*';
        for (int m = 0; m < 2; m++)
            for (size_t i = 0; !listed && mine_len[m] != 0 && i + mine_len[m] <= len; i++)
                listed = memcmp(field + i, mine[m], mine_len[m]) == 0;
        CHECK(listed);
    }
    free(field);
}

/* ---- Accept ------------------------------------------------------------------ */

static int is_tchar(uint8_t c)
{
    return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static size_t token(const uint8_t *p, const uint8_t *end)
{
    size_t n = 0;
    while (p + n < end && is_tchar(p[n]))
        n++;
    return n;
}

/* A strict qvalue in thousandths, or -1. */
static int qvalue(const uint8_t *p, size_t n)
{
    if (n == 0 || (p[0] != '0' && p[0] != '1') || n == 2 || n > 5 || (n > 1 && p[1] != '.'))
        return -1;
    int q = (p[0] - '0') * 1000, scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (!isdigit(p[i]))
            return -1;
        q += (p[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

/* The part of a media type before its parameters, as negotiate.c takes it. */
static size_t essence(const uint8_t *t, size_t len)
{
    size_t n = 0;
    while (n < len && t[n] != ';' && t[n] != ' ' && t[n] != '\t' && t[n] != ',')
        n++;
    return n;
}

static int same_ci(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tolower(a[i]) != tolower(b[i]))
            return 0;
    return 1;
}

/* How specifically range covers type: 3 exact, 2 a "major/any" range, 1 the "any/any" range, 0 not at all. */
static int ref_covers(const uint8_t *r, size_t rn, const uint8_t *t, size_t tn)
{
    if (rn == 3 && memcmp(r, "*/*", 3) == 0)
        return 1;
    const uint8_t *slash = memchr(t, '/', tn);
    if (slash == NULL)
        return 0;
    size_t major = (size_t)(slash - t) + 1;
    if (rn == major + 1 && r[rn - 1] == '*' && same_ci(r, t, major))
        return 2;
    return rn == tn && same_ci(r, t, tn) ? 3 : 0;
}

/*
 * Strict Accept: #( type "/" subtype *( OWS ";" OWS name "=" token ) ), at
 * most one parameter being q with a strict qvalue. Returns -1 when malformed,
 * else the quality (thousandths) of the most specific range covering type.
 */
static int ref_quality(const uint8_t *p, size_t len, const uint8_t *type, size_t type_len)
{
    const uint8_t *end = p + len;
    int best_spec = 0, best_q = 0;
    p = ref_ows(p, end);
    if (p == end)
        return 0;
    for (;;) {
        const uint8_t *range = p;
        size_t n = token(p, end);
        if (n == 0 || p + n == end || p[n] != '/')
            return -1;
        p += n + 1;
        if ((n = token(p, end)) == 0)
            return -1;
        p += n;
        size_t range_len = (size_t)(p - range);
        int q = 1000, qs = 0;
        for (;;) {
            const uint8_t *s = ref_ows(p, end);
            if (s == end || *s != ';')
                break;
            p = ref_ows(s + 1, end);
            size_t name = token(p, end);
            if (name == 0 || p + name == end || p[name] != '=')
                return -1;
            const uint8_t *v = p + name + 1;
            size_t vn = token(v, end);
            if (name == 1 && (p[0] == 'q' || p[0] == 'Q')) {
                if (qs++ || (q = qvalue(v, vn)) < 0)
                    return -1;
            } else if (vn == 0) {
                return -1;
            }
            p = v + vn;
        }
        int spec = ref_covers(range, range_len, type, type_len);
        if (spec > best_spec) {
            best_spec = spec;
            best_q = q;
        }
        p = ref_ows(p, end);
        if (p == end)
            return best_q;
        if (*p != ',')
            return -1;
        p = ref_ows(p + 1, end);
    }
}

static void fuzz_accept(const uint8_t *type, size_t type_len, const uint8_t *accept, size_t accept_len)
{
    static const char json[] = "application/json";
    int got = accept_prefers((const char *)accept, accept_len, (const char *)type, type_len);
    CHECK(got == 0 || got == 1);
    CHECK(accept_prefers((const char *)accept, accept_len, json, strlen(json)) == 0);
    size_t tn = essence(type, type_len);
    int qt = ref_quality(accept, accept_len, type, tn);
    int qj = ref_quality(accept, accept_len, (const uint8_t *)json, strlen(json));
    if (qt >= 0 && qj >= 0)
        CHECK(got == (qt > qj));
}

/* ---- base64 ------------------------------------------------------------------ */

static int b64_value(char c)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *at = c ? strchr(alphabet, c) : NULL;
    return at ? (int)(at - alphabet) : -1;
}

static void fuzz_base64(const uint8_t *src, size_t n)
{
    size_t len = BASE64_LEN(n);
    char *out = malloc(len ? len : 1);
    uint8_t *back = malloc(n ? n : 1);
    CHECK(out != NULL && back != NULL);
    char *end = base64_encode(out, src, n);
    CHECK((size_t)(end - out) == len && len % 4 == 0);
    size_t pad = 0;
    while (pad < len && out[len - 1 - pad] == '=')
        pad++;
    CHECK(pad == (3 - n % 3) % 3);
    size_t m = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = 0;
        for (size_t j = 0; j < 4; j++) {
            int d = i + j < len - pad ? b64_value(out[i + j]) : 0;
            CHECK(d >= 0);
            v = v << 6 | (uint32_t)d;
        }
        for (size_t j = 0; j < 3 && m < n; j++)
            back[m++] = (uint8_t)(v >> (16 - 8 * j));
    }
    CHECK(m == n && memcmp(back, src, n) == 0);
    free(out);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cursor c = {data, data + size};
    uint8_t flags = cursor_u8(&c);
    uint64_t version = cursor_u64(&c);
    const uint8_t *rest = c.p;
    size_t rest_len = (size_t)(c.end - c.p);

    check_etag_format(version);
    static const enum etag_of whiches[] = {ETAG_OF_ENVELOPE, ETAG_OF_RAW, ETAG_OF_EITHER, ETAG_OF_EITHER};
    fuzz_etag(rest, rest_len, flags & 1, (flags >> 1) & 1, whiches[(flags >> 2) & 3], version);

    size_t type_len = (size_t)(flags >> 2) < rest_len ? (size_t)(flags >> 2) : rest_len;
    fuzz_accept(rest, type_len, rest + type_len, rest_len - type_len);

    fuzz_base64(data, size);
    return 0;
}
