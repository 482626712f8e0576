/*
 * Fuzz target: the store (include/cachette/store.h, src/store/) driven by a
 * byte stream of operations against a model.
 *
 * The input is a little program: a configuration byte (eviction policy,
 * 1 to 8 shards, max_memory from unbounded down to 4 KiB), a clock byte, then
 * operations: set (every kind, mode and TTL, values up to 16 KiB), get (with
 * a buffer, without one, with an allocator that fails), delete (with and
 * without a version), incr, scan (a whole scan, or one call from any
 * cursor), expire_step, flush, and clock ticks. Keys come from a fixed set of
 * 48 (short, long, binary, sharing prefixes) so operations meet each other.
 *
 * The model is exact between operations. It cannot know which entries an
 * eviction picks, so after each operation the target walks the store's own
 * tables (this file includes store/internal.h: a white-box check, single
 * threaded) and reconciles: an entry the model lacks, or one whose bytes,
 * kind, content type, expiry or version differ, is a bug; an entry that went
 * missing must be paid for by the evicted/expired counters and allowed by
 * the operation. The same walk checks the accounting: store.used equals the
 * bytes of every linked entry, bucket array and ghost, plus the thread's
 * credit (evict.c); each shard's count,
 * eviction queues and S3-FIFO byte totals match its table; and bytes_used
 * stays within max_memory. Results are checked against the model: get
 * returns exactly the bytes last stored unless evicted or expired, incr
 * follows int64 arithmetic and the store's integer rule, conditional
 * writes and deletes honour versions, versions only grow, and a scan sees
 * every live key with the prefix and nothing else. LeakSanitizer checks that
 * store_destroy frees everything.
 *
 * Links: src/store/
 */
#include <malloc.h>

#include "fuzz_check.h"
#include "store/internal.h"

#define NKEYS     48
#define KEY_MAX   400
#define VALUE_MAX (64 * 256)
#define MAX_OPS   2000

enum presence { ABSENT, PRESENT };

struct model {
    enum presence state;
    enum store_kind kind;
    uint8_t *value;
    size_t len;
    char ct[256];
    size_t ct_len;
    int64_t expires_at;    /* 0: never */
    uint64_t version;      /* of the entry in the store */
    uint64_t last_version; /* highest version this key ever had */
};

struct fuzz {
    struct store *store;
    struct store_config cfg;
    int64_t now;
    struct model keys[NKEYS];
    char key[NKEYS][KEY_MAX];
    size_t key_len[NKEYS];
    uint8_t value[VALUE_MAX];
    char buf[VALUE_MAX + 300]; /* what store_get copies into */
    struct entry *found[NKEYS];
};

static int64_t fake_clock(void *ctx)
{
    return *(const int64_t *)ctx;
}

static void make_keys(struct fuzz *f)
{
    for (int id = 0; id < NKEYS; id++) {
        char *k = f->key[id];
        size_t n;
        if (id < 32) {
            n = (size_t)snprintf(k, KEY_MAX, "k%d", id); /* k1 prefixes k1, k10..k19 */
        } else if (id < 40) {
            n = (size_t)(id - 31) * 37; /* 37 to 296 bytes */
            memset(k, 'x', n);
            k[n - 1] = (char)('0' + id - 32);
        } else {
            n = 3; /* binary keys, NUL included: the store takes any bytes */
            k[0] = '\0', k[1] = (char)0xff, k[2] = (char)id;
        }
        f->key_len[id] = n;
    }
}

static int expired(const struct model *m, int64_t now)
{
    return m->expires_at != 0 && m->expires_at <= now;
}

static int live(const struct model *m, int64_t now)
{
    return m->state == PRESENT && !expired(m, now);
}

static int id_of(const struct fuzz *f, const char *key, size_t len)
{
    for (int id = 0; id < NKEYS; id++)
        if (f->key_len[id] == len && memcmp(f->key[id], key, len) == 0)
            return id;
    return -1;
}

