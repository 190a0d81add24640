/*
 * test_custom_sql.c - the custom_sql plugin through the real binary
 * (`pgreviewer plugin exec custom_sql`), against a throw-away PostgreSQL
 * started once for the whole suite: statement and lock timeouts, read-only
 * enforcement, refusal of a second statement, every value type and NULL,
 * truncation at max_rows, thresholds on columns and on the row count,
 * version and extension gates, invalid params (FAIL) and an unreachable
 * server (RETRY).
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
#include <unistd.h>

#include "testenv.h"

static testpg pg;
static char dir[64];
static int server_version;

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static PGconn *connect_pg(void)
{
    PGconn *c = PQconnectdb(pg.conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(c));
    return c;
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

static long long scalar(const char *sql)
{
    PGconn *c = connect_pg();
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return v;
}

static int group_setup(void **state)
{
    (void)state;
    if (testpg_start(&pg) != 0)
        return -1;
    snprintf(dir, sizeof dir, "/tmp/pgr-csql-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "logging: {level: warning}\n"
             "connections:\n"
             "  - {id: t, host: %s, port: 5432, database: postgres, username: pgrtest}\n"
             "  - {id: nowhere, host: %s/no-such-dir, port: 5432, database: postgres, "
             "username: pgrtest}\n",
             pg.dir, dir);
    write_file("cfg.yaml", cfg);
    snprintf(cfg, sizeof cfg, "logging: {level: warning}\nstore: {url: \"%s\"}\n", pg.conninfo);
    write_file("store.yaml", cfg);
    /* A time zone with a half-hour offset shows the ISO-8601 offset form. */
    if (testpg_exec(&pg, "ALTER DATABASE postgres SET TimeZone = 'Asia/Kolkata'; "
                         "CREATE TABLE items (id int); CREATE TABLE locked (id int)") != 0)
        return -1;
    server_version = (int)scalar("SELECT current_setting('server_version_num')::int");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run_capture(cmd, NULL);
    testpg_stop(&pg);
    return 0;
}

/* Run `plugin exec custom_sql` with `params` (JSON text). Returns the exit
 * status; *out gets the parsed stdout (NULL when not JSON) and *err the
 * stderr text (caller frees both). */
static int exec_plugin(const char *conn, const char *params, const char *extra, json_t **out,
                       char **err)
{
    char cmd[1024], path[256], *text = NULL;
    write_file("params.json", params);
    snprintf(cmd, sizeof cmd,
             "%s --config %s/%s plugin exec custom_sql --connection %s %s "
             "--params \"$(cat %s/params.json)\" 2>%s/stderr",
             getenv("PGR_BIN"), dir, strcmp(conn, "store") == 0 ? "store.yaml" : "cfg.yaml", conn,
             extra, dir, dir);
    int rc = run_capture(cmd, &text);
    *out = json_loads(text, 0, NULL);
    free(text);
    snprintf(path, sizeof path, "%s/stderr", dir);
    FILE *f = fopen(path, "r");
    char buf[4096] = "";
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    *err = strdup(buf);
    return rc;
}

/* Run and expect success; returns the result document. */
static json_t *run_ok(const char *params)
{
    json_t *doc;
    char *err;
    int rc = exec_plugin("t", params, "", &doc, &err);
    if (rc != 0 || !doc)
        fail_msg("plugin exec failed (%d): %s", rc, err);
    free(err);
    assert_int_equal(json_integer_value(json_object_get(doc, "schema_version")), 1);
    return doc;
}

static json_t *query_named(json_t *doc, const char *name)
{
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(doc, "queries"), i, q)
    {
        if (strcmp(json_string_value(json_object_get(q, "name")), name) == 0)
            return q;
    }
    fail_msg("no query %s in the result", name);
    return NULL;
}

static const char *str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s)
        fail_msg("no string %s", key);
    return s;
}

