/*
 * test_la_server.c - log_analysis with `source: server`, through the real
 * binary (`pgreviewer plugin exec log_analysis --connection t`), against a
 * throw-away PostgreSQL whose logging collector writes stderr, csvlog and
 * jsonlog files into data/log.
 *
 * A known workload runs as role "app" in database "shop" (application
 * "wl"), so its figures can be told from the statements of the plugin and
 * of this test, which are logged too (log_min_duration_statement = 0).
 * Each batch ends with a marker statement, and the test waits (with a
 * deadline) until the collector has written the marker to the file before
 * it runs the plugin. Covered: the figures of a first run in all three
 * formats, an incremental run that counts only the new lines, a rotation
 * (pg_rotate_logfile) with nothing lost or doubled, full: true, roles
 * without the privileges (the message names them), invalid params, and a
 * server with logging_collector off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testenv.h"

#define PREFIX "%m [%p] %q%u@%d/%a "
#define PREFIX_FMT "%%m [%%p] %%q%%u@%%d/%%a " /* the same, in a printf format */

static testpg pg;
static char dir[64];
static int batch_no;

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    char buf[8192] = "";
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    return strdup(buf);
}

/* Start a server in dir/name with the collector on or off; fills *out. */
static int start_server(testpg *out, const char *name, int collector)
{
    char cmd[2048], *text = NULL;
    memset(out, 0, sizeof *out);
    snprintf(out->dir, sizeof out->dir, "%s/%s", dir, name);
    snprintf(cmd, sizeof cmd,
             "%s/tests/lib/pg_harness.sh start %s 'logging_collector = %s' "
             "\"log_directory = 'log'\" 'log_min_duration_statement = 0' "
             "\"log_line_prefix = '" PREFIX_FMT "'\" "
             "\"log_destination = 'stderr,csvlog,jsonlog'\"",
             test_source_dir(), out->dir, collector ? "on" : "off");
    int rc = run_capture(cmd, &text);
    if (rc != 0) {
        fprintf(stderr, "pg_harness start failed (%d): %s\n", rc, text ? text : "");
        free(text);
        return -1;
    }
    char *nl = strchr(text, '\n');
    if (nl)
        *nl = '\0';
    snprintf(out->conninfo, sizeof out->conninfo, "%s", text);
    free(text);
    return 0;
}

static PGconn *connect_as(const char *db, const char *user, const char *app)
{
    char ci[700];
    snprintf(ci, sizeof ci, "host=%s port=5432 dbname=%s user=%s application_name=%s", pg.dir, db,
             user, app);
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect %s: %s", ci, PQerrorMessage(c));
    return c;
}

/* Run sql; expect success unless want_error. */
static void exec_sql(PGconn *c, const char *sql, int want_error)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (ok == want_error)
        fail_msg("%s: %s", sql, ok ? "succeeded" : PQerrorMessage(c));
    PQclear(r);
}

