/*
 * Fuzz target: size and duration strings (config_parse_size,
 * config_parse_duration_ms in src/config.c) and log levels (log_parse_level,
 * src/log.c).
 *
 * The input, up to its first NUL, is one flag value as the command line or
 * the environment would give it. Each parser is compared with a reference
 * written here: decimal digits, then a unit from the documented table
 * (case-insensitive), the product at most SIZE_MAX or INT64_MAX, anything
 * else refused with the output left alone.
 *
 * config_load itself is not fuzzed: it reads the environment and files named
 * on its command line (--auth-token-file) and prints, which a fuzzer should
 * not drive at random; its value parsers are what is fuzzed here.
 *
 * Links: src/config.c src/log.c src/cmd/utf8.c
 */
#include <strings.h>

#include "config.h"
#include "fuzz_check.h"
#include "log.h"

struct unit {
    const char *suffix;
    uint64_t scale;
};

/* digits, then exactly one of units; 0 with *out set, or -1. */
static int ref_scaled(const char *text, const struct unit *units, size_t nunits, uint64_t max, uint64_t *out)
{
    size_t i = 0;
    uint64_t n = 0;
    int overflow = 0;
    while (text[i] >= '0' && text[i] <= '9') {
        uint64_t d = (uint64_t)(text[i] - '0');
        if (n > (UINT64_MAX - d) / 10)
            overflow = 1;
        n = n * 10 + d;
        i++;
    }
    if (i == 0 || overflow)
        return -1;
    for (size_t u = 0; u < nunits; u++) {
        if (strcasecmp(text + i, units[u].suffix) == 0) {
            if (n > max / units[u].scale)
                return -1;
            *out = n * units[u].scale;
            return 0;
        }
    }
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct unit sizes[] = {{"", 1},           {"b", 1},           {"k", 1ull << 10}, {"kb", 1ull << 10},
                                        {"m", 1ull << 20}, {"mb", 1ull << 20}, {"g", 1ull << 30}, {"gb", 1ull << 30},
                                        {"t", 1ull << 40}, {"tb", 1ull << 40}};
    static const struct unit durations[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    static const char *const levels[] = {"error", "warn", "info", "debug"};

    char *text = malloc(size + 1); /* exactly the string and its NUL: ASan sees a read past it */
    CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';

    size_t got_size = 12345, want_size = 12345;
    uint64_t want = 0;
    int rc = config_parse_size(text, &got_size);
    int ref = ref_scaled(text, sizes, sizeof(sizes) / sizeof(sizes[0]), SIZE_MAX, &want);
    CHECK(rc == ref);
    if (ref == 0)
        want_size = (size_t)want;
    CHECK(got_size == want_size);

    int64_t got_ms = -12345, want_ms = -12345;
    rc = config_parse_duration_ms(text, &got_ms);
    ref = ref_scaled(text, durations, sizeof(durations) / sizeof(durations[0]), INT64_MAX, &want);
    CHECK(rc == ref);
    if (ref == 0)
        want_ms = (int64_t)want;
    CHECK(got_ms == want_ms);
    if (rc == 0)
        CHECK(got_ms >= 0);

    enum log_level level = (enum log_level) - 1, want_level = (enum log_level) - 1;
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (strcmp(text, levels[i]) == 0)
            want_level = (enum log_level)i;
    rc = log_parse_level(text, &level);
    CHECK(rc == (want_level == (enum log_level) - 1 ? -1 : 0));
    CHECK(level == want_level);

    free(text);
    return 0;
}
