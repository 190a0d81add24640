/*
 * store.h - the analytics store: pgreviewer's PostgreSQL database of tasks,
 * executions, attempts, results, reports and plugin state (DESIGN.md
 * sections 1, 2 and 7; the schema is documented in docs/store.md).
 *
 * What lives here:
 *   - opening the store and applying the versioned migrations the binary
 *     carries (store_migrations.c), safely when several processes start at
 *     once;
 *   - the execution lifecycle
 *         pending -> queued | scheduled -> running -> completed | failed | cancelled
 *     plus `skipped` (a fire refused by the overlap policy), with a
 *     timestamp per transition and one execution_attempts row per attempt;
 *     the finish is one transaction keyed by execution id and idempotent
 *     (a redelivered item never stores a second result);
 *   - recovery of executions a crash left queued/running, exactly once;
 *   - tasks: the sync of YAML tasks into scheduled_tasks, pause, resume,
 *     remove, manual trigger;
 *   - retention in bounded batches.
 *
 * Threads: a `store` is one libpq connection and must be used by one thread
 * at a time; open one per thread or process. Times cross this API as
 * milliseconds since the Unix epoch (0 means "not set" / SQL NULL).
 * Every function returns 0 (or a pointer) on success and -1 (or NULL) with
 * a message in err[0..errlen) on failure; a failed call leaves the store
 * usable (its transaction is rolled back). A lost connection (server
 * restart) fails the call that meets it; the next call reconnects.
 */
#ifndef PGR_STORE_H
#define PGR_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

typedef struct store store;
struct pg_conn;

typedef enum store_status {
    STORE_PENDING,
    STORE_QUEUED,
    STORE_SCHEDULED,  /* waiting for not_before: a delay or a retry back-off */
    STORE_RUNNING,
    STORE_COMPLETED,
    STORE_FAILED,
    STORE_CANCELLED,
    STORE_SKIPPED,
} store_status;

/* "pending", "queued", ...; a static string. */
const char *store_status_name(store_status st);
/* Parse a status name. Returns 0, or -1 for an unknown name. */
int store_status_parse(const char *name, store_status *out);
/* completed, failed, cancelled and skipped are terminal. */
bool store_status_terminal(store_status st);

/* ---- opening and migrations ------------------------------------------ */

/* Connect to `url` (a libpq URI or key=value string). Returns the store, or
 * NULL with err filled (the message never repeats the URL: it may hold a
 * password). Free with store_close(). */
store *store_open(const char *url, char *err, size_t errlen);
/* Close the connection and free s (NULL is fine). */
void store_close(store *s);
/* The underlying connection (owned by the store), for tests and read-only
 * queries such as reports. */
struct pg_conn *store_conn(store *s);

/* Apply the missing migrations, each in its own transaction under a
 * transaction-level advisory lock, recording each in schema_migrations.
 * Safe to call from many processes at once; a no-op when up to date.
 * Returns the number of migrations applied now (0 when none), or -1. */
int store_migrate(store *s, char *err, size_t errlen);
/* Like store_migrate, and stores the versions applied now into
 * applied[0..cap) (more are counted but not stored). */
int store_migrate_list(store *s, int *applied, size_t cap, char *err, size_t errlen);
/* The highest version the binary carries. */
int store_latest_version(void);
/* The highest version applied in the database into *version (0 when none).
 * Returns 0 or -1. */
int store_schema_version(store *s, int *version, char *err, size_t errlen);

/* ---- tasks ------------------------------------------------------------ */

