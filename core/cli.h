/*
 * cli.h - the sub-commands of the `pgreviewer` binary. Each takes the
 * arguments after its own name (argv[0] is its first word, e.g. "list" for
 * `pgreviewer plugin list`) and returns the process exit code:
 * 0 success, 1 failure, 2 usage error (documented in pgreviewer(1)).
 *
 * `config_path` is the --config option (NULL: the default path).
 */
#ifndef PGR_CLI_H
#define PGR_CLI_H

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

int cmd_plugin(const char *config_path, int argc, char **argv);
int cmd_config(const char *config_path, int argc, char **argv);
int cmd_run(const char *config_path, int argc, char **argv);

/* Print "pgreviewer: " + message to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
