/*
 * test_credentials.c - credentials resolution and target connections
 * (core/credentials.c) and `pgreviewer connection test` (cmd_connection),
 * against a real PostgreSQL (scram-sha-256 passwords on its socket) and the
 * fake Vault: keywords from every source, a password rotated end to end,
 * and the secrets test (the known password and token never show up in a
 * message or in the command's output).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "credentials.h"
#include "fakevault.h"
#include "testenv.h"
#include "util.h"
#include "vault.h"

#define TOKEN "s.TOKEN-known-credtest-91aa"
#define PW1 "pw-ONE-known-4411"
#define PW2 "pw-TWO-known-5522"
#define PW3 "pw-THREE-known-6633"
#define LOC "secret/data/database/connections/prod-main"
#define READ_PATH "GET /v1/" LOC

static testpg g_pg;
static fakevault g_fv;
static char g_token_file[400];

/* Neither the token nor any password we used may appear. */
static void assert_clean(const char *text)
{
    assert_null(strstr(text, TOKEN));
    assert_null(strstr(text, PW1));
    assert_null(strstr(text, PW2));
    assert_null(strstr(text, PW3));
}

static void sql(const char *q)
{
    assert_int_equal(testpg_exec(&g_pg, q), 0);
}

static void set_vault_password(const char *pw)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"path\": \"database/connections/prod-main\", \"data\": {\"username\": \"app\", "
             "\"password\": \"%s\", \"database\": \"postgres\", \"rotation_ttl\": 3600}}",
             pw);
    assert_int_equal(fakevault_ctl(&g_fv, "/secret", body), 0);
}

/* True once the server asks "app" for a password (the new pg_hba.conf is
 * in force): a wrong one is refused. */
static bool hba_in_force(void *arg)
{
    (void)arg;
    char ci[700];
    snprintf(ci, sizeof ci, "host=%s port=5432 dbname=postgres user=app password=wrong", g_pg.dir);
    PGconn *c = PQconnectdb(ci);
    bool refused = PQstatus(c) != CONNECTION_OK;
    PQfinish(c);
    return refused;
}

static int group_setup(void **state)
{
    (void)state;
    if (testpg_start(&g_pg) < 0 || fakevault_start(&g_fv, NULL) < 0)
        return -1;
    sql("CREATE ROLE app LOGIN PASSWORD '" PW1 "'");
    char path[400];
    snprintf(path, sizeof path, "%s/data/pg_hba.conf", g_pg.dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "local all pgrtest trust\nlocal all all scram-sha-256\n");
    fclose(f);
    sql("SELECT pg_reload_conf()");
    if (!wait_until(hba_in_force, NULL, 10000))
        return -1;
    snprintf(g_token_file, sizeof g_token_file, "%s", fakevault_file(&g_fv, "token", TOKEN "\n"));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fakevault_stop(&g_fv);
    testpg_stop(&g_pg);
    return 0;
}

typedef struct fixture {
    cfg_vault vcfg;
    cfg_connection conn;
    vault_client *vc;
    char err[2048];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (fakevault_ctl(&g_fv, "/reset", "{}") < 0 ||
        fakevault_ctl(&g_fv, "/token", "{\"token\": \"" TOKEN "\"}") < 0)
        return -1;
    set_vault_password(PW1);
    sql("ALTER ROLE app PASSWORD '" PW1 "'");
    f->vcfg.enabled = true;
    f->vcfg.address = g_fv.address;
    f->vcfg.tls_verify = true;
    f->vcfg.auth_method = VAULT_AUTH_TOKEN;
    f->vcfg.token_file = g_token_file;
    f->vcfg.cache_ttl_ms = 60000;
    f->vcfg.timeout_ms = 3000;
    f->vc = vault_new(&f->vcfg, f->err, sizeof f->err);
    f->conn.id = (char *)"prod-main";
    f->conn.host = g_pg.dir;
    f->conn.port = 5432;
    f->conn.database = (char *)"postgres";
    f->conn.credentials = CRED_VAULT;
    f->conn.connect_timeout_ms = 10000;
    *state = f;
    return f->vc ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    vault_free(f->vc);
    json_decref(f->conn.options);
    free(f);
    return 0;
}

