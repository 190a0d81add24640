/*
 * rp_html.c - the report model as one self-contained HTML file: inline
 * CSS, inline SVG charts (executions over time, statuses per connection,
 * durations per task), no script, no external asset, so it can be mailed,
 * attached or opened from disk. Responsive (the grid folds to one column
 * on a phone, wide tables scroll sideways) and printable (@media print:
 * white background, no card shadows, charts and tables never split).
 *
 * Every text from the store goes through rp_put_html(); the document is
 * well-formed (every element closed), which the tests check.
 */
#include "rp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define COL_OK "#2e7d32"
#define COL_FAIL "#c62828"
#define COL_OTHER "#9aa5b1"
#define COL_WAIT "#f0b429"
#define COL_AVG "#3e6fb0"
#define COL_P95 "#a9c1e6"

static const char css[] =
    ":root{--ok:" COL_OK ";--fail:" COL_FAIL ";--other:" COL_OTHER ";--warn:#e8710a;"
    "--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa}"
    "*{box-sizing:border-box}"
    "body{margin:0;font:15px/1.45 -apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,"
    "sans-serif;color:var(--ink);background:var(--bg)}"
    "main{max-width:1100px;margin:0 auto;padding:24px 20px}"
    "h1{font-size:26px;margin:0 0 4px}"
    "h2{font-size:20px;margin:28px 0 12px;padding-bottom:6px;border-bottom:2px solid var(--line)}"
    "h3{font-size:16px;margin:18px 0 8px}h4{font-size:15px;margin:16px 0 6px}"
    ".sub{color:var(--muted);margin:0}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;"
    "margin:18px 0}"
    ".card,figure,.panel{background:#fff;border:1px solid var(--line);border-radius:8px;"
    "box-shadow:0 1px 2px rgba(0,0,0,.04)}"
    ".card{padding:12px 14px}.card .k{color:var(--muted);font-size:13px}"
    ".card .v{font-size:26px;font-weight:650;line-height:1.2}.card .d{font-size:13px;"
    "color:var(--muted)}.bad{color:var(--fail)!important}.good{color:var(--ok)!important}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px}"
    "figure{margin:0;padding:12px 14px}figure.wide{grid-column:1/-1}"
    "figcaption{font-weight:600;margin-bottom:6px}"
    "svg{width:100%;height:auto;display:block}svg text{font-family:inherit}"
    ".panel{padding:4px 16px 14px;margin:14px 0}"
    ".tw{overflow-x:auto;-webkit-overflow-scrolling:touch}"
    "table{border-collapse:collapse;width:100%;font-size:14px;margin:4px 0 10px}"
    "th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:left;"
    "vertical-align:top}"
    "th{font-size:12px;font-weight:600;text-transform:uppercase;letter-spacing:.03em;"
    "color:var(--muted)}"
    ".n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    ".t{white-space:nowrap;font-variant-numeric:tabular-nums}"
    "code,.q{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;"
    "overflow-wrap:anywhere}td.q{min-width:16em}"
    ".chip{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;"
    "font-weight:600;color:#fff;background:var(--other)}"
    ".s-ok,.s-completed{background:var(--ok)}.s-warning{background:var(--warn)}"
    ".s-critical,.s-failed{background:var(--fail)}"
    ".notice{background:#fff8e1;border:1px solid #ffe08a;border-radius:8px;padding:12px 14px;"
    "margin:14px 0}"
    ".alert{border-left:4px solid var(--warn);padding:4px 10px;margin:8px 0;background:#fffaf3}"
    ".alert.critical{border-color:var(--fail);background:#fff5f5}"
    ".muted{color:var(--muted)}footer{color:var(--muted);font-size:13px;margin-top:28px}"
    "@media (max-width:600px){main{padding:12px 10px}h1{font-size:21px}.card .v{font-size:21px}"
    "th,td{padding:5px 6px}table{font-size:13px}.charts{grid-template-columns:1fr}"
    ".cards{grid-template-columns:1fr 1fr;gap:8px}.card{padding:10px}.panel{padding:4px 10px 10px}"
    "figure.wide{overflow-x:auto}figure.wide svg{min-width:620px}}"
    "@media print{body{background:#fff;font-size:10.5pt}main{max-width:none;padding:0}"
    ".card,figure,.panel{box-shadow:none;border-color:#bbb;break-inside:avoid}"
    "h2,h3,h4{break-after:avoid}tr{break-inside:avoid}.tw{overflow:visible}"
    ".charts{grid-template-columns:1fr 1fr}"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}@page{margin:14mm}}";

