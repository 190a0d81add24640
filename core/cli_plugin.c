/*
 * cli_plugin.c - `pgreviewer plugin list|info|check|exec`.
 *
 * `plugin check FILE.so` needs no configuration at all: it is the plugin
 * author's first tool. `plugin exec` runs one task in a real executor
 * process (the same code path as the worker), so a crash in the plugin is
 * reported rather than taking the command down.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "executor.h"
#include "runtime.h"

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("pgreviewer: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int plugin_list(runtime *rt, bool as_json)
{
    plugin_registry *reg = rt->plugins;
    if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < reg->n_plugins; i++) {
            const loaded_plugin *p = &reg->plugins[i];
            json_t *types = json_array();
            for (const char *const *t = p->desc->task_types; *t; t++)
                json_array_append_new(types, json_string(*t));
            json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:o, s:s}", "name", p->name,
                                                 "version", p->desc->version, "abi",
                                                 json_sprintf("%u.%u", p->desc->head.abi_major,
                                                              p->desc->head.abi_minor),
                                                 "task_types", types, "file", p->path));
        }
        json_t *refused = json_array();
        for (size_t i = 0; i < reg->n_refusals; i++)
            json_array_append_new(refused, json_string(reg->refusals[i]));
        json_t *o = json_pack("{s:s, s:o, s:o}", "directory", reg->directory, "plugins", arr,
                              "refused", refused);
        char *s = json_dumps(o, JSON_INDENT(2));
        puts(s);
        free(s);
        json_decref(o);
        return EXIT_OK;
    }
    printf("%-16s %-10s %-5s %-24s %s\n", "NAME", "VERSION", "ABI", "TASK TYPES", "FILE");
    for (size_t i = 0; i < reg->n_plugins; i++) {
        const loaded_plugin *p = &reg->plugins[i];
        printf("%-16s %-10s %u.%-3u ", p->name, p->desc->version, p->desc->head.abi_major,
               p->desc->head.abi_minor);
        int w = 0;
        for (const char *const *t = p->desc->task_types; *t; t++)
            w += printf("%s%s", t == p->desc->task_types ? "" : ",", *t);
        printf("%*s %s\n", w < 24 ? 24 - w : 0, "", p->path);
    }
    if (reg->n_plugins == 0)
        printf("(no plugins in %s)\n", reg->directory);
    for (size_t i = 0; i < reg->n_refusals; i++)
        fprintf(stderr, "%s\n", reg->refusals[i]);
    return EXIT_OK;
}

static void print_spec(const task_type_spec *t)
{
    printf("  task type %s%s%s\n", t->name, t->description ? ": " : "",
           t->description ? t->description : "");
    for (size_t j = 0; j < t->n_params; j++) {
        const param_spec *p = &t->params[j];
        printf("    %-14s %-8s", p->name, param_type_name(p->type));
        if (p->required)
            printf(" required");
        if (p->def) {
            char *d = json_dumps(p->def, JSON_ENCODE_ANY | JSON_COMPACT);
            printf(" default %s", d);
            free(d);
        }
        if (p->enum_) {
            char *e = json_dumps(p->enum_, JSON_COMPACT);
            printf(" one of %s", e);
            free(e);
        }
        if (p->has_min)
            printf(" min %g", p->min);
        if (p->has_max)
            printf(" max %g", p->max);
        if (p->description)
            printf("\n    %14s %s", "", p->description);
        printf("\n");
    }
}

static void print_info(const loaded_plugin *p)
{
    printf("plugin %s %s (ABI %u.%u)\n", p->name, p->desc->version, p->desc->head.abi_major,
           p->desc->head.abi_minor);
    if (p->desc->description)
        printf("  %s\n", p->desc->description);
    printf("  file: %s\n  manifest: %s\n", p->path, p->manifest->path);
    for (size_t i = 0; i < p->manifest->n_types; i++)
        print_spec(&p->manifest->types[i]);
}

static int plugin_info(runtime *rt, const char *name)
{
    const loaded_plugin *p = loader_find_name(rt->plugins, name);
    if (!p)
        p = loader_find_type(rt->plugins, name);
    if (!p) {
        cli_error("no plugin or task type named \"%s\" in %s", name, rt->plugins->directory);
        for (size_t i = 0; i < rt->plugins->n_refusals; i++)
            fprintf(stderr, "%s\n", rt->plugins->refusals[i]);
        return EXIT_FAIL;
    }
    print_info(p);
    return EXIT_OK;
}

static int plugin_check(const char *file)
{
    loaded_plugin p;
    char err[1024];
    if (loader_load_file(file, &p, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return EXIT_FAIL;
    }
    printf("ok: ");
    print_info(&p);
    loader_plugin_clear(&p);
    return EXIT_OK;
}

typedef struct exec_opts {
    const char *type, *params, *connection, *state_file, *timeout;
    bool envelope;
} exec_opts;

static int parse_exec_opts(int argc, char **argv, exec_opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = !strcmp(a, "--params")       ? &o->params
                           : !strcmp(a, "--connection") ? &o->connection
                           : !strcmp(a, "--state-file") ? &o->state_file
                           : !strcmp(a, "--timeout")    ? &o->timeout
                                                        : NULL;
        if (dst) {
            if (i + 1 >= argc) {
                cli_error("plugin exec: %s needs a value", a);
                return -1;
            }
            *dst = argv[++i];
        } else if (!strcmp(a, "--envelope")) {
            o->envelope = true;
        } else if (a[0] == '-' || o->type) {
            cli_error("plugin exec: unexpected argument \"%s\"", a);
            return -1;
        } else {
            o->type = a;
        }
    }
    if (!o->type) {
        cli_error("usage: pgreviewer plugin exec TYPE [--params JSON] [--connection NAME] "
                  "[--state-file FILE] [--timeout DURATION] [--envelope]");
        return -1;
    }
    return 0;
}

static json_t *load_state(const char *path)
{
    if (!path)
        return NULL;
    json_error_t je;
    json_t *s = json_load_file(path, JSON_DECODE_ANY, &je);
    return s; /* a missing file means no state yet */
}

