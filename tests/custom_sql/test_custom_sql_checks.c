/*
 * test_custom_sql_checks.c - every check of the library conf.d/checks/,
 * loaded by the real binary (`pgreviewer run --once --task NAME`) from the
 * source tree with a connection named `target`, against a throw-away
 * PostgreSQL started once for the suite. Each test creates the condition
 * the check looks for (a transaction left open, a blocked session, bloated
 * tables and indexes, an unused index, repeated sequential scans, a cold
 * cache, many connections, a slow statement in pg_stat_statements, a
 * streaming standby made with pg_basebackup whose replay is paused) and
 * sees the check turn warning and/or critical with its shipped thresholds.
 *
 * Conditions that take minutes (a transaction open for 30 minutes) or
 * that cannot be made cheaply (ID wraparound, a standby 1 GB behind) are
 * checked with a copy of the check whose threshold is lowered by an exact
 * text substitution in the YAML - the SQL runs unchanged - and the
 * substitution must match, so a changed library fails here loudly rather
 * than silently testing nothing.
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
#include <sys/stat.h>
#include <unistd.h>

#include "testenv.h"

static char dir[64];

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static testpg pg;
static char standby_conninfo[512];
static bool standby_running;

static PGconn *connect_to(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(c));
    return c;
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

/* The first column of the first row of `sql` as a number (0 when none;
 * a boolean as 1 or 0). */
static double scalar_on(const char *conninfo, const char *sql)
{
    PGconn *c = connect_to(conninfo);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    double v = 0;
    if (PQntuples(r) && !PQgetisnull(r, 0, 0))
        v = strcmp(PQgetvalue(r, 0, 0), "t") == 0 ? 1 : atof(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return v;
}

typedef struct probe {
    const char *conninfo, *sql;
} probe;

static bool probe_true(void *arg)
{
    const probe *p = arg;
    return scalar_on(p->conninfo, p->sql) != 0;
}

/* Wait (20 s at most) until `sql` on the server of `conninfo` is true. */
static void wait_for_on(const char *conninfo, const char *sql)
{
    probe p = {conninfo, sql};
    if (!wait_until(probe_true, &p, 20000))
        fail_msg("condition never became true: %s", sql);
}

static void wait_for(const char *sql)
{
    wait_for_on(pg.conninfo, sql);
}

/* Run a PostgreSQL program of the server's installation as the server's
 * owner (pgrtest when we are root, as tests/lib/pg_harness.sh does);
 * `args` is shell text after the program name. Fails the test on error. */
static void pg_tool(const char *program, const char *args)
{
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}; "
             "if [ \"$(id -u)\" = 0 ]; then runuser -u pgrtest -- \"$bindir/%s\" %s; "
             "else \"$bindir/%s\" %s; fi",
             program, args, program, args);
    if (run_capture(cmd, &out) != 0)
        fail_msg("%s %s failed: %s", program, args, out);
    free(out);
}

static void stop_standby(void)
{
    char args[512];
    if (!standby_running)
        return;
    snprintf(args, sizeof args, "-D %s/standby -m immediate -w stop", pg.dir);
    pg_tool("pg_ctl", args);
    standby_running = false;
}