static void esc(rp_buf *b, const char *s)
{
    rp_put_html(b, s);
}

static void td_ms(rp_buf *b, const json_t *v)
{
    char t[32];
    rp_fmt_ms(json_is_number(v) ? json_number_value(v) : -1, t, sizeof t);
    rp_printf(b, "<td class=\"n\">%s</td>", t);
}

static void td_int(rp_buf *b, json_int_t v)
{
    rp_printf(b, "<td class=\"n\">%lld</td>", (long long)v);
}

static void td_text(rp_buf *b, const char *cls, const char *s)
{
    rp_printf(b, "<td%s%s%s>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    esc(b, s);
    rp_put(b, "</td>");
}

static void chip(rp_buf *b, const char *status)
{
    rp_put(b, "<span class=\"chip s-");
    esc(b, status);
    rp_put(b, "\">");
    esc(b, status);
    rp_put(b, "</span>");
}

/* A change as text, coloured by `sense`: 1 when higher is bad (failures,
 * durations), 0 when it is neither good nor bad (executions). */
static void delta_span(rp_buf *b, const json_t *ch, bool duration, int sense)
{
    const json_t *d = json_object_get(ch, "delta"), *pct = json_object_get(ch, "delta_pct");
    if (!json_is_integer(d)) {
        rp_put(b, "<span class=\"d\">no previous figure</span>");
        return;
    }
    json_int_t v = json_integer_value(d);
    const char *cls = v == 0 || sense == 0 ? "" : v > 0 ? " bad" : " good";
    char t[32];
    if (duration)
        rp_fmt_ms((double)(v < 0 ? -v : v), t, sizeof t);
    else
        snprintf(t, sizeof t, "%lld", (long long)(v < 0 ? -v : v));
    rp_printf(b, "<span class=\"d%s\">%s%s", cls, v < 0 ? "&#8722;" : "+", t);
    if (json_is_number(pct))
        rp_printf(b, " (%+.0f%%)", json_number_value(pct));
    rp_put(b, " vs previous</span>");
}

static void card(rp_buf *b, const char *label, const char *value, const json_t *ch, bool dur,
                 int sense)
{
    rp_put(b, "<div class=\"card\"><div class=\"k\">");
    esc(b, label);
    rp_put(b, "</div><div class=\"v\">");
    esc(b, value);
    rp_put(b, "</div>");
    delta_span(b, ch, dur, sense);
    rp_put(b, "</div>");
}

static void cards(rp_buf *b, const json_t *st)
{
    const json_t *ch = json_object_get(st, "change");
    const json_t *d = json_object_get(st, "duration_ms");
    char v[32];
    rp_put(b, "<div class=\"cards\">");
    snprintf(v, sizeof v, "%lld", (long long)rp_int(st, "executions"));
    card(b, "Executions", v, json_object_get(ch, "executions"), false, 0);
    snprintf(v, sizeof v, "%lld", (long long)rp_int(json_object_get(st, "by_status"), "failed"));
    card(b, "Failed", v, json_object_get(ch, "failed"), false, 1);
    rp_fmt_ms(rp_num(d, "avg"), v, sizeof v);
    card(b, "Average duration", v, json_object_get(ch, "avg_ms"), true, 1);
    rp_fmt_ms(rp_num(d, "p95"), v, sizeof v);
    card(b, "p95 duration", v, json_object_get(ch, "p95_ms"), true, 1);
    rp_put(b, "</div>");
}

/* ---- charts ------------------------------------------------------------- */

/* The smallest "nice" number (1, 2, 5 x 10^k) >= v, at least 1. */
static double nice_ceil(double v)
{
    if (v <= 1)
        return 1;
    double p = pow(10, floor(log10(v)));
    double steps[] = {1, 2, 2.5, 5, 10};
    for (size_t i = 0; i < 5; i++)
        if (steps[i] * p >= v)
            return steps[i] * p;
    return 10 * p;
}

static void legend(rp_buf *b, double x, double y, const char *const *names,
                   const char *const *colors, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rp_printf(b, "<rect x=\"%.0f\" y=\"%.0f\" width=\"11\" height=\"11\" rx=\"2\" "
                  "fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" fill=\"#3e4c59\">%s"
                  "</text>",
                  x, y, colors[i], x + 15, y + 10, names[i]);
        x += 28 + 7.0 * (double)strlen(names[i]);
    }
}

