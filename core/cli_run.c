/*
 * cli_run.c - `pgreviewer run --once`: run every configured task (or the
 * ones named with --task) once, now, through forked executor processes,
 * retrying per each task's retry policy, and print one JSON line per task.
 * Exit 1 if any task failed. It needs neither Redis nor a store; when
 * store.url is configured, each task's run is recorded there as a manual
 * execution (attempts, outcome, result, plugin state read before the run
 * and saved after it), so `task history` shows it.
 *
 * Jobs wait in a ready list ordered by priority (higher first, then
 * configuration order) and retries in a delayed list ordered by due time;
 * the loop never sleeps in an executor to wait for a retry.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "daemon.h"
#include "report_store.h"
#include "executor.h"
#include "log.h"
#include "runtime.h"
#include "store.h"

typedef struct once_task {
    const cfg_task *task;
    int attempts;
    int64_t due_mono;     /* when it may run (retries); 0: now */
    int64_t total_ms;     /* time spent over all attempts */
    bool running, done;
    exec_result *last;    /* the final attempt's outcome */
    int64_t exec_id;      /* its execution in the store, 0: not recorded */
    const char *plugin;   /* owner of its plugin state (registry's), or NULL */
    char *state;          /* plugin state read from the store, or NULL */
} once_task;

static store *rec_store; /* the store runs are recorded in, or NULL */

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* Back-off before attempt `attempt + 1`: initial * multiplier^(attempt-1),
 * capped at max_delay, then jittered per the policy. */
static int64_t backoff_ms(const cfg_retry *r, int attempt)
{
    double d = (double)r->initial_ms;
    for (int i = 1; i < attempt && d < (double)r->max_delay_ms; i++)
        d *= r->multiplier;
    if (d > (double)r->max_delay_ms)
        d = (double)r->max_delay_ms;
    int64_t cap = (int64_t)d;
    if (cap <= 0)
        return 0;
    switch (r->jitter) {
    case JITTER_FULL:
        return (int64_t)(next_rand() % (uint64_t)(cap + 1));
    case JITTER_EQUAL:
        return cap / 2 + (int64_t)(next_rand() % (uint64_t)(cap / 2 + 1));
    default:
        return cap;
    }
}

/* The next task to start: due, not running, highest priority first. */
static once_task *pick(once_task *ts, size_t n, int64_t now)
{
    once_task *best = NULL;
    for (size_t i = 0; i < n; i++) {
        once_task *t = &ts[i];
        if (t->done || t->running || t->due_mono > now)
            continue;
        if (!best || t->task->priority > best->task->priority)
            best = t;
    }
    return best;
}

static int64_t next_due(once_task *ts, size_t n, int64_t now)
{
    int64_t next = -1;
    for (size_t i = 0; i < n; i++) {
        if (ts[i].done || ts[i].running)
            continue;
        int64_t wait = ts[i].due_mono > now ? ts[i].due_mono - now : 0;
        if (next < 0 || wait < next)
            next = wait;
    }
    return next;
}

static void print_line(const once_task *t)
{
    const exec_result *r = t->last;
    bool ok = r && r->outcome == EXEC_SUCCESS;
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:I}", "task", t->task->name, "type",
                          t->task->type, "status", ok ? "completed" : "failed", "attempts",
                          t->attempts, "duration_ms", (json_int_t)t->total_ms);
    if (t->exec_id)
        json_object_set_new(o, "execution_id", json_integer(t->exec_id));
    if (r && !ok)
        json_object_set_new(o, "outcome", json_string(exec_outcome_name(r->outcome)));
    if (ok)
        json_object_set(o, "result", r->result ? r->result : json_null());
    else
        json_object_set_new(o, "error", json_string(r && r->message ? r->message
                                                    : stop_requested ? "cancelled: shutting down"
                                                                     : "did not run"));
    if (ok && r->message)
        json_object_set_new(o, "message", json_string(r->message));
    char *s = json_dumps(o, JSON_COMPACT | PGR_JSON_REAL);
    puts(s);
    fflush(stdout);
    free(s);
    json_decref(o);
}

/* Store the start of an attempt; returns the store's attempt number, or
 * `fallback` when not recorded. */
