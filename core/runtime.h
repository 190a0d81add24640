/*
 * runtime.h - what most commands start with: the configuration, the
 * plugins, and the check of one against the other (every task's type has a
 * plugin; its params satisfy the plugin's manifest schema, with defaults
 * filled in; its schedule and time zone parse).
 *
 * Ownership: runtime_open() returns a runtime the caller frees with
 * runtime_free(); cfg and plugins belong to it.
 */
#ifndef PGR_RUNTIME_H
#define PGR_RUNTIME_H

#include <stdbool.h>

#include "config.h"
#include "loader.h"
#include "util.h"

typedef struct runtime {
    pgr_config *cfg;
    plugin_registry *plugins;
    const char *config_path; /* as given or the default; static or argv */
} runtime;

typedef enum runtime_need {
    RT_CONFIG_OPTIONAL, /* use defaults when no file was named and the default is absent */
    RT_CONFIG_REQUIRED
} runtime_need;

/* Load configuration (`config_path` or the default) and the plugins, and
 * validate tasks against plugins. On failure returns NULL and appends the
 * messages (one per line) to *errors. Plugin refusals are not errors here
 * unless a configured task needs the refused plugin; they are listed in
 * rt->plugins->refusals. */
runtime *runtime_open(const char *config_path, runtime_need need, strbuf *errors);
void runtime_free(runtime *rt);

/* Check every task of cfg against the plugins: type known, params valid
 * (replaced by the validated params with defaults), schedule and zone
 * valid. Appends "file:line:column: message" lines; returns the number of
 * errors. */
int runtime_check_tasks(pgr_config *cfg, const plugin_registry *reg, strbuf *errors);

#endif