static void timeline_svg(rp_buf *b, const json_t *tl)
{
    const json_t *bk = json_object_get(tl, "buckets");
    size_t n = json_array_size(bk);
    const double W = 1000, H = 210, L = 40, R = 8, T = 28, B = 26;
    double maxv = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(bk, i);
        double t = (double)(rp_int(x, "completed") + rp_int(x, "failed") + rp_int(x, "other"));
        maxv = t > maxv ? t : maxv;
    }
    double top = nice_ceil(maxv), pw = W - L - R, ph = H - T - B;
    rp_printf(b, "<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"Executions over "
              "time\"><title>Executions over time</title>", W, H);
    static const char *const names[] = {"completed", "failed", "other"};
    static const char *const colors[] = {COL_OK, COL_FAIL, COL_OTHER};
    legend(b, L, 4, names, colors, 3);
    /* grid lines at 0, the top and (when it is a whole number) half-way */
    double ticks[3] = {0, top, top / 2};
    int nt = fmod(top, 2) == 0 ? 3 : 2;
    for (int g = 0; g < nt; g++) {
        double y = T + ph - ph * ticks[g] / top;
        rp_printf(b, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e7eb\"/>"
                  "<text x=\"%.0f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\" "
                  "fill=\"#616e7c\">%g</text>",
                  L, W - R, y, y, L - 6, y + 4, ticks[g]);
    }
    double slot = n ? pw / (double)n : pw, bw = slot * 0.7;
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(bk, i);
        double vals[3] = {(double)rp_int(x, "completed"), (double)rp_int(x, "failed"),
                          (double)rp_int(x, "other")};
        double bx = L + slot * (double)i + (slot - bw) / 2, base = T + ph;
        for (int k = 0; k < 3; k++) {
            if (vals[k] <= 0)
                continue;
            double h = ph * vals[k] / top;
            base -= h;
            rp_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                      "fill=\"%s\"><title>", bx, base, bw, h, colors[k]);
            esc(b, rp_str(x, "label"));
            rp_printf(b, " %s: %.0f</title></rect>", names[k], vals[k]);
        }
        if (i % 3 == 0) {
            rp_printf(b, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"12\" text-anchor=\"middle\" "
                      "fill=\"#616e7c\">",
                      bx + bw / 2, H - 8);
            esc(b, rp_str(x, "label"));
            rp_put(b, "</text>");
        }
    }
    rp_put(b, "</svg>");
}