static void test_statement_timeout(void **state)
{
    (void)state;
    json_t *doc = run_ok("{\"statement_timeout\": \"200ms\", \"queries\": ["
                         "{\"name\": \"slow\", \"sql\": \"SELECT pg_sleep(5)\"},"
                         "{\"name\": \"after\", \"sql\": \"SELECT 1 AS one\"}]}");
    json_t *slow = query_named(doc, "slow");
    assert_string_equal(str_of(slow, "status"), "unknown");
    assert_string_equal(str_of(slow, "error"), "query slow: canceling statement due to statement "
                                               "timeout (statement_timeout 200ms)");
    assert_string_equal(str_of(slow, "sqlstate"), "57014");
    assert_true(json_integer_value(json_object_get(slow, "duration_ms")) < 4000);
    /* the failed query did not stop the next one */
    json_t *after = query_named(doc, "after");
    assert_string_equal(str_of(after, "status"), "ok");
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(after, "rows"), 0), "one")),
                     1);
    assert_string_equal(str_of(doc, "status"), "unknown");
    assert_int_equal(json_integer_value(json_object_get(doc, "statement_timeout_ms")), 200);
    json_decref(doc);
}

static void test_lock_timeout(void **state)
{
    (void)state;
    PGconn *holder = connect_pg();
    exec_ok(holder, "BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE");
    json_t *doc = run_ok("{\"lock_timeout\": 200, \"statement_timeout\": \"10s\", \"queries\": ["
                         "{\"name\": \"wait\", \"sql\": \"SELECT count(*) FROM locked\"},"
                         "{\"name\": \"free\", \"sql\": \"SELECT count(*) AS n FROM items\"}]}");
    json_t *wait = query_named(doc, "wait");
    assert_string_equal(str_of(wait, "status"), "unknown");
    assert_string_equal(str_of(wait, "error"),
                        "query wait: canceling statement due to lock timeout (lock_timeout 200ms)");
    assert_string_equal(str_of(wait, "sqlstate"), "55P03");
    assert_string_equal(str_of(query_named(doc, "free"), "status"), "ok");
    assert_int_equal(json_integer_value(json_object_get(doc, "lock_timeout_ms")), 200);
    exec_ok(holder, "ROLLBACK");
    PQfinish(holder);
    json_decref(doc);
}

static void test_read_only(void **state)
{
    (void)state;
    json_t *doc = run_ok("{\"queries\": [{\"name\": \"w\", \"sql\": \"INSERT INTO items VALUES "
                         "(1)\"}]}");
    json_t *w = query_named(doc, "w");
    assert_string_equal(str_of(w, "status"), "unknown");
    assert_string_equal(str_of(w, "error"), "query w: refused because the task is read-only "
                                            "(read_only: true): cannot execute INSERT in a "
                                            "read-only transaction");
    assert_string_equal(str_of(w, "sqlstate"), "25006");
    assert_int_equal(scalar("SELECT count(*) FROM items"), 0);
    json_decref(doc);

    /* read_only: false lets it write, and the write is committed */
    doc = run_ok("{\"read_only\": false, \"queries\": [{\"name\": \"w\", \"sql\": \"INSERT INTO "
                 "items VALUES (1), (2) RETURNING id\"}, {\"name\": \"u\", \"sql\": \"UPDATE "
                 "items SET id = id\", \"thresholds\": {\"rows\": true, \"warning\": \"> 1\"}}]}");
    assert_string_equal(str_of(query_named(doc, "w"), "status"), "ok");
    assert_int_equal(json_integer_value(json_object_get(query_named(doc, "w"), "row_count")), 2);
    json_t *u = query_named(doc, "u");
    assert_string_equal(str_of(u, "status"), "warning");
    assert_int_equal(json_integer_value(json_object_get(u, "row_count")), 2);
    assert_false(json_is_true(json_object_get(doc, "read_only")));
    assert_int_equal(scalar("SELECT count(*) FROM items"), 2);
    testpg_exec(&pg, "TRUNCATE items");
    json_decref(doc);
}

static void test_multi_statement(void **state)
{
    (void)state;
    json_t *doc = run_ok("{\"read_only\": false, \"queries\": [{\"name\": \"multi\", \"sql\": "
                         "\"SELECT 1; INSERT INTO items VALUES (7)\"}]}");
    json_t *m = query_named(doc, "multi");
    assert_string_equal(str_of(m, "status"), "unknown");
    assert_string_equal(str_of(m, "error"),
                        "query multi: only one statement per query is allowed (the server said: "
                        "cannot insert multiple commands into a prepared statement)");
    /* refused, not executed: the INSERT never ran */
    assert_int_equal(scalar("SELECT count(*) FROM items"), 0);
    json_decref(doc);
}

