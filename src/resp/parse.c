/*
 * The RESP request parser: turns the bytes at the head of a connection's
 * buffer into the arguments of one request, the way Redis 7 reads them
 * (networking.c, processMultibulkBuffer and processInlineBuffer), and
 * refuses what Redis refuses with Redis's texts.
 *
 * A request arrives in as many pieces as the network likes, so the parser
 * is a resumable state machine (enum resp_phase): struct resp_request keeps
 * where the current line or bulk starts (pos), how far the search for the
 * line's end has gone (scanned) and how many bulks the count still promises.
 * Each call therefore looks only at bytes no earlier call looked at (but
 * for a "\r" seen before its "\n" came), and a request costs O(its bytes)
 * however it is cut; `examined` counts them so tests can hold the parser to
 * it. The limits may change between calls (stricter before AUTH):
 * check_declared holds what the request has declared so far to the new ones. Positions are offsets from the request's
 * first byte, never pointers, so the caller may move or grow its buffer
 * between calls. A bulk is never copied: its argument is an offset and a
 * length into the caller's bytes, so a declared length allocates nothing
 * and the only allocation is argv, grown by doubling up to the count the
 * request declares. Inline arguments are unquoted in place, each over its
 * own text, which is never shorter than its value.
 *
 * Where this parser is stricter than Redis, for the sake of a connection
 * that never reads garbage as a request:
 *  - a "\r" ending a count or length line, or a bulk's bytes, must be
 *    followed by "\n" ("\r\n" after a bulk): Redis skips the two bytes
 *    unread. The texts are "invalid multibulk length", "invalid bulk length"
 *    and ours, ERR_BULK_END;
 *  - a line longer than max_line_bytes is refused whether or not its end
 *    came in the same read: Redis looks at the length only while it has no
 *    end of line, so it takes a long line that arrives all at once;
 *  - an inline request with more than max_args arguments is refused
 *    (ERR_INLINE_ARGS): Redis bounds inline requests by their line alone.
 * And where it is more lenient: a NUL byte in an inline line is a byte like
 * any other, where Redis's C-string functions cannot see past it and wait
 * for 64 KiB.
 *
 * A bulk over max_bulk_bytes (but within max_skip_bytes) is not refused:
 * its bytes are passed over as they come and the request ends TOO_LARGE, so
 * a client that sends one value too many gets an error, not a closed
 * connection (which, behind a proxy that shares the connection, fails every
 * other client's requests on it). While it is skipped, each MORE lets the
 * caller drop what was read, so a skipped bulk never sits in memory.
 *
 * Not here: RESP3 or reply types (clients send requests as arrays of bulks
 * or inline lines only), command lookup, I/O.
 */
#include "resp/parse.h"

#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/decimal.h"
#include "cmd/hex.h"

/* ---- What a refused request is told -------------------------------------------- */

static const char ERR_COUNT[] = "ERR Protocol error: invalid multibulk length";
static const char ERR_COUNT_PREAUTH[] = "ERR Protocol error: unauthenticated multibulk length";
static const char ERR_COUNT_LINE[] = "ERR Protocol error: too big mbulk count string";
static const char ERR_BULK_LEN[] = "ERR Protocol error: invalid bulk length";
static const char ERR_BULK_LEN_PREAUTH[] = "ERR Protocol error: unauthenticated bulk length";
static const char ERR_BULK_LINE[] = "ERR Protocol error: too big bulk count string";
static const char ERR_BULK_END[] = "ERR Protocol error: expected CRLF after bulk data";
static const char ERR_INLINE_LINE[] = "ERR Protocol error: too big inline request";
static const char ERR_INLINE_QUOTES[] = "ERR Protocol error: unbalanced quotes in request";
static const char ERR_INLINE_ARGS[] = "ERR Protocol error: too many arguments in inline request";
static const char ERR_NOMEM[] = "ERR out of memory";

static bool refuse(struct resp_request *req, const char *why)
{
    req->error = why;
    req->phase = RESP_PHASE_ERROR;
    return true;
}

static const char *too_many_args(const struct resp_limits *limits)
{
    return limits->before_auth ? ERR_COUNT_PREAUTH : ERR_COUNT;
}

