/*
 * test_queue_backends.c - one behavioural suite run against both queue
 * backends: the in-process queue and Redis (a real redis-server started for
 * the suite; each test gets its own key prefix). Priorities and FIFO,
 * delays and promotion, leases (expiry, heartbeat, reclaim), ack, nack,
 * dead letter with re-drive and purge, release of prefetched items,
 * blocking fetch, stats.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "qtest.h"

static testredis redis;
static char redis_url[512];
static int prefix_seq;

/* ---- fixtures ------------------------------------------------------------ */

static int setup_common(void **state, const char *url)
{
    qfx *f = calloc(1, sizeof *f);
    snprintf(f->url, sizeof f->url, "%s", url);
    snprintf(f->prefix, sizeof f->prefix, "t%d-%d", (int)getpid(), ++prefix_seq);
    f->q = qt_open(f->url, f->prefix);
    *state = f;
    return 0;
}

static int setup_memory(void **state)
{
    return setup_common(state, "");
}

static int setup_redis(void **state)
{
    return setup_common(state, redis_url);
}

static int teardown(void **state)
{
    qfx *f = *state;
    queue_close(f->q);
    free(f);
    return 0;
}

/* A second handle on the same queue (Redis: a new connection; memory: the
 * same object, which is thread-safe). */
static queue *other_handle(qfx *f)
{
    return f->url[0] ? qt_open(f->url, f->prefix) : f->q;
}

static void other_close(qfx *f, queue *q)
{
    if (q != f->q)
        queue_close(q);
}

/* ---- priorities ---------------------------------------------------------- */

static void test_priority_order_and_fifo(void **state)
{
    qfx *f = *state;
    for (int id = 1; id <= 40; id++)
        qt_enq(f->q, id, id % 10, NULL);
    queue_lease l[64];
    int n = qt_fetch(f->q, l, 64, 30000, 0);
    assert_int_equal(n, 40);
    /* priority 9 first (9, 19, 29, 39), ..., priority 0 last (10, 20, 30, 40) */
    int k = 0;
    for (int p = 9; p >= 0; p--) {
        for (int j = 0; j < 4; j++, k++) {
            int64_t want = p == 0 ? 10 * (j + 1) : p + 10 * j;
            assert_int_equal(l[k].priority, p);
            assert_int_equal(l[k].id, want);
            assert_int_equal(l[k].attempt, 1);
        }
    }
    assert_int_equal(qt_ack(f->q, l, (size_t)n), 40);
    queue_leases_clear(l, (size_t)n);
}

static void test_fetch_one_at_a_time_follows_priority(void **state)
{
    qfx *f = *state;
    qt_enq(f->q, 1, 2, NULL);
    qt_enq(f->q, 2, 7, NULL);
    qt_enq(f->q, 3, 2, NULL);
    qt_enq(f->q, 4, 9, NULL);
    int64_t want[] = {4, 2, 1, 3};
    for (int i = 0; i < 4; i++) {
        queue_lease l;
        assert_int_equal(qt_fetch(f->q, &l, 1, 30000, 0), 1);
        assert_int_equal(l.id, want[i]);
        assert_int_equal(qt_ack(f->q, &l, 1), 1);
        queue_lease_clear(&l);
    }
    queue_lease l;
    assert_int_equal(qt_fetch(f->q, &l, 1, 30000, 0), 0);
}

static void test_bulk_enqueue_and_batched_fetch(void **state)
{
    qfx *f = *state;
    enum { N = 2500 };
    queue_item *items = calloc(N, sizeof *items);
    for (int i = 0; i < N; i++)
        items[i] = (queue_item){i + 1, (i * 7) % 10, 1, NULL};
    char err[512];
    assert_int_equal(queue_enqueue(f->q, items, N, err, sizeof err), 0);
    queue_stats st = qt_stats(f->q);
    assert_int_equal(qt_ready_total(&st), N);
    assert_int_equal(st.ready[3], N / 10);

    static queue_lease l[N];
    int got = 0;
    while (got < N) {
        int n = qt_fetch(f->q, l + got, 1000, 30000, 0);
        assert_true(n > 0);
        got += n;
    }
    assert_int_equal(got, N);
    for (int i = 1; i < N; i++) { /* priority descending, FIFO (ascending id) within */
        assert_true(l[i - 1].priority >= l[i].priority);
        if (l[i - 1].priority == l[i].priority)
            assert_true(l[i - 1].id < l[i].id);
    }
    st = qt_stats(f->q);
    assert_int_equal(st.leased, N);
    assert_int_equal(qt_ack(f->q, l, N), N);
    st = qt_stats(f->q);
    assert_int_equal(st.leased, 0);
    assert_int_equal(qt_ready_total(&st), 0);
    queue_leases_clear(l, N);
    free(items);
}

