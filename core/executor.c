/*
 * executor.c - see executor.h.
 *
 * Wire format between the pool and an executor: frames of a 4-byte
 * big-endian length followed by that many bytes of JSON.
 *   parent -> executor: {"execution_id", "task", "type", "connection",
 *                        "params", "state", "timeout_ms", "attempt"}
 *   executor -> parent: {"kind": "progress", "fraction", "note"} (any number)
 *                       {"kind": "done", "outcome", "message", "result",
 *                        "state", "duration_ms"} (exactly one per job)
 * We fork without exec: the executor inherits the loaded plugins and the
 * parsed configuration, and nothing secret travels in argv or the
 * environment of a new program.
 */
#include "executor.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "credentials.h"
#include "log.h"
#include "util.h"
#include "vault.h"

#define MAX_FRAME (512u * 1024 * 1024)

/* ---------------------------------------------------------------- jobs */

bool exec_outcome_retryable(exec_outcome o)
{
    return o == EXEC_RETRY || o == EXEC_CRASHED || o == EXEC_TIMEOUT;
}

const char *exec_outcome_name(exec_outcome o)
{
    static const char *const names[] = {"success", "retry", "fail", "crashed", "timeout"};
    return (unsigned)o < 5 ? names[o] : "unknown";
}

exec_job *exec_job_new(int64_t execution_id, const char *task_name, const char *task_type,
                       const char *connection_id, json_t *params, json_t *state,
                       int64_t timeout_ms, int attempt)
{
    exec_job *j = xcalloc(1, sizeof *j);
    j->execution_id = execution_id;
    j->task_name = xstrdup(task_name);
    j->task_type = xstrdup(task_type);
    j->connection_id = xstrdup(connection_id);
    j->params = params ? params : json_object();
    j->state = state;
    /* Deadlines are computed as now + timeout: keep that far from overflow
     * (a timeout beyond a year is no timeout worth enforcing exactly). */
    j->timeout_ms = timeout_ms > 0 && timeout_ms < 366LL * 86400 * 1000 ? timeout_ms
                    : timeout_ms > 0                                    ? 366LL * 86400 * 1000
                                                                        : 0;
    j->attempt = attempt > 0 ? attempt : 1;
    return j;
}

void exec_job_free(exec_job *j)
{
    if (!j)
        return;
    free(j->task_name);
    free(j->task_type);
    free(j->connection_id);
    json_decref(j->params);
    json_decref(j->state);
    free(j);
}

void exec_result_free(exec_result *r)
{
    if (!r)
        return;
    exec_job_free(r->job);
    free(r->message);
    json_decref(r->result);
    json_decref(r->state);
    free(r);
}

/* -------------------------------------------------------------- frames */

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Send `o` as one frame. Returns 0 or -1 (peer gone). */
static int send_frame(int fd, const json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | PGR_JSON_REAL);
    if (!s)
        return -1;
    size_t len = strlen(s);
    /* Header and body in one write: the peer wakes up once per frame. */
    unsigned char *buf = xmalloc(len + 4);
    buf[0] = (unsigned char)(len >> 24);
    buf[1] = (unsigned char)(len >> 16);
    buf[2] = (unsigned char)(len >> 8);
    buf[3] = (unsigned char)len;
    memcpy(buf + 4, s, len);
    int rc = write_all(fd, buf, len + 4);
    free(buf);
    free(s);
    return rc;
}

/* Receive one frame. Returns a new JSON value, or NULL on EOF or garbage. */
static json_t *recv_frame(int fd)
{
    unsigned char hdr[4];
    if (read_all(fd, hdr, 4) < 0)
        return NULL;
    uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    if (len > MAX_FRAME)
        return NULL;
    char *buf = xmalloc(len + 1);
    if (read_all(fd, buf, len) < 0) {
        free(buf);
        return NULL;
    }
    json_t *o = json_loadb(buf, len, JSON_DECODE_ANY, NULL);
    free(buf);
    return o;
}

/* ------------------------------------------------------ executor side */

struct pgr_task {
    const pgr_config *cfg;
    int fd;
    int64_t execution_id;
    const char *name, *type, *connection_id;
    int attempt;
    char *params_text;
    json_t *params;
    char **strings; /* param_json results, freed after the run */
    size_t n_strings;
    char *state_text;
    json_t *result;
    json_t *new_state;
    char *message;
    PGconn *conn;
    char *conn_error;
    bool conn_tried;
    int64_t deadline_ms; /* monotonic; 0: none */
    int64_t last_progress_ms;
};

