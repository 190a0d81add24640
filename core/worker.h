/*
 * worker.h - the worker supervisor (DESIGN.md sections 1, 2 and 6): one per
 * host. It holds the queue connection, the store, and a pool of forked
 * executors (executor.h), and moves each queue item through
 *
 *   fetch (leased) -> start in the store -> executor -> finish in the store
 *   -> ack | nack into the delayed set (retry) | dead letter
 *
 * A fetcher thread leases up to `processes + prefetch` items at a time
 * (blocking, never spinning) and marks them running in the store in one
 * statement; the supervisor's thread feeds idle executors and keeps every
 * held lease alive (one batched heartbeat per lease/3); a writer thread
 * writes outcomes as a group commit: many finishes in one store statement,
 * then one ack/nack/dead round trip per kind. docs/worker.md has the loop,
 * the guarantees and the knobs.
 *
 * Ownership: worker_new() returns a worker the caller frees with
 * worker_free(); cfg and reg are borrowed and must outlive it (the
 * executors use them too). worker_run() is called from one thread;
 * worker_stop() and worker_stats_get() may be called from any thread, and
 * worker_stop() from a signal handler.
 */
#ifndef PGR_WORKER_H
#define PGR_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "executor.h"
#include "loader.h"
#include "queue.h"

#define WORKER_DEFAULT_LEASE_MS 30000
#define WORKER_HIST_BUCKETS 12

/* Upper bounds (ms) of the duration histogram's buckets; the last is +Inf. */
extern const int64_t worker_hist_bounds_ms[WORKER_HIST_BUCKETS - 1];

typedef struct worker_opts {
    int processes;        /* executors; <= 0: cfg->workers.processes */
    int prefetch;         /* items leased beyond the running ones; < 0: cfg->workers.prefetch */
    int64_t lease_ms;     /* queue lease; <= 0: WORKER_DEFAULT_LEASE_MS. Heartbeats every lease/3 */
    int flush_max;        /* most outcomes per store statement; <= 0: 512 */
    const char *host;     /* worker host recorded in the store; NULL: gethostname() */
    /* Bench-only mode (docs/worker.md "No-store mode"): the job is read from
     * the item's payload {"task", "type", "params", "timeout_ms",
     * "max_attempts"} and nothing is recorded in a store. */
    bool no_store;
    /* A queue to consume from instead of opening cfg->queue.url: borrowed,
     * and must be an in-process (memory:) queue (the embedded mode). */
    queue *queue;
    /* Hooks for tests and benchmarks: on_start on the supervisor's thread
     * when a task is handed to an executor (lag_us: from ready in the
     * queue to now); on_finish on the writer thread once an attempt's
     * outcome is written (store, then ack/nack/dead). */
    void (*on_start)(void *arg, int64_t execution_id, int64_t lag_us);
    void (*on_finish)(void *arg, int64_t execution_id, exec_outcome outcome);
    void *hook_arg;
} worker_opts;

/* Counters since start, for the API's /metrics. */
typedef struct worker_stats {
    int64_t attempts[5];          /* attempts ended, by exec_outcome */
    int64_t completed;            /* executions completed */
    int64_t failed;               /* executions failed (dead-lettered) */
    int64_t retried;              /* attempts sent to the delayed set */
    int64_t already_finished;     /* items acked without running: terminal in the store */
    int64_t duplicates;           /* outcomes dropped: the store had finished it already */
    int64_t duration_hist[WORKER_HIST_BUCKETS]; /* attempts by duration */
    int64_t duration_sum_ms;
    int active;                   /* executors running a task now */
    int processes;
    int prefetched;               /* leased, started, not yet running */
    bool queue_connected;
} worker_stats;

typedef struct worker worker;

/* Open the queue (opts->queue or cfg->queue.url; a Redis queue that cannot
 * be reached yet is retried by worker_run, with back-off), the store
 * (cfg->store.url, migrated; required unless opts->no_store), and fork the
 * executors. Returns the worker, or NULL with err filled (a missing
 * store.url is named). opts may be NULL (defaults). */
worker *worker_new(const pgr_config *cfg, const plugin_registry *reg, const worker_opts *opts,
                   char *err, size_t errlen);

/* Run until worker_stop(): fetch, run, finish. On stop: no more fetching,
 * prefetched items go back to the queue (and back to queued in the store),
 * running tasks get cfg->workers.shutdown_grace_ms to finish (then they are
 * cancelled and put back for a later run), outcomes are written. Returns 0,
 * or -1 with err filled when it could not start (no thread). */
int worker_run(worker *w, char *err, size_t errlen);

/* Ask worker_run() to shut down gracefully. Async-signal-safe. */
void worker_stop(worker *w);

/* A copy of the counters. */
void worker_stats_get(worker *w, worker_stats *out);

/* The executors' pids (for tests); returns the count written (<= n). */
int worker_executor_pids(worker *w, pid_t *pids, int n);

void worker_free(worker *w);

/* `pgreviewer worker [--processes N] [--prefetch N] [--lease DURATION]
 * [--no-store]`: argv[0] is the first word after `worker`. Runs until
 * SIGTERM/SIGINT, then exits 0. Returns the exit code (0, 1, 2 usage). */
int cmd_worker(const char *config_path, int argc, char **argv);

#endif
