/*
 * daemon.h - `pgreviewer run`: the whole system in one process tree for a
 * single host (DESIGN.md section 6): the scheduler (a thread), the worker
 * supervisor (the main thread) with its forked executors, and the HTTP API
 * (libmicrohttpd's thread). With no queue.url it uses the in-process queue,
 * so a single host needs nothing but PostgreSQL; executions left unfinished
 * by a crash are recovered from the store at start (queued and running ones
 * run again, scheduled ones wait for their due time again).
 *
 * Retention (store.retention, store.retention_per_task) is applied at start
 * and every hour.
 *
 * Signals: SIGTERM/SIGINT stop fetching and firing, let running tasks
 * finish within workers.shutdown_grace, then exit 0. SIGHUP re-reads the
 * configuration and syncs its tasks into the store (schedules, params and
 * policies take effect at once; the scheduler is notified); changes to
 * connections, plugins or workers need a restart.
 */
#ifndef PGR_DAEMON_H
#define PGR_DAEMON_H

#include "runtime.h"

/* Run until a stop signal. Returns the exit code (0, or 1 when a part
 * could not start, with the reason on stderr). */
int daemon_run(runtime *rt);

#endif
