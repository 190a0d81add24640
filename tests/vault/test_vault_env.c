/*
 * test_vault_env.c - VAULT_TOKEN leaves the process environment.
 *
 * ctest starts this test with VAULT_TOKEN set (tests/vault.cmake), so the
 * token sits in the initial environment block that /proc/PID/environ shows
 * and that forked executors inherit. vault_capture_env_token() must wipe it
 * there, unset it, and still authenticate with it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "fakevault.h"
#include "testenv.h"
#include "util.h"
#include "vault.h"

#define TOKEN "s.ENV-token-known-0bb7e2" /* as set in tests/vault.cmake */

static bool environ_has_token(pid_t pid)
{
    char path[64];
    size_t len = 0;
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    char *env = read_file(path, &len, NULL, 0);
    assert_non_null(env);
    bool found = memmem(env, len, TOKEN, strlen(TOKEN)) != NULL;
    free(env);
    return found;
}

static void test_capture_env_token(void **state)
{
    (void)state;
    assert_true(environ_has_token(getpid()));
    vault_capture_env_token();
    assert_null(getenv("VAULT_TOKEN"));
    assert_false(environ_has_token(getpid()));
    vault_capture_env_token(); /* idempotent */

    /* A forked child (an executor) does not carry it either. */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        char c = 'x';
        if (write(pfd[1], &c, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    close(pfd[1]);
    char c;
    assert_int_equal(read(pfd[0], &c, 1), 1);
    bool child_has = environ_has_token(pid);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(pfd[0]);
    assert_false(child_has);

    /* And the captured token still authenticates. */
    fakevault fv;
    assert_int_equal(fakevault_start(&fv, NULL), 0);
    assert_int_equal(fakevault_ctl(&fv, "/token", "{\"token\": \"" TOKEN "\"}"), 0);
    assert_int_equal(fakevault_ctl(&fv, "/secret",
                                   "{\"path\": \"database/connections/c1\", \"data\": "
                                   "{\"password\": \"p\"}}"),
                     0);
    cfg_vault cfg = {.enabled = true, .address = fv.address, .tls_verify = true,
                     .auth_method = VAULT_AUTH_TOKEN, .cache_ttl_ms = 1000};
    char err[512];
    vault_client *vc = vault_new(&cfg, err, sizeof err);
    assert_non_null(vc);
    json_t *d = NULL;
    int rc = vault_read_secret(vc, "c1", &d, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "read: %s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(json_string_value(json_object_get(d, "password")), "p");
    vault_secret_free(d);
    vault_free(vc);
    fakevault_stop(&fv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture_env_token),
    };
    return cmocka_run_group_tests_name("vault_env", tests, NULL, NULL);
}
