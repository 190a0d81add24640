/*
 * rp_collect.c - from the analytics store's rows to the report model.
 *
 * Everything time-related is left to PostgreSQL: the session's TimeZone is
 * set (transaction-local) to the report's zone, so day boundaries are the
 * zone's midnights (23- and 25-hour days included), `date`/`from`/`to` are
 * parsed by the server, and every time in the model is printed in that
 * zone as ISO-8601 with its offset.
 *
 * An execution belongs to the period in which it started (or, never
 * started, in which it was scheduled or created). Its duration is
 * completed_at - started_at. The analyses shown are the latest stored
 * result of each task in the period; report results themselves are left
 * out.
 */
#include "rp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_FMT "YYYY-MM-DD\"T\"HH24:MI:SSOF"

/* The executions of the period: $1 start, $2 end, $3 connection or NULL. */
#define EXEC_CTE                                                                            \
    "WITH e AS (SELECT id, coalesce(connection_id, '') AS conn, task_name, task_type, "    \
    "status, attempt, error_message, coalesce(started_at, scheduled_for, created_at) AS at, " \
    "extract(epoch FROM completed_at - started_at) * 1000 AS ms FROM task_executions "     \
    "WHERE coalesce(started_at, scheduled_for, created_at) >= $1::timestamptz "             \
    "AND coalesce(started_at, scheduled_for, created_at) < $2::timestamptz "               \
    "AND ($3::text IS NULL OR connection_id = $3::text)) "

static const char aggregate_sql[] =
    EXEC_CTE
    "SELECT GROUPING(conn, task_name, task_type), conn, task_name, task_type, count(*), "
    "count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'), "
    "count(*) FILTER (WHERE status = 'cancelled'), count(*) FILTER (WHERE status = 'skipped'), "
    "count(*) FILTER (WHERE status IN ('pending','queued','scheduled','running')), "
    "round(min(ms)), round(avg(ms)), "
    "round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric), round(max(ms)) "
    "FROM e GROUP BY GROUPING SETS ((conn, task_name, task_type), (conn), ()) "
    "ORDER BY 1 DESC, 2, 3";

static const char timeline_sql[] =
    EXEC_CTE
    ", w AS (SELECT extract(epoch FROM $1::timestamptz) AS s, "
    "extract(epoch FROM $2::timestamptz) AS f) "
    "SELECT k, to_char(to_timestamp(w.s + (k - 1) * (w.f - w.s) / 24), $4), "
    "count(x.id) FILTER (WHERE x.status = 'completed'), "
    "count(x.id) FILTER (WHERE x.status = 'failed'), "
    "count(x.id) FILTER (WHERE x.status NOT IN ('completed','failed')) "
    "FROM generate_series(1, 24) AS k CROSS JOIN w "
    "LEFT JOIN e x ON width_bucket(extract(epoch FROM x.at), w.s, w.f, 24) = k "
    "GROUP BY k, w.s, w.f ORDER BY k";

static const char failures_sql[] =
    EXEC_CTE
    "SELECT conn, task_name, task_type, id, to_char(at, '" TS_FMT "'), attempt, round(ms), "
    "coalesce(error_message, (SELECT a.error FROM execution_attempts a WHERE "
    "a.execution_id = e.id AND a.error IS NOT NULL ORDER BY a.attempt DESC LIMIT 1), "
    "'(no message)') FROM e WHERE status = 'failed' ORDER BY conn, at, id";

/* The latest result of each task in the period, chosen on ids first so
 * that only those results are read and cast (results can be large).
 * `projection` is what is read of each: all of it, or (previous period) only
 * the figures compared. */
#define RESULTS_SQL(projection)                                                                \
    "SELECT coalesce(r.connection_id, ''), coalesce(r.task_name, r.analysis_type), "          \
    "r.analysis_type, r.execution_id, to_char(r.created_at, '" TS_FMT "'), " projection       \
    " FROM analysis_results r JOIN (SELECT DISTINCT ON (coalesce(connection_id, ''), "         \
    "coalesce(task_name, analysis_type)) id FROM analysis_results "                            \
    "WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz "                    \
    "AND ($3::text IS NULL OR connection_id = $3::text) AND analysis_type <> 'report' "        \
    "ORDER BY coalesce(connection_id, ''), coalesce(task_name, analysis_type), "               \
    "created_at DESC, id DESC) l USING (id) ORDER BY 1, 2"