static volatile sig_atomic_t cancel_requested;
static PGcancel *volatile cancel_handle;

static void on_sigterm(int sig)
{
    (void)sig;
    cancel_requested = 1;
    PGcancel *c = cancel_handle;
    if (c) {
        char buf[64];
        PQcancel(c, buf, sizeof buf); /* documented as safe in a signal handler */
    }
}

static void host_log(pgr_task *t, pgr_log_level level, const char *message)
{
    (void)t;
    log_msg((log_level)(level <= PGR_LOG_ERROR ? level : PGR_LOG_ERROR), "%s",
            message ? message : "");
}

static const char *host_params_json(pgr_task *t)
{
    return t->params_text;
}

/* Parse `json` into *slot, replacing what was there. -1 (slot unchanged)
 * when it is not valid JSON. */
static int replace_json(json_t **slot, const char *json)
{
    json_t *v = json ? json_loads(json, JSON_DECODE_ANY, NULL) : NULL;
    if (!v)
        return -1;
    json_decref(*slot);
    *slot = v;
    return 0;
}

static int host_set_result(pgr_task *t, const char *json)
{
    return replace_json(&t->result, json);
}

static void host_set_message(pgr_task *t, const char *message)
{
    free(t->message);
    t->message = xstrdup(message);
}

static void host_progress(pgr_task *t, double fraction, const char *note)
{
    int64_t now = mono_ms();
    if (now - t->last_progress_ms < 1000)
        return;
    t->last_progress_ms = now;
    json_t *o = json_pack("{s:s, s:f, s:s?}", "kind", "progress", "fraction", fraction, "note",
                          note);
    send_frame(t->fd, o);
    json_decref(o);
}

static int host_cancelled(pgr_task *t)
{
    (void)t;
    return cancel_requested != 0;
}

static int64_t host_remaining_ms(pgr_task *t)
{
    if (!t->deadline_ms)
        return -1;
    int64_t left = t->deadline_ms - mono_ms();
    return left > 0 ? left : 0;
}

/* One Vault client per executor process, made on first use and kept for
 * the life of the executor so that its token and secret cache serve every
 * task it runs (vault.h: a client belongs to one process). */
static vault_client *executor_vault;

/* Open a configured connection with the credentials module: Vault, a
 * password file, or libpq's environment, with application_name, a connect
 * timeout and the task's statement_timeout. */
static PGconn *connect_configured(pgr_task *t, const cfg_connection *c)
{
    char err[1024];
    if (c->credentials == CRED_VAULT && !executor_vault && t->cfg->vault.enabled) {
        executor_vault = vault_new(&t->cfg->vault, err, sizeof err);
        if (!executor_vault) {
            t->conn_error = xasprintf("connection %s: %s", c->id, err);
            return NULL;
        }
    }
    cred_opts opts = {.task_name = t->name,
                      .statement_timeout_ms = t->deadline_ms ? host_remaining_ms(t) : 0};
    PGconn *conn = credentials_connect(c, executor_vault, &opts, NULL, err, sizeof err);
    if (!conn)
        t->conn_error = xstrdup(err);
    return conn;
}