static const char types_sql[] =
    "SELECT 1::int2 AS i2, 2::int4 AS i4, 9007199254740993::int8 AS i8, "
    "1.5::float4 AS f4, 0.25::float8 AS f8, 'NaN'::float8 AS fnan, "
    "12.5::numeric AS n_small, 42::numeric AS n_int, "
    "123456789012345678901234567890.5::numeric AS n_big, 'NaN'::numeric AS n_nan, "
    "true AS b_t, false AS b_f, NULL::int AS nul, NULL::text AS nul_text, "
    "'\\\\xdeadbeef'::bytea AS by, "
    "'2024-01-02 03:04:05.5'::timestamp AS ts, "
    "'2024-01-02 03:04:05.5+00'::timestamptz AS tstz, "
    "'infinity'::timestamp AS ts_inf, '2024-01-02'::date AS d, '03:04:05+02'::timetz AS ttz, "
    "'{\\\"a\\\": [1, null]}'::json AS js, '{\\\"b\\\": true}'::jsonb AS jb, "
    "'text'::text AS t, '1 day 02:00:00'::interval AS iv, ARRAY[1,2]::int[] AS arr, "
    "'10.0.0.1'::inet AS ip, 1 AS dup, 2 AS dup";

static void test_types_and_nulls(void **state)
{
    (void)state;
    char params[2048];
    snprintf(params, sizeof params, "{\"queries\": [{\"name\": \"types\", \"sql\": \"%s\"}]}",
             types_sql);
    json_t *doc = run_ok(params);
    json_t *q = query_named(doc, "types");
    assert_string_equal(str_of(q, "status"), "ok");
    json_t *row = json_array_get(json_object_get(q, "rows"), 0);
    char *got = json_dumps(row, JSON_SORT_KEYS | JSON_COMPACT);
    json_t *want = json_loads(
        "{\"i2\": 1, \"i4\": 2, \"i8\": 9007199254740993, \"f4\": 1.5, \"f8\": 0.25, "
        "\"fnan\": \"NaN\", \"n_small\": 12.5, \"n_int\": 42, "
        "\"n_big\": \"123456789012345678901234567890.5\", \"n_nan\": \"NaN\", "
        "\"b_t\": true, \"b_f\": false, \"nul\": null, \"nul_text\": null, \"by\": \"deadbeef\", "
        "\"ts\": \"2024-01-02T03:04:05.5\", \"tstz\": \"2024-01-02T08:34:05.5+05:30\", "
        "\"ts_inf\": \"infinity\", \"d\": \"2024-01-02\", \"ttz\": \"03:04:05+02:00\", "
        "\"js\": {\"a\": [1, null]}, \"jb\": {\"b\": true}, \"t\": \"text\", "
        "\"iv\": \"1 day 02:00:00\", \"arr\": \"{1,2}\", \"ip\": \"10.0.0.1\", "
        "\"dup\": 1, \"dup_2\": 2}",
        0, NULL);
    char *wanted = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(got, wanted);
    free(got);
    free(wanted);
    json_decref(want);
    /* column names (duplicates made unique) and SQL type names */
    json_t *cols = json_object_get(q, "columns");
    assert_int_equal(json_array_size(cols), 28);
    static const char *const types[][2] = {
        {"i2", "smallint"}, {"i8", "bigint"}, {"f4", "real"}, {"n_big", "numeric"},
        {"b_t", "boolean"}, {"by", "bytea"}, {"tstz", "timestamp with time zone"},
        {"js", "json"}, {"arr", "integer[]"}, {"dup_2", "integer"}};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        size_t i;
        json_t *c;
        bool found = false;
        json_array_foreach(cols, i, c)
        {
            if (strcmp(str_of(c, "name"), types[k][0]) == 0) {
                assert_string_equal(str_of(c, "type"), types[k][1]);
                found = true;
            }
        }
        assert_true(found);
    }
    json_decref(doc);
}

