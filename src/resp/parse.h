/*
 * The request parser of the Redis-protocol (RESP) front (parse.c): bytes in,
 * arguments out, no I/O and no library types, so it can be fuzzed on its own.
 * It reads what Redis 7 reads, multibulk and inline requests, and refuses
 * what Redis refuses with Redis's error texts.
 */
#ifndef CACHETTE_RESP_PARSE_H
#define CACHETTE_RESP_PARSE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* Redis 7's limits, for callers that want to match it. */
#define RESP_REDIS_MAX_ARGS           ((size_t)INT_MAX)           /* elements of a multibulk request */
#define RESP_REDIS_MAX_BULK_BYTES     ((size_t)512 * 1024 * 1024) /* proto-max-bulk-len */
#define RESP_REDIS_MAX_LINE_BYTES     ((size_t)64 * 1024)         /* PROTO_INLINE_MAX_SIZE */
#define RESP_REDIS_PREAUTH_ARGS       ((size_t)10)                /* before AUTH */
#define RESP_REDIS_PREAUTH_BULK_BYTES ((size_t)16 * 1024)

/*
 * What one request may hold. The caller may pass other limits on each call,
 * stricter ones before a client authenticates: each call holds what the
 * request has declared so far (its count, its bulks' lengths) and the line
 * it is reading to the limits it is given, as if they had held from the
 * request's first byte. So a request DONE under some limits has at most
 * their arguments, of at most their bulk length; only a count or length
 * line already read is not measured again (a valid one is at most 21 bytes).
 */
struct resp_limits {
    size_t max_args;       /* arguments of one request, multibulk or inline */
    size_t max_bulk_bytes; /* one bulk string */
    /*
     * The most bytes a line may hold before its end: an inline request before
     * its '\n' (a '\r' before it counted), a "*<n>" or "$<n>" line before its
     * '\r'. One byte more without that end is refused, however the bytes
     * arrive (Redis's 64 KiB, RESP_REDIS_MAX_LINE_BYTES).
     */
    size_t max_line_bytes;
    /*
     * A bulk longer than max_bulk_bytes but at most this many bytes is read
     * and dropped rather than refused: its request ends TOO_LARGE, and the
     * connection can go on. 0: every bulk over max_bulk_bytes is refused.
     */
    size_t max_skip_bytes;
    /*
     * The limits are those before authentication: a count or a length past
     * them is refused with Redis's "unauthenticated multibulk length" or
     * "unauthenticated bulk length" rather than "invalid ...".
     */
    bool before_auth;
};

/* One argument: its bytes are the request's bytes [offset, offset + len), counted from the request's first byte. */
struct resp_arg {
    size_t offset, len;
};

/*
 * Where the parser stands in a request: what it reads next. The parser's
 * own; a zeroed request is at RESP_PHASE_START.
 */
enum resp_phase {
    RESP_PHASE_START,       /* nothing read: the first byte tells a multibulk request ('*') from an inline one */
    RESP_PHASE_COUNT,       /* the "*<count>\r\n" line */
    RESP_PHASE_BULK_HEADER, /* a "$<length>\r\n" line */
    RESP_PHASE_BULK_DATA,   /* a bulk's bytes and the "\r\n" after them */
    RESP_PHASE_BULK_SKIP,   /* the bytes of a bulk over max_bulk_bytes, dropped as they come */
    RESP_PHASE_INLINE,      /* an inline line, up to its '\n' */
    RESP_PHASE_DONE,        /* a whole request */
    RESP_PHASE_ERROR,       /* refused */
};

/*
 * The request at the head of a connection's buffer, parsed as far as its
 * bytes have arrived. Zero it before the first use; resp_request_reset
 * readies it for the next request, resp_request_free releases it. Only argv,
 * argc and examined are for the caller to read; the rest is the parser's.
 */
struct resp_request {
    struct resp_arg *argv; /* argc arguments once resp_parse says DONE */
    size_t argc;
    size_t cap; /* argv's room: grown by doubling up to the count the request declares, never past max_args */
    /*
     * A stand-in for realloc, whose memory free() releases, so tests can make
     * an allocation fail; NULL means realloc. Kept by reset.
     */
    void *(*grow)(void *ptr, size_t size);
    size_t examined; /* bytes the parser has looked at since req was zeroed: a request costs O(its bytes) */

