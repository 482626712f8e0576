/*
 * Unit tests of the epoch comparison the reclamation lists rely on
 * (ebr_tag_is_old, src/store/internal.h): an entry keeps only the low 32
 * bits of the epoch it was retired in, and must never be judged old enough
 * to free while a reader could still hold it, whichever epoch the reclaimer
 * read and however the counter has wrapped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_entry_is_old_two_epochs_after_its_tag),
        cmocka_unit_test(test_an_entry_retired_after_the_epoch_was_read_is_young),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
