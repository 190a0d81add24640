/*
 * cli_task.c - `pgreviewer task ...` and `pgreviewer execution show`: task
 * administration and the lifecycle of executions, read from and written to
 * the store (store.h). Output is aligned plain-text tables for people, or
 * one JSON document with --json for scripts.
 *
 * Every command opens the store named by store.url, applies missing
 * migrations and, when a configuration file was loaded (cfg->path set),
 * syncs its tasks first: the YAML is the truth for config-owned tasks, so
 * `task list` shows a task added to the YAML before any daemon ran.
 * Errors go to stderr as "pgreviewer: message"; exit codes: 0 ok,
 * 1 failure (unknown task, store error), 2 usage.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "util.h"

#define TASK_USAGE                                                                  \
    "usage: pgreviewer task list [--all] [--json]\n"                                \
    "       pgreviewer task show NAME [--json]\n"                                   \
    "       pgreviewer task trigger NAME [--params JSON] [--json]\n"                \
    "       pgreviewer task pause|resume|remove NAME\n"                             \
    "       pgreviewer task history NAME [--limit N] [--json]\n"

#define EXECUTION_USAGE "usage: pgreviewer execution show ID [--json]\n"

/* The options every sub-command may take, and the positional word. */
typedef struct task_opts {
    const char *name;    /* NAME or ID */
    const char *params;  /* --params */
    int limit;           /* --limit, default 20 */
    bool json, all;
} task_opts;

/* Parse argv[1..]. Returns 0, or 2 after printing what is wrong. */
static int parse_opts(int argc, char **argv, task_opts *o, const char *usage)
{
    memset(o, 0, sizeof *o);
    o->limit = 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--all") == 0) {
            o->all = true;
        } else if (strcmp(a, "--params") == 0 && i + 1 < argc) {
            o->params = argv[++i];
        } else if (strcmp(a, "--limit") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 100000) {
                fprintf(stderr, "pgreviewer: --limit: expected a number from 1 to 100000, "
                                "got \"%s\"\n",
                        argv[i]);
                return 2;
            }
            o->limit = (int)v;
        } else if (a[0] == '-' || o->name) {
            fprintf(stderr, "pgreviewer: unexpected argument \"%s\"\n%s", a, usage);
            return 2;
        } else {
            o->name = a;
        }
    }
    return 0;
}

