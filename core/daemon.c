/*
 * daemon.c - see daemon.h.
 */
#include "daemon.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "log.h"
#include "queue.h"
#include "scheduler.h"
#include "store.h"
#include "worker.h"

static worker *the_worker;
static volatile sig_atomic_t stop_flag, hup_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
    if (the_worker)
        worker_stop(the_worker); /* documented as safe in a signal handler */
}

static void on_hup(int sig)
{
    (void)sig;
    hup_flag = 1;
}

typedef struct sched_thread {
    scheduler *sc;
    pthread_t th;
    int rc;
    char err[512];
} sched_thread;

static void *sched_main(void *arg)
{
    sched_thread *t = arg;
    t->rc = scheduler_run(t->sc, &stop_flag, t->err, sizeof t->err);
    if (t->rc < 0)
        log_error("scheduler stopped: %s", t->err);
    return NULL;
}

/* Embedded mode: everything that was in the in-process queue when the last
 * run ended is lost with it; the store says what that was. */
static int recover(const pgr_config *cfg, queue *q)
{
    char err[512];
    store *s = store_open_config(cfg, err, sizeof err);
    if (!s || store_migrate(s, err, sizeof err) < 0) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        store_close(s);
        return -1;
    }
    store_recovered *rec = NULL;
    size_t n = 0;
    if (store_recover(s, NULL, true, &rec, &n, err, sizeof err) < 0) {
        fprintf(stderr, "pgreviewer: recovery: %s\n", err);
        store_close(s);
        return -1;
    }
    int64_t now = wall_ms();
    for (size_t i = 0; i < n; i++) {
        const store_recovered *r = &rec[i];
        queue_item it = {.id = r->execution_id, .priority = r->priority,
                         .attempt = r->attempt > 0 ? r->attempt : 1};
        bool later = r->was == STORE_SCHEDULED && r->not_before_ms > now;
        int rc = later ? store_exec_mark_scheduled(s, it.id, r->not_before_ms, err, sizeof err)
                       : store_exec_mark_queued(s, &it.id, 1, err, sizeof err);
        if (rc >= 0)
            rc = later ? queue_enqueue_at(q, &it, 1, r->not_before_ms, err, sizeof err)
                       : queue_enqueue(q, &it, 1, err, sizeof err);
        if (rc < 0)
            log_error("execution %lld not recovered: %s", (long long)it.id, err);
    }
    if (n)
        log_info("recovered %zu execution(s) left unfinished by the previous run", n);
    free(rec);
    store_close(s);
    return 0;
}

static void worker_metrics(void *ctx, strbuf *out)
{
    worker_stats st;
    worker_stats_get(ctx, &st);
    static const char *const outcomes[] = {"success", "retry", "fail", "crashed", "timeout"};
    sb_append(out, "# HELP pgreviewer_attempts_total Attempts ended by this worker, by "
                   "outcome.\n# TYPE pgreviewer_attempts_total counter\n");
    for (int i = 0; i < 5; i++)
        sb_printf(out, "pgreviewer_attempts_total{outcome=\"%s\"} %lld\n", outcomes[i],
                  (long long)st.attempts[i]);
    sb_printf(out, "# TYPE pgreviewer_workers_active gauge\npgreviewer_workers_active %d\n",
              st.active);
    sb_printf(out, "# TYPE pgreviewer_workers_processes gauge\npgreviewer_workers_processes %d\n",
              st.processes);
    sb_printf(out, "# TYPE pgreviewer_worker_retried_total counter\n"
                   "pgreviewer_worker_retried_total %lld\n",
              (long long)st.retried);
}

/* SIGHUP: re-read the configuration and sync its tasks. */
static void reload(runtime *rt)
{
    hup_flag = 0;
    strbuf errs = {0};
    runtime *fresh = runtime_open(rt->config_path, RT_CONFIG_REQUIRED, &errs);
    if (!fresh) {
        log_error("SIGHUP: configuration not reloaded:\n%s", errs.buf ? errs.buf : "");
        sb_free(&errs);
        return;
    }
    char err[512];
    store_sync_stats st;
    store *s = store_open_config(fresh->cfg, err, sizeof err);
    if (!s || store_sync_tasks(s, fresh->cfg, &st, err, sizeof err) < 0)
        log_error("SIGHUP: tasks not synced: %s", err);
    else
        log_info("SIGHUP: configuration reloaded: %d new, %d changed, %d removed task(s)",
                 st.inserted, st.updated, st.removed);
    store_close(s);
    runtime_free(fresh);
}