static const char *bulk_too_long(const struct resp_limits *limits)
{
    return limits->before_auth ? ERR_BULK_LEN_PREAUTH : ERR_BULK_LEN;
}

/*
 * Redis formats the byte with %c and turns "\r" and "\n" into spaces; its
 * text, built as a C string, ends at a NUL byte, and so does this one.
 */
static const char *expected_dollar(struct resp_request *req, char got)
{
    if (got == '\r' || got == '\n')
        got = ' ';
    snprintf(req->error_text, sizeof(req->error_text), "ERR Protocol error: expected '$', got '%c'", got);
    return req->error_text;
}

/* ---- Pieces -------------------------------------------------------------------- */

/*
 * A count or a length as Redis's string2ll reads it: "0", or an optional '-'
 * and a digit 1-9 followed by digits, within long long. No sign '+', no
 * leading zero, no space. Returns false for anything else.
 */
static bool parse_integer(const char *s, size_t n, long long *value)
{
    if (n == 1 && s[0] == '0') {
        *value = 0;
        return true;
    }
    bool negative = n > 0 && s[0] == '-';
    size_t i = negative;
    uint64_t magnitude;
    if (i == n || s[i] == '0' || decimal_parse(s + i, n - i, n - i, &magnitude) != 0 ||
        magnitude > (uint64_t)LLONG_MAX + negative)
        return false;
    /* -(LLONG_MAX + 1) computed without overflowing. */
    *value = negative ? -(long long)(magnitude - 1) - 1 : (long long)magnitude;
    return true;
}

/* Appends an argument, growing argv by doubling up to `most` entries. */
static bool push_arg(struct resp_request *req, size_t offset, size_t len, size_t most)
{
    assert(req->argc < most);
    if (req->argc == req->cap) {
        size_t cap = req->cap == 0 ? 8 : req->cap > most / 2 ? most : req->cap * 2;
        if (cap > most)
            cap = most;
        if (cap > SIZE_MAX / sizeof(*req->argv))
            return false;
        void *(*grow)(void *, size_t) = req->grow ? req->grow : realloc;
        struct resp_arg *argv = grow(req->argv, cap * sizeof(*argv));
        if (argv == NULL)
            return false;
        req->argv = argv;
        req->cap = cap;
    }
    req->argv[req->argc++] = (struct resp_arg){offset, len};
    return true;
}

enum line_end { LINE_FOUND, LINE_MORE, LINE_TOO_LONG };

/*
 * Looks for `end`, the byte that ends the line starting at req->pos, among
 * the bytes no earlier call searched, and no further than max bytes of line
 * and the end after them. LINE_FOUND sets *at to its offset.
 */
static enum line_end find_line_end(struct resp_request *req, const char *buf, size_t len, char end, size_t max,
                                   size_t *at)
{
    size_t window = len - req->pos;
    if (window > max)
        window = max + 1;
    size_t stop = req->pos + window;
    if (req->scanned < stop) {
        const char *from = buf + req->scanned;
        const char *hit = memchr(from, end, stop - req->scanned);
        req->examined += (size_t)((hit ? hit + 1 : buf + stop) - from);
        if (hit != NULL) {
            *at = req->scanned = (size_t)(hit - buf);
            return LINE_FOUND;
        }
        req->scanned = stop;
    }
    return req->scanned - req->pos > max ? LINE_TOO_LONG : LINE_MORE;
}

/*
 * Finds the "\r" ending a count or length line, with the byte after it (Redis
 * waits for that byte too). Returns true with *cr set; false to wait, or
 * with the request refused as too_long.
 */
static bool find_cr(struct resp_request *req, const char *buf, size_t len, const struct resp_limits *limits,
                    const char *too_long, size_t *cr)
{
    switch (find_line_end(req, buf, len, '\r', limits->max_line_bytes, cr)) {
    case LINE_TOO_LONG:
        refuse(req, too_long);
        return false;
    case LINE_MORE:
        return false;
    case LINE_FOUND:
        break;
    }
    return *cr + 1 < len;
}

