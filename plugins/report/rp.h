/*
 * rp.h - the report plugin's internal interface (nothing here is exported:
 * the plugin is built with hidden visibility and its one public symbol is
 * pgreviewer_plugin_v1 in report.c).
 *
 * The flow of one run: report.c reads the params, rp_collect.c turns the
 * store's rows into the report model (a jansson document, which is also
 * the JSON format, schema in README.md), rp_markdown.c and rp_html.c
 * render the model, and report.c hands the bodies to the host and
 * optionally delivers them (a directory, a webhook).
 */
#ifndef RP_H
#define RP_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define RP_VERSION "1.0.0"
#define RP_SCHEMA_VERSION 1
#define RP_BUCKETS 24

/* ---- rp_text.c: a growable string and escaping ------------------------ */

/* A growable NUL-terminated string. Allocation failures set `oom` and
 * later appends are dropped: the caller checks oom once at the end
 * (a plugin never aborts its executor). */
typedef struct rp_buf {
    char *s;
    size_t len, cap;
    bool oom;
} rp_buf;

void rp_put(rp_buf *b, const char *s);
void rp_putn(rp_buf *b, const char *s, size_t n);
void rp_printf(rp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s with & < > " ' escaped for HTML text and attributes. */
void rp_put_html(rp_buf *b, const char *s);
/* Append s for a Markdown table cell: | escaped, newlines as spaces,
 * cut at `max` bytes (0: no limit) with an ellipsis. */
void rp_put_md_cell(rp_buf *b, const char *s, size_t max);
void rp_buf_free(rp_buf *b);

/* "350 ms", "1.25 s", "2.5 min", "1.5 h"; "-" for a negative value. */
void rp_fmt_ms(double ms, char *out, size_t len);
/* An ISO-8601 time of the model without its offset, for display (every
 * time in a report is in the report's zone, which the header names):
 * "2026-11-21 13:00:00", or "2026-11-21 13:00" without seconds. Returns out. */
const char *rp_fmt_time(const char *iso, bool seconds, char *out, size_t len);
/* "+12", "-3", "0". */
void rp_fmt_delta(json_int_t d, char *out, size_t len);
/* Shorthands for reading the model (absent keys give 0 / "" / NULL). */
json_int_t rp_int(const json_t *o, const char *key);
double rp_num(const json_t *o, const char *key);
const char *rp_str(const json_t *o, const char *key);
/* A JSON value as short text ("null", numbers, strings unquoted, objects
 * compact), into a malloc'ed string or NULL on OOM. */
char *rp_value_text(const json_t *v);
/* The keys of an object joined with ", " (SQLSTATE counts: "40P01, 23505"),
 * else rp_value_text(v). Malloc'ed, NULL on OOM. */
char *rp_keys_text(const json_t *v);

/* ---- rp_collect.c: the model ------------------------------------------ */

typedef struct rp_request {
    const char *date;       /* YYYY-MM-DD or NULL */
    const char *from, *to;  /* ISO-8601 or NULL */
    const char *timezone;   /* never NULL */
    const char *connection; /* NULL: all */
    const char *title;
    int top;
    int max_failures;
} rp_request;

/* Query the store on `conn` and build the report model. The queries run in
 * the connection's transaction (the host's read-only one), or in one of
 * their own when the connection is idle; the time zone is set in it. Returns a new reference, or NULL
 * with a message in err (a bad date, zone or period; a failed query). */
json_t *rp_collect(PGconn *conn, const rp_request *req, char *err, size_t errlen);

/* ---- rp_markdown.c, rp_html.c: the renderers --------------------------- */

/* Render the model. Return a malloc'ed string (the caller frees it), or
 * NULL when memory ran out. */
char *rp_markdown(const json_t *model);
char *rp_html(const json_t *model);

#endif
