/*
 * store.c - the analytics store (see store.h for the API, docs/store.md for
 * the schema and the lifecycle).
 *
 * Why the SQL looks the way it does:
 *   - Batches (start, finish, task sync) are sent as ONE statement whose
 *     input is a JSON array read with jsonb_to_recordset: one round trip and
 *     one commit however many items, which is what lets the worker record
 *     tens of thousands of executions a second.
 *   - Idempotence comes from the database, not from the caller's memory:
 *     the fire key is a UNIQUE constraint (INSERT ... ON CONFLICT DO
 *     NOTHING); a finish locks its execution rows (FOR UPDATE, in id order
 *     so two batches cannot deadlock) and touches only those not yet
 *     finished, and the result insert has ON CONFLICT (execution_id) DO
 *     NOTHING as a second fence; recovery is a single UPDATE ... RETURNING
 *     over rows taken FOR UPDATE (see recover_sql).
 *   - Times cross the API as epoch milliseconds; the SQL converts with the
 *     MS() and TS() fragments below, exact to the millisecond.
 */
#include "store.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_migrations.h"
#include "util.h"

/* The advisory lock key of migrations: "pgreview" in ASCII. */
#define MIGRATE_LOCK_KEY "8099568234953008503"

/* SQL fragments: a timestamptz column as epoch ms (0 for NULL), and a
 * bigint parameter of epoch ms as a timestamptz. */
#define MS(col) "coalesce((extract(epoch FROM " col ") * 1000)::bigint, 0)"
#define TS(p) "('epoch'::timestamptz + (" p ")::bigint * interval '1 millisecond')"
#define TERMINAL "('completed','failed','cancelled','skipped')"
#define UNFINISHED "('pending','queued','scheduled','running')"

enum { PREP_START, PREP_FINISH, PREP_STATES, N_PREPARED };
#define MAX_CHANNELS 8

struct store {
    PGconn *conn;
    char *channels[MAX_CHANNELS]; /* LISTENed, re-issued after a reconnect */
    int n_channels;
    bool prepared[N_PREPARED]; /* hot statements prepared on this connection */
};

static const char *const status_names[] = {
    "pending", "queued", "scheduled", "running", "completed", "failed", "cancelled", "skipped",
};

const char *store_status_name(store_status st)
{
    if ((unsigned)st >= sizeof status_names / sizeof status_names[0])
        return "unknown";
    return status_names[st];
}

int store_status_parse(const char *name, store_status *out)
{
    for (size_t i = 0; name && i < sizeof status_names / sizeof status_names[0]; i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *out = (store_status)i;
            return 0;
        }
    }
    return -1;
}

bool store_status_terminal(store_status st)
{
    return st == STORE_COMPLETED || st == STORE_FAILED || st == STORE_CANCELLED ||
           st == STORE_SKIPPED;
}

/* ---- libpq helpers -------------------------------------------------------- */

/* libpq's message without its trailing newline, prefixed by what we did. */
static int pq_err(store *s, const char *what, char *err, size_t errlen)
{
    const char *m = PQerrorMessage(s->conn);
    size_t n = strlen(m);
    while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    return set_err(err, errlen, "store: %s: %.*s", what, (int)n, m);
}

/* Run `sql` with text params. Returns the result (caller PQclear()s) when
 * it completed as a command or returned rows, or NULL with err filled. */
static int relisten(store *s);

/* A connection found broken (server restart, network) is reset before the
 * next statement: the call that discovered the loss failed with its error,
 * the next one runs on a new connection. Nothing is retried behind the
 * caller's back (a statement may have committed before the loss). Returns
 * 0, or -1 when the server is still unreachable. */
static int ensure_connected(store *s, char *err, size_t errlen)
{
    if (PQstatus(s->conn) == CONNECTION_OK)
        return 0;
    PQreset(s->conn);
    memset(s->prepared, 0, sizeof s->prepared); /* a new session has none */
    if (PQstatus(s->conn) != CONNECTION_OK) {
        const char *m = PQerrorMessage(s->conn);
        size_t n = strlen(m);
        while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
            n--;
        return set_err(err, errlen, "store: connection lost, reconnecting failed: %.*s", (int)n,
                       m);
    }
    return relisten(s);
}