/* "2026-11-22T09:12:00Z" (UTC), or "-" for 0. Returns buf (>= 24 bytes). */
static const char *fmt_time(int64_t ms, char *buf, size_t len)
{
    if (!ms) {
        snprintf(buf, len, "-");
        return buf;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static json_t *json_time(int64_t ms)
{
    char buf[32];
    if (!ms)
        return json_null();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%03dZ", (int)(ms % 1000));
    return json_string(buf);
}

static json_t *json_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* Parse a JSON text stored by us; a JSON null when absent or unparsable. */
static json_t *json_text(const char *text)
{
    json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return j ? j : json_null();
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
    printf("%s\n", s ? s : "null");
    free(s);
    json_decref(j);
}

/* ---- aligned tables ---------------------------------------------------------- */

typedef struct table {
    size_t ncols, nrows;
    char **cells;        /* (nrows + 1) * ncols, row 0 the header */
} table;

static void table_init(table *t, size_t ncols, const char *const *headers)
{
    t->ncols = ncols;
    t->nrows = 0;
    t->cells = xcalloc(ncols, sizeof *t->cells);
    for (size_t c = 0; c < ncols; c++)
        t->cells[c] = xstrdup(headers[c]);
}

/* Append a row of ncols strings (copied; NULL prints as "-"). */
static void table_add(table *t, const char *const *row)
{
    t->nrows++;
    t->cells = xrealloc(t->cells, (t->nrows + 1) * t->ncols * sizeof *t->cells);
    for (size_t c = 0; c < t->ncols; c++)
        t->cells[t->nrows * t->ncols + c] = xstrdup(row[c] && *row[c] ? row[c] : "-");
}

/* Print with two spaces between columns, the last column unpadded; frees t. */
static void table_print(table *t, const char *indent)
{
    size_t *w = xcalloc(t->ncols, sizeof *w);
    for (size_t r = 0; r <= t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t n = strlen(t->cells[r * t->ncols + c]);
            w[c] = n > w[c] ? n : w[c];
        }
    for (size_t r = 0; r <= t->nrows; r++) {
        fputs(indent, stdout);
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            if (c + 1 < t->ncols)
                printf("%-*s  ", (int)w[c], cell);
            else
                printf("%s\n", cell);
        }
    }
    for (size_t i = 0; i < (t->nrows + 1) * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(w);
}

/* ---- tasks ------------------------------------------------------------------------ */

static const char *task_state(const store_task *t)
{
    return t->removed_at_ms ? "removed" : t->paused ? "paused" : "active";
}

static const char *conc_name(cfg_concurrency c)
{
    return c == CONC_ALLOW ? "allow" : c == CONC_REPLACE ? "replace" : "forbid";
}

static const char *misfire_str(cfg_misfire m)
{
    return m == MISFIRE_SKIP ? "skip" : m == MISFIRE_RUN_ALL ? "run_all" : "run_once";
}

static const char *jitter_str(cfg_jitter j)
{
    return j == JITTER_NONE ? "none" : j == JITTER_EQUAL ? "equal" : "full";
}

json_t *store_task_json(const store_task *t)
{
    json_t *retry = json_pack("{s:i, s:I, s:f, s:I, s:s}", "max_attempts", t->retry.max_attempts,
                              "initial_ms", (json_int_t)t->retry.initial_ms, "multiplier",
                              t->retry.multiplier, "max_delay_ms",
                              (json_int_t)t->retry.max_delay_ms, "jitter",
                              jitter_str(t->retry.jitter));
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(t->id));
    json_object_set_new(j, "name", json_string(t->name));
    json_object_set_new(j, "type", json_string(t->task_type));
    json_object_set_new(j, "connection", json_str_or_null(t->connection_id));
    json_object_set_new(j, "schedule", json_str_or_null(t->cron_schedule));
    json_object_set_new(j, "timezone", json_str_or_null(t->timezone));
    json_object_set_new(j, "description", json_str_or_null(t->description));
    json_object_set_new(j, "state", json_string(task_state(t)));
    json_object_set_new(j, "owner", json_string(t->owner));
    json_object_set_new(j, "priority", json_integer(t->priority));
    json_object_set_new(j, "timeout_ms", json_integer(t->timeout_ms));
    json_object_set_new(j, "concurrency", json_string(conc_name(t->concurrency)));
    json_object_set_new(j, "misfire", json_string(misfire_str(t->misfire)));
    json_object_set_new(j, "misfire_grace_ms", json_integer(t->misfire_grace_ms));
    json_object_set_new(j, "jitter_ms", json_integer(t->jitter_ms));
    json_object_set_new(j, "retry", retry);
    json_object_set_new(j, "params", json_text(t->params_json));
    json_object_set_new(j, "last_run_at", json_time(t->last_run_at_ms));
    json_object_set_new(j, "next_run_at", json_time(t->next_run_at_ms));
    json_object_set_new(j, "removed_at", json_time(t->removed_at_ms));
    json_object_set_new(j, "created_at", json_time(t->created_at_ms));
    json_object_set_new(j, "updated_at", json_time(t->updated_at_ms));
    return j;
}

static int task_list(store *s, const task_opts *o)
{
    char err[512];
    store_task *tasks;
    size_t n;
    if (store_task_list(s, o->all, &tasks, &n, err, sizeof err) < 0) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        return 1;
    }
    if (o->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, store_task_json(&tasks[i]));
        print_json(arr);
    } else if (n == 0) {
        printf("no tasks (add some under tasks: in the configuration)\n");
    } else {
        static const char *const h[] = {"NAME",  "TYPE",  "CONNECTION", "SCHEDULE", "TIMEZONE",
                                        "STATE", "OWNER", "LAST RUN",   "NEXT RUN"};
        table t;
        table_init(&t, 9, h);
        for (size_t i = 0; i < n; i++) {
            char a[32], b[32];
            const store_task *k = &tasks[i];
            const char *row[] = {k->name,       k->task_type,  k->connection_id,
                                 k->cron_schedule ? k->cron_schedule : "(manual)",
                                 k->timezone,   task_state(k), k->owner,
                                 fmt_time(k->last_run_at_ms, a, sizeof a),
                                 fmt_time(k->next_run_at_ms, b, sizeof b)};
            table_add(&t, row);
        }
        table_print(&t, "");
    }
    store_tasks_free(tasks, n);
    return 0;
}

