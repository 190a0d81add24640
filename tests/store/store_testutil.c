/*
 * store_testutil.c - see store_testutil.h.
 */
#include "store_testutil.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

testpg g_pg;
static int db_counter;
static bool have_template;

int tu_group_setup(void **state)
{
    (void)state;
    return testpg_start(&g_pg);
}

int tu_group_teardown(void **state)
{
    (void)state;
    testpg_stop(&g_pg);
    return 0;
}

static void make_template(void)
{
    char err[512], buf[600];
    if (testpg_exec(&g_pg, "CREATE DATABASE tu_template") != 0)
        fail_msg("creating the template database");
    store *s = store_open(testpg_conninfo_db(&g_pg, "tu_template", buf, sizeof buf), err,
                          sizeof err);
    if (!s || store_migrate(s, err, sizeof err) < 0)
        fail_msg("migrating the template: %s", err);
    store_close(s);
    have_template = true;
}

const char *tu_fresh_db(bool migrated)
{
    static char conninfo[600];
    char sql[200], name[64];
    if (migrated && !have_template)
        make_template();
    snprintf(name, sizeof name, "t%d_%d", (int)getpid(), ++db_counter);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s TEMPLATE %s", name,
             migrated ? "tu_template" : "template0");
    if (testpg_exec(&g_pg, sql) != 0)
        fail_msg("%s failed", sql);
    return testpg_conninfo_db(&g_pg, name, conninfo, sizeof conninfo);
}

store *tu_open(const char *conninfo)
{
    char err[512];
    store *s = store_open(conninfo, err, sizeof err);
    if (!s)
        fail_msg("store_open: %s", err);
    return s;
}

static PGresult *query(store *s, const char *fmt, va_list ap)
{
    char *sql = NULL;
    if (vasprintf(&sql, fmt, ap) < 0)
        abort();
    PGresult *r = PQexec(store_conn(s), sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        fail_msg("SQL failed: %s\n%s", sql, PQerrorMessage(store_conn(s)));
    free(sql);
    return r;
}

long long tu_ll(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *r = query(s, fmt, ap);
    va_end(ap);
    if (PQntuples(r) < 1)
        fail_msg("no row");
    long long v = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

char *tu_text(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *r = query(s, fmt, ap);
    va_end(ap);
    char *v = PQntuples(r) < 1 || PQgetisnull(r, 0, 0) ? NULL : xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

void tu_exec(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PQclear(query(s, fmt, ap));
    va_end(ap);
}

void tu_task(cfg_task *t, const char *name, const char *type, const char *schedule,
             const char *params_json)
{
    memset(t, 0, sizeof *t);
    t->name = xstrdup(name);
    t->type = xstrdup(type);
    t->connection = xstrdup("prod-main");
    t->schedule = xstrdup(schedule);
    t->timezone = xstrdup("UTC");
    t->priority = 5;
    t->timeout_ms = 300000;
    t->concurrency = CONC_FORBID;
    t->misfire = MISFIRE_RUN_ONCE;
    t->misfire_grace_ms = 3600000;
    t->misfire_max_runs = 10;
    t->enabled = true;
    t->retry = (cfg_retry){.max_attempts = 3, .initial_ms = 30000, .multiplier = 2,
                           .max_delay_ms = 600000, .jitter = JITTER_FULL};
    t->params = json_loads(params_json ? params_json : "{}", 0, NULL);
    if (!t->params)
        fail_msg("bad params JSON in test");
}

void tu_task_clear(cfg_task *t)
{
    free(t->name);
    free(t->type);
    free(t->connection);
    free(t->schedule);
    free(t->timezone);
    free(t->description);
    json_decref(t->params);
    memset(t, 0, sizeof *t);
}

void tu_config(pgr_config *cfg, const char *url, cfg_task *tasks, size_t n)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->path = xstrdup("/etc/pgreviewer/test.yaml");
    cfg->store.url = xstrdup(url);
    cfg->store.retention_ms = 30LL * 86400000;
    cfg->defaults.timezone = xstrdup("UTC");
    cfg->tasks = xcalloc(n ? n : 1, sizeof *cfg->tasks);
    cfg->n_tasks = n;
    for (size_t i = 0; i < n; i++)
        cfg->tasks[i] = tasks[i];
    cfg->connections = xcalloc(1, sizeof *cfg->connections);
    cfg->n_connections = 1;
    cfg->connections[0].id = xstrdup("prod-main");
    cfg->connections[0].host = xstrdup("db1.internal");
    cfg->connections[0].port = 5432;
    cfg->connections[0].credentials = CRED_VAULT;
}

void tu_config_clear(pgr_config *cfg)
{
    for (size_t i = 0; i < cfg->n_tasks; i++)
        tu_task_clear(&cfg->tasks[i]);
    free(cfg->tasks);
    free(cfg->connections[0].id);
    free(cfg->connections[0].host);
    free(cfg->connections);
    free(cfg->path);
    free(cfg->store.url);
    free(cfg->defaults.timezone);
    memset(cfg, 0, sizeof *cfg);
}
