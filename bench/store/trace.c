/*
 * Trace-replay benchmark: the miss ratio of the store's eviction policies
 * (S3-FIFO, SIEVE) beside exact LRU and FIFO references, on synthetic traces
 * at cache sizes given as a share of each trace's footprint.
 *
 * Traces are generated here, deterministically from one seed, as arrays of
 * key ids; id i is the 16-byte key "k%015u" and every value is 16 bytes, so
 * every entry costs the store the same bytes. KEYS is the Zipf universe.
 *
 *   zipf-A    Zipf(A) over KEYS keys, A = 0.8, 0.99, 1.2; exact CDF, inverted
 *             by binary search.
 *   scan      Zipf(0.99) over KEYS keys, and after every 4*KEYS/5 Zipf requests
 *             a sequential scan of KEYS/5 keys never requested before or after
 *             (a backup or a report reading cold rows): 20% of requests.
 *   loop      Each request is, with probability 1/2, Zipf(0.99) over KEYS keys,
 *             else the next key of a cyclic loop over KEYS/2 other keys: a loop
 *             longer than any cache size here, which LRU and FIFO always miss.
 *   one-hit   Each request is, with probability 1/2, a key requested exactly
 *             once in the whole trace, else Zipf(0.99) over KEYS keys.
 *
 * The footprint is the number of distinct keys a trace requests, and a cache
 * size of P% holds C = P% of it, in entries. The store's budget is in bytes
 * (entries as the allocator sized them, plus its hash table), so for each
 * policy the budget is calibrated until the store, filled with distinct keys
 * far past its first eviction, holds exactly C entries; LRU and FIFO are given
 * C entries. The store runs with one shard, so its policy sees the whole
 * cache, as the algorithms are described.
 *
 * Replay: store_get each request; on STORE_ENOTFOUND count a miss and
 * store_set the key. Misses are counted over the whole trace, cold ones
 * included (as libCacheSim and the S3-FIFO paper count them), unless
 * --warmup N says to skip the first N requests; the same for every policy.
 * A policy the store does not have (store_create returns NULL) prints "n/a".
 *
 * The LRU and FIFO references index entries by key id in a plain array (ids
 * are dense, so that is a perfect hash map); LRU keeps a doubly linked list of
 * array slots, most recent at the head, FIFO a ring of ids in insertion order.
 * --self-test checks them, and the store's SIEVE, on hand-counted traces.
 *
 * Output: comment lines starting with '#' describing each trace, then one line
 * per run: "trace pct C policy capacity budget misses counted ratio", with
 * capacity "n/a" and no further fields for a policy the store lacks.
 * bench/store/trace.sh turns them into a Markdown table.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cachette/store.h"

#define KEY_LEN   16
#define VALUE_LEN 16
#define NO_SLOT   UINT32_MAX

/* ------------------------------------------------------------------------ */
/* Random numbers and Zipf draws                                            */
/* ------------------------------------------------------------------------ */

/* splitmix64: tiny, fast, and every seed (0 included) gives a good stream. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unit(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) * 0x1.0p-53;
}

struct zipf {
    double *cdf; /* cdf[i] = sum of 1/(k+1)^alpha for k <= i, unnormalised */
    uint32_t n;
};

static int zipf_init(struct zipf *z, uint32_t n, double alpha)
{
    z->n = n;
    z->cdf = malloc((size_t)n * sizeof(*z->cdf));
    if (z->cdf == NULL)
        return -ENOMEM;
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        sum += pow((double)i + 1, -alpha);
        z->cdf[i] = sum;
    }
    return 0;
}

