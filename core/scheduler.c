/*
 * scheduler.c - see scheduler.h.
 *
 * Memory per task is one `stask` (112 bytes) plus its name and four bytes
 * of heap - 140 B per task measured with 200,000 tasks: the cron
 * expression is a set of bitmasks and time zones are shared (tz_load caches
 * them). The backlog (16 bytes per fire) exists only while a crowd is
 * being fired.
 */
#include "scheduler.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cron.h"
#include "log.h"
#include "store.h"
#include "tz.h"

/* pg_try_advisory_lock key of the scheduler leadership: "pgrvschd". */
#define LEADER_KEY "7053756858066642020"
#define LAG_RING 4096
#define RECHECK_MS 1000
/* Fires taken from the heap at a wake-up and fired at once: the most urgent
 * of the second (the heap breaks ties by period, most frequent first), so
 * that a `* * * * * *` task is never behind a crowd due at the same second. */
#define FIRST_CHUNK 256
/* Fires per batch of the backlog: each batch is a constant number of round
 * trips (leader check, one INSERT, one pipelined enqueue; a query more
 * when it holds `replace` tasks). Between two batches, newly due fires go
 * first, so a batch is sized to take about max(CHUNK_BUDGET_US, twice what
 * the urgent batch of a second takes) by the cost per fire of the previous
 * one, within [CHUNK_MIN, CHUNK]. CHUNK_MIN keeps the fixed cost of a
 * batch (round trips, planning, the commit) under about a fifth of it;
 * with a store whose commits are slow (fsync on a busy disk) batches grow
 * so that the commits do not dominate the throughput. */
#define CHUNK 8192
#define CHUNK_MIN 1024
#define CHUNK_BUDGET_US 50000

typedef struct stask {
    int64_t id;
    char *name;
    cron_expr expr;
    const tz_zone *zone;
    int64_t next_ms;       /* next fire, wall clock ms; -1: never */
    int64_t grace_ms, jitter_ms;
    uint32_t period_s;     /* gap between its next two fires (capped): tie-break */
    uint32_t stamp;        /* fire_batch's chunk_stamp when last put in a chunk */
    int16_t max_runs;
    uint8_t priority, concurrency, misfire;
} stask;

typedef struct fire {
    uint32_t task;         /* index into tasks */
    int64_t due_ms;        /* scheduled_for */
} fire;

struct scheduler {
    const pgr_config *cfg;
    queue *q;
    store *st;
    PGconn *leader;        /* the session holding the advisory lock */
    bool is_leader;
    bool reload;
    bool pending_scan;     /* look for pending manual executions to enqueue */
    int64_t retry_ms;
    stask *tasks;
    size_t n_tasks;
    uint32_t *heap;
    size_t heap_n;
    fire *backlog;         /* due fires taken from the heap, not fired yet */
    size_t bl_head, bl_n, bl_cap;
    uint32_t chunk_stamp;  /* fire_batch: tasks already in the current chunk */
    size_t chunk;          /* backlog fires per call of fire_due */
    int64_t urgent_us;     /* running mean of the urgent batch's duration */
    uint64_t rng;
    pthread_mutex_t mu;    /* guards stats and the lag ring (read by the API) */
    int64_t lags[LAG_RING];
    size_t lag_n, lag_pos;
    sched_stats stats;
};

/* ---- heap of task indices by next_ms ---------------------------------- */

/* By next fire; at the same instant the most frequent task first: it has
 * the least slack before its next fire. */
static bool earlier(const scheduler *sc, uint32_t a, uint32_t b)
{
    const stask *x = &sc->tasks[a], *y = &sc->tasks[b];
    if (x->next_ms != y->next_ms)
        return x->next_ms < y->next_ms;
    return x->period_s < y->period_s;
}

static void heap_push(scheduler *sc, uint32_t idx)
{
    size_t i = sc->heap_n++;
    sc->heap[i] = idx;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(sc, sc->heap[i], sc->heap[parent]))
            break;
        uint32_t tmp = sc->heap[i];
        sc->heap[i] = sc->heap[parent];
        sc->heap[parent] = tmp;
        i = parent;
    }
}