/* Look a task up by name; prints the not-found message. Returns 0, or 1. */
static int find_task(store *s, const char *name, store_task *t)
{
    char err[1024];
    int rc = store_task_get(s, name, t, err, sizeof err);
    if (rc == 1)
        store_task_not_found(s, name, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        return 1;
    }
    return 0;
}

static char *duration_text(const store_execution *e, char *buf, size_t len)
{
    if (!e->started_at_ms || !e->completed_at_ms || e->completed_at_ms < e->started_at_ms) {
        snprintf(buf, len, "-");
        return buf;
    }
    int64_t ms = e->completed_at_ms - e->started_at_ms;
    if (ms < 60000)
        snprintf(buf, len, "%.3fs", (double)ms / 1000.0);
    else
        format_duration_ms(ms, buf, len);
    return buf;
}

/* The history table of executions (newest first), indented. */
static void print_history(const store_execution *ex, size_t n, const char *indent)
{
    static const char *const h[] = {"ID",      "STATUS",   "TRIGGER", "SCHEDULED FOR",
                                    "STARTED", "DURATION", "ATTEMPT", "ERROR"};
    table t;
    table_init(&t, 8, h);
    for (size_t i = 0; i < n; i++) {
        const store_execution *e = &ex[i];
        char id[24], a[32], b[32], d[32], at[24];
        snprintf(id, sizeof id, "%lld", (long long)e->id);
        snprintf(at, sizeof at, "%d/%d", e->attempt, e->max_attempts);
        const char *why = e->error_message ? e->error_message : e->skipped_reason;
        const char *row[] = {id,
                             store_status_name(e->status),
                             e->trigger,
                             fmt_time(e->scheduled_for_ms, a, sizeof a),
                             fmt_time(e->started_at_ms, b, sizeof b),
                             duration_text(e, d, sizeof d),
                             at,
                             why};
        table_add(&t, row);
    }
    table_print(&t, indent);
}

json_t *store_execution_json(const store_execution *e)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(e->id));
    json_object_set_new(j, "task", json_str_or_null(e->task_name));
    json_object_set_new(j, "type", json_str_or_null(e->task_type));
    json_object_set_new(j, "connection", json_str_or_null(e->connection_id));
    json_object_set_new(j, "status", json_string(store_status_name(e->status)));
    json_object_set_new(j, "trigger", json_string(e->trigger));
    json_object_set_new(j, "retry_of", e->retry_of ? json_integer(e->retry_of) : json_null());
    json_object_set_new(j, "priority", json_integer(e->priority));
    json_object_set_new(j, "attempt", json_integer(e->attempt));
    json_object_set_new(j, "max_attempts", json_integer(e->max_attempts));
    json_object_set_new(j, "worker", json_str_or_null(e->worker));
    json_object_set_new(j, "error", json_str_or_null(e->error_message));
    json_object_set_new(j, "skipped_reason", json_str_or_null(e->skipped_reason));
    json_object_set_new(j, "scheduled_for", json_time(e->scheduled_for_ms));
    json_object_set_new(j, "not_before", json_time(e->not_before_ms));
    json_object_set_new(j, "created_at", json_time(e->created_at_ms));
    json_object_set_new(j, "queued_at", json_time(e->queued_at_ms));
    json_object_set_new(j, "scheduled_at", json_time(e->scheduled_at_ms));
    json_object_set_new(j, "started_at", json_time(e->started_at_ms));
    json_object_set_new(j, "completed_at", json_time(e->completed_at_ms));
    json_object_set_new(j, "cancelled_at", json_time(e->cancelled_at_ms));
    json_object_set_new(j, "recovered_at", json_time(e->recovered_at_ms));
    json_object_set_new(j, "params", json_text(e->params_json));
    json_object_set_new(j, "result", json_text(e->result_json));
    if (e->attempts) {
        json_t *arr = json_array();
        for (size_t i = 0; i < e->n_attempts; i++) {
            const store_attempt *a = &e->attempts[i];
            json_array_append_new(
                arr, json_pack("{s:i, s:o, s:i, s:o, s:o, s:o, s:o}", "attempt", a->attempt,
                               "worker_host", json_str_or_null(a->worker_host), "worker_pid",
                               a->worker_pid, "started_at", json_time(a->started_at_ms),
                               "finished_at", json_time(a->finished_at_ms), "outcome",
                               json_str_or_null(a->outcome), "error", json_str_or_null(a->error)));
        }
        json_object_set_new(j, "attempts", arr);
    }
    return j;
}