static PGresult *run(store *s, const char *what, const char *sql, int np, const char *const *pv,
                     char *err, size_t errlen)
{
    if (ensure_connected(s, err, errlen) < 0)
        return NULL;
    PGresult *r = PQexecParams(s->conn, sql, np, NULL, pv, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    pq_err(s, what, err, errlen);
    PQclear(r);
    return NULL;
}

/* Like run(), for the worker's hot statements: prepared (planned) once
 * per connection, as statement "pgr_hot_N" (planning a large CTE costs more
 * than running it for a small batch). */
static PGresult *run_hot(store *s, int slot, const char *what, const char *sql, int np,
                         const char *const *pv, char *err, size_t errlen)
{
    char name[24];
    snprintf(name, sizeof name, "pgr_hot_%d", slot);
    if (ensure_connected(s, err, errlen) < 0)
        return NULL;
    if (!s->prepared[slot]) {
        PGresult *p = PQprepare(s->conn, name, sql, np, NULL);
        bool ok = PQresultStatus(p) == PGRES_COMMAND_OK;
        PQclear(p);
        if (!ok) {
            pq_err(s, what, err, errlen);
            return NULL;
        }
        s->prepared[slot] = true;
    }
    PGresult *r = PQexecPrepared(s->conn, name, np, pv, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    pq_err(s, what, err, errlen);
    PQclear(r);
    if (PQstatus(s->conn) != CONNECTION_OK)
        memset(s->prepared, 0, sizeof s->prepared);
    return NULL;
}

/* Run a statement whose result we do not need. Returns 0 or -1. */
static int run0(store *s, const char *what, const char *sql, int np, const char *const *pv,
                char *err, size_t errlen)
{
    PGresult *r = run(s, what, sql, np, pv, err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

static int begin(store *s, char *err, size_t errlen)
{
    return run0(s, "BEGIN", "BEGIN", 0, NULL, err, errlen);
}

static int commit(store *s, char *err, size_t errlen)
{
    return run0(s, "COMMIT", "COMMIT", 0, NULL, err, errlen);
}

/* Roll back whatever is open; keeps the caller's error message. */
static int rollback(store *s)
{
    PQclear(PQexec(s->conn, "ROLLBACK"));
    return -1;
}

static char *gstr(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

static int64_t gi64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int gint(const PGresult *r, int row, int col)
{
    return (int)gi64(r, row, col);
}

static bool gbool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

static void i64s(char *buf, size_t len, int64_t v)
{
    snprintf(buf, len, "%lld", (long long)v);
}

/* ---- open, close, migrate --------------------------------------------------- */

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

store *store_open(const char *url, char *err, size_t errlen)
{
    if (!url || !*url) {
        set_err(err, errlen, "store: no URL given (set store.url)");
        return NULL;
    }
    /* connect_timeout before dbname: the URL's own value overrides it. */
    const char *keys[] = {"connect_timeout", "dbname", "fallback_application_name", NULL};
    const char *vals[] = {"10", url, "pgreviewer", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        set_err(err, errlen, "store: out of memory connecting");
        return NULL;
    }
    store *s = xcalloc(1, sizeof *s);
    s->conn = c;
    if (PQstatus(c) != CONNECTION_OK) {
        pq_err(s, "cannot connect to the store (store.url)", err, errlen);
        store_close(s);
        return NULL;
    }
    PQsetNoticeProcessor(c, quiet_notices, NULL);
    return s;
}

void store_close(store *s)
{
    if (!s)
        return;
    PQfinish(s->conn);
    for (int i = 0; i < s->n_channels; i++)
        free(s->channels[i]);
    free(s);
}

static int listen_sql(store *s, const char *channel, char *err, size_t errlen)
{
    char *q = PQescapeIdentifier(s->conn, channel, strlen(channel));
    if (!q)
        return pq_err(s, "LISTEN", err, errlen);
    char *sql = xasprintf("LISTEN %s", q);
    PQfreemem(q);
    PGresult *r = PQexec(s->conn, sql);
    free(sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok ? 0 : pq_err(s, "LISTEN", err, errlen);
}

static int relisten(store *s)
{
    for (int i = 0; i < s->n_channels; i++)
        if (listen_sql(s, s->channels[i], NULL, 0) < 0)
            return -1;
    return 0;
}

int store_listen(store *s, const char *channel, char *err, size_t errlen)
{
    for (int i = 0; i < s->n_channels; i++)
        if (strcmp(s->channels[i], channel) == 0)
            return 0;
    if (s->n_channels == MAX_CHANNELS)
        return set_err(err, errlen, "store: too many LISTEN channels (at most %d)", MAX_CHANNELS);
    if (ensure_connected(s, err, errlen) < 0 || listen_sql(s, channel, err, errlen) < 0)
        return -1;
    s->channels[s->n_channels++] = xstrdup(channel);
    return 0;
}

int store_socket(store *s)
{
    return PQsocket(s->conn);
}

int store_notification(store *s, char *channel, size_t clen, char *payload, size_t plen,
                       char *err, size_t errlen)
{
    if (ensure_connected(s, err, errlen) < 0)
        return -1;
    if (!PQconsumeInput(s->conn))
        return pq_err(s, "reading notifications", err, errlen);
    PGnotify *n = PQnotifies(s->conn);
    if (!n)
        return 0;
    snprintf(channel, clen, "%s", n->relname);
    snprintf(payload, plen, "%s", n->extra);
    PQfreemem(n);
    return 1;
}

struct pg_conn *store_conn(store *s)
{
    return s->conn;
}

int store_latest_version(void)
{
    size_t n;
    const store_migration *m = store_migrations(&n);
    return n ? m[n - 1].version : 0;
}

int store_schema_version(store *s, int *version, char *err, size_t errlen)
{
    PGresult *r = run(s, "reading the schema version",
                      "SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN -1 END", 0,
                      NULL, err, errlen);
    if (!r)
        return -1;
    bool absent = !PQgetisnull(r, 0, 0);
    PQclear(r);
    *version = 0;
    if (absent)
        return 0;
    r = run(s, "reading the schema version",
            "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, err, errlen);
    if (!r)
        return -1;
    *version = gint(r, 0, 0);
    PQclear(r);
    return 0;
}

/* Apply migration m unless recorded, in one transaction under the advisory
 * lock (which also serialises the CREATE TABLE IF NOT EXISTS: concurrent
 * ones can otherwise collide on the catalog). Returns 1 applied, 0 already
 * there, -1 error. */
static int migrate_one(store *s, const store_migration *m, char *err, size_t errlen)
{
    char v[16], what[160];
    snprintf(v, sizeof v, "%d", m->version);
    const char *pv[] = {v, m->name};
    if (begin(s, err, errlen) < 0)
        return -1;
    if (run0(s, "taking the migration lock", "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")",
             0, NULL, err, errlen) < 0 ||
        run0(s, "creating schema_migrations",
             "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
             "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
             0, NULL, err, errlen) < 0)
        return rollback(s);
    PGresult *r = run(s, "reading schema_migrations",
                      "SELECT 1 FROM schema_migrations WHERE version = $1", 1, pv, err, errlen);
    if (!r)
        return rollback(s);
    bool done = PQntuples(r) > 0;
    PQclear(r);
    if (done) {
        rollback(s);
        return 0;
    }
    snprintf(what, sizeof what, "migration %d (%s)", m->version, m->name);
    r = PQexec(s->conn, m->sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        PQclear(r);
        pq_err(s, what, err, errlen);
        return rollback(s);
    }
    PQclear(r);
    if (run0(s, what, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, pv, err,
             errlen) < 0 ||
        commit(s, err, errlen) < 0)
        return rollback(s);
    return 1;
}

int store_migrate_list(store *s, int *applied, size_t cap, char *err, size_t errlen)
{
    size_t n;
    const store_migration *m = store_migrations(&n);
    int current, count = 0;
    /* Fast path without the lock: already up to date. */
    if (store_schema_version(s, &current, err, errlen) < 0)
        return -1;
    if (current >= store_latest_version())
        return 0;
    for (size_t i = 0; i < n; i++) {
        int rc = migrate_one(s, &m[i], err, errlen);
        if (rc < 0)
            return -1;
        if (rc == 1 && applied && (size_t)count < cap)
            applied[count] = m[i].version;
        count += rc;
    }
    return count;
}

int store_migrate(store *s, char *err, size_t errlen)
{
    return store_migrate_list(s, NULL, 0, err, errlen);
}

store *store_open_config(const pgr_config *cfg, char *err, size_t errlen)
{
    if (!cfg || !cfg->store.url || !*cfg->store.url) {
        set_err(err, errlen,
                "no store configured: set store.url in the configuration "
                "(a libpq URI or key=value string, e.g. "
                "postgresql:///pgreviewer?host=/run/postgresql)");
        return NULL;
    }
    store *s = store_open(cfg->store.url, err, errlen);
    if (!s)
        return NULL;
    if (store_migrate(s, err, errlen) < 0) {
        store_close(s);
        return NULL;
    }
    return s;
}

/* ---- tasks ------------------------------------------------------------------ */

/* The columns task_from_row() reads, in its order. */
#define TASK_COLS                                                                   \
    "t.id, t.name, t.task_type, t.connection_id, t.cron_schedule, t.timezone, "     \
    "t.description, t.task_params::text, t.retry_policy::text, t.priority, "        \
    "t.timeout_ms, t.concurrency, t.misfire_policy, t.misfire_grace_ms, "           \
    "t.misfire_max_runs, t.jitter_ms, t.owner, t.paused, t.is_active, "             \
    MS("t.removed_at") ", " MS("t.created_at") ", " MS("t.updated_at") ", "         \
    MS("t.last_run_at") ", " MS("t.next_run_at") ", "                               \
    "(SELECT " MS("max(e.scheduled_for)") " FROM task_executions e "                \
    " WHERE e.scheduled_task_id = t.id)"

static cfg_jitter jitter_parse(const char *s)
{
    if (s && strcmp(s, "none") == 0)
        return JITTER_NONE;
    if (s && strcmp(s, "equal") == 0)
        return JITTER_EQUAL;
    return JITTER_FULL;
}

static const char *jitter_name(cfg_jitter j)
{
    return j == JITTER_NONE ? "none" : j == JITTER_EQUAL ? "equal" : "full";
}

static const char *concurrency_name(cfg_concurrency c)
{
    return c == CONC_ALLOW ? "allow" : c == CONC_REPLACE ? "replace" : "forbid";
}

static const char *misfire_name(cfg_misfire m)
{
    return m == MISFIRE_SKIP ? "skip" : m == MISFIRE_RUN_ALL ? "run_all" : "run_once";
}

static void retry_from_json(const char *text, cfg_retry *r)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    r->max_attempts = (int)json_integer_value(json_object_get(j, "max_attempts"));
    r->initial_ms = json_integer_value(json_object_get(j, "initial_ms"));
    r->multiplier = json_number_value(json_object_get(j, "multiplier"));
    r->max_delay_ms = json_integer_value(json_object_get(j, "max_delay_ms"));
    r->jitter = jitter_parse(json_string_value(json_object_get(j, "jitter")));
    if (r->max_attempts < 1)
        r->max_attempts = 1;
    json_decref(j);
}

static json_t *retry_to_json(const cfg_retry *r)
{
    return json_pack("{s:i, s:I, s:f, s:I, s:s}", "max_attempts",
                     r->max_attempts > 0 ? r->max_attempts : 1, "initial_ms",
                     (json_int_t)r->initial_ms, "multiplier", r->multiplier, "max_delay_ms",
                     (json_int_t)r->max_delay_ms, "jitter", jitter_name(r->jitter));
}

static void task_from_row(const PGresult *r, int i, store_task *t)
{
    memset(t, 0, sizeof *t);
    t->id = gi64(r, i, 0);
    t->name = gstr(r, i, 1);
    t->task_type = gstr(r, i, 2);
    t->connection_id = gstr(r, i, 3);
    t->cron_schedule = gstr(r, i, 4);
    t->timezone = gstr(r, i, 5);
    t->description = gstr(r, i, 6);
    t->params_json = gstr(r, i, 7);
    retry_from_json(PQgetvalue(r, i, 8), &t->retry);
    t->priority = gint(r, i, 9);
    t->timeout_ms = gi64(r, i, 10);
    const char *c = PQgetvalue(r, i, 11);
    t->concurrency = strcmp(c, "allow") == 0     ? CONC_ALLOW
                     : strcmp(c, "replace") == 0 ? CONC_REPLACE
                                                 : CONC_FORBID;
    const char *m = PQgetvalue(r, i, 12);
    t->misfire = strcmp(m, "skip") == 0      ? MISFIRE_SKIP
                 : strcmp(m, "run_all") == 0 ? MISFIRE_RUN_ALL
                                             : MISFIRE_RUN_ONCE;
    t->misfire_grace_ms = gi64(r, i, 13);
    t->misfire_max_runs = gint(r, i, 14);
    t->jitter_ms = gi64(r, i, 15);
    snprintf(t->owner, sizeof t->owner, "%s", PQgetvalue(r, i, 16));
    t->paused = gbool(r, i, 17);
    t->is_active = gbool(r, i, 18);
    t->removed_at_ms = gi64(r, i, 19);
    t->created_at_ms = gi64(r, i, 20);
    t->updated_at_ms = gi64(r, i, 21);
    t->last_run_at_ms = gi64(r, i, 22);
    t->next_run_at_ms = gi64(r, i, 23);
    t->last_fire_ms = gi64(r, i, 24);
}

void store_task_clear(store_task *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->task_type);
    free(t->connection_id);
    free(t->cron_schedule);
    free(t->timezone);
    free(t->description);
    free(t->params_json);
    memset(t, 0, sizeof *t);
}

void store_tasks_free(store_task *tasks, size_t n)
{
    for (size_t i = 0; tasks && i < n; i++)
        store_task_clear(&tasks[i]);
    free(tasks);
}

int store_task_list(store *s, bool include_removed, store_task **out, size_t *n, char *err,
                    size_t errlen)
{
    const char *pv[] = {include_removed ? "t" : "f"};
    PGresult *r = run(s, "listing tasks",
                      "SELECT " TASK_COLS " FROM scheduled_tasks t "
                      "WHERE $1::boolean OR t.removed_at IS NULL ORDER BY t.name",
                      1, pv, err, errlen);
    if (!r)
        return -1;
    *n = (size_t)PQntuples(r);
    *out = xcalloc(*n ? *n : 1, sizeof **out);
    for (size_t i = 0; i < *n; i++)
        task_from_row(r, (int)i, &(*out)[i]);
    PQclear(r);
    return 0;
}

int store_task_get(store *s, const char *name, store_task *out, char *err, size_t errlen)
{
    const char *pv[] = {name};
    PGresult *r = run(s, "reading a task",
                      "SELECT " TASK_COLS " FROM scheduled_tasks t WHERE t.name = $1", 1, pv, err,
                      errlen);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    if (found)
        task_from_row(r, 0, out);
    PQclear(r);
    return found ? 0 : 1;
}

const char *store_task_not_found(store *s, const char *name, char *err, size_t errlen)
{
    PGresult *r = PQexec(s->conn, "SELECT name FROM scheduled_tasks WHERE removed_at IS NULL "
                                  "ORDER BY name");
    int n = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0;
    const char **names = xcalloc((size_t)n + 1, sizeof *names);
    strbuf sb = {0};
    /* Name at most 10, so that the message (and its hint) stays readable. */
    for (int i = 0; i < n; i++) {
        names[i] = PQgetvalue(r, i, 0);
        if (i < 10)
            sb_printf(&sb, "%s%s", i ? ", " : "", names[i]);
    }
    if (n > 10)
        sb_printf(&sb, " and %d more: see pgreviewer task list", n - 10);
    const char *near = closest_word(name, names);
    if (n == 0)
        set_err(err, errlen, "task \"%s\" not found (no tasks are defined)", name);
    else if (near)
        set_err(err, errlen, "task \"%s\" not found (known: %s); did you mean \"%s\"?", name,
                sb.buf, near);
    else
        set_err(err, errlen, "task \"%s\" not found (known: %s)", name, sb.buf);
    sb_free(&sb);
    free(names);
    PQclear(r);
    return err;
}

/* The JSON a config task is synced from; its md5 is the config_hash. */
static json_t *task_to_json(const pgr_config *cfg, const cfg_task *t)
{
    const char *tz = t->timezone ? t->timezone : cfg->defaults.timezone;
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(t->name));
    json_object_set_new(j, "type", json_string(t->type));
    json_object_set_new(j, "connection", t->connection ? json_string(t->connection) : json_null());
    json_object_set_new(j, "schedule", t->schedule ? json_string(t->schedule) : json_null());
    json_object_set_new(j, "timezone", json_string(tz ? tz : "UTC"));
    json_object_set_new(j, "description",
                        t->description ? json_string(t->description) : json_null());
    json_object_set_new(j, "params", t->params ? json_incref(t->params) : json_object());
    json_object_set_new(j, "priority", json_integer(t->priority));
    json_object_set_new(j, "timeout_ms", json_integer(t->timeout_ms));
    json_object_set_new(j, "retry", retry_to_json(&t->retry));
    json_object_set_new(j, "concurrency", json_string(concurrency_name(t->concurrency)));
    json_object_set_new(j, "misfire", json_string(misfire_name(t->misfire)));
    json_object_set_new(j, "misfire_grace_ms", json_integer(t->misfire_grace_ms));
    json_object_set_new(j, "misfire_max_runs", json_integer(t->misfire_max_runs));
    json_object_set_new(j, "jitter_ms", json_integer(t->jitter_ms));
    json_object_set_new(j, "enabled", json_boolean(t->enabled));
    return j;
}

static json_t *connection_to_json(const cfg_connection *c)
{
    static const char *const creds[] = {"libpq", "password_file", "vault"};
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(c->id));
    json_object_set_new(j, "host", c->host ? json_string(c->host) : json_null());
    json_object_set_new(j, "port", c->port ? json_integer(c->port) : json_null());
    json_object_set_new(j, "database", c->database ? json_string(c->database) : json_null());
    json_object_set_new(j, "username", c->username ? json_string(c->username) : json_null());
    json_object_set_new(j, "credentials", json_string(creds[c->credentials]));
    json_object_set_new(j, "sslmode", c->sslmode ? json_string(c->sslmode) : json_null());
    json_object_set_new(j, "options", c->options ? json_deep_copy(c->options) : json_object());
    return j;
}

/* PostgreSQL's jsonb refuses the character U+0000 (and with it a whole
 * batch); a plugin that read binary garbage can produce one. Replace each
 * escaped "\u0000" in JSON text by "\ufffd" (the replacement character),
 * skipping other escapes so that an escaped backslash followed by "u0000"
 * is left alone. */
static void replace_nul_escapes(char *s)
{
    for (; *s; s++) {
        if (*s != '\\')
            continue;
        if (s[1] == 'u' && strncmp(s + 2, "0000", 4) == 0)
            memcpy(s + 2, "fffd", 4);
        if (s[1])
            s++;
    }
}

/* Compact JSON text of j (never NULL: aborts on out-of-memory), safe for
 * jsonb. Caller frees. */
static char *dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | PGR_JSON_REAL);
    if (!s) {
        fprintf(stderr, "pgreviewer: out of memory (json_dumps)\n");
        abort();
    }
    replace_nul_escapes(s);
    return s;
}

