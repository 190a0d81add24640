/*
 * test_queue_redis.c - what only the Redis backend has: every key under the
 * `{prefix}:` hash tag, AUTH with a password and with an ACL user, the db
 * from the URL, unix sockets, the NOSCRIPT fallback, and a Redis restart in
 * the middle of a run (appendonly yes): nothing lost, nothing duplicated,
 * and the clients reconnect by themselves, a blocked consumer included.
 */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "qtest.h"

static testredis plain, secured, durable;

static redisContext *raw(const testredis *r, const char *auth)
{
    redisContext *c = redisConnectUnix(r->socket);
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    if (auth) {
        redisReply *rep = redisCommand(c, "AUTH %s", auth);
        assert_int_equal(rep->type, REDIS_REPLY_STATUS);
        freeReplyObject(rep);
    }
    return c;
}

static long long raw_int(redisContext *c, const char *cmd, const char *arg)
{
    redisReply *rep = arg ? redisCommand(c, cmd, arg) : redisCommand(c, cmd);
    assert_non_null(rep);
    if (rep->type != REDIS_REPLY_INTEGER)
        fail_msg("%s: reply type %d %s", cmd, rep->type, rep->str ? rep->str : "");
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

static char *url_tcp(const testredis *r, const char *userinfo, int db)
{
    return xasprintf("redis://%s%s127.0.0.1:%d/%d", userinfo ? userinfo : "", userinfo ? "@" : "",
                     r->port, db);
}

/* ---- keys ---------------------------------------------------------------- */

static void test_every_key_is_under_the_hash_tag(void **state)
{
    char *url = url_tcp(&plain, NULL, 0);
    queue *q = qt_open(url, "tagged");
    char err[512];
    qt_enq(q, 1, 9, NULL);
    qt_enq(q, 2, 0, NULL);
    qt_enq(q, 3, 5, NULL);
    qt_enq_at(q, 4, 5, wall_ms() + 60000);
    queue_lease l[2];
    assert_int_equal(qt_fetch(q, l, 2, 30000, 0), 2); /* leased, seq, notify */
    const char *why = "x";
    assert_int_equal(queue_dead(q, &l[1], 1, &why, err, sizeof err), 1);

    redisContext *c = raw(&plain, NULL);
    redisReply *rep = redisCommand(c, "KEYS *");
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    int seen = 0;
    for (size_t i = 0; i < rep->elements; i++) {
        const char *k = rep->element[i]->str;
        if (strncmp(k, "{tagged}:", 9) != 0)
            fail_msg("key \"%s\" is not under {tagged}:", k);
        seen += strcmp(k, "{tagged}:delayed") == 0 || strcmp(k, "{tagged}:leased") == 0 ||
                strcmp(k, "{tagged}:dead") == 0 || strcmp(k, "{tagged}:seq") == 0 ||
                strcmp(k, "{tagged}:q:0") == 0;
    }
    assert_int_equal(seen, 5);
    /* all in one cluster slot */
    redisReply *s1 = redisCommand(c, "CLUSTER KEYSLOT {tagged}:q:0");
    redisReply *s2 = redisCommand(c, "CLUSTER KEYSLOT {tagged}:dead");
    if (s1->type == REDIS_REPLY_INTEGER) /* only answered by cluster-enabled servers */
        assert_int_equal(s1->integer, s2->integer);
    freeReplyObject(s1);
    freeReplyObject(s2);
    freeReplyObject(rep);
    redisFree(c);
    queue_leases_clear(l, 2);
    queue_close(q);
    free(url);
}

static void test_two_prefixes_do_not_see_each_other(void **state)
{
    char *url = url_tcp(&plain, NULL, 0);
    queue *a = qt_open(url, "alpha"), *b = qt_open(url, "beta");
    qt_enq(a, 1, 5, NULL);
    queue_lease l;
    assert_int_equal(qt_fetch(b, &l, 1, 30000, 0), 0);
    assert_int_equal(qt_fetch(a, &l, 1, 30000, 0), 1);
    qt_ack(a, &l, 1);
    queue_lease_clear(&l);
    queue_close(a);
    queue_close(b);
    free(url);
}

/* ---- auth, db, unix socket -------------------------------------------- */

static void roundtrip_one(queue *q, int64_t id)
{
    qt_enq(q, id, 3, NULL);
    queue_lease l;
    assert_int_equal(qt_fetch(q, &l, 1, 30000, 0), 1);
    assert_int_equal(l.id, id);
    assert_int_equal(qt_ack(q, &l, 1), 1);
    queue_lease_clear(&l);
}

static void test_password_auth(void **state)
{
    char *url = url_tcp(&secured, ":s3cret", 0);
    queue *q = qt_open(url, "auth");
    roundtrip_one(q, 1);
    queue_close(q);
    free(url);

    char err[512];
    url = url_tcp(&secured, ":wrong-pass", 0);
    assert_null(queue_open(url, "auth", err, sizeof err));
    assert_non_null(strstr(err, "authentication failed: WRONGPASS"));
    assert_null(strstr(err, "wrong-pass"));
    free(url);

    url = url_tcp(&secured, NULL, 0);
    assert_null(queue_open(url, "auth", err, sizeof err));
    assert_non_null(strstr(err, "NOAUTH"));
    free(url);
}

static void test_acl_user_and_database(void **state)
{
    char *url = url_tcp(&secured, "worker:w0rker", 3);
    queue *q = qt_open(url, "acl");
    qt_enq(q, 77, 6, NULL);
    redisContext *c = raw(&secured, "s3cret");
    assert_int_equal(raw_int(c, "EXISTS %s", "{acl}:q:6"), 0); /* not in db 0 */
    freeReplyObject(redisCommand(c, "SELECT 3"));
    assert_int_equal(raw_int(c, "LLEN %s", "{acl}:q:6"), 1);
    redisFree(c);
    queue_lease l;
    assert_int_equal(qt_fetch(q, &l, 1, 30000, 0), 1);
    assert_int_equal(l.id, 77);
    qt_ack(q, &l, 1);
    queue_lease_clear(&l);
    queue_close(q);
    free(url);

    char err[512];
    url = url_tcp(&secured, "worker:nope", 3);
    assert_null(queue_open(url, "acl", err, sizeof err));
    assert_non_null(strstr(err, "queue redis://worker@127.0.0.1:"));
    assert_non_null(strstr(err, "authentication failed"));
    free(url);
}

static void test_unix_socket_with_db(void **state)
{
    char *url = xasprintf("unix://%s?db=2", plain.socket);
    queue *q = qt_open(url, "sock");
    qt_enq(q, 5, 1, NULL);
    redisContext *c = raw(&plain, NULL);
    freeReplyObject(redisCommand(c, "SELECT 2"));
    assert_int_equal(raw_int(c, "LLEN %s", "{sock}:q:1"), 1);
    redisFree(c);
    queue_lease l;
    assert_int_equal(qt_fetch(q, &l, 1, 30000, 0), 1);
    qt_ack(q, &l, 1);
    queue_lease_clear(&l);
    queue_close(q);
    free(url);
}

static void test_noscript_falls_back_to_eval(void **state)
{
    char *url = url_tcp(&plain, NULL, 0);
    queue *q = qt_open(url, "flush");
    redisContext *c = raw(&plain, NULL);
    freeReplyObject(redisCommand(c, "SCRIPT FLUSH"));
    roundtrip_one(q, 9); /* fetch runs EVAL after NOSCRIPT, which reloads it */
    roundtrip_one(q, 10);
    redisFree(c);
    queue_close(q);
    free(url);
}

/* ---- restart ------------------------------------------------------------- */

static void restart(testredis *r)
{
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s/tests/lib/redis_harness.sh restart %s", test_source_dir(), r->dir);
    int rc = run_capture(cmd, &out);
    if (rc != 0)
        fail_msg("restart failed (%d): %s", rc, out ? out : "");
    free(out);
}

static void test_restart_loses_and_duplicates_nothing(void **state)
{
    enum { N = 300, HELD = 40 };
    char *url = url_tcp(&durable, NULL, 0);
    queue *q = qt_open(url, "durable");
    queue_item items[N];
    for (int i = 0; i < N; i++)
        items[i] = (queue_item){i + 1, i % 10, 1, "p"};
    char err[512];
    assert_int_equal(queue_enqueue(q, items, N, err, sizeof err), 0);
    queue_lease held[HELD];
    assert_int_equal(qt_fetch(q, held, HELD, 30000, 0), HELD);

    restart(&durable);

    /* the first call after the restart notices the dead connection,
     * reconnects and retries by itself: our leases survived */
    bool ok[HELD];
    assert_int_equal(queue_heartbeat(q, held, HELD, 30000, ok, err, sizeof err), HELD);
    static int seen[N + 1];
    for (int i = 0; i < HELD; i++)
        seen[held[i].id]++;
    assert_int_equal(qt_ack(q, held, HELD), HELD);
    queue_leases_clear(held, HELD);

    int got = HELD;
    while (got < N) {
        queue_lease l[64];
        int n = qt_fetch(q, l, 64, 30000, 2000);
        assert_true(n > 0);
        for (int i = 0; i < n; i++)
            seen[l[i].id]++;
        assert_int_equal(qt_ack(q, l, (size_t)n), n);
        queue_leases_clear(l, (size_t)n);
        got += n;
    }
    for (int id = 1; id <= N; id++)
        if (seen[id] != 1)
            fail_msg("item %d seen %d times", id, seen[id]);
    queue_stats st = qt_stats(q);
    assert_int_equal(qt_ready_total(&st) + st.leased + st.delayed + st.dead, 0);
    assert_true(queue_connected(q));
    queue_close(q);
    free(url);
}

typedef struct consumer {
    char *url;
    atomic_int state; /* 0 starting, 1 waiting, 2 got it */
    int64_t id;
    int errors;
} consumer;

static void *consume(void *arg)
{
    consumer *c = arg;
    queue *q = qt_open(c->url, "resume");
    atomic_store(&c->state, 1);
    int64_t end = mono_ms() + 20000;
    while (mono_ms() < end) {
        char err[512];
        queue_lease l;
        int n = queue_fetch(q, &l, 1, 30000, 1000, err, sizeof err);
        if (n < 0) {
            c->errors++; /* Redis down: the worker loop just calls again */
            continue;
        }
        if (n == 1) {
            c->id = l.id;
            queue_ack(q, &l, 1, err, sizeof err);
            queue_lease_clear(&l);
            break;
        }
    }
    queue_close(q);
    atomic_store(&c->state, 2);
    return NULL;
}

static bool consumer_waiting(void *arg)
{
    return atomic_load(&((consumer *)arg)->state) == 1;
}

static bool consumer_done(void *arg)
{
    return atomic_load(&((consumer *)arg)->state) == 2;
}

static void test_blocked_consumer_resumes_after_restart(void **state)
{
    consumer c = {url_tcp(&durable, NULL, 0), 0, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, consume, &c);
    assert_true(wait_until(consumer_waiting, &c, 5000));
    restart(&durable); /* the consumer is in BLPOP (or about to be) */
    queue *q = qt_open(c.url, "resume");
    qt_enq(q, 4242, 5, NULL);
    assert_true(wait_until(consumer_done, &c, 15000));
    pthread_join(th, NULL);
    assert_int_equal(c.id, 4242);
    queue_stats st = qt_stats(q);
    assert_int_equal(st.leased + qt_ready_total(&st), 0);
    queue_close(q);
    free(c.url);
}

/* A consumer process killed with -9 while holding leases loses nothing:
 * its items come back after the lease, once each, with the same attempt. */
static void test_killed_consumer_loses_nothing(void **state)
{
    enum { N = 100 };
    char *url = url_tcp(&plain, NULL, 0);
    queue *q = qt_open(url, "kill9");
    queue_item items[N];
    for (int i = 0; i < N; i++)
        items[i] = (queue_item){i + 1, i % 10, 1, NULL};
    char err[512];
    assert_int_equal(queue_enqueue(q, items, N, err, sizeof err), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        queue *cq = queue_open(url, "kill9", err, sizeof err);
        static queue_lease l[N];
        int n = cq ? queue_fetch(cq, l, N, 400, 0, err, sizeof err) : -1;
        char c = n == N ? 'y' : 'n';
        if (write(fds[1], &c, 1) != 1)
            _exit(1);
        pause(); /* holds the leases until killed */
        _exit(0);
    }
    char c = 0;
    ssize_t r = read(fds[0], &c, 1);
    kill(pid, SIGKILL); /* first, so a failing assert leaves no child behind */
    waitpid(pid, NULL, 0);
    assert_int_equal(r, 1);
    assert_int_equal(c, 'y');
    close(fds[0]);
    close(fds[1]);
    queue_stats st = qt_stats(q);
    assert_int_equal(st.leased, N);

    static int seen[N + 1];
    int got = 0;
    int64_t end = mono_ms() + 10000;
    while (got < N && mono_ms() < end) {
        queue_lease l[32];
        int n = qt_fetch(q, l, 32, 30000, 2000); /* wakes at the lease expiry */
        for (int i = 0; i < n; i++) {
            seen[l[i].id]++;
            assert_int_equal(l[i].attempt, 1);
        }
        assert_int_equal(qt_ack(q, l, (size_t)n), n);
        queue_leases_clear(l, (size_t)n);
        got += n;
    }
    assert_int_equal(got, N);
    for (int id = 1; id <= N; id++)
        assert_int_equal(seen[id], 1);
    queue_close(q);
    free(url);
}

static bool answers_ping(void *arg)
{
    const testredis *r = arg;
    redisContext *c = redisConnectUnix(r->socket);
    bool ok = false;
    if (c && !c->err) {
        redisReply *rep = redisCommand(c, "PING");
        ok = rep && rep->type == REDIS_REPLY_STATUS;
        if (rep)
            freeReplyObject(rep);
    }
    if (c)
        redisFree(c);
    return ok;
}

static void test_outage_is_reported_then_resumed(void **state)
{
    char *url = url_tcp(&durable, NULL, 0);
    char *sock_url = xasprintf("unix://%s", durable.socket);
    queue *q = qt_open(url, "outage");
    queue *qs = qt_open(sock_url, "outage"); /* a write to a dead unix socket raises SIGPIPE */
    qt_enq(q, 1, 5, NULL);
    char cmd[1024], err[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "redis-cli -s %s shutdown", durable.socket);
    run_capture(cmd, NULL);
    assert_false(wait_until(answers_ping, &durable, 0));

    /* while Redis is down: calls fail with the reason, fetch waits its
     * timeout (no spinning), and the handle says it is disconnected */
    queue_lease l;
    int64_t t0 = mono_ms();
    assert_int_equal(queue_fetch(q, &l, 1, 30000, 300, err, sizeof err), -1);
    assert_true(mono_ms() - t0 >= 250);
    assert_non_null(strstr(err, "queue redis://127.0.0.1:"));
    assert_false(queue_connected(q));
    queue_stats st;
    assert_int_equal(queue_stats_get(q, &st, err, sizeof err), -1);
    assert_int_equal(queue_stats_get(qs, &st, err, sizeof err), -1);
    assert_false(queue_connected(qs));

    snprintf(cmd, sizeof cmd, "redis-server %s/redis.conf", durable.dir);
    assert_int_equal(run_capture(cmd, &out), 0);
    free(out);
    assert_true(wait_until(answers_ping, &durable, 10000));

    /* back: the next fetch (within its timeout, after the back-off)
     * reconnects and the item is there */
    assert_int_equal(qt_fetch(q, &l, 1, 30000, 10000), 1);
    assert_int_equal(l.id, 1);
    assert_true(queue_connected(q));
    assert_int_equal(qt_ack(q, &l, 1), 1);
    queue_lease_clear(&l);
    st = qt_stats(qs); /* the socket handle is back too */
    assert_int_equal(st.leased, 0);
    queue_close(q);
    queue_close(qs);
    free(url);
    free(sock_url);
}

static int start_all(void **state)
{
    static const char *const secured_conf[] = {"requirepass s3cret",
                                               "user worker on >w0rker ~* +@all", NULL};
    static const char *const durable_conf[] = {"appendonly yes", NULL};
    if (testredis_start(&plain, NULL) != 0 || testredis_start(&secured, secured_conf) != 0 ||
        testredis_start(&durable, durable_conf) != 0)
        return -1;
    return 0;
}

static int stop_all(void **state)
{
    testredis_stop(&plain);
    testredis_stop(&secured);
    testredis_stop(&durable);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key_is_under_the_hash_tag),
        cmocka_unit_test(test_two_prefixes_do_not_see_each_other),
        cmocka_unit_test(test_password_auth),
        cmocka_unit_test(test_acl_user_and_database),
        cmocka_unit_test(test_unix_socket_with_db),
        cmocka_unit_test(test_noscript_falls_back_to_eval),
        cmocka_unit_test(test_killed_consumer_loses_nothing),
        cmocka_unit_test(test_restart_loses_and_duplicates_nothing),
        cmocka_unit_test(test_blocked_consumer_resumes_after_restart),
        cmocka_unit_test(test_outage_is_reported_then_resumed),
    };
    return cmocka_run_group_tests_name("queue_redis_specific", tests, start_all, stop_all);
}