static const char results_sql[] = RESULTS_SQL("r.result::text");
static const char prev_results_sql[] =
    RESULTS_SQL("jsonb_build_object('status', r.result->'status', "
                "'queries', jsonb_build_object('total', r.result#>'{queries,total}'), "
                "'errors', jsonb_build_object('total', r.result#>'{errors,total}'))::text");

static const char day_sql[] =
    "WITH d AS (SELECT coalesce($1::date, current_date - 1) AS d) "
    "SELECT to_char(d::timestamptz, '" TS_FMT "'), to_char((d + 1)::timestamptz, '" TS_FMT
    "'), to_char((d - 1)::timestamptz, '" TS_FMT "'), to_char(d, 'YYYY-MM-DD'), "
    "to_char(d, 'YYYY-MM-DD'), true, to_char(now(), '" TS_FMT "') FROM d";

static const char range_sql[] =
    "WITH p AS (SELECT $1::timestamptz AS s, $2::timestamptz AS f) "
    "SELECT to_char(s, '" TS_FMT "'), to_char(f, '" TS_FMT "'), "
    "to_char(to_timestamp(2 * extract(epoch FROM s) - extract(epoch FROM f)), '" TS_FMT "'), "
    "to_char(s, 'YYYY-MM-DD HH24:MI') || ' to ' || to_char(f, 'YYYY-MM-DD HH24:MI'), "
    "to_char(s, 'YYYY-MM-DD\"T\"HH24MI') || '_' || to_char(f, 'YYYY-MM-DD\"T\"HH24MI'), "
    "f > s, to_char(now(), '" TS_FMT "') FROM p";

typedef struct period {
    char start[48], end[48], prev_start[48];
    char label[80], file_label[64], generated_at[48];
    bool day;
} period;

/* Run `sql` with text params; NULL (err filled: "what: server message")
 * unless it returned rows. */
static PGresult *query(PGconn *c, const char *what, const char *sql, int n,
                       const char *const *params, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(err, errlen, "%s: %s", what, m ? m : PQerrorMessage(c));
    err[strcspn(err, "\n")] = '\0';
    PQclear(r);
    return NULL;
}

