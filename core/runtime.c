/*
 * runtime.c - see runtime.h.
 */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cron.h"
#include "manifest.h"
#include "tz.h"

static void task_error(strbuf *errors, const cfg_task *t, const char *fmt, const char *a,
                       const char *b)
{
    sb_printf(errors, "%s:%d:%d: ", t->mark.file ? t->mark.file : "?", t->mark.line, t->mark.col);
    sb_printf(errors, fmt, a, b);
    sb_append(errors, "\n");
}

static char *known_types(const plugin_registry *reg, const char ***list)
{
    strbuf sb = {0};
    size_t n = 0;
    *list = NULL;
    for (size_t i = 0; reg && i < reg->n_plugins; i++) {
        for (const char *const *t = reg->plugins[i].desc->task_types; *t; t++) {
            *list = xrealloc(*list, (n + 2) * sizeof **list);
            (*list)[n++] = *t;
            (*list)[n] = NULL;
            sb_printf(&sb, "%s%s", sb.len ? ", " : "", *t);
        }
    }
    return sb_steal(&sb);
}

/* Was the plugin for this type refused? Then say why, not "unknown". */
static const char *refusal_for(const plugin_registry *reg, const char *type)
{
    char needle[300];
    snprintf(needle, sizeof needle, "/%s.so:", type);
    for (size_t i = 0; reg && i < reg->n_refusals; i++)
        if (strstr(reg->refusals[i], needle))
            return reg->refusals[i];
    return NULL;
}

/* The schedule parses, fires at least once, and its zone loads. The cron
 * error carries the expression with a caret under the bad token on the
 * lines after the first: they are indented under ours. */
static int check_schedule(const cfg_task *t, size_t i, strbuf *errors)
{
    char err[1024];
    cron_expr e;
    if (t->timezone && !tz_load(t->timezone, err, sizeof err)) {
        sb_printf(errors, "%s:%d:%d: tasks[%zu].timezone: %s\n", t->mark.file, t->mark.line,
                  t->mark.col, i, err);
        return 1;
    }
    if (!t->schedule)
        return 0;
    if (cron_parse(t->schedule, &e, err, sizeof err) < 0) {
        sb_printf(errors, "%s:%d:%d: tasks[%zu].schedule: %s\n", t->mark.file, t->mark.line,
                  t->mark.col, i, err);
        return 1;
    }
    if (cron_never_fires(&e)) {
        sb_printf(errors, "%s:%d:%d: tasks[%zu].schedule: \"%s\" never fires (no date matches "
                          "it)\n",
                  t->mark.file, t->mark.line, t->mark.col, i, t->schedule);
        return 1;
    }
    return 0;
}

int runtime_check_tasks(pgr_config *cfg, const plugin_registry *reg, strbuf *errors)
{
    int n_errors = 0;
    const char **types;
    char *known = known_types(reg, &types);
    for (size_t i = 0; i < cfg->n_tasks; i++) {
        cfg_task *t = &cfg->tasks[i];
        n_errors += check_schedule(t, i, errors);
        const loaded_plugin *p = loader_find_type(reg, t->type);
        if (!p) {
            const char *why = refusal_for(reg, t->type);
            const char *hint = closest_word(t->type, types);
            char field[64];
            snprintf(field, sizeof field, "tasks[%zu].type", i);
            if (why) {
                task_error(errors, t, "%s: the plugin for this task type was refused: %s", field,
                           why);
            } else if (hint) {
                sb_printf(errors, "%s:%d:%d: %s: unknown task type \"%s\" (did you mean \"%s\"?)\n",
                          t->mark.file, t->mark.line, t->mark.col, field, t->type, hint);
            } else {
                sb_printf(errors, "%s:%d:%d: %s: unknown task type \"%s\" (known: %s)\n",
                          t->mark.file, t->mark.line, t->mark.col, field, t->type,
                          *known ? known : "none: no plugins loaded");
            }
            n_errors++;
            continue;
        }
        const task_type_spec *spec = manifest_find_type(p->manifest, t->type);
        char field[64], where[512];
        snprintf(field, sizeof field, "tasks[%zu].params", i);
        snprintf(where, sizeof where, "%s:%d:%d", t->mark.file, t->mark.line, t->mark.col);
        json_t *v = manifest_validate_params(spec, t->params, t->params_node, where, field, errors);
        if (!v) {
            n_errors++;
            continue;
        }
        json_decref(t->params);
        t->params = v;
    }
    free(types);
    free(known);
    return n_errors;
}

runtime *runtime_open(const char *config_path, runtime_need need, strbuf *errors)
{
    runtime *rt = xcalloc(1, sizeof *rt);
    const char *path = config_path ? config_path : config_default_path();
    rt->config_path = path;
    if (!config_path && need == RT_CONFIG_OPTIONAL && access(path, F_OK) != 0) {
        rt->cfg = config_defaults();
    } else {
        char *errs = NULL;
        rt->cfg = config_load(path, &errs);
        if (!rt->cfg) {
            sb_append(errors, errs ? errs : "configuration could not be loaded\n");
            if (errs && errs[0] && errs[strlen(errs) - 1] != '\n')
                sb_append(errors, "\n");
            free(errs);
            free(rt);
            return NULL;
        }
        free(errs);
    }
    const char *dir = rt->cfg->plugins.directory ? rt->cfg->plugins.directory
                                                 : loader_default_dir();
    char err[1024];
    rt->plugins = loader_load_dir(dir, err, sizeof err);
    if (!rt->plugins) {
        if (rt->cfg->n_tasks == 0) {
            /* No tasks: a missing plugin directory is not fatal. */
            rt->plugins = xcalloc(1, sizeof *rt->plugins);
            rt->plugins->directory = xstrdup(dir);
            rt->plugins->refusals = xcalloc(1, sizeof(char *));
            rt->plugins->refusals[0] = xstrdup(err);
            rt->plugins->n_refusals = 1;
            return rt;
        }
        sb_printf(errors, "%s\n", err);
        runtime_free(rt);
        return NULL;
    }
    if (runtime_check_tasks(rt->cfg, rt->plugins, errors) > 0) {
        runtime_free(rt);
        return NULL;
    }
    return rt;
}

void runtime_free(runtime *rt)
{
    if (!rt)
        return;
    config_free(rt->cfg);
    loader_free(rt->plugins);
    free(rt);
}
