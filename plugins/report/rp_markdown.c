/*
 * rp_markdown.c - the report model as GitHub-flavoured Markdown: headings
 * per connection, tables for the figures, the same content as the HTML
 * without the charts. Cells are escaped (| and newlines) and long texts
 * (queries, rows, errors) are cut so that tables stay readable.
 */
#include "rp.h"

#include <stdlib.h>
#include <string.h>

#define CELL_MAX 160

static void cell(rp_buf *b, const char *s)
{
    rp_put(b, " ");
    rp_put_md_cell(b, s, CELL_MAX);
    rp_put(b, " |");
}

static void cell_ms(rp_buf *b, const json_t *v)
{
    char t[32];
    rp_fmt_ms(json_is_number(v) ? json_number_value(v) : -1, t, sizeof t);
    cell(b, t);
}

static void cell_int(rp_buf *b, json_int_t v)
{
    rp_printf(b, " %lld |", (long long)v);
}

/* "+12 (+40%)" / "+3" for a {current, previous, delta, delta_pct} change. */
static void change_text(const json_t *ch, bool duration, char *out, size_t len)
{
    const json_t *d = json_object_get(ch, "delta"), *pct = json_object_get(ch, "delta_pct");
    if (!json_is_integer(d)) {
        snprintf(out, len, "-");
        return;
    }
    char dt[32];
    if (duration) {
        json_int_t v = json_integer_value(d);
        rp_fmt_ms((double)(v < 0 ? -v : v), dt, sizeof dt);
        snprintf(out, len, "%s%s", v < 0 ? "-" : "+", dt);
    } else {
        rp_fmt_delta(json_integer_value(d), out, len);
        return;
    }
    if (json_is_number(pct)) {
        size_t n = strlen(out);
        snprintf(out + n, len - n, " (%+.0f%%)", json_number_value(pct));
    }
}

static void comparison(rp_buf *b, const json_t *st)
{
    const json_t *ch = json_object_get(st, "change");
    char t[64];
    rp_put(b, "| | this period | previous period | change |\n|---|---:|---:|---:|\n");
    static const char *const rows[][2] = {{"executions", "executions"}, {"failed", "failed"},
                                          {"avg_ms", "average duration"},
                                          {"p95_ms", "p95 duration"}};
    for (size_t i = 0; i < 4; i++) {
        const json_t *c = json_object_get(ch, rows[i][0]);
        bool dur = i >= 2;
        rp_printf(b, "| %s |", rows[i][1]);
        if (dur) {
            cell_ms(b, json_object_get(c, "current"));
            cell_ms(b, json_object_get(c, "previous"));
        } else {
            cell_int(b, rp_int(c, "current"));
            cell_int(b, rp_int(c, "previous"));
        }
        change_text(c, dur, t, sizeof t);
        cell(b, t);
        rp_put(b, "\n");
    }
    const json_t *s = json_object_get(st, "by_status");
    rp_printf(b, "\nStatuses: completed %lld, failed %lld, cancelled %lld, skipped %lld, "
              "unfinished %lld.\n\n",
              (long long)rp_int(s, "completed"), (long long)rp_int(s, "failed"),
              (long long)rp_int(s, "cancelled"), (long long)rp_int(s, "skipped"),
              (long long)rp_int(s, "unfinished"));
}

static void tasks_table(rp_buf *b, const json_t *tasks)
{
    if (json_array_size(tasks) == 0)
        return;
    rp_put(b, "#### Tasks\n\n| task | type | runs | completed | failed | other | min | avg | "
              "p95 | max | runs vs previous |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
              "---:|\n");
    size_t i;
    const json_t *t;
    json_array_foreach(tasks, i, t)
    {
        const json_t *s = json_object_get(t, "by_status"), *d = json_object_get(t, "duration_ms");
        char ch[32];
        rp_put(b, "|");
        cell(b, rp_str(t, "task"));
        cell(b, rp_str(t, "type"));
        cell_int(b, rp_int(t, "executions"));
        cell_int(b, rp_int(s, "completed"));
        cell_int(b, rp_int(s, "failed"));
        cell_int(b, rp_int(s, "cancelled") + rp_int(s, "skipped") + rp_int(s, "unfinished"));
        cell_ms(b, json_object_get(d, "min"));
        cell_ms(b, json_object_get(d, "avg"));
        cell_ms(b, json_object_get(d, "p95"));
        cell_ms(b, json_object_get(d, "max"));
        change_text(json_object_get(json_object_get(t, "change"), "executions"), false, ch,
                    sizeof ch);
        cell(b, ch);
        rp_put(b, "\n");
    }
    rp_put(b, "\n");
}