static int group_setup(void **state)
{
    (void)state;
    if (testpg_start(&pg) != 0)
        return -1;
    snprintf(dir, sizeof dir, "/tmp/pgr-checks-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    char cfg[2048];
    /* the library as shipped, from the source tree */
    snprintf(cfg, sizeof cfg,
             "include: %s/conf.d/checks/*.yaml\n"
             "logging: {level: warning}\n"
             "connections: [{id: target, host: %s, port: 5432, database: postgres, "
             "username: pgrtest}]\n",
             test_source_dir(), pg.dir);
    write_file("shipped.yaml", cfg);
    /* one check with lowered thresholds, written by lowered() */
    snprintf(cfg, sizeof cfg,
             "include: %s/lowered/*.yaml\n"
             "logging: {level: warning}\n"
             "connections: [{id: target, host: %s, port: 5432, database: postgres, "
             "username: pgrtest}]\n",
             dir, pg.dir);
    write_file("lowered.yaml", cfg);
    /* the same two, aimed at the standby that test_replication_lag starts */
    snprintf(cfg, sizeof cfg,
             "include: %s/lowered/*.yaml\n"
             "logging: {level: warning}\n"
             "connections: [{id: target, host: %s, port: 5433, database: postgres, "
             "username: pgrtest}]\n",
             dir, pg.dir);
    write_file("lowered-standby.yaml", cfg);
    snprintf(standby_conninfo, sizeof standby_conninfo,
             "host=%s port=5433 dbname=postgres user=pgrtest", pg.dir);
    char sub[128];
    snprintf(sub, sizeof sub, "%s/lowered", dir);
    return mkdir(sub, 0755);
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run_capture(cmd, NULL);
    stop_standby();
    testpg_stop(&pg);
    return 0;
}

/* Run one task with `config` (shipped.yaml or lowered.yaml); returns its
 * result document (caller frees) after checking the task completed. */
static json_t *run_task(const char *config, const char *task)
{
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --config %s/%s run --once --task %s 2>/dev/null",
             getenv("PGR_BIN"), dir, config, task);
    int rc = run_capture(cmd, &out);
    json_t *line = json_loads(out, 0, NULL);
    if (rc != 0 || !line)
        fail_msg("run --once --task %s exited %d: %s", task, rc, out);
    free(out);
    assert_string_equal(json_string_value(json_object_get(line, "task")), task);
    assert_string_equal(json_string_value(json_object_get(line, "status")), "completed");
    json_t *doc = json_incref(json_object_get(line, "result"));
    json_decref(line);
    assert_int_equal(json_integer_value(json_object_get(doc, "schema_version")), 1);
    return doc;
}

static json_t *shipped(const char *task)
{
    return run_task("shipped.yaml", task);
}

/* Copy the library file `file` into lowered/ (alone) with each pair of
 * `subst` (from, to, ..., NULL) replaced everywhere it occurs; each `from`
 * must occur at least once. Then run `task` from the copy. */
static json_t *lowered_on(const char *config, const char *file, const char *task,
                          const char *const *subst)
{
    char path[512];
    snprintf(path, sizeof path, "rm -f %s/lowered/*.yaml", dir);
    run_capture(path, NULL);
    snprintf(path, sizeof path, "%s/conf.d/checks/%s", test_source_dir(), file);
    char *text = read_text(path);
    for (; subst[0]; subst += 2) {
        char *at = strstr(text, subst[0]);
        if (!at)
            fail_msg("%s no longer contains %s: update the test", file, subst[0]);
        while (at) {
            size_t off = (size_t)(at - text), fl = strlen(subst[0]), tl = strlen(subst[1]);
            char *n = malloc(strlen(text) - fl + tl + 1);
            assert_non_null(n);
            memcpy(n, text, off);
            memcpy(n + off, subst[1], tl);
            strcpy(n + off + tl, at + fl);
            free(text);
            text = n;
            at = strstr(text + off + tl, subst[0]);
        }
    }
    snprintf(path, sizeof path, "lowered/%s", file);
    write_file(path, text);
    free(text);
    return run_task(config, task);
}

static json_t *lowered(const char *file, const char *task, const char *const *subst)
{
    return lowered_on("lowered.yaml", file, task, subst);
}

static json_t *only_query(json_t *doc)
{
    assert_int_equal(json_array_size(json_object_get(doc, "queries")), 1);
    return json_array_get(json_object_get(doc, "queries"), 0);
}

static const char *status_of(json_t *o)
{
    const char *s = json_string_value(json_object_get(o, "status"));
    assert_non_null(s);
    return s;
}

/* The first row of `list` (rows, or alerts whose `row` is looked at) whose
 * `key` equals the integer `v` or the string `s`. */
static json_t *find_row(json_t *list, const char *key, long long v, const char *s)
{
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r)
    {
        json_t *row = json_object_get(r, "row") ? json_object_get(r, "row") : r;
        json_t *x = json_object_get(row, key);
        if ((s && json_is_string(x) && strcmp(json_string_value(x), s) == 0) ||
            (!s && json_is_integer(x) && json_integer_value(x) == v))
            return r;
    }
    return NULL;
}

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        fail_msg("%s is not a number", key);
    return json_number_value(v);
}

