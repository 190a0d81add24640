/*
 * test_sched_batch.c - batched firing against a real store (PostgreSQL)
 * and Redis: store_fire_batch (the same batch twice creates nothing the
 * second time; mixed created / existing / unknown / repeated keys; a bad
 * status refused), store_tasks_active, and a burst of 3,000 tasks due at
 * the same second fired by the scheduler: every fire recorded and enqueued
 * exactly once, `forbid` and `replace` applied to a whole batch, and a
 * `* * * * * *` task due at that second fired ahead of the crowd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "queue.h"
#include "scheduler.h"
#include "store.h"
#include "testenv.h"
#include "util.h"

static testpg pg;
static testredis rd;
static char dir[64];
static int db_seq;
static char conninfo[600];

/* A fresh database with `tasks_yaml` synced, and a config on it. */
static pgr_config *make_config(const char *tasks_yaml)
{
    char sql[128], path[128], db[32], *errs = NULL;
    snprintf(db, sizeof db, "batch_%d", ++db_seq);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    assert_int_equal(testpg_exec(&pg, sql), 0);
    testpg_conninfo_db(&pg, db, conninfo, sizeof conninfo);
    snprintf(path, sizeof path, "%s/pgreviewer.yaml", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "store: {url: \"%s\"}\nqueue: {url: \"unix://%s\", prefix: b%d}\n"
               "logging: {level: warning}\ntasks:\n%s",
            conninfo, rd.socket, db_seq, tasks_yaml);
    fclose(f);
    pgr_config *cfg = config_load(path, &errs);
    if (!cfg)
        fail_msg("%s", errs);
    free(errs);
    char err[512];
    store *s = store_open_config(cfg, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    assert_int_equal(store_sync_tasks(s, cfg, NULL, err, sizeof err), 0);
    store_close(s);
    return cfg;
}

static PGconn *db(void)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("%s", PQerrorMessage(c));
    return c;
}

static long sql_long(const char *sql)
{
    PGconn *c = db();
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    long v = PQntuples(r) && !PQgetisnull(r, 0, 0) ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    PQfinish(c);
    return v;
}

static void sql_exec(const char *sql)
{
    PGconn *c = db();
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static int64_t task_id(const char *name)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT id FROM scheduled_tasks WHERE name = '%s'", name);
    return sql_long(sql);
}

static const char three_tasks[] =
    "  - {name: a, type: example, schedule: \"0 0 1 1 *\"}\n"
    "  - {name: b, type: example, schedule: \"0 0 1 1 *\"}\n"
    "  - {name: c, type: example, schedule: \"0 0 1 1 *\"}\n";