static void test_payload_round_trip(void **state)
{
    qfx *f = *state;
    qt_enq(f->q, 7, 5, "a|b|c\nline two, é");
    qt_enq(f->q, 8, 5, NULL);
    queue_lease l[2];
    assert_int_equal(qt_fetch(f->q, l, 2, 30000, 0), 2);
    assert_string_equal(l[0].payload, "a|b|c\nline two, é");
    assert_null(l[1].payload);
    assert_int_equal(qt_ack(f->q, l, 2), 2);
    queue_leases_clear(l, 2);
}

static void test_bad_items_are_refused(void **state)
{
    qfx *f = *state;
    char err[512];
    queue_item it = {5, 10, 1, NULL};
    assert_int_equal(queue_enqueue(f->q, &it, 1, err, sizeof err), -1);
    assert_string_equal(err, "queue item 5: priority 10 is out of range 0..9");
    it.priority = -1;
    assert_int_equal(queue_enqueue(f->q, &it, 1, err, sizeof err), -1);
    assert_string_equal(err, "queue item 5: priority -1 is out of range 0..9");
    queue_stats st = qt_stats(f->q);
    assert_int_equal(qt_ready_total(&st), 0);
}

/* ---- delays -------------------------------------------------------------- */

static void test_delayed_item_waits_until_due(void **state)
{
    qfx *f = *state;
    int64_t due = wall_ms() + 400;
    qt_enq_at(f->q, 11, 4, due);
    queue_lease l;
    assert_int_equal(qt_fetch(f->q, &l, 1, 30000, 0), 0);
    queue_stats st = qt_stats(f->q);
    assert_int_equal(st.delayed, 1);
    assert_int_equal(st.next_due_ms, due);
    assert_int_equal(qt_ready_total(&st), 0);
    /* a blocking fetch wakes up for the due item by itself */
    assert_int_equal(qt_fetch(f->q, &l, 1, 30000, 5000), 1);
    assert_true(wall_ms() >= due);
    assert_int_equal(l.id, 11);
    assert_int_equal(l.priority, 4);
    assert_int_equal(l.ready_us, due * 1000);
    st = qt_stats(f->q);
    assert_int_equal(st.delayed, 0);
    assert_int_equal(qt_ack(f->q, &l, 1), 1);
    queue_lease_clear(&l);
}

static void test_delayed_items_come_due_in_order(void **state)
{
    qfx *f = *state;
    int64_t now = wall_ms();
    qt_enq_at(f->q, 1, 5, now + 300);
    qt_enq_at(f->q, 2, 5, now + 100);
    qt_enq_at(f->q, 3, 5, now - 10); /* already due */
    queue_lease l;
    int64_t want[] = {3, 2, 1};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(qt_fetch(f->q, &l, 1, 30000, 5000), 1);
        assert_int_equal(l.id, want[i]);
        qt_ack(f->q, &l, 1);
        queue_lease_clear(&l);
    }
}

static void test_promote_due_moves_due_items(void **state)
{
    qfx *f = *state;
    char err[512];
    qt_enq_at(f->q, 1, 6, wall_ms() - 5);
    qt_enq_at(f->q, 2, 6, wall_ms() - 1);
    qt_enq_at(f->q, 3, 6, wall_ms() + 60000);
    assert_int_equal(queue_promote_due(f->q, err, sizeof err), 2);
    queue_stats st = qt_stats(f->q);
    assert_int_equal(st.ready[6], 2);
    assert_int_equal(st.delayed, 1);
    assert_int_equal(queue_promote_due(f->q, err, sizeof err), 0);
}

/* ---- leases -------------------------------------------------------------- */

typedef struct refetch {
    queue *q;
    queue_lease l;
} refetch;

static bool refetched(void *arg)
{
    refetch *r = arg;
    return qt_fetch(r->q, &r->l, 1, 30000, 0) == 1;
}

