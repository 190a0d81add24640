/*
 * test_worker.c - end-to-end tests of the worker supervisor: the real
 * `pgreviewer worker` binary against a real redis-server (appendonly on)
 * and a real PostgreSQL, with the example plugin. Every wait has a
 * deadline; nothing sleeps for a fixed time.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pthread.h>

#include "config.h"
#include "loader.h"
#include "log.h"
#include "util.h"
#include "worker.h"
#include "wtest.h"

#define WORKERS_1 "{processes: 1, prefetch: 0, shutdown_grace: 10s}"
#define NO_RETRY "{retry: {max_attempts: 1}}"

static void stop_worker_ok(wfx *f)
{
    assert_int_equal(kill(f->pid, SIGTERM), 0);
    int st = wt_wait_exit(f, 20000);
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char *logs = wt_logs(f);
        fail_msg("the worker did not exit 0 after SIGTERM (status %d); logs:\n%s", st, logs);
    }
}

static void must_reach(wfx *f, long long want, int64_t ms, const char *sql)
{
    if (!wt_wait_sql(f, want, ms, "%s", sql)) {
        char *logs = wt_logs(f);
        fail_msg("timed out waiting for %s >= %lld (now %lld); logs:\n%s", sql, want,
                 wt_ll(f, "%s", sql), logs);
    }
}

/* The store is written before the queue: wait for the dead letters too. */
typedef struct deadwait {
    wfx *f;
    int64_t want;
} deadwait;

static bool dead_reached(void *arg)
{
    deadwait *d = arg;
    return wt_qstats(d->f).dead == d->want;
}

static void must_have_dead(wfx *f, int64_t want)
{
    deadwait d = {f, want};
    if (!wait_until(dead_reached, &d, 5000))
        fail_msg("expected %lld dead-letter items, have %lld", (long long)want,
                 (long long)wt_qstats(f).dead);
}

/* ---- priority order ---------------------------------------------------- */

static void test_priority_order(void **state)
{
    (void)state;
    wfx f;
    wt_init(&f, WORKERS_1, NO_RETRY, "  - {name: ok, type: example, params: {mode: succeed}}\n");
    /* Three rounds over the levels 0..9, so each level gets its items at
     * different times: the expected order is by level, then FIFO. */
    int64_t *ids = wt_execs(&f, "ok", 30);
    int64_t by_level[10][3];
    for (int round = 0, k = 0; round < 3; round++) {
        for (int p = 0; p < 10; p++, k++) {
            wt_enqueue(&f, &ids[k], 1, p);
            by_level[p][round] = ids[k];
        }
    }
    strbuf want = {0};
    for (int p = 9; p >= 0; p--)
        for (int r = 0; r < 3; r++)
            sb_printf(&want, "%s%lld", want.len ? "," : "", (long long)by_level[p][r]);
    wt_start_worker(&f, NULL);
    must_reach(&f, 30, 20000, "SELECT count(*) FROM task_executions WHERE status = 'completed'");
    char *got = wt_text(&f, "SELECT string_agg(execution_id::text, ',' ORDER BY started_at, "
                            "execution_id) FROM execution_attempts");
    assert_string_equal(got, want.buf);
    stop_worker_ok(&f);
    free(got);
    sb_free(&want);
    free(ids);
    wt_done(&f);
}

/* ---- retry schedule ---------------------------------------------------- */

static bool waits_in_delayed_set(void *arg)
{
    queue_stats st = wt_qstats(arg);
    return st.delayed == 1 && st.leased == 0;
}

