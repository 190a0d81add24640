/*
 * test_store_cli.c - `task`, `execution` and `db` sub-commands, called as
 * functions (cmd_task & co) with stdout and stderr captured, against a real
 * PostgreSQL: exact texts, aligned tables, --json documents, exit codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_testutil.h"
#include "util.h"

typedef int (*cli_fn)(const pgr_config *, int, char **);

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

/* Run fn(cfg, args...) (NULL-terminated) with stdout/stderr captured. */
static cli_out run_cli(cli_fn fn, const pgr_config *cfg, ...)
{
    char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, cfg);
    for (char *a; argc < 15 && (a = va_arg(ap, char *));)
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
    r.rc = fn(cfg, argc, argv);
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

static void cli_free(cli_out *r)
{
    free(r->out);
    free(r->err);
}

/* A migrated database and a config with tasks alpha and beta. */
static void setup_cfg(pgr_config *cfg)
{
    cfg_task t[2];
    tu_task(&t[0], "alpha", "log_analysis", "0 2 * * *", "{\"source\": \"server\"}");
    tu_task(&t[1], "beta", "custom_sql", "*/5 * * * *", NULL);
    tu_config(cfg, tu_fresh_db(true), t, 2);
}

static void test_cli_no_store(void **state)
{
    pgr_config cfg;
    memset(&cfg, 0, sizeof cfg);
    static const char msg[] =
        "pgreviewer: no store configured: set store.url in the configuration (a libpq URI or "
        "key=value string, e.g. postgresql:///pgreviewer?host=/run/postgresql)\n";
    cli_out r = run_cli(cmd_task, &cfg, "list", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, msg);
    assert_string_equal(r.out, "");
    cli_free(&r);
    r = run_cli(cmd_execution, &cfg, "show", "1", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, msg);
    cli_free(&r);
    r = run_cli(cmd_db, &cfg, "migrate", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, msg);
    cli_free(&r);
}

static void test_cli_usage(void **state)
{
    pgr_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cli_out r = run_cli(cmd_task, &cfg, NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "usage: pgreviewer task list"));
    cli_free(&r);
    r = run_cli(cmd_task, &cfg, "lsit", NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "pgreviewer: unknown task command \"lsit\"; did you mean "
                                  "\"list\"?\n"));
    cli_free(&r);
    r = run_cli(cmd_task, &cfg, "show", NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "pgreviewer: task show needs a task NAME\n"));
    cli_free(&r);
    r = run_cli(cmd_task, &cfg, "history", "alpha", "--limit", "0", NULL);
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err, "pgreviewer: --limit: expected a number from 1 to 100000, got "
                               "\"0\"\n");
    cli_free(&r);
    r = run_cli(cmd_execution, &cfg, "show", "abc", NULL);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "needs an execution ID (a positive number), got \"abc\""));
    cli_free(&r);
    r = run_cli(cmd_db, &cfg, "upgrade", NULL);
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err, "pgreviewer: unknown db command \"upgrade\"\n"
                               "usage: pgreviewer db migrate | pgreviewer db status | pgreviewer db prune\n");
    cli_free(&r);
}

static void test_cli_db_migrate(void **state)
{
    pgr_config cfg;
    tu_config(&cfg, tu_fresh_db(false), NULL, 0);
    cli_out r = run_cli(cmd_db, &cfg, "status", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "schema version 0: 1 migration(s) to apply (run: pgreviewer db "
                               "migrate)\n");
    cli_free(&r);
    r = run_cli(cmd_db, &cfg, "migrate", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "applied migration 1: initial schema\n"
                               "the store is now at schema version 1\n");
    assert_string_equal(r.err, "");
    cli_free(&r);
    r = run_cli(cmd_db, &cfg, "migrate", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "the store is up to date (schema version 1)\n");
    cli_free(&r);
    r = run_cli(cmd_db, &cfg, "status", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "schema version 1: up to date\n");
    cli_free(&r);
    tu_config_clear(&cfg);
}