/* ------------------------------------------------------------------------ */

static void test_library_loads_only_when_included(void **state)
{
    (void)state;
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --config %s/shipped.yaml config check", getenv("PGR_BIN"), dir);
    assert_int_equal(run_capture(cmd, &out), 0);
    assert_non_null(strstr(out, "  tasks: 12\n"));
    assert_non_null(strstr(out, "check-blocking-locks"));
    free(out);
    /* the example configuration includes conf.d/ fragments, not conf.d/checks/ */
    snprintf(cmd, sizeof cmd, "%s --config %s/pgreviewer.yaml config check", getenv("PGR_BIN"),
             test_source_dir());
    assert_int_equal(run_capture(cmd, &out), 0);
    assert_null(strstr(out, "check-"));
    free(out);
}

static void test_long_transactions(void **state)
{
    (void)state;
    PGconn *a = connect_pg();
    exec_ok(a, "BEGIN; SELECT txid_current()");
    int pid = PQbackendPID(a);
    char cond[256];
    snprintf(cond, sizeof cond,
             "SELECT now() - xact_start > interval '300 ms' FROM pg_stat_activity WHERE pid = %d",
             pid);
    wait_for(cond);
    json_t *doc = shipped("check-long-transactions");
    json_t *q = only_query(doc);
    assert_string_equal(status_of(q), "ok"); /* well under 5 minutes */
    json_t *row = find_row(json_object_get(q, "rows"), "pid", pid, NULL);
    assert_non_null(row);
    assert_true(num(row, "xact_age_s") < 300);
    json_decref(doc);

    static const char *const warn[] = {"warning: \"> 300\"", "warning: \"> 0.1\"", NULL};
    doc = lowered("long_transactions.yaml", "check-long-transactions", warn);
    q = only_query(doc);
    assert_string_equal(status_of(q), "warning");
    json_t *alert = find_row(json_object_get(q, "alerts"), "pid", pid, NULL);
    assert_non_null(alert);
    assert_string_equal(json_string_value(json_object_get(alert, "threshold")),
                        "column xact_age_s > 0.1");
    json_decref(doc);

    static const char *const crit[] = {"critical: \"> 1800\"", "critical: \"> 0.1\"", NULL};
    doc = lowered("long_transactions.yaml", "check-long-transactions", crit);
    assert_string_equal(status_of(doc), "critical");
    assert_non_null(find_row(json_object_get(only_query(doc), "alerts"), "pid", pid, NULL));
    json_decref(doc);
    PQfinish(a);
}

static void test_idle_in_transaction(void **state)
{
    (void)state;
    PGconn *a = connect_pg();
    exec_ok(a, "BEGIN");
    exec_ok(a, "SELECT 1");
    int pid = PQbackendPID(a);
    char cond[256];
    snprintf(cond, sizeof cond,
             "SELECT state = 'idle in transaction' AND now() - state_change > interval '300 ms' "
             "FROM pg_stat_activity WHERE pid = %d",
             pid);
    wait_for(cond);
    json_t *doc = shipped("check-idle-in-transaction");
    json_t *q = only_query(doc);
    assert_string_equal(status_of(q), "ok");
    json_t *row = find_row(json_object_get(q, "rows"), "pid", pid, NULL);
    assert_non_null(row);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "idle in transaction");
    assert_string_equal(json_string_value(json_object_get(row, "last_query")), "SELECT 1");
    json_decref(doc);

    static const char *const warn[] = {"warning: \"> 60\"", "warning: \"> 0.1\"", NULL};
    doc = lowered("idle_in_transaction.yaml", "check-idle-in-transaction", warn);
    assert_string_equal(status_of(doc), "warning");
    assert_non_null(find_row(json_object_get(only_query(doc), "alerts"), "pid", pid, NULL));
    json_decref(doc);

    static const char *const crit[] = {"critical: \"> 600\"", "critical: \"> 0.1\"", NULL};
    doc = lowered("idle_in_transaction.yaml", "check-idle-in-transaction", crit);
    assert_string_equal(status_of(doc), "critical");
    json_decref(doc);
    PQfinish(a);
}