static void test_expired_lease_is_reclaimed(void **state)
{
    qfx *f = *state;
    qt_enq(f->q, 21, 3, "x");
    queue_lease first;
    assert_int_equal(qt_fetch(f->q, &first, 1, 300, 0), 1);
    queue_lease none;
    assert_int_equal(qt_fetch(f->q, &none, 1, 30000, 0), 0); /* leased: not visible */
    refetch r = {f->q, {0}};
    assert_true(wait_until(refetched, &r, 5000));
    assert_int_equal(r.l.id, 21);
    assert_int_equal(r.l.attempt, first.attempt); /* reclaim does not count an attempt */
    assert_string_equal(r.l.payload, "x");
    assert_true(r.l.token != first.token);
    /* the first consumer lost its lease: its ack and heartbeat say so */
    bool held = true;
    char err[512];
    assert_int_equal(queue_heartbeat(f->q, &first, 1, 1000, &held, err, sizeof err), 0);
    assert_false(held);
    assert_int_equal(qt_ack(f->q, &first, 1), 0);
    assert_int_equal(qt_ack(f->q, &r.l, 1), 1);
    queue_lease_clear(&first);
    queue_lease_clear(&r.l);
}

static bool requeued(void *arg)
{
    char err[512];
    int n = queue_requeue_expired(arg, err, sizeof err);
    assert_true(n >= 0);
    return n == 1;
}

static void test_requeue_expired_puts_items_in_front(void **state)
{
    qfx *f = *state;
    qt_enq(f->q, 1, 5, NULL);
    qt_enq(f->q, 2, 5, NULL);
    queue_lease l;
    assert_int_equal(qt_fetch(f->q, &l, 1, 50, 0), 1); /* takes 1 */
    assert_true(wait_until(requeued, f->q, 5000));
    queue_stats st = qt_stats(f->q);
    assert_int_equal(st.ready[5], 2);
    assert_int_equal(st.leased, 0);
    queue_lease again;
    assert_int_equal(qt_fetch(f->q, &again, 1, 30000, 0), 1);
    assert_int_equal(again.id, 1); /* back at the front, ahead of 2 */
    queue_lease_clear(&l);
    queue_lease_clear(&again);
}

typedef struct hb {
    queue *q;
    queue_lease *l;
    int64_t until;
    int beats;
} hb;

static bool heartbeat_until(void *arg)
{
    hb *h = arg;
    char err[512];
    bool held = false;
    assert_int_equal(queue_heartbeat(h->q, h->l, 1, 300, &held, err, sizeof err), 1);
    assert_true(held);
    queue_lease other;
    assert_int_equal(qt_fetch(h->q, &other, 1, 30000, 0), 0); /* never reclaimed */
    h->beats++;
    return mono_ms() >= h->until;
}

static void test_heartbeat_keeps_item_leased(void **state)
{
    qfx *f = *state;
    qt_enq(f->q, 31, 1, NULL);
    queue_lease l;
    assert_int_equal(qt_fetch(f->q, &l, 1, 300, 0), 1);
    hb h = {f->q, &l, mono_ms() + 1000, 0};
    assert_true(wait_until(heartbeat_until, &h, 5000)); /* 1 s > 3 leases */
    assert_true(h.beats > 5);
    queue_stats st = qt_stats(f->q);
    assert_int_equal(st.leased, 1);
    assert_int_equal(qt_ack(f->q, &l, 1), 1);
    queue_lease_clear(&l);
}

static void test_ack_removes(void **state)
{
    qfx *f = *state;
    qt_enq(f->q, 41, 0, NULL);
    queue_lease l;
    assert_int_equal(qt_fetch(f->q, &l, 1, 30000, 0), 1);
    queue_stats st = qt_stats(f->q);
    assert_int_equal(st.leased, 1);
    assert_int_equal(qt_ack(f->q, &l, 1), 1);
    st = qt_stats(f->q);
    assert_int_equal(st.leased, 0);
    assert_int_equal(qt_ready_total(&st), 0);
    assert_int_equal(st.delayed, 0);
    assert_int_equal(qt_ack(f->q, &l, 1), 0); /* a second ack finds nothing */
    queue_lease_clear(&l);
}