static void test_cli_task_list(void **state)
{
    pgr_config cfg;
    setup_cfg(&cfg);
    cli_out r = run_cli(cmd_task, &cfg, "list", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    assert_string_equal(
        r.out,
        "NAME   TYPE          CONNECTION  SCHEDULE     TIMEZONE  STATE   OWNER   LAST RUN  NEXT RUN\n"
        "alpha  log_analysis  prod-main   0 2 * * *    UTC       active  config  -         -\n"
        "beta   custom_sql    prod-main   */5 * * * *  UTC       active  config  -         -\n");
    cli_free(&r);
    r = run_cli(cmd_task, &cfg, "pause", "beta", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "task \"beta\" paused\n");
    cli_free(&r);
    r = run_cli(cmd_task, &cfg, "list", "--json", NULL);
    assert_int_equal(r.rc, 0);
    json_t *j = json_loads(r.out, 0, NULL);
    assert_true(json_is_array(j));
    assert_int_equal(json_array_size(j), 2);
    json_t *beta = json_array_get(j, 1);
    assert_string_equal(json_string_value(json_object_get(beta, "name")), "beta");
    assert_string_equal(json_string_value(json_object_get(beta, "state")), "paused");
    assert_string_equal(json_string_value(json_object_get(beta, "owner")), "config");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_array_get(j, 0), "retry"), "max_attempts")),
                     3);
    json_decref(j);
    cli_free(&r);
    r = run_cli(cmd_task, &cfg, "resume", "beta", NULL);
    assert_string_equal(r.out, "task \"beta\" resumed\n");
    cli_free(&r);
    /* A task dropped from the YAML disappears from the list (kept with --all). */
    cfg.n_tasks = 1;
    r = run_cli(cmd_task, &cfg, "list", NULL);
    assert_null(strstr(r.out, "beta"));
    cli_free(&r);
    r = run_cli(cmd_task, &cfg, "list", "--all", NULL);
    assert_non_null(strstr(r.out, "beta   custom_sql    prod-main   */5 * * * *  UTC       removed"));
    cli_free(&r);
    cfg.n_tasks = 2;
    tu_config_clear(&cfg);
}

static void test_cli_unknown_task(void **state)
{
    pgr_config cfg;
    setup_cfg(&cfg);
    static const char *const verbs[] = {"show", "trigger", "pause", "resume", "remove", "history"};
    for (size_t i = 0; i < 6; i++) {
        cli_out r = run_cli(cmd_task, &cfg, verbs[i], "nope", NULL);
        assert_int_equal(r.rc, 1);
        assert_string_equal(r.err, "pgreviewer: task \"nope\" not found (known: alpha, beta)\n");
        assert_string_equal(r.out, "");
        cli_free(&r);
    }
    cli_out r = run_cli(cmd_task, &cfg, "remove", "alpha", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "pgreviewer: task \"alpha\" is defined in the configuration: "
                               "remove it from the YAML file and reload (its history is kept)\n");
    cli_free(&r);
    tu_config_clear(&cfg);
}

static void test_cli_task_show(void **state)
{
    pgr_config cfg;
    setup_cfg(&cfg);
    cli_out r = run_cli(cmd_task, &cfg, "show", "alpha", NULL);
    assert_int_equal(r.rc, 0);
    static const char *const lines[] = {
        "name:         alpha\n",
        "type:         log_analysis\n",
        "connection:   prod-main\n",
        "schedule:     0 2 * * * (UTC)\n",
        "state:        active\n",
        "owner:        config\n",
        "priority:     5\n",
        "timeout:      5m\n",
        "concurrency:  forbid\n",
        "misfire:      run_once (grace 1h)\n",
        "retry:        3 attempts, initial 30s, x2, max delay 10m, jitter full\n",
        "params:       {\"source\": \"server\"}\n",
        "last run:     -\n",
        "recent executions: none\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        if (!strstr(r.out, lines[i]))
            fail_msg("missing line %s in:\n%s", lines[i], r.out);
    cli_free(&r);
    tu_config_clear(&cfg);
}

static void test_cli_trigger_and_execution_show(void **state)
{
    char err[512];
    pgr_config cfg;
    setup_cfg(&cfg);
    cli_out r = run_cli(cmd_task, &cfg, "trigger", "alpha", "--params", "{\"limit\": 5}", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    char *end;
    long long id = strtoll(r.out, &end, 10);
    assert_true(id > 0);
    assert_string_equal(end, "\n");
    cli_free(&r);
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", id);
    r = run_cli(cmd_execution, &cfg, "show", ids, NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "task:         alpha (log_analysis)\n"));
    assert_non_null(strstr(r.out, "status:       pending\n"));
    assert_non_null(strstr(r.out, "trigger:      manual\n"));
    assert_non_null(strstr(r.out, "params:       {\"limit\": 5, \"source\": \"server\"}\n"));
    assert_non_null(strstr(r.out, "attempts: none\n"));
    assert_non_null(strstr(r.out, "result: none\n"));
    cli_free(&r);
    r = run_cli(cmd_task, &cfg, "trigger", "alpha", "--params", "[]", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "pgreviewer: --params: must be a JSON object such as "
                               "{\"key\": \"value\"}\n");
    cli_free(&r);
    /* Run it through the lifecycle API, as a worker would. */
    store *s = tu_open(cfg.store.url);
    store_start st = {id, "worker-1", 321};
    store_start_info info;
    assert_int_equal(store_exec_start(s, &st, 1, &info, err, sizeof err), 0);
    store_start_info_clear(&info);
    store_finish f = {.execution_id = id, .status = STORE_COMPLETED,
                      .result_json = "{\"findings\": 2}"};
    assert_int_equal(store_exec_finish(s, &f, err, sizeof err), STORE_FINISH_OK);
    store_close(s);
    r = run_cli(cmd_execution, &cfg, "show", ids, NULL);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "status:       completed\n"));
    assert_non_null(strstr(r.out, "attempt:      1 of 3\n"));
    assert_non_null(strstr(r.out, "worker:       worker-1\n"));
    assert_non_null(strstr(r.out, "attempts:\n  #  WORKER    PID  STARTED"));
    assert_non_null(strstr(r.out, "  1  worker-1  321  "));
    assert_non_null(strstr(r.out, "  success  -\n"));
    assert_non_null(strstr(r.out, "result: {\"findings\": 2}\n"));
    cli_free(&r);
    r = run_cli(cmd_execution, &cfg, "show", ids, "--json", NULL);
    assert_int_equal(r.rc, 0);
    json_t *j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "completed");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "result"), "findings")),
                     2);
    json_t *a0 = json_array_get(json_object_get(j, "attempts"), 0);
    assert_string_equal(json_string_value(json_object_get(a0, "outcome")), "success");
    assert_int_equal(json_integer_value(json_object_get(a0, "worker_pid")), 321);
    assert_non_null(strstr(json_string_value(json_object_get(j, "completed_at")), "Z"));
    json_decref(j);
    cli_free(&r);
    r = run_cli(cmd_execution, &cfg, "show", "999999", NULL);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.err, "pgreviewer: execution 999999 not found\n");
    cli_free(&r);
    r = run_cli(cmd_task, &cfg, "trigger", "beta", "--json", NULL);
    assert_int_equal(r.rc, 0);
    j = json_loads(r.out, 0, NULL);
    assert_true(json_integer_value(json_object_get(j, "execution_id")) == id + 1);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "pending");
    json_decref(j);
    cli_free(&r);
    tu_config_clear(&cfg);
}