static void test_blocking_locks(void **state)
{
    (void)state;
    json_t *doc = shipped("check-blocking-locks");
    assert_string_equal(status_of(doc), "ok");
    assert_int_equal(num(only_query(doc), "row_count"), 0);
    json_decref(doc);

    testpg_exec(&pg, "CREATE TABLE blk (id int)");
    PGconn *holder = connect_pg(), *waiter = connect_pg();
    exec_ok(holder, "BEGIN; LOCK TABLE blk IN ACCESS EXCLUSIVE MODE");
    assert_int_equal(PQsendQuery(waiter, "SELECT count(*) FROM blk"), 1);
    char cond[256];
    snprintf(cond, sizeof cond,
             "SELECT wait_event_type = 'Lock' AND now() - query_start > interval '300 ms' "
             "FROM pg_stat_activity WHERE pid = %d",
             PQbackendPID(waiter));
    wait_for(cond);

    doc = shipped("check-blocking-locks");
    json_t *q = only_query(doc);
    assert_string_equal(status_of(q), "warning"); /* someone is blocked */
    assert_int_equal(num(q, "row_count"), 1);
    json_t *row = json_array_get(json_object_get(q, "rows"), 0);
    assert_int_equal(num(row, "blocked_pid"), PQbackendPID(waiter));
    assert_int_equal(num(row, "blocking_pid"), PQbackendPID(holder));
    assert_string_equal(json_string_value(json_object_get(row, "blocked_query")),
                        "SELECT count(*) FROM blk");
    assert_string_equal(json_string_value(json_object_get(row, "blocking_state")),
                        "idle in transaction");
    json_t *alert = json_array_get(json_object_get(q, "alerts"), 0);
    assert_string_equal(json_string_value(json_object_get(alert, "threshold")), "rows > 0");
    json_decref(doc);

    static const char *const crit[] = {"critical: \"> 60\"", "critical: \"> 0.1\"", NULL};
    doc = lowered("blocking_locks.yaml", "check-blocking-locks", crit);
    q = only_query(doc);
    assert_string_equal(status_of(q), "critical");
    assert_non_null(find_row(json_object_get(q, "alerts"), "blocked_pid", PQbackendPID(waiter),
                             NULL));
    json_decref(doc);

    exec_ok(holder, "ROLLBACK");
    PGresult *r;
    while ((r = PQgetResult(waiter)) != NULL)
        PQclear(r);
    PQfinish(holder);
    PQfinish(waiter);
}

static void expect_columns(json_t *q, const char *want)
{
    char got[1024] = "";
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(q, "columns"), i, c)
    {
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? "," : "",
                 json_string_value(json_object_get(c, "name")));
    }
    assert_string_equal(got, want);
}

/* A streaming standby of the test server, on port 5433 in the same socket
 * directory, made with pg_basebackup -R; returns once it streams and has
 * replayed a transaction. */
static void start_standby(void)
{
    char args[1024];
    snprintf(args, sizeof args,
             "-h %s -p 5432 -U pgrtest -D %s/standby -R -X stream -c fast --no-sync", pg.dir,
             pg.dir);
    pg_tool("pg_basebackup", args);
    snprintf(args, sizeof args, "-D %s/standby -l %s/standby.log -o \"-p 5433\" -w -t 60 start",
             pg.dir, pg.dir);
    pg_tool("pg_ctl", args);
    standby_running = true;
    wait_for("SELECT count(*) > 0 FROM pg_stat_replication WHERE state = 'streaming'");
    assert_int_equal(testpg_exec(&pg, "CREATE TABLE repl_marker (id int); "
                                      "INSERT INTO repl_marker VALUES (1)"),
                     0);
    wait_for_on(standby_conninfo, "SELECT pg_last_xact_replay_timestamp() IS NOT NULL");
}

