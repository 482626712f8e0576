/*
 * Configuration: every setting is one row of `options` below, with its flag,
 * its parser, its bounds and its help line. The environment variable is
 * derived from the flag (--max-memory -> CACHETTE_MAX_MEMORY), so flags, the
 * environment and --help cannot drift apart. Values are applied in order:
 * built-in defaults, then the environment, then the command line, and a bad
 * value anywhere stops start-up with a message naming its source.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cmd/cmd.h"

#define CACHETTE_VERSION "0.1.0"

enum option_type {
    OPT_ADDRESS,
    OPT_UINT,
    OPT_SIZE,
    OPT_DURATION,
    OPT_EVICTION,
    OPT_SWITCH, /* on or off, into an int */
    OPT_LOG_LEVEL,
    OPT_LOG_FORMAT,
    OPT_TOKEN,
    OPT_TOKEN_FILE,
    OPT_READABLE_FILE, /* a path that must be readable now */
    OPT_PATH,          /* a path opened later (the log file) */
    OPT_APPEND_LOG,
    OPT_FLAG,          /* given alone on the command line (on); on or off in the environment */
};

struct option_def {
    const char *flag; /* without the leading "--" */
    enum option_type type;
    size_t offset;    /* into struct config */
    uint64_t min, max;
    const char *help;
};

#define FIELD(f) offsetof(struct config, f)
#define KIB 1024ULL
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)
/*
 * The store keeps entries of up to 8 KiB in a 32 GiB reservation (its slab
 * allocator, docs/DESIGN.md); a bound of three quarters of that leaves room
 * for partly used pages, so the cache evicts before the reservation runs out.
 */
#define CONFIG_MAX_MEMORY (STORE_ENTRY_RESERVE / 4 * 3)

