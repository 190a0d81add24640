/*
 * pgreviewer/plugin.h - the plugin ABI of pgreviewer, version 1.
 *
 * This is the one header a task-type plugin includes. It is C99 and
 * self-contained: it includes only standard C headers, never a pgreviewer
 * core header nor a third-party one, so a plugin can be built out of tree
 * with nothing but this file (pkg-config pgreviewer-plugin).
 *
 * How the two sides meet:
 *
 *   - The plugin exports ONE function per ABI major it supports. For major 1
 *     it is `pgreviewer_plugin_v1`, which returns a pointer to a const
 *     `pgr_plugin` descriptor. A function, not a data symbol, because that is
 *     what dlsym() is guaranteed to find (PostgreSQL's PG_MODULE_MAGIC does
 *     the same). PGR_PLUGIN_EXPORT() writes the function for you.
 *   - The descriptor starts with a fixed head (magic, ABI major and minor,
 *     struct_size, pointer size) that PGR_PLUGIN_HEAD fills in. The host
 *     checks the head before it calls any plugin code.
 *   - The host hands the plugin a `pgr_host` table of services. It too
 *     starts with a head; a plugin built against a newer minor can test
 *     whether the running host has a service with PGR_HOST_HAS().
 *
 * Compatibility rules: fields are only ever appended to the structs below;
 * the side that reads a struct checks struct_size before touching a field
 * that was added later; a breaking change is a new major version with a new
 * entry symbol, and the host keeps loading older majors.
 *
 * Data crosses the boundary as UTF-8 JSON text and plain C types, so the ABI
 * never depends on a JSON library's ABI. Next to every pointer it is written
 * who owns it and how long it lives.
 *
 * Threads: the host calls init, run and fini from one thread of an executor
 * process, one task at a time. Host services may only be called from inside
 * run (or init, where noted), from that thread.
 */
#ifndef PGREVIEWER_PLUGIN_H
#define PGREVIEWER_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI this header describes. A host speaks exactly one major per entry
 * symbol; minors are backwards compatible (fields appended). */
#define PGR_ABI_MAJOR 1
#define PGR_ABI_MINOR 0

/* "PGRP" and "PGRH": the first word of a plugin descriptor / host table. */
#define PGR_PLUGIN_MAGIC 0x50475250u
#define PGR_HOST_MAGIC 0x50475248u

/* The name of the entry function for ABI major 1. */
#define PGR_ENTRY_SYMBOL_V1 "pgreviewer_plugin_v1"

/* libpq's connection type. A plugin that includes <libpq-fe.h> can use the
 * pointer the host returns as a PGconn * directly (PGconn is a typedef of
 * struct pg_conn). */
struct pg_conn;

/* The head shared by the plugin descriptor and the host table. */
typedef struct pgr_abi_head {
    uint32_t magic;        /* PGR_PLUGIN_MAGIC or PGR_HOST_MAGIC */
    uint16_t abi_major;    /* PGR_ABI_MAJOR the side was built with */
    uint16_t abi_minor;    /* PGR_ABI_MINOR the side was built with */
    uint32_t struct_size;  /* sizeof the whole struct on the side that built it */
    uint16_t pointer_size; /* sizeof(void *): refuses a 32-bit plugin in a 64-bit host */
    uint16_t reserved;     /* zero */
} pgr_abi_head;

/* What run() returns. */
typedef enum pgr_outcome {
    PGR_SUCCESS = 0, /* the task did its work; its result (if any) is stored */
    PGR_RETRY = 1,   /* transient failure: retried with back-off */
    PGR_FAIL = 2     /* permanent failure: not retried */
} pgr_outcome;

typedef enum pgr_log_level {
    PGR_LOG_DEBUG = 0,
    PGR_LOG_INFO = 1,
    PGR_LOG_WARNING = 2,
    PGR_LOG_ERROR = 3
} pgr_log_level;

/* One run of one task, as the host sees it. Opaque to plugins: only ever
 * passed back to host services. Owned by the host; valid during run(). */
