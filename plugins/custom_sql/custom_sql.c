/*
 * custom_sql.c - the custom_sql plugin: user SQL checks run read-only with
 * timeouts and a row limit, and thresholds that turn rows into
 * ok / warning / critical (README.md beside this file is the reference).
 *
 * One run:
 *   1. parse the params (a mistake: PGR_FAIL, the message names the key);
 *   2. take the host's connection (none: PGR_RETRY with the host's error);
 *   3. BEGIN READ ONLY (or BEGIN when read_only is false) - unless the host
 *      already holds a transaction open (the reserved connection `store`),
 *      which is then used inside a savepoint rolled back at the end - and
 *      SET LOCAL lock_timeout, DateStyle and bytea_output, so nothing
 *      outlives the run on the host's connection;
 *   4. each query in its own savepoint, with SET LOCAL statement_timeout
 *      (capped so that it ends before the task's own timeout): a query
 *      that fails is rolled back to it and the next one runs. Queries are
 *      sent with PQsendQueryParams - the extended protocol, which refuses a
 *      second statement in the text instead of running it - and read in
 *      single-row mode, so a query that returns millions of rows costs
 *      max_rows rows of memory, not millions; every row is still counted
 *      and checked against the thresholds;
 *   5. COMMIT, and the result document (schema_version 1) is set. The
 *      outcome is PGR_SUCCESS even when checks are critical: the status is
 *      data. A connection lost on the way is PGR_RETRY.
 */
#include <libpq-fe.h>
#include <pgreviewer/plugin.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "csql.h"

/* SQLSTATEs the messages are shaped for. */
#define SQLSTATE_SYNTAX "42601"
#define SQLSTATE_READ_ONLY "25006"
#define SQLSTATE_CANCELED "57014"
#define SQLSTATE_LOCK_NOT_AVAILABLE "55P03"

typedef struct type_name {
    Oid oid;
    char *name;
} type_name;

/* Everything one run needs, on the stack of custom_sql_run. */
typedef struct run_ctx {
    const pgr_host *host;
    pgr_task *task;
    PGconn *conn;
    const csql_params *params;
    int server_version;
    int64_t statement_timeout_ms; /* of the current query: capped by the task's time left */
    bool joined;                  /* running inside the host's transaction (store) */
    bool conn_lost;
    char *lost_reason;            /* what the query that lost the connection said */
    type_name *types; /* cache of format_type() answers for this run */
    size_t n_types;
} run_ctx;

