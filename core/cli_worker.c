/*
 * cli_worker.c - `pgreviewer worker`: the worker role alone (DESIGN.md
 * section 6). Loads the configuration and the plugins, starts the
 * supervisor (worker.h) with its executors, and runs until SIGTERM or
 * SIGINT, then shuts down gracefully and exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "runtime.h"
#include "worker.h"

static const char worker_usage[] =
    "usage: pgreviewer worker [--processes N] [--prefetch N] [--lease DURATION] [--no-store]";

static worker *running_worker;

static void on_stop(int sig)
{
    (void)sig;
    worker_stop(running_worker);
}

static int usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "pgreviewer worker: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s\n", worker_usage);
    return EXIT_USAGE;
}

/* A positive integer option value. Returns 0 or -1. */
static int parse_count(const char *s, int *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 10000)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, worker_opts *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--processes") && has) {
            if (parse_count(argv[++i], &o->processes) < 0 || o->processes < 1)
                return usage("--processes: \"%s\" is not a number of executors (1 to 10000)",
                             argv[i]);
        } else if (!strcmp(a, "--prefetch") && has) {
            if (parse_count(argv[++i], &o->prefetch) < 0)
                return usage("--prefetch: \"%s\" is not a count (0 to 10000)", argv[i]);
        } else if (!strcmp(a, "--lease") && has) {
            if (parse_duration_ms(argv[++i], &o->lease_ms) < 0 || o->lease_ms < 100)
                return usage("--lease: \"%s\" is not a duration of at least 100ms (e.g. 30s)",
                             argv[i]);
        } else if (!strcmp(a, "--no-store")) {
            o->no_store = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            puts(worker_usage);
            return EXIT_OK + 100;
        } else {
            return usage("unexpected argument \"%s\"", a);
        }
    }
    return EXIT_OK;
}

int cmd_worker(const char *config_path, int argc, char **argv)
{
    worker_opts o = {0};
    o.prefetch = -1;
    int rc = parse_args(argc, argv, &o);
    if (rc != EXIT_OK)
        return rc == EXIT_OK + 100 ? EXIT_OK : rc;
    strbuf errs = {0};
    runtime *rt = runtime_open(config_path, RT_CONFIG_REQUIRED, &errs);
    if (!rt) {
        fputs(errs.buf ? errs.buf : "configuration is invalid\n", stderr);
        sb_free(&errs);
        return EXIT_FAIL;
    }
    log_configure(rt->cfg->logging.level, rt->cfg->logging.format);
    log_set_component("worker");
    char err[512];
    worker *w = worker_new(rt->cfg, rt->plugins, &o, err, sizeof err);
    if (!w) {
        cli_error("worker: %s", err);
        runtime_free(rt);
        return EXIT_FAIL;
    }
    running_worker = w;
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* Reloading the configuration is not done by the worker yet: a SIGHUP
     * (a service manager's reload) must not kill it. */
    signal(SIGHUP, SIG_IGN);
    worker_stats st;
    worker_stats_get(w, &st);
    char shown[512];
    log_info("worker started: %d executors, queue %s%s", st.processes,
             rt->cfg->queue.url ? queue_url_redact(rt->cfg->queue.url, shown, sizeof shown)
                                : "in-process",
             o.no_store ? ", no store (bench mode)" : "");
    if (!rt->cfg->queue.url)
        log_warning("queue.url is not set: this worker consumes an in-process queue that only "
                    "`pgreviewer run` in the same process feeds; set queue.url to share a Redis");
    rc = worker_run(w, err, sizeof err) == 0 ? EXIT_OK : EXIT_FAIL;
    if (rc != EXIT_OK)
        cli_error("worker: %s", err);
    worker_stats_get(w, &st);
    log_info("worker: %lld completed, %lld failed, %lld retried, %lld acknowledged as already "
             "finished", (long long)st.completed, (long long)st.failed, (long long)st.retried,
             (long long)st.already_finished);
    running_worker = NULL;
    worker_free(w);
    runtime_free(rt);
    return rc;
}
