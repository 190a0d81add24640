/*
 * test_vault.c - the Vault client (core/vault.c) against the fake Vault
 * server (tests/vault/fake_vault.py): token and AppRole flows, renewal,
 * re-login, every error class with its exact message, namespaces, TLS,
 * the cache, fork. Every error message is also checked for the known token
 * and secret_id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "fakevault.h"
#include "testenv.h"
#include "util.h"
#include "vault.h"

#define TOKEN "s.TOKEN-known-7f3a9c"
#define ROLE_ID "role-id-known-51b2"
#define SECRET_ID "secret-id-KNOWN-c0ffee"
#define PASSWORD "pw-KNOWN-83d1e7"
#define LOC "secret/data/database/connections/prod-main"
#define READ_PATH "GET /v1/" LOC

typedef struct fixture {
    fakevault fv;
    cfg_vault cfg;
    vault_client *vc;
    char err[2048];
} fixture;

/* No message may carry a secret. */
static void assert_clean(const char *msg)
{
    assert_null(strstr(msg, TOKEN));
    assert_null(strstr(msg, SECRET_ID));
    assert_null(strstr(msg, PASSWORD));
}

static void put_secret(fixture *f, const char *ns)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"namespace\": \"%s\", \"path\": \"database/connections/prod-main\", \"data\": "
             "{\"username\": \"app\", \"password\": \"" PASSWORD "\", \"port\": 5432}}",
             ns);
    assert_int_equal(fakevault_ctl(&f->fv, "/secret", body), 0);
}

static void token_cfg(fixture *f)
{
    f->cfg.auth_method = VAULT_AUTH_TOKEN;
    f->cfg.token_file = (char *)fakevault_file(&f->fv, "token", TOKEN "\n");
}

static void approle_cfg(fixture *f)
{
    f->cfg.auth_method = VAULT_AUTH_APPROLE;
    f->cfg.role_id_file = (char *)fakevault_file(&f->fv, "role_id", ROLE_ID "\n");
    f->cfg.secret_id_file = (char *)fakevault_file(&f->fv, "secret_id", SECRET_ID "\n");
}

static void add_approle(fixture *f, int ttl, const char *paths)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"role_id\": \"" ROLE_ID "\", \"secret_id\": \"" SECRET_ID
             "\", \"ttl\": %d, \"renewable\": true, \"paths\": %s}",
             ttl, paths ? paths : "[\"*\"]");
    assert_int_equal(fakevault_ctl(&f->fv, "/approle", body), 0);
}

static void add_token(fixture *f, int ttl, const char *ns)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"token\": \"" TOKEN "\", \"ttl\": %d, \"renewable\": true, \"namespace\": \"%s\"}",
             ttl, ns);
    assert_int_equal(fakevault_ctl(&f->fv, "/token", body), 0);
}

/* One server per group (python3 takes most of a second to start here);
 * each test begins with a /reset. */
static fakevault g_fv;

static int group_setup_with(const char *cert_dir)
{
    return fakevault_start(&g_fv, cert_dir);
}

