/*
 * test_daemon.c - `pgreviewer run`, the single-host daemon, through the
 * real binary with a real store: scheduled and manual tasks run and it
 * stops cleanly on SIGTERM (exit 0); killed with -9 (the whole process
 * tree) in the middle of a task, the next start recovers that execution and
 * it finishes with exactly one stored result; SIGHUP reloads the
 * configuration and a task added to it starts firing; its executors can
 * take SIGTERM (the timeout's cancellation), which the daemon blocks in
 * its own threads.
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
static const char *workers_extra = ""; /* more keys for workers: */
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
            "workers: {processes: 2, shutdown_grace: 10s%s}\n"
            "defaults: {retry: {max_attempts: 3, initial: 100ms, max_delay: 200ms}}\n"
            "tasks:\n%s",
            store_ci, api_port, workers_extra, tasks);
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

/* The SigBlk mask of process `pid` from /proc, or ~0 when unreadable. */
static unsigned long long sig_blocked(pid_t pid)
{
    char path[64], line[256];
    unsigned long long mask = ~0ULL;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return mask;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "SigBlk: %llx", &mask) == 1)
            break;
    fclose(f);
    return mask;
}

static bool has_children(void *arg)
{
    char path[64], buf[256] = "";
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)daemon_pid, (int)daemon_pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            buf[0] = '\0';
        fclose(f);
    }
    snprintf(arg, 256, "%s", buf);
    return buf[0] != '\0';
}

/* The daemon blocks the stop signals while it starts its threads; the
 * executors it forks must not inherit that mask, or a task's timeout
 * (SIGTERM: cancel the query, let the plugin see cancelled()) only ever
 * ends in SIGKILL after the grace period. */
static void test_executors_take_sigterm(void **state)
{
    (void)state;
    new_store();
    write_config("  - {name: tick, type: example, schedule: \"* * * * * *\"}\n");
    start_daemon();
    wait_sql("SELECT count(*) FROM task_executions WHERE status = 'completed'", 1, 20000);
    char pids[256];
    if (!wait_until(has_children, pids, 10000))
        fail_msg("the daemon has no executor process");
    int n = 0;
    for (char *p = pids, *end; *p; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        unsigned long long blk = sig_blocked((pid_t)pid);
        if (blk & (1ULL << (SIGTERM - 1)))
            fail_msg("executor %ld has SIGTERM blocked (SigBlk %llx)", pid, blk);
        n++;
    }
    assert_true(n >= 2);
    assert_int_equal(stop_daemon(), 0);
}

/* Every descriptor of process `pid` from 3 up: how many, and how many of
 * them are sockets. */
static void count_fds(pid_t pid, int *n, int *sockets)
{
    char path[64], cmd[256], *out = NULL;
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    snprintf(cmd, sizeof cmd, "ls -l %s 2>/dev/null | awk '$9 >= 3 {print $11}'", path);
    run_capture(cmd, &out);
    *n = *sockets = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        (*n)++;
        *sockets += strncmp(line, "socket:", 7) == 0;
    }
    free(out);
}

/* An executor started while the daemon runs (here: recycled after every
 * task) holds its own socket to the supervisor and nothing else of the
 * supervisor's: not the store and queue connections, the leader session,
 * the API's listening socket or the worker's eventfd. */
static void test_executors_inherit_no_descriptors(void **state)
{
    (void)state;
    new_store();
    workers_extra = ", max_tasks_per_process: 1";
    write_config("  - {name: tick, type: example, schedule: \"* * * * * *\"}\n");
    workers_extra = "";
    start_daemon();
    wait_sql("SELECT count(*) FROM task_executions WHERE status = 'completed'", 3, 20000);
    char pids[256], fd_dir[64];
    int checked = 0;
    for (int round = 0; round < 50 && checked < 2; round++) {
        if (!wait_until(has_children, pids, 10000))
            fail_msg("the daemon has no executor process");
        for (char *p = pids, *end; *p; p = end) {
            long pid = strtol(p, &end, 10);
            if (end == p)
                break;
            int n, sockets;
            count_fds((pid_t)pid, &n, &sockets);
            snprintf(fd_dir, sizeof fd_dir, "/proc/%ld/fd", pid);
            if (access(fd_dir, F_OK) != 0)
                continue; /* recycled while we looked */
            checked++;
            if (n == 1 && sockets == 1)
                continue;
            char cmd[128];
            snprintf(cmd, sizeof cmd, "ls -l /proc/%ld/fd >&2", pid);
            (void)system(cmd);
            fail_msg("executor %ld has %d descriptors from 3 up (%d sockets); expected its one "
                     "socket to the supervisor", pid, n, sockets);
        }
    }
    assert_true(checked >= 2);
    assert_int_equal(stop_daemon(), 0);
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
        cmocka_unit_test(test_executors_take_sigterm),
        cmocka_unit_test(test_executors_inherit_no_descriptors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