static void test_many_leases_acked_in_random_order(void **state)
{
    qfx *f = *state;
    enum { N = 3000 };
    queue_item *items = calloc(N, sizeof *items);
    for (int i = 0; i < N; i++)
        items[i] = (queue_item){i + 1, 5, 1, NULL};
    char err[512];
    assert_int_equal(queue_enqueue(f->q, items, N, err, sizeof err), 0);
    static queue_lease l[N];
    int got = 0;
    while (got < N)
        got += qt_fetch(f->q, l + got, 1000, 30000, 0);
    /* shuffle, ack the first half one by one, heartbeat the rest */
    uint64_t seed = 42;
    for (int i = N - 1; i > 0; i--) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        int j = (int)((seed >> 33) % (uint64_t)(i + 1));
        queue_lease t = l[i];
        l[i] = l[j];
        l[j] = t;
    }
    for (int i = 0; i < N / 2; i++)
        assert_int_equal(qt_ack(f->q, &l[i], 1), 1);
    static bool held[N];
    assert_int_equal(queue_heartbeat(f->q, l + N / 2, N - N / 2, 30000, held, err, sizeof err),
                     N - N / 2);
    assert_int_equal(qt_ack(f->q, l, N), N - N / 2);
    queue_stats st = qt_stats(f->q);
    assert_int_equal(st.leased, 0);
    queue_leases_clear(l, N);
    free(items);
}

typedef struct reclaim_count {
    queue *q;
    int total;
} reclaim_count;

static bool reclaimed_all_expired(void *arg)
{
    reclaim_count *rc = arg;
    char err[512];
    int n = queue_requeue_expired(rc->q, err, sizeof err);
    assert_true(n >= 0);
    rc->total += n;
    return rc->total >= 250;
}

static void test_reclaim_takes_only_expired_leases(void **state)
{
    qfx *f = *state;
    enum { N = 500 };
    queue_item items[N];
    for (int i = 0; i < N; i++)
        items[i] = (queue_item){i + 1, i % 10, 1, NULL};
    char err[512];
    assert_int_equal(queue_enqueue(f->q, items, N, err, sizeof err), 0);
    static queue_lease l[N];
    assert_int_equal(qt_fetch(f->q, l, N, 500, 0), N);
    /* every other lease is extended for a long time; the rest expire */
    static queue_lease keep[N / 2];
    for (int i = 0; i < N / 2; i++)
        keep[i] = l[2 * i];
    assert_int_equal(queue_heartbeat(f->q, keep, N / 2, 60000, NULL, err, sizeof err), N / 2);
    reclaim_count rc = {f->q, 0};
    assert_true(wait_until(reclaimed_all_expired, &rc, 5000));
    assert_int_equal(rc.total, N / 2);
    queue_stats st = qt_stats(f->q);
    assert_int_equal(st.leased, N / 2);
    assert_int_equal(qt_ready_total(&st), N / 2);
    /* the extended ones are still ours, the others are not */
    static bool held[N];
    assert_int_equal(queue_heartbeat(f->q, l, N, 60000, held, err, sizeof err), N / 2);
    for (int i = 0; i < N; i++)
        assert_int_equal(held[i], i % 2 == 0);
    assert_int_equal(qt_ack(f->q, l, N), N / 2);
    queue_leases_clear(l, N);
}

/* ---- nack, dead letter, release -------------------------------------- */

static void test_nack_moves_to_delayed_with_next_attempt(void **state)
{
    qfx *f = *state;
    char err[512];
    qt_enq(f->q, 51, 8, "pl");
    queue_lease l;
    assert_int_equal(qt_fetch(f->q, &l, 1, 30000, 0), 1);
    int64_t before = wall_ms();
    int64_t delay = 150;
    assert_int_equal(queue_nack(f->q, &l, 1, &delay, err, sizeof err), 1);
    int64_t after = wall_ms();
    queue_stats st = qt_stats(f->q);
    assert_int_equal(st.leased, 0);
    assert_int_equal(st.delayed, 1);
    assert_true(st.next_due_ms >= before + delay && st.next_due_ms <= after + delay);
    assert_int_equal(queue_nack(f->q, &l, 1, &delay, err, sizeof err), 0); /* not held anymore */
    queue_lease again;
    assert_int_equal(qt_fetch(f->q, &again, 1, 30000, 5000), 1);
    assert_true(wall_ms() >= before + delay);
    assert_int_equal(again.id, 51);
    assert_int_equal(again.attempt, 2);
    assert_int_equal(again.priority, 8);
    assert_string_equal(again.payload, "pl");
    assert_int_equal(again.ready_us, st.next_due_ms * 1000);
    qt_ack(f->q, &again, 1);
    queue_lease_clear(&l);
    queue_lease_clear(&again);
}

