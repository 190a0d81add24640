/*
 * test_scheduler.c - the scheduler against a real store (PostgreSQL) and
 * queue: fires of a `* * * * * *` task, `concurrency: forbid` recording
 * skipped fires, the three misfire policies after downtime, manual
 * executions enqueued, and fail-over between two `pgreviewer scheduler`
 * processes when the leader is killed with -9: afterwards every due second
 * has exactly one execution, none missing, none doubled.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "queue.h"
#include "scheduler.h"
#include "store.h"
#include "testenv.h"

static testpg pg;
static testredis rd;
static char dir[64];
static int db_seq;
static char conninfo[600];

/* A fresh database per test case, and a config on it. */
static pgr_config *make_config(const char *tasks_yaml, const char *extra)
{
    char sql[128], path[128], *errs = NULL;
    snprintf(sql, sizeof sql, "CREATE DATABASE sched_%d", ++db_seq);
    assert_int_equal(testpg_exec(&pg, sql), 0);
    char db[32];
    snprintf(db, sizeof db, "sched_%d", db_seq);
    testpg_conninfo_db(&pg, db, conninfo, sizeof conninfo);
    snprintf(path, sizeof path, "%s/pgreviewer.yaml", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "store: {url: \"%s\"}\n%s\nlogging: {level: warning}\ntasks:\n%s", conninfo,
            extra ? extra : "", tasks_yaml);
    fclose(f);
    pgr_config *cfg = config_load(path, &errs);
    if (!cfg)
        fail_msg("%s", errs);
    free(errs);
    return cfg;
}

/* A number from SQL; with `tolerant`, -1 when the query fails (e.g. the
 * schema is not there yet). */
static long sql_try_long(const char *sql, bool tolerant)
{
    PGconn *c = PQconnectdb(conninfo);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        if (tolerant) {
            PQclear(r);
            PQfinish(c);
            return -1;
        }
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    }
    long v = PQntuples(r) ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    PQfinish(c);
    return v;
}

