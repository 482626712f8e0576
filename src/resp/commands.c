/*
 * The RESP front's commands: one table from name to handler, each handler a
 * thin translation of Redis's command onto the command layer (src/cmd/), and
 * one table from the layer's statuses to Redis's error texts.
 *
 * Values: a SET of a decimal integer (Redis's rules: no '+', no leading
 * zero, within int64) is stored as a JSON integer, so INCR counts from it
 * and HTTP reads a number; other valid UTF-8 as a text string (HTTP reads a
 * JSON string); other bytes as application/octet-stream (HTTP reads them as
 * value_base64, or raw). GET returns an entry's bytes whatever its kind: a
 * JSON value stored over HTTP as its JSON text.
 *
 * Redis's compound commands are made race-free with the store's versions
 * rather than a lock: SET … GET, GETSET, GETDEL, SET … XX, KEEPTTL and
 * PERSIST read the entry's version, then write on the condition that it is
 * unchanged, and start again if it changed in between. So GETSET returns
 * exactly the value its write replaced, even under concurrent writers.
 */
#define _GNU_SOURCE /* FNM_CASEFOLD */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "cmd/batch.h"
#include "cmd/utf8.h"
#include "persist/persist.h"
#include "resp/glob.h"
#include "resp/internal.h"

/* Attempts of a read-then-write-if-unchanged loop before giving up (each failed one means another client wrote). */
#define CAS_ATTEMPTS  1000
#define REDIS_VERSION "7.0.0"

struct args {
    const char *base;
    const struct resp_arg *argv;
    size_t argc;
};

static const char *arg(const struct args *a, size_t i)
{
    return a->base + a->argv[i].offset;
}

static size_t arg_len(const struct args *a, size_t i)
{
    return a->argv[i].len;
}

/* Whether argument i is word, in any case. */
static bool arg_is(const struct args *a, size_t i, const char *word)
{
    size_t n = strlen(word);
    return arg_len(a, i) == n && strncasecmp(arg(a, i), word, n) == 0;
}

/* Redis's string2ll: an optional '-', digits without a leading zero, within int64. */
static bool parse_int64(const char *s, size_t len, int64_t *out)
{
    bool negative = len > 0 && s[0] == '-';
    size_t at = negative;
    if (at == len || len > 20 || (s[at] == '0' && len - at > 1) || (negative && s[at] == '0'))
        return false;
    uint64_t magnitude = 0;
    for (; at < len; at++) {
        if (s[at] < '0' || s[at] > '9')
            return false;
        uint64_t digit = (uint64_t)(s[at] - '0');
        if (magnitude > (UINT64_MAX - digit) / 10)
            return false;
        magnitude = magnitude * 10 + digit;
    }
    if (negative ? magnitude > (uint64_t)INT64_MAX + 1 : magnitude > (uint64_t)INT64_MAX)
        return false;
    *out = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
    return true;
}

static bool arg_int64(const struct args *a, size_t i, int64_t *out)
{
    return parse_int64(arg(a, i), arg_len(a, i), out);
}

static const struct cmd_ctx *cmd_of(const struct resp_conn *c)
{
    return c->worker->server->cmd;
}

/* ---- scratch memory for values read ----------------------------------------- */