static int record_start(once_task *t, int fallback)
{
    if (!rec_store || !t->exec_id)
        return fallback;
    char err[512];
    store_start st = {t->exec_id, "run --once", getpid()};
    store_start_info info = {0};
    int attempt = fallback;
    if (store_exec_start(rec_store, &st, 1, &info, err, sizeof err) < 0)
        log_error("task %s: recording the start in the store: %s", t->task->name, err);
    else if (info.rc == STORE_START_OK)
        attempt = info.attempt;
    store_start_info_clear(&info);
    return attempt;
}

/* Store the end of an attempt: completed, failed, or scheduled again. */
static void record_finish(once_task *t, const exec_result *r, bool again, int64_t delay)
{
    if (!rec_store || !t->exec_id)
        return;
    char *res = r->result ? json_dumps(r->result, JSON_COMPACT | JSON_ENCODE_ANY | PGR_JSON_REAL)
                          : NULL;
    char *st = r->state && t->plugin
                   ? json_dumps(r->state, JSON_COMPACT | JSON_ENCODE_ANY | PGR_JSON_REAL)
                   : NULL;
    bool ok = r->outcome == EXEC_SUCCESS;
    store_finish f = {
        .execution_id = t->exec_id,
        .status = ok ? STORE_COMPLETED : again ? STORE_SCHEDULED : STORE_FAILED,
        .outcome = r->outcome == EXEC_CRASHED   ? "crashed"
                   : r->outcome == EXEC_TIMEOUT ? "timeout"
                                                : NULL,
        .result_json = res,
        .error = ok ? NULL : (r->message ? r->message : exec_outcome_name(r->outcome)),
        .plugin = t->plugin,
        .state_json = st,
        .not_before_ms = again ? wall_ms() + delay : 0,
    };
    char err[512];
    if (store_exec_finish(rec_store, &f, err, sizeof err) < 0)
        log_error("task %s: recording the outcome in the store: %s", t->task->name, err);
    else if (ok && res &&
             report_store_from_result_text(rec_store, t->exec_id, res, err, sizeof err) < 0)
        log_error("task %s: storing its report: %s", t->task->name, err);
    free(res);
    free(st);
}

/* Create a manual execution per task and read its plugin state. Returns 0
 * or -1 (message printed). */
static int record_open(runtime *rt, once_task *ts, size_t n)
{
    char err[512];
    rec_store = store_open_config(rt->cfg, err, sizeof err);
    if (!rec_store || store_sync_tasks(rec_store, rt->cfg, NULL, err, sizeof err) < 0) {
        cli_error("run: %s", err);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const loaded_plugin *p = loader_find_type(rt->plugins, ts[i].task->type);
        ts[i].plugin = p ? p->name : NULL;
        if (store_trigger(rec_store, ts[i].task->name, NULL, &ts[i].exec_id, err, sizeof err) != 0 ||
            (ts[i].plugin && store_plugin_state_get(rec_store, ts[i].task->name, ts[i].plugin,
                                                    &ts[i].state, err, sizeof err) < 0)) {
            cli_error("run: task %s: %s", ts[i].task->name, err);
            return -1;
        }
    }
    return 0;
}

static void handle_result(once_task *ts, size_t n, exec_result *r, bool no_retry)
{
    once_task *t = r->job->user;
    (void)n;
    (void)ts;
    t->running = false;
    t->total_ms += r->duration_ms;
    exec_result_free(t->last);
    t->last = r;
    int max = no_retry ? 1 : t->task->retry.max_attempts;
    if (exec_outcome_retryable(r->outcome) && t->attempts < max && !stop_requested) {
        int64_t delay = backoff_ms(&t->task->retry, t->attempts);
        t->due_mono = mono_ms() + delay;
        record_finish(t, r, true, delay);
        log_info("task %s: attempt %d %s (%s); retrying in %lld ms", t->task->name, t->attempts,
                 exec_outcome_name(r->outcome), r->message ? r->message : "", (long long)delay);
        return;
    }
    t->done = true;
    record_finish(t, r, false, 0);
    print_line(t);
}