static char *query1(PGconn *pg, const char *q)
{
    PGresult *r = PQexec(pg, q);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    char *v = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static void assert_user(PGconn *pg, const char *user)
{
    assert_non_null(pg);
    char *u = query1(pg, "SELECT current_user");
    assert_string_equal(u, user);
    free(u);
}

/* ---- resolution ----------------------------------------------------------- */

static void assert_kw(const credentials *c, const char *kw, const char *want)
{
    const char *v = credentials_get(c, kw);
    if (!want) {
        assert_null(v);
        return;
    }
    if (!v)
        fail_msg("keyword %s missing", kw);
    assert_string_equal(v, want);
}

static void test_keywords_from_vault_and_config(void **state)
{
    fixture *f = *state;
    assert_int_equal(fakevault_ctl(&g_fv, "/secret",
                                   "{\"path\": \"database/connections/prod-main\", \"data\": "
                                   "{\"username\": \"app\", \"password\": \"" PW1 "\", "
                                   "\"database\": \"appdb\", \"port\": 6432, \"sslmode\": "
                                   "\"disable\", \"target_session_attrs\": \"any\", "
                                   "\"rotation_ttl\": \"3600\", \"nested\": {\"x\": 1}}}"),
                     0);
    f->conn.host = (char *)"db.example";
    f->conn.port = 6000;
    f->conn.database = (char *)"configured";
    f->conn.sslmode = (char *)"require";
    f->conn.connect_timeout_ms = 2500;
    f->conn.options = json_pack("{s:s, s:i}", "options", "-c search_path=public", "keepalives", 1);
    cred_opts o = {.task_name = "nightly", .statement_timeout_ms = 600000};
    credentials *c = credentials_resolve(&f->conn, f->vc, &o, f->err, sizeof f->err);
    if (!c)
        fail_msg("%s", f->err);
    assert_kw(c, "host", "db.example");
    assert_kw(c, "port", "6432");     /* the secret wins */
    assert_kw(c, "dbname", "appdb");
    assert_kw(c, "user", "app");
    assert_kw(c, "password", PW1);
    assert_kw(c, "sslmode", "disable");
    assert_kw(c, "keepalives", "1");
    assert_kw(c, "target_session_attrs", "any");
    assert_kw(c, "rotation_ttl", NULL); /* not a libpq keyword: ignored */
    assert_kw(c, "nested", NULL);
    assert_kw(c, "application_name", "pgreviewer/nightly");
    assert_kw(c, "connect_timeout", "3");
    assert_kw(c, "options", "-c search_path=public -c statement_timeout=600000");
    assert_string_equal(c->source, "vault " LOC);
    assert_int_equal(c->n, 11);
    assert_null(c->keywords[c->n]);
    assert_null(c->values[c->n]);
    credentials_free(c);
}

static void test_bad_options(void **state)
{
    fixture *f = *state;
    f->conn.options = json_pack("{s:s}", "sslmdoe", "require");
    assert_null(credentials_resolve(&f->conn, f->vc, NULL, f->err, sizeof f->err));
    assert_string_equal(f->err, "connection prod-main: options.sslmdoe is not a libpq connection "
                                "keyword (did you mean \"sslmode\"?)");
    json_decref(f->conn.options);
    f->conn.options = json_pack("{s:s}", "password", "x");
    assert_null(credentials_resolve(&f->conn, f->vc, NULL, f->err, sizeof f->err));
    assert_string_equal(f->err, "connection prod-main: options.password is not allowed: keep the "
                                "password in Vault (credentials: vault) or in a password_file");
}

static void test_vault_without_section(void **state)
{
    fixture *f = *state;
    assert_null(credentials_resolve(&f->conn, NULL, NULL, f->err, sizeof f->err));
    assert_string_equal(f->err, "connection prod-main: credentials: vault, but the configuration "
                                "has no vault: section");
}

static void test_vault_error_names_connection(void **state)
{
    fixture *f = *state;
    assert_int_equal(fakevault_ctl(&g_fv, "/delete_secret",
                                   "{\"path\": \"database/connections/prod-main\"}"),
                     0);
    assert_null(credentials_connect(&f->conn, f->vc, NULL, NULL, f->err, sizeof f->err));
    assert_string_equal(f->err, "connection prod-main: no secret in Vault at " LOC
                                " (vault.kv_mount \"secret\", path "
                                "\"database/connections/prod-main\" from vault.path_template): "
                                "write the secret there or fix kv_mount/path_template");
}

/* ---- connecting ---------------------------------------------------------- */

static void test_connect_with_vault(void **state)
{
    fixture *f = *state;
    char *source = NULL;
    cred_opts o = {.task_name = "nightly", .statement_timeout_ms = 1234};
    PGconn *pg = credentials_connect(&f->conn, f->vc, &o, &source, f->err, sizeof f->err);
    if (!pg)
        fail_msg("%s", f->err);
    assert_user(pg, "app");
    assert_string_equal(source, "vault " LOC);
    char *v = query1(pg, "SHOW statement_timeout");
    assert_string_equal(v, "1234ms");
    free(v);
    v = query1(pg, "SHOW application_name");
    assert_string_equal(v, "pgreviewer/nightly");
    free(v);
    PQfinish(pg);
    free(source);
}

/* How many times the server logged a failed password login for "app". */
static int failed_logins(void)
{
    char path[400];
    snprintf(path, sizeof path, "%s/server.log", g_pg.dir);
    char *log = read_file(path, NULL, NULL, 0);
    assert_non_null(log);
    int n = 0;
    for (char *p = log; (p = strstr(p, "password authentication failed for user \"app\"")); p++)
        n++;
    free(log);
    return n;
}

static void test_rotated_password(void **state)
{
    fixture *f = *state;
    PGconn *pg = credentials_connect(&f->conn, f->vc, NULL, NULL, f->err, sizeof f->err);
    assert_user(pg, "app");
    PQfinish(pg);
    assert_int_equal(fakevault_count(&g_fv, READ_PATH), 1);

    /* Rotation: the database and Vault change; our cache still has PW1. */
    int failed_before = failed_logins();
    sql("ALTER ROLE app PASSWORD '" PW2 "'");
    set_vault_password(PW2);
    pg = credentials_connect(&f->conn, f->vc, NULL, NULL, f->err, sizeof f->err);
    if (!pg)
        fail_msg("%s", f->err);
    assert_user(pg, "app");
    PQfinish(pg);
    assert_int_equal(fakevault_count(&g_fv, READ_PATH), 2); /* re-read once */
    assert_int_equal(failed_logins() - failed_before, 1);   /* the stale PW1 */

    /* Served from the cache again now. */
    pg = credentials_connect(&f->conn, f->vc, NULL, NULL, f->err, sizeof f->err);
    assert_user(pg, "app");
    PQfinish(pg);
    assert_int_equal(fakevault_count(&g_fv, READ_PATH), 2);
}

static void test_rotated_but_vault_not_updated(void **state)
{
    fixture *f = *state;
    int failed_before = failed_logins();
    PGconn *pg = credentials_connect(&f->conn, f->vc, NULL, NULL, f->err, sizeof f->err);
    assert_user(pg, "app");
    PQfinish(pg);
    sql("ALTER ROLE app PASSWORD '" PW3 "'");
    assert_null(credentials_connect(&f->conn, f->vc, NULL, NULL, f->err, sizeof f->err));
    char want[1024];
    snprintf(want, sizeof want,
             "connection prod-main: the server rejected the password from vault " LOC
             ", also after re-reading it from Vault in case it was rotated: connection to server "
             "on socket \"%s/.s.PGSQL.5432\" failed: FATAL:  password authentication failed for "
             "user \"app\"",
             g_pg.dir);
    assert_string_equal(f->err, want);
    assert_clean(f->err);
    assert_int_equal(fakevault_count(&g_fv, READ_PATH), 2); /* the cached read, then one more */
    /* Vault still had the same password: no second, pointless attempt. */
    assert_int_equal(failed_logins() - failed_before, 1);
}

static void test_password_file(void **state)
{
    fixture *f = *state;
    f->conn.id = (char *)"pf";
    f->conn.credentials = CRED_PASSWORD_FILE;
    f->conn.username = (char *)"app";
    f->conn.password_file = (char *)fakevault_file(&g_fv, "pf.pw", PW1 "\nignored second line\n");
    char *source = NULL;
    PGconn *pg = credentials_connect(&f->conn, NULL, NULL, &source, f->err, sizeof f->err);
    if (!pg)
        fail_msg("%s", f->err);
    assert_user(pg, "app");
    PQfinish(pg);
    char want[600];
    snprintf(want, sizeof want, "password file %s", f->conn.password_file);
    assert_string_equal(source, want);
    free(source);

    fakevault_file(&g_fv, "pf.pw", PW2 "\n"); /* wrong: the role has PW1 */
    assert_null(credentials_connect(&f->conn, NULL, NULL, NULL, f->err, sizeof f->err));
    snprintf(want, sizeof want,
             "connection pf: the server rejected the password from password file %s: connection "
             "to server on socket \"%s/.s.PGSQL.5432\" failed: FATAL:  password authentication "
             "failed for user \"app\"",
             f->conn.password_file, g_pg.dir);
    assert_string_equal(f->err, want);
    assert_clean(f->err);

    f->conn.password_file = (char *)"/nonexistent/pf.pw";
    assert_null(credentials_connect(&f->conn, NULL, NULL, NULL, f->err, sizeof f->err));
    assert_string_equal(f->err, "connection pf: password_file /nonexistent/pf.pw: cannot open: No "
                                "such file or directory");
}

static void test_libpq_environment(void **state)
{
    fixture *f = *state;
    f->conn.id = (char *)"env";
    f->conn.credentials = CRED_LIBPQ;
    setenv("PGUSER", "app", 1);
    setenv("PGPASSWORD", PW1, 1);
    char *source = NULL;
    PGconn *pg = credentials_connect(&f->conn, NULL, NULL, &source, f->err, sizeof f->err);
    unsetenv("PGUSER");
    unsetenv("PGPASSWORD");
    if (!pg)
        fail_msg("%s", f->err);
    assert_user(pg, "app");
    assert_string_equal(source, "libpq environment / .pgpass");
    PQfinish(pg);
    free(source);

    /* No password anywhere: libpq's own message, with the source named. */
    f->conn.username = (char *)"app";
    setenv("PGPASSFILE", "/nonexistent/.pgpass", 1);
    assert_null(credentials_connect(&f->conn, NULL, NULL, NULL, f->err, sizeof f->err));
    unsetenv("PGPASSFILE");
    char want[600];
    snprintf(want, sizeof want,
             "connection env: cannot connect (credentials from libpq environment / .pgpass): "
             "connection to server on socket \"%s/.s.PGSQL.5432\" failed: fe_sendauth: no "
             "password supplied",
             g_pg.dir);
    assert_string_equal(f->err, want);
}

/* ---- connection test ------------------------------------------------------ */

typedef struct output {
    int rc;
    char out[4096], err[4096];
} output;

static void slurp(FILE *f, char *buf, size_t len)
{
    rewind(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Run cmd_connection with stdout and stderr captured. */
static void run_cmd(const pgr_config *cfg, int argc, char **argv, output *o)
{
    FILE *out = tmpfile(), *err = tmpfile();
    fflush(stdout);
    fflush(stderr);
    int save1 = dup(1), save2 = dup(2);
    dup2(fileno(out), 1);
    dup2(fileno(err), 2);
    o->rc = cmd_connection(cfg, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(save1, 1);
    dup2(save2, 2);
    close(save1);
    close(save2);
    slurp(out, o->out, sizeof o->out);
    slurp(err, o->err, sizeof o->err);
    assert_clean(o->out);
    assert_clean(o->err);
}

static void make_config(fixture *f, pgr_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->path = (char *)"/etc/pgreviewer/pgreviewer.yaml";
    cfg->vault = f->vcfg;
    cfg->connections = &f->conn;
    cfg->n_connections = 1;
}

static void test_cmd_connection_ok(void **state)
{
    fixture *f = *state;
    pgr_config cfg;
    make_config(f, &cfg);
    char *argv[] = {(char *)"test", (char *)"prod-main", NULL};
    output o;
    run_cmd(&cfg, 2, argv, &o);
    assert_int_equal(o.rc, 0);
    assert_string_equal(o.err, "");
    char *ver = strstr(o.out, "  server:       PostgreSQL 15");
    assert_non_null(ver);
    char *eol = strchr(ver, '\n');
    memmove(ver, eol + 1, strlen(eol + 1) + 1); /* drop the version line */
    assert_string_equal(o.out, "connection prod-main: ok\n"
                               "  connected as: app\n"
                               "  database:     postgres\n"
                               "  credentials:  vault " LOC "\n");
    /* --config PATH after the name is accepted (the caller loaded it). */
    char *argv2[] = {(char *)"test", (char *)"prod-main", (char *)"--config", (char *)"x.yaml",
                     NULL};
    run_cmd(&cfg, 4, argv2, &o);
    assert_int_equal(o.rc, 0);
}

static void test_cmd_connection_failures(void **state)
{
    fixture *f = *state;
    pgr_config cfg;
    make_config(f, &cfg);
    char *argv[] = {(char *)"test", (char *)"prod-main", NULL};
    output o;
    char want[1024];

    /* Wrong password in Vault. */
    set_vault_password(PW3);
    run_cmd(&cfg, 2, argv, &o);
    assert_int_equal(o.rc, 1);
    assert_string_equal(o.out, "");
    snprintf(want, sizeof want,
             "connection prod-main: the server rejected the password from vault " LOC
             ", also after re-reading it from Vault in case it was rotated: connection to server "
             "on socket \"%s/.s.PGSQL.5432\" failed: FATAL:  password authentication failed for "
             "user \"app\"\n",
             g_pg.dir);
    assert_string_equal(o.err, want);

    /* Vault sealed. */
    assert_int_equal(fakevault_ctl(&g_fv, "/seal", "{}"), 0);
    run_cmd(&cfg, 2, argv, &o);
    assert_int_equal(o.rc, 1);
    snprintf(want, sizeof want,
             "connection prod-main: Vault at %s is sealed: unseal it (vault operator unseal) and "
             "retry\n",
             g_fv.address);
    assert_string_equal(o.err, want);
    assert_int_equal(fakevault_ctl(&g_fv, "/unseal", "{}"), 0);

    /* Token revoked. */
    assert_int_equal(fakevault_ctl(&g_fv, "/revoke_all", "{}"), 0);
    run_cmd(&cfg, 2, argv, &o);
    assert_int_equal(o.rc, 1);
    snprintf(want, sizeof want,
             "connection prod-main: Vault at %s rejected the token from vault.auth.token_file: "
             "permission denied (is it expired or revoked?)\n",
             g_fv.address);
    assert_string_equal(o.err, want);

    /* Vault configured with a bad address. */
    cfg.vault.address = (char *)"vault:8200";
    run_cmd(&cfg, 2, argv, &o);
    assert_int_equal(o.rc, 1);
    assert_string_equal(o.err, "connection prod-main: vault: address \"vault:8200\" must start with "
                               "https:// or http://\n");

    /* No vault: section at all. */
    cfg.vault.enabled = false;
    run_cmd(&cfg, 2, argv, &o);
    assert_int_equal(o.rc, 1);
    assert_string_equal(o.err, "connection prod-main: credentials: vault, but the configuration "
                               "has no vault: section\n");
}

static void test_cmd_connection_store(void **state)
{
    fixture *f = *state;
    pgr_config cfg;
    make_config(f, &cfg);
    output o;
    char *argv[] = {(char *)"test", (char *)"store", NULL};
    run_cmd(&cfg, 2, argv, &o);
    assert_int_equal(o.rc, 1);
    assert_string_equal(o.err, "connection store: no store is configured (store.url)\n");
    cfg.store.url = g_pg.conninfo;
    run_cmd(&cfg, 2, argv, &o);
    assert_int_equal(o.rc, 0);
    assert_non_null(strstr(o.out, "  connected as: pgrtest\n"));
    assert_non_null(strstr(o.out, "  credentials:  store.url"));
}

static void test_cmd_connection_usage(void **state)
{
    fixture *f = *state;
    pgr_config cfg;
    make_config(f, &cfg);
    output o;
    char *none[] = {NULL};
    run_cmd(&cfg, 0, none, &o);
    assert_int_equal(o.rc, 2);
    assert_string_equal(o.err, "usage: pgreviewer connection test NAME [--config PATH]\n");
    char *bad[] = {(char *)"probe", (char *)"prod-main", NULL};
    run_cmd(&cfg, 2, bad, &o);
    assert_int_equal(o.rc, 2);
    char *extra[] = {(char *)"test", (char *)"prod-main", (char *)"more", NULL};
    run_cmd(&cfg, 3, extra, &o);
    assert_int_equal(o.rc, 2);

    char *typo[] = {(char *)"test", (char *)"prod-mian", NULL};
    run_cmd(&cfg, 2, typo, &o);
    assert_int_equal(o.rc, 1);
    assert_string_equal(o.err, "connection test: no connection named \"prod-mian\" in "
                               "/etc/pgreviewer/pgreviewer.yaml\n"
                               "  did you mean \"prod-main\"?\n"
                               "  connections defined: prod-main\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keywords_from_vault_and_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vault_without_section, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vault_error_names_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_with_vault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotated_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotated_but_vault_not_updated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_libpq_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmd_connection_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmd_connection_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmd_connection_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cmd_connection_usage, setup, teardown),
    };
    return cmocka_run_group_tests_name("credentials", tests, group_setup, group_teardown);
}