static char *scalar_text(const char *sql)
{
    PGconn *c = connect_as("postgres", "pgrtest", "test");
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    char *v = strdup(PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return v;
}

/* The collector has written marker into the current file of each format. */
static bool marker_logged(void *arg)
{
    const char *marker = arg;
    static const char *const dest[] = {"stderr", "csvlog", "jsonlog"};
    char sql[512];
    for (int i = 0; i < 3; i++) {
        /* the needle is built in SQL so that this statement's own log line
         * does not contain it */
        snprintf(sql, sizeof sql,
                 "SELECT strpos(pg_read_file(pg_current_logfile('%s')), 'mark' || '%s')",
                 dest[i], marker + 4);
        char *v = scalar_text(sql);
        int found = atoi(v) > 0;
        free(v);
        if (!found)
            return false;
    }
    return true;
}

/* Run the statements of a batch as app@shop/wl, the last one a marker,
 * and wait until the collector has written it. Returns how many
 * statements with a duration the batch logs (the failing ones log none). */
static int run_batch(const char *const *ok_sql, const char *const *bad_sql)
{
    PGconn *c = connect_as("shop", "app", "wl");
    int n = 0;
    for (; ok_sql && ok_sql[n]; n++)
        exec_sql(c, ok_sql[n], 0);
    for (int i = 0; bad_sql && bad_sql[i]; i++)
        exec_sql(c, bad_sql[i], 1);
    char marker[64], sql[128];
    snprintf(marker, sizeof marker, "marker-%d", ++batch_no);
    snprintf(sql, sizeof sql, "SELECT '%s'", marker);
    exec_sql(c, sql, 0);
    PQfinish(c);
    assert_true(wait_until(marker_logged, marker, 10000));
    return n + 1;
}

/* Run the plugin with params on connection conn. Returns the exit status;
 * *out gets the parsed stdout (NULL when not JSON), *err the stderr text. */
static int exec_plugin(const char *conn, const char *params, const char *state, json_t **out,
                       char **err)
{
    char cmd[1024], *text = NULL;
    write_file("params.json", params);
    snprintf(cmd, sizeof cmd,
             "%s --config %s/cfg.yaml plugin exec log_analysis --connection %s "
             "--params \"$(cat %s/params.json)\" --state-file %s/%s 2>%s/stderr",
             getenv("PGR_BIN"), dir, conn, dir, dir, state, dir);
    int rc = run_capture(cmd, &text);
    *out = json_loads(text, 0, NULL);
    free(text);
    *err = read_text("stderr");
    return rc;
}

static json_t *run_ok(const char *params, const char *state)
{
    json_t *doc;
    char *err;
    int rc = exec_plugin("t", params, state, &doc, &err);
    if (rc != 0 || doc == NULL)
        fail_msg("plugin exec failed (%d): %s", rc, err);
    free(err);
    return doc;
}

/* Expect a failure whose stderr contains want. */
static void run_fails(const char *conn, const char *params, const char *want)
{
    json_t *doc;
    char *err;
    int rc = exec_plugin(conn, params, "st-fail.json", &doc, &err);
    assert_int_not_equal(rc, 0);
    if (strstr(err, want) == NULL)
        fail_msg("stderr has no \"%s\": %s", want, err);
    json_decref(doc);
    free(err);
}

static json_t *path(json_t *o, const char *a, const char *b, const char *c)
{
    o = json_object_get(o, a);
    if (b)
        o = json_object_get(o, b);
    if (c)
        o = json_object_get(o, c);
    return o;
}

/* Statements with a duration logged by the workload (app@shop). */
static long long app_count_of(json_t *doc)
{
    return json_integer_value(path(path(doc, "queries", "by_user", "app"), "count", NULL, NULL));
}

static long long errors_at(json_t *doc, const char *level)
{
    return json_integer_value(path(doc, "errors", "by_level", level));
}

/* Whether an error class containing text was counted n times. */
static int has_error_class(json_t *doc, const char *text, long long n)
{
    size_t i;
    json_t *c;
    json_array_foreach(path(doc, "errors", "classes", NULL), i, c)
    {
        const char *m = json_string_value(json_object_get(c, "message_class"));
        if (m && strstr(m, text) && json_integer_value(json_object_get(c, "count")) == n)
            return 1;
    }
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pgr-lasrv-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    if (start_server(&pg, "pg", 1) != 0)
        return -1;
    char cfg[1536];
    snprintf(cfg, sizeof cfg,
             "logging: {level: warning}\n"
             "connections:\n"
             "  - {id: t, host: %s, port: 5432, database: postgres, username: pgrtest}\n"
             "  - {id: np, host: %s, port: 5432, database: postgres, username: nopriv}\n"
             "  - {id: off, host: %s/pgoff, port: 5432, database: postgres, "
             "username: pgrtest}\n",
             pg.dir, pg.dir, dir);
    write_file("cfg.yaml", cfg);
    if (testpg_exec(&pg, "CREATE ROLE app LOGIN; CREATE ROLE nopriv LOGIN") != 0)
        return -1;
    return testpg_exec(&pg, "CREATE DATABASE shop OWNER app");
}

static int group_teardown(void **state)
{
    (void)state;
    testpg_stop(&pg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run_capture(cmd, NULL);
    return 0;
}

static long long total_app;  /* statements of the workload so far */
static long long total_runs; /* what the incremental runs counted */

static const char *const batch1[] = {"SELECT pg_sleep(0.02)", "CREATE TABLE items (id int)",
                                     "INSERT INTO items VALUES (1), (2)",
                                     "SELECT count(*) FROM items", NULL};
static const char *const batch1_bad[] = {"SELECT 1/0", NULL};

/* The first run reads everything there is: the figures in each format. */
static void test_first_run(void **state)
{
    (void)state;
    int n = run_batch(batch1, batch1_bad);
    total_app += n;
    static const char *const fmts[] = {"stderr", "csv", "jsonlog"};
    for (int i = 0; i < 3; i++) {
        char params[256], st[32];
        snprintf(params, sizeof params,
                 "{\"source\":\"server\",\"format\":\"%s\",\"prefix\":\"" PREFIX_FMT "\"}", fmts[i]);
        snprintf(st, sizeof st, "st-%s.json", fmts[i]);
        json_t *doc = run_ok(params, st);
        assert_int_equal(app_count_of(doc), n);
        assert_int_equal(errors_at(doc, "ERROR"), 1);
        assert_true(has_error_class(doc, "division by zero", 1));
        json_t *files = path(doc, "input", "files", NULL);
        assert_int_equal(json_array_size(files), 1);
        const char *p = json_string_value(json_object_get(json_array_get(files, 0), "path"));
        assert_non_null(strstr(p, "log/postgresql-"));
        assert_string_equal(json_string_value(json_object_get(json_array_get(files, 0), "format")),
                            fmts[i]);
        json_decref(doc);
    }
    total_runs += n;
}

/* The second run counts only what was written since the first. */
static void test_incremental(void **state)
{
    (void)state;
    static const char *const ok[] = {"SELECT 42", "UPDATE items SET id = 3 WHERE id = 1", NULL};
    static const char *const bad[] = {"SELECT * FROM no_such_table", NULL};
    int n = run_batch(ok, bad);
    total_app += n;
    json_t *doc = run_ok("{\"source\":\"server\",\"format\":\"stderr\",\"prefix\":\"" PREFIX "\"}",
                         "st-stderr.json");
    assert_int_equal(app_count_of(doc), n);
    assert_int_equal(errors_at(doc, "ERROR"), 1);
    assert_true(has_error_class(doc, "relation", 1));
    assert_false(has_error_class(doc, "division by zero", 1));
    json_t *f0 = json_array_get(path(doc, "input", "files", NULL), 0);
    assert_true(json_integer_value(json_object_get(f0, "start_offset")) > 0);
    json_decref(doc);
    total_runs += n;
}

/* The name pg_rotate_logfile() will give (postgresql-%Y-%m-%d_%H%M%S) is
 * no longer the current file's: a second has passed since it was opened. */
static bool new_second(void *arg)
{
    const char *cur = arg;
    char name[64];
    time_t t = time(NULL);
    strftime(name, sizeof name, "postgresql-%Y-%m-%d_%H%M%S", localtime(&t));
    return strstr(cur, name) == NULL;
}

static bool rotated(void *arg)
{
    char *cur = scalar_text("SELECT pg_current_logfile()");
    bool changed = strcmp(cur, arg) != 0;
    free(cur);
    return changed;
}

/* Lines before and after a rotation: each counted once. */
static void test_rotation(void **state)
{
    (void)state;
    static const char *const before[] = {"SELECT 'before rotation'", "DELETE FROM items", NULL};
    static const char *const after[] = {"SELECT 'after rotation'", "INSERT INTO items VALUES (9)",
                                        "SELECT 7", NULL};
    int n = run_batch(before, NULL);
    char *cur = scalar_text("SELECT pg_current_logfile()");
    /* the server's clock is ours (TimeZone for file names: log_timezone) */
    char *tz = scalar_text("SHOW log_timezone");
    setenv("TZ", tz, 1);
    tzset();
    free(tz);
    assert_true(wait_until(new_second, cur, 3000));
    char *r = scalar_text("SELECT pg_rotate_logfile()");
    assert_string_equal(r, "t");
    free(r);
    assert_true(wait_until(rotated, cur, 10000));
    n += run_batch(after, NULL);
    total_app += n;
    json_t *doc = run_ok("{\"source\":\"server\",\"format\":\"stderr\",\"prefix\":\"" PREFIX "\"}",
                         "st-stderr.json");
    assert_int_equal(app_count_of(doc), n);
    assert_int_equal(errors_at(doc, "ERROR"), 0);
    json_t *files = path(doc, "input", "files", NULL);
    assert_int_equal(json_array_size(files), 2);
    /* the old file resumed at its offset, the new one from 0 */
    assert_true(json_integer_value(json_object_get(json_array_get(files, 0), "start_offset")) > 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(files, 1), "start_offset")), 0);
    free(cur);
    json_decref(doc);
    total_runs += n;

    /* nothing new from the workload: an unchanged file is not even read */
    doc = run_ok("{\"source\":\"server\",\"format\":\"stderr\",\"prefix\":\"" PREFIX "\"}",
                 "st-stderr.json");
    assert_int_equal(app_count_of(doc), 0);
    assert_true(json_is_true(json_object_get(
        json_array_get(path(doc, "input", "files", NULL), 0), "skipped_unchanged")));
    json_decref(doc);
}