static int group_setup(void **state)
{
    (void)state;
    return group_setup_with(NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    fakevault_stop(&g_fv);
    return 0;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->fv = g_fv;
    if (fakevault_ctl(&f->fv, "/reset", "{}") < 0)
        return -1;
    f->cfg.enabled = true;
    f->cfg.address = f->fv.address;
    f->cfg.tls_verify = true;
    f->cfg.cache_ttl_ms = 60000;
    f->cfg.timeout_ms = 3000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    vault_free(f->vc);
    free(f);
    return 0;
}

static void make_client(fixture *f)
{
    f->vc = vault_new(&f->cfg, f->err, sizeof f->err);
    if (!f->vc)
        fail_msg("vault_new: %s", f->err);
}

/* Read prod-main; on success check the password; returns the rc. */
static int read_prod(fixture *f)
{
    json_t *data = NULL;
    f->err[0] = '\0';
    int rc = vault_read_secret(f->vc, "prod-main", &data, f->err, sizeof f->err);
    if (rc == 0) {
        assert_non_null(data);
        assert_string_equal(json_string_value(json_object_get(data, "password")), PASSWORD);
        assert_int_equal(json_integer_value(json_object_get(data, "port")), 5432);
    } else {
        assert_null(data);
        assert_clean(f->err);
    }
    vault_secret_free(data);
    return rc;
}

static void expect_read_error(fixture *f, const char *message)
{
    assert_int_equal(read_prod(f), -1);
    assert_string_equal(f->err, message);
}

static int count(fixture *f, const char *what)
{
    return fakevault_count(&f->fv, what);
}

/* ---- authentication flows ---------------------------------------------- */

static void test_token_file_flow(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    token_cfg(f);
    make_client(f);
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, "GET /v1/auth/token/lookup-self"), 1);
    assert_int_equal(count(f, READ_PATH), 1);
    assert_int_equal(vault_renew_due_ms(f->vc), 0); /* ttl 0: never renewed */
}

static void test_token_from_environment(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    f->cfg.auth_method = VAULT_AUTH_TOKEN;
    setenv("VAULT_TOKEN", TOKEN, 1);
    make_client(f);
    int rc = read_prod(f);
    unsetenv("VAULT_TOKEN");
    assert_int_equal(rc, 0);
}

static void test_no_token(void **state)
{
    fixture *f = *state;
    f->cfg.auth_method = VAULT_AUTH_TOKEN;
    unsetenv("VAULT_TOKEN");
    make_client(f);
    expect_read_error(f, "no Vault token: set vault.auth.token_file or the VAULT_TOKEN "
                         "environment variable");
    assert_int_equal(count(f, READ_PATH), 0);
}

static void test_auth_files_vanish(void **state)
{
    fixture *f = *state;
    token_cfg(f);
    make_client(f);
    fakevault_file(&f->fv, "token", "\n");
    char want[600];
    snprintf(want, sizeof want, "vault.auth.token_file: %s: the file is empty", f->cfg.token_file);
    expect_read_error(f, want);
    unlink(f->cfg.token_file);
    snprintf(want, sizeof want, "vault.auth.token_file: %s: cannot open: No such file or directory",
             f->cfg.token_file);
    expect_read_error(f, want);

    vault_free(f->vc);
    approle_cfg(f);
    make_client(f);
    unlink(f->cfg.secret_id_file);
    snprintf(want, sizeof want,
             "vault.auth.secret_id_file: %s: cannot open: No such file or directory",
             f->cfg.secret_id_file);
    expect_read_error(f, want);
    assert_int_equal(count(f, "POST /v1/auth/approle/login"), 0);
}

static void test_approle_in_namespace(void **state)
{
    fixture *f = *state;
    assert_int_equal(fakevault_ctl(&f->fv, "/approle",
                                   "{\"namespace\": \"team-b\", \"role_id\": \"" ROLE_ID
                                   "\", \"secret_id\": \"" SECRET_ID "\"}"),
                     0);
    put_secret(f, "team-b");
    approle_cfg(f);
    f->cfg.namespace_ = (char *)"team-b/"; /* a trailing slash is how Vault's CLI often shows it */
    make_client(f);
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, "POST /v1/auth/approle/login"), 1);
}

static void test_token_rejected(void **state)
{
    fixture *f = *state;
    put_secret(f, "");
    token_cfg(f); /* the server does not know it */
    make_client(f);
    char want[512];
    snprintf(want, sizeof want,
             "Vault at %s rejected the token from vault.auth.token_file: permission denied (is it "
             "expired or revoked?)",
             f->fv.address);
    expect_read_error(f, want);
}