static void show_line(const char *key, const char *value)
{
    printf("%-14s%s\n", key, value && *value ? value : "-");
}

static void print_task(const store_task *k)
{
    char buf[256], d1[32], d2[32], d3[32];
    show_line("name:", k->name);
    show_line("type:", k->task_type);
    show_line("connection:", k->connection_id);
    if (k->cron_schedule)
        snprintf(buf, sizeof buf, "%s (%s)", k->cron_schedule, k->timezone);
    else
        snprintf(buf, sizeof buf, "(manual: runs only when triggered)");
    show_line("schedule:", buf);
    show_line("state:", task_state(k));
    show_line("owner:", k->owner);
    show_line("description:", k->description);
    snprintf(buf, sizeof buf, "%d", k->priority);
    show_line("priority:", buf);
    show_line("timeout:", format_duration_ms(k->timeout_ms, d1, sizeof d1));
    show_line("concurrency:", conc_name(k->concurrency));
    snprintf(buf, sizeof buf, "%s (grace %s)", misfire_str(k->misfire),
             format_duration_ms(k->misfire_grace_ms, d1, sizeof d1));
    show_line("misfire:", buf);
    snprintf(buf, sizeof buf, "%d attempts, initial %s, x%g, max delay %s, jitter %s",
             k->retry.max_attempts, format_duration_ms(k->retry.initial_ms, d1, sizeof d1),
             k->retry.multiplier, format_duration_ms(k->retry.max_delay_ms, d2, sizeof d2),
             jitter_str(k->retry.jitter));
    show_line("retry:", buf);
    show_line("jitter:", format_duration_ms(k->jitter_ms, d3, sizeof d3));
    show_line("params:", k->params_json);
    show_line("last run:", fmt_time(k->last_run_at_ms, d1, sizeof d1));
    show_line("next run:", fmt_time(k->next_run_at_ms, d1, sizeof d1));
    if (k->removed_at_ms)
        show_line("removed:", fmt_time(k->removed_at_ms, d1, sizeof d1));
}

static int task_show(store *s, const task_opts *o)
{
    char err[512];
    store_task k;
    if (find_task(s, o->name, &k) != 0)
        return 1;
    store_execution *ex = NULL;
    size_t n = 0;
    int rc = store_task_history(s, k.id, 5, &ex, &n, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "pgreviewer: %s\n", err);
    } else if (o->json) {
        json_t *j = store_task_json(&k), *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, store_execution_json(&ex[i]));
        json_object_set_new(j, "recent_executions", arr);
        print_json(j);
    } else {
        print_task(&k);
        printf("recent executions:%s\n", n ? "" : " none");
        if (n)
            print_history(ex, n, "  ");
    }
    store_executions_free(ex, n);
    store_task_clear(&k);
    return rc < 0 ? 1 : 0;
}

