/*
 * la_output.c - the result document of an analysis (schema_version 1; the
 * schema is documented in README.md next to this file).
 *
 * Built with jansson once per run; its cost is proportional to the number
 * of distinct keys, not to the size of the log. Objects keyed by name are
 * sorted (JSON_SORT_KEYS) so two runs on the same input print the same
 * bytes.
 */
#include "la_agg.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Round to 3 decimals (milliseconds to microseconds): stable output. */
static json_t *jms(double v)
{
    return json_real(round(v * 1000.0) / 1000.0);
}

/* A duration kept in integral microseconds, as milliseconds (and a
 * checkpoint time kept in milliseconds, as seconds). */
static json_t *jus(double v)
{
    return jms(v / 1000.0);
}

static json_t *jts(int64_t ms)
{
    if (ms < 0)
        return json_null();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return json_string(buf);
}

/* jansson refuses invalid UTF-8: replace non-ASCII bytes with '?' then. */
static json_t *jtext(const char *p, size_t n)
{
    json_t *s = json_stringn(p, n);
    if (s != NULL)
        return s;
    char *c = malloc(n + 1);
    if (c == NULL)
        return json_string("");
    for (size_t i = 0; i < n; i++)
        c[i] = ((unsigned char)p[i] < 0x80 && p[i] != '\0') ? p[i] : '?';
    s = json_stringn(c, n);
    free(c);
    return s ? s : json_string("");
}

static const char *name_or_unknown(const la_sent *e)
{
    return e->klen > 0 ? e->key : "(unknown)";
}

/* {name: count} */
static json_t *map_counts(const la_smap *m)
{
    json_t *o = json_object();
    for (size_t i = 0; i < m->cap; i++) {
        const la_sent *e = &m->e[i];
        if (e->key == NULL)
            continue;
        json_t *k = jtext(name_or_unknown(e), e->klen > 0 ? e->klen : 9);
        json_object_set_new(o, json_string_value(k), json_integer((json_int_t)e->v[0]));
        json_decref(k);
    }
    return o;
}

/* {name: {count, <what>: v[1]}} */
static json_t *map_count_sum(const la_smap *m, const char *what, int integer_sum)
{
    json_t *o = json_object();
    for (size_t i = 0; i < m->cap; i++) {
        const la_sent *e = &m->e[i];
        if (e->key == NULL)
            continue;
        json_t *k = jtext(name_or_unknown(e), e->klen > 0 ? e->klen : 9);
        json_t *v = json_pack("{s:I}", "count", (json_int_t)e->v[0]);
        json_object_set_new(v, what,
                            integer_sum ? json_integer((json_int_t)llround(e->v[1] / 1000.0)) : jus(e->v[1]));
        json_object_set_new(o, json_string_value(k), v);
        json_decref(k);
    }
    return o;
}

/* The k-th smallest of v[0..n) (quickselect; reorders v). */
static double kth(float *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return v[k];
    }
    return v[k];
}

/* The 95th percentile (nearest rank) of s's durations, computed once. */
static double p95(la_stmt *s)
{
    if (s->ndur == 0)
        return 0;
    if (!s->p95_done) {
        size_t rank = (size_t)ceil(0.95 * (double)s->ndur);
        s->p95 = kth(s->durs, s->ndur, rank > 0 ? rank - 1 : 0);
        s->p95_done = 1;
    }
    return s->p95;
}

static json_t *stmt_json(la_stmt *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "query", jtext(s->norm, s->nlen));
    json_object_set_new(o, "type", json_string(s->type));
    json_object_set_new(o, "count", json_integer(s->count));
    json_object_set_new(o, "total_ms", jus(s->total));
    json_object_set_new(o, "min_ms", jus(s->min));
    json_object_set_new(o, "max_ms", jus(s->max));
    json_object_set_new(o, "avg_ms", jus(s->total / (double)s->count));
    json_object_set_new(o, "p95_ms", jus(p95(s)));
    json_object_set_new(o, "example", jtext(s->example, strlen(s->example)));
    json_object_set_new(o, "database", jtext(s->db, strlen(s->db)));
    json_object_set_new(o, "user", jtext(s->user, strlen(s->user)));
    json_object_set_new(o, "application", jtext(s->app, strlen(s->app)));
    return o;
}

