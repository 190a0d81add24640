/*
 * test_store.c - the analytics store against a real PostgreSQL: migrations
 * (from empty, re-run, concurrent), idempotent fires, every lifecycle
 * transition with its timestamps, the idempotent and batched finish,
 * recovery exactly once under concurrency, task sync, pause/resume/trigger,
 * plugin state and retention in batches.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store_testutil.h"
#include "util.h"

#define ERR char err[1024] = ""

/* A migrated database with tasks "alpha" and "beta" synced; *s open on it. */
static store *with_tasks(pgr_config *cfg)
{
    ERR;
    cfg_task t[2];
    tu_task(&t[0], "alpha", "log_analysis", "0 2 * * *", "{\"source\": \"server\", \"n\": 1}");
    tu_task(&t[1], "beta", "custom_sql", "*/5 * * * *", NULL);
    tu_config(cfg, tu_fresh_db(true), t, 2);
    store *s = tu_open(cfg->store.url);
    assert_int_equal(store_sync_tasks(s, cfg, NULL, err, sizeof err), 0);
    return s;
}

static int64_t task_id(store *s, const char *name)
{
    return tu_ll(s, "SELECT id FROM scheduled_tasks WHERE name = '%s'", name);
}

/* ---- migrations ------------------------------------------------------------------- */

static void test_migrate_from_empty_and_rerun(void **state)
{
    ERR;
    store *s = tu_open(tu_fresh_db(false));
    int v = -1;
    assert_int_equal(store_schema_version(s, &v, err, sizeof err), 0);
    assert_int_equal(v, 0);
    int applied[8];
    int n = store_migrate_list(s, applied, 8, err, sizeof err);
    assert_int_equal(n, store_latest_version());
    assert_int_equal(applied[0], 1);
    assert_int_equal(store_schema_version(s, &v, err, sizeof err), 0);
    assert_int_equal(v, store_latest_version());
    static const char *const tables[] = {"connections",        "scheduled_tasks",
                                         "task_executions",    "execution_attempts",
                                         "analysis_results",   "reports",
                                         "plugin_state",       "schema_migrations"};
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(tu_ll(s, "SELECT count(*) FROM pg_tables WHERE tablename = '%s'",
                               tables[i]),
                         1);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM schema_migrations WHERE applied_at IS NOT NULL"),
                     store_latest_version());
    /* Re-run: a no-op. */
    assert_int_equal(store_migrate(s, err, sizeof err), 0);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM schema_migrations"), store_latest_version());
    /* The status check constraint refuses an unknown status. */
    char *name = tu_text(s, "SELECT conname FROM pg_constraint "
                            "WHERE conrelid = 'task_executions'::regclass AND contype = 'c' "
                            "AND pg_get_constraintdef(oid) LIKE '%%skipped%%'");
    assert_non_null(name);
    free(name);
    store_close(s);
}

static void test_migrate_concurrent_processes(void **state)
{
    const char *url = tu_fresh_db(false);
    enum { N = 6 };
    int gate[2];
    pid_t pids[N];
    assert_int_equal(pipe(gate), 0);
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            char e[512], c;
            close(gate[1]);
            store *s = store_open(url, e, sizeof e);
            if (!s)
                _exit(100);
            (void)!read(gate[0], &c, 1); /* all start together when the gate closes */
            int n = store_migrate(s, e, sizeof e);
            if (n < 0)
                fprintf(stderr, "child: %s\n", e);
            store_close(s);
            _exit(n < 0 ? 101 : n);
        }
    }
    close(gate[0]);
    close(gate[1]);
    int total = 0;
    for (int i = 0; i < N; i++) {
        int st;
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        assert_true(WIFEXITED(st));
        assert_true(WEXITSTATUS(st) < 100);
        total += WEXITSTATUS(st);
    }
    /* Each migration applied exactly once across the six processes. */
    assert_int_equal(total, store_latest_version());
    store *s = tu_open(url);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM schema_migrations"), store_latest_version());
    store_close(s);
}

static void test_open_errors(void **state)
{
    ERR;
    char bad[700];
    snprintf(bad, sizeof bad, "host=%s port=5432 dbname=no_such_db user=pgrtest password=s3cret",
             g_pg.dir);
    assert_null(store_open(bad, err, sizeof err));
    assert_non_null(strstr(err, "cannot connect to the store (store.url)"));
    assert_non_null(strstr(err, "no_such_db"));
    assert_null(strstr(err, "s3cret"));
    assert_null(store_open(NULL, err, sizeof err));
    assert_string_equal(err, "store: no URL given (set store.url)");
}

/* ---- fires ----------------------------------------------------------------------- */

static void test_fire_idempotent(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    int64_t tid = task_id(s, "alpha"), id1 = 0, id2 = 0, id3 = 0;
    bool created = false;
    const int64_t at = 1795000000000LL;
    assert_int_equal(store_fire(s, tid, at, STORE_PENDING, 0, &id1, &created, err, sizeof err), 0);
    assert_true(created);
    assert_int_equal(store_fire(s, tid, at, STORE_QUEUED, 0, &id2, &created, err, sizeof err), 0);
    assert_false(created);
    assert_true(id1 == id2);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM task_executions"), 1);
    /* The existing row is untouched by the second fire. */
    char *st = tu_text(s, "SELECT status FROM task_executions WHERE id = %lld", (long long)id1);
    assert_string_equal(st, "pending");
    free(st);
    assert_int_equal(store_fire(s, tid, at + 1000, STORE_QUEUED, 0, &id3, &created, err,
                                sizeof err),
                     0);
    assert_true(created && id3 != id1);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM task_executions WHERE id = %lld "
                              "AND status = 'queued' AND queued_at IS NOT NULL "
                              "AND trigger = 'schedule' AND max_attempts = 3 "
                              "AND parameters->>'source' = 'server' AND "
                              "scheduled_for = 'epoch'::timestamptz + interval '1795000001 s'",
                              (long long)id3),
                     1);
    /* Same instant, other task: a separate fire. */
    assert_int_equal(store_fire(s, task_id(s, "beta"), at, STORE_PENDING, 0, &id3, &created, err,
                                sizeof err),
                     0);
    assert_true(created);
    assert_int_equal(store_fire(s, 999999, at, STORE_PENDING, 0, &id3, &created, err, sizeof err),
                     -1);
    assert_string_equal(err, "store: no scheduled task with id 999999");
    assert_int_equal(store_fire(s, tid, at, STORE_RUNNING, 0, &id3, &created, err, sizeof err),
                     -1);
    store_close(s);
    tu_config_clear(&cfg);
}