/* ---- Multibulk requests: "*<count>\r\n", then count times "$<length>\r\n<bytes>\r\n" ---- */

/* Each step returns true when it moved the request on (to another phase, DONE or ERROR), false to wait. */

static bool read_count(struct resp_request *req, const char *buf, size_t len, const struct resp_limits *limits)
{
    size_t cr;
    if (!find_cr(req, buf, len, limits, ERR_COUNT_LINE, &cr))
        return req->phase == RESP_PHASE_ERROR;
    long long count;
    if (!parse_integer(buf + req->pos + 1, cr - req->pos - 1, &count))
        return refuse(req, ERR_COUNT);
    if (count > 0 && (unsigned long long)count > limits->max_args)
        return refuse(req, too_many_args(limits));
    if (buf[cr + 1] != '\n')
        return refuse(req, ERR_COUNT);
    req->examined++;
    req->pos = req->scanned = cr + 2;
    if (count <= 0) { /* Redis skips "*0" and "*-1" as empty requests */
        req->phase = RESP_PHASE_DONE;
        return true;
    }
    req->args_left = (size_t)count;
    req->phase = RESP_PHASE_BULK_HEADER;
    return true;
}

static bool read_bulk_header(struct resp_request *req, const char *buf, size_t len, const struct resp_limits *limits)
{
    size_t cr;
    if (!find_cr(req, buf, len, limits, ERR_BULK_LINE, &cr))
        return req->phase == RESP_PHASE_ERROR;
    if (buf[req->pos] != '$')
        return refuse(req, expected_dollar(req, buf[req->pos]));
    long long bulk_len;
    if (!parse_integer(buf + req->pos + 1, cr - req->pos - 1, &bulk_len) || bulk_len < 0)
        return refuse(req, ERR_BULK_LEN);
    bool skip = (unsigned long long)bulk_len > limits->max_bulk_bytes;
    if (skip && (unsigned long long)bulk_len > limits->max_skip_bytes)
        return refuse(req, bulk_too_long(limits));
    if (buf[cr + 1] != '\n')
        return refuse(req, ERR_BULK_LEN);
    req->examined++;
    req->pos = req->scanned = cr + 2;
    if (skip) {
        req->too_large = true;
        req->skip_left = (size_t)bulk_len;
        if (req->skip_left > req->largest_skipped)
            req->largest_skipped = req->skip_left;
        req->phase = RESP_PHASE_BULK_SKIP;
        return true;
    }
    req->bulk_len = (size_t)bulk_len;
    if (req->bulk_len > req->largest_bulk)
        req->largest_bulk = req->bulk_len;
    req->phase = RESP_PHASE_BULK_DATA;
    return true;
}

/* Passes over a skipped bulk's bytes as they come; then its "\r\n" is read as an empty bulk's. */
static bool read_bulk_skip(struct resp_request *req, size_t len)
{
    size_t take = len - req->pos < req->skip_left ? len - req->pos : req->skip_left;
    req->pos = req->scanned = req->pos + take;
    req->skip_left -= take;
    req->examined += take;
    if (req->skip_left > 0)
        return false;
    req->bulk_len = 0;
    req->phase = RESP_PHASE_BULK_DATA;
    return true;
}

static bool read_bulk_data(struct resp_request *req, const char *buf, size_t len)
{
    size_t have = len - req->pos;
    if (have < 2 || have - 2 < req->bulk_len)
        return false;
    size_t end = req->pos + req->bulk_len;
    req->examined += 2;
    if (buf[end] != '\r' || buf[end + 1] != '\n')
        return refuse(req, ERR_BULK_END);
    if (!push_arg(req, req->pos, req->bulk_len, req->argc + req->args_left))
        return refuse(req, ERR_NOMEM);
    req->pos = req->scanned = end + 2;
    req->phase = --req->args_left > 0 ? RESP_PHASE_BULK_HEADER : RESP_PHASE_DONE;
    return true;
}

/* ---- Inline requests: one line of arguments, as typed at redis-cli ------------------- */

/* What isspace() is in the C locale: the blanks skipped between arguments. */
static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static char unescape(char c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'b':
        return '\b';
    case 'a':
        return '\a';
    default:
        return c;
    }
}

