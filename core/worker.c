/*
 * worker.c - the worker supervisor; see worker.h and docs/worker.md.
 *
 * Three threads, each with its own queue handle and store connection (a
 * memory queue is shared: it is thread-safe):
 *   - the fetcher leases items (blocking, so an idle worker sleeps in
 *     Redis), starts them in the store in one statement, reads their
 *     plugin state in one more, and passes ready jobs on through a
 *     mutex-protected list and an eventfd;
 *   - the supervisor's thread owns the executor pool: it hands jobs to
 *     idle executors, turns outcomes into decisions (completed, retry at a
 *     due time, dead) and keeps the leases of ready and running items
 *     alive;
 *   - the writer writes decisions as a group commit: the store first (one
 *     statement for the whole batch), then one ack, nack and dead call.
 *     While it writes, the next batch accumulates, so batches grow with
 *     the load and executors never wait for a commit.
 * Store before queue: a crash between the two only ever causes a
 * redelivery that the store recognises as finished.
 *
 * Every item the worker holds is in exactly one place: the fetcher (being
 * started), the hand-off list, the ready list, an executor, or the
 * writer's inbox or backlog.
 */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "report_store.h"
#include "runtime.h"
#include "store.h"
#include "util.h"

#define FETCH_BLOCK_MS 250   /* longest a fetch blocks: bounds how late a stop is seen */
#define POLICY_TTL_MS 60000  /* retry policies are re-read from the store this often */

const int64_t worker_hist_bounds_ms[WORKER_HIST_BUCKETS - 1] = {
    1, 5, 10, 50, 100, 500, 1000, 5000, 10000, 60000, 300000};

/* One item held by this worker. */
typedef struct witem {
    queue_lease lease;
    int64_t id;
    int attempt, max_attempts;
    cfg_retry retry;
    char *task;          /* for logs */
    char *plugin;        /* owner of the plugin state, or NULL */
    exec_job *job;       /* while ready; the pool owns it while running */
    int slot;            /* index in w->running while running, else -1 */
    struct witem *next;
} witem;

typedef enum qop { Q_ACK, Q_NACK, Q_DEAD } qop;

/* An outcome waiting for the next flush. */
typedef struct fin {
    witem *it;
    exec_outcome outcome;
    store_status status;     /* completed, failed, or scheduled (retry) */
    const char *att_outcome; /* "timeout", "crashed", "cancelled" or NULL */
    char *result_json, *state_json, *error;
    int64_t due_ms;          /* Q_NACK: wall clock */
    qop op;
    bool stored;             /* the store has it (or there is no store) */
    bool dup;                /* the store had finished it already: ours dropped */
    bool done;
} fin;

/* The writer thread's state: outcomes come in through `in` (under mu);
 * the backlog `fins` is the thread's own. */
typedef struct writer {
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fin *in;
    size_t n_in, cap_in;
    bool stop;
    fin *fins;
    size_t n_fin, cap_fin;
    int64_t retry_at, backoff, next_hb; /* mono ms */
    store *s;
    queue *q;
    bool own_q;
} writer;

typedef struct policy {
    int64_t task_id;
    cfg_retry retry;
    int64_t at;
} policy;

struct worker {
    const pgr_config *cfg;
    const plugin_registry *reg;
    worker_opts o;
    char host[256];
    int processes, prefetch, cap;
    int64_t lease_ms;
    exec_pool *pool;
    queue *mq, *fq;          /* supervisor's and fetcher's handles (may be the same) */
    bool own_mq, own_fq;
    store *ms, *fs;
    int efd;
    atomic_int stop;         /* lock-free: set from a signal handler and read by every thread */
    bool cut;                /* shutdown grace over: outcomes now are cancellations */

    pthread_t fetcher;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    witem *hand_head, *hand_tail;
    int held;                /* items counted against cap (fetcher + hand-off + ready + running) */

    /* the supervisor's thread only */
    witem *ready_head, *ready_tail;
    int n_ready;
    witem **running;
    int64_t next_hb;
    uint64_t rng;

    writer wr;

    /* the fetcher thread only */
    policy *pol;
    size_t n_pol;

    pthread_mutex_t smu;
    worker_stats st;
};

/* ------------------------------------------------------------ helpers */

static void item_free(witem *it)
{
    if (!it)
        return;
    queue_lease_clear(&it->lease);
    exec_job_free(it->job);
    free(it->task);
    free(it->plugin);
    free(it);
}

static void fin_clear(fin *f)
{
    item_free(f->it);
    free(f->result_json);
    free(f->state_json);
    free(f->error);
    memset(f, 0, sizeof *f);
}

static void wake(worker *w)
{
    uint64_t one = 1;
    ssize_t rc = write(w->efd, &one, sizeof one);
    (void)rc; /* EAGAIN: the counter is already non-zero, a wake-up is pending */
}

static void drain_wake(worker *w)
{
    uint64_t v;
    ssize_t rc = read(w->efd, &v, sizeof v);
    (void)rc;
}

/* Give back `n` units of capacity to the fetcher. */
static void unreserve(worker *w, int n)
{
    if (n <= 0)
        return;
    pthread_mutex_lock(&w->mu);
    w->held -= n;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Wait for capacity; reserve and return it (0 when stopping). */
static int reserve(worker *w)
{
    pthread_mutex_lock(&w->mu);
    while (!w->stop && w->held >= w->cap)
        pthread_cond_wait(&w->cv, &w->mu);
    int space = w->stop ? 0 : w->cap - w->held;
    w->held += space;
    pthread_mutex_unlock(&w->mu);
    return space;
}

/* Wait up to ms unless stopping (a back-off that a stop ends early). */
static void pause_ms(worker *w, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&w->mu);
    if (!w->stop)
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    pthread_mutex_unlock(&w->mu);
}

