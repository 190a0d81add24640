/*
 * log_analysis.c - the log_analysis plugin: a thin wrapper around the
 * engine (la_*.c). It takes the task's params and previous state from the
 * host, runs the analysis, and hands back the result document and the next
 * state. Errors: invalid params or a missing file are FAIL/RETRY with a
 * message naming the param or file.
 */
#include <pgreviewer/plugin.h>

#include <stdlib.h>

#include "la_engine.h"

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

static pgr_outcome la_plugin_run(const pgr_host *host, pgr_task *task, void *plugin_data)
{
    char err[512];
    char *result = NULL, *state = NULL;
    int retryable = 0;
    cancel_ctx cc = {host, task};
    (void)plugin_data;
    const char *prev = PGR_HOST_HAS(host, state_get) ? host->state_get(task) : NULL;
    if (la_run(host->params_json(task), prev, poll_host, &cc, &result, &state, &retryable, err,
               sizeof err) < 0) {
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