static int save_state(const char *path, json_t *state)
{
    char *tmp = xasprintf("%s.tmp", path);
    int rc = json_dump_file(state, tmp, JSON_COMPACT | JSON_ENCODE_ANY);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    free(tmp);
    return rc;
}

/* Build the job for `plugin exec` from the options; NULL on error (printed). */
static exec_job *exec_job_from(runtime *rt, const exec_opts *o)
{
    const loaded_plugin *p = loader_find_type(rt->plugins, o->type);
    if (!p) {
        cli_error("no plugin runs task type \"%s\" (plugin directory %s)", o->type,
                  rt->plugins->directory);
        for (size_t i = 0; i < rt->plugins->n_refusals; i++)
            fprintf(stderr, "%s\n", rt->plugins->refusals[i]);
        return NULL;
    }
    json_error_t je;
    json_t *raw = o->params ? json_loads(o->params, 0, &je) : json_object();
    if (!raw) {
        cli_error("--params: invalid JSON at column %d: %s", je.column, je.text);
        return NULL;
    }
    strbuf errs = {0};
    json_t *params = manifest_validate_params(manifest_find_type(p->manifest, o->type), raw,
                                              NULL, "--params", "params", &errs);
    json_decref(raw);
    if (!params) {
        fputs(errs.buf, stderr);
        sb_free(&errs);
        return NULL;
    }
    if (o->connection && strcmp(o->connection, "store") != 0 &&
        !config_find_connection(rt->cfg, o->connection)) {
        cli_error("--connection: connection \"%s\" is not configured (in %s)", o->connection,
                  rt->config_path);
        json_decref(params);
        return NULL;
    }
    int64_t timeout = rt->cfg->defaults.timeout_ms;
    if (o->timeout && parse_duration_ms(o->timeout, &timeout) < 0) {
        cli_error("--timeout: expected a duration such as 30s, 5m or 2h, got \"%s\"", o->timeout);
        json_decref(params);
        return NULL;
    }
    return exec_job_new(0, "plugin-exec", o->type, o->connection, params,
                        load_state(o->state_file), timeout, 1);
}

