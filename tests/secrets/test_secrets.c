/*
 * test_secrets.c - secrets never leak (DESIGN.md section 2, issue 3 item 6).
 *
 * Full tasks run through the real binary with a known database password
 * (served by the Vault-compatible test server) and a known Vault token
 * (given in VAULT_TOKEN), plus a wrong password from a password file. Then
 * neither string may appear in: the output and log lines of `run --once`,
 * the results and errors, `task show` / `task history` / `execution show`,
 * any table of the store, or the argv and environment of the executor
 * processes while they run a task.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fakevault.h"
#include "testenv.h"
#include "util.h"

#define PASSWORD "Pw-Kn0wn-9f2c1e7a"
#define TOKEN "hvs.Kn0wnT0ken-5d81c3"
#define WRONG_PASSWORD "Wr0ng-Kn0wn-77aa01"

static testpg pg;
static fakevault fv;
static char dir[64], cfg_path[128], store_ci[700];

static void sql(const char *conninfo, const char *q)
{
    PGconn *c = PQconnectdb(conninfo);
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", q, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static void assert_clean(const char *what, const char *text)
{
    if (strstr(text, PASSWORD))
        fail_msg("the password leaked into %s:\n%s", what, text);
    if (strstr(text, TOKEN))
        fail_msg("the Vault token leaked into %s:\n%s", what, text);
    if (strstr(text, WRONG_PASSWORD))
        fail_msg("the file's password leaked into %s:\n%s", what, text);
}

static bool password_required(void *arg)
{
    (void)arg;
    char ci[700];
    snprintf(ci, sizeof ci, "host=%s port=5432 dbname=postgres user=app password=nope", pg.dir);
    PGconn *c = PQconnectdb(ci);
    bool refused = PQstatus(c) != CONNECTION_OK;
    PQfinish(c);
    return refused;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pgr-secrets-XXXXXX");
    if (!mkdtemp(dir) || testpg_start(&pg) < 0 || fakevault_start(&fv, NULL) < 0)
        return -1;
    sql(pg.conninfo, "CREATE ROLE app LOGIN PASSWORD '" PASSWORD "'");
    sql(pg.conninfo, "CREATE DATABASE store");
    char path[400];
    snprintf(path, sizeof path, "%s/data/pg_hba.conf", pg.dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "local all pgrtest trust\nlocal all all scram-sha-256\n");
    fclose(f);
    sql(pg.conninfo, "SELECT pg_reload_conf()");
    if (!wait_until(password_required, NULL, 10000))
        return -1;
    if (fakevault_ctl(&fv, "/token", "{\"token\": \"" TOKEN "\"}") < 0 ||
        fakevault_ctl(&fv, "/secret",
                      "{\"path\": \"database/connections/target\", \"data\": {\"username\": "
                      "\"app\", \"password\": \"" PASSWORD "\"}}") < 0)
        return -1;
    testpg_conninfo_db(&pg, "store", store_ci, sizeof store_ci);
    snprintf(path, sizeof path, "%s/wrong.pw", dir);
    f = fopen(path, "w");
    fprintf(f, WRONG_PASSWORD "\n");
    fclose(f);
    snprintf(cfg_path, sizeof cfg_path, "%s/pgreviewer.yaml", dir);
    f = fopen(cfg_path, "w");
    fprintf(f,
            "store: {url: \"%s\"}\n"
            "vault: {address: \"%s\", auth: {method: token}}\n"
            "logging: {level: debug, format: json}\n"
            "workers: {processes: 2}\n"
            "connections:\n"
            "  - {id: target, host: \"%s\", port: 5432, database: postgres, credentials: vault}\n"
            "  - {id: wrong, host: \"%s\", port: 5432, database: postgres,\n"
            "     credentials: {username: app, password_file: %s/wrong.pw}}\n"
            "tasks:\n"
            "  - name: who\n"
            "    type: custom_sql\n"
            "    connection: target\n"
            "    retry: {max_attempts: 1}\n"
            "    params:\n"
            "      queries:\n"
            "        - {name: who, sql: \"SELECT current_user AS u, pg_sleep(1.5) IS NULL AS s\"}\n"
            "        - {name: boom, sql: \"SELECT 1/0\"}\n"
            "  - name: denied\n"
            "    type: custom_sql\n"
            "    connection: wrong\n"
            "    retry: {max_attempts: 1}\n"
            "    params: {queries: [{name: one, sql: \"SELECT 1\"}]}\n",
            store_ci, fv.address, pg.dir, pg.dir, dir);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    fakevault_stop(&fv);
    testpg_stop(&pg);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run_capture(cmd, NULL);
    return 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    strbuf sb = {0};
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sb_appendn(&sb, buf, n);
    fclose(f);
    return sb_steal(&sb);
}

/* NUL-separated /proc files (environ, cmdline) as one string. */
static char *proc_text(pid_t pid, const char *file)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    strbuf sb = {0};
    int ch;
    while ((ch = fgetc(f)) != EOF)
        sb_appendn(&sb, ch ? (char[]){(char)ch} : " ", 1);
    fclose(f);
    return sb_steal(&sb);
}

