/*
 * test_daemon.c - `pgreviewer run`, the single-host daemon, through the
 * real binary with a real store: scheduled and manual tasks run and it
 * stops cleanly on SIGTERM (exit 0); killed with -9 (the whole process
 * tree) in the middle of a task, the next start recovers that execution and
 * it finishes with exactly one stored result; SIGHUP reloads the
 * configuration and a task added to it starts firing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testenv.h"

static testpg pg;
static char dir[64], cfg_path[128], store_ci[700];
static int db_seq, api_port;
static pid_t daemon_pid;

static long sql_long(const char *q)
{
    PGconn *c = PQconnectdb(store_ci);
    PGresult *r = PQexec(c, q);
    long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) ? strtol(PQgetvalue(r, 0, 0), NULL, 10)
                                                                   : -1;
    PQclear(r);
    PQfinish(c);
    return v;
}

static const char *cond_sql;
static long cond_min;
static bool cond(void *arg)
{
    (void)arg;
    return sql_long(cond_sql) >= cond_min;
}

static void wait_sql(const char *q, long n, int64_t ms)
{
    cond_sql = q;
    cond_min = n;
    if (!wait_until(cond, NULL, ms))
        fail_msg("waited %lld ms for \"%s\" >= %ld; it is %ld", (long long)ms, q, n, sql_long(q));
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

static void write_config(const char *tasks)
{
    FILE *f = fopen(cfg_path, "w");
    fprintf(f,
            "store: {url: \"%s\"}\n"
            "api: {listen: \"127.0.0.1:%d\"}\n"
            "logging: {level: info, format: json}\n"
            "workers: {processes: 2, shutdown_grace: 10s}\n"
            "defaults: {retry: {max_attempts: 3, initial: 100ms, max_delay: 200ms}}\n"
            "tasks:\n%s",
            store_ci, api_port, tasks);
    fclose(f);
}

static void new_store(void)
{
    char q[64], db[32];
    snprintf(db, sizeof db, "daemon_%d", ++db_seq);
    snprintf(q, sizeof q, "CREATE DATABASE %s", db);
    assert_int_equal(testpg_exec(&pg, q), 0);
    testpg_conninfo_db(&pg, db, store_ci, sizeof store_ci);
    api_port = free_port();
}

static void start_daemon(void)
{
    char log[128];
    snprintf(log, sizeof log, "%s/daemon-%d.log", dir, db_seq);
    daemon_pid = fork();
    if (daemon_pid == 0) {
        setpgid(0, 0);
        freopen(log, "a", stderr);
        freopen("/dev/null", "w", stdout);
        execl(getenv("PGR_BIN"), "pgreviewer", "--config", cfg_path, "run", (char *)NULL);
        _exit(127);
    }
}

/* SIGTERM and wait (bounded); returns the exit status, -1 when it had to
 * be killed. */
