/*
 * example.c - the SDK's example plugin, and the plugin the test suite uses.
 *
 * Task type `example`. Its params (see example.yaml) make it:
 *   mode: succeed   return `result` (or a small default document)
 *   mode: sleep     sleep `sleep_ms`, waking to honour cancellation, then succeed
 *   mode: retry     ask for a retry with `message`
 *   mode: fail      fail permanently with `message`
 *   mode: crash     dereference NULL (SIGSEGV): only its executor dies
 *   mode: abort     call abort() (SIGABRT)
 *   mode: flaky     ask for a retry until attempt `succeed_on`, then succeed
 * It also keeps a persistent counter of its successful runs in the task's
 * state, to show incremental state: {"runs": N}.
 *
 * It includes nothing but <pgreviewer/plugin.h> and libc, and everything in
 * it is static but the one entry point, so it builds out of tree with
 * `cc -shared -fPIC $(pkg-config --cflags pgreviewer-plugin)`.
 */
#include <pgreviewer/plugin.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long previous_runs(const pgr_host *host, pgr_task *task)
{
    const char *state = host->state_get(task);
    const char *p = state ? strstr(state, "\"runs\":") : NULL;
    return p ? strtol(p + 7, NULL, 10) : 0;
}

static pgr_outcome do_sleep(const pgr_host *host, pgr_task *task, int64_t ms)
{
    while (ms > 0) {
        if (host->cancelled(task)) {
            host->set_message(task, "cancelled while sleeping");
            return PGR_RETRY;
        }
        int64_t step = ms < 10 ? ms : 10;
        struct timespec d = {(time_t)(step / 1000), (long)(step % 1000) * 1000000L};
        nanosleep(&d, NULL);
        ms -= step;
    }
    return PGR_SUCCESS;
}

static pgr_outcome example_run(const pgr_host *host, pgr_task *task, void *data)
{
    (void)data;
    const char *mode = host->param_string(task, "mode");
    const char *message = host->param_string(task, "message");
    int64_t sleep_ms = 0, succeed_on = 0;
    host->param_int(task, "sleep_ms", &sleep_ms);
    host->param_int(task, "succeed_on", &succeed_on);
    if (!mode)
        mode = "succeed";

    if (strcmp(mode, "crash") == 0) {
        volatile int *p = NULL;
        *p = 1; /* on purpose: the host must survive this */
    }
    if (strcmp(mode, "abort") == 0)
        abort();
    if (strcmp(mode, "retry") == 0 ||
        (strcmp(mode, "flaky") == 0 && host->attempt(task) < succeed_on)) {
        host->set_message(task, message ? message : "asked for a retry");
        return PGR_RETRY;
    }
    if (strcmp(mode, "fail") == 0) {
        host->set_message(task, message ? message : "failed on purpose");
        return PGR_FAIL;
    }
    if (sleep_ms > 0 && do_sleep(host, task, sleep_ms) != PGR_SUCCESS)
        return PGR_RETRY;

    long runs = previous_runs(host, task) + 1;
    char buf[256];
    snprintf(buf, sizeof buf, "{\"runs\": %ld}", runs);
    host->state_set(task, buf);
    const char *result = host->param_json(task, "result");
    if (result) {
        host->set_result(task, result);
    } else {
        snprintf(buf, sizeof buf, "{\"mode\": \"%s\", \"attempt\": %d, \"runs\": %ld}", mode,
                 host->attempt(task), runs);
        host->set_result(task, buf);
    }
    if (message)
        host->set_message(task, message);
    pgr_logf(host, task, PGR_LOG_INFO, "example task ran in mode %s (run %ld)", mode, runs);
    return PGR_SUCCESS;
}

static const char *const task_types[] = {"example", NULL};

static const pgr_plugin example_plugin = {
    .head = PGR_PLUGIN_HEAD,
    .name = "example",
    .version = "1.0.0",
    .description = "Example and test plugin: succeeds, sleeps, retries, fails or crashes on demand",
    .task_types = task_types,
    .run = example_run,
};

PGR_PLUGIN_EXPORT(example_plugin)