static const char *val(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static json_t *jint(PGresult *r, int row, int col)
{
    const char *v = val(r, row, col);
    return v ? json_integer(strtoll(v, NULL, 10)) : json_null();
}

static json_t *jstr_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

static bool is_date(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    return true;
}

static int set_timezone(PGconn *c, const char *tz, char *err, size_t errlen)
{
    const char *p[1] = {tz};
    PGresult *r = query(c, "timezone", "SELECT set_config('TimeZone', $1, true)", 1, p, err,
                        errlen);
    if (!r) {
        snprintf(err, errlen, "timezone: \"%s\" is not a time zone PostgreSQL knows "
                 "(use a name such as UTC or Europe/Paris)", tz);
        return -1;
    }
    PQclear(r);
    return 0;
}

static int resolve_period(PGconn *c, const rp_request *req, period *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (req->date && (req->from || req->to)) {
        snprintf(err, errlen, "params: give either date or from/to, not both");
        return -1;
    }
    if (!req->from != !req->to) {
        snprintf(err, errlen, "params: from and to go together (got only %s)",
                 req->from ? "from" : "to");
        return -1;
    }
    if (req->date && !is_date(req->date)) {
        snprintf(err, errlen, "date: expected YYYY-MM-DD, got \"%s\"", req->date);
        return -1;
    }
    const char *params[2] = {req->from ? req->from : req->date, req->to};
    PGresult *r = req->from ? query(c, "from/to", range_sql, 2, params, err, errlen)
                            : query(c, "date", day_sql, 1, params, err, errlen);
    if (!r) {
        if (req->from)
            snprintf(err, errlen, "from/to: \"%s\" to \"%s\" is not a period (expected ISO-8601 "
                     "times such as 2026-11-21T00:00:00Z)", req->from, req->to);
        else if (req->date)
            snprintf(err, errlen, "date: \"%s\" is not a valid date (expected YYYY-MM-DD)",
                     req->date);
        return -1;
    }
    snprintf(p->start, sizeof p->start, "%s", PQgetvalue(r, 0, 0));
    snprintf(p->end, sizeof p->end, "%s", PQgetvalue(r, 0, 1));
    snprintf(p->prev_start, sizeof p->prev_start, "%s", PQgetvalue(r, 0, 2));
    snprintf(p->label, sizeof p->label, "%s", PQgetvalue(r, 0, 3));
    snprintf(p->file_label, sizeof p->file_label, "%s", PQgetvalue(r, 0, 4));
    snprintf(p->generated_at, sizeof p->generated_at, "%s", PQgetvalue(r, 0, 6));
    bool ordered = PQgetvalue(r, 0, 5)[0] == 't';
    p->day = req->from == NULL;
    PQclear(r);
    if (!ordered) {
        snprintf(err, errlen, "from/to: to (%s) must be after from (%s)", req->to, req->from);
        return -1;
    }
    return 0;
}

/* ---- executions ----------------------------------------------------------- */

/* {executions, by_status{...}, duration_ms{min,avg,p95,max}} of one aggregate row. */
static json_t *stats_of(PGresult *r, int row)
{
    json_t *st = json_pack("{s:o, s:o, s:o, s:o, s:o}", "completed", jint(r, row, 5), "failed",
                           jint(r, row, 6), "cancelled", jint(r, row, 7), "skipped",
                           jint(r, row, 8), "unfinished", jint(r, row, 9));
    json_t *d = json_pack("{s:o, s:o, s:o, s:o}", "min", jint(r, row, 10), "avg",
                          jint(r, row, 11), "p95", jint(r, row, 12), "max", jint(r, row, 13));
    return json_pack("{s:o, s:o, s:o}", "executions", jint(r, row, 4), "by_status", st,
                     "duration_ms", d);
}

/* "lvl|conn|task" -> stats, for matching the previous period's rows. */
static json_t *stats_index(PGresult *r)
{
    json_t *idx = json_object();
    for (int i = 0; i < PQntuples(r); i++) {
        char key[1024];
        snprintf(key, sizeof key, "%s|%s|%s", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                 PQgetvalue(r, i, 2));
        json_object_set_new(idx, key, stats_of(r, i));
    }
    return idx;
}

static json_t *count_change(json_int_t cur, json_int_t prev)
{
    return json_pack("{s:I, s:I, s:I}", "current", cur, "previous", prev, "delta", cur - prev);
}

static json_t *duration_change(const json_t *cur, const json_t *prev)
{
    json_t *o = json_pack("{s:O, s:O}", "current", cur ? cur : json_null(), "previous",
                          prev ? prev : json_null());
    if (json_is_integer(cur) && json_is_integer(prev)) {
        json_int_t c = json_integer_value(cur), p = json_integer_value(prev);
        json_object_set_new(o, "delta", json_integer(c - p));
        json_object_set_new(o, "delta_pct",
                            p > 0 ? json_real((double)(c - p) * 100.0 / (double)p) : json_null());
    } else {
        json_object_set_new(o, "delta", json_null());
        json_object_set_new(o, "delta_pct", json_null());
    }
    return o;
}

/* The change of `cur` against `prev` (NULL: nothing ran then). */
static json_t *change_of(const json_t *cur, const json_t *prev)
{
    const json_t *cs = json_object_get(cur, "by_status"), *ps = json_object_get(prev, "by_status");
    const json_t *cd = json_object_get(cur, "duration_ms"),
                 *pd = json_object_get(prev, "duration_ms");
    return json_pack("{s:o, s:o, s:o, s:o}", "executions",
                     count_change(rp_int(cur, "executions"), rp_int(prev, "executions")),
                     "failed", count_change(rp_int(cs, "failed"), rp_int(ps, "failed")), "avg_ms",
                     duration_change(json_object_get(cd, "avg"), json_object_get(pd, "avg")),
                     "p95_ms",
                     duration_change(json_object_get(cd, "p95"), json_object_get(pd, "p95")));
}

static json_t *find_connection(json_t *conns, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(conns, i, c)
    {
        const char *n = json_string_value(json_object_get(c, "connection"));
        if (strcmp(n ? n : "", name) == 0)
            return c;
    }
    c = json_pack("{s:o, s:I, s:{s:I,s:I,s:I,s:I,s:I}, s:{s:n,s:n,s:n,s:n}, s:[], s:[], s:[]}",
                  "connection", jstr_or_null(name), "executions", (json_int_t)0, "by_status",
                  "completed", (json_int_t)0, "failed", (json_int_t)0, "cancelled", (json_int_t)0,
                  "skipped", (json_int_t)0, "unfinished", (json_int_t)0, "duration_ms", "min",
                  "avg", "p95", "max", "tasks", "failures", "analyses");
    json_array_append_new(conns, c);
    return c;
}

/* Fill model.summary and model.connections[].{stats, tasks} from the
 * aggregate rows of this period and of the previous one. */
static void add_aggregates(json_t *model, PGresult *cur, PGresult *prev)
{
    json_t *pidx = stats_index(prev);
    json_t *conns = json_object_get(model, "connections");
    for (int i = 0; i < PQntuples(cur); i++) {
        int lvl = atoi(PQgetvalue(cur, i, 0));
        char key[1024];
        snprintf(key, sizeof key, "%s|%s|%s", PQgetvalue(cur, i, 0), PQgetvalue(cur, i, 1),
                 PQgetvalue(cur, i, 2));
        json_t *st = stats_of(cur, i);
        json_object_set_new(st, "change", change_of(st, json_object_get(pidx, key)));
        if (lvl == 7) {
            json_object_update(json_object_get(model, "summary"), st);
        } else if (lvl == 3) {
            json_object_update(find_connection(conns, PQgetvalue(cur, i, 1)), st);
        } else {
            json_t *c = find_connection(conns, PQgetvalue(cur, i, 1));
            json_object_set_new(st, "task", json_string(PQgetvalue(cur, i, 2)));
            json_object_set_new(st, "type", json_string(PQgetvalue(cur, i, 3)));
            json_array_append(json_object_get(c, "tasks"), st);
        }
        json_decref(st);
    }
    json_decref(pidx);
}

static void add_failures(json_t *model, PGresult *r, int max_per_connection)
{
    json_t *conns = json_object_get(model, "connections");
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *list = json_object_get(find_connection(conns, PQgetvalue(r, i, 0)), "failures");
        if ((int)json_array_size(list) >= max_per_connection)
            continue;
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:o, s:s, s:o, s:o, s:s}", "task", PQgetvalue(r, i, 1),
                            "type", PQgetvalue(r, i, 2), "execution_id", jint(r, i, 3), "at",
                            PQgetvalue(r, i, 4), "attempts", jint(r, i, 5), "duration_ms",
                            jint(r, i, 6), "error", PQgetvalue(r, i, 7)));
    }
}

