/*
 * The entry allocator: size-classed slabs owned by the store, so that an
 * entry costs its size rounded to its class and nothing more, and memory one
 * thread frees is reused by every other (glibc's malloc gives each thread an
 * arena of its own, where what another thread frees lies idle: with several
 * writers that held RSS far above --max-memory, docs/DESIGN.md).
 *
 * The store reserves SLAB_RESERVE bytes of address space at creation and
 * makes it accessible SLAB_COMMIT_PAGES pages at a time as it is first used;
 * entries are addressed within it by 32-bit references (entry_ref).
 * It is cut into 64 KiB pages; a page holds slots of one class, and its
 * metadata (a side array, so that handing a page's memory back never touches
 * it) has a bitmap of its free slots. Classes step by 8 bytes up to 256, then
 * by a sixteenth of a power of two up to SLAB_MAX_SLOT (at most 6% of
 * rounding); a larger entry is a slot pointing to a malloc'd body (entry.c).
 *
 * Each class has a mutex and a list of its pages with a free slot; a page
 * whose last slot is freed goes back to the store's free pages with its
 * memory handed back (MADV_DONTNEED), unless it is its class's only page
 * with room. So that writers on several cores do not take that mutex (and
 * write the same page's bitmap) on every entry, each thread keeps a few free
 * slots per class (struct slab_cache, in its EBR record, at most
 * SLAB_CACHE_BYTES per class, or two slots): the entries it reclaims go
 * there, its next writes take them back, and it moves slots to and from the
 * pages half a cache at a time. slab_trim() hands back, in the pages still
 * in use, every system page whose slots are all free: what the expiry sweep
 * leaves between live entries.
 *
 * A slot is freed only after EBR's grace period (ebr.c), exactly as free()
 * was, so lock-free readers never see a slot reused under them. A free slot
 * is closed to the memory checkers, so a use after free is still caught: ASan
 * poisons it, and memcheck (valgrind) marks it inaccessible through its
 * client requests, which cost a few instructions where valgrind is not
 * running. A cached slot's link is opened only to be read or written.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#if STORE_ASAN
#include <sanitizer/asan_interface.h>
#define CLOSE(p, n)     ASAN_POISON_MEMORY_REGION(p, n)
#define OPEN(p, n)      ASAN_UNPOISON_MEMORY_REGION(p, n)
#define OPEN_LINK(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#elif __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define CLOSE(p, n)     VALGRIND_MAKE_MEM_NOACCESS(p, n)
#define OPEN(p, n)      VALGRIND_MAKE_MEM_UNDEFINED(p, n) /* a new entry's bytes are garbage until written */
#define OPEN_LINK(p, n) VALGRIND_MAKE_MEM_DEFINED(p, n)   /* the link written before it was closed */
#else
#define CLOSE(p, n)     ((void)(p), (void)(n))
#define OPEN(p, n)      ((void)(p), (void)(n))
#define OPEN_LINK(p, n) ((void)(p), (void)(n))
#endif

#define PAGE_SIZE_BYTES   ((size_t)1 << SLAB_PAGE_SHIFT)
#define RESERVE_PAGES     ((uint32_t)(SLAB_RESERVE >> SLAB_PAGE_SHIFT))
#define SLAB_COMMIT_PAGES 64u /* 4 MiB made accessible at a time */
#define SMALL_CLASSES     27u /* 48, 56, ... 256 */

/* The class of a slot of `size` bytes (1..SLAB_MAX_SLOT). */
static unsigned class_of(size_t size)
{
    if (size <= SLAB_MIN_SLOT)
        return 0;
    if (size <= 256)
        return (unsigned)((size + 7) / 8 - SLAB_MIN_SLOT / 8);
    unsigned top = 63u - (unsigned)__builtin_clzll(size - 1); /* 8.. */
    return SMALL_CLASSES + (top - 8) * 16 + (unsigned)(((size - 1) >> (top - 4)) & 15);
}

static size_t class_size(unsigned c)
{
    if (c < SMALL_CLASSES)
        return (size_t)(c + SLAB_MIN_SLOT / 8) * 8;
    unsigned group = (c - SMALL_CLASSES) / 16, step = (c - SMALL_CLASSES) % 16;
    return (size_t)(17 + step) << (group + 4);
}

static unsigned slots_per_page(unsigned c)
{
    return (unsigned)(PAGE_SIZE_BYTES / class_size(c));
}

