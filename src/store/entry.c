/*
 * Entry layout: one block holds a header, the optional expiry, the key, the
 * content type (opaque byte values only) and the value, so that an entry is
 * freed and counted as one block and eviction never allocates (an entry over
 * SLAB_MAX_SLOT is two: below).
 *
 *   struct entry | int64 expires_at? | key | ct_len, ct? | value
 *
 * The expiry is present only for entries written with a TTL (ENTRY_HAS_EXPIRY):
 * most caches hold many entries without one, and those save 8 bytes each.
 * Counters always carry the slot, 0 meaning no expiry, so an increment can keep
 * an existing expiry without knowing it before the entry is allocated.
 *
 * Every header lives in the store's slabs (slab.c), so that every link to an
 * entry (bucket slot, chain, queue) can be a 32-bit reference. An entry of up
 * to SLAB_MAX_SLOT bytes is one slot; a larger one (ENTRY_EXTERNAL) is a slot
 * holding the header and a pointer to the rest, malloc'd. Byte accounting counts what the allocators really give:
 * the slot's class size, plus malloc_usable_size() and glibc's per-chunk word
 * for an external body, so --max-memory bounds real memory, not an estimate.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int is_external(const struct entry *e)
{
    return atomic_load_explicit(&e->flags, memory_order_relaxed) & ENTRY_EXTERNAL;
}

/* Where the expiry, key, content type and value are. */
static unsigned char *entry_data(const struct entry *e)
{
    unsigned char *body;
    if (!is_external(e))
        return (unsigned char *)e->data;
    memcpy(&body, e->data, sizeof(body));
    return body;
}

static size_t expiry_size(const struct entry *e)
{
    return (atomic_load_explicit(&e->flags, memory_order_relaxed) & ENTRY_HAS_EXPIRY) ? sizeof(int64_t) : 0;
}

size_t entry_alloc_size(size_t key_len, enum store_kind kind, size_t ct_len, size_t value_capacity, int has_expiry)
{
    size_t ct_bytes = kind == STORE_KIND_BYTES ? 1 + ct_len : 0;
    return ENTRY_HEADER_SIZE + (has_expiry ? sizeof(int64_t) : 0) + key_len + ct_bytes + value_capacity;
}

struct entry *entry_new(struct store *s, const void *key, size_t key_len, enum store_kind kind, const char *ct,
                        size_t ct_len, size_t value_capacity, int has_expiry, int64_t expires_at)
{
    size_t size = entry_alloc_size(key_len, kind, ct_len, value_capacity, has_expiry);
    struct ebr_thread *t = ebr_this_thread(s);
    struct slab_cache *cache = t != NULL ? &t->cache : NULL;
    int external = size > SLAB_MAX_SLOT;
    struct entry *e = slab_alloc(&s->slab, cache, external ? ENTRY_HEADER_SIZE + sizeof(void *) : size);
    if (e == NULL)
        return NULL;
    if (external) {
        void *body = malloc(size - ENTRY_HEADER_SIZE);
        if (body == NULL) {
            slab_free(&s->slab, cache, e);
            return NULL;
        }
        memcpy(e->data, &body, sizeof(body));
    }
    atomic_init(&e->chain, 0);
    e->newer = e->older = 0;
    e->version = 0;
    e->value_len = 0;
    e->key_len = (uint16_t)key_len;
    e->kind = (uint8_t)kind;
    atomic_init(&e->flags, (has_expiry ? ENTRY_HAS_EXPIRY : 0) | (external ? ENTRY_EXTERNAL : 0));
    if (has_expiry)
        entry_set_expires_at(e, expires_at);
    memcpy((char *)entry_key(e), key, key_len);
    if (kind == STORE_KIND_BYTES) {
        unsigned char *p = entry_data(e) + expiry_size(e) + key_len;
        p[0] = (unsigned char)ct_len;
        if (ct_len != 0) /* ct may be NULL then, and memcpy from NULL is undefined even for 0 bytes */
            memcpy(p + 1, ct, ct_len);
    }
    return e;
}

void entry_describe(const struct entry *e, struct store_change *out)
{
    out->op = STORE_CHANGE_SET;
    out->key = entry_key(e);
    out->key_len = e->key_len;
    out->kind = (enum store_kind)e->kind;
    out->value = entry_value((struct entry *)e);
    out->value_len = e->value_len;
    out->content_type = entry_content_type(e, &out->content_type_len);
    out->expires_at_ms = entry_expires_at(e);
    out->version = e->version;
}

struct entry *entry_clone(struct store *s, const struct entry *e, int64_t expires_at)
{
    size_t ct_len;
    const char *ct = entry_content_type(e, &ct_len);
    int has_expiry = expiry_size(e) != 0 || expires_at != 0;
    struct entry *c = entry_new(s, entry_key(e), e->key_len, (enum store_kind)e->kind, ct, ct_len, e->value_len,
                                has_expiry, expires_at);
    if (c == NULL)
        return NULL;
    memcpy(entry_value(c), entry_value((struct entry *)e), e->value_len);
    c->value_len = e->value_len;
    c->version = e->version;
    return c;
}

const char *entry_key(const struct entry *e)
{
    return (const char *)entry_data(e) + expiry_size(e);
}

const char *entry_content_type(const struct entry *e, size_t *len)
{
    if (e->kind != STORE_KIND_BYTES) {
        *len = 0;
        return NULL;
    }
    const unsigned char *p = entry_data(e) + expiry_size(e) + e->key_len;
    *len = p[0];
    return (const char *)p + 1;
}

unsigned char *entry_value(struct entry *e)
{
    size_t ct_len;
    const char *ct = entry_content_type(e, &ct_len);
    size_t ct_bytes = ct ? 1 + ct_len : 0;
    return entry_data(e) + expiry_size(e) + e->key_len + ct_bytes;
}

int64_t entry_expires_at(const struct entry *e)
{
    int64_t at = 0;
    if (expiry_size(e))
        memcpy(&at, entry_data(e), sizeof(at));
    return at;
}

void entry_set_expires_at(struct entry *e, int64_t at)
{
    memcpy(entry_data(e), &at, sizeof(at));
}

void entry_free(struct store *s, struct ebr_thread *t, struct entry *e)
{
    if (is_external(e))
        free(entry_data(e));
    slab_free(&s->slab, t != NULL ? &t->cache : NULL, e);
}

size_t entry_footprint(const struct store *s, const struct entry *e)
{
    size_t bytes = slab_slot_size(&s->slab, e);
    if (is_external(e))
        bytes += malloc_usable_size(entry_data(e)) + sizeof(size_t);
    return bytes;
}
