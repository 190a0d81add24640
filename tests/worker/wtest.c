/*
 * wtest.c - see wtest.h.
 */
#include "wtest.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

testpg g_pg;
testredis g_rd;
static int case_no;

/* Workers started and not yet reaped: a failed assertion leaves its case
 * without wt_done(), so the next case and the teardown kill them. */
static pid_t live[64];
static int n_live;

static void forget(pid_t pid)
{
    for (int i = 0; i < n_live; i++)
        if (live[i] == pid)
            live[i] = live[--n_live];
}

static void reap_all(void)
{
    while (n_live > 0) {
        pid_t pid = live[--n_live];
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}
const char *wt_log_level = "info";

int wt_group_setup(void **state)
{
    (void)state;
    static const char *const conf[] = {"appendonly yes", "appendfsync everysec", NULL};
    if (testpg_start(&g_pg) != 0 || testredis_start(&g_rd, conf) != 0)
        return -1;
    return 0;
}

int wt_group_teardown(void **state)
{
    (void)state;
    reap_all();
    testredis_stop(&g_rd);
    testpg_stop(&g_pg);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        fail_msg("cannot write %s", path);
    fputs(text, fp);
    fclose(fp);
}

void wt_init(wfx *f, const char *workers_yaml, const char *defaults_yaml, const char *tasks_yaml)
{
    reap_all();
    memset(f, 0, sizeof *f);
    case_no++;
    snprintf(f->dir, sizeof f->dir, "/tmp/pgr-worker-XXXXXX");
    if (!mkdtemp(f->dir))
        fail_msg("mkdtemp");
    char sql[128], db[32];
    snprintf(db, sizeof db, "w%d_%d", (int)getpid(), case_no);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    if (testpg_exec(&g_pg, sql) != 0)
        fail_msg("creating database %s", db);
    testpg_conninfo_db(&g_pg, db, f->conninfo, sizeof f->conninfo);
    snprintf(f->url, sizeof f->url, "redis://127.0.0.1:%d/0", g_rd.port);
    snprintf(f->prefix, sizeof f->prefix, "wt%d_%d", (int)getpid(), case_no);
    snprintf(f->config, sizeof f->config, "%s/pgreviewer.yaml", f->dir);
    char *yaml = xasprintf("store: {url: \"%s\"}\n"
                           "queue: {url: \"%s\", prefix: %s}\n"
                           "workers: %s\n"
                           "defaults: %s\n"
                           "logging: {level: %s, format: text}\n"
                           "tasks:\n%s",
                           f->conninfo, f->url, f->prefix, workers_yaml, defaults_yaml,
                           wt_log_level, tasks_yaml);
    write_file(f->config, yaml);
    free(yaml);
    char *out = NULL;
    if (wt_cli(f, &out, "task list") != 0)
        fail_msg("task list (migrate + sync) failed: %s", out);
    free(out);
    char err[512];
    f->s = store_open(f->conninfo, err, sizeof err);
    if (!f->s)
        fail_msg("store_open: %s", err);
    f->q = queue_open(f->url, f->prefix, err, sizeof err);
    if (!f->q)
        fail_msg("queue_open: %s", err);
}

void wt_done(wfx *f)
{
    if (f->pid > 0) {
        kill(-f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
        forget(f->pid);
    }
    store_close(f->s);
    queue_close(f->q);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    run_capture(cmd, NULL);
}

static PGresult *q_exec(wfx *f, const char *fmt, va_list ap)
{
    char *sql = NULL;
    if (vasprintf(&sql, fmt, ap) < 0)
        abort();
    PGresult *r = PQexec(store_conn(f->s), sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("SQL failed: %s: %s", sql, PQerrorMessage(store_conn(f->s)));
    free(sql);
    return r;
}

long long wt_ll(wfx *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *r = q_exec(f, fmt, ap);
    va_end(ap);
    long long v = PQntuples(r) && !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return v;
}

char *wt_text(wfx *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *r = q_exec(f, fmt, ap);
    va_end(ap);
    char *v = PQntuples(r) && !PQgetisnull(r, 0, 0) ? xstrdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return v;
}

typedef struct sqlwait {
    wfx *f;
    const char *sql;
    long long want;
} sqlwait;

static bool sql_reached(void *arg)
{
    sqlwait *w = arg;
    return wt_ll(w->f, "%s", w->sql) >= w->want;
}

bool wt_wait_sql(wfx *f, long long want, int64_t ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = NULL;
    if (vasprintf(&sql, fmt, ap) < 0)
        abort();
    va_end(ap);
    sqlwait w = {f, sql, want};
    bool ok = wait_until(sql_reached, &w, ms);
    free(sql);
    return ok;
}

int64_t *wt_execs(wfx *f, const char *task, int n)
{
    char *sql = xasprintf(
        "INSERT INTO task_executions (scheduled_task_id, task_name, task_type, connection_id, "
        " status, trigger, priority, max_attempts, parameters, queued_at) "
        "SELECT t.id, t.name, t.task_type, t.connection_id, 'queued', 'manual', t.priority, "
        " greatest(coalesce((t.retry_policy->>'max_attempts')::int, 1), 1), t.task_params, now() "
        "FROM scheduled_tasks t, generate_series(1, %d) WHERE t.name = '%s' RETURNING id",
        n, task);
    PGresult *r = PQexec(store_conn(f->s), sql);
    free(sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != n)
        fail_msg("creating %d executions of %s: %s", n, task, PQerrorMessage(store_conn(f->s)));
    int64_t *ids = xcalloc((size_t)n, sizeof *ids);
    for (int i = 0; i < n; i++)
        ids[i] = atoll(PQgetvalue(r, i, 0));
    PQclear(r);
    return ids;
}

void wt_enqueue(wfx *f, const int64_t *ids, int n, int prio)
{
    queue_item *items = xcalloc((size_t)n, sizeof *items);
    for (int i = 0; i < n; i++)
        items[i] = (queue_item){ids[i], prio, 1, NULL};
    char err[512];
    if (queue_enqueue(f->q, items, (size_t)n, err, sizeof err) != 0)
        fail_msg("enqueue: %s", err);
    free(items);
}

pid_t wt_start_worker(wfx *f, ...)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)getenv("PGR_BIN");
    argv[n++] = "--config";
    argv[n++] = f->config;
    argv[n++] = "worker";
    va_list ap;
    va_start(ap, f);
    for (char *a; n < 31 && (a = va_arg(ap, char *));)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    if (!argv[0])
        fail_msg("PGR_BIN is not set");
    char log[320];
    snprintf(log, sizeof log, "%s/worker-%d.log", f->dir, ++f->log_no);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork");
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid);
    f->pid = pid;
    if (n_live < 64)
        live[n_live++] = pid;
    return pid;
}

