/*
 * test_queue_units.c - the queue's pure functions: URL parsing (every form,
 * every error message, passwords never shown) and the retry back-off
 * (exact values without jitter, statistical bounds with full and equal
 * jitter).
 */
#include "qtest.h"

static void parse_ok(const char *url, queue_url *u)
{
    char err[512] = "";
    if (queue_url_parse(url, u, err, sizeof err) != 0)
        fail_msg("%s: %s", url, err);
}

static void parse_fails(const char *url, const char *want)
{
    char err[512] = "";
    queue_url u;
    assert_int_equal(queue_url_parse(url, &u, err, sizeof err), -1);
    assert_string_equal(err, want);
}

static void test_url_memory(void **state)
{
    queue_url u;
    parse_ok("memory:", &u);
    assert_int_equal(u.kind, QUEUE_MEMORY);
    parse_ok("", &u);
    assert_int_equal(u.kind, QUEUE_MEMORY);
    assert_int_equal(queue_url_parse(NULL, &u, NULL, 0), 0);
    assert_int_equal(u.kind, QUEUE_MEMORY);
}

static void test_url_tcp_forms(void **state)
{
    queue_url u;
    parse_ok("redis://127.0.0.1:6380/2", &u);
    assert_int_equal(u.kind, QUEUE_REDIS_TCP);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_null(u.user);
    assert_null(u.password);
    queue_url_free(&u);

    parse_ok("redis://redis.internal", &u);
    assert_string_equal(u.host, "redis.internal");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    queue_url_free(&u);

    parse_ok("redis://worker:p%40ss%3Aword@10.0.0.5:7000/15", &u);
    assert_string_equal(u.user, "worker");
    assert_string_equal(u.password, "p@ss:word");
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 15);
    queue_url_free(&u);

    parse_ok("redis://:onlypass@localhost/", &u);
    assert_null(u.user);
    assert_string_equal(u.password, "onlypass");
    assert_int_equal(u.db, 0);
    queue_url_free(&u);

    parse_ok("redis://secret@localhost", &u); /* a bare word is a password */
    assert_null(u.user);
    assert_string_equal(u.password, "secret");
    queue_url_free(&u);

    parse_ok("redis://[::1]:6390/1", &u);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 1);
    queue_url_free(&u);
}

static void test_url_unix_forms(void **state)
{
    queue_url u;
    parse_ok("unix:///run/redis/redis.sock", &u);
    assert_int_equal(u.kind, QUEUE_REDIS_UNIX);
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_int_equal(u.db, 0);
    queue_url_free(&u);

    parse_ok("unix://app:pw@/tmp/r.sock?db=3", &u);
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "pw");
    assert_int_equal(u.db, 3);
    queue_url_free(&u);
}

static void test_url_errors(void **state)
{
    parse_fails("http://x", "queue url http://x: unknown scheme; expected "
                "redis://[user:pass@]host[:port][/db], unix://[user:pass@]/path/to/socket[?db=N] or memory:");
    parse_fails("redis://host:99999/0", "queue url redis://host:99999/0: port must be a number 1..65535");
    parse_fails("redis://host:abc", "queue url redis://host:abc: port must be a number 1..65535");
    parse_fails("redis://host/x", "queue url redis://host/x: the database after '/' must be a number (0, 1, ...)");
    parse_fails("redis://:6379", "queue url redis://:6379: no host; expected redis://[user:pass@]host[:port][/db]");
    parse_fails("redis://[::1:6379", "queue url redis://[::1:6379: missing ']' after an IPv6 address");
    parse_fails("unix://relative.sock", "queue url unix://relative.sock: expected unix://[user:pass@]/path/to/socket[?db=N]");
    parse_fails("unix:///s.sock?database=1", "queue url unix:///s.sock?database=1: the only query parameter is db=N (a number)");
    /* the password never appears in a message */
    parse_fails("redis://u:hunter2@host:bad/0", "queue url redis://u:***@host:bad/0: port must be a number 1..65535");
    parse_fails("redis://u:hun%zzter@host/0", "queue url redis://u:***@host/0: bad percent-escape in user or password");
}

static void test_url_redact(void **state)
{
    char buf[256];
    assert_string_equal(queue_url_redact("redis://u:pw@h:1/0", buf, sizeof buf), "redis://u:***@h:1/0");
    assert_string_equal(queue_url_redact("redis://h:1/0", buf, sizeof buf), "redis://h:1/0");
    assert_string_equal(queue_url_redact("unix://:pw@/s?db=1", buf, sizeof buf), "unix://:***@/s?db=1");
    assert_string_equal(queue_url_redact(NULL, buf, sizeof buf), "memory:");
}

static void test_open_refuses_bad_prefix_and_unreachable_redis(void **state)
{
    char err[512];
    assert_null(queue_open(NULL, "a{b}", err, sizeof err));
    assert_string_equal(err, "queue prefix \"a{b}\": must not contain '{' or '}'");
    /* port 1 on loopback: nothing listens there */
    assert_null(queue_open("redis://:pw@127.0.0.1:1/0", NULL, err, sizeof err));
    assert_non_null(strstr(err, "queue redis://127.0.0.1:1/0: cannot connect: "));
    assert_null(strstr(err, "pw"));
}

/* Random mutations of valid URLs: parse never crashes, and either succeeds
 * or says why (ASan/UBSan builds check the memory side). */