/* The store's integer rule (store.c, entry_integer): JSON text of an int64, as strtoll reads it whole. */
static int model_integer(const struct model *m, int64_t *out)
{
    if (m->kind != STORE_KIND_JSON || m->len == 0 || m->len > 20)
        return STORE_ENOTINT;
    const uint8_t *p = m->value, *end = p + m->len;
    int neg = *p == '-';
    p += neg;
    if (p == end)
        return STORE_ENOTINT;
    uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return STORE_ENOTINT;
        unsigned d = (unsigned)(*p - '0');
        if (mag > (limit - d) / 10)
            return STORE_ENOTINT;
        mag = mag * 10 + d;
    }
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

static void model_store(struct model *m, enum store_kind kind, const void *data, size_t len, const char *ct,
                        size_t ct_len, int64_t expires_at, uint64_t version)
{
    CHECK(version > m->last_version); /* a key's version changes on every write and never repeats */
    free(m->value);
    m->value = malloc(len ? len : 1);
    CHECK(m->value != NULL);
    if (len)
        memcpy(m->value, data, len);
    m->len = len;
    m->kind = kind;
    m->ct_len = kind == STORE_KIND_BYTES ? ct_len : 0;
    if (m->ct_len)
        memcpy(m->ct, ct, m->ct_len);
    m->expires_at = expires_at;
    m->version = m->last_version = version;
    m->state = PRESENT;
}

/* ---- the white-box walk ----------------------------------------------------- */

static size_t block_footprint(const void *p)
{
    return malloc_usable_size((void *)p) + sizeof(size_t); /* as table.c and s3fifo.c count */
}

/* Walks one eviction queue oldest to newest; returns its length and adds its bytes. */
static size_t walk_queue(struct fuzz *f, const struct queue *q, size_t limit, int in_main, size_t *bytes)
{
    size_t n = 0;
    const struct entry *prev = NULL;
    for (const struct entry *e = q->oldest; e != NULL; prev = e, e = entry_at(f->store, e->newer)) {
        CHECK(++n <= limit);
        CHECK(entry_at(f->store, e->older) == prev);
        int id = id_of(f, entry_key(e), e->key_len);
        CHECK(id >= 0 && f->found[id] == e); /* queued entries are the linked ones */
        if (in_main >= 0)
            CHECK(!!(atomic_load(&e->flags) & ENTRY_IN_MAIN) == in_main);
        *bytes += entry_footprint(f->store, e);
    }
    CHECK(q->newest == prev);
    return n;
}

/* Fills f->found from the tables and checks accounting, counts and queues. */
static void walk(struct fuzz *f)
{
    struct store *s = f->store;
    size_t used = 0;
    memset(f->found, 0, sizeof(f->found));
    for (size_t i = 0; i < s->nshards; i++) {
        struct shard *sh = &s->shards[i];
        struct table *t = shard_table(sh);
        size_t n = 0, entry_bytes = 0;
        used += block_footprint(t);
        if (sh->ghost != NULL) {
            CHECK(sh->ghost_mask + 1 <= (t->mask + 1));
            used += block_footprint(sh->ghost);
        }
        for (size_t b = 0; b <= t->mask; b++) {
            for (struct entry *e = link_load(s, &t->slots[b]); e != NULL; e = link_load(s, &e->chain)) {
                CHECK(++n <= NKEYS);
                int id = id_of(f, entry_key(e), e->key_len);
                CHECK(id >= 0 && f->found[id] == NULL); /* only our keys, each once */
                f->found[id] = e;
                uint64_t hash = store_hash(s, entry_key(e), e->key_len);
                CHECK(shard_for(s, hash) == sh && (hash & t->mask) == b);
                entry_bytes += entry_footprint(s, e);
            }
        }
        used += entry_bytes;
        CHECK(n == atomic_load(&sh->count));
        size_t queued_bytes = 0;
        if (s->eviction == STORE_EVICT_S3FIFO) {
            size_t small = 0, main = 0;
            size_t qn = walk_queue(f, &sh->small, n, 0, &small) + walk_queue(f, &sh->main, n, 1, &main);
            CHECK(qn == n);
            CHECK(small == sh->small_bytes && main == sh->main_bytes);
            queued_bytes = small + main;
        } else {
            CHECK(walk_queue(f, &sh->main, n, -1, &queued_bytes) == n);
            CHECK(sh->small.oldest == NULL);
            int hand_ok = sh->hand == NULL;
            for (const struct entry *e = sh->main.oldest; e != NULL && !hand_ok; e = entry_at(s, e->newer))
                hand_ok = e == sh->hand;
            CHECK(hand_ok);
        }
        CHECK(queued_bytes == entry_bytes);
    }
    struct ebr_totals totals;
    ebr_totals(s, &totals);
    CHECK(used + totals.credits == atomic_load(&s->used)); /* what no entry holds is this thread's credit */
    if (s->max_memory != 0)
        CHECK(used <= s->max_memory);
}