static void test_fire_skipped(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    int64_t id, id2;
    bool created;
    assert_int_equal(store_fire_skipped(s, task_id(s, "alpha"), 1795000000000LL,
                                        "previous execution 7 still running (concurrency: forbid)",
                                        &id, &created, err, sizeof err),
                     0);
    assert_true(created);
    store_execution e;
    assert_int_equal(store_exec_get(s, id, &e, err, sizeof err), 0);
    assert_int_equal(e.status, STORE_SKIPPED);
    assert_string_equal(e.skipped_reason,
                        "previous execution 7 still running (concurrency: forbid)");
    assert_true(e.completed_at_ms > 0);
    assert_int_equal(e.attempt, 0);
    store_execution_clear(&e);
    /* The fire key holds for skipped fires too. */
    assert_int_equal(store_fire(s, task_id(s, "alpha"), 1795000000000LL, STORE_PENDING, 0, &id2,
                                &created, err, sizeof err),
                     0);
    assert_false(created);
    assert_true(id2 == id);
    store_close(s);
    tu_config_clear(&cfg);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static store_start_info start1(store *s, int64_t id, const char *host, pid_t pid)
{
    ERR;
    store_start it = {id, host, pid};
    store_start_info info;
    assert_int_equal(store_exec_start(s, &it, 1, &info, err, sizeof err), 0);
    return info;
}

static void test_lifecycle_with_retry(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    int64_t tid = task_id(s, "alpha"), id;
    bool created;
    assert_int_equal(store_fire(s, tid, 1795000000000LL, STORE_PENDING, 0, &id, &created, err,
                                sizeof err),
                     0);
    /* pending -> queued */
    assert_int_equal(store_exec_mark_queued(s, &id, 1, err, sizeof err), 1);
    assert_int_equal(store_exec_mark_queued(s, &id, 1, err, sizeof err), 0); /* already */
    /* queued -> running, attempt 1 */
    store_start_info info = start1(s, id, "host-a", 4242);
    assert_int_equal(info.rc, STORE_START_OK);
    assert_int_equal(info.attempt, 1);
    assert_int_equal(info.max_attempts, 3);
    assert_true(info.task_id == tid);
    assert_int_equal(info.timeout_ms, 300000);
    assert_string_equal(info.task_name, "alpha");
    assert_string_equal(info.task_type, "log_analysis");
    assert_string_equal(info.connection_id, "prod-main");
    assert_non_null(strstr(info.params_json, "\"source\": \"server\""));
    store_start_info_clear(&info);
    /* running -> scheduled (a retry in back-off) */
    const int64_t nb = wall_ms() + 60000;
    store_finish f = {.execution_id = id, .status = STORE_SCHEDULED, .error = "connection refused",
                      .not_before_ms = nb};
    assert_int_equal(store_exec_finish(s, &f, err, sizeof err), STORE_FINISH_OK);
    store_execution e;
    assert_int_equal(store_exec_get(s, id, &e, err, sizeof err), 0);
    assert_int_equal(e.status, STORE_SCHEDULED);
    assert_true(e.not_before_ms == nb);
    assert_true(e.scheduled_at_ms > 0);
    assert_int_equal(e.completed_at_ms, 0);
    assert_int_equal(e.n_attempts, 1);
    assert_string_equal(e.attempts[0].outcome, "retry");
    assert_string_equal(e.attempts[0].error, "connection refused");
    assert_string_equal(e.attempts[0].worker_host, "host-a");
    assert_int_equal(e.attempts[0].worker_pid, 4242);
    assert_true(e.attempts[0].finished_at_ms >= e.attempts[0].started_at_ms);
    store_execution_clear(&e);
    /* scheduled -> queued -> running, attempt 2 */
    assert_int_equal(store_exec_mark_queued(s, &id, 1, err, sizeof err), 1);
    info = start1(s, id, "host-b", 99);
    assert_int_equal(info.rc, STORE_START_OK);
    assert_int_equal(info.attempt, 2);
    store_start_info_clear(&info);
    /* running -> completed with a result and plugin state */
    f = (store_finish){.execution_id = id, .status = STORE_COMPLETED,
                       .result_json = "{\"slow_queries\": 3}", .plugin = "log_analysis",
                       .state_json = "{\"offset\": 1234}"};
    assert_int_equal(store_exec_finish(s, &f, err, sizeof err), STORE_FINISH_OK);
    assert_int_equal(store_exec_get(s, id, &e, err, sizeof err), 0);
    assert_int_equal(e.status, STORE_COMPLETED);
    assert_int_equal(e.attempt, 2);
    assert_string_equal(e.worker, "host-b");
    assert_null(e.error_message);
    assert_true(e.has_result);
    assert_string_equal(e.result_json, "{\"slow_queries\": 3}");
    assert_int_equal(e.not_before_ms, 0);
    /* every transition has its timestamp, in order */
    assert_true(e.created_at_ms > 0 && e.queued_at_ms >= e.created_at_ms);
    assert_true(e.started_at_ms >= e.scheduled_at_ms && e.scheduled_at_ms >= e.created_at_ms);
    assert_true(e.completed_at_ms >= e.started_at_ms);
    assert_int_equal(e.n_attempts, 2);
    assert_string_equal(e.attempts[1].outcome, "success");
    assert_string_equal(e.attempts[1].worker_host, "host-b");
    store_execution_clear(&e);
    char *state_json = NULL;
    assert_int_equal(store_plugin_state_get(s, "alpha", "log_analysis", &state_json, err,
                                            sizeof err),
                     0);
    assert_string_equal(state_json, "{\"offset\": 1234}");
    free(state_json);
    assert_true(tu_ll(s, "SELECT count(*) FROM scheduled_tasks WHERE name = 'alpha' "
                         "AND last_run_at IS NOT NULL") == 1);
    assert_true(tu_ll(s, "SELECT count(*) FROM analysis_results WHERE analysis_type = "
                         "'log_analysis' AND connection_id = 'prod-main' AND task_name = 'alpha'") == 1);
    store_close(s);
    tu_config_clear(&cfg);
}

static void test_mark_scheduled_and_cancel(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    int64_t id;
    bool created;
    assert_int_equal(store_fire(s, task_id(s, "beta"), 1795000000000LL, STORE_SCHEDULED,
                                1795000004000LL, &id, &created, err, sizeof err),
                     0);
    assert_int_equal(tu_ll(s, "SELECT " "(extract(epoch FROM not_before) * 1000)::bigint "
                              "FROM task_executions WHERE id = %lld", (long long)id) == 1795000004000LL, 1);
    assert_int_equal(store_exec_mark_scheduled(s, id, 1795000009000LL, err, sizeof err), 0);
    int64_t id2;
    assert_int_equal(store_trigger(s, "beta", NULL, &id2, err, sizeof err), 0);
    assert_int_equal(store_exec_mark_scheduled(s, id2, 1795000009000LL, err, sizeof err), 1);
    /* cancel a running one: its attempt is closed as cancelled */
    store_start_info info = start1(s, id2, "h", 1);
    assert_int_equal(info.rc, STORE_START_OK);
    store_start_info_clear(&info);
    assert_int_equal(store_exec_cancel(s, id2, "replaced by a newer fire", err, sizeof err), 1);
    assert_int_equal(store_exec_cancel(s, id2, "again", err, sizeof err), 0);
    assert_int_equal(store_exec_cancel(s, 424242, "x", err, sizeof err), -1);
    assert_string_equal(err, "execution 424242 not found");
    store_execution e;
    assert_int_equal(store_exec_get(s, id2, &e, err, sizeof err), 0);
    assert_int_equal(e.status, STORE_CANCELLED);
    assert_true(e.cancelled_at_ms > 0 && e.completed_at_ms > 0);
    assert_string_equal(e.error_message, "replaced by a newer fire");
    assert_string_equal(e.attempts[0].outcome, "cancelled");
    store_execution_clear(&e);
    /* the worker's late finish is a no-op */
    store_finish f = {.execution_id = id2, .status = STORE_COMPLETED, .result_json = "{}"};
    assert_int_equal(store_exec_finish(s, &f, err, sizeof err), STORE_FINISH_ALREADY);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM analysis_results"), 0);
    /* run a finished execution again */
    int64_t again;
    assert_int_equal(store_exec_redrive(s, id2, &again, err, sizeof err), 0);
    assert_int_equal(store_exec_get(s, again, &e, err, sizeof err), 0);
    assert_int_equal(e.status, STORE_PENDING);
    assert_string_equal(e.trigger, "retry");
    assert_true(e.retry_of == id2);
    assert_int_equal(e.attempt, 0);
    store_execution_clear(&e);
    assert_int_equal(store_exec_redrive(s, id, &again, err, sizeof err), -1);
    assert_string_equal(err, "execution 1 is scheduled; only a finished execution (completed, "
                             "failed, cancelled, skipped) can be run again");
    assert_int_equal(store_exec_redrive(s, 5555, &again, err, sizeof err), 1);
    assert_string_equal(err, "execution 5555 not found");
    assert_int_equal(store_exec_cancel(s, again, "not needed", err, sizeof err), 1);
    /* active executions of a task, for the overlap policy */
    int64_t *ids;
    size_t n;
    assert_int_equal(store_task_active(s, task_id(s, "beta"), &ids, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_true(ids[0] == id);
    free(ids);
    store_close(s);
    tu_config_clear(&cfg);
}

static void test_finish_idempotent(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    int64_t id;
    assert_int_equal(store_trigger(s, "alpha", NULL, &id, err, sizeof err), 0);
    store_start_info info = start1(s, id, "h", 1);
    store_start_info_clear(&info);
    store_finish f = {.execution_id = id, .status = STORE_COMPLETED, .result_json = "{\"v\": 1}",
                      .plugin = "p", .state_json = "{\"s\": 1}"};
    assert_int_equal(store_exec_finish(s, &f, err, sizeof err), STORE_FINISH_OK);
    /* A redelivered item finishes again, with another result: no effect. */
    store_finish again = {.execution_id = id, .status = STORE_FAILED, .result_json = "{\"v\": 2}",
                          .error = "boom", .plugin = "p", .state_json = "{\"s\": 2}"};
    assert_int_equal(store_exec_finish(s, &again, err, sizeof err), STORE_FINISH_ALREADY);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM analysis_results"), 1);
    assert_int_equal(tu_ll(s, "SELECT (result->>'v')::int FROM analysis_results"), 1);
    assert_int_equal(tu_ll(s, "SELECT (state->>'s')::int FROM plugin_state"), 1);
    char *st = tu_text(s, "SELECT status || '/' || coalesce(error_message, '-') "
                          "FROM task_executions WHERE id = %lld", (long long)id);
    assert_string_equal(st, "completed/-");
    free(st);
    /* Starting a finished execution is refused: the worker skips it. */
    info = start1(s, id, "h2", 2);
    assert_int_equal(info.rc, STORE_START_FINISHED);
    assert_int_equal(info.status, STORE_COMPLETED);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM execution_attempts"), 1);
    info = start1(s, 987654, "h2", 2);
    assert_int_equal(info.rc, STORE_START_NOT_FOUND);
    store_finish ghost = {.execution_id = 987654, .status = STORE_COMPLETED};
    assert_int_equal(store_exec_finish(s, &ghost, err, sizeof err), STORE_FINISH_NOT_FOUND);
    /* A NUL character (refused by jsonb) becomes U+FFFD instead of failing
     * the batch; an escaped backslash before "u0000" stays as it is. */
    int64_t idn;
    assert_int_equal(store_trigger(s, "alpha", NULL, &idn, err, sizeof err), 0);
    store_finish nul = {.execution_id = idn, .status = STORE_COMPLETED,
                        .result_json = "{\"a\": \"x\\u0000y\", \"b\": \"\\\\u0000\"}"};
    assert_int_equal(store_exec_finish(s, &nul, err, sizeof err), STORE_FINISH_OK);
    char *txt = tu_text(s, "SELECT (result->>'a') = 'x' || chr(65533) || 'y' AND "
                           "(result->>'b') = E'\\\\u0000' FROM analysis_results "
                           "WHERE execution_id = %lld", (long long)idn);
    assert_string_equal(txt, "t");
    free(txt);
    tu_exec(s, "DELETE FROM analysis_results WHERE execution_id = %lld", (long long)idn);
    /* Bad input is refused before any SQL, naming the execution. */
    store_finish bad = {.execution_id = id, .status = STORE_COMPLETED, .result_json = "{oops"};
    assert_int_equal(store_exec_finish(s, &bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "execution "));
    assert_non_null(strstr(err, "the result is not valid JSON"));
    store_finish bad2 = {.execution_id = id, .status = STORE_RUNNING};
    assert_int_equal(store_exec_finish(s, &bad2, err, sizeof err), -1);
    assert_non_null(strstr(err, "not running"));
    /* A failure keeps no plugin state and no analysis_results row. */
    int64_t id2;
    assert_int_equal(store_trigger(s, "alpha", NULL, &id2, err, sizeof err), 0);
    info = start1(s, id2, "h", 1);
    store_start_info_clear(&info);
    store_finish fl = {.execution_id = id2, .status = STORE_FAILED, .outcome = "timeout",
                       .error = "timed out after 5m", .result_json = "{\"partial\": true}",
                       .plugin = "p", .state_json = "{\"s\": 9}"};
    assert_int_equal(store_exec_finish(s, &fl, err, sizeof err), STORE_FINISH_OK);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM analysis_results"), 1);
    assert_int_equal(tu_ll(s, "SELECT (state->>'s')::int FROM plugin_state"), 1);
    st = tu_text(s, "SELECT outcome || '/' || error FROM execution_attempts "
                    "WHERE execution_id = %lld", (long long)id2);
    assert_string_equal(st, "timeout/timed out after 5m");
    free(st);
    store_close(s);
    tu_config_clear(&cfg);
}

static void test_finish_batch(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    enum { N = 200 };
    int64_t ids[N];
    store_start starts[N];
    store_start_info infos[N];
    for (int i = 0; i < N; i++) {
        bool created;
        assert_int_equal(store_fire(s, task_id(s, i % 2 ? "alpha" : "beta"),
                                    1795000000000LL + i * 1000LL, STORE_QUEUED, 0, &ids[i],
                                    &created, err, sizeof err),
                         0);
        starts[i] = (store_start){ids[i], "batch-host", 1000 + i};
    }
    assert_int_equal(store_exec_start(s, starts, N, infos, err, sizeof err), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(infos[i].rc, STORE_START_OK);
        assert_int_equal(infos[i].attempt, 1);
        store_start_info_clear(&infos[i]);
    }
    /* N items + a duplicate of the first + an unknown id, one transaction. */
    store_finish items[N + 2];
    char results[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(results[i], sizeof results[i], "{\"i\": %d}", i);
        items[i] = (store_finish){.execution_id = ids[i],
                                  .status = i % 10 == 0 ? STORE_FAILED : STORE_COMPLETED,
                                  .result_json = results[i], .plugin = "p",
                                  .state_json = results[i],
                                  .error = i % 10 == 0 ? "failed" : NULL};
    }
    items[N] = items[0];
    items[N + 1] = (store_finish){.execution_id = 99999999, .status = STORE_COMPLETED};
    store_finish_rc rc[N + 2];
    int64_t t0 = mono_us();
    assert_int_equal(store_finish_batch(s, items, N + 2, rc, err, sizeof err), 0);
    int64_t us = mono_us() - t0;
    print_message("finish_batch: %d executions in %.2f ms\n", N, (double)us / 1000.0);
    for (int i = 0; i < N; i++)
        assert_int_equal(rc[i], STORE_FINISH_OK);
    assert_int_equal(rc[N], STORE_FINISH_OK); /* same id as item 0 in the same batch: once */
    assert_int_equal(rc[N + 1], STORE_FINISH_NOT_FOUND);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM analysis_results"), N - N / 10);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM task_executions WHERE status = 'failed'"),
                     N / 10);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM execution_attempts WHERE finished_at IS NULL"),
                     0);
    /* One state per (task, plugin): the newest completed execution's. */
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM plugin_state"), 2);
    assert_int_equal(tu_ll(s, "SELECT (p.state->>'i')::int FROM plugin_state p "
                              "JOIN scheduled_tasks t ON t.id = p.scheduled_task_id "
                              "WHERE t.name = 'alpha'"),
                     N - 1);
    /* The whole batch again: every item already finished. */
    assert_int_equal(store_finish_batch(s, items, N, rc, err, sizeof err), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(rc[i], STORE_FINISH_ALREADY);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM analysis_results"), N - N / 10);
    store_close(s);
    tu_config_clear(&cfg);
}

/* The fast path: no start call, the finish records the attempt. */
static void test_finish_fast_path(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    int64_t id, id2;
    assert_int_equal(store_trigger(s, "alpha", NULL, &id, err, sizeof err), 0);
    assert_int_equal(store_trigger(s, "alpha", NULL, &id2, err, sizeof err), 0);
    assert_int_equal(store_exec_mark_queued(s, &id, 1, err, sizeof err), 1);
    const int64_t t0 = 1795000000123LL;
    store_finish f[2] = {
        {.execution_id = id, .status = STORE_COMPLETED, .result_json = "{\"fast\": 1}",
         .started_at_ms = t0, .worker_host = "fast-host", .worker_pid = 7},
        {.execution_id = id2, .status = STORE_SCHEDULED, .error = "busy", .not_before_ms = t0,
         .started_at_ms = t0, .worker_host = "fast-host", .worker_pid = 8},
    };
    store_finish_rc rc[2];
    assert_int_equal(store_finish_batch(s, f, 2, rc, err, sizeof err), 0);
    assert_int_equal(rc[0], STORE_FINISH_OK);
    assert_int_equal(rc[1], STORE_FINISH_OK);
    store_execution e;
    assert_int_equal(store_exec_get(s, id, &e, err, sizeof err), 0);
    assert_int_equal(e.status, STORE_COMPLETED);
    assert_int_equal(e.attempt, 1);
    assert_true(e.started_at_ms == t0);
    assert_string_equal(e.worker, "fast-host");
    assert_int_equal(e.n_attempts, 1);
    assert_string_equal(e.attempts[0].outcome, "success");
    assert_int_equal(e.attempts[0].worker_pid, 7);
    assert_true(e.attempts[0].started_at_ms == t0 && e.attempts[0].finished_at_ms > t0);
    assert_string_equal(e.result_json, "{\"fast\": 1}");
    store_execution_clear(&e);
    /* the retried one ran its attempt 1; its second run also takes the fast path */
    f[1] = (store_finish){.execution_id = id2, .status = STORE_FAILED, .error = "gave up",
                          .started_at_ms = t0 + 1000, .worker_host = "h2", .worker_pid = 9};
    assert_int_equal(store_exec_finish(s, &f[1], err, sizeof err), STORE_FINISH_OK);
    char *o = tu_text(s, "SELECT string_agg(attempt || ':' || outcome || ':' || worker_host, ',' "
                         "ORDER BY attempt) FROM execution_attempts WHERE execution_id = %lld",
                      (long long)id2);
    assert_string_equal(o, "1:retry:fast-host,2:fail:h2");
    free(o);
    /* redelivered: no second attempt row, no second result */
    assert_int_equal(store_exec_finish(s, &f[0], err, sizeof err), STORE_FINISH_ALREADY);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM execution_attempts"), 3);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM analysis_results"), 1);
    assert_int_equal(tu_ll(s, "SELECT (last_run_at = 'epoch'::timestamptz + "
                              "interval '1795000001.123 s')::int FROM scheduled_tasks "
                              "WHERE name = 'alpha'"),
                     1);
    store_close(s);
    tu_config_clear(&cfg);
}