/* A back-off pause where there is nothing to wait on (start-up, shutdown). */
static void nap_ms(int64_t ms)
{
    struct timespec d = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&d, &d) < 0 && errno == EINTR)
        ;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static char *dumps_or_null(const json_t *j)
{
    return j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

/* -------------------------------------------------------- the fetcher */

/* The retry policy of task `task_id` (cached; read from the store). */
static cfg_retry task_policy(worker *w, int64_t task_id, const char *name)
{
    int64_t now = mono_ms();
    for (size_t i = 0; i < w->n_pol; i++)
        if (w->pol[i].task_id == task_id && now - w->pol[i].at < POLICY_TTL_MS)
            return w->pol[i].retry;
    cfg_retry r = w->cfg->defaults.retry;
    store_task t;
    char err[256];
    if (store_task_get(w->fs, name, &t, err, sizeof err) == 0) {
        r = t.retry;
        store_task_clear(&t);
    } else {
        const cfg_task *ct = config_find_task(w->cfg, name);
        if (ct)
            r = ct->retry;
    }
    size_t i = 0;
    while (i < w->n_pol && w->pol[i].task_id != task_id)
        i++;
    if (i == w->n_pol) {
        w->pol = xrealloc(w->pol, (w->n_pol + 1) * sizeof *w->pol);
        w->n_pol++;
    }
    w->pol[i] = (policy){task_id, r, now};
    return r;
}

static const char *plugin_of(worker *w, const char *type)
{
    const loaded_plugin *p = type ? loader_find_type(w->reg, type) : NULL;
    return p ? p->name : NULL;
}

static witem *item_new(queue_lease *l)
{
    witem *it = xcalloc(1, sizeof *it);
    it->lease = *l;
    memset(l, 0, sizeof *l);
    it->id = it->lease.id;
    it->slot = -1;
    return it;
}

/* A job from the payload (no-store mode), or NULL when it is not one. */
static witem *item_from_payload(worker *w, queue_lease *l)
{
    json_t *p = l->payload ? json_loads(l->payload, 0, NULL) : NULL;
    const char *task = json_string_value(json_object_get(p, "task"));
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!task || !type) {
        json_decref(p);
        return NULL;
    }
    json_t *params = json_object_get(p, "params");
    int64_t timeout = json_integer_value(json_object_get(p, "timeout_ms"));
    int max = (int)json_integer_value(json_object_get(p, "max_attempts"));
    witem *it = item_new(l);
    it->attempt = it->lease.attempt;
    it->max_attempts = max > 0 ? max : 1;
    it->retry = w->cfg->defaults.retry;
    it->task = xstrdup(task);
    it->job = exec_job_new(it->id, task, type, NULL,
                           json_is_object(params) ? json_incref(params) : NULL, NULL,
                           timeout > 0 ? timeout : w->cfg->defaults.timeout_ms, it->attempt);
    json_decref(p);
    return it;
}

static witem *item_from_start(worker *w, queue_lease *l, store_start_info *in, char *state)
{
    witem *it = item_new(l);
    it->attempt = in->attempt;
    it->max_attempts = in->max_attempts > 0 ? in->max_attempts : 1;
    it->retry = task_policy(w, in->task_id, in->task_name);
    it->task = xstrdup(in->task_name);
    it->plugin = xstrdup(plugin_of(w, in->task_type));
    json_t *params = in->params_json ? json_loads(in->params_json, 0, NULL) : NULL;
    json_t *st = state ? json_loads(state, JSON_DECODE_ANY, NULL) : NULL;
    it->job = exec_job_new(it->id, in->task_name, in->task_type, in->connection_id, params, st,
                           in->timeout_ms > 0 ? in->timeout_ms : w->cfg->defaults.timeout_ms,
                           it->attempt);
    return it;
}

/* Reopen executions a `queue dead retry` re-drove (failed in the store)
 * and start them again; info[] entries are replaced. */
static void restart_redriven(worker *w, const store_start *st, store_start_info *info, size_t n)
{
    int64_t *ids = xcalloc(n, sizeof *ids);
    store_start *again = xcalloc(n, sizeof *again);
    size_t *where = xcalloc(n, sizeof *where);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (info[i].rc == STORE_START_FINISHED && info[i].status == STORE_FAILED) {
            ids[k] = st[i].execution_id;
            again[k] = st[i];
            where[k++] = i;
        }
    }
    char err[512];
    store_start_info *in2 = xcalloc(k ? k : 1, sizeof *in2);
    if (k && store_exec_reopen(w->fs, ids, k, err, sizeof err) >= 0 &&
        store_exec_start(w->fs, again, k, in2, err, sizeof err) == 0) {
        for (size_t j = 0; j < k; j++) {
            log_info("execution %lld: re-driven from the dead letters; attempt %d",
                     (long long)ids[j], in2[j].attempt);
            info[where[j]] = in2[j];
        }
    } else if (k) {
        log_error("re-driving %zu executions: %s", k, err);
    }
    free(in2);
    free(ids);
    free(again);
    free(where);
}

