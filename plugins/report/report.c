/*
 * report.c - the `report` task type: a report for a period built from the
 * analytics store, in JSON, Markdown and self-contained HTML.
 *
 * The task names the reserved connection `store`; the host opens the store
 * in a read-only transaction and hands it over, so this plugin cannot write
 * the store. It returns the report bodies in its result document instead:
 *
 *   {"schema_version": 1, "period": {...}, "scope": {...}, "summary": {...},
 *    "reports": {"json": {model}, "markdown": "...", "html": "..."}}
 *
 * and the host, when it stores the result, also stores one row per format
 * in `reports` (core/report_store.c). Optionally the bodies are written to
 * `output_dir` and the JSON is POSTed to a webhook (libcurl, with a timeout
 * and retries; the URL's credentials and query string never appear in a
 * message or log line).
 *
 * Everything is static but the entry point; the plugin includes only
 * <pgreviewer/plugin.h> from pgreviewer, and links libpq, jansson and
 * libcurl itself.
 */
#include <pgreviewer/plugin.h>

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rp.h"

typedef struct opts {
    rp_request req;
    bool want[3];          /* json, markdown, html */
    const char *output_dir;
    const json_t *webhook; /* object or NULL */
} opts;

static const char *const format_names[3] = {"json", "markdown", "html"};
static const char *const format_ext[3] = {"json", "md", "html"};

static const char *opt_str(const json_t *p, const char *key)
{
    return json_string_value(json_object_get(p, key));
}

static int parse_formats(const json_t *arr, opts *o, char *err, size_t errlen)
{
    if (!arr) {
        o->want[0] = o->want[1] = o->want[2] = true;
        return 0;
    }
    size_t i;
    const json_t *f;
    json_array_foreach(arr, i, f)
    {
        const char *s = json_string_value(f);
        int k = -1;
        for (int j = 0; j < 3 && s; j++)
            if (strcmp(s, format_names[j]) == 0 || strcmp(s, format_ext[j]) == 0)
                k = j;
        if (k < 0) {
            snprintf(err, errlen, "formats: unknown format \"%s\" (valid: json, markdown, html)",
                     s ? s : "(not a string)");
            return -1;
        }
        o->want[k] = true;
    }
    if (!o->want[0] && !o->want[1] && !o->want[2]) {
        snprintf(err, errlen, "formats: give at least one of json, markdown, html");
        return -1;
    }
    return 0;
}

/* Read the params (already validated against report.yaml by the host). */
static int parse_opts(const json_t *p, opts *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->req.date = opt_str(p, "date");
    o->req.from = opt_str(p, "from");
    o->req.to = opt_str(p, "to");
    o->req.timezone = opt_str(p, "timezone") ? opt_str(p, "timezone") : "UTC";
    o->req.connection = opt_str(p, "connection");
    o->req.title = opt_str(p, "title") ? opt_str(p, "title") : "pgreviewer report";
    json_int_t top = json_integer_value(json_object_get(p, "top"));
    json_int_t maxf = json_integer_value(json_object_get(p, "max_failures"));
    o->req.top = top > 0 ? (int)top : 5;
    o->req.max_failures = json_object_get(p, "max_failures") ? (int)maxf : 50;
    o->output_dir = opt_str(p, "output_dir");
    o->webhook = json_object_get(p, "webhook");
    if (o->webhook && !json_is_string(json_object_get(o->webhook, "url"))) {
        snprintf(err, errlen, "webhook: expected {url: \"https://...\", timeout: 10, retries: 2}");
        return -1;
    }
    return parse_formats(json_object_get(p, "formats"), o, err, errlen);
}

/* ---- delivery ----------------------------------------------------------- */

/* `url` without its user:password@ and query string, for messages. */
static void redact_url(const char *url, char *out, size_t len)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *end = host + strcspn(host, "/?#");
    const char *at = NULL;
    for (const char *p = host; p < end; p++)
        if (*p == '@')
            at = p;
    const char *path = end, *q = end + strcspn(end, "?#");
    snprintf(out, len, "%.*s%s%.*s%.*s%s", (int)(host - url), url, at ? "***@" : "",
             (int)(end - (at ? at + 1 : host)), at ? at + 1 : host, (int)(q - path), path,
             *q ? "?***" : "");
}