static long sql_long(const char *sql)
{
    return sql_try_long(sql, false);
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

static void start(runner *r, pgr_config *cfg, queue *q)
{
    char err[512];
    memset(r, 0, sizeof *r);
    r->sc = scheduler_new(cfg, q, 100, err, sizeof err);
    if (!r->sc)
        fail_msg("%s", err);
    pthread_create(&r->th, NULL, run_thread, r);
}

static void stop(runner *r)
{
    r->stop = 1;
    pthread_join(r->th, NULL);
    scheduler_free(r->sc);
}

static const char *count_sql;
static long count_min;
static bool count_reached(void *arg)
{
    (void)arg;
    return sql_try_long(count_sql, true) >= count_min;
}

static void wait_count(const char *sql, long n, int64_t timeout_ms)
{
    count_sql = sql;
    count_min = n;
    if (!wait_until(count_reached, NULL, timeout_ms))
        fail_msg("waited %lld ms for \"%s\" to reach %ld; it is %ld", (long long)timeout_ms,
                 sql, n, sql_long(sql));
}

static void test_fires_every_second(void **state)
{
    (void)state;
    pgr_config *cfg = make_config(
        "  - {name: tick, type: example, schedule: \"* * * * * *\", concurrency: allow}\n", NULL);
    char err[512];
    queue *q = queue_open(NULL, "t", err, sizeof err);
    runner r;
    start(&r, cfg, q);
    wait_count("SELECT count(*) FROM task_executions", 3, 10000);
    stop(&r);
    /* Distinct whole seconds, consecutive, all queued, one queue item each. */
    long n = sql_long("SELECT count(*) FROM task_executions");
    assert_int_equal(sql_long("SELECT count(DISTINCT scheduled_for) FROM task_executions"), n);
    assert_int_equal(sql_long("SELECT count(*) FROM task_executions WHERE "
                              "extract(milliseconds FROM scheduled_for)::int % 1000 <> 0"),
                     0);
    assert_int_equal(sql_long("SELECT extract(epoch FROM max(scheduled_for) - "
                              "min(scheduled_for))::int + 1 FROM task_executions"),
                     n);
    assert_int_equal(sql_long("SELECT count(*) FROM task_executions WHERE status = 'queued'"), n);
    queue_stats st;
    assert_int_equal(queue_stats_get(q, &st, err, sizeof err), 0);
    long ready = 0;
    for (int p = 0; p < QUEUE_PRIORITIES; p++)
        ready += st.ready[p];
    assert_int_equal(ready, n);
    queue_close(q);
    config_free(cfg);
}

static void test_forbid_skips(void **state)
{
    (void)state;
    pgr_config *cfg = make_config(
        "  - {name: tick, type: example, schedule: \"* * * * * *\", concurrency: forbid}\n", NULL);
    char err[512];
    queue *q = queue_open(NULL, "t", err, sizeof err);
    runner r;
    start(&r, cfg, q);
    /* Nothing consumes the queue: the first execution stays unfinished. */
    wait_count("SELECT count(*) FROM task_executions WHERE status = 'skipped'", 2, 10000);
    stop(&r);
    assert_int_equal(sql_long("SELECT count(*) FROM task_executions WHERE status = 'queued'"), 1);
    assert_int_equal(sql_long("SELECT count(*) FROM task_executions WHERE status = 'skipped' "
                              "AND skipped_reason LIKE 'concurrency forbid: execution % of this "
                              "task has not finished'"),
                     sql_long("SELECT count(*) FROM task_executions WHERE status = 'skipped'"));
    queue_close(q);
    config_free(cfg);
}

/* A task that fires every minute and last fired 10 minutes ago. */
static void misfire_case(const char *policy, long want_new)
{
    char tasks[512];
    snprintf(tasks, sizeof tasks,
             "  - {name: m, type: example, schedule: \"* * * * *\", concurrency: allow, "
             "misfire: {policy: %s, grace: 1h, max_runs: 3}}\n",
             policy);
    pgr_config *cfg = make_config(tasks, NULL);
    char err[512];
    store *s = store_open_config(cfg, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(store_migrate(s, err, sizeof err), 0);
    assert_int_equal(store_sync_tasks(s, cfg, NULL, err, sizeof err), 0);
    store_task t;
    assert_int_equal(store_task_get(s, "m", &t, err, sizeof err), 0);
    int64_t now = wall_ms(), minute = now - now % 60000;
    int64_t id;
    bool created;
    assert_int_equal(store_fire(s, t.id, minute - 10 * 60000, STORE_QUEUED, 0, &id, &created,
                                err, sizeof err),
                     0);
    store_task_clear(&t);
    store_close(s);
    queue *q = queue_open(NULL, "t", err, sizeof err);
    runner r;
    start(&r, cfg, q);
    if (want_new)
        wait_count("SELECT count(*) FROM task_executions", 1 + want_new, 10000);
    else
        wait_count("SELECT 1", 1, 1000); /* give it its start-up pass */
    sched_stats st;
    bool loaded = false;
    for (int i = 0; i < 2000 && !loaded; i++) { /* bounded: until it has loaded the task */
        scheduler_stats(r.sc, &st);
        loaded = st.tasks == 1;
        if (!loaded) {
            struct timespec d = {0, 5000000};
            nanosleep(&d, NULL);
        }
    }
    stop(&r);
    assert_true(loaded);
    /* The missed fires run are the latest ones; a new minute may have
     * started meanwhile and added its own regular fire. */
    char sql[256];
    for (long k = 1; k <= want_new; k++) {
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM task_executions WHERE scheduled_for = "
                 "to_timestamp(%lld / 1000.0)",
                 (long long)(minute - (k - 1) * 60000));
        assert_int_equal(sql_long(sql), 1);
    }
    long total = sql_long("SELECT count(*) FROM task_executions");
    long crossed = (wall_ms() / 60000 != now / 60000) ? 1 : 0;
    assert_true(total >= 1 + want_new && total <= 1 + want_new + crossed);
    if (!want_new)
        assert_true(st.missed_dropped >= 1);
    queue_close(q);
    config_free(cfg);
}

static void test_misfire_run_all(void **state)
{
    (void)state;
    misfire_case("run_all", 3);
}

static void test_misfire_run_once(void **state)
{
    (void)state;
    misfire_case("run_once", 1);
}

static void test_misfire_skip(void **state)
{
    (void)state;
    misfire_case("skip", 0);
}

static void test_manual_execution_enqueued(void **state)
{
    (void)state;
    pgr_config *cfg = make_config("  - {name: manual, type: example, priority: 6}\n", NULL);
    char err[512];
    queue *q = queue_open(NULL, "t", err, sizeof err);
    runner r;
    start(&r, cfg, q);
    wait_count("SELECT count(*) FROM scheduled_tasks", 1, 10000);
    store *s = store_open_config(cfg, err, sizeof err);
    int64_t id;
    assert_int_equal(store_trigger(s, "manual", NULL, &id, err, sizeof err), 0);
    wait_count("SELECT count(*) FROM task_executions WHERE status = 'queued'", 1, 10000);
    stop(&r);
    queue_stats st;
    assert_int_equal(queue_stats_get(q, &st, err, sizeof err), 0);
    assert_int_equal(st.ready[6], 1);
    store_close(s);
    queue_close(q);
    config_free(cfg);
}

/* ---- fail-over between two processes ---------------------------------- */

static pid_t children[2];

static pid_t spawn_scheduler(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        freopen("/dev/null", "w", stdout);
        execl(getenv("PGR_BIN"), "pgreviewer", "--config", path, "scheduler", "--retry", "200ms",
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

static long leader_pid(void)
{
    return sql_try_long("SELECT substring(a.application_name from 'pgreviewer scheduler ([0-9]+)')"
                    "::int FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted", true);
}

static bool has_leader(void *arg)
{
    (void)arg;
    return leader_pid() > 0;
}

static void test_failover_kill_9(void **state)
{
    (void)state;
    char extra[256], path[128];
    snprintf(extra, sizeof extra, "queue: {url: \"redis://127.0.0.1:%d/0\", prefix: fo%d}",
             rd.port, db_seq + 1);
    pgr_config *cfg = make_config(
        "  - {name: tick, type: example, schedule: \"* * * * * *\", concurrency: allow, "
        "misfire: {policy: run_all, grace: 1m, max_runs: 30}}\n",
        extra);
    snprintf(path, sizeof path, "%s/pgreviewer.yaml", dir);
    pid_t a = children[0] = spawn_scheduler(path), b = children[1] = spawn_scheduler(path);
    wait_count("SELECT count(*) FROM task_executions", 3, 15000);
    assert_true(wait_until(has_leader, NULL, 5000));
    pid_t leader = (pid_t)leader_pid();
    assert_true(leader == a || leader == b);
    pid_t survivor = leader == a ? b : a;
    long before = sql_long("SELECT count(*) FROM task_executions");
    kill(-leader, SIGKILL);
    waitpid(leader, NULL, 0);
    /* The survivor takes over and fires a few more seconds. */
    wait_count("SELECT count(*) FROM task_executions", before + 4, 15000);
    assert_int_equal(leader_pid(), survivor);
    kill(survivor, SIGTERM);
    waitpid(survivor, NULL, 0);
    children[0] = children[1] = 0;
    long n = sql_long("SELECT count(*) FROM task_executions");
    assert_int_equal(sql_long("SELECT count(DISTINCT scheduled_for) FROM task_executions"), n);
    /* No second between the first and the last fire is missing. */
    assert_int_equal(sql_long("SELECT extract(epoch FROM max(scheduled_for) - "
                              "min(scheduled_for))::int + 1 FROM task_executions"),
                     n);
    config_free(cfg);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pgr-sched-XXXXXX");
    if (!mkdtemp(dir) || testpg_start(&pg) < 0 || testredis_start(&rd, NULL) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    for (int i = 0; i < 2; i++) {
        if (children[i] > 0) {
            kill(-children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
        }
    }
    testpg_stop(&pg);
    testredis_stop(&rd);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run_capture(cmd, NULL);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_every_second),
        cmocka_unit_test(test_forbid_skips),
        cmocka_unit_test(test_misfire_run_all),
        cmocka_unit_test(test_misfire_run_once),
        cmocka_unit_test(test_misfire_skip),
        cmocka_unit_test(test_manual_execution_enqueued),
        cmocka_unit_test(test_failover_kill_9),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