struct counters {
    uint64_t gone; /* evicted + expired */
};

static struct counters counters(struct store *s)
{
    struct store_stats st;
    store_stats(s, &st);
    return (struct counters){st.evicted + st.expired};
}

enum loss {
    LOSS_NONE,    /* the operation removes nothing it was not asked to */
    LOSS_EVICT,   /* a write may evict anything */
    LOSS_EXPIRED, /* expire_step: only expired entries */
};

/*
 * Reconciles the model with the walk after an operation. `paid` is how much
 * the evicted + expired counters grew beyond what the operation's own
 * replacement accounts for: the entries lost, plus one if own_extra says the
 * write's new entry may have been linked and then evicted (a write whose
 * table's growth did not fit even in an otherwise empty store).
 */
static size_t reconcile(struct fuzz *f, enum loss loss, uint64_t paid, uint64_t own_extra)
{
    size_t lost = 0, present = 0;
    walk(f);
    for (int id = 0; id < NKEYS; id++) {
        struct model *m = &f->keys[id];
        struct entry *e = f->found[id];
        if (e == NULL) {
            if (m->state == PRESENT) {
                lost++;
                CHECK(loss != LOSS_NONE);
                if (loss == LOSS_EXPIRED)
                    CHECK(expired(m, f->now));
                m->state = ABSENT;
            }
            continue;
        }
        present++;
        CHECK(m->state == PRESENT);
        CHECK(e->version == m->version);
        CHECK(e->kind == m->kind && e->value_len == m->len);
        CHECK(m->len == 0 || memcmp(entry_value(e), m->value, m->len) == 0);
        size_t ct_len;
        const char *ct = entry_content_type(e, &ct_len);
        CHECK(ct_len == m->ct_len && (ct_len == 0 || memcmp(ct, m->ct, ct_len) == 0));
        CHECK((ct != NULL) == (m->kind == STORE_KIND_BYTES));
        CHECK(entry_expires_at(e) == m->expires_at);
    }
    CHECK(store_count(f->store) == present);
    CHECK(paid >= lost && paid <= lost + own_extra);
    return lost;
}

/* ---- operations --------------------------------------------------------------- */

static const char *const content_types[] = {"", "text/plain", "application/octet-stream; charset=binary"};

static int may_evict(const struct fuzz *f)
{
    return f->cfg.max_memory != 0 && f->cfg.eviction != STORE_EVICT_NONE;
}

static uint64_t pick_version(const struct model *m, uint8_t sel)
{
    switch (sel % 4) {
    case 0:
        return 0;
    case 1:
        return m->version; /* the current one, if the key is there */
    case 2:
        return m->version ^ 1;
    default:
        return m->last_version + 1; /* one the key has not had yet */
    }
}

static int64_t pick_ttl(struct fuzz *f, uint8_t b)
{
    if (b == 255)
        return f->now > 0 ? INT64_MAX - f->now + 1 : INT64_MAX; /* one past the largest allowed: EINVAL */
    if (b == 254)
        return INT64_MAX - f->now; /* expires at INT64_MAX exactly */
    return ((int64_t)b + 1) * 10;
}