static uint32_t heap_pop(scheduler *sc)
{
    uint32_t top = sc->heap[0];
    sc->heap[0] = sc->heap[--sc->heap_n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < sc->heap_n && earlier(sc, sc->heap[l], sc->heap[m]))
            m = l;
        if (r < sc->heap_n && earlier(sc, sc->heap[r], sc->heap[m]))
            m = r;
        if (m == i)
            break;
        uint32_t tmp = sc->heap[i];
        sc->heap[i] = sc->heap[m];
        sc->heap[m] = tmp;
        i = m;
    }
    return top;
}

/* ---- helpers ---------------------------------------------------------- */

static uint64_t next_rand(scheduler *sc)
{
    uint64_t x = sc->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return sc->rng = x;
}

/* Next fire strictly after `after_ms`, in ms; -1 when never. */
static int64_t next_fire(const stask *t, int64_t after_ms)
{
    int64_t s = cron_next(&t->expr, t->zone, after_ms / 1000 - (after_ms % 1000 < 0));
    return s < 0 ? -1 : s * 1000;
}

static void record_lag(scheduler *sc, int64_t lag_us)
{
    sc->lags[sc->lag_pos] = lag_us;
    sc->lag_pos = (sc->lag_pos + 1) % LAG_RING;
    if (sc->lag_n < LAG_RING)
        sc->lag_n++;
    if (lag_us > sc->stats.lag_max_us)
        sc->stats.lag_max_us = lag_us;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void free_tasks(scheduler *sc)
{
    for (size_t i = 0; i < sc->n_tasks; i++)
        free(sc->tasks[i].name);
    free(sc->tasks);
    free(sc->heap);
    free(sc->backlog);
    sc->tasks = NULL;
    sc->heap = NULL;
    sc->backlog = NULL;
    sc->n_tasks = sc->heap_n = 0;
    sc->bl_head = sc->bl_n = sc->bl_cap = 0;
}

/* ---- leadership ------------------------------------------------------- */

static void lose_leadership(scheduler *sc, const char *why)
{
    if (sc->is_leader && strcmp(why, "shutting down") != 0)
        log_warning("no longer the leader: %s; firing stopped", why);
    sc->is_leader = false;
    if (sc->leader)
        PQfinish(sc->leader);
    sc->leader = NULL;
    free_tasks(sc);
}

/* Try to become the leader. Returns true when we hold the lock. */
static bool try_lead(scheduler *sc)
{
    if (!sc->leader) {
        /* Named so that an operator (and the fail-over test) can tell from
         * pg_stat_activity which process holds the leadership. */
        char appname[64];
        snprintf(appname, sizeof appname, "pgreviewer scheduler %d", (int)getpid());
        const char *kw[] = {"dbname", "application_name", NULL};
        const char *val[] = {sc->cfg->store.url, appname, NULL};
        sc->leader = PQconnectdbParams(kw, val, 1);
        if (PQstatus(sc->leader) != CONNECTION_OK) {
            log_warning("leader election: cannot connect to the store: %s",
                        PQerrorMessage(sc->leader));
            PQfinish(sc->leader);
            sc->leader = NULL;
            return false;
        }
    }
    PGresult *r = PQexec(sc->leader, "SELECT pg_try_advisory_lock(" LEADER_KEY ")");
    bool won = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (PQstatus(sc->leader) != CONNECTION_OK) {
        PQfinish(sc->leader);
        sc->leader = NULL;
        return false;
    }
    if (won) {
        r = PQexec(sc->leader, "LISTEN " STORE_CHANNEL_TASKS "; LISTEN " STORE_CHANNEL_EXECUTIONS);
        PQclear(r);
        sc->pending_scan = true; /* manual runs created while no leader was there */
    }
    return won;
}

/* Drain notifications on the leader session; false when the session is
 * gone (then leadership is lost). */
static bool check_leader(scheduler *sc)
{
    if (!sc->leader || PQstatus(sc->leader) != CONNECTION_OK || !PQconsumeInput(sc->leader))
        return false;
    PGnotify *n;
    while ((n = PQnotifies(sc->leader))) {
        if (!strcmp(n->relname, STORE_CHANNEL_EXECUTIONS))
            sc->pending_scan = true;
        else
            sc->reload = true;
        PQfreemem(n);
    }
    return true;
}

/* A round trip on the leader session, before a batch of fires: the lock
 * is ours only while the session answers. */
static bool confirm_leader(scheduler *sc)
{
    if (!check_leader(sc))
        return false;
    PGresult *r = PQexec(sc->leader, "SELECT 1");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok && check_leader(sc);
}

/* ---- loading and misfires --------------------------------------------- */

/* Fill one stask from the store's row; false (with a log line) when the
 * schedule or zone is unusable. */
static bool make_task(scheduler *sc, const store_task *row, stask *t)
{
    char err[1024];
    memset(t, 0, sizeof *t);
    if (cron_parse(row->cron_schedule, &t->expr, err, sizeof err) < 0) {
        log_error("task %s: schedule not used: %s", row->name, err);
        return false;
    }
    const char *zone = row->timezone ? row->timezone : sc->cfg->defaults.timezone;
    t->zone = tz_load(zone ? zone : "UTC", err, sizeof err);
    if (!t->zone) {
        log_error("task %s: time zone not used: %s", row->name, err);
        return false;
    }
    t->id = row->id;
    t->name = xstrdup(row->name);
    t->grace_ms = row->misfire_grace_ms;
    t->jitter_ms = row->jitter_ms;
    t->max_runs = (int16_t)(row->misfire_max_runs > 0 ? row->misfire_max_runs : 1);
    t->priority = (uint8_t)row->priority;
    t->concurrency = (uint8_t)row->concurrency;
    t->misfire = (uint8_t)row->misfire;
    return true;
}

/* Decide what to do with fires missed between the task's last fire and
 * now, appending the ones to run to `out`; sets t->next_ms to the first
 * fire from the current second on. Fires due within the current second
 * are not missed: they are simply due. */
static void plan_misfires(scheduler *sc, stask *t, int64_t last_fire_ms, int64_t now_ms,
                          fire *out, size_t *n_out, size_t cap, uint32_t idx)
{
    int64_t current = now_ms - now_ms % 1000 - 1; /* fires after this are not missed */
    if (last_fire_ms <= 0 || t->misfire == MISFIRE_SKIP) {
        int64_t f = last_fire_ms > 0 ? next_fire(t, last_fire_ms) : -1;
        if (f >= 0 && f <= current)
            sc->stats.missed_dropped++;
        t->next_ms = next_fire(t, current);
        return;
    }
    /* Fires before the grace window are dropped without being listed. */
    int64_t from = last_fire_ms;
    if (now_ms - t->grace_ms > from) {
        if (next_fire(t, from) <= now_ms - t->grace_ms)
            sc->stats.missed_dropped++;
        from = now_ms - t->grace_ms - 1;
    }
    int64_t missed[64];
    size_t n = 0, total = 0;
    int64_t f = next_fire(t, from);
    for (; f >= 0 && f <= current; f = next_fire(t, f)) {
        missed[n++ % 64] = f; /* keep the latest 64 */
        total++;
    }
    t->next_ms = f;
    size_t keep = t->misfire == MISFIRE_RUN_ONCE ? 1 : (size_t)t->max_runs;
    if (keep > 64)
        keep = 64;
    if (keep > total)
        keep = total;
    sc->stats.missed_dropped += (int64_t)(total - keep);
    for (size_t k = total - keep; k < total && *n_out < cap; k++) {
        out[(*n_out)++] = (fire){idx, missed[k % 64]};
        sc->stats.misfires_run++;
    }
    if (total)
        log_info("task %s: %zu fire(s) missed while no scheduler ran; running %zu (misfire %s)",
                 t->name, total, keep, t->misfire == MISFIRE_RUN_ONCE ? "run_once" : "run_all");
}

static int fire_batch(scheduler *sc, const fire *fires, size_t n);

/* The tie-break of the heap: seconds between the task's next two fires,
 * capped (a task that never fires again sorts last). */
static void set_period(stask *t)
{
    int64_t after = t->next_ms >= 0 ? next_fire(t, t->next_ms) : -1;
    int64_t gap = after >= 0 ? (after - t->next_ms) / 1000 : UINT32_MAX;
    t->period_s = gap > UINT32_MAX ? UINT32_MAX : (uint32_t)gap;
}

/* (Re)load every active scheduled task from the store and rebuild the
 * heap; missed fires are run per policy. */
static int load_tasks(scheduler *sc, bool run_misfires)
{
    char err[512];
    store_task *rows;
    size_t n;
    if (store_task_list(sc->st, false, &rows, &n, err, sizeof err) < 0) {
        log_error("cannot load tasks: %s", err);
        return -1;
    }
    free_tasks(sc);
    sc->tasks = xcalloc(n + 1, sizeof *sc->tasks);
    sc->heap = xcalloc(n + 1, sizeof *sc->heap);
    fire *missed = xcalloc(n * 4 + 1, sizeof *missed);
    size_t n_missed = 0;
    int64_t now = wall_ms();
    pthread_mutex_lock(&sc->mu); /* plan_misfires counts into stats */
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].is_active || !rows[i].cron_schedule)
            continue;
        stask *t = &sc->tasks[sc->n_tasks];
        if (!make_task(sc, &rows[i], t))
            continue;
        int64_t last = run_misfires ? rows[i].last_fire_ms : 0;
        plan_misfires(sc, t, last, now, missed, &n_missed, n * 4, (uint32_t)sc->n_tasks);
        if (!run_misfires || rows[i].last_fire_ms <= 0)
            t->next_ms = next_fire(t, now - now % 1000 - 1);
        set_period(t);
        if (t->next_ms >= 0)
            heap_push(sc, (uint32_t)sc->n_tasks);
        sc->n_tasks++;
    }
    pthread_mutex_unlock(&sc->mu);
    store_tasks_free(rows, n);
    pthread_mutex_lock(&sc->mu);
    sc->stats.tasks = (int)sc->n_tasks;
    pthread_mutex_unlock(&sc->mu);
    sc->reload = false;
    log_info("scheduling %zu task(s)", sc->n_tasks);
    int rc = n_missed ? fire_batch(sc, missed, n_missed) : 0;
    free(missed);
    if (rc == -2)
        lose_leadership(sc, "the leader session is gone");
    return rc < 0 ? -1 : 0;
}