static void test_dead_letter_after_last_attempt_then_retry_and_purge(void **state)
{
    qfx *f = *state;
    char err[512];
    cfg_retry policy = {3, 20, 2.0, 100, JITTER_NONE};
    uint64_t rng = 1;
    qt_enq(f->q, 42, 7, "params");
    for (int attempt = 1; attempt <= 3; attempt++) {
        queue_lease l;
        assert_int_equal(qt_fetch(f->q, &l, 1, 30000, 5000), 1);
        assert_int_equal(l.attempt, attempt);
        if (l.attempt < policy.max_attempts) {
            int64_t d = queue_backoff_ms(&policy, l.attempt, &rng);
            assert_int_equal(d, attempt == 1 ? 20 : 40);
            assert_int_equal(queue_nack(f->q, &l, 1, &d, err, sizeof err), 1);
        } else {
            const char *why = "boom on attempt 3";
            assert_int_equal(queue_dead(f->q, &l, 1, &why, err, sizeof err), 1);
        }
        queue_lease_clear(&l);
    }
    queue_stats st = qt_stats(f->q);
    assert_int_equal(st.dead, 1);
    assert_int_equal(st.delayed + st.leased + qt_ready_total(&st), 0);

    queue_dead_entry *list;
    size_t n;
    assert_int_equal(queue_dead_list(f->q, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, 42);
    assert_int_equal(list[0].priority, 7);
    assert_int_equal(list[0].attempt, 3);
    assert_string_equal(list[0].error, "boom on attempt 3");
    assert_string_equal(list[0].payload, "params");
    assert_true(list[0].died_ms <= wall_ms() && list[0].died_ms > wall_ms() - 10000);
    queue_dead_list_free(list, n);

    /* re-drive by id: one more attempt */
    assert_int_equal(queue_dead_retry(f->q, 999, false, err, sizeof err), 0);
    assert_int_equal(queue_dead_retry(f->q, 42, false, err, sizeof err), 1);
    assert_int_equal(queue_dead_retry(f->q, 42, false, err, sizeof err), 0);
    queue_lease l;
    assert_int_equal(qt_fetch(f->q, &l, 1, 30000, 0), 1);
    assert_int_equal(l.id, 42);
    assert_int_equal(l.attempt, 4);
    assert_string_equal(l.payload, "params");
    const char *why = "again";
    assert_int_equal(queue_dead(f->q, &l, 1, &why, err, sizeof err), 1);
    queue_lease_clear(&l);

    /* a second dead item, then retry --all, then purge */
    qt_enq(f->q, 43, 1, NULL);
    assert_int_equal(qt_fetch(f->q, &l, 1, 30000, 0), 1);
    assert_int_equal(queue_dead(f->q, &l, 1, NULL, err, sizeof err), 1);
    queue_lease_clear(&l);
    assert_int_equal(queue_dead_list(f->q, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].error, "again");
    assert_string_equal(list[1].error, "unknown error");
    assert_null(list[1].payload);
    queue_dead_list_free(list, n);
    assert_int_equal(queue_dead_retry(f->q, 0, true, err, sizeof err), 2);
    st = qt_stats(f->q);
    assert_int_equal(st.dead, 0);
    assert_int_equal(st.ready[7] + st.ready[1], 2);
    queue_lease two[2];
    assert_int_equal(qt_fetch(f->q, two, 2, 30000, 0), 2);
    const char *whys[] = {"x", "y"};
    assert_int_equal(queue_dead(f->q, two, 2, whys, err, sizeof err), 2);
    queue_leases_clear(two, 2);
    assert_int_equal(queue_dead_purge(f->q, err, sizeof err), 2);
    assert_int_equal(queue_dead_purge(f->q, err, sizeof err), 0);
    assert_int_equal(queue_dead_list(f->q, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    queue_dead_list_free(list, n);
}

static void test_release_returns_prefetched_items_to_the_front(void **state)
{
    qfx *f = *state;
    char err[512];
    for (int id = 1; id <= 3; id++)
        qt_enq(f->q, id, 5, NULL);
    queue_lease l[3];
    assert_int_equal(qt_fetch(f->q, l, 2, 30000, 0), 2);
    assert_int_equal(queue_release(f->q, l, 2, err, sizeof err), 2);
    assert_int_equal(queue_release(f->q, l, 2, err, sizeof err), 0);
    queue_leases_clear(l, 2);
    assert_int_equal(qt_fetch(f->q, l, 3, 30000, 0), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(l[i].id, i + 1);
        assert_int_equal(l[i].attempt, 1);
    }
    queue_leases_clear(l, 3);
}

static void test_ack_fetch_in_one_call(void **state)
{
    qfx *f = *state;
    char err[512];
    for (int id = 1; id <= 10; id++)
        qt_enq(f->q, id, 5, NULL);
    queue_lease a[4], b[4];
    assert_int_equal(qt_fetch(f->q, a, 4, 30000, 0), 4);
    int acked = -5;
    assert_int_equal(queue_ack_fetch(f->q, a, 4, &acked, b, 4, 30000, 0, err, sizeof err), 4);
    assert_int_equal(acked, 4);
    assert_int_equal(b[0].id, 5);
    assert_int_equal(b[3].id, 8);
    /* acking already-acked leases counts nothing */
    assert_int_equal(queue_ack_fetch(f->q, a, 4, &acked, a, 0, 30000, 0, err, sizeof err), 0);
    queue_leases_clear(a, 4);
    assert_int_equal(queue_ack_fetch(f->q, b, 4, &acked, a, 4, 30000, 0, err, sizeof err), 2);
    assert_int_equal(acked, 4);
    assert_int_equal(a[0].id, 9);
    assert_int_equal(a[1].id, 10);
    queue_leases_clear(b, 4);
    /* nothing left: the call waits for its timeout, after acking */
    int64_t t0 = mono_ms();
    assert_int_equal(queue_ack_fetch(f->q, a, 2, &acked, b, 4, 30000, 250, err, sizeof err), 0);
    assert_true(mono_ms() - t0 >= 240);
    assert_int_equal(acked, 2);
    queue_leases_clear(a, 2);
    queue_stats st = qt_stats(f->q);
    assert_int_equal(st.leased + qt_ready_total(&st), 0);
}

static void test_bulk_delayed_promotion_in_several_runs(void **state)
{
    qfx *f = *state;
    enum { N = 2300 }; /* more than one promotion run (1,000 per run) */
    static queue_item items[N];
    for (int i = 0; i < N; i++)
        items[i] = (queue_item){i + 1, i % 10, 1, NULL};
    char err[512];
    assert_int_equal(queue_enqueue_at(f->q, items, N, wall_ms() - 1, err, sizeof err), 0);
    queue_stats st = qt_stats(f->q);
    assert_int_equal(st.delayed, N);
    assert_int_equal(queue_promote_due(f->q, err, sizeof err), N);
    st = qt_stats(f->q);
    assert_int_equal(st.delayed, 0);
    assert_int_equal(qt_ready_total(&st), N);
    assert_int_equal(st.ready[9], N / 10);
}

/* Several producers and consumers at once, each on its own handle (Redis)
 * or sharing the one queue (memory): every item is delivered exactly once. */
enum { PRODUCERS = 3, CONSUMERS = 2, PER_PRODUCER = 2000 };

typedef struct crowd {
    qfx *f;
    atomic_int seen[PRODUCERS * PER_PRODUCER + 1];
    atomic_int total;
} crowd;

typedef struct worker_arg {
    crowd *c;
    int index;
} worker_arg;

static void *crowd_produce(void *arg)
{
    worker_arg *w = arg;
    queue *q = other_handle(w->c->f);
    char err[512];
    for (int i = 0; i < PER_PRODUCER; i += 50) {
        queue_item batch[50];
        for (int j = 0; j < 50; j++)
            batch[j] = (queue_item){w->index * PER_PRODUCER + i + j + 1, (i + j) % 10, 1, NULL};
        if (i % 100 == 0) {
            for (int j = 0; j < 50; j++)
                assert_int_equal(queue_enqueue(q, &batch[j], 1, err, sizeof err), 0);
        } else {
            assert_int_equal(queue_enqueue(q, batch, 50, err, sizeof err), 0);
        }
    }
    other_close(w->c->f, q);
    return NULL;
}

static void *crowd_consume(void *arg)
{
    worker_arg *w = arg;
    queue *q = other_handle(w->c->f);
    char err[512];
    queue_lease l[16];
    int64_t end = mono_ms() + 20000;
    while (atomic_load(&w->c->total) < PRODUCERS * PER_PRODUCER && mono_ms() < end) {
        int n = queue_fetch(q, l, 16, 30000, 100, err, sizeof err);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++)
            atomic_fetch_add(&w->c->seen[l[i].id], 1);
        atomic_fetch_add(&w->c->total, n);
        assert_int_equal(queue_ack(q, l, (size_t)n, err, sizeof err), n);
        queue_leases_clear(l, (size_t)n);
    }
    other_close(w->c->f, q);
    return NULL;
}

static void test_concurrent_producers_and_consumers(void **state)
{
    crowd *c = calloc(1, sizeof *c);
    c->f = *state;
    pthread_t th[PRODUCERS + CONSUMERS];
    worker_arg args[PRODUCERS + CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++) {
        args[i] = (worker_arg){c, i};
        pthread_create(&th[i], NULL, crowd_consume, &args[i]);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        args[CONSUMERS + i] = (worker_arg){c, i};
        pthread_create(&th[CONSUMERS + i], NULL, crowd_produce, &args[CONSUMERS + i]);
    }
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&c->total), PRODUCERS * PER_PRODUCER);
    for (int id = 1; id <= PRODUCERS * PER_PRODUCER; id++)
        if (atomic_load(&c->seen[id]) != 1)
            fail_msg("item %d delivered %d times", id, atomic_load(&c->seen[id]));
    queue_stats st = qt_stats(c->f->q);
    assert_int_equal(st.leased + qt_ready_total(&st), 0);
    free(c);
}

