/*
 * What the network fuzzers share (netfuzz.c), whatever protocol they speak:
 * a growing byte buffer and a seeded PRNG to generate cases with, byte
 * mutations, and the runner that delivers cases to the real server over
 * loopback sockets, many at a time, multiplexed with poll().
 *
 * A case's bytes depend only on the seed and its index, never on timing:
 * the protocol's generator builds them from an rng seeded with both. The
 * runner sends them in one write or in the pieces the case planned, then
 * ends the connection as planned (half-close, wait, close or reset),
 * reads whatever the server sends, and hands each finished case to the
 * protocol's check. A connection the server holds open past hang_ms after
 * the client's last byte (or its half-close) fails the run.
 */
#ifndef CACHETTE_TESTS_SUPPORT_NETFUZZ_H
#define CACHETTE_TESTS_SUPPORT_NETFUZZ_H

#include <stddef.h>
#include <stdint.h>

/* ---- bytes ------------------------------------------------------------------ */

/* A growing buffer of bytes; zero-initialised it is empty. The generators' only container. */
struct buf {
    char *p; /* NUL-terminated once anything was put (the NUL not counted in len) */
    size_t len, cap;
};

/* Appends n bytes (data may be NULL when n is 0). Aborts if memory runs out: a test has no use for that path. */
void buf_put(struct buf *b, const void *data, size_t n);
void buf_str(struct buf *b, const char *s);
void buf_byte(struct buf *b, int c);
void buf_repeat(struct buf *b, const char *s, size_t times);
void buf_fmt(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- randomness ------------------------------------------------------------- */

/* splitmix64: tiny, fast, and any 64-bit state is a good one. */
struct rng {
    uint64_t s;
};

uint64_t rng_next(struct rng *r);

/* A number in [0, n), or 0 when n is 0. */
size_t rng_pick(struct rng *r, size_t n);

/* True percent times in a hundred. */
int rng_chance(struct rng *r, unsigned percent);

/* Appends n random bytes: any byte, or printable ASCII only. */
void rng_bytes(struct rng *r, struct buf *b, size_t n, int printable);

/* Appends one of the '|'-separated words of words (empty ones too), chosen at random. */
void rng_word(struct rng *r, struct buf *b, const char *words);

/* The rng of case index in the run with seed. */
struct rng netfuzz_case_rng(uint64_t seed, unsigned long index);

/* ---- cases ------------------------------------------------------------------ */

#define NETFUZZ_MAX_PIECES 16

/*
 * After its last byte the client half-closes, waits, closes or resets. A
 * wait lasts until the server closes; or, when the case sets quiet_ms, until
 * nothing went either way for quiet_ms, after which the client half-closes
 * (unless the protocol's expects_close says the server is to close by
 * itself, when it keeps waiting).
 */
enum netfuzz_ending { NETFUZZ_HALF_CLOSE, NETFUZZ_WAIT, NETFUZZ_CLOSE, NETFUZZ_RESET };

struct netfuzz_case {
    unsigned long index;
    struct buf bytes;
    size_t cuts[NETFUZZ_MAX_PIECES]; /* the sends end at these offsets; the last is how much is sent */
    int pieces;
    int gap_ms; /* between pieces, and before a close or reset */
    enum netfuzz_ending ending;
    int quiet_ms;   /* NETFUZZ_WAIT: see above; 0: wait for the server to close */
    unsigned flags; /* the protocol's own */
};

/*
 * Plans how c->bytes go out, once the generator has set c->ending: in one
 * write or in up to NETFUZZ_MAX_PIECES, some milliseconds apart; a case that
 * closes or resets may send only a prefix.
 */
void netfuzz_plan_delivery(struct rng *r, struct netfuzz_case *c);

/*
 * Changes 1 to 6 places of b: a bit flipped, a byte replaced, a token of
 * tokens ('|'-separated, as rng_word takes them) or random bytes inserted,
 * bytes deleted, duplicated, or the rest cut off.
 */
void netfuzz_mutate(struct rng *r, struct buf *b, const char *tokens);

/* Whether needle occurs in the len bytes at p, in any case (NULs included). */
int netfuzz_contains_nocase(const char *p, size_t len, const char *needle);

/* ---- running cases ---------------------------------------------------------- */

struct netfuzz_slot {
    int fd; /* -1: free */
    struct netfuzz_case c;
    size_t sent;
    int piece;            /* the cut the sends are heading for */
    int done_sending;     /* the last piece went out, or the server stopped reading */
    int shut;             /* the client half-closed its side */
    int awaiting_close;   /* a quiet wait ended, and the server is to close by itself */
    int server_gone;      /* a send failed: the server has closed (and reset) the connection */
    int closed_by_server; /* at the check: the server closed (or reset) before the client closed */
    int capped;           /* more came back than the run's read_cap: in holds only the first bytes */
    int64_t next_at;      /* when the next piece, or the close, is due */
    int64_t last_io;      /* the last byte either way */
    int64_t deadline;     /* the server must have closed the connection by then */
    struct buf in;
};

struct netfuzz {
    const char *name; /* in messages: "netfuzz", "netfuzz-resp" */
    unsigned port;
    uint64_t seed;
    int hang_ms;     /* how long the server may keep a connection past the client's last byte or half-close */
    int quiet_scale; /* quiet_ms is multiplied by this (0 or 1: as it is), for a slow server */
    size_t read_cap; /* bytes kept of what comes back for one case */
    const char *hang_why;
    /* Case index of the run with seed: its bytes and how they are delivered. */
    void (*gen)(uint64_t seed, unsigned long index, struct netfuzz_case *c);
    /* Checks a finished case (fd already closed); fails the test with netfuzz_fail_case. */
    void (*check)(struct netfuzz *f, const struct netfuzz_slot *s);
    /* May be NULL. After a quiet wait: whether what came back says the server is to close by itself. */
    int (*expects_close)(const struct netfuzz *f, const struct netfuzz_slot *s);
    void *tally;         /* the protocol's counters, for check */
    unsigned long cases; /* finished so far */
};

/* Runs cases [first, end), NETFUZZ_SLOTS at a time, until every one has finished. */
#define NETFUZZ_SLOTS 64
void netfuzz_run_batch(struct netfuzz *f, unsigned long first, unsigned long end);

/*
 * Fails the test for case s: prints the seed, the case, its delivery, what
 * was sent and what came back as C string literals (the whole request also
 * to a file, named in the message, for a repro).
 */
void netfuzz_fail_case(const struct netfuzz *f, const struct netfuzz_slot *s, const char *why);

/* Prints a buffer as a C string literal (at most limit bytes of it) on stderr. */
void netfuzz_print_escaped(const char *label, const char *p, size_t len, size_t limit);

/* The unsigned number in environment variable name, or fallback when it is unset or empty; fails the test if it is no
 * number. */
uint64_t netfuzz_env_u64(const char *name, uint64_t fallback);

struct server;

/*
 * Between batches: the server did not exit during cases [first, end), and
 * answers GET /health with 200 {"status":"ok"} on its HTTP port.
 */
void netfuzz_expect_alive(const struct netfuzz *f, struct server *srv, unsigned long first, unsigned long end);

/* NETFUZZ_SEED, or a seed from the clock and the pid. */
uint64_t netfuzz_seed(void);

#endif
