/*
 * test_config.c - the configuration loader (core/config.c) against the
 * fixtures in tests/data/config/: a full configuration with includes (every
 * value and every default checked), the example configuration at the
 * repository root, and each kind of mistake, asserting the exact
 * "file:line:column: message" lines.
 *
 * The tests run from tests/data/config so that file names in messages are
 * short and exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char data_dir[PATH_MAX];

static int chdir_data(void **state)
{
    const char *src = getenv("PGR_SOURCE_DIR");
    assert_non_null(src);
    snprintf(data_dir, sizeof data_dir, "%s/tests/data/config", src);
    assert_int_equal(chdir(data_dir), 0);
    return 0;
}

/* Load a fixture that must fail; returns its error text (caller frees). */
static char *load_errors(const char *file)
{
    char *errors = NULL;
    pgr_config *cfg = config_load(file, &errors);
    assert_null(cfg);
    assert_non_null(errors);
    return errors;
}

static void assert_errors(const char *file, const char *expected)
{
    char *errors = load_errors(file);
    assert_string_equal(errors, expected);
    free(errors);
}

static pgr_config *load_ok(const char *file)
{
    char *errors = NULL;
    pgr_config *cfg = config_load(file, &errors);
    if (!cfg)
        fail_msg("%s did not load:\n%s", file, errors);
    assert_null(errors);
    return cfg;
}

static char *in_data(const char *rel)
{
    static char buf[PATH_MAX + 64];
    snprintf(buf, sizeof buf, "%s/%s", data_dir, rel);
    return buf;
}

static void assert_json(const json_t *got, const char *expected_text)
{
    json_t *want = json_loads(expected_text, 0, NULL);
    assert_non_null(want);
    if (!json_equal((json_t *)got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS);
        fail_msg("JSON differs: got %s, want %s", g, expected_text);
    }
    json_decref(want);
}

/* ---------------------------------------------------------------------- */

static void full_sections(void **state)
{
    pgr_config *cfg = load_ok("full/pgreviewer.yaml");
    char full_dir[PATH_MAX];
    assert_non_null(realpath("full", full_dir));

    assert_string_equal(cfg->path, "full/pgreviewer.yaml");
    assert_string_equal(cfg->base_dir, full_dir);
    assert_string_equal(cfg->store.url, "postgresql:///pgreviewer?host=/run/postgresql");
    assert_int_equal(cfg->store.retention_ms, 7LL * 86400 * 1000);
    assert_int_equal(cfg->store.retention_per_task, 100);
    assert_string_equal(cfg->queue.url, "redis://127.0.0.1:6379/0");
    assert_string_equal(cfg->queue.prefix, "pgr-test");

    const cfg_vault *v = &cfg->vault;
    assert_true(v->enabled);
    assert_string_equal(v->address, "https://vault.internal:8200");
    assert_string_equal(v->namespace_, "team-a");
    assert_string_equal(v->ca_file, "/etc/ssl/certs/vault-ca.pem");
    assert_false(v->tls_verify);
    assert_int_equal(v->auth_method, VAULT_AUTH_APPROLE);
    assert_null(v->token_file);
    assert_string_equal(v->role_id_file, in_data("full/secrets/role_id"));
    assert_string_equal(v->secret_id_file, "/etc/pgreviewer/secret_id");
    assert_string_equal(v->approle_mount, "approle-pgr");
    assert_string_equal(v->kv_mount, "kv");
    assert_string_equal(v->path_template, "db/{connection_id}");
    assert_int_equal(v->cache_ttl_ms, 120000);
    assert_int_equal(v->timeout_ms, 3000);
    assert_string_equal(v->mark.file, "full/pgreviewer.yaml");
    assert_int_equal(v->mark.line, 12);
    assert_int_equal(v->mark.col, 1);

    assert_int_equal(cfg->workers.processes, 3);
    assert_int_equal(cfg->workers.max_tasks_per_process, 50);
    assert_int_equal(cfg->workers.max_memory_per_process, 512LL * 1024 * 1024);
    assert_int_equal(cfg->workers.prefetch, 2);
    assert_int_equal(cfg->workers.shutdown_grace_ms, 60000);
    assert_int_equal(cfg->workers.kill_grace_ms, 250);

    assert_string_equal(cfg->plugins.directory, in_data("full/plugins"));
    assert_json(cfg->plugins.config, "{\"log_analysis\": {\"max_line_length\": 4096,"
                                     " \"sample\": true}, \"report\": {}}");
    assert_string_equal(cfg->api.listen, "0.0.0.0:9090");
    assert_string_equal(cfg->logging.level, "debug");
    assert_string_equal(cfg->logging.format, "json");

    assert_string_equal(cfg->defaults.timezone, "Europe/Berlin");
    assert_int_equal(cfg->defaults.timeout_ms, 90 * 60 * 1000);
    assert_int_equal(cfg->defaults.retry.max_attempts, 6);
    assert_int_equal(cfg->defaults.retry.initial_ms, 10000);
    assert_true(cfg->defaults.retry.multiplier == 1.5);
    assert_int_equal(cfg->defaults.retry.max_delay_ms, 20 * 60 * 1000);
    assert_int_equal(cfg->defaults.retry.jitter, JITTER_EQUAL);
    config_free(cfg);
}

