/*
 * api.h - the HTTP API (libmicrohttpd): health, Prometheus metrics, tasks
 * and executions for monitoring, and administration (trigger, pause,
 * resume). DESIGN.md sections 6 and 9.
 *
 *   GET  /health                          {"status":"ok", "store":..., "queue":...}
 *   GET  /metrics                         Prometheus text format
 *   GET  /api/tasks                       every task (not removed)
 *   GET  /api/tasks/NAME                  one task
 *   GET  /api/tasks/NAME/history?limit=N  its latest executions
 *   POST /api/tasks/NAME/trigger          body: optional params JSON -> {"execution_id": N}
 *   POST /api/tasks/NAME/pause|resume
 *   GET  /api/executions?status=S&limit=N executions by status (active: status=running)
 *   GET  /api/executions/ID               one execution with its attempts and result
 *   GET  /api/stats                       counts by status, queue figures
 *
 * Requests are served by one internal thread of libmicrohttpd, which owns
 * the API's store connection and queue handle (opened lazily, reopened
 * after a failure). Nothing secret is ever returned: the store holds no
 * passwords, and connection details are not exposed.
 */
#ifndef PGR_API_H
#define PGR_API_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util.h"

typedef struct api_server api_server;

/* Extra metric lines from the process hosting the API (a worker or
 * scheduler in the same process tree): append Prometheus text to *out.
 * Called from the API's thread. */
typedef void (*api_metrics_fn)(void *ctx, strbuf *out);

/* Start serving on cfg->api.listen ("host:port", "[v6]:port" or ":port").
 * Returns the server (stop with api_stop), or NULL with err filled. `cfg`
 * must outlive the server. */
api_server *api_start(const pgr_config *cfg, char *err, size_t errlen);
void api_add_metrics(api_server *api, api_metrics_fn fn, void *ctx);
/* The port actually bound (useful with port 0). */
int api_port(const api_server *api);
void api_stop(api_server *api);

/* `pgreviewer api`: serve until SIGINT/SIGTERM. */
int cmd_api(const pgr_config *cfg, int argc, char **argv);

#endif