/* A rank in [0, n): the first i with cdf[i] > u * total. Rank 0 is the most popular. */
static uint32_t zipf_draw(const struct zipf *z, uint64_t *rng)
{
    double u = rng_unit(rng) * z->cdf[z->n - 1];
    uint32_t lo = 0, hi = z->n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static void zipf_free(struct zipf *z)
{
    free(z->cdf);
    z->cdf = NULL;
}

/* ------------------------------------------------------------------------ */
/* Traces                                                                   */
/* ------------------------------------------------------------------------ */

enum trace_kind { TRACE_ZIPF, TRACE_SCAN, TRACE_LOOP, TRACE_ONE_HIT };

struct trace_spec {
    const char *name;
    enum trace_kind kind;
    double alpha;
    const char *what;
};

static const struct trace_spec trace_specs[] = {
    {"zipf-0.8", TRACE_ZIPF, 0.8, "Zipf 0.8"},
    {"zipf-0.99", TRACE_ZIPF, 0.99, "Zipf 0.99"},
    {"zipf-1.2", TRACE_ZIPF, 1.2, "Zipf 1.2"},
    {"scan", TRACE_SCAN, 0.99, "Zipf 0.99; every 4*KEYS/5 requests a scan of KEYS/5 never-seen keys"},
    {"loop", TRACE_LOOP, 0.99, "1/2 Zipf 0.99, 1/2 a cyclic loop over KEYS/2 other keys"},
    {"one-hit", TRACE_ONE_HIT, 0.99, "1/2 keys requested exactly once, 1/2 Zipf 0.99"},
};
#define NTRACES (sizeof(trace_specs) / sizeof(trace_specs[0]))

struct trace {
    const struct trace_spec *spec;
    uint32_t *req; /* key ids, in request order */
    size_t len;
    uint32_t id_limit; /* every id is below this */
    size_t footprint;  /* distinct ids */
};

/* Counts the distinct ids of t into t->footprint. 0 or -ENOMEM. */
static int trace_count_footprint(struct trace *t)
{
    unsigned char *seen = calloc(t->id_limit, 1);
    if (seen == NULL)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < t->len; i++) {
        n += !seen[t->req[i]];
        seen[t->req[i]] = 1;
    }
    free(seen);
    t->footprint = n;
    return 0;
}

/*
 * Fills t with `requests` requests of spec's pattern over a Zipf universe of
 * `keys` ids (0 .. keys-1); other patterns take ids from keys upwards.
 * Returns 0, -EINVAL when the ids would not fit in 32 bits, or -ENOMEM.
 */
static int trace_generate(struct trace *t, const struct trace_spec *spec, uint32_t keys, size_t requests, uint64_t seed)
{
    memset(t, 0, sizeof(*t));
    t->spec = spec;
    if ((uint64_t)keys + requests >= UINT32_MAX)
        return -EINVAL;
    struct zipf z;
    if (zipf_init(&z, keys, spec->alpha) != 0)
        return -ENOMEM;
    t->req = malloc((requests ? requests : 1) * sizeof(*t->req));
    if (t->req == NULL) {
        zipf_free(&z);
        return -ENOMEM;
    }
    t->len = requests;
    uint64_t rng = seed;
    uint32_t next_id = keys; /* the next id never used before */
    uint32_t scan_len = keys / 5 ? keys / 5 : 1, loop_len = keys / 2 ? keys / 2 : 1;
    uint32_t loop_pos = 0;
    size_t i = 0;
    while (i < requests) {
        switch (spec->kind) {
        case TRACE_ZIPF:
            t->req[i++] = zipf_draw(&z, &rng);
            break;
        case TRACE_SCAN:
            for (uint32_t k = 0; k < 4 * scan_len && i < requests; k++)
                t->req[i++] = zipf_draw(&z, &rng);
            for (uint32_t k = 0; k < scan_len && i < requests; k++)
                t->req[i++] = next_id++;
            break;
        case TRACE_LOOP:
            if (rng_next(&rng) & 1) {
                t->req[i++] = zipf_draw(&z, &rng);
            } else {
                t->req[i++] = keys + loop_pos;
                loop_pos = (loop_pos + 1) % loop_len;
            }
            break;
        case TRACE_ONE_HIT:
            t->req[i++] = (rng_next(&rng) & 1) ? zipf_draw(&z, &rng) : next_id++;
            break;
        }
    }
    zipf_free(&z);
    t->id_limit = spec->kind == TRACE_LOOP ? keys + loop_len : next_id;
    if (trace_count_footprint(t) != 0) {
        free(t->req);
        return -ENOMEM;
    }
    return 0;
}

static void trace_free(struct trace *t)
{
    free(t->req);
    t->req = NULL;
}