static void test_retry_schedule(void **state)
{
    (void)state;
    wfx f;
    wt_init(&f, WORKERS_1, NO_RETRY,
            "  - {name: r, type: example, params: {mode: retry}, retry: {max_attempts: 4, "
            "initial: 300ms, multiplier: 2, max_delay: 1s, jitter: equal}}\n");
    int64_t *id = wt_execs(&f, "r", 1);
    wt_enqueue(&f, id, 1, 5);
    wt_start_worker(&f, NULL);
    /* After the first attempt, the item waits in the delayed set: not
     * leased, not in a worker, and scheduled in the store. */
    must_reach(&f, 1, 10000, "SELECT count(*) FROM execution_attempts WHERE outcome = 'retry'");
    assert_true(wait_until(waits_in_delayed_set, &f, 2000));
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM task_executions WHERE status = 'scheduled' "
                               "AND not_before IS NOT NULL"),
                     1);
    must_reach(&f, 1, 15000, "SELECT count(*) FROM task_executions WHERE status = 'failed'");
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM execution_attempts"), 4);
    /* Each wait is within the policy's bounds: equal jitter gives
     * [base/2, base], base = 300ms * 2^(k-1) capped at 1s. The store's
     * timestamps are taken when outcomes are written (a few ms after the
     * decision), so allow 20 ms below and 250 ms above for promotion and
     * start. */
    const long long base[3] = {300, 600, 1000};
    for (int k = 1; k <= 3; k++) {
        long long d = wt_ll(&f,
                            "SELECT (extract(epoch FROM b.started_at - a.finished_at) * 1000)::bigint "
                            "FROM execution_attempts a JOIN execution_attempts b "
                            "ON b.execution_id = a.execution_id AND b.attempt = a.attempt + 1 "
                            "WHERE a.attempt = %d",
                            k);
        print_message("retry %d waited %lld ms (policy: %lld..%lld)\n", k, d, base[k - 1] / 2,
                      base[k - 1]);
        assert_true(d >= base[k - 1] / 2 - 20);
        assert_true(d <= base[k - 1] + 250);
    }
    must_have_dead(&f, 1);
    char *out = NULL;
    assert_int_equal(wt_cli(&f, &out, "queue dead list --json"), 0);
    assert_non_null(strstr(out, "asked for a retry (attempt 4 of 4)"));
    free(out);
    stop_worker_ok(&f);
    free(id);
    wt_done(&f);
}

/* ---- dead letter and re-drive -------------------------------------------- */

static void test_dead_letter_redrive(void **state)
{
    (void)state;
    wfx f;
    wt_init(&f, WORKERS_1, NO_RETRY,
            "  - {name: fl, type: example, params: {mode: flaky, succeed_on: 3}, "
            "retry: {max_attempts: 2, initial: 10ms, jitter: none}}\n");
    int64_t *id = wt_execs(&f, "fl", 1);
    wt_enqueue(&f, id, 1, 5);
    wt_start_worker(&f, NULL);
    must_reach(&f, 1, 10000, "SELECT count(*) FROM task_executions WHERE status = 'failed'");
    char *err = wt_text(&f, "SELECT error_message FROM task_executions");
    assert_string_equal(err, "asked for a retry (attempt 2 of 2)");
    free(err);
    must_have_dead(&f, 1);
    char *out = NULL;
    assert_int_equal(wt_cli(&f, &out, "queue dead list"), 0);
    assert_non_null(strstr(out, "asked for a retry (attempt 2 of 2)"));
    free(out);
    /* Re-drive it: the third attempt succeeds. */
    assert_int_equal(wt_cli(&f, &out, "queue dead retry %lld", (long long)id[0]), 0);
    free(out);
    must_reach(&f, 1, 10000, "SELECT count(*) FROM task_executions WHERE status = 'completed'");
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM analysis_results"), 1);
    assert_int_equal(wt_ll(&f, "SELECT max(attempt) FROM execution_attempts"), 3);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM execution_attempts WHERE outcome = 'success'"),
                     1);
    must_have_dead(&f, 0);
    stop_worker_ok(&f);
    free(id);
    wt_done(&f);
}

/* ---- kill -9 of the whole host -------------------------------------------- */

static bool group_gone(void *arg)
{
    pid_t pgid = *(pid_t *)arg;
    return kill(-pgid, 0) < 0 && errno == ESRCH;
}