static json_t *timeline_of(PGconn *c, const char *const *params, const period *p, char *err,
                           size_t errlen)
{
    const char *tp[4] = {params[0], params[1], params[2], p->day ? "HH24:MI" : "MM-DD HH24:MI"};
    PGresult *r = query(c, "timeline", timeline_sql, 4, tp, err, errlen);
    if (!r)
        return NULL;
    json_t *buckets = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(buckets,
                              json_pack("{s:s, s:o, s:o, s:o}", "label", PQgetvalue(r, i, 1),
                                        "completed", jint(r, i, 2), "failed", jint(r, i, 3),
                                        "other", jint(r, i, 4)));
    PQclear(r);
    return json_pack("{s:i, s:o}", "buckets_per_period", RP_BUCKETS, "buckets", buckets);
}

/* ---- analyses --------------------------------------------------------------- */

/* The first `top` elements of array `arr`, each reduced to `keys`. */
static json_t *top_of(const json_t *arr, int top, const char *const *keys)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if ((int)i >= top)
            break;
        json_t *o = json_object();
        for (const char *const *k = keys; *k; k++) {
            json_t *v = json_object_get(e, *k);
            if (v)
                json_object_set(o, *k, v);
        }
        json_array_append_new(out, o);
    }
    return out;
}

static json_t *log_analysis_highlights(const json_t *res, int top)
{
    static const char *const slow_keys[] = {"query", "count", "max_ms", "avg_ms", "p95_ms",
                                            "total_ms", "database", NULL};
    static const char *const class_keys[] = {"message_class", "level", "count", "sqlstate", NULL};
    const json_t *q = json_object_get(res, "queries"), *e = json_object_get(res, "errors");
    const json_t *in = json_object_get(res, "input");
    return json_pack("{s:I, s:O?, s:O?, s:I, s:f, s:I, s:o, s:o, s:o}", "entries",
                     rp_int(in, "entries"), "first_ts", json_object_get(in, "first_ts"),
                     "last_ts", json_object_get(in, "last_ts"), "queries_total",
                     rp_int(q, "total"), "query_duration_ms",
                     json_number_value(json_object_get(q, "total_duration_ms")), "errors_total",
                     rp_int(e, "total"), "slowest",
                     top_of(json_object_get(q, "top_slowest"), top, slow_keys), "most_time",
                     top_of(json_object_get(q, "top_by_total_duration"), top, slow_keys),
                     "error_classes", top_of(json_object_get(e, "classes"), top, class_keys));
}