static void full_connections(void **state)
{
    pgr_config *cfg = load_ok("full/pgreviewer.yaml");
    assert_int_equal(cfg->n_connections, 3);

    /* fragments in name order, then the second glob of the include list */
    const cfg_connection *c = &cfg->connections[0];
    assert_string_equal(c->id, "prod-main");
    assert_string_equal(c->host, "db1.internal");
    assert_int_equal(c->port, 5433);
    assert_string_equal(c->database, "app");
    assert_null(c->username);
    assert_int_equal(c->credentials, CRED_VAULT);
    assert_null(c->password_file);
    assert_string_equal(c->sslmode, "verify-full");
    assert_int_equal(c->connect_timeout_ms, 5000);
    assert_json(c->options, "{\"application_name\": \"pgreviewer\", \"keepalives\": \"1\"}");
    assert_string_equal(c->mark.file, "full/conf.d/10-connections.yaml");
    assert_int_equal(c->mark.line, 2);
    assert_int_equal(c->mark.col, 5);

    c = &cfg->connections[1];
    assert_string_equal(c->id, "reporting");
    assert_string_equal(c->host, "/var/run/postgresql");
    assert_int_equal(c->port, 0);
    assert_null(c->database);
    assert_string_equal(c->username, "reviewer");
    assert_int_equal(c->credentials, CRED_PASSWORD_FILE);
    assert_string_equal(c->password_file, in_data("full/reporting.pw"));
    assert_null(c->sslmode);
    assert_int_equal(c->connect_timeout_ms, 10000);
    assert_null(c->options);

    c = &cfg->connections[2];
    assert_string_equal(c->id, "third");
    assert_null(c->host);
    assert_int_equal(c->credentials, CRED_LIBPQ);
    assert_string_equal(c->mark.file, "full/extra.yaml");

    assert_ptr_equal(config_find_connection(cfg, "reporting"), &cfg->connections[1]);
    assert_null(config_find_connection(cfg, "store"));
    assert_null(config_find_connection(cfg, "nope"));
    config_free(cfg);
}