static void test_approle_flow(void **state)
{
    fixture *f = *state;
    add_approle(f, 3600, NULL);
    put_secret(f, "");
    approle_cfg(f);
    make_client(f);
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, "POST /v1/auth/approle/login"), 1);
    assert_int_equal(count(f, READ_PATH), 1);
    int64_t due = vault_renew_due_ms(f->vc) - mono_ms();
    assert_true(due > 2300 * 1000 && due <= 2400 * 1000); /* 2/3 of an hour */
}

static void test_approle_custom_mount(void **state)
{
    fixture *f = *state;
    assert_int_equal(fakevault_ctl(&f->fv, "/approle",
                                   "{\"mount\": \"svc-login\", \"role_id\": \"" ROLE_ID
                                   "\", \"secret_id\": \"" SECRET_ID "\"}"),
                     0);
    put_secret(f, "");
    approle_cfg(f);
    f->cfg.approle_mount = (char *)"svc-login";
    make_client(f);
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, "POST /v1/auth/svc-login/login"), 1);
}

static void test_approle_bad_secret_id(void **state)
{
    fixture *f = *state;
    assert_int_equal(fakevault_ctl(&f->fv, "/approle",
                                   "{\"role_id\": \"" ROLE_ID "\", \"secret_id\": \"other\"}"),
                     0);
    put_secret(f, "");
    approle_cfg(f);
    make_client(f);
    char want[512];
    snprintf(want, sizeof want,
             "Vault AppRole login at %s (auth/approle/login) failed: HTTP 400: invalid role or "
             "secret ID; check vault.auth.role_id_file, vault.auth.secret_id_file and "
             "vault.auth.mount",
             f->fv.address);
    expect_read_error(f, want);
    assert_int_equal(count(f, READ_PATH), 0);
}

/* ---- renewal and re-login ---------------------------------------------- */

static bool renewal_due(void *arg)
{
    fixture *f = arg;
    return mono_ms() >= vault_renew_due_ms(f->vc);
}

static void test_renewal_at_two_thirds(void **state)
{
    fixture *f = *state;
    add_approle(f, 2, NULL); /* 2 s: renewal due after ~1.33 s, 0.67 s before expiry */
    put_secret(f, "");
    approle_cfg(f);
    f->cfg.cache_ttl_ms = 0;
    make_client(f);
    assert_int_equal(read_prod(f), 0);
    int64_t first_due = vault_renew_due_ms(f->vc);
    assert_true(first_due > 0);
    assert_int_equal(read_prod(f), 0); /* not due yet: no renewal */
    assert_int_equal(count(f, "POST /v1/auth/token/renew-self"), 0);
    assert_true(wait_until(renewal_due, f, 3000));
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, "POST /v1/auth/token/renew-self"), 1);
    assert_int_equal(count(f, "POST /v1/auth/approle/login"), 1);
    assert_true(vault_renew_due_ms(f->vc) > first_due);
}

static void test_renewal_while_reads_are_cached(void **state)
{
    fixture *f = *state;
    add_approle(f, 2, NULL);
    put_secret(f, "");
    approle_cfg(f);
    make_client(f); /* cache_ttl 60 s: every later read is a cache hit */
    assert_int_equal(read_prod(f), 0);
    assert_true(wait_until(renewal_due, f, 3000));
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, "POST /v1/auth/token/renew-self"), 1);
    assert_int_equal(count(f, READ_PATH), 1);
}

static void test_relogin_when_renewal_fails(void **state)
{
    fixture *f = *state;
    add_approle(f, 1, NULL);
    put_secret(f, "");
    approle_cfg(f);
    f->cfg.cache_ttl_ms = 0;
    make_client(f);
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(fakevault_ctl(&f->fv, "/fail",
                                   "{\"prefix\": \"/v1/auth/token/renew-self\", \"status\": 403, "
                                   "\"errors\": [\"permission denied\"]}"),
                     0);
    assert_true(wait_until(renewal_due, f, 3000));
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, "POST /v1/auth/token/renew-self"), 1);
    assert_int_equal(count(f, "POST /v1/auth/approle/login"), 2);
    assert_int_equal(count(f, READ_PATH), 2);
}