/* Read the plugin state of every startable item in one query. */
static char **read_states(worker *w, const store_start_info *info, size_t n)
{
    char **json = xcalloc(n, sizeof *json);
    int64_t *tids = xcalloc(n, sizeof *tids);
    const char **plugins = xcalloc(n, sizeof *plugins);
    size_t *where = xcalloc(n, sizeof *where);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = info[i].rc == STORE_START_OK ? plugin_of(w, info[i].task_type) : NULL;
        if (p) {
            tids[k] = info[i].task_id;
            plugins[k] = p;
            where[k++] = i;
        }
    }
    char **got = xcalloc(k ? k : 1, sizeof *got);
    char err[512];
    if (k && store_plugin_states_get(w->fs, tids, plugins, k, got, err, sizeof err) < 0)
        log_error("reading plugin state: %s", err);
    for (size_t j = 0; j < k; j++)
        json[where[j]] = got[j];
    free(got);
    free(tids);
    free(plugins);
    free(where);
    return json;
}

static void push_handoff(worker *w, witem *head, witem *tail)
{
    if (!head)
        return;
    pthread_mutex_lock(&w->mu);
    if (w->hand_tail)
        w->hand_tail->next = head;
    else
        w->hand_head = head;
    w->hand_tail = tail;
    pthread_mutex_unlock(&w->mu);
    wake(w);
}

/* Ack (already finished) or dead-letter (not runnable) leases the fetcher
 * will not hand on. */
static void settle(worker *w, queue_lease *acks, size_t na, queue_lease *dead,
                   const char **why, size_t nd)
{
    char err[512];
    if (na && queue_ack(w->fq, acks, na, err, sizeof err) < 0)
        log_warning("acking %zu already finished items: %s (they will be redelivered and "
                    "acked again)", na, err);
    if (nd && queue_dead(w->fq, dead, nd, why, err, sizeof err) < 0)
        log_warning("dead-lettering %zu items: %s", nd, err);
    queue_leases_clear(acks, na);
    queue_leases_clear(dead, nd);
    unreserve(w, (int)(na + nd));
}

static void prepare_no_store(worker *w, queue_lease *ls, int n)
{
    witem *head = NULL, *tail = NULL;
    queue_lease *dead = xcalloc((size_t)n, sizeof *dead);
    const char **why = xcalloc((size_t)n, sizeof *why);
    size_t nd = 0;
    for (int i = 0; i < n; i++) {
        witem *it = item_from_payload(w, &ls[i]);
        if (!it) {
            why[nd] = "the payload is not a job (no-store mode needs {\"task\", \"type\"})";
            dead[nd++] = ls[i];
            memset(&ls[i], 0, sizeof ls[i]);
            continue;
        }
        if (tail)
            tail->next = it;
        else
            head = it;
        tail = it;
    }
    settle(w, NULL, 0, dead, why, nd);
    push_handoff(w, head, tail);
    free(dead);
    free(why);
}

/* Start n fetched items in the store and hand the runnable ones on. */
static void prepare(worker *w, queue_lease *ls, int n)
{
    if (w->o.no_store) {
        prepare_no_store(w, ls, n);
        return;
    }
    store_start *st = xcalloc((size_t)n, sizeof *st);
    store_start_info *info = xcalloc((size_t)n, sizeof *info);
    for (int i = 0; i < n; i++)
        st[i] = (store_start){ls[i].id, w->host, getpid()};
    char err[512];
    if (store_exec_start(w->fs, st, (size_t)n, info, err, sizeof err) < 0) {
        log_error("starting %d executions in the store: %s; giving them back to the queue", n,
                  err);
        if (queue_release(w->fq, ls, (size_t)n, err, sizeof err) < 0)
            log_warning("giving back %d items: %s (their leases will expire)", n, err);
        queue_leases_clear(ls, (size_t)n);
        unreserve(w, n);
        free(st);
        free(info);
        pause_ms(w, 500);
        return;
    }
    restart_redriven(w, st, info, (size_t)n);
    char **states = read_states(w, info, (size_t)n);
    witem *head = NULL, *tail = NULL;
    queue_lease *acks = xcalloc((size_t)n, sizeof *acks), *dead = xcalloc((size_t)n, sizeof *dead);
    const char **why = xcalloc((size_t)n, sizeof *why);
    size_t na = 0, nd = 0;
    int64_t already = 0;
    for (int i = 0; i < n; i++) {
        if (info[i].rc == STORE_START_OK) {
            witem *it = item_from_start(w, &ls[i], &info[i], states[i]);
            if (tail)
                tail->next = it;
            else
                head = it;
            tail = it;
        } else if (info[i].rc == STORE_START_FINISHED && info[i].status == STORE_FAILED) {
            /* A re-drive whose reopen failed (store trouble): try again later. */
            char rerr[512];
            if (queue_release(w->fq, &ls[i], 1, rerr, sizeof rerr) < 0)
                log_warning("execution %lld: giving back a re-driven item: %s", (long long)ls[i].id,
                            rerr);
            queue_lease_clear(&ls[i]);
            unreserve(w, 1);
        } else if (info[i].rc == STORE_START_FINISHED) {
            log_info("execution %lld is already %s: acknowledged without running it",
                     (long long)ls[i].id, store_status_name(info[i].status));
            acks[na++] = ls[i];
            memset(&ls[i], 0, sizeof ls[i]);
            already++;
        } else {
            log_warning("execution %lld is not in the store: dead-lettered", (long long)ls[i].id);
            why[nd] = "the execution is not in the store";
            dead[nd++] = ls[i];
            memset(&ls[i], 0, sizeof ls[i]);
        }
        free(states[i]);
        store_start_info_clear(&info[i]);
    }
    settle(w, acks, na, dead, why, nd);
    push_handoff(w, head, tail);
    if (already) {
        pthread_mutex_lock(&w->smu);
        w->st.already_finished += already;
        pthread_mutex_unlock(&w->smu);
    }
    free(states);
    free(acks);
    free(dead);
    free(why);
    free(st);
    free(info);
}