/* ---- recovery ------------------------------------------------------------------------ */

typedef struct recover_arg {
    const char *url;
    pthread_barrier_t *barrier;
    store_recovered *rows;
    size_t n;
    int rc;
} recover_arg;

static void *recover_thread(void *p)
{
    recover_arg *a = p;
    char e[512];
    store *s = store_open(a->url, e, sizeof e);
    pthread_barrier_wait(a->barrier);
    a->rc = s ? store_recover(s, NULL, false, &a->rows, &a->n, e, sizeof e) : -1;
    store_close(s);
    return NULL;
}

static void test_recover_exactly_once(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    enum { N = 300 };
    int64_t ids[N];
    for (int i = 0; i < N; i++) {
        bool created;
        assert_int_equal(store_fire(s, task_id(s, "alpha"), 1795000000000LL + i * 1000LL,
                                    STORE_QUEUED, 0, &ids[i], &created, err, sizeof err),
                         0);
        if (i % 2) {
            store_start_info info = start1(s, ids[i], "dead-host", 77);
            store_start_info_clear(&info);
        }
    }
    /* Rows that must not be recovered: finished, pending, scheduled. */
    int64_t done, pend, sched;
    assert_int_equal(store_trigger(s, "beta", NULL, &done, err, sizeof err), 0);
    store_start_info info = start1(s, done, "h", 1);
    store_start_info_clear(&info);
    store_finish f = {.execution_id = done, .status = STORE_COMPLETED};
    assert_int_equal(store_exec_finish(s, &f, err, sizeof err), STORE_FINISH_OK);
    assert_int_equal(store_trigger(s, "beta", NULL, &pend, err, sizeof err), 0);
    assert_int_equal(store_trigger(s, "beta", NULL, &sched, err, sizeof err), 0);
    assert_int_equal(store_exec_mark_scheduled(s, sched, wall_ms() + 1000, err, sizeof err), 1);

    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    recover_arg a[2] = {{cfg.store.url, &barrier, NULL, 0, 0},
                        {cfg.store.url, &barrier, NULL, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, recover_thread, &a[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    assert_int_equal(a[0].rc, 0);
    assert_int_equal(a[1].rc, 0);
    print_message("recovery: %zu + %zu rows\n", a[0].n, a[1].n);
    assert_int_equal(a[0].n + a[1].n, N);
    static char seen[N];
    memset(seen, 0, sizeof seen);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < a[k].n; i++) {
            int64_t idx = a[k].rows[i].execution_id - ids[0];
            assert_true(idx >= 0 && idx < N);
            assert_int_equal(seen[idx], 0); /* never returned twice */
            seen[idx] = 1;
            assert_int_equal(a[k].rows[i].was, idx % 2 ? STORE_RUNNING : STORE_QUEUED);
            assert_int_equal(a[k].rows[i].attempt, idx % 2 ? 1 : 0);
        }
    free(a[0].rows);
    free(a[1].rows);
    /* All are pending now, marked recovered; the lost attempts closed. */
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM task_executions WHERE status = 'pending' "
                              "AND recovered_at IS NOT NULL AND recovered_count = 1"),
                     N);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM execution_attempts WHERE outcome = 'lost'"),
                     N / 2);
    /* A third call finds nothing. */
    store_recovered *rows;
    size_t n;
    assert_int_equal(store_recover(s, NULL, false, &rows, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    free(rows);
    /* The in-process queue also asks for the scheduled ones it lost. */
    assert_int_equal(store_recover(s, NULL, true, &rows, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_true(rows[0].execution_id == sched && rows[0].was == STORE_SCHEDULED);
    assert_true(rows[0].not_before_ms > 0);
    free(rows);
    store_close(s);
    tu_config_clear(&cfg);
}

static void test_recover_by_worker_host(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    int64_t a, b, q;
    assert_int_equal(store_trigger(s, "alpha", NULL, &a, err, sizeof err), 0);
    assert_int_equal(store_trigger(s, "alpha", NULL, &b, err, sizeof err), 0);
    assert_int_equal(store_trigger(s, "alpha", NULL, &q, err, sizeof err), 0);
    store_start_info i1 = start1(s, a, "host-a", 1), i2 = start1(s, b, "host-b", 2);
    store_start_info_clear(&i1);
    store_start_info_clear(&i2);
    assert_int_equal(store_exec_mark_queued(s, &q, 1, err, sizeof err), 1);
    store_recovered *rows;
    size_t n;
    assert_int_equal(store_recover(s, "host-a", false, &rows, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_true(rows[0].execution_id == a);
    free(rows);
    /* A redelivered item of a lost worker may start again directly. */
    store_start_info again = start1(s, b, "host-c", 3);
    assert_int_equal(again.rc, STORE_START_OK);
    assert_int_equal(again.attempt, 2);
    store_start_info_clear(&again);
    char *o = tu_text(s, "SELECT string_agg(attempt || ':' || coalesce(outcome, 'open'), ',' "
                         "ORDER BY attempt) FROM execution_attempts WHERE execution_id = %lld",
                      (long long)b);
    assert_string_equal(o, "1:lost,2:open");
    free(o);
    store_close(s);
    tu_config_clear(&cfg);
}

/* ---- concurrency and crashes ---------------------------------------------------------- */

typedef struct finish_arg {
    const char *url;
    pthread_barrier_t *barrier;
    const int64_t *ids;
    int n, which, rc;
    store_finish_rc *rcs;
} finish_arg;

static void *finish_thread(void *p)
{
    finish_arg *a = p;
    char e[512];
    store *s = store_open(a->url, e, sizeof e);
    store_finish *items = xcalloc((size_t)a->n, sizeof *items);
    char (*res)[32] = xcalloc((size_t)a->n, sizeof *res);
    for (int i = 0; i < a->n; i++) {
        snprintf(res[i], sizeof res[i], "{\"by\": %d}", a->which);
        /* the two callers list the ids in opposite orders */
        int k = a->which ? a->n - 1 - i : i;
        items[k] = (store_finish){.execution_id = a->ids[i], .status = STORE_COMPLETED,
                                  .result_json = res[i], .plugin = "p", .state_json = res[i]};
    }
    pthread_barrier_wait(a->barrier);
    a->rc = s ? store_finish_batch(s, items, (size_t)a->n, a->rcs, e, sizeof e) : -1;
    if (a->rc < 0)
        fprintf(stderr, "finish_thread: %s\n", e);
    if (a->which) { /* map back to id order */
        for (int i = 0; i < a->n / 2; i++) {
            store_finish_rc t = a->rcs[i];
            a->rcs[i] = a->rcs[a->n - 1 - i];
            a->rcs[a->n - 1 - i] = t;
        }
    }
    free(items);
    free(res);
    store_close(s);
    return NULL;
}

static void test_finish_concurrent_redelivery(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    enum { N = 100 };
    int64_t ids[N];
    for (int i = 0; i < N; i++) {
        bool c;
        assert_int_equal(store_fire(s, task_id(s, "alpha"), 1795000000000LL + i * 1000LL,
                                    STORE_QUEUED, 0, &ids[i], &c, err, sizeof err),
                         0);
        store_start_info info = start1(s, ids[i], "h", 1);
        store_start_info_clear(&info);
    }
    /* Two workers finish the same executions at the same moment (an item
     * redelivered after a lease expiry): each execution gets one result. */
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    store_finish_rc rc0[N], rc1[N];
    finish_arg a[2] = {{cfg.store.url, &barrier, ids, N, 0, 0, rc0},
                       {cfg.store.url, &barrier, ids, N, 1, 0, rc1}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, finish_thread, &a[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    assert_int_equal(a[0].rc, 0);
    assert_int_equal(a[1].rc, 0);
    int won0 = 0;
    for (int i = 0; i < N; i++) {
        /* exactly one of the two applied each finish */
        assert_true((rc0[i] == STORE_FINISH_OK) != (rc1[i] == STORE_FINISH_OK));
        assert_true(rc0[i] == STORE_FINISH_ALREADY || rc1[i] == STORE_FINISH_ALREADY);
        won0 += rc0[i] == STORE_FINISH_OK;
        assert_int_equal(tu_ll(s, "SELECT (result->>'by')::int FROM analysis_results "
                                  "WHERE execution_id = %lld", (long long)ids[i]),
                         rc0[i] == STORE_FINISH_OK ? 0 : 1);
    }
    print_message("concurrent finish: worker 0 applied %d, worker 1 applied %d\n", won0,
                  N - won0);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM analysis_results"), N);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM execution_attempts WHERE outcome = 'success'"),
                     N);
    store_close(s);
    tu_config_clear(&cfg);
}

/* A worker killed with -9 in the middle of a transaction that holds its
 * executions' rows: recovery right afterwards still returns every one of
 * them, exactly once, and they can run again. */
static void test_recover_after_kill9(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    enum { N = 5 };
    int64_t ids[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(store_trigger(s, "beta", NULL, &ids[i], err, sizeof err), 0);
    assert_int_equal(store_exec_mark_queued(s, ids, N, err, sizeof err), N);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char e[512];
        store *c = store_open(cfg.store.url, e, sizeof e);
        store_start st[N];
        store_start_info info[N];
        for (int i = 0; i < N; i++)
            st[i] = (store_start){ids[i], "doomed-host", getpid()};
        if (!c || store_exec_start(c, st, N, info, e, sizeof e) < 0)
            _exit(1);
        /* an in-flight finish: the rows are locked when the kill comes */
        PQclear(PQexec(store_conn(c), "BEGIN"));
        PQclear(PQexec(store_conn(c), "SELECT * FROM task_executions FOR UPDATE"));
        (void)!write(ready[1], "x", 1);
        for (;;)
            pause();
    }
    close(ready[1]);
    char x;
    assert_int_equal(read(ready[0], &x, 1), 1);
    close(ready[0]);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM task_executions WHERE status = 'running' "
                              "AND worker = 'doomed-host'"),
                     N);
    kill(pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    store_recovered *rows;
    size_t n;
    assert_int_equal(store_recover(s, NULL, false, &rows, &n, err, sizeof err), 0);
    assert_int_equal(n, N);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rows[i].was, STORE_RUNNING);
        assert_int_equal(rows[i].attempt, 1);
    }
    free(rows);
    assert_int_equal(store_recover(s, NULL, false, &rows, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    free(rows);
    char *o = tu_text(s, "SELECT outcome || ':' || worker_pid FROM execution_attempts "
                         "WHERE execution_id = %lld", (long long)ids[0]);
    char want[64];
    snprintf(want, sizeof want, "lost:%d", (int)pid);
    assert_string_equal(o, want);
    free(o);
    /* re-enqueued and run again: attempt 2, one result */
    assert_int_equal(store_exec_mark_queued(s, ids, N, err, sizeof err), N);
    store_start_info info = start1(s, ids[0], "new-host", 2);
    assert_int_equal(info.rc, STORE_START_OK);
    assert_int_equal(info.attempt, 2);
    store_start_info_clear(&info);
    store_close(s);
    tu_config_clear(&cfg);
}

/* Not a pass/fail on time: prints what one batch of start + finish costs. */
static void test_batch_throughput_figure(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    enum { N = 4000, B = 500 };
    int64_t *ids = xcalloc(N, sizeof *ids);
    tu_exec(s, "INSERT INTO task_executions (scheduled_task_id, task_name, task_type, status, "
               " scheduled_for, queued_at) SELECT %lld, 'alpha', 'log_analysis', 'queued', "
               " 'epoch'::timestamptz + g * interval '1 s', now() FROM generate_series(1, %d) g",
            (long long)task_id(s, "alpha"), N);
    int64_t first = tu_ll(s, "SELECT min(id) FROM task_executions");
    for (int i = 0; i < N; i++)
        ids[i] = first + i;
    store_start *st = xcalloc(B, sizeof *st);
    store_start_info *info = xcalloc(B, sizeof *info);
    store_finish *fin = xcalloc(B, sizeof *fin);
    store_finish_rc *rc = xcalloc(B, sizeof *rc);
    int64_t t0 = mono_us();
    for (int off = 0; off < N; off += B) {
        for (int i = 0; i < B; i++)
            st[i] = (store_start){ids[off + i], "bench-host", 1};
        assert_int_equal(store_exec_start(s, st, B, info, err, sizeof err), 0);
        for (int i = 0; i < B; i++)
            store_start_info_clear(&info[i]);
    }
    int64_t t1 = mono_us();
    for (int off = 0; off < N; off += B) {
        for (int i = 0; i < B; i++)
            fin[i] = (store_finish){.execution_id = ids[off + i], .status = STORE_COMPLETED,
                                    .result_json = "{\"ok\": true}"};
        assert_int_equal(store_finish_batch(s, fin, B, rc, err, sizeof err), 0);
        for (int i = 0; i < B; i++)
            assert_int_equal(rc[i], STORE_FINISH_OK);
    }
    int64_t t2 = mono_us();
    /* the same again through the fast path (finish only) */
    tu_exec(s, "UPDATE task_executions SET status = 'queued'");
    tu_exec(s, "DELETE FROM analysis_results");
    int64_t t3 = mono_us();
    for (int off = 0; off < N; off += B) {
        for (int i = 0; i < B; i++)
            fin[i] = (store_finish){.execution_id = ids[off + i], .status = STORE_COMPLETED,
                                    .result_json = "{\"ok\": true}", .started_at_ms = wall_ms(),
                                    .worker_host = "bench-host", .worker_pid = 1};
        assert_int_equal(store_finish_batch(s, fin, B, rc, err, sizeof err), 0);
    }
    int64_t t4 = mono_us();
    print_message("batches of %d: start %.0f/s + finish %.0f/s = %.0f executions/s; "
                  "fast path (finish only) %.0f executions/s\n",
                  B, N * 1e6 / (double)(t1 - t0), N * 1e6 / (double)(t2 - t1),
                  N * 1e6 / (double)(t2 - t0), N * 1e6 / (double)(t4 - t3));
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM analysis_results"), N);
    free(ids);
    free(st);
    free(info);
    free(fin);
    free(rc);
    store_close(s);
    tu_config_clear(&cfg);
}

/* ---- tasks --------------------------------------------------------------------------- */

static void test_sync_tasks(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    store_sync_stats st;
    /* the first sync (in with_tasks) inserted; again: unchanged */
    assert_int_equal(store_sync_tasks(s, &cfg, &st, err, sizeof err), 0);
    assert_int_equal(st.inserted, 0);
    assert_int_equal(st.unchanged, 2);
    assert_int_equal(st.updated + st.removed + st.conflicts, 0);
    /* An API-owned task. */
    cfg_task api;
    tu_task(&api, "gamma", "custom_sql", NULL, NULL);
    int64_t gid;
    assert_int_equal(store_task_create_api(s, &api, &gid, err, sizeof err), 0);
    assert_int_equal(store_task_create_api(s, &api, NULL, err, sizeof err), -1);
    /* pause alpha by CLI: an unchanged resync keeps the pause */
    assert_int_equal(store_task_pause(s, "alpha", err, sizeof err), 0);
    assert_int_equal(store_sync_tasks(s, &cfg, &st, err, sizeof err), 0);
    assert_int_equal(tu_ll(s, "SELECT paused::int FROM scheduled_tasks WHERE name = 'alpha'"),
                     1);
    char *upd0 = tu_text(s, "SELECT updated_at FROM scheduled_tasks WHERE name = 'alpha'");
    /* change beta's schedule: updated in place, same id */
    int64_t beta_id = task_id(s, "beta");
    free(cfg.tasks[1].schedule);
    cfg.tasks[1].schedule = xstrdup("0 * * * *");
    cfg.tasks[1].priority = 9;
    assert_int_equal(store_sync_tasks(s, &cfg, &st, err, sizeof err), 0);
    assert_int_equal(st.updated, 1);
    assert_int_equal(st.unchanged, 1);
    store_task t;
    assert_int_equal(store_task_get(s, "beta", &t, err, sizeof err), 0);
    assert_true(t.id == beta_id);
    assert_string_equal(t.cron_schedule, "0 * * * *");
    assert_int_equal(t.priority, 9);
    assert_string_equal(t.owner, "config");
    assert_int_equal(t.retry.max_attempts, 3);
    assert_true(t.retry.initial_ms == 30000);
    store_task_clear(&t);
    char *upd1 = tu_text(s, "SELECT updated_at FROM scheduled_tasks WHERE name = 'alpha'");
    assert_string_equal(upd0, upd1); /* alpha untouched */
    free(upd0);
    free(upd1);
    /* alpha leaves the YAML: marked removed, its history kept */
    int64_t eid;
    assert_int_equal(store_trigger(s, "alpha", NULL, &eid, err, sizeof err), 0);
    cfg_task alpha = cfg.tasks[0];
    cfg.tasks[0] = cfg.tasks[1];
    cfg.n_tasks = 1;
    assert_int_equal(store_sync_tasks(s, &cfg, &st, err, sizeof err), 0);
    assert_int_equal(st.removed, 1);
    assert_int_equal(store_task_get(s, "alpha", &t, err, sizeof err), 0);
    assert_true(t.removed_at_ms > 0);
    assert_false(t.is_active);
    store_task_clear(&t);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM task_executions WHERE id = %lld",
                           (long long)eid),
                     1);
    /* the API task is untouched, and a YAML task of the same name is refused */
    assert_int_equal(store_task_get(s, "gamma", &t, err, sizeof err), 0);
    assert_int_equal(t.removed_at_ms, 0);
    assert_string_equal(t.owner, "api");
    store_task_clear(&t);
    cfg_task clash;
    tu_task(&clash, "gamma", "log_analysis", "* * * * *", NULL);
    cfg.tasks[1] = clash;
    cfg.n_tasks = 2;
    assert_int_equal(store_sync_tasks(s, &cfg, &st, err, sizeof err), 0);
    assert_int_equal(st.conflicts, 1);
    char *ty = tu_text(s, "SELECT task_type || '/' || owner FROM scheduled_tasks "
                          "WHERE name = 'gamma'");
    assert_string_equal(ty, "custom_sql/api");
    free(ty);
    tu_task_clear(&clash);
    /* alpha comes back, with its old id; its edit resets the pause from `enabled` */
    cfg.tasks[1] = alpha;
    assert_int_equal(store_sync_tasks(s, &cfg, &st, err, sizeof err), 0);
    assert_int_equal(st.updated, 1);
    assert_int_equal(store_task_get(s, "alpha", &t, err, sizeof err), 0);
    assert_int_equal(t.removed_at_ms, 0);
    assert_true(t.paused); /* same config as before removal: the pause stays */
    store_task_clear(&t);
    cfg.tasks[1].enabled = false;
    cfg.tasks[1].jitter_ms = 5000;
    assert_int_equal(store_sync_tasks(s, &cfg, &st, err, sizeof err), 0);
    cfg.tasks[1].enabled = true;
    assert_int_equal(store_sync_tasks(s, &cfg, &st, err, sizeof err), 0);
    assert_int_equal(tu_ll(s, "SELECT paused::int FROM scheduled_tasks WHERE name = 'alpha'"),
                     0);
    /* connections are synced as metadata */
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM connections WHERE id = 'prod-main' "
                              "AND credentials = 'vault' AND removed_at IS NULL"),
                     1);
    tu_task_clear(&api);
    store_close(s);
    tu_config_clear(&cfg);
}