static bool nothing_leased(void *arg)
{
    queue_stats st = wt_qstats(arg);
    int64_t ready = 0;
    for (int p = 0; p < QUEUE_PRIORITIES; p++)
        ready += st.ready[p];
    return st.leased == 0 && ready == 0 && st.delayed == 0;
}

static void test_kill9_whole_host(void **state)
{
    (void)state;
    enum { N = 1000 };
    wfx f;
    wt_init(&f, "{processes: 2, prefetch: 16}", "{retry: {max_attempts: 3, initial: 10ms}}",
            "  - {name: s, type: example, params: {mode: sleep, sleep_ms: 2}}\n");
    int64_t *ids = wt_execs(&f, "s", N);
    wt_enqueue(&f, ids, N, 5);
    pid_t first = wt_start_worker(&f, "--lease", "1s", NULL);
    must_reach(&f, 150, 20000, "SELECT count(*) FROM task_executions WHERE status = 'completed'");
    /* The supervisor and its executors, all at once. */
    assert_int_equal(kill(-first, SIGKILL), 0);
    assert_true(wt_wait_exit(&f, 5000) >= 0);
    assert_true(wait_until(group_gone, &first, 5000));
    long long done_before = wt_ll(&f, "SELECT count(*) FROM task_executions WHERE status = 'completed'");
    long long in_flight = wt_ll(&f, "SELECT count(*) FROM task_executions WHERE status = 'running'");
    print_message("killed with %lld completed, %lld running or prefetched\n", done_before,
                  in_flight);
    assert_true(done_before < N);
    assert_true(in_flight > 0);
    /* A new worker with short leases reclaims the dead one's items. */
    wt_start_worker(&f, "--lease", "1s", NULL);
    must_reach(&f, N, 30000, "SELECT count(*) FROM task_executions WHERE status = 'completed'");
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM analysis_results"), N);
    assert_int_equal(wt_ll(&f, "SELECT count(DISTINCT execution_id) FROM analysis_results"), N);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM task_executions e WHERE "
                               "(SELECT count(*) FROM analysis_results r "
                               " WHERE r.execution_id = e.id) <> 1"),
                     0);
    assert_true(wt_ll(&f, "SELECT count(*) FROM execution_attempts WHERE outcome = 'lost'") > 0);
    assert_true(wait_until(nothing_leased, &f, 5000));
    assert_int_equal(wt_qstats(&f).dead, 0);
    stop_worker_ok(&f);
    free(ids);
    wt_done(&f);
}

/* ---- crash and timeout isolation -------------------------------------------- */

static void test_crash_timeout_isolation(void **state)
{
    (void)state;
    wfx f;
    wt_init(&f, "{processes: 2, prefetch: 2, kill_grace: 200ms}", NO_RETRY,
            "  - {name: crash, type: example, params: {mode: crash}}\n"
            "  - {name: hang, type: example, timeout: 300ms, params: {mode: sleep, sleep_ms: 60000}}\n"
            "  - {name: ok, type: example, params: {mode: sleep, sleep_ms: 20}}\n");
    int64_t *c = wt_execs(&f, "crash", 1), *h = wt_execs(&f, "hang", 1), *ok = wt_execs(&f, "ok", 20);
    wt_enqueue(&f, c, 1, 5);
    wt_enqueue(&f, h, 1, 5);
    wt_enqueue(&f, ok, 20, 5);
    pid_t sup = wt_start_worker(&f, NULL);
    must_reach(&f, 22, 20000,
               "SELECT count(*) FROM task_executions WHERE status IN ('completed', 'failed')");
    char *e = wt_text(&f, "SELECT error_message FROM task_executions WHERE id = %lld", (long long)c[0]);
    assert_string_equal(e, "executor crashed with SIGSEGV (attempt 1 of 1)");
    free(e);
    e = wt_text(&f, "SELECT error_message FROM task_executions WHERE id = %lld", (long long)h[0]);
    assert_string_equal(e, "timed out after 300ms (attempt 1 of 1)");
    free(e);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM task_executions WHERE task_name = 'ok' "
                               "AND status = 'completed'"),
                     20);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM analysis_results"), 20);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM execution_attempts WHERE outcome = 'crashed'"), 1);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM execution_attempts WHERE outcome = 'timeout'"), 1);
    must_have_dead(&f, 2);
    assert_int_equal(kill(sup, 0), 0); /* the supervisor survived both */
    stop_worker_ok(&f);
    free(c);
    free(h);
    free(ok);
    wt_done(&f);
}