static void *fetch_main(void *arg)
{
    worker *w = arg;
    queue_lease *ls = xcalloc((size_t)w->cap, sizeof *ls);
    bool down = false;
    int64_t backoff = 0;
    while (!w->stop) {
        int space = reserve(w);
        if (space <= 0)
            break;
        char err[512];
        int n = queue_fetch(w->fq, ls, space, w->lease_ms, FETCH_BLOCK_MS, err, sizeof err);
        if (n < 0) {
            unreserve(w, space);
            if (!down)
                log_error("queue: %s; reconnecting with back-off", err);
            down = true;
            backoff = backoff ? (backoff * 2 > 2000 ? 2000 : backoff * 2) : 50;
            pause_ms(w, backoff);
            continue;
        }
        if (down)
            log_info("queue: reachable again; resuming");
        down = false;
        backoff = 0;
        unreserve(w, space - n);
        if (n > 0)
            prepare(w, ls, n);
    }
    free(ls);
    return NULL;
}

/* ------------------------------------------------- the supervisor side */

static void take_handoff(worker *w)
{
    pthread_mutex_lock(&w->mu);
    witem *h = w->hand_head, *t = w->hand_tail;
    w->hand_head = w->hand_tail = NULL;
    pthread_mutex_unlock(&w->mu);
    if (!h)
        return;
    if (w->ready_tail)
        w->ready_tail->next = h;
    else
        w->ready_head = h;
    w->ready_tail = t;
    for (witem *it = h; it; it = it->next)
        w->n_ready++;
}

static void update_gauges(worker *w)
{
    pthread_mutex_lock(&w->smu);
    w->st.active = pool_busy(w->pool);
    w->st.prefetched = w->n_ready;
    pthread_mutex_unlock(&w->smu);
}

static void submit_ready(worker *w)
{
    bool any = false;
    while (w->ready_head && pool_idle(w->pool) > 0) {
        witem *it = w->ready_head;
        w->ready_head = it->next;
        if (!w->ready_head)
            w->ready_tail = NULL;
        it->next = NULL;
        w->n_ready--;
        exec_job *job = it->job;
        it->job = NULL;
        job->user = it;
        if (pool_submit(w->pool, job) < 0) { /* cannot happen: an executor was idle */
            it->job = job;
            it->next = w->ready_head;
            w->ready_head = it;
            if (!w->ready_tail)
                w->ready_tail = it;
            w->n_ready++;
            break;
        }
        for (int i = 0; i < w->processes; i++) {
            if (!w->running[i]) {
                w->running[i] = it;
                it->slot = i;
                break;
            }
        }
        int64_t lag = wall_us() - it->lease.ready_us;
        if (w->o.on_start)
            w->o.on_start(w->o.hook_arg, it->id, lag);
        if (log_enabled(LOG_DEBUG)) {
            log_set_task(it->id, it->task, it->attempt);
            log_debug("handed to an executor, %lld us after it was ready", (long long)lag);
            log_clear_task();
        }
        any = true;
    }
    if (any)
        update_gauges(w);
}

static void record_attempt(worker *w, const exec_result *r)
{
    int b = 0;
    while (b < WORKER_HIST_BUCKETS - 1 && r->duration_ms > worker_hist_bounds_ms[b])
        b++;
    pthread_mutex_lock(&w->smu);
    if ((unsigned)r->outcome < 5)
        w->st.attempts[r->outcome]++;
    w->st.duration_hist[b]++;
    w->st.duration_sum_ms += r->duration_ms;
    pthread_mutex_unlock(&w->smu);
}

static const char *attempt_outcome(exec_outcome o)
{
    return o == EXEC_CRASHED ? "crashed" : o == EXEC_TIMEOUT ? "timeout" : NULL;
}

/* Hand an outcome to the writer thread. */
static void writer_push(worker *w, const fin *f)
{
    writer *wr = &w->wr;
    pthread_mutex_lock(&wr->mu);
    if (wr->n_in == wr->cap_in) {
        wr->cap_in = wr->cap_in ? wr->cap_in * 2 : 64;
        wr->in = xrealloc(wr->in, wr->cap_in * sizeof *wr->in);
    }
    wr->in[wr->n_in++] = *f;
    pthread_cond_signal(&wr->cv);
    pthread_mutex_unlock(&wr->mu);
}