static void test_fire_batch_idempotent(void **state)
{
    (void)state;
    pgr_config *cfg = make_config(three_tasks);
    char err[512];
    store *s = store_open_config(cfg, err, sizeof err);
    int64_t a = task_id("a"), b = task_id("b"), c = task_id("c");
    int64_t t = 1795305600000; /* 2026-11-22T00:00:00Z */
    store_fire_item items[3] = {
        {.task_id = a, .scheduled_for_ms = t, .initial = STORE_QUEUED},
        {.task_id = b, .scheduled_for_ms = t, .initial = STORE_SCHEDULED,
         .not_before_ms = t + 1500},
        {.task_id = c, .scheduled_for_ms = t, .initial = STORE_SKIPPED,
         .reason = "concurrency forbid: \"quoted\" \\ reason"},
    };
    assert_int_equal(store_fire_batch(s, items, 3, err, sizeof err), 3);
    int64_t ids[3];
    for (int i = 0; i < 3; i++) {
        assert_true(items[i].created);
        assert_true(items[i].exec_id > 0);
        ids[i] = items[i].exec_id;
    }
    assert_true(ids[0] != ids[1] && ids[1] != ids[2]);
    store_execution e;
    assert_int_equal(store_exec_get(s, ids[0], &e, err, sizeof err), 0);
    assert_int_equal(e.status, STORE_QUEUED);
    assert_string_equal(e.task_name, "a");
    assert_string_equal(e.trigger, "schedule");
    assert_int_equal(e.scheduled_for_ms, t);
    assert_true(e.queued_at_ms > 0);
    store_execution_clear(&e);
    assert_int_equal(store_exec_get(s, ids[1], &e, err, sizeof err), 0);
    assert_int_equal(e.status, STORE_SCHEDULED);
    assert_int_equal(e.not_before_ms, t + 1500);
    store_execution_clear(&e);
    assert_int_equal(store_exec_get(s, ids[2], &e, err, sizeof err), 0);
    assert_int_equal(e.status, STORE_SKIPPED);
    assert_string_equal(e.skipped_reason, "concurrency forbid: \"quoted\" \\ reason");
    assert_true(e.completed_at_ms > 0);
    store_execution_clear(&e);

    /* The same batch again: nothing created, the existing ids given back. */
    for (int i = 0; i < 3; i++)
        items[i].exec_id = -1;
    assert_int_equal(store_fire_batch(s, items, 3, err, sizeof err), 0);
    for (int i = 0; i < 3; i++) {
        assert_false(items[i].created);
        assert_int_equal(items[i].exec_id, ids[i]);
    }
    assert_int_equal(sql_long("SELECT count(*) FROM task_executions"), 3);

    /* Mixed: existing, new, unknown task, a key repeated in the batch. */
    store_fire_item mixed[5] = {
        {.task_id = a, .scheduled_for_ms = t, .initial = STORE_QUEUED},
        {.task_id = a, .scheduled_for_ms = t + 1000, .initial = STORE_QUEUED},
        {.task_id = 999999, .scheduled_for_ms = t, .initial = STORE_QUEUED},
        {.task_id = b, .scheduled_for_ms = t + 1000, .initial = STORE_PENDING},
        {.task_id = b, .scheduled_for_ms = t + 1000, .initial = STORE_QUEUED},
    };
    assert_int_equal(store_fire_batch(s, mixed, 5, err, sizeof err), 2);
    assert_false(mixed[0].created);
    assert_int_equal(mixed[0].exec_id, ids[0]);
    assert_true(mixed[1].created);
    assert_false(mixed[2].created);
    assert_int_equal(mixed[2].exec_id, 0);
    assert_true(mixed[3].created);
    assert_false(mixed[4].created);
    assert_int_equal(mixed[4].exec_id, mixed[3].exec_id);
    assert_int_equal(sql_long("SELECT count(*) FROM task_executions"), 5);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM task_executions WHERE id = %lld AND "
             "status = 'pending'", (long long)mixed[3].exec_id);
    assert_int_equal(sql_long(sql), 1);

    /* A single store_fire sees the batch's rows, and the other way round. */
    int64_t id;
    bool created;
    assert_int_equal(store_fire(s, a, t + 1000, STORE_QUEUED, 0, &id, &created, err,
                                sizeof err), 0);
    assert_false(created);
    assert_int_equal(id, mixed[1].exec_id);
    assert_int_equal(store_fire(s, c, t + 2000, STORE_QUEUED, 0, &id, &created, err,
                                sizeof err), 0);
    store_fire_item one = {.task_id = c, .scheduled_for_ms = t + 2000, .initial = STORE_QUEUED};
    assert_int_equal(store_fire_batch(s, &one, 1, err, sizeof err), 0);
    assert_int_equal(one.exec_id, id);

    /* A status a fire cannot start in is refused, naming the item. */
    store_fire_item bad[2] = {
        {.task_id = a, .scheduled_for_ms = t + 5000, .initial = STORE_QUEUED},
        {.task_id = b, .scheduled_for_ms = t + 5000, .initial = STORE_RUNNING},
    };
    assert_int_equal(store_fire_batch(s, bad, 2, err, sizeof err), -1);
    char want[160];
    snprintf(want, sizeof want, "store_fire_batch: item 1 (task %lld): initial status must be "
             "pending, queued, scheduled or skipped, not running", (long long)b);
    assert_string_equal(err, want);
    assert_int_equal(store_fire_batch(s, NULL, 0, err, sizeof err), 0);

    /* Unfinished executions of many tasks in one query: a has 2 queued
     * (t, t+1000), b has 1 scheduled and 1 pending, c has its skipped one
     * (finished) and one queued. */
    int64_t ask[3] = {a, b, c};
    store_active *act;
    size_t n;
    assert_int_equal(store_tasks_active(s, ask, 3, &act, &n, err, sizeof err), 0);
    assert_int_equal(n, 5);
    assert_int_equal(act[0].task_id, a);
    assert_int_equal(act[0].exec_id, ids[0]);
    assert_int_equal(act[1].task_id, a);
    assert_int_equal(act[2].task_id, b);
    assert_int_equal(act[2].exec_id, ids[1]);
    assert_int_equal(act[4].task_id, c);
    assert_int_equal(act[4].exec_id, id);
    free(act);

    /* forbid in the INSERT: a's fire is skipped, naming its oldest
     * unfinished execution; c's without the flag is queued. */
    store_fire_item fb[2] = {
        {.task_id = a, .scheduled_for_ms = t + 9000, .initial = STORE_QUEUED,
         .skip_if_active = true},
        {.task_id = c, .scheduled_for_ms = t + 9000, .initial = STORE_QUEUED},
    };
    assert_int_equal(store_fire_batch(s, fb, 2, err, sizeof err), 2);
    assert_true(fb[0].created && fb[0].skipped_now);
    snprintf(want, sizeof want, "concurrency forbid: execution %lld of this task has not "
             "finished", (long long)ids[0]);
    assert_string_equal(fb[0].skipped_reason, want);
    assert_int_equal(store_exec_get(s, fb[0].exec_id, &e, err, sizeof err), 0);
    assert_int_equal(e.status, STORE_SKIPPED);
    assert_string_equal(e.skipped_reason, want);
    store_execution_clear(&e);
    assert_true(fb[1].created && !fb[1].skipped_now);
    assert_int_equal(store_exec_get(s, fb[1].exec_id, &e, err, sizeof err), 0);
    assert_int_equal(e.status, STORE_QUEUED);
    store_execution_clear(&e);
    store_close(s);
    config_free(cfg);
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

