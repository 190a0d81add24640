/*
 * bench_worker.c - end-to-end figures of the worker supervisor: no-op tasks
 * of the example plugin through Redis, one worker host (the supervisor of
 * core/worker.c, in this process, with its forked executors), with and
 * without the store's execution records:
 *   drain /s        the queue filled first (executions created first), then
 *                   the worker started: first fetch to last outcome written
 *   end-to-end /s   the worker idle and running, a producer enqueueing the N
 *                   items in batches of 100 as fast as it can: first enqueue
 *                   to last outcome written
 *   enqueue->start  p50/p99 for single items on an idle worker: from the
 *                   item becoming ready in Redis to its hand-over to an
 *                   executor, one item at a time
 * "No store" is the worker's bench-only mode (worker_opts.no_store, CLI
 * --no-store): the job travels in the queue payload and nothing is
 * recorded. With the store, executions are created in the store before
 * the clock starts (the scheduler's work, not the worker's).
 *
 *   bench_worker --url REDIS_URL [--store CONNINFO] [--n N] [--processes P]
 *                [--prefetch K] [--samples S] [--plugins DIR]
 * Prints one line per figure. Run by run_worker.sh, which starts Redis and
 * PostgreSQL and prints redis-benchmark's ceiling beside these.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "loader.h"
#include "log.h"
#include "queue.h"
#include "store.h"
#include "util.h"
#include "worker.h"

static const char *redis_url, *store_url, *plugin_dir;
static int n_items = 20000, processes = 2, prefetch = 64, n_samples = 500;
static int run_no;

static _Atomic long finished;
static int64_t *lags; /* us, by sample */
static _Atomic int lag_n;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench_worker: %s: %s\n", what, err);
    exit(1);
}

static void on_start(void *arg, int64_t id, int64_t lag_us)
{
    (void)arg;
    (void)id;
    int i = atomic_fetch_add(&lag_n, 1);
    if (lags && i < n_samples)
        lags[i] = lag_us;
}

