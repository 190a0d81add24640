/*
 * log_analysis.c - the log_analysis plugin: a thin wrapper around the
 * engine (la_*.c). It takes the task's params and previous state from the
 * host, runs the analysis, and hands back the result document and the next
 * state. With `source: server` the log is read through the task's
 * connection (la_server.c). Errors: invalid params or a missing file are
 * FAIL/RETRY with a message naming the param or file; a missing privilege
 * is a FAIL naming it.
 */
#include <pgreviewer/plugin.h>

#include <stdio.h>
#include <stdlib.h>

#include "la_engine.h"
#include "la_server.h"

typedef struct cancel_ctx {
    const pgr_host *host;
    pgr_task *task;
} cancel_ctx;

/* Called by the engine from this (run's) thread after each read. */
static int poll_host(void *arg, double fraction)
{
    cancel_ctx *c = arg;
    if (PGR_HOST_HAS(c->host, progress))
        c->host->progress(c->task, fraction, NULL);
    return PGR_HOST_HAS(c->host, cancelled) && c->host->cancelled(c->task);
}

/* source server: the task's connection (owned by the host) -> la_server. */
static int run_server(const pgr_host *host, pgr_task *task, const char *params,
                      const char *prev, cancel_ctx *cc, char **result, char **state,
                      int *retryable, char *err, size_t errlen)
{
    const char *cerr = NULL;
    PGconn *conn = PGR_HOST_HAS(host, connection) ? host->connection(task, &cerr) : NULL;
    if (conn == NULL) {
        snprintf(err, errlen, "source server: %s",
                 cerr ? cerr : "the task has no connection (give the task a connection)");
        *retryable = cerr != NULL;
        return -1;
    }
    return la_server_run(conn, params, prev, poll_host, cc, result, state, retryable, err,
                         errlen);
}

static pgr_outcome la_plugin_run(const pgr_host *host, pgr_task *task, void *plugin_data)
{
    char err[512];
    char *result = NULL, *state = NULL;
    int retryable = 0;
    cancel_ctx cc = {host, task};
    (void)plugin_data;
    const char *prev = PGR_HOST_HAS(host, state_get) ? host->state_get(task) : NULL;
    const char *params = host->params_json(task);
    int server = 0, rc_run;
    if (la_params_source(params, &server, err, sizeof err) < 0) {
        host->set_message(task, err);
        return PGR_FAIL;
    }
    if (server) {
        rc_run = run_server(host, task, params, prev, &cc, &result, &state, &retryable, err,
                            sizeof err);
    } else {
        rc_run = la_run(params, prev, poll_host, &cc, &result, &state, &retryable, err,
                        sizeof err);
    }
    if (rc_run < 0) {
        host->set_message(task, err);
        return retryable ? PGR_RETRY : PGR_FAIL;
    }
    pgr_outcome rc = PGR_SUCCESS;
    if (host->set_result(task, result) < 0) {
        host->set_message(task, "log_analysis: the result document was refused by the host");
        rc = PGR_FAIL;
    } else if (state != NULL && PGR_HOST_HAS(host, state_set)) {
        host->state_set(task, state);
    }
    free(result);
    free(state);
    return rc;
}

static const char *const la_task_types[] = {"log_analysis", NULL};

static const pgr_plugin la_descriptor = {
    .head = PGR_PLUGIN_HEAD,
    .name = "log_analysis",
    .version = LA_VERSION,
    .description = "PostgreSQL server log analysis (stderr, csvlog, jsonlog)",
    .task_types = la_task_types,
    .init = NULL,
    .run = la_plugin_run,
    .fini = NULL,
};

PGR_PLUGIN_EXPORT(la_descriptor)
