/*
 * api.c - see api.h. Routing is a plain walk over the path segments; every
 * answer is JSON (or Prometheus text for /metrics) built in memory and
 * handed to libmicrohttpd to free.
 */
#include "api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"
#include "store.h"

#define MAX_BODY (1024 * 1024)
#define MAX_HOOKS 8

struct api_server {
    const pgr_config *cfg;
    struct MHD_Daemon *mhd;
    int port;
    store *store;      /* owned by the MHD thread once started */
    queue *queue;
    api_metrics_fn hooks[MAX_HOOKS];
    void *hook_ctx[MAX_HOOKS];
    int n_hooks;
};

typedef struct reply {
    unsigned status;
    char *body;
    const char *type;
} reply;

/* ---- helpers ---------------------------------------------------------- */

static reply json_reply(unsigned status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    return (reply){status, s ? s : xstrdup("null"), "application/json"};
}

static reply error_reply(unsigned status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static reply error_reply(unsigned status, const char *fmt, ...)
{
    strbuf sb = {0};
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    json_t *j = json_pack("{s:s}", "error", sb.buf ? sb.buf : "");
    sb_free(&sb);
    return json_reply(status, j);
}

/* The API's store connection, reopened when it broke. NULL with err. */
static store *api_store(api_server *api, char *err, size_t errlen)
{
    if (api->store && PQstatus(store_conn(api->store)) != CONNECTION_OK) {
        store_close(api->store);
        api->store = NULL;
    }
    if (!api->store)
        api->store = store_open_config(api->cfg, err, errlen);
    return api->store;
}

static queue *api_queue(api_server *api, char *err, size_t errlen)
{
    if (!api->cfg->queue.url) {
        set_err(err, errlen, "no shared queue configured (queue.url)");
        return NULL;
    }
    if (!api->queue)
        api->queue = queue_open(api->cfg->queue.url, api->cfg->queue.prefix, err, errlen);
    return api->queue;
}

static int query_int(struct MHD_Connection *c, const char *key, int def, int max)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
    if (!v || !*v)
        return def;
    long n = strtol(v, NULL, 10);
    return n < 1 ? def : n > max ? max : (int)n;
}

/* ---- /metrics --------------------------------------------------------- */

static void metrics_store(api_server *api, strbuf *out)
{
    char err[512];
    store *s = api_store(api, err, sizeof err);
    sb_append(out, "# HELP pgreviewer_store_up Whether the API could reach the store.\n"
                   "# TYPE pgreviewer_store_up gauge\n");
    sb_printf(out, "pgreviewer_store_up %d\n", s ? 1 : 0);
    if (!s)
        return;
    PGresult *r = PQexec(store_conn(s), "SELECT status, count(*) FROM task_executions GROUP BY 1 "
                                        "ORDER BY 1");
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        sb_append(out, "# HELP pgreviewer_executions Executions in the store by status.\n"
                       "# TYPE pgreviewer_executions gauge\n");
        for (int i = 0; i < PQntuples(r); i++)
            sb_printf(out, "pgreviewer_executions{status=\"%s\"} %s\n", PQgetvalue(r, i, 0),
                      PQgetvalue(r, i, 1));
    }
    PQclear(r);
    r = PQexec(store_conn(s),
               "SELECT count(*) FILTER (WHERE removed_at IS NULL AND NOT paused), "
               "count(*) FILTER (WHERE removed_at IS NULL AND paused) FROM scheduled_tasks");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        sb_append(out, "# HELP pgreviewer_tasks Scheduled tasks by state.\n"
                       "# TYPE pgreviewer_tasks gauge\n");
        sb_printf(out, "pgreviewer_tasks{state=\"active\"} %s\n", PQgetvalue(r, 0, 0));
        sb_printf(out, "pgreviewer_tasks{state=\"paused\"} %s\n", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    /* Durations of the last hour's finished executions, as a histogram. */
    static const double bounds[] = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
    r = PQexec(store_conn(s), "SELECT extract(epoch FROM completed_at - started_at) FROM "
                              "task_executions WHERE completed_at > now() - interval '1 hour' "
                              "AND started_at IS NOT NULL");
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        size_t nb = sizeof bounds / sizeof bounds[0];
        long counts[16] = {0};
        double sum = 0;
        for (int i = 0; i < PQntuples(r); i++) {
            double d = strtod(PQgetvalue(r, i, 0), NULL);
            sum += d;
            for (size_t b = 0; b < nb; b++)
                counts[b] += d <= bounds[b];
        }
        sb_append(out, "# HELP pgreviewer_task_duration_seconds Durations of executions "
                       "finished in the last hour.\n"
                       "# TYPE pgreviewer_task_duration_seconds histogram\n");
        for (size_t b = 0; b < nb; b++)
            sb_printf(out, "pgreviewer_task_duration_seconds_bucket{le=\"%g\"} %ld\n", bounds[b],
                      counts[b]);
        sb_printf(out, "pgreviewer_task_duration_seconds_bucket{le=\"+Inf\"} %d\n",
                  PQntuples(r));
        sb_printf(out, "pgreviewer_task_duration_seconds_sum %.6f\n", sum);
        sb_printf(out, "pgreviewer_task_duration_seconds_count %d\n", PQntuples(r));
    }
    PQclear(r);
}