static void *scratch_alloc(void *ctx, size_t size)
{
    struct resp_conn *c = ctx;
    if (c->scratch_len == c->scratch_cap) {
        size_t cap = c->scratch_cap ? c->scratch_cap * 2 : 8;
        void **grown = realloc(c->scratch, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        c->scratch = grown;
        c->scratch_cap = cap;
    }
    void *p = malloc(size);
    if (p != NULL)
        c->scratch[c->scratch_len++] = p;
    return p;
}

void resp_scratch_clear(struct resp_conn *c)
{
    for (size_t i = 0; i < c->scratch_len; i++)
        free(c->scratch[i]);
    c->scratch_len = 0;
}

/* ---- errors ------------------------------------------------------------------ */

static const char ERR_NOT_INTEGER[] = "ERR value is not an integer or out of range";
static const char ERR_SYNTAX[] = "ERR syntax error";
static const char ERR_BUSY[] = "ERR the key kept changing under this command: try again";

/* A status of the command layer as Redis words it, where Redis has words for it; else the layer's message. */
static void reply_status_error(struct resp_conn *c, enum cmd_status status)
{
    static const struct {
        enum cmd_status status;
        const char *text;
    } redis_texts[] = {
        {CMD_NOT_INTEGER, ERR_NOT_INTEGER},
        {CMD_OVERFLOW, "ERR increment or decrement would overflow"},
        {CMD_FULL, "OOM command not allowed when used memory > 'maxmemory'."},
        {CMD_NO_MEMORY, "ERR out of memory"},
    };
    for (size_t i = 0; i < sizeof(redis_texts) / sizeof(redis_texts[0]); i++)
        if (redis_texts[i].status == status) {
            resp_out_error(&c->out, redis_texts[i].text);
            return;
        }
    char message[160];
    cmd_status_message(cmd_of(c), status, message, sizeof(message));
    resp_out_errorf(&c->out, "ERR %s", message);
}

/* ---- values ------------------------------------------------------------------- */

/*
 * A value as RESP gives it: a decimal integer as Redis reads one (INCR's
 * operand) as a JSON integer, other UTF-8 as text, anything else as bytes.
 */
static struct store_value value_of(const char *bytes, size_t len)
{
    static const char octets[] = "application/octet-stream";
    int64_t integer;
    if (parse_int64(bytes, len, &integer))
        return (struct store_value){.kind = STORE_KIND_JSON, .data = bytes, .len = len};
    if (utf8_is_valid(bytes, len))
        return (struct store_value){.kind = STORE_KIND_STRING, .data = bytes, .len = len};
    return (struct store_value){.kind = STORE_KIND_BYTES,
                                .data = bytes,
                                .len = len,
                                .content_type = octets,
                                .content_type_len = sizeof(octets) - 1};
}

/* Reads key; CMD_OK with *item, CMD_NOT_FOUND, or another status. */
static enum cmd_status read_key(struct resp_conn *c, const char *key, size_t len, struct store_item *item)
{
    return cmd_get(cmd_of(c), key, len, scratch_alloc, c, item);
}

/* Reads the key in argument i into *item; else replies null (absent) or the error, and returns false. */
static bool read_or_reply(struct resp_conn *c, const struct args *a, size_t i, struct store_item *item)
{
    enum cmd_status st = read_key(c, arg(a, i), arg_len(a, i), item);
    if (st == CMD_NOT_FOUND)
        resp_out_null(&c->out);
    else if (st != CMD_OK)
        reply_status_error(c, st);
    return st == CMD_OK;
}

/* ---- connection ---------------------------------------------------------------- */

static void run_ping(struct resp_conn *c, const struct args *a)
{
    if (a->argc > 2)
        resp_out_error(&c->out, "ERR wrong number of arguments for 'ping' command");
    else if (a->argc == 2)
        resp_out_bulk(&c->out, arg(a, 1), arg_len(a, 1));
    else
        resp_out_status(&c->out, "PONG");
}

static void run_echo(struct resp_conn *c, const struct args *a)
{
    resp_out_bulk(&c->out, arg(a, 1), arg_len(a, 1));
}

static void run_quit(struct resp_conn *c, const struct args *a)
{
    (void)a;
    resp_out_status(&c->out, "OK");
    c->closing = true;
}

static void run_select(struct resp_conn *c, const struct args *a)
{
    int64_t db;
    if (!arg_int64(a, 1, &db))
        resp_out_error(&c->out, ERR_NOT_INTEGER);
    else if (db != 0)
        resp_out_error(&c->out, "ERR DB index is out of range");
    else
        resp_out_status(&c->out, "OK");
}

/* Checks a password (and user) against --auth-token; replies only when it fails. */
static bool check_password(struct resp_conn *c, const struct args *a, size_t user_at, size_t pass_at)
{
    const char *token = c->worker->server->settings.auth_token;
    if (token == NULL || token[0] == '\0') {
        resp_out_error(&c->out, "ERR AUTH <password> called without any password configured for the default user. "
                                "Are you sure your configuration is correct?");
        return false;
    }
    size_t token_len = strlen(token);
    bool user_ok = user_at == 0 || arg_is(a, user_at, "default");
    /* Constant time over the token's length: compare every byte whatever the first difference. */
    unsigned char diff = arg_len(a, pass_at) != token_len;
    for (size_t i = 0; i < token_len; i++)
        diff |= (unsigned char)(token[i] ^ (i < arg_len(a, pass_at) ? arg(a, pass_at)[i] : 0));
    if (!user_ok || diff != 0) {
        resp_out_error(&c->out, "WRONGPASS invalid username-password pair or user is disabled.");
        return false;
    }
    c->authenticated = true;
    return true;
}

static void run_auth(struct resp_conn *c, const struct args *a)
{
    if (a->argc > 3) {
        resp_out_error(&c->out, ERR_SYNTAX);
        return;
    }
    if (check_password(c, a, a->argc == 3 ? 1 : 0, a->argc - 1))
        resp_out_status(&c->out, "OK");
}

/* Client names: printable ASCII without spaces, as Redis allows. */
static bool set_name(struct resp_conn *c, const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (name[i] < '!' || name[i] > '~') {
            resp_out_error(&c->out, "ERR Client names cannot contain spaces, newlines or special characters.");
            return false;
        }
    if (len >= sizeof(c->name)) {
        resp_out_errorf(&c->out, "ERR client names are at most %zu bytes here", sizeof(c->name) - 1);
        return false;
    }
    memcpy(c->name, name, len);
    c->name[len] = '\0';
    return true;
}

static void run_hello(struct resp_conn *c, const struct args *a)
{
    int64_t protocol = c->out.protocol;
    size_t at = 1;
    if (a->argc > 1) {
        if (!arg_int64(a, 1, &protocol)) {
            resp_out_error(&c->out, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (protocol != 2 && protocol != 3) {
            resp_out_error(&c->out, "NOPROTO unsupported protocol version");
            return;
        }
        at = 2;
    }
    for (; at < a->argc; at++) {
        if (arg_is(a, at, "AUTH") && at + 2 < a->argc) {
            if (!check_password(c, a, at + 1, at + 2))
                return;
            at += 2;
        } else if (arg_is(a, at, "SETNAME") && at + 1 < a->argc) {
            if (!set_name(c, arg(a, at + 1), arg_len(a, at + 1)))
                return;
            at++;
        } else {
            resp_out_errorf(&c->out, "ERR Syntax error in HELLO option '%.*s'", (int)arg_len(a, at), arg(a, at));
            return;
        }
    }
    if (!c->authenticated) {
        resp_out_error(&c->out, "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
                                "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
                                "select the RESP protocol version at the same time");
        return;
    }
    c->out.protocol = (int)protocol;
    c->sending.protocol = (int)protocol;
    resp_out_map(&c->out, 7);
    resp_out_bulk_str(&c->out, "server");
    resp_out_bulk_str(&c->out, "redis");
    resp_out_bulk_str(&c->out, "version");
    resp_out_bulk_str(&c->out, REDIS_VERSION);
    resp_out_bulk_str(&c->out, "proto");
    resp_out_integer(&c->out, protocol);
    resp_out_bulk_str(&c->out, "id");
    resp_out_integer(&c->out, (int64_t)c->id);
    resp_out_bulk_str(&c->out, "mode");
    resp_out_bulk_str(&c->out, "standalone");
    resp_out_bulk_str(&c->out, "role");
    resp_out_bulk_str(&c->out, "master");
    resp_out_bulk_str(&c->out, "modules");
    resp_out_array(&c->out, 0);
}

static void run_reset(struct resp_conn *c, const struct args *a)
{
    (void)a;
    const char *token = c->worker->server->settings.auth_token;
    c->out.protocol = c->sending.protocol = 2;
    c->name[0] = '\0';
    c->authenticated = token == NULL || token[0] == '\0';
    resp_out_status(&c->out, "RESET");
}

static void copy_info_field(char *dst, size_t size, const struct args *a, size_t i)
{
    size_t len = arg_len(a, i) < size ? arg_len(a, i) : size - 1;
    for (size_t k = 0; k < len; k++)
        dst[k] = arg(a, i)[k] < '!' || arg(a, i)[k] > '~' ? '-' : arg(a, i)[k];
    dst[len] = '\0';
}

static void run_client(struct resp_conn *c, const struct args *a)
{
    if (arg_is(a, 1, "SETNAME") && a->argc == 3) {
        if (set_name(c, arg(a, 2), arg_len(a, 2)))
            resp_out_status(&c->out, "OK");
    } else if (arg_is(a, 1, "GETNAME") && a->argc == 2) {
        if (c->name[0] == '\0')
            resp_out_null(&c->out);
        else
            resp_out_bulk_str(&c->out, c->name);
    } else if (arg_is(a, 1, "ID") && a->argc == 2) {
        resp_out_integer(&c->out, (int64_t)c->id);
    } else if (arg_is(a, 1, "SETINFO") && a->argc == 4) {
        if (arg_is(a, 2, "LIB-NAME"))
            copy_info_field(c->lib_name, sizeof(c->lib_name), a, 3);
        else if (arg_is(a, 2, "LIB-VER"))
            copy_info_field(c->lib_ver, sizeof(c->lib_ver), a, 3);
        else {
            resp_out_errorf(&c->out, "ERR Unrecognized option '%.*s'", (int)arg_len(a, 2), arg(a, 2));
            return;
        }
        resp_out_status(&c->out, "OK");
    } else if (arg_is(a, 1, "INFO") && a->argc == 2) {
        char text[256];
        int len = snprintf(text, sizeof(text), "id=%" PRIu64 " name=%s db=0 resp=%d lib-name=%s lib-ver=%s\n", c->id,
                           c->name, c->out.protocol, c->lib_name, c->lib_ver);
        resp_out_bulk(&c->out, text, (size_t)len);
    } else {
        resp_out_errorf(&c->out, "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try CLIENT HELP.",
                        (int)arg_len(a, 1), arg(a, 1));
    }
}

/* ---- server -------------------------------------------------------------------- */

static void run_dbsize(struct resp_conn *c, const struct args *a)
{
    (void)a;
    resp_out_integer(&c->out, (int64_t)store_count(cmd_of(c)->store));
}

static void run_time(struct resp_conn *c, const struct args *a)
{
    (void)a;
    struct timeval now;
    gettimeofday(&now, NULL);
    char seconds[24], micros[24];
    snprintf(seconds, sizeof(seconds), "%lld", (long long)now.tv_sec);
    snprintf(micros, sizeof(micros), "%ld", (long)now.tv_usec);
    resp_out_array(&c->out, 2);
    resp_out_bulk_str(&c->out, seconds);
    resp_out_bulk_str(&c->out, micros);
}

static void run_flush(struct resp_conn *c, const struct args *a)
{
    if (a->argc > 2 || (a->argc == 2 && !arg_is(a, 1, "ASYNC") && !arg_is(a, 1, "SYNC"))) {
        resp_out_error(&c->out, ERR_SYNTAX);
        return;
    }
    cmd_flush(cmd_of(c));
    resp_out_status(&c->out, "OK");
}

/* CONFIG GET: the settings that exist here, under Redis's names. */
static void run_config(struct resp_conn *c, const struct args *a)
{
    if (!arg_is(a, 1, "GET") || a->argc < 3) {
        resp_out_errorf(&c->out, "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try CONFIG HELP.",
                        (int)arg_len(a, 1), arg(a, 1));
        return;
    }
    const struct resp_settings *s = &c->worker->server->settings;
    char maxmemory[24], port[8], databases[] = "1", maxclients[16];
    snprintf(maxmemory, sizeof(maxmemory), "%zu", s->max_memory);
    snprintf(port, sizeof(port), "%u", c->worker->server->port);
    snprintf(maxclients, sizeof(maxclients), "%u", s->max_clients);
    const char *const pairs[][2] = {
        {"maxmemory", maxmemory},
        {"maxmemory-policy", s->maxmemory_policy},
        {"save", s->save},
        {"appendonly", s->appendonly},
        {"appendfsync", s->appendfsync},
        {"port", port},
        {"databases", databases},
        {"maxclients", maxclients},
    };
    const size_t npairs = sizeof(pairs) / sizeof(pairs[0]);
    bool matched[sizeof(pairs) / sizeof(pairs[0])] = {false};
    size_t n = 0;
    for (size_t i = 2; i < a->argc; i++) {
        for (size_t k = 0; k < npairs; k++)
            if (!matched[k] && glob_match(arg(a, i), arg_len(a, i), pairs[k][0], strlen(pairs[k][0]), true)) {
                matched[k] = true;
                n++;
            }
    }
    resp_out_map(&c->out, n);
    for (size_t k = 0; k < npairs; k++)
        if (matched[k]) {
            resp_out_bulk_str(&c->out, pairs[k][0]);
            resp_out_bulk_str(&c->out, pairs[k][1]);
        }
}

/* Commands run by every worker so far (each counts its own: no cache line shared between workers). */
static uint64_t commands_processed(const struct resp_server *srv)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < srv->worker_count; i++)
        if (srv->workers[i] != NULL)
            n += atomic_load_explicit(&srv->workers[i]->commands, memory_order_relaxed);
    return n;
}

/* INFO's text: Redis's section and field names, for the fields that exist here. */
static void run_info(struct resp_conn *c, const struct args *a)
{
    struct resp_server *srv = c->worker->server;
    struct stats st;
    stats_collect(srv->stats, &st);
    bool all = a->argc == 1 || arg_is(a, 1, "all") || arg_is(a, 1, "everything") || arg_is(a, 1, "default");
    char text[4096];
    size_t len = 0;
#define SECTION(name) (all || arg_is(a, 1, name))
#define ADD(...)      (len += len < sizeof(text) ? (size_t)snprintf(text + len, sizeof(text) - len, __VA_ARGS__) : 0)
    if (SECTION("server"))
        ADD("# Server\r\nredis_version:%s\r\ncachette_version:%s\r\nredis_mode:standalone\r\narch_bits:64\r\n"
            "process_id:%ld\r\ntcp_port:%u\r\nuptime_in_seconds:%.0f\r\n\r\n",
            REDIS_VERSION, srv->stats->version, (long)getpid(), srv->port, st.net.uptime_seconds);
    if (SECTION("clients"))
        ADD("# Clients\r\nconnected_clients:%u\r\nmaxclients:%u\r\n\r\n", st.net.connections,
            srv->settings.max_clients);
    if (SECTION("memory"))
        ADD("# Memory\r\nused_memory:%zu\r\nmaxmemory:%zu\r\nmaxmemory_policy:%s\r\n\r\n", st.store.bytes_used,
            st.store.max_memory, srv->settings.maxmemory_policy);
    if (SECTION("persistence"))
        ADD("# Persistence\r\nloading:%d\r\naof_enabled:%d\r\nrdb_changes_since_last_save:0\r\n\r\n",
            st.persisting && st.persist.loading, st.persisting && st.persist.append_log != PERSIST_LOG_OFF);
    if (SECTION("stats"))
        ADD("# Stats\r\ntotal_connections_received:%" PRIu64 "\r\ntotal_commands_processed:%" PRIu64
            "\r\nrejected_connections:%" PRIu64 "\r\nexpired_keys:%" PRIu64 "\r\nevicted_keys:%" PRIu64
            "\r\nkeyspace_hits:%" PRIu64 "\r\nkeyspace_misses:%" PRIu64 "\r\n\r\n",
            st.net.connections_total, commands_processed(srv), st.net.connections_refused, st.store.expired,
            st.store.evicted, st.store.hits, st.store.misses);
    if (SECTION("keyspace")) {
        ADD("# Keyspace\r\n");
        if (st.store.entries > 0)
            ADD("db0:keys=%zu,expires=0,avg_ttl=0\r\n", st.store.entries);
    }
#undef SECTION
#undef ADD
    resp_out_bulk(&c->out, text, len < sizeof(text) ? len : sizeof(text) - 1);
}

/* ---- strings ------------------------------------------------------------------- */

/* store_alloc_fn: the value goes straight into the reply (a GET then costs no allocation, and one copy). */
static void *reply_alloc(void *ctx, size_t size)
{
    struct resp_conn *c = ctx;
    return resp_out_bulk_reserve(&c->out, size);
}

static void run_get(struct resp_conn *c, const struct args *a)
{
    struct store_item item;
    enum cmd_status st = cmd_get(cmd_of(c), arg(a, 1), arg_len(a, 1), reply_alloc, c, &item);
    if (st == CMD_OK)
        resp_out_bulk_commit(&c->out, item.len);
    else if (st == CMD_NOT_FOUND)
        resp_out_null(&c->out);
    else
        reply_status_error(c, st);
}

static void run_strlen(struct resp_conn *c, const struct args *a)
{
    struct store_item item;
    enum cmd_status st = cmd_get(cmd_of(c), arg(a, 1), arg_len(a, 1), NULL, NULL, &item);
    resp_out_integer(&c->out, st == CMD_OK ? (int64_t)item.len : 0);
}

enum set_when { SET_ALWAYS, SET_IF_ABSENT, SET_IF_PRESENT };

struct set_request {
    enum set_when when;
    int64_t ttl_ms; /* 0: none given (the default TTL applies) */
    bool keep_ttl;  /* KEEPTTL */
    bool get;       /* reply with the value replaced */
};

/*
 * SET and its relatives. Without GET, XX or KEEPTTL one conditional write
 * does it; with them, the entry is read and written back on the condition
 * that its version is unchanged, again until that holds. Reply: OK or the
 * old value (GET), or null when the condition was not met.
 */
static void set_value(struct resp_conn *c, const char *key, size_t key_len, const char *value, size_t value_len,
                      const struct set_request *r)
{
    const struct cmd_ctx *ctx = cmd_of(c);
    struct store_value v = value_of(value, value_len);
    bool read_first = r->get || r->when == SET_IF_PRESENT || r->keep_ttl;
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        struct store_item old = {0};
        enum cmd_status st = CMD_NOT_FOUND;
        if (read_first) {
            st = r->get ? read_key(c, key, key_len, &old) : cmd_peek(ctx, key, key_len, &old.meta);
            if (st != CMD_OK && st != CMD_NOT_FOUND) {
                reply_status_error(c, st);
                return;
            }
        }
        bool exists = st == CMD_OK;
        if ((r->when == SET_IF_PRESENT && read_first && !exists) || (r->when == SET_IF_ABSENT && exists)) {
            if (r->get && exists)
                resp_out_bulk(&c->out, old.data, old.len);
            else
                resp_out_null(&c->out);
            return;
        }
        struct cmd_cond cond = CMD_UNCONDITIONAL;
        if (read_first)
            cond = exists ? (struct cmd_cond){STORE_SET_IF_VERSION, old.meta.version}
                          : (struct cmd_cond){STORE_SET_IF_ABSENT, 0};
        else if (r->when == SET_IF_ABSENT)
            cond = (struct cmd_cond){STORE_SET_IF_ABSENT, 0};
        int64_t ttl_ms = r->keep_ttl && exists && old.meta.ttl_ms > 0 ? old.meta.ttl_ms : r->ttl_ms;
        struct store_meta meta;
        st = cmd_set(ctx, key, key_len, &v, ttl_ms, cond, &meta);
        if ((st == CMD_VERSION_MISMATCH || st == CMD_EXISTS) && read_first)
            continue; /* written meanwhile: read again */
        if (st == CMD_EXISTS) {
            resp_out_null(&c->out);
            return;
        }
        if (st != CMD_OK && st != CMD_CREATED) {
            reply_status_error(c, st);
            return;
        }
        /* KEEPTTL of an entry that never expired: undo a default TTL the write may have given. */
        if (r->keep_ttl && exists && old.meta.ttl_ms < 0 && ctx->limits.default_ttl_ms > 0)
            cmd_set_ttl(ctx, key, key_len, 0, meta.version, NULL);
        if (!r->get)
            resp_out_status(&c->out, "OK");
        else if (exists)
            resp_out_bulk(&c->out, old.data, old.len);
        else
            resp_out_null(&c->out);
        return;
    }
    resp_out_error(&c->out, ERR_BUSY);
}