static void failures_table(rp_buf *b, const json_t *conn)
{
    const json_t *f = json_object_get(conn, "failures");
    json_int_t total = rp_int(json_object_get(conn, "by_status"), "failed");
    if (total == 0)
        return;
    rp_put(b, "#### Failures\n\n");
    if (json_array_size(f) > 0)
        rp_put(b, "| time | task | execution | attempts | error |\n|---|---|---:|---:|---|\n");
    size_t i;
    const json_t *x;
    json_array_foreach(f, i, x)
    {
        rp_put(b, "|");
        char when[32];
        cell(b, rp_fmt_time(rp_str(x, "at"), true, when, sizeof when));
        cell(b, rp_str(x, "task"));
        cell_int(b, rp_int(x, "execution_id"));
        cell_int(b, rp_int(x, "attempts"));
        cell(b, rp_str(x, "error"));
        rp_put(b, "\n");
    }
    if (total > (json_int_t)json_array_size(f))
        rp_printf(b, "\n(%lld more not listed)\n",
                  (long long)(total - (json_int_t)json_array_size(f)));
    rp_put(b, "\n");
}

static void query_table(rp_buf *b, const char *title, const json_t *list, bool by_total)
{
    if (json_array_size(list) == 0)
        return;
    rp_printf(b, "%s:\n\n| %s | count | avg | query |\n|---:|---:|---:|---|\n", title,
              by_total ? "total" : "max");
    size_t i;
    const json_t *q;
    json_array_foreach(list, i, q)
    {
        rp_put(b, "|");
        cell_ms(b, json_object_get(q, by_total ? "total_ms" : "max_ms"));
        cell_int(b, rp_int(q, "count"));
        cell_ms(b, json_object_get(q, "avg_ms"));
        cell(b, rp_str(q, "query"));
        rp_put(b, "\n");
    }
    rp_put(b, "\n");
}

static void log_analysis_md(rp_buf *b, const json_t *la)
{
    char t[32];
    rp_fmt_ms(rp_num(la, "query_duration_ms"), t, sizeof t);
    rp_printf(b, "%lld log entries, %lld queries (%s in total), %lld errors.\n\n",
              (long long)rp_int(la, "entries"), (long long)rp_int(la, "queries_total"), t,
              (long long)rp_int(la, "errors_total"));
    query_table(b, "Slowest queries", json_object_get(la, "slowest"), false);
    query_table(b, "Most time-consuming queries", json_object_get(la, "most_time"), true);
    const json_t *cl = json_object_get(la, "error_classes");
    if (json_array_size(cl) == 0)
        return;
    rp_put(b, "Errors by class:\n\n| count | level | class | SQLSTATE |\n|---:|---|---|---|\n");
    size_t i;
    const json_t *c;
    json_array_foreach(cl, i, c)
    {
        rp_put(b, "|");
        cell_int(b, rp_int(c, "count"));
        cell(b, rp_str(c, "level"));
        cell(b, rp_str(c, "message_class"));
        char *st = rp_keys_text(json_object_get(c, "sqlstate"));
        cell(b, st ? st : "");
        free(st);
        rp_put(b, "\n");
    }
    rp_put(b, "\n");
}

/* One warning or critical alert with the row behind it, as a list item. */
static void alert_md(rp_buf *b, const json_t *q, const json_t *a)
{
    char *v = rp_value_text(json_object_get(a, "value"));
    char *row = rp_value_text(json_object_get(a, "row"));
    rp_printf(b, "- **%s** `%s`: ", rp_str(a, "status"), rp_str(q, "name"));
    rp_put_md_cell(b, rp_str(a, "threshold"), CELL_MAX);
    rp_put(b, " (value ");
    rp_put_md_cell(b, v ? v : "", CELL_MAX);
    rp_put(b, ")");
    if (row && json_object_get(a, "row")) {
        rp_put(b, ", row: `` ");
        rp_put_md_cell(b, row, 400);
        rp_put(b, " ``");
    }
    rp_put(b, "\n");
    free(v);
    free(row);
}