/* The reserved connection "store": the analytics store, read-only. */
static PGconn *connect_store(pgr_task *t)
{
    if (!t->cfg->store.url) {
        t->conn_error = xstrdup("connection store: no store is configured (set store.url)");
        return NULL;
    }
    /* Read-only twice over: every transaction of the session defaults to
     * read only (so a plugin's COMMIT cannot get out of it), and the one we
     * open is. A connect timeout and the task's statement timeout keep a
     * store that is down from holding the task until its kill. */
    char *appname = xasprintf("pgreviewer/%s", t->name ? t->name : "task");
    char *options = t->deadline_ms ? xasprintf("-c default_transaction_read_only=on "
                                               "-c statement_timeout=%lld",
                                               (long long)host_remaining_ms(t))
                                   : xstrdup("-c default_transaction_read_only=on");
    const char *kw[] = {"dbname", "connect_timeout", "application_name", "options", NULL};
    const char *val[] = {t->cfg->store.url, "10", appname, options, NULL};
    PGconn *conn = PQconnectdbParams(kw, val, 1);
    free(appname);
    free(options);
    if (PQstatus(conn) != CONNECTION_OK) {
        char *msg = xstrdup(PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        t->conn_error = xasprintf("connection store: %s", msg);
        free(msg);
        PQfinish(conn);
        return NULL;
    }
    PGresult *r = PQexec(conn, "BEGIN READ ONLY");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) { /* never hand out the store outside a read-only transaction */
        char *msg = xstrdup(PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        t->conn_error = xasprintf("connection store: cannot start a read-only transaction: %s",
                                  msg);
        free(msg);
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

static struct pg_conn *host_connection(pgr_task *t, const char **error)
{
    if (!t->conn_tried) {
        t->conn_tried = true;
        if (!t->connection_id) {
            t->conn_error = xasprintf("task %s has no connection", t->name);
        } else if (strcmp(t->connection_id, "store") == 0) {
            t->conn = connect_store(t);
        } else {
            const cfg_connection *c = config_find_connection(t->cfg, t->connection_id);
            if (!c)
                t->conn_error = xasprintf("connection %s is not configured", t->connection_id);
            else
                t->conn = connect_configured(t, c);
        }
        if (t->conn)
            cancel_handle = PQgetCancel(t->conn);
    }
    if (!t->conn && error)
        *error = t->conn_error;
    return t->conn;
}

static const char *host_state_get(pgr_task *t)
{
    return t->state_text;
}

static int host_state_set(pgr_task *t, const char *json)
{
    return replace_json(&t->new_state, json);
}

static const char *host_task_name(pgr_task *t)
{
    return t->name;
}
static const char *host_task_type(pgr_task *t)
{
    return t->type;
}
static const char *host_connection_id(pgr_task *t)
{
    return t->connection_id;
}
static int64_t host_execution_id(pgr_task *t)
{
    return t->execution_id;
}
static int host_attempt(pgr_task *t)
{
    return t->attempt;
}

static const char *host_param_string(pgr_task *t, const char *key)
{
    return json_string_value(json_object_get(t->params, key));
}

static int host_param_int(pgr_task *t, const char *key, int64_t *out)
{
    json_t *v = json_object_get(t->params, key);
    if (!json_is_integer(v))
        return -1;
    *out = json_integer_value(v);
    return 0;
}

static int host_param_number(pgr_task *t, const char *key, double *out)
{
    json_t *v = json_object_get(t->params, key);
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 0;
}

static int host_param_bool(pgr_task *t, const char *key, int *out)
{
    json_t *v = json_object_get(t->params, key);
    if (!json_is_boolean(v))
        return -1;
    *out = json_is_true(v);
    return 0;
}

static const char *host_param_json(pgr_task *t, const char *key)
{
    json_t *v = json_object_get(t->params, key);
    if (!v)
        return NULL;
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    t->strings = xrealloc(t->strings, (t->n_strings + 1) * sizeof *t->strings);
    t->strings[t->n_strings++] = s;
    return s;
}

static const pgr_host host_table = {
    .head = {PGR_HOST_MAGIC, PGR_ABI_MAJOR, PGR_ABI_MINOR, (uint32_t)sizeof(pgr_host),
             (uint16_t)sizeof(void *), 0},
    .log = host_log,
    .params_json = host_params_json,
    .set_result = host_set_result,
    .set_message = host_set_message,
    .progress = host_progress,
    .cancelled = host_cancelled,
    .remaining_ms = host_remaining_ms,
    .connection = host_connection,
    .state_get = host_state_get,
    .state_set = host_state_set,
    .task_name = host_task_name,
    .task_type = host_task_type,
    .connection_id = host_connection_id,
    .execution_id = host_execution_id,
    .attempt = host_attempt,
    .param_string = host_param_string,
    .param_int = host_param_int,
    .param_number = host_param_number,
    .param_bool = host_param_bool,
    .param_json = host_param_json,
};

/* Per executor: each plugin's init state. */
typedef struct plugin_slot {
    bool inited;
    bool ok;
    void *data;
    char err[512];
} plugin_slot;

static const plugin_slot *ensure_init(const pgr_config *cfg, const plugin_registry *reg,
                                      plugin_slot *slots, const loaded_plugin *p)
{
    plugin_slot *s = &slots[p - reg->plugins];
    if (s->inited)
        return s;
    s->inited = true;
    s->ok = true;
    if (!p->desc->init)
        return s;
    json_t *pc = cfg->plugins.config ? json_object_get(cfg->plugins.config, p->name) : NULL;
    char *conf = pc ? json_dumps(pc, JSON_COMPACT) : xstrdup("{}");
    if (p->desc->init(&host_table, conf, &s->data, s->err, sizeof s->err) != 0) {
        s->ok = false;
        s->err[sizeof s->err - 1] = '\0';
        if (!s->err[0])
            snprintf(s->err, sizeof s->err, "init failed");
    }
    free(conf);
    return s;
}

static void task_clear(pgr_task *t)
{
    free(t->params_text);
    for (size_t i = 0; i < t->n_strings; i++)
        free(t->strings[i]);
    free(t->strings);
    free(t->state_text);
    json_decref(t->result);
    json_decref(t->new_state);
    free(t->message);
    if (cancel_handle) {
        PGcancel *c = cancel_handle;
        cancel_handle = NULL;
        PQfreeCancel(c);
    }
    if (t->conn)
        PQfinish(t->conn);
    free(t->conn_error);
    memset(t, 0, sizeof *t);
}

/* Run one job frame; returns the "done" frame. */
static json_t *run_job(const pgr_config *cfg, const plugin_registry *reg, plugin_slot *slots,
                       int fd, json_t *job)
{
    pgr_task t = {0};
    t.cfg = cfg;
    t.fd = fd;
    t.execution_id = json_integer_value(json_object_get(job, "execution_id"));
    t.name = json_string_value(json_object_get(job, "task"));
    t.type = json_string_value(json_object_get(job, "type"));
    t.connection_id = json_string_value(json_object_get(job, "connection"));
    t.attempt = (int)json_integer_value(json_object_get(job, "attempt"));
    json_t *params = json_object_get(job, "params");
    t.params = json_is_object(params) ? params : NULL;
    t.params_text = t.params ? json_dumps(t.params, JSON_COMPACT) : xstrdup("{}");
    json_t *state = json_object_get(job, "state");
    t.state_text = state && !json_is_null(state) ? json_dumps(state, JSON_COMPACT | JSON_ENCODE_ANY)
                                                 : NULL;
    int64_t timeout = json_integer_value(json_object_get(job, "timeout_ms"));
    int64_t start = mono_ms();
    t.deadline_ms = timeout > 0 ? start + timeout : 0;
    cancel_requested = 0;
    log_set_task(t.execution_id, t.name ? t.name : "?", t.attempt);

    pgr_outcome outcome = PGR_FAIL;
    const loaded_plugin *p = t.type ? loader_find_type(reg, t.type) : NULL;
    if (!p) {
        t.message = xasprintf("no plugin runs task type \"%s\"", t.type ? t.type : "");
    } else {
        const plugin_slot *s = ensure_init(cfg, reg, slots, p);
        if (!s->ok)
            t.message = xasprintf("plugin %s failed to initialise: %s", p->name, s->err);
        else
            outcome = p->desc->run(&host_table, &t, s->data);
    }
    if (outcome != PGR_SUCCESS && outcome != PGR_RETRY && outcome != PGR_FAIL) {
        free(t.message);
        t.message = xasprintf("plugin returned an unknown outcome %d", (int)outcome);
        outcome = PGR_FAIL;
    }
    t.message = utf8_fix(t.message);
    static const char *const names[] = {"success", "retry", "fail"};
    json_t *done = json_pack("{s:s, s:s, s:s?, s:I}", "kind", "done", "outcome", names[outcome],
                             "message", t.message, "duration_ms", (json_int_t)(mono_ms() - start));
    if (t.result)
        json_object_set(done, "result", t.result);
    if (t.new_state && outcome == PGR_SUCCESS)
        json_object_set(done, "state", t.new_state);
    log_clear_task();
    task_clear(&t);
    return done;
}

static long rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

/* The process that owns the pool (the supervisor); set by pool_new and
 * inherited by the fork server and the executors. */
static pid_t pool_owner;

static void executor_main(int fd, const pgr_config *cfg, const plugin_registry *reg)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGINT, SIG_IGN); /* a Ctrl-C reaches the supervisor, which decides */
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    /* The mask is inherited: the daemon forks its first executors while it
     * blocks the stop signals for its threads, and a blocked SIGTERM would
     * turn every timeout into a SIGKILL after the grace period. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Started by the fork server, our first parent is a short-lived
     * intermediate: wait until we are the supervisor's (it is a child
     * subreaper), then die with it. */
    for (int i = 0; i < 5000 && getppid() != pool_owner; i++) {
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the supervisor */
    if (getppid() != pool_owner)
        _exit(1);
    log_set_component("executor");
    plugin_slot *slots = xcalloc(reg->n_plugins ? reg->n_plugins : 1, sizeof *slots);
    int max_tasks = cfg->workers.max_tasks_per_process;
    for (int done_tasks = 0; max_tasks <= 0 || done_tasks < max_tasks; done_tasks++) {
        json_t *job = recv_frame(fd);
        if (!job)
            break; /* the pool closed our socket: exit */
        json_t *done = run_job(cfg, reg, slots, fd, job);
        json_decref(job);
        /* Recycling is announced in the last result, so the pool never
         * hands a job to an executor that is about to exit. */
        bool last = (max_tasks > 0 && done_tasks + 1 >= max_tasks) ||
                    (cfg->workers.max_memory_per_process > 0 &&
                     rss_bytes() > cfg->workers.max_memory_per_process);
        if (last)
            json_object_set_new(done, "retire", json_true());
        int rc = send_frame(fd, done);
        json_decref(done);
        if (rc < 0 || last)
            break; /* recycle: the pool starts a fresh executor */
    }
    for (size_t i = 0; i < reg->n_plugins; i++)
        if (slots[i].inited && slots[i].ok && reg->plugins[i].desc->fini)
            reg->plugins[i].desc->fini(slots[i].data);
    free(slots);
    _exit(0);
}

/* ---------------------------------------------------------- pool side */

typedef struct executor {
    pid_t pid;
    int fd;
    exec_job *job;        /* running job, or NULL when idle */
    int64_t started_mono; /* ms */
    int64_t started_wall; /* ms */
    int64_t deadline;     /* monotonic ms; 0: none */
    int64_t kill_at;      /* monotonic ms when SIGKILL is due; 0: not yet signalled */
    bool timed_out;
} executor;

struct exec_pool {
    const pgr_config *cfg;
    const plugin_registry *reg;
    executor *ex;
    int n;
    int wake_fd; /* -1, or a descriptor whose readability ends pool_wait() */
    int forker_fd;    /* the fork server's control socket, or -1: fork directly */
    pid_t forker_pid;
    bool subreaper;   /* this pool holds a subreaper_refs reference */
};

/* Keep stdio and `keep` only: an executor must not hold the supervisor's
 * store, queue, leader or API descriptors, nor other executors' sockets. */
static void close_all_but(int keep)
{
    unsigned self = (unsigned)keep;
    if (self > 3)
        close_range(3, self - 1, 0);
    close_range(self >= 3 ? self + 1 : 3, ~0u, 0);
}

/*
 * The fork server. Executors that replace a crashed or recycled one would
 * otherwise be forked from the supervisor while its other threads run
 * (fetcher, writer, and in `run` the scheduler and the API): a lock one of
 * them holds at that instant (an allocator's, a library's) stays locked
 * forever in the child, which then hangs. The fork server is forked once,
 * from pool_new, before any of those threads exists, and stays
 * single-threaded: every executor is forked by it.
 *
 * Per request (one byte on a SOCK_SEQPACKET socketpair) it makes the
 * executor's socketpair and forks an intermediate, which forks the executor
 * and exits at once. The supervisor is a child subreaper, so the executor
 * is reparented to it: waitpid(), the crash signal and kill() work as if it
 * had forked the executor itself. The server reaps the intermediate (so the
 * reparenting is done) and only then sends back the executor's pid and
 * socket (SCM_RIGHTS).
 */
static void forker_main(int ctl, exec_pool *pool)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != pool_owner)
        _exit(0);
    close_all_but(ctl);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGINT, SIG_IGN); /* Ctrl-C and SIGHUP are the supervisor's to act on */
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* inherited from the daemon's block */
    for (;;) {
        char req;
        ssize_t n = recv(ctl, &req, 1, 0);
        if (n <= 0 && !(n < 0 && errno == EINTR))
            _exit(0); /* the pool is gone */
        if (n <= 0)
            continue;
        int sv[2], pp[2];
        pid_t ex = -1;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe(pp) < 0) {
            send(ctl, &ex, sizeof ex, 0);
            continue;
        }
        pid_t mid = fork();
        if (mid == 0) {
            pid_t child = fork();
            if (child == 0) {
                close(ctl);
                close(sv[0]);
                close(pp[0]);
                close(pp[1]);
                close_all_but(sv[1]);
                executor_main(sv[1], pool->cfg, pool->reg);
            }
            (void)!write(pp[1], &child, sizeof child);
            _exit(0);
        }
        close(pp[1]);
        if (mid < 0 || read(pp[0], &ex, sizeof ex) != (ssize_t)sizeof ex)
            ex = -1;
        close(pp[0]);
        if (mid > 0)
            while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
                ;
        close(sv[1]);
        char cbuf[CMSG_SPACE(sizeof(int))];
        memset(cbuf, 0, sizeof cbuf);
        struct iovec iov = {&ex, sizeof ex};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        if (ex > 0) {
            msg.msg_control = cbuf;
            msg.msg_controllen = sizeof cbuf;
            struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &sv[0], sizeof(int));
        }
        sendmsg(ctl, &msg, 0);
        close(sv[0]);
    }
}