/* An expiry argument: seconds or milliseconds, relative or a Unix time, into a TTL in milliseconds. */
static bool expiry_ms(struct resp_conn *c, const struct args *a, size_t i, int64_t scale, bool absolute,
                      const char *command, int64_t *ttl_ms)
{
    int64_t n;
    if (!arg_int64(a, i, &n)) {
        resp_out_error(&c->out, ERR_NOT_INTEGER);
        return false;
    }
    int64_t ms;
    if (n <= 0 || __builtin_mul_overflow(n, scale, &ms)) {
        resp_out_errorf(&c->out, "ERR invalid expire time in '%s' command", command);
        return false;
    }
    if (absolute) {
        struct timeval now;
        gettimeofday(&now, NULL);
        ms -= (int64_t)now.tv_sec * 1000 + now.tv_usec / 1000;
        if (ms <= 0)
            ms = 1; /* already past: gone at once */
    }
    if (ms > CMD_MAX_TTL_MS) {
        resp_out_errorf(&c->out, "ERR invalid expire time in '%s' command", command);
        return false;
    }
    *ttl_ms = ms;
    return true;
}

/* SET's and GETEX's expiry options: the word, its unit in milliseconds, and whether it names a Unix time. */
static const struct expiry_option {
    const char *word;
    int64_t scale;
    bool absolute;
} expiry_options[] = {{"EX", 1000, false}, {"PX", 1, false}, {"EXAT", 1000, true}, {"PXAT", 1, true}};

