/*
 * csql_params.c - the params of a custom_sql task, checked and parsed.
 *
 * The manifest (custom_sql.yaml) checks the top-level keys and their types
 * when the configuration is checked; what it cannot describe - the shape
 * of each query and threshold - is checked here, at run time, and a
 * mistake fails the task permanently (PGR_FAIL) with a message that names
 * the query and the key, e.g. "queries[1] (locks): thresholds[0]: warning:
 * \"100\" does not start with an operator (...)".
 */
#include "csql.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort(); /* out of memory in a plugin run: nothing useful to report */
    return d;
}

static bool key_known(const char *key, const char *const *known)
{
    for (; *known; known++)
        if (strcmp(key, *known) == 0)
            return true;
    return false;
}

/* Refuse keys not in `known`; `where` prefixes the message. */
static int check_keys(const json_t *obj, const char *const *known, const char *where, char *err,
                      size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (key_known(key, known))
            continue;
        char list[256] = "";
        for (const char *const *k = known; *k; k++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                     k == known ? "" : ", ", *k);
        snprintf(err, errlen, "%s: unknown key \"%s\" (known: %s)", where, key, list);
        return -1;
    }
    return 0;
}

int csql_parse_duration(const json_t *v, int64_t *ms)
{
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return -1;
        *ms = json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    long long n = strtoll(s, &end, 10);
    while (*end == ' ')
        end++;
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"min", 60000}, {"m", 60000},
                 {"h", 3600000}, {"d", 86400000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (n > INT64_MAX / units[i].ms)
                return -1;
            *ms = n * units[i].ms;
            return 0;
        }
    }
    return -1;
}

/* A server version as PostgreSQL's server_version_num: an integer as it
 * is, or a text "13", "13.2", "9.6", "9.6.3". For an upper bound (`upper`)
 * a text without a minor means "any minor of it": "12" -> 129999. */
static int parse_version(const json_t *v, bool upper, int *out)
{
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0 || json_integer_value(v) > 9999999)
            return -1;
        *out = (int)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    int a = -1, b = -1, c = -1, n = 0;
    if (sscanf(json_string_value(v), "%d%n.%d%n.%d%n", &a, &n, &b, &n, &c, &n) < 1)
        return -1;
    if (a < 0 || json_string_value(v)[n] != '\0')
        return -1;
    if (a >= 10) {
        if (c >= 0)
            return -1;
        *out = a * 10000 + (b >= 0 ? b : (upper ? 9999 : 0));
    } else {
        if (b < 0)
            return -1;
        *out = a * 10000 + b * 100 + (c >= 0 ? c : (upper ? 99 : 0));
    }
    return 0;
}

static int parse_cond(const json_t *v, csql_cond *c, const char *where, const char *level,
                      char *err, size_t errlen)
{
    char why[256];
    if (!v)
        return 0;
    if (!json_is_string(v)) {
        snprintf(err, errlen,
                 "%s: %s: expected a condition such as \"> 100\" (quote it in YAML), got %s",
                 where, level, json_is_number(v) ? "a number" : "another type");
        return -1;
    }
    if (csql_cond_parse(json_string_value(v), c, why, sizeof why) < 0) {
        snprintf(err, errlen, "%s: %s: %s", where, level, why);
        return -1;
    }
    return 0;
}

static int parse_threshold(const json_t *t, csql_threshold *out, const char *where, char *err,
                           size_t errlen)
{
    static const char *const keys[] = {"column", "rows", "warning", "critical", NULL};
    if (!json_is_object(t)) {
        snprintf(err, errlen, "%s: expected a mapping such as {column: age_s, warning: \"> 60\"}",
                 where);
        return -1;
    }
    if (check_keys(t, keys, where, err, errlen) < 0)
        return -1;
    const json_t *col = json_object_get(t, "column"), *rows = json_object_get(t, "rows");
    if ((col != NULL) == (rows != NULL && json_is_true(rows))) {
        snprintf(err, errlen, "%s: set either column: NAME or rows: true", where);
        return -1;
    }
    if (col && (!json_is_string(col) || !*json_string_value(col))) {
        snprintf(err, errlen, "%s: column: expected a column name", where);
        return -1;
    }
    if (!json_object_get(t, "warning") && !json_object_get(t, "critical")) {
        snprintf(err, errlen, "%s: set warning, critical or both", where);
        return -1;
    }
    out->column = col ? dup_str(json_string_value(col)) : NULL;
    if (parse_cond(json_object_get(t, "warning"), &out->warning, where, "warning", err, errlen) <
            0 ||
        parse_cond(json_object_get(t, "critical"), &out->critical, where, "critical", err,
                   errlen) < 0)
        return -1;
    return 0;
}