typedef struct store_task {
    int64_t id;
    char *name, *task_type;
    char *connection_id;     /* NULL: none */
    char *cron_schedule;     /* NULL: runs only when triggered */
    char *timezone;
    char *description;       /* may be NULL */
    char *params_json;       /* task_params, a JSON object */
    cfg_retry retry;
    int priority;
    int64_t timeout_ms;
    cfg_concurrency concurrency;
    cfg_misfire misfire;
    int64_t misfire_grace_ms;
    int misfire_max_runs;
    int64_t jitter_ms;
    char owner[8];           /* "config" or "api" */
    bool paused;
    bool is_active;          /* not paused and not removed */
    int64_t removed_at_ms;   /* 0: not removed */
    int64_t created_at_ms, updated_at_ms;
    int64_t last_run_at_ms, next_run_at_ms;
    int64_t last_fire_ms;    /* latest scheduled_for of its executions, 0: none */
} store_task;

/* Free what a store_task holds (not t itself) / an array of n and the array. */
void store_task_clear(store_task *t);
void store_tasks_free(store_task *tasks, size_t n);

/* All tasks ordered by name into *out (an array the caller frees with
 * store_tasks_free); removed ones only when include_removed. Returns 0 or -1. */
int store_task_list(store *s, bool include_removed, store_task **out, size_t *n,
                    char *err, size_t errlen);
/* One task by name (removed ones too). Returns 0, 1 when there is no such
 * task (*out untouched), or -1. Clear *out with store_task_clear(). */
int store_task_get(store *s, const char *name, store_task *out, char *err, size_t errlen);
/* The message for an unknown task: `task "x" not found (known: a, b, c)`,
 * with a "did you mean" when one name is close. Returns err. */
const char *store_task_not_found(store *s, const char *name, char *err, size_t errlen);

typedef struct store_sync_stats {
    int inserted, updated, unchanged, removed;
    int conflicts;           /* YAML names already owned by the API: left alone */
} store_sync_stats;

/* Upsert the config's tasks (and connection metadata, never secrets) into
 * the store in one transaction, owner 'config'. A task whose config did not
 * change is left untouched (a CLI pause survives a reload; an edit resets
 * `paused` to `enabled: false`). Config-owned tasks absent from cfg are
 * marked removed (history kept); API-owned tasks are never touched.
 * `stats` may be NULL. Returns 0 or -1. */
int store_sync_tasks(store *s, const pgr_config *cfg, store_sync_stats *stats,
                     char *err, size_t errlen);

/* Create an API-owned task (tests and the HTTP API). Returns 0, or -1 when
 * the name exists or on error. *id (may be NULL) gets the new id. */
int store_task_create_api(store *s, const cfg_task *t, int64_t *id, char *err, size_t errlen);

/* Pause / resume a task by name. Return 0, 1 for an unknown task (err holds
 * the not-found message), or -1. Idempotent. */
int store_task_pause(store *s, const char *name, char *err, size_t errlen);
int store_task_resume(store *s, const char *name, char *err, size_t errlen);
/* Mark an API-owned task removed (its history is kept). A config-owned
 * task is refused (-1): it comes from YAML and must be removed there.
 * Returns 0, 1 for an unknown task, or -1. */
int store_task_remove(store *s, const char *name, char *err, size_t errlen);
/* The scheduler's bookkeeping: next_run_at (0 clears it). Returns 0 or -1. */
int store_task_set_next_run(store *s, int64_t task_id, int64_t next_run_ms, char *err,
                            size_t errlen);

/* ---- executions --------------------------------------------------------- */

/* A new execution for the fire of task `task_id` at `scheduled_for_ms` (the
 * fire key), created in `initial` state (pending, queued, or scheduled with
 * not_before_ms). INSERT ... ON CONFLICT DO NOTHING: *created is true when
 * this call created it, false when the fire existed (then *exec_id is the
 * existing one). Returns 0, or -1 (an unknown task id is an error). */
int store_fire(store *s, int64_t task_id, int64_t scheduled_for_ms, store_status initial,
               int64_t not_before_ms, int64_t *exec_id, bool *created, char *err, size_t errlen);
/* Record a fire refused by the overlap policy as `skipped` with `reason`.
 * Same key and return convention as store_fire. */
