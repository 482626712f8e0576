/*
 * Unit tests of the entry allocator (src/store/slab.c), driven through its
 * internal interface: size classes, slot reuse, pages going back to the
 * system when empty, the per-thread caches, slab_trim() handing back the
 * memory between live slots (checked page by page with mincore), threads
 * allocating and freeing each other's slots with exact counts, and free slots
 * closed to the memory checkers (ASan; memcheck when run under valgrind, as
 * `make valgrind` does).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/internal.h"

#if STORE_ASAN
#include <sanitizer/asan_interface.h>
#elif __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif

static int setup(void **state)
{
    struct slab *sl = calloc(1, sizeof(*sl));
    if (sl == NULL || slab_init(sl) != 0) {
        free(sl);
        return -1;
    }
    *state = sl;
    return 0;
}

static int teardown(void **state)
{
    slab_destroy(*state);
    free(*state);
    return 0;
}

static void test_every_size_gets_a_close_fitting_slot(void **state)
{
    struct slab *sl = *state;
    size_t previous = 0;
    for (size_t size = 1; size <= SLAB_MAX_SLOT; size++) {
        unsigned char *p = slab_alloc(sl, NULL, size);
        assert_non_null(p);
        size_t slot = slab_slot_size(sl, p);
        assert_true(slot >= size && slot >= SLAB_MIN_SLOT);
        assert_true(slot % 8 == 0 && (uintptr_t)p % 8 == 0);
        assert_true(slot >= previous); /* classes grow with the size asked for */
        if (size > SLAB_MIN_SLOT)
            assert_true(slot - size < 8 || (slot - size) * 16 <= size); /* 8 bytes, or 1/16, of rounding */
        memset(p, 0xa5, slot);                                          /* the whole slot is usable */
        assert_true(p >= sl->base + ((size_t)1 << SLAB_PAGE_SHIFT));    /* never in page 0: no reference is 0 */
        slab_free(sl, NULL, p);
        previous = slot;
    }
}

static void test_slots_are_distinct_and_reused(void **state)
{
    struct slab *sl = *state;
    enum { N = 3000 }; /* 88-byte slots: four pages and part of a fifth */
    unsigned char *slots[N];
    for (size_t i = 0; i < N; i++) {
        slots[i] = slab_alloc(sl, NULL, 88);
        assert_non_null(slots[i]);
        memset(slots[i], (int)(i & 0xff), 88);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < 88; j++)
            assert_int_equal(slots[i][j], i & 0xff); /* no slot overlaps another */
    slab_free(sl, NULL, slots[1234]);
    assert_ptr_equal(slab_alloc(sl, NULL, 88), slots[1234]); /* its page, back on the class's list, comes first */
    for (size_t i = 0; i < N; i++)
        slab_free(sl, NULL, slots[i]);
}

static void test_empty_pages_go_back_and_serve_other_classes(void **state)
{
    struct slab *sl = *state;
    size_t per_page = ((size_t)1 << SLAB_PAGE_SHIFT) / slab_slot_size_for(1000), n = 3 * per_page;
    void **slots = calloc(n, sizeof(*slots));
    assert_non_null(slots);
    for (size_t i = 0; i < n; i++)
        assert_non_null(slots[i] = slab_alloc(sl, NULL, 1000));
    uint32_t top = sl->top;
    for (size_t i = 0; i < n; i++)
        slab_free(sl, NULL, slots[i]);
    /* Two of the three pages are released (the class keeps one); a new class takes them, not fresh ones. */
    assert_int_not_equal(sl->free_pages, SLAB_NO_PAGE);
    void *a = slab_alloc(sl, NULL, 3000), *b = slab_alloc(sl, NULL, 5000);
    assert_int_equal(sl->top, top);
    assert_int_equal(sl->free_pages, SLAB_NO_PAGE);
    slab_free(sl, NULL, a);
    slab_free(sl, NULL, b);
    free(slots);
}