/* ---- firing ----------------------------------------------------------- */

/* `concurrency: replace`: cancel the unfinished executions of the chunk's
 * replace tasks (one query to find them). `forbid` is checked by the
 * INSERT itself (store_fire_item.skip_if_active). */
static void replace_unfinished(scheduler *sc, const fire *fires, size_t n)
{
    int64_t *ids = xcalloc(n + 1, sizeof *ids);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const stask *t = &sc->tasks[fires[i].task];
        if (t->concurrency == CONC_REPLACE)
            ids[m++] = t->id;
    }
    char err[512];
    store_active *act = NULL;
    size_t n_act = 0;
    if (m && store_tasks_active(sc->st, ids, m, &act, &n_act, err, sizeof err) < 0)
        log_error("overlap check of %zu task(s) failed: %s (fired anyway: the fire key still "
                  "prevents duplicates)", m, err);
    free(ids);
    for (size_t k = 0; k < n_act; k++) {
        if (store_exec_cancel(sc->st, act[k].exec_id,
                              "replaced by a newer fire (concurrency: replace)", err,
                              sizeof err) > 0)
            log_info("task %lld: execution %lld cancelled (concurrency replace)",
                     (long long)act[k].task_id, (long long)act[k].exec_id);
    }
    free(act);
}

/* Enqueue what a chunk created: items ready now in one pipelined call,
 * jittered ones into the delayed set. Returns 0 or -1 (logged). */