static void test_maintain_renews_without_a_read(void **state)
{
    fixture *f = *state;
    add_approle(f, 2, NULL);
    approle_cfg(f);
    make_client(f);
    assert_int_equal(vault_renew_due_ms(f->vc), 0); /* lazy: nothing yet */
    assert_int_equal(vault_maintain(f->vc, f->err, sizeof f->err), 0);
    assert_int_equal(count(f, "POST /v1/auth/approle/login"), 1);
    assert_true(wait_until(renewal_due, f, 3000));
    assert_int_equal(vault_maintain(f->vc, f->err, sizeof f->err), 0);
    assert_int_equal(count(f, "POST /v1/auth/token/renew-self"), 1);
}

static void test_relogin_after_403(void **state)
{
    fixture *f = *state;
    add_approle(f, 3600, NULL);
    put_secret(f, "");
    approle_cfg(f);
    make_client(f);
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(fakevault_ctl(&f->fv, "/revoke_all", "{}"), 0);
    vault_invalidate(f->vc, "prod-main");
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, "POST /v1/auth/approle/login"), 2);
    assert_int_equal(count(f, READ_PATH), 3); /* ok, 403, ok */
}

static void test_token_file_reread_after_403(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    token_cfg(f);
    f->cfg.cache_ttl_ms = 0;
    make_client(f);
    assert_int_equal(read_prod(f), 0);
    /* An agent rotates the token file; the old token is revoked. */
    assert_int_equal(fakevault_ctl(&f->fv, "/revoke_all", "{}"), 0);
    assert_int_equal(fakevault_ctl(&f->fv, "/token", "{\"token\": \"s.rotated-token\"}"), 0);
    fakevault_file(&f->fv, "token", "s.rotated-token\n");
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, "GET /v1/auth/token/lookup-self"), 2);
}

/* ---- error classes -------------------------------------------------------- */

static void test_permission_denied(void **state)
{
    fixture *f = *state;
    add_approle(f, 3600, "[\"secret/data/other/*\"]");
    put_secret(f, "");
    approle_cfg(f);
    make_client(f);
    expect_read_error(f, "Vault denied reading " LOC ": permission denied: the token/role lacks a "
                         "policy granting read on " LOC);
    assert_int_equal(count(f, "POST /v1/auth/approle/login"), 2); /* one re-login, no more */
    assert_int_equal(count(f, READ_PATH), 2);
}

static void test_not_found(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    token_cfg(f);
    make_client(f);
    expect_read_error(f, "no secret in Vault at " LOC " (vault.kv_mount \"secret\", path "
                         "\"database/connections/prod-main\" from vault.path_template): write the "
                         "secret there or fix kv_mount/path_template");
}

static void test_custom_mount_and_template(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    assert_int_equal(fakevault_ctl(&f->fv, "/secret",
                                   "{\"mount\": \"kv\", \"path\": \"pg/prod-main/creds\", "
                                   "\"data\": {\"password\": \"" PASSWORD "\", \"port\": 5432}}"),
                     0);
    token_cfg(f);
    f->cfg.kv_mount = (char *)"kv";
    f->cfg.path_template = (char *)"pg/{connection_id}/creds";
    make_client(f);
    char *loc = vault_secret_location(f->vc, "prod-main", f->err, sizeof f->err);
    assert_string_equal(loc, "kv/data/pg/prod-main/creds");
    free(loc);
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, "GET /v1/kv/data/pg/prod-main/creds"), 1);
}