static void full_tasks(void **state)
{
    pgr_config *cfg = load_ok("full/pgreviewer.yaml");
    assert_int_equal(cfg->n_tasks, 3);

    const cfg_task *t = &cfg->tasks[0];
    assert_string_equal(t->name, "nightly-log-review");
    assert_string_equal(t->description, "the night's slow queries");
    assert_string_equal(t->type, "log_analysis");
    assert_string_equal(t->connection, "prod-main");
    assert_string_equal(t->schedule, "0 2 * * *");
    assert_string_equal(t->timezone, "Asia/Yekaterinburg");
    assert_int_equal(t->priority, 7);
    assert_int_equal(t->timeout_ms, 600000);
    assert_int_equal(t->concurrency, CONC_REPLACE);
    assert_int_equal(t->misfire, MISFIRE_RUN_ALL);
    assert_int_equal(t->misfire_grace_ms, 2 * 3600 * 1000);
    assert_int_equal(t->misfire_max_runs, 3);
    assert_int_equal(t->jitter_ms, 30000);
    assert_false(t->enabled);
    /* retry: the task's own fields over defaults.retry */
    assert_int_equal(t->retry.max_attempts, 3);
    assert_int_equal(t->retry.initial_ms, 60000);
    assert_true(t->retry.multiplier == 1.5);
    assert_int_equal(t->retry.max_delay_ms, 300000);
    assert_int_equal(t->retry.jitter, JITTER_EQUAL);
    assert_json(t->params, "{\"source\": \"server\", \"format\": \"stderr\","
                           " \"prefix\": \"%m [%p] %q%u@%d/%a \", \"limit\": 20}");
    assert_non_null(t->params_node);
    assert_int_equal(t->params_node->kind, YNODE_MAP);
    assert_int_equal(t->params_node->line, 15);
    assert_int_equal(t->params_node->col, 13);
    assert_string_equal(t->params_node->file, "full/conf.d/20-tasks.yaml");
    assert_string_equal(t->mark.file, "full/conf.d/20-tasks.yaml");
    assert_int_equal(t->mark.line, 2);

    /* every default, with defaults: inherited */
    t = &cfg->tasks[1];
    assert_string_equal(t->name, "weekly-report");
    assert_string_equal(t->connection, "store");
    assert_null(t->schedule);
    assert_null(t->description);
    assert_string_equal(t->timezone, "Europe/Berlin");
    assert_int_equal(t->priority, 5);
    assert_int_equal(t->timeout_ms, 90 * 60 * 1000);
    assert_int_equal(t->concurrency, CONC_FORBID);
    assert_int_equal(t->misfire, MISFIRE_RUN_ONCE);
    assert_int_equal(t->misfire_grace_ms, 3600 * 1000);
    assert_int_equal(t->misfire_max_runs, 10);
    assert_int_equal(t->jitter_ms, 0);
    assert_true(t->enabled);
    assert_int_equal(t->retry.max_attempts, 6);
    assert_int_equal(t->retry.initial_ms, 10000);
    assert_int_equal(t->retry.max_delay_ms, 20 * 60 * 1000);
    assert_json(t->params, "{}");
    assert_null(t->params_node);

    t = &cfg->tasks[2];
    assert_string_equal(t->name, "adhoc");
    assert_null(t->connection);
    assert_int_equal(t->misfire, MISFIRE_SKIP);

    assert_ptr_equal(config_find_task(cfg, "adhoc"), &cfg->tasks[2]);
    assert_null(config_find_task(cfg, "missing"));
    config_free(cfg);
}

/* The repository's example configuration (the README's demo) loads. */
static void example_config(void **state)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/pgreviewer.yaml", getenv("PGR_SOURCE_DIR"));
    pgr_config *cfg = load_ok(path);
    assert_null(cfg->store.url);
    assert_null(cfg->queue.url);
    assert_false(cfg->vault.enabled);
    assert_int_equal(cfg->workers.processes, 2);
    assert_string_equal(cfg->logging.format, "text");
    assert_int_equal(cfg->n_connections, 1);
    assert_string_equal(cfg->connections[0].id, "local");
    assert_string_equal(cfg->connections[0].host, "/var/run/postgresql");
    assert_int_equal(cfg->connections[0].credentials, CRED_LIBPQ);

    const cfg_task *ok = config_find_task(cfg, "example-ok");
    const cfg_task *sleep = config_find_task(cfg, "example-sleep");
    assert_non_null(ok);
    assert_non_null(sleep);
    assert_string_equal(ok->type, "example");
    assert_json(ok->params, "{\"mode\": \"succeed\", \"result\": {\"hello\": \"world\"},"
                            " \"message\": \"all good\"}");
    assert_json(sleep->params, "{\"mode\": \"sleep\", \"sleep_ms\": 200}");
    config_free(cfg);
}

