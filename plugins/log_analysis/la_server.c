/*
 * la_server.c - `source: server`: the target server's own log, read
 * through the task's connection.
 *
 * It checks what the role may do first, so that a missing privilege gives
 * a message naming it and the GRANT that gives it, rather than a failed
 * query in the middle of a read: pg_ls_logdir() (superuser or pg_monitor),
 * log_directory (superuser or pg_read_all_settings, which pg_monitor has)
 * and pg_read_binary_file(text, bigint, bigint, boolean) (superuser or an
 * explicit GRANT EXECUTE). It then lists the log directory and hands the
 * files to the engine (la_run_remote), whose reader callback fetches each
 * chunk with pg_read_binary_file() in binary result format (bytea arrives
 * as raw bytes, not hex). The connection belongs to the host: never
 * PQfinish()ed here.
 */
#include "la_server.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "la_engine.h"

/* What the preflight query found. */
typedef struct srv_info {
    char user[128];
    char logdir[1024]; /* log_directory; "" when the role may not see it */
    int may_list, may_read;
    int collector; /* logging_collector on */
    char dest[128];
} srv_info;

static const char *PREFLIGHT_SQL =
    "SELECT current_user,"
    " has_function_privilege('pg_catalog.pg_ls_logdir()', 'EXECUTE'),"
    " has_function_privilege('pg_catalog.pg_read_binary_file(text,bigint,bigint,boolean)',"
    " 'EXECUTE'),"
    " (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'log_directory'),"
    " (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'logging_collector'),"
    " (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'log_destination')";

static int preflight(PGconn *c, srv_info *si, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, PREFLIGHT_SQL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        snprintf(err, errlen, "source server: cannot check the role's privileges: %s",
                 PQerrorMessage(c));
        PQclear(r);
        return -1;
    }
    memset(si, 0, sizeof *si);
    snprintf(si->user, sizeof si->user, "%s", PQgetvalue(r, 0, 0));
    si->may_list = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    si->may_read = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
    snprintf(si->logdir, sizeof si->logdir, "%s", PQgetvalue(r, 0, 3));
    si->collector = strcmp(PQgetvalue(r, 0, 4), "on") == 0;
    snprintf(si->dest, sizeof si->dest, "%s", PQgetvalue(r, 0, 5));
    PQclear(r);
    return 0;
}

/* The message for the first privilege the role lacks; 0 when it has all. */
static int check_privileges(const srv_info *si, char *err, size_t errlen)
{
    if (!si->may_list) {
        snprintf(err, errlen,
                 "source server: role \"%s\" may not list the server's log directory: "
                 "pg_ls_logdir() needs superuser or the pg_monitor role "
                 "(GRANT pg_monitor TO \"%s\")",
                 si->user, si->user);
        return -1;
    }
    if (si->logdir[0] == '\0') {
        snprintf(err, errlen,
                 "source server: role \"%s\" may not read the setting log_directory: it needs "
                 "superuser or the pg_read_all_settings role, which pg_monitor includes "
                 "(GRANT pg_monitor TO \"%s\")",
                 si->user, si->user);
        return -1;
    }
    if (!si->may_read) {
        snprintf(err, errlen,
                 "source server: role \"%s\" may not read the server's log files: "
                 "pg_read_binary_file() needs superuser or "
                 "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, "
                 "boolean) TO \"%s\" (and the pg_read_server_files role when log_directory is "
                 "outside the data directory)",
                 si->user, si->user);
        return -1;
    }
    return 0;
}

static void collector_off(const srv_info *si, char *err, size_t errlen)
{
    snprintf(err, errlen,
             "source server: the server's logging_collector is off, so it writes no log file "
             "into its log directory (log_destination = '%s'): set logging_collector = on "
             "(a restart) to read the log through the connection, or use source files",
             si->dest);
}

/* The listing: names, paths, sizes, times (malloc'd; strings in one PGresult
 * kept in *keep). Returns the count or -1 with err filled. */
static int list_logdir(PGconn *c, const srv_info *si, la_remote_file **out, PGresult **keep,
                       char *err, size_t errlen)
{
    const char *params[1] = {si->logdir};
    PGresult *r = PQexecParams(c,
                               "SELECT name, $1::text || '/' || name, size,"
                               " extract(epoch FROM modification)::bigint"
                               " FROM pg_catalog.pg_ls_logdir() ORDER BY name",
                               1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        if (!si->collector)
            collector_off(si, err, errlen);
        else
            snprintf(err, errlen, "source server: pg_ls_logdir(): %s", PQerrorMessage(c));
        PQclear(r);
        return -1;
    }
    int n = PQntuples(r);
    la_remote_file *v = calloc((size_t)n + 1, sizeof *v);
    if (v == NULL) {
        PQclear(r);
        snprintf(err, errlen, "source server: out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        v[i].name = PQgetvalue(r, i, 0);
        v[i].path = PQgetvalue(r, i, 1);
        v[i].size = strtoull(PQgetvalue(r, i, 2), NULL, 10);
        v[i].mtime = strtoll(PQgetvalue(r, i, 3), NULL, 10);
    }
    *out = v;
    *keep = r;
    return n;
}

/* la_remote_read on the task's connection. */
static int64_t read_chunk(void *arg, const la_remote_file *f, uint64_t off, size_t len, char *buf,
                          int *fatal, char *err, size_t errlen)
{
    PGconn *c = arg;
    char soff[24], slen[24];
    snprintf(soff, sizeof soff, "%llu", (unsigned long long)off);
    snprintf(slen, sizeof slen, "%zu", len);
    const char *params[3] = {f->path, soff, slen};
    PGresult *r = PQexecParams(c, "SELECT pg_catalog.pg_read_binary_file($1, $2, $3, true)", 3,
                               NULL, params, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        *fatal = st != NULL && strcmp(st, "42501") == 0; /* insufficient privilege */
        snprintf(err, errlen, "source server: pg_read_binary_file('%s'): %s", f->path,
                 PQerrorMessage(c));
        PQclear(r);
        return -1;
    }
    int64_t n = 0;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) { /* NULL: removed since listed */
        n = PQgetlength(r, 0, 0);
        if ((size_t)n > len)
            n = (int64_t)len;
        memcpy(buf, PQgetvalue(r, 0, 0), (size_t)n);
    }
    PQclear(r);
    return n;
}

int la_server_run(PGconn *conn, const char *params_json, const char *state_json,
                  int (*poll)(void *, double), void *poll_arg, char **result, char **new_state,
                  int *retryable, char *err, size_t errlen)
{
    srv_info si;
    la_remote_file *files = NULL;
    PGresult *keep = NULL;
    *result = *new_state = NULL;
    *retryable = 0;
    if (preflight(conn, &si, err, errlen) < 0) {
        *retryable = 1;
        return -1;
    }
    if (check_privileges(&si, err, errlen) < 0)
        return -1;
    int n = list_logdir(conn, &si, &files, &keep, err, errlen);
    if (n < 0) {
        *retryable = si.collector;
        return -1;
    }
    int rc;
    if (n == 0 && !si.collector) {
        collector_off(&si, err, errlen);
        rc = -1;
    } else {
        rc = la_run_remote(params_json, state_json, files, (size_t)n, read_chunk, conn, poll,
                           poll_arg, result, new_state, retryable, err, errlen);
    }
    free(files);
    PQclear(keep);
    return rc;
}
