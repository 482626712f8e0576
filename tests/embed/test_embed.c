/*
 * The store as an embedding program sees it: only include/cachette/store.h,
 * and build/libcachette.a linked by a compiler run without link-time
 * optimisation or its linker plugin (the Makefile's rule for this file). The
 * server's build uses LTO; this test fails to link if the archive ever holds
 * only LTO bytecode again, which no other toolchain can read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cachette/store.h"

static void *heap_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void an_embedder_stores_reads_counts_and_deletes(void **state)
{
    (void)state;
    struct store *s = store_create(&(struct store_config){.max_memory = 1 << 20});
    assert_non_null(s);

    struct store_value v = {.kind = STORE_KIND_STRING, .data = "hello", .len = 5};
    struct store_meta meta;
    assert_int_equal(store_set(s, "greeting", 8, &v, NULL, &meta), STORE_OK);
    assert_true(meta.created);

    struct store_item item;
    assert_int_equal(store_get(s, "greeting", 8, heap_alloc, NULL, &item), STORE_OK);
    assert_int_equal(item.len, 5);
    assert_memory_equal(item.data, "hello", 5);
    assert_int_equal(item.meta.version, meta.version);
    free(item.data);

    int64_t n = 0;
    assert_int_equal(store_incr(s, "visits", 6, 41, NULL, &n, NULL), STORE_OK);
    assert_int_equal(store_incr(s, "visits", 6, 1, NULL, &n, NULL), STORE_OK);
    assert_int_equal(n, 42);

    assert_int_equal(store_delete(s, "greeting", 8, 0), STORE_OK);
    assert_int_equal(store_get(s, "greeting", 8, heap_alloc, NULL, &item), STORE_ENOTFOUND);

    struct store_stats st;
    store_stats(s, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.sets, 3);
    assert_int_equal(st.deletes, 1);
    assert_true(st.bytes_used > 0 && st.bytes_used <= st.max_memory);
    store_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_embedder_stores_reads_counts_and_deletes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