static void defaults_only(void **state)
{
    unsetenv("PGREVIEWER_PLUGIN_DIR");
    pgr_config *cfg = config_defaults();
    assert_null(cfg->store.url);
    assert_int_equal(cfg->store.retention_ms, 30LL * 86400 * 1000);
    assert_int_equal(cfg->store.retention_per_task, 0);
    assert_null(cfg->queue.url);
    assert_string_equal(cfg->queue.prefix, "pgreviewer");
    assert_false(cfg->vault.enabled);
    assert_true(cfg->vault.tls_verify);
    assert_int_equal(cfg->vault.auth_method, VAULT_AUTH_TOKEN);
    assert_string_equal(cfg->vault.approle_mount, "approle");
    assert_string_equal(cfg->vault.kv_mount, "secret");
    assert_string_equal(cfg->vault.path_template, "database/connections/{connection_id}");
    assert_int_equal(cfg->vault.cache_ttl_ms, 300000);
    assert_int_equal(cfg->vault.timeout_ms, 10000);
    assert_int_equal(cfg->workers.processes, 4);
    assert_int_equal(cfg->workers.max_tasks_per_process, 1000);
    assert_int_equal(cfg->workers.max_memory_per_process, 0);
    assert_int_equal(cfg->workers.prefetch, 8);
    assert_int_equal(cfg->workers.shutdown_grace_ms, 30000);
    assert_int_equal(cfg->workers.kill_grace_ms, 5000);
    assert_string_equal(cfg->plugins.directory, PGR_INSTALL_PLUGIN_DIR);
    assert_json(cfg->plugins.config, "{}");
    assert_string_equal(cfg->api.listen, "127.0.0.1:8080");
    assert_string_equal(cfg->logging.level, "info");
    assert_string_equal(cfg->logging.format, isatty(STDERR_FILENO) ? "text" : "json");
    assert_string_equal(cfg->defaults.timezone, "UTC");
    assert_int_equal(cfg->defaults.timeout_ms, 300000);
    assert_int_equal(cfg->defaults.retry.max_attempts, 4);
    assert_int_equal(cfg->defaults.retry.initial_ms, 30000);
    assert_true(cfg->defaults.retry.multiplier == 2);
    assert_int_equal(cfg->defaults.retry.max_delay_ms, 600000);
    assert_int_equal(cfg->defaults.retry.jitter, JITTER_FULL);
    assert_int_equal(cfg->n_connections, 0);
    assert_int_equal(cfg->n_tasks, 0);
    config_free(cfg);

    setenv("PGREVIEWER_PLUGIN_DIR", "/opt/pgr/plugins", 1);
    cfg = config_defaults();
    assert_string_equal(cfg->plugins.directory, "/opt/pgr/plugins");
    config_free(cfg);
    unsetenv("PGREVIEWER_PLUGIN_DIR");
}

static void default_path(void **state)
{
    unsetenv("PGREVIEWER_CONFIG");
    assert_string_equal(config_default_path(),
                        PGR_INSTALL_SYSCONFDIR "/pgreviewer/pgreviewer.yaml");
    setenv("PGREVIEWER_CONFIG", "/tmp/x.yaml", 1);
    assert_string_equal(config_default_path(), "/tmp/x.yaml");
    unsetenv("PGREVIEWER_CONFIG");
}

/* A file matched by several globs, or the main file itself, is read once. */
static void include_reads_each_file_once(void **state)
{
    pgr_config *cfg = load_ok("dedupe/pgreviewer.yaml");
    assert_int_equal(cfg->n_docs, 2);
    assert_int_equal(cfg->n_tasks, 1);
    assert_string_equal(cfg->tasks[0].name, "once");
    assert_int_equal(cfg->workers.processes, 1);
    config_free(cfg);
}