/* Writes the 16-byte key of id: 'k' and 15 decimal digits, as "k%015u" would. */
static void key_of(uint32_t id, char key[KEY_LEN])
{
    key[0] = 'k';
    for (int i = KEY_LEN - 1; i > 0; i--) {
        key[i] = (char)('0' + id % 10);
        id /= 10;
    }
}

/* ------------------------------------------------------------------------ */
/* Reference policies: exact LRU and FIFO, capacity in entries              */
/* ------------------------------------------------------------------------ */

/*
 * LRU: slot[id] is the id's node or NO_SLOT; nodes 0 .. used-1 form a doubly
 * linked list, most recently used at head. A miss in a full cache reuses the
 * tail's node. Returns the misses at request index >= warmup, or -1 for want
 * of memory.
 */
static int64_t replay_lru(const uint32_t *req, size_t len, uint32_t id_limit, size_t cap, size_t warmup)
{
    uint32_t *slot = malloc((size_t)id_limit * sizeof(*slot));
    uint32_t *key = malloc(cap * sizeof(*key)), *prev = malloc(cap * sizeof(*prev)),
             *next = malloc(cap * sizeof(*next));
    int64_t misses = -1;
    if (slot == NULL || key == NULL || prev == NULL || next == NULL || cap == 0)
        goto out;
    memset(slot, 0xff, (size_t)id_limit * sizeof(*slot));
    uint32_t head = NO_SLOT, tail = NO_SLOT;
    size_t used = 0;
    misses = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t id = req[i], n = slot[id];
        if (n != NO_SLOT) {
            if (n == head)
                continue;
            /* unlink n (not the head, so prev[n] exists), then push it at the head */
            next[prev[n]] = next[n];
            if (next[n] != NO_SLOT)
                prev[next[n]] = prev[n];
            else
                tail = prev[n];
        } else {
            misses += i >= warmup;
            if (used < cap) {
                n = (uint32_t)used++;
            } else {
                n = tail;
                slot[key[n]] = NO_SLOT;
                tail = prev[n];
                if (tail != NO_SLOT)
                    next[tail] = NO_SLOT;
                else
                    head = NO_SLOT;
            }
            key[n] = id;
            slot[id] = n;
        }
        prev[n] = NO_SLOT;
        next[n] = head;
        if (head != NO_SLOT)
            prev[head] = n;
        head = n;
        if (tail == NO_SLOT)
            tail = n;
    }
out:
    free(slot);
    free(key);
    free(prev);
    free(next);
    return misses;
}

/* FIFO: a ring of the cached ids in insertion order; a hit changes nothing. As replay_lru. */
static int64_t replay_fifo(const uint32_t *req, size_t len, uint32_t id_limit, size_t cap, size_t warmup)
{
    unsigned char *present = calloc(id_limit, 1);
    uint32_t *ring = malloc(cap * sizeof(*ring));
    int64_t misses = -1;
    if (present == NULL || ring == NULL || cap == 0)
        goto out;
    size_t used = 0, oldest = 0;
    misses = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t id = req[i];
        if (present[id])
            continue;
        misses += i >= warmup;
        if (used < cap) {
            ring[used++] = id;
        } else {
            present[ring[oldest]] = 0;
            ring[oldest] = id;
            oldest = (oldest + 1) % cap;
        }
        present[id] = 1;
    }
out:
    free(present);
    free(ring);
    return misses;
}

/* ------------------------------------------------------------------------ */
/* The store: capacity calibration and replay                               */
/* ------------------------------------------------------------------------ */

struct get_buf {
    char bytes[64];
};

/* store_get's allocator: the same buffer every time (one thread, values of 16 bytes). */
static void *get_buf_alloc(void *ctx, size_t size)
{
    struct get_buf *buf = ctx;
    return size <= sizeof(buf->bytes) ? buf->bytes : NULL;
}

static struct store *store_open(enum store_eviction eviction, size_t budget)
{
    struct store_config cfg = {.max_memory = budget, .single_shard = true, .eviction = eviction};
    return store_create(&cfg);
}