static const char sync_tasks_sql[] =
    "WITH input AS (SELECT j.value AS v, md5(j.value::text) AS h "
    "               FROM jsonb_array_elements($1::jsonb) j), "
    "names AS (SELECT v->>'name' AS name FROM input), "
    "conflicts AS (SELECT count(*) AS n FROM scheduled_tasks t "
    "              WHERE t.owner = 'api' AND t.name IN (SELECT name FROM names)), "
    "up AS (INSERT INTO scheduled_tasks AS t (name, task_type, connection_id, cron_schedule, "
    "  timezone, description, task_params, priority, timeout_ms, retry_policy, concurrency, "
    "  misfire_policy, misfire_grace_ms, misfire_max_runs, jitter_ms, owner, config_hash, paused) "
    " SELECT v->>'name', v->>'type', v->>'connection', v->>'schedule', v->>'timezone', "
    "  v->>'description', v->'params', (v->>'priority')::int, (v->>'timeout_ms')::bigint, "
    "  v->'retry', v->>'concurrency', v->>'misfire', (v->>'misfire_grace_ms')::bigint, "
    "  (v->>'misfire_max_runs')::int, (v->>'jitter_ms')::bigint, 'config', h, "
    "  NOT (v->>'enabled')::boolean FROM input "
    " ON CONFLICT (name) DO UPDATE SET task_type = EXCLUDED.task_type, "
    "  connection_id = EXCLUDED.connection_id, cron_schedule = EXCLUDED.cron_schedule, "
    "  timezone = EXCLUDED.timezone, description = EXCLUDED.description, "
    "  task_params = EXCLUDED.task_params, priority = EXCLUDED.priority, "
    "  timeout_ms = EXCLUDED.timeout_ms, retry_policy = EXCLUDED.retry_policy, "
    "  concurrency = EXCLUDED.concurrency, misfire_policy = EXCLUDED.misfire_policy, "
    "  misfire_grace_ms = EXCLUDED.misfire_grace_ms, "
    "  misfire_max_runs = EXCLUDED.misfire_max_runs, jitter_ms = EXCLUDED.jitter_ms, "
    "  paused = CASE WHEN t.config_hash IS DISTINCT FROM EXCLUDED.config_hash "
    "                THEN EXCLUDED.paused ELSE t.paused END, "
    "  config_hash = EXCLUDED.config_hash, removed_at = NULL, updated_at = now() "
    " WHERE t.owner = 'config' AND (t.config_hash IS DISTINCT FROM EXCLUDED.config_hash "
    "                               OR t.removed_at IS NOT NULL) "
    " RETURNING (xmax = 0) AS inserted), "
    "gone AS (UPDATE scheduled_tasks t SET removed_at = now(), updated_at = now() "
    " WHERE t.owner = 'config' AND t.removed_at IS NULL "
    "   AND t.name NOT IN (SELECT name FROM names) RETURNING 1) "
    "SELECT (SELECT count(*) FROM input), (SELECT count(*) FROM up WHERE inserted), "
    "  (SELECT count(*) FROM up WHERE NOT inserted), (SELECT count(*) FROM gone), "
    "  (SELECT n FROM conflicts)";

static const char sync_connections_sql[] =
    "WITH input AS (SELECT j.value AS v FROM jsonb_array_elements($1::jsonb) j), "
    "up AS (INSERT INTO connections AS c (id, host, port, database, username, credentials, "
    "  sslmode, options, owner) "
    " SELECT v->>'id', v->>'host', (v->>'port')::int, v->>'database', v->>'username', "
    "  v->>'credentials', v->>'sslmode', v->'options', 'config' FROM input "
    " ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, port = EXCLUDED.port, "
    "  database = EXCLUDED.database, username = EXCLUDED.username, "
    "  credentials = EXCLUDED.credentials, sslmode = EXCLUDED.sslmode, "
    "  options = EXCLUDED.options, removed_at = NULL, updated_at = now() "
    " WHERE c.owner = 'config' AND (c.removed_at IS NOT NULL OR "
    "  (c.host, c.port, c.database, c.username, c.credentials, c.sslmode, c.options) IS DISTINCT "
    "  FROM (EXCLUDED.host, EXCLUDED.port, EXCLUDED.database, EXCLUDED.username, "
    "        EXCLUDED.credentials, EXCLUDED.sslmode, EXCLUDED.options)) RETURNING 1) "
    "UPDATE connections c SET removed_at = now(), updated_at = now() "
    " WHERE c.owner = 'config' AND c.removed_at IS NULL "
    "   AND c.id NOT IN (SELECT v->>'id' FROM input)";

int store_sync_tasks(store *s, const pgr_config *cfg, store_sync_stats *stats, char *err,
                     size_t errlen)
{
    json_t *tasks = json_array(), *conns = json_array();
    for (size_t i = 0; i < cfg->n_tasks; i++)
        json_array_append_new(tasks, task_to_json(cfg, &cfg->tasks[i]));
    for (size_t i = 0; i < cfg->n_connections; i++)
        json_array_append_new(conns, connection_to_json(&cfg->connections[i]));
    char *tj = dump(tasks), *cj = dump(conns);
    json_decref(tasks);
    json_decref(conns);
    const char *pt[] = {tj}, *pc[] = {cj};
    PGresult *r = NULL;
    int rc = -1;
    if (begin(s, err, errlen) < 0)
        goto out;
    if (run0(s, "syncing connections", sync_connections_sql, 1, pc, err, errlen) < 0 ||
        !(r = run(s, "syncing tasks", sync_tasks_sql, 1, pt, err, errlen))) {
        rollback(s);
        goto out;
    }
    /* Wake the scheduler when anything changed (delivered at commit). */
    bool changed = gint(r, 0, 1) + gint(r, 0, 2) + gint(r, 0, 3) > 0;
    if ((changed && run0(s, "notifying", "SELECT pg_notify('" STORE_CHANNEL_TASKS "', '*')", 0,
                         NULL, err, errlen) < 0) ||
        commit(s, err, errlen) < 0) {
        rollback(s);
        goto out;
    }
    if (stats) {
        stats->inserted = gint(r, 0, 1);
        stats->updated = gint(r, 0, 2);
        stats->removed = gint(r, 0, 3);
        stats->conflicts = gint(r, 0, 4);
        stats->unchanged = gint(r, 0, 0) - stats->inserted - stats->updated - stats->conflicts;
    }
    rc = 0;
out:
    PQclear(r);
    free(tj);
    free(cj);
    return rc;
}

int store_task_create_api(store *s, const cfg_task *t, int64_t *id, char *err, size_t errlen)
{
    pgr_config dummy;
    memset(&dummy, 0, sizeof dummy);
    json_t *j = task_to_json(&dummy, t);
    char *text = dump(j);
    json_decref(j);
    const char *pv[] = {text};
    PGresult *r = run(s, "creating a task",
                      "WITH i AS (SELECT $1::jsonb AS v) "
                      "INSERT INTO scheduled_tasks (name, task_type, connection_id, "
                      " cron_schedule, timezone, description, task_params, priority, timeout_ms, "
                      " retry_policy, concurrency, misfire_policy, misfire_grace_ms, "
                      " misfire_max_runs, jitter_ms, owner, paused) "
                      "SELECT v->>'name', v->>'type', v->>'connection', v->>'schedule', "
                      " v->>'timezone', v->>'description', v->'params', (v->>'priority')::int, "
                      " (v->>'timeout_ms')::bigint, v->'retry', v->>'concurrency', "
                      " v->>'misfire', (v->>'misfire_grace_ms')::bigint, "
                      " (v->>'misfire_max_runs')::int, (v->>'jitter_ms')::bigint, 'api', "
                      " NOT (v->>'enabled')::boolean FROM i "
                      "RETURNING id, pg_notify('" STORE_CHANNEL_TASKS "', name)",
                      1, pv, err, errlen);
    free(text);
    if (!r)
        return -1;
    if (id)
        *id = gi64(r, 0, 0);
    PQclear(r);
    return 0;
}