static const struct option_def options[] = {
    {"port", OPT_UINT, FIELD(port), 0, 65535,
     "TCP port; 0 picks a free one (default 8080); HTTPS only with --tls-cert and no --tls-port"},
    {"bind", OPT_ADDRESS, FIELD(bind), 0, 0, "IPv4 or IPv6 address to listen on (default 127.0.0.1)"},
    {"threads", OPT_UINT, FIELD(threads), 1, 1024,
     "worker threads, each with its own event loop (default: online cores)"},
    {"max-memory", OPT_SIZE, FIELD(max_memory), 64 * KIB, CONFIG_MAX_MEMORY,
     "bound on the bytes the cache holds, e.g. 512mb, at most 24g (default: a quarter of RAM, at most 24g)"},
    {"eviction", OPT_EVICTION, FIELD(eviction), 0, 0,
     "at max-memory: s3fifo or sieve evict, noeviction refuses writes with 507 (default s3fifo)"},
    {"max-key-bytes", OPT_SIZE, FIELD(max_key_bytes), 1, STORE_MAX_KEY_LEN, "longest key (default 1024)"},
    {"max-value-bytes", OPT_SIZE, FIELD(max_value_bytes), 1, 1ULL << 31, "largest stored value (default 1mb)"},
    {"max-body-bytes", OPT_SIZE, FIELD(max_body_bytes), 1024, 1ULL << 32,
     "largest request body (default 2mb plus max-value-bytes over 1mb)"},
    {"max-header-bytes", OPT_SIZE, FIELD(max_header_bytes), 1024, 400 * KIB,
     "request line and headers together; larger gets 431 (default 64kb)"},
    {"max-batch", OPT_UINT, FIELD(max_batch), 1, 100000, "items in one _mget or _mset request (default 1000)"},
    {"max-mget-bytes", OPT_SIZE, FIELD(max_mget_bytes), 1024, 1ULL << 34,
     "largest _mget response body; asking for more gets 413 (default 64mb)"},
    {"default-ttl", OPT_DURATION, FIELD(default_ttl_ms), 0, CMD_MAX_TTL_MS,
     "TTL of writes that give none, e.g. 10m; 0 = never expire (default 0)"},
    {"max-connections", OPT_UINT, FIELD(max_connections), 1, 1000000, "open connections at most (default 10000)"},
    {"write-timeout", OPT_DURATION, FIELD(write_timeout_ms), 1000, 3600000,
     "close a connection whose client takes none of a response for this long (default 60s)"},
    {"request-timeout", OPT_DURATION, FIELD(request_timeout_ms), 100, 3600000,
     "HTTP/1 time to wait for and read a request, idle keep-alive included (default 10s)"},
    {"idle-timeout", OPT_DURATION, FIELD(idle_timeout_ms), 100, 86400000,
     "HTTP/2 connection idle time before it is closed (default 60s)"},
    {"drain-timeout", OPT_DURATION, FIELD(drain_timeout_ms), 0, 600000,
     "on SIGTERM/SIGINT, time to let open connections finish (default 5s)"},
    {"auth-token", OPT_TOKEN, FIELD(auth_token), 0, 0,
     "require Authorization: Bearer <token> on every request but /health (1-256 of A-Z a-z 0-9 - . _ ~ + / =)"},
    {"auth-token-file", OPT_TOKEN_FILE, FIELD(auth_token), 0, 0, "read the bearer token from this file (one line)"},
    {"tls-cert", OPT_READABLE_FILE, FIELD(tls_cert), 0, 0,
     "PEM certificate chain: serve HTTPS, with HTTP/2 through ALPN (needs --tls-key)"},
    {"tls-key", OPT_READABLE_FILE, FIELD(tls_key), 0, 0, "PEM private key of --tls-cert"},
    {"tls-port", OPT_UINT, FIELD(tls_port), 0, 65535,
     "serve HTTPS on this port and plain HTTP on --port too (default: HTTPS only, on --port)"},
    {"resp-port", OPT_UINT, FIELD(resp_port), 0, 65535,
     "also speak the Redis protocol (RESP2, RESP3) on this port; 0 picks a free one (default: off)"},
    {"resp-max-output", OPT_SIZE, FIELD(resp_max_output), 64 * KIB, 1ULL << 34,
     "close a RESP connection whose unsent replies exceed this (default 64mb)"},
    {"http2", OPT_SWITCH, FIELD(http2), 0, 0,
     "on or off: HTTP/2 (h2c by prior knowledge or Upgrade, h2 by ALPN) besides HTTP/1.1 (default on)"},
    {"flush-when-down", OPT_SWITCH, FIELD(flush_when_down), 0, 0,
     "on or off: behind HAProxy (http-check send-state), empty the cache when a health check says the balancer took "
     "this node out, so it never serves a value rewritten on another node meanwhile (default off)"},
    {"log-file", OPT_PATH, FIELD(log_file), 0, 0, "append the log to this file, reopened on SIGHUP (default stderr)"},
    {"log-level", OPT_LOG_LEVEL, FIELD(log_level), 0, 0, "error, warn, info or debug (default info)"},
    {"log-format", OPT_LOG_FORMAT, FIELD(log_format), 0, 0,
     "text or json (one object a line: time, level, message; for log shippers) (default text)"},
    {"data-dir", OPT_PATH, FIELD(data_dir), 0, 0,
     "keep the cache across restarts in this directory (created 0700; default: none, nothing is saved)"},
    {"snapshot-interval", OPT_DURATION, FIELD(snapshot_interval_ms), 0, 7 * 86400000ULL,
     "with --data-dir: write a snapshot this often; 0 = only at shutdown and on POST /snapshot (default 5m)"},
    {"append-log", OPT_APPEND_LOG, FIELD(append_log), 0, 0,
     "with --data-dir: log every write; off, no (the OS flushes), everysec (fsync each second) or always (fsync "
     "before answering) (default off)"},
    {"recover", OPT_FLAG, FIELD(recover), 0, 0,
     "(no value) load every record that verifies from damaged files instead of stopping"},
    {"clock-offset", OPT_DURATION, FIELD(clock_offset_ms), 0, 3650 * 86400000ULL,
     "move the clock that saved expiry times are read with forward (tests of TTLs across a restart; default 0)"},
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static void set_defaults(struct config *cfg)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);

    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->bind, "127.0.0.1");
    cfg->port = 8080;
    cfg->tls_port = CONFIG_PORT_UNSET;
    cfg->resp_port = CONFIG_PORT_UNSET;
    cfg->resp_max_output = 64 * MIB;
    cfg->threads = cores > 0 ? (unsigned)cores : 1;
    cfg->max_memory = pages > 0 && page_size > 0 ? (size_t)pages * (size_t)page_size / 4 : 256 * MIB;
    if (cfg->max_memory > CONFIG_MAX_MEMORY)
        cfg->max_memory = CONFIG_MAX_MEMORY;
    cfg->max_key_bytes = 1024;
    cfg->max_value_bytes = MIB;
    cfg->max_body_bytes = 0; /* derived in config_load unless set */
    cfg->max_connections = 10000;
    cfg->max_batch = 1000;
    cfg->max_mget_bytes = 64 * MIB;
    cfg->max_header_bytes = 64 * KIB;
    cfg->request_timeout_ms = 10000;
    cfg->write_timeout_ms = 60000;
    cfg->idle_timeout_ms = 60000;
    cfg->drain_timeout_ms = 5000;
    cfg->eviction = STORE_EVICT_S3FIFO;
    cfg->http2 = 1;
    cfg->log_level = LOG_LEVEL_INFO;
    cfg->snapshot_interval_ms = 5 * 60 * 1000;
    cfg->append_log = PERSIST_LOG_OFF;
}