int store_fire_skipped(store *s, int64_t task_id, int64_t scheduled_for_ms, const char *reason,
                       int64_t *exec_id, bool *created, char *err, size_t errlen);
/* One fire of a batch (store_fire_batch). The caller fills the inputs; the
 * call fills the outputs. */
typedef struct store_fire_item {
    int64_t task_id;
    int64_t scheduled_for_ms;  /* the fire key with task_id */
    store_status initial;      /* pending, queued, scheduled or skipped */
    int64_t not_before_ms;     /* scheduled: when it is due */
    const char *reason;        /* skipped: why (NULL: "skipped"); else ignored */
    bool skip_if_active;       /* `concurrency: forbid`: when the task has an
                                * unfinished execution, record the fire as
                                * skipped instead, the reason naming it */
    int64_t exec_id;           /* out: the execution created, or the existing
                                * one; 0 when the task id is unknown */
    bool created;              /* out: true when this call created it */
    bool skipped_now;          /* out: created as skipped by skip_if_active */
    char skipped_reason[96];   /* out: its reason, when skipped_now */
} store_fire_item;

/* The fires of items[0..n) in ONE statement (INSERT ... SELECT FROM
 * unnest(...) ON CONFLICT ON the fire key DO NOTHING RETURNING): what
 * store_fire and store_fire_skipped do, plus the `forbid` overlap check,
 * for many fires in one round trip and one commit (a second, read-only
 * query only when some keys already existed, for their ids). An item whose
 * key exists is not created (created false); a key repeated within the
 * batch is created once, for its first item, the others getting its
 * exec_id. An unknown task id is not an error here: exec_id 0.
 * Returns the number created, or -1 (nothing created; a bad `initial`
 * names the item). */
int store_fire_batch(store *s, store_fire_item *items, size_t n, char *err, size_t errlen);

/* The unfinished executions (pending, queued, scheduled, running) of many
 * tasks, for the overlap policy of a batch of fires: one query. */
typedef struct store_active {
    int64_t task_id, exec_id;
} store_active;

/* Pairs for task_ids[0..n) into *out (caller frees; ordered by task id,
 * then execution id, oldest first) and *n_out. Returns 0 or -1. */
int store_tasks_active(store *s, const int64_t *task_ids, size_t n, store_active **out,
                       size_t *n_out, char *err, size_t errlen);
/* A manual execution of task `name` (trigger 'manual', status pending),
 * its params the task's with `params_override_json` (a JSON object, or
 * NULL) merged over them key by key. Returns 0, 1 for an unknown task (err
 * has the not-found message), or -1 (bad JSON, removed task, SQL). */
int store_trigger(store *s, const char *name, const char *params_override_json,
                  int64_t *exec_id, char *err, size_t errlen);

/* pending|scheduled -> queued for each id (one statement). Ids in another
 * state are left alone. Returns the number changed, or -1. */
int store_exec_mark_queued(store *s, const int64_t *ids, size_t n, char *err, size_t errlen);
/* -> scheduled, waiting until not_before_ms (from pending or queued).
 * Returns 1 when changed, 0 when the state did not allow it, or -1. */
int store_exec_mark_scheduled(store *s, int64_t id, int64_t not_before_ms, char *err,
                              size_t errlen);

/* Start of an attempt, one per item of a batch. */
typedef struct store_start {
    int64_t execution_id;
    const char *worker_host;
    pid_t worker_pid;
} store_start;

typedef enum store_start_rc {
    STORE_START_OK,        /* now running; attempt holds its number */
    STORE_START_FINISHED,  /* already completed/failed/cancelled/skipped: do not run it */
    STORE_START_NOT_FOUND,
} store_start_rc;

typedef struct store_start_info {
    store_start_rc rc;
    int attempt;             /* 1 for the first attempt */
    int max_attempts;
    int64_t task_id;
    int64_t timeout_ms;
    store_status status;     /* the status found when rc != OK */
    char *task_name, *task_type, *connection_id, *params_json; /* rc OK only; freed by store_start_info_clear */
} store_start_info;