/* Run an UPDATE on the task named pv[0] that returns a row when it found
 * the task. Returns 0, 1 (not found, err has the message), or -1. */
static int task_update(store *s, const char *what, const char *sql, const char *name, char *err,
                       size_t errlen)
{
    const char *pv[] = {name};
    PGresult *r = run(s, what, sql, 1, pv, err, errlen);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    PQclear(r);
    if (!found) {
        store_task_not_found(s, name, err, errlen);
        return 1;
    }
    return 0;
}

int store_task_pause(store *s, const char *name, char *err, size_t errlen)
{
    return task_update(s, "pausing a task",
                       "UPDATE scheduled_tasks SET paused = true, "
                       " updated_at = CASE WHEN paused THEN updated_at ELSE now() END "
                       "WHERE name = $1 AND removed_at IS NULL "
                       "RETURNING id, pg_notify('" STORE_CHANNEL_TASKS "', name)",
                       name, err, errlen);
}

int store_task_resume(store *s, const char *name, char *err, size_t errlen)
{
    return task_update(s, "resuming a task",
                       "UPDATE scheduled_tasks SET paused = false, "
                       " updated_at = CASE WHEN paused THEN now() ELSE updated_at END "
                       "WHERE name = $1 AND removed_at IS NULL "
                       "RETURNING id, pg_notify('" STORE_CHANNEL_TASKS "', name)",
                       name, err, errlen);
}

int store_task_remove(store *s, const char *name, char *err, size_t errlen)
{
    store_task t;
    int rc = store_task_get(s, name, &t, err, errlen);
    if (rc != 0) {
        if (rc == 1)
            store_task_not_found(s, name, err, errlen);
        return rc;
    }
    bool config_owned = strcmp(t.owner, "config") == 0, removed = t.removed_at_ms != 0;
    store_task_clear(&t);
    if (removed)
        return 0;
    if (config_owned)
        return set_err(err, errlen,
                       "task \"%s\" is defined in the configuration: remove it from the YAML "
                       "file and reload (its history is kept)",
                       name);
    return task_update(s, "removing a task",
                       "UPDATE scheduled_tasks SET removed_at = coalesce(removed_at, now()), "
                       " next_run_at = NULL, updated_at = now() WHERE name = $1 "
                       "RETURNING id, pg_notify('" STORE_CHANNEL_TASKS "', name)",
                       name, err, errlen);
}

int store_task_set_next_run(store *s, int64_t task_id, int64_t next_run_ms, char *err,
                            size_t errlen)
{
    char a[24], b[24];
    i64s(a, sizeof a, task_id);
    i64s(b, sizeof b, next_run_ms);
    const char *pv[] = {a, next_run_ms ? b : NULL};
    return run0(s, "setting next_run_at",
                "UPDATE scheduled_tasks SET next_run_at = " TS("$2") " WHERE id = $1", 2, pv, err,
                errlen);
}

/* ---- fires and manual runs ------------------------------------------------------ */

/* The existing execution of a fire key. Returns 0, or -1 (none: unknown task). */
static int fire_lookup(store *s, const char *const *pv, int64_t *exec_id, char *err,
                       size_t errlen)
{
    PGresult *r = run(s, "reading a fire",
                      "SELECT id FROM task_executions WHERE scheduled_task_id = $1 "
                      "AND scheduled_for = " TS("$2"),
                      2, pv, err, errlen);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    if (found)
        *exec_id = gi64(r, 0, 0);
    PQclear(r);
    if (!found)
        return set_err(err, errlen, "store: no scheduled task with id %s", pv[0]);
    return 0;
}

static const char fire_sql[] =
    "INSERT INTO task_executions (scheduled_task_id, task_name, task_type, connection_id, "
    " status, trigger, scheduled_for, priority, max_attempts, parameters, queued_at, "
    " scheduled_at, not_before, skipped_reason, completed_at) "
    "SELECT t.id, t.name, t.task_type, t.connection_id, $3, 'schedule', " TS("$2") ", "
    " t.priority, greatest(coalesce((t.retry_policy->>'max_attempts')::int, 1), 1), "
    " t.task_params, CASE WHEN $3 = 'queued' THEN now() END, "
    " CASE WHEN $3 = 'scheduled' THEN now() END, "
    " CASE WHEN $3 = 'scheduled' THEN " TS("$4") " END, $5, "
    " CASE WHEN $3 = 'skipped' THEN now() END "
    "FROM scheduled_tasks t WHERE t.id = $1 "
    "ON CONFLICT ON CONSTRAINT task_executions_fire_key DO NOTHING RETURNING id";

static int fire(store *s, int64_t task_id, int64_t at_ms, store_status st, int64_t nb_ms,
                const char *reason, int64_t *exec_id, bool *created, char *err, size_t errlen)
{
    char a[24], b[24], d[24];
    i64s(a, sizeof a, task_id);
    i64s(b, sizeof b, at_ms);
    i64s(d, sizeof d, nb_ms);
    const char *pv[] = {a, b, store_status_name(st), d, reason};
    PGresult *r = run(s, "inserting a fire", fire_sql, 5, pv, err, errlen);
    if (!r)
        return -1;
    bool made = PQntuples(r) > 0;
    int64_t id = made ? gi64(r, 0, 0) : 0;
    PQclear(r);
    if (!made && fire_lookup(s, pv, &id, err, errlen) < 0)
        return -1;
    if (exec_id)
        *exec_id = id;
    if (created)
        *created = made;
    return 0;
}

int store_fire(store *s, int64_t task_id, int64_t scheduled_for_ms, store_status initial,
               int64_t not_before_ms, int64_t *exec_id, bool *created, char *err, size_t errlen)
{
    if (initial != STORE_PENDING && initial != STORE_QUEUED && initial != STORE_SCHEDULED)
        return set_err(err, errlen, "store_fire: initial status must be pending, queued or "
                                    "scheduled, not %s",
                       store_status_name(initial));
    return fire(s, task_id, scheduled_for_ms, initial, not_before_ms, NULL, exec_id, created, err,
                errlen);
}

int store_fire_skipped(store *s, int64_t task_id, int64_t scheduled_for_ms, const char *reason,
                       int64_t *exec_id, bool *created, char *err, size_t errlen)
{
    return fire(s, task_id, scheduled_for_ms, STORE_SKIPPED, 0, reason ? reason : "skipped",
                exec_id, created, err, errlen);
}

/* ---- batched fires ------------------------------------------------------------- */

/* Append v to a PostgreSQL array literal being built in sb ("{" first). */
static void arr_i64(strbuf *sb, int64_t v)
{
    sb_printf(sb, "%s%lld", sb->len > 1 ? "," : "", (long long)v);
}

/* Append a text element, quoted ("" and \ escaped), or NULL. */
static void arr_text(strbuf *sb, const char *v)
{
    if (sb->len > 1)
        sb_appendn(sb, ",", 1);
    if (!v) {
        sb_append(sb, "NULL");
        return;
    }
    sb_appendn(sb, "\"", 1);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_appendn(sb, "\\", 1);
        sb_appendn(sb, p, 1);
    }
    sb_appendn(sb, "\"", 1);
}

/* The batch as sent: only the first item of each fire key (a repeated key
 * copies the first one's outcome), in the caller's order. `forbid` items
 * become skipped when their task has an unfinished execution (the oldest
 * is named in the reason), checked through the history index. The rows
 * RETURNED are mapped back to items by their fire key.
 *
 * "status NOT IN TERMINAL" (the same rows as "IN UNFINISHED", the status
 * having a CHECK) on purpose: it does not imply the predicate of the
 * partial index task_executions_unfinished, so the planner cannot AND a
 * bitmap of every unfinished execution into each task's lookup - which it
 * did while the table's statistics still said "empty", making a burst of
 * fires quadratic (100k fires: 25 s instead of a few). */
static const char fire_batch_sql[] =
    "WITH i AS (SELECT u.*, a.id AS active "
    "  FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], "
    "  $6::boolean[]) WITH ORDINALITY AS u(task_id, at_ms, status, nb_ms, reason, forbid, ord) "
    "  LEFT JOIN LATERAL (SELECT x.id FROM task_executions x WHERE u.forbid "
    "    AND x.scheduled_task_id = u.task_id AND x.status NOT IN " TERMINAL
    "    ORDER BY x.id LIMIT 1) a ON true), "
    "j AS (SELECT i.*, CASE WHEN i.active IS NULL THEN i.status ELSE 'skipped' END AS st, "
    "  CASE WHEN i.active IS NULL THEN i.reason ELSE 'concurrency forbid: execution ' || "
    "  i.active || ' of this task has not finished' END AS why FROM i) "
    "INSERT INTO task_executions (scheduled_task_id, task_name, task_type, "
    "  connection_id, status, trigger, scheduled_for, priority, max_attempts, parameters, "
    "  queued_at, scheduled_at, not_before, skipped_reason, completed_at) "
    "SELECT t.id, t.name, t.task_type, t.connection_id, j.st, 'schedule', " TS("j.at_ms") ", "
    "  t.priority, greatest(coalesce((t.retry_policy->>'max_attempts')::int, 1), 1), "
    "  t.task_params, CASE WHEN j.st = 'queued' THEN now() END, "
    "  CASE WHEN j.st = 'scheduled' THEN now() END, "
    "  CASE WHEN j.st = 'scheduled' THEN " TS("j.nb_ms") " END, "
    "  CASE WHEN j.st = 'skipped' THEN coalesce(j.why, 'skipped') END, "
    "  CASE WHEN j.st = 'skipped' THEN now() END "
    "FROM j JOIN scheduled_tasks t ON t.id = j.task_id ORDER BY j.ord "
    "ON CONFLICT ON CONSTRAINT task_executions_fire_key DO NOTHING "
    "RETURNING scheduled_task_id, " MS("scheduled_for") ", id, status, skipped_reason";

/* Existing executions of fire keys, for the items a batch did not create. */
static const char fire_lookup_sql[] =
    "SELECT u.k, e.id FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS "
    "u(task_id, at_ms, k) JOIN task_executions e ON e.scheduled_task_id = u.task_id "
    "AND e.scheduled_for = " TS("u.at_ms");

static __thread const store_fire_item *tl_items;