/* The expiry option argument i names, or NULL. */
static const struct expiry_option *expiry_option_at(const struct args *a, size_t i)
{
    for (size_t e = 0; e < sizeof(expiry_options) / sizeof(expiry_options[0]); e++)
        if (arg_is(a, i, expiry_options[e].word))
            return &expiry_options[e];
    return NULL;
}

static void run_set(struct resp_conn *c, const struct args *a)
{
    struct set_request r = {.when = SET_ALWAYS};
    bool has_expiry = false;
    for (size_t i = 3; i < a->argc; i++) {
        const struct expiry_option *e = expiry_option_at(a, i);
        if (e != NULL && i + 1 < a->argc && !has_expiry && !r.keep_ttl) {
            if (!expiry_ms(c, a, i + 1, e->scale, e->absolute, "set", &r.ttl_ms))
                return;
            has_expiry = true;
            i++;
        } else if (arg_is(a, i, "NX") && r.when == SET_ALWAYS) {
            r.when = SET_IF_ABSENT;
        } else if (arg_is(a, i, "XX") && r.when == SET_ALWAYS) {
            r.when = SET_IF_PRESENT;
        } else if (arg_is(a, i, "KEEPTTL") && !has_expiry) {
            r.keep_ttl = true;
        } else if (arg_is(a, i, "GET")) {
            r.get = true;
        } else {
            resp_out_error(&c->out, ERR_SYNTAX);
            return;
        }
    }
    set_value(c, arg(a, 1), arg_len(a, 1), arg(a, 2), arg_len(a, 2), &r);
}

static void run_setnx(struct resp_conn *c, const struct args *a)
{
    struct store_value v = value_of(arg(a, 2), arg_len(a, 2));
    enum cmd_status st =
        cmd_set(cmd_of(c), arg(a, 1), arg_len(a, 1), &v, 0, (struct cmd_cond){STORE_SET_IF_ABSENT, 0}, NULL);
    if (st == CMD_CREATED || st == CMD_OK || st == CMD_EXISTS)
        resp_out_integer(&c->out, st != CMD_EXISTS);
    else
        reply_status_error(c, st);
}

/* SETEX key seconds value, PSETEX key milliseconds value. */
static void set_with_expiry(struct resp_conn *c, const struct args *a, int64_t scale, const char *command)
{
    struct set_request r = {.when = SET_ALWAYS};
    if (expiry_ms(c, a, 2, scale, false, command, &r.ttl_ms))
        set_value(c, arg(a, 1), arg_len(a, 1), arg(a, 3), arg_len(a, 3), &r);
}

static void run_setex(struct resp_conn *c, const struct args *a)
{
    set_with_expiry(c, a, 1000, "setex");
}

static void run_psetex(struct resp_conn *c, const struct args *a)
{
    set_with_expiry(c, a, 1, "psetex");
}

static void run_getset(struct resp_conn *c, const struct args *a)
{
    struct set_request r = {.when = SET_ALWAYS, .get = true};
    set_value(c, arg(a, 1), arg_len(a, 1), arg(a, 2), arg_len(a, 2), &r);
}

static void run_getdel(struct resp_conn *c, const struct args *a)
{
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        struct store_item item;
        if (!read_or_reply(c, a, 1, &item))
            return;
        if (cmd_delete(cmd_of(c), arg(a, 1), arg_len(a, 1), item.meta.version) == CMD_OK) {
            resp_out_bulk(&c->out, item.data, item.len);
            return;
        }
        resp_scratch_clear(c); /* replaced or deleted meanwhile: read again */
    }
    resp_out_error(&c->out, ERR_BUSY);
}

static int mget_reply_one(void *arg, size_t i, const struct cmd_read *read)
{
    (void)i;
    struct resp_conn *c = arg;
    if (read->found)
        resp_out_bulk(&c->out, read->item.data, read->item.len);
    else
        resp_out_null(&c->out);
    return 0;
}

static void run_mget(struct resp_conn *c, const struct args *a)
{
    size_t n = a->argc - 1, done;
    struct cmd_read *reads = calloc(n, sizeof(*reads));
    if (reads == NULL) {
        reply_status_error(c, CMD_NO_MEMORY);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        reads[i].key = arg(a, i + 1);
        reads[i].key_len = arg_len(a, i + 1);
    }
    size_t reply_at = c->out.len;
    resp_out_array(&c->out, n);
    enum cmd_status st = cmd_mget(cmd_of(c), reads, n, scratch_alloc, c, mget_reply_one, c, &done);
    free(reads);
    if (st != CMD_OK) {
        c->out.len = reply_at; /* not a partial array: the error instead */
        reply_status_error(c, st);
    }
}

static void run_mset(struct resp_conn *c, const struct args *a)
{
    if (a->argc % 2 != 1) {
        resp_out_error(&c->out, "ERR wrong number of arguments for 'mset' command");
        return;
    }
    size_t n = (a->argc - 1) / 2;
    struct cmd_item *items = calloc(n, sizeof(*items));
    if (items == NULL) {
        reply_status_error(c, CMD_NO_MEMORY);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        items[i].key = arg(a, 1 + 2 * i);
        items[i].key_len = arg_len(a, 1 + 2 * i);
        items[i].value = value_of(arg(a, 2 + 2 * i), arg_len(a, 2 + 2 * i));
    }
    struct cmd_mset_result res;
    enum cmd_status st = cmd_mset(cmd_of(c), items, n, &res);
    free(items);
    if (st == CMD_OK)
        resp_out_status(&c->out, "OK");
    else
        reply_status_error(c, st);
}

/*
 * MSETNX: every key set if none exists, else none. Each key is written only
 * if still absent; if one turns out to exist (another client wrote it since
 * the check), those already written are deleted again, each only if still
 * this write's version. A reader may see some keys in between: unlike
 * Redis's, the command is atomic key by key, not across keys.
 */