/* Decide what an outcome means: completed, retry later, or dead. */
static void on_result(worker *w, exec_result *r)
{
    witem *it = r->job->user;
    if (it->slot >= 0)
        w->running[it->slot] = NULL;
    it->slot = -1;
    unreserve(w, 1);
    record_attempt(w, r);
    fin f = {0};
    f.stored = w->o.no_store;
    f.it = it;
    f.outcome = r->outcome;
    const char *msg = r->message ? r->message : exec_outcome_name(r->outcome);
    log_set_task(it->id, it->task, it->attempt);
    if (w->cut && r->outcome != EXEC_SUCCESS) {
        f.status = STORE_SCHEDULED;
        f.att_outcome = "cancelled";
        f.error = xstrdup("cancelled: the worker shut down; it will run again");
        f.op = Q_NACK;
        f.due_ms = wall_ms();
        log_warning("%s", f.error);
    } else if (r->outcome == EXEC_SUCCESS) {
        f.status = STORE_COMPLETED;
        if (!w->o.no_store) { /* no-store mode keeps nothing */
            f.result_json = dumps_or_null(r->result);
            f.state_json = it->plugin ? dumps_or_null(r->state) : NULL;
        }
        f.op = Q_ACK;
        log_debug("completed in %lld ms", (long long)r->duration_ms);
    } else if (exec_outcome_retryable(r->outcome) && it->attempt < it->max_attempts) {
        int64_t delay = queue_backoff_ms(&it->retry, it->attempt, &w->rng);
        f.status = STORE_SCHEDULED;
        f.att_outcome = attempt_outcome(r->outcome);
        f.error = xstrdup(msg);
        f.op = Q_NACK;
        f.due_ms = wall_ms() + delay;
        log_warning("attempt %d of %d: %s: %s; retrying in %lld ms", it->attempt,
                    it->max_attempts, exec_outcome_name(r->outcome), msg, (long long)delay);
    } else {
        f.status = STORE_FAILED;
        f.att_outcome = attempt_outcome(r->outcome);
        f.error = xasprintf("%s (attempt %d of %d)", msg, it->attempt, it->max_attempts);
        f.op = Q_DEAD;
        log_error("failed: %s", f.error);
    }
    log_clear_task();
    exec_result_free(r);
    writer_push(w, &f);
}

/* ---------------------------------------------------------- the writer */

/* Write unstored outcomes in one store statement. Returns 0 or -1. */
static int flush_store(worker *w)
{
    writer *wr = &w->wr;
    store_finish *items = xcalloc(wr->n_fin, sizeof *items);
    fin **of = xcalloc(wr->n_fin, sizeof *of);
    size_t k = 0;
    for (size_t i = 0; i < wr->n_fin; i++) {
        fin *f = &wr->fins[i];
        if (f->stored)
            continue;
        items[k] = (store_finish){.execution_id = f->it->id,
                                  .status = f->status,
                                  .outcome = f->att_outcome,
                                  .result_json = f->result_json,
                                  .error = f->error,
                                  .plugin = f->it->plugin,
                                  .state_json = f->state_json,
                                  .not_before_ms = f->due_ms};
        of[k++] = f;
    }
    int rc = 0;
    if (k) {
        store_finish_rc *frc = xcalloc(k, sizeof *frc);
        char err[512];
        rc = store_finish_batch(wr->s, items, k, frc, err, sizeof err);
        if (rc < 0) {
            log_error("writing %zu outcomes to the store: %s; will try again", k, err);
        } else {
            for (size_t j = 0; j < k; j++) {
                of[j]->stored = true;
                if (frc[j] != STORE_FINISH_OK) {
                    of[j]->op = Q_ACK; /* finished elsewhere: drop ours */
                    of[j]->dup = true;
                } else if (of[j]->status == STORE_COMPLETED && items[j].result_json &&
                           report_store_from_result_text(wr->s, items[j].execution_id,
                                                         items[j].result_json, err,
                                                         sizeof err) < 0) {
                    /* A report task's result also becomes rows of `reports`
                     * (a no-op for any other result). */
                    log_error("execution %lld: storing its report: %s",
                              (long long)items[j].execution_id, err);
                }
            }
        }
        free(frc);
    }
    free(items);
    free(of);
    return rc;
}

/* One queue call for every stored outcome of kind `op`. Returns 0 or -1. */
static int flush_queue_op(worker *w, qop op)
{
    writer *wr = &w->wr;
    queue_lease *ls = xcalloc(wr->n_fin, sizeof *ls);
    int64_t *delay = xcalloc(wr->n_fin, sizeof *delay);
    const char **why = xcalloc(wr->n_fin, sizeof *why);
    fin **of = xcalloc(wr->n_fin, sizeof *of);
    size_t k = 0;
    int64_t now = wall_ms();
    for (size_t i = 0; i < wr->n_fin; i++) {
        fin *f = &wr->fins[i];
        if (!f->stored || f->done || f->op != op)
            continue;
        ls[k] = f->it->lease;
        delay[k] = f->due_ms > now ? f->due_ms - now : 0;
        why[k] = f->error;
        of[k++] = f;
    }
    int rc = 0;
    if (k) {
        char err[512];
        rc = op == Q_ACK    ? queue_ack(wr->q, ls, k, err, sizeof err)
             : op == Q_NACK ? queue_nack(wr->q, ls, k, delay, err, sizeof err)
                            : queue_dead(wr->q, ls, k, why, err, sizeof err);
        if (rc < 0)
            log_error("queue: %s of %zu items: %s; will try again",
                      op == Q_ACK ? "ack" : op == Q_NACK ? "retry" : "dead-letter", k, err);
        for (size_t j = 0; rc >= 0 && j < k; j++)
            of[j]->done = true;
    }
    free(ls);
    free(delay);
    free(why);
    free(of);
    return rc < 0 ? -1 : 0;
}

/* Write the backlog: store first, then the queue. What fails stays for
 * the next call, after a back-off. */
