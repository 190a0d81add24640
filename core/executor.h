/*
 * executor.h - a pool of executor processes that run plugin tasks.
 *
 * The parent (the worker supervisor, or `run --once`) loads the plugins,
 * then forks N executors. Each executor owns one end of a socketpair; the
 * parent hands it one job at a time as a length-prefixed JSON frame and
 * gets the outcome back the same way. An executor initialises a plugin the
 * first time it runs one of its tasks, runs tasks one after another, and
 * exits after `max_tasks` tasks or above a memory limit; the pool replaces
 * it. One that dies while running a task (a crash, an abort) is replaced at
 * once and that task's outcome is EXEC_CRASHED with the signal; one that
 * overruns its timeout gets SIGTERM (it may notice through
 * host->cancelled(), and its target query is cancelled), then SIGKILL after
 * the kill grace period, and the task's outcome is EXEC_TIMEOUT.
 *
 * The pool is driven by one thread of the parent: pool_submit() and
 * pool_wait() must not be called concurrently.
 */
#ifndef PGR_EXECUTOR_H
#define PGR_EXECUTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "loader.h"

typedef enum exec_outcome {
    EXEC_SUCCESS = 0,
    EXEC_RETRY,   /* the plugin asked for a retry */
    EXEC_FAIL,    /* the plugin failed permanently, or the task could not start */
    EXEC_CRASHED, /* the executor died while running the task */
    EXEC_TIMEOUT  /* the task overran its timeout and was stopped */
} exec_outcome;

/* Is this outcome worth another attempt (retry, crash, timeout)? */
bool exec_outcome_retryable(exec_outcome o);
const char *exec_outcome_name(exec_outcome o);

typedef struct exec_job {
    int64_t execution_id;  /* 0 when not recorded in a store */
    char *task_name;       /* owned */
    char *task_type;       /* owned */
    char *connection_id;   /* owned, may be NULL */
    json_t *params;        /* owned reference: validated params with defaults */
    json_t *state;         /* owned reference or NULL: the task's persistent state */
    int64_t timeout_ms;    /* 0: none */
    int attempt;           /* 1-based */
    void *user;            /* the caller's, untouched */
} exec_job;

/* A new job; strings are copied, json references are taken (stolen). The
 * caller frees it with exec_job_free() unless it is handed to the pool. */
exec_job *exec_job_new(int64_t execution_id, const char *task_name, const char *task_type,
                       const char *connection_id, json_t *params, json_t *state,
                       int64_t timeout_ms, int attempt);
void exec_job_free(exec_job *job);

typedef struct exec_result {
    exec_job *job;        /* the job, handed back to the caller */
    exec_outcome outcome;
    char *message;        /* the plugin's message or ours; may be NULL */
    json_t *result;       /* the plugin's result, or NULL */
    json_t *state;        /* new persistent state (success only), or NULL */
    int64_t started_ms;   /* wall clock, ms since the epoch */
    int64_t duration_ms;
    pid_t pid;            /* the executor that ran it */
    int term_signal;      /* EXEC_CRASHED: the signal, or 0 for an exit */
} exec_result;

/* Frees the result and its job. */
void exec_result_free(exec_result *r);

typedef struct exec_pool exec_pool;

/* Fork `processes` executors. `cfg` and `reg` must outlive the pool (the
 * children use them too). Returns the pool (free with pool_free), or NULL
 * with err filled. */
exec_pool *pool_new(const pgr_config *cfg, const plugin_registry *reg, int processes,
                    char *err, size_t errlen);

/* Number of executors ready for a job. */
int pool_idle(const exec_pool *pool);
/* Number of jobs running. */
int pool_busy(const exec_pool *pool);

/* Hand a job to an idle executor; the pool owns the job from here (it is
 * handed back in an exec_result). Returns 0, or -1 when no executor is
 * idle (the job is then still the caller's). */
int pool_submit(exec_pool *pool, exec_job *job);

/* Wait up to timeout_ms (-1: forever) for a job to finish; enforces
 * timeouts and replaces dead executors meanwhile. Returns 1 with *out set
 * (caller frees with exec_result_free), 0 on timeout, or -1 when nothing
 * is running. Interrupted by a signal, it returns 0. */
int pool_wait(exec_pool *pool, exec_result **out, int64_t timeout_ms);

/* Also end pool_wait() (returning 0) when `fd` becomes readable; the pool
 * never reads it. With a wake fd set, pool_wait() waits even when nothing
 * is running. -1 removes it. For a supervisor that must also notice work
 * arriving from another thread (an eventfd or a pipe). */
void pool_set_wake_fd(exec_pool *pool, int fd);

/* Ask every running task to stop (SIGTERM to its executor). */
void pool_cancel_all(exec_pool *pool);

/* Stop the executors: idle ones at once, then wait; busy ones are left
 * grace_ms to finish (their results are dropped: call pool_wait first to
 * collect them) and then killed. */
void pool_free(exec_pool *pool, int64_t grace_ms);

/* The pids of the executors (for tests and `ps`): fills up to n, returns
 * the count. */
int pool_pids(const exec_pool *pool, pid_t *pids, int n);

#endif