static char due_sql[256];
static bool burst_recorded(void *arg)
{
    (void)arg;
    return sql_long(due_sql) >= 3001;
}

#define BURST 3000

static void test_burst_of_3000(void **state)
{
    (void)state;
    pgr_config *cfg = make_config(
        "  - {name: tick, type: example, schedule: \"* * * * * *\", concurrency: allow, "
        "priority: 9}\n");
    /* 3,000 tasks due at the same second S, S at least 5 s ahead:
     * 1-1000 allow, 1001-2000 forbid and 2001-3000 replace, those two with
     * an unfinished execution from a second ago. */
    int64_t now = wall_ms();
    int64_t due = now - now % 1000 + 6000;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO scheduled_tasks (name, task_type, cron_schedule, timezone, "
             "concurrency, priority) SELECT 'b' || g, 'example', '%d * * * * *', 'UTC', "
             "CASE WHEN g <= 1000 THEN 'allow' WHEN g <= 2000 THEN 'forbid' ELSE 'replace' END, "
             "3 FROM generate_series(1, %d) g",
             (int)(due / 1000 % 60), BURST);
    sql_exec(sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO task_executions (scheduled_task_id, task_name, task_type, status, "
             "scheduled_for, priority) SELECT id, name, task_type, 'queued', "
             "to_timestamp(%lld / 1000.0), 3 FROM scheduled_tasks "
             "WHERE concurrency <> 'allow' AND name <> 'tick'",
             (long long)(now - now % 1000 - 1000));
    sql_exec(sql);
    assert_int_equal(sql_long("SELECT count(*) FROM task_executions"), 2000);

    char err[512];
    queue *q = queue_open(cfg->queue.url, cfg->queue.prefix, err, sizeof err);
    assert_non_null(q);
    runner r = {0};
    r.sc = scheduler_new(cfg, q, 100, err, sizeof err);
    assert_non_null(r.sc);
    pthread_create(&r.th, NULL, run_thread, &r);
    snprintf(due_sql, sizeof due_sql,
             "SELECT count(*) FROM task_executions WHERE scheduled_for = "
             "to_timestamp(%lld / 1000.0)",
             (long long)due);
    bool done = wait_until(burst_recorded, NULL, due - wall_ms() + 30000);
    r.stop = 1;
    pthread_join(r.th, NULL);
    scheduler_free(r.sc);
    assert_true(done);

    /* Recorded once each: allow and replace queued, forbid skipped; the
     * fires of a second ago that replace found were cancelled. */
    char w[512];
    snprintf(w, sizeof w, "%s AND priority = 3 AND status = 'queued'", due_sql);
    assert_int_equal(sql_long(w), 2000);
    snprintf(w, sizeof w, "%s AND status = 'skipped' AND skipped_reason LIKE "
             "'concurrency forbid: execution %% of this task has not finished'", due_sql);
    assert_int_equal(sql_long(w), 1000);
    assert_int_equal(sql_long("SELECT count(*) FROM task_executions e JOIN scheduled_tasks t "
                              "ON t.id = e.scheduled_task_id WHERE t.concurrency = 'replace' "
                              "AND e.status = 'cancelled'"),
                     1000);
    assert_int_equal(sql_long("SELECT count(*) FROM task_executions e JOIN scheduled_tasks t "
                              "ON t.id = e.scheduled_task_id WHERE t.concurrency = 'forbid' "
                              "AND e.status = 'queued'"),
                     1000);
    /* The tick due at S went ahead of the crowd due at S. */
    snprintf(w, sizeof w, "SELECT CASE WHEN (SELECT id FROM task_executions WHERE task_name = "
             "'tick' AND scheduled_for = to_timestamp(%lld / 1000.0)) < (SELECT min(id) FROM "
             "task_executions WHERE priority = 3 AND scheduled_for = to_timestamp(%lld / "
             "1000.0)) THEN 1 ELSE 0 END",
             (long long)due, (long long)due);
    assert_int_equal(sql_long(w), 1);

    /* Enqueued exactly once: every queued execution of the crowd is in the
     * queue once, and nothing else of priority 3 is. */
    queue_stats st;
    assert_int_equal(queue_stats_get(q, &st, err, sizeof err), 0);
    assert_int_equal(st.ready[3], 2000);
    int64_t *seen = xcalloc(BURST * 4, sizeof *seen);
    size_t n_seen = 0;
    queue_lease l[500];
    int got;
    while ((got = queue_fetch(q, l, 500, 60000, 0, err, sizeof err)) > 0) {
        for (int i = 0; i < got; i++) {
            if (l[i].priority == 3)
                seen[n_seen++] = l[i].id;
            queue_lease_clear(&l[i]);
        }
    }
    assert_int_equal(got, 0);
    assert_int_equal(n_seen, 2000);
    PGconn *c = db();
    strbuf arr = {0};
    sb_append(&arr, "{");
    for (size_t i = 0; i < n_seen; i++)
        sb_printf(&arr, "%s%lld", i ? "," : "", (long long)seen[i]);
    sb_append(&arr, "}");
    const char *pv[] = {arr.buf};
    snprintf(w, sizeof w, "SELECT count(DISTINCT x), count(*) FILTER (WHERE e.status = "
             "'queued' AND e.priority = 3 AND e.scheduled_for = to_timestamp(%lld / 1000.0)) "
             "FROM unnest($1::bigint[]) x JOIN task_executions e ON e.id = x",
             (long long)due);
    PGresult *res = PQexecParams(c, w, 1, NULL, pv, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(atol(PQgetvalue(res, 0, 0)), 2000); /* no id twice */
    assert_int_equal(atol(PQgetvalue(res, 0, 1)), 2000); /* each one a fire of S */
    PQclear(res);
    PQfinish(c);
    sb_free(&arr);
    free(seen);
    queue_close(q);
    config_free(cfg);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pgr-batch-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    if (testpg_start(&pg) < 0 || testredis_start(&rd, NULL) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    testpg_stop(&pg);
    testredis_stop(&rd);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run_capture(cmd, NULL);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fire_batch_idempotent),
        cmocka_unit_test(test_burst_of_3000),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
