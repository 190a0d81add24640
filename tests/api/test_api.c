/*
 * test_api.c - the HTTP API against a real store (PostgreSQL) and a real
 * redis-server: health, task listing, 404s with the store's message,
 * trigger (pending without a shared queue, queued with one), pause,
 * executions by id and by status, and the Prometheus metrics that reflect
 * them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "store.h"
#include "testenv.h"

static testpg pg;
static testredis rd;
static char dir[64];

typedef struct resp {
    long status;
    strbuf body;
} resp;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    sb_appendn(&((resp *)ud)->body, p, size * n);
    return size * n;
}

static resp http(int port, const char *method, const char *path, const char *body)
{
    resp r = {0};
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    else if (!strcmp(method, "POST"))
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    if (!r.body.buf)
        sb_append(&r.body, "");
    return r;
}

static json_t *http_json(int port, const char *method, const char *path, const char *body,
                         long want_status)
{
    resp r = http(port, method, path, body);
    if (r.status != want_status)
        fail_msg("%s %s: status %ld, want %ld: %s", method, path, r.status, want_status,
                 r.body.buf);
    json_t *j = json_loads(r.body.buf, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    sb_free(&r.body);
    return j;
}

static pgr_config *load(const char *queue_line)
{
    char path[128], *errs = NULL;
    snprintf(path, sizeof path, "%s/pgreviewer.yaml", dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "store: {url: \"%s\"}\n%s"
            "api: {listen: \"127.0.0.1:0\"}\n"
            "tasks:\n"
            "  - {name: t1, type: example, schedule: \"0 * * * *\", params: {mode: succeed}}\n"
            "  - {name: t2, type: example, priority: 7}\n",
            pg.conninfo, queue_line);
    fclose(f);
    pgr_config *cfg = config_load(path, &errs);
    if (!cfg)
        fail_msg("%s", errs);
    free(errs);
    char err[512];
    store *s = store_open_config(cfg, err, sizeof err);
    if (!s || store_migrate(s, err, sizeof err) < 0 ||
        store_sync_tasks(s, cfg, NULL, err, sizeof err) < 0)
        fail_msg("%s", err);
    store_close(s);
    return cfg;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pgr-api-XXXXXX");
    if (!mkdtemp(dir) || testpg_start(&pg) < 0 || testredis_start(&rd, NULL) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    testpg_stop(&pg);
    testredis_stop(&rd);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run_capture(cmd, NULL);
    return 0;
}

static void test_without_queue(void **state)
{
    (void)state;
    pgr_config *cfg = load("");
    char err[512];
    api_server *api = api_start(cfg, err, sizeof err);
    if (!api)
        fail_msg("%s", err);
    int port = api_port(api);
    assert_true(port > 0);

    json_t *j = http_json(port, "GET", "/health", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "store")), "ok");
    assert_string_equal(json_string_value(json_object_get(j, "queue")), "in-process");
    json_decref(j);

    j = http_json(port, "GET", "/api/tasks", NULL, 200);
    assert_int_equal(json_array_size(j), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "name")), "t1");
    json_decref(j);

    j = http_json(port, "GET", "/api/tasks/nosuch", NULL, 404);
    assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "nosuch"));
    json_decref(j);

    j = http_json(port, "POST", "/api/tasks/t1/trigger", "{\"mode\": \"fail\"}", 202);
    json_int_t id = json_integer_value(json_object_get(j, "execution_id"));
    assert_true(id > 0);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "pending");
    json_decref(j);

    j = http_json(port, "POST", "/api/tasks/t1/trigger", "[1]", 400);
    json_decref(j);

    char path[64];
    snprintf(path, sizeof path, "/api/executions/%lld", (long long)id);
    j = http_json(port, "GET", path, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "pending");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "params"), "mode")),
                        "fail");
    json_decref(j);

    j = http_json(port, "GET", "/api/executions?status=pending", NULL, 200);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);
    j = http_json(port, "GET", "/api/executions?status=bogus", NULL, 400);
    json_decref(j);
    j = http_json(port, "GET", "/api/executions/999999", NULL, 404);
    json_decref(j);

    j = http_json(port, "POST", "/api/tasks/t2/pause", NULL, 200);
    json_decref(j);
    j = http_json(port, "GET", "/api/tasks/t2", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "paused");
    json_decref(j);
    j = http_json(port, "GET", "/api/tasks/t1/history", NULL, 200);
    assert_int_equal(json_array_size(j), 1);
    json_decref(j);

    resp r = http(port, "GET", "/metrics", NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.buf, "pgreviewer_store_up 1\n"));
    assert_non_null(strstr(r.body.buf, "pgreviewer_executions{status=\"pending\"} 1\n"));
    assert_non_null(strstr(r.body.buf, "pgreviewer_tasks{state=\"active\"} 1\n"));
    assert_non_null(strstr(r.body.buf, "pgreviewer_tasks{state=\"paused\"} 1\n"));
    sb_free(&r.body);

    r = http(port, "GET", "/nothing", NULL);
    assert_int_equal(r.status, 404);
    sb_free(&r.body);
    r = http(port, "DELETE", "/api/tasks", NULL);
    assert_int_equal(r.status, 405);
    sb_free(&r.body);
    api_stop(api);
    config_free(cfg);
}

static void test_trigger_with_queue(void **state)
{
    (void)state;
    char line[512];
    snprintf(line, sizeof line, "queue: {url: \"redis://127.0.0.1:%d/0\", prefix: apitest}\n",
             rd.port);
    pgr_config *cfg = load(line);
    char err[512];
    api_server *api = api_start(cfg, err, sizeof err);
    if (!api)
        fail_msg("%s", err);
    int port = api_port(api);
    json_t *j = http_json(port, "POST", "/api/tasks/t2/trigger", NULL, 202);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "queued");
    json_decref(j);
    resp r = http(port, "GET", "/metrics", NULL);
    assert_non_null(strstr(r.body.buf, "pgreviewer_queue_depth{priority=\"7\"} 1\n"));
    assert_non_null(strstr(r.body.buf, "pgreviewer_executions{status=\"queued\"} 1\n"));
    sb_free(&r.body);
    api_stop(api);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_without_queue),
        cmocka_unit_test(test_trigger_with_queue),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