/* Retention: history never grows without limit (store.retention and
 * store.retention_per_task), pruned in bounded batches. */
static void prune(const pgr_config *cfg)
{
    if (cfg->store.retention_ms <= 0 && cfg->store.retention_per_task <= 0)
        return;
    char err[512];
    store_retention_stats st;
    store *s = store_open_config(cfg, err, sizeof err);
    if (!s || store_retention(s, cfg->store.retention_ms, cfg->store.retention_per_task, 1000, &st,
                              err, sizeof err) < 0)
        log_error("retention: %s", err);
    else if (st.executions || st.results)
        log_info("retention: deleted %ld execution(s) and %ld orphaned result(s)", st.executions,
                 st.results);
    store_close(s);
}

#define PRUNE_EVERY_MS (3600 * 1000)

/* Housekeeping: SIGHUP reloads, and retention at start and every hour. */
static void *hup_main(void *arg)
{
    runtime *rt = arg;
    int64_t next_prune = mono_ms();
    log_set_component("housekeeping");
    while (!stop_flag) {
        if (mono_ms() >= next_prune) {
            prune(rt->cfg);
            next_prune = mono_ms() + PRUNE_EVERY_MS;
        }
        if (hup_flag)
            reload(rt);
        struct timespec d = {0, 200 * 1000000}; /* a flag set by a handler: checked 5x/s */
        nanosleep(&d, NULL);
    }
    return NULL;
}

int daemon_run(runtime *rt)
{
    const pgr_config *cfg = rt->cfg;
    char err[512];
    if (!cfg->store.url) {
        fprintf(stderr, "pgreviewer: run needs a store: set store.url (a PostgreSQL database "
                        "for tasks, executions and results); run --once works without one\n");
        return 1;
    }
    log_configure(cfg->logging.level, cfg->logging.format);
    log_set_component("worker");
    bool embedded = !cfg->queue.url;
    queue *q = queue_open(cfg->queue.url, cfg->queue.prefix, err, sizeof err);
    if (!q) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        return 1;
    }
    if (embedded && recover(cfg, q) < 0) {
        queue_close(q);
        return 1;
    }
    /* Stop signals go to the main thread only (the threads started below
     * inherit the blocked mask); they are unblocked in the worker loop. */
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, &old);

    worker_opts wo = {.processes = 0, .prefetch = -1, .queue = embedded ? q : NULL};
    the_worker = worker_new(cfg, rt->plugins, &wo, err, sizeof err);
    if (!the_worker) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        queue_close(q);
        return 1;
    }
    sched_thread st = {0};
    st.sc = scheduler_new(cfg, q, 1000, err, sizeof err);
    if (!st.sc) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        worker_free(the_worker);
        queue_close(q);
        return 1;
    }
    api_server *api = NULL;
    if (cfg->api.listen && *cfg->api.listen) {
        api = api_start(cfg, err, sizeof err);
        if (!api)
            log_error("%s (the API is off; everything else runs)", err);
        else {
            api_add_metrics(api, worker_metrics, the_worker);
            api_add_metrics(api, scheduler_metrics, st.sc);
            log_info("API listening on %s (port %d)", cfg->api.listen, api_port(api));
        }
    }
    pthread_create(&st.th, NULL, sched_main, &st);
    pthread_t hup;
    pthread_create(&hup, NULL, hup_main, rt);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    log_info("running: scheduler, %s queue, %d executor(s)%s", embedded ? "in-process" : "redis",
             cfg->workers.processes, api ? ", API" : "");
    int rc = worker_run(the_worker, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "pgreviewer: %s\n", err);
    stop_flag = 1;
    pthread_join(st.th, NULL);
    pthread_join(hup, NULL);
    api_stop(api);
    scheduler_free(st.sc);
    worker_free(the_worker);
    the_worker = NULL;
    queue_close(q);
    log_info("stopped");
    return rc < 0 || st.rc < 0 ? 1 : 0;
}