static void metrics_queue(api_server *api, strbuf *out)
{
    char err[512];
    queue *q = api_queue(api, err, sizeof err);
    queue_stats st;
    if (!q || queue_stats_get(q, &st, err, sizeof err) < 0)
        return;
    sb_append(out, "# HELP pgreviewer_queue_depth Items ready to run, by priority.\n"
                   "# TYPE pgreviewer_queue_depth gauge\n");
    for (int p = 0; p < QUEUE_PRIORITIES; p++)
        sb_printf(out, "pgreviewer_queue_depth{priority=\"%d\"} %lld\n", p, (long long)st.ready[p]);
    sb_append(out, "# HELP pgreviewer_queue_lag_seconds Age of the oldest ready item, by "
                   "priority.\n# TYPE pgreviewer_queue_lag_seconds gauge\n");
    for (int p = 0; p < QUEUE_PRIORITIES; p++)
        sb_printf(out, "pgreviewer_queue_lag_seconds{priority=\"%d\"} %.3f\n", p,
                  (double)st.lag_ms[p] / 1000.0);
    sb_printf(out, "# TYPE pgreviewer_queue_delayed gauge\npgreviewer_queue_delayed %lld\n",
              (long long)st.delayed);
    sb_printf(out, "# TYPE pgreviewer_queue_leased gauge\npgreviewer_queue_leased %lld\n",
              (long long)st.leased);
    sb_printf(out, "# TYPE pgreviewer_queue_dead gauge\npgreviewer_queue_dead %lld\n",
              (long long)st.dead);
}

static reply get_metrics(api_server *api)
{
    strbuf out = {0};
    sb_append(&out, "# TYPE pgreviewer_up gauge\npgreviewer_up 1\n");
    metrics_store(api, &out);
    metrics_queue(api, &out);
    for (int i = 0; i < api->n_hooks; i++)
        api->hooks[i](api->hook_ctx[i], &out);
    return (reply){200, sb_steal(&out), "text/plain; version=0.0.4"};
}

/* ---- /api ------------------------------------------------------------- */

static reply get_tasks(api_server *api)
{
    char err[512];
    store *s = api_store(api, err, sizeof err);
    if (!s)
        return error_reply(503, "store unavailable: %s", err);
    store_task *tasks;
    size_t n;
    if (store_task_list(s, false, &tasks, &n, err, sizeof err) < 0)
        return error_reply(500, "%s", err);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, store_task_json(&tasks[i]));
    store_tasks_free(tasks, n);
    return json_reply(200, arr);
}