static void test_replication_lag(void **state)
{
    (void)state;
    /* Without a standby: ok, with its columns and no rows. */
    json_t *doc = shipped("check-replication-lag");
    assert_string_equal(status_of(doc), "ok");
    json_t *replicas = json_array_get(json_object_get(doc, "queries"), 0);
    assert_string_equal(status_of(replicas), "ok");
    expect_columns(replicas, "application_name,client_addr,state,sync_state,replay_lag_bytes,"
                             "replay_lag_s,write_lag_s,flush_lag_s");
    assert_int_equal(num(replicas, "row_count"), 0);
    json_t *standby = json_array_get(json_object_get(doc, "queries"), 1);
    assert_string_equal(status_of(standby), "ok");
    json_t *row = json_array_get(json_object_get(standby, "rows"), 0);
    assert_true(json_is_false(json_object_get(row, "in_recovery")));
    assert_true(json_is_null(json_object_get(row, "replay_delay_s")));
    json_decref(doc);

    /* A standby whose replay is paused while the primary moves on by
     * three WAL segments (pg_switch_wal): more than 16 MB behind. */
    start_standby();
    PGconn *sb = connect_to(standby_conninfo);
    exec_ok(sb, "SELECT pg_wal_replay_pause()");
    PQfinish(sb);
    wait_for_on(standby_conninfo, "SELECT pg_get_wal_replay_pause_state() = 'paused'");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(testpg_exec(&pg, "INSERT INTO repl_marker VALUES (2)"), 0);
        assert_int_equal(testpg_exec(&pg, "SELECT pg_switch_wal()"), 0);
    }
    wait_for("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) > 16777216 "
             "FROM pg_stat_replication");
    doc = shipped("check-replication-lag");
    replicas = json_array_get(json_object_get(doc, "queries"), 0);
    assert_string_equal(status_of(replicas), "warning");
    row = json_array_get(json_object_get(replicas, "rows"), 0);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "streaming");
    json_t *alert = find_row(json_object_get(replicas, "alerts"), "state", 0, "streaming");
    assert_non_null(alert);
    assert_string_equal(json_string_value(json_object_get(alert, "threshold")),
                        "column replay_lag_bytes > 16777216");
    json_decref(doc);

    static const char *const crit[] = {"critical: \"> 1073741824\"", "critical: \"> 16777216\"",
                                       NULL};
    doc = lowered("replication_lag.yaml", "check-replication-lag", crit);
    assert_string_equal(status_of(json_array_get(json_object_get(doc, "queries"), 0)),
                        "critical");
    json_decref(doc);

    /* On the standby: in recovery, its last replayed transaction ages. */
    wait_for_on(standby_conninfo,
                "SELECT now() - pg_last_xact_replay_timestamp() > interval '300 ms'");
    static const char *const delay[] = {"{column: replay_delay_s, warning: \"> 60\"",
                                        "{column: replay_delay_s, warning: \"> 0.1\"", NULL};
    doc = lowered_on("lowered-standby.yaml", "replication_lag.yaml", "check-replication-lag",
                     delay);
    standby = json_array_get(json_object_get(doc, "queries"), 1);
    assert_string_equal(status_of(standby), "warning");
    row = json_array_get(json_object_get(standby, "rows"), 0);
    assert_true(json_is_true(json_object_get(row, "in_recovery")));
    assert_true(num(row, "replay_delay_s") > 0.1);
    assert_string_equal(status_of(json_array_get(json_object_get(doc, "queries"), 0)), "ok");
    json_decref(doc);
    stop_standby();
}

static void test_wraparound(void **state)
{
    (void)state;
    json_t *doc = shipped("check-wraparound");
    json_t *q = only_query(doc);
    assert_string_equal(status_of(q), "ok");
    json_t *row = find_row(json_object_get(q, "rows"), "datname", 0, "postgres");
    assert_non_null(row);
    assert_true(num(row, "xid_age") > 0);
    assert_true(num(row, "xid_pct") < 1);
    json_decref(doc);

    /* No server is near wraparound: lower the bar to the age it has. */
    static const char *const warn[] = {"{column: xid_pct, warning: \"> 50\"",
                                       "{column: xid_pct, warning: \"> 0\"", NULL};
    doc = lowered("wraparound.yaml", "check-wraparound", warn);
    q = only_query(doc);
    assert_string_equal(status_of(q), "warning");
    assert_non_null(find_row(json_object_get(q, "alerts"), "datname", 0, "postgres"));
    json_decref(doc);

    static const char *const crit[] = {"{column: xid_pct, warning: \"> 50\", critical: \"> 75\"",
                                       "{column: xid_pct, warning: \"> 50\", critical: \"> 0\"",
                                       NULL};
    doc = lowered("wraparound.yaml", "check-wraparound", crit);
    assert_string_equal(status_of(doc), "critical");
    json_decref(doc);
}