static void test_cli_history(void **state)
{
    char err[512];
    pgr_config cfg;
    setup_cfg(&cfg);
    cli_out r = run_cli(cmd_task, &cfg, "history", "beta", NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "task \"beta\" has no executions yet\n");
    cli_free(&r);
    store *s = tu_open(cfg.store.url);
    int64_t tid = tu_ll(s, "SELECT id FROM scheduled_tasks WHERE name = 'beta'"), ids[3];
    for (int i = 0; i < 3; i++) {
        bool c;
        /* 2026-11-22T10:00:00Z + i minutes */
        assert_int_equal(store_fire(s, tid, 1795341600000LL + i * 60000LL, STORE_QUEUED, 0,
                                    &ids[i], &c, err, sizeof err),
                         0);
    }
    store_start st = {ids[0], "w", 1};
    store_start_info info;
    assert_int_equal(store_exec_start(s, &st, 1, &info, err, sizeof err), 0);
    store_start_info_clear(&info);
    store_finish f = {.execution_id = ids[0], .status = STORE_FAILED, .error = "relation \"x\" "
                                                                               "does not exist"};
    assert_int_equal(store_exec_finish(s, &f, err, sizeof err), STORE_FINISH_OK);
    assert_int_equal(store_fire_skipped(s, tid, 1795341600000LL + 3 * 60000LL,
                                        "previous execution still running", NULL, NULL, err,
                                        sizeof err),
                     0);
    store_close(s);
    r = run_cli(cmd_task, &cfg, "history", "beta", "--limit", "3", NULL);
    assert_int_equal(r.rc, 0);
    char *line2 = strchr(r.out, '\n');
    assert_non_null(line2);
    *line2 = '\0';
    assert_string_equal(r.out, "ID  STATUS   TRIGGER   SCHEDULED FOR         STARTED  DURATION  "
                               "ATTEMPT  ERROR");
    /* newest first: the skipped fire, then the two queued ones */
    char *rest = line2 + 1;
    assert_true(strncmp(rest, "4   skipped  schedule  2026-11-22T10:03:00Z  -        -         0/3  ",
                        69) == 0);
    assert_non_null(strstr(rest, "0/3      previous execution still running\n"));
    assert_null(strstr(rest, "\n1   ")); /* limited to 3 */
    cli_free(&r);
    r = run_cli(cmd_task, &cfg, "history", "beta", "--json", NULL);
    json_t *j = json_loads(r.out, 0, NULL);
    assert_int_equal(json_array_size(j), 4);
    json_t *oldest = json_array_get(j, 3);
    assert_string_equal(json_string_value(json_object_get(oldest, "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(oldest, "error")),
                        "relation \"x\" does not exist");
    assert_string_equal(json_string_value(json_object_get(oldest, "scheduled_for")),
                        "2026-11-22T10:00:00.000Z");
    json_decref(j);
    cli_free(&r);
    tu_config_clear(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_no_store),
        cmocka_unit_test(test_cli_usage),
        cmocka_unit_test(test_cli_db_migrate),
        cmocka_unit_test(test_cli_task_list),
        cmocka_unit_test(test_cli_unknown_task),
        cmocka_unit_test(test_cli_task_show),
        cmocka_unit_test(test_cli_trigger_and_execution_show),
        cmocka_unit_test(test_cli_history),
    };
    return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