static void test_bound_params(void **state)
{
    (void)state;
    json_t *doc = run_ok("{\"queries\": [{\"name\": \"p\", \"sql\": \"SELECT $1::int + 1 AS a, "
                         "$2::text AS b, $3::text IS NULL AS c, $4::bool AS d\", "
                         "\"params\": [41, \"x'; DROP TABLE items; --\", null, true]}]}");
    json_t *row = json_array_get(json_object_get(query_named(doc, "p"), "rows"), 0);
    assert_int_equal(json_integer_value(json_object_get(row, "a")), 42);
    assert_string_equal(str_of(row, "b"), "x'; DROP TABLE items; --");
    assert_true(json_is_true(json_object_get(row, "c")));
    assert_true(json_is_true(json_object_get(row, "d")));
    json_decref(doc);
}

static void test_truncation(void **state)
{
    (void)state;
    json_t *doc = run_ok("{\"max_rows\": 5, \"queries\": [{\"name\": \"ten\", \"sql\": \"SELECT g "
                         "FROM generate_series(1, 10) g\"}, {\"name\": \"five\", \"sql\": \"SELECT "
                         "g FROM generate_series(1, 5) g\"}]}");
    json_t *ten = query_named(doc, "ten");
    json_t *rows = json_object_get(ten, "rows");
    assert_int_equal(json_array_size(rows), 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, i), "g")),
                         (long long)i + 1);
    assert_int_equal(json_integer_value(json_object_get(ten, "row_count")), 10);
    assert_true(json_is_true(json_object_get(ten, "truncated")));
    json_t *five = query_named(doc, "five");
    assert_int_equal(json_array_size(json_object_get(five, "rows")), 5);
    assert_true(json_is_false(json_object_get(five, "truncated")));
    json_decref(doc);
}

/* The values of an alert list, in order. */
static void expect_alerts(json_t *q, const char *want)
{
    char got[512] = "";
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(q, "alerts"), i, a)
    {
        char *v = json_dumps(json_object_get(a, "value"), JSON_ENCODE_ANY);
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s:%s", i ? " " : "",
                 str_of(a, "status"), v);
        free(v);
    }
    assert_string_equal(got, want);
}