typedef struct exitwait {
    pid_t pid;
    int status;
    bool done;
} exitwait;

static bool exited(void *arg)
{
    exitwait *e = arg;
    if (waitpid(e->pid, &e->status, WNOHANG) == e->pid)
        e->done = true;
    return e->done;
}

int wt_wait_exit(wfx *f, int64_t deadline_ms)
{
    exitwait e = {f->pid, 0, false};
    if (!wait_until(exited, &e, deadline_ms))
        return -1;
    forget(f->pid);
    f->pid = 0;
    return e.status;
}

char *wt_logs(wfx *f)
{
    char *out = NULL;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "cat %s/worker-*.log", f->dir);
    run_capture(cmd, &out);
    return out;
}

queue_stats wt_qstats(wfx *f)
{
    queue_stats st;
    char err[512];
    if (queue_stats_get(f->q, &st, err, sizeof err) != 0)
        fail_msg("queue stats: %s", err);
    return st;
}

int wt_cli(wfx *f, char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *args = NULL;
    if (vasprintf(&args, fmt, ap) < 0)
        abort();
    va_end(ap);
    char *cmd = xasprintf("'%s' --config '%s' %s", getenv("PGR_BIN"), f->config, args);
    int rc = run_capture(cmd, out);
    free(cmd);
    free(args);
    return rc;
}

typedef struct logwait {
    wfx *f;
    const char *text;
} logwait;

static bool log_has(void *arg)
{
    logwait *l = arg;
    char *logs = wt_logs(l->f);
    bool yes = logs && strstr(logs, l->text);
    free(logs);
    return yes;
}

bool wt_wait_log(wfx *f, const char *text, int64_t ms)
{
    logwait l = {f, text};
    return wait_until(log_has, &l, ms);
}