static void status_svg(rp_buf *b, const json_t *conns)
{
    size_t n = json_array_size(conns);
    const double W = 520, row = 46, T = 24;
    double H = T + row * (double)(n ? n : 1) + 4;
    rp_printf(b, "<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"Statuses per "
              "connection\"><title>Statuses per connection</title>", W, H);
    static const char *const names[] = {"completed", "failed", "cancelled/skipped", "unfinished"};
    static const char *const colors[] = {COL_OK, COL_FAIL, COL_OTHER, COL_WAIT};
    legend(b, 0, 4, names, colors, 4);
    if (n == 0)
        rp_printf(b, "<text x=\"0\" y=\"%.0f\" font-size=\"13\" fill=\"#616e7c\">no executions"
                  "</text>", T + 20);
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(conns, i), *s = json_object_get(c, "by_status");
        double vals[4] = {(double)rp_int(s, "completed"), (double)rp_int(s, "failed"),
                          (double)(rp_int(s, "cancelled") + rp_int(s, "skipped")),
                          (double)rp_int(s, "unfinished")};
        double total = vals[0] + vals[1] + vals[2] + vals[3], y = T + row * (double)i;
        const char *name = json_string_value(json_object_get(c, "connection"));
        rp_printf(b, "<text x=\"0\" y=\"%.0f\" font-size=\"13\" fill=\"#1f2933\">", y + 12);
        esc(b, name ? name : "(no connection)");
        rp_printf(b, " &#183; %.0f</text>", total);
        rp_printf(b, "<rect x=\"0\" y=\"%.0f\" width=\"%.0f\" height=\"16\" rx=\"3\" "
                  "fill=\"#eef0f3\"/>", y + 18, W);
        double x = 0;
        for (int k = 0; k < 4 && total > 0; k++) {
            if (vals[k] <= 0)
                continue;
            double w = W * vals[k] / total;
            rp_printf(b, "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"16\" fill=\"%s\">"
                      "<title>%s: %.0f</title></rect>", x, y + 18, w, colors[k], names[k], vals[k]);
            if (w > 30)
                rp_printf(b, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"11\" fill=\"#fff\" "
                          "text-anchor=\"middle\">%.0f</text>", x + w / 2, y + 30, vals[k]);
            x += w;
        }
    }
    rp_put(b, "</svg>");
}

typedef struct dur_row {
    const char *task, *conn;
    double avg, p95, max;
} dur_row;

static int by_p95_desc(const void *a, const void *b)
{
    const dur_row *x = a, *y = b;
    return (x->p95 < y->p95) - (x->p95 > y->p95);
}

static void durations_svg(rp_buf *b, const json_t *conns)
{
    dur_row rows[12];
    size_t n = 0, i, j;
    const json_t *c, *t;
    dur_row all[256];
    size_t na = 0;
    json_array_foreach(conns, i, c) json_array_foreach(json_object_get(c, "tasks"), j, t)
    {
        const json_t *d = json_object_get(t, "duration_ms");
        if (na < 256 && json_is_number(json_object_get(d, "max")))
            all[na++] = (dur_row){rp_str(t, "task"),
                                  json_string_value(json_object_get(c, "connection")),
                                  rp_num(d, "avg"), rp_num(d, "p95"), rp_num(d, "max")};
    }
    qsort(all, na, sizeof all[0], by_p95_desc);
    for (n = 0; n < na && n < 12; n++)
        rows[n] = all[n];
    const double W = 520, L = 130, row = 26, T = 24;
    double H = T + row * (double)(n ? n : 1) + 6, maxv = 1;
    for (i = 0; i < n; i++)
        maxv = rows[i].max > maxv ? rows[i].max : maxv;
    double pw = W - L - 140;
    rp_printf(b, "<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"Durations per "
              "task\"><title>Durations per task</title>", W, H);
    static const char *const names[] = {"average", "p95", "max"};
    static const char *const colors[] = {COL_AVG, COL_P95, "#1f2933"};
    legend(b, 0, 4, names, colors, 3);
    if (n == 0)
        rp_printf(b, "<text x=\"0\" y=\"%.0f\" font-size=\"13\" fill=\"#616e7c\">no finished "
                  "executions</text>", T + 16);
    for (i = 0; i < n; i++) {
        double y = T + row * (double)i;
        char label[48], a[32], p[32], m[32];
        snprintf(label, sizeof label, "%.18s%s", rows[i].task,
                 strlen(rows[i].task) > 18 ? "…" : "");
        rp_printf(b, "<text x=\"0\" y=\"%.0f\" font-size=\"12\" fill=\"#1f2933\">", y + 14);
        esc(b, label);
        rp_put(b, "</text>");
        double wp = pw * rows[i].p95 / maxv, wa = pw * rows[i].avg / maxv;
        double xm = L + pw * rows[i].max / maxv;
        rp_printf(b, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" height=\"14\" fill=\"%s\"/>"
                  "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" height=\"14\" fill=\"%s\"/>"
                  "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#1f2933\" "
                  "stroke-width=\"2\"/>",
                  L, y + 3, wp, COL_P95, L, y + 3, wa, COL_AVG, xm, xm, y + 1, y + 19);
        rp_fmt_ms(rows[i].avg, a, sizeof a);
        rp_fmt_ms(rows[i].p95, p, sizeof p);
        rp_fmt_ms(rows[i].max, m, sizeof m);
        rp_printf(b, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"11\" fill=\"#3e4c59\">%s / %s / "
                  "%s</text>", xm + 6, y + 14, a, p, m);
    }
    rp_put(b, "</svg>");
}