static void run_msetnx(struct resp_conn *c, const struct args *a)
{
    if (a->argc % 2 != 1) {
        resp_out_error(&c->out, "ERR wrong number of arguments for 'msetnx' command");
        return;
    }
    size_t n = (a->argc - 1) / 2, written = 0;
    for (size_t i = 0; i < n; i++)
        if (cmd_peek(cmd_of(c), arg(a, 1 + 2 * i), arg_len(a, 1 + 2 * i), NULL) == CMD_OK) {
            resp_out_integer(&c->out, 0);
            return;
        }
    uint64_t *versions = calloc(n, sizeof(*versions));
    if (versions == NULL) {
        reply_status_error(c, CMD_NO_MEMORY);
        return;
    }
    enum cmd_status st = CMD_OK;
    for (; written < n; written++) {
        struct store_value v = value_of(arg(a, 2 + 2 * written), arg_len(a, 2 + 2 * written));
        struct store_meta meta;
        st = cmd_set(cmd_of(c), arg(a, 1 + 2 * written), arg_len(a, 1 + 2 * written), &v, 0,
                     (struct cmd_cond){STORE_SET_IF_ABSENT, 0}, &meta);
        if (st != CMD_OK && st != CMD_CREATED)
            break;
        versions[written] = meta.version;
    }
    if (written < n)
        for (size_t i = 0; i < written; i++)
            cmd_delete(cmd_of(c), arg(a, 1 + 2 * i), arg_len(a, 1 + 2 * i), versions[i]);
    free(versions);
    if (written == n)
        resp_out_integer(&c->out, 1);
    else if (st == CMD_EXISTS)
        resp_out_integer(&c->out, 0);
    else
        reply_status_error(c, st);
}

/* A value as INCRBYFLOAT reads one (Redis's rules: all of it a finite number, no spaces). */
static bool parse_float(const char *text, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf) || isspace((unsigned char)text[0]))
        return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    *out = strtod(buf, &end);
    return end == buf + len && errno != ERANGE && isfinite(*out);
}

/*
 * How a read-modify-write command makes the value to write from the value
 * read (NULL: the key is absent), in scratch memory; returns false after
 * replying an error. Then, once written, how it replies.
 */
typedef bool (*rewrite_fn)(struct resp_conn *c, const struct args *a, const struct store_item *old,
                           struct store_value *out);
typedef void (*rewritten_fn)(struct resp_conn *c, const struct store_value *written);

/*
 * APPEND and INCRBYFLOAT: reads the key in argument 1, makes the new value,
 * and writes it (keeping the TTL) only if the entry is still the one read,
 * else reads again.
 */
static void rewrite_key(struct resp_conn *c, const struct args *a, rewrite_fn rewrite, rewritten_fn reply)
{
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        struct store_item old = {0};
        enum cmd_status st = read_key(c, arg(a, 1), arg_len(a, 1), &old);
        if (st != CMD_OK && st != CMD_NOT_FOUND) {
            reply_status_error(c, st);
            return;
        }
        bool exists = st == CMD_OK;
        struct store_value v;
        if (!rewrite(c, a, exists ? &old : NULL, &v))
            return;
        struct cmd_cond cond = exists ? (struct cmd_cond){STORE_SET_IF_VERSION, old.meta.version}
                                      : (struct cmd_cond){STORE_SET_IF_ABSENT, 0};
        int64_t ttl_ms = exists && old.meta.ttl_ms > 0 ? old.meta.ttl_ms : 0;
        st = cmd_set(cmd_of(c), arg(a, 1), arg_len(a, 1), &v, ttl_ms, cond, NULL);
        if (st == CMD_OK || st == CMD_CREATED) {
            reply(c, &v);
            return;
        }
        if (st != CMD_VERSION_MISMATCH && st != CMD_EXISTS) {
            reply_status_error(c, st);
            return;
        }
        resp_scratch_clear(c);
    }
    resp_out_error(&c->out, ERR_BUSY);
}

/*
 * The shortest decimal text, without an exponent where 17 decimals suffice,
 * that reads back as d exactly: 10.5 + 0.1 is "10.6". (Redis sums in long
 * double and prints 17 decimals; in a double that would print
 * 10.59999999999999964, and long double's width is the machine's: valgrind's
 * is a double's.) Returns the length written to text (size >= 32).
 */
static int shortest_decimal(double d, char *text, size_t size)
{
    for (int decimals = 0; decimals <= 17; decimals++) {
        int len = snprintf(text, size, "%.*f", decimals, d);
        if (strtod(text, NULL) == d)
            return len == 2 && text[0] == '-' && text[1] == '0' ? snprintf(text, size, "0") : len; /* not -0 */
    }
    return snprintf(text, size, "%.17g", d);
}

/* INCRBYFLOAT's new value: the old one read as a number plus the increment. */
static bool add_float(struct resp_conn *c, const struct args *a, const struct store_item *old, struct store_value *out)
{
    double by, value = 0;
    if (!parse_float(arg(a, 2), arg_len(a, 2), &by) ||
        (old != NULL && (old->kind == STORE_KIND_BYTES || !parse_float(old->data, old->len, &value)))) {
        resp_out_error(&c->out, "ERR value is not a valid float");
        return false;
    }
    double sum = value + by;
    if (!isfinite(sum)) {
        resp_out_error(&c->out, "ERR increment would produce NaN or Infinity");
        return false;
    }
    char *text = scratch_alloc(c, 400); /* 1e308 in full, with 17 decimals */
    if (text == NULL) {
        reply_status_error(c, CMD_NO_MEMORY);
        return false;
    }
    int len = shortest_decimal(sum, text, 400);
    *out = (struct store_value){.kind = STORE_KIND_JSON, .data = text, .len = (size_t)len};
    return true;
}

static void reply_written_value(struct resp_conn *c, const struct store_value *written)
{
    resp_out_bulk(&c->out, written->data, written->len);
}

/* INCRBYFLOAT: the result is stored as a JSON number, which HTTP reads as one. */
static void run_incrbyfloat(struct resp_conn *c, const struct args *a)
{
    double by;
    if (!parse_float(arg(a, 2), arg_len(a, 2), &by)) {
        resp_out_error(&c->out, "ERR value is not a valid float");
        return;
    }
    rewrite_key(c, a, add_float, reply_written_value);
}

/* APPEND's new value: the old one (if any) with the argument after it. */
static bool append_value(struct resp_conn *c, const struct args *a, const struct store_item *old,
                         struct store_value *out)
{
    size_t old_len = old != NULL ? old->len : 0, len = old_len + arg_len(a, 2);
    char *joined = scratch_alloc(c, len + 1);
    if (joined == NULL) {
        reply_status_error(c, CMD_NO_MEMORY);
        return false;
    }
    if (old != NULL)
        memcpy(joined, old->data, old_len);
    memcpy(joined + old_len, arg(a, 2), arg_len(a, 2));
    *out = value_of(joined, len);
    return true;
}

static void reply_written_length(struct resp_conn *c, const struct store_value *written)
{
    resp_out_integer(&c->out, (int64_t)written->len);
}

/* APPEND: the length after it. */
static void run_append(struct resp_conn *c, const struct args *a)
{
    rewrite_key(c, a, append_value, reply_written_length);
}

/* INCR, DECR, INCRBY, DECRBY: by is the step, already negated for DECR*. */
static void incr_by(struct resp_conn *c, const struct args *a, int64_t by)
{
    int64_t sum;
    enum cmd_status st = cmd_incr(cmd_of(c), arg(a, 1), arg_len(a, 1), by, 0, CMD_UNCONDITIONAL, &sum, NULL);
    if (st == CMD_OK || st == CMD_CREATED)
        resp_out_integer(&c->out, sum);
    else
        reply_status_error(c, st);
}

static void run_incr(struct resp_conn *c, const struct args *a)
{
    incr_by(c, a, 1);
}

static void run_decr(struct resp_conn *c, const struct args *a)
{
    incr_by(c, a, -1);
}

static void run_incrby(struct resp_conn *c, const struct args *a)
{
    int64_t by;
    if (!arg_int64(a, 2, &by))
        resp_out_error(&c->out, ERR_NOT_INTEGER);
    else
        incr_by(c, a, by);
}