static int store_put(struct store *s, uint32_t id)
{
    static const char value[VALUE_LEN] = "vvvvvvvvvvvvvvv";
    char key[KEY_LEN];
    key_of(id, key);
    struct store_value v = {.kind = STORE_KIND_STRING, .data = value, .len = VALUE_LEN};
    return store_set(s, key, KEY_LEN, &v, NULL, NULL);
}

/*
 * The bytes an unbounded store of this policy uses holding ids 0 .. n-1, into
 * *bytes. Returns 0, STORE_EINVAL when the store lacks the policy, or the
 * error of a failed write.
 */
static int store_bytes_holding(enum store_eviction eviction, size_t n, size_t *bytes)
{
    struct store *s = store_open(eviction, 0);
    if (s == NULL)
        return STORE_EINVAL;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = store_put(s, (uint32_t)i);
    struct store_stats st;
    store_stats(s, &st);
    *bytes = st.bytes_used;
    store_destroy(s);
    return rc;
}

/*
 * The entries a store of this policy and budget holds in steady state, into
 * *cap: it is filled with distinct keys until it first evicts, then with
 * twice as many keys again, so that its queues, ghost and table have settled
 * (the count just before the first eviction can be higher, when the table's
 * growth is what first crossed the budget). Returns 0, STORE_EINVAL when the
 * store lacks the policy, or a write's error.
 */
static int store_capacity(enum store_eviction eviction, size_t budget, size_t *cap)
{
    struct store *s = store_open(eviction, budget);
    if (s == NULL)
        return STORE_EINVAL;
    struct store_stats st;
    uint32_t id = 0;
    int rc = 0;
    do {
        rc = store_put(s, id++);
        store_stats(s, &st);
    } while (rc == 0 && st.evicted == 0);
    for (size_t more = 2 * (size_t)id; rc == 0 && more > 0; more--)
        rc = store_put(s, id++);
    *cap = store_count(s);
    store_destroy(s);
    return rc;
}

/*
 * Finds a budget under which a store of this policy holds exactly `target`
 * entries: starts from the bytes an unbounded store uses for target entries,
 * corrects by whole entries until it has budgets both too small and too big,
 * then bisects between them. The count a budget gives can move by an entry
 * with the heap's state (glibc now and then hands an entry a chunk 16 bytes
 * bigger), so the target may be missed by one: *budget and *cap get the
 * closest try. Returns 0, STORE_EINVAL when the store lacks the policy, or a
 * write's error.
 */
static int store_calibrate(enum store_eviction eviction, size_t target, size_t *budget, size_t *cap)
{
    size_t empty, one;
    int rc = store_bytes_holding(eviction, 0, &empty);
    if (rc == 0)
        rc = store_bytes_holding(eviction, 1, &one);
    if (rc == 0)
        rc = store_bytes_holding(eviction, target, budget);
    if (rc != 0)
        return rc;
    size_t per_entry = one > empty ? one - empty : 1;
    size_t lo = 0, hi = 0; /* budgets that held too few, too many entries; 0 = none yet */
    size_t best_budget = *budget, best_cap = 0, best_err = SIZE_MAX;
    for (int tries = 0; tries < 24; tries++) {
        rc = store_capacity(eviction, *budget, cap);
        if (rc != 0 || *cap == target)
            return rc;
        size_t err = *cap < target ? target - *cap : *cap - target;
        if (err < best_err) {
            best_err = err;
            best_budget = *budget;
            best_cap = *cap;
        }
        size_t next;
        if (*cap < target) {
            lo = *budget;
            next = hi ? lo + (hi - lo) / 2 : *budget + err * per_entry;
        } else {
            hi = *budget;
            next = lo ? lo + (hi - lo) / 2 : *budget > err * per_entry ? *budget - err * per_entry : *budget / 2;
        }
        if (next == *budget || next == 0)
            break;
        *budget = next;
    }
    *budget = best_budget;
    *cap = best_cap;
    return 0;
}

struct store_run {
    int64_t misses;
    size_t end_count; /* entries held after the replay */
};

