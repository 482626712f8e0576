/*
 * Unit tests of the per-thread EBR records (src/store/ebr.c).
 *
 * The epoch comparison the reclamation lists rely on (ebr_tag_is_old): an
 * entry keeps only the low 32 bits of the epoch it was retired in, and must
 * never be judged old enough to free while a reader could still hold it,
 * whichever epoch the reclaimer read and however the counter has wrapped.
 *
 * The statistics each thread counts in its record: every event is counted
 * once, after its thread has exited and after a new thread took the record
 * over.
 *
 * A large value that a reader held back when its writer retired it is
 * freed by the sweep, though the writer writes nothing more.
 */
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/internal.h"

static void test_an_entry_is_old_two_epochs_after_its_tag(void **state)
{
    (void)state;
    uint64_t epochs[] = {2, 1000, UINT32_MAX - 1, (uint64_t)UINT32_MAX + 1, (uint64_t)7 << 32 | 5};
    for (size_t i = 0; i < sizeof(epochs) / sizeof(epochs[0]); i++) {
        uint64_t tag = epochs[i];
        assert_false(ebr_tag_is_old((uint32_t)tag, tag));
        assert_false(ebr_tag_is_old((uint32_t)tag, tag + 1));
        assert_true(ebr_tag_is_old((uint32_t)tag, tag + 2));
        assert_true(ebr_tag_is_old((uint32_t)tag, tag + 1000000));
    }
}

/*
 * A reclaimer may judge the orphan list with an epoch read before another
 * thread retired an entry into it: that entry's tag is newer than the epoch
 * and it must wait, across the 32-bit wrap too (a wrapped difference would
 * otherwise look like an age of about 2^32).
 */
static void test_an_entry_retired_after_the_epoch_was_read_is_young(void **state)
{
    (void)state;
    uint64_t epochs[] = {5, UINT32_MAX - 1, UINT32_MAX, (uint64_t)UINT32_MAX + 1};
    for (size_t i = 0; i < sizeof(epochs) / sizeof(epochs[0]); i++)
        for (uint64_t ahead = 1; ahead <= 3; ahead++)
            assert_false(ebr_tag_is_old((uint32_t)(epochs[i] + ahead), epochs[i]));
}

#define WAVE_THREADS 3
#define OPS_PER_THREAD 1000

/* Each thread sets its own keys, then gets each twice (hits) and an absent key once per set (misses). */
struct counting_thread {
    pthread_t thread;
    struct store *store;
    unsigned id;
};

static void *count_events(void *arg)
{
    struct counting_thread *c = arg;
    struct store_value v = {.kind = STORE_KIND_STRING, .data = "v", .len = 1};
    struct store_item item;
    for (unsigned i = 0; i < OPS_PER_THREAD; i++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "t%u:%u", c->id, i);
        if (store_set(c->store, key, (size_t)len, &v, NULL, NULL) != 0 ||
            store_get(c->store, key, (size_t)len, NULL, NULL, &item) != 0 ||
            store_get(c->store, key, (size_t)len, NULL, NULL, &item) != 0 ||
            store_get(c->store, "absent", 6, NULL, NULL, &item) != STORE_ENOTFOUND)
            return "an operation failed";
    }
    return NULL;
}

static size_t registered_records(const struct store *s)
{
    size_t n = 0;
    for (struct ebr_thread *t = atomic_load(&s->ebr.threads); t != NULL; t = atomic_load(&t->next))
        n++;
    return n;
}

static void run_wave(struct store *s, unsigned first_id)
{
    struct counting_thread threads[WAVE_THREADS];
    for (unsigned i = 0; i < WAVE_THREADS; i++) {
        threads[i] = (struct counting_thread){.store = s, .id = first_id + i};
        assert_int_equal(pthread_create(&threads[i].thread, NULL, count_events, &threads[i]), 0);
    }
    for (unsigned i = 0; i < WAVE_THREADS; i++) {
        void *failure;
        assert_int_equal(pthread_join(threads[i].thread, &failure), 0);
        assert_null(failure);
    }
}