static void run_decrby(struct resp_conn *c, const struct args *a)
{
    int64_t by;
    if (!arg_int64(a, 2, &by))
        resp_out_error(&c->out, ERR_NOT_INTEGER);
    else if (by == INT64_MIN)
        resp_out_error(&c->out, "ERR decrement would overflow");
    else
        incr_by(c, a, -by);
}

/* ---- keys ------------------------------------------------------------------------ */

static void run_del(struct resp_conn *c, const struct args *a)
{
    int64_t deleted = 0;
    for (size_t i = 1; i < a->argc; i++)
        deleted += cmd_delete(cmd_of(c), arg(a, i), arg_len(a, i), 0) == CMD_OK;
    resp_out_integer(&c->out, deleted);
}

static void run_exists(struct resp_conn *c, const struct args *a)
{
    int64_t found = 0;
    for (size_t i = 1; i < a->argc; i++)
        found += cmd_peek(cmd_of(c), arg(a, i), arg_len(a, i), NULL) == CMD_OK;
    resp_out_integer(&c->out, found);
}

static void run_type(struct resp_conn *c, const struct args *a)
{
    bool found = cmd_peek(cmd_of(c), arg(a, 1), arg_len(a, 1), NULL) == CMD_OK;
    resp_out_status(&c->out, found ? "string" : "none");
}

/* EXPIRE's conditions on the key's current expiry (Redis 7), as bits: XX may come with GT or LT. */
enum expire_when { EXPIRE_NX = 1, EXPIRE_XX = 2, EXPIRE_GT = 4, EXPIRE_LT = 8 };

/* Whether the conditions let a key whose remaining TTL is current_ms (-1: none, which counts as forever) get new_ms. */
static bool expire_allowed(unsigned when, int64_t current_ms, int64_t new_ms)
{
    bool has_ttl = current_ms >= 0;
    return !((when & EXPIRE_NX) && has_ttl) && !((when & EXPIRE_XX) && !has_ttl) &&
           !((when & EXPIRE_GT) && (!has_ttl || new_ms <= current_ms)) &&
           !((when & EXPIRE_LT) && has_ttl && new_ms >= current_ms);
}

/* The NX|XX|GT|LT options after the time, with Redis's refusals of combinations; false after replying. */
static bool expire_condition(struct resp_conn *c, const struct args *a, unsigned *when)
{
    static const struct {
        const char *word;
        unsigned bit;
    } options[] = {{"NX", EXPIRE_NX}, {"XX", EXPIRE_XX}, {"GT", EXPIRE_GT}, {"LT", EXPIRE_LT}};
    *when = 0;
    for (size_t i = 3; i < a->argc; i++) {
        size_t o = 0;
        while (o < 4 && !arg_is(a, i, options[o].word))
            o++;
        if (o == 4) {
            resp_out_errorf(&c->out, "ERR Unsupported option %.*s", (int)arg_len(a, i), arg(a, i));
            return false;
        }
        *when |= options[o].bit;
    }
    if ((*when & EXPIRE_NX) && (*when & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT))) {
        resp_out_error(&c->out, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return false;
    }
    if ((*when & EXPIRE_GT) && (*when & EXPIRE_LT)) {
        resp_out_error(&c->out, "ERR GT and LT options at the same time are not compatible");
        return false;
    }
    return true;
}

/*
 * Gives the key in argument 1 a TTL of ttl_ms (0: none), or deletes it if
 * past, when the conditions allow it against the expiry read, and only if
 * the entry is still that version (else reads again). Replies 1 or 0.
 */
static void change_expiry(struct resp_conn *c, const struct args *a, unsigned when, bool past, int64_t ttl_ms)
{
    for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        struct store_meta meta;
        if (cmd_peek(cmd_of(c), arg(a, 1), arg_len(a, 1), &meta) != CMD_OK ||
            !expire_allowed(when, meta.ttl_ms, ttl_ms)) {
            resp_out_integer(&c->out, 0);
            return;
        }
        enum cmd_status st = past ? cmd_delete(cmd_of(c), arg(a, 1), arg_len(a, 1), meta.version)
                                  : cmd_set_ttl(cmd_of(c), arg(a, 1), arg_len(a, 1), ttl_ms, meta.version, NULL);
        if (st == CMD_OK) {
            resp_out_integer(&c->out, 1);
            return;
        }
        if (st != CMD_VERSION_MISMATCH && st != CMD_NOT_FOUND) {
            reply_status_error(c, st);
            return;
        }
    }
    resp_out_error(&c->out, ERR_BUSY);
}

/*
 * EXPIRE, PEXPIRE (a time from now) and EXPIREAT, PEXPIREAT (a Unix time),
 * with NX, XX, GT or LT: a time not in the future deletes the key, as Redis
 * does. The condition is checked against the expiry read, and the change
 * made only if the entry is still that version (else read again).
 */
static void expire_key(struct resp_conn *c, const struct args *a, int64_t scale, bool absolute, const char *command)
{
    int64_t n, ttl_ms = 0;
    unsigned when;
    if (!arg_int64(a, 2, &n)) {
        resp_out_error(&c->out, ERR_NOT_INTEGER);
        return;
    }
    if (!expire_condition(c, a, &when))
        return;
    struct timeval now;
    gettimeofday(&now, NULL);
    int64_t now_in_unit = ((int64_t)now.tv_sec * 1000 + now.tv_usec / 1000) / scale;
    bool past = n <= 0 || (absolute && n <= now_in_unit);
    if (!past && !expiry_ms(c, a, 2, scale, absolute, command, &ttl_ms))
        return;
    change_expiry(c, a, when, past, ttl_ms);
}

static void run_expire(struct resp_conn *c, const struct args *a)
{
    expire_key(c, a, 1000, false, "expire");
}

static void run_pexpire(struct resp_conn *c, const struct args *a)
{
    expire_key(c, a, 1, false, "pexpire");
}

static void run_expireat(struct resp_conn *c, const struct args *a)
{
    expire_key(c, a, 1000, true, "expireat");
}

static void run_pexpireat(struct resp_conn *c, const struct args *a)
{
    expire_key(c, a, 1, true, "pexpireat");
}

enum ttl_form { TTL_SECONDS, TTL_MS, EXPIRES_AT_SECONDS, EXPIRES_AT_MS };

/* TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 when the key is absent, -1 when it never expires. */
static void time_to_live(struct resp_conn *c, const struct args *a, enum ttl_form form)
{
    struct store_meta meta;
    if (cmd_peek(cmd_of(c), arg(a, 1), arg_len(a, 1), &meta) != CMD_OK) {
        resp_out_integer(&c->out, -2);
        return;
    }
    if (meta.ttl_ms < 0) {
        resp_out_integer(&c->out, -1);
        return;
    }
    struct timeval now;
    gettimeofday(&now, NULL);
    int64_t at_ms = (int64_t)now.tv_sec * 1000 + now.tv_usec / 1000 + meta.ttl_ms;
    switch (form) {
    case TTL_SECONDS:
        resp_out_integer(&c->out, (meta.ttl_ms + 500) / 1000);
        break;
    case TTL_MS:
        resp_out_integer(&c->out, meta.ttl_ms);
        break;
    case EXPIRES_AT_SECONDS:
        resp_out_integer(&c->out, (at_ms + 500) / 1000);
        break;
    case EXPIRES_AT_MS:
        resp_out_integer(&c->out, at_ms);
        break;
    }
}

static void run_ttl(struct resp_conn *c, const struct args *a)
{
    time_to_live(c, a, TTL_SECONDS);
}

static void run_pttl(struct resp_conn *c, const struct args *a)
{
    time_to_live(c, a, TTL_MS);
}

static void run_expiretime(struct resp_conn *c, const struct args *a)
{
    time_to_live(c, a, EXPIRES_AT_SECONDS);
}

static void run_pexpiretime(struct resp_conn *c, const struct args *a)
{
    time_to_live(c, a, EXPIRES_AT_MS);
}