/* ---- Redis restarted mid-run ------------------------------------------------ */

static void test_redis_restart(void **state)
{
    (void)state;
    enum { N = 300 };
    wfx f;
    wt_init(&f, "{processes: 2, prefetch: 8}", "{retry: {max_attempts: 3, initial: 10ms}}",
            "  - {name: s, type: example, params: {mode: sleep, sleep_ms: 5}}\n");
    int64_t *ids = wt_execs(&f, "s", N);
    wt_enqueue(&f, ids, N, 5);
    wt_start_worker(&f, "--lease", "3s", NULL);
    must_reach(&f, 40, 20000, "SELECT count(*) FROM task_executions WHERE status = 'completed'");
    char *out = NULL;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "bash %s/tests/lib/redis_harness.sh restart %s", test_source_dir(),
             g_rd.dir);
    int rc = run_capture(cmd, &out);
    if (rc != 0)
        fail_msg("redis restart failed: %s", out);
    free(out);
    long long at_restart = wt_ll(&f, "SELECT count(*) FROM task_executions WHERE status = 'completed'");
    print_message("Redis restarted with %lld of %d completed\n", at_restart, N);
    assert_true(at_restart < N);
    must_reach(&f, N, 30000, "SELECT count(*) FROM task_executions WHERE status = 'completed'");
    assert_int_equal(wt_ll(&f, "SELECT count(DISTINCT execution_id) FROM analysis_results"), N);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM analysis_results"), N);
    assert_true(wait_until(nothing_leased, &f, 5000));
    assert_int_equal(wt_qstats(&f).dead, 0);
    char *logs = wt_logs(&f);
    assert_non_null(strstr(logs, "reachable again"));
    free(logs);
    stop_worker_ok(&f);
    free(ids);
    wt_done(&f);
}

/* ---- graceful shutdown ------------------------------------------------------- */

static bool all_prefetched(void *arg)
{
    queue_stats st = wt_qstats(arg);
    return st.leased == 9;
}

static void test_graceful_shutdown(void **state)
{
    (void)state;
    wfx f;
    wt_log_level = "debug";
    wt_init(&f, "{processes: 1, prefetch: 8, shutdown_grace: 10s}", NO_RETRY,
            "  - {name: s, type: example, params: {mode: sleep, sleep_ms: 600}}\n");
    wt_log_level = "info";
    int64_t *ids = wt_execs(&f, "s", 10);
    wt_enqueue(&f, ids, 10, 5);
    wt_start_worker(&f, NULL);
    /* One running, eight prefetched (leased and started in the store), one
     * left in the queue. */
    assert_true(wait_until(all_prefetched, &f, 10000));
    must_reach(&f, 9, 10000, "SELECT count(*) FROM task_executions WHERE status = 'running'");
    assert_true(wt_wait_log(&f, "handed to an executor", 10000));
    stop_worker_ok(&f);
    /* The running task finished within the grace period... */
    if (wt_ll(&f, "SELECT count(*) FROM task_executions WHERE status = 'completed'") != 1)
        fail_msg("logs:\n%s", wt_logs(&f));
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM task_executions WHERE status = 'completed'"), 1);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM analysis_results"), 1);
    /* ...and the prefetched ones are back in the queue, not running. */
    queue_stats st = wt_qstats(&f);
    assert_int_equal(st.ready[5], 9);
    assert_int_equal(st.leased, 0);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM task_executions WHERE status = 'queued' "
                               "AND attempt = 0 AND worker IS NULL"),
                     9);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM task_executions WHERE status = 'running'"), 0);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM execution_attempts"), 1);
    char *logs = wt_logs(&f);
    assert_non_null(strstr(logs, "gave back 8 prefetched items"));
    free(logs);
    /* A later worker runs them. */
    wt_start_worker(&f, "--prefetch", "0", "--processes", "9", NULL);
    must_reach(&f, 10, 15000, "SELECT count(*) FROM task_executions WHERE status = 'completed'");
    stop_worker_ok(&f);
    free(ids);
    wt_done(&f);
}