static void test_cache_keeps_freed_slots_for_the_next_allocation(void **state)
{
    struct slab *sl = *state;
    struct slab_cache cache;
    memset(&cache, 0, sizeof(cache));
    void *p = slab_alloc(sl, &cache, 200);
    assert_non_null(p);
    size_t slot = slab_slot_size(sl, p);
    size_t limit = SLAB_CACHE_BYTES / slot;
    unsigned c = 0;
    while (c < SLAB_CLASSES && cache.count[c] == 0)
        c++;
    assert_true(c < SLAB_CLASSES);
    assert_int_equal(cache.count[c], limit / 2); /* a miss takes half a cache's worth */
    slab_free(sl, &cache, p);
    assert_int_equal(cache.count[c], limit / 2 + 1);
    assert_ptr_equal(slab_alloc(sl, &cache, 200), p); /* last in, first out */

    /* Freeing past the limit moves half the cache back to the pages. */
    void *held[64];
    for (size_t i = 0; i < limit; i++)
        held[i] = slab_alloc(sl, &cache, 200);
    for (size_t i = 0; i < limit; i++) {
        slab_free(sl, &cache, held[i]);
        assert_true(cache.count[c] <= limit);
    }
    slab_free(sl, &cache, p);
    slab_cache_flush(sl, &cache);
    for (unsigned k = 0; k < SLAB_CLASSES; k++)
        assert_int_equal(cache.count[k], 0);
}

/* Resident system pages among the slab's first `pages` 64 KiB pages. */
static size_t resident_pages(struct slab *sl, uint32_t pages)
{
    size_t sys = (size_t)sysconf(_SC_PAGESIZE), len = (size_t)pages << SLAB_PAGE_SHIFT, n = 0;
    unsigned char *vec = malloc(len / sys);
    assert_non_null(vec);
    assert_int_equal(mincore(sl->base, len, vec), 0);
    for (size_t i = 0; i < len / sys; i++)
        n += vec[i] & 1;
    free(vec);
    return n;
}

/*
 * Whether the memory checker watching this run lets the program touch
 * [p, p+n) (n at most 256): ASan's shadow, or memcheck's access bits under
 * valgrind. -1 when none is watching (a plain build outside valgrind).
 */
static int checker_allows(const void *p, size_t n)
{
#if STORE_ASAN
    return __asan_region_is_poisoned((void *)p, n) == NULL;
#elif __has_include(<valgrind/memcheck.h>)
    unsigned char vbits[256];
    if (!RUNNING_ON_VALGRIND)
        return -1;
    return VALGRIND_GET_VBITS(p, vbits, n) == 1; /* 3: some byte is not addressable */
#else
    (void)p, (void)n;
    return -1;
#endif
}

/* A use after free of an entry is caught: its slot is closed once freed, to the cache or to its page. */
static void test_free_slots_are_closed_to_memory_checkers(void **state)
{
    struct slab *sl = *state;
    struct slab_cache cache;
    memset(&cache, 0, sizeof(cache));
    unsigned char *p = slab_alloc(sl, &cache, 100);
    assert_non_null(p);
    size_t n = slab_slot_size(sl, p);
    memset(p, 0xab, n);
    int watched = checker_allows(p, n) != -1;
    /* tests/run.sh's memcheck variant says so: a build without valgrind's header would watch nothing. */
    if (getenv("CACHETTE_MEMCHECK") != NULL)
        assert_true(watched);
    if (watched)
        assert_int_equal(checker_allows(p, n), 1);

    slab_free(sl, &cache, p); /* into this thread's cache: its first word links it */
    if (watched) {
        assert_int_equal(checker_allows(p, sizeof(void *)), 0);
        assert_int_equal(checker_allows(p + n - 1, 1), 0);
    }
    assert_ptr_equal(slab_alloc(sl, &cache, 100), p); /* the link read back whole */
    if (watched)
        assert_int_equal(checker_allows(p, n), 1);

    slab_free(sl, NULL, p); /* straight back to its page */
    if (watched)
        assert_int_equal(checker_allows(p, n), 0);
    slab_cache_flush(sl, &cache);
}