typedef struct pgr_task pgr_task;

/*
 * The services the host offers. The host owns this table; it lives as long
 * as the process, so a plugin may keep the pointer it got in init().
 *
 * Every function pointer may be tested with PGR_HOST_HAS() first; all of
 * them exist in ABI 1.0.
 */
typedef struct pgr_host {
    pgr_abi_head head; /* magic PGR_HOST_MAGIC */

    /* Write one log line, tagged by the host with the task name, execution
     * id and attempt. `message` is copied; it must not contain secrets.
     * `task` may be NULL when called from init(). */
    void (*log)(pgr_task *task, pgr_log_level level, const char *message);

    /* The task's parameters as a JSON object, with the defaults of the
     * plugin's manifest filled in and already validated against its schema.
     * Owned by the host, valid until run() returns. Never NULL ("{}"). */
    const char *(*params_json)(pgr_task *task);

    /* Set the task's result: one JSON document (object or array), copied by
     * the host. A second call replaces the first. Returns 0, or -1 when
     * `json` is not valid JSON (the result is then unchanged). */
    int (*set_result)(pgr_task *task, const char *json);

    /* Set the message that goes with the outcome (the error of a RETRY or
     * FAIL, a note on a SUCCESS). Copied by the host; must not contain
     * secrets. A second call replaces the first. */
    void (*set_message)(pgr_task *task, const char *message);

    /* Report progress, 0.0 to 1.0, with an optional short note (copied;
     * may be NULL). Cheap: the host rate-limits what it forwards. */
    void (*progress)(pgr_task *task, double fraction, const char *note);

    /* Non-zero once the host wants the task to stop (timeout, shutdown,
     * `concurrency: replace`). A long-running plugin should poll it and
     * return PGR_RETRY or PGR_FAIL soon after. */
    int (*cancelled)(pgr_task *task);

    /* Milliseconds left before the task's timeout, or -1 when it has none.
     * Past the timeout (plus a grace period) the host kills the executor. */
    int64_t (*remaining_ms)(pgr_task *task);

    /* The task's target connection, opened on first call with credentials
     * the host resolved (Vault, password file, environment), then reused
     * for the rest of the run. Returns NULL when the task has no connection
     * or connecting failed; then *error (if error is not NULL) points to a
     * message owned by the host, valid until run() returns. The connection
     * is owned by the host: never PQfinish() it. For the reserved
     * connection `store` it is in a read-only transaction. */
    struct pg_conn *(*connection)(pgr_task *task, const char **error);

    /* This task's persistent state from its previous successful run (JSON,
     * owned by the host, valid until run() returns), or NULL when there is
     * none. Used for incremental work such as log offsets. */
    const char *(*state_get)(pgr_task *task);

    /* Replace the task's persistent state. The JSON is copied and only kept
     * if run() returns PGR_SUCCESS, in the same transaction as the result,
     * so a failed or redelivered run never moves the state forward.
     * Returns 0, or -1 when `json` is not valid JSON. */
    int (*state_set)(pgr_task *task, const char *json);

    /* Facts about the run. Strings are owned by the host and valid until
     * run() returns; connection_id is NULL when the task has none. */
    const char *(*task_name)(pgr_task *task);
    const char *(*task_type)(pgr_task *task);
    const char *(*connection_id)(pgr_task *task);
    int64_t (*execution_id)(pgr_task *task); /* 0 when not recorded in a store */
    int (*attempt)(pgr_task *task);          /* 1 for the first attempt */

    /* Typed access to the top-level params, so that a plugin needs no JSON
     * library for simple params. Strings are owned by the host and valid
     * until run() returns. param_string returns NULL when the key is absent
     * or not a string; param_int / param_number / param_bool return 0 and
     * store the value, or -1 when absent or of another type (the manifest's
     * schema normally rules that out); param_json returns the value as JSON
     * text, or NULL when absent. */
    const char *(*param_string)(pgr_task *task, const char *key);
    int (*param_int)(pgr_task *task, const char *key, int64_t *out);
    int (*param_number)(pgr_task *task, const char *key, double *out);
    int (*param_bool)(pgr_task *task, const char *key, int *out);
    const char *(*param_json)(pgr_task *task, const char *key);
} pgr_host;