/* What one query produced while its rows were read. */
typedef struct query_out {
    json_t *rows;     /* at most max_rows row objects */
    json_t *critical; /* the rows (or the count) behind each critical, at most max_rows */
    json_t *warning;  /* ... and behind each warning */
    long long n_alerts; /* before the cut */
    char **keys;      /* the key of each column in a row object */
    Oid *oids;
    int n_cols;
    long long row_count;
    int *th_col;      /* per threshold: its column index, -1 for a row count */
    csql_status status;
    char *error;      /* set when the query failed: status unknown */
    char sqlstate[6];
} query_out;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *xstrdup_plugin(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

static char *vformat(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    return s;
}

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

/* The first line of libpq's current error message, copied. */
static char *conn_error(PGconn *conn)
{
    char *m = xstrdup_plugin(PQerrorMessage(conn));
    m[strcspn(m, "\n")] = '\0';
    return m;
}

/* Run a command that returns no rows. Returns 0, or -1 with a copied
 * message in *err (may be NULL). */
static int exec_command(PGconn *conn, const char *sql, char **err)
{
    PGresult *r = PQexec(conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok && err)
        *err = conn_error(conn);
    PQclear(r);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* Columns and their type names                                             */

static const char *type_name_of(run_ctx *c, Oid oid)
{
    for (size_t i = 0; i < c->n_types; i++)
        if (c->types[i].oid == oid)
            return c->types[i].name;
    char oidtext[16];
    snprintf(oidtext, sizeof oidtext, "%u", oid);
    const char *values[1] = {oidtext};
    PGresult *r = PQexecParams(c->conn, "SELECT pg_catalog.format_type($1::oid, NULL)", 1, NULL,
                               values, NULL, NULL, 0);
    char *name = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                     ? xstrdup_plugin(PQgetvalue(r, 0, 0))
                     : format("oid %u", oid);
    PQclear(r);
    type_name *t = realloc(c->types, (c->n_types + 1) * sizeof *t);
    if (!t)
        abort();
    c->types = t;
    c->types[c->n_types].oid = oid;
    c->types[c->n_types].name = name;
    return c->types[c->n_types++].name;
}

/* Keys of row objects: the column names, with a duplicate name made unique
 * by a suffix ("count", "count_2"). */
static void read_columns(query_out *o, const PGresult *r)
{
    o->n_cols = PQnfields(r);
    o->keys = calloc((size_t)o->n_cols + 1, sizeof *o->keys);
    o->oids = calloc((size_t)o->n_cols + 1, sizeof *o->oids);
    if (!o->keys || !o->oids)
        abort();
    for (int i = 0; i < o->n_cols; i++) {
        const char *name = PQfname(r, i);
        int dup = 1;
        for (int j = 0; j < i; j++)
            if (strcmp(PQfname(r, j), name) == 0)
                dup++;
        o->keys[i] = dup > 1 ? format("%s_%d", name, dup) : xstrdup_plugin(name);
        o->oids[i] = PQftype(r, i);
    }
}

static int column_index(const query_out *o, const char *name)
{
    for (int i = 0; i < o->n_cols; i++)
        if (strcmp(o->keys[i], name) == 0)
            return i;
    return -1;
}

/* Map each column threshold to its column; a threshold on a column the
 * result does not have fails the query. */
static int bind_thresholds(query_out *o, const csql_query *q)
{
    o->th_col = calloc(q->n_thresholds + 1, sizeof *o->th_col);
    if (!o->th_col)
        abort();
    for (size_t i = 0; i < q->n_thresholds; i++) {
        const char *col = q->thresholds[i].column;
        o->th_col[i] = col ? column_index(o, col) : -1;
        if (col && o->th_col[i] < 0) {
            char list[512] = "";
            for (int k = 0; k < o->n_cols; k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "",
                         o->keys[k]);
            o->error = format("query %s: threshold on column \"%s\", which the result does not "
                              "have (columns: %s)",
                              q->name, col, o->n_cols ? list : "none");
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Rows and thresholds                                                      */

static json_t *row_object(const query_out *o, const PGresult *r, int row)
{
    json_t *obj = json_object();
    for (int i = 0; i < o->n_cols; i++) {
        json_t *v = PQgetisnull(r, row, i)
                        ? json_null()
                        : csql_value_to_json(o->oids[i], PQgetvalue(r, row, i),
                                             (size_t)PQgetlength(r, row, i));
        json_object_set_new(obj, o->keys[i], v);
    }
    return obj;
}

static void raise_status(csql_status *s, csql_status level)
{
    if (level > *s)
        *s = level;
}

/* Keep an alert, at most max_rows per level: criticals are never crowded
 * out by warnings. */
static void add_alert(query_out *o, const csql_params *p, csql_status level, json_t *alert)
{
    json_t *list = level == CSQL_CRITICAL ? o->critical : o->warning;
    o->n_alerts++;
    if ((int64_t)json_array_size(list) < p->max_rows)
        json_array_append(list, alert);
    json_decref(alert);
}

/* Criticals first, then warnings, max_rows in all. */
static json_t *alerts_of(const query_out *o, const csql_params *p)
{
    json_t *all = json_array();
    json_t *lists[2] = {o->critical, o->warning};
    for (int k = 0; k < 2; k++) {
        size_t i;
        json_t *a;
        json_array_foreach(lists[k], i, a)
        {
            if ((int64_t)json_array_size(all) < p->max_rows)
                json_array_append(all, a);
        }
    }
    return all;
}

/* Check one row against the column thresholds; list it behind each
 * warning or critical it reaches. */
static void check_row(query_out *o, const csql_query *q, const csql_params *p, json_t *row)
{
    char why[300], desc[300];
    for (size_t i = 0; i < q->n_thresholds && !o->error; i++) {
        if (o->th_col[i] < 0)
            continue;
        const csql_threshold *t = &q->thresholds[i];
        json_t *v = json_object_get(row, o->keys[o->th_col[i]]);
        csql_status level = csql_threshold_level(t, v, why, sizeof why);
        if (level == CSQL_UNKNOWN) {
            o->error = format("query %s: column %s: %s", q->name, t->column, why);
            return;
        }
        if (level == CSQL_OK)
            continue;
        raise_status(&o->status, level);
        add_alert(o, p, level,
                  json_pack("{s:s, s:s, s:s, s:O, s:I, s:O}", "status", csql_status_name(level),
                            "threshold", csql_threshold_describe(t, level, desc, sizeof desc),
                            "column", t->column, "value", v, "row_number",
                            (json_int_t)o->row_count, "row", row));
    }
}

static void check_row_count(query_out *o, const csql_query *q, const csql_params *p)
{
    char why[300], desc[300];
    json_t *count = json_integer(o->row_count);
    for (size_t i = 0; i < q->n_thresholds; i++) {
        if (o->th_col[i] >= 0)
            continue;
        const csql_threshold *t = &q->thresholds[i];
        csql_status level = csql_threshold_level(t, count, why, sizeof why);
        if (level != CSQL_WARNING && level != CSQL_CRITICAL)
            continue;
        raise_status(&o->status, level);
        add_alert(o, p, level,
                  json_pack("{s:s, s:s, s:I}", "status", csql_status_name(level), "threshold",
                            csql_threshold_describe(t, level, desc, sizeof desc), "value",
                            (json_int_t)o->row_count));
    }
    json_decref(count);
}

/* One result of single-row mode: the first one brings the columns. */
static void take_rows(query_out *o, const csql_query *q, const csql_params *p,
                      const PGresult *r)
{
    if (!o->keys) {
        read_columns(o, r);
        bind_thresholds(o, q);
    }
    for (int i = 0; i < PQntuples(r) && !o->error; i++) {
        json_t *row = row_object(o, r, i);
        o->row_count++;
        check_row(o, q, p, row);
        if ((int64_t)json_array_size(o->rows) < p->max_rows)
            json_array_append(o->rows, row);
        json_decref(row);
    }
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

static char *query_error_message(const run_ctx *c, const csql_query *q, const PGresult *r)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (!primary) {
        char *m = conn_error(c->conn);
        char *full = format("query %s: %s", q->name, m);
        free(m);
        return full;
    }
    state = state ? state : "";
    if (strcmp(state, SQLSTATE_SYNTAX) == 0 && strstr(primary, "multiple commands"))
        return format("query %s: only one statement per query is allowed (the server said: %s)",
                      q->name, primary);
    if (strcmp(state, SQLSTATE_READ_ONLY) == 0 && c->joined)
        return format("query %s: refused because the connection's transaction is read-only (the "
                      "host holds connection %s read-only): %s",
                      q->name, c->host->connection_id(c->task), primary);
    if (strcmp(state, SQLSTATE_READ_ONLY) == 0)
        return format("query %s: refused because the task is read-only (read_only: true): %s",
                      q->name, primary);
    if (strcmp(state, SQLSTATE_CANCELED) == 0 && strstr(primary, "statement timeout") &&
        c->statement_timeout_ms != c->params->statement_timeout_ms)
        return format("query %s: %s (%lldms: what was left of the task's timeout)", q->name,
                      primary, (long long)c->statement_timeout_ms);
    if (strcmp(state, SQLSTATE_CANCELED) == 0 && strstr(primary, "statement timeout"))
        return format("query %s: %s (statement_timeout %lldms)", q->name, primary,
                      (long long)c->statement_timeout_ms);
    if (strcmp(state, SQLSTATE_LOCK_NOT_AVAILABLE) == 0 && strstr(primary, "lock timeout"))
        return format("query %s: %s (lock_timeout %lldms)", q->name, primary,
                      (long long)c->params->lock_timeout_ms);
    return format("query %s: %s", q->name, primary);
}

/* ------------------------------------------------------------------------ */
/* One query                                                                */

static void read_results(run_ctx *c, const csql_query *q, query_out *o)
{
    PGresult *r;
    while ((r = PQgetResult(c->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (o->error) {
            /* drain: a failed threshold or an earlier error keeps the first message */
        } else if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
            take_rows(o, q, c->params, r);
        } else if (st == PGRES_COMMAND_OK) {
            o->row_count = strtoll(PQcmdTuples(r), NULL, 10);
        } else if (st == PGRES_EMPTY_QUERY) {
            o->error = format("query %s: the sql holds no statement", q->name);
        } else {
            const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            snprintf(o->sqlstate, sizeof o->sqlstate, "%s", s ? s : "");
            o->error = query_error_message(c, q, r);
        }
        PQclear(r);
    }
}

/* Send the query and read it; o->error is set when it failed. */
static void execute(run_ctx *c, const csql_query *q, query_out *o)
{
    if (!PQsendQueryParams(c->conn, q->sql, q->n_values, NULL, (const char *const *)q->values,
                           NULL, NULL, 0)) {
        char *m = conn_error(c->conn);
        o->error = format("query %s: %s", q->name, m);
        free(m);
        return;
    }
    PQsetSingleRowMode(c->conn);
    read_results(c, q, o);
    if (!o->keys && !o->error) {
        o->th_col = calloc(q->n_thresholds + 1, sizeof *o->th_col);
        for (size_t i = 0; o->th_col && i < q->n_thresholds; i++)
            o->th_col[i] = -1;
        for (size_t i = 0; i < q->n_thresholds && !o->error; i++)
            if (q->thresholds[i].column)
                o->error = format("query %s: threshold on column \"%s\", but the statement "
                                  "returns no columns",
                                  q->name, q->thresholds[i].column);
    }
    if (!o->error)
        check_row_count(o, q, c->params);
}

/* Why a query does not run on this server, or NULL when it does. */
static char *skip_reason(run_ctx *c, const csql_query *q)
{
    if (q->min_version && c->server_version < q->min_version)
        return format("skipped: needs server version %d or later, the server is %d",
                      q->min_version, c->server_version);
    if (q->max_version && c->server_version > q->max_version)
        return format("skipped: runs on server versions up to %d, the server is %d",
                      q->max_version, c->server_version);
    if (!q->requires_extension)
        return NULL;
    const char *values[1] = {q->requires_extension};
    PGresult *r = PQexecParams(c->conn, "SELECT 1 FROM pg_catalog.pg_extension WHERE extname = $1",
                               1, NULL, values, NULL, NULL, 0);
    char *why = NULL;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char *m = conn_error(c->conn);
        why = format("cannot tell whether extension %s is installed: %s", q->requires_extension, m);
        free(m);
    } else if (PQntuples(r) == 0) {
        why = format("skipped: extension %s is not installed in database %s",
                     q->requires_extension, PQdb(c->conn));
    }
    PQclear(r);
    return why;
}

static void query_out_free(query_out *o)
{
    json_decref(o->rows);
    json_decref(o->critical);
    json_decref(o->warning);
    for (int i = 0; o->keys && i < o->n_cols; i++)
        free(o->keys[i]);
    free(o->keys);
    free(o->oids);
    free(o->th_col);
    free(o->error);
}

/* The JSON of one query once it ran. */
static json_t *query_document(run_ctx *c, const csql_query *q, query_out *o, int64_t ms)
{
    json_t *d = json_pack("{s:s, s:s, s:I}", "name", q->name, "status",
                          csql_status_name(o->status), "duration_ms", (json_int_t)ms);
    if (o->error) {
        json_object_set_new(d, "error", json_string(o->error));
        if (o->sqlstate[0])
            json_object_set_new(d, "sqlstate", json_string(o->sqlstate));
        return d;
    }
    json_t *cols = json_array();
    for (int i = 0; i < o->n_cols; i++)
        json_array_append_new(cols, json_pack("{s:s, s:s}", "name", o->keys[i], "type",
                                              type_name_of(c, o->oids[i])));
    json_object_set_new(d, "columns", cols);
    json_object_set(d, "rows", o->rows);
    json_object_set_new(d, "row_count", json_integer(o->row_count));
    json_object_set_new(d, "truncated", json_boolean(o->row_count > c->params->max_rows));
    json_t *alerts = alerts_of(o, c->params);
    json_object_set_new(d, "alert_count", json_integer(o->n_alerts));
    json_object_set_new(d, "alerts_truncated",
                        json_boolean((long long)json_array_size(alerts) < o->n_alerts));
    json_object_set_new(d, "alerts", alerts);
    return d;
}

/* The statement timeout for the next query: the task's, capped so that the
 * query ends a little before the task's own timeout (a tenth of what is
 * left, 50 ms to 2 s), leaving time to report the other queries. */
static int64_t statement_timeout_now(run_ctx *c)
{
    int64_t stmt = c->params->statement_timeout_ms;
    int64_t left = c->host->remaining_ms(c->task);
    if (left < 0)
        return stmt;
    int64_t margin = left / 10 < 50 ? 50 : left / 10 > 2000 ? 2000 : left / 10;
    int64_t cap = left - margin > 1 ? left - margin : 1;
    return stmt == 0 || cap < stmt ? cap : stmt;
}

/* Open the query's savepoint and set its statement timeout. */
static int open_savepoint(run_ctx *c, char **err)
{
    char sql[128];
    c->statement_timeout_ms = statement_timeout_now(c);
    snprintf(sql, sizeof sql, "SAVEPOINT custom_sql_query; SET LOCAL statement_timeout = %lld",
             (long long)c->statement_timeout_ms);
    return exec_command(c->conn, sql, err);
}

static json_t *not_run(const csql_query *q, const char *status, const char *key,
                       const char *text)
{
    return json_pack("{s:s, s:s, s:s}", "name", q->name, "status", status, key, text);
}

/* Inside the query's savepoint: the gates, the query, the names of its
 * column types (looked up while the savepoint still guards the
 * transaction). Returns a skip reason (caller frees) or NULL when it ran. */
static char *guarded_query(run_ctx *c, const csql_query *q, query_out *o)
{
    char *skip = skip_reason(c, q);
    if (skip)
        return skip;
    execute(c, q, o);
    for (int i = 0; !o->error && i < o->n_cols; i++)
        type_name_of(c, o->oids[i]);
    return NULL;
}

static json_t *run_query(run_ctx *c, const csql_query *q)
{
    if (c->host->cancelled(c->task) || c->conn_lost)
        return not_run(q, "unknown", "error",
                       c->conn_lost ? "not run: the connection was lost"
                                    : "not run: the task was cancelled");
    query_out o = {.status = CSQL_OK, .rows = json_array(),
                   .critical = json_array(), .warning = json_array()};
    char *err = NULL, *skip = NULL;
    int64_t start = now_ms();
    if (open_savepoint(c, &err) < 0) {
        o.error = format("query %s: cannot set a savepoint: %s", q->name, err);
        free(err);
    } else {
        skip = guarded_query(c, q, &o);
        /* keep what a query wrote (read_only: false) unless something failed */
        bool failed = skip || o.error || PQtransactionStatus(c->conn) == PQTRANS_INERROR;
        exec_command(c->conn,
                     failed ? "ROLLBACK TO SAVEPOINT custom_sql_query"
                            : "RELEASE SAVEPOINT custom_sql_query",
                     NULL);
    }
    if (PQstatus(c->conn) != CONNECTION_OK && !c->conn_lost) {
        c->conn_lost = true;
        c->lost_reason = o.error ? xstrdup_plugin(o.error) : conn_error(c->conn);
    }
    json_t *d;
    if (skip) {
        bool skipped = strncmp(skip, "skipped:", 8) == 0;
        d = not_run(q, skipped ? "skipped" : "unknown", skipped ? "message" : "error", skip);
        free(skip);
    } else {
        if (o.error)
            o.status = CSQL_UNKNOWN;
        d = query_document(c, q, &o, now_ms() - start);
    }
    query_out_free(&o);
    return d;
}

/* ------------------------------------------------------------------------ */
/* The run                                                                  */

/* Open our transaction (or join the host's) and set its limits. Returns 0,
 * 1 when the transaction is the host's (do not end it), or -1 with a
 * message in *err. */
static int begin(run_ctx *c, char **err)
{
    int joined = 0;
    PGTransactionStatusType ts = PQtransactionStatus(c->conn);
    if (ts == PQTRANS_INTRANS) {
        /* The host's transaction (store): our settings live in a savepoint
         * that finish() rolls back, leaving it as it was. */
        joined = 1;
        if (exec_command(c->conn, "SAVEPOINT custom_sql_run", err) < 0)
            return -1;
    } else if (ts != PQTRANS_IDLE) {
        *err = xstrdup_plugin("the connection is not idle (a transaction in error or a command "
                              "in progress)");
        return -1;
    } else if (exec_command(c->conn, c->params->read_only ? "BEGIN READ ONLY" : "BEGIN", err) <
               0) {
        return -1;
    }
    c->joined = joined;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SET LOCAL lock_timeout = %lld; SET LOCAL DateStyle = 'ISO, YMD'; "
             "SET LOCAL bytea_output = 'hex'",
             (long long)c->params->lock_timeout_ms);
    if (exec_command(c->conn, sql, err) < 0)
        return -1;
    return joined;
}

static json_t *summary_of(json_t *queries, csql_status *worst)
{
    json_t *sum = json_pack("{s:i, s:i, s:i, s:i, s:i}", "ok", 0, "warning", 0, "critical", 0,
                            "unknown", 0, "skipped", 0);
    static const csql_status all[] = {CSQL_SKIPPED, CSQL_OK, CSQL_WARNING, CSQL_UNKNOWN,
                                      CSQL_CRITICAL};
    *worst = CSQL_OK;
    size_t i;
    json_t *q;
    json_array_foreach(queries, i, q)
    {
        const char *s = json_string_value(json_object_get(q, "status"));
        json_object_set_new(sum, s, json_integer(json_integer_value(json_object_get(sum, s)) + 1));
        for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
            if (strcmp(s, csql_status_name(all[k])) == 0)
                raise_status(worst, all[k]);
    }
    return sum;
}

/* The message that goes with the outcome: "critical: locks=critical, x=unknown". */
static void set_summary_message(run_ctx *c, json_t *queries, csql_status worst)
{
    char buf[1024];
    size_t n = (size_t)snprintf(buf, sizeof buf, "%s", csql_status_name(worst));
    const char *sep = ": ";
    size_t i;
    json_t *q;
    json_array_foreach(queries, i, q)
    {
        const char *s = json_string_value(json_object_get(q, "status"));
        if (strcmp(s, "ok") == 0 || strcmp(s, "skipped") == 0 || n >= sizeof buf)
            continue;
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s=%s", sep,
                              json_string_value(json_object_get(q, "name")), s);
        sep = ", ";
    }
    c->host->set_message(c->task, buf);
}

static pgr_outcome finish(run_ctx *c, json_t *queries, bool end_tx)
{
    if (end_tx && !c->conn_lost)
        exec_command(c->conn, "COMMIT", NULL);
    else if (!c->conn_lost)
        exec_command(c->conn,
                     "ROLLBACK TO SAVEPOINT custom_sql_run; RELEASE SAVEPOINT custom_sql_run", NULL);
    csql_status worst;
    json_t *summary = summary_of(queries, &worst);
    json_t *doc = json_pack("{s:i, s:s, s:i, s:s, s:b, s:I, s:I, s:I, s:o, s:o}",
                            "schema_version", 1, "status", csql_status_name(worst),
                            "server_version", c->server_version, "database", PQdb(c->conn),
                            "read_only", c->params->read_only || c->joined, "statement_timeout_ms",
                            (json_int_t)c->params->statement_timeout_ms, "lock_timeout_ms",
                            (json_int_t)c->params->lock_timeout_ms, "max_rows",
                            (json_int_t)c->params->max_rows, "summary", summary, "queries",
                            json_incref(queries));
    char *text = json_dumps(doc, JSON_COMPACT);
    c->host->set_result(c->task, text);
    free(text);
    json_decref(doc);
    if (c->conn_lost) {
        pgr_messagef(c->host, c->task, "connection lost: %s", c->lost_reason);
        return PGR_RETRY;
    }
    if (c->host->cancelled(c->task)) {
        c->host->set_message(c->task, "cancelled: the task's timeout or a shutdown stopped it");
        return PGR_RETRY;
    }
    set_summary_message(c, queries, worst);
    return PGR_SUCCESS;
}

static pgr_outcome run_all(run_ctx *c)
{
    char *err = NULL;
    int joined = begin(c, &err);
    if (joined < 0) {
        pgr_messagef(c->host, c->task, "cannot start the transaction: %s", err);
        free(err);
        return PGR_RETRY;
    }
    json_t *queries = json_array();
    for (size_t i = 0; i < c->params->n_queries; i++) {
        const csql_query *q = &c->params->queries[i];
        c->host->progress(c->task, (double)i / (double)c->params->n_queries, q->name);
        json_array_append_new(queries, run_query(c, q));
    }
    pgr_outcome out = finish(c, queries, joined == 0);
    json_decref(queries);
    return out;
}

static pgr_outcome custom_sql_run(const pgr_host *host, pgr_task *task, void *data)
{
    (void)data;
    char err[1024];
    csql_params params;
    if (csql_params_parse(host->params_json(task), &params, err, sizeof err) < 0) {
        pgr_messagef(host, task, "invalid params: %s", err);
        return PGR_FAIL;
    }
    const char *cerr = NULL;
    PGconn *conn = (PGconn *)host->connection(task, &cerr);
    if (!conn) {
        pgr_messagef(host, task, "no connection: %s", cerr ? cerr : "(no reason given)");
        csql_params_free(&params);
        return PGR_RETRY;
    }
    run_ctx c = {.host = host,
                 .task = task,
                 .conn = conn,
                 .params = &params,
                 .server_version = PQserverVersion(conn)};
    pgr_outcome out = run_all(&c);
    free(c.lost_reason);
    for (size_t i = 0; i < c.n_types; i++)
        free(c.types[i].name);
    free(c.types);
    csql_params_free(&params);
    return out;
}

static const char *const task_types[] = {"custom_sql", NULL};

static const pgr_plugin custom_sql_plugin = {
    .head = PGR_PLUGIN_HEAD,
    .name = "custom_sql",
    .version = "1.0.0",
    .description = "User SQL checks, read-only with timeouts and row limits, with thresholds",
    .task_types = task_types,
    .run = custom_sql_run,
};

PGR_PLUGIN_EXPORT(custom_sql_plugin)