static int stop_daemon(void)
{
    kill(daemon_pid, SIGTERM);
    for (int i = 0; i < 3000; i++) { /* up to 30 s: the shutdown grace is 10 s */
        int st;
        if (waitpid(daemon_pid, &st, WNOHANG) == daemon_pid) {
            daemon_pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        struct timespec d = {0, 10 * 1000000};
        nanosleep(&d, NULL);
    }
    kill(-daemon_pid, SIGKILL);
    waitpid(daemon_pid, NULL, 0);
    daemon_pid = 0;
    return -1;
}

static void test_runs_and_stops(void **state)
{
    (void)state;
    new_store();
    write_config("  - {name: tick, type: example, schedule: \"* * * * * *\", concurrency: allow}\n"
                 "  - {name: manual, type: example, params: {mode: flaky, succeed_on: 2}}\n"
                 "  - {name: daily, type: report, connection: store}\n");
    start_daemon();
    wait_sql("SELECT count(*) FROM task_executions WHERE task_name = 'tick' AND "
             "status = 'completed'",
             3, 20000);
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --config %s task trigger manual", getenv("PGR_BIN"), cfg_path);
    assert_int_equal(run_capture(cmd, &out), 0);
    free(out);
    /* flaky: the first attempt asks for a retry, the second succeeds. */
    wait_sql("SELECT count(*) FROM task_executions WHERE task_name = 'manual' AND "
             "status = 'completed' AND attempt = 2",
             1, 20000);
    /* A report task's result is also stored as one row per format. */
    snprintf(cmd, sizeof cmd, "%s --config %s task trigger daily", getenv("PGR_BIN"), cfg_path);
    assert_int_equal(run_capture(cmd, &out), 0);
    free(out);
    wait_sql("SELECT count(*) FROM reports r JOIN task_executions e ON e.id = r.execution_id "
             "WHERE e.task_name = 'daily'",
             3, 20000);
    snprintf(cmd, sizeof cmd, "curl -s http://127.0.0.1:%d/metrics", api_port);
    assert_int_equal(run_capture(cmd, &out), 0);
    assert_non_null(strstr(out, "pgreviewer_scheduler_leader 1\n"));
    assert_non_null(strstr(out, "pgreviewer_attempts_total{outcome=\"retry\"} 1\n"));
    free(out);
    assert_int_equal(stop_daemon(), 0);
    assert_int_equal(sql_long("SELECT count(*) FROM task_executions WHERE status = 'running'"), 0);
}

static void test_recovery_after_kill_9(void **state)
{
    (void)state;
    new_store();
    write_config("  - {name: slow, type: example, params: {mode: sleep, sleep_ms: 1500}}\n");
    start_daemon();
    wait_sql("SELECT count(*) FROM scheduled_tasks", 1, 20000);
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --config %s task trigger slow", getenv("PGR_BIN"), cfg_path);
    assert_int_equal(run_capture(cmd, &out), 0);
    free(out);
    wait_sql("SELECT count(*) FROM task_executions WHERE status = 'running'", 1, 20000);
    kill(-daemon_pid, SIGKILL); /* the supervisor and its executors */
    waitpid(daemon_pid, NULL, 0);
    daemon_pid = 0;
    assert_int_equal(sql_long("SELECT count(*) FROM task_executions WHERE status = 'running'"), 1);
    start_daemon();
    wait_sql("SELECT count(*) FROM task_executions WHERE status = 'completed'", 1, 30000);
    assert_int_equal(stop_daemon(), 0);
    assert_int_equal(sql_long("SELECT count(*) FROM task_executions"), 1);
    assert_int_equal(sql_long("SELECT count(*) FROM analysis_results"), 1);
    /* The lost attempt is on record, and the one that finished. */
    assert_int_equal(sql_long("SELECT count(*) FROM execution_attempts"), 2);
    assert_int_equal(
        sql_long("SELECT count(*) FROM task_executions WHERE recovered_at IS NOT NULL"), 1);
}

static void test_sighup_adds_task(void **state)
{
    (void)state;
    new_store();
    write_config("  - {name: first, type: example}\n");
    start_daemon();
    wait_sql("SELECT count(*) FROM scheduled_tasks", 1, 20000);
    write_config("  - {name: first, type: example}\n"
                 "  - {name: second, type: example, schedule: \"* * * * * *\"}\n");
    kill(daemon_pid, SIGHUP);
    wait_sql("SELECT count(*) FROM task_executions WHERE task_name = 'second' AND "
             "status = 'completed'",
             2, 20000);
    assert_int_equal(stop_daemon(), 0);
}

/* Retention: `db prune` keeps the newest retention_per_task finished
 * executions of each task (the daemon runs the same every hour). */
static void test_db_prune(void **state)
{
    (void)state;
    new_store();
    write_config("  - {name: once, type: example}\n");
    char cmd[512], *out = NULL;
    for (int i = 0; i < 4; i++) {
        snprintf(cmd, sizeof cmd, "%s --config %s run --once", getenv("PGR_BIN"), cfg_path);
        assert_int_equal(run_capture(cmd, &out), 0);
        free(out);
    }
    assert_int_equal(sql_long("SELECT count(*) FROM task_executions"), 4);
    /* The same store with a retention of two runs per task. */
    char *text = NULL;
    snprintf(cmd, sizeof cmd, "sed -i 's/^store: {url: \\(.*\\)}$/store: {url: \\1, retention_per_task: 2}/' %s && grep '^store' %s",
             cfg_path, cfg_path);
    assert_int_equal(run_capture(cmd, &text), 0);
    assert_non_null(strstr(text, "retention_per_task: 2"));
    free(text);
    snprintf(cmd, sizeof cmd, "%s --config %s db prune", getenv("PGR_BIN"), cfg_path);
    assert_int_equal(run_capture(cmd, &out), 0);
    assert_true(strncmp(out, "pruned 2 execution(s) and 0 orphaned result(s) in ", 50) == 0);
    free(out);
    assert_int_equal(sql_long("SELECT count(*) FROM task_executions"), 2);
    assert_int_equal(sql_long("SELECT count(*) FROM analysis_results"), 2);
    /* The two kept are the newest. */
    assert_int_equal(sql_long("SELECT min(id) FROM task_executions"), 3);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pgr-daemon-XXXXXX");
    if (!mkdtemp(dir) || testpg_start(&pg) < 0)
        return -1;
    snprintf(cfg_path, sizeof cfg_path, "%s/pgreviewer.yaml", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (daemon_pid > 0) {
        kill(-daemon_pid, SIGKILL);
        waitpid(daemon_pid, NULL, 0);
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cat %s/daemon-*.log | tail -30 >&2; rm -rf %s", dir, dir);
    (void)system(cmd);
    testpg_stop(&pg);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_and_stops),
        cmocka_unit_test(test_recovery_after_kill_9),
        cmocka_unit_test(test_sighup_adds_task),
        cmocka_unit_test(test_db_prune),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