/* ---- command line ---------------------------------------------------------- */

static void test_cli_usage_and_missing_store(void **state)
{
    (void)state;
    wfx f;
    wt_init(&f, WORKERS_1, NO_RETRY, "  - {name: ok, type: example}\n");
    char *out = NULL;
    assert_int_equal(wt_cli(&f, &out, "worker --processes 0"), 2);
    assert_non_null(strstr(out, "--processes: \"0\" is not a number of executors (1 to 10000)"));
    free(out);
    assert_int_equal(wt_cli(&f, &out, "worker --lease soon"), 2);
    assert_non_null(strstr(out, "--lease: \"soon\" is not a duration"));
    free(out);
    /* Without store.url the worker refuses to start, naming the key. */
    char *cfg = xasprintf("%s/nostore.yaml", f.dir);
    FILE *fp = fopen(cfg, "w");
    fprintf(fp, "queue: {url: \"%s\"}\ntasks:\n  - {name: ok, type: example}\n", f.url);
    fclose(fp);
    char *cmd = xasprintf("'%s' --config '%s' worker", getenv("PGR_BIN"), cfg);
    assert_int_equal(run_capture(cmd, &out), 1);
    assert_non_null(strstr(out, "store.url is not set"));
    free(out);
    free(cmd);
    free(cfg);
    wt_done(&f);
}

/* ---- run --once records its runs in the store ------------------------------ */

static void test_run_once_records(void **state)
{
    (void)state;
    wfx f;
    wt_init(&f, WORKERS_1, NO_RETRY,
            "  - {name: ok, type: example, params: {mode: succeed}}\n"
            "  - {name: fl, type: example, params: {mode: flaky, succeed_on: 2}, "
            "retry: {max_attempts: 3, initial: 10ms}}\n"
            "  - {name: bad, type: example, params: {mode: fail}}\n");
    char *out = NULL;
    assert_int_equal(wt_cli(&f, &out, "run --once --task ok --task fl"), 0);
    assert_non_null(strstr(out, "\"execution_id\":"));
    free(out);
    assert_int_equal(wt_cli(&f, &out, "run --once --task ok"), 0);
    free(out);
    assert_int_equal(wt_cli(&f, &out, "run --once --task bad"), 1);
    free(out);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM task_executions WHERE task_name = 'ok' "
                               "AND status = 'completed' AND trigger = 'manual'"),
                     2);
    /* The plugin state was read before each run and saved after it. */
    char *st = wt_text(&f, "SELECT p.state->>'runs' FROM plugin_state p JOIN scheduled_tasks t "
                           "ON t.id = p.scheduled_task_id WHERE t.name = 'ok'");
    assert_string_equal(st, "2");
    free(st);
    char *outs = wt_text(&f, "SELECT string_agg(a.outcome, ',' ORDER BY a.attempt) FROM "
                             "execution_attempts a JOIN task_executions e ON e.id = a.execution_id "
                             "WHERE e.task_name = 'fl'");
    assert_string_equal(outs, "retry,success");
    free(outs);
    char *err = wt_text(&f, "SELECT error_message FROM task_executions WHERE task_name = 'bad'");
    assert_string_equal(err, "failed on purpose");
    free(err);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM analysis_results"), 3);
    assert_int_equal(wt_cli(&f, &out, "task history ok"), 0);
    int lines = 0;
    for (char *p = out; (p = strstr(p, "completed")); p++)
        lines++;
    assert_int_equal(lines, 2);
    free(out);
    wt_done(&f);
}