/* Every query's status; for those with alerts, the alerts (each with the
 * row behind it). */
static json_t *custom_sql_highlights(const json_t *res)
{
    static const char *const alert_keys[] = {"status", "threshold", "column", "value",
                                             "row_number", "row", NULL};
    json_t *queries = json_array();
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(res, "queries"), i, q)
    {
        json_t *o = json_pack("{s:s, s:s}", "name", rp_str(q, "name"), "status",
                              rp_str(q, "status"));
        const char *fields[] = {"row_count", "error", "message", "alert_count",
                                "alerts_truncated", NULL};
        for (const char **f = fields; *f; f++)
            if (json_object_get(q, *f))
                json_object_set(o, *f, json_object_get(q, *f));
        json_object_set_new(o, "alerts", top_of(json_object_get(q, "alerts"), 1 << 30, alert_keys));
        /* the column order of the rows (the store's jsonb sorts object keys) */
        json_t *cols = json_array();
        size_t j;
        json_t *col;
        json_array_foreach(json_object_get(q, "columns"), j, col)
            if (json_is_string(json_object_get(col, "name")))
                json_array_append(cols, json_object_get(col, "name"));
        json_object_set_new(o, "columns", cols);
        json_array_append_new(queries, o);
    }
    return json_pack("{s:s, s:O?, s:o}", "status", rp_str(res, "status"), "summary",
                     json_object_get(res, "summary"), "queries", queries);
}

/* What the report keeps of one stored result, by analysis type. */
static json_t *highlights(const char *type, const json_t *res, int top)
{
    if (strcmp(type, "log_analysis") == 0)
        return json_pack("{s:o}", "log_analysis", log_analysis_highlights(res, top));
    if (strcmp(type, "custom_sql") == 0)
        return json_pack("{s:o}", "custom_sql", custom_sql_highlights(res));
    json_t *keys = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)res, k, v) json_array_append_new(keys, json_string(k));
    json_t *o = json_pack("{s:o}", "keys", keys);
    if (json_is_string(json_object_get(res, "status")))
        json_object_set(o, "status", json_object_get(res, "status"));
    return json_pack("{s:o}", "other", o);
}

/* The few figures compared with the previous period's latest result. */
static json_t *analysis_figures(const json_t *h)
{
    const json_t *la = json_object_get(h, "log_analysis"), *cs = json_object_get(h, "custom_sql");
    if (la)
        return json_pack("{s:I, s:I}", "queries_total", rp_int(la, "queries_total"),
                         "errors_total", rp_int(la, "errors_total"));
    if (cs)
        return json_pack("{s:s}", "status", rp_str(cs, "status"));
    return json_object();
}

static json_t *results_index(PGresult *r, int top)
{
    json_t *idx = json_object();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *res = json_loads(PQgetvalue(r, i, 5), 0, NULL);
        json_t *h = highlights(PQgetvalue(r, i, 2), res, top);
        char key[1024];
        snprintf(key, sizeof key, "%s|%s", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
        json_object_set_new(idx, key, analysis_figures(h));
        json_decref(h);
        json_decref(res);
    }
    return idx;
}