/* PERSIST: drops the expiry of a key that has one (XX), as one conditional change. */
static void run_persist(struct resp_conn *c, const struct args *a)
{
    change_expiry(c, a, EXPIRE_XX, false, 0);
}

/* Keys a scan found that match a glob pattern (copies, freed with the list). */
struct key_list {
    const char *pattern; /* NULL: every key */
    size_t pattern_len;
    struct found_key {
        char *bytes;
        size_t len;
    } *keys;
    size_t n, cap;
    bool failed;
};

/* store_key_fn: runs under a shard's read lock, so it only matches and copies. */
static void collect_key(void *ctx, const char *key, size_t len)
{
    struct key_list *l = ctx;
    if (l->failed || (l->pattern != NULL && !glob_match(l->pattern, l->pattern_len, key, len, false)))
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct found_key *grown = realloc(l->keys, cap * sizeof(*grown));
        if (grown == NULL) {
            l->failed = true;
            return;
        }
        l->keys = grown;
        l->cap = cap;
    }
    char *copy = malloc(len ? len : 1);
    if (copy == NULL) {
        l->failed = true;
        return;
    }
    memcpy(copy, key, len);
    l->keys[l->n++] = (struct found_key){copy, len};
}

static void key_list_free(struct key_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->keys[i].bytes);
    free(l->keys);
}

static void reply_keys(struct resp_conn *c, const struct key_list *l)
{
    resp_out_array(&c->out, l->n);
    for (size_t i = 0; i < l->n; i++)
        resp_out_bulk(&c->out, l->keys[i].bytes, l->keys[i].len);
}

/* Scans from cursor for keys matching l's pattern (all with none), the pattern's literal start as the prefix. */
static void scan_matching(struct resp_conn *c, struct key_list *l, uint64_t cursor, size_t count, uint64_t *next)
{
    size_t prefix_len = l->pattern ? glob_literal_prefix(l->pattern, l->pattern_len) : 0;
    cmd_scan(cmd_of(c), cursor, l->pattern, prefix_len, count, collect_key, l, next);
}

/*
 * SCAN's cursor as clients see it: below 2^53, so that clients holding it in
 * a double (JavaScript's numbers: node-redis 4) give back the same one. The
 * store's cursor has the shard in its top 16 bits and the bucket position
 * below bit 48; the bucket position of a table that fits in memory stays
 * below 2^37, so the shard moves down to bit 37.
 */
#define CLIENT_CURSOR_SHARD_SHIFT 37
#define STORE_CURSOR_SHARD_SHIFT  48

static uint64_t cursor_to_client(uint64_t store_cursor)
{
    uint64_t position = store_cursor & ((UINT64_C(1) << STORE_CURSOR_SHARD_SHIFT) - 1);
    return (store_cursor >> STORE_CURSOR_SHARD_SHIFT) << CLIENT_CURSOR_SHARD_SHIFT | position;
}

static uint64_t cursor_from_client(uint64_t client_cursor)
{
    uint64_t position = client_cursor & ((UINT64_C(1) << CLIENT_CURSOR_SHARD_SHIFT) - 1);
    return (client_cursor >> CLIENT_CURSOR_SHARD_SHIFT) << STORE_CURSOR_SHARD_SHIFT | position;
}

/* SCAN cursor [MATCH pattern] [COUNT n] [TYPE string]. */
static void run_scan(struct resp_conn *c, const struct args *a)
{
    char cursor_text[24];
    size_t len = arg_len(a, 1) < sizeof(cursor_text) - 1 ? arg_len(a, 1) : sizeof(cursor_text) - 1;
    memcpy(cursor_text, arg(a, 1), len);
    cursor_text[len] = '\0';
    char *end;
    uint64_t cursor = strtoull(cursor_text, &end, 10);
    if (len == 0 || *end != '\0' || cursor_text[0] == '-') {
        resp_out_error(&c->out, "ERR invalid cursor");
        return;
    }
    int64_t count = 10;
    size_t match_at = 0;
    bool only_strings = true;
    for (size_t i = 2; i < a->argc; i += 2) {
        if (i + 1 >= a->argc) {
            resp_out_error(&c->out, ERR_SYNTAX);
            return;
        }
        if (arg_is(a, i, "MATCH")) {
            match_at = i + 1;
        } else if (arg_is(a, i, "COUNT")) {
            if (!arg_int64(a, i + 1, &count) || count < 1) {
                resp_out_error(&c->out, count < 1 ? ERR_SYNTAX : ERR_NOT_INTEGER);
                return;
            }
        } else if (arg_is(a, i, "TYPE")) {
            only_strings = arg_is(a, i + 1, "string");
        } else {
            resp_out_error(&c->out, ERR_SYNTAX);
            return;
        }
    }
    struct key_list found = {0};
    if (match_at) {
        found.pattern = arg(a, match_at);
        found.pattern_len = arg_len(a, match_at);
    }
    uint64_t next = 0;
    if (only_strings)
        scan_matching(c, &found, cursor_from_client(cursor), (size_t)count, &next);
    if (found.failed) {
        reply_status_error(c, CMD_NO_MEMORY);
    } else {
        char next_text[24];
        snprintf(next_text, sizeof(next_text), "%" PRIu64, cursor_to_client(next));
        resp_out_array(&c->out, 2);
        resp_out_bulk_str(&c->out, next_text);
        reply_keys(c, &found);
    }
    key_list_free(&found);
}

/* KEYS pattern: the whole scan at once (bounded by --resp-max-output, as any reply). */
static void run_keys(struct resp_conn *c, const struct args *a)
{
    struct key_list found = {.pattern = arg(a, 1), .pattern_len = arg_len(a, 1)};
    uint64_t cursor = 0;
    do
        scan_matching(c, &found, cursor, 1000, &cursor);
    while (cursor != 0 && !found.failed);
    if (found.failed)
        reply_status_error(c, CMD_NO_MEMORY);
    else
        reply_keys(c, &found);
    key_list_free(&found);
}

/* RANDOMKEY: the first key a scan finds from a random place in the table. */
static void run_randomkey(struct resp_conn *c, const struct args *a)
{
    (void)a;
    struct key_list found = {0};
    uint64_t start = ((uint64_t)random() << 32) ^ (uint64_t)random(), next;
    scan_matching(c, &found, start, 1, &next);
    for (uint64_t cursor = 0; found.n == 0 && !found.failed;) { /* nothing from there on: from the start */
        scan_matching(c, &found, cursor, 1, &cursor);
        if (cursor == 0)
            break;
    }
    if (found.n > 0)
        resp_out_bulk(&c->out, found.keys[0].bytes, found.keys[0].len);
    else
        resp_out_null(&c->out);
    key_list_free(&found);
}

/* GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]: the value, and its expiry changed. */
static void run_getex(struct resp_conn *c, const struct args *a)
{
    int64_t ttl_ms = -1; /* -1: leave it; 0: never expire */
    if (a->argc == 3 && arg_is(a, 2, "PERSIST")) {
        ttl_ms = 0;
    } else if (a->argc == 4) {
        const struct expiry_option *e = expiry_option_at(a, 2);
        if (e == NULL) {
            resp_out_error(&c->out, ERR_SYNTAX);
            return;
        }
        if (!expiry_ms(c, a, 3, e->scale, e->absolute, "getex", &ttl_ms))
            return;
    } else if (a->argc != 2) {
        resp_out_error(&c->out, ERR_SYNTAX);
        return;
    }
    struct store_item item;
    if (!read_or_reply(c, a, 1, &item))
        return;
    /* The expiry of the value read, not of one written since: if it changed, GETEX saw the older one and lets it be. */
    if (ttl_ms >= 0)
        cmd_set_ttl(cmd_of(c), arg(a, 1), arg_len(a, 1), ttl_ms, item.meta.version, NULL);
    resp_out_bulk(&c->out, item.data, item.len);
}

/* ---- the table ------------------------------------------------------------------ */