/* Free the strings of one store_start_info (not info itself). */
void store_start_info_clear(store_start_info *info);

/* pending|queued|scheduled|running -> running for each item, in one
 * transaction: attempt+1, started_at, worker, a new execution_attempts row
 * (worker host and pid); an attempt left open (a lost worker's) is closed
 * with outcome 'lost'. info[i] (caller's array of n) gets each outcome;
 * clear each with store_start_info_clear. An id must not appear twice in
 * one batch. Returns 0 or -1 (then nothing changed). */
int store_exec_start(store *s, const store_start *items, size_t n, store_start_info *info,
                     char *err, size_t errlen);

/* The end of an attempt. */
typedef struct store_finish {
    int64_t execution_id;
    store_status status;     /* completed, failed, cancelled, or scheduled (= retry later) */
    const char *outcome;     /* attempt outcome; NULL: success|fail|cancelled|retry from status.
                              * Others: "timeout", "crashed" */
    const char *result_json; /* the plugin's result (JSON) or NULL; stored in
                              * analysis_results when completed */
    const char *error;       /* NULL on success */
    const char *plugin;      /* owner of plugin_state, with state_json */
    const char *state_json;  /* new plugin state (JSON) or NULL; stored only when completed */
    int64_t not_before_ms;   /* status scheduled: when to retry */
    /* The fast path: a worker that made no store_exec_start for this
     * execution (it is still pending/queued/scheduled in the store) gives
     * the attempt's start time and place here, and the finish records the
     * whole attempt itself - one statement per batch instead of two. Ignored
     * (0/NULL) when the execution is running. */
    int64_t started_at_ms;
    const char *worker_host;
    pid_t worker_pid;
} store_finish;

typedef enum store_finish_rc {
    STORE_FINISH_OK,         /* applied now */
    STORE_FINISH_ALREADY,    /* already completed/failed/cancelled/skipped: no-op */
    STORE_FINISH_NOT_FOUND,
} store_finish_rc;

/* Finish n executions in ONE transaction, each keyed by execution id: the
 * result into analysis_results (ON CONFLICT (execution_id) DO NOTHING), the
 * plugin state (only when completed), the attempt row closed, the status
 * and completed_at (or not_before for a retry) set. An execution already
 * in a terminal state is left alone (rc[i] = STORE_FINISH_ALREADY): this is
 * the exactly-once effect for redelivered items. rc (may be NULL) is the
 * caller's array of n. An id given twice in one batch is finished once,
 * with its first item (both report OK). Returns 0, or -1 (nothing applied: a bad JSON text
 * names the execution id). */
int store_finish_batch(store *s, const store_finish *items, size_t n, store_finish_rc *rc,
                       char *err, size_t errlen);
/* One item. Returns STORE_FINISH_* (>= 0) or -1. */
int store_exec_finish(store *s, const store_finish *item, char *err, size_t errlen);

/* Cancel one execution that is not finished yet (status cancelled,
 * cancelled_at, error = reason; an open attempt is closed 'cancelled').
 * Returns 1 when cancelled now, 0 when already finished, or -1. */
int store_exec_cancel(store *s, int64_t id, const char *reason, char *err, size_t errlen);

/* Run a finished execution again (`queue dead retry`): a new execution of
 * the same task with the same params and priority, trigger 'retry',
 * retry_of = id, status pending, attempts from zero; the original stays as
 * it was. *new_id (may be NULL) gets its id. Returns 0, 1 when there is no
 * execution `id`, or -1 (it is not finished yet, or SQL). */
int store_exec_redrive(store *s, int64_t id, int64_t *new_id, char *err, size_t errlen);