static void custom_sql_md(rp_buf *b, const json_t *cs)
{
    rp_put(b, "| query | status | rows | alerts |\n|---|---|---:|---:|\n");
    size_t i, j;
    const json_t *q, *a;
    json_array_foreach(json_object_get(cs, "queries"), i, q)
    {
        rp_put(b, "|");
        cell(b, rp_str(q, "name"));
        cell(b, rp_str(q, "status"));
        cell_int(b, rp_int(q, "row_count"));
        cell_int(b, rp_int(q, "alert_count"));
        rp_put(b, "\n");
    }
    rp_put(b, "\n");
    json_array_foreach(json_object_get(cs, "queries"), i, q)
    {
        if (json_object_get(q, "error")) {
            rp_printf(b, "- **unknown** `%s`: ", rp_str(q, "name"));
            rp_put_md_cell(b, rp_str(q, "error"), 400);
            rp_put(b, "\n");
        }
        json_array_foreach(json_object_get(q, "alerts"), j, a) alert_md(b, q, a);
        size_t shown = json_array_size(json_object_get(q, "alerts"));
        if (json_is_true(json_object_get(q, "alerts_truncated")))
            rp_printf(b, "- (%lld alerts in all for `%s`; the first %zu are shown)\n",
                      (long long)rp_int(q, "alert_count"), rp_str(q, "name"), shown);
    }
    rp_put(b, "\n");
}

static void analyses_md(rp_buf *b, const json_t *list)
{
    if (json_array_size(list) == 0)
        return;
    rp_put(b, "#### Analyses\n\n");
    size_t i;
    const json_t *a;
    json_array_foreach(list, i, a)
    {
        const json_t *la = json_object_get(a, "log_analysis"),
                     *cs = json_object_get(a, "custom_sql");
        rp_printf(b, "##### %s `%s`", rp_str(a, "type"), rp_str(a, "task"));
        if (cs)
            rp_printf(b, ": **%s**", rp_str(cs, "status"));
        char when[32];
        rp_printf(b, "\n\nLatest result: %s (execution %lld).",
                  rp_fmt_time(rp_str(a, "created_at"), true, when, sizeof when),
                  (long long)rp_int(a, "execution_id"));
        const json_t *prev = json_object_get(a, "previous");
        if (la && json_is_object(prev))
            rp_printf(b, " Previous period: %lld queries, %lld errors.",
                      (long long)rp_int(prev, "queries_total"),
                      (long long)rp_int(prev, "errors_total"));
        else if (cs && json_is_object(prev))
            rp_printf(b, " Previous period: %s.", rp_str(prev, "status"));
        rp_put(b, "\n\n");
        if (la)
            log_analysis_md(b, la);
        else if (cs)
            custom_sql_md(b, cs);
        else if (json_object_get(json_object_get(a, "other"), "status"))
            rp_printf(b, "Status: %s.\n\n", rp_str(json_object_get(a, "other"), "status"));
    }
}

static void connection_md(rp_buf *b, const json_t *c)
{
    const char *name = json_string_value(json_object_get(c, "connection"));
    if (name)
        rp_printf(b, "### Connection `%s`\n\n", name);
    else
        rp_put(b, "### Tasks without a connection\n\n");
    comparison(b, c);
    tasks_table(b, json_object_get(c, "tasks"));
    failures_table(b, c);
    analyses_md(b, json_object_get(c, "analyses"));
}

char *rp_markdown(const json_t *m)
{
    rp_buf b = {0};
    const json_t *p = json_object_get(m, "period"), *sc = json_object_get(m, "scope");
    const json_t *sum = json_object_get(m, "summary");
    rp_printf(&b, "# %s: %s\n\n", rp_str(m, "title"), rp_str(p, "label"));
    char t1[32], t2[32];
    rp_printf(&b, "Period %s to %s (%s), ", rp_fmt_time(rp_str(p, "start"), false, t1, sizeof t1),
              rp_fmt_time(rp_str(p, "end"), false, t2, sizeof t2), rp_str(p, "timezone"));
    if (json_is_string(json_object_get(sc, "connection")))
        rp_printf(&b, "connection `%s`", rp_str(sc, "connection"));
    else
        rp_put(&b, "all connections");
    char t3[32];
    rp_printf(&b, "; compared with %s to %s. Generated %s by %s.\n\n",
              rp_fmt_time(rp_str(json_object_get(m, "previous_period"), "start"), false, t1,
                          sizeof t1),
              rp_fmt_time(rp_str(json_object_get(m, "previous_period"), "end"), false, t2,
                          sizeof t2),
              rp_fmt_time(rp_str(m, "generated_at"), true, t3, sizeof t3), rp_str(m, "generator"));
    rp_put(&b, "## Summary\n\n");
    if (json_is_true(json_object_get(sum, "nothing_ran")))
        rp_put(&b, "**Nothing ran in this period**: no task execution was recorded.\n\n");
    comparison(&b, sum);
    size_t i;
    const json_t *c;
    if (json_array_size(json_object_get(m, "connections")) > 0)
        rp_put(&b, "## Connections\n\n");
    json_array_foreach(json_object_get(m, "connections"), i, c) connection_md(&b, c);
    if (b.oom) {
        rp_buf_free(&b);
        return NULL;
    }
    return b.s;
}