/* ---- blocking fetch, stats -------------------------------------------- */

typedef struct producer {
    qfx *f;
    atomic_int consumer_waiting;
} producer;

static bool consumer_is_waiting(void *arg)
{
    return atomic_load(&((producer *)arg)->consumer_waiting) != 0;
}

static void *produce(void *arg)
{
    producer *p = arg;
    queue *q = other_handle(p->f);
    wait_until(consumer_is_waiting, p, 5000);
    qt_enq(q, 61, 2, "woke");
    other_close(p->f, q);
    return NULL;
}

static void test_blocking_fetch_wakes_on_enqueue(void **state)
{
    qfx *f = *state;
    producer p = {f, 0};
    pthread_t th;
    pthread_create(&th, NULL, produce, &p);
    atomic_store(&p.consumer_waiting, 1);
    int64_t t0 = mono_ms();
    queue_lease l;
    assert_int_equal(qt_fetch(f->q, &l, 1, 30000, 10000), 1);
    assert_true(mono_ms() - t0 < 3000);
    assert_int_equal(l.id, 61);
    assert_string_equal(l.payload, "woke");
    pthread_join(th, NULL);
    qt_ack(f->q, &l, 1);
    queue_lease_clear(&l);
}

typedef struct sleeper {
    qfx *f;
    atomic_int state; /* 0 starting, 1 waiting, 2 got one */
    int64_t took_ms;
} sleeper;