/* ---- executors recycled after max_tasks_per_process ------------------------ */

static void test_recycling(void **state)
{
    (void)state;
    wfx f;
    wt_init(&f, "{processes: 2, prefetch: 8, max_tasks_per_process: 3}", NO_RETRY,
            "  - {name: ok, type: example, params: {mode: succeed}}\n");
    int64_t *ids = wt_execs(&f, "ok", 60);
    wt_enqueue(&f, ids, 60, 5);
    wt_start_worker(&f, NULL);
    must_reach(&f, 60, 20000,
               "SELECT count(*) FROM task_executions WHERE status IN ('completed', 'failed')");
    /* Each executor retired after 3 tasks, and no task was handed to one
     * that was leaving. */
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM task_executions WHERE status = 'completed'"), 60);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM execution_attempts WHERE outcome <> 'success'"), 0);
    stop_worker_ok(&f);
    free(ids);
    wt_done(&f);
}

/* ---- the API with an in-process queue, no store (embedded + bench mode) ---- */

typedef struct hooks {
    pthread_mutex_t mu;
    int finished, started;
} hooks;

static void h_start(void *arg, int64_t id, int64_t lag_us)
{
    (void)id;
    (void)lag_us;
    hooks *h = arg;
    pthread_mutex_lock(&h->mu);
    h->started++;
    pthread_mutex_unlock(&h->mu);
}

static void h_finish(void *arg, int64_t id, exec_outcome o)
{
    (void)id;
    (void)o;
    hooks *h = arg;
    pthread_mutex_lock(&h->mu);
    h->finished++;
    pthread_mutex_unlock(&h->mu);
}

typedef struct hwait {
    hooks *h;
    int want;
} hwait;

static bool finished_reached(void *arg)
{
    hwait *x = arg;
    pthread_mutex_lock(&x->h->mu);
    bool ok = x->h->finished >= x->want;
    pthread_mutex_unlock(&x->h->mu);
    return ok;
}

static void *run_thread(void *arg)
{
    char err[256];
    worker_run(arg, err, sizeof err);
    return NULL;
}