static void token_vault_and_disabled_api(void **state)
{
    pgr_config *cfg = load_ok("token_vault.yaml");
    assert_true(cfg->vault.enabled);
    assert_string_equal(cfg->vault.address, "http://127.0.0.1:8200");
    assert_null(cfg->vault.namespace_);
    assert_int_equal(cfg->vault.auth_method, VAULT_AUTH_TOKEN);
    assert_string_equal(cfg->vault.token_file, in_data("vault-token"));
    assert_null(cfg->vault.role_id_file);
    assert_true(cfg->vault.tls_verify);
    assert_null(cfg->api.listen);
    assert_int_equal(cfg->workers.max_memory_per_process, 2LL << 30);
    assert_int_equal(cfg->n_connections, 1);
    assert_string_equal(cfg->connections[0].username, "reviewer");
    assert_int_equal(cfg->connections[0].credentials, CRED_VAULT);
    config_free(cfg);
}

static void empty_file_gives_defaults(void **state)
{
    pgr_config *cfg = load_ok("empty.yaml");
    assert_int_equal(cfg->workers.processes, 4);
    assert_string_equal(cfg->defaults.timezone, "UTC");
    assert_int_equal(cfg->n_tasks, 0);
    config_free(cfg);
}

/* A fragment that is not YAML: its error alone, not the false "undefined
 * connection" that its missing connection would cause. */
static void fragment_syntax_error_stops_checks(void **state)
{
    assert_errors("frag_syntax/pgreviewer.yaml",
                  "frag_syntax/conf.d/broken.yaml:4:1: YAML syntax error: found unexpected end "
                  "of stream while scanning a quoted scalar\n");
}

static void duplicate_connection_across_files(void **state)
{
    assert_errors("dup_conn/pgreviewer.yaml",
                  "dup_conn/conf.d/more.yaml:3:9: connections[1].id: duplicate connection id "
                  "\"db\" (first defined at dup_conn/pgreviewer.yaml:3:5)\n");
}

/* ---------------------------------------------------------------------- */
/* Errors: exact messages                                                  */

static void bad_yaml_syntax(void **state)
{
    assert_errors("syntax.yaml",
                  "syntax.yaml:3:12: YAML syntax error: mapping values are not allowed in this "
                  "context\n");
}

static void missing_file(void **state)
{
    assert_errors("nonexistent.yaml", "nonexistent.yaml: cannot open: No such file or directory\n");
}

static void unknown_key_hint(void **state)
{
    assert_errors("unknown_key.yaml",
                  "unknown_key.yaml:6:5: tasks[0].retyr: unknown key; did you mean \"retry\"?\n");
}

static void bad_duration(void **state)
{
    assert_errors("bad_duration.yaml",
                  "bad_duration.yaml:4:14: tasks[0].timeout: expected a duration such as 30s, 5m "
                  "or 2h, got \"5 minutes\"\n");
}

static void bad_enum(void **state)
{
    assert_errors("bad_enum.yaml",
                  "bad_enum.yaml:6:18: tasks[1].concurrency: must be one of: forbid, allow, "
                  "replace (got \"sometimes\")\n");
}

static void missing_required(void **state)
{
    assert_errors("missing_required.yaml",
                  "missing_required.yaml:2:5: tasks[0]: missing required key \"type\"\n");
}

static void duplicate_task_across_fragments(void **state)
{
    assert_errors("dup_task/pgreviewer.yaml",
                  "dup_task/conf.d/b.yaml:4:11: tasks[1].name: duplicate task name \"nightly\" "
                  "(first defined at dup_task/conf.d/a.yaml:2:5)\n");
}

static void undefined_connection(void **state)
{
    assert_errors("undefined_connection.yaml",
                  "undefined_connection.yaml:7:17: tasks[0].connection: no connection "
                  "\"prod-mian\" is defined; did you mean \"prod-main\"?\n"
                  "undefined_connection.yaml:10:17: tasks[1].connection: no connection "
                  "\"elsewhere\" is defined; expected one of: prod-main, store\n");
}