static int parse_thresholds(const json_t *v, csql_query *q, const char *where, char *err,
                            size_t errlen)
{
    char w[300];
    if (!v || json_is_null(v))
        return 0;
    if (json_is_object(v)) {
        q->thresholds = calloc(1, sizeof *q->thresholds);
        if (!q->thresholds)
            abort();
        q->n_thresholds = 1;
        snprintf(w, sizeof w, "%s: thresholds", where);
        return parse_threshold(v, q->thresholds, w, err, errlen);
    }
    if (!json_is_array(v)) {
        snprintf(err, errlen, "%s: thresholds: expected a list of {column|rows, warning, critical}",
                 where);
        return -1;
    }
    q->thresholds = calloc(json_array_size(v) + 1, sizeof *q->thresholds);
    if (!q->thresholds)
        abort();
    q->n_thresholds = json_array_size(v);
    for (size_t i = 0; i < q->n_thresholds; i++) {
        snprintf(w, sizeof w, "%s: thresholds[%zu]", where, i);
        if (parse_threshold(json_array_get(v, i), &q->thresholds[i], w, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* A bound parameter as text: strings as they are, numbers and booleans
 * as SQL reads them, null as SQL NULL, arrays and objects as JSON. */
static char *param_text(const json_t *v)
{
    char buf[64];
    if (json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return dup_str(json_string_value(v));
    if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        return dup_str(buf);
    }
    if (json_is_real(v)) {
        snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
        return dup_str(buf);
    }
    if (json_is_boolean(v))
        return dup_str(json_is_true(v) ? "true" : "false");
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        abort();
    return s;
}

static int parse_values(const json_t *v, csql_query *q, const char *where, char *err,
                        size_t errlen)
{
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v)) {
        snprintf(err, errlen, "%s: params: expected a list of values for $1, $2, ...", where);
        return -1;
    }
    q->n_values = (int)json_array_size(v);
    q->values = calloc((size_t)q->n_values + 1, sizeof *q->values);
    if (!q->values)
        abort();
    for (int i = 0; i < q->n_values; i++)
        q->values[i] = param_text(json_array_get(v, (size_t)i));
    return 0;
}

static int parse_versions(const json_t *o, csql_query *q, const char *where, char *err,
                          size_t errlen)
{
    const json_t *min = json_object_get(o, "min_server_version");
    const json_t *max = json_object_get(o, "max_server_version");
    if (min && parse_version(min, false, &q->min_version) < 0) {
        snprintf(err, errlen,
                 "%s: min_server_version: expected a version such as 130000, \"13\" or \"9.6\"",
                 where);
        return -1;
    }
    if (max && parse_version(max, true, &q->max_version) < 0) {
        snprintf(err, errlen,
                 "%s: max_server_version: expected a version such as 129999, \"12\" or \"9.6\"",
                 where);
        return -1;
    }
    return 0;
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

static int parse_query(const json_t *o, size_t index, csql_query *q, char *err, size_t errlen)
{
    static const char *const keys[] = {"name",       "sql",
                                       "params",     "min_server_version",
                                       "max_server_version", "requires_extension",
                                       "thresholds", NULL};
    char where[200];
    snprintf(where, sizeof where, "queries[%zu]", index);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "%s: expected a mapping {name, sql, ...}", where);
        return -1;
    }
    const json_t *name = json_object_get(o, "name"), *sql = json_object_get(o, "sql");
    if (!json_is_string(name) || !*json_string_value(name)) {
        snprintf(err, errlen, "%s: name: required, a non-empty string", where);
        return -1;
    }
    q->name = dup_str(json_string_value(name));
    snprintf(where, sizeof where, "queries[%zu] (%s)", index, q->name);
    if (check_keys(o, keys, where, err, errlen) < 0)
        return -1;
    if (!json_is_string(sql) || blank(json_string_value(sql))) {
        snprintf(err, errlen, "%s: sql: required, a non-empty string", where);
        return -1;
    }
    q->sql = dup_str(json_string_value(sql));
    const json_t *ext = json_object_get(o, "requires_extension");
    if (ext && (!json_is_string(ext) || !*json_string_value(ext))) {
        snprintf(err, errlen, "%s: requires_extension: expected an extension name", where);
        return -1;
    }
    q->requires_extension = ext ? dup_str(json_string_value(ext)) : NULL;
    if (parse_values(json_object_get(o, "params"), q, where, err, errlen) < 0 ||
        parse_versions(o, q, where, err, errlen) < 0 ||
        parse_thresholds(json_object_get(o, "thresholds"), q, where, err, errlen) < 0)
        return -1;
    return 0;
}

static int parse_queries(const json_t *arr, csql_params *p, char *err, size_t errlen)
{
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        snprintf(err, errlen, "queries: expected a non-empty list of {name, sql, ...}");
        return -1;
    }
    p->queries = calloc(json_array_size(arr), sizeof *p->queries);
    if (!p->queries)
        abort();
    p->n_queries = json_array_size(arr);
    for (size_t i = 0; i < p->n_queries; i++) {
        if (parse_query(json_array_get(arr, i), i, &p->queries[i], err, errlen) < 0)
            return -1;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(p->queries[j].name, p->queries[i].name) == 0) {
                snprintf(err, errlen, "queries[%zu]: name \"%s\" is already used by queries[%zu]",
                         i, p->queries[i].name, j);
                return -1;
            }
        }
    }
    return 0;
}