static void test_server_error(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    token_cfg(f);
    make_client(f);
    assert_int_equal(fakevault_ctl(&f->fv, "/fail",
                                   "{\"prefix\": \"/v1/secret/\", \"status\": 500, \"errors\": "
                                   "[\"internal error\", \"storage backend unavailable\"]}"),
                     0);
    char want[512];
    snprintf(want, sizeof want,
             "Vault at %s failed reading " LOC
             ": HTTP 500: internal error; storage backend unavailable",
             f->fv.address);
    expect_read_error(f, want);
    assert_int_equal(read_prod(f), 0); /* the fault was one-shot */
}

static void test_sealed(void **state)
{
    fixture *f = *state;
    add_approle(f, 3600, NULL);
    put_secret(f, "");
    approle_cfg(f);
    make_client(f);
    assert_int_equal(fakevault_ctl(&f->fv, "/seal", "{}"), 0);
    char want[512];
    snprintf(want, sizeof want, "Vault at %s is sealed: unseal it (vault operator unseal) and retry",
             f->fv.address);
    expect_read_error(f, want); /* sealed at login */
    assert_int_equal(fakevault_ctl(&f->fv, "/unseal", "{}"), 0);
    assert_int_equal(read_prod(f), 0);
    vault_invalidate(f->vc, "prod-main");
    assert_int_equal(fakevault_ctl(&f->fv, "/seal", "{}"), 0);
    expect_read_error(f, want); /* sealed at the read */
}

static void test_other_503_is_not_sealed(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    token_cfg(f);
    make_client(f);
    assert_int_equal(fakevault_ctl(&f->fv, "/fail",
                                   "{\"prefix\": \"/v1/secret/\", \"status\": 503, \"errors\": "
                                   "[\"Vault is in standby mode\"]}"),
                     0);
    char want[512];
    snprintf(want, sizeof want, "Vault at %s failed reading " LOC ": HTTP 503: Vault is in standby mode",
             f->fv.address);
    expect_read_error(f, want);
}

static void test_connection_refused(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    token_cfg(f);
    f->cfg.address = (char *)"http://127.0.0.1:1/";
    make_client(f);
    expect_read_error(f, "cannot connect to Vault at http://127.0.0.1:1: connection refused");
}

static void test_timeout(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    token_cfg(f);
    f->cfg.timeout_ms = 300;
    make_client(f);
    assert_int_equal(fakevault_ctl(&f->fv, "/delay", "{\"ms\": 2000}"), 0);
    char want[512];
    snprintf(want, sizeof want, "Vault at %s did not answer within 300ms (vault.timeout)",
             f->fv.address);
    int64_t t0 = mono_ms();
    expect_read_error(f, want);
    assert_true(mono_ms() - t0 < 1500);
}

static void test_malformed_answers(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    token_cfg(f);
    make_client(f);
    char want[512];
    assert_int_equal(fakevault_ctl(&f->fv, "/fail",
                                   "{\"prefix\": \"/v1/secret/\", \"status\": 200, \"raw\": "
                                   "\"<html>proxy error</html>\"}"),
                     0);
    snprintf(want, sizeof want, "Vault at %s sent a malformed answer to reading " LOC ": not JSON",
             f->fv.address);
    expect_read_error(f, want);
    assert_int_equal(fakevault_ctl(&f->fv, "/fail",
                                   "{\"prefix\": \"/v1/secret/\", \"status\": 200, \"raw\": "
                                   "\"{\\\"data\\\": {\\\"password\\\": \\\"x\\\"}}\"}"),
                     0);
    snprintf(want, sizeof want,
             "Vault at %s sent a malformed answer to reading " LOC ": no \"data.data\" object",
             f->fv.address);
    expect_read_error(f, want);
    /* A login answer without a token. */
    approle_cfg(f);
    vault_free(f->vc);
    make_client(f);
    add_approle(f, 3600, NULL);
    assert_int_equal(fakevault_ctl(&f->fv, "/fail",
                                   "{\"prefix\": \"/v1/auth/approle/login\", \"status\": 200, "
                                   "\"raw\": \"{\\\"auth\\\": null}\"}"),
                     0);
    snprintf(want, sizeof want,
             "Vault at %s sent a malformed answer to AppRole login (auth/approle/login): no "
             "auth.client_token and auth.lease_duration",
             f->fv.address);
    expect_read_error(f, want);
}