/* Executions of a task not yet finished (pending, queued, scheduled,
 * running): their ids, oldest first, into *ids (caller frees). For the
 * overlap policy. Returns 0 or -1. */
int store_task_active(store *s, int64_t task_id, int64_t **ids, size_t *n, char *err,
                      size_t errlen);

typedef struct store_recovered {
    int64_t execution_id;
    int64_t task_id;
    store_status was;        /* queued, running (or scheduled when asked) */
    int priority;
    int attempt;             /* attempts started so far */
    int max_attempts;
    int64_t not_before_ms;   /* was scheduled: its due time */
} store_recovered;

/* Start-up recovery. With worker_host NULL (embedded mode, in-process
 * queue: everything in flight was lost): every execution left queued or
 * running, plus scheduled ones when include_scheduled (the lost delayed
 * set). With a worker_host (a worker host restarting next to a Redis that
 * still holds the queued items): only that host's running executions.
 * In ONE UPDATE ... RETURNING each goes back to `pending` with recovered_at
 * set and its open attempt closed as 'lost'; two concurrent callers never
 * get the same row. The caller re-enqueues them (store_exec_mark_queued /
 * _mark_scheduled with was/not_before_ms). *out is the caller's to free().
 * Returns 0 or -1. */
int store_recover(store *s, const char *worker_host, bool include_scheduled,
                  store_recovered **out, size_t *n, char *err, size_t errlen);

typedef struct store_attempt {
    int attempt;
    char *worker_host;
    int worker_pid;
    int64_t started_at_ms, finished_at_ms;
    char *outcome;           /* NULL while running */
    char *error;
} store_attempt;

typedef struct store_execution {
    int64_t id, task_id;
    char *task_name, *task_type, *connection_id;
    store_status status;
    char trigger[12];        /* schedule, manual, retry, recovery */
    int priority, attempt, max_attempts;
    char *worker;
    char *params_json, *result_json, *error_message, *skipped_reason;
    int64_t scheduled_for_ms, not_before_ms;
    int64_t created_at_ms, queued_at_ms, scheduled_at_ms, started_at_ms, completed_at_ms,
        cancelled_at_ms, recovered_at_ms, updated_at_ms;
    bool has_result;         /* a row in analysis_results */
    int64_t retry_of;        /* trigger 'retry': the execution it re-runs; else 0 */
    store_attempt *attempts; /* store_exec_get only */
    size_t n_attempts;
} store_execution;

/* Free what an execution holds (not e) / an array of n and the array. */
void store_execution_clear(store_execution *e);
void store_executions_free(store_execution *e, size_t n);

/* One execution with its attempts. Returns 0, 1 when there is none, or -1.
 * Clear *out with store_execution_clear(). */
int store_exec_get(store *s, int64_t id, store_execution *out, char *err, size_t errlen);
/* The latest `limit` executions of task `task_id`, newest first, without
 * attempts (store_executions_free). Returns 0 or -1. */
int store_task_history(store *s, int64_t task_id, int limit, store_execution **out, size_t *n,
                       char *err, size_t errlen);

/* For the worker supervisor (core/worker.c), each one statement:
 * store_exec_unstart: running -> queued for executions started but never
 * handed to an executor (prefetched items given back on shutdown): the
 * attempt number goes back down and the open attempt row is deleted.
 * store_exec_reopen: failed -> queued (a dead-letter item re-driven with
 * `queue dead retry`), allowing one more attempt than those made.
 * Both return the number of executions changed, or -1. */
int store_exec_unstart(store *s, const int64_t *ids, size_t n, char *err, size_t errlen);
int store_exec_reopen(store *s, const int64_t *ids, size_t n, char *err, size_t errlen);

/* ---- plugin state --------------------------------------------------------- */

/* The state `plugin` saved for task `task_name`: *json (caller frees) or
 * NULL when none. Returns 0, 1 for an unknown task, or -1. */
int store_plugin_state_get(store *s, const char *task_name, const char *plugin, char **json,
                           char *err, size_t errlen);