static int enqueue_created(scheduler *sc, const fire *fires, const store_fire_item *items,
                           size_t n)
{
    char err[512];
    queue_item *ready = xcalloc(n + 1, sizeof *ready);
    int64_t *due = xcalloc(n + 1, sizeof *due);
    size_t n_ready = 0, n_delayed = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!items[i].created || items[i].skipped_now)
            continue;
        const stask *t = &sc->tasks[fires[i].task];
        queue_item it = {.id = items[i].exec_id, .priority = t->priority, .attempt = 1};
        if (items[i].initial == STORE_SCHEDULED) {
            n_delayed++;
            if (queue_enqueue_at(sc->q, &it, 1, items[i].not_before_ms, err, sizeof err) < 0) {
                log_error("task %s: execution %lld not enqueued: %s", t->name,
                          (long long)it.id, err);
                rc = -1;
            }
            continue;
        }
        due[n_ready] = fires[i].due_ms;
        ready[n_ready++] = it;
    }
    if (n_ready && queue_enqueue(sc->q, ready, n_ready, err, sizeof err) < 0) {
        log_error("%zu execution(s) recorded but not enqueued: %s (recovered at the next "
                  "start)", n_ready, err);
        rc = -1;
        n_ready = 0;
    }
    int64_t now_us = wall_ms() * 1000 + mono_us() % 1000;
    pthread_mutex_lock(&sc->mu);
    sc->stats.fires += (int64_t)(n_ready + n_delayed);
    for (size_t i = 0; i < n_ready; i++)
        record_lag(sc, now_us - due[i] * 1000);
    pthread_mutex_unlock(&sc->mu);
    if (n_ready)
        log_debug("fired %zu execution(s); lag of the first %lld us", n_ready,
                  (long long)(now_us - due[0] * 1000));
    free(ready);
    free(due);
    return rc;
}

