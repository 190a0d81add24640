/*
 * bench_live.c - the scheduler itself against a real store (a throw-away
 * PostgreSQL, made durable again: fsync, synchronous_commit and
 * full_page_writes on) and a real redis-server, both started like the tests
 * do (tests/lib/testenv.h).
 *
 * Loaded into the store with COPY: `ntasks` tasks with random expressions
 * and zones (priority 5, concurrency forbid: nothing consumes the queue, so
 * from their second fire on they are refused and recorded as skipped), a
 * crowd of `ntasks` tasks `S * * * * *` all due at the same second S of
 * every minute (priority 3, forbid), and one `* * * * * *` task "tick"
 * (priority 9, concurrency allow). Then the scheduler runs in a thread and
 * this prints:
 *   - load: COPY time, the scheduler's start to all tasks loaded, and its
 *     memory per task (mallinfo2 delta around that load);
 *   - burst 1: the crowd's first fire: from the due second until the last
 *     of them is in the queue (its enqueue stamp, read back from Redis),
 *     recorded in the store (checked by count);
 *   - burst 2: the crowd's next fire a minute later, every one refused by
 *     `forbid` (the first is still queued) and recorded as skipped: until
 *     the last skipped row's statement started (its completed_at);
 *   - tick: lag (enqueue stamp minus due) p50/p99/max over the whole run,
 *     which spans both bursts, and its worst in the seconds of a burst.
 */
#include "bench.h"

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "queue.h"
#include "scheduler.h"
#include "store.h"
#include "testenv.h"
#include "util.h"

#define PREFIX "bench"

static testpg pg;
static testredis rd;
static char conninfo[600];

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_live: %s: %s\n", what, msg);
    testredis_stop(&rd);
    testpg_stop(&pg);
    exit(1);
}

static PGconn *connect_db(void)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        die("connect", PQerrorMessage(c));
    return c;
}

