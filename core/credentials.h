/*
 * credentials.h - turn a configured connection (cfg_connection) into the
 * keywords and values libpq's PQconnectdbParams() takes, and open target
 * connections with them (DESIGN.md section 8).
 *
 * Where the password comes from, by the connection's `credentials`:
 *   vault          the connection's secret in Vault KV v2 (vault.h): keys
 *                  host, port, database|dbname, username|user, password, and
 *                  any other libpq keyword (sslmode, sslrootcert, ...);
 *                  other keys are ignored. Secret values override the
 *                  connection's own host/port/database/username.
 *   password_file  the first line of that file, user from `username`.
 *   (absent)       nothing: libpq's environment (PGPASSWORD, PGUSER, ...)
 *                  and ~/.pgpass, as every libpq program does.
 * Always added: application_name=pgreviewer/<task>, connect_timeout (from
 * connect_timeout_ms, in whole seconds, rounded up) and, for a task
 * timeout, options=-c statement_timeout=<ms> (appended to any `options`
 * the connection sets).
 *
 * Secrets: values are wiped (explicit_bzero) by credentials_free(); no
 * message from this file contains a password or a token (they are also
 * redacted from libpq's messages, in case).
 *
 * Same process/thread rules as the vault_client passed in (vault.h): call
 * from the thread that owns it.
 */
#ifndef PGR_CREDENTIALS_H
#define PGR_CREDENTIALS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "vault.h"

typedef struct cred_opts {
    const char *task_name;        /* application_name=pgreviewer/<task_name>; NULL: "pgreviewer" */
    int64_t statement_timeout_ms; /* > 0: options=-c statement_timeout=<ms> */
} cred_opts;

typedef struct credentials {
    size_t n;
    char **keywords;   /* n entries + NULL, for PQconnectdbParams (expand_dbname 0) */
    char **values;     /* n entries + NULL; the password among them */
    cfg_cred kind;     /* where the password came from */
    char *source;      /* "vault secret/data/database/connections/prod-main",
                        * "password file /etc/pgreviewer/prod-main.pw" or
                        * "libpq environment / .pgpass" */
} credentials;

/* Resolve `conn`'s credentials (reading Vault through `vault` when the
 * connection says so; `vault` may be NULL otherwise). `opts` may be NULL.
 * Returns credentials the caller frees with credentials_free(), or NULL
 * with err filled: a Vault error (vault.h), an unreadable password file, an
 * `options` key that is not a libpq keyword, `credentials: vault` without
 * a vault: section. */
credentials *credentials_resolve(const cfg_connection *conn, vault_client *vault,
                                 const cred_opts *opts, char *err, size_t errlen);

/* Wipe every value and free. NULL allowed. */
void credentials_free(credentials *c);

/* The value of `keyword`, or NULL. Points into `c`. */
const char *credentials_get(const credentials *c, const char *keyword);

/* Whether `keyword` is one libpq knows (per PQconndefaults()). */
bool credentials_is_libpq_keyword(const char *keyword);

/* Resolve and connect. When the server rejects the password (SQLSTATE
 * 28P01) and it came from Vault, the cached secret is invalidated, re-read
 * once (it may have been rotated) and, when the password did change, the
 * connection is retried once.
 * Returns the connection (CONNECTION_OK; the caller PQfinish()es it) and,
 * when `source` is not NULL, stores there where the credentials came from
 * (caller frees). Returns NULL with err filled otherwise; the message names
 * the connection and where its credentials came from, never the secret. */
PGconn *credentials_connect(const cfg_connection *conn, vault_client *vault,
                            const cred_opts *opts, char **source, char *err, size_t errlen);

/* `pgreviewer connection test NAME` (core/cli_connection.c): argv[0] is
 * "test", argv[1] the connection id; a trailing `--config PATH` is
 * accepted and ignored (the caller has loaded `cfg` from it). Resolves the
 * credentials as an executor would, connects, and prints the server
 * version, the user connected as and where the credentials came from,
 * never the secret. NAME "store" (when no connection has that id) tests
 * the analytics store at store.url. Returns 0, 1 (a step failed; the reason on stderr) or
 * 2 (usage). */
int cmd_connection(const pgr_config *cfg, int argc, char **argv);

#endif