static int task_history(store *s, const task_opts *o)
{
    char err[512];
    store_task k;
    if (find_task(s, o->name, &k) != 0)
        return 1;
    store_execution *ex = NULL;
    size_t n = 0;
    int rc = store_task_history(s, k.id, o->limit, &ex, &n, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "pgreviewer: %s\n", err);
    } else if (o->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, store_execution_json(&ex[i]));
        print_json(arr);
    } else if (n == 0) {
        printf("task \"%s\" has no executions yet\n", k.name);
    } else {
        print_history(ex, n, "");
    }
    store_executions_free(ex, n);
    store_task_clear(&k);
    return rc < 0 ? 1 : 0;
}

static int task_trigger(store *s, const task_opts *o)
{
    char err[1024];
    int64_t id;
    if (store_trigger(s, o->name, o->params, &id, err, sizeof err) != 0) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        return 1;
    }
    if (o->json)
        print_json(json_pack("{s:I, s:s, s:s}", "execution_id", (json_int_t)id, "task", o->name,
                             "status", "pending"));
    else
        printf("%lld\n", (long long)id);
    return 0;
}

/* pause, resume, remove: one store call and a one-line confirmation. */
static int task_change(store *s, const char *verb, const task_opts *o)
{
    char err[1024];
    int rc;
    if (strcmp(verb, "pause") == 0)
        rc = store_task_pause(s, o->name, err, sizeof err);
    else if (strcmp(verb, "resume") == 0)
        rc = store_task_resume(s, o->name, err, sizeof err);
    else
        rc = store_task_remove(s, o->name, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        return 1;
    }
    const char *done = strcmp(verb, "pause") == 0    ? "paused"
                       : strcmp(verb, "resume") == 0 ? "resumed"
                                                     : "removed (its history is kept)";
    printf("task \"%s\" %s\n", o->name, done);
    return 0;
}

/* Open, migrate and (with a loaded config file) sync. NULL after printing. */
static store *open_for_cli(const pgr_config *cfg)
{
    char err[1024];
    store *s = store_open_config(cfg, err, sizeof err);
    if (!s) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        return NULL;
    }
    if (cfg->path && store_sync_tasks(s, cfg, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        store_close(s);
        return NULL;
    }
    return s;
}

static const char *const task_verbs[] = {"list",   "show",   "trigger", "pause",
                                         "resume", "remove", "history", NULL};

int cmd_task(const pgr_config *cfg, int argc, char **argv)
{
    task_opts o;
    if (argc < 1) {
        fputs(TASK_USAGE, stderr);
        return 2;
    }
    const char *verb = argv[0];
    bool known = false;
    for (int i = 0; task_verbs[i]; i++)
        known |= strcmp(verb, task_verbs[i]) == 0;
    if (!known) {
        const char *near = closest_word(verb, task_verbs);
        fprintf(stderr, "pgreviewer: unknown task command \"%s\"%s%s%s\n%s", verb,
                near ? "; did you mean \"" : "", near ? near : "", near ? "\"?" : "", TASK_USAGE);
        return 2;
    }
    if (parse_opts(argc, argv, &o, TASK_USAGE) != 0)
        return 2;
    if ((strcmp(verb, "list") == 0) != (o.name == NULL)) {
        fprintf(stderr, "pgreviewer: task %s %s\n%s", verb,
                o.name ? "takes no NAME" : "needs a task NAME", TASK_USAGE);
        return 2;
    }
    store *s = open_for_cli(cfg);
    if (!s)
        return 1;
    int rc;
    if (strcmp(verb, "list") == 0)
        rc = task_list(s, &o);
    else if (strcmp(verb, "show") == 0)
        rc = task_show(s, &o);
    else if (strcmp(verb, "history") == 0)
        rc = task_history(s, &o);
    else if (strcmp(verb, "trigger") == 0)
        rc = task_trigger(s, &o);
    else
        rc = task_change(s, verb, &o);
    store_close(s);
    return rc;
}

/* ---- executions ------------------------------------------------------------------------ */