static void charts(rp_buf *b, const json_t *m)
{
    const json_t *conns = json_object_get(m, "connections");
    rp_put(b, "<div class=\"charts\"><figure class=\"wide\"><figcaption>Executions over time"
              "</figcaption>");
    timeline_svg(b, json_object_get(m, "timeline"));
    rp_put(b, "</figure><figure><figcaption>Statuses per connection</figcaption>");
    status_svg(b, conns);
    rp_put(b, "</figure><figure><figcaption>Durations per task (avg / p95 / max)"
              "</figcaption>");
    durations_svg(b, conns);
    rp_put(b, "</figure></div>");
}

/* ---- connections -------------------------------------------------------- */

static void tasks_table(rp_buf *b, const json_t *tasks)
{
    if (json_array_size(tasks) == 0)
        return;
    rp_put(b, "<h4>Tasks</h4><div class=\"tw\"><table><thead><tr><th>task</th><th>type</th>"
              "<th class=\"n\">runs</th><th class=\"n\">completed</th><th class=\"n\">failed</th>"
              "<th class=\"n\">other</th><th class=\"n\">min</th><th class=\"n\">avg</th>"
              "<th class=\"n\">p95</th><th class=\"n\">max</th><th class=\"n\">runs vs prev."
              "</th></tr></thead><tbody>");
    size_t i;
    const json_t *t;
    json_array_foreach(tasks, i, t)
    {
        const json_t *s = json_object_get(t, "by_status"), *d = json_object_get(t, "duration_ms");
        json_int_t failed = rp_int(s, "failed");
        rp_put(b, "<tr>");
        td_text(b, NULL, rp_str(t, "task"));
        td_text(b, "muted", rp_str(t, "type"));
        td_int(b, rp_int(t, "executions"));
        td_int(b, rp_int(s, "completed"));
        rp_printf(b, "<td class=\"n%s\">%lld</td>", failed ? " bad" : "", (long long)failed);
        td_int(b, rp_int(s, "cancelled") + rp_int(s, "skipped") + rp_int(s, "unfinished"));
        td_ms(b, json_object_get(d, "min"));
        td_ms(b, json_object_get(d, "avg"));
        td_ms(b, json_object_get(d, "p95"));
        td_ms(b, json_object_get(d, "max"));
        char ch[32];
        rp_fmt_delta(rp_int(json_object_get(json_object_get(t, "change"), "executions"), "delta"),
                     ch, sizeof ch);
        rp_printf(b, "<td class=\"n\">%s</td></tr>", ch);
    }
    rp_put(b, "</tbody></table></div>");
}