static void test_statistics_outlive_their_threads(void **state)
{
    (void)state;
    struct store *s = store_create(NULL);
    assert_non_null(s);
    struct store_stats st;

    run_wave(s, 0);
    assert_true(registered_records(s) <= WAVE_THREADS);
    store_stats(s, &st);
    assert_int_equal(st.sets, WAVE_THREADS * OPS_PER_THREAD);
    assert_int_equal(st.hits, 2 * WAVE_THREADS * OPS_PER_THREAD);
    assert_int_equal(st.misses, WAVE_THREADS * OPS_PER_THREAD);

    /* The second wave takes the first one's records over (their threads have exited) and adds to their counts. */
    run_wave(s, WAVE_THREADS);
    assert_true(registered_records(s) <= WAVE_THREADS);
    store_stats(s, &st);
    assert_int_equal(st.sets, 2 * WAVE_THREADS * OPS_PER_THREAD);
    assert_int_equal(st.hits, 4 * WAVE_THREADS * OPS_PER_THREAD);
    assert_int_equal(st.misses, 2 * WAVE_THREADS * OPS_PER_THREAD);
    assert_int_equal(st.entries, 2 * WAVE_THREADS * OPS_PER_THREAD);
    store_destroy(s);
}

#define BIG_VALUE (1u << 20)

struct held_read {
    struct store *store;
    sem_t in_section, release, written, finish;
    char *value;
};

/* The reader's allocator: called inside its read section, which it holds open until released. */
static void *alloc_when_released(void *ctx, size_t size)
{
    struct held_read *h = ctx;
    sem_post(&h->in_section);
    sem_wait(&h->release);
    return malloc(size);
}

static void *read_big(void *arg)
{
    struct held_read *h = arg;
    struct store_item item;
    if (store_get(h->store, "big", 3, alloc_when_released, h, &item) != STORE_OK)
        return "the get failed";
    free(item.data);
    return NULL;
}

/* Replaces the value while the reader is in its section, then stays alive and idle until told to finish. */
static void *replace_big_then_idle(void *arg)
{
    struct held_read *h = arg;
    struct store_value v = {.kind = STORE_KIND_STRING, .data = h->value, .len = BIG_VALUE};
    sem_wait(&h->in_section);
    int rc = store_set(h->store, "big", 3, &v, NULL, NULL);
    sem_post(&h->written);
    sem_wait(&h->finish);
    return rc == STORE_OK ? NULL : "the set failed";
}

static void test_a_value_held_back_by_a_reader_is_freed_without_its_writer(void **state)
{
    (void)state;
    struct held_read h = {.store = store_create(NULL), .value = calloc(1, BIG_VALUE)};
    assert_non_null(h.store);
    assert_non_null(h.value);
    sem_init(&h.in_section, 0, 0);
    sem_init(&h.release, 0, 0);
    sem_init(&h.written, 0, 0);
    sem_init(&h.finish, 0, 0);
    struct store_value v = {.kind = STORE_KIND_STRING, .data = h.value, .len = BIG_VALUE};
    assert_int_equal(store_set(h.store, "big", 3, &v, NULL, NULL), STORE_OK);

    pthread_t reader, writer;
    assert_int_equal(pthread_create(&reader, NULL, read_big, &h), 0);
    assert_int_equal(pthread_create(&writer, NULL, replace_big_then_idle, &h), 0);
    sem_wait(&h.written);
    struct store_stats st;
    store_stats(h.store, &st);
    assert_true(st.bytes_pending_free >= BIG_VALUE); /* the reader still holds the old value */

    void *failure;
    sem_post(&h.release);
    assert_int_equal(pthread_join(reader, &failure), 0);
    assert_null(failure);
    store_expire_step(h.store, 1); /* the writer is alive and writes nothing more */
    store_stats(h.store, &st);
    assert_int_equal(st.bytes_pending_free, 0);

    sem_post(&h.finish);
    assert_int_equal(pthread_join(writer, &failure), 0);
    assert_null(failure);
    store_destroy(h.store);
    free(h.value);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_entry_is_old_two_epochs_after_its_tag),
        cmocka_unit_test(test_an_entry_retired_after_the_epoch_was_read_is_young),
        cmocka_unit_test(test_statistics_outlive_their_threads),
        cmocka_unit_test(test_a_value_held_back_by_a_reader_is_freed_without_its_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
