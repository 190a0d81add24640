/*
 * test_cron_heap.c - the scheduler's fire heap against a naive model: random
 * inserts, moves (schedule edited), removals (task paused) and pops must give
 * exactly the order a linear scan gives, with one entry per task at most.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cron.h"

#define IDS 500

static uint64_t rng = 88172645463325252ULL;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The model: due[id] or -1 when absent; the minimum by (due, id). */
static int model_min(const int64_t *due)
{
    int best = -1;
    for (int i = 0; i < IDS; i++)
        if (due[i] >= 0 && (best < 0 || due[i] < due[best]))
            best = i;
    return best;
}

static void test_heap_against_model(void **state)
{
    cron_heap h;
    cron_heap_init(&h);
    int64_t due[IDS];
    memset(due, 0xff, sizeof due);
    size_t count = 0;
    for (int step = 0; step < 200000; step++) {
        uint32_t id = (uint32_t)(rnd() % IDS);
        int op = (int)(rnd() % 10);
        if (op < 5) {
            int64_t t = (int64_t)(rnd() % 1000); /* many ties */
            count += due[id] < 0;
            due[id] = t;
            cron_heap_set(&h, id, t);
        } else if (op < 7) {
            assert_int_equal(cron_heap_remove(&h, id), due[id] >= 0);
            count -= due[id] >= 0;
            due[id] = -1;
        } else {
            cron_heap_entry top;
            int want = model_min(due);
            assert_int_equal(cron_heap_pop(&h, &top), want >= 0);
            if (want >= 0) {
                assert_int_equal(top.id, want);
                assert_int_equal(top.due, due[want]);
                due[want] = -1;
                count--;
            }
        }
        assert_int_equal(h.n, count);
        int64_t d;
        assert_int_equal(cron_heap_get(&h, id, &d), due[id] >= 0);
        if (due[id] >= 0)
            assert_int_equal(d, due[id]);
    }
    cron_heap_entry top;
    int64_t last = -1;
    uint32_t last_id = 0;
    while (cron_heap_pop(&h, &top)) { /* drains in (due, id) order */
        assert_true(top.due > last || (top.due == last && top.id > last_id));
        last = top.due, last_id = top.id;
    }
    assert_false(cron_heap_peek(&h, &top));
    assert_false(cron_heap_remove(&h, 100000));
    cron_heap_free(&h);
}

static void test_heap_sparse_ids(void **state)
{
    cron_heap h;
    cron_heap_init(&h);
    cron_heap_set(&h, 70000, 5);
    cron_heap_set(&h, 3, 7);
    cron_heap_set(&h, 70000, 9); /* moved, not duplicated */
    assert_int_equal(h.n, 2);
    cron_heap_entry top;
    assert_true(cron_heap_pop(&h, &top));
    assert_int_equal(top.id, 3);
    assert_true(cron_heap_pop(&h, &top));
    assert_int_equal(top.id, 70000);
    assert_int_equal(top.due, 9);
    cron_heap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_against_model),
        cmocka_unit_test(test_heap_sparse_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
