/*
 * scheduler.h - fires scheduled tasks (DESIGN.md sections 1 and 2).
 *
 * The scheduler keeps every active task's next fire time in a min-heap and
 * sleeps until the earliest (woken early by task changes in the store); it
 * never polls on a fixed tick. A fire inserts the execution with the unique
 * fire key (scheduled_task_id, scheduled_for) and then enqueues it, so that
 * two schedulers racing, or a restarted one, never start the same run twice.
 *
 * Per task:
 *   misfire      what happens to fires missed while no scheduler ran:
 *                skip (none), run_once (the latest one, if within `grace`),
 *                run_all (each within `grace`, at most `max_runs`);
 *   concurrency  forbid (a fire while an execution of the task is still
 *                unfinished is recorded as skipped), allow, replace (the
 *                unfinished one is cancelled first);
 *   jitter       a random delay in [0, jitter) before the item is due.
 *
 * Leadership: only one scheduler fires at a time. Each candidate holds a
 * dedicated PostgreSQL connection and tries pg_try_advisory_lock() on a
 * fixed key; the holder is the leader for as long as that session lives.
 * When the leader dies (even kill -9) its session ends, the server releases
 * the lock, and the next candidate to retry (every `retry_ms`) takes over.
 * A leader checks its session before every batch of fires and stops firing
 * the moment it is gone; the unique fire key stays the fence behind it.
 *
 * Fires due together are fired in batches, each a constant number of round
 * trips whatever its size: the leader check, one INSERT of every fire
 * (store_fire_batch, with the forbid check inside), one pipelined enqueue.
 * Within a second the most frequent tasks go first; a crowd due at the
 * same second is fired as a backlog in batches of ~50 ms, and fires that
 * come due meanwhile go before the rest of it (bench/scheduler/README.md).
 *
 * Lag (enqueue time minus due time) is measured per fire and kept for the
 * metrics and the log.
 *
 * One thread owns a scheduler.
 */
#ifndef PGR_SCHEDULER_H
#define PGR_SCHEDULER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "queue.h"
#include "util.h"

typedef struct scheduler scheduler;

typedef struct sched_stats {
    int64_t fires;          /* executions created by this scheduler */
    int64_t skipped;        /* fires refused by `concurrency: forbid` */
    int64_t misfires_run;   /* missed fires run at start-up */
    int64_t missed_dropped; /* missed fires dropped by policy or grace */
    int64_t lag_p50_us, lag_p99_us, lag_max_us; /* over the latest fires */
    int tasks;              /* tasks in the heap */
    bool leader;
} sched_stats;

/* A scheduler for cfg's store; fires go into `q` (not owned). `retry_ms`:
 * how often a follower tries to become leader (0: 1000). Returns NULL with
 * err filled when the store cannot be opened. */
scheduler *scheduler_new(const pgr_config *cfg, queue *q, int64_t retry_ms, char *err,
                         size_t errlen);
void scheduler_free(scheduler *sc);

/* Run until *stop becomes non-zero: win leadership, load the tasks, fire
 * them, reload them when they change. Returns 0, or -1 with err filled
 * when the store is unusable at start. */
int scheduler_run(scheduler *sc, volatile sig_atomic_t *stop, char *err, size_t errlen);

void scheduler_stats(const scheduler *sc, sched_stats *out);

/* Prometheus lines for the API (api_metrics_fn). */
void scheduler_metrics(void *sc, strbuf *out);

/* `pgreviewer scheduler`: run the scheduler role until SIGINT/SIGTERM. */
int cmd_scheduler(const pgr_config *cfg, int argc, char **argv);

#endif