/* Replays req[0 .. len) through a fresh store. Returns 0, STORE_EINVAL (no such policy) or a failed call's error. */
static int replay_store(const uint32_t *req, size_t len, enum store_eviction eviction, size_t budget, size_t warmup,
                        struct store_run *out)
{
    struct store *s = store_open(eviction, budget);
    if (s == NULL)
        return STORE_EINVAL;
    struct get_buf buf;
    struct store_item item;
    char key[KEY_LEN];
    int rc = 0;
    out->misses = 0;
    for (size_t i = 0; i < len && rc == 0; i++) {
        key_of(req[i], key);
        rc = store_get(s, key, KEY_LEN, get_buf_alloc, &buf, &item);
        if (rc == STORE_ENOTFOUND) {
            out->misses += i >= warmup;
            rc = store_put(s, req[i]);
        }
    }
    out->end_count = store_count(s);
    store_destroy(s);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Self-test                                                                */
/* ------------------------------------------------------------------------ */

static int check(int ok, const char *what, long long got, long long want)
{
    fprintf(stderr, "%s %s: got %lld, want %lld\n", ok ? "ok  " : "FAIL", what, got, want);
    return ok ? 0 : 1;
}

static int self_test(void)
{
    /* Belady's trace: FIFO misses more with 4 entries than with 3; LRU does not. */
    static const uint32_t belady[] = {1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5};
    /* A hit relinks in LRU, not in FIFO: 1 2 1h 3(evicts 2 | 1) 1(h | m). */
    static const uint32_t relink[] = {1, 2, 1, 3, 1};
    size_t nb = sizeof(belady) / sizeof(belady[0]), nr = sizeof(relink) / sizeof(relink[0]);
    int failed = 0;
    failed += check(replay_fifo(belady, nb, 6, 3, 0) == 9, "FIFO belady C=3", replay_fifo(belady, nb, 6, 3, 0), 9);
    failed += check(replay_fifo(belady, nb, 6, 4, 0) == 10, "FIFO belady C=4", replay_fifo(belady, nb, 6, 4, 0), 10);
    failed += check(replay_lru(belady, nb, 6, 3, 0) == 10, "LRU belady C=3", replay_lru(belady, nb, 6, 3, 0), 10);
    failed += check(replay_lru(belady, nb, 6, 4, 0) == 8, "LRU belady C=4", replay_lru(belady, nb, 6, 4, 0), 8);
    failed += check(replay_lru(relink, nr, 4, 2, 0) == 3, "LRU relink C=2", replay_lru(relink, nr, 4, 2, 0), 3);
    failed += check(replay_fifo(relink, nr, 4, 2, 0) == 4, "FIFO relink C=2", replay_fifo(relink, nr, 4, 2, 0), 4);
    failed +=
        check(replay_lru(belady, nb, 6, 3, 4) == 6, "LRU belady C=3 warm-up 4", replay_lru(belady, nb, 6, 3, 4), 6);
    failed += check(replay_lru(relink, nr, 4, 1, 0) == 5, "LRU relink C=1", replay_lru(relink, nr, 4, 1, 0), 5);

    /*
     * The store's SIEVE on Belady's trace with 3 entries, counted by hand:
     * 1 2 3 miss; 4, 1, 2, 5 each evict the unvisited entry at the hand; 1 and
     * 2 hit; 3 clears 1's and 2's bits and evicts 5; 4 evicts 1; 5 evicts 2.
     * 10 misses, as LRU.
     */
    size_t budget, cap;
    int rc = store_calibrate(STORE_EVICT_SIEVE, 3, &budget, &cap);
    failed += check(rc == 0 && cap == 3, "store SIEVE calibrated to 3 entries", rc ? rc : (long long)cap, 3);
    struct store_run run;
    rc = replay_store(belady, nb, STORE_EVICT_SIEVE, budget, 0, &run);
    failed += check(rc == 0 && run.misses == 10, "store SIEVE belady C=3", rc ? rc : run.misses, 10);

    /* Calibration hits larger targets exactly, and the count holds through a replay. */
    static const size_t targets[] = {100, 1000, 4097};
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        char what[80];
        rc = store_calibrate(STORE_EVICT_SIEVE, targets[i], &budget, &cap);
        snprintf(what, sizeof(what), "store SIEVE calibrated to %zu entries", targets[i]);
        failed += check(rc == 0 && cap == targets[i], what, rc ? rc : (long long)cap, (long long)targets[i]);
    }
    struct trace t;
    rc = trace_generate(&t, &trace_specs[1], 10000, 100000, 42);
    if (rc == 0) {
        rc = store_calibrate(STORE_EVICT_SIEVE, 1000, &budget, &cap);
        if (rc == 0)
            rc = replay_store(t.req, t.len, STORE_EVICT_SIEVE, budget, 0, &run);
        /* Within one: glibc now and then gives an entry a 16-byte bigger chunk, and the store counts it. */
        failed += check(rc == 0 && run.end_count + 1 >= 1000 && run.end_count <= 1001,
                        "store SIEVE holds 1000 +- 1 entries after a replay", rc ? rc : (long long)run.end_count, 1000);
        /* The references agree with themselves: LRU with room for every key only has cold misses. */
        failed += check(replay_lru(t.req, t.len, t.id_limit, t.footprint, 0) == (int64_t)t.footprint,
                        "LRU with C = footprint misses only cold", replay_lru(t.req, t.len, t.id_limit, t.footprint, 0),
                        (long long)t.footprint);
        failed += check(replay_fifo(t.req, t.len, t.id_limit, t.footprint, 0) == (int64_t)t.footprint,
                        "FIFO with C = footprint misses only cold",
                        replay_fifo(t.req, t.len, t.id_limit, t.footprint, 0), (long long)t.footprint);
        trace_free(&t);
    } else {
        failed += check(0, "generate a trace", rc, 0);
    }