static int64_t sql_i64(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die(sql, PQerrorMessage(c));
    int64_t v = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* COPY the three groups of tasks into scheduled_tasks. */
static void copy_tasks(PGconn *c, size_t ntasks, int burst_sec, char **zones, size_t nz)
{
    PGresult *r = PQexec(c, "COPY scheduled_tasks (name, task_type, cron_schedule, timezone, "
                            "priority, concurrency) FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN)
        die("COPY", PQerrorMessage(c));
    PQclear(r);
    strbuf sb = {0};
    for (size_t i = 0; i < ntasks; i++) {
        char expr[64];
        bench_random_expr(expr, sizeof expr);
        sb_printf(&sb, "r%07zu\texample\t%s\t%s\t5\tforbid\n", i, expr,
                  zones[bench_rnd() % nz]);
        sb_printf(&sb, "b%07zu\texample\t%d * * * * *\t%s\t3\tforbid\n", i, burst_sec,
                  zones[bench_rnd() % nz]);
        if (sb.len > (1u << 20)) {
            if (PQputCopyData(c, sb.buf, (int)sb.len) != 1)
                die("COPY data", PQerrorMessage(c));
            sb.len = 0;
        }
    }
    sb_printf(&sb, "tick\texample\t* * * * * *\tUTC\t9\tallow\n");
    if (PQputCopyData(c, sb.buf, (int)sb.len) != 1 || PQputCopyEnd(c, NULL) != 1)
        die("COPY end", PQerrorMessage(c));
    sb_free(&sb);
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("COPY", PQerrorMessage(c));
    PQclear(r);
    PQclear(PQgetResult(c));
}

/* The old path, one fire at a time: the overlap check, then the insert.
 * Returns the microseconds taken for ids[0..n). */
static int64_t fire_one_by_one(store *s, const int64_t *ids, size_t n, int64_t at_ms)
{
    char err[512];
    int64_t t0 = mono_us();
    for (size_t i = 0; i < n; i++) {
        int64_t *act, eid;
        size_t na;
        bool created;
        if (store_task_active(s, ids[i], &act, &na, err, sizeof err) < 0 ||
            store_fire(s, ids[i], at_ms, STORE_QUEUED, 0, &eid, &created, err, sizeof err) < 0)
            die("store_fire", err);
        free(act);
    }
    return mono_us() - t0;
}

/* The new path: store_fire_batch, 1024 fires a statement, forbid checked
 * in it. Returns the microseconds taken for ids[0..n). */
static int64_t fire_batched(store *s, const int64_t *ids, size_t n, int64_t at_ms)
{
    char err[512];
    store_fire_item *items = xcalloc(1024, sizeof *items);
    int64_t t0 = mono_us();
    for (size_t off = 0; off < n; off += 1024) {
        size_t m = n - off < 1024 ? n - off : 1024;
        for (size_t i = 0; i < m; i++)
            items[i] = (store_fire_item){.task_id = ids[off + i], .scheduled_for_ms = at_ms,
                                         .initial = STORE_QUEUED, .skip_if_active = true};
        if (store_fire_batch(s, items, m, err, sizeof err) != (int)m)
            die("store_fire_batch", err);
    }
    int64_t us = mono_us() - t0;
    free(items);
    return us;
}

/* The store's share of a burst, old path against new, interleaved, on
 * 4 x n tasks of the crowd at instants of 2020 (deleted afterwards). */
static void compare_store_paths(PGconn *c, size_t n)
{
    char err[512], sql[160];
    snprintf(sql, sizeof sql, "SELECT id FROM scheduled_tasks WHERE name LIKE 'b%%' ORDER BY id "
             "LIMIT %zu", 4 * n);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || (size_t)PQntuples(r) < 4 * n)
        die("compare", PQerrorMessage(c));
    int64_t *ids = xcalloc(4 * n, sizeof *ids);
    for (size_t i = 0; i < 4 * n; i++)
        ids[i] = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
    PQclear(r);
    store *s = store_open(conninfo, err, sizeof err);
    if (!s)
        die("store", err);
    int64_t at = 1577836800000; /* 2020-01-01 */
    int64_t one = fire_one_by_one(s, ids, n, at);
    int64_t bat = fire_batched(s, ids + n, n, at);
    one += fire_one_by_one(s, ids + 2 * n, n, at);
    bat += fire_batched(s, ids + 3 * n, n, at);
    store_close(s);
    free(ids);
    PQclear(PQexec(c, "DELETE FROM task_executions WHERE scheduled_for < '2021-01-01'"));
    printf("store per fire   one by one (the old path: overlap query + store_fire, 2 round "
           "trips and a commit each) %.1f us; store_fire_batch (1024 a statement, forbid "
           "inside) %.1f us: %.1fx (2 x %zu fires each, interleaved)\n",
           (double)one / (double)(2 * n), (double)bat / (double)(2 * n),
           (double)one / (double)(bat ? bat : 1), n);
}

typedef struct runner {
    scheduler *sc;
    pthread_t th;
    volatile sig_atomic_t stop;
} runner;

static void *run_thread(void *arg)
{
    runner *r = arg;
    char err[512];
    if (scheduler_run(r->sc, &r->stop, err, sizeof err) < 0)
        fprintf(stderr, "scheduler_run: %s\n", err);
    return NULL;
}

static runner run;
static int want_tasks;

static bool tasks_loaded(void *arg)
{
    (void)arg;
    sched_stats st;
    scheduler_stats(run.sc, &st);
    return st.tasks >= want_tasks;
}

static queue *probe;
static int64_t want_ready;

static bool burst_enqueued(void *arg)
{
    (void)arg;
    queue_stats st;
    char err[256];
    return queue_stats_get(probe, &st, err, sizeof err) == 0 && st.ready[3] >= want_ready;
}

static bool time_reached(void *arg)
{
    return wall_ms() >= *(const int64_t *)arg;
}

/* ready_us of a queue member "P|A|R|ID|payload"; sets *id. */
static int64_t member_ready(const char *m, int64_t *id)
{
    long long p, a, ready, ident;
    if (sscanf(m, "%lld|%lld|%lld|%lld|", &p, &a, &ready, &ident) != 4)
        return -1;
    *id = ident;
    return ready;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The tick's lags (us) from Redis list q:9 and the store; prints them. */
static void report_tick(redisContext *rc, PGconn *c, int64_t burst1_ms)
{
    PGresult *r = PQexec(c, "SELECT id, (extract(epoch FROM scheduled_for) * 1000)::bigint "
                            "FROM task_executions WHERE task_name = 'tick' ORDER BY id");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("tick executions", PQerrorMessage(c));
    int n = PQntuples(r);
    redisReply *rep = redisCommand(rc, "LRANGE {" PREFIX "}:q:9 0 -1");
    if (!rep || rep->type != REDIS_REPLY_ARRAY)
        die("LRANGE", rc->errstr);
    int64_t *lag = xcalloc(rep->elements + 1, sizeof *lag);
    size_t nl = 0;
    int64_t worst_b1 = 0, worst_b2 = 0;
    for (size_t i = 0; i < rep->elements; i++) {
        int64_t id = 0, ready = member_ready(rep->element[i]->str, &id);
        /* ids of one table are dense enough: find the row by bisection */
        int lo = 0, hi = n;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (strtoll(PQgetvalue(r, mid, 0), NULL, 10) < id)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (ready < 0 || lo == n || strtoll(PQgetvalue(r, lo, 0), NULL, 10) != id)
            continue;
        int64_t due = strtoll(PQgetvalue(r, lo, 1), NULL, 10);
        lag[nl++] = ready - due * 1000;
        int64_t since = due - burst1_ms;
        if (ready - due * 1000 > 20000 && getenv("BENCH_VERBOSE"))
            fprintf(stderr, "tick due at burst1%+.0f s: lag %.1f ms\n", (double)since / 1e3,
                    (double)(ready - due * 1000) / 1e3);
        if (since >= 0 && since <= 2000 && ready - due * 1000 > worst_b1)
            worst_b1 = ready - due * 1000;
        if (since >= 60000 && since <= 62000 && ready - due * 1000 > worst_b2)
            worst_b2 = ready - due * 1000;
    }
    freeReplyObject(rep);
    PQclear(r);
    if (!nl) {
        printf("tick             no fire found in the queue\n");
        free(lag);
        return;
    }
    qsort(lag, nl, sizeof *lag, cmp_i64);
    printf("tick lag         p50 %.2f ms, p99 %.2f ms, max %.2f ms over %zu fires of "
           "`* * * * * *` (enqueue stamp minus due); target p99 <= 5 ms\n",
           (double)lag[nl / 2] / 1e3, (double)lag[nl * 99 / 100] / 1e3,
           (double)lag[nl - 1] / 1e3, nl);
    printf("tick lag         worst in the 3 seconds from burst 1: %.2f ms; from burst 2: "
           "%.2f ms\n",
           (double)worst_b1 / 1e3, (double)worst_b2 / 1e3);
    free(lag);
}

/* Burst 1: all of the crowd in the queue and in the store. */
static void report_burst1(redisContext *rc, PGconn *c, size_t ntasks, int64_t due_ms)
{
    want_ready = (int64_t)ntasks;
    if (!wait_until(burst_enqueued, NULL, due_ms - wall_ms() + 120000)) {
        printf("burst 1          not all %zu enqueued within 120 s of the due second\n",
               ntasks);
        return;
    }
    int64_t seen = wall_ms();
    redisReply *rep = redisCommand(rc, "LINDEX {" PREFIX "}:q:3 0"); /* the last LPUSHed */
    int64_t id = 0, ready = rep && rep->type == REDIS_REPLY_STRING
                                ? member_ready(rep->str, &id)
                                : -1;
    freeReplyObject(rep);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM task_executions WHERE priority = 3 AND status = 'queued' "
             "AND scheduled_for = to_timestamp(%lld / 1000.0)",
             (long long)due_ms);
    int64_t stored = sql_i64(c, sql);
    printf("burst 1          %zu tasks due at the same second: the last enqueued %.0f ms "
           "after it (seen by the bench at %.0f ms); %lld recorded in the store as queued; "
           "target <= 2000 ms\n",
           ntasks, (double)(ready - due_ms * 1000) / 1e3, (double)(seen - due_ms),
           (long long)stored);
}

/* Burst 2: every fire of the crowd refused by forbid, recorded as skipped. */
static void report_burst2(PGconn *c, size_t ntasks, int64_t due_ms)
{
    char sql[320];
    snprintf(sql, sizeof sql,
             "SELECT count(*), (extract(epoch FROM max(completed_at)) * 1000)::bigint "
             "FROM task_executions WHERE priority = 3 AND status = 'skipped' "
             "AND scheduled_for = to_timestamp(%lld / 1000.0)",
             (long long)due_ms);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("burst 2", PQerrorMessage(c));
    long long n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    long long last = PQgetisnull(r, 0, 1) ? 0 : strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    printf("burst 2          the same %zu a minute later, all refused (concurrency forbid): "
           "%lld recorded as skipped, the last batch's statement started %lld ms after the "
           "due second\n",
           ntasks, n, last ? last - (long long)due_ms : -1LL);
}

/* Start the servers, make the store durable, write the config. */
static pgr_config *setup(const char *dir, bool durable_store)
{
    if (!getenv("PGR_SOURCE_DIR"))
        setenv("PGR_SOURCE_DIR", PGR_BENCH_SOURCE_DIR, 1);
    if (testpg_start(&pg) < 0 || testredis_start(&rd, NULL) < 0)
        die("servers", "cannot start PostgreSQL or redis-server (see above)");
    const char *durable[] = {"ALTER SYSTEM SET fsync = on",
                             "ALTER SYSTEM SET synchronous_commit = on",
                             "ALTER SYSTEM SET full_page_writes = on", "SELECT pg_reload_conf()",
                             "CREATE DATABASE bench"};
    for (size_t i = durable_store ? 0 : 3; i < sizeof durable / sizeof *durable; i++)
        if (testpg_exec(&pg, durable[i]) < 0)
            die("setup", durable[i]);
    testpg_conninfo_db(&pg, "bench", conninfo, sizeof conninfo);
    char path[300], *errs = NULL;
    snprintf(path, sizeof path, "%s/pgreviewer.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        die("config", path);
    fprintf(f, "store: {url: \"%s\"}\nqueue: {url: \"unix://%s\", prefix: " PREFIX "}\n"
               "logging: {level: warning}\n",
            conninfo, rd.socket);
    fclose(f);
    pgr_config *cfg = config_load(path, &errs);
    if (!cfg)
        die("config", errs ? errs : "?");
    return cfg;
}

int bench_live(size_t ntasks, char **zones, size_t nz, bool durable)
{
    char dir[] = "/tmp/pgr-bench-XXXXXX", err[512];
    if (!mkdtemp(dir))
        die("mkdtemp", dir);
    pgr_config *cfg = setup(dir, durable);
    printf("store            %s\n",
           durable ? "durable: fsync, synchronous_commit and full_page_writes on"
                   : "as the tests run it: fsync, synchronous_commit and full_page_writes off");
    log_configure("warning", "text");
    store *s = store_open(conninfo, err, sizeof err);
    if (!s || store_migrate(s, err, sizeof err) < 0)
        die("store", err);
    store_close(s);
    PGconn *c = connect_db();

    /* the burst second: far enough ahead for COPY and the load */
    int64_t a = wall_ms();
    int burst_sec = (int)(((a / 1000) + 40) % 60);
    copy_tasks(c, ntasks, burst_sec, zones, nz);
    PQclear(PQexec(c, "ANALYZE"));
    double copy_ms = (double)(wall_ms() - a);
    compare_store_paths(c, ntasks >= 10000 ? 2500 : ntasks / 4);

    queue *q = queue_open(cfg->queue.url, PREFIX, err, sizeof err);
    probe = queue_open(cfg->queue.url, PREFIX, err, sizeof err);
    if (!q || !probe)
        die("queue", err);
    run.sc = scheduler_new(cfg, q, 100, err, sizeof err);
    if (!run.sc)
        die("scheduler", err);
    want_tasks = (int)(2 * ntasks + 1);
    struct mallinfo2 m0 = mallinfo2();
    a = wall_ms();
    pthread_create(&run.th, NULL, run_thread, &run);
    if (!wait_until(tasks_loaded, NULL, 600000))
        die("load", "the scheduler did not load every task within 10 minutes");
    int64_t loaded = wall_ms();
    struct mallinfo2 m1 = mallinfo2();
    double per_task = ((double)(m1.uordblks + m1.hblkhd) - (double)(m0.uordblks + m0.hblkhd)) /
                      (double)want_tasks;
    printf("store load       %d tasks written with COPY (+ ANALYZE) in %.0f ms; the scheduler "
           "started and loaded them in %lld ms\n",
           want_tasks, copy_ms, (long long)(loaded - a));
    printf("memory per task  %.1f B in the running scheduler (mallinfo2 delta around its "
           "start and load, %d tasks); target <= 300 B\n",
           per_task, want_tasks);

    /* the first burst second after the load */
    int64_t due = loaded - loaded % 1000;
    while ((due / 1000) % 60 != burst_sec)
        due += 1000;
    redisContext *rc = redisConnectUnix(rd.socket);
    if (!rc || rc->err)
        die("redis", rc ? rc->errstr : "no memory");
    report_burst1(rc, c, ntasks, due);
    int64_t end = due + 60000 + 5000; /* past the second burst */
    wait_until(time_reached, &end, end - wall_ms() + 1000);
    run.stop = 1;
    pthread_join(run.th, NULL);
    report_burst2(c, ntasks, due + 60000);
    report_tick(rc, c, due);
    sched_stats st;
    scheduler_stats(run.sc, &st);
    printf("scheduler        %lld fires, %lld skipped over the run; lag of its latest fires "
           "(all tasks) p50 %.1f ms p99 %.1f ms\n",
           (long long)st.fires, (long long)st.skipped, (double)st.lag_p50_us / 1e3,
           (double)st.lag_p99_us / 1e3);
    redisFree(rc);
    scheduler_free(run.sc);
    queue_close(q);
    queue_close(probe);
    PQfinish(c);
    config_free(cfg);
    testredis_stop(&rd);
    testpg_stop(&pg);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return 0;
}