static void on_finish(void *arg, int64_t id, exec_outcome o)
{
    (void)arg;
    (void)id;
    if (o != EXEC_SUCCESS)
        fprintf(stderr, "bench_worker: execution %lld: %s\n", (long long)id, exec_outcome_name(o));
    atomic_fetch_add(&finished, 1);
    pthread_mutex_lock(&mu);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void wait_finished(long want)
{
    pthread_mutex_lock(&mu);
    while (atomic_load(&finished) < want)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

typedef struct bench {
    pgr_config *cfg;
    plugin_registry *reg;
    bool no_store;
    store *s;
    queue *q;
    worker *w;
    pthread_t th;
    char prefix[32];
} bench;

static void *run_worker(void *arg)
{
    bench *b = arg;
    char err[512];
    if (worker_run(b->w, err, sizeof err) < 0)
        die("worker_run", err);
    return NULL;
}

/* A fresh prefix and queue handle, and a new worker (executors forked now). */
static void bench_open(bench *b)
{
    char err[512];
    snprintf(b->prefix, sizeof b->prefix, "bw%d", ++run_no);
    free(b->cfg->queue.prefix);
    b->cfg->queue.prefix = xstrdup(b->prefix);
    b->q = queue_open(redis_url, b->prefix, err, sizeof err);
    if (!b->q)
        die("queue_open", err);
    worker_opts o = {.processes = processes, .prefetch = prefetch, .no_store = b->no_store,
                     .on_start = on_start, .on_finish = on_finish};
    b->w = worker_new(b->cfg, b->reg, &o, err, sizeof err);
    if (!b->w)
        die("worker_new", err);
    atomic_store(&finished, 0);
    atomic_store(&lag_n, 0);
}

static void bench_start(bench *b)
{
    pthread_create(&b->th, NULL, run_worker, b);
}

static void bench_close(bench *b)
{
    worker_stop(b->w);
    pthread_join(b->th, NULL);
    worker_free(b->w);
    queue_close(b->q);
}

/* n executions of the bench task, queued, in one INSERT. */
static int64_t *make_execs(bench *b, int n)
{
    int64_t *ids = xcalloc((size_t)n, sizeof *ids);
    if (b->no_store) {
        for (int i = 0; i < n; i++)
            ids[i] = (int64_t)run_no * 10000000 + i + 1;
        return ids;
    }
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO task_executions (scheduled_task_id, task_name, task_type, status, "
             " trigger, priority, max_attempts, parameters, queued_at) "
             "SELECT t.id, t.name, t.task_type, 'queued', 'manual', 5, 1, t.task_params, now() "
             "FROM scheduled_tasks t, generate_series(1, %d) WHERE t.name = 'bench' RETURNING id",
             n);
    PGresult *r = PQexec(store_conn(b->s), sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("creating executions", PQerrorMessage(store_conn(b->s)));
    for (int i = 0; i < n; i++)
        ids[i] = atoll(PQgetvalue(r, i, 0));
    PQclear(r);
    return ids;
}

static const char payload[] = "{\"task\":\"bench\",\"type\":\"example\",\"params\":{}}";

static void enqueue(bench *b, const int64_t *ids, int n)
{
    queue_item *it = xcalloc((size_t)n, sizeof *it);
    for (int i = 0; i < n; i++)
        it[i] = (queue_item){ids[i], 5, 1, b->no_store ? payload : NULL};
    char err[512];
    for (int off = 0; off < n; off += 1000) {
        int k = n - off < 1000 ? n - off : 1000;
        if (queue_enqueue(b->q, it + off, (size_t)k, err, sizeof err) < 0)
            die("enqueue", err);
    }
    free(it);
}

static void report(const char *mode, const char *name, long n, int64_t us)
{
    printf("%-9s %-26s %10.0f /s   (%ld in %.1f ms)\n", mode, name, (double)n * 1e6 / (double)us,
           n, (double)us / 1000.0);
    fflush(stdout);
}

static void drain(bench *b, const char *mode)
{
    bench_open(b);
    int64_t *ids = make_execs(b, n_items);
    enqueue(b, ids, n_items);
    int64_t t0 = mono_us();
    bench_start(b);
    wait_finished(n_items);
    report(mode, "drain (queue filled first)", n_items, mono_us() - t0);
    bench_close(b);
    free(ids);
}

static void end_to_end(bench *b, const char *mode)
{
    bench_open(b);
    int64_t *ids = make_execs(b, n_items);
    bench_start(b);
    int64_t t0 = mono_us();
    for (int off = 0; off < n_items; off += 100)
        enqueue(b, ids + off, n_items - off < 100 ? n_items - off : 100);
    wait_finished(n_items);
    report(mode, "end-to-end (producer live)", n_items, mono_us() - t0);
    bench_close(b);
    free(ids);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void latency(bench *b, const char *mode)
{
    bench_open(b);
    int64_t *ids = make_execs(b, n_samples);
    lags = xcalloc((size_t)n_samples, sizeof *lags);
    bench_start(b);
    for (int i = 0; i < n_samples; i++) {
        enqueue(b, &ids[i], 1);
        wait_finished(i + 1);
    }
    qsort(lags, (size_t)n_samples, sizeof *lags, cmp64);
    printf("%-9s %-26s p50 %.3f ms   p99 %.3f ms   (%d single items, idle worker)\n", mode,
           "enqueue->start", (double)lags[n_samples / 2] / 1000.0,
           (double)lags[n_samples * 99 / 100] / 1000.0, n_samples);
    fflush(stdout);
    bench_close(b);
    free(lags);
    lags = NULL;
    free(ids);
}

static void create_task(bench *b)
{
    char err[512];
    b->s = store_open(store_url, err, sizeof err);
    if (!b->s || store_migrate(b->s, err, sizeof err) < 0)
        die("store", err);
    store_task t;
    if (store_task_get(b->s, "bench", &t, err, sizeof err) == 0) {
        store_task_clear(&t);
        return;
    }
    cfg_task ct = {0};
    ct.name = "bench";
    ct.type = "example";
    ct.timezone = "UTC";
    ct.priority = 5;
    ct.timeout_ms = 300000;
    ct.concurrency = CONC_ALLOW;
    ct.enabled = true;
    ct.retry = b->cfg->defaults.retry;
    ct.params = json_object();
    if (store_task_create_api(b->s, &ct, NULL, err, sizeof err) < 0)
        die("creating the bench task", err);
    json_decref(ct.params);
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--url"))
            redis_url = argv[i + 1];
        else if (!strcmp(argv[i], "--store"))
            store_url = argv[i + 1];
        else if (!strcmp(argv[i], "--plugins"))
            plugin_dir = argv[i + 1];
        else if (!strcmp(argv[i], "--n"))
            n_items = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--processes"))
            processes = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--prefetch"))
            prefetch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--samples"))
            n_samples = atoi(argv[i + 1]);
        else
            die("unknown option", argv[i]);
    }
    if (!redis_url)
        die("usage", "bench_worker --url REDIS_URL [--store CONNINFO] [--n N] [--processes P] "
                     "[--prefetch K] [--samples S] [--plugins DIR]");
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    log_configure("warning", "text"); /* the example plugin logs every run at info */
    char err[512];
    if (!plugin_dir)
        plugin_dir = getenv("PGR_PLUGIN_DIR") ? getenv("PGR_PLUGIN_DIR") : loader_default_dir();
    bench b = {0};
    b.reg = loader_load_dir(plugin_dir, err, sizeof err);
    if (!b.reg || !loader_find_type(b.reg, "example"))
        die("plugins", b.reg ? "the example plugin is not loaded" : err);
    b.cfg = config_defaults();
    b.cfg->queue.url = xstrdup(redis_url);
    b.cfg->workers.processes = processes;
    printf("# %d no-op example tasks, 1 worker host, %d executors, prefetch %d\n", n_items,
           processes, prefetch);
    b.no_store = true;
    drain(&b, "no-store");
    end_to_end(&b, "no-store");
    latency(&b, "no-store");
    if (store_url) {
        b.no_store = false;
        b.cfg->store.url = xstrdup(store_url);
        create_task(&b);
        drain(&b, "store");
        end_to_end(&b, "store");
        latency(&b, "store");
        store_close(b.s);
    }
    config_free(b.cfg);
    loader_free(b.reg);
    return 0;
}