static void test_cache_hit_ratio(void **state)
{
    (void)state;
    testpg_exec(&pg, "SELECT pg_stat_reset()");
    json_t *doc = shipped("check-cache-hit-ratio");
    json_t *q = only_query(doc);
    assert_string_equal(status_of(q), "ok"); /* too few reads to judge */
    json_t *row = find_row(json_object_get(q, "rows"), "datname", 0, "postgres");
    assert_non_null(row);
    assert_true(json_is_null(json_object_get(row, "hit_ratio")));
    json_decref(doc);

    /* A table bigger than shared_buffers (32MB), scanned whole: reads. */
    assert_int_equal(testpg_exec(&pg, "CREATE TABLE cold AS SELECT g, repeat('x', 1000) AS pad "
                                      "FROM generate_series(1, 40000) g"),
                     0);
    testpg_exec(&pg, "SELECT pg_stat_reset()");
    for (int i = 0; i < 3; i++)
        testpg_exec(&pg, "SELECT count(*) FROM cold");
    wait_for("SELECT blks_read > 9000 FROM pg_stat_database WHERE datname = 'postgres'");
    doc = shipped("check-cache-hit-ratio");
    q = only_query(doc);
    assert_string_equal(status_of(q), "critical");
    json_t *alert = find_row(json_object_get(q, "alerts"), "datname", 0, "postgres");
    assert_non_null(alert);
    assert_string_equal(json_string_value(json_object_get(alert, "status")), "critical");
    assert_true(num(alert, "value") < 0.90);
    json_decref(doc);
    testpg_exec(&pg, "DROP TABLE cold");
}

/* Two bloated tables (60 % and 90 % of their rows deleted, statistics
 * fresh, autovacuum off) with b-tree indexes built before the delete, and
 * one that is not bloated; all over the library's 10 MB floor. */
static void make_bloat(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    static const char *const tables[][2] = {{"bloat_warn", "6"}, {"bloat_crit", "9"},
                                            {"bloat_none", "0"}};
    for (size_t i = 0; i < 3; i++) {
        char sql[1024];
        snprintf(sql, sizeof sql,
                 "CREATE TABLE %s (g int, pad text) WITH (autovacuum_enabled = false); "
                 "INSERT INTO %s SELECT g, lpad(g::text, 100, 'x') FROM generate_series(1, "
                 "100000) g; CREATE INDEX %s_pad ON %s (pad); "
                 "DELETE FROM %s WHERE g %% 10 < %s; ANALYZE %s",
                 tables[i][0], tables[i][0], tables[i][0], tables[i][0], tables[i][0],
                 tables[i][1], tables[i][0]);
        assert_int_equal(testpg_exec(&pg, sql), 0);
    }
}

static void expect_bloat(json_t *q, const char *key, const char *name, const char *level)
{
    json_t *row = find_row(json_object_get(q, "rows"), key, 0, name);
    if (!row)
        fail_msg("%s %s is not in the rows", key, name);
    json_t *alert = find_row(json_object_get(q, "alerts"), key, 0, name);
    if (!level) {
        assert_null(alert);
        assert_true(num(row, "bloat_pct") < 15);
        return;
    }
    if (!alert)
        fail_msg("%s %s has no alert", key, name);
    assert_string_equal(json_string_value(json_object_get(alert, "status")), level);
}

static void test_table_bloat(void **state)
{
    (void)state;
    make_bloat();
    json_t *doc = shipped("check-table-bloat");
    json_t *q = only_query(doc);
    assert_string_equal(status_of(q), "critical");
    expect_bloat(q, "table", "bloat_crit", "critical");
    expect_bloat(q, "table", "bloat_warn", "warning");
    expect_bloat(q, "table", "bloat_none", NULL);
    json_decref(doc);
}

