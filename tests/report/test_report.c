/*
 * test_report.c - the report plugin and `pgreviewer report`, against a real
 * PostgreSQL: a day of executions and results is seeded straight into a
 * migrated store (two connections, completed and failed runs with errors, a
 * log_analysis-shaped and a custom_sql-shaped result, a previous day to
 * compare with), then `report generate` runs the plugin in an executor
 * exactly as a scheduled task would, and the JSON figures, the Markdown,
 * the HTML (well-formed, self-contained, with charts: checked by
 * check_html.py) and `report show` are asserted.
 *
 * Expected figures for 2026-11-21 (UTC), durations in ms:
 *   prod-main  nightly-logs  completed 1200, 1800
 *   prod-main  checks        completed 100, 200, 300, 400; failed 5000
 *   replica-2  replica-checks completed 500; failed 3000
 *   => 9 executions, 7 completed, 2 failed, min 100, avg 1389, p95 4200, max 5000
 * and for 2026-11-20: checks 100, 100; nightly-logs 1000 => 3 executions.
 */
#include <libpq-fe.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor.h"
#include "loader.h"
#include "report_store.h"
#include "rp.h"
#include "store_testutil.h"
#include "util.h"

typedef struct cli_out {
    int rc;
    char *out, *err;
} cli_out;

