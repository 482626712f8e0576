/*
 * The linearizability checker: Wing and Gong's search with Lowe's memo
 * (WGL), one key at a time.
 *
 * A key's operations, sorted by invoke, become a doubly linked list of
 * entries in time order: a call entry for each, a return entry for each that
 * completed (at equal times calls come first, so touching intervals count as
 * concurrent). The search walks the list from its head. At a call it tries to
 * place that operation next in the order, as the model allows from the
 * current state; placing it lifts both its entries out of the list and
 * restarts the walk. Reaching a return means that operation was not placed
 * before it completed, so the last placement is undone (the entries go back
 * in, dancing-links style) and the walk goes on past it. The key passes when
 * every completed operation is placed; it fails when a return is reached
 * with nothing to undo. Operations whose answer never came have no return
 * entry: they may be placed anywhere after their invoke, or never.
 *
 * The memo makes the search polynomial in practice: the future depends only
 * on which operations are placed and on the model's state, so a (placed set,
 * state) pair seen before is not explored again. The placed set is stored in
 * a canonical form small enough to keep millions of: the completed
 * operations are numbered by invoke, and a set is its frontier (one past the
 * highest placed), its holes below the frontier, and the placed operations of
 * unknown outcome. Holes are only operations concurrent with the frontier's
 * (any that completed before its invoke would have stopped the walk), so a
 * stored set is about as long as the clients are many, not as the history.
 *
 * When a key fails, the report comes from the deepest point the search
 * reached (the most completed operations placed): that order's end, the
 * state after it, and the operations invoked by the earliest return still
 * pending, none of which could come next. The deepest order is kept without
 * copying the stack at each step: positions still equal to the live stack
 * are copied only when a deeper point is reached.
 *
 * Every allocation goes through a budget, so memory and memoised states are
 * bounded (lincheck.h); reaching either leaves the key undecided.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lincheck.h"

#define NIL UINT32_MAX
/* The placed operations the report shows before the window, besides those overlapping it in time. */
#define REPORT_TAIL 3
/* The memo grows past 7/10 full. */
#define MEMO_LOAD_NUM    7
#define MEMO_LOAD_DEN    10
#define MEMO_FIRST_SLOTS 1024
/* How many placements back dominated() looks for ops of unknown outcome to leave out. */
#define DOMINANCE_LOOKBACK 16

/* ------------------------------------------------------------------ */
/* Memory budget                                                        */
/* ------------------------------------------------------------------ */

struct budget {
    size_t used, peak, max;
    bool exceeded; /* an allocation was refused: past max, or by malloc */
};

/* realloc under the budget: NULL (p untouched, exceeded set) if it would pass max or malloc fails. */
static void *budget_realloc(struct budget *b, void *p, size_t old_bytes, size_t new_bytes)
{
    if (new_bytes > old_bytes && b->used - old_bytes + new_bytes > b->max) {
        b->exceeded = true;
        return NULL;
    }
    void *q = realloc(p, new_bytes);
    if (q == NULL && new_bytes > 0) {
        b->exceeded = true;
        return NULL;
    }
    b->used = b->used - old_bytes + new_bytes;
    if (b->used > b->peak)
        b->peak = b->used;
    return q;
}

static void budget_free(struct budget *b, void *p, size_t bytes)
{
    free(p);
    b->used -= bytes;
}