/* The outcome expected of a set if the key is (live_before) or is not there. */
static int expect_set(const struct model *m, int live_before, enum store_set_mode mode, uint64_t version)
{
    if (mode == STORE_SET_IF_ABSENT && live_before)
        return STORE_EEXISTS;
    if (mode == STORE_SET_IF_VERSION && (!live_before || m->version != version))
        return STORE_EVERSION;
    return 0;
}

static void op_set(struct fuzz *f, struct cursor *c)
{
    int id = cursor_u8(c) % NKEYS;
    uint8_t flags = cursor_u8(c), lenb = cursor_u8(c), seed = cursor_u8(c);
    struct model *m = &f->keys[id];
    struct store_value v = {.kind = (enum store_kind)(flags & 3), .data = f->value};
    if ((flags & 3) == 3) {
        /* JSON integer text, for incr to read. */
        int64_t n = (lenb & 0x80) ? (int64_t)cursor_u64(c) : (int8_t)seed;
        v.kind = STORE_KIND_JSON;
        v.len = (size_t)snprintf((char *)f->value, sizeof(f->value), "%lld", (long long)n);
    } else if (flags & 0x20) {
        const uint8_t *raw = cursor_bytes(c, lenb % 33, &v.len); /* any bytes, "007" and "-" included */
        memcpy(f->value, raw, v.len);
    } else {
        v.len = lenb < 192 ? lenb : (size_t)(lenb - 191) * 256;
        for (size_t i = 0; i < v.len; i++)
            f->value[i] = (uint8_t)(seed + i * 131);
    }
    const char *ct = content_types[(flags >> 6) % 3];
    v.content_type = ct;
    v.content_type_len = strlen(ct);
    enum store_set_mode mode = (enum store_set_mode)((flags >> 2) & 3);
    if (mode > STORE_SET_IF_VERSION)
        mode = STORE_SET_ALWAYS;
    struct store_set_opts opts = {.mode = mode};
    opts.ttl_ms = (flags & 0x10) ? pick_ttl(f, cursor_u8(c)) : 0;
    if (mode == STORE_SET_IF_VERSION)
        opts.version = pick_version(m, cursor_u8(c));

    int was_live = live(m, f->now), was_present = m->state == PRESENT;
    size_t ct_len = v.kind == STORE_KIND_BYTES ? v.content_type_len : 0;
    /*
     * What the entry will cost: its slot, exactly; past SLAB_MAX_SLOT a stub's
     * slot and a malloc'd body, known only to within glibc's rounding (slack).
     */
    size_t size = entry_alloc_size(f->key_len[id], v.kind, ct_len, v.len, opts.ttl_ms > 0), footprint, slack = 0;
    if (size <= SLAB_MAX_SLOT) {
        footprint = slab_slot_size_for(size);
    } else {
        footprint = slab_slot_size_for(ENTRY_HEADER_SIZE + sizeof(void *)) + size - ENTRY_HEADER_SIZE + sizeof(size_t);
        slack = 2 * sizeof(size_t);
    }
    struct store_stats before;
    store_stats(f->store, &before);
    struct counters c0 = counters(f->store);

    struct store_meta meta = {0};
    int rc = store_set(f->store, f->key[id], f->key_len[id], &v, &opts, &meta);

    int want = expect_set(m, was_live, mode, opts.version);
    uint64_t own = 0, own_extra = 0;
    struct store_stats after;
    store_stats(f->store, &after);
    if (opts.ttl_ms > INT64_MAX - f->now) {
        CHECK(rc == STORE_EINVAL);
    } else if (rc == STORE_EFULL) {
        CHECK(f->cfg.max_memory != 0);
        if (f->cfg.eviction == STORE_EVICT_NONE)
            CHECK(before.bytes_used + footprint + slack > f->cfg.max_memory);
        else { /* everything else evicted, the key's own entry last (only if its table's growth did not fit) */
            CHECK(footprint > f->cfg.max_memory || store_count(f->store) <= (size_t)was_present);
            own_extra = 1;
        }
    } else {
        CHECK(rc == want);
        if (rc == 0) {
            CHECK(meta.created == !was_live);
            CHECK(meta.ttl_ms == (opts.ttl_ms > 0 ? opts.ttl_ms : -1));
            if (f->cfg.eviction == STORE_EVICT_NONE && f->cfg.max_memory != 0)
                CHECK(after.bytes_used <= f->cfg.max_memory);
            own = was_present && !was_live; /* a replaced expired entry counts as expired */
            model_store(m, v.kind, v.data, v.len, ct, ct_len, opts.ttl_ms > 0 ? f->now + opts.ttl_ms : 0, meta.version);
        } else {
            CHECK(counters(f->store).gone == c0.gone); /* a failed condition evicts nothing */
        }
    }
    uint64_t grew = counters(f->store).gone - c0.gone;
    CHECK(grew >= own);
    reconcile(f, may_evict(f) ? LOSS_EVICT : LOSS_NONE, grew - own, own_extra);
}

