/*
 * test_log.c - core/log.c: the task context is the calling thread's, so
 * that in the daemon (scheduler, worker supervisor, fetcher, writer and API
 * threads in one process) a line is never tagged with, nor reads the freed
 * copy of, another thread's task.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static void *other_thread(void *arg)
{
    (void)arg;
    log_info("a line of another thread");
    return NULL;
}

/* Run fn with stderr sent to a file; return what was written. */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/pgr-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    char err[256];
    char *text = read_file(path, NULL, err, sizeof err);
    unlink(path);
    assert_non_null(text);
    return text;
}

static void two_threads(void)
{
    log_set_task(42, "busy-task", 3);
    log_info("a line of this thread");
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, other_thread, NULL), 0);
    pthread_join(th, NULL);
    log_clear_task();
}

static void test_task_context_is_per_thread(void **state)
{
    (void)state;
    log_configure("info", "text");
    char *text = capture_stderr(two_threads);
    char *mine = strstr(text, "a line of this thread");
    char *theirs = strstr(text, "a line of another thread");
    assert_non_null(mine);
    assert_non_null(theirs);
    /* this thread's line carries the context... */
    char *nl = strchr(text, '\n');
    assert_true(nl && mine < nl);
    *nl = '\0';
    assert_non_null(strstr(text, " task=busy-task execution=42 attempt=3 "));
    /* ...the other thread's does not */
    char *line2 = nl + 1;
    assert_null(strstr(line2, "task="));
    free(text);
}

static void hostile_messages(void)
{
    log_info("bad \xff byte");
    log_info("forged\n2026-01-01T00:00:00.000Z error   [1] fake line");
}

/* A message that is not UTF-8 still reaches a JSON log (bad bytes become
 * U+FFFD), and no message can add a line of its own. */
static void test_hostile_messages(void **state)
{
    (void)state;
    log_configure("info", "json");
    char *text = capture_stderr(hostile_messages);
    log_configure("info", "text");
    assert_non_null(strstr(text, "\"msg\":\"bad \\uFFFD byte\""));
    assert_non_null(strstr(text, "\"msg\":\"forged 2026-01-01T00:00:00.000Z error   [1] fake line\""));
    int lines = 0;
    for (char *c = text; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 2);
    free(text);
    text = capture_stderr(hostile_messages);
    lines = 0;
    for (char *c = text; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 2);
    assert_non_null(strstr(text, " forged 2026-01-01T00:00:00.000Z error"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_context_is_per_thread),
        cmocka_unit_test(test_hostile_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