/* Grows the array *p of *cap elements of size elem to hold at least need; 0, or -1 when refused. */
static int budget_reserve(struct budget *b, void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap < 16 ? 16 : *cap;
    while (n < need)
        n *= 2;
    void *q = budget_realloc(b, *p, *cap * elem, n * elem);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The model of one key                                                 */
/* ------------------------------------------------------------------ */

/*
 * Absent, or present with a value and a version. Absent is all zeroes, so
 * states compare and hash field by field. A value that is a canonical
 * integer (what incr writes) is held as that integer, any other as its id,
 * so "7" written by set and 7 written by incr are the same value. A version
 * is unknown after a write whose response carried none (or whose response
 * never came); the first read that shows one teaches it.
 *
 * Each successful write makes a new version, so an unknown version is none
 * of those that completed writes of the key reported: it may match an
 * If-Match, or be learnt from a read, only where the version asked for is
 * not one of those. Without this, one write of unknown outcome could stand
 * for any version and excuse a cas with any If-Match.
 */
struct kv_state {
    int64_t value;
    uint64_t version;
    bool present;
    bool value_is_int;
    bool version_known;
};

static bool state_equal(const struct kv_state *a, const struct kv_state *b)
{
    return a->present == b->present && a->value_is_int == b->value_is_int && a->version_known == b->version_known &&
           a->value == b->value && a->version == b->version;
}

/* What the model reads besides the state: the history, and the versions its key's completed writes reported. */
struct model {
    const struct lin_history *h;
    const uint64_t *reported; /* sorted */
    uint32_t n_reported;
};

static bool state_holds(const struct lin_history *h, const struct kv_state *s, uint32_t value)
{
    const struct lin_int *n = &h->value_ints[value];
    if (n->kind == LIN_CANONICAL_INT)
        return s->value_is_int && s->value == n->n;
    return !s->value_is_int && s->value == (int64_t)value;
}

/* The integer incr starts from: 0 when absent. False when the value is not an integer. */
static bool state_integer(const struct lin_history *h, const struct kv_state *s, int64_t *out)
{
    if (!s->present)
        *out = 0;
    else if (s->value_is_int)
        *out = s->value;
    else if (h->value_ints[s->value].kind != LIN_NOT_INT)
        *out = h->value_ints[s->value].n;
    else
        return false;
    return true;
}

static int by_version(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Whether s's version may be version: equal, or unknown and not another write's. */
static bool version_may_match(const struct model *m, const struct kv_state *s, uint64_t version)
{
    if (s->version_known)
        return s->version == version;
    return bsearch(&version, m->reported, m->n_reported, sizeof(*m->reported), by_version) == NULL;
}

static bool version_may_differ(const struct kv_state *s, uint64_t version)
{
    return !s->version_known || s->version != version;
}

/*
 * The state after op writes into in: present, with the version of op's
 * result (unknown when it had none). False when that version is in's own:
 * every successful write makes a new version.
 */
static bool write_state(const struct lin_op *op, const struct kv_state *in, struct kv_state *out)
{
    if (op->result_version_known && in->present && in->version_known && in->version == op->result_version)
        return false;
    out->present = true;
    out->version_known = op->result_version_known;
    out->version = op->result_version_known ? op->result_version : 0;
    return true;
}

static bool write_value(const struct lin_history *h, const struct lin_op *op, const struct kv_state *in,
                        struct kv_state *out)
{
    const struct lin_int *n = &h->value_ints[op->value];
    out->value_is_int = n->kind == LIN_CANONICAL_INT;
    out->value = out->value_is_int ? n->n : (int64_t)op->value;
    return write_state(op, in, out);
}

/*
 * Whether op, with its result, is legal in state in; if so, *out is the
 * state after it. An op of unknown outcome is taken as succeeding (a
 * failure changes nothing, which leaving the op out covers): legal where it
 * could succeed, with the version it wrote unknown.
 */
static bool model_step(const struct model *m, const struct lin_op *op, const struct kv_state *in, struct kv_state *out)
{
    const struct lin_history *h = m->h;
    static const struct kv_state absent;
    *out = *in;
    switch (op->kind) {
    case LIN_GET:
        if (op->result == LIN_RESULT_MISS)
            return !in->present;
        if (op->result != LIN_RESULT_HIT || !in->present || !state_holds(h, in, op->result_value))
            return false;
        if (op->result_version_known && !in->version_known) {
            out->version_known = true;
            out->version = op->result_version;
        }
        return !op->result_version_known || version_may_match(m, in, op->result_version);
    case LIN_SET:
        return write_value(h, op, in, out);
    case LIN_CAS:
        if (op->result == LIN_RESULT_FAIL)
            return !in->present || version_may_differ(in, op->if_version);
        return in->present && version_may_match(m, in, op->if_version) && write_value(h, op, in, out);
    case LIN_CREATE:
        if (op->result == LIN_RESULT_FAIL)
            return in->present;
        return !in->present && write_value(h, op, in, out);
    case LIN_DEL:
        *out = absent;
        return op->result == LIN_RESULT_MISS ? !in->present : in->present;
    case LIN_DELIF:
        if (op->result == LIN_RESULT_FAIL)
            return !in->present || version_may_differ(in, op->if_version);
        *out = absent;
        return in->present && version_may_match(m, in, op->if_version);
    case LIN_INCR: {
        int64_t base, sum;
        if (!state_integer(h, in, &base))
            return op->result == LIN_RESULT_NOTINT;
        if (op->result == LIN_RESULT_NOTINT || __builtin_add_overflow(base, op->by, &sum))
            return false;
        if (op->result == LIN_RESULT_OK && h->value_ints[op->result_value].n != sum)
            return false;
        out->value_is_int = true;
        out->value = sum;
        return write_state(op, in, out);
    }
    }
    return false;
}

/*
 * The states op may leave from in: as it is, and, under allow-loss, after
 * the server dropped the key just before. Returns how many (0 to 2), without
 * duplicates. An op of unknown outcome that would leave in as it is has
 * none: placing it would be the same as leaving it out, with less freedom.
 */
static int model_successors(const struct model *m, const struct lin_op *op, const struct kv_state *in,
                            struct kv_state out[2])
{
    static const struct kv_state absent;
    bool optional = op->result == LIN_RESULT_UNKNOWN;
    int n = model_step(m, op, in, &out[0]) && !(optional && state_equal(&out[0], in)) ? 1 : 0;
    if (m->h->allow_loss && in->present && model_step(m, op, &absent, &out[n]) &&
        !(n == 1 && state_equal(&out[0], &out[1])) && !(optional && state_equal(&out[n], in)))
        n++;
    return n;
}

/* ------------------------------------------------------------------ */
/* The memo of explored (placed set, state) pairs                       */
/* ------------------------------------------------------------------ */

struct memo_slot {
    uint64_t hash;
    uint64_t words_start; /* the placed set's encoding: memo.words[words_start..+words_len) */
    struct kv_state state;
    uint32_t words_len; /* 0: an empty slot (an encoding has at least 2 words) */
};

struct memo {
    struct memo_slot *slots;
    size_t n_slots, used;
    uint32_t *words;
    size_t words_len, words_cap;
};

static uint64_t hash_mix(uint64_t h, uint64_t word)
{
    h = (h ^ word) * 0x9e3779b97f4a7c15u;
    return h ^ (h >> 29);
}

/* The splitmix64 finaliser: every input bit moves every output bit. */
static uint64_t hash_finish(uint64_t h)
{
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9u;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebu;
    return h ^ (h >> 31);
}

static uint64_t memo_hash(const uint32_t *words, uint32_t len, const struct kv_state *s)
{
    uint64_t h = hash_mix(0, (uint64_t)s->present | (uint64_t)s->value_is_int << 1 | (uint64_t)s->version_known << 2);
    h = hash_mix(h, (uint64_t)s->value);
    h = hash_mix(h, s->version);
    for (uint32_t i = 0; i + 1 < len; i += 2)
        h = hash_mix(h, (uint64_t)words[i] << 32 | words[i + 1]);
    if (len % 2 == 1)
        h = hash_mix(h, words[len - 1]);
    return hash_finish(h);
}

/* Empties the memo and gives it a slot array of n_slots (a power of two); 0 or -1. */
static int memo_reset(struct memo *m, struct budget *b, size_t n_slots)
{
    budget_free(b, m->slots, m->n_slots * sizeof(*m->slots));
    m->slots = NULL;
    m->n_slots = m->used = m->words_len = 0;
    struct memo_slot *slots = budget_realloc(b, NULL, 0, n_slots * sizeof(*slots));
    if (slots == NULL)
        return -1;
    memset(slots, 0, n_slots * sizeof(*slots));
    m->slots = slots;
    m->n_slots = n_slots;
    return 0;
}

static int memo_grow(struct memo *m, struct budget *b)
{
    size_t n = m->n_slots * 2;
    struct memo_slot *slots = budget_realloc(b, NULL, 0, n * sizeof(*slots));
    if (slots == NULL)
        return -1;
    memset(slots, 0, n * sizeof(*slots));
    for (size_t i = 0; i < m->n_slots; i++) {
        if (m->slots[i].words_len == 0)
            continue;
        size_t j = m->slots[i].hash & (n - 1);
        while (slots[j].words_len != 0)
            j = (j + 1) & (n - 1);
        slots[j] = m->slots[i];
    }
    budget_free(b, m->slots, m->n_slots * sizeof(*m->slots));
    m->slots = slots;
    m->n_slots = n;
    return 0;
}

/* Whether (words, state) was recorded. */
static bool memo_contains(const struct memo *m, const uint32_t *words, uint32_t len, const struct kv_state *s)
{
    uint64_t hash = memo_hash(words, len, s);
    size_t mask = m->n_slots - 1;
    for (size_t i = hash & mask; m->slots[i].words_len != 0; i = (i + 1) & mask) {
        const struct memo_slot *slot = &m->slots[i];
        if (slot->hash == hash && slot->words_len == len && state_equal(&slot->state, s) &&
            memcmp(m->words + slot->words_start, words, len * sizeof(*words)) == 0)
            return true;
    }
    return false;
}

/* Records (words, state). Returns 1 if new, 0 if explored before, -1 when the budget refused memory. */
static int memo_insert(struct memo *m, struct budget *b, const uint32_t *words, uint32_t len, const struct kv_state *s)
{
    if ((m->used + 1) * MEMO_LOAD_DEN > m->n_slots * MEMO_LOAD_NUM && memo_grow(m, b) != 0)
        return -1;
    if (memo_contains(m, words, len, s))
        return 0;
    uint64_t hash = memo_hash(words, len, s);
    size_t mask = m->n_slots - 1, i = hash & mask;
    while (m->slots[i].words_len != 0)
        i = (i + 1) & mask;
    if (budget_reserve(b, (void **)&m->words, &m->words_cap, m->words_len + len, sizeof(*m->words)) != 0)
        return -1;
    memcpy(m->words + m->words_len, words, len * sizeof(*words));
    m->slots[i] = (struct memo_slot){.hash = hash, .words_start = m->words_len, .state = *s, .words_len = len};
    m->words_len += len;
    m->used++;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Sets of placed ops of unknown outcome, hash-consed                   */
/* ------------------------------------------------------------------ */

/*
 * An op of unknown outcome, once placed, stays in the placed set for the
 * rest of the order, so these sets grow with the history (a thousand
 * timeouts that took effect make every later set a thousand long): too big
 * to store whole in each memo entry. A set is instead a list sorted largest
 * first whose cells are interned, so that equal sets are one id, and the memo
 * stores the id. Adding the op numbered above all the set's (the usual case:
 * ops are placed roughly in invoke order) takes one cell; adding one below
 * takes a cell for each member above it.
 */
struct pset_cell {
    uint32_t top;  /* the set's largest member */
    uint32_t rest; /* the id of the set of the others */
};

struct pset {
    struct pset_cell *cells; /* cells[id]; id 0 is the empty set */
    size_t n_cells, cells_cap;
    uint32_t *slots; /* open addressing on (top, rest): a cell id, or 0 when empty */
    size_t n_slots;
    uint32_t *above; /* scratch: the members above an op being added */
    size_t above_cap;
};

static size_t pset_slot(const struct pset *p, uint32_t top, uint32_t rest)
{
    return hash_finish((uint64_t)top << 32 | rest) & (p->n_slots - 1);
}

/* Empties p: only the empty set (id 0) is left. 0 or -1. */
static int pset_reset(struct pset *p, struct budget *b)
{
    budget_free(b, p->slots, p->n_slots * sizeof(*p->slots));
    p->slots = NULL;
    p->n_slots = 0;
    p->n_cells = 1;
    return budget_reserve(b, (void **)&p->cells, &p->cells_cap, 1, sizeof(*p->cells));
}

static int pset_grow(struct pset *p, struct budget *b)
{
    size_t n = p->n_slots == 0 ? 64 : p->n_slots * 2;
    uint32_t *slots = budget_realloc(b, NULL, 0, n * sizeof(*slots));
    if (slots == NULL)
        return -1;
    memset(slots, 0, n * sizeof(*slots));
    budget_free(b, p->slots, p->n_slots * sizeof(*p->slots));
    p->slots = slots;
    p->n_slots = n;
    for (uint32_t id = 1; id < p->n_cells; id++) {
        size_t i = pset_slot(p, p->cells[id].top, p->cells[id].rest);
        while (p->slots[i] != 0)
            i = (i + 1) & (n - 1);
        p->slots[i] = id;
    }
    return 0;
}

/* Finds the id of {top} ∪ set rest without making it; false if it was never made. */
static bool pset_find(const struct pset *p, uint32_t top, uint32_t rest, uint32_t *id)
{
    if (p->n_slots == 0)
        return false;
    for (size_t i = pset_slot(p, top, rest); p->slots[i] != 0; i = (i + 1) & (p->n_slots - 1)) {
        const struct pset_cell *cell = &p->cells[p->slots[i]];
        if (cell->top == top && cell->rest == rest) {
            *id = p->slots[i];
            return true;
        }
    }
    return false;
}

/* The id of {top} ∪ set rest, where top is above rest's members, into *id; 0 or -1. */
static int pset_cons(struct pset *p, struct budget *b, uint32_t top, uint32_t rest, uint32_t *id)
{
    if ((p->n_cells + 1) * MEMO_LOAD_DEN > p->n_slots * MEMO_LOAD_NUM && pset_grow(p, b) != 0)
        return -1;
    size_t i = pset_slot(p, top, rest);
    for (; p->slots[i] != 0; i = (i + 1) & (p->n_slots - 1)) {
        const struct pset_cell *cell = &p->cells[p->slots[i]];
        if (cell->top == top && cell->rest == rest) {
            *id = p->slots[i];
            return 0;
        }
    }
    if (p->n_cells == UINT32_MAX ||
        budget_reserve(b, (void **)&p->cells, &p->cells_cap, p->n_cells + 1, sizeof(*p->cells)) != 0)
        return -1;
    p->cells[p->n_cells] = (struct pset_cell){.top = top, .rest = rest};
    *id = p->slots[i] = (uint32_t)p->n_cells++;
    return 0;
}

/* The id of set without x into *out, if x is in set and that set was ever made (else no memo entry holds it). */
static bool pset_find_without(struct pset *p, uint32_t set, uint32_t x, uint32_t *out)
{
    uint32_t n_above = 0;
    for (; set != 0 && p->cells[set].top > x; set = p->cells[set].rest)
        p->above[n_above++] = p->cells[set].top;
    if (set == 0 || p->cells[set].top != x)
        return false;
    set = p->cells[set].rest;
    while (n_above > 0)
        if (!pset_find(p, p->above[--n_above], set, &set))
            return false;
    *out = set;
    return true;
}

/* The id of set ∪ {x}, x not in set, into *out; 0 or -1. */
static int pset_add(struct pset *p, struct budget *b, uint32_t set, uint32_t x, uint32_t *out)
{
    uint32_t n_above = 0;
    for (; set != 0 && p->cells[set].top > x; set = p->cells[set].rest)
        p->above[n_above++] = p->cells[set].top;
    int rc = pset_cons(p, b, x, set, &set);
    while (rc == 0 && n_above > 0)
        rc = pset_cons(p, b, p->above[--n_above], set, &set);
    *out = set;
    return rc;
}

/* ------------------------------------------------------------------ */
/* One key's search                                                     */
/* ------------------------------------------------------------------ */

struct key_op {
    const struct lin_op *op;
    uint32_t dense; /* its number among the key's completed ops, or among its ops of unknown outcome */
    bool pending;   /* its answer never came */
    bool deferred;  /* pending, and tried after the others: see prepare_key() */
};

/*
 * Entry e of the lists: op e / 2's call when e is even, its return when odd.
 * The calls and returns of completed ops, and the calls of pending ops not
 * deferred, are one list in time order from the head at entry 2n; the calls
 * of deferred ops are another, in invoke order, from entry 2n + 1.
 */
struct link {
    uint32_t prev, next;
};

/* A placement, to undo it. */
struct frame {
    struct kv_state before;
    uint32_t op;
    uint32_t old_frontier;
    uint32_t old_pending_set;
    int alt;   /* which of model_successors()'s states was taken */
    bool read; /* placed by place_read(): its failure is its node's */
};

struct timed_entry {
    int64_t time;
    uint32_t entry;
};

/*
 * What lin_check() holds. The per-key arrays are sized for the largest key
 * so far and reused from key to key; the memo's slots are made per key.
 */
struct checker {
    const struct lin_history *h;
    struct lin_limits limits;
    struct budget budget;
    FILE *report;
    enum lin_limit limit; /* set when a key's search stopped on a limit */
    struct model model;
    uint64_t states; /* over all keys */
    uint64_t key_states;

    /* The key under search. */
    struct key_op *ops;
    uint32_t n, n_completed, n_pending;
    size_t ops_cap;
    struct link *links;
    size_t links_cap;
    struct timed_entry *timed;
    size_t timed_cap;
    uint64_t *placed; /* bit per completed op */
    size_t placed_cap;
    uint32_t lowest_open;    /* the lowest completed op not placed */
    uint32_t frontier;       /* one past the highest completed op placed */
    uint32_t completed_left; /* completed ops not placed */
    uint32_t pending_set;    /* the ops of unknown outcome placed: an id in psets */
    struct pset psets;
    struct kv_state state; /* after the placed ops */
    struct frame *stack;
    uint32_t depth;
    size_t stack_cap;
    uint32_t *encoding; /* the placed set's canonical form, built for the memo */
    size_t encoding_cap;
    uint64_t *reported; /* the model's */
    size_t reported_cap;
    struct memo memo;

    /* The deepest point reached: best[0..best_len) is its order; stack[0..best_valid) still equals it. */
    uint32_t *best;
    size_t best_cap;
    uint32_t best_len, best_valid, best_completed;
    struct kv_state best_state;
    uint64_t *in_best; /* the report's: bit per op */
    size_t in_best_cap;
};

static bool bit_get(const uint64_t *bits, uint32_t i)
{
    return bits[i / 64] >> (i % 64) & 1;
}

static void bit_set(uint64_t *bits, uint32_t i)
{
    bits[i / 64] |= (uint64_t)1 << (i % 64);
}

static void bit_clear(uint64_t *bits, uint32_t i)
{
    bits[i / 64] &= ~((uint64_t)1 << (i % 64));
}

static void list_unlink(struct link *links, uint32_t e)
{
    links[links[e].prev].next = links[e].next;
    if (links[e].next != NIL)
        links[links[e].next].prev = links[e].prev;
}

/* Puts e back where it was; undoes list_unlink() when undone in reverse order. */
static void list_relink(struct link *links, uint32_t e)
{
    links[links[e].prev].next = e;
    if (links[e].next != NIL)
        links[links[e].next].prev = e;
}

/* Adds op i to the placed set and lifts its entries out of the list; 0, or -1 when out of memory. */
static int mark_placed(struct checker *c, uint32_t i)
{
    const struct key_op *k = &c->ops[i];
    if (k->pending) {
        if (pset_add(&c->psets, &c->budget, c->pending_set, k->dense, &c->pending_set) != 0)
            return -1;
        list_unlink(c->links, 2 * i);
        return 0;
    }
    list_unlink(c->links, 2 * i);
    list_unlink(c->links, 2 * i + 1);
    bit_set(c->placed, k->dense);
    c->completed_left--;
    if (k->dense >= c->frontier)
        c->frontier = k->dense + 1;
    while (c->lowest_open < c->n_completed && bit_get(c->placed, c->lowest_open))
        c->lowest_open++;
    return 0;
}

/* Undoes mark_placed() of f's op. */
static void mark_unplaced(struct checker *c, const struct frame *f)
{
    const struct key_op *k = &c->ops[f->op];
    if (k->pending) {
        c->pending_set = f->old_pending_set;
    } else {
        list_relink(c->links, 2 * f->op + 1);
        bit_clear(c->placed, k->dense);
        c->completed_left++;
        c->frontier = f->old_frontier;
        if (k->dense < c->lowest_open)
            c->lowest_open = k->dense;
    }
    list_relink(c->links, 2 * f->op);
}

/* Appends to w[n..] the indices of the 0 bits (when invert) or 1 bits of bits[from..to); returns the new n. */
static uint32_t append_bits(uint32_t *w, uint32_t n, const uint64_t *bits, uint32_t from, uint32_t to, bool invert)
{
    for (uint32_t i = from; i < to;) {
        uint64_t word = (invert ? ~bits[i / 64] : bits[i / 64]) >> (i % 64);
        if (word == 0) {
            i = (i / 64 + 1) * 64;
            continue;
        }
        i += (uint32_t)__builtin_ctzll(word);
        if (i < to)
            w[n++] = i;
        i++;
    }
    return n;
}

/* The placed set's canonical form into c->encoding: frontier, hole count, holes, the placed ops of unknown outcome. */
static uint32_t encode_placed(struct checker *c)
{
    uint32_t *w = c->encoding;
    w[0] = c->frontier;
    uint32_t n = append_bits(w, 2, c->placed, c->lowest_open, c->frontier, true);
    w[1] = n - 2;
    w[n++] = c->pending_set;
    return n;
}

/* Called after each placement: keeps the deepest order, copying only what differs from the last one kept. */
static void note_progress(struct checker *c)
{
    uint32_t completed = c->n_completed - c->completed_left;
    if (completed <= c->best_completed)
        return;
    for (uint32_t d = c->best_valid; d < c->depth; d++)
        c->best[d] = c->stack[d].op;
    c->best_len = c->best_valid = c->depth;
    c->best_completed = completed;
    c->best_state = c->state;
}

/*
 * Whether op i, placed after a run of pending ops and leaving state s,
 * would leave s just as well from the state before the run, or before any
 * later part of it: a write of unknown outcome overwritten before anything
 * saw it, say. Then the order without that part of the run is as good (a
 * pending op may be left out), and the node before the part tries it too:
 * op i was a candidate there, as pending ops hold no return back. Without
 * this, the search would carry each such placement forward as a different
 * placed set, and a failing history with many timeouts would explore every
 * combination of them.
 */
static bool hides_pending(const struct checker *c, uint32_t i, const struct kv_state *s)
{
    struct kv_state instead[2];
    for (uint32_t d = c->depth; d > 0 && c->ops[c->stack[d - 1].op].pending; d--) {
        int n = model_successors(&c->model, c->ops[i].op, &c->stack[d - 1].before, instead);
        for (int k = 0; k < n; k++)
            if (state_equal(&instead[k], s))
                return true;
    }
    return false;
}

/*
 * Whether the state about to be entered (c->encoding[0..len), s) is
 * dominated by one that failed: the same completed ops placed and the same
 * model state, with one pending op fewer placed (whatever order follows the
 * bigger set follows the smaller, which may leave that op out or place it
 * later). Looked for with op i, the one being placed, and with the pending
 * ops of the last DOMINANCE_LOOKBACK placements, which catches a deferred
 * op placed and then overwritten once leaving it out was tried (deferred
 * ops come last). No state on the current path can match: there, a set one
 * pending op smaller with the same completed ops is the state just before
 * that op, which changed it.
 */
static bool dominated(struct checker *c, uint32_t len, const struct kv_state *s, uint32_t i)
{
    bool found = false;
    for (uint32_t d = c->depth + 1; c->pending_set != 0 && d > 0 && c->depth + 1 - d < DOMINANCE_LOOKBACK && !found;
         d--) {
        uint32_t op = d == c->depth + 1 ? i : c->stack[d - 1].op;
        uint32_t without;
        if (!c->ops[op].pending || !pset_find_without(&c->psets, c->pending_set, c->ops[op].dense, &without))
            continue;
        c->encoding[len - 1] = without;
        found = memo_contains(&c->memo, c->encoding, len, s);
    }
    c->encoding[len - 1] = c->pending_set;
    return found;
}

/* Places op i next, leaving state s. Returns 1; 0 when (placed set, s) was explored before; -1 on a limit. */
static int try_place(struct checker *c, uint32_t i, int alt, const struct kv_state *s, bool read)
{
    struct frame f = {.before = c->state,
                      .op = i,
                      .old_frontier = c->frontier,
                      .old_pending_set = c->pending_set,
                      .alt = alt,
                      .read = read};
    if (c->key_states >= c->limits.max_states) {
        c->limit = LIN_LIMIT_STATES;
        return -1;
    }
    if (hides_pending(c, i, s))
        return 0;
    if (mark_placed(c, i) != 0) {
        c->limit = LIN_LIMIT_MEMORY;
        return -1;
    }
    uint32_t len = encode_placed(c);
    int rc = dominated(c, len, s, i) ? 0 : memo_insert(&c->memo, &c->budget, c->encoding, len, s);
    if (rc != 1) {
        mark_unplaced(c, &f);
        if (rc < 0)
            c->limit = LIN_LIMIT_MEMORY;
        return rc;
    }
    c->key_states++;
    c->stack[c->depth++] = f;
    c->state = *s;
    note_progress(c);
    return 1;
}

/* Undoes the last placement; returns its frame. */
static struct frame undo_last(struct checker *c)
{
    struct frame f = c->stack[--c->depth];
    mark_unplaced(c, &f);
    c->state = f.before;
    if (c->depth < c->best_valid)
        c->best_valid = c->depth;
    return f;
}

enum read_outcome {
    READ_NONE,     /* no candidate is a legal read */
    READ_PLACED,   /* one is placed */
    READ_EXPLORED, /* one was, from this same node, before: the node fails */
    READ_LIMIT,
};

/*
 * Places a read first: the first candidate (a completed op called before
 * the earliest return still in the list) that is legal now, never changes a
 * state (a get, a failed cas, create or delif, a delete miss, a notint) and
 * leaves this one as it is. (Not a write that happens to leave it as it is:
 * a set of the same value with no version reported, placed later, would
 * make a known version unknown, which a later read may need.) Nothing else need be tried from this node: if any order
 * from here succeeds, the same order with the read moved to the front does (the read is legal here, nothing it must
 * follow is unplaced, and taking it out later leaves every state equal, or with its version unknown, which allows
 * more). So when the read's subtree fails, its node fails. Without this,
 * each write placed ahead of a concurrent read of the old value is undone
 * only after everything placed after it: most of the search's work.
 */
/* Whether op, with its result, leaves every state as it finds it. */
static bool never_writes(const struct lin_op *op)
{
    return op->kind == LIN_GET || op->result == LIN_RESULT_FAIL || op->result == LIN_RESULT_MISS ||
           op->result == LIN_RESULT_NOTINT;
}

static enum read_outcome place_read(struct checker *c)
{
    struct kv_state after;
    for (uint32_t e = c->links[2 * c->n].next; e != NIL && e % 2 == 0; e = c->links[e].next) {
        const struct key_op *k = &c->ops[e / 2];
        if (k->pending || !never_writes(k->op) || !model_step(&c->model, k->op, &c->state, &after) ||
            !state_equal(&after, &c->state))
            continue;
        int rc = try_place(c, e / 2, 0, &after, true);
        return rc == 1 ? READ_PLACED : rc == 0 ? READ_EXPLORED : READ_LIMIT;
    }
    return READ_NONE;
}

/* Entry p, a deferred call, if its op was invoked by time limit; else NIL. */
static uint32_t deferred_by(const struct checker *c, uint32_t p, int64_t limit)
{
    return p != NIL && c->ops[p / 2].op->invoke <= limit ? p : NIL;
}

/*
 * The candidate after entry e, or NIL when none is left: the ops that may
 * come next are those called before the first return in the list (any
 * other must follow that return's op), the deferred ones last.
 */
static uint32_t next_candidate(const struct checker *c, uint32_t e)
{
    const struct link *links = c->links;
    if (!c->ops[e / 2].deferred) {
        uint32_t next = links[e].next;
        return next % 2 == 0 ? next : deferred_by(c, links[2 * c->n + 1].next, c->ops[next / 2].op->complete);
    }
    uint32_t r = links[2 * c->n].next;
    while (r % 2 == 0)
        r = links[r].next;
    return deferred_by(c, links[e].next, c->ops[r / 2].op->complete);
}

static uint32_t first_candidate(const struct checker *c)
{
    uint32_t e = c->links[2 * c->n].next;
    return e % 2 == 0 ? e : deferred_by(c, c->links[2 * c->n + 1].next, c->ops[e / 2].op->complete);
}

/*
 * The search itself, once the key's lists are built: a verdict. While a
 * completed op is not placed its return is in the list, after its call and
 * after every candidate, so the list never ends before a return.
 */
static int search(struct checker *c)
{
    struct kv_state next[2];
    while (c->completed_left > 0) {
        /* A new node: a read if there is one, else its candidates in turn. */
        enum read_outcome read = place_read(c);
        if (read == READ_LIMIT)
            return LIN_UNDECIDED;
        if (read == READ_PLACED)
            continue;
        bool failing = read == READ_EXPLORED;
        for (uint32_t e = first_candidate(c);;) {
            uint32_t i = e / 2;
            int alt = 0;
            if (failing || e == NIL) {
                /* No candidate is left: undo the last placement and go on with the candidate after it. */
                if (c->depth == 0)
                    return LIN_NOT_LINEARIZABLE;
                struct frame f = undo_last(c);
                failing = f.read;
                if (failing)
                    continue;
                i = f.op;
                alt = f.alt + 1;
                e = 2 * i;
            }
            int n = model_successors(&c->model, c->ops[i].op, &c->state, next);
            int rc = 0;
            for (; alt < n && rc == 0; alt++)
                rc = try_place(c, i, alt, &next[alt], false);
            if (rc < 0)
                return LIN_UNDECIDED;
            if (rc == 1)
                break;
            e = next_candidate(c, e);
        }
    }
    return LIN_LINEARIZABLE;
}

static int by_invoke(const void *a, const void *b)
{
    const struct lin_op *x = ((const struct key_op *)a)->op, *y = ((const struct key_op *)b)->op;
    if (x->invoke != y->invoke)
        return x->invoke < y->invoke ? -1 : 1;
    if (x->complete != y->complete)
        return x->complete < y->complete ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* Calls before returns at equal times: operations that touch count as concurrent. */
static int by_time(const void *a, const void *b)
{
    const struct timed_entry *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    if (x->entry % 2 != y->entry % 2)
        return x->entry % 2 == 0 ? -1 : 1;
    return x->entry < y->entry ? -1 : x->entry > y->entry;
}

/* Sizes every per-key array for n ops; 0 or -1. */
static int reserve_key(struct checker *c, uint32_t n)
{
    struct budget *b = &c->budget;
    size_t words = (size_t)n / 64 + 1;
    if (budget_reserve(b, (void **)&c->ops, &c->ops_cap, n, sizeof(*c->ops)) != 0 ||
        budget_reserve(b, (void **)&c->links, &c->links_cap, 2 * (size_t)n + 2, sizeof(*c->links)) != 0 ||
        budget_reserve(b, (void **)&c->timed, &c->timed_cap, 2 * (size_t)n, sizeof(*c->timed)) != 0 ||
        budget_reserve(b, (void **)&c->placed, &c->placed_cap, words, sizeof(*c->placed)) != 0 ||
        budget_reserve(b, (void **)&c->in_best, &c->in_best_cap, words, sizeof(*c->in_best)) != 0 ||
        budget_reserve(b, (void **)&c->psets.above, &c->psets.above_cap, n, sizeof(*c->psets.above)) != 0 ||
        budget_reserve(b, (void **)&c->stack, &c->stack_cap, n, sizeof(*c->stack)) != 0 ||
        budget_reserve(b, (void **)&c->encoding, &c->encoding_cap, (size_t)n + 3, sizeof(*c->encoding)) != 0 ||
        budget_reserve(b, (void **)&c->best, &c->best_cap, n, sizeof(*c->best)) != 0 ||
        budget_reserve(b, (void **)&c->reported, &c->reported_cap, n, sizeof(*c->reported)) != 0)
        return -1;
    memset(c->placed, 0, words * sizeof(*c->placed));
    memset(c->in_best, 0, words * sizeof(*c->in_best));
    return 0;
}

static int by_id(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Whether op writes a value that no completed op returned (seen[0..n_seen), sorted). */
static bool unseen_write(const struct lin_op *op, const uint32_t *seen, uint32_t n_seen)
{
    if (op->kind != LIN_SET && op->kind != LIN_CAS && op->kind != LIN_CREATE)
        return false;
    return bsearch(&op->value, seen, n_seen, sizeof(*seen), by_id) == NULL;
}

/*
 * Readies the search of one key's ops (ids[0..n) into h->ops): sorts them by
 * invoke, numbers them, and links the entry list in time order. Gets whose
 * answer never came are left out: they can change nothing. 0 or -1.
 */
static int prepare_key(struct checker *c, const uint32_t *ids, uint32_t n)
{
    if (reserve_key(c, n) != 0)
        return -1;
    uint32_t kept = 0;
    for (uint32_t j = 0; j < n; j++) {
        const struct lin_op *op = &c->h->ops[ids[j]];
        if (!(op->kind == LIN_GET && op->result == LIN_RESULT_UNKNOWN))
            c->ops[kept++].op = op;
    }
    c->n = kept;
    qsort(c->ops, kept, sizeof(*c->ops), by_invoke);

    /* The values completed ops returned, sorted, in the encoding's buffer (free until the search). */
    uint32_t n_seen = 0, *seen = c->encoding;
    for (uint32_t i = 0; i < kept; i++) {
        const struct lin_op *op = c->ops[i].op;
        if (op->result == LIN_RESULT_HIT || (op->kind == LIN_INCR && op->result == LIN_RESULT_OK))
            seen[n_seen++] = op->result_value;
    }
    qsort(seen, n_seen, sizeof(*seen), by_id);

    uint32_t n_reported = 0;
    for (uint32_t i = 0; i < kept; i++) {
        const struct lin_op *op = c->ops[i].op;
        if (op->result == LIN_RESULT_OK && op->result_version_known)
            c->reported[n_reported++] = op->result_version;
    }
    qsort(c->reported, n_reported, sizeof(*c->reported), by_version);
    c->model = (struct model){.h = c->h, .reported = c->reported, .n_reported = n_reported};

    uint32_t n_entries = 0;
    c->n_completed = c->n_pending = 0;
    for (uint32_t i = 0; i < kept; i++) {
        struct key_op *k = &c->ops[i];
        k->pending = k->op->complete == LIN_NEVER;
        k->deferred = k->pending && unseen_write(k->op, seen, n_seen);
        k->dense = k->pending ? c->n_pending++ : c->n_completed++;
        if (!k->deferred)
            c->timed[n_entries++] = (struct timed_entry){.time = k->op->invoke, .entry = 2 * i};
        if (!k->pending)
            c->timed[n_entries++] = (struct timed_entry){.time = k->op->complete, .entry = 2 * i + 1};
    }
    qsort(c->timed, n_entries, sizeof(*c->timed), by_time);
    uint32_t prev = 2 * kept;
    for (uint32_t j = 0; j < n_entries; j++) {
        c->links[prev].next = c->timed[j].entry;
        c->links[c->timed[j].entry].prev = prev;
        prev = c->timed[j].entry;
    }
    c->links[prev].next = NIL;
    prev = 2 * kept + 1;
    for (uint32_t i = 0; i < kept; i++) {
        if (c->ops[i].deferred) {
            c->links[prev].next = 2 * i;
            c->links[2 * i].prev = prev;
            prev = 2 * i;
        }
    }
    c->links[prev].next = NIL;

    c->lowest_open = c->frontier = 0;
    c->completed_left = c->n_completed;
    c->pending_set = 0;
    c->state = (struct kv_state){0};
    c->depth = 0;
    c->best_len = c->best_valid = c->best_completed = 0;
    c->best_state = c->state;
    c->key_states = 0;
    size_t slots = MEMO_FIRST_SLOTS;
    while (slots < 2 * (size_t)kept)
        slots *= 2;
    return pset_reset(&c->psets, &c->budget) == 0 ? memo_reset(&c->memo, &c->budget, slots) : -1;
}

/* ------------------------------------------------------------------ */
/* Reports                                                              */
/* ------------------------------------------------------------------ */

static void print_op(struct checker *c, uint32_t i)
{
    const struct lin_op *op = c->ops[i].op;
    fprintf(c->report, "line %u: ", op->line);
    lin_op_print(c->report, c->h, op);
    fputc('\n', c->report);
}

static void print_state(struct checker *c, const struct kv_state *s)
{
    if (!s->present) {
        fputs("absent", c->report);
        return;
    }
    if (s->value_is_int)
        fprintf(c->report, "present, value %" PRId64, s->value);
    else
        fprintf(c->report, "present, value %s", lin_history_value(c->h, (uint32_t)s->value));
    if (s->version_known)
        fprintf(c->report, ", version %016" PRIx64, s->version);
    else
        fputs(", version unknown", c->report);
}

static bool is_in_best(const struct checker *c, uint32_t i)
{
    return bit_get(c->in_best, i);
}

/*
 * The failing window of a key: the end of the deepest order found, the state
 * after it, and the ops that could not come next (those invoked by the
 * earliest return still pending).
 */
static void report_failure(struct checker *c, const char *key)
{
    for (uint32_t d = 0; d < c->best_len; d++)
        bit_set(c->in_best, c->best[d]);
    int64_t earliest_return = LIN_NEVER, window_start = LIN_NEVER;
    for (uint32_t i = 0; i < c->n; i++)
        if (!c->ops[i].pending && !is_in_best(c, i) && c->ops[i].op->complete < earliest_return)
            earliest_return = c->ops[i].op->complete;
    for (uint32_t i = 0; i < c->n && c->ops[i].op->invoke <= earliest_return; i++)
        if (!is_in_best(c, i) && c->ops[i].op->invoke < window_start)
            window_start = c->ops[i].op->invoke;

    fprintf(c->report, "key %s: NOT linearizable\n", key);
    fprintf(c->report, "  the longest legal order found places %" PRIu32 " of its %" PRIu32 " completed ops",
            c->best_completed, c->n_completed);
    if (c->n_pending > 0)
        fprintf(c->report, " (and %" PRIu32 " ops of unknown outcome, which may be left out)", c->n_pending);
    fprintf(c->report, "%s\n", c->best_len > 0 ? "; it ends:" : ".");
    uint32_t shown_to = 0;
    for (uint32_t d = 0; d < c->best_len; d++) {
        const struct lin_op *op = c->ops[c->best[d]].op;
        if (d + REPORT_TAIL < c->best_len && op->complete < window_start)
            continue;
        if (d > shown_to)
            fprintf(c->report, "    ... (%" PRIu32 " ops)\n", d - shown_to);
        fprintf(c->report, "    %" PRIu32 ". ", d + 1);
        print_op(c, c->best[d]);
        shown_to = d + 1;
    }
    fputs("  state after it: ", c->report);
    print_state(c, &c->best_state);
    fputc('\n', c->report);
    if (c->h->allow_loss)
        fputs("  (allow-loss: the key may also have been dropped before any op)\n", c->report);
    fprintf(c->report, "  none of these can come next (invoked by %" PRId64 ", the earliest return not yet placed):\n",
            earliest_return);
    for (uint32_t i = 0; i < c->n && c->ops[i].op->invoke <= earliest_return; i++) {
        if (is_in_best(c, i))
            continue;
        fputs("    ", c->report);
        print_op(c, i);
    }
}

static void report_limit(struct checker *c, const char *key)
{
    fprintf(c->report, "key %s: UNDECIDED: ", key);
    if (c->limit == LIN_LIMIT_STATES)
        fprintf(c->report, "more than %" PRIu64 " states explored (the limit)\n", c->limits.max_states);
    else
        fprintf(c->report, "out of memory (limit %zu bytes, %zu held)\n", c->limits.max_bytes, c->budget.used);
}

/* ------------------------------------------------------------------ */
/* The whole history                                                    */
/* ------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One key: its ops are ids[0..n). A verdict; reports it when not linearizable or undecided. */
static int check_key(struct checker *c, uint32_t key, const uint32_t *ids, uint32_t n)
{
    c->limit = LIN_LIMIT_NONE;
    int verdict = LIN_UNDECIDED;
    if (prepare_key(c, ids, n) != 0)
        c->limit = LIN_LIMIT_MEMORY;
    else
        verdict = search(c);
    c->states += c->key_states;
    if (c->report == NULL)
        return verdict;
    if (verdict == LIN_NOT_LINEARIZABLE)
        report_failure(c, lin_history_key(c->h, key));
    else if (verdict == LIN_UNDECIDED)
        report_limit(c, lin_history_key(c->h, key));
    return verdict;
}

static void checker_free(struct checker *c)
{
    struct budget *b = &c->budget;
    budget_free(b, c->ops, c->ops_cap * sizeof(*c->ops));
    budget_free(b, c->links, c->links_cap * sizeof(*c->links));
    budget_free(b, c->timed, c->timed_cap * sizeof(*c->timed));
    budget_free(b, c->placed, c->placed_cap * sizeof(*c->placed));
    budget_free(b, c->in_best, c->in_best_cap * sizeof(*c->in_best));
    budget_free(b, c->psets.cells, c->psets.cells_cap * sizeof(*c->psets.cells));
    budget_free(b, c->psets.slots, c->psets.n_slots * sizeof(*c->psets.slots));
    budget_free(b, c->psets.above, c->psets.above_cap * sizeof(*c->psets.above));
    budget_free(b, c->stack, c->stack_cap * sizeof(*c->stack));
    budget_free(b, c->encoding, c->encoding_cap * sizeof(*c->encoding));
    budget_free(b, c->best, c->best_cap * sizeof(*c->best));
    budget_free(b, c->reported, c->reported_cap * sizeof(*c->reported));
    budget_free(b, c->memo.slots, c->memo.n_slots * sizeof(*c->memo.slots));
    budget_free(b, c->memo.words, c->memo.words_cap * sizeof(*c->memo.words));
}

int lin_check(const struct lin_history *h, const struct lin_limits *limits, FILE *report, struct lin_stats *stats)
{
    uint64_t started = now_ns();
    struct checker c = {.h = h, .report = report};
    if (limits != NULL)
        c.limits = *limits;
    if (c.limits.max_states == 0)
        c.limits.max_states = LIN_DEFAULT_MAX_STATES;
    if (c.limits.max_bytes == 0)
        c.limits.max_bytes = LIN_DEFAULT_MAX_BYTES;
    c.budget.max = c.limits.max_bytes;

    /* The ops grouped by key (a counting sort): key k's are by_key[first[k]..first[k + 1]). */
    uint32_t n_keys = h->keys.count;
    struct lin_stats st = {.ops = h->n_ops, .keys = n_keys};
    int verdict = LIN_LINEARIZABLE;
    uint32_t *first = budget_realloc(&c.budget, NULL, 0, ((size_t)n_keys + 1) * sizeof(*first));
    uint32_t *by_key = budget_realloc(&c.budget, NULL, 0, h->n_ops * sizeof(*by_key) + 1);
    if (first == NULL || by_key == NULL) {
        verdict = LIN_UNDECIDED;
        st.limit = LIN_LIMIT_MEMORY;
        if (report != NULL)
            fprintf(report, "UNDECIDED: out of memory grouping %zu ops by key\n", h->n_ops);
    } else {
        memset(first, 0, ((size_t)n_keys + 1) * sizeof(*first));
        for (size_t j = 0; j < h->n_ops; j++)
            first[h->ops[j].key + 1]++;
        for (uint32_t k = 0; k < n_keys; k++)
            first[k + 1] += first[k];
        for (size_t j = 0; j < h->n_ops; j++)
            by_key[first[h->ops[j].key]++] = (uint32_t)j;
        for (uint32_t k = n_keys; k > 0; k--) /* the fill moved each start to the next key's */
            first[k] = first[k - 1];
        first[0] = 0;

        for (uint32_t k = 0; k < n_keys; k++) {
            int v = check_key(&c, k, by_key + first[k], first[k + 1] - first[k]);
            if (v == LIN_NOT_LINEARIZABLE) {
                st.keys_failed++;
                verdict = LIN_NOT_LINEARIZABLE;
            } else if (v == LIN_UNDECIDED && verdict == LIN_LINEARIZABLE) {
                verdict = LIN_UNDECIDED;
                st.limit = c.limit;
            }
        }
    }
    if (first != NULL)
        budget_free(&c.budget, first, ((size_t)n_keys + 1) * sizeof(*first));
    if (by_key != NULL)
        budget_free(&c.budget, by_key, h->n_ops * sizeof(*by_key) + 1);
    checker_free(&c);
    st.states = c.states;
    st.peak_bytes = c.budget.peak;
    st.elapsed_ns = now_ns() - started;
    if (stats != NULL)
        *stats = st;
    return verdict;
}