static int parse_limits(const json_t *o, csql_params *p, char *err, size_t errlen)
{
    const char *names[2] = {"statement_timeout", "lock_timeout"};
    int64_t *dst[2] = {&p->statement_timeout_ms, &p->lock_timeout_ms};
    for (int i = 0; i < 2; i++) {
        const json_t *v = json_object_get(o, names[i]);
        if (v && csql_parse_duration(v, dst[i]) < 0) {
            snprintf(err, errlen,
                     "%s: expected milliseconds (an integer) or a duration such as \"500ms\", "
                     "\"5s\", \"2min\", \"1h\"",
                     names[i]);
            return -1;
        }
    }
    const json_t *max = json_object_get(o, "max_rows");
    if (max && (!json_is_integer(max) || json_integer_value(max) < 0)) {
        snprintf(err, errlen, "max_rows: expected an integer of at least 0");
        return -1;
    }
    if (max)
        p->max_rows = json_integer_value(max);
    const json_t *ro = json_object_get(o, "read_only");
    if (ro && !json_is_boolean(ro)) {
        snprintf(err, errlen, "read_only: expected true or false");
        return -1;
    }
    if (ro)
        p->read_only = json_is_true(ro);
    return 0;
}

int csql_params_parse(const char *json, csql_params *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->statement_timeout_ms = 30000;
    p->lock_timeout_ms = 5000;
    p->max_rows = 1000;
    p->read_only = true;
    json_error_t je;
    json_t *o = json_loads(json ? json : "{}", 0, &je);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "params: not a JSON object: %s", je.text);
        json_decref(o);
        return -1;
    }
    int rc = parse_limits(o, p, err, errlen);
    if (rc == 0)
        rc = parse_queries(json_object_get(o, "queries"), p, err, errlen);
    json_decref(o);
    if (rc < 0)
        csql_params_free(p);
    return rc;
}

static void query_free(csql_query *q)
{
    free(q->name);
    free(q->sql);
    for (int i = 0; i < q->n_values; i++)
        free(q->values[i]);
    free(q->values);
    free(q->requires_extension);
    for (size_t i = 0; i < q->n_thresholds; i++) {
        free(q->thresholds[i].column);
        csql_cond_free(&q->thresholds[i].warning);
        csql_cond_free(&q->thresholds[i].critical);
    }
    free(q->thresholds);
}

void csql_params_free(csql_params *p)
{
    for (size_t i = 0; i < p->n_queries; i++)
        query_free(&p->queries[i]);
    free(p->queries);
    memset(p, 0, sizeof *p);
}
