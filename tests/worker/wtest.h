/*
 * wtest.h - helpers for the worker's end-to-end tests: one PostgreSQL and
 * one redis-server (appendonly on) per test binary, and per test case a
 * fresh database, a fresh key prefix, a configuration file, and the real
 * `pgreviewer worker` started as its own process group.
 *
 * Test-only code: failures abort the test through cmocka's fail_msg().
 */
#ifndef PGR_WTEST_H
#define PGR_WTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "queue.h"
#include "store.h"
#include "testenv.h"

extern testpg g_pg;
extern testredis g_rd;

typedef struct wfx {
    char dir[256];       /* the case's temporary directory: config, logs */
    char conninfo[512];  /* its database */
    char config[320];    /* its configuration file */
    char url[128];       /* redis://127.0.0.1:PORT/0 */
    char prefix[64];
    store *s;            /* the test's own connection */
    queue *q;            /* the test's own queue handle */
    pid_t pid;           /* the worker (leader of its process group), or 0 */
    int log_no;          /* worker-N.log */
} wfx;

/* logging.level of the next wt_init's configuration (default "info"). */
extern const char *wt_log_level;

int wt_group_setup(void **state);
int wt_group_teardown(void **state);

/* A fresh case: database, prefix, and a configuration whose `workers:`
 * and `defaults:` sections and task list (YAML flow lines after
 * "tasks:\n") are given; migrated and synced by `pgreviewer task list`. */
void wt_init(wfx *f, const char *workers_yaml, const char *defaults_yaml, const char *tasks_yaml);
void wt_done(wfx *f);

/* n queued executions of task `task` (one INSERT); their ids (caller frees). */
int64_t *wt_execs(wfx *f, const char *task, int n);
/* Enqueue ids at priority prio. */
void wt_enqueue(wfx *f, const int64_t *ids, int n, int prio);

/* Start `pgreviewer --config F worker ARGS...` (NULL-terminated) as a new
 * process group, its output into DIR/worker-N.log. */
pid_t wt_start_worker(wfx *f, ...);
/* Wait (deadline ms) for the worker to exit; returns its wait status, or
 * -1 on timeout. */
int wt_wait_exit(wfx *f, int64_t deadline_ms);
/* The worker logs so far (all of them), malloc'ed. */
char *wt_logs(wfx *f);

/* SQL on the case's database. */
long long wt_ll(wfx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *wt_text(wfx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Wait up to ms for the first column of `sql` (a count) to reach want. */
bool wt_wait_sql(wfx *f, long long want, int64_t ms, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Wait up to ms for the worker logs to contain `text`. */
bool wt_wait_log(wfx *f, const char *text, int64_t ms);

queue_stats wt_qstats(wfx *f);
/* Run a command line through the shell; out malloc'ed (may be NULL). */
int wt_cli(wfx *f, char **out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