static void failures_table(rp_buf *b, const json_t *conn)
{
    const json_t *f = json_object_get(conn, "failures");
    json_int_t total = rp_int(json_object_get(conn, "by_status"), "failed");
    if (total == 0)
        return;
    rp_put(b, "<h4>Failures</h4>");
    if (json_array_size(f) > 0)
        rp_put(b, "<div class=\"tw\"><table><thead><tr><th>time</th><th>task</th>"
                  "<th class=\"n\">execution</th><th class=\"n\">attempts</th><th>error</th>"
                  "</tr></thead><tbody>");
    size_t i;
    const json_t *x;
    json_array_foreach(f, i, x)
    {
        rp_put(b, "<tr>");
        char when[32];
        td_text(b, "t", rp_fmt_time(rp_str(x, "at"), true, when, sizeof when));
        td_text(b, NULL, rp_str(x, "task"));
        td_int(b, rp_int(x, "execution_id"));
        td_int(b, rp_int(x, "attempts"));
        td_text(b, "q", rp_str(x, "error"));
        rp_put(b, "</tr>");
    }
    if (json_array_size(f) > 0)
        rp_put(b, "</tbody></table></div>");
    if (total > (json_int_t)json_array_size(f))
        rp_printf(b, "<p class=\"muted\">%lld more not listed.</p>",
                  (long long)(total - (json_int_t)json_array_size(f)));
}

static void query_table(rp_buf *b, const char *title, const json_t *list, bool by_total)
{
    if (json_array_size(list) == 0)
        return;
    rp_printf(b, "<h4>%s</h4><div class=\"tw\"><table><thead><tr><th class=\"n\">%s</th>"
              "<th class=\"n\">count</th><th class=\"n\">avg</th><th>query</th></tr></thead>"
              "<tbody>", title, by_total ? "total" : "max");
    size_t i;
    const json_t *q;
    json_array_foreach(list, i, q)
    {
        rp_put(b, "<tr>");
        td_ms(b, json_object_get(q, by_total ? "total_ms" : "max_ms"));
        td_int(b, rp_int(q, "count"));
        td_ms(b, json_object_get(q, "avg_ms"));
        td_text(b, "q", rp_str(q, "query"));
        rp_put(b, "</tr>");
    }
    rp_put(b, "</tbody></table></div>");
}

static void log_analysis_html(rp_buf *b, const json_t *la)
{
    char t[32];
    rp_fmt_ms(rp_num(la, "query_duration_ms"), t, sizeof t);
    rp_printf(b, "<p>%lld log entries, %lld queries (%s in total), <strong>%lld errors</strong>."
              "</p>", (long long)rp_int(la, "entries"), (long long)rp_int(la, "queries_total"), t,
              (long long)rp_int(la, "errors_total"));
    query_table(b, "Slowest queries", json_object_get(la, "slowest"), false);
    query_table(b, "Most time-consuming queries", json_object_get(la, "most_time"), true);
    const json_t *cl = json_object_get(la, "error_classes");
    if (json_array_size(cl) == 0)
        return;
    rp_put(b, "<h4>Errors by class</h4><div class=\"tw\"><table><thead><tr><th class=\"n\">count"
              "</th><th>level</th><th>class</th><th>SQLSTATE</th></tr></thead><tbody>");
    size_t i;
    const json_t *c;
    json_array_foreach(cl, i, c)
    {
        char *st = rp_keys_text(json_object_get(c, "sqlstate"));
        rp_put(b, "<tr>");
        td_int(b, rp_int(c, "count"));
        td_text(b, NULL, rp_str(c, "level"));
        td_text(b, NULL, rp_str(c, "message_class"));
        td_text(b, "q", st ? st : "");
        rp_put(b, "</tr>");
        free(st);
    }
    rp_put(b, "</tbody></table></div>");
}

/* The row behind an alert as a one-row table, its columns in the query's
 * order when it is known (`columns`, names), else in the row's. */