static void test_thresholds(void **state)
{
    (void)state;
    json_t *doc = run_ok(
        "{\"max_rows\": 4, \"queries\": ["
        "{\"name\": \"col\", \"sql\": \"SELECT g AS v, CASE WHEN g = 10 THEN NULL ELSE g END AS "
        "w FROM generate_series(1, 10) g\", \"thresholds\": [{\"column\": \"v\", \"warning\": "
        "\"> 5\", \"critical\": \">= 9\"}]},"
        "{\"name\": \"warn\", \"sql\": \"SELECT g AS v FROM generate_series(1, 10) g\", "
        "\"thresholds\": [{\"column\": \"v\", \"warning\": \"> 8\", \"critical\": \"> 100\"}]},"
        "{\"name\": \"count\", \"sql\": \"SELECT g FROM generate_series(1, 4) g\", "
        "\"thresholds\": {\"rows\": true, \"warning\": \"> 3\", \"critical\": \"> 10\"}},"
        "{\"name\": \"count_crit\", \"sql\": \"SELECT g FROM generate_series(1, 11) g\", "
        "\"thresholds\": {\"rows\": true, \"warning\": \"> 3\", \"critical\": \"> 10\"}},"
        "{\"name\": \"text\", \"sql\": \"SELECT 'idle' AS state, NULL::int AS n\", "
        "\"thresholds\": [{\"column\": \"state\", \"critical\": \"== 'idle'\"}, {\"column\": "
        "\"n\", \"warning\": \"< 1\"}]},"
        "{\"name\": \"quiet\", \"sql\": \"SELECT 1 AS v\", \"thresholds\": [{\"column\": \"v\", "
        "\"warning\": \"!= 1\"}]},"
        "{\"name\": \"nocol\", \"sql\": \"SELECT 1 AS v\", \"thresholds\": [{\"column\": \"x\", "
        "\"warning\": \"> 1\"}]},"
        "{\"name\": \"notnum\", \"sql\": \"SELECT 'abc' AS v\", \"thresholds\": [{\"column\": "
        "\"v\", \"warning\": \"> 1\"}]}]}");
    json_t *col = query_named(doc, "col");
    assert_string_equal(str_of(col, "status"), "critical");
    /* criticals first and never crowded out by warnings; max_rows 4 in all */
    expect_alerts(col, "critical:9 critical:10 warning:6 warning:7");
    assert_int_equal(json_integer_value(json_object_get(col, "alert_count")), 5);
    assert_true(json_is_true(json_object_get(col, "alerts_truncated")));
    json_t *first = json_array_get(json_object_get(col, "alerts"), 0);
    assert_string_equal(str_of(first, "threshold"), "column v >= 9");
    assert_int_equal(json_integer_value(json_object_get(first, "row_number")), 9);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(first, "row"), "w")), 9);
    json_t *warn = query_named(doc, "warn");
    assert_string_equal(str_of(warn, "status"), "warning");
    expect_alerts(warn, "warning:9 warning:10");
    assert_string_equal(str_of(query_named(doc, "count"), "status"), "warning");
    expect_alerts(query_named(doc, "count"), "warning:4");
    assert_string_equal(str_of(json_array_get(json_object_get(query_named(doc, "count"),
                                                              "alerts"), 0), "threshold"),
                        "rows > 3");
    assert_string_equal(str_of(query_named(doc, "count_crit"), "status"), "critical");
    /* a text equality; a NULL never meets a condition */
    assert_string_equal(str_of(query_named(doc, "text"), "status"), "critical");
    expect_alerts(query_named(doc, "text"), "critical:\"idle\"");
    assert_string_equal(str_of(query_named(doc, "quiet"), "status"), "ok");
    assert_string_equal(str_of(query_named(doc, "nocol"), "error"),
                        "query nocol: threshold on column \"x\", which the result does not have "
                        "(columns: v)");
    assert_string_equal(str_of(query_named(doc, "notnum"), "error"),
                        "query notnum: column v: value \"abc\" is not a number, so \"> 1\" cannot "
                        "be checked");
    assert_string_equal(str_of(doc, "status"), "critical");
    json_t *sum = json_object_get(doc, "summary");
    assert_int_equal(json_integer_value(json_object_get(sum, "critical")), 3);
    assert_int_equal(json_integer_value(json_object_get(sum, "warning")), 2);
    assert_int_equal(json_integer_value(json_object_get(sum, "ok")), 1);
    assert_int_equal(json_integer_value(json_object_get(sum, "unknown")), 2);
    json_decref(doc);

    /* The envelope: SUCCESS even when critical, with a message naming the checks. */
    json_t *env;
    char *err;
    assert_int_equal(exec_plugin("t",
                                 "{\"queries\": [{\"name\": \"a\", \"sql\": \"SELECT 5 AS v\", "
                                 "\"thresholds\": [{\"column\": \"v\", \"critical\": \"> 1\"}]}, "
                                 "{\"name\": \"b\", \"sql\": \"SELECT 1\"}]}",
                                 "--envelope", &env, &err),
                     0);
    assert_string_equal(str_of(env, "outcome"), "success");
    assert_string_equal(str_of(env, "message"), "critical: a=critical");
    free(err);
    json_decref(env);
}

static void test_version_gates(void **state)
{
    (void)state;
    json_t *doc = run_ok(
        "{\"queries\": ["
        "{\"name\": \"future\", \"sql\": \"SELECT 1\", \"min_server_version\": 990000},"
        "{\"name\": \"modern\", \"sql\": \"SELECT 1\", \"min_server_version\": \"13\"},"
        "{\"name\": \"old\", \"sql\": \"SELECT 1\", \"max_server_version\": \"12\"},"
        "{\"name\": \"ext\", \"sql\": \"SELECT * FROM no_such_view\", \"requires_extension\": "
        "\"no_such_extension\"},"
        "{\"name\": \"plpgsql\", \"sql\": \"SELECT 1\", \"requires_extension\": \"plpgsql\"}]}");
    char want[256];
    snprintf(want, sizeof want, "skipped: needs server version 990000 or later, the server is %d",
             server_version);
    json_t *future = query_named(doc, "future");
    assert_string_equal(str_of(future, "status"), "skipped");
    assert_string_equal(str_of(future, "message"), want);
    assert_string_equal(str_of(query_named(doc, "modern"), "status"), "ok");
    snprintf(want, sizeof want, "skipped: runs on server versions up to 129999, the server is %d",
             server_version);
    assert_string_equal(str_of(query_named(doc, "old"), "message"), want);
    assert_string_equal(str_of(query_named(doc, "ext"), "message"),
                        "skipped: extension no_such_extension is not installed in database "
                        "postgres");
    assert_string_equal(str_of(query_named(doc, "plpgsql"), "status"), "ok");
    assert_string_equal(str_of(doc, "status"), "ok");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "summary"),
                                                        "skipped")), 3);
    json_decref(doc);
}