/* Order item indices by fire key, then position. */
static int cmp_key(const void *a, const void *b)
{
    const store_fire_item *x = &tl_items[*(const size_t *)a], *y = &tl_items[*(const size_t *)b];
    if (x->task_id != y->task_id)
        return x->task_id < y->task_id ? -1 : 1;
    if (x->scheduled_for_ms != y->scheduled_for_ms)
        return x->scheduled_for_ms < y->scheduled_for_ms ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* The position in `order` (sorted, first of each key only) of a key, or
 * -1. */
static ssize_t find_key(const store_fire_item *items, const size_t *order, size_t n,
                        int64_t task_id, int64_t at_ms)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const store_fire_item *m = &items[order[mid]];
        if (m->task_id < task_id || (m->task_id == task_id && m->scheduled_for_ms < at_ms))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < n && items[order[lo]].task_id == task_id &&
        items[order[lo]].scheduled_for_ms == at_ms)
        return (ssize_t)lo;
    return -1;
}

/* Arrays of the first item of each key, in batch order (first[k] true). */
static void fire_arrays(const store_fire_item *items, size_t n, const bool *first, strbuf *a)
{
    for (int c = 0; c < 6; c++)
        sb_appendn(&a[c], "{", 1);
    for (size_t k = 0; k < n; k++) {
        const store_fire_item *it = &items[k];
        if (!first[k])
            continue;
        arr_i64(&a[0], it->task_id);
        arr_i64(&a[1], it->scheduled_for_ms);
        arr_text(&a[2], store_status_name(it->initial));
        arr_i64(&a[3], it->not_before_ms);
        arr_text(&a[4], it->initial == STORE_SKIPPED ? (it->reason ? it->reason : "skipped")
                                                     : NULL);
        arr_text(&a[5], it->skip_if_active && it->initial != STORE_SKIPPED ? "t" : "f");
    }
    for (int c = 0; c < 6; c++)
        sb_appendn(&a[c], "}", 1);
}

/* exec_id of the keys that were not created (and exist), in one query. */
static int fire_lookup_missing(store *s, store_fire_item *items, size_t n, const bool *first,
                               char *err, size_t errlen)
{
    strbuf a[2] = {{0}};
    size_t *pos = xcalloc(n + 1, sizeof *pos), m = 0;
    sb_appendn(&a[0], "{", 1);
    sb_appendn(&a[1], "{", 1);
    for (size_t k = 0; k < n; k++) {
        if (!first[k] || items[k].created)
            continue;
        arr_i64(&a[0], items[k].task_id);
        arr_i64(&a[1], items[k].scheduled_for_ms);
        pos[m++] = k;
    }
    sb_appendn(&a[0], "}", 1);
    sb_appendn(&a[1], "}", 1);
    int rc = 0;
    if (m) {
        const char *pv[] = {a[0].buf, a[1].buf};
        PGresult *r = run(s, "reading existing fires", fire_lookup_sql, 2, pv, err, errlen);
        if (!r) {
            rc = -1;
        } else {
            for (int row = 0; row < PQntuples(r); row++) {
                int64_t k = gi64(r, row, 0);
                if (k >= 1 && (size_t)k <= m)
                    items[pos[k - 1]].exec_id = gi64(r, row, 1);
            }
            PQclear(r);
        }
    }
    sb_free(&a[0]);
    sb_free(&a[1]);
    free(pos);
    return rc;
}

int store_fire_batch(store *s, store_fire_item *items, size_t n, char *err, size_t errlen)
{
    for (size_t k = 0; k < n; k++) {
        store_status st = items[k].initial;
        if (st != STORE_PENDING && st != STORE_QUEUED && st != STORE_SCHEDULED &&
            st != STORE_SKIPPED)
            return set_err(err, errlen, "store_fire_batch: item %zu (task %lld): initial status "
                           "must be pending, queued, scheduled or skipped, not %s",
                           k, (long long)items[k].task_id, store_status_name(st));
    }
    if (n == 0)
        return 0;
    /* by key: the first item of each key is sent, the others copy it */
    size_t *order = xcalloc(n, sizeof *order), n_first = 0;
    bool *first = xcalloc(n, sizeof *first);
    size_t *dup_of = xcalloc(n, sizeof *dup_of);
    for (size_t k = 0; k < n; k++) {
        order[k] = k;
        items[k].exec_id = 0;
        items[k].created = false;
        items[k].skipped_now = false;
    }
    tl_items = items;
    qsort(order, n, sizeof *order, cmp_key);
    for (size_t k = 0; k < n; k++) {
        const store_fire_item *it = &items[order[k]];
        const store_fire_item *prev = n_first ? &items[order[n_first - 1]] : NULL;
        if (prev && prev->task_id == it->task_id && prev->scheduled_for_ms == it->scheduled_for_ms) {
            dup_of[order[k]] = order[n_first - 1] + 1;
            continue;
        }
        first[order[k]] = true;
        order[n_first++] = order[k];
    }
    strbuf a[6] = {{0}};
    fire_arrays(items, n, first, a);
    const char *pv[] = {a[0].buf, a[1].buf, a[2].buf, a[3].buf, a[4].buf, a[5].buf};
    PGresult *r = run(s, "inserting a batch of fires", fire_batch_sql, 6, pv, err, errlen);
    for (int c = 0; c < 6; c++)
        sb_free(&a[c]);
    int made = -1;
    if (r) {
        made = 0;
        for (int row = 0; row < PQntuples(r); row++) {
            ssize_t at = find_key(items, order, n_first, gi64(r, row, 0), gi64(r, row, 1));
            if (at < 0)
                continue;
            store_fire_item *it = &items[order[at]];
            it->exec_id = gi64(r, row, 2);
            it->created = true;
            it->skipped_now = strcmp(PQgetvalue(r, row, 3), "skipped") == 0 &&
                              it->initial != STORE_SKIPPED;
            if (it->skipped_now)
                snprintf(it->skipped_reason, sizeof it->skipped_reason, "%s",
                         PQgetvalue(r, row, 4));
            made++;
        }
        PQclear(r);
        if ((size_t)made < n_first && fire_lookup_missing(s, items, n, first, err, errlen) < 0)
            made = -1;
    }
    for (size_t k = 0; made >= 0 && k < n; k++)
        if (dup_of[k])
            items[k].exec_id = items[dup_of[k] - 1].exec_id;
    tl_items = NULL;
    free(order);
    free(first);
    free(dup_of);
    return made;
}

int store_tasks_active(store *s, const int64_t *task_ids, size_t n, store_active **out,
                       size_t *n_out, char *err, size_t errlen)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return 0;
    strbuf a = {0};
    sb_appendn(&a, "{", 1);
    for (size_t k = 0; k < n; k++)
        arr_i64(&a, task_ids[k]);
    sb_appendn(&a, "}", 1);
    const char *pv[] = {a.buf};
    PGresult *r = run(s, "reading active executions",
                      /* driven by the tasks through the history index
                       * (OFFSET 0 keeps the planner from turning it into
                       * a scan of the whole table, which grows; NOT IN
                       * TERMINAL: see fire_batch_sql) */
                      "SELECT u.task_id, e.id FROM unnest($1::bigint[]) AS u(task_id) "
                      "CROSS JOIN LATERAL (SELECT x.id FROM task_executions x "
                      "  WHERE x.scheduled_task_id = u.task_id AND x.status NOT IN " TERMINAL
                      "  OFFSET 0) e ORDER BY 1, 2",
                      1, pv, err, errlen);
    sb_free(&a);
    if (!r)
        return -1;
    *n_out = (size_t)PQntuples(r);
    *out = xcalloc(*n_out ? *n_out : 1, sizeof **out);
    for (size_t k = 0; k < *n_out; k++) {
        (*out)[k].task_id = gi64(r, (int)k, 0);
        (*out)[k].exec_id = gi64(r, (int)k, 1);
    }
    PQclear(r);
    return 0;
}

int store_trigger(store *s, const char *name, const char *params_override_json, int64_t *exec_id,
                  char *err, size_t errlen)
{
    if (params_override_json) {
        json_error_t je;
        json_t *j = json_loads(params_override_json, JSON_DECODE_ANY, &je);
        bool obj = json_is_object(j);
        json_decref(j);
        if (!j)
            return set_err(err, errlen, "--params: invalid JSON at column %d: %s", je.column,
                           je.text);
        if (!obj)
            return set_err(err, errlen, "--params: must be a JSON object such as "
                                        "{\"key\": \"value\"}");
    }
    store_task t;
    int rc = store_task_get(s, name, &t, err, errlen);
    if (rc != 0) {
        if (rc == 1)
            store_task_not_found(s, name, err, errlen);
        return rc;
    }
    bool removed = t.removed_at_ms != 0;
    store_task_clear(&t);
    if (removed)
        return set_err(err, errlen, "task \"%s\" was removed; it can no longer be triggered",
                       name);
    const char *pv[] = {name, params_override_json};
    PGresult *r = run(s, "triggering a task",
                      "INSERT INTO task_executions (scheduled_task_id, task_name, task_type, "
                      " connection_id, status, trigger, priority, max_attempts, parameters) "
                      "SELECT t.id, t.name, t.task_type, t.connection_id, 'pending', 'manual', "
                      " t.priority, greatest(coalesce((t.retry_policy->>'max_attempts')::int, 1), "
                      " 1), t.task_params || coalesce($2::jsonb, '{}'::jsonb) "
                      "FROM scheduled_tasks t WHERE t.name = $1 "
                      "RETURNING id, pg_notify('" STORE_CHANNEL_EXECUTIONS "', id::text)",
                      2, pv, err, errlen);
    if (!r)
        return -1;
    if (exec_id)
        *exec_id = gi64(r, 0, 0);
    PQclear(r);
    return 0;
}

/* ---- lifecycle --------------------------------------------------------------------- */

/* "{1,2,3}" for a bigint[] parameter. Caller frees. */
static char *id_array(const int64_t *ids, size_t n)
{
    strbuf sb = {0};
    sb_append(&sb, "{");
    for (size_t i = 0; i < n; i++)
        sb_printf(&sb, "%s%lld", i ? "," : "", (long long)ids[i]);
    sb_append(&sb, "}");
    return sb_steal(&sb);
}

int store_exec_mark_queued(store *s, const int64_t *ids, size_t n, char *err, size_t errlen)
{
    char *arr = id_array(ids, n);
    const char *pv[] = {arr};
    PGresult *r = run(s, "marking executions queued",
                      "UPDATE task_executions SET status = 'queued', queued_at = now(), "
                      " updated_at = now() WHERE id = ANY ($1::bigint[]) "
                      " AND status IN ('pending','scheduled')",
                      1, pv, err, errlen);
    free(arr);
    if (!r)
        return -1;
    int changed = atoi(PQcmdTuples(r));
    PQclear(r);
    return changed;
}