/* A server (or a proxy) that echoes secrets in its errors: masked. */
static void test_echoed_secrets_are_redacted(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    token_cfg(f);
    make_client(f);
    assert_int_equal(fakevault_ctl(&f->fv, "/fail",
                                   "{\"prefix\": \"/v1/secret/\", \"status\": 500, \"errors\": "
                                   "[\"token " TOKEN " hit a storage error\"]}"),
                     0);
    char want[512];
    snprintf(want, sizeof want,
             "Vault at %s failed reading " LOC ": HTTP 500: token [redacted] hit a storage error",
             f->fv.address);
    expect_read_error(f, want);

    vault_free(f->vc);
    approle_cfg(f);
    add_approle(f, 3600, NULL);
    make_client(f);
    assert_int_equal(fakevault_ctl(&f->fv, "/fail",
                                   "{\"prefix\": \"/v1/auth/approle/login\", \"status\": 400, "
                                   "\"errors\": [\"bad secret_id " SECRET_ID " for role " ROLE_ID
                                   "\"]}"),
                     0);
    snprintf(want, sizeof want,
             "Vault AppRole login at %s (auth/approle/login) failed: HTTP 400: bad secret_id "
             "[redacted] for role [redacted]; check vault.auth.role_id_file, "
             "vault.auth.secret_id_file and vault.auth.mount",
             f->fv.address);
    expect_read_error(f, want);
}

static void test_answer_too_big(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    token_cfg(f);
    make_client(f);
    size_t n = 1100 * 1000;
    char *body = malloc(n + 100);
    int off = snprintf(body, 100, "{\"prefix\": \"/v1/secret/\", \"status\": 200, \"raw\": \"");
    memset(body + off, 'x', n);
    strcpy(body + off + n, "\"}");
    assert_int_equal(fakevault_ctl(&f->fv, "/fail", body), 0);
    free(body);
    char want[512];
    snprintf(want, sizeof want,
             "Vault at %s sent a malformed answer to reading " LOC ": larger than 1048576 bytes",
             f->fv.address);
    expect_read_error(f, want);
}

static void test_bad_connection_id(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    token_cfg(f);
    make_client(f);
    json_t *data = NULL;
    assert_int_equal(vault_read_secret(f->vc, "../sys", &data, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "connection id \"../sys\" cannot be used in a Vault path: it must "
                                "be non-empty, not \".\" or \"..\", without '/', '?', '#', '%' "
                                "or spaces");
    assert_int_equal(count(f, "GET /v1/auth/token/lookup-self"), 0);
}

static void test_config_errors(void **state)
{
    fixture *f = *state;
    char err[512];
    cfg_vault c = {.enabled = true};
    assert_null(vault_new(&c, err, sizeof err));
    assert_string_equal(err, "vault: address is required (e.g. https://vault.internal:8200)");
    c.address = (char *)"vault.internal:8200";
    assert_null(vault_new(&c, err, sizeof err));
    assert_string_equal(err, "vault: address \"vault.internal:8200\" must start with https:// or "
                             "http://");
    c.address = f->fv.address;
    c.ca_file = (char *)"/nonexistent/ca.pem";
    assert_null(vault_new(&c, err, sizeof err));
    assert_string_equal(err, "vault: ca_file /nonexistent/ca.pem: cannot read: No such file or "
                             "directory");
    c.ca_file = NULL;
    c.auth_method = VAULT_AUTH_APPROLE;
    assert_null(vault_new(&c, err, sizeof err));
    assert_string_equal(err, "vault: auth.role_id_file is required");
}

/* ---- namespaces, TLS, cache, fork ---------------------------------------- */

static void test_namespace_header(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "team-a");
    put_secret(f, "team-a");
    token_cfg(f);
    f->cfg.namespace_ = (char *)"team-a";
    make_client(f);
    assert_int_equal(read_prod(f), 0);
    json_t *st = fakevault_stats(&f->fv);
    json_t *ns = json_object_get(st, "namespaces"), *v;
    size_t i;
    assert_int_equal(json_array_size(ns), 2);
    json_array_foreach(ns, i, v)
        assert_string_equal(json_string_value(v), "team-a");
    json_decref(st);

    /* Without the header the token (of team-a) is not valid at the root. */
    vault_free(f->vc);
    f->cfg.namespace_ = NULL;
    make_client(f);
    assert_int_equal(read_prod(f), -1);
    assert_non_null(strstr(f->err, "rejected the token"));
}