struct unit {
    const char *suffix;
    uint64_t scale;
};

/* Parses "<digits><unit>" with a unit from the table (case-insensitive) into n * scale, at most max. */
static int parse_scaled(const char *text, const struct unit *units, size_t nunits, uint64_t max, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)text[0]))
        return -1;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (errno != 0)
        return -1;
    for (size_t i = 0; i < nunits; i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            if (n > max / units[i].scale)
                return -1;
            *out = n * units[i].scale;
            return 0;
        }
    }
    return -1;
}

int config_parse_size(const char *text, size_t *out)
{
    static const struct unit units[] = {{"", 1},   {"b", 1},   {"k", KIB}, {"kb", KIB}, {"m", MIB},
                                        {"mb", MIB}, {"g", GIB}, {"gb", GIB}, {"t", GIB * KIB}, {"tb", GIB * KIB}};
    uint64_t n;
    if (parse_scaled(text, units, sizeof(units) / sizeof(units[0]), SIZE_MAX, &n) != 0)
        return -1;
    *out = (size_t)n;
    return 0;
}

int config_parse_duration_ms(const char *text, int64_t *out)
{
    static const struct unit units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    uint64_t n;
    if (parse_scaled(text, units, sizeof(units) / sizeof(units[0]), INT64_MAX, &n) != 0)
        return -1;
    *out = (int64_t)n;
    return 0;
}

static int is_numeric_address(const char *text)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(text, NULL, &hints, &res) != 0)
        return 0;
    freeaddrinfo(res);
    return 1;
}

/* A bearer token: RFC 6750's token68 characters, which are all visible ASCII. */
static int is_token(const char *text)
{
    size_t len = strlen(text);
    if (len == 0 || len > CONFIG_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)text[i]) && !strchr("-._~+/=", text[i]))
            return 0;
    return 1;
}

/* Reads a token from the first line of a file; returns 0 or -1 (message printed, naming source). */
static int read_token_file(const char *path, const char *source, char *token, size_t size)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cachette: cannot read %s %s: %s\n", source, path, strerror(errno));
        return -1;
    }
    char line[CONFIG_TOKEN_MAX + 3] = "";
    int ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    if (!ok || !is_token(line)) {
        fprintf(stderr, "cachette: %s %s must hold one token of 1-256 characters (letters, digits, -._~+/=)\n", source,
                path);
        return -1;
    }
    snprintf(token, size, "%s", line);
    return 0;
}

static int parse_uint(const char *text, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)text[0]))
        return -1;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = n;
    return 0;
}