static int by_total(const void *a, const void *b)
{
    const la_stmt *x = *(la_stmt *const *)a, *y = *(la_stmt *const *)b;
    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;
    return strcmp(x->norm, y->norm);
}

static int by_count(const void *a, const void *b)
{
    const la_stmt *x = *(la_stmt *const *)a, *y = *(la_stmt *const *)b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->norm, y->norm);
}

static int by_max(const void *a, const void *b)
{
    const la_stmt *x = *(la_stmt *const *)a, *y = *(la_stmt *const *)b;
    if (x->max != y->max)
        return x->max < y->max ? 1 : -1;
    return strcmp(x->norm, y->norm);
}

static json_t *top_list(la_stmt **v, size_t n, int top, int (*cmp)(const void *, const void *))
{
    qsort(v, n, sizeof(*v), cmp);
    json_t *arr = json_array();
    for (size_t i = 0; i < n && i < (size_t)top; i++)
        json_array_append_new(arr, stmt_json(v[i]));
    return arr;
}

static json_t *queries_json(la_agg *a, int full)
{
    json_t *q = json_object();
    json_object_set_new(q, "total", json_integer(a->q_total));
    json_object_set_new(q, "total_duration_ms", jus(a->q_ms));
    json_object_set_new(q, "bind", json_pack("{s:I,s:o}", "count", (json_int_t)a->bind_n,
                                             "duration_ms", jus(a->bind_ms)));
    json_object_set_new(q, "parse", json_pack("{s:I,s:o}", "count", (json_int_t)a->parse_n,
                                              "duration_ms", jus(a->parse_ms)));
    json_object_set_new(q, "by_type", map_count_sum(&a->q_type, "duration_ms", 0));
    json_object_set_new(q, "distinct_normalized", json_integer((json_int_t)a->st_n));
    json_object_set_new(q, "shape_cache_hits", json_integer((json_int_t)a->shape_hits));
    json_object_set_new(q, "by_database", map_count_sum(&a->q_db, "duration_ms", 0));
    json_object_set_new(q, "by_user", map_count_sum(&a->q_user, "duration_ms", 0));
    json_object_set_new(q, "by_application", map_count_sum(&a->q_app, "duration_ms", 0));

    la_stmt **v = malloc(sizeof(*v) * (a->st_n + 1));
    size_t n = 0;
    for (size_t i = 0; v != NULL && i < a->st_cap; i++)
        if (a->st[i].norm)
            v[n++] = &a->st[i];
    int top = full ? (int)n : a->top;
    json_object_set_new(q, "top_by_total_duration", top_list(v, n, top, by_total));
    json_object_set_new(q, "top_by_count", top_list(v, n, top, by_count));
    json_object_set_new(q, "top_slowest", top_list(v, n, top, by_max));
    free(v);

    json_t *slow = json_array();
    for (int i = 0; i < a->nslow; i++) {
        la_slow *s = &a->slow[i];
        json_array_append_new(
            slow, json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "duration_ms", jus(s->ms), "ts",
                            jts(s->ts), "query", jtext(s->query, strlen(s->query)), "database",
                            jtext(s->db, strlen(s->db)), "user", jtext(s->user, strlen(s->user)),
                            "application", jtext(s->app, strlen(s->app))));
    }
    json_object_set_new(q, "slowest_individual", slow);
    return q;
}

static const char *const level_names[LA_LV_COUNT] = {
    "NONE", "DEBUG", "INFO", "NOTICE", "LOG", "WARNING", "ERROR", "FATAL",
    "PANIC", "DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION"};