static void *buf_alloc(void *ctx, size_t size)
{
    struct fuzz *f = ctx;
    CHECK(size <= sizeof(f->buf));
    return f->buf;
}

static void *failing_alloc(void *ctx, size_t size)
{
    (void)ctx, (void)size;
    return NULL;
}

static void op_get(struct fuzz *f, struct cursor *c)
{
    int id = cursor_u8(c) % NKEYS;
    uint8_t how = cursor_u8(c) % 3;
    struct model *m = &f->keys[id];
    store_alloc_fn alloc = how == 0 ? buf_alloc : how == 1 ? NULL : failing_alloc;
    struct store_item item;
    memset(&item, 0xa5, sizeof(item));
    int rc = store_get(f->store, f->key[id], f->key_len[id], alloc, f, &item);
    if (!live(m, f->now)) {
        CHECK(rc == STORE_ENOTFOUND);
    } else if (how == 2) {
        CHECK(rc == STORE_ENOMEM);
    } else {
        CHECK(rc == 0);
        CHECK(item.kind == m->kind && item.len == m->len);
        CHECK(item.meta.version == m->version && !item.meta.created);
        CHECK(item.meta.ttl_ms == (m->expires_at ? m->expires_at - f->now : -1));
        CHECK(item.content_type_len == m->ct_len);
        if (how == 1) {
            CHECK(item.data == NULL && item.content_type == NULL);
        } else {
            CHECK(item.data == f->buf && item.data[item.len] == '\0');
            CHECK(m->len == 0 || memcmp(item.data, m->value, m->len) == 0);
            if (m->kind == STORE_KIND_BYTES) {
                CHECK(item.content_type != NULL && item.content_type[item.content_type_len] == '\0');
                CHECK(m->ct_len == 0 || memcmp(item.content_type, m->ct, m->ct_len) == 0);
            } else {
                CHECK(item.content_type == NULL);
            }
        }
    }
    reconcile(f, LOSS_NONE, 0, 0);
}

static void op_delete(struct fuzz *f, struct cursor *c)
{
    int id = cursor_u8(c) % NKEYS;
    struct model *m = &f->keys[id];
    uint64_t version = pick_version(m, cursor_u8(c));
    struct counters c0 = counters(f->store);
    int rc = store_delete(f->store, f->key[id], f->key_len[id], version);
    uint64_t own = 0;
    if (m->state == ABSENT) {
        CHECK(rc == STORE_ENOTFOUND);
    } else if (expired(m, f->now)) {
        CHECK(rc == STORE_ENOTFOUND); /* and it is reclaimed, counted as expired */
        own = 1;
        m->state = ABSENT;
    } else if (version != 0 && version != m->version) {
        CHECK(rc == STORE_EVERSION);
    } else {
        CHECK(rc == 0);
        m->state = ABSENT;
    }
    CHECK(counters(f->store).gone - c0.gone == own);
    reconcile(f, LOSS_NONE, 0, 0);
}