static void row_table(rp_buf *b, const json_t *row, const json_t *columns)
{
    json_t *names = json_array();
    size_t i;
    const json_t *c;
    json_array_foreach(columns, i, c) if (json_object_get(row, json_string_value(c)))
        json_array_append(names, (json_t *)c);
    const char *k;
    const json_t *x;
    json_object_foreach((json_t *)row, k, x)
    {
        bool listed = false;
        json_array_foreach(names, i, c) listed = listed || strcmp(json_string_value(c), k) == 0;
        if (!listed)
            json_array_append_new(names, json_string(k));
    }
    rp_put(b, "<div class=\"tw\"><table><thead><tr>");
    json_array_foreach(names, i, c)
    {
        rp_put(b, "<th>");
        esc(b, json_string_value(c));
        rp_put(b, "</th>");
    }
    rp_put(b, "</tr></thead><tbody><tr>");
    json_array_foreach(names, i, c)
    {
        char *t = rp_value_text(json_object_get(row, json_string_value(c)));
        td_text(b, "q", t ? t : "");
        free(t);
    }
    rp_put(b, "</tr></tbody></table></div>");
    json_decref(names);
}

static void alert_html(rp_buf *b, const json_t *q, const json_t *a)
{
    const char *st = rp_str(a, "status");
    char *v = rp_value_text(json_object_get(a, "value"));
    rp_printf(b, "<div class=\"alert%s\">", strcmp(st, "critical") == 0 ? " critical" : "");
    chip(b, st);
    rp_put(b, " <strong>");
    esc(b, rp_str(q, "name"));
    rp_put(b, "</strong>: ");
    esc(b, rp_str(a, "threshold"));
    rp_put(b, " (value <code>");
    esc(b, v ? v : "");
    rp_put(b, "</code>)");
    free(v);
    const json_t *row = json_object_get(a, "row");
    if (json_is_object(row))
        row_table(b, row, json_object_get(q, "columns"));
    rp_put(b, "</div>");
}

static void custom_sql_html(rp_buf *b, const json_t *cs)
{
    rp_put(b, "<div class=\"tw\"><table><thead><tr><th>query</th><th>status</th>"
              "<th class=\"n\">rows</th><th class=\"n\">alerts</th></tr></thead><tbody>");
    size_t i, j;
    const json_t *q, *a;
    json_array_foreach(json_object_get(cs, "queries"), i, q)
    {
        rp_put(b, "<tr>");
        td_text(b, NULL, rp_str(q, "name"));
        rp_put(b, "<td>");
        chip(b, rp_str(q, "status"));
        rp_put(b, "</td>");
        td_int(b, rp_int(q, "row_count"));
        td_int(b, rp_int(q, "alert_count"));
        rp_put(b, "</tr>");
    }
    rp_put(b, "</tbody></table></div>");
    json_array_foreach(json_object_get(cs, "queries"), i, q)
    {
        if (json_object_get(q, "error")) {
            rp_put(b, "<div class=\"alert critical\">");
            chip(b, "unknown");
            rp_put(b, " <strong>");
            esc(b, rp_str(q, "name"));
            rp_put(b, "</strong>: ");
            esc(b, rp_str(q, "error"));
            rp_put(b, "</div>");
        }
        json_array_foreach(json_object_get(q, "alerts"), j, a) alert_html(b, q, a);
        if (json_is_true(json_object_get(q, "alerts_truncated"))) {
            rp_printf(b, "<p class=\"muted\">%lld alerts in all for ",
                      (long long)rp_int(q, "alert_count"));
            esc(b, rp_str(q, "name"));
            rp_printf(b, "; the first %zu are shown.</p>",
                      json_array_size(json_object_get(q, "alerts")));
        }
    }
}