static reply get_task(api_server *api, const char *name, bool history, int limit)
{
    char err[512];
    store *s = api_store(api, err, sizeof err);
    if (!s)
        return error_reply(503, "store unavailable: %s", err);
    store_task t;
    int rc = store_task_get(s, name, &t, err, sizeof err);
    if (rc > 0)
        return error_reply(404, "%s", store_task_not_found(s, name, err, sizeof err));
    if (rc < 0)
        return error_reply(500, "%s", err);
    json_t *j = store_task_json(&t);
    if (history) {
        store_execution *ex;
        size_t n;
        if (store_task_history(s, t.id, limit, &ex, &n, err, sizeof err) < 0) {
            store_task_clear(&t);
            json_decref(j);
            return error_reply(500, "%s", err);
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, store_execution_json(&ex[i]));
        store_executions_free(ex, n);
        json_decref(j);
        j = arr;
    }
    store_task_clear(&t);
    return json_reply(200, j);
}

/* Trigger: a manual execution in the store, then into the shared queue
 * when there is one (otherwise the `run` process's scheduler picks pending
 * executions up when it starts them). */
static reply post_trigger(api_server *api, const char *name, const char *body)
{
    char err[512];
    store *s = api_store(api, err, sizeof err);
    if (!s)
        return error_reply(503, "store unavailable: %s", err);
    if (body && *body) {
        json_t *p = json_loads(body, 0, NULL);
        bool ok = json_is_object(p);
        json_decref(p);
        if (!ok)
            return error_reply(400, "the body must be a JSON object of params, or empty");
    }
    int64_t id = 0;
    int rc = store_trigger(s, name, body && *body ? body : NULL, &id, err, sizeof err);
    if (rc != 0)
        return error_reply(rc > 0 ? 404 : 400, "%s", err);
    /* Whoever moves it from pending to queued enqueues it (the scheduler
     * does the same for the executions it is notified of). */
    store_task t;
    bool queued = false;
    queue *q = api_queue(api, err, sizeof err);
    if (q && store_task_get(s, name, &t, err, sizeof err) == 0) {
        queue_item it = {.id = id, .priority = t.priority, .attempt = 1};
        if (store_exec_mark_queued(s, &id, 1, err, sizeof err) == 1) {
            queued = queue_enqueue(q, &it, 1, err, sizeof err) == 0;
            if (!queued)
                log_error("api: execution %lld recorded but not enqueued: %s", (long long)id, err);
        }
        store_task_clear(&t);
    }
    return json_reply(202, json_pack("{s:I, s:s}", "execution_id", (json_int_t)id, "status",
                                     queued ? "queued" : "pending"));
}

static reply post_pause(api_server *api, const char *name, bool pause)
{
    char err[512];
    store *s = api_store(api, err, sizeof err);
    if (!s)
        return error_reply(503, "store unavailable: %s", err);
    int rc = pause ? store_task_pause(s, name, err, sizeof err)
                   : store_task_resume(s, name, err, sizeof err);
    if (rc != 0)
        return error_reply(rc > 0 ? 404 : 500, "%s", err);
    return json_reply(200, json_pack("{s:s, s:s}", "task", name, "state",
                                     pause ? "paused" : "active"));
}

static reply get_execution(api_server *api, const char *idtext)
{
    char err[512], *end;
    long long id = strtoll(idtext, &end, 10);
    if (*end || id <= 0)
        return error_reply(400, "execution id must be a positive integer, got \"%s\"", idtext);
    store *s = api_store(api, err, sizeof err);
    if (!s)
        return error_reply(503, "store unavailable: %s", err);
    store_execution e;
    int rc = store_exec_get(s, id, &e, err, sizeof err);
    if (rc != 0)
        return rc > 0 ? error_reply(404, "execution %lld not found", id) : error_reply(500, "%s", err);
    json_t *j = store_execution_json(&e);
    store_execution_clear(&e);
    return json_reply(200, j);
}