static void *sleep_fetch(void *arg)
{
    sleeper *s = arg;
    queue *q = other_handle(s->f);
    char err[512];
    queue_lease l;
    atomic_store(&s->state, 1);
    int n = queue_fetch(q, &l, 1, 30000, 10000, err, sizeof err);
    if (n == 1) {
        queue_ack(q, &l, 1, err, sizeof err);
        queue_lease_clear(&l);
        atomic_store(&s->state, 2);
    }
    other_close(s->f, q);
    return NULL;
}

static bool both_waiting(void *arg)
{
    sleeper *s = arg;
    return atomic_load(&s[0].state) == 1 && atomic_load(&s[1].state) == 1;
}

static bool both_served(void *arg)
{
    sleeper *s = arg;
    return atomic_load(&s[0].state) == 2 && atomic_load(&s[1].state) == 2;
}

/* Two idle consumers, one bulk enqueue of two items: the first consumer
 * woken passes the wake-up on, so both are served long before their
 * timeout. */
static void test_one_enqueue_wakes_every_needed_consumer(void **state)
{
    qfx *f = *state;
    sleeper s[2] = {{f, 0, 0}, {f, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, sleep_fetch, &s[i]);
    assert_true(wait_until(both_waiting, s, 5000));
    int64_t t0 = mono_ms();
    queue_item items[2] = {{1, 5, 1, NULL}, {2, 5, 1, NULL}};
    char err[512];
    assert_int_equal(queue_enqueue(f->q, items, 2, err, sizeof err), 0);
    assert_true(wait_until(both_served, s, 5000));
    assert_true(mono_ms() - t0 < 3000);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
}

static void test_idle_fetch_waits_for_its_timeout(void **state)
{
    qfx *f = *state;
    queue_lease l;
    int64_t t0 = mono_ms();
    assert_int_equal(qt_fetch(f->q, &l, 4, 30000, 300), 0);
    int64_t el = mono_ms() - t0;
    assert_true(el >= 290);
    assert_true(el < 3000);
}

static void test_stats_counts_every_state(void **state)
{
    qfx *f = *state;
    for (int i = 0; i < 3; i++)
        qt_enq(f->q, 100 + i, 9, NULL);
    qt_enq(f->q, 200, 0, NULL);
    qt_enq(f->q, 201, 0, NULL);
    qt_enq_at(f->q, 300, 4, wall_ms() + 60000);
    queue_lease l;
    assert_int_equal(qt_fetch(f->q, &l, 1, 30000, 0), 1);
    queue_stats st = qt_stats(f->q);
    assert_int_equal(st.ready[9], 2);
    assert_int_equal(st.ready[0], 2);
    assert_int_equal(qt_ready_total(&st), 4);
    assert_int_equal(st.delayed, 1);
    assert_int_equal(st.leased, 1);
    assert_int_equal(st.dead, 0);
    assert_true(st.lag_ms[9] >= 0 && st.lag_ms[9] < 10000);
    assert_int_equal(st.lag_ms[5], 0);
    queue_lease_clear(&l);
}

#define SUITE(S)                                                                         \
    cmocka_unit_test_setup_teardown(test_priority_order_and_fifo, S, teardown),          \
    cmocka_unit_test_setup_teardown(test_fetch_one_at_a_time_follows_priority, S, teardown), \
    cmocka_unit_test_setup_teardown(test_bulk_enqueue_and_batched_fetch, S, teardown),   \
    cmocka_unit_test_setup_teardown(test_payload_round_trip, S, teardown),               \
    cmocka_unit_test_setup_teardown(test_bad_items_are_refused, S, teardown),            \
    cmocka_unit_test_setup_teardown(test_delayed_item_waits_until_due, S, teardown),     \
    cmocka_unit_test_setup_teardown(test_delayed_items_come_due_in_order, S, teardown),  \
    cmocka_unit_test_setup_teardown(test_promote_due_moves_due_items, S, teardown),      \
    cmocka_unit_test_setup_teardown(test_expired_lease_is_reclaimed, S, teardown),       \
    cmocka_unit_test_setup_teardown(test_requeue_expired_puts_items_in_front, S, teardown), \
    cmocka_unit_test_setup_teardown(test_heartbeat_keeps_item_leased, S, teardown),      \
    cmocka_unit_test_setup_teardown(test_ack_removes, S, teardown),                      \
    cmocka_unit_test_setup_teardown(test_ack_fetch_in_one_call, S, teardown),            \
    cmocka_unit_test_setup_teardown(test_many_leases_acked_in_random_order, S, teardown), \
    cmocka_unit_test_setup_teardown(test_reclaim_takes_only_expired_leases, S, teardown), \
    cmocka_unit_test_setup_teardown(test_nack_moves_to_delayed_with_next_attempt, S, teardown), \
    cmocka_unit_test_setup_teardown(test_dead_letter_after_last_attempt_then_retry_and_purge, S, teardown), \
    cmocka_unit_test_setup_teardown(test_release_returns_prefetched_items_to_the_front, S, teardown), \
    cmocka_unit_test_setup_teardown(test_blocking_fetch_wakes_on_enqueue, S, teardown),  \
    cmocka_unit_test_setup_teardown(test_one_enqueue_wakes_every_needed_consumer, S, teardown), \
    cmocka_unit_test_setup_teardown(test_idle_fetch_waits_for_its_timeout, S, teardown), \
    cmocka_unit_test_setup_teardown(test_stats_counts_every_state, S, teardown),         \
    cmocka_unit_test_setup_teardown(test_bulk_delayed_promotion_in_several_runs, S, teardown), \
    cmocka_unit_test_setup_teardown(test_concurrent_producers_and_consumers, S, teardown)

static int start_redis(void **state)
{
    if (testredis_start(&redis, NULL) != 0)
        return -1;
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d/0", redis.port);
    return 0;
}

static int stop_redis(void **state)
{
    testredis_stop(&redis);
    return 0;
}

int main(void)
{
    const struct CMUnitTest memory[] = {SUITE(setup_memory)};
    const struct CMUnitTest redis_tests[] = {SUITE(setup_redis)};
    int failed = cmocka_run_group_tests_name("queue_memory", memory, NULL, NULL);
    failed += cmocka_run_group_tests_name("queue_redis", redis_tests, start_redis, stop_redis);
    return failed ? 1 : 0;
}