static int write_file(const char *dir, const char *name, const char *body, char *err,
                      size_t errlen)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fputs(body, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "output_dir: cannot write %.900s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_outputs(const opts *o, const char *label, char *const bodies[3], char *err,
                         size_t errlen)
{
    for (int k = 0; k < 3; k++) {
        if (!bodies[k])
            continue;
        char name[256];
        snprintf(name, sizeof name, "report-%s.%s", label, format_ext[k]);
        if (write_file(o->output_dir, name, bodies[k], err, errlen) < 0)
            return -1;
    }
    return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* One POST. Returns 0 on a 2xx, else -1 with the reason in why. */
static int post_once(const char *url, const char *body, long timeout_s, char *why, size_t len)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, len, "cannot initialise libcurl");
        return -1;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "pgreviewer-report/" RP_VERSION);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        /* libcurl's own text, never the URL */
        snprintf(why, len, "%s", curl_easy_strerror(rc));
        return -1;
    }
    if (status < 200 || status > 299) {
        snprintf(why, len, "HTTP status %ld", status);
        return -1;
    }
    return 0;
}

/* POST the JSON report, retrying with a short back-off (1 s, 2 s, 4 s...)
 * while the task has time left. Returns 0, or -1 with err filled. */
static int post_webhook(const pgr_host *host, pgr_task *task, const json_t *wh,
                        const char *body, char *err, size_t errlen)
{
    const char *url = json_string_value(json_object_get(wh, "url"));
    json_int_t timeout = json_integer_value(json_object_get(wh, "timeout"));
    json_int_t retries = json_object_get(wh, "retries")
                             ? json_integer_value(json_object_get(wh, "retries"))
                             : 2;
    char shown[512], why[256] = "";
    redact_url(url, shown, sizeof shown);
    long delay_ms = 1000;
    for (json_int_t attempt = 0; attempt <= retries; attempt++) {
        if (attempt > 0) {
            int64_t left = host->remaining_ms(task);
            if (host->cancelled(task) || (left >= 0 && left < delay_ms + 1000))
                break;
            pgr_logf(host, task, PGR_LOG_WARNING, "webhook %s: %s; retrying in %ld ms", shown,
                     why, delay_ms);
            /* A back-off between attempts, not a synchronisation. */
            struct timespec d = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
            nanosleep(&d, NULL);
            delay_ms *= 2;
        }
        if (post_once(url, body, timeout > 0 ? (long)timeout : 10, why, sizeof why) == 0)
            return 0;
    }
    snprintf(err, errlen, "webhook %s: %s", shown, why);
    return -1;
}

/* ---- the run ------------------------------------------------------------ */

/* The result document around the rendered bodies. Takes `model`. */
static json_t *result_doc(json_t *model, char *const bodies[3])
{
    json_t *reports = json_object();
    if (bodies[0])
        json_object_set(reports, "json", model);
    if (bodies[1])
        json_object_set_new(reports, "markdown", json_string(bodies[1]));
    if (bodies[2])
        json_object_set_new(reports, "html", json_string(bodies[2]));
    const json_t *sum = json_object_get(model, "summary");
    json_t *doc = json_pack(
        "{s:i, s:O, s:O, s:{s:I, s:I, s:I, s:O}, s:o}", "schema_version", RP_SCHEMA_VERSION,
        "period", json_object_get(model, "period"), "scope", json_object_get(model, "scope"),
        "summary", "executions", rp_int(sum, "executions"), "failed",
        rp_int(json_object_get(sum, "by_status"), "failed"), "analyses",
        rp_int(sum, "analyses"), "nothing_ran", json_object_get(sum, "nothing_ran"), "reports",
        reports);
    json_decref(model);
    return doc;
}

static pgr_outcome fail_with(const pgr_host *host, pgr_task *task, pgr_outcome o,
                             const char *msg)
{
    host->set_message(task, msg);
    return o;
}