static int cmp_class(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t cx = json_integer_value(json_object_get(x, "count"));
    json_int_t cy = json_integer_value(json_object_get(y, "count"));
    if (cx != cy)
        return cx < cy ? 1 : -1;
    return strcmp(json_string_value(json_object_get(x, "message_class")),
                  json_string_value(json_object_get(y, "message_class")));
}

static int cmp_stmt_count(const void *a, const void *b)
{
    const la_sent *x = *(la_sent *const *)a, *y = *(la_sent *const *)b;
    if (x->v[0] != y->v[0])
        return x->v[0] < y->v[0] ? 1 : -1;
    return strcmp(x->key, y->key);
}

/* The statements behind one error class (key "LEVEL\x01class"): the 5 most
 * frequent, normalized. */
static json_t *error_statements(la_agg *a, const la_sent *cls)
{
    la_sent *top[6];
    size_t n = 0;
    for (size_t j = 0; j < a->err_stmt.cap; j++) {
        la_sent *s = &a->err_stmt.e[j];
        if (s->key == NULL || s->klen <= cls->klen || s->key[cls->klen] != '\x02' ||
            memcmp(s->key, cls->key, cls->klen) != 0)
            continue;
        top[n++] = s;
        qsort(top, n, sizeof(top[0]), cmp_stmt_count);
        if (n > 5)
            n = 5;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:o,s:I}", "query",
                                             jtext(top[i]->key + cls->klen + 1,
                                                   top[i]->klen - cls->klen - 1),
                                             "count", (json_int_t)top[i]->v[0]));
    return arr;
}

static json_t *error_classes(la_agg *a)
{
    size_t n = 0;
    json_t **v = malloc(sizeof(*v) * (a->err_class.n + 1));
    for (size_t i = 0; v != NULL && i < a->err_class.cap; i++) {
        const la_sent *e = &a->err_class.e[i];
        if (e->key == NULL)
            continue;
        const char *sep = memchr(e->key, '\x01', e->klen);
        size_t ll = (size_t)(sep - e->key);
        json_t *states = json_array();
        for (size_t j = 0; j < a->err_class_state.cap; j++) {
            const la_sent *s = &a->err_class_state.e[j];
            if (s->key && s->klen > e->klen && memcmp(s->key, e->key, e->klen) == 0 &&
                s->key[e->klen] == '\x01')
                json_array_append_new(states, jtext(s->key + e->klen + 1, s->klen - e->klen - 1));
        }
        v[n++] = json_pack("{s:o,s:o,s:I,s:o,s:o}", "message_class",
                           jtext(sep + 1, e->klen - ll - 1), "level", jtext(e->key, ll), "count",
                           (json_int_t)e->v[0], "sqlstate", states, "statements",
                           error_statements(a, e));
    }
    if (v != NULL)
        qsort(v, n, sizeof(*v), cmp_class);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    free(v);
    return arr;
}

static json_t *errors_json(la_agg *a)
{
    json_t *bl = json_object();
    int64_t total = 0;
    for (int lv = LA_LV_WARNING; lv <= LA_LV_PANIC; lv++) {
        json_object_set_new(bl, level_names[lv], json_integer(a->by_level[lv]));
        total += a->by_level[lv];
    }
    json_t *lines = json_object();
    for (int lv = 1; lv < LA_LV_COUNT; lv++)
        if (a->by_level[lv])
            json_object_set_new(lines, level_names[lv], json_integer(a->by_level[lv]));
    return json_pack("{s:I,s:o,s:o,s:o,s:o,s:{s:I,s:I,s:I}}", "total", (json_int_t)total,
                     "by_level", bl, "by_sqlstate", map_counts(&a->err_state), "classes",
                     error_classes(a), "lines_by_level", lines, "cancellations",
                     "statement_timeout", (json_int_t)a->cancel_timeout, "user_request",
                     (json_int_t)a->cancel_user, "lock_timeout", (json_int_t)a->cancel_lock);
}