static char *slurp(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    char *buf = xmalloc((size_t)n + 1);
    rewind(f);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

/* cmd_report(cfg, args...) (NULL-terminated) with stdout/stderr captured. */
static cli_out run_report(const pgr_config *cfg, ...)
{
    char *argv[20];
    int argc = 0;
    va_list ap;
    va_start(ap, cfg);
    for (char *a; argc < 19 && (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    FILE *fo = tmpfile(), *fe = tmpfile();
    int so = dup(1), se = dup(2);
    dup2(fileno(fo), 1);
    dup2(fileno(fe), 2);
    cli_out r;
    r.rc = cmd_report(cfg, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    fseek(fo, 0, SEEK_END);
    fseek(fe, 0, SEEK_END);
    r.out = slurp(fo);
    r.err = slurp(fe);
    return r;
}

static void out_free(cli_out *r)
{
    free(r->out);
    free(r->err);
}

static void expect_rc(const cli_out *r, int rc)
{
    if (r->rc != rc)
        fail_msg("exit %d, expected %d\nstdout: %.2000s\nstderr: %.2000s", r->rc, rc, r->out,
                 r->err);
}

static void expect_has(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("expected \"%s\" in:\n%.6000s", needle, text);
}

/* ---- fixtures ---------------------------------------------------------------- */

typedef struct fixture {
    pgr_config cfg;
    store *s;
} fixture;

static void add_task(store *s, const char *name, const char *type, const char *conn)
{
    tu_exec(s,
            "INSERT INTO scheduled_tasks (name, task_type, connection_id, owner) "
            "VALUES ('%s', '%s', '%s', 'config')",
            name, type, conn);
}

/* One execution started at `at` (UTC) that took `ms`; returns its id. */
static long long add_exec(store *s, const char *task, const char *at, int ms, const char *status,
                          int attempt, const char *error)
{
    char err_sql[512];
    snprintf(err_sql, sizeof err_sql, error ? "'%s'" : "NULL", error);
    return tu_ll(s,
                 "INSERT INTO task_executions (scheduled_task_id, task_name, task_type, "
                 "connection_id, status, scheduled_for, started_at, completed_at, attempt, "
                 "max_attempts, error_message) SELECT id, name, task_type, connection_id, '%s', "
                 "'%s+00', '%s+00', '%s+00'::timestamptz + interval '%d milliseconds', %d, 3, %s "
                 "FROM scheduled_tasks WHERE name = '%s' RETURNING id",
                 status, at, at, at, ms, attempt, err_sql, task);
}

static void add_result(store *s, long long exec_id, const char *type, const char *at,
                       const char *json)
{
    tu_exec(s,
            "INSERT INTO analysis_results (execution_id, scheduled_task_id, task_name, "
            "connection_id, analysis_type, result, created_at) SELECT e.id, e.scheduled_task_id, "
            "e.task_name, e.connection_id, '%s', '%s', '%s+00' FROM task_executions e "
            "WHERE e.id = %lld",
            type, json, at, exec_id);
}

static const char la_result[] =
    "{\"schema_version\": 1, \"input\": {\"entries\": 98765, \"first_ts\": \"2026-11-21 00:00:01\","
    " \"last_ts\": \"2026-11-21 23:59:58\"},"
    " \"queries\": {\"total\": 3456, \"total_duration_ms\": 123456.7,"
    "  \"top_slowest\": [{\"query\": \"SELECT * FROM orders WHERE id = $1\", \"count\": 17,"
    "    \"max_ms\": 4321.5, \"avg_ms\": 250.25, \"total_ms\": 4254.2},"
    "   {\"query\": \"SELECT count(*) FROM big\", \"count\": 2, \"max_ms\": 900, \"avg_ms\": 800,"
    "    \"total_ms\": 1600}],"
    "  \"top_by_total_duration\": [{\"query\": \"UPDATE stock SET qty = qty - $1\", \"count\": "
    "2500,"
    "    \"total_ms\": 98765.4, \"avg_ms\": 39.5, \"max_ms\": 400}]},"
    " \"errors\": {\"total\": 12, \"classes\": [{\"message_class\": \"deadlock detected\","
    "   \"level\": \"ERROR\", \"count\": 7, \"sqlstate\": {\"40P01\": 7}},"
    "  {\"message_class\": \"duplicate key value violates unique constraint\", \"level\": "
    "\"ERROR\","
    "   \"count\": 5, \"sqlstate\": {\"23505\": 5}}]}}";

static const char la_prev_result[] =
    "{\"schema_version\": 1, \"input\": {\"entries\": 1}, \"queries\": {\"total\": 3000},"
    " \"errors\": {\"total\": 5, \"classes\": []}}";

static const char csql_result[] =
    "{\"schema_version\": 1, \"status\": \"critical\", \"summary\": {\"ok\": 1, \"warning\": 1,"
    " \"critical\": 1, \"unknown\": 0, \"skipped\": 0},"
    " \"queries\": [{\"name\": \"long_transactions\", \"status\": \"warning\", \"row_count\": 2,"
    "   \"rows\": [{\"pid\": 4242, \"usename\": \"batch\", \"age_s\": 1234}, {\"pid\": 1, "
    "\"usename\": \"x\", \"age_s\": 1}],"
    "   \"alert_count\": 1, \"alerts_truncated\": false, \"alerts\": [{\"status\": \"warning\","
    "   \"threshold\": \"age_s > 300\", \"column\": \"age_s\", \"value\": 1234, \"row_number\": 1,"
    "   \"row\": {\"pid\": 4242, \"usename\": \"batch_loader\", \"age_s\": 1234}}]},"
    "  {\"name\": \"cache_hit_ratio\", \"status\": \"ok\", \"row_count\": 1, \"alert_count\": 0,"
    "   \"alerts\": []},"
    "  {\"name\": \"blocking_locks\", \"status\": \"critical\", \"row_count\": 250,"
    "   \"columns\": [{\"name\": \"blocked_pid\", \"type\": \"int4\"}, {\"name\": \"blocking_pid\","
    "   \"type\": \"int4\"}, {\"name\": \"waiting_s\", \"type\": \"int4\"}, {\"name\": \"query\","
    "   \"type\": \"text\"}],"
    "   \"alert_count\": 250, \"alerts_truncated\": true, \"alerts\": [{\"status\": \"critical\","
    "   \"threshold\": \"waiting_s > 60\", \"column\": \"waiting_s\", \"value\": 611,"
    "   \"row_number\": 1, \"row\": {\"blocked_pid\": 5150, \"blocking_pid\": 4242,"
    "   \"waiting_s\": 611, \"query\": \"UPDATE accounts SET balance = balance - 1 WHERE id = "
    "7\"}}]}]}";

static void seed(store *s)
{
    add_task(s, "nightly-logs", "log_analysis", "prod-main");
    add_task(s, "checks", "custom_sql", "prod-main");
    add_task(s, "replica-checks", "custom_sql", "replica-2");
    long long la = add_exec(s, "nightly-logs", "2026-11-21 02:00:00", 1200, "completed", 1, NULL);
    add_exec(s, "nightly-logs", "2026-11-21 14:00:00", 1800, "completed", 1, NULL);
    add_result(s, la, "log_analysis", "2026-11-21 02:00:02", la_result);
    long long cs = 0;
    const char *times[] = {"06:00", "09:00", "12:00", "18:00"};
    for (int i = 0; i < 4; i++) {
        char at[40];
        snprintf(at, sizeof at, "2026-11-21 %s:00", times[i]);
        cs = add_exec(s, "checks", at, 100 * (i + 1), "completed", 1, NULL);
    }
    add_result(s, cs, "custom_sql", "2026-11-21 18:00:01", csql_result);
    add_exec(s, "checks", "2026-11-21 13:00:00", 5000, "failed", 3,
             "canceling statement due to statement timeout");
    add_exec(s, "replica-checks", "2026-11-21 07:00:00", 500, "completed", 1, NULL);
    add_exec(s, "replica-checks", "2026-11-21 23:30:00", 3000, "failed", 1,
             "connection to server at \"replica-2\" failed: Connection refused");
    /* the previous day */
    add_exec(s, "checks", "2026-11-20 06:00:00", 100, "completed", 1, NULL);
    add_exec(s, "checks", "2026-11-20 12:00:00", 100, "completed", 1, NULL);
    long long pla =
        add_exec(s, "nightly-logs", "2026-11-20 02:00:00", 1000, "completed", 1, NULL);
    add_result(s, pla, "log_analysis", "2026-11-20 02:00:01", la_prev_result);
    /* the next day */
    add_exec(s, "checks", "2026-11-22 01:00:00", 100, "completed", 1, NULL);
}

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    tu_config(&f->cfg, tu_fresh_db(true), NULL, 0);
    f->cfg.plugins.directory = getenv("PGR_PLUGIN_DIR");
    f->cfg.plugins.config = json_object();
    f->cfg.defaults.timeout_ms = 60000;
    f->cfg.workers.kill_grace_ms = 2000;
    f->s = tu_open(f->cfg.store.url);
    seed(f->s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    json_decref(f->cfg.plugins.config);
    f->cfg.plugins.directory = NULL;
    f->cfg.plugins.config = NULL;
    tu_config_clear(&f->cfg);
    free(f);
    return 0;
}

/* `report generate ARGS --format json` parsed. */
static json_t *generate_json(fixture *f, const char *a1, const char *a2, const char *a3,
                             const char *a4)
{
    cli_out r = run_report(&f->cfg, "generate", "--format", "json", a1, a2, a3, a4, NULL);
    expect_rc(&r, 0);
    json_error_t je;
    json_t *m = json_loads(r.out, 0, &je);
    if (!m)
        fail_msg("not JSON (%s): %.2000s", je.text, r.out);
    out_free(&r);
    return m;
}

static json_t *path(json_t *root, const char *p)
{
    json_t *cur = root;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", p);
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok && cur;
         tok = strtok_r(NULL, ".", &save)) {
        char *end;
        long idx = strtol(tok, &end, 10);
        cur = *end == '\0' ? json_array_get(cur, (size_t)idx) : json_object_get(cur, tok);
    }
    if (!cur)
        fail_msg("no %s in the report", p);
    return cur;
}

static long long ival(json_t *root, const char *p)
{
    json_t *v = path(root, p);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", p);
    return json_integer_value(v);
}

static const char *sval(json_t *root, const char *p)
{
    json_t *v = path(root, p);
    if (!json_is_string(v))
        fail_msg("%s is not a string", p);
    return json_string_value(v);
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_json_figures(void **state)
{
    fixture *f = *state;
    json_t *m = generate_json(f, "--date", "2026-11-21", NULL, NULL);
    assert_int_equal(ival(m, "schema_version"), 1);
    assert_string_equal(sval(m, "period.start"), "2026-11-21T00:00:00+00");
    assert_string_equal(sval(m, "period.end"), "2026-11-22T00:00:00+00");
    assert_string_equal(sval(m, "previous_period.start"), "2026-11-20T00:00:00+00");
    assert_int_equal(ival(m, "summary.executions"), 9);
    assert_int_equal(ival(m, "summary.by_status.completed"), 7);
    assert_int_equal(ival(m, "summary.by_status.failed"), 2);
    assert_int_equal(ival(m, "summary.duration_ms.min"), 100);
    assert_int_equal(ival(m, "summary.duration_ms.avg"), 1389);
    assert_int_equal(ival(m, "summary.duration_ms.p95"), 4200);
    assert_int_equal(ival(m, "summary.duration_ms.max"), 5000);
    assert_false(json_is_true(path(m, "summary.nothing_ran")));
    /* change against 2026-11-20 */
    assert_int_equal(ival(m, "summary.change.executions.previous"), 3);
    assert_int_equal(ival(m, "summary.change.executions.delta"), 6);
    assert_int_equal(ival(m, "summary.change.failed.delta"), 2);
    assert_int_equal(ival(m, "summary.change.avg_ms.previous"), 400);
    assert_int_equal(ival(m, "summary.change.avg_ms.delta"), 989);
    /* per connection, per task */
    assert_int_equal(json_array_size(path(m, "connections")), 2);
    assert_string_equal(sval(m, "connections.0.connection"), "prod-main");
    assert_int_equal(ival(m, "connections.0.executions"), 7);
    assert_int_equal(ival(m, "connections.0.duration_ms.avg"), 1286);
    assert_string_equal(sval(m, "connections.0.tasks.0.task"), "checks");
    assert_int_equal(ival(m, "connections.0.tasks.0.executions"), 5);
    assert_int_equal(ival(m, "connections.0.tasks.0.by_status.failed"), 1);
    assert_int_equal(ival(m, "connections.0.tasks.0.duration_ms.p95"), 4080);
    assert_int_equal(ival(m, "connections.0.tasks.0.change.executions.delta"), 3);
    assert_string_equal(sval(m, "connections.0.failures.0.error"),
                        "canceling statement due to statement timeout");
    assert_int_equal(ival(m, "connections.0.failures.0.attempts"), 3);
    assert_string_equal(sval(m, "connections.0.failures.0.at"), "2026-11-21T13:00:00+00");
    assert_string_equal(sval(m, "connections.1.connection"), "replica-2");
    assert_string_equal(sval(m, "connections.1.failures.0.error"),
                        "connection to server at \"replica-2\" failed: Connection refused");
    /* the timeline: 24 hourly buckets */
    assert_int_equal(json_array_size(path(m, "timeline.buckets")), 24);
    assert_string_equal(sval(m, "timeline.buckets.13.label"), "13:00");
    assert_int_equal(ival(m, "timeline.buckets.13.failed"), 1);
    assert_int_equal(ival(m, "timeline.buckets.6.completed"), 1);
    json_decref(m);
}

static void test_json_analyses(void **state)
{
    fixture *f = *state;
    json_t *m = generate_json(f, "--date", "2026-11-21", NULL, NULL);
    assert_int_equal(ival(m, "summary.analyses"), 2);
    /* prod-main: checks (custom_sql) then nightly-logs (log_analysis), by task name */
    assert_string_equal(sval(m, "connections.0.analyses.0.task"), "checks");
    assert_string_equal(sval(m, "connections.0.analyses.0.custom_sql.status"), "critical");
    assert_true(
        json_is_true(path(m, "connections.0.analyses.0.custom_sql.queries.2.alerts_truncated")));
    assert_int_equal(
        ival(m, "connections.0.analyses.0.custom_sql.queries.2.alerts.0.row.blocked_pid"), 5150);
    assert_string_equal(
        sval(m, "connections.0.analyses.0.custom_sql.queries.0.alerts.0.threshold"), "age_s > 300");
    assert_string_equal(
        sval(m, "connections.0.analyses.0.custom_sql.queries.0.alerts.0.row.usename"),
        "batch_loader");
    assert_string_equal(sval(m, "connections.0.analyses.1.task"), "nightly-logs");
    assert_int_equal(ival(m, "connections.0.analyses.1.log_analysis.errors_total"), 12);
    assert_int_equal(ival(m, "connections.0.analyses.1.log_analysis.queries_total"), 3456);
    assert_string_equal(sval(m, "connections.0.analyses.1.log_analysis.slowest.0.query"),
                        "SELECT * FROM orders WHERE id = $1");
    assert_string_equal(sval(m, "connections.0.analyses.1.log_analysis.most_time.0.query"),
                        "UPDATE stock SET qty = qty - $1");
    assert_string_equal(
        sval(m, "connections.0.analyses.1.log_analysis.error_classes.0.message_class"),
        "deadlock detected");
    assert_int_equal(ival(m, "connections.0.analyses.1.previous.errors_total"), 5);
    assert_int_equal(ival(m, "connections.0.analyses.1.previous.queries_total"), 3000);
    json_decref(m);
}

static void test_markdown(void **state)
{
    fixture *f = *state;
    cli_out r = run_report(&f->cfg, "generate", "--date", "2026-11-21", NULL);
    expect_rc(&r, 0);
    expect_has(r.out, "# pgreviewer report: 2026-11-21");
    expect_has(r.out, "| executions | 9 | 3 | +6 |");
    expect_has(r.out, "| failed | 2 | 0 | +2 |");
    expect_has(r.out, "| average duration | 1.39 s | 400 ms | +989 ms (+247%) |");
    expect_has(r.out, "### Connection `prod-main`");
    expect_has(r.out,
               "| checks | custom_sql | 5 | 4 | 1 | 0 | 100 ms | 1.20 s | 4.08 s | 5.00 s | +3 |");
    expect_has(r.out, "canceling statement due to statement timeout");
    expect_has(r.out, "| 4.32 s | 17 | 250 ms | SELECT * FROM orders WHERE id = $1 |");
    expect_has(r.out, "| 7 | ERROR | deadlock detected |");
    expect_has(r.out, "- **warning** `long_transactions`: age_s > 300 (value 1234), row: `` {");
    expect_has(r.out, "batch_loader");
    expect_has(r.out, "##### custom_sql `checks`: **critical**");
    expect_has(r.out, "- **critical** `blocking_locks`: waiting_s > 60 (value 611)");
    expect_has(r.out, "- (250 alerts in all for `blocking_locks`; the first 1 are shown)");
    expect_has(r.out, "Previous period: 3000 queries, 5 errors.");
    const char *keep = getenv("PGR_REPORT_KEEP_MD"); /* like PGR_REPORT_KEEP_HTML */
    FILE *kf = keep ? fopen(keep, "w") : NULL;
    if (kf) {
        fputs(r.out, kf);
        fclose(kf);
    }
    out_free(&r);
}

static void test_html(void **state)
{
    fixture *f = *state;
    char file[] = "/tmp/pgr-report-XXXXXX.html";
    int fd = mkstemps(file, 5);
    assert_true(fd >= 0);
    close(fd);
    cli_out r = run_report(&f->cfg, "generate", "--date", "2026-11-21", "--format", "html",
                           "--output", file, NULL);
    expect_rc(&r, 0);
    expect_has(r.err, "wrote the html report to");
    out_free(&r);
    char *cmd = xasprintf("python3 '%s/tests/report/check_html.py' '%s' '<svg>' "
                          "'pgreviewer report: 2026-11-21' 'prod-main' 'replica-2' "
                          "'SELECT * FROM orders WHERE id = $1' 'deadlock detected' "
                          "'canceling statement due to statement timeout' 'age_s > 300' "
                          "'batch_loader' '1.39 s' '4.20 s' 'Executions over time' "
                          "'250 alerts in all for blocking_locks; the first 1 are shown.'",
                          test_source_dir(), file);
    char *out = NULL;
    int rc = run_capture(cmd, &out);
    if (rc != 0)
        fail_msg("check_html.py: %s", out);
    expect_has(out, "3 svg charts");
    free(out);
    free(cmd);
    char rerr[256];
    char *html = read_file(file, NULL, rerr, sizeof rerr);
    assert_non_null(html);
    expect_has(html, "@media print");
    /* the row behind the alert in the query's column order, not jsonb's */
    expect_has(html, "<th>blocked_pid</th><th>blocking_pid</th><th>waiting_s</th><th>query</th>");
    expect_has(html, "@media (max-width:600px)");
    expect_has(html, "<meta name=\"viewport\"");
    free(html);
    /* PGR_REPORT_KEEP_HTML=PATH keeps the seeded report, e.g. for the
     * screenshot in plugins/report/docs/ (not part of the test). */
    const char *keep = getenv("PGR_REPORT_KEEP_HTML");
    if (keep && rename(file, keep) == 0)
        return;
    unlink(file);
}

static void test_stored_and_show(void **state)
{
    fixture *f = *state;
    cli_out r = run_report(&f->cfg, "generate", "--date", "2026-11-21", NULL);
    expect_rc(&r, 0);
    out_free(&r);
    assert_int_equal(tu_ll(f->s, "SELECT count(*) FROM reports WHERE period_start = "
                                 "'2026-11-21 00:00+00' AND period_end = '2026-11-22 00:00+00'"),
                     3);
    char *formats = tu_text(f->s, "SELECT string_agg(format, ',' ORDER BY format) FROM reports");
    assert_string_equal(formats, "html,json,markdown");
    free(formats);
    r = run_report(&f->cfg, "show", "--date", "2026-11-21", "--format", "json", NULL);
    expect_rc(&r, 0);
    json_t *m = json_loads(r.out, 0, NULL);
    assert_non_null(m);
    assert_int_equal(ival(m, "summary.executions"), 9);
    json_decref(m);
    out_free(&r);
    r = run_report(&f->cfg, "show", "--date", "2026-11-21", NULL);
    expect_rc(&r, 0);
    expect_has(r.out, "| executions | 9 | 3 | +6 |");
    out_free(&r);
    r = run_report(&f->cfg, "show", "--date", "2026-11-21", "--format", "html", NULL);
    expect_rc(&r, 0);
    expect_has(r.out, "<!DOCTYPE html>");
    out_free(&r);
    r = run_report(&f->cfg, "show", "--date", "2026-11-22", NULL);
    expect_rc(&r, 1);
    assert_string_equal(r.err, "pgreviewer: no stored markdown report for 2026-11-22 (all "
                               "connections); build one with: pgreviewer report generate "
                               "--date 2026-11-22\n");
    out_free(&r);
    /* a report of one connection is not the report of all */
    r = run_report(&f->cfg, "show", "--date", "2026-11-21", "--connection", "replica-2", NULL);
    expect_rc(&r, 1);
    expect_has(r.err, "(connection replica-2)");
    out_free(&r);
}

static void test_connection_scope(void **state)
{
    fixture *f = *state;
    json_t *m = generate_json(f, "--date", "2026-11-21", "--connection", "replica-2");
    assert_string_equal(sval(m, "scope.connection"), "replica-2");
    assert_int_equal(ival(m, "summary.executions"), 2);
    assert_int_equal(json_array_size(path(m, "connections")), 1);
    assert_int_equal(ival(m, "connections.0.by_status.failed"), 1);
    json_decref(m);
    cli_out r = run_report(&f->cfg, "show", "--date", "2026-11-21", "--connection", "replica-2",
                           "--format", "json", NULL);
    expect_rc(&r, 0);
    expect_has(r.out, "\"connection\": \"replica-2\"");
    out_free(&r);
}

static void test_empty_period(void **state)
{
    fixture *f = *state;
    json_t *m = generate_json(f, "--date", "2026-10-01", NULL, NULL);
    assert_true(json_is_true(path(m, "summary.nothing_ran")));
    assert_int_equal(ival(m, "summary.executions"), 0);
    assert_true(json_is_null(path(m, "summary.duration_ms.avg")));
    assert_int_equal(json_array_size(path(m, "connections")), 0);
    json_decref(m);
    cli_out r = run_report(&f->cfg, "generate", "--date", "2026-10-01", NULL);
    expect_rc(&r, 0);
    expect_has(r.out, "**Nothing ran in this period**");
    expect_has(r.out, "| executions | 0 | 0 | 0 |");
    out_free(&r);
}

static void test_range_and_timezone(void **state)
{
    fixture *f = *state;
    /* In Yekaterinburg (+05) the 21st runs from 19:00 UTC on the 20th to
     * 19:00 UTC on the 21st: the 20th's runs (before 19:00 UTC) and the
     * 23:30 UTC failure fall outside, leaving 8 runs with 1 failure. */
    json_t *m = generate_json(f, "--date", "2026-11-21", "--timezone", "Asia/Yekaterinburg");
    assert_string_equal(sval(m, "period.start"), "2026-11-21T00:00:00+05");
    assert_string_equal(sval(m, "period.timezone"), "Asia/Yekaterinburg");
    assert_int_equal(ival(m, "summary.executions"), 8);
    assert_int_equal(ival(m, "summary.by_status.failed"), 1);
    json_decref(m);
    /* A 25-hour day: Paris leaves summer time on 2026-10-25. */
    m = generate_json(f, "--date", "2026-10-25", "--timezone", "Europe/Paris");
    assert_string_equal(sval(m, "period.start"), "2026-10-25T00:00:00+02");
    assert_string_equal(sval(m, "period.end"), "2026-10-26T00:00:00+01");
    assert_string_equal(sval(m, "previous_period.start"), "2026-10-24T00:00:00+02");
    json_decref(m);
    cli_out r = run_report(&f->cfg, "generate", "--format", "json", "--from",
                           "2026-11-21T12:00:00Z", "--to", "2026-11-21T14:00:00Z", NULL);
    expect_rc(&r, 0);
    m = json_loads(r.out, 0, NULL);
    assert_non_null(m);
    assert_int_equal(ival(m, "summary.executions"), 2); /* 12:00 completed, 13:00 failed */
    assert_string_equal(sval(m, "previous_period.start"), "2026-11-21T10:00:00+00");
    assert_false(json_is_true(path(m, "period.day")));
    json_decref(m);
    out_free(&r);
}

static void test_bad_input(void **state)
{
    fixture *f = *state;
    cli_out r = run_report(&f->cfg, "generate", "--date", "2026-13-45", NULL);
    expect_rc(&r, 1);
    expect_has(r.err, "date: \"2026-13-45\" is not a valid date (expected YYYY-MM-DD)");
    out_free(&r);
    r = run_report(&f->cfg, "generate", "--date", "21/11/2026", NULL);
    expect_rc(&r, 2);
    expect_has(r.err, "--date: expected YYYY-MM-DD, got \"21/11/2026\"");
    out_free(&r);
    r = run_report(&f->cfg, "generate", "--date", "2026-11-21", "--timezone", "Mars/Olympus", NULL);
    expect_rc(&r, 1);
    expect_has(r.err, "timezone: \"Mars/Olympus\" is not a time zone PostgreSQL knows");
    out_free(&r);
    r = run_report(&f->cfg, "generate", "--from", "2026-11-21T14:00:00Z", "--to",
                   "2026-11-21T12:00:00Z", NULL);
    expect_rc(&r, 1);
    expect_has(r.err, "must be after from");
    out_free(&r);
    r = run_report(&f->cfg, "show", "--date", "2026-11-21", "--format", "pdf", NULL);
    expect_rc(&r, 2);
    expect_has(r.err, "--format: expected html, md or json, got \"pdf\"");
    out_free(&r);
    r = run_report(&f->cfg, "show", NULL);
    expect_rc(&r, 2);
    expect_has(r.err, "--date YYYY-MM-DD is required");
    out_free(&r);
    r = run_report(&f->cfg, "publish", NULL);
    expect_rc(&r, 2);
    expect_has(r.err, "usage: pgreviewer report show");
    out_free(&r);
    assert_int_equal(tu_ll(f->s, "SELECT count(*) FROM reports"), 0);
}

static void test_store_from_result(void **state)
{
    fixture *f = *state;
    char err[512];
    json_t *other = json_pack("{s:i}", "hello", 1);
    assert_int_equal(report_store_from_result(f->s, 0, other, err, sizeof err), 0);
    json_decref(other);
    long long exec_id = tu_ll(f->s, "SELECT min(id) FROM task_executions");
    json_t *res = json_pack("{s:i, s:{s:s, s:s}, s:{s:s}, s:{s:{s:i}, s:s}}", "schema_version", 1,
                            "period", "start", "2026-11-21T00:00:00+05", "end",
                            "2026-11-22T00:00:00+05", "scope", "timezone", "Asia/Yekaterinburg",
                            "reports", "json", "n", 1, "markdown", "# hi");
    assert_int_equal(report_store_from_result(f->s, exec_id, res, err, sizeof err), 2);
    /* the same execution stored again replaces its rows */
    assert_int_equal(report_store_from_result(f->s, exec_id, res, err, sizeof err), 2);
    assert_int_equal(tu_ll(f->s, "SELECT count(*) FROM reports WHERE execution_id = %lld", exec_id),
                     2);
    /* the text variant: other results are not even parsed */
    assert_int_equal(report_store_from_result_text(f->s, exec_id, "{\"rows\": [1, 2]}", err,
                                                   sizeof err), 0);
    assert_int_equal(report_store_from_result_text(f->s, exec_id, NULL, err, sizeof err), 0);
    char *text = json_dumps(res, JSON_COMPACT);
    assert_int_equal(report_store_from_result_text(f->s, exec_id, text, err, sizeof err), 2);
    free(text);
    assert_int_equal(tu_ll(f->s, "SELECT count(*) FROM reports"), 2);
    char *body = NULL;
    assert_int_equal(
        report_store_find(f->s, "2026-11-21", NULL, "markdown", &body, err, sizeof err), 0);
    assert_string_equal(body, "# hi");
    free(body);
    assert_int_equal(
        report_store_find(f->s, "2026-11-20", NULL, "markdown", &body, err, sizeof err), 1);
    assert_int_equal(report_store_find(f->s, "2026-11-21", NULL, "html", &body, err, sizeof err),
                     1);
    /* a bad period is an error and stores nothing */
    json_object_set_new(json_object_get(res, "period"), "start", json_string("yesterday-ish"));
    assert_int_equal(report_store_from_result(f->s, exec_id, res, err, sizeof err), -1);
    expect_has(err, "reports: inserting");
    assert_int_equal(tu_ll(f->s, "SELECT count(*) FROM reports"), 2);
    json_decref(res);
}

/* ---- the plugin run directly (params the CLI does not expose) --------------- */

/* Run the report plugin once in an executor with `params_json` (as a
 * scheduled task on connection `store` would). Caller frees the result. */
static exec_result *run_plugin(fixture *f, const char *params_json)
{
    char err[512];
    plugin_registry *reg = loader_load_dir(f->cfg.plugins.directory, err, sizeof err);
    if (!reg)
        fail_msg("%s", err);
    exec_pool *pool = pool_new(&f->cfg, reg, 1, err, sizeof err);
    if (!pool)
        fail_msg("%s", err);
    exec_job *job = exec_job_new(0, "report-test", "report", "store",
                                 json_loads(params_json, 0, NULL), NULL, 30000, 1);
    assert_int_equal(pool_submit(pool, job), 0);
    exec_result *r = NULL;
    while (pool_wait(pool, &r, -1) == 0)
        ;
    pool_free(pool, 0);
    loader_free(reg);
    assert_non_null(r);
    return r;
}

typedef struct sink {
    char dir[64];
    pid_t pid;
    int port;
} sink;

static bool port_written(void *arg)
{
    char path[128];
    snprintf(path, sizeof path, "%s/port", ((sink *)arg)->dir);
    return access(path, F_OK) == 0;
}

/* Start webhook_sink.py answering `status`. */
static void sink_start(sink *k, int status)
{
    snprintf(k->dir, sizeof k->dir, "/tmp/pgr-sink-XXXXXX");
    assert_non_null(mkdtemp(k->dir));
    char *script = xasprintf("%s/tests/report/webhook_sink.py", test_source_dir());
    char st[16];
    snprintf(st, sizeof st, "%d", status);
    char *argv[] = {"python3", script, k->dir, st, NULL};
    extern char **environ;
    assert_int_equal(posix_spawnp(&k->pid, "python3", NULL, NULL, argv, environ), 0);
    free(script);
    if (!wait_until(port_written, k, 10000))
        fail_msg("webhook_sink.py did not start");
    char path[128], rerr[128];
    snprintf(path, sizeof path, "%s/port", k->dir);
    char *p = read_file(path, NULL, rerr, sizeof rerr);
    k->port = atoi(p);
    free(p);
}

/* The file `name` the sink wrote (call after it answered), malloc'ed. */
static char *sink_file(sink *k, const char *name)
{
    char path[128], rerr[128];
    snprintf(path, sizeof path, "%s/%s", k->dir, name);
    return read_file(path, NULL, rerr, sizeof rerr);
}

static void sink_stop(sink *k)
{
    int st;
    if (waitpid(k->pid, &st, WNOHANG) == 0) {
        kill(k->pid, SIGTERM);
        waitpid(k->pid, &st, 0);
    }
    char *cmd = xasprintf("rm -rf '%s'", k->dir);
    run_capture(cmd, NULL);
    free(cmd);
}

static void test_webhook_and_output_dir(void **state)
{
    fixture *f = *state;
    sink k;
    sink_start(&k, 200);
    char dir[] = "/tmp/pgr-reports-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *params = xasprintf("{\"date\": \"2026-11-21\", \"formats\": [\"json\", \"markdown\"], "
                             "\"output_dir\": \"%s\", \"webhook\": {\"url\": "
                             "\"http://hook:s3cret@127.0.0.1:%d/hook?token=abc\", \"retries\": 0, "
                             "\"timeout\": 5}}",
                             dir, k.port);
    exec_result *r = run_plugin(f, params);
    if (r->outcome != EXEC_SUCCESS)
        fail_msg("outcome %s: %s", exec_outcome_name(r->outcome), r->message);
    assert_string_equal(r->message, "report 2026-11-21: 9 executions, 2 failed, 2 analyses");
    /* the result: json and markdown only */
    json_t *reports = json_object_get(r->result, "reports");
    assert_non_null(json_object_get(reports, "json"));
    assert_non_null(json_object_get(reports, "markdown"));
    assert_null(json_object_get(reports, "html"));
    /* the webhook got the JSON report */
    int st;
    waitpid(k.pid, &st, 0);
    char *body = sink_file(&k, "body"), *req = sink_file(&k, "request");
    json_t *m = json_loads(body, 0, NULL);
    assert_non_null(m);
    assert_int_equal(ival(m, "summary.executions"), 9);
    json_decref(m);
    expect_has(req, "POST /hook?token=abc");
    expect_has(req, "Content-Type: application/json");
    expect_has(req, "Authorization: Basic ");
    free(body);
    free(req);
    /* the files */
    char *md = xasprintf("%s/report-2026-11-21.md", dir),
         *js = xasprintf("%s/report-2026-11-21.json", dir);
    char *html = xasprintf("%s/report-2026-11-21.html", dir), rerr[128];
    char *text = read_file(md, NULL, rerr, sizeof rerr);
    assert_non_null(text);
    expect_has(text, "| executions | 9 | 3 | +6 |");
    free(text);
    assert_int_equal(access(js, F_OK), 0);
    assert_int_equal(access(html, F_OK), -1);
    unlink(md);
    unlink(js);
    rmdir(dir);
    free(md);
    free(js);
    free(html);
    free(params);
    exec_result_free(r);
    sink_stop(&k);
}

static void test_webhook_failure_redacted(void **state)
{
    fixture *f = *state;
    sink k;
    sink_start(&k, 500);
    char *params = xasprintf("{\"date\": \"2026-11-21\", \"webhook\": {\"url\": "
                             "\"http://hook:s3cret@127.0.0.1:%d/hook?token=abc\", \"retries\": 0}}",
                             k.port);
    exec_result *r = run_plugin(f, params);
    assert_int_equal(r->outcome, EXEC_RETRY);
    char want[200];
    snprintf(want, sizeof want, "webhook http://***@127.0.0.1:%d/hook?***: HTTP status 500",
             k.port);
    assert_string_equal(r->message, want);
    exec_result_free(r);
    free(params);
    sink_stop(&k);
    /* nothing listens any more: a connection error, still redacted */
    params = xasprintf("{\"date\": \"2026-11-21\", \"webhook\": {\"url\": "
                       "\"http://hook:s3cret@127.0.0.1:%d/?token=abc\", \"retries\": 0}}",
                       k.port);
    r = run_plugin(f, params);
    assert_int_equal(r->outcome, EXEC_RETRY);
    expect_has(r->message, "webhook http://***@127.0.0.1:");
    assert_null(strstr(r->message, "s3cret"));
    assert_null(strstr(r->message, "abc"));
    exec_result_free(r);
    free(params);
}

static void test_needs_store_connection(void **state)
{
    fixture *f = *state;
    char err[512];
    plugin_registry *reg = loader_load_dir(f->cfg.plugins.directory, err, sizeof err);
    assert_non_null(reg);
    exec_pool *pool = pool_new(&f->cfg, reg, 1, err, sizeof err);
    assert_non_null(pool);
    exec_job *job = exec_job_new(0, "report-test", "report", NULL, json_object(), NULL, 30000, 1);
    assert_int_equal(pool_submit(pool, job), 0);
    exec_result *r = NULL;
    while (pool_wait(pool, &r, -1) == 0)
        ;
    assert_int_equal(r->outcome, EXEC_FAIL);
    assert_string_equal(r->message,
                        "report: the task needs `connection: store` (the analytics store)");
    exec_result_free(r);
    pool_free(pool, 0);
    loader_free(reg);
}

/* The collector and renderers in this process (sanitizer builds check them
 * for leaks and overflows here), on the same data as the CLI. */
static void test_in_process(void **state)
{
    fixture *f = *state;
    PGconn *c = PQconnectdb(f->cfg.store.url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQclear(PQexec(c, "BEGIN READ ONLY"));
    char err[512];
    rp_request req = {.date = "2026-11-21", .timezone = "UTC", .title = "In process", .top = 1,
                      .max_failures = 0};
    json_t *m = rp_collect(c, &req, err, sizeof err);
    if (!m)
        fail_msg("%s", err);
    assert_int_equal(ival(m, "summary.executions"), 9);
    assert_int_equal(json_array_size(path(m, "connections.0.failures")), 0); /* max_failures 0 */
    assert_int_equal(json_array_size(path(m, "connections.0.analyses.1.log_analysis.slowest")), 1);
    char *md = rp_markdown(m), *html = rp_html(m);
    expect_has(md, "# In process: 2026-11-21");
    expect_has(md, "(1 more not listed)");
    expect_has(html, "<svg");
    free(md);
    free(html);
    json_decref(m);
    PQclear(PQexec(c, "ROLLBACK"));
    /* an idle connection: its own transaction, the zone not left behind */
    req.timezone = "Asia/Yekaterinburg";
    m = rp_collect(c, &req, err, sizeof err);
    assert_non_null(m);
    assert_string_equal(sval(m, "period.start"), "2026-11-21T00:00:00+05");
    json_decref(m);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    PGresult *tz = PQexec(c, "SHOW TimeZone");
    assert_string_not_equal(PQgetvalue(tz, 0, 0), "Asia/Yekaterinburg");
    PQclear(tz);
    /* a bad zone: NULL and a message, nothing leaked */
    req.timezone = "Nowhere/Nothing";
    assert_null(rp_collect(c, &req, err, sizeof err));
    expect_has(err, "timezone: \"Nowhere/Nothing\"");
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    /* a task without a connection gets a section of its own */
    tu_exec(f->s, "INSERT INTO scheduled_tasks (name, task_type, owner) "
                  "VALUES ('local-logs', 'log_analysis', 'config')");
    add_exec(f->s, "local-logs", "2026-11-21 05:00:00", 42, "completed", 1, NULL);
    req.timezone = "UTC";
    m = rp_collect(c, &req, err, sizeof err);
    assert_non_null(m);
    assert_int_equal(json_array_size(path(m, "connections")), 3);
    assert_true(json_is_null(path(m, "connections.0.connection")));
    assert_int_equal(ival(m, "connections.0.duration_ms.max"), 42);
    md = rp_markdown(m);
    expect_has(md, "### Tasks without a connection");
    free(md);
    json_decref(m);
    PQfinish(c);
    /* escaping */
    rp_buf b = {0};
    rp_put_html(&b, "<a href='x'>&\"</a>");
    assert_string_equal(b.s, "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    rp_buf_free(&b);
    rp_put_md_cell(&b, "a|b\nc", 0);
    assert_string_equal(b.s, "a\\|b c");
    rp_buf_free(&b);
    rp_put_md_cell(&b, "h\xc3\xa9llo", 2); /* never cut inside the two-byte é */
    assert_string_equal(b.s, "h\xc3\xa9\xe2\x80\xa6");
    rp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_figures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_analyses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_markdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_html, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stored_and_show, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_period, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_and_timezone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_from_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_and_output_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_failure_redacted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_needs_store_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_process, setup, teardown),
    };
    return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