static void flush(worker *w)
{
    writer *wr = &w->wr;
    if (wr->n_fin == 0)
        return;
    int rc = 0;
    if (!w->o.no_store)
        rc = flush_store(w);
    if (rc == 0) {
        int a = flush_queue_op(w, Q_ACK), b = flush_queue_op(w, Q_NACK),
            c = flush_queue_op(w, Q_DEAD);
        rc = a < 0 || b < 0 || c < 0 ? -1 : 0;
    }
    size_t keep = 0;
    int64_t counts[4] = {0}; /* completed, failed, retried, duplicates */
    for (size_t i = 0; i < wr->n_fin; i++) {
        fin *f = &wr->fins[i];
        if (f->done)
            counts[f->dup ? 3 : f->status == STORE_COMPLETED ? 0 : f->status == STORE_FAILED ? 1 : 2]++;
        if (f->done) {
            if (w->o.on_finish)
                w->o.on_finish(w->o.hook_arg, f->it->id, f->outcome);
            fin_clear(f);
        } else {
            wr->fins[keep++] = *f;
        }
    }
    wr->n_fin = keep;
    pthread_mutex_lock(&w->smu);
    w->st.completed += counts[0];
    w->st.failed += counts[1];
    w->st.retried += counts[2];
    w->st.duplicates += counts[3];
    pthread_mutex_unlock(&w->smu);
    if (rc < 0) {
        wr->backoff = wr->backoff ? (wr->backoff * 2 > 2000 ? 2000 : wr->backoff * 2) : 50;
        wr->retry_at = mono_ms() + wr->backoff;
    } else {
        wr->backoff = 0;
        wr->retry_at = 0;
    }
}

/* Keep the leases of a backlog that cannot be written yet alive. */
static void heartbeat_backlog(worker *w)
{
    writer *wr = &w->wr;
    wr->next_hb = mono_ms() + w->lease_ms / 3;
    if (wr->n_fin == 0)
        return;
    queue_lease *ls = xcalloc(wr->n_fin, sizeof *ls);
    for (size_t i = 0; i < wr->n_fin; i++)
        ls[i] = wr->fins[i].it->lease;
    char err[512];
    if (queue_heartbeat(wr->q, ls, wr->n_fin, w->lease_ms, NULL, err, sizeof err) < 0)
        log_warning("queue: heartbeat of %zu unwritten outcomes: %s", wr->n_fin, err);
    free(ls);
}

/* Move the inbox into the backlog (up to flush_max). Caller holds wr->mu. */
static void take_inbox(writer *wr, size_t max)
{
    size_t k = wr->n_in < max ? wr->n_in : max;
    if (k == 0)
        return; /* the arrays may still be NULL: no memcpy from NULL */
    if (wr->n_fin + k > wr->cap_fin) {
        wr->cap_fin = (wr->n_fin + k) * 2;
        wr->fins = xrealloc(wr->fins, wr->cap_fin * sizeof *wr->fins);
    }
    memcpy(wr->fins + wr->n_fin, wr->in, k * sizeof *wr->in);
    wr->n_fin += k;
    memmove(wr->in, wr->in + k, (wr->n_in - k) * sizeof *wr->in);
    wr->n_in -= k;
}

