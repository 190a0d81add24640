/*
 * test_cli_queue.c - `pgreviewer queue ...` through cmd_queue() with a
 * hand-built pgr_config: stats (text and JSON), dead list (text and JSON),
 * dead retry ID|--all, dead purge, usage errors, and the in-process queue's
 * "nothing to inspect".
 */
#include <jansson.h>
#include <unistd.h>

#include "qtest.h"

static testredis redis;
static char url[256];

typedef struct cli_out {
    int rc;
    char *out, *err;
} cli_out;

static char *slurp(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    rewind(f);
    char *buf = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

/* Run cmd_queue with argv (NULL-terminated), capturing stdout and stderr. */
static cli_out run(const char *qurl, char **argv)
{
    pgr_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.queue.url = (char *)qurl;
    cfg.queue.prefix = "cli";
    int argc = 0;
    while (argv[argc])
        argc++;
    FILE *o = tmpfile(), *e = tmpfile();
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fileno(o), 1);
    dup2(fileno(e), 2);
    cli_out r;
    r.rc = cmd_queue(&cfg, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    fseek(o, 0, SEEK_END);
    fseek(e, 0, SEEK_END);
    r.out = slurp(o);
    r.err = slurp(e);
    return r;
}

static void cli_free(cli_out *r)
{
    free(r->out);
    free(r->err);
}

#define ARGS(...) ((char *[]){__VA_ARGS__, NULL})

/* Two dead items (ids 41 and 42), one ready item at priority 5. */
static void seed(queue *q)
{
    char err[512];
    qt_enq(q, 41, 3, NULL);
    qt_enq(q, 42, 3, "{\"x\":1}");
    queue_lease l[2];
    assert_int_equal(qt_fetch(q, l, 2, 30000, 0), 2);
    const char *why[] = {"connection refused", "plugin crashed with SIGSEGV"};
    assert_int_equal(queue_dead(q, l, 2, why, err, sizeof err), 2);
    queue_leases_clear(l, 2);
    qt_enq(q, 50, 5, NULL);
}

static void test_memory_queue_has_nothing_to_inspect(void **state)
{
    cli_out r = run(NULL, ARGS("stats"));
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "no Redis is configured (queue.url is not set)"));
    assert_non_null(strstr(r.err, "nothing to inspect from another process"));
    cli_free(&r);
}

static void test_usage_errors(void **state)
{
    cli_out r = run(url, ARGS("stat"));
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "unknown sub-command \"stat\" (did you mean \"stats\"?)"));
    cli_free(&r);
    r = run(url, ARGS("dead", "retry", "abc"));
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "\"abc\" is neither an execution id (a number) nor --all"));
    cli_free(&r);
    r = run(url, ARGS("stats", "--yaml"));
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "unexpected argument \"--yaml\""));
    cli_free(&r);
    r = run(url, ARGS("dead", "bury"));
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "unknown sub-command \"bury\" (expected list, retry or purge)"));
    cli_free(&r);
}

static void test_unreachable_redis_is_a_failure(void **state)
{
    cli_out r = run("redis://:topsecret@127.0.0.1:1/0", ARGS("stats"));
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "pgreviewer queue: queue redis://127.0.0.1:1/0: cannot connect"));
    assert_null(strstr(r.err, "topsecret"));
    cli_free(&r);
}

static void test_stats_text_and_json(void **state)
{
    queue *q = qt_open(url, "cli");
    seed(q);
    cli_out r = run(url, ARGS("stats"));
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "priority  ready  lag\n9             0  -\n"));
    assert_non_null(strstr(r.out, "\n5             1  "));
    assert_non_null(strstr(r.out, "ready     1\ndelayed   0\nleased    0\ndead      2\n"));
    cli_free(&r);

    r = run(url, ARGS("stats", "--json"));
    assert_int_equal(r.rc, 0);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "dead")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "leased")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "ready"), "5")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "ready"), "3")), 0);
    json_decref(j);
    cli_free(&r);
    queue_close(q);
}

static void test_dead_list_retry_purge(void **state)
{
    char err[512];
    queue *q = qt_open(url, "cli");
    cli_out r = run(url, ARGS("dead", "list"));
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "ID           PRIORITY ATTEMPT DIED                 ERROR\n"));
    assert_non_null(strstr(r.out, "\n41           3        1       "));
    assert_non_null(strstr(r.out, "connection refused\n"));
    assert_non_null(strstr(r.out, "plugin crashed with SIGSEGV\n"));
    cli_free(&r);

    r = run(url, ARGS("dead", "list", "--json"));
    assert_int_equal(r.rc, 0);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    assert_true(json_is_array(j));
    assert_int_equal(json_array_size(j), 2);
    json_t *second = json_array_get(j, 1);
    json_t *first = json_array_get(j, 0);
    json_t *e42 = json_integer_value(json_object_get(first, "id")) == 42 ? first : second;
    assert_string_equal(json_string_value(json_object_get(e42, "error")), "plugin crashed with SIGSEGV");
    assert_string_equal(json_string_value(json_object_get(e42, "payload")), "{\"x\":1}");
    assert_int_equal(json_integer_value(json_object_get(e42, "attempt")), 1);
    json_decref(j);
    cli_free(&r);

    r = run(url, ARGS("dead", "retry", "999"));
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "no dead item with id 999 (see: pgreviewer queue dead list)"));
    cli_free(&r);

    r = run(url, ARGS("dead", "retry", "41"));
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "re-queued 1 dead item\n");
    cli_free(&r);
    queue_stats st = qt_stats(q);
    assert_int_equal(st.ready[3], 1);
    assert_int_equal(st.dead, 1);

    r = run(url, ARGS("dead", "retry", "--all"));
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "re-queued 1 dead item\n");
    cli_free(&r);

    /* kill both again and purge */
    queue_lease l[3];
    int n = qt_fetch(q, l, 3, 30000, 0);
    assert_int_equal(n, 3); /* 50 (priority 5), then 41 and 42 */
    assert_int_equal(l[0].id, 50);
    assert_int_equal(l[1].attempt, 2);
    assert_int_equal(queue_dead(q, l, 3, NULL, err, sizeof err), 3);
    queue_leases_clear(l, 3);
    r = run(url, ARGS("dead", "purge"));
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "purged 3 dead items\n");
    cli_free(&r);
    r = run(url, ARGS("dead", "list"));
    assert_non_null(strstr(r.out, "(no dead items)"));
    cli_free(&r);
    queue_close(q);
}

static int start(void **state)
{
    if (testredis_start(&redis, NULL) != 0)
        return -1;
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", redis.port);
    return 0;
}

static int stop(void **state)
{
    testredis_stop(&redis);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_queue_has_nothing_to_inspect),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_unreachable_redis_is_a_failure),
        cmocka_unit_test(test_stats_text_and_json),
        cmocka_unit_test(test_dead_list_retry_purge),
    };
    return cmocka_run_group_tests_name("cli_queue", tests, start, stop);
}