enum command_flags {
    BEFORE_AUTH = 1,  /* allowed before AUTH */
    WHILE_LOADING = 2 /* allowed while --data-dir loads */
};

struct command {
    const char *name;
    int arity; /* Redis's: n exactly n arguments (the name counted), -n at least n */
    unsigned flags;
    void (*run)(struct resp_conn *c, const struct args *a);
};

static void run_command(struct resp_conn *c, const struct args *a);

/* In alphabetical order: find_command searches it by halves (tests/integration/test_resp.c checks every name). */
static const struct command commands[] = {
    {"append", 3, 0, run_append},
    {"auth", -2, BEFORE_AUTH | WHILE_LOADING, run_auth},
    {"client", -2, WHILE_LOADING, run_client},
    {"command", -1, WHILE_LOADING, run_command},
    {"config", -2, WHILE_LOADING, run_config},
    {"dbsize", 1, 0, run_dbsize},
    {"decr", 2, 0, run_decr},
    {"decrby", 3, 0, run_decrby},
    {"del", -2, 0, run_del},
    {"echo", 2, WHILE_LOADING, run_echo},
    {"exists", -2, 0, run_exists},
    {"expire", -3, 0, run_expire},
    {"expireat", -3, 0, run_expireat},
    {"expiretime", 2, 0, run_expiretime},
    {"flushall", -1, 0, run_flush},
    {"flushdb", -1, 0, run_flush},
    {"get", 2, 0, run_get},
    {"getdel", 2, 0, run_getdel},
    {"getex", -2, 0, run_getex},
    {"getset", 3, 0, run_getset},
    {"hello", -1, BEFORE_AUTH | WHILE_LOADING, run_hello},
    {"incr", 2, 0, run_incr},
    {"incrby", 3, 0, run_incrby},
    {"incrbyfloat", 3, 0, run_incrbyfloat},
    {"info", -1, WHILE_LOADING, run_info},
    {"keys", 2, 0, run_keys},
    {"mget", -2, 0, run_mget},
    {"mset", -3, 0, run_mset},
    {"msetnx", -3, 0, run_msetnx},
    {"persist", 2, 0, run_persist},
    {"pexpire", -3, 0, run_pexpire},
    {"pexpireat", -3, 0, run_pexpireat},
    {"pexpiretime", 2, 0, run_pexpiretime},
    {"ping", -1, WHILE_LOADING, run_ping},
    {"psetex", 4, 0, run_psetex},
    {"pttl", 2, 0, run_pttl},
    {"quit", -1, BEFORE_AUTH | WHILE_LOADING, run_quit},
    {"randomkey", 1, 0, run_randomkey},
    {"reset", 1, BEFORE_AUTH | WHILE_LOADING, run_reset},
    {"scan", -2, 0, run_scan},
    {"select", 2, WHILE_LOADING, run_select},
    {"set", -3, 0, run_set},
    {"setex", 4, 0, run_setex},
    {"setnx", 3, 0, run_setnx},
    {"strlen", 2, 0, run_strlen},
    {"time", 1, WHILE_LOADING, run_time},
    {"ttl", 2, 0, run_ttl},
    {"type", 2, 0, run_type},
    {"unlink", -2, 0, run_del},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* COMMAND, COMMAND COUNT, COMMAND INFO name…: what each command is, as far as clients use it; COMMAND DOCS: none. */
static void command_info(struct resp_conn *c, const struct command *cmd)
{
    resp_out_array(&c->out, 6);
    resp_out_bulk_str(&c->out, cmd->name);
    resp_out_integer(&c->out, cmd->arity);
    resp_out_array(&c->out, 0);
    bool keyed =
        cmd->run != run_ping && !(cmd->flags & WHILE_LOADING) && cmd->run != run_dbsize && cmd->run != run_flush;
    resp_out_integer(&c->out, keyed);
    resp_out_integer(&c->out, !keyed ? 0 : cmd->run == run_mset ? -1 : cmd->arity < 0 && cmd->run != run_set ? -1 : 1);
    resp_out_integer(&c->out, !keyed ? 0 : cmd->run == run_mset ? 2 : 1);
}

/* An ASCII letter in lower case (command names are ASCII; tolower() would consult the locale on every byte). */
static int ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : (unsigned char)c;
}

/* The command named name[0..len) in any case, by binary search: the table is in alphabetical order. */
static const struct command *find_command(const char *name, size_t len)
{
    size_t low = 0, high = NCOMMANDS;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        const char *candidate = commands[mid].name;
        size_t i = 0;
        while (i < len && candidate[i] != '\0' && ascii_lower(name[i]) == candidate[i])
            i++;
        int order = i == len               ? (candidate[i] == '\0' ? 0 : -1)
                    : candidate[i] == '\0' ? 1
                                           : ascii_lower(name[i]) - candidate[i];
        if (order == 0)
            return &commands[mid];
        if (order < 0)
            high = mid;
        else
            low = mid + 1;
    }
    return NULL;
}

static void run_command(struct resp_conn *c, const struct args *a)
{
    if (a->argc == 1) {
        resp_out_array(&c->out, NCOMMANDS);
        for (size_t i = 0; i < NCOMMANDS; i++)
            command_info(c, &commands[i]);
    } else if (arg_is(a, 1, "COUNT") && a->argc == 2) {
        resp_out_integer(&c->out, (int64_t)NCOMMANDS);
    } else if (arg_is(a, 1, "INFO")) {
        resp_out_array(&c->out, a->argc - 2);
        for (size_t i = 2; i < a->argc; i++) {
            const struct command *cmd = find_command(arg(a, i), arg_len(a, i));
            if (cmd != NULL)
                command_info(c, cmd);
            else
                resp_out_null_array(&c->out);
        }
    } else if (arg_is(a, 1, "DOCS")) {
        resp_out_map(&c->out, 0);
    } else {
        resp_out_errorf(&c->out, "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try COMMAND HELP.",
                        (int)arg_len(a, 1), arg(a, 1));
    }
}

/* Redis's "unknown command" text: the name and the start of the arguments, each cut at 128 bytes. */
static void reply_unknown(struct resp_conn *c, const struct args *a)
{
    char args_text[160];
    size_t len = 0;
    for (size_t i = 1; i < a->argc && len < 128; i++)
        len += (size_t)snprintf(args_text + len, sizeof(args_text) - len, "'%.*s' ",
                                (int)(arg_len(a, i) < 128 - len ? arg_len(a, i) : 128 - len), arg(a, i));
    args_text[len < sizeof(args_text) ? len : sizeof(args_text) - 1] = '\0';
    resp_out_errorf(&c->out, "ERR unknown command '%.*s', with args beginning with: %s",
                    (int)(arg_len(a, 0) < 128 ? arg_len(a, 0) : 128), arg(a, 0), args_text);
}

void resp_command_run(struct resp_conn *c, const char *base, const struct resp_arg *argv, size_t argc)
{
    const struct args a = {.base = base, .argv = argv, .argc = argc};
    struct resp_server *srv = c->worker->server;
    atomic_store_explicit(&c->worker->commands, atomic_load_explicit(&c->worker->commands, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    const struct command *cmd = find_command(arg(&a, 0), arg_len(&a, 0));
    if (cmd == NULL) {
        if (!c->authenticated)
            resp_out_error(&c->out, "NOAUTH Authentication required.");
        else
            reply_unknown(c, &a);
        return;
    }
    if (!c->authenticated && !(cmd->flags & BEFORE_AUTH)) {
        resp_out_error(&c->out, "NOAUTH Authentication required.");
        return;
    }
    if ((cmd->arity > 0 && argc != (size_t)cmd->arity) || (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
        resp_out_errorf(&c->out, "ERR wrong number of arguments for '%s' command", cmd->name);
        return;
    }
    const struct persist *p = srv->cmd->persist;
    if (p != NULL && !(cmd->flags & WHILE_LOADING) && persist_loading(p)) {
        resp_out_error(&c->out, "LOADING cachette is loading the dataset in memory");
        return;
    }
    cmd->run(c, &a);
}
