/*
 * cli_report.c - `pgreviewer report show|generate`.
 *
 *   report show --date YYYY-MM-DD [--connection NAME] [--format html|md|json]
 *       prints the stored report of that day (reports table);
 *   report generate [--date D | --from F --to T] [--connection NAME]
 *                   [--timezone ZONE] [--format html|md|json] [--output FILE]
 *       builds one now: the report plugin runs in an executor process on the
 *       reserved connection `store`, exactly as a scheduled report task
 *       would (the same path as `plugin exec`); its three formats are stored
 *       in `reports` and the one asked for is printed or written to FILE.
 *
 * Markdown is the default output format: it reads well in a terminal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "executor.h"
#include "loader.h"
#include "report_store.h"
#include "store.h"
#include "util.h"

#define REPORT_USAGE                                                                      \
    "usage: pgreviewer report show --date YYYY-MM-DD [--connection NAME] "                \
    "[--format html|md|json]\n"                                                           \
    "       pgreviewer report generate [--date YYYY-MM-DD | --from ISO8601 --to ISO8601]\n" \
    "              [--connection NAME] [--timezone ZONE] [--format html|md|json] "        \
    "[--output FILE]\n"

typedef struct report_opts {
    const char *date, *from, *to, *connection, *timezone, *format, *output;
} report_opts;

static bool valid_date(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    return true;
}

/* "md" -> "markdown"; NULL for an unknown name. */
static const char *format_name(const char *f)
{
    if (!f || !strcmp(f, "md") || !strcmp(f, "markdown"))
        return "markdown";
    if (!strcmp(f, "html") || !strcmp(f, "json"))
        return f;
    return NULL;
}

static int parse_opts(int argc, char **argv, bool generate, report_opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = !strcmp(a, "--date")                   ? &o->date
                           : !strcmp(a, "--connection")           ? &o->connection
                           : !strcmp(a, "--format")               ? &o->format
                           : generate && !strcmp(a, "--from")     ? &o->from
                           : generate && !strcmp(a, "--to")       ? &o->to
                           : generate && !strcmp(a, "--timezone") ? &o->timezone
                           : generate && !strcmp(a, "--output")   ? &o->output
                                                                  : NULL;
        if (!dst) {
            cli_error("report %s: unexpected argument \"%s\"", argv[0], a);
            return -1;
        }
        if (i + 1 >= argc) {
            cli_error("report %s: %s needs a value", argv[0], a);
            return -1;
        }
        *dst = argv[++i];
    }
    if (!format_name(o->format)) {
        cli_error("report %s: --format: expected html, md or json, got \"%s\"", argv[0],
                  o->format);
        return -1;
    }
    if (o->date && !valid_date(o->date)) {
        cli_error("report %s: --date: expected YYYY-MM-DD, got \"%s\"", argv[0], o->date);
        return -1;
    }
    if (!generate && !o->date) {
        cli_error("report show: --date YYYY-MM-DD is required");
        return -1;
    }
    if (generate && (!o->from != !o->to || (o->date && o->from))) {
        cli_error("report generate: give --date, or --from and --to together");
        return -1;
    }
    return 0;
}

static int report_show(const pgr_config *cfg, const report_opts *o)
{
    char err[1024];
    store *s = store_open_config(cfg, err, sizeof err);
    if (!s) {
        cli_error("%s", err);
        return EXIT_FAIL;
    }
    char *body = NULL;
    int rc = report_store_find(s, o->date, o->connection, format_name(o->format), &body, err,
                               sizeof err);
    store_close(s);
    if (rc < 0) {
        cli_error("%s", err);
        return EXIT_FAIL;
    }
    if (rc == 1) {
        cli_error("no stored %s report for %s (%s%s); build one with: pgreviewer report "
                  "generate --date %s%s%s",
                  format_name(o->format), o->date,
                  o->connection ? "connection " : "all connections",
                  o->connection ? o->connection : "", o->date,
                  o->connection ? " --connection " : "", o->connection ? o->connection : "");
        return EXIT_FAIL;
    }
    fputs(body, stdout);
    if (body[0] && body[strlen(body) - 1] != '\n')
        fputc('\n', stdout);
    free(body);
    return EXIT_OK;
}

/* The report plugin's params for these options, validated against its
 * manifest (defaults filled in). NULL on error (printed). */
static json_t *generate_params(const pgr_config *cfg, const loaded_plugin *p,
                               const report_opts *o)
{
    json_t *raw = json_object();
    const char *keys[] = {"date", "from", "to", "connection"};
    const char *vals[] = {o->date, o->from, o->to, o->connection};
    for (int i = 0; i < 4; i++)
        if (vals[i])
            json_object_set_new(raw, keys[i], json_string(vals[i]));
    const char *tz = o->timezone ? o->timezone : cfg->defaults.timezone;
    json_object_set_new(raw, "timezone", json_string(tz ? tz : "UTC"));
    strbuf errs = {0};
    json_t *params = manifest_validate_params(manifest_find_type(p->manifest, "report"), raw, NULL,
                                              "report generate", "params", &errs);
    json_decref(raw);
    if (!params) {
        fputs(errs.buf ? errs.buf : "report generate: invalid params\n", stderr);
        sb_free(&errs);
    }
    return params;
}