/* Log the skipped fires a chunk recorded: each of the first few, then a
 * count (a crowd of skips must not flood the log). */
static void log_skipped(scheduler *sc, const fire *fires, const store_fire_item *items, size_t n)
{
    size_t shown = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!items[i].skipped_now)
            continue;
        total++;
        if (shown++ < 16)
            log_info("task %s: fire skipped: %s", sc->tasks[fires[i].task].name,
                     items[i].skipped_reason);
    }
    if (total > 16)
        log_info("... and %zu more fire(s) skipped (concurrency forbid)", total - 16);
    pthread_mutex_lock(&sc->mu);
    sc->stats.skipped += (int64_t)total;
    pthread_mutex_unlock(&sc->mu);
}

/* One chunk: leader check, the replace policy (a query only when the
 * chunk has replace tasks), one INSERT of every fire with the forbid check
 * in it, one pipelined enqueue. Returns 0, -1 on a store or queue error
 * (logged), or -2 when the leader session is gone (nothing fired). */
static int fire_chunk(scheduler *sc, const fire *fires, size_t n)
{
    if (!confirm_leader(sc))
        return -2;
    replace_unfinished(sc, fires, n);
    store_fire_item *items = xcalloc(n, sizeof *items);
    for (size_t i = 0; i < n; i++) {
        const stask *t = &sc->tasks[fires[i].task];
        int64_t jit = t->jitter_ms > 0 ? (int64_t)(next_rand(sc) % (uint64_t)t->jitter_ms) : 0;
        items[i] = (store_fire_item){.task_id = t->id,
                                     .scheduled_for_ms = fires[i].due_ms,
                                     .initial = jit ? STORE_SCHEDULED : STORE_QUEUED,
                                     .not_before_ms = jit ? fires[i].due_ms + jit : 0,
                                     .skip_if_active = t->concurrency == CONC_FORBID};
    }
    char err[512];
    int rc = 0;
    if (store_fire_batch(sc->st, items, n, err, sizeof err) < 0) {
        log_error("%zu fire(s) from %lld on not recorded: %s", n, (long long)fires[0].due_ms,
                  err);
        rc = -1;
    } else {
        log_skipped(sc, fires, items, n);
        rc = enqueue_created(sc, fires, items, n);
    }
    free(items);
    return rc;
}