static json_t *locks_json(la_agg *a)
{
    int64_t acq = 0, wait = 0;
    for (size_t i = 0; i < a->lock_acq.cap; i++)
        if (a->lock_acq.e[i].key)
            acq += (int64_t)a->lock_acq.e[i].v[0];
    for (size_t i = 0; i < a->lock_wait.cap; i++)
        if (a->lock_wait.e[i].key)
            wait += (int64_t)a->lock_wait.e[i].v[0];
    return json_pack("{s:o,s:I,s:o,s:I,s:I}", "acquired_after_wait_by_type",
                     map_count_sum(&a->lock_acq, "total_wait_ms", 0), "acquired_after_wait_total",
                     (json_int_t)acq, "still_waiting_by_type", map_counts(&a->lock_wait),
                     "still_waiting_messages", (json_int_t)wait, "deadlocks",
                     (json_int_t)a->deadlocks);
}

static json_t *checkpoints_json(la_agg *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "total", json_integer(a->ckpt_n));
    json_object_set_new(o, "by_reason", map_counts(&a->ckpt_reason));
    json_object_set_new(o, "restartpoints", json_integer(a->restart_n));
    json_object_set_new(o, "buffers_written", json_integer((json_int_t)llround(a->ckpt_buf / 1000.0)));
    json_object_set_new(o, "write_s", jus(a->ckpt_write));
    json_object_set_new(o, "sync_s", jus(a->ckpt_sync));
    json_object_set_new(o, "total_s", jus(a->ckpt_total));
    json_object_set_new(o, "wal_files_added", json_integer((json_int_t)llround(a->wal_add / 1000.0)));
    json_object_set_new(o, "wal_files_removed", json_integer((json_int_t)llround(a->wal_rem / 1000.0)));
    json_object_set_new(o, "wal_files_recycled", json_integer((json_int_t)llround(a->wal_rec / 1000.0)));
    json_object_set_new(o, "too_frequent_warnings", json_integer(a->ckpt_freq));
    return o;
}

static json_t *temp_json(la_agg *a)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < a->tmp_stmt.cap; i++) {
        const la_sent *e = &a->tmp_stmt.e[i];
        if (e->key == NULL)
            continue;
        json_array_append_new(arr, json_pack("{s:o,s:I,s:I,s:I}", "query",
                                             jtext(e->key, e->klen), "count", (json_int_t)e->v[0],
                                             "total_bytes", (json_int_t)e->v[1], "max_bytes",
                                             (json_int_t)e->v[2]));
    }
    return json_pack("{s:I,s:I,s:I,s:o}", "count", (json_int_t)a->tmp_n, "total_bytes",
                     (json_int_t)a->tmp_bytes, "max_bytes", (json_int_t)a->tmp_max,
                     "by_statement", arr);
}

static json_t *conn_json(la_agg *a)
{
    json_t *dbu = json_object();
    for (size_t i = 0; i < a->conn_dbuser.cap; i++) {
        const la_sent *e = &a->conn_dbuser.e[i];
        if (e->key == NULL)
            continue;
        const char *sep = memchr(e->key, '\x01', e->klen);
        json_t *dk = jtext(e->key, (size_t)(sep - e->key));
        json_t *uk = jtext(sep + 1, e->klen - (size_t)(sep - e->key) - 1);
        json_t *d = json_object_get(dbu, json_string_value(dk));
        if (d == NULL) {
            d = json_object();
            json_object_set_new(dbu, json_string_value(dk), d);
        }
        json_object_set_new(d, json_string_value(uk), json_integer((json_int_t)e->v[0]));
        json_decref(dk);
        json_decref(uk);
    }
    return json_pack("{s:I,s:o,s:o,s:o,s:o}", "total", (json_int_t)a->conn_n, "by_database",
                     map_counts(&a->conn_db), "by_user", map_counts(&a->conn_user), "by_host",
                     map_counts(&a->conn_host), "by_database_user", dbu);
}