static void print_execution(const store_execution *e)
{
    char buf[256], t[32];
    snprintf(buf, sizeof buf, "%lld", (long long)e->id);
    show_line("execution:", buf);
    snprintf(buf, sizeof buf, "%s (%s)", e->task_name, e->task_type);
    show_line("task:", buf);
    show_line("connection:", e->connection_id);
    show_line("status:", store_status_name(e->status));
    if (e->retry_of)
        snprintf(buf, sizeof buf, "%s (re-runs execution %lld)", e->trigger,
                 (long long)e->retry_of);
    else
        snprintf(buf, sizeof buf, "%s", e->trigger);
    show_line("trigger:", buf);
    snprintf(buf, sizeof buf, "%d of %d", e->attempt, e->max_attempts);
    show_line("attempt:", buf);
    show_line("worker:", e->worker);
    if (e->error_message)
        show_line("error:", e->error_message);
    if (e->skipped_reason)
        show_line("skipped:", e->skipped_reason);
    show_line("params:", e->params_json);
    show_line("scheduled for:", fmt_time(e->scheduled_for_ms, t, sizeof t));
    show_line("created:", fmt_time(e->created_at_ms, t, sizeof t));
    show_line("queued:", fmt_time(e->queued_at_ms, t, sizeof t));
    if (e->status == STORE_SCHEDULED)
        show_line("not before:", fmt_time(e->not_before_ms, t, sizeof t));
    show_line("started:", fmt_time(e->started_at_ms, t, sizeof t));
    show_line("finished:", fmt_time(e->completed_at_ms, t, sizeof t));
    if (e->recovered_at_ms)
        show_line("recovered:", fmt_time(e->recovered_at_ms, t, sizeof t));
    printf("attempts:%s\n", e->n_attempts ? "" : " none");
    if (e->n_attempts) {
        static const char *const h[] = {"#",        "WORKER",  "PID",  "STARTED",
                                        "FINISHED", "OUTCOME", "ERROR"};
        table tb;
        table_init(&tb, 7, h);
        for (size_t i = 0; i < e->n_attempts; i++) {
            const store_attempt *a = &e->attempts[i];
            char n[16], pid[16], s1[32], s2[32];
            snprintf(n, sizeof n, "%d", a->attempt);
            snprintf(pid, sizeof pid, "%d", a->worker_pid);
            const char *row[] = {n,
                                 a->worker_host,
                                 pid,
                                 fmt_time(a->started_at_ms, s1, sizeof s1),
                                 fmt_time(a->finished_at_ms, s2, sizeof s2),
                                 a->outcome ? a->outcome : "(running)",
                                 a->error};
            table_add(&tb, row);
        }
        table_print(&tb, "  ");
    }
    printf("result:%s%s\n", e->result_json ? " " : " none", e->result_json ? e->result_json : "");
}

int cmd_execution(const pgr_config *cfg, int argc, char **argv)
{
    task_opts o;
    if (argc < 1 || strcmp(argv[0], "show") != 0) {
        if (argc >= 1)
            fprintf(stderr, "pgreviewer: unknown execution command \"%s\"\n", argv[0]);
        fputs(EXECUTION_USAGE, stderr);
        return 2;
    }
    if (parse_opts(argc, argv, &o, EXECUTION_USAGE) != 0)
        return 2;
    char *end = NULL;
    long long id = o.name ? strtoll(o.name, &end, 10) : 0;
    if (!o.name || *end || id <= 0) {
        fprintf(stderr, "pgreviewer: execution show needs an execution ID (a positive number)%s%s%s\n%s",
                o.name ? ", got \"" : "", o.name ? o.name : "", o.name ? "\"" : "",
                EXECUTION_USAGE);
        return 2;
    }
    store *s = open_for_cli(cfg);
    if (!s)
        return 1;
    char err[512];
    store_execution e;
    int rc = store_exec_get(s, id, &e, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "pgreviewer: %s\n", err);
    else if (rc == 1)
        fprintf(stderr, "pgreviewer: execution %lld not found\n", id);
    else if (o.json)
        print_json(store_execution_json(&e));
    else
        print_execution(&e);
    if (rc == 0)
        store_execution_clear(&e);
    store_close(s);
    return rc == 0 ? 0 : 1;
}