/* Fire fires[0..n) in chunks of at most CHUNK. A chunk never holds two
 * fires of one task whose concurrency is not `allow` (missed fires run at
 * start-up): the later one must see the earlier one's execution, as if
 * fired one by one. Returns 0, -1 when something was not recorded or
 * enqueued (logged), or -2 when leadership was lost (the rest not fired). */
static int fire_batch(scheduler *sc, const fire *fires, size_t n)
{
    int rc = 0;
    size_t start = 0;
    while (start < n) {
        sc->chunk_stamp++;
        size_t end = start;
        while (end < n && end - start < CHUNK) {
            stask *t = &sc->tasks[fires[end].task];
            if (t->concurrency != CONC_ALLOW && t->stamp == sc->chunk_stamp)
                break;
            t->stamp = sc->chunk_stamp;
            end++;
        }
        int r = fire_chunk(sc, fires + start, end - start);
        if (r == -2)
            return -2;
        if (r < 0)
            rc = -1;
        start = end;
    }
    return rc;
}

/* Enqueue manual executions (task trigger, API) still pending. Whoever
 * moves an execution from pending to queued enqueues it, so an API that
 * enqueued it itself is never doubled. */
static void enqueue_pending(scheduler *sc)
{
    sc->pending_scan = false;
    PGresult *r = PQexec(store_conn(sc->st),
                         "SELECT id, priority FROM task_executions WHERE status = 'pending' "
                         "ORDER BY priority DESC, id LIMIT 10000");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        log_error("cannot look for pending executions: %s", PQerrorMessage(store_conn(sc->st)));
        PQclear(r);
        return;
    }
    char err[512];
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        if (store_exec_mark_queued(sc->st, &id, 1, err, sizeof err) != 1)
            continue;
        queue_item it = {.id = id, .priority = atoi(PQgetvalue(r, i, 1)), .attempt = 1};
        if (queue_enqueue(sc->q, &it, 1, err, sizeof err) < 0)
            log_error("execution %lld not enqueued: %s", (long long)id, err);
        else
            log_info("manual execution %lld queued", (long long)id);
    }
    PQclear(r);
}

/* Pop up to `max` fires due by `now` from the heap into out, each task
 * rescheduled to its following fire. Returns how many. */
static size_t pop_due(scheduler *sc, int64_t now, fire *out, size_t max)
{
    size_t n = 0;
    while (n < max && sc->heap_n && sc->tasks[sc->heap[0]].next_ms <= now) {
        uint32_t idx = heap_pop(sc);
        stask *t = &sc->tasks[idx];
        out[n++] = (fire){idx, t->next_ms};
        t->next_ms = next_fire(t, t->next_ms);
        if (t->next_ms >= 0)
            heap_push(sc, idx);
    }
    return n;
}

static void backlog_push(scheduler *sc, fire f)
{
    if (sc->bl_n == sc->bl_cap && sc->bl_head > 0) {
        memmove(sc->backlog, sc->backlog + sc->bl_head,
                (sc->bl_n - sc->bl_head) * sizeof *sc->backlog);
        sc->bl_n -= sc->bl_head;
        sc->bl_head = 0;
    }
    if (sc->bl_n == sc->bl_cap) {
        sc->bl_cap = sc->bl_cap ? sc->bl_cap * 2 : 4096;
        sc->backlog = xrealloc(sc->backlog, sc->bl_cap * sizeof *sc->backlog);
    }
    sc->backlog[sc->bl_n++] = f;
}

static size_t backlog_len(const scheduler *sc)
{
    return sc->bl_n - sc->bl_head;
}

/* Fire what is due by `now`. The FIRST_CHUNK most urgent fires go at once
 * (a `* * * * * *` task among them: the heap puts frequent tasks first);
 * the other due fires join the backlog, of which one chunk (sc->chunk) is
 * fired per call. The loop calls again without waiting while a backlog remains, so
 * fires that come due meanwhile are never behind more than one chunk of a
 * crowd due earlier. */