static json_t *sess_json(la_agg *a)
{
    return json_pack("{s:I,s:I,s:o,s:o,s:o,s:o}", "total", (json_int_t)a->sess_n,
                     "total_duration_ms", (json_int_t)llround(a->sess_ms / 1000.0), "by_database",
                     map_count_sum(&a->sess_db, "duration_ms", 1), "by_user",
                     map_count_sum(&a->sess_user, "duration_ms", 1), "by_application",
                     map_count_sum(&a->sess_app, "duration_ms", 1), "by_host",
                     map_count_sum(&a->sess_host, "duration_ms", 1));
}

static int cmp_hour(const void *a, const void *b)
{
    int64_t x, y;
    memcpy(&x, (*(la_sent *const *)a)->key, sizeof x);
    memcpy(&y, (*(la_sent *const *)b)->key, sizeof y);
    return (x > y) - (x < y);
}

static json_t *hourly_json(la_agg *a)
{
    la_sent **v = malloc(sizeof(*v) * (a->hours.n + 1));
    size_t n = 0;
    for (size_t i = 0; v != NULL && i < a->hours.cap; i++)
        if (a->hours.e[i].key)
            v[n++] = &a->hours.e[i];
    if (v != NULL)
        qsort(v, n, sizeof(*v), cmp_hour);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        int64_t h;
        memcpy(&h, v[i]->key, sizeof h);
        const double *x = v[i]->v;
        json_array_append_new(
            arr, json_pack("{s:o,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I}", "hour",
                           jts(h < 0 ? -1 : h * 3600000), "queries", (json_int_t)x[0],
                           "query_duration_ms", jus(x[1]), "errors", (json_int_t)x[2],
                           "connections", (json_int_t)x[3], "checkpoints", (json_int_t)x[4],
                           "temp_files", (json_int_t)x[5], "lock_waits", (json_int_t)x[6],
                           "autovacuum", (json_int_t)x[7]));
    }
    free(v);
    return arr;
}

char *la_output_json(la_agg *a, const char *files_json, double seconds, int full_detail)
{
    la_agg_finish(a);
    json_t *doc = json_object();
    json_object_set_new(doc, "schema_version", json_integer(LA_SCHEMA_VERSION));
    json_object_set_new(doc, "generator", json_string("pgreviewer log_analysis " LA_VERSION));
    json_t *files = files_json ? json_loads(files_json, 0, NULL) : NULL;
    json_object_set_new(
        doc, "input",
        json_pack("{s:o,s:I,s:I,s:I,s:I,s:o,s:o,s:o}", "files", files ? files : json_array(),
                  "bytes", (json_int_t)a->bytes, "lines", (json_int_t)a->lines, "entries",
                  (json_int_t)a->entries, "unparsed_lines", (json_int_t)a->unparsed,
                  "first_ts", jts(a->first_ts), "last_ts", jts(a->last_ts), "seconds",
                  jms(seconds)));
    json_object_set_new(doc, "queries", queries_json(a, full_detail));
    json_object_set_new(doc, "errors", errors_json(a));
    json_object_set_new(doc, "locks", locks_json(a));
    json_object_set_new(doc, "checkpoints", checkpoints_json(a));
    json_object_set_new(doc, "temp_files", temp_json(a));
    json_object_set_new(
        doc, "autovacuum",
        json_pack("{s:I,s:I,s:o,s:o}", "vacuum_count", (json_int_t)a->vac_n, "analyze_count",
                  (json_int_t)a->an_n, "vacuums_by_table", map_counts(&a->vac_tab),
                  "analyzes_by_table", map_counts(&a->an_tab)));
    json_object_set_new(doc, "connections", conn_json(a));
    json_object_set_new(doc, "sessions", sess_json(a));
    json_object_set_new(doc, "hourly", hourly_json(a));
    char *s = json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(1) | JSON_REAL_PRECISION(15));
    json_decref(doc);
    return s;
}
