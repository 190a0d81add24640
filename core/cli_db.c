/*
 * cli_db.c - `pgreviewer db migrate | status`: apply the store's
 * migrations (store_migrations.c) and say which ones ran, or report the
 * schema version. The daemon also migrates at start-up; this command lets
 * an operator do it first, e.g. from a package's post-install step.
 */
#include <stdio.h>
#include <string.h>

#include "store.h"
#include "store_migrations.h"
#include "util.h"

#define DB_USAGE "usage: pgreviewer db migrate | pgreviewer db status | pgreviewer db prune\n"

static const char *migration_name(int version)
{
    size_t n;
    const store_migration *m = store_migrations(&n);
    for (size_t i = 0; i < n; i++)
        if (m[i].version == version)
            return m[i].name;
    return "?";
}

static int db_migrate(store *s)
{
    char err[1024];
    int applied[256];
    int n = store_migrate_list(s, applied, sizeof applied / sizeof applied[0], err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        return 1;
    }
    for (int i = 0; i < n && i < 256; i++)
        printf("applied migration %d: %s\n", applied[i], migration_name(applied[i]));
    if (n == 0)
        printf("the store is up to date (schema version %d)\n", store_latest_version());
    else
        printf("the store is now at schema version %d\n", store_latest_version());
    return 0;
}

static int db_status(store *s)
{
    char err[1024];
    int v;
    if (store_schema_version(s, &v, err, sizeof err) < 0) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        return 1;
    }
    int latest = store_latest_version();
    if (v > latest)
        printf("schema version %d: newer than this pgreviewer knows (%d); upgrade pgreviewer\n",
               v, latest);
    else if (v == latest)
        printf("schema version %d: up to date\n", v);
    else
        printf("schema version %d: %d migration(s) to apply (run: pgreviewer db migrate)\n", v,
               latest - v);
    return v >= latest ? 0 : 1;
}

/* `db prune`: apply the retention of the configuration now (the daemon
 * does it every hour; with the roles run apart, run this from a timer). */
static int db_prune(store *s, const pgr_config *cfg)
{
    char err[512];
    store_retention_stats st;
    if (store_migrate(s, err, sizeof err) < 0 ||
        store_retention(s, cfg->store.retention_ms, cfg->store.retention_per_task, 1000, &st, err,
                        sizeof err) < 0) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        return 1;
    }
    printf("pruned %ld execution(s) and %ld orphaned result(s) in %d statement(s)\n",
           st.executions, st.results, st.statements);
    return 0;
}

int cmd_db(const pgr_config *cfg, int argc, char **argv)
{
    if (argc != 1 || (strcmp(argv[0], "migrate") != 0 && strcmp(argv[0], "status") != 0 &&
                      strcmp(argv[0], "prune") != 0)) {
        if (argc >= 1)
            fprintf(stderr, "pgreviewer: unknown db command \"%s\"\n", argv[0]);
        fputs(DB_USAGE, stderr);
        return 2;
    }
    if (!cfg || !cfg->store.url || !*cfg->store.url) {
        fprintf(stderr, "pgreviewer: no store configured: set store.url in the configuration "
                        "(a libpq URI or key=value string, e.g. "
                        "postgresql:///pgreviewer?host=/run/postgresql)\n");
        return 1;
    }
    char err[1024];
    store *s = store_open(cfg->store.url, err, sizeof err);
    if (!s) {
        fprintf(stderr, "pgreviewer: %s\n", err);
        return 1;
    }
    int rc = strcmp(argv[0], "migrate") == 0  ? db_migrate(s)
             : strcmp(argv[0], "prune") == 0 ? db_prune(s, cfg)
                                             : db_status(s);
    store_close(s);
    return rc;
}