/* Pools alive in this process: it is a child subreaper while any is, so
 * that orphans of a process that never runs a pool go to init as usual. */
static int subreaper_refs;

/* Start the fork server. On failure the pool forks executors directly. */
static void start_forker(exec_pool *pool)
{
    int ctl[2];
    pool->forker_fd = -1;
    if (subreaper_refs == 0 && prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        return;
    subreaper_refs++;
    pool->subreaper = true;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0)
        return;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(ctl[0]);
        forker_main(ctl[1], pool);
    }
    close(ctl[1]);
    if (pid < 0) {
        close(ctl[0]);
        return;
    }
    pool->forker_fd = ctl[0];
    pool->forker_pid = pid;
}

/* Ask the fork server for an executor. Returns 0 with *pid and *fd, or -1
 * (the server is gone: it is stopped and the caller forks directly). */
static int spawn_via_forker(exec_pool *pool, pid_t *pid, int *fd)
{
    char req = 's';
    pid_t ex = -1;
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {&ex, sizeof ex};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof cbuf};
    ssize_t n;
    if (send(pool->forker_fd, &req, 1, MSG_NOSIGNAL) != 1)
        goto gone;
    while ((n = recvmsg(pool->forker_fd, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)sizeof ex)
        goto gone;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (ex <= 0 || !c || c->cmsg_type != SCM_RIGHTS)
        return -1; /* this request failed; the server lives on */
    memcpy(fd, CMSG_DATA(c), sizeof(int));
    *pid = ex;
    return 0;
gone:
    close(pool->forker_fd);
    pool->forker_fd = -1;
    if (pool->forker_pid > 0)
        waitpid(pool->forker_pid, NULL, 0);
    pool->forker_pid = 0;
    return -1;
}