static void analyses_html(rp_buf *b, const json_t *list)
{
    size_t i;
    const json_t *a;
    json_array_foreach(list, i, a)
    {
        const json_t *la = json_object_get(a, "log_analysis"),
                     *cs = json_object_get(a, "custom_sql");
        const json_t *prev = json_object_get(a, "previous");
        rp_put(b, "<h3>");
        esc(b, rp_str(a, "type"));
        rp_put(b, " <code>");
        esc(b, rp_str(a, "task"));
        rp_put(b, "</code>");
        if (cs) {
            rp_put(b, " ");
            chip(b, rp_str(cs, "status"));
        }
        rp_put(b, "</h3><p class=\"muted\">Latest result ");
        char when[32];
        esc(b, rp_fmt_time(rp_str(a, "created_at"), true, when, sizeof when));
        rp_printf(b, " (execution %lld).", (long long)rp_int(a, "execution_id"));
        if (la && json_is_object(prev))
            rp_printf(b, " Previous period: %lld queries, %lld errors.",
                      (long long)rp_int(prev, "queries_total"),
                      (long long)rp_int(prev, "errors_total"));
        else if (cs && json_is_object(prev)) {
            rp_put(b, " Previous period: ");
            esc(b, rp_str(prev, "status"));
            rp_put(b, ".");
        }
        rp_put(b, "</p>");
        if (la)
            log_analysis_html(b, la);
        else if (cs)
            custom_sql_html(b, cs);
    }
}

static void connection_html(rp_buf *b, const json_t *c)
{
    const char *name = json_string_value(json_object_get(c, "connection"));
    rp_put(b, "<section class=\"panel\"><h2>");
    if (name) {
        rp_put(b, "Connection <code>");
        esc(b, name);
        rp_put(b, "</code>");
    } else {
        rp_put(b, "Tasks without a connection");
    }
    rp_put(b, "</h2>");
    cards(b, c);
    tasks_table(b, json_object_get(c, "tasks"));
    failures_table(b, c);
    analyses_html(b, json_object_get(c, "analyses"));
    rp_put(b, "</section>");
}

char *rp_html(const json_t *m)
{
    rp_buf b = {0};
    const json_t *p = json_object_get(m, "period"), *sc = json_object_get(m, "scope");
    const json_t *pp = json_object_get(m, "previous_period"), *sum = json_object_get(m, "summary");
    rp_put(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
               "<title>");
    esc(&b, rp_str(m, "title"));
    rp_put(&b, ": ");
    esc(&b, rp_str(p, "label"));
    rp_printf(&b, "</title><style>%s</style></head><body><main><header><h1>", css);
    esc(&b, rp_str(m, "title"));
    rp_put(&b, ": ");
    esc(&b, rp_str(p, "label"));
    rp_put(&b, "</h1><p class=\"sub\">");
    char t1[32], t2[32];
    esc(&b, rp_fmt_time(rp_str(p, "start"), false, t1, sizeof t1));
    rp_put(&b, " to ");
    esc(&b, rp_fmt_time(rp_str(p, "end"), false, t2, sizeof t2));
    rp_put(&b, " (");
    esc(&b, rp_str(p, "timezone"));
    rp_put(&b, ") &#183; ");
    if (json_is_string(json_object_get(sc, "connection"))) {
        rp_put(&b, "connection ");
        esc(&b, rp_str(sc, "connection"));
    } else {
        rp_put(&b, "all connections");
    }
    rp_put(&b, " &#183; compared with ");
    esc(&b, rp_fmt_time(rp_str(pp, "start"), false, t1, sizeof t1));
    rp_put(&b, " to ");
    esc(&b, rp_fmt_time(rp_str(pp, "end"), false, t2, sizeof t2));
    rp_put(&b, "</p></header>");
    if (json_is_true(json_object_get(sum, "nothing_ran")))
        rp_put(&b, "<div class=\"notice\"><strong>Nothing ran in this period</strong>: no task "
                   "execution was recorded.</div>");
    cards(&b, sum);
    charts(&b, m);
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(m, "connections"), i, c) connection_html(&b, c);
    rp_put(&b, "<footer>Generated ");
    esc(&b, rp_str(m, "generated_at"));
    rp_put(&b, " by ");
    esc(&b, rp_str(m, "generator"));
    rp_put(&b, ".</footer></main></body></html>\n");
    if (b.oom) {
        rp_buf_free(&b);
        return NULL;
    }
    return b.s;
}
