/*
 * test_la_parse.c - unit tests of the log_analysis parsers and normalizers:
 * log_line_prefix escapes (including %q, fields with spaces, %r, %e, %n),
 * level keywords, timestamps, csvlog records with quotes and newlines,
 * jsonlog lines, pgBadger's statement normalization rules, statement types
 * and error classes.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <unistd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "la_engine.h"

static la_prefix *compile(const char *prefix)
{
    char err[256];
    la_prefix *px = la_prefix_compile(prefix, err, sizeof err);
    assert_non_null(px);
    return px;
}

static int parse(const la_prefix *px, const char *line, la_rec *r)
{
    return la_parse_stderr_line(px, line, strlen(line), r);
}

static void assert_str(la_str s, const char *want)
{
    char buf[512];
    size_t n = s.n < sizeof buf - 1 ? s.n : sizeof buf - 1;
    memcpy(buf, s.p, n);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void test_prefix_session_and_not(void **state)
{
    (void)state;
    la_prefix *px = compile("%m [%p] %q%u@%d/%a ");
    la_rec r;
    assert_int_equal(parse(px, "2026-11-22 07:51:20.200 UTC [7926] LOG:  starting", &r), 1);
    assert_int_equal(r.pid, 7926);
    assert_int_equal(r.level, LA_LV_LOG);
    assert_int_equal(r.ts_ms, 1795333880200LL);
    assert_int_equal(r.user.n, 0);
    assert_str(r.msg, "starting");
    assert_int_equal(parse(px,
                           "2026-11-22 07:51:20.381 UTC [7960] postgres@bench/my app LOG:  "
                           "duration: 2.297 ms  statement: CREATE ROLE x;",
                           &r),
                     1);
    assert_str(r.user, "postgres");
    assert_str(r.db, "bench");
    assert_str(r.app, "my app"); /* spaces: the last field ends before "LEVEL:  " */
    assert_str(r.msg, "duration: 2.297 ms  statement: CREATE ROLE x;");
    /* [unknown] means not known yet */
    assert_int_equal(parse(px,
                           "2026-11-22 07:51:20.338 UTC [7960] [unknown]@[unknown]/[unknown] LOG:  "
                           "connection received: host=[local]",
                           &r),
                     1);
    assert_int_equal(r.user.n + r.db.n + r.app.n, 0);
    /* not an entry: continuation, one space after the level, other prefix */
    assert_int_equal(parse(px, "\tfrom t", &r), 0);
    assert_int_equal(parse(px, "2026-11-22 07:51:20.200 UTC [7926] LOG: one space", &r), 0);
    assert_int_equal(parse(px, "Nov 22 07:51:20 host postgres[1]: LOG:  x", &r), 0);
    la_prefix_free(px);
}

static void test_prefix_many_escapes(void **state)
{
    (void)state;
    la_prefix *px = compile("%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h %e ");
    la_rec r;
    assert_int_equal(parse(px,
                           "2024-01-01 10:00:00 UTC [12]: [3-1] user=bob,db=shop,app=psql,"
                           "client=10.0.0.1 42P01 ERROR:  relation \"x\" does not exist",
                           &r),
                     1);
    assert_str(r.host, "10.0.0.1");
    assert_str(r.sqlstate, "42P01");
    assert_int_equal(r.level, LA_LV_ERROR);
    la_prefix_free(px);

    px = compile("%m %r %c %x %v %i %b ");
    assert_int_equal(parse(px,
                           "2024-01-01 10:00:00.123 UTC 10.0.0.1(5432) 65a1.3f 0 3/4 SELECT "
                           "client backend STATEMENT:  select 1",
                           &r),
                     1);
    assert_str(r.host, "10.0.0.1");
    assert_int_equal(r.level, LA_LV_STATEMENT);
    la_prefix_free(px);

    px = compile("%n [%p] %%literal ");
    assert_int_equal(parse(px, "1700000000.250 [5] %literal WARNING:  careful", &r), 1);
    assert_int_equal(r.ts_ms, 1700000000250LL);
    assert_int_equal(r.level, LA_LV_WARNING);
    la_prefix_free(px);

    char err[256];
    assert_null(la_prefix_compile("%m %Z ", err, sizeof err));
    assert_non_null(strstr(err, "unknown escape '%Z'"));
}