static int plugin_exec(const char *config_path, int argc, char **argv)
{
    exec_opts o;
    if (parse_exec_opts(argc, argv, &o) < 0)
        return EXIT_USAGE;
    strbuf errs = {0};
    runtime *rt = runtime_open(config_path, RT_CONFIG_OPTIONAL, &errs);
    if (!rt) {
        fputs(errs.buf, stderr);
        sb_free(&errs);
        return EXIT_FAIL;
    }
    int rc = EXIT_FAIL;
    exec_job *job = exec_job_from(rt, &o);
    char err[256];
    exec_pool *pool = job ? pool_new(rt->cfg, rt->plugins, 1, err, sizeof err) : NULL;
    if (job && !pool)
        cli_error("%s", err);
    exec_result *r = NULL;
    if (pool && pool_submit(pool, job) == 0) {
        job = NULL;
        while (pool_wait(pool, &r, -1) == 0)
            ;
    }
    if (r) {
        json_t *out = r->result ? json_incref(r->result) : json_object();
        if (o.envelope) {
            json_decref(out);
            out = json_pack("{s:s, s:s?, s:I, s:O?, s:O?}", "outcome",
                            exec_outcome_name(r->outcome), "message", r->message, "duration_ms",
                            (json_int_t)r->duration_ms, "result", r->result, "state", r->state);
        }
        char *s = json_dumps(out, JSON_INDENT(2) | JSON_ENCODE_ANY | PGR_JSON_REAL);
        if (r->outcome == EXEC_SUCCESS || o.envelope)
            puts(s);
        free(s);
        json_decref(out);
        if (r->outcome == EXEC_SUCCESS) {
            rc = EXIT_OK;
            if (o.state_file && r->state && save_state(o.state_file, r->state) < 0) {
                cli_error("cannot write the state file %s", o.state_file);
                rc = EXIT_FAIL;
            }
        } else {
            cli_error("task type %s: %s: %s", o.type, exec_outcome_name(r->outcome),
                      r->message ? r->message : "(no message)");
        }
    }
    exec_result_free(r);
    exec_job_free(job);
    pool_free(pool, 0);
    runtime_free(rt);
    return rc;
}

int cmd_plugin(const char *config_path, int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : NULL;
    if (sub && !strcmp(sub, "check")) {
        if (argc != 2) {
            cli_error("usage: pgreviewer plugin check FILE.so");
            return EXIT_USAGE;
        }
        return plugin_check(argv[1]);
    }
    if (sub && !strcmp(sub, "exec"))
        return plugin_exec(config_path, argc, argv);
    bool list = sub && !strcmp(sub, "list"), info = sub && !strcmp(sub, "info");
    if (!list && !info) {
        cli_error("usage: pgreviewer plugin list [--json] | info NAME | check FILE.so | exec "
                  "TYPE [--params JSON] ...");
        return EXIT_USAGE;
    }
    if (info && argc != 2) {
        cli_error("usage: pgreviewer plugin info NAME");
        return EXIT_USAGE;
    }
    strbuf errs = {0};
    runtime *rt = runtime_open(config_path, RT_CONFIG_OPTIONAL, &errs);
    if (!rt) {
        fputs(errs.buf, stderr);
        sb_free(&errs);
        return EXIT_FAIL;
    }
    int rc = list ? plugin_list(rt, argc > 1 && !strcmp(argv[1], "--json"))
                  : plugin_info(rt, argv[1]);
    runtime_free(rt);
    return rc;
}