static reply get_executions(api_server *api, struct MHD_Connection *c)
{
    char err[512];
    const char *status = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status");
    store_status st;
    if (status && store_status_parse(status, &st) < 0)
        return error_reply(400, "unknown status \"%s\" (pending, queued, scheduled, running, "
                                "completed, failed, cancelled, skipped)",
                           status);
    int limit = query_int(c, "limit", 100, 10000);
    store *s = api_store(api, err, sizeof err);
    if (!s)
        return error_reply(503, "store unavailable: %s", err);
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *params[2] = {status, lim};
    PGresult *r = PQexecParams(store_conn(s),
                               "SELECT id FROM task_executions WHERE ($1::text IS NULL OR "
                               "status = $1) ORDER BY id DESC LIMIT $2::int",
                               2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        reply rep = error_reply(500, "%s", PQerrorMessage(store_conn(s)));
        PQclear(r);
        return rep;
    }
    json_t *arr = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        store_execution e;
        if (store_exec_get(s, strtoll(PQgetvalue(r, i, 0), NULL, 10), &e, err, sizeof err) == 0) {
            json_array_append_new(arr, store_execution_json(&e));
            store_execution_clear(&e);
        }
    }
    PQclear(r);
    return json_reply(200, arr);
}

static reply get_health(api_server *api)
{
    char err[512];
    bool store_ok = !api->cfg->store.url || api_store(api, err, sizeof err) != NULL;
    const char *qs = "in-process";
    if (api->cfg->queue.url)
        qs = api_queue(api, err, sizeof err) ? "ok" : "unavailable";
    return json_reply(store_ok ? 200 : 503,
                      json_pack("{s:s, s:s, s:s}", "status", store_ok ? "ok" : "degraded", "store",
                                !api->cfg->store.url ? "none" : store_ok ? "ok" : "unavailable",
                                "queue", qs));
}

/* Split "/api/tasks/NAME/history" into at most 4 segments (in place). */
static int split_path(char *path, char **seg, int max)
{
    int n = 0;
    for (char *p = strtok(path, "/"); p && n < max; p = strtok(NULL, "/"))
        seg[n++] = p;
    return strtok(NULL, "/") ? max + 1 : n;
}

static reply route(api_server *api, struct MHD_Connection *c, const char *method, const char *url,
                   const char *body)
{
    bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (get && !strcmp(url, "/health"))
        return get_health(api);
    if (get && !strcmp(url, "/metrics"))
        return get_metrics(api);
    char *path = xstrdup(url), *seg[5];
    int n = split_path(path, seg, 4);
    reply r = error_reply(404, "no such endpoint: %s %s", method, url);
    if (n >= 2 && !strcmp(seg[0], "api")) {
        free(r.body);
        r = error_reply(405, "method %s not allowed on %s", method, url);
        if (!strcmp(seg[1], "tasks") && n == 2 && get) {
            free(r.body);
            r = get_tasks(api);
        } else if (!strcmp(seg[1], "tasks") && n == 3 && get) {
            free(r.body);
            r = get_task(api, seg[2], false, 0);
        } else if (!strcmp(seg[1], "tasks") && n == 4 && get && !strcmp(seg[3], "history")) {
            free(r.body);
            r = get_task(api, seg[2], true, query_int(c, "limit", 20, 10000));
        } else if (!strcmp(seg[1], "tasks") && n == 4 && post && !strcmp(seg[3], "trigger")) {
            free(r.body);
            r = post_trigger(api, seg[2], body);
        } else if (!strcmp(seg[1], "tasks") && n == 4 && post &&
                   (!strcmp(seg[3], "pause") || !strcmp(seg[3], "resume"))) {
            free(r.body);
            r = post_pause(api, seg[2], !strcmp(seg[3], "pause"));
        } else if (!strcmp(seg[1], "executions") && n == 2 && get) {
            free(r.body);
            r = get_executions(api, c);
        } else if (!strcmp(seg[1], "executions") && n == 3 && get) {
            free(r.body);
            r = get_execution(api, seg[2]);
        } else if (!strcmp(seg[1], "stats") && n == 2 && get) {
            free(r.body);
            r = get_metrics(api);
        }
    }
    free(path);
    return r;
}