/* Run the report plugin once in an executor; the result or NULL (printed). */
static exec_result *run_plugin(const pgr_config *cfg, const plugin_registry *reg,
                               json_t *params)
{
    char err[512];
    exec_job *job = exec_job_new(0, "report-generate", "report", "store", params, NULL,
                                 cfg->defaults.timeout_ms, 1);
    exec_pool *pool = pool_new(cfg, reg, 1, err, sizeof err);
    if (!pool) {
        cli_error("%s", err);
        exec_job_free(job);
        return NULL;
    }
    exec_result *r = NULL;
    if (pool_submit(pool, job) == 0) {
        while (pool_wait(pool, &r, -1) == 0)
            ;
    } else {
        cli_error("report generate: no executor is available");
        exec_job_free(job);
    }
    pool_free(pool, 0);
    if (r && r->outcome != EXEC_SUCCESS) {
        cli_error("report generate: %s: %s", exec_outcome_name(r->outcome),
                  r->message ? r->message : "(no message)");
        exec_result_free(r);
        return NULL;
    }
    return r;
}

/* Print the body of `format` from the result, or write it to `output`. */
static int emit(const json_t *result, const char *format, const char *output)
{
    const json_t *v = json_object_get(json_object_get(result, "reports"), format);
    char *body = json_is_string(v) ? xstrdup(json_string_value(v)) : json_dumps(v, JSON_INDENT(2));
    if (!body) {
        cli_error("report generate: the plugin returned no %s report", format);
        return EXIT_FAIL;
    }
    int rc = EXIT_OK;
    FILE *f = output ? fopen(output, "w") : stdout;
    if (!f || fputs(body, f) < 0 ||
        (body[0] && body[strlen(body) - 1] != '\n' && fputc('\n', f) < 0) ||
        (output && fclose(f) != 0)) {
        cli_error("report generate: cannot write %s", output ? output : "standard output");
        rc = EXIT_FAIL;
    } else if (output) {
        fprintf(stderr, "wrote the %s report to %s (%zu bytes)\n", format, output, strlen(body));
    }
    free(body);
    return rc;
}

static int report_generate(const pgr_config *cfg, const report_opts *o)
{
    char err[1024];
    const char *dir = cfg->plugins.directory ? cfg->plugins.directory : loader_default_dir();
    plugin_registry *reg = loader_load_dir(dir, err, sizeof err);
    if (!reg) {
        cli_error("%s", err);
        return EXIT_FAIL;
    }
    int rc = EXIT_FAIL;
    const loaded_plugin *p = loader_find_type(reg, "report");
    json_t *params = NULL;
    exec_result *r = NULL;
    store *s = NULL;
    if (!p) {
        cli_error("report generate: no plugin runs task type \"report\" (plugin directory %s)",
                  reg->directory);
        for (size_t i = 0; i < reg->n_refusals; i++)
            fprintf(stderr, "%s\n", reg->refusals[i]);
        goto done;
    }
    /* The store first: a missing store.url is said once, before any fork. */
    if (!(s = store_open_config(cfg, err, sizeof err))) {
        cli_error("%s", err);
        goto done;
    }
    store_close(s);
    s = NULL;
    if (!(params = generate_params(cfg, p, o)))
        goto done;
    r = run_plugin(cfg, reg, params);
    params = NULL; /* taken by the job */
    if (!r)
        goto done;
    int n = -1;
    if ((s = store_open_config(cfg, err, sizeof err)))
        n = report_store_from_result(s, 0, r->result, err, sizeof err);
    if (n < 0) {
        cli_error("report generate: the report could not be stored: %s", err);
        goto done;
    }
    rc = emit(r->result, format_name(o->format), o->output);
done:
    json_decref(params);
    exec_result_free(r);
    store_close(s);
    loader_free(reg);
    return rc;
}

int cmd_report(const pgr_config *cfg, int argc, char **argv)
{
    const char *sub = argc > 0 ? argv[0] : NULL;
    bool show = sub && !strcmp(sub, "show"), generate = sub && !strcmp(sub, "generate");
    if (!show && !generate) {
        fputs(REPORT_USAGE, stderr);
        return EXIT_USAGE;
    }
    report_opts o;
    if (parse_opts(argc, argv, generate, &o) < 0) {
        fputs(REPORT_USAGE, stderr);
        return EXIT_USAGE;
    }
    return show ? report_show(cfg, &o) : report_generate(cfg, &o);
}