static int spawn(exec_pool *pool, int i, char *err, size_t errlen)
{
    pid_t fpid;
    int ffd;
    if (pool->forker_fd >= 0 && spawn_via_forker(pool, &fpid, &ffd) == 0) {
        executor *e = &pool->ex[i];
        memset(e, 0, sizeof *e);
        e->pid = fpid;
        e->fd = ffd;
        return 0;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return set_err(err, errlen, "socketpair: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return set_err(err, errlen, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(sv[0]);
        close_all_but(sv[1]);
        executor_main(sv[1], pool->cfg, pool->reg);
    }
    close(sv[1]);
    executor *e = &pool->ex[i];
    memset(e, 0, sizeof *e);
    e->pid = pid;
    e->fd = sv[0];
    return 0;
}

exec_pool *pool_new(const pgr_config *cfg, const plugin_registry *reg, int processes, char *err,
                    size_t errlen)
{
    signal(SIGPIPE, SIG_IGN);
    exec_pool *pool = xcalloc(1, sizeof *pool);
    pool->cfg = cfg;
    pool->reg = reg;
    pool->n = processes > 0 ? processes : 1;
    pool->wake_fd = -1;
    pool->ex = xcalloc((size_t)pool->n, sizeof *pool->ex);
    for (int i = 0; i < pool->n; i++)
        pool->ex[i].fd = -1;
    pool_owner = getpid();
    start_forker(pool);
    for (int i = 0; i < pool->n; i++) {
        if (spawn(pool, i, err, errlen) < 0) {
            pool_free(pool, 0);
            return NULL;
        }
    }
    return pool;
}

int pool_idle(const exec_pool *pool)
{
    int n = 0;
    for (int i = 0; i < pool->n; i++)
        n += pool->ex[i].fd >= 0 && !pool->ex[i].job;
    return n;
}

int pool_busy(const exec_pool *pool)
{
    int n = 0;
    for (int i = 0; i < pool->n; i++)
        n += pool->ex[i].job != NULL;
    return n;
}

int pool_pids(const exec_pool *pool, pid_t *pids, int n)
{
    int k = 0;
    for (int i = 0; i < pool->n && k < n; i++)
        if (pool->ex[i].fd >= 0)
            pids[k++] = pool->ex[i].pid;
    return k;
}

int pool_submit(exec_pool *pool, exec_job *job)
{
    for (int i = 0; i < pool->n; i++) {
        executor *e = &pool->ex[i];
        if (e->fd < 0 || e->job)
            continue;
        json_t *f = json_pack("{s:I, s:s, s:s, s:s?, s:O, s:O?, s:I, s:i}", "execution_id",
                              (json_int_t)job->execution_id, "task", job->task_name, "type",
                              job->task_type, "connection", job->connection_id, "params",
                              job->params, "state", job->state, "timeout_ms",
                              (json_int_t)job->timeout_ms, "attempt", job->attempt);
        int rc = send_frame(e->fd, f);
        json_decref(f);
        e->job = job;
        e->started_mono = mono_ms();
        e->started_wall = wall_ms();
        e->deadline = job->timeout_ms > 0 ? e->started_mono + job->timeout_ms : 0;
        e->kill_at = 0;
        e->timed_out = false;
        (void)rc; /* a dead executor is noticed by pool_wait (EOF) */
        return 0;
    }
    return -1;
}

static exec_result *new_result(executor *e, exec_outcome o)
{
    exec_result *r = xcalloc(1, sizeof *r);
    r->job = e->job;
    r->outcome = o;
    r->pid = e->pid;
    r->started_ms = e->started_wall;
    r->duration_ms = mono_ms() - e->started_mono;
    e->job = NULL;
    return r;
}

/* The executor at index i is gone (EOF): reap it, turn a running job into
 * a crash/timeout result, and start a replacement. */
static exec_result *reap(exec_pool *pool, int i)
{
    executor *e = &pool->ex[i];
    int status = 0;
    close(e->fd);
    e->fd = -1;
    while (waitpid(e->pid, &status, 0) < 0 && errno == EINTR)
        ;
    exec_result *r = NULL;
    if (e->job) {
        if (e->timed_out) {
            char d[32];
            r = new_result(e, EXEC_TIMEOUT);
            r->message = xasprintf("timed out after %s",
                                   format_duration_ms(r->job->timeout_ms, d, sizeof d));
        } else {
            r = new_result(e, EXEC_CRASHED);
            if (WIFSIGNALED(status)) {
                r->term_signal = WTERMSIG(status);
                r->message = xasprintf("executor crashed with SIG%s",
                                       sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status))
                                                                      : "?");
            } else {
                r->message = xasprintf("executor exited with status %d while running the task",
                                       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            }
        }
        log_warning("executor %d: task %s: %s", (int)e->pid, r->job->task_name, r->message);
    }
    char err[256];
    if (spawn(pool, i, err, sizeof err) < 0)
        log_error("cannot start a replacement executor: %s", err);
    return r;
}