/* 5,000 YAML tasks: one statement each way; prints the times (a per-row
 * scan in the sync once made the unchanged re-sync quadratic: minutes). */
static void test_sync_many_tasks(void **state)
{
    ERR;
    enum { N = 5000 };
    cfg_task *t = xcalloc(N, sizeof *t);
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "task-%05d", i);
        tu_task(&t[i], name, "custom_sql", "*/5 * * * *", "{\"q\": \"select 1\"}");
    }
    pgr_config cfg;
    tu_config(&cfg, tu_fresh_db(true), t, N);
    free(t);
    store *s = tu_open(cfg.store.url);
    store_sync_stats st;
    int64_t t0 = mono_us();
    assert_int_equal(store_sync_tasks(s, &cfg, &st, err, sizeof err), 0);
    int64_t t1 = mono_us();
    assert_int_equal(st.inserted, N);
    assert_int_equal(store_sync_tasks(s, &cfg, &st, err, sizeof err), 0);
    int64_t t2 = mono_us();
    assert_int_equal(st.unchanged, N);
    store_task *list;
    size_t n;
    assert_int_equal(store_task_list(s, false, &list, &n, err, sizeof err), 0);
    int64_t t3 = mono_us();
    assert_int_equal(n, N);
    assert_string_equal(list[N - 1].name, "task-04999");
    store_tasks_free(list, n);
    assert_int_equal(store_task_pause(s, "task-1234", err, sizeof err), 1);
    assert_string_equal(err, "task \"task-1234\" not found (known: task-00000, task-00001, "
                             "task-00002, task-00003, task-00004, task-00005, task-00006, "
                             "task-00007, task-00008, task-00009 and 4990 more: see pgreviewer "
                             "task list); did you mean \"task-01234\"?");
    print_message("%d tasks: first sync %.0f ms, unchanged re-sync %.0f ms, list %.0f ms\n", N,
                  (double)(t1 - t0) / 1000.0, (double)(t2 - t1) / 1000.0,
                  (double)(t3 - t2) / 1000.0);
    store_close(s);
    tu_config_clear(&cfg);
}