typedef struct request {
    strbuf body;
    bool too_big;
} request;

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_size, void **con_cls)
{
    (void)version;
    api_server *api = cls;
    request *req = *con_cls;
    if (!req) {
        *con_cls = req = xcalloc(1, sizeof *req);
        return MHD_YES;
    }
    if (*upload_size) {
        if (req->body.len + *upload_size > MAX_BODY)
            req->too_big = true;
        else
            sb_appendn(&req->body, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    reply r = req->too_big ? error_reply(413, "request body larger than %d bytes", MAX_BODY)
                           : route(api, c, method, url, req->body.buf);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(r.body), r.body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", r.type);
    enum MHD_Result rc = MHD_queue_response(c, r.status, resp);
    MHD_destroy_response(resp);
    log_debug("api: %s %s -> %u", method, url, r.status);
    return rc;
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls, (void)c, (void)code;
    request *req = *con_cls;
    if (req) {
        sb_free(&req->body);
        free(req);
    }
    *con_cls = NULL;
}

/* "host:port", "[v6]:port" or ":port" into a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char host[256] = "";
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return set_err(err, errlen, "api.listen: expected host:port, got \"%s\"", listen);
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host)
        return set_err(err, errlen, "api.listen: host too long");
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return set_err(err, errlen, "api.listen: bad port in \"%s\"", listen);
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[') {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        host[strlen(host) - 1] = '\0';
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
            return set_err(err, errlen, "api.listen: bad IPv6 address in \"%s\"", listen);
        return 0;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (!host[0] || !strcmp(host, "*"))
        a->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (!strcmp(host, "localhost"))
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
        return set_err(err, errlen, "api.listen: \"%s\" is not an IP address (use 127.0.0.1, "
                                    "[::1], 0.0.0.0 or localhost)",
                       host);
    return 0;
}

api_server *api_start(const pgr_config *cfg, char *err, size_t errlen)
{
    if (!cfg->api.listen || !*cfg->api.listen)
        return set_err(err, errlen, "the API is disabled (api.listen is empty)"), NULL;
    struct sockaddr_storage ss;
    if (parse_listen(cfg->api.listen, &ss, err, errlen) < 0)
        return NULL;
    api_server *api = xcalloc(1, sizeof *api);
    api->cfg = cfg;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    api->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handler, api, MHD_OPTION_SOCK_ADDR, &ss,
                                MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
                                MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!api->mhd) {
        set_err(err, errlen, "api: cannot listen on %s: %s", cfg->api.listen, strerror(errno));
        free(api);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_BIND_PORT);
    api->port = info ? info->port : 0;
    return api;
}

void api_add_metrics(api_server *api, api_metrics_fn fn, void *ctx)
{
    if (api->n_hooks < MAX_HOOKS) {
        api->hooks[api->n_hooks] = fn;
        api->hook_ctx[api->n_hooks++] = ctx;
    }
}

int api_port(const api_server *api)
{
    return api->port;
}

void api_stop(api_server *api)
{
    if (!api)
        return;
    MHD_stop_daemon(api->mhd);
    store_close(api->store);
    queue_close(api->queue);
    free(api);
}

static volatile sig_atomic_t api_stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    api_stop_flag = 1;
}

int cmd_api(const pgr_config *cfg, int argc, char **argv)
{
    if (argc > 0) {
        fprintf(stderr, "pgreviewer: usage: pgreviewer api [--config PATH]\n");
        return 2;
    }
    char err[512];
    /* Block the stop signals before the MHD thread exists, so that it
     * inherits the mask and only this thread (in sigsuspend) takes them. */
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t stop, none;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    sigemptyset(&none);
    api_server *api = api_start(cfg, err, sizeof err);
    if (!api) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        return 1;
    }
    log_set_component("api");
    log_info("listening on %s (port %d)", cfg->api.listen, api_port(api));
    while (!api_stop_flag)
        sigsuspend(&none); /* the MHD thread serves; we only wait for a signal */
    api_stop(api);
    log_info("stopped");
    return 0;
}