/*
 * Splits line[0..end) into arguments as Redis's sdssplitargs does (redis-cli
 * splits what is typed at it the same way): blanks separate arguments; an
 * argument may hold "double quoted" parts, with the escapes \n \r \t \b \a
 * and \xHH (any other escaped byte stands for itself), and 'single quoted'
 * ones, where only \' is an escape; a closing quote must end its argument.
 * Quotes may start anywhere in an argument: a"b c"d is "ab cd". Each value
 * is written over its own text. Returns NULL, or why the line is refused.
 */
static const char *split_inline(struct resp_request *req, char *line, size_t end, const struct resp_limits *limits)
{
    req->examined += end;
    size_t in = 0;
    for (;;) {
        while (in < end && is_blank(line[in]))
            in++;
        if (in == end)
            return NULL;
        if (req->argc == limits->max_args)
            return ERR_INLINE_ARGS;
        size_t start = in, out = in;
        char quote = 0; /* '"', '\'' or 0 outside quotes */
        for (;;) {
            if (in == end) {
                if (quote != 0)
                    return ERR_INLINE_QUOTES;
                break;
            }
            char c = line[in];
            if (quote == 0) {
                in++;
                if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
                    break;
                if (c == '"' || c == '\'')
                    quote = c;
                else
                    line[out++] = c;
            } else if (c == quote) {
                in++;
                if (in < end && !is_blank(line[in]))
                    return ERR_INLINE_QUOTES;
                break;
            } else if (c == '\\' && quote == '"' && end - in > 3 && line[in + 1] == 'x' &&
                       hex_digit_value(line[in + 2]) >= 0 && hex_digit_value(line[in + 3]) >= 0) {
                line[out++] = (char)(hex_digit_value(line[in + 2]) * 16 + hex_digit_value(line[in + 3]));
                in += 4;
            } else if (c == '\\' && quote == '"' && end - in > 1) {
                line[out++] = unescape(line[in + 1]);
                in += 2;
            } else if (c == '\\' && quote == '\'' && end - in > 1 && line[in + 1] == '\'') {
                line[out++] = '\'';
                in += 2;
            } else {
                line[out++] = c;
                in++;
            }
        }
        if (!push_arg(req, start, out - start, limits->max_args))
            return ERR_NOMEM;
    }
}

static bool read_inline(struct resp_request *req, char *buf, size_t len, const struct resp_limits *limits)
{
    size_t lf;
    switch (find_line_end(req, buf, len, '\n', limits->max_line_bytes, &lf)) {
    case LINE_TOO_LONG:
        return refuse(req, ERR_INLINE_LINE);
    case LINE_MORE:
        return false;
    case LINE_FOUND:
        break;
    }
    const char *why = split_inline(req, buf, lf > 0 && buf[lf - 1] == '\r' ? lf - 1 : lf, limits);
    if (why != NULL)
        return refuse(req, why);
    req->pos = req->scanned = lf + 1;
    req->phase = RESP_PHASE_DONE;
    return true;
}

/* ---- The entry points ------------------------------------------------------------- */

/*
 * The limits may have been lowered since the last call: what the request has
 * declared so far must fit the new ones, as if they had held all along. A
 * bulk kept under the old ones that the new ones would have skipped makes
 * the request TOO_LARGE, as it would have been. (Line lengths are checked
 * against them by find_line_end, inline argument counts when the line is
 * split.)
 */
static const char *check_declared(struct resp_request *req, const struct resp_limits *limits)
{
    if (req->phase != RESP_PHASE_BULK_HEADER && req->phase != RESP_PHASE_BULK_DATA &&
        req->phase != RESP_PHASE_BULK_SKIP)
        return NULL;
    if (req->argc + req->args_left > limits->max_args)
        return too_many_args(limits);
    size_t largest = req->largest_bulk > req->largest_skipped ? req->largest_bulk : req->largest_skipped;
    if (largest > limits->max_bulk_bytes && largest > limits->max_skip_bytes)
        return bulk_too_long(limits);
    if (req->largest_bulk > limits->max_bulk_bytes)
        req->too_large = true;
    return NULL;
}