static void test_pause_resume_trigger_remove(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    assert_int_equal(store_task_pause(s, "beta", err, sizeof err), 0);
    assert_int_equal(store_task_pause(s, "beta", err, sizeof err), 0);
    assert_int_equal(tu_ll(s, "SELECT (paused AND NOT is_active)::int FROM scheduled_tasks "
                              "WHERE name = 'beta'"),
                     1);
    assert_int_equal(store_task_resume(s, "beta", err, sizeof err), 0);
    assert_int_equal(tu_ll(s, "SELECT is_active::int FROM scheduled_tasks WHERE name = 'beta'"),
                     1);
    assert_int_equal(store_task_pause(s, "nope", err, sizeof err), 1);
    assert_string_equal(err, "task \"nope\" not found (known: alpha, beta)");
    assert_int_equal(store_task_resume(s, "alpah", err, sizeof err), 1);
    assert_string_equal(err, "task \"alpah\" not found (known: alpha, beta); did you mean "
                             "\"alpha\"?");
    /* trigger: params merged over the task's */
    int64_t id;
    assert_int_equal(store_trigger(s, "alpha", "{\"n\": 2, \"extra\": [1]}", &id, err,
                                   sizeof err),
                     0);
    char *p = tu_text(s, "SELECT parameters::text || ' ' || status || ' ' || trigger || ' ' || "
                         "(scheduled_for IS NULL) FROM task_executions WHERE id = %lld",
                      (long long)id);
    assert_string_equal(p, "{\"n\": 2, \"extra\": [1], \"source\": \"server\"} pending manual true");
    free(p);
    assert_int_equal(store_trigger(s, "alpha", "[1,2]", &id, err, sizeof err), -1);
    assert_string_equal(err, "--params: must be a JSON object such as {\"key\": \"value\"}");
    assert_int_equal(store_trigger(s, "alpha", "{\"a\": ", &id, err, sizeof err), -1);
    assert_non_null(strstr(err, "--params: invalid JSON at column"));
    assert_int_equal(store_trigger(s, "nightly-vacuum", NULL, &id, err, sizeof err), 1);
    assert_string_equal(err, "task \"nightly-vacuum\" not found (known: alpha, beta)");
    /* remove: refused for a config-owned task, done for an API one */
    assert_int_equal(store_task_remove(s, "alpha", err, sizeof err), -1);
    assert_string_equal(err, "task \"alpha\" is defined in the configuration: remove it from "
                             "the YAML file and reload (its history is kept)");
    cfg_task api;
    tu_task(&api, "adhoc", "custom_sql", NULL, NULL);
    assert_int_equal(store_task_create_api(s, &api, NULL, err, sizeof err), 0);
    tu_task_clear(&api);
    assert_int_equal(store_trigger(s, "adhoc", NULL, &id, err, sizeof err), 0);
    assert_int_equal(store_task_remove(s, "adhoc", err, sizeof err), 0);
    assert_int_equal(store_task_remove(s, "adhoc", err, sizeof err), 0);
    assert_int_equal(store_trigger(s, "adhoc", NULL, &id, err, sizeof err), -1);
    assert_string_equal(err, "task \"adhoc\" was removed; it can no longer be triggered");
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM task_executions WHERE task_name = 'adhoc'"),
                     1);
    store_task *list;
    size_t n;
    assert_int_equal(store_task_list(s, false, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    store_tasks_free(list, n);
    assert_int_equal(store_task_list(s, true, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].name, "adhoc");
    store_tasks_free(list, n);
    store_close(s);
    tu_config_clear(&cfg);
}

static void test_plugin_state_and_history(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    char *j = (char *)"x";
    assert_int_equal(store_plugin_state_get(s, "alpha", "log_analysis", &j, err, sizeof err), 0);
    assert_null(j);
    assert_int_equal(store_plugin_state_set(s, "alpha", "log_analysis", "{\"off\": 1}", err,
                                            sizeof err),
                     0);
    assert_int_equal(store_plugin_state_set(s, "alpha", "log_analysis", "{\"off\": 2}", err,
                                            sizeof err),
                     0);
    assert_int_equal(store_plugin_state_get(s, "alpha", "log_analysis", &j, err, sizeof err), 0);
    assert_string_equal(j, "{\"off\": 2}");
    free(j);
    assert_int_equal(store_plugin_state_set(s, "nope", "x", "{}", err, sizeof err), 1);
    assert_int_equal(store_plugin_state_get(s, "nope", "x", &j, err, sizeof err), 1);
    /* history: newest first, limited */
    int64_t tid = task_id(s, "beta"), last = 0;
    for (int i = 0; i < 7; i++) {
        bool c;
        assert_int_equal(store_fire(s, tid, 1795000000000LL + i * 60000LL, STORE_PENDING, 0,
                                    &last, &c, err, sizeof err),
                         0);
    }
    store_execution *h;
    size_t n;
    assert_int_equal(store_task_history(s, tid, 3, &h, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_true(h[0].id == last && h[0].scheduled_for_ms == 1795000000000LL + 6 * 60000LL);
    assert_true(h[1].id < h[0].id && h[2].id < h[1].id);
    store_executions_free(h, n);
    store_task t;
    assert_int_equal(store_task_get(s, "beta", &t, err, sizeof err), 0);
    assert_true(t.last_fire_ms == 1795000000000LL + 6 * 60000LL);
    store_task_clear(&t);
    assert_int_equal(store_task_set_next_run(s, tid, 1795000999000LL, err, sizeof err), 0);
    assert_int_equal(store_task_get(s, "beta", &t, err, sizeof err), 0);
    assert_true(t.next_run_at_ms == 1795000999000LL);
    store_task_clear(&t);
    store_close(s);
    tu_config_clear(&cfg);
}

/* ---- notifications and reconnects ------------------------------------------------------ */

typedef struct notif_wait {
    store *s;
    char channel[64], payload[64];
    int rc;
} notif_wait;

static bool got_notification(void *p)
{
    notif_wait *w = p;
    char e[256];
    w->rc = store_notification(w->s, w->channel, sizeof w->channel, w->payload,
                               sizeof w->payload, e, sizeof e);
    return w->rc != 0;
}

static void expect_notification(store *s, const char *channel, const char *payload)
{
    notif_wait w = {.s = s};
    assert_true(wait_until(got_notification, &w, 5000));
    assert_int_equal(w.rc, 1);
    assert_string_equal(w.channel, channel);
    assert_string_equal(w.payload, payload);
}

static void test_notify_and_reconnect(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    store *l = tu_open(cfg.store.url);
    assert_int_equal(store_listen(l, STORE_CHANNEL_TASKS, err, sizeof err), 0);
    assert_int_equal(store_listen(l, STORE_CHANNEL_EXECUTIONS, err, sizeof err), 0);
    assert_true(store_socket(l) >= 0);
    assert_int_equal(store_task_pause(s, "alpha", err, sizeof err), 0);
    expect_notification(l, STORE_CHANNEL_TASKS, "alpha");
    int64_t id;
    assert_int_equal(store_trigger(s, "beta", NULL, &id, err, sizeof err), 0);
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    expect_notification(l, STORE_CHANNEL_EXECUTIONS, ids);
    assert_int_equal(store_listen(l, STORE_CHANNEL_CANCEL, err, sizeof err), 0);
    assert_int_equal(store_exec_cancel(s, id, "replaced", err, sizeof err), 1);
    expect_notification(l, STORE_CHANNEL_CANCEL, ids);
    /* a sync that changes nothing is silent; one that changes something is not */
    assert_int_equal(store_sync_tasks(s, &cfg, NULL, err, sizeof err), 0);
    cfg.tasks[0].priority = 1;
    assert_int_equal(store_sync_tasks(s, &cfg, NULL, err, sizeof err), 0);
    expect_notification(l, STORE_CHANNEL_TASKS, "*");
    char ch[64], pl[64];
    assert_int_equal(store_notification(l, ch, sizeof ch, pl, sizeof pl, err, sizeof err), 0);
    /* The server drops the listener's connection (as in a restart): the
     * call that meets it fails, the next reconnects and listens again. */
    tu_exec(s, "SELECT pg_terminate_backend(%d, 5000)", PQbackendPID(store_conn(l)));
    store_task *list;
    size_t n;
    assert_int_equal(store_task_list(l, false, &list, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "store: listing tasks: "));
    assert_int_equal(store_task_list(l, false, &list, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    store_tasks_free(list, n);
    assert_int_equal(store_task_resume(s, "alpha", err, sizeof err), 0);
    expect_notification(l, STORE_CHANNEL_TASKS, "alpha");
    store_close(l);
    store_close(s);
    tu_config_clear(&cfg);
}

/* ---- retention -------------------------------------------------------------------------- */

static void test_retention_batches(void **state)
{
    ERR;
    pgr_config cfg;
    store *s = with_tasks(&cfg);
    int64_t a = task_id(s, "alpha"), b = task_id(s, "beta");
    /* 2,500 old finished executions of alpha (with attempts and results),
     * 30 recent ones of beta, one old one still running. */
    tu_exec(s, "INSERT INTO task_executions (scheduled_task_id, task_name, task_type, status, "
               " scheduled_for, attempt, completed_at) "
               "SELECT %lld, 'alpha', 'log_analysis', 'completed', "
               " now() - interval '40 days' + g * interval '1 s', 1, "
               " now() - interval '40 days' FROM generate_series(1, 2500) g",
            (long long)a);
    tu_exec(s, "INSERT INTO execution_attempts (execution_id, attempt, outcome) "
               "SELECT id, 1, 'success' FROM task_executions");
    tu_exec(s, "INSERT INTO analysis_results (execution_id, analysis_type, result) "
               "SELECT id, task_type, '{}' FROM task_executions");
    tu_exec(s, "INSERT INTO task_executions (scheduled_task_id, task_name, task_type, status, "
               " scheduled_for, completed_at) "
               "SELECT %lld, 'beta', 'custom_sql', 'failed', now() - (31 - g) * interval '1 min', "
               " now() - (31 - g) * interval '1 min' FROM generate_series(1, 30) g",
            (long long)b);
    tu_exec(s, "INSERT INTO task_executions (scheduled_task_id, task_name, task_type, status, "
               " created_at, started_at) VALUES (%lld, 'alpha', 'log_analysis', 'running', "
               " now() - interval '90 days', now() - interval '90 days')",
            (long long)a);
    tu_exec(s, "INSERT INTO analysis_results (analysis_type, result, created_at) "
               "SELECT 'orphan', '{}', now() - interval '60 days' FROM generate_series(1, 5)");
    store_retention_stats st;
    assert_int_equal(store_retention(s, 30LL * 86400000, 0, 1000, &st, err, sizeof err), 0);
    assert_int_equal(st.executions, 2500);
    assert_int_equal(st.results, 5);
    /* 1000 + 1000 + 500 executions, then one statement for the orphans */
    assert_int_equal(st.statements, 4);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM task_executions WHERE task_name = 'alpha'"),
                     1);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM task_executions WHERE status = 'running'"),
                     1);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM execution_attempts"), 0);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM analysis_results"), 0);
    /* Keep the 10 newest finished per task: alpha gets 15 recent finished
     * ones interleaved with unfinished ones (never counted, never deleted). */
    tu_exec(s, "INSERT INTO task_executions (scheduled_task_id, task_name, task_type, status, "
               " scheduled_for, completed_at) "
               "SELECT %lld, 'alpha', 'log_analysis', CASE WHEN g %% 2 = 0 THEN 'completed' "
               " ELSE 'queued' END, now() - (31 - g) * interval '1 s', "
               " CASE WHEN g %% 2 = 0 THEN now() END FROM generate_series(1, 30) g",
            (long long)a);
    assert_int_equal(store_retention(s, 0, 10, 7, &st, err, sizeof err), 0);
    assert_int_equal(st.executions, 20 + 5);
    assert_int_equal(st.statements, 4); /* 7 + 7 + 7 + 4 */
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM task_executions WHERE task_name = 'beta' "
                              "AND completed_at > now() - interval '11 min'"),
                     10);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM task_executions WHERE task_name = 'alpha' "
                              "AND status = 'completed' AND scheduled_for > now() - "
                              "interval '11 s'"),
                     5);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM task_executions WHERE task_name = 'alpha' "
                              "AND status = 'completed'"),
                     10);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM task_executions WHERE status = 'queued'"),
                     15);
    assert_int_equal(tu_ll(s, "SELECT count(*) FROM task_executions"), 10 + 10 + 15 + 1);
    /* nothing more to do */
    assert_int_equal(store_retention(s, 30LL * 86400000, 10, 7, &st, err, sizeof err), 0);
    assert_int_equal(st.executions, 0);
    store_close(s);
    tu_config_clear(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_from_empty_and_rerun),
        cmocka_unit_test(test_migrate_concurrent_processes),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_fire_idempotent),
        cmocka_unit_test(test_fire_skipped),
        cmocka_unit_test(test_lifecycle_with_retry),
        cmocka_unit_test(test_mark_scheduled_and_cancel),
        cmocka_unit_test(test_finish_idempotent),
        cmocka_unit_test(test_finish_batch),
        cmocka_unit_test(test_finish_fast_path),
        cmocka_unit_test(test_recover_exactly_once),
        cmocka_unit_test(test_recover_by_worker_host),
        cmocka_unit_test(test_finish_concurrent_redelivery),
        cmocka_unit_test(test_recover_after_kill9),
        cmocka_unit_test(test_batch_throughput_figure),
        cmocka_unit_test(test_sync_tasks),
        cmocka_unit_test(test_sync_many_tasks),
        cmocka_unit_test(test_pause_resume_trigger_remove),
        cmocka_unit_test(test_plugin_state_and_history),
        cmocka_unit_test(test_notify_and_reconnect),
        cmocka_unit_test(test_retention_batches),
    };
    return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