static void literal_password_refused(void **state)
{
    char *errors = load_errors("password.yaml");
    assert_string_equal(errors,
                        "password.yaml:4:39: connections[0].credentials.password: a password is "
                        "never written in the configuration; use password_file (a file only "
                        "pgreviewer can read) or Vault (credentials: vault)\n");
    free(errors);
}

static void password_in_store_url(void **state)
{
    char *errors = load_errors("store_password.yaml");
    assert_string_equal(errors,
                        "store_password.yaml:2:8: store.url: a password is never written in the "
                        "configuration; use a password file (passfile=..., ~/.pgpass) or "
                        "PGPASSWORD\n");
    assert_null(strstr(errors, "hunter2"));
    free(errors);
}

static void section_defined_twice(void **state)
{
    assert_errors("dup_section/pgreviewer.yaml",
                  "dup_section/conf.d/workers.yaml:1:1: workers: already defined at "
                  "dup_section/pgreviewer.yaml:2:1; a section may be set in one file only\n");
}

static void vault_credentials_without_vault(void **state)
{
    assert_errors("vault_ref.yaml",
                  "vault_ref.yaml:3:18: connections[0].credentials: \"vault\" needs a vault: "
                  "section (address, auth) in the configuration; or use {username: NAME, "
                  "password_file: /path/to/file}\n");
}

static void include_errors(void **state)
{
    assert_errors("frag_errors/pgreviewer.yaml",
                  "frag_errors/pgreviewer.yaml:1:26: include: frag_errors/missing.yaml: cannot "
                  "open: No such file or directory\n"
                  "frag_errors/conf.d/a.yaml:1:1: include: only the main file may include other "
                  "files\n"
                  "frag_errors/conf.d/b.yaml:1:1: the top level must be a mapping of sections "
                  "(include, store, queue, vault, workers, plugins, api, logging, defaults, "
                  "connections, tasks), got a list\n");
}

/* Every mistake of a file is reported, in file order. */
static void many_section_errors(void **state)
{
    char *errors = load_errors("many.yaml");
    assert_string_equal(
        errors,
        "many.yaml:2:1: storage: unknown key; did you mean \"store\"?\n"
        "many.yaml:4:12: vault.address: expected a URL such as https://vault.internal:8200, got "
        "\"vault.internal:8200\"\n"
        "many.yaml:5:9: vault.auth: missing required key \"secret_id_file\" (method: approle)\n"
        "many.yaml:5:66: vault.auth.token: a Vault token is never written in the configuration; "
        "use token_file or the VAULT_TOKEN environment variable\n"
        "many.yaml:7:14: workers.processes: expected an integer, got the string \"four\"\n"
        "many.yaml:8:27: workers.max_memory_per_process: expected a size such as 512MB or 2GB, "
        "got \"lots\"\n"
        "many.yaml:9:15: api.listen: expected host:port such as 127.0.0.1:8080 (or \"\" to "
        "disable the API), got \"localhost\"\n"
        "many.yaml:10:18: logging.level: must be one of: debug, info, warning, error (got "
        "\"verbose\")\n"
        "many.yaml:12:13: defaults.timezone: unknown time zone \"Mars/Olympus_Mons\"; expected an "
        "IANA name such as UTC or Europe/Berlin (see /usr/share/zoneinfo)\n"
        "many.yaml:14:9: connections[0].id: \"store\" is reserved for the analytics store; choose "
        "another id\n"
        "many.yaml:16:11: connections[1].port: must be between 1 and 65535, got 70000\n"
        "many.yaml:17:15: connections[1].options.password: a password is never written in the "
        "configuration; use password_file (a file only pgreviewer can read) or Vault "
        "(credentials: vault)\n"
        "many.yaml:17:34: connections[1].options.aplication_name: not a libpq connection "
        "keyword; did you mean \"application_name\"?\n"
        "many.yaml:17:54: connections[1].options.host: set it as the connection's own key "
        "\"host\"\n"
        "many.yaml:18:18: connections[1].credentials: expected \"vault\" or a mapping {username: "
        "NAME, password_file: /path/to/file}, got \"keyring\"\n");
    assert_null(strstr(errors, "hunter2"));
    assert_null(strstr(errors, "s.abcdef"));
    free(errors);
}