static void writer_wait(worker *w)
{
    writer *wr = &w->wr;
    int64_t wait = 1000;
    if (wr->n_fin) {
        int64_t now = mono_ms();
        int64_t a = wr->retry_at - now, b = wr->next_hb - now;
        wait = a < b ? a : b;
    }
    if (wait <= 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += wait / 1000;
    ts.tv_nsec += (wait % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&wr->cv, &wr->mu, &ts);
}

/* The writer thread: group commit. While one batch is being written the
 * next accumulates, so batches grow with the load. */
static void *write_main(void *arg)
{
    worker *w = arg;
    writer *wr = &w->wr;
    wr->next_hb = mono_ms() + w->lease_ms / 3;
    for (;;) {
        pthread_mutex_lock(&wr->mu);
        while (wr->n_in == 0 && !wr->stop &&
               !(wr->n_fin && (mono_ms() >= wr->retry_at || mono_ms() >= wr->next_hb)))
            writer_wait(w);
        take_inbox(wr, (size_t)w->o.flush_max);
        bool stop = wr->stop && wr->n_in == 0;
        pthread_mutex_unlock(&wr->mu);
        if (wr->n_fin && mono_ms() >= wr->retry_at)
            flush(w);
        if (wr->n_fin && mono_ms() >= wr->next_hb)
            heartbeat_backlog(w);
        if (stop)
            break;
    }
    for (int tries = 0; wr->n_fin && tries < 20; tries++) {
        nap_ms(wr->backoff);
        flush(w); /* store or queue down at shutdown: a few more tries */
    }
    if (wr->n_fin)
        log_error("shutdown: %zu outcomes could not be written; their items will be "
                  "redelivered when their leases expire", wr->n_fin);
    return NULL;
}

/* ------------------------------------------------ the supervisor loop */

/* Extend the lease of every item ready or running. */
static void heartbeat(worker *w)
{
    size_t cap = (size_t)w->n_ready + (size_t)w->processes;
    queue_lease *ls = xcalloc(cap ? cap : 1, sizeof *ls);
    witem **its = xcalloc(cap ? cap : 1, sizeof *its);
    size_t k = 0;
    for (witem *it = w->ready_head; it; it = it->next)
        its[k++] = it;
    for (int i = 0; i < w->processes; i++)
        if (w->running[i])
            its[k++] = w->running[i];
    for (size_t i = 0; i < k; i++)
        ls[i] = its[i]->lease;
    bool *held = xcalloc(k ? k : 1, sizeof *held);
    char err[512];
    int rc = k ? queue_heartbeat(w->mq, ls, k, w->lease_ms, held, err, sizeof err) : 0;
    if (rc < 0)
        log_warning("queue: heartbeat of %zu leases: %s", k, err);
    for (size_t i = 0; rc >= 0 && i < k; i++)
        if (!held[i])
            log_warning("execution %lld: lease lost (reclaimed by the queue); a second run's "
                        "outcome is dropped by the store", (long long)its[i]->id);
    free(held);
    free(ls);
    free(its);
    w->next_hb = mono_ms() + w->lease_ms / 3;
    pthread_mutex_lock(&w->smu);
    w->st.queue_connected = queue_connected(w->mq);
    pthread_mutex_unlock(&w->smu);
}

static void collect(worker *w, int64_t timeout)
{
    exec_result *r = NULL;
    int rc = pool_wait(w->pool, &r, timeout);
    while (rc == 1) {
        on_result(w, r);
        submit_ready(w); /* keep the executors busy first */
        rc = pool_wait(w->pool, &r, 0);
    }
    update_gauges(w);
}

/* Shutdown: give back the prefetched items (queue and store). */
static void give_back_ready(worker *w)
{
    take_handoff(w);
    size_t n = (size_t)w->n_ready, k = 0;
    if (n == 0)
        return;
    queue_lease *ls = xcalloc(n, sizeof *ls);
    int64_t *ids = xcalloc(n, sizeof *ids);
    for (witem *it = w->ready_head; it; it = it->next, k++) {
        ls[k] = it->lease;
        ids[k] = it->id;
    }
    char err[512];
    if (queue_release(w->mq, ls, n, err, sizeof err) < 0)
        log_error("giving back %zu prefetched items: %s (their leases will expire)", n, err);
    if (!w->o.no_store && store_exec_unstart(w->ms, ids, n, err, sizeof err) < 0 &&
        store_exec_unstart(w->ms, ids, n, err, sizeof err) < 0) /* the store reconnects */
        log_error("marking %zu prefetched executions queued again: %s", n, err);
    log_info("shutdown: gave back %zu prefetched items to the queue", n);
    while (w->ready_head) {
        witem *it = w->ready_head;
        w->ready_head = it->next;
        item_free(it);
    }
    w->ready_tail = NULL;
    w->n_ready = 0;
    free(ls);
    free(ids);
}

static void shutdown_run(worker *w)
{
    pthread_mutex_lock(&w->mu);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->fetcher, NULL);
    pool_set_wake_fd(w->pool, -1); /* nothing new arrives: wait for executors only */
    give_back_ready(w);
    int64_t end = mono_ms() + w->cfg->workers.shutdown_grace_ms;
    if (pool_busy(w->pool))
        log_info("shutdown: waiting up to %lld ms for %d running tasks",
                 (long long)w->cfg->workers.shutdown_grace_ms, pool_busy(w->pool));
    while (pool_busy(w->pool) && mono_ms() < end)
        collect(w, end - mono_ms());
    if (pool_busy(w->pool)) {
        w->cut = true;
        log_warning("shutdown: grace period over; cancelling %d tasks", pool_busy(w->pool));
        pool_cancel_all(w->pool);
        int64_t kill_end = mono_ms() + w->cfg->workers.kill_grace_ms + 1000;
        while (pool_busy(w->pool) && mono_ms() < kill_end)
            collect(w, kill_end - mono_ms());
    }
    pthread_mutex_lock(&w->wr.mu);
    w->wr.stop = true;
    pthread_cond_signal(&w->wr.cv);
    pthread_mutex_unlock(&w->wr.mu);
    pthread_join(w->wr.th, NULL);
    w->wr.started = false;
}

int worker_run(worker *w, char *err, size_t errlen)
{
    if (pthread_create(&w->wr.th, NULL, write_main, w) != 0)
        return set_err(err, errlen, "worker: cannot start the writer thread: %s",
                       strerror(errno));
    w->wr.started = true;
    if (pthread_create(&w->fetcher, NULL, fetch_main, w) != 0) {
        set_err(err, errlen, "worker: cannot start the fetcher thread: %s", strerror(errno));
        w->stop = 1;
        pthread_mutex_lock(&w->wr.mu);
        w->wr.stop = true;
        pthread_cond_signal(&w->wr.cv);
        pthread_mutex_unlock(&w->wr.mu);
        pthread_join(w->wr.th, NULL);
        return -1;
    }
    w->next_hb = mono_ms() + w->lease_ms / 3;
    while (!w->stop) {
        take_handoff(w);
        submit_ready(w);
        int64_t t = w->next_hb - mono_ms();
        collect(w, t > 0 ? t : 0);
        drain_wake(w);
        if (mono_ms() >= w->next_hb)
            heartbeat(w);
    }
    shutdown_run(w);
    log_info("worker stopped");
    return 0;
}

void worker_stop(worker *w)
{
    if (!w)
        return;
    w->stop = 1;
    wake(w);
}

void worker_stats_get(worker *w, worker_stats *out)
{
    pthread_mutex_lock(&w->smu);
    *out = w->st;
    pthread_mutex_unlock(&w->smu);
}

int worker_executor_pids(worker *w, pid_t *pids, int n)
{
    return pool_pids(w->pool, pids, n);
}