/* The outcome expected of an incr if the key is (present) or is not there. */
static int expect_incr(const struct model *m, int64_t now, int64_t by, int64_t ttl_ms, uint64_t if_version,
                       int64_t *sum, int64_t *expires_at)
{
    int is_live = live(m, now);
    int64_t base = 0;
    if (ttl_ms > INT64_MAX - now)
        return STORE_EINVAL;
    if (if_version != 0 && (!is_live || m->version != if_version))
        return STORE_EVERSION;
    *expires_at = ttl_ms > 0 ? now + ttl_ms : 0;
    if (is_live) {
        if (model_integer(m, &base) != 0)
            return STORE_ENOTINT;
        *expires_at = m->expires_at;
    }
    if (__builtin_add_overflow(base, by, sum))
        return STORE_EOVERFLOW;
    return 0;
}

static void op_incr(struct fuzz *f, struct cursor *c)
{
    int id = cursor_u8(c) % NKEYS;
    struct model *m = &f->keys[id];
    uint8_t sel = cursor_u8(c);
    int64_t by;
    switch (sel % 5) {
    case 0:
        by = (int8_t)cursor_u8(c);
        break;
    case 1:
        by = 1;
        break;
    case 2:
        by = INT64_MAX;
        break;
    case 3:
        by = INT64_MIN;
        break;
    default:
        by = (int64_t)cursor_u64(c);
    }
    uint8_t tb = cursor_u8(c);
    int64_t ttl_ms = tb < 128 ? 0 : pick_ttl(f, tb);
    uint64_t if_version = (sel & 0x80) ? pick_version(m, cursor_u8(c)) : 0;

    int was_live = live(m, f->now), was_present = m->state == PRESENT;
    struct counters c0 = counters(f->store);
    int64_t result = 0x5a5a;
    struct store_meta meta = {0};
    struct store_set_opts opts = {.ttl_ms = ttl_ms, .mode = if_version ? STORE_SET_IF_VERSION : STORE_SET_ALWAYS,
                                  .version = if_version};
    int rc = store_incr(f->store, f->key[id], f->key_len[id], by, &opts, &result, &meta);

    int64_t sum = 0, expires_at = 0;
    int want = expect_incr(m, f->now, by, ttl_ms, if_version, &sum, &expires_at);
    uint64_t own = 0, own_extra = 0;
    if (ttl_ms > INT64_MAX - f->now) {
        CHECK(rc == STORE_EINVAL);
    } else if (rc == STORE_EFULL) {
        CHECK(f->cfg.max_memory != 0);
        own_extra = may_evict(f); /* as for a set: linked, then evicted with everything else */
    } else {
        CHECK(rc == want);
        if (rc == 0) {
            char text[24];
            int text_len = snprintf(text, sizeof(text), "%lld", (long long)result);
            CHECK(result == sum && meta.created == !was_live);
            CHECK(meta.ttl_ms == (expires_at ? expires_at - f->now : -1));
            own = was_present && !was_live;
            model_store(m, STORE_KIND_JSON, text, (size_t)text_len, NULL, 0, expires_at, meta.version);
        }
    }
    uint64_t grew = counters(f->store).gone - c0.gone;
    CHECK(grew >= own);
    reconcile(f, may_evict(f) ? LOSS_EVICT : LOSS_NONE, grew - own, own_extra);
}

struct scan_seen {
    struct fuzz *f;
    unsigned count[NKEYS];
    size_t calls;
    const char *prefix;
    size_t prefix_len;
};

static void on_key(void *ctx, const char *key, size_t len)
{
    struct scan_seen *seen = ctx;
    int id = id_of(seen->f, key, len);
    CHECK(id >= 0);
    CHECK(live(&seen->f->keys[id], seen->f->now)); /* live keys only */
    CHECK(len >= seen->prefix_len && memcmp(key, seen->prefix, seen->prefix_len) == 0);
    seen->count[id]++;
    seen->calls++;
}