static void expect_invalid(const char *params, const char *message)
{
    json_t *out;
    char *err, want[1024];
    assert_int_equal(exec_plugin("t", params, "", &out, &err), 1);
    snprintf(want, sizeof want, "pgreviewer: task type custom_sql: fail: invalid params: %s\n",
             message);
    assert_string_equal(err, want);
    free(err);
    json_decref(out);
}

static void test_invalid_params(void **state)
{
    (void)state;
    expect_invalid("{\"queries\": []}", "queries: expected a non-empty list of {name, sql, ...}");
    expect_invalid("{\"queries\": [{\"name\": \"a\", \"sql\": \"SELECT 1\", \"thresholds\": "
                   "[{\"column\": \"v\", \"warning\": \"100\"}]}]}",
                   "queries[0] (a): thresholds[0]: warning: \"100\" does not start with an "
                   "operator (one of > >= < <= == !=, e.g. \"> 100\")");
    expect_invalid("{\"queries\": [{\"name\": \"a\", \"sql\": \"SELECT 1\", \"thresholds\": "
                   "[{\"column\": \"v\", \"critical\": \"> lots\"}]}]}",
                   "queries[0] (a): thresholds[0]: critical: \"> lots\": > needs a number");
    expect_invalid("{\"queries\": [{\"name\": \"a\", \"sql\": \"SELECT 1\", \"thresholds\": "
                   "[{\"warning\": \"> 1\"}]}]}",
                   "queries[0] (a): thresholds[0]: set either column: NAME or rows: true");
    expect_invalid("{\"queries\": [{\"name\": \"a\", \"sql\": \"SELECT 1\", \"treshold\": 1}]}",
                   "queries[0] (a): unknown key \"treshold\" (known: name, sql, params, "
                   "min_server_version, max_server_version, requires_extension, thresholds)");
    expect_invalid("{\"queries\": [{\"name\": \"a\", \"sql\": \"SELECT 1\"}, {\"name\": \"a\", "
                   "\"sql\": \"SELECT 2\"}]}",
                   "queries[1]: name \"a\" is already used by queries[0]");
    expect_invalid("{\"queries\": [{\"name\": \"a\", \"sql\": \"  \"}]}",
                   "queries[0] (a): sql: required, a non-empty string");
    expect_invalid("{\"statement_timeout\": \"soon\", \"queries\": [{\"name\": \"a\", \"sql\": "
                   "\"SELECT 1\"}]}",
                   "statement_timeout: expected milliseconds (an integer) or a duration such as "
                   "\"500ms\", \"5s\", \"2min\", \"1h\"");
    expect_invalid("{\"queries\": [{\"name\": \"a\", \"sql\": \"SELECT 1\", "
                   "\"min_server_version\": \"thirteen\"}]}",
                   "queries[0] (a): min_server_version: expected a version such as 130000, "
                   "\"13\" or \"9.6\"");
}

static void test_no_connection_retries(void **state)
{
    (void)state;
    json_t *env;
    char *err;
    assert_int_equal(exec_plugin("nowhere",
                                 "{\"queries\": [{\"name\": \"a\", \"sql\": \"SELECT 1\"}]}",
                                 "--envelope", &env, &err),
                     1);
    assert_non_null(env);
    assert_string_equal(str_of(env, "outcome"), "retry");
    const char *msg = str_of(env, "message");
    assert_true(strncmp(msg, "no connection: connection nowhere: ", 35) == 0);
    free(err);
    json_decref(env);
}