static void test_embedded_memory_no_store(void **state)
{
    (void)state;
    char err[512];
    log_configure("error", "text"); /* the example plugin logs every run */
    plugin_registry *reg = loader_load_dir(getenv("PGR_PLUGIN_DIR"), err, sizeof err);
    assert_non_null(reg);
    pgr_config *cfg = config_defaults();
    cfg->defaults.retry = (cfg_retry){3, 10, 2, 50, JITTER_FULL};
    queue *q = queue_open(NULL, "emb", err, sizeof err);
    assert_non_null(q);
    static const char ok[] = "{\"task\":\"t\",\"type\":\"example\",\"params\":{}}";
    static const char bad[] = "{\"task\":\"t\",\"type\":\"example\",\"params\":{\"mode\":\"fail\"}}";
    static const char flaky[] = "{\"task\":\"t\",\"type\":\"example\",\"max_attempts\":3,"
                                "\"params\":{\"mode\":\"flaky\",\"succeed_on\":2}}";
    queue_item items[52];
    for (int i = 0; i < 52; i++)
        items[i] = (queue_item){i + 1, 5, 1, i < 45 ? ok : i < 50 ? bad : i < 51 ? flaky : "nonsense"};
    assert_int_equal(queue_enqueue(q, items, 52, err, sizeof err), 0);
    hooks h = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
    worker_opts o = {.processes = 2, .prefetch = 4, .no_store = true, .queue = q,
                     .on_start = h_start, .on_finish = h_finish, .hook_arg = &h};
    worker *w = worker_new(cfg, reg, &o, err, sizeof err);
    assert_non_null(w);
    pid_t pids[4];
    assert_int_equal(worker_executor_pids(w, pids, 4), 2);
    pthread_t th;
    pthread_create(&th, NULL, run_thread, w);
    /* 45 successes, 5 failures, the flaky one twice (retry, then success);
     * the payload that is not a job goes to the dead letters unstarted. */
    hwait x = {&h, 52};
    assert_true(wait_until(finished_reached, &x, 20000));
    worker_stop(w);
    pthread_join(th, NULL);
    worker_stats st;
    worker_stats_get(w, &st);
    assert_int_equal(st.completed, 46);
    assert_int_equal(st.failed, 5);
    assert_int_equal(st.retried, 1);
    assert_int_equal(st.attempts[EXEC_SUCCESS], 46);
    assert_int_equal(st.attempts[EXEC_FAIL], 5);
    assert_int_equal(st.attempts[EXEC_RETRY], 1);
    assert_int_equal(st.processes, 2);
    assert_int_equal(h.started, 52);
    queue_stats qs;
    assert_int_equal(queue_stats_get(q, &qs, err, sizeof err), 0);
    assert_int_equal(qs.dead, 6);
    assert_int_equal(qs.leased, 0);
    assert_int_equal(qs.delayed, 0);
    queue_dead_entry *dead = NULL;
    size_t nd = 0;
    assert_int_equal(queue_dead_list(q, &dead, &nd, err, sizeof err), 0);
    bool saw_payload = false, saw_fail = false;
    for (size_t i = 0; i < nd; i++) {
        saw_payload |= strstr(dead[i].error, "the payload is not a job") != NULL;
        saw_fail |= strcmp(dead[i].error, "failed on purpose (attempt 1 of 1)") == 0;
    }
    assert_true(saw_payload && saw_fail);
    queue_dead_list_free(dead, nd);
    worker_free(w);
    queue_close(q);
    config_free(cfg);
    loader_free(reg);
    log_configure("info", "text");
}

/* ---- heartbeats keep long tasks leased -------------------------------------- */

static void test_long_task_kept_by_heartbeats(void **state)
{
    (void)state;
    wfx f;
    wt_init(&f, "{processes: 1, prefetch: 0}", NO_RETRY,
            "  - {name: long, type: example, params: {mode: sleep, sleep_ms: 1500}}\n");
    int64_t *ids = wt_execs(&f, "long", 2);
    wt_enqueue(&f, ids, 2, 5);
    /* Two workers with a 400 ms lease and tasks of 1.5 s: without
     * heartbeats each would take the other's task for dead. */
    wfx g = f;
    g.log_no = 10; /* its own log file */
    wt_start_worker(&f, "--lease", "400ms", NULL);
    wt_start_worker(&g, "--lease", "400ms", NULL);
    must_reach(&f, 2, 15000, "SELECT count(*) FROM task_executions WHERE status = 'completed'");
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM execution_attempts"), 2);
    assert_int_equal(wt_ll(&f, "SELECT count(DISTINCT worker_pid) FROM execution_attempts"), 2);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM analysis_results"), 2);
    stop_worker_ok(&g);
    stop_worker_ok(&f);
    free(ids);
    wt_done(&f);
}

/* ---- a redelivered item whose execution already finished ------------------- */