static bool step(struct resp_request *req, char *buf, size_t len, const struct resp_limits *limits)
{
    switch (req->phase) {
    case RESP_PHASE_START:
        if (len == 0)
            return false;
        req->phase = buf[0] == '*' ? RESP_PHASE_COUNT : RESP_PHASE_INLINE;
        return true;
    case RESP_PHASE_COUNT:
        return read_count(req, buf, len, limits);
    case RESP_PHASE_BULK_HEADER:
        return read_bulk_header(req, buf, len, limits);
    case RESP_PHASE_BULK_DATA:
        return read_bulk_data(req, buf, len);
    case RESP_PHASE_BULK_SKIP:
        return read_bulk_skip(req, len);
    case RESP_PHASE_INLINE:
        return read_inline(req, buf, len, limits);
    case RESP_PHASE_DONE:
    case RESP_PHASE_ERROR:
        break;
    }
    return false;
}

enum resp_parse_status resp_parse(struct resp_request *req, char *buf, size_t len, const struct resp_limits *limits,
                                  size_t *consumed, const char **error)
{
    /* The caller's bytes include every byte an earlier call saw. */
    assert(req->pos <= len && req->scanned <= len);
    if (req->phase != RESP_PHASE_DONE && req->phase != RESP_PHASE_ERROR) {
        const char *why = check_declared(req, limits);
        if (why != NULL)
            refuse(req, why);
    }
    while (step(req, buf, len, limits))
        ;
    switch (req->phase) {
    case RESP_PHASE_DONE:
        *consumed = req->pos;
        return req->too_large ? RESP_PARSE_TOO_LARGE : RESP_PARSE_DONE;
    case RESP_PHASE_ERROR:
        *error = req->error;
        return RESP_PARSE_ERROR;
    default:
        *consumed = 0;
        if (req->too_large) { /* a request that will not run keeps none of its bytes: the caller lets go of them */
            *consumed = req->pos;
            req->scanned -= req->pos;
            req->pos = 0;
        }
        return RESP_PARSE_MORE;
    }
}

/* Reads "<prefix><digits>\r\n" at *at (at most 9 digits); moves *at past it. */
static bool peek_number(const char *buf, size_t len, size_t *at, char prefix, size_t *value)
{
    size_t i = *at, v = 0, digits = 0;
    if (i >= len || buf[i] != prefix)
        return false;
    for (i++; i < len && digits < 9 && buf[i] >= '0' && buf[i] <= '9'; i++, digits++)
        v = v * 10 + (size_t)(buf[i] - '0');
    if (digits == 0 || len - i < 2 || buf[i] != '\r' || buf[i + 1] != '\n')
        return false;
    *at = i + 2;
    *value = v;
    return true;
}

size_t resp_peek_keys(const char *buf, size_t len, size_t max_key_len, struct resp_arg *keys, size_t max)
{
    size_t n = 0, at = 0, count, lines = 1;
    while (n < max && lines <= RESP_PEEK_MAX_LINES && peek_number(buf, len, &at, '*', &count)) {
        struct resp_arg key = {0, 0};
        for (size_t i = 0; i < count; i++) {
            size_t arg_len;
            if (++lines > RESP_PEEK_MAX_LINES || !peek_number(buf, len, &at, '$', &arg_len) || len - at < arg_len + 2)
                return n;
            if (i == 1)
                key = (struct resp_arg){at, arg_len};
            at += arg_len + 2;
        }
        if (count >= 2 && key.len <= max_key_len)
            keys[n++] = key;
        lines++;
    }
    return n;
}

void resp_request_reset(struct resp_request *req)
{
    struct resp_arg *argv = req->argv;
    size_t cap = req->cap;
    void *(*grow)(void *, size_t) = req->grow;
    size_t examined = req->examined;
    memset(req, 0, sizeof(*req));
    req->argv = argv;
    req->cap = cap;
    req->grow = grow;
    req->examined = examined;
}

void resp_request_free(struct resp_request *req)
{
    free(req->argv);
    req->argv = NULL;
    req->cap = 0;
    resp_request_reset(req);
}