static unsigned char *page_start(const struct slab *sl, uint32_t pn)
{
    return sl->base + ((size_t)pn << SLAB_PAGE_SHIFT);
}

int slab_init(struct slab *sl)
{
    sl->base = mmap(NULL, SLAB_RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (sl->base == MAP_FAILED)
        return STORE_ENOMEM;
    sl->pages = mmap(NULL, RESERVE_PAGES * sizeof(*sl->pages), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (sl->pages == MAP_FAILED) {
        munmap(sl->base, SLAB_RESERVE);
        return STORE_ENOMEM;
    }
    pthread_mutex_init(&sl->lock, NULL);
    /* Page 0 is never used, so no entry's reference is 0 (entry_ref), nor made accessible: a guard. */
    sl->top = sl->committed = 1;
    sl->free_pages = SLAB_NO_PAGE;
    for (unsigned c = 0; c < SLAB_CLASSES; c++) {
        pthread_mutex_init(&sl->classes[c].lock, NULL);
        sl->classes[c].partial = SLAB_NO_PAGE;
    }
    return 0;
}

void slab_destroy(struct slab *sl)
{
    for (unsigned c = 0; c < SLAB_CLASSES; c++)
        pthread_mutex_destroy(&sl->classes[c].lock);
    pthread_mutex_destroy(&sl->lock);
#if STORE_ASAN
    /* Leave no poisoned shadow behind for whatever is mapped here next. */
    ASAN_UNPOISON_MEMORY_REGION(sl->base, (size_t)sl->committed << SLAB_PAGE_SHIFT);
#endif
    munmap(sl->pages, RESERVE_PAGES * sizeof(*sl->pages));
    munmap(sl->base, SLAB_RESERVE);
}

/* A page for a class: a released one, else the next never used; SLAB_NO_PAGE when the reservation is full. */
static uint32_t page_take(struct slab *sl)
{
    pthread_mutex_lock(&sl->lock);
    uint32_t pn = sl->free_pages;
    if (pn != SLAB_NO_PAGE) {
        sl->free_pages = sl->pages[pn].next;
    } else if (sl->top < RESERVE_PAGES) {
        if (sl->top == sl->committed) {
            /* Page 0 is never committed, so the last step is one page short: never past the reservation. */
            uint32_t pages = RESERVE_PAGES - sl->committed;
            if (pages > SLAB_COMMIT_PAGES)
                pages = SLAB_COMMIT_PAGES;
            size_t bytes = (size_t)pages << SLAB_PAGE_SHIFT;
            if (mprotect(page_start(sl, sl->committed), bytes, PROT_READ | PROT_WRITE) != 0) {
                pthread_mutex_unlock(&sl->lock);
                return SLAB_NO_PAGE;
            }
            sl->committed += pages;
        }
        pn = sl->top++;
    }
    pthread_mutex_unlock(&sl->lock);
    return pn;
}

/* Hands an empty page's memory back to the system and keeps the page for any class. */
static void page_release(struct slab *sl, uint32_t pn)
{
    madvise(page_start(sl, pn), PAGE_SIZE_BYTES, MADV_DONTNEED);
    pthread_mutex_lock(&sl->lock);
    sl->pages[pn].next = sl->free_pages;
    sl->free_pages = pn;
    pthread_mutex_unlock(&sl->lock);
}

static void partial_push(struct slab *sl, struct slab_class *k, uint32_t pn)
{
    struct slab_page *pg = &sl->pages[pn];
    pg->prev = SLAB_NO_PAGE;
    pg->next = k->partial;
    if (k->partial != SLAB_NO_PAGE)
        sl->pages[k->partial].prev = pn;
    k->partial = pn;
    pg->in_partial = 1;
}

static void partial_remove(struct slab *sl, struct slab_class *k, uint32_t pn)
{
    struct slab_page *pg = &sl->pages[pn];
    if (pg->prev != SLAB_NO_PAGE)
        sl->pages[pg->prev].next = pg->next;
    else
        k->partial = pg->next;
    if (pg->next != SLAB_NO_PAGE)
        sl->pages[pg->next].prev = pg->prev;
    pg->in_partial = 0;
}

/* Makes a fresh page one of class c's, every slot free. */
static void page_format(struct slab *sl, uint32_t pn, unsigned c)
{
    struct slab_page *pg = &sl->pages[pn];
    unsigned slots = slots_per_page(c);
    pg->class_index = (uint8_t)c;
    pg->used = 0;
    pg->trimmed = 0;
    for (unsigned w = 0; w < SLAB_BITMAP_WORDS; w++) {
        unsigned first = w * 64;
        pg->free_bits[w] = first >= slots ? 0 : slots - first >= 64 ? UINT64_MAX : (1ULL << (slots - first)) - 1;
    }
    CLOSE(page_start(sl, pn), PAGE_SIZE_BYTES);
}

static unsigned take_free_slot(struct slab_page *pg)
{
    unsigned w = 0;
    while (pg->free_bits[w] == 0)
        w++;
    unsigned bit = (unsigned)__builtin_ctzll(pg->free_bits[w]);
    pg->free_bits[w] &= pg->free_bits[w] - 1;
    return w * 64 + bit;
}

/* Takes a free slot of class c; the caller holds its lock. NULL when no page can be had. */
static void *do_take_slot(struct slab *sl, struct slab_class *k, unsigned c)
{
    uint32_t pn = k->partial;
    if (pn == SLAB_NO_PAGE) {
        pn = page_take(sl);
        if (pn == SLAB_NO_PAGE)
            return NULL;
        page_format(sl, pn, c);
        partial_push(sl, k, pn);
    }
    struct slab_page *pg = &sl->pages[pn];
    unsigned slot = take_free_slot(pg);
    pg->trimmed = 0;
    if (++pg->used == slots_per_page(c))
        partial_remove(sl, k, pn);
    return page_start(sl, pn) + (size_t)slot * class_size(c);
}

/*
 * Marks slot p of class c free; the caller holds its lock. Returns its page
 * if that is now empty and should be released (after unlocking), else
 * SLAB_NO_PAGE.
 */
static uint32_t do_put_slot(struct slab *sl, struct slab_class *k, void *p)
{
    size_t offset = (size_t)((unsigned char *)p - sl->base);
    uint32_t pn = (uint32_t)(offset >> SLAB_PAGE_SHIFT);
    struct slab_page *pg = &sl->pages[pn];
    unsigned slot = (unsigned)((offset & (PAGE_SIZE_BYTES - 1)) / class_size(pg->class_index));
    pg->free_bits[slot / 64] |= 1ULL << (slot % 64);
    pg->trimmed = 0; /* a slot more to hand back */
    if (!pg->in_partial)
        partial_push(sl, k, pn);
    if (--pg->used != 0 || (pg->prev == SLAB_NO_PAGE && pg->next == SLAB_NO_PAGE))
        return SLAB_NO_PAGE; /* in use, or its class's only page with room: kept */
    partial_remove(sl, k, pn);
    return pn;
}

/* The class of a slot handed out (its page's, set before and unchanged while the slot is in use). */
static unsigned class_of_slot(const struct slab *sl, const void *p)
{
    return sl->pages[(size_t)((const unsigned char *)p - sl->base) >> SLAB_PAGE_SHIFT].class_index;
}

/*
 * The thread caches. A cached slot is free, so it stays closed: its link to
 * the next one (its first word) is opened only to be read or written.
 */
static void *cache_next(void *p)
{
    void *next;
    OPEN_LINK(p, sizeof(next));
    memcpy(&next, p, sizeof(next));
    CLOSE(p, sizeof(next));
    return next;
}

static void cache_push(struct slab_cache *cache, unsigned c, void *p)
{
    OPEN_LINK(p, sizeof(p));
    memcpy(p, &cache->head[c], sizeof(p));
    CLOSE(p, sizeof(p));
    cache->head[c] = p;
    cache->count[c]++;
}

static void *cache_pop(struct slab_cache *cache, unsigned c)
{
    void *p = cache->head[c];
    cache->head[c] = cache_next(p);
    cache->count[c]--;
    return p;
}

/* The most slots of class c a thread keeps: SLAB_CACHE_BYTES' worth, 2 to 64. */
static unsigned cache_limit(unsigned c)
{
    size_t n = SLAB_CACHE_BYTES / class_size(c);
    return n < 2 ? 2 : n > 64 ? 64 : (unsigned)n;
}

/* Returns n slots from the cache's class c to the pages, under one lock. */
static void cache_drain(struct slab *sl, struct slab_cache *cache, unsigned c, unsigned n)
{
    struct slab_class *k = &sl->classes[c];
    uint32_t empty[64];
    unsigned nempty = 0;
    pthread_mutex_lock(&k->lock);
    while (n-- > 0 && cache->count[c] > 0) {
        uint32_t pn = do_put_slot(sl, k, cache_pop(cache, c));
        if (pn != SLAB_NO_PAGE)
            empty[nempty++] = pn;
    }
    pthread_mutex_unlock(&k->lock);
    while (nempty > 0)
        page_release(sl, empty[--nempty]);
}

void *slab_alloc(struct slab *sl, struct slab_cache *cache, size_t size)
{
    unsigned c = class_of(size);
    size_t bytes = class_size(c);
    void *p = NULL;
    if (cache != NULL && cache->count[c] > 0) {
        p = cache_pop(cache, c);
    } else {
        /* Takes half a cache's worth at once, so the lock is taken once per batch of writes. */
        struct slab_class *k = &sl->classes[c];
        unsigned extra = cache != NULL ? cache_limit(c) / 2 : 0;
        pthread_mutex_lock(&k->lock);
        p = do_take_slot(sl, k, c);
        for (void *q; p != NULL && extra > 0 && (q = do_take_slot(sl, k, c)) != NULL; extra--)
            cache_push(cache, c, q);
        pthread_mutex_unlock(&k->lock);
        if (p == NULL)
            return NULL;
    }
    OPEN(p, bytes);
    return p;
}

void slab_free(struct slab *sl, struct slab_cache *cache, void *p)
{
    unsigned c = class_of_slot(sl, p);
    CLOSE(p, class_size(c));
    if (cache == NULL) {
        struct slab_class *k = &sl->classes[c];
        pthread_mutex_lock(&k->lock);
        uint32_t pn = do_put_slot(sl, k, p);
        pthread_mutex_unlock(&k->lock);
        if (pn != SLAB_NO_PAGE)
            page_release(sl, pn);
        return;
    }
    if (cache->count[c] >= cache_limit(c))
        cache_drain(sl, cache, c, cache->count[c] / 2);
    cache_push(cache, c, p);
}

void slab_cache_flush(struct slab *sl, struct slab_cache *cache)
{
    for (unsigned c = 0; c < SLAB_CLASSES; c++)
        if (cache->count[c] > 0)
            cache_drain(sl, cache, c, cache->count[c]);
}

size_t slab_slot_size_for(size_t size)
{
    return class_size(class_of(size));
}

size_t slab_slot_size(const struct slab *sl, const void *p)
{
    return class_size(class_of_slot(sl, p));
}

/* Whether slots first..last of the page are all free. */
static int slots_free(const struct slab_page *pg, unsigned first, unsigned last)
{
    for (unsigned i = first; i <= last; i++)
        if (!(pg->free_bits[i / 64] >> (i % 64) & 1))
            return 0;
    return 1;
}

/* Hands back the system pages of page pn whose slots are all free. */
static void page_trim(struct slab *sl, uint32_t pn, size_t sys_page)
{
    struct slab_page *pg = &sl->pages[pn];
    size_t size = class_size(pg->class_index);
    unsigned slots = slots_per_page(pg->class_index);
    for (size_t at = 0; at < PAGE_SIZE_BYTES; at += sys_page) {
        unsigned first = (unsigned)(at / size), last = (unsigned)((at + sys_page - 1) / size);
        if (last >= slots)
            last = slots - 1; /* the page's tail past its last slot is never used */
        if (first >= slots || slots_free(pg, first, last))
            madvise(page_start(sl, pn) + at, sys_page, MADV_DONTNEED);
    }
    pg->trimmed = 1;
}

void slab_trim(struct slab *sl)
{
    size_t sys_page = (size_t)sysconf(_SC_PAGESIZE);
    if (sys_page > PAGE_SIZE_BYTES)
        return;
    for (unsigned c = 0; c < SLAB_CLASSES; c++) {
        struct slab_class *k = &sl->classes[c];
        pthread_mutex_lock(&k->lock);
        for (uint32_t pn = k->partial; pn != SLAB_NO_PAGE; pn = sl->pages[pn].next)
            if (!sl->pages[pn].trimmed)
                page_trim(sl, pn, sys_page);
        pthread_mutex_unlock(&k->lock);
    }
}
