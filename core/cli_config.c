/*
 * cli_config.c - `pgreviewer config check`: load the configuration and
 * the plugins, validate every task against its plugin's manifest, and print
 * a summary or the errors ("file:line:column: message", exit 1).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "runtime.h"

int cmd_config(const char *config_path, int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "check") != 0 || argc > 1) {
        cli_error("usage: pgreviewer config check [--config PATH]");
        return EXIT_USAGE;
    }
    strbuf errs = {0};
    runtime *rt = runtime_open(config_path, RT_CONFIG_REQUIRED, &errs);
    if (!rt) {
        fputs(errs.buf ? errs.buf : "configuration is invalid\n", stderr);
        sb_free(&errs);
        return EXIT_FAIL;
    }
    const pgr_config *c = rt->cfg;
    printf("%s: ok\n", rt->config_path);
    printf("  connections: %zu\n", c->n_connections);
    for (size_t i = 0; i < c->n_connections; i++)
        printf("    %s\n", c->connections[i].id);
    printf("  tasks: %zu\n", c->n_tasks);
    for (size_t i = 0; i < c->n_tasks; i++) {
        const cfg_task *t = &c->tasks[i];
        printf("    %-24s %-14s %s%s\n", t->name, t->type, t->schedule ? t->schedule : "(manual)",
               t->enabled ? "" : " (disabled)");
    }
    printf("  plugins: %zu in %s\n", rt->plugins->n_plugins, rt->plugins->directory);
    for (size_t i = 0; i < rt->plugins->n_plugins; i++)
        printf("    %s %s\n", rt->plugins->plugins[i].name, rt->plugins->plugins[i].desc->version);
    for (size_t i = 0; i < rt->plugins->n_refusals; i++)
        printf("  refused: %s\n", rt->plugins->refusals[i]);
    printf("  store: %s\n  queue: %s\n", c->store.url ? "configured" : "none",
           c->queue.url ? "redis" : "in-process");
    runtime_free(rt);
    return EXIT_OK;
}