static void op_scan(struct fuzz *f, struct cursor *c)
{
    static const char *const prefixes[] = {"", "k", "k1", "k2", "x", "xxxxxxxx", "\0", "\0\xff", "k10", "zz"};
    static const size_t prefix_lens[] = {0, 1, 2, 2, 1, 8, 1, 2, 3, 2};
    uint8_t sel = cursor_u8(c), limit = cursor_u8(c) % 9;
    struct scan_seen seen = {.f = f};
    seen.prefix = prefixes[sel % 10];
    seen.prefix_len = prefix_lens[sel % 10];
    uint64_t cursor = 0, next = 0;
    if (sel & 0x80) {
        /* One call from any cursor: it must not crash or return a key it should not. */
        cursor = cursor_u64(c);
        size_t n = store_scan(f->store, cursor, seen.prefix, seen.prefix_len, limit, on_key, &seen, &next);
        CHECK(n == seen.calls);
        CHECK(next == 0 || (next >> 48) < f->store->nshards);
    } else {
        size_t calls = 0;
        do {
            size_t before = seen.calls;
            size_t n = store_scan(f->store, next, seen.prefix, seen.prefix_len, limit, on_key, &seen, &next);
            CHECK(n == seen.calls - before);
            CHECK(++calls <= 4 * NKEYS + 64 * 8);
        } while (next != 0);
        for (int id = 0; id < NKEYS; id++) {
            const struct model *m = &f->keys[id];
            if (live(m, f->now) && f->key_len[id] >= seen.prefix_len &&
                memcmp(f->key[id], seen.prefix, seen.prefix_len) == 0)
                CHECK(seen.count[id] >= 1); /* every live key with the prefix, at least once */
        }
    }
    reconcile(f, LOSS_NONE, 0, 0);
}

static void op_expire(struct fuzz *f, struct cursor *c)
{
    size_t buckets = cursor_u8(c);
    struct counters c0 = counters(f->store);
    size_t n = store_expire_step(f->store, buckets);
    uint64_t grew = counters(f->store).gone - c0.gone;
    CHECK(grew == n);
    CHECK(reconcile(f, LOSS_EXPIRED, grew, 0) == n);
}

static void op_flush(struct fuzz *f)
{
    size_t want = 0;
    for (int id = 0; id < NKEYS; id++) {
        want += live(&f->keys[id], f->now);
        f->keys[id].state = ABSENT;
    }
    CHECK(store_flush(f->store) == want);
    reconcile(f, LOSS_NONE, 0, 0);
}

static void op_tick(struct fuzz *f, struct cursor *c)
{
    uint8_t b = cursor_u8(c);
    int64_t step = b == 255 ? (int64_t)1 << 40 : (int64_t)b * 10;
    f->now = f->now > INT64_MAX / 2 ? f->now : f->now + step;
    reconcile(f, LOSS_NONE, 0, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t memories[] = {0, 4096, 6144, 8192, 16384, 32768, 65536, 1 << 20};
    static struct fuzz f;
    struct cursor c = {data, data + size};
    uint8_t conf = cursor_u8(&c);

    memset(&f, 0, sizeof(f));
    make_keys(&f);
    f.now = (int64_t)cursor_u8(&c) * 1000;
    f.cfg.eviction = (enum store_eviction)(conf % 3);
    f.cfg.single_shard = ((conf >> 2) & 3) == 0;
    f.cfg.shard_bits = (conf >> 2) & 3; /* 1-3: 2 to 8 shards */
    f.cfg.max_memory = memories[(conf >> 4) & 7];
    f.cfg.clock = fake_clock;
    f.cfg.clock_ctx = &f.now;
    f.store = store_create(&f.cfg);
    CHECK(f.store != NULL);
    reconcile(&f, LOSS_NONE, 0, 0);

    for (int ops = 0; cursor_left(&c) && ops < MAX_OPS; ops++) {
        switch (cursor_u8(&c) % 16) {
        case 0:
        case 8:
        case 9:
        case 15:
            op_set(&f, &c);
            break;
        case 1:
        case 10:
        case 11:
            op_get(&f, &c);
            break;
        case 2:
            op_delete(&f, &c);
            break;
        case 3:
        case 12:
            op_incr(&f, &c);
            break;
        case 4:
            op_scan(&f, &c);
            break;
        case 5:
            op_expire(&f, &c);
            break;
        case 7:
            op_flush(&f);
            break;
        default:
            op_tick(&f, &c);
        }
    }

    store_destroy(f.store);
    for (int id = 0; id < NKEYS; id++)
        free(f.keys[id].value);
    return 0;
}
