/*
 * testenv.c - see testenv.h.
 */
#include "testenv.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *test_source_dir(void)
{
    const char *s = getenv("PGR_SOURCE_DIR");
    return s ? s : ".";
}

const char *test_build_dir(void)
{
    const char *s = getenv("PGR_BUILD_DIR");
    return s ? s : ".";
}

int run_capture(const char *cmd, char **out)
{
    char *full = NULL;
    if (asprintf(&full, "(%s) 2>&1", cmd) < 0)
        abort();
    FILE *f = popen(full, "r");
    free(full);
    if (!f)
        return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    if (!buf)
        abort();
    buf[len] = '\0';
    int st = pclose(f);
    if (out)
        *out = buf;
    else
        free(buf);
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

static int make_tmpdir(char *dir, size_t len, const char *tag)
{
    snprintf(dir, len, "/tmp/pgr-%s-XXXXXX", tag);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return -1;
    }
    return 0;
}

int testpg_start(testpg *pg)
{
    char cmd[1024], *out = NULL;
    memset(pg, 0, sizeof *pg);
    if (make_tmpdir(pg->dir, sizeof pg->dir, "pg") < 0)
        return -1;
    snprintf(cmd, sizeof cmd, "%s/tests/lib/pg_harness.sh start %s", test_source_dir(), pg->dir);
    int rc = run_capture(cmd, &out);
    if (rc != 0) {
        fprintf(stderr, "testpg_start failed (%d): %s\n", rc, out ? out : "");
        free(out);
        return -1;
    }
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = '\0';
    snprintf(pg->conninfo, sizeof pg->conninfo, "%s", out);
    free(out);
    return 0;
}

void testpg_stop(testpg *pg)
{
    char cmd[1024];
    if (!pg->dir[0])
        return;
    snprintf(cmd, sizeof cmd, "%s/tests/lib/pg_harness.sh stop %s", test_source_dir(), pg->dir);
    run_capture(cmd, NULL);
    pg->dir[0] = '\0';
}

const char *testpg_conninfo_db(const testpg *pg, const char *dbname, char *buf, size_t len)
{
    const char *user = strstr(pg->conninfo, " user=");
    snprintf(buf, len, "host=%s port=5432 dbname=%s%s", pg->dir, dbname, user ? user : "");
    return buf;
}

int testpg_exec(const testpg *pg, const char *sql)
{
    PGconn *c = PQconnectdb(pg->conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "testpg_exec: connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "testpg_exec: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

int testredis_start(testredis *r, const char *const *extra_conf)
{
    char cmd[4096], *out = NULL;
    memset(r, 0, sizeof *r);
    if (make_tmpdir(r->dir, sizeof r->dir, "redis") < 0)
        return -1;
    int off = snprintf(cmd, sizeof cmd, "%s/tests/lib/redis_harness.sh start %s",
                       test_source_dir(), r->dir);
    for (; extra_conf && *extra_conf; extra_conf++)
        off += snprintf(cmd + off, sizeof cmd - (size_t)off, " '%s'", *extra_conf);
    int rc = run_capture(cmd, &out);
    if (rc != 0 || sscanf(out, "%d %299s", &r->port, r->socket) != 2) {
        fprintf(stderr, "testredis_start failed (%d): %s\n", rc, out ? out : "");
        free(out);
        return -1;
    }
    free(out);
    return 0;
}

void testredis_stop(testredis *r)
{
    char cmd[1024];
    if (!r->dir[0])
        return;
    snprintf(cmd, sizeof cmd, "%s/tests/lib/redis_harness.sh stop %s", test_source_dir(), r->dir);
    run_capture(cmd, NULL);
    r->dir[0] = '\0';
}

bool wait_until(bool (*cond)(void *arg), void *arg, int64_t timeout_ms)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (cond(arg))
            return true;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t el = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (el >= timeout_ms)
            return cond(arg);
        struct timespec d = {0, 5 * 1000000};
        nanosleep(&d, NULL);
    }
}