static void test_trim_hands_back_memory_between_live_slots(void **state)
{
    struct slab *sl = *state;
    size_t sys = (size_t)sysconf(_SC_PAGESIZE);
    if (sys > 4096)
        skip();                            /* 2 KiB slots, one in ten live: few larger pages would hold none */
    enum { N = 31 * 32, KEEP_EVERY = 10 }; /* 31 whole pages of 2 KiB slots, each with a live slot */
    unsigned char *slots[N];
    for (size_t i = 0; i < N; i++) {
        assert_non_null(slots[i] = slab_alloc(sl, NULL, 2000));
        memset(slots[i], 1, 2000);
    }
    uint32_t pages = sl->top;
    size_t loaded = resident_pages(sl, pages);
    for (size_t i = 0; i < N; i++)
        if (i % KEEP_EVERY != 0)
            slab_free(sl, NULL, slots[i]);
    assert_int_equal(resident_pages(sl, pages), loaded); /* freeing alone keeps pages that hold live slots */
    slab_trim(sl);
    size_t trimmed = resident_pages(sl, pages);
    assert_true(trimmed * 3 < loaded); /* about one slot in ten is live */
    for (size_t i = 0; i < N; i += KEEP_EVERY)
        for (size_t j = 0; j < 2000; j++)
            assert_int_equal(slots[i][j], 1); /* live slots keep their bytes */
    /*
     * Slots freed after a trim are handed back by the next one. Keep only the
     * live slots that start a page (every 160th): pages left empty go back at
     * once, the others keep the one system page that slot lies in.
     */
    size_t still_live = 0;
    for (size_t i = 0; i < N; i += KEEP_EVERY) {
        if (i % 32 != 0)
            slab_free(sl, NULL, slots[i]);
        else
            still_live++;
    }
    slab_trim(sl);
    assert_int_equal(resident_pages(sl, pages), still_live);
    for (size_t i = 0; i < N; i += KEEP_EVERY)
        if (i % 32 != 0)
            assert_non_null(slots[i] = slab_alloc(sl, NULL, 2000));

    /* Slots in trimmed memory are handed out again, and usable. */
    unsigned char *again[N];
    for (size_t i = 0; i < N; i++)
        if (i % KEEP_EVERY != 0) {
            assert_non_null(again[i] = slab_alloc(sl, NULL, 2000));
            memset(again[i], 2, 2000);
        }
    for (size_t i = 0; i < N; i++)
        slab_free(sl, NULL, i % KEEP_EVERY != 0 ? again[i] : slots[i]);
}

/*
 * Threads allocate, fill and free slots of mixed sizes through their own
 * caches, handing half of what they allocate to the next thread to free.
 * Every slot comes back: at the end every page is free but one per class
 * used, and no slot was ever handed to two holders at once.
 */
enum { THREADS = 4, ROUNDS = 200, BATCH = 64 };

struct handoff {
    pthread_mutex_t lock;
    void *slots[THREADS][ROUNDS * BATCH / 2];
    size_t count[THREADS];
};

struct worker {
    struct slab *sl;
    struct handoff *h;
    unsigned id;
};