static void fire_due(scheduler *sc, int64_t now)
{
    fire first[FIRST_CHUNK];
    size_t n = pop_due(sc, now, first, FIRST_CHUNK);
    int64_t t0 = mono_us();
    int rc = n ? fire_batch(sc, first, n) : 0;
    if (n && rc == 0)
        sc->urgent_us = sc->urgent_us ? (3 * sc->urgent_us + mono_us() - t0) / 4 : mono_us() - t0;
    if (rc != -2) {
        fire f;
        while (pop_due(sc, now, &f, 1))
            backlog_push(sc, f);
        if (!sc->chunk)
            sc->chunk = 1024;
        size_t take = backlog_len(sc) < sc->chunk ? backlog_len(sc) : sc->chunk;
        if (take) {
            t0 = mono_us();
            rc = fire_batch(sc, sc->backlog + sc->bl_head, take);
            sc->bl_head += take;
            if (sc->bl_head == sc->bl_n)
                sc->bl_head = sc->bl_n = 0;
            size_t per_fire_us = (size_t)(mono_us() - t0) / take + 1;
            int64_t budget = 2 * sc->urgent_us > CHUNK_BUDGET_US ? 2 * sc->urgent_us
                                                                 : CHUNK_BUDGET_US;
            size_t next = (size_t)budget / per_fire_us;
            sc->chunk = next < CHUNK_MIN ? CHUNK_MIN : next > CHUNK ? CHUNK : next;
        }
    }
    if (rc == -2)
        lose_leadership(sc, "the leader session is gone");
}

/* ---- the loop --------------------------------------------------------- */

scheduler *scheduler_new(const pgr_config *cfg, queue *q, int64_t retry_ms, char *err,
                         size_t errlen)
{
    if (!cfg->store.url)
        return set_err(err, errlen, "the scheduler needs a store (set store.url)"), NULL;
    scheduler *sc = xcalloc(1, sizeof *sc);
    sc->cfg = cfg;
    sc->q = q;
    sc->retry_ms = retry_ms > 0 ? retry_ms : 1000;
    sc->rng = (uint64_t)mono_us() * 0x9e3779b97f4a7c15ull | 1;
    pthread_mutex_init(&sc->mu, NULL);
    sc->st = store_open_config(cfg, err, errlen);
    if (!sc->st) {
        free(sc);
        return NULL;
    }
    return sc;
}

void scheduler_free(scheduler *sc)
{
    if (!sc)
        return;
    free_tasks(sc);
    if (sc->leader)
        PQfinish(sc->leader);
    store_close(sc->st);
    pthread_mutex_destroy(&sc->mu);
    free(sc);
}

static void wait_for(scheduler *sc, int64_t ms)
{
    struct pollfd p = {.fd = sc->leader ? PQsocket(sc->leader) : -1, .events = POLLIN};
    if (ms < 0)
        ms = 0;
    poll(&p, p.fd >= 0 ? 1 : 0, (int)ms);
}

int scheduler_run(scheduler *sc, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    if (store_migrate(sc->st, err, errlen) < 0)
        return -1;
    /* Configuration is the source of the config-owned tasks: every
     * scheduler brings the store up to date with it before it competes. */
    store_sync_stats sync;
    if (store_sync_tasks(sc->st, sc->cfg, &sync, err, errlen) < 0)
        return -1;
    log_set_component("scheduler");
    log_info("tasks synced from configuration: %d new, %d changed, %d removed", sync.inserted,
             sync.updated, sync.removed);
    while (!*stop) {
        if (!sc->is_leader) {
            if (!try_lead(sc)) {
                wait_for(sc, sc->retry_ms);
                continue;
            }
            sc->is_leader = true;
            log_info("leader: firing scheduled tasks");
            load_tasks(sc, true);
        }
        if (!check_leader(sc)) {
            lose_leadership(sc, "the leader session is gone");
            continue;
        }
        if (sc->reload && !backlog_len(sc)) /* the backlog indexes the current table */
            load_tasks(sc, false);
        if (sc->pending_scan)
            enqueue_pending(sc);
        int64_t now = wall_ms();
        fire_due(sc, now);
        if (!sc->is_leader)
            continue;
        int64_t wait = backlog_len(sc) ? 0 : RECHECK_MS;
        if (sc->heap_n) {
            int64_t next = sc->tasks[sc->heap[0]].next_ms - wall_ms();
            if (next < wait)
                wait = next;
        }
        wait_for(sc, wait);
    }
    if (sc->is_leader)
        lose_leadership(sc, "shutting down");
    return 0;
}

