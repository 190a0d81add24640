/*
 * main.c - the `pgreviewer` binary: global options and the dispatch to
 * sub-commands (cli.h). Exit codes: 0 success, 1 failure, 2 usage.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cli.h"
#include "config.h"
#include "cron.h"
#include "credentials.h"
#include "log.h"
#include "queue.h"
#include "report_store.h"
#include "runtime.h"
#include "scheduler.h"
#include "store.h"
#include "vault.h"
#include "worker.h"

static const char usage[] =
    "usage: pgreviewer [--config PATH] COMMAND [ARGS]\n"
    "\n"
    "Scheduled analyses of PostgreSQL databases.\n"
    "\n"
    "Commands:\n"
    "  run                     scheduler, workers and API in one process tree (single host;\n"
    "                          in-process queue unless queue.url is set); SIGHUP reloads\n"
    "  run --once [--task NAME]... [--no-retry]\n"
    "                          run tasks once now; one JSON line per task; exit 1 if any failed\n"
    "  config check            validate the configuration, plugins and task params\n"
    "  plugin list [--json]    list loaded plugins (and refused ones, with the reason)\n"
    "  plugin info NAME        a plugin's task types and their params\n"
    "  plugin check FILE.so    load and validate one plugin, no configuration needed\n"
    "  plugin exec TYPE [--params JSON] [--connection NAME] [--state-file FILE]\n"
    "              [--timeout DURATION] [--envelope]\n"
    "                          run one task in an executor and print its result\n"
    "  cron next 'EXPR' [--tz ZONE] [--from ISO8601] [--count N]\n"
    "                          preview the next fire times of a cron expression\n"
    "  connection test NAME    resolve credentials (Vault, password file, environment),\n"
    "                          connect, and say as whom and from where\n"
    "  db migrate              create or upgrade the store's schema\n"
    "  task list | show NAME | trigger NAME [--params JSON] | pause NAME | resume NAME\n"
    "       | remove NAME | history NAME [--limit N]      (add --json for scripts)\n"
    "  execution show ID       an execution's status, attempts and result\n"
    "  queue stats [--json] | dead list [--json] | dead retry ID|--all | dead purge\n"
    "  api                     serve the HTTP API (health, /metrics, tasks, executions)\n"
    "  scheduler [--retry DURATION]\n"
    "                          the scheduler role: elect a leader, fire tasks into the queue\n"
    "  worker [--processes N] [--prefetch N] [--lease DURATION]\n"
    "                          run queued tasks in N executors until SIGTERM/SIGINT\n"
    "  report show --date YYYY-MM-DD [--connection NAME] [--format html|md|json]\n"
    "                          print a stored report\n"
    "  report generate [--date YYYY-MM-DD | --from ISO8601 --to ISO8601] [--connection NAME]\n"
    "              [--timezone ZONE] [--format html|md|json] [--output FILE]\n"
    "                          build a report now, store it, print or write it\n"
    "\n"
    "Options:\n"
    "  --config PATH           main configuration file (default: $PGREVIEWER_CONFIG or\n"
    "                          " PGR_INSTALL_SYSCONFDIR "/pgreviewer/pgreviewer.yaml)\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error. See pgreviewer(1).\n";

typedef int (*cfg_cmd)(const pgr_config *cfg, int argc, char **argv);

/* Commands that need the configuration. `validate`: also load the plugins
 * and check every task against them (params with defaults filled in). */
static int with_config(const char *path, bool validate, cfg_cmd fn, int argc, char **argv)
{
    if (validate) {
        strbuf errs = {0};
        runtime *rt = runtime_open(path, RT_CONFIG_REQUIRED, &errs);
        if (!rt) {
            fputs(errs.buf ? errs.buf : "configuration is invalid\n", stderr);
            sb_free(&errs);
            return EXIT_FAIL;
        }
        log_configure(rt->cfg->logging.level, rt->cfg->logging.format);
        int rc = fn(rt->cfg, argc, argv);
        runtime_free(rt);
        return rc;
    }
    char *errs = NULL;
    pgr_config *cfg = config_load(path ? path : config_default_path(), &errs);
    if (!cfg) {
        fputs(errs ? errs : "configuration could not be loaded\n", stderr);
        free(errs);
        return EXIT_FAIL;
    }
    free(errs);
    log_configure(cfg->logging.level, cfg->logging.format);
    int rc = fn(cfg, argc, argv);
    config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    /* First thing: take VAULT_TOKEN out of the environment, so that no
     * executor we fork and no /proc/PID/environ shows it. */
    vault_capture_env_token();
    /* A peer that went away (Redis, a webhook, an executor) is an error to
     * handle where it happens, never a reason for the whole process to die. */
    signal(SIGPIPE, SIG_IGN);
    const char *config_path = NULL;
    char **args = calloc((size_t)argc + 1, sizeof *args);
    int n = 0;
    if (!args)
        return EXIT_FAIL;
    /* --config may stand anywhere: take it out of argv. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") || !strcmp(argv[i], "-c")) {
            if (i + 1 >= argc) {
                cli_error("--config needs a path");
                free(args);
                return EXIT_USAGE;
            }
            config_path = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            config_path = argv[i] + 9;
        } else {
            args[n++] = argv[i];
        }
    }
    int rc = EXIT_USAGE;
    const char *cmd = n > 0 ? args[0] : NULL;
    if (!cmd) {
        fputs(usage, stderr);
    } else if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        rc = EXIT_OK;
    } else if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("pgreviewer %s (plugin ABI %d.%d)\n", PGR_VERSION, 1, 0);
        rc = EXIT_OK;
    } else if (!strcmp(cmd, "run")) {
        rc = cmd_run(config_path, n - 1, args + 1);
    } else if (!strcmp(cmd, "config")) {
        rc = cmd_config(config_path, n - 1, args + 1);
    } else if (!strcmp(cmd, "plugin")) {
        rc = cmd_plugin(config_path, n - 1, args + 1);
    } else if (!strcmp(cmd, "cron")) {
        rc = cmd_cron(n - 1, args + 1);
    } else if (!strcmp(cmd, "connection")) {
        rc = with_config(config_path, false, cmd_connection, n - 1, args + 1);
    } else if (!strcmp(cmd, "db")) {
        rc = with_config(config_path, false, cmd_db, n - 1, args + 1);
    } else if (!strcmp(cmd, "task")) {
        rc = with_config(config_path, true, cmd_task, n - 1, args + 1);
    } else if (!strcmp(cmd, "execution")) {
        rc = with_config(config_path, false, cmd_execution, n - 1, args + 1);
    } else if (!strcmp(cmd, "scheduler")) {
        rc = with_config(config_path, true, cmd_scheduler, n - 1, args + 1);
    } else if (!strcmp(cmd, "api")) {
        rc = with_config(config_path, false, cmd_api, n - 1, args + 1);
    } else if (!strcmp(cmd, "worker")) {
        rc = cmd_worker(config_path, n - 1, args + 1);
    } else if (!strcmp(cmd, "queue")) {
        rc = with_config(config_path, false, cmd_queue, n - 1, args + 1);
    } else if (!strcmp(cmd, "report")) {
        rc = with_config(config_path, false, cmd_report, n - 1, args + 1);
    } else {
        cli_error("unknown command \"%s\"; see pgreviewer --help", cmd);
    }
    free(args);
    return rc;
}