static void many_task_errors(void **state)
{
    assert_errors(
        "many_tasks.yaml",
        "many_tasks.yaml:3:11: tasks[0].name: may contain only letters, digits, \"_\", \".\" and "
        "\"-\", got \"bad name\"\n"
        "many_tasks.yaml:5:15: tasks[0].priority: must be between 0 and 9, got 12\n"
        "many_tasks.yaml:6:27: tasks[0].retry.max_attempts: must be at least 1, got 0\n"
        "many_tasks.yaml:6:42: tasks[0].retry.multiplier: must be at least 1, got 0.5\n"
        "many_tasks.yaml:6:55: tasks[0].retry.jitter: must be one of: none, full, equal (got "
        "\"some\")\n"
        "many_tasks.yaml:7:14: tasks[0].enabled: expected true or false, got the string \"yes\"\n"
        "many_tasks.yaml:8:15: tasks[0].schedule: must not be empty; write a cron expression such "
        "as \"0 2 * * *\" or leave the key out to run the task only when triggered\n"
        "many_tasks.yaml:9:13: tasks[0].params: expected a mapping (key: value lines), got a "
        "list\n"
        "many_tasks.yaml:12:17: tasks[1].connection: \"store\" reads the analytics store, but no "
        "store: section with a url is configured\n"
        "many_tasks.yaml:13:23: tasks[1].misfire.policy: must be one of: run_once, skip, run_all "
        "(got \"later\")\n"
        "many_tasks.yaml:13:40: tasks[1].misfire.max_runs: must be at least 1, got 0\n");
}

/* 25 mistakes: the first 20 are reported. */
static void error_cap(void **state)
{
    char *errors = load_errors("cap.yaml");
    size_t lines = 0;
    for (const char *p = errors; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 20);
    assert_non_null(strstr(errors, "cap.yaml:3:41: tasks[0].priority: must be between 0 and 9, "
                                   "got 10\n"));
    assert_non_null(strstr(errors, "cap.yaml:22:42: tasks[19].priority: must be between 0 and 9, "
                                   "got 29\n"));
    assert_null(strstr(errors, "tasks[20]"));
    free(errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_sections),
        cmocka_unit_test(full_connections),
        cmocka_unit_test(full_tasks),
        cmocka_unit_test(example_config),
        cmocka_unit_test(defaults_only),
        cmocka_unit_test(default_path),
        cmocka_unit_test(include_reads_each_file_once),
        cmocka_unit_test(token_vault_and_disabled_api),
        cmocka_unit_test(empty_file_gives_defaults),
        cmocka_unit_test(bad_yaml_syntax),
        cmocka_unit_test(missing_file),
        cmocka_unit_test(unknown_key_hint),
        cmocka_unit_test(bad_duration),
        cmocka_unit_test(bad_enum),
        cmocka_unit_test(missing_required),
        cmocka_unit_test(duplicate_task_across_fragments),
        cmocka_unit_test(undefined_connection),
        cmocka_unit_test(literal_password_refused),
        cmocka_unit_test(password_in_store_url),
        cmocka_unit_test(section_defined_twice),
        cmocka_unit_test(fragment_syntax_error_stops_checks),
        cmocka_unit_test(duplicate_connection_across_files),
        cmocka_unit_test(vault_credentials_without_vault),
        cmocka_unit_test(include_errors),
        cmocka_unit_test(many_section_errors),
        cmocka_unit_test(many_task_errors),
        cmocka_unit_test(error_cap),
    };
    return cmocka_run_group_tests(tests, chdir_data, NULL);
}
