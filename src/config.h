/* Server settings from flags and CACHETTE_* environment variables (config.c). */
#ifndef CACHETTE_CONFIG_H
#define CACHETTE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cachette/store.h"
#include "log.h"
#include "persist/persist.h"

/* Longest bearer token accepted. */
#define CONFIG_TOKEN_MAX 256

/* Longest file path accepted (Linux's PATH_MAX, terminator included). */
#define CONFIG_PATH_MAX 4096

/* tls_port when --tls-port was not given. */
#define CONFIG_PORT_UNSET 65536u

struct config {
    char bind[64];
    unsigned port;              /* 0 = any free port, printed at start */
    unsigned tls_port;          /* CONFIG_PORT_UNSET: HTTPS (if any) takes over port */
    unsigned resp_port;         /* CONFIG_PORT_UNSET: no Redis-protocol port */
    size_t resp_max_output;     /* a RESP connection's unsent replies, at most */
    char tls_cert[CONFIG_PATH_MAX]; /* empty: no HTTPS */
    char tls_key[CONFIG_PATH_MAX];
    char log_file[CONFIG_PATH_MAX]; /* empty: stderr */
    unsigned threads;
    size_t max_memory;
    size_t max_key_bytes;
    size_t max_value_bytes;
    size_t max_body_bytes;
    size_t max_header_bytes;
    unsigned max_batch;
    size_t max_mget_bytes;
    int64_t default_ttl_ms;     /* 0 = entries never expire unless asked */
    unsigned max_connections;
    int64_t request_timeout_ms;
    int64_t write_timeout_ms;
    int64_t idle_timeout_ms;
    int64_t drain_timeout_ms;
    enum store_eviction eviction;
    int http2; /* also serve HTTP/2 (h2c and ALPN h2) */
    int flush_when_down; /* empty the cache when a balancer's check says it took this node out */
    enum log_level log_level;
    enum log_format log_format;
    char auth_token[CONFIG_TOKEN_MAX + 1]; /* empty: no authentication */
    char data_dir[CONFIG_PATH_MAX];  /* empty: no persistence */
    int64_t snapshot_interval_ms;    /* 0: at shutdown and on request only */
    enum persist_append_log append_log;
    int recover;                     /* --recover */
    int64_t clock_offset_ms;         /* --clock-offset */
};

enum config_outcome {
    CONFIG_RUN = 0,   /* settings are valid: start the server */
    CONFIG_EXIT = 1,  /* --help or --version was printed: exit 0 */
    CONFIG_ERROR = 2, /* a message was printed to stderr: exit 2 */
};

/*
 * Fills cfg from the defaults, then CACHETTE_<NAME> environment variables,
 * then argv (flags win). Prints --help, --version or a clear error itself.
 */
/* The version string, e.g. "0.1.0". */
const char *config_version(void);

enum config_outcome config_load(struct config *cfg, int argc, char **argv);

/*
 * Parses a byte size: a whole number with an optional unit b, k/kb, m/mb,
 * g/gb, t/tb (powers of 1024; case-insensitive; "512mb"). Returns 0 or -1.
 */
int config_parse_size(const char *text, size_t *out);

/* Parses a duration: a whole number with unit ms, s, m or h ("30s"); a bare number is seconds. */
int config_parse_duration_ms(const char *text, int64_t *out);

#endif