static size_t size_for(size_t i)
{
    static const size_t sizes[] = {48, 88, 200, 1000, 4000, 8192};
    return sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct slab_cache cache;
    memset(&cache, 0, sizeof(cache));
    for (size_t r = 0; r < ROUNDS; r++) {
        unsigned char *mine[BATCH];
        for (size_t i = 0; i < BATCH; i++) {
            size_t size = size_for(r + i);
            mine[i] = slab_alloc(w->sl, &cache, size);
            if (mine[i] == NULL)
                return "allocation failed";
            memset(mine[i], (int)w->id, size);
        }
        for (size_t i = 0; i < BATCH; i++) {
            size_t size = size_for(r + i);
            for (size_t j = 0; j < size; j++)
                if (mine[i][j] != w->id)
                    return "a slot was handed out twice";
            if (i % 2 == 0) {
                slab_free(w->sl, &cache, mine[i]);
            } else {
                unsigned to = w->id % THREADS; /* the next thread's index (ids count from 1) */
                pthread_mutex_lock(&w->h->lock);
                w->h->slots[to][w->h->count[to]++] = mine[i];
                pthread_mutex_unlock(&w->h->lock);
            }
        }
        pthread_mutex_lock(&w->h->lock);
        size_t *mine_count = &w->h->count[w->id - 1];
        while (*mine_count > 0)
            slab_free(w->sl, &cache, w->h->slots[w->id - 1][--*mine_count]);
        pthread_mutex_unlock(&w->h->lock);
    }
    slab_cache_flush(w->sl, &cache);
    return NULL;
}

static void test_threads_free_each_others_slots(void **state)
{
    struct slab *sl = *state;
    struct handoff *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    pthread_mutex_init(&h->lock, NULL);
    pthread_t tids[THREADS];
    struct worker workers[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){.sl = sl, .h = h, .id = i + 1};
        assert_int_equal(pthread_create(&tids[i], NULL, worker_main, &workers[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++) {
        void *failure;
        pthread_join(tids[i], &failure);
        if (failure != NULL)
            fail_msg("thread %u: %s", i, (const char *)failure);
    }
    /* What a thread handed on after the last round of the thread it goes to is still held: free it. */
    for (unsigned i = 0; i < THREADS; i++)
        while (h->count[i] > 0)
            slab_free(sl, NULL, h->slots[i][--h->count[i]]);
    /* Every slot is back: each class used keeps exactly one page, empty. */
    size_t classes_used = 0;
    for (unsigned c = 0; c < SLAB_CLASSES; c++) {
        uint32_t pn = sl->classes[c].partial;
        if (pn == SLAB_NO_PAGE)
            continue;
        classes_used++;
        assert_int_equal(sl->pages[pn].used, 0);
        assert_int_equal(sl->pages[pn].next, SLAB_NO_PAGE);
    }
    assert_int_equal(classes_used, 6);
    size_t free_pages = 0;
    for (uint32_t pn = sl->free_pages; pn != SLAB_NO_PAGE; pn = sl->pages[pn].next)
        free_pages++;
    assert_int_equal(free_pages + classes_used, sl->top - 1); /* page 0 is never used */
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/*
 * Pages are made accessible 64 at a time from page 1, so the reservation's
 * last step has 63 pages: the slab must use all 63 and change nothing past
 * the reservation (an mprotect there would fail, or open whatever the
 * process has mapped next). The slab starts one step before its end, as if
 * 32 GiB of entries had filled the rest.
 */
static void test_the_last_pages_stay_inside_the_reservation(void **state)
{
    struct slab *sl = *state;
    const uint32_t reserve_pages = (uint32_t)(SLAB_RESERVE >> SLAB_PAGE_SHIFT);
    sl->top = sl->committed = reserve_pages - 63;
    size_t per_page = ((size_t)1 << SLAB_PAGE_SHIFT) / slab_slot_size_for(SLAB_MAX_SLOT), n = 0;
    while (slab_alloc(sl, NULL, SLAB_MAX_SLOT) != NULL)
        n++;
    assert_int_equal(n, 63 * per_page);
    assert_int_equal(sl->top, reserve_pages);
    assert_int_equal(sl->committed, reserve_pages);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_size_gets_a_close_fitting_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slots_are_distinct_and_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_pages_go_back_and_serve_other_classes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_keeps_freed_slots_for_the_next_allocation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim_hands_back_memory_between_live_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_free_each_others_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_slots_are_closed_to_memory_checkers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_last_pages_stay_inside_the_reservation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