static exec_result *parse_done(executor *e, json_t *f)
{
    const char *o = json_string_value(json_object_get(f, "outcome"));
    exec_outcome oc = EXEC_FAIL;
    if (o && strcmp(o, "success") == 0)
        oc = EXEC_SUCCESS;
    else if (o && strcmp(o, "retry") == 0)
        oc = EXEC_RETRY;
    exec_result *r = new_result(e, oc);
    r->message = xstrdup(json_string_value(json_object_get(f, "message")));
    r->result = json_incref(json_object_get(f, "result"));
    r->state = json_incref(json_object_get(f, "state"));
    return r;
}

/* The executor at index i announced it is exiting (recycling): reap it and
 * start a fresh one. */
static void retire(exec_pool *pool, int i)
{
    executor *e = &pool->ex[i];
    int status = 0;
    close(e->fd);
    e->fd = -1;
    while (waitpid(e->pid, &status, 0) < 0 && errno == EINTR)
        ;
    char err[256];
    if (spawn(pool, i, err, sizeof err) < 0)
        log_error("cannot start a replacement executor: %s", err);
}

/* Signal overrunning tasks; returns ms until the next deadline (or -1). */
static int64_t enforce_deadlines(exec_pool *pool)
{
    int64_t now = mono_ms(), next = -1;
    int64_t grace = pool->cfg->workers.kill_grace_ms > 0 ? pool->cfg->workers.kill_grace_ms : 5000;
    for (int i = 0; i < pool->n; i++) {
        executor *e = &pool->ex[i];
        if (!e->job || !e->deadline)
            continue;
        if (!e->kill_at && now >= e->deadline) {
            e->timed_out = true;
            e->kill_at = now + grace;
            kill(e->pid, SIGTERM);
        } else if (e->kill_at && now >= e->kill_at) {
            kill(e->pid, SIGKILL);
            e->kill_at = now + 3600 * 1000; /* once */
        }
        int64_t due = e->kill_at ? e->kill_at : e->deadline;
        if (next < 0 || due - now < next)
            next = due > now ? due - now : 0;
    }
    return next;
}