/* True when the running host's table has the service `field` (a name of a
 * member of pgr_host), whichever minor each side was built with. */
#define PGR_HOST_HAS(host, field)                                                        \
    ((host) != NULL && (host)->head.struct_size >= offsetof(pgr_host, field) +           \
                                                       sizeof(((pgr_host *)0)->field) && \
     (host)->field != NULL)

/*
 * The plugin's descriptor. Define one `static const pgr_plugin` in the
 * plugin, start it with PGR_PLUGIN_HEAD, and export it with
 * PGR_PLUGIN_EXPORT.
 */
typedef struct pgr_plugin {
    pgr_abi_head head; /* fill with PGR_PLUGIN_HEAD; magic PGR_PLUGIN_MAGIC */

    const char *name;        /* [a-z0-9_]+, equal to the file name without .so */
    const char *version;     /* the plugin's own version, free text ("1.2.0") */
    const char *description; /* one line, shown by `pgreviewer plugin list` */

    /* NULL-terminated list of task types this plugin runs; at least one. */
    const char *const *task_types;

    /* Called once per executor process before any run(). `config_json` is
     * the plugin's section of the configuration (`plugins: {config: {NAME:
     * ...}}`) as a JSON object ("{}" when absent); owned by the host, valid
     * during the call. The plugin may store private data in *plugin_data
     * (it is handed back to run and fini). Return 0, or non-zero after
     * writing a message into err (errlen bytes, NUL-terminated): the
     * executor then refuses tasks of this plugin. May be NULL. */
    int (*init)(const pgr_host *host, const char *config_json, void **plugin_data, char *err,
                size_t errlen);

    /* Run one task. Required. See pgr_outcome. The plugin must release what
     * it allocated before returning; the executor lives on for more tasks. */
    pgr_outcome (*run)(const pgr_host *host, pgr_task *task, void *plugin_data);

    /* Called once when the executor exits normally. May be NULL. */
    void (*fini)(void *plugin_data);
} pgr_plugin;

/* The head of a plugin descriptor built against this header. */
#define PGR_PLUGIN_HEAD                                                                  \
    {                                                                                    \
        PGR_PLUGIN_MAGIC, PGR_ABI_MAJOR, PGR_ABI_MINOR, (uint32_t)sizeof(pgr_plugin),    \
            (uint16_t)sizeof(void *), 0                                                  \
    }

#if defined(__GNUC__) || defined(__clang__)
#define PGR_EXPORT __attribute__((visibility("default")))
#else
#define PGR_EXPORT
#endif

/* Export `descriptor` (a static const pgr_plugin) as this plugin's ABI 1
 * entry point. Use once per plugin, at file scope. */
#define PGR_PLUGIN_EXPORT(descriptor)                                                    \
    PGR_EXPORT const pgr_plugin *pgreviewer_plugin_v1(void);                             \
    PGR_EXPORT const pgr_plugin *pgreviewer_plugin_v1(void) { return &(descriptor); }

/* Convenience: printf-style logging through host->log. Formats into a
 * stack buffer (longer messages are cut at 1023 bytes). */
static inline void pgr_logf(const pgr_host *host, pgr_task *task, pgr_log_level level,
                            const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static inline void pgr_logf(const pgr_host *host, pgr_task *task, pgr_log_level level,
                            const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    host->log(task, level, buf);
}

/* Convenience: printf-style set_message. */
static inline void pgr_messagef(const pgr_host *host, pgr_task *task, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static inline void pgr_messagef(const pgr_host *host, pgr_task *task, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    host->set_message(task, buf);
}

#ifdef __cplusplus
}
#endif

#endif /* PGREVIEWER_PLUGIN_H */