/* full: true reads everything again: the sum of the incremental runs. */
static void test_full(void **state)
{
    (void)state;
    json_t *doc = run_ok("{\"source\":\"server\",\"format\":\"stderr\",\"prefix\":\"" PREFIX
                         "\",\"full\":true}",
                         "st-full.json");
    assert_int_equal(total_runs, total_app);
    assert_int_equal(app_count_of(doc), total_app);
    assert_int_equal(errors_at(doc, "ERROR"), 2);
    json_decref(doc);
    /* auto: the three formats, each file by its extension */
    doc = run_ok("{\"source\":\"server\",\"format\":\"auto\",\"prefix\":\"" PREFIX "\"}",
                 "st-auto.json");
    assert_int_equal(json_array_size(path(doc, "input", "files", NULL)), 6);
    assert_int_equal(app_count_of(doc), 3 * total_app);
    json_decref(doc);
}

/* A role without the rights: the message names the missing one. */
static void test_privileges(void **state)
{
    (void)state;
    const char *params = "{\"source\":\"server\",\"format\":\"stderr\",\"prefix\":\"" PREFIX "\"}";
    run_fails("np", params,
              "fail: source server: role \"nopriv\" may not list the server's log directory: "
              "pg_ls_logdir() needs superuser or the pg_monitor role "
              "(GRANT pg_monitor TO \"nopriv\")");
    assert_int_equal(testpg_exec(&pg, "GRANT pg_monitor TO nopriv"), 0);
    run_fails("np", params,
              "fail: source server: role \"nopriv\" may not read the server's log files: "
              "pg_read_binary_file() needs superuser or GRANT EXECUTE ON FUNCTION "
              "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO \"nopriv\"");
    assert_int_equal(testpg_exec(&pg, "GRANT EXECUTE ON FUNCTION "
                                      "pg_read_binary_file(text, bigint, bigint, boolean) "
                                      "TO nopriv"),
                     0);
    json_t *doc;
    char *err;
    int rc = exec_plugin("np", params, "st-np.json", &doc, &err);
    if (rc != 0 || doc == NULL)
        fail_msg("with the grants: (%d) %s", rc, err);
    assert_int_equal(app_count_of(doc), total_app);
    json_decref(doc);
    free(err);
}

static void test_bad_params(void **state)
{
    (void)state;
    run_fails("t", "{\"source\":\"server\",\"files\":[\"/tmp/x.log\"]}",
              "fail: params: files is for source files; source server reads every log file "
              "of the server's log directory that matches format");
    run_fails("t", "{\"source\":\"server\",\"format\":\"syslog\"}",
              "fail: params: format syslog cannot be read with source server");
    run_fails("t", "{\"source\":\"elsewhere\"}",
              "params.source: must be one of: files, server; got \"elsewhere\"");
}

/* logging_collector off: no file to read, and the message says why. */
static void test_collector_off(void **state)
{
    (void)state;
    testpg off;
    assert_int_equal(start_server(&off, "pgoff", 0), 0);
    run_fails("off", "{\"source\":\"server\",\"format\":\"stderr\"}",
              "fail: source server: the server's logging_collector is off, so it writes no log "
              "file into its log directory (log_destination = 'stderr,csvlog,jsonlog'): set "
              "logging_collector = on");
    testpg_stop(&off);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_run),   cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_rotation),    cmocka_unit_test(test_full),
        cmocka_unit_test(test_privileges),  cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_collector_off),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