int pool_wait(exec_pool *pool, exec_result **out, int64_t timeout_ms)
{
    *out = NULL;
    if (pool_busy(pool) == 0 && timeout_ms < 0 && pool->wake_fd < 0)
        return -1;
    int64_t end = timeout_ms >= 0 ? mono_ms() + timeout_ms : -1;
    struct pollfd *pfd = xcalloc((size_t)pool->n + 1, sizeof *pfd);
    int rc = 0;
    for (;;) {
        int64_t wait = enforce_deadlines(pool);
        if (end >= 0) {
            int64_t left = end - mono_ms();
            if (left < 0)
                left = 0;
            if (wait < 0 || left < wait)
                wait = left;
        }
        for (int i = 0; i < pool->n; i++) {
            pfd[i].fd = pool->ex[i].fd;
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
        }
        pfd[pool->n].fd = pool->wake_fd;
        pfd[pool->n].events = POLLIN;
        pfd[pool->n].revents = 0;
        int n = poll(pfd, (nfds_t)pool->n + 1, wait > INT32_MAX ? INT32_MAX : (int)wait);
        if (n < 0) {
            if (errno == EINTR)
                break; /* let the caller look at its signal flags */
            break;
        }
        for (int i = 0; i < pool->n && !*out; i++) {
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            executor *e = &pool->ex[i];
            json_t *f = recv_frame(e->fd);
            if (!f) {
                *out = reap(pool, i);
                continue;
            }
            const char *kind = json_string_value(json_object_get(f, "kind"));
            if (kind && strcmp(kind, "done") == 0 && e->job) {
                *out = parse_done(e, f);
                if (e->timed_out) { /* it returned after SIGTERM: still a timeout */
                    char d[32];
                    (*out)->outcome = EXEC_TIMEOUT;
                    free((*out)->message);
                    (*out)->message = xasprintf(
                        "timed out after %s", format_duration_ms((*out)->job->timeout_ms, d, sizeof d));
                }
            }
            if (json_is_true(json_object_get(f, "retire")))
                retire(pool, i);
            json_decref(f);
        }
        if (*out) {
            rc = 1;
            break;
        }
        if (pfd[pool->n].revents)
            break; /* the wake descriptor: the caller has something to do */
        if (end >= 0 && mono_ms() >= end)
            break;
    }
    free(pfd);
    return rc;
}