static int run_once(runtime *rt, once_task *ts, size_t n, bool no_retry)
{
    int procs = rt->cfg->workers.processes;
    if ((size_t)procs > n)
        procs = (int)n;
    char err[256];
    exec_pool *pool = pool_new(rt->cfg, rt->plugins, procs, err, sizeof err);
    if (!pool) {
        cli_error("%s", err);
        return EXIT_FAIL;
    }
    for (;;) {
        int64_t now = mono_ms();
        once_task *t;
        while (!stop_requested && pool_idle(pool) > 0 && (t = pick(ts, n, now))) {
            t->attempts++;
            t->running = true;
            json_t *state = t->state ? json_loads(t->state, JSON_DECODE_ANY, NULL) : NULL;
            exec_job *job = exec_job_new(t->exec_id, t->task->name, t->task->type,
                                         t->task->connection, json_incref(t->task->params), state,
                                         t->task->timeout_ms, record_start(t, t->attempts));
            job->user = t;
            pool_submit(pool, job);
        }
        int64_t wait = stop_requested ? -1 : next_due(ts, n, mono_ms());
        if (pool_busy(pool) == 0 && wait < 0)
            break;
        exec_result *r = NULL;
        if (stop_requested)
            pool_cancel_all(pool);
        int rc = pool_wait(pool, &r, pool_busy(pool) ? wait : (wait > 0 ? wait : 0));
        if (rc == 1)
            handle_result(ts, n, r, no_retry);
        if (stop_requested && pool_busy(pool) == 0)
            break;
    }
    pool_free(pool, rt->cfg->workers.shutdown_grace_ms);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ts[i].done) {
            ts[i].done = true;
            char cerr[512];
            if (rec_store && ts[i].exec_id &&
                store_exec_cancel(rec_store, ts[i].exec_id, "cancelled: run --once was stopped",
                                  cerr, sizeof cerr) < 0)
                log_error("task %s: %s", ts[i].task->name, cerr);
            print_line(&ts[i]);
        }
        failed += !(ts[i].last && ts[i].last->outcome == EXEC_SUCCESS);
        exec_result_free(ts[i].last);
    }
    return failed ? EXIT_FAIL : EXIT_OK;
}

int cmd_run(const char *config_path, int argc, char **argv)
{
    bool once = false, no_retry = false;
    const char **names = xcalloc((size_t)argc + 1, sizeof *names);
    size_t n_names = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--once")) {
            once = true;
        } else if (!strcmp(argv[i], "--no-retry")) {
            no_retry = true;
        } else if (!strcmp(argv[i], "--task") && i + 1 < argc) {
            names[n_names++] = argv[++i];
        } else {
            cli_error("run: unexpected argument \"%s\"\nusage: pgreviewer run --once [--task "
                      "NAME]... [--no-retry]",
                      argv[i]);
            free(names);
            return EXIT_USAGE;
        }
    }
    if (!once && (n_names || no_retry)) {
        cli_error("run: --task and --no-retry go with --once");
        free(names);
        return EXIT_USAGE;
    }
    strbuf errs = {0};
    runtime *rt = runtime_open(config_path, RT_CONFIG_REQUIRED, &errs);
    if (!rt) {
        fputs(errs.buf, stderr);
        sb_free(&errs);
        free(names);
        return EXIT_FAIL;
    }
    if (!once) {
        int drc = daemon_run(rt);
        runtime_free(rt);
        free(names);
        return drc;
    }
    log_configure(rt->cfg->logging.level, rt->cfg->logging.format);
    once_task *ts = xcalloc(rt->cfg->n_tasks + 1, sizeof *ts);
    size_t n = 0;
    int rc = EXIT_OK;
    for (size_t k = 0; k < n_names; k++) {
        if (!config_find_task(rt->cfg, names[k])) {
            cli_error("run: task \"%s\" is not configured in %s", names[k], rt->config_path);
            rc = EXIT_FAIL;
        }
    }
    for (size_t i = 0; rc == EXIT_OK && i < rt->cfg->n_tasks; i++) {
        const cfg_task *t = &rt->cfg->tasks[i];
        bool wanted = n_names == 0 ? t->enabled : false;
        for (size_t k = 0; k < n_names; k++)
            wanted = wanted || !strcmp(names[k], t->name);
        if (wanted)
            ts[n++].task = t;
    }
    if (rc == EXIT_OK && n == 0) {
        cli_error("run: no tasks to run in %s", rt->config_path);
        rc = EXIT_FAIL;
    }
    if (rc == EXIT_OK && rt->cfg->store.url && record_open(rt, ts, n) < 0)
        rc = EXIT_FAIL;
    if (rc == EXIT_OK) {
        struct sigaction sa = {0};
        sa.sa_handler = on_stop;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        rc = run_once(rt, ts, n, no_retry);
    }
    for (size_t i = 0; i < n; i++)
        free(ts[i].state);
    store_close(rec_store);
    rec_store = NULL;
    free(ts);
    free(names);
    runtime_free(rt);
    return rc;
}
