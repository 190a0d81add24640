/*
 * config.h - pgreviewer's configuration: the main YAML file plus its
 * `include:` fragments (the *.yaml files of conf.d, merged in name order), read into the
 * structs below with every default filled in (DESIGN.md section 5).
 *
 * Loading checks shapes, types, durations, enums, unknown keys ("did you
 * mean") and cross references (a task's connection exists); every error is
 * reported as "file:line:column: message". Task params are kept both as a
 * YAML node (for marks) and as JSON; validating them against the owning
 * plugin's manifest schema is done by the caller (see manifest.h), because
 * the config layer does not know plugins.
 *
 * Ownership: config_load() returns a pgr_config the caller frees with
 * config_free(); every pointer inside belongs to it.
 */
#ifndef PGR_CONFIG_H
#define PGR_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "yamltree.h"

/* Where something was written, for messages. `file` is owned by the config. */
typedef struct cfg_mark {
    const char *file;
    int line, col;
} cfg_mark;

typedef enum cfg_jitter { JITTER_NONE, JITTER_FULL, JITTER_EQUAL } cfg_jitter;

typedef struct cfg_retry {
    int max_attempts;      /* default 4; 1 means no retry */
    int64_t initial_ms;    /* default 30s */
    double multiplier;     /* default 2 */
    int64_t max_delay_ms;  /* default 10m */
    cfg_jitter jitter;     /* default full */
} cfg_retry;

typedef enum cfg_cred { CRED_LIBPQ, CRED_PASSWORD_FILE, CRED_VAULT } cfg_cred;

typedef struct cfg_connection {
    char *id;            /* required, unique; {connection_id} in the Vault path */
    char *host;          /* NULL: libpq default */
    int port;            /* 0: libpq default */
    char *database;      /* NULL: libpq default */
    char *username;      /* NULL: libpq default / from Vault */
    cfg_cred credentials;/* `credentials: vault` | {username, password_file} | absent (libpq env, .pgpass) */
    char *password_file; /* CRED_PASSWORD_FILE */
    char *sslmode;       /* NULL: libpq default */
    int64_t connect_timeout_ms; /* default 10s */
    json_t *options;     /* extra libpq keywords as a JSON object of strings; may be NULL */
    cfg_mark mark;
} cfg_connection;

typedef enum cfg_concurrency { CONC_FORBID, CONC_ALLOW, CONC_REPLACE } cfg_concurrency;
typedef enum cfg_misfire { MISFIRE_RUN_ONCE, MISFIRE_SKIP, MISFIRE_RUN_ALL } cfg_misfire;

typedef struct cfg_task {
    char *name;          /* required, unique, [A-Za-z0-9_.-]+ */
    char *type;          /* required: a plugin's task type */
    char *connection;    /* NULL, a connection id, or "store" */
    char *schedule;      /* cron text, or NULL: run only when triggered */
    char *timezone;      /* default: defaults.timezone */
    char *description;   /* may be NULL */
    int priority;        /* 0..9, higher runs first; default 5 */
    int64_t timeout_ms;  /* default: defaults.timeout */
    cfg_concurrency concurrency; /* default forbid */
    cfg_misfire misfire;         /* default run_once */
    int64_t misfire_grace_ms;    /* default 1h */
    int misfire_max_runs;        /* run_all cap, default 10 */
    int64_t jitter_ms;           /* default 0 */
    bool enabled;                /* `enabled: false` keeps it paused; default true */
    cfg_retry retry;             /* defaults.retry, overridden field by field */
    json_t *params;              /* the params as JSON (object, never NULL) */
    const ynode *params_node;    /* the params' YAML node for marks, or NULL when absent */
    cfg_mark mark;
} cfg_task;

typedef struct cfg_vault {
    bool enabled;           /* the section is present */
    char *address;          /* required when enabled */
    char *namespace_;       /* may be NULL */
    char *ca_file;          /* may be NULL */
    bool tls_verify;        /* default true */
    enum { VAULT_AUTH_TOKEN, VAULT_AUTH_APPROLE } auth_method; /* default token */
    char *token_file;       /* token auth: NULL -> VAULT_TOKEN from the environment */
    char *role_id_file;     /* approle */
    char *secret_id_file;   /* approle */
    char *approle_mount;    /* default "approle" */
    char *kv_mount;         /* default "secret" */
    char *path_template;    /* default "database/connections/{connection_id}" */
    int64_t cache_ttl_ms;   /* default 5m */
    int64_t timeout_ms;     /* default 10s */
    cfg_mark mark;
} cfg_vault;

typedef struct pgr_config {
    char *path;             /* the main file as given */
    char *base_dir;         /* its directory: relative paths resolve against it */

    struct {
        char *url;               /* NULL: no store */
        int64_t retention_ms;    /* default 30d; 0 keeps everything */
        int retention_per_task;  /* default 0: no count limit */
    } store;
    struct {
        char *url;               /* NULL: the in-process queue */
        char *prefix;            /* default "pgreviewer" */
    } queue;
    cfg_vault vault;
    struct {
        int processes;               /* default 4 */
        int max_tasks_per_process;   /* default 1000 */
        int64_t max_memory_per_process; /* bytes, default 0: no limit */
        int prefetch;                /* default 8 */
        int64_t shutdown_grace_ms;   /* default 30s */
        int64_t kill_grace_ms;       /* after a timeout, SIGTERM -> SIGKILL; default 5s */
    } workers;
    struct {
        char *directory;         /* default: the build tree's or the installed one */
        json_t *config;          /* per-plugin config: object NAME -> object; never NULL */
    } plugins;
    struct {
        char *listen;            /* default "127.0.0.1:8080"; NULL/"" disables */
    } api;
    struct {
        char *level;             /* debug|info|warning|error, default info */
        char *format;            /* json|text, default text on a tty, json otherwise */
    } logging;
    struct {
        char *timezone;          /* default "UTC" */
        int64_t timeout_ms;      /* default 5m */
        cfg_retry retry;
    } defaults;

    cfg_connection *connections;
    size_t n_connections;
    cfg_task *tasks;
    size_t n_tasks;

    /* The parsed documents, kept so that ynode pointers (params_node) stay
     * valid; internal. */
    ydoc **docs;
    size_t n_docs;
} pgr_config;

/* Read `path` and its includes. Returns the config, or NULL after writing
 * every error found (one per line, "file:line:column: message", at most 20)
 * into *errors, a string the caller frees. Never exits. */
pgr_config *config_load(const char *path, char **errors);

/* A config with every default and nothing else (for `plugin exec` without
 * --config). Caller frees with config_free(). */
pgr_config *config_defaults(void);

void config_free(pgr_config *cfg);

const cfg_task *config_find_task(const pgr_config *cfg, const char *name);
const cfg_connection *config_find_connection(const pgr_config *cfg, const char *id);

/* The default main file: $PGREVIEWER_CONFIG, else
 * PGR_INSTALL_SYSCONFDIR/pgreviewer/pgreviewer.yaml. Static string. */
const char *config_default_path(void);

#endif