static void test_connection_lost_retries(void **state)
{
    (void)state;
    /* The query ends its own session: the task asks for a retry, says why,
     * and the queries after it are not run. */
    json_t *env;
    char *err;
    assert_int_equal(exec_plugin("t",
                                 "{\"queries\": [{\"name\": \"kill\", \"sql\": \"SELECT "
                                 "pg_terminate_backend(pg_backend_pid())\"}, {\"name\": \"b\", "
                                 "\"sql\": \"SELECT 1\"}]}",
                                 "--envelope", &env, &err),
                     1);
    assert_string_equal(str_of(env, "outcome"), "retry");
    assert_string_equal(str_of(env, "message"), "connection lost: query kill: terminating "
                                                "connection due to administrator command");
    json_t *doc = json_object_get(env, "result");
    assert_string_equal(str_of(query_named(doc, "kill"), "sqlstate"), "57P01");
    assert_string_equal(str_of(query_named(doc, "b"), "error"),
                        "not run: the connection was lost");
    free(err);
    json_decref(env);
}

static void test_task_timeout_caps_statements(void **state)
{
    (void)state;
    /* No statement_timeout of its own: the task's 2 s timeout bounds the
     * query, early enough for the plugin to report the next one. */
    json_t *env;
    char *err;
    assert_int_equal(exec_plugin("t",
                                 "{\"statement_timeout\": 0, \"queries\": [{\"name\": \"s\", "
                                 "\"sql\": \"SELECT pg_sleep(10)\"}, {\"name\": \"b\", \"sql\": "
                                 "\"SELECT 1\"}]}",
                                 "--timeout 2s --envelope", &env, &err),
                     0);
    assert_string_equal(str_of(env, "outcome"), "success");
    assert_true(json_integer_value(json_object_get(env, "duration_ms")) < 2000);
    json_t *doc = json_object_get(env, "result");
    const char *e = str_of(query_named(doc, "s"), "error");
    const char *prefix = "query s: canceling statement due to statement timeout (";
    const char *suffix = "ms: what was left of the task's timeout)";
    assert_true(strncmp(e, prefix, strlen(prefix)) == 0);
    assert_string_equal(e + strlen(e) - strlen(suffix), suffix);
    assert_string_equal(str_of(query_named(doc, "b"), "status"), "ok");
    assert_string_equal(str_of(env, "message"), "unknown: s=unknown");
    free(err);
    json_decref(env);
}

static void test_store_connection(void **state)
{
    (void)state;
    /* The host holds `store` in a read-only transaction: the queries run
     * inside it, and read_only: false cannot lift that. */
    json_t *doc;
    char *err;
    assert_int_equal(exec_plugin("store",
                                 "{\"read_only\": false, \"queries\": [{\"name\": \"w\", "
                                 "\"sql\": \"INSERT INTO items VALUES (1)\"}, {\"name\": \"r\", "
                                 "\"sql\": \"SELECT count(*) AS n FROM items\"}]}",
                                 "", &doc, &err),
                     0);
    assert_string_equal(str_of(query_named(doc, "w"), "error"),
                        "query w: refused because the connection's transaction is read-only (the "
                        "host holds connection store read-only): cannot execute INSERT in a "
                        "read-only transaction");
    assert_string_equal(str_of(query_named(doc, "r"), "status"), "ok");
    assert_true(json_is_true(json_object_get(doc, "read_only")));
    assert_int_equal(scalar("SELECT count(*) FROM items"), 0);
    free(err);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statement_timeout), cmocka_unit_test(test_lock_timeout),
        cmocka_unit_test(test_read_only),         cmocka_unit_test(test_multi_statement),
        cmocka_unit_test(test_types_and_nulls),   cmocka_unit_test(test_bound_params),
        cmocka_unit_test(test_truncation),        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_version_gates),     cmocka_unit_test(test_invalid_params),
        cmocka_unit_test(test_no_connection_retries),
        cmocka_unit_test(test_connection_lost_retries),
        cmocka_unit_test(test_task_timeout_caps_statements),
        cmocka_unit_test(test_store_connection),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