void scheduler_stats(const scheduler *sc, sched_stats *out)
{
    pthread_mutex_t *mu = (pthread_mutex_t *)&sc->mu; /* locking is not a change */
    pthread_mutex_lock(mu);
    *out = sc->stats;
    out->leader = sc->is_leader;
    if (sc->lag_n) {
        int64_t *tmp = xmalloc(sc->lag_n * sizeof *tmp);
        memcpy(tmp, sc->lags, sc->lag_n * sizeof *tmp);
        qsort(tmp, sc->lag_n, sizeof *tmp, cmp_i64);
        out->lag_p50_us = tmp[sc->lag_n / 2];
        out->lag_p99_us = tmp[(sc->lag_n * 99) / 100];
        free(tmp);
    }
    pthread_mutex_unlock(mu);
}

void scheduler_metrics(void *ctx, strbuf *out)
{
    sched_stats s;
    scheduler_stats(ctx, &s);
    sb_printf(out, "# TYPE pgreviewer_scheduler_leader gauge\npgreviewer_scheduler_leader %d\n",
              s.leader ? 1 : 0);
    sb_printf(out, "# TYPE pgreviewer_scheduler_tasks gauge\npgreviewer_scheduler_tasks %d\n",
              s.tasks);
    sb_printf(out, "# TYPE pgreviewer_scheduler_fires_total counter\n"
                   "pgreviewer_scheduler_fires_total %lld\n",
              (long long)s.fires);
    sb_printf(out, "# TYPE pgreviewer_scheduler_skipped_total counter\n"
                   "pgreviewer_scheduler_skipped_total %lld\n",
              (long long)s.skipped);
    sb_printf(out, "# HELP pgreviewer_scheduler_lag_seconds Enqueue time minus due time over "
                   "the latest fires.\n# TYPE pgreviewer_scheduler_lag_seconds gauge\n"
                   "pgreviewer_scheduler_lag_seconds{quantile=\"0.5\"} %.6f\n"
                   "pgreviewer_scheduler_lag_seconds{quantile=\"0.99\"} %.6f\n",
              (double)s.lag_p50_us / 1e6, (double)s.lag_p99_us / 1e6);
}

static volatile sig_atomic_t sched_stop;

static void on_signal(int sig)
{
    (void)sig;
    sched_stop = 1;
}

int cmd_scheduler(const pgr_config *cfg, int argc, char **argv)
{
    int64_t retry = 1000;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--retry") && i + 1 < argc &&
            parse_duration_ms(argv[i + 1], &retry) == 0) {
            i++;
            continue;
        }
        fprintf(stderr, "pgreviewer: usage: pgreviewer scheduler [--retry DURATION]\n");
        return 2;
    }
    if (!cfg->queue.url) {
        fprintf(stderr, "pgreviewer: the scheduler role needs a shared queue: set queue.url "
                        "(redis://...), or use `pgreviewer run` on a single host\n");
        return 1;
    }
    char err[512];
    queue *q = queue_open(cfg->queue.url, cfg->queue.prefix, err, sizeof err);
    if (!q) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        return 1;
    }
    scheduler *sc = scheduler_new(cfg, q, retry, err, sizeof err);
    if (!sc) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        queue_close(q);
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int rc = scheduler_run(sc, &sched_stop, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "pgreviewer: %s\n", err);
    scheduler_free(sc);
    queue_close(q);
    return rc < 0 ? 1 : 0;
}