static void test_index_bloat(void **state)
{
    (void)state;
    make_bloat();
    json_t *doc = shipped("check-index-bloat");
    json_t *q = only_query(doc);
    assert_string_equal(status_of(q), "critical");
    expect_bloat(q, "index", "bloat_crit_pad", "critical");
    expect_bloat(q, "index", "bloat_warn_pad", "warning");
    expect_bloat(q, "index", "bloat_none_pad", NULL);
    json_decref(doc);
}

static void test_unused_indexes(void **state)
{
    (void)state;
    make_bloat();
    /* a used index and a primary key, both over 1 MB: never listed */
    assert_int_equal(testpg_exec(&pg, "CREATE TABLE used (id int PRIMARY KEY, pad text); "
                                      "INSERT INTO used SELECT g, lpad(g::text, 50, 'y') FROM "
                                      "generate_series(1, 100000) g; "
                                      "CREATE INDEX used_pad ON used (pad); ANALYZE used"),
                     0);
    testpg_exec(&pg, "SET enable_seqscan = off; SELECT * FROM used WHERE pad = 'nothing'");
    wait_for("SELECT idx_scan > 0 FROM pg_stat_user_indexes WHERE indexrelname = 'used_pad'");

    json_t *doc = shipped("check-unused-indexes");
    json_t *q = only_query(doc);
    assert_string_equal(status_of(q), "warning");
    json_t *rows = json_object_get(q, "rows");
    assert_non_null(find_row(rows, "index", 0, "bloat_crit_pad"));
    assert_non_null(find_row(rows, "index", 0, "bloat_none_pad"));
    assert_null(find_row(rows, "index", 0, "used_pad"));
    assert_null(find_row(rows, "index", 0, "used_pkey"));
    json_decref(doc);

    static const char *const crit[] = {"critical: \">= 1073741824\"", "critical: \">= 1048576\"",
                                       NULL};
    doc = lowered("unused_indexes.yaml", "check-unused-indexes", crit);
    q = only_query(doc);
    assert_string_equal(status_of(q), "critical");
    json_t *alert = find_row(json_object_get(q, "alerts"), "index", 0, "bloat_crit_pad");
    assert_non_null(alert);
    assert_string_equal(json_string_value(json_object_get(alert, "status")), "critical");
    json_decref(doc);
}

static void test_seq_scans(void **state)
{
    (void)state;
    assert_int_equal(testpg_exec(&pg, "CREATE TABLE scanned AS SELECT g, lpad(g::text, 100, "
                                      "'z') AS pad FROM generate_series(1, 10000) g; "
                                      "DO $$ BEGIN FOR i IN 1..120 LOOP "
                                      "PERFORM count(*) FROM scanned; END LOOP; END $$"),
                     0);
    wait_for("SELECT seq_scan >= 120 FROM pg_stat_user_tables WHERE relname = 'scanned'");
    json_t *doc = shipped("check-seq-scans");
    assert_string_equal(status_of(doc), "ok"); /* 1.4 MB: under the 100 MB floor */
    assert_null(find_row(json_object_get(only_query(doc), "rows"), "table", 0, "scanned"));
    json_decref(doc);

    static const char *const warn[] = {"params: [\"100MB\"]", "params: [\"1MB\"]", NULL};
    doc = lowered("seq_scans.yaml", "check-seq-scans", warn);
    json_t *q = only_query(doc);
    assert_string_equal(status_of(q), "warning");
    json_t *alert = find_row(json_object_get(q, "alerts"), "table", 0, "scanned");
    assert_non_null(alert);
    assert_true(num(alert, "value") >= 120);
    json_decref(doc);

    static const char *const crit[] = {"params: [\"100MB\"]", "params: [\"1MB\"]",
                                       "critical: \"> 10000\"", "critical: \"> 110\"", NULL};
    doc = lowered("seq_scans.yaml", "check-seq-scans", crit);
    assert_string_equal(status_of(doc), "critical");
    json_decref(doc);
}