/* Check the argv and environment of every child of `parent`; returns how
 * many children were looked at. */
static int inspect_children(pid_t parent)
{
    int seen = 0;
    DIR *d = opendir("/proc");
    struct dirent *de;
    while ((de = readdir(d))) {
        pid_t pid = (pid_t)atoi(de->d_name);
        if (pid <= 0)
            continue;
        char path[64], *stat;
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        stat = slurp(path);
        char *rp = strrchr(stat, ')');
        int ppid = 0;
        if (rp)
            sscanf(rp + 2, "%*c %d", &ppid);
        free(stat);
        if (ppid != parent)
            continue;
        char *env = proc_text(pid, "environ"), *argv = proc_text(pid, "cmdline");
        assert_clean("an executor's environment", env);
        assert_clean("an executor's argv", argv);
        free(env);
        free(argv);
        seen++;
    }
    closedir(d);
    return seen;
}

static void test_no_secret_anywhere(void **state)
{
    (void)state;
    char out_path[128], err_path[128];
    snprintf(out_path, sizeof out_path, "%s/out.txt", dir);
    snprintf(err_path, sizeof err_path, "%s/err.txt", dir);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("VAULT_TOKEN", TOKEN, 1);
        freopen(out_path, "w", stdout);
        freopen(err_path, "w", stderr);
        execl(getenv("PGR_BIN"), "pgreviewer", "--config", cfg_path, "run", "--once",
              (char *)NULL);
        _exit(127);
    }
    /* While the `who` task sleeps in its query, look at the executors. */
    int seen = 0;
    for (int i = 0; i < 400 && seen == 0; i++) {
        seen = inspect_children(pid);
        if (!seen) {
            struct timespec d = {0, 5 * 1000000}; /* bounded: at most 2 s */
            nanosleep(&d, NULL);
        }
    }
    assert_true(seen >= 1);
    char *env = proc_text(pid, "environ");
    assert_clean("the main process's environment", env);
    free(env);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1); /* `denied` failed */

    char *out = slurp(out_path), *err = slurp(err_path);
    /* The task really connected with the password from Vault... */
    assert_non_null(strstr(out, "\"task\":\"who\""));
    assert_non_null(strstr(out, "\"app\""));
    /* ...and the one with the wrong password failed with a clear reason. */
    assert_non_null(strstr(out, "password authentication failed"));
    assert_clean("run --once's output", out);
    assert_clean("run --once's log lines", err);
    free(out);
    free(err);

    const char *cmds[] = {"task show who", "task history who --json", "task show denied",
                          "execution show 1", "execution show 2", "task list --json"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char cmd[512], *text = NULL;
        snprintf(cmd, sizeof cmd, "%s --config %s %s", getenv("PGR_BIN"), cfg_path, cmds[i]);
        run_capture(cmd, &text);
        assert_clean(cmds[i], text);
        free(text);
    }

    /* Every row of every table of the store, as text. */
    PGconn *c = PQconnectdb(store_ci);
    PGresult *tables = PQexec(c, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
    assert_int_equal(PQresultStatus(tables), PGRES_TUPLES_OK);
    assert_true(PQntuples(tables) >= 8);
    long rows = 0;
    for (int i = 0; i < PQntuples(tables); i++) {
        char q[256];
        snprintf(q, sizeof q, "SELECT t::text FROM %s t", PQgetvalue(tables, i, 0));
        PGresult *r = PQexec(c, q);
        for (int k = 0; k < PQntuples(r); k++, rows++)
            assert_clean(PQgetvalue(tables, i, 0), PQgetvalue(r, k, 0));
        PQclear(r);
    }
    PQclear(tables);
    PGresult *r = PQexec(c, "SELECT count(*) FROM analysis_results");
    long results = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    assert_true(results >= 1); /* the run was recorded: we looked at real rows */
    assert_true(rows > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_secret_anywhere),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