    /* The parser's state: where it stopped and what it knows. */
    enum resp_phase phase;
    size_t pos;          /* the start of the line or bulk being read */
    size_t scanned;      /* the bytes from pos up to here hold no end of line */
    size_t args_left;    /* bulks the multibulk count still promises */
    size_t bulk_len;     /* of the bulk being read */
    size_t largest_bulk; /* the longest bulk length declared so far in this request and kept */
    size_t largest_skipped; /* the longest bulk length skipped so far */
    size_t skip_left;    /* of the bulk being skipped */
    bool too_large;      /* a bulk was (or is being) skipped: the request ends TOO_LARGE */
    const char *error;   /* once the request is refused */
    char error_text[48]; /* "expected '$', got '<c>'", which names a byte of the request */
};

enum resp_parse_status {
    RESP_PARSE_DONE,      /* a whole request: req->argc, req->argv and *consumed are set */
    RESP_PARSE_MORE,      /* the request is not complete: drop *consumed bytes, call again with the rest and more */
    RESP_PARSE_ERROR,     /* refused: *error says why */
    RESP_PARSE_TOO_LARGE, /* a whole request read, with a bulk over max_bulk_bytes: *consumed is set, argv is not */
};

/*
 * Parses, or goes on parsing, the request at buf[0..len), which begins with
 * the bytes of every earlier call for this request (the buffer may have
 * moved, and more bytes may follow): each call looks at the new bytes only.
 * Never reads past len, and allocates only argv.
 *
 * DONE: the request took buf[0..*consumed), and its arguments are argv[0..argc)
 * (argc 0 for an empty request: "*0", "*-1" or a blank line, which Redis skips
 * and so should the caller). The caller drops those bytes and calls
 * resp_request_reset before parsing the request after them; until then the
 * same DONE is returned again.
 *
 * MORE: nothing is changed in buf; the caller drops its first *consumed
 * bytes (0 but while a bulk is skipped, whose bytes are not kept) and calls
 * again with the rest once more bytes have arrived.
 *
 * TOO_LARGE: the request took buf[0..*consumed) (after what MORE let go),
 * but a bulk was over max_bulk_bytes (and within max_skip_bytes): the caller
 * answers with an error, drops the bytes and goes on as after DONE.
 *
 * ERROR: *error is a message with static storage, or in req until it is
 * reset or freed: Redis's text where Redis refuses the same bytes, such as
 * "ERR Protocol error: invalid bulk length". The caller replies
 * "-<message>\r\n" and closes the connection. The allocation failing gives
 * "ERR out of memory".
 *
 * Inline requests are decoded in place: an argument's bytes in buf are its
 * unquoted, unescaped value, so buf must be writable. A multibulk request's
 * bytes are left as they are.
 */
enum resp_parse_status resp_parse(struct resp_request *req, char *buf, size_t len, const struct resp_limits *limits,
                                  size_t *consumed, const char **error);

/*
 * Finds the second argument (the key, for most commands) of each whole
 * multibulk request at the start of buf[0..len), up to max of them, with
 * offsets from buf: a hint for prefetching, not a parse. It stops at the
 * first request it cannot read at a glance (inline, cut off, a length of
 * more than 9 digits) and after RESP_PEEK_MAX_LINES count and length lines
 * in all, so its cost is bounded whatever the buffer holds, and checks
 * nothing a real parse would refuse. Requests of one argument, and keys
 * longer than max_key_len, give none. Returns how many it found.
 */
#define RESP_PEEK_MAX_LINES 256
size_t resp_peek_keys(const char *buf, size_t len, size_t max_key_len, struct resp_arg *keys, size_t max);

/* Readies req for the next request; keeps argv's allocation, grow and examined. */
void resp_request_reset(struct resp_request *req);

/* Releases argv; req is then ready for use again, as after a reset. */
void resp_request_free(struct resp_request *req);

#endif