static void test_connections(void **state)
{
    (void)state;
    json_t *doc = shipped("check-connections");
    assert_string_equal(status_of(doc), "ok");
    json_t *row = json_array_get(json_object_get(only_query(doc), "rows"), 0);
    assert_int_equal(num(row, "max_connections"), 100);
    assert_true(num(row, "used_pct") < 10);
    json_decref(doc);

    /* 100 - 3 reserved = 97 for users; 78 of ours + the check's own = 81 % */
    enum { N = 78 };
    PGconn *conns[N];
    for (int i = 0; i < N; i++)
        conns[i] = connect_pg();
    doc = shipped("check-connections");
    json_t *q = only_query(doc);
    assert_string_equal(status_of(q), "warning");
    row = json_array_get(json_object_get(q, "rows"), 0);
    assert_true(num(row, "connections") >= N + 1);
    assert_true(num(row, "used_pct") > 80);
    json_decref(doc);

    static const char *const crit[] = {"critical: \"> 95\"", "critical: \"> 80\"", NULL};
    doc = lowered("connections.yaml", "check-connections", crit);
    assert_string_equal(status_of(doc), "critical");
    json_decref(doc);
    for (int i = 0; i < N; i++)
        PQfinish(conns[i]);
}

/* Restart the server (as the harness started it) to load a library. */
static void restart_server(void)
{
    char args[1024];
    snprintf(args, sizeof args, "-D %s/data -l %s/server.log -w -t 60 restart", pg.dir, pg.dir);
    pg_tool("pg_ctl", args);
}

static void test_top_queries(void **state)
{
    (void)state;
    json_t *doc = shipped("check-top-queries");
    assert_string_equal(status_of(doc), "ok");
    json_t *q = json_array_get(json_object_get(doc, "queries"), 0);
    assert_string_equal(status_of(q), "skipped");
    assert_string_equal(json_string_value(json_object_get(q, "message")),
                        "skipped: extension pg_stat_statements is not installed in database "
                        "postgres");
    json_t *old = json_array_get(json_object_get(doc, "queries"), 1);
    assert_string_equal(status_of(old), "skipped"); /* the query for servers before 13 */
    json_decref(doc);

    /* installed but not loaded: the check cannot tell */
    assert_int_equal(testpg_exec(&pg, "CREATE EXTENSION pg_stat_statements"), 0);
    doc = shipped("check-top-queries");
    q = json_array_get(json_object_get(doc, "queries"), 0);
    assert_string_equal(status_of(q), "unknown");
    assert_non_null(strstr(json_string_value(json_object_get(q, "error")),
                           "pg_stat_statements must be loaded via shared_preload_libraries"));
    json_decref(doc);

    /* loaded, and a statement that takes 600 ms on average */
    assert_int_equal(
        testpg_exec(&pg, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"), 0);
    restart_server();
    assert_int_equal(testpg_exec(&pg, "SELECT pg_sleep(0.6)"), 0);
    doc = shipped("check-top-queries");
    q = json_array_get(json_object_get(doc, "queries"), 0);
    assert_string_equal(status_of(q), "warning");
    json_t *alert = json_array_get(json_object_get(q, "alerts"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(alert, "row"),
                                                             "query")),
                           "pg_sleep"));
    assert_true(num(alert, "value") > 500);
    json_decref(doc);

    static const char *const crit[] = {"critical: \"> 5000\"", "critical: \"> 550\"", NULL};
    doc = lowered("top_queries.yaml", "check-top-queries", crit);
    assert_string_equal(status_of(doc), "critical");
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_library_loads_only_when_included),
        cmocka_unit_test(test_long_transactions),
        cmocka_unit_test(test_idle_in_transaction),
        cmocka_unit_test(test_blocking_locks),
        cmocka_unit_test(test_replication_lag),
        cmocka_unit_test(test_wraparound),
        cmocka_unit_test(test_cache_hit_ratio),
        cmocka_unit_test(test_table_bloat),
        cmocka_unit_test(test_index_bloat),
        cmocka_unit_test(test_unused_indexes),
        cmocka_unit_test(test_seq_scans),
        cmocka_unit_test(test_connections),
        cmocka_unit_test(test_top_queries), /* last: it restarts the server */
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