/* Applies one setting; returns 0, or -1 after printing why (source names the flag or variable). */
static int apply(struct config *cfg, const struct option_def *opt, const char *value, const char *source)
{
    char *field = (char *)cfg + opt->offset;
    uint64_t n = 0;
    int64_t ms = 0;
    size_t size = 0;
    int bad = 0;

    switch (opt->type) {
    case OPT_ADDRESS:
        bad = strlen(value) >= sizeof(cfg->bind) || !is_numeric_address(value);
        if (!bad)
            strcpy(field, value);
        break;
    case OPT_UINT:
        bad = parse_uint(value, &n) != 0 || n < opt->min || n > opt->max;
        if (!bad)
            *(unsigned *)field = (unsigned)n;
        break;
    case OPT_SIZE:
        bad = config_parse_size(value, &size) != 0 || size < opt->min || size > opt->max;
        if (!bad)
            *(size_t *)field = size;
        break;
    case OPT_DURATION:
        bad = config_parse_duration_ms(value, &ms) != 0 || (uint64_t)ms < opt->min || (uint64_t)ms > opt->max;
        if (!bad)
            *(int64_t *)field = ms;
        break;
    case OPT_EVICTION:
        if (strcmp(value, "sieve") == 0)
            *(enum store_eviction *)field = STORE_EVICT_SIEVE;
        else if (strcmp(value, "s3fifo") == 0)
            *(enum store_eviction *)field = STORE_EVICT_S3FIFO;
        else if (strcmp(value, "noeviction") == 0)
            *(enum store_eviction *)field = STORE_EVICT_NONE;
        else
            bad = 1;
        break;
    case OPT_APPEND_LOG:
        if (strcmp(value, "off") == 0)
            *(enum persist_append_log *)field = PERSIST_LOG_OFF;
        else if (strcmp(value, "no") == 0)
            *(enum persist_append_log *)field = PERSIST_LOG_NO;
        else if (strcmp(value, "everysec") == 0)
            *(enum persist_append_log *)field = PERSIST_LOG_EVERYSEC;
        else if (strcmp(value, "always") == 0)
            *(enum persist_append_log *)field = PERSIST_LOG_ALWAYS;
        else
            bad = 1;
        break;
    case OPT_SWITCH:
    case OPT_FLAG:
        if (strcmp(value, "on") == 0 || strcmp(value, "off") == 0)
            *(int *)field = strcmp(value, "on") == 0;
        else
            bad = 1;
        break;
    case OPT_LOG_LEVEL:
        bad = log_parse_level(value, (enum log_level *)field) != 0;
        break;
    case OPT_LOG_FORMAT:
        bad = log_parse_format(value, (enum log_format *)field) != 0;
        break;
    case OPT_TOKEN:
        bad = !is_token(value);
        if (!bad)
            strcpy(field, value);
        break;
    case OPT_TOKEN_FILE:
        return read_token_file(value, source, field, sizeof(cfg->auth_token));
    case OPT_READABLE_FILE:
        if (value[0] == '\0' || strlen(value) >= CONFIG_PATH_MAX) {
            bad = 1;
        } else if (access(value, R_OK) != 0) {
            fprintf(stderr, "cachette: cannot read %s %s: %s\n", source, value, strerror(errno));
            return -1;
        } else {
            strcpy(field, value);
        }
        break;
    case OPT_PATH:
        bad = value[0] == '\0' || strlen(value) >= CONFIG_PATH_MAX;
        if (!bad)
            strcpy(field, value);
        break;
    }
    if (bad && opt->type == OPT_TOKEN) {
        /* Never echo a secret, even a malformed one. */
        fprintf(stderr, "cachette: invalid value for %s: expected %s\n", source, opt->help);
        return -1;
    }
    if (bad) {
        fprintf(stderr, "cachette: invalid value '%s' for %s: expected %s\n", value, source, opt->help);
        return -1;
    }
    return 0;
}

static void env_name(const struct option_def *opt, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "CACHETTE_%s", opt->flag);
    for (size_t i = 0; i < n && i < size; i++)
        buf[i] = buf[i] == '-' ? '_' : (char)toupper((unsigned char)buf[i]);
}

static void print_help(void)
{
    char env[64];
    printf("usage: cachette [--flag value | --flag=value]...\n\n"
           "An HTTP/JSON key/value cache. Every flag may also be set by the\n"
           "environment variable shown; flags win over the environment.\n\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        env_name(&options[i], env, sizeof(env));
        printf("  --%-18s %s\n  %-20s   [env %s]\n", options[i].flag, options[i].help, "", env);
    }
    printf("  --%-18s %s\n  --%-18s %s\n", "help", "print this help and exit", "version",
           "print the version and exit");
}