void pool_set_wake_fd(exec_pool *pool, int fd)
{
    pool->wake_fd = fd;
}

void pool_cancel_all(exec_pool *pool)
{
    for (int i = 0; i < pool->n; i++)
        if (pool->ex[i].job && pool->ex[i].fd >= 0)
            kill(pool->ex[i].pid, SIGTERM);
}

void pool_free(exec_pool *pool, int64_t grace_ms)
{
    if (!pool)
        return;
    if (pool->forker_fd >= 0) { /* EOF on its socket: the fork server exits */
        close(pool->forker_fd);
        pool->forker_fd = -1;
        while (pool->forker_pid > 0 && waitpid(pool->forker_pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    bool was_subreaper = pool->subreaper;
    /* Closing the socket tells an idle executor to exit at once, and a busy
     * one as soon as it tries to send its result. */
    for (int i = 0; i < pool->n; i++) {
        if (pool->ex[i].fd >= 0)
            close(pool->ex[i].fd);
        pool->ex[i].fd = -1;
    }
    int64_t end = mono_ms() + (grace_ms > 0 ? grace_ms : 0);
    for (int i = 0; i < pool->n; i++) {
        executor *e = &pool->ex[i];
        if (e->pid <= 0)
            continue;
        if (!e->job)
            end = end > mono_ms() + 2000 ? end : mono_ms() + 2000; /* idle: exits at once */
        for (;;) {
            int status;
            pid_t w = waitpid(e->pid, &status, WNOHANG);
            if (w == e->pid || (w < 0 && errno != EINTR))
                break;
            if (mono_ms() >= end) {
                kill(e->pid, SIGKILL);
                waitpid(e->pid, &status, 0);
                break;
            }
            /* Waiting for a child to exit within a deadline: there is no fd
             * to poll for that without pidfd, so poll the pid briefly. */
            struct timespec d = {0, 2 * 1000000};
            nanosleep(&d, NULL);
        }
        exec_job_free(e->job);
        e->job = NULL;
    }
    /* Our executors are reaped: stop adopting orphans when no pool is left. */
    if (was_subreaper && --subreaper_refs == 0)
        prctl(PR_SET_CHILD_SUBREAPER, 0);
    free(pool->ex);
    free(pool);
}
