/*
 * test_run_once.c - `pgreviewer run --once` and `config check` end to end,
 * through the real binary, forked executors and the example plugin in each
 * of its modes: success, retry until the last attempt, permanent failure,
 * crash (SIGSEGV) and abort (SIGABRT) confined to their executor, a flaky
 * task that succeeds on its second attempt, and a timeout. Also the param
 * schema errors of `config check`, as file:line:column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testenv.h"

static char dir[64];

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pgr-once-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return run_capture(cmd, NULL) == 0 ? 0 : -1;
}

static const char main_yaml[] =
    "include: tasks.yaml\n"
    "workers: {processes: 2}\n"
    "logging: {level: warning, format: json}\n"
    "defaults:\n"
    "  timeout: 10s\n"
    "  retry: {max_attempts: 3, initial: 10ms, multiplier: 2, max_delay: 20ms, jitter: none}\n";

static const char tasks_yaml[] =
    "tasks:\n"
    "  - {name: ok, type: example, params: {mode: succeed, result: {x: 1}}}\n"
    "  - {name: retry, type: example, params: {mode: retry, message: try later}}\n"
    "  - {name: fail, type: example, params: {mode: fail, message: boom}}\n"
    "  - {name: crash, type: example, retry: {max_attempts: 1}, params: {mode: crash}}\n"
    "  - {name: abort, type: example, retry: {max_attempts: 2}, params: {mode: abort}}\n"
    "  - {name: flaky, type: example, params: {mode: flaky, succeed_on: 2}}\n"
    "  - name: slow\n"
    "    type: example\n"
    "    timeout: 300ms\n"
    "    retry: {max_attempts: 1}\n"
    "    params: {mode: sleep, sleep_ms: 20000}\n";

/* Run the binary with our config; parse the JSON lines of stdout into an
 * object keyed by task name. */
static json_t *run_once(const char *extra, int *rc)
{
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --config %s/pgreviewer.yaml run --once %s 2>/dev/null",
             getenv("PGR_BIN"), dir, extra);
    *rc = run_capture(cmd, &out);
    json_t *by_task = json_object();
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o)
            fail_msg("not a JSON line: %s", line);
        json_object_set_new(by_task, json_string_value(json_object_get(o, "task")), o);
    }
    free(out);
    return by_task;
}

static void expect(json_t *all, const char *task, const char *status, int attempts,
                   const char *error)
{
    json_t *o = json_object_get(all, task);
    if (!o)
        fail_msg("no line for task %s", task);
    assert_string_equal(json_string_value(json_object_get(o, "status")), status);
    assert_int_equal(json_integer_value(json_object_get(o, "attempts")), attempts);
    if (error)
        assert_string_equal(json_string_value(json_object_get(o, "error")), error);
}

static void test_every_mode(void **state)
{
    (void)state;
    write_file("pgreviewer.yaml", main_yaml);
    write_file("tasks.yaml", tasks_yaml);
    int rc;
    json_t *all = run_once("", &rc);
    assert_int_equal(rc, 1); /* some failed */
    assert_int_equal(json_object_size(all), 7);
    expect(all, "ok", "completed", 1, NULL);
    json_t *res = json_object_get(json_object_get(all, "ok"), "result");
    assert_int_equal(json_integer_value(json_object_get(res, "x")), 1);
    expect(all, "retry", "failed", 3, "try later");
    expect(all, "fail", "failed", 1, "boom");
    expect(all, "crash", "failed", 1, "executor crashed with SIGSEGV");
    expect(all, "abort", "failed", 2, "executor crashed with SIGABRT");
    expect(all, "flaky", "completed", 2, NULL);
    expect(all, "slow", "failed", 1, "timed out after 300ms");
    assert_string_equal(json_string_value(json_object_get(json_object_get(all, "slow"), "outcome")),
                        "timeout");
    json_decref(all);
}

static void test_one_task(void **state)
{
    (void)state;
    write_file("pgreviewer.yaml", main_yaml);
    write_file("tasks.yaml", tasks_yaml);
    int rc;
    json_t *all = run_once("--task ok --task flaky", &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(json_object_size(all), 2);
    expect(all, "ok", "completed", 1, NULL);
    expect(all, "flaky", "completed", 2, NULL);
    json_decref(all);
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --config %s/pgreviewer.yaml run --once --task nosuch",
             getenv("PGR_BIN"), dir);
    assert_int_equal(run_capture(cmd, &out), 1);
    assert_non_null(strstr(out, "run: task \"nosuch\" is not configured in"));
    free(out);
}

static void config_check_fails_with(const char *tasks, const char *want)
{
    char cmd[512], *out = NULL, full[1024];
    write_file("pgreviewer.yaml", main_yaml);
    write_file("tasks.yaml", tasks);
    snprintf(cmd, sizeof cmd, "%s config check --config %s/pgreviewer.yaml", getenv("PGR_BIN"),
             dir);
    assert_int_equal(run_capture(cmd, &out), 1);
    snprintf(full, sizeof full, "%s/tasks.yaml:%s\n", dir, want);
    assert_string_equal(out, full);
    free(out);
}

static void test_param_schema_errors(void **state)
{
    (void)state;
    config_check_fails_with(
        "tasks:\n  - name: t\n    type: example\n    params: {mode: sleepy}\n",
        "4:20: tasks[0].params.mode: must be one of: succeed, sleep, retry, fail, crash, abort, "
        "flaky; got \"sleepy\"");
    config_check_fails_with(
        "tasks:\n  - name: t\n    type: example\n    params:\n      sleep_ms: -5\n",
        "5:17: tasks[0].params.sleep_ms: -5 is out of range (at least 0)");
    config_check_fails_with(
        "tasks:\n  - name: t\n    type: example\n    params:\n      sleep_ms: soon\n",
        "5:17: tasks[0].params.sleep_ms: expected integer, got a string");
    config_check_fails_with(
        "tasks:\n  - name: t\n    type: example\n    params:\n      mdoe: fail\n",
        "5:7: tasks[0].params: unknown param \"mdoe\" for task type example (did you mean "
        "\"mode\"?)");
    config_check_fails_with("tasks:\n  - name: t\n    type: example\n    schedule: \"0 0 30 2 *\"\n",
                            "2:5: tasks[0].schedule: \"0 0 30 2 *\" never fires (no date "
                            "matches it)");
    config_check_fails_with("tasks:\n  - name: t\n    type: exampel\n",
                            "2:5: tasks[0].type: unknown task type \"exampel\" (did you mean "
                            "\"example\"?)");
}

static void test_config_check_ok(void **state)
{
    (void)state;
    char cmd[512], *out = NULL;
    write_file("pgreviewer.yaml", main_yaml);
    write_file("tasks.yaml", tasks_yaml);
    snprintf(cmd, sizeof cmd, "%s config check --config %s/pgreviewer.yaml", getenv("PGR_BIN"),
             dir);
    assert_int_equal(run_capture(cmd, &out), 0);
    assert_non_null(strstr(out, "pgreviewer.yaml: ok\n"));
    assert_non_null(strstr(out, "  tasks: 7\n"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_task, setup, teardown),
        cmocka_unit_test_setup_teardown(test_param_schema_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_check_ok, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