    /* Zipf draws: rank 0's share of 10^6 draws over 1000 keys, alpha 1, is 1/H(1000) = 0.1336. */
    struct zipf z;
    if (zipf_init(&z, 1000, 1.0) == 0) {
        uint64_t rng = 7;
        long long hits0 = 0;
        for (int i = 0; i < 1000000; i++)
            hits0 += zipf_draw(&z, &rng) == 0;
        double want = 1e6 / z.cdf[999];
        failed +=
            check(fabs((double)hits0 - want) < 0.01 * want, "Zipf rank 0 draws within 1%", hits0, (long long)want);
        zipf_free(&z);
    }
    fprintf(stderr, "%s\n", failed ? "self-test FAILED" : "self-test passed");
    return failed ? 1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Main                                                                     */
/* ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    enum store_eviction eviction;
} store_policies[] = {
    {"s3fifo", STORE_EVICT_S3FIFO},
    {"sieve", STORE_EVICT_SIEVE},
};

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: trace [--keys N] [--requests N] [--seed N] [--warmup N] [--sizes P,P,...]\n"
               "             [--traces NAME,...] | --self-test\n"
               "  defaults: --keys 100000 --requests 2000000 --seed 1 --warmup 0 --sizes 1,10,30, all traces\n"
               "  traces:");
    for (size_t i = 0; i < NTRACES; i++)
        fprintf(f, " %s", trace_specs[i].name);
    fprintf(f, "\n");
}

/* Whether name is in the comma-separated list (NULL: every name is). */
static int listed(const char *list, const char *name)
{
    if (list == NULL)
        return 1;
    size_t n = strlen(name);
    for (const char *p = list; *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return 1;
        p += len + (end != NULL);
    }
    return 0;
}

static int run_trace(const struct trace_spec *spec, uint32_t keys, size_t requests, uint64_t seed, size_t warmup,
                     const double *sizes, size_t nsizes)
{
    double t0 = seconds_now();
    struct trace t;
    int rc = trace_generate(&t, spec, keys, requests, seed);
    if (rc != 0) {
        fprintf(stderr, "trace %s: cannot generate (%s)\n", spec->name, strerror(-rc));
        return 1;
    }
    size_t counted = t.len > warmup ? t.len - warmup : 0;
    printf("# trace %s: %s; keys %u, requests %zu, footprint %zu, stream seed %llu, warm-up %zu\n", spec->name,
           spec->what, keys, t.len, t.footprint, (unsigned long long)seed, warmup);
    for (size_t si = 0; si < nsizes; si++) {
        size_t target = (size_t)llround(sizes[si] / 100.0 * (double)t.footprint);
        if (target == 0)
            target = 1;
        for (size_t p = 0; p < sizeof(store_policies) / sizeof(store_policies[0]); p++) {
            size_t budget = 0, cap = 0;
            struct store_run run = {0};
            rc = store_calibrate(store_policies[p].eviction, target, &budget, &cap);
            if (rc == 0)
                rc = replay_store(t.req, t.len, store_policies[p].eviction, budget, warmup, &run);
            if (rc == STORE_EINVAL) {
                printf("%s %g %zu %s n/a\n", spec->name, sizes[si], target, store_policies[p].name);
                continue;
            }
            if (rc != 0) {
                fprintf(stderr, "trace %s, %s: %s\n", spec->name, store_policies[p].name, store_strerror(rc));
                trace_free(&t);
                return 1;
            }
            if (run.end_count != cap)
                printf("# note: %s, %s at %g%%: held %zu entries after the replay, %zu when calibrated\n", spec->name,
                       store_policies[p].name, sizes[si], run.end_count, cap);
            printf("%s %g %zu %s %zu %zu %lld %zu %.6f\n", spec->name, sizes[si], target, store_policies[p].name, cap,
                   budget, (long long)run.misses, counted, counted ? (double)run.misses / (double)counted : 0.0);
        }
        int64_t lru = replay_lru(t.req, t.len, t.id_limit, target, warmup);
        int64_t fifo = replay_fifo(t.req, t.len, t.id_limit, target, warmup);
        if (lru < 0 || fifo < 0) {
            fprintf(stderr, "trace %s: out of memory in the references\n", spec->name);
            trace_free(&t);
            return 1;
        }
        printf("%s %g %zu lru %zu - %lld %zu %.6f\n", spec->name, sizes[si], target, target, (long long)lru, counted,
               counted ? (double)lru / (double)counted : 0.0);
        printf("%s %g %zu fifo %zu - %lld %zu %.6f\n", spec->name, sizes[si], target, target, (long long)fifo, counted,
               counted ? (double)fifo / (double)counted : 0.0);
        fflush(stdout);
    }
    fprintf(stderr, "trace %s: %.1f s\n", spec->name, seconds_now() - t0);
    trace_free(&t);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long long keys = 100000, requests = 2000000, seed = 1, warmup = 0;
    const char *size_list = "1,10,30", *trace_list = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--self-test") == 0)
            return self_test();
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (v == NULL) {
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--keys") == 0)
            keys = strtoull(v, NULL, 10);
        else if (strcmp(a, "--requests") == 0)
            requests = strtoull(v, NULL, 10);
        else if (strcmp(a, "--seed") == 0)
            seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--warmup") == 0)
            warmup = strtoull(v, NULL, 10);
        else if (strcmp(a, "--sizes") == 0)
            size_list = v;
        else if (strcmp(a, "--traces") == 0)
            trace_list = v;
        else {
            usage(stderr);
            return 2;
        }
    }
    if (keys < 10 || keys > UINT32_MAX / 4 || requests == 0 || keys + requests >= UINT32_MAX) {
        fprintf(stderr, "trace: --keys must be 10 .. 2^30 and keys + requests below 2^32\n");
        return 2;
    }
    double sizes[16];
    size_t nsizes = 0;
    for (const char *p = size_list; *p != '\0' && nsizes < 16;) {
        char *end;
        double s = strtod(p, &end);
        if (end == p || s <= 0 || s > 100 || (*end != ',' && *end != '\0')) {
            fprintf(stderr, "trace: --sizes takes percentages in (0, 100], comma-separated\n");
            return 2;
        }
        sizes[nsizes++] = s;
        p = *end == ',' ? end + 1 : end;
    }
    for (size_t i = 0; i < NTRACES; i++) {
        if (!listed(trace_list, trace_specs[i].name))
            continue;
        /* Each trace has its own stream, so selecting traces does not change any of them. */
        uint64_t trace_seed = seed * 0x100000001b3ULL + i;
        if (run_trace(&trace_specs[i], (uint32_t)keys, (size_t)requests, trace_seed, (size_t)warmup, sizes, nsizes))
            return 1;
    }
    return 0;
}