static void add_analyses(json_t *model, PGresult *cur, PGresult *prev, int top)
{
    json_t *pidx = results_index(prev, top);
    json_t *conns = json_object_get(model, "connections");
    for (int i = 0; i < PQntuples(cur); i++) {
        json_t *res = json_loads(PQgetvalue(cur, i, 5), 0, NULL);
        if (!res)
            continue;
        char key[1024];
        snprintf(key, sizeof key, "%s|%s", PQgetvalue(cur, i, 0), PQgetvalue(cur, i, 1));
        json_t *a = json_pack("{s:s, s:s, s:o, s:s}", "task", PQgetvalue(cur, i, 1), "type",
                              PQgetvalue(cur, i, 2), "execution_id", jint(cur, i, 3),
                              "created_at", PQgetvalue(cur, i, 4));
        json_object_update_new(a, highlights(PQgetvalue(cur, i, 2), res, top));
        json_object_set(a, "previous", json_object_get(pidx, key) ? json_object_get(pidx, key)
                                                                   : json_null());
        json_array_append_new(json_object_get(find_connection(conns, PQgetvalue(cur, i, 0)),
                                              "analyses"),
                              a);
        json_decref(res);
    }
    json_decref(pidx);
}

/* ---- the model ------------------------------------------------------------- */

static json_t *model_head(const rp_request *req, const period *p)
{
    json_t *summary = json_pack("{s:I}", "executions", (json_int_t)0);
    return json_pack("{s:i, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:b}, s:{s:s, s:s}, "
                     "s:{s:o, s:s}, s:o, s:[]}",
                     "schema_version", RP_SCHEMA_VERSION, "generator",
                     "pgreviewer report " RP_VERSION, "title", req->title ? req->title : "",
                     "generated_at", p->generated_at, "period", "start", p->start, "end", p->end,
                     "timezone", req->timezone, "label", p->label, "file_label", p->file_label,
                     "day", p->day, "previous_period", "start", p->prev_start, "end", p->start,
                     "scope", "connection", jstr_or_null(req->connection), "timezone",
                     req->timezone, "summary", summary, "connections");
}

/* The host hands the store over inside a read-only transaction; should it
 * not, open one: the time zone is set transaction-locally and every query
 * must see the same snapshot. Returns true when the transaction is ours. */
static bool own_transaction(PGconn *c)
{
    if (PQtransactionStatus(c) != PQTRANS_IDLE)
        return false;
    PQclear(PQexec(c, "BEGIN READ ONLY"));
    return true;
}

static json_t *collect(PGconn *c, const rp_request *req, char *err, size_t errlen);

json_t *rp_collect(PGconn *c, const rp_request *req, char *err, size_t errlen)
{
    bool own = own_transaction(c);
    json_t *model = collect(c, req, err, errlen);
    if (own)
        PQclear(PQexec(c, "ROLLBACK")); /* read only: nothing to keep */
    return model;
}

static json_t *collect(PGconn *c, const rp_request *req, char *err, size_t errlen)
{
    period p;
    if (set_timezone(c, req->timezone, err, errlen) < 0 ||
        resolve_period(c, req, &p, err, errlen) < 0)
        return NULL;
    const char *cur[3] = {p.start, p.end, req->connection};
    const char *prev[3] = {p.prev_start, p.start, req->connection};
    PGresult *agg = NULL, *pagg = NULL, *fail = NULL, *res = NULL, *pres = NULL;
    json_t *model = NULL, *timeline = NULL;
    if (!(agg = query(c, "executions", aggregate_sql, 3, cur, err, errlen)) ||
        !(pagg = query(c, "previous executions", aggregate_sql, 3, prev, err, errlen)) ||
        !(fail = query(c, "failures", failures_sql, 3, cur, err, errlen)) ||
        !(res = query(c, "results", results_sql, 3, cur, err, errlen)) ||
        !(pres = query(c, "previous results", prev_results_sql, 3, prev, err, errlen)) ||
        !(timeline = timeline_of(c, cur, &p, err, errlen)))
        goto done;
    model = model_head(req, &p);
    add_aggregates(model, agg, pagg);
    add_failures(model, fail, req->max_failures);
    add_analyses(model, res, pres, req->top);
    json_t *summary = json_object_get(model, "summary");
    json_object_set_new(summary, "nothing_ran",
                        json_boolean(rp_int(summary, "executions") == 0));
    json_object_set_new(summary, "analyses", json_integer(PQntuples(res)));
    json_object_set_new(model, "timeline", timeline);
    timeline = NULL;
done:
    PQclear(agg);
    PQclear(pagg);
    PQclear(fail);
    PQclear(res);
    PQclear(pres);
    json_decref(timeline);
    return model;
}