int store_exec_mark_scheduled(store *s, int64_t id, int64_t not_before_ms, char *err,
                              size_t errlen)
{
    char a[24], b[24];
    i64s(a, sizeof a, id);
    i64s(b, sizeof b, not_before_ms);
    const char *pv[] = {a, b};
    PGresult *r = run(s, "marking an execution scheduled",
                      "UPDATE task_executions SET status = 'scheduled', scheduled_at = now(), "
                      " not_before = " TS("$2") ", updated_at = now() WHERE id = $1 "
                      " AND status IN ('pending','queued')",
                      2, pv, err, errlen);
    if (!r)
        return -1;
    int changed = atoi(PQcmdTuples(r));
    PQclear(r);
    return changed;
}

static const char start_sql[] =
    "WITH input AS (SELECT * FROM jsonb_to_recordset($1::jsonb) "
    "               AS x(ord int, id bigint, host text, pid int)), "
    "locked AS (SELECT e.id, e.status FROM task_executions e "
    "           WHERE e.id = ANY (ARRAY(SELECT id FROM input)) ORDER BY e.id FOR UPDATE), "
    "lost AS (UPDATE execution_attempts a SET finished_at = now(), outcome = 'lost', "
    "          error = 'the worker was lost; the execution was started again' "
    "         FROM locked l WHERE a.execution_id = l.id AND a.finished_at IS NULL "
    "          AND l.status = 'running'), "
    "upd AS (UPDATE task_executions e SET status = 'running', attempt = e.attempt + 1, "
    "         started_at = now(), worker = i.host, not_before = NULL, updated_at = now() "
    "        FROM locked l JOIN input i ON i.id = l.id "
    "        WHERE e.id = l.id AND l.status IN " UNFINISHED " "
    "        RETURNING e.id, e.attempt, e.max_attempts, e.scheduled_task_id, e.task_name, "
    "         e.task_type, e.connection_id, e.parameters, i.host, i.pid), "
    "att AS (INSERT INTO execution_attempts (execution_id, attempt, worker_host, worker_pid) "
    "        SELECT id, attempt, host, pid FROM upd), "
    "tsk AS (UPDATE scheduled_tasks t SET last_run_at = now() FROM upd "
    "        WHERE t.id = upd.scheduled_task_id) "
    "SELECT i.ord, l.status, u.attempt, u.max_attempts, u.scheduled_task_id, st.timeout_ms, "
    " u.task_name, u.task_type, u.connection_id, u.parameters::text "
    "FROM input i LEFT JOIN locked l ON l.id = i.id LEFT JOIN upd u ON u.id = i.id "
    " LEFT JOIN scheduled_tasks st ON st.id = u.scheduled_task_id";

void store_start_info_clear(store_start_info *info)
{
    if (!info)
        return;
    free(info->task_name);
    free(info->task_type);
    free(info->connection_id);
    free(info->params_json);
    memset(info, 0, sizeof *info);
}

static void start_info_from_row(const PGresult *r, int row, store_start_info *out)
{
    memset(out, 0, sizeof *out);
    if (PQgetisnull(r, row, 1)) {
        out->rc = STORE_START_NOT_FOUND;
        return;
    }
    store_status_parse(PQgetvalue(r, row, 1), &out->status);
    if (PQgetisnull(r, row, 2)) {
        out->rc = STORE_START_FINISHED;
        return;
    }
    out->rc = STORE_START_OK;
    out->status = STORE_RUNNING;
    out->attempt = gint(r, row, 2);
    out->max_attempts = gint(r, row, 3);
    out->task_id = gi64(r, row, 4);
    out->timeout_ms = gi64(r, row, 5);
    out->task_name = gstr(r, row, 6);
    out->task_type = gstr(r, row, 7);
    out->connection_id = gstr(r, row, 8);
    out->params_json = gstr(r, row, 9);
}

int store_exec_start(store *s, const store_start *items, size_t n, store_start_info *info,
                     char *err, size_t errlen)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:i, s:I, s:s?, s:i}", "ord", (int)i, "id",
                                             (json_int_t)items[i].execution_id, "host",
                                             items[i].worker_host, "pid",
                                             (int)items[i].worker_pid));
    char *text = dump(arr);
    json_decref(arr);
    const char *pv[] = {text};
    PGresult *r = run_hot(s, PREP_START, "starting executions", start_sql, 1, pv, err, errlen);
    free(text);
    if (!r)
        return -1;
    for (int row = 0; row < PQntuples(r); row++) {
        int ord = gint(r, row, 0);
        if (ord >= 0 && (size_t)ord < n)
            start_info_from_row(r, row, &info[ord]);
    }
    PQclear(r);
    return 0;
}

/* `fast`: the worker made no store_exec_start (the execution is not
 * running) but says when and where the attempt ran: the finish opens and
 * closes the attempt itself, one write instead of two per task. */
static const char finish_sql[] =
    "WITH input AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(ord int, id bigint, "
    "   status text, outcome text, result jsonb, error text, plugin text, state jsonb, "
    "   not_before bigint, host text, pid int, started bigint)), "
    "locked AS (SELECT e.id, e.status AS was, e.attempt, e.scheduled_task_id, e.task_name, "
    "   e.task_type, e.connection_id FROM task_executions e "
    "   WHERE e.id = ANY (ARRAY(SELECT id FROM input)) ORDER BY e.id FOR UPDATE), "
    "todo AS (SELECT DISTINCT ON (l.id) l.*, i.status, i.result, i.error, i.plugin, "
    "   i.state, i.not_before, i.host, i.pid, i.started, "
    "   (l.was <> 'running' AND coalesce(i.started, 0) > 0) AS fast, "
    "   coalesce(i.outcome, CASE i.status WHEN 'completed' THEN 'success' "
    "     WHEN 'failed' THEN 'fail' WHEN 'cancelled' THEN 'cancelled' ELSE 'retry' END) "
    "     AS outcome "
    "   FROM locked l JOIN input i ON i.id = l.id "
    "   WHERE l.was NOT IN " TERMINAL " ORDER BY l.id, i.ord), "
    "upd AS (UPDATE task_executions e SET status = t.status, error_message = t.error, "
    "   result = CASE WHEN t.status = 'completed' THEN NULL ELSE t.result END, "
    "   completed_at = CASE WHEN t.status IN " TERMINAL " THEN now() END, "
    "   cancelled_at = CASE WHEN t.status = 'cancelled' THEN now() ELSE e.cancelled_at END, "
    "   not_before = CASE WHEN t.status = 'scheduled' THEN " TS("t.not_before") " END, "
    "   scheduled_at = CASE WHEN t.status = 'scheduled' THEN now() ELSE e.scheduled_at END, "
    "   attempt = CASE WHEN t.fast THEN e.attempt + 1 ELSE e.attempt END, "
    "   started_at = CASE WHEN t.fast THEN " TS("t.started") " ELSE e.started_at END, "
    "   worker = CASE WHEN t.fast THEN t.host ELSE e.worker END, "
    "   updated_at = now() FROM todo t WHERE e.id = t.id RETURNING e.id), "
    "att AS (UPDATE execution_attempts a SET finished_at = now(), error = t.error, "
    "   outcome = t.outcome FROM todo t WHERE NOT t.fast AND a.execution_id = t.id "
    "   AND a.attempt = t.attempt AND a.finished_at IS NULL), "
    "att_fast AS (INSERT INTO execution_attempts (execution_id, attempt, worker_host, "
    "   worker_pid, started_at, finished_at, outcome, error) "
    "   SELECT id, attempt + 1, host, pid, " TS("started") ", now(), outcome, error "
    "   FROM todo WHERE fast), "
    "tsk AS (UPDATE scheduled_tasks k SET last_run_at = greatest(k.last_run_at, f.started) "
    "   FROM (SELECT scheduled_task_id, max(" TS("started") ") AS started FROM todo "
    "         WHERE fast GROUP BY 1) f WHERE k.id = f.scheduled_task_id), "
    "res AS (INSERT INTO analysis_results (execution_id, scheduled_task_id, task_name, "
    "   connection_id, analysis_type, result) SELECT id, scheduled_task_id, task_name, "
    "   connection_id, task_type, result FROM todo "
    "   WHERE status = 'completed' AND result IS NOT NULL "
    "   ON CONFLICT ON CONSTRAINT analysis_results_execution DO NOTHING), "
    "ps AS (INSERT INTO plugin_state (scheduled_task_id, plugin, state) "
    "   SELECT DISTINCT ON (scheduled_task_id, plugin) scheduled_task_id, plugin, state "
    "   FROM todo WHERE status = 'completed' AND state IS NOT NULL AND plugin IS NOT NULL "
    "   ORDER BY scheduled_task_id, plugin, id DESC "
    "   ON CONFLICT (scheduled_task_id, plugin) DO UPDATE SET state = EXCLUDED.state, "
    "   updated_at = now()) "
    "SELECT i.ord, CASE WHEN u.id IS NOT NULL THEN 0 WHEN l.id IS NOT NULL THEN 1 ELSE 2 END "
    "FROM input i LEFT JOIN upd u ON u.id = i.id LEFT JOIN locked l ON l.id = i.id";

/* Parse a JSON text given to a finish; NULL text gives JSON null. Returns
 * the value or NULL with err naming the execution. */
static json_t *finish_json(const char *text, const char *what, int64_t id, char *err,
                           size_t errlen)
{
    if (!text)
        return json_null();
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        set_err(err, errlen, "execution %lld: the %s is not valid JSON (column %d: %s)",
                (long long)id, what, je.column, je.text);
    return j;
}

static json_t *finish_item_json(const store_finish *f, size_t ord, char *err, size_t errlen)
{
    if (f->status != STORE_COMPLETED && f->status != STORE_FAILED &&
        f->status != STORE_CANCELLED && f->status != STORE_SCHEDULED) {
        set_err(err, errlen, "execution %lld: a finish sets completed, failed, cancelled or "
                             "scheduled, not %s",
                (long long)f->execution_id, store_status_name(f->status));
        return NULL;
    }
    json_t *res = finish_json(f->result_json, "result", f->execution_id, err, errlen);
    json_t *st = res ? finish_json(f->state_json, "plugin state", f->execution_id, err, errlen)
                     : NULL;
    if (!res || !st) {
        json_decref(res);
        return NULL;
    }
    return json_pack("{s:i, s:I, s:s, s:s?, s:o, s:s?, s:s?, s:o, s:I, s:s?, s:i, s:I}", "ord",
                     (int)ord, "id", (json_int_t)f->execution_id, "status",
                     store_status_name(f->status), "outcome", f->outcome, "result", res, "error",
                     f->error, "plugin", f->plugin, "state", st, "not_before",
                     (json_int_t)f->not_before_ms, "host", f->worker_host, "pid",
                     (int)f->worker_pid, "started", (json_int_t)f->started_at_ms);
}