static void test_timestamps(void **state)
{
    (void)state;
    assert_int_equal(la_parse_ts("2026-11-22 07:51:20.200", 23), 1795333880200LL);
    assert_int_equal(la_parse_ts("2026-11-22 07:51:20", 19), 1795333880000LL);
    assert_int_equal(la_parse_ts("2026-13-22 07:51:20", 19), -1);
    assert_int_equal(la_parse_ts("2026-11-22 07:51", 16), -1);
    assert_int_equal(la_parse_ts("2000-02-29 00:00:00", 19), 951782400000LL);
}

static void test_csv_record(void **state)
{
    (void)state;
    const char *rec = "2026-11-22 07:51:24.208 UTC,\"batch\",\"shop\",8025,\"127.0.0.1:5555\","
                      "6b.1f59,3,\"UPDATE waiting\",2026-11-22 07:51:24 UTC,9/10,813,ERROR,42P01,"
                      "\"relation \"\"t\"\" does not exist\",\"a detail\",,,,,\"select *\n"
                      "from t\",15,,\"my app\",\"client backend\",,0\n";
    size_t n = strlen(rec);
    assert_int_equal(la_csv_record_len(rec, n), n);
    assert_int_equal(la_csv_record_len(rec, n - 30), 0); /* open quote: incomplete */
    la_scratch sc = {0};
    la_rec r;
    assert_int_equal(la_parse_csv_record(rec, n, &sc, &r), 1);
    assert_int_equal(r.pid, 8025);
    assert_int_equal(r.level, LA_LV_ERROR);
    assert_str(r.host, "127.0.0.1");
    assert_str(r.sqlstate, "42P01");
    assert_str(r.msg, "relation \"t\" does not exist");
    assert_str(r.statement, "select *\nfrom t");
    assert_str(r.app, "my app");
    assert_int_equal(la_parse_csv_record("garbage,\n", 9, &sc, &r), 0);
    la_scratch_free(&sc);
}

static void test_json_line(void **state)
{
    (void)state;
    const char *line = "{\"timestamp\":\"2026-11-22 07:51:21.569 UTC\",\"user\":\"app\",\"dbname\":"
                       "\"bench\",\"pid\":7976,\"error_severity\":\"FATAL\",\"state_code\":"
                       "\"28P01\",\"message\":\"password \\\"x\\\" failed\"}";
    la_scratch sc = {0};
    la_rec r;
    assert_int_equal(la_parse_json_line(line, strlen(line), &sc, &r), 1);
    assert_int_equal(r.level, LA_LV_FATAL);
    assert_int_equal(r.pid, 7976);
    assert_str(r.msg, "password \"x\" failed");
    assert_str(r.sqlstate, "28P01");
    assert_int_equal(la_parse_json_line("{\"a\":1}", 7, &sc, &r), 0);
    assert_int_equal(la_parse_json_line("[1]", 3, &sc, &r), 0);
    la_scratch_free(&sc);
}

static void norm_is(const char *q, const char *want)
{
    la_scratch s = {0};
    size_t n = la_norm_query(q, strlen(q), &s);
    char *got = strndup(s.buf, n);
    assert_string_equal(got, want);
    free(got);
    la_scratch_free(&s);
}

static void test_normalize(void **state)
{
    (void)state;
    norm_is("SELECT * FROM t WHERE a = 'x' AND b = 42", "select * from t where a = ? and b = ?;");
    norm_is("SELECT pg_sleep(4.5);", "select pg_sleep(?.?);");
    norm_is("select 1 from t where id IN (1, 2, 3)", "select ? from t where id in (...);");
    norm_is("select 1 from t where id in ('a','b')", "select ? from t where id in (...);");
    norm_is("BEGIN;", "begin;");
    norm_is("begin; update t set a=1", "update t set a=?;");
    norm_is("SELECT * FROM \"MyTable\" WHERE x = $1", "select * from \"MyTable\" where x = ?;");
    norm_is("select /* hi */ 1 -- c\n  from   t", "select ? from t;");
    norm_is("UPDATE t SET a = NULL", "update t set a = ?;");
    norm_is("select a1, t2.b from t2 where c = -5", "select a1, t2.b from t2 where c = ?;");
    norm_is("insert into t values ('it''s', 'x')", "insert into t values (?, ?);");
    norm_is("select 1 ;", "select ?;");
}

