/*
 * cli_connection.c - `pgreviewer connection test NAME`: how a user checks a
 * new connection or a Vault setup. It resolves the credentials exactly as an
 * executor does (credentials.h), connects, and prints what it found: the
 * server version, the user it connected as and where the credentials came
 * from. It never prints a secret.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "credentials.h"
#include "util.h"
#include "vault.h"

static int usage(void)
{
    fprintf(stderr, "usage: pgreviewer connection test NAME [--config PATH]\n");
    return 2;
}

/* "did you mean" and the list of valid names, on stderr. */
static void list_connections(const pgr_config *cfg, const char *name)
{
    if (cfg->n_connections == 0) {
        fprintf(stderr, "  (the configuration defines no connections)\n");
        return;
    }
    const char **ids = xcalloc(cfg->n_connections + 1, sizeof *ids);
    for (size_t i = 0; i < cfg->n_connections; i++)
        ids[i] = cfg->connections[i].id;
    const char *hint = closest_word(name, ids);
    if (hint)
        fprintf(stderr, "  did you mean \"%s\"?\n", hint);
    fprintf(stderr, "  connections defined:");
    for (size_t i = 0; i < cfg->n_connections; i++)
        fprintf(stderr, "%s %s", i ? "," : "", ids[i]);
    fprintf(stderr, "\n");
    free(ids);
}

static const cfg_connection *find_connection(const pgr_config *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->n_connections; i++)
        if (strcmp(cfg->connections[i].id, id) == 0)
            return &cfg->connections[i];
    return NULL;
}

/* SELECT current_user into buf. Returns 0 or -1 with err filled. */
static int current_user(PGconn *pg, char *buf, size_t len, char *err, size_t errlen)
{
    PGresult *r = PQexec(pg, "SELECT current_user");
    int rc = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        snprintf(buf, len, "%s", PQgetvalue(r, 0, 0));
    else
        rc = set_err(err, errlen, "SELECT current_user failed: %s", PQerrorMessage(pg));
    PQclear(r);
    return rc;
}

/* Print what we connected to; 0, or 1 when SELECT current_user fails. */
static int report(PGconn *pg, const char *name, const char *source)
{
    char err[1024], user[256];
    if (current_user(pg, user, sizeof user, err, sizeof err) < 0) {
        fprintf(stderr, "connection %s: %s\n", name, err);
        return 1;
    }
    const char *ver = PQparameterStatus(pg, "server_version");
    printf("connection %s: ok\n", name);
    printf("  server:       PostgreSQL %s\n", ver ? ver : "(unknown version)");
    printf("  connected as: %s\n", user);
    printf("  database:     %s\n", PQdb(pg));
    printf("  credentials:  %s\n", source);
    fflush(stdout);
    return 0;
}

/* The reserved connection `store`: the analytics store of store.url. */
static int test_store(const pgr_config *cfg)
{
    if (!cfg->store.url || !*cfg->store.url) {
        fprintf(stderr, "connection store: no store is configured (store.url)\n");
        return 1;
    }
    const char *kw[] = {"dbname", "application_name", NULL};
    const char *val[] = {cfg->store.url, "pgreviewer/connection-test", NULL};
    PGconn *pg = PQconnectdbParams(kw, val, 1);
    int rc = 1;
    if (PQstatus(pg) == CONNECTION_OK)
        rc = report(pg, "store", "store.url (libpq environment / .pgpass for what it leaves out)");
    else
        fprintf(stderr, "connection store: cannot connect to store.url: %s", PQerrorMessage(pg));
    PQfinish(pg);
    return rc;
}

static int test_connection(const pgr_config *cfg, const cfg_connection *conn)
{
    char err[2048];
    vault_client *vault = NULL;
    if (conn->credentials == CRED_VAULT && cfg->vault.enabled) {
        vault = vault_new(&cfg->vault, err, sizeof err);
        if (!vault) {
            fprintf(stderr, "connection %s: %s\n", conn->id, err);
            return 1;
        }
    }
    cred_opts opts = {.task_name = "connection-test", .statement_timeout_ms = 0};
    char *source = NULL;
    PGconn *pg = credentials_connect(conn, vault, &opts, &source, err, sizeof err);
    int rc = 1;
    if (!pg)
        fprintf(stderr, "%s\n", err);
    else
        rc = report(pg, conn->id, source);
    PQfinish(pg);
    free(source);
    vault_free(vault);
    return rc;
}

int cmd_connection(const pgr_config *cfg, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[0], "test") != 0)
        return usage();
    if (argc != 2 && !(argc == 4 && strcmp(argv[2], "--config") == 0))
        return usage();
    const cfg_connection *conn = find_connection(cfg, argv[1]);
    if (!conn && strcmp(argv[1], "store") == 0)
        return test_store(cfg);
    if (!conn) {
        fprintf(stderr, "connection test: no connection named \"%s\" in %s\n", argv[1],
                cfg->path ? cfg->path : "the configuration");
        list_connections(cfg, argv[1]);
        return 1;
    }
    return test_connection(cfg, conn);
}