static bool time_reached(void *arg)
{
    return mono_ms() >= *(int64_t *)arg;
}

static void test_cache_ttl(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    token_cfg(f);
    f->cfg.cache_ttl_ms = 300;
    make_client(f);
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, READ_PATH), 1); /* the second from the cache */
    vault_invalidate(f->vc, "prod-main");
    int64_t t = mono_ms();
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, READ_PATH), 2);
    int64_t expired = t + 350;
    assert_true(wait_until(time_reached, &expired, 2000)); /* let the entry expire */
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, READ_PATH), 3);
}

static void test_no_cache(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    token_cfg(f);
    f->cfg.cache_ttl_ms = 0;
    make_client(f);
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, READ_PATH), 2);
}

static void test_rotation_seen_after_invalidate(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    token_cfg(f);
    make_client(f);
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(fakevault_ctl(&f->fv, "/secret",
                                   "{\"path\": \"database/connections/prod-main\", \"data\": "
                                   "{\"password\": \"rotated\"}}"),
                     0);
    json_t *d = NULL;
    assert_int_equal(vault_read_secret(f->vc, "prod-main", &d, f->err, sizeof f->err), 0);
    assert_string_equal(json_string_value(json_object_get(d, "password")), PASSWORD); /* cached */
    vault_secret_free(d);
    vault_invalidate(f->vc, "prod-main");
    assert_int_equal(vault_read_secret(f->vc, "prod-main", &d, f->err, sizeof f->err), 0);
    assert_string_equal(json_string_value(json_object_get(d, "password")), "rotated");
    vault_secret_free(d);
}

static void test_fork_child_uses_its_own_handle(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    token_cfg(f);
    f->cfg.cache_ttl_ms = 0;
    make_client(f);
    assert_int_equal(read_prod(f), 0); /* the parent's handle has a kept-alive connection */
    pid_t pid = fork();
    if (pid == 0) {
        json_t *d = NULL;
        char err[512];
        int ok = 1;
        for (int i = 0; i < 3; i++)
            ok &= vault_read_secret(f->vc, "prod-main", &d, err, sizeof err) == 0;
        vault_secret_free(d);
        vault_free(f->vc);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, READ_PATH), 5);
}

static void test_redact(void **state)
{
    (void)state;
    char msg[64] = "a SECRET b SECRET";
    vault_redact(msg, sizeof msg, "SECRET");
    assert_string_equal(msg, "a [redacted] b [redacted]");
    vault_redact(msg, sizeof msg, NULL);
    vault_redact(msg, sizeof msg, "");
    assert_string_equal(msg, "a [redacted] b [redacted]");
}

/* TLS: one certificate for the group. */
static char g_cert_dir[256];

static int group_setup_tls(void **state)
{
    (void)state;
    return group_setup_with(g_cert_dir);
}

static void test_tls_with_ca_file(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    token_cfg(f);
    f->cfg.ca_file = f->fv.cert;
    make_client(f);
    assert_int_equal(read_prod(f), 0);
}