static const struct option_def *find_option(const char *flag, size_t len)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strlen(options[i].flag) == len && strncmp(options[i].flag, flag, len) == 0)
            return &options[i];
    return NULL;
}

enum config_outcome config_load(struct config *cfg, int argc, char **argv)
{
    char env[64], source[96];
    const struct option_def *token_flag = NULL;
    set_defaults(cfg);

    for (size_t i = 0; i < NOPTIONS; i++) {
        env_name(&options[i], env, sizeof(env));
        const char *value = getenv(env);
        if (value != NULL && apply(cfg, &options[i], value, env) != 0)
            return CONFIG_ERROR;
    }

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_help();
            return CONFIG_EXIT;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("cachette %s\n", CACHETTE_VERSION);
            return CONFIG_EXIT;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "cachette: unexpected argument '%s' (see --help)\n", arg);
            return CONFIG_ERROR;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const struct option_def *opt = find_option(name, name_len);
        if (opt == NULL) {
            fprintf(stderr, "cachette: unknown flag '%.*s' (see --help)\n", (int)(name_len + 2), arg);
            return CONFIG_ERROR;
        }
        const char *value = eq ? eq + 1 : opt->type == OPT_FLAG ? "on" : (i + 1 < argc ? argv[++i] : NULL);
        if (value == NULL) {
            fprintf(stderr, "cachette: flag --%s needs a value\n", opt->flag);
            return CONFIG_ERROR;
        }
        snprintf(source, sizeof(source), "--%s", opt->flag);
        if (apply(cfg, opt, value, source) != 0)
            return CONFIG_ERROR;
        if (opt->type == OPT_TOKEN || opt->type == OPT_TOKEN_FILE) {
            if (token_flag != NULL && token_flag != opt) {
                fprintf(stderr, "cachette: give --auth-token or --auth-token-file, not both\n");
                return CONFIG_ERROR;
            }
            token_flag = opt;
        }
    }

    if (cfg->max_body_bytes == 0)
        cfg->max_body_bytes = 2 * MIB + (cfg->max_value_bytes > MIB ? cfg->max_value_bytes - MIB : 0);
    if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0')) {
        fprintf(stderr, "cachette: --tls-cert and --tls-key go together\n");
        return CONFIG_ERROR;
    }
    if (cfg->tls_port != CONFIG_PORT_UNSET && cfg->tls_cert[0] == '\0') {
        fprintf(stderr, "cachette: --tls-port needs --tls-cert and --tls-key\n");
        return CONFIG_ERROR;
    }
    if (cfg->tls_port != CONFIG_PORT_UNSET && cfg->tls_port != 0 && cfg->tls_port == cfg->port) {
        fprintf(stderr, "cachette: --tls-port and --port must differ (%u)\n", cfg->port);
        return CONFIG_ERROR;
    }
    if (cfg->resp_port != CONFIG_PORT_UNSET && cfg->resp_port != 0 &&
        (cfg->resp_port == cfg->port || cfg->resp_port == cfg->tls_port)) {
        fprintf(stderr, "cachette: --resp-port must differ from --port and --tls-port (%u)\n", cfg->resp_port);
        return CONFIG_ERROR;
    }
    if (cfg->data_dir[0] == '\0' && (cfg->append_log != PERSIST_LOG_OFF || cfg->recover)) {
        fprintf(stderr, "cachette: --%s needs --data-dir\n", cfg->recover ? "recover" : "append-log");
        return CONFIG_ERROR;
    }
    if (cfg->max_value_bytes > cfg->max_memory) {
        fprintf(stderr, "cachette: --max-value-bytes (%zu) is larger than --max-memory (%zu)\n",
                cfg->max_value_bytes, cfg->max_memory);
        return CONFIG_ERROR;
    }
    return CONFIG_RUN;
}

const char *config_version(void)
{
    return CACHETTE_VERSION;
}