static void test_url_parse_survives_garbage(void **state)
{
    static const char *const seeds[] = {
        "redis://u:p@host:6379/1", "unix://u:p@/tmp/s.sock?db=2", "redis://[::1]:1/0",
        "redis://:%41%42@h", "memory:",
    };
    static const char alphabet[] = "redis:/unix@[]?%=:0123456789abcdefABCDEF.-_ ";
    uint64_t x = 88172645463325252ULL;
    for (int round = 0; round < 20000; round++) {
        char buf[64];
        const char *seed = seeds[round % 5];
        size_t n = strlen(seed);
        memcpy(buf, seed, n + 1);
        for (int k = 0; k < 3; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t pos = (size_t)(x % (n + 1));
            char c = alphabet[(x >> 20) % (sizeof alphabet - 1)];
            if ((x >> 40) % 3 == 0 && n > 0) { /* delete */
                memmove(buf + pos, buf + pos + 1, n - pos);
                n = strlen(buf);
            } else if (pos < n) {
                buf[pos] = c;
            } else if (n + 1 < sizeof buf) {
                buf[n++] = c;
                buf[n] = '\0';
            }
        }
        queue_url u;
        char err[512] = "";
        if (queue_url_parse(buf, &u, err, sizeof err) == 0) {
            assert_true(u.kind == QUEUE_MEMORY || u.host || u.path);
            queue_url_free(&u);
        } else {
            assert_true(strncmp(err, "queue url ", 10) == 0);
        }
    }
}

/* ---- back-off ---------------------------------------------------------- */

static void test_backoff_without_jitter_is_exact_and_capped(void **state)
{
    cfg_retry p = {5, 1000, 2.0, 10000, JITTER_NONE};
    uint64_t rng = 7;
    int64_t want[] = {1000, 2000, 4000, 8000, 10000, 10000};
    for (int a = 1; a <= 6; a++)
        assert_int_equal(queue_backoff_ms(&p, a, &rng), want[a - 1]);
    assert_int_equal(queue_backoff_ms(&p, 0, &rng), 1000); /* below 1 counts as 1 */
    assert_int_equal(queue_backoff_ms(&p, 10000, &rng), 10000); /* no overflow */
    cfg_retry flat = {5, 30000, 1.0, 600000, JITTER_NONE};
    assert_int_equal(queue_backoff_ms(&flat, 9, &rng), 30000);
    cfg_retry triple = {5, 100, 3.0, 0, JITTER_NONE}; /* max_delay 0: no cap */
    assert_int_equal(queue_backoff_ms(&triple, 4, &rng), 2700);
}

typedef struct draws {
    int64_t min, max;
    double mean;
} draws;

static draws sample(const cfg_retry *p, int attempt, int n, uint64_t seed)
{
    draws d = {INT64_MAX, INT64_MIN, 0};
    uint64_t rng = seed;
    for (int i = 0; i < n; i++) {
        int64_t v = queue_backoff_ms(p, attempt, &rng);
        d.min = v < d.min ? v : d.min;
        d.max = v > d.max ? v : d.max;
        d.mean += (double)v / n;
    }
    return d;
}

static void test_backoff_full_jitter_bounds(void **state)
{
    cfg_retry p = {5, 1000, 2.0, 10000, JITTER_FULL};
    for (int a = 1; a <= 6; a++) {
        int64_t base = a >= 5 ? 10000 : 1000LL << (a - 1);
        draws d = sample(&p, a, 20000, 12345 + (uint64_t)a);
        assert_true(d.min >= 0);
        assert_true(d.max <= base);
        /* uniform on [0, base]: mean base/2 (+-3%), both ends reached */
        assert_true(d.mean > base * 0.47 && d.mean < base * 0.53);
        assert_true(d.min < base * 0.01);
        assert_true(d.max > base * 0.99);
    }
}

static void test_backoff_equal_jitter_bounds(void **state)
{
    cfg_retry p = {5, 1000, 2.0, 10000, JITTER_EQUAL};
    for (int a = 1; a <= 6; a++) {
        int64_t base = a >= 5 ? 10000 : 1000LL << (a - 1);
        draws d = sample(&p, a, 20000, 999 + (uint64_t)a);
        assert_true(d.min >= base / 2);
        assert_true(d.max <= base);
        assert_true(d.mean > base * 0.73 && d.mean < base * 0.77);
        assert_true(d.min < base / 2 + base * 0.01);
        assert_true(d.max > base * 0.99);
    }
}

static void test_backoff_same_seed_same_sequence(void **state)
{
    cfg_retry p = {5, 1000, 2.0, 10000, JITTER_FULL};
    uint64_t a = 77, b = 77;
    for (int i = 0; i < 100; i++)
        assert_int_equal(queue_backoff_ms(&p, 3, &a), queue_backoff_ms(&p, 3, &b));
    /* NULL state works too (thread-local) */
    int64_t v = queue_backoff_ms(&p, 3, NULL);
    assert_true(v >= 0 && v <= 4000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_memory),
        cmocka_unit_test(test_url_tcp_forms),
        cmocka_unit_test(test_url_unix_forms),
        cmocka_unit_test(test_url_errors),
        cmocka_unit_test(test_url_redact),
        cmocka_unit_test(test_url_parse_survives_garbage),
        cmocka_unit_test(test_open_refuses_bad_prefix_and_unreachable_redis),
        cmocka_unit_test(test_backoff_without_jitter_is_exact_and_capped),
        cmocka_unit_test(test_backoff_full_jitter_bounds),
        cmocka_unit_test(test_backoff_equal_jitter_bounds),
        cmocka_unit_test(test_backoff_same_seed_same_sequence),
    };
    return cmocka_run_group_tests_name("queue_units", tests, NULL, NULL);
}