/* Replace it (json must be valid JSON). Returns 0, 1 for an unknown task, or -1. */
int store_plugin_state_set(store *s, const char *task_name, const char *plugin, const char *json,
                           char *err, size_t errlen);

/* ---- notifications -------------------------------------------------------- */

/* Channels the store NOTIFYs on commit, so that a scheduler or queue can
 * sleep until something changes instead of polling:
 *   STORE_CHANNEL_TASKS       payload: a task name, or "*" after a sync that
 *                             changed tasks (pause, resume, remove, create)
 *   STORE_CHANNEL_EXECUTIONS  payload: the id of a new manual execution */
#define STORE_CHANNEL_TASKS "pgreviewer_tasks"
#define STORE_CHANNEL_EXECUTIONS "pgreviewer_executions"
/* payload: the id of an execution just cancelled (store_exec_cancel), so
 * the supervisor running it can stop it */
#define STORE_CHANNEL_CANCEL "pgreviewer_cancel"

/* LISTEN on `channel` (kept across reconnects; at most 8). Returns 0 or -1. */
int store_listen(store *s, const char *channel, char *err, size_t errlen);
/* The connection's socket, to poll() for POLLIN; changes after a reconnect,
 * so ask again after each store call that failed. */
int store_socket(store *s);
/* Non-blocking: the next notification received, its channel and payload
 * copied into the caller's buffers. Returns 1, 0 when none is pending, or
 * -1 (connection lost: the next call reconnects). */
int store_notification(store *s, char *channel, size_t clen, char *payload, size_t plen,
                       char *err, size_t errlen);
/* The state of (task_ids[i], plugins[i]) for i < n, in one query: json[i]
 * (caller's array of n; each string the caller frees) or NULL when none.
 * Returns 0 or -1 (then every json[i] is NULL). */
int store_plugin_states_get(store *s, const int64_t *task_ids, const char *const *plugins,
                            size_t n, char **json, char *err, size_t errlen);

/* ---- retention ------------------------------------------------------------ */

typedef struct store_retention_stats {
    long executions;         /* rows deleted (their attempts and results with them) */
    long results;            /* results without an execution, deleted by age */
    int statements;          /* DELETE statements run */
} store_retention_stats;

/* Delete finished executions (with their attempts and results) completed
 * more than max_age_ms ago (0: no age limit), and those beyond the
 * `per_task` newest finished ones of each task (0: no count limit), at most
 * `batch` rows per statement (<= 0: 1000), each statement its own short
 * transaction so a large backlog never holds long locks. Unfinished
 * executions are never deleted. `stats` may be NULL. Returns 0 or -1. */
int store_retention(store *s, int64_t max_age_ms, int per_task, int batch,
                    store_retention_stats *stats, char *err, size_t errlen);

/* ---- CLI (core/cli_task.c, core/cli_db.c) ----------------------------------- */

/* `pgreviewer task list|show|trigger|pause|resume|remove|history ...`;
 * argv[0] is the word after `task`. Returns the exit code (0, 1, 2 usage). */
int cmd_task(const pgr_config *cfg, int argc, char **argv);
/* A task / an execution (with its attempts when loaded) as the JSON that
 * `--json` and the HTTP API print. New references. (core/cli_task.c) */
json_t *store_task_json(const store_task *t);
json_t *store_execution_json(const store_execution *e);
/* `pgreviewer execution show ID [--json]`. */
int cmd_execution(const pgr_config *cfg, int argc, char **argv);
/* `pgreviewer db migrate`: applies the migrations and prints them. */
int cmd_db(const pgr_config *cfg, int argc, char **argv);
/* For the CLI files: open the store named by cfg->store.url and migrate it.
 * Returns the store or NULL with a message naming the key to set. */
store *store_open_config(const pgr_config *cfg, char *err, size_t errlen);

#endif