/* Render the wanted formats into bodies[] (malloc'ed, NULL when not wanted). */
static int render(const opts *o, const json_t *model, char *bodies[3])
{
    bodies[0] = o->want[0] ? json_dumps(model, JSON_INDENT(2)) : NULL;
    bodies[1] = o->want[1] ? rp_markdown(model) : NULL;
    bodies[2] = o->want[2] ? rp_html(model) : NULL;
    for (int k = 0; k < 3; k++)
        if (o->want[k] && !bodies[k])
            return -1;
    return 0;
}

static pgr_outcome deliver(const pgr_host *host, pgr_task *task, const opts *o,
                           const json_t *model, char *const bodies[3])
{
    char err[1024];
    const char *label = rp_str(json_object_get(model, "period"), "file_label");
    if (o->output_dir && write_outputs(o, label, bodies, err, sizeof err) < 0)
        return fail_with(host, task, PGR_FAIL, err);
    if (o->webhook) {
        char *body = bodies[0] ? NULL : json_dumps(model, JSON_COMPACT);
        int rc = post_webhook(host, task, o->webhook, bodies[0] ? bodies[0] : body, err,
                              sizeof err);
        free(body);
        if (rc < 0)
            return fail_with(host, task, PGR_RETRY, err);
    }
    return PGR_SUCCESS;
}

static pgr_outcome report_run(const pgr_host *host, pgr_task *task, void *data)
{
    (void)data;
    char err[1024];
    opts o;
    json_t *params = json_loads(host->params_json(task), 0, NULL);
    if (!params || parse_opts(params, &o, err, sizeof err) < 0) {
        json_decref(params);
        return fail_with(host, task, PGR_FAIL, params ? err : "params: not a JSON object");
    }
    const char *cerr = NULL;
    if (!host->connection_id(task)) {
        json_decref(params);
        return fail_with(host, task, PGR_FAIL,
                         "report: the task needs `connection: store` (the analytics store)");
    }
    PGconn *conn = (PGconn *)host->connection(task, &cerr);
    if (!conn) {
        json_decref(params);
        return fail_with(host, task, PGR_RETRY, cerr ? cerr : "report: no connection");
    }
    json_t *model = rp_collect(conn, &o.req, err, sizeof err);
    if (!model) {
        json_decref(params);
        return fail_with(host, task, PQstatus(conn) == CONNECTION_OK ? PGR_FAIL : PGR_RETRY, err);
    }
    char *bodies[3] = {NULL, NULL, NULL};
    pgr_outcome out = PGR_SUCCESS;
    if (render(&o, model, bodies) < 0)
        out = fail_with(host, task, PGR_RETRY, "report: out of memory while rendering");
    if (out == PGR_SUCCESS)
        out = deliver(host, task, &o, model, bodies);
    if (out == PGR_SUCCESS) {
        const json_t *sum = json_object_get(model, "summary");
        pgr_messagef(host, task, "report %s: %lld executions, %lld failed, %lld analyses",
                     rp_str(json_object_get(model, "period"), "label"),
                     (long long)rp_int(sum, "executions"),
                     (long long)rp_int(json_object_get(sum, "by_status"), "failed"),
                     (long long)rp_int(sum, "analyses"));
        json_t *doc = result_doc(json_incref(model), bodies);
        char *text = json_dumps(doc, JSON_COMPACT);
        if (!text || host->set_result(task, text) < 0)
            out = fail_with(host, task, PGR_RETRY, "report: could not hand over the result");
        free(text);
        json_decref(doc);
    }
    for (int k = 0; k < 3; k++)
        free(bodies[k]);
    json_decref(model);
    json_decref(params);
    return out;
}

static int report_init(const pgr_host *host, const char *config_json, void **data, char *err,
                       size_t errlen)
{
    (void)host;
    (void)config_json;
    (void)data;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "report: libcurl could not be initialised");
        return -1;
    }
    return 0;
}

static void report_fini(void *data)
{
    (void)data;
    curl_global_cleanup();
}

static const char *const types[] = {"report", NULL};

static const pgr_plugin report_plugin = {
    .head = PGR_PLUGIN_HEAD,
    .name = "report",
    .version = RP_VERSION,
    .description = "Periodic reports over stored results (JSON, Markdown, self-contained HTML)",
    .task_types = types,
    .init = report_init,
    .run = report_run,
    .fini = report_fini,
};

PGR_PLUGIN_EXPORT(report_plugin)