int store_finish_batch(store *s, const store_finish *items, size_t n, store_finish_rc *rc,
                       char *err, size_t errlen)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *it = finish_item_json(&items[i], i, err, errlen);
        if (!it) {
            json_decref(arr);
            return -1;
        }
        json_array_append_new(arr, it);
    }
    char *text = dump(arr);
    json_decref(arr);
    const char *pv[] = {text};
    PGresult *r = run_hot(s, PREP_FINISH, "finishing executions", finish_sql, 1, pv, err, errlen);
    free(text);
    if (!r)
        return -1;
    for (int row = 0; rc && row < PQntuples(r); row++) {
        int ord = gint(r, row, 0);
        if (ord >= 0 && (size_t)ord < n)
            rc[ord] = (store_finish_rc)gint(r, row, 1);
    }
    PQclear(r);
    return 0;
}

int store_exec_finish(store *s, const store_finish *item, char *err, size_t errlen)
{
    store_finish_rc rc = STORE_FINISH_NOT_FOUND;
    if (store_finish_batch(s, item, 1, &rc, err, errlen) < 0)
        return -1;
    return (int)rc;
}

int store_exec_cancel(store *s, int64_t id, const char *reason, char *err, size_t errlen)
{
    char a[24];
    i64s(a, sizeof a, id);
    const char *pv[] = {a, reason ? reason : "cancelled"};
    PGresult *r = run(s, "cancelling an execution",
                      "WITH e AS (UPDATE task_executions SET status = 'cancelled', "
                      "  cancelled_at = now(), completed_at = now(), error_message = $2, "
                      "  updated_at = now() WHERE id = $1 AND status IN " UNFINISHED " "
                      "  RETURNING id, attempt), "
                      "a AS (UPDATE execution_attempts x SET finished_at = now(), "
                      "  outcome = 'cancelled', error = $2 FROM e WHERE x.execution_id = e.id "
                      "  AND x.attempt = e.attempt AND x.finished_at IS NULL) "
                      "SELECT (SELECT count(*) FROM e), "
                      "  EXISTS (SELECT 1 FROM task_executions WHERE id = $1), "
                      "  (SELECT count(pg_notify('" STORE_CHANNEL_CANCEL "', id::text)) FROM e)",
                      2, pv, err, errlen);
    if (!r)
        return -1;
    int cancelled = gint(r, 0, 0);
    bool exists = gbool(r, 0, 1);
    PQclear(r);
    if (!cancelled && !exists)
        return set_err(err, errlen, "execution %lld not found", (long long)id);
    return cancelled ? 1 : 0;
}

int store_exec_redrive(store *s, int64_t id, int64_t *new_id, char *err, size_t errlen)
{
    char a[24];
    i64s(a, sizeof a, id);
    const char *pv[] = {a};
    PGresult *r = run(s, "re-driving an execution",
                      "WITH n AS (INSERT INTO task_executions (scheduled_task_id, task_name, "
                      "  task_type, connection_id, status, trigger, priority, max_attempts, "
                      "  parameters, retry_of) SELECT scheduled_task_id, task_name, task_type, "
                      "  connection_id, 'pending', 'retry', priority, max_attempts, parameters, "
                      "  id FROM task_executions WHERE id = $1 AND status IN " TERMINAL " "
                      "  RETURNING id, pg_notify('" STORE_CHANNEL_EXECUTIONS "', id::text)) "
                      "SELECT (SELECT id FROM n), "
                      "  (SELECT status FROM task_executions WHERE id = $1)",
                      1, pv, err, errlen);
    if (!r)
        return -1;
    int64_t made = gi64(r, 0, 0);
    char *was = gstr(r, 0, 1);
    PQclear(r);
    int rc = 0;
    if (!was) {
        set_err(err, errlen, "execution %lld not found", (long long)id);
        rc = 1;
    } else if (!made) {
        rc = set_err(err, errlen,
                     "execution %lld is %s; only a finished execution (completed, failed, "
                     "cancelled, skipped) can be run again",
                     (long long)id, was);
    } else if (new_id) {
        *new_id = made;
    }
    free(was);
    return rc;
}

int store_task_active(store *s, int64_t task_id, int64_t **ids, size_t *n, char *err,
                      size_t errlen)
{
    char a[24];
    i64s(a, sizeof a, task_id);
    const char *pv[] = {a};
    PGresult *r = run(s, "reading active executions",
                      "SELECT id FROM task_executions WHERE scheduled_task_id = $1 "
                      "AND status IN " UNFINISHED " ORDER BY id",
                      1, pv, err, errlen);
    if (!r)
        return -1;
    *n = (size_t)PQntuples(r);
    *ids = xcalloc(*n ? *n : 1, sizeof **ids);
    for (size_t i = 0; i < *n; i++)
        (*ids)[i] = gi64(r, (int)i, 0);
    PQclear(r);
    return 0;
}

/* FOR UPDATE without SKIP LOCKED, on purpose: a second recoverer waits for
 * the first and then re-checks each row (READ COMMITTED re-evaluates the
 * WHERE on the new row version), finds it `pending` and leaves it: exactly
 * once. SKIP LOCKED would instead miss rows still locked by the transaction
 * of a process that was just killed and not yet rolled back by the server. */
static const char recover_sql[] =
    "WITH cand AS (SELECT id, status AS was FROM task_executions "
    "   WHERE (($1::text IS NULL AND status IN ('queued','running')) "
    "          OR ($1::text IS NOT NULL AND status = 'running' AND worker = $1) "
    "          OR ($2::boolean AND $1::text IS NULL AND status = 'scheduled')) "
    "   ORDER BY id FOR UPDATE), "
    "upd AS (UPDATE task_executions e SET status = 'pending', recovered_at = now(), "
    "   recovered_count = e.recovered_count + 1, updated_at = now() FROM cand c "
    "   WHERE e.id = c.id RETURNING e.id, e.scheduled_task_id, c.was, e.priority, e.attempt, "
    "   e.max_attempts, e.not_before), "
    "att AS (UPDATE execution_attempts a SET finished_at = now(), outcome = 'lost', "
    "   error = 'the worker was lost (crash or kill); recovered at start-up' "
    "   FROM upd u WHERE a.execution_id = u.id AND a.finished_at IS NULL) "
    "SELECT id, scheduled_task_id, was, priority, attempt, max_attempts, " MS("not_before") " "
    "FROM upd ORDER BY priority DESC, id";

int store_recover(store *s, const char *worker_host, bool include_scheduled,
                  store_recovered **out, size_t *n, char *err, size_t errlen)
{
    const char *pv[] = {worker_host, include_scheduled ? "t" : "f"};
    PGresult *r = run(s, "recovering executions", recover_sql, 2, pv, err, errlen);
    if (!r)
        return -1;
    *n = (size_t)PQntuples(r);
    *out = xcalloc(*n ? *n : 1, sizeof **out);
    for (int i = 0; i < (int)*n; i++) {
        store_recovered *x = &(*out)[i];
        x->execution_id = gi64(r, i, 0);
        x->task_id = gi64(r, i, 1);
        store_status_parse(PQgetvalue(r, i, 2), &x->was);
        x->priority = gint(r, i, 3);
        x->attempt = gint(r, i, 4);
        x->max_attempts = gint(r, i, 5);
        x->not_before_ms = gi64(r, i, 6);
    }
    PQclear(r);
    return 0;
}

/* ---- reading executions ------------------------------------------------------------- */

/* The columns exec_from_row() reads, in its order (e: task_executions,
 * r: its analysis_results row, if any). */
#define EXEC_COLS                                                                   \
    "e.id, e.scheduled_task_id, e.task_name, e.task_type, e.connection_id, "        \
    "e.status, e.trigger, e.priority, e.attempt, e.max_attempts, e.worker, "        \
    "e.parameters::text, coalesce(r.result, e.result)::text, e.error_message, "     \
    "e.skipped_reason, " MS("e.scheduled_for") ", " MS("e.not_before") ", "         \
    MS("e.created_at") ", " MS("e.queued_at") ", " MS("e.scheduled_at") ", "        \
    MS("e.started_at") ", " MS("e.completed_at") ", " MS("e.cancelled_at") ", "     \
    MS("e.recovered_at") ", " MS("e.updated_at") ", r.id IS NOT NULL, e.retry_of"

static void exec_from_row(const PGresult *r, int i, store_execution *e)
{
    memset(e, 0, sizeof *e);
    e->id = gi64(r, i, 0);
    e->task_id = gi64(r, i, 1);
    e->task_name = gstr(r, i, 2);
    e->task_type = gstr(r, i, 3);
    e->connection_id = gstr(r, i, 4);
    store_status_parse(PQgetvalue(r, i, 5), &e->status);
    snprintf(e->trigger, sizeof e->trigger, "%s", PQgetvalue(r, i, 6));
    e->priority = gint(r, i, 7);
    e->attempt = gint(r, i, 8);
    e->max_attempts = gint(r, i, 9);
    e->worker = gstr(r, i, 10);
    e->params_json = gstr(r, i, 11);
    e->result_json = gstr(r, i, 12);
    e->error_message = gstr(r, i, 13);
    e->skipped_reason = gstr(r, i, 14);
    int64_t *ts[] = {&e->scheduled_for_ms, &e->not_before_ms,   &e->created_at_ms,
                     &e->queued_at_ms,     &e->scheduled_at_ms, &e->started_at_ms,
                     &e->completed_at_ms,  &e->cancelled_at_ms, &e->recovered_at_ms,
                     &e->updated_at_ms};
    for (int k = 0; k < 10; k++)
        *ts[k] = gi64(r, i, 15 + k);
    e->has_result = gbool(r, i, 25);
    e->retry_of = gi64(r, i, 26);
}

void store_execution_clear(store_execution *e)
{
    if (!e)
        return;
    free(e->task_name);
    free(e->task_type);
    free(e->connection_id);
    free(e->worker);
    free(e->params_json);
    free(e->result_json);
    free(e->error_message);
    free(e->skipped_reason);
    for (size_t i = 0; i < e->n_attempts; i++) {
        free(e->attempts[i].worker_host);
        free(e->attempts[i].outcome);
        free(e->attempts[i].error);
    }
    free(e->attempts);
    memset(e, 0, sizeof *e);
}