static void test_tls_verification_failure(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    token_cfg(f);
    make_client(f); /* the system CA bundle does not know our certificate */
    assert_int_equal(read_prod(f), -1);
    char head[256];
    snprintf(head, sizeof head, "TLS verification of Vault at %s failed: ", f->fv.address);
    assert_memory_equal(f->err, head, strlen(head));
    assert_true(str_has_suffix(f->err, "; set vault.ca_file to the CA certificate that signed "
                                       "Vault's certificate"));
    assert_int_equal(count(f, "GET /v1/auth/token/lookup-self"), 0); /* never reached */
}

static void test_tls_ca_file_not_pem(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    token_cfg(f);
    f->cfg.ca_file = (char *)fakevault_file(&f->fv, "not-a-ca.pem", "hello\n");
    make_client(f);
    assert_int_equal(read_prod(f), -1);
    char head[600];
    snprintf(head, sizeof head, "vault.ca_file %s cannot be used as a CA bundle: ", f->cfg.ca_file);
    if (strncmp(f->err, head, strlen(head)) != 0)
        fail_msg("unexpected: %s", f->err);
}

/* Over TLS a shared connection would be fatal: the child's records would
 * break the parent's session. The child must use its own handle. */
static void test_tls_fork(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    token_cfg(f);
    f->cfg.ca_file = f->fv.cert;
    f->cfg.cache_ttl_ms = 0;
    make_client(f);
    assert_int_equal(read_prod(f), 0);
    pid_t pid = fork();
    if (pid == 0) {
        json_t *d = NULL;
        char err[512];
        int ok = 1;
        for (int i = 0; i < 3; i++) {
            ok &= vault_read_secret(f->vc, "prod-main", &d, err, sizeof err) == 0;
            vault_secret_free(d);
        }
        vault_free(f->vc);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(read_prod(f), 0);
    assert_int_equal(count(f, READ_PATH), 7);
    json_t *stats = fakevault_stats(&f->fv);
    assert_int_equal(json_integer_value(json_object_get(stats, "tls_errors")), 0);
    /* The parent kept its connection; the child had one of its own. */
    assert_int_equal(json_integer_value(json_object_get(stats, "connections")), 2);
    json_decref(stats);
}

static void test_tls_verify_off(void **state)
{
    fixture *f = *state;
    add_token(f, 0, "");
    put_secret(f, "");
    token_cfg(f);
    f->cfg.tls_verify = false;
    make_client(f);
    assert_int_equal(read_prod(f), 0);
}

int main(void)
{
    const struct CMUnitTest plain[] = {
        cmocka_unit_test_setup_teardown(test_token_file_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_from_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_files_vanish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_approle_in_namespace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_approle_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_approle_custom_mount, setup, teardown),
        cmocka_unit_test_setup_teardown(test_approle_bad_secret_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renewal_at_two_thirds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renewal_while_reads_are_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relogin_when_renewal_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maintain_renews_without_a_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relogin_after_403, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_file_reread_after_403, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permission_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_custom_mount_and_template, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_503_is_not_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echoed_secrets_are_redacted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_connection_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_namespace_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_seen_after_invalidate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork_child_uses_its_own_handle, setup, teardown),
        cmocka_unit_test(test_redact),
    };
    const struct CMUnitTest tls[] = {
        cmocka_unit_test_setup_teardown(test_tls_with_ca_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_verification_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_ca_file_not_pem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_fork, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_verify_off, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("vault", plain, group_setup, group_teardown);

    snprintf(g_cert_dir, sizeof g_cert_dir, "/tmp/pgr-vault-cert-XXXXXX");
    if (!mkdtemp(g_cert_dir) || fakevault_make_cert(g_cert_dir) < 0)
        return 1;
    failed += cmocka_run_group_tests_name("vault_tls", tls, group_setup_tls, group_teardown);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_cert_dir);
    run_capture(cmd, NULL);
    return failed;
}
