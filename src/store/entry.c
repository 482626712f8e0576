/*
 * Entry layout: one allocation holds a header, the optional expiry, the key,
 * the content type (opaque byte values only) and the value, so that an entry
 * is freed, counted and moved as one block and eviction never allocates.
 *
 *   struct entry | int64 expires_at? | key | ct_len, ct? | value
 *
 * The expiry is present only for entries written with a TTL (ENTRY_HAS_EXPIRY):
 * most caches hold many entries without one, and those save 8 bytes each.
 * Counters always carry the slot, 0 meaning no expiry, so an increment can keep
 * an existing expiry without knowing it before the entry is allocated.
 *
 * Entries up to SLAB_MAX_SLOT bytes live in the store's slabs (slab.c),
 * larger ones in malloc's heap. Byte accounting counts what the allocator
 * really gives: the slot's class size, or malloc_usable_size() plus glibc's
 * per-chunk word, so --max-memory bounds real memory and not an estimate.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static size_t expiry_size(const struct entry *e)
{
    return (atomic_load_explicit(&e->flags, memory_order_relaxed) & ENTRY_HAS_EXPIRY) ? sizeof(int64_t) : 0;
}

size_t entry_alloc_size(size_t key_len, enum store_kind kind, size_t ct_len, size_t value_capacity, int has_expiry)
{
    size_t ct_bytes = kind == STORE_KIND_BYTES ? 1 + ct_len : 0;
    return sizeof(struct entry) + (has_expiry ? sizeof(int64_t) : 0) + key_len + ct_bytes + value_capacity;
}

void entry_init(struct entry *e, const void *key, size_t key_len, enum store_kind kind, const char *ct, size_t ct_len,
                int has_expiry, int64_t expires_at)
{
    atomic_init(&e->chain, NULL);
    e->newer = e->older = NULL;
    e->version = 0;
    e->value_len = 0;
    e->key_len = (uint16_t)key_len;
    e->kind = (uint8_t)kind;
    atomic_init(&e->flags, has_expiry ? ENTRY_HAS_EXPIRY : 0);
    if (has_expiry)
        entry_set_expires_at(e, expires_at);
    memcpy((char *)entry_key(e), key, key_len);
    if (kind == STORE_KIND_BYTES) {
        unsigned char *p = e->data + expiry_size(e) + key_len;
        p[0] = (unsigned char)ct_len;
        if (ct_len != 0) /* ct may be NULL then, and memcpy from NULL is undefined even for 0 bytes */
            memcpy(p + 1, ct, ct_len);
    }
}

const char *entry_key(const struct entry *e)
{
    return (const char *)e->data + expiry_size(e);
}

const char *entry_content_type(const struct entry *e, size_t *len)
{
    if (e->kind != STORE_KIND_BYTES) {
        *len = 0;
        return NULL;
    }
    const unsigned char *p = e->data + expiry_size(e) + e->key_len;
    *len = p[0];
    return (const char *)p + 1;
}

unsigned char *entry_value(struct entry *e)
{
    size_t ct_len;
    const char *ct = entry_content_type(e, &ct_len);
    size_t ct_bytes = ct ? 1 + ct_len : 0;
    return e->data + expiry_size(e) + e->key_len + ct_bytes;
}

int64_t entry_expires_at(const struct entry *e)
{
    int64_t at = 0;
    if (expiry_size(e))
        memcpy(&at, e->data, sizeof(at));
    return at;
}

void entry_set_expires_at(struct entry *e, int64_t at)
{
    memcpy(e->data, &at, sizeof(at));
}

struct entry *entry_alloc(struct store *s, size_t size)
{
    if (size > SLAB_MAX_SLOT)
        return malloc(size);
    struct ebr_thread *t = ebr_this_thread(s);
    return slab_alloc(&s->slab, t != NULL ? &t->cache : NULL, size);
}

void entry_free(struct store *s, struct ebr_thread *t, struct entry *e)
{
    if (slab_owns(&s->slab, e))
        slab_free(&s->slab, t != NULL ? &t->cache : NULL, e);
    else
        free(e);
}

size_t entry_footprint(const struct store *s, const struct entry *e)
{
    if (slab_owns(&s->slab, e))
        return slab_slot_size(&s->slab, e);
    return malloc_usable_size((void *)e) + sizeof(size_t);
}