void store_executions_free(store_execution *e, size_t n)
{
    for (size_t i = 0; e && i < n; i++)
        store_execution_clear(&e[i]);
    free(e);
}

static int read_attempts(store *s, store_execution *e, const char *const *pv, char *err,
                         size_t errlen)
{
    PGresult *r = run(s, "reading attempts",
                      "SELECT attempt, worker_host, worker_pid, " MS("started_at") ", " MS(
                          "finished_at") ", outcome, error FROM execution_attempts "
                                         "WHERE execution_id = $1 ORDER BY attempt",
                      1, pv, err, errlen);
    if (!r)
        return -1;
    e->n_attempts = (size_t)PQntuples(r);
    e->attempts = xcalloc(e->n_attempts ? e->n_attempts : 1, sizeof *e->attempts);
    for (int i = 0; i < (int)e->n_attempts; i++) {
        store_attempt *a = &e->attempts[i];
        a->attempt = gint(r, i, 0);
        a->worker_host = gstr(r, i, 1);
        a->worker_pid = gint(r, i, 2);
        a->started_at_ms = gi64(r, i, 3);
        a->finished_at_ms = gi64(r, i, 4);
        a->outcome = gstr(r, i, 5);
        a->error = gstr(r, i, 6);
    }
    PQclear(r);
    return 0;
}

int store_exec_get(store *s, int64_t id, store_execution *out, char *err, size_t errlen)
{
    char a[24];
    i64s(a, sizeof a, id);
    const char *pv[] = {a};
    PGresult *r = run(s, "reading an execution",
                      "SELECT " EXEC_COLS " FROM task_executions e "
                      "LEFT JOIN analysis_results r ON r.execution_id = e.id WHERE e.id = $1",
                      1, pv, err, errlen);
    if (!r)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 1;
    }
    exec_from_row(r, 0, out);
    PQclear(r);
    if (read_attempts(s, out, pv, err, errlen) < 0) {
        store_execution_clear(out);
        return -1;
    }
    return 0;
}

int store_task_history(store *s, int64_t task_id, int limit, store_execution **out, size_t *n,
                       char *err, size_t errlen)
{
    char a[24], b[24];
    i64s(a, sizeof a, task_id);
    snprintf(b, sizeof b, "%d", limit > 0 ? limit : 20);
    const char *pv[] = {a, b};
    PGresult *r = run(s, "reading the history",
                      "SELECT " EXEC_COLS " FROM task_executions e "
                      "LEFT JOIN analysis_results r ON r.execution_id = e.id "
                      "WHERE e.scheduled_task_id = $1 ORDER BY e.id DESC LIMIT $2",
                      2, pv, err, errlen);
    if (!r)
        return -1;
    *n = (size_t)PQntuples(r);
    *out = xcalloc(*n ? *n : 1, sizeof **out);
    for (size_t i = 0; i < *n; i++)
        exec_from_row(r, (int)i, &(*out)[i]);
    PQclear(r);
    return 0;
}

/* ---- plugin state ---------------------------------------------------------------------- */

int store_plugin_state_get(store *s, const char *task_name, const char *plugin, char **json,
                           char *err, size_t errlen)
{
    const char *pv[] = {task_name, plugin};
    PGresult *r = run(s, "reading plugin state",
                      "SELECT t.id, p.state::text FROM scheduled_tasks t "
                      "LEFT JOIN plugin_state p ON p.scheduled_task_id = t.id AND p.plugin = $2 "
                      "WHERE t.name = $1",
                      2, pv, err, errlen);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    *json = found ? gstr(r, 0, 1) : NULL;
    PQclear(r);
    if (!found) {
        store_task_not_found(s, task_name, err, errlen);
        return 1;
    }
    return 0;
}

int store_plugin_state_set(store *s, const char *task_name, const char *plugin, const char *json,
                           char *err, size_t errlen)
{
    const char *pv[] = {task_name, plugin, json};
    PGresult *r = run(s, "saving plugin state",
                      "INSERT INTO plugin_state (scheduled_task_id, plugin, state) "
                      "SELECT id, $2, $3::jsonb FROM scheduled_tasks WHERE name = $1 "
                      "ON CONFLICT (scheduled_task_id, plugin) DO UPDATE "
                      "SET state = EXCLUDED.state, updated_at = now() RETURNING 1",
                      3, pv, err, errlen);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    PQclear(r);
    if (!found) {
        store_task_not_found(s, task_name, err, errlen);
        return 1;
    }
    return 0;
}

/* ---- retention ------------------------------------------------------------------------- */

/* Finished executions completed before the cut-off, oldest ids first; the
 * partial index task_executions_finished serves the range. */
static const char retain_age_sql[] =
    "WITH v AS (SELECT id FROM task_executions WHERE status IN " TERMINAL " "
    "   AND completed_at < now() - $1::bigint * interval '1 millisecond' "
    "   ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) "
    "DELETE FROM task_executions e USING v WHERE e.id = v.id";

/* Per task, the id of its $1-th newest finished execution (an index scan of
 * at most $1 entries on task_executions_history), then what is older. */
static const char retain_count_sql[] =
    "WITH cut AS (SELECT t.id AS task, (SELECT e.id FROM task_executions e "
    "   WHERE e.scheduled_task_id = t.id AND e.status IN " TERMINAL " "
    "   ORDER BY e.id DESC OFFSET $1::bigint - 1 LIMIT 1) AS keep_from "
    "   FROM scheduled_tasks t), "
    "v AS (SELECT e.id FROM cut JOIN task_executions e ON e.scheduled_task_id = cut.task "
    "   AND e.id < cut.keep_from WHERE e.status IN " TERMINAL " ORDER BY e.id LIMIT $2 "
    "   FOR UPDATE OF e SKIP LOCKED) "
    "DELETE FROM task_executions e USING v WHERE e.id = v.id";

static const char retain_results_sql[] =
    "DELETE FROM analysis_results WHERE id IN (SELECT id FROM analysis_results "
    "   WHERE execution_id IS NULL "
    "   AND created_at < now() - $1::bigint * interval '1 millisecond' ORDER BY id LIMIT $2)";

/* Run `sql` (params: the limit, the batch size) until a statement deletes
 * fewer rows than a batch. Adds the rows to *total. Returns 0 or -1. */
static int delete_batches(store *s, const char *sql, long long limit, int batch, long *total,
                          int *statements, char *err, size_t errlen)
{
    char a[24], b[24];
    snprintf(a, sizeof a, "%lld", limit);
    snprintf(b, sizeof b, "%d", batch);
    const char *pv[] = {a, b};
    for (;;) {
        PGresult *r = run(s, "deleting old history", sql, 2, pv, err, errlen);
        if (!r)
            return -1;
        int n = atoi(PQcmdTuples(r));
        PQclear(r);
        (*statements)++;
        *total += n;
        if (n < batch)
            return 0;
    }
}

int store_retention(store *s, int64_t max_age_ms, int per_task, int batch,
                    store_retention_stats *stats, char *err, size_t errlen)
{
    store_retention_stats st = {0};
    if (batch <= 0)
        batch = 1000;
    if (max_age_ms > 0 &&
        (delete_batches(s, retain_age_sql, max_age_ms, batch, &st.executions, &st.statements, err,
                        errlen) < 0 ||
         delete_batches(s, retain_results_sql, max_age_ms, batch, &st.results, &st.statements,
                        err, errlen) < 0))
        return -1;
    if (per_task > 0 && delete_batches(s, retain_count_sql, per_task, batch, &st.executions,
                                       &st.statements, err, errlen) < 0)
        return -1;
    if (stats)
        *stats = st;
    return 0;
}

/* ---- worker helpers (batched; see store.h) --------------------------------- */

/* Run an UPDATE over `ids` whose result is one count. Returns it, or -1. */
static int ids_update(store *s, const char *what, const char *sql, const int64_t *ids, size_t n,
                      char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    char *arr = id_array(ids, n);
    const char *pv[] = {arr};
    PGresult *r = run(s, what, sql, 1, pv, err, errlen);
    free(arr);
    if (!r)
        return -1;
    int count = gint(r, 0, 0);
    PQclear(r);
    return count;
}

int store_exec_unstart(store *s, const int64_t *ids, size_t n, char *err, size_t errlen)
{
    return ids_update(
        s, "giving back started executions",
        "WITH e AS (UPDATE task_executions SET status = 'queued', attempt = attempt - 1, "
        "  started_at = NULL, worker = NULL, updated_at = now() "
        "  WHERE id = ANY($1::bigint[]) AND status = 'running' RETURNING id, attempt + 1 AS a), "
        "d AS (DELETE FROM execution_attempts x USING e WHERE x.execution_id = e.id "
        "  AND x.attempt = e.a AND x.finished_at IS NULL) "
        "SELECT count(*) FROM e",
        ids, n, err, errlen);
}

int store_exec_reopen(store *s, const int64_t *ids, size_t n, char *err, size_t errlen)
{
    return ids_update(
        s, "reopening failed executions",
        "WITH e AS (UPDATE task_executions SET status = 'queued', completed_at = NULL, "
        "  queued_at = now(), max_attempts = greatest(max_attempts, attempt + 1), "
        "  updated_at = now() WHERE id = ANY($1::bigint[]) AND status = 'failed' RETURNING id) "
        "SELECT count(*) FROM e",
        ids, n, err, errlen);
}

int store_plugin_states_get(store *s, const int64_t *task_ids, const char *const *plugins,
                            size_t n, char **json, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        json[i] = NULL;
    if (n == 0)
        return 0;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:i, s:I, s:s?}", "ord", (int)i, "tid",
                                             (json_int_t)task_ids[i], "plugin", plugins[i]));
    char *text = dump(arr);
    json_decref(arr);
    const char *pv[] = {text};
    PGresult *r = run_hot(s, PREP_STATES, "reading plugin state",
                      "SELECT i.ord, p.state::text FROM jsonb_to_recordset($1::jsonb) "
                      " AS i(ord int, tid bigint, plugin text) "
                      "JOIN plugin_state p ON p.scheduled_task_id = i.tid AND p.plugin = i.plugin",
                      1, pv, err, errlen);
    free(text);
    if (!r)
        return -1;
    for (int row = 0; row < PQntuples(r); row++) {
        int ord = gint(r, row, 0);
        if (ord >= 0 && (size_t)ord < n && !json[ord])
            json[ord] = gstr(r, row, 1);
    }
    PQclear(r);
    return 0;
}
