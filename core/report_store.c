/*
 * report_store.c - see report_store.h.
 */
#include "report_store.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const formats[] = {"json", "markdown", "html"};

static int exec_simple(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        set_err(err, errlen, "reports: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

static int run_params(PGconn *c, const char *what, const char *sql, int n,
                      const char *const *params, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        set_err(err, errlen, "reports: %s: %s", what, PQerrorMessage(c));
        err[strcspn(err, "\n")] = '\0';
    }
    PQclear(r);
    return ok ? 0 : -1;
}

/* The body of one format as text (malloc'ed), or NULL when absent. */
static char *body_of(const json_t *reports, const char *format)
{
    const json_t *v = json_object_get(reports, format);
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_object(v) || json_is_array(v))
        return json_dumps(v, JSON_INDENT(2));
    return NULL;
}

static int insert_all(PGconn *c, const char *exec_id, const json_t *result, char *err,
                      size_t errlen)
{
    const json_t *period = json_object_get(result, "period");
    const json_t *reports = json_object_get(result, "reports");
    const json_t *scope = json_object_get(result, "scope");
    char *scope_text = json_is_object(scope) ? json_dumps(scope, JSON_COMPACT) : xstrdup("{}");
    int n = 0;
    if (exec_id && run_params(c, "replacing", "DELETE FROM reports WHERE execution_id = $1", 1,
                              (const char *const[]){exec_id}, err, errlen) < 0)
        n = -1;
    for (size_t i = 0; n >= 0 && i < 3; i++) {
        char *body = body_of(reports, formats[i]);
        if (!body)
            continue;
        const char *p[6] = {exec_id, json_string_value(json_object_get(period, "start")),
                            json_string_value(json_object_get(period, "end")), scope_text,
                            formats[i], body};
        n = run_params(c, "inserting",
                       "INSERT INTO reports (execution_id, period_start, period_end, scope, "
                       "format, body) VALUES ($1, $2, $3, $4, $5, $6)",
                       6, p, err, errlen) < 0
                ? -1
                : n + 1;
        free(body);
    }
    free(scope_text);
    return n;
}

int report_store_from_result(store *s, int64_t execution_id, const json_t *result, char *err,
                             size_t errlen)
{
    const json_t *period = json_object_get(result, "period");
    if (!json_is_object(json_object_get(result, "reports")) ||
        !json_is_string(json_object_get(period, "start")) ||
        !json_is_string(json_object_get(period, "end")))
        return 0;
    PGconn *c = store_conn(s);
    bool own = PQtransactionStatus(c) == PQTRANS_IDLE;
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)execution_id);
    if (own && exec_simple(c, "BEGIN", err, errlen) < 0)
        return -1;
    int n = insert_all(c, execution_id > 0 ? id : NULL, result, err, errlen);
    if (own) {
        if (n < 0)
            PQclear(PQexec(c, "ROLLBACK"));
        else if (exec_simple(c, "COMMIT", err, errlen) < 0)
            n = -1;
    }
    return n;
}

int report_store_from_result_text(store *s, int64_t execution_id, const char *result_json,
                                  char *err, size_t errlen)
{
    if (!result_json || !strstr(result_json, "\"reports\""))
        return 0;
    json_error_t je;
    json_t *doc = json_loads(result_json, 0, &je);
    if (!doc)
        return set_err(err, errlen, "reports: execution %lld: the result is not JSON: %s",
                       (long long)execution_id, je.text);
    int n = report_store_from_result(s, execution_id, doc, err, errlen);
    json_decref(doc);
    return n;
}

int report_store_find(store *s, const char *date, const char *connection, const char *format,
                      char **body, char *err, size_t errlen)
{
    static const char sql[] =
        "WITH r AS (SELECT id, body, created_at, period_start AT TIME ZONE z AS ls, "
        "period_end AT TIME ZONE z AS le FROM reports, "
        "coalesce(scope->>'timezone', 'UTC') AS z WHERE format = $2 "
        "AND CASE WHEN $3::text IS NULL THEN scope->>'connection' IS NULL "
        "ELSE scope->>'connection' = $3::text END) "
        "SELECT body FROM r WHERE ls::date = $1::date "
        "ORDER BY (ls::time = '00:00' AND le = ls + interval '1 day') DESC, created_at DESC, "
        "id DESC LIMIT 1";
    const char *p[3] = {date, format, connection};
    PGresult *r = PQexecParams(store_conn(s), sql, 3, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        set_err(err, errlen, "reports: %s", PQerrorMessage(store_conn(s)));
        err[strcspn(err, "\n")] = '\0';
        PQclear(r);
        return -1;
    }
    int rc = PQntuples(r) > 0 ? 0 : 1;
    *body = rc == 0 ? xstrdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return rc;
}