static void test_already_finished_acked_without_running(void **state)
{
    (void)state;
    wfx f;
    wt_init(&f, WORKERS_1, NO_RETRY, "  - {name: ok, type: example, params: {mode: succeed}}\n");
    int64_t *ids = wt_execs(&f, "ok", 2);
    /* The first one already ran to completion elsewhere (its ack was lost):
     * it is delivered again and must not run a second time. */
    wt_enqueue(&f, ids, 1, 5);
    wt_start_worker(&f, NULL);
    must_reach(&f, 1, 10000, "SELECT count(*) FROM task_executions WHERE status = 'completed'");
    assert_true(wait_until(nothing_leased, &f, 5000));
    wt_enqueue(&f, ids, 2, 5); /* ids[0] again, and ids[1] */
    must_reach(&f, 2, 10000, "SELECT count(*) FROM task_executions WHERE status = 'completed'");
    assert_true(wait_until(nothing_leased, &f, 5000));
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM execution_attempts WHERE execution_id = %lld",
                           (long long)ids[0]),
                     1);
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM analysis_results"), 2);
    char want[128];
    snprintf(want, sizeof want, "execution %lld is already completed: acknowledged without running it",
             (long long)ids[0]);
    assert_true(wt_wait_log(&f, want, 5000));
    assert_int_equal(wt_qstats(&f).dead, 0);
    stop_worker_ok(&f);
    free(ids);
    wt_done(&f);
}

/* ---- PostgreSQL restarted mid-run ------------------------------------------- */

static void test_store_restart(void **state)
{
    (void)state;
    enum { N = 300 };
    wfx f;
    wt_init(&f, "{processes: 2, prefetch: 8}", "{retry: {max_attempts: 3, initial: 10ms}}",
            "  - {name: s, type: example, params: {mode: sleep, sleep_ms: 5}}\n");
    int64_t *ids = wt_execs(&f, "s", N);
    wt_enqueue(&f, ids, N, 5);
    wt_start_worker(&f, "--lease", "5s", NULL);
    must_reach(&f, 40, 20000, "SELECT count(*) FROM task_executions WHERE status = 'completed'");
    char *out = NULL;
    char *cmd = xasprintf("bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1); "
                          "if [ \"$(id -u)\" = 0 ]; then as='runuser -u pgrtest --'; else as=''; fi; "
                          "$as \"$bindir/pg_ctl\" -D %s/data -l %s/server.log -m fast -w -t 60 restart",
                          g_pg.dir, g_pg.dir);
    int rc = run_capture(cmd, &out);
    free(cmd);
    if (rc != 0)
        fail_msg("PostgreSQL restart failed: %s", out);
    free(out);
    PQreset(store_conn(f.s)); /* the test's own connection went too */
    long long at_restart = wt_ll(&f, "SELECT count(*) FROM task_executions WHERE status = 'completed'");
    print_message("PostgreSQL restarted with %lld of %d completed\n", at_restart, N);
    assert_true(at_restart < N);
    must_reach(&f, N, 40000, "SELECT count(*) FROM task_executions WHERE status = 'completed'");
    assert_int_equal(wt_ll(&f, "SELECT count(*) FROM analysis_results"), N);
    assert_int_equal(wt_ll(&f, "SELECT count(DISTINCT execution_id) FROM analysis_results"), N);
    assert_true(wait_until(nothing_leased, &f, 10000));
    assert_int_equal(wt_qstats(&f).dead, 0);
    char *logs = wt_logs(&f); /* the worker saw the outage, and got over it */
    assert_true(strstr(logs, "in the store: ") || strstr(logs, "to the store: "));
    free(logs);
    stop_worker_ok(&f);
    free(ids);
    wt_done(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_usage_and_missing_store),
        cmocka_unit_test(test_embedded_memory_no_store),
        cmocka_unit_test(test_run_once_records),
        cmocka_unit_test(test_priority_order),
        cmocka_unit_test(test_already_finished_acked_without_running),
        cmocka_unit_test(test_retry_schedule),
        cmocka_unit_test(test_dead_letter_redrive),
        cmocka_unit_test(test_crash_timeout_isolation),
        cmocka_unit_test(test_recycling),
        cmocka_unit_test(test_long_task_kept_by_heartbeats),
        cmocka_unit_test(test_graceful_shutdown),
        cmocka_unit_test(test_kill9_whole_host),
        cmocka_unit_test(test_redis_restart),
        cmocka_unit_test(test_store_restart),
    };
    return cmocka_run_group_tests(tests, wt_group_setup, wt_group_teardown);
}