/* ------------------------------------------------------------ opening */

static queue *open_queue(const pgr_config *cfg, char *err, size_t errlen)
{
    /* Redis may be down when the worker starts: keep trying (the fetch
     * loop does the same later). */
    int64_t backoff = 50;
    for (int i = 0;; i++) {
        queue *q = queue_open(cfg->queue.url, cfg->queue.prefix, err, errlen);
        if (q || !cfg->queue.url || i >= 40)
            return q;
        if (i == 0)
            log_error("%s; retrying with back-off", err);
        nap_ms(backoff);
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }
}

static void apply_defaults(worker *w, const worker_opts *opts)
{
    if (opts)
        w->o = *opts;
    w->processes = w->o.processes > 0 ? w->o.processes : w->cfg->workers.processes;
    if (w->processes <= 0)
        w->processes = 1;
    w->prefetch = w->o.prefetch >= 0 && opts ? w->o.prefetch : w->cfg->workers.prefetch;
    if (w->prefetch < 0)
        w->prefetch = 0;
    w->cap = w->processes + w->prefetch;
    w->lease_ms = w->o.lease_ms > 0 ? w->o.lease_ms : WORKER_DEFAULT_LEASE_MS;
    if (w->o.flush_max <= 0)
        w->o.flush_max = 512;
    if (w->o.host)
        snprintf(w->host, sizeof w->host, "%s", w->o.host);
    else if (gethostname(w->host, sizeof w->host) != 0)
        snprintf(w->host, sizeof w->host, "unknown");
    w->host[sizeof w->host - 1] = '\0';
    w->o.host = NULL;
}

static int open_backends(worker *w, char *err, size_t errlen)
{
    if (w->o.queue) {
        if (queue_get_kind(w->o.queue) != QUEUE_MEMORY)
            return set_err(err, errlen, "worker: a borrowed queue must be an in-process one");
        w->mq = w->fq = w->wr.q = w->o.queue;
    } else {
        w->mq = open_queue(w->cfg, err, errlen);
        if (!w->mq)
            return -1;
        w->own_mq = true;
        if (queue_get_kind(w->mq) == QUEUE_MEMORY) {
            w->fq = w->wr.q = w->mq;
        } else {
            /* One connection per thread: fetcher, writer, supervisor. */
            w->fq = open_queue(w->cfg, err, errlen);
            if (!w->fq)
                return -1;
            w->own_fq = true;
            w->wr.q = open_queue(w->cfg, err, errlen);
            if (!w->wr.q)
                return -1;
            w->wr.own_q = true;
        }
    }
    if (w->o.no_store)
        return 0;
    if (!w->cfg->store.url)
        return set_err(err, errlen, "worker: store.url is not set in the configuration; the "
                                    "worker needs the store (the queue carries only execution "
                                    "ids)");
    w->ms = store_open_config(w->cfg, err, errlen);
    w->fs = w->ms ? store_open(w->cfg->store.url, err, errlen) : NULL;
    w->wr.s = w->fs ? store_open(w->cfg->store.url, err, errlen) : NULL;
    return w->wr.s ? 0 : -1;
}

worker *worker_new(const pgr_config *cfg, const plugin_registry *reg, const worker_opts *opts,
                   char *err, size_t errlen)
{
    worker *w = xcalloc(1, sizeof *w);
    w->cfg = cfg;
    w->reg = reg;
    w->efd = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_mutex_init(&w->smu, NULL);
    pthread_mutex_init(&w->wr.mu, NULL);
    pthread_cond_init(&w->wr.cv, NULL);
    apply_defaults(w, opts);
    w->rng = (uint64_t)wall_us() ^ ((uint64_t)getpid() << 32);
    w->running = xcalloc((size_t)w->processes, sizeof *w->running);
    /* Executors first: they should not inherit the queue and store sockets. */
    w->pool = pool_new(cfg, reg, w->processes, err, errlen);
    if (!w->pool || open_backends(w, err, errlen) < 0) {
        worker_free(w);
        return NULL;
    }
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        set_err(err, errlen, "worker: eventfd: %s", strerror(errno));
        worker_free(w);
        return NULL;
    }
    pool_set_wake_fd(w->pool, w->efd);
    w->st.processes = w->processes;
    w->st.queue_connected = queue_connected(w->mq);
    return w;
}

void worker_free(worker *w)
{
    if (!w)
        return;
    if (w->pool)
        pool_free(w->pool, 0);
    for (size_t i = 0; i < w->wr.n_fin; i++)
        fin_clear(&w->wr.fins[i]);
    for (size_t i = 0; i < w->wr.n_in; i++)
        fin_clear(&w->wr.in[i]);
    free(w->wr.fins);
    free(w->wr.in);
    while (w->hand_head) {
        witem *it = w->hand_head;
        w->hand_head = it->next;
        item_free(it);
    }
    if (w->wr.own_q)
        queue_close(w->wr.q);
    store_close(w->wr.s);
    pthread_mutex_destroy(&w->wr.mu);
    pthread_cond_destroy(&w->wr.cv);
    while (w->ready_head) {
        witem *it = w->ready_head;
        w->ready_head = it->next;
        item_free(it);
    }
    free(w->running);
    free(w->pol);
    if (w->own_fq)
        queue_close(w->fq);
    if (w->own_mq)
        queue_close(w->mq);
    store_close(w->fs);
    store_close(w->ms);
    if (w->efd >= 0)
        close(w->efd);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->smu);
    free(w);
}