static void test_query_type(void **state)
{
    (void)state;
    assert_string_equal(la_query_type("with x as (select 1) select", 27), "cte");
    assert_string_equal(la_query_type("copy t from stdin;", 18), "copy from");
    assert_string_equal(la_query_type("copy t to stdout;", 17), "copy to");
    assert_string_equal(la_query_type("(select 1);", 11), "select");
    assert_string_equal(la_query_type("vacuum t;", 9), "others");
    assert_string_equal(la_query_type("end;", 4), "tcl");
    assert_string_equal(la_query_type("alter table t;", 14), "ddl");
}

static void err_is(const char *m, const char *want)
{
    la_scratch s = {0};
    size_t n = la_norm_error(m, strlen(m), &s);
    char *got = strndup(s.buf, n);
    assert_string_equal(got, want);
    free(got);
    la_scratch_free(&s);
}

static void test_error_class(void **state)
{
    (void)state;
    err_is("relation \"foo\" does not exist at character 15", "relation \"...\" does not exist");
    err_is("process 123 still waiting for ShareLock on transaction 456 after 100.345 ms",
           "process ... still waiting for ShareLock on transaction ... after ... ms");
    err_is("column \"x\" of relation \"t\" does not exist", "column \"...\" does not exist");
    err_is("invalid input syntax for type integer: \"abc\"",
           "invalid input syntax for type integer: ...");
    err_is("database system was shut down at 2026-11-22 07:51:19 UTC",
           "database system was shut down at  ...");
    err_is("duplicate key value violates unique constraint \"c_pkey\"",
           "duplicate key value violates unique constraint \"...\"");
    err_is("permission denied for table secret of db", "permission denied for table ...");
}

static pthread_t main_thread;
static int cancel_calls, cancel_wrong_thread;

static double last_fraction = -1;

static int cancel_now(void *arg, double fraction)
{
    (void)arg;
    last_fraction = fraction;
    cancel_calls++;
    if (!pthread_equal(pthread_self(), main_thread))
        cancel_wrong_thread++;
    return 1;
}

/* la_run: a cancellation is a retryable failure, polled only from the
 * calling thread (the host's rule); params errors name the param. */
static void test_run_cancel_and_params(void **state)
{
    (void)state;
    char path[] = "/tmp/la_unit_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *line = "2026-11-22 07:51:20.381 UTC [7960] LOG:  duration: 2.297 ms  "
                       "statement: select 1\n";
    for (int i = 0; i < 1000; i++)
        assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
    close(fd);
    char params[512], err[256];
    char *result = NULL, *st = NULL;
    int retry = 0;
    snprintf(params, sizeof params, "{\"files\":[\"%s\"],\"threads\":2}", path);
    main_thread = pthread_self();
    assert_int_equal(la_run(params, NULL, cancel_now, NULL, &result, &st, &retry, err, sizeof err),
                     -1);
    assert_int_equal(retry, 1);
    assert_string_equal(err, "cancelled before the end of the logs");
    assert_true(cancel_calls > 0);
    assert_true(last_fraction > 0.99 && last_fraction <= 1.0); /* one read: all of it */
    assert_int_equal(cancel_wrong_thread, 0);

    assert_int_equal(la_run(params, NULL, NULL, NULL, &result, &st, &retry, err, sizeof err), 0);
    assert_non_null(strstr(result, "\"total\": 1000"));
    assert_non_null(strstr(st, "\"offset\":"));
    free(result);
    free(st);

    assert_int_equal(la_run("{\"files\":[\"x\"],\"top\":0}", NULL, NULL, NULL, &result, &st,
                            &retry, err, sizeof err),
                     -1);
    assert_int_equal(retry, 0);
    assert_string_equal(err, "params: top 0 is out of range (1 to 1000)");
    assert_int_equal(la_run("{\"files\":[\"x\"],\"source\":\"server\"}", NULL, NULL, NULL,
                            &result, &st, &retry, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "source \"server\" is not supported"));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_session_and_not),
        cmocka_unit_test(test_prefix_many_escapes),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_csv_record),
        cmocka_unit_test(test_json_line),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_query_type),
        cmocka_unit_test(test_error_class),
        cmocka_unit_test(test_run_cancel_and_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
